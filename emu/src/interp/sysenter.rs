//! SYSENTER and SYSEXIT (tier 0), SDM Vol. 2B (SYSENTER, SYSEXIT) and APM Vol. 3 (same entries):
//! the fast system-call pair 32-bit Linux uses when CPUID.1:EDX.SEP is set.
//!
//! Both load flat CS and SS computed from IA32_SYSENTER_CS, never read from the GDT: SYSENTER
//! gives CS = SYSENTER_CS & FFFCh and SS = CS + 8 at DPL 0; SYSEXIT gives CS = SYSENTER_CS + 16
//! and SS = + 24 (to 32-bit code) or + 32 and + 40 (REX.W, to 64-bit code), RPL 3. Both raise
//! #GP(0) in real mode and when SYSENTER_CS[15:2] is 0; SYSEXIT also at CPL != 0.
//!
//! Vendor difference: AMD raises #UD for both whenever long mode is active (APM Vol. 3,
//! SYSENTER: "#UD ... long mode is enabled"), compatibility mode included; Intel runs them in
//! IA-32e mode (SYSENTER enters 64-bit code there). The model's vendor decides.
//!
//! Both end the block with `Stop::Yield` (the code size and CPL change), as SYSCALL does.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{ExecResult, Fault, Stop};
use crate::state::{attr, ctrl, rflags, SegReg, Segment};
use crate::system::cpu_model::Vendor;
use iced_x86::Code as C;

/// The checks both share: #UD on AMD in long mode, #GP(0) in real mode or with a null
/// IA32_SYSENTER_CS. Returns whether IA-32e mode is active.
fn check_common(cpu: &Cpu) -> Result<bool, Stop> {
    let ia32e = cpu.state.efer & ctrl::EFER_LMA != 0;
    if ia32e && cpu.config.model.vendor == Vendor::Amd {
        return Err(Stop::Fault(Fault::ud()));
    }
    if cpu.state.cr0 & ctrl::CR0_PE == 0 || cpu.state.msr.sysenter_cs & 0xfffc == 0 {
        return Err(Stop::Fault(Fault::gp0()));
    }
    Ok(ia32e)
}

/// A flat 4 GiB code segment, execute/read accessed (type 11): 64-bit when `long`, else 32-bit.
fn flat_code(selector: u16, dpl: u8, long: bool) -> Segment {
    let size = if long { attr::L } else { attr::DB };
    Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        attr: 0xb | attr::S | (dpl as u16) << attr::DPL_SHIFT | attr::P | size | attr::G,
    }
}

/// `sysenter`: to CPL 0 at IA32_SYSENTER_EIP with the stack at IA32_SYSENTER_ESP.
pub fn exec_sysenter(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let ia32e = check_common(cpu)?;
    let sel = (cpu.state.msr.sysenter_cs & 0xfffc) as u16;
    // VM, IF and RF cleared; TF is left, so a single-step trap follows at the entry point.
    cpu.state.rflags_other &= !(rflags::VM | rflags::IF | rflags::RF);
    cpu.state.segs[SegReg::Cs as usize] = flat_code(sel, 0, ia32e);
    // Read/write accessed (type 3), B = 1.
    cpu.state.segs[SegReg::Ss as usize] = Segment::flat_data(sel.wrapping_add(8), 0);
    cpu.state.cpl = 0;
    let (esp, eip) = (cpu.state.msr.sysenter_esp, cpu.state.msr.sysenter_eip);
    let mask = if ia32e { u64::MAX } else { 0xffff_ffff };
    cpu.state.gpr[4] = esp & mask;
    cpu.state.rip = eip & mask;
    Err(Stop::Yield)
}

/// `sysexit` (`WIDE`: REX.W, to 64-bit code): to CPL 3 at rDX with the stack at rCX.
pub fn exec_sysexit<const WIDE: bool>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    check_common(cpu)?;
    if cpu.state.cpl != 0 {
        return Err(Stop::Fault(Fault::gp0()));
    }
    let (rcx, rdx) = (cpu.state.gpr[1], cpu.state.gpr[2]);
    if WIDE && !(crate::mmu::walk::is_canonical(rcx) && crate::mmu::walk::is_canonical(rdx)) {
        return Err(Stop::Fault(Fault::gp0()));
    }
    let base = cpu.state.msr.sysenter_cs as u16;
    let (cs, ss) = if WIDE { (32, 40) } else { (16, 24) };
    cpu.state.segs[SegReg::Cs as usize] = flat_code(base.wrapping_add(cs) | 3, 3, WIDE);
    cpu.state.segs[SegReg::Ss as usize] = Segment::flat_data(base.wrapping_add(ss) | 3, 3);
    cpu.state.cpl = 3;
    let mask = if WIDE { u64::MAX } else { 0xffff_ffff };
    cpu.state.gpr[4] = rcx & mask;
    cpu.state.rip = rdx & mask;
    Err(Stop::Yield)
}

