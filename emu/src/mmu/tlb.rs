//! The software TLB (ARCHITECTURE.md, decision 7): linear page -> physical page, with separate tags for
//! read, write and execute so each fast path is one compare. Two direct-mapped sets, one per
//! privilege (supervisor, user), so a system call does not flush anything.
//!
//! A tag holds the page-aligned linear address, with the TLB's current generation in its low 12
//! bits, when that access is allowed without a walk, and `INVALID` otherwise. A flush only bumps
//! the generation (O(1)): entries of older generations stop matching. Global pages are flushed
//! by a CR3 write too (an over-flush, which the architecture allows); they are walked again. Write tags are left invalid for pages that hold decoded code (so a store
//! there takes the slow path and invalidates the blocks), for pages whose dirty bit is not yet set,
//! and for anything outside RAM (MMIO).

use super::walk::Translation;

/// Entries per privilege set.
pub const TLB_ENTRIES: usize = 4096;
/// A tag that matches nothing: its low 12 bits are never a generation.
pub const INVALID: u64 = u64::MAX;
/// Generations run 1..=MAX_GEN, then the table is cleared and they start again.
const MAX_GEN: u64 = 0xffe;

#[derive(Clone, Copy, Debug)]
pub struct TlbEntry {
    pub read_tag: u64,
    pub write_tag: u64,
    pub exec_tag: u64,
    /// Physical address of the page.
    pub paddr: u64,
}

const EMPTY: TlbEntry = TlbEntry { read_tag: INVALID, write_tag: INVALID, exec_tag: INVALID, paddr: 0 };

pub struct Tlb {
    /// `sets[0]` supervisor, `sets[1]` user (CPL 3).
    pub sets: Box<[[TlbEntry; TLB_ENTRIES]; 2]>,
    /// Bumped by every flush, so caches keyed by linear address know to forget.
    pub generation: u64,
    /// The generation valid tags carry in their low 12 bits.
    pub gen: u64,
}

impl Default for Tlb {
    fn default() -> Self {
        Tlb { sets: Box::new([[EMPTY; TLB_ENTRIES]; 2]), generation: 0, gen: 1 }
    }
}

#[inline(always)]
pub fn index(la: u64) -> usize {
    (la >> 12) as usize & (TLB_ENTRIES - 1)
}

impl Tlb {
    /// The tag an entry for `la` must hold to be valid now.
    #[inline(always)]
    pub fn tag(&self, la: u64) -> u64 {
        (la & !0xfff) | self.gen
    }

    /// Starts a new generation; every entry of the old ones stops matching.
    fn new_generation(&mut self) {
        self.generation += 1;
        self.gen += 1;
        if self.gen > MAX_GEN {
            for set in self.sets.iter_mut() {
                set.fill(EMPTY);
            }
            self.gen = 1;
        }
    }

    /// Caches a translation. `in_ram` is false for MMIO; `code_page` keeps writes on the slow path.
    pub fn fill(&mut self, user: bool, la: u64, t: &Translation, in_ram: bool, code_page: bool) {
        let tag = self.tag(la);
        let e = &mut self.sets[user as usize][index(la)];
        *e = TlbEntry {
            read_tag: if in_ram { tag } else { INVALID },
            write_tag: if in_ram && t.writable && !code_page { tag } else { INVALID },
            exec_tag: if in_ram && t.executable { tag } else { INVALID },
            paddr: t.page,
        };
    }

    /// Everything (CR4.PGE toggled, CR0.PG changed).
    pub fn flush_all(&mut self) {
        self.new_generation();
    }

    /// Everything but global pages (a CR3 write, SDM Vol. 3, 4.10.4.1). Global entries go too:
    /// the generation covers every entry, and refilling them is only a walk.
    pub fn flush_non_global(&mut self) {
        self.new_generation();
    }

    /// One page (INVLPG), in both privilege sets.
    pub fn flush_page(&mut self, la: u64) {
        self.generation += 1;
        let page = la & !0xfff;
        for set in self.sets.iter_mut() {
            let e = &mut set[index(la)];
            let same = |t: u64| t != INVALID && t & !0xfff == page;
            if same(e.read_tag) || same(e.exec_tag) || same(e.write_tag) {
                *e = EMPTY;
            }
        }
    }

    /// Takes the fast write path away from every entry that maps physical page `paddr` (the page
    /// now holds decoded code).
    pub fn protect_code_page(&mut self, paddr: u64) {
        for set in self.sets.iter_mut() {
            for e in set.iter_mut().filter(|e| e.paddr == paddr) {
                e.write_tag = INVALID;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(page: u64) -> Translation {
        Translation { page, writable: true, executable: false, global: false }
    }

    #[test]
    fn a_flush_makes_every_entry_stale_and_wrapping_generations_clear_the_table() {
        let mut tlb = Tlb::default();
        tlb.fill(false, 0x4000_1234, &t(0x9000), true, false);
        let e = tlb.sets[0][index(0x4000_1234)];
        assert_eq!(e.read_tag, tlb.tag(0x4000_1000));
        assert_eq!(e.exec_tag, INVALID, "not executable");
        tlb.flush_non_global();
        let e = tlb.sets[0][index(0x4000_1234)];
        assert_ne!(e.read_tag, tlb.tag(0x4000_1000), "stale after a CR3 write");
        // Many generations later the counter wraps; an entry filled long ago must not match.
        tlb.fill(false, 0x5000_0000, &t(0xa000), true, false);
        for _ in 0..MAX_GEN {
            tlb.flush_all();
        }
        let e = tlb.sets[0][index(0x5000_0000)];
        assert_ne!(e.read_tag, tlb.tag(0x5000_0000));
        // INVLPG drops only its page.
        tlb.fill(true, 0x6000_0000, &t(0xb000), true, false);
        tlb.fill(true, 0x6000_1000, &t(0xc000), true, false);
        tlb.flush_page(0x6000_0fff);
        assert_eq!(tlb.sets[1][index(0x6000_0000)].read_tag, INVALID);
        assert_eq!(tlb.sets[1][index(0x6000_1000)].read_tag, tlb.tag(0x6000_1000));
    }
}
