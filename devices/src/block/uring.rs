//! The I/O thread's io_uring path (Linux): with `aio=io_uring` (or `aio=native`, which QEMU
//! serves with Linux AIO) a raw image's reads, writes and flushes go through an
//! [`aio::ring::FileRing`] on the drive's worker, up to [`DEPTH`] at once, instead of one
//! blocking call after another. Everything else (qcow2 images, whose metadata imago keeps;
//! discard and write-zeroes; a write that detect-zeroes turns into something else; an
//! `O_DIRECT` request that is not aligned) runs through the [`Drive`] as on the thread path,
//! after the requests in flight have completed, so the order the guest sees is kept.
//!
//! Semantics: a write under a write-through cache mode carries `RWF_DSYNC` (it completes once it
//! is on stable storage); a flush is an `fdatasync` that starts after every earlier request has
//! completed (`IOSQE_IO_DRAIN`), and is skipped under `cache=unsafe`; `cache=none` and
//! `directsync` images are open with `O_DIRECT` and the ring's buffers are page-aligned.

use super::options::{Aio, CacheMode};
use super::request::{run_op, Completion, Op, Wake};
use super::Drive;
use aio::ring::{FileRing, RingOp};
use aio::AlignedBuf;
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

/// Requests in flight on one drive's ring (the virtqueue holds 256 descriptors; Linux keeps far
/// fewer requests than that in flight on one virtio-blk queue by default).
pub const DEPTH: u32 = 64;

/// A ring for `drive` when it asks for one and can use it (a raw image, `aio=io_uring` or
/// `native`); a kernel that refuses rings (too old, `kernel.io_uring_disabled`, seccomp) gets a
/// one-line notice and the thread path.
pub fn ring_for(drive: &Drive) -> Option<FileRing> {
    if !matches!(drive.spec().aio, Aio::IoUring | Aio::Native) {
        return None;
    }
    let (file, _) = drive.raw_file()?;
    let ring = file.try_clone().and_then(|f| FileRing::new(f, DEPTH));
    match ring {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("strata: --drive {}: io_uring is not available ({e}); using the I/O thread", drive.spec().file);
            None
        }
    }
}

