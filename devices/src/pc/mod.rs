//! The PC platform chips, one file per chip.
pub mod uart16550;
