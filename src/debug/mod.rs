//! Looking inside a running guest: the gdb stub ([`gdb`]), which drives the guest one
//! instruction at a time on tier 0 through an [`Inferior`] — a user-mode process ([`user`]) or
//! the PC ([`system`]) — and the instruction trace ([`trace`]), an observer of tier 0's own run
//! loop. A run that uses neither is untouched.

pub mod combine;
pub mod gdb;
pub mod monitor;
pub mod system;
pub mod trace;
pub mod user;

use emu::cpu::Cpu;
use emu::state::ctrl;

/// How the guest ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Exit status (a process's exit code; the PC's exit-port status).
    Exited(u8),
    /// Killed by this signal (a process), or shut down (the PC: SIGSEGV for a triple fault).
    Signaled(u8),
}

/// What getting ready for the next instruction found.
pub enum Prepared {
    /// An instruction is due at RIP.
    Ready,
    /// The CPU is halted and time passed without waking it.
    Waited,
    Ended(End),
}

/// The guest being debugged or traced: a user-mode process or the PC.
pub trait Inferior {
    /// The CPU, with `cpu.state` current (the guest is stopped on tier 0).
    fn cpu(&mut self) -> &mut Cpu;
    /// Reads guest memory at linear address `la`; false when a page is not mapped.
    fn read_memory(&mut self, la: u64, buf: &mut [u8]) -> bool;
    /// Writes guest memory at `la` (decoded code on those pages is dropped).
    fn write_memory(&mut self, la: u64, data: &[u8]) -> bool;
    /// Everything before the next instruction runs on tier 0 (for the PC: devices, an
    /// interrupt due, a halted CPU waiting).
    fn prepare_step(&mut self) -> Result<Prepared, String>;
    /// Runs the instruction at RIP on tier 0; `Some` when the guest ended.
    fn execute_step(&mut self) -> Result<Option<End>, String>;
    /// Runs without looking at breakpoints for a short while, on whatever engine the run uses;
    /// `Some` when the guest ended. Afterwards the guest is stopped on tier 0.
    fn run_free(&mut self) -> Result<Option<End>, String>;
    /// A monitor command from gdb (`monitor info tlb ADDR`, `monitor xp/4xg ADDR`, ...): its
    /// output, or an error line.
    fn monitor(&mut self, _command: &str) -> Result<String, String> {
        Err("no monitor commands here".into())
    }
    /// A signal (Linux's number) the guest got and that waits for the debugger's word before
    /// it is acted on: the process is stopped where it got it.
    fn stopped_signal(&mut self) -> Option<i32> {
        None
    }
    /// Resumes from [`Inferior::stopped_signal`], passing on `signal` (`None` suppresses it).
    /// `Some` when that ended the guest.
    fn resume_signal(&mut self, _signal: Option<i32>) -> Option<End> {
        None
    }
    /// What the engine the guest runs on can do with its own debugging (KVM_SET_GUEST_DEBUG);
    /// `None` (the default): nothing, gdb's points are checked on tier 0.
    fn guest_debug_kinds(&mut self) -> Option<emu::engine::GuestDebugKinds> {
        None
    }
    /// Runs for a short while on an engine with its own debugging, armed with `debug` (its
    /// flags are the inferior's to set). `None` when the engine cannot do that here (the
    /// caller steps on tier 0, the default). Afterwards the guest is stopped on tier 0.
    fn run_guest_debug(&mut self, _debug: emu::engine::GuestDebug) -> Result<Option<GuestRun>, String> {
        Ok(None)
    }
}

/// How a run under the engine's own debugging ([`Inferior::run_guest_debug`]) ended.
pub enum GuestRun {
    /// The engine stopped for the debugger (the step was taken, or a breakpoint or watchpoint
    /// was reached), as its debug exit says.
    Stopped(emu::engine::DebugHit),
    /// The slice of host time passed first.
    Slice,
    Ended(End),
}

/// The physical address of linear address `la` for the debugger: the guest's own walk, without
/// its side effects (no accessed or dirty bits) or permission checks. `None` when not mapped.
pub fn debug_translate(cpu: &Cpu, la: u64) -> Option<u64> {
    let s = &cpu.state;
    if s.cr0 & ctrl::CR0_PG == 0 {
        return Some(if s.efer & ctrl::EFER_LMA != 0 { la } else { la & 0xffff_ffff });
    }
    if s.efer & ctrl::EFER_LMA == 0 {
        return None; // legacy 32-bit paging is not modelled by the CPU either
    }
    // 4-level paging (SDM Vol. 3, 4.5): bits 47:39, 38:30, 29:21, 20:12 index the four levels;
    // PS in a level-3 or level-2 entry maps a 1 GiB or 2 MiB page.
    const ADDR: u64 = 0x000f_ffff_ffff_f000;
    let mut table = s.cr3 & ADDR;
    for level in (1..=4u32).rev() {
        let shift = 12 + 9 * (level - 1);
        let pa = table + ((la >> shift) & 0x1ff) * 8;
        if pa + 8 > cpu.ram.len() {
            return None;
        }
        let pte = cpu.ram.read::<emu::flags::W64>(pa);
        if pte & 1 == 0 {
            return None;
        }
        if level == 1 || (level <= 3 && pte & (1 << 7) != 0) {
            let mask = (1u64 << shift) - 1;
            return Some((pte & ADDR & !mask) | (la & mask));
        }
        table = pte & ADDR;
    }
    None
}
