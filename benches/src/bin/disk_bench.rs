//! `cargo run --release -p benches --bin disk-bench -- [--guest DIR] [--strata PATH] [--runs N] [--no-guest] [--no-jit]`
//!
//! Disk performance in one invocation, two parts:
//!
//! 1. **In the guest**: the test guest (`scripts/build-guest.sh`) boots with the same kernel, the
//!    same initramfs (plus `benches/disk/diskbench.c`, built static here, run by /init) and a copy
//!    of the same qcow2 image (ext4 holding a 256 MiB file, made by `mke2fs -d` and `qemu-img
//!    convert`), under `strata run` (tier 0, and `--tier jit` on x86-64 hosts) and under
//!    `qemu-system-x86_64 -accel tcg -M pc` with `virtio-blk-pci` on an iothread, all
//!    `cache=writethrough`, N times each in alternation. The
//!    guest measures, on its own clock: 64 MiB written in 1 MiB writes + fsync to a new file,
//!    the 256 MiB file read with O_DIRECT in 1 MiB reads, and 4 KiB O_DIRECT random reads for 3 s.
//!    Medians are printed, and strata / QEMU ratios.
//! 2. **The device alone**: the virtio-blk model driven directly (no guest CPU; a split
//!    virtqueue in a plain buffer, 32 requests in flight), with requests served at the notify
//!    (`--deterministic`'s path) and on the I/O thread, over another copy of the image, then over
//!    the same disk converted to raw, on the thread path and on io_uring (with and without
//!    O_DIRECT): the same three workloads, to show what the device itself costs.

use devices::block::options::DriveSpec;
use devices::block::Drive;
use devices::dma::{DmaError, GuestMemory};
use devices::virtio::blk::VirtioBlk;
use devices::virtio::queue::Queue;
use devices::virtio::VirtioDevice;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const APPEND: &str = "console=ttyS0 quiet";
const MIB: usize = 1 << 20;

/// One guest run's figures: (sequential write MB/s, sequential read MB/s, random-read IOPS).
type Figures = (f64, f64, f64);

fn fail(msg: &str) -> ! {
    eprintln!("disk-bench: {msg}");
    std::process::exit(2);
}

fn run(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Runs a guest with its console on stdout; returns the DISKBENCH line's figures.
fn guest_run(mut cmd: Command, limit: Duration) -> Option<Figures> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().ok()?;
    let out = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.trim().strip_prefix("DISKBENCH ").map(str::to_string))
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
    let field = |key: &str| -> Option<f64> {
        line.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
    };
    Some((field("seq_write_MBps")?, field("seq_read_MBps")?, field("rand_read_iops")?))
}

/// Guest RAM for the device benchmark: a plain buffer, bounds-checked like the machine's.
struct Ram(Vec<u8>);

impl GuestMemory for Ram {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let err = DmaError { addr, len: buf.len() as u64 };
        let start = usize::try_from(addr).map_err(|_| err)?;
        buf.copy_from_slice(self.0.get(start..start.checked_add(buf.len()).ok_or(err)?).ok_or(err)?);
        Ok(())
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaError> {
        let err = DmaError { addr, len: data.len() as u64 };
        let start = usize::try_from(addr).map_err(|_| err)?;
        let end = start.checked_add(data.len()).ok_or(err)?;
        self.0.get_mut(start..end).ok_or(err)?.copy_from_slice(data);
        Ok(())
    }
}

// Driver-side layout in the buffer (virtio 1.2, 2.7: descriptor table, available and used rings).
const DESC: u64 = 0;
const AVAIL: u64 = 0x1000;
const USED: u64 = 0x2000;
const HEADERS: u64 = 0x4000;
const STATUS: u64 = 0x5000;
const DATA: u64 = 0x10000;
const DEPTH: usize = 32;
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
// Request types (5.2.6).
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;

/// A driver for one virtio-blk device over [`Ram`]: submits a batch, waits for every completion.
struct Driver {
    dev: VirtioBlk,
    queue: Queue,
    ram: Ram,
    avail_idx: u16,
}

impl Driver {
    fn new(dev: VirtioBlk, max_len: usize) -> Driver {
        let mut queue = Queue::new(256);
        (queue.desc, queue.avail, queue.used, queue.ready) = (DESC, AVAIL, USED, true);
        let ram = Ram(vec![0u8; DATA as usize + DEPTH * max_len]);
        Driver { dev, queue, ram, avail_idx: 0 }
    }

