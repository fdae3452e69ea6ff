//! Miscellaneous: CPUID (the feature set tier 0 implements, and only that).

use super::Instr;
use crate::cpu::Cpu;
use crate::decode::table::Row;
use crate::exception::ExecResult;
use iced_x86::Code as C;

/// CPUID.1:EDX bits for the general-purpose and system instructions this family file and its
/// neighbours implement: FPU (0), TSC (4), CX8 (8), CMOV (15). Each family that implements an
/// extension adds its bits in its own file (`sse::CPUID1_EDX`, `sse::CPUID1_ECX`, ...).
pub const CPUID1_EDX_BASE: u32 = (1 << 0) | (1 << 4) | (1 << 8) | (1 << 15);
pub const CPUID1_ECX_BASE: u32 = 0;

/// CPUID leaf `leaf`/`sub` as [EAX, EBX, ECX, EDX]. Features are reported only when they are
/// implemented and tested (glibc picks its string functions from these bits).
pub fn cpuid(leaf: u32, _sub: u32) -> [u32; 4] {
    match leaf {
        0 => [0xd, u32::from_le_bytes(*b"Stra"), u32::from_le_bytes(*b"taCP"), u32::from_le_bytes(*b"U x8")],
        1 => [
            0x0005_0650,
            0x0000_0800,
            CPUID1_ECX_BASE | super::sse::CPUID1_ECX,
            CPUID1_EDX_BASE | super::sse::CPUID1_EDX | super::x87::CPUID1_EDX,
        ],
        0x8000_0000 => [0x8000_0008, 0, 0, 0],
        // LM, SYSCALL, NX.
        0x8000_0001 => [0, 0, 0, (1 << 29) | (1 << 11) | (1 << 20)],
        0x8000_0008 => [0x3028, 0, 0, 0],
        _ => [0; 4],
    }
}

pub fn exec_cpuid(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let g = &mut cpu.state.gpr;
    let r = cpuid(g[0] as u32, g[1] as u32);
    g[0] = r[0] as u64;
    g[3] = r[1] as u64;
    g[1] = r[2] as u64;
    g[2] = r[3] as u64;
    Ok(())
}

const MISC: &[Row] = &[Row::reg(C::Cpuid, exec_cpuid)];

pub(crate) const ROWS: &[&[Row]] = &[MISC];
