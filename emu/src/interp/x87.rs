//! x87 instructions (tier 0). Not implemented yet: every Code of this family raises #UD through
//! `exec_unimplemented`, which names it once on stderr.

use crate::decode::table::Row;

pub(crate) const ROWS: &[&[Row]] = &[];

/// CPUID.1:EDX bits for what this file implements (FPU is bit 0, reported in `misc.rs`).
pub const CPUID1_EDX: u32 = 0;
