//! Integer arithmetic: ADD, ADC, SUB, SBB, CMP, INC, DEC, NEG, and ADX's ADCX/ADOX (SDM Vol. 2,
//! those entries).
//!
//! The two-operand ALU instructions share five generic forms over an operation type and a
//! width: `r, r` / `m, r` (read-modify-write) / `r, m` / `r, imm` / `m, imm` (and the AL/AX/EAX/RAX
//! accumulator forms, which are `r, imm` with `dst = 0`). `logical.rs` reuses them for AND, OR,
//! XOR and TEST.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::ExecResult;
use crate::flags::{LazyFlags, Width, W16, W32, W64, W8};
use iced_x86::Code as C;

/// A two-operand ALU operation: computes the result and sets the lazy flags.
pub trait BinOp {
    /// False for CMP and TEST, which only set flags.
    const WRITES: bool = true;
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, b: u64) -> u64;
}

pub struct Add;
pub struct Adc;
pub struct Sub;
pub struct Sbb;
pub struct Cmp;

impl BinOp for Add {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, b: u64) -> u64 {
        let r = a.wrapping_add(b) & W::MASK;
        lf.set_oszapc_add::<W>(a, b, r);
        r
    }
}
impl BinOp for Adc {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, b: u64) -> u64 {
        let r = a.wrapping_add(b).wrapping_add(lf.cf() as u64) & W::MASK;
        lf.set_oszapc_add::<W>(a, b, r);
        r
    }
}
impl BinOp for Sub {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, b: u64) -> u64 {
        let r = a.wrapping_sub(b) & W::MASK;
        lf.set_oszapc_sub::<W>(a, b, r);
        r
    }
}
impl BinOp for Sbb {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, b: u64) -> u64 {
        let r = a.wrapping_sub(b).wrapping_sub(lf.cf() as u64) & W::MASK;
        lf.set_oszapc_sub::<W>(a, b, r);
        r
    }
}
impl BinOp for Cmp {
    const WRITES: bool = false;
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, b: u64) -> u64 {
        Sub::apply::<W>(lf, a, b)
    }
}

/// `op r, r`
pub fn exec_binop_r_r<O: BinOp, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let a = cpu.get::<W>(e.dst);
    let b = cpu.get::<W>(e.src);
    let r = O::apply::<W>(&mut cpu.state.lazy, a, b);
    if O::WRITES {
        cpu.set::<W>(e.dst, r);
    }
    Ok(())
}

/// `op r, m`
pub fn exec_binop_r_m<O: BinOp, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let b = cpu.read::<W>(cpu.ea(e))?;
    let a = cpu.get::<W>(e.dst);
    let r = O::apply::<W>(&mut cpu.state.lazy, a, b);
    if O::WRITES {
        cpu.set::<W>(e.dst, r);
    }
    Ok(())
}

/// `op r, imm` (and the accumulator forms)
pub fn exec_binop_r_i<O: BinOp, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let a = cpu.get::<W>(e.dst);
    let r = O::apply::<W>(&mut cpu.state.lazy, a, e.imm & W::MASK);
    if O::WRITES {
        cpu.set::<W>(e.dst, r);
    }
    Ok(())
}

/// `op m, b` where b is a register or an immediate: translated for write first when the
/// operation writes (only the write fault can be raised), flags committed after the store.
#[inline(always)]
fn binop_mem<O: BinOp, W: Width>(cpu: &mut Cpu, e: &Instr, b: u64) -> ExecResult {
    let la = cpu.ea(e);
    if O::WRITES {
        let loc = cpu.translate_rmw::<W>(la)?;
        let a = cpu.read_loc::<W>(loc);
        let mut lf = cpu.state.lazy;
        let r = O::apply::<W>(&mut lf, a, b);
        cpu.write_loc::<W>(loc, r);
        cpu.state.lazy = lf;
    } else {
        let a = cpu.read::<W>(la)?;
        O::apply::<W>(&mut cpu.state.lazy, a, b);
    }
    Ok(())
}

/// `op m, r`
pub fn exec_binop_m_r<O: BinOp, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let b = cpu.get::<W>(e.src);
    binop_mem::<O, W>(cpu, e, b)
}

/// `op m, imm`
pub fn exec_binop_m_i<O: BinOp, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    binop_mem::<O, W>(cpu, e, e.imm & W::MASK)
}

