//! Guest memory accesses by linear address, as instructions make them: `read`, `write`, and the
//! read-modify-write pair `translate_rmw` + `read_loc`/`write_loc` (ARCHITECTURE.md, decision 6).
//!
//! Each has an inline fast path (one TLB tag compare that also rejects an access crossing the
//! page end, then the entry's host-address addend: see `tlb.rs`) and a `*_slow` function for
//! TLB misses, page crossings, MMIO and stores to pages holding code (those skip the walk when
//! the TLB holds the page: `SoftMmu::code_write_paddr`).
//! A page-crossing write translates both pages before any byte is written; an RMW operand is
//! translated for write first, so its only possible fault is the write fault (W=1).

use super::{walk, Access};
use crate::cpu::Cpu;
use crate::exception::{Fault, Stop};
use crate::flags::{Width, W8};

/// Where an RMW operand lives once translated: one physical address, or two when it crosses a
/// page. `slow` is set when the write must go through the slow path (code page, MMIO, crossing).
#[derive(Clone, Copy, Debug)]
pub struct PhysLoc {
    pub pa: u64,
    /// Physical address of the byte that follows the page end, for a crossing access.
    pub pa2: u64,
    /// Bytes of the access that lie in the first page.
    pub first: u8,
    pub slow: bool,
}

impl Cpu {
    /// Which TLB set the current privilege uses (true: user, CPL 3).
    #[inline(always)]
    fn tlb_user(&self) -> bool {
        self.state.cpl == 3
    }

    /// Reads a `W`-sized value at linear address `la`.
    #[inline(always)]
    pub fn read<W: Width>(&mut self, la: u64) -> Result<u64, Stop> {
        if let Some(host) = self.softmmu.tlb().host_read(self.tlb_user(), la, W::BYTES) {
            return Ok(self.ram.read_host::<W>(host));
        }
        self.read_slow::<W>(la)
    }

    /// Writes a `W`-sized value at linear address `la`; nothing is written if any byte faults.
    #[inline(always)]
    pub fn write<W: Width>(&mut self, la: u64, value: u64) -> Result<(), Stop> {
        if let Some(host) = self.softmmu.tlb().host_write(self.tlb_user(), la, W::BYTES) {
            self.ram.write_host::<W>(host, value);
            return Ok(());
        }
        self.write_slow::<W>(la, value)
    }

    /// Translates a read-modify-write operand for write (the only fault it can raise).
    #[inline(always)]
    pub fn translate_rmw<W: Width>(&mut self, la: u64) -> Result<PhysLoc, Stop> {
        if let Some(host) = self.softmmu.tlb().host_write(self.tlb_user(), la, W::BYTES) {
            return Ok(PhysLoc { pa: self.ram.paddr_of_host(host), pa2: 0, first: W::BYTES as u8, slow: false });
        }
        self.translate_rmw_slow::<W>(la)
    }

    /// Reads the operand of a translated RMW access.
    #[inline(always)]
    pub fn read_loc<W: Width>(&mut self, loc: PhysLoc) -> u64 {
        if !loc.slow {
            return self.ram.read::<W>(loc.pa);
        }
        self.read_loc_slow::<W>(loc)
    }

    /// Writes the result of a translated RMW access (cannot fault).
    #[inline(always)]
    pub fn write_loc<W: Width>(&mut self, loc: PhysLoc, value: u64) {
        if !loc.slow {
            self.ram.write::<W>(loc.pa, value);
            return;
        }
        self.write_loc_slow::<W>(loc, value)
    }

    /// Translates `la` for `access` by walking the page tables, and caches the result.
    ///
    /// # Errors
    /// #GP(0) for a non-canonical address, #PF (with `fault_addr` set) when the walk fails.
    pub fn translate_slow(&mut self, la: u64, access: Access) -> Result<u64, Stop> {
        if self.state.efer & crate::state::ctrl::EFER_LMA != 0 && !walk::is_canonical(la) {
            return Err(Stop::Fault(Fault::gp0()));
        }
        let user = self.state.cpl == 3;
        let who = walk::Accessor {
            user,
            implicit: self.implicit_supervisor,
            ac: self.state.rflags_other & crate::rflags::AC != 0,
            pkru: self.pkru,
            pkrs: self.pkrs as u32,
        };
        match walk::translate_for(&self.state, &mut self.ram, la, access, who) {
            Ok(t) => {
                let in_ram = t.page < self.ram.len();
                self.softmmu.fill_tlb(user, la, &t, self.ram.host_base() as u64, in_ram);
                Ok(t.page | (la & 0xfff))
            }
            Err(f) => {
                self.fault_addr = la;
                Err(Stop::Fault(f))
            }
        }
    }

    /// Physical address for an instruction fetch at `la`.
    #[inline(always)]
    pub fn translate_fetch(&mut self, la: u64) -> Result<u64, Stop> {
        if let Some(pa) = self.softmmu.tlb().fetch_paddr(self.tlb_user(), la) {
            return Ok(pa);
        }
        self.translate_slow(la, Access::Exec)
    }

