//! `strata user --tier kvm`: a Linux user-mode process run natively at CPL3 inside a KVM guest,
//! with the same kernel (system calls, demand paging, signals: `emu::user`) as tier 0.
//!
//! The process's address space is the one `emu::user::aspace` keeps in guest RAM; KVM runs on
//! those page tables and that RAM directly. `supervisor.rs` adds an IDT, a TSS and one-`out`
//! stubs, so SYSCALL and every exception leave KVM as a port write from a known RIP (at CPL0;
//! SYSCALL's at CPL3 on `kvm_pvm`, which does not change privilege for it). The
//! engine ([`UserEngine`], an `emu::engine::Engine`) then rebuilds the user state at the
//! instruction boundary (for SYSCALL: RIP = RCX, RFLAGS = R11; for an exception: the frame the
//! CPU pushed on the IST stack, CR2 for #PF) and returns tier 0's own exit (`Stop::Syscall`,
//! `Stop::Fault`, ...) to the one process loop, `Process::run_on`; `load_state` resumes at CPL3
//! by loading the (possibly changed) user state into the vCPU; no SYSRET/IRETQ runs.
//!
//! Translations: adding a mapping needs nothing (KVM walks the guest tables again on a miss),
//! but the runner changes and removes page-table entries from the host side, where KVM's
//! write tracking of guest page tables cannot see it; whenever a present entry changed
//! (`aspace.present_changes`: munmap, mprotect, mremap, madvise, brk shrink, MAP_FIXED over
//! touched pages) the VM's translations are dropped (`KvmVm::flush_translations`) before it
//! runs again. The process loop reports both through `Engine::page_tables_changed`, with the
//! top of the frames in use: the RAM slot registered with KVM covers only those (re-registering
//! it, which is how translations are dropped, costs in proportion to its size) and grows in
//! doublings.
//!
//! The x87/SSE state moves between KVM and `CpuState` only around what reads or writes it:
//! `run` hands out the general and segment registers, `store_state` adds the FPU state (the
//! process loop asks for it for rt_sigreturn, faults, and exits of a process that has signal
//! handlers, whose signal frames hold it), and `load_state` writes it back only if it was
//! handed out and changed; segment registers go back only when they changed or the vCPU is in
//! a CPL0 stub. An instruction KVM cannot emulate (`Exit::Unemulated`) is run by tier 0 after a
//! full `store_state`; the next `load_state` then loads everything.
//! ITIMER_REAL: while a timer is armed (a `Limit` with a deadline) a kick thread ends KVM_RUN
//! every millisecond. Registers travel in kvm_run (KVM_CAP_SYNC_REGS) where KVM offers it.
//!
//! Cost on `kvm_pvm` (no VMX/SVM, here inside another VM): every exit is a few world switches,
//! ~100 us of CPU, so system calls are far slower than under tier 0 or QEMU while code between
//! them runs natively. Demand paging brings in [`FAULT_AROUND`] pages per fault
//! (`Process::fault_around`), and the page tables are written with Accessed/Dirty already set
//! so KVM's shadow MMU fills 8 entries per miss.
//!
//! Left out: single-stepping (TF) beyond reporting #DB as tier 0 does; compatibility-mode
//! system calls are served with the 64-bit table, as tier 0 does. Known deviation: on
//! `kvm_pvm` a jump to the SYSCALL stub page right after a real SYSCALL (RCX still pointing
//! past it) is taken for another system call instead of a SIGSEGV.

use super::kick::Kicker;
use super::supervisor::{self, Supervisor, COMPAT_SYSCALL_STUB, SYSCALL_STUB, USER32_CS, USER_CS};
use super::{convert, KvmError, KvmVm, VmExit};
use emu::cpu::{Cpu, NullBus};
use emu::engine::{Engine, EngineError, EngineKind, Exit, GuestDebug, GuestDebugKinds, Limit};
use emu::exception::{pf_error, vector, Fault, Stop};
use emu::interp::sse::fxsave;
use emu::state::{gpr, Segment};
use emu::user::Process;
use kvm_bindings::{kvm_regs, kvm_sregs, kvm_xsave};
use kvm_ioctls::{Cap, SyncReg};
use std::time::{Duration, Instant};

/// How often a running program is kicked out of KVM while an interval timer is armed.
const TIMER_KICK: Duration = Duration::from_millis(1);

/// The smallest RAM slot registered with KVM. Re-registering the slot (each translation flush)
/// costs in proportion to its size: ~7 ms for all of a 4 GiB RAM.
const MIN_SLOT: u64 = 64 << 20;

