//! The seam between the JIT's host-independent front end and a host backend (issue 10: "one
//! front end, backends behind a trait").
//!
//! The front end (`jit/mod.rs`: promotion, the run loop, chaining bookkeeping, invalidation,
//! the indirect-branch table; `forms.rs` and `sse.rs`: which instructions have inline forms,
//! flag liveness) decides *what* to compile and keeps every table. A backend only selects and
//! encodes host instructions, through this trait: the shared stubs, a block's translation, and
//! the patching of a chain site. Today there is one, x86-64 ([`super::x64::X64`]); an aarch64
//! backend implements the same trait against the same [`Layout`] and result codes.
//!
//! The contract generated code and the run loop share is here too: what a translation returns
//! when it leaves ([`RESULT_DISPATCH`], [`RESULT_STOP`], [`RESULT_INDIRECT`], or the host
//! address of an unlinked chain site) and how the trampoline's `info` marks a block-ending
//! branch ([`INFO_BRANCH`]).

use super::Layout;
use emu::cache::Block;

/// A translation left with RIP current: the block-entry check failed, or a branch went to no
/// known successor.
pub const RESULT_DISPATCH: u64 = 0;
/// A handler stopped (the outcome is in `RunCtx::stop`).
pub const RESULT_STOP: u64 = 1;
/// An indirect branch's target (in RIP) was not in the indirect-branch table.
pub const RESULT_INDIRECT: u64 = 2;

/// Bit 31 of the trampoline's `info` (the low bits: the instruction's index in its block): the
/// instruction is a block-ending branch, which sets RIP itself.
pub const INFO_BRANCH: u32 = 1 << 31;

/// What the front end asks a backend to compile.
pub struct CompileRequest<'b> {
    pub block: &'b Block,
    /// Guest RIPs the block may end at whose exits get a chain site (any other RIP goes to the
    /// dispatcher).
    pub successors: &'b [u64],
    /// The block ends in a near indirect branch, looked up in the indirect-branch table.
    pub indirect: bool,
    /// The host address the code is linked for.
    pub at: usize,
    /// The host address of code memory's start (where the stubs are).
    pub base: usize,
    /// Emit the inline forms (step 2); without, every instruction calls its handler.
    pub inline: bool,
    /// A region (seventh round, part R): its blocks, `block` first, each with its successors;
    /// empty for a translation of `block` alone.
    pub region: &'b [RegionMember<'b>],
}

/// A block of a region: its branches to members become host jumps, the rest exits.
pub struct RegionMember<'b> {
    pub block: &'b Block,
    /// The guest RIPs it may end at whose exits get a chain site (as `CompileRequest::successors`).
    pub successors: Vec<u64>,
}

/// A host backend: instruction selection and encoding, nothing else.
pub trait Backend {
    /// Where the shared stubs are (offsets from the start of code memory).
    type Stubs;
    /// The shared stubs (the entry at offset 0, the exits), linked for code memory at `base`.
    fn emit_stubs(base: usize, l: &Layout) -> (Vec<u8>, Self::Stubs);
    /// The translation of `req.block`, linked for `req.at`.
    fn compile(req: &CompileRequest<'_>, stubs: &Self::Stubs, l: &Layout) -> Vec<u8>;
    /// Points the chain site at offset `site` of code memory `code` to offset `target`.
    fn patch_jump(code: &mut [u8], site: usize, target: usize);
    /// Where the chain site at offset `site` goes now.
    fn jump_target(code: &[u8], site: usize) -> usize;
}
