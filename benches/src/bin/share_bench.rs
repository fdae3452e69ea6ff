//! `share-bench`: shared-folder (virtio-9p) performance in the guest, Strata against QEMU TCG, in
//! one invocation.
//!
//! Usage: `cargo build --profile ci -p strata -p benches && target/ci/share-bench --strata
//! target/ci/strata [--guest DIR] [--files N] [--big-mib M] [--runs R] [--tiers interp,jit]
//! [--no-qemu]` (defaults: 20,000 files, 256 MiB, 1 run, both tiers on x86-64).
//!
//! The folder: N files of 1-8 KiB (pseudo-random sizes and bytes) in directories of 1,000, and
//! one file of M MiB. The test guest (`scripts/build-guest.sh`: its /init mounts the tag `share`
//! with `msize=524288`) boots with the same kernel and initramfs, plus a `/strata-run` that times
//! on the guest's clock (`/proc/uptime`): `tar cf - small > /dev/null` over the N files, `find
//! small | xargs stat` over them, the M MiB file read with `dd bs=1M` and a new M MiB file
//! written with `dd bs=1M conv=fsync`. Under `strata run --share DIR,tag=share` (each tier asked
//! for) and under `qemu-system-x86_64 -accel tcg -M pc -virtfs
//! local,path=DIR,mount_tag=share,security_model=none`, R times each in alternation; medians
//! and Strata / QEMU time ratios are printed (below 1: Strata is faster), with the host doing the
//! first two on the same folder (busybox, for scale).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const APPEND: &str = "console=ttyS0 quiet";
const MIB: usize = 1 << 20;
/// What the guest does (`@NAME@` values are filled in by [`guest_script`]).
const SCRIPT: &str = r#"#!/bin/sh
t() { read -r up _ < /proc/uptime; echo "$up"; }
cd /mnt/share || { echo "SHAREBENCH no share"; exit 0; }
n=$(busybox find small -type f | busybox wc -l)
[ "$n" = "@FILES@" ] || echo "SHAREBENCH wrong file count $n"
a=$(t)
busybox tar cf - small > /dev/null
b=$(t)
busybox find small | busybox xargs busybox stat > /dev/null
c=$(t)
busybox dd if=big of=/dev/null bs=1048576 2>/dev/null
d=$(t)
busybox dd if=/dev/zero of=written bs=1048576 count=@MIB@ conv=fsync 2>/dev/null
e=$(t)
busybox rm -f written
echo "SHAREBENCH times $a $b $c $d $e"
"#;

/// One guest run's seconds: tar, find + stat, read, write.
type Figures = [f64; 4];
const COLUMNS: [&str; 4] = ["tar (s)", "find + stat (s)", "read (s)", "write (s)"];

fn fail(msg: &str) -> ! {
    eprintln!("share-bench: {msg}");
    std::process::exit(2);
}

fn guest_script(files: usize, mib: usize) -> String {
    SCRIPT.replace("@FILES@", &files.to_string()).replace("@MIB@", &mib.to_string())
}

/// Runs a guest with its console on stdout; the SHAREBENCH line's figures.
fn guest_run(mut cmd: Command, limit: Duration) -> Option<Figures> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().ok()?;
    let out = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.trim().strip_prefix("SHAREBENCH ").map(str::to_string))
            .inspect(|l| {
                if !l.starts_with("times ") {
                    eprintln!("share-bench: guest: {l}");
                }
            })
            .find(|l| l.starts_with("times "))
    });
    let start = Instant::now();
    while child.try_wait().ok()?.is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let line = reader.join().ok()??;
    // Five timestamps: the four intervals between them.
    let t: Vec<f64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    (t.len() == 5).then(|| [t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3]])
}

