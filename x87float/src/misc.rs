//! FRNDINT, FSCALE, FXTRACT, FABS and FCHS (SDM Vol. 2 pages of the same names).
//!
//! FRNDINT and FSCALE round by RC at 64 bits (PC does not apply to them, SDM 8.1.5.2).
//! FABS and FCHS only touch the sign bit: no exceptions, even for SNaN; C1 is cleared.
use crate::classify::{screen1, screen2, Kind, Screen};
use crate::convert::from_i32;
use crate::round::{norm_round_pack, round_at, round_pack, shr_jam};
use crate::{Control, Outcome, F80, IE, ZE};

/// FRNDINT: rounds to an integral value by RC; PE when inexact, C1 when rounded up.
pub fn round_to_int(x: F80, cw: Control) -> Outcome {
    let (u, flags) = match screen1(x, cw) {
        Ok(v) => v,
        Err(o) => return o,
    };
    if u.kind != Kind::Finite {
        return Outcome::new(x, flags, false, cw);
    }
    let e = u.exp - 16383;
    if e >= 63 {
        return Outcome::new(x, flags, false, cw);
    }
    let v = (u.sig as u128) << 64;
    let shift = (127 - e) as u32;
    let (q, inexact, inc) = if shift > 127 {
        round_at(u.sign, shr_jam(v, shift - 127), 127, cw.rounding())
    } else {
        round_at(u.sign, v, shift, cw.rounding())
    };
    let pe = if inexact { crate::PE } else { 0 };
    if q == 0 {
        return Outcome::new(F80::zero(u.sign), flags | pe, inc, cw);
    }
    let mut o = norm_round_pack(u.sign, 16383 + 127, q, 64, cw, flags | pe);
    o.c1 = inc;
    o
}

/// FSCALE: `a · 2^trunc(b)`; ST(0) = a, ST(1) = b.
pub fn scale(a: F80, b: F80, cw: Control) -> Outcome {
    let (ua, ub, flags) = match screen2(a, b, cw) {
        Screen::Go(ua, ub, f) => (ua, ub, f),
        Screen::Done(o) => return o,
    };
    let invalid = Outcome::new(F80::INDEFINITE, flags | IE, false, cw);
    match (ua.kind, ub.kind) {
        (Kind::Zero, Kind::Inf) if !ub.sign => invalid,
        (Kind::Inf, Kind::Inf) if ub.sign => invalid,
        (Kind::Finite, Kind::Inf) => {
            let v = if ub.sign { F80::zero(ua.sign) } else { F80::infinity(ua.sign) };
            Outcome::new(v, flags, false, cw)
        }
        (Kind::Finite, _) => {
            let n = if ub.kind == Kind::Zero || ub.exp < 16383 {
                0
            } else if ub.exp - 16383 > 20 {
                1 << 21 // saturates: far beyond the exponent range either way
            } else {
                (ub.sig >> (63 - (ub.exp - 16383))) as i32
            };
            let n = if ub.sign { -n } else { n };
            round_pack(ua.sign, ua.exp + n, (ua.sig as u128) << 64, 64, cw, flags)
        }
        _ => Outcome::new(a, flags, false, cw),
    }
}

/// FXTRACT results: ST(1) gets the exponent, ST(0) the significand.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Xtract {
    /// The unbiased exponent as a number (goes below, into ST(1) after the push).
    pub exponent: F80,
    /// The significand with exponent 0 (1 ≤ |s| < 2) and the operand's sign (new ST(0)).
    pub significand: F80,
    /// IE, DE, ZE.
    pub flags: u8,
    /// False when an unmasked exception forbids the write.
    pub store: bool,
}

/// FXTRACT: splits `x` into exponent and significand. Zero raises ZE and gives −∞ as the
/// exponent (SDM FXTRACT); ∞ gives +∞ and ∞.
pub fn xtract(x: F80, cw: Control) -> Xtract {
    let out = |e: F80, s: F80, flags: u8| {
        let o = Outcome::new((), flags, false, cw);
        Xtract { exponent: e, significand: s, flags, store: o.store }
    };
    let (u, flags) = match screen1(x, cw) {
        Ok(v) => v,
        Err(o) => return out(o.value, o.value, o.flags),
    };
    match u.kind {
        Kind::Zero => out(F80::infinity(true), x, flags | ZE),
        Kind::Inf => out(F80::infinity(false), x, flags),
        _ => out(from_i32(u.exp - 16383), F80::new(u.sign, 0x3FFF, u.sig), flags),
    }
}

/// FABS: clears the sign. C1 is cleared.
pub fn fabs(x: F80) -> F80 {
    F80 { signif: x.signif, sign_exp: x.sign_exp & 0x7FFF }
}

/// FCHS: flips the sign. C1 is cleared.
pub fn fchs(x: F80) -> F80 {
    F80 { signif: x.signif, sign_exp: x.sign_exp ^ 0x8000 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rounding, PE};

    fn f(bits: u128) -> F80 {
        F80::from_bits(bits)
    }

    #[test]
    fn frndint() {
        let x = f(0x4000_A000_0000_0000_0000); // 2.5
        let o = round_to_int(x, Control::DEFAULT);
        assert_eq!((o.value.to_bits(), o.flags, o.c1), (0x4000_8000_0000_0000_0000, PE, false));
        let o = round_to_int(x, Control::DEFAULT.with_rounding(Rounding::Up));
        assert_eq!((o.value.to_bits(), o.c1), (0x4000_C000_0000_0000_0000, true));
        let o = round_to_int(f(0x8001_8000_0000_0000_0000), Control::DEFAULT);
        assert_eq!(o.value, F80::zero(true));
    }

    #[test]
    fn fscale_and_fxtract() {
        let three = f(0x4000_C000_0000_0000_0000);
        let o = scale(three, f(0x4000_A000_0000_0000_0000), Control::DEFAULT); // 3 · 2^2
        assert_eq!(o.value.to_bits(), 0x4002_C000_0000_0000_0000);
        let x = xtract(three, Control::DEFAULT);
        assert_eq!((x.exponent, x.significand.to_bits()), (F80::ONE, 0x3FFF_C000_0000_0000_0000));
        let x = xtract(F80::zero(true), Control::DEFAULT);
        assert_eq!((x.exponent, x.significand, x.flags), (F80::infinity(true), F80::zero(true), ZE));
        assert_eq!(fchs(fabs(three)).to_bits(), 0xC000_C000_0000_0000_0000);
    }
}
