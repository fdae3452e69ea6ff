//! The JIT's only `unsafe`: code memory, the call into generated code, and the trampoline
//! generated code calls tier-0 handlers through.
//!
//! Code memory is one memfd mapped twice (memmap2): a read-write view the compiler and the
//! chain patcher write through, and a read-execute view the CPU runs. No page is ever writable
//! and executable at the same address. x86 keeps instruction fetch coherent with stores to the
//! same physical memory (SDM Vol. 3, 8.1.3); every patch happens while no generated code runs,
//! and generated code is only reached again through a call (a branch), as the SDM asks.

use super::RunCtx;
use emu::cpu::Cpu;
use emu::decoded::Instr;
use memmap2::{Mmap, MmapMut, MmapOptions};
use std::fs::File;

/// The code cache's memory (see the module doc).
pub struct CodeMemory {
    rw: MmapMut,
    rx: Mmap,
    /// Kept open for the lifetime of both views (they map it).
    _file: File,
}

/// The signature of the entry stub at offset 0 (emitted by `x64::emit_stubs`): it saves the
/// callee-saved registers, points `rbx` at the context and `rbp` at the CPU, and jumps to `code`.
type EnterFn = unsafe extern "sysv64" fn(ctx: *mut RunCtx, code: usize) -> u64;

impl CodeMemory {
    /// `len` bytes of code memory (rounded up to whole pages by the kernel).
    ///
    /// # Errors
    /// The memfd could not be created, sized or mapped.
    pub fn new(len: usize) -> std::io::Result<CodeMemory> {
        let fd = rustix::fs::memfd_create("strata-jit", rustix::fs::MemfdFlags::CLOEXEC)?;
        let file = File::from(fd);
        file.set_len(len as u64)?;
        // SAFETY: the memfd is private to this object: nothing else can truncate it or map it,
        // so the mapping stays valid for as long as `CodeMemory` lives.
        let rw = unsafe { MmapOptions::new().len(len).map_mut(&file)? };
        // SAFETY: as above; this view is never written through (it is `Mmap`, not `MmapMut`).
        let rx = unsafe { MmapOptions::new().len(len).map_exec(&file)? };
        Ok(CodeMemory { rw, rx, _file: file })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.rw.len()
    }

    /// Host address of offset 0 in the executable view (where generated code is linked for).
    pub fn exec_base(&self) -> usize {
        self.rx.as_ptr() as usize
    }

    /// The writable view.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.rw
    }

    /// The bytes as they are (for reading back a patch site).
    pub fn bytes(&self) -> &[u8] {
        &self.rw
    }

    /// Runs the translation at offset `code` through the entry stub until it returns (see
    /// `x64` for what the result means).
    ///
    /// The caller guarantees (module `jit`) that the stub is at offset 0 and `code` is the entry
    /// of a live translation whose instruction pointers point into blocks that are still
    /// valid, and that `ctx.cpu` was just derived from the `&mut Cpu` it holds.
    pub fn enter(&self, ctx: &mut RunCtx, code: usize) -> u64 {
        debug_assert!(code < self.len());
        // SAFETY: offset 0 of the executable view holds the entry stub, which has the
        // `EnterFn` signature (`x64::emit_stubs` is written to it before anything runs).
        let enter: EnterFn = unsafe { std::mem::transmute::<usize, EnterFn>(self.exec_base()) };
        // SAFETY: the stub saves and restores every callee-saved register and keeps the stack
        // aligned; the translation only calls `call_handler` with the pointers it embeds, which
        // point into live blocks (translations of dropped blocks are unlinked and never entered).
        unsafe { enter(ctx, self.exec_base() + code) }
    }
}

/// The one trampoline: generated code calls it for each instruction it does not execute inline,
/// with the run's context, the decoded instruction and `info` (the instruction's index in its
/// block, bit 31 set for a block-ending branch). 0: go on with the next instruction; 1: leave
/// the translation (the outcome is in `ctx.stop`, RIP and `retired` are as tier 0 leaves them).
pub extern "sysv64" fn call_handler(ctx: *mut RunCtx, e: *const Instr, info: u32) -> u32 {
    // SAFETY: `ctx` is the `&mut RunCtx` `CodeMemory::enter` was given, still borrowed for the
    // duration of the call; nothing else touches it while generated code runs.
    let ctx = unsafe { &mut *ctx };
    // SAFETY: `ctx.cpu` was derived from the run loop's `&mut Cpu` right before entering, and
    // the loop does not use that reference until the translation returns.
    let cpu: &mut Cpu = unsafe { &mut *ctx.cpu };
    // SAFETY: `e` points into a block of the engine's cache that stays valid while its
    // translation can run (dropping a block unlinks its translation first).
    let e = unsafe { &*e };
    super::exec_one(ctx, cpu, e, info)
}

/// The direct call of an x87 register-stack form (`x87::direct`; part X of the sixth round)
/// with the CPU (generated code's `rbp`): 0 when it ran, 1 when it faulted without changing
/// anything (translated code then calls [`call_handler`] for it; see `jit/x87.rs`).
pub extern "sysv64" fn call_x87(cpu: *mut Cpu, e: *const Instr) -> u32 {
    // SAFETY: `cpu` is `ctx.cpu` (see `call_handler`): derived from the run loop's `&mut Cpu`,
    // which is not otherwise used while generated code runs; `e` points into a live block.
    let (cpu, e) = unsafe { (&mut *cpu, &*e) };
    super::x87::run(cpu, e)
}

/// Condition code `cc` (0..=15, x86 order) of the guest flags in the lazy record, for a
/// block-ending Jcc after an instruction whose handler ran (an inline form's miss path).
pub extern "sysv64" fn lazy_cond(ctx: *mut RunCtx, cc: u32) -> u32 {
    // SAFETY: as in `call_handler`: `ctx` and the CPU it points to are not otherwise in use
    // while generated code runs.
    let cpu: &Cpu = unsafe { &*(*ctx).cpu };
    u32::from(cpu.state.lazy.cond(cc as u8))
}

/// The guest's six arithmetic flags as RFLAGS bits, from the lazy record: for an inline form's
/// miss path whose hit path keeps them in a host register (`x64::write_record`).
pub extern "sysv64" fn lazy_rflags(ctx: *mut RunCtx) -> u64 {
    // SAFETY: as in `call_handler`: `ctx` and the CPU it points to are not otherwise in use
    // while generated code runs.
    let cpu: &Cpu = unsafe { &*(*ctx).cpu };
    cpu.state.lazy.materialize()
}
