//! An I/O thread for one drive: requests are served off the CPU loop, in order, by a worker that
//! owns the [`Drive`]; completions come back through a channel the machine drains between CPU
//! slices, and each completion also calls a wake-up hook (the machine uses it to stop waiting in
//! a halted CPU's idle sleep). One worker per drive keeps requests in submission order, so a flush
//! completes after every write submitted before it, as virtio-blk requires of VIRTIO_BLK_T_FLUSH.
//! Requests queued together are served as one group commit ([`serve_batch`]): under a
//! write-through cache mode one host sync after the last write covers them all.
//!
//! This is the portable path (plain threads and channels). With `aio=io_uring` (or `aio=native`)
//! on a raw image on Linux the worker serves requests through an io_uring instead, several in
//! flight at once ([`super::uring`]); where the kernel refuses a ring it says so in one line and
//! uses this path.

pub use super::request::{run_op, Completion, Op, Wake};
use super::Drive;
use std::io;
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where a drive's request time goes, for `STRATA_IO_STATS=1` (printed when the device is
/// dropped): time on the worker, and how long a finished request waited to be taken back.
#[derive(Clone, Copy, Debug, Default)]
pub struct IoStats {
    /// Requests completed.
    pub requests: u64,
    /// Time the worker spent serving them.
    pub service: Duration,
    /// Time from a request's end on the worker to its collection by the CPU thread.
    pub wait: Duration,
    /// The longest such wait.
    pub wait_max: Duration,
}

impl std::fmt::Display for IoStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.requests.max(1) as f64;
        write!(
            f,
            "{} requests, service {:.1} us/request, completion wait {:.1} us/request (max {:.1} us)",
            self.requests,
            self.service.as_secs_f64() * 1e6 / n,
            self.wait.as_secs_f64() * 1e6 / n,
            self.wait_max.as_secs_f64() * 1e6
        )
    }
}

/// Most requests one group commit covers.
const MAX_BATCH: usize = 64;

/// Serves `first` and whatever else is already queued (up to [`MAX_BATCH`]), in order, as one
/// group commit: under a write-through cache mode the writes are synced once, after the last of
/// them, and only then reported complete (a failed sync fails them all); reads and flushes are
/// reported as soon as they are done. QEMU coalesces its write-through flushes the same way, so
/// a guest with many writes in flight does not pay one host sync per write. False when the
/// device side is gone.
fn serve_batch(
    drive: &mut Drive,
    first: (u64, Op),
    inbox: &Receiver<(u64, Op)>,
    outbox: &Sender<Completion>,
    hook: &Wake,
) -> bool {
    let mut held: Vec<Completion> = Vec::new();
    let mut next = Some(first);
    let mut served = 0;
    while let Some((token, op)) = next.take() {
        let writes = matches!(op, Op::Write { .. } | Op::Discard { .. } | Op::WriteZeroes { .. });
        let start = Instant::now();
        let result = run_op(drive, op);
        let done_at = Instant::now();
        let c = Completion { token, result, done_at, service: done_at - start };
        if writes && c.result.is_ok() {
            held.push(c);
        } else {
            if outbox.send(c).is_err() {
                return false;
            }
            hook();
        }
        served += 1;
        if served < MAX_BATCH {
            next = inbox.try_recv().ok();
        }
    }
    let synced = drive.sync_deferred();
    let sync_done = Instant::now();
    for mut c in held {
        if let Err(e) = &synced {
            c.result = Err(io::Error::new(e.kind(), e.to_string()));
        }
        c.service += sync_done - c.done_at;
        c.done_at = sync_done;
        if outbox.send(c).is_err() {
            return false;
        }
        hook();
    }
    true
}

/// The submitting side of a drive's I/O thread.
pub struct IoThread {
    jobs: Option<Sender<(u64, Op)>>,
    done: Receiver<Completion>,
    worker: Option<JoinHandle<Drive>>,
    /// The wake-up hook, kept to start a new worker after [`IoThread::with_drive`].
    wake: Wake,
    in_flight: usize,
    /// The worker serves requests through an io_uring ([`super::uring`]).
    ring: bool,
    /// What the completions taken so far cost.
    pub stats: IoStats,
}

impl IoThread {
    /// Moves `drive` to a new worker thread.
    ///
    /// # Errors
    /// The host could not start a thread.
    pub fn spawn(mut drive: Drive, wake: Wake) -> io::Result<IoThread> {
        let (jobs, inbox) = channel::<(u64, Op)>();
        let (outbox, done) = channel();
        let hook = wake.clone();
        #[cfg(target_os = "linux")]
        let ring = super::uring::ring_for(&drive);
        #[cfg(target_os = "linux")]
        let uses_ring = ring.is_some();
        #[cfg(not(target_os = "linux"))]
        let uses_ring = false;
        let worker = std::thread::Builder::new().name("strata-io".into()).spawn(move || {
            #[cfg(target_os = "linux")]
            if let Some(ring) = ring {
                super::uring::serve(&mut drive, ring, &inbox, &outbox, &hook);
                let _ = drive.flush();
                return drive;
            }
            drive.defer_write_through_sync(true);
            while let Ok(first) = inbox.recv() {
                if !serve_batch(&mut drive, first, &inbox, &outbox, &hook) {
                    break;
                }
            }
            // Dropping the drive flushes imago's metadata; make the data stable too.
            let _ = drive.flush();
            drive.defer_write_through_sync(false);
            drive
        })?;
        Ok(IoThread {
            jobs: Some(jobs),
            done,
            worker: Some(worker),
            wake,
            in_flight: 0,
            ring: uses_ring,
            stats: IoStats::default(),
        })
    }

