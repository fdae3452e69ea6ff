//! Port I/O: IN, OUT (immediate and DX forms), INS, OUTS with REP (SDM Vol. 2; Vol. 1 18.5 for
//! the I/O privilege rule). Accesses go to the machine's bus through `Cpu::bus`. INS and OUTS
//! are string operations ([`Ins`], [`Outs`]) stepped by `string::exec_string`, so their index
//! and count registers follow the address size exactly as MOVS's do.
//!
//! Privilege: outside real mode, CPL > IOPL raises #GP(0); the TSS I/O permission bitmap is not
//! consulted (a kernel that grants user ports through it will see #GP instead).

use super::string::{dst_la, exec_string, src_la, StrOp};
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{ExecResult, Fault, Stop};
use crate::flags::{Width, W16, W32, W8};
use crate::state::{gpr, rflags};
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

/// A write to PM1a_CNT may put the PC into ACPI S3: the machine looks before the next
/// instruction, so none runs after the sleep request (as on hardware, where the CPU stops).
fn sleep_check(cpu: &mut Cpu, port: u16) {
    use devices::pc::acpi_pm::{ACPI_PM_BASE, PM1_CNT};
    if port & !1 == ACPI_PM_BASE + PM1_CNT {
        cpu.softmmu.request_poll();
    }
}

/// `out imm8, al/ax/eax`
pub fn exec_out_imm<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let v = cpu.get::<W>(0) as u32;
    cpu.bus.pio_write(e.imm as u8 as u16, W::BYTES as u8, v);
    sleep_check(cpu, e.imm as u8 as u16);
    if cpu.rom.is_some() {
        cpu.after_port_write(e.imm as u8 as u16);
    }
    Ok(())
}

/// `out dx, al/ax/eax`
pub fn exec_out_dx<W: Width>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let port = cpu.state.gpr[2] as u16;
    let v = cpu.get::<W>(0) as u32;
    cpu.bus.pio_write(port, W::BYTES as u8, v);
    sleep_check(cpu, port);
    if cpu.rom.is_some() {
        // A BIOS may have changed the memory map (PAM).
        cpu.after_port_write(port);
    }
    Ok(())
}

/// INS: one element from the port in DX to ES:[rDI]. The store is translated before the port
/// is read, so a faulting store does not consume an input byte.
pub struct Ins;

/// OUTS: one element from DS:[rSI] (or the override) to the port in DX.
pub struct Outs;

impl StrOp for Ins {
    const SRC: bool = false;
    #[inline(always)]
    fn element<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
        let loc = cpu.translate_rmw::<W>(dst_la(cpu, e))?;
        let v = cpu.bus.pio_read(cpu.state.gpr[gpr::RDX] as u16, W::BYTES as u8) as u64;
        cpu.write_loc::<W>(loc, v);
        Ok(())
    }
}

impl StrOp for Outs {
    const SRC: bool = true;
    const DST: bool = false;
    #[inline(always)]
    fn element<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
        let v = cpu.read::<W>(src_la(cpu, e))?;
        cpu.bus.pio_write(cpu.state.gpr[gpr::RDX] as u16, W::BYTES as u8, v as u32);
        Ok(())
    }
}

/// `ins m, dx` (REP optional). The index and count registers step as for every string
/// instruction (`string::exec_string`: at the address size, element by element, so a fault
/// leaves rCX/rDI at the progress so far).
pub fn exec_ins<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    exec_string::<Ins, W>(cpu, e)
}

/// `outs dx, m` (REP optional), stepping as `exec_ins`.
pub fn exec_outs<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    exec_string::<Outs, W>(cpu, e)
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
