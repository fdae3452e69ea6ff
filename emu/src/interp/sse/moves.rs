//! Data movement between XMM registers, memory and GPRs: MOVAPS/MOVAPD/MOVDQA (aligned),
//! MOVUPS/MOVUPD/MOVDQU, MOVSS/MOVSD, MOVLPS/MOVHPS/MOVLPD/MOVHPD, MOVHLPS/MOVLHPS,
//! MOVD/MOVQ (XMM and GPR forms), MOVMSKPS/MOVMSKPD/PMOVMSKB, the non-temporal stores
//! MOVNTPS/MOVNTPD/MOVNTDQ/MOVNTI (plain stores here: tier 0 has no caches to bypass) and
//! MASKMOVDQU (SDM Vol. 2, those entries). No MXCSR flags: values move as bits.
//! Left out: MOVQ2DQ/MOVDQ2Q and MASKMOVQ (MMX).

use super::lanes::{split32, split64, split8};
use super::{check, set_xmm, write128, xmm, Src, M128, M128U, M32, M64};
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::ExecResult;
use crate::flags::{Width, W32, W64, W8};
use crate::mmu::PhysLoc;
use iced_x86::Code as C;

const LOW64: u128 = u64::MAX as u128;

/// `mov xmm, xmm` (whole register; also the register forms of MOVAPS/MOVUPS/MOVDQA/...)
pub fn exec_movx_x_x(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = xmm(cpu, e.src);
    set_xmm(cpu, e.dst, v);
    Ok(())
}

/// `mov xmm, m` with `S` as wide as the load; the rest of the register is zeroed (MOVAPS,
/// MOVUPS, MOVSS/MOVSD/MOVQ/MOVD loads).
pub fn exec_movx_x_m<S: Src>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = S::read(cpu, cpu.ea(e))?;
    set_xmm(cpu, e.dst, v);
    Ok(())
}

/// `mov m128, xmm` (in store forms the register is operand 1: `src`)
pub fn exec_movx_m128_x<const ALIGNED: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = xmm(cpu, e.src);
    write128(cpu, cpu.ea(e), v, ALIGNED)
}

/// `mov m32/m64, xmm`: the low `W` bits (MOVSS, MOVSD, MOVLPS, MOVQ, MOVD stores).
pub fn exec_movx_m_x<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = xmm(cpu, e.src) as u64;
    cpu.write::<W>(cpu.ea(e), v & W::MASK)
}

/// `movhps/movhpd m64, xmm`: the high half.
pub fn exec_movhps_m64_x(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = (xmm(cpu, e.src) >> 64) as u64;
    cpu.write::<W64>(cpu.ea(e), v)
}

/// `movss xmm, xmm` (both directions): the low dword moves, the rest of dst stays.
pub fn exec_movss_x_x(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = (xmm(cpu, e.dst) & !(u32::MAX as u128)) | (xmm(cpu, e.src) & u32::MAX as u128);
    set_xmm(cpu, e.dst, v);
    Ok(())
}

/// `movsd xmm, xmm` (both directions): the low qword moves, the high one stays.
pub fn exec_movsd_x_x(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = (xmm(cpu, e.dst) & !LOW64) | (xmm(cpu, e.src) & LOW64);
    set_xmm(cpu, e.dst, v);
    Ok(())
}

/// `movq xmm, xmm` (F3 0F 7E and 66 0F D6): the low qword, the high one zeroed.
pub fn exec_movq_x_x(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = xmm(cpu, e.src) & LOW64;
    set_xmm(cpu, e.dst, v);
    Ok(())
}

/// `movlps/movlpd xmm, m64`: loads the low half, keeps the high.
pub fn exec_movlps_x_m64(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = cpu.read::<W64>(cpu.ea(e))?;
    let x = (xmm(cpu, e.dst) & !LOW64) | v as u128;
    set_xmm(cpu, e.dst, x);
    Ok(())
}

/// `movhps/movhpd xmm, m64`: loads the high half, keeps the low.
pub fn exec_movhps_x_m64(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = cpu.read::<W64>(cpu.ea(e))?;
    let x = (xmm(cpu, e.dst) & LOW64) | (v as u128) << 64;
    set_xmm(cpu, e.dst, x);
    Ok(())
}

