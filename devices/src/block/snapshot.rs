//! Drives in machine snapshots: freezing a qcow2 drive's image and reopening it on restore.
//!
//! A save must capture the disk exactly as the guest saw it, without copying it. The drive is
//! flushed and *pivoted*: a fresh qcow2 overlay whose backing file is the current image is created
//! (beside the snapshot file), the drive continues on the overlay, and the image it was writing
//! until then is frozen: nothing writes it any more. The snapshot records the frozen image and the
//! identity (path, length, modification time) of every file in its backing chain. A restore checks
//! that chain against the files on disk, refuses one that changed (someone wrote the image after
//! the save), then creates the overlay afresh on the frozen image and opens it, so every restore of
//! the same snapshot starts from the same disk.
//!
//! Raw images have no backing files, so they cannot be pivoted: a writable raw drive refuses the
//! save (convert the image with `qemu-img convert -O qcow2`). A read-only drive of either format
//! is never written, so it is recorded and reopened as it is, chain checked, no overlay.

use super::options::{Aio, CacheMode, DetectZeroes, DriveSpec, Format};
use super::{probe, BlockError, Drive};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One file of a backing chain as it was when the snapshot was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFile {
    /// The path (as the image names it, resolved against the image's directory).
    pub path: String,
    /// Its length in bytes.
    pub len: u64,
    /// Its modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
}

/// What a snapshot records of one drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenDrive {
    /// The `--drive` options, with `file` naming the frozen image.
    pub options: String,
    /// The frozen image and its backing files, top first.
    pub chain: Vec<ChainFile>,
    /// The overlay a restore writes to (empty for a read-only drive).
    pub overlay: String,
}

/// Deepest backing chain followed.
const MAX_CHAIN: usize = 16;

fn image_error(path: &str, problem: impl Into<String>) -> BlockError {
    BlockError::Image { path: path.to_string(), problem: problem.into() }
}

fn open_error(path: &str) -> impl FnOnce(std::io::Error) -> BlockError + '_ {
    move |source| BlockError::Open { path: path.to_string(), source }
}

/// The backing file a qcow2 image names (QEMU docs/interop/qcow2.txt: big-endian
/// backing_file_offset u64 at byte 8, backing_file_size u32 at byte 16), resolved against the
/// image's directory.
pub(crate) fn backing_of(path: &str) -> Result<Option<String>, BlockError> {
    let f = std::fs::File::open(path).map_err(open_error(path))?;
    let mut h = [0u8; 20];
    f.read_exact_at(&mut h, 0).map_err(open_error(path))?;
    let offset = u64::from_be_bytes(h[8..16].try_into().unwrap_or_default());
    let size = u32::from_be_bytes(h[16..20].try_into().unwrap_or_default());
    if offset == 0 || size == 0 {
        return Ok(None);
    }
    if size > 1023 {
        return Err(image_error(path, format!("backing file name of {size} bytes")));
    }
    let mut name = vec![0u8; size as usize];
    f.read_exact_at(&mut name, offset).map_err(open_error(path))?;
    let name = String::from_utf8(name).map_err(|_| image_error(path, "backing file name is not UTF-8"))?;
    let dir = Path::new(path).parent().unwrap_or(Path::new("."));
    Ok(Some(dir.join(name).display().to_string()))
}

/// `path` and the files it is backed by, top first, with their current length and mtime.
///
/// # Errors
/// A file cannot be read, or the chain is deeper than 16.
pub fn chain_of(path: &str) -> Result<Vec<ChainFile>, BlockError> {
    let mut chain = Vec::new();
    let mut next = Some(path.to_string());
    while let Some(p) = next {
        if chain.len() == MAX_CHAIN {
            return Err(image_error(path, "backing chain deeper than 16 files"));
        }
        let meta = std::fs::metadata(&p).map_err(open_error(&p))?;
        next = if probe(&p)? == Format::Qcow2 { backing_of(&p)? } else { None };
        chain.push(ChainFile { path: p, len: meta.len(), mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec() });
    }
    Ok(chain)
}

/// Creates (or truncates) `overlay`: an empty qcow2 image of `size` bytes backed by the qcow2
/// image `backing`, through imago.
fn create_overlay(overlay: &str, backing: &str, size: u64) -> Result<(), BlockError> {
    use imago::{FormatCreateBuilder, StorageOpenOptions};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(overlay)
        .map_err(open_error(overlay))?;
    let storage = imago::file::File::from_open_file(file, StorageOpenOptions::new().write(true).filename(overlay))
        .map_err(open_error(overlay))?;
    // An absolute backing name, so the overlay does not depend on where it is opened from.
    let backing = std::fs::canonicalize(backing).map_err(open_error(backing))?.display().to_string();
    imago::qcow2::Qcow2::<imago::file::File>::create_builder(storage)
        .size(size)
        .backing(backing, "qcow2".into())
        .create()
        .map_err(|e| image_error(overlay, e.to_string().replace('\n', "; ")))
}

