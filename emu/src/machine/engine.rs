//! The engine contract (ARCHITECTURE.md, decision 10) for engines other than tier 0, and the machine loop
//! that drives them.
//!
//! An [`Accelerator`] (the KVM engine in `tiers/`) runs the CPU until something the machine must
//! see: a halt, a shutdown, a kick (time to poll the devices), an interrupt window, or an
//! instruction it cannot execute. Port and MMIO accesses are served inside `run` from the same
//! `Cpu::bus` tier 0 uses, so devices never know which engine runs.
//!
//! State ownership: while an accelerator is *active*, the authoritative CPU state is inside it and
//! `Cpu::state` is stale; [`Machine::sync_state`] copies it out (for a dump or a snapshot) and
//! [`Machine::switch_engine`] moves it across at an instruction boundary. Guest RAM is shared, so
//! only the registers move; tier 0 drops its decoded blocks on the way in, because the other
//! engine may have rewritten code without passing through tier 0's self-modifying-code checks.
//!
//! Fallback: when the accelerator reports [`AccelExit::Unemulated`] (KVM could not emulate an
//! instruction), the machine executes exactly that one instruction on tier 0 and resumes the
//! accelerator.

use super::{Machine, RunEnd};
use crate::cpu::Cpu;
use crate::state::rflags;
use crate::system::Event;

/// Why an accelerator's `run` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccelExit {
    /// Time to look at the devices (a kick, an I/O access that may have changed them, an
    /// interrupt window that opened).
    Poll,
    /// HLT: the CPU waits for an interrupt (RIP is past the HLT).
    Halt,
    /// The CPU shut down (triple fault).
    Shutdown,
    /// The engine cannot execute the instruction at RIP; tier 0 should run it.
    Unemulated,
}

/// An accelerator's failure (a host ioctl error, a state the engine cannot represent).
#[derive(Debug, thiserror::Error)]
#[error("{engine}: {message}")]
pub struct AccelError {
    pub engine: &'static str,
    pub message: String,
}

/// An engine that runs guest code outside tier 0 (see the module doc for the contract).
pub trait Accelerator {
    /// Short name for messages and the timeline ("kvm").
    fn name(&self) -> &'static str;
    /// Takes the CPU state from `cpu.state` (at an instruction boundary).
    fn load_state(&mut self, cpu: &Cpu) -> Result<(), AccelError>;
    /// Writes the engine's CPU state into `cpu.state`.
    fn store_state(&mut self, cpu: &mut Cpu) -> Result<(), AccelError>;
    /// Runs guest code until an exit. Port and MMIO accesses go to `cpu.bus`. When
    /// `want_interrupt` is set the engine returns `Poll` as soon as an interrupt can be taken.
    fn run(&mut self, cpu: &mut Cpu, want_interrupt: bool) -> Result<AccelExit, AccelError>;
    /// True when an external interrupt can be injected now (IF set, no interrupt shadow, nothing
    /// else being injected).
    fn interrupt_ready(&self) -> bool;
    /// RFLAGS.IF as of the last exit.
    fn interrupts_enabled(&self) -> bool;
    /// Injects external interrupt `vector` (only when `interrupt_ready`). `cpu` is there for an
    /// engine that lets tier 0 deliver it (through the guest's IDT) instead.
    fn inject_interrupt(&mut self, cpu: &mut Cpu, vector: u8) -> Result<(), AccelError>;
}

/// Counts of what happened under the accelerator, for `--stats`-style reports and tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccelStats {
    pub exits: u64,
    pub injected: u64,
    /// Instructions handed to tier 0 because the accelerator could not run them.
    pub fallbacks: u64,
    /// Engine switches (either direction).
    pub switches: u64,
}

/// Which engine runs the CPU now.
pub enum Engine {
    Interp,
    Accel,
}

impl Machine {
    /// Installs an accelerator; with `active` it becomes the running engine at once (the CPU
    /// state moves into it), otherwise tier 0 goes on until `switch_engine`.
    ///
    /// # Errors
    /// The engine refused the state.
    pub fn attach_accelerator(&mut self, mut accel: Box<dyn Accelerator>, active: bool) -> Result<(), AccelError> {
        if active {
            accel.load_state(&self.interp.cpu)?;
            let label = format!("engine: {}", accel.name());
            self.record(&label);
        }
        self.accel = Some(accel);
        self.accel_active = active;
        Ok(())
    }

