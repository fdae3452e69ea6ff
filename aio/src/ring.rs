//! [`FileRing`]: one file's reads, writes and data syncs through an io_uring (Linux 5.1+),
//! several in flight at once, each request's buffer owned by the ring until it completes.
//!
//! A read or write the kernel ends short (a signal, a page-cache boundary) is resubmitted for
//! the rest; one that makes no progress fails (`UnexpectedEof` / `WriteZero`); `EINTR` and
//! `EAGAIN` are retried; any other error is the request's result. A sync is submitted with
//! `IOSQE_IO_DRAIN`, so it starts only after every request submitted before it has completed
//! and nothing submitted after it starts before it ends (io_uring_enter(2)); that is the order a
//! virtio-blk FLUSH needs. A write with `dsync` carries `RWF_DSYNC` (pwritev2(2)): it completes
//! only once its data is on stable storage, the `cache=writethrough` promise.
//!
//! Soundness: a request's buffer is moved into a slot here before its entry is pushed, and it
//! leaves the slot only with the request's completion; [`Drop`] waits for every request in
//! flight (and leaks the buffers if the kernel cannot be waited for), so the kernel never writes
//! into freed memory.

use crate::AlignedBuf;
use io_uring::{opcode, squeue, types, IoUring};
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// `RWF_DSYNC` from include/uapi/linux/fs.h: this write is O_DSYNC.
const RWF_DSYNC: i32 = 0x2;
/// io_uring(7) errno values the ring retries (asm-generic/errno-base.h).
const EINTR: i32 = 4;
const EAGAIN: i32 = 11;

/// An operation on the ring's file.
#[derive(Debug)]
pub enum RingOp {
    /// Fill `buf` from `offset`.
    Read {
        /// Byte offset in the file.
        offset: u64,
        /// Where the bytes go (its whole length is read).
        buf: AlignedBuf,
    },
    /// Write all of `buf` at `offset`; with `dsync`, complete only once it is on stable storage.
    Write {
        /// Byte offset in the file.
        offset: u64,
        /// The bytes.
        buf: AlignedBuf,
        /// `RWF_DSYNC`.
        dsync: bool,
    },
    /// `fdatasync`, after everything submitted before it.
    Sync,
}

/// A finished request.
#[derive(Debug)]
pub struct RingDone {
    /// The submitter's token.
    pub user: u64,
    /// Its outcome.
    pub result: io::Result<()>,
    /// The request's buffer back (filled for a read); empty for a sync.
    pub buf: AlignedBuf,
}

/// A request in flight.
struct Slot {
    user: u64,
    op: RingOp,
    /// Bytes already transferred (a short read or write is resubmitted from here).
    done: usize,
}

/// An io_uring serving one file.
pub struct FileRing {
    ring: IoUring,
    file: File,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    finished: VecDeque<RingDone>,
    in_flight: usize,
}

impl FileRing {
    /// A ring of `depth` entries over `file` (at most `depth` requests in flight).
    ///
    /// # Errors
    /// The kernel refused to set up a ring (too old, or io_uring disabled: `sysctl
    /// kernel.io_uring_disabled`, a seccomp filter).
    pub fn new(file: File, depth: u32) -> io::Result<FileRing> {
        let depth = depth.clamp(1, 4096);
        let ring = IoUring::new(depth)?;
        Ok(FileRing {
            ring,
            file,
            slots: (0..depth).map(|_| None).collect(),
            free: (0..depth as usize).rev().collect(),
            finished: VecDeque::new(),
            in_flight: 0,
        })
    }

    /// The file the ring serves.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Requests submitted and not yet returned by [`FileRing::wait`].
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Queues `op` (waiting for a free slot first when `depth` requests are in flight); its
    /// completion will carry `user`.
    ///
    /// # Errors
    /// The kernel refused the submission; `op` is dropped.
    pub fn submit(&mut self, user: u64, op: RingOp) -> io::Result<()> {
        while self.free.is_empty() {
            self.reap(1)?;
        }
        let index = self.free.pop().unwrap_or_default();
        self.slots[index] = Some(Slot { user, op, done: 0 });
        self.in_flight += 1;
        self.push(index)
    }

    /// Finished requests: at least `min` of them if that many are in flight or already finished.
    ///
    /// # Errors
    /// Waiting on the ring failed.
    pub fn wait(&mut self, min: usize) -> io::Result<Vec<RingDone>> {
        let min = min.min(self.finished.len() + self.in_flight);
        while self.finished.len() < min {
            self.reap(1)?;
        }
        // Take what else has finished meanwhile, without waiting.
        self.reap(0)?;
        Ok(self.finished.drain(..).collect())
    }

