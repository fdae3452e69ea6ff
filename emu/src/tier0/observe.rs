//! Watching tier 0 run instructions one by one, for the instruction trace: an [`Observer`] is
//! told about each instruction before it runs and when it retires, inside the normal block loop,
//! so a traced run retires exactly the instructions, blocks and device polls an untraced one
//! does. Without an observer the block loop is monomorphized over [`NoObserver`], whose empty
//! hooks compile away.

use crate::cpu::Cpu;

/// Told about every instruction tier 0 executes.
pub trait Observer {
    /// The instruction at `rip` is about to run; `index` is the number of instructions retired
    /// before it. `cpu.state` is the state it starts from, except `state.rip`, which tier 0
    /// updates only at block ends (use `rip`).
    fn before(&mut self, cpu: &mut Cpu, rip: u64, index: u64);
    /// The instruction announced by the last `before` retired (one that faults does not).
    fn retired(&mut self, cpu: &mut Cpu, index: u64);
}

/// The observer of an untraced run.
pub struct NoObserver;

impl Observer for NoObserver {
    #[inline(always)]
    fn before(&mut self, _cpu: &mut Cpu, _rip: u64, _index: u64) {}
    #[inline(always)]
    fn retired(&mut self, _cpu: &mut Cpu, _index: u64) {}
}
