//! The x86-64 backend's x87 forms: the direct handler call of a register-stack form (sixth
//! round, part X: [`emit_x87_call`]), and the forms done inline on the register file with that
//! call as their fallback: the stack moves (part Y, [`emit_x87_move`]) and the register-stack
//! arithmetic around one x87float call (part Z, [`emit_x87_arith`]). Each inline form first
//! makes [`emit_x87_fast_checks`]; any failing check goes to the direct call before any write.

use super::*;

/// Part X (sixth round): an x87 register-stack form's handler called directly, without the
/// trampoline's checks; only if it faulted (having changed nothing) does the trampoline run it
/// again to record the fault (jit/x87.rs). The caller has spilled the cached registers.
pub(super) fn emit_x87_call(a: &mut Asm, x: Site) {
    let ran = a.new_dynamic_label();
    dynasm!(a
        ; .arch x64
        ; mov rdi, rbp
        ; mov rsi, QWORD x.e as *const _ as i64
        ; mov rax, QWORD call_x87 as *const () as i64
        ; call rax
        ; test eax, eax
        ; jz =>ran
    );
    emit_call(a, x.e, x.info, x.leave);
    dynasm!(a ; .arch x64 ; =>ran);
}

/// The checks an inline x87 form makes first (parts Y and Z): protected mode outside
/// virtual-8086 with CR0.EM = TS = 0, and no exception flag in FSW left unmasked by FCW (a #MF
/// may be pending: the handler decides); any failing one jumps to `slow`, before any write.
fn emit_x87_fast_checks(a: &mut Asm, l: &Layout, slow: dynasmrt::DynamicLabel) {
    const CR0_CHECKED: i32 = (ctrl::CR0_PE | ctrl::CR0_EM | ctrl::CR0_TS) as i32;
    const VM_BIT: i8 = emu::rflags::VM.trailing_zeros() as i8;
    dynasm!(a
        ; .arch x64
        ; mov rax, [rbp + l.cr0]
        ; and eax, CR0_CHECKED
        ; cmp eax, ctrl::CR0_PE as i32
        ; jne =>slow
        ; mov rax, [rbp + l.rflags_other]
        ; bt rax, VM_BIT
        ; jc =>slow
        // An exception flag left unmasked: #MF may be pending (the handler decides).
        ; movzx eax, WORD [rbp + l.fpu_fcw]
        ; not eax
        ; and ax, [rbp + l.fpu_fsw]
        ; test al, 0x3f
        ; jnz =>slow
    );
}

/// For [`emit_x87_arith`], with r9d = 2 * TOP: the value of ST(i) (`i2` = 2 * i) into host
/// registers `signif` (64-bit) and `sign_exp` (zero-extended), given by number; an empty
/// register (a stack underflow) jumps to `slow`. Clobbers rax and rcx before the loads.
fn emit_x87_operand(a: &mut Asm, l: &Layout, i2: i32, (signif, sign_exp): (u8, u8), slow: dynasmrt::DynamicLabel) {
    let regs = l.fpu_regs;
    dynasm!(a
        ; .arch x64
        ; lea ecx, [r9 + i2]
        ; and ecx, 14
        ; movzx eax, WORD [rbp + l.fpu_ftw]
        ; shr eax, cl
        ; not eax
        ; test al, 3
        ; jz =>slow
        ; mov Rq(signif), [rbp + rcx * 8 + regs]
        ; movzx Rd(sign_exp), WORD [rbp + rcx * 8 + regs + 8]
    );
}

