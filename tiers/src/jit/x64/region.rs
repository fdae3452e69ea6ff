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
/// exact before every internal edge (each member starts with nothing known of the flags),
/// except into a member whose flags are dead at its start ([`Entry`]; eighth round, part E):
/// there it is written only where that edge's budget check stops.
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
    // r12 holds a condition only where the code sets one (a Jcc not branching on the host
    // flags, CMOVcc, SETcc, ...): a region using more guest registers than `HOST_POOL` has and
    // setting none (sha256sum's) gets r12 as a ninth; compiled again so, it must still set
    // none (the choice of forms may depend on the allocation), else the first code stands.
    take_r12_written();
    let code = compile_region_from(members, at, base, stubs, l, &HOST_POOL);
    let used = region_uses(members).iter().filter(|&&u| u > 0).count();
    if take_r12_written() || used <= HOST_POOL.len() {
        return code;
    }
    let wider = compile_region_from(members, at, base, stubs, l, &HOST_POOL_R12);
    if take_r12_written() {
        return code;
    }
    wider
}

/// [`compile_region`] with the host registers `pool` for the guest registers.
fn compile_region_from(
    members: &[RegionMember],
    at: usize,
    base: usize,
    stubs: &Stubs,
    l: &Layout,
    pool: &[u8],
) -> Vec<u8> {
    // Which registers may be dirty (changed since `cpu.state.gpr`) at the members' labels: the
    // union of those dirty at the internal edges, found by compiling until it is stable (it
    // only grows, so at most 17 rounds; usually 2). An exit then writes back only those.
    // Likewise the `Entry::Carry` members an edge cannot bring a carried record to (they are
    // then compiled `Live`; the set only grows, so at most one more round per member).
    let mut at_labels = 0;
    let mut demoted = 0u16;
    debug_assert!(members.len() <= 16, "member sets are u16 masks");
    loop {
        let (code, at_edges, refused) =
            with_island_fallback(|| compile_region_with(members, at, base, stubs, l, at_labels, demoted, pool));
        if at_edges & !at_labels == 0 && refused & !demoted == 0 {
            return code;
        }
        at_labels |= at_edges;
        demoted |= refused;
    }
}

/// How the guest flags stand at a region member's start (eighth round, part E): whether an
/// internal edge into it must write the lazy record on its hot path.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Entry {
    /// Something may read them (or leave the region) before they are overwritten: every
    /// internal edge into the member makes the record exact first.
    Live,
    /// The member overwrites all six before anything reads them or can fault
    /// (`forms::flags_dead_at_entry`): an edge into it leaves the record as it is (unwritten,
    /// pending) and writes it only on its way out, where the budget check stops.
    Dead,
    /// Not the head; every instruction flag-neutral (register moves: no handler call, no fault,
    /// no exit) and it goes on by JMP or falling through to a `Dead` or `Carry` member: it is
    /// entered with an arithmetic setter's record unwritten (its result, sign-extended, in
    /// r13, its flags still the host's: [`Record::InR13`]) and passes it on the same way.
    Carry,
}

/// Each member's [`Entry`], `demoted` members (an edge into them could not carry the record)
/// never `Carry`.
fn entries(members: &[RegionMember], forms: &[Vec<Option<Form>>], demoted: u16) -> Vec<Entry> {
    let mut e: Vec<Entry> =
        forms.iter().map(|f| if forms::flags_dead_at_entry(f) { Entry::Dead } else { Entry::Live }).collect();
    // Grows until stable; a `Carry` member's successor was non-`Live` when it was added, so
    // every chain of `Carry` members ends at a `Dead` one.
    loop {
        let mut changed = false;
        for k in 1..members.len() {
            if e[k] != Entry::Live || demoted & 1 << k != 0 {
                continue;
            }
            let block = members[k].block;
            let Some((last, body)) = forms[k].split_last() else { continue };
            let next = match last {
                Some(Form::Jmp) if block.ends_in_branch => block.instrs.last().map(|e| e.imm),
                Some(f) if !block.ends_in_branch && f.flag_neutral() => Some(block.end_rip),
                _ => None,
            };
            let neutral = body.iter().all(|f| f.is_some_and(Form::flag_neutral));
            let target = next.and_then(|rip| members.iter().position(|m| m.block.la == rip));
            if let (true, Some(j)) = (neutral, target) {
                if e[j] != Entry::Live {
                    e[k] = Entry::Carry;
                    changed = true;
                }
            }
        }
        if !changed {
            return e;
        }
    }
}

