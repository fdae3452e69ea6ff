//! The PC platform chips, one file per chip.
pub mod cmos_rtc;
pub mod i8042;
pub mod ioapic;
pub mod lapic;
pub mod pic8259;
pub mod pit8254;
pub mod uart16550;
