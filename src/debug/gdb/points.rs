//! Breakpoints and watchpoints, checked around each instruction tier 0 steps.
//!
//! Nothing is written into guest memory: a breakpoint is an address compared with the linear
//! address of the next instruction, so software and hardware breakpoints are the same thing here
//! and self-modifying or checksummed code sees its own bytes. A watchpoint fires on an access
//! the instruction about to run makes: iced-x86's instruction info lists its memory operands
//! with read/write access, and their linear addresses are computed from the registers before it
//! runs (REP string instructions cover every element). As with debug registers on hardware
//! (SDM Vol. 3, 18.2.5: data breakpoints are traps), the stop is reported after the
//! instruction completes; an instruction that faults reports nothing.

use emu::state::CpuState;
use gdbstub::target::ext::breakpoints::WatchKind;
use iced_x86::{Decoder, DecoderOptions, InstructionInfoFactory, Mnemonic, OpAccess, Register};

/// One watchpoint: `len` bytes at linear address `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watchpoint {
    pub addr: u64,
    pub len: u64,
    pub kind: WatchKind,
}

/// The breakpoints and watchpoints gdb set.
#[derive(Default)]
pub struct Points {
    /// Software breakpoints (`Z0`) by linear address.
    pub soft: Vec<u64>,
    /// Hardware breakpoints (`Z1`).
    pub hard: Vec<u64>,
    pub watches: Vec<Watchpoint>,
    info: Option<InstructionInfoFactory>,
}

/// A memory access an instruction is about to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub addr: u64,
    pub len: u64,
    pub read: bool,
    pub write: bool,
}

impl Points {
    pub fn is_empty(&self) -> bool {
        self.soft.is_empty() && self.hard.is_empty() && self.watches.is_empty()
    }

    /// `Some(true)` for a hardware breakpoint at `la`, `Some(false)` for a software one.
    pub fn break_at(&self, la: u64) -> Option<bool> {
        if self.hard.contains(&la) {
            Some(true)
        } else if self.soft.contains(&la) {
            Some(false)
        } else {
            None
        }
    }

    /// The memory accesses of the instruction in `bytes` (fetched at the next instruction of
    /// `s`), when a watchpoint is set; empty otherwise.
    pub fn predict(&mut self, s: &CpuState, bytes: &[u8]) -> Vec<Access> {
        if self.watches.is_empty() {
            return Vec::new();
        }
        let bits = s.code_bits();
        let mut decoder = Decoder::with_ip(bits, bytes, s.rip, DecoderOptions::NONE);
        let instr = decoder.decode();
        if instr.is_invalid() {
            return Vec::new();
        }
        let factory = self.info.get_or_insert_with(InstructionInfoFactory::new);
        let info = factory.info(&instr);
        let rep = (instr.has_rep_prefix() || instr.has_repne_prefix()) && is_string(instr.mnemonic());
        let mut out = Vec::new();
        for m in info.used_memory() {
            let (read, write) = match m.access() {
                OpAccess::Read | OpAccess::CondRead => (true, false),
                OpAccess::Write | OpAccess::CondWrite => (false, true),
                OpAccess::ReadWrite | OpAccess::ReadCondWrite => (true, true),
                _ => continue,
            };
            let Some(addr) = m.virtual_address(0, |r, _, _| Some(register_value(s, r, bits))) else { continue };
            let size = m.memory_size().size().max(1) as u64;
            let (addr, len) =
                if rep { rep_range(s, addr, size, instr.memory_size().size().max(1) as u64) } else { (addr, size) };
            out.push(Access { addr, len, read, write });
        }
        out
    }

    /// The watchpoint `accesses` hit, with the address gdb should be told.
    pub fn watch_hit(&self, accesses: &[Access]) -> Option<(WatchKind, u64)> {
        for a in accesses {
            for w in &self.watches {
                let overlap = a.addr < w.addr.wrapping_add(w.len) && w.addr < a.addr.wrapping_add(a.len);
                let fires = match w.kind {
                    WatchKind::Write => a.write,
                    WatchKind::Read => a.read,
                    WatchKind::ReadWrite => a.read || a.write,
                };
                if overlap && fires {
                    return Some((w.kind, w.addr));
                }
            }
        }
        None
    }
}

