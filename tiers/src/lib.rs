//! tiers: Strata's engines beyond tier 0 (docs/ARCHITECTURE.md, "The crates").
//!
//! | module | what it holds |
//! |---|---|
//! | `kvm` | the KVM engine: the virtual PC on hardware virtualization (Linux x86-64 hosts only) |
//! | `jit` | tier 1: hot blocks compiled to host code (Linux x86-64 hosts only) |
//!
//! Every engine implements `emu::engine::Engine`, so the machine loop, the devices and
//! snapshots do not know which engine runs the CPU. This crate also turns the command line's
//! `EngineKind::Auto` into a concrete engine for this host ([`resolve_engine`]).

use emu::engine::EngineKind;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod kvm;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod jit;

use std::cell::RefCell;
use std::rc::Rc;

/// Why an engine of this crate cannot be used or stopped. Messages are one line.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    /// The host is not one the KVM engine runs on.
    #[error("the KVM engine needs a Linux x86-64 host")]
    UnsupportedHost,
    /// The host is not one the JIT generates code for.
    #[error("the JIT needs a Linux x86-64 host")]
    NoJitHost,
    /// The JIT's code memory could not be set up.
    #[error("JIT code memory: {0}")]
    JitMemory(#[from] std::io::Error),
    /// KVM failed: not there, not accessible, or an ioctl or state error.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[error(transparent)]
    Kvm(#[from] kvm::KvmError),
    /// The machine refused the engine (it could not take the CPU state, or the machine is
    /// deterministic and KVM counts no instructions).
    #[error(transparent)]
    Engine(#[from] emu::engine::EngineError),
}

/// The engine `kind` stands for on this host: `Auto` becomes KVM where it runs guest code on
/// hardware virtualization, else the JIT where there is one (x86-64 Linux hosts), else tier 0.
/// For a `user_mode` process, a `kvm_pvm` host counts as hardware too (CPL3 code runs natively
/// there; only kernel code is emulated); for a whole machine it does not (KVM would emulate the
/// guest kernel at ~1.5 MIPS), so `run --tier auto` picks the JIT on such a host.
///
/// # Errors
/// `Kvm` or `Jit` was asked for and is not usable here (the error says why).
pub fn resolve_engine(kind: EngineKind, user_mode: bool) -> Result<EngineKind, TierError> {
    Ok(match kind {
        EngineKind::Interp => EngineKind::Interp,
        EngineKind::Kvm => {
            kvm_available()?;
            EngineKind::Kvm
        }
        EngineKind::Jit => {
            jit_available()?;
            EngineKind::Jit
        }
        EngineKind::Auto if kvm_available().is_ok() && (user_mode || !kvm_is_emulated()) => EngineKind::Kvm,
        EngineKind::Auto if jit_available().is_ok() => EngineKind::Jit,
        EngineKind::Auto => EngineKind::Interp,
    })
}

/// Whether the JIT can run on this host; `Err` says why not in one line.
///
/// # Errors
/// Not a Linux x86-64 host.
pub fn jit_available() -> Result<(), TierError> {
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        Ok(())
    } else {
        Err(TierError::NoJitHost)
    }
}

/// The JIT's knobs (`--jit-threshold`, `--jit-code-mib`).
#[derive(Clone, Copy, Debug)]
pub struct JitOptions {
    /// A block is compiled when tier 0 has entered it this many times (1: at once, and every
    /// block, even one that is mostly handler calls and would otherwise stay on tier 0).
    pub threshold: u64,
    /// Size of the code cache in bytes; flushed whole when full.
    pub code_bytes: usize,
    /// Emit the hot forms inline (step 2); off, every instruction calls its tier-0 handler.
    pub inline: bool,
}

impl JitOptions {
    /// Entries before a block is compiled, by default.
    pub const DEFAULT_THRESHOLD: u64 = 16;
    /// Code cache size by default.
    pub const DEFAULT_CODE_BYTES: usize = 64 << 20;
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions { threshold: Self::DEFAULT_THRESHOLD, code_bytes: Self::DEFAULT_CODE_BYTES, inline: true }
    }
}

