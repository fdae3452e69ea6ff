//! Lazy arithmetic flags (ARCHITECTURE.md, decision 5).
//!
//! Arithmetic stores its sign-extended result and a carry-out vector instead of computing EFLAGS.
//! Every flag is then O(1) from the record, with no switch on the operation that produced it:
//!
//! | flag | from |
//! |---|---|
//! | CF | `aux` bit 63: carry (or borrow) out of the operand's top bit |
//! | OF | `aux` bit 63 XOR bit 62: carry into the top bit differs from carry out of it |
//! | AF | `aux` bit 3: carry out of bit 3 |
//! | ZF | `result == 0` (the result is sign-extended to 64 bits, which keeps zero-ness) |
//! | SF | `result` bit 63 XOR `aux` bit 0 (the "sign delta", used when flags are set directly) |
//! | PF | even parity of `result` bits 7:0 XOR `aux` bits 15:8 (the "parity delta") |
//!
//! The two deltas let any combination of the six flags be encoded (POPF, SAHF, IRET), so there
//! is one representation and no "flags are materialized" mode. The idea is Bochs's
//! (`lazy_flags.h`); setters are named by the flags they define and the operation.

use crate::rflags;

const AUX_CF: u32 = 63;
const AUX_PO: u32 = 62;
const AUX_AF: u32 = 3;
const AUX_SD: u32 = 0;
const AUX_PDB: u32 = 8;

/// The lazily evaluated CF/PF/AF/ZF/SF/OF.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LazyFlags {
    /// Result of the last flag-setting operation, sign-extended from its width.
    pub result: u64,
    /// Carry-out vector and deltas, laid out as described in the module doc.
    pub aux: u64,
}

impl Default for LazyFlags {
    /// All six flags clear.
    fn default() -> Self {
        Self::from_rflags(0)
    }
}

