//! Control transfer (SDM Vol. 2): JMP, Jcc, CALL, RET (near forms), LOOP/LOOPE/LOOPNE,
//! JCXZ/JECXZ/JRCXZ. Each of these is the last entry of its block and sets RIP. The branch
//! target of relative forms is resolved at decode (and truncated to the operand size outside
//! 64-bit mode).
//!
//! LOOPcc and JrCXZ use CX, ECX or RCX as the address size says (the 67h prefix selects ECX in
//! 64-bit mode); LOOPcc writes the count back at that size (a 32-bit count clears bits 63:32).
//! Far CALL/JMP/RET and IRET are not implemented here (they need descriptor-table loads, which
//! come with the protected-mode work) and raise #UD through `exec_unimplemented`.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::ExecResult;
use crate::flags::{Width, W16, W32, W64};
use iced_x86::Code as C;

/// Truncates a branch target to the operand size outside 64-bit mode (IP/EIP wrap).
#[inline(always)]
fn target(e: &Instr, t: u64) -> u64 {
    match e.opsize {
        2 => t & 0xffff,
        4 => t & 0xffff_ffff,
        _ => t,
    }
}

pub fn exec_jmp_rel(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.state.rip = e.imm;
    Ok(())
}

pub fn exec_jmp_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.state.rip = cpu.get::<W>(e.dst);
    Ok(())
}

pub fn exec_jmp_m<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.state.rip = cpu.read::<W>(cpu.ea(e))?;
    Ok(())
}

/// `jcc rel`: `CC` is the condition nibble, so each condition is its own handler (no run-time
/// switch on the condition).
pub fn exec_jcc<const CC: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.state.rip = if cpu.state.lazy.cond(CC) { e.imm } else { e.next_rip };
    Ok(())
}

pub fn exec_call_rel<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.push::<W>(e, e.next_rip)?;
    cpu.state.rip = e.imm;
    Ok(())
}

pub fn exec_call_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let t = cpu.get::<W>(e.dst);
    cpu.push::<W>(e, e.next_rip)?;
    cpu.state.rip = t;
    Ok(())
}

pub fn exec_call_m<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let t = cpu.read::<W>(cpu.ea(e))?;
    cpu.push::<W>(e, e.next_rip)?;
    cpu.state.rip = t;
    Ok(())
}

/// `ret` and `ret imm16` (the immediate is the number of extra bytes to release).
pub fn exec_ret<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let t = cpu.peek::<W>(e, 0)?;
    let rsp = cpu.state.gpr[crate::state::gpr::RSP].wrapping_add(W::BYTES as u64 + (e.imm & 0xffff));
    cpu.set_rsp(e, rsp);
    cpu.state.rip = target(e, t);
    Ok(())
}

/// `loop`/`loope`/`loopne` (`KIND` 0/1/2) with an `ASZ`-byte count register and an `OSZ`-byte
/// operand size.
pub fn exec_loop<const KIND: u8, const ASZ: u8, const OSZ: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let mask = match ASZ {
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    };
    let rcx = cpu.state.gpr[1];
    let count = rcx.wrapping_sub(1) & mask;
    cpu.state.gpr[1] = match ASZ {
        2 => (rcx & !0xffff) | count,
        _ => count,
    };
    let zf = cpu.state.lazy.zf();
    let take = count != 0
        && match KIND {
            1 => zf,
            2 => !zf,
            _ => true,
        };
    cpu.state.rip = if take { trunc::<OSZ>(e.imm) } else { e.next_rip };
    Ok(())
}

/// `jcxz`/`jecxz`/`jrcxz` with an `ASZ`-byte count register.
pub fn exec_jrcxz<const ASZ: u8, const OSZ: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let mask = match ASZ {
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    };
    cpu.state.rip = if cpu.state.gpr[1] & mask == 0 { trunc::<OSZ>(e.imm) } else { e.next_rip };
    Ok(())
}

/// Truncates a target to an operand size of `OSZ` bytes.
#[inline(always)]
fn trunc<const OSZ: u8>(t: u64) -> u64 {
    match OSZ {
        2 => t & 0xffff,
        4 => t & 0xffff_ffff,
        _ => t,
    }
}

