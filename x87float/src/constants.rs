//! FLD1, FLDZ, FLDPI, FLDL2E, FLDL2T, FLDLG2, FLDLN2 (SDM Vol. 2 "FLD1/FLDL2T/.../FLDZ").
//!
//! The FPU rounds these constants to 64 bits by RC (SDM Vol. 1 8.3.8); the results match a
//! correct rounding of the exact value in every mode on the host. No exception is raised (PE stays clear even though the value is inexact) and C1
//! is cleared. The 128-bit values below were computed with exact integer arithmetic in Python
//! (Machin's formula for π, atanh series for the logarithms).
use crate::round::round_at;
use crate::{Control, F80};

/// The seven constants the x87 can load.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Constant {
    /// FLD1: +1.0
    One,
    /// FLDZ: +0.0
    Zero,
    /// FLDPI: π
    Pi,
    /// FLDL2E: log2(e)
    Log2E,
    /// FLDL2T: log2(10)
    Log2Ten,
    /// FLDLG2: log10(2)
    Log10Two,
    /// FLDLN2: ln(2)
    Ln2,
}

/// The constant rounded by the control word's RC.
pub fn load_constant(c: Constant, cw: Control) -> F80 {
    let (exp, sig): (u16, u128) = match c {
        Constant::One => return F80::ONE,
        Constant::Zero => return F80::ZERO,
        Constant::Pi => (0x4000, 0xC90F_DAA2_2168_C234_C4C6_628B_80DC_1CD1),
        Constant::Log2E => (0x3FFF, 0xB8AA_3B29_5C17_F0BB_BE87_FED0_691D_3E88),
        Constant::Log2Ten => (0x4000, 0xD49A_784B_CD1B_8AFE_492B_F6FF_4DAF_DB4C),
        Constant::Log10Two => (0x3FFD, 0x9A20_9A84_FBCF_F798_8F89_59AC_0B7C_9178),
        Constant::Ln2 => (0x3FFE, 0xB172_17F7_D1CF_79AB_C9E3_B398_03F2_F6AF),
    };
    // Rounded by RC from the (effectively exact) 128-bit value. Rounding through a 66-bit
    // intermediate would turn FLDLG2's ...F798|10|0011... into a tie and give ...F798 at
    // nearest; the host gives ...F799 (property test `constants`).
    let (q, _, _) = round_at(false, sig, 64, cw.rounding());
    if q >> 64 != 0 {
        return F80::new(false, exp + 1, 1 << 63);
    }
    F80::new(false, exp, q as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rounding;

    // π = C90FDAA22168C234|C4C6...: nearest rounds up to ...C235, chop gives ...C234.
    #[test]
    fn pi_by_rounding() {
        let near = load_constant(Constant::Pi, Control::DEFAULT);
        assert_eq!(near.to_bits(), 0x4000_C90F_DAA2_2168_C235);
        let chop = load_constant(Constant::Pi, Control::DEFAULT.with_rounding(Rounding::Zero));
        assert_eq!(chop.to_bits(), 0x4000_C90F_DAA2_2168_C234);
        assert_eq!(load_constant(Constant::One, Control::DEFAULT), F80::ONE);
    }
}
