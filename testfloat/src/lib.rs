//! testfloat: checks x87float against Berkeley TestFloat vectors (`vectors`, `runner`) and
//! against the host's own x87 (`host`, x86-64 only; used by the property tests, the
//! transcendental report and the benchmarks).
pub mod checksums;
pub mod runner;
pub mod vectors;

#[cfg(target_arch = "x86_64")]
pub mod host;
pub mod transcendental_report;
