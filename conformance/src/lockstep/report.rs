//! What a lockstep run is asked to do and what it reports: the configuration, how the run
//! ended, the first divergence (both states, the instruction, the history) and the summary
//! counts, with the one-line summary the CLI and the tests print.

/// How long to run and how thoroughly.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Instructions to run in lockstep (the run also ends at the exit port, a halt with IF clear,
    /// a reset, a triple fault, or the first divergence).
    pub steps: u64,
    /// Compare all of RAM, x87/SSE and the MSRs every this many steps (and at the end).
    pub full_check_every: u64,
    /// Instructions shown before the divergent one.
    pub history: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { steps: u64::MAX, full_check_every: 20_000, history: 8 }
    }
}

/// How the lockstep run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// `Config::steps` instructions ran.
    Steps,
    /// The guest wrote the exit port (isa-debug-exit status).
    ExitPort(u32),
    /// HLT with interrupts disabled.
    Halted,
    /// The guest asked for a reset.
    Reset,
    /// Both sides shut down (triple fault).
    TripleFault,
    /// The first divergence was found (in [`Summary::divergence`]).
    Diverged,
}

/// The first divergence: where, what, and both states.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// Steps compared before it (0-based index of the divergent step).
    pub step: u64,
    pub rip: u64,
    /// The instruction, disassembled with its bytes.
    pub instruction: String,
    /// One line per differing field (registers, flags, segments, memory, device accesses).
    pub diffs: Vec<String>,
    /// The instructions before it, oldest first.
    pub history: Vec<String>,
    pub before: String,
    pub tier0: String,
    pub kvm: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "DIVERGENCE at step {} rip {:#x}: {}", self.step, self.rip, self.instruction)?;
        for d in &self.diffs {
            writeln!(f, "  {d}")?;
        }
        writeln!(f, "previous instructions:")?;
        for h in &self.history {
            writeln!(f, "  {h}")?;
        }
        write!(f, "state before:\n{}tier 0 after:\n{}KVM after:\n{}", self.before, self.tier0, self.kvm)
    }
}

/// What a lockstep run did.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Instructions compared against KVM (CPL 0 / CPL 3 split below).
    pub compared: u64,
    pub compared_cpl0: u64,
    pub compared_cpl3: u64,
    /// KVM's emulator could not execute them: run by tier 0's code on the KVM side, unchecked.
    pub emulation_failures: u64,
    /// CPL 3 instructions, and returns to CPL 3, on a kvm_pvm host, which does not single-step
    /// there: tier 0 alone.
    pub not_stepped: u64,
    /// TSC reads whose result was copied from tier 0 (compared otherwise).
    pub time_copied: u64,
    /// Steps after which an undefined flag differed (KVM then takes tier 0's value).
    pub undefined_flags_synced: u64,
    /// External interrupts delivered to both sides.
    pub interrupts: u64,
    /// Steps after which KVM ran one more instruction before its single-step trap (fault
    /// delivery, IRET, SWAPGS on kvm_pvm); tier 0 runs it too and they compare after.
    pub handler_merged: u64,
    /// Divergences explained by a known KVM deviation (`exclude.rs`), by name.
    pub excluded: std::collections::BTreeMap<&'static str, u64>,
    /// Whole-RAM / full-state comparisons made.
    pub full_checks: u64,
    /// Reloads of KVM from tier 0 after a stretch not stepped.
    pub resyncs: u64,
    pub end: End,
    pub divergence: Option<Divergence>,
    pub seconds: f64,
}

impl Summary {
    /// The one-line summary.
    pub fn line(&self) -> String {
        format!(
            "lockstep: {} steps compared ({} at CPL0, {} at CPL3), unchecked: {} emulation failures, {} not steppable (CPL3 on kvm_pvm), {} TSC reads copied; {} with undefined flags differing; {} interrupts, {} steps KVM merged with the next (fault delivery, IRET, SWAPGS), {} full checks, {} resyncs; known KVM deviations {:?}; {} divergences; end {:?}; {:.1} s ({:.0} steps/s)",
            self.compared,
            self.compared_cpl0,
            self.compared_cpl3,
            self.emulation_failures,
            self.not_stepped,
            self.time_copied,
            self.undefined_flags_synced,
            self.interrupts,
            self.handler_merged,
            self.full_checks,
            self.resyncs,
            self.excluded,
            self.divergence.is_some() as u32,
            self.end,
            self.seconds,
            (self.compared + self.emulation_failures + self.not_stepped) as f64 / self.seconds.max(1e-9)
        )
    }
}
