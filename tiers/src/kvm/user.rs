//! `strata user --tier kvm`: a Linux user-mode process run natively at CPL3 inside a KVM guest,
//! with the same kernel (system calls, demand paging, signals: `emu::user`) as tier 0.
//!
//! The process's address space is the one `emu::user::aspace` keeps in guest RAM; KVM runs on
//! those page tables and that RAM directly. `supervisor.rs` adds an IDT, a TSS and one-`out`
//! stubs, so SYSCALL and every exception leave KVM as a port write from a known RIP (at CPL0;
//! SYSCALL's at CPL3 on `kvm_pvm`, which does not change privilege for it). The
//! runner then rebuilds the user state at the instruction boundary (for SYSCALL: RIP = RCX,
//! RFLAGS = R11; for an exception: the frame the CPU pushed on the IST stack, CR2 for #PF),
//! hands tier 0's own exit (`Stop::Syscall`, `Stop::Fault`, ...) to `Process::handle_exit`,
//! and resumes at CPL3 by loading the user state into the vCPU; no SYSRET/IRETQ runs.
//!
//! Translations: adding a mapping needs nothing (KVM walks the guest tables again on a miss),
//! but the runner changes and removes page-table entries from the host side, where KVM's
//! write tracking of guest page tables cannot see it; whenever a present entry changed
//! (`aspace.present_changes`: munmap, mprotect, mremap, madvise, brk shrink, MAP_FIXED over
//! touched pages) the VM's translations are dropped (`KvmVm::flush_translations`) before it
//! runs again.
//!
//! The x87/SSE state moves between KVM and `CpuState` only around what reads or writes it:
//! rt_sigreturn, faults, and system calls of a process that has signal handlers (a signal
//! frame holds the FPU state). An instruction KVM cannot emulate is run by tier 0.
//! ITIMER_REAL: while a timer is armed a kick thread ends KVM_RUN every millisecond.
//! Registers travel in kvm_run (KVM_CAP_SYNC_REGS) where KVM offers it.
//!
//! Cost on `kvm_pvm` (no VMX/SVM, here inside another VM): every exit is a few world switches,
//! ~100 us of CPU, so system calls are far slower than under tier 0 or QEMU while code between
//! them runs natively. Demand paging brings in [`FAULT_AROUND`] pages per fault, and the page
//! tables are written with Accessed/Dirty already set so KVM's shadow MMU fills 8 entries per
//! miss.
//!
//! Left out: single-stepping (TF) beyond reporting #DB as tier 0 does; compatibility-mode
//! system calls are served with the 64-bit table, as tier 0 does. Known deviation: on
//! `kvm_pvm` a jump to the SYSCALL stub page right after a real SYSCALL (RCX still pointing
//! past it) is taken for another system call instead of a SIGSEGV.

use super::kick::Kicker;
use super::supervisor::{self, Supervisor, COMPAT_SYSCALL_STUB, SYSCALL_STUB, USER32_CS, USER_CS};
use super::{convert, KvmError, KvmVm, VmExit};
use emu::cpu::NullBus;
use emu::exception::{pf_error, vector, Fault, Stop};
use emu::interp::sse::fxsave;
use emu::state::gpr;
use emu::user::aspace::{PAGE, PROT_EXEC, PROT_READ, PROT_WRITE};
use emu::user::{signal, Process, ProcessEnd};
use emu::Exit;
use kvm_bindings::{kvm_regs, kvm_sregs};
use kvm_ioctls::{Cap, SyncReg};
use std::time::Duration;

/// How often a running program is kicked out of KVM while an interval timer is armed.
const TIMER_KICK: Duration = Duration::from_millis(1);

/// The smallest RAM slot registered with KVM. Re-registering the slot (each translation flush)
/// costs in proportion to its size: ~7 ms for all of a 4 GiB RAM.
const MIN_SLOT: u64 = 64 << 20;

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
    /// Instructions tier 0 ran because KVM could not emulate them.
    pub tier0_steps: u64,
}

