//! Disk images against the real `qemu-img` (QEMU's own reader and checker) as the reference:
//! images qemu-img made are read and written through `devices::block`, then qemu-img checks them,
//! compares them with raw files holding what we wrote, and reads our writes back. Skipped, with a
//! line on stderr, where qemu-img is not installed (scripts/install-deps.sh installs qemu-utils).

use devices::block::options::DriveSpec;
use devices::block::Drive;
use std::path::{Path, PathBuf};
use std::process::Command;

fn have_qemu_img() -> bool {
    let ok = Command::new("qemu-img").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: qemu-img is not installed (scripts/install-deps.sh installs qemu-utils)");
    }
    ok
}

fn qemu_img(args: &[&str]) -> (bool, String) {
    let out = Command::new("qemu-img").args(args).output().expect("qemu-img runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("strata-images-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn open(spec: &str) -> Drive {
    Drive::open(&DriveSpec::parse(spec).unwrap()).unwrap()
}

/// Bytes the host file really occupies.
fn allocated(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().blocks() * 512
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1).collect()
}

/// An overlay on a qcow2 base: reads fall through to the base, writes land in the overlay only,
/// qemu-img check is clean and qemu-img compare finds exactly our writes; discard=unmap gives the
/// clusters back to the host file.
#[test]
fn qcow2_overlay_chain_written_and_trimmed() {
    if !have_qemu_img() {
        return;
    }
    let d = tmp("chain");
    let (base_raw, base, overlay, expect) =
        (d.join("base.raw"), d.join("base.qcow2"), d.join("ov.qcow2"), d.join("expect.raw"));
    let mut base_bytes = vec![0u8; 16 << 20];
    base_bytes[..1 << 20].copy_from_slice(&pattern(1 << 20, 7));
    std::fs::write(&base_raw, &base_bytes).unwrap();
    assert!(qemu_img(&["convert", "-O", "qcow2", s(&base_raw), s(&base)]).0);
    let (ok, why) = qemu_img(&["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", s(&base), s(&overlay)]);
    assert!(ok, "{why}");

    {
        let mut drive = open(&format!("file={},format=qcow2,discard=unmap", s(&overlay)));
        assert_eq!(drive.size(), 16 << 20);
        let mut buf = vec![0u8; 4096];
        drive.read(&mut buf, 8192).unwrap();
        assert_eq!(buf, base_bytes[8192..8192 + 4096], "reads fall through to the backing file");
        // 8 MiB of data, then a small write that stays.
        let big = pattern(8 << 20, 3);
        drive.write(&big, 4 << 20).unwrap();
        drive.write(b"strata was here!", 512).unwrap();
        drive.flush().unwrap();
    }
    let grown = allocated(&overlay);
    assert!(grown >= 8 << 20, "overlay holds the 8 MiB written ({grown} bytes allocated)");
    let (ok, why) = qemu_img(&["check", s(&overlay)]);
    assert!(ok, "qemu-img check after writes: {why}");

    {
        let mut drive = open(&format!("file={},format=qcow2,discard=unmap", s(&overlay)));
        drive.discard(4 << 20, 8 << 20).unwrap();
        drive.flush().unwrap();
    }
    let trimmed = allocated(&overlay);
    assert!(trimmed + (7 << 20) <= grown, "discard gave the space back: {grown} -> {trimmed} bytes");
    let (ok, why) = qemu_img(&["check", s(&overlay)]);
    assert!(ok, "qemu-img check after discard: {why}");

    // What the disk must read now: the base, our 16 bytes at 512, and (discarded, so unspecified;
    // the chain shows the base again, which is zeros there) the big range.
    let mut want = base_bytes.clone();
    want[512..528].copy_from_slice(b"strata was here!");
    std::fs::write(&expect, &want).unwrap();
    let (ok, why) = qemu_img(&["compare", "-f", "qcow2", "-F", "raw", s(&overlay), s(&expect)]);
    assert!(ok, "qemu-img compare: {why}");
    let (ok, why) = qemu_img(&["compare", "-f", "qcow2", "-F", "raw", s(&base), s(&base_raw)]);
    assert!(ok, "the base is untouched: {why}");
    std::fs::remove_dir_all(&d).ok();
}

/// Raw images: writes reach the file at the same offsets; discard=unmap punches holes; a
/// read-only drive refuses writes; detect-zeroes=unmap turns a zero write into a hole.
#[test]
fn raw_image_semantics() {
    let d = tmp("raw");
    let img = d.join("disk.raw");
    std::fs::write(&img, pattern(4 << 20, 1)).unwrap();
    {
        let mut drive = open(&format!("file={},format=raw,discard=unmap,detect-zeroes=unmap", s(&img)));
        drive.write(b"hello", 1 << 20).unwrap();
        drive.discard(2 << 20, 1 << 20).unwrap();
        drive.write(&vec![0u8; 1 << 20], 3 << 20).unwrap();
        drive.flush().unwrap();
    }
    let bytes = std::fs::read(&img).unwrap();
    assert_eq!(&bytes[1 << 20..(1 << 20) + 5], b"hello");
    assert!(bytes[2 << 20..].iter().all(|&b| b == 0));
    assert!(allocated(&img) <= (2 << 20) + 65536, "holes punched: {} bytes allocated", allocated(&img));
    let mut ro = open(&format!("file={},readonly=on", s(&img)));
    assert!(ro.write(b"x", 0).is_err());
    std::fs::remove_dir_all(&d).ok();
}

/// Bad images give one-line errors naming the file.
#[test]
fn bad_images_are_refused_with_one_line() {
    if !have_qemu_img() {
        return;
    }
    let d = tmp("bad");
    let err = |spec: String| match Drive::open(&DriveSpec::parse(&spec).unwrap()) {
        Ok(_) => panic!("{spec} opened"),
        Err(e) => e.to_string(),
    };
    let missing = d.join("missing.qcow2");
    let e = err(format!("file={}", s(&missing)));
    assert!(e.contains("missing.qcow2") && !e.contains('\n'), "{e}");

    let good = d.join("good.qcow2");
    assert!(qemu_img(&["create", "-q", "-f", "qcow2", s(&good), "4M"]).0);
    let bytes = std::fs::read(&good).unwrap();
    let truncated = d.join("truncated.qcow2");
    std::fs::write(&truncated, &bytes[..100]).unwrap();
    let e = err(format!("file={},format=qcow2", s(&truncated)));
    assert!(e.contains("truncated.qcow2") && !e.contains('\n'), "{e}");

    let corrupt = d.join("corrupt.qcow2");
    let mut c = bytes.clone();
    c[40..48].copy_from_slice(&u64::MAX.to_be_bytes()); // l1_table_offset far past the end
    std::fs::write(&corrupt, &c).unwrap();
    let e = err(format!("file={},format=qcow2", s(&corrupt)));
    assert!(e.contains("corrupt.qcow2") && !e.contains('\n'), "{e}");

    let base = d.join("gone-base.qcow2");
    assert!(qemu_img(&["create", "-q", "-f", "qcow2", s(&base), "4M"]).0);
    let ov = d.join("orphan.qcow2");
    assert!(qemu_img(&["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", s(&base), s(&ov)]).0);
    std::fs::remove_file(&base).unwrap();
    let e = err(format!("file={},format=qcow2", s(&ov)));
    assert!(e.contains("orphan.qcow2") && e.contains("gone-base.qcow2") && !e.contains('\n'), "{e}");

    // A chain that loops (qemu-img rebase -u lets an image name itself, or its base name it):
    // refused, where following it overflowed the host stack (the qcow2 fuzz target found it).
    let own = d.join("own.qcow2");
    assert!(qemu_img(&["create", "-q", "-f", "qcow2", s(&own), "4M"]).0);
    assert!(qemu_img(&["rebase", "-u", "-F", "qcow2", "-b", "own.qcow2", s(&own)]).0);
    let e = err(format!("file={},format=qcow2", s(&own)));
    assert!(e.contains("own.qcow2") && e.contains("loop") && !e.contains('\n'), "{e}");
    let (a, b) = (d.join("loop-a.qcow2"), d.join("loop-b.qcow2"));
    assert!(qemu_img(&["create", "-q", "-f", "qcow2", s(&b), "4M"]).0);
    assert!(qemu_img(&["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", s(&b), s(&a)]).0);
    assert!(qemu_img(&["rebase", "-u", "-F", "qcow2", "-b", s(&a), s(&b)]).0);
    let (_, why) = qemu_img(&["info", "--backing-chain", s(&a)]);
    assert!(why.contains("infinite loop"), "qemu-img sees the loop too: {why}");
    let e = err(format!("file={},format=qcow2", s(&a)));
    assert!(e.contains("loop-a.qcow2") && e.contains("loop") && !e.contains('\n'), "{e}");

    // A refcount table whose first entry is gone (qemu-img check calls the image corrupt):
    // refused for writing, where imago rebuilt the refcount blocks recursively on the first write
    // and a crafted image overflowed the host stack (the qcow2 fuzz target); read-only opens.
    let norc = d.join("norefblock.qcow2");
    let mut c = bytes.clone();
    let table = u64::from_be_bytes(c[48..56].try_into().unwrap()) as usize;
    c[table..table + 8].fill(0);
    std::fs::write(&norc, &c).unwrap();
    let (ok, why) = qemu_img(&["check", s(&norc)]);
    assert!(!ok, "qemu-img check finds the image corrupt: {why}");
    let e = err(format!("file={},format=qcow2", s(&norc)));
    assert!(e.contains("norefblock.qcow2") && e.contains("refcount") && !e.contains('\n'), "{e}");
    open(&format!("file={},format=qcow2,readonly=on", s(&norc)));

    let ro = d.join("ro.raw");
    std::fs::write(&ro, [0u8; 4096]).unwrap();
    let mut perm = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o444);
    std::fs::set_permissions(&ro, perm).unwrap();
    // Root opens anything for writing: only check the error where the host refuses.
    if std::fs::OpenOptions::new().write(true).open(&ro).is_err() {
        let e = err(format!("file={},format=raw", s(&ro)));
        assert!(e.contains("ro.raw") && !e.contains('\n'), "{e}");
    }
    open(&format!("file={},format=raw,readonly=on", s(&ro)));
    std::fs::remove_dir_all(&d).ok();
}

