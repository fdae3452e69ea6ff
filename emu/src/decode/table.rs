//! The handler table: the Rust counterpart of Bochs's `ia_opcodes.def` (docs/ARCHITECTURE.md, "Conventions"). Each family
//! file in `interp/` lists its rows ([`Row`]); a row maps an iced-x86 `Code` to its
//! register-form and memory-form handlers. Beside each `Code`'s handlers the table keeps its
//! [`FormInfo`] (`info`): which flags it reads, writes and leaves undefined, whether it can
//! fault, whether it ends a block, all computed once from iced-x86's instruction info when the
//! table is built. So it is written down once, by the decoder's authors, and shared by `decode`
//! (block ends), the conformance masks and a JIT.

use crate::decoded::{FormInfo, Handler, Row};
use crate::interp;
use iced_x86::Code;
use std::sync::OnceLock;

/// The family files, in the order `families()` lists their rows.
pub const FAMILY_NAMES: [&str; 17] = [
    "arith",
    "bit",
    "ctrl_xfer",
    "data_xfer",
    "flag_ctrl",
    "io",
    "legacy",
    "logical",
    "misc",
    "mul_div",
    "shift",
    "sse",
    "stack",
    "string",
    "sys",
    "system",
    "x87",
];

/// Every family's rows, in the order of `FAMILY_NAMES`.
pub fn families() -> [&'static [&'static [Row]]; 17] {
    [
        interp::arith::ROWS,
        interp::bit::ROWS,
        interp::ctrl_xfer::ROWS,
        interp::data_xfer::ROWS,
        interp::flag_ctrl::ROWS,
        interp::io::ROWS,
        interp::legacy::ROWS,
        interp::logical::ROWS,
        interp::misc::ROWS,
        interp::mul_div::ROWS,
        interp::shift::ROWS,
        interp::sse::ROWS,
        interp::stack::ROWS,
        interp::string::ROWS,
        interp::sys::ROWS,
        interp::system::ROWS,
        interp::x87::ROWS,
    ]
}

/// One `Code`'s entry: its handlers and what the table knows about it.
struct Slot {
    reg: Option<Handler>,
    mem: Option<Handler>,
    info: FormInfo,
}

fn table() -> &'static [Slot] {
    static TABLE: OnceLock<Vec<Slot>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut handlers: Vec<(Option<Handler>, Option<Handler>)> = vec![(None, None); Code::values().len()];
        for r in families().iter().flat_map(|f| f.iter()).flat_map(|rows| rows.iter()) {
            let slot = &mut handlers[r.code as usize];
            if r.reg.is_some() {
                slot.0 = r.reg;
            }
            if r.mem.is_some() {
                slot.1 = r.mem;
            }
        }
        Code::values()
            .zip(handlers)
            .map(|(code, (reg, mem))| Slot { reg, mem, info: FormInfo::of(code, reg.is_some()) })
            .collect()
    })
}

/// The handler for `code` in its register (`mem == false`) or memory form.
pub fn lookup(code: Code, mem: bool) -> Option<Handler> {
    let slot = &table()[code as usize];
    if mem {
        slot.mem
    } else {
        slot.reg
    }
}

/// What the table knows about `code` besides its handlers: flags read, written and undefined,
/// whether it can fault, whether it ends a block. For a decoded entry: `info_of(e.code)`.
pub fn info(code: Code) -> &'static FormInfo {
    &table()[code as usize].info
}

/// [`info`] for an `Instr::code` value (`Code::INVALID`'s entry if out of range).
pub fn info_of(code: u16) -> &'static FormInfo {
    let t = table();
    &t.get(code as usize).unwrap_or(&t[Code::INVALID as usize]).info
}