    fn desc(&mut self, i: usize, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        let _ = self.ram.write(DESC + 16 * i as u64, &d);
    }

    /// Submits (type, sector, bytes) requests (at most DEPTH) and serves them to completion.
    fn batch(&mut self, reqs: &[(u32, u64, usize)], slot_len: usize) {
        for (i, &(kind, sector, len)) in reqs.iter().enumerate() {
            let mut h = [0u8; 16];
            h[0..4].copy_from_slice(&kind.to_le_bytes());
            h[8..16].copy_from_slice(&sector.to_le_bytes());
            let _ = self.ram.write(HEADERS + 16 * i as u64, &h);
            let d = 3 * i;
            let data = DATA + (i * slot_len) as u64;
            let status = STATUS + i as u64;
            if len == 0 {
                self.desc(d, HEADERS + 16 * i as u64, 16, F_NEXT, d as u16 + 2);
            } else {
                self.desc(d, HEADERS + 16 * i as u64, 16, F_NEXT, d as u16 + 1);
                let flags = if kind == T_IN { F_NEXT | F_WRITE } else { F_NEXT };
                self.desc(d + 1, data, len as u32, flags, d as u16 + 2);
            }
            self.desc(d + 2, status, 1, F_WRITE, 0);
            let entry = AVAIL + 4 + 2 * u64::from(self.avail_idx % 256);
            let _ = self.ram.write(entry, &(d as u16).to_le_bytes());
            self.avail_idx = self.avail_idx.wrapping_add(1);
        }
        let _ = self.ram.write(AVAIL + 2, &self.avail_idx.to_le_bytes());
        self.dev.process(0, &mut self.queue, &mut self.ram).expect("virtio-blk queue error");
        loop {
            self.dev.complete(0, &mut self.queue, &mut self.ram).expect("virtio-blk queue error");
            if !self.dev.in_flight() {
                break;
            }
            std::thread::yield_now();
        }
        for i in 0..reqs.len() {
            let mut s = [0u8];
            let _ = self.ram.read(STATUS + i as u64, &mut s);
            assert_eq!(s[0], 0, "request {i} failed (status {})", s[0]);
        }
    }
}

/// The device benchmark over `image` opened with `--drive` options `opts`: (write MB/s, read
/// MB/s, random-read IOPS).
fn device_bench(image: &Path, opts: &str, threaded: bool, read_len: u64) -> Figures {
    let spec = DriveSpec::parse(&format!("file={},{opts}", image.display())).unwrap_or_else(|e| fail(&e.to_string()));
    let drive = Drive::open(&spec).unwrap_or_else(|e| fail(&e.to_string()));
    let dev = if threaded {
        VirtioBlk::with_io_thread(drive, "bench", Arc::new(|| {})).unwrap_or_else(|e| fail(&e.to_string()))
    } else {
        VirtioBlk::new(drive, "bench")
    };
    let mut drv = Driver::new(dev, MIB);
    // 64 MiB written past the data the guest reads, then a flush.
    let base = read_len / 512;
    let t = Instant::now();
    for b in 0..64 / DEPTH {
        let reqs: Vec<_> = (0..DEPTH).map(|i| (T_OUT, base + ((b * DEPTH + i) * MIB / 512) as u64, MIB)).collect();
        drv.batch(&reqs, MIB);
    }
    drv.batch(&[(T_FLUSH, 0, 0)], MIB);
    let write = 64.0 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let chunks = (256 * MIB as u64).min(read_len) as usize / MIB;
    for b in 0..chunks / DEPTH {
        let reqs: Vec<_> = (0..DEPTH).map(|i| (T_IN, ((b * DEPTH + i) * MIB / 512) as u64, MIB)).collect();
        drv.batch(&reqs, MIB);
    }
    let read = chunks as f64 / t.elapsed().as_secs_f64();
    let blocks = read_len / 4096;
    let mut x = 88_172_645_463_325_252u64;
    let mut n = 0u64;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        let reqs: Vec<_> = (0..DEPTH)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (T_IN, (x % blocks) * 8, 4096)
            })
            .collect();
        drv.batch(&reqs, MIB);
        n += DEPTH as u64;
    }
    (write, read, n as f64 / t.elapsed().as_secs_f64())
}

