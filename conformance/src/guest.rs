//! Runs one instruction on the tier-0 interpreter (or on the JIT at threshold 1, so the
//! instruction runs as translated code: [`GuestRunner::jit`]), in 64-bit mode at CPL 3 on real page tables
//! (`emu::user::aspace::AddressSpace`, `emu::user::setup_long_mode_user`), with the same virtual
//! layout as the native run (`state.rs`).
//!
//! The instruction sits at the very end of the only mapped code page; whatever comes next
//! (the fall-through address or a branch target) is unmapped, so the run stops with an
//! instruction-fetch #PF at the address execution went to, with every register as the
//! instruction left it. A fault raised by the instruction itself stops with RIP at the
//! instruction. One `GuestRunner` is reused for many cases: the code cache is flushed and the
//! pages are rewritten each time.

use crate::state::X87;
use crate::state::{
    MachineState, Outcome, BUF, BUF_LEN, FALLTHROUGH, FLAGS_COMPARED, FLAGS_FIXED, INSN_PAGE, STATE_BLOCK,
};
use emu::engine::{Engine, Limit};
use emu::exception::{pf_error, vector, Stop};
use emu::mem::GuestRam;
use emu::state::{FpuState, X87Reg};
use emu::user::aspace::{AddressSpace, PROT_EXEC, PROT_READ, PROT_WRITE};
use emu::Cpu;
use emu::{Exit, Interp};

const PAGE: u64 = 0x1000;

/// An engine (tier 0 or the JIT) with the harness's pages mapped.
pub struct GuestRunner {
    cpu: emu::cpu::Cpu,
    engine: Box<dyn Engine>,
    buf_frames: [u64; 2],
    code_frame: u64,
}

impl GuestRunner {
    /// # Errors
    /// Guest RAM cannot be allocated.
    pub fn new() -> std::io::Result<Self> {
        Self::with_engine(Box::new(Interp::new()))
    }

    /// On the JIT with a threshold of 1: every case runs as translated code.
    ///
    /// # Errors
    /// Guest RAM or the JIT's code memory cannot be allocated, or the host has no JIT.
    pub fn jit() -> std::io::Result<Self> {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        {
            let opts = tiers::JitOptions { threshold: 1, code_bytes: 4 << 20, inline: true };
            let (engine, _) = tiers::new_jit(opts).map_err(std::io::Error::other)?;
            Self::with_engine(engine)
        }
        #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
        {
            Err(std::io::Error::other("no JIT on this host"))
        }
    }

    /// On `engine`.
    ///
    /// # Errors
    /// Guest RAM cannot be allocated.
    pub fn with_engine(engine: Box<dyn Engine>) -> std::io::Result<Self> {
        let mut ram = GuestRam::new(1 << 20)?;
        let mut aspace = AddressSpace::new(&mut ram);
        let mut cpu = Cpu::new(ram);
        cpu.config.user_mode_syscalls = true;
        emu::user::setup_long_mode_user(&mut cpu, aspace.pml4);
        let rw = PROT_READ | PROT_WRITE;
        aspace.add_region(&mut cpu.ram, BUF, BUF + BUF_LEN as u64, rw);
        aspace.add_region(&mut cpu.ram, INSN_PAGE, INSN_PAGE + PAGE, PROT_READ | PROT_EXEC);
        let oom = || std::io::Error::other("guest RAM exhausted");
        let b0 = aspace.populate(&mut cpu.ram, BUF, rw).ok_or_else(oom)?;
        let b1 = aspace.populate(&mut cpu.ram, BUF + PAGE, rw).ok_or_else(oom)?;
        let code_frame = aspace.populate(&mut cpu.ram, INSN_PAGE, PROT_READ | PROT_EXEC).ok_or_else(oom)?;
        Ok(GuestRunner { cpu, engine, buf_frames: [b0, b1], code_frame })
    }

