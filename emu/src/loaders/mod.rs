//! Boot loaders: put a kernel into guest memory and the CPU into the state its boot protocol
//! promises. `bzimage.rs` implements the Linux x86 boot protocol's 64-bit and 32-bit entries; `multiboot.rs`
//! Multiboot v1 for small test kernels; `bootsector.rs` a real-mode start at 0x7C00; `mptable.rs` the Intel MP table Linux reads to find the
//! CPU and the IOAPIC; `acpi.rs` the ACPI tables (RSDP, XSDT, FADT, MADT, DSDT); `fw_cfg.rs` the items the
//! fw_cfg device offers; `layout.rs` is the guest memory map.

pub mod acpi;
pub mod bootsector;
pub mod bzimage;
pub mod fw_cfg;
pub mod layout;
pub mod mptable;
pub mod multiboot;
pub mod multiboot_rom;

use crate::cpu::Cpu;
use crate::state::{ctrl, Segment};
use thiserror::Error;

/// Why a kernel or initrd could not be loaded. Each message names the file and the problem.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LoadError {
    #[error("{path}: {problem}")]
    Kernel { path: String, problem: String },
    #[error("{path}: {problem}")]
    Initrd { path: String, problem: String },
    #[error("{path}: {source}")]
    Multiboot { path: String, source: multiboot::MultibootError },
    #[error("guest RAM ({ram_mib} MiB) is too small: {what}")]
    TooSmall { ram_mib: u64, what: String },
}

/// Writes `data` at guest physical `pa`, or reports that RAM is too small.
pub(crate) fn put(cpu: &mut Cpu, pa: u64, data: &[u8], what: &str) -> Result<(), LoadError> {
    match cpu.ram.slice_mut(pa, data.len()) {
        Some(dst) => {
            dst.copy_from_slice(data);
            Ok(())
        }
        None => Err(LoadError::TooSmall { ram_mib: cpu.ram.len() >> 20, what: what.to_string() }),
    }
}

/// The boot GDT: null, null, 64-bit code (0x10), data (0x18), 32-bit code (0x20).
pub(crate) fn write_boot_gdt(cpu: &mut Cpu) -> Result<(), LoadError> {
    let gdt: [u64; 5] = [0, 0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff, 0x00cf_9b00_0000_ffff];
    let bytes: Vec<u8> = gdt.iter().flat_map(|d| d.to_le_bytes()).collect();
    put(cpu, layout::BOOT_GDT, &bytes, "boot GDT")?;
    cpu.state.gdtr.base = layout::BOOT_GDT;
    cpu.state.gdtr.limit = (bytes.len() - 1) as u16;
    Ok(())
}

/// Data segments flat with selector 0x18, as both boot protocols leave them.
pub(crate) fn flat_data_segments(cpu: &mut Cpu) {
    for i in [0, 2, 3, 4, 5] {
        let mut d = Segment::flat_data(0x18, 0);
        d.attr |= 1; // accessed
        cpu.state.segs[i] = d;
    }
    cpu.state.cpl = 0;
    cpu.state.set_rflags(2);
    cpu.state.cr0 |= ctrl::CR0_ET;
}
