//! Control registers and mode changes (SDM Vol. 3, 2.5 and 9.8): MOV to CR0/CR3/CR4/CR8 and
//! EFER writes, with their TLB effects (4.10.4) and the IA-32e activation rule (EFER.LMA =
//! LME && CR0.PG). Every write that can change the mode returns to the machine loop so the next
//! block is decoded for the new mode.

use crate::cpu::Cpu;
use crate::exception::{Fault, Stop};
use crate::state::ctrl;

const CR0_RESERVED: u64 = 0xffff_ffff_1ffa_ffc0;

impl Cpu {
    /// MOV CR0.
    ///
    /// # Errors
    /// #GP(0) for reserved bits, PG without PE, NW without CD, or enabling paging in long mode
    /// without PAE.
    pub fn write_cr0(&mut self, v: u64) -> Result<(), Stop> {
        let v = v | ctrl::CR0_ET;
        if v & CR0_RESERVED != 0 || (v & ctrl::CR0_PG != 0 && v & ctrl::CR0_PE == 0) || (v >> 29 & 3 == 1) {
            return Err(Stop::Fault(Fault::gp0()));
        }
        let old = self.state.cr0;
        let pg_on = v & ctrl::CR0_PG != 0 && old & ctrl::CR0_PG == 0;
        if pg_on && self.state.efer & ctrl::EFER_LME != 0 {
            if self.state.cr4 & ctrl::CR4_PAE == 0 {
                return Err(Stop::Fault(Fault::gp0()));
            }
            self.state.efer |= ctrl::EFER_LMA;
        }
        if v & ctrl::CR0_PG == 0 && old & ctrl::CR0_PG != 0 {
            if self.state.in_64bit_mode() {
                return Err(Stop::Fault(Fault::gp0())); // cannot leave paging from 64-bit code
            }
            self.state.efer &= !ctrl::EFER_LMA;
        }
        self.state.cr0 = v;
        if (old ^ v) & (ctrl::CR0_PG | ctrl::CR0_WP | ctrl::CR0_PE) != 0 {
            self.softmmu.flush_tlb();
        }
        if v & ctrl::CR0_PE == 0 {
            self.state.cpl = 0;
        }
        Ok(())
    }

    /// MOV CR3: new page tables; non-global translations are flushed.
    pub fn write_cr3(&mut self, v: u64) -> Result<(), Stop> {
        if self.state.efer & ctrl::EFER_LMA != 0 && v >> crate::mmu::walk::MAX_PHYS_BITS != 0 && v >> 63 == 0 {
            return Err(Stop::Fault(Fault::gp0()));
        }
        // Bit 63 with PCIDE set means "do not flush"; PCIDs are not advertised, so ignore it.
        self.state.cr3 = v & !(1 << 63);
        self.softmmu.flush_tlb_non_global();
        Ok(())
    }

    /// MOV CR4.
    ///
    /// # Errors
    /// #GP(0) for reserved bits (including those of features the CPU model does not report:
    /// `CpuModel::cr4_allowed`) or clearing PAE in IA-32e mode.
    pub fn write_cr4(&mut self, v: u64) -> Result<(), Stop> {
        if v & !self.config.model.cr4_allowed() != 0
            || (self.state.efer & ctrl::EFER_LMA != 0 && v & ctrl::CR4_PAE == 0)
        {
            return Err(Stop::Fault(Fault::gp0()));
        }
        let old = self.state.cr4;
        self.state.cr4 = v;
        // SMEP (20), SMAP (21), PKE (22) and PKS (24) change what cached translations allow.
        let rights = (1 << 20) | (1 << 21) | (1 << 22) | (1 << 24);
        if (old ^ v) & (ctrl::CR4_PGE | ctrl::CR4_PAE | ctrl::CR4_PSE | rights) != 0 {
            self.softmmu.flush_tlb();
        }
        Ok(())
    }

    /// WRMSR IA32_EFER.
    ///
    /// # Errors
    /// #GP(0) for reserved bits or changing LME while paging is on.
    pub fn write_efer(&mut self, v: u64) -> Result<(), Stop> {
        let allowed = ctrl::EFER_SCE | ctrl::EFER_LME | ctrl::EFER_NXE | ctrl::EFER_LMA;
        if v & !allowed != 0 {
            return Err(Stop::Fault(Fault::gp0()));
        }
        if self.state.cr0 & ctrl::CR0_PG != 0 && (v ^ self.state.efer) & ctrl::EFER_LME != 0 {
            return Err(Stop::Fault(Fault::gp0()));
        }
        // LMA is read-only: it keeps its value.
        let old = self.state.efer;
        self.state.efer = (v & !ctrl::EFER_LMA) | (old & ctrl::EFER_LMA);
        if (old ^ self.state.efer) & ctrl::EFER_NXE != 0 {
            self.softmmu.flush_tlb();
        }
        Ok(())
    }
}
