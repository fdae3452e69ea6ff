//! The guest physical memory map of Strata's PC, as documented constants (the place to look
//! for "where does the loader put X"). Below 1 MiB follows the PC conventions Linux expects
//! (EBDA, VGA hole, BIOS area); the MMIO hole for the APICs sits below 4 GiB.

/// Boot GDT (null, unused, 64-bit code 0x10, data 0x18), as Linux's boot protocol names them.
pub const BOOT_GDT: u64 = 0x500;
/// Linux boot_params ("zero page").
pub const ZERO_PAGE: u64 = 0x7000;
/// Identity page tables for the 64-bit entry: PML4, PDPT, then four page directories (4 GiB in
/// 2 MiB pages).
pub const PML4: u64 = 0x9000;
pub const PDPT: u64 = 0xa000;
pub const PD0: u64 = 0xb000;
/// The kernel command line.
pub const CMDLINE: u64 = 0x2_0000;
pub const CMDLINE_MAX: usize = 0x1_0000;
/// Multiboot information structure and its memory map.
pub const MULTIBOOT_INFO: u64 = 0x3_0000;
/// Initial stack for Multiboot kernels (they set their own; this one is just valid).
pub const BOOT_STACK: u64 = 0x8_0000;
/// Start of the Extended BIOS Data Area: the MP floating pointer and table live here.
pub const EBDA: u64 = 0x9_fc00;
/// Top of conventional memory (640 KiB).
pub const LOW_RAM_END: u64 = 0xa_0000;
/// Where the protected-mode kernel is loaded (1 MiB).
pub const KERNEL_LOAD: u64 = 0x10_0000;
/// Start of the 32-bit MMIO hole (IOAPIC, LAPIC, PCI BARs); RAM above this is not supported yet.
pub const MMIO_HOLE: u64 = 0xc000_0000;
pub const IOAPIC_BASE: u64 = 0xfec0_0000;
/// The PCI memory window (BARs), from the MMIO hole's start to the IOAPIC.
pub const PCI_MMIO_BASE: u64 = MMIO_HOLE;
pub const PCI_MMIO_LEN: u64 = IOAPIC_BASE - MMIO_HOLE;
/// PCI devices sit at slots 1..=PCI_SLOTS of bus 0; slot n's INTA is IOAPIC pin
/// `PCI_IRQ_PIN_BASE + n - 1` (pins 16-23, above the ISA IRQs, as on QEMU's PC).
pub const PCI_SLOTS: u8 = 8;
pub const PCI_IRQ_PIN_BASE: u8 = 16;
/// Where the machine places slot n's BAR 0 (n 1-based), as firmware would: 64 KiB apart.
pub fn pci_bar0(slot: u8) -> u64 {
    PCI_MMIO_BASE + u64::from(slot) * 0x1_0000
}
pub const LAPIC_BASE: u64 = 0xfee0_0000;

/// E820 memory types.
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;

/// The E820 map for `ram` bytes of RAM: conventional memory, the reserved legacy hole, RAM
/// from 1 MiB up.
pub fn e820_map(ram: u64) -> Vec<(u64, u64, u32)> {
    let top = ram.min(MMIO_HOLE);
    vec![
        (0, EBDA, E820_RAM),
        (EBDA, 0x10_0000 - EBDA, E820_RESERVED),
        (KERNEL_LOAD, top.saturating_sub(KERNEL_LOAD), E820_RAM),
        (IOAPIC_BASE, 0x1000, E820_RESERVED),
        (LAPIC_BASE, 0x1000, E820_RESERVED),
    ]
}
