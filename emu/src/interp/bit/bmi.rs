//! BMI1 and BMI2 (SDM Vol. 2, those entries; advertised in CPUID.(EAX=7,ECX=0):EBX bits 3 and
//! 8): ANDN, BEXTR, BLSI, BLSMSK, BLSR, TZCNT; BZHI, MULX, PDEP, PEXT, RORX, SARX, SHLX, SHRX.
//! 32- and 64-bit forms, register and memory sources. All are VEX-encoded except TZCNT.
//!
//! Operands follow decode's positional slots: `dst` is operand 0, `src` operand 1 and `src2`
//! operand 2 when they are registers; the memory operand (always the r/m slot) is read through
//! the effective address. Undefined flags (AF and PF for most, SF too for BEXTR) are produced as
//! the reference CPU produces them (checked by the host tests): see each handler.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{ExecResult, Stop};
use crate::flags::{LazyFlags, Width, W32, W64};
use crate::state::rflags;
use iced_x86::Code as C;

/// CPUID.(EAX=7,ECX=0):EBX: BMI1 (3), BMI2 (8).
pub const CPUID7_EBX: u32 = (1 << 3) | (1 << 8);

/// The r/m operand: register `reg` or memory.
#[inline(always)]
fn rm<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr, reg: u8) -> Result<u64, Stop> {
    if MEM {
        cpu.read::<W>(cpu.ea(e))
    } else {
        Ok(cpu.get::<W>(reg))
    }
}

/// SF and ZF from `r`, CF as given, OF = AF = PF = 0 (AF and PF as the reference CPU).
#[inline(always)]
fn logic_flags<W: Width>(lf: &mut LazyFlags, r: u64, cf: bool) {
    lf.set_oszapc_logic::<W>(r);
    if cf {
        lf.force_cf(true);
    }
    // PF is undefined; the reference CPU clears it. The lazy record expresses that through its
    // parity delta (flags.rs): flip the computed parity when it would read as even.
    lf.aux |= (((r as u8).count_ones() & 1 == 0) as u64) << 8;
}

/// `andn r, r, r/m`: dst = !src & r/m.
pub fn exec_andn<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let b = rm::<W, MEM>(cpu, e, e.src2)?;
    let r = !cpu.get::<W>(e.src) & b & W::MASK;
    cpu.set::<W>(e.dst, r);
    logic_flags::<W>(&mut cpu.state.lazy, r, false);
    Ok(())
}

/// `bextr r, r/m, r`: the field of r/m at start `ctl[7:0]`, length `ctl[15:8]`.
pub fn exec_bextr<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = rm::<W, MEM>(cpu, e, e.src)?;
    let ctl = cpu.get::<W>(e.src2);
    let start = (ctl & 0xff) as u32;
    let len = ((ctl >> 8) & 0xff) as u32;
    let shifted = v.checked_shr(start).unwrap_or(0);
    let r = if len >= 64 { shifted } else { shifted & ((1u64 << len) - 1) } & W::MASK;
    cpu.set::<W>(e.dst, r);
    logic_flags::<W>(&mut cpu.state.lazy, r, false);
    Ok(())
}

/// BLSI / BLSMSK / BLSR: `KIND` 0 = lowest set bit, 1 = mask up to it, 2 = reset it.
pub fn exec_bls<W: Width, const KIND: u8, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = rm::<W, MEM>(cpu, e, e.src)?;
    let m1 = v.wrapping_sub(1) & W::MASK;
    let (r, cf) = match KIND {
        0 => (v & v.wrapping_neg() & W::MASK, v != 0),
        1 => ((v ^ m1) & W::MASK, v == 0),
        _ => (v & m1, v == 0),
    };
    cpu.set::<W>(e.dst, r);
    logic_flags::<W>(&mut cpu.state.lazy, r, cf);
    Ok(())
}

