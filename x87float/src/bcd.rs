//! FBLD and FBSTP: 18-digit packed BCD (SDM Vol. 1 4.7, Vol. 2 FBLD/FBSTP).
//!
//! Layout (10 bytes, little-endian): bytes 0..9 hold 18 digits, two per byte, the least
//! significant digit in the low nibble of byte 0; bit 7 of byte 9 is the sign, its other bits
//! are ignored on load and written as 0. FBSTP rounds by RC (PE, C1); a NaN, infinity,
//! unsupported encoding or a magnitude of 10^18 or more raises IE and stores the BCD
//! indefinite, bytes FFFF C000 0000 0000 0000 from the top (SDM Table 4-4).
use crate::classify::{unpack, Kind};
use crate::convert::{from_i64, to_i64};
use crate::{Control, Outcome, F80, IE};

/// The packed-BCD indefinite as stored in memory (byte 0 first).
pub const BCD_INDEFINITE: [u8; 10] = [0, 0, 0, 0, 0, 0, 0, 0xC0, 0xFF, 0xFF];

/// FBLD: converts packed BCD to extended, exactly. Nibbles above 9 are undefined by the SDM;
/// they are weighted like digits here.
pub fn from_bcd(b: [u8; 10]) -> F80 {
    let mut v: i64 = 0;
    for i in (0..9).rev() {
        v = v * 10 + (b[i] >> 4) as i64;
        v = v * 10 + (b[i] & 15) as i64;
    }
    let sign = b[9] & 0x80 != 0;
    let x = from_i64(v);
    if sign {
        F80 { signif: x.signif, sign_exp: x.sign_exp | 0x8000 }
    } else {
        x
    }
}

/// FBSTP: rounds by RC and converts to packed BCD.
pub fn to_bcd(x: F80, cw: Control) -> Outcome<[u8; 10]> {
    let invalid = Outcome::new(BCD_INDEFINITE, IE, false, cw);
    let u = unpack(x);
    if matches!(u.kind, Kind::Inf | Kind::QNaN | Kind::SNaN | Kind::Unsupported) {
        return invalid;
    }
    let o = to_i64(x, cw, false);
    if o.flags & IE != 0 {
        return invalid;
    }
    let mut m = o.value.unsigned_abs();
    if m >= 1_000_000_000_000_000_000 {
        return invalid;
    }
    let mut b = [0u8; 10];
    for byte in b.iter_mut().take(9) {
        let lo = (m % 10) as u8;
        m /= 10;
        let hi = (m % 10) as u8;
        m /= 10;
        *byte = hi << 4 | lo;
    }
    // −0 and negative values that round to zero keep the sign, as the operand's sign bit.
    b[9] = if u.sign { 0x80 } else { 0 };
    Outcome::new(b, o.flags, o.c1, cw)
}

#[cfg(test)]
mod tests {
    use super::*;

    // SDM Table 4-4: packed BCD -1234 = 80 00 .. 00 12 34 (from the top).
    #[test]
    fn roundtrip() {
        let mut b = [0u8; 10];
        b[0] = 0x34;
        b[1] = 0x12;
        b[9] = 0x80;
        let x = from_bcd(b);
        assert_eq!(x, crate::from_i32(-1234));
        assert_eq!(to_bcd(x, Control::DEFAULT).value, b);
        let o = to_bcd(crate::from_i64(1_000_000_000_000_000_000), Control::DEFAULT);
        assert_eq!((o.value, o.flags), (BCD_INDEFINITE, IE));
        let all9 = [0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0];
        assert_eq!(from_bcd(all9), crate::from_i64(999_999_999_999_999_999));
    }
}
