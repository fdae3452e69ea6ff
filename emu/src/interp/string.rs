//! String instructions: MOVS, CMPS, SCAS, LODS, STOS in byte/word/dword/qword sizes, with and
//! without REP/REPE/REPNE, in both directions (DF), with 64-, 32- and 16-bit address sizes (the
//! index and count registers are used and written at the address size), and a segment override
//! on the source (SDM Vol. 2, those entries, and Vol. 1, 7.3.9). INS and OUTS (`io.rs`) are
//! stepped by the same `exec_string`.
//!
//! Every iteration is precise: registers are updated element by element, so a fault in the
//! middle leaves RSI/RDI/RCX at the progress so far and (through the run loop) RIP at the
//! instruction, which resumes where it stopped. A long REP yields after `MAX_ELEMENTS` elements
//! (RIP left at the instruction, `Stop::Yield`) so the machine loop can deliver interrupts.
//!
//! REP MOVS and REP STOS with DF = 0 take a fast path: whole runs of elements that stay inside
//! one source page and one destination page are moved as one slice copy/fill through the
//! translated physical addresses. The slow path (one element at a time) takes over for elements
//! that cross a page, for MMIO, for destinations on pages that hold decoded code (so
//! self-modifying-code detection sees every store) and for overlapping forward copies (whose
//! element-by-element result differs from a block copy). An F2 (REPNE) prefix on MOVS/STOS/LODS
//! acts as REP, as on hardware.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row, NO_SEG};
use crate::exception::{ExecResult, Stop};
use crate::flags::{Width, W16, W32, W64, W8};
use crate::mmu::Access;
use crate::state::{gpr, rflags, SegReg};
use iced_x86::Code as C;

/// Elements one execution of a REP instruction handles before yielding.
pub const MAX_ELEMENTS: u64 = 1 << 22;

/// Which string operation a handler performs.
pub trait StrOp {
    /// Reads [rSI] (MOVS, CMPS, LODS).
    const SRC: bool;
    /// Accesses [rDI] (MOVS, CMPS, SCAS, STOS).
    const DST: bool = true;
    /// CMPS and SCAS: set flags and stop REPE/REPNE on the ZF condition.
    const COMPARES: bool = false;
    /// MOVS and STOS: eligible for the page-run fast path.
    const BULK: bool = false;
    /// One element (no register updates; the caller advances them).
    fn element<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult;
}

pub struct Movs;
pub struct Cmps;
pub struct Scas;
pub struct Lods;
pub struct Stos;

/// Current index register value (at the address size).
#[inline(always)]
fn idx(cpu: &Cpu, r: usize, e: &Instr) -> u64 {
    cpu.state.gpr[r] & e.amask
}

/// Linear address of the source element: seg (DS or override) : rSI.
#[inline(always)]
pub(crate) fn src_la(cpu: &Cpu, e: &Instr) -> u64 {
    cpu.seg_addr(e.seg, idx(cpu, gpr::RSI, e), e.lmask)
}

/// Linear address of the destination element: ES : rDI (ES has base 0 in 64-bit mode).
#[inline(always)]
pub(crate) fn dst_la(cpu: &Cpu, e: &Instr) -> u64 {
    let es = if e.lmask == u64::MAX { NO_SEG } else { SegReg::Es as u8 };
    cpu.seg_addr(es, idx(cpu, gpr::RDI, e), e.lmask)
}

/// Writes an index or count register at the address size (32-bit writes clear bits 63:32).
#[inline(always)]
fn set_areg(cpu: &mut Cpu, r: usize, v: u64, e: &Instr) {
    let g = &mut cpu.state.gpr[r];
    *g = match e.amask {
        u64::MAX => v,
        0xffff_ffff => v & 0xffff_ffff,
        m => (*g & !m) | (v & m),
    };
}

/// Adds `delta` (already signed by DF and scaled by the element size) to an index register.
#[inline(always)]
fn advance(cpu: &mut Cpu, r: usize, delta: u64, e: &Instr) {
    let v = cpu.state.gpr[r].wrapping_add(delta);
    set_areg(cpu, r, v, e);
}