/// Pages brought in together on a demand-paging fault (see `Process::fault_around`).
pub const FAULT_AROUND: u64 = 64;

/// What the run cost, for `strata user --stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct UserStats {
    /// KVM_RUN returns.
    pub exits: u64,
    pub syscalls: u64,
    /// Exceptions, demand paging included.
    pub faults: u64,
    /// Translation flushes after page-table changes.
    pub flushes: u64,
    /// Times tier 0 took the state because KVM could not emulate an instruction.
    pub tier0_steps: u64,
}

/// A Linux user-mode process's CPU on KVM, as an [`Engine`].
pub struct UserEngine {
    vm: KvmVm,
    sup: Supervisor,
    /// Running while the process loop's limit has a deadline (an interval timer is armed).
    kicker: Option<Kicker>,
    /// Registers move through kvm_run (KVM_CAP_SYNC_REGS).
    sync: bool,
    /// STRATA_TRACE_KVM set: each supervisor exit is printed to stderr.
    trace: bool,
    /// The host's KVM is `kvm_pvm`: SYSCALL reaches its stub at CPL3.
    pvm: bool,
    pub stats: UserStats,
    /// The next `load_state` loads everything (at the start, and after a full `store_state`).
    load_all: bool,
    /// The last exit left the vCPU at CPL3 with the user's segments (SYSCALL on `kvm_pvm`, a
    /// kick), so they need loading only if the kernel changed them.
    at_cpl3: bool,
    /// The segment registers as the last exit handed them out.
    segs: [Segment; 6],
    /// The last exit was KVM's emulation failure: the vCPU holds the user state as it is.
    unemulated: bool,
    /// The FXSAVE image `store_state` put in `cpu.state` since the last exit, if it did.
    fpu_out: Option<[u8; fxsave::IMAGE]>,
    /// What a debugger armed (gdb: `strata user --tier kvm --gdb`).
    debug_armed: Option<GuestDebug>,
    /// What KVM_SET_GUEST_DEBUG does for CPL3 code here (probed on first use).
    debug_support: Option<GuestDebugKinds>,
    /// KVM's XSAVE area as `store_state` read it (the components beyond x87/SSE go back
    /// unchanged); kept to spare an allocation per round trip.
    xsave: Box<kvm_xsave>,
}

fn err(e: KvmError) -> EngineError {
    EngineError { engine: "kvm", message: e.to_string() }
}

impl UserEngine {
    /// A VM for process `p`: installs the supervisor (IDT, TSS, stubs) in its address space and
    /// registers the RAM its frames use; asks the process to fault around ([`FAULT_AROUND`]).
    /// The state is loaded by `Engine::load_state`.
    ///
    /// # Errors
    /// KVM is not available or refused the set-up; guest RAM is too small for the supervisor.
    pub fn new(p: &mut Process) -> Result<UserEngine, KvmError> {
        let cpu = &mut p.cpu;
        let sup = supervisor::install(&mut p.aspace, &mut cpu.ram, &mut cpu.state)
            .ok_or_else(|| KvmError::State("guest RAM exhausted setting up the supervisor".into()))?;
        let top = p.aspace.frame_top().max(MIN_SLOT);
        let mut vm = KvmVm::with_slot(&cpu.ram, top.next_power_of_two())?;
        // KVM_CAP_SYNC_REGS: registers travel in kvm_run instead of through their own ioctls.
        let sync = super::open().is_ok_and(|k| k.check_extension(Cap::SyncRegs));
        if sync {
            vm.vcpu.set_sync_valid_reg(SyncReg::Register);
            vm.vcpu.set_sync_valid_reg(SyncReg::SystemRegister);
        }
        p.fault_around_pages = FAULT_AROUND;
        Ok(UserEngine {
            vm,
            sup,
            kicker: None,
            sync,
            trace: std::env::var_os("STRATA_TRACE_KVM").is_some(),
            pvm: super::is_pvm(),
            stats: UserStats::default(),
            load_all: true,
            at_cpl3: false,
            segs: p.cpu.state.segs,
            unemulated: false,
            fpu_out: None,
            xsave: Box::default(),
            debug_armed: None,
            debug_support: None,
        })
    }
}

/// The RFLAGS bits R11 gives back after a system call: the arithmetic and user control flags
/// (CF PF AF ZF SF TF DF OF AC ID); IF is set, and IOPL, NT, RF and VM stay clear, so a jump to
/// the user-executable entry stub with a made-up R11 cannot raise IOPL.
const SYSRET_FLAGS: u64 = 0x24_0dd5;