/// The lazy record at a way out of a member, as the member's end leaves it.
#[derive(Clone, Copy)]
enum Record {
    /// Written.
    Exact,
    /// Its `result` written, its `aux` pending in r13 as the host RFLAGS (`FlagState::pending`).
    AuxInR13,
    /// The setter of the member's last Jcc: its flags the host's, its result in a register.
    Deferred(Deferred),
    /// Unwritten: the setter's result, sign-extended, in r13, its flags the host's (a logic
    /// setter: CF = OF = AF = 0, whatever the host's AF).
    InR13 { logic: bool },
}

/// Makes record `r` exact (clobbers rax, rcx, rdx and the host flags).
fn write_record_of(a: &mut Asm, l: &Layout, r: Record) {
    match r {
        Record::Exact => {}
        Record::AuxInR13 => aux_from_r13(a, l),
        Record::Deferred(d) => {
            write_deferred(a, l, d, false);
        }
        Record::InR13 { logic } => {
            record_from(a, l, 13, 8, logic, false);
        }
    }
}

/// [`compile_region`] with the registers `dirty` counted dirty at each member's label;
/// returns the code and the registers dirty at its internal edges (`None`: a `jrcxz` did not
/// reach its shared island, part K).
#[allow(clippy::too_many_arguments)]
fn compile_region_with(
    members: &[RegionMember],
    at: usize,
    base: usize,
    stubs: &Stubs,
    l: &Layout,
    dirty: u16,
    demoted: u16,
    pool: &[u8],
) -> Option<(Vec<u8>, u16, u16)> {
    let mut a = VecAssembler::<X64Relocation>::new(at);
    let (leave, bail, exit) = (base + stubs.leave, base + stubs.bail, base + stubs.exit);
    entry_check(&mut a, l, bail);
    let head = members[0].block;
    debug_assert_eq!(head.mode & 0xff, 64, "regions are formed in 64-bit code only");
    let user = head.mode >> 8 == 3;
    let forms: Vec<Vec<Option<Form>>> =
        members.iter().map(|m| m.block.instrs.iter().map(|e| forms::form_of(e, true)).collect()).collect();
    let entries = entries(members, &forms, demoted);
    let rc0 = RegCache::by_uses_from(&region_uses(members), 1, pool);
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
    let refused = std::cell::Cell::new(0u16);
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
            entries: &entries,
            refused: &refused,
        };
        // The record as the member's end leaves it: a `Carry` member passes on the one it
        // was entered with (its forms touch neither the flags nor r13).
        let rec = match (entries[k], fl.pending) {
            (Entry::Carry, _) => Record::InR13 { logic: false },
            (_, true) => Record::AuxInR13,
            (_, false) => Record::Exact,
        };
        let last = if block.ends_in_branch { forms[k].last().copied().flatten() } else { None };
        let end = block.instrs.last().map(|e| (e.imm, e.next_rip));
        match (last, end) {
            // The Jcc right after its flag setter branches on the host flags; each way writes
            // the record where it is needed.
            (Some(Form::Jcc { cc }), Some((taken, fall))) if fl.deferred.is_some() => {
                let d = Record::Deferred(fl.deferred.expect("checked above"));
                if taken != fall {
                    let way = a.new_dynamic_label();
                    emit_jcc(&mut a, cc, way);
                    w.way(&mut a, l, &rc, fall, d, &mut sites);
                    dynasm!(a ; .arch x64 ; =>way);
                }
                w.way(&mut a, l, &rc, taken, d, &mut sites);
            }
            (Some(Form::Jcc { .. }), Some((taken, fall))) => {
                if taken != fall {
                    let way = a.new_dynamic_label();
                    dynasm!(a ; .arch x64 ; test r12b, r12b ; jnz =>way);
                    w.way(&mut a, l, &rc, fall, rec, &mut sites);
                    dynasm!(a ; .arch x64 ; =>way);
                }
                w.way(&mut a, l, &rc, taken, rec, &mut sites);
            }
            (Some(Form::Jmp), Some((target, _))) => {
                // The setter right before the JMP deferred its record (part E).
                let rec = fl.deferred.map_or(rec, Record::Deferred);
                w.way(&mut a, l, &rc, target, rec, &mut sites)
            }
            _ if !block.ends_in_branch => w.way(&mut a, l, &rc, block.end_rip, rec, &mut sites),
            _ => unreachable!("region members end in an inline Jcc or JMP or fall through"),
        }
    }
    Some((finish(a, l, sites, cold, exit, group_slots)?, dirty_at_edges.get(), refused.get()))
}

