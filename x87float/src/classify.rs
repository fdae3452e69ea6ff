//! Operand classification, FXAM and NaN propagation.
//!
//! The 80387 and later reject the encodings the 8087/80287 accepted (SDM 8.2.2, Table 8-3):
//! unnormals (exponent ≠ 0, J = 0), pseudo-NaNs and pseudo-infinities (exponent 7FFF, J = 0)
//! are "unsupported" and raise IE with the real indefinite as the masked response.
//! Pseudo-denormals (exponent 0, J = 1) are still accepted as operands, read as having
//! exponent 1, and raise DE like ordinary denormals (SDM 8.2.2, 4.8.3.2).
//!
//! NaN propagation follows SDM Table 4-7: an SNaN is quieted by setting significand bit 62;
//! with two NaN operands, a QNaN wins over an SNaN, and between two NaNs of the same kind the
//! larger significand wins. When the significands are equal the positive NaN wins (measured on
//! the host x87: `7FFFC000000000000001 + FFFFC000000000000001` gives the positive one in both
//! operand orders).
use crate::{Control, Outcome, DE, F80, IE};

/// The class of an operand after decoding its encoding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Zero,
    /// Finite non-zero (normal, denormal or pseudo-denormal), held normalized.
    Finite,
    Inf,
    QNaN,
    SNaN,
    /// Unnormal, pseudo-NaN or pseudo-infinity.
    Unsupported,
}

/// A decoded operand. For `Finite`, `sig` has bit 63 set and `exp` is the biased exponent of
/// that bit (it can be ≤ 0 for a normalized denormal).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unpacked {
    pub sign: bool,
    pub exp: i32,
    pub sig: u64,
    pub kind: Kind,
    /// Denormal or pseudo-denormal: raises DE when used as an arithmetic operand.
    pub denormal: bool,
}

pub(crate) fn unpack(x: F80) -> Unpacked {
    let sign = x.sign();
    let e = x.exp() as i32;
    let s = x.signif;
    let j = s >> 63 != 0;
    let (kind, exp, sig, denormal) = if e == 0 {
        if s == 0 {
            (Kind::Zero, 0, 0, false)
        } else if j {
            // Pseudo-denormal: the J bit is honoured, the exponent reads as 1.
            (Kind::Finite, 1, s, true)
        } else {
            let lz = s.leading_zeros() as i32;
            (Kind::Finite, 1 - lz, s << lz, true)
        }
    } else if !j {
        (Kind::Unsupported, e, s, false)
    } else if e == 0x7FFF {
        if s << 1 == 0 {
            (Kind::Inf, e, s, false)
        } else if s & (1 << 62) != 0 {
            (Kind::QNaN, e, s, false)
        } else {
            (Kind::SNaN, e, s, false)
        }
    } else {
        (Kind::Finite, e, s, false)
    };
    Unpacked { sign, exp, sig, kind, denormal }
}

impl Unpacked {
    pub fn is_nan(&self) -> bool {
        matches!(self.kind, Kind::QNaN | Kind::SNaN)
    }
}

/// Quiets a NaN (sets significand bit 62).
pub(crate) fn quiet(x: F80) -> F80 {
    F80 { signif: x.signif | 1 << 62, sign_exp: x.sign_exp }
}

/// Result of the NaN/unsupported screening shared by all two-operand arithmetic.
pub(crate) enum Screen {
    /// Both operands are numbers (zero, finite or infinite); `flags` holds DE if any was
    /// denormal.
    Go(Unpacked, Unpacked, u8),
    /// The operation is decided: a NaN result, the indefinite, or an unmasked DE stop.
    Done(Outcome),
}

/// Screens two operands: unsupported → IE + indefinite; NaN → propagation (IE for SNaN);
/// otherwise DE for a denormal operand. Measured on the host: a NaN or unsupported operand
/// suppresses DE.
pub(crate) fn screen2(a: F80, b: F80, cw: Control) -> Screen {
    let ua = unpack(a);
    let ub = unpack(b);
    if ua.kind == Kind::Unsupported || ub.kind == Kind::Unsupported {
        return Screen::Done(Outcome::new(F80::INDEFINITE, IE, false, cw));
    }
    if ua.is_nan() || ub.is_nan() {
        let (v, f) = propagate2(a, &ua, b, &ub);
        return Screen::Done(Outcome::new(v, f, false, cw));
    }
    // An unmasked DE is resolved in `Outcome::new`, after the operation has had the chance
    // to raise a higher-priority IE or ZE.
    let flags = if ua.denormal || ub.denormal { DE } else { 0 };
    Screen::Go(ua, ub, flags)
}

/// One-operand version of [`screen2`].
pub(crate) fn screen1(a: F80, cw: Control) -> Result<(Unpacked, u8), Outcome> {
    let ua = unpack(a);
    match ua.kind {
        Kind::Unsupported => Err(Outcome::new(F80::INDEFINITE, IE, false, cw)),
        Kind::SNaN => Err(Outcome::new(quiet(a), IE, false, cw)),
        Kind::QNaN => Err(Outcome::new(a, 0, false, cw)),
        _ => Ok((ua, if ua.denormal { DE } else { 0 })),
    }
}