/// The user state after SYSCALL: it saved the return RIP in RCX and RFLAGS in R11 (SDM Vol.
/// 2B, SYSCALL); the other registers are as the program left them.
fn st_syscall(cpu: &mut Cpu, regs: &kvm_regs) {
    let st = &mut cpu.state;
    st.rip = regs.rcx;
    st.set_rflags(regs.r11 & SYSRET_FLAGS | emu::state::rflags::IF | 2);
}

/// Reads user memory at `la` as the program could (its page tables, CPL3).
fn read_user(cpu: &mut Cpu, la: u64, buf: &mut [u8]) -> Option<()> {
    cpu.read_bytes(la, buf).ok()
}

/// Whether the instruction before `rcx` is SYSCALL (0F 05), as after a real one.
fn after_syscall(cpu: &mut Cpu, rcx: u64) -> bool {
    let mut b = [0u8; 2];
    read_user(cpu, rcx.wrapping_sub(2), &mut b).is_some() && b == [0x0f, 0x05]
}

impl Engine for UserEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Kvm
    }

    fn load_state(&mut self, cpu: &mut Cpu) -> Result<(), EngineError> {
        let st = &cpu.state;
        if self.load_all {
            self.load_all = false;
            self.fpu_out = None;
            let vcpu = &mut self.vm.vcpu;
            vcpu.clear_sync_dirty_reg(SyncReg::Register);
            vcpu.clear_sync_dirty_reg(SyncReg::SystemRegister);
            return self.vm.set_state(cpu).map_err(err);
        }
        // Loading sregs is the slow part of a round trip on `kvm_pvm`: skip it when the vCPU
        // is already at CPL3 with the segments the kernel left (SYSCALL there stays at CPL3).
        let load_sregs = !self.at_cpl3 || st.segs != self.segs;
        if self.sync {
            // Through kvm_run: KVM loads them at the next KVM_RUN, saving two ioctls (each a
            // vCPU load and put, which is most of a round trip's cost on `kvm_pvm`).
            let vcpu = &mut self.vm.vcpu;
            vcpu.sync_regs_mut().regs = convert::regs_from_state(st);
            vcpu.set_sync_dirty_reg(SyncReg::Register);
            if load_sregs {
                vcpu.sync_regs_mut().sregs = convert::sregs_from_state(st);
                vcpu.set_sync_dirty_reg(SyncReg::SystemRegister);
            }
        } else {
            if load_sregs {
                let sregs = convert::sregs_from_state(st);
                self.vm.vcpu.set_sregs(&sregs).map_err(|e| err(KvmError::Ioctl("KVM_SET_SREGS", e)))?;
            }
            let regs = convert::regs_from_state(st);
            self.vm.vcpu.set_regs(&regs).map_err(|e| err(KvmError::Ioctl("KVM_SET_REGS", e)))?;
        }
        if let Some(out) = self.fpu_out.take() {
            // Only when the kernel changed it (a signal frame was built or unwound).
            let image = fxsave::save_image(cpu, true);
            if image != out {
                convert::image_into_xsave(&image, &mut self.xsave);
                // SAFETY: this VM never enabled KVM_CAP_XSAVE2, so KVM_SET_XSAVE reads exactly
                // the 4 KiB `kvm_xsave` passed (the larger-buffer case the function is unsafe for).
                unsafe { self.vm.vcpu.set_xsave(&self.xsave) }.map_err(|e| err(KvmError::Ioctl("KVM_SET_XSAVE", e)))?;
            }
        }
        Ok(())
    }

    fn store_state(&mut self, cpu: &mut Cpu) -> Result<(), EngineError> {
        if self.unemulated {
            // The vCPU stopped at the user instruction itself: take all of it.
            self.unemulated = false;
            self.vm.get_state(cpu).map_err(err)?;
            self.load_all = true;
            if cpu.state.cpl != 3 {
                let rip = cpu.state.rip;
                return Err(err(KvmError::State(format!("KVM could not emulate supervisor code at {rip:#x}"))));
            }
            return Ok(());
        }
        if self.load_all || self.fpu_out.is_some() {
            return Ok(()); // `cpu.state` is already complete
        }
        // Through XSAVE, not KVM_GET_FPU/SET_FPU, which leave MXCSR out on some hosts.
        *self.xsave = self.vm.vcpu.get_xsave().map_err(|e| err(KvmError::Ioctl("KVM_GET_XSAVE", e)))?;
        // KVM's own XSAVE area: no reserved MXCSR bit can be set in it.
        let _ = fxsave::load_image(cpu, &convert::image_from_xsave(&self.xsave), true);
        self.fpu_out = Some(fxsave::save_image(cpu, true));
        Ok(())
    }

    fn run(&mut self, cpu: &mut Cpu, limit: &Limit) -> Result<Exit, EngineError> {
        let mut exit = self.run_user(cpu, limit).map_err(err)?;
        if let Some(debug) = &self.debug_armed {
            exit = debug_stop(debug, cpu, exit);
        }
        if exit != Exit::Unemulated {
            // The segments as handed out, for `load_state` to see whether the kernel changed them.
            self.segs = cpu.state.segs;
        }
        Ok(exit)
    }

    fn interrupt_ready(&self, _cpu: &Cpu) -> bool {
        false // a user-mode process takes no external interrupts
    }

    fn interrupts_enabled(&self, cpu: &Cpu) -> bool {
        cpu.state.rflags_other & emu::state::rflags::IF != 0
    }

    fn inject_interrupt(&mut self, _cpu: &mut Cpu, vector: u8) -> Result<Option<Exit>, EngineError> {
        Err(EngineError { engine: "kvm", message: format!("interrupt {vector:#x} for a user-mode process") })
    }

    fn flush_code(&mut self, _cpu: &mut Cpu) {
        // KVM fetches guest code from RAM afresh: there is nothing decoded to drop.
    }

    fn set_guest_debug(&mut self, debug: Option<&GuestDebug>) -> Result<bool, EngineError> {
        let Some(debug) = debug else {
            if self.debug_armed.take().is_some() {
                self.vm
                    .vcpu
                    .set_guest_debug(&Default::default())
                    .map_err(|e| err(KvmError::Ioctl("KVM_SET_GUEST_DEBUG", e)))?;
            }
            return Ok(true);
        };
        let Some(kinds) = self.guest_debug_kinds() else { return Ok(false) };
        if !debug.fits(&kinds) {
            return Ok(false);
        }
        // Registers waiting in kvm_run (KVM_CAP_SYNC_REGS) reach the vCPU only at the next
        // KVM_RUN, but KVM starts a step from the RIP the vCPU holds when debugging is armed
        // (it sets TF for that RIP): load them now through their own ioctls.
        if self.sync {
            let dirty = self.vm.vcpu.get_kvm_run().kvm_dirty_regs;
            let pending = self.vm.vcpu.sync_regs();
            if dirty & u64::from(kvm_bindings::KVM_SYNC_X86_SREGS) != 0 {
                self.vm.vcpu.set_sregs(&pending.sregs).map_err(|e| err(KvmError::Ioctl("KVM_SET_SREGS", e)))?;
            }
            if dirty & u64::from(kvm_bindings::KVM_SYNC_X86_REGS) != 0 {
                self.vm.vcpu.set_regs(&pending.regs).map_err(|e| err(KvmError::Ioctl("KVM_SET_REGS", e)))?;
            }
            self.vm.vcpu.clear_sync_dirty_reg(SyncReg::Register);
            self.vm.vcpu.clear_sync_dirty_reg(SyncReg::SystemRegister);
        }
        let request = super::guest_debug::request_for(debug);
        self.vm.vcpu.set_guest_debug(&request).map_err(|e| err(KvmError::Ioctl("KVM_SET_GUEST_DEBUG", e)))?;
        self.debug_armed = Some(debug.clone());
        Ok(true)
    }

    fn guest_debug_kinds(&mut self) -> Option<GuestDebugKinds> {
        if self.debug_support.is_none() {
            self.debug_support = probe_user_kinds().ok();
        }
        self.debug_support
    }

    fn page_tables_changed(&mut self, _cpu: &mut Cpu, removed: bool, frame_top: u64) -> Result<(), EngineError> {
        let len = self.vm.slot_len().max(MIN_SLOT);
        if removed || frame_top > len {
            // The slot grows in doublings as the process takes frames, so the re-adds that
            // growth costs stay few.
            let len = if frame_top > len { frame_top.next_power_of_two() } else { len };
            self.vm.flush_translations(len).map_err(err)?;
            self.stats.flushes += 1;
        }
        Ok(())
    }
}

