//! Runs one instruction on tier 0 in a 16- or 32-bit code segment, set up as the native run is:
//! long-mode paging at CPL 3 (`emu::user::setup_long_mode_user`, Linux's GDT), an LDT holding
//! the same descriptors `modify_ldt` gave the host ([`super::LDT`]), CS the 32-bit USER32_CS or
//! the LDT's 16-bit code segment, DS/ES/SS loaded through the CPU's own segment-load path.
//!
//! The instruction ends at the end of the only mapped code page, so the run stops with an
//! instruction-fetch #PF at the fall-through or the branch target, every register as the
//! instruction left it.

use super::{
    ldt_descriptor, LegacyOutcome, LegacyState, Mode, BUF, CODE, DATA, INSN_PAGE, LDT, SEL_CODE16, SEL_CODE32,
};
use crate::state::{BUF_LEN, FLAGS_COMPARED, FLAGS_FIXED};
use emu::engine::{Engine, Limit};
use emu::exception::{pf_error, vector, Stop};
use emu::mem::GuestRam;
use emu::state::{attr, SegReg, Segment};
use emu::user::aspace::{AddressSpace, PROT_EXEC, PROT_READ, PROT_WRITE};
use emu::Cpu;
use emu::{Exit, Interp};

const PAGE: u64 = 0x1000;
/// Where the guest's LDT lives: a supervisor page in the kernel half, as Linux maps it.
const LDT_VA: u64 = 0xffff_ffff_ff58_0000;

/// Tier 0 with the harness's pages and descriptor tables.
pub struct GuestLegacy {
    cpu: Cpu,
    engine: Interp,
    /// Frames of the 16 data pages at `DATA`.
    data_frames: Vec<u64>,
    code_frame: u64,
}

impl GuestLegacy {
    /// # Errors
    /// Guest RAM cannot be allocated.
    pub fn new() -> std::io::Result<Self> {
        let mut ram = GuestRam::new(1 << 20)?;
        let mut aspace = AddressSpace::new(&mut ram);
        let mut cpu = Cpu::new(ram);
        cpu.config.user_mode_syscalls = true;
        emu::user::setup_long_mode_user(&mut cpu, aspace.pml4);
        let oom = || std::io::Error::other("guest RAM exhausted");
        let rw = PROT_READ | PROT_WRITE;
        aspace.add_region(&mut cpu.ram, DATA, DATA + 0x1_0000, rw);
        let mut data_frames = Vec::new();
        for p in 0..16 {
            data_frames.push(aspace.populate(&mut cpu.ram, DATA + p * PAGE, rw).ok_or_else(oom)?);
        }
        aspace.add_region(&mut cpu.ram, INSN_PAGE, INSN_PAGE + PAGE, PROT_READ | PROT_EXEC);
        let code_frame = aspace.populate(&mut cpu.ram, INSN_PAGE, PROT_READ | PROT_EXEC).ok_or_else(oom)?;
        let ldt_frame = aspace.map_supervisor_page(&mut cpu.ram, LDT_VA, true, false).ok_or_else(oom)?;
        for (i, &(base, limit, big, code)) in LDT.iter().enumerate() {
            cpu.ram.write::<emu::flags::W64>(ldt_frame + 8 * i as u64, ldt_descriptor(base, limit, big, code));
        }
        cpu.state.ldtr = Segment { base: LDT_VA, limit: (LDT.len() * 8 - 1) as u32, selector: 0x50, attr: 0x82 };
        Ok(GuestLegacy { cpu, engine: Interp::new(), data_frames, code_frame })
    }

