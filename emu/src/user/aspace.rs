//! The user-mode process's address space, kept the way a kernel keeps it: real x86-64 4-level
//! page tables in guest RAM (so the same MMU code and the same TLB serve user mode and the
//! virtual PC, and a KVM vCPU can run on the same tables), plus a map of regions (VMAs) that
//! says what each range may become. Pages are allocated on first touch: the runner handles the
//! guest's #PF by allocating a frame if the region allows the access.

use crate::flags::W64;
use crate::mem::GuestRam;
use std::collections::BTreeMap;

pub const PAGE: u64 = 4096;
pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

const PTE_P: u64 = 1;
const PTE_RW: u64 = 2;
const PTE_US: u64 = 4;
const PTE_A: u64 = 1 << 5;
const PTE_D: u64 = 1 << 6;
const PTE_NX: u64 = 1 << 63;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// Lowest and highest user addresses (47-bit canonical lower half).
pub const USER_TOP: u64 = 0x7fff_ffff_f000;

/// A mapped range and its protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub end: u64,
    pub prot: u32,
}

/// Page tables, physical frame allocation and the region map.
pub struct AddressSpace {
    pub pml4: u64,
    next_frame: u64,
    free_frames: Vec<u64>,
    /// start -> region; regions never overlap.
    pub regions: BTreeMap<u64, Region>,
    /// Counts changes to present page-table entries (unmapped, moved, permissions changed):
    /// an engine that caches translations beyond our TLB (KVM) flushes them when it moves.
    /// Filling a non-present entry does not count: no one can have cached it.
    pub present_changes: u64,
}

/// Linear address of the process's GDT: a supervisor-only page in the kernel half, as Linux
/// keeps its per-CPU GDT, so segment loads read real descriptors.
pub const GDT_VA: u64 = 0xffff_ffff_ff57_0000;
/// Linux x86-64's GDT layout (arch/x86/include/asm/segment.h): KERNEL32_CS 0x08, KERNEL_CS 0x10,
/// KERNEL_DS 0x18, USER32_CS 0x23, USER_DS 0x2b, USER_CS 0x33; the rest null.
pub const GDT: [u64; 16] = [
    0,
    0x00cf_9b00_0000_ffff,
    0x00af_9b00_0000_ffff,
    0x00cf_9300_0000_ffff,
    0x00cf_fb00_0000_ffff,
    0x00cf_f300_0000_ffff,
    0x00af_fb00_0000_ffff,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
];

impl AddressSpace {
    /// Creates page tables in `ram` holding only the GDT page.
    pub fn new(ram: &mut GuestRam) -> Self {
        let mut a = AddressSpace {
            pml4: 0,
            next_frame: PAGE,
            free_frames: Vec::new(),
            regions: BTreeMap::new(),
            present_changes: 0,
        };
        a.pml4 = a.alloc_frame(ram).unwrap_or(PAGE);
        if let Some(frame) = a.alloc_frame(ram) {
            let bytes: Vec<u8> = GDT.iter().flat_map(|d| d.to_le_bytes()).collect();
            if let Some(dst) = ram.slice_mut(frame, bytes.len()) {
                dst.copy_from_slice(&bytes);
            }
            if let Some(pte) = a.pte_addr(ram, GDT_VA, true) {
                ram.write::<W64>(pte, frame | PTE_P | PTE_RW | PTE_NX);
            }
        }
        a
    }

    /// Maps a fresh zeroed frame at kernel-half page `va`, supervisor-only (the program cannot
    /// reach it), writable and/or executable as asked. Returns the frame. Used by engines that
    /// need a few pages of their own in the process's address space (the KVM supervisor's IDT,
    /// TSS, stacks and entry stubs).
    pub fn map_supervisor_page(&mut self, ram: &mut GuestRam, va: u64, writable: bool, exec: bool) -> Option<u64> {
        let frame = self.alloc_frame(ram)?;
        let pte = self.pte_addr(ram, va, true)?;
        let mut e = frame | PTE_P;
        if writable {
            e |= PTE_RW;
        }
        if !exec {
            e |= PTE_NX;
        }
        ram.write::<W64>(pte, e);
        Some(frame)
    }

