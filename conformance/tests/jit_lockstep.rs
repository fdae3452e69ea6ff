//! The JIT against tier 0 in lockstep (`conformance::lockstep::jit`): the same guest run on both,
//! compared at pseudo-random instruction boundaries (registers, all flags, x87/SSE, MSRs, retired
//! count, serial output; all of RAM every few hundred boundaries and at the end). Over the
//! Multiboot test kernels to their exit port, the guest-bench workloads and part of the program
//! corpus in user mode, and stretches of the Debian guest's boot. Tier 0 is the reference (it is
//! checked against the host CPU and KVM by the other tests).
//!
//! Skips with a message where the host has no JIT (x86-64 Linux only), gcc cannot build the
//! programs, or the guest (scripts/build-guest.sh -> build/guest/) is missing.

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod kernel_support;
mod user_support;

use conformance::lockstep::boot::BootSpec;
use conformance::lockstep::jit::{self, Config, MachineLockstep};
use conformance::lockstep::End;
use emu::machine::RunEnd;
use kernel_support::{build, KERNELS};
use std::path::{Path, PathBuf};
use std::process::Command;
use user_support::{jit_unavailable, Scratch};

fn skip() -> bool {
    if let Some(why) = jit_unavailable() {
        eprintln!("SKIP: {why}");
        return true;
    }
    false
}

fn kernel_spec(kernel: &Path) -> BootSpec<'_> {
    BootSpec { kernel, initrd: None, append: "", mem: 64 << 20 }
}

