//! mul_div instructions (tier 0). Not implemented yet: every Code of this family raises #UD through
//! `exec_unimplemented`, which names it once on stderr.

use crate::decode::table::Row;

pub(crate) const ROWS: &[&[Row]] = &[];
