//! `STRATA_JIT_DUMP=1`: each compiled block printed to stderr as its guest instructions (RIP and
//! iced-x86 form, marked `*` where the backend has an inline form) next to the host code
//! generated for it (iced-x86's Intel formatter), for learners and for tuning the backend.

use super::forms;
use emu::cache::Block;
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
use std::fmt::Write;

/// The environment variable that turns the dump on.
pub const DUMP_VAR: &str = "STRATA_JIT_DUMP";

/// `block` and its host code `code`, linked at host address `ip`.
pub fn dump(block: &Block, code: &[u8], ip: u64) -> String {
    let mut out = String::new();
    let bits64 = block.mode & 0xff == 64;
    let _ = writeln!(out, "jit: block at {:#x} (mode {:#x}), {} bytes of host code", block.la, block.mode, code.len());
    for e in block.instrs.iter() {
        let name = iced_x86::Code::values()
            .nth(e.code as usize)
            .map_or_else(|| format!("code {}", e.code), |c| format!("{c:?}"));
        let inline = if forms::form_of(e, bits64).is_some() { '*' } else { ' ' };
        let _ = writeln!(out, "  guest {:#014x} {inline} {name}", e.rip());
    }
    let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut formatter = IntelFormatter::new();
    let mut text = String::new();
    for ins in &mut decoder {
        text.clear();
        formatter.format(&ins, &mut text);
        let _ = writeln!(out, "  host  {:#014x}   {text}", ins.ip());
    }
    out
}
