//! x87 arithmetic: FADD, FSUB, FSUBR, FMUL, FDIV, FDIVR in all forms (m32fp, m64fp, m16int,
//! m32int, `st(0), st(i)`, `st(i), st(0)` and the popping `...p st(i), st(0)`), and the one-operand
//! instructions FSQRT, FABS, FCHS, FRNDINT, FSCALE, FXTRACT, FPREM, FPREM1 (SDM Vol. 2, those
//! entries; Vol. 1, chapter 8 "Basic Arithmetic Instructions").
//!
//! Every binary form computes `dest = dest OP src` with x87float's `OP(dest, src)`, where the
//! reversed operations (FSUBR, FDIVR) are x87float's `subr`/`divr`. A memory operand is converted
//! to extended precision first: its SNaN (IE) and denormal (DE) flags join the operation's, with
//! IE taking precedence over DE as for register operands. Empty operands are a stack underflow;
//! the masked response writes the QNaN indefinite to the destination (SDM Vol. 1, 8.5.1.1).
//! Leaves out: nothing of these instructions.

use super::stack::{
    is_empty, push, push_overflows, raise, set_c1, set_cc, set_st, st, stack_fault, underflow_to, write_result,
};
use super::{enter, retire};
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{ExecResult, Stop};
use crate::flags::{W16, W32, W64};
use iced_x86::Code as C;
use x87float::{Control, Outcome, DE, F80, IE, ZE};

/// Operation numbers for the `OP` const parameter.
pub const OP_ADD: u8 = 0;
pub const OP_MUL: u8 = 1;
pub const OP_SUB: u8 = 2;
pub const OP_SUBR: u8 = 3;
pub const OP_DIV: u8 = 4;
pub const OP_DIVR: u8 = 5;

/// Memory operand kinds for the `KIND` const parameter.
const M32FP: u8 = 0;
const M64FP: u8 = 1;
const M16INT: u8 = 2;
const M32INT: u8 = 3;

#[inline(always)]
fn apply(op: u8, a: F80, b: F80, cw: Control) -> Outcome {
    match op {
        OP_ADD => x87float::add(a, b, cw),
        OP_MUL => x87float::mul(a, b, cw),
        OP_SUB => x87float::sub(a, b, cw),
        OP_SUBR => x87float::subr(a, b, cw),
        OP_DIV => x87float::div(a, b, cw),
        _ => x87float::divr(a, b, cw),
    }
}

/// Joins the flags of a source conversion to those of the operation and recomputes whether the
/// destination may be written (unmasked IE, ZE, DE forbid it).
pub(super) fn join(conv: u8, st0: F80, mut o: Outcome, cw: Control) -> Outcome {
    // A denormal source with a NaN in ST(0) signals nothing (the NaN propagates).
    // A denormal source signals nothing when ST(0) is a NaN (the NaN propagates), and IE and
    // ZE outrank DE (SDM Vol. 1, 4.9.2; checked on the host).
    let conv = if st0.is_nan() || o.flags & (IE | ZE) != 0 { conv & !DE } else { conv };
    // An unmasked DE of the source stops the operation before it computes anything.
    if conv & DE & !cw.masks() != 0 {
        o.flags = conv | (o.flags & DE);
        o.store = false;
        return o;
    }
    let mut flags = o.flags | conv;
    if flags & IE != 0 {
        flags &= !DE;
    }
    o.flags = flags;
    o.store = flags & (IE | ZE | DE) & !cw.masks() == 0;
    o
}

/// An SNaN source converts to the QNaN with IE; operations must instead see the SNaN itself,
/// because NaN propagation prefers a QNaN operand over an SNaN (SDM Vol. 1, Table 4-7). The
/// extended format holds the SNaN exactly, so the quiet bit is cleared again and IE is left for
/// the operation to raise.
pub(super) fn keep_snan(mut o: Outcome) -> Outcome {
    if o.flags & IE != 0 && o.value.is_nan() {
        o.value.signif &= !(1 << 62);
        o.flags &= !IE;
    }
    o
}

/// Reads and converts the memory operand of a `KIND` form.
fn read_src<const KIND: u8>(cpu: &mut Cpu, e: &Instr) -> Result<Outcome, Stop> {
    let la = cpu.ea(e);
    let cw = Control(cpu.state.fpu.fcw);
    let exact = |v| Outcome { value: v, flags: 0, c1: false, store: true };
    Ok(match KIND {
        M32FP => keep_snan(x87float::from_f32(cpu.read::<W32>(la)? as u32, cw)),
        M64FP => keep_snan(x87float::from_f64(cpu.read::<W64>(la)?, cw)),
        M16INT => exact(x87float::from_i16(cpu.read::<W16>(la)? as i16)),
        _ => exact(x87float::from_i32(cpu.read::<W32>(la)? as i32)),
    })
}