/// `tzcnt r, r/m`: trailing zero count (the width for 0); CF = source is 0, ZF = result is 0.
pub fn exec_tzcnt<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = rm::<W, MEM>(cpu, e, e.src)?;
    let n = if v == 0 { W::BITS as u64 } else { v.trailing_zeros() as u64 };
    cpu.set::<W>(e.dst, n);
    let mut f = 0;
    if v == 0 {
        f |= rflags::CF;
    }
    if n == 0 {
        f |= rflags::ZF;
    }
    cpu.state.lazy = LazyFlags::from_rflags(f);
    Ok(())
}

/// `bzhi r, r/m, r`: clears the bits from index `src2[7:0]` up; CF = index past the top.
pub fn exec_bzhi<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = rm::<W, MEM>(cpu, e, e.src)?;
    let n = (cpu.get::<W>(e.src2) & 0xff) as u32;
    let r = if n < W::BITS { v & ((1u64 << n) - 1) } else { v };
    cpu.set::<W>(e.dst, r);
    logic_flags::<W>(&mut cpu.state.lazy, r, n > W::BITS - 1);
    Ok(())
}

/// `mulx hi, lo, r/m`: unsigned rDX * r/m without flags; `hi` wins when both name one register.
pub fn exec_mulx<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let b = rm::<W, MEM>(cpu, e, e.src2)?;
    let p = cpu.get::<W>(2) as u128 * b as u128;
    cpu.set::<W>(e.src, p as u64 & W::MASK);
    cpu.set::<W>(e.dst, (p >> W::BITS) as u64 & W::MASK);
    Ok(())
}

/// `pdep r, r, r/m`: deposits the low bits of `src` at the set bits of the mask.
pub fn exec_pdep<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let mut mask = rm::<W, MEM>(cpu, e, e.src2)?;
    let v = cpu.get::<W>(e.src);
    let (mut r, mut k) = (0u64, 0);
    while mask != 0 {
        let bit = mask & mask.wrapping_neg();
        if v >> k & 1 != 0 {
            r |= bit;
        }
        k += 1;
        mask &= mask - 1;
    }
    cpu.set::<W>(e.dst, r);
    Ok(())
}

/// `pext r, r, r/m`: gathers the bits of `src` at the set bits of the mask into the low bits.
pub fn exec_pext<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let mut mask = rm::<W, MEM>(cpu, e, e.src2)?;
    let v = cpu.get::<W>(e.src);
    let (mut r, mut k) = (0u64, 0);
    while mask != 0 {
        let bit = mask & mask.wrapping_neg();
        if v & bit != 0 {
            r |= 1 << k;
        }
        k += 1;
        mask &= mask - 1;
    }
    cpu.set::<W>(e.dst, r);
    Ok(())
}

/// `rorx r, r/m, imm8`: rotate right without flags.
pub fn exec_rorx<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = rm::<W, MEM>(cpu, e, e.src)?;
    let n = (e.imm as u32) & (W::BITS - 1);
    let r = if n == 0 { v } else { ((v >> n) | (v << (W::BITS - n))) & W::MASK };
    cpu.set::<W>(e.dst, r);
    Ok(())
}

/// SARX / SHLX / SHRX (`KIND` 0/1/2): shift r/m by `src2` (masked to the width) without flags.
pub fn exec_shx<W: Width, const KIND: u8, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = rm::<W, MEM>(cpu, e, e.src)?;
    let n = (cpu.get::<W>(e.src2) as u32) & (W::BITS - 1);
    let r = match KIND {
        0 => ((W::sext(v) as i64) >> n) as u64 & W::MASK,
        1 => (v << n) & W::MASK,
        _ => v >> n,
    };
    cpu.set::<W>(e.dst, r);
    Ok(())
}

macro_rules! rows2 {
    ($($code:ident => $h:ident $(, $k:literal)?);* $(;)?) => {
        &[ $( Row::rm(C::$code, $h::<W32 $(, $k)?, false>, $h::<W32 $(, $k)?, true>), )* ]
    };
}
macro_rules! rows4 {
    ($($code:ident => $h:ident $(, $k:literal)?);* $(;)?) => {
        &[ $( Row::rm(C::$code, $h::<W64 $(, $k)?, false>, $h::<W64 $(, $k)?, true>), )* ]
    };
}

