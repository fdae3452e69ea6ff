//! gdb on a user-mode process (`strata user --gdb`): the process waits for gdb before its first
//! instruction, as under qemu-user's `-g`; tier 0 runs it, and the same user-mode kernel
//! (`Process::handle_exit`) carries out its system calls, faults and signals as `run_on` does.
//! Under `--tier jit` free runs (nothing set that needs every instruction seen) go through the
//! JIT, and steps through the JIT's own tier 0 (`Engine::step_one`), so its code cache sees
//! every store a stepped instruction makes.
//! Under `--tier kvm` the process runs natively on KVM (`tiers::kvm::user`) whenever gdb does
//! not need every instruction: free runs, and runs with breakpoints (and, where the host's KVM
//! stops at them, watchpoints and steps) armed through the engine's own debugging
//! ([`Inferior::run_guest_debug`]); its state is taken out of KVM at every stop, so gdb and
//! tier 0's steps see `cpu.state` whole.
//! Memory is read and written as the kernel would for the process (pages brought in on demand).
//! A signal stops the process before it is acted on and gdb says what to pass on, as with
//! ptrace (`emu::user::signal::resume_stopped`).

use super::{End, GuestRun, Inferior, Prepared};
use emu::cpu::Cpu;
use emu::engine::{Engine, EngineKind, Exit, GuestDebug, GuestDebugKinds, Limit};
use emu::exception::{pf_error, vector, Stop};
use emu::user::{Process, ProcessEnd};
use emu::Interp;

/// Instructions per free-running slice between looks at gdb's socket (tier 0 runs them in a
/// few milliseconds).
const SLICE: u64 = 1 << 20;
/// Host time an engine that counts no instructions (KVM) runs before gdb's socket is looked at.
const SLICE_MS: u64 = 20;

/// A process under gdb.
pub struct UserInferior {
    pub process: Process,
    pub interp: Interp,
    /// The engine for free runs and steps when it is not tier 0 (`--tier jit`, `--tier kvm`).
    pub engine: Option<Box<dyn Engine>>,
    /// The address space's change counters as the engine last heard of them (KVM keeps
    /// translations of its own: `Engine::page_tables_changed`).
    seen_changes: u64,
    seen_frame_top: u64,
}

fn end_of(e: ProcessEnd) -> End {
    match e {
        ProcessEnd::Exited(code) => End::Exited(code as u8),
        ProcessEnd::Signaled(sig) => End::Signaled(sig as u8),
    }
}

impl UserInferior {
    /// A process about to be served to gdb: its signals stop for gdb. `engine`: run it on
    /// this engine rather than tier 0 (one that steps, `Engine::step_one`: the JIT).
    pub fn new(mut process: Process, engine: Option<Box<dyn Engine>>) -> Self {
        process.sys.signals.debugger = true;
        let (seen_changes, seen_frame_top) = (process.aspace.present_changes, process.aspace.frame_top());
        UserInferior { process, interp: Interp::new(), engine, seen_changes, seen_frame_top }
    }

    /// gdb went away: signals are acted on again, starting with one held for gdb (passed on
    /// as it came). `Some` when that ended the process.
    pub fn detach(&mut self) -> Option<ProcessEnd> {
        self.process.sys.signals.debugger = false;
        let held = self.process.sys.signals.stopped.map(|s| s.info.signo);
        emu::user::signal::resume_stopped(&mut self.process, held)
    }
}

impl Inferior for UserInferior {
    fn cpu(&mut self) -> &mut Cpu {
        &mut self.process.cpu
    }

    fn read_memory(&mut self, la: u64, buf: &mut [u8]) -> bool {
        self.process.read_mem(la, buf).is_some()
    }

    fn write_memory(&mut self, la: u64, data: &[u8]) -> bool {
        // As ptrace's POKETEXT: code pages too (gdb's `set`, and INT3s on KVM).
        self.process.debugger_write_mem(la, data).is_some()
    }

    fn prepare_step(&mut self) -> Result<Prepared, String> {
        Ok(Prepared::Ready)
    }

    fn execute_step(&mut self) -> Result<Option<End>, String> {
        let cpu = &mut self.process.cpu;
        let stepped = self.engine.as_mut().and_then(|e| e.step_one(cpu));
        let exit = stepped.unwrap_or_else(|| self.interp.step(cpu)).unwrap_or(Exit::Limit);
        Ok(self.process.handle_exit(exit).map(end_of))
    }

    fn stopped_signal(&mut self) -> Option<i32> {
        self.process.sys.signals.stopped.map(|s| s.info.signo)
    }

    fn resume_signal(&mut self, signal: Option<i32>) -> Option<End> {
        emu::user::signal::resume_stopped(&mut self.process, signal).map(end_of)
    }

