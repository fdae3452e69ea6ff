//! Loads and stores with format conversion: FILD, FIST/FISTP, FISTTP, FLD m32/m64 and
//! FST/FSTP m32/m64 (SDM Vol. 2 FILD, FIST, FISTTP, FLD, FST; Vol. 1 4.8.3, 8.5).
//!
//! PC never applies here. Integer and f32/f64 loads are exact (a 64-bit significand holds any
//! i64, f32 or f64); loading an f32/f64 SNaN raises IE and quiets it, a denormal raises DE.
//! Integer stores round by RC (FISTTP always chops); a NaN, infinity, unsupported encoding or
//! out-of-range value raises IE and stores the integer indefinite (the most negative value).
//! f32/f64 stores round to the format's precision and exponent range, with tininess after
//! rounding; an unmasked OE/UE on a memory destination stores nothing (SDM 8.5.4/8.5.5).
use crate::classify::{unpack, Kind};
use crate::round::{round_at, shr_jam};
use crate::{Control, Outcome, Rounding, DE, F80, IE, OE, PE, UE};

fn from_int(v: i64) -> F80 {
    if v == 0 {
        return F80::ZERO;
    }
    let m = v.unsigned_abs();
    let lz = m.leading_zeros();
    F80::new(v < 0, (16383 + 63 - lz) as u16, m << lz)
}

/// FILD m16: exact.
pub fn from_i16(v: i16) -> F80 {
    from_int(v as i64)
}
/// FILD m32: exact.
pub fn from_i32(v: i32) -> F80 {
    from_int(v as i64)
}
/// FILD m64: exact.
pub fn from_i64(v: i64) -> F80 {
    from_int(v)
}

/// Shared FIST/FISTTP: rounds to an integer of `bits` bits.
fn to_int(x: F80, cw: Control, bits: u32, truncate: bool) -> Outcome<i64> {
    let indefinite = -1i64 << (bits - 1);
    let invalid = Outcome::new(indefinite, IE, false, cw);
    let u = unpack(x);
    match u.kind {
        Kind::Zero => return Outcome::new(0, 0, false, cw),
        Kind::Finite => {}
        _ => return invalid,
    }
    let e = u.exp - 16383;
    if e > 63 {
        return invalid;
    }
    let rc = if truncate { Rounding::Zero } else { cw.rounding() };
    let v = (u.sig as u128) << 64;
    let shift = (127 - e) as u32;
    let (q, inexact, inc) =
        if shift > 127 { round_at(u.sign, shr_jam(v, shift - 127), 127, rc) } else { round_at(u.sign, v, shift, rc) };
    let limit = (1u128 << (bits - 1)) - (!u.sign) as u128;
    if q > limit {
        return invalid;
    }
    let value = if u.sign { (q as i128).wrapping_neg() as i64 } else { q as i64 };
    Outcome::new(value, if inexact { PE } else { 0 }, inc, cw)
}

/// FIST/FISTP m16 (`truncate` = FISTTP m16).
pub fn to_i16(x: F80, cw: Control, truncate: bool) -> Outcome<i16> {
    let o = to_int(x, cw, 16, truncate);
    Outcome { value: o.value as i16, flags: o.flags, c1: o.c1, store: o.store }
}
/// FIST/FISTP m32 (`truncate` = FISTTP m32).
pub fn to_i32(x: F80, cw: Control, truncate: bool) -> Outcome<i32> {
    let o = to_int(x, cw, 32, truncate);
    Outcome { value: o.value as i32, flags: o.flags, c1: o.c1, store: o.store }
}
/// FIST/FISTP m64 (`truncate` = FISTTP m64).
pub fn to_i64(x: F80, cw: Control, truncate: bool) -> Outcome<i64> {
    to_int(x, cw, 64, truncate)
}

/// Loads an IEEE binary format with `eb` exponent bits and `fb` fraction bits.
fn from_ieee(bits: u64, eb: u32, fb: u32, cw: Control) -> Outcome {
    let sign = bits >> (eb + fb) & 1 != 0;
    let emax = (1u64 << eb) - 1;
    let bias = (1i32 << (eb - 1)) - 1;
    let e = (bits >> fb) & emax;
    let frac = bits & ((1u64 << fb) - 1);
    if e == emax {
        if frac == 0 {
            return Outcome::new(F80::infinity(sign), 0, false, cw);
        }
        let sig = 1 << 63 | frac << (63 - fb);
        let snan = frac >> (fb - 1) == 0;
        let v = F80::new(sign, 0x7FFF, sig | 1 << 62);
        return Outcome::new(v, if snan { IE } else { 0 }, false, cw);
    }
    if e == 0 {
        if frac == 0 {
            return Outcome::new(F80::zero(sign), 0, false, cw);
        }
        let lz = frac.leading_zeros() as i32;
        let exp = 16383 + 63 - lz + 1 - bias - fb as i32;
        return Outcome::new(F80::new(sign, exp as u16, frac << lz), DE, false, cw);
    }
    let exp = e as i32 - bias + 16383;
    Outcome::new(F80::new(sign, exp as u16, 1 << 63 | frac << (63 - fb)), 0, false, cw)
}

/// FLD m32.
pub fn from_f32(bits: u32, cw: Control) -> Outcome {
    from_ieee(bits as u64, 8, 23, cw)
}
/// FLD m64.
pub fn from_f64(bits: u64, cw: Control) -> Outcome {
    from_ieee(bits, 11, 52, cw)
}

