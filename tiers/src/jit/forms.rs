//! Which decoded instructions the backend runs inline (step 2, the front end's half): the
//! register-only forms of MOV, LEA, the ALU group, TEST, INC/DEC, and the block-ending Jcc/JMP,
//! at 32- and 64-bit operand size. Chosen from the measured opcode histogram (README, "Tier 1"):
//! these forms make up most instructions of the guest-bench integer workloads. Everything else
//! (memory operands, 8/16-bit forms, ...) goes through the trampoline.
//!
//! Also the flag liveness the backend needs: whether the flags an inline instruction leaves
//! must reach the lazy record (they are dead when a later inline instruction of the block
//! overwrites all six before anything can read them).

use emu::decoded::{Instr, NO_REG, NO_SEG};
use iced_x86::Code;

/// An ALU operation the backend emits as the same host instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alu {
    Add,
    Or,
    Adc,
    Sbb,
    And,
    Sub,
    Xor,
    Cmp,
    Test,
}

impl Alu {
    /// Writes its destination (CMP and TEST only set flags).
    pub fn stores(self) -> bool {
        !matches!(self, Alu::Cmp | Alu::Test)
    }
    /// Reads CF.
    pub fn reads_cf(self) -> bool {
        matches!(self, Alu::Adc | Alu::Sbb)
    }
    /// A logic operation: CF = OF = AF = 0 in the lazy record.
    pub fn is_logic(self) -> bool {
        matches!(self, Alu::And | Alu::Or | Alu::Xor | Alu::Test)
    }
}

/// The second operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    Reg(u8),
    /// Sign-extended to the operand size (fits in 32 bits).
    Imm(i32),
}

/// An inline form. `wide`: 64-bit operand size (else 32-bit, which zero-extends the destination).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `mov dst, src`; an immediate of a 64-bit move may need 64 bits.
    Mov {
        wide: bool,
        dst: u8,
        src: Src,
        imm64: Option<u64>,
    },
    Alu {
        op: Alu,
        wide: bool,
        dst: u8,
        src: Src,
    },
    IncDec {
        inc: bool,
        wide: bool,
        dst: u8,
    },
    /// `lea dst, [base + index << scale + disp] & amask`.
    Lea {
        wide: bool,
        dst: u8,
        base: u8,
        index: u8,
        scale: u8,
        disp: i32,
        mask32: bool,
    },
    /// Block end: RIP = `imm` if condition `cc` holds, else `next_rip`.
    Jcc {
        cc: u8,
    },
    /// Block end: RIP = `imm`.
    Jmp,
    /// `mov dst, [ea]` of `size` bytes, extended as `ext` says: the TLB probed inline.
    Load {
        size: u8,
        dst: u8,
        ea: Ea,
        ext: Ext,
    },
    /// `mov [ea], src` of `size` bytes (1, 2, 4 or 8).
    Store {
        size: u8,
        src: u8,
        ea: Ea,
    },
    /// `shl`/`shr`/`sar dst, count` (1..width-1 after masking), emitted only where its flags are
    /// dead: some are undefined, and the host's need not be tier 0's.
    Shift {
        op: ShiftKind,
        wide: bool,
        dst: u8,
        count: u8,
    },
    /// `imul dst, src (, imm)`: emitted only where its flags are dead (SF, ZF, AF, PF undefined).
    Imul {
        wide: bool,
        dst: u8,
        src: u8,
        imm: Option<i32>,
    },
    /// `rol`/`ror dst, count` (1..width-1 after masking): only where its flags are dead (OF is
    /// undefined for counts above 1). Writes CF and OF only, reads none.
    Rotate {
        left: bool,
        wide: bool,
        dst: u8,
        count: u8,
    },
    /// `not dst` (no flag changes).
    Not {
        wide: bool,
        dst: u8,
    },
    /// `bswap dst` (no flag changes).
    Bswap {
        wide: bool,
        dst: u8,
    },
    /// `movsxd dst, src` (register source; the memory form is a [`Form::Load`]).
    Movsxd {
        dst: u8,
        src: u8,
    },
    /// `cmovcc dst, src` (register source): reads the condition its flag setter left in the
    /// backend's condition register, as a block-ending Jcc does.
    Cmov {
        cc: u8,
        wide: bool,
        dst: u8,
        src: u8,
    },
    /// `push src` (64-bit).
    Push {
        src: u8,
    },
    /// `pop dst` (64-bit).
    Pop {
        dst: u8,
    },
    /// Block end: `call imm` (64-bit, a canonical target).
    Call,
    /// Block end: `ret` / `ret imm16` (64-bit): RIP = the popped address.
    Ret {
        pop: u16,
    },
    /// Block end: `jmp r64` (`ea` is `None`) or `jmp [ea]` (64-bit): RIP = the register or
    /// the loaded quadword.
    JmpInd {
        reg: u8,
        ea: Option<Ea>,
    },
    /// Block end: `call r64` / `call [ea]` (64-bit): the target read first, then the push.
    CallInd {
        reg: u8,
        ea: Option<Ea>,
    },
    /// An ALU operation with a memory operand: `op dst, [ea]` (the result stored in `dst`
    /// unless CMP/TEST), or (`mem_first`) `cmp/test [ea], src` or the read-modify-write
    /// `op [ea], src` (translated for write first, as tier 0 does).
    AluMem {
        op: Alu,
        wide: bool,
        reg: u8,
        src: Src,
        ea: Ea,
        mem_first: bool,
    },
}

