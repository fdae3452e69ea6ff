//! x87float: the x87 FPU's 80-bit extended-precision arithmetic in software, bit-exact to hardware.
//!
//! The crate models what the FPU's data path does for one instruction: it takes the operand
//! values and the control word (FCW: exception masks, rounding control RC, precision control PC)
//! and returns the result together with everything the instruction writes to the status word
//! (FSW): the six exception flags and the condition codes it defines. The register stack, TOP,
//! tags, stack faults (SF) and the deferred #MF delivery are the CPU core's business.
//!
//! Reference: Intel SDM Vol. 1 chapter 8 ("Programming with the x87 FPU") and chapter 4.8
//! (real-number encodings); the per-instruction pages of Vol. 2. Where the manual leaves a
//! choice open, the behaviour follows what an AMD EPYC (Zen) x87 does; `testfloat/` checks it.
//!
//! Module map:
//! - [`classify`]: operand classes (incl. unsupported encodings), FXAM, NaN propagation.
//! - `round`: the one rounding/packing routine every arithmetic result goes through.
//! - [`add`], [`mul_div`], [`sqrt`], [`rem`], [`misc`] (FRNDINT, FSCALE, FXTRACT, FABS, FCHS).
//! - [`compare`], [`convert`] (integers, f32/f64), [`bcd`], [`transcendental`],
//!   [`constants`] (FLDPI and friends).
//!
//! Unmasked exceptions: every function returns the masked response in `value` and reports the
//! flags; [`Outcome::store`] says whether the destination is written. For unmasked IE/ZE/DE the
//! destination is left alone (pre-computation exceptions, SDM 8.5.1–8.5.3); for unmasked OE/UE
//! on a register destination the result is written with its exponent rebiased by ∓24576
//! (SDM 8.5.4, 8.5.5); a memory destination (FST, FIST, FBSTP) is not written.
#![forbid(unsafe_code)]

pub mod add;
pub mod bcd;
pub mod classify;
pub mod compare;
pub mod constants;
pub mod convert;
pub mod misc;
pub mod mul_div;
pub mod rem;
mod round;
pub mod sqrt;
pub mod transcendental;
mod wide;

pub use add::{add, sub, subr};
pub use bcd::{from_bcd, to_bcd, BCD_INDEFINITE};
pub use classify::{xam, XamClass};
pub use compare::{compare, ftst, CompareOutcome, Relation};
pub use constants::{load_constant, Constant};
pub use convert::{from_f32, from_f64, from_i16, from_i32, from_i64, to_f32, to_f64, to_i16, to_i32, to_i64};
pub use misc::{fabs, fchs, round_to_int, scale, xtract, Xtract};
pub use mul_div::{div, divr, mul};
pub use rem::{prem, prem1, RemOutcome};
pub use sqrt::sqrt;
pub use transcendental::{f2xm1, fcos, fpatan, fptan, fsin, fsincos, fyl2x, fyl2xp1, TrigOutcome};

/// Invalid operation (FSW bit 0).
pub const IE: u8 = 1 << 0;
/// Denormal operand (FSW bit 1).
pub const DE: u8 = 1 << 1;
/// Zero divide (FSW bit 2).
pub const ZE: u8 = 1 << 2;
/// Overflow (FSW bit 3).
pub const OE: u8 = 1 << 3;
/// Underflow (FSW bit 4).
pub const UE: u8 = 1 << 4;
/// Precision / inexact (FSW bit 5).
pub const PE: u8 = 1 << 5;

/// Exponent bias adjustment for unmasked overflow/underflow results (SDM 8.5.4/8.5.5).
pub const REBIAS: i32 = 24576;

/// An 80-bit extended-precision value exactly as stored in a register or m80 operand.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Default)]
pub struct F80 {
    /// The 64-bit significand; bit 63 is the explicit integer bit J.
    pub signif: u64,
    /// Sign (bit 15) and biased exponent (bits 14..0, bias 16383).
    pub sign_exp: u16,
}

impl F80 {
    /// +0.0
    pub const ZERO: F80 = F80 { signif: 0, sign_exp: 0 };
    /// +1.0
    pub const ONE: F80 = F80 { signif: 1 << 63, sign_exp: 0x3FFF };
    /// The "real indefinite" default NaN the FPU produces for masked invalid operations.
    pub const INDEFINITE: F80 = F80 { signif: 0xC000_0000_0000_0000, sign_exp: 0xFFFF };

