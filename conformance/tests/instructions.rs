//! The instruction-level differential run: every form tier 0 implements, random instances,
//! host CPU against the interpreter (see `conformance::harness`). Fails on any divergence
//! that is not listed in `known-divergences.txt` (one `Code` name per line, `#` comments).
//!
//! The second test runs the same cases on the JIT at threshold 1, so every case executes as
//! translated code.
//!
//! `CONFORMANCE_CASES=N cargo test -p conformance --test instructions -- --nocapture` runs
//! longer; `CONFORMANCE_FILTER=Adc` narrows the run to matching forms.

use conformance::compare::flag_names;
use conformance::harness::{native_available, run_all, Config};
use std::collections::BTreeSet;

fn known_divergences() -> BTreeSet<String> {
    let text = include_str!("../known-divergences.txt");
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_implemented_form_matches_the_host_cpu() {
    differential(Config::from_env());
}

/// The same differential with every case run as translated code (the JIT at threshold 1).
#[test]
fn every_implemented_form_matches_the_host_cpu_under_the_jit() {
    let mut cfg = Config::from_env();
    cfg.jit = true;
    differential(cfg);
}

fn differential(cfg: Config) {
    if let Err(why) = native_available() {
        eprintln!("conformance: native run unavailable ({why}); skipping the differential run");
        return;
    }
    let start = std::time::Instant::now();
    let summary = run_all(&cfg).expect("guest RAM");
    let known = known_divergences();
    let mut unexpected = Vec::new();
    for r in summary.divergent() {
        let name = format!("{:?}", r.code);
        let text = r.divergence.as_deref().unwrap_or("");
        if known.contains(&name) {
            eprintln!("known divergence:\n{text}");
        } else {
            eprintln!("DIVERGENCE:\n{text}");
            unexpected.push(name);
        }
    }
    for r in &summary.reports {
        if r.undefined_flag_diff != 0 {
            eprintln!(
                "note: {:?}: undefined flags differ from the host: {}",
                r.code,
                flag_names(r.undefined_flag_diff)
            );
        }
        if r.cases == 0 {
            eprintln!("note: {:?}: no runnable case (skips: {:?})", r.code, r.skipped);
        }
    }
    let fixed: Vec<&String> = known
        .iter()
        .filter(|k| summary.reports.iter().any(|r| format!("{:?}", r.code) == **k && r.divergence.is_none()))
        .collect();
    for k in &fixed {
        eprintln!("note: {k} is listed in known-divergences.txt but now matches the host");
    }
    let divergent = summary.divergent().count();
    eprintln!(
        "conformance: {} forms tested, {} excluded, {} cases, {} divergent forms ({} unexpected), seed {}, {:.1} s",
        summary.reports.len(),
        summary.excluded.len(),
        summary.cases(),
        divergent,
        unexpected.len(),
        summary.seed,
        start.elapsed().as_secs_f64()
    );
    assert!(unexpected.is_empty(), "forms diverging from the host CPU: {unexpected:?}");
}
