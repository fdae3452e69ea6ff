//! A 128-bit-significand floating-point type for the transcendentals' internal arithmetic.
//!
//! Value = sig / 2^127 · 2^exp with `sig` normalized (bit 127 set) or zero. Operations truncate,
//! so each one is accurate to about 2^−126 relative; the transcendental series need only a few
//! dozen of them, which leaves far more than the 64 bits the x87 result keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Wide {
    pub neg: bool,
    /// Unbiased exponent of bit 127.
    pub exp: i32,
    pub sig: u128,
}

impl Wide {
    pub const ZERO: Wide = Wide { neg: false, exp: 0, sig: 0 };
    pub const ONE: Wide = Wide { neg: false, exp: 0, sig: 1 << 127 };

    /// Builds from an unnormalized significand.
    pub fn new(neg: bool, exp: i32, sig: u128) -> Wide {
        if sig == 0 {
            return Wide::ZERO;
        }
        let lz = sig.leading_zeros();
        Wide { neg, exp: exp - lz as i32, sig: sig << lz }
    }

    /// From a 64-bit significand with bit 63 at unbiased exponent `exp`.
    pub fn from_parts(neg: bool, exp: i32, sig64: u64) -> Wide {
        Wide::new(neg, exp, (sig64 as u128) << 64)
    }

    pub fn from_int(v: i64) -> Wide {
        Wide::new(v < 0, 127, v.unsigned_abs() as u128)
    }

    pub fn is_zero(&self) -> bool {
        self.sig == 0
    }

    pub fn neg(self) -> Wide {
        Wide { neg: !self.neg && self.sig != 0, ..self }
    }

    pub fn abs(self) -> Wide {
        Wide { neg: false, ..self }
    }

    pub fn mul(self, o: Wide) -> Wide {
        if self.is_zero() || o.is_zero() {
            return Wide::ZERO;
        }
        const M: u128 = u64::MAX as u128;
        let (a1, a0) = (self.sig >> 64, self.sig & M);
        let (b1, b0) = (o.sig >> 64, o.sig & M);
        let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
        let mid = (p00 >> 64) + (p01 & M) + (p10 & M);
        let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
        Wide::new(self.neg ^ o.neg, self.exp + o.exp + 1, hi)
    }

    pub fn add(self, o: Wide) -> Wide {
        if self.is_zero() {
            return o;
        }
        if o.is_zero() {
            return self;
        }
        let (a, b) = if (self.exp, self.sig) >= (o.exp, o.sig) { (self, o) } else { (o, self) };
        let d = (a.exp - b.exp) as u32;
        // One bit of headroom for the carry.
        let (x, y) = (a.sig >> 1, if d >= 127 { 0 } else { (b.sig >> 1) >> d });
        if a.neg == b.neg {
            Wide::new(a.neg, a.exp + 1, x + y)
        } else {
            Wide::new(a.neg, a.exp + 1, x - y)
        }
    }

    pub fn sub(self, o: Wide) -> Wide {
        self.add(o.neg())
    }

    /// Restoring division, 128 quotient bits (the operands lose their lowest bit to make
    /// room for the shifted remainder, a 2^−127 relative error).
    pub fn div(self, o: Wide) -> Wide {
        if self.is_zero() || o.is_zero() {
            return Wide::ZERO;
        }
        let (mut r, d) = (self.sig >> 1, o.sig >> 1);
        let mut q: u128 = 0;
        for _ in 0..128 {
            q <<= 1;
            if r >= d {
                r -= d;
                q |= 1;
            }
            r <<= 1;
        }
        Wide::new(self.neg ^ o.neg, self.exp - o.exp, q)
    }

    pub fn div_int(self, n: u64) -> Wide {
        self.div(Wide::new(false, 127, n as u128))
    }

    /// Multiplies by 2^n.
    pub fn scale(self, n: i32) -> Wide {
        if self.is_zero() {
            self
        } else {
            Wide { exp: self.exp + n, ..self }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_f64(w: Wide) -> f64 {
        let v = (w.sig >> 64) as f64 * 2f64.powi(w.exp - 63);
        if w.neg {
            -v
        } else {
            v
        }
    }

    #[test]
    fn arithmetic_matches_f64() {
        let a = Wide::from_int(3);
        let b = Wide::from_int(-7);
        assert_eq!(to_f64(a.mul(b)), -21.0);
        assert_eq!(to_f64(a.add(b)), -4.0);
        assert_eq!(to_f64(b.div(a)), -7.0 / 3.0);
        // 1/3 · 3 = 1 − 2^-128-ish
        let third = Wide::ONE.div_int(3);
        let back = third.mul(Wide::from_int(3));
        assert!(back.sub(Wide::ONE).abs().exp < -120);
    }
}
