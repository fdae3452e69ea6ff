//! FMUL, FDIV, FDIVR (SDM Vol. 2 FMUL/FDIV/FDIVR).
//!
//! The product of two 64-bit significands is exact in 128 bits. The quotient is one 64-bit
//! digit from a 128-by-64-bit division; the remainder gives the round and sticky bits exactly.
//! Both then go through the shared rounding routine (PC and RC apply).
//! Invalid: 0·∞, 0/0, ∞/∞. Division of a finite non-zero number by zero raises ZE and gives
//! a signed infinity.
use crate::classify::{screen2, Kind, Screen};
use crate::round::{norm_round_pack, round_pack};
use crate::{Control, Outcome, F80, IE, ZE};

/// FMUL: `a · b`.
#[inline]
pub fn mul(a: F80, b: F80, cw: Control) -> Outcome {
    if a.is_normal() && b.is_normal() {
        let (ea, eb) = (a.exp() as i32, b.exp() as i32);
        return mul_finite(a.sign() ^ b.sign(), ea, a.signif, eb, b.signif, cw, 0);
    }
    mul_special(a, b, cw)
}

#[inline]
fn mul_finite(sign: bool, ea: i32, ma: u64, eb: i32, mb: u64, cw: Control, flags: u8) -> Outcome {
    let p = ma as u128 * mb as u128;
    norm_round_pack(sign, ea + eb - 16383 + 1, p, cw.precision_bits(), cw, flags)
}

fn mul_special(a: F80, b: F80, cw: Control) -> Outcome {
    let (ua, ub, flags) = match screen2(a, b, cw) {
        Screen::Go(ua, ub, f) => (ua, ub, f),
        Screen::Done(o) => return o,
    };
    let sign = ua.sign ^ ub.sign;
    match (ua.kind, ub.kind) {
        (Kind::Inf, Kind::Zero) | (Kind::Zero, Kind::Inf) => Outcome::new(F80::INDEFINITE, flags | IE, false, cw),
        (Kind::Inf, _) | (_, Kind::Inf) => Outcome::new(F80::infinity(sign), flags, false, cw),
        (Kind::Zero, _) | (_, Kind::Zero) => Outcome::new(F80::zero(sign), flags, false, cw),
        _ => mul_finite(sign, ua.exp, ua.sig, ub.exp, ub.sig, cw, flags),
    }
}

/// FDIV: `a / b`.
#[inline]
pub fn div(a: F80, b: F80, cw: Control) -> Outcome {
    if a.is_normal() && b.is_normal() {
        let (ea, eb) = (a.exp() as i32, b.exp() as i32);
        return div_finite(a.sign() ^ b.sign(), ea, a.signif, eb, b.signif, cw, 0);
    }
    div_special(a, b, cw)
}

fn div_special(a: F80, b: F80, cw: Control) -> Outcome {
    let (ua, ub, flags) = match screen2(a, b, cw) {
        Screen::Go(ua, ub, f) => (ua, ub, f),
        Screen::Done(o) => return o,
    };
    let sign = ua.sign ^ ub.sign;
    match (ua.kind, ub.kind) {
        (Kind::Inf, Kind::Inf) | (Kind::Zero, Kind::Zero) => Outcome::new(F80::INDEFINITE, flags | IE, false, cw),
        (Kind::Inf, _) => Outcome::new(F80::infinity(sign), flags, false, cw),
        (_, Kind::Inf) | (Kind::Zero, _) => Outcome::new(F80::zero(sign), flags, false, cw),
        (_, Kind::Zero) => Outcome::new(F80::infinity(sign), flags | ZE, false, cw),
        _ => div_finite(sign, ua.exp, ua.sig, ub.exp, ub.sig, cw, flags),
    }
}

/// Quotient of two finite non-zero values with normalized significands: one 64-bit quotient
/// digit from a 128-by-64-bit division, plus round and sticky bits from the remainder.
#[inline(always)]
fn div_finite(sign: bool, ea: i32, ma: u64, eb: i32, mb: u64, cw: Control, flags: u8) -> Outcome {
    let (num, exp) =
        if ma >= mb { ((ma as u128) << 63, ea - eb + 16383) } else { ((ma as u128) << 64, ea - eb + 16383 - 1) };
    let (q, r) = div128by64(num, mb);
    debug_assert_eq!(q as u128, num / mb as u128);
    // 64 quotient bits are all any precision keeps; the remainder decides the round bit
    // (r/mb ≥ ½) and the sticky bits, exactly.
    let low: u64 = if r == 0 {
        0
    } else {
        match ((r as u128) << 1).cmp(&(mb as u128)) {
            std::cmp::Ordering::Greater => 0xC000_0000_0000_0000,
            std::cmp::Ordering::Equal => 0x8000_0000_0000_0000,
            std::cmp::Ordering::Less => 1,
        }
    };
    round_pack(sign, exp, (q as u128) << 64 | low as u128, cw.precision_bits(), cw, flags)
}

