//! The decoded-block cache (ARCHITECTURE.md, decisions 4 and 8).
//!
//! Blocks are keyed by (physical address, linear address, CPU mode) in a hash map, with a small
//! direct-mapped "jump cache" in front of it keyed by linear address, so a hot loop costs one
//! compare per block. The 64-byte lines of physical memory holding a block's bytes are marked in
//! the CPU's `SoftMmu`; a store to such a page goes through the memory slow path, which reports
//! the page if the store touched a marked line, and the run loop drops every block on it
//! (`invalidate_page`).
//!
//! The jump cache is emptied whenever the TLB changes generation (CR3 write, INVLPG, mode
//! change), because its key is a linear address: in O(1), by a generation its entries carry
//! next to the mode key (the Debian boot flushes 17,600 times; a 64 KiB fill each cost 1.2 % of
//! its kernel phase's host time). Blocks themselves survive a TLB flush: their key
//! starts with the physical address, so a remapped page simply stops being looked up.
//!
//! Hooks for translated code (the tier-1 JIT): every block counts how often the run loop enters
//! it (`Block::executions`, to find hot blocks) and has a slot for a translation handle
//! (`set_translation`). A [`CodeObserver`] registered with `set_observer` is told when blocks go
//! (a store into their code, `clear` at an engine switch or after a runner rewrote code), with
//! the handles of their translations, and when linear mappings change (any TLB flush: CR3
//! write, INVLPG, paging-mode change), after which links between translations made by linear
//! address must be checked again.

use crate::cpu::Cpu;
use crate::decode::decode_block;
use crate::decoded::Instr;
use crate::exception::Stop;
use hashbrown::HashMap;
use std::num::NonZeroU32;

const JUMP_CACHE: usize = 4096;
const JUMP_EMPTY: (u64, u32, u32) = (u64::MAX, 0, 0);
/// A jump-cache entry's middle word is the mode key (below this bit) | the cache's generation
/// (`BlockCache::jump_gen`, a multiple of it).
const JUMP_GEN_ONE: u32 = 1 << 12;

#[inline(always)]
fn jump_slot(la: u64) -> usize {
    ((la ^ (la >> 12)) as usize) & (JUMP_CACHE - 1)
}

/// Names a block's translated code; opaque to the cache, chosen by whoever translated it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TranslationHandle(pub NonZeroU32);

/// Told when translated code must be unlinked or freed (see the module doc).
pub trait CodeObserver {
    /// Blocks were dropped; `handles` are the translations that were attached to them (never
    /// empty). The blocks' indices may be reused at once.
    fn blocks_dropped(&mut self, handles: &[TranslationHandle]);
    /// The TLB was flushed (CR3 write, INVLPG, paging-mode change). Blocks stay valid (they are
    /// keyed by physical address), but anything that chained them by linear address is stale.
    fn mappings_changed(&mut self) {}
}

/// A decoded basic block.
pub struct Block {
    pub instrs: Box<[Instr]>,
    /// Linear address of the first instruction.
    pub la: u64,
    /// RIP after the last instruction.
    pub end_rip: u64,
    /// Physical pages the block's bytes lie in (the second is `u64::MAX` if there is one page).
    pub pages: [u64; 2],
    /// Mode key the block was decoded under.
    pub mode: u32,
    /// The last instruction sets RIP itself.
    pub ends_in_branch: bool,
    pub valid: bool,
    key: (u64, u64, u32),
    /// The block that followed this one last time: (linear address, index, cache epoch).
    next: std::cell::Cell<(u64, u32, u32)>,
    /// Times the run loop entered the block (`BlockCache::enter`).
    executions: u64,
    /// Translated code for this block, if any.
    translation: Option<TranslationHandle>,
}

impl Block {
    /// An uncached block (single-stepping).
    pub fn single(d: crate::decode::Decoded, la: u64) -> Block {
        Block {
            instrs: d.instrs.into_boxed_slice(),
            la,
            end_rip: d.end_rip,
            pages: d.pages,
            mode: 0,
            ends_in_branch: d.ends_in_branch,
            valid: true,
            key: (0, 0, 0),
            next: std::cell::Cell::new((u64::MAX, 0, 0)),
            executions: 0,
            translation: None,
        }
    }

    /// Times the run loop entered this block since it was decoded.
    pub fn executions(&self) -> u64 {
        self.executions
    }

