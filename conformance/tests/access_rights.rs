//! SMEP, SMAP, PKU and PKS (issue 14): the test kernel `conformance/kernels/accessrights.S`
//! runs its checks (SDM Vol. 3, 4.6 and 4.7) 24 times over on `--cpu sapphirerapids`, on tier 0
//! and on the JIT (where the checks run compiled after the first rounds, so a TLB entry that
//! outlived a change of EFLAGS.AC, PKRU, IA32_PKRS or CR4 shows), and on QEMU TCG with
//! `-cpu max` as the independent reference: the PASS/FAIL lines must match, but for the check
//! where QEMU departs from the SDM (below). The default model (k8) reports none of these and
//! the kernel fails its CPUID check there.

mod kernel_support;
mod user_support;

use kernel_support::{build, run_capturing, verdicts};
use std::process::Command;
use std::time::Duration;
use user_support::{strata_bin, Scratch};

/// QEMU's TCG lets an implicit supervisor access (here: a segment load reading a GDT on a
/// user page) through SMAP when EFLAGS.AC is set at CPL 0, where the SDM (Vol. 3, 4.6.1) denies
/// implicit accesses to user pages whatever AC ("if EFLAGS.AC = 0 or the access is implicit,
/// data may not be read from any user-mode address"). Its verdict is ignored for this check.
const QEMU_DEVIATIONS: &[&str] = &["smap_implicit_gdt_read_on_user_page_faults_with_ac1"];

fn run_strata(kernel: &std::path::Path, dir: &std::path::Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let serial = dir.join(format!("strata{}.serial", extra.join("")));
    let mut cmd = Command::new(strata_bin());
    cmd.args(["run", "--deterministic"]).args(extra).arg("--kernel").arg(kernel);
    cmd.arg("--serial").arg(format!("file:{}", serial.display()));
    run_capturing(cmd, &serial, Duration::from_secs(60))
}

#[test]
fn smep_smap_and_protection_keys_follow_the_sdm_on_tier0_the_jit_and_qemu() {
    let dir = Scratch::new("access-rights");
    let kernel = match build("accessrights", dir.path()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("SKIP: gcc cannot build 32-bit test kernels here ({e})");
            return;
        }
    };
    let (status, out, err) = run_strata(&kernel, dir.path(), &["--cpu", "sapphirerapids"]);
    let ours = verdicts(&out);
    assert_eq!(status, Some(1), "{out}\n{err}");
    assert!(ours.len() >= 21 && ours.iter().all(|l| l.starts_with("PASS ")), "{out}");

    // The default model has none of it: the CPUID check fails (and CR4.SMEP is then #GP,
    // which ends the run at the kernel's catch-all handler).
    let (k8_status, k8_out, _) = run_strata(&kernel, dir.path(), &[]);
    assert_ne!(k8_status, Some(1));
    assert!(k8_out.contains("FAIL cpuid_reports_smep_smap_pku_pks") || k8_out.is_empty(), "{k8_out}");

    if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        let (jstatus, jout, jerr) = run_strata(&kernel, dir.path(), &["--cpu", "sapphirerapids", "--tier", "jit"]);
        assert_eq!((jstatus, verdicts(&jout)), (status, ours.clone()), "the JIT differs:\n{jout}\n{jerr}");
    }

    if Command::new("qemu-system-x86_64").arg("--version").output().is_err() {
        eprintln!("SKIP (QEMU part): qemu-system-x86_64 is not installed");
        return;
    }
    let qserial = dir.path().join("qemu.serial");
    let mut q = Command::new("qemu-system-x86_64");
    q.args(["-M", "pc", "-accel", "tcg", "-cpu", "max", "-m", "256M", "-display", "none", "-no-reboot"]);
    q.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-kernel"]).arg(&kernel);
    q.arg("-serial").arg(format!("file:{}", qserial.display()));
    let (qstatus, qout, qerr) = run_capturing(q, &qserial, Duration::from_secs(60));
    let comparable = |v: &[String]| -> Vec<String> {
        v.iter().filter(|l| !QEMU_DEVIATIONS.iter().any(|d| l.ends_with(d))).cloned().collect()
    };
    let theirs = verdicts(&qout);
    assert_eq!(comparable(&theirs), comparable(&ours), "QEMU (exit {qstatus:?}) differs: {qerr}\n{qout}");
}
