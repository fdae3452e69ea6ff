//! x87 transcendental instructions: FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1
//! (SDM Vol. 2, those entries). The values come from `x87float::transcendental`
//! (argument order: ST(0) first, then ST(1)); this file does the stack work.
//!
//! FSIN, FCOS, FSINCOS and FPTAN set C2 and leave ST(0) unchanged when |ST(0)| >= 2^63.
//! FSINCOS and FPTAN push a second value and so need ST(7) empty (else a stack overflow, whose
//! masked response leaves the indefinite in ST(0) and pushes another); FPATAN, FYL2X and FYL2XP1
//! take ST(0) and ST(1), write ST(1) and pop.

use super::stack::{
    is_empty, push, push_overflows, raise, set_c1, set_st, st, stack_fault, underflow_to, write_result, FSW_C2,
};
use super::{enter, retire};
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::ExecResult;
use iced_x86::Code as C;
use x87float::{Control, F80};

/// One-operand functions on ST(0) for the `OP` const parameter.
const T_SIN: u8 = 0;
const T_COS: u8 = 1;
const T_F2XM1: u8 = 2;

fn set_c2(f: &mut crate::state::FpuState, c2: bool) {
    f.fsw = (f.fsw & !FSW_C2) | if c2 { FSW_C2 } else { 0 };
}

/// `fsin`, `fcos`, `f2xm1`: ST(0) = f(ST(0)).
pub fn exec_ftrans1<const OP: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    let cw = Control(f.fcw);
    let u = if is_empty(f, 0) {
        if OP != T_F2XM1 {
            set_c2(f, false);
        }
        underflow_to(f, 0, false)
    } else {
        let x = st(f, 0);
        match OP {
            T_F2XM1 => write_result(f, 0, x87float::f2xm1(x, cw), false),
            _ => {
                let t = if OP == T_SIN { x87float::fsin(x, cw) } else { x87float::fcos(x, cw) };
                set_c2(f, t.c2);
                if t.c2 {
                    false
                } else {
                    write_result(f, 0, t.result, false)
                }
            }
        }
    };
    retire(cpu, e, u, false);
    Ok(())
}

/// `fptan` (`SINCOS` = false: ST(0) = tan, then push 1.0) and `fsincos` (ST(0) = sin, then push
/// cos).
pub fn exec_fpush2<const SINCOS: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    let cw = Control(f.fcw);
    let u = if is_empty(f, 0) {
        set_c2(f, false);
        let u = stack_fault(f, false);
        if !u {
            set_st(f, 0, F80::INDEFINITE);
            push(f, F80::INDEFINITE);
        }
        u
    } else if push_overflows(f) {
        // A stack fault clears C2 (the reduction flag), as the host does.
        set_c2(f, false);
        let u = stack_fault(f, true);
        if !u {
            set_st(f, 0, F80::INDEFINITE);
            push(f, F80::INDEFINITE);
        }
        u
    } else {
        let x = st(f, 0);
        // (value left in ST(1), value pushed): FSINCOS leaves sin below and pushes cos, FPTAN
        // leaves tan below and pushes 1.0; x87float returns FSINCOS's cos as the main result.
        let (t, below, pushed) = if SINCOS {
            let (t, sin) = x87float::fsincos(x, cw);
            (t, sin, t.result.value)
        } else {
            // A NaN result (NaN or invalid operand) is pushed again instead of 1.0, as the host does.
            let t = x87float::fptan(x, cw);
            let v = t.result.value;
            (t, v, if v.is_nan() { v } else { F80::ONE })
        };
        set_c2(f, t.c2);
        if t.c2 {
            false
        } else {
            let u = raise(f, super::stack::prioritize(t.result.flags));
            set_c1(f, t.result.store && t.result.c1);
            if t.result.store {
                set_st(f, 0, below);
                push(f, pushed);
            }
            u
        }
    };
    retire(cpu, e, u, false);
    Ok(())
}

/// Two-operand functions for the `OP` const parameter: ST(1) = f(ST(0), ST(1)), then pop.
const T_PATAN: u8 = 0;
const T_YL2X: u8 = 1;
const T_YL2XP1: u8 = 2;

/// `fpatan`, `fyl2x`, `fyl2xp1`
pub fn exec_ftrans2<const OP: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    let cw = Control(f.fcw);
    let u = if is_empty(f, 0) || is_empty(f, 1) {
        underflow_to(f, 1, true)
    } else {
        let (a, b) = (st(f, 0), st(f, 1));
        let o = match OP {
            T_PATAN => x87float::fpatan(a, b, cw),
            T_YL2X => x87float::fyl2x(a, b, cw),
            _ => x87float::fyl2xp1(a, b, cw),
        };
        write_result(f, 1, o, true)
    };
    retire(cpu, e, u, false);
    Ok(())
}

pub(crate) const TRANSCENDENTAL: &[Row] = &[
    Row::reg(C::Fsin, exec_ftrans1::<T_SIN>),
    Row::reg(C::Fcos, exec_ftrans1::<T_COS>),
    Row::reg(C::F2xm1, exec_ftrans1::<T_F2XM1>),
    Row::reg(C::Fptan, exec_fpush2::<false>),
    Row::reg(C::Fsincos, exec_fpush2::<true>),
    Row::reg(C::Fpatan, exec_ftrans2::<T_PATAN>),
    Row::reg(C::Fyl2x, exec_ftrans2::<T_YL2X>),
    Row::reg(C::Fyl2xp1, exec_ftrans2::<T_YL2XP1>),
];
