//! Snapshots of the virtual PC, end to end: a machine saved and restored runs on exactly as the
//! uninterrupted machine does.
//!
//! The oracle is the uninterrupted run. Each test kernel (`conformance/kernels`, which program
//! the PIT, the PIC pair, the IOAPIC, the LAPIC timer and the UART and check them against the
//! datasheets) first runs whole under `strata run --deterministic`; then, for save points spread
//! over the run, `--save-at N` saves and exits and `--restore` runs the rest. The two serial
//! outputs put together, and the final exit status, must equal the uninterrupted run's. The save
//! points must include ones where a timer runs or an interrupt is requested, or device state
//! would not be tested. The same snapshots are also restored in-process under a virtual clock
//! that starts far from the saved time: nothing the guest sees may change.
//!
//! The Debian guest (`build/guest`, from scripts/build-guest.sh; skipped with a message when it
//! is missing) is saved at an early kernel line and restored, and must reach its marker and
//! power off cleanly. That costs one boot (~60 s with the ci profile).

mod kernel_support;
mod user_support;

use emu::machine::{Machine, RunEnd};
use emu::snapshot::BoardState;
use kernel_support::{build, run_capturing};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};
use user_support::{strata_bin, Scratch};

/// A guard against a hung run, not a timing check: the Debian boot takes ~50 s alone on tier 0
/// but passed 120 s on a 2-core host running other builds, so the guard is as generous as the
/// disk tests'.
const LIMIT: Duration = Duration::from_secs(600);

/// `strata run ARGS... --deterministic --serial file:SERIAL`: (status, serial, stderr).
fn strata(args: &[&str], serial: &Path) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(strata_bin());
    cmd.arg("run").args(args).arg("--deterministic").arg("--serial").arg(format!("file:{}", serial.display()));
    run_capturing(cmd, serial, LIMIT)
}

/// The count from the "strata: N instructions retired" line.
fn retired(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("strata: ")?.strip_suffix(" instructions retired")?.parse().ok())
        .unwrap_or_else(|| panic!("no instruction count in {stderr:?}"))
}

/// Serial output into a shared buffer (for in-process runs).
#[derive(Clone, Default)]
struct Capture(Rc<RefCell<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A timer runs or an interrupt waits somewhere on the saved board.
fn timers_or_interrupts_pending(board: &BoardState) -> bool {
    let pit0 = &board.pit.counters[0];
    board.lapic.timer_armed
        || board.lapic.irr.iter().any(|&w| w != 0)
        || board.pic.master.irr & !board.pic.master.imr != 0
        || board.pic.slave.irr & !board.pic.slave.imr != 0
        || (pit0.counting && pit0.mode >= 2)
        || !board.apic_messages.is_empty()
}

/// Restores `snap` in-process with the virtual clock started at `clock_ns`, runs it to the end:
/// (serial output, how it ended, whether timers or interrupts were pending in the snapshot).
fn resume_in_process(snap: &Path, clock_ns: u64) -> (String, RunEnd, bool) {
    let out = Capture::default();
    let mut m = Machine::restore_snapshot_at(snap, Box::new(out.clone()), Instant::now(), true, None, Some(clock_ns))
        .expect("restore");
    let pending = timers_or_interrupts_pending(&BoardState::capture(&m.board.borrow()));
    let end = m.run(2_000_000_000);
    let serial = String::from_utf8_lossy(&out.0.borrow()).into_owned();
    (serial, end, pending)
}

fn save_and_restore_everywhere(name: &str) {
    let dir = Scratch::new(&format!("snapshot-{name}"));
    let kernel = match build(name, dir.path()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("SKIP: cannot build 32-bit test kernels with gcc -m32 here: {e}");
            return;
        }
    };
    let kernel = kernel.display().to_string();
    let (status, full, err) = strata(&["--kernel", &kernel], &dir.path().join("full.txt"));
    let total = retired(&err);
    assert_eq!(status, Some(1), "{name} must pass uninterrupted: {full}\n{err}");
    assert!(full.contains("PASS "), "{full}");

    let snap: PathBuf = dir.path().join("s.snap");
    let mut points = Vec::new();
    let mut pending_points = 0;
    let step = (total / 60).max(1);
    for n in (1..total).step_by(step as usize) {
        let (st, before, err) = strata(
            &["--kernel", &kernel, "--save", &snap.display().to_string(), "--save-at", &n.to_string()],
            &dir.path().join("before.txt"),
        );
        if st != Some(0) {
            // The guest ended before a poll point at or after n: nothing left to save.
            assert!(err.contains("before the --save-at point"), "save at {n}: {err}");
            continue;
        }
        assert!(err.contains("strata: snapshot saved to"), "{err}");
        let at = retired(&err);
        if points.contains(&at) {
            continue;
        }
        points.push(at);
        let (st2, after, err2) = strata(&["--restore", &snap.display().to_string()], &dir.path().join("after.txt"));
        assert_eq!(st2, status, "{name} restored at {at}: exit status\n{err2}");
        assert_eq!(format!("{before}{after}"), full, "{name} saved at {at}: serial output differs");
        assert_eq!(retired(&err2), total, "{name} saved at {at}: instruction count differs");

        // The same snapshot under a clock that starts 987.654321 ms away from the saved time.
        let (rest, end, pending) = resume_in_process(&snap, 987_654_321);
        assert_eq!(format!("{before}{rest}"), full, "{name} saved at {at}, clock moved: serial output differs");
        assert_eq!(end, RunEnd::ExitPort(1));
        pending_points += usize::from(pending);
    }
    eprintln!("{name}: {} save points of {total} instructions, {pending_points} with timers or interrupts pending: {points:?}", points.len());
    assert!(points.len() >= 3, "{name}: only {points:?}");
    assert!(pending_points >= 1, "{name}: no save point had a timer running or an interrupt waiting");
}

