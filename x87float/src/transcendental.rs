//! Transcendental instructions (placeholder, replaced below).
use crate::{Control, Outcome, F80};

/// Result of a transcendental: the value plus C2 (argument out of range).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TrigOutcome {
    /// The result.
    pub result: Outcome,
    /// C2 = 1: |x| ≥ 2^63, operand left unchanged.
    pub c2: bool,
}
/// FSIN
pub fn fsin(_a: F80, _cw: Control) -> TrigOutcome {
    unimplemented!()
}
/// FCOS
pub fn fcos(_a: F80, _cw: Control) -> TrigOutcome {
    unimplemented!()
}
/// FSINCOS
pub fn fsincos(_a: F80, _cw: Control) -> (TrigOutcome, F80) {
    unimplemented!()
}
/// FPTAN
pub fn fptan(_a: F80, _cw: Control) -> TrigOutcome {
    unimplemented!()
}
/// FPATAN
pub fn fpatan(_a: F80, _b: F80, _cw: Control) -> Outcome {
    unimplemented!()
}
/// F2XM1
pub fn f2xm1(_a: F80, _cw: Control) -> Outcome {
    unimplemented!()
}
/// FYL2X
pub fn fyl2x(_a: F80, _b: F80, _cw: Control) -> Outcome {
    unimplemented!()
}
/// FYL2XP1
pub fn fyl2xp1(_a: F80, _b: F80, _cw: Control) -> Outcome {
    unimplemented!()
}
