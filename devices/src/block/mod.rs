//! Block backends for disk devices: image formats behind one [`BlockBackend`] trait, and
//! [`Drive`], which adds the `--drive` semantics (read-only, cache mode, discard, detect-zeroes)
//! on top, so a device model only sees "read, write, flush, discard, write zeroes".
//!
//! | module | what |
//! |---|---|
//! | [`iothread`] | a drive's requests served on a worker thread, completions through a channel |
//! | [`options`] | the `--drive` option, parsed as QEMU documents `-drive` |
//! | [`raw`] | raw image files |
//! | [`qcow2`] | qcow2 images and backing chains, through `imago` |
//! | [`request`] | the operations a drive's I/O thread serves, their completions, the wake-up hook |
//! | [`snapshot`] | freezing a drive for a machine snapshot, reopening it on restore |
//! | [`uring`] | the I/O thread's io_uring path for raw images (Linux, `aio=io_uring`) |

pub mod iothread;
pub mod options;
pub mod qcow2;
pub mod raw;
pub mod request;
pub mod snapshot;
#[cfg(target_os = "linux")]
pub mod uring;

use options::{CacheMode, DetectZeroes, DriveSpec, Format};
use std::io;

/// Why an image could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The host refused to open or read the file.
    #[error("{path}: {source}")]
    Open {
        /// The image file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The image is not what it claims to be.
    #[error("{path}: {problem}")]
    Image {
        /// The image file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

/// A disk image: a byte-addressed store of `size()` bytes.
pub trait BlockBackend: Send {
    /// The disk's size in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` from `offset`.
    ///
    /// # Errors
    /// The host I/O failed.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes `buf` at `offset`.
    ///
    /// # Errors
    /// The host I/O failed.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes completed writes stable.
    ///
    /// # Errors
    /// The host I/O failed.
    fn flush(&mut self) -> io::Result<()>;
    /// Gives the range back to the host if the format can; its content becomes unspecified.
    ///
    /// # Errors
    /// The host I/O failed.
    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()>;
    /// Makes the range read as zeros, deallocating it where possible when `unmap`.
    ///
    /// # Errors
    /// The host I/O failed.
    fn write_zeroes(&mut self, offset: u64, len: u64, unmap: bool) -> io::Result<()>;
    /// The host file holding the disk byte for byte (raw images), and its `O_DIRECT` alignment
    /// when opened with it: what an io_uring may read and write directly. `None` (the default):
    /// requests must go through the backend.
    fn raw_file(&self) -> Option<(&std::fs::File, Option<raw::DirectAlign>)> {
        None
    }
}

/// Writes zeros in bounded chunks (for backends with no cheaper way).
///
/// # Errors
/// The host I/O failed.
pub fn write_zero_chunks(b: &mut dyn BlockBackend, offset: u64, len: u64) -> io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK.min(len) as usize];
    let mut done = 0;
    while done < len {
        let n = CHUNK.min(len - done);
        b.write_at(&zeros[..n as usize], offset + done)?;
        done += n;
    }
    Ok(())
}

/// An opened `--drive`: an image plus the options that decide how guest requests reach it.
pub struct Drive {
    backend: Box<dyn BlockBackend>,
    spec: DriveSpec,
    /// Write-through syncs are left to [`Drive::sync_deferred`] (the I/O thread's group commit).
    defer_sync: bool,
    /// A write under `defer_sync` has not been synced yet.
    unsynced: bool,
}

/// The qcow2 magic, "QFI\xfb" (QEMU docs/interop/qcow2.txt).
pub const QCOW2_MAGIC: [u8; 4] = *b"QFI\xfb";

impl Drive {
    /// Opens the image `spec` names, probing the format when none is given.
    ///
    /// # Errors
    /// [`BlockError`] naming the file.
    pub fn open(spec: &DriveSpec) -> Result<Drive, BlockError> {
        let format = match spec.format {
            Some(f) => f,
            None => probe(&spec.file)?,
        };
        let backend: Box<dyn BlockBackend> = match format {
            Format::Raw => Box::new(raw::RawImage::open(&spec.file, spec.readonly, spec.cache.direct())?),
            Format::Qcow2 => Box::new(qcow2::Qcow2Image::open_with(&spec.file, spec.readonly, spec.cache.direct())?),
        };
        Ok(Drive { backend, spec: spec.clone(), defer_sync: false, unsynced: false })
    }

