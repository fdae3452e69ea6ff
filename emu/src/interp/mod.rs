//! Tier 0: executes decoded blocks (ARCHITECTURE.md, decision 4).
//!
//! A block is a slice of [`Instr`] entries; running it is a loop of indirect calls through each
//! entry's handler, with no decoding and no `match` on the opcode. Handlers live in one file per
//! instruction family; `decode/table.rs` maps iced-x86 `Code`s to them.
//!
//! Conventions every handler follows:
//! - Non-branch handlers never touch `state.rip`; the run loop advances it at block end. A
//!   handler that needs the address of the next instruction reads `e.next_rip`.
//! - Branch handlers (always the last entry of a block) set `state.rip`.
//! - A handler that faults returns `Err(Stop::Fault(..))` before committing anything; the loop
//!   then points RIP at the faulting instruction.
//! - Other stops (`Syscall`, `Halt`, `Yield`) mean the instruction completed; the handler has set
//!   `state.rip` to `e.next_rip` (or a branch target) itself.

pub mod arith;
pub mod bit;
pub mod ctrl_xfer;
pub mod data_xfer;
pub mod flag_ctrl;
#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) mod hosttest;
pub mod io;
pub mod legacy;
pub mod logical;
pub mod misc;
pub mod mul_div;
pub mod operand;
#[cfg(all(test, target_arch = "x86_64"))]
mod precise_tests;
pub mod shift;
pub mod sse;
pub mod stack;
pub mod string;
pub mod sys;
pub mod system;
pub mod x87;

use crate::cache::BlockCache;
use crate::cpu::Cpu;
use crate::exception::{ExecResult, Stop};

/// An instruction handler.
pub type Handler = fn(&mut Cpu, &Instr) -> ExecResult;

/// No register in this operand slot (EA base or index absent).
pub const NO_REG: u8 = 0xff;
/// Segment slot meaning "base 0" (ES/CS/SS/DS in 64-bit mode).
pub const NO_SEG: u8 = 6;

/// One decoded instruction: a handler plus pre-resolved operands. What each operand field means
/// is up to the handler's family; the common meaning is given per field.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Instr {
    pub exec: Handler,
    /// Address of the following instruction (RIP-relative operands are already resolved).
    pub next_rip: u64,
    /// The immediate operand (sign-extended as the encoding specifies), or the branch target.
    pub imm: u64,
    /// Displacement of the memory operand (absolute address for RIP-relative forms).
    pub disp: u64,
    /// Mask applied to base + index*scale + disp (address size).
    pub amask: u64,
    /// Mask applied after the segment base is added (32-bit linear addresses outside long mode).
    pub lmask: u64,
    /// Register in operand position 0 (GPR: 0-15, high-byte registers AH/CH/DH/BH are 16-19);
    /// `NO_REG` when that operand is memory or an immediate.
    pub dst: u8,
    /// Register in operand position 1 (`op m, r` has its register here).
    pub src: u8,
    /// Register in operand position 2 (SHLD/SHRD's CL, 3-operand forms), or ENTER's nesting
    /// level / the second immediate byte.
    pub src2: u8,
    pub base: u8,
    pub index: u8,
    pub scale: u8,
    pub seg: u8,
    /// Length in bytes.
    pub len: u8,
    /// The iced-x86 `Code` (for tracing, and for handlers shared by several forms).
    pub code: u16,
    /// REP/REPE (1) or REPNE (2) prefix.
    pub rep: u8,
    /// Operand size in bytes where the handler needs it at run time (string ops, far branches).
    pub opsize: u8,
    /// Address size in bytes (2, 4, 8).
    pub asize: u8,
    pub _pad: [u8; 3],
}

impl Instr {
    /// Address of this instruction.
    #[inline(always)]
    pub fn rip(&self) -> u64 {
        self.next_rip.wrapping_sub(self.len as u64)
    }
}

/// Why `Interp::run` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// An instruction stopped (fault, syscall, halt, yield).
    Stop(Stop),
    /// The instruction budget was used up.
    Budget,
    /// Delivering a double fault failed: the CPU shut down (a PC resets; Strata stops).
    TripleFault,
}

/// The tier-0 engine: a CPU and its decoded-block cache.
pub struct Interp {
    pub cpu: Cpu,
    pub cache: BlockCache,
}

impl Interp {
    pub fn new(cpu: Cpu) -> Self {
        Interp { cpu, cache: BlockCache::new() }
    }

