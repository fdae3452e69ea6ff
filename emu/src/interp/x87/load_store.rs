//! x87 data transfer: FLD, FILD, FBLD, FST, FSTP, FIST, FISTP, FISTTP, FBSTP, FXCH, FCMOVcc
//! (SDM Vol. 2, those entries; Vol. 1, 8.3.3 and 8.5.1.1 for the stack faults).
//!
//! Loads push: a non-empty ST(7) is a stack overflow (masked response: the QNaN indefinite is
//! pushed). Stores read ST(0): an empty ST(0) is a stack underflow (masked response: the
//! indefinite of the destination format is stored). Memory stores are precise: the value is
//! computed, memory written, and only then FSW, tags and TOP change, so a faulting store leaves
//! the FPU as it was. An unmasked exception that forbids the store also suppresses the pop.
//! Host behaviours the SDM leaves open, followed here: a load with an unmasked DE still pushes
//! (the conversion is exact); an empty source pushes the indefinite even over a full ST(7);
//! FCMOVcc leaves C1 alone; FSTP ST(i)'s alias D9 D8+i ("FSTPNCE") never faults and skips
//! the copy when ST(0) is empty.

use super::stack::{
    is_empty, phys, pop, push, push_overflows, raise, set_c1, set_st, set_tag, st, stack_fault, tag, underflow_to,
};
use super::{enter, read_m80, retire, write_m80};
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::ExecResult;
use crate::flags::{W16, W32, W64};
use iced_x86::Code as C;
use x87float::{Control, Outcome, F80};

/// Pushes a loaded value (its conversion outcome `o`), with the overflow check. Inlined, so an
/// exact load (FLD ST(i), FLD1, ...) keeps none of the flag handling.
#[inline(always)]
pub(super) fn push_loaded(cpu: &mut Cpu, e: &Instr, o: Outcome, mem: bool) {
    let f = &mut cpu.state.fpu;
    let unmasked = if push_overflows(f) {
        let u = stack_fault(f, true);
        if !u {
            push(f, F80::INDEFINITE);
        }
        u
    } else {
        // An unmasked DE does not stop a load (the conversion is exact); only IE does.
        let u = raise(f, o.flags);
        set_c1(f, false);
        if o.flags & x87float::IE & !Control(f.fcw).masks() == 0 {
            push(f, o.value);
        }
        u
    };
    retire(cpu, e, unmasked, mem);
}

/// An exact value (no exceptions), as an outcome.
fn exact(v: F80) -> Outcome {
    Outcome { value: v, flags: 0, c1: false, store: true }
}

/// Reads a floating-point memory operand of `BYTES` bytes (4, 8, 10) and converts it.
fn read_fp<const BYTES: usize>(cpu: &mut Cpu, e: &Instr) -> Result<Outcome, crate::exception::Stop> {
    let la = cpu.ea(e);
    let cw = Control(cpu.state.fpu.fcw);
    Ok(match BYTES {
        4 => x87float::from_f32(cpu.read::<W32>(la)? as u32, cw),
        8 => x87float::from_f64(cpu.read::<W64>(la)?, cw),
        _ => exact(read_m80(cpu, la, e.lmask)?),
    })
}

/// Reads an integer memory operand of `BYTES` bytes (2, 4, 8); the conversion is exact.
pub(super) fn read_int<const BYTES: usize>(cpu: &mut Cpu, e: &Instr) -> Result<F80, crate::exception::Stop> {
    let la = cpu.ea(e);
    Ok(match BYTES {
        2 => x87float::from_i16(cpu.read::<W16>(la)? as i16),
        4 => x87float::from_i32(cpu.read::<W32>(la)? as i32),
        _ => x87float::from_i64(cpu.read::<W64>(la)? as i64),
    })
}

/// `fld m32fp/m64fp/m80fp`
pub fn exec_fld_m<const BYTES: usize>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let o = read_fp::<BYTES>(cpu, e)?;
    push_loaded(cpu, e, o, true);
    Ok(())
}

/// `fild m16int/m32int/m64int`
pub fn exec_fild_m<const BYTES: usize>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let v = read_int::<BYTES>(cpu, e)?;
    push_loaded(cpu, e, exact(v), true);
    Ok(())
}