/// The members' inline forms and the weighted uses of each guest register by them, for the
/// region's one register allocation (part A of the eighth round: host registers for the
/// guest registers used most): each use weighted by how often its member
/// runs, estimated from the loops it is in: [`LOOP_WEIGHT`] to the power of its loop depth
/// ([`loop_depths`]). A member of an inner loop (sha256's round loop, a self-looping member)
/// outweighs the members run once per turn of the outer loop, which would otherwise win by
/// their many registers used a few times each.
fn region_uses(members: &[RegionMember]) -> [u32; 16] {
    let forms: Vec<Vec<Option<Form>>> =
        members.iter().map(|m| m.block.instrs.iter().map(|e| forms::form_of(e, true)).collect()).collect();
    let las: Vec<u64> = members.iter().map(|m| m.block.la).collect();
    let edges: Vec<Vec<usize>> = members
        .iter()
        .zip(&forms)
        .map(|(m, f)| {
            // A JMP's successors list its next address too (a chain site), not a way it goes.
            let jmp = m.block.ends_in_branch && f.last().copied().flatten() == Some(Form::Jmp);
            let ways: &[u64] = if jmp { m.successors.get(..1).unwrap_or_default() } else { &m.successors };
            ways.iter().filter_map(|rip| las.iter().position(|la| la == rip)).collect()
        })
        .collect();
    let depths = loop_depths(&edges);
    let mut uses = [0u32; 16];
    for (f, depth) in forms.iter().zip(depths) {
        let mut member = [0u32; 16];
        for form in f.iter().flatten() {
            form.count_guest_regs(&mut member);
        }
        let weight = LOOP_WEIGHT.pow(depth.min(MAX_WEIGHTED_DEPTH));
        for (u, m) in uses.iter_mut().zip(member) {
            *u = u.saturating_add(m.saturating_mul(weight));
        }
    }
    uses
}

/// How many times more often a loop's body is taken to run than the code around it.
const LOOP_WEIGHT: u32 = 16;
/// Loop depths past this weigh as this one (the weights stay far from overflowing).
const MAX_WEIGHTED_DEPTH: u32 = 4;

/// The loop depth of each node of a graph of at most a few nodes (`edges[n]`: the nodes `n`
/// goes to; node 0 the entry): 0 for a node on no cycle, 1 for one on a cycle, and one more
/// per loop nested inside: within a loop (a strongly connected set of nodes), the nodes that
/// still form cycles once its header (the node entered from outside it) is taken away form the
/// inner loops. A loop with several entries (not from our compilers) takes its first node
/// entered from outside as the header; the depths are only a weight.
fn loop_depths(edges: &[Vec<usize>]) -> Vec<u32> {
    let n = edges.len();
    let mut depths = vec![0u32; n];
    nest_loops(edges, &(0..n).collect::<Vec<_>>(), 0, &mut depths);
    depths
}

