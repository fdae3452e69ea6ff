//! The rounding and packing routine every computed extended result goes through.
//!
//! Input: sign, a biased exponent and a 128-bit significand with the binary point after bit
//! 127 (value = sig / 2^127 · 2^(exp − 16383)). Output: the F80 result rounded to the
//! precision control's 24, 53 or 64 bits, with overflow, underflow and precision handling as
//! SDM 4.8.4 and 8.5.4–8.5.6 describe:
//! - Rounding follows RC; C1 reports that the magnitude was rounded up.
//! - With PC < 64 the exponent range stays the extended one; only the significand is
//!   shortened (SDM 8.1.5.2). Denormal results are rounded at the same significand bit
//!   positions, so they keep fewer bits, as on hardware.
//! - Tininess is detected after rounding (the result rounded with an unbounded exponent lies
//!   below 2^−16382), which is what the x87 does (see the TestFloat README).
//! - Masked underflow raises UE only if the denormalized result is also inexact; unmasked
//!   underflow raises UE for any tiny result and delivers the normalized result with the
//!   exponent rebiased by +24576. Masked overflow gives ∞ or the largest finite number by RC;
//!   unmasked overflow gives the result rebiased by −24576.
use crate::{Control, Outcome, Rounding, F80, OE, PE, REBIAS, UE};

/// Shifts right, OR-ing every bit shifted out into bit 0 ("jamming"), so rounding still sees
/// that the discarded part was non-zero.
#[inline]
pub(crate) fn shr_jam(x: u128, n: u32) -> u128 {
    if n == 0 {
        x
    } else if n < 128 {
        (x >> n) | ((x << (128 - n) != 0) as u128)
    } else {
        (x != 0) as u128
    }
}

/// Rounds `sig` at bit `shift` (keeping `sig >> shift`). Returns (kept bits, incremented
/// by one, inexact, whether the increment happened).
#[inline]
pub(crate) fn round_at(sign: bool, sig: u128, shift: u32, rc: Rounding) -> (u128, bool, bool) {
    let q = sig >> shift;
    let rem = sig & ((1u128 << shift) - 1);
    if rem == 0 {
        return (q, false, false);
    }
    let half = 1u128 << (shift - 1);
    let inc = match rc {
        Rounding::Nearest => rem > half || (rem == half && q & 1 != 0),
        Rounding::Zero => false,
        Rounding::Up => !sign,
        Rounding::Down => sign,
    };
    (q + inc as u128, true, inc)
}

/// Rounds and packs a non-zero result. `sig` must have bit 127 set. `flags` are exceptions
/// already raised (e.g. DE) and are carried into the outcome.
#[inline(always)]
pub(crate) fn round_pack(sign: bool, exp: i32, sig: u128, prec: u32, cw: Control, flags: u8) -> Outcome {
    debug_assert!(sig >> 127 == 1);
    // Fast path in 64-bit halves for results that stay normal: every kept bit is in `hi`.
    let rc = cw.rounding();
    let hi = (sig >> 64) as u64;
    let lo = sig as u64;
    let drop = 64 - prec;
    let (round, sticky) = if drop == 0 {
        (lo >> 63 != 0, lo << 1 != 0)
    } else {
        ((hi >> (drop - 1)) & 1 != 0, hi & ((1u64 << (drop - 1)) - 1) != 0 || lo != 0)
    };
    let inexact = round || sticky;
    let inc = match rc {
        Rounding::Nearest => round && (sticky || (hi >> drop) & 1 != 0),
        Rounding::Zero => false,
        Rounding::Up => !sign && inexact,
        Rounding::Down => sign && inexact,
    };
    let (q, carry) = ((hi >> drop) << drop).overflowing_add((inc as u64) << drop);
    let (q, e) = if carry { (1u64 << 63, exp + 1) } else { (q, exp) };
    if (1..0x7FFF).contains(&e) {
        let f = flags | if inexact { PE } else { 0 };
        return Outcome::new(F80::new(sign, e as u16, q), f, inc, cw);
    }
    round_pack_slow(sign, exp, sig, prec, cw, flags)
}

