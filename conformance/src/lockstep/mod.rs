//! The lockstep differential: tier 0 against KVM, one instruction at a time (docs/ARCHITECTURE.md,
//! "How correctness is established": KVM single-stepping in lockstep with the interpreter finds
//! the first divergent instruction in a real boot).
//!
//! Two copies of the machine run side by side from the same state and memory: the machine's
//! own tier-0 CPU on its RAM with the real devices, and a KVM vCPU on a private copy of that
//! RAM (both execute stores, so they cannot share it). Each step is one round of the machine
//! loop with a limit of one instruction (`Machine::begin_step`, `Machine::step_instruction`:
//! the machine's own device polling, exit port, reset, interrupt delivery and halts):
//! 1. the machine polls its devices; an interrupt it delivers at this boundary is delivered to
//!    the KVM side too (tier 0's delivery code on each side's RAM, so that is not checked);
//! 2. the machine executes one instruction on tier 0 against the real bus, the harness
//!    recording every port/MMIO access (`io.rs`);
//! 3. KVM executes it under KVM_GUESTDBG_SINGLESTEP, its device accesses served from the
//!    recording and its writes checked against it;
//! 4. the states are compared (`diff.rs`), and the RAM pages KVM's dirty log says it wrote are
//!    compared byte for byte with tier 0's. Every `full_check_every` steps the whole RAM, the
//!    x87/SSE state and the MSRs are compared too, which catches a store only tier 0 made.
//!
//! Steps that are not compared, counted in the [`Summary`]: an instruction KVM's emulator
//! cannot run (an emulation failure: tier 0's code executes it on the KVM side's copy too);
//! RDTSC/RDTSCP/RDMSR(TSC), whose results tier 0's clock defines (copied to KVM); and on a
//! `kvm_pvm` host every CPL 3 instruction, because single-stepping does not trap at CPL 3
//! there: tier 0 runs such a stretch alone and KVM is reloaded from tier 0's state and RAM
//! when CPL 0 code comes back.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the session: set-up, the step loop, KVM stepping, resyncs, full checks |
//! | `io.rs` | recording tier 0's device accesses and replaying them to KVM |
//! | `diff.rs` | state comparison, disassembly, state dumps |
//! | `memory.rs` | the RAM copy, page and whole-RAM comparisons |
//! | `exclude.rs` | known KVM-emulator deviations, each with its reason |
//! | `report.rs` | configuration, divergence report, summary |
//! | `boot.rs` | a deterministic machine with a kernel loaded |
//! | `jit.rs` | the JIT against tier 0: the same guest run on both, compared at boundaries |
//!
//! Left out: checking interrupt and exception delivery on KVM (delivery is tier 0's code on
//! both sides), the debug registers, and KVM's in-kernel devices (none are used).

pub mod boot;
pub mod diff;
pub mod exclude;
pub mod io;
pub mod jit;
mod memory;
pub mod report;

pub use report::{Config, Divergence, End, Summary};

use diff::{disassemble, dump, state_diff, Extent};
use emu::cpu::Cpu;
use emu::machine::board::BoardBus;
use emu::machine::step::StepStart;
use emu::machine::{Machine, RunEnd};
use emu::mem::GuestRam;
use emu::state::{rflags, CpuState};
use emu::system::Event;
use emu::{Exit, Interp};
use iced_x86::{Instruction, Mnemonic};
use io::{IoLog, RecordingBus, ReplayBus};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;
use tiers::kvm::{convert, KvmVm, VmExit};

/// Why the lockstep could not run (not a divergence: a host or set-up problem).
#[derive(Debug)]
pub enum LockstepError {
    /// KVM refused something (the message names the ioctl).
    Kvm(tiers::kvm::KvmError),
    /// Setting up the machine or the RAM copy failed.
    Setup(String),
    /// The machine refused to step (tier 0 is not its active engine).
    Machine(emu::engine::EngineError),
}

