//! The handler table: one row per instruction form (docs/ARCHITECTURE.md, "Conventions"). Each family
//! file in `interp/` lists its rows; a row maps an iced-x86 `Code` to its register-form and
//! memory-form handlers. Which flags an instruction reads, writes and leaves undefined comes from
//! iced-x86's instruction info (`rflags_read`, `rflags_modified`, `rflags_undefined`), so it is
//! written down once, by the decoder's authors, and shared by the JIT and the conformance masks.

use crate::cpu::Cpu;
use crate::exception::{ExecResult, Fault, Stop};
use crate::interp::{self, Handler, Instr};
use iced_x86::Code;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// One table row.
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

/// The family files, in the order `families()` lists their rows.
pub const FAMILY_NAMES: [&str; 17] = [
    "arith",
    "bit",
    "ctrl_xfer",
    "data_xfer",
    "flag_ctrl",
    "io",
    "legacy",
    "logical",
    "misc",
    "mul_div",
    "shift",
    "sse",
    "stack",
    "string",
    "sys",
    "system",
    "x87",
];

/// Every family's rows, in the order of `FAMILY_NAMES`.
pub fn families() -> [&'static [&'static [Row]]; 17] {
    [
        interp::arith::ROWS,
        interp::bit::ROWS,
        interp::ctrl_xfer::ROWS,
        interp::data_xfer::ROWS,
        interp::flag_ctrl::ROWS,
        interp::io::ROWS,
        interp::legacy::ROWS,
        interp::logical::ROWS,
        interp::misc::ROWS,
        interp::mul_div::ROWS,
        interp::shift::ROWS,
        interp::sse::ROWS,
        interp::stack::ROWS,
        interp::string::ROWS,
        interp::sys::ROWS,
        interp::system::ROWS,
        interp::x87::ROWS,
    ]
}

type Slot = (Option<Handler>, Option<Handler>);

fn table() -> &'static [Slot] {
    static TABLE: OnceLock<Vec<Slot>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t: Vec<Slot> = vec![(None, None); Code::values().len()];
        for r in families().iter().flat_map(|f| f.iter()).flat_map(|rows| rows.iter()) {
            {
                let slot = &mut t[r.code as usize];
                if r.reg.is_some() {
                    slot.0 = r.reg;
                }
                if r.mem.is_some() {
                    slot.1 = r.mem;
                }
            }
        }
        t
    })
}

/// The handler for `code` in its register (`mem == false`) or memory form.
pub fn lookup(code: Code, mem: bool) -> Option<Handler> {
    let (r, m) = table()[code as usize];
    if mem {
        m
    } else {
        r
    }
}

/// Every `Code` with at least one handler (for README lists and the conformance generator).
pub fn implemented_codes() -> Vec<Code> {
    let mut v: Vec<Code> =
        families().iter().flat_map(|f| f.iter()).flat_map(|rows| rows.iter().map(|r| r.code)).collect();
    v.sort_by_key(|c| *c as u16);
    v.dedup();
    v
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
