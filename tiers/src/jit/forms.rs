//! Which decoded instructions the backend runs inline (the front end's half): MOV, LEA, the
//! ALU group, TEST, INC/DEC, shifts, DIV, SETcc/CMOVcc, loads, stores, the stack and branch
//! forms listed in the [`Form`] variants, chosen from the measured opcode histogram weighted
//! by executions (README, "Tier 1"). Everything else goes through the trampoline. A form may
//! be inline only where its flags are dead ([`Form::needs_dead_flags`]: shifts of memory).
//!
//! Also the flag liveness the backend needs: whether the flags an inline instruction leaves
//! must reach the lazy record (they are dead when a later inline instruction of the block
//! overwrites all six before anything can read them).

use super::operand::ea_of;
pub use super::operand::Ea;
use emu::decoded::{Instr, NO_REG};
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
    /// INC/DEC of a memory operand (the register forms are [`Form::IncDec`]): CF kept.
    Inc,
    Dec,
}

impl Alu {
    /// Writes its destination (CMP and TEST only set flags).
    pub fn stores(self) -> bool {
        !matches!(self, Alu::Cmp | Alu::Test)
    }
    /// Reads CF (INC and DEC keep it: the host instruction gets the guest's).
    pub fn reads_cf(self) -> bool {
        matches!(self, Alu::Adc | Alu::Sbb | Alu::Inc | Alu::Dec)
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

/// An inline form. `wide`: 64-bit operand size (else 32-bit, which zero-extends the destination);
/// `size`: the operand size in bytes (1 and 2 merge into the register's low byte or word).
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
        size: u8,
        dst: u8,
        src: Src,
    },
    IncDec {
        inc: bool,
        size: u8,
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
    /// `shl`/`shr`/`sar dst, count` (1..width-1 after masking). Where its flags are live they
    /// are written to the record as tier 0 writes them (OF and AF are undefined for counts
    /// above 1, and the host's need not be tier 0's).
    Shift {
        op: ShiftKind,
        size: u8,
        dst: u8,
        count: u8,
    },
    /// A multi-byte NOP (`nop r/m`: no memory access, no flags).
    Nop,
    /// `shl`/`shr`/`sar dst, cl`. A count of 0 changes no flag; where the flags are live, any
    /// other count writes the record as tier 0 does (OF and AF are undefined for counts above 1).
    ShiftCl {
        op: ShiftKind,
        wide: bool,
        dst: u8,
    },
    /// `imul dst, src (, imm)`: where its flags are live, the record is written as tier 0
    /// writes it (SF, ZF, AF, PF are undefined; tier 0 leaves SF/PF of the result, ZF = AF = 0).
    Imul {
        wide: bool,
        dst: u8,
        src: u8,
        imm: Option<i32>,
    },
    /// `rol`/`ror dst, count` (1..width-1 after masking): writes CF and OF only (tier 0 keeps
    /// OF for counts above 1), reads none; where they are live the record's CF/OF are replaced.
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
        size: u8,
        reg: u8,
        src: Src,
        ea: Ea,
        mem_first: bool,
    },
    /// `div src` (32 or 64 bits, register divisor): rDX:rAX / src. A zero divisor or a
    /// quotient too wide (#DE) goes to the handler, which raises the fault. Flags unchanged,
    /// as tier 0 leaves them.
    Div {
        wide: bool,
        src: u8,
    },
    /// `setcc dst8` (a low byte register): the condition as a block-ending Jcc reads it.
    Setcc {
        cc: u8,
        dst: u8,
    },
    /// `movzx`/`movsx dst, src8|src16` (register source; `from`: 1 or 2 bytes), to 32 bits
    /// (zero-extended further) or, `wide`, 64.
    MovExt {
        wide: bool,
        dst: u8,
        src: u8,
        from: u8,
        sign: bool,
    },
    /// An SSE/SSE2 move or arithmetic form (`jit/sse.rs`, fifth round part E).
    Sse(super::sse::SseForm),
    /// `neg dst` (every size; all six flags defined, written as for the ALU forms).
    Neg {
        size: u8,
        dst: u8,
    },
    /// `mov [ea], imm` of `size` bytes (the immediate sign-extended to 64 bits for size 8).
    StoreImm {
        size: u8,
        imm: i32,
        ea: Ea,
    },
    /// `div [ea]` (32 or 64 bits): as [`Form::Div`], the divisor read through the probe.
    DivMem {
        wide: bool,
        ea: Ea,
    },
    /// `shl`/`shr`/`sar [ea], count` (1..width-1 after masking), a read-modify-write through
    /// the probe (translated for write first, as tier 0 does), emitted only where its flags
    /// are dead (sixth round, part G: gzip's `shl byte [flag_bit], 1`, followed by a TEST).
    ShiftMem {
        op: ShiftKind,
        size: u8,
        count: u8,
        ea: Ea,
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

impl Form {
    /// Writes all six arithmetic flags without reading any (so earlier flags are dead).
    pub fn kills_flags(self) -> bool {
        match self {
            Form::Alu { op, .. } => !op.reads_cf(),
            Form::Shift { .. } | Form::Imul { .. } | Form::Neg { .. } => true,
            _ => false,
        }
    }
    /// Reads a condition of the flags (the instruction before it evaluates it into the
    /// backend's condition register when its flags are in host EFLAGS).
    pub fn cond(self) -> Option<u8> {
        match self {
            Form::Jcc { cc } | Form::Cmov { cc, .. } | Form::Setcc { cc, .. } => Some(cc),
            _ => None,
        }
    }
    /// Neither reads nor writes flags and cannot end the block.
    pub fn flag_neutral(self) -> bool {
        matches!(
            self,
            Form::Mov { .. }
                | Form::Lea { .. }
                | Form::Not { .. }
                | Form::Bswap { .. }
                | Form::Movsxd { .. }
                | Form::MovExt { .. }
                | Form::Nop
        )
    }
    /// Neither reads nor writes guest flags and cannot end the block, but clobbers the host
    /// flags (the inline TLB probe) and may call its handler (a miss): an inline load, store,
    /// PUSH or POP.
    pub fn keeps_flags_on_hit(self) -> bool {
        matches!(self, Form::Load { .. } | Form::Store { .. } | Form::Push { .. } | Form::Pop { .. })
    }
    /// Emitted only where the flags it leaves are dead: a shift of memory (IMUL and the
    /// rotates write the record themselves where they are live: part E).
    pub fn needs_dead_flags(self) -> bool {
        matches!(self, Form::ShiftMem { .. })
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
            Form::Movsxd { dst, src } | Form::Cmov { dst, src, .. } | Form::MovExt { dst, src, .. } => {
                add(dst);
                add(src);
            }
            Form::Lea { dst, base, index, .. } => {
                add(dst);
                add(base);
                add(index);
            }
            Form::Jcc { .. } | Form::Jmp | Form::Nop => {}
            Form::Setcc { dst, .. } => add(dst),
            Form::ShiftCl { dst, .. } => {
                add(dst);
                add(1);
            }
            Form::Div { src, .. } => {
                add(src);
                add(0);
                add(2);
            }
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
            Form::Sse(f) => f.gprs().into_iter().for_each(add),
            Form::Neg { dst, .. } => add(dst),
            Form::StoreImm { ea, .. } | Form::ShiftMem { ea, .. } => add_ea(ea, &mut add),
            Form::DivMem { ea, .. } => {
                add_ea(ea, &mut add);
                add(0);
                add(2);
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

/// The immediate of an operation of `size` bytes, as the host instruction of that size takes it.
fn imm_sized(e: &Instr, size: u8) -> Option<i32> {
    match size {
        1 => Some(i32::from(e.imm as u8 as i8)),
        2 => Some(i32::from(e.imm as u16 as i16)),
        4 => imm32(e, false),
        _ => imm32(e, true),
    }
}

fn imm32(e: &Instr, wide: bool) -> Option<i32> {
    if wide {
        i32::try_from(e.imm as i64).ok()
    } else {
        Some(e.imm as u32 as i32)
    }
}

/// The inline form of `e` (in a block of 64-bit code when `bits64`), if the backend has one.
pub fn form_of(e: &Instr, bits64: bool) -> Option<Form> {
    let code = Code::try_from(e.code as usize).ok()?;
    if let Some(f) = alu_mem_form(e, code, bits64) {
        return Some(f);
    }
    if let Some(f) = super::sse::form_of(e, bits64) {
        return Some(Form::Sse(f));
    }
    if let Some(f) = neg_or_store_imm(e, code, bits64) {
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
        _ if is_setcc(code) => {
            // Only the register forms (a byte register 0-15; AH..BH are 16-19).
            if e.dst == NO_REG {
                return None;
            }
            return Some(Form::Setcc { cc: code.condition_code() as u8 - 1, dst: gpr(e.dst)? });
        }
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
        // The one-byte NOPs and PAUSE are NOPs on tier 0 too (part E: 1.2 M calls in the boot).
        Nop_rm16 | Nop_rm32 | Nop_rm64 | Nopw | Nopd | Nopq | Pause | Endbr64 | Endbr32 => return Some(Form::Nop),
        Cdqe => return Some(Form::Movsxd { dst: 0, src: 0 }),
        Movsx_r64_rm8 | Movsx_r64_rm16 if e.src == NO_REG => {
            let size = if code == Movsx_r64_rm8 { 1 } else { 2 };
            return Some(Form::Load { size, dst: gpr(e.dst)?, ea: ea_of(e, bits64)?, ext: Ext::Sign });
        }
        _ if shift_imm(code).is_some() => {
            let (op, size, by1) = shift_imm(code)?;
            let count = if by1 { 1 } else { (e.imm as u8) & if size == 8 { 63 } else { 31 } };
            // A count of 0 changes no flag (and is rare), and byte and word shifts past their
            // width leave CF undefined: left to the handler.
            if count == 0 || count >= size * 8 {
                return None;
            }
            if e.dst == NO_REG {
                return Some(Form::ShiftMem { op, size, count, ea: ea_of(e, bits64)? });
            }
            return Some(Form::Shift { op, size, dst: gpr(e.dst)?, count });
        }
        Shl_rm64_CL | Shr_rm64_CL | Sar_rm64_CL | Shl_rm32_CL | Shr_rm32_CL | Sar_rm32_CL => {
            let op = match code {
                Shl_rm64_CL | Shl_rm32_CL => ShiftKind::Shl,
                Shr_rm64_CL | Shr_rm32_CL => ShiftKind::Shr,
                _ => ShiftKind::Sar,
            };
            let wide = matches!(code, Shl_rm64_CL | Shr_rm64_CL | Sar_rm64_CL);
            return Some(Form::ShiftCl { op, wide, dst: gpr(e.dst)? });
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
    let alu = |op: Alu, size: u8, kind: u8| -> Option<Form> {
        // kind 0: op rm, r; 1: op r, rm; 2: op rm, imm; 3: op rAX, imm.
        let (dst, src) = match kind {
            0 => (gpr(e.dst)?, Src::Reg(gpr(e.src)?)),
            1 => (gpr(e.dst)?, Src::Reg(gpr(e.src)?)),
            2 => (gpr(e.dst)?, Src::Imm(imm_sized(e, size)?)),
            _ => (0, Src::Imm(imm_sized(e, size)?)),
        };
        Some(Form::Alu { op, size, dst, src })
    };
    macro_rules! alu_forms {
        ($($op:ident: $rm64r:ident $r64rm:ident $rm64i32:ident $rm64i8:ident $raxi:ident
                       $rm32r:ident $r32rm:ident $rm32i32:ident $rm32i8:ident $eaxi:ident;)*) => {
            match code {
                $(
                    $rm64r => return alu(Alu::$op, 8, 0),
                    $r64rm => return alu(Alu::$op, 8, 1),
                    $rm64i32 | $rm64i8 => return alu(Alu::$op, 8, 2),
                    $raxi => return alu(Alu::$op, 8, 3),
                    $rm32r => return alu(Alu::$op, 4, 0),
                    $r32rm => return alu(Alu::$op, 4, 1),
                    $rm32i32 | $rm32i8 => return alu(Alu::$op, 4, 2),
                    $eaxi => return alu(Alu::$op, 4, 3),
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
    // The byte and word forms: the same host instruction on the low byte or word of the
    // whole register (which keeps the rest).
    macro_rules! narrow_alu_forms {
        ($($op:ident: $rm16r:ident $r16rm:ident $rm16i16:ident $rm16i8:ident $axi:ident
                       $rm8r:ident $r8rm:ident $rm8i:ident $ali:ident;)*) => {
            match code {
                $(
                    $rm16r => return alu(Alu::$op, 2, 0),
                    $r16rm => return alu(Alu::$op, 2, 1),
                    $rm16i16 | $rm16i8 => return alu(Alu::$op, 2, 2),
                    $axi => return alu(Alu::$op, 2, 3),
                    $rm8r => return alu(Alu::$op, 1, 0),
                    $r8rm => return alu(Alu::$op, 1, 1),
                    $rm8i => return alu(Alu::$op, 1, 2),
                    $ali => return alu(Alu::$op, 1, 3),
                )*
                _ => {}
            }
        };
    }
    narrow_alu_forms! {
        Add: Add_rm16_r16 Add_r16_rm16 Add_rm16_imm16 Add_rm16_imm8 Add_AX_imm16
             Add_rm8_r8 Add_r8_rm8 Add_rm8_imm8 Add_AL_imm8;
        Or: Or_rm16_r16 Or_r16_rm16 Or_rm16_imm16 Or_rm16_imm8 Or_AX_imm16
             Or_rm8_r8 Or_r8_rm8 Or_rm8_imm8 Or_AL_imm8;
        Adc: Adc_rm16_r16 Adc_r16_rm16 Adc_rm16_imm16 Adc_rm16_imm8 Adc_AX_imm16
             Adc_rm8_r8 Adc_r8_rm8 Adc_rm8_imm8 Adc_AL_imm8;
        Sbb: Sbb_rm16_r16 Sbb_r16_rm16 Sbb_rm16_imm16 Sbb_rm16_imm8 Sbb_AX_imm16
             Sbb_rm8_r8 Sbb_r8_rm8 Sbb_rm8_imm8 Sbb_AL_imm8;
        And: And_rm16_r16 And_r16_rm16 And_rm16_imm16 And_rm16_imm8 And_AX_imm16
             And_rm8_r8 And_r8_rm8 And_rm8_imm8 And_AL_imm8;
        Sub: Sub_rm16_r16 Sub_r16_rm16 Sub_rm16_imm16 Sub_rm16_imm8 Sub_AX_imm16
             Sub_rm8_r8 Sub_r8_rm8 Sub_rm8_imm8 Sub_AL_imm8;
        Xor: Xor_rm16_r16 Xor_r16_rm16 Xor_rm16_imm16 Xor_rm16_imm8 Xor_AX_imm16
             Xor_rm8_r8 Xor_r8_rm8 Xor_rm8_imm8 Xor_AL_imm8;
        Cmp: Cmp_rm16_r16 Cmp_r16_rm16 Cmp_rm16_imm16 Cmp_rm16_imm8 Cmp_AX_imm16
             Cmp_rm8_r8 Cmp_r8_rm8 Cmp_rm8_imm8 Cmp_AL_imm8;
    }
    Some(match code {
        Test_rm16_r16 => alu(Alu::Test, 2, 0)?,
        Test_rm16_imm16 => alu(Alu::Test, 2, 2)?,
        Test_AX_imm16 => alu(Alu::Test, 2, 3)?,
        Test_rm8_r8 => alu(Alu::Test, 1, 0)?,
        Test_rm8_imm8 => alu(Alu::Test, 1, 2)?,
        Test_AL_imm8 => alu(Alu::Test, 1, 3)?,
        Test_rm64_r64 => alu(Alu::Test, 8, 0)?,
        Test_rm64_imm32 => alu(Alu::Test, 8, 2)?,
        Test_RAX_imm32 => alu(Alu::Test, 8, 3)?,
        Test_rm32_r32 => alu(Alu::Test, 4, 0)?,
        Test_rm32_imm32 => alu(Alu::Test, 4, 2)?,
        Test_EAX_imm32 => alu(Alu::Test, 4, 3)?,
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
        Inc_rm64 | Inc_rm32 | Inc_rm16 | Inc_rm8 | Dec_rm64 | Dec_rm32 | Dec_rm16 | Dec_rm8 => Form::IncDec {
            inc: matches!(code, Inc_rm64 | Inc_rm32 | Inc_rm16 | Inc_rm8),
            size: match code {
                Inc_rm64 | Dec_rm64 => 8,
                Inc_rm32 | Dec_rm32 => 4,
                Inc_rm16 | Dec_rm16 => 2,
                _ => 1,
            },
            dst: gpr(e.dst)?,
        },
        Div_rm64 | Div_rm32 => Form::Div { wide: code == Div_rm64, src: gpr(e.dst)? },
        Movzx_r32_rm8 | Movzx_r64_rm8 | Movzx_r32_rm16 | Movzx_r64_rm16 | Movsx_r32_rm8 | Movsx_r64_rm8
        | Movsx_r32_rm16 | Movsx_r64_rm16 => Form::MovExt {
            wide: matches!(code, Movzx_r64_rm8 | Movzx_r64_rm16 | Movsx_r64_rm8 | Movsx_r64_rm16),
            dst: gpr(e.dst)?,
            src: gpr(e.src)?,
            from: if matches!(code, Movzx_r32_rm8 | Movzx_r64_rm8 | Movsx_r32_rm8 | Movsx_r64_rm8) { 1 } else { 2 },
            sign: matches!(code, Movsx_r32_rm8 | Movsx_r64_rm8 | Movsx_r32_rm16 | Movsx_r64_rm16),
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

/// NEG of a register, MOV of an immediate to memory and DIV of memory (fifth round, part E:
/// the Debian boot's most frequent trampoline calls after the fourth round).
fn neg_or_store_imm(e: &Instr, code: Code, bits64: bool) -> Option<Form> {
    use Code::*;
    let size = match code {
        Neg_rm64 | Mov_rm64_imm32 | Div_rm64 => 8,
        Neg_rm32 | Mov_rm32_imm32 | Div_rm32 => 4,
        Neg_rm16 | Mov_rm16_imm16 => 2,
        Neg_rm8 | Mov_rm8_imm8 => 1,
        _ => return None,
    };
    if matches!(code, Div_rm64 | Div_rm32) {
        return (e.dst == NO_REG).then_some(Form::DivMem { wide: code == Div_rm64, ea: ea_of(e, bits64)? });
    }
    if matches!(code, Neg_rm64 | Neg_rm32 | Neg_rm16 | Neg_rm8) {
        return Some(Form::Neg { size, dst: gpr(e.dst)? });
    }
    if e.dst != NO_REG {
        return None;
    }
    Some(Form::StoreImm { size, imm: imm_sized(e, size)?, ea: ea_of(e, bits64)? })
}

/// The ALU forms whose memory operand is only read (`op r, [m]`, `cmp/test [m], r|imm`).
fn alu_mem_form(e: &Instr, code: Code, bits64: bool) -> Option<Form> {
    use Code::*;
    let (op, size, mem_first, imm) = match code {
        Add_r64_rm64 => (Alu::Add, 8, false, false),
        Add_r32_rm32 => (Alu::Add, 4, false, false),
        Or_r64_rm64 => (Alu::Or, 8, false, false),
        Or_r32_rm32 => (Alu::Or, 4, false, false),
        Adc_r64_rm64 => (Alu::Adc, 8, false, false),
        Adc_r32_rm32 => (Alu::Adc, 4, false, false),
        Sbb_r64_rm64 => (Alu::Sbb, 8, false, false),
        Sbb_r32_rm32 => (Alu::Sbb, 4, false, false),
        And_r64_rm64 => (Alu::And, 8, false, false),
        And_r32_rm32 => (Alu::And, 4, false, false),
        Sub_r64_rm64 => (Alu::Sub, 8, false, false),
        Sub_r32_rm32 => (Alu::Sub, 4, false, false),
        Xor_r64_rm64 => (Alu::Xor, 8, false, false),
        Xor_r32_rm32 => (Alu::Xor, 4, false, false),
        Cmp_r64_rm64 => (Alu::Cmp, 8, false, false),
        Cmp_r32_rm32 => (Alu::Cmp, 4, false, false),
        Cmp_rm64_r64 => (Alu::Cmp, 8, true, false),
        Cmp_rm32_r32 => (Alu::Cmp, 4, true, false),
        Cmp_rm64_imm32 | Cmp_rm64_imm8 => (Alu::Cmp, 8, true, true),
        Cmp_rm32_imm32 | Cmp_rm32_imm8 => (Alu::Cmp, 4, true, true),
        Test_rm64_r64 => (Alu::Test, 8, true, false),
        Test_rm32_r32 => (Alu::Test, 4, true, false),
        Test_rm64_imm32 => (Alu::Test, 8, true, true),
        Test_rm32_imm32 => (Alu::Test, 4, true, true),
        // Read-modify-write: `op [ea], r|imm`.
        Add_rm64_r64 => (Alu::Add, 8, true, false),
        Add_rm32_r32 => (Alu::Add, 4, true, false),
        Add_rm64_imm32 | Add_rm64_imm8 => (Alu::Add, 8, true, true),
        Add_rm32_imm32 | Add_rm32_imm8 => (Alu::Add, 4, true, true),
        Or_rm64_r64 => (Alu::Or, 8, true, false),
        Or_rm32_r32 => (Alu::Or, 4, true, false),
        Or_rm64_imm32 | Or_rm64_imm8 => (Alu::Or, 8, true, true),
        Or_rm32_imm32 | Or_rm32_imm8 => (Alu::Or, 4, true, true),
        Adc_rm64_r64 => (Alu::Adc, 8, true, false),
        Adc_rm32_r32 => (Alu::Adc, 4, true, false),
        Adc_rm64_imm32 | Adc_rm64_imm8 => (Alu::Adc, 8, true, true),
        Adc_rm32_imm32 | Adc_rm32_imm8 => (Alu::Adc, 4, true, true),
        Sbb_rm64_r64 => (Alu::Sbb, 8, true, false),
        Sbb_rm32_r32 => (Alu::Sbb, 4, true, false),
        Sbb_rm64_imm32 | Sbb_rm64_imm8 => (Alu::Sbb, 8, true, true),
        Sbb_rm32_imm32 | Sbb_rm32_imm8 => (Alu::Sbb, 4, true, true),
        And_rm64_r64 => (Alu::And, 8, true, false),
        And_rm32_r32 => (Alu::And, 4, true, false),
        And_rm64_imm32 | And_rm64_imm8 => (Alu::And, 8, true, true),
        And_rm32_imm32 | And_rm32_imm8 => (Alu::And, 4, true, true),
        Sub_rm64_r64 => (Alu::Sub, 8, true, false),
        Sub_rm32_r32 => (Alu::Sub, 4, true, false),
        Sub_rm64_imm32 | Sub_rm64_imm8 => (Alu::Sub, 8, true, true),
        Sub_rm32_imm32 | Sub_rm32_imm8 => (Alu::Sub, 4, true, true),
        Xor_rm64_r64 => (Alu::Xor, 8, true, false),
        Xor_rm32_r32 => (Alu::Xor, 4, true, false),
        Xor_rm64_imm32 | Xor_rm64_imm8 => (Alu::Xor, 8, true, true),
        Xor_rm32_imm32 | Xor_rm32_imm8 => (Alu::Xor, 4, true, true),
        // The byte and word forms (gzip's compares and 16-bit arithmetic).
        Add_r8_rm8 => (Alu::Add, 1, false, false),
        Add_r16_rm16 => (Alu::Add, 2, false, false),
        Add_rm8_r8 => (Alu::Add, 1, true, false),
        Add_rm16_r16 => (Alu::Add, 2, true, false),
        Add_rm8_imm8 => (Alu::Add, 1, true, true),
        Add_rm16_imm16 | Add_rm16_imm8 => (Alu::Add, 2, true, true),
        Or_r8_rm8 => (Alu::Or, 1, false, false),
        Or_r16_rm16 => (Alu::Or, 2, false, false),
        Or_rm8_r8 => (Alu::Or, 1, true, false),
        Or_rm16_r16 => (Alu::Or, 2, true, false),
        Or_rm8_imm8 => (Alu::Or, 1, true, true),
        Or_rm16_imm16 | Or_rm16_imm8 => (Alu::Or, 2, true, true),
        Adc_r8_rm8 => (Alu::Adc, 1, false, false),
        Adc_r16_rm16 => (Alu::Adc, 2, false, false),
        Adc_rm8_r8 => (Alu::Adc, 1, true, false),
        Adc_rm16_r16 => (Alu::Adc, 2, true, false),
        Adc_rm8_imm8 => (Alu::Adc, 1, true, true),
        Adc_rm16_imm16 | Adc_rm16_imm8 => (Alu::Adc, 2, true, true),
        Sbb_r8_rm8 => (Alu::Sbb, 1, false, false),
        Sbb_r16_rm16 => (Alu::Sbb, 2, false, false),
        Sbb_rm8_r8 => (Alu::Sbb, 1, true, false),
        Sbb_rm16_r16 => (Alu::Sbb, 2, true, false),
        Sbb_rm8_imm8 => (Alu::Sbb, 1, true, true),
        Sbb_rm16_imm16 | Sbb_rm16_imm8 => (Alu::Sbb, 2, true, true),
        And_r8_rm8 => (Alu::And, 1, false, false),
        And_r16_rm16 => (Alu::And, 2, false, false),
        And_rm8_r8 => (Alu::And, 1, true, false),
        And_rm16_r16 => (Alu::And, 2, true, false),
        And_rm8_imm8 => (Alu::And, 1, true, true),
        And_rm16_imm16 | And_rm16_imm8 => (Alu::And, 2, true, true),
        Sub_r8_rm8 => (Alu::Sub, 1, false, false),
        Sub_r16_rm16 => (Alu::Sub, 2, false, false),
        Sub_rm8_r8 => (Alu::Sub, 1, true, false),
        Sub_rm16_r16 => (Alu::Sub, 2, true, false),
        Sub_rm8_imm8 => (Alu::Sub, 1, true, true),
        Sub_rm16_imm16 | Sub_rm16_imm8 => (Alu::Sub, 2, true, true),
        Xor_r8_rm8 => (Alu::Xor, 1, false, false),
        Xor_r16_rm16 => (Alu::Xor, 2, false, false),
        Xor_rm8_r8 => (Alu::Xor, 1, true, false),
        Xor_rm16_r16 => (Alu::Xor, 2, true, false),
        Xor_rm8_imm8 => (Alu::Xor, 1, true, true),
        Xor_rm16_imm16 | Xor_rm16_imm8 => (Alu::Xor, 2, true, true),
        Cmp_r8_rm8 => (Alu::Cmp, 1, false, false),
        Cmp_r16_rm16 => (Alu::Cmp, 2, false, false),
        Cmp_rm8_r8 => (Alu::Cmp, 1, true, false),
        Cmp_rm16_r16 => (Alu::Cmp, 2, true, false),
        Cmp_rm8_imm8 => (Alu::Cmp, 1, true, true),
        Cmp_rm16_imm16 | Cmp_rm16_imm8 => (Alu::Cmp, 2, true, true),
        Test_rm8_r8 => (Alu::Test, 1, true, false),
        Test_rm16_r16 => (Alu::Test, 2, true, false),
        Test_rm8_imm8 => (Alu::Test, 1, true, true),
        Test_rm16_imm16 => (Alu::Test, 2, true, true),
        Inc_rm64 => (Alu::Inc, 8, true, true),
        Inc_rm32 => (Alu::Inc, 4, true, true),
        Inc_rm16 => (Alu::Inc, 2, true, true),
        Inc_rm8 => (Alu::Inc, 1, true, true),
        Dec_rm64 => (Alu::Dec, 8, true, true),
        Dec_rm32 => (Alu::Dec, 4, true, true),
        Dec_rm16 => (Alu::Dec, 2, true, true),
        Dec_rm8 => (Alu::Dec, 1, true, true),
        _ => return None,
    };
    let ea = ea_of(e, bits64)?;
    if mem_first {
        if e.dst != NO_REG {
            return None;
        }
        let src = if imm { Src::Imm(imm_sized(e, size)?) } else { Src::Reg(gpr(e.src)?) };
        Some(Form::AluMem { op, size, reg: 0, src, ea, mem_first })
    } else {
        if e.src != NO_REG {
            return None;
        }
        Some(Form::AluMem { op, size, reg: gpr(e.dst)?, src: Src::Imm(0), ea, mem_first })
    }
}

/// SHL/SHR/SAR by an immediate or by 1, at every size: (operation, size, by 1).
fn shift_imm(code: Code) -> Option<(ShiftKind, u8, bool)> {
    use Code::*;
    use ShiftKind::*;
    Some(match code {
        Shl_rm64_imm8 => (Shl, 8, false),
        Shr_rm64_imm8 => (Shr, 8, false),
        Sar_rm64_imm8 => (Sar, 8, false),
        Shl_rm32_imm8 => (Shl, 4, false),
        Shr_rm32_imm8 => (Shr, 4, false),
        Sar_rm32_imm8 => (Sar, 4, false),
        Shl_rm16_imm8 => (Shl, 2, false),
        Shr_rm16_imm8 => (Shr, 2, false),
        Sar_rm16_imm8 => (Sar, 2, false),
        Shl_rm8_imm8 => (Shl, 1, false),
        Shr_rm8_imm8 => (Shr, 1, false),
        Sar_rm8_imm8 => (Sar, 1, false),
        Shl_rm64_1 => (Shl, 8, true),
        Shr_rm64_1 => (Shr, 8, true),
        Sar_rm64_1 => (Sar, 8, true),
        Shl_rm32_1 => (Shl, 4, true),
        Shr_rm32_1 => (Shr, 4, true),
        Sar_rm32_1 => (Sar, 4, true),
        Shl_rm16_1 => (Shl, 2, true),
        Shr_rm16_1 => (Shr, 2, true),
        Sar_rm16_1 => (Sar, 2, true),
        Shl_rm8_1 => (Shl, 1, true),
        Shr_rm8_1 => (Shr, 1, true),
        Sar_rm8_1 => (Sar, 1, true),
        _ => return None,
    })
}

fn is_setcc(code: Code) -> bool {
    use iced_x86::Mnemonic::*;
    matches!(
        code.mnemonic(),
        Seto | Setno
            | Setb
            | Setae
            | Sete
            | Setne
            | Setbe
            | Seta
            | Sets
            | Setns
            | Setp
            | Setnp
            | Setl
            | Setge
            | Setle
            | Setg
    )
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
    forms.get(i + 1).copied().flatten().and_then(Form::cond)
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
    flags_dead_from(forms, i + 1)
}

/// Whether the flags are dead where instruction `start` of `forms` begins: a later inline
/// instruction overwrites all six before anything can read them or leave the block. In between
/// only flag-neutral inline instructions and writers that read no flag: a rotate (it writes CF
/// and OF only) and an INC/DEC (all but CF, which it carries over): where the flags after such
/// a writer are dead, so are those before it (eighth round, part E; the INC/DEC then takes no
/// CF into the host flags, `x64.rs`).
fn flags_dead_from(forms: &[Option<Form>], start: usize) -> bool {
    for f in forms.iter().skip(start) {
        match f {
            Some(f) if f.kills_flags() && !f.needs_dead_flags() => return true,
            Some(f) if f.flag_neutral() || f.writes_flags_only() || matches!(f, Form::IncDec { .. }) => continue,
            _ => return false,
        }
    }
    false
}

/// Whether flag setter `i`'s `aux` (CF, OF, AF) may wait in the host register the backend keeps
/// the setter's host RFLAGS in, instead of being computed now (its `result` is written either
/// way): up to the next instruction that overwrites the flags or reads only CF from them, every
/// instruction is flag-neutral or an inline load, store, PUSH or POP, whose probe leaves the
/// flags to that register and whose miss path computes `aux` before its handler runs.
/// `loop_exit_only`: the block loops to its own start with the flags dead there
/// ([`flags_dead_at_entry`]), so its end (a JMP, or a Jcc right after `i` that has its condition
/// already) needs the record only on the exits, which compute it.
pub fn aux_deferrable(forms: &[Option<Form>], i: usize, loop_exit_only: bool) -> bool {
    for (j, f) in forms.iter().enumerate().skip(i + 1) {
        match f {
            Some(f) if f.flag_neutral() || f.keeps_flags_on_hit() => continue,
            Some(f) if f.kills_flags() => return true,
            Some(Form::Alu { .. } | Form::IncDec { .. } | Form::AluMem { .. }) => return true,
            Some(Form::Jcc { .. }) if j == i + 1 => return loop_exit_only,
            Some(Form::Jmp) => return loop_exit_only,
            _ => return false,
        }
    }
    loop_exit_only
}

/// Whether a later access of a probe group, a load or store (or `keeps_cf`: a memory ALU form
/// reading CF), keeps the host flags on its hit path (eighth round, part K): its shared probe
/// tests its slot with `jrcxz`, which reads no flags.
pub fn keeps_host_flags(f: Form, g: Option<GroupAccess>) -> bool {
    g.is_some_and(|g| g.lead.is_none())
        && match f {
            Form::Load { .. } | Form::Store { .. } | Form::StoreImm { .. } => true,
            Form::AluMem { op, .. } => op.reads_cf(),
            _ => false,
        }
}

/// Whether arithmetic flag setter `i` may leave its flags in the host flags alone, its record's
/// `aux` not computed at all (eighth round, part K): up to the next inline register ALU or
/// INC/DEC form (which reads CF from the host flags and sets them anew) or a later group access
/// reading CF ([`keeps_host_flags`]), every instruction is flag-neutral or a later access of a
/// probe group that keeps the host flags. Those accesses' out-of-line paths compute `aux`
/// before anything can read the record.
pub fn aux_stays_in_host_flags(forms: &[Option<Form>], i: usize) -> bool {
    let groups = probe_groups(forms);
    for (f, g) in forms.iter().zip(&groups).skip(i + 1) {
        match *f {
            Some(f) if f.flag_neutral() => continue,
            Some(Form::Alu { .. } | Form::IncDec { .. }) => return true,
            Some(f @ Form::AluMem { .. }) => return keeps_host_flags(f, *g),
            Some(f) if keeps_host_flags(f, *g) => continue,
            _ => return false,
        }
    }
    false
}

/// Whether the record of logic flag setter `i` is read by nothing but the handlers of later
/// probes' miss paths (seventh round, part M): up to an inline instruction that overwrites all
/// six flags without reading CF (a register ALU form, or a memory one, whose hit path does),
/// every instruction is flag-neutral or an inline load, store, PUSH or POP. The backend then
/// keeps the result in a register and writes the record only on those miss paths.
pub fn record_only_on_misses(forms: &[Option<Form>], i: usize) -> bool {
    for f in &forms[i + 1..] {
        match f {
            Some(f) if f.flag_neutral() || f.keeps_flags_on_hit() => continue,
            Some(f) if f.kills_flags() => return true,
            Some(Form::AluMem { op, .. }) => return !op.reads_cf(),
            _ => return false,
        }
    }
    false
}

/// Whether the flags are dead at the block's start: an inline instruction overwrites all six
/// before anything can read them, with only flag-neutral inline instructions, rotates and
/// INC/DEC before it ([`flags_dead_after`]'s rule). A self-loop's back edge and a region's
/// internal edges into such a block leave the record unwritten on the way in (eighth round,
/// part E, for regions).
pub fn flags_dead_at_entry(forms: &[Option<Form>]) -> bool {
    flags_dead_from(forms, 0)
}

/// Probe groups open at once within a block (seventh round, part P): one slot each in the
/// run's context for the host address its first access found.
pub const GROUP_SLOTS: usize = 4;
/// The widest byte range one shared probe covers: a small range crosses a page rarely.
const GROUP_SPAN: i64 = 256;

/// An access that shares the TLB probe of its group: the accesses of a block off one base
/// register (no index; the same segment; no write to the base and no handler call between
/// them) whose bytes lie within [`GROUP_SPAN`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupAccess {
    /// The context slot holding the group's host address.
    pub slot: u8,
    /// This access's displacement minus the group's lowest.
    pub off: i32,
    /// Set for the group's first access, which probes the whole range.
    pub lead: Option<GroupRange>,
}

/// The range a group's first access probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupRange {
    /// The lowest displacement of the group's accesses.
    pub lo: i32,
    /// From the lowest byte to one past the highest.
    pub len: i32,
    /// Some access of the group writes: the write tag is probed (a writable page is readable).
    pub write: bool,
}

impl Form {
    /// The memory operand, its size and whether the access writes, of the forms that may
    /// share a probe (the stack forms change their base; the SSE forms probe for themselves).
    pub fn mem_access(self) -> Option<(Ea, u8, bool)> {
        match self {
            Form::Load { size, ea, .. } => Some((ea, size, false)),
            Form::Store { size, ea, .. } | Form::StoreImm { size, ea, .. } | Form::ShiftMem { size, ea, .. } => {
                Some((ea, size, true))
            }
            Form::AluMem { op, size, ea, mem_first, .. } => Some((ea, size, mem_first && op.stores())),
            Form::DivMem { wide, ea } => Some((ea, if wide { 8 } else { 4 }, false)),
            _ => None,
        }
    }

    /// The guest registers this form may write (a bit per register), or `None` where no probe
    /// group may stay open across it (block ends; SSE forms, some of which write GPRs and
    /// call handlers for their checks).
    pub fn gprs_written(self) -> Option<u16> {
        // A byte register 4..7 is SPL..DIL here, but AH..BH without REX would be 0..3: both
        // are counted, which is only conservative.
        let reg = |r: u8, size: u8| {
            let r = u16::from(r & 15);
            if size == 1 && (4..8).contains(&r) {
                1 << r | 1 << (r - 4)
            } else {
                1 << r
            }
        };
        Some(match self {
            Form::Mov { dst, .. }
            | Form::Lea { dst, .. }
            | Form::ShiftCl { dst, .. }
            | Form::Imul { dst, .. }
            | Form::Rotate { dst, .. }
            | Form::Not { dst, .. }
            | Form::Bswap { dst, .. }
            | Form::Movsxd { dst, .. }
            | Form::Cmov { dst, .. }
            | Form::MovExt { dst, .. } => reg(dst, 8),
            Form::Alu { op, size, dst, .. } => {
                if op.stores() {
                    reg(dst, size)
                } else {
                    0
                }
            }
            Form::IncDec { size, dst, .. }
            | Form::Load { size, dst, .. }
            | Form::Shift { size, dst, .. }
            | Form::Neg { size, dst } => reg(dst, size),
            Form::Setcc { dst, .. } => reg(dst, 1),
            Form::AluMem { op, size, reg: r, mem_first, .. } => {
                if !mem_first && op.stores() {
                    reg(r, size)
                } else {
                    0
                }
            }
            Form::Store { .. } | Form::StoreImm { .. } | Form::ShiftMem { .. } | Form::Nop => 0,
            Form::Div { .. } | Form::DivMem { .. } => reg(0, 8) | reg(2, 8),
            Form::Push { .. } => reg(4, 8),
            Form::Pop { dst } => reg(dst, 8) | reg(4, 8),
            Form::Jcc { .. }
            | Form::Jmp
            | Form::Call
            | Form::Ret { .. }
            | Form::JmpInd { .. }
            | Form::CallInd { .. }
            | Form::Sse(_) => return None,
        })
    }
}

/// The probe groups of a block (seventh round, part P): for each instruction, the group whose
/// probe it shares, if any (groups of one access are left out: nothing to share). The backend
/// still ends a group at any handler call it emits where this assumed an inline form
/// (`x64.rs`), and every miss path empties the slots.
pub fn probe_groups(forms: &[Option<Form>]) -> Vec<Option<GroupAccess>> {
    struct Open {
        slot: u8,
        base: u8,
        seg: u8,
        lo: i64,
        end: i64,
        write: bool,
        /// (instruction, displacement)
        members: Vec<(usize, i64)>,
    }
    fn close(g: Open, out: &mut [Option<GroupAccess>]) {
        if g.members.len() < 2 {
            return;
        }
        for (k, &(i, disp)) in g.members.iter().enumerate() {
            let lead = (k == 0).then_some(GroupRange { lo: g.lo as i32, len: (g.end - g.lo) as i32, write: g.write });
            out[i] = Some(GroupAccess { slot: g.slot, off: (disp - g.lo) as i32, lead });
        }
    }
    let mut out = vec![None; forms.len()];
    let mut open: Vec<Open> = Vec::new();
    for (i, f) in forms.iter().enumerate() {
        let Some(f) = *f else {
            // A handler call: it may change the TLB, the mappings, CR3 or any register.
            open.drain(..).for_each(|g| close(g, &mut out));
            continue;
        };
        if let Some((ea, size, write)) = f.mem_access().filter(|(ea, ..)| ea.base != NO_REG && ea.index == NO_REG) {
            // `ea_of` keeps displacements with a base within 32 bits.
            let disp = ea.disp as i64;
            let end = disp + i64::from(size);
            match open.iter().position(|g| g.base == ea.base && g.seg == ea.seg) {
                Some(p) if end.max(open[p].end) - disp.min(open[p].lo) <= GROUP_SPAN => {
                    let g = &mut open[p];
                    g.lo = g.lo.min(disp);
                    g.end = g.end.max(end);
                    g.write |= write;
                    g.members.push((i, disp));
                }
                found => {
                    let slot = match found {
                        Some(p) => {
                            let g = open.remove(p);
                            let slot = g.slot;
                            close(g, &mut out);
                            Some(slot)
                        }
                        None => (0..GROUP_SLOTS as u8).find(|s| open.iter().all(|g| g.slot != *s)),
                    };
                    if let Some(slot) = slot {
                        open.push(Open {
                            slot,
                            base: ea.base,
                            seg: ea.seg,
                            lo: disp,
                            end,
                            write,
                            members: vec![(i, disp)],
                        });
                    }
                }
            }
        }
        match f.gprs_written() {
            None => open.drain(..).for_each(|g| close(g, &mut out)),
            Some(w) => {
                let (ended, kept): (Vec<Open>, Vec<Open>) = open.drain(..).partition(|g| w & 1 << g.base != 0);
                ended.into_iter().for_each(|g| close(g, &mut out));
                open = kept;
            }
        }
    }
    open.drain(..).for_each(|g| close(g, &mut out));
    out
}
