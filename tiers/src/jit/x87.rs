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
//! stop as for any other handler call (`x64::emit_call`). A hot block of such forms is compiled (`JitEngine::mostly_fallbacks` counts
//! them with the inline forms), so an x87 loop runs as translated code with chained back edges.

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

/// Runs a [`direct`] form for translated code (through `host::call_x87`): 0 when it ran, 1
/// when it faulted, having changed nothing (see the module doc): translated code then calls
/// the trampoline for it, which runs it again and records the fault.
#[inline(always)]
pub(super) fn run(cpu: &mut Cpu, e: &Instr) -> u32 {
    u32::from((e.exec)(cpu, e).is_err())
}
