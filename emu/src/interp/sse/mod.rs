//! SSE and SSE2 (tier 0): the 128-bit XMM registers, MXCSR and FXSAVE/FXRSTOR, legacy
//! (non-VEX) encodings only. SDM Vol. 1, chapters 10-11; Vol. 2 for each instruction.
//!
//! | file | what it holds |
//! |---|---|
//! | `float.rs` | the exact IEEE binary32/64 arithmetic with x86 flags, NaN rules, DAZ/FTZ |
//! | `lanes.rs` | per-lane helpers over a 128-bit value |
//! | `moves.rs` | MOVAPS ... MOVQ, MOVMSK*, PMOVMSKB, non-temporal stores, MASKMOVDQU |
//! | `int_arith.rs` | PADD/PSUB (incl. saturating), multiplies, averages, min/max, PSADBW, compares |
//! | `int_logic_shift.rs` | AND/ANDN/OR/XOR (PS/PD and P*), PSLL/PSRL/PSRA, PSLLDQ/PSRLDQ |
//! | `pack_shuffle.rs` | PACK*, PUNPCK*, UNPCK*PS/PD, SHUFPS/PD, PSHUF*, PINSRW/PEXTRW |
//! | `fp_arith.rs` | ADD/SUB/MUL/DIV/SQRT/MIN/MAX PS/PD/SS/SD, RCP/RSQRT, host fast paths |
//! | `fp_compare.rs` | CMPPS/PD/SS/SD, COMISS/SD, UCOMISS/SD |
//! | `convert.rs` | the CVT* family |
//! | `mxcsr.rs` | LDMXCSR/STMXCSR, fences, prefetches, CLFLUSH |
//! | `fxsave.rs` | FXSAVE/FXRSTOR (64-bit layout) |
//! | `tests/util.rs` | tests: one instruction run natively and in tier 0 from the same bytes |
//! | `host_vectors.rs` | tests: recorded host results (`generated/`) replayed on any host |
//!
//! Conventions: `Instr::dst`/`src`/`src2` hold the XMM (or GPR) numbers of operands 0/1/2, so a
//! store's register is `src`;
//! `imm` the immediate. A 128-bit memory access reads both halves before anything is written,
//! and a store translates both halves for write first, so a fault changes nothing. Legacy SSE
//! 128-bit memory operands must be 16-byte aligned (#GP(0)) except in MOVUPS/MOVUPD/MOVDQU.
//! FP results commit only after the MXCSR flags are checked: an unmasked exception raises #XM
//! (or #UD when CR4.OSXMMEXCPT is clear) with the flags set and the destination unchanged.
//!
//! Left out: MMX and the instructions that take MMX operands (CVTPI2PS, MOVQ2DQ, ...), SSE3 and
//! later (not reported in CPUID, so they raise #UD through the unimplemented path).

pub mod convert;
pub mod float;
pub mod fp_arith;
pub mod fp_compare;
pub mod fxsave;
#[cfg(test)]
mod host_vectors;
pub mod int_arith;
pub mod int_logic_shift;
pub mod lanes;
pub mod moves;
pub mod mxcsr;
pub mod pack_shuffle;
#[cfg(test)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_macros, unused_imports))]
#[path = "tests/util.rs"]
mod testutil;

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{vector, ExecResult, Fault, Stop};
use crate::flags::{W32, W64};
use crate::state::ctrl;
use float::FpEnv;

pub(crate) const ROWS: &[&[Row]] = &[
    moves::ROWS,
    int_arith::ROWS,
    int_logic_shift::ROWS,
    pack_shuffle::ROWS,
    fp_arith::ROWS,
    fp_compare::ROWS,
    convert::ROWS,
    mxcsr::ROWS,
    fxsave::ROWS,
];

