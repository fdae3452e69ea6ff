//! The system-level CPU: what an operating system kernel touches beyond the general-purpose
//! instructions — segment descriptors (`descriptor.rs`), exception and interrupt delivery
//! (`interrupt.rs`), control registers and mode changes (`control.rs`), model-specific
//! registers (`msr.rs`); the CPU models CPUID reports (`cpu_model.rs`).

pub mod control;
pub mod cpu_model;
pub mod descriptor;
pub mod interrupt;
pub mod msr;
pub mod pmu;

pub use interrupt::{Event, TripleFault};