/// `fbld m80bcd`
pub fn exec_fbld_m(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let la = cpu.ea(e);
    let v = read_m80(cpu, la, e.lmask)?;
    let v = x87float::from_bcd(v.to_le_bytes());
    push_loaded(cpu, e, exact(v), true);
    Ok(())
}

/// `fld st(i)`: an exact copy, no exceptions but the stack faults.
pub fn exec_fld_sti(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    if is_empty(f, e.dst) {
        // The masked response pushes the indefinite even over a full ST(7), as the host does.
        let u = stack_fault(f, false);
        if !u {
            push(f, F80::INDEFINITE);
        }
        retire(cpu, e, u, false);
        return Ok(());
    }
    let v = st(f, e.dst);
    push_loaded(cpu, e, exact(v), false);
    Ok(())
}

/// A store's outcome with the value widened to the memory image.
struct Image {
    bits: u128,
    flags: u8,
    c1: bool,
    store: bool,
}

fn image<T: Into<u128>>(o: Outcome<T>) -> Image {
    Image { bits: o.value.into(), flags: o.flags, c1: o.c1, store: o.store }
}

/// Which conversion a store performs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    F32,
    F64,
    F80,
    I16,
    I32,
    I64,
    /// FISTTP: truncating integer stores.
    T16,
    T32,
    T64,
    Bcd,
}

impl StoreKind {
    fn bytes(self) -> usize {
        match self {
            StoreKind::I16 | StoreKind::T16 => 2,
            StoreKind::F32 | StoreKind::I32 | StoreKind::T32 => 4,
            StoreKind::F64 | StoreKind::I64 | StoreKind::T64 => 8,
            StoreKind::F80 | StoreKind::Bcd => 10,
        }
    }

    /// The masked response to IE: the format's indefinite (SDM Vol. 1, Tables 4-3, 4-4, 8-10).
    fn indefinite(self) -> u128 {
        match self {
            StoreKind::F32 => 0xffc0_0000,
            StoreKind::F64 => 0xfff8_0000_0000_0000,
            StoreKind::F80 => F80::INDEFINITE.to_bits(),
            StoreKind::I16 | StoreKind::T16 => 0x8000,
            StoreKind::I32 | StoreKind::T32 => 0x8000_0000,
            StoreKind::I64 | StoreKind::T64 => 0x8000_0000_0000_0000,
            StoreKind::Bcd => u128::from_le_bytes(pad16(x87float::BCD_INDEFINITE)),
        }
    }

    fn convert(self, x: F80, cw: Control) -> Image {
        match self {
            StoreKind::F32 => image(x87float::to_f32(x, cw)),
            StoreKind::F64 => image(x87float::to_f64(x, cw)),
            StoreKind::F80 => Image { bits: x.to_bits(), flags: 0, c1: false, store: true },
            StoreKind::I16 => image(map(x87float::to_i16(x, cw, false), |v| v as u16)),
            StoreKind::I32 => image(map(x87float::to_i32(x, cw, false), |v| v as u32)),
            StoreKind::I64 => image(map(x87float::to_i64(x, cw, false), |v| v as u64)),
            StoreKind::T16 => image(map(x87float::to_i16(x, cw, true), |v| v as u16)),
            StoreKind::T32 => image(map(x87float::to_i32(x, cw, true), |v| v as u32)),
            StoreKind::T64 => image(map(x87float::to_i64(x, cw, true), |v| v as u64)),
            StoreKind::Bcd => image(map(x87float::to_bcd(x, cw), |b| u128::from_le_bytes(pad16(b)))),
        }
    }
}

fn map<T, U>(o: Outcome<T>, f: impl Fn(T) -> U) -> Outcome<U> {
    Outcome { value: f(o.value), flags: o.flags, c1: o.c1, store: o.store }
}

fn pad16(b: [u8; 10]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..10].copy_from_slice(&b);
    out
}

