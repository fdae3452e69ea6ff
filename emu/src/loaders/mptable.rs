//! The Intel MultiProcessor table (MP Specification 1.4, chapter 4): how a Linux kernel without
//! ACPI finds its CPUs, the ISA bus, the IOAPIC and the routing of ISA IRQs to IOAPIC pins.
//! The floating pointer and the configuration table are placed in the EBDA.
//!
//! Routing follows the PC convention (and QEMU's): ISA IRQ 0 (the PIT) goes to IOAPIC pin 2,
//! IRQs 1-15 to the pin of the same number; pin 0 and LINT0 carry the 8259's ExtINT, LINT1 NMI.
//! PCI bus 0 (MP bus ID 0: Linux matches the MP bus ID against the PCI bus number) routes INTA of
//! slots 1-8 to IOAPIC pins 16-23 (level, active low: the PCI bus's default, flags 0); the ISA bus
//! is MP bus 1.

use super::layout;
use super::{put, LoadError};
use crate::cpu::Cpu;

const APIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
const PCI_BUS: u8 = 0;
const ISA_BUS: u8 = 1;

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

/// Builds the MP floating pointer + configuration table for `cpus` processors.
pub fn build(cpus: u8) -> Vec<u8> {
    let table_addr = layout::EBDA + 16;
    let mut entries: Vec<u8> = Vec::new();
    let mut count = 0u16;
    for id in 0..cpus {
        let mut e = vec![0u8, id, APIC_VERSION, 1 | if id == 0 { 2 } else { 0 }];
        e.extend_from_slice(&0x0005_0650u32.to_le_bytes()); // signature: family/model/stepping
        e.extend_from_slice(&0x0000_0201u32.to_le_bytes()); // feature flags: FPU, APIC
        e.extend_from_slice(&[0; 8]);
        entries.extend(e);
        count += 1;
    }
    entries.extend_from_slice(&[1, PCI_BUS]);
    entries.extend_from_slice(b"PCI   ");
    entries.extend_from_slice(&[1, ISA_BUS]);
    entries.extend_from_slice(b"ISA   ");
    count += 2;
    let ioapic_id = cpus;
    entries.extend_from_slice(&[2, ioapic_id, IOAPIC_VERSION, 1]);
    entries.extend_from_slice(&(layout::IOAPIC_BASE as u32).to_le_bytes());
    count += 1;
    for irq in 0u8..16 {
        let (kind, pin) = match irq {
            0 => (0, 2),
            2 => continue, // the cascade; pin 2 carries IRQ 0
            n => (0, n),
        };
        entries.extend_from_slice(&[3, kind, 0, 0, ISA_BUS, irq, ioapic_id, pin]);
        count += 1;
    }
    for slot in 1..=layout::PCI_SLOTS {
        // Source bus IRQ: device number in bits 6:2, INTA (0) in bits 1:0 (MP spec D.3).
        let pin = layout::PCI_IRQ_PIN_BASE + slot - 1;
        entries.extend_from_slice(&[3, 0, 0, 0, PCI_BUS, slot << 2, ioapic_id, pin]);
        count += 1;
    }
    entries.extend_from_slice(&[3, 3, 0, 0, ISA_BUS, 0, ioapic_id, 0]); // ExtINT on pin 0
    entries.extend_from_slice(&[4, 3, 0, 0, ISA_BUS, 0, 0xff, 0]); // ExtINT -> LINT0
    entries.extend_from_slice(&[4, 1, 0, 0, ISA_BUS, 0, 0xff, 1]); // NMI -> LINT1
    count += 3;

    let mut table = Vec::with_capacity(44 + entries.len());
    table.extend_from_slice(b"PCMP");
    table.extend_from_slice(&((44 + entries.len()) as u16).to_le_bytes());
    table.push(4); // spec revision 1.4
    table.push(0); // checksum, below
    table.extend_from_slice(b"STRATA  ");
    table.extend_from_slice(b"STRATA PC   ");
    table.extend_from_slice(&[0; 4]); // OEM table pointer
    table.extend_from_slice(&[0; 2]); // OEM table size
    table.extend_from_slice(&count.to_le_bytes());
    table.extend_from_slice(&(layout::LAPIC_BASE as u32).to_le_bytes());
    table.extend_from_slice(&[0; 4]); // extended table length, checksum, reserved
    table.extend(entries);
    table[7] = checksum(&table);

    let mut fp = Vec::with_capacity(16);
    fp.extend_from_slice(b"_MP_");
    fp.extend_from_slice(&(table_addr as u32).to_le_bytes());
    fp.extend_from_slice(&[1, 4, 0, 0, 0, 0, 0, 0]);
    fp[10] = checksum(&fp);
    fp.extend(table);
    fp
}

/// Writes the MP table into the EBDA.
///
/// # Errors
/// RAM too small to hold it.
pub fn write(cpu: &mut Cpu, cpus: u8) -> Result<(), LoadError> {
    put(cpu, layout::EBDA, &build(cpus), "MP table")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_and_lengths_follow_the_mp_spec() {
        let t = build(1);
        // Floating pointer: 16 bytes summing to 0, pointing right after itself.
        assert_eq!(&t[..4], b"_MP_");
        assert_eq!(t[..16].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        assert_eq!(u32::from_le_bytes(t[4..8].try_into().unwrap()) as u64, layout::EBDA + 16);
        let cfg = &t[16..];
        let len = u16::from_le_bytes([cfg[4], cfg[5]]) as usize;
        assert_eq!(len, cfg.len());
        assert_eq!(cfg.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        // 1 CPU + 2 buses + 1 IOAPIC + 15 ISA routings + 8 PCI slots + ExtINT pin + 2 local = 30.
        assert_eq!(u16::from_le_bytes([cfg[34], cfg[35]]), 30);
    }
}
