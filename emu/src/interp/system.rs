//! System instructions: SYSCALL (user-mode emulation form), NOP and its multi-byte forms,
//! RDTSC/RDTSCP (from `Cpu::tsc` plus the TSC offset; #GP(0) at CPL > 0 when CR4.TSD is set),
//! UD0/UD1/UD2 (#UD), INT3 (#BP), INT1 (#DB), HLT (#GP(0) at CPL > 0; at CPL 0 it completes and
//! stops with `Stop::Halt`). SDM Vol. 2, those entries.
//!
//! INT3 and INT1 are traps: hardware reports the address *after* the instruction, so they
//! complete (RIP past them) and stop with `Stop::SoftInt(3)` (INT3 is a software interrupt,
//! checked against the gate's DPL) and `Stop::Trap(#DB)` (INT1 is not).
//! The full system-level set (MOV CR, WRMSR, LGDT, IRETQ, INT n, far transfers ...) comes with
//! the virtual PC.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{vector, ExecResult, Fault, Stop};
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
    super::sys::syscall_system(cpu, e)
}

pub fn exec_nop(_cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    Ok(())
}

/// CR4.TSD: RDTSC/RDTSCP are privileged.
const CR4_TSD: u64 = 1 << 2;

/// The guest's time stamp counter.
fn read_tsc(cpu: &mut Cpu) -> Result<u64, Stop> {
    if cpu.state.cr4 & CR4_TSD != 0 && cpu.state.cpl > 0 {
        return Err(Stop::Fault(Fault::gp0()));
    }
    Ok(cpu.tsc.tsc(cpu.retired).wrapping_add(cpu.state.tsc_offset))
}

/// `rdtsc`: EDX:EAX = TSC (upper halves of RAX/RDX cleared).
pub fn exec_rdtsc(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let t = read_tsc(cpu)?;
    cpu.state.gpr[0] = t & 0xffff_ffff;
    cpu.state.gpr[2] = t >> 32;
    Ok(())
}

/// CR4.PCE: RDPMC allowed outside ring 0.
const CR4_PCE: u64 = 1 << 8;

/// `rdpmc`: EDX:EAX = performance counter ECX. The AMD models' PerfCtr0-3 (`system/pmu.rs`)
/// are counters 0-3 (APM Vol. 3, RDPMC); any other index, or CPL > 0 with CR4.PCE clear, is
/// #GP(0). The Intel model reports no counters (CPUID leaf 0Ah is 0), so every index is.
pub fn exec_rdpmc(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    use crate::system::pmu::{AmdPmu, AMD_PERF_COUNTERS, AMD_PERF_CTR0};
    let n = cpu.state.gpr[1] as u32;
    let amd = cpu.config.model.vendor == crate::system::cpu_model::Vendor::Amd;
    if (cpu.state.cr4 & CR4_PCE == 0 && cpu.state.cpl > 0) || !amd || n >= AMD_PERF_COUNTERS {
        return Err(Stop::Fault(Fault::gp0()));
    }
    debug_assert!(AmdPmu::decodes(AMD_PERF_CTR0 + n));
    let v = cpu.amd_pmu.read(AMD_PERF_CTR0 + n);
    cpu.state.gpr[0] = v & 0xffff_ffff;
    cpu.state.gpr[2] = v >> 32;
    Ok(())
}

/// `rdtscp`: as RDTSC, plus ECX = IA32_TSC_AUX.
pub fn exec_rdtscp(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let t = read_tsc(cpu)?;
    cpu.state.gpr[0] = t & 0xffff_ffff;
    cpu.state.gpr[2] = t >> 32;
    cpu.state.gpr[1] = cpu.state.msr.tsc_aux & 0xffff_ffff;
    Ok(())
}

/// INT3: #BP (a trap; see the module doc).
pub fn exec_int3(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.soft_int_rip = e.rip();
    cpu.state.rip = e.next_rip;
    Err(Stop::SoftInt(vector::BP))
}