/// `fop m32fp/m64fp` and `fiop m16int/m32int`: ST(0) = ST(0) OP m.
pub fn exec_farith_m<const OP: u8, const KIND: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let src = read_src::<KIND>(cpu, e)?;
    let f = &mut cpu.state.fpu;
    let cw = Control(f.fcw);
    let u = if is_empty(f, 0) {
        underflow_to(f, 0, false)
    } else {
        let a = st(f, 0);
        let o = join(src.flags, a, apply(OP, a, src.value, cw), cw);
        write_result(f, 0, o, false)
    };
    retire(cpu, e, u, true);
    Ok(())
}

/// `fop st(0), st(i)`
pub fn exec_farith_st0_sti<const OP: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    arith_regs(cpu, e, 0, e.src, OP, false);
    Ok(())
}

/// `fop st(i), st(0)` and `fopp st(i), st(0)`
pub fn exec_farith_sti_st0<const OP: u8, const POP: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    arith_regs(cpu, e, e.dst, 0, OP, POP);
    Ok(())
}

/// Inlined into each form, so `op` and `pop_after` are constants there (no dispatch on them).
#[inline(always)]
fn arith_regs(cpu: &mut Cpu, e: &Instr, dest: u8, src: u8, op: u8, pop_after: bool) {
    let f = &mut cpu.state.fpu;
    let cw = Control(f.fcw);
    let u = if is_empty(f, dest) || is_empty(f, src) {
        underflow_to(f, dest, pop_after)
    } else {
        let o = apply(op, st(f, dest), st(f, src), cw);
        write_result(f, dest, o, pop_after)
    };
    retire(cpu, e, u, false);
}

/// One-operand instructions on ST(0), by number.
const U_SQRT: u8 = 0;
const U_ABS: u8 = 1;
const U_CHS: u8 = 2;
const U_RNDINT: u8 = 3;

/// `fsqrt`, `fabs`, `fchs`, `frndint`
pub fn exec_funary<const OP: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    let cw = Control(f.fcw);
    let u = if is_empty(f, 0) {
        underflow_to(f, 0, false)
    } else {
        let x = st(f, 0);
        match OP {
            U_SQRT => write_result(f, 0, x87float::sqrt(x, cw), false),
            U_RNDINT => write_result(f, 0, x87float::round_to_int(x, cw), false),
            _ => {
                // Sign-bit operations: no exceptions, even for an SNaN; C1 is cleared.
                set_st(f, 0, if OP == U_ABS { x87float::fabs(x) } else { x87float::fchs(x) });
                set_c1(f, false);
                false
            }
        }
    };
    retire(cpu, e, u, false);
    Ok(())
}

/// `fscale`: ST(0) = ST(0) * 2^trunc(ST(1)).
pub fn exec_fscale(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    let cw = Control(f.fcw);
    let u = if is_empty(f, 0) || is_empty(f, 1) {
        underflow_to(f, 0, false)
    } else {
        write_result(f, 0, x87float::scale(st(f, 0), st(f, 1), cw), false)
    };
    retire(cpu, e, u, false);
    Ok(())
}

/// `fprem` (`IEEE` = false) and `fprem1`: ST(0) = partial remainder of ST(0) / ST(1); the
/// quotient's low bits go to C0, C3, C1 and C2 tells an incomplete reduction.
pub fn exec_fprem<const IEEE: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    let cw = Control(f.fcw);
    let u = if is_empty(f, 0) || is_empty(f, 1) {
        f.fsw &= !super::stack::FSW_C2;
        underflow_to(f, 0, false)
    } else {
        let (a, b) = (st(f, 0), st(f, 1));
        let r = if IEEE { x87float::prem1(a, b, cw) } else { x87float::prem(a, b, cw) };
        let flags = super::stack::prioritize(r.result.flags);
        let u = raise(f, flags);
        if r.result.store {
            set_st(f, 0, r.result.value);
        }
        if flags & IE != 0 || !r.result.store || r.result.value.is_nan() {
            // No remainder (invalid or NaN operand, unmasked denormal): C2 and C1 are cleared,
            // C3 and C0 left alone, as the host does.
            f.fsw &= !(super::stack::FSW_C2 | super::stack::FSW_C1);
        } else {
            set_cc(f, r.c3, r.c2, r.result.c1, r.c0);
        }
        u
    };
    retire(cpu, e, u, false);
    Ok(())
}

