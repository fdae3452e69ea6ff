//! x87 constant loads: FLD1, FLDZ, FLDPI, FLDL2E, FLDL2T, FLDLG2, FLDLN2 (SDM Vol. 2, "FLD1/
//! FLDL2T/FLDL2E/FLDPI/FLDLG2/FLDLN2/FLDZ"; Vol. 1, chapter 8 "Load Constant Instructions").
//!
//! The FPU holds the irrational constants to 66 bits and rounds them to the 64-bit significand
//! by RC; no PE is signalled. Since each constant is irrational, the bits past the 66th are
//! never all zero, so: to nearest rounds up exactly when the two extra bits are 10 or 11;
//! up always rounds up; down and toward zero truncate (all constants are positive). The
//! 66-bit values were computed to 80 decimal digits (Python `decimal`) and the rounded results
//! are checked against the host FPU under every RC. PC does not apply.

use super::enter;
use super::load_store::push_loaded;
use crate::cpu::Cpu;
use crate::decode::table::Row;
use crate::exception::ExecResult;
use crate::interp::Instr;
use iced_x86::Code as C;
use x87float::{Control, Outcome, Rounding, F80};

/// A constant: biased exponent, the high 64 of its 66 significand bits, and the two extra bits.
#[derive(Clone, Copy)]
pub struct Constant {
    pub exp: u16,
    pub signif: u64,
    pub extra: u8,
}

pub const PI: Constant = Constant { exp: 0x4000, signif: 0xc90f_daa2_2168_c234, extra: 0b11 };
pub const L2E: Constant = Constant { exp: 0x3fff, signif: 0xb8aa_3b29_5c17_f0bb, extra: 0b10 };
pub const L2T: Constant = Constant { exp: 0x4000, signif: 0xd49a_784b_cd1b_8afe, extra: 0b01 };
pub const LG2: Constant = Constant { exp: 0x3ffd, signif: 0x9a20_9a84_fbcf_f798, extra: 0b10 };
pub const LN2: Constant = Constant { exp: 0x3ffe, signif: 0xb172_17f7_d1cf_79ab, extra: 0b11 };

/// The constant rounded to 64 bits by `rc` (none of these significands is all ones, so the
/// increment never carries out).
pub fn rounded(c: Constant, rc: Rounding) -> F80 {
    let up = match rc {
        Rounding::Nearest => c.extra >= 0b10,
        Rounding::Up => true,
        Rounding::Down | Rounding::Zero => false,
    };
    F80::new(false, c.exp, c.signif.wrapping_add(up as u64))
}

/// Constant numbers for the `K` const parameter.
const K_ONE: u8 = 0;
const K_ZERO: u8 = 1;
const K_PI: u8 = 2;
const K_L2E: u8 = 3;
const K_L2T: u8 = 4;
const K_LG2: u8 = 5;
const K_LN2: u8 = 6;

/// `fld1`, `fldz`, `fldpi`, `fldl2e`, `fldl2t`, `fldlg2`, `fldln2`
pub fn exec_fldconst<const K: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let rc = Control(cpu.state.fpu.fcw).rounding();
    let v = match K {
        K_ONE => F80::ONE,
        K_ZERO => F80::ZERO,
        K_PI => rounded(PI, rc),
        K_L2E => rounded(L2E, rc),
        K_L2T => rounded(L2T, rc),
        K_LG2 => rounded(LG2, rc),
        _ => rounded(LN2, rc),
    };
    push_loaded(cpu, e, Outcome { value: v, flags: 0, c1: false, store: true }, false);
    Ok(())
}

pub(crate) const CONSTANTS: &[Row] = &[
    Row::reg(C::Fld1, exec_fldconst::<K_ONE>),
    Row::reg(C::Fldz, exec_fldconst::<K_ZERO>),
    Row::reg(C::Fldpi, exec_fldconst::<K_PI>),
    Row::reg(C::Fldl2e, exec_fldconst::<K_L2E>),
    Row::reg(C::Fldl2t, exec_fldconst::<K_L2T>),
    Row::reg(C::Fldlg2, exec_fldconst::<K_LG2>),
    Row::reg(C::Fldln2, exec_fldconst::<K_LN2>),
];