    /// Runs until an instruction stops or about `budget` instructions have retired (checked at
    /// block boundaries).
    pub fn run(&mut self, budget: u64) -> Exit {
        let limit = self.cpu.retired.saturating_add(budget);
        // The machine may have delivered an interrupt or changed state since the last call.
        self.cache.forget_mode();
        let mut prev = None;
        loop {
            if !self.cpu.smc_pages.is_empty() {
                self.drop_modified_code();
                prev = None;
            }
            if self.cpu.retired >= limit {
                return Exit::Budget;
            }
            let result = match self.cache.lookup_after(&mut self.cpu, prev) {
                Ok(idx) => {
                    prev = Some(idx);
                    run_block(&mut self.cpu, self.cache.block(idx))
                }
                Err(stop) => Err(stop),
            };
            if let Err(stop) = result {
                prev = None;
                if !self.cpu.smc_pages.is_empty() {
                    self.drop_modified_code();
                }
                // Any stop may have changed CS, CPL or the paging mode.
                self.cache.forget_mode();
                if let Some(exit) = self.handle_stop(stop) {
                    return exit;
                }
            }
        }
    }

    /// A system-level guest gets its faults and software interrupts delivered here, through
    /// its IDT; everything else goes back to the caller.
    fn handle_stop(&mut self, stop: Stop) -> Option<Exit> {
        use crate::system::Event;
        if !self.cpu.config.system {
            return Some(Exit::Stop(stop));
        }
        let event = match stop {
            Stop::Fault(f) => Event::Exception(f),
            Stop::SoftInt(v) => Event::Software(v),
            Stop::Trap(v) => Event::Exception(crate::exception::Fault::new(v)),
            other => return Some(Exit::Stop(other)),
        };
        match self.cpu.deliver(event) {
            Ok(()) => None,
            Err(_) => Some(Exit::TripleFault),
        }
    }

    /// Executes exactly one instruction, decoded afresh and not cached (single-stepping, the
    /// instruction after STI, lockstep comparison). Faults are handled as `run` handles them.
    pub fn step(&mut self) -> Option<Exit> {
        self.cache.forget_mode();
        if !self.cpu.smc_pages.is_empty() {
            self.drop_modified_code();
        }
        let cs_base = if self.cpu.state.code_bits() == 64 { 0 } else { self.cpu.state.segs[1].base };
        let la = self.cpu.state.rip.wrapping_add(cs_base);
        let result = self.cpu.translate_fetch(la).and_then(|pa| {
            let d = crate::decode::decode_block_max(&mut self.cpu, la, pa, 1)?;
            let block = crate::cache::Block::single(d, la);
            run_block(&mut self.cpu, &block)
        });
        if !self.cpu.smc_pages.is_empty() {
            self.drop_modified_code();
        }
        match result {
            Ok(()) => None,
            Err(stop) => self.handle_stop(stop),
        }
    }

    /// Drops the blocks of every page a store hit while it held code.
    #[inline(never)]
    fn drop_modified_code(&mut self) {
        let mut pages = std::mem::take(&mut self.cpu.smc_pages);
        for page in pages.drain(..) {
            self.cache.invalidate_page(page);
        }
        self.cpu.smc_pages = pages;
    }

    /// Drops every decoded block (after the runner rewrites code behind the CPU's back).
    pub fn flush_code(&mut self) {
        self.cache.clear(&mut self.cpu);
    }
}

/// Executes one block. Maintains `retired` and RIP per the conventions in the module doc.
#[inline(always)]
fn run_block(cpu: &mut Cpu, block: &crate::cache::Block) -> ExecResult {
    let instrs = &block.instrs;
    // RF is cleared at the start of every instruction, after the code-breakpoint check (SDM
    // Vol. 3, 17.3.1.1). Only IRET (a block end) sets it, so clearing it once per block is
    // exact; a fault of the first instruction pushes RF = 1 anyway, and an interrupt taken
    // between IRET and this block still sees it set, as on hardware.
    cpu.state.rflags_other &= !crate::state::rflags::RF;
    for (i, e) in instrs.iter().enumerate() {
        match (e.exec)(cpu, e) {
            Ok(()) => {
                if cpu.stop_block {
                    // A store hit a page holding code: the rest of the block may be stale.
                    cpu.stop_block = false;
                    cpu.retired += i as u64 + 1;
                    if !(i + 1 == instrs.len() && block.ends_in_branch) {
                        cpu.state.rip = e.next_rip;
                    }
                    return Ok(());
                }
            }
            Err(Stop::Fault(f)) => {
                cpu.stop_block = false;
                cpu.retired += i as u64;
                cpu.state.rip = e.rip();
                return Err(Stop::Fault(f));
            }
            Err(other) => {
                cpu.stop_block = false;
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