/// Every `Code` with at least one handler (for README lists and the conformance generator).
pub fn implemented_codes() -> Vec<Code> {
    let mut v: Vec<Code> =
        families().iter().flat_map(|f| f.iter()).flat_map(|rows| rows.iter().map(|r| r.code)).collect();
    v.sort_by_key(|c| *c as u16);
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoded::CountRule;
    use crate::rflags::{AF, CF, DF, OF, PF, SF, ZF};
    use iced_x86::{Instruction, OpKind};

    const OSZAPC: u32 = (OF | SF | ZF | AF | PF | CF) as u32;

    fn flags(code: Code, imm8: u8) -> (u32, u32, u32) {
        let f = info(code).flags_for(imm8);
        (f.read, f.written, f.undefined)
    }

    /// Flag effects as the SDM Vol. 2 instruction pages state them ("Flags Affected").
    #[test]
    fn flags_match_the_sdm_for_sample_forms() {
        let b = |x: u64| x as u32;
        // ADC: "The OF, SF, ZF, AF, CF, and PF flags are set according to the result"; it adds CF.
        assert_eq!(flags(Code::Adc_rm32_r32, 0), (b(CF), OSZAPC, 0));
        // MUL, IMUL: "The OF and CF flags are set to 0 if the upper half of the result is 0 ...
        // The SF, ZF, AF, and PF flags are undefined."
        assert_eq!(flags(Code::Mul_rm32, 0), (0, b(OF | CF), b(SF | ZF | AF | PF)));
        assert_eq!(flags(Code::Imul_r32_rm32, 0), (0, b(OF | CF), b(SF | ZF | AF | PF)));
        // INC: "The CF flag is not affected. The OF, SF, ZF, AF, and PF flags are set".
        assert_eq!(flags(Code::Inc_rm32, 0), (0, b(OF | SF | ZF | AF | PF), 0));
        // AND: "The OF and CF flags are cleared; the SF, ZF, and PF flags are set according to
        // the result. The state of the AF flag is undefined."
        assert_eq!(flags(Code::And_rm32_imm32, 0), (0, b(OF | CF | SF | ZF | PF), b(AF)));
        // DIV: "The CF, OF, SF, ZF, AF, and PF flags are undefined."
        assert_eq!(flags(Code::Div_rm32, 0), (0, 0, OSZAPC));
        // BSF: "The ZF flag is set to 1 if the source operand is 0 ... The CF, OF, SF, AF, and PF
        // flags are undefined."
        assert_eq!(flags(Code::Bsf_r32_rm32, 0), (0, b(ZF), b(CF | OF | SF | AF | PF)));
        // BT: "The CF flag contains the value of the selected bit. The ZF flag is unaffected. The
        // OF, SF, AF, and PF flags are undefined."
        assert_eq!(flags(Code::Bt_rm32_r32, 0), (0, b(CF), b(OF | SF | AF | PF)));
        // CMC complements CF; STD sets DF; Jcc reads its condition.
        assert_eq!(flags(Code::Cmc, 0), (b(CF), b(CF), 0));
        assert_eq!(flags(Code::Std, 0), (0, b(DF), 0));
        assert_eq!(flags(Code::Je_rel32_64, 0), (b(ZF), 0, 0));
    }

    /// SAL/SAR/SHL/SHR: "The CF flag contains the value of the last bit shifted out ... The OF
    /// flag is affected only on 1-bit shifts ... Otherwise, it is undefined for multi-bit
    /// shifts. The SF, ZF, and PF flags are set according to the result. If the count is 0, the
    /// flags are not affected. For a non-zero count, the AF flag is undefined." The count is
    /// masked to 5 bits (6 with REX.W).
    #[test]
    fn shifts_by_an_immediate_follow_the_masked_count() {
        let b = |x: u64| x as u32;
        assert_eq!(flags(Code::Shl_rm32_imm8, 1), (0, b(CF | OF | SF | ZF | PF), b(AF)));
        assert_eq!(flags(Code::Shl_rm32_imm8, 4), (0, b(CF | SF | ZF | PF), b(OF | AF)));
        assert_eq!(flags(Code::Shl_rm32_imm8, 0), (0, 0, 0));
        assert_eq!(flags(Code::Shl_rm32_imm8, 0x20), (0, 0, 0), "masked to 0");
        assert_eq!(flags(Code::Shl_rm32_imm8, 0x21), flags(Code::Shl_rm32_imm8, 1), "masked to 1");
        assert_eq!(flags(Code::Shl_rm64_imm8, 0x20), (0, b(CF | SF | ZF | PF), b(OF | AF)), "6-bit mask");
        assert_eq!(flags(Code::Shl_rm32_1, 0), (0, b(CF | OF | SF | ZF | PF), b(AF)));
        // By CL the count is unknown: iced-x86 describes a multi-bit shift (coarser than the
        // SDM for a count of 1), and a count of 0 keeps every flag.
        assert_eq!(flags(Code::Shl_rm32_CL, 1), (0, b(CF | SF | ZF | PF), b(OF | AF)));
        assert!(info(Code::Shl_rm32_CL).writes_conditionally);
        assert!(!info(Code::Shl_rm32_imm8).writes_conditionally);
    }

    /// RCL/RCR: "If the masked count is 0, the flags are not affected. If the masked count is
    /// 1, then the OF flag is affected, otherwise (masked count is greater than 1) the OF flag
    /// is undefined." The mask is 5 bits; the modulo-9 or -17 rotation count does not decide.
    /// SHLD/SHRD: "If the count is greater than the operand size, the flags are undefined."
    #[test]
    fn rotates_through_carry_and_double_shifts_follow_the_sdm_not_iced() {
        let b = |x: u64| x as u32;
        assert_eq!(flags(Code::Rcl_rm8_imm8, 1), (b(CF), b(CF | OF), 0));
        assert_eq!(flags(Code::Rcl_rm8_imm8, 9), (b(CF), b(CF), b(OF)), "rotates by 0, OF undefined");
        assert_eq!(flags(Code::Rcl_rm8_imm8, 10), (b(CF), b(CF), b(OF)), "rotates by 1, OF undefined");
        assert_eq!(flags(Code::Rcr_rm16_imm8, 17), (b(CF), b(CF), b(OF)));
        assert_eq!(flags(Code::Rcl_rm8_imm8, 0x20), (0, 0, 0));
        assert_eq!(flags(Code::Shld_rm16_r16_imm8, 16).2 & OSZAPC, b(OF | AF));
        assert_eq!(flags(Code::Shld_rm16_r16_imm8, 17), (0, 0, OSZAPC));
        assert_eq!(flags(Code::Shrd_rm16_r16_imm8, 0x1a), (0, 0, OSZAPC));
        assert_eq!(flags(Code::Shrd_rm32_r32_imm8, 0x1a).2 & OSZAPC, b(OF | AF), "32-bit: count < 32");
        assert_eq!(flags(Code::Shld_rm16_r16_CL, 0), (0, 0, OSZAPC), "CL may be above 16");
    }

    /// Apart from those SDM corrections, the per-`Code` data plus the count rule give what
    /// iced-x86 says for each instance.
    #[test]
    fn flags_for_agrees_with_iced_x86_for_every_code_and_immediate() {
        let iced = |code: Code, imm8: u8| {
            let mut i = Instruction::default();
            i.set_code(code);
            i.set_op0_kind(OpKind::Memory);
            i.set_immediate8(imm8);
            (
                crate::decoded::rflags_of(i.rflags_read()),
                crate::decoded::rflags_of(i.rflags_written() | i.rflags_cleared() | i.rflags_set()),
                crate::decoded::rflags_of(i.rflags_undefined()),
            )
        };
        for code in Code::values() {
            if matches!(code, Code::Shld_rm16_r16_CL | Code::Shrd_rm16_r16_CL) {
                continue;
            }
            let form = info(code);
            for imm8 in 0..=255u8 {
                let f = form.flags_for(imm8);
                let want = match form.count {
                    // iced-x86 at a count of the same class (0, 1, more), masked the SDM's way.
                    Some((rule, _)) => match rule.masked(imm8) {
                        n if rule == CountRule::Mask1FOver16 && n > 16 => continue,
                        n => iced(code, n.min(2)),
                    },
                    None => iced(code, imm8),
                };
                assert_eq!((f.read, f.written, f.undefined), want, "{code:?} imm8 {imm8}");
            }
        }
    }

    #[test]
    fn faults_and_block_ends_follow_the_rule() {
        // Register forms of plain integer arithmetic cannot fault; memory forms always can.
        assert!(!info(Code::Add_r32_rm32).can_fault(false));
        assert!(info(Code::Add_r32_rm32).can_fault(true));
        assert!(!info(Code::Bsf_r32_rm32).can_fault(false));
        // #DE, I/O and IOPL, the stack, segment loads, x87/SSE state, privileged.
        for code in [
            Code::Div_rm32,
            Code::Idiv_rm64,
            Code::In_AL_imm8,
            Code::Out_DX_AL,
            Code::Cli,
            Code::Push_r64,
            Code::Pushfq,
            Code::Mov_Sreg_rm16,
            Code::Fadd_st0_sti,
            Code::Addps_xmm_xmmm128,
            Code::Hlt,
            Code::Mov_cr_r64,
            Code::Rdtsc,
            Code::Ud2,
        ] {
            assert!(info(code).can_fault(false), "{code:?}");
        }
        // MOV r/m16, Sreg only reads the segment register.
        assert!(!info(Code::Mov_rm16_Sreg).can_fault(false));
        // Block ends: control transfers (which set RIP), traps and INVALID (which do not).
        for (code, sets_rip) in [
            (Code::Jmp_rel32_64, true),
            (Code::Je_rel8_64, true),
            (Code::Retnq, true),
            (Code::Call_rm64, true),
            (Code::Int3, false),
            (Code::Ud2, false),
            (Code::INVALID, false),
        ] {
            let f = info(code);
            assert!(f.ends_block, "{code:?}");
            assert_eq!(f.sets_rip, sets_rip, "{code:?}");
        }
        assert!(!info(Code::Add_r32_rm32).ends_block);
        assert!(!info(Code::Movsb_m8_m8).ends_block);
    }
}