/// Every Multiboot test kernel from its first instruction to the exit port, every block
/// translated at its first entry, at two stretch lengths (boundaries inside blocks and loops).
#[test]
fn test_kernels_on_the_jit_match_tier0_at_every_boundary() {
    if skip() {
        return;
    }
    let scratch = Scratch::new("jit-lockstep");
    if let Err(e) = build("hello", scratch.path()) {
        eprintln!("SKIP: gcc cannot build 32-bit test kernels here ({e})");
        return;
    }
    let mut failures = Vec::new();
    for name in KERNELS {
        let exe = build(name, scratch.path()).expect("build");
        for (mean, threshold) in [(300, 1), (4_000, 2)] {
            let mut ls = MachineLockstep::new(&kernel_spec(&exe), threshold).expect("set-up");
            let cfg =
                Config { instructions: 20_000_000, mean_stretch: mean, full_check_every: 100, threshold, seed: 7 };
            let s = ls.run(&cfg);
            eprintln!("{name} (stretch {mean}): {}", s.line());
            if let Some(d) = &s.divergence {
                failures.push(format!("{name} (stretch {mean}):\n{d}"));
            } else if s.end != End::ExitPort(1) || s.boundaries == 0 {
                failures.push(format!(
                    "{name}: ended {:?} after {} boundaries, expected the exit port",
                    s.end, s.boundaries
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The harness must be able to fail: a register changed on the JIT's side at boundary N is
/// reported at boundary N, naming that register; a byte changed in its RAM by the next full
/// check.
#[test]
fn an_injected_difference_is_reported_at_its_boundary() {
    if skip() {
        return;
    }
    let scratch = Scratch::new("jit-lockstep-self");
    let Ok(exe) = build("interrupts", scratch.path()) else {
        eprintln!("SKIP: gcc cannot build 32-bit test kernels here");
        return;
    };
    let cfg = Config { mean_stretch: 100, full_check_every: 10, ..Config::default() };
    let mut ls = MachineLockstep::new(&kernel_spec(&exe), 1).expect("set-up");
    ls.self_test_corrupt_register(40, 5, 0x10); // RBP
    let d = ls.run(&cfg).divergence.expect("the corrupted register must be reported");
    assert_eq!(d.boundary, 40, "{d}");
    assert!(d.diffs.iter().any(|l| l.trim_start().starts_with("rbp:") && l.contains("jit")), "{d}");

    let mut ls = MachineLockstep::new(&kernel_spec(&exe), 1).expect("set-up");
    ls.self_test_corrupt_memory(22, 0x30_0000, 0x5a);
    let d = ls.run(&cfg).divergence.expect("the corrupted byte must be reported");
    assert_eq!(d.boundary, 29, "the full check after boundary 22 is at 29: {d}");
    assert!(d.diffs.iter().any(|l| l.contains("memory 0x300000")), "{d}");
}

fn workloads_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/workloads")
}

/// Builds a guest-bench workload as guest-bench does.
fn build_workload(name: &str, out: &Path) -> Option<PathBuf> {
    let dir = workloads_dir();
    let exe = out.join(name);
    let ok = Command::new("gcc")
        .args(["-nostdlib", "-static", "-o"])
        .arg(&exe)
        .arg(dir.join(format!("{name}.S")))
        .arg(format!("-Wa,-I{}", dir.display()))
        .arg("-Wl,--no-warn-rwx-segments")
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(exe)
}

/// Builds a corpus program (`conformance/programs/NAME.c`) with `cc -O2 -static`.
fn build_program(cc: &str, name: &str, out: &Path) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs").join(format!("{name}.c"));
    let exe = out.join(format!("{name}-{cc}"));
    let ok = Command::new(cc)
        .args(["-O2", "-static", "-o"])
        .arg(&exe)
        .arg(src)
        .arg("-lm")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(exe)
}

fn user_lockstep(exe: &Path, cfg: &Config, failures: &mut Vec<String>) {
    let path = exe.display().to_string();
    let argv = [path.clone(), "alpha".into(), "beta gamma".into(), String::new()];
    let s = jit::user::run(&path, &argv, cfg).expect("set-up");
    let name = exe.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    eprintln!("{name}: {}", s.line());
    if let Some(d) = &s.divergence {
        failures.push(format!("{name}:\n{d}"));
    } else if s.boundaries == 0 {
        failures.push(format!("{name}: nothing ran ({:?})", s.end));
    }
}

/// The guest-bench workloads (their first 4 M instructions each: every loop runs many times
/// in translated code) and the deterministic programs of the corpus (to their end or 20 M instructions), on tier 0
/// and the JIT at threshold 1.
#[test]
fn user_programs_on_the_jit_match_tier0_at_every_boundary() {
    if skip() {
        return;
    }
    let scratch = Scratch::new("jit-lockstep-user");
    if build_workload("add_chain", scratch.path()).is_none() {
        eprintln!("SKIP: gcc cannot build the workloads here");
        return;
    }
    let mut failures = Vec::new();
    let mut names: Vec<&str> = benches_workloads();
    names.sort();
    for name in names {
        let exe = build_workload(name, scratch.path()).expect("workload builds");
        let cfg = Config { instructions: 4_000_000, mean_stretch: 3_000, full_check_every: 100, ..Config::default() };
        user_lockstep(&exe, &cfg, &mut failures);
    }
    let corpus = ["integers", "strings", "sorting", "printf", "malloc_stress", "setjmp", "float_math", "jit"];
    for cc in ["gcc", "musl-gcc"] {
        if !user_support::have(cc) {
            eprintln!("skipping the corpus built with {cc}: not installed");
            continue;
        }
        for name in corpus {
            let exe = build_program(cc, name, scratch.path()).expect("corpus program builds");
            let cfg =
                Config { instructions: 20_000_000, mean_stretch: 2_000, full_check_every: 200, ..Config::default() };
            user_lockstep(&exe, &cfg, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The workload sources in benches/workloads (every `*.S`).
fn benches_workloads() -> Vec<&'static str> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(workloads_dir()).expect("benches/workloads").flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "S") {
            if let Some(stem) = p.file_stem() {
                v.push(&*Box::leak(stem.to_string_lossy().into_owned().into_boxed_str()));
            }
        }
    }
    v
}

/// The Debian guest, every block translated after two entries, compared every 100,000
/// instructions on average (all of RAM every 2,000 boundaries): its first 200 M instructions from
/// the kernel's entry (the XZ decompressor), and from 4.8 G instructions (the kernel proper:
/// early set-up, drivers, the initramfs) to its power-off after the marker. The machine gets
/// to 4.8 G on the JIT alone and is saved; both sides start from that snapshot.
/// `STRATA_JIT_LOCKSTEP_WHOLE_BOOT=1` compares the whole boot from the first instruction instead
/// (about 6.2 G instructions; minutes).
#[test]
fn debian_boot_on_the_jit_matches_tier0() {
    if skip() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/guest");
    let (kernel, initrd) = (root.join("vmlinuz"), root.join("initramfs-marker.cpio.gz"));
    if !kernel.exists() || !initrd.exists() {
        eprintln!("SKIP: {} missing (scripts/build-guest.sh builds it)", root.display());
        return;
    }
    let marker = std::fs::read_to_string(root.join("marker")).expect("marker file").trim().to_string();
    let spec = BootSpec { kernel: &kernel, initrd: Some(&initrd), append: "console=ttyS0 quiet", mem: 256 << 20 };
    let whole = std::env::var_os("STRATA_JIT_LOCKSTEP_WHOLE_BOOT").is_some();
    let cfg = Config {
        instructions: if whole { u64::MAX } else { 200_000_000 },
        mean_stretch: 100_000,
        full_check_every: 2_000,
        threshold: 2,
        seed: 3,
    };
    let mut ls = MachineLockstep::new(&spec, 2).expect("set-up");
    let s = ls.run(&cfg);
    eprintln!("debian from its entry: {}", s.line());
    if let Some(d) = &s.divergence {
        panic!("{d}\nserial so far:\n{}", ls.serial());
    }
    if !whole {
        let scratch = Scratch::new("jit-lockstep-debian");
        let snap = scratch.path().join("at-4.8G.snap");
        let end = MachineLockstep::snapshot_on_the_jit(&spec, 4_800_000_000, &snap).expect("snapshot");
        assert_eq!(end, RunEnd::Limit, "the boot ended before 4.8 G instructions");
        ls = MachineLockstep::from_snapshot(&snap, 2).expect("restore");
        let s = ls.run(&Config { instructions: u64::MAX, ..cfg });
        eprintln!("debian from 4.8 G: {}", s.line());
        if let Some(d) = &s.divergence {
            panic!("{d}\nserial so far:\n{}", ls.serial());
        }
    }
    assert!(ls.serial().contains(&marker), "no marker:\n{}", ls.serial());
}
