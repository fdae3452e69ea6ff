//! The PC platform chips, one file per chip.
