//! The software TLB (docs/ARCHITECTURE.md, decision 7): linear page -> host and physical page, with separate
//! tags for read, write and execute so each fast path is one compare. Two direct-mapped sets,
//! one per privilege (supervisor, user), so a system call does not flush anything.
//!
//! A tag holds the page-aligned linear address, with the TLB's current generation in its low 12
//! bits, when that access is allowed without a walk, and `INVALID` otherwise. A flush only bumps
//! the generation (O(1)): entries of older generations stop matching. Global pages are flushed
//! by a CR3 write too (an over-flush, which the architecture allows); they are walked again.
//! Write tags are left invalid for pages that hold decoded code (so a store there takes the slow
//! path and invalidates the blocks), for pages whose dirty bit is not yet set, and for anything
//! outside RAM (MMIO).
//!
//! Entries are laid out for generated code as well as for the interpreter (`#[repr(C)]`, 32
//! bytes). A `size`-byte access at linear address `la` by code at privilege `set` (0 supervisor,
//! 1 user) hits when
//!
//! ```text
//! entry = sets[set][(la >> 12) & (TLB_ENTRIES - 1)]
//! entry.read_tag == ((la + size - 1) & !0xfff) | gen      (write_tag, exec_tag likewise)
//! host address   =  la + entry.addend                     (wrapping)
//! ```
//!
//! The tag is compared with the page of the access's *last* byte: an access that crosses into
//! the next page names a page the entry (filled for the page of `la`) cannot hold, so it misses
//! and the slow path splits it. The addend is the host address of the page's first byte minus
//! the page's linear address, so the hit costs one compare and one add. The guest physical page
//! of each entry is kept in a parallel array: only slow paths need it.

use super::walk::Translation;

/// Entries per privilege set.
pub const TLB_ENTRIES: usize = 4096;
/// A tag that matches nothing: its low 12 bits are never a generation.
pub const INVALID: u64 = u64::MAX;
/// Generations run 1..=MAX_GEN, then the table is cleared and they start again.
const MAX_GEN: u64 = 0xffe;

/// One cached translation (layout pinned for generated code; see the module doc).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TlbEntry {
    pub read_tag: u64,
    pub write_tag: u64,
    pub exec_tag: u64,
    /// Host address of the page minus its linear address, wrapping (0 when not in RAM).
    pub addend: u64,
}

/// Byte offsets generated code uses (see the module doc), pinned like `state::layout`.
pub mod layout {
    use super::TlbEntry;
    use core::mem::{offset_of, size_of};

    pub const READ_TAG: usize = 0;
    pub const WRITE_TAG: usize = 8;
    pub const EXEC_TAG: usize = 16;
    pub const ADDEND: usize = 24;
    pub const ENTRY_SIZE: usize = 32;

    const _: () = {
        assert!(offset_of!(TlbEntry, read_tag) == READ_TAG);
        assert!(offset_of!(TlbEntry, write_tag) == WRITE_TAG);
        assert!(offset_of!(TlbEntry, exec_tag) == EXEC_TAG);
        assert!(offset_of!(TlbEntry, addend) == ADDEND);
        // At most 32 bytes, so an entry is found with a shift and never straddles two lines.
        assert!(size_of::<TlbEntry>() == ENTRY_SIZE);
    };
}

const EMPTY: TlbEntry = TlbEntry { read_tag: INVALID, write_tag: INVALID, exec_tag: INVALID, addend: 0 };

pub struct Tlb {
    /// `sets[0]` supervisor, `sets[1]` user (CPL 3).
    sets: Box<[[TlbEntry; TLB_ENTRIES]; 2]>,
    /// Guest physical page of each entry of `sets`, same indices.
    paddrs: Box<[[u64; TLB_ENTRIES]; 2]>,
    /// Bumped by every flush, so caches keyed by linear address know to forget.
    pub(super) generation: u64,
    /// The generation valid tags carry in their low 12 bits.
    gen: u64,
}