/// ⌊x⌋ for |x| < 2^62, branch-free. Rounding toward −∞ (not toward zero) makes the
/// corrected estimates land on the exact answer almost always, so the fix-up loops that follow
/// are almost never taken and predict well. (`f64::floor` would be a libm call on baseline
/// x86-64.)
#[inline]
pub(crate) fn floor_i64(x: f64) -> i64 {
    let t = x as i64;
    t - ((t as f64) > x) as i64
}

/// 128-by-64-bit division whose quotient fits in 64 bits (`n < d·2^64`, `d` normalized).
/// An f64 estimate of the quotient is within about 2^12; one correction computed from the
/// exact remainder (small enough for f64) brings it within ±1, and exact checks finish it.
/// This avoids the generic software 128-bit division.
#[inline]
pub(crate) fn div128by64(n: u128, d: u64) -> (u64, u64) {
    const TWO64: f64 = 18_446_744_073_709_551_616.0;
    debug_assert!(d >> 63 == 1 && (n >> 64) < d as u128);
    // One f64 division, reused for both estimates.
    let inv = 1.0 / d as f64;
    // (Not `mul_add`: without FMA in the target features that is a libm call.)
    let nf = (n >> 64) as u64 as f64 * TWO64 + n as u64 as f64;
    let est = nf * inv;
    let mut q = if est >= TWO64 { u64::MAX } else { est as u64 };
    // |n − q·d| < 2^80: exact as a wrapped difference read as i128.
    let mut r = n.wrapping_sub(q as u128 * d as u128) as i128;
    let c = floor_i64((r >> 16) as i64 as f64 * 65_536.0 * inv);
    q = q.wrapping_add(c as u64);
    r -= c as i128 * d as i128;
    while r < 0 {
        q = q.wrapping_sub(1);
        r += d as i128;
    }
    while r >= d as i128 {
        q = q.wrapping_add(1);
        r -= d as i128;
    }
    (q, r as u64)
}

/// FDIVR: `b / a` (the reversed form is an operand swap).
pub fn divr(a: F80, b: F80, cw: Control) -> Outcome {
    div(b, a, cw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rounding, DE, PE, UE};

    fn f(bits: u128) -> F80 {
        F80::from_bits(bits)
    }

    // Host x87 (probe program): 0 · denormal = 0 with DE; ∞ · denormal = ∞ with DE.
    #[test]
    fn denormal_operand_flags() {
        let den = f(0x1234);
        let o = mul(F80::ZERO, den, Control::DEFAULT);
        assert_eq!((o.value, o.flags), (F80::ZERO, DE));
        let o = mul(F80::infinity(false), den, Control::DEFAULT);
        assert_eq!((o.value, o.flags), (F80::infinity(false), DE));
    }

    // 1/3 in extended: 3FFD AAAAAAAAAAAAAAAB at nearest (C1 = 1, rounded up), ...AAAA chopped.
    #[test]
    fn one_third() {
        let three = f(0x4000_C000_0000_0000_0000);
        let o = div(F80::ONE, three, Control::DEFAULT);
        assert_eq!((o.value.to_bits(), o.flags, o.c1), (0x3FFD_AAAA_AAAA_AAAA_AAAB, PE, true));
        let o = div(F80::ONE, three, Control::masked(Rounding::Zero, 64));
        assert_eq!(o.value.to_bits(), 0x3FFD_AAAA_AAAA_AAAA_AAAA);
        // PC=24: 0x3FFD AAAAAB0000000000
        let o = div(F80::ONE, three, Control::masked(Rounding::Nearest, 24));
        assert_eq!(o.value.to_bits(), 0x3FFD_AAAA_AB00_0000_0000);
        assert_eq!(divr(three, F80::ONE, Control::DEFAULT).value, div(F80::ONE, three, Control::DEFAULT).value);
    }

    #[test]
    fn divide_by_zero_and_underflow() {
        let o = div(F80::ONE, F80::zero(true), Control::DEFAULT);
        assert_eq!((o.value, o.flags), (F80::infinity(true), ZE));
        let unmasked = Control(0x037F & !(ZE as u16));
        assert!(!div(F80::ONE, F80::ZERO, unmasked).store);
        // 2^-16382 · 0.5 = 2^-16383: an exact denormal, no UE when masked.
        let o = mul(f(0x0001_8000_0000_0000_0000), f(0x3FFE_8000_0000_0000_0000), Control::DEFAULT);
        assert_eq!((o.value.to_bits(), o.flags), (0x0000_4000_0000_0000_0000, 0));
        let o = mul(f(0x0001_8000_0000_0000_0001), f(0x3FFE_8000_0000_0000_0000), Control::DEFAULT);
        assert_eq!(o.flags, UE | PE);
    }
}