    /// Maps a fresh zeroed frame at kernel-half page `va`, readable and executable from user
    /// mode too, outside every region (so no system call can change it), like Linux's vsyscall
    /// page. Returns the frame.
    pub fn map_user_page(&mut self, ram: &mut GuestRam, va: u64) -> Option<u64> {
        let frame = self.alloc_frame(ram)?;
        let pte = self.pte_addr(ram, va, true)?;
        ram.write::<W64>(pte, frame | PTE_P | PTE_US);
        Some(frame)
    }

    /// A zeroed physical frame, or `None` when guest RAM is exhausted.
    pub fn alloc_frame(&mut self, ram: &mut GuestRam) -> Option<u64> {
        let f = match self.free_frames.pop() {
            Some(f) => f,
            None => {
                if self.next_frame + PAGE > ram.len() {
                    return None;
                }
                self.next_frame += PAGE;
                self.next_frame - PAGE
            }
        };
        ram.slice_mut(f, PAGE as usize)?.fill(0);
        Some(f)
    }

    /// End of the physical memory handed out so far: every frame in use lies below it.
    pub fn frame_top(&self) -> u64 {
        self.next_frame
    }

    /// Physical frames in use (for statistics).
    pub fn frames_used(&self) -> u64 {
        self.next_frame / PAGE - self.free_frames.len() as u64
    }

    fn pte_addr(&mut self, ram: &mut GuestRam, va: u64, create: bool) -> Option<u64> {
        let mut table = self.pml4;
        for level in (1..4).rev() {
            let idx = (va >> (12 + 9 * level)) & 0x1ff;
            let ea = table + idx * 8;
            let e = ram.read::<W64>(ea);
            if e & PTE_P == 0 {
                if !create {
                    return None;
                }
                let f = self.alloc_frame(ram)?;
                ram.write::<W64>(ea, f | PTE_P | PTE_RW | PTE_US | PTE_A);
                table = f;
            } else {
                table = e & ADDR;
            }
        }
        Some(table + ((va >> 12) & 0x1ff) * 8)
    }

    /// The physical frame mapped at `va`, if any.
    pub fn lookup(&mut self, ram: &mut GuestRam, va: u64) -> Option<u64> {
        let pa = self.pte_addr(ram, va, false)?;
        let e = ram.read::<W64>(pa);
        (e & PTE_P != 0).then_some(e & ADDR)
    }

    fn pte_flags(prot: u32) -> u64 {
        // Accessed (and Dirty, if writable) from the start: nothing here reads them back, and
        // KVM's shadow MMU prefetches neighbouring entries only when they are already
        // accessed, so a first touch of a fresh buffer costs it one exit per 8 pages, not one.
        let mut f = PTE_P | PTE_US | PTE_A;
        if prot & PROT_WRITE != 0 {
            f |= PTE_RW | PTE_D;
        }
        if prot & PROT_EXEC == 0 {
            f |= PTE_NX;
        }
        f
    }

    /// Maps a fresh zeroed frame at page `va` with `prot`. Returns the frame.
    pub fn populate(&mut self, ram: &mut GuestRam, va: u64, prot: u32) -> Option<u64> {
        let frame = self.alloc_frame(ram)?;
        let pte = self.pte_addr(ram, va, true)?;
        ram.write::<W64>(pte, frame | Self::pte_flags(prot));
        Some(frame)
    }

    /// The region containing `va`.
    pub fn region_at(&self, va: u64) -> Option<(u64, Region)> {
        let (&start, &r) = self.regions.range(..=va).next_back()?;
        (va < r.end).then_some((start, r))
    }