impl UserEngine {
    /// Runs until an exit the process loop must see; `cpu.state` then holds the user state at
    /// that instruction boundary, except the FPU state (`store_state`) and, for
    /// `Exit::Unemulated`, everything (`store_state` takes it from the vCPU).
    fn run_user(&mut self, cpu: &mut Cpu, limit: &Limit) -> Result<Exit, KvmError> {
        self.arm_kicker(limit.deadline.is_some())?;
        loop {
            let exit = self.vm.run(&cpu.ram, &mut NullBus)?;
            self.stats.exits += 1;
            match exit {
                VmExit::Io => return self.on_port_write(cpu),
                VmExit::Debug if self.debug_armed.is_some() => {
                    // A debugger's stop in the program (a step or breakpoint inside a stub
                    // is passed over: the stub's own exit comes next).
                    let (regs, sregs) = self.regs()?;
                    if sregs.cs.dpl != 3 || (supervisor::BASE..supervisor::SYSCALL_VA + 0x1000).contains(&regs.rip) {
                        continue;
                    }
                    self.enter(cpu, &regs, &sregs, true);
                    if let Some(debug) = &self.debug_armed {
                        let (exception, dr6) = self.vm.last_debug;
                        debug.report(super::guest_debug::hit_of(exception, dr6));
                    }
                    return Ok(Exit::Poll);
                }
                VmExit::Interrupted | VmExit::InterruptWindow | VmExit::Debug => {
                    // A kick: only the timer needs the process loop, once its deadline passed.
                    if limit.deadline.is_none_or(|d| Instant::now() < d) {
                        continue;
                    }
                    let (regs, sregs) = self.regs()?;
                    if sregs.cs.dpl != 3 {
                        continue; // inside a stub: its exit comes next
                    }
                    self.enter(cpu, &regs, &sregs, true);
                    return Ok(Exit::Limit);
                }
                VmExit::Hlt => {
                    // HLT at CPL3 is #GP(0) on hardware; a HLT in a stub means one ran on.
                    let (regs, sregs) = self.regs()?;
                    if sregs.cs.dpl != 3 {
                        return Err(KvmError::State(format!("supervisor stub ran on to HLT at {:#x}", regs.rip)));
                    }
                    self.enter(cpu, &regs, &sregs, true);
                    cpu.state.rip = regs.rip.wrapping_sub(1);
                    return Ok(Exit::Stop(Stop::Fault(Fault::gp0())));
                }
                VmExit::Shutdown => return Ok(Exit::TripleFault),
                VmExit::EmulationFailure => {
                    self.stats.tier0_steps += 1;
                    self.unemulated = true;
                    self.fpu_out = None;
                    return Ok(Exit::Unemulated);
                }
            }
        }
    }