/// Part Z (seventh round): an x87 register-stack arithmetic form (FADD/FMUL/FSUB/FSUBR/FDIV/
/// FDIVR ST(i) forms, their pops, FSQRT) done inline but for the x87float operation
/// (`x87::arith_value`, the handler's). Taken under part Y's conditions (protected mode, not
/// virtual-8086, CR0.EM = TS = 0, no unmasked exception flag in FSW) with both operands in use
/// (no stack underflow) and when the operation raises no unmasked exception (its "decline"
/// bit); then it does what `exec_farith_*`/`exec_funary` do there: the flags merged into FSW,
/// C1 = rounded up, the result and its tag, the pop, FIP = the offset and FCS = 0. Anything
/// else branches, before any write, to the handler's direct call, which does it exactly. The
/// caller has spilled the cached registers (the call clobbers the caller-saved ones).
pub(super) fn emit_x87_arith(a: &mut Asm, l: &Layout, x: Site, op: crate::jit::x87::Arith) {
    use crate::jit::x87::{ARITH_C1_BIT, ARITH_DECLINE_BIT, ARITH_FLAGS_SHIFT, ARITH_TAG_SHIFT};
    let slow = a.new_dynamic_label();
    let done = a.new_dynamic_label();
    let regs = l.fpu_regs;
    let (dest2, src2) = (2 * i32::from(op.dest), 2 * i32::from(op.src));
    emit_x87_fast_checks(a, l, slow);
    dynasm!(a
        ; .arch x64
        // r9d = 2 * TOP (the tag word's shift for ST(0)).
        ; movzx r9d, WORD [rbp + l.fpu_fsw]
        ; shr r9d, 10
        ; and r9d, 14
    );
    // The destination (first operand) into rdi, rsi; the source into rdx, rcx.
    emit_x87_operand(a, l, dest2, (7, 6), slow);
    emit_x87_operand(a, l, src2, (2, 1), slow);
    dynasm!(a
        ; .arch x64
        ; movzx r8d, WORD [rbp + l.fpu_fcw]
        ; mov rax, QWORD op.value as *const () as i64
        ; call rax
        // rax = the significand; rdx = sign and exponent, flags, C1, tag, decline.
        ; bt edx, ARITH_DECLINE_BIT as i8
        ; jc =>slow
        ; movzx ecx, WORD [rbp + l.fpu_fsw]
        ; shr ecx, 10
        ; add ecx, dest2
        ; and ecx, 14
        ; mov [rbp + rcx * 8 + regs], rax
        // Sign and exponent, the padding zeroed (`stack::to_reg`).
        ; movzx eax, dx
        ; mov [rbp + rcx * 8 + regs + 8], rax
        ; mov eax, 3
        ; shl eax, cl
        ; not eax
        ; and [rbp + l.fpu_ftw], ax
        ; mov eax, edx
        ; shr eax, ARITH_TAG_SHIFT as i8
        ; and eax, 3
        ; shl eax, cl
        ; or [rbp + l.fpu_ftw], ax
        // FSW: the flags ORed in, C1 replaced.
        ; movzx ecx, WORD [rbp + l.fpu_fsw]
        ; and ecx, !0x200 & 0xffff
        ; mov eax, edx
        ; shr eax, ARITH_FLAGS_SHIFT as i8
        ; and eax, 0x3f
        ; or ecx, eax
        ; shr edx, ARITH_C1_BIT as i8
        ; and edx, 1
        ; shl edx, 9
        ; or ecx, edx
    );
    if op.pop {
        dynasm!(a
            ; .arch x64
            // ST(0) tagged empty, TOP + 1 (ecx = FSW).
            ; mov edx, ecx
            ; shr edx, 10
            ; and edx, 14
            ; xchg ecx, edx
            ; mov eax, 3
            ; shl eax, cl
            ; or [rbp + l.fpu_ftw], ax
            ; mov ecx, edx
            ; add edx, 0x800
            ; and edx, 0x3800
            ; and ecx, !0x3800 & 0xffff
            ; or ecx, edx
        );
    }
    dynasm!(a
        ; .arch x64
        ; mov [rbp + l.fpu_fsw], cx
        ; mov rax, QWORD x.e.rip() as i64
        ; mov [rbp + l.fpu_fip], rax
        ; mov WORD [rbp + l.fpu_fcs], 0
        ; jmp =>done
        ; =>slow
    );
    emit_x87_call(a, x);
    dynasm!(a ; .arch x64 ; =>done);
}

