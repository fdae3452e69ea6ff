//! The JIT's random-code fuzzer (`conformance::jitfuzz`): random programs from the instruction
//! differential's generator, with loops, self-modifying stores, page crossings and faults, run
//! on tier 0 and on the JIT at threshold 1; the end states and RAM must be identical.
//!
//! A brief run here (`JIT_FUZZ_PROGRAMS`, default 150 programs; `JIT_FUZZ_SEED` picks others,
//! `random` a fresh seed); a longer run by hand: `JIT_FUZZ_PROGRAMS=20000 cargo test --profile
//! ci -p conformance --test jit_fuzz -- --nocapture`. Skips where the host has no JIT.

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use conformance::jitfuzz::{disassemble, run_both, Fuzzer};

#[test]
fn random_programs_agree_on_tier0_and_the_jit() {
    if let Err(e) = tiers::jit_available() {
        eprintln!("SKIP: {e}");
        return;
    }
    let programs: u64 = std::env::var("JIT_FUZZ_PROGRAMS").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let seed = match std::env::var("JIT_FUZZ_SEED").ok().as_deref() {
        Some("random") => {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
        }
        Some(s) => s.parse().expect("JIT_FUZZ_SEED: a number or random"),
        None => 0x4a49_5446,
    };
    let mut fuzz = Fuzzer::new(seed);
    let (mut instructions, mut ran, mut faults, mut translated, mut dropped) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut regions = 0u64;
    let mut exits = std::collections::BTreeMap::<String, u64>::new();
    let start = std::time::Instant::now();
    for n in 0..programs {
        let len = 8 + (n % 5) as usize * 12;
        let code = fuzz.program(len);
        if code.is_empty() {
            continue;
        }
        let out = run_both(&code).expect("set-up");
        ran += 1;
        instructions += out.retired;
        faults += out.faults;
        translated += out.translated;
        dropped += out.dropped;
        regions += out.regions;
        let kind = out.exit.split(" at ").next().unwrap_or_default().to_string();
        *exits.entry(kind).or_default() += 1;
        assert!(
            out.diffs.is_empty(),
            "program {n} of seed {seed:#x} ({} instructions, exit {}):\n{}\n{}",
            out.retired,
            out.exit,
            out.diffs.join("\n"),
            disassemble(&code)
        );
    }
    eprintln!(
        "jit fuzz: seed {seed:#x}: {ran} programs, {instructions} instructions, {translated} of them in translated code, {faults} faults compared and skipped, {dropped} translations dropped by stores into code, {regions} regions compiled, 0 divergences, {:.1} s; ends {exits:?}",
        start.elapsed().as_secs_f64()
    );
    assert!(ran > programs / 2, "too few programs could be built: {ran}");
    assert!(translated > instructions / 4, "the JIT ran too little: {translated} of {instructions}");
}

/// The fuzzer must be able to fail: the JIT side's RBP changed at a program's first fault is
/// reported.
#[test]
fn a_corrupted_jit_state_is_reported() {
    if tiers::jit_available().is_err() {
        return;
    }
    let mut fuzz = Fuzzer::new(5);
    let mut reported = 0;
    for _ in 0..20 {
        let code = fuzz.program(30);
        let out = conformance::jitfuzz::run_both_corrupting(&code, true).expect("set-up");
        if out.faults > 0 || out.diffs.iter().any(|d| d.trim_start().starts_with("rbp:")) {
            assert!(out.diffs.iter().any(|d| d.trim_start().starts_with("rbp:")), "{:?}", out.diffs);
            reported += 1;
        }
    }
    assert!(reported > 0, "no program faulted");
}
