//! Raw images: byte n of the disk is byte n of the file. Discard punches a hole in the file
//! (`fallocate(PUNCH_HOLE | KEEP_SIZE)` on Linux), so the host gets the space back.
//!
//! `cache=none` and `cache=directsync` open the file with `O_DIRECT` on Linux (as QEMU does):
//! reads and writes bypass the host page cache. `O_DIRECT` wants the memory, offset and length
//! aligned (to what `statx(STATX_DIOALIGN)` reports, Linux 6.1+; a page when it reports
//! nothing); a request that is not goes through an aligned bounce buffer covering the aligned
//! range around it (read, patch and write back for a write). Elsewhere the flag is not used and
//! the host cache is bypassed only in the sense that writes are flushed as the mode says.

use super::{BlockBackend, BlockError};
use aio::AlignedBuf;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// A raw image file.
pub struct RawImage {
    file: File,
    size: u64,
    /// `O_DIRECT`'s (memory, offset/length) alignment, when the file was opened with it.
    direct: Option<DirectAlign>,
}

/// What `O_DIRECT` needs aligned, in bytes (powers of two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectAlign {
    /// Buffer addresses.
    pub memory: u64,
    /// File offsets and lengths.
    pub offset: u64,
}

impl DirectAlign {
    /// True when `buf` at `offset` can go to the file as it is.
    pub fn fits(&self, buf: &[u8], offset: u64) -> bool {
        (buf.as_ptr() as u64).is_multiple_of(self.memory)
            && offset.is_multiple_of(self.offset)
            && (buf.len() as u64).is_multiple_of(self.offset)
    }
}

impl RawImage {
    /// Opens `path` (read-only when `readonly`; with `O_DIRECT` when `direct`, on Linux).
    ///
    /// # Errors
    /// [`BlockError::Open`] naming the file (`O_DIRECT` refused by the host file system included).
    pub fn open(path: &str, readonly: bool, direct: bool) -> Result<RawImage, BlockError> {
        let open = |e: io::Error| BlockError::Open { path: path.to_string(), source: e };
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(!readonly);
        #[cfg(target_os = "linux")]
        if direct {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32);
        }
        let file = options.open(path).map_err(|e| {
            if direct && e.raw_os_error() == Some(22) {
                // EINVAL from open(2) with O_DIRECT: the file system does not do direct I/O.
                open(io::Error::other("cache=none/directsync: the host file system refuses O_DIRECT"))
            } else {
                open(e)
            }
        })?;
        let size = file.metadata().map_err(open)?.len();
        let direct = (direct && cfg!(target_os = "linux")).then(|| direct_align(&file));
        Ok(RawImage { file, size, direct })
    }

    /// Reads `buf` at `offset` through an aligned bounce buffer (a tail past the end of the
    /// file reads as zeros).
    fn bounce_read(&self, a: DirectAlign, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = offset & !(a.offset - 1);
        let end = (offset + buf.len() as u64).next_multiple_of(a.offset);
        let mut bounce = AlignedBuf::zeroed((end - start) as usize);
        read_until_eof(&self.file, &mut bounce, start)?;
        let skip = (offset - start) as usize;
        buf.copy_from_slice(&bounce[skip..skip + buf.len()]);
        Ok(())
    }
}

/// Reads from `offset` until `buf` is full or the file ends (the rest stays as it was).
fn read_until_eof(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The file's `O_DIRECT` alignment: `statx(STATX_DIOALIGN)` where the kernel reports it, a page
/// otherwise.
#[cfg(target_os = "linux")]
fn direct_align(file: &File) -> DirectAlign {
    use rustix::fs::{statx, AtFlags, StatxFlags};
    let page = DirectAlign { memory: 4096, offset: 4096 };
    match statx(file, "", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN) {
        Ok(x) if x.stx_mask & StatxFlags::DIOALIGN.bits() != 0 && x.stx_dio_offset_align != 0 => DirectAlign {
            memory: u64::from(x.stx_dio_mem_align.max(1)).next_power_of_two(),
            offset: u64::from(x.stx_dio_offset_align).next_power_of_two(),
        },
        _ => page,
    }
}

#[cfg(not(target_os = "linux"))]
fn direct_align(_file: &File) -> DirectAlign {
    DirectAlign { memory: 1, offset: 1 }
}

impl BlockBackend for RawImage {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self.direct {
            Some(a) if !a.fits(buf, offset) => self.bounce_read(a, buf, offset),
            _ => self.file.read_exact_at(buf, offset),
        }
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        match self.direct {
            Some(a) if !a.fits(buf, offset) => {
                // Read the aligned blocks around it, patch, write them back.
                let start = offset & !(a.offset - 1);
                let end = (offset + buf.len() as u64).next_multiple_of(a.offset);
                let mut bounce = AlignedBuf::zeroed((end - start) as usize);
                read_until_eof(&self.file, &mut bounce, start)?;
                let skip = (offset - start) as usize;
                bounce[skip..skip + buf.len()].copy_from_slice(buf);
                self.file.write_all_at(&bounce, start)
            }
            _ => self.file.write_all_at(buf, offset),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        punch_hole(&self.file, offset, len)
    }

    fn write_zeroes(&mut self, offset: u64, len: u64, unmap: bool) -> io::Result<()> {
        if unmap && punch_hole(&self.file, offset, len).is_ok() {
            return Ok(()); // a hole reads as zeros
        }
        super::write_zero_chunks(self, offset, len)
    }

    fn raw_file(&self) -> Option<(&File, Option<DirectAlign>)> {
        Some((&self.file, self.direct))
    }
}

/// Deallocates a byte range of a host file (it then reads as zeros).
///
/// # Errors
/// The host refused.
#[cfg(target_os = "linux")]
pub fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use rustix::fs::{fallocate, FallocateFlags};
    fallocate(file, FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, offset, len).map_err(io::Error::from)
}

/// Elsewhere discard is a hint that is not taken (the spec allows a device to ignore it).
#[cfg(not(target_os = "linux"))]
pub fn punch_hole(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Ok(())
}
