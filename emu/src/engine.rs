//! The engine contract (docs/ARCHITECTURE.md, decision 10): every engine — tier 0, the KVM engine, the tier-1
//! JIT next — runs the same [`Cpu`] through one trait, [`Engine`].
//!
//! An engine runs guest code until an [`Exit`]: an instruction that stops it (a system call, a
//! fault the user-mode runner must see, HLT, the end of an interrupt shadow), the [`Limit`]
//! (an instruction budget and a host-time deadline), a moment the devices must be looked at
//! (an I/O access, a kick, an interrupt window), a shutdown, or an instruction the engine cannot
//! execute (tier 0 then runs it). Port and MMIO accesses go to `cpu.bus` inside `run`, so
//! devices never know which engine runs. The caller — the machine loop or the user-mode
//! process — decides what happens next: it polls devices, delivers interrupts through
//! [`Engine::inject_interrupt`], and stops.
//!
//! State ownership: `cpu.state` is authoritative whenever the caller holds the CPU, except that
//! an engine that keeps registers of its own (KVM) holds them between `load_state` and
//! `store_state`. Guest RAM is shared by all engines, so only registers move at a switch.
//!
//! Instruction counting: tier 0 (and the JIT) retire exactly what they run into
//! `cpu.retired` and never run past `Limit::instructions`; KVM counts nothing. Options that need
//! the count (`--deterministic`, `--max-instructions`, `--save-at N`, `instr:` watches) are
//! refused for an engine whose [`EngineKind::counts_instructions`] is false, with the reason
//! [`EngineKind::why_no_count`] gives.

use crate::cpu::Cpu;
use crate::exception::Stop;
use std::time::Instant;

/// The engines a CPU can run on (`--tier`). `Auto` is resolved to one of the others where the
/// host is known (`tiers::resolve_engine`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum EngineKind {
    /// Tier 0, the interpreter: every host.
    Interp,
    /// Linux KVM: hardware virtualization (or `kvm_pvm`) on a Linux x86-64 host.
    Kvm,
    /// Tier 1: hot blocks compiled to host code (x86-64 hosts; `tiers::jit`).
    Jit,
    /// KVM where the host has hardware virtualization, else the JIT on x86-64 hosts, else tier 0.
    Auto,
}

impl EngineKind {
    /// The name used on the command line, in messages and in the timeline.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Interp => "interp",
            EngineKind::Kvm => "kvm",
            EngineKind::Jit => "jit",
            EngineKind::Auto => "auto",
        }
    }

    /// True when the engine retires instructions one by one into `cpu.retired` and stops
    /// exactly at `Limit::instructions` (what deterministic runs and instruction limits need).
    pub fn counts_instructions(self) -> bool {
        match self {
            EngineKind::Interp | EngineKind::Jit => true,
            EngineKind::Kvm | EngineKind::Auto => false,
        }
    }

    /// Why `option` cannot be used with this engine, or `None` when it can.
    pub fn why_no_count(self, option: &str) -> Option<String> {
        (!self.counts_instructions()).then(|| {
            format!("{option} needs an engine that counts instructions; {} does not (use --tier interp)", self.name())
        })
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How far one `Engine::run` may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// At most this many more instructions retire, exactly (engines that count them stop after
    /// that many). `u64::MAX`: no budget.
    pub instructions: u64,
    /// Return at the first convenient point (a block boundary for tier 0) once about this many
    /// instructions have retired, so the caller can look at the devices. Unlike `instructions`
    /// it may be overshot (by less than a block); `u64::MAX`: never.
    pub poll_after: u64,
    /// Return at the first exit point after this host time (tier 0 looks at the clock between
    /// slices of [`Limit::CLOCK_SLICE`] instructions; KVM at its next exit, at most a kick
    /// period late).
    pub deadline: Option<Instant>,
    /// Return as soon as an external interrupt can be taken (an interrupt is pending).
    pub want_interrupt: bool,
}

impl Limit {
    /// No budget, no deadline.
    pub const NONE: Limit =
        Limit { instructions: u64::MAX, poll_after: u64::MAX, deadline: None, want_interrupt: false };
    /// Instructions tier 0 runs between looks at the clock when a deadline is set.
    pub const CLOCK_SLICE: u64 = 1 << 16;

    /// At most `n` more instructions.
    pub fn instructions(n: u64) -> Limit {
        Limit { instructions: n, ..Limit::NONE }
    }
}

/// Why an engine's `run` returned: the one exit type of every engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// An instruction stopped the engine: a fault, system call or software interrupt of a
    /// user-mode CPU (a system-level CPU takes those through its IDT inside `run`), HLT (RIP is
    /// past it), or `Yield` (the instruction opened an interrupt shadow: the next one runs
    /// before any interrupt).
    Stop(Stop),
    /// The limit (instruction budget or deadline) was reached.
    Limit,
    /// Time to look at the devices (a kick, an I/O access that may have changed them, an
    /// interrupt window that opened).
    Poll,
    /// Delivering a double fault failed, or the CPU shut down: a PC resets, Strata stops.
    TripleFault,
    /// The engine cannot execute the instruction at RIP; tier 0 should run it.
    Unemulated,
}