    /// Starts the kick thread while an interval timer is armed, and stops it after.
    fn arm_kicker(&mut self, timer: bool) -> Result<(), KvmError> {
        match (timer, self.kicker.is_some()) {
            (true, false) => {
                self.kicker = Some(Kicker::start(TIMER_KICK).map_err(|e| KvmError::Ioctl("signal handler", e))?)
            }
            (false, true) => self.kicker = None,
            _ => {}
        }
        Ok(())
    }

    fn regs(&mut self) -> Result<(kvm_regs, kvm_sregs), KvmError> {
        if self.sync {
            let s = self.vm.vcpu.sync_regs();
            return Ok((s.regs, s.sregs));
        }
        let regs = self.vm.vcpu.get_regs().map_err(|e| KvmError::Ioctl("KVM_GET_REGS", e))?;
        let sregs = self.vm.vcpu.get_sregs().map_err(|e| KvmError::Ioctl("KVM_GET_SREGS", e))?;
        Ok((regs, sregs))
    }

    /// Copies the vCPU's registers into the CPU state (the FPU comes in `store_state`) and
    /// notes where the vCPU is, for the next `load_state`.
    fn enter(&mut self, cpu: &mut Cpu, regs: &kvm_regs, sregs: &kvm_sregs, at_cpl3: bool) {
        let st = &mut cpu.state;
        convert::regs_into_state(regs, st);
        convert::sregs_into_state(sregs, st, false);
        self.at_cpl3 = at_cpl3;
        self.fpu_out = None;
    }