/// The KVM side of one process.
struct Runner {
    vm: KvmVm,
    sup: Supervisor,
    kicker: Option<Kicker>,
    /// `aspace.present_changes` as of the last flush.
    present_changes: u64,
    /// Registers move through kvm_run (KVM_CAP_SYNC_REGS).
    sync: bool,
    /// STRATA_TRACE_KVM set: each supervisor exit is printed to stderr.
    trace: bool,
    /// The host's KVM is `kvm_pvm`: SYSCALL reaches its stub at CPL3.
    pvm: bool,
    stats: UserStats,
}

/// Runs `p` on KVM until it exits or is killed.
///
/// # Errors
/// KVM is not available or refused the state; the guest made the supervisor misbehave (a fault
/// at CPL0, an unknown exit); tier 0 cannot continue an instruction KVM could not emulate.
pub fn run_process(p: &mut Process) -> Result<(ProcessEnd, UserStats), KvmError> {
    let cpu = &mut p.cpu;
    let sup = supervisor::install(&mut p.aspace, &mut cpu.ram, &mut cpu.state)
        .ok_or_else(|| KvmError::State("guest RAM exhausted setting up the supervisor".into()))?;
    let top = p.aspace.frame_top().max(MIN_SLOT);
    let mut vm = KvmVm::with_slot(&cpu.ram, top.next_power_of_two())?;
    vm.set_state(cpu)?;
    // KVM_CAP_SYNC_REGS: registers travel in kvm_run instead of through their own ioctls.
    let sync = super::open().is_ok_and(|k| k.check_extension(Cap::SyncRegs));
    if sync {
        vm.vcpu.set_sync_valid_reg(SyncReg::Register);
        vm.vcpu.set_sync_valid_reg(SyncReg::SystemRegister);
    }
    let trace = std::env::var_os("STRATA_TRACE_KVM").is_some();
    let mut r = Runner {
        vm,
        sup,
        kicker: None,
        present_changes: p.aspace.present_changes,
        sync,
        trace,
        pvm: super::is_pvm(),
        stats: UserStats::default(),
    };
    let end = r.run(p)?;
    Ok((end, r.stats))
}

/// The RFLAGS bits R11 gives back after a system call: the arithmetic and user control flags
/// (CF PF AF ZF SF TF DF OF AC ID); IF is set, and IOPL, NT, RF and VM stay clear, so a jump to
/// the user-executable entry stub with a made-up R11 cannot raise IOPL.
const SYSRET_FLAGS: u64 = 0x24_0dd5;

/// The user state after SYSCALL: it saved the return RIP in RCX and RFLAGS in R11 (SDM Vol.
/// 2B, SYSCALL); the other registers are as the program left them.
fn st_syscall(p: &mut Process, regs: &kvm_regs) {
    let st = &mut p.cpu.state;
    st.rip = regs.rcx;
    st.set_rflags(regs.r11 & SYSRET_FLAGS | emu::state::rflags::IF | 2);
}

/// Pages brought in together on a demand-paging fault: the faulting one's aligned
/// [`FAULT_AROUND`]-page block within its region. A round trip through the exception stub
/// costs about as much as zeroing a hundred pages on `kvm_pvm`, so sequential and random first
/// touches of big buffers would otherwise be dominated by faults. Anonymous memory reads as
/// zeros either way; only the process's resident size differs (Linux's transparent huge
/// pages do the same, in 2 MiB blocks).
const FAULT_AROUND: u64 = 64;

/// Populates the not-yet-present pages of the block around `addr` that its region allows,
/// once the faulting page itself is present (demand paging succeeded). Stops quietly when
/// guest RAM runs out: those pages will fault on their own.
fn fault_around(p: &mut Process, addr: u64) {
    let page = addr & !(PAGE - 1);
    let Some((start, region)) = p.aspace.region_at(page) else { return };
    if region.prot & (PROT_READ | PROT_WRITE | PROT_EXEC) == 0 {
        return;
    }
    let ram = &mut p.cpu.ram;
    if p.aspace.lookup(ram, page).is_none() {
        return;
    }
    let block = FAULT_AROUND * PAGE;
    let lo = (page & !(block - 1)).max(start);
    let hi = ((page & !(block - 1)) + block).min(region.end);
    let mut va = lo;
    while va < hi {
        if p.aspace.lookup(ram, va).is_none() && p.aspace.populate(ram, va, region.prot).is_none() {
            return;
        }
        va += PAGE;
    }
}

