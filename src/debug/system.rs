//! gdb on the virtual PC (`strata run --gdb`): the machine loop stops while gdb looks; single
//! steps and breakpoint runs go through `Machine::begin_step`/`step_instruction` on tier 0
//! (devices polled and interrupts delivered before each instruction, as the machine loop does),
//! free runs through `Machine::run` on the engine the run asked for, in slices of host time.
//! Under `--tier kvm`, steps, breakpoints and watchpoints run on KVM through
//! KVM_SET_GUEST_DEBUG where this host's KVM does them ([`Inferior::run_guest_debug`];
//! placement in `gdb::engine_points`).
//!
//! Memory is the guest's linear address space: gdb's addresses go through the guest's page
//! tables ([`debug_translate`]), so looking does not change the guest.

use super::{debug_translate, End, GuestRun, Inferior, Prepared};
use emu::cpu::Cpu;
use emu::engine::{EngineKind, Exit, GuestDebug, GuestDebugKinds};
use emu::machine::step::StepStart;
use emu::machine::{Attention, Machine, RunEnd, Watch};
use std::sync::atomic::Ordering;

/// Host time a free run goes on before looking at gdb's socket for Ctrl-C.
const SLICE_MS: u64 = 20;
/// SIGSEGV: what gdb is told when the CPU shuts down (a triple fault).
const SIGSEGV: u8 = 11;

/// The PC under gdb.
pub struct MachineInferior {
    pub machine: Machine,
    /// The engine the run uses when gdb does not need every instruction.
    pub engine: EngineKind,
    /// How the run ended, when it did while gdb was attached.
    pub end: Option<RunEnd>,
}

impl MachineInferior {
    /// Stops on tier 0 (the state moves out of another engine), so gdb sees `cpu.state`.
    ///
    /// # Errors
    /// The engine could not hand over its state.
    pub fn stop_on_tier0(&mut self) -> Result<(), String> {
        self.machine.switch_engine(EngineKind::Interp).map_err(|e| e.to_string())
    }

    fn ended(&mut self, end: RunEnd) -> Result<End, String> {
        self.end = Some(end);
        Ok(match end {
            RunEnd::ExitPort(s) => End::Exited(s as u8),
            RunEnd::Halted | RunEnd::PowerOff | RunEnd::Reset | RunEnd::Limit | RunEnd::Watch => End::Exited(0),
            RunEnd::TripleFault => End::Signaled(SIGSEGV),
            RunEnd::EngineError => return Err(self.machine.engine_error.clone().unwrap_or_default()),
        })
    }
}

/// Visits `[la, la + len)` page by page: `f(physical address, offset in the buffer, length)`.
/// False when a page is not mapped or not RAM.
fn each_page(cpu: &Cpu, la: u64, len: usize, mut f: impl FnMut(u64, usize, usize)) -> bool {
    let mut done = 0usize;
    while done < len {
        let a = la.wrapping_add(done as u64);
        let n = ((0x1000 - (a & 0xfff)) as usize).min(len - done);
        let Some(pa) = debug_translate(cpu, a) else { return false };
        if pa + n as u64 > cpu.ram.len() {
            return false;
        }
        f(pa, done, n);
        done += n;
    }
    true
}

impl Inferior for MachineInferior {
    fn cpu(&mut self) -> &mut Cpu {
        &mut self.machine.cpu
    }

    fn read_memory(&mut self, la: u64, buf: &mut [u8]) -> bool {
        let cpu = &self.machine.cpu;
        let mut pages = Vec::new();
        if !each_page(cpu, la, buf.len(), |pa, off, n| pages.push((pa, off, n))) {
            return false;
        }
        for (pa, off, n) in pages {
            match cpu.ram.slice(pa, n) {
                Some(src) => buf[off..off + n].copy_from_slice(src),
                None => return false,
            }
        }
        true
    }

