//! Decoding guest code into blocks of [`Instr`] entries (ARCHITECTURE.md, decision 4).
//!
//! iced-x86 decodes each instruction once; `build_instr` turns it into a compact entry: the
//! handler chosen by `table::lookup` for the instruction's `Code` and operand form (register or
//! memory), plus its operands resolved to register numbers, immediate and addressing form. A
//! block ends at a control transfer (the table's `FormInfo::ends_block`), at the end of the
//! page, or after `MAX_BLOCK` instructions.
//! An instruction that crosses a page end is decoded from both pages and ends the block.

pub mod table;

use crate::cpu::Cpu;
use crate::decoded::{Instr, NO_REG, NO_SEG};
use crate::exception::{Fault, Stop};
use iced_x86::{Decoder, DecoderError, DecoderOptions, Instruction, OpKind, Register};

/// Longest block, in instructions.
pub const MAX_BLOCK: usize = 128;

/// A freshly decoded block, before the cache files it.
pub struct Decoded {
    pub instrs: Vec<Instr>,
    pub end_rip: u64,
    pub pages: [u64; 2],
    pub ends_in_branch: bool,
}

/// Decodes the block at linear address `la` (physical `pa`), starting at `cpu.state.rip`.
///
/// # Errors
/// The fault a fetch of the block's bytes raises (only possible for an instruction crossing into
/// the next page; the first page was translated by the caller).
pub fn decode_block(cpu: &mut Cpu, la: u64, pa: u64) -> Result<Decoded, Stop> {
    decode_block_max(cpu, la, pa, MAX_BLOCK)
}

/// `decode_block` with at most `max` instructions (1 for single-stepping).
///
/// # Errors
/// As `decode_block`.
pub fn decode_block_max(cpu: &mut Cpu, la: u64, pa: u64, max: usize) -> Result<Decoded, Stop> {
    let bits = cpu.state.code_bits();
    let rip = cpu.state.rip;
    let avail = 4096 - (pa & 0xfff) as usize;
    let bytes = match cpu.ram.slice(pa, avail) {
        Some(b) => b.to_vec(),
        // Outside RAM only the BIOS ROM's high copy holds code (the reset vector's region).
        None => match cpu.rom.as_ref().and_then(|r| r.high_bytes(pa, avail)) {
            Some(b) => b.to_vec(),
            // Executing from MMIO: not supported; the guest sees a #GP.
            None => return Err(Stop::Fault(Fault::gp0())),
        },
    };
    if let Some(rom) = cpu.rom.as_mut() {
        // A firmware boot's timeline marks the kernel's first block (`firmware::shadow`).
        rom.note_decode(pa, &bytes, cpu.retired);
    }
    let mut decoder = Decoder::with_ip(bits, &bytes, rip, DecoderOptions::NONE);
    let mut out = Vec::with_capacity(16);
    let mut insn = Instruction::default();
    let mut pages = [pa & !0xfff, u64::MAX];
    let mut end_rip = rip;
    let mut ends_in_branch = false;
    while decoder.can_decode() && out.len() < max {
        let pos = decoder.position();
        decoder.decode_out(&mut insn);
        if insn.is_invalid() && decoder.last_error() == DecoderError::NoMoreBytes {
            if !out.is_empty() {
                break; // the crossing instruction starts the next block
            }
            // The first instruction crosses into the next page: fetch up to 15 bytes from both.
            let next_la = (la & !0xfff).wrapping_add(4096);
            let pa2 = cpu.translate_fetch(next_la)?;
            let mut buf = bytes[pos..].to_vec();
            let need = 15usize.saturating_sub(buf.len());
            let rom = cpu.rom.as_ref().and_then(|r| r.high_bytes(pa2, need));
            buf.extend_from_slice(cpu.ram.slice(pa2, need).or(rom).unwrap_or(&[]));
            let mut d2 = Decoder::with_ip(bits, &buf, rip, DecoderOptions::NONE);
            d2.decode_out(&mut insn);
            pages[1] = pa2 & !0xfff;
            ends_in_branch = table::info(insn.code()).sets_rip;
            end_rip = insn.next_ip();
            out.push(build_instr(&insn, bits));
            break;
        }
        out.push(build_instr(&insn, bits));
        end_rip = insn.next_ip();
        // The table's block-end bits (iced-x86's flow control; `INVALID` ends a block too).
        let info = table::info(insn.code());
        if info.ends_block {
            ends_in_branch = info.sets_rip;
            break;
        }
    }
    Ok(Decoded { instrs: out, end_rip, pages, ends_in_branch })
}

/// Register number as the handlers use it: GPRs 0-15 (AH, CH, DH, BH are 16-19), segment
/// registers 0-5, XMM/ST/CR/DR by their number.
pub fn reg_id(r: Register) -> u8 {
    match r {
        Register::None => NO_REG,
        Register::AH | Register::CH | Register::DH | Register::BH => 16 + (r as u8 - Register::AH as u8),
        _ if r.is_gpr() => r.full_register().number() as u8,
        _ => r.number() as u8,
    }
}