/// A unary read-modify-write operation (INC, DEC, NEG, NOT).
pub trait UnOp {
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64) -> u64;
}
pub struct Inc;
pub struct Dec;
pub struct Neg;
impl UnOp for Inc {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64) -> u64 {
        let r = a.wrapping_add(1) & W::MASK;
        lf.set_oszap_inc::<W>(a, r);
        r
    }
}
impl UnOp for Dec {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64) -> u64 {
        let r = a.wrapping_sub(1) & W::MASK;
        lf.set_oszap_dec::<W>(a, r);
        r
    }
}
impl UnOp for Neg {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64) -> u64 {
        let r = 0u64.wrapping_sub(a) & W::MASK;
        lf.set_oszapc_sub::<W>(0, a, r);
        r
    }
}

/// `op r`
pub fn exec_unop_r<O: UnOp, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let a = cpu.get::<W>(e.dst);
    let r = O::apply::<W>(&mut cpu.state.lazy, a);
    cpu.set::<W>(e.dst, r);
    Ok(())
}

/// `op m` (read-modify-write)
pub fn exec_unop_m<O: UnOp, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let loc = cpu.translate_rmw::<W>(cpu.ea(e))?;
    let a = cpu.read_loc::<W>(loc);
    let mut lf = cpu.state.lazy;
    let r = O::apply::<W>(&mut lf, a);
    cpu.write_loc::<W>(loc, r);
    cpu.state.lazy = lf;
    Ok(())
}

/// ADCX (`OF_CHAIN` = false: carry in and out through CF) and ADOX (through OF): `r += r/m +
/// carry`, changing only that one flag (ADX, CPUID.(EAX=7,ECX=0):EBX bit 19).
pub fn exec_adx<W: Width, const OF_CHAIN: bool, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let b = if MEM { cpu.read::<W>(cpu.ea(e))? } else { cpu.get::<W>(e.src) };
    let a = cpu.get::<W>(e.dst);
    let lf = &mut cpu.state.lazy;
    let c = if OF_CHAIN { lf.of() } else { lf.cf() } as u128;
    let sum = a as u128 + b as u128 + c;
    let out = (sum >> W::BITS) & 1 != 0;
    if OF_CHAIN {
        lf.force_of(out);
    } else {
        lf.force_cf(out);
    }
    cpu.set::<W>(e.dst, sum as u64 & W::MASK);
    Ok(())
}

/// CPUID.(EAX=7,ECX=0):EBX bit for ADX.
pub const CPUID7_EBX: u32 = 1 << 19;

const ADX: [Row; 4] = [
    Row::rm(C::Adcx_r32_rm32, exec_adx::<W32, false, false>, exec_adx::<W32, false, true>),
    Row::rm(C::Adcx_r64_rm64, exec_adx::<W64, false, false>, exec_adx::<W64, false, true>),
    Row::rm(C::Adox_r32_rm32, exec_adx::<W32, true, false>, exec_adx::<W32, true, true>),
    Row::rm(C::Adox_r64_rm64, exec_adx::<W64, true, false>, exec_adx::<W64, true, true>),
];