/// `movhlps xmm1, xmm2`: xmm1[63:0] = xmm2[127:64].
pub fn exec_movhlps(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let x = (xmm(cpu, e.dst) & !LOW64) | xmm(cpu, e.src) >> 64;
    set_xmm(cpu, e.dst, x);
    Ok(())
}

/// `movlhps xmm1, xmm2`: xmm1[127:64] = xmm2[63:0].
pub fn exec_movlhps(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let x = (xmm(cpu, e.dst) & LOW64) | xmm(cpu, e.src) << 64;
    set_xmm(cpu, e.dst, x);
    Ok(())
}

/// `movd xmm, r32` / `movq xmm, r64`: zero-extended into the register.
pub fn exec_movd_x_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = cpu.get::<W>(e.src);
    set_xmm(cpu, e.dst, v as u128);
    Ok(())
}

/// `movd r32, xmm` / `movq r64, xmm` (a 32-bit write zero-extends the GPR).
pub fn exec_movd_r_x<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = xmm(cpu, e.src) as u64;
    cpu.set::<W>(e.dst, v & W::MASK);
    Ok(())
}

/// `movmskps r, xmm`: the four dword sign bits.
pub fn exec_movmskps(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let l = split32(xmm(cpu, e.src));
    let m = l.iter().enumerate().fold(0u64, |m, (i, x)| m | ((x >> 31) as u64) << i);
    cpu.set::<W64>(e.dst, m);
    Ok(())
}

/// `movmskpd r, xmm`: the two qword sign bits.
pub fn exec_movmskpd(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let l = split64(xmm(cpu, e.src));
    cpu.set::<W64>(e.dst, (l[0] >> 63) | (l[1] >> 63) << 1);
    Ok(())
}

/// `pmovmskb r, xmm`: the sixteen byte sign bits.
pub fn exec_pmovmskb(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let l = split8(xmm(cpu, e.src));
    let m = l.iter().enumerate().fold(0u64, |m, (i, x)| m | ((x >> 7) as u64) << i);
    cpu.set::<W64>(e.dst, m);
    Ok(())
}

/// `movnti m, r`: a GPR store (no SSE state involved, so no CR0/CR4 checks).
pub fn exec_movnti<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.get::<W>(e.src);
    cpu.write::<W>(cpu.ea(e), v)
}

/// `maskmovdqu xmm1, xmm2`: stores the bytes of xmm1 whose mask byte in xmm2 has its top bit
/// set, at DS:rDI (unaligned). Every selected byte is translated for write before any is
/// stored, so a fault leaves memory unchanged.
pub fn exec_maskmovdqu(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    // Operand 0 is the implicit [rDI], so xmm1 is `src` and xmm2 `src2`.
    let data = split8(xmm(cpu, e.src));
    let mask = split8(xmm(cpu, e.src2));
    let la = cpu.seg_addr(e.seg, cpu.state.gpr[7] & e.amask, e.lmask);
    let mut locs: [Option<PhysLoc>; 16] = [None; 16];
    for i in 0..16 {
        if mask[i] & 0x80 != 0 {
            locs[i] = Some(cpu.translate_rmw::<W8>(la.wrapping_add(i as u64) & e.lmask)?);
        }
    }
    for (i, loc) in locs.iter().enumerate() {
        if let Some(loc) = loc {
            cpu.write_loc::<W8>(*loc, data[i] as u64);
        }
    }
    Ok(())
}