/// Writes a memory image of `bytes` bytes; nothing is written if any byte faults.
fn write_image(cpu: &mut Cpu, e: &Instr, bytes: usize, bits: u128) -> ExecResult {
    let la = cpu.ea(e);
    match bytes {
        2 => cpu.write::<W16>(la, bits as u64),
        4 => cpu.write::<W32>(la, bits as u64),
        8 => cpu.write::<W64>(la, bits as u64),
        _ => write_m80(cpu, la, e.lmask, F80::from_bits(bits)),
    }
}

/// `fst`/`fstp`/`fist`/`fistp`/`fisttp`/`fbstp` to memory: compute, write, then commit.
pub fn exec_store_m<const KIND: u8, const POP: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let kind = KINDS[KIND as usize];
    let f = &cpu.state.fpu;
    let cw = Control(f.fcw);
    if is_empty(f, 0) {
        let masked = cw.is_masked(x87float::IE);
        if masked {
            write_image(cpu, e, kind.bytes(), kind.indefinite())?;
        }
        let f = &mut cpu.state.fpu;
        let u = stack_fault(f, false);
        if !u && POP {
            pop(f);
        }
        retire(cpu, e, u, true);
        return Ok(());
    }
    let im = kind.convert(st(f, 0), cw);
    if im.store {
        write_image(cpu, e, kind.bytes(), im.bits)?;
    }
    let f = &mut cpu.state.fpu;
    let u = raise(f, im.flags);
    set_c1(f, im.store && im.c1);
    if im.store && POP {
        pop(f);
    }
    retire(cpu, e, u, true);
    Ok(())
}

/// `KIND` values for [`exec_store_m`] (const generics take integers, not enums).
const KINDS: [StoreKind; 10] = [
    StoreKind::F32,
    StoreKind::F64,
    StoreKind::F80,
    StoreKind::I16,
    StoreKind::I32,
    StoreKind::I64,
    StoreKind::T16,
    StoreKind::T32,
    StoreKind::T64,
    StoreKind::Bcd,
];
const K_F32: u8 = 0;
const K_F64: u8 = 1;
const K_F80: u8 = 2;
const K_I16: u8 = 3;
const K_I32: u8 = 4;
const K_I64: u8 = 5;
const K_T16: u8 = 6;
const K_T32: u8 = 7;
const K_T64: u8 = 8;
const K_BCD: u8 = 9;

/// `fst st(i)` / `fstp st(i)`: an exact copy of ST(0), no exceptions but underflow.
pub fn exec_fst_sti<const POP: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    let u = if is_empty(f, 0) {
        underflow_to(f, e.dst, POP)
    } else {
        // FSTP ST(0) only pops: the copy onto itself changes nothing the pop leaves.
        if !POP || e.dst != 0 {
            let v = st(f, 0);
            set_st(f, e.dst, v);
        }
        set_c1(f, false);
        if POP {
            pop(f);
        }
        false
    };
    retire(cpu, e, u, false);
    Ok(())
}

/// `fstpnce st(i)` (D9 D8+i, "FSTP1"): like FSTP ST(i), but an empty ST(0) raises nothing and
/// ST(i) keeps its value (as the host does); only the pop happens.
pub fn exec_fstpnce(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    if !is_empty(f, 0) {
        let v = st(f, 0);
        set_st(f, e.dst, v);
    }
    set_c1(f, false);
    pop(f);
    retire(cpu, e, false, false);
    Ok(())
}

/// `fxch st(i)`: empty operands become the QNaN indefinite first (masked underflow response).
pub fn exec_fxch(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    let i = e.src;
    let (e0, ei) = (is_empty(f, 0), is_empty(f, i));
    let mut u = false;
    if e0 || ei {
        u = stack_fault(f, false);
        if !u {
            if e0 {
                set_st(f, 0, F80::INDEFINITE);
            }
            if ei {
                set_st(f, i, F80::INDEFINITE);
            }
        }
    }
    if !u {
        let (p0, pi) = (phys(f, 0), phys(f, i));
        let (t0, ti) = (tag(f, p0), tag(f, pi));
        f.regs.swap(p0, pi);
        set_tag(f, p0, ti);
        set_tag(f, pi, t0);
        set_c1(f, false);
    }
    retire(cpu, e, u, false);
    Ok(())
}

