//! The software TLB (docs/ARCHITECTURE.md, decision 7): linear page -> host and physical page, with separate
//! tags for read, write and execute so each fast path is one compare. Two sets, one per
//! privilege (supervisor, user), so a system call does not flush anything; each set is two-way
//! (see "Two ways" below).
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
//!
//! Nothing scans the table on a hot path, so it can be large (`TLB_ENTRIES`, 32 Ki pages per
//! set: 128 MiB of guest memory reached without a walk). Flushes bump the generation (O(1));
//! INVLPG clears one slot per set; and marking a page as code ([`Tlb::protect_code_page`])
//! finds the entries that may write it through a list per physical page of the slots filled
//! with a write tag for it (intrusive, doubly linked through the slots, so a fill moves a slot
//! from one list to another in O(1)), not by scanning every slot. The only whole-table pass
//! left is the clear when the 12-bit generation wraps (every 4,094 flushes).
//!
//! A slot whose write tag was withheld only because its page holds code remembers it
//! ([`Tlb::code_write_paddr`]): a store there then needs no walk, only the check of which bytes
//! of the page hold code (`SoftMmu`).
//!
//! Two ways: every index has a second entry, `layout::WAY1` bytes after the first (slots
//! `2 * TLB_ENTRIES..`), checked when the first misses. A fill puts the new translation in way
//! 0 and moves the entry it displaces (if live and for another page) to way 1, so two hot pages
//! that share an index (busybox gzip's stack top and a data page 256 MiB below it: 925 thousand
//! walks per MiB compressed when direct-mapped) both stay resident. A way-1 entry is an entry
//! like any other: it is in its physical page's slot list, INVLPG clears both ways, flushes
//! make both stale. The JIT probes way 1 inline after way 0 misses (`tiers/src/jit/x64.rs`,
//! `emit_probe`). A miss in both ways walks; [`Tlb::walks`] counts them (`--stats`).

use super::walk::Translation;

/// Entries per privilege set (a power of two; the JIT's inline probe masks with it).
pub const TLB_ENTRIES: usize = 32768;
/// Slots in all: two ways of two privilege sets.
const SLOTS: usize = 4 * TLB_ENTRIES;
/// From a slot of way 0 to the slot of way 1 at the same index and privilege.
const WAY1_SLOT: usize = 2 * TLB_ENTRIES;
/// A tag that matches nothing: its low 12 bits are never a generation.
pub const INVALID: u64 = u64::MAX;
/// Generations run 1..=MAX_GEN, then the table is cleared and they start again.
const MAX_GEN: u64 = 0xffe;
/// End of a slot list, or no list for a page (`Link`, `Tlb::heads`).
const NIL: u32 = u32::MAX;
/// `Link::prev` of a slot in no list.
const UNLINKED: u32 = u32::MAX - 1;
/// Low bit of a `paddrs` word: the walk allowed writes and the slot left its write tag invalid
/// only because the page holds code (or BIOS-shadowed ROM), so a store needs no walk.
const CODE_WRITABLE: u64 = 1;

/// A slot's place in the list of the slots that may write its physical page: neighbours by
/// slot number (`set * TLB_ENTRIES + index`), `prev == NIL` for the list's head.
#[derive(Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
}

