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
    let _ = writeln!(out, "jit: block at {:#x} (mode {:#x}), {} bytes of host code", block.la, block.mode, code.len());
    guest_lines(&mut out, block);
    host_lines(&mut out, code, ip);
    out
}

/// A region's blocks (seventh round, part R; the head first) and its host code.
pub fn dump_region(blocks: &[&Block], code: &[u8], ip: u64) -> String {
    let mut out = String::new();
    let head = blocks[0];
    let _ = writeln!(
        out,
        "jit: region at {:#x} (mode {:#x}), {} blocks, {} bytes of host code",
        head.la,
        head.mode,
        blocks.len(),
        code.len()
    );
    for b in blocks {
        let _ = writeln!(out, "  member {:#x}", b.la);
        guest_lines(&mut out, b);
    }
    host_lines(&mut out, code, ip);
    out
}

/// `block`'s guest instructions, one a line.
fn guest_lines(out: &mut String, block: &Block) {
    let bits64 = block.mode & 0xff == 64;
    for e in block.instrs.iter() {
        let name = iced_x86::Code::values()
            .nth(e.code as usize)
            .map_or_else(|| format!("code {}", e.code), |c| format!("{c:?}"));
        let inline = if forms::form_of(e, bits64).is_some() { '*' } else { ' ' };
        let _ = writeln!(out, "  guest {:#014x} {inline} {name}", e.rip());
    }
}

/// Host code `code` at `ip`, disassembled one instruction a line.
fn host_lines(out: &mut String, code: &[u8], ip: u64) {
    let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut formatter = IntelFormatter::new();
    let mut text = String::new();
    for ins in &mut decoder {
        text.clear();
        formatter.format(&ins, &mut text);
        let _ = writeln!(out, "  host  {:#014x}   {text}", ins.ip());
    }
}