impl Tlb {
    /// Where the pointer to the entries (`sets`: supervisor set, then user set) lies in a `Tlb`,
    /// for generated code that probes the TLB inline (the JIT).
    pub const SETS_OFFSET: usize = std::mem::offset_of!(Tlb, sets);
    /// Where the generation valid tags carry (`gen`) lies in a `Tlb`.
    pub const GEN_OFFSET: usize = std::mem::offset_of!(Tlb, gen);
}

impl Default for Tlb {
    fn default() -> Self {
        Tlb {
            sets: Box::new([[EMPTY; TLB_ENTRIES]; 2]),
            paddrs: Box::new([[0; TLB_ENTRIES]; 2]),
            generation: 0,
            gen: 1,
        }
    }
}

#[inline(always)]
pub fn index(la: u64) -> usize {
    (la >> 12) as usize & (TLB_ENTRIES - 1)
}

impl Tlb {
    /// The tag a `bytes`-long access at `la` must find: the page of its last byte, so an access
    /// crossing into the next page misses.
    #[inline(always)]
    fn access_tag(&self, la: u64, bytes: usize) -> u64 {
        (la.wrapping_add(bytes as u64 - 1) & !0xfff) | self.gen
    }

    /// Host address for a `bytes`-long read at `la` that stays in one page, on a hit.
    #[inline(always)]
    pub fn host_read(&self, user: bool, la: u64, bytes: usize) -> Option<u64> {
        let e = &self.sets[user as usize][index(la)];
        (e.read_tag == self.access_tag(la, bytes)).then(|| la.wrapping_add(e.addend))
    }

    /// Host address for a `bytes`-long write at `la` that stays in one page, on a hit (never
    /// for a page holding code, MMIO, or a page whose dirty bit is clear).
    #[inline(always)]
    pub fn host_write(&self, user: bool, la: u64, bytes: usize) -> Option<u64> {
        let e = &self.sets[user as usize][index(la)];
        (e.write_tag == self.access_tag(la, bytes)).then(|| la.wrapping_add(e.addend))
    }

    /// Physical address of `la` for an instruction fetch, on a hit.
    #[inline(always)]
    pub fn fetch_paddr(&self, user: bool, la: u64) -> Option<u64> {
        let i = index(la);
        (self.sets[user as usize][i].exec_tag == self.access_tag(la, 1))
            .then(|| self.paddrs[user as usize][i] | (la & 0xfff))
    }

