//! x87 control instructions: FLDCW, FNSTCW/FSTCW, FNSTSW/FSTSW (memory and AX forms),
//! FNCLEX/FCLEX, FNINIT/FINIT, WAIT/FWAIT, FFREE (and the undocumented FFREEP), FINCSTP,
//! FDECSTP, FNOP, EMMS, and the 80287 FENI/FDISI/FSETPM, which later FPUs execute as FNOP (SDM Vol. 2,
//! those entries).
//!
//! The FN* forms do not check for a pending exception; the forms with a WAIT prefix (iced-x86
//! decodes `9B DB E2` as one FCLEX) check first. Control instructions leave FIP, FOP and FDP
//! alone (SDM Vol. 1, 8.1.8), except FFREE, FINCSTP, FDECSTP and FNOP, which the hardware
//! treats like data instructions there.

use super::stack::{phys, pop, set_c1, set_tag, set_top, top, FSW_FLAGS, TAG_EMPTY};
use super::{enter, enter_nowait, retire};
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{vector, ExecResult, Fault, Stop};
use crate::flags::W16;
use crate::state::{ctrl, FpuState};
use iced_x86::Code as C;

/// FCW bits that exist: masks 5:0, bit 6 (reserved, reads as 1), PC 9:8, RC 11:10, X 12.
const FCW_WRITABLE: u16 = 0x1f3f;
const FCW_RESERVED_ONE: u16 = 0x0040;

/// `fldcw m2byte`. ES and B are recomputed: unmasking an exception whose flag is set makes the
/// next waiting instruction raise #MF (SDM Vol. 2, FLDCW; the host sets ES at once).
pub fn exec_fldcw(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let v = cpu.read::<W16>(cpu.ea(e))? as u16;
    let f = &mut cpu.state.fpu;
    f.fcw = (v & FCW_WRITABLE) | FCW_RESERVED_ONE;
    super::stack::update_es(f);
    Ok(())
}

/// `fnstcw m2byte` (`WAIT` = true: `fstcw`)
pub fn exec_fstcw<const WAIT: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    wait_or_not::<WAIT>(cpu)?;
    cpu.write::<W16>(cpu.ea(e), cpu.state.fpu.fcw as u64)
}

/// `fnstsw m2byte` (`WAIT` = true: `fstsw`)
pub fn exec_fstsw_m<const WAIT: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    wait_or_not::<WAIT>(cpu)?;
    cpu.write::<W16>(cpu.ea(e), cpu.state.fpu.fsw as u64)
}

/// `fnstsw ax` (`WAIT` = true: `fstsw ax`)
pub fn exec_fstsw_ax<const WAIT: bool>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    wait_or_not::<WAIT>(cpu)?;
    let sw = cpu.state.fpu.fsw as u64;
    cpu.set::<W16>(0, sw);
    Ok(())
}

/// `fnclex` (`WAIT` = true: `fclex`): clears the exception flags, SF, ES and B.
pub fn exec_fclex<const WAIT: bool>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    wait_or_not::<WAIT>(cpu)?;
    cpu.state.fpu.fsw &= !(FSW_FLAGS | super::stack::FSW_SF | super::stack::FSW_ES | super::stack::FSW_B);
    Ok(())
}

/// `fninit` (`WAIT` = true: `finit`): FCW 037F, FSW 0, all tags empty, pointers 0; the
/// register contents stay (SDM Vol. 2, FINIT/FNINIT "Operation").
pub fn exec_finit<const WAIT: bool>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    wait_or_not::<WAIT>(cpu)?;
    init(&mut cpu.state.fpu);
    Ok(())
}

/// The FNINIT state change (also used by FNSAVE).
pub fn init(f: &mut FpuState) {
    let regs = f.regs;
    *f = FpuState { regs, ..FpuState::default() };
}

/// `wait`/`fwait`: #NM only when both CR0.TS and CR0.MP are set, then the pending-exception
/// check (SDM Vol. 2, WAIT/FWAIT).
pub fn exec_fwait(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let cr0 = cpu.state.cr0;
    if cr0 & ctrl::CR0_TS != 0 && cr0 & ctrl::CR0_MP != 0 {
        return Err(Stop::Fault(Fault::new(vector::NM)));
    }
    if super::pending_mf(cpu) {
        return Err(Stop::Fault(Fault::new(vector::MF)));
    }
    Ok(())
}