    /// Queues `op`; its completion will carry `token`.
    pub fn submit(&mut self, token: u64, op: Op) {
        if let Some(jobs) = &self.jobs {
            if jobs.send((token, op)).is_ok() {
                self.in_flight += 1;
            }
        }
    }

    /// A finished operation, if one is waiting.
    pub fn try_complete(&mut self) -> Option<Completion> {
        match self.done.try_recv() {
            Ok(c) => {
                self.in_flight -= 1;
                let wait = c.done_at.elapsed();
                self.stats.requests += 1;
                self.stats.service += c.service;
                self.stats.wait += wait;
                self.stats.wait_max = self.stats.wait_max.max(wait);
                Some(c)
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        }
    }

    /// Stops the worker (once it has served what was queued and flushed), runs `f` on the drive
    /// on this thread, then starts a new worker. Snapshots use it to pivot the drive to a new
    /// overlay between two requests. Call it with nothing in flight: completions not yet taken
    /// would be lost with the old worker's channel.
    ///
    /// # Errors
    /// Requests are still in flight, the worker panicked, or a new thread could not be started.
    pub fn with_drive<R>(&mut self, f: impl FnOnce(&mut Drive) -> R) -> io::Result<R> {
        if self.in_flight != 0 {
            return Err(io::Error::other("requests are still in flight"));
        }
        self.jobs = None;
        let mut drive = self
            .worker
            .take()
            .and_then(|w| w.join().ok())
            .ok_or_else(|| io::Error::other("the drive's I/O thread is gone"))?;
        let result = f(&mut drive);
        let stats = self.stats;
        *self = IoThread::spawn(drive, self.wake.clone())?;
        self.stats = stats;
        Ok(result)
    }

    /// True when the worker serves requests through an io_uring.
    pub fn uses_ring(&self) -> bool {
        self.ring
    }

    /// Operations submitted and not yet taken back.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

impl Drop for IoThread {
    /// Lets the worker finish what was queued, flush and exit.
    fn drop(&mut self) {
        if std::env::var_os("STRATA_IO_STATS").is_some() {
            eprintln!("strata: I/O thread: {}", self.stats);
        }
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::options::DriveSpec;
    use crate::block::BlockBackend;
    use aio::AlignedBuf;
    use std::sync::Arc;
    use std::sync::Mutex;

    /// What the backend saw, in order: `Some(offset)` a write, `None` a sync.
    type Log = Arc<Mutex<Vec<Option<u64>>>>;

    /// A disk in memory that logs writes and syncs.
    struct Logged(Vec<u8>, Log);

    impl BlockBackend for Logged {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
            buf.copy_from_slice(&self.0[offset as usize..offset as usize + buf.len()]);
            Ok(())
        }
        fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
            self.0[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
            self.1.lock().unwrap().push(Some(offset));
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.1.lock().unwrap().push(None);
            Ok(())
        }
        fn discard(&mut self, _: u64, _: u64) -> io::Result<()> {
            Ok(())
        }
        fn write_zeroes(&mut self, offset: u64, len: u64, _: bool) -> io::Result<()> {
            self.write_at(&vec![0; len as usize], offset)
        }
    }

    /// cache=writethrough (QEMU's docs: a write completes only once it is on stable storage):
    /// however the I/O thread groups them, every write is reported complete only after a sync
    /// that followed it (how many writes one sync covers depends on how they were queued). With
    /// cache=writeback nothing is synced until the guest flushes.
    #[test]
    fn writethrough_writes_complete_only_after_a_sync_that_follows_them() {
        for (cache, synced) in [("writethrough", true), ("writeback", false)] {
            let log: Log = Arc::default();
            let spec = DriveSpec::parse(&format!("file=mem,format=raw,cache={cache}")).unwrap();
            let drive = Drive::with_backend(Box::new(Logged(vec![0; 1 << 20], log.clone())), spec);
            let mut io = IoThread::spawn(drive, Arc::new(|| {})).unwrap();
            for i in 0..32u64 {
                io.submit(i, Op::Write { offset: i * 4096, data: AlignedBuf::copy_from(&[i as u8 + 1; 4096]) });
            }
            let mut seen = 0;
            while seen < 32 {
                let Some(c) = io.try_complete() else {
                    std::thread::yield_now();
                    continue;
                };
                c.result.unwrap();
                let log = log.lock().unwrap();
                let at = log.iter().position(|e| *e == Some(c.token * 4096)).expect("the write reached the backend");
                assert_eq!(log[at..].contains(&None), synced, "cache={cache}: write {} completed", c.token);
                seen += 1;
            }
            io.submit(99, Op::Read { offset: 31 * 4096, len: 4096 });
            let c = loop {
                if let Some(c) = io.try_complete() {
                    break c;
                }
                std::thread::yield_now();
            };
            assert!(c.result.unwrap().iter().all(|&b| b == 32));
        }
    }
}