pub(crate) const BMI32: &[Row] = rows2!(
    VEX_Andn_r32_r32_rm32 => exec_andn;
    VEX_Bextr_r32_rm32_r32 => exec_bextr;
    VEX_Blsi_r32_rm32 => exec_bls, 0;
    VEX_Blsmsk_r32_rm32 => exec_bls, 1;
    VEX_Blsr_r32_rm32 => exec_bls, 2;
    VEX_Bzhi_r32_rm32_r32 => exec_bzhi;
    VEX_Mulx_r32_r32_rm32 => exec_mulx;
    VEX_Pdep_r32_r32_rm32 => exec_pdep;
    VEX_Pext_r32_r32_rm32 => exec_pext;
    VEX_Rorx_r32_rm32_imm8 => exec_rorx;
    VEX_Sarx_r32_rm32_r32 => exec_shx, 0;
    VEX_Shlx_r32_rm32_r32 => exec_shx, 1;
    VEX_Shrx_r32_rm32_r32 => exec_shx, 2;
);
pub(crate) const BMI64: &[Row] = rows4!(
    VEX_Andn_r64_r64_rm64 => exec_andn;
    VEX_Bextr_r64_rm64_r64 => exec_bextr;
    VEX_Blsi_r64_rm64 => exec_bls, 0;
    VEX_Blsmsk_r64_rm64 => exec_bls, 1;
    VEX_Blsr_r64_rm64 => exec_bls, 2;
    VEX_Bzhi_r64_rm64_r64 => exec_bzhi;
    VEX_Mulx_r64_r64_rm64 => exec_mulx;
    VEX_Pdep_r64_r64_rm64 => exec_pdep;
    VEX_Pext_r64_r64_rm64 => exec_pext;
    VEX_Rorx_r64_rm64_imm8 => exec_rorx;
    VEX_Sarx_r64_rm64_r64 => exec_shx, 0;
    VEX_Shlx_r64_rm64_r64 => exec_shx, 1;
    VEX_Shrx_r64_rm64_r64 => exec_shx, 2;
);
pub(crate) const TZCNT: &[Row] = &[
    Row::rm(C::Tzcnt_r16_rm16, exec_tzcnt::<crate::flags::W16, false>, exec_tzcnt::<crate::flags::W16, true>),
    Row::rm(C::Tzcnt_r32_rm32, exec_tzcnt::<W32, false>, exec_tzcnt::<W32, true>),
    Row::rm(C::Tzcnt_r64_rm64, exec_tzcnt::<W64, false>, exec_tzcnt::<W64, true>),
];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::super::hosttest::{check, host, values, Regs, FLAGS, FLAG_INPUTS};

    /// Sources in RCX and memory; RDX alternates between full values and small bit indices /
    /// BEXTR controls (start, length bytes), so every boundary is crossed.
    fn cases() -> Vec<Regs> {
        let vs = values(64, 20);
        let mut out = Vec::new();
        for (i, &a) in vs.iter().enumerate() {
            for (j, &b) in vs.iter().enumerate().step_by(3) {
                for f in FLAG_INPUTS {
                    let small = ((j as u64 * 7 + i as u64) % 70) | (((i as u64 * 13) % 70) << 8);
                    let rdx = if (i + j) % 2 == 0 { b } else { small };
                    out.push(Regs {
                        rax: !a,
                        rcx: a,
                        rdx,
                        r8: b,
                        r9: a ^ b,
                        flags: f,
                        mem: [b, a, rdx, small, b, a, rdx, b],
                        ..Default::default()
                    });
                }
            }
        }
        out
    }

    #[test]
    fn andn_matches_the_host() {
        if !crate::interp::hosttest::host_has("bmi1") {
            return;
        }
        check(host!("andn eax, ecx, edx"), cases(), FLAGS);
        check(host!("andn rax, rcx, rdx"), cases(), FLAGS);
        check(host!("andn r8, rcx, qword ptr [r10]"), cases(), FLAGS);
        check(host!("andn eax, edx, dword ptr [r10 + 4]"), cases(), FLAGS);
    }

    #[test]
    fn bextr_matches_the_host() {
        if !crate::interp::hosttest::host_has("bmi1") {
            return;
        }
        check(host!("bextr eax, ecx, edx"), cases(), FLAGS);
        check(host!("bextr rax, rcx, rdx"), cases(), FLAGS);
        check(host!("bextr r8, qword ptr [r10], rdx"), cases(), FLAGS);
        check(host!("bextr eax, dword ptr [r10 - 8], edx"), cases(), FLAGS);
    }

    #[test]
    fn bls_matches_the_host() {
        if !crate::interp::hosttest::host_has("bmi1") {
            return;
        }
        check(host!("blsi eax, ecx"), cases(), FLAGS);
        check(host!("blsi rax, rcx"), cases(), FLAGS);
        check(host!("blsmsk eax, ecx"), cases(), FLAGS);
        check(host!("blsmsk rax, qword ptr [r10]"), cases(), FLAGS);
        check(host!("blsr eax, ecx"), cases(), FLAGS);
        check(host!("blsr rax, rcx"), cases(), FLAGS);
        check(host!("blsr r9d, dword ptr [r10 + 8]"), cases(), FLAGS);
    }

    #[test]
    fn bzhi_matches_the_host() {
        if !crate::interp::hosttest::host_has("bmi2") {
            return;
        }
        check(host!("bzhi eax, ecx, edx"), cases(), FLAGS);
        check(host!("bzhi rax, rcx, rdx"), cases(), FLAGS);
        check(host!("bzhi r8, qword ptr [r10], rdx"), cases(), FLAGS);
    }

    #[test]
    fn mulx_matches_the_host() {
        if !crate::interp::hosttest::host_has("bmi2") {
            return;
        }
        check(host!("mulx r8, r9, rcx"), cases(), FLAGS);
        check(host!("mulx r8d, r9d, ecx"), cases(), FLAGS);
        check(host!("mulx rax, rax, rcx"), cases(), FLAGS);
        check(host!("mulx rcx, rax, qword ptr [r10]"), cases(), FLAGS);
        check(host!("mulx eax, ecx, dword ptr [r10 + 4]"), cases(), FLAGS);
    }

    #[test]
    fn pdep_pext_matches_the_host() {
        if !crate::interp::hosttest::host_has("bmi2") {
            return;
        }
        check(host!("pdep rax, rcx, rdx"), cases(), FLAGS);
        check(host!("pdep eax, ecx, edx"), cases(), FLAGS);
        check(host!("pext rax, rcx, rdx"), cases(), FLAGS);
        check(host!("pext eax, ecx, edx"), cases(), FLAGS);
        check(host!("pdep r8, rcx, qword ptr [r10]"), cases(), FLAGS);
        check(host!("pext r9d, ecx, dword ptr [r10 - 4]"), cases(), FLAGS);
    }

    #[test]
    fn rorx_shifts_matches_the_host() {
        if !crate::interp::hosttest::host_has("bmi2") {
            return;
        }
        check(host!("rorx eax, ecx, 5"), cases(), FLAGS);
        check(host!("rorx rax, rcx, 63"), cases(), FLAGS);
        check(host!("rorx r8, qword ptr [r10], 0"), cases(), FLAGS);
        check(host!("sarx eax, ecx, edx"), cases(), FLAGS);
        check(host!("sarx rax, rcx, rdx"), cases(), FLAGS);
        check(host!("shlx eax, ecx, edx"), cases(), FLAGS);
        check(host!("shlx rax, qword ptr [r10], rdx"), cases(), FLAGS);
        check(host!("shrx eax, ecx, edx"), cases(), FLAGS);
        check(host!("shrx rax, rcx, rdx"), cases(), FLAGS);
    }

    #[test]
    fn tzcnt_matches_the_host() {
        if !crate::interp::hosttest::host_has("bmi1") {
            return;
        }
        check(host!("tzcnt ax, cx"), cases(), FLAGS);
        check(host!("tzcnt eax, ecx"), cases(), FLAGS);
        check(host!("tzcnt rax, rcx"), cases(), FLAGS);
        check(host!("tzcnt r8, qword ptr [r10]"), cases(), FLAGS);
        check(host!("tzcnt ax, word ptr [r10 + 2]"), cases(), FLAGS);
    }
}
