//! The Multiboot test kernels (`conformance/kernels/*.S`) on the virtual PC.
//!
//! Each kernel checks one area of the system-level CPU or a device against the SDM or the
//! device's datasheet, prints `PASS name` / `FAIL name` lines on COM1 and exits through the
//! isa-debug-exit port with its failure count (status 1 = everything passed). The test builds
//! each with `gcc -m32` (skipped, with a message, when gcc cannot build 32-bit code), runs it
//! under `strata run --deterministic`, and requires status 1, no FAIL line and at least one
//! PASS line. When `qemu-system-x86_64` is installed the same kernel also runs there, as an
//! independent implementation: its PASS/FAIL lines must match ours.

mod kernel_support;
mod user_support;

use kernel_support::{build, run_with_limit, verdicts, REAL_MODE};
use std::process::Command;
use std::time::Duration;
use user_support::{strata_bin, Scratch};

use kernel_support::KERNELS;

/// Checks where QEMU's TCG, not the SDM, is the odd one out; QEMU's verdict is ignored for
/// these. QEMU 10.0 silently ignores WRMSR to an MSR it does not implement (its `helper_wrmsr`
/// has no #GP for the default case), where hardware raises #GP(0) (SDM Vol. 2, WRMSR). Its
/// `-M pc` reads unassigned memory as zeros, where a PC reads all ones (a PCI master abort).
/// QEMU 7.2's TCG loads TR and LDTR from a descriptor with a non-canonical 64-bit base, where
/// the SDM (LTR, LLDT) gives #GP(selector) — kvm-unit-tests' `la57` checks that on hardware
/// and QEMU TCG fails it there too.
const QEMU_DEVIATIONS: &[&str] = &[
    "gp_on_unknown_msr",
    "gp_unknown_msr_error_code_zero",
    "por_from_unclaimed_mmio_reads_all_ones",
    "paddb_from_unclaimed_mmio_wraps_to_zero",
    "ltr_of_non_canonical_base_is_gp_selector",
    "lldt_of_non_canonical_base_is_gp_selector",
];

/// Verdicts minus the checks QEMU is known to get wrong.
fn comparable(v: &[String]) -> Vec<String> {
    v.iter().filter(|l| !QEMU_DEVIATIONS.iter().any(|d| l.ends_with(&format!(" {d}")))).cloned().collect()
}

#[test]
fn multiboot_test_kernels_pass_on_strata_and_agree_with_qemu() {
    let scratch = Scratch::new("kernels");
    if let Err(e) = build("hello", scratch.path()) {
        eprintln!("SKIP: gcc cannot build 32-bit test kernels here ({e})");
        return;
    }
    let qemu = user_support::have("qemu-system-x86_64");
    if !qemu {
        eprintln!("note: qemu-system-x86_64 not installed; the QEMU cross-check is skipped");
    }
    let mut failures = Vec::new();
    for name in KERNELS.iter().chain(kernel_support::SOFTWARE_ENGINE_KERNELS) {
        let exe = match build(name, scratch.path()) {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!("{name}: build failed: {e}"));
                continue;
            }
        };
        let serial = scratch.path().join(format!("{name}.serial"));
        let mut cmd = Command::new(strata_bin());
        cmd.args(["run", "--deterministic", "--kernel"])
            .arg(&exe)
            .arg("--serial")
            .arg(format!("file:{}", serial.display()));
        let (status, out) = run_with_limit(cmd, &serial, Duration::from_secs(60));
        let ours = verdicts(&out);
        if status != Some(1) || ours.iter().any(|l| l.starts_with("FAIL")) || (ours.is_empty() && *name != "hello") {
            failures.push(format!("{name}: strata exit {status:?}, serial:\n{out}"));
        }
        if qemu {
            let qserial = scratch.path().join(format!("{name}.qemu"));
            let mut q = Command::new("qemu-system-x86_64");
            q.args(["-M", "pc", "-accel", "tcg", "-display", "none", "-no-reboot", "-m", "256"])
                .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
            if REAL_MODE.contains(name) {
                q.arg("-drive").arg(format!("file={},format=raw,if=floppy", exe.display())).args(["-boot", "a"]);
            } else {
                q.arg("-kernel").arg(&exe);
            }
            q.arg("-serial").arg(format!("file:{}", qserial.display()));
            let (qstatus, qout) = run_with_limit(q, &qserial, Duration::from_secs(60));
            if comparable(&verdicts(&qout)) != comparable(&ours) {
                failures.push(format!("{name}: QEMU (exit {qstatus:?}) disagrees:\nQEMU:\n{qout}\nstrata:\n{out}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