/// `fcmovcc st(0), st(i)`: `CC` is the EFLAGS condition (B, E, BE, U and their negations).
pub fn exec_fcmov<const CC: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let lf = cpu.state.lazy;
    let c = match CC >> 1 {
        0 => lf.cf(),
        1 => lf.zf(),
        2 => lf.cf() || lf.zf(),
        _ => lf.pf(),
    } ^ (CC & 1 != 0);
    let f = &mut cpu.state.fpu;
    let u = if is_empty(f, 0) || is_empty(f, e.src) {
        underflow_to(f, 0, false)
    } else {
        if c {
            let v = st(f, e.src);
            set_st(f, 0, v);
        }
        false
    };
    retire(cpu, e, u, false);
    Ok(())
}

pub(crate) const LOADS: &[Row] = &[
    Row::mem(C::Fld_m32fp, exec_fld_m::<4>),
    Row::mem(C::Fld_m64fp, exec_fld_m::<8>),
    Row::mem(C::Fld_m80fp, exec_fld_m::<10>),
    Row::reg(C::Fld_sti, exec_fld_sti),
    Row::mem(C::Fild_m16int, exec_fild_m::<2>),
    Row::mem(C::Fild_m32int, exec_fild_m::<4>),
    Row::mem(C::Fild_m64int, exec_fild_m::<8>),
    Row::mem(C::Fbld_m80bcd, exec_fbld_m),
];

pub(crate) const STORES: &[Row] = &[
    Row::mem(C::Fst_m32fp, exec_store_m::<K_F32, false>),
    Row::mem(C::Fst_m64fp, exec_store_m::<K_F64, false>),
    Row::mem(C::Fstp_m32fp, exec_store_m::<K_F32, true>),
    Row::mem(C::Fstp_m64fp, exec_store_m::<K_F64, true>),
    Row::mem(C::Fstp_m80fp, exec_store_m::<K_F80, true>),
    Row::mem(C::Fist_m16int, exec_store_m::<K_I16, false>),
    Row::mem(C::Fist_m32int, exec_store_m::<K_I32, false>),
    Row::mem(C::Fistp_m16int, exec_store_m::<K_I16, true>),
    Row::mem(C::Fistp_m32int, exec_store_m::<K_I32, true>),
    Row::mem(C::Fistp_m64int, exec_store_m::<K_I64, true>),
    Row::mem(C::Fisttp_m16int, exec_store_m::<K_T16, true>),
    Row::mem(C::Fisttp_m32int, exec_store_m::<K_T32, true>),
    Row::mem(C::Fisttp_m64int, exec_store_m::<K_T64, true>),
    Row::mem(C::Fbstp_m80bcd, exec_store_m::<K_BCD, true>),
    Row::reg(C::Fst_sti, exec_fst_sti::<false>),
    Row::reg(C::Fstp_sti, exec_fst_sti::<true>),
    // Aliases of FSTP ST(i): D9 D8+i, DF D0+i, DF D8+i.
    Row::reg(C::Fstpnce_sti, exec_fstpnce),
    Row::reg(C::Fstp_sti_DFD0, exec_fst_sti::<true>),
    Row::reg(C::Fstp_sti_DFD8, exec_fst_sti::<true>),
];

pub(crate) const MOVES: &[Row] = &[
    Row::reg(C::Fxch_st0_sti, exec_fxch),
    Row::reg(C::Fxch_st0_sti_DDC8, exec_fxch),
    Row::reg(C::Fxch_st0_sti_DFC8, exec_fxch),
    Row::reg(C::Fcmovb_st0_sti, exec_fcmov::<0>),
    Row::reg(C::Fcmovnb_st0_sti, exec_fcmov::<1>),
    Row::reg(C::Fcmove_st0_sti, exec_fcmov::<2>),
    Row::reg(C::Fcmovne_st0_sti, exec_fcmov::<3>),
    Row::reg(C::Fcmovbe_st0_sti, exec_fcmov::<4>),
    Row::reg(C::Fcmovnbe_st0_sti, exec_fcmov::<5>),
    Row::reg(C::Fcmovu_st0_sti, exec_fcmov::<6>),
    Row::reg(C::Fcmovnu_st0_sti, exec_fcmov::<7>),
];