/// The worker: serves jobs from `inbox` on `ring` until the sender is gone.
pub fn serve(
    drive: &mut Drive,
    mut ring: FileRing,
    inbox: &Receiver<(u64, Op)>,
    outbox: &Sender<Completion>,
    hook: &Wake,
) {
    let mut started: HashMap<u64, Instant> = HashMap::new();
    let mut open = true;
    while open || ring.in_flight() > 0 {
        // Block for work only when nothing is in flight; otherwise take what has arrived.
        if ring.in_flight() == 0 {
            match inbox.recv() {
                Ok(job) => start(drive, &mut ring, job, &mut started, outbox, hook),
                Err(_) => break,
            }
        }
        loop {
            match inbox.try_recv() {
                Ok(job) => start(drive, &mut ring, job, &mut started, outbox, hook),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if ring.in_flight() > 0 && !reap(&mut ring, 1, &mut started, outbox, hook) {
            return;
        }
    }
}

/// Starts one job: on the ring, or through the drive once the ring is empty.
fn start(
    drive: &mut Drive,
    ring: &mut FileRing,
    (token, op): (u64, Op),
    started: &mut HashMap<u64, Instant>,
    outbox: &Sender<Completion>,
    hook: &Wake,
) {
    let begin = Instant::now();
    let direct = drive.raw_file().and_then(|(_, a)| a);
    let fits = |buf: &[u8], offset: u64| direct.is_none_or(|a| a.fits(buf, offset));
    let ring_op = match op {
        Op::Read { offset, len }
            if direct.is_none_or(|a| offset.is_multiple_of(a.offset) && (len as u64).is_multiple_of(a.offset)) =>
        {
            Ok(RingOp::Read { offset, buf: AlignedBuf::zeroed(len) })
        }
        Op::Write { offset, data } if drive.plain_write(&data) && fits(&data, offset) => {
            Ok(RingOp::Write { offset, buf: data, dsync: drive.spec().cache.write_through() })
        }
        Op::Flush if drive.spec().cache == CacheMode::Unsafe => {
            send(outbox, hook, token, Ok(AlignedBuf::zeroed(0)), begin);
            return;
        }
        Op::Flush => Ok(RingOp::Sync),
        other => Err(other),
    };
    match ring_op {
        Ok(op) => {
            started.insert(token, begin);
            if let Err(e) = ring.submit(token, op) {
                started.remove(&token);
                send(outbox, hook, token, Err(e), begin);
            }
        }
        Err(op) => {
            // Through the drive, after everything in flight (a discard must not overtake a write).
            while ring.in_flight() > 0 {
                if !reap(ring, ring.in_flight(), started, outbox, hook) {
                    break;
                }
            }
            let begin = Instant::now();
            let result = run_op(drive, op);
            send(outbox, hook, token, result, begin);
        }
    }
}

/// Waits for `min` completions and passes on every finished one; false when the ring failed
/// (what is still in flight is then lost to the guest, which the device reports as stuck
/// requests rather than a host crash).
fn reap(
    ring: &mut FileRing,
    min: usize,
    started: &mut HashMap<u64, Instant>,
    outbox: &Sender<Completion>,
    hook: &Wake,
) -> bool {
    match ring.wait(min) {
        Ok(done) => {
            for d in done {
                let begin = started.remove(&d.user).unwrap_or_else(Instant::now);
                send(outbox, hook, d.user, d.result.map(|()| d.buf), begin);
            }
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "io_uring wait failed");
            false
        }
    }
}

fn send(outbox: &Sender<Completion>, hook: &Wake, token: u64, result: std::io::Result<AlignedBuf>, begin: Instant) {
    let done_at = Instant::now();
    let _ = outbox.send(Completion { token, result, done_at, service: done_at - begin });
    hook();
}

#[cfg(test)]
mod tests {
    use super::super::iothread::IoThread;
    use super::super::options::DriveSpec;
    use super::*;
    use std::os::unix::fs::FileExt;

    /// Runs `ops` on a fresh I/O thread over `spec` in order (each waits for the one before),
    /// returning each result.
    fn run(spec: &str, ops: Vec<Op>) -> Option<(bool, Vec<std::io::Result<AlignedBuf>>)> {
        let drive = match Drive::open(&DriveSpec::parse(spec).unwrap()) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("skipped: {e}");
                return None;
            }
        };
        let mut io = IoThread::spawn(drive, std::sync::Arc::new(|| {})).unwrap();
        let ring = io.uses_ring();
        let mut out = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            io.submit(i as u64, op);
            let c = loop {
                if let Some(c) = io.try_complete() {
                    break c;
                }
                std::thread::yield_now();
            };
            assert_eq!(c.token, i as u64);
            out.push(c.result);
        }
        Some((ring, out))
    }

    fn image(name: &str) -> (std::path::PathBuf, Vec<u8>) {
        let p = std::env::temp_dir().join(format!("strata-uring-{}-{name}.raw", std::process::id()));
        let content: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &content).unwrap();
        (p, content)
    }

    /// Through the ring, with and without O_DIRECT, aligned and unaligned requests, a flush, a
    /// write-zeroes and a detect-zeroes write land in the file as the kernel's pread (std's
    /// `FileExt`) then sees it, and reads return the file's bytes.
    #[test]
    fn ring_requests_match_the_file() {
        for cache in ["writethrough", "none", "directsync", "unsafe"] {
            let (p, mut want) = image(cache);
            let spec = format!("file={},format=raw,aio=io_uring,cache={cache},detect-zeroes=on", p.display());
            let data =
                |len: usize, seed: u8| AlignedBuf::copy_from(&(0..len).map(|i| seed ^ i as u8).collect::<Vec<_>>());
            let ops = vec![
                Op::Write { offset: 8192, data: data(8192, 0x11) },
                Op::Write { offset: 512, data: data(1024, 0x22) }, // not page-aligned
                Op::Write { offset: 65536, data: AlignedBuf::zeroed(4096) }, // detect-zeroes
                Op::Flush,
                Op::WriteZeroes { offset: 131072, len: 4096, unmap: false },
                Op::Read { offset: 0, len: 256 * 1024 },
                Op::Read { offset: 1536, len: 512 }, // not page-aligned
            ];
            let Some((ring, results)) = run(&spec, ops) else { return };
            if !ring {
                eprintln!("skipped: no io_uring here (the one-line notice above says why)");
                return;
            }
            want[8192..16384].copy_from_slice(&data(8192, 0x11));
            want[512..1536].copy_from_slice(&data(1024, 0x22));
            want[65536..69632].fill(0);
            want[131072..135168].fill(0);
            let mut on_disk = vec![0u8; want.len()];
            std::fs::File::open(&p).unwrap().read_exact_at(&mut on_disk, 0).unwrap();
            assert!(on_disk == want, "cache={cache}: the file differs from what was written");
            let results: Vec<AlignedBuf> = results.into_iter().map(Result::unwrap).collect();
            assert!(results[5][..] == want[..], "cache={cache}: a read differs from the file");
            assert_eq!(&results[6][..], &want[1536..2048]);
            std::fs::remove_file(&p).ok();
        }
    }

    /// A read-only raw drive refuses writes on the ring path too; qcow2 and `aio=threads` get no
    /// ring.
    #[test]
    fn read_only_writes_fail_and_only_raw_io_uring_drives_get_a_ring() {
        let (p, _) = image("ro");
        let spec = format!("file={},format=raw,aio=io_uring,readonly=on", p.display());
        let Some((ring, r)) = run(&spec, vec![Op::Write { offset: 0, data: AlignedBuf::zeroed(512) }]) else { return };
        if ring {
            assert!(r[0].is_err());
        }
        let spec = format!("file={},format=raw,aio=threads", p.display());
        assert!(!run(&spec, vec![Op::Flush]).unwrap().0);
        std::fs::remove_file(&p).ok();
    }
}
