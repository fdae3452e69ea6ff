//! The machine loop one instruction at a time, on tier 0, for harnesses that check every
//! instruction against another implementation (the lockstep differential against KVM).
//!
//! `Machine::run(retired + 1)` does not fit them: near its limit it goes on past a faulting
//! instruction (which retires nothing) into the handler, runs the instruction after an interrupt
//! shadow in the same round, and does not say whether it delivered an interrupt first. So a round
//! is split where the harness must act:
//! - [`Machine::begin_step`]: the devices, the exit port, the reset line, the interrupt due now
//!   (its vector is reported, so the harness can deliver it to its other side too) and halts —
//!   the same code the machine loop runs before each engine run;
//! - [`Machine::step_instruction`]: exactly one instruction on tier 0 (a faulting one delivers
//!   its exception through the IDT and retires nothing); halts, interrupt shadows and shutdowns
//!   are noted for the next round as the machine loop notes them.
//!
//! Between the two the harness may look at the state the instruction starts from.

use super::{Delivery, Machine, RunEnd};
use crate::engine::{EngineError, EngineKind, Exit};
use crate::exception::Stop;

/// What [`Machine::begin_step`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepStart {
    /// The run is over (exit port, reset, HLT with interrupts disabled, or a triple fault while
    /// delivering the interrupt).
    Ended(RunEnd),
    /// The CPU is halted with interrupts enabled and nothing woke it: time passed up to the next
    /// device event, no instruction is due.
    Waited,
    /// An instruction is due at RIP. `interrupt`: the external interrupt vector delivered first
    /// (the state is at its handler's entry).
    Ready { interrupt: Option<u8> },
}

impl Machine {
    /// The first half of a one-instruction round (see the module doc): devices, the exit port,
    /// the reset line, the due interrupt (not after an instruction that opened an interrupt
    /// shadow), halts.
    ///
    /// # Errors
    /// Tier 0 is not the active engine (the other engine holds the CPU state).
    pub fn begin_step(&mut self) -> Result<StepStart, EngineError> {
        if self.active != EngineKind::Interp {
            return Err(EngineError {
                engine: "machine",
                message: format!("stepping one instruction needs tier 0 active, not {}", self.active),
            });
        }
        self.note_start();
        self.tap.borrow_mut().retired = self.cpu.retired;
        if let Some(end) = self.devices_round() {
            return Ok(StepStart::Ended(end));
        }
        let mut interrupt = None;
        if !std::mem::take(&mut self.shadow) {
            match super::deliver_due_interrupt(&mut self.interp, &mut self.cpu, &self.board)? {
                Delivery::Delivered(v) => {
                    self.halted = false;
                    interrupt = Some(v);
                }
                Delivery::TripleFault => {
                    self.halted = false;
                    return Ok(StepStart::Ended(RunEnd::TripleFault));
                }
                Delivery::None | Delivery::NotReady => {}
            }
        }
        if self.halted {
            return Ok(match self.halt_round(self.cpu.state.rflags_other & crate::state::rflags::IF != 0) {
                Some(end) => StepStart::Ended(end),
                None => StepStart::Waited,
            });
        }
        Ok(StepStart::Ready { interrupt })
    }

    /// The second half: exactly one instruction on tier 0 (`Interp::step`). Returns its exit:
    /// `None` when it retired (or faulted: then nothing retired and the exception was delivered),
    /// `Some(Exit::Stop(Stop::Halt))` after HLT (the machine is now halted),
    /// `Some(Exit::Stop(_))` for an instruction that opened an interrupt shadow (the next
    /// `begin_step` delivers nothing), `Some(Exit::TripleFault)` when the CPU shut down.
    pub fn step_instruction(&mut self) -> Option<Exit> {
        let before = self.cpu.retired;
        let exit = self.interp.step(&mut self.cpu);
        self.retire_virtual(before);
        // Only STI opens a shadow; other yields (IRET, POPF...) let the next round deliver.
        if std::mem::take(&mut self.cpu.interrupt_shadow) && matches!(exit, Some(Exit::Stop(s)) if s != Stop::Halt) {
            self.shadow = true;
        }
        self.after_step(exit);
        exit
    }

    /// True while the CPU is halted, waiting for an interrupt.
    pub fn is_halted(&self) -> bool {
        self.halted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::MachineConfig;
    use std::time::Instant;

    /// A real-mode machine running `code` at 0x7C00 with `handler` at 0x7D00 as the #DE vector.
    fn machine(code: &[u8], handler: &[u8]) -> Machine {
        let cfg = MachineConfig { mem: 16 << 20, deterministic: true, marker: None };
        let mut m = Machine::new(&cfg, Box::new(std::io::sink()), Instant::now()).unwrap();
        let mut image = vec![0x90; 512];
        image[..code.len()].copy_from_slice(code);
        image[0x100..0x100 + handler.len()].copy_from_slice(handler);
        image[510] = 0x55;
        image[511] = 0xaa;
        crate::loaders::bootsector::load(&mut m.cpu, "test", &image).unwrap();
        // IVT entry 0 (#DE): 0000:7D00.
        m.cpu.ram.slice_mut(0, 4).unwrap().copy_from_slice(&[0x00, 0x7d, 0x00, 0x00]);
        m
    }

    fn ready(m: &mut Machine) {
        assert_eq!(m.begin_step().unwrap(), StepStart::Ready { interrupt: None });
    }

    /// One instruction per round, a fault being one (SDM Vol. 1 6.5: a fault is reported before
    /// the instruction completes, so nothing retires and the handler's first instruction is the
    /// next step), and HLT with IF clear ending the run.
    #[test]
    fn one_instruction_per_round_a_fault_retires_nothing() {
        // xor ax,ax; div al (divide by zero) | handler: cli; hlt
        let mut m = machine(&[0x31, 0xc0, 0xf6, 0xf0], &[0xfa, 0xf4]);
        ready(&mut m);
        assert_eq!(m.step_instruction(), None);
        assert_eq!((m.cpu.retired, m.cpu.state.rip), (1, 0x7c02));
        ready(&mut m);
        assert_eq!(m.step_instruction(), None);
        assert_eq!((m.cpu.retired, m.cpu.state.rip), (1, 0x7d00), "#DE delivered, the DIV not retired");
        ready(&mut m);
        assert_eq!(m.step_instruction(), None);
        assert_eq!(m.cpu.retired, 2);
        ready(&mut m);
        assert_eq!(m.step_instruction(), Some(Exit::Stop(Stop::Halt)));
        assert!(m.is_halted());
        assert_eq!(m.begin_step().unwrap(), StepStart::Ended(RunEnd::Halted));
    }
}