    /// The translated code attached to this block, if any.
    pub fn translation(&self) -> Option<TranslationHandle> {
        self.translation
    }
}

/// All decoded blocks.
pub struct BlockCache {
    blocks: Vec<Block>,
    free: Vec<u32>,
    map: HashMap<(u64, u64, u32), u32>,
    by_page: HashMap<u64, Vec<u32>>,
    /// (linear address, mode, block index); a slot is cleared when its block is dropped.
    jump: Box<[(u64, u32, u32)]>,
    /// The generation current jump-cache entries carry (a multiple of `JUMP_GEN_ONE`): bumped
    /// instead of emptying the cache, which is cleared only when it wraps.
    jump_gen: u32,
    tlb_generation: u64,
    /// Mode key and CS base, cached between mode changes (`forget_mode`).
    mode: Option<(u32, u64)>,
    /// Bumped whenever a chain link could have gone stale (blocks dropped, TLB flushed, mode
    /// changed); links carry the epoch they were made in.
    epoch: u32,
    /// Blocks decoded so far (statistics).
    pub decoded: u64,
    /// Blocks dropped by self-modifying code (statistics).
    pub invalidated: u64,
    /// Told when blocks go and when mappings change (the JIT registers itself here).
    observer: Option<Box<dyn CodeObserver>>,
}

impl Default for BlockCache {
    fn default() -> Self {
        Self::new()
    }
}

/// The part of the CPU mode that changes how bytes decode or execute: code size and CPL.
#[inline(always)]
pub fn mode_key(cpu: &Cpu) -> u32 {
    cpu.state.code_bits() | (cpu.state.cpl as u32) << 8
}

impl BlockCache {
    pub fn new() -> Self {
        BlockCache {
            blocks: Vec::new(),
            free: Vec::new(),
            map: HashMap::new(),
            by_page: HashMap::new(),
            jump: vec![JUMP_EMPTY; JUMP_CACHE].into_boxed_slice(),
            jump_gen: JUMP_GEN_ONE,
            tlb_generation: 0,
            mode: None,
            epoch: 0,
            decoded: 0,
            invalidated: 0,
            observer: None,
        }
    }

    #[inline(always)]
    pub fn block(&self, idx: u32) -> &Block {
        &self.blocks[idx as usize]
    }

