//! Reading a descriptor chain's device-readable bytes and writing its device-writable bytes as two
//! byte streams, whatever the driver's split into buffers (virtio 1.2, 2.6.4: "the device MUST NOT
//! make assumptions about the particular arrangement of descriptors").

use super::queue::{Chain, Segment};
use crate::dma::{DmaError, GuestMemory};

/// A cursor over some of a chain's segments.
#[derive(Debug, Clone)]
pub struct ChainCursor {
    segments: Vec<Segment>,
    /// Index of the current segment and the offset inside it.
    at: (usize, u32),
}

impl ChainCursor {
    /// The device-readable part of `chain`.
    pub fn readable(chain: &Chain) -> Self {
        Self::of(chain.segments.iter().filter(|s| !s.writable).copied().collect())
    }

    /// The device-writable part of `chain`.
    pub fn writable(chain: &Chain) -> Self {
        Self::of(chain.segments.iter().filter(|s| s.writable).copied().collect())
    }

    fn of(segments: Vec<Segment>) -> Self {
        ChainCursor { segments, at: (0, 0) }
    }

    /// Bytes left from the cursor to the end.
    pub fn remaining(&self) -> u64 {
        let (i, off) = self.at;
        self.segments.iter().skip(i).map(|s| u64::from(s.len)).sum::<u64>() - u64::from(off)
    }

    /// Shortens the stream to its first `len` bytes from the cursor (to keep a trailing status byte
    /// out of the data).
    pub fn truncate(&mut self, mut len: u64) {
        let (i, off) = self.at;
        let mut keep = Vec::new();
        for (n, s) in self.segments.iter().enumerate().skip(i) {
            let avail = u64::from(s.len) - if n == i { u64::from(off) } else { 0 };
            let take = avail.min(len);
            let mut s = *s;
            s.len = (take + if n == i { u64::from(off) } else { 0 }) as u32;
            keep.push(s);
            len -= take;
            if len == 0 {
                break;
            }
        }
        self.segments = keep;
        self.at.0 = 0;
    }

    /// The next piece: (guest address, length) of at most `max` bytes, advancing past it.
    pub fn next_piece(&mut self, max: u64) -> Option<(u64, usize)> {
        loop {
            let s = *self.segments.get(self.at.0)?;
            let left = u64::from(s.len - self.at.1);
            if left == 0 {
                self.at = (self.at.0 + 1, 0);
                continue;
            }
            let n = left.min(max);
            let addr = s.addr.wrapping_add(u64::from(self.at.1));
            self.at.1 += n as u32;
            return Some((addr, n as usize));
        }
    }

    /// Reads exactly `buf.len()` bytes; `Ok(false)` if the stream is shorter.
    ///
    /// # Errors
    /// A buffer outside guest RAM.
    pub fn read(&mut self, mem: &dyn GuestMemory, buf: &mut [u8]) -> Result<bool, DmaError> {
        if self.remaining() < buf.len() as u64 {
            return Ok(false);
        }
        let mut done = 0;
        while done < buf.len() {
            let Some((addr, n)) = self.next_piece((buf.len() - done) as u64) else { return Ok(false) };
            mem.read(addr, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(true)
    }

    /// Writes all of `data`; `Ok(false)` if the stream is shorter (nothing written past its end).
    ///
    /// # Errors
    /// A buffer outside guest RAM.
    pub fn write(&mut self, mem: &mut dyn GuestMemory, data: &[u8]) -> Result<bool, DmaError> {
        if self.remaining() < data.len() as u64 {
            return Ok(false);
        }
        let mut done = 0;
        while done < data.len() {
            let Some((addr, n)) = self.next_piece((data.len() - done) as u64) else { return Ok(false) };
            mem.write(addr, &data[done..done + n])?;
            done += n;
        }
        Ok(true)
    }
}