/// How a load fills its destination register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ext {
    /// Zero-extended to 64 bits (MOV r32/r64, MOVZX).
    Zero,
    /// Sign-extended to 64 bits (MOVSXD).
    Sign,
    /// Into the low `size` bytes, the rest of the register kept (MOV r8/r16).
    Merge,
}

/// A shift the backend emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShiftKind {
    Shl,
    Shr,
    Sar,
}

/// A 64-bit-mode effective address with no segment base: `base + index << scale + disp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ea {
    pub base: u8,
    pub index: u8,
    pub scale: u8,
    /// Fits in 32 bits unless there is neither base nor index.
    pub disp: u64,
}

impl Form {
    /// Writes all six arithmetic flags without reading any (so earlier flags are dead).
    pub fn kills_flags(self) -> bool {
        match self {
            Form::Alu { op, .. } => !op.reads_cf(),
            Form::Shift { .. } | Form::Imul { .. } => true,
            _ => false,
        }
    }
    /// Neither reads nor writes flags and cannot end the block.
    pub fn flag_neutral(self) -> bool {
        matches!(
            self,
            Form::Mov { .. } | Form::Lea { .. } | Form::Not { .. } | Form::Bswap { .. } | Form::Movsxd { .. }
        )
    }
    /// Emitted only where the flags it leaves are dead.
    pub fn needs_dead_flags(self) -> bool {
        matches!(self, Form::Shift { .. } | Form::Imul { .. } | Form::Rotate { .. })
    }
    /// Writes some flags without reading any: flags before it are dead where the ones after
    /// it are (and it is then emitted inline, its own flags being dead too).
    pub fn writes_flags_only(self) -> bool {
        matches!(self, Form::Rotate { .. })
    }

    /// Adds the guest registers this form reads or writes to `uses` (the register cache keeps
    /// the ones a block uses most in host registers).
    pub fn count_guest_regs(self, uses: &mut [u32; 16]) {
        let mut add = |r: u8| {
            if let Some(n) = uses.get_mut(usize::from(r)) {
                *n += 1;
            }
        };
        let add_ea = |ea: Ea, add: &mut dyn FnMut(u8)| {
            add(ea.base);
            add(ea.index);
        };
        let src_reg = |s: Src| match s {
            Src::Reg(r) => r,
            Src::Imm(_) => NO_REG,
        };
        match self {
            Form::Mov { dst, src, .. } | Form::Alu { dst, src, .. } => {
                add(dst);
                add(src_reg(src));
            }
            Form::IncDec { dst, .. }
            | Form::Shift { dst, .. }
            | Form::Rotate { dst, .. }
            | Form::Not { dst, .. }
            | Form::Bswap { dst, .. } => add(dst),
            Form::Movsxd { dst, src } | Form::Cmov { dst, src, .. } => {
                add(dst);
                add(src);
            }
            Form::Lea { dst, base, index, .. } => {
                add(dst);
                add(base);
                add(index);
            }
            Form::Jcc { .. } | Form::Jmp => {}
            Form::Load { dst: r, ea, .. } | Form::Store { src: r, ea, .. } => {
                add(r);
                add_ea(ea, &mut add);
            }
            Form::Imul { dst, src, .. } => {
                add(dst);
                add(src);
            }
            Form::Push { src: r } | Form::Pop { dst: r } => {
                add(r);
                add(4);
            }
            Form::Call | Form::Ret { .. } => add(4),
            Form::JmpInd { reg, ea } | Form::CallInd { reg, ea } => {
                match ea {
                    Some(ea) => add_ea(ea, &mut add),
                    None => add(reg),
                }
                if matches!(self, Form::CallInd { .. }) {
                    add(4);
                }
            }
            Form::AluMem { reg, src, ea, mem_first, .. } => {
                if !mem_first {
                    add(reg);
                }
                add(src_reg(src));
                add_ea(ea, &mut add);
            }
        }
    }
}

