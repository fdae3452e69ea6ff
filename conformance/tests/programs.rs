//! The program-level differential corpus: every program in `conformance/programs/` is built at
//! test time, run natively and under `strata user`, and must produce the same stdout and the
//! same exit status (an exit code, or 128 + signal).
//!
//! Kinds of program:
//! - `programs/nolibc/*.c`: freestanding C on a tiny runtime (`nolibc.h`: raw system calls, no
//!   libc), built with `-mgeneral-regs-only`, so they need only the integer instruction set.
//!   They test the system call layer and signal delivery directly.
//! - `programs/asm/*.S`: `-nostdlib` assembly.
//! - `programs/*.c`: ordinary C, built `gcc -O2 -static` (glibc; a few also `-static-pie`) and,
//!   when `musl-gcc` exists, `musl-gcc -O2 -static`. These exercise libc's SSE2 string functions, stdio, malloc, ...
//!
//! The same corpus runs on tier 0 (the top-level modules), on KVM (`mod kvm`, `strata user
//! --tier kvm`; skipped with a message where /dev/kvm is absent or not accessible) and on the
//! JIT with every block translated (`mod jit`, `strata user --tier jit --jit-threshold 1`).
//!
//! Tests skip (pass with a message) when gcc or musl-gcc is absent. The strata binary is found
//! as `user_support::strata_bin` describes (`STRATA_BIN`, else `target/<profile>/strata`).
//! Each run gets its own empty working directory, a fixed environment and arguments, and
//! stdin from /dev/null.

mod user_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use user_support::{compare_on, have, jit_unavailable, kvm_unavailable, run_on, Scratch};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    NoLibc,
    Asm,
    Glibc,
    /// glibc, position-independent (`-static-pie`): loaded at a base the runner picks and
    /// relocated by libc's own startup code.
    GlibcPie,
    Musl,
}

fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs")
}

/// Builds `name` of `kind` into `out`; `None` (with a message) when the compiler is missing.
fn build(kind: Kind, name: &str, out: &Path) -> Option<PathBuf> {
    let dir = programs_dir();
    let (cc, src, flags): (&str, PathBuf, &[&str]) = match kind {
        Kind::NoLibc => (
            "gcc",
            dir.join("nolibc").join(format!("{name}.c")),
            &[
                "-O2",
                "-static",
                "-nostdlib",
                "-ffreestanding",
                "-fno-builtin",
                "-mgeneral-regs-only",
                "-fno-stack-protector",
                "-fno-pie",
                "-no-pie",
                "-fno-asynchronous-unwind-tables",
            ],
        ),
        Kind::Asm => ("gcc", dir.join("asm").join(format!("{name}.S")), &["-static", "-nostdlib", "-no-pie"]),
        Kind::Glibc => ("gcc", dir.join(format!("{name}.c")), &["-O2", "-static"]),
        Kind::GlibcPie => ("gcc", dir.join(format!("{name}.c")), &["-O2", "-static-pie"]),
        Kind::Musl => ("musl-gcc", dir.join(format!("{name}.c")), &["-O2", "-static"]),
    };
    if !have(cc) {
        eprintln!("skipping {name} ({kind:?}): {cc} is not installed");
        return None;
    }
    let bin = out.join(format!("{name}-{kind:?}"));
    let o = Command::new(cc).args(flags).arg("-o").arg(&bin).arg(&src).arg("-lm").output().expect("run compiler");
    assert!(o.status.success(), "{cc} {}: {}", src.display(), String::from_utf8_lossy(&o.stderr));
    Some(bin)
}

/// Builds and runs one program both ways, with fixed arguments, on strata's engine `tier`.
fn check_on(tier: &str, kind: Kind, name: &str) {
    let build_dir = Scratch::new("build");
    let Some(bin) = build(kind, name, build_dir.path()) else { return };
    let (native_cwd, strata_cwd) = (Scratch::new("native"), Scratch::new("strata"));
    let bin = bin.to_string_lossy().into_owned();
    let argv = [bin.as_str(), "alpha", "beta gamma", ""];
    compare_on(tier, &format!("{name} ({kind:?})"), &argv, native_cwd.path(), strata_cwd.path(), None);
}

/// On tier 0.
fn check(kind: Kind, name: &str) {
    check_on("interp", kind, name);
}

/// On KVM (`strata user --tier kvm`); skips with a message where /dev/kvm is not usable.
fn check_kvm(kind: Kind, name: &str) {
    if let Some(why) = kvm_unavailable() {
        eprintln!("skipping {name} ({kind:?}) on KVM: {why}");
        return;
    }
    check_on("kvm", kind, name);
}

