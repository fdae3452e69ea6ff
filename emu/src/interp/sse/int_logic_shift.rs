//! Bitwise logic and shifts on XMM registers: ANDPS/ANDPD/PAND, ANDNPS/ANDNPD/PANDN,
//! ORPS/ORPD/POR, XORPS/XORPD/PXOR; PSLLW/D/Q, PSRLW/D/Q, PSRAW/D by an XMM/m128 count or an
//! immediate, PSLLDQ/PSRLDQ (SDM Vol. 2, those entries). A count above the lane width clears
//! the lane (logical shifts) or fills it with the sign (arithmetic), per the SDM. The bitwise
//! PS/PD forms are not FP operations: they touch no MXCSR flag, even on NaN inputs.

use super::float::FpEnv;
use super::lanes::{map16, map32, map64};
use super::{exec_xop_r_i, xrow, XOp, M128};
use crate::decoded::Row;
use iced_x86::Code as C;

macro_rules! bit_op {
    ($name:ident, |$a:ident, $b:ident| $body:expr) => {
        pub struct $name;
        impl XOp for $name {
            #[inline(always)]
            fn apply($a: u128, $b: u128, _imm: u8, _env: &mut FpEnv) -> u128 {
                $body
            }
        }
    };
}

bit_op!(And, |a, b| a & b);
bit_op!(Andn, |a, b| !a & b);
bit_op!(Or, |a, b| a | b);
bit_op!(Xor, |a, b| a ^ b);

#[inline(always)]
fn sll16(a: u128, n: u64) -> u128 {
    if n > 15 {
        0
    } else {
        map16(a, 0, |x, _| x << n)
    }
}
#[inline(always)]
fn srl16(a: u128, n: u64) -> u128 {
    if n > 15 {
        0
    } else {
        map16(a, 0, |x, _| x >> n)
    }
}
#[inline(always)]
fn sra16(a: u128, n: u64) -> u128 {
    let n = n.min(15);
    map16(a, 0, |x, _| ((x as i16) >> n) as u16)
}
#[inline(always)]
fn sll32(a: u128, n: u64) -> u128 {
    if n > 31 {
        0
    } else {
        map32(a, 0, |x, _| x << n)
    }
}
#[inline(always)]
fn srl32(a: u128, n: u64) -> u128 {
    if n > 31 {
        0
    } else {
        map32(a, 0, |x, _| x >> n)
    }
}
#[inline(always)]
fn sra32(a: u128, n: u64) -> u128 {
    let n = n.min(31);
    map32(a, 0, |x, _| ((x as i32) >> n) as u32)
}
#[inline(always)]
fn sll64(a: u128, n: u64) -> u128 {
    if n > 63 {
        0
    } else {
        map64(a, 0, |x, _| x << n)
    }
}
#[inline(always)]
fn srl64(a: u128, n: u64) -> u128 {
    if n > 63 {
        0
    } else {
        map64(a, 0, |x, _| x >> n)
    }
}
/// PSLLDQ: shift left by `n` bytes (n > 15 clears).
#[inline(always)]
fn slldq(a: u128, n: u64) -> u128 {
    if n > 15 {
        0
    } else {
        a << (8 * n)
    }
}
#[inline(always)]
fn srldq(a: u128, n: u64) -> u128 {
    if n > 15 {
        0
    } else {
        a >> (8 * n)
    }
}

/// One shift as two operations: the count from the source's low 64 bits (`$by_xmm`) or from
/// the immediate (`$by_imm`).
macro_rules! shift_op {
    ($by_xmm:ident, $by_imm:ident, $f:ident) => {
        pub struct $by_xmm;
        impl XOp for $by_xmm {
            #[inline(always)]
            fn apply(a: u128, b: u128, _imm: u8, _env: &mut FpEnv) -> u128 {
                $f(a, b as u64)
            }
        }
        pub struct $by_imm;
        impl XOp for $by_imm {
            #[inline(always)]
            fn apply(a: u128, _b: u128, imm: u8, _env: &mut FpEnv) -> u128 {
                $f(a, imm as u64)
            }
        }
    };
}

shift_op!(PsllwX, PsllwI, sll16);
shift_op!(PsrlwX, PsrlwI, srl16);
shift_op!(PsrawX, PsrawI, sra16);
shift_op!(PslldX, PslldI, sll32);
shift_op!(PsrldX, PsrldI, srl32);
shift_op!(PsradX, PsradI, sra32);
shift_op!(PsllqX, PsllqI, sll64);
shift_op!(PsrlqX, PsrlqI, srl64);
shift_op!(PslldqX, PslldqI, slldq);
shift_op!(PsrldqX, PsrldqI, srldq);