fn gpr(r: u8) -> Option<u8> {
    (r < 16).then_some(r)
}

fn imm32(e: &Instr, wide: bool) -> Option<i32> {
    if wide {
        i32::try_from(e.imm as i64).ok()
    } else {
        Some(e.imm as u32 as i32)
    }
}

/// The memory operand of `e` as an [`Ea`], when it is one the inline TLB probe handles: 64-bit
/// code, 64-bit addressing, no FS/GS base.
fn ea_of(e: &Instr, bits64: bool) -> Option<Ea> {
    if !bits64 || e.amask != u64::MAX || e.lmask != u64::MAX || e.seg != NO_SEG {
        return None;
    }
    let reg_or_none = |r: u8| if r == NO_REG { Some(NO_REG) } else { gpr(r & 15) };
    let (base, index) = (reg_or_none(e.base)?, reg_or_none(e.index)?);
    if (base != NO_REG || index != NO_REG) && i32::try_from(e.disp as i64).is_err() {
        return None;
    }
    Some(Ea { base, index, scale: e.scale, disp: e.disp })
}

/// The inline form of `e` (in a block of 64-bit code when `bits64`), if the backend has one.
pub fn form_of(e: &Instr, bits64: bool) -> Option<Form> {
    let code = Code::try_from(e.code as usize).ok()?;
    if let Some(f) = alu_mem_form(e, code, bits64) {
        return Some(f);
    }
    use Code::*;
    match code {
        Mov_r64_rm64 | Mov_r32_rm32 | Movzx_r32_rm8 | Movzx_r64_rm8 | Movzx_r32_rm16 | Movzx_r64_rm16
            if e.src == NO_REG =>
        {
            let size = match code {
                Mov_r64_rm64 => 8,
                Mov_r32_rm32 => 4,
                Movzx_r32_rm8 | Movzx_r64_rm8 => 1,
                _ => 2,
            };
            return Some(Form::Load { size, dst: gpr(e.dst)?, ea: ea_of(e, bits64)?, ext: Ext::Zero });
        }
        Movsxd_r64_rm32 if e.src == NO_REG => {
            return Some(Form::Load { size: 4, dst: gpr(e.dst)?, ea: ea_of(e, bits64)?, ext: Ext::Sign });
        }
        // AH..BH are registers 16-19: `gpr` leaves them to the handler.
        Mov_r8_rm8 | Mov_r16_rm16 if e.src == NO_REG => {
            let size = if code == Mov_r8_rm8 { 1 } else { 2 };
            return Some(Form::Load { size, dst: gpr(e.dst)?, ea: ea_of(e, bits64)?, ext: Ext::Merge });
        }
        Mov_rm8_r8 | Mov_rm16_r16 if e.dst == NO_REG => {
            let size = if code == Mov_rm8_r8 { 1 } else { 2 };
            return Some(Form::Store { size, src: gpr(e.src)?, ea: ea_of(e, bits64)? });
        }
        Movsxd_r64_rm32 => return Some(Form::Movsxd { dst: gpr(e.dst)?, src: gpr(e.src)? }),
        Rol_rm64_imm8 | Ror_rm64_imm8 | Rol_rm32_imm8 | Ror_rm32_imm8 => {
            let wide = matches!(code, Rol_rm64_imm8 | Ror_rm64_imm8);
            let count = (e.imm as u8) & if wide { 63 } else { 31 };
            let left = matches!(code, Rol_rm64_imm8 | Rol_rm32_imm8);
            // A count of 0 changes no flag: left to the handler.
            return (count != 0).then_some(Form::Rotate { left, wide, dst: gpr(e.dst)?, count });
        }
        Not_rm64 | Not_rm32 => return Some(Form::Not { wide: code == Not_rm64, dst: gpr(e.dst)? }),
        Bswap_r64 | Bswap_r32 => return Some(Form::Bswap { wide: code == Bswap_r64, dst: gpr(e.dst)? }),
        _ if is_cmovcc(code) => {
            let wide = code.op_code().operand_size() == 64;
            if !wide && code.op_code().operand_size() != 32 {
                return None;
            }
            let cc = code.condition_code() as u8 - 1;
            return Some(Form::Cmov { cc, wide, dst: gpr(e.dst)?, src: gpr(e.src)? });
        }
        Mov_rm64_r64 | Mov_rm32_r32 if e.dst == NO_REG => {
            let size = if code == Mov_rm64_r64 { 8 } else { 4 };
            return Some(Form::Store { size, src: gpr(e.src)?, ea: ea_of(e, bits64)? });
        }
        Shl_rm64_imm8 | Shr_rm64_imm8 | Sar_rm64_imm8 | Shl_rm32_imm8 | Shr_rm32_imm8 | Sar_rm32_imm8 => {
            let wide = matches!(code, Shl_rm64_imm8 | Shr_rm64_imm8 | Sar_rm64_imm8);
            let count = (e.imm as u8) & if wide { 63 } else { 31 };
            let op = match code {
                Shl_rm64_imm8 | Shl_rm32_imm8 => ShiftKind::Shl,
                Shr_rm64_imm8 | Shr_rm32_imm8 => ShiftKind::Shr,
                _ => ShiftKind::Sar,
            };
            // A count of 0 changes no flag (and is rare): left to the handler.
            return (count != 0).then_some(Form::Shift { op, wide, dst: gpr(e.dst)?, count });
        }
        Imul_r64_rm64 | Imul_r32_rm32 => {
            return Some(Form::Imul { wide: code == Imul_r64_rm64, dst: gpr(e.dst)?, src: gpr(e.src)?, imm: None });
        }
        Imul_r64_rm64_imm32 | Imul_r64_rm64_imm8 | Imul_r32_rm32_imm32 | Imul_r32_rm32_imm8 => {
            let wide = matches!(code, Imul_r64_rm64_imm32 | Imul_r64_rm64_imm8);
            return Some(Form::Imul { wide, dst: gpr(e.dst)?, src: gpr(e.src)?, imm: Some(imm32(e, wide)?) });
        }
        Push_r64 if bits64 && e.lmask == u64::MAX => return Some(Form::Push { src: gpr(e.dst)? }),
        Pop_r64 if bits64 && e.lmask == u64::MAX => return Some(Form::Pop { dst: gpr(e.dst)? }),
        Retnq if bits64 && e.lmask == u64::MAX => return Some(Form::Ret { pop: 0 }),
        Retnq_imm16 if bits64 && e.lmask == u64::MAX => return Some(Form::Ret { pop: e.imm as u16 }),
        Jmp_rm64 | Call_rm64 if bits64 && e.lmask == u64::MAX => {
            let (reg, ea) = if e.dst != NO_REG { (gpr(e.dst)?, None) } else { (0, Some(ea_of(e, bits64)?)) };
            return Some(if code == Jmp_rm64 { Form::JmpInd { reg, ea } } else { Form::CallInd { reg, ea } });
        }
        Call_rel32_64 if bits64 && e.lmask == u64::MAX && (((e.imm << 16) as i64) >> 16) as u64 == e.imm => {
            return Some(Form::Call);
        }
        _ => {}
    }
    let alu = |op: Alu, wide: bool, kind: u8| -> Option<Form> {
        // kind 0: op rm, r; 1: op r, rm; 2: op rm, imm; 3: op rAX, imm.
        let (dst, src) = match kind {
            0 => (gpr(e.dst)?, Src::Reg(gpr(e.src)?)),
            1 => (gpr(e.dst)?, Src::Reg(gpr(e.src)?)),
            2 => (gpr(e.dst)?, Src::Imm(imm32(e, wide)?)),
            _ => (0, Src::Imm(imm32(e, wide)?)),
        };
        Some(Form::Alu { op, wide, dst, src })
    };
    macro_rules! alu_forms {
        ($($op:ident: $rm64r:ident $r64rm:ident $rm64i32:ident $rm64i8:ident $raxi:ident
                       $rm32r:ident $r32rm:ident $rm32i32:ident $rm32i8:ident $eaxi:ident;)*) => {
            match code {
                $(
                    $rm64r => return alu(Alu::$op, true, 0),
                    $r64rm => return alu(Alu::$op, true, 1),
                    $rm64i32 | $rm64i8 => return alu(Alu::$op, true, 2),
                    $raxi => return alu(Alu::$op, true, 3),
                    $rm32r => return alu(Alu::$op, false, 0),
                    $r32rm => return alu(Alu::$op, false, 1),
                    $rm32i32 | $rm32i8 => return alu(Alu::$op, false, 2),
                    $eaxi => return alu(Alu::$op, false, 3),
                )*
                _ => {}
            }
        };
    }
    alu_forms! {
        Add: Add_rm64_r64 Add_r64_rm64 Add_rm64_imm32 Add_rm64_imm8 Add_RAX_imm32
             Add_rm32_r32 Add_r32_rm32 Add_rm32_imm32 Add_rm32_imm8 Add_EAX_imm32;
        Or: Or_rm64_r64 Or_r64_rm64 Or_rm64_imm32 Or_rm64_imm8 Or_RAX_imm32
            Or_rm32_r32 Or_r32_rm32 Or_rm32_imm32 Or_rm32_imm8 Or_EAX_imm32;
        Adc: Adc_rm64_r64 Adc_r64_rm64 Adc_rm64_imm32 Adc_rm64_imm8 Adc_RAX_imm32
             Adc_rm32_r32 Adc_r32_rm32 Adc_rm32_imm32 Adc_rm32_imm8 Adc_EAX_imm32;
        Sbb: Sbb_rm64_r64 Sbb_r64_rm64 Sbb_rm64_imm32 Sbb_rm64_imm8 Sbb_RAX_imm32
             Sbb_rm32_r32 Sbb_r32_rm32 Sbb_rm32_imm32 Sbb_rm32_imm8 Sbb_EAX_imm32;
        And: And_rm64_r64 And_r64_rm64 And_rm64_imm32 And_rm64_imm8 And_RAX_imm32
             And_rm32_r32 And_r32_rm32 And_rm32_imm32 And_rm32_imm8 And_EAX_imm32;
        Sub: Sub_rm64_r64 Sub_r64_rm64 Sub_rm64_imm32 Sub_rm64_imm8 Sub_RAX_imm32
             Sub_rm32_r32 Sub_r32_rm32 Sub_rm32_imm32 Sub_rm32_imm8 Sub_EAX_imm32;
        Xor: Xor_rm64_r64 Xor_r64_rm64 Xor_rm64_imm32 Xor_rm64_imm8 Xor_RAX_imm32
             Xor_rm32_r32 Xor_r32_rm32 Xor_rm32_imm32 Xor_rm32_imm8 Xor_EAX_imm32;
        Cmp: Cmp_rm64_r64 Cmp_r64_rm64 Cmp_rm64_imm32 Cmp_rm64_imm8 Cmp_RAX_imm32
             Cmp_rm32_r32 Cmp_r32_rm32 Cmp_rm32_imm32 Cmp_rm32_imm8 Cmp_EAX_imm32;
    }
    Some(match code {
        Test_rm64_r64 => alu(Alu::Test, true, 0)?,
        Test_rm64_imm32 => alu(Alu::Test, true, 2)?,
        Test_RAX_imm32 => alu(Alu::Test, true, 3)?,
        Test_rm32_r32 => alu(Alu::Test, false, 0)?,
        Test_rm32_imm32 => alu(Alu::Test, false, 2)?,
        Test_EAX_imm32 => alu(Alu::Test, false, 3)?,
        Mov_rm64_r64 | Mov_r64_rm64 | Mov_rm32_r32 | Mov_r32_rm32 => {
            let wide = matches!(code, Mov_rm64_r64 | Mov_r64_rm64);
            Form::Mov { wide, dst: gpr(e.dst)?, src: Src::Reg(gpr(e.src)?), imm64: None }
        }
        Mov_r64_imm64 | Mov_rm64_imm32 => {
            let dst = gpr(e.dst)?;
            match i32::try_from(e.imm as i64) {
                Ok(i) => Form::Mov { wide: true, dst, src: Src::Imm(i), imm64: None },
                Err(_) => Form::Mov { wide: true, dst, src: Src::Imm(0), imm64: Some(e.imm) },
            }
        }
        Mov_r32_imm32 | Mov_rm32_imm32 => {
            Form::Mov { wide: false, dst: gpr(e.dst)?, src: Src::Imm(e.imm as u32 as i32), imm64: None }
        }
        Inc_rm64 | Inc_rm32 | Dec_rm64 | Dec_rm32 => Form::IncDec {
            inc: matches!(code, Inc_rm64 | Inc_rm32),
            wide: matches!(code, Inc_rm64 | Dec_rm64),
            dst: gpr(e.dst)?,
        },
        Lea_r64_m | Lea_r32_m => {
            let mask32 = match e.amask {
                u64::MAX => false,
                0xffff_ffff => true,
                _ => return None,
            };
            let disp = if mask32 { e.disp as u32 as i32 } else { i32::try_from(e.disp as i64).ok()? };
            let reg_or_none = |r: u8| if r == NO_REG { Some(NO_REG) } else { gpr(r & 15) };
            Form::Lea {
                wide: code == Lea_r64_m,
                dst: gpr(e.dst)?,
                base: reg_or_none(e.base)?,
                index: reg_or_none(e.index)?,
                scale: e.scale,
                disp,
                mask32,
            }
        }
        _ => {
            if code.is_jcc_short_or_near() {
                Form::Jcc { cc: code.condition_code() as u8 - 1 }
            } else if code.is_jmp_short_or_near() {
                Form::Jmp
            } else {
                return None;
            }
        }
    })
}