/// Whether the instruction before `rcx` is SYSCALL (0F 05), as after a real one.
fn after_syscall(p: &mut Process, rcx: u64) -> bool {
    let mut b = [0u8; 2];
    p.read_mem(rcx.wrapping_sub(2), &mut b).is_some() && b == [0x0f, 0x05]
}

/// Whether a signal handler could run (and so a signal frame be built or unwound): only then
/// does the FPU state need to be in `CpuState`.
fn has_handlers(p: &Process) -> bool {
    p.sys.signals.actions.iter().any(|a| a.handler > signal::SIG_IGN)
}

impl Runner {
    fn run(&mut self, p: &mut Process) -> Result<ProcessEnd, KvmError> {
        loop {
            let top = p.aspace.frame_top();
            if p.aspace.present_changes != self.present_changes || top > self.vm.slot_len() {
                // The slot grows in doublings as the process takes frames, so the re-adds
                // that growth costs stay few.
                self.present_changes = p.aspace.present_changes;
                let len = self.vm.slot_len().max(MIN_SLOT);
                self.vm.flush_translations(if top > len { top.next_power_of_two() } else { len })?;
                self.stats.flushes += 1;
            }
            self.arm_kicker(p)?;
            let exit = self.vm.run(&p.cpu.ram, &mut NullBus)?;
            self.stats.exits += 1;
            let end = match exit {
                VmExit::Io => self.on_port_write(p)?,
                VmExit::Interrupted | VmExit::InterruptWindow | VmExit::Debug => {
                    // A kick: let the timer and pending signals be looked at.
                    let (regs, sregs) = self.regs()?;
                    if sregs.cs.dpl != 3 {
                        continue; // inside a stub: its exit comes next
                    }
                    self.enter(p, &regs, &sregs);
                    self.serve(p, Exit::Poll, has_handlers(p), true)?
                }
                VmExit::Hlt => {
                    // HLT at CPL3 is #GP(0) on hardware; a HLT in a stub means one ran on.
                    let (regs, sregs) = self.regs()?;
                    if sregs.cs.dpl != 3 {
                        return Err(KvmError::State(format!("supervisor stub ran on to HLT at {:#x}", regs.rip)));
                    }
                    self.enter(p, &regs, &sregs);
                    p.cpu.state.rip = regs.rip.wrapping_sub(1);
                    self.serve(p, Exit::Stop(Stop::Fault(Fault::gp0())), true, true)?
                }
                VmExit::Shutdown => Some(ProcessEnd::Signaled(signal::SIGSEGV)),
                VmExit::EmulationFailure => self.step_on_tier0(p)?,
            };
            if let Some(end) = end {
                return Ok(end);
            }
        }
    }

