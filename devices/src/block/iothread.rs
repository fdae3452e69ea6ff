//! An I/O thread for one drive: requests are served off the CPU loop, in order, by a worker that
//! owns the [`Drive`]; completions come back through a channel the machine drains between CPU
//! slices, and each completion also calls a wake-up hook (the machine uses it to stop waiting in
//! a halted CPU's idle sleep). One worker per drive keeps requests in submission order, so a flush
//! completes after every write submitted before it, as virtio-blk requires of VIRTIO_BLK_T_FLUSH.
//!
//! This is the portable path (plain threads and channels). `aio=io_uring` and `aio=native` use it
//! too for now.

use super::Drive;
use std::io;
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One operation on the drive.
#[derive(Debug)]
pub enum Op {
    /// Read `len` bytes at `offset`.
    Read {
        /// Byte offset.
        offset: u64,
        /// Length.
        len: usize,
    },
    /// Write `data` at `offset`.
    Write {
        /// Byte offset.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Flush.
    Flush,
    /// Discard a range.
    Discard {
        /// Byte offset.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// Write zeroes to a range.
    WriteZeroes {
        /// Byte offset.
        offset: u64,
        /// Length.
        len: u64,
        /// The guest allows deallocation.
        unmap: bool,
    },
}

/// A finished operation: the token it was submitted with and its result (read data for reads).
#[derive(Debug)]
pub struct Completion {
    /// The submitter's token.
    pub token: u64,
    /// Read data (empty for other operations), or the error.
    pub result: io::Result<Vec<u8>>,
}

/// Runs `op` on `drive` (also the synchronous path).
///
/// # Errors
/// The drive's error.
pub fn run_op(drive: &mut Drive, op: Op) -> io::Result<Vec<u8>> {
    match op {
        Op::Read { offset, len } => {
            let mut buf = vec![0u8; len];
            drive.read(&mut buf, offset)?;
            Ok(buf)
        }
        Op::Write { offset, data } => drive.write(&data, offset).map(|()| Vec::new()),
        Op::Flush => drive.flush().map(|()| Vec::new()),
        Op::Discard { offset, len } => drive.discard(offset, len).map(|()| Vec::new()),
        Op::WriteZeroes { offset, len, unmap } => drive.write_zeroes(offset, len, unmap).map(|()| Vec::new()),
    }
}

/// Wake-up hook called (on the I/O thread) after each completion.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// The submitting side of a drive's I/O thread.
pub struct IoThread {
    jobs: Option<Sender<(u64, Op)>>,
    done: Receiver<Completion>,
    worker: Option<JoinHandle<Drive>>,
    /// The wake-up hook, kept to start a new worker after [`IoThread::with_drive`].
    wake: Wake,
    in_flight: usize,
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
        let worker = std::thread::Builder::new().name("strata-io".into()).spawn(move || {
            while let Ok((token, op)) = inbox.recv() {
                let result = run_op(&mut drive, op);
                if outbox.send(Completion { token, result }).is_err() {
                    break;
                }
                hook();
            }
            // Dropping the drive flushes imago's metadata; make the data stable too.
            let _ = drive.flush();
            drive
        })?;
        Ok(IoThread { jobs: Some(jobs), done, worker: Some(worker), wake, in_flight: 0 })
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
        *self = IoThread::spawn(drive, self.wake.clone())?;
        Ok(result)
    }

    /// Operations submitted and not yet taken back.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

impl Drop for IoThread {
    /// Lets the worker finish what was queued, flush and exit.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
