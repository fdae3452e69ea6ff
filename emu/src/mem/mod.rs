//! Guest physical RAM: one anonymous host mapping (memmap2) shared by every engine (DESIGN
//! decision 2). The KVM engine registers the same host range, so no copy ever exists.
//!
//! Accesses are bounds-checked slice operations: the TLB only hands out physical addresses it has
//! checked against `len()`, so the checks never fail on the fast path and cost a compare. No
//! `unsafe` is needed here; a raw pointer is exposed only for registration with KVM.

use crate::flags::Width;
use memmap2::{MmapMut, MmapOptions};

/// Host page size assumed by the guest-page bookkeeping.
pub const PAGE_SIZE: u64 = 4096;

/// Guest physical memory.
pub struct GuestRam {
    map: MmapMut,
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
        Ok(GuestRam { map })
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
        ram.write::<W64>(0x100, 0x1122_3344_5566_7788);
        assert_eq!(ram.read::<W8>(0x100), 0x88);
        assert_eq!(ram.read::<W16>(0x106), 0x1122);
        assert_eq!(ram.read::<W32>(0x102), 0x3344_5566);
        ram.write::<W32>(8190, 0xffff_ffff); // straddles the end: dropped
        assert_eq!(ram.read::<W16>(8190), 0);
        assert_eq!(ram.read::<W64>(u64::MAX - 3), 0);
    }
}
