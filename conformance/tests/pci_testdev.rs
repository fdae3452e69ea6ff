//! QEMU's pci-testdev (`strata run --device pci-testdev`, issue 14) as a guest driver sees it:
//! the test kernel `conformance/kernels/pcitestdev.S` finds 1B36:0005 through configuration
//! mechanism #1, runs every test of its memory and I/O BARs and prints each test's name, offset,
//! data and the count of writes the device saw. The reference is QEMU itself: the same kernel
//! under `qemu-system-x86_64 -accel tcg -device pci-testdev` must print the same lines and exit
//! with the same status (skipped with a message when QEMU is not installed; then only Strata's
//! own run is checked for six tests and the exit status).

mod kernel_support;
mod user_support;

use kernel_support::{build, run_capturing};
use std::process::Command;
use std::time::Duration;
use user_support::{strata_bin, Scratch};

#[test]
fn pci_testdev_answers_a_driver_as_qemus_does() {
    let dir = Scratch::new("pci-testdev");
    let kernel = build("pcitestdev", dir.path()).expect("build pcitestdev.S");
    let serial = dir.path().join("strata.serial");
    let mut cmd = Command::new(strata_bin());
    cmd.args(["run", "--device", "pci-testdev", "--kernel"]).arg(&kernel);
    cmd.arg("--serial").arg(format!("file:{}", serial.display()));
    let (status, out, err) = run_capturing(cmd, &serial, Duration::from_secs(60));
    assert_eq!(status, Some(1), "{out}\n{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("mem ") || l.starts_with("io ")).count(), 6, "{out}");
    // Without the device the kernel says so and exits with 2.
    let serial2 = dir.path().join("none.serial");
    let mut none = Command::new(strata_bin());
    none.args(["run", "--kernel"]).arg(&kernel).arg("--serial").arg(format!("file:{}", serial2.display()));
    let (status2, out2, _) = run_capturing(none, &serial2, Duration::from_secs(60));
    assert_eq!((status2, out2.as_str()), (Some(5), "no pci-testdev\n"));

    if Command::new("qemu-system-x86_64").arg("--version").output().is_err() {
        eprintln!("SKIP (QEMU part): qemu-system-x86_64 is not installed");
        return;
    }
    let qserial = dir.path().join("qemu.serial");
    let mut q = Command::new("qemu-system-x86_64");
    q.args(["-M", "pc", "-accel", "tcg", "-m", "256M", "-nodefaults", "-display", "none"]);
    q.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-device", "pci-testdev", "-kernel"]).arg(&kernel);
    q.arg("-serial").arg(format!("file:{}", qserial.display()));
    let (qstatus, qout, qerr) = run_capturing(q, &qserial, Duration::from_secs(60));
    assert_eq!((qstatus, qout.as_str()), (status, out.as_str()), "QEMU differs: {qerr}");
}
