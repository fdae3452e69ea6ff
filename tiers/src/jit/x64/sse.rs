//! The x86-64 backend's SSE/SSE2 forms ([`super::super::sse`]): the guest XMM registers are
//! operated on in place in `cpu.state.xmm` through the host's `xmm0` (the XMM register) and
//! `xmm1` (the other operand), both caller-saved and used by nothing else in generated code.
//!
//! Checks, in tier 0's order: the SSE availability check (`CR0.EM`/`CR0.TS` clear,
//! `CR4.OSFXSR` set) made by the first form of a run of consecutive inline SSE forms (nothing
//! in such a run can change CR0 or CR4); a 16-byte memory operand's alignment (#GP) and the
//! inline TLB probe; then, for floating-point forms, that every exception is masked in the
//! guest's MXCSR. Any check that fails goes to the instruction's handler, which raises what
//! tier 0 raises, with nothing changed before.
//!
//! MXCSR: a run's floating-point forms execute under the guest's MXCSR, loaded once at the
//! first (`stmxcsr` of the host's into `RunCtx::host_mxcsr`, `ldmxcsr` of the guest's)
//! and stored back at the run's end, which merges the sticky exception flags the host set into
//! `cpu.state.mxcsr`; the host's is then reloaded. A handler called inside the run (a miss)
//! gets the guest's MXCSR stored first and the host's loaded, and the guest's is loaded again
//! after it, so Rust code never runs under the guest's MXCSR. Integer forms and moves do not
//! depend on MXCSR, so they sit inside a run unchanged.

use super::super::sse::{Other, SseForm, SseKind};
use super::super::Layout;
use super::{cached, emit_call, emit_ea, emit_probe, get, put, reload, spill, Asm, RegCache, Site};
use crate::jit::forms::Form;
use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi};
use emu::cpu::Cpu;
use emu::mmu::tlb::layout as tlb_layout;
use emu::state::{ctrl, CpuState};

/// Offsets (from `rbp` = `Cpu`, and `host_mxcsr` from `rbx` = `RunCtx`) of what the SSE
/// forms read.
struct SseLayout {
    host_mxcsr: i32,
    xmm: i32,
    mxcsr: i32,
    cr0: i32,
    cr4: i32,
}

impl SseLayout {
    fn new() -> SseLayout {
        use std::mem::offset_of;
        let state = offset_of!(Cpu, state);
        let at = |o: usize| i32::try_from(state + o).expect("a Cpu is smaller than 2 GiB");
        SseLayout {
            host_mxcsr: i32::try_from(offset_of!(crate::jit::RunCtx, host_mxcsr)).expect("a small struct"),
            xmm: at(offset_of!(CpuState, xmm)),
            mxcsr: at(offset_of!(CpuState, mxcsr)),
            cr0: at(offset_of!(CpuState, cr0)),
            cr4: at(offset_of!(CpuState, cr4)),
        }
    }
    fn xmm(&self, r: u8) -> i32 {
        self.xmm + 16 * i32::from(r)
    }
}

/// Whether the host runs under the guest's MXCSR at this point of the block being compiled.
#[derive(Clone, Copy, Default)]
pub struct MxState {
    pub guest: bool,
}

fn is_sse(f: Option<&Option<Form>>) -> bool {
    matches!(f, Some(Some(Form::Sse(_))))
}

/// Host MXCSR saved in the run context (not at `[rsp]`: the shadow stack's top pair is
/// there), the guest's loaded.
fn enter(a: &mut Asm, s: &SseLayout) {
    dynasm!(a ; .arch x64 ; stmxcsr DWORD [rbx + s.host_mxcsr] ; ldmxcsr DWORD [rbp + s.mxcsr]);
}

/// The guest's MXCSR (with the flags the host set) stored, the host's reloaded.
fn leave(a: &mut Asm, s: &SseLayout) {
    dynasm!(a ; .arch x64 ; stmxcsr DWORD [rbp + s.mxcsr] ; ldmxcsr DWORD [rbx + s.host_mxcsr]);
}

