//! `cargo run --release -p benches --bin boot-bench -- [--guest DIR] [--strata PATH] [--runs N] [--tier kvm]`
//!
//! Boots the test guest (`scripts/build-guest.sh`: Debian's kernel + the busybox initramfs whose
//! /init prints a marker and powers off) N times under `strata run` and under
//! `qemu-system-x86_64 -accel tcg -M pc` in alternation, with the same kernel, initramfs and
//! command line, and prints the median time to the marker line and to exit for each, and their
//! ratio. On x86-64 hosts it also boots under `strata run --tier jit` in the same rounds
//! (`--no-jit` leaves that out). With `--tier kvm` it compares `strata run --tier kvm` with
//! `qemu-system-x86_64 -accel kvm -M microvm` instead; that needs a host with hardware
//! virtualization (VMX/SVM): on a `kvm_pvm` host an unmodified kernel does not boot under KVM
//! (QEMU's neither), and the bench says so and exits with status 2. Bochs is not run: it cannot boot a bzImage directly (it needs a disk and a boot
//! loader), so its figures in the README come from the measurements.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const APPEND: &str = "console=ttyS0 quiet";

/// Runs `cmd` with the guest's serial console on its stdout; returns (time to marker, time to
/// exit), or None if it failed or timed out.
fn boot(mut cmd: Command, marker: &str, limit: Duration) -> Option<(f64, f64)> {
    let start = Instant::now();
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().ok()?;
    let out = child.stdout.take()?;
    let marker = marker.to_string();
    let reader = std::thread::spawn(move || {
        let mut seen = None;
        for line in BufReader::new(out).split(b'\n').map_while(Result::ok) {
            if seen.is_none() && String::from_utf8_lossy(&line).contains(&marker) {
                seen = Some(start.elapsed().as_secs_f64());
            }
        }
        seen
    });
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let total = start.elapsed().as_secs_f64();
    let marker_at = reader.join().ok()??;
    Some((marker_at, total))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let guest = opt("--guest").map(PathBuf::from).unwrap_or_else(|| root.join("build/guest"));
    let strata = opt("--strata").map(PathBuf::from).unwrap_or_else(|| root.join("target/release/strata"));
    let runs: usize = opt("--runs").and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let kvm = match opt("--tier").as_deref() {
        None | Some("interp") => false,
        Some("kvm") => true,
        Some(t) => {
            eprintln!("boot-bench: --tier {t}: use interp or kvm");
            std::process::exit(2);
        }
    };
    if kvm {
        if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
            eprintln!("boot-bench: --tier kvm cannot run here: /dev/kvm: {e}");
            std::process::exit(2);
        }
        if std::path::Path::new("/sys/module/kvm_pvm").exists() {
            eprintln!(
                "boot-bench: --tier kvm cannot run here: this host's KVM is kvm_pvm (no VMX/SVM), where guest \
                 kernel code is emulated instruction by instruction and an unmodified Linux kernel does not \
                 boot (QEMU's neither). Run it on a host with hardware virtualization."
            );
            std::process::exit(2);
        }
    }
    let kernel = guest.join("vmlinuz");
    let initrd = guest.join("initramfs-marker.cpio.gz");
    let Ok(marker) = std::fs::read_to_string(guest.join("marker")) else {
        eprintln!("boot-bench: no guest in {} (run scripts/build-guest.sh {})", guest.display(), guest.display());
        std::process::exit(2);
    };
    let marker = marker.trim().to_string();
    let qemu = Command::new("qemu-system-x86_64").arg("--version").output().is_ok();
    let limit = Duration::from_secs(1800);
    let (mut s_m, mut s_t, mut q_m, mut q_t) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut j_m, mut j_t) = (Vec::new(), Vec::new());
    let jit = !kvm && cfg!(target_arch = "x86_64") && !args.iter().any(|a| a == "--no-jit");
    for i in 0..runs {
        if jit {
            let mut c = Command::new(&strata);
            c.args(["run", "--mem", "256M", "--append", APPEND, "--tier", "jit", "--kernel"]).arg(&kernel);
            c.arg("--initrd").arg(&initrd);
            match boot(c, &marker, limit) {
                Some((m, t)) => {
                    j_m.push(m);
                    j_t.push(t);
                }
                None => eprintln!("boot-bench: strata --tier jit run {i} failed"),
            }
        }
        let mut c = Command::new(&strata);
        c.args(["run", "--mem", "256M", "--append", APPEND, "--kernel"]).arg(&kernel).arg("--initrd").arg(&initrd);
        if kvm {
            c.args(["--tier", "kvm"]);
        }
        match boot(c, &marker, limit) {
            Some((m, t)) => {
                s_m.push(m);
                s_t.push(t);
            }
            None => eprintln!("boot-bench: strata run {i} failed"),
        }
        if qemu {
            let mut c = Command::new("qemu-system-x86_64");
            if kvm {
                c.args(["-accel", "kvm", "-cpu", "host", "-M", "microvm,isa-serial=on,rtc=on"])
                    .args(["-nodefaults", "-no-user-config"]);
            } else {
                c.args(["-accel", "tcg", "-M", "pc"]);
            }
            c.args(["-m", "256", "-display", "none", "-no-reboot", "-serial", "stdio"])
                .arg("-kernel")
                .arg(&kernel)
                .arg("-initrd")
                .arg(&initrd)
                .args(["-append", APPEND]);
            match boot(c, &marker, limit) {
                Some((m, t)) => {
                    q_m.push(m);
                    q_t.push(t);
                }
                None => eprintln!("boot-bench: qemu run {i} failed"),
            }
        }
    }
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.2}"));
    let (sm, st, qm, qt) = (median(s_m), median(s_t), median(q_m), median(q_t));
    println!("| engine | to marker (s, median of {runs}) | to exit (s) |");
    println!("|---|---:|---:|");
    let (ours, theirs) = if kvm {
        ("strata --tier kvm", "qemu-system-x86_64 -accel kvm -M microvm")
    } else {
        ("strata tier 0", "qemu-system-x86_64 -accel tcg -M pc")
    };
    println!("| {ours} | {} | {} |", f(sm), f(st));
    let jm = median(j_m);
    if jit {
        println!("| strata jit | {} | {} |", f(jm), f(median(j_t)));
    }
    if qemu {
        println!("| {theirs} | {} | {} |", f(qm), f(qt));
        if let (Some(a), Some(b)) = (sm, qm) {
            println!("\nstrata / QEMU (to marker): {:.1}x", a / b);
        }
        if let (Some(a), Some(b)) = (jm, qm) {
            println!("strata jit / QEMU (to marker): {:.1}x", a / b);
        }
    } else {
        println!("\nqemu-system-x86_64 not installed: no comparison");
    }
}
