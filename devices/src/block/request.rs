//! What a drive's I/O thread is asked and answers: the operations ([`Op`]), their completions,
//! the synchronous way to run one ([`run_op`]) and the wake-up hook. Both workers use them, the
//! portable one (`iothread.rs`) and the io_uring one (`uring.rs`), so they live apart from both.

use super::Drive;
use aio::AlignedBuf;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        /// The bytes (aligned, so `O_DIRECT` and io_uring can take them as they are).
        data: AlignedBuf,
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
    pub result: io::Result<AlignedBuf>,
    /// When the worker finished it (for [`IoStats::wait`]).
    pub done_at: Instant,
    /// How long the worker took.
    pub service: Duration,
}

/// Runs `op` on `drive` (also the synchronous path).
///
/// # Errors
/// The drive's error.
pub fn run_op(drive: &mut Drive, op: Op) -> io::Result<AlignedBuf> {
    let none = |()| AlignedBuf::zeroed(0);
    match op {
        Op::Read { offset, len } => {
            let mut buf = AlignedBuf::zeroed(len);
            drive.read(&mut buf, offset)?;
            Ok(buf)
        }
        Op::Write { offset, data } => drive.write(&data, offset).map(none),
        Op::Flush => drive.flush().map(none),
        Op::Discard { offset, len } => drive.discard(offset, len).map(none),
        Op::WriteZeroes { offset, len, unmap } => drive.write_zeroes(offset, len, unmap).map(none),
    }
}

/// Wake-up hook called (on the I/O thread) after each completion.
pub type Wake = Arc<dyn Fn() + Send + Sync>;
