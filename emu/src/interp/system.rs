//! System instructions: SYSCALL (user-mode emulation form), NOP and its multi-byte forms.
//! The full system-level set (MOV CR, WRMSR, LGDT, IRETQ, ...) comes with the virtual PC.

use super::Instr;
use crate::cpu::Cpu;
use crate::decode::table::Row;
use crate::exception::{ExecResult, Fault, Stop};
use iced_x86::Code as C;

/// SYSCALL. In user-mode emulation it completes and stops for the runner (RCX and R11 are set
/// as the hardware sets them, so the guest sees the same registers as under a real kernel).
pub fn exec_syscall(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    if cpu.config.user_mode_syscalls {
        cpu.state.gpr[1] = e.next_rip;
        cpu.state.gpr[11] = cpu.state.rflags();
        cpu.state.rip = e.next_rip;
        return Err(Stop::Syscall);
    }
    Err(Stop::Fault(Fault::ud()))
}

pub fn exec_nop(_cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    Ok(())
}

const SYSTEM: &[Row] = &[
    Row::reg(C::Syscall, exec_syscall),
    Row::reg(C::Nopd, exec_nop),
    Row::reg(C::Nopw, exec_nop),
    Row::reg(C::Nopq, exec_nop),
    Row::any(C::Nop_rm16, exec_nop),
    Row::any(C::Nop_rm32, exec_nop),
    Row::any(C::Nop_rm64, exec_nop),
    Row::reg(C::Pause, exec_nop),
    Row::reg(C::Endbr64, exec_nop),
    Row::reg(C::Endbr32, exec_nop),
];

pub(crate) const ROWS: &[&[Row]] = &[SYSTEM];