fn median(v: &[f64]) -> f64 {
    benches::median(v.to_vec())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let guest = opt("--guest").map(PathBuf::from).unwrap_or_else(|| root.join("build/guest"));
    let strata = opt("--strata").map(PathBuf::from).unwrap_or_else(|| root.join("target/release/strata"));
    let runs: usize = opt("--runs").and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
    let no_guest = args.iter().any(|a| a == "--no-guest");
    for tool in ["mke2fs", "qemu-img", "cpio"] {
        if benches::which(tool).is_none()
            && !Path::new("/usr/sbin").join(tool).exists()
            && !Path::new("/sbin").join(tool).exists()
        {
            fail(&format!("{tool} is not installed (scripts/install-deps.sh)"));
        }
    }

    let work = std::env::temp_dir().join(format!("strata-disk-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("tree")).unwrap_or_else(|e| fail(&e.to_string()));
    let w = |name: &str| work.join(name);
    // The image: ext4 holding 256 MiB of pseudo-random bytes (not zeros, which formats may skip).
    let mut big = vec![0u8; 256 * MIB];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in big.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(w("tree/big"), &big).unwrap_or_else(|e| fail(&e.to_string()));
    drop(big);
    let mke2fs = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(w("tree"))
        .arg(w("base.raw"))
        .arg("512M")
        .status();
    if !mke2fs.is_ok_and(|s| s.success()) {
        fail("mke2fs -d failed");
    }
    let _ = std::fs::remove_dir_all(w("tree"));
    if !run(Command::new("qemu-img").args(["convert", "-O", "qcow2"]).arg(w("base.raw")).arg(w("base.qcow2"))) {
        fail("qemu-img convert failed");
    }
    let _ = std::fs::remove_file(w("base.raw"));

    let mut guest_rows = Vec::new();
    if !no_guest {
        let initrd = guest.join("initramfs-marker.cpio.gz");
        let Ok(mut combined) = std::fs::read(&initrd) else {
            fail(&format!("no guest in {} (run scripts/build-guest.sh {})", guest.display(), guest.display()))
        };
        // The in-guest program and /strata-run (which /init runs) as a second, uncompressed cpio
        // archive after the first, padded to 4 bytes (the kernel unpacks concatenated archives).
        let cc = if benches::which("musl-gcc").is_some() { "musl-gcc" } else { "gcc" };
        std::fs::create_dir_all(w("extra")).unwrap_or_else(|e| fail(&e.to_string()));
        if !run(Command::new(cc)
            .args(["-O2", "-static", "-o"])
            .arg(w("extra/diskbench"))
            .arg(root.join("benches/disk/diskbench.c")))
        {
            fail(&format!("{cc} could not build benches/disk/diskbench.c"));
        }
        std::fs::write(w("extra/strata-run"), "#!/bin/sh\n/diskbench /mnt/disk\n")
            .unwrap_or_else(|e| fail(&e.to_string()));
        let cpio = Command::new("sh")
            .arg("-c")
            .arg(
                "chmod 755 diskbench strata-run && printf 'diskbench\\nstrata-run\\n' | cpio --quiet -o -H newc -R 0:0",
            )
            .current_dir(w("extra"))
            .output()
            .unwrap_or_else(|e| fail(&e.to_string()));
        combined.resize(combined.len().div_ceil(4) * 4, 0);
        combined.extend_from_slice(&cpio.stdout);
        std::fs::write(w("initrd"), &combined).unwrap_or_else(|e| fail(&e.to_string()));
        let kernel = guest.join("vmlinuz");
        let qemu = benches::which("qemu-system-x86_64").is_some();
        let limit = Duration::from_secs(1800);
        let (mut ours, mut jitted, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
        let jit = cfg!(target_arch = "x86_64") && !args.iter().any(|a| a == "--no-jit");
        for i in 0..runs {
            let copy = w("run.qcow2");
            let fresh = || std::fs::copy(w("base.qcow2"), &copy).map(|_| ()).unwrap_or_else(|e| fail(&e.to_string()));
            for tier in ["interp", "jit"] {
                if tier == "jit" && !jit {
                    continue;
                }
                fresh();
                let mut c = Command::new(&strata);
                c.args(["run", "--tier", tier, "--mem", "256M", "--append", APPEND, "--kernel"]).arg(&kernel);
                c.arg("--initrd").arg(w("initrd"));
                c.arg("--drive").arg(format!("file={},format=qcow2,cache=writethrough", copy.display()));
                match guest_run(c, limit) {
                    Some(f) if tier == "jit" => jitted.push(f),
                    Some(f) => ours.push(f),
                    None => eprintln!("disk-bench: strata --tier {tier} run {i} failed"),
                }
            }
            if qemu {
                fresh();
                let mut c = Command::new("qemu-system-x86_64");
                c.args([
                    "-accel",
                    "tcg",
                    "-M",
                    "pc",
                    "-m",
                    "256",
                    "-display",
                    "none",
                    "-no-reboot",
                    "-serial",
                    "stdio",
                ])
                .arg("-kernel")
                .arg(&kernel)
                .arg("-initrd")
                .arg(w("initrd"))
                .args(["-append", APPEND, "-object", "iothread,id=io0", "-drive"])
                .arg(format!("file={},format=qcow2,if=none,id=d0,cache=writethrough,aio=threads", copy.display()))
                .args(["-device", "virtio-blk-pci,drive=d0,iothread=io0"]);
                match guest_run(c, limit) {
                    Some(f) => theirs.push(f),
                    None => eprintln!("disk-bench: qemu run {i} failed"),
                }
            }
        }
        let med = |v: &[Figures]| {
            (
                median(&v.iter().map(|f| f.0).collect::<Vec<_>>()),
                median(&v.iter().map(|f| f.1).collect::<Vec<_>>()),
                median(&v.iter().map(|f| f.2).collect::<Vec<_>>()),
            )
        };
        guest_rows.push(("strata tier 0", med(&ours)));
        if jit {
            guest_rows.push(("strata --tier jit", med(&jitted)));
        }
        if qemu {
            guest_rows.push(("qemu-system-x86_64 -accel tcg (iothread)", med(&theirs)));
        }
    }

    let dev_image = w("device.qcow2");
    let _ = std::fs::copy(w("base.qcow2"), &dev_image);
    // The device benchmark reads the first 256 MiB of the disk (the file system and most of the
    // file) and writes past it.
    let read_len = 256 * MIB as u64;
    let qcow2 = "format=qcow2,cache=writethrough";
    let mut device_rows =
        vec![("qcow2, at the notify (synchronous)", device_bench(&dev_image, qcow2, false, read_len))];
    let _ = std::fs::copy(w("base.qcow2"), &dev_image);
    device_rows.push(("qcow2, I/O thread", device_bench(&dev_image, qcow2, true, read_len)));
    // The same disk as a raw image, on the thread path and on io_uring (issue 12).
    let raw_image = w("device.raw");
    for (name, opts) in [
        ("raw, I/O thread (aio=threads)", "format=raw,cache=writethrough,aio=threads"),
        ("raw, io_uring (aio=io_uring)", "format=raw,cache=writethrough,aio=io_uring"),
        ("raw, io_uring, cache=directsync (O_DIRECT)", "format=raw,cache=directsync,aio=io_uring"),
    ] {
        if !run(Command::new("qemu-img").args(["convert", "-O", "raw"]).arg(w("base.qcow2")).arg(&raw_image)) {
            fail("qemu-img convert -O raw failed");
        }
        device_rows.push((name, device_bench(&raw_image, opts, true, read_len)));
    }
    let _ = std::fs::remove_dir_all(&work);

    if !guest_rows.is_empty() {
        println!("In the guest (medians of {runs}; 64 MiB write + fsync, 256 MiB O_DIRECT read, 4 KiB O_DIRECT random reads):\n");
        println!("| run | seq write MB/s | seq read MB/s | 4 KiB random read IOPS |");
        println!("|---|---:|---:|---:|");
        for (name, (wr, rd, iops)) in &guest_rows {
            println!("| {name} | {wr:.1} | {rd:.1} | {iops:.0} |");
        }
        if let Some((_, b)) = guest_rows.iter().find(|(n, _)| n.starts_with("qemu")) {
            for (name, a) in guest_rows.iter().filter(|(n, _)| n.starts_with("strata")) {
                println!("| {name} / QEMU | {:.2}x | {:.2}x | {:.2}x |", a.0 / b.0, a.1 / b.1, a.2 / b.2);
            }
        }
        println!();
    }
    println!(
        "The virtio-blk model alone (no guest CPU, {DEPTH} requests in flight, cache=writethrough unless named):\n"
    );
    println!("| path | seq write MB/s (64 MiB + flush) | seq read MB/s (256 MiB) | 4 KiB random read IOPS |");
    println!("|---|---:|---:|---:|");
    for (name, (wr, rd, iops)) in device_rows {
        println!("| {name} | {wr:.1} | {rd:.1} | {iops:.0} |");
    }
}