impl std::fmt::Display for LockstepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockstepError::Kvm(e) => write!(f, "KVM: {e}"),
            LockstepError::Setup(s) => write!(f, "{s}"),
            LockstepError::Machine(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LockstepError {}

impl From<emu::engine::EngineError> for LockstepError {
    fn from(e: emu::engine::EngineError) -> Self {
        LockstepError::Machine(e)
    }
}

impl From<tiers::kvm::KvmError> for LockstepError {
    fn from(e: tiers::kvm::KvmError) -> Self {
        LockstepError::Kvm(e)
    }
}

/// A lockstep session over a machine (see the module doc). While it lives, the machine's CPU
/// talks to its devices through the recording bus; dropping it puts the plain bus back.
pub struct Lockstep<'m> {
    m: &'m mut Machine,
    /// The KVM side's CPU state and RAM copy (its code runs only on emulation failures).
    side: Cpu,
    /// Tier 0 for the KVM side's copy (the instructions KVM cannot emulate).
    side_tier0: Interp,
    vm: KvmVm,
    log: Rc<RefCell<IoLog>>,
    pvm: bool,
    /// KVM's state and RAM must be reloaded from tier 0 before the next compared step.
    stale: bool,
    history: VecDeque<String>,
    summary: Summary,
    /// On kvm_pvm, whether CPL 3 instructions single-step through the guest's own RFLAGS.TF
    /// with KVM intercepting the #DB (None: not tried yet).
    tf_steps: Option<bool>,
    /// STRATA_TRACE_LOCKSTEP set: every KVM exit is printed to stderr.
    trace: bool,
    /// Self-test of the harness: (after step, what to change on KVM's side).
    corrupt: Option<(u64, Corruption)>,
}

/// A deliberate difference put into KVM's side, so tests can show the harness reports it.
#[derive(Clone, Copy, Debug)]
enum Corruption {
    Register { index: usize, xor: u64 },
    Memory { paddr: u64, value: u8 },
}