/// INT1 (ICEBP): #DB.
pub fn exec_int1(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.state.rip = e.next_rip;
    Err(Stop::Trap(vector::DB))
}

/// HLT: privileged.
pub fn exec_hlt(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    if cpu.state.cpl > 0 {
        return Err(Stop::Fault(Fault::gp0()));
    }
    cpu.state.rip = e.next_rip;
    Err(Stop::Halt)
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
    // Reserved-NOP hint space (0F 0D, 0F 18-1F forms without a defined meaning).
    Row::any(C::Reservednop_rm16_r16_0F0D, exec_nop),
    Row::any(C::Reservednop_rm32_r32_0F0D, exec_nop),
    Row::any(C::Reservednop_rm64_r64_0F0D, exec_nop),
    Row::any(C::Reservednop_rm16_r16_0F18, exec_nop),
    Row::any(C::Reservednop_rm32_r32_0F18, exec_nop),
    Row::any(C::Reservednop_rm64_r64_0F18, exec_nop),
    Row::any(C::Reservednop_rm16_r16_0F19, exec_nop),
    Row::any(C::Reservednop_rm32_r32_0F19, exec_nop),
    Row::any(C::Reservednop_rm64_r64_0F19, exec_nop),
    Row::any(C::Reservednop_rm16_r16_0F1A, exec_nop),
    Row::any(C::Reservednop_rm32_r32_0F1A, exec_nop),
    Row::any(C::Reservednop_rm64_r64_0F1A, exec_nop),
    Row::any(C::Reservednop_rm16_r16_0F1B, exec_nop),
    Row::any(C::Reservednop_rm32_r32_0F1B, exec_nop),
    Row::any(C::Reservednop_rm64_r64_0F1B, exec_nop),
    Row::any(C::Reservednop_rm16_r16_0F1C, exec_nop),
    Row::any(C::Reservednop_rm32_r32_0F1C, exec_nop),
    Row::any(C::Reservednop_rm64_r64_0F1C, exec_nop),
    Row::any(C::Reservednop_rm16_r16_0F1D, exec_nop),
    Row::any(C::Reservednop_rm32_r32_0F1D, exec_nop),
    Row::any(C::Reservednop_rm64_r64_0F1D, exec_nop),
    Row::any(C::Reservednop_rm16_r16_0F1E, exec_nop),
    Row::any(C::Reservednop_rm32_r32_0F1E, exec_nop),
    Row::any(C::Reservednop_rm64_r64_0F1E, exec_nop),
    Row::any(C::Reservednop_rm16_r16_0F1F, exec_nop),
    Row::any(C::Reservednop_rm32_r32_0F1F, exec_nop),
    Row::any(C::Reservednop_rm64_r64_0F1F, exec_nop),
    Row::reg(C::Rdtsc, exec_rdtsc),
    Row::reg(C::Rdpmc, exec_rdpmc),
    Row::reg(C::Rdtscp, exec_rdtscp),
    Row::reg(C::Ud2, crate::decoded::exec_ud),
    Row::any(C::Ud0_r16_rm16, crate::decoded::exec_ud),
    Row::any(C::Ud0_r32_rm32, crate::decoded::exec_ud),
    Row::any(C::Ud0_r64_rm64, crate::decoded::exec_ud),
    Row::any(C::Ud1_r16_rm16, crate::decoded::exec_ud),
    Row::any(C::Ud1_r32_rm32, crate::decoded::exec_ud),
    Row::any(C::Ud1_r64_rm64, crate::decoded::exec_ud),
    Row::reg(C::Int3, exec_int3),
    Row::reg(C::Int1, exec_int1),
    Row::reg(C::Hlt, exec_hlt),
];

