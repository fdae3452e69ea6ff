//! x87 constant loads: FLD1, FLDZ, FLDPI, FLDL2E, FLDL2T, FLDLG2, FLDLN2 (SDM Vol. 2, "FLD1/
//! FLDL2T/FLDL2E/FLDPI/FLDLG2/FLDLN2/FLDZ").
//!
//! The values, rounded to 64 bits by RC with no PE, come from `x87float::load_constant` (one
//! table for the whole project); this file pushes them with the stack-overflow check of any
//! load. The random differential tests run every constant under every RC against the host.

use super::enter;
use super::load_store::push_loaded;
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::ExecResult;
use iced_x86::Code as C;
use x87float::{Constant, Control, Outcome};

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
    let c = match K {
        K_ONE => Constant::One,
        K_ZERO => Constant::Zero,
        K_PI => Constant::Pi,
        K_L2E => Constant::Log2E,
        K_L2T => Constant::Log2Ten,
        K_LG2 => Constant::Log10Two,
        _ => Constant::Ln2,
    };
    let v = x87float::load_constant(c, Control(cpu.state.fpu.fcw));
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