/// Adds one to the depth of every node of `nodes` on a cycle within `nodes`, and recurses
/// into each such loop less its header.
fn nest_loops(edges: &[Vec<usize>], nodes: &[usize], depth: u32, depths: &mut [u32]) {
    let n = edges.len();
    let inside = |x: usize| nodes.contains(&x);
    // reach[a][b]: a path of at least one edge from a to b within `nodes`.
    let mut reach = vec![vec![false; n]; n];
    for &a in nodes {
        for &b in edges[a].iter().filter(|&&b| inside(b)) {
            reach[a][b] = true;
        }
    }
    for &k in nodes {
        for &a in nodes {
            if reach[a][k] {
                for &b in nodes {
                    if reach[k][b] {
                        reach[a][b] = true;
                    }
                }
            }
        }
    }
    let mut done = vec![false; n];
    for &a in nodes {
        if done[a] || !reach[a][a] {
            continue;
        }
        let scc: Vec<usize> = nodes.iter().copied().filter(|&b| reach[a][b] && reach[b][a]).collect();
        for &b in &scc {
            done[b] = true;
            depths[b] = depth + 1;
        }
        // The header: the first node of the loop entered from outside it (node 0, the entry,
        // for the outermost loop through it).
        let entered = |h: usize| h == 0 || (0..n).any(|p| !scc.contains(&p) && edges[p].contains(&h));
        let header = scc.iter().copied().find(|&h| entered(h)).unwrap_or(scc[0]);
        // A header looping to itself inside a larger loop is an inner loop of its own.
        if scc.len() > 1 && edges[header].contains(&header) {
            depths[header] = depth + 2;
        }
        let inner: Vec<usize> = scc.iter().copied().filter(|&b| b != header).collect();
        nest_loops(edges, &inner, depth + 1, depths);
    }
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
    /// Each member's flags at its start, and the `Carry` members an edge compiled so far
    /// could not bring a carried record to.
    entries: &'r [Entry],
    refused: &'r std::cell::Cell<u16>,
}

