//! Raw images: byte n of the disk is byte n of the file. Discard punches a hole in the file
//! (`fallocate(PUNCH_HOLE | KEEP_SIZE)` on Linux), so the host gets the space back.

use super::{BlockBackend, BlockError};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// A raw image file.
pub struct RawImage {
    file: File,
    size: u64,
}

impl RawImage {
    /// Opens `path` (read-only when `readonly`).
    ///
    /// # Errors
    /// [`BlockError::Open`] naming the file.
    pub fn open(path: &str, readonly: bool) -> Result<RawImage, BlockError> {
        let open = |e: io::Error| BlockError::Open { path: path.to_string(), source: e };
        let file = std::fs::OpenOptions::new().read(true).write(!readonly).open(path).map_err(open)?;
        let size = file.metadata().map_err(open)?.len();
        Ok(RawImage { file, size })
    }
}

impl BlockBackend for RawImage {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
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