impl StrOp for Movs {
    const SRC: bool = true;
    const BULK: bool = true;
    #[inline(always)]
    fn element<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
        let v = cpu.read::<W>(src_la(cpu, e))?;
        cpu.write::<W>(dst_la(cpu, e), v)
    }
}

impl StrOp for Stos {
    const SRC: bool = false;
    const BULK: bool = true;
    #[inline(always)]
    fn element<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
        let v = cpu.get::<W>(0);
        cpu.write::<W>(dst_la(cpu, e), v)
    }
}

impl StrOp for Lods {
    const SRC: bool = true;
    const DST: bool = false;
    #[inline(always)]
    fn element<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
        let v = cpu.read::<W>(src_la(cpu, e))?;
        cpu.set::<W>(0, v);
        Ok(())
    }
}

impl StrOp for Cmps {
    const SRC: bool = true;
    const COMPARES: bool = true;
    #[inline(always)]
    fn element<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
        let a = cpu.read::<W>(src_la(cpu, e))?;
        let b = cpu.read::<W>(dst_la(cpu, e))?;
        cpu.state.lazy.set_oszapc_sub::<W>(a, b, a.wrapping_sub(b) & W::MASK);
        Ok(())
    }
}

impl StrOp for Scas {
    const SRC: bool = false;
    const COMPARES: bool = true;
    #[inline(always)]
    fn element<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
        let a = cpu.get::<W>(0);
        let b = cpu.read::<W>(dst_la(cpu, e))?;
        cpu.state.lazy.set_oszapc_sub::<W>(a, b, a.wrapping_sub(b) & W::MASK);
        Ok(())
    }
}

/// One string instruction, with or without a repeat prefix.
pub fn exec_string<O: StrOp, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let delta =
        if cpu.state.rflags_other & rflags::DF != 0 { (W::BYTES as u64).wrapping_neg() } else { W::BYTES as u64 };
    if e.rep == 0 {
        O::element::<W>(cpu, e)?;
        if O::SRC {
            advance(cpu, gpr::RSI, delta, e);
        }
        if O::DST {
            advance(cpu, gpr::RDI, delta, e);
        }
        return Ok(());
    }
    let mut done = 0u64;
    loop {
        let count = cpu.state.gpr[gpr::RCX] & e.amask;
        if count == 0 {
            return Ok(());
        }
        if done >= MAX_ELEMENTS {
            cpu.state.rip = e.rip();
            return Err(Stop::Yield);
        }
        if O::BULK && delta == W::BYTES as u64 && count > 1 {
            let n = bulk_run::<O, W>(cpu, e, count);
            if n > 0 {
                advance(cpu, gpr::RCX, n.wrapping_neg(), e);
                done += n;
                continue;
            }
        }
        O::element::<W>(cpu, e)?;
        if O::SRC {
            advance(cpu, gpr::RSI, delta, e);
        }
        if O::DST {
            advance(cpu, gpr::RDI, delta, e);
        }
        advance(cpu, gpr::RCX, u64::MAX, e);
        done += 1;
        if O::COMPARES {
            // REPE (F3) stops when ZF = 0, REPNE (F2) when ZF = 1.
            let zf = cpu.state.lazy.zf();
            if (e.rep == 1) != zf {
                return Ok(());
            }
        }
    }
}

/// Physical address of `la` if the access needs no walk and no slow-path handling (RAM, and for
/// writes a page without code), translating and filling the TLB on a miss. `None` sends the
/// caller to the element-by-element path, which raises any fault precisely.
#[inline(always)]
fn fast_pa(cpu: &mut Cpu, la: u64, access: Access) -> Option<u64> {
    let user = cpu.state.cpl == 3;
    let write = access == Access::Write;
    if let Some(pa) = cpu.softmmu.tlb().data_paddr(user, la, write) {
        return Some(pa);
    }
    // A miss: walk once (a fault here is left for the slow path to raise in order).
    cpu.translate_slow(la, access).ok()?;
    cpu.softmmu.tlb().data_paddr(user, la, write)
}