/// Freezing a drive for a snapshot: the drive continues on a new overlay that qemu-img sees
/// backed by the frozen image; writes after the freeze leave the frozen file byte-identical;
/// reopening gives back exactly the disk at the freeze (qemu-img compare against the frozen
/// image), twice; a write to the frozen image by qemu-io makes the reopen refuse, naming it; a
/// writable raw drive refuses to freeze.
#[test]
fn freeze_pivots_to_an_overlay_and_reopen_checks_the_chain() {
    use devices::block::snapshot::overlay_path;
    if !have_qemu_img() {
        return;
    }
    let d = tmp("freeze");
    let (image, snap) = (d.join("disk.qcow2"), d.join("snap"));
    assert!(qemu_img(&["create", "-q", "-f", "qcow2", s(&image), "4M"]).0);
    let mut drive = open(&format!("file={},format=qcow2", s(&image)));
    drive.write(&pattern(65536, 1), 0).unwrap();
    let frozen = drive.freeze(&overlay_path(&snap, 0)).unwrap();
    let overlay = d.join("snap.vda.qcow2");
    assert_eq!(frozen.overlay, s(&overlay));
    let (_, info) = qemu_img(&["info", s(&overlay)]);
    assert!(info.contains(s(&image)), "{info}");
    let before = std::fs::read(&image).unwrap();
    drive.write(&pattern(65536, 2), 0).unwrap();
    drive.flush().unwrap();
    drop(drive);
    assert!(std::fs::read(&image).unwrap() == before, "a write after the freeze reached the frozen image");
    let (ok, why) = qemu_img(&["check", s(&overlay)]);
    assert!(ok, "{why}");
    for _ in 0..2 {
        let mut again = devices::block::Drive::reopen(&frozen).unwrap();
        let mut got = vec![0u8; 65536];
        again.read(&mut got, 0).unwrap();
        assert_eq!(got, pattern(65536, 1));
        again.write(&pattern(512, 3), 0).unwrap();
        drop(again);
        let (ok, why) = qemu_img(&["check", s(&overlay)]);
        assert!(ok, "{why}");
    }
    let (ok, why) = qemu_img(&["compare", s(&overlay), s(&image)]);
    assert!(!ok, "the restored drive's write is not in its overlay: {why}");

    let out = Command::new("qemu-io").args(["-f", "qcow2", "-c", "write 0 512", s(&image)]).output();
    if out.is_ok_and(|o| o.status.success()) {
        let err = devices::block::Drive::reopen(&frozen).err().expect("a changed chain is refused").to_string();
        assert!(err.contains(s(&image)) && err.contains("changed") && !err.contains('\n'), "{err}");
    }
    let raw = d.join("disk.raw");
    std::fs::write(&raw, vec![0u8; 1 << 20]).unwrap();
    let mut drive = open(&format!("file={},format=raw", s(&raw)));
    let err = drive.freeze(&overlay_path(&snap, 1)).expect_err("a writable raw drive is refused").to_string();
    assert!(err.contains("raw") && err.contains("disk.raw"), "{err}");
}

