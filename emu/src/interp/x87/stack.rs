//! The x87 register stack: TOP, the tag word, push and pop, and the status-word bookkeeping
//! every x87 instruction shares (exception flags, ES/B summary, condition codes, stack faults).
//!
//! Registers live in `FpuState::regs` by physical number R0..R7; ST(i) is R((TOP + i) mod 8)
//! with TOP in FSW bits 13:11 (SDM Vol. 1, 8.1.2). The tag word keeps the full two-bit tags
//! (SDM Vol. 1, 8.1.7): 00 valid, 01 zero, 10 special (NaN, infinity, denormal, unsupported),
//! 11 empty. A stack fault is an invalid-operation exception with SF set; C1 tells overflow (1)
//! from underflow (0) (SDM Vol. 1, 8.5.1.1). Leaves out: nothing of the stack model; the deferred
//! #MF is raised by `mod.rs` at the next waiting instruction.

use crate::state::{FpuState, X87Reg};
use x87float::{Control, F80, IE};

/// FSW bits (SDM Vol. 1, Figure 8-4).
pub const FSW_SF: u16 = 1 << 6;
pub const FSW_ES: u16 = 1 << 7;
pub const FSW_C0: u16 = 1 << 8;
pub const FSW_C1: u16 = 1 << 9;
pub const FSW_C2: u16 = 1 << 10;
pub const FSW_C3: u16 = 1 << 14;
pub const FSW_B: u16 = 1 << 15;
pub const FSW_TOP_SHIFT: u32 = 11;
pub const FSW_TOP: u16 = 7 << FSW_TOP_SHIFT;
/// The six exception flags, FSW bits 5:0.
pub const FSW_FLAGS: u16 = 0x3f;

/// Tag values (SDM Vol. 1, Figure 8-7).
pub const TAG_VALID: u16 = 0;
pub const TAG_ZERO: u16 = 1;
pub const TAG_SPECIAL: u16 = 2;
pub const TAG_EMPTY: u16 = 3;

/// The current TOP.
#[inline(always)]
pub fn top(f: &FpuState) -> usize {
    ((f.fsw & FSW_TOP) >> FSW_TOP_SHIFT) as usize
}

#[inline(always)]
pub fn set_top(f: &mut FpuState, t: usize) {
    f.fsw = (f.fsw & !FSW_TOP) | ((t as u16 & 7) << FSW_TOP_SHIFT);
}

/// Physical register number of ST(i).
#[inline(always)]
pub fn phys(f: &FpuState, i: u8) -> usize {
    (top(f) + i as usize) & 7
}

/// The tag of physical register `p`.
#[inline(always)]
pub fn tag(f: &FpuState, p: usize) -> u16 {
    (f.ftw >> (2 * (p & 7))) & 3
}

#[inline(always)]
pub fn set_tag(f: &mut FpuState, p: usize, t: u16) {
    let s = 2 * (p & 7);
    f.ftw = (f.ftw & !(3 << s)) | ((t & 3) << s);
}

/// True if ST(i) is empty.
#[inline(always)]
pub fn is_empty(f: &FpuState, i: u8) -> bool {
    tag(f, phys(f, i)) == TAG_EMPTY
}

/// The tag a value gets when it is written to a register (what FRSTOR/FXRSTOR recompute too).
pub fn tag_of(v: F80) -> u16 {
    let exp = v.exp();
    if exp == 0 && v.signif == 0 {
        TAG_ZERO
    } else if exp == 0x7fff || exp == 0 || v.signif >> 63 == 0 {
        TAG_SPECIAL
    } else {
        TAG_VALID
    }
}

#[inline(always)]
pub fn to_f80(r: X87Reg) -> F80 {
    F80 { signif: r.signif, sign_exp: r.sign_exp }
}

#[inline(always)]
pub fn to_reg(v: F80) -> X87Reg {
    X87Reg { signif: v.signif, sign_exp: v.sign_exp, _pad: [0; 3] }
}

/// The contents of ST(i) (whatever its tag says).
#[inline(always)]
pub fn st(f: &FpuState, i: u8) -> F80 {
    to_f80(f.regs[phys(f, i)])
}

/// Writes ST(i) and retags it.
#[inline(always)]
pub fn set_st(f: &mut FpuState, i: u8, v: F80) {
    let p = phys(f, i);
    f.regs[p] = to_reg(v);
    set_tag(f, p, tag_of(v));
}

/// Pushes `v`: TOP - 1, then ST(0) = v. The caller has checked for overflow.
#[inline(always)]
pub fn push(f: &mut FpuState, v: F80) {
    let t = top(f).wrapping_sub(1) & 7;
    set_top(f, t);
    set_st(f, 0, v);
}

/// Pops: ST(0) becomes empty, TOP + 1.
#[inline(always)]
pub fn pop(f: &mut FpuState) {
    let p = phys(f, 0);
    set_tag(f, p, TAG_EMPTY);
    set_top(f, p + 1);
}