/// String instructions, which a REP prefix repeats RCX times.
fn is_string(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(
        m,
        Movsb
            | Movsw
            | Movsd
            | Movsq
            | Stosb
            | Stosw
            | Stosd
            | Stosq
            | Lodsb
            | Lodsw
            | Lodsd
            | Lodsq
            | Cmpsb
            | Cmpsw
            | Cmpsd
            | Cmpsq
            | Scasb
            | Scasw
            | Scasd
            | Scasq
            | Insb
            | Insw
            | Insd
            | Outsb
            | Outsw
            | Outsd
    )
}

/// The bytes a REP string instruction may touch from its first element at `addr`: RCX (masked
/// to the address size) elements, upward or downward as RFLAGS.DF says (SDM Vol. 2, REP).
fn rep_range(s: &CpuState, addr: u64, first: u64, elem: u64) -> (u64, u64) {
    let count = match s.code_bits() {
        64 => s.gpr[1],
        _ => s.gpr[1] & 0xffff_ffff,
    }
    .clamp(1, 1 << 32);
    let span = (count - 1) * elem + first;
    if s.rflags() & emu::rflags::DF != 0 {
        (addr.wrapping_sub((count - 1) * elem), span)
    } else {
        (addr, span)
    }
}

/// The value of register `r` (any width) or, for a segment register, its base as the address
/// computation uses it (zero for ES, CS, SS and DS in 64-bit mode: SDM Vol. 1, 3.4.2.1).
fn register_value(s: &CpuState, r: Register, bits: u32) -> u64 {
    if r.is_segment_register() {
        let i = r as usize - Register::ES as usize;
        return if bits == 64 && i < 4 { 0 } else { s.segs[i].base };
    }
    if r.is_gpr8() {
        let n = r.number();
        // AH, CH, DH, BH are 4..7 without REX: bits 15:8 of RAX..RBX.
        return if (Register::AH..=Register::BH).contains(&r) { s.gpr[n - 4] >> 8 & 0xff } else { s.gpr[n] & 0xff };
    }
    if r.is_gpr() {
        let v = s.gpr[r.number()];
        return match r.size() {
            2 => v & 0xffff,
            4 => v & 0xffff_ffff,
            _ => v,
        };
    }
    if r.is_xmm() {
        // A VSIB index element: the low quadword is enough for the first element.
        return s.xmm[r.number() & 15][0];
    }
    match r {
        Register::RIP => s.rip,
        Register::EIP => s.rip & 0xffff_ffff,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state64() -> CpuState {
        let mut s = CpuState {
            cr0: emu::state::ctrl::CR0_PE | emu::state::ctrl::CR0_PG,
            efer: emu::state::ctrl::EFER_LMA | emu::state::ctrl::EFER_LME,
            ..CpuState::default()
        };
        s.segs[1] = emu::state::Segment::flat_code64(8, 0);
        s
    }

    /// `mov [rbx+8], eax` (89 43 08) writes 4 bytes at RBX+8 (SDM Vol. 2, MOV); a write
    /// watchpoint there fires, a read watchpoint does not.
    #[test]
    fn a_store_hits_a_write_watchpoint_only() {
        let mut s = state64();
        s.gpr[3] = 0x1000;
        let mut p = Points::default();
        p.watches.push(Watchpoint { addr: 0x100a, len: 1, kind: WatchKind::Read });
        let acc = p.predict(&s, &[0x89, 0x43, 0x08]);
        assert_eq!(acc, vec![Access { addr: 0x1008, len: 4, read: false, write: true }]);
        assert_eq!(p.watch_hit(&acc), None);
        p.watches.push(Watchpoint { addr: 0x100b, len: 4, kind: WatchKind::Write });
        assert_eq!(p.watch_hit(&acc), Some((WatchKind::Write, 0x100b)));
    }

    /// `rep stosb` (F3 AA) with RCX = 16 stores 16 bytes from RDI upward when DF = 0.
    #[test]
    fn rep_stos_covers_every_element() {
        let mut s = state64();
        s.gpr[7] = 0x2000;
        s.gpr[1] = 16;
        let mut p = Points::default();
        p.watches.push(Watchpoint { addr: 0x200f, len: 1, kind: WatchKind::Write });
        let acc = p.predict(&s, &[0xf3, 0xaa]);
        assert_eq!(p.watch_hit(&acc), Some((WatchKind::Write, 0x200f)));
        s.gpr[1] = 15;
        let acc = p.predict(&s, &[0xf3, 0xaa]);
        assert_eq!(p.watch_hit(&acc), None);
    }
}