/// Stores to an IEEE binary format with `eb` exponent bits and `fb` fraction bits.
fn to_ieee(x: F80, cw: Control, eb: u32, fb: u32) -> Outcome<u64> {
    let emax = (1i32 << eb) - 1;
    let bias = (1i32 << (eb - 1)) - 1;
    let u = unpack(x);
    let sbit = (u.sign as u64) << (eb + fb);
    let inf = sbit | (emax as u64) << fb;
    let quiet = 1u64 << (fb - 1);
    match u.kind {
        Kind::Unsupported => return Outcome::new(1 << (eb + fb) | inf | quiet, IE, false, cw),
        Kind::QNaN | Kind::SNaN => {
            let frac = (x.signif << 1) >> (64 - fb);
            let f = if u.kind == Kind::SNaN { IE } else { 0 };
            return Outcome::new(inf | frac | quiet, f, false, cw);
        }
        Kind::Inf => return Outcome::new(inf, 0, false, cw),
        Kind::Zero => return Outcome::new(sbit, 0, false, cw),
        Kind::Finite => {}
    }
    // FST does not report DE for a denormal source (measured on the host x87).
    let flags = 0;
    let rc = cw.rounding();
    let prec = fb + 1;
    let shift = 128 - prec;
    let v = (u.sig as u128) << 64;
    let t0 = u.exp - 16383 + bias;
    let (mut q, inexact, inc) = round_at(u.sign, v, shift, rc);
    let mut t = t0;
    if q >> prec != 0 {
        q >>= 1;
        t += 1;
    }
    let pe = if inexact { PE } else { 0 };
    if t >= emax {
        if !cw.is_masked(OE) {
            return Outcome { value: 0, flags: flags | OE | pe, c1: inc, store: false };
        }
        let to_inf = match rc {
            Rounding::Nearest => true,
            Rounding::Zero => false,
            Rounding::Up => !u.sign,
            Rounding::Down => u.sign,
        };
        let v = if to_inf { inf } else { inf - 1 };
        return Outcome::new(v, flags | OE | PE, to_inf, cw);
    }
    if t < 1 {
        if !cw.is_masked(UE) {
            return Outcome { value: 0, flags: flags | UE | pe, c1: inc, store: false };
        }
        let d = shr_jam(v, (1 - t0).min(200) as u32);
        let (q2, inexact2, inc2) = round_at(u.sign, d, shift, rc);
        // A carry into bit `fb` is exactly the exponent field 1 of the smallest normal.
        let f = if inexact2 { UE | PE } else { 0 };
        return Outcome::new(sbit | q2 as u64, flags | f, inc2, cw);
    }
    let frac = q as u64 & ((1u64 << fb) - 1);
    Outcome::new(sbit | (t as u64) << fb | frac, flags | pe, inc, cw)
}

/// FST/FSTP m32: returns the raw f32 bits.
pub fn to_f32(x: F80, cw: Control) -> Outcome<u32> {
    let o = to_ieee(x, cw, 8, 23);
    Outcome { value: o.value as u32, flags: o.flags, c1: o.c1, store: o.store }
}
/// FST/FSTP m64: returns the raw f64 bits.
pub fn to_f64(x: F80, cw: Control) -> Outcome<u64> {
    to_ieee(x, cw, 11, 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values from the host's own f32/f64 <-> integer conversions and IEEE encodings.
    #[test]
    fn integers() {
        assert_eq!(from_i32(-1).to_bits(), 0xBFFF_8000_0000_0000_0000);
        assert_eq!(from_i64(i64::MIN).to_bits(), 0xC03E_8000_0000_0000_0000);
        assert_eq!(from_i16(0), F80::ZERO);
        let cw = Control::DEFAULT;
        let two_and_half = F80::from_bits(0x4000_A000_0000_0000_0000);
        assert_eq!(to_i32(two_and_half, cw, false).value, 2);
        assert_eq!(to_i32(two_and_half, cw, true).value, 2);
        assert_eq!(to_i32(two_and_half, cw.with_rounding(Rounding::Up), false).value, 3);
        let o = to_i16(from_i32(40000), cw, false);
        assert_eq!((o.value, o.flags), (i16::MIN, IE));
        assert_eq!(to_i64(from_i64(i64::MIN), cw, false).value, i64::MIN);
        let o = to_i64(F80::INDEFINITE, cw, false);
        assert_eq!((o.value, o.flags), (i64::MIN, IE));
        assert_eq!(to_i32(F80::from_bits(0xBFFE_8000_0000_0000_0001), cw, false).value, -1);
    }

    #[test]
    fn floats() {
        let cw = Control::DEFAULT;
        for x in [1.5f64, -3.25e-300, 4.9e-324, f64::MAX, 1e300] {
            let o = from_f64(x.to_bits(), cw);
            let back = to_f64(o.value, cw);
            assert_eq!(back.value, x.to_bits());
            assert_eq!(to_f32(o.value, cw).value, (x as f32).to_bits(), "{x}");
        }
        let o = from_f32(0x7F80_0001, cw);
        assert_eq!((o.value.to_bits(), o.flags), (0x7FFF_C000_0100_0000_0000, IE));
        // The indefinite is a QNaN: stored quietly. An unnormal is invalid.
        let o = to_f32(F80::INDEFINITE, cw);
        assert_eq!((o.value, o.flags), (0xFFC0_0000, 0));
        let o = to_f32(F80::from_bits(0x3FFF_4000_0000_0000_0000), cw);
        assert_eq!((o.value, o.flags), (0xFFC0_0000, IE));
    }
}
