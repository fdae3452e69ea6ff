//! Tier 0's run loop: executes decoded blocks (docs/ARCHITECTURE.md, decision 4).
//!
//! A block is a slice of [`Instr`](crate::decoded::Instr) entries; running it is a loop of indirect calls through each
//! entry's handler, with no decoding and no `match` on the opcode. The handlers live in
//! `interp/` (one file per instruction family) and follow the conventions in `decoded`; blocks
//! come from the block cache, which gets them from `decode`.

use crate::cache::{Block, BlockCache};
use crate::cpu::Cpu;
use crate::exception::{ExecResult, Stop};

mod engine;
pub use engine::run_to_limit;
mod observe;

pub use crate::engine::Exit;
pub use observe::{NoObserver, Observer};

/// The tier-0 engine: the decoded-block cache and the loop that runs it. The CPU it runs is
/// passed in (the machine or the user-mode process owns it, so any engine can run it next).
#[derive(Default)]
pub struct Interp {
    pub cache: BlockCache,
    /// Told about every instruction tier 0 runs (the instruction trace); `None` costs one test
    /// per `run` or `step` call, nothing per block or instruction.
    pub observer: Option<Box<dyn Observer>>,
}

impl Interp {
    pub fn new() -> Self {
        Interp { cache: BlockCache::new(), observer: None }
    }

    /// Runs `cpu` until an instruction stops or about `budget` instructions have retired
    /// (checked at block boundaries).
    pub fn run(&mut self, cpu: &mut Cpu, budget: u64) -> Exit {
        if self.observer.is_some() {
            return self.run_traced(cpu, budget);
        }
        self.run_observed(cpu, budget, &mut NoObserver)
    }

    /// [`Interp::run`] with the observer told about each instruction; kept out of line so the
    /// plain loop stays as it was.
    #[cold]
    #[inline(never)]
    fn run_traced(&mut self, cpu: &mut Cpu, budget: u64) -> Exit {
        let Some(mut obs) = self.observer.take() else { return self.run_observed(cpu, budget, &mut NoObserver) };
        let exit = self.run_observed(cpu, budget, &mut *obs);
        self.observer = Some(obs);
        exit
    }

    /// [`Interp::run`] with `obs` told about each instruction (monomorphized: the
    /// [`NoObserver`] version is the plain run loop).
    #[inline(always)]
    fn run_observed<O: Observer + ?Sized>(&mut self, cpu: &mut Cpu, budget: u64, obs: &mut O) -> Exit {
        let limit = cpu.retired.saturating_add(budget);
        // The machine may have delivered an interrupt or changed state since the last call.
        self.cache.forget_mode();
        let mut prev = None;
        loop {
            if cpu.softmmu.has_modified_code() {
                self.drop_modified_code(cpu);
                prev = None;
            }
            if cpu.softmmu.take_poll_request() {
                return Exit::Poll;
            }
            if cpu.retired >= limit {
                return Exit::Limit;
            }
            let result = match self.cache.lookup_after(cpu, prev) {
                Ok(idx) => {
                    prev = Some(idx);
                    run_block(cpu, self.cache.enter(idx), obs)
                }
                Err(stop) => Err(stop),
            };
            if let Err(stop) = result {
                prev = None;
                if cpu.softmmu.has_modified_code() {
                    self.drop_modified_code(cpu);
                }
                // Any stop may have changed CS, CPL or the paging mode.
                self.cache.forget_mode();
                if let Some(exit) = handle_stop(cpu, stop) {
                    return exit;
                }
            }
        }
    }

