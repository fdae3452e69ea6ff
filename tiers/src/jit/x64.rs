//! The x86-64 backend ([`X64`], the [`Backend`] of x86-64 hosts): instruction selection and
//! encoding with dynasm-rs. Everything else (promotion, chaining bookkeeping, invalidation) is
//! in the host-independent front end (`jit/mod.rs`).
//!
//! Register use inside generated code: `rbx` = the run's [`RunCtx`](super::RunCtx), `rbp` = the
//! `Cpu`; both callee-saved, so they survive the handler calls. The stack is 16-byte aligned
//! at every call.
//! The host stack also holds RET prediction's pairs (16 bytes each, [`super::shadow`]); the
//! exit stub goes back to the `rsp` the entry stub saved.
//! Guest registers without a host register in a block (`RegCache`) are read as the host
//! instruction's memory operand on their `cpu.state.gpr` slot where one takes it, and forms
//! whose destination has a host register work on it in place (sixth round, part G).
//!
//! A translation's result (in `rax` when it leaves through the exit stub): 0 = dispatch (RIP
//! is current; the block-entry check failed or the block ended in an indirect branch),
//! 1 = stop (the trampoline left an outcome in `ctx.stop`), 2 = an indirect branch's target
//! (in RIP) was not in the indirect-branch table (the front end fills its slot when it enters
//! the target's translation), anything else = the host address of an unlinked chain site whose
//! guest target is now in RIP: the front end looks the target up and patches the site's
//! `jmp rel32` to the target's entry.

// dynasm-rs expands a dynamic register (`Rq(h)`) to `h.into()`, which clippy flags for a `u8`.
#![allow(clippy::useless_conversion)]

mod region;
mod sse;
mod x87;

pub use region::compile_region;
use x87::{emit_x87_arith, emit_x87_call, emit_x87_move};

use super::backend::{Backend, CompileRequest, RegionMember, INFO_BRANCH, RESULT_INDIRECT, RESULT_STOP};
use super::forms::{self, Alu, Ea, Ext, Form, ShiftKind, Src};
use super::host::{call_handler, call_x87, lazy_cond, lazy_rflags};
use super::shadow::{self, Role};
use super::Layout;
use dynasmrt::x64::X64Relocation;
use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi, VecAssembler};
use emu::cache::Block;
use emu::decoded::{Instr, NO_REG};
use emu::mmu::tlb::{layout as tlb_layout, TLB_ENTRIES};
use emu::state::ctrl;

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

/// Opcode of `jmp rel32`, the patchable chain instruction.
const JMP_REL32: u8 = 0xe9;

/// The entry stub (at offset 0, `host::EnterFn`) and the shared exits, assembled for code
/// memory at host address `base`.
pub fn emit_stubs(base: usize, l: &Layout) -> (Vec<u8>, Stubs) {
    let mut a = VecAssembler::<X64Relocation>::new(base);
    // The shared exits come after the entry, whose sentinel pair names "bail": a label.
    let bail_label = a.new_dynamic_label();
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
    );
    shadow::emit_entry(&mut a, l, bail_label);
    dynasm!(a ; .arch x64 ; jmp rsi);
    let exit = a.offset().0;
    shadow::emit_exit(&mut a, l);
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
        ; =>bail_label
        ; xor eax, eax
        ; jmp extern base + exit
    );
    let code = a.finalize().expect("the stubs use no unresolved labels");
    (code, Stubs { exit, leave, bail })
}

/// Compiles `block` for host address `at` (the code is linked for that address). `successors`:
/// guest RIPs the block may end at whose exits get a chain site (any other RIP goes to the
/// dispatcher). `indirect`: the block ends in a near indirect branch, whose target is looked
/// up in the indirect-branch table inline. With `inline`, the forms of [`forms`] are emitted
/// inline (step 2); without, every instruction goes through the trampoline (step 1).
#[allow(clippy::too_many_arguments)]
pub fn compile(
    block: &Block,
    successors: &[u64],
    indirect: bool,
    at: usize,
    base: usize,
    stubs: &Stubs,
    l: &Layout,
    inline: bool,
) -> Vec<u8> {
    with_island_fallback(|| compile_once(block, successors, indirect, at, base, stubs, l, inline))
}

/// Runs `compile` (which returns `None` when a `jrcxz` could not reach its shared island,
/// part K) and, if it failed, again with an island beside every `jrcxz`, which always reaches.
pub(super) fn with_island_fallback<T>(mut compile: impl FnMut() -> Option<T>) -> T {
    if let Some(code) = compile() {
        return code;
    }
    SHARED_ISLANDS.with(|s| s.set(false));
    let code = compile();
    SHARED_ISLANDS.with(|s| s.set(true));
    code.expect("every label is defined and every jump reaches")
}

#[allow(clippy::too_many_arguments)]
fn compile_once(
    block: &Block,
    successors: &[u64],
    indirect: bool,
    at: usize,
    base: usize,
    stubs: &Stubs,
    l: &Layout,
    inline: bool,
) -> Option<Vec<u8>> {
    let mut a = VecAssembler::<X64Relocation>::new(at);
    let leave = base + stubs.leave;
    let bail = base + stubs.bail;
    let exit = base + stubs.exit;
    entry_check(&mut a, l, bail);
    let n = block.instrs.len();
    let bits64 = block.mode & 0xff == 64;
    // The TLB set of the block's privilege (the mode key holds the CPL in bits 8..).
    let user = block.mode >> 8 == 3;
    let forms: Vec<Option<Form>> =
        block.instrs.iter().map(|e| if inline { forms::form_of(e, bits64) } else { None }).collect();
    // A block branching back to its own start (64-bit code: RIP = linear address) loops
    // inside its translation with its registers kept in host registers: they are all loaded
    // once here, and the back edge makes the block-entry check itself.
    let self_loop = inline && bits64 && block.ends_in_branch && successors.contains(&block.la);
    let mut rc = RegCache::for_block(&forms, self_loop);
    let rc = &mut rc;
    // Flags dead at the head of such a loop: its back edge needs no lazy record.
    let loop_exit_only = self_loop && forms::flags_dead_at_entry(&forms);
    let head = a.new_dynamic_label();
    // Such a loop ending in a Jcc with no handler call in it (part F) counts its remaining
    // iterations down in r15 (r14: the count it started from; both free, at most six
    // registers cached), so its back edge keeps no count in memory and leaves the host flags
    // alone; its ways out add the iterations done to `retired` (`countdown_retire`).
    let countdown = self_loop && counts_down(&forms) && rc.allocated().count_ones() as usize <= HOST_POOL.len() - 2;
    if self_loop {
        let all = rc.allocated();
        reload(&mut a, l, &RegCache { loaded: all, ..*rc });
        // Dirty at the head: a later iteration may arrive with any of them changed.
        rc.loaded = all;
        rc.dirty = all;
        if countdown {
            countdown_setup(&mut a, l, n);
        }
        dynasm!(a ; .arch x64 ; =>head);
    }
    // Inline forms' miss paths, emitted after the exits so that hit paths fall through.
    let mut cold: Vec<Cold> = Vec::new();
    WAY1_CHECKS.with(|w| w.borrow_mut().clear());
    GROUP_FALLBACKS.with(|w| w.borrow_mut().clear());
    ISLANDS.with(|w| w.borrow_mut().clear());
    let (fl, group_slots) = emit_body(&mut a, l, rc, block, &forms, leave, user, &mut cold, loop_exit_only, inline);
    let mut site_labels = Vec::new();
    // RET prediction (`shadow`): a CALL pushes a pair on the path to its target, a RET tries
    // the top pair before the indirect-branch table.
    let role = match block.instrs.last() {
        Some(last) if block.ends_in_branch => shadow::role(last, bits64),
        _ => Role::None,
    };
    let call_ret = match role {
        Role::Call { ret_rip } => Some(ret_rip),
        _ => None,
    };
    let last = if block.ends_in_branch { forms.last().copied().flatten() } else { None };
    let end = block.instrs.last().map(|e| (e.imm, e.next_rip));
    match (last, end) {
        // The Jcc follows the flag setter whose record waits (part F): it branches on the
        // host flags, and each way writes the record if it needs it.
        (Some(Form::Jcc { cc }), Some((taken, fall))) if fl.deferred.is_some() => {
            let d = fl.deferred.expect("checked above");
            debug_assert_eq!(d.cc, cc);
            if self_loop {
                // The way out branches off; the back edge falls through (one taken branch
                // per iteration: its jump to the head).
                let out = a.new_dynamic_label();
                let other = if taken == block.la { fall } else { taken };
                emit_jcc(&mut a, if taken == block.la { cc ^ 1 } else { cc }, out);
                if countdown {
                    countdown_back_edge(&mut a, l, rc, n, block.la, head, bail, d, loop_exit_only);
                } else {
                    // The record's result now, its aux pending in r13 for `back_edge`, which
                    // completes it before the head or (flags dead there) on its exit only.
                    let pending = write_deferred(&mut a, l, d, true);
                    let fl = FlagState { pending, ..FlagState::unknown(loop_exit_only) };
                    back_edge(&mut a, l, rc, n, block.la, head, bail, &fl);
                }
                dynasm!(a ; .arch x64 ; =>out);
                write_deferred(&mut a, l, d, false);
                if countdown {
                    countdown_retire(&mut a, l, n);
                }
                leave_block(&mut a, l, rc, n, false);
                exit_to(&mut a, l, other, successors, &mut site_labels, bail, None);
            } else {
                if taken != fall {
                    let way = a.new_dynamic_label();
                    emit_jcc(&mut a, cc, way);
                    write_deferred(&mut a, l, d, false);
                    leave_block(&mut a, l, rc, n, false);
                    exit_to(&mut a, l, fall, successors, &mut site_labels, bail, None);
                    dynasm!(a ; .arch x64 ; =>way);
                }
                write_deferred(&mut a, l, d, false);
                leave_block(&mut a, l, rc, n, false);
                exit_to(&mut a, l, taken, successors, &mut site_labels, bail, None);
            }
        }
        // An inline Jcc left its outcome in r12b: each way stores its own RIP and leaves
        // through its chain site, or (the block's own start) takes the back edge.
        (Some(Form::Jcc { .. }), Some((taken, fall))) => {
            let back = a.new_dynamic_label();
            if self_loop {
                let other = if taken == block.la { fall } else { taken };
                dynasm!(a ; .arch x64 ; test r12b, r12b);
                if taken == block.la {
                    dynasm!(a ; .arch x64 ; jnz =>back);
                } else {
                    dynasm!(a ; .arch x64 ; jz =>back);
                }
                leave_block(&mut a, l, rc, n, fl.pending);
                exit_to(&mut a, l, other, successors, &mut site_labels, bail, None);
                dynasm!(a ; .arch x64 ; =>back);
                back_edge(&mut a, l, rc, n, block.la, head, bail, &fl);
            } else {
                leave_block(&mut a, l, rc, n, fl.pending);
                if taken != fall {
                    dynasm!(a ; .arch x64 ; test r12b, r12b ; jnz =>back);
                    exit_to(&mut a, l, fall, successors, &mut site_labels, bail, None);
                    dynasm!(a ; .arch x64 ; =>back);
                }
                exit_to(&mut a, l, taken, successors, &mut site_labels, bail, None);
            }
        }
        // An inline CALL (its miss path's handler sets the same RIP) ends as a JMP.
        (Some(Form::Jmp | Form::Call), Some((target, _))) => {
            // A JMP's setter right before it deferred its record (part E): written here, its
            // `aux` pending for a back edge as `write_record` would have left it.
            let fl = match fl.deferred {
                Some(d) => {
                    let pending = write_deferred(&mut a, l, d, self_loop && loop_exit_only);
                    FlagState { pending, ..FlagState::unknown(loop_exit_only) }
                }
                None => fl,
            };
            if self_loop {
                back_edge(&mut a, l, rc, n, block.la, head, bail, &fl);
            } else {
                leave_block(&mut a, l, rc, n, fl.pending);
                exit_to(&mut a, l, target, successors, &mut site_labels, bail, call_ret);
            }
        }
        _ if !block.ends_in_branch => {
            leave_block(&mut a, l, rc, n, fl.pending);
            exit_to(&mut a, l, block.end_rip, successors, &mut site_labels, bail, None);
        }
        // A branch through its handler (or an indirect one): RIP compared with the successors.
        _ => {
            if self_loop {
                let not_loop = a.new_dynamic_label();
                dynasm!(a
                    ; .arch x64
                    ; mov rax, [rbp + l.rip]
                    ; mov rcx, QWORD block.la as i64
                    ; cmp rax, rcx
                    ; jne =>not_loop
                );
                back_edge(&mut a, l, rc, n, block.la, head, bail, &fl);
                dynasm!(a ; .arch x64 ; =>not_loop);
            }
            leave_block(&mut a, l, rc, n, fl.pending);
            dynasm!(a
                ; .arch x64
                ; mov rax, [rbp + l.rip]
            );
            if indirect {
                if role == Role::Ret {
                    shadow::emit_ret_predict(&mut a, l);
                }
                if let Role::Call { ret_rip } = role {
                    let (lookup, ret_unlinked) = (a.new_dynamic_label(), a.new_dynamic_label());
                    site_labels.push((shadow::emit_call_push(&mut a, l, ret_rip, lookup, ret_unlinked), ret_unlinked));
                    dynasm!(a ; .arch x64 ; =>lookup);
                }
                emit_indirect_lookup(&mut a, l, block.mode, exit);
            }
            for &s in successors {
                let unlinked = a.new_dynamic_label();
                let next = a.new_dynamic_label();
                dynasm!(a
                    ; .arch x64
                    ; mov rcx, QWORD s as i64
                    ; cmp rax, rcx
                    ; jne =>next
                );
                match role {
                    // A CALL reaching its target (not `call $+5`, whose "return address" is popped).
                    Role::Call { ret_rip } if s != ret_rip => {
                        let (site, ret_unlinked) = (a.new_dynamic_label(), a.new_dynamic_label());
                        site_labels
                            .push((shadow::emit_call_push(&mut a, l, ret_rip, site, ret_unlinked), ret_unlinked));
                        dynasm!(a ; .arch x64 ; =>site);
                    }
                    _ => {}
                }
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
        }
    }
    finish(a, l, site_labels, cold, exit, group_slots)
}

/// The check tier 0 makes before each block, at a translation's entry: the instruction budget,
/// so limits are exact. A handler that changed the TLB generation (links are made by linear
/// address) or set RF (tier 0 clears it at the next block's start) sets the limit to 0
/// (`super::exec_one`), so this one compare also makes those entries leave to the run loop,
/// which clears RF before it enters translated code.
fn entry_check(a: &mut Asm, l: &Layout, bail: usize) {
    dynasm!(a
        ; .arch x64
        ; mov rax, [rbp + l.retired]
        ; cmp rax, [rbx + l.ctx_limit]
        ; jae extern bail
    );
    if l.count_entries {
        // `STRATA_JIT_COUNT`: the chain hit rate's base (issue 10, part D).
        dynasm!(a ; .arch x64 ; inc QWORD [rbx + l.ctx_block_entries]);
    }
}

/// A block's instructions, inline forms or handler calls, up to its end (which the caller
/// emits: the returned state says where the flags are). Miss paths go to `cold`.
#[allow(clippy::too_many_arguments)]
fn emit_body<'e>(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    block: &'e Block,
    forms: &[Option<Form>],
    leave: usize,
    user: bool,
    cold: &mut Vec<Cold<'e>>,
    loop_exit_only: bool,
    inline: bool,
) -> (FlagState, u8) {
    let n = block.instrs.len();
    let mut mx = sse::MxState::default();
    let mut fl = FlagState::unknown(loop_exit_only);
    // Shared probes (part P): the group slots whose first access was emitted inline, with no
    // handler call emitted since (a handler may change the TLB, the mappings, CR3). The miss
    // paths, out of line, empty the slots at run time instead (`emit_cold`).
    let groups = forms::probe_groups(forms);
    let mut live_groups = 0u8;
    // The slots this block's groups use: the ones its miss paths empty.
    let group_slots = groups.iter().flatten().fold(0u8, |m, g| m | 1 << g.slot);
    for (i, e) in block.instrs.iter().enumerate() {
        let mut info = i as u32;
        if i + 1 == n && block.ends_in_branch {
            info |= INFO_BRANCH;
        }
        let form = forms[i].filter(|f| !f.needs_dead_flags() || forms::flags_dead_after(forms, i));
        // rax as the register a previous register form stored is for the register forms
        // only: the other emitters bind labels (a miss path's return) after their stores.
        let rax_held = rc.rax_holds.take();
        let group = groups[i].filter(|g| {
            let bit = 1 << g.slot;
            if g.lead.is_some() {
                live_groups |= bit;
            }
            live_groups & bit != 0
        });
        // A later access of a live group keeps the host flags (part K).
        let keeps_host = form.is_some_and(|f| forms::keeps_host_flags(f, group));
        // Flags left in the host flags stay there only into flag-neutral forms, into the
        // register ALU and INC/DEC forms that read or replace them, and into such accesses.
        let keeps_aux_in_host = keeps_host
            || matches!(form, Some(f) if f.flag_neutral() || matches!(f, Form::Alu { .. } | Form::IncDec { .. }));
        // Shared islands (part K) wait only across forms that emit little code.
        emit_islands(a, !(keeps_host || matches!(form, Some(f) if f.flag_neutral())));
        if fl.pending && !fl.keeps_pending(form)
            || fl.logic_pending && !keeps_logic_pending(form)
            || fl.aux_in_host && !keeps_aux_in_host
        {
            flush_pending(a, l, &mut fl);
        }
        let keep_flags = keeps_host && fl.host_valid;
        let x = Site {
            e,
            info,
            leave,
            user,
            pending: fl.pending,
            logic_pending: fl.logic_pending,
            group,
            keep_flags,
            aux_in_host: fl.aux_in_host,
        };
        // An inline form overwriting every flag ends a logic record's wait (it calls no
        // handler; `after_flags` may start a new wait for its own record).
        let ends_logic_wait = fl.logic_pending && form.is_some_and(Form::kills_flags);
        if ends_logic_wait {
            fl.logic_pending = false;
        }
        let c = &mut *cold;
        match form {
            Some(Form::Load { size, dst, ea, ext }) => emit_load(a, l, rc, c, x, size, dst, ea, ext),
            Some(Form::Store { size, src, ea }) => emit_store(a, l, rc, c, x, size, src, ea),
            Some(Form::Push { src }) => emit_push(a, l, rc, c, x, Some(src)),
            Some(Form::Pop { dst }) => emit_pop(a, l, rc, c, x, dst),
            Some(Form::Call) => emit_push(a, l, rc, c, x, None),
            Some(Form::Ret { pop }) => emit_ret(a, l, rc, x, pop),
            Some(Form::JmpInd { reg, ea }) => emit_jmp_ind(a, l, rc, x, reg, ea, false),
            Some(Form::CallInd { reg, ea }) => emit_jmp_ind(a, l, rc, x, reg, ea, true),
            Some(Form::Div { wide, src }) => emit_div(a, l, rc, c, x, wide, src),
            Some(Form::Sse(f)) => {
                live_groups = 0;
                sse::emit(a, l, rc, x, f, forms, i, &mut mx)
            }
            Some(Form::StoreImm { size, imm, ea }) => emit_store_imm(a, l, rc, c, x, size, imm, ea),
            Some(Form::DivMem { wide, ea }) => emit_div_mem(a, l, rc, c, x, wide, ea),
            Some(Form::ShiftMem { op, size, count, ea }) => emit_shift_mem(a, l, rc, c, x, (op, size, count), ea),
            Some(Form::AluMem { op, size, reg, src, ea, mem_first }) => {
                let m = AluMem { op, size, reg, src, ea, mem_first };
                emit_alu_mem(a, l, rc, c, x, m, forms, i, &mut fl);
                rc.rax_holds = None;
                // It left `fl` as both its paths leave it (a next Jcc/CMOVcc's condition in r12b).
                continue;
            }
            Some(f) if emit_register_form(a, l, rc, rax_held, f, forms, i, &mut fl) => continue,
            // Part X (sixth round): an x87 register-stack form calls its handler directly; part Y
            // (seventh round): its stack moves are done inline. Only with inline forms on:
            // `--jit-fallback-only` calls every instruction through the trampoline.
            _ if inline && super::x87::direct(e) => {
                live_groups = 0;
                flush_pending(a, l, &mut fl);
                super::x87::note_direct_site();
                match super::x87::stack_move(e) {
                    Some(m) => emit_x87_move(a, l, rc, x, m),
                    None => {
                        spill(a, l, rc);
                        match super::x87::arith(e) {
                            Some(op) => emit_x87_arith(a, l, x, op),
                            None => emit_x87_call(a, x),
                        }
                        rc.loaded = 0;
                        rc.dirty = 0;
                    }
                }
            }
            _ => {
                live_groups = 0;
                // Not inline after all: the waiting record is needed by the handler.
                fl.logic_pending |= ends_logic_wait;
                flush_pending(a, l, &mut fl);
                call_cached(a, l, rc, x);
            }
        }
        // A load, store, PUSH or POP keeps a pending record pending (any other form here
        // flushed it first); one that kept the host flags (part K) keeps them valid too.
        fl = FlagState {
            pending: fl.pending,
            logic_pending: fl.logic_pending,
            host_valid: keep_flags,
            aux_in_host: keep_flags && fl.aux_in_host,
            ..FlagState::unknown(loop_exit_only)
        };
        rc.rax_holds = None;
    }
    emit_islands(a, true);
    // Only a later form reads flags left in the host flags; should none have, the block's
    // ends need the record.
    if fl.aux_in_host {
        flush_pending(a, l, &mut fl);
    }
    // What follows (exits, back edges) may bind labels here.
    rc.rax_holds = None;
    debug_assert!(!fl.logic_pending, "a logic record waits only for a later setter");
    (fl, group_slots)
}

