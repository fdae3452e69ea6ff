//! FADD, FSUB, FSUBR (SDM Vol. 2 FADD/FSUB/FSUBR; Vol. 1 4.8.3 for signed zeros).
//!
//! The significands are aligned in a 128-bit word with one bit of headroom, the shifted-out
//! bits are jammed into bit 0, and the sum goes through the shared rounding routine with the
//! control word's PC and RC. Exact zero results are +0 except under RC=down, where they are
//! −0 (IEEE 754 6.3); a sum of two zeros of the same sign keeps that sign.
use crate::classify::{screen2, Kind, Screen};
use crate::round::{norm_round_pack, shr_jam};
use crate::{Control, Outcome, Rounding, F80, IE};

/// FADD: `a + b`.
pub fn add(a: F80, b: F80, cw: Control) -> Outcome {
    add_signed(a, b, false, cw)
}

/// FSUB: `a − b`.
pub fn sub(a: F80, b: F80, cw: Control) -> Outcome {
    add_signed(a, b, true, cw)
}

/// FSUBR: `b − a` (the reversed form is an operand swap).
pub fn subr(a: F80, b: F80, cw: Control) -> Outcome {
    add_signed(b, a, true, cw)
}

#[inline(always)]
fn add_signed(a: F80, b: F80, negate_b: bool, cw: Control) -> Outcome {
    if a.is_normal() && b.is_normal() {
        let (ea, eb) = (a.exp() as i32, b.exp() as i32);
        return add_finite(a.sign(), ea, a.signif, b.sign() ^ negate_b, eb, b.signif, cw, 0);
    }
    add_special(a, b, negate_b, cw)
}

fn add_special(a: F80, b: F80, negate_b: bool, cw: Control) -> Outcome {
    let (ua, ub, flags) = match screen2(a, b, cw) {
        Screen::Go(ua, ub, f) => (ua, ub, f),
        Screen::Done(o) => return o,
    };
    let sa = ua.sign;
    let sb = ub.sign ^ negate_b;
    let prec = cw.precision_bits();
    match (ua.kind, ub.kind) {
        (Kind::Inf, Kind::Inf) if sa != sb => Outcome::new(F80::INDEFINITE, flags | IE, false, cw),
        (Kind::Inf, _) => Outcome::new(F80::infinity(sa), flags, false, cw),
        (_, Kind::Inf) => Outcome::new(F80::infinity(sb), flags, false, cw),
        (Kind::Zero, Kind::Zero) => {
            let sign = if sa == sb { sa } else { cw.rounding() == Rounding::Down };
            Outcome::new(F80::zero(sign), flags, false, cw)
        }
        // x ± 0 still goes through rounding: PC may shorten x, and a denormal x may be tiny.
        (Kind::Zero, _) => norm_round_pack(sb, ub.exp, (ub.sig as u128) << 64, prec, cw, flags),
        (_, Kind::Zero) => norm_round_pack(sa, ua.exp, (ua.sig as u128) << 64, prec, cw, flags),
        _ => add_finite(sa, ua.exp, ua.sig, sb, ub.exp, ub.sig, cw, flags),
    }
}

/// Sum of two finite non-zero values with normalized significands.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn add_finite(sa: bool, ea: i32, ma: u64, sb: bool, eb: i32, mb: u64, cw: Control, flags: u8) -> Outcome {
    let prec = cw.precision_bits();
    // Bit 126 holds J; bit 127 is headroom for the carry.
    let (sa, ea, ma, sb, eb, mb) = if ea >= eb { (sa, ea, ma, sb, eb, mb) } else { (sb, eb, mb, sa, ea, ma) };
    let ma = (ma as u128) << 63;
    let mb = shr_jam((mb as u128) << 63, (ea - eb) as u32);
    if sa == sb {
        norm_round_pack(sa, ea + 1, ma + mb, prec, cw, flags)
    } else if ma > mb {
        norm_round_pack(sa, ea + 1, ma - mb, prec, cw, flags)
    } else if mb > ma {
        norm_round_pack(sb, ea + 1, mb - ma, prec, cw, flags)
    } else {
        let sign = cw.rounding() == Rounding::Down;
        Outcome::new(F80::zero(sign), flags, false, cw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DE, PE};

    fn f(bits: u128) -> F80 {
        F80::from_bits(bits)
    }

    // Host x87 (probe program): pseudo-denormal 0000 8000000000000001 + 1.0 = 1.0 with DE, PE.
    #[test]
    fn pseudo_denormal_operand() {
        let o = add(f(0x0000_8000_0000_0000_0001), F80::ONE, Control::DEFAULT);
        assert_eq!((o.value, o.flags), (F80::ONE, DE | PE));
    }

    // Host x87: an unnormal operand gives the indefinite with IE only (no DE).
    #[test]
    fn unnormal_operand() {
        let o = add(f(0x3FFF_4000_0000_0000_0000), f(0x1234), Control::DEFAULT);
        assert_eq!((o.value, o.flags), (F80::INDEFINITE, IE));
    }

    // IEEE 754: x − x = +0, or −0 when rounding down; ∞ − ∞ is invalid.
    #[test]
    fn zeros_and_infinities() {
        let cw = Control::DEFAULT;
        assert_eq!(sub(F80::ONE, F80::ONE, cw).value, F80::ZERO);
        assert_eq!(sub(F80::ONE, F80::ONE, cw.with_rounding(Rounding::Down)).value, F80::zero(true));
        let o = sub(F80::infinity(false), F80::infinity(false), cw);
        assert_eq!((o.value, o.flags), (F80::INDEFINITE, IE));
        // 1.0 + 2.0 = 3.0 = 4000 C000000000000000
        assert_eq!(add(F80::ONE, f(0x4000_8000_0000_0000_0000), cw).value.to_bits(), 0x4000_C000_0000_0000_0000);
        assert_eq!(subr(F80::ONE, f(0x4000_8000_0000_0000_0000), cw).value, F80::ONE);
    }
}