    /// A drive over any backend (tests, benchmarks).
    pub fn with_backend(backend: Box<dyn BlockBackend>, spec: DriveSpec) -> Drive {
        Drive { backend, spec, defer_sync: false, unsynced: false }
    }

    /// The options it was opened with.
    pub fn spec(&self) -> &DriveSpec {
        &self.spec
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.backend.size()
    }

    /// Read-only: writes are refused.
    pub fn readonly(&self) -> bool {
        self.spec.readonly
    }

    /// Reads `buf` at `offset`.
    ///
    /// # Errors
    /// The host I/O failed.
    pub fn read(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.backend.read_at(buf, offset)
    }

    /// Writes `buf` at `offset`; with detect-zeroes an all-zero buffer becomes write-zeroes (or a
    /// discard with `detect-zeroes=unmap,discard=unmap`); with a write-through cache mode the
    /// data is on stable storage when this returns.
    ///
    /// # Errors
    /// Read-only drive, or the host I/O failed.
    pub fn write(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_writable()?;
        if self.spec.detect_zeroes != DetectZeroes::Off && buf.iter().all(|&b| b == 0) {
            let unmap = self.spec.detect_zeroes == DetectZeroes::Unmap && self.spec.discard_unmap;
            self.backend.write_zeroes(offset, buf.len() as u64, unmap)?;
        } else {
            self.backend.write_at(buf, offset)?;
        }
        self.after_write()
    }

    /// A guest flush (ignored with `cache=unsafe`).
    ///
    /// # Errors
    /// The host I/O failed.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.spec.cache == CacheMode::Unsafe {
            return Ok(());
        }
        self.unsynced = false;
        self.backend.flush()
    }

    /// A guest discard: passed on with `discard=unmap`, dropped otherwise.
    ///
    /// # Errors
    /// Read-only drive, or the host I/O failed.
    pub fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        self.check_writable()?;
        if self.spec.discard_unmap {
            self.backend.discard(offset, len)?;
            self.after_write()?;
        }
        Ok(())
    }

    /// A guest write-zeroes; `unmap` (the guest allows deallocation) is honoured with `discard=unmap`.
    ///
    /// # Errors
    /// Read-only drive, or the host I/O failed.
    pub fn write_zeroes(&mut self, offset: u64, len: u64, unmap: bool) -> io::Result<()> {
        self.check_writable()?;
        self.backend.write_zeroes(offset, len, unmap && self.spec.discard_unmap)?;
        self.after_write()
    }

    /// The host file an io_uring may serve this drive's reads, writes and flushes on (a raw
    /// image), with its `O_DIRECT` alignment if it was opened with it.
    pub fn raw_file(&self) -> Option<(&std::fs::File, Option<raw::DirectAlign>)> {
        self.backend.raw_file()
    }

    /// True when writing `buf` is a plain write of those bytes (not turned into write-zeroes or
    /// a discard by detect-zeroes, not refused as read-only), so it may bypass [`Drive::write`].
    pub fn plain_write(&self, buf: &[u8]) -> bool {
        !self.spec.readonly && (self.spec.detect_zeroes == DetectZeroes::Off || buf.iter().any(|&b| b != 0))
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.spec.readonly {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "read-only drive"));
        }
        Ok(())
    }

    fn after_write(&mut self) -> io::Result<()> {
        if self.spec.cache.write_through() {
            if self.defer_sync {
                self.unsynced = true;
            } else {
                self.backend.flush()?;
            }
        }
        Ok(())
    }

    /// Group commit (for the I/O thread): with `defer`, a write-through write returns before its
    /// sync, and the caller must call [`Drive::sync_deferred`] before it tells the guest that any
    /// such write completed. One sync then covers every write since the last one.
    pub fn defer_write_through_sync(&mut self, defer: bool) {
        self.defer_sync = defer;
    }

    /// Makes the writes deferred since the last sync stable (nothing to do when there are none).
    ///
    /// # Errors
    /// The host I/O failed: none of those writes may be reported complete.
    pub fn sync_deferred(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.unsynced) {
            self.backend.flush()?;
        }
        Ok(())
    }
}

/// The format of `path` from its first bytes: qcow2 by its magic, else raw.
///
/// # Errors
/// The file cannot be read.
pub fn probe(path: &str) -> Result<Format, BlockError> {
    use std::io::Read;
    let open = |e: io::Error| BlockError::Open { path: path.to_string(), source: e };
    let mut f = std::fs::File::open(path).map_err(open)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).map_err(open)?;
    Ok(if n == 4 && magic == QCOW2_MAGIC { Format::Qcow2 } else { Format::Raw })
}