    /// Records `[start, end)` with `prot`, replacing whatever was there (mmap MAP_FIXED
    /// semantics). Frames of replaced pages are returned to the caller for code invalidation.
    pub fn add_region(&mut self, ram: &mut GuestRam, start: u64, end: u64, prot: u32) -> Vec<u64> {
        let freed = self.remove_range(ram, start, end);
        self.regions.insert(start, Region { end, prot });
        freed
    }

    /// Unmaps `[start, end)`: splits regions, frees frames. Returns the freed frames.
    pub fn remove_range(&mut self, ram: &mut GuestRam, start: u64, end: u64) -> Vec<u64> {
        let overlapping: Vec<(u64, Region)> =
            self.regions.range(..end).filter(|(&s, r)| r.end > start && s < end).map(|(&s, &r)| (s, r)).collect();
        let mut freed = Vec::new();
        for (s, r) in overlapping {
            self.regions.remove(&s);
            if s < start {
                self.regions.insert(s, Region { end: start, prot: r.prot });
            }
            if r.end > end {
                self.regions.insert(end, Region { end: r.end, prot: r.prot });
            }
            let (lo, hi) = (s.max(start), r.end.min(end));
            self.for_each_present(ram, lo, hi, &mut |ram, _, pte, e| {
                ram.write::<W64>(pte, 0);
                freed.push(e & ADDR);
            });
        }
        self.free_frames.extend_from_slice(&freed);
        if !freed.is_empty() {
            self.present_changes += 1;
        }
        freed
    }

    /// Changes the protection of `[start, end)` (mprotect), updating present PTEs.
    /// Returns false if part of the range is unmapped (the call then fails with ENOMEM).
    pub fn protect(&mut self, ram: &mut GuestRam, start: u64, end: u64, prot: u32) -> bool {
        let mut va = start;
        while va < end {
            match self.region_at(va) {
                Some((_, r)) => va = r.end,
                None => return false,
            }
        }
        let pieces: Vec<(u64, Region)> =
            self.regions.range(..end).filter(|(&s, r)| r.end > start && s < end).map(|(&s, &r)| (s, r)).collect();
        for (s, r) in pieces {
            self.regions.remove(&s);
            if s < start {
                self.regions.insert(s, Region { end: start, prot: r.prot });
            }
            if r.end > end {
                self.regions.insert(end, Region { end: r.end, prot: r.prot });
            }
            self.regions.insert(s.max(start), Region { end: r.end.min(end), prot });
        }
        let flags = Self::pte_flags(prot);
        let mut changed = false;
        self.for_each_present(ram, start, end, &mut |ram, _, pte, e| {
            ram.write::<W64>(pte, (e & ADDR) | flags);
            changed = true;
        });
        self.present_changes += changed as u64;
        true
    }

    /// Moves the frame mapped at page `from` (if any) to page `to`, keeping its permissions
    /// (mremap). Returns the frame moved.
    pub fn move_page(&mut self, ram: &mut GuestRam, from: u64, to: u64) -> Option<u64> {
        let src = self.pte_addr(ram, from, false)?;
        let e = ram.read::<W64>(src);
        if e & PTE_P == 0 {
            return None;
        }
        let dst = self.pte_addr(ram, to, true)?;
        ram.write::<W64>(src, 0);
        ram.write::<W64>(dst, e);
        self.present_changes += 1;
        Some(e & ADDR)
    }

    /// Drops the frames of `[start, end)` but keeps the regions, so the pages read as zeros
    /// when next touched (madvise MADV_DONTNEED on private memory). Returns the freed frames.
    pub fn discard(&mut self, ram: &mut GuestRam, start: u64, end: u64) -> Vec<u64> {
        let mut freed = Vec::new();
        self.for_each_present(ram, start, end, &mut |ram, _, pte, e| {
            ram.write::<W64>(pte, 0);
            freed.push(e & ADDR);
        });
        self.free_frames.extend_from_slice(&freed);
        if !freed.is_empty() {
            self.present_changes += 1;
        }
        freed
    }