    fn run_free(&mut self) -> Result<Option<End>, String> {
        if self.on_kvm() {
            return match self.run_kvm(None)? {
                GuestRun::Ended(end) => Ok(Some(end)),
                _ => Ok(None),
            };
        }
        let engine: &mut dyn Engine = match self.engine.as_mut() {
            Some(e) => e.as_mut(),
            None => &mut self.interp,
        };
        let exit = engine.run(&mut self.process.cpu, &Limit::instructions(SLICE)).map_err(|e| e.to_string())?;
        Ok(self.process.handle_exit(exit).map(end_of))
    }

    fn guest_debug_kinds(&mut self) -> Option<GuestDebugKinds> {
        if !self.on_kvm() {
            return None;
        }
        self.engine.as_mut()?.guest_debug_kinds()
    }

    fn run_guest_debug(&mut self, debug: GuestDebug) -> Result<Option<GuestRun>, String> {
        if !self.on_kvm() {
            return Ok(None);
        }
        if debug.single_step && self.at_syscall() {
            // A step over SYSCALL goes through tier 0: the trap flag the step sets would
            // otherwise follow the program into the engine's SYSCALL stub.
            return Ok(None);
        }
        // The state first: KVM sets the step's trap flag only for the RIP the vCPU holds when
        // guest debugging is armed (its API documentation: the step starts from there).
        let armed = match self.engine.as_mut() {
            Some(e) => {
                e.load_state(&mut self.process.cpu).map_err(|e| e.to_string())?;
                e.set_guest_debug(Some(&debug)).map_err(|e| e.to_string())?
            }
            None => false,
        };
        if !armed {
            return Ok(None);
        }
        let run = self.run_kvm(Some(&debug));
        if let Some(e) = self.engine.as_mut() {
            e.set_guest_debug(None).map_err(|e| e.to_string())?;
        }
        run.map(Some)
    }
}

impl UserInferior {
    /// The process runs on KVM when gdb lets it (`--tier kvm`).
    fn on_kvm(&self) -> bool {
        self.engine.as_ref().is_some_and(|e| e.kind() == EngineKind::Kvm)
    }

    /// True when the next instruction is SYSCALL (0F 05).
    fn at_syscall(&mut self) -> bool {
        let rip = self.process.cpu.state.rip;
        let mut b = [0u8; 2];
        self.process.read_mem(rip, &mut b).is_some() && b == [0x0f, 0x05]
    }

    /// Runs the process on KVM for a slice of host time, the kernel serving its exits as in
    /// `Process::run_on`, until the engine stops for `debug` (when armed), a signal stops for
    /// gdb, a step over a system call completes, or the slice ends. The state is in
    /// `cpu.state` afterwards, the FPU included.
    fn run_kvm(&mut self, debug: Option<&GuestDebug>) -> Result<GuestRun, String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(SLICE_MS);
        let Some(engine) = self.engine.as_mut() else { return Ok(GuestRun::Slice) };
        let p = &mut self.process;
        let e = |e: emu::engine::EngineError| e.to_string();
        loop {
            let removed = p.aspace.present_changes != self.seen_changes;
            if removed || p.aspace.frame_top() > self.seen_frame_top {
                self.seen_changes = p.aspace.present_changes;
                self.seen_frame_top = p.aspace.frame_top();
                engine.page_tables_changed(&mut p.cpu, removed, self.seen_frame_top).map_err(e)?;
            }
            let deadline = p.sys.timer.map_or(deadline, |t| t.deadline.min(deadline));
            engine.load_state(&mut p.cpu).map_err(e)?;
            let mut exit = engine.run(&mut p.cpu, &Limit { deadline: Some(deadline), ..Limit::NONE }).map_err(e)?;
            engine.store_state(&mut p.cpu).map_err(e)?;
            if let Some(d) = debug.filter(|d| d.hit.load(std::sync::atomic::Ordering::SeqCst)) {
                return Ok(GuestRun::Stopped(d.cause.lock().map(|c| *c).unwrap_or_default()));
            }
            if exit == Exit::Unemulated {
                exit = self.interp.step(&mut p.cpu).unwrap_or(Exit::Limit);
            }
            if let Some(end) = p.handle_exit(exit) {
                return Ok(GuestRun::Ended(end_of(end)));
            }
            if let Exit::Stop(Stop::Fault(f)) = exit {
                if f.vector == vector::PF && f.error_code & pf_error::PRESENT == 0 && p.fault_around_pages > 1 {
                    p.fault_around(p.cpu.fault_addr);
                }
            }
            if p.sys.signals.stopped.is_some() || std::time::Instant::now() >= deadline {
                return Ok(GuestRun::Slice);
            }
            if exit == Exit::Stop(Stop::Syscall) && debug.is_some_and(|d| d.single_step) {
                return Ok(GuestRun::Stopped(emu::engine::DebugHit { vector: 1, dr6: 1 << 14 }));
            }
        }
    }
}
