//! Segment descriptors: reading them from the GDT/LDT, checking them, and loading segment
//! registers the way the SDM's MOV/POP Sreg, far-transfer and interrupt pseudo-code do
//! (SDM Vol. 3, 3.4.5 and 5.5–5.8; Vol. 2 MOV, JMP, CALL, RET, IRET).
//!
//! Not modelled: call gates and task gates (a far transfer through one raises #GP), conforming
//! code privilege subtleties beyond the basic DPL rule, segment limit checks on data accesses.

use crate::cpu::Cpu;
use crate::exception::{vector, Fault, Stop};
use crate::flags::{W32, W64};
use crate::state::{attr, ctrl, SegReg, Segment};

/// Descriptor type bits (`attr` bits 3:0 with S=1).
pub const TYPE_ACCESSED: u16 = 1;
pub const TYPE_WRITABLE: u16 = 2; // data: writable; code: readable
pub const TYPE_CONFORMING: u16 = 4; // code only
pub const TYPE_CODE: u16 = 8;

/// A descriptor as read from memory (the raw 8 bytes, and the high 8 for 16-byte system ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub lo: u64,
    pub hi: u64,
}

impl Descriptor {
    pub fn base(&self) -> u64 {
        ((self.lo >> 16) & 0xff_ffff) | ((self.lo >> 56) << 24)
    }
    pub fn limit(&self) -> u32 {
        let raw = ((self.lo & 0xffff) | ((self.lo >> 32) & 0xf_0000)) as u32;
        if self.attr() & attr::G != 0 {
            (raw << 12) | 0xfff
        } else {
            raw
        }
    }
    /// Access byte and flags nibble packed as `Segment::attr` keeps them.
    pub fn attr(&self) -> u16 {
        (((self.lo >> 40) & 0xff) | ((self.lo >> 52) & 0xf) << 12) as u16
    }
    pub fn present(&self) -> bool {
        self.attr() & attr::P != 0
    }
    pub fn dpl(&self) -> u8 {
        ((self.attr() >> attr::DPL_SHIFT) & 3) as u8
    }
    /// S=1: code or data (not a system descriptor).
    pub fn is_code_or_data(&self) -> bool {
        self.attr() & attr::S != 0
    }
    pub fn is_code(&self) -> bool {
        self.is_code_or_data() && self.attr() & TYPE_CODE != 0
    }
    pub fn system_type(&self) -> u16 {
        self.attr() & attr::TYPE_MASK
    }
    /// The segment register contents this descriptor loads with `selector`.
    pub fn to_segment(&self, selector: u16) -> Segment {
        Segment { base: self.base(), limit: self.limit(), selector, attr: self.attr() }
    }
}

fn gp(sel: u16) -> Stop {
    Stop::Fault(Fault::with_code(vector::GP, (sel & !3) as u32))
}

impl Cpu {
    /// Reads at linear address `la` as a supervisor (implicit accesses to descriptor tables, the
    /// TSS and interrupt stacks are supervisor accesses whatever the CPL).
    pub fn sys_read<W: crate::flags::Width>(&mut self, la: u64) -> Result<u64, Stop> {
        let cpl = self.state.cpl;
        self.state.cpl = 0;
        self.implicit_supervisor = true;
        let r = self.read::<W>(la);
        self.implicit_supervisor = false;
        self.state.cpl = cpl;
        r
    }

    /// Writes at linear address `la` as a supervisor (an implicit access, as `sys_read`).
    pub fn sys_write<W: crate::flags::Width>(&mut self, la: u64, v: u64) -> Result<(), Stop> {
        let cpl = self.state.cpl;
        self.state.cpl = 0;
        self.implicit_supervisor = true;
        let r = self.write::<W>(la, v);
        self.implicit_supervisor = false;
        self.state.cpl = cpl;
        r
    }