    /// Pushes slot `index`'s entry (from where it stands) and tells the kernel.
    fn push(&mut self, index: usize) -> io::Result<()> {
        let Some(slot) = self.slots[index].as_mut() else { return Ok(()) };
        let fd = types::Fd(self.file.as_raw_fd());
        let entry = match &mut slot.op {
            RingOp::Read { offset, buf } => {
                let rest = &mut buf[slot.done..];
                opcode::Read::new(fd, rest.as_mut_ptr(), rest.len().min(u32::MAX as usize) as u32)
                    .offset(*offset + slot.done as u64)
                    .build()
            }
            RingOp::Write { offset, buf, dsync } => {
                let rest = &buf[slot.done..];
                opcode::Write::new(fd, rest.as_ptr(), rest.len().min(u32::MAX as usize) as u32)
                    .offset(*offset + slot.done as u64)
                    .rw_flags(if *dsync { RWF_DSYNC } else { 0 })
                    .build()
            }
            RingOp::Sync => {
                opcode::Fsync::new(fd).flags(types::FsyncFlags::DATASYNC).build().flags(squeue::Flags::IO_DRAIN)
            }
        };
        let entry = entry.user_data(index as u64);
        loop {
            // SAFETY: the entry points into the buffer held by `self.slots[index]`, which stays
            // there (its heap memory does not move) until this request's completion is reaped,
            // and `Drop` reaps every request in flight before the buffers are freed.
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_ok() {
                break;
            }
            // The submission queue is full: hand it to the kernel and try again.
            self.ring.submit()?;
        }
        self.ring.submit()?;
        Ok(())
    }

    /// Waits for `want` completions (0: none) and processes every completion available.
    fn reap(&mut self, want: usize) -> io::Result<()> {
        if want > 0 {
            match self.ring.submit_and_wait(want) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let done: Vec<(u64, i32)> = self.ring.completion().map(|c| (c.user_data(), c.result())).collect();
        for (index, res) in done {
            self.complete(index as usize, res)?;
        }
        Ok(())
    }

    /// One completion of slot `index` with result `res`: finished, or resubmitted for the rest.
    fn complete(&mut self, index: usize, res: i32) -> io::Result<()> {
        let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) else { return Ok(()) };
        let outcome = if res == -EINTR || res == -EAGAIN {
            None // retried from where it stands
        } else if res < 0 {
            Some(Err(io::Error::from_raw_os_error(-res)))
        } else {
            match &slot.op {
                RingOp::Sync => Some(Ok(())),
                RingOp::Read { buf, .. } | RingOp::Write { buf, .. } => {
                    slot.done += res as usize;
                    if slot.done >= buf.len() {
                        Some(Ok(()))
                    } else if res == 0 {
                        let kind = match slot.op {
                            RingOp::Read { .. } => io::ErrorKind::UnexpectedEof,
                            _ => io::ErrorKind::WriteZero,
                        };
                        Some(Err(io::Error::new(kind, "the file ended before the request")))
                    } else {
                        None // short: the rest is resubmitted
                    }
                }
            }
        };
        match outcome {
            None => self.push(index),
            Some(result) => {
                let Some(slot) = self.slots[index].take() else { return Ok(()) };
                self.free.push(index);
                self.in_flight -= 1;
                let buf = match slot.op {
                    RingOp::Read { buf, .. } | RingOp::Write { buf, .. } => buf,
                    RingOp::Sync => AlignedBuf::zeroed(0),
                };
                self.finished.push_back(RingDone { user: slot.user, result, buf });
                Ok(())
            }
        }
    }
}

impl Drop for FileRing {
    /// Waits for every request in flight, so no buffer is freed while the kernel may use it.
    fn drop(&mut self) {
        while self.in_flight > 0 {
            if self.reap(1).is_err() {
                // The kernel cannot be waited for: leak the buffers rather than free memory it
                // may still write.
                for slot in self.slots.iter_mut() {
                    std::mem::forget(slot.take());
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileExt, OpenOptionsExt};

    /// A fresh file in the temp directory holding `content`.
    fn temp_file(name: &str, content: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("strata-aio-{}-{name}", std::process::id()));
        std::fs::write(&p, content).unwrap();
        p
    }

    /// A ring over `file`, or `None` (with a note) where this kernel or sandbox has no io_uring.
    fn ring(file: File, depth: u32) -> Option<FileRing> {
        match FileRing::new(file, depth) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("skipped: io_uring is not available here: {e}");
                None
            }
        }
    }

