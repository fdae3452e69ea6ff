//! Which chain links outlive a change of linear mappings (issue 10, sixth round, part K).
//!
//! A link is a shortcut for the lookup the run loop would make (linear address, mode, CS base
//! -> block), so a TLB flush (CR3 write, INVLPG, paging change: the block cache's
//! `mappings_changed`) used to undo every link. The Debian boot's kernel flushes thousands of
//! times (text_poke's temporary mm, context switches, INVLPG), and each flush sent every hot
//! block back through the run loop to be linked again.
//!
//! A link from a translation whose block starts in linear page P to a block lying wholly in P
//! stays valid through any change of mappings, as QEMU keeps its direct jumps within a page:
//! - every entry into translated code is checked at the mapping of its moment: from the run
//!   loop (the block cache looks it up through the current mapping), through the indirect
//!   table (emptied at each change) or through a link; and a change made by translated code
//!   (a handler) makes the next block entry leave to the run loop (`exec_one` zeroes the
//!   budget), so within one entry the mapping does not change;
//! - so when the source block runs, P maps to the frame it mapped to when the link was made
//!   (the source's block is keyed by that frame), hence the target's bytes are at the same
//!   physical address, and the block cache would return the same block (a store into it drops
//!   the block and undoes its incoming links, as before);
//! - a block crossing into a second page is never the target of such a link (its second page
//!   could be remapped alone), and mode and CS-base changes still undo every link.
//!
//! Links across pages are undone at each change, as before. Only translations that received
//! one are listed (`JitEngine::cross_linked`), so a change costs the links it undoes, not a
//! pass over every translation.

use super::{Backend, Host, JitEngine, Translation};

/// A chain site linked to a translation.
pub(super) struct Link {
    /// The site (offset in code memory) and the stub it jumped to before it was linked.
    pub site: usize,
    pub stub: usize,
    /// The site's translation starts in the linear page holding all of the target's block.
    pub same_page: bool,
}

/// Whether a link from chain site `site` to translation `to` stays valid when the mappings
/// change (see the module doc). `translations` are in code memory order (compilation appends,
/// a full flush empties), so the site's owner is the last one starting at or before it.
pub(super) fn same_page(translations: &[Translation], site: usize, to: usize) -> bool {
    let owner = translations.partition_point(|t| t.entry <= site);
    let (Some(from), Some(to)) = (owner.checked_sub(1).and_then(|i| translations.get(i)), translations.get(to)) else {
        return false;
    };
    to.one_page && from.la >> 12 == to.la >> 12
}

impl JitEngine {
    /// The linear mappings changed: undoes the links across pages, keeps the ones within a
    /// page. The indirect-branch table stays: each slot checks its target's mapping itself
    /// (`IndirectSlot`).
    pub(super) fn unlink_cross_page(&mut self) {
        let mut undone = 0;
        for i in std::mem::take(&mut self.cross_linked) {
            let t = &mut self.translations[i as usize];
            t.cross_listed = false;
            let mem = self.mem.bytes_mut();
            t.incoming.retain(|l| {
                if !l.same_page {
                    Host::patch_jump(mem, l.site, l.stub);
                    undone += 1;
                }
                l.same_page
            });
        }
        let mut stats = self.stats.borrow_mut();
        stats.mapping_changes += 1;
        stats.links_undone += undone;
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi};
    use emu::mem::GuestRam;
    use emu::user::aspace::{AddressSpace, PROT_EXEC, PROT_READ, PROT_WRITE};

    const CODE: u64 = 0x40_0000;
    /// The function the loop calls, in a page of its own (remapped between the two runs).
    const FUNC: u64 = 0x40_3000;
    /// Where the function's second version is mapped first.
    const SPARE: u64 = 0x40_5000;

    fn asm(at: u64, f: impl FnOnce(&mut dynasmrt::VecAssembler<dynasmrt::x64::X64Relocation>)) -> Vec<u8> {
        let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(at as usize);
        f(&mut a);
        a.finalize().unwrap()
    }