    /// From the 80-bit pattern held in the low bits of a `u128` (sign/exponent in bits 79..64).
    pub const fn from_bits(bits: u128) -> F80 {
        F80 { signif: bits as u64, sign_exp: (bits >> 64) as u16 }
    }
    /// The 80-bit pattern in the low bits of a `u128`.
    pub const fn to_bits(self) -> u128 {
        (self.sign_exp as u128) << 64 | self.signif as u128
    }
    /// From an m80 memory operand: bytes 0..8 significand, 8..10 sign/exponent.
    pub fn from_le_bytes(b: [u8; 10]) -> F80 {
        let mut s = [0u8; 8];
        s.copy_from_slice(&b[..8]);
        F80 { signif: u64::from_le_bytes(s), sign_exp: u16::from_le_bytes([b[8], b[9]]) }
    }
    /// The m80 memory image.
    pub fn to_le_bytes(self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&self.signif.to_le_bytes());
        b[8..].copy_from_slice(&self.sign_exp.to_le_bytes());
        b
    }
    /// Builds a value from its parts (`exp` is the 15-bit biased exponent).
    pub const fn new(sign: bool, exp: u16, signif: u64) -> F80 {
        F80 { signif, sign_exp: (sign as u16) << 15 | (exp & 0x7FFF) }
    }
    /// The sign bit.
    pub const fn sign(self) -> bool {
        self.sign_exp >> 15 != 0
    }
    /// The biased exponent field.
    pub const fn exp(self) -> u16 {
        self.sign_exp & 0x7FFF
    }
    /// Infinity with the given sign.
    pub const fn infinity(sign: bool) -> F80 {
        F80::new(sign, 0x7FFF, 1 << 63)
    }
    /// Zero with the given sign.
    pub const fn zero(sign: bool) -> F80 {
        F80::new(sign, 0, 0)
    }
    /// True for a normal number (exponent 1..=7FFE with J = 1): the operations' fast path.
    #[inline]
    pub const fn is_normal(self) -> bool {
        (self.sign_exp & 0x7FFF).wrapping_sub(1) < 0x7FFE && self.signif >> 63 == 1
    }
    /// True for any NaN encoding with J=1 (QNaN or SNaN).
    pub const fn is_nan(self) -> bool {
        self.exp() == 0x7FFF && self.signif >> 63 == 1 && self.signif << 1 != 0
    }
}

/// x87 rounding control (FCW bits 11:10).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Rounding {
    /// 00: to nearest, ties to even.
    Nearest,
    /// 01: down, toward −∞.
    Down,
    /// 10: up, toward +∞.
    Up,
    /// 11: chop, toward zero.
    Zero,
}

/// The FPU control word (FCW).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Control(pub u16);

impl Control {
    /// The power-on / FNINIT value: all exceptions masked, PC=64 bits, RC=nearest.
    pub const DEFAULT: Control = Control(0x037F);

    /// Builds a control word with all exceptions masked.
    pub const fn masked(rc: Rounding, pc_bits: u32) -> Control {
        let pc = match pc_bits {
            24 => 0,
            53 => 2,
            _ => 3,
        };
        let rc = match rc {
            Rounding::Nearest => 0,
            Rounding::Down => 1,
            Rounding::Up => 2,
            Rounding::Zero => 3,
        };
        Control(0x7F | pc << 8 | rc << 10)
    }
    /// The rounding control field.
    pub const fn rounding(self) -> Rounding {
        match (self.0 >> 10) & 3 {
            0 => Rounding::Nearest,
            1 => Rounding::Down,
            2 => Rounding::Up,
            _ => Rounding::Zero,
        }
    }
    /// Significand bits selected by PC: 24, 53 or 64. The reserved encoding 01 is treated as
    /// 64 bits (the SDM calls it reserved; no program relies on it).
    pub const fn precision_bits(self) -> u32 {
        match (self.0 >> 8) & 3 {
            0 => 24,
            2 => 53,
            _ => 64,
        }
    }
    /// The six mask bits (FCW bits 5:0, same positions as the FSW flags).
    pub const fn masks(self) -> u8 {
        (self.0 & 0x3F) as u8
    }
    /// True if the exception(s) in `flag` are all masked.
    pub const fn is_masked(self, flag: u8) -> bool {
        self.masks() & flag == flag
    }
    /// The same control word with the given rounding control.
    pub const fn with_rounding(self, rc: Rounding) -> Control {
        let v = match rc {
            Rounding::Nearest => 0,
            Rounding::Down => 1,
            Rounding::Up => 2,
            Rounding::Zero => 3,
        };
        Control(self.0 & !0x0C00 | v << 10)
    }
}

/// What one operation produces: the value, the FSW exception flags it raised and C1.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Outcome<T = F80> {
    /// The result (the masked response when an exception was raised).
    pub value: T,
    /// Exception flags in FSW bit positions ([`IE`], [`DE`], [`ZE`], [`OE`], [`UE`], [`PE`]).
    pub flags: u8,
    /// C1: for rounded results, 1 when the significand was rounded up (away from zero in
    /// magnitude), SDM 8.1.3.2 / Table 8-10. Zero otherwise.
    pub c1: bool,
    /// False when an unmasked exception forbids writing the destination.
    pub store: bool,
}

