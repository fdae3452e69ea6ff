//! IEEE 754 binary32/binary64 arithmetic with x86 SSE semantics, in software (the exact path).
//!
//! Every operation here is exact and independent of the host's floating point: values are
//! unpacked into integer significand and scale, computed with integer arithmetic (u128), and
//! rounded once by [`finish`] under the MXCSR rounding control. What it models, per SDM Vol. 1,
//! 4.8-4.9 and 11.5:
//! - the four rounding modes; overflow to infinity or the largest finite value by mode;
//! - tininess detected *after* rounding (as x86 does); UE when tiny and inexact with UM masked,
//!   on any tiny result when UM is unmasked; FTZ (flush tiny results to zero, setting UE and PE,
//!   only when UM is masked); DAZ (denormal sources read as zero, no DE);
//! - the MXCSR flags IE, DE, ZE, OE, UE, PE as bits 0-5 of [`FpEnv::flags`];
//! - SSE NaN rules (SDM Vol. 1, Table 4-7): a NaN result is the first source's NaN, else the
//!   second's, quieted; an invalid operation gives the default NaN (the "QNaN floating-point
//!   indefinite", sign set).
//!
//! Left out: the x87 80-bit format (the `x87float` crate has it).

/// MXCSR exception flag bits (SDM Vol. 1, 10.2.3).
pub const IE: u32 = 1 << 0;
pub const DE: u32 = 1 << 1;
pub const ZE: u32 = 1 << 2;
pub const OE: u32 = 1 << 3;
pub const UE: u32 = 1 << 4;
pub const PE: u32 = 1 << 5;

/// Rounding control values (MXCSR bits 14:13).
pub const RC_NEAREST: u32 = 0;
pub const RC_DOWN: u32 = 1;
pub const RC_UP: u32 = 2;
pub const RC_ZERO: u32 = 3;

/// A binary interchange format, its bits held in the low `BITS` of a `u64`.
pub trait Fmt: Copy {
    const BITS: u32;
    /// Stored fraction bits (23 or 52).
    const FRAC: u32;
    const BIAS: i32;
    const EXP_MAX: u64 = (1 << (Self::BITS - Self::FRAC - 1)) - 1;
    const SIGN: u64 = 1 << (Self::BITS - 1);
    const FRAC_MASK: u64 = (1 << Self::FRAC) - 1;
    const INF: u64 = Self::EXP_MAX << Self::FRAC;
    const QUIET: u64 = 1 << (Self::FRAC - 1);
    /// The QNaN floating-point indefinite (SDM Vol. 1, Table 4-3).
    const INDEFINITE: u64 = Self::SIGN | Self::INF | Self::QUIET;
    const MAX_FINITE: u64 = Self::INF - 1;
}

#[derive(Clone, Copy, Debug)]
pub struct F32;
#[derive(Clone, Copy, Debug)]
pub struct F64;
impl Fmt for F32 {
    const BITS: u32 = 32;
    const FRAC: u32 = 23;
    const BIAS: i32 = 127;
}
impl Fmt for F64 {
    const BITS: u32 = 64;
    const FRAC: u32 = 52;
    const BIAS: i32 = 1023;
}

/// The MXCSR controls an operation reads (decoded on demand: the fast paths look at two bits
/// only), and the flags it raises.
#[derive(Clone, Copy, Debug)]
pub struct FpEnv {
    pub mxcsr: u32,
    /// Exception flags raised so far (IE..PE).
    pub flags: u32,
}

impl FpEnv {
    #[inline(always)]
    pub fn from_mxcsr(m: u32) -> Self {
        FpEnv { mxcsr: m, flags: 0 }
    }
    /// Rounding control (MXCSR bits 14:13).
    #[inline(always)]
    pub fn rc(&self) -> u32 {
        (self.mxcsr >> 13) & 3
    }
    /// Denormals are zeros.
    #[inline(always)]
    pub fn daz(&self) -> bool {
        self.mxcsr & (1 << 6) != 0
    }
    /// Flush to zero.
    #[inline(always)]
    pub fn ftz(&self) -> bool {
        self.mxcsr & (1 << 15) != 0
    }
    /// Underflow masked (UM).
    #[inline(always)]
    pub fn um(&self) -> bool {
        self.mxcsr & (1 << 11) != 0
    }
    /// Round to nearest: host arithmetic gives the same result for normal operands.
    #[inline(always)]
    pub fn fast(&self) -> bool {
        self.mxcsr & (3 << 13) == 0
    }
    /// Whether inexactness must be detected (PE not yet set, or PE unmasked).
    #[inline(always)]
    pub fn need_pe(&self) -> bool {
        self.mxcsr & (PE | PE << 7) != (PE | PE << 7)
    }
}

