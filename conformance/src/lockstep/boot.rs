//! A virtual PC with a kernel loaded, for lockstep runs: the same loaders `strata run` uses
//! (bzImage with an optional initrd, Multiboot, a boot sector), on a deterministic machine
//! (virtual time from retired instructions), so a run and its rerun take the same path.

use emu::machine::{Machine, MachineConfig};
use std::path::Path;
use std::time::Instant;

/// What to boot.
pub struct BootSpec<'a> {
    pub kernel: &'a Path,
    pub initrd: Option<&'a Path>,
    pub append: &'a str,
    pub mem: u64,
}

/// A deterministic machine with `spec`'s kernel loaded, serial output to `serial`.
///
/// # Errors
/// A file cannot be read, is not a kernel the loaders know, or the RAM cannot be mapped; the
/// message names the file.
pub fn machine(spec: &BootSpec, serial: Box<dyn std::io::Write>) -> Result<Machine, String> {
    let kernel = spec.kernel.display().to_string();
    let image = std::fs::read(spec.kernel).map_err(|e| format!("{kernel}: {e}"))?;
    let cfg = MachineConfig { mem: spec.mem, deterministic: true, marker: None };
    let mut m = Machine::new(&cfg, serial, Instant::now()).map_err(|e| format!("guest RAM: {e}"))?;
    let cpu = &mut m.cpu;
    if image.len() > 0x206 && &image[0x202..0x206] == b"HdrS" {
        let initrd = match spec.initrd {
            Some(p) => Some((p.display().to_string(), std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?)),
            None => None,
        };
        let ird = initrd.as_ref().map(|(p, d)| (p.as_str(), d.as_slice()));
        emu::loaders::bzimage::load(cpu, &kernel, &image, spec.append, ird).map_err(|e| e.to_string())?;
    } else if spec.initrd.is_some() {
        return Err(format!("{kernel}: an initrd needs a bzImage"));
    } else if emu::loaders::multiboot::detect(&image).is_some() {
        emu::loaders::multiboot::load(cpu, &kernel, &image, spec.append).map_err(|e| e.to_string())?;
    } else if emu::loaders::bootsector::detect(&image) {
        emu::loaders::bootsector::load(cpu, &kernel, &image).map_err(|e| e.to_string())?;
    } else {
        return Err(format!("{kernel}: neither a bzImage, a Multiboot kernel nor a boot sector"));
    }
    Ok(m)
}