/// [`emit_inline`] with rax holding what the previous register form left in it (`rax_held`);
/// false (rax then held by nothing) where the form has no inline template.
#[allow(clippy::too_many_arguments)]
fn emit_register_form(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    rax_held: Option<(u8, usize)>,
    f: Form,
    forms: &[Option<Form>],
    i: usize,
    fl: &mut FlagState,
) -> bool {
    rc.rax_holds = rax_held;
    let emitted = emit_inline(a, l, rc, f, forms, i, fl);
    if !emitted {
        rc.rax_holds = None;
    }
    emitted
}

/// The end of every translation: each chain site's unlinked stub (which returns the site to the
/// run loop), the miss paths, the TLB probes' way-1 checks.
fn finish(
    mut a: Asm,
    l: &Layout,
    site_labels: Vec<(usize, dynasmrt::DynamicLabel)>,
    cold: Vec<Cold>,
    exit: usize,
    group_slots: u8,
) -> Option<Vec<u8>> {
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
    for c in cold {
        emit_cold(&mut a, l, c, group_slots);
    }
    emit_group_fallbacks(&mut a, l);
    emit_way1_checks(&mut a);
    // Every label is defined: the only error is a `jrcxz` too far from its shared island
    // (part K), which the caller's fallback (`with_island_fallback`) recompiles without.
    let code = a.finalize().ok()?;
    for &s in &sites {
        assert_eq!(code[s], JMP_REL32, "chain sites are jmp rel32");
    }
    Some(code)
}

/// What every exit of a block does first: the changed cached registers written back (every
/// exit, chain site, indirect lookup or dispatcher, sees `cpu.state.gpr`) and the block's
/// instructions retired.
fn leave_block(a: &mut Asm, l: &Layout, rc: &RegCache, n: usize, pending: bool) {
    // Every exit sees the exact lazy record (part B: a pending one is completed here).
    if pending {
        aux_from_r13(a, l);
    }
    spill(a, l, rc);
    dynasm!(a ; .arch x64 ; add QWORD [rbp + l.retired], n as i32);
}

/// RIP = `rip`, then its chain site (a `jmp rel32` recorded in `sites` with the label of its
/// unlinked stub) if it is one of the `successors`, else the dispatcher. `call_ret`: the block
/// ends in a CALL returning there, whose path to its target pushes a RET prediction pair.
fn exit_to(
    a: &mut Asm,
    l: &Layout,
    rip: u64,
    successors: &[u64],
    sites: &mut Vec<(usize, dynasmrt::DynamicLabel)>,
    bail: usize,
    call_ret: Option<u64>,
) {
    match i32::try_from(rip as i64) {
        // `mov r/m64, imm32` sign-extends.
        Ok(v) => dynasm!(a ; .arch x64 ; mov QWORD [rbp + l.rip], v),
        Err(_) => dynasm!(a ; .arch x64 ; mov rax, QWORD rip as i64 ; mov [rbp + l.rip], rax),
    }
    if successors.contains(&rip) {
        // A CALL reaching its target (not `call $+5`, whose "return address" is popped)
        // pushes its RET prediction pair and enters the target's chain site with a host call.
        if let Some(ret_rip) = call_ret.filter(|&r| r != rip) {
            let (site, ret_unlinked) = (a.new_dynamic_label(), a.new_dynamic_label());
            sites.push((shadow::emit_call_push(a, l, ret_rip, site, ret_unlinked), ret_unlinked));
            dynasm!(a ; .arch x64 ; =>site);
        }
        let unlinked = a.new_dynamic_label();
        sites.push((a.offset().0, unlinked));
        dynasm!(a ; .arch x64 ; jmp =>unlinked);
    } else {
        dynasm!(a ; .arch x64 ; jmp extern bail);
    }
}

/// The back edge of a block looping to its own start `la`: every allocated register loaded
/// (those a handler call made the block forget are unchanged in `cpu.state.gpr`), the
/// instructions retired and the block-entry check made here; back to `head` with the registers
/// still in host registers, or (the check failed) written back and RIP = `la` for the
/// dispatcher.
#[allow(clippy::too_many_arguments)]
fn back_edge(
    a: &mut Asm,
    l: &Layout,
    rc: &RegCache,
    n: usize,
    la: u64,
    head: dynasmrt::DynamicLabel,
    bail: usize,
    fl: &FlagState,
) {
    // A pending record (part B) is completed before the head unless the flags are dead
    // there (`loop_exit_only`); then only the exit below completes it.
    if fl.pending && !fl.loop_exit_only {
        aux_from_r13(a, l);
    }
    let all = rc.allocated();
    reload(a, l, &RegCache { loaded: all & !rc.loaded, ..*rc });
    dynasm!(a
        ; .arch x64
        ; mov rax, [rbp + l.retired]
        ; add rax, n as i32
        ; mov [rbp + l.retired], rax
        ; cmp rax, [rbx + l.ctx_limit]
        ; jb =>head
    );
    if fl.pending && fl.loop_exit_only {
        aux_from_r13(a, l);
    }
    spill(a, l, &RegCache { dirty: all, ..*rc });
    match i32::try_from(la as i64) {
        Ok(v) => dynasm!(a ; .arch x64 ; mov QWORD [rbp + l.rip], v),
        Err(_) => dynasm!(a ; .arch x64 ; mov rax, QWORD la as i64 ; mov [rbp + l.rip], rax),
    }
    dynasm!(a ; .arch x64 ; jmp extern bail);
}

/// Whether a self-looping block can count down (part F): it ends in a Jcc and every
/// instruction is an inline form that never calls a handler (so nothing but its own back
/// edge changes `retired`, and nothing changes the run's limit, while it loops).
fn counts_down(forms: &[Option<Form>]) -> bool {
    matches!(forms.last(), Some(Some(Form::Jcc { .. })))
        && forms.iter().all(|f| {
            matches!(
                f,
                Some(Form::Alu { .. } | Form::IncDec { .. } | Form::Mov { .. } | Form::Lea { .. } | Form::Jcc { .. })
            )
        })
}

/// Before the head of a counting-down loop of `n` instructions: r14 = r15 = c = the number of
/// back edges it may take plus one, ceil((limit - retired) / n) (the entry check left
/// limit - retired >= 1; computed as (limit - retired - 1) / n + 1, which cannot overflow).
/// The j-th back edge continues iff retired + j * n < limit, i.e. j < c: the exact budget
/// check the memory version makes, done by counting r15 down to zero. `retired` stays at its
/// value on entry while it loops: nothing in such a loop reads it.
fn countdown_setup(a: &mut Asm, l: &Layout, n: usize) {
    dynasm!(a
        ; .arch x64
        ; mov rax, [rbx + l.ctx_limit]
        ; sub rax, [rbp + l.retired]
        ; dec rax
        ; xor edx, edx
        ; mov ecx, n as i32
        ; div rcx
        ; inc rax
        ; mov r14, rax
        ; mov r15, rax
    );
}

/// On a way out of a counting-down loop of `n` instructions: `retired` += the back edges
/// taken (r14 - r15) times `n` (clobbers rcx and the host flags).
fn countdown_retire(a: &mut Asm, l: &Layout, n: usize) {
    dynasm!(a
        ; .arch x64
        ; mov rcx, r14
        ; sub rcx, r15
        ; imul rcx, rcx, n as i32
        ; add [rbp + l.retired], rcx
    );
}

/// The back edge of a counting-down loop: r15 counted down with `lea` and tested with
/// `jrcxz`, neither of which touch the host flags, so a record `d` whose flags are dead at the
/// head is written only on the way out (budget spent: `retired` brought up to date,
/// registers written back, RIP = `la`, to the dispatcher).
#[allow(clippy::too_many_arguments)]
fn countdown_back_edge(
    a: &mut Asm,
    l: &Layout,
    rc: &RegCache,
    n: usize,
    la: u64,
    head: dynasmrt::DynamicLabel,
    bail: usize,
    d: Deferred,
    loop_exit_only: bool,
) {
    if !loop_exit_only {
        write_deferred(a, l, d, false);
    }
    let all = rc.allocated();
    reload(a, l, &RegCache { loaded: all & !rc.loaded, ..*rc });
    let out = a.new_dynamic_label();
    dynasm!(a
        ; .arch x64
        ; lea r15, [r15 - 1]
        ; mov rcx, r15
        ; jrcxz =>out
        ; jmp =>head
        ; =>out
    );
    if loop_exit_only {
        write_deferred(a, l, d, false);
    }
    countdown_retire(a, l, n);
    spill(a, l, &RegCache { dirty: all, ..*rc });
    match i32::try_from(la as i64) {
        Ok(v) => dynasm!(a ; .arch x64 ; mov QWORD [rbp + l.rip], v),
        Err(_) => dynasm!(a ; .arch x64 ; mov rax, QWORD la as i64 ; mov [rbp + l.rip], rax),
    }
    dynasm!(a ; .arch x64 ; jmp extern bail);
}

/// Writes deferred record `d` from the host flags and its result register (clobbers rax, rcx,
/// rdx and the host flags). With `pending`, a non-logic record's `aux` is left in r13 instead
/// (the host flags kept): returns whether it was.
fn write_deferred(a: &mut Asm, l: &Layout, d: Deferred, pending: bool) -> bool {
    record_from(a, l, d.result, d.size, d.logic, pending)
}

/// Stores the record of a flag setter whose result is in host register `r` (0: rax) and whose
/// flags are the host's: `result` the low `size` bytes of `r` sign-extended (through rax; a
/// 64-bit one stored from `r` itself), `aux` 0 for a logic operation (CF = OF = AF = 0; `mov`
/// keeps the host flags), else from the captured host flags ([`capture_flags`]), or with
/// `pending` the capture left in r13 (host flags kept). Clobbers rax, rcx and rdx. Returns
/// whether `aux` was left pending; otherwise a non-logic record clobbered the host flags.
fn record_from(a: &mut Asm, l: &Layout, r: u8, size: u8, logic: bool, pending: bool) -> bool {
    // `movsx`/`movsxd` keep the host flags.
    match size {
        1 => dynasm!(a ; .arch x64 ; movsx rax, Rb(r) ; mov [rbp + l.lazy_result], rax),
        2 => dynasm!(a ; .arch x64 ; movsx rax, Rw(r) ; mov [rbp + l.lazy_result], rax),
        4 => dynasm!(a ; .arch x64 ; movsxd rax, Rd(r) ; mov [rbp + l.lazy_result], rax),
        _ => dynasm!(a ; .arch x64 ; mov [rbp + l.lazy_result], Rq(r)),
    }
    if logic {
        dynasm!(a ; .arch x64 ; mov QWORD [rbp + l.lazy_aux], 0);
        return false;
    }
    let r = capture_flags(a, l, pending);
    if pending {
        return true;
    }
    aux_from_capture(a, l, r);
    false
}

/// `jcc label` for x86 condition code `cc`.
fn emit_jcc(a: &mut Asm, cc: u8, label: dynasmrt::DynamicLabel) {
    match cc & 15 {
        0 => dynasm!(a ; .arch x64 ; jo =>label),
        1 => dynasm!(a ; .arch x64 ; jno =>label),
        2 => dynasm!(a ; .arch x64 ; jb =>label),
        3 => dynasm!(a ; .arch x64 ; jae =>label),
        4 => dynasm!(a ; .arch x64 ; je =>label),
        5 => dynasm!(a ; .arch x64 ; jne =>label),
        6 => dynasm!(a ; .arch x64 ; jbe =>label),
        7 => dynasm!(a ; .arch x64 ; ja =>label),
        8 => dynasm!(a ; .arch x64 ; js =>label),
        9 => dynasm!(a ; .arch x64 ; jns =>label),
        10 => dynasm!(a ; .arch x64 ; jp =>label),
        11 => dynasm!(a ; .arch x64 ; jnp =>label),
        12 => dynasm!(a ; .arch x64 ; jl =>label),
        13 => dynasm!(a ; .arch x64 ; jge =>label),
        14 => dynasm!(a ; .arch x64 ; jle =>label),
        _ => dynasm!(a ; .arch x64 ; jg =>label),
    }
}

/// The indirect-branch table lookup of guest RIP `rax` under mode key `mode` (the block's: a
/// near branch keeps the mode): on a hit, a jump to the target's translation (whose entry
/// checks the budget); on a miss, back to the run loop with
/// `RESULT_INDIRECT`.
fn emit_indirect_lookup(a: &mut Asm, l: &Layout, mode: u32, exit: usize) {
    let miss = a.new_dynamic_label();
    // The slot: (rip ^ rip >> 10) & mask (`super::indirect_slot`), 64 bytes each.
    let (tlb_exec, tlb_addend) = (tlb_layout::EXEC_TAG as i32, tlb_layout::ADDEND as i32);
    let field = |o: usize| o as i32;
    use std::mem::offset_of;
    let (page, addend, entry) = (
        field(offset_of!(super::IndirectSlot, page)),
        field(offset_of!(super::IndirectSlot, addend)),
        field(offset_of!(super::IndirectSlot, tlb_entry)),
    );
    dynasm!(a
        ; .arch x64
        ; mov ecx, eax
        ; shr ecx, 10
        ; xor ecx, eax
        ; and ecx, (super::INDIRECT_SLOTS - 1) as i32
        ; shl ecx, super::INDIRECT_SLOT_SHIFT as i8
        ; add rcx, [rbx + l.ctx_indirect]
        ; cmp rax, [rcx]
        ; jne =>miss
        ; mov rdx, [rbx + l.ctx_indirect_tag]
        ; or rdx, mode as i32
        ; cmp rdx, [rcx + 8]
        ; jne =>miss
        // The target's page still fetchable through the TLB entry the slot was filled from
        // (tag of the current generation) and mapped to the same frame (same addend): the
        // lookup the run loop would make gives the same block (`super::IndirectSlot`).
        ; mov rdx, [rbp + l.tlb_sets]
        ; add rdx, [rcx + entry]
        ; mov rax, [rcx + page]
        ; or rax, [rbp + l.tlb_gen]
        ; cmp rax, [rdx + tlb_exec]
        ; jne =>miss
        ; mov rax, [rcx + addend]
        ; cmp rax, [rdx + tlb_addend]
        ; jne =>miss
        ; inc QWORD [rbx + l.ctx_indirect_hits]
        ; jmp QWORD [rcx + 16]
        ; =>miss
        ; mov eax, RESULT_INDIRECT as i32
        ; jmp extern exit
    );
}

/// What the backend knows about the flags at a point of a block being compiled. The lazy
/// record (`cpu.state.lazy`) holds the guest flags except where they are dead or `pending`.
struct FlagState {
    /// Host EFLAGS hold the guest's CF, PF, ZF, SF, OF (AF too after an arithmetic form).
    host_valid: bool,
    /// `r12b` holds the outcome of the block-ending Jcc with this condition code.
    cond_in_r12: Option<u8>,
    /// The record's `result` is written but its `aux` is not: `r13` holds the host flags the
    /// guest's last flag setter left ([`capture_flags`]), from which every path that needs the
    /// record (a miss path's handler call, an exit) computes `aux` first (`aux_from_r13`).
    /// Only chosen where [`forms::aux_deferrable`] says the next flag reader is an inline form
    /// that takes CF from `r13`.
    pending: bool,
    /// The block loops to its own start and its flags are dead there: its back edge does not
    /// need the record.
    loop_exit_only: bool,
    /// The block-ending Jcc right after the last flag setter branches on the host flags that
    /// setter left (result in rax), and each way that needs the record writes it (sixth
    /// round, part F): see [`Deferred`].
    deferred: Option<Deferred>,
    /// For `after_flags`: the host register an inline form left its result in when it
    /// defers its record (0: rax).
    result_host: u8,
    /// A logic setter's record (its result, `aux` 0) is not written at all: `r13` holds the
    /// result, sign-extended, and only the miss paths of the probes before the next setter
    /// ([`forms::record_only_on_misses`]) write the record, before their handler (part M).
    logic_pending: bool,
    /// The record's `result` is written but its `aux` is not: the host flags still hold the
    /// guest's, kept across flag-neutral forms and later accesses of probe groups that keep
    /// them ([`forms::aux_stays_in_host_flags`], eighth round, part K). Any other form, and
    /// every path leaving the hit path, computes `aux` from the host flags first
    /// ([`aux_from_host_flags`]).
    aux_in_host: bool,
}

/// A flag setter's record left unwritten for the block-ending Jcc that follows it: the host
/// flags and `rax` (the result) are the setter's until the Jcc, which branches on the host
/// flags directly; the exits write the record ([`write_deferred`]), a back edge to a head
/// where the flags are dead writes none.
#[derive(Clone, Copy)]
struct Deferred {
    /// The Jcc's condition code.
    cc: u8,
    /// A logic operation (CF = OF = AF = 0).
    logic: bool,
    /// The operand size (the record holds the result sign-extended from it).
    size: u8,
    /// The host register holding the result (0: rax).
    result: u8,
}

impl FlagState {
    /// Nothing known of the host flags; the record exact.
    fn unknown(loop_exit_only: bool) -> FlagState {
        FlagState {
            host_valid: false,
            cond_in_r12: None,
            pending: false,
            loop_exit_only,
            deferred: None,
            result_host: 0,
            logic_pending: false,
            aux_in_host: false,
        }
    }