/// True if a push would overflow the stack (ST(7), the register below TOP, is in use).
#[inline(always)]
pub fn push_overflows(f: &FpuState) -> bool {
    !is_empty(f, 7)
}

/// Records exception `flags` (FSW bit positions) in the sticky flags; when any of them is
/// unmasked, sets ES and B (SDM Vol. 1, 8.1.3.1). Returns true in that case.
#[inline(always)]
pub fn raise(f: &mut FpuState, flags: u8) -> bool {
    f.fsw |= flags as u16 & FSW_FLAGS;
    if flags & !Control(f.fcw).masks() & 0x3f != 0 {
        f.fsw |= FSW_ES | FSW_B;
        return true;
    }
    false
}

/// Recomputes ES and B from the flags and masks (after FLDCW, FLDENV, FRSTOR).
pub fn update_es(f: &mut FpuState) {
    if f.fsw & !f.fcw & FSW_FLAGS != 0 {
        f.fsw |= FSW_ES | FSW_B;
    } else {
        f.fsw &= !(FSW_ES | FSW_B);
    }
}

/// Exception priority (SDM Vol. 1, 4.9.2): an invalid operation hides a denormal operand.
#[inline(always)]
pub fn prioritize(flags: u8) -> u8 {
    if flags & x87float::IE != 0 {
        flags & !x87float::DE
    } else {
        flags
    }
}

/// A stack fault: IE and SF, C1 = 1 for overflow, 0 for underflow (SDM Vol. 1, 8.5.1.1).
/// Returns true if IE is unmasked (the instruction then writes nothing).
pub fn stack_fault(f: &mut FpuState, overflow: bool) -> bool {
    f.fsw |= FSW_SF;
    set_c1(f, overflow);
    raise(f, IE)
}

#[inline(always)]
pub fn set_c1(f: &mut FpuState, c1: bool) {
    f.fsw = (f.fsw & !FSW_C1) | if c1 { FSW_C1 } else { 0 };
}

/// Sets C3, C2, C1, C0 at once.
#[inline(always)]
pub fn set_cc(f: &mut FpuState, c3: bool, c2: bool, c1: bool, c0: bool) {
    f.fsw = (f.fsw & !(FSW_C3 | FSW_C2 | FSW_C1 | FSW_C0))
        | if c3 { FSW_C3 } else { 0 }
        | if c2 { FSW_C2 } else { 0 }
        | if c1 { FSW_C1 } else { 0 }
        | if c0 { FSW_C0 } else { 0 };
}

/// Writes an arithmetic result to ST(`dest`) as the outcome allows, sets C1 from it, and pops
/// when `pop_after`. An unmasked IE/ZE/DE leaves the destination and the stack alone (SDM Vol. 1,
/// 8.5.1-8.5.3); unmasked OE/UE store the rebiased value x87float returns. Returns true when an
/// unmasked exception was raised.
pub fn write_result(f: &mut FpuState, dest: u8, o: x87float::Outcome, pop_after: bool) -> bool {
    let unmasked = raise(f, prioritize(o.flags));
    // C1 tells a rounded-up result; the host clears it when nothing is written.
    set_c1(f, o.store && o.c1);
    if o.store {
        set_st(f, dest, o.value);
        if pop_after {
            pop(f);
        }
    }
    unmasked
}

/// The masked response to a stack underflow on an instruction whose result goes to ST(`dest`):
/// the QNaN indefinite is written (then popped if `pop_after`). Returns true if IE is unmasked.
pub fn underflow_to(f: &mut FpuState, dest: u8, pop_after: bool) -> bool {
    if stack_fault(f, false) {
        return true;
    }
    set_st(f, dest, F80::INDEFINITE);
    if pop_after {
        pop(f);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_pop_move_top_and_tags() {
        // After FNINIT TOP = 0 and all tags are 11 (SDM Vol. 1, 8.1.4); a push makes TOP 7.
        let mut f = FpuState::default();
        assert!(!push_overflows(&f));
        push(&mut f, F80::ONE);
        assert_eq!(top(&f), 7);
        assert_eq!(f.ftw, 0x3fff);
        push(&mut f, F80::ZERO);
        assert_eq!(f.ftw, 0x1fff);
        assert_eq!(st(&f, 1), F80::ONE);
        pop(&mut f);
        pop(&mut f);
        assert_eq!((top(&f), f.ftw), (0, 0xffff));
    }

    #[test]
    fn tags_follow_table_8_3_classes() {
        assert_eq!(tag_of(F80::ONE), TAG_VALID);
        assert_eq!(tag_of(F80::zero(true)), TAG_ZERO);
        assert_eq!(tag_of(F80::INDEFINITE), TAG_SPECIAL);
        assert_eq!(tag_of(F80::from_bits(1)), TAG_SPECIAL); // denormal
        assert_eq!(tag_of(F80::from_bits(0x3fff_4000_0000_0000_0000)), TAG_SPECIAL);
        // unnormal
    }
}
