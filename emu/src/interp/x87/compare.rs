//! x87 comparisons: FCOM, FCOMP, FCOMPP, FUCOM, FUCOMP, FUCOMPP, FICOM, FICOMP, FCOMI,
//! FCOMIP, FUCOMI, FUCOMIP, FTST, FXAM (SDM Vol. 2, those entries; Vol. 1, 8.1.3 on the condition codes).
//!
//! FCOM-style instructions set C3, C2, C0 (SDM Vol. 1, Table 8-6) and clear C1; FCOMI-style
//! ones set ZF, PF, CF (through the lazy flags, clearing OF, SF, AF) and leave C1 alone, as the
//! host does. An empty operand is a stack underflow whose masked response is "unordered". An
//! unmasked IE or DE still writes the condition codes (unordered for IE) but suppresses the
//! pops (host behaviour). FXAM raises nothing and classifies even an empty register.

use super::stack::{is_empty, pop, raise, set_cc, st, stack_fault, tag, TAG_EMPTY};
use super::{enter, retire};
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::ExecResult;
use crate::flags::{LazyFlags, W16, W32, W64};
use crate::state::rflags;
use iced_x86::Code as C;
use x87float::{Control, Relation, DE, F80, IE};

/// Comparison flavours for the `MODE` const parameter.
const FCOM: u8 = 0; // signaling, FSW condition codes
const FUCOM: u8 = 1; // quiet, FSW condition codes
const FCOMI: u8 = 2; // signaling, EFLAGS
const FUCOMI: u8 = 3; // quiet, EFLAGS

/// Compares ST(0) with `src` (`None` when the source register is empty), reports the result
/// as `MODE` says, and pops `pops` times. `conv` holds the source conversion's flags.
fn compare_and_pop(cpu: &mut Cpu, e: &Instr, mode: u8, src: Option<F80>, conv: u8, pops: u8, mem: bool) {
    let quiet = mode == FUCOM || mode == FUCOMI;
    let to_eflags = mode >= FCOMI;
    let f = &mut cpu.state.fpu;
    let cw = Control(f.fcw);
    let (relation, unmasked, proceed) = match src {
        Some(b) if !is_empty(f, 0) => {
            let c = x87float::compare(st(f, 0), b, quiet);
            let mut flags = c.flags | conv;
            if flags & IE != 0 {
                flags &= !DE;
            }
            let u = raise(f, flags);
            (c.relation, u, flags & (IE | DE) & !cw.masks() == 0)
        }
        _ => {
            let u = stack_fault(f, false);
            (Relation::Unordered, u, !u)
        }
    };
    // The condition codes are written even when the exception is unmasked (as the host does);
    // the pops are not.
    {
        let (c3, c2, c0) = relation.c3_c2_c0();
        if to_eflags {
            let bits =
                if c3 { rflags::ZF } else { 0 } | if c2 { rflags::PF } else { 0 } | if c0 { rflags::CF } else { 0 };
            cpu.state.lazy = LazyFlags::from_rflags(bits);
        } else {
            set_cc(f, c3, c2, false, c0);
        }
    }
    if proceed {
        let f = &mut cpu.state.fpu;
        for _ in 0..pops {
            pop(f);
        }
    }
    retire(cpu, e, unmasked, mem);
}

/// `fcom`/`fcomp` with m32fp, m64fp (`KIND` 4, 8) or `ficom`/`ficomp` with m16int, m32int
/// (`KIND` 2, 3 for 16 and 32 bits).
pub fn exec_fcom_m<const KIND: u8, const POPS: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let la = cpu.ea(e);
    let cw = Control(cpu.state.fpu.fcw);
    let (v, conv) = match KIND {
        4 => conv(super::arith::keep_snan(x87float::from_f32(cpu.read::<W32>(la)? as u32, cw))),
        8 => conv(super::arith::keep_snan(x87float::from_f64(cpu.read::<W64>(la)?, cw))),
        2 => (x87float::from_i16(cpu.read::<W16>(la)? as i16), 0),
        _ => (x87float::from_i32(cpu.read::<W32>(la)? as i32), 0),
    };
    compare_and_pop(cpu, e, FCOM, Some(v), conv, POPS, true);
    Ok(())
}