const LOADS: &[Row] = &[
    Row::rm(C::Movaps_xmm_xmmm128, exec_movx_x_x, exec_movx_x_m::<M128>),
    Row::rm(C::Movapd_xmm_xmmm128, exec_movx_x_x, exec_movx_x_m::<M128>),
    Row::rm(C::Movdqa_xmm_xmmm128, exec_movx_x_x, exec_movx_x_m::<M128>),
    Row::rm(C::Movups_xmm_xmmm128, exec_movx_x_x, exec_movx_x_m::<M128U>),
    Row::rm(C::Movupd_xmm_xmmm128, exec_movx_x_x, exec_movx_x_m::<M128U>),
    Row::rm(C::Movdqu_xmm_xmmm128, exec_movx_x_x, exec_movx_x_m::<M128U>),
    Row::rm(C::Movaps_xmmm128_xmm, exec_movx_x_x, exec_movx_m128_x::<true>),
    Row::rm(C::Movapd_xmmm128_xmm, exec_movx_x_x, exec_movx_m128_x::<true>),
    Row::rm(C::Movdqa_xmmm128_xmm, exec_movx_x_x, exec_movx_m128_x::<true>),
    Row::rm(C::Movups_xmmm128_xmm, exec_movx_x_x, exec_movx_m128_x::<false>),
    Row::rm(C::Movupd_xmmm128_xmm, exec_movx_x_x, exec_movx_m128_x::<false>),
    Row::rm(C::Movdqu_xmmm128_xmm, exec_movx_x_x, exec_movx_m128_x::<false>),
    Row::mem(C::Movntps_m128_xmm, exec_movx_m128_x::<true>),
    Row::mem(C::Movntpd_m128_xmm, exec_movx_m128_x::<true>),
    Row::mem(C::Movntdq_m128_xmm, exec_movx_m128_x::<true>),
    Row::mem(C::Movnti_m32_r32, exec_movnti::<W32>),
    Row::mem(C::Movnti_m64_r64, exec_movnti::<W64>),
    Row::rm(C::Movss_xmm_xmmm32, exec_movss_x_x, exec_movx_x_m::<M32>),
    Row::rm(C::Movss_xmmm32_xmm, exec_movss_x_x, exec_movx_m_x::<W32>),
    Row::rm(C::Movsd_xmm_xmmm64, exec_movsd_x_x, exec_movx_x_m::<M64>),
    Row::rm(C::Movsd_xmmm64_xmm, exec_movsd_x_x, exec_movx_m_x::<W64>),
    Row::mem(C::Movlps_xmm_m64, exec_movlps_x_m64),
    Row::mem(C::Movlpd_xmm_m64, exec_movlps_x_m64),
    Row::mem(C::Movlps_m64_xmm, exec_movx_m_x::<W64>),
    Row::mem(C::Movlpd_m64_xmm, exec_movx_m_x::<W64>),
    Row::mem(C::Movhps_xmm_m64, exec_movhps_x_m64),
    Row::mem(C::Movhpd_xmm_m64, exec_movhps_x_m64),
    Row::mem(C::Movhps_m64_xmm, exec_movhps_m64_x),
    Row::mem(C::Movhpd_m64_xmm, exec_movhps_m64_x),
    Row::reg(C::Movhlps_xmm_xmm, exec_movhlps),
    Row::reg(C::Movlhps_xmm_xmm, exec_movlhps),
    Row::rm(C::Movd_xmm_rm32, exec_movd_x_r::<W32>, exec_movx_x_m::<M32>),
    Row::rm(C::Movq_xmm_rm64, exec_movd_x_r::<W64>, exec_movx_x_m::<M64>),
    Row::rm(C::Movd_rm32_xmm, exec_movd_r_x::<W32>, exec_movx_m_x::<W32>),
    Row::rm(C::Movq_rm64_xmm, exec_movd_r_x::<W64>, exec_movx_m_x::<W64>),
    Row::rm(C::Movq_xmm_xmmm64, exec_movq_x_x, exec_movx_x_m::<M64>),
    Row::rm(C::Movq_xmmm64_xmm, exec_movq_x_x, exec_movx_m_x::<W64>),
    Row::reg(C::Movmskps_r32_xmm, exec_movmskps),
    Row::reg(C::Movmskps_r64_xmm, exec_movmskps),
    Row::reg(C::Movmskpd_r32_xmm, exec_movmskpd),
    Row::reg(C::Movmskpd_r64_xmm, exec_movmskpd),
    Row::reg(C::Pmovmskb_r32_xmm, exec_pmovmskb),
    Row::reg(C::Pmovmskb_r64_xmm, exec_pmovmskb),
    Row::any(C::Maskmovdqu_rDI_xmm_xmm, exec_maskmovdqu),
];

pub(crate) const ROWS: &[Row] = LOADS;

#[cfg(all(test, target_arch = "x86_64"))]
mod tests;