impl RegionWays<'_> {
    /// The way to guest RIP `rip` with the registers as `rc` says and the record as `rec`
    /// says: a host jump if `rip` starts a member (after the budget check), else an exit.
    /// Into a member whose flags are dead at its start (eighth round, part E) the record stays
    /// as it is, unwritten, through a budget check that keeps the host flags, and is written
    /// on the way out only if the check stops.
    fn way(
        &self,
        a: &mut Asm,
        l: &Layout,
        rc: &RegCache,
        rip: u64,
        rec: Record,
        sites: &mut Vec<(usize, dynasmrt::DynamicLabel)>,
    ) {
        let all = rc.allocated();
        let Some(k) = self.las.iter().position(|&m| m == rip) else {
            // Every exit sees the exact record (`leave_block` completes a pending `aux`).
            if !matches!(rec, Record::AuxInR13) {
                write_record_of(a, l, rec);
            }
            leave_block(a, l, rc, self.n, matches!(rec, Record::AuxInR13));
            if self.countdown {
                region_retire(a, l);
            }
            exit_to(a, l, rip, self.successors, sites, self.bail, None);
            return;
        };
        // What the jump into member k carries: the record written (`Exact`) or left as it
        // is for the member to overwrite or (`Carry`) to pass on.
        let carried = match (self.entries[k], rec) {
            (_, Record::Exact) | (Entry::Live, _) => {
                if self.entries[k] == Entry::Carry {
                    self.refused.set(self.refused.get() | 1 << k);
                }
                write_record_of(a, l, rec);
                Record::Exact
            }
            (Entry::Dead, Record::Deferred(d)) | (Entry::Carry, Record::Deferred(d)) if !d.logic => {
                deferred_result_to_r13(a, d);
                Record::InR13 { logic: false }
            }
            (Entry::Dead, Record::Deferred(d)) => {
                deferred_result_to_r13(a, d);
                Record::InR13 { logic: true }
            }
            (Entry::Dead, r) | (Entry::Carry, r @ Record::InR13 { logic: false }) => r,
            (Entry::Carry, r) => {
                // Only an arithmetic record in r13 passes through a `Carry` member.
                self.refused.set(self.refused.get() | 1 << k);
                write_record_of(a, l, r);
                Record::Exact
            }
        };
        // A handler call (or `lazy_cond`: the countdown's registers survive it, r14/r15 being
        // callee-saved) made the member forget registers; the target's label expects every
        // one loaded (`mov`s: the host flags kept).
        reload(a, l, &RegCache { loaded: all & !rc.loaded, ..*rc });
        self.dirty_at_edges.set(self.dirty_at_edges.get() | rc.dirty);
        if matches!(carried, Record::Exact) {
            if self.countdown {
                dynasm!(a
                    ; .arch x64
                    ; sub r15, self.n as i32
                    ; ja =>self.labels[k]
                );
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
        } else {
            budget_check_keeping_flags(a, l, self.n, self.countdown, self.labels[k]);
            // The budget is spent: the record now, from the host flags and r13.
            write_record_of(a, l, carried);
        }
        if self.countdown {
            region_retire(a, l);
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

/// r13 = deferred record `d`'s result, sign-extended from its size (`movsx`/`mov`: the host
/// flags kept), so the budget check may use rax.
fn deferred_result_to_r13(a: &mut Asm, d: Deferred) {
    let r = d.result;
    match d.size {
        1 => dynasm!(a ; .arch x64 ; movsx r13, Rb(r)),
        2 => dynasm!(a ; .arch x64 ; movsx r13, Rw(r)),
        4 => dynasm!(a ; .arch x64 ; movsxd r13, Rd(r)),
        _ => dynasm!(a ; .arch x64 ; mov r13, Rq(r)),
    }
}

/// The budget check of an internal edge out of a member of `n` instructions, made without
/// touching the host flags (they may be a record's not yet written): on to `member` if the
/// budget allows it, else falls through (with `retired` or r15 brought past the member, as
/// the flag-setting check leaves them). Only `lea`, `mov`, `not`, `cqo` and `jrcxz`, none of
/// which write flags; clobbers rax, rcx, rdx. The comparison is a sign test, exact because
/// the run loop keeps `limit - retired` below 2^62 (`MAX_RUN_BUDGET`): with
/// `limit` at most 2^62 past `retired` and `retired` itself far below 2^63, both
/// `retired + n - limit` and (counting down) `r15 - n - 1` lie in (-2^63, 2^63).
fn budget_check_keeping_flags(a: &mut Asm, l: &Layout, n: usize, countdown: bool, member: dynasmrt::DynamicLabel) {
    let stop = a.new_dynamic_label();
    let n = n as i32;
    if countdown {
        // r15 -= n; on iff the old r15 > n, i.e. r15 - 1 >= 0: rdx = 0 (on) or -1 (stop).
        dynasm!(a
            ; .arch x64
            ; lea r15, [r15 - n]
            ; lea rax, [r15 - 1]
            ; cqo
            ; lea rcx, [rdx + 1]
            ; jrcxz =>stop
            ; jmp =>member
            ; =>stop
        );
    } else {
        // retired += n; on iff retired < limit, i.e. retired + !limit + 1 < 0: rdx = -1 (on)
        // or 0 (stop).
        dynasm!(a
            ; .arch x64
            ; mov rax, [rbp + l.retired]
            ; lea rax, [rax + n]
            ; mov [rbp + l.retired], rax
            ; mov rdx, [rbx + l.ctx_limit]
            ; not rdx
            ; lea rax, [rax + rdx + 1]
            ; cqo
            ; mov rcx, rdx
            ; jrcxz =>stop
            ; jmp =>member
            ; =>stop
        );
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

#[cfg(test)]
mod tests {
    use super::loop_depths;

    /// Depths worked out by hand for the loop nests they draw.
    #[test]
    fn loop_depths_follow_the_nesting() {
        // sha256sum's region (members in the order the region forms them): 0 loops to itself
        // (the byte swaps), then 1 falls into 2, which loops to itself (the message schedule),
        // into 3 (the first round), which goes to 4 or into the round loop 5 -> 6 -> 5, which
        // leaves for 4, which goes back to 0 or out.
        let sha = [vec![0, 1], vec![2], vec![2, 3], vec![4, 5], vec![0], vec![6], vec![4, 5]];
        assert_eq!(loop_depths(&sha), [2, 1, 2, 1, 1, 2, 2]);
        // A straight line out of a loop: the member after it is on no cycle.
        assert_eq!(loop_depths(&[vec![1], vec![0, 2], vec![]]), [1, 1, 0]);
        // Three levels: 0 -> 1 -> 2 -> 2 (self), 2 -> 1, 1 -> 0.
        assert_eq!(loop_depths(&[vec![1], vec![2, 0], vec![2, 1]]), [1, 2, 3]);
        // A block looping to itself alone.
        assert_eq!(loop_depths(&[vec![0]]), [1]);
    }
}