    /// Whether a pending record may stay pending into instruction `form` (the forms
    /// `forms::aux_deferrable` lets it wait for, or pass through); any other form flushes it.
    fn keeps_pending(&self, form: Option<Form>) -> bool {
        match form {
            Some(f) if f.flag_neutral() || f.keeps_flags_on_hit() || f.kills_flags() => true,
            Some(Form::Alu { .. } | Form::IncDec { .. } | Form::AluMem { .. }) => true,
            Some(Form::Jcc { cc }) => self.loop_exit_only && self.cond_in_r12 == Some(cc),
            Some(Form::Jmp) => self.loop_exit_only,
            _ => false,
        }
    }
}

/// Host CF = the guest's CF, for an inline form reading it while the host flags are not the
/// guest's: from `r13` while the record is pending, else from the record (`aux` bit 63).
fn cf_to_host(a: &mut Asm, l: &Layout, pending: bool) {
    if pending {
        dynasm!(a ; .arch x64 ; bt r13d, l.capture.cf_bit());
    } else {
        dynasm!(a ; .arch x64 ; bt QWORD [rbp + l.lazy_aux], 63);
    }
}

/// How generated code captures the host flags a flag setter left, for a pending record (`r13`)
/// or a record written at once (eighth round, part C). `pushfq` is microcoded and slow (on Zen
/// 3, 200 M `add; pushfq; pop` take 2.3x the time of the bare loop, `lahf; seto` 1.4x), so
/// `lahf` (SF ZF AF PF CF into AH) with `seto al` (OF) is used wherever the host runs LAHF in
/// 64-bit mode (CPUID 8000_0001h ECX bit 0; absent on the first Athlon 64 and Pentium 4 steps),
/// `pushfq` elsewhere. Everything that reads a capture goes through [`capture_flags`],
/// [`cf_to_host`], [`aux_from_capture`] and [`capture_from_rflags_rax`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Capture {
    /// `lahf; seto al`: OF in bit 0, CF in bit 8, AF in bit 12 (the rest of the low 16 bits:
    /// PF, ZF, SF and bit 1 of RFLAGS; above them, whatever rax held).
    Lahf,
    /// `pushfq; pop`: RFLAGS (CF bit 0, AF bit 4, OF bit 11).
    Pushf,
}

impl Capture {
    /// The cheapest capture the host supports.
    pub(super) fn of_host() -> Capture {
        // CPUID leaf 8000_0001h exists on every x86-64 CPU (it holds the long-mode bit).
        let ecx = std::arch::x86_64::__cpuid(0x8000_0001).ecx;
        if ecx & 1 != 0 {
            Capture::Lahf
        } else {
            Capture::Pushf
        }
    }

    /// The bit of a capture that holds CF.
    fn cf_bit(self) -> i8 {
        match self {
            Capture::Lahf => 8,
            Capture::Pushf => 0,
        }
    }

    /// The bits of a capture that hold CF, AF and OF (the index into [`Capture::aux_table`]).
    fn aux_mask(self) -> i32 {
        match self {
            Capture::Lahf => 0x1101,
            Capture::Pushf => 0x811,
        }
    }

    /// `aux` by capture & `aux_mask`.
    pub(super) fn aux_table(self) -> &'static [u64] {
        match self {
            Capture::Lahf => &AUX_OF_LAHF,
            Capture::Pushf => &AUX_OF_RFLAGS,
        }
    }
}

/// The lazy record's `aux` (emu::flags: CF << 63 | (CF ^ OF) << 62 | AF << 3) for each value
/// of a capture's CF, AF and OF bits, indexed by that value: `aux` in one load. Only 8 of the
/// entries are ever read (4 cache lines). RFLAGS bits 0, 4, 11 for `pushfq`...
static AUX_OF_RFLAGS: [u64; 0x812] = aux_table(0, 4, 11);
/// ... and bits 8, 12, 0 for `lahf; seto al`.
static AUX_OF_LAHF: [u64; 0x1102] = aux_table(8, 12, 0);

const fn aux_table<const N: usize>(cf_bit: u32, af_bit: u32, of_bit: u32) -> [u64; N] {
    let mut t = [0u64; N];
    let mut i = 0;
    while i < N {
        let (cf, af, of) = ((i >> cf_bit & 1) as u64, (i >> af_bit & 1) as u64, (i >> of_bit & 1) as u64);
        t[i] = cf << 63 | (cf ^ of) << 62 | af << 3;
        i += 1;
    }
    t
}

/// Captures the host flags: with `pending` into `r13` (for `cf_to_host` and `aux_from_r13`),
/// else into the scratch register it returns (rax or rcx, for `aux_from_capture`). Keeps the
/// host flags; the `lahf` capture clobbers rax.
fn capture_flags(a: &mut Asm, l: &Layout, pending: bool) -> u8 {
    match (l.capture, pending) {
        (Capture::Lahf, true) => dynasm!(a ; .arch x64 ; lahf ; seto al ; mov r13d, eax),
        (Capture::Lahf, false) => {
            dynasm!(a ; .arch x64 ; lahf ; seto al);
            return 0;
        }
        (Capture::Pushf, true) => dynasm!(a ; .arch x64 ; pushfq ; pop r13),
        (Capture::Pushf, false) => dynasm!(a ; .arch x64 ; pushfq ; pop rcx),
    }
    1
}

/// `r13` = the capture of RFLAGS value `rax` (its arithmetic flags: a miss path's, from the
/// record its handler wrote, where the hit path left its capture pending). Clobbers rax.
fn capture_from_rflags_rax(a: &mut Asm, l: &Layout) {
    match l.capture {
        // CF, PF, AF, ZF, SF up by 8 (bits 8 to 15, as LAHF puts them in AH), OF down to bit 0.
        Capture::Lahf => dynasm!(a
            ; .arch x64
            ; mov r13d, eax
            ; shl r13d, 8
            ; shr eax, 11
            ; and eax, 1
            ; or r13d, eax
        ),
        Capture::Pushf => dynasm!(a ; .arch x64 ; mov r13, rax),
    }
}

/// Writes the record's `aux` from the capture in scratch register `r` (rax or rcx; clobbers
/// it and rdx, the host flags too).
fn aux_from_capture(a: &mut Asm, l: &Layout, r: u8) {
    dynasm!(a
        ; .arch x64
        ; and Rd(r), l.capture.aux_mask()
        ; mov rdx, QWORD l.capture.aux_table().as_ptr() as i64
        ; mov rdx, [rdx + Rq(r) * 8]
        ; mov [rbp + l.lazy_aux], rdx
    );
}

/// Writes the pending record's `aux` from `r13` (a side path: the state is not changed).
fn aux_from_r13(a: &mut Asm, l: &Layout) {
    dynasm!(a ; .arch x64 ; mov ecx, r13d);
    aux_from_capture(a, l, 1);
}

/// Whether a logic record waiting in `r13` may go on waiting into `form`: the forms
/// [`forms::record_only_on_misses`] lets it wait through or end at.
fn keeps_logic_pending(form: Option<Form>) -> bool {
    match form {
        Some(f) if f.flag_neutral() || f.keeps_flags_on_hit() || f.kills_flags() => true,
        Some(Form::AluMem { op, .. }) => !op.reads_cf(),
        _ => false,
    }
}

/// Writes the record of a logic setter whose result waits in `r13` (`mov`s: the host flags kept).
fn logic_record_from_r13(a: &mut Asm, l: &Layout) {
    dynasm!(a ; .arch x64 ; mov [rbp + l.lazy_result], r13 ; mov QWORD [rbp + l.lazy_aux], 0);
}

/// Makes a pending record exact (the host flags are clobbered).
fn flush_pending(a: &mut Asm, l: &Layout, fl: &mut FlagState) {
    if fl.logic_pending {
        logic_record_from_r13(a, l);
        fl.logic_pending = false;
    }
    if fl.pending {
        aux_from_r13(a, l);
        fl.pending = false;
        fl.host_valid = false;
    }
    if fl.aux_in_host {
        aux_from_host_flags(a, l);
        fl.aux_in_host = false;
        fl.host_valid = false;
    }
}

/// Completes a record whose `result` is written and whose `aux` is still in the host flags
/// (`FlagState::aux_in_host`): the same capture a setter's `record_from` makes (clobbers
/// rax, rcx, rdx and the host flags).
fn aux_from_host_flags(a: &mut Asm, l: &Layout) {
    // The result is in the record already: only `aux`, from the host flags.
    let r = capture_flags(a, l, false);
    aux_from_capture(a, l, r);
}

type Asm = VecAssembler<X64Relocation>;

/// Host registers that hold guest registers within a block: caller-saved ones (a handler call
/// spills and forgets them anyway) and the callee-saved r14/r15. rax, rcx, rdx are scratch,
/// rbx/rbp the context, r12 a Jcc outcome, r13 an indirect target.
const HOST_POOL: [u8; 8] = [6, 7, 8, 9, 10, 11, 14, 15];
/// `HOST_POOL` and r12, for a region whose code sets no condition in r12b (part A, eighth
/// round: `region::compile_region`, [`R12_WRITTEN`]).
const HOST_POOL_R12: [u8; 9] = [6, 7, 8, 9, 10, 11, 14, 15, 12];

thread_local! {
    /// Set by every emitter that writes r12 (a condition in r12b: `emit_setcc`,
    /// `cond_from_record`, a miss path's `lazy_cond`); every read of r12b follows such a write
    /// in the same translation. A region compiled without setting it can give r12 to a guest
    /// register; one compiled so that sets it anyway is thrown away.
    static R12_WRITTEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Notes that the code being compiled writes r12 ([`R12_WRITTEN`]).
fn note_r12_written() {
    R12_WRITTEN.with(|w| w.set(true));
}

/// Clears [`R12_WRITTEN`] and returns what it was.
fn take_r12_written() -> bool {
    R12_WRITTEN.with(|w| w.replace(false))
}
const NO_HOST: u8 = 0xff;

/// Guest registers held in host registers within a block (step 2 of the issue): the host
/// register each guest register has (if any), which are loaded (the host register holds the
/// guest value) and which are dirty (`cpu.state.gpr` is older). Loaded at first use, spilled
/// before every handler call (so a handler, a fault or a stop sees exactly `cpu.state`) and at
/// the block's end, forgotten after a handler call.
#[derive(Clone, Copy)]
struct RegCache {
    host: [u8; 16],
    loaded: u16,
    dirty: u16,
    /// A guest register without a host register that `put` just stored from rax, and the code
    /// offset right after that store (part A, eighth round): while nothing else has been
    /// emitted since, rax still holds all 64 bits of it, and `get` takes it from there instead
    /// of reloading the slot it was just stored to (a store-to-load forward on the critical path
    /// of a chain of forms on one such register). Only the register forms of `emit_inline`
    /// keep it, none of which binds a label there (`emit_body`, `emit_shift_cl_live`): a label
    /// at that offset would be reached by paths with something else in rax.
    rax_holds: Option<(u8, usize)>,
}

impl RegCache {
    /// Host registers for the guest registers the block's inline forms use at least twice
    /// (most used first; a single use costs the same either way), or (`self_loop`: the block
    /// loops to itself, loading them once) at least once.
    fn for_block(forms: &[Option<Form>], self_loop: bool) -> RegCache {
        let mut uses = [0u32; 16];
        for f in forms.iter().flatten() {
            f.count_guest_regs(&mut uses);
        }
        RegCache::by_uses(&uses, if self_loop { 1 } else { 2 })
    }

    /// Host registers for the guest registers whose (weighted) use count `uses` is at least
    /// `min`, the highest first (ties: the lower register number first).
    fn by_uses(uses: &[u32; 16], min: u32) -> RegCache {
        RegCache::by_uses_from(uses, min, &HOST_POOL)
    }

    /// [`RegCache::by_uses`] from the host registers `pool`, in its order.
    fn by_uses_from(uses: &[u32; 16], min: u32, pool: &[u8]) -> RegCache {
        let mut order: Vec<usize> = (0..16).filter(|&g| uses[g] >= min).collect();
        order.sort_by_key(|&g| std::cmp::Reverse(uses[g]));
        let mut host = [NO_HOST; 16];
        for (g, &h) in order.into_iter().zip(pool) {
            host[g] = h;
        }
        RegCache { host, loaded: 0, dirty: 0, rax_holds: None }
    }

    /// The guest registers that have a host register.
    fn allocated(&self) -> u16 {
        (0..16).filter(|&g| self.host[g] != NO_HOST).fold(0, |m, g| m | 1 << g)
    }
}

/// The host register holding guest register `g`, loaded now if it is not yet; `None` if `g`
/// lives in `cpu.state.gpr` only.
fn cached(a: &mut Asm, l: &Layout, rc: &mut RegCache, g: u8) -> Option<u8> {
    let h = rc.host[usize::from(g)];
    if h == NO_HOST {
        return None;
    }
    if rc.loaded & 1 << g == 0 {
        let at = gpr_at(l, g);
        dynasm!(a ; .arch x64 ; mov Rq(h), [rbp + at]);
        rc.loaded |= 1 << g;
    }
    Some(h)
}

/// Whether rax holds guest register `g` here, `put` having stored it from rax with nothing
/// emitted since ([`RegCache::rax_holds`]).
fn rax_holds(a: &Asm, rc: &RegCache, g: u8) -> bool {
    rc.rax_holds == Some((g, a.offset().0))
}

/// Scratch register `s` (0 = rax, 1 = rcx, 2 = rdx) = guest register `g` (`wide`: 64 bits,
/// else its low 32 zero-extended).
fn get(a: &mut Asm, l: &Layout, rc: &mut RegCache, g: u8, s: u8, wide: bool) {
    if rax_holds(a, rc, g) {
        match (s, wide) {
            (0, true) => {}
            (_, true) => dynasm!(a ; .arch x64 ; mov Rq(s), rax),
            (_, false) => dynasm!(a ; .arch x64 ; mov Rd(s), eax),
        }
        return;
    }
    match (cached(a, l, rc, g), wide) {
        (Some(h), true) => dynasm!(a ; .arch x64 ; mov Rq(s), Rq(h)),
        (Some(h), false) => dynasm!(a ; .arch x64 ; mov Rd(s), Rd(h)),
        (None, true) => {
            let at = gpr_at(l, g);
            dynasm!(a ; .arch x64 ; mov Rq(s), [rbp + at]);
        }
        (None, false) => {
            let at = gpr_at(l, g);
            dynasm!(a ; .arch x64 ; mov Rd(s), [rbp + at]);
        }
    }
}

/// Guest register `g` = all 64 bits of scratch register `s`.
fn put(a: &mut Asm, l: &Layout, rc: &mut RegCache, g: u8, s: u8) {
    let h = rc.host[usize::from(g)];
    if h == NO_HOST {
        let at = gpr_at(l, g);
        dynasm!(a ; .arch x64 ; mov [rbp + at], Rq(s));
        if s == 0 {
            rc.rax_holds = Some((g, a.offset().0));
        }
    } else {
        dynasm!(a ; .arch x64 ; mov Rq(h), Rq(s));
        rc.loaded |= 1 << g;
        rc.dirty |= 1 << g;
    }
}

/// Writes the dirty cached registers of `rc` to `cpu.state.gpr` (they stay loaded and, for the
/// code that follows on this path, may be considered clean, but `rc` is not changed: callers
/// that continue with it keep them dirty, which only costs a second write).
fn spill(a: &mut Asm, l: &Layout, rc: &RegCache) {
    for g in 0..16u8 {
        if rc.dirty & 1 << g != 0 {
            let (h, at) = (rc.host[usize::from(g)], gpr_at(l, g));
            dynasm!(a ; .arch x64 ; mov [rbp + at], Rq(h));
        }
    }
}

/// Loads every register `rc` says is loaded from `cpu.state.gpr` (after a handler call on a
/// miss path, so both paths meet with the same registers loaded).
fn reload(a: &mut Asm, l: &Layout, rc: &RegCache) {
    for g in 0..16u8 {
        if rc.loaded & 1 << g != 0 {
            let (h, at) = (rc.host[usize::from(g)], gpr_at(l, g));
            dynasm!(a ; .arch x64 ; mov Rq(h), [rbp + at]);
        }
    }
}

/// The instruction being compiled: the decoded instruction, the trampoline's `info`, the
/// "leave" stub's address, whether the block runs at CPL3 (its TLB set) and whether the lazy
/// record is pending (its miss path computes `aux` from `r13` before the handler).
#[derive(Clone, Copy)]
struct Site<'e> {
    e: &'e Instr,
    info: u32,
    leave: usize,
    user: bool,
    pending: bool,
    /// A logic record waits in `r13` ([`FlagState::logic_pending`]): written before the handler.
    logic_pending: bool,
    /// The probe group this access shares (part P), if its group's probe is live here.
    group: Option<forms::GroupAccess>,
    /// The host flags hold the guest's and this access, a later one of its group, keeps them
    /// (eighth round, part K; [`forms::keeps_host_flags`]): its hit path tests the slot with
    /// `jrcxz`, its own probe saves and restores them, and its miss path puts them back from
    /// the record after the handler.
    keep_flags: bool,
    /// The record's `aux` is still in the host flags ([`FlagState::aux_in_host`]): the miss
    /// path computes it before the handler.
    aux_in_host: bool,
}

/// The handler call of an instruction with no inline form: the cached registers spilled
/// before, forgotten after (the handler may change any guest register; the call clobbers the
/// caller-saved host ones).
fn call_cached(a: &mut Asm, l: &Layout, rc: &mut RegCache, x: Site) {
    spill(a, l, rc);
    emit_call(a, x.e, x.info, x.leave);
    rc.loaded = 0;
    rc.dirty = 0;
}

/// The handler call on an inline form's miss path: `pre` (the registers at the branch to the
/// miss path) spilled, then the registers `post` (the hit path's state where the paths meet)
/// has loaded are reloaded.
fn miss_call(a: &mut Asm, l: &Layout, pre: &RegCache, post: &RegCache, x: Site) {
    if x.pending {
        aux_from_r13(a, l);
    }
    if x.logic_pending {
        logic_record_from_r13(a, l);
    }
    spill(a, l, pre);
    emit_call(a, x.e, x.info, x.leave);
    reload(a, l, post);
}

/// An inline form's miss path, emitted out of line after the block's exits (so the hit path
/// falls through): from label `miss`, `pre` (the registers at the branch) written back, the
/// handler called, for `cond` the condition of a next Jcc/CMOVcc evaluated into r12b from the
/// record the handler wrote, the registers `post` has loaded (the hit path's state where the
/// two meet) reloaded, and back to `done`.
struct Cold<'e> {
    miss: dynasmrt::DynamicLabel,
    done: dynasmrt::DynamicLabel,
    pre: RegCache,
    post: RegCache,
    x: Site<'e>,
    cond: Option<u8>,
    /// The hit path left its flags pending in r13 (part B): the same here, from the record
    /// the handler wrote.
    rflags_to_r13: bool,
    /// The hit path leaves the guest's flags in the host flags and the result in this host
    /// register (0: rax) for a deferred block-ending Jcc (part M): the same here, from the
    /// record the handler wrote, so that both paths meet in the same state and the exits'
    /// `write_deferred` rewrites that record bit for bit. `Some(NO_HOST)`: the host flags
    /// only, no result register (an access keeping them, or a setter leaving its `aux` in
    /// them: eighth round, part K).
    host_flags: Option<u8>,
}

