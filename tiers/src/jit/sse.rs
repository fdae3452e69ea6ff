//! Which SSE/SSE2 instructions the backend runs inline (the front end's half; issue 10, fifth
//! round, part E): XMM moves between registers, memory and GPRs, the packed integer and
//! logic operations, and the IEEE arithmetic ADD/SUB/MUL/DIV/SQRT/MIN/MAX in their PS, PD, SS
//! and SD forms. The guest XMM registers stay in `cpu.state.xmm`: an inline form loads its
//! operands into host XMM registers, runs the same host instruction and stores the result back.
//!
//! The host CPU is the reference here as it is for tier 0 (the instruction differential checks
//! tier 0 against it): a legacy SSE instruction gives the same bits on every x86-64 host, and a
//! floating-point one the same result and MXCSR flags when it runs under the guest's MXCSR
//! (rounding, DAZ, FTZ) with every exception masked, which the backend checks at run time
//! (the handler otherwise, which raises #XM/#UD as tier 0 does). Left out on purpose: RCPPS,
//! RSQRTPS and their scalar forms (tier 0 computes them to a documented bound, not the host's
//! bits), compares and conversions (not measured hot), and anything with an immediate.

use super::operand::{ea_of, Ea};
use emu::decoded::{Instr, NO_REG};
use iced_x86::{Code, MandatoryPrefix, OpCodeTableKind};

/// What an inline SSE form does with its XMM register `xmm` and its other operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SseKind {
    /// `xmm = op(xmm, other)`: the host instruction `op xmm0, xmm1` (legacy `0F` map, with
    /// mandatory prefix `prefix`, 0 for none). A memory operand is `size` bytes (16: must be
    /// 16-byte aligned). `fp`: runs under the guest's MXCSR.
    Op { prefix: u8, opcode: u8, fp: bool, size: u8 },
    /// `xmm = other`, zero-extended from `size` bytes (16: the whole register; `aligned`:
    /// a memory operand must be 16-byte aligned).
    Load { size: u8, aligned: bool },
    /// `movss`/`movsd xmm, xmm`: the low `size` bytes of the other register, the rest kept.
    Merge { size: u8 },
    /// `other = the low size bytes of xmm` (memory, or a GPR: a 32-bit write zero-extends).
    Store { size: u8, aligned: bool },
}

/// The operand that is not the XMM register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Other {
    Xmm(u8),
    Mem(Ea),
    Gpr(u8),
}

/// An inline SSE form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SseForm {
    pub kind: SseKind,
    pub xmm: u8,
    pub other: Other,
}

impl SseForm {
    /// The guest GPRs it reads or writes (the address registers and a MOVD/MOVQ operand).
    pub fn gprs(self) -> [u8; 2] {
        match self.other {
            Other::Mem(ea) => [ea.base, ea.index],
            Other::Gpr(g) => [g, NO_REG],
            Other::Xmm(_) => [NO_REG, NO_REG],
        }
    }
}