/// Overflow and tiny results.
#[cold]
fn round_pack_slow(sign: bool, exp: i32, sig: u128, prec: u32, cw: Control, flags: u8) -> Outcome {
    let rc = cw.rounding();
    let shift = 128 - prec;
    let (mut q, inexact, inc) = round_at(sign, sig, shift, rc);
    let mut e = exp;
    if q >> prec != 0 {
        q >>= 1;
        e += 1;
    }
    let place = |q: u128| (q << (64 - prec)) as u64;
    if e >= 0x7FFF {
        if cw.is_masked(OE) {
            let to_inf = match rc {
                Rounding::Nearest => true,
                Rounding::Zero => false,
                Rounding::Up => !sign,
                Rounding::Down => sign,
            };
            let v = if to_inf { F80::infinity(sign) } else { F80::new(sign, 0x7FFE, place((1u128 << prec) - 1)) };
            return Outcome::new(v, flags | OE | PE, to_inf, cw);
        }
        let v = F80::new(sign, (e - REBIAS).clamp(1, 0x7FFE) as u16, place(q));
        return Outcome::new(v, flags | OE | if inexact { PE } else { 0 }, inc, cw);
    }
    if e < 1 {
        // Tiny after rounding.
        if !cw.is_masked(UE) {
            let v = F80::new(sign, (e + REBIAS).clamp(1, 0x7FFE) as u16, place(q));
            return Outcome::new(v, flags | UE | if inexact { PE } else { 0 }, inc, cw);
        }
        // Denormalize from the unrounded value and round again at the same bit positions.
        let d = shr_jam(sig, (1 - exp) as u32);
        let (q2, inexact2, inc2) = round_at(sign, d, shift, rc);
        let s = place(q2);
        let v = F80::new(sign, (s >> 63) as u16, s);
        let f = if inexact2 { UE | PE } else { 0 };
        return Outcome::new(v, flags | f, inc2, cw);
    }
    let v = F80::new(sign, e as u16, place(q));
    Outcome::new(v, flags | if inexact { PE } else { 0 }, inc, cw)
}

/// Like [`round_pack`] for any non-zero `sig`: normalizes first.
#[inline]
pub(crate) fn norm_round_pack(sign: bool, exp: i32, sig: u128, prec: u32, cw: Control, flags: u8) -> Outcome {
    let lz = sig.leading_zeros();
    round_pack(sign, exp - lz as i32, sig << lz, prec, cw, flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DE;

    #[test]
    fn jam() {
        assert_eq!(shr_jam(0b1000, 3), 1);
        assert_eq!(shr_jam(0b1001, 3), 1 | 1);
        assert_eq!(shr_jam(5, 200), 1);
        assert_eq!(shr_jam(0, 200), 0);
    }

    // 1 + 2^-64 at PC=64 rounds to 1.0 (nearest) or 1+2^-63 (up): plain IEEE facts.
    #[test]
    fn rounding_modes() {
        let sig = 1u128 << 127 | 1u128 << 63;
        let cw = Control::masked(Rounding::Nearest, 64);
        let o = round_pack(false, 0x3FFF, sig, 64, cw, 0);
        assert_eq!((o.value, o.flags, o.c1), (F80::ONE, PE, false));
        let o = round_pack(false, 0x3FFF, sig, 64, Control::masked(Rounding::Up, 64), DE);
        assert_eq!((o.value.signif, o.flags, o.c1), (1 << 63 | 1, PE | DE, true));
    }

    // Masked overflow at RC=chop gives the largest finite value for the precision (SDM
    // Table 4-10); at PC=24 that is 0x7FFE FFFFFF0000000000.
    #[test]
    fn overflow() {
        let o = round_pack(true, 0x8000, u128::MAX, 24, Control::masked(Rounding::Zero, 24), 0);
        assert_eq!(o.value.to_bits(), 0xFFFE_FFFF_FF00_0000_0000);
        assert_eq!(o.flags, OE | PE);
        let unmasked = Control(0x037F & !(OE as u16));
        let o = round_pack(false, 0x8000, 1 << 127, 64, unmasked, 0);
        assert_eq!(o.value.exp() as i32, 0x8000 - REBIAS);
        assert!(o.store);
    }

    #[test]
    fn underflow_masked_exact_denormal_has_no_ue() {
        let o = round_pack(false, 0, 1 << 127, 64, Control::DEFAULT, 0);
        assert_eq!(o.value.to_bits(), 0x0000_4000_0000_0000_0000);
        assert_eq!(o.flags, 0);
    }
}
