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
//! stop as for any other handler call (`x64::x87::emit_x87_call`). A hot block of such forms is compiled (`JitEngine::mostly_fallbacks` counts
//! them with the inline forms), so an x87 loop runs as translated code with chained back edges.
//!
//! Seventh round (part Y): the stack moves of [`stack_move`] are done inline on the register
//! file, falling back to the direct call when anything unusual is in the way; none of this
//! with `--jit-fallback-only`, where every x87 form goes through the trampoline (the count
//! [`take_direct_sites`] feeds `JitStats::x87_direct_sites` shows it).
//!
//! Seventh round (part Z): the register-stack arithmetic of [`arith`] is done inline too,
//! around one call of [`arith_value`] (the handler's x87float operation, with the flags, C1 and
//! the result's tag computed there), falling back to the direct call under part Y's conditions
//! and also on a stack underflow or an exception the control word leaves unmasked.

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

/// A register-stack arithmetic form translated code does inline (seventh round, part Z),
/// calling only [`arith_value`] for the x87float operation (see `x64::x87::emit_x87_arith`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Arith {
    /// `arith_value::<OP>` for the form's operation.
    pub value: ArithValue,
    /// The destination ST(i) (also the first operand) and the source ST(i).
    pub dest: u8,
    pub src: u8,
    /// A P form: pop after the result is written.
    pub pop: bool,
}

/// The signature of [`arith_value`] (called from generated code).
pub(super) type ArithValue = extern "sysv64" fn(u64, u64, u64, u64, u64) -> u128;

/// The [`Arith`] of `e`, for FADD/FMUL/FSUB/FSUBR/FDIV/FDIVR in their register forms (P
/// included) and FSQRT.
pub(super) fn arith(e: &Instr) -> Option<Arith> {
    use emu::interp::x87::arith::{OP_ADD, OP_DIV, OP_DIVR, OP_MUL, OP_SUB, OP_SUBR};
    let code = C::try_from(e.code as usize).ok()?;
    // (operation, destination, source, pop), as the handlers' rows pick them
    // (`exec_farith_st0_sti`: ST(0) op= ST(e.src); `exec_farith_sti_st0`: ST(e.dst) op= ST(0)).
    let (value, dest, src, pop): (ArithValue, u8, u8, bool) = match code {
        C::Fadd_st0_sti => (arith_value::<OP_ADD>, 0, e.src, false),
        C::Fadd_sti_st0 => (arith_value::<OP_ADD>, e.dst, 0, false),
        C::Faddp_sti_st0 => (arith_value::<OP_ADD>, e.dst, 0, true),
        C::Fmul_st0_sti => (arith_value::<OP_MUL>, 0, e.src, false),
        C::Fmul_sti_st0 => (arith_value::<OP_MUL>, e.dst, 0, false),
        C::Fmulp_sti_st0 => (arith_value::<OP_MUL>, e.dst, 0, true),
        C::Fsub_st0_sti => (arith_value::<OP_SUB>, 0, e.src, false),
        C::Fsub_sti_st0 => (arith_value::<OP_SUB>, e.dst, 0, false),
        C::Fsubp_sti_st0 => (arith_value::<OP_SUB>, e.dst, 0, true),
        C::Fsubr_st0_sti => (arith_value::<OP_SUBR>, 0, e.src, false),
        C::Fsubr_sti_st0 => (arith_value::<OP_SUBR>, e.dst, 0, false),
        C::Fsubrp_sti_st0 => (arith_value::<OP_SUBR>, e.dst, 0, true),
        C::Fdiv_st0_sti => (arith_value::<OP_DIV>, 0, e.src, false),
        C::Fdiv_sti_st0 => (arith_value::<OP_DIV>, e.dst, 0, false),
        C::Fdivp_sti_st0 => (arith_value::<OP_DIV>, e.dst, 0, true),
        C::Fdivr_st0_sti => (arith_value::<OP_DIVR>, 0, e.src, false),
        C::Fdivr_sti_st0 => (arith_value::<OP_DIVR>, e.dst, 0, false),
        C::Fdivrp_sti_st0 => (arith_value::<OP_DIVR>, e.dst, 0, true),
        C::Fsqrt => (arith_value::<OP_SQRT>, 0, 0, false),
        _ => return None,
    };
    Some(Arith { value, dest: dest & 7, src: src & 7, pop })
}

/// [`arith_value`]'s operation number for FSQRT (next to `emu::interp::x87::arith::OP_*`).
const OP_SQRT: u8 = 6;

/// Bits of [`arith_value`]'s answer above the significand (bit 64 = bit 0 here, in rdx).
pub(super) const ARITH_FLAGS_SHIFT: u8 = 16;
pub(super) const ARITH_C1_BIT: u8 = 24;
pub(super) const ARITH_TAG_SHIFT: u8 = 25;
pub(super) const ARITH_DECLINE_BIT: u8 = 31;

/// The x87float operation `OP` of an [`Arith`] form on the values of its destination (`a`)
/// and source (`b`; FSQRT ignores it) under control word `fcw`, for generated code: the
/// operations of `emu::interp::x87::arith::apply` and `exec_funary` (FSQRT), so the result is
/// the handler's. Bits 63:0 the result's significand; above, as rdx: bits 15:0 its sign and
/// exponent, 21:16 the exception flags as `stack::write_result` records them (IE hides DE),
/// 24 C1, 26:25 the result's tag, 31 "decline": an exception unmasked in `fcw` (the handler
/// then sets ES and B, may write nothing, and `retire` records FOP), so translated code leaves
/// the instruction, unchanged, to the handler.
pub(super) extern "sysv64" fn arith_value<const OP: u8>(
    a_signif: u64,
    a_se: u64,
    b_signif: u64,
    b_se: u64,
    fcw: u64,
) -> u128 {
    use emu::interp::x87::arith::{OP_ADD, OP_DIV, OP_MUL, OP_SUB, OP_SUBR};
    use emu::interp::x87::stack::{prioritize, tag_of};
    use x87float::{Control, F80};
    let a = F80 { signif: a_signif, sign_exp: a_se as u16 };
    let b = F80 { signif: b_signif, sign_exp: b_se as u16 };
    let cw = Control(fcw as u16);
    let o = match OP {
        OP_ADD => x87float::add(a, b, cw),
        OP_MUL => x87float::mul(a, b, cw),
        OP_SUB => x87float::sub(a, b, cw),
        OP_SUBR => x87float::subr(a, b, cw),
        OP_DIV => x87float::div(a, b, cw),
        OP_SQRT => x87float::sqrt(a, cw),
        _ => x87float::divr(a, b, cw),
    };
    let flags = prioritize(o.flags) & 0x3f;
    let decline = flags & !cw.masks() & 0x3f != 0 || !o.store;
    let high = u64::from(o.value.sign_exp)
        | u64::from(flags) << ARITH_FLAGS_SHIFT
        | u64::from(o.c1) << ARITH_C1_BIT
        | u64::from(tag_of(o.value)) << ARITH_TAG_SHIFT
        | u64::from(decline) << ARITH_DECLINE_BIT;
    u128::from(o.value.signif) | u128::from(high) << 64
}
