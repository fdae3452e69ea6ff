//! The machine's engines: tier 0 is always there (it also runs what another engine hands
//! back), any number of others ([`crate::engine::Engine`]: KVM, the JIT) are attached beside it,
//! and one of them — the *active* engine — runs the CPU. [`Machine::switch_engine`] moves the
//! running CPU between any two at an instruction boundary.
//!
//! State ownership: while an engine that keeps registers of its own (KVM) is active, `cpu.state`
//! is stale; [`Machine::sync_state`] copies it out (for a dump or a snapshot). Guest RAM is
//! shared, so only the registers move at a switch; the engine switched to drops its decoded or
//! translated code, because the other engine may have rewritten code without passing through
//! its self-modifying-code checks.
//!
//! Fallback: when the active engine reports [`Exit::Unemulated`] (KVM could not emulate an
//! instruction), the machine executes exactly that one instruction on tier 0 and resumes it
//! (engines that step themselves, [`Engine::step_one`], run it on their own cache).

use super::{Machine, RunEnd};
use crate::cpu::Cpu;
use crate::engine::{Engine, EngineError, EngineKind, Exit};
use crate::tier0::Interp;

/// Counts of what happened under engines other than tier 0, for `--timeline` and tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineStats {
    /// Returns from a non-tier-0 engine's `run`.
    pub exits: u64,
    /// External interrupts injected into a non-tier-0 engine.
    pub injected: u64,
    /// Instructions handed to tier 0 because the active engine could not run them.
    pub fallbacks: u64,
    /// Engine switches (any direction).
    pub switches: u64,
}

/// The engine of `kind` among tier 0 and the attached ones (an error when none is attached).
pub(super) fn engine_of<'a>(
    interp: &'a mut Interp,
    others: &'a mut [Box<dyn Engine>],
    kind: EngineKind,
) -> Result<&'a mut dyn Engine, EngineError> {
    if kind == EngineKind::Interp {
        return Ok(interp);
    }
    others
        .iter_mut()
        .find(|e| e.kind() == kind)
        .map(|e| &mut **e as &mut dyn Engine)
        .ok_or_else(|| EngineError { engine: "machine", message: format!("no {kind} engine attached") })
}

impl Machine {
    /// Attaches `engine` beside tier 0 (replacing one of the same kind); with `active` it runs the
    /// CPU at once (the state moves into it), otherwise the current engine goes on until
    /// `switch_engine`.
    ///
    /// # Errors
    /// The machine is deterministic and the engine cannot count instructions, `engine` claims to
    /// be tier 0 or `Auto`, or it refused the state.
    pub fn attach_engine(&mut self, engine: Box<dyn Engine>, active: bool) -> Result<(), EngineError> {
        let kind = engine.kind();
        if matches!(kind, EngineKind::Interp | EngineKind::Auto) {
            return Err(EngineError { engine: "machine", message: format!("cannot attach a second {kind} engine") });
        }
        if self.virt.is_some() {
            if let Some(why) = kind.why_no_count("a deterministic machine") {
                return Err(EngineError { engine: "machine", message: why });
            }
        }
        self.engines.retain(|e| e.kind() != kind);
        self.engines.push(engine);
        if active {
            self.move_cpu_to(kind)?;
        }
        Ok(())
    }

    // --- Issue 11 (gdb under --tier kvm): reach an attached engine's own debugging. ---
    /// Arms or disarms the guest debugging of the engine of `kind` (see
    /// [`Engine::set_guest_debug`]); false when it has none.
    ///
    /// # Errors
    /// No such engine is attached, or it refused the request.
    pub fn set_guest_debug(
        &mut self,
        kind: EngineKind,
        debug: Option<&crate::engine::GuestDebug>,
    ) -> Result<bool, EngineError> {
        engine_of(&mut self.interp, &mut self.engines, kind)?.set_guest_debug(debug)
    }