pub(crate) const ROWS: &[&[Row]] = &[SYSTEM];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::hosttest::{Guest, Regs};
    use crate::exception::{vector, Stop};

    struct FixedTsc(u64);
    impl crate::cpu::TscSource for FixedTsc {
        fn tsc(&self, _retired: u64) -> u64 {
            self.0
        }
    }

    #[test]
    fn rdtsc_and_rdtscp_read_the_cpu_tsc() {
        let mut g = Guest::new();
        g.cpu.tsc = Box::new(FixedTsc(0x1234_5678_9abc_def0));
        g.cpu.state.msr.tsc_aux = 7;
        let (res, r) = g.run(&[0x0f, 0x31], &Regs { rax: u64::MAX, rdx: u64::MAX, ..Default::default() });
        assert!(res.is_ok());
        assert_eq!((r.rax, r.rdx), (0x9abc_def0, 0x1234_5678));
        g.cpu.state.tsc_offset = 0x10;
        let (_, r) = g.run(&[0x0f, 0x01, 0xf9], &Regs::default());
        assert_eq!((r.rax, r.rdx, r.rcx), (0x9abc_df00, 0x1234_5678, 7));
        // CR4.TSD at CPL 3: #GP(0) (SDM RDTSC).
        g.cpu.state.cr4 |= 1 << 2;
        assert_eq!(g.fault(&[0x0f, 0x31], &Regs::default()).vector, vector::GP);
    }

    #[test]
    fn traps_and_privileged_instructions() {
        let mut g = Guest::new();
        assert_eq!(g.fault(&[0x0f, 0x0b], &Regs::default()).vector, vector::UD); // ud2
        assert_eq!(g.fault(&[0x0f, 0xb9, 0xc0], &Regs::default()).vector, vector::UD); // ud1 eax, eax
        assert_eq!(g.exec(&[0xcc]), Err(Stop::SoftInt(vector::BP))); // int3: a trap, RIP past it
        assert_eq!(g.exec(&[0xf1]), Err(Stop::Trap(vector::DB))); // int1: a trap, RIP past it
        let f = g.fault(&[0xf4], &Regs::default()); // hlt at CPL 3
        assert_eq!((f.vector, f.error_code), (vector::GP, 0));
        g.load(&Regs::default());
        g.cpu.state.cpl = 0;
        assert_eq!(g.exec(&[0xf4]), Err(Stop::Halt));
    }

    #[test]
    fn reserved_nop_hints_run_as_nops() {
        // 0F 19 /r and 0F 1D /r: reserved-NOP space (SDM Vol. 2, NOP; the hint opcodes).
        let mut g = Guest::new();
        let (res, r) =
            g.run(&[0x0f, 0x19, 0xc0, 0x48, 0x0f, 0x1d, 0x02], &Regs { rax: 7, rdx: 0x8000, ..Default::default() });
        assert!(res.is_ok());
        assert_eq!((r.rax, r.rdx), (7, 0x8000));
    }

    #[test]
    fn invalid_lock_prefixes_decode_to_ud() {
        // SDM Vol. 2, LOCK: #UD when the instruction is not a lockable RMW on memory. iced-x86
        // reports such encodings as invalid; they must reach exec_ud.
        let mut g = Guest::new();
        for code in [
            &[0xf0, 0x01, 0xc8][..],   // lock add eax, ecx (register destination)
            &[0xf0, 0x90],             // lock nop
            &[0xf0, 0x8b, 0x02],       // lock mov eax, [rdx]
            &[0xf0, 0x0f, 0xa3, 0x02], // lock bt [rdx], eax
        ] {
            assert_eq!(g.fault(code, &Regs { rdx: 0x8000, ..Default::default() }).vector, vector::UD, "{code:x?}");
        }
        // A valid locked RMW runs: lock add [rdx], eax
        let (res, r) = g.run(&[0xf0, 0x01, 0x02], &Regs { rdx: 0x8000 + 32, rax: 5, ..Default::default() });
        assert!(res.is_ok());
        assert_eq!(r.mem[4], 5);
    }
}