/// The ALU forms whose memory operand is only read (`op r, [m]`, `cmp/test [m], r|imm`).
fn alu_mem_form(e: &Instr, code: Code, bits64: bool) -> Option<Form> {
    use Code::*;
    let (op, wide, mem_first, imm) = match code {
        Add_r64_rm64 => (Alu::Add, true, false, false),
        Add_r32_rm32 => (Alu::Add, false, false, false),
        Or_r64_rm64 => (Alu::Or, true, false, false),
        Or_r32_rm32 => (Alu::Or, false, false, false),
        Adc_r64_rm64 => (Alu::Adc, true, false, false),
        Adc_r32_rm32 => (Alu::Adc, false, false, false),
        Sbb_r64_rm64 => (Alu::Sbb, true, false, false),
        Sbb_r32_rm32 => (Alu::Sbb, false, false, false),
        And_r64_rm64 => (Alu::And, true, false, false),
        And_r32_rm32 => (Alu::And, false, false, false),
        Sub_r64_rm64 => (Alu::Sub, true, false, false),
        Sub_r32_rm32 => (Alu::Sub, false, false, false),
        Xor_r64_rm64 => (Alu::Xor, true, false, false),
        Xor_r32_rm32 => (Alu::Xor, false, false, false),
        Cmp_r64_rm64 => (Alu::Cmp, true, false, false),
        Cmp_r32_rm32 => (Alu::Cmp, false, false, false),
        Cmp_rm64_r64 => (Alu::Cmp, true, true, false),
        Cmp_rm32_r32 => (Alu::Cmp, false, true, false),
        Cmp_rm64_imm32 | Cmp_rm64_imm8 => (Alu::Cmp, true, true, true),
        Cmp_rm32_imm32 | Cmp_rm32_imm8 => (Alu::Cmp, false, true, true),
        Test_rm64_r64 => (Alu::Test, true, true, false),
        Test_rm32_r32 => (Alu::Test, false, true, false),
        Test_rm64_imm32 => (Alu::Test, true, true, true),
        Test_rm32_imm32 => (Alu::Test, false, true, true),
        // Read-modify-write: `op [ea], r|imm`.
        Add_rm64_r64 => (Alu::Add, true, true, false),
        Add_rm32_r32 => (Alu::Add, false, true, false),
        Add_rm64_imm32 | Add_rm64_imm8 => (Alu::Add, true, true, true),
        Add_rm32_imm32 | Add_rm32_imm8 => (Alu::Add, false, true, true),
        Or_rm64_r64 => (Alu::Or, true, true, false),
        Or_rm32_r32 => (Alu::Or, false, true, false),
        Or_rm64_imm32 | Or_rm64_imm8 => (Alu::Or, true, true, true),
        Or_rm32_imm32 | Or_rm32_imm8 => (Alu::Or, false, true, true),
        Adc_rm64_r64 => (Alu::Adc, true, true, false),
        Adc_rm32_r32 => (Alu::Adc, false, true, false),
        Adc_rm64_imm32 | Adc_rm64_imm8 => (Alu::Adc, true, true, true),
        Adc_rm32_imm32 | Adc_rm32_imm8 => (Alu::Adc, false, true, true),
        Sbb_rm64_r64 => (Alu::Sbb, true, true, false),
        Sbb_rm32_r32 => (Alu::Sbb, false, true, false),
        Sbb_rm64_imm32 | Sbb_rm64_imm8 => (Alu::Sbb, true, true, true),
        Sbb_rm32_imm32 | Sbb_rm32_imm8 => (Alu::Sbb, false, true, true),
        And_rm64_r64 => (Alu::And, true, true, false),
        And_rm32_r32 => (Alu::And, false, true, false),
        And_rm64_imm32 | And_rm64_imm8 => (Alu::And, true, true, true),
        And_rm32_imm32 | And_rm32_imm8 => (Alu::And, false, true, true),
        Sub_rm64_r64 => (Alu::Sub, true, true, false),
        Sub_rm32_r32 => (Alu::Sub, false, true, false),
        Sub_rm64_imm32 | Sub_rm64_imm8 => (Alu::Sub, true, true, true),
        Sub_rm32_imm32 | Sub_rm32_imm8 => (Alu::Sub, false, true, true),
        Xor_rm64_r64 => (Alu::Xor, true, true, false),
        Xor_rm32_r32 => (Alu::Xor, false, true, false),
        Xor_rm64_imm32 | Xor_rm64_imm8 => (Alu::Xor, true, true, true),
        Xor_rm32_imm32 | Xor_rm32_imm8 => (Alu::Xor, false, true, true),
        _ => return None,
    };
    let ea = ea_of(e, bits64)?;
    if mem_first {
        if e.dst != NO_REG {
            return None;
        }
        let src = if imm { Src::Imm(imm32(e, wide)?) } else { Src::Reg(gpr(e.src)?) };
        Some(Form::AluMem { op, wide, reg: 0, src, ea, mem_first })
    } else {
        if e.src != NO_REG {
            return None;
        }
        Some(Form::AluMem { op, wide, reg: gpr(e.dst)?, src: Src::Imm(0), ea, mem_first })
    }
}

