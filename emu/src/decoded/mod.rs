//! The decoded form of an instruction: the layer every other part of tier 0 stands on.
//!
//! [`Instr`] is what `decode` produces and the handlers consume; [`Handler`] is the type of a
//! handler; [`Row`] is one line of the handler table, which each instruction family lists in
//! `interp/`. [`FormInfo`] is what the table knows about each form besides its handlers (flags
//! read, written and undefined, faults, block ends). This module names no family, no decoder and
//! no run loop, so all of them can import it without an import cycle.
//!
//! Conventions every handler follows:
//! - Non-branch handlers never touch `state.rip`; the run loop advances it at block end. A
//!   handler that needs the address of the next instruction reads `e.next_rip`.
//! - Branch handlers (always the last entry of a block) set `state.rip`.
//! - A handler that faults returns `Err(Stop::Fault(..))` before committing anything; the loop
//!   then points RIP at the faulting instruction.
//! - Other stops (`Syscall`, `Halt`, `Yield`) mean the instruction completed; the handler has set
//!   `state.rip` to `e.next_rip` (or a branch target) itself.

mod info;

pub use info::{rflags_of, sets_rip, CountRule, FlagEffects, FormInfo};

use crate::cpu::Cpu;
use crate::exception::{ExecResult, Fault, Stop};
use iced_x86::Code;
use std::sync::atomic::{AtomicU64, Ordering};

/// An instruction handler.
pub type Handler = fn(&mut Cpu, &Instr) -> ExecResult;

/// No register in this operand slot (EA base or index absent).
pub const NO_REG: u8 = 0xff;
/// Segment slot meaning "base 0" (ES/CS/SS/DS in 64-bit mode).
pub const NO_SEG: u8 = 6;

/// One decoded instruction: a handler plus pre-resolved operands. What each operand field means
/// is up to the handler's family; the common meaning is given per field.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Instr {
    pub exec: Handler,
    /// Address of the following instruction (RIP-relative operands are already resolved).
    pub next_rip: u64,
    /// The immediate operand (sign-extended as the encoding specifies), or the branch target.
    pub imm: u64,
    /// Displacement of the memory operand (absolute address for RIP-relative forms).
    pub disp: u64,
    /// Mask applied to base + index*scale + disp (address size).
    pub amask: u64,
    /// Mask applied after the segment base is added (32-bit linear addresses outside long mode).
    pub lmask: u64,
    /// Register in operand position 0 (GPR: 0-15, high-byte registers AH/CH/DH/BH are 16-19);
    /// `NO_REG` when that operand is memory or an immediate.
    pub dst: u8,
    /// Register in operand position 1 (`op m, r` has its register here).
    pub src: u8,
    /// Register in operand position 2 (SHLD/SHRD's CL, 3-operand forms), or ENTER's nesting
    /// level / the second immediate byte.
    pub src2: u8,
    pub base: u8,
    pub index: u8,
    pub scale: u8,
    pub seg: u8,
    /// Length in bytes.
    pub len: u8,
    /// The iced-x86 `Code` (for tracing, and for handlers shared by several forms).
    pub code: u16,
    /// REP/REPE (1) or REPNE (2) prefix.
    pub rep: u8,
    /// Operand size in bytes where the handler needs it at run time (string ops, far branches).
    pub opsize: u8,
    /// Address size in bytes (2, 4, 8).
    pub asize: u8,
    pub _pad: [u8; 3],
}

// Blocks are arrays of these, walked by the run loop: growing it costs cache lines per block.
const _: () = assert!(std::mem::size_of::<Instr>() == 64);

impl Instr {
    /// Address of this instruction.
    #[inline(always)]
    pub fn rip(&self) -> u64 {
        self.next_rip.wrapping_sub(self.len as u64)
    }
}

/// One table row: an iced-x86 `Code` and its handlers.
#[derive(Clone, Copy)]
pub struct Row {
    pub code: Code,
    /// Handler when the r/m operand is a register (or the instruction has no memory operand).
    pub reg: Option<Handler>,
    /// Handler when the r/m operand is in memory.
    pub mem: Option<Handler>,
}

impl Row {
    /// An instruction with a register form and a memory form.
    pub const fn rm(code: Code, reg: Handler, mem: Handler) -> Row {
        Row { code, reg: Some(reg), mem: Some(mem) }
    }
    /// An instruction with no memory operand.
    pub const fn reg(code: Code, reg: Handler) -> Row {
        Row { code, reg: Some(reg), mem: None }
    }
    /// An instruction whose only form takes a memory operand.
    pub const fn mem(code: Code, mem: Handler) -> Row {
        Row { code, reg: None, mem: Some(mem) }
    }
    /// One handler for every form (it decides itself, e.g. from `Instr::base`).
    pub const fn any(code: Code, h: Handler) -> Row {
        Row { code, reg: Some(h), mem: Some(h) }
    }
}

/// Undefined opcode: #UD.
pub fn exec_ud(_cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    Err(Stop::Fault(Fault::ud()))
}

/// A valid instruction tier 0 does not implement yet: #UD, reported once per `Code`.
pub fn exec_unimplemented(_cpu: &mut Cpu, e: &Instr) -> ExecResult {
    // Enough bits for every Code (iced-x86 1.22 has fewer than 8192).
    static SEEN: [AtomicU64; 128] = [const { AtomicU64::new(0) }; 128];
    let n = e.code as usize;
    let bit = 1u64 << (n % 64);
    if SEEN[(n / 64) % 128].fetch_or(bit, Ordering::Relaxed) & bit == 0 {
        let code: Code = iced_x86::Code::values().nth(n).unwrap_or(Code::INVALID);
        tracing::warn!("tier 0 does not implement {:?} (at {:#x}); raising #UD", code, e.rip());
        eprintln!("strata: unimplemented instruction {:?} at {:#x}", code, e.rip());
    }
    Err(Stop::Fault(Fault::ud()))
}