/// `fxtract`: ST(0) becomes the exponent, then the significand is pushed.
pub fn exec_fxtract(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    let cw = Control(f.fcw);
    let u = if is_empty(f, 0) {
        let u = stack_fault(f, false);
        if !u {
            set_st(f, 0, F80::INDEFINITE);
            push(f, F80::INDEFINITE);
        }
        u
    } else if push_overflows(f) {
        let u = stack_fault(f, true);
        if !u {
            set_st(f, 0, F80::INDEFINITE);
            push(f, F80::INDEFINITE);
        }
        u
    } else {
        let x = x87float::xtract(st(f, 0), cw);
        let u = raise(f, super::stack::prioritize(x.flags));
        set_c1(f, false);
        if x.store {
            set_st(f, 0, x.exponent);
            push(f, x.significand);
        }
        u
    };
    retire(cpu, e, u, false);
    Ok(())
}

/// Rows for one binary operation in all its encodings.
macro_rules! binary_rows {
    ($op:expr; $m32:ident, $m64:ident, $i16:ident, $i32:ident, $st0_sti:ident, $sti_st0:ident, $p:ident) => {
        [
            Row::mem(C::$m32, exec_farith_m::<{ $op }, M32FP>),
            Row::mem(C::$m64, exec_farith_m::<{ $op }, M64FP>),
            Row::mem(C::$i16, exec_farith_m::<{ $op }, M16INT>),
            Row::mem(C::$i32, exec_farith_m::<{ $op }, M32INT>),
            Row::reg(C::$st0_sti, exec_farith_st0_sti::<{ $op }>),
            Row::reg(C::$sti_st0, exec_farith_sti_st0::<{ $op }, false>),
            Row::reg(C::$p, exec_farith_sti_st0::<{ $op }, true>),
        ]
    };
}

const ADD: [Row; 7] = binary_rows!(OP_ADD; Fadd_m32fp, Fadd_m64fp, Fiadd_m16int, Fiadd_m32int,
    Fadd_st0_sti, Fadd_sti_st0, Faddp_sti_st0);
const MUL: [Row; 7] = binary_rows!(OP_MUL; Fmul_m32fp, Fmul_m64fp, Fimul_m16int, Fimul_m32int,
    Fmul_st0_sti, Fmul_sti_st0, Fmulp_sti_st0);
const SUB: [Row; 7] = binary_rows!(OP_SUB; Fsub_m32fp, Fsub_m64fp, Fisub_m16int, Fisub_m32int,
    Fsub_st0_sti, Fsub_sti_st0, Fsubp_sti_st0);
const SUBR: [Row; 7] = binary_rows!(OP_SUBR; Fsubr_m32fp, Fsubr_m64fp, Fisubr_m16int, Fisubr_m32int,
    Fsubr_st0_sti, Fsubr_sti_st0, Fsubrp_sti_st0);
const DIV: [Row; 7] = binary_rows!(OP_DIV; Fdiv_m32fp, Fdiv_m64fp, Fidiv_m16int, Fidiv_m32int,
    Fdiv_st0_sti, Fdiv_sti_st0, Fdivp_sti_st0);
const DIVR: [Row; 7] = binary_rows!(OP_DIVR; Fdivr_m32fp, Fdivr_m64fp, Fidivr_m16int, Fidivr_m32int,
    Fdivr_st0_sti, Fdivr_sti_st0, Fdivrp_sti_st0);

pub(crate) const BINARY: &[Row] = &{
    let mut all = [ADD[0]; 42];
    let groups = [ADD, MUL, SUB, SUBR, DIV, DIVR];
    let mut g = 0;
    while g < 6 {
        let mut i = 0;
        while i < 7 {
            all[g * 7 + i] = groups[g][i];
            i += 1;
        }
        g += 1;
    }
    all
};

pub(crate) const UNARY: &[Row] = &[
    Row::reg(C::Fsqrt, exec_funary::<U_SQRT>),
    Row::reg(C::Fabs, exec_funary::<U_ABS>),
    Row::reg(C::Fchs, exec_funary::<U_CHS>),
    Row::reg(C::Frndint, exec_funary::<U_RNDINT>),
    Row::reg(C::Fscale, exec_fscale),
    Row::reg(C::Fprem, exec_fprem::<false>),
    Row::reg(C::Fprem1, exec_fprem::<true>),
    Row::reg(C::Fxtract, exec_fxtract),
];