fn emit_cold(a: &mut Asm, l: &Layout, c: Cold, group_slots: u8) {
    dynasm!(a ; .arch x64 ; =>c.miss);
    // A pending record is made exact before the handler can read it or fault.
    if c.x.pending {
        aux_from_r13(a, l);
    }
    if c.x.logic_pending {
        logic_record_from_r13(a, l);
    }
    if c.x.aux_in_host {
        // Part K: the group fallback brought the host flags back before branching here.
        aux_from_host_flags(a, l);
    }
    spill(a, l, &c.pre);
    emit_call(a, c.x.e, c.x.info, c.x.leave);
    // The handler may have changed the TLB (a fill evicting a group's entry, a walk of
    // changed page tables): the later accesses of every open probe group probe for themselves.
    for s in (0..forms::GROUP_SLOTS as i32).filter(|s| group_slots & 1 << s != 0) {
        dynasm!(a ; .arch x64 ; mov QWORD [rbx + l.ctx_group_hosts + 8 * s], 0);
    }
    if let Some(cc) = c.cond {
        note_r12_written();
        dynasm!(a
            ; .arch x64
            ; mov rdi, rbx
            ; mov esi, i32::from(cc)
            ; mov rax, QWORD lazy_cond as *const () as i64
            ; call rax
            ; mov r12d, eax
        );
    }
    if c.rflags_to_r13 {
        // `aux_from_r13` later rewrites the handler's record bit for bit (an ALU handler's
        // `aux` holds only CF, OF and AF).
        dynasm!(a
            ; .arch x64
            ; mov rdi, rbx
            ; mov rax, QWORD lazy_rflags as *const () as i64
            ; call rax
        );
        capture_from_rflags_rax(a, l);
    }
    if let Some(result) = c.host_flags {
        // The six arithmetic flags only (`materialize`): DF, TF and AC stay clear, as the
        // host's ABI needs; at CPL 3 `popfq` leaves IF and IOPL as they are.
        dynasm!(a
            ; .arch x64
            ; mov rdi, rbx
            ; mov rax, QWORD lazy_rflags as *const () as i64
            ; call rax
            ; or eax, 2
            ; push rax
            ; popfq
        );
        // `mov`s from here on keep those flags. The record's result is sign-extended from
        // the operand size, which `write_deferred` redoes on the low part.
        if result == 0 {
            dynasm!(a ; .arch x64 ; mov rax, [rbp + l.lazy_result]);
        }
    }
    reload(a, l, &c.post);
    dynasm!(a ; .arch x64 ; jmp =>c.done);
}

/// Calls the tier-0 handler of `e` through the trampoline, leaving the translation if it stops.
fn emit_call(a: &mut Asm, e: &Instr, info: u32, leave: usize) {
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

/// rax = the linear address of `ea` (64-bit mode: FS or GS adds its base).
fn emit_ea(a: &mut Asm, l: &Layout, rc: &mut RegCache, ea: Ea) {
    emit_offset(a, l, rc, ea);
    if ea.seg != emu::decoded::NO_SEG {
        use std::mem::offset_of;
        let at = offset_of!(emu::cpu::Cpu, state)
            + offset_of!(emu::state::CpuState, segs)
            + usize::from(ea.seg) * std::mem::size_of::<emu::state::Segment>()
            + offset_of!(emu::state::Segment, base);
        let at = i32::try_from(at).expect("a Cpu is smaller than 2 GiB");
        // rdx is free here (the probe after clobbers it); `lea` keeps the host flags.
        dynasm!(a ; .arch x64 ; mov rdx, [rbp + at] ; lea rax, [rax + rdx]);
    }
}

/// rax = `base + index << scale + disp` of `ea`.
fn emit_offset(a: &mut Asm, l: &Layout, rc: &mut RegCache, ea: Ea) {
    if ea.base == NO_REG && ea.index == NO_REG {
        dynasm!(a ; .arch x64 ; mov rax, QWORD ea.disp as i64);
        return;
    }
    // Base and index straight from their host registers (scratch rax/rcx if they have none).
    let b = (ea.base != NO_REG).then(|| read_reg(a, l, rc, ea.base, 0));
    let i = (ea.index != NO_REG).then(|| read_reg(a, l, rc, ea.index, 1));
    emit_lea(a, 0, b, i, ea.scale, ea.disp as i64 as i32);
}

/// The inline TLB probe for a `size`-byte access at rax (emu::mmu::tlb's rule): rcx = the entry
/// of set `user` (way 0, else way 1); jumps to `miss` unless one of the two entries' tag at
/// `tag_at` (read or write tag) is the page of the access's last byte with the current
/// generation, and leaves rax = the host address. Clobbers rdx and the flags.
fn emit_probe(a: &mut Asm, l: &Layout, user: bool, size: u8, tag_at: i32, miss: dynasmrt::DynamicLabel) {
    emit_probe_range(a, l, user, i32::from(size), tag_at, miss);
}

/// [`emit_probe`] for the `len` bytes from rax (a probe group's range, part P): the entry
/// indexed by the first byte, its tag compared with the page of the last, so a range that
/// crosses a page misses.
fn emit_probe_range(a: &mut Asm, l: &Layout, user: bool, len: i32, tag_at: i32, miss: dynasmrt::DynamicLabel) {
    // The entry's offset, (la >> 12 & (TLB_ENTRIES - 1)) * ENTRY_SIZE, in one shift and mask
    // (with BMI2 a rotate into rcx, one instruction: the bits it brings round to the top are
    // masked off too; eighth round, part G).
    const _: () = assert!(tlb_layout::ENTRY_SIZE == 32 && TLB_ENTRIES <= 1 << 20);
    if l.bmi2 {
        dynasm!(a ; .arch x64 ; rorx ecx, eax, 7);
    } else {
        dynasm!(a ; .arch x64 ; mov ecx, eax ; shr ecx, 7);
    }
    dynasm!(a
        ; .arch x64
        ; and ecx, ((TLB_ENTRIES - 1) << 5) as i32
        ; add rcx, [rbp + l.tlb_sets]
    );
    if len == 1 {
        dynasm!(a ; .arch x64 ; mov rdx, rax);
    } else {
        dynasm!(a ; .arch x64 ; lea rdx, [rax + len - 1]);
    }
    dynasm!(a
        ; .arch x64
        ; and rdx, -4096
        ; or rdx, [rbp + l.tlb_gen]
    );
    emit_probe_compare(a, user, 0, tag_at, miss);
}

/// [`emit_probe`] for an access at a linear address known when compiling (an absolute or
/// RIP-relative operand without a segment base; rax = `la` already), eighth round, part G:
/// the entry's offset and the tag's page are constants, so rcx is the table itself and the
/// entry's offset is folded into the displacements (6 instructions instead of 9 or 10). The
/// same entry, tag and page-crossing rule as the register form.
fn emit_probe_known(a: &mut Asm, l: &Layout, user: bool, size: u8, tag_at: i32, miss: dynasmrt::DynamicLabel, la: u64) {
    let entry = (emu::mmu::tlb::index(la) * tlb_layout::ENTRY_SIZE) as i32;
    let last_page = la.wrapping_add(u64::from(size) - 1) & !0xfff;
    dynasm!(a ; .arch x64 ; mov rcx, [rbp + l.tlb_sets]);
    match i32::try_from(last_page as i64) {
        Ok(p) => dynasm!(a ; .arch x64 ; mov rdx, p),
        Err(_) => dynasm!(a ; .arch x64 ; mov rdx, QWORD last_page as i64),
    }
    dynasm!(a ; .arch x64 ; or rdx, [rbp + l.tlb_gen]);
    emit_probe_compare(a, user, entry, tag_at, miss);
}

/// The end of a probe: rcx + `entry` is the way-0 entry at the access's index, rdx the tag
/// wanted; the compare, way 1 out of line, rax += the hit entry's addend.
fn emit_probe_compare(a: &mut Asm, user: bool, entry: i32, tag_at: i32, miss: dynasmrt::DynamicLabel) {
    let set = if user { (TLB_ENTRIES * tlb_layout::ENTRY_SIZE) as i32 } else { 0 };
    let way1_off = tlb_layout::WAY1 as i32;
    let (way1, hit) = (a.new_dynamic_label(), a.new_dynamic_label());
    dynasm!(a
        ; .arch x64
        // A way-0 hit falls through; way 1 is checked out of line (`emit_way1_checks`): laid
        // out inline, with a taken branch on every way-0 hit, it cost the bytecode workload a
        // third of its speed. A way-1 hit (two hot pages sharing the index) costs a few
        // instructions, not a call to the handler and a walk.
        ; cmp rdx, [rcx + set + entry + tag_at]
        ; jne =>way1
        ; =>hit
        ; add rax, [rcx + set + entry + tlb_layout::ADDEND as i32]
    );
    let tag = set + entry + way1_off + tag_at;
    WAY1_CHECKS.with(|w| w.borrow_mut().push(Way1Check { entry: way1, hit, miss, tag }));
}

/// A probe's way-1 check, emitted after the block's exits: rcx (way 0's entry, or the table
/// when the probe's index is a constant folded into `tag` and the hit's addend) and rdx (the
/// wanted tag) are as the probe left them.
struct Way1Check {
    entry: dynasmrt::DynamicLabel,
    hit: dynasmrt::DynamicLabel,
    miss: dynasmrt::DynamicLabel,
    /// Offset of the way-1 tag from rcx.
    tag: i32,
}

thread_local! {
    /// The way-1 checks of the block being compiled. A side list rather than a parameter: the
    /// probe is emitted from a dozen forms, some without the block's `Cold` list; `compile`
    /// empties it before a block and emits it after the block's exits.
    static WAY1_CHECKS: std::cell::RefCell<Vec<Way1Check>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The out-of-line way-1 checks of the probes of one block (see `emit_probe`).
fn emit_way1_checks(a: &mut Asm) {
    for w in WAY1_CHECKS.with(|w| std::mem::take(&mut *w.borrow_mut())) {
        dynasm!(a
            ; .arch x64
            ; =>w.entry
            ; cmp rdx, [rcx + w.tag]
            ; jne =>w.miss
            ; add rcx, tlb_layout::WAY1 as i32
            ; jmp =>w.hit
        );
    }
}

/// rax = the host address of the `size`-byte access at `ea`, the TLB probed at `tag_at` (read
/// or write tag) as [`emit_probe`] does, or a jump to `miss`; returns the registers at that
/// branch (the miss path's `pre`).
///
/// Part P (seventh round): an access of a probe group (`x.group`, [`forms::probe_groups`])
/// shares one probe. The group's first access probes the group's whole byte range (the write
/// tag if any access of the group writes) and on a hit keeps the range's host address in its
/// context slot; the later ones take their address from the slot without a probe. That is
/// exact because nothing between them can change what a probe would find:
/// - the TLB changes only in handlers (fills, flushes, INVLPG, CR3, a store into code or a
///   page table taking the slow path); a handler call emitted inline ends the group at compile
///   time, and every miss path (`emit_cold`) empties the slots after its handler, so the later
///   accesses probe for themselves (`emit_group_fallbacks`);
/// - the base register is not written and the segment base cannot change between them (only
///   a handler writes FS/GS bases), so each access's linear address is the range's plus its
///   offset, in the page the range's probe found;
/// - a store that hits the write tag cannot reach code (pages holding code have none), and one
///   that changes a page table does not change the TLB: tier 0's later accesses hit the same
///   entry too; accessed and dirty bits were set when the entry was filled (no write tag until
///   the page is dirty, so a writing group misses before it and its handler sets D).
///
/// A miss of the range's probe (a page crossing, a TLB miss, a page holding code, MMIO, not
/// dirty) runs the first access's handler, which empties the slot; each later access then
/// probes its own bytes, so every access behaves as tier 0's.
#[allow(clippy::too_many_arguments)]
fn emit_access_probe(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    x: Site,
    ea: Ea,
    size: u8,
    tag_at: usize,
    miss: dynasmrt::DynamicLabel,
) -> RegCache {
    let Some(g) = x.group else {
        emit_ea(a, l, rc, ea);
        let pre = *rc;
        if ea.base == NO_REG && ea.index == NO_REG && ea.seg == emu::decoded::NO_SEG {
            emit_probe_known(a, l, x.user, size, tag_at as i32, miss, ea.disp);
        } else {
            emit_probe(a, l, x.user, size, tag_at as i32, miss);
        }
        return pre;
    };
    let host_at = l.ctx_group_hosts + 8 * i32::from(g.slot);
    let la_at = l.ctx_group_las + 8 * i32::from(g.slot);
    if let Some(r) = g.lead {
        emit_ea(a, l, rc, Ea { disp: r.lo as i64 as u64, ..ea });
        let pre = *rc;
        let tag = if r.write { tlb_layout::WRITE_TAG } else { tlb_layout::READ_TAG };
        dynasm!(a ; .arch x64 ; mov [rbx + la_at], rax);
        emit_probe_range(a, l, x.user, r.len, tag as i32, miss);
        dynasm!(a ; .arch x64 ; mov [rbx + host_at], rax);
        if g.off != 0 {
            dynasm!(a ; .arch x64 ; lea rax, [rax + g.off]);
        }
        pre
    } else {
        let pre = *rc;
        let (own_probe, probed) = (a.new_dynamic_label(), a.new_dynamic_label());
        if x.keep_flags {
            // Part K: the host flags hold the guest's; `jrcxz` reads none. Its rel8 reaches
            // only a jump nearby: an island the hit path steps over, shared by the accesses of
            // a few instructions (`emit_islands`), or its own (`SHARED_ISLANDS` off).
            let empty = a.new_dynamic_label();
            dynasm!(a ; .arch x64 ; mov rcx, [rbx + host_at] ; jrcxz =>empty);
            if SHARED_ISLANDS.with(|s| s.get()) {
                let from = a.offset().0;
                ISLANDS.with(|w| w.borrow_mut().push(Island { near: empty, own_probe, from }));
                dynasm!(a ; .arch x64 ; lea rax, [rcx + g.off] ; =>probed);
            } else {
                dynasm!(a
                    ; .arch x64
                    ; lea rax, [rcx + g.off]
                    ; jmp =>probed
                    ; =>empty
                    ; jmp =>own_probe
                    ; =>probed
                );
            }
        } else {
            dynasm!(a
                ; .arch x64
                ; mov rcx, [rbx + host_at]
                ; test rcx, rcx
                ; jz =>own_probe
                ; lea rax, [rcx + g.off]
                ; =>probed
            );
        }
        let f = GroupFallback {
            own_probe,
            probed,
            la_at,
            off: g.off,
            size,
            tag_at: tag_at as i32,
            miss,
            user: x.user,
            keep_flags: x.keep_flags,
        };
        GROUP_FALLBACKS.with(|w| w.borrow_mut().push(f));
        pre
    }
}

/// The jump a kept access's `jrcxz` reaches when its slot is empty (part K): at `near`, a jump
/// to its own probe; `from` is where the `jrcxz` ends (its rel8 counts from there).
struct Island {
    near: dynasmrt::DynamicLabel,
    own_probe: dynasmrt::DynamicLabel,
    from: usize,
}

/// How far (in bytes past the oldest waiting `jrcxz`, islands included) islands may wait for
/// more: a form that may emit much (not a kept access or a flag-neutral form) flushes them
/// first. A `jrcxz` reaches 127 bytes; should one not, `with_island_fallback` recompiles.
const ISLAND_SLACK: usize = 64;

thread_local! {
    /// The islands not yet emitted (a side list, as `WAY1_CHECKS`).
    static ISLANDS: std::cell::RefCell<Vec<Island>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Islands shared by several accesses (off only for a recompile after one did not reach).
    static SHARED_ISLANDS: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Emits the waiting islands (stepped over by the hit path) if `force` or if they would soon
/// be out of a `jrcxz`'s reach.
fn emit_islands(a: &mut Asm, force: bool) {
    let due = ISLANDS.with(|w| {
        let w = w.borrow();
        w.first().is_some_and(|i| force || a.offset().0 - i.from + 5 * (w.len() + 1) > ISLAND_SLACK)
    });
    if !due {
        return;
    }
    let over = a.new_dynamic_label();
    dynasm!(a ; .arch x64 ; jmp =>over);
    for i in ISLANDS.with(|w| std::mem::take(&mut *w.borrow_mut())) {
        dynasm!(a ; .arch x64 ; =>i.near ; jmp =>i.own_probe);
    }
    dynasm!(a ; .arch x64 ; =>over);
}

/// A later access of a probe group whose slot is empty (part P): its own probe, out of line.
struct GroupFallback {
    own_probe: dynasmrt::DynamicLabel,
    probed: dynasmrt::DynamicLabel,
    /// The context slot of the linear address of the group's range.
    la_at: i32,
    off: i32,
    size: u8,
    tag_at: i32,
    miss: dynasmrt::DynamicLabel,
    user: bool,
    /// The access keeps the host flags (part K): saved around the probe, back before the
    /// access or its miss path.
    keep_flags: bool,
}

thread_local! {
    /// The group fallbacks of the block being compiled (a side list, as `WAY1_CHECKS`).
    static GROUP_FALLBACKS: std::cell::RefCell<Vec<GroupFallback>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The out-of-line fallbacks of one block's probe groups: the access's linear address from the
/// range's (its base register has not changed since), its own probe, back to the access.
fn emit_group_fallbacks(a: &mut Asm, l: &Layout) {
    for f in GROUP_FALLBACKS.with(|w| std::mem::take(&mut *w.borrow_mut())) {
        dynasm!(a ; .arch x64 ; =>f.own_probe);
        if !f.keep_flags {
            dynasm!(a ; .arch x64 ; mov rax, [rbx + f.la_at] ; lea rax, [rax + f.off]);
            emit_probe(a, l, f.user, f.size, f.tag_at, f.miss);
            dynasm!(a ; .arch x64 ; jmp =>f.probed);
            continue;
        }
        // Part K: the probe clobbers the host flags, which hold the guest's: saved on the
        // stack (below rsp, as any push here) and restored on both ways out, so the access
        // and its miss path find them as the hit path leaves them.
        let missed = a.new_dynamic_label();
        dynasm!(a ; .arch x64 ; pushfq ; mov rax, [rbx + f.la_at] ; lea rax, [rax + f.off]);
        emit_probe(a, l, f.user, f.size, f.tag_at, missed);
        dynasm!(a
            ; .arch x64
            ; popfq
            ; jmp =>f.probed
            ; =>missed
            ; popfq
            ; jmp =>f.miss
        );
    }
}

/// `mov dst, [ea]` with the TLB probed inline; a miss (or a page crossing, MMIO, ...) calls the
/// handler, which takes tier 0's slow path.
#[allow(clippy::too_many_arguments)]
fn emit_load<'e>(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    cold: &mut Vec<Cold<'e>>,
    x: Site<'e>,
    size: u8,
    dst: u8,
    ea: Ea,
    ext: Ext,
) {
    let (miss, done) = (a.new_dynamic_label(), a.new_dynamic_label());
    // A merging destination is read: load it before the branch to the miss path.
    let h = if ext == Ext::Merge { cached(a, l, rc, dst) } else { Some(rc.host[usize::from(dst)]) };
    let pre = emit_access_probe(a, l, rc, x, ea, size, tlb_layout::READ_TAG, miss);
    if let Some(h) = h.filter(|&h| h != NO_HOST) {
        // Straight into the destination's host register.
        match (size, ext) {
            (1, Ext::Merge) => dynasm!(a ; .arch x64 ; mov Rb(h), BYTE [rax]),
            (2, Ext::Merge) => dynasm!(a ; .arch x64 ; mov Rw(h), WORD [rax]),
            // MOVSX r64, m8/m16 (the forms only sign-extend bytes and words to 64 bits).
            (1, Ext::Sign) => dynasm!(a ; .arch x64 ; movsx Rq(h), BYTE [rax]),
            (2, Ext::Sign) => dynasm!(a ; .arch x64 ; movsx Rq(h), WORD [rax]),
            (1, _) => dynasm!(a ; .arch x64 ; movzx Rd(h), BYTE [rax]),
            (2, _) => dynasm!(a ; .arch x64 ; movzx Rd(h), WORD [rax]),
            (4, Ext::Sign) => dynasm!(a ; .arch x64 ; movsxd Rq(h), DWORD [rax]),
            (4, _) => dynasm!(a ; .arch x64 ; mov Rd(h), [rax]),
            _ => dynasm!(a ; .arch x64 ; mov Rq(h), [rax]),
        }
        rc.loaded |= 1 << dst;
        rc.dirty |= 1 << dst;
    } else if ext == Ext::Merge {
        // The byte or word replaces the low part of the register (rcx), the rest kept.
        get(a, l, rc, dst, 1, true);
        match size {
            1 => dynasm!(a ; .arch x64 ; mov cl, BYTE [rax]),
            _ => dynasm!(a ; .arch x64 ; mov cx, WORD [rax]),
        }
        put(a, l, rc, dst, 1);
    } else {
        match (size, ext) {
            (1, Ext::Sign) => dynasm!(a ; .arch x64 ; movsx rax, BYTE [rax]),
            (2, Ext::Sign) => dynasm!(a ; .arch x64 ; movsx rax, WORD [rax]),
            (1, _) => dynasm!(a ; .arch x64 ; movzx eax, BYTE [rax]),
            (2, _) => dynasm!(a ; .arch x64 ; movzx eax, WORD [rax]),
            (4, Ext::Sign) => dynasm!(a ; .arch x64 ; movsxd rax, DWORD [rax]),
            (4, _) => dynasm!(a ; .arch x64 ; mov eax, [rax]),
            _ => dynasm!(a ; .arch x64 ; mov rax, [rax]),
        }
        put(a, l, rc, dst, 0);
    }
    // An access keeping the host flags (part K) gets them back after its handler.
    let host_flags = x.keep_flags.then_some(NO_HOST);
    cold.push(Cold { miss, done, pre, post: *rc, x, cond: None, rflags_to_r13: false, host_flags });
    dynasm!(a ; .arch x64 ; =>done);
}

/// `push src` (`None`: CALL's return address, then RIP = the target), 64-bit: the store at
/// RSP - 8 through the inline TLB probe, then RSP; a miss calls the handler.
fn emit_push<'e>(a: &mut Asm, l: &Layout, rc: &mut RegCache, cold: &mut Vec<Cold<'e>>, x: Site<'e>, src: Option<u8>) {
    let (miss, done) = (a.new_dynamic_label(), a.new_dynamic_label());
    let rsp = read_reg(a, l, rc, 4, 0);
    dynasm!(a ; .arch x64 ; lea rax, [Rq(rsp) - 8]);
    let pre = *rc;
    emit_probe(a, l, x.user, 8, tlb_layout::WRITE_TAG as i32, miss);
    let v = match src {
        // The value before RSP changes (`push rsp` pushes the old RSP).
        Some(r) => read_reg(a, l, rc, r, 1),
        None => {
            dynasm!(a ; .arch x64 ; mov rcx, QWORD x.e.next_rip as i64);
            1
        }
    };
    dynasm!(a ; .arch x64 ; mov [rax], Rq(v));
    adjust_rsp(a, l, rc, -8);
    if src.is_none() {
        dynasm!(a ; .arch x64 ; mov rax, QWORD x.e.imm as i64 ; mov [rbp + l.rip], rax);
    }
    cold.push(Cold { miss, done, pre, post: *rc, x, cond: None, rflags_to_r13: false, host_flags: None });
    dynasm!(a ; .arch x64 ; =>done);
}

/// RSP += `delta`, without changing the host flags (clobbers rcx).
fn adjust_rsp(a: &mut Asm, l: &Layout, rc: &mut RegCache, delta: i32) {
    match cached(a, l, rc, 4) {
        Some(h) => {
            dynasm!(a ; .arch x64 ; lea Rq(h), [Rq(h) + delta]);
            rc.dirty |= 1 << 4;
        }
        None => {
            get(a, l, rc, 4, 1, true);
            dynasm!(a ; .arch x64 ; lea rcx, [rcx + delta]);
            put(a, l, rc, 4, 1);
        }
    }
}

/// `pop dst` (64-bit): the load at RSP through the inline TLB probe, RSP + 8, then `dst` (so
/// `pop rsp` loads the popped value); a miss calls the handler.
fn emit_pop<'e>(a: &mut Asm, l: &Layout, rc: &mut RegCache, cold: &mut Vec<Cold<'e>>, x: Site<'e>, dst: u8) {
    let (miss, done) = (a.new_dynamic_label(), a.new_dynamic_label());
    let rsp = read_reg(a, l, rc, 4, 0);
    if rsp != 0 {
        dynasm!(a ; .arch x64 ; mov rax, Rq(rsp));
    }
    let pre = *rc;
    emit_probe(a, l, x.user, 8, tlb_layout::READ_TAG as i32, miss);
    // Straight into the destination's host register (`pop rsp`: RSP + 8, then the value).
    match (dst != 4).then(|| def(rc, dst)).flatten() {
        Some(d) => {
            dynasm!(a ; .arch x64 ; mov Rq(d), [rax]);
            adjust_rsp(a, l, rc, 8);
        }
        None => {
            dynasm!(a ; .arch x64 ; mov rax, [rax]);
            adjust_rsp(a, l, rc, 8);
            put(a, l, rc, dst, 0);
        }
    }
    cold.push(Cold { miss, done, pre, post: *rc, x, cond: None, rflags_to_r13: false, host_flags: None });
    dynasm!(a ; .arch x64 ; =>done);
}

/// `ret` / `ret imm16` (64-bit): RIP = the address at RSP through the inline TLB probe, RSP +
/// 8 + `pop`; a miss calls the handler.
fn emit_ret(a: &mut Asm, l: &Layout, rc: &mut RegCache, x: Site, pop: u16) {
    let (miss, done) = (a.new_dynamic_label(), a.new_dynamic_label());
    get(a, l, rc, 4, 0, true);
    let pre = *rc;
    emit_probe(a, l, x.user, 8, tlb_layout::READ_TAG as i32, miss);
    dynasm!(a ; .arch x64 ; mov rax, [rax]);
    get(a, l, rc, 4, 1, true);
    dynasm!(a
        ; .arch x64
        ; lea rcx, [rcx + 8 + i32::from(pop)]
        ; mov [rbp + l.rip], rax
    );
    put(a, l, rc, 4, 1);
    dynasm!(a ; .arch x64 ; jmp =>done ; =>miss);
    miss_call(a, l, &pre, rc, x);
    dynasm!(a ; .arch x64 ; =>done);
}

/// `jmp r64`/`jmp [ea]` or (`call`) `call r64`/`call [ea]` (64-bit): the target from the
/// register or through the inline TLB probe (into r13, callee-saved), then for a call the push
/// of the return address as in `emit_push`; RIP = the target. A miss of either probe calls the
/// handler (nothing was written before the push's store).
#[allow(clippy::too_many_arguments)]
fn emit_jmp_ind(a: &mut Asm, l: &Layout, rc: &mut RegCache, x: Site, reg: u8, ea: Option<forms::Ea>, call: bool) {
    let (miss, done) = (a.new_dynamic_label(), a.new_dynamic_label());
    // Both probes' misses see these registers: load RSP before the first.
    if call {
        cached(a, l, rc, 4);
    }
    let pre = match ea {
        None => {
            get(a, l, rc, reg, 0, true);
            dynasm!(a ; .arch x64 ; mov r13, rax);
            *rc
        }
        Some(ea) => {
            emit_ea(a, l, rc, ea);
            let pre = *rc;
            emit_probe(a, l, x.user, 8, tlb_layout::READ_TAG as i32, miss);
            dynasm!(a ; .arch x64 ; mov r13, [rax]);
            pre
        }
    };
    if call {
        get(a, l, rc, 4, 0, true);
        dynasm!(a ; .arch x64 ; lea rax, [rax - 8]);
        emit_probe(a, l, x.user, 8, tlb_layout::WRITE_TAG as i32, miss);
        dynasm!(a
            ; .arch x64
            ; mov rcx, QWORD x.e.next_rip as i64
            ; mov [rax], rcx
        );
        get(a, l, rc, 4, 0, true);
        dynasm!(a ; .arch x64 ; lea rax, [rax - 8]);
        put(a, l, rc, 4, 0);
    }
    dynasm!(a ; .arch x64 ; mov [rbp + l.rip], r13 ; jmp =>done ; =>miss);
    miss_call(a, l, &pre, rc, x);
    dynasm!(a ; .arch x64 ; =>done);
}

/// The operands of an [`Form::AluMem`].
struct AluMem {
    op: Alu,
    size: u8,
    reg: u8,
    src: Src,
    ea: Ea,
    mem_first: bool,
}

/// An ALU operation reading its memory operand through the inline TLB probe; the flags as for
/// the register forms on a hit. A miss calls the handler (which writes the record itself), so
/// after either path the host flags are not known to be the guest's, except before a
/// block-ending Jcc, where the miss path restores them from that record (part M).
#[allow(clippy::too_many_arguments)]
fn emit_alu_mem<'e>(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    cold: &mut Vec<Cold<'e>>,
    x: Site<'e>,
    m: AluMem,
    forms: &[Option<Form>],
    i: usize,
    fl: &mut FlagState,
) {
    let (miss, done) = (a.new_dynamic_label(), a.new_dynamic_label());
    let size = m.size;
    // `op [ea], src`: the write tag (a writable, dirty page holding no code; writable implies
    // readable) before anything is read, as tier 0 translates a read-modify-write for write.
    let rmw = m.mem_first && m.op.stores();
    let tag = if rmw { tlb_layout::WRITE_TAG } else { tlb_layout::READ_TAG };
    // Every register the hit path reads is loaded before the branch to the miss path.
    if let Src::Reg(r) = m.src {
        cached(a, l, rc, r);
    }
    // `op reg, [ea]` (not CMP, whose result the record needs but no register keeps) into a
    // register with a host register: the operation on it directly.
    let mut direct = None;
    // `cmp/test [ea], reg` done on the register's host register.
    let mut cmp_done = false;
    if !m.mem_first {
        direct = cached(a, l, rc, m.reg).filter(|_| m.op.stores());
    }
    let pre = emit_access_probe(a, l, rc, x, m.ea, size, tag, miss);
    // rcx = the memory operand (or, `mem_first`, rax = it and rcx = the register operand).
    if rmw {
        if let Src::Reg(r) = m.src {
            get(a, l, rc, r, 1, true);
        }
        if m.op.reads_cf() && !x.keep_flags {
            // The probe changed the host flags: CF from the lazy record (or r13).
            cf_to_host(a, l, x.pending);
        }
        emit_alu_to_mem(a, m.op, size, m.src);
        // The result for the record (`mov` and `movzx` keep the flags).
        load_sized(a, 0, size);
    } else if m.mem_first {
        load_sized(a, 0, size);
        match m.src {
            // `cmp/test [ea], reg` with a host register: compared with it directly (rax keeps
            // the result for the record: CMP as SUB, TEST as AND).
            Src::Reg(r) if rc.host[usize::from(r)] != NO_HOST => {
                let h = rc.host[usize::from(r)];
                let host_op = if m.op == Alu::Cmp { Alu::Sub } else { Alu::And };
                emit_alu_rr(a, host_op, size, 0, Opd::Reg(h));
                cmp_done = true;
            }
            Src::Reg(r) => get(a, l, rc, r, 1, true),
            Src::Imm(_) => {}
        }
    } else if let Some(h) = direct {
        // `op reg, [ea]` straight on the register's host register (a byte or word result
        // merges into it, a 32-bit one zero-extends it, as the guest's).
        if m.op.reads_cf() && !x.keep_flags {
            cf_to_host(a, l, x.pending);
        }
        emit_alu_r_mem(a, m.op, size, h);
        rc.dirty |= 1 << m.reg;
        // The record's result (or, deferred to a block-ending Jcc, its ways out's) is read
        // from `h` itself.
    } else {
        dynasm!(a ; .arch x64 ; mov rcx, rax);
        load_sized(a, 1, size);
        // A byte or word result merges into the whole register.
        get(a, l, rc, m.reg, 0, size != 4);
    }
    if !rmw && direct.is_none() && !cmp_done {
        if m.op.reads_cf() && !x.keep_flags {
            // The probe changed the host flags: CF from the lazy record (or r13).
            cf_to_host(a, l, x.pending);
        }
        let src = if m.mem_first { m.src } else { Src::Reg(1) };
        emit_alu(a, m.op, size, src);
        if m.op.stores() {
            put(a, l, rc, m.reg, 0);
        }
    }
    if defers_record(forms, i) {
        let cc = deferred_cc(forms[i + 1]);
        // The block's last instruction branches on these host flags (seventh round, part M,
        // as part F does for the register setters): no setcc, no record here; `compile`
        // writes it on the ways out that need it, from the host flags and the result
        // register. The miss path leaves both as the hit path does, from the record the
        // handler wrote (`Cold::host_flags`).
        let result = direct.unwrap_or(0);
        cold.push(Cold { miss, done, pre, post: *rc, x, cond: None, rflags_to_r13: false, host_flags: Some(result) });
        dynasm!(a ; .arch x64 ; =>done);
        *fl = FlagState {
            host_valid: true,
            deferred: Some(Deferred { cc, logic: m.op.is_logic(), size, result }),
            ..FlagState::unknown(fl.loop_exit_only)
        };
        return;
    }
    // A block-ending Jcc next is evaluated into r12b on both paths (the miss path from the
    // record the handler wrote).
    let jcc = forms::next_cond(forms, i);
    if let Some(cc) = jcc {
        emit_setcc(a, cc);
    }
    let mut hit = FlagState { host_valid: true, ..FlagState::unknown(fl.loop_exit_only) };
    write_record(a, l, forms, i, &mut hit, m.op.is_logic(), size, direct.unwrap_or(0));
    // The miss path evaluates a next Jcc from the record the handler wrote (and, where the hit
    // path left its flags pending in r13, puts them there from that record; where it left
    // them in the host flags, part K, puts them back there).
    let host_flags = hit.aux_in_host.then_some(NO_HOST);
    cold.push(Cold { miss, done, pre, post: *rc, x, cond: jcc, rflags_to_r13: hit.pending, host_flags });
    dynasm!(a ; .arch x64 ; =>done);
    *fl = FlagState {
        host_valid: hit.aux_in_host,
        cond_in_r12: jcc,
        pending: hit.pending,
        aux_in_host: hit.aux_in_host,
        ..FlagState::unknown(fl.loop_exit_only)
    };
}

