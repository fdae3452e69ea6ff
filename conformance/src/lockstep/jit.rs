//! The JIT (tier 1) against tier 0, in lockstep: the same guest run twice, once on tier 0 and
//! once on the JIT, compared whenever both have retired the same number of instructions.
//!
//! Tier 0 is the reference here (it is checked against the host CPU and KVM elsewhere); the JIT
//! must leave exactly tier 0's state, so everything is compared bit for bit, undefined flags
//! included: the 16 GPRs, RIP, all of RFLAGS, the segment, descriptor-table and control
//! registers, CPL and EFER (`diff::state_diff`), the x87/SSE state and the MSRs, the retired
//! count and, for a machine, the serial output. Guest RAM is compared whole (page by page, so
//! pages neither side touched cost little) every `full_check_every` boundaries and at the end.
//!
//! **Where they are compared.** The run advances in stretches whose lengths come from a fixed
//! pseudo-random sequence (1 to twice `Config::mean_stretch` instructions), so the boundaries
//! fall anywhere. Both sides stop exactly there (both engines count instructions), so no
//! state is approximated. The JIT runs whole translated blocks (its loops included) until fewer
//! than `MAX_BLOCK` (128) instructions are left and then steps on tier 0 to the boundary, as it
//! does for any exact limit (`run_to_limit`): a stretch shorter than that compares tier 0 with
//! itself, so the stretches here are longer.
//!
//! **Machines** ([`MachineLockstep`]): two deterministic machines (`boot::machine`: virtual
//! time from retired instructions) with the same kernel; each stretch is `Machine::run` to the
//! same retired count on both, so devices, timer interrupts and their delivery follow the
//! instruction count on both sides. **User mode** ([`user`]): two `emu::user::Process`es of the
//! same executable, each exit handled by its own kernel emulation (as `Process::run_on` does).
//!
//! The harness can fail: [`MachineLockstep::self_test_corrupt_register`] and
//! `self_test_corrupt_memory` change the JIT side after a given stretch, and the tests check that
//! the report names that stretch (`conformance/tests/jit_lockstep.rs`).

use super::boot::{self, BootSpec};
use super::diff::{dump, state_diff, Extent};
use super::memory::ram_diff;
use super::End;
use emu::cpu::Cpu;
use emu::machine::{Machine, RunEnd};
use emu::mem::GuestRam;
use emu::state::CpuState;
use std::cell::RefCell;
use std::io::Write;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

/// How long to run and how often to compare all of RAM.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Instructions to run in all (the run also ends when the guest stops).
    pub instructions: u64,
    /// Mean stretch between two compared boundaries, in instructions.
    pub mean_stretch: u64,
    /// Compare all of RAM every this many boundaries (and at the end).
    pub full_check_every: u64,
    /// The JIT's promotion threshold (1: every block is translated at its first entry).
    pub threshold: u64,
    /// Seed of the stretch lengths.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config { instructions: u64::MAX, mean_stretch: 5_000, full_check_every: 200, threshold: 1, seed: 1 }
    }
}

/// The first difference found.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// Index of the boundary (0-based) where it was seen.
    pub boundary: u64,
    /// Instructions both sides had retired there, and at the boundary before it.
    pub retired: u64,
    pub previous: u64,
    /// One line per differing field.
    pub diffs: Vec<String>,
    pub tier0: String,
    pub jit: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "JIT DIVERGENCE at boundary {} (instructions {}..{}; rerun with a smaller stretch to narrow it):",
            self.boundary, self.previous, self.retired
        )?;
        for d in &self.diffs {
            writeln!(f, "  {d}")?;
        }
        write!(f, "tier 0:\n{}JIT:\n{}", self.tier0, self.jit)
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Boundaries compared.
    pub boundaries: u64,
    /// Instructions retired on each side.
    pub instructions: u64,
    /// Whole-RAM comparisons.
    pub full_checks: u64,
    /// The JIT's own counts (`JitStats`' line).
    pub jit_stats: String,
    pub end: End,
    pub divergence: Option<Divergence>,
    pub seconds: f64,
}

impl Summary {
    /// The one-line summary.
    pub fn line(&self) -> String {
        format!(
            "jit lockstep: {} instructions, {} boundaries compared, {} full RAM checks, {} divergences, end {:?}, {:.1} s; jit: {}",
            self.instructions,
            self.boundaries,
            self.full_checks,
            self.divergence.is_some() as u32,
            self.end,
            self.seconds,
            self.jit_stats
        )
    }
}

