//! gdb on a user-mode process (`strata user --gdb`): the process waits for gdb before its first
//! instruction, as under qemu-user's `-g`; tier 0 runs it, and the same user-mode kernel
//! (`Process::handle_exit`) carries out its system calls, faults and signals as `run_on` does.
//! Under `--tier jit` free runs (nothing set that needs every instruction seen) go through the
//! JIT, and steps through the JIT's own tier 0 (`Engine::step_one`), so its code cache sees
//! every store a stepped instruction makes.
//! Memory is read and written as the kernel would for the process (pages brought in on demand).
//! A signal stops the process before it is acted on and gdb says what to pass on, as with
//! ptrace (`emu::user::signal::resume_stopped`).

use super::{End, Inferior, Prepared};
use emu::cpu::Cpu;
use emu::engine::{Engine, Exit, Limit};
use emu::user::{Process, ProcessEnd};
use emu::Interp;

/// Instructions per free-running slice between looks at gdb's socket (tier 0 runs them in a
/// few milliseconds).
const SLICE: u64 = 1 << 20;

/// A process under gdb.
pub struct UserInferior {
    pub process: Process,
    pub interp: Interp,
    /// The engine for free runs and steps when it is not tier 0 (`--tier jit`).
    pub engine: Option<Box<dyn Engine>>,
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
        UserInferior { process, interp: Interp::new(), engine }
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
        self.process.write_mem(la, data).is_some()
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
        let engine: &mut dyn Engine = match self.engine.as_mut() {
            Some(e) => e.as_mut(),
            None => &mut self.interp,
        };
        let exit = engine.run(&mut self.process.cpu, &Limit::instructions(SLICE)).map_err(|e| e.to_string())?;
        Ok(self.process.handle_exit(exit).map(end_of))
    }
}