/// Rows for one two-operand operation in all its encodings.
macro_rules! binop_rows {
    ($op:ty; $rm8r8:ident, $rm16r16:ident, $rm32r32:ident, $rm64r64:ident,
     $r8rm8:ident, $r16rm16:ident, $r32rm32:ident, $r64rm64:ident,
     $al:ident, $ax:ident, $eax:ident, $rax:ident,
     $rm8i8:ident, $rm16i16:ident, $rm32i32:ident, $rm64i32:ident,
     $rm16i8:ident, $rm32i8:ident, $rm64i8:ident, $rm8i8b:ident) => {
        [
            Row::rm(C::$rm8r8, exec_binop_r_r::<$op, W8>, exec_binop_m_r::<$op, W8>),
            Row::rm(C::$rm16r16, exec_binop_r_r::<$op, W16>, exec_binop_m_r::<$op, W16>),
            Row::rm(C::$rm32r32, exec_binop_r_r::<$op, W32>, exec_binop_m_r::<$op, W32>),
            Row::rm(C::$rm64r64, exec_binop_r_r::<$op, W64>, exec_binop_m_r::<$op, W64>),
            Row::rm(C::$r8rm8, exec_binop_r_r::<$op, W8>, exec_binop_r_m::<$op, W8>),
            Row::rm(C::$r16rm16, exec_binop_r_r::<$op, W16>, exec_binop_r_m::<$op, W16>),
            Row::rm(C::$r32rm32, exec_binop_r_r::<$op, W32>, exec_binop_r_m::<$op, W32>),
            Row::rm(C::$r64rm64, exec_binop_r_r::<$op, W64>, exec_binop_r_m::<$op, W64>),
            Row::reg(C::$al, exec_binop_r_i::<$op, W8>),
            Row::reg(C::$ax, exec_binop_r_i::<$op, W16>),
            Row::reg(C::$eax, exec_binop_r_i::<$op, W32>),
            Row::reg(C::$rax, exec_binop_r_i::<$op, W64>),
            Row::rm(C::$rm8i8, exec_binop_r_i::<$op, W8>, exec_binop_m_i::<$op, W8>),
            Row::rm(C::$rm16i16, exec_binop_r_i::<$op, W16>, exec_binop_m_i::<$op, W16>),
            Row::rm(C::$rm32i32, exec_binop_r_i::<$op, W32>, exec_binop_m_i::<$op, W32>),
            Row::rm(C::$rm64i32, exec_binop_r_i::<$op, W64>, exec_binop_m_i::<$op, W64>),
            Row::rm(C::$rm16i8, exec_binop_r_i::<$op, W16>, exec_binop_m_i::<$op, W16>),
            Row::rm(C::$rm32i8, exec_binop_r_i::<$op, W32>, exec_binop_m_i::<$op, W32>),
            Row::rm(C::$rm64i8, exec_binop_r_i::<$op, W64>, exec_binop_m_i::<$op, W64>),
            Row::rm(C::$rm8i8b, exec_binop_r_i::<$op, W8>, exec_binop_m_i::<$op, W8>),
        ]
    };
}
pub(crate) use binop_rows;

macro_rules! unop_rows {
    ($op:ty; $c8:ident, $c16:ident, $c32:ident, $c64:ident) => {
        [
            Row::rm(C::$c8, exec_unop_r::<$op, W8>, exec_unop_m::<$op, W8>),
            Row::rm(C::$c16, exec_unop_r::<$op, W16>, exec_unop_m::<$op, W16>),
            Row::rm(C::$c32, exec_unop_r::<$op, W32>, exec_unop_m::<$op, W32>),
            Row::rm(C::$c64, exec_unop_r::<$op, W64>, exec_unop_m::<$op, W64>),
        ]
    };
}
pub(crate) use unop_rows;

const ADD: [Row; 20] = binop_rows!(Add; Add_rm8_r8, Add_rm16_r16, Add_rm32_r32, Add_rm64_r64,
    Add_r8_rm8, Add_r16_rm16, Add_r32_rm32, Add_r64_rm64, Add_AL_imm8, Add_AX_imm16, Add_EAX_imm32,
    Add_RAX_imm32, Add_rm8_imm8, Add_rm16_imm16, Add_rm32_imm32, Add_rm64_imm32, Add_rm16_imm8,
    Add_rm32_imm8, Add_rm64_imm8, Add_rm8_imm8_82);
const ADC: [Row; 20] = binop_rows!(Adc; Adc_rm8_r8, Adc_rm16_r16, Adc_rm32_r32, Adc_rm64_r64,
    Adc_r8_rm8, Adc_r16_rm16, Adc_r32_rm32, Adc_r64_rm64, Adc_AL_imm8, Adc_AX_imm16, Adc_EAX_imm32,
    Adc_RAX_imm32, Adc_rm8_imm8, Adc_rm16_imm16, Adc_rm32_imm32, Adc_rm64_imm32, Adc_rm16_imm8,
    Adc_rm32_imm8, Adc_rm64_imm8, Adc_rm8_imm8_82);
const SUB: [Row; 20] = binop_rows!(Sub; Sub_rm8_r8, Sub_rm16_r16, Sub_rm32_r32, Sub_rm64_r64,
    Sub_r8_rm8, Sub_r16_rm16, Sub_r32_rm32, Sub_r64_rm64, Sub_AL_imm8, Sub_AX_imm16, Sub_EAX_imm32,
    Sub_RAX_imm32, Sub_rm8_imm8, Sub_rm16_imm16, Sub_rm32_imm32, Sub_rm64_imm32, Sub_rm16_imm8,
    Sub_rm32_imm8, Sub_rm64_imm8, Sub_rm8_imm8_82);
