//! The x86-64 backend's regions (seventh round, part R): several blocks of one linear page
//! compiled as one translation ([`compile_region`]), their internal edges host jumps, one
//! register allocation for all members, the budget checked (or counted down) at every internal
//! edge. The members' bodies, exits and miss paths are the single-block code of the parent
//! module (`emit_body`, `exit_to`, `finish`).

use super::*;

/// Compiles a region (seventh round, part R; 64-bit code, inline forms on): `members[0]` is the
/// head (the translation's entry), the others blocks of the head's linear page that it reaches
/// by direct branches and fall-throughs, each ending in an inline Jcc or JMP or falling
/// through (`super::region_end`). Every member gets a label; a way from a member to a member
/// is a host jump there, every other way an exit as in [`compile`].
///
/// One register allocation for the whole region: the guest registers its inline forms use
/// are loaded once at the entry and stay in host registers across internal edges (at each
/// member's label all are loaded, and those an internal edge may bring changed are counted
/// dirty); they are
/// written back at exits and before handler calls as in a block. The lazy record is made
/// exact before every internal edge (each member starts with nothing known of the flags).
///
/// The budget: tier 0 checks `retired` against the limit before each block, so each internal
/// edge makes that check. If no member can call a handler (`handler_free`), nothing reads
/// `retired` or changes the limit inside the region, and it counts down instead: r14 = r15 =
/// limit - retired at the entry; an edge out of a member of n instructions is
/// `sub r15, n; ja member` (r15 > n before it: retired + n < limit, the check tier 0 makes);
/// every way out adds r14 - r15 to `retired`. Otherwise each edge adds n to `retired` in
/// memory and compares it with the limit (which a handler may have set to 0), as a self-loop's
/// back edge does. A failed check leaves with the registers written back and RIP = the
/// member's address, for the run loop.
pub fn compile_region(members: &[RegionMember], at: usize, base: usize, stubs: &Stubs, l: &Layout) -> Vec<u8> {
    // Which registers may be dirty (changed since `cpu.state.gpr`) at the members' labels: the
    // union of those dirty at the internal edges, found by compiling until it is stable (it
    // only grows, so at most 17 rounds; usually 2). An exit then writes back only those.
    let mut at_labels = 0;
    loop {
        let (code, at_edges) = with_island_fallback(|| compile_region_with(members, at, base, stubs, l, at_labels));
        if at_edges & !at_labels == 0 {
            return code;
        }
        at_labels |= at_edges;
    }
}

/// [`compile_region`] with the registers `dirty` counted dirty at each member's label;
/// returns the code and the registers dirty at its internal edges (`None`: a `jrcxz` did not
/// reach its shared island, part K).
fn compile_region_with(
    members: &[RegionMember],
    at: usize,
    base: usize,
    stubs: &Stubs,
    l: &Layout,
    dirty: u16,
) -> Option<(Vec<u8>, u16)> {
    let mut a = VecAssembler::<X64Relocation>::new(at);
    let (leave, bail, exit) = (base + stubs.leave, base + stubs.bail, base + stubs.exit);
    entry_check(&mut a, l, bail);
    let head = members[0].block;
    debug_assert_eq!(head.mode & 0xff, 64, "regions are formed in 64-bit code only");
    let user = head.mode >> 8 == 3;
    let forms: Vec<Vec<Option<Form>>> =
        members.iter().map(|m| m.block.instrs.iter().map(|e| forms::form_of(e, true)).collect()).collect();
    let rc0 = RegCache::for_block(&forms.concat(), true);
    let all = rc0.allocated();
    let countdown =
        forms.iter().flatten().all(|f| handler_free(*f)) && all.count_ones() as usize <= HOST_POOL.len() - 2;
    reload(&mut a, l, &RegCache { loaded: all, ..rc0 });
    if countdown {
        dynasm!(a
            ; .arch x64
            ; mov rax, [rbx + l.ctx_limit]
            ; sub rax, [rbp + l.retired]
            ; mov r14, rax
            ; mov r15, rax
        );
    }
    let labels: Vec<dynasmrt::DynamicLabel> = members.iter().map(|_| a.new_dynamic_label()).collect();
    let las: Vec<u64> = members.iter().map(|m| m.block.la).collect();
    let mut cold: Vec<Cold> = Vec::new();
    WAY1_CHECKS.with(|w| w.borrow_mut().clear());
    GROUP_FALLBACKS.with(|w| w.borrow_mut().clear());
    ISLANDS.with(|w| w.borrow_mut().clear());
    // Every member's miss paths empty the slots of all members' groups (a slot number is
    // reused by the members; a member's followers use only slots its own leads filled).
    let mut group_slots = 0u8;
    let mut sites = Vec::new();
    let dirty_at_edges = std::cell::Cell::new(0u16);
    for (k, m) in members.iter().enumerate() {
        let block = m.block;
        dynasm!(a ; .arch x64 ; =>labels[k]);
        let mut rc = RegCache { loaded: all, dirty, ..rc0 };
        // Regions are formed only with inline forms on.
        let (fl, slots) = emit_body(&mut a, l, &mut rc, block, &forms[k], leave, user, &mut cold, false, true);
        group_slots |= slots;
        let w = RegionWays {
            las: &las,
            labels: &labels,
            successors: &m.successors,
            n: block.instrs.len(),
            countdown,
            bail,
            dirty_at_edges: &dirty_at_edges,
        };
        let last = if block.ends_in_branch { forms[k].last().copied().flatten() } else { None };
        let end = block.instrs.last().map(|e| (e.imm, e.next_rip));
        match (last, end) {
            // The Jcc right after its flag setter branches on the host flags; each way writes
            // the record.
            (Some(Form::Jcc { cc }), Some((taken, fall))) if fl.deferred.is_some() => {
                let d = fl.deferred.expect("checked above");
                if taken != fall {
                    let way = a.new_dynamic_label();
                    emit_jcc(&mut a, cc, way);
                    write_deferred(&mut a, l, d, false);
                    w.way(&mut a, l, &rc, fall, false, &mut sites);
                    dynasm!(a ; .arch x64 ; =>way);
                }
                write_deferred(&mut a, l, d, false);
                w.way(&mut a, l, &rc, taken, false, &mut sites);
            }
            (Some(Form::Jcc { .. }), Some((taken, fall))) => {
                if taken != fall {
                    let way = a.new_dynamic_label();
                    dynasm!(a ; .arch x64 ; test r12b, r12b ; jnz =>way);
                    w.way(&mut a, l, &rc, fall, fl.pending, &mut sites);
                    dynasm!(a ; .arch x64 ; =>way);
                }
                w.way(&mut a, l, &rc, taken, fl.pending, &mut sites);
            }
            (Some(Form::Jmp), Some((target, _))) => w.way(&mut a, l, &rc, target, fl.pending, &mut sites),
            _ if !block.ends_in_branch => w.way(&mut a, l, &rc, block.end_rip, fl.pending, &mut sites),
            _ => unreachable!("region members end in an inline Jcc or JMP or fall through"),
        }
    }
    Some((finish(a, l, sites, cold, exit, group_slots)?, dirty_at_edges.get()))
}

