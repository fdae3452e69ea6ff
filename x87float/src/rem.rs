//! FPREM (truncating partial remainder) and FPREM1 (IEEE remainder), SDM Vol. 2 FPREM/FPREM1.
//!
//! Both compute a − q·b exactly; PC and RC are ignored and PE never occurs. When the exponent
//! difference d = exp(a) − exp(b) is below 64 the remainder is complete: C2 = 0 and the three
//! low quotient bits go to C0 (q2), C3 (q1), C1 (q0). FPREM truncates the quotient, FPREM1
//! rounds it to nearest-even.
//!
//! When d ≥ 64 the instruction only reduces the exponent and sets C2 = 1. The SDM says only
//! that the reduction is by "no more than 63". Measured on the host x87 (AMD EPYC) with FPREM
//! and FPREM1, d = 60..200: the dividend is reduced modulo b·2^(d−N) with a truncated quotient,
//! where N = 32 + (d mod 32); so after one step the difference is at most d − N. The quotient
//! bits C0, C3, C1 read 0 after a partial step.
use crate::classify::{screen2, Kind, Screen};
use crate::mul_div::div128by64;
use crate::round::norm_round_pack;
use crate::{Control, Outcome, F80, IE};

/// The result of FPREM/FPREM1: the new ST(0), C2 (incomplete) and the quotient bits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RemOutcome {
    /// New ST(0); `result.c1` is quotient bit 0.
    pub result: Outcome,
    /// C0: quotient bit 2.
    pub c0: bool,
    /// C2: set when the reduction is incomplete (partial remainder).
    pub c2: bool,
    /// C3: quotient bit 1.
    pub c3: bool,
}

/// FPREM: partial remainder of `a / b` with a truncated quotient.
pub fn prem(a: F80, b: F80, cw: Control) -> RemOutcome {
    remainder(a, b, cw, false)
}

/// FPREM1: IEEE remainder of `a / b` (quotient rounded to nearest-even).
pub fn prem1(a: F80, b: F80, cw: Control) -> RemOutcome {
    remainder(a, b, cw, true)
}

fn plain(result: Outcome) -> RemOutcome {
    RemOutcome { result, c0: false, c2: false, c3: false }
}

fn remainder(a: F80, b: F80, cw: Control, ieee: bool) -> RemOutcome {
    let (ua, ub, flags) = match screen2(a, b, cw) {
        Screen::Go(ua, ub, f) => (ua, ub, f),
        Screen::Done(o) => return plain(o),
    };
    match (ua.kind, ub.kind) {
        (Kind::Inf, _) | (_, Kind::Zero) => {
            return plain(Outcome::new(F80::INDEFINITE, flags | IE, false, cw));
        }
        (Kind::Zero, _) => return plain(Outcome::new(a, flags, false, cw)),
        _ => {}
    }
    let sign = ua.sign;
    if ub.kind == Kind::Inf {
        // A finite dividend is its own remainder; it is still normalized like any result.
        let o = norm_round_pack(sign, ua.exp + 64, ua.sig as u128, 64, cw, flags);
        return plain(o);
    }
    let d = ua.exp - ub.exp;
    if d >= 64 {
        let n = 32 + (d & 31);
        let base = ub.exp + (d - n);
        let (_, r) = div128by64((ua.sig as u128) << n, ub.sig);
        let r = r as u128;
        let result = if r == 0 {
            Outcome::new(F80::zero(sign), flags, false, cw)
        } else {
            norm_round_pack(sign, base + 64, r, 64, cw, flags)
        };
        return RemOutcome { result, c0: false, c2: true, c3: false };
    }
    if d < -1 || (d == -1 && !ieee) {
        let o = norm_round_pack(sign, ua.exp + 64, ua.sig as u128, 64, cw, flags);
        return plain(o);
    }
    // Align: the quotient digit scale is b's exponent (or a's when d = −1).
    let (num, den, base) = if d >= 0 {
        ((ua.sig as u128) << d, ub.sig as u128, ub.exp)
    } else {
        (ua.sig as u128, (ub.sig as u128) << 1, ua.exp)
    };
    let (mut q, mut r) = if d >= 0 {
        let (q, r) = div128by64(num, ub.sig);
        (q as u128, r as u128)
    } else {
        (num / den, num % den)
    };
    let mut sign = sign;
    if ieee && (2 * r > den || (2 * r == den && q & 1 != 0)) {
        r = den - r;
        q += 1;
        sign = !sign;
    }
    let result = if r == 0 {
        // An exact zero remainder keeps the dividend's sign (SDM FPREM1 notes).
        Outcome::new(F80::zero(ua.sign), flags, false, cw)
    } else {
        norm_round_pack(sign, base + 64, r, 64, cw, flags)
    };
    let mut result = result;
    result.c1 = q & 1 != 0;
    RemOutcome { result, c0: q & 4 != 0, c2: false, c3: q & 2 != 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(bits: u128) -> F80 {
        F80::from_bits(bits)
    }

    // Host x87 measurements (probe program): a = 1.4142..·2^d, b = 1.5707..·2 (3FFF C90FDAA22168C234).
    #[test]
    fn host_partial_and_full() {
        let b = f(0x3FFF_C90F_DAA2_2168_C234);
        let r = prem(f(0x403B_B504_F333_F9DE_6484), b, Control::DEFAULT);
        assert_eq!(r.result.value.to_bits(), 0x3FFF_BAF0_803E_CDFC_44F4);
        assert_eq!((r.c3, r.c2, r.result.c1, r.c0), (true, false, true, true));
        let r = prem(f(0x403F_B504_F333_F9DE_6484), b, Control::DEFAULT);
        assert_eq!(r.result.value.to_bits(), 0x401F_BF00_8FA1_6B78_E25C);
        assert_eq!((r.c3, r.c2, r.result.c1, r.c0), (false, true, false, false));
        let r = prem(f(0x4044_B504_F333_F9DE_6484), b, Control::DEFAULT);
        assert_eq!(r.result.value.to_bits(), 0x401E_A06C_AA5B_09AB_12D0);
    }

    // IEEE remainder: 5 rem 2 = 1 (q = 2, tie → even), 7 rem 2 = −1 (q = 4).
    #[test]
    fn ieee_ties() {
        let two = f(0x4000_8000_0000_0000_0000);
        let five = f(0x4001_A000_0000_0000_0000);
        let seven = f(0x4001_E000_0000_0000_0000);
        let r = prem1(five, two, Control::DEFAULT);
        assert_eq!(r.result.value, F80::ONE);
        assert_eq!((r.c0, r.c3, r.result.c1), (false, true, false));
        let r = prem1(seven, two, Control::DEFAULT);
        assert_eq!(r.result.value, f(0xBFFF_8000_0000_0000_0000));
        assert_eq!((r.c0, r.c3, r.result.c1), (true, false, false));
        let r = prem(seven, two, Control::DEFAULT);
        assert_eq!(r.result.value, F80::ONE);
        assert_eq!((r.c0, r.c3, r.result.c1), (false, true, true));
    }
}
