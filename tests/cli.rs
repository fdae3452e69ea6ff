//! The `strata` command line: argument errors come from clap (exit 2); a program that cannot be
//! run (missing, not ELF, truncated, 32-bit, another machine, dynamically linked) is one line on
//! stderr naming the file and the problem, and exit status 127, as a shell reports a command it
//! cannot execute; otherwise strata's exit status is the program's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata")).args(args).output().expect("run strata")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A minimal static x86-64 executable: one PT_LOAD page whose code is `exit(code)`
/// (mov edi, code; mov eax, 60; syscall). Layout per the System V gABI.
fn tiny_elf(code: u8) -> Vec<u8> {
    let mut d = vec![0u8; 4096 + 16];
    d[..4].copy_from_slice(b"\x7fELF");
    d[4] = 2; // ELFCLASS64
    d[5] = 1; // little-endian
    d[6] = 1;
    d[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    d[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    d[24..32].copy_from_slice(&0x401000u64.to_le_bytes());
    d[32..40].copy_from_slice(&64u64.to_le_bytes());
    d[54..56].copy_from_slice(&56u16.to_le_bytes());
    d[56..58].copy_from_slice(&1u16.to_le_bytes());
    let ph = 64;
    d[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    d[ph + 4..ph + 8].copy_from_slice(&5u32.to_le_bytes()); // R+X
    d[ph + 16..ph + 24].copy_from_slice(&0x400000u64.to_le_bytes());
    d[ph + 32..ph + 40].copy_from_slice(&(4096u64 + 16).to_le_bytes());
    d[ph + 40..ph + 48].copy_from_slice(&(4096u64 + 16).to_le_bytes());
    d[ph + 48..ph + 56].copy_from_slice(&4096u64.to_le_bytes());
    d[4096..4108].copy_from_slice(&[0xbf, code, 0, 0, 0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05]);
    d
}

fn write(name: &str, bytes: &[u8]) -> String {
    let p = scratch(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

/// Runs `path` and checks for exit 127 with one stderr line naming the file and `problem`.
fn refused(path: &str, problem: &str) {
    let o = strata(&["user", path]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(127), "{path}: stderr {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(path), "names the file: {err}");
    assert!(err.contains(problem), "says '{problem}': {err}");
}

#[test]
fn exit_status_is_the_programs() {
    let p = write("exit7", &tiny_elf(7));
    assert_eq!(strata(&["user", &p]).status.code(), Some(7));
    let p = write("exit0", &tiny_elf(0));
    let o = strata(&["user", "--stats", "--mem-mib", "64", &p, "--not-a-strata-flag"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("instructions"), "--stats reports");
    let o = strata(&["user", "--strace", &p]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("syscall 60(0x0)"), "--strace shows exit(0)");
}

#[test]
fn bad_command_lines_are_clap_errors() {
    // (No arguments at all boots the built-in demo guest, so that is not an error.)
    assert_eq!(strata(&["user"]).status.code(), Some(2));
    assert_eq!(strata(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(strata(&["user", "--mem-mib", "lots", "x"]).status.code(), Some(2));
}

#[test]
fn unrunnable_files_are_one_line_and_127() {
    refused(&scratch("does-not-exist").to_string_lossy(), "No such file");
    refused(&write("text", b"#!/bin/sh\necho hi\n"), "not an ELF file");
    let good = tiny_elf(0);
    refused(&write("truncated", &good[..100]), "truncated");
    refused(&write("truncated-segment", &good[..2000]), "truncated");
    let mut elf32 = good.clone();
    elf32[4] = 1;
    refused(&write("elf32", &elf32), "not a 64-bit");
    let mut arm = good.clone();
    arm[18..20].copy_from_slice(&183u16.to_le_bytes());
    refused(&write("aarch64", &arm), "not an x86-64");
    let mut core = good;
    core[16..18].copy_from_slice(&4u16.to_le_bytes());
    refused(&write("core", &core), "not an executable");
}

#[test]
fn dynamic_executables_are_refused_by_name() {
    // Any dynamically linked host program will do.
    let Some(dynamic) = ["/bin/true", "/usr/bin/true", "/bin/sh"].into_iter().find(|p| Path::new(p).exists()) else {
        eprintln!("skipping: no dynamically linked program found");
        return;
    };
    let data = std::fs::read(dynamic).unwrap();
    if data.get(18) != Some(&62) {
        eprintln!("skipping: {dynamic} is not an x86-64 executable");
        return;
    }
    refused(dynamic, "dynamically linked");
}