/// `cache=none` (O_DIRECT, issue 12) on a qcow2 overlay over a qcow2 base and on a raw image:
/// requests at 512-byte offsets and lengths that are not page multiples, from buffers that are not
/// page-aligned, read what qemu-img put there, and what we write is what `qemu-img compare` finds
/// (for the raw image: what a plain read of the file finds), with `qemu-img check` clean.
#[test]
fn cache_none_reads_and_writes_unaligned_requests() {
    if !have_qemu_img() {
        return;
    }
    let d = tmp("direct");
    let (base_raw, base, overlay, expect) =
        (d.join("base.raw"), d.join("base.qcow2"), d.join("ov.qcow2"), d.join("expect.raw"));
    let mut content = pattern(4 << 20, 3);
    std::fs::write(&base_raw, &content).unwrap();
    assert!(qemu_img(&["convert", "-f", "raw", "-O", "qcow2", s(&base_raw), s(&base)]).0);
    assert!(qemu_img(&["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", s(&base), s(&overlay)]).0);
    let writes = [(512u64, 1536usize), (65536 + 512, 4096), (1 << 20, 128 << 10)];
    for (image, spec) in [
        (&overlay, format!("file={},format=qcow2,cache=none", s(&overlay))),
        (&base_raw, format!("file={},format=raw,cache=none", s(&base_raw))),
    ] {
        let mut drive = match Drive::open(&DriveSpec::parse(&spec).unwrap()) {
            Ok(dr) => dr,
            Err(e) => {
                eprintln!("skipped: the temp directory refuses O_DIRECT: {e}");
                return;
            }
        };
        // One byte into a Vec: a buffer that is not aligned however the allocator placed it.
        let mut storage = vec![0u8; (128 << 10) + 1];
        for (i, &(offset, len)) in writes.iter().enumerate() {
            let buf = &mut storage[1..1 + len];
            drive.read(buf, offset).unwrap();
            assert!(buf[..] == content[offset as usize..offset as usize + len], "{spec}: read at {offset}");
            let data = pattern(len, 100 + i as u8);
            buf.copy_from_slice(&data);
            drive.write(buf, offset).unwrap();
        }
        drive.flush().unwrap();
        drop(drive);
        let mut want = content.clone();
        for (i, &(offset, len)) in writes.iter().enumerate() {
            want[offset as usize..offset as usize + len].copy_from_slice(&pattern(len, 100 + i as u8));
        }
        if image == &overlay {
            std::fs::write(&expect, &want).unwrap();
            let (ok, why) = qemu_img(&["check", s(&overlay)]);
            assert!(ok, "{why}");
            let (ok, why) = qemu_img(&["compare", "-f", "qcow2", "-F", "raw", s(&overlay), s(&expect)]);
            assert!(ok, "{why}");
        } else {
            assert!(std::fs::read(&base_raw).unwrap() == want, "{spec}: the file differs from what was written");
        }
        content = std::fs::read(&base_raw).unwrap();
    }
    let _ = std::fs::remove_dir_all(&d);
}
