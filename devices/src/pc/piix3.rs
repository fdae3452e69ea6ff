//! The PIIX3's PCI-to-ISA bridge function (PCI 00:01.0 on an i440FX board), as much of it as a
//! BIOS uses: identification and the PIRQ route control registers.
//!
//! Reference: Intel *82371SB PCI ISA IDE Xcelerator (PIIX3)* datasheet, section 2.2 (function 0
//! configuration space): vendor 8086h, device 7000h, PCICMD reset 0007h, PCISTS 0200h, class
//! 060100h (ISA bridge), header type 80h (multi-function), PIRQRC[A:D] at 60h-63h reset 80h
//! (routing disabled; bits 3:0 the ISA IRQ), TOM at 69h reset 02h, and the other chipset
//! registers 4Ch-FFh as plain read/write storage.
//!
//! Not modelled: the routing itself. Strata's PCI interrupts go to IOAPIC pins 16-23 (the ACPI
//! `_PRT` says so), so what the BIOS writes to PIRQRC is kept and read back only; the other
//! functions (IDE, USB, power management) are absent.

use crate::pc::pci_host::PciFunction;

/// 82371SB ISA bridge device ID.
pub const DEVICE_82371SB_ISA: u16 = 0x7000;
/// PIRQ route control A-D.
pub const PIRQRC: usize = 0x60;

/// The ISA bridge function (see the module doc).
#[derive(Debug, Clone)]
pub struct Piix3Isa {
    config: [u8; 256],
}

impl Default for Piix3Isa {
    fn default() -> Self {
        Self::new()
    }
}

impl Piix3Isa {
    /// The function at reset.
    pub fn new() -> Self {
        let mut config = [0u8; 256];
        config[0..2].copy_from_slice(&crate::pc::pci_host::VENDOR_INTEL.to_le_bytes());
        config[2..4].copy_from_slice(&DEVICE_82371SB_ISA.to_le_bytes());
        config[4..6].copy_from_slice(&0x0007u16.to_le_bytes());
        config[6..8].copy_from_slice(&0x0200u16.to_le_bytes());
        config[0x0a] = 0x01; // subclass: ISA bridge
        config[0x0b] = 0x06; // base class: bridge
        config[0x0e] = 0x80; // multi-function device
        config[PIRQRC..PIRQRC + 4].fill(0x80);
        config[0x69] = 0x02;
        Self { config }
    }

    /// Whether byte `offset` may be written by the guest.
    fn writable(offset: usize) -> bool {
        matches!(offset, 0x04 | 0x05 | 0x4c..=0xff)
    }
}

impl PciFunction for Piix3Isa {
    fn config_read(&mut self, offset: u8) -> u32 {
        let o = usize::from(offset & 0xfc);
        u32::from_le_bytes([self.config[o], self.config[o + 1], self.config[o + 2], self.config[o + 3]])
    }

    fn config_write(&mut self, offset: u8, value: u32, byte_mask: u8) {
        let o = usize::from(offset & 0xfc);
        for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
            if byte_mask & (1 << i) != 0 && Self::writable(o + i) {
                // PIRQRC bits 6:4 are reserved (read 0).
                self.config[o + i] = if (PIRQRC..PIRQRC + 4).contains(&(o + i)) { byte & 0x8f } else { byte };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identification_and_pirq_routing_as_the_datasheet_gives_them() {
        let mut f = Piix3Isa::new();
        assert_eq!(f.config_read(0), 0x7000_8086);
        assert_eq!(f.config_read(8) >> 8, 0x06_0100);
        assert_eq!(f.config_read(0x0c) >> 16 & 0xff, 0x80);
        assert_eq!(f.config_read(0x60), 0x8080_8080);
        // SeaBIOS routes PIRQA-D to IRQs 10, 10, 11, 11.
        f.config_write(0x60, 0x0b0b_0a0a, 0xf);
        assert_eq!(f.config_read(0x60), 0x0b0b_0a0a);
        f.config_write(0x60, 0xffff_ffff, 0x1);
        assert_eq!(f.config_read(0x60) & 0xff, 0x8f);
        // Identification is read-only.
        f.config_write(0, 0, 0xf);
        assert_eq!(f.config_read(0), 0x7000_8086);
    }
}