/// What the JIT did (`--stats`).
#[derive(Clone, Debug, Default)]
pub struct JitStats {
    /// Blocks compiled.
    pub compiled: u64,
    /// Bytes of host code generated (all compilations, flushed ones included).
    pub code_bytes: u64,
    /// Size of the code cache.
    pub code_capacity: u64,
    /// Host time spent compiling, in nanoseconds.
    pub compile_ns: u64,
    /// Chain sites patched to jump straight to their target.
    pub links: u64,
    /// Translations dropped with their blocks (self-modifying code, flushes).
    pub dropped: u64,
    /// The code cache filled up and was emptied.
    pub full_flushes: u64,
    /// All code dropped from outside (engine switches, runners rewriting code).
    pub flushes: u64,
    /// Instructions retired in translated code.
    pub translated_instructions: u64,
    /// Hot blocks left on tier 0 because fewer than a quarter of their instructions have an
    /// inline form.
    pub left_on_tier0: u64,
    /// Translations that are regions of more than one block (seventh round, part R), and the
    /// blocks they hold in all (both also counted in `compiled`).
    pub regions: u64,
    pub region_members: u64,
    /// Indirect branches (JMP/CALL r/m, RET) whose target translated code found in the
    /// indirect-branch table, and those that returned to the run loop to look it up.
    pub indirect_hits: u64,
    pub indirect_misses: u64,
    /// RETs whose target was the return address the shadow stack's top pair predicted (a
    /// host `ret` to the return site), and those that fell back to the indirect-branch table.
    pub ret_hits: u64,
    pub ret_misses: u64,
    /// Instructions the engine retired in all (tier 0's blocks and steps included): the base of
    /// the translated share.
    pub retired: u64,
    /// Entries into translated code from the run loop, and why translated code came back to it:
    /// a chain site not linked yet (the loop links it), no known successor or a failed
    /// budget/TLB-generation check (dispatch), a handler stop (fault, I/O, system call...).
    /// Indirect-table misses are `indirect_misses`. Every other block exit inside translated
    /// code went straight to the next translation (a linked chain site, an indirect-table or a
    /// RET-prediction hit) without the loop.
    pub entries: u64,
    pub exits_unlinked: u64,
    pub exits_dispatch: u64,
    pub exits_stop: u64,
    // --- issue 10, sixth round (part K): links and changes of linear mappings. ---
    /// Changes of linear mappings (TLB flushes) the JIT saw, and the links across pages they
    /// undid (links within a page are kept: `jit/links.rs`).
    pub mapping_changes: u64,
    pub links_undone: u64,
    // --- end part K ---
    // --- issue 10, seventh round (part Y) ---
    /// x87 register-stack forms compiled as a direct call of their handler or an inline stack
    /// move (`jit/x87.rs`) rather than a trampoline call: 0 with `--jit-fallback-only`.
    pub x87_direct_sites: u64,
    // --- end part Y ---
    /// With `STRATA_JIT_COUNT` set: entries into translations (from the run loop, a chain
    /// site, the indirect table or a RET return point); 0 otherwise.
    pub block_entries: u64,
    /// With `STRATA_JIT_HISTOGRAM` set: instructions translated code ran through the trampoline,
    /// indexed by `Instr::code` (an iced-x86 `Code`); empty otherwise.
    pub histogram: Vec<u64>,
    /// With `STRATA_JIT_HISTOGRAM` set: instructions of blocks the JIT engine left to tier 0
    /// (not yet hot, or mostly handler-only forms), by `Instr::code`, each block's instructions
    /// counted once per entry.
    pub tier0_histogram: Vec<u64>,
}

impl JitStats {
    /// The `n` most frequent entries of the histogram, one per line ("count  share  Code"),
    /// then those of the instructions run in blocks left to tier 0.
    pub fn histogram_table(&self, n: usize) -> String {
        if self.histogram.is_empty() {
            return String::new();
        }
        let mut out = String::from("trampoline calls in translated code, by opcode:\n");
        out.push_str(&top_table(&self.histogram, n));
        out.push_str("instructions in blocks run on tier 0, by opcode:\n");
        out.push_str(&top_table(&self.tier0_histogram, n));
        out
    }
}

