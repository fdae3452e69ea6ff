//! Shared folders end to end: the Debian test guest (scripts/build-guest.sh) boots with two
//! `--share`s: `share` (read-write, mounted by the guest's /init at /mnt/share) and `ro`
//! (`readonly=on`, holding the test scripts), once on tier 0 from the initramfs and once on the
//! JIT (`--tier jit`) booted from the disk root (`root=/dev/vda`, where /init carries the share
//! over `switch_root`).
//! In the guest, `share_support/ops.sh` does the issue's operation list over 9p (create, read,
//! write at offsets, truncate, rename across directories, unlink, mkdir/rmdir, symlink/readlink,
//! hard links, readdir of 10,000 entries, stat fields, files of 0 bytes, 1 byte, 0.6 MB and
//! 100 MiB (written by the guest, read back for its sha256), and through `share_support/probe.c`,
//! xattrs and POSIX/flock locks). The host runs the same script with busybox on a copy of the
//! folder: the two outputs must be the same, and the folder the guest worked in must end up the
//! same as the host's copy (names, types, sizes, bytes, modes, link targets, link counts, mtimes,
//! xattrs). Then escape attempts from the guest: symlinks to `/` and `../..` lead into the
//! guest's own root, `..` stays in the guest, a device node cannot be made, the readonly share
//! refuses writes, and a directory the guest holds, moved by the host out of the share during
//! the run and replaced by a symlink to the outside folder, shows the guest only that
//! directory's own entries, never the outside folder. One boot per tier (each ~2-4 min with the
//! ci profile on a loaded 2-core host; both run in parallel). Skipped with a message when the
//! guest, busybox or a static C compiler is missing.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod kernel_support;
mod user_support;

use kernel_support::run_capturing;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use user_support::{strata_bin, Scratch};

/// The --run script: mounts (if /init did not), runs ops.sh, then tries to get out. In the middle
/// of the escape part the guest holds `held` (its working directory) and waits for the test to
/// move that directory out of the share and put a symlink to the outside folder in its place.
const RUN: &str = r#"#!/bin/sh
grep -q ' /mnt/share 9p ' /proc/mounts && echo "SHARE: mounted by init"
mkdir -p /mnt/share /mnt/ro
grep -q ' /mnt/share ' /proc/mounts || mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 share /mnt/share
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 ro /mnt/ro || echo "SHARE: ro not mounted"
echo "SHARE-TIME ops start $(cut -d' ' -f1 /proc/uptime)"
echo "=== ops begin"
sh /mnt/ro/ops.sh /mnt/share/work /mnt/ro/probe
echo "=== ops end"
echo "SHARE-TIME ops end $(cut -d' ' -f1 /proc/uptime)"
echo "=== escape begin"
host=$(cat /mnt/ro/hostpath)
[ /mnt/share/toroot/ -ef / ] && echo "toroot: the guest's root"
[ -e "/mnt/share/toroot$host" ] && echo "toroot: the HOST's root" || echo "toroot: not the host's root"
[ /mnt/share/up/ -ef / ] && echo "up: the guest's root"
[ -e "/mnt/share/up$host" ] && echo "up: the HOST's root" || echo "up: not the host's root"
cat /mnt/share/../outside/secret 2>/dev/null || echo "dotdot: no host secret"
ls -d /mnt/share/.. 
mknod /mnt/share/gdev c 1 3 2>/dev/null && echo "mknod: made" || echo "mknod: refused"
touch /mnt/ro/new 2>/dev/null && echo "ro: created" || echo "ro: create refused"
rm /mnt/ro/ops.sh 2>/dev/null && echo "ro: removed" || echo "ro: remove refused"
cd /mnt/share/held && echo "ESCAPE: holding held"
i=0
while [ ! -e /mnt/share/moved ] && [ $i -lt 900 ]; do sleep 1; i=$((i + 1)); done
echo "held: $(ls)"
cat secret 2>/dev/null || echo "held: no host secret"
echo after > made-after-move
cd /
cat /mnt/share/held/secret 2>/dev/null || echo "swapped: no host secret"
[ -L /mnt/share/held ] && echo "swapped: a symlink"
ls /mnt/share/held/ 2>/dev/null | grep -qx secret && echo "swapped: the HOST's folder" || echo "swapped: not the host's folder"
echo "=== escape end"
"#;

/// The lines the guest printed between `=== NAME begin` and `=== NAME end`.
fn section(serial: &str, name: &str) -> String {
    let text = serial.replace('\r', "");
    let begin = format!("=== {name} begin\n");
    let start = text.find(&begin).map(|i| i + begin.len()).unwrap_or_else(|| panic!("no {name} section:\n{text}"));
    let end = text[start..].find(&format!("=== {name} end")).map(|i| start + i).expect("section end");
    text[start..end].to_string()
}

/// Compiles probe.c static (musl-gcc, else gcc): the same binary runs on the host and in the guest.
fn build_probe(out: &Path) -> bool {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/share_support/probe.c");
    ["musl-gcc", "gcc"].iter().any(|cc| {
        Command::new(cc).args(["-static", "-O1", "-o"]).arg(out).arg(&src).status().is_ok_and(|s| s.success())
    })
}