/// A `--drive` value for `spec` with `file` replaced (commas doubled, as the syntax wants).
fn options_for(spec: &DriveSpec, file: &str) -> String {
    let format = match spec.format {
        Some(Format::Raw) => ",format=raw",
        Some(Format::Qcow2) => ",format=qcow2",
        None => "",
    };
    let cache = match spec.cache {
        CacheMode::Writethrough => "writethrough",
        CacheMode::Writeback => "writeback",
        CacheMode::None => "none",
        CacheMode::Directsync => "directsync",
        CacheMode::Unsafe => "unsafe",
    };
    let zeroes = match spec.detect_zeroes {
        DetectZeroes::Off => "off",
        DetectZeroes::On => "on",
        DetectZeroes::Unmap => "unmap",
    };
    let aio = match spec.aio {
        Aio::Threads => "threads",
        Aio::Native => "native",
        Aio::IoUring => "io_uring",
    };
    format!(
        "file={}{format},readonly={},cache={cache},discard={},detect-zeroes={zeroes},aio={aio}",
        file.replace(',', ",,"),
        if spec.readonly { "on" } else { "off" },
        if spec.discard_unmap { "unmap" } else { "ignore" },
    )
}

impl Drive {
    /// Freezes the drive's image for a snapshot: flushes it and, for a writable qcow2 drive,
    /// continues on a new overlay at `overlay` backed by it (see the module documentation).
    ///
    /// # Errors
    /// A writable raw drive (it cannot be pivoted), or the flush, the overlay's creation or its
    /// opening failed (the drive then stays on its image).
    pub fn freeze(&mut self, overlay: &Path) -> Result<FrozenDrive, BlockError> {
        self.backend.flush().map_err(open_error(&self.spec.file))?;
        // An absolute name, so a restore from another directory finds the same file.
        let file = std::fs::canonicalize(&self.spec.file).map_err(open_error(&self.spec.file))?.display().to_string();
        let format = match self.spec.format {
            Some(f) => f,
            None => probe(&file)?,
        };
        let frozen_spec = DriveSpec { format: Some(format), ..self.spec.clone() };
        if self.spec.readonly {
            return Ok(FrozenDrive {
                options: options_for(&frozen_spec, &file),
                chain: chain_of(&file)?,
                overlay: String::new(),
            });
        }
        if format == Format::Raw {
            return Err(image_error(
                &file,
                "a writable raw drive cannot be saved in a snapshot (it cannot be frozen under an overlay); \
                 use a qcow2 image (qemu-img convert -O qcow2) or readonly=on",
            ));
        }
        let overlay = overlay.display().to_string();
        create_overlay(&overlay, &file, self.size())?;
        let spec = DriveSpec { file: overlay.clone(), format: Some(Format::Qcow2), ..self.spec.clone() };
        // Replacing the backend closes the frozen image's writable handle before its identity
        // is taken; from here on only the overlay is written.
        *self = Drive::open(&spec)?;
        Ok(FrozenDrive { options: options_for(&frozen_spec, &file), chain: chain_of(&file)?, overlay })
    }

    /// Reopens a drive a snapshot recorded: checks that the frozen chain is unchanged, recreates
    /// the overlay on the frozen image and opens it (a read-only drive is opened as it was).
    ///
    /// # Errors
    /// The chain changed or is unreadable, the options no longer parse, or the overlay cannot be
    /// created or opened; each names the file.
    pub fn reopen(frozen: &FrozenDrive) -> Result<Drive, BlockError> {
        let spec = DriveSpec::parse(&frozen.options).map_err(|e| image_error("snapshot", e.to_string()))?;
        let now = chain_of(&spec.file)?;
        for (i, saved) in frozen.chain.iter().enumerate() {
            let changed = match now.get(i) {
                None => Some(format!("is no longer in the backing chain of {}", spec.file)),
                Some(n) if n.path != saved.path => Some(format!("is no longer in the backing chain ({} is)", n.path)),
                Some(n) if n.len != saved.len || n.mtime_ns != saved.mtime_ns => {
                    Some("changed since the snapshot was saved (its length or modification time differs)".into())
                }
                Some(_) => None,
            };
            if let Some(why) = changed {
                return Err(image_error(&saved.path, why));
            }
        }
        if now.len() != frozen.chain.len() {
            return Err(image_error(&spec.file, "its backing chain changed since the snapshot was saved"));
        }
        if frozen.overlay.is_empty() {
            return Drive::open(&spec);
        }
        create_overlay(&frozen.overlay, &spec.file, now_size(&spec)?)?;
        Drive::open(&DriveSpec { file: frozen.overlay.clone(), format: Some(Format::Qcow2), ..spec })
    }
}

/// The guest-visible size of the frozen image (opened read-only).
fn now_size(spec: &DriveSpec) -> Result<u64, BlockError> {
    Ok(Drive::open(&DriveSpec { readonly: true, ..spec.clone() })?.size())
}

/// The overlay file for drive `index` of the snapshot at `snapshot`: `SNAPSHOT.vdX.qcow2` beside it.
pub fn overlay_path(snapshot: &Path, index: usize) -> PathBuf {
    let mut name = snapshot.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".vd{}.qcow2", (b'a' + (index as u8 % 26)) as char));
    snapshot.with_file_name(name)
}