/// CPUID.1:EDX.SEP (11): SYSENTER/SYSEXIT and the IA32_SYSENTER_* MSRs (`system::msr`).
pub const CPUID1_EDX: u32 = crate::system::cpu_model::edx1::SEP;

pub(crate) const ROWS: &[Row] = &[
    Row::reg(C::Sysenter, exec_sysenter),
    Row::reg(C::Sysexitd, exec_sysexit::<false>),
    Row::reg(C::Sysexitq, exec_sysexit::<true>),
];

#[cfg(test)]
mod tests {
    //! Each rule from the SDM Vol. 2B / APM Vol. 3 entries, one instruction run by tier 0.

    use crate::cpu::Cpu;
    use crate::engine::Exit;
    use crate::exception::{Fault, Stop};
    use crate::mem::GuestRam;
    use crate::state::{attr, ctrl, rflags, SegReg, Segment};
    use crate::system::cpu_model::by_name;

    const SYSENTER: &[u8] = &[0x0f, 0x34];
    const SYSEXIT: &[u8] = &[0x0f, 0x35];
    const SYSEXIT_REX_W: &[u8] = &[0x48, 0x0f, 0x35];

    /// A CPU in 32-bit protected mode at CPL 0 (flat segments), with the bytes at 0x1000 and
    /// SYSENTER_CS = 0x60, ESP = 0x8000, EIP = 0x4000.
    fn cpu(model: &str, code: &[u8]) -> Cpu {
        let mut cpu = Cpu::new(GuestRam::new(1 << 20).unwrap());
        cpu.config.model = by_name(model).unwrap();
        cpu.config.system = false; // faults come back to the test instead of going through an IDT
        cpu.ram.slice_mut(0x1000, code.len()).unwrap().copy_from_slice(code);
        cpu.state.cr0 |= ctrl::CR0_PE;
        let mut cs = Segment::flat_data(0x08, 0);
        cs.attr = (cs.attr & !attr::TYPE_MASK) | 0xb;
        cpu.state.segs[SegReg::Cs as usize] = cs;
        cpu.state.segs[SegReg::Ss as usize] = Segment::flat_data(0x10, 0);
        cpu.state.cpl = 0;
        cpu.state.rip = 0x1000;
        cpu.state.msr.sysenter_cs = 0x60;
        cpu.state.msr.sysenter_esp = 0x8000;
        cpu.state.msr.sysenter_eip = 0x4000;
        cpu
    }

    /// Switches to 64-bit mode (IA-32e with a 64-bit CS); CPL and the rest are kept.
    fn long_mode(cpu: &mut Cpu) {
        cpu.state.efer |= ctrl::EFER_LME | ctrl::EFER_LMA;
        cpu.state.segs[SegReg::Cs as usize] = Segment::flat_code64(0x08, cpu.state.cpl);
    }

    fn step(cpu: &mut Cpu) -> Option<Exit> {
        crate::tier0::Interp::new().step(cpu)
    }

    fn faulted(cpu: &mut Cpu, f: Fault) {
        let rip = cpu.state.rip;
        assert_eq!(step(cpu), Some(Exit::Stop(Stop::Fault(f))));
        assert_eq!(cpu.state.rip, rip, "a fault leaves RIP at the instruction");
    }

    fn completed(cpu: &mut Cpu) {
        assert_eq!(step(cpu), Some(Exit::Stop(Stop::Yield)));
    }

    /// SDM: CS base 0, limit FFFFFh with G = 1, type 11, S = 1, P = 1; SS type 3, B = 1.
    fn assert_flat(s: &Segment, selector: u16, code: bool, dpl: u16) {
        assert_eq!((s.selector, s.base, s.limit), (selector, 0, 0xffff_ffff));
        assert_eq!(s.attr & attr::TYPE_MASK, if code { 0xb } else { 0x3 });
        assert_eq!(s.attr & (attr::S | attr::P | attr::G), attr::S | attr::P | attr::G);
        assert_eq!(s.attr >> attr::DPL_SHIFT & 3, dpl);
    }

