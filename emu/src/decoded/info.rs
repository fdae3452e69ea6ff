//! What the handler table knows about each form besides its handlers: the RFLAGS bits it reads,
//! writes and leaves undefined, whether it can fault, and whether it ends a block.
//!
//! Everything here is computed once per iced-x86 `Code` from iced-x86's own tables (the
//! `instr_info` and `op_code_info` data, written down by the decoder's authors from the SDM and
//! APM), so the interpreter, the conformance masks and a JIT read one source. The flags come
//! from `rflags_read`, `rflags_written` + `rflags_cleared` + `rflags_set` and `rflags_undefined`.
//!
//! Where iced-x86 is coarser than the SDM, so is this table:
//! - Shifts and rotates by CL are described as if the count were 2 or more: "written" flags are
//!   kept when the masked count is 0, and OF is "undefined" even for a count of 1 (SDM Vol. 2,
//!   SAL/SAR/SHL/SHR: "The OF flag is affected only for 1-bit shifts"). `writes_conditionally`
//!   marks these (and CMPS/SCAS, which write nothing under REP with rCX = 0).
//! - The RFLAGS bits iced-x86 tracks are OF SF ZF AF CF PF DF IF AC. POPF, IRET, SYSRET and the
//!   like also write TF, NT, RF, IOPL...; they all end a block.
//!
//! Shifts and rotates by an immediate are exact: [`FormInfo::flags_for`] applies the count.
//! There the table follows the SDM where iced-x86 1.22 is finer than it:
//! - RCL/RCR of 8- and 16-bit operands: iced-x86 decides by the count modulo 9 or 17 (a count of
//!   9 touches no flag, 10 defines OF); the SDM by the count masked to 5 bits, so 9 and 10 leave
//!   OF undefined (and an AMD Zen 3 changes it).
//! - 16-bit SHLD/SHRD with a count above 16: every flag undefined (iced-x86 does not say so).

use crate::rflags;
use iced_x86::{Code, EncodingKind, FlowControl, Instruction, Mnemonic, OpCodeOperandKind, OpKind, RflagsBits};

/// RFLAGS effects of one instruction, as RFLAGS bit masks (`rflags::CF` ...; every bit iced-x86
/// tracks lies in the low 32 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlagEffects {
    /// Flags whose value the instruction uses.
    pub read: u32,
    /// Flags the instruction gives a defined value (computed, always cleared or always set).
    pub written: u32,
    /// Flags the SDM leaves undefined after the instruction.
    pub undefined: u32,
}

impl FlagEffects {
    /// Every flag the instruction may change: `written | undefined` (iced's `rflags_modified`).
    pub fn modified(self) -> u32 {
        self.written | self.undefined
    }
}

/// How a shift or rotate by an immediate masks its count before using it (SDM Vol. 2, SAL/SAR/
/// SHL/SHR, RCL/RCR/ROL/ROR, SHLD/SHRD: "count is masked to 5 bits (or 6 bits with REX.W)";
/// RCL/RCR of 8- and 16-bit operands then rotate by that modulo 9 or 17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountRule {
    Mask1F,
    Mask3F,
    Mask1FMod9,
    Mask1FMod17,
    /// 16-bit SHLD/SHRD: masked to 5 bits; a count above 16 leaves every flag (and the result)
    /// undefined (SDM Vol. 2, SHLD/SHRD: "If the count is greater than the operand size, the
    /// flags are undefined").
    Mask1FOver16,
}

impl CountRule {
    /// The masked count, which decides the flags: 0 touches none, 1 defines OF, more leaves OF
    /// undefined (SDM Vol. 2, RCL/RCR: "If the masked count is 0, the flags are not affected.
    /// If the masked count is 1, then the OF flag is affected, otherwise ... undefined").
    pub fn masked(self, imm8: u8) -> u8 {
        match self {
            CountRule::Mask3F => imm8 & 0x3f,
            _ => imm8 & 0x1f,
        }
    }

    /// The number of bit positions the operand actually moves by.
    pub fn effective(self, imm8: u8) -> u8 {
        match self {
            CountRule::Mask1FMod9 => (imm8 & 0x1f) % 9,
            CountRule::Mask1FMod17 => (imm8 & 0x1f) % 17,
            _ => self.masked(imm8),
        }
    }
}