/// CPUID.1:EDX bits for what this family implements: FXSR (24), SSE (25), SSE2 (26).
pub const CPUID1_EDX: u32 = (1 << 24) | (1 << 25) | (1 << 26);
/// CPUID.1:ECX bits (SSE3 0, SSSE3 9, SSE4.1 19, SSE4.2 20, POPCNT 23 — only when implemented).
pub const CPUID1_ECX: u32 = 0;

/// MXCSR bits that may be set (SDM Vol. 1, 10.2.3; DAZ is supported, bits 31:16 reserved).
pub const MXCSR_MASK: u32 = 0xffff;

/// The XMM register `r` as one little-endian 128-bit value.
#[inline(always)]
pub fn xmm(cpu: &Cpu, r: u8) -> u128 {
    let x = cpu.state.xmm[(r & 15) as usize];
    x[0] as u128 | (x[1] as u128) << 64
}

#[inline(always)]
pub fn set_xmm(cpu: &mut Cpu, r: u8, v: u128) {
    cpu.state.xmm[(r & 15) as usize] = [v as u64, (v >> 64) as u64];
}

/// The checks every SSE instruction makes first (SDM Vol. 3, 13.1 and the "SIMD Floating-Point
/// Exceptions" tables of Vol. 2, 2.5): CR0.EM or a clear CR4.OSFXSR give #UD, CR0.TS gives #NM.
#[inline(always)]
pub fn check(cpu: &Cpu) -> Result<(), Stop> {
    let s = &cpu.state;
    if s.cr0 & (ctrl::CR0_EM | ctrl::CR0_TS) == 0 && s.cr4 & ctrl::CR4_OSFXSR != 0 {
        return Ok(());
    }
    check_slow(cpu)
}

#[inline(never)]
fn check_slow(cpu: &Cpu) -> Result<(), Stop> {
    let s = &cpu.state;
    if s.cr0 & ctrl::CR0_EM != 0 || s.cr4 & ctrl::CR4_OSFXSR == 0 {
        return Err(Stop::Fault(Fault::ud()));
    }
    Err(Stop::Fault(Fault::new(vector::NM)))
}

/// Reads 128 bits at `la`; `aligned` forms raise #GP(0) unless `la` is 16-byte aligned.
#[inline(always)]
pub fn read128(cpu: &mut Cpu, la: u64, aligned: bool) -> Result<u128, Stop> {
    if aligned && la & 15 != 0 {
        return Err(Stop::Fault(Fault::gp0()));
    }
    let lo = cpu.read::<W64>(la)?;
    let hi = cpu.read::<W64>(la.wrapping_add(8))?;
    Ok(lo as u128 | (hi as u128) << 64)
}

/// Writes 128 bits at `la`: both halves are translated for write before either is stored.
#[inline(always)]
pub fn write128(cpu: &mut Cpu, la: u64, v: u128, aligned: bool) -> ExecResult {
    if aligned && la & 15 != 0 {
        return Err(Stop::Fault(Fault::gp0()));
    }
    let lo = cpu.translate_rmw::<W64>(la)?;
    let hi = cpu.translate_rmw::<W64>(la.wrapping_add(8))?;
    cpu.write_loc::<W64>(lo, v as u64);
    cpu.write_loc::<W64>(hi, (v >> 64) as u64);
    Ok(())
}

/// Adds `flags` to MXCSR; any of them unmasked raises #XM (#UD without CR4.OSXMMEXCPT), in
/// which case the caller must not write its destination (SDM Vol. 1, 11.5.3). The
/// pre-computation exceptions (IE, ZE, DE) of all lanes are examined first: if one of them is
/// unmasked, no lane is computed, so only they are reported; otherwise the post-computation
/// flags (OE, UE, PE) join them (AMD64 APM Vol. 1, 4.10.3 gives the same two-step order).
#[inline(always)]
pub fn commit_fp(cpu: &mut Cpu, flags: u32) -> ExecResult {
    if flags == 0 {
        return Ok(());
    }
    let masks = cpu.state.mxcsr >> 7;
    let pre = flags & (float::IE | float::ZE | float::DE);
    let reported = if pre & !masks != 0 { pre } else { flags };
    cpu.state.mxcsr |= reported;
    if reported & !masks & 0x3f != 0 {
        return Err(Stop::Fault(if cpu.state.cr4 & ctrl::CR4_OSXMMEXCPT != 0 {
            Fault::new(vector::XM)
        } else {
            Fault::ud()
        }));
    }
    Ok(())
}

