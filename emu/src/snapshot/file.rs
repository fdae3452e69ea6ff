//! The snapshot file on disk: header, section table, checksums, the sparse RAM image. The layout
//! is documented in the module doc of `snapshot/mod.rs`; this file is its only reader and writer.

use super::SnapshotError;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// First eight bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"STRATASN";
/// The format this code writes.
pub const VERSION: u32 = 2;
/// The oldest format it still reads (version 1's machine section lacks the CPU's event state).
pub const OLDEST_READABLE: u32 = 1;
/// The RAM image starts at a multiple of this (every host page size Strata runs on divides it).
pub const RAM_ALIGN: u64 = 64 << 10;
/// Guest page size: the unit of sparseness and of the RAM checksum.
pub const PAGE: usize = 4096;
/// Magic, version, header length, section count, reserved, RAM size.
const FIXED_LEN: usize = 32;
/// Kind, reserved, offset, length, checksum, reserved.
const ENTRY_LEN: usize = 32;
/// A CPU, devices or machine section larger than this is not one Strata wrote.
const MAX_SMALL_SECTION: u64 = 16 << 20;

/// The sections of a snapshot, with their kind numbers in the section table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Header = 0,
    Cpu = 1,
    Devices = 2,
    Machine = 3,
    Ram = 4,
    /// virtio functions and their drives (only when the machine has some).
    Disks = 5,
}

impl Section {
    /// The section's name in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Section::Header => "header",
            Section::Cpu => "cpu",
            Section::Devices => "devices",
            Section::Machine => "machine",
            Section::Ram => "ram",
            Section::Disks => "disks",
        }
    }

    fn from_kind(kind: u32) -> Option<Self> {
        [Section::Cpu, Section::Devices, Section::Machine, Section::Ram, Section::Disks]
            .into_iter()
            .find(|s| *s as u32 == kind)
    }
}

/// The sections every snapshot has, in table order (a disks section, when present, comes last).
const TABLE: [Section; 4] = [Section::Cpu, Section::Devices, Section::Machine, Section::Ram];

/// What was written.
pub struct Written {
    /// Bytes of RAM in non-zero pages (the rest are holes).
    pub ram_data_bytes: u64,
    /// Length of the file (holes included).
    pub file_len: u64,
}

/// A snapshot file opened and checked, RAM not read.
pub struct Opened {
    pub file: File,
    /// The file's format version (`OLDEST_READABLE..=VERSION`).
    pub version: u32,
    pub cpu: Vec<u8>,
    pub devices: Vec<u8>,
    pub machine: Vec<u8>,
    /// The disks section, if the snapshot has one.
    pub disks: Option<Vec<u8>>,
    pub ram_offset: u64,
    pub ram_len: u64,
    pub ram_checksum: u32,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io { path: path.to_path_buf(), source }
}

fn is_zero(page: &[u8]) -> bool {
    page.iter().fold(0u8, |acc, &b| acc | b) == 0
}

/// CRC32 of the RAM image as the format defines it: for each non-zero 4 KiB page in ascending
/// order, its page number (u64 LE) then its bytes. Zero pages do not count, so a hole and a page
/// of zeros are the same. Also returns the non-zero pages as (first page, page count) runs.
/// Pages marked in `known_zero` are not read at all.
pub fn scan_ram(ram: &[u8], known_zero: Option<&[bool]>) -> (u32, Vec<(usize, usize)>) {
    let mut crc = crc32fast::Hasher::new();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (n, page) in ram.chunks(PAGE).enumerate() {
        if known_zero.is_some_and(|z| z.get(n) == Some(&true)) || is_zero(page) {
            continue;
        }
        crc.update(&(n as u64).to_le_bytes());
        crc.update(page);
        match runs.last_mut() {
            Some((first, count)) if *first + *count == n => *count += 1,
            _ => runs.push((n, 1)),
        }
    }
    (crc.finalize(), runs)
}

fn align_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

