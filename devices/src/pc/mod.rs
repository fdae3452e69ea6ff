//! The PC platform chips, one file per chip, each reading like its datasheet.
//!
//! Port-mapped chips implement [`crate::bus::PioDevice`] directly when their ports are contiguous
//! (UART, RTC, PCI host, exit port); chips decoding several separate ranges (PIC with its ELCR, PIT
//! with port 0x61, the i8042's 0x60 and 0x64) offer `read(range, offset)` / `write(range, offset,
//! value)` plus a small `…PortDevice` view per range that shares the chip through `Rc<RefCell<…>>`.
//! The APICs are [`crate::bus::MmioDevice`]s.
//!
//! Snapshots: every chip has a plain-data `…State` (public fields) with `save_state()` and
//! `restore_state()`. Timer chips store `saved_at_ns`, their time when the state was taken; their
//! other times are on the same base, and a restore re-anchors them to the present of whatever clock
//! the restored chip reads (see `time_base.rs`).

pub mod acpi_pm;
pub mod cmos_rtc;
pub mod debugcon;
pub mod exit_port;
pub mod fw_cfg;
pub mod i8042;
pub mod ioapic;
pub mod lapic;
pub mod pci_host;
pub mod pci_testdev;
pub mod pic8259;
pub mod piix3;
pub mod pit8254;
pub mod testdev;
mod time_base;
pub mod uart16550;