    /// Reads the descriptor `sel` names from the GDT or LDT. `wide` reads 16 bytes (long-mode
    /// system descriptors).
    ///
    /// # Errors
    /// #GP(selector) when the selector is beyond the table limit; any fault reading it.
    pub fn read_descriptor(&mut self, sel: u16, wide: bool) -> Result<Descriptor, Stop> {
        let (base, limit) = if sel & 4 != 0 {
            (self.state.ldtr.base, self.state.ldtr.limit as u64)
        } else {
            (self.state.gdtr.base, self.state.gdtr.limit as u64)
        };
        let off = (sel & !7) as u64;
        let end = off + if wide { 15 } else { 7 };
        if end > limit {
            return Err(gp(sel));
        }
        let lo = self.sys_read::<W64>(base.wrapping_add(off))?;
        let hi = if wide { self.sys_read::<W64>(base.wrapping_add(off + 8))? } else { 0 };
        Ok(Descriptor { lo, hi })
    }

    /// Sets the accessed bit of a code/data descriptor in memory, as the CPU does on load.
    fn mark_accessed(&mut self, sel: u16, d: &Descriptor) -> Result<(), Stop> {
        if d.attr() & TYPE_ACCESSED != 0 {
            return Ok(());
        }
        let base = if sel & 4 != 0 { self.state.ldtr.base } else { self.state.gdtr.base };
        let la = base.wrapping_add((sel & !7) as u64 + 4);
        let v = self.sys_read::<W32>(la)?;
        self.sys_write::<W32>(la, v | 1 << 8)
    }

    /// True in protected mode (CR0.PE set, not virtual-8086).
    pub fn protected_mode(&self) -> bool {
        self.state.cr0 & ctrl::CR0_PE != 0 && self.state.rflags_other & crate::state::rflags::VM == 0
    }

    /// MOV/POP to DS, ES, FS, GS or SS (SDM Vol. 2, MOV: "IF SS is loaded" / "IF DS, ES, FS or
    /// GS is loaded").
    ///
    /// # Errors
    /// #GP(sel), #SS(sel), #NP(sel) as the SDM specifies.
    pub fn load_sreg(&mut self, sreg: SegReg, sel: u16) -> Result<(), Stop> {
        if !self.protected_mode() {
            let s = &mut self.state.segs[sreg as usize];
            s.selector = sel;
            s.base = (sel as u64) << 4;
            return Ok(());
        }
        let cpl = self.state.cpl;
        let rpl = (sel & 3) as u8;
        if sel & !3 == 0 {
            if sreg == SegReg::Ss && !(self.state.in_64bit_mode() && cpl < 3 && rpl == cpl) {
                return Err(gp(0));
            }
            // A null selector: the register becomes unusable (P=0) and its base 0, as Intel CPUs
            // and AMD CPUs with NullSelectorClearsBase do (older AMD parts keep the base).
            let s = &mut self.state.segs[sreg as usize];
            s.selector = sel;
            s.base = 0;
            s.attr = if sreg == SegReg::Ss { attr::P | attr::S | 0x3 | ((cpl as u16) << attr::DPL_SHIFT) } else { 0 };
            return Ok(());
        }
        let d = self.read_descriptor(sel, false)?;
        let a = d.attr();
        if sreg == SegReg::Ss {
            let writable_data = d.is_code_or_data() && a & TYPE_CODE == 0 && a & TYPE_WRITABLE != 0;
            if rpl != cpl || d.dpl() != cpl || !writable_data {
                return Err(gp(sel));
            }
            if !d.present() {
                return Err(Stop::Fault(Fault::with_code(vector::SS, (sel & !3) as u32)));
            }
        } else {
            let readable = d.is_code_or_data() && (a & TYPE_CODE == 0 || a & TYPE_WRITABLE != 0);
            let conforming_code = a & TYPE_CODE != 0 && a & TYPE_CONFORMING != 0;
            if !readable || (!conforming_code && d.dpl() < cpl.max(rpl)) {
                return Err(gp(sel));
            }
            if !d.present() {
                return Err(Stop::Fault(Fault::with_code(vector::NP, (sel & !3) as u32)));
            }
        }
        self.mark_accessed(sel, &d)?;
        let mut seg = d.to_segment(sel);
        seg.attr |= TYPE_ACCESSED;
        if self.state.in_64bit_mode() && matches!(sreg, SegReg::Fs | SegReg::Gs) {
            seg.base &= 0xffff_ffff;
        }
        self.state.segs[sreg as usize] = seg;
        Ok(())
    }

