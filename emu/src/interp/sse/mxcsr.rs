//! MXCSR access (LDMXCSR, STMXCSR) and the SSE/SSE2 instructions that have nothing to do in an
//! interpreter without caches: LFENCE/MFENCE/SFENCE, PREFETCH*, CLFLUSH (SDM Vol. 2, those
//! entries; MXCSR layout in Vol. 1, 10.2.3). Loading a reserved MXCSR bit raises #GP(0).

use super::{check, MXCSR_MASK};
use crate::cpu::Cpu;
use crate::decode::table::Row;
use crate::exception::{ExecResult, Fault, Stop};
use crate::flags::W32;
use crate::interp::Instr;
use crate::mmu::Access;
use iced_x86::Code as C;

/// `ldmxcsr m32`
pub fn exec_ldmxcsr(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = cpu.read::<W32>(cpu.ea(e))? as u32;
    if v & !MXCSR_MASK != 0 {
        return Err(Stop::Fault(Fault::gp0()));
    }
    cpu.state.mxcsr = v;
    Ok(())
}

/// `stmxcsr m32`
pub fn exec_stmxcsr(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = cpu.state.mxcsr as u64;
    cpu.write::<W32>(cpu.ea(e), v)
}

/// Fences and prefetches: no effect (prefetches never fault).
pub fn exec_sse_nop(_cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    Ok(())
}

/// `clflush m8`: nothing to flush, but the address is checked as a read would be (#PF/#GP).
pub fn exec_clflush(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let la = cpu.ea(e);
    cpu.translate_slow(la, Access::Read).map(|_| ())
}

pub(crate) const ROWS: &[Row] = &[
    Row::mem(C::Ldmxcsr_m32, exec_ldmxcsr),
    Row::mem(C::Stmxcsr_m32, exec_stmxcsr),
    Row::mem(C::Clflush_m8, exec_clflush),
    Row::mem(C::Prefetchnta_m8, exec_sse_nop),
    Row::mem(C::Prefetcht0_m8, exec_sse_nop),
    Row::mem(C::Prefetcht1_m8, exec_sse_nop),
    Row::mem(C::Prefetcht2_m8, exec_sse_nop),
    Row::mem(C::Prefetch_m8, exec_sse_nop),
    Row::mem(C::Prefetchw_m8, exec_sse_nop),
    Row::mem(C::Prefetchreserved3_m8, exec_sse_nop),
    Row::mem(C::Prefetchreserved4_m8, exec_sse_nop),
    Row::mem(C::Prefetchreserved5_m8, exec_sse_nop),
    Row::mem(C::Prefetchreserved6_m8, exec_sse_nop),
    Row::mem(C::Prefetchreserved7_m8, exec_sse_nop),
    Row::reg(C::Lfence, exec_sse_nop),
    Row::reg(C::Lfence_E9, exec_sse_nop),
    Row::reg(C::Lfence_EA, exec_sse_nop),
    Row::reg(C::Lfence_EB, exec_sse_nop),
    Row::reg(C::Lfence_EC, exec_sse_nop),
    Row::reg(C::Lfence_ED, exec_sse_nop),
    Row::reg(C::Lfence_EE, exec_sse_nop),
    Row::reg(C::Lfence_EF, exec_sse_nop),
    Row::reg(C::Mfence, exec_sse_nop),
    Row::reg(C::Mfence_F1, exec_sse_nop),
    Row::reg(C::Mfence_F2, exec_sse_nop),
    Row::reg(C::Mfence_F3, exec_sse_nop),
    Row::reg(C::Mfence_F4, exec_sse_nop),
    Row::reg(C::Mfence_F5, exec_sse_nop),
    Row::reg(C::Mfence_F6, exec_sse_nop),
    Row::reg(C::Mfence_F7, exec_sse_nop),
    Row::reg(C::Sfence, exec_sse_nop),
    Row::reg(C::Sfence_F9, exec_sse_nop),
    Row::reg(C::Sfence_FA, exec_sse_nop),
    Row::reg(C::Sfence_FB, exec_sse_nop),
    Row::reg(C::Sfence_FC, exec_sse_nop),
    Row::reg(C::Sfence_FD, exec_sse_nop),
    Row::reg(C::Sfence_FE, exec_sse_nop),
    Row::reg(C::Sfence_FF, exec_sse_nop),
];
