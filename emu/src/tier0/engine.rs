//! Tier 0 as an [`Engine`]: the interpreter runs on `cpu.state` directly, so loading and storing
//! state cost nothing. It counts every instruction and stops exactly at `Limit::instructions`:
//! whole blocks while the limit is more than a block away, then one instruction at a time
//! (`Interp::step`). With a deadline it looks at the clock between slices.

use super::Interp;
use crate::cpu::Cpu;
use crate::decode::MAX_BLOCK;
use crate::engine::{Engine, EngineError, EngineKind, Exit, Limit};
use crate::state::rflags;
use crate::system::Event;
use std::time::Instant;

impl Engine for Interp {
    fn block_cache(&self) -> Option<&crate::cache::BlockCache> {
        Some(&self.cache)
    }

    #[inline]
    fn kind(&self) -> EngineKind {
        EngineKind::Interp
    }

    #[inline]
    fn load_state(&mut self, _cpu: &mut Cpu) -> Result<(), EngineError> {
        // `run` re-reads the mode from `cpu.state` on every call.
        Ok(())
    }

    #[inline]
    fn store_state(&mut self, _cpu: &mut Cpu) -> Result<(), EngineError> {
        Ok(())
    }

    #[inline]
    fn run(&mut self, cpu: &mut Cpu, limit: &Limit) -> Result<Exit, EngineError> {
        // Inline (with `Process::run_on` generic) so a system call costs no more than before.
        if *limit == Limit::NONE {
            // Nothing to count or watch (a user-mode process between system calls): straight
            // to the block loop, which no budget stops in practice.
            return Ok(Interp::run(self, cpu, u64::MAX));
        }
        Ok(run_to_limit(self, cpu, limit, Interp::run, Interp::step))
    }

    fn interrupt_ready(&self, cpu: &Cpu) -> bool {
        // The machine runs an interrupt-shadowed instruction before it asks (see `Exit::Stop`).
        cpu.state.rflags_other & rflags::IF != 0
    }

    fn interrupts_enabled(&self, cpu: &Cpu) -> bool {
        cpu.state.rflags_other & rflags::IF != 0
    }

    fn inject_interrupt(&mut self, cpu: &mut Cpu, vector: u8) -> Result<Option<Exit>, EngineError> {
        Ok(cpu.deliver(Event::External(vector)).is_err().then_some(Exit::TripleFault))
    }

    fn software_nmi(&self) -> bool {
        true
    }

    fn step_one(&mut self, cpu: &mut Cpu) -> Option<Option<Exit>> {
        Some(self.step(cpu))
    }

    fn flush_code(&mut self, cpu: &mut Cpu) {
        Interp::flush_code(self, cpu);
    }
}

/// Runs `engine` until `limit` (not [`Limit::NONE`]), stopping exactly at its instruction count:
/// `blocks(engine, cpu, budget)` runs whole blocks while the limit is more than a block away
/// (stopping at the first block boundary at or past `budget` instructions), then
/// `step(engine, cpu)` runs one instruction at a time. Between slices it looks at the soft poll
/// point and the deadline. Tier 0 and the JIT share it; they differ only in how whole blocks run.
#[inline(always)]
pub fn run_to_limit<E: ?Sized>(
    engine: &mut E,
    cpu: &mut Cpu,
    limit: &Limit,
    mut blocks: impl FnMut(&mut E, &mut Cpu, u64) -> Exit,
    mut step: impl FnMut(&mut E, &mut Cpu) -> Option<Exit>,
) -> Exit {
    let start = cpu.retired;
    let hard = start.saturating_add(limit.instructions);
    let soft = start.saturating_add(limit.poll_after.min(limit.instructions));
    loop {
        let now = cpu.retired;
        if now >= hard {
            return Exit::Limit;
        }
        let mut target = soft;
        if limit.deadline.is_some() {
            target = target.min(now.saturating_add(Limit::CLOCK_SLICE));
        }
        let exit = if hard - now > MAX_BLOCK as u64 {
            // Whole blocks: the loop stops at the first block boundary at or past its budget,
            // less than a block further, so never past `hard`.
            let budget = target.min(hard - MAX_BLOCK as u64).saturating_sub(now).max(1);
            blocks(engine, cpu, budget)
        } else {
            // Near the exact limit: one instruction at a time.
            step(engine, cpu).unwrap_or(Exit::Limit)
        };
        if exit != Exit::Limit {
            return exit;
        }
        if cpu.retired >= soft || limit.deadline.is_some_and(|d| Instant::now() >= d) {
            return Exit::Limit;
        }
    }
}