#[inline(always)]
pub fn is_nan<F: Fmt>(x: u64) -> bool {
    x & !F::SIGN > F::INF
}
#[inline(always)]
pub fn is_snan<F: Fmt>(x: u64) -> bool {
    is_nan::<F>(x) && x & F::QUIET == 0
}
#[inline(always)]
fn sign_of<F: Fmt>(neg: bool) -> u64 {
    if neg {
        F::SIGN
    } else {
        0
    }
}

/// An unpacked operand.
#[derive(Clone, Copy, Debug)]
pub enum Val {
    Zero(bool),
    Inf(bool),
    /// `(-1)^sign * m * 2^scale`, `m != 0`.
    Fin(bool, u64, i32),
}

/// Unpacks a non-NaN value: denormals raise DE, or read as zero under DAZ.
#[inline]
pub fn unpack<F: Fmt>(x: u64, env: &mut FpEnv) -> Val {
    let neg = x & F::SIGN != 0;
    let e = (x >> F::FRAC) & F::EXP_MAX;
    let f = x & F::FRAC_MASK;
    if e == F::EXP_MAX {
        Val::Inf(neg)
    } else if e == 0 {
        if f == 0 || env.daz() {
            Val::Zero(neg)
        } else {
            env.flags |= DE;
            Val::Fin(neg, f, 1 - F::BIAS - F::FRAC as i32)
        }
    } else {
        Val::Fin(neg, f | 1 << F::FRAC, e as i32 - F::BIAS - F::FRAC as i32)
    }
}

/// Raises `flag` (IE or ZE) and withdraws a DE raised by this operation's operands: an invalid
/// operation or a division by zero takes precedence over the denormal-operand exception (SDM
/// Vol. 1, 4.9.2), as the reference CPU shows.
#[inline]
fn raise_over_de(env: &mut FpEnv, before: u32, flag: u32) {
    env.flags = (env.flags & !DE) | (before & DE) | flag;
}

/// The SSE NaN rule for two sources: `None` when neither is a NaN.
#[inline]
pub fn nan2<F: Fmt>(a: u64, b: u64, env: &mut FpEnv) -> Option<u64> {
    let (an, bn) = (is_nan::<F>(a), is_nan::<F>(b));
    if !an && !bn {
        return None;
    }
    if is_snan::<F>(a) || is_snan::<F>(b) {
        env.flags |= IE;
    }
    Some(if an { a | F::QUIET } else { b | F::QUIET })
}

/// Rounds `sig` right by `sh` bits (1..=63) to an integer under `rc`; returns (value, inexact).
#[inline]
fn round_shift(sig: u64, sh: u32, neg: bool, rc: u32) -> (u64, bool) {
    let rem = sig & ((1u64 << sh) - 1);
    let half = 1u64 << (sh - 1);
    let m = sig >> sh;
    let up = match rc {
        RC_NEAREST => rem > half || (rem == half && m & 1 == 1),
        RC_DOWN => neg && rem != 0,
        RC_UP => !neg && rem != 0,
        _ => false,
    };
    (m + up as u64, rem != 0)
}

/// Same as [`round_shift`] for shifts that may exceed 63 bits (`sig < 2^63`).
#[inline]
fn round_shift_wide(sig: u64, sh: u32, neg: bool, rc: u32) -> (u64, bool) {
    if sh == 0 {
        return (sig, false);
    }
    if sh < 64 {
        return round_shift(sig, sh, neg, rc);
    }
    // Everything lies below half of the last place: round to 0, or to 1 away from zero.
    let up = sig != 0 && matches!((rc, neg), (RC_DOWN, true) | (RC_UP, false));
    (up as u64, sig != 0)
}

/// The overflowed result under `rc` (SDM Vol. 1, 4.9.1.4), raising OE and PE.
fn overflow<F: Fmt>(neg: bool, env: &mut FpEnv) -> u64 {
    env.flags |= OE | PE;
    let to_inf = match env.rc() {
        RC_NEAREST => true,
        RC_DOWN => neg,
        RC_UP => !neg,
        _ => false,
    };
    sign_of::<F>(neg) | if to_inf { F::INF } else { F::MAX_FINITE }
}

