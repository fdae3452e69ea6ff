//! Data transfer: MOV, MOVZX, MOVSX, MOVSXD, LEA (SDM Vol. 2).

use super::Instr;
use crate::cpu::Cpu;
use crate::decode::table::Row;
use crate::exception::ExecResult;
use crate::flags::{Width, W16, W32, W64, W8};
use iced_x86::Code as C;

/// `mov r, r`
pub fn exec_mov_r_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.get::<W>(e.src);
    cpu.set::<W>(e.dst, v);
    Ok(())
}

/// `mov r, m`
pub fn exec_mov_r_m<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.read::<W>(cpu.ea(e))?;
    cpu.set::<W>(e.dst, v);
    Ok(())
}

/// `mov m, r`
pub fn exec_mov_m_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.get::<W>(e.src);
    cpu.write::<W>(cpu.ea(e), v)
}

/// `mov r, imm`
pub fn exec_mov_r_i<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.set::<W>(e.dst, e.imm);
    Ok(())
}

/// `mov m, imm`
pub fn exec_mov_m_i<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.write::<W>(cpu.ea(e), e.imm)
}

/// `lea r, m`: the offset only (no segment base), truncated to the operand size.
pub fn exec_lea<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let s = &cpu.state;
    let base = if e.base != super::NO_REG { s.gpr[(e.base & 15) as usize] } else { 0 };
    let index = if e.index != super::NO_REG { s.gpr[(e.index & 15) as usize] << e.scale } else { 0 };
    let off = base.wrapping_add(index).wrapping_add(e.disp) & e.amask;
    cpu.set::<W>(e.dst, off);
    Ok(())
}

/// `movzx r(D), r/m(S)`: S is the source width, D the destination width.
pub fn exec_movzx_r<D: Width, S: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.get::<S>(e.src);
    cpu.set::<D>(e.dst, v);
    Ok(())
}
pub fn exec_movzx_m<D: Width, S: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.read::<S>(cpu.ea(e))?;
    cpu.set::<D>(e.dst, v);
    Ok(())
}

/// `movsx`/`movsxd r(D), r/m(S)`
pub fn exec_movsx_r<D: Width, S: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = S::sext(cpu.get::<S>(e.src));
    cpu.set::<D>(e.dst, v & D::MASK);
    Ok(())
}
pub fn exec_movsx_m<D: Width, S: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = S::sext(cpu.read::<S>(cpu.ea(e))?);
    cpu.set::<D>(e.dst, v & D::MASK);
    Ok(())
}

const MOV: &[Row] = &[
    Row::rm(C::Mov_rm8_r8, exec_mov_r_r::<W8>, exec_mov_m_r::<W8>),
    Row::rm(C::Mov_rm16_r16, exec_mov_r_r::<W16>, exec_mov_m_r::<W16>),
    Row::rm(C::Mov_rm32_r32, exec_mov_r_r::<W32>, exec_mov_m_r::<W32>),
    Row::rm(C::Mov_rm64_r64, exec_mov_r_r::<W64>, exec_mov_m_r::<W64>),
    Row::rm(C::Mov_r8_rm8, exec_mov_r_r::<W8>, exec_mov_r_m::<W8>),
    Row::rm(C::Mov_r16_rm16, exec_mov_r_r::<W16>, exec_mov_r_m::<W16>),
    Row::rm(C::Mov_r32_rm32, exec_mov_r_r::<W32>, exec_mov_r_m::<W32>),
    Row::rm(C::Mov_r64_rm64, exec_mov_r_r::<W64>, exec_mov_r_m::<W64>),
    Row::reg(C::Mov_r8_imm8, exec_mov_r_i::<W8>),
    Row::reg(C::Mov_r16_imm16, exec_mov_r_i::<W16>),
    Row::reg(C::Mov_r32_imm32, exec_mov_r_i::<W32>),
    Row::reg(C::Mov_r64_imm64, exec_mov_r_i::<W64>),
    Row::rm(C::Mov_rm8_imm8, exec_mov_r_i::<W8>, exec_mov_m_i::<W8>),
    Row::rm(C::Mov_rm16_imm16, exec_mov_r_i::<W16>, exec_mov_m_i::<W16>),
    Row::rm(C::Mov_rm32_imm32, exec_mov_r_i::<W32>, exec_mov_m_i::<W32>),
    Row::rm(C::Mov_rm64_imm32, exec_mov_r_i::<W64>, exec_mov_m_i::<W64>),
    Row::mem(C::Lea_r16_m, exec_lea::<W16>),
    Row::mem(C::Lea_r32_m, exec_lea::<W32>),
    Row::mem(C::Lea_r64_m, exec_lea::<W64>),
];

const MOVX: &[Row] = &[
    Row::rm(C::Movzx_r16_rm8, exec_movzx_r::<W16, W8>, exec_movzx_m::<W16, W8>),
    Row::rm(C::Movzx_r32_rm8, exec_movzx_r::<W32, W8>, exec_movzx_m::<W32, W8>),
    Row::rm(C::Movzx_r64_rm8, exec_movzx_r::<W64, W8>, exec_movzx_m::<W64, W8>),
    Row::rm(C::Movzx_r16_rm16, exec_movzx_r::<W16, W16>, exec_movzx_m::<W16, W16>),
    Row::rm(C::Movzx_r32_rm16, exec_movzx_r::<W32, W16>, exec_movzx_m::<W32, W16>),
    Row::rm(C::Movzx_r64_rm16, exec_movzx_r::<W64, W16>, exec_movzx_m::<W64, W16>),
    Row::rm(C::Movsx_r16_rm8, exec_movsx_r::<W16, W8>, exec_movsx_m::<W16, W8>),
    Row::rm(C::Movsx_r32_rm8, exec_movsx_r::<W32, W8>, exec_movsx_m::<W32, W8>),
    Row::rm(C::Movsx_r64_rm8, exec_movsx_r::<W64, W8>, exec_movsx_m::<W64, W8>),
    Row::rm(C::Movsx_r16_rm16, exec_movsx_r::<W16, W16>, exec_movsx_m::<W16, W16>),
    Row::rm(C::Movsx_r32_rm16, exec_movsx_r::<W32, W16>, exec_movsx_m::<W32, W16>),
    Row::rm(C::Movsx_r64_rm16, exec_movsx_r::<W64, W16>, exec_movsx_m::<W64, W16>),
    Row::rm(C::Movsxd_r16_rm16, exec_movsx_r::<W16, W16>, exec_movsx_m::<W16, W16>),
    Row::rm(C::Movsxd_r32_rm32, exec_movsx_r::<W32, W32>, exec_movsx_m::<W32, W32>),
    Row::rm(C::Movsxd_r64_rm32, exec_movsx_r::<W64, W32>, exec_movsx_m::<W64, W32>),
];

pub(crate) const ROWS: &[&[Row]] = &[MOV, MOVX];
