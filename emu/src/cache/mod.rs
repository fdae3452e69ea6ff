//! The decoded-block cache (ARCHITECTURE.md, decisions 4 and 8).
//!
//! Blocks are keyed by (physical address, linear address, CPU mode) in a hash map, with a small
//! direct-mapped "jump cache" in front of it keyed by linear address, so a hot loop costs one
//! compare per block. Every physical page holding a block is marked in `Cpu::code_pages`; a store
//! to such a page goes through the memory slow path, which reports the page, and the run loop
//! drops every block on it (`invalidate_page`).
//!
//! The jump cache is emptied whenever the TLB changes generation (CR3 write, INVLPG, mode
//! change), because its key is a linear address.

use crate::cpu::Cpu;
use crate::decode::decode_block;
use crate::exception::Stop;
use crate::interp::Instr;
use hashbrown::HashMap;

const JUMP_CACHE: usize = 4096;
const JUMP_EMPTY: (u64, u32, u32) = (u64::MAX, 0, 0);

#[inline(always)]
fn jump_slot(la: u64) -> usize {
    ((la ^ (la >> 12)) as usize) & (JUMP_CACHE - 1)
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
        }
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
            tlb_generation: 0,
            mode: None,
            epoch: 0,
            decoded: 0,
            invalidated: 0,
        }
    }

    #[inline(always)]
    pub fn block(&self, idx: u32) -> &Block {
        &self.blocks[idx as usize]
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
        if cpu.tlb.generation != self.tlb_generation {
            self.jump.fill(JUMP_EMPTY);
            self.tlb_generation = cpu.tlb.generation;
            self.epoch = self.epoch.wrapping_add(1);
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
        let idx = if tag == la && m == mode {
            idx
        } else {
            let idx = self.lookup_slow(cpu, la, mode)?;
            self.jump[slot] = (la, mode, idx);
            idx
        };
        if let Some(p) = prev {
            self.blocks[p as usize].next.set((la, idx, self.epoch));
        }
        Ok(idx)
    }

    #[inline(never)]
    fn lookup_slow(&mut self, cpu: &mut Cpu, la: u64, mode: u32) -> Result<u32, Stop> {
        let pa = cpu.translate_fetch(la)?;
        if let Some(&idx) = self.map.get(&(pa, la, mode)) {
            return Ok(idx);
        }
        let d = decode_block(cpu, la, pa)?;
        self.decoded += 1;
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
        for page in d.pages.into_iter().filter(|&p| p != u64::MAX) {
            self.by_page.entry(page).or_default().push(idx);
            cpu.mark_code_page(page);
        }
        Ok(idx)
    }

    /// Drops every block with bytes on physical page `page`.
    pub fn invalidate_page(&mut self, page: u64) {
        let Some(list) = self.by_page.remove(&page) else { return };
        for idx in list {
            let b = &mut self.blocks[idx as usize];
            if !b.valid {
                continue;
            }
            b.valid = false;
            self.invalidated += 1;
            self.epoch = self.epoch.wrapping_add(1);
            let slot = jump_slot(b.la);
            if self.jump[slot].2 == idx {
                self.jump[slot] = JUMP_EMPTY;
            }
            self.map.remove(&b.key);
            // The block may also be listed under its other page; that list is cleaned lazily.
            b.instrs = Box::new([]);
            self.free.push(idx);
        }
    }

    /// Drops everything and unmarks every code page.
    pub fn clear(&mut self, cpu: &mut Cpu) {
        let pages: Vec<u64> = self.by_page.keys().copied().collect();
        for p in pages {
            self.invalidate_page(p);
            cpu.clear_code_page(p);
        }
        self.jump.fill(JUMP_EMPTY);
    }
}
