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
    /// KVM_SET_GUEST_DEBUG); false when the engine has none (the default), or cannot do a kind
    /// `debug` asks for, so the debugger steps on tier 0. The guest's own debug registers are
    /// not touched.
    ///
    /// # Errors
    /// The engine has guest debugging but refused this request.
    fn set_guest_debug(&mut self, _debug: Option<&GuestDebug>) -> Result<bool, EngineError> {
        Ok(false)
    }

    /// What the engine's own debugging can do on this host (found out on first use); `None`
    /// when it has none (the default).
    fn guest_debug_kinds(&mut self) -> Option<GuestDebugKinds> {
        None
    }
}

/// The kinds of guest debugging an engine can do on this host ([`Engine::guest_debug_kinds`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestDebugKinds {
    /// Stop after one instruction.
    pub single_step: bool,
    /// An INT3 the debugger wrote into guest memory stops the engine instead of reaching the
    /// guest's own #BP handler ([`GuestDebug::int3_breakpoints`]).
    pub sw_breakpoint: bool,
    /// Execution breakpoints in the debug registers ([`GuestDebug::hw_breakpoints`]).
    pub hw_breakpoint: bool,
    /// Data breakpoints in the debug registers ([`GuestDebug::watchpoints`]).
    pub hw_watchpoint: bool,
}

/// A data breakpoint in one debug register (SDM Vol. 3B 18.2.4-18.2.5): a trap after an
/// instruction that wrote (or, with `read`, read or wrote) any of `len` bytes at `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataBreakpoint {
    /// Linear address, aligned to `len`.
    pub addr: u64,
    /// 1, 2, 4 or 8 bytes.
    pub len: u8,
    /// Reads trigger it too (R/W = 11); otherwise only writes (R/W = 01).
    pub read: bool,
}

/// Why the engine stopped for the debugger, as its debug exit said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DebugHit {
    /// The exception KVM intercepted: 1 (#DB: a step or a debug-register hit) or 3 (#BP: an
    /// INT3; RIP is at the INT3).
    pub vector: u8,
    /// DR6 at the exit: bits 0-3 name the debug registers that matched, bit 14 (BS) a step.
    pub dr6: u64,
}

/// What a debugger asks of an engine's own debugging ([`Engine::set_guest_debug`]). At most
/// four debug registers: `hw_breakpoints` and `watchpoints` together.
#[derive(Clone, Debug, Default)]
pub struct GuestDebug {
    /// Stop after every instruction.
    pub single_step: bool,
    /// Linear addresses to stop before (execution breakpoints in DR0-DR3, in order).
    pub hw_breakpoints: Vec<u64>,
    /// Data breakpoints, in the debug registers after `hw_breakpoints`.
    pub watchpoints: Vec<DataBreakpoint>,
    /// Linear addresses where the debugger wrote INT3s into guest memory: one of them stops
    /// the engine with RIP at it (another INT3 is the guest's own).
    pub int3_breakpoints: Vec<u64>,
    /// Raised by the engine when it stopped for the debugger (before `stopped`).
    pub hit: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// What the debug exit said, set with `hit`.
    pub cause: std::sync::Arc<std::sync::Mutex<DebugHit>>,
    /// Raised by the engine when it stopped for the debugger, or by the caller's timer; the
    /// machine loop watches it (`Watch::Flag`), so `Machine::run` returns at that boundary.
    pub stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl GuestDebug {
    /// Debug registers this request needs.
    pub fn slots(&self) -> usize {
        self.hw_breakpoints.len() + self.watchpoints.len()
    }

    /// True when an engine that can do `kinds` can do all of this.
    pub fn fits(&self, kinds: &GuestDebugKinds) -> bool {
        (!self.single_step || kinds.single_step)
            && (self.hw_breakpoints.is_empty() || kinds.hw_breakpoint)
            && (self.watchpoints.is_empty() || kinds.hw_watchpoint)
            && (self.int3_breakpoints.is_empty() || kinds.sw_breakpoint)
            && self.slots() <= 4
    }

    /// The debug registers for this request: DR0-DR3 the addresses, DR7 each one's local
    /// enable (bit 2i), R/W (bits 16+4i: 00 execute, 01 write, 11 read or write) and LEN
    /// (bits 18+4i: 00 one byte, 01 two, 11 four, 10 eight), SDM Vol. 3B 18.2.4. An
    /// execution breakpoint has R/W and LEN 00.
    pub fn debugreg(&self) -> [u64; 8] {
        let mut dr = [0u64; 8];
        let exec = self.hw_breakpoints.iter().map(|&a| (a, 0u64, 0u64));
        let data = self.watchpoints.iter().map(|w| {
            let len = match w.len {
                1 => 0b00,
                2 => 0b01,
                8 => 0b10,
                _ => 0b11,
            };
            (w.addr, if w.read { 0b11 } else { 0b01 }, len)
        });
        for (i, (addr, rw, len)) in exec.chain(data).take(4).enumerate() {
            dr[i] = addr;
            dr[7] |= 1 << (2 * i) | rw << (16 + 4 * i) | len << (18 + 4 * i);
        }
        dr
    }

    /// Records a debug exit (the engine's side): `cause`, then `hit` and `stopped`.
    pub fn report(&self, hit: DebugHit) {
        if let Ok(mut c) = self.cause.lock() {
            *c = hit;
        }
        self.hit.store(true, std::sync::atomic::Ordering::SeqCst);
        self.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DR7 as SDM Vol. 3B 18.2.4 (Figure 18-1) lays it out: an execution breakpoint in DR0
    /// (L0, R/W0 = LEN0 = 00), a 4-byte write watch in DR1 (L1; R/W1 = 01, LEN1 = 11) and an
    /// 8-byte read-or-write watch in DR2 (L2; R/W2 = 11, LEN2 = 10).
    #[test]
    fn debug_registers_follow_the_sdm_layout() {
        let d = GuestDebug {
            hw_breakpoints: vec![0x1000],
            watchpoints: vec![
                DataBreakpoint { addr: 0x2000, len: 4, read: false },
                DataBreakpoint { addr: 0x3000, len: 8, read: true },
            ],
            ..GuestDebug::default()
        };
        let dr = d.debugreg();
        assert_eq!(dr[..4], [0x1000, 0x2000, 0x3000, 0]);
        assert_eq!(dr[7], 0x0bd0_0015);
        assert_eq!(d.slots(), 3);
        let hw_only = GuestDebugKinds { single_step: true, hw_breakpoint: true, ..Default::default() };
        assert!(!d.fits(&hw_only));
        assert!(d.fits(&GuestDebugKinds { hw_watchpoint: true, ..hw_only }));
    }
}
