//! The memory operands the JIT's inline forms take: a 64-bit-mode effective address ([`Ea`])
//! and which decoded operands are one ([`ea_of`]). Shared by the integer forms (`forms.rs`)
//! and the SSE forms (`sse.rs`), which each pick their instructions; kept apart from both so
//! neither imports the other's half.

use emu::decoded::{Instr, NO_REG, NO_SEG};

/// A 64-bit-mode effective address with no segment base: `base + index << scale + disp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ea {
    pub base: u8,
    pub index: u8,
    pub scale: u8,
    /// Fits in 32 bits unless there is neither base nor index.
    pub disp: u64,
    /// FS (4) or GS (5), whose base is added, or `NO_SEG` (part E: the kernel's per-CPU
    /// variables are GS-relative, user TLS FS-relative).
    pub seg: u8,
}

/// The memory operand of `e` as an [`Ea`], when it is one the inline TLB probe handles: 64-bit
/// code, 64-bit addressing, no segment or FS/GS.
pub fn ea_of(e: &Instr, bits64: bool) -> Option<Ea> {
    if !bits64 || e.amask != u64::MAX || e.lmask != u64::MAX || !matches!(e.seg, 4 | 5 | NO_SEG) {
        return None;
    }
    let reg_or_none = |r: u8| if r == NO_REG { Some(NO_REG) } else { Some(r & 15) };
    let (base, index) = (reg_or_none(e.base)?, reg_or_none(e.index)?);
    if (base != NO_REG || index != NO_REG) && i32::try_from(e.disp as i64).is_err() {
        return None;
    }
    Some(Ea { base, index, scale: e.scale, disp: e.disp, seg: e.seg })
}