    /// Every valid block (the monitor's `info blocks`).
    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.blocks.iter().filter(|b| b.valid)
    }

    /// The block the run loop is about to execute, counted as one more execution.
    #[inline(always)]
    pub fn enter(&mut self, idx: u32) -> &Block {
        let b = &mut self.blocks[idx as usize];
        b.executions += 1;
        b
    }

    /// The valid block keyed (physical address `pa`, linear address `la`, mode key `mode`), if
    /// one is cached; nothing is decoded (the JIT's regions gather blocks that already ran).
    pub fn find(&self, pa: u64, la: u64, mode: u32) -> Option<u32> {
        self.map.get(&(pa, la, mode)).copied().filter(|&i| self.blocks[i as usize].valid)
    }

    /// Attaches translated code to block `idx` (or detaches it with `None`).
    pub fn set_translation(&mut self, idx: u32, handle: Option<TranslationHandle>) {
        self.blocks[idx as usize].translation = handle;
    }

    /// Registers the observer told about dropped blocks and changed mappings (replacing any).
    pub fn set_observer(&mut self, observer: Box<dyn CodeObserver>) {
        self.observer = Some(observer);
    }

    /// Forgets the cached mode: the caller saw something that may have changed CS, CPL,
    /// CR0 or EFER (any stop of the interpreter, an interrupt delivered from outside).
    pub fn forget_mode(&mut self) {
        self.mode = None;
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// The block starting at the CPU's current RIP, decoding it if needed.
    ///
    /// # Errors
    /// The fault raised by fetching the block's first instruction.
    #[inline(always)]
    pub fn lookup(&mut self, cpu: &mut Cpu) -> Result<u32, Stop> {
        self.lookup_after(cpu, None)
    }

    /// `lookup`, trying first the block that followed `prev` last time (block chaining: a hot
    /// loop then costs one compare per block).
    ///
    /// # Errors
    /// The fault raised by fetching the block's first instruction.
    #[inline(always)]
    pub fn lookup_after(&mut self, cpu: &mut Cpu, prev: Option<u32>) -> Result<u32, Stop> {
        if cpu.softmmu.tlb_generation() != self.tlb_generation {
            self.mappings_changed(cpu.softmmu.tlb_generation());
        }
        let (mode, cs_base) = match self.mode {
            Some(m) => m,
            None => {
                let bits = cpu.state.code_bits();
                let m = (mode_key(cpu), if bits == 64 { 0 } else { cpu.state.segs[1].base });
                self.mode = Some(m);
                m
            }
        };
        let la = cpu.state.rip.wrapping_add(cs_base);
        if let Some(p) = prev {
            let (nla, nidx, nepoch) = self.blocks[p as usize].next.get();
            if nla == la && nepoch == self.epoch {
                return Ok(nidx);
            }
        }
        let slot = jump_slot(la);
        let (tag, m, idx) = self.jump[slot];
        debug_assert!(mode < JUMP_GEN_ONE, "mode keys fit below the jump cache's generation");
        let key = mode | self.jump_gen;
        let idx = if tag == la && m == key {
            idx
        } else {
            let idx = self.lookup_slow(cpu, la, mode)?;
            self.jump[slot] = (la, key, idx);
            idx
        };
        if let Some(p) = prev {
            self.blocks[p as usize].next.set((la, idx, self.epoch));
        }
        Ok(idx)
    }

    #[inline(never)]
    fn mappings_changed(&mut self, generation: u64) {
        self.jump_gen = self.jump_gen.wrapping_add(JUMP_GEN_ONE);
        if self.jump_gen == 0 {
            // Wrapped (every 2^20 changes): entries of the last generation 0 could match again.
            self.jump.fill(JUMP_EMPTY);
            self.jump_gen = JUMP_GEN_ONE;
        }
        self.tlb_generation = generation;
        self.epoch = self.epoch.wrapping_add(1);
        if let Some(o) = self.observer.as_mut() {
            o.mappings_changed();
        }
    }

    #[inline(never)]
    fn lookup_slow(&mut self, cpu: &mut Cpu, la: u64, mode: u32) -> Result<u32, Stop> {
        let pa = cpu.translate_fetch(la)?;
        if let Some(&idx) = self.map.get(&(pa, la, mode)) {
            // The key names the first page only. A block with a second page is one instruction
            // crossing into the next page (`decode_block`), whose mapping may have changed since
            // (mremap, a new CR3): fetch through the current one, as the CPU would, faulting if
            // it is gone, and decode again if it names another frame.
            let second = self.blocks[idx as usize].pages[1];
            if second == u64::MAX {
                return Ok(idx);
            }
            let pa2 = cpu.translate_fetch((la & !0xfff).wrapping_add(4096))?;
            if pa2 & !0xfff == second {
                return Ok(idx);
            }
            let mut dropped = Vec::new();
            self.drop_block(idx, &mut dropped);
            self.report_dropped(&dropped);
        }
        let d = decode_block(cpu, la, pa)?;
        self.decoded += 1;
        // The bytes the block covers, plus an instruction's worth (a decoder may look past an
        // invalid instruction's length): only stores into those lines drop the block.
        let len: u64 = d.instrs.iter().map(|i| u64::from(i.len)).sum::<u64>() + 15;
        let key = (pa, la, mode);
        let block = Block {
            instrs: d.instrs.into_boxed_slice(),
            la,
            end_rip: d.end_rip,
            pages: d.pages,
            mode,
            ends_in_branch: d.ends_in_branch,
            valid: true,
            key,
            next: std::cell::Cell::new((u64::MAX, 0, 0)),
            executions: 0,
            translation: None,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.blocks[i as usize] = block;
                i
            }
            None => {
                self.blocks.push(block);
                (self.blocks.len() - 1) as u32
            }
        };
        self.map.insert(key, idx);
        for (n, page) in d.pages.into_iter().enumerate().filter(|&(_, p)| p != u64::MAX) {
            self.by_page.entry(page).or_default().push(idx);
            // The second page holds only the rest of one instruction that crosses into it.
            let (start, bytes) = if n == 0 { (pa, len) } else { (page, 15) };
            cpu.softmmu.mark_code(start, bytes);
        }
        Ok(idx)
    }

    /// Drops every block with bytes on physical page `page`.
    pub fn invalidate_page(&mut self, page: u64) {
        let mut dropped = Vec::new();
        self.drop_page(page, &mut dropped);
        self.report_dropped(&dropped);
    }

    /// Drops everything and unmarks every code page.
    pub fn clear(&mut self, cpu: &mut Cpu) {
        let pages: Vec<u64> = self.by_page.keys().copied().collect();
        let mut dropped = Vec::new();
        for p in pages {
            self.drop_page(p, &mut dropped);
            cpu.softmmu.clear_code_page(p);
        }
        self.jump.fill(JUMP_EMPTY);
        self.report_dropped(&dropped);
    }

    /// Drops the blocks listed under `page`, adding their translations to `dropped`.
    fn drop_page(&mut self, page: u64, dropped: &mut Vec<TranslationHandle>) {
        let Some(list) = self.by_page.remove(&page) else { return };
        for idx in list {
            self.drop_block(idx, dropped);
        }
    }

    /// Drops block `idx` if it is still valid, adding its translation to `dropped`.
    fn drop_block(&mut self, idx: u32, dropped: &mut Vec<TranslationHandle>) {
        let b = &mut self.blocks[idx as usize];
        if !b.valid {
            return;
        }
        b.valid = false;
        self.invalidated += 1;
        self.epoch = self.epoch.wrapping_add(1);
        let slot = jump_slot(b.la);
        if self.jump[slot].2 == idx {
            self.jump[slot] = JUMP_EMPTY;
        }
        self.map.remove(&b.key);
        // The block may still be listed under its pages; those lists are cleaned lazily (a
        // reused index listed there is at worst dropped once too often).
        b.instrs = Box::new([]);
        dropped.extend(b.translation.take());
        self.free.push(idx);
    }

    fn report_dropped(&mut self, dropped: &[TranslationHandle]) {
        if let (false, Some(o)) = (dropped.is_empty(), self.observer.as_mut()) {
            o.blocks_dropped(dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exception::Stop;
    use crate::mem::GuestRam;
    use crate::tier0::{Exit, Interp};
    use std::cell::RefCell;
    use std::rc::Rc;

    /// What the observer was told, in order.
    #[derive(Debug, PartialEq)]
    enum Event {
        Dropped(Vec<TranslationHandle>),
        MappingsChanged,
    }

    struct Recorder(Rc<RefCell<Vec<Event>>>);

    impl CodeObserver for Recorder {
        fn blocks_dropped(&mut self, handles: &[TranslationHandle]) {
            self.0.borrow_mut().push(Event::Dropped(handles.to_vec()));
        }
        fn mappings_changed(&mut self) {
            self.0.borrow_mut().push(Event::MappingsChanged);
        }
    }

    fn handle(n: u32) -> TranslationHandle {
        TranslationHandle(NonZeroU32::new(n).unwrap())
    }

    /// A CPU and tier 0 to run it.
    struct It {
        cpu: Cpu,
        t0: Interp,
    }

    /// A real-mode CPU (CS = DS = 0) with `code` at each linear (= physical) address given,
    /// and an observer whose log is returned.
    fn real_mode(code: &[(u64, &[u8])]) -> (It, Rc<RefCell<Vec<Event>>>) {
        let mut cpu = Cpu::new(GuestRam::new(1 << 20).unwrap());
        for (at, bytes) in code {
            cpu.ram.slice_mut(*at, bytes.len()).unwrap().copy_from_slice(bytes);
        }
        let mut it = It { cpu, t0: Interp::new() };
        let log = Rc::new(RefCell::new(Vec::new()));
        it.t0.cache.set_observer(Box::new(Recorder(log.clone())));
        (it, log)
    }

    /// Runs from `rip` until HLT.
    fn run_to_hlt(it: &mut It, rip: u64) {
        it.cpu.state.rip = rip;
        for _ in 0..4 {
            match it.t0.run(&mut it.cpu, 1_000_000) {
                Exit::Stop(Stop::Halt) => return,
                Exit::Stop(Stop::Yield) => continue,
                other => panic!("unexpected exit {other:?}"),
            }
        }
        panic!("no HLT reached");
    }

    /// Index of the valid block starting at linear address `la`.
    fn block_at(cache: &BlockCache, la: u64) -> u32 {
        let idx = cache.blocks.iter().position(|b| b.valid && b.la == la).expect("a block there");
        idx as u32
    }

    #[test]
    fn a_block_counts_each_entry_of_the_run_loop() {
        const LOOPS: u16 = 1000;
        let [lo, hi] = LOOPS.to_le_bytes();
        // mov cx, LOOPS ; jmp short $+2 (ends the block, so the loop body is a block of its
        // own) ; body: dec cx ; jnz body ; hlt
        let code = [0xb9, lo, hi, 0xeb, 0x00, 0x49, 0x75, 0xfd, 0xf4];
        let (mut it, _) = real_mode(&[(0x1000, &code)]);
        run_to_hlt(&mut it, 0x1000);
        assert_eq!(it.cpu.state.gpr[1] & 0xffff, 0, "the loop ran to the end");
        // The body runs once per iteration: LOOPS times, the first included.
        assert_eq!(it.t0.cache.block(block_at(&it.t0.cache, 0x1005)).executions(), LOOPS as u64);
        assert_eq!(it.t0.cache.block(block_at(&it.t0.cache, 0x1000)).executions(), 1);
        assert_eq!(it.t0.cache.block(block_at(&it.t0.cache, 0x1008)).executions(), 1);
    }

    #[test]
    fn a_guest_store_into_code_drops_the_block_and_reports_its_translation() {
        // Page 1: nop ; hlt. Page 2: mov byte [0x1000], 0x90 ; hlt.
        let (mut it, log) = real_mode(&[(0x1000, &[0x90, 0xf4]), (0x2000, &[0xc6, 0x06, 0x00, 0x10, 0x90, 0xf4])]);
        run_to_hlt(&mut it, 0x1000);
        let target = block_at(&it.t0.cache, 0x1000);
        it.t0.cache.set_translation(target, Some(handle(7)));
        assert_eq!(it.t0.cache.block(target).translation(), Some(handle(7)));
        run_to_hlt(&mut it, 0x2000);
        assert_eq!(*log.borrow(), [Event::Dropped(vec![handle(7)])]);
        // (The freed index may already hold the block decoded after the store.)
        assert!(!it.t0.cache.blocks.iter().any(|b| b.valid && b.la == 0x1000), "the block is gone");
        assert_eq!(it.t0.cache.invalidated, 1);
    }

    #[test]
    fn a_store_beside_the_code_of_a_page_keeps_its_blocks_and_one_into_it_drops_them() {
        // Page 1: nop ; hlt (the block goes on decoding past HLT, through zeros, to its
        // instruction limit: a few hundred bytes). Page 2: two stores into the second half of
        // page 1 (the first walks, the second finds the TLB entry), hlt; then a store to the
        // HLT's byte, hlt.
        let (mut it, log) = real_mode(&[
            (0x1000, &[0x90, 0xf4]),
            (0x2000, &[0xc6, 0x06, 0x00, 0x18, 0x55, 0xc6, 0x06, 0xff, 0x1f, 0x66, 0xf4]),
            (0x2100, &[0xc6, 0x06, 0x01, 0x10, 0x77, 0xf4]),
        ]);
        run_to_hlt(&mut it, 0x1000);
        let target = block_at(&it.t0.cache, 0x1000);
        it.t0.cache.set_translation(target, Some(handle(5)));
        run_to_hlt(&mut it, 0x2000);
        assert_eq!(it.cpu.ram.slice(0x1800, 1).unwrap()[0], 0x55, "the data store was made");
        assert_eq!(it.cpu.ram.slice(0x1fff, 1).unwrap()[0], 0x66);
        assert!(log.borrow().is_empty(), "nothing dropped: {:?}", log.borrow());
        assert_eq!(it.t0.cache.block(target).translation(), Some(handle(5)));
        assert!(it.cpu.softmmu.is_code_page(0x1000));
        run_to_hlt(&mut it, 0x2100);
        assert_eq!(*log.borrow(), [Event::Dropped(vec![handle(5)])]);
        assert_eq!(it.t0.cache.invalidated, 1);
    }

    #[test]
    fn flushing_the_code_reports_every_translation() {
        // Three blocks on two pages: jmp 0x2000 at 0x1000; at 0x2000: jmp short $+2 ; hlt.
        let (mut it, log) = real_mode(&[(0x1000, &[0xe9, 0xfd, 0x0f]), (0x2000, &[0xeb, 0x00, 0xf4])]);
        run_to_hlt(&mut it, 0x1000);
        let blocks = [0x1000, 0x2000, 0x2002].map(|la| block_at(&it.t0.cache, la));
        for (n, &idx) in blocks.iter().enumerate() {
            it.t0.cache.set_translation(idx, Some(handle(n as u32 + 1)));
        }
        it.t0.flush_code(&mut it.cpu);
        let log = log.borrow();
        let [Event::Dropped(handles)] = &log[..] else { panic!("one report expected, got {log:?}") };
        let mut handles = handles.clone();
        handles.sort_by_key(|h| h.0);
        assert_eq!(handles, [handle(1), handle(2), handle(3)]);
        assert!(it.t0.cache.blocks.iter().all(|b| !b.valid));
    }

    #[test]
    fn an_instruction_crossing_into_a_remapped_page_is_fetched_through_the_new_mapping() {
        use crate::user::aspace::{AddressSpace, PROT_EXEC, PROT_READ, PROT_WRITE};
        // 64-bit user mode on real page tables: at 0xffe of the first page `mov eax, imm32`,
        // whose last three immediate bytes lie on the second page, then `syscall` there.
        let rwx = PROT_READ | PROT_WRITE | PROT_EXEC;
        let (first, second, spare) = (0x10_000u64, 0x11_000u64, 0x20_000u64);
        let mut ram = GuestRam::new(1 << 20).unwrap();
        let mut aspace = AddressSpace::new(&mut ram);
        let f1 = aspace.populate(&mut ram, first, rwx).unwrap();
        let f2 = aspace.populate(&mut ram, second, rwx).unwrap();
        let f3 = aspace.populate(&mut ram, spare, rwx).unwrap();
        ram.slice_mut(f1 + 0xffe, 2).unwrap().copy_from_slice(&[0xb8, 0x11]);
        ram.slice_mut(f2, 5).unwrap().copy_from_slice(&[0x22, 0x33, 0x44, 0x0f, 0x05]);
        ram.slice_mut(f3, 5).unwrap().copy_from_slice(&[0xaa, 0xbb, 0xcc, 0x0f, 0x05]);
        let mut cpu = Cpu::new(ram);
        crate::user::setup_long_mode_user(&mut cpu, aspace.pml4);
        cpu.config.user_mode_syscalls = true;
        let mut t0 = Interp::new();
        let run = |cpu: &mut Cpu, t0: &mut Interp| {
            cpu.state.rip = first + 0xffe;
            let exit = t0.run(cpu, 100);
            assert!(matches!(exit, Exit::Stop(Stop::Syscall)), "{exit:?} at {:#x}", cpu.state.rip);
            cpu.state.gpr[0] as u32
        };
        assert_eq!(run(&mut cpu, &mut t0), 0x4433_2211);
        // mremap: the spare page's frame now backs the second page; the TLB is flushed as the
        // system call does it. The CPU fetches the immediate's tail from the new frame.
        aspace.move_page(&mut cpu.ram, spare, second).unwrap();
        cpu.softmmu.flush_tlb();
        assert_eq!(run(&mut cpu, &mut t0), 0xccbb_aa11);
        // Not present: the fetch of the crossing instruction faults (#PF at the second page).
        assert_eq!(aspace.discard(&mut cpu.ram, second, second + 0x1000).len(), 1);
        cpu.softmmu.flush_tlb();
        cpu.state.rip = first + 0xffe;
        match t0.run(&mut cpu, 100) {
            Exit::Stop(Stop::Fault(f)) => assert_eq!((f.vector, cpu.fault_addr), (14, second)),
            other => panic!("expected #PF, got {other:?}"),
        }
    }

    #[test]
    fn invlpg_of_a_code_page_reports_changed_mappings_and_keeps_the_blocks() {
        // invlpg [0x1000] ; hlt, at 0x1000 itself: its own code page.
        let (mut it, log) = real_mode(&[(0x1000, &[0x0f, 0x01, 0x3e, 0x00, 0x10, 0xf4])]);
        run_to_hlt(&mut it, 0x1000);
        let first = block_at(&it.t0.cache, 0x1000);
        it.t0.cache.set_translation(first, Some(handle(3)));
        // Blocks are keyed by physical address, so a TLB flush leaves them (and their
        // translations) in place; only links made by linear address are stale.
        assert!(log.borrow().contains(&Event::MappingsChanged));
        assert!(!log.borrow().iter().any(|e| matches!(e, Event::Dropped(_))));
        log.borrow_mut().clear();
        run_to_hlt(&mut it, 0x1000);
        assert_eq!(*log.borrow(), [Event::MappingsChanged]);
        assert_eq!(it.t0.cache.block(first).translation(), Some(handle(3)));
        assert_eq!(it.t0.cache.block(first).executions(), 2);
    }
}
