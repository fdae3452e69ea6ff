//! `strata run` with bad input: a truncated or non-bzImage kernel, a missing initrd, a bad
//! `--mem` — each is one line on stderr naming the problem and exit status 1, never a panic; an
//! unknown tier is a usage error (one line, exit 2, as clap's usage errors are). Options that need
//! instructions counted are refused for KVM in one line. A guest that triple-faults stops the run with the CPU state printed (exit 2).
//! The built-in demo guest runs with no arguments.

use std::process::{Command, Output};

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata")).args(args).output().expect("run strata")
}

fn scratch(name: &str, data: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("strata-run-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.display().to_string()
}

/// Exit status 1, exactly one line on stderr containing `needle`, and no panic.
fn one_line_error(o: &Output, needle: &str) {
    one_line_status(o, needle, 1);
}

/// Exit status `code`, exactly one line on stderr containing `needle`, and no panic.
fn one_line_status(o: &Output, needle: &str, code: i32) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The first bytes of a bzImage setup header (boot flag 0xAA55, "HdrS", protocol 2.15).
fn bzimage_header() -> Vec<u8> {
    let mut d = vec![0u8; 0x300];
    d[0x1f1] = 4;
    d[0x1fe] = 0x55;
    d[0x1ff] = 0xaa;
    d[0x202..0x206].copy_from_slice(b"HdrS");
    d[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    d[0x211] = 1;
    d[0x236] = 1;
    d
}

#[test]
fn bad_kernels_initrds_and_sizes_are_one_line_errors() {
    let junk = scratch("junk", b"this is not a kernel at all, just some text long enough");
    one_line_error(&strata(&["run", "--kernel", &junk]), "neither a bzImage");
    let truncated = scratch("truncated", &bzimage_header());
    one_line_error(&strata(&["run", "--kernel", &truncated]), "truncated");
    one_line_error(&strata(&["run", "--kernel", "/nonexistent/vmlinuz"]), "/nonexistent/vmlinuz");
    let demo_args = ["run", "--kernel", "builtin:demo"];
    one_line_error(&strata(&[&demo_args[..], &["--initrd", "/nonexistent/initrd"]].concat()), "/nonexistent/initrd");
    for bad in ["lots", "0", "12Q", "99999999999999G", "8G"] {
        one_line_error(&strata(&[&demo_args[..], &["--mem", bad]].concat()), "--mem");
    }
    one_line_status(&strata(&[&demo_args[..], &["--tier", "tcg"]].concat()), "--tier", 2);
    one_line_error(&strata(&[&demo_args[..], &["--cpu", "pentium"]].concat()), "unknown CPU model 'pentium'");
    one_line_error(&strata(&[&demo_args[..], &["--debugcon", "stdio"]].concat()), "use file:PATH");
    one_line_error(
        &strata(&[&demo_args[..], &["--debugcon", "file:/nonexistent/dir/log"]].concat()),
        "/nonexistent/dir/log",
    );
}

#[test]
fn options_that_count_instructions_are_refused_for_kvm_in_one_line() {
    let demo_args = ["run", "--kernel", "builtin:demo", "--tier", "kvm"];
    // Where KVM is usable the refusal names the option; elsewhere `--tier kvm` itself is refused
    // first (no KVM), also in one line.
    let kvm = std::path::Path::new("/dev/kvm").exists();
    for (opts, needle) in [
        (&["--max-instructions", "1000"][..], "--max-instructions"),
        (&["--deterministic"][..], "--deterministic"),
        (&["--save", "/tmp/never-written.snap", "--save-at", "1000"][..], "--save-at N"),
    ] {
        let o = strata(&[&demo_args[..], opts].concat());
        one_line_error(&o, if kvm { needle } else { "--tier kvm" });
    }
    let o = strata(&[&demo_args[..], &["--switch-at", "instr:100"]].concat());
    one_line_error(&o, if kvm { "--switch-at instr:100" } else { "--tier kvm" });
    // The same options on tier 0 are accepted: the demo guest stops at the limit (exit 3).
    let o = strata(&["run", "--kernel", "builtin:demo", "--max-instructions", "1000"]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("retired=1000"), "the limit is exact");
}

#[test]
fn a_triple_fault_stops_the_run_and_prints_the_cpu_state() {
    // A boot sector that loads an empty IDT (limit 0) and executes UD2: #UD cannot be
    // delivered (#GP), nor can #GP (#DF), nor #DF: the CPU shuts down (SDM Vol. 3, 6.15).
    let mut img = vec![0u8; 512];
    let code = [0x0f, 0x01, 0x1e, 0x10, 0x7c, 0x0f, 0x0b]; // lidt [0x7c10]; ud2
    img[..code.len()].copy_from_slice(&code);
    img[510] = 0x55;
    img[511] = 0xaa; // the 6-byte IDTR image at 0x10 is all zeros: limit 0, base 0
    let k = scratch("triple.bin", &img);
    let o = strata(&["run", "--kernel", &k]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("triple fault") && err.contains("rip="), "{err}");
}

#[test]
fn no_arguments_boots_the_demo_guest() {
    let o = Command::new(env!("CARGO_BIN_EXE_strata")).stdin(std::process::Stdio::null()).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    // The default CPU model is AMD's (APM Vol. 3, CPUID Fn0000_0000: "AuthenticAMD").
    assert!(out.contains("CPUID vendor: AuthenticAMD") && out.contains("tick tick tick tick tick"), "{out}");
    // --cpu broadwell: Intel's vendor string (SDM Vol. 2A, CPUID leaf 0: "GenuineIntel").
    let o = strata(&["run", "--kernel", "builtin:demo", "--cpu", "broadwell"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("CPUID vendor: GenuineIntel"), "{out}");
}