    /// Physical address of `la` for a read or (`write`) a write, on a hit (the string
    /// instructions' page-at-a-time path).
    #[inline(always)]
    pub fn data_paddr(&self, user: bool, la: u64, write: bool) -> Option<u64> {
        let i = index(la);
        let e = &self.sets[user as usize][i];
        let tag = if write { e.write_tag } else { e.read_tag };
        (tag == self.access_tag(la, 1)).then(|| self.paddrs[user as usize][i] | (la & 0xfff))
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

    /// Caches a translation. `ram_host` is the host address of guest physical 0; `in_ram` is
    /// false for MMIO; `code_page` keeps writes on the slow path.
    pub fn fill(&mut self, user: bool, la: u64, t: &Translation, ram_host: u64, in_ram: bool, code_page: bool) {
        let tag = self.access_tag(la, 1);
        let i = index(la);
        self.sets[user as usize][i] = TlbEntry {
            read_tag: if in_ram && t.readable { tag } else { INVALID },
            write_tag: if in_ram && t.writable && !code_page { tag } else { INVALID },
            exec_tag: if in_ram && t.executable { tag } else { INVALID },
            addend: if in_ram { ram_host.wrapping_add(t.page).wrapping_sub(la & !0xfff) } else { 0 },
        };
        self.paddrs[user as usize][i] = t.page;
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
        for (set, paddrs) in self.sets.iter_mut().zip(self.paddrs.iter()) {
            for (e, _) in set.iter_mut().zip(paddrs.iter()).filter(|(_, &p)| p == paddr) {
                e.write_tag = INVALID;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(page: u64) -> Translation {
        Translation { page, writable: true, readable: true, executable: false, global: false }
    }

    /// Stands in for the host address of guest RAM.
    const HOST: u64 = 0x7f00_0000_0000;

    #[test]
    fn a_flush_makes_every_entry_stale_and_wrapping_generations_clear_the_table() {
        let mut tlb = Tlb::default();
        tlb.fill(false, 0x4000_1234, &t(0x9000), HOST, true, false);
        assert_eq!(tlb.host_read(false, 0x4000_1234, 8), Some(HOST + 0x9234));
        assert_eq!(tlb.fetch_paddr(false, 0x4000_1234), None, "not executable");
        tlb.flush_non_global();
        assert_eq!(tlb.host_read(false, 0x4000_1234, 8), None, "stale after a CR3 write");
        // Many generations later the counter wraps; an entry filled long ago must not match.
        tlb.fill(false, 0x5000_0000, &t(0xa000), HOST, true, false);
        for _ in 0..MAX_GEN {
            tlb.flush_all();
        }
        assert_eq!(tlb.host_read(false, 0x5000_0000, 1), None);
        // INVLPG drops only its page.
        tlb.fill(true, 0x6000_0000, &t(0xb000), HOST, true, false);
        tlb.fill(true, 0x6000_1000, &t(0xc000), HOST, true, false);
        tlb.flush_page(0x6000_0fff);
        assert_eq!(tlb.sets[1][index(0x6000_0000)].read_tag, INVALID);
        assert_eq!(tlb.host_read(true, 0x6000_1000, 4), Some(HOST + 0xc000));
        assert_eq!(tlb.host_read(false, 0x6000_1000, 4), None, "the other privilege set");
    }

    #[test]
    fn an_access_that_crosses_the_page_end_misses() {
        let mut tlb = Tlb::default();
        tlb.fill(false, 0x4000_0000, &t(0x9000), HOST, true, false);
        tlb.fill(false, 0x4000_1000, &t(0x3000), HOST, true, false);
        for bytes in [1, 2, 4, 8, 16] {
            let last = 0x4000_1000 - bytes as u64;
            assert_eq!(tlb.host_read(false, last, bytes), Some(HOST + 0x9000 + 0x1000 - bytes as u64));
            assert_eq!(tlb.host_write(false, last, bytes), Some(HOST + 0x9000 + 0x1000 - bytes as u64));
            if bytes > 1 {
                assert_eq!(tlb.host_read(false, last + 1, bytes), None, "{bytes} bytes crossing");
                assert_eq!(tlb.host_write(false, last + 1, bytes), None, "{bytes} bytes crossing");
            }
        }
        // The top of the address space wraps to page 0, which this entry is not.
        tlb.fill(false, u64::MAX, &t(0x5000), HOST, true, false);
        assert_eq!(tlb.host_read(false, u64::MAX, 1), Some(HOST + 0x5fff));
        assert_eq!(tlb.host_read(false, u64::MAX, 2), None);
    }

    #[test]
    fn code_pages_and_mmio_keep_writes_on_the_slow_path() {
        let mut tlb = Tlb::default();
        tlb.fill(false, 0x1000, &t(0x9000), HOST, true, false);
        tlb.fill(true, 0x7000, &t(0x9000), HOST, true, false);
        tlb.protect_code_page(0x9000);
        assert_eq!(tlb.host_write(false, 0x1000, 1), None);
        assert_eq!(tlb.host_write(true, 0x7000, 1), None);
        assert_eq!(tlb.host_read(true, 0x7000, 1), Some(HOST + 0x9000), "reads stay fast");
        assert_eq!(tlb.data_paddr(true, 0x7010, false), Some(0x9010));
        tlb.fill(
            false,
            0x2000,
            &Translation { page: 0xfee0_0000, writable: true, readable: true, executable: true, global: false },
            HOST,
            false,
            false,
        );
        assert_eq!(tlb.host_read(false, 0x2000, 1), None, "MMIO");
        assert_eq!(tlb.fetch_paddr(false, 0x2000), None, "MMIO");
    }
}