    /// The pages of `[start, end)` that have frames, as (virtual page, frame) pairs.
    pub fn present_pages(&mut self, ram: &mut GuestRam, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        self.for_each_present(ram, start, end, &mut |_, va, _, e| v.push((va, e & ADDR)));
        v
    }

    /// Calls `f(ram, va, pte_address, pte)` for each present page-table entry mapping a page of
    /// `[start, end)`, skipping absent tables whole, so a sparse terabyte costs nothing.
    fn for_each_present(
        &self,
        ram: &mut GuestRam,
        start: u64,
        end: u64,
        f: &mut dyn FnMut(&mut GuestRam, u64, u64, u64),
    ) {
        let end = end.min(1 << 47);
        if start < end {
            Self::walk_level(ram, self.pml4, 3, 0, start, end, f);
        }
    }

    fn walk_level(
        ram: &mut GuestRam,
        table: u64,
        level: u32,
        base: u64,
        start: u64,
        end: u64,
        f: &mut dyn FnMut(&mut GuestRam, u64, u64, u64),
    ) {
        let span = 1u64 << (12 + 9 * level);
        let first = start.saturating_sub(base) / span;
        for idx in first..512 {
            let va = base + idx * span;
            if va >= end {
                break;
            }
            let ea = table + idx * 8;
            let e = ram.read::<W64>(ea);
            if e & PTE_P == 0 {
                continue;
            }
            if level == 0 {
                f(ram, va, ea, e);
            } else {
                Self::walk_level(ram, e & ADDR, level - 1, va, start.max(va), end, f);
            }
        }
    }

    /// True if no region overlaps `[start, end)`.
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        self.regions.range(..end).next_back().is_none_or(|(_, r)| r.end <= start)
    }

    /// Finds a free range of `len` bytes below `below`, searching downwards (mmap without a hint).
    pub fn find_free(&self, len: u64, below: u64) -> Option<u64> {
        let mut top = below;
        for (&s, r) in self.regions.range(..below).rev() {
            if r.end <= top && top - r.end >= len {
                return Some(top - len);
            }
            top = top.min(s);
        }
        top.checked_sub(len).filter(|&a| a >= 0x1_0000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_split_and_merge_like_munmap_and_mprotect() {
        let mut ram = GuestRam::new(1 << 22).unwrap();
        let mut a = AddressSpace::new(&mut ram);
        a.add_region(&mut ram, 0x10000, 0x20000, PROT_READ | PROT_WRITE);
        a.populate(&mut ram, 0x11000, PROT_READ | PROT_WRITE).unwrap();
        assert!(a.lookup(&mut ram, 0x11000).is_some());
        let freed = a.remove_range(&mut ram, 0x11000, 0x12000);
        assert_eq!(freed.len(), 1);
        assert!(a.lookup(&mut ram, 0x11000).is_none());
        assert_eq!(a.region_at(0x10000).map(|(s, r)| (s, r.end)), Some((0x10000, 0x11000)));
        assert_eq!(a.region_at(0x12000).map(|(s, r)| (s, r.end)), Some((0x12000, 0x20000)));
        assert!(a.region_at(0x11800).is_none());
        assert!(a.protect(&mut ram, 0x13000, 0x14000, PROT_READ));
        assert_eq!(a.region_at(0x13000).unwrap().1.prot, PROT_READ);
        assert_eq!(a.region_at(0x14000).unwrap().1.prot, PROT_READ | PROT_WRITE);
        assert!(!a.protect(&mut ram, 0x10000, 0x12000, PROT_READ), "hole at 0x11000");
        // Only changes to present entries count: the munmap of 0x11000 did; the mprotect of
        // 0x13000 found no present page, and an munmap of nothing changes nothing.
        assert_eq!(a.present_changes, 1);
        a.remove_range(&mut ram, 0x30000, 0x40000);
        assert_eq!(a.present_changes, 1);
    }
}
