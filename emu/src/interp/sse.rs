//! sse instructions (tier 0). Not implemented yet: every Code of this family raises #UD through
//! `exec_unimplemented`, which names it once on stderr.

use crate::decode::table::Row;

pub(crate) const ROWS: &[&[Row]] = &[];

/// CPUID.1:EDX bits for what this file implements (SSE 25, SSE2 26, FXSR 24 once they are done).
pub const CPUID1_EDX: u32 = 0;
/// CPUID.1:ECX bits (SSE3 0, SSSE3 9, SSE4.1 19, SSE4.2 20, POPCNT 23 — only when implemented).
pub const CPUID1_ECX: u32 = 0;