    fn write_memory(&mut self, la: u64, data: &[u8]) -> bool {
        let mut pages = Vec::new();
        if !each_page(&self.machine.cpu, la, data.len(), |pa, off, n| pages.push((pa, off, n))) {
            return false;
        }
        let cpu = &mut self.machine.cpu;
        for (pa, off, n) in pages {
            // Decoded code on the page is dropped, as after a guest store.
            cpu.softmmu.note_code_written(pa & !0xfff);
            match cpu.ram.slice_mut(pa, n) {
                Some(dst) => dst.copy_from_slice(&data[off..off + n]),
                None => return false,
            }
        }
        true
    }

    fn prepare_step(&mut self) -> Result<Prepared, String> {
        self.stop_on_tier0()?;
        match self.machine.begin_step().map_err(|e| e.to_string())? {
            StepStart::Ended(end) => Ok(Prepared::Ended(self.ended(end)?)),
            StepStart::Waited => Ok(Prepared::Waited),
            StepStart::Ready { .. } => Ok(Prepared::Ready),
        }
    }

    fn execute_step(&mut self) -> Result<Option<End>, String> {
        match self.machine.step_instruction() {
            Some(Exit::TripleFault) => Ok(Some(self.ended(RunEnd::TripleFault)?)),
            _ => Ok(None),
        }
    }

    fn monitor(&mut self, command: &str) -> Result<String, String> {
        // Only the looking commands: gdb itself stops, steps and resumes the machine.
        let first = command.split_whitespace().next().unwrap_or("");
        if matches!(first, "stop" | "cont" | "c" | "step" | "quit" | "q" | "json" | "switch") {
            return Err(format!("{first}: use gdb's own commands for that"));
        }
        super::monitor::commands::execute(&mut self.machine, command).map(|(text, _)| text)
    }

    fn guest_debug_kinds(&mut self) -> Option<GuestDebugKinds> {
        if self.engine != EngineKind::Kvm {
            return None;
        }
        self.machine.guest_debug_kinds(EngineKind::Kvm).ok().flatten()
    }

    fn run_guest_debug(&mut self, mut debug: GuestDebug) -> Result<Option<GuestRun>, String> {
        if self.engine != EngineKind::Kvm {
            return Ok(None);
        }
        let watch = Attention::default();
        debug.stopped = watch.0.clone();
        self.machine.switch_engine(EngineKind::Kvm).map_err(|e| e.to_string())?;
        if !self.machine.set_guest_debug(EngineKind::Kvm, Some(&debug)).map_err(|e| e.to_string())? {
            self.stop_on_tier0()?;
            return Ok(None);
        }
        // The machine loop watches one flag: the engine raises it at a debug exit (with `hit`),
        // a timer at the end of the slice, so gdb's Ctrl-C is looked at.
        let timer = watch.0.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(SLICE_MS));
            timer.store(true, Ordering::SeqCst);
        });
        self.machine.set_watch(Some(Watch::Flag(watch)));
        let end = self.machine.run(u64::MAX);
        self.machine.set_watch(None);
        self.machine.set_guest_debug(EngineKind::Kvm, None).map_err(|e| e.to_string())?;
        self.stop_on_tier0()?;
        match end {
            RunEnd::Watch if debug.hit.load(Ordering::Relaxed) => {
                Ok(Some(GuestRun::Stopped(debug.cause.lock().map(|c| *c).unwrap_or_default())))
            }
            RunEnd::Watch => Ok(Some(GuestRun::Slice)),
            end => Ok(Some(GuestRun::Ended(self.ended(end)?))),
        }
    }

    fn run_free(&mut self) -> Result<Option<End>, String> {
        self.machine.switch_engine(self.engine).map_err(|e| e.to_string())?;
        self.machine.set_watch(Some(Watch::HostMs(SLICE_MS)));
        let end = self.machine.run(u64::MAX);
        self.machine.set_watch(None);
        self.stop_on_tier0()?;
        match end {
            RunEnd::Watch => Ok(None),
            end => Ok(Some(self.ended(end)?)),
        }
    }
}