impl<'m> Lockstep<'m> {
    /// Copies the machine's CPU state and RAM into a new KVM VM with single-stepping on.
    ///
    /// # Errors
    /// KVM is not available or refused the state; the RAM copy could not be mapped.
    pub fn new(m: &'m mut Machine) -> Result<Lockstep<'m>, LockstepError> {
        let len = m.cpu.ram.len();
        let mut ram = GuestRam::new(len).map_err(|e| LockstepError::Setup(format!("RAM copy: {e}")))?;
        memory::copy_changed(&m.cpu.ram, &mut ram);
        let log = Rc::new(RefCell::new(IoLog::default()));
        let mut cpu = Cpu::new(ram);
        cpu.config = m.cpu.config;
        cpu.state = m.cpu.state.clone();
        cpu.bus = Box::new(ReplayBus(log.clone()));
        let mut vm = KvmVm::new(&cpu.ram)?;
        vm.enable_dirty_log()?;
        vm.set_state(&cpu)?;
        vm.set_single_step(true)?;
        vm.take_dirty_pages()?;
        m.cpu.bus = Box::new(RecordingBus { inner: Box::new(BoardBus(m.board.clone())), log: log.clone() });
        Ok(Lockstep {
            m,
            side: cpu,
            side_tier0: Interp::new(),
            vm,
            log,
            pvm: tiers::kvm::is_pvm(),
            stale: false,
            history: VecDeque::new(),
            corrupt: None,
            tf_steps: None,
            trace: std::env::var_os("STRATA_TRACE_LOCKSTEP").is_some(),
            summary: Summary {
                compared: 0,
                compared_cpl0: 0,
                compared_cpl3: 0,
                emulation_failures: 0,
                not_stepped: 0,
                time_copied: 0,
                interrupts: 0,
                undefined_flags_synced: 0,
                handler_merged: 0,
                excluded: Default::default(),
                full_checks: 0,
                resyncs: 0,
                end: End::Steps,
                divergence: None,
                seconds: 0.0,
            },
        })
    }

    /// Runs until `cfg.steps` instructions, a guest stop, or the first divergence.
    ///
    /// # Errors
    /// A KVM ioctl failed (a host problem, not a divergence).
    pub fn run(mut self, cfg: &Config) -> Result<Summary, LockstepError> {
        let start = Instant::now();
        let mut steps = 0u64;
        let mut since_check = 0u64;
        let end = loop {
            if steps >= cfg.steps {
                break End::Steps;
            }
            self.apply_corruption(steps)?;
            if let Some(end) = self.step(cfg)? {
                break end;
            }
            let ran = self.summary.compared + self.summary.emulation_failures + self.summary.not_stepped;
            if ran != steps {
                steps = ran;
                since_check += 1;
            }
            if since_check >= cfg.full_check_every {
                since_check = 0;
                if let Some(end) = self.full_check(cfg)? {
                    break end;
                }
            }
        };
        let end = if end != End::Diverged && !self.stale { self.full_check(cfg)?.unwrap_or(end) } else { end };
        self.summary.end = end;
        self.summary.seconds = start.elapsed().as_secs_f64();
        Ok(self.summary.clone())
    }

    /// Harness self-test: after `step` steps, XORs `xor` into GPR `index` on KVM's side only.
    pub fn self_test_corrupt_register(&mut self, step: u64, index: usize, xor: u64) {
        self.corrupt = Some((step, Corruption::Register { index: index & 15, xor }));
    }

    /// Harness self-test: after `step` steps, writes `value` at `paddr` in KVM's RAM only.
    pub fn self_test_corrupt_memory(&mut self, step: u64, paddr: u64, value: u8) {
        self.corrupt = Some((step, Corruption::Memory { paddr, value }));
    }

    /// Applies a pending self-test corruption once `steps` steps have run.
    fn apply_corruption(&mut self, steps: u64) -> Result<(), LockstepError> {
        let Some((at, c)) = self.corrupt else { return Ok(()) };
        if steps < at || self.stale {
            return Ok(());
        }
        self.corrupt = None;
        match c {
            Corruption::Register { index, xor } => {
                let mut r = self.vm.vcpu.get_regs().map_err(|e| tiers::kvm::KvmError::Ioctl("KVM_GET_REGS", e))?;
                let mut s = self.side.state.clone();
                convert::regs_into_state(&r, &mut s);
                s.gpr[index] ^= xor;
                r = convert::regs_from_state(&s);
                self.vm.vcpu.set_regs(&r).map_err(|e| tiers::kvm::KvmError::Ioctl("KVM_SET_REGS", e))?;
            }
            Corruption::Memory { paddr, value } => {
                if let Some(b) = self.side.ram.slice_mut(paddr, 1) {
                    b[0] = value;
                }
            }
        }
        Ok(())
    }

    /// One round of the machine loop with a limit of one instruction (`Machine::begin_step`:
    /// devices, interrupts, halts), then that instruction on both sides. `Some` ends the run.
    fn step(&mut self, cfg: &Config) -> Result<Option<End>, LockstepError> {
        let vector = match self.m.begin_step()? {
            StepStart::Ended(end) => return Ok(Some(end_of(end))),
            StepStart::Waited => return Ok(None),
            StepStart::Ready { interrupt } => interrupt,
        };
        if let Some(v) = vector {
            // The machine delivered it on tier 0 at this boundary; the KVM side takes the same
            // one here (through tier 0's delivery code on its own RAM, so that is not checked).
            self.summary.interrupts += 1;
            if !self.stale {
                self.vm.get_state(&mut self.side)?;
                if self.side.deliver(Event::External(v)).is_err() {
                    return Ok(Some(self.diverged(
                        cfg,
                        None,
                        &[],
                        &self.m.cpu.state.clone(),
                        vec!["KVM side: triple fault delivering the interrupt".into()],
                    )));
                }
                self.vm.set_state(&self.side)?;
            }
        }
        let before = self.m.cpu.state.clone();
        let (ins, bytes) = self.fetch_instruction();
        let text = ins.as_ref().map_or_else(|| "(fetch or decode faults)".to_string(), |i| disassemble(i, &bytes));
        let step_no = self.summary.compared + self.summary.emulation_failures + self.summary.not_stepped;
        self.history.push_back(format!("#{step_no} cpl{} {:#x}: {text}", before.cpl, before.rip));
        if self.history.len() > cfg.history + 1 {
            self.history.pop_front();
        }
        let tf_step = before.cpl == 3 && self.pvm;
        if tf_step && self.tf_steps == Some(false) {
            // Not steppable here: tier 0 runs the instruction alone.
            self.log.borrow_mut().clear();
            let e = self.m.step_instruction();
            self.summary.not_stepped += 1;
            self.stale = true;
            return Ok(shut_down(e));
        }
        if self.stale {
            self.resync()?;
        }
        self.log.borrow_mut().clear();
        let retired = self.m.cpu.retired;
        let e = self.m.step_instruction();
        let mut end = shut_down(e);
        // A fault retires nothing: tier 0 delivered it through the IDT.
        let faulted = e.is_none() && self.m.cpu.retired == retired;
        let t_rip = self.m.cpu.state.rip;
        if self.pvm && before.cpl == 0 && self.m.cpu.state.cpl == 3 {
            // A return to CPL 3 (IRET, SYSRET): kvm_pvm does not trap after it, KVM would run on
            // in user mode. Tier 0 ran it alone; KVM is reloaded at the next compared step.
            self.summary.not_stepped += 1;
            self.stale = true;
            return Ok(end);
        }
        if tf_step {
            self.set_guest_tf(true)?;
        }
        let kvm = self.kvm_step(&before, ins.as_ref(), t_rip)?;
        if tf_step {
            self.set_guest_tf(false)?;
            let r = self.vm.vcpu.get_regs().map_err(|e| tiers::kvm::KvmError::Ioctl("KVM_GET_REGS", e))?;
            if self.tf_steps.is_none() {
                let works = kvm == VmExit::Debug && r.rip == t_rip;
                eprintln!(
                    "lockstep: CPL3 stepping through the guest's TF on kvm_pvm: {}",
                    if works { "works" } else { "does not trap; CPL3 runs on tier 0 alone" }
                );
                self.tf_steps = Some(works);
                if !works {
                    self.summary.not_stepped += 1;
                    self.stale = true;
                    return Ok(end);
                }
            }
        }
        // The instruction tier 0 stepped first (the faulting one, if KVM merged two).
        let first_ins = ins;
        let mut ins = ins;
        let mut bytes = bytes;
        if kvm == VmExit::Debug && end.is_none() && !self.m.is_halted() {
            // KVM's single-step trap sometimes comes one instruction late: after delivering a
            // fault (it runs the handler's first instruction), after IRET (the instruction
            // returned to), after SWAPGS on kvm_pvm. When KVM's RIP is not tier 0's, tier 0 runs
            // one more instruction and the two compare after it (a real divergence still shows
            // there, with both instructions in the history).
            let r = self.vm.vcpu.get_regs().map_err(|e| tiers::kvm::KvmError::Ioctl("KVM_GET_REGS", e))?;
            if r.rip != t_rip {
                let (hins, hbytes) = self.fetch_instruction();
                let text = hins.as_ref().map_or_else(|| "(fetch faults)".to_string(), |i| disassemble(i, &hbytes));
                self.history.push_back(format!("{MERGED}{t_rip:#x}: {text}"));
                let e2 = self.m.step_instruction();
                self.summary.handler_merged += 1;
                end = shut_down(e2);
                (ins, bytes) = (hins, hbytes);
            }
        }
        let mut diffs = Vec::new();
        // Differences no known KVM deviation can explain.
        let mut other = Vec::new();
        match kvm {
            VmExit::EmulationFailure => {
                self.summary.emulation_failures += 1;
                self.vm.get_state(&mut self.side)?;
                self.side.softmmu.flush_tlb();
                self.log.borrow_mut().cursor = 0;
                let _ = self.side_tier0.step(&mut self.side);
                self.vm.set_state(&self.side)?;
            }
            VmExit::Shutdown if end == Some(End::TripleFault) => return Ok(end),
            VmExit::Shutdown => other.push("KVM shut down (triple fault); tier 0 did not".to_string()),
            _ => {
                self.summary.compared += 1;
                if before.cpl == 3 {
                    self.summary.compared_cpl3 += 1;
                } else {
                    self.summary.compared_cpl0 += 1;
                }
                let fpu = ins.as_ref().is_some_and(touches_fpu);
                self.read_kvm_state(fpu)?;
                if ins.as_ref().is_some_and(|i| reads_tsc(i, &before)) {
                    self.copy_tsc_result(ins.as_ref().map(Instruction::mnemonic))?;
                }
                diffs = state_diff(ins.as_ref(), &self.m.cpu.state, &self.side.state, Extent { fpu, msrs: false });
                if diffs.is_empty() {
                    self.sync_undefined_flags()?;
                }
            }
        }
        if end == Some(End::TripleFault) && kvm != VmExit::Shutdown {
            other.push(format!("tier 0 shut down (triple fault); KVM exit {kvm:?}"));
        }
        {
            let log = self.log.borrow();
            if let Some(m) = &log.mismatch {
                other.push(format!("device access: {m}"));
            }
            if kvm != VmExit::EmulationFailure && !log.unconsumed().is_empty() {
                other.push(format!("device access: tier 0 made {:x?}, KVM did not", log.unconsumed()));
            }
        }
        let mut pages = Vec::new();
        let mut mem_diffs = Vec::new();
        for pa in self.vm.take_dirty_pages()? {
            let (t, k) = (&self.m.cpu.ram, &self.side.ram);
            if let (Some(a), Some(b)) = (t.slice(pa, 4096), k.slice(pa, 4096)) {
                if a != b {
                    memory::page_diff(t, k, pa, &mut mem_diffs);
                    pages.push((pa, a.to_vec(), b.to_vec()));
                }
            }
        }
        if diffs.is_empty() && mem_diffs.is_empty() {
            return Ok(end);
        }
        if other.is_empty() {
            let facts = exclude::StepFacts {
                ins: first_ins.as_ref(),
                before: &before,
                faulted,
                reg_diffs: &diffs,
                tier0: &self.m.cpu.state,
                kvm: &self.side.state,
                pages: &pages,
            };
            if let Some(dev) = exclude::classify(&facts) {
                *self.summary.excluded.entry(dev.name).or_insert(0) += 1;
                self.side.state = self.m.cpu.state.clone();
                for (pa, t, _) in &pages {
                    if let Some(dst) = self.side.ram.slice_mut(*pa, t.len()) {
                        dst.copy_from_slice(t);
                    }
                }
                self.vm.set_state(&self.side)?;
                return Ok(end);
            }
        }
        diffs.extend(other);
        diffs.extend(mem_diffs);
        Ok(Some(self.diverged(cfg, ins.as_ref(), &bytes, &before, diffs)))
    }

    /// Runs KVM until it completed the instruction tier 0 just ran (device exits are served on
    /// the way; a REP string instruction single-steps per iteration, tier 0 runs it whole).
    fn kvm_step(&mut self, before: &CpuState, ins: Option<&Instruction>, t_rip: u64) -> Result<VmExit, LockstepError> {
        let rep = ins.is_some_and(|i| i.has_rep_prefix() || i.has_repe_prefix() || i.has_repne_prefix());
        loop {
            let exit = self.vm.run(&self.side.ram, self.side.bus.as_mut())?;
            if self.trace {
                let r = self.vm.vcpu.get_regs().map(|r| r.rip).unwrap_or(0);
                eprintln!("kvm exit {exit:?} rip {r:#x} (before {:#x})", before.rip);
            }
            match exit {
                VmExit::Io => {
                    // A port write exits with RIP already past the instruction (the completion on
                    // the next entry has nothing left to do, and that entry runs the next
                    // instruction before the single-step trap): the step is done here.
                    let r = self.vm.vcpu.get_regs().map_err(|e| tiers::kvm::KvmError::Ioctl("KVM_GET_REGS", e))?;
                    if r.rip != before.rip {
                        return Ok(VmExit::Debug);
                    }
                }
                VmExit::Interrupted | VmExit::InterruptWindow => continue,
                VmExit::Debug if rep && t_rip != before.rip => {
                    let r = self.vm.vcpu.get_regs().map_err(|e| tiers::kvm::KvmError::Ioctl("KVM_GET_REGS", e))?;
                    if r.rip == before.rip {
                        continue;
                    }
                    return Ok(exit);
                }
                other => return Ok(other),
            }
        }
    }

    /// Sets or clears RFLAGS.TF in KVM's guest state, with #DB intercepted (KVM_GUESTDBG_USE_HW_BP
    /// with no breakpoint armed), so a CPL 3 instruction traps after it completes.
    fn set_guest_tf(&mut self, on: bool) -> Result<(), LockstepError> {
        use tiers::kvm::KvmError::Ioctl;
        let mut r = self.vm.vcpu.get_regs().map_err(|e| Ioctl("KVM_GET_REGS", e))?;
        r.rflags = if on { r.rflags | rflags::TF } else { r.rflags & !rflags::TF };
        self.vm.vcpu.set_regs(&r).map_err(|e| Ioctl("KVM_SET_REGS", e))?;
        let control = kvm_bindings::KVM_GUESTDBG_ENABLE
            | kvm_bindings::KVM_GUESTDBG_SINGLESTEP
            | if on { kvm_bindings::KVM_GUESTDBG_USE_HW_BP } else { 0 };
        let dbg = kvm_bindings::kvm_guest_debug { control, ..Default::default() };
        self.vm.vcpu.set_guest_debug(&dbg).map_err(|e| Ioctl("KVM_SET_GUEST_DEBUG", e))?;
        Ok(())
    }

    /// Reads KVM's registers, segments and control registers (and with `fpu` the x87/SSE
    /// state) into the side CPU: three ioctls instead of `get_state`'s twenty.
    fn read_kvm_state(&mut self, fpu: bool) -> Result<(), LockstepError> {
        use tiers::kvm::KvmError::Ioctl;
        let regs = self.vm.vcpu.get_regs().map_err(|e| Ioctl("KVM_GET_REGS", e))?;
        let sregs = self.vm.vcpu.get_sregs().map_err(|e| Ioctl("KVM_GET_SREGS", e))?;
        let s = &mut self.side.state;
        let tr_unset = s.tr.attr & emu::state::attr::P == 0;
        convert::regs_into_state(&regs, s);
        convert::sregs_into_state(&sregs, s, tr_unset);
        if fpu {
            let x = self.vm.vcpu.get_xsave().map_err(|e| Ioctl("KVM_GET_XSAVE", e))?;
            let _ = emu::interp::sse::fxsave::load_image(&mut self.side, &convert::image_from_xsave(&x), true);
        }
        Ok(())
    }

    /// After a step that agreed, flags the SDM leaves undefined may still differ; KVM takes tier
    /// 0's, so a later instruction that leaves them alone does not show the difference again.
    fn sync_undefined_flags(&mut self) -> Result<(), LockstepError> {
        const ARITH: u64 = 0x8d5; // OF SF ZF AF PF CF
        let (t, k) = (self.m.cpu.state.rflags(), self.side.state.rflags());
        if (t ^ k) & ARITH == 0 {
            return Ok(());
        }
        self.summary.undefined_flags_synced += 1;
        let s = &mut self.side.state;
        s.set_rflags((k & !ARITH) | (t & ARITH));
        self.vm
            .vcpu
            .set_regs(&convert::regs_from_state(s))
            .map_err(|e| tiers::kvm::KvmError::Ioctl("KVM_SET_REGS", e))?;
        Ok(())
    }

    /// RDTSC and friends: tier 0's clock defines the value; KVM gets tier 0's result.
    fn copy_tsc_result(&mut self, m: Option<Mnemonic>) -> Result<(), LockstepError> {
        let t = &self.m.cpu.state;
        let s = &mut self.side.state;
        s.gpr[0] = t.gpr[0];
        s.gpr[2] = t.gpr[2];
        if m == Some(Mnemonic::Rdtscp) {
            s.gpr[1] = t.gpr[1];
        }
        self.vm
            .vcpu
            .set_regs(&convert::regs_from_state(s))
            .map_err(|e| tiers::kvm::KvmError::Ioctl("KVM_SET_REGS", e))?;
        self.summary.time_copied += 1;
        Ok(())
    }

    /// The instruction at tier 0's RIP, fetched the way tier 0 fetches it (a fetch that faults
    /// gives `None`; the step then delivers that fault).
    fn fetch_instruction(&mut self) -> (Option<Instruction>, Vec<u8>) {
        let cpu = &mut self.m.cpu;
        let s = &cpu.state;
        let bits = s.code_bits();
        let cs_base = if bits == 64 { 0 } else { s.segs[1].base };
        let rip = s.rip;
        let la = rip.wrapping_add(cs_base);
        let mut bytes = Vec::with_capacity(15);
        let Ok(pa) = cpu.translate_fetch(la) else { return (None, bytes) };
        let first = (0x1000 - (la & 0xfff)).min(15) as usize;
        bytes.extend_from_slice(cpu.ram.slice(pa, first).unwrap_or(&[]));
        let mut ins = diff::decode(&bytes, bits, rip);
        if ins.is_none() && first < 15 {
            if let Ok(pa2) = cpu.translate_fetch(la.wrapping_add(first as u64)) {
                bytes.extend_from_slice(cpu.ram.slice(pa2, 15 - first).unwrap_or(&[]));
                ins = diff::decode(&bytes, bits, rip);
            }
        }
        (ins, bytes)
    }

    /// Compares all of RAM, the x87/SSE state and the MSRs. A difference here that the per-step
    /// checks missed is a store only tier 0 made (KVM's dirty log covers KVM's).
    fn full_check(&mut self, cfg: &Config) -> Result<Option<End>, LockstepError> {
        if self.stale {
            return Ok(None);
        }
        self.summary.full_checks += 1;
        self.vm.get_state(&mut self.side)?;
        let t = &self.m.cpu.state;
        let mut diffs = state_diff(None, t, &self.side.state, Extent { fpu: true, msrs: false });
        let (a, b) = (convert::msrs_from_state(t), convert::msrs_from_state(&self.side.state));
        for ((index, x), y) in convert::MOVED_MSRS.iter().zip(a).zip(b) {
            if x != y {
                diffs.push(format!("msr {index:#x}: tier0 {x:#x}  kvm {y:#x}"));
            }
        }
        memory::ram_diff(&self.m.cpu.ram, &self.side.ram, &mut diffs);
        if diffs.is_empty() {
            return Ok(None);
        }
        diffs.insert(
            0,
            format!("(full check: since the previous full check, {} steps ago at most)", cfg.full_check_every),
        );
        let before = self.m.cpu.state.clone();
        Ok(Some(self.diverged(cfg, None, &[], &before, diffs)))
    }

    /// Reloads KVM from tier 0 (after instructions KVM could not step): state and changed RAM.
    fn resync(&mut self) -> Result<(), LockstepError> {
        self.summary.resyncs += 1;
        memory::copy_changed(&self.m.cpu.ram, &mut self.side.ram);
        self.side.state = self.m.cpu.state.clone();
        self.side.softmmu.flush_tlb();
        self.vm.set_state(&self.side)?;
        self.vm.take_dirty_pages()?;
        self.stale = false;
        Ok(())
    }

    fn diverged(
        &mut self,
        cfg: &Config,
        ins: Option<&Instruction>,
        bytes: &[u8],
        before: &CpuState,
        diffs: Vec<String>,
    ) -> End {
        let step =
            (self.summary.compared + self.summary.emulation_failures + self.summary.not_stepped).saturating_sub(1);
        let mut history: Vec<String> = self.history.iter().cloned().collect();
        let mut instruction = ins.map_or_else(|| "(not one instruction)".into(), |i| disassemble(i, bytes));
        if history.last().is_some_and(|h| h.starts_with(MERGED)) {
            // KVM ran two instructions in that step: name both.
            let second = history.pop().unwrap_or_default();
            let first = history.pop().unwrap_or_default();
            instruction = format!("{first}\n{second}");
        } else {
            history.pop(); // the divergent instruction itself
        }
        let keep = history.len().saturating_sub(cfg.history);
        self.summary.divergence = Some(Divergence {
            step,
            rip: before.rip,
            instruction,
            diffs,
            history: history.split_off(keep),
            before: dump(before),
            tier0: dump(&self.m.cpu.state),
            kvm: dump(&self.side.state),
        });
        End::Diverged
    }
}

impl Drop for Lockstep<'_> {
    fn drop(&mut self) {
        self.m.cpu.bus = Box::new(BoardBus(self.m.board.clone()));
    }
}