/// What a tree holds, one line per entry (sorted): path, type, mode, size, link count, mtime of
/// files the script dated, content hash (FNV-1a, enough to tell contents apart), link target,
/// user xattrs.
fn describe(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let ft = md.file_type();
            let mut line = format!("{rel} mode={:o} nlink={}", md.mode(), md.nlink());
            if ft.is_dir() {
                stack.push(p.clone());
            } else if ft.is_symlink() {
                line += &format!(" -> {}", std::fs::read_link(&p).unwrap().display());
            } else {
                let data = std::fs::read(&p).unwrap();
                let hash = data
                    .iter()
                    .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
                line += &format!(" size={} fnv={hash:016x}", data.len());
                if rel == "s.txt" {
                    line += &format!(" mtime={}", md.mtime());
                }
                line += &format!(" xattrs={:?}", user_xattrs(&p));
            }
            out.push(line);
        }
    }
    out.sort();
    out
}

/// The file's user.* attributes and values (libc's listxattr/getxattr, an independent reader).
fn user_xattrs(p: &Path) -> Vec<(String, String)> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut names = vec![0u8; 4096];
    // SAFETY: the buffer is valid for its length and the path is NUL-terminated.
    let n = unsafe { libc::listxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    let mut out = Vec::new();
    for name in names[..n.max(0) as usize].split(|&b| b == 0).filter(|s| s.starts_with(b"user.")) {
        let cn = std::ffi::CString::new(name).unwrap();
        let mut v = vec![0u8; 4096];
        // SAFETY: as above.
        let m = unsafe { libc::getxattr(c.as_ptr(), cn.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        v.truncate(m.max(0) as usize);
        out.push((String::from_utf8_lossy(name).into(), String::from_utf8_lossy(&v).into()));
    }
    out.sort();
    out
}

/// The starting folder: 10,000 empty files in many/ and a file for the xattr/lock probe.
fn seed(work: &Path) {
    std::fs::create_dir_all(work.join("many")).unwrap();
    for i in 0..10_000 {
        std::fs::write(work.join(format!("many/f{i:05}")), b"").unwrap();
    }
    std::fs::write(work.join("probe.txt"), b"probe\n").unwrap();
}

/// Waits for the guest to announce that it holds `held`, then moves `share/held` out of the share
/// (to `outside/held`), puts a symlink to the outside folder (absolute host path) where it was,
/// and creates `share/moved`, which the guest waits for. Gives up when `stop` is set.
fn move_held_out(dir: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let serial = std::fs::read_to_string(dir.join("serial.txt")).unwrap_or_default();
            if serial.contains("ESCAPE: holding held") {
                std::fs::rename(dir.join("share/held"), dir.join("outside/held")).unwrap();
                std::os::unix::fs::symlink(dir.join("outside"), dir.join("share/held")).unwrap();
                std::fs::write(dir.join("share/moved"), b"").unwrap();
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    })
}

#[test]
fn debian_guest_uses_a_shared_folder_like_the_host() {
    check_share_in_guest(None, false);
}

/// The same check with the guest on tier 1 (the JIT), booted from the disk root
/// (`root=/dev/vda` on a qcow2 overlay of the guest's `root.qcow2`): the initramfs's /init mounts
/// the share and moves it to the disk's /mnt/share before `switch_root`.
#[test]
fn debian_guest_uses_a_shared_folder_like_the_host_on_the_jit_from_a_disk_root() {
    check_share_in_guest(Some("jit"), true);
}

/// Whether the guest's /init moves the share over at `switch_root` (guests built before
/// scripts/build-guest.sh did so leave the mounting to the test's script).
fn init_carries_the_share(guest: &Path) -> bool {
    let init = Command::new("sh")
        .arg("-c")
        .arg(format!("zcat {} | grep -ac 'mount -o move /mnt/share'", guest.join("initramfs-marker.cpio.gz").display()))
        .output();
    init.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() != "0")
}

