//! The differential run: for each implemented `Code`, proptest draws [`CaseSeed`]s, each is
//! built into a case, run natively and on tier 0, and compared. A divergence is shrunk by
//! proptest to a small failing instance and reported with its full state.
//!
//! Knobs (environment variables, read by [`Config::from_env`]):
//! - `CONFORMANCE_CASES=N` cases per form (default 48; raise it for a longer hunt);
//! - `CONFORMANCE_SEED=N` changes the otherwise fixed random seed (`random` draws a fresh one);
//! - `CONFORMANCE_FILTER=text` runs only the forms whose `Code` name contains `text`;
//! - `CONFORMANCE_VERBOSE=1` prints each form's name before its run (to find a form that
//!   crashes the native run).

use crate::compare::{compare, describe};
use crate::exclude::exclusion;
use crate::gen::{build_case, case_seed, Skip};
use crate::guest::GuestRunner;
use emu::decode::table;
use iced_x86::{Code, FlowControl};
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Run parameters.
#[derive(Clone, Debug)]
pub struct Config {
    pub cases: u32,
    pub seed: u64,
    pub filter: Option<String>,
    pub max_shrink_iters: u32,
    pub threads: usize,
    /// Print each form's name as its run starts (`CONFORMANCE_VERBOSE=1`).
    pub verbose: bool,
    /// Run the cases on the JIT at threshold 1 instead of tier 0 (`CONFORMANCE_ENGINE=jit`).
    pub jit: bool,
}

impl Config {
    pub fn from_env() -> Self {
        let cases = std::env::var("CONFORMANCE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48);
        let seed = match std::env::var("CONFORMANCE_SEED").ok().as_deref() {
            Some("random") => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1),
            Some(v) => v.parse().unwrap_or(0),
            None => 0,
        };
        let filter = std::env::var("CONFORMANCE_FILTER").ok().filter(|f| !f.is_empty());
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(4);
        let verbose = std::env::var("CONFORMANCE_VERBOSE").is_ok_and(|v| v != "0");
        let jit = std::env::var("CONFORMANCE_ENGINE").is_ok_and(|v| v == "jit");
        Config { cases, seed, filter, max_shrink_iters: 512, threads, verbose, jit }
    }
}

/// What happened to one form.
#[derive(Clone, Debug)]
pub struct CodeReport {
    pub code: Code,
    /// Cases compared (before shrinking).
    pub cases: u32,
    /// Seeds that gave no runnable case, by reason.
    pub skipped: BTreeMap<&'static str, u32>,
    /// The shrunk failing case, if any.
    pub divergence: Option<String>,
    /// Undefined flags whose value differed from the host in some case (informational).
    pub undefined_flag_diff: u64,
}

/// The whole run.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub reports: Vec<CodeReport>,
    /// Implemented forms not run, with the reason.
    pub excluded: Vec<(Code, &'static str)>,
    pub seed: u64,
}

impl Summary {
    pub fn cases(&self) -> u64 {
        self.reports.iter().map(|r| r.cases as u64).sum()
    }
    pub fn divergent(&self) -> impl Iterator<Item = &CodeReport> {
        self.reports.iter().filter(|r| r.divergence.is_some())
    }
}

/// Whether the host can run instructions natively; `Err` says why not.
pub fn native_available() -> Result<(), String> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        crate::native::with_runner(|_| ())
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        Err("the native run needs an x86-64 Linux host".into())
    }
}

/// Runs `insn` natively (x86-64 Linux only).
fn run_native(bytes: &[u8], init: &crate::state::MachineState) -> Option<crate::state::MachineState> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        crate::native::with_runner(|r| r.run(bytes, init)).ok()
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        let _ = (bytes, init);
        None
    }
}