pub(crate) const ROWS: &[Row] = &[
    xrow!(Andps_xmm_xmmm128, And, M128),
    xrow!(Andpd_xmm_xmmm128, And, M128),
    xrow!(Pand_xmm_xmmm128, And, M128),
    xrow!(Andnps_xmm_xmmm128, Andn, M128),
    xrow!(Andnpd_xmm_xmmm128, Andn, M128),
    xrow!(Pandn_xmm_xmmm128, Andn, M128),
    xrow!(Orps_xmm_xmmm128, Or, M128),
    xrow!(Orpd_xmm_xmmm128, Or, M128),
    xrow!(Por_xmm_xmmm128, Or, M128),
    xrow!(Xorps_xmm_xmmm128, Xor, M128),
    xrow!(Xorpd_xmm_xmmm128, Xor, M128),
    xrow!(Pxor_xmm_xmmm128, Xor, M128),
    xrow!(Psllw_xmm_xmmm128, PsllwX, M128),
    xrow!(Psrlw_xmm_xmmm128, PsrlwX, M128),
    xrow!(Psraw_xmm_xmmm128, PsrawX, M128),
    xrow!(Pslld_xmm_xmmm128, PslldX, M128),
    xrow!(Psrld_xmm_xmmm128, PsrldX, M128),
    xrow!(Psrad_xmm_xmmm128, PsradX, M128),
    xrow!(Psllq_xmm_xmmm128, PsllqX, M128),
    xrow!(Psrlq_xmm_xmmm128, PsrlqX, M128),
    Row::reg(C::Psllw_xmm_imm8, exec_xop_r_i::<PsllwI>),
    Row::reg(C::Psrlw_xmm_imm8, exec_xop_r_i::<PsrlwI>),
    Row::reg(C::Psraw_xmm_imm8, exec_xop_r_i::<PsrawI>),
    Row::reg(C::Pslld_xmm_imm8, exec_xop_r_i::<PslldI>),
    Row::reg(C::Psrld_xmm_imm8, exec_xop_r_i::<PsrldI>),
    Row::reg(C::Psrad_xmm_imm8, exec_xop_r_i::<PsradI>),
    Row::reg(C::Psllq_xmm_imm8, exec_xop_r_i::<PsllqI>),
    Row::reg(C::Psrlq_xmm_imm8, exec_xop_r_i::<PsrlqI>),
    Row::reg(C::Pslldq_xmm_imm8, exec_xop_r_i::<PslldqI>),
    Row::reg(C::Psrldq_xmm_imm8, exec_xop_r_i::<PsrldqI>),
];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::testutil::{counts, host_cases, ints, ps};

    host_cases! { 500;
        andps: "andps xmm0, xmm1", ps();
        andnpd: "andnpd xmm0, xmm1", ps();
        orps: "orps xmm0, xmm1", ps();
        xorpd: "xorpd xmm0, xmm1", ps();
        pand: "pand xmm0, xmm1", ints();
        pandn: "pandn xmm0, xmm1", ints();
        por: "por xmm0, xmm1", ints();
        pxor: "pxor xmm0, xmm1", ints();
        psllw: "psllw xmm0, xmm1", counts();
        psrlw: "psrlw xmm0, xmm1", counts();
        psraw: "psraw xmm0, xmm1", counts();
        pslld: "pslld xmm0, xmm1", counts();
        psrld: "psrld xmm0, xmm1", counts();
        psrad: "psrad xmm0, xmm1", counts();
        psllq: "psllq xmm0, xmm1", counts();
        psrlq: "psrlq xmm0, xmm1", counts();
        psllw_i3: "psllw xmm0, 3", ints();
        psllw_i16: "psllw xmm0, 16", ints();
        psraw_i200: "psraw xmm0, 200", ints();
        psrad_i7: "psrad xmm0, 7", ints();
        psrld_i31: "psrld xmm0, 31", ints();
        psllq_i63: "psllq xmm0, 63", ints();
        psrlq_i64: "psrlq xmm0, 64", ints();
        pslldq_i5: "pslldq xmm0, 5", ints();
        pslldq_i16: "pslldq xmm0, 16", ints();
        psrldq_i9: "psrldq xmm0, 9", ints();
    }
}
