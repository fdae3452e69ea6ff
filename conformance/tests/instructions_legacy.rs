//! The instruction-level differential in 16- and 32-bit code: every implemented integer form
//! valid there, random instances run natively on the host CPU (a 32-bit compatibility-mode code
//! segment, and a 16-bit LDT code segment made with `modify_ldt`) and on tier 0 set up the same
//! way (see `conformance::legacy`). Fails on any divergence.
//!
//! `CONFORMANCE_CASES=N` cases per form (default 16 here), `CONFORMANCE_FILTER=Daa` narrows it.

use conformance::harness::Config;
use conformance::legacy::run::{native_available, run_mode, select};
use conformance::legacy::Mode;

fn differential(mode: Mode) {
    if let Err(why) = native_available(mode) {
        eprintln!("conformance: native 16/32-bit run unavailable ({why}); skipping");
        return;
    }
    let mut cfg = Config::from_env();
    if std::env::var("CONFORMANCE_CASES").is_err() {
        cfg.cases = 16;
    }
    let start = std::time::Instant::now();
    let reports = run_mode(&cfg, mode).expect("guest RAM");
    let (_, left_out) = select(&cfg, mode);
    let mut divergent = Vec::new();
    for r in &reports {
        if let Some(d) = &r.divergence {
            eprintln!("DIVERGENCE ({}-bit):\n{d}", mode.bits());
            divergent.push(format!("{:?}", r.code));
        }
        if r.cases == 0 {
            eprintln!("note: {:?}: no runnable case in {}-bit code (skips: {:?})", r.code, mode.bits(), r.skipped);
        }
    }
    let cases: u64 = reports.iter().map(|r| r.cases as u64).sum();
    eprintln!(
        "conformance: {}-bit code: {} forms tested, {} not eligible, {} cases, {} divergent, seed {}, {:.1} s",
        mode.bits(),
        reports.len(),
        left_out.len(),
        cases,
        divergent.len(),
        cfg.seed,
        start.elapsed().as_secs_f64()
    );
    assert!(divergent.is_empty(), "{}-bit forms diverging from the host CPU: {divergent:?}", mode.bits());
}

#[test]
fn sixteen_bit_forms_match_the_host_cpu() {
    differential(Mode::Bits16);
}

#[test]
fn thirty_two_bit_forms_match_the_host_cpu() {
    differential(Mode::Bits32);
}