/// Rounds the exact value `(-1)^neg * x * 2^scale` (x != 0 unless the result is an exact zero)
/// to format `F`, raising OE/UE/PE and applying FTZ.
pub fn finish<F: Fmt>(neg: bool, x: u128, scale: i32, env: &mut FpEnv) -> u64 {
    if x == 0 {
        return sign_of::<F>(neg);
    }
    let top = 127 - x.leading_zeros() as i32;
    let e = scale.saturating_add(top);
    // Leading bit at 62, everything below folded into a sticky bit 0.
    let sig: u64 = if top > 62 {
        let sh = (top - 62) as u32;
        (x >> sh) as u64 | (x & ((1u128 << sh) - 1) != 0) as u64
    } else {
        (x as u64) << (62 - top)
    };
    let p = F::FRAC;
    let biased = e.saturating_add(F::BIAS);
    if biased >= 1 {
        let (mut m, inexact) = round_shift(sig, 62 - p, neg, env.rc());
        let mut b = biased as i64;
        if m >> (p + 1) != 0 {
            m >>= 1;
            b += 1;
        }
        if b >= F::EXP_MAX as i64 {
            return overflow::<F>(neg, env);
        }
        if inexact {
            env.flags |= PE;
        }
        return sign_of::<F>(neg) | (b as u64) << p | (m & F::FRAC_MASK);
    }
    // Tiny before rounding; tiny after rounding unless it rounds up to the smallest normal
    // with an unbounded exponent.
    let (mn, _) = round_shift(sig, 62 - p, neg, env.rc());
    let tiny = biased < 0 || mn >> (p + 1) == 0;
    let sh = (62 - p as i64 + 1 - biased as i64).min(64) as u32;
    let (m, inexact) = round_shift_wide(sig, sh, neg, env.rc());
    if tiny {
        if env.um() && env.ftz() {
            env.flags |= UE | PE;
            return sign_of::<F>(neg);
        }
        if inexact || !env.um() {
            env.flags |= UE;
        }
    }
    if inexact {
        env.flags |= PE;
    }
    // m <= 2^p: a carry into bit p makes it the smallest normal, which the encoding absorbs.
    sign_of::<F>(neg) | m
}

/// The sign of an exact zero sum of operands with opposite signs (SDM Vol. 1, 4.8.3.2).
#[inline]
fn zero_sum<F: Fmt>(env: &FpEnv) -> u64 {
    sign_of::<F>(env.rc() == RC_DOWN)
}

/// `a + b`, or `a - b` when `sub` (the sign of `b` is flipped after the NaN check).
pub fn add<F: Fmt>(a: u64, b: u64, sub: bool, env: &mut FpEnv) -> u64 {
    if let Some(n) = nan2::<F>(a, b, env) {
        return n;
    }
    let before = env.flags;
    let va = unpack::<F>(a, env);
    let vb = unpack::<F>(if sub { b ^ F::SIGN } else { b }, env);
    match (va, vb) {
        (Val::Inf(sa), Val::Inf(sb)) => {
            if sa != sb {
                raise_over_de(env, before, IE);
                F::INDEFINITE
            } else {
                sign_of::<F>(sa) | F::INF
            }
        }
        (Val::Inf(s), _) | (_, Val::Inf(s)) => sign_of::<F>(s) | F::INF,
        (Val::Zero(sa), Val::Zero(sb)) => {
            if sa == sb {
                sign_of::<F>(sa)
            } else {
                zero_sum::<F>(env)
            }
        }
        (Val::Zero(_), Val::Fin(s, m, e)) | (Val::Fin(s, m, e), Val::Zero(_)) => finish::<F>(s, m as u128, e, env),
        (Val::Fin(sa, ma, ea), Val::Fin(sb, mb, eb)) => {
            let ((sa, ma, ea), (sb, mb, eb)) =
                if ea >= eb { ((sa, ma, ea), (sb, mb, eb)) } else { ((sb, mb, eb), (sa, ma, ea)) };
            let d = (ea - eb) as u32;
            // Far apart, the smaller operand only acts as a sticky bit well below the last place.
            let (x, y, scale) =
                if d <= 64 { ((ma as u128) << d, mb as u128, eb) } else { ((ma as u128) << 66, 1, ea - 66) };
            if sa == sb {
                finish::<F>(sa, x + y, scale, env)
            } else if x > y {
                finish::<F>(sa, x - y, scale, env)
            } else if y > x {
                finish::<F>(sb, y - x, scale, env)
            } else {
                zero_sum::<F>(env)
            }
        }
    }
}

