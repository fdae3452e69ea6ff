//! MXCSR access (LDMXCSR, STMXCSR) and the SSE/SSE2 instructions that have nothing to do in an
//! interpreter without caches: LFENCE/MFENCE/SFENCE, PREFETCH*, CLFLUSH (SDM Vol. 2, those
//! entries; MXCSR layout in Vol. 1, 10.2.3). Loading a reserved MXCSR bit raises #GP(0).

use super::{check, MXCSR_MASK};
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{ExecResult, Fault, Stop};
use crate::flags::W32;
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

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::testutil::{exec, sse_cpu, BUF};
    use crate::exception::{Fault, Stop};

    #[test]
    fn ldmxcsr_stmxcsr_round_trip_and_reserved_bits_fault() {
        let mut cpu = sse_cpu();
        cpu.state.gpr[2] = BUF;
        // ldmxcsr [rdx] = 0F AE 12; stmxcsr [rdx+4] = 0F AE 5A 04
        cpu.ram.write::<crate::flags::W32>(BUF, 0xffff);
        exec(&mut cpu, &[0x0f, 0xae, 0x12]).expect("ldmxcsr");
        assert_eq!(cpu.state.mxcsr, 0xffff);
        exec(&mut cpu, &[0x0f, 0xae, 0x5a, 0x04]).expect("stmxcsr");
        assert_eq!(cpu.ram.read::<crate::flags::W32>(BUF + 4), 0xffff);
        // SDM Vol. 2, LDMXCSR: #GP(0) when a reserved bit (31:16) is set; MXCSR unchanged.
        cpu.ram.write::<crate::flags::W32>(BUF, 0x1_1f80);
        assert_eq!(exec(&mut cpu, &[0x0f, 0xae, 0x12]), Err(Stop::Fault(Fault::gp0())));
        assert_eq!(cpu.state.mxcsr, 0xffff);
    }
}