    #[test]
    fn sysenter_loads_flat_cpl0_segments_from_the_msr_and_clears_if_vm_rf() {
        for model in ["k8", "broadwell"] {
            let mut c = cpu(model, SYSENTER);
            // The GDT is not read: a selector past its limit does not matter.
            c.state.msr.sysenter_cs = 0x1233; // RPL bits are dropped
            c.state.set_rflags(rflags::IF | rflags::RF | rflags::TF | 1);
            completed(&mut c);
            assert_flat(c.state.seg(SegReg::Cs), 0x1230, true, 0);
            assert!(c.state.seg(SegReg::Cs).attr & attr::DB != 0 && !c.state.seg(SegReg::Cs).long());
            assert_flat(c.state.seg(SegReg::Ss), 0x1238, false, 0);
            assert!(c.state.seg(SegReg::Ss).attr & attr::DB != 0);
            assert_eq!((c.state.cpl, c.state.rip, c.state.gpr[4]), (0, 0x4000, 0x8000));
            let f = c.state.rflags();
            assert_eq!(f & (rflags::IF | rflags::RF | rflags::VM), 0, "{model}");
            assert_eq!(f & (rflags::TF | 1), rflags::TF | 1, "other flags kept");
        }
    }

    #[test]
    fn sysenter_from_virtual_8086_mode_clears_vm() {
        let mut c = cpu("broadwell", SYSENTER);
        c.state.set_rflags(rflags::VM | rflags::IF);
        c.state.cpl = 3;
        c.state.segs[SegReg::Cs as usize] = Segment { base: 0, limit: 0xffff, selector: 0, attr: 0xf3 };
        completed(&mut c);
        assert_eq!(c.state.rflags() & (rflags::VM | rflags::IF), 0);
        assert_eq!((c.state.cpl, c.state.rip), (0, 0x4000));
    }

    #[test]
    fn sysenter_and_sysexit_gp0_on_a_null_sysenter_cs_and_in_real_mode() {
        for code in [SYSENTER, SYSEXIT] {
            for null in [0, 1, 2, 3] {
                let mut c = cpu("broadwell", code);
                c.state.msr.sysenter_cs = null; // bits 15:2 are 0
                faulted(&mut c, Fault::gp0());
            }
            let mut c = cpu("k8", code);
            c.state.cr0 &= !ctrl::CR0_PE;
            c.state.segs[SegReg::Cs as usize] = Segment { base: 0, limit: 0xffff, selector: 0, attr: 0x9b };
            faulted(&mut c, Fault::gp0());
        }
    }

    #[test]
    fn sysexit_gp0_outside_cpl0() {
        for cpl in 1..=3 {
            let mut c = cpu("broadwell", SYSEXIT);
            c.state.cpl = cpl;
            faulted(&mut c, Fault::gp0());
        }
    }

    #[test]
    fn sysexit_returns_to_flat_cpl3_32bit_code_at_edx_with_esp_from_ecx() {
        let mut c = cpu("k8", SYSEXIT);
        c.state.gpr[1] = 0x7000;
        c.state.gpr[2] = 0x2000;
        c.state.set_rflags(rflags::IF | 0x8d5);
        completed(&mut c);
        assert_flat(c.state.seg(SegReg::Cs), 0x60 + 16 + 3, true, 3);
        assert!(c.state.seg(SegReg::Cs).attr & attr::DB != 0 && !c.state.seg(SegReg::Cs).long());
        assert_flat(c.state.seg(SegReg::Ss), 0x60 + 24 + 3, false, 3);
        assert_eq!((c.state.cpl, c.state.rip, c.state.gpr[4]), (3, 0x2000, 0x7000));
        assert_eq!(c.state.rflags(), rflags::IF | 0x8d5 | rflags::FIXED1, "RFLAGS unchanged");
    }

