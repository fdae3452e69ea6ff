//! Machine snapshots: the whole virtual PC in one file, restorable by any engine.
//!
//! A snapshot holds the architectural CPU state, every device's state, the machine loop's own
//! state and guest RAM. It is taken where the machine loop polls the devices (between two CPU
//! slices), so a restored machine continues exactly as the saved one would have: with
//! `--deterministic` the serial output of save-then-restore equals an uninterrupted run's.
//! Engine-private caches (decoded blocks, the TLB) are not saved; they refill.
//!
//! # File format, version 2 (version 1 is still read)
//!
//! All integers little-endian. Offsets are from the start of the file.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `STRATASN` |
//! | 8 | 4 | format version (2; 1 is still read) |
//! | 12 | 4 | header length H: 32 + 32 × section count |
//! | 16 | 4 | section count (4, or 5 with a disks section) |
//! | 20 | 4 | reserved (0) |
//! | 24 | 8 | RAM size in bytes |
//! | 32 | 32 × n | section table, one entry per section: kind u32 (1 CPU, 2 devices, 3 machine, 4 RAM, 5 disks), reserved u32, offset u64, length u64, CRC32 u32, reserved u32 |
//! | H | 4 | CRC32 of bytes 0..H (the header checksum) |
//!
//! The CPU, devices, machine and (when the machine has virtio functions) disks sections follow
//! the header back to back; their CRC32 covers their bytes. The disks section (`disks.rs`) holds
//! each virtio function's transport and queue state and its drive: the frozen image's backing
//! chain and the overlay the drive pivoted to (`devices::block::snapshot`). RAM comes last, raw, at an offset that is a multiple of 64 KiB (so it can be
//! mapped on hosts with 4, 16 or 64 KiB pages), and the file ends with it. It is **sparse**: 4 KiB
//! pages that are all zero are holes (the file is extended with `set_len`, then only non-zero
//! runs are written, each at its offset), so saving a mostly empty 4 GiB guest writes little.
//! The RAM checksum is the CRC32 of, for each non-zero page in ascending order, its page number
//! (u64) followed by its 4096 bytes; a hole and a page of zeros are the same.
//!
//! Section payloads are sequences of fixed-width values with no tags, in the order the encoders
//! write them (`cpu.rs`, `board.rs`, `machine.rs`; `codec.rs` gives the encoding of options,
//! flags and byte strings). The CPU section stores every `CpuState` field explicitly, RFLAGS
//! materialized, never a memory image of the struct, so the format does not depend on the host's
//! layout or on how tier 0 keeps lazy flags. Device times are stored with the device's own
//! clock reading (`saved_at_ns`), and the machine section stores the machine clock: a restore
//! under a clock that reads differently (host time in a new process) re-anchors every timer and
//! the TSC offset, so the guest sees time continue from where it was saved.
//!
//! Version 2 added, at the end of the machine section, the CPU's event state that is not
//! architectural register state: the STI interrupt shadow, NMI blocking (an NMI handler runs
//! until its IRET) and the AMD performance-monitoring MSRs. A version 1 file restores with the
//! shadow and NMI blocking clear and the counters zero, which is what a v1 build resumed with.
//!
//! Why a hand-written encoder rather than serde: the `devices` crate keeps no serialization
//! dependency (its states are plain structs), the format must be stable and documented field by
//! field, and an explicit encoder that destructures each struct completely turns "a field was
//! added but not saved" into a compile error. The whole codec is about a hundred lines.
//!
//! # Restore
//!
//! Restore reads and checks the header and the three small sections (magic, version, every
//! checksum, every section's extent against the file's length), decodes them, maps the RAM image
//! copy-on-write from the file (`GuestRam::map_file_copy`: nothing is read, guest writes stay
//! private) and only then builds the machine, so its time does not depend on the RAM size and a
//! failure leaves nothing half-built. The RAM checksum is not checked by a restore (that would
//! read all of RAM); [`verify_snapshot`] checks everything.
//!
//! Saving writes a temporary file beside the target and renames it into place: a failed save
//! leaves no partial snapshot, and a machine running from an older file of the same name keeps
//! its mapping of that file.

mod board;
mod codec;
mod cpu;
mod disks;
mod file;
mod machine;
#[cfg(test)]
mod tests;

pub use board::BoardState;
pub use file::{MAGIC, OLDEST_READABLE, RAM_ALIGN, VERSION};
pub use machine::MachineSection;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a snapshot could not be saved or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be opened, read, written or mapped.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// The path is a directory or another non-file.
    #[error("{}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
    /// The file does not start with the snapshot magic.
    #[error("{}: not a Strata snapshot ({reason})", path.display())]
    NotASnapshot { path: PathBuf, reason: &'static str },
    /// A format version this build cannot read.
    #[error("{}: snapshot format version {found} is not supported (this build reads versions 1 to {supported})", path.display())]
    UnsupportedVersion { path: PathBuf, found: u32, supported: u32 },
    /// The file ends before the data its header describes.
    #[error("{}: truncated (needs at least {needed} bytes, the file has {actual})", path.display())]
    Truncated { path: PathBuf, needed: u64, actual: u64 },
    /// A section's bytes do not match its checksum.
    #[error("{}: checksum mismatch in the {section} section (the file is corrupt)", path.display())]
    ChecksumMismatch { path: PathBuf, section: &'static str },
    /// The running engine could not hand over the CPU state to be saved.
    #[error("cannot save: {detail}")]
    Engine { detail: String },
    /// A disk could not be saved (a writable raw drive, a device that cannot be saved, an image
    /// that could not be frozen) or restored (its frozen chain changed or is gone).
    #[error("{detail}")]
    Disk { detail: String },
    /// Sizes or values that contradict each other (section lengths, counts, tags).
    #[error("{}: inconsistent {section} section: {detail}", path.display())]
    Inconsistent { path: PathBuf, section: &'static str, detail: String },
}

/// What a save wrote.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub path: PathBuf,
    /// Guest RAM size.
    pub ram_bytes: u64,
    /// RAM in non-zero pages, the part actually written.
    pub ram_data_bytes: u64,
    /// The file's length (holes included).
    pub file_bytes: u64,
    /// Instructions retired when saved.
    pub retired: u64,
    /// The machine clock when saved (ns).
    pub clock_ns: u64,
    /// How long the save took.
    pub elapsed: Duration,
}

/// Checks a snapshot completely, RAM image included (a restore skips the RAM checksum).
///
/// # Errors
/// As [`crate::machine::Machine::restore_snapshot`], plus a RAM checksum mismatch.
pub fn verify_snapshot(path: &Path) -> Result<(), SnapshotError> {
    let opened = file::open(path)?;
    let bad = |section: &'static str| {
        move |codec::DecodeError(detail)| SnapshotError::Inconsistent { path: path.to_path_buf(), section, detail }
    };
    cpu::decode(&opened.cpu).map_err(bad("cpu"))?;
    board::decode(&opened.devices).map_err(bad("devices"))?;
    machine::decode_section(&opened.machine, opened.version).map_err(bad("machine"))?;
    if let Some(d) = &opened.disks {
        disks::decode(d, opened.version).map_err(bad("disks"))?;
    }
    file::verify_ram(path, &opened)
}
