//! benches: guest workloads (`workloads/*.S`, classic emulator micro-benchmarks as tiny static
//! programs) and `guest-bench`, which times each one natively, under `strata user` and under
//! `qemu-x86_64` in the same invocation. Nothing here is used by the emulator itself.

use std::path::Path;
use std::process::Command;

/// The compute workloads in `workloads/*.S`: file stem and what it stresses. The system-call
/// loop is listed apart ([`SYSCALL_WORKLOAD`]): the KVM bench measures it its own way.
pub const COMPUTE_WORKLOADS: &[(&str, &str)] = &[
    ("add_chain", "integer add chain"),
    ("adc_chain", "ADD/ADC multi-precision chain"),
    ("branch", "compare-and-branch heavy"),
    ("ptrchase", "pointer chasing over 64 MiB"),
    ("div64", "64-bit DIV"),
    ("callret", "deep call/return (recursive fib)"),
    ("bytecode", "bytecode interpreter (indirect jumps)"),
    ("smc", "self-modifying code"),
    ("x87", "x87 long-double loop"),
    ("sse2", "SSE2 loop"),
    ("memcpy", "memcpy/memset (REP MOVSB/STOSB)"),
];

/// The system-call loop workload.
pub const SYSCALL_WORKLOAD: (&str, &str) = ("syscall", "syscall loop (getpid)");

/// Median of the samples (NaN for none).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The full path of `name` on PATH, if it is there.
pub fn which(name: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|p| p.join(name)).find(|p| p.is_file()).map(|p| p.display().to_string())
}

/// Builds a workload: `gcc -nostdlib -static` with `include` on the assembler's include path.
pub fn build_workload(src: &Path, exe: &Path, include: &Path) -> bool {
    Command::new("gcc")
        .args(["-nostdlib", "-static", "-o"])
        .arg(exe)
        .arg(src)
        .arg(format!("-Wa,-I{}", include.display()))
        .arg("-Wl,--no-warn-rwx-segments")
        .status()
        .is_ok_and(|s| s.success())
}