    /// A stub's `out`, or (on `kvm_pvm`, where CPL3 port I/O exits instead of faulting) the
    /// program's own IN/OUT.
    fn on_port_write(&mut self, cpu: &mut Cpu) -> Result<Exit, KvmError> {
        let (regs, sregs) = self.regs()?;
        if self.trace {
            eprintln!(
                "kvm-user: port exit rip {:#x} cs {:#x}/{} ss {:#x} rsp {:#x} rcx {:#x} r11 {:#x} cr2 {:#x}",
                regs.rip, sregs.cs.selector, sregs.cs.dpl, sregs.ss.selector, regs.rsp, regs.rcx, regs.r11, sregs.cr2
            );
        }
        let stub = supervisor::stub_at(regs.rip);
        let is_syscall_stub = matches!(stub, Some(s) if s == SYSCALL_STUB || s == COMPAT_SYSCALL_STUB);
        let Some(stub) = stub.filter(|_| sregs.cs.dpl == 0 || is_syscall_stub) else {
            // The program's IN/OUT: #GP(0) at the instruction, as IOPL 0 and no I/O bitmap
            // give on hardware.
            self.enter(cpu, &regs, &sregs, false);
            let start = port_insn_start(cpu, regs.rip);
            cpu.state.rip = start;
            self.stats.faults += 1;
            return Ok(Exit::Stop(Stop::Fault(Fault::gp0())));
        };
        // On `kvm_pvm` SYSCALL's stub runs at CPL3 with the user's segments: nothing to reload.
        self.enter(cpu, &regs, &sregs, is_syscall_stub && sregs.cs.dpl == 3);
        let exit = if is_syscall_stub && sregs.cs.dpl == 3 && !(self.pvm && after_syscall(cpu, regs.rcx)) {
            // The program jumped to the user-executable SYSCALL stub page itself (on a
            // hardware host a real SYSCALL arrives at CPL0): the fetch fault Linux would report
            // for a kernel address.
            self.at_cpl3 = false;
            let st = &mut cpu.state;
            st.rip = regs.rip & !(supervisor::STUB_SIZE - 1);
            cpu.fault_addr = st.rip;
            Exit::Stop(Stop::Fault(Fault::with_code(vector::PF, pf_error::PRESENT | pf_error::USER | pf_error::FETCH)))
        } else if is_syscall_stub {
            supervisor::to_user(&mut cpu.state, if stub == SYSCALL_STUB { USER_CS } else { USER32_CS });
            st_syscall(cpu, &regs);
            Exit::Stop(Stop::Syscall)
        } else {
            self.at_cpl3 = false;
            self.exception_exit(cpu, stub, &regs, &sregs)?
        };
        if exit == Exit::Stop(Stop::Syscall) {
            self.stats.syscalls += 1;
        } else {
            self.stats.faults += 1;
        }
        Ok(exit)
    }

    /// Rebuilds the user state from the frame exception `stub` pushed on the IST stack and
    /// returns the exit tier 0 would have produced for it.
    fn exception_exit(
        &mut self,
        cpu: &mut Cpu,
        stub: u64,
        regs: &kvm_regs,
        sregs: &kvm_sregs,
    ) -> Result<Exit, KvmError> {
        let v = stub as u8;
        if stub >= 32 {
            return Err(KvmError::State(format!("unexpected entry through IDT vector {stub}")));
        }
        let has_code = supervisor::pushes_error_code(v);
        let words = if has_code { 6 } else { 5 };
        if regs.rsp != supervisor::STACK_TOP - 8 * words {
            return Err(KvmError::State(format!(
                "vector {v}: exception frame not where expected (RSP {:#x})",
                regs.rsp
            )));
        }
        let mut frame = [0u64; 6];
        let base = self.sup.stack_pa + (regs.rsp - supervisor::STACK_VA);
        let ram = &cpu.ram;
        for (i, w) in frame.iter_mut().take(words as usize).enumerate() {
            let b = ram
                .slice(base + 8 * i as u64, 8)
                .ok_or_else(|| KvmError::State("exception frame outside RAM".into()))?;
            *w = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        }
        let (code, f) = if has_code { (frame[0], &frame[1..]) } else { (0, &frame[..5]) };
        let (rip, cs, rflags, rsp) = (f[0], f[1] as u16, f[2], f[3]);
        if self.trace {
            eprintln!("kvm-user: vector {v} code {code:#x} frame {f:x?}");
        }
        if cs & 3 != 3 {
            return Err(KvmError::State(format!("vector {v} raised at CPL0, RIP {rip:#x}")));
        }
        let st = &mut cpu.state;
        st.gpr[gpr::RSP] = rsp;
        supervisor::to_user(st, cs);
        st.rip = rip;
        st.set_rflags(rflags);
        Ok(match v {
            vector::PF => {
                cpu.fault_addr = sregs.cr2;
                Exit::Stop(Stop::Fault(Fault::with_code(v, code as u32)))
            }
            // INT3 through its DPL3 gate: RIP is past it, as tier 0 stops for it.
            vector::BP => Exit::Stop(Stop::SoftInt(vector::BP)),
            vector::DB => Exit::Stop(Stop::Trap(vector::DB)),
            vector::DF | vector::MC => Exit::TripleFault,
            // `kvm_pvm` raises #UD for INT n through a DPL0 gate; hardware raises
            // #GP(n*8+2), and `CD ib` is never undefined in 64-bit mode, so that is what it was.
            vector::UD => match int_n_at(cpu, rip) {
                Some(n) => Exit::Stop(Stop::Fault(Fault::with_code(vector::GP, u32::from(n) << 3 | 2))),
                None => Exit::Stop(Stop::Fault(Fault::new(v))),
            },
            _ if has_code => Exit::Stop(Stop::Fault(Fault::with_code(v, code as u32))),
            _ => Exit::Stop(Stop::Fault(Fault::new(v))),
        })
    }
}

