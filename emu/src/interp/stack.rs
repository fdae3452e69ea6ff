//! Stack: PUSH, POP (SDM Vol. 2). In 64-bit mode the stack is RSP-based with no segment base;
//! the operand size is 64 (or 16 with 66h). Outside 64-bit mode the SS base and ESP are used.
//! A push computes the new RSP, writes, and only then commits RSP, so a faulting push changes
//! nothing.

use super::Instr;
use crate::cpu::Cpu;
use crate::decode::table::Row;
use crate::exception::ExecResult;
use crate::flags::{Width, W16, W64};
use crate::state::{gpr::RSP, SegReg};
use iced_x86::Code as C;

impl Cpu {
    /// Linear address of stack offset `off` (SS base outside 64-bit mode).
    #[inline(always)]
    pub fn stack_la(&self, off: u64, e: &Instr) -> u64 {
        if e.lmask == u64::MAX {
            off
        } else {
            self.state.segs[SegReg::Ss as usize].base.wrapping_add(off & self.stack_mask()) & 0xffff_ffff
        }
    }

    /// Mask of the stack pointer: SS.B selects ESP or SP outside 64-bit mode.
    #[inline(always)]
    pub fn stack_mask(&self) -> u64 {
        if self.state.segs[SegReg::Ss as usize].default_big() {
            0xffff_ffff
        } else {
            0xffff
        }
    }

    /// Pushes a `W`-sized value; RSP is committed after the write succeeds.
    #[inline(always)]
    pub fn push<W: Width>(&mut self, e: &Instr, v: u64) -> ExecResult {
        let rsp = self.state.gpr[RSP].wrapping_sub(W::BYTES as u64);
        self.write::<W>(self.stack_la(rsp, e), v)?;
        self.set_rsp(e, rsp);
        Ok(())
    }

    /// Reads the `W`-sized value at the top of the stack without popping it.
    #[inline(always)]
    pub fn peek<W: Width>(&mut self, e: &Instr, offset: u64) -> Result<u64, crate::exception::Stop> {
        let rsp = self.state.gpr[RSP].wrapping_add(offset);
        self.read::<W>(self.stack_la(rsp, e))
    }

    /// Writes RSP (or ESP/SP, per the stack size outside 64-bit mode).
    #[inline(always)]
    pub fn set_rsp(&mut self, e: &Instr, rsp: u64) {
        if e.lmask == u64::MAX {
            self.state.gpr[RSP] = rsp;
        } else {
            let m = self.stack_mask();
            self.state.gpr[RSP] = (self.state.gpr[RSP] & !m) | (rsp & m);
        }
    }
}

pub fn exec_push_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.get::<W>(e.dst);
    cpu.push::<W>(e, v)
}

pub fn exec_push_m<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.read::<W>(cpu.ea(e))?;
    cpu.push::<W>(e, v)
}

pub fn exec_push_i<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.push::<W>(e, e.imm)
}

pub fn exec_pop_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.peek::<W>(e, 0)?;
    let rsp = cpu.state.gpr[RSP].wrapping_add(W::BYTES as u64);
    cpu.set_rsp(e, rsp);
    // `pop rsp` loads the popped value, overriding the increment.
    cpu.set::<W>(e.dst, v);
    Ok(())
}

/// `pop m`: the address is computed with RSP already incremented (SDM POP, "If the destination
/// operand is a memory location that uses RSP as a base...").
pub fn exec_pop_m<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.peek::<W>(e, 0)?;
    let old = cpu.state.gpr[RSP];
    let new = old.wrapping_add(W::BYTES as u64);
    cpu.set_rsp(e, new);
    let la = cpu.ea(e);
    if let Err(f) = cpu.write::<W>(la, v) {
        cpu.state.gpr[RSP] = old;
        return Err(f);
    }
    Ok(())
}

const PUSH_POP: &[Row] = &[
    Row::reg(C::Push_r64, exec_push_r::<W64>),
    Row::reg(C::Push_r16, exec_push_r::<W16>),
    Row::reg(C::Pop_r64, exec_pop_r::<W64>),
    Row::reg(C::Pop_r16, exec_pop_r::<W16>),
    Row::rm(C::Push_rm64, exec_push_r::<W64>, exec_push_m::<W64>),
    Row::rm(C::Push_rm16, exec_push_r::<W16>, exec_push_m::<W16>),
    Row::rm(C::Pop_rm64, exec_pop_r::<W64>, exec_pop_m::<W64>),
    Row::rm(C::Pop_rm16, exec_pop_r::<W16>, exec_pop_m::<W16>),
    Row::reg(C::Pushq_imm8, exec_push_i::<W64>),
    Row::reg(C::Pushq_imm32, exec_push_i::<W64>),
    Row::reg(C::Pushw_imm8, exec_push_i::<W16>),
    Row::reg(C::Push_imm16, exec_push_i::<W16>),
];

pub(crate) const ROWS: &[&[Row]] = &[PUSH_POP];
