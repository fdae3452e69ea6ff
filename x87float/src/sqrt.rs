//! FSQRT (SDM Vol. 2 FSQRT).
//!
//! The significand is scaled to an integer N in [2^126, 2^128) with an even power of two left
//! over, r = ⌊√N⌋ is found with a floating-point estimate and one Newton step in integers,
//! then corrected to be exact. The remainder N − r² decides the rounding: √N lies above
//! r + ½ exactly when N − r² > r (it can never equal r + ½). PC and RC apply.
//! √(−0) = −0; √x for x < 0 (including −∞) is invalid.
use crate::classify::{screen1, Kind};
use crate::round::round_pack;
use crate::{Control, Outcome, F80, IE};

/// FSQRT: `√a`.
pub fn sqrt(a: F80, cw: Control) -> Outcome {
    let (ua, flags) = match screen1(a, cw) {
        Ok(x) => x,
        Err(o) => return o,
    };
    match ua.kind {
        Kind::Zero => return Outcome::new(a, flags, false, cw),
        _ if ua.sign => return Outcome::new(F80::INDEFINITE, flags | IE, false, cw),
        Kind::Inf => return Outcome::new(a, flags, false, cw),
        _ => {}
    }
    // value = sig · 2^e with e = exp − 16383 − 63; make e − k even.
    let e = ua.exp - 16383 - 63;
    let k = if (e - 63) % 2 == 0 { 63 } else { 64 };
    let n = (ua.sig as u128) << k;
    let r = isqrt(n);
    let rem = n - r as u128 * r as u128;
    let mut sig = (r as u128) << 64;
    if rem > r as u128 {
        sig |= 1 << 63 | 1;
    } else if rem != 0 {
        sig |= 1;
    }
    let exp = (e - k) / 2 + 16446;
    round_pack(false, exp, sig, cw.precision_bits(), cw, flags)
}

/// ⌊√n⌋ for n in [2^126, 2^128).
fn isqrt(n: u128) -> u64 {
    let est = (n as f64).sqrt() as u128; // within about 2^12 of the answer
    let est = est.clamp(1 << 63, u64::MAX as u128);
    let mut r = (est + n / est) / 2;
    r = r.min(u64::MAX as u128);
    while r * r > n {
        r -= 1;
    }
    while let Some(sq) = (r + 1).checked_mul(r + 1) {
        if sq > n {
            break;
        }
        r += 1;
    }
    r as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rounding, PE};

    #[test]
    fn exact_and_inexact() {
        let four = F80::from_bits(0x4001_8000_0000_0000_0000);
        let o = sqrt(four, Control::DEFAULT);
        assert_eq!((o.value.to_bits(), o.flags), (0x4000_8000_0000_0000_0000, 0));
        // √2 = 1.6A09E667F3BCC908B2FB1366... → 3FFF B504F333F9DE6484 (nearest, truncated
        // digits ...6484|597D... round down).
        let two = F80::from_bits(0x4000_8000_0000_0000_0000);
        let o = sqrt(two, Control::DEFAULT);
        assert_eq!((o.value.to_bits(), o.flags, o.c1), (0x3FFF_B504_F333_F9DE_6484, PE, false));
        let o = sqrt(two, Control::masked(Rounding::Up, 64));
        assert_eq!(o.value.to_bits(), 0x3FFF_B504_F333_F9DE_6485);
        let o = sqrt(F80::from_bits(0xBFFF_8000_0000_0000_0000), Control::DEFAULT);
        assert_eq!((o.value, o.flags), (F80::INDEFINITE, IE));
        assert_eq!(sqrt(F80::zero(true), Control::DEFAULT).value, F80::zero(true));
    }

    #[test]
    fn isqrt_edges() {
        assert_eq!(isqrt(1 << 126), 1 << 63);
        assert_eq!(isqrt(u128::MAX), u64::MAX);
    }
}