fn conv(o: x87float::Outcome) -> (F80, u8) {
    (o.value, o.flags)
}

/// The source register ST(i), or `None` when it is empty.
fn reg_src(cpu: &Cpu, i: u8) -> Option<F80> {
    let f = &cpu.state.fpu;
    (!is_empty(f, i)).then(|| st(f, i))
}

/// `fcom[p] st(i)`, `fucom[p] st(i)`, `f[u]comi[p] st(0), st(i)`
pub fn exec_fcom_sti<const MODE: u8, const POPS: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let i = if e.src != crate::decoded::NO_REG { e.src } else { e.dst };
    let src = reg_src(cpu, i);
    compare_and_pop(cpu, e, MODE, src, 0, POPS, false);
    Ok(())
}

/// `fcompp`, `fucompp`: compare with ST(1), pop twice.
pub fn exec_fcompp<const MODE: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let src = reg_src(cpu, 1);
    compare_and_pop(cpu, e, MODE, src, 0, 2, false);
    Ok(())
}

/// `ftst`: compare ST(0) with +0.0.
pub fn exec_ftst(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    compare_and_pop(cpu, e, FCOM, Some(F80::ZERO), 0, 0, false);
    Ok(())
}

/// `fxam`: classify ST(0) into C3, C2, C0 with its sign in C1 (SDM Vol. 2, Table 3-44).
pub fn exec_fxam(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    let p = super::stack::phys(f, 0);
    let empty = tag(f, p) == TAG_EMPTY;
    let (class, sign) = x87float::xam(st(f, 0), empty);
    let (c3, c2, c0) = class.c3_c2_c0();
    set_cc(f, c3, c2, sign, c0);
    retire(cpu, e, false, false);
    Ok(())
}

pub(crate) const COMPARES: &[Row] = &[
    Row::mem(C::Fcom_m32fp, exec_fcom_m::<4, 0>),
    Row::mem(C::Fcom_m64fp, exec_fcom_m::<8, 0>),
    Row::mem(C::Fcomp_m32fp, exec_fcom_m::<4, 1>),
    Row::mem(C::Fcomp_m64fp, exec_fcom_m::<8, 1>),
    Row::mem(C::Ficom_m16int, exec_fcom_m::<2, 0>),
    Row::mem(C::Ficom_m32int, exec_fcom_m::<3, 0>),
    Row::mem(C::Ficomp_m16int, exec_fcom_m::<2, 1>),
    Row::mem(C::Ficomp_m32int, exec_fcom_m::<3, 1>),
    Row::reg(C::Fcom_st0_sti, exec_fcom_sti::<FCOM, 0>),
    Row::reg(C::Fcom_st0_sti_DCD0, exec_fcom_sti::<FCOM, 0>),
    Row::reg(C::Fcomp_st0_sti, exec_fcom_sti::<FCOM, 1>),
    Row::reg(C::Fcomp_st0_sti_DCD8, exec_fcom_sti::<FCOM, 1>),
    Row::reg(C::Fcomp_st0_sti_DED0, exec_fcom_sti::<FCOM, 1>),
    Row::reg(C::Fucom_st0_sti, exec_fcom_sti::<FUCOM, 0>),
    Row::reg(C::Fucomp_st0_sti, exec_fcom_sti::<FUCOM, 1>),
    Row::reg(C::Fcompp, exec_fcompp::<FCOM>),
    Row::reg(C::Fucompp, exec_fcompp::<FUCOM>),
    Row::reg(C::Fcomi_st0_sti, exec_fcom_sti::<FCOMI, 0>),
    Row::reg(C::Fcomip_st0_sti, exec_fcom_sti::<FCOMI, 1>),
    Row::reg(C::Fucomi_st0_sti, exec_fcom_sti::<FUCOMI, 0>),
    Row::reg(C::Fucomip_st0_sti, exec_fcom_sti::<FUCOMI, 1>),
    Row::reg(C::Ftst, exec_ftst),
    Row::reg(C::Fxam, exec_fxam),
];
