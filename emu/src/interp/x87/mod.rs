//! x87 FPU instructions (tier 0), on top of the `x87float` soft-float crate.
//!
//! `x87float` computes values, exception flags and C1 for one operation; this module owns the
//! rest of the FPU: the register stack and tags (`stack.rs`), stack faults, the ES/B summary,
//! the deferred #MF (raised by the *next* waiting x87 instruction when CR0.NE = 1, SDM Vol. 1,
//! 8.6 and Vol. 3, 6.15 "#MF"), #NM for CR0.EM/TS (SDM Vol. 3, 2.5), and the last-instruction
//! pointers. Files by topic: `load_store.rs`, `arith.rs`, `compare.rs`, `control.rs`, `env.rs`,
//! `transcendental.rs`, `constants.rs`.
//!
//! Last-instruction pointers follow the processors that report CPUID.(7,0):EBX bits 6 and 13
//! (FDP_EXCPTN_ONLY, FCS/FDS deprecated), as the reference host does (SDM Vol. 1, 8.1.8 and
//! 8.1.9.1 with fopcode compatibility mode off): every non-control instruction sets FIP to its
//! offset and FCS to 0; FOP and FDP (FDS = 0) are set only when the instruction raises an
//! unmasked exception. Left out: the FERR#/IGNNE# external-interrupt path of CR0.NE = 0 (no
//! #MF is raised then); the 80287-only FRSTPM (#UD).

pub mod arith;
pub mod compare;
pub mod constants;
pub mod control;
pub mod env;
pub mod load_store;
pub mod stack;
pub mod transcendental;

#[cfg(all(test, target_arch = "x86_64"))]
mod tests;

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row, NO_REG};
use crate::exception::{vector, Fault, Stop};
use crate::flags::{W16, W64, W8};
use crate::state::ctrl;
use x87float::F80;

pub(crate) const ROWS: &[&[Row]] = &[
    load_store::LOADS,
    load_store::STORES,
    load_store::MOVES,
    arith::BINARY,
    arith::UNARY,
    compare::COMPARES,
    control::CONTROL,
    env::ENV,
    transcendental::TRANSCENDENTAL,
    constants::CONSTANTS,
];

/// CPUID.1:EDX bits for what this family implements: FPU (bit 0; `misc.rs` reports it with the
/// base set, and FCMOVcc rides on its CMOV bit 15).
pub const CPUID1_EDX: u32 = 1 << 0;

/// Checks made before every waiting x87 instruction: #NM when CR0.EM or CR0.TS is set, then
/// #MF when an exception flag is set that the control word leaves unmasked and CR0.NE = 1.
/// Every x87 instruction but FNINIT, FNCLEX, FNSTSW, FNSTCW, FNSTENV and FNSAVE waits; a host
/// probe (SIGFPE with a pending ZE) showed FLDCW, FLDENV, FRSTOR, FNOP and FFREE waiting too.
/// The flags decide (FLDCW, FLDENV and FRSTOR recompute ES from them, so the two agree).
#[inline(always)]
pub fn enter(cpu: &Cpu) -> Result<(), Stop> {
    let s = &cpu.state;
    if s.cr0 & (ctrl::CR0_EM | ctrl::CR0_TS) != 0 {
        return Err(Stop::Fault(Fault::new(vector::NM)));
    }
    if pending_mf(cpu) {
        return Err(Stop::Fault(Fault::new(vector::MF)));
    }
    Ok(())
}

/// The checks of a non-waiting control instruction (FNINIT, FNSTSW, ...): only #NM.
#[inline(always)]
pub fn enter_nowait(cpu: &Cpu) -> Result<(), Stop> {
    if cpu.state.cr0 & (ctrl::CR0_EM | ctrl::CR0_TS) != 0 {
        return Err(Stop::Fault(Fault::new(vector::NM)));
    }
    Ok(())
}

/// True when the next waiting x87 instruction must raise #MF.
#[inline(always)]
pub fn pending_mf(cpu: &Cpu) -> bool {
    let f = &cpu.state.fpu;
    f.fsw & !f.fcw & stack::FSW_FLAGS != 0 && cpu.state.cr0 & ctrl::CR0_NE != 0
}

/// Updates the last-instruction pointers after a non-control instruction completed (see the
/// module doc for which ones move). `unmasked` says whether it raised an unmasked exception;
/// `mem` whether the instruction has a memory operand.
///
/// Inlined into every handler: the common case (protected mode, no unmasked exception) only
/// writes FIP and FCS; the rest is out of line in [`retire_slow`].
#[inline(always)]
pub fn retire(cpu: &mut Cpu, e: &Instr, unmasked: bool, mem: bool) {
    let s = &mut cpu.state;
    if !unmasked && s.cr0 & ctrl::CR0_PE != 0 && s.rflags_other & crate::state::rflags::VM == 0 {
        s.fpu.fip = e.rip();
        s.fpu.fcs = 0;
        return;
    }
    retire_slow(cpu, e, unmasked, mem);
}