/// Part Y (seventh round): an x87 stack move (FLD ST(i), FLD1, FLDZ, FSTP ST(0)) done on the
/// register file in rax, rcx and rdx only, so the cached guest registers stay in their host
/// registers. It is what the handler does when nothing unusual is in the way: protected mode
/// (not virtual-8086), CR0.EM = TS = 0, no unmasked exception flag set in FSW (no #MF can be
/// pending), no stack overflow or underflow, and for FLD ST(i) a source whose tag would be
/// "valid" (a normal finite value: exponent 1..7FFE, integer bit set). Then the handler's
/// effects are: the value and its tag written, TOP moved, C1 = 0, FIP = the instruction's
/// offset, FCS = 0 (`emu::interp::x87::{load_store, constants, retire}`). Anything else
/// branches, before any write, to the direct handler call, which does it exactly.
pub(super) fn emit_x87_move(a: &mut Asm, l: &Layout, rc: &RegCache, x: Site, m: crate::jit::x87::StackMove) {
    use crate::jit::x87::StackMove;
    let slow = a.new_dynamic_label();
    let done = a.new_dynamic_label();
    // FSW's TOP (bits 13:11) and C1 (bit 9).
    const FSW_KEEP: i32 = !(0x3800 | 0x200) & 0xffff;
    let regs = l.fpu_regs;
    emit_x87_fast_checks(a, l, slow);
    dynasm!(a
        ; .arch x64
        // ecx = 2 * TOP (the tag word's shift for ST(0); FSW bit 10 (C2) drops out of the mask).
        ; movzx ecx, WORD [rbp + l.fpu_fsw]
        ; shr ecx, 10
    );
    match m {
        StackMove::PopSt0 => {
            dynasm!(a
                ; .arch x64
                ; and ecx, 14
                // ST(0) empty: stack underflow.
                ; movzx edx, WORD [rbp + l.fpu_ftw]
                ; shr edx, cl
                ; not edx
                ; test dl, 3
                ; jz =>slow
                // Tag ST(0) empty, TOP + 1, C1 = 0.
                ; mov edx, 3
                ; shl edx, cl
                ; or [rbp + l.fpu_ftw], dx
                ; add ecx, 2
                ; and ecx, 14
            );
        }
        StackMove::LoadSt(_) | StackMove::LoadConst { .. } => {
            dynasm!(a
                ; .arch x64
                // ecx = 2 * (TOP - 1): the new ST(0), the old ST(7); in use: stack overflow.
                ; add ecx, 14
                ; and ecx, 14
                ; movzx edx, WORD [rbp + l.fpu_ftw]
                ; shr edx, cl
                ; not edx
                ; test dl, 3
                ; jnz =>slow
            );
            let tag = match m {
                StackMove::LoadSt(i) => {
                    // ST(i) is ST(i + 1) after the push.
                    let src = 2 + 2 * i32::from(i);
                    dynasm!(a
                        ; .arch x64
                        ; lea eax, [rcx + src]
                        ; and eax, 14
                        ; xchg eax, ecx
                        // eax = 2 * new TOP, ecx = 2 * the source's physical number.
                        ; movzx edx, WORD [rbp + l.fpu_ftw]
                        ; shr edx, cl
                        ; not edx
                        ; test dl, 3
                        ; jz =>slow
                        // Only a normal finite value (tag "valid") here.
                        ; mov rdx, [rbp + rcx * 8 + regs]
                        ; bt rdx, 63
                        ; jnc =>slow
                        ; movzx edx, WORD [rbp + rcx * 8 + regs + 8]
                        ; and edx, 0x7fff
                        ; dec edx
                        ; cmp edx, 0x7ffd
                        ; ja =>slow
                        ; mov rdx, [rbp + rcx * 8 + regs]
                        ; mov [rbp + rax * 8 + regs], rdx
                        ; movzx edx, WORD [rbp + rcx * 8 + regs + 8]
                        ; mov [rbp + rax * 8 + regs + 8], rdx
                        ; mov ecx, eax
                    );
                    crate::jit::x87::TAG_VALID
                }
                StackMove::LoadConst { signif, sign_exp, tag } => {
                    dynasm!(a
                        ; .arch x64
                        ; mov rdx, QWORD signif as i64
                        ; mov [rbp + rcx * 8 + regs], rdx
                        ; mov edx, i32::from(sign_exp)
                        ; mov [rbp + rcx * 8 + regs + 8], rdx
                    );
                    tag
                }
                StackMove::PopSt0 => unreachable!("matched above"),
            };
            // The new ST(0)'s tag.
            dynasm!(a
                ; .arch x64
                ; mov edx, 3
                ; shl edx, cl
                ; not edx
                ; and [rbp + l.fpu_ftw], dx
            );
            if tag != 0 {
                dynasm!(a
                    ; .arch x64
                    ; mov edx, i32::from(tag)
                    ; shl edx, cl
                    ; or [rbp + l.fpu_ftw], dx
                );
            }
        }
    }
    // ecx = 2 * the new TOP: FSW's TOP and C1 = 0; FIP = the offset, FCS = 0 (`retire`).
    dynasm!(a
        ; .arch x64
        ; shl ecx, 10
        ; movzx edx, WORD [rbp + l.fpu_fsw]
        ; and edx, FSW_KEEP
        ; or edx, ecx
        ; mov [rbp + l.fpu_fsw], dx
        ; mov rax, QWORD x.e.rip() as i64
        ; mov [rbp + l.fpu_fip], rax
        ; mov WORD [rbp + l.fpu_fcs], 0
        ; jmp =>done
        ; =>slow
    );
    spill(a, l, rc);
    emit_x87_call(a, x);
    reload(a, l, rc);
    dynasm!(a ; .arch x64 ; =>done);
}
