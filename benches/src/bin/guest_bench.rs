//! `cargo run --release -p benches --bin guest-bench -- [--strata PATH] [--runs N] [--only NAME]`
//!
//! Builds every workload in `benches/workloads/` with `gcc -nostdlib -static`, then runs each
//! natively, under `strata user --stats` (tier 0), under `strata user --stats --tier jit` (on
//! x86-64 hosts; `--no-jit` leaves it out) and under `qemu-x86_64` (when installed),
//! alternating them so drift on a shared machine hits them alike, and prints a Markdown table:
//! median wall time, ratios to native and to QEMU, and guest MIPS (strata counts retired
//! instructions). A run whose exit status differs from the native one is marked FAIL.
//! Busybox workloads (sha256sum, gzip over 32 MiB) run when /bin/busybox is a static binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use benches::{build_workload, median, which, COMPUTE_WORKLOADS, SYSCALL_WORKLOAD};

struct Timing {
    secs: f64,
    status: Option<i32>,
    retired: Option<u64>,
}

fn run(cmd: &[String], stdin_file: Option<&Path>) -> Timing {
    let mut c = Command::new(&cmd[0]);
    c.args(&cmd[1..]).stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(f) = stdin_file {
        match std::fs::File::open(f) {
            Ok(file) => {
                c.stdin(file);
            }
            Err(_) => return Timing { secs: f64::NAN, status: None, retired: None },
        }
    }
    let start = Instant::now();
    let out = c.output();
    let secs = start.elapsed().as_secs_f64();
    match out {
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            // strata --stats prints "strata: N instructions in ..."
            let retired = err
                .lines()
                .rev()
                .filter_map(|l| l.strip_prefix("strata: "))
                .filter_map(|l| l.split_once(" instructions in "))
                .find_map(|(n, _)| n.parse().ok());
            Timing { secs, status: o.status.code(), retired }
        }
        Err(_) => Timing { secs: f64::NAN, status: None, retired: None },
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let strata = opt("--strata").map(PathBuf::from).unwrap_or_else(|| root.join("target/release/strata"));
    let runs: usize = opt("--runs").and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
    let only = opt("--only");
    let jit = cfg!(target_arch = "x86_64") && !args.iter().any(|a| a == "--no-jit");
    if !strata.exists() {
        eprintln!("guest-bench: {} not found; build it with `cargo build --release -p strata`", strata.display());
        std::process::exit(2);
    }
    let qemu = which("qemu-x86_64");
    let out_dir = std::env::temp_dir().join(format!("strata-guest-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!("guest-bench: {}: {e}", out_dir.display());
        std::process::exit(2);
    }
    let wl_dir = root.join("benches/workloads");
    let mut cases: Vec<(String, String, Vec<String>, Option<PathBuf>)> = Vec::new();
    for (name, what) in COMPUTE_WORKLOADS.iter().chain([&SYSCALL_WORKLOAD]) {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let exe = out_dir.join(name);
        if !build_workload(&wl_dir.join(format!("{name}.S")), &exe, &wl_dir) {
            eprintln!("guest-bench: could not build {name} (is gcc installed?)");
            continue;
        }
        cases.push((name.to_string(), what.to_string(), vec![exe.display().to_string()], None));
    }
    let busybox = Path::new("/bin/busybox");
    if busybox.exists() && only.as_deref().is_none_or(|o| o.starts_with("busybox")) {
        let data = out_dir.join("data32m");
        // Deterministic, compressible-but-not-trivial content: an LCG's bytes in text lines.
        let mut x: u64 = 1;
        let mut buf = Vec::with_capacity(32 << 20);
        while buf.len() < 32 << 20 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            buf.extend_from_slice(format!("{:016x} {}\n", x, x % 1000).as_bytes());
        }
        if std::fs::write(&data, &buf).is_ok() {
            let d = data.display().to_string();
            cases.push((
                "busybox_sha256".into(),
                "busybox sha256sum, 32 MiB".into(),
                vec![busybox.display().to_string(), "sha256sum".into(), d.clone()],
                None,
            ));
            cases.push((
                "busybox_gzip".into(),
                "busybox gzip -c, 32 MiB".into(),
                vec![busybox.display().to_string(), "gzip".into(), "-c".into(), d],
                None,
            ));
        }
    }
    println!("| workload | native s | tier 0 s | jit s | qemu s | tier 0/native | jit/native | tier 0/qemu | jit/qemu | tier 0 MIPS | jit MIPS |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, what, cmd, stdin) in &cases {
        let mut nat = Vec::new();
        let mut st = Vec::new();
        let mut qe = Vec::new();
        let mut jt = Vec::new();
        let mut retired = None;
        let mut jit_retired = None;
        let mut fail = false;
        for _ in 0..runs {
            let n = run(cmd, stdin.as_deref());
            let mut scmd = vec![strata.display().to_string(), "user".into(), "--stats".into()];
            scmd.extend(cmd.iter().cloned());
            let s = run(&scmd, stdin.as_deref());
            fail |= s.status != n.status;
            retired = s.retired.or(retired);
            nat.push(n.secs);
            st.push(s.secs);
            if jit {
                let mut jcmd =
                    vec![strata.display().to_string(), "user".into(), "--stats".into(), "--tier".into(), "jit".into()];
                jcmd.extend(cmd.iter().cloned());
                let j = run(&jcmd, stdin.as_deref());
                fail |= j.status != n.status;
                jit_retired = j.retired.or(jit_retired);
                jt.push(j.secs);
            }
            if let Some(q) = &qemu {
                let mut qcmd = vec![q.clone()];
                qcmd.extend(cmd.iter().cloned());
                let r = run(&qcmd, stdin.as_deref());
                qe.push(r.secs);
            }
        }
        let (n, s) = (median(nat), median(st));
        let q = if qe.is_empty() { f64::NAN } else { median(qe) };
        let j = if jt.is_empty() { f64::NAN } else { median(jt) };
        let mips = retired.map(|r| format!("{:.0}", r as f64 / s / 1e6)).unwrap_or_else(|| "-".into());
        let jit_mips = jit_retired.map(|r| format!("{:.0}", r as f64 / j / 1e6)).unwrap_or_else(|| "-".into());
        let fmt = |v: f64| if v.is_nan() { "-".to_string() } else { format!("{v:.3}") };
        let ratio = |a: f64, b: f64| if a.is_nan() || b.is_nan() { "-".to_string() } else { format!("{:.1}x", a / b) };
        println!(
            "| {name} ({what}){} | {} | {} | {} | {} | {} | {} | {} | {} | {mips} | {jit_mips} |",
            if fail { " **FAIL**" } else { "" },
            fmt(n),
            fmt(s),
            fmt(j),
            fmt(q),
            ratio(s, n),
            ratio(j, n),
            ratio(s, q),
            ratio(j, q)
        );
    }
    let _ = std::fs::remove_dir_all(&out_dir);
}