/// What the table knows about one `Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormInfo {
    /// RFLAGS effects of an instance; for a shift or rotate by an immediate, of a count of 2 or
    /// more (use [`FormInfo::flags_for`] with the instance's immediate).
    pub flags: FlagEffects,
    /// Shifts and rotates by an immediate: how the count is masked, and the flag effects of a
    /// count of 1 (a count of 0 touches no flag).
    pub count: Option<(CountRule, FlagEffects)>,
    /// Some executions leave the "written" flags unchanged (shifts and rotates by CL with a
    /// count of 0; CMPS/SCAS under REP with rCX = 0): they do not kill earlier flag values.
    pub writes_conditionally: bool,
    /// The register form (no memory operand) can raise an exception. The memory form always can
    /// (#GP, #SS, #PF). See [`FormInfo::of`] for the rule.
    pub reg_can_fault: bool,
    /// The instruction ends a block (iced-x86 `flow_control() != Next`): `decode` stops after it.
    pub ends_block: bool,
    /// The handler always sets RIP itself (jumps, calls, returns), so the run loop must not.
    pub sets_rip: bool,
}

impl FormInfo {
    /// The flag effects of an instance whose (first) immediate byte is `imm8`; `imm8` is
    /// ignored unless the form is a shift or rotate by an immediate.
    pub fn flags_for(&self, imm8: u8) -> FlagEffects {
        match self.count {
            Some((rule, one)) => match rule.masked(imm8) {
                0 => FlagEffects::default(),
                1 => one,
                n if rule == CountRule::Mask1FOver16 && n > 16 => all_undefined(self.flags),
                _ => self.flags,
            },
            None => self.flags,
        }
    }

    /// Whether the form can raise an exception: a memory form always can; a register form per
    /// `reg_can_fault`.
    pub fn can_fault(&self, mem: bool) -> bool {
        mem || self.reg_can_fault
    }

    /// Computes the facts for `code` from iced-x86's tables. `reg_implemented`: tier 0 has a
    /// register-form handler (without one, the form raises #UD).
    ///
    /// The register form of an instruction is taken to be unable to fault only if none of these
    /// holds (so anything unclear counts as "can fault"):
    /// - tier 0 has no register-form handler (#UD), or the `Code` is `INVALID`;
    /// - it transfers control or traps (`flow_control() != Next`: branch targets are checked
    ///   against CS limit / canonical form; INT, INTO, UD, SYSCALL...);
    /// - it is privileged, may need CPL 0 depending on CR4 (RDTSC, RDPMC, SMSW...), or is
    ///   IOPL-sensitive or does I/O (CLI, STI, IN, OUT: #GP);
    /// - it touches memory implicitly: the stack (PUSH, POP, ENTER...), strings (MOVS...), save
    ///   areas (FXSAVE...), or an implied address (XLAT, MASKMOVDQU, MOV moffs);
    /// - it can divide by zero or overflow a quotient (DIV, IDIV, AAM: #DE);
    /// - it writes a segment register (MOV Sreg: #GP, #NP, #SS);
    /// - it uses state that can be disabled or raise its own exceptions: any CPUID feature
    ///   beyond the general-purpose integer set (x87 #NM/#MF, MMX, SSE #UD/#XM, AVX...), or a
    ///   VEX/EVEX/XOP/3DNow! encoding;
    /// - some operating mode it decodes in does not allow it (#UD: e.g. LAR in real mode).
    ///
    /// Debug traps (TF, breakpoints) and interrupts are not faults of a form; they are taken
    /// between instructions.
    pub fn of(code: Code, reg_implemented: bool) -> FormInfo {
        let general = flag_effects(&instance(code, 2));
        let one = flag_effects(&instance(code, 1));
        let zero = flag_effects(&instance(code, 0));
        let count = if zero == FlagEffects::default() && general != FlagEffects::default() {
            // Only an immediate count makes an instance touch no flag: find how it is masked.
            let rule = if flag_effects(&instance(code, 0x20)) != zero {
                CountRule::Mask3F
            } else if flag_effects(&instance(code, 9)) == zero {
                CountRule::Mask1FMod9
            } else if flag_effects(&instance(code, 17)) == zero {
                CountRule::Mask1FMod17
            } else if matches!(code, Code::Shld_rm16_r16_imm8 | Code::Shrd_rm16_r16_imm8) {
                CountRule::Mask1FOver16
            } else {
                CountRule::Mask1F
            };
            Some((rule, one))
        } else {
            None
        };
        let op = code.op_code();
        // A count in CL may be 0; a string instruction under REP may run 0 times.
        let may_do_nothing = op.op_kinds().contains(&OpCodeOperandKind::cl) || code.is_string_instruction();
        // 16-bit SHLD/SHRD by CL: the count may exceed 16, which leaves every flag undefined.
        let general = if matches!(code, Code::Shld_rm16_r16_CL | Code::Shrd_rm16_r16_CL) {
            all_undefined(general)
        } else {
            general
        };
        let fc = code.flow_control();
        FormInfo {
            flags: general,
            count,
            writes_conditionally: may_do_nothing && general.modified() != 0,
            reg_can_fault: !reg_implemented || reg_form_can_fault(code),
            ends_block: fc != FlowControl::Next,
            sets_rip: sets_rip(fc),
        }
    }
}