/// Operand widths: the generic handlers are written once over this trait (one generic instead of
/// four near-copies per width; docs/ARCHITECTURE.md, "Conventions").
pub trait Width: Copy + Eq + core::fmt::Debug + 'static {
    const BITS: u32;
    const BYTES: usize = (Self::BITS / 8) as usize;
    const MASK: u64 = if Self::BITS == 64 { u64::MAX } else { (1u64 << Self::BITS) - 1 };
    const SIGN: u64 = 1u64 << (Self::BITS - 1);
    /// Sign-extends the low `BITS` bits of `v` to 64 bits.
    #[inline(always)]
    fn sext(v: u64) -> u64 {
        let s = 64 - Self::BITS;
        (((v << s) as i64) >> s) as u64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct W8;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct W16;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct W32;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct W64;
impl Width for W8 {
    const BITS: u32 = 8;
}
impl Width for W16 {
    const BITS: u32 = 16;
}
impl Width for W32 {
    const BITS: u32 = 32;
}
impl Width for W64 {
    const BITS: u32 = 64;
}

/// Moves the top two carry bits of a `W`-bit carry vector to bits 63/62 and keeps AF.
#[inline(always)]
fn pack_carries<W: Width>(cout: u64) -> u64 {
    (cout & (1 << AUX_AF)) | (((cout >> (W::BITS - 2)) & 3) << AUX_PO)
}

impl LazyFlags {
    // ---- setters, named by the flags they define -------------------------------------------

    /// ADD/ADC/XADD/CMPXCHG-style addition `a + b (+ carry) = r`: defines all six flags.
    #[inline(always)]
    pub fn set_oszapc_add<W: Width>(&mut self, a: u64, b: u64, r: u64) {
        let cout = (a & b) | ((a | b) & !r);
        self.result = W::sext(r);
        self.aux = pack_carries::<W>(cout);
    }

    /// SUB/SBB/CMP/NEG-style subtraction `a - b (- borrow) = r`: defines all six flags.
    #[inline(always)]
    pub fn set_oszapc_sub<W: Width>(&mut self, a: u64, b: u64, r: u64) {
        let bout = (!a & b) | (!(a ^ b) & r);
        self.result = W::sext(r);
        self.aux = pack_carries::<W>(bout);
    }

    /// INC: like ADD of 1, but CF keeps its old value.
    #[inline(always)]
    pub fn set_oszap_inc<W: Width>(&mut self, a: u64, r: u64) {
        let cf = self.cf();
        self.set_oszapc_add::<W>(a, 1, r);
        self.force_cf(cf);
    }

    /// DEC: like SUB of 1, but CF keeps its old value.
    #[inline(always)]
    pub fn set_oszap_dec<W: Width>(&mut self, a: u64, r: u64) {
        let cf = self.cf();
        self.set_oszapc_sub::<W>(a, 1, r);
        self.force_cf(cf);
    }

    /// AND/OR/XOR/TEST: SF, ZF, PF from the result; CF = OF = 0; AF = 0 (undefined in the SDM,
    /// cleared as the reference CPUs do).
    #[inline(always)]
    pub fn set_oszapc_logic<W: Width>(&mut self, r: u64) {
        self.result = W::sext(r);
        self.aux = 0;
    }

    /// SF, ZF, PF from `r`; CF, OF, AF given explicitly (shifts, rotates, multiplies, BMI).
    #[inline(always)]
    pub fn set_szp_with_cf_of_af<W: Width>(&mut self, r: u64, cf: bool, of: bool, af: bool) {
        self.result = W::sext(r);
        self.aux = (cf as u64) << AUX_CF | ((cf ^ of) as u64) << AUX_PO | (af as u64) << AUX_AF;
    }

    /// Replaces CF only, keeping OF (bit 62 is re-derived so that bit 63 XOR bit 62 is unchanged).
    #[inline(always)]
    pub fn force_cf(&mut self, cf: bool) {
        let of = self.of();
        self.aux = (self.aux & !(3 << AUX_PO)) | (cf as u64) << AUX_CF | ((cf ^ of) as u64) << AUX_PO;
    }

    /// Replaces OF only.
    #[inline(always)]
    pub fn force_of(&mut self, of: bool) {
        let cf = self.cf();
        self.aux = (self.aux & !(1 << AUX_PO)) | ((cf ^ of) as u64) << AUX_PO;
    }

    /// Replaces ZF only (CMPXCHG8B/16B, LAR, LSL, VERR/VERW): re-encodes the whole set.
    pub fn force_zf(&mut self, zf: bool) {
        let f = self.materialize();
        *self = Self::from_rflags(if zf { f | rflags::ZF } else { f & !rflags::ZF });
    }

    // ---- getters: each O(1) ---------------------------------------------------------------

    #[inline(always)]
    pub fn cf(&self) -> bool {
        self.aux >> AUX_CF != 0
    }
    #[inline(always)]
    pub fn of(&self) -> bool {
        ((self.aux >> AUX_CF) ^ (self.aux >> AUX_PO)) & 1 != 0
    }
    #[inline(always)]
    pub fn af(&self) -> bool {
        (self.aux >> AUX_AF) & 1 != 0
    }
    #[inline(always)]
    pub fn zf(&self) -> bool {
        self.result == 0
    }
    #[inline(always)]
    pub fn sf(&self) -> bool {
        ((self.result >> 63) ^ (self.aux >> AUX_SD)) & 1 != 0
    }
    #[inline(always)]
    pub fn pf(&self) -> bool {
        ((self.result ^ (self.aux >> AUX_PDB)) as u8).count_ones() & 1 == 0
    }

    /// The six flags as RFLAGS bits.
    pub fn materialize(&self) -> u64 {
        let bit = |set: bool, f: u64| if set { f } else { 0 };
        bit(self.cf(), rflags::CF)
            | bit(self.pf(), rflags::PF)
            | bit(self.af(), rflags::AF)
            | bit(self.zf(), rflags::ZF)
            | bit(self.sf(), rflags::SF)
            | bit(self.of(), rflags::OF)
    }

    /// Encodes the six flags of an RFLAGS value (other bits ignored).
    pub fn from_rflags(f: u64) -> Self {
        let bit = |m: u64| f & m != 0;
        // result is 0 (ZF) or 0x100 (not zero, low byte 0, sign 0); the deltas supply SF and PF.
        let result = if bit(rflags::ZF) { 0 } else { 0x100 };
        let cf = bit(rflags::CF);
        let of = bit(rflags::OF);
        let aux = (cf as u64) << AUX_CF
            | ((cf ^ of) as u64) << AUX_PO
            | (bit(rflags::AF) as u64) << AUX_AF
            | (!bit(rflags::PF) as u64) << AUX_PDB
            | (bit(rflags::SF) as u64) << AUX_SD;
        LazyFlags { result, aux }
    }

    /// Evaluates condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc, SDM Vol. 1, Table B-1).
    #[inline(always)]
    pub fn cond(&self, cc: u8) -> bool {
        let r = match cc >> 1 {
            0 => self.of(),
            1 => self.cf(),
            2 => self.zf(),
            3 => self.cf() || self.zf(),
            4 => self.sf(),
            5 => self.pf(),
            6 => self.sf() != self.of(),
            _ => self.zf() || (self.sf() != self.of()),
        };
        r ^ (cc & 1 != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flags of an 8-bit add, computed from the definitions in SDM Vol. 1, 3.4.3.1.
    fn reference_add8(a: u8, b: u8, c: u8) -> u64 {
        let wide = a as u16 + b as u16 + c as u16;
        let r = wide as u8;
        let mut f = 0;
        if wide > 0xff {
            f |= rflags::CF;
        }
        if (a & 0xf) + (b & 0xf) + c > 0xf {
            f |= rflags::AF;
        }
        if r == 0 {
            f |= rflags::ZF;
        }
        if r & 0x80 != 0 {
            f |= rflags::SF;
        }
        if r.count_ones().is_multiple_of(2) {
            f |= rflags::PF;
        }
        let (sa, sb, sr) = (a as i8 as i16, b as i8 as i16, r as i8 as i16);
        if sa + sb + c as i16 != sr {
            f |= rflags::OF;
        }
        f
    }

    fn reference_sub8(a: u8, b: u8, c: u8) -> u64 {
        let r = a.wrapping_sub(b).wrapping_sub(c);
        let mut f = 0;
        if (a as u16) < b as u16 + c as u16 {
            f |= rflags::CF;
        }
        if (a & 0xf) < (b & 0xf) + c {
            f |= rflags::AF;
        }
        if r == 0 {
            f |= rflags::ZF;
        }
        if r & 0x80 != 0 {
            f |= rflags::SF;
        }
        if r.count_ones().is_multiple_of(2) {
            f |= rflags::PF;
        }
        if a as i8 as i16 - b as i8 as i16 - c as i16 != r as i8 as i16 {
            f |= rflags::OF;
        }
        f
    }

    #[test]
    fn add_and_sub_flags_match_the_definitions_exhaustively_for_8_bits() {
        let mut lf = LazyFlags::default();
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for c in 0..=1u8 {
                    let r = a.wrapping_add(b).wrapping_add(c);
                    lf.set_oszapc_add::<W8>(a as u64, b as u64, r as u64);
                    assert_eq!(lf.materialize(), reference_add8(a, b, c), "add {a} {b} {c}");
                    let r = a.wrapping_sub(b).wrapping_sub(c);
                    lf.set_oszapc_sub::<W8>(a as u64, b as u64, r as u64);
                    assert_eq!(lf.materialize(), reference_sub8(a, b, c), "sub {a} {b} {c}");
                }
            }
        }
    }

    #[test]
    fn inc_keeps_cf_and_sets_of_on_signed_overflow() {
        let mut lf = LazyFlags::from_rflags(rflags::CF);
        lf.set_oszap_inc::<W32>(0x7fff_ffff, 0x8000_0000);
        assert!(lf.cf() && lf.of() && lf.sf() && !lf.zf());
        let mut lf = LazyFlags::from_rflags(0);
        lf.set_oszap_dec::<W16>(1, 0);
        assert!(!lf.cf() && !lf.of() && lf.zf() && lf.pf());
    }

    #[test]
    fn forcing_one_flag_keeps_the_others() {
        for f in 0..64u64 {
            let bits = [rflags::CF, rflags::PF, rflags::AF, rflags::ZF, rflags::SF, rflags::OF];
            let fl = bits.iter().enumerate().filter(|(i, _)| f >> i & 1 == 1).fold(0, |a, (_, b)| a | b);
            let mut lf = LazyFlags::from_rflags(fl);
            lf.force_cf(true);
            assert_eq!(lf.materialize(), fl | rflags::CF);
            lf.force_of(false);
            assert_eq!(lf.materialize(), (fl | rflags::CF) & !rflags::OF);
            lf.force_zf(true);
            assert_eq!(lf.materialize(), ((fl | rflags::CF) & !rflags::OF) | rflags::ZF);
        }
    }

    #[test]
    fn conditions_follow_table_b1() {
        // 0x80 - 1: SF=0, OF=1 -> "L" (SF != OF) holds; not zero; no carry.
        let mut lf = LazyFlags::default();
        lf.set_oszapc_sub::<W8>(0x80, 1, 0x7f);
        assert!(lf.cond(0x0)); // O
        assert!(!lf.cond(0x2)); // B
        assert!(lf.cond(0xc)); // L
        assert!(!lf.cond(0x4)); // E
        assert!(lf.cond(0x5)); // NE
        assert!(lf.cond(0xe)); // LE
    }
}
