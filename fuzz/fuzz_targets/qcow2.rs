//! Fuzz target: qcow2 open, read and write on random images (`devices::block::qcow2`, imago's
//! `sync` driver). The input's first byte is an operation count, then 8 bytes per operation
//! (kind, a cluster-scaled offset, a length), then the image file itself. The image is written to
//! a scratch file and opened writable; every operation is clamped to the image's size, as
//! virtio-blk clamps a guest's requests. Nothing may panic, hang or abort (a corrupt image must be
//! an error at open or an I/O error at the operation).
#![no_main]

use devices::block::options::DriveSpec;
use devices::block::qcow2::Qcow2Image;
use devices::block::Drive;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// A scratch folder per fuzzing process; a relative backing file name resolves inside it.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("strata-fuzz-qcow2-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch folder");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let ops = usize::from(n % 16);
    if rest.len() < ops * 8 {
        return;
    }
    let (ops, image) = rest.split_at(ops * 8);
    let path = scratch().join("image.qcow2");
    std::fs::write(&path, image).expect("scratch image");
    let path = path.to_string_lossy().into_owned();
    let Ok(img) = Qcow2Image::open(&path, false) else { return };
    let spec = DriveSpec::parse(&format!("file={path},format=qcow2,discard=unmap")).expect("valid spec");
    let mut drive = Drive::with_backend(Box::new(img), spec);
    let size = drive.size();
    let mut buf = vec![0u8; 1 << 16];
    for op in ops.chunks_exact(8) {
        let offset = u64::from(u32::from_le_bytes([op[1], op[2], op[3], op[4]])) * 512;
        let len = u64::from(u16::from_le_bytes([op[5], op[6]])) + 1;
        // Clamped the way virtio-blk refuses requests past the end of the disk.
        if size == 0 || offset >= size {
            continue;
        }
        let len = len.min(size - offset) as usize;
        let _ = match op[0] % 5 {
            0 => drive.read(&mut buf[..len], offset),
            1 => {
                buf[..len].fill(op[7]);
                drive.write(&buf[..len], offset)
            }
            2 => drive.discard(offset, len as u64),
            3 => drive.write_zeroes(offset, len as u64, op[7] & 1 != 0),
            _ => drive.flush(),
        };
    }
});
