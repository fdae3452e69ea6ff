//! Debian's busybox-static (a real glibc program of ~2 MB) run natively and under `strata user`
//! over generated files with deterministic content; stdout and exit status must match exactly:
//! sha256sum, md5sum, gzip and bzip2 round trips, sort, sed, awk, wc, and a few more text tools
//! and file operations, each on tier 0 (`interp::`), on KVM (`kvm::`, `strata user --tier
//! kvm`) and on the JIT (`jit::`, every block translated). Skips (passes with a message) when /bin/busybox is absent, and the KVM runs where
//! /dev/kvm is not usable.
//!
//! The files are a few MB in an optimized build (the CI runs `cargo test --release`, and the
//! strata binary then is the release one); a debug build, whose interpreter is an order of
//! magnitude slower, uses files of a few hundred KB.

mod user_support;

use std::path::Path;
use user_support::{compare_on, jit_unavailable, kvm_unavailable, run_on, Scratch};

const BUSYBOX: &str = "/bin/busybox";

/// Deterministic words and numbers: about `lines` lines of text.
fn text(lines: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
        "mike", "november", "oscar", "papa",
    ];
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut out = Vec::new();
    for i in 0..lines {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let w = |k: u64| WORDS[((s >> k) & 15) as usize];
        let line = format!("{} {} {} {}.{} {}\n", w(0), (s >> 20) % 100_000, w(8), (s >> 40) % 1000, i % 97, w(4));
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// Less compressible bytes: a xorshift stream with runs, so compressors have work to do.
fn binary(len: usize) -> Vec<u8> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let run = if s & 7 == 0 { (s >> 8) as usize % 40 } else { 1 };
        out.extend(std::iter::repeat_n((s >> 32) as u8 & 0x3f, run));
    }
    out.truncate(len);
    out
}

struct Files {
    dir: Scratch,
    /// strata's engine: `interp`, `kvm` or `jit`.
    tier: &'static str,
}

impl Files {
    fn new(tier: &'static str) -> Option<Files> {
        if tier == "kvm" {
            if let Some(why) = kvm_unavailable() {
                eprintln!("skipping on KVM: {why}");
                return None;
            }
        }
        if tier == "jit" {
            if let Some(why) = jit_unavailable() {
                eprintln!("skipping on the JIT: {why}");
                return None;
            }
        }
        if !Path::new(BUSYBOX).exists() {
            eprintln!("skipping: {BUSYBOX} is not installed (Debian package busybox-static)");
            return None;
        }
        let dir = Scratch::new("busybox");
        let (lines, bytes) = if cfg!(debug_assertions) { (5_000, 256 << 10) } else { (50_000, 2 << 20) };
        std::fs::write(dir.path().join("text.txt"), text(lines)).unwrap();
        std::fs::write(dir.path().join("data.bin"), binary(bytes)).unwrap();
        Some(Files { dir, tier })
    }

    /// Runs `busybox ARGS` both ways in the files' directory.
    fn check(&self, args: &[&str]) -> Vec<u8> {
        let mut argv = vec![BUSYBOX];
        argv.extend_from_slice(args);
        compare_on(self.tier, &args.join(" "), &argv, self.dir.path(), self.dir.path(), None).stdout
    }

    /// Runs `busybox ARGS` under strata with `input` as stdin; returns its stdout.
    fn strata_with_stdin(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        let stdin = self.dir.path().join("stdin.tmp");
        std::fs::write(&stdin, input).unwrap();
        let mut argv = vec![BUSYBOX];
        argv.extend_from_slice(args);
        let (out, err) = run_on(&argv, self.dir.path(), Some(&stdin), Some(self.tier));
        assert_eq!(out.status, 0, "{args:?} under strata failed: {err}");
        out.stdout
    }
}

fn checksums(tier: &'static str) {
    let Some(f) = Files::new(tier) else { return };
    f.check(&["sha256sum", "text.txt", "data.bin"]);
    f.check(&["md5sum", "text.txt", "data.bin"]);
    f.check(&["cksum", "data.bin"]);
}

