//! Logical operations: AND, OR, XOR, TEST, NOT (SDM Vol. 2). They share the ALU forms of
//! `arith.rs`; CF and OF are cleared, AF is left as the reference CPUs leave it (cleared).

use super::arith::{binop_rows, exec_binop_m_i, exec_binop_m_r, exec_binop_r_i, exec_binop_r_m, exec_binop_r_r};
use super::arith::{exec_unop_m, exec_unop_r, unop_rows, BinOp, UnOp};
use crate::decoded::Row;
use crate::flags::{LazyFlags, Width, W16, W32, W64, W8};
use iced_x86::Code as C;

pub struct And;
pub struct Or;
pub struct Xor;
pub struct Test;
pub struct Not;

impl BinOp for And {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, b: u64) -> u64 {
        lf.set_oszapc_logic::<W>(a & b);
        a & b
    }
}
impl BinOp for Or {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, b: u64) -> u64 {
        lf.set_oszapc_logic::<W>(a | b);
        a | b
    }
}
impl BinOp for Xor {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, b: u64) -> u64 {
        lf.set_oszapc_logic::<W>(a ^ b);
        a ^ b
    }
}
impl BinOp for Test {
    const WRITES: bool = false;
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, b: u64) -> u64 {
        lf.set_oszapc_logic::<W>(a & b);
        a & b
    }
}
impl UnOp for Not {
    /// NOT changes no flags.
    #[inline(always)]
    fn apply<W: Width>(_lf: &mut LazyFlags, a: u64) -> u64 {
        !a & W::MASK
    }
}

const AND: [Row; 20] = binop_rows!(And; And_rm8_r8, And_rm16_r16, And_rm32_r32, And_rm64_r64,
    And_r8_rm8, And_r16_rm16, And_r32_rm32, And_r64_rm64, And_AL_imm8, And_AX_imm16, And_EAX_imm32,
    And_RAX_imm32, And_rm8_imm8, And_rm16_imm16, And_rm32_imm32, And_rm64_imm32, And_rm16_imm8,
    And_rm32_imm8, And_rm64_imm8, And_rm8_imm8_82);
const OR: [Row; 20] = binop_rows!(Or; Or_rm8_r8, Or_rm16_r16, Or_rm32_r32, Or_rm64_r64,
    Or_r8_rm8, Or_r16_rm16, Or_r32_rm32, Or_r64_rm64, Or_AL_imm8, Or_AX_imm16, Or_EAX_imm32,
    Or_RAX_imm32, Or_rm8_imm8, Or_rm16_imm16, Or_rm32_imm32, Or_rm64_imm32, Or_rm16_imm8,
    Or_rm32_imm8, Or_rm64_imm8, Or_rm8_imm8_82);
const XOR: [Row; 20] = binop_rows!(Xor; Xor_rm8_r8, Xor_rm16_r16, Xor_rm32_r32, Xor_rm64_r64,
    Xor_r8_rm8, Xor_r16_rm16, Xor_r32_rm32, Xor_r64_rm64, Xor_AL_imm8, Xor_AX_imm16, Xor_EAX_imm32,
    Xor_RAX_imm32, Xor_rm8_imm8, Xor_rm16_imm16, Xor_rm32_imm32, Xor_rm64_imm32, Xor_rm16_imm8,
    Xor_rm32_imm8, Xor_rm64_imm8, Xor_rm8_imm8_82);
const TEST: [Row; 12] = [
    Row::rm(C::Test_rm8_r8, exec_binop_r_r::<Test, W8>, exec_binop_m_r::<Test, W8>),
    Row::rm(C::Test_rm16_r16, exec_binop_r_r::<Test, W16>, exec_binop_m_r::<Test, W16>),
    Row::rm(C::Test_rm32_r32, exec_binop_r_r::<Test, W32>, exec_binop_m_r::<Test, W32>),
    Row::rm(C::Test_rm64_r64, exec_binop_r_r::<Test, W64>, exec_binop_m_r::<Test, W64>),
    Row::reg(C::Test_AL_imm8, exec_binop_r_i::<Test, W8>),
    Row::reg(C::Test_AX_imm16, exec_binop_r_i::<Test, W16>),
    Row::reg(C::Test_EAX_imm32, exec_binop_r_i::<Test, W32>),
    Row::reg(C::Test_RAX_imm32, exec_binop_r_i::<Test, W64>),
    Row::rm(C::Test_rm8_imm8, exec_binop_r_i::<Test, W8>, exec_binop_m_i::<Test, W8>),
    Row::rm(C::Test_rm16_imm16, exec_binop_r_i::<Test, W16>, exec_binop_m_i::<Test, W16>),
    Row::rm(C::Test_rm32_imm32, exec_binop_r_i::<Test, W32>, exec_binop_m_i::<Test, W32>),
    Row::rm(C::Test_rm64_imm32, exec_binop_r_i::<Test, W64>, exec_binop_m_i::<Test, W64>),
];
const TEST_ALIASES: [Row; 4] = [
    // F6 /1 and F7 /1 are undocumented aliases of TEST r/m, imm.
    Row::rm(C::Test_rm8_imm8_F6r1, exec_binop_r_i::<Test, W8>, exec_binop_m_i::<Test, W8>),
    Row::rm(C::Test_rm16_imm16_F7r1, exec_binop_r_i::<Test, W16>, exec_binop_m_i::<Test, W16>),
    Row::rm(C::Test_rm32_imm32_F7r1, exec_binop_r_i::<Test, W32>, exec_binop_m_i::<Test, W32>),
    Row::rm(C::Test_rm64_imm32_F7r1, exec_binop_r_i::<Test, W64>, exec_binop_m_i::<Test, W64>),
];
const NOT: [Row; 4] = unop_rows!(Not; Not_rm8, Not_rm16, Not_rm32, Not_rm64);

pub(crate) const ROWS: &[&[Row]] = &[&AND, &OR, &XOR, &TEST, &TEST_ALIASES, &NOT];