/// How a machine round that ended the run ends the lockstep.
fn end_of(end: RunEnd) -> End {
    match end {
        RunEnd::ExitPort(status) => End::ExitPort(status),
        // ACPI S5 is a power-off as much as HLT with interrupts off is.
        RunEnd::Halted | RunEnd::PowerOff => End::Halted,
        RunEnd::Reset => End::Reset,
        RunEnd::TripleFault => End::TripleFault,
        // `begin_step` ends no other way; a watch or limit is the lockstep's own step count.
        RunEnd::Limit | RunEnd::Watch | RunEnd::EngineError => End::Steps,
    }
}

/// Tier 0's step shut the CPU down (halts and interrupt shadows the machine keeps itself).
fn shut_down(e: Option<Exit>) -> Option<End> {
    (e == Some(Exit::TripleFault)).then_some(End::TripleFault)
}

/// History prefix of an instruction KVM ran in the same single step as the one before.
const MERGED: &str = "   + (KVM's same step) ";

/// Whether the instruction reads or writes x87/SSE state (then that state is compared too).
fn touches_fpu(ins: &Instruction) -> bool {
    use iced_x86::CpuidFeature as F;
    ins.cpuid_features().iter().any(|f| {
        matches!(
            f,
            F::FPU
                | F::FPU287
                | F::FPU387
                | F::FXSR
                | F::SSE
                | F::SSE2
                | F::SSE3
                | F::SSSE3
                | F::SSE4_1
                | F::SSE4_2
                | F::MMX
        )
    })
}

/// Whether the instruction reads the time-stamp counter (RDTSC, RDTSCP, RDMSR of IA32_TSC).
fn reads_tsc(ins: &Instruction, before: &CpuState) -> bool {
    match ins.mnemonic() {
        Mnemonic::Rdtsc | Mnemonic::Rdtscp => true,
        Mnemonic::Rdmsr => before.gpr[1] as u32 == convert::msr::TSC,
        _ => false,
    }
}

/// Whether KVM can run here at all (for tests and the CLI to skip with a message).
pub fn kvm_available() -> Result<(), String> {
    tiers::kvm_available().map_err(|e| e.to_string())
}