pub fn mul<F: Fmt>(a: u64, b: u64, env: &mut FpEnv) -> u64 {
    if let Some(n) = nan2::<F>(a, b, env) {
        return n;
    }
    let before = env.flags;
    let va = unpack::<F>(a, env);
    let vb = unpack::<F>(b, env);
    let neg = (a ^ b) & F::SIGN != 0;
    match (va, vb) {
        (Val::Inf(_), Val::Zero(_)) | (Val::Zero(_), Val::Inf(_)) => {
            raise_over_de(env, before, IE);
            F::INDEFINITE
        }
        (Val::Inf(_), _) | (_, Val::Inf(_)) => sign_of::<F>(neg) | F::INF,
        (Val::Zero(_), _) | (_, Val::Zero(_)) => sign_of::<F>(neg),
        (Val::Fin(_, ma, ea), Val::Fin(_, mb, eb)) => finish::<F>(neg, ma as u128 * mb as u128, ea + eb, env),
    }
}

pub fn div<F: Fmt>(a: u64, b: u64, env: &mut FpEnv) -> u64 {
    if let Some(n) = nan2::<F>(a, b, env) {
        return n;
    }
    let before = env.flags;
    let va = unpack::<F>(a, env);
    let vb = unpack::<F>(b, env);
    let neg = (a ^ b) & F::SIGN != 0;
    match (va, vb) {
        (Val::Inf(_), Val::Inf(_)) | (Val::Zero(_), Val::Zero(_)) => {
            raise_over_de(env, before, IE);
            F::INDEFINITE
        }
        (Val::Inf(_), _) => sign_of::<F>(neg) | F::INF,
        (_, Val::Inf(_)) | (Val::Zero(_), _) => sign_of::<F>(neg),
        (Val::Fin(..), Val::Zero(_)) => {
            raise_over_de(env, before, ZE);
            sign_of::<F>(neg) | F::INF
        }
        (Val::Fin(_, ma, ea), Val::Fin(_, mb, eb)) => {
            let (la, lb) = (ma.leading_zeros(), mb.leading_zeros());
            let (na, nb) = (ma << la, mb << lb);
            let num = (na as u128) << 64;
            let q = num / nb as u128;
            let sticky = !num.is_multiple_of(nb as u128) as u128;
            let scale = (ea - la as i32) - (eb - lb as i32) - 65;
            finish::<F>(neg, q << 1 | sticky, scale, env)
        }
    }
}

/// Integer square root of a u128 (floor).
fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    // Estimate from the host's sqrt (only a starting point), then Newton steps and a final fix.
    let mut r = ((n as f64).sqrt() as u128).max(1);
    for _ in 0..4 {
        let nr = (r + n / r) >> 1;
        if nr == r {
            break;
        }
        r = nr;
    }
    while r.checked_mul(r).is_none_or(|sq| sq > n) {
        r -= 1;
    }
    while (r + 1).checked_mul(r + 1).is_some_and(|sq| sq <= n) {
        r += 1;
    }
    r
}

pub fn sqrt<F: Fmt>(a: u64, env: &mut FpEnv) -> u64 {
    if is_nan::<F>(a) {
        if is_snan::<F>(a) {
            env.flags |= IE;
        }
        return a | F::QUIET;
    }
    let before = env.flags;
    match unpack::<F>(a, env) {
        Val::Zero(neg) => sign_of::<F>(neg),
        Val::Inf(false) => F::INF,
        Val::Inf(true) | Val::Fin(true, ..) => {
            raise_over_de(env, before, IE);
            F::INDEFINITE
        }
        Val::Fin(false, m, e) => {
            let (mut m, mut e) = (m as u128, e);
            if e & 1 != 0 {
                m <<= 1;
                e -= 1;
            }
            let bl = 128 - m.leading_zeros() as i32;
            let k2 = (126 - bl) & !1;
            let big = m << k2;
            let r = isqrt(big);
            let sticky = (r * r != big) as u128;
            finish::<F>(false, r << 1 | sticky, (e - k2) / 2 - 1, env)
        }
    }
}