/// The `n` largest entries of an opcode histogram, one per line.
fn top_table(histogram: &[u64], n: usize) -> String {
    let total: u64 = histogram.iter().sum();
    let mut top: Vec<(usize, u64)> = histogram.iter().copied().enumerate().filter(|e| e.1 > 0).collect();
    top.sort_by_key(|e| std::cmp::Reverse(e.1));
    let mut out = format!("{total:>14} in all\n");
    for &(code, count) in top.iter().take(n) {
        let name = iced_x86::Code::values().nth(code).map_or_else(|| format!("code {code}"), |c| format!("{c:?}"));
        out.push_str(&format!("{count:>14} {:>6.2}%  {name}\n", count as f64 * 100.0 / total.max(1) as f64));
    }
    out
}

impl std::fmt::Display for JitStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} blocks compiled ({} KiB of code, cache {} MiB, {:.1} ms), {} left on tier 0, {} links, {} dropped, {} full flushes, {} instructions in translated code, indirect branches {}/{} found inline",
            self.compiled,
            self.code_bytes >> 10,
            self.code_capacity >> 20,
            self.compile_ns as f64 / 1e6,
            self.left_on_tier0,
            self.links,
            self.dropped,
            self.full_flushes,
            self.translated_instructions,
            self.indirect_hits,
            self.indirect_hits + self.indirect_misses
        )?;
        // --- issue 10, fifth round (part D): RET prediction, the run loop's share. ---
        let pct = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 * 100.0 / d as f64 };
        let rets = self.ret_hits + self.ret_misses;
        let back = self.exits_unlinked + self.exits_dispatch + self.exits_stop + self.indirect_misses;
        write!(
            f,
            "\n  translated share {:.2}% of {} instructions; RET predicted {}/{} ({:.2}%); {} entries from the run loop ({:.0} instructions each), back to it: {} unlinked chain sites, {} dispatches, {} indirect misses, {} stops",
            pct(self.translated_instructions, self.retired),
            self.retired,
            self.ret_hits,
            rets,
            pct(self.ret_hits, rets),
            self.entries,
            self.translated_instructions as f64 / self.entries.max(1) as f64,
            self.exits_unlinked,
            self.exits_dispatch,
            self.indirect_misses,
            self.exits_stop,
        )?;
        // --- issue 10, sixth round (part K) ---
        write!(f, "; {} mapping changes undid {} links across pages", self.mapping_changes, self.links_undone)?;
        // --- end part K ---
        // --- issue 10, seventh round (part R) ---
        write!(f, "; {} regions of {} blocks", self.regions, self.region_members)?;
        // --- end part R ---
        if self.block_entries > 0 {
            // Block exits that reached a translation without the loop: through a chain site
            // (a RET's return point included) or the indirect table, against those that went
            // back to the loop.
            let direct = self.block_entries.saturating_sub(self.entries);
            write!(
                f,
                "; chain hit rate {:.2}% ({} block exits straight to a translation, {} back to the run loop)",
                pct(direct, direct + back),
                direct,
                back
            )?;
        }
        Ok(())
    }
}

/// Shared view of a JIT's statistics (the engine updates it as it runs).
pub type JitStatsHandle = Rc<RefCell<JitStats>>;

/// A new JIT engine (for `Machine::attach_engine` or `Process::run_on`) and its statistics.
///
/// # Errors
/// Not an x86-64 Linux host, or code memory could not be set up.
pub fn new_jit(opts: JitOptions) -> Result<(Box<dyn emu::engine::Engine>, JitStatsHandle), TierError> {
    let stats = JitStatsHandle::default();
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        let engine = jit::JitEngine::new(opts, stats.clone())?;
        Ok((Box::new(engine), stats))
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = (opts, stats);
        Err(TierError::NoJitHost)
    }
}

