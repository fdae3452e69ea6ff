//! `strata run --drive` and `--run`: disks on the virtio-pci bus, and a user script for the guest.
//!
//! `--drive` (repeatable) opens each image and plugs a virtio-blk device into the next PCI slot, so
//! the guest sees vda, vdb, ... in command-line order. Each drive gets an I/O thread, except under
//! `--deterministic`, where requests complete at the notify so runs stay reproducible. `--run FILE` appends a second, uncompressed
//! cpio archive holding FILE as `/strata-run` (mode 0755) to the initrd: Linux unpacks concatenated
//! archives in order (Documentation/driver-api/early-userspace/buffer-format.rst), and the test
//! guest's /init runs `/strata-run` after mounting its disks, before the marker and the power-off.
//! The archive is written here (the newc format is 110 bytes of ASCII header per file; one file
//! and a trailer need no crate).

use devices::block::options::DriveSpec;
use devices::block::Drive;
use devices::virtio::blk::VirtioBlk;
use emu::machine::Machine;

/// Opens every `--drive` and attaches it; one line naming the option or file on error. Requests
/// run on an I/O thread per drive, or at the notify when `synchronous` (`--deterministic`).
pub fn attach_drives(m: &mut Machine, specs: &[DriveSpec], synchronous: bool) -> Result<(), String> {
    for (i, spec) in specs.iter().enumerate() {
        let drive = Drive::open(spec).map_err(|e| e.to_string())?;
        let serial = format!("strata-vd{}", (b'a' + i as u8) as char);
        let dev = if synchronous {
            VirtioBlk::new(drive, &serial)
        } else {
            VirtioBlk::with_io_thread(drive, &serial, m.io_waker())
                .map_err(|e| format!("--drive {}: cannot start its I/O thread: {e}", spec.file))?
        };
        if m.board.borrow_mut().add_virtio(Box::new(dev)).is_none() {
            return Err(format!("--drive {}: at most 8 drives are supported", spec.file));
        }
    }
    Ok(())
}

/// Parses every `--drive` value.
pub fn parse_drives(values: &[String]) -> Result<Vec<DriveSpec>, String> {
    values.iter().map(|v| DriveSpec::parse(v).map_err(|e| e.to_string())).collect()
}

/// A newc cpio archive holding `script` as `/strata-run`, executable.
pub fn run_archive(script: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    newc_entry(&mut out, "strata-run", 0o100_755, script);
    newc_entry(&mut out, "TRAILER!!!", 0, &[]);
    out
}

fn newc_entry(out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
    let fields = [1, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The initrd with `archive` appended (the first archive padded to 4 bytes with zeros, which the
/// kernel skips between archives).
pub fn append_archive(mut initrd: Vec<u8>, archive: &[u8]) -> Vec<u8> {
    pad4(&mut initrd);
    initrd.extend_from_slice(archive);
    initrd
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GNU cpio (an external reader) lists and extracts the archive we write.
    #[test]
    fn gnu_cpio_reads_the_run_archive() {
        if std::process::Command::new("cpio").arg("--version").output().is_err() {
            eprintln!("skipped: cpio is not installed (scripts/install-deps.sh installs it)");
            return;
        }
        let dir = std::env::temp_dir().join(format!("strata-cpio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let archive = run_archive(b"#!/bin/sh\necho hi\n");
        std::fs::write(dir.join("a.cpio"), &archive).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("cpio --quiet -id --no-absolute-filenames < a.cpio && stat -c '%a %s' strata-run && cat strata-run")
            .current_dir(&dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        std::fs::remove_dir_all(&dir).ok();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(text, "755 18\n#!/bin/sh\necho hi\n");
        assert_eq!(append_archive(vec![1, 2, 3], &archive)[..4], [1, 2, 3, 0]);
    }
}