/// The packed integer and logic operations (no MXCSR effect), all `xmm, xmm/m128`.
const INT_OPS: &[Code] = {
    use Code::*;
    &[
        Paddb_xmm_xmmm128,
        Paddw_xmm_xmmm128,
        Paddd_xmm_xmmm128,
        Paddq_xmm_xmmm128,
        Psubb_xmm_xmmm128,
        Psubw_xmm_xmmm128,
        Psubd_xmm_xmmm128,
        Psubq_xmm_xmmm128,
        Paddsb_xmm_xmmm128,
        Paddsw_xmm_xmmm128,
        Paddusb_xmm_xmmm128,
        Paddusw_xmm_xmmm128,
        Psubsb_xmm_xmmm128,
        Psubsw_xmm_xmmm128,
        Psubusb_xmm_xmmm128,
        Psubusw_xmm_xmmm128,
        Pand_xmm_xmmm128,
        Pandn_xmm_xmmm128,
        Por_xmm_xmmm128,
        Pxor_xmm_xmmm128,
        Pcmpeqb_xmm_xmmm128,
        Pcmpeqw_xmm_xmmm128,
        Pcmpeqd_xmm_xmmm128,
        Pcmpgtb_xmm_xmmm128,
        Pcmpgtw_xmm_xmmm128,
        Pcmpgtd_xmm_xmmm128,
        Pmullw_xmm_xmmm128,
        Pmulhw_xmm_xmmm128,
        Pmulhuw_xmm_xmmm128,
        Pmuludq_xmm_xmmm128,
        Pmaddwd_xmm_xmmm128,
        Pavgb_xmm_xmmm128,
        Pavgw_xmm_xmmm128,
        Pminub_xmm_xmmm128,
        Pmaxub_xmm_xmmm128,
        Pminsw_xmm_xmmm128,
        Pmaxsw_xmm_xmmm128,
        Psadbw_xmm_xmmm128,
        Punpcklbw_xmm_xmmm128,
        Punpcklwd_xmm_xmmm128,
        Punpckldq_xmm_xmmm128,
        Punpcklqdq_xmm_xmmm128,
        Punpckhbw_xmm_xmmm128,
        Punpckhwd_xmm_xmmm128,
        Punpckhdq_xmm_xmmm128,
        Punpckhqdq_xmm_xmmm128,
        Packsswb_xmm_xmmm128,
        Packssdw_xmm_xmmm128,
        Packuswb_xmm_xmmm128,
        Andps_xmm_xmmm128,
        Andpd_xmm_xmmm128,
        Andnps_xmm_xmmm128,
        Andnpd_xmm_xmmm128,
        Orps_xmm_xmmm128,
        Orpd_xmm_xmmm128,
        Xorps_xmm_xmmm128,
        Xorpd_xmm_xmmm128,
        Unpcklps_xmm_xmmm128,
        Unpcklpd_xmm_xmmm128,
        Unpckhps_xmm_xmmm128,
        Unpckhpd_xmm_xmmm128,
    ]
};

/// The IEEE arithmetic (MXCSR rounding, DAZ/FTZ and flags): (code, memory operand bytes).
const FP_OPS: &[(Code, u8)] = {
    use Code::*;
    &[
        (Addps_xmm_xmmm128, 16),
        (Addpd_xmm_xmmm128, 16),
        (Addss_xmm_xmmm32, 4),
        (Addsd_xmm_xmmm64, 8),
        (Subps_xmm_xmmm128, 16),
        (Subpd_xmm_xmmm128, 16),
        (Subss_xmm_xmmm32, 4),
        (Subsd_xmm_xmmm64, 8),
        (Mulps_xmm_xmmm128, 16),
        (Mulpd_xmm_xmmm128, 16),
        (Mulss_xmm_xmmm32, 4),
        (Mulsd_xmm_xmmm64, 8),
        (Divps_xmm_xmmm128, 16),
        (Divpd_xmm_xmmm128, 16),
        (Divss_xmm_xmmm32, 4),
        (Divsd_xmm_xmmm64, 8),
        (Sqrtps_xmm_xmmm128, 16),
        (Sqrtpd_xmm_xmmm128, 16),
        (Sqrtss_xmm_xmmm32, 4),
        (Sqrtsd_xmm_xmmm64, 8),
        (Minps_xmm_xmmm128, 16),
        (Minpd_xmm_xmmm128, 16),
        (Minss_xmm_xmmm32, 4),
        (Minsd_xmm_xmmm64, 8),
        (Maxps_xmm_xmmm128, 16),
        (Maxpd_xmm_xmmm128, 16),
        (Maxss_xmm_xmmm32, 4),
        (Maxsd_xmm_xmmm64, 8),
    ]
};

/// The host encoding of `code` (a legacy `0F xx /r` instruction): (mandatory prefix, opcode).
fn encoding(code: Code) -> Option<(u8, u8)> {
    let info = code.op_code();
    if info.table() != OpCodeTableKind::T0F || info.op_code() > 0xff {
        return None;
    }
    let prefix = match info.mandatory_prefix() {
        MandatoryPrefix::None | MandatoryPrefix::PNP => 0,
        MandatoryPrefix::P66 => 0x66,
        MandatoryPrefix::PF3 => 0xf3,
        MandatoryPrefix::PF2 => 0xf2,
    };
    Some((prefix, info.op_code() as u8))
}