/// Emits SSE form `f` (instruction `i` of `forms`). `mx` is the MXCSR state before it and
/// after it; a run's last form restores the host's MXCSR.
#[allow(clippy::too_many_arguments)]
pub fn emit(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    x: Site,
    f: SseForm,
    forms: &[Option<Form>],
    i: usize,
    mx: &mut MxState,
) {
    let s = SseLayout::new();
    let (miss, done) = (a.new_dynamic_label(), a.new_dynamic_label());
    let before = *mx;
    // Every register the hit path reads is loaded before the first branch to the miss path.
    for g in f.gprs() {
        if g < 16 {
            cached(a, l, rc, g);
        }
    }
    // Whether anything branches to the miss path (register moves and integer forms inside a
    // run have none).
    let checks = i == 0 || !is_sse(forms.get(i - 1));
    let mut branches = checks || matches!(f.other, Other::Mem(_));
    if checks {
        // CR0.EM | CR0.TS (bits 2, 3) clear and CR4.OSFXSR (bit 9) set.
        const _: () = assert!(ctrl::CR0_EM == 4 && ctrl::CR0_TS == 8 && ctrl::CR4_OSFXSR == 1 << 9);
        dynasm!(a
            ; .arch x64
            ; test BYTE [rbp + s.cr0], 0x0c
            ; jnz =>miss
            ; test BYTE [rbp + s.cr4 + 1], 2
            ; jz =>miss
        );
    }
    // The memory operand's host address in rax (after the alignment check and the probe).
    let mem = |a: &mut Asm, rc: &mut RegCache, size: u8, aligned: bool, write: bool| {
        if let Other::Mem(ea) = f.other {
            emit_ea(a, l, rc, ea);
            if aligned {
                dynasm!(a ; .arch x64 ; test al, 15 ; jnz =>miss);
            }
            let tag = if write { tlb_layout::WRITE_TAG } else { tlb_layout::READ_TAG };
            emit_probe(a, l, x.user, size, tag as i32, miss);
        }
    };
    let pre = *rc;
    let d = s.xmm(f.xmm);
    match f.kind {
        SseKind::Op { prefix, opcode, fp, size } => {
            match f.other {
                Other::Xmm(r) => dynasm!(a ; .arch x64 ; movdqu xmm1, [rbp + s.xmm(r)]),
                _ => {
                    mem(a, rc, size, size == 16, false);
                    match size {
                        4 => dynasm!(a ; .arch x64 ; movd xmm1, DWORD [rax]),
                        8 => dynasm!(a ; .arch x64 ; movq xmm1, QWORD [rax]),
                        _ => dynasm!(a ; .arch x64 ; movdqu xmm1, [rax]),
                    }
                }
            }
            if fp {
                branches = true;
                // Every exception masked (MXCSR bits 7-12): the host raises none. The masks in
                // `cpu.state.mxcsr` are current inside a run (only the flags lag).
                dynasm!(a
                    ; .arch x64
                    ; mov ecx, [rbp + s.mxcsr]
                    ; and ecx, 0x1f80
                    ; cmp ecx, 0x1f80
                    ; jne =>miss
                );
                if !mx.guest {
                    enter(a, &s);
                    mx.guest = true;
                }
            }
            dynasm!(a ; .arch x64 ; movdqu xmm0, [rbp + d]);
            // `op xmm0, xmm1`: the guest's own instruction on host registers.
            if prefix != 0 {
                a.push(prefix);
            }
            a.push(0x0f);
            a.push(opcode);
            a.push(0xc1);
            dynasm!(a ; .arch x64 ; movdqu [rbp + d], xmm0);
        }
        SseKind::Load { size, aligned } => {
            match (f.other, size) {
                (Other::Xmm(r), 16) => dynasm!(a ; .arch x64 ; movdqu xmm0, [rbp + s.xmm(r)] ; movdqu [rbp + d], xmm0),
                (Other::Xmm(r), _) => dynasm!(a ; .arch x64 ; mov rax, [rbp + s.xmm(r)] ; mov [rbp + d], rax),
                (Other::Gpr(g), 8) => {
                    get(a, l, rc, g, 0, true);
                    dynasm!(a ; .arch x64 ; mov [rbp + d], rax);
                }
                (Other::Gpr(g), _) => {
                    get(a, l, rc, g, 0, false);
                    dynasm!(a ; .arch x64 ; mov [rbp + d], rax);
                }
                (Other::Mem(_), _) => {
                    mem(a, rc, size, aligned, false);
                    match size {
                        16 => dynasm!(a ; .arch x64 ; movdqu xmm0, [rax] ; movdqu [rbp + d], xmm0),
                        8 => dynasm!(a ; .arch x64 ; mov rax, [rax] ; mov [rbp + d], rax),
                        _ => dynasm!(a ; .arch x64 ; mov eax, [rax] ; mov [rbp + d], rax),
                    }
                }
            }
            if size != 16 {
                // The rest of the register is zeroed.
                dynasm!(a ; .arch x64 ; mov QWORD [rbp + d + 8], 0);
            }
        }
        SseKind::Merge { size } => {
            if let Other::Xmm(r) = f.other {
                if size == 8 {
                    dynasm!(a ; .arch x64 ; mov rax, [rbp + s.xmm(r)] ; mov [rbp + d], rax);
                } else {
                    dynasm!(a ; .arch x64 ; mov eax, [rbp + s.xmm(r)] ; mov [rbp + d], eax);
                }
            }
        }
        SseKind::Store { size, aligned } => match f.other {
            Other::Gpr(g) => {
                if size == 8 {
                    dynasm!(a ; .arch x64 ; mov rax, [rbp + d]);
                } else {
                    dynasm!(a ; .arch x64 ; mov eax, [rbp + d]);
                }
                put(a, l, rc, g, 0);
            }
            _ => {
                mem(a, rc, size, aligned, true);
                match size {
                    16 => dynasm!(a ; .arch x64 ; movdqu xmm0, [rbp + d] ; movdqu [rax], xmm0),
                    8 => dynasm!(a ; .arch x64 ; mov rcx, [rbp + d] ; mov [rax], rcx),
                    _ => dynasm!(a ; .arch x64 ; mov ecx, [rbp + d] ; mov [rax], ecx),
                }
            }
        },
    }
    // The end of a run: the host's MXCSR back.
    let run_ends = !is_sse(forms.get(i + 1));
    if run_ends && mx.guest {
        leave(a, &s);
    }
    if run_ends {
        mx.guest = false;
    }
    if !branches {
        return;
    }
    dynasm!(a ; .arch x64 ; jmp =>done ; =>miss);
    // The miss path: the handler under the host's MXCSR, with the guest's in `cpu.state`.
    spill(a, l, &pre);
    if before.guest {
        leave(a, &s);
    }
    emit_call(a, x.e, x.info, x.leave);
    if mx.guest {
        enter(a, &s);
    }
    reload(a, l, rc);
    dynasm!(a ; .arch x64 ; =>done);
}