/// `mov [ea], src` with the TLB probed inline. Pages holding code, not yet dirty or not RAM
/// have no valid write tag, so those stores take the handler's slow path (which sees stores
/// into code).
#[allow(clippy::too_many_arguments)]
fn emit_store<'e>(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    cold: &mut Vec<Cold<'e>>,
    x: Site<'e>,
    size: u8,
    src: u8,
    ea: Ea,
) {
    // The source straight from its host register (scratch rcx if it has none).
    let h = cached(a, l, rc, src);
    emit_write_access(a, l, rc, cold, x, size, ea, |a, rc| {
        let h = h.unwrap_or_else(|| {
            get(a, l, rc, src, 1, true);
            1
        });
        match size {
            1 => dynasm!(a ; .arch x64 ; mov [rax], Rb(h)),
            2 => dynasm!(a ; .arch x64 ; mov [rax], Rw(h)),
            4 => dynasm!(a ; .arch x64 ; mov [rax], Rd(h)),
            _ => dynasm!(a ; .arch x64 ; mov [rax], Rq(h)),
        }
    });
}

/// `mov [ea], imm` with the TLB probed inline, as `emit_store` (fifth round, part E).
#[allow(clippy::too_many_arguments)]
fn emit_store_imm<'e>(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    cold: &mut Vec<Cold<'e>>,
    x: Site<'e>,
    size: u8,
    imm: i32,
    ea: Ea,
) {
    emit_write_access(a, l, rc, cold, x, size, ea, |a, _| match size {
        1 => dynasm!(a ; .arch x64 ; mov BYTE [rax], imm as i8),
        2 => dynasm!(a ; .arch x64 ; mov WORD [rax], imm as i16),
        4 => dynasm!(a ; .arch x64 ; mov DWORD [rax], imm),
        _ => dynasm!(a ; .arch x64 ; mov QWORD [rax], imm),
    });
}

/// `shl`/`shr`/`sar [ea], count` (`s`: the operation, size and count) with the TLB probed
/// inline for write (a read-modify-write), where its flags are dead (the host's are left as
/// they come); a miss calls the handler.
fn emit_shift_mem<'e>(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    cold: &mut Vec<Cold<'e>>,
    x: Site<'e>,
    s: (ShiftKind, u8, u8),
    ea: Ea,
) {
    let (op, size, count) = s;
    let c = count as i8;
    emit_write_access(a, l, rc, cold, x, size, ea, |a, _| {
        macro_rules! sized {
            ($ins:ident) => {
                match size {
                    1 => dynasm!(a ; .arch x64 ; $ins BYTE [rax], c),
                    2 => dynasm!(a ; .arch x64 ; $ins WORD [rax], c),
                    4 => dynasm!(a ; .arch x64 ; $ins DWORD [rax], c),
                    _ => dynasm!(a ; .arch x64 ; $ins QWORD [rax], c),
                }
            };
        }
        match op {
            ShiftKind::Shl => sized!(shl),
            ShiftKind::Shr => sized!(shr),
            ShiftKind::Sar => sized!(sar),
        }
    });
}

/// What the inline stores and memory shifts share: the address of `ea` into rax, the TLB
/// probed for write, `access` on `[rax]` (it may load a cached register into `rc`), and the
/// handler on a miss, out of line.
#[allow(clippy::too_many_arguments)]
fn emit_write_access<'e>(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    cold: &mut Vec<Cold<'e>>,
    x: Site<'e>,
    size: u8,
    ea: Ea,
    access: impl FnOnce(&mut Asm, &mut RegCache),
) {
    let (miss, done) = (a.new_dynamic_label(), a.new_dynamic_label());
    let pre = emit_access_probe(a, l, rc, x, ea, size, tlb_layout::WRITE_TAG, miss);
    access(a, rc);
    // An access keeping the host flags (part K) gets them back after its handler.
    let host_flags = x.keep_flags.then_some(NO_HOST);
    cold.push(Cold { miss, done, pre, post: *rc, x, cond: None, rflags_to_r13: false, host_flags });
    dynasm!(a ; .arch x64 ; =>done);
}

/// `[rbp + ...]` of guest register `r`.
fn gpr_at(l: &Layout, r: u8) -> i32 {
    l.gpr + 8 * i32::from(r)
}

/// Loads guest register `r` into rax (`wide`) or eax.
fn load_rax(a: &mut Asm, l: &Layout, rc: &mut RegCache, r: u8, wide: bool) {
    get(a, l, rc, r, 0, wide);
}