/// The vector of the `INT n` (CD ib, n other than 3) at `rip`, if that is what is there.
fn int_n_at(cpu: &mut Cpu, rip: u64) -> Option<u8> {
    let mut b = [0u8; 2];
    read_user(cpu, rip, &mut b)?;
    (b[0] == 0xcd && b[1] != vector::BP).then_some(b[1])
}

/// Start of the program's IN/OUT/INS/OUTS that KVM reported with RIP `rip`: at the
/// instruction, or (after emulating it) past it. Forms: `66`/`F3`? then EC..EF or 6C..6F,
/// or `66`? then E4..E7 with an immediate port.
fn port_insn_start(cpu: &mut Cpu, rip: u64) -> u64 {
    let one = |x: u8| matches!(x, 0xec..=0xef | 0x6c..=0x6f);
    let imm = |x: u8| matches!(x, 0xe4..=0xe7);
    let prefix = |x: u8| matches!(x, 0x66 | 0xf3);
    let mut b = [0u8; 3];
    if read_user(cpu, rip, &mut b).is_some() && (one(b[0]) || imm(b[0]) || prefix(b[0]) && (one(b[1]) || imm(b[1]))) {
        return rip;
    }
    if read_user(cpu, rip.wrapping_sub(3), &mut b).is_none() {
        return rip.wrapping_sub(1);
    }
    if one(b[2]) {
        rip.wrapping_sub(if prefix(b[1]) { 2 } else { 1 })
    } else if imm(b[1]) {
        rip.wrapping_sub(if prefix(b[0]) { 3 } else { 2 })
    } else {
        rip.wrapping_sub(1)
    }
}

// --- Issue 11: what KVM_SET_GUEST_DEBUG does for CPL3 code (`strata user --tier kvm --gdb`) ---

/// A debugger's stop that reached the program's IDT rather than KVM's debug exit (as on
/// `kvm_pvm` at CPL3): the #DB of a step (KVM set TF; cleared again here) or the #BP of an INT3
/// the debugger wrote (RIP back at the INT3, as KVM's own exit reports it) is reported to the
/// debugger (`Exit::Poll` with the hit raised) instead of becoming the program's SIGTRAP.
fn debug_stop(debug: &GuestDebug, cpu: &mut Cpu, exit: Exit) -> Exit {
    const DR6_BS: u64 = 1 << 14; // single step (SDM Vol. 3B 18.2.3)
    match exit {
        Exit::Stop(Stop::Trap(vector::DB)) if debug.single_step => {
            let f = cpu.state.rflags() & !emu::state::rflags::TF;
            cpu.state.set_rflags(f);
            debug.report(super::guest_debug::hit_of(1, DR6_BS));
            Exit::Poll
        }
        // 64-bit code: RIP is the linear address. An INT3 of the program's own is its SIGTRAP.
        Exit::Stop(Stop::SoftInt(vector::BP)) if debug.int3_breakpoints.contains(&cpu.state.rip.wrapping_sub(1)) => {
            cpu.state.rip = cpu.state.rip.wrapping_sub(1);
            debug.report(super::guest_debug::hit_of(3, 0));
            Exit::Poll
        }
        e => e,
    }
}

/// Where the probe program is loaded (a small static executable made here: ELF header, one
/// PT_LOAD segment, code; the data word it stores to follows the code in the same page).
const PROBE_VA: u64 = 0x40_0000;
/// Offset of the code in the file and in the page (after the ELF header and program header).
const PROBE_CODE: u64 = 0x80;
/// Offset of the data word the probe stores to.
const PROBE_DATA: u64 = 0x200;

/// `nop; nop; THIRD; nop; mov [rip+data], eax; mov eax, 60; xor edi, edi; syscall` (exit(0)).
fn probe_code(third: u8) -> Vec<u8> {
    let rel = (PROBE_DATA - (PROBE_CODE + 10)) as u32;
    let mut c = vec![0x90, 0x90, third, 0x90, 0x89, 0x05];
    c.extend_from_slice(&rel.to_le_bytes());
    c.extend_from_slice(&[0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05]);
    c
}

