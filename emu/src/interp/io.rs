//! Port I/O: IN, OUT (immediate and DX forms), INS, OUTS with REP (SDM Vol. 2; Vol. 1 18.5 for
//! the I/O privilege rule). Accesses go to the machine's bus through `Cpu::bus`.
//!
//! Privilege: outside real mode, CPL > IOPL raises #GP(0); the TSS I/O permission bitmap is not
//! consulted (a kernel that grants user ports through it will see #GP instead).

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row, NO_SEG};
use crate::exception::{ExecResult, Fault, Stop};
use crate::flags::{Width, W16, W32, W8};
use crate::state::rflags;
use iced_x86::Code as C;

#[inline(always)]
fn check_io_privilege(cpu: &Cpu) -> ExecResult {
    let iopl = (cpu.state.rflags_other & rflags::IOPL) >> 12;
    if cpu.protected_mode() && cpu.state.cpl as u64 > iopl {
        return Err(Stop::Fault(Fault::gp0()));
    }
    Ok(())
}

/// `in al/ax/eax, imm8`
pub fn exec_in_imm<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let v = cpu.bus.pio_read(e.imm as u8 as u16, W::BYTES as u8) as u64;
    cpu.set::<W>(0, v);
    Ok(())
}

/// `in al/ax/eax, dx`
pub fn exec_in_dx<W: Width>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let port = cpu.state.gpr[2] as u16;
    let v = cpu.bus.pio_read(port, W::BYTES as u8) as u64;
    cpu.set::<W>(0, v);
    Ok(())
}

/// `out imm8, al/ax/eax`
pub fn exec_out_imm<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let v = cpu.get::<W>(0) as u32;
    cpu.bus.pio_write(e.imm as u8 as u16, W::BYTES as u8, v);
    Ok(())
}

/// `out dx, al/ax/eax`
pub fn exec_out_dx<W: Width>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let port = cpu.state.gpr[2] as u16;
    let v = cpu.get::<W>(0) as u32;
    cpu.bus.pio_write(port, W::BYTES as u8, v);
    Ok(())
}

fn asize_mask(e: &Instr) -> u64 {
    match e.asize {
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

fn update_reg(cpu: &mut Cpu, r: usize, v: u64, mask: u64) {
    cpu.state.gpr[r] = (cpu.state.gpr[r] & !mask) | (v & mask);
}

/// `ins m, dx` (REP optional): port to ES:[rDI]. Each element is precise: a faulting store
/// leaves rCX/rDI at the progress so far. The port is read only once the store is known to
/// be possible (translated first), so a fault does not lose an input byte.
pub fn exec_ins<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let m = asize_mask(e);
    let step =
        if cpu.state.rflags_other & rflags::DF != 0 { (W::BYTES as u64).wrapping_neg() } else { W::BYTES as u64 };
    let port = cpu.state.gpr[2] as u16;
    let es = if e.lmask == u64::MAX { NO_SEG } else { 0 };
    loop {
        if e.rep != 0 && cpu.state.gpr[1] & m == 0 {
            return Ok(());
        }
        let di = cpu.state.gpr[7] & m;
        let la = cpu.seg_addr(es, di, e.lmask);
        let loc = cpu.translate_rmw::<W>(la)?;
        let v = cpu.bus.pio_read(port, W::BYTES as u8) as u64;
        cpu.write_loc::<W>(loc, v);
        update_reg(cpu, 7, di.wrapping_add(step), m);
        if e.rep == 0 {
            return Ok(());
        }
        let c = (cpu.state.gpr[1] & m).wrapping_sub(1);
        update_reg(cpu, 1, c, m);
    }
}

/// `outs dx, m` (REP optional): DS:[rSI] (or the override) to the port.
pub fn exec_outs<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let m = asize_mask(e);
    let step =
        if cpu.state.rflags_other & rflags::DF != 0 { (W::BYTES as u64).wrapping_neg() } else { W::BYTES as u64 };
    let port = cpu.state.gpr[2] as u16;
    loop {
        if e.rep != 0 && cpu.state.gpr[1] & m == 0 {
            return Ok(());
        }
        let si = cpu.state.gpr[6] & m;
        let v = cpu.read::<W>(cpu.seg_addr(e.seg, si, e.lmask))?;
        cpu.bus.pio_write(port, W::BYTES as u8, v as u32);
        update_reg(cpu, 6, si.wrapping_add(step), m);
        if e.rep == 0 {
            return Ok(());
        }
        let c = (cpu.state.gpr[1] & m).wrapping_sub(1);
        update_reg(cpu, 1, c, m);
    }
}

const IO: &[Row] = &[
    Row::reg(C::In_AL_imm8, exec_in_imm::<W8>),
    Row::reg(C::In_AX_imm8, exec_in_imm::<W16>),
    Row::reg(C::In_EAX_imm8, exec_in_imm::<W32>),
    Row::reg(C::In_AL_DX, exec_in_dx::<W8>),
    Row::reg(C::In_AX_DX, exec_in_dx::<W16>),
    Row::reg(C::In_EAX_DX, exec_in_dx::<W32>),
    Row::reg(C::Out_imm8_AL, exec_out_imm::<W8>),
    Row::reg(C::Out_imm8_AX, exec_out_imm::<W16>),
    Row::reg(C::Out_imm8_EAX, exec_out_imm::<W32>),
    Row::reg(C::Out_DX_AL, exec_out_dx::<W8>),
    Row::reg(C::Out_DX_AX, exec_out_dx::<W16>),
    Row::reg(C::Out_DX_EAX, exec_out_dx::<W32>),
    Row::any(C::Insb_m8_DX, exec_ins::<W8>),
    Row::any(C::Insw_m16_DX, exec_ins::<W16>),
    Row::any(C::Insd_m32_DX, exec_ins::<W32>),
    Row::any(C::Outsb_DX_m8, exec_outs::<W8>),
    Row::any(C::Outsw_DX_m16, exec_outs::<W16>),
    Row::any(C::Outsd_DX_m32, exec_outs::<W32>),
];

pub(crate) const ROWS: &[&[Row]] = &[IO];

#[cfg(test)]
mod tests;
