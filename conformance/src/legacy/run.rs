//! The 16/32-bit differential run: for each mode and each implemented form valid there,
//! proptest draws seeds, [`super::gen::build`] makes cases, each runs natively and on tier 0,
//! and the results are compared (`compare::compare` for GPRs, EIP and flags, plus DS/ES/SS).
//! Same knobs as the 64-bit run (`harness::Config`: `CONFORMANCE_CASES`, `_SEED`, `_FILTER`).

use super::gen::{build, eligible, LegacyCase};
use super::guest::GuestLegacy;
use super::{LegacyOutcome, LegacyState, Mode};
use crate::compare::{compare, describe};
use crate::gen::{case_seed, Skip};
use crate::harness::{CodeReport, Config};
use crate::state::Outcome;
use emu::decode::table;
use iced_x86::Code;
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// The forms run in `mode`, and those left out with the reason.
pub fn select(cfg: &Config, mode: Mode) -> (Vec<Code>, Vec<(Code, &'static str)>) {
    let mut run = Vec::new();
    let mut out = Vec::new();
    for code in table::implemented_codes() {
        if let Some(f) = &cfg.filter {
            if !format!("{code:?}").contains(f.as_str()) {
                continue;
            }
        }
        match eligible(code, mode) {
            Ok(()) => run.push(code),
            Err(why) => out.push((code, why)),
        }
    }
    (run, out)
}

/// Runs `case` natively (x86-64 Linux only).
fn run_native(case: &LegacyCase) -> Option<LegacyState> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        super::native::with_runner(|r| {
            r.can_run(case.mode, &case.init).then(|| r.run(case.mode, &case.bytes, &case.init))
        })
        .ok()
        .flatten()
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        let _ = case;
        None
    }
}

/// Whether the host can run code of `mode` natively; `Err` says why not.
pub fn native_available(mode: Mode) -> Result<(), String> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        match super::native::with_runner(|r| r.ldt_unavailable())? {
            Some(why) if mode == Mode::Bits16 => Err(why),
            Some(why) => {
                eprintln!("note: {why}: only flat-segment cases run in 32-bit code");
                Ok(())
            }
            None => Ok(()),
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        let _ = mode;
        Err("the native run needs an x86-64 Linux host".into())
    }
}

/// Compares one case; empty when the runs agree.
fn diffs(case: &LegacyCase, native: &LegacyState, guest: &LegacyOutcome) -> Vec<String> {
    let g = match guest {
        LegacyOutcome::Completed(g) => g,
        LegacyOutcome::Fault { vector, error_code, detail } => {
            return vec![format!(
                "tier 0 raised vector {vector} (error code {error_code:#x}): {detail}; the host did not fault"
            )]
        }
    };
    let mut n = native.clone();
    let mut t = (**g).clone();
    if case.stack16 {
        // Only SP is meaningful with a 16-bit stack; an interrupt taken on the host may change
        // ESP's upper half (Linux's espfix64).
        n.gpr[4] &= 0xffff;
        t.gpr[4] &= 0xffff;
    }
    let init = case.init.as_machine(case.init.eip as u64);
    let c = compare(
        &case.instr,
        &init,
        &n.as_machine(n.eip as u64),
        &Outcome::Completed(Box::new(t.as_machine(t.eip as u64))),
    );
    let mut d = c.diffs;
    for (i, name) in ["es", "ss", "ds"].iter().enumerate() {
        if n.sel[i] != t.sel[i] {
            d.push(format!("   {name}: host {:#06x}  tier0 {:#06x}", n.sel[i], t.sel[i]));
        }
    }
    d
}

fn report(case: &LegacyCase, d: &[String]) -> String {
    let c = crate::compare::Comparison { diffs: d.to_vec(), undefined_flag_diff: 0 };
    let sel = case.init.sel;
    format!(
        "[{}-bit code, es/ss/ds {:#x}/{:#x}/{:#x}] {}",
        case.mode.bits(),
        sel[0],
        sel[1],
        sel[2],
        describe(&case.instr, &case.bytes, &case.init.as_machine(case.init.eip as u64), &c)
    )
}

fn seed_bytes(code: Code, mode: Mode, seed: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(&seed.to_le_bytes());
    out[8..10].copy_from_slice(&(code as u16).to_le_bytes());
    out[10] = mode.bits() as u8;
    out[16..24].copy_from_slice(&0x4c45_4741_4359_u64.to_le_bytes());
    out
}

/// Runs `cfg.cases` random instances of `code` in `mode`.
pub fn run_code(code: Code, mode: Mode, cfg: &Config, guest: &mut GuestLegacy) -> CodeReport {
    let reg_ok = table::lookup(code, false).is_some();
    let mem_ok = table::lookup(code, true).is_some();
    let pt = PtConfig {
        cases: cfg.cases,
        failure_persistence: None,
        max_shrink_iters: cfg.max_shrink_iters,
        max_global_rejects: u32::MAX,
        ..PtConfig::default()
    };
    let mut runner =
        TestRunner::new_with_rng(pt, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(code, mode, cfg.seed)));
    let cases = Cell::new(0u32);
    let skipped: RefCell<BTreeMap<&'static str, u32>> = RefCell::new(BTreeMap::new());
    let failing = Cell::new(false);
    let guest = RefCell::new(guest);
    let result = runner.run(&case_seed(), |seed| {
        let case = match build(code, mode, &seed, reg_ok, mem_ok) {
            Ok(c) => c,
            Err(Skip(why)) => {
                if !failing.get() {
                    *skipped.borrow_mut().entry(why).or_default() += 1;
                }
                return Ok(());
            }
        };
        let Some(native) = run_native(&case) else { return Ok(()) };
        let out = guest.borrow_mut().run(mode, &case.bytes, &case.init);
        let d = diffs(&case, &native, &out);
        if !failing.get() {
            cases.set(cases.get() + 1);
        }
        if d.is_empty() {
            Ok(())
        } else {
            failing.set(true);
            Err(TestCaseError::fail(report(&case, &d)))
        }
    });
    let divergence = match result {
        Ok(()) => None,
        Err(TestError::Fail(reason, _)) => Some(reason.message().to_string()),
        Err(TestError::Abort(reason)) => Some(format!("{code:?}: run aborted: {}", reason.message())),
    };
    CodeReport { code, cases: cases.get(), skipped: skipped.into_inner(), divergence, undefined_flag_diff: 0 }
}

/// Runs every selected form in `mode` (one thread: the native runner is one per process).
///
/// # Errors
/// Guest RAM could not be allocated.
pub fn run_mode(cfg: &Config, mode: Mode) -> std::io::Result<Vec<CodeReport>> {
    let (codes, _) = select(cfg, mode);
    let mut guest = GuestLegacy::new()?;
    let mut out = Vec::new();
    for code in codes {
        if cfg.verbose {
            eprintln!("conformance: {}-bit {code:?}", mode.bits());
        }
        out.push(run_code(code, mode, cfg, &mut guest));
    }
    Ok(out)
}
