//! Tier 0's instruction handlers, one file per instruction family (docs/ARCHITECTURE.md, decision 4).
//!
//! Each family file holds the handlers of its instructions and lists them in its `ROWS`
//! ([`crate::decoded::Row`]); `decode/table.rs` gathers the rows into the handler table. The
//! handlers work on [`crate::decoded::Instr`] entries and follow the conventions given in
//! `decoded`. The run loop that calls them is in `tier0`, above the decoder and the block cache.

pub mod access_rights;
pub mod arith;
pub mod bit;
pub mod ctrl_xfer;
pub mod data_xfer;
pub mod flag_ctrl;
// Test support sits with the tests (under `tests/`): it drives the decoder, which stands above
// the families.
#[cfg(all(test, target_arch = "x86_64"))]
#[path = "tests/host.rs"]
pub(crate) mod hosttest;
pub mod io;
pub mod legacy;
pub mod logical;
pub mod misc;
pub mod mul_div;
pub mod operand;
#[cfg(all(test, target_arch = "x86_64"))]
mod precise_tests;
pub mod shift;
pub mod sse;
pub mod stack;
pub mod string;
pub mod sys;
pub mod sysenter;
pub mod system;
pub mod x87;