/// The stretch lengths: xorshift64, uniform in 1..=2*mean.
struct Stretches {
    x: u64,
    mean: u64,
}

impl Stretches {
    fn new(seed: u64, mean: u64) -> Self {
        Stretches { x: seed | 1, mean: mean.max(1) }
    }

    fn next(&mut self) -> u64 {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        1 + self.x % (2 * self.mean)
    }
}

/// A deliberate difference put into the JIT side, so the tests can show it is reported.
#[derive(Clone, Copy, Debug)]
enum Corruption {
    Register { index: usize, xor: u64 },
    Memory { paddr: u64, value: u8 },
}

/// Everything compared between two CPU states, the lockstep's field list plus what must be
/// equal only between two implementations of the same semantics (undefined flags, TF, RF).
pub fn cpu_diff(t: &CpuState, j: &CpuState) -> Vec<String> {
    let mut out = state_diff(None, t, j, Extent { fpu: true, msrs: true });
    let (a, b) = (t.rflags(), j.rflags());
    if a != b && !out.iter().any(|l| l.trim_start().starts_with("rflags:")) {
        out.push(format!("rflags: tier0 {a:#010x}  jit {b:#010x} (bits the KVM lockstep leaves out)"));
    }
    relabel(out)
}

/// The shared diff code names its second side "kvm"; here it is the JIT.
fn relabel(lines: Vec<String>) -> Vec<String> {
    lines.into_iter().map(|l| l.replace("  kvm ", "  jit ").replace(" kvm {", " jit {")).collect()
}

/// A boundary both sides stopped at: its index, the retired count at the one before, and
/// whether all of RAM is compared there.
struct Boundary {
    index: u64,
    previous: u64,
    full: bool,
}

impl Boundary {
    /// `diffs` (what the caller already found) plus the CPU states' differences; when those are
    /// none and the boundary is a full one, RAM's (counted in `full_checks`). Some divergence
    /// when anything differs.
    fn compare(&self, mut diffs: Vec<String>, t: &Cpu, j: &Cpu, full_checks: &mut u64) -> Option<Divergence> {
        diffs.extend(cpu_diff(&t.state, &j.state));
        if diffs.is_empty() && self.full {
            *full_checks += 1;
            diffs = ram_differences(&t.ram, &j.ram);
        }
        (!diffs.is_empty()).then(|| Divergence {
            boundary: self.index,
            retired: t.retired,
            previous: self.previous,
            diffs,
            tier0: dump(&t.state),
            jit: dump(&j.state),
        })
    }
}

fn ram_differences(t: &GuestRam, j: &GuestRam) -> Vec<String> {
    let mut out = Vec::new();
    ram_diff(t, j, &mut out);
    relabel(out)
}

/// Appends how all of tier 0's RAM `t` differs from the JIT side's `j` (nothing if equal).
pub fn ram_differences_into(t: &GuestRam, j: &GuestRam, out: &mut Vec<String>) {
    out.extend(ram_differences(t, j));
}

