//! A real-mode start, the way a PC BIOS hands over to a boot sector: the image (a boot sector,
//! optionally followed by more code) at 0x7C00, the CPU in real mode with CS:IP = 0000:7C00,
//! DL = 0x80 (the boot drive), interrupts off. Recognised by the 0x55 0xAA signature at offset
//! 510. There is no BIOS: the image must not call INT services (the IVT is empty).

use super::{put, LoadError};
use crate::cpu::Cpu;
use crate::state::{attr, Segment};

/// Where a boot sector is loaded and entered.
pub const BOOT_SECTOR: u64 = 0x7c00;
/// The largest image accepted: up to the EBDA.
pub const MAX_IMAGE: usize = (super::layout::EBDA - BOOT_SECTOR) as usize;

/// True if `image` looks like a boot sector (signature at 510).
pub fn detect(image: &[u8]) -> bool {
    image.len() >= 512 && image[510] == 0x55 && image[511] == 0xaa
}

/// Loads a boot-sector image and puts the CPU in the real-mode state a BIOS leaves.
///
/// # Errors
/// A [`LoadError`] when the image is too large or RAM too small.
pub fn load(cpu: &mut Cpu, path: &str, image: &[u8]) -> Result<u64, LoadError> {
    if image.len() > MAX_IMAGE {
        return Err(LoadError::Kernel {
            path: path.to_string(),
            problem: format!(
                "a real-mode image must fit below the EBDA ({} bytes); this one has {}",
                MAX_IMAGE,
                image.len()
            ),
        });
    }
    put(cpu, BOOT_SECTOR, image, "boot sector")?;
    let s = &mut cpu.state;
    // Real-mode segments: base = selector << 4, 64 KiB limit, present read/write data (CS
    // execute/read), as after reset (SDM Vol. 3, Table 9-1) with selectors 0.
    for (i, seg) in s.segs.iter_mut().enumerate() {
        let ty = if i == 1 { 0xb } else { 0x3 };
        *seg = Segment { base: 0, limit: 0xffff, selector: 0, attr: ty | attr::S | attr::P };
    }
    s.cr0 = crate::state::ctrl::CR0_ET;
    s.cpl = 0;
    s.set_rflags(2);
    s.gpr = [0; 16];
    s.gpr[2] = 0x80; // DL: the boot drive
    s.gpr[4] = BOOT_SECTOR;
    s.rip = BOOT_SECTOR;
    s.idtr.base = 0;
    s.idtr.limit = 0x3ff;
    cpu.softmmu.flush_tlb();
    Ok(BOOT_SECTOR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::GuestRam;

    #[test]
    fn boot_sector_is_entered_in_real_mode_at_7c00() {
        let mut img = vec![0xf4u8; 512];
        img[510] = 0x55;
        img[511] = 0xaa;
        assert!(detect(&img));
        let mut cpu = Cpu::new(GuestRam::new(1 << 20).unwrap());
        load(&mut cpu, "b", &img).unwrap();
        assert_eq!(cpu.state.code_bits(), 16);
        assert_eq!((cpu.state.rip, cpu.state.gpr[2]), (0x7c00, 0x80));
        assert!(!detect(&img[..511]));
        assert!(load(&mut cpu, "b", &vec![0u8; MAX_IMAGE + 1]).is_err());
    }
}