    /// Runs `insn` in `mode` from `init`.
    pub fn run(&mut self, mode: Mode, insn: &[u8], init: &LegacyState) -> LegacyOutcome {
        let page = PAGE as usize;
        let cpu = &mut self.cpu;
        let buf_page = ((BUF - DATA) / PAGE) as usize;
        for (i, &f) in self.data_frames.iter().enumerate() {
            if let Some(dst) = cpu.ram.slice_mut(f, page) {
                match i.checked_sub(buf_page).and_then(|k| init.buf.get(k * page..(k + 1) * page)) {
                    Some(src) => dst.copy_from_slice(src),
                    None => dst.fill(0),
                }
            }
        }
        if let Some(code) = cpu.ram.slice_mut(self.code_frame, page) {
            code.fill(0xcc);
            code[page - insn.len()..].copy_from_slice(insn);
        }
        self.engine.flush_code(cpu);
        cpu.softmmu.flush_tlb();
        let at = INSN_PAGE + PAGE - insn.len() as u64;
        let s = &mut cpu.state;
        s.segs[SegReg::Cs as usize] = match mode {
            Mode::Bits32 => Segment {
                base: 0,
                limit: 0xffff_ffff,
                selector: SEL_CODE32,
                attr: 0xb | attr::S | 3 << attr::DPL_SHIFT | attr::P | attr::DB | attr::G,
            },
            Mode::Bits16 => Segment {
                base: CODE,
                limit: 0xffff,
                selector: SEL_CODE16,
                attr: 0xb | attr::S | 3 << attr::DPL_SHIFT | attr::P,
            },
        };
        for (i, &g) in init.gpr.iter().enumerate() {
            s.gpr[i] = g as u64;
        }
        s.rip = at - mode.cs_base();
        s.set_rflags((init.eflags as u64 & FLAGS_COMPARED) | FLAGS_FIXED);
        for (seg, &sel) in [SegReg::Es, SegReg::Ss, SegReg::Ds].into_iter().zip(init.sel.iter()) {
            if let Err(e) = cpu.load_sreg(seg, sel) {
                return LegacyOutcome::Fault {
                    vector: 0xff,
                    error_code: 0,
                    detail: format!("set-up load of {seg:?}={sel:#x}: {e:?}"),
                };
            }
        }
        let limit = Limit { poll_after: 64, ..Limit::NONE };
        // An instruction that opens an interrupt shadow (MOV SS, POP SS) ends its block with a
        // yield so the machine can hold off interrupts for one instruction; nothing is pending
        // here, so the run simply goes on to the fetch fault past the case's code.
        let mut exit = Exit::Stop(Stop::Yield);
        for _ in 0..4 {
            exit = match Engine::run(&mut self.engine, cpu, &limit) {
                Ok(exit) => exit,
                Err(e) => return LegacyOutcome::Fault { vector: 0xff, error_code: 0, detail: e.to_string() },
            };
            if !matches!(exit, Exit::Stop(Stop::Yield)) {
                break;
            }
        }
        let s = &cpu.state;
        let eip = s.rip;
        let linear = s.segs[SegReg::Cs as usize].base.wrapping_add(eip);
        match exit {
            Exit::Stop(Stop::Fault(f))
                if f.vector == vector::PF
                    && eip != at - mode.cs_base()
                    && cpu.fault_addr == linear
                    && f.error_code & pf_error::FETCH != 0 =>
            {
                let mut out = LegacyState::zeroed();
                for (i, g) in out.gpr.iter_mut().enumerate() {
                    *g = s.gpr[i] as u32;
                }
                out.eip = eip as u32;
                out.eflags = s.rflags() as u32;
                out.sel = [SegReg::Es, SegReg::Ss, SegReg::Ds].map(|r| s.segs[r as usize].selector);
                for k in 0..BUF_LEN / page {
                    if let Some(src) = cpu.ram.slice(self.data_frames[buf_page + k], page) {
                        out.buf[k * page..(k + 1) * page].copy_from_slice(src);
                    }
                }
                LegacyOutcome::Completed(Box::new(out))
            }
            Exit::Stop(Stop::Fault(f)) => LegacyOutcome::Fault {
                vector: f.vector,
                error_code: f.error_code,
                detail: format!(
                    "fault at eip {eip:#x} (instruction at {:#x}), cr2 {:#x}",
                    at - mode.cs_base(),
                    cpu.fault_addr
                ),
            },
            other => LegacyOutcome::Fault {
                vector: 0xff,
                error_code: 0,
                detail: format!("unexpected stop {other:?} at {eip:#x}"),
            },
        }
    }
}