    #[inline(never)]
    fn read_slow<W: Width>(&mut self, la: u64) -> Result<u64, Stop> {
        let pa = self.translate_slow(la, Access::Read)?;
        let first = (4096 - (la & 0xfff) as usize).min(W::BYTES);
        if first == W::BYTES {
            return Ok(self.phys_read::<W>(pa));
        }
        let pa2 = self.translate_slow(la.wrapping_add(first as u64), Access::Read)?;
        Ok(self.read_split(pa, pa2, first, W::BYTES))
    }

    #[inline(never)]
    fn write_slow<W: Width>(&mut self, la: u64, value: u64) -> Result<(), Stop> {
        let loc = self.translate_rmw_slow::<W>(la)?;
        self.write_loc_slow::<W>(loc, value);
        Ok(())
    }

    #[inline(never)]
    fn translate_rmw_slow<W: Width>(&mut self, la: u64) -> Result<PhysLoc, Stop> {
        // A store into a page holding code whose translation is cached needs no walk: only
        // `phys_write`'s look at which lines hold code.
        if let Some(pa) = self.softmmu.code_write_paddr(self.tlb_user(), la, W::BYTES) {
            return Ok(PhysLoc { pa, pa2: 0, first: W::BYTES as u8, slow: true });
        }
        let pa = self.translate_slow(la, Access::Write)?;
        let first = (4096 - (la & 0xfff) as usize).min(W::BYTES);
        let pa2 = if first < W::BYTES { self.translate_slow(la.wrapping_add(first as u64), Access::Write)? } else { 0 };
        Ok(PhysLoc { pa, pa2, first: first as u8, slow: true })
    }

    #[inline(never)]
    fn read_loc_slow<W: Width>(&mut self, loc: PhysLoc) -> u64 {
        if loc.first as usize == W::BYTES {
            self.phys_read::<W>(loc.pa)
        } else {
            self.read_split(loc.pa, loc.pa2, loc.first as usize, W::BYTES)
        }
    }

    #[inline(never)]
    fn write_loc_slow<W: Width>(&mut self, loc: PhysLoc, value: u64) {
        if loc.first as usize == W::BYTES {
            self.phys_write::<W>(loc.pa, value);
        } else {
            for i in 0..W::BYTES {
                let pa =
                    if i < loc.first as usize { loc.pa + i as u64 } else { loc.pa2 + (i - loc.first as usize) as u64 };
                self.phys_write::<W8>(pa, value >> (8 * i));
            }
        }
    }

    fn read_split(&mut self, pa: u64, pa2: u64, first: usize, len: usize) -> u64 {
        (0..len).fold(0u64, |acc, i| {
            let p = if i < first { pa + i as u64 } else { pa2 + (i - first) as u64 };
            acc | self.phys_read::<W8>(p) << (8 * i)
        })
    }

    /// Reads physical memory: RAM or the MMIO bus.
    pub fn phys_read<W: Width>(&mut self, pa: u64) -> u64 {
        if pa + W::BYTES as u64 <= self.ram.len() {
            self.ram.read::<W>(pa)
        } else {
            self.bus.mmio_read(pa, W::BYTES as u8)
        }
    }

    /// Writes physical memory: RAM (noticing stores to code) or the MMIO bus.
    pub fn phys_write<W: Width>(&mut self, pa: u64, value: u64) {
        if pa + W::BYTES as u64 <= self.ram.len() {
            if self.softmmu.rom_write_protected(pa) {
                if let Some(rom) = self.rom.as_mut() {
                    rom.write(pa, &value.to_le_bytes()[..W::BYTES]);
                }
                return;
            }
            self.ram.write::<W>(pa, value);
            // Only a store touching a line that holds decoded code drops the page's blocks.
            if self.softmmu.writes_code(pa, W::BYTES) {
                self.softmmu.code_written(pa & !0xfff);
            }
        } else {
            self.bus.mmio_write(pa, W::BYTES as u8, value);
            // The local APIC is the CPU's own: a write there (ICR self-IPI, EOI, TPR) may make
            // an interrupt deliverable at the next instruction boundary.
            if self.config.system && (pa ^ self.state.msr.apic_base) & !0xfff == 0 {
                self.softmmu.request_poll();
            }
        }
    }

    /// Reads `buf.len()` bytes at linear address `la` (for the user-mode runner and loaders).
    ///
    /// # Errors
    /// The fault the guest would see.
    pub fn read_bytes(&mut self, la: u64, buf: &mut [u8]) -> Result<(), Stop> {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.read::<W8>(la.wrapping_add(i as u64))? as u8;
        }
        Ok(())
    }

    /// Writes `data` at linear address `la`, byte by byte (a fault may leave a prefix written).
    ///
    /// # Errors
    /// The fault the guest would see.
    pub fn write_bytes(&mut self, la: u64, data: &[u8]) -> Result<(), Stop> {
        for (i, b) in data.iter().enumerate() {
            self.write::<W8>(la.wrapping_add(i as u64), *b as u64)?;
        }
        Ok(())
    }
}