    /// `mov ecx, 50; l: call FUNC; add rdx, 3; dec ecx; jnz l; hlt` at `CODE` (a stack page
    /// after it), the function `add rbx, 1; ret` at `FUNC` and `add rbx, 2; ret` at `SPARE`.
    fn setup() -> (Cpu, AddressSpace) {
        let main = asm(CODE, |a| {
            dynasm!(a
                ; .arch x64
                ; mov rsp, 0x40_2000
                ; mov ecx, 50
                ; l:
                ; call extern FUNC as usize
                ; add rdx, 3
                ; dec ecx
                ; jnz <l
                ; hlt
            )
        });
        let f1 = asm(FUNC, |a| dynasm!(a ; .arch x64 ; add rbx, 1 ; ret));
        let f2 = asm(SPARE, |a| dynasm!(a ; .arch x64 ; add rbx, 2 ; ret));
        let mut ram = GuestRam::new(4 << 20).unwrap();
        let mut aspace = AddressSpace::new(&mut ram);
        let mut cpu = Cpu::new(ram);
        cpu.config.user_mode_syscalls = true;
        emu::user::setup_long_mode_user(&mut cpu, aspace.pml4);
        let rx = PROT_READ | PROT_EXEC;
        for (va, code, prot) in
            [(CODE, &main[..], rx), (CODE + 0x1000, &[][..], PROT_READ | PROT_WRITE), (FUNC, &f1, rx), (SPARE, &f2, rx)]
        {
            aspace.add_region(&mut cpu.ram, va, va + 0x1000, prot);
            let frame = aspace.populate(&mut cpu.ram, va, prot).unwrap();
            cpu.ram.slice_mut(frame, code.len()).unwrap().copy_from_slice(code);
        }
        cpu.state.rip = CODE;
        (cpu, aspace)
    }

    /// Runs to the HLT (#GP at CPL 3) from `CODE` with rbx = rdx = 0.
    fn run_once(engine: &mut dyn Engine, cpu: &mut Cpu) {
        cpu.state.rip = CODE;
        cpu.state.gpr[2] = 0;
        cpu.state.gpr[3] = 0;
        let exit = loop {
            match engine.run(cpu, &Limit::instructions(1_000_000)).unwrap() {
                Exit::Stop(Stop::Yield) => continue,
                e => break e,
            }
        };
        assert!(matches!(exit, Exit::Stop(Stop::Fault(f)) if f.vector == 13), "HLT at CPL3 is #GP: {exit:?}");
    }

    /// The loop runs, then the function's page is remapped to the other frame (mremap as the
    /// user-mode runner does it: page tables rewritten, TLB flushed) and the loop runs again.
    /// Returns rbx after each run.
    fn run_remapped(engine: &mut dyn Engine) -> (Cpu, [u64; 2]) {
        let (mut cpu, mut aspace) = setup();
        run_once(engine, &mut cpu);
        let first = cpu.state.gpr[3];
        aspace.discard(&mut cpu.ram, FUNC, FUNC + 0x1000);
        aspace.move_page(&mut cpu.ram, SPARE, FUNC).unwrap();
        cpu.softmmu.flush_tlb();
        run_once(engine, &mut cpu);
        let second = cpu.state.gpr[3];
        (cpu, [first, second])
    }

    /// After the remap the loop must call the function's new code (a link across pages kept
    /// would run the old one), and its links within the page must have been kept (they are not
    /// made again).
    #[test]
    fn a_remap_undoes_links_across_pages_and_keeps_those_within_a_page() {
        let (t0, expected) = run_remapped(&mut Interp::new());
        // The arithmetic: 50 calls adding 1, then 50 adding 2.
        assert_eq!(expected, [50, 100]);
        let stats = Rc::new(RefCell::new(JitStats::default()));
        let mut j =
            JitEngine::new(JitOptions { threshold: 1, code_bytes: 1 << 20, inline: true }, stats.clone()).unwrap();
        let (cpu, sums) = run_remapped(&mut j);
        assert_eq!(sums, expected);
        assert_eq!((cpu.retired, cpu.state.rip, cpu.state.gpr), (t0.retired, t0.state.rip, t0.state.gpr));
        let s = stats.borrow().clone();
        assert!(s.mapping_changes >= 1 && s.links_undone >= 1, "{s}");
        // First run: the entry block's link to the call block and the call block's to FUNC,
        // the return point, the loop's back edge and its exit: 5 links, 3 of them within the
        // page. Second run: only the 2 across pages again (6 made again if every link went).
        assert!(s.links <= 5 + 2, "links within the page were made again: {s}");
    }
}
