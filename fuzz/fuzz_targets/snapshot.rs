//! Fuzz target: restoring a machine snapshot (`emu::snapshot`; the format is documented in
//! `emu/src/snapshot/mod.rs`). Random files would almost never get past the checksums, so the
//! input is section payloads: a flags byte (bit 0: a disks section; bit 7: the input after it
//! is the whole file, unchanged), four u16 lengths (CPU, devices, machine, disks), the payloads,
//! then up to 4 KiB for the first RAM page. This target writes the file around them (header,
//! section table, checksums, a 64 KiB RAM image at a 64 KiB-aligned offset), then verifies and
//! restores it. Every outcome must be a `SnapshotError` or a machine, never a panic.
#![no_main]

use emu::machine::Machine;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

const RAM: usize = 64 << 10;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("strata-fuzz-snapshot-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch folder");
        d
    })
}

/// A version-1 snapshot file holding `sections` (kind, payload) and `ram`.
fn snapshot_file(sections: &[(u32, &[u8])], ram: &[u8]) -> Vec<u8> {
    let count = sections.len() + 1;
    let header_len = 32 + 32 * count;
    let mut entries = Vec::new();
    let mut offset = header_len as u64 + 4;
    for (kind, data) in sections {
        entries.push((*kind, offset, data.len() as u64, crc32fast::hash(data)));
        offset += data.len() as u64;
    }
    let ram_offset = offset.div_ceil(64 << 10) * (64 << 10);
    let mut ram_crc = crc32fast::Hasher::new();
    for (n, page) in ram.chunks(4096).enumerate() {
        if page.iter().any(|&b| b != 0) {
            ram_crc.update(&(n as u64).to_le_bytes());
            ram_crc.update(page);
        }
    }
    entries.push((4, ram_offset, ram.len() as u64, ram_crc.finalize()));
    let mut f = Vec::new();
    f.extend_from_slice(b"STRATASN");
    for v in [1u32, header_len as u32, count as u32, 0] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    f.extend_from_slice(&(ram.len() as u64).to_le_bytes());
    for (kind, offset, len, crc) in entries {
        f.extend_from_slice(&kind.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&offset.to_le_bytes());
        f.extend_from_slice(&len.to_le_bytes());
        f.extend_from_slice(&crc.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
    }
    let crc = crc32fast::hash(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    for (_, data) in sections {
        f.extend_from_slice(data);
    }
    f.resize(ram_offset as usize, 0);
    f.extend_from_slice(ram);
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let file = if flags & 0x80 != 0 {
        rest.to_vec()
    } else {
        if rest.len() < 8 {
            return;
        }
        let lens: Vec<usize> =
            rest[..8].chunks_exact(2).map(|l| usize::from(u16::from_le_bytes([l[0], l[1]]))).collect();
        let mut rest = &rest[8..];
        let mut sections = Vec::new();
        for (kind, len) in [1u32, 2, 3, 5].into_iter().zip(lens) {
            if kind == 5 && flags & 1 == 0 {
                break;
            }
            if rest.len() < len {
                return;
            }
            let (payload, r) = rest.split_at(len);
            sections.push((kind, payload));
            rest = r;
        }
        let mut ram = vec![0u8; RAM];
        let n = rest.len().min(4096);
        ram[..n].copy_from_slice(&rest[..n]);
        snapshot_file(&sections, &ram)
    };
    let path = scratch().join("fuzz.snap");
    std::fs::write(&path, &file).expect("scratch snapshot");
    let _ = emu::snapshot::verify_snapshot(&path);
    let _ = Machine::restore_snapshot(&path, Box::new(std::io::sink()), Instant::now(), true, None);
});