const LOOPS: &[Row] = &[
    Row::reg(C::Loop_rel8_16_CX, exec_loop::<0, 2, 2>),
    Row::reg(C::Loop_rel8_16_ECX, exec_loop::<0, 4, 2>),
    Row::reg(C::Loop_rel8_32_CX, exec_loop::<0, 2, 4>),
    Row::reg(C::Loop_rel8_32_ECX, exec_loop::<0, 4, 4>),
    Row::reg(C::Loop_rel8_64_ECX, exec_loop::<0, 4, 8>),
    Row::reg(C::Loop_rel8_64_RCX, exec_loop::<0, 8, 8>),
    Row::reg(C::Loope_rel8_16_CX, exec_loop::<1, 2, 2>),
    Row::reg(C::Loope_rel8_16_ECX, exec_loop::<1, 4, 2>),
    Row::reg(C::Loope_rel8_32_CX, exec_loop::<1, 2, 4>),
    Row::reg(C::Loope_rel8_32_ECX, exec_loop::<1, 4, 4>),
    Row::reg(C::Loope_rel8_64_ECX, exec_loop::<1, 4, 8>),
    Row::reg(C::Loope_rel8_64_RCX, exec_loop::<1, 8, 8>),
    Row::reg(C::Loopne_rel8_16_CX, exec_loop::<2, 2, 2>),
    Row::reg(C::Loopne_rel8_16_ECX, exec_loop::<2, 4, 2>),
    Row::reg(C::Loopne_rel8_32_CX, exec_loop::<2, 2, 4>),
    Row::reg(C::Loopne_rel8_32_ECX, exec_loop::<2, 4, 4>),
    Row::reg(C::Loopne_rel8_64_ECX, exec_loop::<2, 4, 8>),
    Row::reg(C::Loopne_rel8_64_RCX, exec_loop::<2, 8, 8>),
    Row::reg(C::Loop_rel8_16_RCX, exec_loop::<0, 8, 2>),
    Row::reg(C::Loope_rel8_16_RCX, exec_loop::<1, 8, 2>),
    Row::reg(C::Loopne_rel8_16_RCX, exec_loop::<2, 8, 2>),
    Row::reg(C::Jcxz_rel8_16, exec_jrcxz::<2, 2>),
    Row::reg(C::Jecxz_rel8_16, exec_jrcxz::<4, 2>),
    Row::reg(C::Jcxz_rel8_32, exec_jrcxz::<2, 4>),
    Row::reg(C::Jecxz_rel8_32, exec_jrcxz::<4, 4>),
    Row::reg(C::Jecxz_rel8_64, exec_jrcxz::<4, 8>),
    Row::reg(C::Jrcxz_rel8_16, exec_jrcxz::<8, 2>),
    Row::reg(C::Jrcxz_rel8_64, exec_jrcxz::<8, 8>),
];

const JMP_CALL_RET: &[Row] = &[
    Row::reg(C::Jmp_rel8_64, exec_jmp_rel),
    Row::reg(C::Jmp_rel32_64, exec_jmp_rel),
    Row::reg(C::Jmp_rel8_32, exec_jmp_rel),
    Row::reg(C::Jmp_rel32_32, exec_jmp_rel),
    Row::reg(C::Jmp_rel8_16, exec_jmp_rel),
    Row::reg(C::Jmp_rel16, exec_jmp_rel),
    Row::rm(C::Jmp_rm64, exec_jmp_r::<W64>, exec_jmp_m::<W64>),
    Row::rm(C::Jmp_rm32, exec_jmp_r::<W32>, exec_jmp_m::<W32>),
    Row::rm(C::Jmp_rm16, exec_jmp_r::<W16>, exec_jmp_m::<W16>),
    Row::reg(C::Call_rel32_64, exec_call_rel::<W64>),
    Row::reg(C::Call_rel32_32, exec_call_rel::<W32>),
    Row::reg(C::Call_rel16, exec_call_rel::<W16>),
    Row::rm(C::Call_rm64, exec_call_r::<W64>, exec_call_m::<W64>),
    Row::rm(C::Call_rm32, exec_call_r::<W32>, exec_call_m::<W32>),
    Row::rm(C::Call_rm16, exec_call_r::<W16>, exec_call_m::<W16>),
    Row::reg(C::Retnq, exec_ret::<W64>),
    Row::reg(C::Retnq_imm16, exec_ret::<W64>),
    Row::reg(C::Retnd, exec_ret::<W32>),
    Row::reg(C::Retnd_imm16, exec_ret::<W32>),
    Row::reg(C::Retnw, exec_ret::<W16>),
    Row::reg(C::Retnw_imm16, exec_ret::<W16>),
];

/// Jcc rows for one encoding family (rel8 or rel32, 64-bit).
macro_rules! jcc_rows {
    ($($code:ident = $cc:literal),* $(,)?) => { &[ $( Row::reg(C::$code, exec_jcc::<$cc>), )* ] };
}

