//! Guest physical RAM: one anonymous host mapping (memmap2) shared by every engine
//! (ARCHITECTURE.md, decision 2). The KVM engine registers the same host range, so no copy ever exists.
//! On Linux the mapping is advised to use transparent huge pages (fewer host TLB misses).
//!
//! Accesses are bounds-checked slice operations: the TLB only hands out addresses it has checked
//! against `len()`, so the checks never fail on the fast path and cost a compare. The TLB's fast
//! path gives host addresses (`read_host`/`write_host`); they are checked against this mapping
//! too, so even a stale one could not reach outside guest RAM. The one
//! `unsafe` is mapping a snapshot file copy-on-write ([`GuestRam::map_file_copy`]); a raw pointer
//! is exposed only for registration with KVM.

use crate::flags::Width;
use memmap2::{MmapMut, MmapOptions};

/// Host page size assumed by the guest-page bookkeeping.
pub const PAGE_SIZE: u64 = 4096;

/// Guest physical memory.
pub struct GuestRam {
    map: MmapMut,
    /// Anonymous memory (fresh RAM), not a snapshot file's copy-on-write image.
    anonymous: bool,
}

impl GuestRam {
    /// Maps `size` bytes of zeroed RAM. Pages are allocated by the host on first touch, so a
    /// large guest costs nothing until it uses its memory.
    ///
    /// # Errors
    /// The host refused the mapping (size too large for the host's overcommit policy).
    pub fn new(size: u64) -> std::io::Result<Self> {
        let len = usize::try_from(size).map_err(|_| std::io::Error::other("RAM size too large"))?;
        let map = MmapOptions::new().len(len.max(PAGE_SIZE as usize)).no_reserve_swap().map_anon()?;
        // Ask for transparent huge pages (Linux; only advice, so a refusal changes nothing but
        // speed): guest accesses land all over RAM, and with 4 KiB host pages a guest working
        // set of tens of MiB misses the host's TLB on nearly every access (guest-bench's
        // ptrchase over 64 MiB: 1.1-1.2x qemu-x86_64's time with 4 KiB pages, 0.6-0.7x with
        // huge pages). QEMU's system emulation gives its RAM the same advice.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        Ok(GuestRam { map, anonymous: true })
    }

    /// RAM backed copy-on-write by `len` bytes of `file` from `offset` (a snapshot's RAM image):
    /// nothing is read now, pages come from the file on first touch, and guest writes go to private
    /// copies, never to the file. So a restore costs the same for 1 GiB as for 4 GiB. Holes in the
    /// file read as zeros.
    ///
    /// # Errors
    /// The file is shorter than `offset + len`, or the host refused the mapping.
    pub fn map_file_copy(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<Self> {
        let size = usize::try_from(len).map_err(|_| std::io::Error::other("RAM size too large"))?;
        let end = offset.checked_add(len).ok_or_else(|| std::io::Error::other("RAM image offset overflows"))?;
        if size < PAGE_SIZE as usize || file.metadata()?.len() < end {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file shorter than the RAM image"));
        }
        // SAFETY: the mapping is MAP_PRIVATE (copy-on-write): our writes never reach the file, and
        // it lies within the file's current length (checked above). What memmap2 cannot rule out
        // is another process truncating or rewriting the file while it is mapped; a snapshot file
        // must be left alone while a machine restored from it runs (the snapshot writer replaces
        // files by renaming a new one into place, which keeps this mapping's inode intact).
        let map = unsafe { MmapOptions::new().offset(offset).len(size).no_reserve_swap().map_copy(file)? };
        Ok(GuestRam { map, anonymous: false })
    }

    /// For each 4 KiB page, whether the host has never backed it: such a page reads as zeros
    /// and can be skipped without reading it (reading would fault in the zero page). Known from
    /// `/proc/self/pagemap` (neither present nor swapped) for anonymous RAM on x86-64 Linux, whose
    /// host pages are 4 KiB. `None` where it cannot be known: RAM mapped from a snapshot (its
    /// unbacked pages come from the file), other hosts, or an unreadable pagemap.
    pub fn never_backed_pages(&self) -> Option<Vec<bool>> {
        if !self.anonymous || !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            return None;
        }
        use std::os::unix::fs::FileExt;
        let pages = self.map.len() / PAGE_SIZE as usize;
        let first = self.map.as_ptr() as u64 / PAGE_SIZE;
        let mut entries = vec![0u8; pages * 8];
        let pagemap = std::fs::File::open("/proc/self/pagemap").ok()?;
        pagemap.read_exact_at(&mut entries, first * 8).ok()?;
        // Bit 63: page present; bit 62: page swapped (Linux Documentation/admin-guide/mm/pagemap.rst).
        const BACKED: u64 = 3 << 62;
        Some(
            entries
                .chunks_exact(8)
                .map(|e| u64::from_le_bytes(e.try_into().unwrap_or([0xff; 8])) & BACKED == 0)
                .collect(),
        )
    }

