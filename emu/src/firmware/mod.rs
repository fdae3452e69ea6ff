//! Booting through firmware from the reset vector (`strata run --bios`): the BIOS ROM and the
//! chipset's shadowing of it (`shadow.rs`), the CPU's reset state, the ROM's high copy as an
//! MMIO region, and how a PAM write by the guest reaches the memory map.
//!
//! Layer: beside `loaders` (on the CPU). The machine wires it in (`machine/bios.rs`).

pub mod shadow;

use crate::cpu::Cpu;
use crate::state::{attr, Segment};
pub use shadow::{check_image, BiosError, ShadowRom};
use std::sync::Arc;

/// Puts the CPU in its power-on state (SDM Vol. 3, 10.1.1 and Table 10-1 "IA-32 and Intel 64
/// Processor States Following Power-up, Reset, or INIT"): real mode, CS selector F000h with base
/// FFFF0000h, EIP 0000FFF0h (so the first fetch is at FFFFFFF0h), the other segments 0 with
/// 64 KiB limits, CR0 60000010h, EFLAGS 2, EDX the processor signature (CPUID.1:EAX), GDTR and
/// IDTR base 0 limit FFFFh.
pub fn reset_cpu(cpu: &mut Cpu) {
    let signature = cpu.config.model.signature;
    let s = &mut cpu.state;
    for (i, seg) in s.segs.iter_mut().enumerate() {
        // CS: execute/read, accessed; data segments: read/write, accessed.
        let ty = if i == 1 { 0xb } else { 0x3 };
        *seg = Segment { base: 0, limit: 0xffff, selector: 0, attr: ty | attr::S | attr::P };
    }
    s.segs[1].selector = 0xf000;
    s.segs[1].base = 0xffff_0000;
    s.cr0 = 0x6000_0010;
    s.cr2 = 0;
    s.cr3 = 0;
    s.cr4 = 0;
    s.efer = 0;
    s.cpl = 0;
    s.set_rflags(2);
    s.gpr = [0; 16];
    s.gpr[2] = u64::from(signature);
    s.rip = 0xfff0;
    s.gdtr.base = 0;
    s.gdtr.limit = 0xffff;
    s.idtr.base = 0;
    s.idtr.limit = 0xffff;
    cpu.softmmu.flush_tlb();
}

/// The ROM's copy at the top of 4 GiB, read-only, on the MMIO bus (data reads of the image
/// there: SeaBIOS copies itself from it into the shadow RAM). Instruction fetches there are
/// served from the same image by the decoder (`ShadowRom::high_bytes`).
pub struct HighRom(pub Arc<[u8]>);

impl devices::bus::MmioDevice for HighRom {
    fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = usize::try_from(offset + i as u64).ok().and_then(|o| self.0.get(o)).copied().unwrap_or(0xff);
        }
    }
    fn mmio_write(&mut self, _offset: u64, _data: &[u8]) {}
}

/// PCI configuration mechanism #1 ports (CONFIG_ADDRESS, CONFIG_DATA).
const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

impl Cpu {
    /// After an OUT to `port`: when it was a configuration write to the host bridge's PAM
    /// dwords (00:00.0, 0x58 or 0x5C), applies the new PAM registers to the memory map. Called
    /// only on a machine with a BIOS (`self.rom` set). The registers are read back through the
    /// configuration ports, as the guest would, restoring CONFIG_ADDRESS after.
    pub fn after_port_write(&mut self, port: u16) {
        if !(CONFIG_DATA..CONFIG_DATA + 4).contains(&port) || self.rom.is_none() {
            return;
        }
        let address = self.bus.pio_read(CONFIG_ADDRESS, 4);
        // Enable bit, bus 0, device 0, function 0, register 0x58 or 0x5C.
        if address & 0x80ff_fff8 != 0x8000_0058 {
            return;
        }
        let mut regs = [0u8; 8];
        for (i, reg) in [0x58u32, 0x5c].into_iter().enumerate() {
            self.bus.pio_write(CONFIG_ADDRESS, 4, 0x8000_0000 | reg);
            regs[4 * i..4 * i + 4].copy_from_slice(&self.bus.pio_read(CONFIG_DATA, 4).to_le_bytes());
        }
        self.bus.pio_write(CONFIG_ADDRESS, 4, address);
        let mut pam = [0u8; shadow::PAM_REGS];
        pam.copy_from_slice(&regs[1..8]);
        self.apply_pam(pam);
    }