const JCC: &[Row] = jcc_rows!(
    Jo_rel8_64 = 0,
    Jno_rel8_64 = 1,
    Jb_rel8_64 = 2,
    Jae_rel8_64 = 3,
    Je_rel8_64 = 4,
    Jne_rel8_64 = 5,
    Jbe_rel8_64 = 6,
    Ja_rel8_64 = 7,
    Js_rel8_64 = 8,
    Jns_rel8_64 = 9,
    Jp_rel8_64 = 10,
    Jnp_rel8_64 = 11,
    Jl_rel8_64 = 12,
    Jge_rel8_64 = 13,
    Jle_rel8_64 = 14,
    Jg_rel8_64 = 15,
    Jo_rel32_64 = 0,
    Jno_rel32_64 = 1,
    Jb_rel32_64 = 2,
    Jae_rel32_64 = 3,
    Je_rel32_64 = 4,
    Jne_rel32_64 = 5,
    Jbe_rel32_64 = 6,
    Ja_rel32_64 = 7,
    Js_rel32_64 = 8,
    Jns_rel32_64 = 9,
    Jp_rel32_64 = 10,
    Jnp_rel32_64 = 11,
    Jl_rel32_64 = 12,
    Jge_rel32_64 = 13,
    Jle_rel32_64 = 14,
    Jg_rel32_64 = 15,
    Jo_rel8_32 = 0,
    Jno_rel8_32 = 1,
    Jb_rel8_32 = 2,
    Jae_rel8_32 = 3,
    Je_rel8_32 = 4,
    Jne_rel8_32 = 5,
    Jbe_rel8_32 = 6,
    Ja_rel8_32 = 7,
    Js_rel8_32 = 8,
    Jns_rel8_32 = 9,
    Jp_rel8_32 = 10,
    Jnp_rel8_32 = 11,
    Jl_rel8_32 = 12,
    Jge_rel8_32 = 13,
    Jle_rel8_32 = 14,
    Jg_rel8_32 = 15,
    Jo_rel32_32 = 0,
    Jno_rel32_32 = 1,
    Jb_rel32_32 = 2,
    Jae_rel32_32 = 3,
    Je_rel32_32 = 4,
    Jne_rel32_32 = 5,
    Jbe_rel32_32 = 6,
    Ja_rel32_32 = 7,
    Js_rel32_32 = 8,
    Jns_rel32_32 = 9,
    Jp_rel32_32 = 10,
    Jnp_rel32_32 = 11,
    Jl_rel32_32 = 12,
    Jge_rel32_32 = 13,
    Jle_rel32_32 = 14,
    Jg_rel32_32 = 15,
    Jo_rel8_16 = 0,
    Jno_rel8_16 = 1,
    Jb_rel8_16 = 2,
    Jae_rel8_16 = 3,
    Je_rel8_16 = 4,
    Jne_rel8_16 = 5,
    Jbe_rel8_16 = 6,
    Ja_rel8_16 = 7,
    Js_rel8_16 = 8,
    Jns_rel8_16 = 9,
    Jp_rel8_16 = 10,
    Jnp_rel8_16 = 11,
    Jl_rel8_16 = 12,
    Jge_rel8_16 = 13,
    Jle_rel8_16 = 14,
    Jg_rel8_16 = 15,
    Jo_rel16 = 0,
    Jno_rel16 = 1,
    Jb_rel16 = 2,
    Jae_rel16 = 3,
    Je_rel16 = 4,
    Jne_rel16 = 5,
    Jbe_rel16 = 6,
    Ja_rel16 = 7,
    Js_rel16 = 8,
    Jns_rel16 = 9,
    Jp_rel16 = 10,
    Jnp_rel16 = 11,
    Jl_rel16 = 12,
    Jge_rel16 = 13,
    Jle_rel16 = 14,
    Jg_rel16 = 15,
);

pub(crate) const ROWS: &[&[Row]] = &[JMP_CALL_RET, JCC, LOOPS];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::hosttest::{check, host, values, Regs, FLAGS};
    use crate::state::rflags;

    /// Counts around 0/1 with junk above 32 bits, both ZF values. R9 bit 0 records "not taken".
    fn cases() -> Vec<Regs> {
        let mut out = Vec::new();
        for c in [0u64, 1, 2, 3, 0x1_0000_0000, 0x1_0000_0001, 0xffff_ffff, 0x5_0001_0000, 0x10000, 0x10001, u64::MAX] {
            for f in [0, rflags::ZF] {
                out.push(Regs { rcx: c, flags: f, ..Default::default() });
            }
        }
        let _ = values(8, 0);
        out
    }

    #[test]
    fn loops_and_jrcxz_match_the_host() {
        check(host!("loop 4f", "or r9, 1", "4:"), cases(), FLAGS);
        check(host!("loope 4f", "or r9, 1", "4:"), cases(), FLAGS);
        check(host!("loopne 4f", "or r9, 1", "4:"), cases(), FLAGS);
        check(host!(".byte 0x67, 0xe2, 4", "or r9, 1", "4:"), cases(), FLAGS); // loop with ECX
        check(host!(".byte 0x67, 0xe1, 4", "or r9, 1", "4:"), cases(), FLAGS); // loope with ECX
        check(host!("jrcxz 4f", "or r9, 1", "4:"), cases(), FLAGS);
        check(host!("jecxz 4f", "or r9, 1", "4:"), cases(), FLAGS);
        // A taken backward loop: counts RCX down to 0, R8 counts iterations.
        check(host!("4:", "inc r8", "loop 4b"), cases().into_iter().filter(|r| (1..4).contains(&r.rcx)), FLAGS);
    }
}