const UNLINKED_SLOT: Link = Link { prev: UNLINKED, next: NIL };

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
    /// From an entry of way 0 to the entry of way 1 at the same index and privilege.
    pub const WAY1: usize = 2 * super::TLB_ENTRIES * ENTRY_SIZE;

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
    /// Way 0 (the supervisor set, then the user (CPL 3) set), then way 1 likewise, by slot
    /// (`slot_of`, `+ WAY1_SLOT`): on the heap, as one slice (an array this large would be
    /// built on the stack first).
    sets: Box<[TlbEntry; SLOTS]>,
    /// Guest physical page of each slot of `sets`, with `CODE_WRITABLE`.
    paddrs: Box<[u64; SLOTS]>,
    /// Per slot (`set * TLB_ENTRIES + index`): its place in the list of its physical page, for
    /// slots filled with a write tag (see the module doc).
    links: Box<[Link]>,
    /// First slot of each physical RAM page's list, by page number (`NIL`: none); grown on use.
    heads: Vec<u32>,
    /// Bumped by every flush, so caches keyed by linear address know to forget.
    pub(super) generation: u64,
    /// The generation valid tags carry in their low 12 bits.
    gen: u64,
    /// Fills, i.e. successful page walks (misses in both ways), for `--stats`.
    walks: u64,
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
            sets: vec![EMPTY; SLOTS].into_boxed_slice().try_into().expect("SLOTS entries"),
            paddrs: vec![0; SLOTS].into_boxed_slice().try_into().expect("SLOTS entries"),
            links: vec![UNLINKED_SLOT; SLOTS].into_boxed_slice(),
            heads: Vec::new(),
            generation: 0,
            gen: 1,
            walks: 0,
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

    /// The slot of set `user` at `la`'s index whose tag `which` (of the entry) equals `tag`:
    /// way 0, else way 1.
    #[inline(always)]
    fn find(&self, user: bool, la: u64, tag: u64, which: impl Fn(&TlbEntry) -> u64) -> Option<usize> {
        let s0 = slot_of(user, index(la));
        if which(&self.sets[s0]) == tag {
            return Some(s0);
        }
        // The mask changes nothing; it lets the compiler drop the bounds check.
        let s1 = (s0 + WAY1_SLOT) & (SLOTS - 1);
        (which(&self.sets[s1]) == tag).then_some(s1)
    }

    /// Host address for a `bytes`-long read at `la` that stays in one page, on a hit.
    #[inline(always)]
    pub fn host_read(&self, user: bool, la: u64, bytes: usize) -> Option<u64> {
        let s = self.find(user, la, self.access_tag(la, bytes), |e| e.read_tag)?;
        Some(la.wrapping_add(self.sets[s].addend))
    }

    /// Host address for a `bytes`-long write at `la` that stays in one page, on a hit (never
    /// for a page holding code, MMIO, or a page whose dirty bit is clear).
    #[inline(always)]
    pub fn host_write(&self, user: bool, la: u64, bytes: usize) -> Option<u64> {
        let s = self.find(user, la, self.access_tag(la, bytes), |e| e.write_tag)?;
        Some(la.wrapping_add(self.sets[s].addend))
    }

    /// Physical address of `la` for an instruction fetch, on a hit.
    #[inline(always)]
    pub fn fetch_paddr(&self, user: bool, la: u64) -> Option<u64> {
        let s = self.find(user, la, self.access_tag(la, 1), |e| e.exec_tag)?;
        Some(self.page_of(s) | (la & 0xfff))
    }

    /// Where the entry that lets code at privilege `user` fetch from `la`'s page without a walk
    /// lies (byte offset from the start of the entries, the pointer at `SETS_OFFSET`), and its
    /// addend, on a hit. The JIT's indirect-branch table keeps both to check, in generated
    /// code, that a target's page still maps to the same frame (`tiers/src/jit/mod.rs`).
    pub fn exec_entry(&self, user: bool, la: u64) -> Option<(usize, u64)> {
        let s = self.find(user, la, self.access_tag(la, 1), |e| e.exec_tag)?;
        Some((s * layout::ENTRY_SIZE, self.sets[s].addend))
    }

    /// The physical page of `slot`.
    #[inline(always)]
    fn page_of(&self, slot: usize) -> u64 {
        self.paddrs[slot] & !0xfff
    }

    /// Physical address for a `bytes`-long write at `la` within one page of RAM that the walk
    /// allowed and that only the page's code kept off the fast path, on a hit: such a store needs
    /// no walk, only the slow path's check for code (and for ROM).
    #[inline(always)]
    pub fn code_write_paddr(&self, user: bool, la: u64, bytes: usize) -> Option<u64> {
        let s = self.find(user, la, self.access_tag(la, bytes), |e| e.read_tag)?;
        let p = self.paddrs[s];
        (p & CODE_WRITABLE != 0).then_some((p & !0xfff) | (la & 0xfff))
    }

    /// Physical address of `la` for a read or (`write`) a write, on a hit (the string
    /// instructions' page-at-a-time path).
    #[inline(always)]
    pub fn data_paddr(&self, user: bool, la: u64, write: bool) -> Option<u64> {
        let tag = self.access_tag(la, 1);
        let s =
            if write { self.find(user, la, tag, |e| e.write_tag) } else { self.find(user, la, tag, |e| e.read_tag) }?;
        Some(self.page_of(s) | (la & 0xfff))
    }

    /// Page walks that filled an entry since the TLB was made (misses in both ways).
    pub fn walks(&self) -> u64 {
        self.walks
    }

    /// Starts a new generation; every entry of the old ones stops matching.
    fn new_generation(&mut self) {
        self.generation += 1;
        self.gen += 1;
        if self.gen > MAX_GEN {
            self.sets.fill(EMPTY);
            self.gen = 1;
        }
    }

    /// Caches a translation. `ram_host` is the host address of guest physical 0; `in_ram` is
    /// false for MMIO; `code_page` keeps writes on the slow path.
    pub fn fill(&mut self, user: bool, la: u64, t: &Translation, ram_host: u64, in_ram: bool, code_page: bool) {
        self.walks += 1;
        let tag = self.access_tag(la, 1);
        let i = index(la);
        self.make_room(slot_of(user, i), tag);
        let writable = in_ram && t.writable;
        self.sets[slot_of(user, i)] = TlbEntry {
            read_tag: if in_ram && t.readable { tag } else { INVALID },
            write_tag: if writable && !code_page { tag } else { INVALID },
            exec_tag: if in_ram && t.executable { tag } else { INVALID },
            addend: if in_ram { ram_host.wrapping_add(t.page).wrapping_sub(la & !0xfff) } else { 0 },
        };
        let slot = slot_of(user, i) as u32;
        self.unlink(slot);
        self.paddrs[slot as usize] = t.page | if writable && code_page { CODE_WRITABLE } else { 0 };
        if writable && !code_page {
            self.link(slot, t.page);
        }
    }

    /// Before way-0 slot `s0` is filled for `tag` (page and generation): if it holds a live
    /// entry of another page, that entry moves to way 1 (its slot list membership with it), so
    /// two pages sharing the index stay resident. Whatever way 1 held is dropped; a way-1 copy
    /// of `tag`'s own page goes too (way 0 is about to hold the fresh one).
    fn make_room(&mut self, s0: usize, tag: u64) {
        let s1 = s0 + WAY1_SLOT;
        let e = self.sets[s0];
        let held = [e.read_tag, e.write_tag, e.exec_tag].into_iter().find(|&t| t != INVALID);
        let Some(held) = held.filter(|&t| t & 0xfff == self.gen && t != tag) else {
            if [self.sets[s1].read_tag, self.sets[s1].write_tag, self.sets[s1].exec_tag].contains(&tag) {
                self.sets[s1] = EMPTY;
            }
            return;
        };
        debug_assert_ne!(held, tag);
        self.unlink(s1 as u32);
        let linked = self.links[s0].prev != UNLINKED;
        if linked {
            self.unlink(s0 as u32);
        }
        self.sets[s1] = e;
        self.paddrs[s1] = self.paddrs[s0];
        if linked {
            self.link(s1 as u32, self.paddrs[s1] & !0xfff);
        }
    }

    /// Puts `slot` at the head of physical page `page`'s list.
    fn link(&mut self, slot: u32, page: u64) {
        let n = (page >> 12) as usize;
        if n >= self.heads.len() {
            self.heads.resize(n + 1, NIL);
        }
        let old = self.heads[n];
        if old != NIL {
            self.links[old as usize].prev = slot;
        }
        self.links[slot as usize] = Link { prev: NIL, next: old };
        self.heads[n] = slot;
    }

    /// Takes `slot` out of its page's list, if it is in one.
    fn unlink(&mut self, slot: u32) {
        let Link { prev, next } = self.links[slot as usize];
        if prev == UNLINKED {
            return;
        }
        if next != NIL {
            self.links[next as usize].prev = prev;
        }
        if prev == NIL {
            // The head: its page is the one the slot holds (a slot is linked only while it
            // holds the page it was linked for).
            let page = self.paddrs[slot as usize];
            self.heads[(page >> 12) as usize] = next;
        } else {
            self.links[prev as usize].next = next;
        }
        self.links[slot as usize] = UNLINKED_SLOT;
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
        for slot in [false, true].map(|user| slot_of(user, index(la))).into_iter().flat_map(|s| [s, s + WAY1_SLOT]) {
            let e = &mut self.sets[slot];
            let same = |t: u64| t != INVALID && t & !0xfff == page;
            if same(e.read_tag) || same(e.exec_tag) || same(e.write_tag) {
                *e = EMPTY;
            }
        }
    }

    /// Takes the fast write path away from every entry that maps physical page `paddr` (the page
    /// now holds decoded code): the slots of the page's list (see the module doc), which keep
    /// the walk's permission as `CODE_WRITABLE`. Entries of older generations in the list are
    /// stale already; clearing their write tag changes nothing.
    pub fn protect_code_page(&mut self, paddr: u64) {
        let n = (paddr >> 12) as usize;
        let Some(&first) = self.heads.get(n) else { return };
        self.heads[n] = NIL;
        let mut slot = first;
        while slot != NIL {
            self.sets[slot as usize].write_tag = INVALID;
            self.paddrs[slot as usize] |= CODE_WRITABLE;
            let next = self.links[slot as usize].next;
            self.links[slot as usize] = UNLINKED_SLOT;
            slot = next;
        }
    }
}