/// Writes a snapshot to a temporary file beside `path`, then renames it over `path`: a failed
/// save leaves no partial file, and a machine still running from an older snapshot at `path`
/// keeps its mapping of the old file.
pub fn write(
    path: &Path,
    cpu: &[u8],
    devices: &[u8],
    machine: &[u8],
    disks: Option<&[u8]>,
    ram: &[u8],
    known_zero: Option<&[bool]>,
) -> Result<Written, SnapshotError> {
    let (ram_checksum, runs) = scan_ram(ram, known_zero);
    let count = TABLE.len() + usize::from(disks.is_some());
    let header_len = FIXED_LEN + count * ENTRY_LEN;
    let mut offset = (header_len + 4) as u64;
    let mut entries = Vec::new();
    let mut small = vec![(Section::Cpu, cpu), (Section::Devices, devices), (Section::Machine, machine)];
    if let Some(d) = disks {
        small.push((Section::Disks, d));
    }
    for (section, data) in &small {
        entries.push((*section, offset, data.len() as u64, crc32fast::hash(data)));
        offset += data.len() as u64;
    }
    let ram_offset = align_up(offset, RAM_ALIGN);
    entries.push((Section::Ram, ram_offset, ram.len() as u64, ram_checksum));
    if disks.is_some() {
        // Table order: the four sections every snapshot has, then disks.
        let d = entries.remove(3);
        entries.push(d);
    }

    let mut head = Vec::with_capacity(ram_offset as usize);
    head.extend_from_slice(&MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&(header_len as u32).to_le_bytes());
    head.extend_from_slice(&(count as u32).to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.extend_from_slice(&(ram.len() as u64).to_le_bytes());
    for (section, off, len, crc) in &entries {
        head.extend_from_slice(&(*section as u32).to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        head.extend_from_slice(&off.to_le_bytes());
        head.extend_from_slice(&len.to_le_bytes());
        head.extend_from_slice(&crc.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
    }
    let header_crc = crc32fast::hash(&head);
    head.extend_from_slice(&header_crc.to_le_bytes());
    for (_, data) in &small {
        head.extend_from_slice(data);
    }

    let tmp = temp_path(path);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io(path))?;
        f.write_all(&head).map_err(io(path))?;
        let file_len = ram_offset + ram.len() as u64;
        // Zero pages stay holes: the file gets its full length first, then only the non-zero
        // runs are written, each at its own offset.
        f.set_len(file_len).map_err(io(path))?;
        let mut data_bytes = 0u64;
        for (first, count) in runs {
            let start = first * PAGE;
            let bytes = &ram[start..(start + count * PAGE).min(ram.len())];
            f.write_all_at(bytes, ram_offset + start as u64).map_err(io(path))?;
            data_bytes += bytes.len() as u64;
        }
        f.flush().map_err(io(path))?;
        Ok(Written { ram_data_bytes: data_bytes, file_len })
    })();
    match result {
        Ok(w) => {
            std::fs::rename(&tmp, path).map_err(io(path))?;
            Ok(w)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Opens a snapshot and checks everything but the RAM image's contents: magic, version, header
/// checksum, the section table, every section's extent, the CPU/devices/machine checksums.
pub fn open(path: &Path) -> Result<Opened, SnapshotError> {
    let file = File::open(path).map_err(io(path))?;
    let meta = file.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(SnapshotError::NotAFile { path: path.to_path_buf() });
    }
    let file_len = meta.len();
    let truncated = |needed: u64| SnapshotError::Truncated { path: path.to_path_buf(), needed, actual: file_len };
    let inconsistent = |section: Section, detail: String| SnapshotError::Inconsistent {
        path: path.to_path_buf(),
        section: section.name(),
        detail,
    };

    let mut fixed = Vec::with_capacity(FIXED_LEN);
    (&file).take(FIXED_LEN as u64).read_to_end(&mut fixed).map_err(io(path))?;
    let magic_len = fixed.len().min(MAGIC.len());
    if fixed.is_empty() || fixed[..magic_len] != MAGIC[..magic_len] {
        let reason = if fixed.is_empty() { "an empty file" } else { "bad magic" };
        return Err(SnapshotError::NotASnapshot { path: path.to_path_buf(), reason });
    }
    if fixed.len() < 12 {
        return Err(truncated(FIXED_LEN as u64));
    }
    let version = le_u32(&fixed, 8);
    if !(OLDEST_READABLE..=VERSION).contains(&version) {
        return Err(SnapshotError::UnsupportedVersion { path: path.to_path_buf(), found: version, supported: VERSION });
    }
    if fixed.len() < FIXED_LEN {
        return Err(truncated(FIXED_LEN as u64));
    }
    let header_len = le_u32(&fixed, 12) as usize;
    if !(FIXED_LEN..=4096).contains(&header_len) {
        return Err(inconsistent(Section::Header, format!("header length {header_len}")));
    }
    let mut head = vec![0u8; header_len + 4];
    if file_len < head.len() as u64 {
        return Err(truncated(head.len() as u64));
    }
    file.read_exact_at(&mut head, 0).map_err(io(path))?;
    if crc32fast::hash(&head[..header_len]) != le_u32(&head, header_len) {
        return Err(SnapshotError::ChecksumMismatch { path: path.to_path_buf(), section: Section::Header.name() });
    }
    let count = le_u32(&head, 16) as usize;
    if !(TABLE.len()..=TABLE.len() + 1).contains(&count) || header_len != FIXED_LEN + count * ENTRY_LEN {
        return Err(inconsistent(Section::Header, format!("{count} sections in a {header_len}-byte header")));
    }
    let ram_size = le_u64(&head, 24);

    let mut opened = Opened {
        file,
        version,
        cpu: Vec::new(),
        devices: Vec::new(),
        machine: Vec::new(),
        disks: None,
        ram_offset: 0,
        ram_len: 0,
        ram_checksum: 0,
    };
    let mut seen = Vec::new();
    for i in 0..count {
        let e = &head[FIXED_LEN + i * ENTRY_LEN..][..ENTRY_LEN];
        let kind = le_u32(e, 0);
        let (offset, len, crc) = (le_u64(e, 8), le_u64(e, 16), le_u32(e, 24));
        let section = Section::from_kind(kind)
            .filter(|s| !seen.contains(s))
            .ok_or_else(|| inconsistent(Section::Header, format!("section kind {kind} unknown or repeated")))?;
        seen.push(section);
        let end = offset
            .checked_add(len)
            .ok_or_else(|| inconsistent(section, format!("offset {offset} + length {len} overflows")))?;
        if section == Section::Ram {
            if len != ram_size || len < PAGE as u64 || len % PAGE as u64 != 0 {
                return Err(inconsistent(section, format!("RAM image of {len} bytes, header says {ram_size}")));
            }
            if offset % RAM_ALIGN != 0 {
                return Err(inconsistent(section, format!("RAM image at offset {offset}, not {RAM_ALIGN}-aligned")));
            }
        } else if len > MAX_SMALL_SECTION {
            return Err(inconsistent(section, format!("{len} bytes")));
        }
        if end > file_len {
            return Err(truncated(end));
        }
        if section == Section::Ram {
            (opened.ram_offset, opened.ram_len, opened.ram_checksum) = (offset, len, crc);
            continue;
        }
        let mut data = vec![0u8; len as usize];
        opened.file.read_exact_at(&mut data, offset).map_err(io(path))?;
        if crc32fast::hash(&data) != crc {
            return Err(SnapshotError::ChecksumMismatch { path: path.to_path_buf(), section: section.name() });
        }
        match section {
            Section::Cpu => opened.cpu = data,
            Section::Devices => opened.devices = data,
            Section::Disks => opened.disks = Some(data),
            _ => opened.machine = data,
        }
    }
    if let Some(missing) = TABLE.iter().find(|s| !seen.contains(s)) {
        return Err(inconsistent(Section::Header, format!("no {} section", missing.name())));
    }
    Ok(opened)
}

/// Reads the whole RAM image and checks it against its checksum (restore does not: it maps the
/// image without reading it).
pub fn verify_ram(path: &Path, opened: &Opened) -> Result<(), SnapshotError> {
    const CHUNK: usize = 1 << 20;
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    while done < opened.ram_len {
        let n = (opened.ram_len - done).min(CHUNK as u64) as usize;
        opened.file.read_exact_at(&mut buf[..n], opened.ram_offset + done).map_err(io(path))?;
        for (i, page) in buf[..n].chunks(PAGE).enumerate() {
            if !is_zero(page) {
                crc.update(&(done / PAGE as u64 + i as u64).to_le_bytes());
                crc.update(page);
            }
        }
        done += n as u64;
    }
    if crc.finalize() != opened.ram_checksum {
        return Err(SnapshotError::ChecksumMismatch { path: path.to_path_buf(), section: Section::Ram.name() });
    }
    Ok(())
}