fn gzip_round_trip(tier: &'static str) {
    let Some(f) = Files::new(tier) else { return };
    let gz = f.check(&["gzip", "-c", "data.bin"]);
    std::fs::write(f.dir.path().join("data.bin.gz"), &gz).unwrap();
    let back = f.check(&["gzip", "-dc", "data.bin.gz"]);
    assert!(back == std::fs::read(f.dir.path().join("data.bin")).unwrap(), "gzip round trip restores the data");
    // Compression reading stdin, as in a pipeline.
    let text = std::fs::read(f.dir.path().join("text.txt")).unwrap();
    let gz2 = f.strata_with_stdin(&["gzip", "-c"], &text);
    assert!(f.strata_with_stdin(&["gzip", "-dc"], &gz2) == text, "gzip -c | gzip -dc under strata");
}

fn bzip2_round_trip(tier: &'static str) {
    let Some(f) = Files::new(tier) else { return };
    let bz = f.check(&["bzip2", "-c", "text.txt"]);
    std::fs::write(f.dir.path().join("text.txt.bz2"), &bz).unwrap();
    let back = f.check(&["bzip2", "-dc", "text.txt.bz2"]);
    assert!(back == std::fs::read(f.dir.path().join("text.txt")).unwrap(), "bzip2 round trip restores the text");
}

fn text_tools(tier: &'static str) {
    let Some(f) = Files::new(tier) else { return };
    f.check(&["sort", "text.txt"]);
    f.check(&["sort", "-n", "-k2", "text.txt"]);
    f.check(&["sort", "-r", "-u", "-k1,1", "text.txt"]);
    f.check(&["sed", "-e", "s/alpha/ALPHA/g", "-e", "/kilo/d", "text.txt"]);
    f.check(&[
        "awk",
        "{ s += $2; n[$1]++ } END { printf \"%d %.3f\\n\", s, s / NR; for (k in n) c++; print c }",
        "text.txt",
    ]);
    f.check(&["wc", "text.txt", "data.bin"]);
    f.check(&["uniq", "-c", "text.txt"]);
    f.check(&["cut", "-d", " ", "-f", "1,3", "text.txt"]);
    f.check(&["grep", "-c", "november", "text.txt"]);
    f.check(&["head", "-n", "5", "text.txt"]);
    f.check(&["tail", "-c", "100", "data.bin"]);
    f.check(&["od", "-A", "x", "-t", "x1", "-N", "64", "data.bin"]);
}

fn files_and_directories(tier: &'static str) {
    let Some(f) = Files::new(tier) else { return };
    f.check(&["ls", "-la", "--full-time", "."]);
    f.check(&["cat", "text.txt"]);
    f.check(&["stat", "-c", "%s %a %F", "text.txt"]);
    // Commands that change the tree run in a directory of their own on each side.
    let (native, strata) = (Scratch::new("bb-native"), Scratch::new("bb-strata"));
    for d in [&native, &strata] {
        std::fs::copy(f.dir.path().join("text.txt"), d.path().join("text.txt")).unwrap();
    }
    for args in [
        &["mkdir", "-p", "a/b/c"][..],
        &["cp", "text.txt", "a/b/c/copy"],
        &["mv", "a/b/c/copy", "a/b/moved"],
        &["ls", "-R", "a"],
        &["find", "a", "-type", "f"],
        &["rm", "-r", "a"],
        &["ls"],
    ] {
        let mut argv = vec![BUSYBOX];
        argv.extend_from_slice(args);
        compare_on(f.tier, &args.join(" "), &argv, native.path(), strata.path(), None);
    }
}

/// Each workload on tier 0, on KVM (`strata user --tier kvm`; skipped with a message where
/// /dev/kvm is not usable) and on the JIT at threshold 1, as separate tests so each tier's
/// results read separately.
macro_rules! on_tiers {
    ($($name:ident),*) => {
        mod interp {
            $(
                #[test]
                fn $name() {
                    super::$name("interp");
                }
            )*
        }
        mod kvm {
            $(
                #[test]
                fn $name() {
                    super::$name("kvm");
                }
            )*
        }
        mod jit {
            $(
                #[test]
                fn $name() {
                    super::$name("jit");
                }
            )*
        }
    };
}

on_tiers!(checksums, gzip_round_trip, bzip2_round_trip, text_tools, files_and_directories);
