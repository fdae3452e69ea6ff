//! Hardware breakpoints DR0-DR3 (SDM Vol. 3, 18.2 and 18.3) for the software engines' stepping
//! rounds (`single_step.rs`): while DR7 enables any of them the machine runs one instruction
//! per round on tier 0 (so the JIT's translated code never runs past one), checks instruction
//! breakpoints before it and data breakpoints after it.
//!
//! - DR7: L0-L3/G0-G3 (bits 0-7) enable; R/Wn (bits 16+4n) 00 instruction, 01 data writes,
//!   11 data reads or writes (10, I/O, needs CR4.DE and is not modelled); LENn (bits 18+4n)
//!   00 one byte, 01 two, 11 four, 10 eight. A data breakpoint matches an access that touches
//!   any byte of the LEN-aligned range at DRn (18.2.5).
//! - An instruction breakpoint is a fault before the instruction (not taken with RFLAGS.RF set,
//!   18.3.1.1); data breakpoints are traps after it (18.3.1.2). DR6 B0-B3 report which
//!   breakpoints matched, and are cleared for the others, on every #DB the rounds raise.
//!
//! The addresses an instruction accesses come from iced-x86's instruction information
//! (`UsedMemory`, the operands' and the stack's addresses from the registers before the
//! instruction), so the memory fast paths stay untouched. Not modelled: I/O breakpoints, and
//! the iterations of a REP string instruction after its first element.

use crate::cpu::Cpu;
use crate::mmu::Access;
use crate::state::SegReg;
use iced_x86::{Code, Decoder, DecoderOptions, Instruction, InstructionInfoFactory, OpAccess, Register};

/// DR7's enable bits: L0, G0, ... L3, G3.
pub const DR7_ENABLES: u64 = 0xff;

/// Which kinds of access a breakpoint watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watch {
    Execute,
    Write,
    ReadWrite,
    Io,
}

/// The enabled breakpoints: (n, address, length, kind).
fn enabled(dr: &[u64; 8]) -> impl Iterator<Item = (usize, u64, u64, Watch)> + '_ {
    let dr7 = dr[7];
    (0..4).filter(move |n| dr7 >> (2 * n) & 3 != 0).map(move |n| {
        let watch = match dr7 >> (16 + 4 * n) & 3 {
            0 => Watch::Execute,
            1 => Watch::Write,
            2 => Watch::Io,
            _ => Watch::ReadWrite,
        };
        let len = match dr7 >> (18 + 4 * n) & 3 {
            0 => 1,
            1 => 2,
            2 => 8,
            _ => 4,
        };
        (n, dr[n], len, watch)
    })
}

/// DR6 B0-B3 for the instruction breakpoints at linear address `la`.
pub fn instruction_hits(dr: &[u64; 8], la: u64) -> u64 {
    enabled(dr).filter(|&(_, addr, _, w)| w == Watch::Execute && addr == la).fold(0, |acc, (n, ..)| acc | 1 << n)
}

/// One data access of an instruction: linear address, size in bytes, and whether it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAccess {
    pub la: u64,
    pub size: u64,
    pub write: bool,
}

/// DR6 B0-B3 for the data breakpoints `accesses` match.
pub fn data_hits(dr: &[u64; 8], accesses: &[DataAccess]) -> u64 {
    enabled(dr)
        .filter(|&(_, addr, len, w)| {
            let start = addr & !(len - 1);
            accesses.iter().any(|a| {
                let watched = w == Watch::ReadWrite || (w == Watch::Write && a.write);
                watched && a.la < start.wrapping_add(len) && start < a.la.wrapping_add(a.size)
            })
        })
        .fold(0, |acc, (n, ..)| acc | 1 << n)
}

/// The linear address of the next instruction (CS base + RIP; the base is 0 in 64-bit mode).
pub fn rip_linear(cpu: &Cpu) -> u64 {
    let s = &cpu.state;
    if s.code_bits() == 64 {
        s.rip
    } else {
        s.rip.wrapping_add(s.segs[SegReg::Cs as usize].base)
    }
}

/// Decodes the instruction at RIP without executing it (no fault is raised: bytes that cannot
/// be fetched end the window, and then the instruction decodes as invalid).
pub fn decode_next(cpu: &mut Cpu) -> Instruction {
    let la = rip_linear(cpu);
    let mut bytes = Vec::with_capacity(15);
    let fault_addr = cpu.fault_addr;
    'pages: for page in 0..2u64 {
        let start = if page == 0 { la } else { (la & !0xfff).wrapping_add(0x1000) };
        let Ok(pa) = cpu.translate_slow(start, Access::Exec) else { break };
        let room = (0x1000 - (start & 0xfff)) as usize;
        for i in 0..room.min(15 - bytes.len()) {
            let p = pa + i as u64;
            match cpu.ram.slice(p, 1) {
                Some(b) => bytes.push(b[0]),
                None => break 'pages,
            }
        }
        if bytes.len() == 15 {
            break;
        }
    }
    cpu.fault_addr = fault_addr;
    Decoder::with_ip(cpu.state.code_bits(), &bytes, cpu.state.rip, DecoderOptions::NONE).decode()
}