fn is_cmovcc(code: Code) -> bool {
    use iced_x86::Mnemonic::*;
    matches!(
        code.mnemonic(),
        Cmovo
            | Cmovno
            | Cmovb
            | Cmovae
            | Cmove
            | Cmovne
            | Cmovbe
            | Cmova
            | Cmovs
            | Cmovns
            | Cmovp
            | Cmovnp
            | Cmovl
            | Cmovge
            | Cmovle
            | Cmovg
    )
}

/// The condition code the instruction after `i` reads from the backend's condition register
/// (a block-ending Jcc or a CMOVcc), if any: its flag setter evaluates it right away.
pub fn next_cond(forms: &[Option<Form>], i: usize) -> Option<u8> {
    match forms.get(i + 1) {
        Some(Some(Form::Jcc { cc } | Form::Cmov { cc, .. })) => Some(*cc),
        _ => None,
    }
}

/// Whether `e` is a near branch whose target is known only when it runs (JMP/CALL r/m, RET):
/// its block ends with the inline lookup of the indirect-branch table. Near branches keep the
/// mode, so the target's mode key is the block's own.
pub fn is_near_indirect(e: &Instr) -> bool {
    Code::try_from(e.code as usize)
        .is_ok_and(|c| c.is_jmp_near_indirect() || c.is_call_near_indirect() || c.mnemonic() == iced_x86::Mnemonic::Ret)
}

/// Whether the flags inline instruction `i` of `forms` leaves are dead: a later instruction
/// overwrites all six first, with only flag-neutral inline instructions in between.
pub fn flags_dead_after(forms: &[Option<Form>], i: usize) -> bool {
    for f in &forms[i + 1..] {
        match f {
            Some(f) if f.kills_flags() => return true,
            Some(f) if f.flag_neutral() || f.writes_flags_only() => continue,
            _ => return false,
        }
    }
    false
}