/// A static x86-64 ELF executable (System V gABI: the 64-byte header, one 56-byte PT_LOAD
/// program header, R+W+X) holding `code` at [`PROBE_CODE`] and zeros up to [`PROBE_DATA`] + 8.
fn probe_elf(code: &[u8]) -> Vec<u8> {
    let size = PROBE_DATA as usize + 8;
    let mut f = vec![0u8; size];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2; // 64-bit
    f[5] = 1; // little-endian
    f[6] = 1; // version
    f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[24..32].copy_from_slice(&(PROBE_VA + PROBE_CODE).to_le_bytes()); // entry
    f[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
    f[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
    f[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
    f[56..58].copy_from_slice(&1u16.to_le_bytes()); // phnum
    let ph = &mut f[64..120];
    ph[0..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    ph[4..8].copy_from_slice(&7u32.to_le_bytes()); // PF_R | PF_W | PF_X
    ph[16..24].copy_from_slice(&PROBE_VA.to_le_bytes()); // vaddr
    ph[32..40].copy_from_slice(&(size as u64).to_le_bytes()); // filesz
    ph[40..48].copy_from_slice(&(size as u64).to_le_bytes()); // memsz
    ph[48..56].copy_from_slice(&0x1000u64.to_le_bytes()); // align
    f[PROBE_CODE as usize..PROBE_CODE as usize + code.len()].copy_from_slice(code);
    f
}

/// Runs the probe program at CPL3 on a fresh [`UserEngine`] with `debug` armed: the user RIP
/// at the first stop for the debugger, `None` when the program ran to its exit (or stopped
/// otherwise) without one.
fn try_user_kind(code: &[u8], debug: &GuestDebug) -> Result<Option<u64>, KvmError> {
    let image = probe_elf(code);
    let mut p = Process::load_image("kvm-debug-probe", &image, &["probe".into()], &[], 16 << 20)
        .map_err(|e| KvmError::State(format!("probe program: {e}")))?;
    let mut engine = UserEngine::new(&mut p)?;
    engine.load_state(&mut p.cpu).map_err(|e| KvmError::State(e.message))?;
    let request = super::guest_debug::request_for(debug);
    if engine.vm.vcpu.set_guest_debug(&request).is_err() {
        return Ok(None);
    }
    engine.debug_armed = Some(debug.clone());
    for _ in 0..16 {
        let exit = engine.run(&mut p.cpu, &Limit::NONE).map_err(|e| KvmError::State(e.message))?;
        if debug.hit.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(Some(p.cpu.state.rip));
        }
        if exit == Exit::Unemulated || p.handle_exit(exit).is_some() {
            return Ok(None);
        }
        engine.load_state(&mut p.cpu).map_err(|e| KvmError::State(e.message))?;
    }
    Ok(None)
}

/// What KVM_SET_GUEST_DEBUG does for a user-mode program here, each kind tried on the probe
/// program at CPL3 (on `kvm_pvm` CPL3 code runs natively, not through the emulator that
/// `guest_debug::probe` tries at CPL0, so the two can differ).
///
/// # Errors
/// KVM cannot be opened or refuses a VM.
pub fn probe_user_kinds() -> Result<GuestDebugKinds, KvmError> {
    super::probe()?;
    let entry = PROBE_VA + PROBE_CODE;
    let step = GuestDebug { single_step: true, ..GuestDebug::default() };
    let single_step = try_user_kind(&probe_code(0x90), &step)? == Some(entry + 1);
    // KVM reports a software breakpoint with RIP at the INT3 (it does not run it).
    let int3 = GuestDebug { int3_breakpoints: vec![entry + 2], ..GuestDebug::default() };
    let sw_breakpoint = try_user_kind(&probe_code(0xcc), &int3)? == Some(entry + 2);
    let hw = GuestDebug { hw_breakpoints: vec![entry + 3], ..GuestDebug::default() };
    let hw_breakpoint = try_user_kind(&probe_code(0x90), &hw)? == Some(entry + 3);
    // A 4-byte write watch on the data word: a trap after the store (RIP at `mov eax, 60`).
    let watch = GuestDebug {
        watchpoints: vec![emu::engine::DataBreakpoint { addr: PROBE_VA + PROBE_DATA, len: 4, read: false }],
        ..GuestDebug::default()
    };
    let hw_watchpoint = try_user_kind(&probe_code(0x90), &watch)? == Some(entry + 10);
    Ok(GuestDebugKinds { single_step, sw_breakpoint, hw_breakpoint, hw_watchpoint })
}
// --- end issue 11 ---
