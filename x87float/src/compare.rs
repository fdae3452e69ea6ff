//! FCOM/FCOMP/FCOMPP, FUCOM*, FCOMI/FUCOMI(P), FTST (SDM Vol. 2 FCOM, FUCOM, FCOMI, FTST).
//!
//! The signaling forms (FCOM*, FCOMI*, FTST) raise IE for any NaN operand; the quiet forms
//! (FUCOM*, FUCOMI*) only for an SNaN. Unsupported encodings always raise IE. Both give
//! "unordered" for NaNs. DE is raised for a denormal operand when no NaN is involved. ±0
//! compare equal.
use crate::classify::{unpack, Kind, Unpacked};
use crate::{DE, F80, IE};
use std::cmp::Ordering;

/// The outcome of a comparison of ST(0) (`a`) with the source (`b`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Relation {
    /// a < b
    Less,
    /// a = b
    Equal,
    /// a > b
    Greater,
    /// A NaN or unsupported operand.
    Unordered,
}

/// A comparison result and the exceptions it raised.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CompareOutcome {
    /// How `a` relates to `b`.
    pub relation: Relation,
    /// IE and/or DE in FSW bit positions.
    pub flags: u8,
}

impl Relation {
    /// FCOM/FUCOM/FTST condition codes (C3, C2, C0); C1 is cleared.
    pub fn c3_c2_c0(self) -> (bool, bool, bool) {
        match self {
            Relation::Greater => (false, false, false),
            Relation::Less => (false, false, true),
            Relation::Equal => (true, false, false),
            Relation::Unordered => (true, true, true),
        }
    }
    /// FCOMI/FUCOMI EFLAGS view (ZF, PF, CF); OF, SF and AF are cleared.
    pub fn zf_pf_cf(self) -> (bool, bool, bool) {
        self.c3_c2_c0()
    }
}

fn magnitude_order(a: &Unpacked, b: &Unpacked) -> Ordering {
    // Zero < finite < infinity, then by exponent and significand.
    let rank = |u: &Unpacked| match u.kind {
        Kind::Zero => 0,
        Kind::Inf => 2,
        _ => 1,
    };
    rank(a).cmp(&rank(b)).then(if rank(a) == 1 { (a.exp, a.sig).cmp(&(b.exp, b.sig)) } else { Ordering::Equal })
}

/// Compares `a` (ST(0)) with `b`. `quiet` selects FUCOM semantics. The masked response for
/// IE is "unordered"; with IE unmasked the core must leave the condition codes unchanged.
pub fn compare(a: F80, b: F80, quiet: bool) -> CompareOutcome {
    let ua = unpack(a);
    let ub = unpack(b);
    let unsupported = ua.kind == Kind::Unsupported || ub.kind == Kind::Unsupported;
    if unsupported || ua.is_nan() || ub.is_nan() {
        let snan = ua.kind == Kind::SNaN || ub.kind == Kind::SNaN;
        let ie = unsupported || snan || !quiet;
        return CompareOutcome { relation: Relation::Unordered, flags: if ie { IE } else { 0 } };
    }
    let flags = if ua.denormal || ub.denormal { DE } else { 0 };
    let za = ua.kind == Kind::Zero;
    let zb = ub.kind == Kind::Zero;
    let relation = if za && zb {
        Relation::Equal
    } else if ua.sign != ub.sign {
        if ua.sign {
            Relation::Less
        } else {
            Relation::Greater
        }
    } else {
        let m = magnitude_order(&ua, &ub);
        let m = if ua.sign { m.reverse() } else { m };
        match m {
            Ordering::Less => Relation::Less,
            Ordering::Equal => Relation::Equal,
            Ordering::Greater => Relation::Greater,
        }
    };
    CompareOutcome { relation, flags }
}

/// FTST: compares ST(0) with +0.0 (signaling: IE for any NaN).
pub fn ftst(a: F80) -> CompareOutcome {
    compare(a, F80::ZERO, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_relations() {
        let two = F80::from_bits(0x4000_8000_0000_0000_0000);
        assert_eq!(compare(F80::ONE, two, false).relation, Relation::Less);
        assert_eq!(compare(F80::zero(true), F80::ZERO, false).relation, Relation::Equal);
        assert_eq!(
            compare(F80::infinity(true), F80::from_bits(0x8000_0000_0000_0000_0001), true).relation,
            Relation::Less
        );
        let q = F80::INDEFINITE;
        assert_eq!(compare(q, two, true), CompareOutcome { relation: Relation::Unordered, flags: 0 });
        assert_eq!(compare(q, two, false).flags, IE);
        assert_eq!(ftst(F80::from_bits(1)).flags, DE);
        // SDM FCOMI table: unordered sets ZF, PF, CF.
        assert_eq!(Relation::Unordered.zf_pf_cf(), (true, true, true));
    }
}