const SBB: [Row; 20] = binop_rows!(Sbb; Sbb_rm8_r8, Sbb_rm16_r16, Sbb_rm32_r32, Sbb_rm64_r64,
    Sbb_r8_rm8, Sbb_r16_rm16, Sbb_r32_rm32, Sbb_r64_rm64, Sbb_AL_imm8, Sbb_AX_imm16, Sbb_EAX_imm32,
    Sbb_RAX_imm32, Sbb_rm8_imm8, Sbb_rm16_imm16, Sbb_rm32_imm32, Sbb_rm64_imm32, Sbb_rm16_imm8,
    Sbb_rm32_imm8, Sbb_rm64_imm8, Sbb_rm8_imm8_82);
const CMP: [Row; 20] = binop_rows!(Cmp; Cmp_rm8_r8, Cmp_rm16_r16, Cmp_rm32_r32, Cmp_rm64_r64,
    Cmp_r8_rm8, Cmp_r16_rm16, Cmp_r32_rm32, Cmp_r64_rm64, Cmp_AL_imm8, Cmp_AX_imm16, Cmp_EAX_imm32,
    Cmp_RAX_imm32, Cmp_rm8_imm8, Cmp_rm16_imm16, Cmp_rm32_imm32, Cmp_rm64_imm32, Cmp_rm16_imm8,
    Cmp_rm32_imm8, Cmp_rm64_imm8, Cmp_rm8_imm8_82);
const INC: [Row; 4] = unop_rows!(Inc; Inc_rm8, Inc_rm16, Inc_rm32, Inc_rm64);
const DEC: [Row; 4] = unop_rows!(Dec; Dec_rm8, Dec_rm16, Dec_rm32, Dec_rm64);
const NEG: [Row; 4] = unop_rows!(Neg; Neg_rm8, Neg_rm16, Neg_rm32, Neg_rm64);
const INC_DEC_REG: [Row; 4] = [
    Row::reg(C::Inc_r16, exec_unop_r::<Inc, W16>),
    Row::reg(C::Inc_r32, exec_unop_r::<Inc, W32>),
    Row::reg(C::Dec_r16, exec_unop_r::<Dec, W16>),
    Row::reg(C::Dec_r32, exec_unop_r::<Dec, W32>),
];

pub(crate) const ROWS: &[&[Row]] = &[&ADD, &ADC, &SUB, &SBB, &CMP, &INC, &DEC, &NEG, &INC_DEC_REG, &ADX];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::hosttest::{check, host, values, Regs, FLAGS};
    use crate::state::rflags;

    fn cases() -> Vec<Regs> {
        let vs = values(64, 12);
        let mut out = Vec::new();
        for &a in &vs {
            for &b in &vs {
                for f in [0, rflags::CF, rflags::OF, rflags::ARITH] {
                    out.push(Regs { rax: a, rcx: b, rdx: a ^ b, flags: f, mem: [b; 8], ..Default::default() });
                }
            }
        }
        out
    }

    #[test]
    fn adcx_adox_match_the_host() {
        if !crate::interp::hosttest::host_has("adx") {
            return;
        }
        check(host!("adcx eax, ecx"), cases(), FLAGS);
        check(host!("adcx rax, rcx"), cases(), FLAGS);
        check(host!("adox eax, ecx"), cases(), FLAGS);
        check(host!("adox rax, qword ptr [r10]"), cases(), FLAGS);
        check(host!("adcx rax, rcx", "adox rdx, rcx", "adcx rax, rdx"), cases(), FLAGS);
    }

    #[test]
    fn alu_forms_match_the_host() {
        for code in [
            host!("add al, cl"),
            host!("adc cx, dx"),
            host!("sbb ecx, eax"),
            host!("sub rax, qword ptr [r10]"),
            host!("cmp byte ptr [r10 + 1], cl"),
            host!("neg dword ptr [r10]"),
            host!("inc word ptr [r10 - 2]"),
            host!("dec rcx"),
            host!("adc qword ptr [r10], -5"),
            host!("sbb al, 0x7f"),
            host!("and ecx, edx"),
            host!("or word ptr [r10], 0x1234"),
            host!("xor rax, rcx"),
            host!("test byte ptr [r10], 0x81"),
            host!("not r8"),
            host!("cmp eax, -1"),
        ] {
            check(code, cases(), FLAGS);
        }
    }
}