/// Emits `f` (the inline form of instruction `i`); false when this instance has no
/// template after all (the caller then calls the handler).
#[allow(clippy::too_many_arguments)]
fn emit_inline(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    f: Form,
    forms: &[Option<Form>],
    i: usize,
    fl: &mut FlagState,
) -> bool {
    match f {
        Form::Mov { wide, dst, src: Src::Reg(r), imm64: None }
            if rc.host[usize::from(dst)] != NO_HOST && rc.host[usize::from(r)] == NO_HOST && !rax_holds(a, rc, r) =>
        {
            // A source without a host register: straight from `cpu.state.gpr` into the
            // destination's host register (a 32-bit load zero-extends as the guest's MOV does).
            let at = gpr_at(l, r);
            let d = def(rc, dst).expect("checked above");
            if wide {
                dynasm!(a ; .arch x64 ; mov Rq(d), [rbp + at]);
            } else {
                dynasm!(a ; .arch x64 ; mov Rd(d), [rbp + at]);
            }
            true
        }
        Form::Mov { wide, dst, src, imm64 } if rc.host[usize::from(dst)] != NO_HOST => {
            // Straight into the destination's host register (`mov` keeps the host flags).
            let s = match src {
                Src::Reg(r) => Some(read_reg(a, l, rc, r, 1)),
                Src::Imm(_) => None,
            };
            let d = def(rc, dst).expect("checked above");
            match (s, src, imm64) {
                (_, _, Some(v)) => dynasm!(a ; .arch x64 ; mov Rq(d), QWORD v as i64),
                (None, Src::Imm(v), None) if wide => dynasm!(a ; .arch x64 ; mov Rq(d), QWORD i64::from(v)),
                (None, Src::Imm(v), None) => dynasm!(a ; .arch x64 ; mov Rd(d), v),
                (Some(s), _, None) if wide => dynasm!(a ; .arch x64 ; mov Rq(d), Rq(s)),
                (Some(s), _, None) => dynasm!(a ; .arch x64 ; mov Rd(d), Rd(s)),
                (None, Src::Reg(_), None) => unreachable!("a register source has a host register"),
            }
            true
        }
        Form::Mov { wide, dst, src, imm64 } => {
            match (src, imm64) {
                (_, Some(v)) => dynasm!(a ; .arch x64 ; mov rax, QWORD v as i64),
                (Src::Imm(v), None) if wide => dynasm!(a ; .arch x64 ; mov rax, QWORD i64::from(v)),
                (Src::Imm(v), None) => dynasm!(a ; .arch x64 ; mov eax, v),
                (Src::Reg(r), None) => load_rax(a, l, rc, r, wide),
            }
            put(a, l, rc, dst, 0);
            true
        }
        Form::Lea { wide, dst, base, index, scale, disp, mask32 } => {
            // `lea` and `mov` leave the host flags alone. Operands and destination straight in
            // their host registers (scratch rax/rcx for those that have none).
            let b = (base != NO_REG).then(|| read_reg(a, l, rc, base, 0));
            let i = (index != NO_REG).then(|| read_reg(a, l, rc, index, 1));
            let d = def(rc, dst).unwrap_or(0);
            if (mask32 || !wide) && (b.is_some() || i.is_some()) {
                // A 32-bit LEA: the low 32 bits of the 64-bit sum, zero-extended (what the
                // guest's 32-bit operand or address size gives).
                emit_lea32(a, d, b, i, scale, disp);
            } else {
                emit_lea(a, d, b, i, scale, disp);
                if mask32 || !wide {
                    dynasm!(a ; .arch x64 ; mov Rd(d), Rd(d));
                }
            }
            if d == 0 {
                put(a, l, rc, dst, 0);
            }
            true
        }
        // Straight on the destination's host register where the record, if written, can take
        // the result from it (not CMP/TEST, whose result is not kept, with live flags).
        Form::Alu { op, size, dst, src }
            if rc.host[usize::from(dst)] != NO_HOST && (op.stores() || forms::flags_dead_after(forms, i)) =>
        {
            let d = cached(a, l, rc, dst).expect("checked above");
            // A register source without a host register: its `cpu.state.gpr` slot is the
            // host instruction's memory operand (no scratch load).
            let s = match src {
                Src::Reg(r) if rax_holds(a, rc, r) => Some(Opd::Reg(0)),
                Src::Reg(r) if rc.host[usize::from(r)] == NO_HOST => None,
                _ => Some(src_opd(a, l, rc, src)),
            };
            if op.reads_cf() && !fl.host_valid {
                // CF from the lazy record (bit 63 of aux).
                cf_to_host(a, l, fl.pending);
            }
            match (s, src) {
                (Some(s), _) => emit_alu_rr(a, op, size, d, s),
                (None, Src::Reg(r)) => emit_alu_r_gpr(a, op, size, d, gpr_at(l, r)),
                (None, Src::Imm(_)) => unreachable!("an immediate is an operand"),
            }
            if op.stores() {
                rc.dirty |= 1 << dst;
            }
            // The record (or, deferred, its ways out: part F) reads the result from its host
            // register.
            fl.result_host = d;
            after_flags(a, l, forms, i, fl, op.is_logic(), size);
            true
        }
        // A destination without a host register: the operation straight on `cpu.state.gpr`
        // (the record, if written, reads the result back; `mov` keeps the flags).
        Form::Alu { op, size, dst, src }
            if rc.host[usize::from(dst)] == NO_HOST
                && !rax_holds(a, rc, dst)
                && (if op.stores() { size != 4 } else { !record_read(forms, i) }) =>
        {
            let s = src_opd(a, l, rc, src);
            if op.reads_cf() && !fl.host_valid {
                cf_to_host(a, l, fl.pending);
            }
            let at = gpr_at(l, dst);
            emit_alu_gpr(a, op, size, at, s);
            if record_read(forms, i) {
                dynasm!(a ; .arch x64 ; mov rax, [rbp + at]);
            }
            after_flags(a, l, forms, i, fl, op.is_logic(), size);
            true
        }
        Form::Alu { op, size, dst, src } => {
            // A byte or word operation works on the whole register, whose other bits it keeps.
            // The source straight from its host register if it has one.
            let full = size != 4;
            if let Src::Reg(r) = src {
                if let Some(h) = cached(a, l, rc, r) {
                    load_rax(a, l, rc, dst, full);
                    if op.reads_cf() && !fl.host_valid {
                        cf_to_host(a, l, fl.pending);
                    }
                    // rax holds the result for the record: CMP as SUB, TEST as AND.
                    let host_op = match op {
                        Alu::Cmp => Alu::Sub,
                        Alu::Test => Alu::And,
                        op => op,
                    };
                    emit_alu_rr(a, host_op, size, 0, Opd::Reg(h));
                    if op.stores() {
                        put(a, l, rc, dst, 0);
                    }
                    after_flags(a, l, forms, i, fl, op.is_logic(), size);
                    return true;
                }
            }
            load_rax(a, l, rc, dst, full);
            if let Src::Reg(r) = src {
                get(a, l, rc, r, 1, full);
            }
            if op.reads_cf() && !fl.host_valid {
                // CF from the lazy record (bit 63 of aux) or r13.
                cf_to_host(a, l, fl.pending);
            }
            emit_alu(a, op, size, src);
            if op.stores() {
                put(a, l, rc, dst, 0);
            }
            after_flags(a, l, forms, i, fl, op.is_logic(), size);
            true
        }
        Form::IncDec { inc, size, dst } if rc.host[usize::from(dst)] != NO_HOST => {
            let d = cached(a, l, rc, dst).expect("checked above");
            if !fl.host_valid && !forms::flags_dead_after(forms, i) {
                // INC and DEC keep CF: give the host the guest's (unless nothing reads it).
                cf_to_host(a, l, fl.pending);
            }
            emit_incdec(a, inc, size, d);
            rc.dirty |= 1 << dst;
            fl.result_host = d;
            after_flags(a, l, forms, i, fl, false, size);
            true
        }
        Form::IncDec { inc, size, dst } if size != 4 && !rax_holds(a, rc, dst) => {
            // Straight on `cpu.state.gpr` (a 32-bit one would not zero-extend).
            if !fl.host_valid && !forms::flags_dead_after(forms, i) {
                cf_to_host(a, l, fl.pending);
            }
            let at = gpr_at(l, dst);
            emit_alu_gpr(a, if inc { Alu::Inc } else { Alu::Dec }, size, at, Opd::Imm(0));
            if record_read(forms, i) {
                dynasm!(a ; .arch x64 ; mov rax, [rbp + at]);
            }
            after_flags(a, l, forms, i, fl, false, size);
            true
        }
        Form::IncDec { inc, size, dst } => {
            load_rax(a, l, rc, dst, size != 4);
            if !fl.host_valid && !forms::flags_dead_after(forms, i) {
                // INC and DEC keep CF: give the host the guest's (unless nothing reads it).
                cf_to_host(a, l, fl.pending);
            }
            match (inc, size) {
                (true, 8) => dynasm!(a ; .arch x64 ; inc rax),
                (true, 4) => dynasm!(a ; .arch x64 ; inc eax),
                (true, 2) => dynasm!(a ; .arch x64 ; inc ax),
                (true, _) => dynasm!(a ; .arch x64 ; inc al),
                (false, 8) => dynasm!(a ; .arch x64 ; dec rax),
                (false, 4) => dynasm!(a ; .arch x64 ; dec eax),
                (false, 2) => dynasm!(a ; .arch x64 ; dec ax),
                (false, _) => dynasm!(a ; .arch x64 ; dec al),
            }
            put(a, l, rc, dst, 0);
            after_flags(a, l, forms, i, fl, false, size);
            true
        }
        Form::Jcc { cc } => {
            // The outcome in r12b (or, deferred, in the host flags); `compile` branches on it
            // to each way's exit.
            if fl.deferred.is_none() && fl.cond_in_r12 != Some(cc) {
                cond_from_record(a, l, rc, cc);
            }
            true
        }
        // `compile` stores RIP at the exit.
        Form::Jmp => true,
        Form::Shift { op, size, dst, count } if !forms::flags_dead_after(forms, i) => {
            emit_shift_live(a, l, rc, (op, size, dst, count), forms, i, fl);
            true
        }
        Form::Shift { op, size, dst, count } => {
            emit_shift_in_place(a, l, rc, (op, size, dst, count));
            // Its flags are dead (the caller checked), and some are not tier 0's.
            fl.host_valid = false;
            fl.cond_in_r12 = None;
            fl.pending = false;
            true
        }
        Form::Nop => true,
        Form::ShiftCl { op, wide, dst } if !forms::flags_dead_after(forms, i) => {
            emit_shift_cl_live(a, l, rc, (op, wide, dst), fl);
            true
        }
        Form::ShiftCl { op, wide, dst } => {
            // The host masks the count as the guest does; a 32-bit result is written (zero-
            // extended) even for a count of 0, as tier 0 writes it.
            load_rax(a, l, rc, dst, wide);
            get(a, l, rc, 1, 1, false);
            match (op, wide) {
                (ShiftKind::Shl, true) => dynasm!(a ; .arch x64 ; shl rax, cl),
                (ShiftKind::Shl, false) => dynasm!(a ; .arch x64 ; shl eax, cl),
                (ShiftKind::Shr, true) => dynasm!(a ; .arch x64 ; shr rax, cl),
                (ShiftKind::Shr, false) => dynasm!(a ; .arch x64 ; shr eax, cl),
                (ShiftKind::Sar, true) => dynasm!(a ; .arch x64 ; sar rax, cl),
                (ShiftKind::Sar, false) => dynasm!(a ; .arch x64 ; sar eax, cl),
            }
            put(a, l, rc, dst, 0);
            fl.host_valid = false;
            fl.cond_in_r12 = None;
            true
        }
        Form::Imul { wide, dst, src, imm } if rc.host[usize::from(dst)] != NO_HOST => {
            let s = read_reg(a, l, rc, src, 1);
            let d = cached(a, l, rc, dst).expect("checked above");
            match (wide, imm) {
                (true, None) => dynasm!(a ; .arch x64 ; imul Rq(d), Rq(s)),
                (false, None) => dynasm!(a ; .arch x64 ; imul Rd(d), Rd(s)),
                (true, Some(v)) => dynasm!(a ; .arch x64 ; imul Rq(d), Rq(s), v),
                (false, Some(v)) => dynasm!(a ; .arch x64 ; imul Rd(d), Rd(s), v),
            }
            rc.dirty |= 1 << dst;
            if !forms::flags_dead_after(forms, i) {
                write_imul_record(a, l, |a| {
                    if wide {
                        dynasm!(a ; .arch x64 ; mov rax, Rq(d));
                    } else {
                        dynasm!(a ; .arch x64 ; movsxd rax, Rd(d));
                    }
                });
            }
            fl.host_valid = false;
            fl.cond_in_r12 = None;
            fl.pending = false;
            true
        }
        Form::Imul { wide, dst, src, imm } => {
            get(a, l, rc, src, 1, wide);
            match (wide, imm) {
                (true, None) => {
                    load_rax(a, l, rc, dst, true);
                    dynasm!(a ; .arch x64 ; imul rax, rcx);
                }
                (false, None) => {
                    load_rax(a, l, rc, dst, false);
                    dynasm!(a ; .arch x64 ; imul eax, ecx);
                }
                (true, Some(v)) => dynasm!(a ; .arch x64 ; imul rax, rcx, v),
                (false, Some(v)) => dynasm!(a ; .arch x64 ; imul eax, ecx, v),
            }
            put(a, l, rc, dst, 0);
            if !forms::flags_dead_after(forms, i) {
                write_imul_record(a, l, |a| {
                    if !wide {
                        dynasm!(a ; .arch x64 ; movsxd rax, eax);
                    }
                });
            }
            fl.host_valid = false;
            fl.cond_in_r12 = None;
            fl.pending = false;
            true
        }
        Form::Rotate { left, wide, dst, count } => {
            // Straight on the destination's host register if it has one (a 32-bit rotate
            // zero-extends as the guest's does), else through rax.
            let d = match cached(a, l, rc, dst) {
                Some(h) => {
                    rc.dirty |= 1 << dst;
                    h
                }
                None => {
                    load_rax(a, l, rc, dst, wide);
                    0
                }
            };
            let c = count as i8;
            match (left, wide) {
                (true, true) => dynasm!(a ; .arch x64 ; rol Rq(d), c),
                (true, false) => dynasm!(a ; .arch x64 ; rol Rd(d), c),
                (false, true) => dynasm!(a ; .arch x64 ; ror Rq(d), c),
                (false, false) => dynasm!(a ; .arch x64 ; ror Rd(d), c),
            }
            if d == 0 {
                put(a, l, rc, dst, 0);
            }
            if !forms::flags_dead_after(forms, i) {
                rotate_record(a, l, count == 1);
            }
            fl.host_valid = false;
            fl.cond_in_r12 = None;
            true
        }
        Form::Not { wide, dst } if rc.host[usize::from(dst)] != NO_HOST => {
            let d = cached(a, l, rc, dst).expect("checked above");
            if wide {
                dynasm!(a ; .arch x64 ; not Rq(d));
            } else {
                dynasm!(a ; .arch x64 ; not Rd(d));
            }
            rc.dirty |= 1 << dst;
            true
        }
        Form::Not { wide, dst } => {
            load_rax(a, l, rc, dst, wide);
            if wide {
                dynasm!(a ; .arch x64 ; not rax);
            } else {
                dynasm!(a ; .arch x64 ; not eax);
            }
            put(a, l, rc, dst, 0);
            true
        }
        Form::Bswap { wide, dst } => {
            load_rax(a, l, rc, dst, wide);
            if wide {
                dynasm!(a ; .arch x64 ; bswap rax);
            } else {
                dynasm!(a ; .arch x64 ; bswap eax);
            }
            put(a, l, rc, dst, 0);
            true
        }
        Form::Movsxd { dst, src } if rc.host[usize::from(dst)] != NO_HOST && rc.host[usize::from(src)] == NO_HOST => {
            // Straight from the source's `cpu.state.gpr` slot (its low 32 bits).
            let at = gpr_at(l, src);
            let d = def(rc, dst).expect("checked above");
            dynasm!(a ; .arch x64 ; movsxd Rq(d), DWORD [rbp + at]);
            true
        }
        Form::Movsxd { dst, src } if rc.host[usize::from(dst)] != NO_HOST => {
            let s = read_reg(a, l, rc, src, 1);
            let d = def(rc, dst).expect("checked above");
            dynasm!(a ; .arch x64 ; movsxd Rq(d), Rd(s));
            true
        }
        Form::Movsxd { dst, src } => {
            get(a, l, rc, src, 0, false);
            dynasm!(a ; .arch x64 ; movsxd rax, eax);
            put(a, l, rc, dst, 0);
            true
        }
        Form::Cmov { cc, wide, dst, src } => {
            if fl.cond_in_r12 != Some(cc) {
                cond_from_record(a, l, rc, cc);
                fl.cond_in_r12 = Some(cc);
            }
            if rc.host[usize::from(dst)] != NO_HOST {
                let s = read_reg(a, l, rc, src, 1);
                let d = cached(a, l, rc, dst).expect("checked above");
                // A 32-bit CMOV zero-extends its destination whether or not it moves.
                if wide {
                    dynasm!(a ; .arch x64 ; test r12b, r12b ; cmovnz Rq(d), Rq(s));
                } else {
                    dynasm!(a ; .arch x64 ; test r12b, r12b ; cmovnz Rd(d), Rd(s));
                }
                rc.dirty |= 1 << dst;
                fl.host_valid = false;
                return true;
            }
            get(a, l, rc, src, 1, wide);
            load_rax(a, l, rc, dst, wide);
            // A 32-bit CMOV zero-extends its destination whether or not it moves.
            if wide {
                dynasm!(a ; .arch x64 ; test r12b, r12b ; cmovnz rax, rcx);
            } else {
                dynasm!(a ; .arch x64 ; test r12b, r12b ; cmovnz eax, ecx);
            }
            put(a, l, rc, dst, 0);
            // `test` changed the host flags; r12b still holds the condition.
            fl.host_valid = false;
            true
        }
        Form::Setcc { cc, dst } => {
            if fl.cond_in_r12 != Some(cc) {
                cond_from_record(a, l, rc, cc);
                fl.cond_in_r12 = Some(cc);
                fl.host_valid = false;
            }
            // `mov` keeps the host flags.
            get(a, l, rc, dst, 0, true);
            dynasm!(a ; .arch x64 ; mov al, r12b);
            put(a, l, rc, dst, 0);
            true
        }
        Form::Neg { size, dst } => {
            // A byte or word operation works on the whole register, whose other bits it keeps.
            load_rax(a, l, rc, dst, size != 4);
            match size {
                8 => dynasm!(a ; .arch x64 ; neg rax),
                4 => dynasm!(a ; .arch x64 ; neg eax),
                2 => dynasm!(a ; .arch x64 ; neg ax),
                _ => dynasm!(a ; .arch x64 ; neg al),
            }
            put(a, l, rc, dst, 0);
            after_flags(a, l, forms, i, fl, false, size);
            true
        }
        Form::MovExt { wide, dst, src, from, sign } if rc.host[usize::from(dst)] != NO_HOST => {
            let s = read_reg(a, l, rc, src, 1);
            let d = def(rc, dst).expect("checked above");
            match (from, sign, wide) {
                (1, false, _) => dynasm!(a ; .arch x64 ; movzx Rd(d), Rb(s)),
                (_, false, _) => dynasm!(a ; .arch x64 ; movzx Rd(d), Rw(s)),
                (1, true, false) => dynasm!(a ; .arch x64 ; movsx Rd(d), Rb(s)),
                (1, true, true) => dynasm!(a ; .arch x64 ; movsx Rq(d), Rb(s)),
                (_, true, false) => dynasm!(a ; .arch x64 ; movsx Rd(d), Rw(s)),
                (_, true, true) => dynasm!(a ; .arch x64 ; movsx Rq(d), Rw(s)),
            }
            true
        }
        Form::MovExt { wide, dst, src, from, sign } => {
            get(a, l, rc, src, 1, true);
            match (from, sign, wide) {
                (1, false, _) => dynasm!(a ; .arch x64 ; movzx eax, cl),
                (_, false, _) => dynasm!(a ; .arch x64 ; movzx eax, cx),
                (1, true, false) => dynasm!(a ; .arch x64 ; movsx eax, cl),
                (1, true, true) => dynasm!(a ; .arch x64 ; movsx rax, cl),
                (_, true, false) => dynasm!(a ; .arch x64 ; movsx eax, cx),
                (_, true, true) => dynasm!(a ; .arch x64 ; movsx rax, cx),
            }
            put(a, l, rc, dst, 0);
            true
        }
        // Emitted by `compile` itself.
        Form::Div { .. }
        | Form::Load { .. }
        | Form::Store { .. }
        | Form::Push { .. }
        | Form::Pop { .. }
        | Form::Call
        | Form::Ret { .. }
        | Form::JmpInd { .. }
        | Form::CallInd { .. }
        | Form::Sse(_)
        | Form::StoreImm { .. }
        | Form::DivMem { .. }
        | Form::ShiftMem { .. }
        | Form::AluMem { .. } => false,
    }
}

