//! 32-bit guests (issue 14): Debian's i386 kernels, built with the x86-64 guest's busybox
//! initramfs by `scripts/build-guest.sh --i386` (`build/guest-i386`), boot to the guest's marker
//! through the Linux boot protocol's 32-bit entry.
//!
//! - The `686-pae` kernel (PAE paging, NX) on tier 0 to the marker and the ACPI S5 power-off,
//!   with `quiet loglevel=5`, so the console shows the kernel's warnings and errors: each must be
//!   one QEMU TCG's boot of the same kernel and initramfs prints too (`qemu-system-i386 -M pc`,
//!   the reference run, listed below), or the test fails.
//! - The non-PAE `686` kernel (two-level 32-bit paging with 4 MiB pages) on the JIT where there is
//!   one (its memory templates need 64-bit addressing, so in 32-bit code only the register forms
//!   run inline and the rest calls tier-0 handlers), else on tier 0, likewise.
//! - `--tier kvm`: either boots the guest or refuses in one line; on this project's kvm_pvm host
//!   (no VMX/SVM) it refuses, since kvm_pvm runs no 32-bit guest.
//!
//! Skipped, with a message, when the guest has not been built (scripts/test.sh builds it).

mod kernel_support;
mod user_support;

use kernel_support::run_capturing;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use user_support::{jit_unavailable, kvm_unavailable, strata_bin, Scratch};

/// The kernel warnings QEMU TCG's boot of the same guest prints too (`qemu-system-i386 -M pc
/// -accel tcg -m 256 -kernel K -initrd initramfs-marker.cpio.gz -append "console=ttyS0 quiet
/// loglevel=5"`, QEMU 10.0.2 on this host, for both kernels), matched as substrings. QEMU's run
/// also says "mce: Unable to init MCE device" (its CPU model has MCE banks the PC does not
/// serve) and, for the 686 kernel, "acpi resource window ... not CPU addressable" (its DSDT has
/// a 64-bit window): Strata's platform causes neither, so they are not expected here.
const EXPECTED_WARNINGS: &[&str] = &[
    "tsc: Unable to calibrate against PIT",
    "APIC calibration not consistent with PM-Timer",
    "fail to add MMCONFIG information",
    // The non-PAE kernel on any CPU.
    "L1TF: Kernel not compiled for PAE",
    "reboot: Power down",
];

fn guest_dir() -> Option<PathBuf> {
    let guest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/guest-i386");
    for f in ["vmlinuz", "vmlinuz-686", "initramfs-marker.cpio.gz", "marker"] {
        if !guest.join(f).exists() {
            eprintln!(
                "SKIP: no i386 guest at {} ({f} missing; scripts/build-guest.sh --i386 makes it)",
                guest.display()
            );
            return None;
        }
    }
    Some(guest)
}

/// The kernel's console lines (they start with a `[ seconds]` timestamp) that are not expected.
fn unexpected_kernel_lines(serial: &str) -> Vec<&str> {
    serial.lines().filter(|l| l.starts_with('[')).filter(|l| !EXPECTED_WARNINGS.iter().any(|w| l.contains(w))).collect()
}

/// Boots `kernel` from the i386 guest on `tier`; returns (exit status, serial output, stderr).
fn boot(guest: &Path, kernel: &str, tier: &str, tag: &str) -> (Option<i32>, String, String) {
    let dir = Scratch::new(tag);
    let serial = dir.path().join("serial.txt");
    let marker = std::fs::read_to_string(guest.join("marker")).expect("marker file").trim().to_string();
    let mut cmd = Command::new(strata_bin());
    cmd.args(["run", "--tier", tier, "--mem", "256M", "--kernel"]).arg(guest.join(kernel));
    // --deterministic: the guest's clocks (TSC, PIT, PM timer) follow retired instructions, so
    // its calibrations and the clocksource watchdog see no host load, and the run is
    // reproducible. KVM counts no instructions, so it runs on host time.
    if tier != "kvm" {
        cmd.arg("--deterministic");
    }
    cmd.arg("--initrd").arg(guest.join("initramfs-marker.cpio.gz"));
    cmd.args(["--append", "console=ttyS0 quiet loglevel=5", "--marker", &marker, "--timeline"]);
    cmd.arg("--serial").arg(format!("file:{}", serial.display()));
    // A guard against a hung run, not a timing check (a boot takes 1-3 min on a loaded host).
    run_capturing(cmd, &serial, Duration::from_secs(900))
}

fn check_boot(guest: &Path, kernel: &str, tier: &str, (status, out, err): (Option<i32>, String, String)) {
    let marker = std::fs::read_to_string(guest.join("marker")).expect("marker file").trim().to_string();
    assert!(out.contains(&marker), "{kernel} on {tier}: no marker (exit {status:?}):\n{out}\n{err}");
    assert_eq!(status, Some(0), "{kernel} on {tier}: the power-off should end the run with 0:\n{err}");
    assert!(err.contains("power-off (ACPI S5)"), "{kernel} on {tier}: not powered off through ACPI S5:\n{err}");
    let unexpected = unexpected_kernel_lines(&out);
    assert!(
        unexpected.is_empty(),
        "{kernel} on {tier}: kernel warnings QEMU does not print:\n{}",
        unexpected.join("\n")
    );
}

/// PAE paging, NX, the 32-bit entry, INT 0x80 system calls from the i386 busybox: the
/// `686-pae` kernel on tier 0 to the marker and the ACPI power-off.
#[test]
fn i386_pae_kernel_boots_on_tier0_to_its_marker() {
    let Some(guest) = guest_dir() else { return };
    let run = boot(&guest, "vmlinuz", "interp", "i386-pae");
    check_boot(&guest, "vmlinuz", "interp", run);
}

/// Two-level paging (4 KiB and 4 MiB pages): the non-PAE `686` kernel, on the JIT where there
/// is one.
#[test]
fn i386_non_pae_kernel_boots_to_its_marker() {
    let Some(guest) = guest_dir() else { return };
    let tier = if jit_unavailable().is_none() { "jit" } else { "interp" };
    let run = boot(&guest, "vmlinuz-686", tier, "i386-686");
    check_boot(&guest, "vmlinuz-686", tier, run);
}

/// `--tier kvm` boots the guest to its marker, or refuses in one line (exit 1) before running
/// anything: on a kvm_pvm host (this project's) it refuses, naming the reason.
#[test]
fn i386_kernel_on_kvm_boots_or_is_refused_in_one_line() {
    let Some(guest) = guest_dir() else { return };
    if let Some(why) = kvm_unavailable() {
        eprintln!("SKIP: KVM is not usable here: {why}");
        return;
    }
    let (status, out, err) = boot(&guest, "vmlinuz", "kvm", "i386-kvm");
    if status == Some(1) {
        assert_eq!(err.trim_end().lines().count(), 1, "not a one-line refusal:\n{err}");
        assert!(err.contains("32-bit kernel"), "{err}");
        assert!(out.is_empty(), "the guest ran before the refusal: {out}");
    } else {
        check_boot(&guest, "vmlinuz", "kvm", (status, out, err));
    }
}