/// [`retire`] in real-address or virtual-8086 mode, or after an unmasked exception.
#[inline(never)]
fn retire_slow(cpu: &mut Cpu, e: &Instr, unmasked: bool, mem: bool) {
    let rip = e.rip();
    // Real-address and virtual-8086 mode keep linear pointers (SDM Vol. 1, Figures 8-10, 8-12).
    let real = cpu.state.cr0 & ctrl::CR0_PE == 0 || cpu.state.rflags_other & crate::state::rflags::VM != 0;
    let f = &mut cpu.state.fpu;
    f.fip = if real { rip.wrapping_add(cpu.state.segs[1].base) & 0xffff_ffff } else { rip };
    f.fcs = 0;
    if unmasked {
        if mem {
            let fdp = if real { cpu.ea(e) } else { offset(cpu, e) };
            let f = &mut cpu.state.fpu;
            f.fdp = fdp;
            f.fds = 0;
        }
        let fop = fop_at(cpu, rip);
        cpu.state.fpu.fop = fop;
    }
}

/// The offset (effective address before the segment base) of `e`'s memory operand: FDP.
pub fn offset(cpu: &Cpu, e: &Instr) -> u64 {
    let s = &cpu.state;
    let base = if e.base != NO_REG { s.gpr[(e.base & 15) as usize] } else { 0 };
    let index = if e.index != NO_REG { s.gpr[(e.index & 15) as usize] << e.scale } else { 0 };
    base.wrapping_add(index).wrapping_add(e.disp) & e.amask
}

/// FOP of the instruction at `rip`: the low three bits of the D8-DF opcode byte, then the ModR/M
/// byte (SDM Vol. 1, Figure 8-8). Read back from the code only on the rare unmasked-exception
/// path, so decoding need not carry it; 0 if the bytes cannot be fetched.
fn fop_at(cpu: &mut Cpu, rip: u64) -> u16 {
    let cs = cpu.state.segs[1].base;
    let mask = if cpu.state.in_64bit_mode() { u64::MAX } else { 0xffff_ffff };
    let mut bytes = [0u8; 15];
    for (i, b) in bytes.iter_mut().enumerate() {
        let la = rip.wrapping_add(cs).wrapping_add(i as u64) & mask;
        match cpu.translate_fetch(la) {
            Ok(pa) => *b = cpu.phys_read::<W8>(pa) as u8,
            Err(_) => return 0,
        }
    }
    let mut i = 0;
    while i + 1 < bytes.len() {
        match bytes[i] {
            0xd8..=0xdf => return ((bytes[i] as u16 & 7) << 8) | bytes[i + 1] as u16,
            // Legacy prefixes, REX and the WAIT of FSTSW-style pairs come before the opcode.
            0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3 | 0x9b | 0x40..=0x4f => i += 1,
            _ => return 0,
        }
    }
    0
}

/// Reads an m80 operand (significand first, then sign and exponent).
pub fn read_m80(cpu: &mut Cpu, la: u64, lmask: u64) -> Result<F80, Stop> {
    let signif = cpu.read::<W64>(la)?;
    let sign_exp = cpu.read::<W16>(la.wrapping_add(8) & lmask)? as u16;
    Ok(F80 { signif, sign_exp })
}

/// Writes an m80 operand; both parts are translated for write before either is stored.
pub fn write_m80(cpu: &mut Cpu, la: u64, lmask: u64, v: F80) -> Result<(), Stop> {
    let lo = cpu.translate_rmw::<W64>(la)?;
    let hi = cpu.translate_rmw::<W16>(la.wrapping_add(8) & lmask)?;
    cpu.write_loc::<W64>(lo, v.signif);
    cpu.write_loc::<W16>(hi, v.sign_exp as u64);
    Ok(())
}

/// Checks that every byte of `[la, la + len)` can be written (at most two pages) before a
/// multi-part store such as FNSAVE writes any of it.
pub fn probe_write(cpu: &mut Cpu, la: u64, len: u64, lmask: u64) -> Result<(), Stop> {
    cpu.translate_rmw::<W8>(la)?;
    cpu.translate_rmw::<W8>(la.wrapping_add(len - 1) & lmask)?;
    Ok(())
}
