//! Shared by the program-level differential tests (`programs.rs`, `busybox.rs`): finding the
//! `strata` binary, building test programs, and running a program natively and under
//! `strata user` with the same arguments, environment, working directory and stdin.
//!
//! `compare_on`/`run_on` pick strata's engine (`strata user --tier interp|kvm|jit`, the JIT at
//! threshold 1);
//! `kvm_unavailable` says why the KVM tier cannot run here, for the KVM tests to skip.
//!
//! The `strata` binary is taken from `STRATA_BIN` if set, else from the same target directory
//! and profile as the running test (`target/<profile>/strata`, which `cargo test --workspace`
//! builds). Nothing here builds it: if it is missing the tests fail with a message saying so.
//! `STRATA_RUNNER`, if set, is a command that runs it (CI: qemu-aarch64 for an aarch64 build).

#![allow(dead_code)]

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The strata binary to test.
pub fn strata_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("STRATA_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/strata
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = profile_dir.join("strata");
    assert!(
        bin.exists(),
        "strata binary not found at {}: build it first (cargo build -p strata, or run cargo test --workspace) \
         or set STRATA_BIN",
        bin.display()
    );
    bin
}

/// True if `tool` runs (`tool --version` exits successfully).
pub fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// A fresh scratch directory under the system temp dir, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("strata-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a run produced.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    /// Exit status as a shell reports it: the exit code, or 128 + signal.
    pub status: i32,
}

/// Runs `argv` (natively when `under_strata` is false) in `cwd` with a fixed environment and
/// `stdin` bytes (a file written beside it, so the guest sees a seekable regular file).
pub fn run(argv: &[&str], cwd: &Path, stdin: Option<&Path>, under_strata: bool) -> (Outcome, String) {
    run_on(argv, cwd, stdin, under_strata.then_some("interp"))
}

/// Why `strata user --tier kvm` cannot run here, or `None` when it can. Asked of the strata
/// binary itself (through `STRATA_RUNNER` if set): it checks /dev/kvm before loading the
/// program, so a missing program (exit 127) means KVM is usable, and exit 1 comes with the
/// reason (no /dev/kvm, no permission, a non-x86-64 build). The KVM tests skip with it.
pub fn kvm_unavailable() -> Option<String> {
    static ANSWER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ANSWER
        .get_or_init(|| {
            let cwd = std::env::temp_dir();
            let (out, err) = run_on(&["/nonexistent/strata-kvm-probe"], &cwd, None, Some("kvm"));
            (out.status != 127).then(|| err.trim().to_string())
        })
        .clone()
}

/// The whole environment of every run, native and under strata, sorted by name.
const GUEST_ENV: [(&str, &str); 3] = [("LC_ALL", "C"), ("PATH", "/usr/bin:/bin"), ("STRATA_TEST", "1")];

/// Why `strata user --tier jit` cannot run here, or `None` when it can: the JIT exists on
/// x86-64 Linux builds only (an aarch64 strata under `STRATA_RUNNER` has none).
pub fn jit_unavailable() -> Option<String> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Some("strata has no JIT on this host".into());
    }
    if std::env::var("STRATA_RUNNER").is_ok_and(|r| !r.trim().is_empty()) {
        return Some("STRATA_RUNNER runs a strata built for another host (no JIT)".into());
    }
    None
}

/// Like [`run`], with `tier` naming the strata engine (`strata user --tier TIER`), or natively
/// when `tier` is `None`.
pub fn run_on(argv: &[&str], cwd: &Path, stdin: Option<&Path>, tier: Option<&str>) -> (Outcome, String) {
    let mut cmd = if let Some(tier) = tier {
        // STRATA_RUNNER runs strata through another program, e.g. "qemu-aarch64 -L
        // /usr/aarch64-linux-gnu" for an aarch64 build (CI), without a shell in between.
        let runner = std::env::var("STRATA_RUNNER").unwrap_or_default();
        let mut words = runner.split_whitespace();
        let mut c = match words.next() {
            Some(prog) => {
                let mut c = Command::new(prog);
                c.args(words).arg(strata_bin());
                c
            }
            None => Command::new(strata_bin()),
        };
        c.arg("user");
        if tier == "jit" {
            // Threshold 1: every block runs as translated code from its first execution.
            c.args(["--tier", "jit", "--jit-threshold", "1"]);
        } else if tier != "interp" {
            c.args(["--tier", tier]);
        }
        if !runner.is_empty() {
            // A runner such as qemu-aarch64 hands strata its environment in reverse order (QEMU's
            // linux-user rebuilds environ from a list it prepends to), so the guest's order is
            // given explicitly, the same as the native run's (the variables below, sorted, as
            // std::process::Command passes them).
            c.arg("--clear-env");
            for var in GUEST_ENV {
                c.args(["--env", &format!("{}={}", var.0, var.1)]);
            }
        }
        c.args(argv);
        c
    } else {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        c
    };
    cmd.current_dir(cwd).env_clear().envs(GUEST_ENV);
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).expect("stdin file")),
        None => Stdio::null(),
    });
    let out = cmd.output().expect("spawn");
    let status = out.status.code().unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
    (Outcome { stdout: out.stdout, status }, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs natively and under strata; panics with both outputs when they differ.
pub fn compare(what: &str, argv: &[&str], cwd_native: &Path, cwd_strata: &Path, stdin: Option<&Path>) -> Outcome {
    compare_on("interp", what, argv, cwd_native, cwd_strata, stdin)
}

/// [`compare`] with strata's engine named (`interp` or `kvm`).
pub fn compare_on(
    tier: &str,
    what: &str,
    argv: &[&str],
    cwd_native: &Path,
    cwd_strata: &Path,
    stdin: Option<&Path>,
) -> Outcome {
    // Name the host CPU once per test binary (programs may take CPU-specific paths natively).
    #[cfg(target_arch = "x86_64")]
    emu::hostcpu::announce();
    let (native, _) = run_on(argv, cwd_native, stdin, None);
    let (emulated, err) = run_on(argv, cwd_strata, stdin, Some(tier));
    if native != emulated {
        let show = |b: &[u8]| {
            let s = String::from_utf8_lossy(b);
            if s.len() > 3000 {
                format!("{}... ({} bytes)", &s[..3000], s.len())
            } else {
                s.into_owned()
            }
        };
        panic!(
            "{what}: native and strata --tier {tier} differ\n--- native (status {}):\n{}\n--- strata (status {}):\n{}\n--- strata stderr:\n{}",
            native.status,
            show(&native.stdout),
            emulated.status,
            show(&emulated.stdout),
            &err[..err.len().min(3000)]
        );
    }
    native
}
