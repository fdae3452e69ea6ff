//! The x86-64 backend: instruction selection and encoding with dynasm-rs. Everything else
//! (promotion, chaining bookkeeping, invalidation) is in the host-independent front end
//! (`jit/mod.rs`).
//!
//! Register use inside generated code: `rbx` = the run's [`RunCtx`](super::RunCtx), `rbp` = the
//! `Cpu`; both callee-saved, so they survive the handler calls. The stack is 16-byte aligned
//! at every call.
//!
//! A translation's result (in `rax` when it leaves through the exit stub): 0 = dispatch (RIP
//! is current; the block-entry check failed or the block ended in an indirect branch),
//! 1 = stop (the trampoline left an outcome in `ctx.stop`), anything else = the host address
//! of an unlinked chain site whose guest target is now in RIP: the front end looks the target
//! up and patches the site's `jmp rel32` to the target's entry.

use super::host::call_handler;
use super::Layout;
use dynasmrt::x64::X64Relocation;
use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi, VecAssembler};
use emu::cache::Block;

/// Offsets of the shared stubs at the start of code memory.
#[derive(Clone, Copy, Debug)]
pub struct Stubs {
    /// Returns `rax` to the caller of the entry stub (offset 0).
    pub exit: usize,
    /// Returns 1 (stop).
    pub leave: usize,
    /// Returns 0 (dispatch).
    pub bail: usize,
}

/// Result codes (see the module doc).
pub const RESULT_DISPATCH: u64 = 0;
pub const RESULT_STOP: u64 = 1;

/// Bit 31 of the trampoline's `info`: the instruction is a block-ending branch.
pub const INFO_BRANCH: u32 = 1 << 31;

/// Opcode of `jmp rel32`, the patchable chain instruction.
const JMP_REL32: u8 = 0xe9;

/// The entry stub (at offset 0, `host::EnterFn`) and the shared exits, assembled for code
/// memory at host address `base`.
pub fn emit_stubs(base: usize) -> (Vec<u8>, Stubs) {
    let mut a = VecAssembler::<X64Relocation>::new(base);
    dynasm!(a
        ; .arch x64
        // On entry rsp = 8 mod 16; six pushes and 8 more make it 0 mod 16 for the calls.
        ; push rbx
        ; push rbp
        ; push r12
        ; push r13
        ; push r14
        ; push r15
        ; sub rsp, 8
        ; mov rbx, rdi
        ; mov rbp, [rdi]
        ; jmp rsi
    );
    let exit = a.offset().0;
    dynasm!(a
        ; .arch x64
        ; add rsp, 8
        ; pop r15
        ; pop r14
        ; pop r13
        ; pop r12
        ; pop rbp
        ; pop rbx
        ; ret
    );
    let leave = a.offset().0;
    dynasm!(a
        ; .arch x64
        ; mov eax, RESULT_STOP as i32
        ; jmp extern base + exit
    );
    let bail = a.offset().0;
    dynasm!(a
        ; .arch x64
        ; xor eax, eax
        ; jmp extern base + exit
    );
    let code = a.finalize().expect("the stubs use no unresolved labels");
    (code, Stubs { exit, leave, bail })
}

/// Compiles `block` for host address `at` (the code is linked for that address). `successors`: guest RIPs the block may end at whose
/// exits get a chain site (any other RIP goes to the dispatcher).
pub fn compile(block: &Block, successors: &[u64], at: usize, base: usize, stubs: &Stubs, l: &Layout) -> Vec<u8> {
    let mut a = VecAssembler::<X64Relocation>::new(at);
    let leave = base + stubs.leave;
    let bail = base + stubs.bail;
    let exit = base + stubs.exit;
    // The block-entry check: the instruction budget (so limits are exact, as tier 0 checks
    // before each block) and the TLB generation (links are made by linear address).
    dynasm!(a
        ; .arch x64
        ; mov rax, [rbp + l.retired]
        ; cmp rax, [rbx + l.ctx_limit]
        ; jae extern bail
        ; mov rax, [rbp + l.tlb_generation]
        ; cmp rax, [rbx + l.ctx_generation]
        ; jne extern bail
        // RF is cleared once per block, as tier 0's `run_block` does.
        ; and QWORD [rbp + l.rflags_other], !(emu::state::rflags::RF as i32)
    );
    let n = block.instrs.len();
    for (i, e) in block.instrs.iter().enumerate() {
        let mut info = i as u32;
        if i + 1 == n && block.ends_in_branch {
            info |= INFO_BRANCH;
        }
        dynasm!(a
            ; .arch x64
            ; mov rdi, rbx
            ; mov rsi, QWORD e as *const _ as i64
            ; mov edx, info as i32
            ; mov rax, QWORD call_handler as *const () as i64
            ; call rax
            ; test eax, eax
            ; jnz extern leave
        );
    }
    dynasm!(a
        ; .arch x64
        ; add QWORD [rbp + l.retired], n as i32
    );
    if !block.ends_in_branch {
        dynasm!(a
            ; .arch x64
            ; mov rax, QWORD block.end_rip as i64
            ; mov [rbp + l.rip], rax
        );
    }
    dynasm!(a
        ; .arch x64
        ; mov rax, [rbp + l.rip]
    );
    let mut site_labels = Vec::new();
    for &s in successors {
        let unlinked = a.new_dynamic_label();
        let next = a.new_dynamic_label();
        dynasm!(a
            ; .arch x64
            ; mov rcx, QWORD s as i64
            ; cmp rax, rcx
            ; jne =>next
        );
        site_labels.push((a.offset().0, unlinked));
        dynasm!(a
            ; .arch x64
            ; jmp =>unlinked
            ; =>next
        );
    }
    dynasm!(a
        ; .arch x64
        ; jmp extern bail
    );
    let mut sites = Vec::new();
    for (site, unlinked) in site_labels {
        let site_label = a.new_dynamic_label();
        a.labels_mut().define_dynamic(site_label, dynasmrt::AssemblyOffset(site)).expect("a new label");
        dynasm!(a
            ; .arch x64
            ; =>unlinked
            ; lea rax, [=>site_label]
            ; jmp extern exit
        );
        sites.push(site);
    }
    let code = a.finalize().expect("every label is defined");
    for &s in &sites {
        assert_eq!(code[s], JMP_REL32, "chain sites are jmp rel32");
    }
    code
}

/// Points the `jmp rel32` at offset `site` of `code` (the code memory) to offset `target`.
pub fn patch_jump(code: &mut [u8], site: usize, target: usize) {
    let rel = (target as i64 - (site as i64 + 5)) as i32;
    code[site + 1..site + 5].copy_from_slice(&rel.to_le_bytes());
}

/// Where the `jmp rel32` at offset `site` of `code` goes now.
pub fn jump_target(code: &[u8], site: usize) -> usize {
    let rel = i32::from_le_bytes(code[site + 1..site + 5].try_into().expect("four bytes"));
    (site as i64 + 5 + rel as i64) as usize
}