/// `f` with every arithmetic flag it may change made undefined.
fn all_undefined(f: FlagEffects) -> FlagEffects {
    FlagEffects { read: f.read, written: 0, undefined: f.modified() | rflags::ARITH as u32 }
}

/// Flow controls whose handlers always set RIP.
pub fn sets_rip(fc: FlowControl) -> bool {
    matches!(
        fc,
        FlowControl::UnconditionalBranch
            | FlowControl::IndirectBranch
            | FlowControl::ConditionalBranch
            | FlowControl::Return
            | FlowControl::Call
            | FlowControl::IndirectCall
    )
}

/// An instance of `code` with immediate byte `imm8`, as iced-x86's flag tables see it. Operand
/// 0 is made a memory operand so the "same register twice" special case (XOR/SUB reg, reg:
/// constant results) does not apply; it changes only which flags are constant, not which are
/// read, written or undefined.
fn instance(code: Code, imm8: u8) -> Instruction {
    let mut i = Instruction::default();
    i.set_code(code);
    i.set_op0_kind(OpKind::Memory);
    i.set_immediate8(imm8);
    i
}

fn flag_effects(i: &Instruction) -> FlagEffects {
    FlagEffects {
        read: rflags_of(i.rflags_read()),
        written: rflags_of(i.rflags_written() | i.rflags_cleared() | i.rflags_set()),
        undefined: rflags_of(i.rflags_undefined()),
    }
}

/// iced-x86's flag bits (`RflagsBits`) as RFLAGS bits; the x87 condition codes and UIF it also
/// tracks are not RFLAGS bits and are dropped.
pub fn rflags_of(bits: u32) -> u32 {
    const MAP: [(u32, u64); 9] = [
        (RflagsBits::OF, rflags::OF),
        (RflagsBits::SF, rflags::SF),
        (RflagsBits::ZF, rflags::ZF),
        (RflagsBits::AF, rflags::AF),
        (RflagsBits::CF, rflags::CF),
        (RflagsBits::PF, rflags::PF),
        (RflagsBits::DF, rflags::DF),
        (RflagsBits::IF, rflags::IF),
        (RflagsBits::AC, rflags::AC),
    ];
    MAP.iter().filter(|(i, _)| bits & i != 0).fold(0, |a, (_, r)| a | *r as u32)
}

/// CPUID features of general-purpose integer instructions that have no enable bit, no
/// exceptions of their own and no state beyond the GPRs and RFLAGS.
const GENERAL_PURPOSE: &[iced_x86::CpuidFeature] = {
    use iced_x86::CpuidFeature as F;
    &[F::INTEL8086, F::INTEL8086_ONLY, F::INTEL186, F::INTEL286, F::INTEL386, F::INTEL486, F::X64, F::CMOV]
};

fn reg_form_can_fault(code: Code) -> bool {
    use OpCodeOperandKind as K;
    if code == Code::INVALID || code.flow_control() != FlowControl::Next {
        return true;
    }
    let op = code.op_code();
    let privileged = code.is_privileged() || op.may_require_cpl0() || op.is_input_output();
    let implicit_memory = code.is_stack_instruction()
        || code.is_string_instruction()
        || code.is_save_restore_instruction()
        || op.op_kinds().iter().any(|k| {
            matches!(
                k,
                K::mem
                    | K::mem_offs
                    | K::mem_mpx
                    | K::mem_mib
                    | K::sibmem
                    | K::mem_vsib32x
                    | K::mem_vsib64x
                    | K::mem_vsib32y
                    | K::mem_vsib64y
                    | K::mem_vsib32z
                    | K::mem_vsib64z
                    | K::seg_rSI
                    | K::es_rDI
                    | K::seg_rDI
                    | K::seg_rBX_al
            )
        });
    let divides = matches!(code.mnemonic(), Mnemonic::Div | Mnemonic::Idiv | Mnemonic::Aam);
    let writes_segment = op.op_kinds().first() == Some(&K::seg_reg);
    let extension =
        code.encoding() != EncodingKind::Legacy || !code.cpuid_features().iter().all(|f| GENERAL_PURPOSE.contains(f));
    let legacy_modes = op.real_mode() && op.virtual8086_mode() && op.protected_mode() && op.compatibility_mode();
    let mode_limited = ((op.mode16() || op.mode32()) && !legacy_modes) || (op.mode64() && !op.long_mode());
    privileged || implicit_memory || divides || writes_segment || extension || mode_limited
}
