//! Building and running the Multiboot test kernels (`conformance/kernels/*.S`), shared by the
//! kernel tests of each engine.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every test kernel, by file stem.
pub const KERNELS: &[&str] =
    &["hello", "exceptions", "interrupts", "paging64", "devices", "realmode", "fallback", "forms"];

/// Kernels whose checks need what only the software engines model (NMI delivery; interrupt
/// windows at instruction boundaries; real mode after long mode and ACPI S3's resume in real
/// mode, which this host's KVM cannot run at CPL 0): run on tier 0 (and QEMU) by the kernels
/// test, not on the KVM engine.
pub const SOFTWARE_ENGINE_KERNELS: &[&str] = &["events", "modes", "s3"];

/// Kernels that start in real mode: flat boot-sector images (`link16.ld`), booted by QEMU's
/// BIOS from a floppy image.
pub const REAL_MODE: &[&str] = &["realmode", "modes"];

pub fn kernels_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels")
}

pub fn build(name: &str, out: &Path) -> Result<PathBuf, String> {
    let dir = kernels_dir();
    let real = REAL_MODE.contains(&name);
    let exe = out.join(format!("{name}.{}", if real { "bin" } else { "elf" }));
    let o = Command::new("gcc")
        .args(["-m32", "-nostdlib", "-static", "-ffreestanding", "-Wl,--build-id=none", "-Wl,--no-warn-rwx-segments"])
        .arg(format!("-Wa,-I{}", dir.display()))
        .arg("-Wl,-T")
        .arg(dir.join(if real { "link16.ld" } else { "link.ld" }))
        .arg("-o")
        .arg(&exe)
        .arg(dir.join(format!("{name}.S")))
        .output()
        .map_err(|e| format!("gcc: {e}"))?;
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    Ok(exe)
}

/// Runs `cmd`, killing it after `limit`; returns (exit status, serial output).
pub fn run_with_limit(cmd: Command, serial: &Path, limit: Duration) -> (Option<i32>, String) {
    let (status, out, _) = run_capturing(cmd, serial, limit);
    (status, out)
}

/// Runs `cmd`, killing it after `limit`; returns (exit status, serial output, stderr).
pub fn run_capturing(mut cmd: Command, serial: &Path, limit: Duration) -> (Option<i32>, String, String) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    (status, std::fs::read_to_string(serial).unwrap_or_default(), err)
}

pub fn verdicts(serial: &str) -> Vec<String> {
    serial.lines().filter(|l| l.starts_with("PASS ") || l.starts_with("FAIL ")).map(str::to_string).collect()
}
