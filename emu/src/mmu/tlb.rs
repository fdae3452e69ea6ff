//! The software TLB (DESIGN decision 7): linear page -> physical page, with separate tags for
//! read, write and execute so each fast path is one compare. Two direct-mapped sets, one per
//! privilege (supervisor, user), so a system call does not flush anything.
//!
//! A tag holds the page-aligned linear address when that access is allowed without a walk, and
//! `INVALID` otherwise. Write tags are left invalid for pages that hold decoded code (so a store
//! there takes the slow path and invalidates the blocks), for pages whose dirty bit is not yet set,
//! and for anything outside RAM (MMIO).

use super::walk::Translation;

/// Entries per privilege set.
pub const TLB_ENTRIES: usize = 1024;
/// A tag that matches no page-aligned address.
pub const INVALID: u64 = 1;

#[derive(Clone, Copy, Debug)]
pub struct TlbEntry {
    pub read_tag: u64,
    pub write_tag: u64,
    pub exec_tag: u64,
    /// Physical address of the page.
    pub paddr: u64,
    pub global: bool,
}

const EMPTY: TlbEntry = TlbEntry { read_tag: INVALID, write_tag: INVALID, exec_tag: INVALID, paddr: 0, global: false };

pub struct Tlb {
    /// `sets[0]` supervisor, `sets[1]` user (CPL 3).
    pub sets: Box<[[TlbEntry; TLB_ENTRIES]; 2]>,
    /// Bumped by every flush, so caches keyed by linear address know to forget.
    pub generation: u64,
}

impl Default for Tlb {
    fn default() -> Self {
        Tlb { sets: Box::new([[EMPTY; TLB_ENTRIES]; 2]), generation: 0 }
    }
}

#[inline(always)]
pub fn index(la: u64) -> usize {
    (la >> 12) as usize & (TLB_ENTRIES - 1)
}

impl Tlb {
    /// Caches a translation. `in_ram` is false for MMIO; `code_page` keeps writes on the slow path.
    pub fn fill(&mut self, user: bool, la: u64, t: &Translation, in_ram: bool, code_page: bool) {
        let tag = la & !0xfff;
        let e = &mut self.sets[user as usize][index(la)];
        *e = TlbEntry {
            read_tag: if in_ram { tag } else { INVALID },
            write_tag: if in_ram && t.writable && !code_page { tag } else { INVALID },
            exec_tag: if in_ram && t.executable { tag } else { INVALID },
            paddr: t.page,
            global: t.global,
        };
    }

    /// Everything (CR4.PGE toggled, CR0.PG changed).
    pub fn flush_all(&mut self) {
        self.generation += 1;
        for set in self.sets.iter_mut() {
            set.fill(EMPTY);
        }
    }

    /// Everything but global pages (a CR3 write, SDM Vol. 3, 4.10.4.1).
    pub fn flush_non_global(&mut self) {
        self.generation += 1;
        for set in self.sets.iter_mut() {
            for e in set.iter_mut().filter(|e| !e.global) {
                *e = EMPTY;
            }
        }
    }

    /// One page (INVLPG), in both privilege sets.
    pub fn flush_page(&mut self, la: u64) {
        self.generation += 1;
        for set in self.sets.iter_mut() {
            let e = &mut set[index(la)];
            if e.read_tag == la & !0xfff || e.exec_tag == la & !0xfff || e.write_tag == la & !0xfff {
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