    /// What the guest debugging of the engine of `kind` can do here (`None`: it has none).
    ///
    /// # Errors
    /// No such engine is attached.
    pub fn guest_debug_kinds(
        &mut self,
        kind: EngineKind,
    ) -> Result<Option<crate::engine::GuestDebugKinds>, EngineError> {
        Ok(engine_of(&mut self.interp, &mut self.engines, kind)?.guest_debug_kinds())
    }
    // --- end issue 11 ---

    /// The engine running the CPU now.
    pub fn active_engine(&self) -> EngineKind {
        self.active
    }

    /// The engines the machine can switch to: tier 0 and every attached one.
    pub fn engines(&self) -> Vec<EngineKind> {
        std::iter::once(EngineKind::Interp).chain(self.engines.iter().map(|e| e.kind())).collect()
    }

    /// Moves the running CPU to the engine of `kind` at the current instruction boundary.
    ///
    /// # Errors
    /// No such engine is attached, or one of the two engines failed to hand over the state.
    pub fn switch_engine(&mut self, kind: EngineKind) -> Result<(), EngineError> {
        if kind == self.active {
            return Ok(());
        }
        self.move_cpu_to(kind)?;
        self.engine_stats.switches += 1;
        Ok(())
    }

    /// Hands the CPU from the active engine to the engine of `kind`.
    fn move_cpu_to(&mut self, kind: EngineKind) -> Result<(), EngineError> {
        engine_of(&mut self.interp, &mut self.engines, kind)?;
        self.sync_state()?;
        let cpu = &mut self.cpu;
        let to = engine_of(&mut self.interp, &mut self.engines, kind)?;
        to.flush_code(cpu);
        to.load_state(cpu)?;
        self.active = kind;
        self.record(&format!("engine: {kind}"));
        Ok(())
    }

    /// Makes `cpu.state` current (copies it out of the active engine).
    ///
    /// # Errors
    /// The engine could not report its state.
    pub fn sync_state(&mut self) -> Result<(), EngineError> {
        let kind = self.active;
        let cpu = &mut self.cpu;
        engine_of(&mut self.interp, &mut self.engines, kind)?.store_state(cpu)
    }

    /// Pushes `cpu.state` into the active engine (after the caller changed it).
    ///
    /// # Errors
    /// The engine refused the state.
    pub fn reload_state(&mut self) -> Result<(), EngineError> {
        let kind = self.active;
        let cpu = &mut self.cpu;
        engine_of(&mut self.interp, &mut self.engines, kind)?.load_state(cpu)
    }

    /// Tier 0 runs the one instruction at RIP: one the active engine could not run (on the state
    /// it hands over; then it takes the CPU back), or the one in an interrupt shadow. `Some`
    /// when that ended the run.
    pub(super) fn fall_back_one(&mut self) -> Result<Option<RunEnd>, EngineError> {
        let kind = self.active;
        let cpu: &mut Cpu = &mut self.cpu;
        let before = cpu.retired;
        // Tier 0 and the JIT step on their own block cache (they share the CPU's SoftMmu, so a
        // store into code must reach the cache that holds it); other engines hand over.
        let e = match engine_of(&mut self.interp, &mut self.engines, kind)?.step_one(cpu) {
            Some(e) => e,
            None => {
                engine_of(&mut self.interp, &mut self.engines, kind)?.store_state(cpu)?;
                self.interp.flush_code(cpu);
                self.engine_stats.fallbacks += 1;
                self.interp.step(cpu)
            }
        };
        self.retire_virtual(before);
        let end = self.after_step(e);
        let cpu = &mut self.cpu;
        engine_of(&mut self.interp, &mut self.engines, kind)?.load_state(cpu)?;
        Ok(end)
    }

    /// What one tier-0 step's exit means for the run (halt, triple fault, or go on).
    pub(super) fn after_step(&mut self, e: Option<Exit>) -> Option<RunEnd> {
        match e {
            Some(Exit::TripleFault) => Some(RunEnd::TripleFault),
            Some(Exit::Stop(crate::exception::Stop::Halt)) => {
                self.halted = true;
                None
            }
            _ => None,
        }
    }
}