/// Moves as many whole elements as fit in the current source and destination pages (MOVS) or
/// destination page (STOS) with one slice operation, and advances rSI/rDI. Returns how many
/// elements were done (0: take the slow path for the next element).
fn bulk_run<O: StrOp, W: Width>(cpu: &mut Cpu, e: &Instr, count: u64) -> u64 {
    let is_movs = O::SRC;
    let di = idx(cpu, gpr::RDI, e);
    let si = idx(cpu, gpr::RSI, e);
    let dla = dst_la(cpu, e);
    let sla = src_la(cpu, e);
    let mut room = (4096 - (dla & 0xfff)) / W::BYTES as u64;
    if is_movs {
        room = room.min((4096 - (sla & 0xfff)) / W::BYTES as u64);
    }
    let n = count.min(room);
    let bytes = n * W::BYTES as u64;
    // The index registers must not wrap at the address size inside the run.
    let fits = |idx: u64| idx.checked_add(bytes).is_some_and(|end| end <= e.amask);
    if n == 0 || !fits(di) || (is_movs && !fits(si)) {
        return 0;
    }
    // Source first, as the element path reads before it writes.
    let spa = if is_movs {
        match fast_pa(cpu, sla, Access::Read) {
            Some(p) => p,
            None => return 0,
        }
    } else {
        0
    };
    let Some(dpa) = fast_pa(cpu, dla, Access::Write) else { return 0 };
    let len = bytes as usize;
    if is_movs {
        // A forward copy onto a later part of its own source repeats the pattern; leave it to
        // the element loop.
        if dpa > spa && dpa < spa + bytes {
            return 0;
        }
        let mut buf = [0u8; 4096];
        let Some(src) = cpu.ram.slice(spa, len) else { return 0 };
        buf[..len].copy_from_slice(src);
        let Some(dst) = cpu.ram.slice_mut(dpa, len) else { return 0 };
        dst.copy_from_slice(&buf[..len]);
        set_areg(cpu, gpr::RSI, si + bytes, e);
    } else {
        let v = cpu.get::<W>(0).to_le_bytes();
        let Some(dst) = cpu.ram.slice_mut(dpa, len) else { return 0 };
        if W::BYTES == 1 {
            dst.fill(v[0]);
        } else {
            for chunk in dst.chunks_exact_mut(W::BYTES) {
                chunk.copy_from_slice(&v[..W::BYTES]);
            }
        }
    }
    set_areg(cpu, gpr::RDI, di + bytes, e);
    n
}

macro_rules! string_rows {
    ($op:ty; $c8:ident, $c16:ident, $c32:ident, $c64:ident) => {
        [
            Row::any(C::$c8, exec_string::<$op, W8>),
            Row::any(C::$c16, exec_string::<$op, W16>),
            Row::any(C::$c32, exec_string::<$op, W32>),
            Row::any(C::$c64, exec_string::<$op, W64>),
        ]
    };
}

const MOVS: [Row; 4] = string_rows!(Movs; Movsb_m8_m8, Movsw_m16_m16, Movsd_m32_m32, Movsq_m64_m64);
const CMPS: [Row; 4] = string_rows!(Cmps; Cmpsb_m8_m8, Cmpsw_m16_m16, Cmpsd_m32_m32, Cmpsq_m64_m64);
const SCAS: [Row; 4] = string_rows!(Scas; Scasb_AL_m8, Scasw_AX_m16, Scasd_EAX_m32, Scasq_RAX_m64);
const LODS: [Row; 4] = string_rows!(Lods; Lodsb_AL_m8, Lodsw_AX_m16, Lodsd_EAX_m32, Lodsq_RAX_m64);
const STOS: [Row; 4] = string_rows!(Stos; Stosb_m8_AL, Stosw_m16_AX, Stosd_m32_EAX, Stosq_m64_RAX);

pub(crate) const ROWS: &[&[Row]] = &[&MOVS, &CMPS, &SCAS, &LODS, &STOS];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests;