/// Where a memory source operand comes from and how wide it is. The value is zero-extended.
pub trait Src {
    fn read(cpu: &mut Cpu, la: u64) -> Result<u128, Stop>;
}
/// 32-bit memory operand (scalar single).
pub struct M32;
/// 64-bit memory operand (scalar double, low-half loads).
pub struct M64;
/// 128-bit memory operand that must be 16-byte aligned.
pub struct M128;
/// 128-bit memory operand without alignment requirement.
pub struct M128U;
impl Src for M32 {
    #[inline(always)]
    fn read(cpu: &mut Cpu, la: u64) -> Result<u128, Stop> {
        Ok(cpu.read::<W32>(la)? as u128)
    }
}
impl Src for M64 {
    #[inline(always)]
    fn read(cpu: &mut Cpu, la: u64) -> Result<u128, Stop> {
        Ok(cpu.read::<W64>(la)? as u128)
    }
}
impl Src for M128 {
    #[inline(always)]
    fn read(cpu: &mut Cpu, la: u64) -> Result<u128, Stop> {
        read128(cpu, la, true)
    }
}
impl Src for M128U {
    #[inline(always)]
    fn read(cpu: &mut Cpu, la: u64) -> Result<u128, Stop> {
        read128(cpu, la, false)
    }
}

/// A two-operand XMM operation `dst = op(dst, src, imm)`. Integer operations ignore `env`;
/// floating-point ones (`FP = true`) read MXCSR from it and raise flags into it.
pub trait XOp {
    const FP: bool = false;
    fn apply(a: u128, b: u128, imm: u8, env: &mut FpEnv) -> u128;
}

#[inline(always)]
fn run<O: XOp>(cpu: &mut Cpu, a: u128, b: u128, imm: u8) -> Result<u128, Stop> {
    if O::FP {
        let mut env = FpEnv::from_mxcsr(cpu.state.mxcsr);
        let r = O::apply(a, b, imm, &mut env);
        commit_fp(cpu, env.flags)?;
        Ok(r)
    } else {
        let mut env = FpEnv::from_mxcsr(0x1f80);
        Ok(O::apply(a, b, imm, &mut env))
    }
}

/// `op xmm, xmm`
pub fn exec_xop_r_r<O: XOp>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let (a, b) = (xmm(cpu, e.dst), xmm(cpu, e.src));
    let r = run::<O>(cpu, a, b, e.imm as u8)?;
    set_xmm(cpu, e.dst, r);
    Ok(())
}

/// `op xmm, m` with the memory operand of kind `S`
pub fn exec_xop_r_m<O: XOp, S: Src>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let b = S::read(cpu, cpu.ea(e))?;
    let a = xmm(cpu, e.dst);
    let r = run::<O>(cpu, a, b, e.imm as u8)?;
    set_xmm(cpu, e.dst, r);
    Ok(())
}

/// `op xmm, imm8` (shifts by an immediate count)
pub fn exec_xop_r_i<O: XOp>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let a = xmm(cpu, e.dst);
    let r = run::<O>(cpu, a, 0, e.imm as u8)?;
    set_xmm(cpu, e.dst, r);
    Ok(())
}

/// A row for an `xmm, xmm/mem` operation.
macro_rules! xrow {
    ($code:ident, $op:ty, $src:ty) => {
        Row::rm(
            iced_x86::Code::$code,
            $crate::interp::sse::exec_xop_r_r::<$op>,
            $crate::interp::sse::exec_xop_r_m::<$op, $src>,
        )
    };
}
pub(crate) use xrow;
