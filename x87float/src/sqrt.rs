//! FSQRT (SDM Vol. 2 FSQRT).
//!
//! The significand is scaled to an integer N in [2^126, 2^128) with an even power of two left
//! over, r = ⌊√N⌋ is found with a floating-point estimate and one Newton step in integers,
//! then corrected to be exact. The remainder N − r² decides the rounding: √N lies above
//! r + ½ exactly when N − r² > r (it can never equal r + ½). PC and RC apply.
//! √(−0) = −0; √x for x < 0 (including −∞) is invalid.
use crate::classify::{screen1, Kind};
use crate::mul_div::floor_i64;
use crate::round::round_pack;
use crate::{Control, Outcome, F80, IE};

/// FSQRT: `√a`.
pub fn sqrt(a: F80, cw: Control) -> Outcome {
    if a.is_normal() && !a.sign() {
        return sqrt_finite(a.exp() as i32, a.signif, cw, 0);
    }
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
    sqrt_finite(ua.exp, ua.sig, cw, flags)
}

/// √ of a positive finite value with a normalized significand.
#[inline(always)]
fn sqrt_finite(exp: i32, sig: u64, cw: Control, flags: u8) -> Outcome {
    // value = sig · 2^e with e = exp − 16383 − 63; make e − k even.
    let e = exp - 16383 - 63;
    let k = if (e - 63) % 2 == 0 { 63 } else { 64 };
    let n = (sig as u128) << k;
    let (r, rem) = isqrt(n);
    let mut sig = (r as u128) << 64;
    if rem > r as u128 {
        sig |= 1 << 63 | 1;
    } else if rem != 0 {
        sig |= 1;
    }
    let exp = (e - k) / 2 + 16446;
    round_pack(false, exp, sig, cw.precision_bits(), cw, flags)
}

/// ⌊√n⌋ and the remainder n − ⌊√n⌋² for n in [2^126, 2^128). The f64 estimate is within about 2^12 of the root; one
/// Newton correction (n − e²)/(2e), small enough to compute in f64 without loss, brings it
/// within ±1, and exact integer checks finish it. No 128-bit division is needed.
#[inline]
fn isqrt(n: u128) -> (u64, u128) {
    const TWO64: f64 = 18_446_744_073_709_551_616.0;
    // Only hardware conversions: the top 64 bits carry all the precision f64 can hold.
    let nf = (n >> 64) as u64 as f64 * TWO64;
    let root = nf.sqrt();
    // 1/(2·root), computed while the integer square below is formed.
    let half_inv = 0.5 / root;
    // Squares are of u64 values widened to u128: one 64×64→128 multiply each.
    let sq64 = |x: u64| x as u128 * x as u128;
    let est = (root as u64).max(1 << 63);
    // |n − est²| < 2^80: exact as a wrapped difference read as i128.
    let diff = n.wrapping_sub(sq64(est)) as i128;
    // Newton's step never undershoots the root, so flooring it gives ⌊√n⌋ almost always.
    let corr = floor_i64((diff >> 16) as i64 as f64 * 65_536.0 * half_inv);
    let mut r = est.saturating_add_signed(corr).max(1 << 63);
    // r is now within ±1 of the root (the loops run at most once or twice).
    let mut sq = sq64(r);
    while sq > n {
        sq -= 2 * r as u128 - 1;
        r -= 1;
    }
    let mut rem = n - sq;
    // (r+1)² ≤ n  ⇔  n − r² ≥ 2r + 1
    while rem > 2 * r as u128 && r < u64::MAX {
        rem -= 2 * r as u128 + 1;
        r += 1;
    }
    (r, rem)
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
        assert_eq!(isqrt(1 << 126), (1 << 63, 0));
        assert_eq!(isqrt(u128::MAX), (u64::MAX, u128::MAX - (u64::MAX as u128).pow(2)));
        let n = (1u128 << 127) + 12345;
        let (r, rem) = isqrt(n);
        assert!(r as u128 * r as u128 + rem == n && rem <= 2 * r as u128);
    }
}