    #[test]
    fn intel_sysenter_in_ia32e_mode_enters_64bit_code_at_the_full_msrs() {
        let mut c = cpu("broadwell", SYSENTER);
        long_mode(&mut c);
        c.state.cpl = 3;
        c.state.segs[SegReg::Cs as usize] = Segment::flat_code64(0x33, 3);
        c.state.msr.sysenter_eip = 0xffff_ffff_8100_0000;
        c.state.msr.sysenter_esp = 0xffff_ffff_8200_0000;
        completed(&mut c);
        let cs = c.state.seg(SegReg::Cs);
        assert_flat(cs, 0x60, true, 0);
        assert!(cs.long() && cs.attr & attr::DB == 0, "L = 1, D = 0");
        assert!(c.state.in_64bit_mode());
        assert_eq!((c.state.rip, c.state.gpr[4]), (0xffff_ffff_8100_0000, 0xffff_ffff_8200_0000));
    }

    #[test]
    fn intel_sysexit_with_rex_w_returns_to_64bit_code_and_without_to_compatibility_mode() {
        let mut c = cpu("broadwell", SYSEXIT_REX_W);
        long_mode(&mut c);
        c.state.gpr[1] = 0x7fff_0000_1000;
        c.state.gpr[2] = 0x7fff_0000_2000;
        completed(&mut c);
        let cs = c.state.seg(SegReg::Cs);
        assert_flat(cs, 0x60 + 32 + 3, true, 3);
        assert!(cs.long() && cs.attr & attr::DB == 0);
        assert_flat(c.state.seg(SegReg::Ss), 0x60 + 40 + 3, false, 3);
        assert_eq!((c.state.cpl, c.state.rip, c.state.gpr[4]), (3, 0x7fff_0000_2000, 0x7fff_0000_1000));

        let mut c = cpu("broadwell", SYSEXIT);
        long_mode(&mut c);
        c.state.gpr[1] = 0xdead_0000_7000;
        c.state.gpr[2] = 0xdead_0000_2000;
        completed(&mut c);
        let cs = c.state.seg(SegReg::Cs);
        assert_flat(cs, 0x60 + 16 + 3, true, 3);
        assert!(!cs.long() && cs.attr & attr::DB != 0, "compatibility mode");
        assert_eq!((c.state.rip, c.state.gpr[4]), (0x2000, 0x7000), "EDX and ECX, zero-extended");
    }

    #[test]
    fn intel_sysexit_with_rex_w_gp0_on_a_non_canonical_target_or_stack() {
        for (rcx, rdx) in [(0x1000, 0x8000_0000_0000), (0x8000_0000_0000, 0x1000)] {
            let mut c = cpu("sapphirerapids", SYSEXIT_REX_W);
            long_mode(&mut c);
            c.state.gpr[1] = rcx;
            c.state.gpr[2] = rdx;
            faulted(&mut c, Fault::gp0());
        }
    }

    #[test]
    fn amd_raises_ud_in_long_mode_compatibility_mode_included() {
        for code in [SYSENTER, SYSEXIT, SYSEXIT_REX_W] {
            let mut c = cpu("k8", code);
            long_mode(&mut c);
            faulted(&mut c, Fault::ud());
        }
        for code in [SYSENTER, SYSEXIT] {
            let mut c = cpu("k8", code);
            c.state.efer |= ctrl::EFER_LME | ctrl::EFER_LMA; // CS stays 32-bit: compatibility mode
            faulted(&mut c, Fault::ud());
        }
    }

    /// Every part the models stand for (K8, Broadwell, Sapphire Rapids) reports SEP
    /// (CPUID.1:EDX[11]); AMD's leaf 8000_0001h keeps bit 11 for SYSCALL instead.
    #[test]
    fn every_model_reports_sep() {
        for m in crate::system::cpu_model::MODELS {
            assert_ne!(crate::interp::misc::cpuid(m, 1, 0)[3] & 1 << 11, 0, "{}", m.name);
            assert_ne!(crate::interp::misc::cpuid(m, 0x8000_0001, 0)[3] & 1 << 11, 0, "{}: SYSCALL", m.name);
        }
    }

    /// Both end their block (the next one is looked up under the new CS and CPL), as SYSCALL
    /// does; the JIT, which calls tier-0 handlers for them, ends its translation there too.
    #[test]
    fn sysenter_and_sysexit_end_the_block_like_syscall() {
        use crate::decode::table::info;
        use iced_x86::Code as C;
        for code in [C::Syscall, C::Sysenter, C::Sysexitd, C::Sysexitq] {
            assert!(info(code).ends_block, "{code:?}");
        }
    }
}