/// NaN propagation for two operands, at least one of which is a NaN (SDM Table 4-7).
pub(crate) fn propagate2(a: F80, ua: &Unpacked, b: F80, ub: &Unpacked) -> (F80, u8) {
    let snan = ua.kind == Kind::SNaN || ub.kind == Kind::SNaN;
    let flags = if snan { IE } else { 0 };
    let pick = match (ua.is_nan(), ub.is_nan()) {
        (true, false) => a,
        (false, true) => b,
        _ => {
            if ua.kind != ub.kind {
                // One QNaN, one SNaN: the QNaN wins.
                if ua.kind == Kind::QNaN {
                    a
                } else {
                    b
                }
            } else {
                let ma = a.signif & !(1 << 63);
                let mb = b.signif & !(1 << 63);
                if ma > mb || (ma == mb && a.sign_exp <= b.sign_exp) {
                    a
                } else {
                    b
                }
            }
        }
    };
    (quiet(pick), flags)
}

/// FXAM classes (SDM Vol. 2 FXAM, Table 3-44), as C3 C2 C0.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum XamClass {
    /// 000: unnormal, pseudo-NaN, pseudo-infinity.
    Unsupported,
    /// 001
    NaN,
    /// 010
    Normal,
    /// 011
    Infinity,
    /// 100
    Zero,
    /// 101
    Empty,
    /// 110: denormal or pseudo-denormal.
    Denormal,
}

impl XamClass {
    /// The condition codes (C3, C2, C0) for this class.
    pub fn c3_c2_c0(self) -> (bool, bool, bool) {
        match self {
            XamClass::Unsupported => (false, false, false),
            XamClass::NaN => (false, false, true),
            XamClass::Normal => (false, true, false),
            XamClass::Infinity => (false, true, true),
            XamClass::Zero => (true, false, false),
            XamClass::Empty => (true, false, true),
            XamClass::Denormal => (true, true, false),
        }
    }
    /// The FSW condition-code bits (C0 bit 8, C1 bit 9, C2 bit 10, C3 bit 14) FXAM writes,
    /// with C1 = `sign`.
    pub fn fsw_bits(self, sign: bool) -> u16 {
        let (c3, c2, c0) = self.c3_c2_c0();
        (c0 as u16) << 8 | (sign as u16) << 9 | (c2 as u16) << 10 | (c3 as u16) << 14
    }
}

/// FXAM: classifies ST(0) (SDM Vol. 2 FXAM). `empty` is the register's tag; C1 is always the
/// sign bit of the register contents, even for an empty register. Returns (class, C1).
pub fn xam(x: F80, empty: bool) -> (XamClass, bool) {
    let class = if empty {
        XamClass::Empty
    } else {
        match unpack(x).kind {
            Kind::Zero => XamClass::Zero,
            Kind::Finite if x.exp() == 0 => XamClass::Denormal,
            Kind::Finite => XamClass::Normal,
            Kind::Inf => XamClass::Infinity,
            Kind::QNaN | Kind::SNaN => XamClass::NaN,
            Kind::Unsupported => XamClass::Unsupported,
        }
    };
    (class, x.sign())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Encodings from SDM Table 8-3.
    #[test]
    fn classes() {
        assert_eq!(xam(F80::from_bits(0x3FFF_8000_0000_0000_0000), false).0, XamClass::Normal);
        assert_eq!(xam(F80::from_bits(0x3FFF_4000_0000_0000_0000), false).0, XamClass::Unsupported);
        assert_eq!(xam(F80::from_bits(0x7FFF_0000_0000_0000_0001), false).0, XamClass::Unsupported);
        assert_eq!(xam(F80::from_bits(0x0000_8000_0000_0000_0000), false).0, XamClass::Denormal);
        assert_eq!(xam(F80::from_bits(0xFFFF_C000_0000_0000_0000), false), (XamClass::NaN, true));
        assert_eq!(xam(F80::from_bits(0x8000_0000_0000_0000_0000), false), (XamClass::Zero, true));
        assert_eq!(xam(F80::ZERO, true).0, XamClass::Empty);
        assert_eq!(XamClass::Denormal.fsw_bits(true), 0x4600);
    }

    // Host x87 results (probe program, AMD EPYC): the larger significand wins; on a tie the
    // positive NaN wins; an SNaN is quieted.
    #[test]
    fn nan_propagation() {
        let q = F80::from_bits(0x7FFF_C000_0000_0000_0001);
        let nq = F80::from_bits(0xFFFF_C000_0000_0000_0001);
        let (v, f) = propagate2(nq, &unpack(nq), q, &unpack(q));
        assert_eq!((v, f), (q, 0));
        let s = F80::from_bits(0x7FFF_8000_0000_0000_0001);
        let one = F80::ONE;
        let (v, f) = propagate2(s, &unpack(s), one, &unpack(one));
        assert_eq!((v.to_bits(), f), (0x7FFF_C000_0000_0000_0001, IE));
    }
}
