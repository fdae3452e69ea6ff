//! The lockstep differential (`conformance::lockstep`): tier 0 against KVM, instruction by
//! instruction, on the Multiboot test kernels (first instruction to the exit port) and on
//! stretches of the Debian guest's boot. KVM is the oracle: on a kvm_pvm host its instruction
//! emulator, a second x86 implementation; on a VMX/SVM host the CPU itself.
//!
//! Skips with a message when /dev/kvm is unusable, gcc cannot build 32-bit code, or the guest
//! (scripts/build-guest.sh -> build/guest/) is missing.

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod kernel_support;
mod user_support;

use conformance::lockstep::{boot, Config, End, Lockstep};
use kernel_support::{build, KERNELS};
use std::path::Path;
use user_support::Scratch;

fn kvm_or_skip() -> bool {
    match conformance::lockstep::kvm_available() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("SKIP: no usable KVM here ({e})");
            false
        }
    }
}

fn spec(kernel: &Path) -> boot::BootSpec<'_> {
    boot::BootSpec { kernel, initrd: None, append: "", mem: 64 << 20 }
}

#[test]
fn test_kernels_agree_with_kvm_from_first_instruction_to_exit_port() {
    if !kvm_or_skip() {
        return;
    }
    let scratch = Scratch::new("lockstep");
    if let Err(e) = build("hello", scratch.path()) {
        eprintln!("SKIP: gcc cannot build 32-bit test kernels here ({e})");
        return;
    }
    let mut failures = Vec::new();
    for name in KERNELS {
        let exe = build(name, scratch.path()).expect("build");
        let mut m = boot::machine(&spec(&exe), Box::new(std::io::sink())).expect("load");
        let cfg = Config { steps: 2_000_000, ..Config::default() };
        let s = Lockstep::new(&mut m).expect("KVM set-up").run(&cfg).expect("KVM run");
        eprintln!("{name}: {}", s.line());
        if let Some(d) = &s.divergence {
            failures.push(format!("{name}:\n{d}"));
        } else if s.end != End::ExitPort(1) || s.compared == 0 {
            failures.push(format!(
                "{name}: ended {:?} after {} compared steps, expected the exit port with status 1",
                s.end, s.compared
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The harness must be able to fail: a register changed on KVM's side after step N is reported
/// at step N, naming that register; a byte changed in KVM's RAM is found by the full check.
#[test]
fn an_injected_difference_is_reported_at_its_step() {
    if !kvm_or_skip() {
        return;
    }
    let scratch = Scratch::new("lockstep-self");
    let Ok(exe) = build("hello", scratch.path()) else {
        eprintln!("SKIP: gcc cannot build 32-bit test kernels here");
        return;
    };
    let mut m = boot::machine(&spec(&exe), Box::new(std::io::sink())).expect("load");
    let cfg = Config { steps: 100_000, ..Config::default() };
    let mut ls = Lockstep::new(&mut m).expect("KVM set-up");
    ls.self_test_corrupt_register(100, 5, 0x10); // RBP (unused by hello) on KVM's side
    let s = ls.run(&cfg).expect("KVM run");
    let d = s.divergence.expect("the corrupted register must be reported");
    assert_eq!(d.step, 100, "{d}");
    assert!(d.diffs.iter().any(|l| l.trim_start().starts_with("rbp:")), "{d}");

    let mut m = boot::machine(&spec(&exe), Box::new(std::io::sink())).expect("load");
    let cfg = Config { steps: 100_000, full_check_every: 50, ..Config::default() };
    let mut ls = Lockstep::new(&mut m).expect("KVM set-up");
    ls.self_test_corrupt_memory(10, 0x20_0000, 0x5a);
    let s = ls.run(&cfg).expect("KVM run");
    let d = s.divergence.expect("the corrupted byte must be reported");
    assert!(d.diffs.iter().any(|l| l.contains("memory 0x200000")), "{d}");
}

/// The Debian guest: 200k instructions from the kernel's entry, and 200k after 20M and 60M
/// tier-0 instructions (in-memory starting points: the machine runs alone up to there).
#[test]
fn debian_boot_stretches_agree_with_kvm() {
    if !kvm_or_skip() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/guest");
    let (kernel, initrd) = (root.join("vmlinuz"), root.join("initramfs-marker.cpio.gz"));
    if !kernel.exists() || !initrd.exists() {
        eprintln!("SKIP: {} missing (scripts/build-guest.sh builds it)", root.display());
        return;
    }
    let mut failures = Vec::new();
    for skip in [0u64, 20_000_000, 60_000_000] {
        let spec = boot::BootSpec { kernel: &kernel, initrd: Some(&initrd), append: "console=ttyS0", mem: 256 << 20 };
        let mut m = boot::machine(&spec, Box::new(std::io::sink())).expect("load");
        if skip > 0 {
            m.run(skip);
        }
        let cfg = Config { steps: 200_000, ..Config::default() };
        let s = Lockstep::new(&mut m).expect("KVM set-up").run(&cfg).expect("KVM run");
        eprintln!("debian from {skip}: {}", s.line());
        if let Some(d) = &s.divergence {
            failures.push(format!("from {skip}:\n{d}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