/// `ffree st(i)` (`POP` = true: the undocumented `ffreep st(i)`, DF C0+i).
pub fn exec_ffree<const POP: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    let p = phys(f, e.dst);
    set_tag(f, p, TAG_EMPTY);
    set_c1(f, false); // undefined in the SDM; cleared as the reference host does
    if POP {
        pop(f);
    }
    retire(cpu, e, false, false);
    Ok(())
}

/// `fincstp` (`UP` = true) and `fdecstp`: move TOP without touching tags; C1 = 0.
pub fn exec_fincdecstp<const UP: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let f = &mut cpu.state.fpu;
    let t = if UP { top(f) + 1 } else { top(f) + 7 };
    set_top(f, t);
    set_c1(f, false);
    retire(cpu, e, false, false);
    Ok(())
}

/// `fnop`
pub fn exec_fnop(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    retire(cpu, e, false, false);
    Ok(())
}

/// `emms`: all eight tags empty, TOP = 0 (SDM Vol. 2, EMMS). The one MMX instruction tier 0 runs (MMX is
/// not reported in CPUID): Linux's FXSAVE-leak workaround for AMD CPUs (`fnclex; emms; fild`)
/// runs it on every FPU restore whatever CPUID says. Checks: #UD with CR0.EM, #NM with CR0.TS,
/// #MF for a pending x87 exception.
pub fn exec_emms(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    if cpu.state.cr0 & ctrl::CR0_EM != 0 {
        return Err(Stop::Fault(Fault::ud()));
    }
    enter(cpu)?;
    // Like every MMX instruction it also sets TOP to 0 (SDM Vol. 1, 9.5.1; the host agrees).
    set_top(&mut cpu.state.fpu, 0);
    cpu.state.fpu.ftw = 0xffff;
    Ok(())
}

/// `fneni`, `fndisi`, `fnsetpm` (`WAIT` = true: `feni`, `fdisi`, `fsetpm`): no operation on
/// the 80387 and later.
pub fn exec_f287_nop<const WAIT: bool>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    wait_or_not::<WAIT>(cpu)
}

#[inline(always)]
fn wait_or_not<const WAIT: bool>(cpu: &Cpu) -> Result<(), Stop> {
    if WAIT {
        enter(cpu)
    } else {
        enter_nowait(cpu)
    }
}

pub(crate) const CONTROL: &[Row] = &[
    Row::mem(C::Fldcw_m2byte, exec_fldcw),
    Row::mem(C::Fnstcw_m2byte, exec_fstcw::<false>),
    Row::mem(C::Fstcw_m2byte, exec_fstcw::<true>),
    Row::mem(C::Fnstsw_m2byte, exec_fstsw_m::<false>),
    Row::mem(C::Fstsw_m2byte, exec_fstsw_m::<true>),
    Row::reg(C::Fnstsw_AX, exec_fstsw_ax::<false>),
    Row::reg(C::Fstsw_AX, exec_fstsw_ax::<true>),
    Row::reg(C::Fnclex, exec_fclex::<false>),
    Row::reg(C::Fclex, exec_fclex::<true>),
    Row::reg(C::Fninit, exec_finit::<false>),
    Row::reg(C::Finit, exec_finit::<true>),
    Row::reg(C::Wait, exec_fwait),
    Row::reg(C::Ffree_sti, exec_ffree::<false>),
    Row::reg(C::Ffreep_sti, exec_ffree::<true>),
    Row::reg(C::Fincstp, exec_fincdecstp::<true>),
    Row::reg(C::Fdecstp, exec_fincdecstp::<false>),
    Row::reg(C::Fnop, exec_fnop),
    Row::reg(C::Emms, exec_emms),
    Row::reg(C::Fneni, exec_f287_nop::<false>),
    Row::reg(C::Feni, exec_f287_nop::<true>),
    Row::reg(C::Fndisi, exec_f287_nop::<false>),
    Row::reg(C::Fdisi, exec_f287_nop::<true>),
    Row::reg(C::Fnsetpm, exec_f287_nop::<false>),
    Row::reg(C::Fsetpm, exec_f287_nop::<true>),
];