/// The slot number of way-0 entry `i` of set `user` (`Tlb::sets`, `paddrs`, `links`); its
/// way-1 entry is `WAY1_SLOT` further.
#[inline(always)]
fn slot_of(user: bool, i: usize) -> usize {
    // The mask changes nothing for `i < TLB_ENTRIES`; it lets the compiler drop the bounds check.
    (usize::from(user) * TLB_ENTRIES + i) & (2 * TLB_ENTRIES - 1)
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
        assert_eq!(tlb.sets[slot_of(true, index(0x6000_0000))].read_tag, INVALID);
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

    #[test]
    fn protecting_a_code_page_reaches_every_slot_that_maps_it_and_no_other() {
        let mut tlb = Tlb::default();
        // Three linear pages (both sets) on physical 0x9000, one on 0xa000.
        tlb.fill(false, 0x1000, &t(0x9000), HOST, true, false);
        tlb.fill(true, 0x7000, &t(0x9000), HOST, true, false);
        tlb.fill(true, 0x4000_3000, &t(0x9000), HOST, true, false);
        tlb.fill(false, 0x2000, &t(0xa000), HOST, true, false);
        // A slot refilled for another page leaves 0x9000's list (0x1000's slot now maps 0xb000).
        tlb.fill(false, 0x1000 + (TLB_ENTRIES as u64) * 4096, &t(0xb000), HOST, true, false);
        tlb.protect_code_page(0x9000);
        assert_eq!(tlb.host_write(true, 0x7000, 8), None);
        assert_eq!(tlb.host_write(true, 0x4000_3000, 8), None);
        assert_eq!(tlb.host_write(false, 0x2000, 8), Some(HOST + 0xa000), "another page");
        let b = 0x1000 + (TLB_ENTRIES as u64) * 4096;
        assert_eq!(tlb.host_write(false, b, 8), Some(HOST + 0xb000), "the slot moved to 0xb000");
        // Stores there need no walk: the slot remembers the walk allowed them.
        assert_eq!(tlb.code_write_paddr(true, 0x7010, 8), Some(0x9010));
        assert_eq!(tlb.code_write_paddr(true, 0x7ffc, 8), None, "crossing");
        assert_eq!(tlb.code_write_paddr(false, 0x2000, 8), None, "not a code page");
        tlb.flush_page(0x7000);
        assert_eq!(tlb.code_write_paddr(true, 0x7010, 8), None, "flushed");
        // A slot filled again for 0x9000 while it is code is not writable, and a second
        // protection (after the page was written and decoded again) finds the new fills.
        tlb.fill(true, 0x7000, &t(0x9000), HOST, true, true);
        assert_eq!(tlb.host_write(true, 0x7000, 8), None);
        tlb.fill(false, 0x5000, &t(0x9000), HOST, true, false);
        tlb.protect_code_page(0x9000);
        assert_eq!(tlb.host_write(false, 0x5000, 8), None);
        // A read-only slot never gets the no-walk store path.
        tlb.fill(false, 0x6000, &Translation { writable: false, ..t(0x9000) }, HOST, true, true);
        assert_eq!(tlb.code_write_paddr(false, 0x6000, 1), None);
    }

    /// Two pages that share an index (busybox gzip's stack top and a data page 256 MiB below
    /// it) both stay resident, the older in way 1, and every lookup finds it there; a third
    /// page at the index displaces the older of the two.
    #[test]
    fn pages_sharing_an_index_stay_resident_in_two_ways() {
        let mut tlb = Tlb::default();
        let (stack, data, third) = (0x7fff_ffff_e000u64, 0x7fff_efff_e000u64, 0x7fff_dfff_e000u64);
        assert!(index(stack) == index(data) && index(data) == index(third));
        let x = Translation { executable: true, ..t(0x9000) };
        tlb.fill(true, stack, &x, HOST, true, false);
        tlb.fill(true, data, &t(0xa000), HOST, true, false);
        assert_eq!(tlb.walks(), 2);
        for _ in 0..3 {
            assert_eq!(tlb.host_read(true, stack + 8, 8), Some(HOST + 0x9008), "way 1");
            assert_eq!(tlb.host_write(true, stack + 8, 8), Some(HOST + 0x9008), "way 1");
            assert_eq!(tlb.fetch_paddr(true, stack + 1), Some(0x9001), "way 1");
            assert_eq!(tlb.data_paddr(true, stack + 2, true), Some(0x9002), "way 1");
            assert_eq!(tlb.host_read(true, data + 16, 4), Some(HOST + 0xa010), "way 0");
        }
        // The way-1 entry moved with its place in its page's slot list.
        tlb.protect_code_page(0x9000);
        assert_eq!(tlb.host_write(true, stack, 8), None);
        assert_eq!(tlb.code_write_paddr(true, stack + 8, 8), Some(0x9008));
        assert_eq!(tlb.host_write(true, data, 8), Some(HOST + 0xa000));
        // Refilling the way-0 page keeps the way-1 page; a third page pushes out the older.
        tlb.fill(true, data, &t(0xa000), HOST, true, false);
        assert_eq!(tlb.host_read(true, stack, 8), Some(HOST + 0x9000));
        tlb.fill(true, third, &t(0xb000), HOST, true, false);
        assert_eq!(tlb.host_read(true, third, 8), Some(HOST + 0xb000));
        assert_eq!(tlb.host_read(true, data, 8), Some(HOST + 0xa000), "moved to way 1");
        assert_eq!(tlb.host_read(true, stack, 8), None, "displaced");
        // INVLPG reaches way 1; the other set is untouched by all of it.
        tlb.flush_page(data);
        assert_eq!(tlb.host_read(true, data, 8), None);
        assert_eq!(tlb.host_read(true, third, 8), Some(HOST + 0xb000));
        assert_eq!(tlb.host_read(false, third, 8), None);
        // A page refilled while its old copy sits in way 1 leaves one copy, the fresh one.
        tlb.fill(true, data, &t(0xa000), HOST, true, false);
        tlb.fill(true, third, &t(0xb000), HOST, true, false);
        tlb.flush_page(third);
        assert_eq!(tlb.host_write(true, data, 8), Some(HOST + 0xa000), "way 1");
        tlb.fill(true, data, &Translation { writable: false, ..t(0xa000) }, HOST, true, false);
        assert_eq!(tlb.host_write(true, data, 8), None, "no stale writable copy");
        assert_eq!(tlb.host_read(true, data, 8), Some(HOST + 0xa000));
    }

    #[test]
    fn slot_lists_stay_consistent_through_many_refills() {
        // Fill pseudo-random linear pages onto a few physical pages, then protect each page
        // and check against a brute-force scan of the table.
        let mut tlb = Tlb::default();
        let mut x = 0x1234_5678u64;
        for _ in 0..200_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let la = (x >> 20) & 0x3f_ffff_f000;
            let pa = ((x >> 8) & 7) << 12;
            tlb.fill(x & 1 != 0, la, &t(pa), HOST, true, false);
        }
        for pa in (0..8u64).map(|p| p << 12) {
            tlb.protect_code_page(pa);
            for slot in 0..SLOTS {
                if tlb.paddrs[slot] & !0xfff == pa {
                    assert_eq!(tlb.sets[slot].write_tag, INVALID, "slot {slot}");
                }
            }
        }
    }
}