    /// Runs `insn` from `init`.
    pub fn run(&mut self, insn: &[u8], init: &MachineState) -> Outcome {
        let at = FALLTHROUGH - insn.len() as u64;
        let cpu = &mut self.cpu;
        let page = PAGE as usize;
        for (i, &f) in self.buf_frames.iter().enumerate() {
            if let (Some(dst), Some(src)) = (cpu.ram.slice_mut(f, page), init.buf.get(i * page..(i + 1) * page)) {
                dst.copy_from_slice(src);
            }
        }
        if let Some(code) = cpu.ram.slice_mut(self.code_frame, page) {
            code.fill(0xcc);
            code[page - insn.len()..].copy_from_slice(insn);
        }
        self.engine.flush_code(&mut self.cpu);
        let cpu = &mut self.cpu;
        cpu.softmmu.flush_tlb();
        let s = &mut cpu.state;
        s.gpr = init.gpr;
        s.gpr[15] = STATE_BLOCK;
        s.rip = at;
        s.set_rflags((init.rflags & FLAGS_COMPARED) | FLAGS_FIXED);
        s.xmm = init.xmm;
        s.mxcsr = init.mxcsr;
        s.fpu = fpu_state(&init.x87);
        // At most a few blocks: an instruction that branches to itself stops too.
        let limit = Limit { poll_after: 64, ..Limit::NONE };
        let exit = match self.engine.run(&mut self.cpu, &limit) {
            Ok(exit) => exit,
            Err(e) => {
                let state = Box::new(MachineState::zeroed());
                return Outcome::Fault { vector: 0xff, error_code: 0, detail: e.to_string(), state };
            }
        };
        let cpu = &mut self.cpu;
        let rip = cpu.state.rip;
        let mut st = MachineState::zeroed();
        st.gpr = cpu.state.gpr;
        st.rip = rip;
        st.rflags = cpu.state.rflags();
        st.xmm = cpu.state.xmm;
        st.mxcsr = cpu.state.mxcsr;
        st.x87 = x87_of(&cpu.state.fpu);
        for (i, &f) in self.buf_frames.iter().enumerate() {
            if let Some(src) = cpu.ram.slice(f, page) {
                st.buf[i * page..(i + 1) * page].copy_from_slice(src);
            }
        }
        match exit {
            Exit::Stop(Stop::Fault(f))
                if f.vector == vector::PF
                    && rip != at
                    && cpu.fault_addr == rip
                    && f.error_code & pf_error::FETCH != 0 =>
            {
                Outcome::Completed(Box::new(st))
            }
            Exit::Stop(Stop::Fault(f)) => Outcome::Fault {
                vector: f.vector,
                error_code: f.error_code,
                detail: format!("fault at rip {rip:#x} (instruction at {at:#x}), cr2 {:#x}", cpu.fault_addr),
                state: Box::new(st),
            },
            other => Outcome::Fault {
                vector: 0xff,
                error_code: 0,
                detail: format!("unexpected stop {other:?} at {rip:#x}"),
                state: Box::new(st),
            },
        }
    }
}

/// The full tag of a non-empty register from its contents, as FXRSTOR reconstructs it (SDM
/// Vol. 1, 10.5.1.1): 00 valid, 01 zero, 10 special (NaN, infinity, denormal, unnormal).
fn full_tag(signif: u64, sign_exp: u16) -> u16 {
    let exp = sign_exp & 0x7fff;
    if exp == 0 && signif == 0 {
        1
    } else if exp == 0x7fff || exp == 0 || signif >> 63 == 0 {
        2
    } else {
        0
    }
}

/// `X87` (stack order, abridged tags) as tier 0 keeps it (physical order, full tags).
fn fpu_state(x: &X87) -> FpuState {
    let mut f = FpuState { fcw: x.fcw, fsw: x.fsw, ftw: 0, ..FpuState::default() };
    let top = x.top();
    for (i, &(signif, sign_exp)) in x.st.iter().enumerate() {
        let p = (top + i) & 7;
        f.regs[p] = X87Reg { signif, sign_exp, _pad: [0; 3] };
        let tag = if x.tag >> p & 1 != 0 { full_tag(signif, sign_exp) } else { 3 };
        f.ftw |= tag << (2 * p);
    }
    f
}

/// Tier 0's x87 state in FXSAVE form.
fn x87_of(f: &FpuState) -> X87 {
    let top = (f.fsw >> 11 & 7) as usize;
    let mut x = X87 { fcw: f.fcw, fsw: f.fsw, tag: 0, st: [(0, 0); 8] };
    for p in 0..8 {
        if f.ftw >> (2 * p) & 3 != 3 {
            x.tag |= 1 << p;
        }
    }
    for (i, st) in x.st.iter_mut().enumerate() {
        let r = &f.regs[(top + i) & 7];
        *st = (r.signif, r.sign_exp);
    }
    x
}
