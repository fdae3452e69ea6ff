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
//! - HLT: the trap follows it at once, and the CPU does not halt (its handler returns past the
//!   HLT), as the kvm-unit-tests `debug` test finds on hardware.
//!
//! The same rounds serve the hardware breakpoints DR0-DR3 while DR7 enables any
//! (`breakpoints.rs`): instruction breakpoints fault before the instruction, data breakpoints
//! trap after it, together with the single-step condition in one #DB. MOV SS and POP SS hold
//! off the #DB of their own single-step (dropped) and data breakpoints (reported after the
//! next instruction, merged into that one's #DB if it raises one itself: ICEBP) (SDM Vol. 3,
//! 6.8.3). Not modelled: DR6.BT, I/O breakpoints.

use super::breakpoints;
use super::{Machine, RunEnd};
use crate::engine::{EngineError, EngineKind};
use crate::exception::{vector, Fault};
use crate::state::rflags;
use crate::system::interrupt::Event;

/// DR6.BS: the single-step condition.
const DR6_BS: u64 = 1 << 14;
/// DR6.B0-B3: which breakpoints matched.
const DR6_B: u64 = 0xf;

/// Whether a software engine's round single-steps: TF is set, DR7 enables a breakpoint, or the
/// last step was MOV SS / POP SS.
pub(super) fn steps(cpu: &crate::cpu::Cpu) -> bool {
    let s = &cpu.state;
    s.rflags_other & rflags::TF != 0 || s.dr[7] & breakpoints::DR7_ENABLES != 0 || cpu.mov_ss_shadow.is_some()
}

impl Machine {
    /// A SYSCALL or SYSRET that just set TF traps now, before anything else happens.
    pub(super) fn trap_after_rflags_load(&mut self) -> Option<Option<RunEnd>> {
        let loaded = std::mem::take(&mut self.cpu.rflags_loaded);
        let tf = self.cpu.state.rflags_other & rflags::TF != 0;
        (loaded && tf && self.active != EngineKind::Kvm).then(|| self.single_step_trap())
    }

    /// Runs the one instruction at RIP and raises the single-step trap and the breakpoints'
    /// #DB around it.
    pub(super) fn single_step_round(&mut self) -> Result<Option<RunEnd>, EngineError> {
        let shadow = self.cpu.mov_ss_shadow.take();
        let watching = self.cpu.state.dr[7] & breakpoints::DR7_ENABLES != 0;
        let insn = breakpoints::decode_next(&mut self.cpu);
        let rf = self.cpu.state.rflags_other & rflags::RF != 0;
        if watching && !rf {
            let hits = breakpoints::instruction_hits(&self.cpu.state.dr, breakpoints::rip_linear(&self.cpu));
            if hits != 0 {
                // A fault: RIP stays at the instruction; its handler sets RF to go on.
                return Ok(self.debug_exception(hits, false));
            }
        }
        let accesses = if watching { breakpoints::data_accesses(&self.cpu, &insn) } else { Vec::new() };
        let tf_before = self.cpu.state.rflags_other & rflags::TF != 0;
        let prev = self.cpu.last_event.take();
        let before = self.cpu.retired;
        if let Some(end) = self.fall_back_one()? {
            return Ok(Some(end));
        }
        let event = self.cpu.last_event;
        let delivered = event.is_some();
        if !delivered {
            self.cpu.last_event = prev;
        }
        let loaded = std::mem::take(&mut self.cpu.rflags_loaded);
        let tf_now = self.cpu.state.rflags_other & rflags::TF != 0;
        let completed = self.cpu.retired > before && !delivered;
        if !completed {
            // A fault or an event took over. Held data-breakpoint hits of a MOV SS join the #DB
            // the instruction raised itself (ICEBP), or come right after any other event.
            return Ok(match shadow {
                Some(held) if held != 0 && delivered => {
                    if matches!(event, Some(Event::Exception(f)) if f.vector == vector::DB) {
                        self.cpu.state.dr[6] |= held;
                        None
                    } else {
                        self.debug_exception(held, false)
                    }
                }
                _ => None,
            });
        }
        if rf {
            // RF lets one instruction past its breakpoint and clears when it completes (SDM Vol. 3,
            // 18.3.1.1); an IRET that loaded RF set keeps it.
            self.cpu.state.rflags_other &= !rflags::RF;
        }
        let hits = if watching { breakpoints::data_hits(&self.cpu.state.dr, &accesses) } else { 0 };
        if breakpoints::loads_ss(&insn) {
            // MOV SS / POP SS: no #DB now; their own single-step is dropped.
            self.cpu.mov_ss_shadow = Some(hits);
            self.cpu.interrupt_shadow = true;
            return Ok(None);
        }
        let held = shadow.unwrap_or(0);
        // SYSCALL and SYSRET: TF after them decides; any other instruction: TF before it.
        let stepped = if loaded { tf_now } else { tf_before };
        if stepped || hits | held != 0 {
            // The trap follows a HLT at once, and the CPU does not stay halted.
            self.halted = false;
            return Ok(self.debug_exception(hits | held, stepped));
        }
        Ok(None)
    }

    /// Delivers a #DB from the stepping rounds: DR6 B0-B3 report `hits` (cleared for the
    /// others), BS the single-step condition; other DR6 bits are left as they are (SDM Vol. 3,
    /// 18.2.3).
    fn debug_exception(&mut self, hits: u64, single_step: bool) -> Option<RunEnd> {
        let dr6 = &mut self.cpu.state.dr[6];
        *dr6 = (*dr6 & !DR6_B) | hits | if single_step { DR6_BS } else { 0 };
        self.cpu.deliver(Event::Exception(Fault::new(vector::DB))).is_err().then_some(RunEnd::TripleFault)
    }

    /// Delivers the single-step #DB (a trap: RIP is already past the instruction).
    fn single_step_trap(&mut self) -> Option<RunEnd> {
        self.cpu.state.dr[6] |= DR6_BS;
        self.cpu.deliver(Event::Exception(Fault::new(vector::DB))).is_err().then_some(RunEnd::TripleFault)
    }
}