/// One boot with `--tier TIER` (default tier 0), from the initramfs or from the disk root,
/// doing the whole check.
fn check_share_in_guest(tier: Option<&str>, disk_root: bool) {
    let guest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/guest");
    if !guest.join("modules").exists() {
        eprintln!("SKIP: no Debian guest with 9p modules at {} (scripts/build-guest.sh build/guest)", guest.display());
        return;
    }
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIP: /bin/busybox is missing (scripts/install-deps.sh installs busybox-static)");
        return;
    }
    let dir = Scratch::new(&format!("share-guest-{}", tier.unwrap_or("interp")));
    let p = |name: &str| dir.path().join(name);
    let (share, ro, copy) = (p("share"), p("ro"), p("copy"));
    std::fs::create_dir_all(&ro).unwrap();
    if !build_probe(&ro.join("probe")) {
        eprintln!("SKIP: no static C compiler (musl-gcc or gcc -static; scripts/install-deps.sh)");
        return;
    }
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/share_support/ops.sh"), ro.join("ops.sh")).unwrap();
    std::fs::write(ro.join("hostpath"), dir.path().display().to_string()).unwrap();
    seed(&share.join("work"));
    seed(&copy.join("work"));
    std::os::unix::fs::symlink("/", share.join("toroot")).unwrap();
    std::os::unix::fs::symlink("../..", share.join("up")).unwrap();
    std::fs::create_dir_all(p("outside")).unwrap();
    std::fs::write(p("outside/secret"), b"host secret\n").unwrap();
    std::fs::create_dir_all(share.join("held")).unwrap();
    std::fs::write(share.join("held/inside"), b"").unwrap();
    std::fs::write(p("run.sh"), RUN).unwrap();

    // The host's answer: the same script, busybox sh, on the copy.
    let host = Command::new("/bin/busybox")
        .args(["sh", &ro.join("ops.sh").display().to_string(), &copy.join("work").display().to_string()])
        .arg(ro.join("probe"))
        .env("PATH", "/bin:/usr/bin")
        .output()
        .unwrap();
    let host_out = String::from_utf8_lossy(&host.stdout).to_string();
    assert!(host_out.contains("-- done"), "host run: {host_out}{}", String::from_utf8_lossy(&host.stderr));

    let marker = std::fs::read_to_string(guest.join("marker")).unwrap().trim().to_string();
    let mut cmd = Command::new(strata_bin());
    cmd.arg("run")
        .args(["--kernel", &guest.join("vmlinuz").display().to_string()])
        .args(["--initrd", &guest.join("initramfs-marker.cpio.gz").display().to_string()])
        .args(["--mem", "256M"]);
    let disk_root = disk_root && {
        let overlay = p("root-overlay.qcow2");
        let made = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(guest.join("root.qcow2"))
            .arg(&overlay)
            .status()
            .is_ok_and(|s| s.success());
        if made {
            cmd.args(["--append", "console=ttyS0 quiet root=/dev/vda"])
                .args(["--drive", &format!("file={},format=qcow2", overlay.display())]);
        } else {
            eprintln!("share test: no qemu-img or no build/guest/root.qcow2: booting from the initramfs instead");
        }
        made
    };
    if !disk_root {
        cmd.args(["--append", "console=ttyS0 quiet"]);
    }
    cmd.args(["--share", &format!("{},tag=share", share.display())])
        .args(["--share", &format!("{},tag=ro,readonly=on", ro.display())])
        .args(["--run", &p("run.sh").display().to_string()])
        .args(["--serial", &format!("file:{}", p("serial.txt").display())]);
    if let Some(tier) = tier {
        cmd.args(["--tier", tier]);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mover = move_held_out(dir.path().to_path_buf(), stop.clone());
    let start = Instant::now();
    let (status, serial, err) = run_capturing(cmd, &p("serial.txt"), Duration::from_secs(900));
    eprintln!("share test, tier {}: the boot took {:.1} s", tier.unwrap_or("0"), start.elapsed().as_secs_f64());
    for l in serial.lines().filter(|l| l.starts_with("SHARE-TIME")) {
        eprintln!("{l}");
    }
    stop.store(true, Ordering::Relaxed);
    let moved = mover.join().unwrap();
    assert_eq!(status, Some(0), "strata: {err}\n{serial}");
    assert!(serial.contains(&marker), "no marker:\n{serial}");
    if disk_root {
        assert!(serial.contains("STRATA-GUEST: root is /dev/vda"), "not booted from the disk:\n{serial}");
    }
    if !disk_root || init_carries_the_share(&guest) {
        assert!(serial.contains("SHARE: mounted by init"), "the guest's init did not mount the share:\n{serial}");
    }

    // Same output, line for line.
    let guest_out = section(&serial, "ops");
    assert_eq!(guest_out, host_out, "guest (left) and host (right) outputs differ");
    // What the guest wrote is on the host, as the host's own run left its copy.
    assert_eq!(describe(&share.join("work")), describe(&copy.join("work")));

    let escape = section(&serial, "escape");
    for line in [
        "toroot: the guest's root",
        "toroot: not the host's root",
        "up: the guest's root",
        "up: not the host's root",
        "dotdot: no host secret",
        "/mnt/share/..",
        "mknod: refused",
        "ro: create refused",
        "ro: remove refused",
        "held: inside",
        "held: no host secret",
        "swapped: no host secret",
        "swapped: a symlink",
        "swapped: not the host's folder",
    ] {
        assert!(escape.lines().any(|l| l == line), "the guest did not print {line:?}:\n{escape}");
    }
    assert_eq!(std::fs::read(p("outside/secret")).unwrap(), b"host secret\n");
    assert!(!share.join("gdev").exists() && !ro.join("new").exists() && ro.join("ops.sh").exists());
    // The held directory moved out during the guest's walk: what the guest wrote through its
    // handle went into that directory, nowhere else outside.
    assert!(moved, "the guest never held the directory:\n{escape}");
    let mut outside: Vec<_> =
        std::fs::read_dir(p("outside")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    outside.sort();
    assert_eq!(outside, ["held", "secret"]);
    assert_eq!(std::fs::read(p("outside/held/made-after-move")).unwrap(), b"after\n");
}