    /// The name of the engine running the CPU now.
    pub fn engine_name(&self) -> &'static str {
        match (&self.accel, self.accel_active) {
            (Some(a), true) => a.name(),
            _ => "interp",
        }
    }

    /// Moves the running CPU to `engine` at the current instruction boundary.
    ///
    /// # Errors
    /// No accelerator is attached, or it refused the state.
    pub fn switch_engine(&mut self, engine: Engine) -> Result<(), AccelError> {
        match engine {
            Engine::Interp if self.accel_active => {
                self.sync_state()?;
                self.accel_active = false;
                self.interp.flush_code();
                self.accel_stats.switches += 1;
                self.record("engine: switched to interp");
            }
            Engine::Accel if !self.accel_active => {
                let Some(a) = self.accel.as_mut() else {
                    return Err(AccelError { engine: "machine", message: "no accelerator attached".into() });
                };
                a.load_state(&self.interp.cpu)?;
                self.accel_active = true;
                self.accel_stats.switches += 1;
                let label = format!("engine: switched to {}", a.name());
                self.record(&label);
            }
            _ => {}
        }
        Ok(())
    }

    /// Makes `interp.cpu.state` current (copies it out of an active accelerator).
    ///
    /// # Errors
    /// The accelerator could not report its state.
    pub fn sync_state(&mut self) -> Result<(), AccelError> {
        if self.accel_active {
            if let Some(a) = self.accel.as_mut() {
                a.store_state(&mut self.interp.cpu)?;
            }
        }
        Ok(())
    }

    /// Pushes `interp.cpu.state` into an active accelerator (after the caller changed it).
    ///
    /// # Errors
    /// The accelerator refused the state.
    pub fn reload_state(&mut self) -> Result<(), AccelError> {
        if self.accel_active {
            if let Some(a) = self.accel.as_mut() {
                a.load_state(&self.interp.cpu)?;
            }
        }
        Ok(())
    }

    /// One round of the machine loop under the accelerator: devices, interrupt injection, then
    /// guest code until the next exit. `None` means "keep going".
    pub(super) fn accel_round(&mut self) -> Result<Option<RunEnd>, AccelError> {
        let Some(accel) = self.accel.as_mut() else {
            return Err(AccelError { engine: "machine", message: "no accelerator attached".into() });
        };
        let pending = self.board.borrow().interrupt_pending();
        let mut want = false;
        if pending {
            if accel.interrupt_ready() {
                if let Some(v) = self.board.borrow_mut().acknowledge_interrupt() {
                    accel.inject_interrupt(&mut self.interp.cpu, v)?;
                    self.accel_stats.injected += 1;
                    self.halted = false;
                }
            } else {
                want = true;
            }
        }
        if self.halted {
            if !accel.interrupts_enabled() {
                return Ok(Some(RunEnd::Halted));
            }
            self.wait_for_event();
            return Ok(None);
        }
        let exit = accel.run(&mut self.interp.cpu, want)?;
        self.accel_stats.exits += 1;
        match exit {
            AccelExit::Poll => {}
            AccelExit::Halt => self.halted = true,
            AccelExit::Shutdown => return Ok(Some(RunEnd::TripleFault)),
            AccelExit::Unemulated => {
                // Tier 0 runs exactly this instruction, then the accelerator takes over again.
                accel.store_state(&mut self.interp.cpu)?;
                self.interp.flush_code();
                let e = self.interp.step();
                self.accel_stats.fallbacks += 1;
                let end = match e {
                    Some(crate::interp::Exit::TripleFault) => Some(RunEnd::TripleFault),
                    Some(crate::interp::Exit::Stop(crate::exception::Stop::Halt)) => {
                        self.halted = true;
                        None
                    }
                    _ => None,
                };
                if let Some(a) = self.accel.as_mut() {
                    a.load_state(&self.interp.cpu)?;
                }
                return Ok(end);
            }
        }
        Ok(None)
    }

    /// Delivers an external interrupt on tier 0 if one is pending and IF is set.
    pub(super) fn interp_interrupt(&mut self) -> Result<(), RunEnd> {
        if self.interp.cpu.state.rflags_other & rflags::IF != 0 {
            let v = self.board.borrow_mut().acknowledge_interrupt();
            if let Some(v) = v {
                self.halted = false;
                if self.interp.cpu.deliver(Event::External(v)).is_err() {
                    return Err(RunEnd::TripleFault);
                }
            }
        }
        Ok(())
    }
}