/// Attaches the JIT to `machine`; with `active` it runs the CPU from now on.
///
/// # Errors
/// No JIT on this host, or its code memory could not be set up.
pub fn attach_jit(
    machine: &mut emu::machine::Machine,
    active: bool,
    opts: JitOptions,
) -> Result<JitStatsHandle, TierError> {
    let (engine, stats) = new_jit(opts)?;
    machine.attach_engine(engine, active)?;
    Ok(stats)
}

/// Whether the KVM engine can run on this host; `Err` says why not in one line.
///
/// # Errors
/// Not a Linux x86-64 host, no /dev/kvm, no permission, or an unusable KVM.
pub fn kvm_available() -> Result<(), TierError> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        Ok(kvm::probe()?)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        Err(TierError::UnsupportedHost)
    }
}

/// What this host's KVM does for a debugger (`KVM_SET_GUEST_DEBUG`), probed by trying each kind
/// (`kvm::guest_debug`), as one phrase (issue 11).
///
/// # Errors
/// KVM is not usable here.
pub fn kvm_guest_debug_support() -> Result<String, TierError> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        Ok(kvm::guest_debug::probe()?.to_string())
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        Err(TierError::UnsupportedHost)
    }
}

/// True when this host's KVM runs guest kernel code by emulation (the `kvm_pvm` module on a
/// host without VMX/SVM), which is slower than tier 0 for a kernel.
pub fn kvm_is_emulated() -> bool {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        kvm::is_pvm()
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        false
    }
}

/// Attaches the KVM engine to `machine` (after its kernel is loaded); with `active` KVM runs the
/// CPU from now on, otherwise it waits for `Machine::switch_engine`.
///
/// # Errors
/// KVM is not available here or the machine refused it; the message is one line.
pub fn attach_kvm(machine: &mut emu::machine::Machine, active: bool) -> Result<(), TierError> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        let engine = kvm::KvmEngine::new(&machine.cpu)?;
        Ok(machine.attach_engine(Box::new(engine), active)?)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = (machine, active);
        Err(TierError::UnsupportedHost)
    }
}

/// What a user-mode run on KVM cost (`strata user --tier kvm --stats`).
#[derive(Clone, Copy, Debug, Default)]
pub struct KvmUserStats {
    /// KVM_RUN returns.
    pub exits: u64,
    pub syscalls: u64,
    /// Exceptions, demand paging included.
    pub faults: u64,
    /// Translation flushes after munmap/mprotect and the like.
    pub flushes: u64,
}

/// A user-mode process's CPU on KVM (`strata user --tier kvm`): an engine for
/// `Process::run_on`, with the cost counters `--stats` prints.
pub struct KvmUserEngine {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    inner: kvm::user::UserEngine,
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    never: std::convert::Infallible,
}

impl KvmUserEngine {
    /// Sets up KVM for process `p` (before it runs: it adds the supervisor to its address
    /// space).
    ///
    /// # Errors
    /// KVM is not available here or refused the set-up; the message is one line.
    pub fn new(p: &mut emu::user::Process) -> Result<KvmUserEngine, TierError> {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        {
            Ok(KvmUserEngine { inner: kvm::user::UserEngine::new(p)? })
        }
        #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
        {
            let _ = p;
            Err(TierError::UnsupportedHost)
        }
    }

    /// The engine, for `Process::run_on`.
    pub fn engine(&mut self) -> &mut dyn emu::engine::Engine {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        {
            &mut self.inner
        }
        #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
        {
            match self.never {}
        }
    }

    /// The engine on its own, for a caller that keeps it (gdb's inferior, issue 11).
    pub fn into_engine(self) -> Box<dyn emu::engine::Engine> {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        {
            Box::new(self.inner)
        }
        #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
        {
            match self.never {}
        }
    }

    /// What the run cost so far.
    pub fn stats(&self) -> KvmUserStats {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        {
            let s = self.inner.stats;
            KvmUserStats { exits: s.exits, syscalls: s.syscalls, faults: s.faults, flushes: s.flushes }
        }
        #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
        {
            match self.never {}
        }
    }
}
