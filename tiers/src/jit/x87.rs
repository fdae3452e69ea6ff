//! x87 register-stack forms called directly from translated code (issue 10, sixth round, part X).
//!
//! The x87 forms stay tier 0's handlers (`emu::interp::x87`, on `x87float`): they are exact
//! and their cost is the soft-float arithmetic and the FPU bookkeeping, not the call. What
//! translated code saves is the generic trampoline (`exec_one`: the histogram, the TLB
//! generation, RF and stop-block checks after every handler), which measured 34 host
//! instructions per call against ~8 here. The forms listed in [`direct`] work on the register
//! stack only: no memory operand, no GPR, no RIP change, no TLB or code-page effect. Their
//! handlers fail only in `x87::enter` (#NM for CR0.EM/TS, a pending #MF), before they change
//! anything, so on a fault [`run`] says so and translated code calls the trampoline for the
//! instruction, which runs the handler again (it faults again, identically) and records the
//! stop as for any other handler call (`x64::emit_x87_call`). A hot block of such forms is compiled (`JitEngine::mostly_fallbacks` counts
//! them with the inline forms), so an x87 loop runs as translated code with chained back edges.
//!
//! Seventh round (part Y): the stack moves of [`stack_move`] are done inline on the register
//! file, falling back to the direct call when anything unusual is in the way; none of this
//! with `--jit-fallback-only`, where every x87 form goes through the trampoline (the count
//! [`take_direct_sites`] feeds `JitStats::x87_direct_sites` shows it).

use emu::cpu::Cpu;
use emu::decoded::Instr;
use iced_x86::Code as C;

/// True for the forms translated code calls through [`run`] (see the module doc for why
/// these qualify).
pub(super) fn direct(e: &Instr) -> bool {
    let Ok(code) = C::try_from(e.code as usize) else {
        return false;
    };
    matches!(
        code,
        C::Fld_sti
            | C::Fld1
            | C::Fldz
            | C::Fldpi
            | C::Fldl2e
            | C::Fldl2t
            | C::Fldlg2
            | C::Fldln2
            | C::Fst_sti
            | C::Fstp_sti
            | C::Fxch_st0_sti
            | C::Fadd_st0_sti
            | C::Fadd_sti_st0
            | C::Faddp_sti_st0
            | C::Fmul_st0_sti
            | C::Fmul_sti_st0
            | C::Fmulp_sti_st0
            | C::Fsub_st0_sti
            | C::Fsub_sti_st0
            | C::Fsubp_sti_st0
            | C::Fsubr_st0_sti
            | C::Fsubr_sti_st0
            | C::Fsubrp_sti_st0
            | C::Fdiv_st0_sti
            | C::Fdiv_sti_st0
            | C::Fdivp_sti_st0
            | C::Fdivr_st0_sti
            | C::Fdivr_sti_st0
            | C::Fdivrp_sti_st0
            | C::Fsqrt
            | C::Fabs
            | C::Fchs
            | C::Fcom_st0_sti
            | C::Fcomp_st0_sti
            | C::Fucom_st0_sti
            | C::Fucomp_st0_sti
            | C::Fcompp
            | C::Fucompp
            | C::Fcomi_st0_sti
            | C::Fcomip_st0_sti
            | C::Fucomi_st0_sti
            | C::Fucomip_st0_sti
            | C::Ftst
            | C::Fxam
    )
}

/// A stack move that translated code does inline on the register file (seventh round, part Y)
/// when nothing unusual is in the way; anything else (a stack fault, a pending unmasked
/// exception, CR0.EM/TS, real or virtual-8086 mode, an FLD ST(i) of a value whose tag is not
/// "valid") takes the direct call of the handler, which does it exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StackMove {
    /// FLD ST(i): push a copy of ST(i).
    LoadSt(u8),
    /// FLD1 / FLDZ: push the constant (`signif`, `sign_exp`) with tag `tag` (both are exact,
    /// so unlike FLDPI and the logarithms they do not depend on the rounding control).
    LoadConst { signif: u64, sign_exp: u16, tag: u16 },
    /// FSTP ST(0): only a pop (the copy onto itself changes nothing).
    PopSt0,
}

/// The tags of the x87 tag word (SDM Vol. 1, Figure 8-7), as `emu::interp::x87::stack` has them.
pub(super) const TAG_VALID: u16 = 0;
pub(super) const TAG_ZERO: u16 = 1;

/// The inline form of `e`, if it is a [`direct`] form translated code moves inline.
pub(super) fn stack_move(e: &Instr) -> Option<StackMove> {
    let code = C::try_from(e.code as usize).ok()?;
    match code {
        C::Fld_sti => Some(StackMove::LoadSt(e.dst & 7)),
        C::Fld1 => Some(StackMove::LoadConst { signif: 1 << 63, sign_exp: 0x3fff, tag: TAG_VALID }),
        C::Fldz => Some(StackMove::LoadConst { signif: 0, sign_exp: 0, tag: TAG_ZERO }),
        C::Fstp_sti if e.dst == 0 => Some(StackMove::PopSt0),
        _ => None,
    }
}

thread_local! {
    /// [`direct`] forms the backend compiled (a direct call or an inline stack move) since the
    /// last [`take_direct_sites`]; the engine adds them to `JitStats::x87_direct_sites`.
    static DIRECT_SITES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts one [`direct`] form compiled as a direct call or inline (the backend calls it).
pub(super) fn note_direct_site() {
    DIRECT_SITES.with(|c| c.set(c.get() + 1));
}

/// The count [`note_direct_site`] kept since the last call, reset to 0.
pub(super) fn take_direct_sites() -> u64 {
    DIRECT_SITES.with(|c| c.replace(0))
}

/// Runs a [`direct`] form for translated code (through `host::call_x87`): 0 when it ran, 1
/// when it faulted, having changed nothing (see the module doc): translated code then calls
/// the trampoline for it, which runs it again and records the fault.
#[inline(always)]
pub(super) fn run(cpu: &mut Cpu, e: &Instr) -> u32 {
    u32::from((e.exec)(cpu, e).is_err())
}