    /// Size in bytes.
    #[inline(always)]
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Reads a `W`-sized little-endian value at `paddr`, zero-extended. `paddr + W::BYTES` must be
    /// within RAM (callers come through the TLB, which checked it); an out-of-range access reads 0s.
    #[inline(always)]
    pub fn read<W: Width>(&self, paddr: u64) -> u64 {
        let p = paddr as usize;
        match W::BITS {
            8 => self.map.get(p).copied().unwrap_or(0) as u64,
            16 => self.map.get(p..p.wrapping_add(2)).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as u64),
            32 => self
                .map
                .get(p..p.wrapping_add(4))
                .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as u64),
            _ => self.map.get(p..p.wrapping_add(8)).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
        }
    }

    /// Writes the low `W::BITS` of `value` at `paddr` (out-of-range writes are dropped).
    #[inline(always)]
    pub fn write<W: Width>(&mut self, paddr: u64, value: u64) {
        let p = paddr as usize;
        let bytes = value.to_le_bytes();
        if let Some(dst) = self.map.get_mut(p..p.wrapping_add(W::BYTES)) {
            dst.copy_from_slice(&bytes[..W::BYTES]);
        }
    }

    /// Reads like [`read`](Self::read), at host address `host` (a TLB hit's); an address outside
    /// this mapping reads 0s.
    #[inline(always)]
    pub fn read_host<W: Width>(&self, host: u64) -> u64 {
        self.read::<W>(self.paddr_of_host(host))
    }

    /// Writes like [`write`](Self::write), at host address `host` (a TLB hit's); an address
    /// outside this mapping is dropped.
    #[inline(always)]
    pub fn write_host<W: Width>(&mut self, host: u64, value: u64) {
        self.write::<W>(self.paddr_of_host(host), value)
    }

    /// The guest physical address of host address `host` (wrapping: meaningless outside RAM).
    #[inline(always)]
    pub fn paddr_of_host(&self, host: u64) -> u64 {
        host.wrapping_sub(self.map.as_ptr() as u64)
    }

    /// A byte range of RAM, or `None` if it does not lie wholly inside.
    pub fn slice(&self, paddr: u64, len: usize) -> Option<&[u8]> {
        let p = usize::try_from(paddr).ok()?;
        self.map.get(p..p.checked_add(len)?)
    }

    /// A mutable byte range of RAM, or `None` if it does not lie wholly inside.
    pub fn slice_mut(&mut self, paddr: u64, len: usize) -> Option<&mut [u8]> {
        let p = usize::try_from(paddr).ok()?;
        self.map.get_mut(p..p.checked_add(len)?)
    }

    /// Host address of guest physical 0, for registering this RAM with KVM.
    pub fn host_base(&self) -> *mut u8 {
        self.map.as_ptr() as *mut u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::{W16, W32, W64, W8};

    #[test]
    fn little_endian_round_trip_and_out_of_range_is_harmless() {
        let mut ram = GuestRam::new(8192).unwrap();
        if let Some(fresh) = ram.never_backed_pages() {
            assert_eq!(fresh, [true, true]); // nothing touched yet
        }
        ram.write::<W64>(0x100, 0x1122_3344_5566_7788);
        if let Some(now) = ram.never_backed_pages() {
            assert_eq!(now, [false, true]); // the write backed page 0 only
        }
        assert_eq!(ram.read::<W8>(0x100), 0x88);
        assert_eq!(ram.read::<W16>(0x106), 0x1122);
        assert_eq!(ram.read::<W32>(0x102), 0x3344_5566);
        ram.write::<W32>(8190, 0xffff_ffff); // straddles the end: dropped
        assert_eq!(ram.read::<W16>(8190), 0);
        assert_eq!(ram.read::<W64>(u64::MAX - 3), 0);
    }
}