/// The data accesses `insn` makes, from the registers as they are before it runs.
pub fn data_accesses(cpu: &Cpu, insn: &Instruction) -> Vec<DataAccess> {
    if insn.is_invalid() {
        return Vec::new();
    }
    let s = &cpu.state;
    let long = s.code_bits() == 64;
    let value = |reg: Register, _elem: usize, _size: usize| -> Option<u64> {
        if reg.is_segment_register() {
            let seg = match reg {
                Register::ES => SegReg::Es,
                Register::CS => SegReg::Cs,
                Register::SS => SegReg::Ss,
                Register::DS => SegReg::Ds,
                Register::FS => SegReg::Fs,
                _ => SegReg::Gs,
            };
            // In 64-bit mode only FS and GS have a base (SDM Vol. 3, 3.2.4).
            return Some(if long && !matches!(seg, SegReg::Fs | SegReg::Gs) { 0 } else { s.segs[seg as usize].base });
        }
        if matches!(reg, Register::RIP | Register::EIP) {
            return Some(insn.next_ip());
        }
        if !reg.is_gpr() {
            return None;
        }
        let full = s.gpr[reg.full_register().number()];
        Some(match reg.size() {
            1 if matches!(reg, Register::AH | Register::CH | Register::DH | Register::BH) => full >> 8 & 0xff,
            1 => full & 0xff,
            2 => full & 0xffff,
            4 => full & 0xffff_ffff,
            _ => full,
        })
    };
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(insn);
    info.used_memory()
        .iter()
        .filter_map(|m| {
            let (read, write) = match m.access() {
                OpAccess::Read | OpAccess::CondRead => (true, false),
                OpAccess::Write | OpAccess::CondWrite => (false, true),
                OpAccess::ReadWrite | OpAccess::ReadCondWrite => (true, true),
                _ => (false, false),
            };
            if !read && !write {
                return None;
            }
            let la = m.virtual_address(0, value)?;
            let la = if long { la } else { la & 0xffff_ffff };
            Some(DataAccess { la, size: m.memory_size().size().max(1) as u64, write })
        })
        .collect()
}

/// True for MOV SS and POP SS: the instructions whose completion holds off #DB and interrupts
/// until the next instruction has run (SDM Vol. 3, 6.8.3).
pub fn loads_ss(insn: &Instruction) -> bool {
    match insn.code() {
        Code::Mov_Sreg_rm16 | Code::Mov_Sreg_r32m16 | Code::Mov_Sreg_r64m16 => insn.op0_register() == Register::SS,
        Code::Popw_SS | Code::Popd_SS => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dr(dr7: u64, addrs: [u64; 4]) -> [u64; 8] {
        [addrs[0], addrs[1], addrs[2], addrs[3], 0, 0, 0xffff_0ff0, dr7 | 0x400]
    }

    #[test]
    fn enables_kinds_and_lengths_follow_dr7() {
        // SDM Vol. 3, 18.2.4: G2 (bit 5) with R/W2 = 00 is an instruction breakpoint.
        let d = dr(1 << 5, [0, 0, 0x1000, 0]);
        assert_eq!(instruction_hits(&d, 0x1000), 1 << 2);
        assert_eq!(instruction_hits(&d, 0x1001), 0);
        assert_eq!(instruction_hits(&dr(0, [0, 0, 0x1000, 0]), 0x1000), 0, "not enabled");
        // kvm-unit-tests' 0x00d0040a: G0, G1; R/W1 = 01 (writes), LEN1 = 11 (4 bytes).
        let d = dr(0x00d0_000a, [0x9999, 0x2000, 0, 0]);
        let w = |la, size, write| DataAccess { la, size, write };
        assert_eq!(data_hits(&d, &[w(0x2000, 8, true)]), 1 << 1);
        assert_eq!(data_hits(&d, &[w(0x2000, 8, false)]), 0, "reads do not match a write watch");
        assert_eq!(data_hits(&d, &[w(0x1ffe, 2, true)]), 0, "ends before the range");
        assert_eq!(data_hits(&d, &[w(0x1fff, 2, true)]), 1 << 1, "overlaps its first byte");
        assert_eq!(data_hits(&d, &[w(0x2003, 1, true)]), 1 << 1);
        assert_eq!(data_hits(&d, &[w(0x2004, 1, true)]), 0);
        // R/W = 11 matches reads; LEN = 10 is 8 bytes, aligned down (18.2.5).
        let d = dr(0x00b0_0008, [0, 0x3005, 0, 0]);
        assert_eq!(data_hits(&d, &[w(0x3000, 1, false)]), 1 << 1);
        assert_eq!(data_hits(&d, &[w(0x3008, 1, false)]), 0);
        // The instruction breakpoint at DR0 is not a data breakpoint.
        assert_eq!(data_hits(&dr(0x3, [0x3000, 0, 0, 0]), &[w(0x3000, 1, true)]), 0);
    }
}