#[test]
fn interrupts_kernel_resumes_exactly() {
    save_and_restore_everywhere("interrupts");
}

#[test]
fn devices_kernel_resumes_exactly() {
    save_and_restore_everywhere("devices");
}

#[test]
fn bad_snapshot_options_and_files_are_one_line_errors() {
    let dir = Scratch::new("snapshot-cli");
    let serial = dir.path().join("serial.txt");
    let junk = dir.path().join("junk.snap");
    std::fs::write(&junk, b"not a snapshot").unwrap();
    let junk = junk.display().to_string();
    for (args, needle) in [
        (vec!["--restore", &junk], "not a Strata snapshot"),
        (vec!["--restore", "/nonexistent/s.snap"], "/nonexistent/s.snap"),
        (vec!["--restore", "/tmp"], "not a regular file"),
        (vec!["--restore", &junk, "--kernel", "builtin:demo"], "--kernel cannot be used with --restore"),
        (vec!["--restore", &junk, "--mem", "1G"], "--mem cannot be used with --restore"),
        (vec![], "--kernel PATH is required"),
        (vec!["--kernel", "builtin:demo", "--save", "x.snap"], "--save needs --save-at"),
        (vec!["--kernel", "builtin:demo", "--save-at", "5"], "--save-at needs --save"),
        (vec!["--kernel", "builtin:demo", "--save", "x.snap", "--save-at", "soon"], "--save-at soon"),
    ] {
        let (status, _, err) = strata(&args, &serial);
        assert_eq!(status, Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: expected {needle:?} in {err:?}");
    }
}

/// A line Debian's kernel prints mid-boot on this machine (at the info level, so the save run
/// boots without `quiet`): the ACPI interpreter has loaded the DSDT, a few seconds into the boot.
const EARLY_LINE: &str = "ACPI: Interpreter enabled";

#[test]
fn debian_guest_resumes_to_its_marker() {
    let guest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/guest");
    if !guest.join("vmlinuz").exists() {
        eprintln!("SKIP: no Debian guest at {} (scripts/build-guest.sh build/guest makes it)", guest.display());
        return;
    }
    let marker = std::fs::read_to_string(guest.join("marker")).expect("marker file").trim().to_string();
    let dir = Scratch::new("snapshot-guest");
    let snap = dir.path().join("guest.snap").display().to_string();
    let kernel = guest.join("vmlinuz").display().to_string();
    let initrd = guest.join("initramfs-marker.cpio.gz").display().to_string();
    let (status, before, err) = strata(
        &[
            "--kernel",
            &kernel,
            "--initrd",
            &initrd,
            "--append",
            "console=ttyS0",
            "--save",
            &snap,
            "--save-at",
            &format!("serial:{EARLY_LINE}"),
        ],
        &dir.path().join("before.txt"),
    );
    assert_eq!(status, Some(0), "save run: {err}\n{before}");
    assert!(before.contains(EARLY_LINE) && !before.contains(&marker), "{before}");
    let (status, after, err) = strata(&["--restore", &snap, "--marker", &marker], &dir.path().join("after.txt"));
    assert_eq!(status, Some(0), "restored run: {err}\n{after}");
    assert!(after.contains(&marker), "the restored guest did not reach its marker:\n{after}\n{err}");
}

/// A snapshot is engine-neutral: saved under KVM and resumed on tier 0, and the other way round,
/// each kernel still passes every check, with the same verdicts as an uninterrupted tier-0 run.
/// Skipped, with a message, where /dev/kvm is not usable.
#[test]
fn snapshots_move_between_kvm_and_tier_0() {
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        eprintln!("SKIP: /dev/kvm is not usable here ({e}); cross-engine snapshots need it");
        return;
    }
    let dir = Scratch::new("snapshot-kvm");
    for (name, at) in [("interrupts", "rtc_periodic"), ("devices", "PASS")] {
        let kernel = match build(name, dir.path()) {
            Ok(k) => k.display().to_string(),
            Err(e) => {
                eprintln!("SKIP: cannot build 32-bit test kernels with gcc -m32 here: {e}");
                return;
            }
        };
        let run = |args: &[&str], serial: &str| {
            let serial = dir.path().join(serial);
            let mut cmd = Command::new(strata_bin());
            cmd.arg("run").args(args).arg("--serial").arg(format!("file:{}", serial.display()));
            run_capturing(cmd, &serial, LIMIT)
        };
        let (status, full, err) = run(&["--kernel", &kernel], "full.txt");
        assert_eq!(status, Some(1), "{name} on tier 0: {err}");
        let snap = dir.path().join("k.snap").display().to_string();
        for (save_tier, restore_tier) in [("kvm", "interp"), ("interp", "kvm"), ("kvm", "kvm")] {
            let save_at = format!("serial:{at}");
            let (st, before, err) =
                run(&["--kernel", &kernel, "--tier", save_tier, "--save", &snap, "--save-at", &save_at], "before.txt");
            assert_eq!(st, Some(0), "{name}: save under {save_tier}: {err}");
            let (st, after, err) = run(&["--restore", &snap, "--tier", restore_tier], "after.txt");
            assert_eq!(st, Some(1), "{name}: {save_tier} -> {restore_tier}: {err}\n{before}{after}");
            assert_eq!(
                kernel_support::verdicts(&format!("{before}{after}")),
                kernel_support::verdicts(&full),
                "{name}: saved under {save_tier}, resumed under {restore_tier}"
            );
        }
    }
}