/// The shared folder: `files` small files in directories of 1,000 and one `mib` MiB file.
fn make_tree(share: &Path, files: usize, mib: usize) -> std::io::Result<()> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..files {
        let dir = share.join(format!("small/d{:03}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir)?;
        }
        let len = 1024 + (next() % (7 * 1024 + 1)) as usize;
        let data: Vec<u8> = (0..len.div_ceil(8)).flat_map(|_| next().to_le_bytes()).take(len).collect();
        std::fs::write(dir.join(format!("f{i:05}")), data)?;
    }
    let mut big = vec![0u8; mib * MIB];
    for chunk in big.chunks_mut(8) {
        chunk.copy_from_slice(&next().to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(share.join("big"), big)
}

/// The host doing tar and find + stat on the folder with busybox (seconds), for scale.
fn host_figures(share: &Path) -> Option<(f64, f64)> {
    let time = |script: &str| -> Option<f64> {
        let t = Instant::now();
        let ok = Command::new("/bin/busybox")
            .args(["sh", "-c", script])
            .current_dir(share)
            .stdout(Stdio::null())
            .status()
            .ok()?
            .success();
        ok.then(|| t.elapsed().as_secs_f64())
    };
    Some((
        time("busybox tar cf - small > /dev/null")?,
        time("busybox find small | busybox xargs busybox stat > /dev/null")?,
    ))
}

fn median(v: &[Figures], i: usize) -> f64 {
    benches::median(v.iter().map(|f| f[i]).collect())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let guest = opt("--guest").map(PathBuf::from).unwrap_or_else(|| root.join("build/guest"));
    let strata = opt("--strata").map(PathBuf::from).unwrap_or_else(|| root.join("target/release/strata"));
    let number = |name: &str, default: usize| {
        opt(name).map_or(default, |s| s.parse().unwrap_or_else(|_| fail(&format!("{name} {s}: not a number"))))
    };
    let files = number("--files", 20_000).max(1);
    let mib = number("--big-mib", 256).max(1);
    let runs = number("--runs", 1).max(1);
    let default_tiers = if cfg!(target_arch = "x86_64") { "interp,jit" } else { "interp" };
    let tiers: Vec<String> =
        opt("--tiers").unwrap_or_else(|| default_tiers.into()).split(',').map(str::to_string).collect();
    let qemu = !args.iter().any(|a| a == "--no-qemu");
    if qemu && benches::which("qemu-system-x86_64").is_none() {
        fail("qemu-system-x86_64 is not installed (scripts/install-deps.sh; or --no-qemu)");
    }
    if benches::which("cpio").is_none() {
        fail("cpio is not installed (scripts/install-deps.sh)");
    }

    let work = std::env::temp_dir().join(format!("strata-share-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let w = |name: &str| work.join(name);
    let share = w("share");
    std::fs::create_dir_all(w("extra")).unwrap_or_else(|e| fail(&e.to_string()));
    make_tree(&share, files, mib).unwrap_or_else(|e| fail(&format!("making the folder: {e}")));

    // /strata-run as a second, uncompressed cpio archive after the guest's (the kernel unpacks
    // concatenated archives), so QEMU and Strata boot the very same initrd.
    let initrd = guest.join("initramfs-marker.cpio.gz");
    let Ok(mut combined) = std::fs::read(&initrd) else {
        fail(&format!("no guest in {} (run scripts/build-guest.sh {})", guest.display(), guest.display()))
    };
    std::fs::write(w("extra/strata-run"), guest_script(files, mib)).unwrap_or_else(|e| fail(&e.to_string()));
    let cpio = Command::new("sh")
        .arg("-c")
        .arg("chmod 755 strata-run && echo strata-run | cpio --quiet -o -H newc -R 0:0")
        .current_dir(w("extra"))
        .output()
        .unwrap_or_else(|e| fail(&e.to_string()));
    combined.resize(combined.len().div_ceil(4) * 4, 0);
    combined.extend_from_slice(&cpio.stdout);
    std::fs::write(w("initrd"), &combined).unwrap_or_else(|e| fail(&e.to_string()));
    let kernel = guest.join("vmlinuz");
    let limit = Duration::from_secs(3600);

    let mut ours: Vec<Vec<Figures>> = vec![Vec::new(); tiers.len()];
    let mut theirs = Vec::new();
    for i in 0..runs {
        for (t, tier) in tiers.iter().enumerate() {
            let mut c = Command::new(&strata);
            c.args(["run", "--tier", tier, "--mem", "256M", "--append", APPEND, "--kernel"]).arg(&kernel);
            c.arg("--initrd").arg(w("initrd"));
            c.arg("--share").arg(format!("{},tag=share", share.display()));
            let t0 = Instant::now();
            match guest_run(c, limit) {
                Some(f) => ours[t].push(f),
                None => eprintln!("share-bench: strata --tier {tier} run {i} failed"),
            }
            eprintln!("share-bench: strata --tier {tier} run {i}: {:.0} s in all", t0.elapsed().as_secs_f64());
        }
        if qemu {
            let mut c = Command::new("qemu-system-x86_64");
            c.args(["-accel", "tcg", "-M", "pc", "-m", "256", "-display", "none", "-no-reboot", "-serial", "stdio"])
                .arg("-kernel")
                .arg(&kernel)
                .arg("-initrd")
                .arg(w("initrd"))
                .args(["-append", APPEND, "-virtfs"])
                .arg(format!("local,path={},mount_tag=share,security_model=none", share.display()));
            let t0 = Instant::now();
            match guest_run(c, limit) {
                Some(f) => theirs.push(f),
                None => eprintln!("share-bench: qemu run {i} failed"),
            }
            eprintln!("share-bench: qemu run {i}: {:.0} s in all", t0.elapsed().as_secs_f64());
        }
    }
    let host = host_figures(&share);
    let _ = std::fs::remove_dir_all(&work);

    println!(
        "In the guest (medians of {runs}; {files} files of 1-8 KiB, one {mib} MiB file, msize 512 KiB, seconds on the guest's clock):\n"
    );
    println!("| run | {} |", COLUMNS.join(" | "));
    println!("|---|---:|---:|---:|---:|");
    let mut rows: Vec<(String, Option<Figures>)> = Vec::new();
    for (t, tier) in tiers.iter().enumerate() {
        let name = if tier == "interp" { "strata tier 0".to_string() } else { format!("strata --tier {tier}") };
        rows.push((name, (!ours[t].is_empty()).then(|| [0, 1, 2, 3].map(|i| median(&ours[t], i)))));
    }
    let q = (!theirs.is_empty()).then(|| [0, 1, 2, 3].map(|i| median(&theirs, i)));
    if qemu {
        rows.push(("qemu-system-x86_64 -accel tcg".into(), q));
    }
    for (name, f) in &rows {
        match f {
            Some(f) => println!("| {name} | {:.2} | {:.2} | {:.2} | {:.2} |", f[0], f[1], f[2], f[3]),
            None => println!("| {name} | failed | | | |"),
        }
    }
    if let Some(q) = q {
        for (name, f) in rows.iter().filter(|(n, _)| n.starts_with("strata")) {
            if let Some(f) = f {
                let r = [0, 1, 2, 3].map(|i| f[i] / q[i]);
                println!("| {name} / QEMU (time) | {:.2}x | {:.2}x | {:.2}x | {:.2}x |", r[0], r[1], r[2], r[3]);
            }
        }
    }
    if let Some((tar, stat)) = host {
        println!("| the host (busybox, same folder) | {tar:.2} | {stat:.2} | | |");
    }
}
