//! The handler table: the Rust counterpart of Bochs's `ia_opcodes.def` (STYLE.md). Each family
//! file in `interp/` lists its rows ([`Row`]); a row maps an iced-x86 `Code` to its
//! register-form and memory-form handlers. Which flags an instruction reads, writes and leaves
//! undefined comes from iced-x86's instruction info (`rflags_read`, `rflags_modified`,
//! `rflags_undefined`), so it is written down once, by the decoder's authors, and shared by the
//! JIT and the conformance masks.

use crate::decoded::{Handler, Row};
use crate::interp;
use iced_x86::Code;
use std::sync::OnceLock;

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