/// Converts between the two formats (CVTSS2SD, CVTSD2SS and the packed forms): NaNs keep their
/// sign and leading payload bits and are quieted.
pub fn convert<S: Fmt, D: Fmt>(a: u64, env: &mut FpEnv) -> u64 {
    if is_nan::<S>(a) {
        if is_snan::<S>(a) {
            env.flags |= IE;
        }
        let frac = a & S::FRAC_MASK;
        let frac = if D::FRAC >= S::FRAC { frac << (D::FRAC - S::FRAC) } else { frac >> (S::FRAC - D::FRAC) };
        return sign_of::<D>(a & S::SIGN != 0) | D::INF | D::QUIET | frac;
    }
    match unpack::<S>(a, env) {
        Val::Zero(neg) => sign_of::<D>(neg),
        Val::Inf(neg) => sign_of::<D>(neg) | D::INF,
        Val::Fin(neg, m, e) => finish::<D>(neg, m as u128, e, env),
    }
}

/// Converts a signed integer to format `F`, rounding under MXCSR.RC.
pub fn from_int<F: Fmt>(v: i64, env: &mut FpEnv) -> u64 {
    finish::<F>(v < 0, v.unsigned_abs() as u128, 0, env)
}

/// Converts to a signed `bits`-bit integer (32 or 64), rounding under MXCSR.RC or truncating.
/// NaN, infinity and out-of-range values raise IE and give the integer indefinite (only the
/// sign bit set). DAZ applies to the source, DE is not reported (SDM Vol. 2, CVTSS2SI).
pub fn to_int<F: Fmt>(a: u64, bits: u32, truncate: bool, env: &mut FpEnv) -> u64 {
    let indefinite = 1u64 << (bits - 1);
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    if is_nan::<F>(a) {
        env.flags |= IE;
        return indefinite;
    }
    let saved = env.flags;
    let v = unpack::<F>(a, env);
    env.flags = saved | (env.flags & !DE);
    let (neg, mag, inexact) = match v {
        Val::Zero(_) => return 0,
        Val::Inf(_) => {
            env.flags |= IE;
            return indefinite;
        }
        Val::Fin(neg, m, e) => {
            if e >= 0 {
                if e >= 64 || (m as u128) << e > indefinite as u128 {
                    env.flags |= IE;
                    return indefinite;
                }
                (neg, m << e, false)
            } else {
                let rc = if truncate { RC_ZERO } else { env.rc() };
                let (q, inexact) = round_shift_wide(m, (-e).min(64) as u32, neg, rc);
                (neg, q, inexact)
            }
        }
    };
    let limit = if neg { indefinite } else { indefinite - 1 };
    if mag > limit {
        env.flags |= IE;
        return indefinite;
    }
    if inexact {
        env.flags |= PE;
    }
    (if neg { mag.wrapping_neg() } else { mag }) & mask
}

/// Result of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Eq,
    Gt,
    Unordered,
}

/// Compares `a` with `b`. Any NaN raises IE when `signal_qnan` (COMISS, CMPLTPS, ...), an
/// SNaN always; denormal operands raise DE (or read as zero under DAZ).
pub fn compare<F: Fmt>(a: u64, b: u64, signal_qnan: bool, env: &mut FpEnv) -> Cmp {
    let (an, bn) = (is_nan::<F>(a), is_nan::<F>(b));
    if an || bn {
        if signal_qnan || is_snan::<F>(a) || is_snan::<F>(b) {
            env.flags |= IE;
        }
        return Cmp::Unordered;
    }
    let key = |x: u64, env: &mut FpEnv| -> i128 {
        let mag = match unpack::<F>(x, env) {
            Val::Zero(_) => 0,
            _ => (x & !F::SIGN) as i128,
        };
        if x & F::SIGN != 0 {
            -mag
        } else {
            mag
        }
    };
    let (ka, kb) = (key(a, env), key(b, env));
    match ka.cmp(&kb) {
        core::cmp::Ordering::Less => Cmp::Lt,
        core::cmp::Ordering::Equal => Cmp::Eq,
        core::cmp::Ordering::Greater => Cmp::Gt,
    }
}

/// MINPS/MAXPS semantics: if either is a NaN (IE even for a QNaN), or both are zeros, or they
/// are equal, the second source is returned unchanged (SDM Vol. 2, MINPS).
pub fn min_max<F: Fmt>(a: u64, b: u64, max: bool, env: &mut FpEnv) -> u64 {
    let c = compare::<F>(a, b, true, env);
    let daz = |x: u64| {
        if env.daz() && (x >> F::FRAC) & F::EXP_MAX == 0 {
            x & F::SIGN
        } else {
            x
        }
    };
    match (c, max) {
        (Cmp::Lt, false) | (Cmp::Gt, true) => daz(a),
        _ => daz(b),
    }
}
