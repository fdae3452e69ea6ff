//! RET prediction (issue 10, step 3): a shadow stack of (guest return address, host code) pairs
//! kept on the host stack, so a guest RET whose target is the return address its CALL pushed
//! becomes a host `ret`, which the host's return-address predictor follows.
//!
//! **The pairs.** A 64-bit block ending in a near CALL (rel32 or r/m64) pushes, at its end,
//! the guest return address and then, with a host `call` into its usual exit path (the chain
//! site of the call target, or the indirect-branch lookup), the host address of its *return
//! point*: a counter increment and a chain site (`jmp rel32`) for the return address, linked
//! and unlinked by the front end exactly like every other chain site. A 64-bit block ending in
//! a near RET compares the RIP it popped with the guest address of the top pair: equal, it
//! returns with `ret 8` (dropping the pair) to that return point, whose chain site leads to the
//! target's translation (and its budget and TLB-generation check); otherwise it counts a miss
//! and looks the RIP up in the indirect-branch table as before.
//!
//! **Why no tag.** Pairs live only for one entry into translated code: the entry stub saves
//! `rsp` and puts a sentinel pair at the bottom, and the exit stub restores `rsp`, dropping
//! whatever pairs are left. Within one entry nothing a pair depends on can change: chain links
//! are patched, translations dropped and code memory flushed only by the run loop between
//! entries (a store into code leaves the translation first), and the mode key (code size, CPL)
//! and CS base change only through instructions that stop the block (tier 0's block cache
//! relies on the same). A mismatch of the guest address is always caught by the compare, so a
//! stale or bogus pair costs a miss, never a wrong jump.
//!
//! **Depth.** The host stack holds at most [`MAX_PAIRS`] pairs per entry (16 bytes each, which
//! keeps `rsp` 16-byte aligned for handler calls): a CALL finding `rsp` at the floor the entry
//! stub computed pushes nothing and takes its plain exit.

#![allow(clippy::useless_conversion)]

use super::Layout;
use dynasmrt::x64::X64Relocation;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler};
use emu::decoded::Instr;
use iced_x86::Code;

type Asm = VecAssembler<X64Relocation>;

/// Pairs the host stack holds at most during one entry into translated code (32 KiB).
pub const MAX_PAIRS: i32 = 2048;

/// The guest address of the sentinel pair at the bottom of the host stack: not canonical, so no
/// RET's target equals it in practice (if one did, the sentinel's host address is the "bail"
/// path, which hands the RIP to the run loop: still correct).
const SENTINEL: i64 = 0x8000_0000_0000_0000_u64 as i64;

/// What a block's last instruction means for the shadow stack (64-bit code only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A near CALL: pushes a pair with this guest return address.
    Call {
        ret_rip: u64,
    },
    /// A near RET (with or without an immediate): predicted from the top pair.
    Ret,
    None,
}

/// The role of `block`'s last instruction `last` in a block of `bits`-bit code ending in a branch.
pub fn role(last: &Instr, bits64: bool) -> Role {
    if !bits64 {
        return Role::None;
    }
    match Code::try_from(last.code as usize) {
        Ok(Code::Call_rel32_64 | Code::Call_rm64) => Role::Call { ret_rip: last.next_rip },
        Ok(Code::Retnq | Code::Retnq_imm16) => Role::Ret,
        _ => Role::None,
    }
}

/// Entry stub part (after the callee-saved registers are saved and `rsp` is 16-byte aligned,
/// `rbx` = the context): saves `rsp` for the exit stub, sets the depth floor, and pushes the
/// sentinel pair, whose host address is `bail`.
pub fn emit_entry(a: &mut Asm, l: &Layout, bail: DynamicLabel) {
    dynasm!(a
        ; .arch x64
        ; mov [rbx + l.ctx_host_rsp], rsp
        ; lea rax, [rsp - MAX_PAIRS * 16]
        ; mov [rbx + l.ctx_ret_floor], rax
        ; mov rax, QWORD SENTINEL
        ; push rax
        ; lea rax, [=>bail]
        ; push rax
    );
}

/// Exit stub part: back to the `rsp` the entry saved (every pair left is dropped).
pub fn emit_exit(a: &mut Asm, l: &Layout) {
    dynasm!(a ; .arch x64 ; mov rsp, [rbx + l.ctx_host_rsp]);
}

/// At the end of a CALL block, on the path where RIP is the call's target, right before that
/// path's exit `target` (a chain site or the indirect lookup): pushes the pair (`ret_rip`, the
/// return point) and enters `target` with a host `call`, unless the host stack is at its floor
/// (then straight to `target`). Emits the return point: a hit counted, then a chain site for
/// `ret_rip` leading to `ret_unlinked` until linked. Returns the chain site's offset.
pub fn emit_call_push(
    a: &mut Asm,
    l: &Layout,
    ret_rip: u64,
    target: DynamicLabel,
    ret_unlinked: DynamicLabel,
) -> usize {
    dynasm!(a
        ; .arch x64
        ; cmp rsp, [rbx + l.ctx_ret_floor]
        ; jbe =>target
    );
    match i32::try_from(ret_rip as i64) {
        // `push imm32` sign-extends: user code and the kernel's upper 2 GiB both fit.
        Ok(imm) => dynasm!(a ; .arch x64 ; push imm),
        Err(_) => dynasm!(a ; .arch x64 ; mov rcx, QWORD ret_rip as i64 ; push rcx),
    }
    dynasm!(a
        ; .arch x64
        ; call =>target
        // The return point: a RET matched this pair and dropped it (`ret 8`).
        ; inc QWORD [rbx + l.ctx_ret_hits]
    );
    let site = a.offset().0;
    dynasm!(a ; .arch x64 ; jmp =>ret_unlinked);
    site
}

/// At the end of a RET block, with the popped RIP in `rax` (`cpu.state` written back and
/// `retired` counted): to the top pair's return point if its guest address is `rax`, else a
/// miss counted and on to the code that follows (the indirect-branch lookup).
pub fn emit_ret_predict(a: &mut Asm, l: &Layout) {
    let miss = a.new_dynamic_label();
    dynasm!(a
        ; .arch x64
        ; cmp rax, [rsp + 8]
        ; jne =>miss
        ; ret 8
        ; =>miss
        ; inc QWORD [rbx + l.ctx_ret_misses]
    );
}