/// A source operand of a register-direct host instruction.
#[derive(Clone, Copy)]
enum Opd {
    /// A host register (a cached guest register, or scratch rcx).
    Reg(u8),
    Imm(i32),
}

/// The operand for `src`: its host register if it has one, else scratch rcx loaded with it.
fn src_opd(a: &mut Asm, l: &Layout, rc: &mut RegCache, src: Src) -> Opd {
    match src {
        Src::Imm(v) => Opd::Imm(v),
        Src::Reg(r) => Opd::Reg(cached(a, l, rc, r).unwrap_or_else(|| {
            get(a, l, rc, r, 1, true);
            1
        })),
    }
}

/// Host register `r` of guest register `g` about to be overwritten whole (not loaded first),
/// marked loaded and changed; `None` if `g` has no host register.
fn def(rc: &mut RegCache, g: u8) -> Option<u8> {
    let h = rc.host[usize::from(g)];
    if h == NO_HOST {
        return None;
    }
    rc.loaded |= 1 << g;
    rc.dirty |= 1 << g;
    Some(h)
}

/// `op d, s` of `size` bytes on host register `d` (a byte or word operation keeps the rest of
/// it, a 32-bit one zero-extends as x86 does). CMP and TEST change only the flags.
fn emit_alu_rr(a: &mut Asm, op: Alu, size: u8, d: u8, s: Opd) {
    macro_rules! both {
        ($ins:ident) => {
            match (size, s) {
                (8, Opd::Reg(r)) => dynasm!(a ; .arch x64 ; $ins Rq(d), Rq(r)),
                (4, Opd::Reg(r)) => dynasm!(a ; .arch x64 ; $ins Rd(d), Rd(r)),
                (2, Opd::Reg(r)) => dynasm!(a ; .arch x64 ; $ins Rw(d), Rw(r)),
                (_, Opd::Reg(r)) => dynasm!(a ; .arch x64 ; $ins Rb(d), Rb(r)),
                (8, Opd::Imm(v)) => dynasm!(a ; .arch x64 ; $ins Rq(d), v),
                (4, Opd::Imm(v)) => dynasm!(a ; .arch x64 ; $ins Rd(d), v),
                (2, Opd::Imm(v)) => dynasm!(a ; .arch x64 ; $ins Rw(d), WORD v as i16),
                (_, Opd::Imm(v)) => dynasm!(a ; .arch x64 ; $ins Rb(d), BYTE v as i8),
            }
        };
    }
    match op {
        Alu::Add => both!(add),
        Alu::Or => both!(or),
        Alu::Adc => both!(adc),
        Alu::Sbb => both!(sbb),
        Alu::And => both!(and),
        Alu::Test => both!(test),
        Alu::Sub => both!(sub),
        Alu::Cmp => both!(cmp),
        Alu::Xor => both!(xor),
        Alu::Inc | Alu::Dec => emit_incdec(a, op == Alu::Inc, size, d),
    }
}

/// `op d, [rax]` of `size` bytes on host register `d` (ADD, OR, ADC, SBB, AND, SUB, XOR: the
/// memory-source ALU forms that store their result).
fn emit_alu_r_mem(a: &mut Asm, op: Alu, size: u8, d: u8) {
    macro_rules! both {
        ($ins:ident) => {
            match size {
                8 => dynasm!(a ; .arch x64 ; $ins Rq(d), QWORD [rax]),
                4 => dynasm!(a ; .arch x64 ; $ins Rd(d), DWORD [rax]),
                2 => dynasm!(a ; .arch x64 ; $ins Rw(d), WORD [rax]),
                _ => dynasm!(a ; .arch x64 ; $ins Rb(d), BYTE [rax]),
            }
        };
    }
    match op {
        Alu::Add => both!(add),
        Alu::Or => both!(or),
        Alu::Adc => both!(adc),
        Alu::Sbb => both!(sbb),
        Alu::And => both!(and),
        Alu::Sub => both!(sub),
        Alu::Xor => both!(xor),
        Alu::Cmp | Alu::Test | Alu::Inc | Alu::Dec => unreachable!("not a register-destination form"),
    }
}

/// `op d, [rbp + at]` of `size` bytes: an ALU operation on host register `d` whose source is a
/// guest register in `cpu.state.gpr` (the low `size` bytes of its slot: little-endian).
fn emit_alu_r_gpr(a: &mut Asm, op: Alu, size: u8, d: u8, at: i32) {
    macro_rules! both {
        ($ins:ident) => {
            match size {
                8 => dynasm!(a ; .arch x64 ; $ins Rq(d), QWORD [rbp + at]),
                4 => dynasm!(a ; .arch x64 ; $ins Rd(d), DWORD [rbp + at]),
                2 => dynasm!(a ; .arch x64 ; $ins Rw(d), WORD [rbp + at]),
                _ => dynasm!(a ; .arch x64 ; $ins Rb(d), BYTE [rbp + at]),
            }
        };
    }
    match op {
        Alu::Add => both!(add),
        Alu::Or => both!(or),
        Alu::Adc => both!(adc),
        Alu::Sbb => both!(sbb),
        Alu::And => both!(and),
        // TEST has only the memory-first encoding (the same operation).
        Alu::Test => match size {
            8 => dynasm!(a ; .arch x64 ; test QWORD [rbp + at], Rq(d)),
            4 => dynasm!(a ; .arch x64 ; test DWORD [rbp + at], Rd(d)),
            2 => dynasm!(a ; .arch x64 ; test WORD [rbp + at], Rw(d)),
            _ => dynasm!(a ; .arch x64 ; test BYTE [rbp + at], Rb(d)),
        },
        Alu::Sub => both!(sub),
        Alu::Cmp => both!(cmp),
        Alu::Xor => both!(xor),
        Alu::Inc | Alu::Dec => emit_incdec(a, op == Alu::Inc, size, d),
    }
}

/// `op [rbp + at], s` of `size` bytes: an ALU operation straight on a guest register in
/// `cpu.state.gpr` (byte, word and 64-bit forms; a 32-bit one would not zero-extend unless
/// it is CMP/TEST, which change only the flags), or INC/DEC.
fn emit_alu_gpr(a: &mut Asm, op: Alu, size: u8, at: i32, s: Opd) {
    macro_rules! both {
        ($ins:ident) => {
            match (size, s) {
                (8, Opd::Reg(r)) => dynasm!(a ; .arch x64 ; $ins QWORD [rbp + at], Rq(r)),
                (4, Opd::Reg(r)) => dynasm!(a ; .arch x64 ; $ins DWORD [rbp + at], Rd(r)),
                (2, Opd::Reg(r)) => dynasm!(a ; .arch x64 ; $ins WORD [rbp + at], Rw(r)),
                (_, Opd::Reg(r)) => dynasm!(a ; .arch x64 ; $ins BYTE [rbp + at], Rb(r)),
                (8, Opd::Imm(v)) => dynasm!(a ; .arch x64 ; $ins QWORD [rbp + at], v),
                (4, Opd::Imm(v)) => dynasm!(a ; .arch x64 ; $ins DWORD [rbp + at], v),
                (2, Opd::Imm(v)) => dynasm!(a ; .arch x64 ; $ins WORD [rbp + at], WORD v as i16),
                (_, Opd::Imm(v)) => dynasm!(a ; .arch x64 ; $ins BYTE [rbp + at], BYTE v as i8),
            }
        };
    }
    match op {
        Alu::Add => both!(add),
        Alu::Or => both!(or),
        Alu::Adc => both!(adc),
        Alu::Sbb => both!(sbb),
        Alu::And => both!(and),
        Alu::Test => both!(test),
        Alu::Sub => both!(sub),
        Alu::Cmp => both!(cmp),
        Alu::Xor => both!(xor),
        Alu::Inc => match size {
            8 => dynasm!(a ; .arch x64 ; inc QWORD [rbp + at]),
            4 => dynasm!(a ; .arch x64 ; inc DWORD [rbp + at]),
            2 => dynasm!(a ; .arch x64 ; inc WORD [rbp + at]),
            _ => dynasm!(a ; .arch x64 ; inc BYTE [rbp + at]),
        },
        Alu::Dec => match size {
            8 => dynasm!(a ; .arch x64 ; dec QWORD [rbp + at]),
            4 => dynasm!(a ; .arch x64 ; dec DWORD [rbp + at]),
            2 => dynasm!(a ; .arch x64 ; dec WORD [rbp + at]),
            _ => dynasm!(a ; .arch x64 ; dec BYTE [rbp + at]),
        },
    }
}

/// `inc`/`dec` of the low `size` bytes of host register `d`.
fn emit_incdec(a: &mut Asm, inc: bool, size: u8, d: u8) {
    match (inc, size) {
        (true, 8) => dynasm!(a ; .arch x64 ; inc Rq(d)),
        (true, 4) => dynasm!(a ; .arch x64 ; inc Rd(d)),
        (true, 2) => dynasm!(a ; .arch x64 ; inc Rw(d)),
        (true, _) => dynasm!(a ; .arch x64 ; inc Rb(d)),
        (false, 8) => dynasm!(a ; .arch x64 ; dec Rq(d)),
        (false, 4) => dynasm!(a ; .arch x64 ; dec Rd(d)),
        (false, 2) => dynasm!(a ; .arch x64 ; dec Rw(d)),
        (false, _) => dynasm!(a ; .arch x64 ; dec Rb(d)),
    }
}

/// `lea d, [b + i << scale + disp]` on host registers (`None`: no base or no index).
fn emit_lea(a: &mut Asm, d: u8, b: Option<u8>, i: Option<u8>, scale: u8, disp: i32) {
    match (b, i, scale) {
        (None, None, _) => dynasm!(a ; .arch x64 ; mov Rq(d), QWORD i64::from(disp)),
        (Some(b), None, _) => dynasm!(a ; .arch x64 ; lea Rq(d), [Rq(b) + disp]),
        (Some(b), Some(i), 0) => dynasm!(a ; .arch x64 ; lea Rq(d), [Rq(b) + Rq(i) + disp]),
        (Some(b), Some(i), 1) => dynasm!(a ; .arch x64 ; lea Rq(d), [Rq(b) + Rq(i) * 2 + disp]),
        (Some(b), Some(i), 2) => dynasm!(a ; .arch x64 ; lea Rq(d), [Rq(b) + Rq(i) * 4 + disp]),
        (Some(b), Some(i), _) => dynasm!(a ; .arch x64 ; lea Rq(d), [Rq(b) + Rq(i) * 8 + disp]),
        (None, Some(i), 0) => dynasm!(a ; .arch x64 ; lea Rq(d), [Rq(i) + disp]),
        (None, Some(i), 1) => dynasm!(a ; .arch x64 ; lea Rq(d), [Rq(i) * 2 + disp]),
        (None, Some(i), 2) => dynasm!(a ; .arch x64 ; lea Rq(d), [Rq(i) * 4 + disp]),
        (None, Some(i), _) => dynasm!(a ; .arch x64 ; lea Rq(d), [Rq(i) * 8 + disp]),
    }
}

/// `lea d32, [b + i << scale + disp]` on host registers (64-bit addressing; at least one of `b`
/// and `i`): the low 32 bits of the sum, zero-extended.
fn emit_lea32(a: &mut Asm, d: u8, b: Option<u8>, i: Option<u8>, scale: u8, disp: i32) {
    match (b, i, scale) {
        (None, None, _) => unreachable!("a base or an index"),
        (Some(b), None, _) => dynasm!(a ; .arch x64 ; lea Rd(d), [Rq(b) + disp]),
        (Some(b), Some(i), 0) => dynasm!(a ; .arch x64 ; lea Rd(d), [Rq(b) + Rq(i) + disp]),
        (Some(b), Some(i), 1) => dynasm!(a ; .arch x64 ; lea Rd(d), [Rq(b) + Rq(i) * 2 + disp]),
        (Some(b), Some(i), 2) => dynasm!(a ; .arch x64 ; lea Rd(d), [Rq(b) + Rq(i) * 4 + disp]),
        (Some(b), Some(i), _) => dynasm!(a ; .arch x64 ; lea Rd(d), [Rq(b) + Rq(i) * 8 + disp]),
        (None, Some(i), 0) => dynasm!(a ; .arch x64 ; lea Rd(d), [Rq(i) + disp]),
        (None, Some(i), 1) => dynasm!(a ; .arch x64 ; lea Rd(d), [Rq(i) * 2 + disp]),
        (None, Some(i), 2) => dynasm!(a ; .arch x64 ; lea Rd(d), [Rq(i) * 4 + disp]),
        (None, Some(i), _) => dynasm!(a ; .arch x64 ; lea Rd(d), [Rq(i) * 8 + disp]),
    }
}

/// The host register holding guest register `g` for reading: its own if cached, else scratch
/// `s` loaded with all 64 bits.
fn read_reg(a: &mut Asm, l: &Layout, rc: &mut RegCache, g: u8, s: u8) -> u8 {
    cached(a, l, rc, g).unwrap_or_else(|| {
        get(a, l, rc, g, s, true);
        s
    })
}

/// `op rax/eax/ax/al, rcx/ecx/cx/cl/imm` of `size` bytes (CMP as SUB and TEST as AND: same
/// flags, the result is not stored).
fn emit_alu(a: &mut Asm, op: Alu, size: u8, src: Src) {
    macro_rules! both {
        ($ins:ident) => {
            match (size, src) {
                (8, Src::Reg(_)) => dynasm!(a ; .arch x64 ; $ins rax, rcx),
                (4, Src::Reg(_)) => dynasm!(a ; .arch x64 ; $ins eax, ecx),
                (2, Src::Reg(_)) => dynasm!(a ; .arch x64 ; $ins ax, cx),
                (_, Src::Reg(_)) => dynasm!(a ; .arch x64 ; $ins al, cl),
                (8, Src::Imm(v)) => dynasm!(a ; .arch x64 ; $ins rax, v),
                (4, Src::Imm(v)) => dynasm!(a ; .arch x64 ; $ins eax, v),
                (2, Src::Imm(v)) => dynasm!(a ; .arch x64 ; $ins ax, WORD v as i16),
                (_, Src::Imm(v)) => dynasm!(a ; .arch x64 ; $ins al, BYTE v as i8),
            }
        };
    }
    match op {
        Alu::Add => both!(add),
        Alu::Or => both!(or),
        Alu::Adc => both!(adc),
        Alu::Sbb => both!(sbb),
        Alu::And | Alu::Test => both!(and),
        Alu::Sub | Alu::Cmp => both!(sub),
        Alu::Xor => both!(xor),
        // Only memory INC/DEC are `Alu` operations (emitted by `emit_alu_to_mem`); the same
        // instruction on rax for completeness.
        Alu::Inc | Alu::Dec => match (op == Alu::Inc, size) {
            (true, 8) => dynasm!(a ; .arch x64 ; inc rax),
            (true, 4) => dynasm!(a ; .arch x64 ; inc eax),
            (true, 2) => dynasm!(a ; .arch x64 ; inc ax),
            (true, _) => dynasm!(a ; .arch x64 ; inc al),
            (false, 8) => dynasm!(a ; .arch x64 ; dec rax),
            (false, 4) => dynasm!(a ; .arch x64 ; dec eax),
            (false, 2) => dynasm!(a ; .arch x64 ; dec ax),
            (false, _) => dynasm!(a ; .arch x64 ; dec al),
        },
    }
}

/// `op [rax], rcx/ecx/cx/cl/imm` of `size` bytes (a read-modify-write ALU form's host
/// instruction; not CMP/TEST).
fn emit_alu_to_mem(a: &mut Asm, op: Alu, size: u8, src: Src) {
    macro_rules! both {
        ($ins:ident) => {
            match (size, src) {
                (8, Src::Reg(_)) => dynasm!(a ; .arch x64 ; $ins QWORD [rax], rcx),
                (4, Src::Reg(_)) => dynasm!(a ; .arch x64 ; $ins DWORD [rax], ecx),
                (2, Src::Reg(_)) => dynasm!(a ; .arch x64 ; $ins WORD [rax], cx),
                (_, Src::Reg(_)) => dynasm!(a ; .arch x64 ; $ins BYTE [rax], cl),
                (8, Src::Imm(v)) => dynasm!(a ; .arch x64 ; $ins QWORD [rax], v),
                (4, Src::Imm(v)) => dynasm!(a ; .arch x64 ; $ins DWORD [rax], v),
                (2, Src::Imm(v)) => dynasm!(a ; .arch x64 ; $ins WORD [rax], WORD v as i16),
                (_, Src::Imm(v)) => dynasm!(a ; .arch x64 ; $ins BYTE [rax], BYTE v as i8),
            }
        };
    }
    match op {
        Alu::Add => both!(add),
        Alu::Or => both!(or),
        Alu::Adc => both!(adc),
        Alu::Sbb => both!(sbb),
        Alu::And | Alu::Test => both!(and),
        Alu::Sub | Alu::Cmp => both!(sub),
        Alu::Xor => both!(xor),
        Alu::Inc => match size {
            8 => dynasm!(a ; .arch x64 ; inc QWORD [rax]),
            4 => dynasm!(a ; .arch x64 ; inc DWORD [rax]),
            2 => dynasm!(a ; .arch x64 ; inc WORD [rax]),
            _ => dynasm!(a ; .arch x64 ; inc BYTE [rax]),
        },
        Alu::Dec => match size {
            8 => dynasm!(a ; .arch x64 ; dec QWORD [rax]),
            4 => dynasm!(a ; .arch x64 ; dec DWORD [rax]),
            2 => dynasm!(a ; .arch x64 ; dec WORD [rax]),
            _ => dynasm!(a ; .arch x64 ; dec BYTE [rax]),
        },
    }
}

/// Whether the record of flag setter `i` is deferred to the block-ending Jcc (part F) or JMP
/// (eighth round, part E: a region's edge into a member whose flags are dead at its start then
/// writes none) right after it (`after_flags`).
fn defers_record(forms: &[Option<Form>], i: usize) -> bool {
    i + 2 == forms.len() && matches!(forms[i + 1], Some(Form::Jcc { .. } | Form::Jmp))
}

/// The condition code a deferred record's block-ending branch `f` tests (a JMP tests none: 0,
/// never read).
fn deferred_cc(f: Option<Form>) -> u8 {
    match f {
        Some(Form::Jcc { cc }) => cc,
        _ => 0,
    }
}

/// Whether `after_flags` writes the record of instruction `i` (and so reads its result from rax).
fn record_read(forms: &[Option<Form>], i: usize) -> bool {
    !matches!(forms.get(i + 1), Some(Some(Form::IncDec { .. }))) && !forms::flags_dead_after(forms, i)
}