impl<T> Outcome<T> {
    /// Applies the exception priorities every operation shares (SDM 8.7, checked on the host):
    /// IE and ZE outrank DE, so a denormal operand is not reported when the operation is
    /// invalid or divides by zero; an unmasked DE stops the instruction before it computes
    /// anything, so DE is then the only flag. Unmasked IE, ZE and DE leave the destination
    /// untouched.
    #[inline]
    pub(crate) fn new(value: T, flags: u8, c1: bool, cw: Control) -> Outcome<T> {
        let mut flags = flags;
        let mut c1 = c1;
        if flags & (IE | ZE) != 0 {
            flags &= !DE;
        } else if flags & DE != 0 && !cw.is_masked(DE) {
            flags = DE;
            c1 = false;
        }
        let store = cw.masks() & flags & (IE | ZE | DE) == flags & (IE | ZE | DE);
        Outcome { value, flags, c1, store }
    }
    /// True if the outcome raised an exception that the control word leaves unmasked, so the
    /// core must set ES/B and deliver #MF at the next waiting instruction.
    pub fn unmasked(&self, cw: Control) -> bool {
        self.flags & !cw.masks() != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unmask(flag: u8) -> Control {
        Control(Control::DEFAULT.0 & !(flag as u16))
    }

    // SDM 8.5.4: unmasked overflow delivers the rounded result with the exponent reduced by
    // 24576. Largest normal · 2 = 2^16384 · (1 − 2^−64): biased exponent 0x7FFF − 0x6000.
    #[test]
    fn unmasked_overflow_rebiases() {
        let max = F80::from_bits(0x7FFE_FFFF_FFFF_FFFF_FFFF);
        let two = F80::from_bits(0x4000_8000_0000_0000_0000);
        let o = mul(max, two, unmask(OE));
        assert_eq!(o.value.to_bits(), 0x1FFF_FFFF_FFFF_FFFF_FFFF);
        assert_eq!((o.flags, o.store), (OE, true));
        assert!(o.unmasked(unmask(OE)));
    }

    // SDM 8.5.5: unmasked underflow delivers the result with the exponent raised by 24576,
    // and UE is raised even when the result is exact.
    #[test]
    fn unmasked_underflow_rebiases() {
        let min = F80::from_bits(0x0001_8000_0000_0000_0000);
        let small = F80::from_bits(0x3FF5_8000_0000_0000_0000); // 2^-10
        let o = mul(min, small, unmask(UE));
        assert_eq!(o.value.to_bits(), (((1 - 10 + REBIAS) as u128) << 64) | 1 << 63);
        assert_eq!((o.flags, o.store), (UE, true));
        // Masked: the exact denormal 2^-16392 with no flag.
        let o = mul(min, small, Control::DEFAULT);
        assert_eq!((o.value.to_bits(), o.flags), (1 << 53, 0));
    }

    // SDM 8.5.1–8.5.3: unmasked IE, ZE and DE leave the destination unwritten; an unmasked DE
    // stops the operation before it computes, so no PE is reported.
    #[test]
    fn unmasked_pre_computation_exceptions() {
        let den = F80::from_bits(0x0000_0000_0000_0000_0001);
        let o = add(den, F80::ONE, unmask(DE));
        assert_eq!((o.flags, o.store), (DE, false));
        let o = add(den, F80::ONE, Control::DEFAULT);
        assert_eq!((o.flags, o.store), (DE | PE, true));
        let o = sqrt(F80::from_bits(0xBFFF_8000_0000_0000_0000), unmask(IE));
        assert_eq!((o.flags, o.store), (IE, false));
        let o = div(F80::ONE, F80::ZERO, unmask(ZE));
        assert_eq!((o.flags, o.store), (ZE, false));
        // FST m32 overflow with OE unmasked: memory is not written.
        let o = to_f32(F80::from_bits(0x7FFE_8000_0000_0000_0000), unmask(OE));
        assert!(!o.store && o.flags & OE != 0);
    }

    #[test]
    fn byte_layout() {
        let x = F80::from_bits(0xC000_8877_6655_4433_2211);
        assert_eq!(x.to_le_bytes(), [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x00, 0xC0]);
        assert_eq!(F80::from_le_bytes(x.to_le_bytes()), x);
        assert_eq!(Control::masked(Rounding::Zero, 53).0, 0x0E7F);
        assert_eq!(Control(0x0E7F).rounding(), Rounding::Zero);
        assert_eq!(Control(0x0E7F).precision_bits(), 53);
    }
}