    /// Checks and loads CS for a far JMP/CALL/RET/IRET to privilege `new_cpl` (the target's RPL
    /// for RET/IRET, CPL for JMP/CALL). Returns the new CS contents without committing them.
    ///
    /// # Errors
    /// #GP(sel) for a null, non-code or privilege-violating selector, #NP(sel) if not present.
    pub fn check_code_segment(&mut self, sel: u16, new_cpl: u8, via_return: bool) -> Result<(Segment, u8), Stop> {
        if !self.protected_mode() {
            let mut cs = self.state.segs[SegReg::Cs as usize];
            cs.selector = sel;
            cs.base = (sel as u64) << 4;
            return Ok((cs, 0));
        }
        if sel & !3 == 0 {
            return Err(gp(0));
        }
        let d = self.read_descriptor(sel, false)?;
        if !d.is_code() {
            return Err(gp(sel));
        }
        let rpl = (sel & 3) as u8;
        let conforming = d.attr() & TYPE_CONFORMING != 0;
        let cpl = self.state.cpl;
        let target_cpl = if via_return {
            // RET/IRET: RPL is the privilege returned to; it may not be more privileged.
            if rpl < cpl || (conforming && d.dpl() > rpl) || (!conforming && d.dpl() != rpl) {
                return Err(gp(sel));
            }
            rpl
        } else {
            if (conforming && d.dpl() > cpl) || (!conforming && (rpl > cpl || d.dpl() != cpl)) {
                return Err(gp(sel));
            }
            cpl
        };
        let _ = new_cpl;
        if !d.present() {
            return Err(Stop::Fault(Fault::with_code(vector::NP, (sel & !3) as u32)));
        }
        if d.attr() & attr::L != 0 && d.attr() & attr::DB != 0 {
            return Err(gp(sel)); // L and D both set is reserved
        }
        self.mark_accessed(sel, &d)?;
        let mut seg = d.to_segment((sel & !3) | target_cpl as u16);
        seg.attr |= TYPE_ACCESSED;
        if self.state.efer & ctrl::EFER_LMA == 0 {
            seg.attr &= !attr::L; // L is ignored outside IA-32e mode
        }
        Ok((seg, target_cpl))
    }

    /// Commits a new CS (and CPL). The caller ends the block: the code size may have changed.
    pub fn set_cs(&mut self, seg: Segment, cpl: u8) {
        self.state.segs[SegReg::Cs as usize] = seg;
        if self.protected_mode() {
            self.state.cpl = cpl;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_fields_decode_as_in_sdm_figure_3_8() {
        // Linux's __KERNEL_CS in 64-bit mode: 0x00af9b000000ffff (GDT_ENTRY_INIT(0xa09b, 0, 0xfffff)).
        let d = Descriptor { lo: 0x00af_9b00_0000_ffff, hi: 0 };
        assert_eq!(d.base(), 0);
        assert_eq!(d.limit(), 0xffff_ffff);
        assert!(d.is_code() && d.present());
        assert_eq!(d.dpl(), 0);
        assert_ne!(d.attr() & attr::L, 0);
        assert_eq!(d.attr() & attr::DB, 0);
        // A 32-bit flat data segment with base 0x12345678: 0x12cf92345678ffff.
        let d = Descriptor { lo: 0x12cf_9234_5678_ffff, hi: 0 };
        assert_eq!(d.base(), 0x1234_5678);
        assert!(!d.is_code() && d.attr() & TYPE_WRITABLE != 0);
        assert_ne!(d.attr() & attr::DB, 0);
    }
}