/// The inline SSE form of `e` (in a block of 64-bit code when `bits64`), if there is one.
pub fn form_of(e: &Instr, bits64: bool) -> Option<SseForm> {
    use Code::*;
    let code = Code::try_from(e.code as usize).ok()?;
    let xmm = |r: u8| (r < 16).then_some(r);
    let gpr = |r: u8| (r < 16).then_some(r);
    // `xmm, xmm/m` forms: the XMM register is `dst`, the other operand `src` or memory.
    let rm_other = || -> Option<Other> {
        if e.src != NO_REG {
            Some(Other::Xmm(xmm(e.src)?))
        } else {
            Some(Other::Mem(ea_of(e, bits64)?))
        }
    };
    let op = |fp: bool, size: u8| -> Option<SseForm> {
        let (prefix, opcode) = encoding(code)?;
        Some(SseForm { kind: SseKind::Op { prefix, opcode, fp, size }, xmm: xmm(e.dst)?, other: rm_other()? })
    };
    if INT_OPS.contains(&code) {
        return op(false, 16);
    }
    if let Some(&(_, size)) = FP_OPS.iter().find(|(c, _)| *c == code) {
        return op(true, size);
    }
    let load = |size: u8, aligned: bool| -> Option<SseForm> {
        Some(SseForm { kind: SseKind::Load { size, aligned }, xmm: xmm(e.dst)?, other: rm_other()? })
    };
    // `xmm/m, xmm` forms: the XMM register is `src`; a register destination is a move the
    // other way.
    let store = |size: u8, aligned: bool, reg_kind: SseKind| -> Option<SseForm> {
        if e.dst != NO_REG {
            return Some(SseForm { kind: reg_kind, xmm: xmm(e.dst)?, other: Other::Xmm(xmm(e.src)?) });
        }
        Some(SseForm { kind: SseKind::Store { size, aligned }, xmm: xmm(e.src)?, other: Other::Mem(ea_of(e, bits64)?) })
    };
    let copy = SseKind::Load { size: 16, aligned: false };
    match code {
        Movaps_xmm_xmmm128 | Movapd_xmm_xmmm128 | Movdqa_xmm_xmmm128 => load(16, true),
        Movups_xmm_xmmm128 | Movupd_xmm_xmmm128 | Movdqu_xmm_xmmm128 => load(16, false),
        Movaps_xmmm128_xmm | Movapd_xmmm128_xmm | Movdqa_xmmm128_xmm => store(16, true, copy),
        Movups_xmmm128_xmm | Movupd_xmmm128_xmm | Movdqu_xmmm128_xmm => store(16, false, copy),
        Movq_xmm_xmmm64 => load(8, false),
        Movq_xmmm64_xmm => store(8, false, SseKind::Load { size: 8, aligned: false }),
        // A register source merges; a memory one zero-extends.
        Movsd_xmm_xmmm64 | Movss_xmm_xmmm32 => {
            let size = if code == Movsd_xmm_xmmm64 { 8 } else { 4 };
            if e.src != NO_REG {
                Some(SseForm { kind: SseKind::Merge { size }, xmm: xmm(e.dst)?, other: Other::Xmm(xmm(e.src)?) })
            } else {
                load(size, false)
            }
        }
        Movsd_xmmm64_xmm => store(8, false, SseKind::Merge { size: 8 }),
        Movss_xmmm32_xmm => store(4, false, SseKind::Merge { size: 4 }),
        Movd_xmm_rm32 | Movq_xmm_rm64 => {
            let size = if code == Movq_xmm_rm64 { 8 } else { 4 };
            if e.src != NO_REG {
                Some(SseForm {
                    kind: SseKind::Load { size, aligned: false },
                    xmm: xmm(e.dst)?,
                    other: Other::Gpr(gpr(e.src)?),
                })
            } else {
                Some(SseForm {
                    kind: SseKind::Load { size, aligned: false },
                    xmm: xmm(e.dst)?,
                    other: Other::Mem(ea_of(e, bits64)?),
                })
            }
        }
        Movd_rm32_xmm | Movq_rm64_xmm => {
            let size = if code == Movq_rm64_xmm { 8 } else { 4 };
            let other = if e.dst != NO_REG { Other::Gpr(gpr(e.dst)?) } else { Other::Mem(ea_of(e, bits64)?) };
            Some(SseForm { kind: SseKind::Store { size, aligned: false }, xmm: xmm(e.src)?, other })
        }
        _ => None,
    }
}
