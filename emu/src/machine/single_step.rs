//! Single-stepping (RFLAGS.TF) on the software engines: while TF is set the machine runs one
//! instruction per round and raises the single-step #DB trap after it (SDM Vol. 3, 17.3.1.4:
//! "the processor generates a single-step debug exception ... after the execution of each
//! instruction" while TF is set; DR6.BS reports it, 17.2.3). KVM steps natively.
//!
//! Which instructions trap:
//! - the trap follows an instruction that began with TF set and completed (a faulting one
//!   delivers its fault instead; one that delivered an interrupt, INT n, does not trap: the
//!   handler starts with TF clear);
//! - POPF or IRET that set TF: the next instruction is the first one stepped (TF at its start);
//! - SYSCALL and SYSRET load RFLAGS whole: what counts is TF after them, so a SYSCALL whose
//!   IA32_FMASK clears TF does not trap and a SYSRET that sets TF traps at once (kvm-unit-tests'
//!   `syscall` test: "#DB is raised if TF is 1 at the *end* of syscall/sysret"; AMD APM
//!   Vol. 3, SYSRET: "a debug exception ... if RFLAGS.TF=1 after SYSRET").
//!
//! Not modelled: hardware breakpoints (DR0-DR3/DR7), the MOV SS shadow of #DB, DR6.BT.

use super::{Machine, RunEnd};
use crate::engine::{EngineError, EngineKind};
use crate::exception::{vector, Fault};
use crate::state::rflags;
use crate::system::interrupt::Event;

/// DR6.BS: the single-step condition.
const DR6_BS: u64 = 1 << 14;

impl Machine {
    /// Whether this round single-steps: TF is set and the engine is a software one.
    pub(super) fn single_stepping(&self) -> bool {
        self.active != EngineKind::Kvm && self.cpu.state.rflags_other & rflags::TF != 0
    }

    /// A SYSCALL or SYSRET that just set TF traps now, before anything else happens.
    pub(super) fn trap_after_rflags_load(&mut self) -> Option<Option<RunEnd>> {
        let loaded = std::mem::take(&mut self.cpu.rflags_loaded);
        (loaded && self.single_stepping()).then(|| self.single_step_trap())
    }

    /// Runs the one instruction at RIP and raises the single-step trap after it.
    pub(super) fn single_step_round(&mut self) -> Result<Option<RunEnd>, EngineError> {
        let prev = self.cpu.last_event.take();
        let before = self.cpu.retired;
        if let Some(end) = self.fall_back_one()? {
            return Ok(Some(end));
        }
        let delivered = self.cpu.last_event.is_some();
        if !delivered {
            self.cpu.last_event = prev;
        }
        let loaded = std::mem::take(&mut self.cpu.rflags_loaded);
        let tf_now = self.cpu.state.rflags_other & rflags::TF != 0;
        let completed = self.cpu.retired > before && !delivered && !self.halted;
        Ok(if completed && (!loaded || tf_now) { self.single_step_trap() } else { None })
    }

    /// Delivers the single-step #DB (a trap: RIP is already past the instruction).
    fn single_step_trap(&mut self) -> Option<RunEnd> {
        self.cpu.state.dr[6] |= DR6_BS;
        self.cpu.deliver(Event::Exception(Fault::new(vector::DB))).is_err().then_some(RunEnd::TripleFault)
    }
}