/// The forms the run covers and the excluded ones (control transfers that are not near
/// branches, calls or returns are excluded in `exclude.rs`).
pub fn select(cfg: &Config) -> (Vec<Code>, Vec<(Code, &'static str)>) {
    let mut run = Vec::new();
    let mut excluded = Vec::new();
    for code in table::implemented_codes() {
        if let Some(f) = &cfg.filter {
            if !format!("{code:?}").contains(f.as_str()) {
                continue;
            }
        }
        match exclusion(code) {
            Some(why) => excluded.push((code, why)),
            None => run.push(code),
        }
    }
    (run, excluded)
}

fn seed_bytes(code: Code, seed: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(&seed.to_le_bytes());
    out[8..10].copy_from_slice(&(code as u16).to_le_bytes());
    out[16..24].copy_from_slice(&0x5354_5241_5441_u64.to_le_bytes());
    out
}

/// Runs `cfg.cases` random instances of `code`.
pub fn run_code(code: Code, cfg: &Config, guest: &mut GuestRunner) -> CodeReport {
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
        TestRunner::new_with_rng(pt, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(code, cfg.seed)));
    let cases = Cell::new(0u32);
    let undefined = Cell::new(0u64);
    let skipped: RefCell<BTreeMap<&'static str, u32>> = RefCell::new(BTreeMap::new());
    let failing = Cell::new(false);
    let guest = RefCell::new(guest);
    let result = runner.run(&case_seed(), |seed| {
        let case = match build_case(code, &seed, reg_ok, mem_ok) {
            Ok(c) => c,
            Err(Skip(why)) => {
                if !failing.get() {
                    *skipped.borrow_mut().entry(why).or_default() += 1;
                }
                return Ok(());
            }
        };
        let Some(native) = run_native(&case.bytes, &case.init) else {
            return Ok(());
        };
        let out = guest.borrow_mut().run(&case.bytes, &case.init);
        let c = compare(&case.instr, &case.init, &native, &out);
        if !failing.get() {
            cases.set(cases.get() + 1);
        }
        undefined.set(undefined.get() | c.undefined_flag_diff);
        if c.diffs.is_empty() {
            Ok(())
        } else {
            failing.set(true);
            Err(TestCaseError::fail(describe(&case.instr, &case.bytes, &case.init, &c)))
        }
    });
    let divergence = match result {
        Ok(()) => None,
        Err(TestError::Fail(reason, _)) => Some(reason.message().to_string()),
        Err(TestError::Abort(reason)) => Some(format!("{code:?}: run aborted: {}", reason.message())),
    };
    CodeReport {
        code,
        cases: cases.get(),
        skipped: skipped.into_inner(),
        divergence,
        undefined_flag_diff: undefined.get(),
    }
}

/// Runs every selected form, on `cfg.threads` threads.
///
/// # Errors
/// Guest RAM for an interpreter could not be allocated.
pub fn run_all(cfg: &Config) -> std::io::Result<Summary> {
    let (codes, excluded) = select(cfg);
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(Vec::new());
    let error: Mutex<Option<std::io::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..cfg.threads.max(1) {
            // proptest's value trees for a whole machine state are deep in debug builds.
            let spawned = std::thread::Builder::new().stack_size(64 << 20).spawn_scoped(s, || {
                let guest = if cfg.jit { GuestRunner::jit() } else { GuestRunner::new() };
                let mut guest = match guest {
                    Ok(g) => g,
                    Err(e) => {
                        *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        return;
                    }
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&code) = codes.get(i) else { break };
                    if cfg.verbose {
                        eprintln!("conformance: {code:?}");
                    }
                    let r = run_code(code, cfg, &mut guest);
                    reports.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                }
            });
            if let Err(e) = spawned {
                *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            }
        }
    });
    if let Some(e) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut reports = reports.into_inner().unwrap_or_else(|p| p.into_inner());
    reports.sort_by_key(|r| r.code as u32);
    Ok(Summary { reports, excluded, seed: cfg.seed })
}

/// True for control transfers the harness runs (their resulting RIP is compared).
pub fn is_branch(code: Code) -> bool {
    !matches!(code.flow_control(), FlowControl::Next)
}