/// On the JIT at threshold 1 (`strata user --tier jit --jit-threshold 1`); skips with a message
/// on hosts without one.
fn check_jit(kind: Kind, name: &str) {
    if let Some(why) = jit_unavailable() {
        eprintln!("skipping {name} ({kind:?}) on the JIT: {why}");
        return;
    }
    check_on("jit", kind, name);
}

macro_rules! corpus {
    ($kind:ident: $($(#[$attr:meta])* $name:ident),* $(,)?) => {
        corpus!(check, $kind: $($(#[$attr])* $name),*);
    };
    ($check:ident, $kind:ident: $($(#[$attr:meta])* $name:ident),* $(,)?) => {
        $(
            #[test]
            $(#[$attr])*
            fn $name() {
                $check(Kind::$kind, stringify!($name));
            }
        )*
    };
}

/// The libc corpus, built against glibc and against musl.
macro_rules! libc_corpus {
    ($kind:ident) => {
        libc_corpus!(check, $kind);
    };
    ($check:ident, $kind:ident) => {
        corpus!($check, $kind:
            integers,
            strings,
            sorting,
            printf,
            malloc_stress,
            file_io,
            dirs,
            args_env,
            time_random,
            setjmp,
            signals,
            float_math,
            fpu_signals,
            jit,
        );
    };
}

/// The whole corpus, one module per kind of program, each test run by `$check` (which picks
/// the engine): `nolibc::misc` on tier 0, `kvm::nolibc::misc` on KVM, `jit::nolibc::misc` on
/// the JIT.
macro_rules! whole_corpus {
    ($check:ident) => {
        mod nolibc {
            use super::*;
            corpus!($check, NoLibc: faults, signals, files, memory, misc, vectored, timers, privileged);
        }

        mod asm {
            use super::*;
            corpus!($check, Asm: hello, exit_status);
        }

        mod glibc {
            use super::*;
            libc_corpus!($check, Glibc);
        }

        mod glibc_pie {
            use super::*;
            corpus!($check, GlibcPie: args_env, setjmp, signals, jit);
        }

        mod musl {
            use super::*;
            libc_corpus!($check, Musl);
        }
    };
}

whole_corpus!(check);

/// The whole corpus again on KVM (`strata user --tier kvm`): the program runs natively at CPL3
/// in a KVM guest, and its system calls and faults go to the same kernel code as on tier 0.
/// Kept apart from the tier-0 tests so each tier's results read separately.
mod kvm {
    use super::*;
    whole_corpus!(check_kvm);
}

/// The whole corpus again on the JIT, every block translated (threshold 1).
mod jit {
    use super::*;
    whole_corpus!(check_jit);
}

/// The fault program (SIGSEGV on an unmapped page, on a page munmapped and on one mprotected
/// after they were touched, SIGFPE from DIV by zero, SIGILL from UD2, SIGSEGV from #GP, each
/// caught by a handler that reads the ucontext) gives the same output natively, on tier 0, on the
/// JIT and on KVM, and that output shows every signal arrived. The munmap/mprotect cases fail on KVM
/// if translations KVM cached survive the page-table change.
#[test]
fn faults_agree_natively_on_tier0_and_on_kvm() {
    let build_dir = Scratch::new("build");
    let Some(bin) = build(Kind::NoLibc, "faults", build_dir.path()) else { return };
    let bin = bin.to_string_lossy().into_owned();
    let cwd = Scratch::new("faults");
    let (native, _) = run_on(&[&bin], cwd.path(), None, None);
    let text = String::from_utf8_lossy(&native.stdout).into_owned();
    for line in [
        "read unmapped: sig=11 code=1",
        "rmw read-only: sig=11 code=2",
        "divide by zero: sig=8",
        "ud2: sig=4",
        "non-canonical: sig=11",
    ] {
        assert!(text.contains(line), "native output lacks {line:?}:\n{text}");
    }
    let (tier0, err) = run_on(&[&bin], cwd.path(), None, Some("interp"));
    assert_eq!(tier0, native, "tier 0 differs from native: {err}");
    match jit_unavailable() {
        Some(why) => eprintln!("skipping the JIT run: {why}"),
        None => {
            let (jit, err) = run_on(&[&bin], cwd.path(), None, Some("jit"));
            assert_eq!(jit, native, "the JIT differs from native: {err}");
        }
    }
    if let Some(why) = kvm_unavailable() {
        eprintln!("skipping the KVM run: {why}");
        return;
    }
    let (kvm, err) = run_on(&[&bin], cwd.path(), None, Some("kvm"));
    assert_eq!(kvm, native, "KVM differs from native: {err}");
}
