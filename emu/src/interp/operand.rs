//! Operand access shared by all handlers: registers by number with the x86 merge rules, and the
//! effective address of the memory operand.

use crate::cpu::Cpu;
use crate::decoded::{Instr, NO_REG};
use crate::flags::Width;

impl Cpu {
    /// Reads register `r` at width `W`, zero-extended. For 8-bit operands, 16..=19 name
    /// AH, CH, DH, BH.
    #[inline(always)]
    pub fn get<W: Width>(&self, r: u8) -> u64 {
        if W::BITS == 8 && r >= 16 {
            (self.state.gpr[(r & 3) as usize] >> 8) & 0xff
        } else {
            self.state.gpr[(r & 15) as usize] & W::MASK
        }
    }

    /// Writes register `r` at width `W`: 32-bit writes zero the upper half, 8- and 16-bit writes
    /// keep the other bits (SDM Vol. 1, 3.4.1.1).
    #[inline(always)]
    pub fn set<W: Width>(&mut self, r: u8, v: u64) {
        match W::BITS {
            64 => self.state.gpr[(r & 15) as usize] = v,
            32 => self.state.gpr[(r & 15) as usize] = v & 0xffff_ffff,
            16 => {
                let g = &mut self.state.gpr[(r & 15) as usize];
                *g = (*g & !0xffff) | (v & 0xffff);
            }
            _ => {
                if r >= 16 {
                    let g = &mut self.state.gpr[(r & 3) as usize];
                    *g = (*g & !0xff00) | ((v & 0xff) << 8);
                } else {
                    let g = &mut self.state.gpr[(r & 15) as usize];
                    *g = (*g & !0xff) | (v & 0xff);
                }
            }
        }
    }

    /// The linear address of `e`'s memory operand.
    #[inline(always)]
    pub fn ea(&self, e: &Instr) -> u64 {
        let s = &self.state;
        let base = if e.base != NO_REG { s.gpr[(e.base & 15) as usize] } else { 0 };
        let index = if e.index != NO_REG { s.gpr[(e.index & 15) as usize] << e.scale } else { 0 };
        let seg = if (e.seg as usize) < 6 { s.segs[e.seg as usize].base } else { 0 };
        (base.wrapping_add(index).wrapping_add(e.disp) & e.amask).wrapping_add(seg) & e.lmask
    }

    /// The linear address of `offset` in segment `seg` (string instructions, stack).
    #[inline(always)]
    pub fn seg_addr(&self, seg: u8, offset: u64, lmask: u64) -> u64 {
        let base = if (seg as usize) < 6 { self.state.segs[seg as usize].base } else { 0 };
        offset.wrapping_add(base) & lmask
    }
}
