//! `cargo run --release -p benches --bin kvm-bench -- [--strata PATH] [--runs N] [--syscalls N]`
//!
//! `strata user --tier kvm` against native: builds the compute workloads of
//! `benches/workloads/` (`gcc -nostdlib -static`) and runs each natively and under
//! `strata user --tier kvm`, alternating the two so drift on a shared machine hits both alike;
//! then a system-call loop (getpid, `--syscalls` times, default 20,000) natively, on KVM and
//! under `qemu-x86_64` (when installed). Prints Markdown tables: median wall times and the
//! ratios, all measured in this one run. A KVM run whose exit status differs from the native
//! one is marked FAIL. Busybox sha256sum over 32 MiB runs too when /bin/busybox exists.
//!
//! On a `kvm_pvm` host (no VMX/SVM) each exit to strata costs tens of microseconds, so the
//! system-call loop measures that round trip, not the guest.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use benches::{build_workload, median, which, COMPUTE_WORKLOADS};

/// Wall time and exit status of one run (NaN / None when it could not start).
fn run(cmd: &[String]) -> (f64, Option<i32>) {
    let Some((prog, args)) = cmd.split_first() else { return (f64::NAN, None) };
    let start = Instant::now();
    let status = Command::new(prog).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status();
    let secs = start.elapsed().as_secs_f64();
    match status {
        Ok(s) => (secs, s.code()),
        Err(_) => (f64::NAN, None),
    }
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.3}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_nan() || b.is_nan() || b == 0.0 {
        "-".into()
    } else {
        format!("{:.2}x", a / b)
    }
}

/// Medians of `runs` alternating runs of each command; `fail` when an exit status differs
/// from the first command's.
fn measure(cmds: &[Vec<String>], runs: usize) -> (Vec<f64>, bool) {
    let mut times = vec![Vec::new(); cmds.len()];
    let mut fail = false;
    for _ in 0..runs {
        let mut first = None;
        for (i, c) in cmds.iter().enumerate() {
            let (t, status) = run(c);
            times[i].push(t);
            match first {
                None => first = Some(status),
                Some(s) => fail |= s != status,
            }
        }
    }
    (times.into_iter().map(median).collect(), fail)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let strata = opt("--strata").map(PathBuf::from).unwrap_or_else(|| root.join("target/release/strata"));
    let runs: usize = opt("--runs").and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let syscalls: u64 = opt("--syscalls").and_then(|s| s.parse().ok()).unwrap_or(20_000).max(1);
    if !strata.exists() {
        eprintln!("kvm-bench: {} not found; build it with `cargo build --release -p strata`", strata.display());
        std::process::exit(2);
    }
    let out_dir = std::env::temp_dir().join(format!("strata-kvm-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!("kvm-bench: {}: {e}", out_dir.display());
        std::process::exit(2);
    }
    let wl_dir = root.join("benches/workloads");
    let kvm = |cmd: &[String]| -> Vec<String> {
        let mut c = vec![strata.display().to_string(), "user".into(), "--tier".into(), "kvm".into()];
        c.extend(cmd.iter().cloned());
        c
    };

    println!("| workload | native s | kvm s | kvm/native |");
    println!("|---|---:|---:|---:|");
    let mut cases: Vec<(String, Vec<String>)> = Vec::new();
    for (name, what) in COMPUTE_WORKLOADS {
        let exe = out_dir.join(name);
        if !build_workload(&wl_dir.join(format!("{name}.S")), &exe, &wl_dir) {
            eprintln!("kvm-bench: could not build {name} (is gcc installed?)");
            continue;
        }
        cases.push((format!("{name} ({what})"), vec![exe.display().to_string()]));
    }
    let busybox = Path::new("/bin/busybox");
    let data = out_dir.join("data32m");
    if busybox.exists() {
        let mut x: u64 = 1;
        let mut buf = Vec::with_capacity(32 << 20);
        while buf.len() < 32 << 20 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            buf.extend_from_slice(format!("{:016x} {}\n", x, x % 1000).as_bytes());
        }
        if std::fs::write(&data, &buf).is_ok() {
            let cmd = vec![busybox.display().to_string(), "sha256sum".into(), data.display().to_string()];
            cases.push(("busybox sha256sum, 32 MiB".into(), cmd));
        }
    }
    for (what, cmd) in &cases {
        let (t, fail) = measure(&[cmd.clone(), kvm(cmd)], runs);
        println!(
            "| {what}{} | {} | {} | {} |",
            if fail { " **FAIL**" } else { "" },
            fmt(t[0]),
            fmt(t[1]),
            ratio(t[1], t[0])
        );
    }

    // The system-call loop, with its count chosen here (a KVM exit is slow on kvm_pvm).
    let src = out_dir.join("syscall_loop.S");
    let exe = out_dir.join("syscall_loop");
    let loop_src = format!(
        "# getpid, {syscalls} times (written by kvm-bench)\n.include \"exit.inc\"\n.globl _start\n_start:\n    \
         mov ${syscalls}, %r12\n1:  mov $39, %eax\n    syscall\n    dec %r12\n    jnz 1b\n    xor %edi, %edi\n    EXIT\n"
    );
    if std::fs::write(&src, loop_src).is_err() || !build_workload(&src, &exe, &wl_dir) {
        eprintln!("kvm-bench: could not build the system-call loop");
    } else {
        let cmd = vec![exe.display().to_string()];
        let mut cmds = vec![cmd.clone(), kvm(&cmd)];
        let qemu = which("qemu-x86_64");
        if let Some(q) = &qemu {
            cmds.push(vec![q.clone(), exe.display().to_string()]);
        }
        let (t, fail) = measure(&cmds, runs);
        let q = t.get(2).copied().unwrap_or(f64::NAN);
        let per = |s: f64| if s.is_nan() { "-".into() } else { format!("{:.2}", s * 1e6 / syscalls as f64) };
        println!();
        println!("| syscall loop ({syscalls} getpid) | native | kvm | qemu-x86_64 |");
        println!("|---|---:|---:|---:|");
        println!("| wall s{} | {} | {} | {} |", if fail { " **FAIL**" } else { "" }, fmt(t[0]), fmt(t[1]), fmt(q));
        println!("| us per call (incl. start-up) | {} | {} | {} |", per(t[0]), per(t[1]), per(q));
        println!("| kvm / that | {} | 1.00x | {} |", ratio(t[1], t[0]), ratio(t[1], q));
    }
    let _ = std::fs::remove_dir_all(&out_dir);
}