/// Whether an inline form never calls a handler (nor anything that reads `retired` or changes
/// the run's limit): the register forms. A region of only these counts its budget down.
fn handler_free(f: Option<Form>) -> bool {
    matches!(
        f,
        Some(
            Form::Mov { .. }
                | Form::Alu { .. }
                | Form::IncDec { .. }
                | Form::Lea { .. }
                | Form::Jcc { .. }
                | Form::Jmp
                | Form::Shift { .. }
                | Form::Imul { .. }
                | Form::Nop
                | Form::Not { .. }
                | Form::Neg { .. }
                | Form::Movsxd { .. }
                | Form::MovExt { .. }
        )
    )
}

/// What a way out of one region member needs: the members (addresses and labels), the
/// member's chain-site successors and size, and how the budget is kept.
struct RegionWays<'r> {
    las: &'r [u64],
    labels: &'r [dynasmrt::DynamicLabel],
    successors: &'r [u64],
    n: usize,
    countdown: bool,
    bail: usize,
    /// The registers dirty at the internal edges compiled so far.
    dirty_at_edges: &'r std::cell::Cell<u16>,
}

impl RegionWays<'_> {
    /// The way to guest RIP `rip` with the registers as `rc` says and the record exact but for
    /// `pending`: a host jump if `rip` starts a member (after the budget check), else an exit.
    fn way(
        &self,
        a: &mut Asm,
        l: &Layout,
        rc: &RegCache,
        rip: u64,
        pending: bool,
        sites: &mut Vec<(usize, dynasmrt::DynamicLabel)>,
    ) {
        let all = rc.allocated();
        let Some(k) = self.las.iter().position(|&m| m == rip) else {
            leave_block(a, l, rc, self.n, pending);
            if self.countdown {
                region_retire(a, l);
            }
            exit_to(a, l, rip, self.successors, sites, self.bail, None);
            return;
        };
        if pending {
            aux_from_r13(a, l);
        }
        // A handler call (or `lazy_cond`: the countdown's registers survive it, r14/r15 being
        // callee-saved) made the member forget registers; the target's label expects every
        // one loaded.
        reload(a, l, &RegCache { loaded: all & !rc.loaded, ..*rc });
        self.dirty_at_edges.set(self.dirty_at_edges.get() | rc.dirty);
        if self.countdown {
            dynasm!(a
                ; .arch x64
                ; sub r15, self.n as i32
                ; ja =>self.labels[k]
            );
            region_retire(a, l);
        } else {
            dynasm!(a
                ; .arch x64
                ; mov rax, [rbp + l.retired]
                ; add rax, self.n as i32
                ; mov [rbp + l.retired], rax
                ; cmp rax, [rbx + l.ctx_limit]
                ; jb =>self.labels[k]
            );
        }
        // The budget is spent: to the run loop with RIP at the member.
        spill(a, l, &RegCache { dirty: all, ..*rc });
        match i32::try_from(rip as i64) {
            Ok(v) => dynasm!(a ; .arch x64 ; mov QWORD [rbp + l.rip], v),
            Err(_) => dynasm!(a ; .arch x64 ; mov rax, QWORD rip as i64 ; mov [rbp + l.rip], rax),
        }
        dynasm!(a ; .arch x64 ; jmp extern self.bail);
    }
}

/// A counting-down region's instructions of the internal edges taken, r14 - r15, added to
/// `retired` (clobbers rcx and the host flags).
fn region_retire(a: &mut Asm, l: &Layout) {
    dynasm!(a
        ; .arch x64
        ; mov rcx, r14
        ; sub rcx, r15
        ; add [rbp + l.retired], rcx
    );
}