fn size_mask(bytes: usize) -> u64 {
    match bytes {
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

/// Turns one decoded instruction into an entry.
pub fn build_instr(insn: &Instruction, bits: u32) -> Instr {
    let code = insn.code();
    let has_mem = (0..insn.op_count()).any(|i| insn.op_kind(i) == OpKind::Memory);
    let exec = if insn.is_invalid() {
        crate::decoded::exec_ud
    } else {
        table::lookup(code, has_mem).unwrap_or(crate::decoded::exec_unimplemented)
    };
    let lmask = if bits == 64 { u64::MAX } else { 0xffff_ffff };
    let mut e = Instr {
        exec,
        next_rip: insn.next_ip(),
        imm: 0,
        disp: 0,
        amask: size_mask(bits as usize / 8),
        lmask,
        dst: NO_REG,
        src: NO_REG,
        src2: NO_REG,
        base: NO_REG,
        index: NO_REG,
        scale: 0,
        seg: NO_SEG,
        len: insn.len() as u8,
        code: code as u16,
        rep: if insn.has_repne_prefix() { 2 } else { (insn.has_rep_prefix() || insn.has_repe_prefix()) as u8 },
        opsize: 0,
        asize: (bits / 8) as u8,
        _pad: [0; 3],
    };
    let seg_of = |r: Register| -> u8 {
        let n = reg_id(r);
        if bits == 64 && n < 4 {
            NO_SEG
        } else {
            n
        }
    };
    let mut have_imm = false;
    for i in 0..insn.op_count() {
        match insn.op_kind(i) {
            OpKind::Register => {
                let r = insn.op_register(i);
                // Register operands land by operand position: a memory or immediate operand
                // keeps its slot, so `op m, r` has its register in `src`.
                match i {
                    0 => {
                        e.opsize = r.size() as u8;
                        e.dst = reg_id(r);
                    }
                    1 => e.src = reg_id(r),
                    2 => e.src2 = reg_id(r),
                    _ => {}
                }
            }
            OpKind::Memory => {
                let base = insn.memory_base();
                let index = insn.memory_index();
                let asize = if base != Register::None {
                    base.size()
                } else if index != Register::None {
                    index.size()
                } else {
                    match insn.memory_displ_size() {
                        2 | 4 | 8 => insn.memory_displ_size() as usize,
                        _ => bits as usize / 8,
                    }
                };
                e.asize = asize as u8;
                e.amask = size_mask(asize);
                e.disp = insn.memory_displacement64();
                if base == Register::RIP || base == Register::EIP {
                    e.base = NO_REG; // iced already resolved the target into the displacement
                } else {
                    e.base = reg_id(base);
                }
                e.index = reg_id(index);
                e.scale = insn.memory_index_scale().trailing_zeros() as u8;
                e.seg = seg_of(insn.memory_segment());
                if i == 0 {
                    e.opsize = insn.memory_size().size() as u8;
                }
            }
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                e.imm = insn.near_branch_target();
            }
            OpKind::FarBranch16 | OpKind::FarBranch32 => {
                e.imm = (insn.far_branch_selector() as u64) << 32 | insn.far_branch32() as u64;
            }
            OpKind::MemorySegSI
            | OpKind::MemorySegESI
            | OpKind::MemorySegRSI
            | OpKind::MemorySegDI
            | OpKind::MemorySegEDI
            | OpKind::MemorySegRDI => {
                e.seg = seg_of(insn.memory_segment());
                e.asize = match insn.op_kind(i) {
                    OpKind::MemorySegSI | OpKind::MemorySegDI => 2,
                    OpKind::MemorySegESI | OpKind::MemorySegEDI => 4,
                    _ => 8,
                };
                e.amask = size_mask(e.asize as usize);
                if i == 0 {
                    e.opsize = insn.memory_size().size() as u8;
                }
            }
            OpKind::MemoryESDI | OpKind::MemoryESEDI | OpKind::MemoryESRDI => {
                e.asize = match insn.op_kind(i) {
                    OpKind::MemoryESDI => 2,
                    OpKind::MemoryESEDI => 4,
                    _ => 8,
                };
                e.amask = size_mask(e.asize as usize);
                if i == 0 {
                    e.opsize = insn.memory_size().size() as u8;
                }
            }
            kind @ (OpKind::Immediate8
            | OpKind::Immediate8_2nd
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64) => {
                if !have_imm {
                    e.imm = insn.immediate(i);
                    have_imm = true;
                } else if kind == OpKind::Immediate8_2nd {
                    // ENTER's nesting level, EXTRQ/INSERTQ's second byte.
                    e.src2 = insn.immediate8_2nd();
                } else {
                    e.src2 = insn.immediate(i) as u8;
                }
            }
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_one(bytes: &[u8], ip: u64) -> Instr {
        let mut d = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
        build_instr(&d.decode(), 64)
    }

    #[test]
    fn rip_relative_operand_is_resolved_to_an_absolute_address() {
        // mov rax, [rip+0x10] at 0x1000, 7 bytes long: target 0x1017 (SDM Vol. 2, 2.2.1.6).
        let e = decode_one(&[0x48, 0x8b, 0x05, 0x10, 0, 0, 0], 0x1000);
        assert_eq!(e.disp, 0x1017);
        assert_eq!(e.base, NO_REG);
        assert_eq!(e.next_rip, 0x1007);
        assert_eq!(e.dst, 0);
    }

    #[test]
    fn sib_operand_and_high_byte_register() {
        // mov ah, [rbx + rsi*4 + 8] = 8A 64 B3 08
        let e = decode_one(&[0x8a, 0x64, 0xb3, 0x08], 0);
        assert_eq!((e.dst, e.base, e.index, e.scale, e.disp), (16, 3, 6, 2, 8));
        // mov r9b, [fs:r12 - 1] with REX: 64 45 8A 4C 24 FF
        let e = decode_one(&[0x64, 0x45, 0x8a, 0x4c, 0x24, 0xff], 0);
        assert_eq!((e.dst, e.base, e.index, e.seg), (9, 12, NO_REG, 4));
        assert_eq!(e.disp, u64::MAX);
    }
}
