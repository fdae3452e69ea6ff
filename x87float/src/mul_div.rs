//! FMUL, FDIV, FDIVR (SDM Vol. 2 FMUL/FDIV/FDIVR).
//!
//! The product of two 64-bit significands is exact in 128 bits. The quotient is computed as
//! two 64-bit quotient digits from 128-by-64-bit divisions, with the final remainder jammed
//! into the sticky bit; both then go through the shared rounding routine (PC and RC apply).
//! Invalid: 0·∞, 0/0, ∞/∞. Division of a finite non-zero number by zero raises ZE and gives
//! a signed infinity.
use crate::classify::{screen2, Kind, Screen};
use crate::round::{norm_round_pack, round_pack};
use crate::{Control, Outcome, F80, IE, ZE};

/// FMUL: `a · b`.
pub fn mul(a: F80, b: F80, cw: Control) -> Outcome {
    let (ua, ub, flags) = match screen2(a, b, cw) {
        Screen::Go(ua, ub, f) => (ua, ub, f),
        Screen::Done(o) => return o,
    };
    let sign = ua.sign ^ ub.sign;
    match (ua.kind, ub.kind) {
        (Kind::Inf, Kind::Zero) | (Kind::Zero, Kind::Inf) => Outcome::new(F80::INDEFINITE, flags | IE, false, cw),
        (Kind::Inf, _) | (_, Kind::Inf) => Outcome::new(F80::infinity(sign), flags, false, cw),
        (Kind::Zero, _) | (_, Kind::Zero) => Outcome::new(F80::zero(sign), flags, false, cw),
        _ => {
            let p = ua.sig as u128 * ub.sig as u128;
            norm_round_pack(sign, ua.exp + ub.exp - 16383 + 1, p, cw.precision_bits(), cw, flags)
        }
    }
}

/// FDIV: `a / b`.
pub fn div(a: F80, b: F80, cw: Control) -> Outcome {
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
        _ => {
            let (num, exp) = if ua.sig >= ub.sig {
                ((ua.sig as u128) << 63, ua.exp - ub.exp + 16383)
            } else {
                ((ua.sig as u128) << 64, ua.exp - ub.exp + 16383 - 1)
            };
            let d = ub.sig as u128;
            // num < d·2^64, so each digit fits in 64 bits.
            let q1 = num / d;
            let r1 = num - q1 * d;
            let n2 = r1 << 64;
            let q2 = n2 / d;
            let sticky = (n2 - q2 * d != 0) as u128;
            let q = q1 << 64 | q2 | sticky;
            round_pack(sign, exp, q, cw.precision_bits(), cw, flags)
        }
    }
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