    /// Applies PAM registers: swaps contents, drops code decoded from pages that changed (and
    /// stops the running block if it was one of them), and updates the TLB's write protection.
    pub fn apply_pam(&mut self, pam: [u8; shadow::PAM_REGS]) {
        let Some(rom) = self.rom.as_mut() else { return };
        if rom.pam() == pam {
            return;
        }
        for page in rom.apply(pam, &mut self.ram) {
            if self.softmmu.is_code_page(page) {
                self.softmmu.code_written(page);
            }
        }
        self.softmmu.set_rom_write_protect(rom.write_protect_mask());
        self.softmmu.flush_tlb();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::GuestRam;

    #[test]
    fn reset_state_fetches_from_fffffff0_in_real_mode() {
        let mut cpu = Cpu::new(GuestRam::new(2 << 20).unwrap());
        reset_cpu(&mut cpu);
        assert_eq!(cpu.state.code_bits(), 16);
        assert_eq!(cpu.state.segs[1].base + cpu.state.rip, 0xffff_fff0);
        assert_eq!(cpu.state.cr0, 0x6000_0010);
        assert_eq!(cpu.rflags(), 2);
    }

    /// Guest stores and loads through the TLB (real mode: linear = physical) follow each PAM
    /// mode of the 0xF0000 segment, including after the fast write path was cached.
    #[test]
    fn guest_accesses_follow_pam_through_the_tlb() {
        use crate::flags::W8;
        let mut cpu = Cpu::new(GuestRam::new(2 << 20).unwrap());
        let rom = ShadowRom::new(vec![0xa5u8; 0x2_0000].into(), &mut cpu.ram).unwrap();
        cpu.softmmu.set_rom_write_protect(rom.write_protect_mask());
        cpu.rom = Some(Box::new(rom));
        let mut pam = [0u8; shadow::PAM_REGS];
        let at = 0xf_0010;
        // 00: ROM; the store is lost.
        cpu.write::<W8>(at, 0x11).unwrap();
        assert_eq!(cpu.read::<W8>(at).unwrap(), 0xa5);
        // 10: writes reach the RAM under the ROM; reads still see the ROM.
        pam[0] = 0x20;
        cpu.apply_pam(pam);
        cpu.write::<W8>(at, 0x99).unwrap();
        assert_eq!(cpu.read::<W8>(at).unwrap(), 0xa5);
        // 11: the RAM, with what was written through 10; stores now take the fast path.
        pam[0] = 0x30;
        cpu.apply_pam(pam);
        assert_eq!(cpu.read::<W8>(at).unwrap(), 0x99);
        cpu.write::<W8>(at, 0x77).unwrap();
        cpu.write::<W8>(at, 0x78).unwrap();
        assert_eq!(cpu.read::<W8>(at).unwrap(), 0x78);
        // 01: read-only RAM (SeaBIOS's final state); the cached fast write path must be gone.
        pam[0] = 0x10;
        cpu.apply_pam(pam);
        cpu.write::<W8>(at, 0x55).unwrap();
        assert_eq!(cpu.read::<W8>(at).unwrap(), 0x78);
        // Below 0xC0000 nothing changes.
        cpu.write::<W8>(0xb_0000, 0x42).unwrap();
        assert_eq!(cpu.read::<W8>(0xb_0000).unwrap(), 0x42);
    }
}