/// A `Write` into a buffer the harness keeps (the machine's serial port).
#[derive(Clone, Default)]
struct SharedBuf(Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Two machines with the same kernel, one on tier 0 and one on the JIT.
pub struct MachineLockstep {
    tier0: Machine,
    jit: Machine,
    serial: (SharedBuf, SharedBuf),
    stats: tiers::JitStatsHandle,
    corrupt: Option<(u64, Corruption)>,
}

impl MachineLockstep {
    /// Boots `spec` twice; the second machine runs on the JIT at `threshold`.
    ///
    /// # Errors
    /// The kernel cannot be loaded, or the host has no JIT.
    pub fn new(spec: &BootSpec, threshold: u64) -> Result<MachineLockstep, String> {
        let serial = (SharedBuf::default(), SharedBuf::default());
        let tier0 = boot::machine(spec, Box::new(serial.0.clone()))?;
        let mut jit = boot::machine(spec, Box::new(serial.1.clone()))?;
        let opts = tiers::JitOptions { threshold, ..tiers::JitOptions::default() };
        let stats = tiers::attach_jit(&mut jit, true, opts).map_err(|e| e.to_string())?;
        Ok(MachineLockstep { tier0, jit, serial, stats, corrupt: None })
    }

    /// Two machines restored from the snapshot at `path` (deterministic), the second on the JIT
    /// at `threshold`: a comparison that starts late in a boot without running tier 0 up to there.
    ///
    /// # Errors
    /// The snapshot cannot be restored, or the host has no JIT.
    pub fn from_snapshot(path: &Path, threshold: u64) -> Result<MachineLockstep, String> {
        let serial = (SharedBuf::default(), SharedBuf::default());
        let restore = |out: &SharedBuf| {
            Machine::restore_snapshot(path, Box::new(out.clone()), Instant::now(), true, None)
                .map_err(|e| e.to_string())
        };
        let tier0 = restore(&serial.0)?;
        let mut jit = restore(&serial.1)?;
        let opts = tiers::JitOptions { threshold, ..tiers::JitOptions::default() };
        let stats = tiers::attach_jit(&mut jit, true, opts).map_err(|e| e.to_string())?;
        Ok(MachineLockstep { tier0, jit, serial, stats, corrupt: None })
    }

    /// Boots `spec` on the JIT alone (deterministic) to `retired` instructions and saves the
    /// machine to `path`, for [`MachineLockstep::from_snapshot`]; returns how the run ended.
    ///
    /// # Errors
    /// The kernel cannot be loaded, the host has no JIT, or the snapshot cannot be written.
    pub fn snapshot_on_the_jit(spec: &BootSpec, retired: u64, path: &Path) -> Result<RunEnd, String> {
        let mut m = boot::machine(spec, Box::new(std::io::sink()))?;
        tiers::attach_jit(&mut m, true, tiers::JitOptions::default()).map_err(|e| e.to_string())?;
        let end = m.run(retired);
        m.save_snapshot(path).map_err(|e| e.to_string())?;
        Ok(end)
    }

    /// Both machines run alone (not compared) until `retired` instructions, e.g. to start the
    /// comparison later in a boot. Returns how the tier-0 run ended.
    pub fn skip_to(&mut self, retired: u64) -> RunEnd {
        let end = self.tier0.run(retired);
        self.jit.run(retired);
        end
    }

    /// Harness self-test: after boundary `boundary`, XORs `xor` into GPR `index` on the JIT side.
    pub fn self_test_corrupt_register(&mut self, boundary: u64, index: usize, xor: u64) {
        self.corrupt = Some((boundary, Corruption::Register { index: index & 15, xor }));
    }

    /// Harness self-test: after boundary `boundary`, writes `value` at `paddr` in the JIT side's RAM.
    pub fn self_test_corrupt_memory(&mut self, boundary: u64, paddr: u64, value: u8) {
        self.corrupt = Some((boundary, Corruption::Memory { paddr, value }));
    }

    fn apply_corruption(&mut self, boundary: u64) {
        let Some((at, c)) = self.corrupt else { return };
        if boundary != at {
            return;
        }
        self.corrupt = None;
        match c {
            Corruption::Register { index, xor } => self.jit.cpu.state.gpr[index] ^= xor,
            Corruption::Memory { paddr, value } => {
                if let Some(b) = self.jit.cpu.ram.slice_mut(paddr, 1) {
                    b[0] = value;
                }
            }
        }
    }

    /// Runs until `cfg.instructions` more instructions, the guest's stop, or the first divergence.
    pub fn run(&mut self, cfg: &Config) -> Summary {
        let start = Instant::now();
        let first = self.tier0.cpu.retired;
        let mut stretches = Stretches::new(cfg.seed, cfg.mean_stretch);
        let (mut boundaries, mut full_checks) = (0u64, 0u64);
        let mut divergence = None;
        let end = loop {
            let previous = self.tier0.cpu.retired;
            let done = previous - first;
            if done >= cfg.instructions {
                break End::Steps;
            }
            let target = previous + stretches.next().min(cfg.instructions - done);
            let (a, b) = (self.tier0.run(target), self.jit.run(target));
            self.apply_corruption(boundaries);
            let mut diffs = Vec::new();
            if a != b {
                diffs.push(format!("run end: tier0 {a:?}  jit {b:?}"));
            }
            if self.tier0.cpu.retired != self.jit.cpu.retired {
                diffs.push(format!("retired: tier0 {}  jit {}", self.tier0.cpu.retired, self.jit.cpu.retired));
            }
            let (s0, s1) = (self.serial.0 .0.borrow(), self.serial.1 .0.borrow());
            if *s0 != *s1 {
                let at = s0.iter().zip(s1.iter()).position(|(x, y)| x != y).unwrap_or(s0.len().min(s1.len()));
                diffs.push(format!("serial: {} and {} bytes, first difference at byte {at}", s0.len(), s1.len()));
            }
            drop((s0, s1));
            let full = !matches!(a, RunEnd::Limit) || (boundaries + 1) % cfg.full_check_every.max(1) == 0;
            let at = Boundary { index: boundaries, previous, full };
            if let Some(d) = at.compare(diffs, &self.tier0.cpu, &self.jit.cpu, &mut full_checks) {
                divergence = Some(d);
                break End::Diverged;
            }
            boundaries += 1;
            match a {
                RunEnd::Limit => {}
                RunEnd::ExitPort(s) => break End::ExitPort(s),
                RunEnd::Halted | RunEnd::PowerOff => break End::Halted,
                RunEnd::Reset => break End::Reset,
                RunEnd::TripleFault => break End::TripleFault,
                RunEnd::Watch | RunEnd::EngineError => {
                    divergence = Some(Divergence {
                        boundary: boundaries,
                        retired: self.tier0.cpu.retired,
                        previous,
                        diffs: vec![format!("the machine stopped: {a:?}")],
                        tier0: String::new(),
                        jit: String::new(),
                    });
                    break End::Diverged;
                }
            }
        };
        if end != End::Diverged && divergence.is_none() {
            let diffs = ram_differences(&self.tier0.cpu.ram, &self.jit.cpu.ram);
            full_checks += 1;
            if !diffs.is_empty() {
                divergence = Some(Divergence {
                    boundary: boundaries,
                    retired: self.tier0.cpu.retired,
                    previous: self.tier0.cpu.retired,
                    diffs,
                    tier0: String::new(),
                    jit: String::new(),
                });
            }
        }
        let end = if divergence.is_some() { End::Diverged } else { end };
        Summary {
            boundaries,
            instructions: self.tier0.cpu.retired - first,
            full_checks,
            jit_stats: self.stats.borrow().to_string(),
            end,
            divergence,
            seconds: start.elapsed().as_secs_f64(),
        }
    }

    /// The serial output of the tier-0 machine so far.
    pub fn serial(&self) -> String {
        String::from_utf8_lossy(&self.serial.0 .0.borrow()).into_owned()
    }
}

/// User mode: two processes of one static executable, tier 0 and the JIT.
pub mod user {
    use super::super::memory::copy_changed;
    use super::{Boundary, Config, End, Stretches, Summary};
    use emu::engine::{Engine, EngineError, Exit, Limit};
    use emu::exception::Stop;
    use emu::state::gpr;
    use emu::user::{Process, ProcessEnd};
    use emu::Interp;
    use std::collections::VecDeque;
    use std::time::Instant;

    const NR_GETRANDOM: u64 = 318;

    /// The bytes getrandom gave the tier-0 side, in order, and the JIT side's replay of them.
    enum RandomLog {
        Record(VecDeque<Vec<u8>>),
        Replay(VecDeque<Vec<u8>>),
    }

    /// One side: a process and the engine that runs it.
    struct Side {
        p: Process,
        engine: Box<dyn Engine>,
        present_changes: u64,
        frame_top: u64,
        end: Option<ProcessEnd>,
    }

    impl Side {
        fn new(path: &str, argv: &[String], engine: Box<dyn Engine>) -> Result<Side, String> {
            let mut p = Process::load(path, argv, &[], 256 << 20).map_err(|e| e.to_string())?;
            let mut engine = engine;
            engine.load_state(&mut p.cpu).map_err(|e| e.to_string())?;
            let (present_changes, frame_top) = (p.aspace.present_changes, p.aspace.frame_top());
            Ok(Side { p, engine, present_changes, frame_top, end: None })
        }

        /// getrandom's bytes come from the host: the tier-0 side records what it got, the JIT
        /// side gets the same bytes.
        fn same_random(&mut self, buf: u64, len: usize, randoms: &mut RandomLog) {
            let mut bytes = vec![0; len];
            if self.p.read_mem(buf, &mut bytes).is_none() {
                return;
            }
            match randoms {
                RandomLog::Record(log) => log.push_back(bytes),
                RandomLog::Replay(log) => {
                    if let Some(b) = log.pop_front() {
                        let _ = self.p.write_mem(buf, &b[..b.len().min(len)]);
                    }
                }
            }
        }

        /// `Process::run_on`'s loop, stopping when `target` instructions have retired.
        fn advance(&mut self, target: u64, randoms: &mut RandomLog) -> Result<(), EngineError> {
            while self.end.is_none() && self.p.cpu.retired < target {
                let removed = self.p.aspace.present_changes != self.present_changes;
                if removed || self.p.aspace.frame_top() > self.frame_top {
                    self.present_changes = self.p.aspace.present_changes;
                    self.frame_top = self.p.aspace.frame_top();
                    self.engine.page_tables_changed(&mut self.p.cpu, removed, self.frame_top)?;
                }
                let limit = Limit::instructions(target - self.p.cpu.retired);
                let mut exit = self.engine.run(&mut self.p.cpu, &limit)?;
                if exit == Exit::Unemulated {
                    exit = Interp::new().step(&mut self.p.cpu).unwrap_or(Exit::Limit);
                }
                let st = &self.p.cpu.state;
                let getrandom = (exit == Exit::Stop(Stop::Syscall) && st.gpr[gpr::RAX] == NR_GETRANDOM)
                    .then(|| (st.gpr[gpr::RDI], st.gpr[gpr::RSI].min(1 << 16) as usize));
                self.end = self.p.handle_exit(exit);
                if let Some((buf, len)) = getrandom {
                    self.same_random(buf, len, randoms);
                }
            }
            Ok(())
        }
    }

    /// Runs `path` with `argv` (argv\[0\] included) on both engines until it exits, `cfg`'s
    /// count, or the first divergence. The process's own output goes to this process's stdout.
    ///
    /// # Errors
    /// The executable cannot be loaded, the host has no JIT, or an engine failed.
    pub fn run(path: &str, argv: &[String], cfg: &Config) -> Result<Summary, String> {
        let start = Instant::now();
        let opts = tiers::JitOptions { threshold: cfg.threshold, ..tiers::JitOptions::default() };
        let (jit, stats) = tiers::new_jit(opts).map_err(|e| e.to_string())?;
        let mut t = Side::new(path, argv, Box::new(Interp::new()))?;
        let mut j = Side::new(path, argv, jit)?;
        // The loader puts 16 host-random bytes on the stack (AT_RANDOM): both start from
        // tier 0's copy.
        copy_changed(&t.p.cpu.ram, &mut j.p.cpu.ram);
        let mut stretches = Stretches::new(cfg.seed, cfg.mean_stretch);
        let (mut boundaries, mut full_checks) = (0u64, 0u64);
        let mut divergence = None;
        let end = loop {
            let previous = t.p.cpu.retired;
            if previous >= cfg.instructions {
                break End::Steps;
            }
            let target = previous + stretches.next().min(cfg.instructions - previous);
            let mut log = RandomLog::Record(VecDeque::new());
            t.advance(target, &mut log).map_err(|e| e.to_string())?;
            let (RandomLog::Record(got) | RandomLog::Replay(got)) = log;
            j.advance(target, &mut RandomLog::Replay(got)).map_err(|e| e.to_string())?;
            let mut diffs = Vec::new();
            if t.end != j.end {
                diffs.push(format!("process end: tier0 {:?}  jit {:?}", t.end, j.end));
            }
            if t.p.cpu.retired != j.p.cpu.retired {
                diffs.push(format!("retired: tier0 {}  jit {}", t.p.cpu.retired, j.p.cpu.retired));
            }
            let full = t.end.is_some() || (boundaries + 1) % cfg.full_check_every.max(1) == 0;
            let at = Boundary { index: boundaries, previous, full };
            if let Some(d) = at.compare(diffs, &t.p.cpu, &j.p.cpu, &mut full_checks) {
                divergence = Some(d);
                break End::Diverged;
            }
            boundaries += 1;
            match t.end {
                Some(ProcessEnd::Exited(s)) => break End::ExitPort(s as u32),
                Some(ProcessEnd::Signaled(_)) => break End::TripleFault,
                None => {}
            }
        };
        let s = stats.borrow().to_string();
        Ok(Summary {
            boundaries,
            instructions: t.p.cpu.retired,
            full_checks,
            jit_stats: s,
            end,
            divergence,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}