/// Snapshots between the JIT and tier 0, deterministic: saved under one at a third of the run,
/// resumed under the other (and JIT to JIT), the serial output and the retired count equal an
/// uninterrupted tier-0 run exactly. Skipped where the host has no JIT.
#[test]
fn snapshots_move_between_the_jit_and_tier_0_exactly() {
    if let Some(why) = user_support::jit_unavailable() {
        eprintln!("SKIP: {why}");
        return;
    }
    let dir = Scratch::new("snapshot-jit");
    for name in ["interrupts", "devices"] {
        let kernel = match build(name, dir.path()) {
            Ok(k) => k.display().to_string(),
            Err(e) => {
                eprintln!("SKIP: cannot build 32-bit test kernels with gcc -m32 here: {e}");
                return;
            }
        };
        let (status, full, err) = strata(&["--kernel", &kernel], &dir.path().join("full.txt"));
        assert_eq!(status, Some(1), "{name} on tier 0: {err}");
        let total = retired(&err);
        let snap = dir.path().join("j.snap").display().to_string();
        let at = (total / 3).to_string();
        let jit: &[&str] = &["--tier", "jit", "--jit-threshold", "1"];
        let interp: &[&str] = &["--tier", "interp"];
        for (save, restore) in [(jit, interp), (interp, jit), (jit, jit)] {
            let mut args = vec!["--kernel", &kernel, "--save", &snap, "--save-at", &at];
            args.extend_from_slice(save);
            let (st, before, err) = strata(&args, &dir.path().join("before.txt"));
            assert_eq!(st, Some(0), "{name}: save under {}: {err}", save[1]);
            let mut args = vec!["--restore", &snap];
            args.extend_from_slice(restore);
            let (st, after, err) = strata(&args, &dir.path().join("after.txt"));
            let what = format!("{name}: saved under {}, resumed under {}", save[1], restore[1]);
            assert_eq!(st, Some(1), "{what}: {err}");
            assert_eq!(format!("{before}{after}"), full, "{what}: serial output differs");
            assert_eq!(retired(&err), total, "{what}: instruction count differs");
        }
    }
}