/// An engine's failure (a host ioctl error, a state the engine cannot represent): not the
/// guest's doing.
#[derive(Debug, thiserror::Error)]
#[error("{engine}: {message}")]
pub struct EngineError {
    pub engine: &'static str,
    pub message: String,
}

/// An engine that runs a [`Cpu`] (see the module doc for the contract).
pub trait Engine {
    /// Which engine this is.
    fn kind(&self) -> EngineKind;

    /// Takes over the CPU at an instruction boundary: `cpu.state` is current and may have been
    /// changed by someone else (another engine, the user-mode kernel, a snapshot restore).
    fn load_state(&mut self, cpu: &mut Cpu) -> Result<(), EngineError>;

    /// Makes `cpu.state` current from the engine's own copy (for a dump, a snapshot, a switch,
    /// or the user-mode kernel). Engines that run on `cpu.state` directly do nothing.
    fn store_state(&mut self, cpu: &mut Cpu) -> Result<(), EngineError>;

    /// Runs guest code until an exit or `limit`.
    fn run(&mut self, cpu: &mut Cpu, limit: &Limit) -> Result<Exit, EngineError>;

    /// True when an external interrupt can be injected now (IF set, no interrupt shadow,
    /// nothing else being injected).
    fn interrupt_ready(&self, cpu: &Cpu) -> bool;

    /// RFLAGS.IF as of the last exit.
    fn interrupts_enabled(&self, cpu: &Cpu) -> bool;

    /// Delivers external interrupt `vector` (only when `interrupt_ready`). `Some(Exit::TripleFault)`
    /// when delivering it shut the CPU down.
    fn inject_interrupt(&mut self, cpu: &mut Cpu, vector: u8) -> Result<Option<Exit>, EngineError>;

    /// True when `inject_interrupt(cpu, 2)` delivers an NMI (the engine runs on `cpu.state`
    /// and delivers through the guest's IDT, whatever IF says); the machine then sends the
    /// LAPIC's NMIs that way. The default, false: NMIs are not delivered to this engine.
    fn software_nmi(&self) -> bool {
        false
    }

    /// Executes exactly the one instruction at RIP (the instruction in an interrupt shadow),
    /// with its fault delivered as `run` would: `Some(exit)` with the exit it caused, if any.
    /// `None` (the default): this engine cannot, and the machine runs it on tier 0 after
    /// `store_state`. Engines that share tier 0's `SoftMmu` implement it, so the store of a
    /// stepped instruction into code reaches their own block cache.
    fn step_one(&mut self, _cpu: &mut Cpu) -> Option<Option<Exit>> {
        None
    }

    /// Guest code changed behind this engine's back (another engine ran it, the user-mode kernel
    /// or a snapshot restore wrote memory): drop every decoded block or translation.
    fn flush_code(&mut self, cpu: &mut Cpu);

    /// The decoded-block cache this engine runs from, if it has one (the monitor's
    /// `info blocks`).
    fn block_cache(&self) -> Option<&crate::cache::BlockCache> {
        None
    }

    /// A user-mode kernel changed the page tables from outside the guest (`emu::user`): with
    /// `removed`, present entries were changed or removed, so translations cached from them must
    /// go; and RAM frames below `frame_top` may now be in use (an engine that hands RAM to the
    /// host piecemeal must cover them before it runs again). Engines that walk the tables
    /// through `cpu.tlb`, which the kernel flushes itself, need nothing (the default).
    ///
    /// # Errors
    /// The engine could not drop its translations or cover the frames.
    fn page_tables_changed(&mut self, _cpu: &mut Cpu, _removed: bool, _frame_top: u64) -> Result<(), EngineError> {
        Ok(())
    }

    /// Arms (`Some`) or disarms (`None`) the engine's own debugging for a debugger (KVM's
    /// KVM_SET_GUEST_DEBUG); false when the engine has none (the default), so the debugger
    /// steps on tier 0. The guest's own debug registers are not touched.
    ///
    /// # Errors
    /// The engine has guest debugging but refused this request.
    fn set_guest_debug(&mut self, _debug: Option<&GuestDebug>) -> Result<bool, EngineError> {
        Ok(false)
    }
}

/// What a debugger asks of an engine's own debugging ([`Engine::set_guest_debug`]).
#[derive(Clone, Debug, Default)]
pub struct GuestDebug {
    /// Stop after every instruction.
    pub single_step: bool,
    /// Linear addresses to stop before (at most four: the debug registers).
    pub hw_breakpoints: Vec<u64>,
    /// Raised by the engine when it stopped for the debugger (before `stopped`).
    pub hit: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Raised by the engine when it stopped for the debugger, or by the caller's timer; the
    /// machine loop watches it (`Watch::Flag`), so `Machine::run` returns at that boundary.
    pub stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
}