    fn one(r: &mut FileRing, user: u64, op: RingOp) -> RingDone {
        r.submit(user, op).unwrap();
        let mut d = r.wait(1).unwrap();
        assert_eq!(d.len(), 1);
        d.pop().unwrap()
    }

    /// Reads and writes agree with what the kernel's pread/pwrite (std's `FileExt`) see, with
    /// more requests than ring entries in flight.
    #[test]
    fn reads_and_writes_match_the_file_with_many_in_flight() {
        let content: Vec<u8> = (0..64 * 4096u32).map(|i| (i * 7 + i / 4096) as u8).collect();
        let p = temp_file("rw", &content);
        let f = std::fs::OpenOptions::new().read(true).write(true).open(&p).unwrap();
        let Some(mut r) = ring(f, 8) else { return };
        for i in 0..64u64 {
            r.submit(i, RingOp::Read { offset: i * 4096, buf: AlignedBuf::zeroed(4096) }).unwrap();
        }
        let mut seen = 0;
        while r.in_flight() > 0 {
            for d in r.wait(1).unwrap() {
                d.result.unwrap();
                let at = d.user as usize * 4096;
                assert_eq!(&*d.buf, &content[at..at + 4096]);
                seen += 1;
            }
        }
        assert_eq!(seen, 64);
        let data = AlignedBuf::copy_from(&[0xa5; 3000]);
        one(&mut r, 1, RingOp::Write { offset: 5000, buf: data, dsync: true }).result.unwrap();
        one(&mut r, 2, RingOp::Sync).result.unwrap();
        let mut back = vec![0u8; 3002];
        std::fs::File::open(&p).unwrap().read_exact_at(&mut back, 4999).unwrap();
        assert_eq!(back[0], content[4999]);
        assert!(back[1..3001].iter().all(|&b| b == 0xa5));
        assert_eq!(back[3001], content[8000]);
        std::fs::remove_file(&p).ok();
    }

    /// A read running into the end of the file comes back short, is resubmitted for the rest,
    /// and fails with UnexpectedEof when the file has nothing more (pread(2): 0 at end of file).
    #[test]
    fn a_read_past_the_end_fails_and_a_read_to_the_end_succeeds() {
        let p = temp_file("eof", &[3u8; 4096 + 100]);
        let Some(mut r) = ring(std::fs::File::open(&p).unwrap(), 4) else { return };
        let d = one(&mut r, 7, RingOp::Read { offset: 0, buf: AlignedBuf::zeroed(8192) });
        assert_eq!(d.user, 7);
        assert_eq!(d.result.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let d = one(&mut r, 8, RingOp::Read { offset: 4096, buf: AlignedBuf::zeroed(100) });
        d.result.unwrap();
        assert!(d.buf.iter().all(|&b| b == 3));
        std::fs::remove_file(&p).ok();
    }

    /// The kernel's errors come back as the request's result: a write on a file opened
    /// read-only is EBADF (write(2)).
    #[test]
    fn kernel_errors_are_the_request_result() {
        let p = temp_file("ro", &[0u8; 4096]);
        let Some(mut r) = ring(std::fs::File::open(&p).unwrap(), 4) else { return };
        let d = one(&mut r, 1, RingOp::Write { offset: 0, buf: AlignedBuf::zeroed(512), dsync: false });
        assert_eq!(d.result.unwrap_err().raw_os_error(), Some(9)); // EBADF
        std::fs::remove_file(&p).ok();
    }

    /// With O_DIRECT, an aligned request goes through and a misaligned offset is refused by the
    /// kernel with EINVAL (open(2), O_DIRECT: "alignment restrictions").
    #[test]
    fn o_direct_takes_aligned_requests_and_refuses_misaligned_ones() {
        let content: Vec<u8> = (0..16 * 4096u32).map(|i| i as u8 ^ 0x5a).collect();
        let p = temp_file("direct", &content);
        let f = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(&p) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("skipped: the temp directory refuses O_DIRECT: {e}");
                return;
            }
        };
        let Some(mut r) = ring(f, 4) else { return };
        let d = one(&mut r, 1, RingOp::Read { offset: 4096, buf: AlignedBuf::zeroed(8192) });
        d.result.unwrap();
        assert_eq!(&*d.buf, &content[4096..12288]);
        let d = one(&mut r, 2, RingOp::Read { offset: 1, buf: AlignedBuf::zeroed(4096) });
        assert_eq!(d.result.unwrap_err().raw_os_error(), Some(22)); // EINVAL
        std::fs::remove_file(&p).ok();
    }
}
