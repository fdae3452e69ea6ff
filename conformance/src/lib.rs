//! conformance: Strata's CPU conformance runs.
//!
//! The instruction-level differential harness lives here: for every instruction form tier 0
//! implements (`emu::decode::table::implemented_codes()`), random instances are generated
//! (`gen.rs`), encoded with iced-x86, and run twice from the same initial state: natively on the
//! host CPU (`native.rs`, x86-64 Linux hosts only) and on the tier-0 interpreter in 64-bit CPL 3
//! user mode (`guest.rs`). The results (GPRs, RIP, the defined arithmetic flags, DF, XMM0-15,
//! MXCSR, the data buffer) are compared (`compare.rs`). Forms that cannot run natively at CPL 3,
//! or differ by design, are listed with the reason in `exclude.rs`.
//!
//! `legacy/` runs the integer forms the same way in 16- and 32-bit code segments (natively in
//! compatibility mode and in an LDT code segment with D=0; tier 0 set up the same way).
//!
//! Left out: x87 register state (not compared yet), YMM/ZMM, MMX, segment registers, port I/O,
//! fault behaviour (the random runs constrain inputs so nothing faults natively).
//! Reference: the SDM Vol. 2 instruction entries; the host CPU is the oracle.

pub mod compare;
pub mod exclude;
pub mod gen;
pub mod guest;
pub mod harness;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub mod jitfuzz;
pub mod legacy;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub mod lockstep;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub mod native;
pub mod state;
