//! Guest faults and the other reasons an instruction stops the interpreter.
//!
//! Guest faults are not host errors: a handler returns `Err(Stop::Fault(..))`, the run loop
//! restores RIP to the faulting instruction (nothing was committed, ARCHITECTURE.md, decision 6) and the
//! machine delivers it (through the IDT in system mode, as a signal in user mode).

/// Exception vectors (SDM Vol. 3, Table 6-1).
pub mod vector {
    pub const DE: u8 = 0;
    pub const DB: u8 = 1;
    pub const NMI: u8 = 2;
    pub const BP: u8 = 3;
    pub const OF: u8 = 4;
    pub const BR: u8 = 5;
    pub const UD: u8 = 6;
    pub const NM: u8 = 7;
    pub const DF: u8 = 8;
    pub const TS: u8 = 10;
    pub const NP: u8 = 11;
    pub const SS: u8 = 12;
    pub const GP: u8 = 13;
    pub const PF: u8 = 14;
    pub const MF: u8 = 16;
    pub const AC: u8 = 17;
    pub const MC: u8 = 18;
    pub const XM: u8 = 19;
}

/// #PF error-code bits (SDM Vol. 3, 4.7).
pub mod pf_error {
    pub const PRESENT: u32 = 1 << 0;
    pub const WRITE: u32 = 1 << 1;
    pub const USER: u32 = 1 << 2;
    pub const RSVD: u32 = 1 << 3;
    pub const FETCH: u32 = 1 << 4;
    /// A protection-key violation (SDM Vol. 3, 4.7).
    pub const PK: u32 = 1 << 5;
}

/// An exception raised by an instruction. For #PF the faulting linear address is in
/// `Cpu::fault_addr` (it becomes CR2 when the fault is delivered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub vector: u8,
    pub has_error_code: bool,
    pub error_code: u32,
}

impl Fault {
    pub const fn new(vector: u8) -> Self {
        Fault { vector, has_error_code: false, error_code: 0 }
    }
    pub const fn with_code(vector: u8, error_code: u32) -> Self {
        Fault { vector, has_error_code: true, error_code }
    }
    pub const fn ud() -> Self {
        Self::new(vector::UD)
    }
    pub const fn gp0() -> Self {
        Self::with_code(vector::GP, 0)
    }
    pub const fn de() -> Self {
        Self::new(vector::DE)
    }
}

/// Why an instruction handler stopped the current block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The instruction faulted; no architectural state changed. RIP is set to the instruction.
    Fault(Fault),
    /// SYSCALL in user-mode emulation: the instruction completed; the runner handles the call.
    Syscall,
    /// HLT completed; the machine waits for an interrupt.
    Halt,
    /// The instruction completed and asks the machine loop to look at the world (mode change,
    /// interrupt window opened, port I/O that needs the machine).
    Yield,
    /// INT n / INT3 / INTO completed (RIP is past it); the machine delivers the software
    /// interrupt (subject to the gate's DPL).
    SoftInt(u8),
    /// A trap-class exception (no error code) raised by a completed instruction (INT1's #DB):
    /// RIP is past it.
    Trap(u8),
}

impl From<Fault> for Stop {
    fn from(f: Fault) -> Self {
        Stop::Fault(f)
    }
}

/// Handler result.
pub type ExecResult = Result<(), Stop>;

// Every handler returns this; at 8 bytes it comes back in a register instead of through memory,
// which the dispatch loop feels on every instruction. Keep new `Stop` variants small.
const _: () = assert!(core::mem::size_of::<ExecResult>() == 8);

/// An exception or interrupt being delivered (`system/interrupt.rs` delivers it; the CPU keeps
/// the last one in `Cpu::last_event`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A fault or trap raised by an instruction (RIP points where it should return to).
    Exception(Fault),
    /// INT n / INT3 / INTO: subject to the gate DPL check; RIP is already past the instruction.
    Software(u8),
    /// An external interrupt from the PIC or APIC.
    External(u8),
}