/// After an inline form set the host flags (result in rax/eax): evaluates the block-ending Jcc
/// that follows into r12b, and writes the lazy record unless the flags are dead.
fn after_flags(a: &mut Asm, l: &Layout, forms: &[Option<Form>], i: usize, fl: &mut FlagState, logic: bool, size: u8) {
    let result = std::mem::replace(&mut fl.result_host, 0);
    fl.host_valid = true;
    fl.cond_in_r12 = None;
    // This instruction's flags replace a pending setter's.
    fl.pending = false;
    fl.logic_pending = false;
    fl.aux_in_host = false;
    if defers_record(forms, i) {
        // The block's last instruction branches on these host flags (part F) or jumps (part
        // E): the record only on the ways that need it, written by `compile` at the block's end.
        let cc = deferred_cc(forms[i + 1]);
        fl.deferred = Some(Deferred { cc, logic, size, result });
        return;
    }
    if let Some(cc) = forms::next_cond(forms, i) {
        emit_setcc(a, cc);
        fl.cond_in_r12 = Some(cc);
    }
    // An inline INC/DEC next reads the CF it keeps from the host flags, still valid here, and
    // writes the whole record itself: nothing reads this instruction's record.
    if let Some(Some(Form::IncDec { .. })) = forms.get(i + 1) {
        return;
    }
    if logic && !forms::flags_dead_after(forms, i) && forms::record_only_on_misses(forms, i) {
        // Read only by the handlers of the probes before the next setter, if they miss (part
        // M): the result waits in r13, no store on the hit path.
        match size {
            1 => dynasm!(a ; .arch x64 ; movsx r13, Rb(result)),
            2 => dynasm!(a ; .arch x64 ; movsx r13, Rw(result)),
            4 => dynasm!(a ; .arch x64 ; movsxd r13, Rd(result)),
            _ => dynasm!(a ; .arch x64 ; mov r13, Rq(result)),
        }
        fl.logic_pending = true;
        return;
    }
    write_record(a, l, forms, i, fl, logic, size, result);
}

/// Writes the lazy record from the host flags and the result in host register `result` (0:
/// rax), unless the flags of instruction `i` are dead; its `aux` only into `r13` (pending)
/// where [`forms::aux_deferrable`] allows.
#[allow(clippy::too_many_arguments)]
fn write_record(
    a: &mut Asm,
    l: &Layout,
    forms: &[Option<Form>],
    i: usize,
    fl: &mut FlagState,
    logic: bool,
    size: u8,
    result: u8,
) {
    fl.pending = false;
    fl.aux_in_host = false;
    if forms::flags_dead_after(forms, i) {
        return;
    }
    if !logic && forms::aux_stays_in_host_flags(forms, i) {
        // Part K: the next reader takes CF from the host flags themselves; `aux` is computed
        // only where something leaves the hit path first (`FlagState::aux_in_host`). The record
        // holds the result sign-extended from the operand size (`movsx` keeps the flags).
        match size {
            1 => dynasm!(a ; .arch x64 ; movsx rax, Rb(result) ; mov [rbp + l.lazy_result], rax),
            2 => dynasm!(a ; .arch x64 ; movsx rax, Rw(result) ; mov [rbp + l.lazy_result], rax),
            4 => dynasm!(a ; .arch x64 ; movsxd rax, Rd(result) ; mov [rbp + l.lazy_result], rax),
            _ => dynasm!(a ; .arch x64 ; mov [rbp + l.lazy_result], Rq(result)),
        }
        fl.aux_in_host = true;
        return;
    }
    let defer_aux = !logic && forms::aux_deferrable(forms, i, fl.loop_exit_only);
    fl.pending = record_from(a, l, result, size, logic, defer_aux);
    if !logic && !fl.pending {
        fl.host_valid = false;
    }
}

/// The record of an IMUL whose flags are live, as tier 0 writes it (`set_mul_flags`: CF = OF =
/// the host's, AF = 0, SF/PF from the result, ZF forced clear by 0x100). `result_to_rax`
/// puts the product, sign-extended, in rax without touching the host flags.
fn write_imul_record(a: &mut Asm, l: &Layout, result_to_rax: impl FnOnce(&mut Asm)) {
    dynasm!(a ; .arch x64 ; setc cl ; movzx ecx, cl ; shl rcx, 63 ; mov [rbp + l.lazy_aux], rcx);
    result_to_rax(a);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 0x100
        ; test rax, rax
        ; cmovz rax, rcx
        ; mov [rbp + l.lazy_result], rax
    );
}

/// `setcc r12b` for x86 condition code `cc`.
fn emit_setcc(a: &mut Asm, cc: u8) {
    note_r12_written();
    match cc {
        0 => dynasm!(a ; .arch x64 ; seto r12b),
        1 => dynasm!(a ; .arch x64 ; setno r12b),
        2 => dynasm!(a ; .arch x64 ; setb r12b),
        3 => dynasm!(a ; .arch x64 ; setae r12b),
        4 => dynasm!(a ; .arch x64 ; sete r12b),
        5 => dynasm!(a ; .arch x64 ; setne r12b),
        6 => dynasm!(a ; .arch x64 ; setbe r12b),
        7 => dynasm!(a ; .arch x64 ; seta r12b),
        8 => dynasm!(a ; .arch x64 ; sets r12b),
        9 => dynasm!(a ; .arch x64 ; setns r12b),
        10 => dynasm!(a ; .arch x64 ; setp r12b),
        11 => dynasm!(a ; .arch x64 ; setnp r12b),
        12 => dynasm!(a ; .arch x64 ; setl r12b),
        13 => dynasm!(a ; .arch x64 ; setge r12b),
        14 => dynasm!(a ; .arch x64 ; setle r12b),
        _ => dynasm!(a ; .arch x64 ; setg r12b),
    }
}

/// Scratch register `s` (0 = rax, 1 = rcx) = the `size`-byte value at [rax], zero-extended.
fn load_sized(a: &mut Asm, s: u8, size: u8) {
    match size {
        1 => dynasm!(a ; .arch x64 ; movzx Rd(s), BYTE [rax]),
        2 => dynasm!(a ; .arch x64 ; movzx Rd(s), WORD [rax]),
        4 => dynasm!(a ; .arch x64 ; mov Rd(s), [rax]),
        _ => dynasm!(a ; .arch x64 ; mov Rq(s), [rax]),
    }
}

/// r12b = condition `cc` of the guest flags in the lazy record (exact wherever the condition
/// is not already in r12b: see `write_record`). ZF and CF are read inline; the others through
/// `host::lazy_cond`, a plain call that clobbers the caller-saved host registers, so the
/// cached registers are spilled and forgotten first, as around a handler call.
fn cond_from_record(a: &mut Asm, l: &Layout, rc: &mut RegCache, cc: u8) {
    note_r12_written();
    match cc {
        2 | 3 => {
            dynasm!(a ; .arch x64 ; bt QWORD [rbp + l.lazy_aux], 63);
            emit_setcc(a, cc);
        }
        4 => dynasm!(a ; .arch x64 ; cmp QWORD [rbp + l.lazy_result], 0 ; sete r12b),
        5 => dynasm!(a ; .arch x64 ; cmp QWORD [rbp + l.lazy_result], 0 ; setne r12b),
        _ => {
            spill(a, l, rc);
            dynasm!(a
                ; .arch x64
                ; mov rdi, rbx
                ; mov esi, i32::from(cc)
                ; mov rax, QWORD lazy_cond as *const () as i64
                ; call rax
                ; mov r12d, eax
            );
            rc.loaded = 0;
            rc.dirty = 0;
        }
    }
}

/// After `rol`/`ror` by an immediate whose flags are live (part E): CF and OF of the record
/// replaced as tier 0 replaces them (`emu::interp::shift`: CF from the host; OF from the host
/// for a count of 1, else kept), SF, ZF, PF and AF kept (the record is exact before a rotate
/// whose flags are live: `forms::flags_dead_after` does not see through it then).
fn rotate_record(a: &mut Asm, l: &Layout, by1: bool) {
    if by1 {
        // aux = (aux & !(3 << 62)) | CF << 63 | (CF ^ OF) << 62.
        dynasm!(a
            ; .arch x64
            ; setc cl
            ; seto dl
            ; movzx ecx, cl
            ; movzx edx, dl
            ; xor edx, ecx
            ; shl rcx, 63
            ; shl rdx, 62
            ; or rcx, rdx
            ; mov rax, [rbp + l.lazy_aux]
            ; shl rax, 2
            ; shr rax, 2
            ; or rax, rcx
            ; mov [rbp + l.lazy_aux], rax
        );
    } else {
        // OF kept: bits 63 and 62 both flip where CF changes.
        dynasm!(a
            ; .arch x64
            ; setc cl
            ; movzx ecx, cl
            ; mov rdx, [rbp + l.lazy_aux]
            ; shr rdx, 63
            ; xor rcx, rdx
            ; neg rcx
            ; shl rcx, 62
            ; xor [rbp + l.lazy_aux], rcx
        );
    }
}

/// `shl`/`shr`/`sar dst, count` straight on the destination's host register if it has one,
/// else through rax and its slot; the host flags are the host shift's.
fn emit_shift_in_place(a: &mut Asm, l: &Layout, rc: &mut RegCache, (op, size, dst, count): (ShiftKind, u8, u8, u8)) {
    match cached(a, l, rc, dst) {
        Some(d) => {
            emit_shift_imm(a, op, size, count, d);
            rc.dirty |= 1 << dst;
        }
        None => {
            load_rax(a, l, rc, dst, size != 4);
            emit_shift_imm(a, op, size, count, 0);
            put(a, l, rc, dst, 0);
        }
    }
}

/// `shl`/`shr`/`sar` of the low `size` bytes of host register `r` (the rest kept) by `count` (1..width-1).
fn emit_shift_imm(a: &mut Asm, op: ShiftKind, size: u8, count: u8, r: u8) {
    let c = count as i8;
    match (op, size) {
        (ShiftKind::Shl, 8) => dynasm!(a ; .arch x64 ; shl Rq(r), c),
        (ShiftKind::Shl, 4) => dynasm!(a ; .arch x64 ; shl Rd(r), c),
        (ShiftKind::Shl, 2) => dynasm!(a ; .arch x64 ; shl Rw(r), c),
        (ShiftKind::Shl, _) => dynasm!(a ; .arch x64 ; shl Rb(r), c),
        (ShiftKind::Shr, 8) => dynasm!(a ; .arch x64 ; shr Rq(r), c),
        (ShiftKind::Shr, 4) => dynasm!(a ; .arch x64 ; shr Rd(r), c),
        (ShiftKind::Shr, 2) => dynasm!(a ; .arch x64 ; shr Rw(r), c),
        (ShiftKind::Shr, _) => dynasm!(a ; .arch x64 ; shr Rb(r), c),
        (ShiftKind::Sar, 8) => dynasm!(a ; .arch x64 ; sar Rq(r), c),
        (ShiftKind::Sar, 4) => dynasm!(a ; .arch x64 ; sar Rd(r), c),
        (ShiftKind::Sar, 2) => dynasm!(a ; .arch x64 ; sar Rw(r), c),
        (ShiftKind::Sar, _) => dynasm!(a ; .arch x64 ; sar Rb(r), c),
    }
}

/// After a shift by a count in 1..width-1 (host CF valid, rdx = the original operand, the
/// result stored in guest register `dst`): the record as tier 0 writes it
/// (`emu::interp::shift`: OF as a count of 1 would give on the original operand, for SAR 0;
/// AF 0; the result sign-extended from `size` bytes).
fn shift_record(a: &mut Asm, l: &Layout, rc: &mut RegCache, op: ShiftKind, size: u8, dst: u8) {
    let top = (size * 8 - 1) as i8;
    // rcx = CF; rdx = OF (bit `top` of the original operand, or of it XOR itself shifted left).
    dynasm!(a ; .arch x64 ; setc cl ; movzx ecx, cl);
    match op {
        ShiftKind::Shl => dynasm!(a ; .arch x64 ; lea rax, [rdx + rdx] ; xor rdx, rax ; shr rdx, top ; and edx, 1),
        ShiftKind::Shr => dynasm!(a ; .arch x64 ; shr rdx, top ; and edx, 1),
        ShiftKind::Sar => dynasm!(a ; .arch x64 ; xor edx, edx),
    }
    // aux = CF << 63 | (CF ^ OF) << 62.
    dynasm!(a
        ; .arch x64
        ; xor edx, ecx
        ; shl rdx, 62
        ; shl rcx, 63
        ; or rdx, rcx
        ; mov [rbp + l.lazy_aux], rdx
    );
    get(a, l, rc, dst, 0, true);
    match size {
        1 => dynasm!(a ; .arch x64 ; movsx rax, al),
        2 => dynasm!(a ; .arch x64 ; movsx rax, ax),
        4 => dynasm!(a ; .arch x64 ; movsxd rax, eax),
        _ => {}
    }
    dynasm!(a ; .arch x64 ; mov [rbp + l.lazy_result], rax);
}

/// `shl`/`shr`/`sar dst, count` (1..width-1) whose flags are live: the host instruction for
/// the result, CF, ZF, SF and PF; the record written by `shift_record`, since the host's OF
/// and AF for counts above 1 need not be tier 0's. A condition read next that involves OF is
/// left to the record.
fn emit_shift_live(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    (op, size, dst, count): (ShiftKind, u8, u8, u8),
    forms: &[Option<Form>],
    i: usize,
    fl: &mut FlagState,
) {
    fl.cond_in_r12 = None;
    fl.pending = false;
    fl.aux_in_host = false;
    if let Some(Some(Form::IncDec { .. })) = forms.get(i + 1) {
        // An inline INC/DEC next overwrites every flag but CF and takes CF from the host
        // flags, and the host's CF is tier 0's (a count of 1..width-1 shifts the same bit
        // out): nothing reads this shift's record, so none is written (busybox gzip's
        // `shr r12b,1; inc rbp`, div64's `shl r8,20; dec rcx`).
        emit_shift_in_place(a, l, rc, (op, size, dst, count));
        fl.host_valid = true;
        return;
    }
    load_rax(a, l, rc, dst, size != 4);
    dynasm!(a ; .arch x64 ; mov rdx, rax);
    emit_shift_imm(a, op, size, count, 0);
    put(a, l, rc, dst, 0);
    fl.host_valid = false;
    // O, NO, L, GE, LE, G read OF.
    if let Some(cc) = forms::next_cond(forms, i).filter(|&cc| !matches!(cc, 0 | 1 | 12..=15)) {
        emit_setcc(a, cc);
        fl.cond_in_r12 = Some(cc);
    }
    shift_record(a, l, rc, op, size, dst);
}

/// `shl`/`shr`/`sar dst, cl` whose flags are live: a count of 0 (after masking) changes no
/// flag and leaves the record alone (a 32-bit destination is still written, zero-extended);
/// any other count writes the record as `emit_shift_live` does.
fn emit_shift_cl_live(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    (op, wide, dst): (ShiftKind, bool, u8),
    fl: &mut FlagState,
) {
    let (zero, done) = (a.new_dynamic_label(), a.new_dynamic_label());
    load_rax(a, l, rc, dst, wide);
    get(a, l, rc, 1, 1, false);
    let top: i8 = if wide { 63 } else { 31 };
    dynasm!(a ; .arch x64 ; mov rdx, rax ; test cl, top ; jz =>zero);
    match (op, wide) {
        (ShiftKind::Shl, true) => dynasm!(a ; .arch x64 ; shl rax, cl),
        (ShiftKind::Shl, false) => dynasm!(a ; .arch x64 ; shl eax, cl),
        (ShiftKind::Shr, true) => dynasm!(a ; .arch x64 ; shr rax, cl),
        (ShiftKind::Shr, false) => dynasm!(a ; .arch x64 ; shr eax, cl),
        (ShiftKind::Sar, true) => dynasm!(a ; .arch x64 ; sar rax, cl),
        (ShiftKind::Sar, false) => dynasm!(a ; .arch x64 ; sar eax, cl),
    }
    put(a, l, rc, dst, 0);
    shift_record(a, l, rc, op, if wide { 8 } else { 4 }, dst);
    dynasm!(a ; .arch x64 ; jmp =>done ; =>zero);
    // rax still holds the operand (zero-extended for 32 bits).
    put(a, l, rc, dst, 0);
    dynasm!(a ; .arch x64 ; =>done);
    // The other path reaches `done` with the record's scratch values in rax.
    rc.rax_holds = None;
    fl.host_valid = false;
    fl.cond_in_r12 = None;
}

/// `div src` (32 or 64 bits): a zero divisor or a quotient that does not fit (rDX >= the
/// divisor) takes the handler, which raises #DE with nothing changed, as tier 0 does; else the
/// host `div`. The guest flags are unchanged (tier 0 leaves them), the host's are not the
/// guest's afterwards.
fn emit_div<'e>(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    cold: &mut Vec<Cold<'e>>,
    x: Site<'e>,
    wide: bool,
    src: u8,
) {
    let (miss, done) = (a.new_dynamic_label(), a.new_dynamic_label());
    // Everything the hit path reads is loaded before the first branch to the miss path.
    cached(a, l, rc, src);
    cached(a, l, rc, 0);
    cached(a, l, rc, 2);
    let pre = *rc;
    get(a, l, rc, src, 1, wide);
    emit_guarded_div(a, l, rc, wide, miss);
    cold.push(Cold { miss, done, pre, post: *rc, x, cond: None, rflags_to_r13: false, host_flags: None });
    dynasm!(a ; .arch x64 ; =>done);
}

/// `rdx:rax / rcx` (or the 32-bit halves) for guest RDX:RAX, the divisor already in rcx: a
/// zero divisor or a quotient too wide (RDX >= divisor) goes to `miss`, whose handler raises
/// #DE with nothing changed; else the host `div`, RAX and RDX written to the guest's.
fn emit_guarded_div(a: &mut Asm, l: &Layout, rc: &mut RegCache, wide: bool, miss: dynasmrt::DynamicLabel) {
    get(a, l, rc, 2, 2, wide);
    if wide {
        dynasm!(a ; .arch x64 ; test rcx, rcx ; jz =>miss ; cmp rdx, rcx ; jae =>miss);
    } else {
        dynasm!(a ; .arch x64 ; test ecx, ecx ; jz =>miss ; cmp edx, ecx ; jae =>miss);
    }
    get(a, l, rc, 0, 0, wide);
    if wide {
        dynasm!(a ; .arch x64 ; div rcx);
    } else {
        dynasm!(a ; .arch x64 ; div ecx);
    }
    put(a, l, rc, 0, 0);
    put(a, l, rc, 2, 2);
}

/// `div [ea]` (32 or 64 bits): the divisor read through the inline TLB probe, then as
/// `emit_div` (a miss, a zero divisor or a quotient too wide take the handler, out of line).
fn emit_div_mem<'e>(
    a: &mut Asm,
    l: &Layout,
    rc: &mut RegCache,
    cold: &mut Vec<Cold<'e>>,
    x: Site<'e>,
    wide: bool,
    ea: Ea,
) {
    let (miss, done) = (a.new_dynamic_label(), a.new_dynamic_label());
    cached(a, l, rc, 0);
    cached(a, l, rc, 2);
    let pre = emit_access_probe(a, l, rc, x, ea, if wide { 8 } else { 4 }, tlb_layout::READ_TAG, miss);
    if wide {
        dynasm!(a ; .arch x64 ; mov rcx, [rax]);
    } else {
        dynasm!(a ; .arch x64 ; mov ecx, [rax]);
    }
    emit_guarded_div(a, l, rc, wide, miss);
    cold.push(Cold { miss, done, pre, post: *rc, x, cond: None, rflags_to_r13: false, host_flags: None });
    dynasm!(a ; .arch x64 ; =>done);
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

/// The x86-64 backend, as the front end sees it.
pub struct X64;

impl Backend for X64 {
    type Stubs = Stubs;
    fn emit_stubs(base: usize, l: &Layout) -> (Vec<u8>, Stubs) {
        emit_stubs(base, l)
    }
    fn compile(req: &CompileRequest<'_>, stubs: &Stubs, l: &Layout) -> Vec<u8> {
        if req.region.len() > 1 {
            return compile_region(req.region, req.at, req.base, stubs, l);
        }
        compile(req.block, req.successors, req.indirect, req.at, req.base, stubs, l, req.inline)
    }
    fn patch_jump(code: &mut [u8], site: usize, target: usize) {
        patch_jump(code, site, target);
    }
    fn jump_target(code: &[u8], site: usize) -> usize {
        jump_target(code, site)
    }
}