    /// Executes exactly one instruction, decoded afresh and not cached (single-stepping, the
    /// instruction after STI, lockstep comparison). Faults are handled as `run` handles them.
    pub fn step(&mut self, cpu: &mut Cpu) -> Option<Exit> {
        self.cache.forget_mode();
        if cpu.softmmu.has_modified_code() {
            self.drop_modified_code(cpu);
        }
        let cs_base = if cpu.state.code_bits() == 64 { 0 } else { cpu.state.segs[1].base };
        let la = cpu.state.rip.wrapping_add(cs_base);
        let result = cpu.translate_fetch(la).and_then(|pa| {
            let d = crate::decode::decode_block_max(cpu, la, pa, 1)?;
            let block = Block::single(d, la);
            match self.observer.as_deref_mut() {
                None => run_block(cpu, &block, &mut NoObserver),
                Some(obs) => run_block(cpu, &block, obs),
            }
        });
        if cpu.softmmu.has_modified_code() {
            self.drop_modified_code(cpu);
        }
        match result {
            Ok(()) => None,
            Err(stop) => handle_stop(cpu, stop),
        }
    }

    /// Drops the blocks of every page a store hit while it held code.
    #[inline(never)]
    fn drop_modified_code(&mut self, cpu: &mut Cpu) {
        cpu.softmmu.drain_modified_code(|page| self.cache.invalidate_page(page));
    }

    /// Drops every decoded block (after code was rewritten behind tier 0's back: another engine
    /// ran, or the runner wrote guest memory).
    pub fn flush_code(&mut self, cpu: &mut Cpu) {
        self.cache.clear(cpu);
    }
}

/// A system-level guest gets its faults and software interrupts delivered here, through its
/// IDT; everything else goes back to the caller. (Public for the JIT, which stops as tier 0 does.)
pub fn handle_stop(cpu: &mut Cpu, stop: Stop) -> Option<Exit> {
    use crate::system::Event;
    if !cpu.config.system {
        return Some(Exit::Stop(stop));
    }
    let event = match stop {
        Stop::Fault(f) => Event::Exception(f),
        Stop::SoftInt(v) => Event::Software(v),
        Stop::Trap(v) => Event::Exception(crate::exception::Fault::new(v)),
        other => return Some(Exit::Stop(other)),
    };
    match cpu.deliver(event) {
        Ok(()) => None,
        Err(_) => Some(Exit::TripleFault),
    }
}

/// Executes one block. Maintains `retired` and RIP per the conventions in the module doc; `obs`
/// sees each instruction before it runs and when it retires (with its index: instructions
/// retired before it), which for [`NoObserver`] compiles to nothing. (Public for the JIT, which
/// runs the blocks it has not compiled exactly as tier 0 does.)
#[inline(always)]
pub fn run_block<O: Observer + ?Sized>(cpu: &mut Cpu, block: &Block, obs: &mut O) -> ExecResult {
    let instrs = &block.instrs;
    let base = cpu.retired;
    // RF is cleared at the start of every instruction, after the code-breakpoint check (SDM
    // Vol. 3, 17.3.1.1). Only IRET (a block end) sets it, so clearing it once per block is
    // exact; a fault of the first instruction pushes RF = 1 anyway, and an interrupt taken
    // between IRET and this block still sees it set, as on hardware.
    cpu.state.rflags_other &= !crate::state::rflags::RF;
    for (i, e) in instrs.iter().enumerate() {
        obs.before(cpu, e.rip(), base + i as u64);
        match (e.exec)(cpu, e) {
            Ok(()) => {
                obs.retired(cpu, base + i as u64);
                if cpu.softmmu.stop_block() {
                    // A store hit a page holding code: the rest of the block may be stale.
                    cpu.softmmu.clear_stop_block();
                    cpu.retired += i as u64 + 1;
                    if !(i + 1 == instrs.len() && block.ends_in_branch) {
                        cpu.state.rip = e.next_rip;
                    }
                    return Ok(());
                }
            }
            Err(Stop::Fault(f)) => {
                cpu.softmmu.clear_stop_block();
                cpu.retired += i as u64;
                cpu.state.rip = e.rip();
                return Err(Stop::Fault(f));
            }
            Err(other) => {
                // A stop that retires the instruction (a system call, HLT, an interrupt shadow).
                obs.retired(cpu, base + i as u64);
                cpu.softmmu.clear_stop_block();
                cpu.retired += i as u64 + 1;
                return Err(other);
            }
        }
    }
    cpu.retired += instrs.len() as u64;
    if !block.ends_in_branch {
        cpu.state.rip = block.end_rip;
    }
    Ok(())
}