    /// Starts the kick thread while an interval timer is armed, and stops it after.
    fn arm_kicker(&mut self, p: &Process) -> Result<(), KvmError> {
        match (p.sys.timer.is_some(), self.kicker.is_some()) {
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

    /// Copies the vCPU's registers into the process's CPU state (the FPU comes separately).
    fn enter(&mut self, p: &mut Process, regs: &kvm_regs, sregs: &kvm_sregs) {
        let st = &mut p.cpu.state;
        convert::regs_into_state(regs, st);
        convert::sregs_into_state(sregs, st, false);
    }

    /// A stub's `out`, or (on `kvm_pvm`, where CPL3 port I/O exits instead of faulting) the
    /// program's own IN/OUT.
    fn on_port_write(&mut self, p: &mut Process) -> Result<Option<ProcessEnd>, KvmError> {
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
            self.enter(p, &regs, &sregs);
            let start = self.port_insn_start(p, regs.rip);
            p.cpu.state.rip = start;
            self.stats.faults += 1;
            return self.serve(p, Exit::Stop(Stop::Fault(Fault::gp0())), true, true);
        };
        self.enter(p, &regs, &sregs);
        let exit = if is_syscall_stub && sregs.cs.dpl == 3 && !(self.pvm && after_syscall(p, regs.rcx)) {
            // The program jumped to the user-executable SYSCALL stub page itself (on a
            // hardware host a real SYSCALL arrives at CPL0): the fetch fault Linux would report
            // for a kernel address.
            let st = &mut p.cpu.state;
            st.rip = regs.rip & !(supervisor::STUB_SIZE - 1);
            p.cpu.fault_addr = st.rip;
            Exit::Stop(Stop::Fault(Fault::with_code(vector::PF, pf_error::PRESENT | pf_error::USER | pf_error::FETCH)))
        } else if is_syscall_stub {
            supervisor::to_user(&mut p.cpu.state, if stub == SYSCALL_STUB { USER_CS } else { USER32_CS });
            st_syscall(p, &regs);
            Exit::Stop(Stop::Syscall)
        } else {
            self.exception_exit(p, stub, &regs, &sregs)?
        };
        if exit == Exit::Stop(Stop::Syscall) {
            self.stats.syscalls += 1;
            let fpu = regs.rax == 15 || has_handlers(p);
            return self.serve(p, exit, fpu, sregs.cs.dpl == 3);
        }
        self.stats.faults += 1;
        let end = self.serve(p, exit, true, false)?;
        if let Exit::Stop(Stop::Fault(f)) = exit {
            if end.is_none() && f.vector == vector::PF && f.error_code & pf_error::PRESENT == 0 {
                fault_around(p, sregs.cr2);
            }
        }
        Ok(end)
    }

    /// Rebuilds the user state from the frame exception `stub` pushed on the IST stack and
    /// returns the exit tier 0 would have produced for it.
    fn exception_exit(
        &mut self,
        p: &mut Process,
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
        let ram = &p.cpu.ram;
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
        let st = &mut p.cpu.state;
        st.gpr[gpr::RSP] = rsp;
        supervisor::to_user(st, cs);
        st.rip = rip;
        st.set_rflags(rflags);
        Ok(match v {
            vector::PF => {
                p.cpu.fault_addr = sregs.cr2;
                Exit::Stop(Stop::Fault(Fault::with_code(v, code as u32)))
            }
            // INT3 through its DPL3 gate: RIP is past it, as tier 0 stops for it.
            vector::BP => Exit::Stop(Stop::SoftInt(vector::BP)),
            vector::DB => Exit::Stop(Stop::Trap(vector::DB)),
            vector::DF | vector::MC => Exit::TripleFault,
            // `kvm_pvm` raises #UD for INT n through a DPL0 gate; hardware raises
            // #GP(n*8+2), and `CD ib` is never undefined in 64-bit mode, so that is what it was.
            vector::UD => match self.int_n_at(p, rip) {
                Some(n) => Exit::Stop(Stop::Fault(Fault::with_code(vector::GP, u32::from(n) << 3 | 2))),
                None => Exit::Stop(Stop::Fault(Fault::new(v))),
            },
            _ if has_code => Exit::Stop(Stop::Fault(Fault::with_code(v, code as u32))),
            _ => Exit::Stop(Stop::Fault(Fault::new(v))),
        })
    }

    /// The vector of the `INT n` (CD ib, n other than 3) at `rip`, if that is what is there.
    fn int_n_at(&self, p: &mut Process, rip: u64) -> Option<u8> {
        let mut b = [0u8; 2];
        p.read_mem(rip, &mut b)?;
        (b[0] == 0xcd && b[1] != vector::BP).then_some(b[1])
    }

    /// Start of the program's IN/OUT/INS/OUTS that KVM reported with RIP `rip`: at the
    /// instruction, or (after emulating it) past it. Forms: `66`/`F3`? then EC..EF or 6C..6F,
    /// or `66`? then E4..E7 with an immediate port.
    fn port_insn_start(&mut self, p: &mut Process, rip: u64) -> u64 {
        let one = |x: u8| matches!(x, 0xec..=0xef | 0x6c..=0x6f);
        let imm = |x: u8| matches!(x, 0xe4..=0xe7);
        let prefix = |x: u8| matches!(x, 0x66 | 0xf3);
        let mut b = [0u8; 3];
        if p.read_mem(rip, &mut b).is_some() && (one(b[0]) || imm(b[0]) || prefix(b[0]) && (one(b[1]) || imm(b[1]))) {
            return rip;
        }
        if p.read_mem(rip.wrapping_sub(3), &mut b).is_none() {
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

    /// Lets the process's kernel act on `exit`, then loads the resulting user state into the
    /// vCPU. With `fpu` the x87/SSE state makes the round trip too.
    fn serve(&mut self, p: &mut Process, exit: Exit, fpu: bool, at_cpl3: bool) -> Result<Option<ProcessEnd>, KvmError> {
        // Through XSAVE, not KVM_GET_FPU/SET_FPU, which leave MXCSR out on some hosts.
        let mut xsave = None;
        if fpu {
            let x = self.vm.vcpu.get_xsave().map_err(|e| KvmError::Ioctl("KVM_GET_XSAVE", e))?;
            // KVM's own XSAVE area: no reserved MXCSR bit can be set in it.
            let _ = fxsave::load_image(&mut p.cpu, &convert::image_from_xsave(&x), true);
            xsave = Some(x);
        }
        let segs = p.cpu.state.segs;
        if let Some(end) = p.handle_exit(exit) {
            return Ok(Some(end));
        }
        let st = &p.cpu.state;
        // Loading sregs is the slow part of a round trip on `kvm_pvm`: skip it when the vCPU
        // is already at CPL3 with the segments the kernel left (SYSCALL there stays at CPL3).
        let load_sregs = !at_cpl3 || st.segs != segs;
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
                self.vm.vcpu.set_sregs(&sregs).map_err(|e| KvmError::Ioctl("KVM_SET_SREGS", e))?;
            }
            self.vm.vcpu.set_regs(&convert::regs_from_state(st)).map_err(|e| KvmError::Ioctl("KVM_SET_REGS", e))?;
        }
        if let Some(mut x) = xsave {
            convert::image_into_xsave(&fxsave::save_image(&p.cpu, true), &mut x);
            // SAFETY: this VM never enabled KVM_CAP_XSAVE2, so KVM_SET_XSAVE reads exactly the
            // 4 KiB `kvm_xsave` passed (the larger-buffer case the function is unsafe for).
            unsafe { self.vm.vcpu.set_xsave(&x) }.map_err(|e| KvmError::Ioctl("KVM_SET_XSAVE", e))?;
        }
        Ok(None)
    }

    /// KVM's emulator gave up on an instruction (on `kvm_pvm`, a CPL3 instruction it had to
    /// emulate): tier 0 runs that one instruction on the full state, then KVM goes on.
    fn step_on_tier0(&mut self, p: &mut Process) -> Result<Option<ProcessEnd>, KvmError> {
        self.vm.get_state(&mut p.cpu)?;
        if p.cpu.state.cpl != 3 {
            let rip = p.cpu.state.rip;
            return Err(KvmError::State(format!("KVM could not emulate supervisor code at {rip:#x}")));
        }
        self.stats.tier0_steps += 1;
        let exit = p.interp.run(&mut p.cpu, 1);
        if let Some(end) = p.handle_exit(exit) {
            return Ok(Some(end));
        }
        let vcpu = &mut self.vm.vcpu;
        vcpu.clear_sync_dirty_reg(SyncReg::Register);
        vcpu.clear_sync_dirty_reg(SyncReg::SystemRegister);
        self.vm.set_state(&p.cpu)?;
        Ok(None)
    }
}
