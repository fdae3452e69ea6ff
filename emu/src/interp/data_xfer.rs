//! Data transfer (SDM Vol. 2, those entries):
//! - MOV r/m, r / r, r/m / r, imm / r/m, imm, all widths; MOV AL/AX/EAX/RAX, moffs and back.
//! - MOVZX, MOVSX, MOVSXD, LEA.
//! - MOVBE r, m / m, r (16/32/64; advertised in CPUID.1:ECX bit 22).
//! - CMOVcc r, r/m (16/32/64: the memory operand is read, and a 32-bit destination is written,
//!   clearing bits 63:32, whether or not the condition holds); SETcc r/m8.
//! - MOV r/m, Sreg and MOV Sreg, r/m, and (in `stack.rs`) PUSH/POP FS/GS. Segment loads read
//!   and check the descriptor (`system/descriptor.rs`); a null selector loaded into DS/ES/FS/GS
//!   zeroes the base, as on Intel and AMD CPUs with NullSelectorClearsBase. MOV to CS is #UD.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row, NO_REG};
use crate::exception::{ExecResult, Fault, Stop};
use crate::flags::{Width, W16, W32, W64, W8};
use crate::state::SegReg;
use iced_x86::Code as C;

/// `mov r, r`
pub fn exec_mov_r_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.get::<W>(e.src);
    cpu.set::<W>(e.dst, v);
    Ok(())
}

/// `mov r, m`
pub fn exec_mov_r_m<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.read::<W>(cpu.ea(e))?;
    cpu.set::<W>(e.dst, v);
    Ok(())
}

/// `mov m, r`
pub fn exec_mov_m_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.get::<W>(e.src);
    cpu.write::<W>(cpu.ea(e), v)
}

/// `mov r, imm`
pub fn exec_mov_r_i<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.set::<W>(e.dst, e.imm);
    Ok(())
}

/// `mov m, imm`
pub fn exec_mov_m_i<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.write::<W>(cpu.ea(e), e.imm)
}

/// `lea r, m`: the offset only (no segment base), truncated to the operand size.
pub fn exec_lea<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let s = &cpu.state;
    let base = if e.base != NO_REG { s.gpr[(e.base & 15) as usize] } else { 0 };
    let index = if e.index != NO_REG { s.gpr[(e.index & 15) as usize] << e.scale } else { 0 };
    let off = base.wrapping_add(index).wrapping_add(e.disp) & e.amask;
    cpu.set::<W>(e.dst, off);
    Ok(())
}

/// `movzx r(D), r/m(S)`: S is the source width, D the destination width.
pub fn exec_movzx_r<D: Width, S: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.get::<S>(e.src);
    cpu.set::<D>(e.dst, v);
    Ok(())
}
pub fn exec_movzx_m<D: Width, S: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.read::<S>(cpu.ea(e))?;
    cpu.set::<D>(e.dst, v);
    Ok(())
}

/// `movsx`/`movsxd r(D), r/m(S)`
pub fn exec_movsx_r<D: Width, S: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = S::sext(cpu.get::<S>(e.src));
    cpu.set::<D>(e.dst, v & D::MASK);
    Ok(())
}
pub fn exec_movsx_m<D: Width, S: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = S::sext(cpu.read::<S>(cpu.ea(e))?);
    cpu.set::<D>(e.dst, v & D::MASK);
    Ok(())
}

/// `movbe r, m`
pub fn exec_movbe_r_m<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.read::<W>(cpu.ea(e))?;
    cpu.set::<W>(e.dst, v.swap_bytes() >> (64 - W::BITS));
    Ok(())
}

/// `movbe m, r`
pub fn exec_movbe_m_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.get::<W>(e.src).swap_bytes() >> (64 - W::BITS);
    cpu.write::<W>(cpu.ea(e), v)
}

/// `cmovcc r, r`
pub fn exec_cmov_r<const CC: u8, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = if cpu.state.lazy.cond(CC) { cpu.get::<W>(e.src) } else { cpu.get::<W>(e.dst) };
    cpu.set::<W>(e.dst, v);
    Ok(())
}

/// `cmovcc r, m`: the load happens (and may fault) even when the condition is false.
pub fn exec_cmov_m<const CC: u8, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let m = cpu.read::<W>(cpu.ea(e))?;
    let v = if cpu.state.lazy.cond(CC) { m } else { cpu.get::<W>(e.dst) };
    cpu.set::<W>(e.dst, v);
    Ok(())
}

/// `setcc r8`
pub fn exec_setcc_r<const CC: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.state.lazy.cond(CC) as u64;
    cpu.set::<W8>(e.dst, v);
    Ok(())
}

/// `setcc m8`
pub fn exec_setcc_m<const CC: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.state.lazy.cond(CC) as u64;
    cpu.write::<W8>(cpu.ea(e), v)
}

/// `mov r, Sreg`: the selector, zero-extended to the register (16-bit form: low 16 bits only).
pub fn exec_mov_r_sreg<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let sel = cpu.state.segs[(e.src % 6) as usize].selector as u64;
    cpu.set::<W>(e.dst, sel);
    Ok(())
}

/// `mov m16, Sreg`: always a 16-bit store.
pub fn exec_mov_m_sreg(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let sel = cpu.state.segs[(e.src % 6) as usize].selector as u64;
    cpu.write::<W16>(cpu.ea(e), sel)
}

impl Cpu {
    /// Loads data segment register `seg` (SReg number) with `sel`: #UD for CS, otherwise the
    /// descriptor checks of `system::descriptor` (real mode: base = selector << 4).
    ///
    /// # Errors
    /// #UD for CS; #GP/#SS/#NP as the SDM's MOV Sreg pseudo-code gives them.
    pub fn load_data_segment(&mut self, seg: u8, sel: u16) -> Result<(), Stop> {
        let sreg = match seg {
            0 => SegReg::Es,
            2 => SegReg::Ss,
            3 => SegReg::Ds,
            4 => SegReg::Fs,
            5 => SegReg::Gs,
            _ => return Err(Stop::Fault(Fault::ud())),
        };
        self.load_sreg(sreg, sel)
    }
}

/// `mov Sreg, r`
pub fn exec_mov_sreg_r(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let sel = cpu.get::<W16>(e.src) as u16;
    cpu.load_data_segment(e.dst % 8, sel)?;
    ss_shadow(cpu, e, e.dst % 8)
}

/// `mov Sreg, m16`
pub fn exec_mov_sreg_m(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let sel = cpu.read::<W16>(cpu.ea(e))? as u16;
    cpu.load_data_segment(e.dst % 8, sel)?;
    ss_shadow(cpu, e, e.dst % 8)
}

/// After a load of SS (MOV SS, POP SS) the next instruction runs before any interrupt, so a
/// stack switch in two instructions (SS, then rSP) is never interrupted in between (SDM Vol. 3,
/// 6.8.3): the block ends with the shadow open, as STI's does.
pub(crate) fn ss_shadow(cpu: &mut Cpu, e: &Instr, sreg: u8) -> ExecResult {
    if sreg != SegReg::Ss as u8 {
        return Ok(());
    }
    cpu.state.rip = e.next_rip;
    cpu.interrupt_shadow = true;
    Err(Stop::Yield)
}

const MOV: &[Row] = &[
    Row::rm(C::Mov_rm8_r8, exec_mov_r_r::<W8>, exec_mov_m_r::<W8>),
    Row::rm(C::Mov_rm16_r16, exec_mov_r_r::<W16>, exec_mov_m_r::<W16>),
    Row::rm(C::Mov_rm32_r32, exec_mov_r_r::<W32>, exec_mov_m_r::<W32>),
    Row::rm(C::Mov_rm64_r64, exec_mov_r_r::<W64>, exec_mov_m_r::<W64>),
    Row::rm(C::Mov_r8_rm8, exec_mov_r_r::<W8>, exec_mov_r_m::<W8>),
    Row::rm(C::Mov_r16_rm16, exec_mov_r_r::<W16>, exec_mov_r_m::<W16>),
    Row::rm(C::Mov_r32_rm32, exec_mov_r_r::<W32>, exec_mov_r_m::<W32>),
    Row::rm(C::Mov_r64_rm64, exec_mov_r_r::<W64>, exec_mov_r_m::<W64>),
    Row::reg(C::Mov_r8_imm8, exec_mov_r_i::<W8>),
    Row::reg(C::Mov_r16_imm16, exec_mov_r_i::<W16>),
    Row::reg(C::Mov_r32_imm32, exec_mov_r_i::<W32>),
    Row::reg(C::Mov_r64_imm64, exec_mov_r_i::<W64>),
    Row::rm(C::Mov_rm8_imm8, exec_mov_r_i::<W8>, exec_mov_m_i::<W8>),
    Row::rm(C::Mov_rm16_imm16, exec_mov_r_i::<W16>, exec_mov_m_i::<W16>),
    Row::rm(C::Mov_rm32_imm32, exec_mov_r_i::<W32>, exec_mov_m_i::<W32>),
    Row::rm(C::Mov_rm64_imm32, exec_mov_r_i::<W64>, exec_mov_m_i::<W64>),
    Row::mem(C::Lea_r16_m, exec_lea::<W16>),
    Row::mem(C::Lea_r32_m, exec_lea::<W32>),
    Row::mem(C::Lea_r64_m, exec_lea::<W64>),
    // moffs forms: the absolute address is the displacement.
    Row::mem(C::Mov_AL_moffs8, exec_mov_r_m::<W8>),
    Row::mem(C::Mov_AX_moffs16, exec_mov_r_m::<W16>),
    Row::mem(C::Mov_EAX_moffs32, exec_mov_r_m::<W32>),
    Row::mem(C::Mov_RAX_moffs64, exec_mov_r_m::<W64>),
    Row::mem(C::Mov_moffs8_AL, exec_mov_m_r::<W8>),
    Row::mem(C::Mov_moffs16_AX, exec_mov_m_r::<W16>),
    Row::mem(C::Mov_moffs32_EAX, exec_mov_m_r::<W32>),
    Row::mem(C::Mov_moffs64_RAX, exec_mov_m_r::<W64>),
    Row::mem(C::Movbe_r16_m16, exec_movbe_r_m::<W16>),
    Row::mem(C::Movbe_r32_m32, exec_movbe_r_m::<W32>),
    Row::mem(C::Movbe_r64_m64, exec_movbe_r_m::<W64>),
    Row::mem(C::Movbe_m16_r16, exec_movbe_m_r::<W16>),
    Row::mem(C::Movbe_m32_r32, exec_movbe_m_r::<W32>),
    Row::mem(C::Movbe_m64_r64, exec_movbe_m_r::<W64>),
    Row::rm(C::Mov_rm16_Sreg, exec_mov_r_sreg::<W16>, exec_mov_m_sreg),
    Row::rm(C::Mov_r32m16_Sreg, exec_mov_r_sreg::<W32>, exec_mov_m_sreg),
    Row::rm(C::Mov_r64m16_Sreg, exec_mov_r_sreg::<W64>, exec_mov_m_sreg),
    Row::rm(C::Mov_Sreg_rm16, exec_mov_sreg_r, exec_mov_sreg_m),
    Row::rm(C::Mov_Sreg_r32m16, exec_mov_sreg_r, exec_mov_sreg_m),
    Row::rm(C::Mov_Sreg_r64m16, exec_mov_sreg_r, exec_mov_sreg_m),
];

const MOVX: &[Row] = &[
    Row::rm(C::Movzx_r16_rm8, exec_movzx_r::<W16, W8>, exec_movzx_m::<W16, W8>),
    Row::rm(C::Movzx_r32_rm8, exec_movzx_r::<W32, W8>, exec_movzx_m::<W32, W8>),
    Row::rm(C::Movzx_r64_rm8, exec_movzx_r::<W64, W8>, exec_movzx_m::<W64, W8>),
    Row::rm(C::Movzx_r16_rm16, exec_movzx_r::<W16, W16>, exec_movzx_m::<W16, W16>),
    Row::rm(C::Movzx_r32_rm16, exec_movzx_r::<W32, W16>, exec_movzx_m::<W32, W16>),
    Row::rm(C::Movzx_r64_rm16, exec_movzx_r::<W64, W16>, exec_movzx_m::<W64, W16>),
    Row::rm(C::Movsx_r16_rm8, exec_movsx_r::<W16, W8>, exec_movsx_m::<W16, W8>),
    Row::rm(C::Movsx_r32_rm8, exec_movsx_r::<W32, W8>, exec_movsx_m::<W32, W8>),
    Row::rm(C::Movsx_r64_rm8, exec_movsx_r::<W64, W8>, exec_movsx_m::<W64, W8>),
    Row::rm(C::Movsx_r16_rm16, exec_movsx_r::<W16, W16>, exec_movsx_m::<W16, W16>),
    Row::rm(C::Movsx_r32_rm16, exec_movsx_r::<W32, W16>, exec_movsx_m::<W32, W16>),
    Row::rm(C::Movsx_r64_rm16, exec_movsx_r::<W64, W16>, exec_movsx_m::<W64, W16>),
    Row::rm(C::Movsxd_r16_rm16, exec_movsx_r::<W16, W16>, exec_movsx_m::<W16, W16>),
    Row::rm(C::Movsxd_r32_rm32, exec_movsx_r::<W32, W32>, exec_movsx_m::<W32, W32>),
    Row::rm(C::Movsxd_r64_rm32, exec_movsx_r::<W64, W32>, exec_movsx_m::<W64, W32>),
];

const CMOV: &[Row] = &[
    Row::rm(C::Cmovo_r16_rm16, exec_cmov_r::<0, W16>, exec_cmov_m::<0, W16>),
    Row::rm(C::Cmovo_r32_rm32, exec_cmov_r::<0, W32>, exec_cmov_m::<0, W32>),
    Row::rm(C::Cmovo_r64_rm64, exec_cmov_r::<0, W64>, exec_cmov_m::<0, W64>),
    Row::rm(C::Cmovno_r16_rm16, exec_cmov_r::<1, W16>, exec_cmov_m::<1, W16>),
    Row::rm(C::Cmovno_r32_rm32, exec_cmov_r::<1, W32>, exec_cmov_m::<1, W32>),
    Row::rm(C::Cmovno_r64_rm64, exec_cmov_r::<1, W64>, exec_cmov_m::<1, W64>),
    Row::rm(C::Cmovb_r16_rm16, exec_cmov_r::<2, W16>, exec_cmov_m::<2, W16>),
    Row::rm(C::Cmovb_r32_rm32, exec_cmov_r::<2, W32>, exec_cmov_m::<2, W32>),
    Row::rm(C::Cmovb_r64_rm64, exec_cmov_r::<2, W64>, exec_cmov_m::<2, W64>),
    Row::rm(C::Cmovae_r16_rm16, exec_cmov_r::<3, W16>, exec_cmov_m::<3, W16>),
    Row::rm(C::Cmovae_r32_rm32, exec_cmov_r::<3, W32>, exec_cmov_m::<3, W32>),
    Row::rm(C::Cmovae_r64_rm64, exec_cmov_r::<3, W64>, exec_cmov_m::<3, W64>),
    Row::rm(C::Cmove_r16_rm16, exec_cmov_r::<4, W16>, exec_cmov_m::<4, W16>),
    Row::rm(C::Cmove_r32_rm32, exec_cmov_r::<4, W32>, exec_cmov_m::<4, W32>),
    Row::rm(C::Cmove_r64_rm64, exec_cmov_r::<4, W64>, exec_cmov_m::<4, W64>),
    Row::rm(C::Cmovne_r16_rm16, exec_cmov_r::<5, W16>, exec_cmov_m::<5, W16>),
    Row::rm(C::Cmovne_r32_rm32, exec_cmov_r::<5, W32>, exec_cmov_m::<5, W32>),
    Row::rm(C::Cmovne_r64_rm64, exec_cmov_r::<5, W64>, exec_cmov_m::<5, W64>),
    Row::rm(C::Cmovbe_r16_rm16, exec_cmov_r::<6, W16>, exec_cmov_m::<6, W16>),
    Row::rm(C::Cmovbe_r32_rm32, exec_cmov_r::<6, W32>, exec_cmov_m::<6, W32>),
    Row::rm(C::Cmovbe_r64_rm64, exec_cmov_r::<6, W64>, exec_cmov_m::<6, W64>),
    Row::rm(C::Cmova_r16_rm16, exec_cmov_r::<7, W16>, exec_cmov_m::<7, W16>),
    Row::rm(C::Cmova_r32_rm32, exec_cmov_r::<7, W32>, exec_cmov_m::<7, W32>),
    Row::rm(C::Cmova_r64_rm64, exec_cmov_r::<7, W64>, exec_cmov_m::<7, W64>),
    Row::rm(C::Cmovs_r16_rm16, exec_cmov_r::<8, W16>, exec_cmov_m::<8, W16>),
    Row::rm(C::Cmovs_r32_rm32, exec_cmov_r::<8, W32>, exec_cmov_m::<8, W32>),
    Row::rm(C::Cmovs_r64_rm64, exec_cmov_r::<8, W64>, exec_cmov_m::<8, W64>),
    Row::rm(C::Cmovns_r16_rm16, exec_cmov_r::<9, W16>, exec_cmov_m::<9, W16>),
    Row::rm(C::Cmovns_r32_rm32, exec_cmov_r::<9, W32>, exec_cmov_m::<9, W32>),
    Row::rm(C::Cmovns_r64_rm64, exec_cmov_r::<9, W64>, exec_cmov_m::<9, W64>),
    Row::rm(C::Cmovp_r16_rm16, exec_cmov_r::<10, W16>, exec_cmov_m::<10, W16>),
    Row::rm(C::Cmovp_r32_rm32, exec_cmov_r::<10, W32>, exec_cmov_m::<10, W32>),
    Row::rm(C::Cmovp_r64_rm64, exec_cmov_r::<10, W64>, exec_cmov_m::<10, W64>),
    Row::rm(C::Cmovnp_r16_rm16, exec_cmov_r::<11, W16>, exec_cmov_m::<11, W16>),
    Row::rm(C::Cmovnp_r32_rm32, exec_cmov_r::<11, W32>, exec_cmov_m::<11, W32>),
    Row::rm(C::Cmovnp_r64_rm64, exec_cmov_r::<11, W64>, exec_cmov_m::<11, W64>),
    Row::rm(C::Cmovl_r16_rm16, exec_cmov_r::<12, W16>, exec_cmov_m::<12, W16>),
    Row::rm(C::Cmovl_r32_rm32, exec_cmov_r::<12, W32>, exec_cmov_m::<12, W32>),
    Row::rm(C::Cmovl_r64_rm64, exec_cmov_r::<12, W64>, exec_cmov_m::<12, W64>),
    Row::rm(C::Cmovge_r16_rm16, exec_cmov_r::<13, W16>, exec_cmov_m::<13, W16>),
    Row::rm(C::Cmovge_r32_rm32, exec_cmov_r::<13, W32>, exec_cmov_m::<13, W32>),
    Row::rm(C::Cmovge_r64_rm64, exec_cmov_r::<13, W64>, exec_cmov_m::<13, W64>),
    Row::rm(C::Cmovle_r16_rm16, exec_cmov_r::<14, W16>, exec_cmov_m::<14, W16>),
    Row::rm(C::Cmovle_r32_rm32, exec_cmov_r::<14, W32>, exec_cmov_m::<14, W32>),
    Row::rm(C::Cmovle_r64_rm64, exec_cmov_r::<14, W64>, exec_cmov_m::<14, W64>),
    Row::rm(C::Cmovg_r16_rm16, exec_cmov_r::<15, W16>, exec_cmov_m::<15, W16>),
    Row::rm(C::Cmovg_r32_rm32, exec_cmov_r::<15, W32>, exec_cmov_m::<15, W32>),
    Row::rm(C::Cmovg_r64_rm64, exec_cmov_r::<15, W64>, exec_cmov_m::<15, W64>),
];

const SETCC: &[Row] = &[
    Row::rm(C::Seto_rm8, exec_setcc_r::<0>, exec_setcc_m::<0>),
    Row::rm(C::Setno_rm8, exec_setcc_r::<1>, exec_setcc_m::<1>),
    Row::rm(C::Setb_rm8, exec_setcc_r::<2>, exec_setcc_m::<2>),
    Row::rm(C::Setae_rm8, exec_setcc_r::<3>, exec_setcc_m::<3>),
    Row::rm(C::Sete_rm8, exec_setcc_r::<4>, exec_setcc_m::<4>),
    Row::rm(C::Setne_rm8, exec_setcc_r::<5>, exec_setcc_m::<5>),
    Row::rm(C::Setbe_rm8, exec_setcc_r::<6>, exec_setcc_m::<6>),
    Row::rm(C::Seta_rm8, exec_setcc_r::<7>, exec_setcc_m::<7>),
    Row::rm(C::Sets_rm8, exec_setcc_r::<8>, exec_setcc_m::<8>),
    Row::rm(C::Setns_rm8, exec_setcc_r::<9>, exec_setcc_m::<9>),
    Row::rm(C::Setp_rm8, exec_setcc_r::<10>, exec_setcc_m::<10>),
    Row::rm(C::Setnp_rm8, exec_setcc_r::<11>, exec_setcc_m::<11>),
    Row::rm(C::Setl_rm8, exec_setcc_r::<12>, exec_setcc_m::<12>),
    Row::rm(C::Setge_rm8, exec_setcc_r::<13>, exec_setcc_m::<13>),
    Row::rm(C::Setle_rm8, exec_setcc_r::<14>, exec_setcc_m::<14>),
    Row::rm(C::Setg_rm8, exec_setcc_r::<15>, exec_setcc_m::<15>),
];

pub(crate) const ROWS: &[&[Row]] = &[MOV, MOVX, CMOV, SETCC];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::hosttest::{check, host, values, Guest, Regs, FLAGS};
    use crate::exception::vector;
    use crate::state::rflags;

    /// Each flag combination that decides a condition, with values in RCX/RDX/memory.
    fn cases() -> Vec<Regs> {
        let flag_sets = [
            0,
            rflags::CF,
            rflags::ZF,
            rflags::SF,
            rflags::OF,
            rflags::PF,
            rflags::SF | rflags::OF,
            rflags::ZF | rflags::CF,
            rflags::ARITH,
        ];
        let mut out = Vec::new();
        for (i, &v) in values(64, 4).iter().enumerate() {
            for &f in &flag_sets {
                out.push(Regs {
                    rax: !v,
                    rcx: v,
                    rdx: v.rotate_left(i as u32),
                    flags: f,
                    mem: [v ^ 0x0102_0304_0506_0708; 8],
                    ..Default::default()
                });
            }
        }
        out
    }

    #[test]
    fn cmov_and_setcc_match_the_host() {
        check(
            host!(
                "cmovo eax, ecx",
                "cmovo cx, dx",
                "cmovo rdx, qword ptr [r10]",
                "seto al",
                "seto byte ptr [r10 + 1]",
                "seto ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmovno eax, ecx",
                "cmovno cx, dx",
                "cmovno rdx, qword ptr [r10]",
                "setno al",
                "setno byte ptr [r10 + 1]",
                "setno ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmovb eax, ecx",
                "cmovb cx, dx",
                "cmovb rdx, qword ptr [r10]",
                "setb al",
                "setb byte ptr [r10 + 1]",
                "setb ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmovae eax, ecx",
                "cmovae cx, dx",
                "cmovae rdx, qword ptr [r10]",
                "setae al",
                "setae byte ptr [r10 + 1]",
                "setae ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmove eax, ecx",
                "cmove cx, dx",
                "cmove rdx, qword ptr [r10]",
                "sete al",
                "sete byte ptr [r10 + 1]",
                "sete ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmovne eax, ecx",
                "cmovne cx, dx",
                "cmovne rdx, qword ptr [r10]",
                "setne al",
                "setne byte ptr [r10 + 1]",
                "setne ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmovbe eax, ecx",
                "cmovbe cx, dx",
                "cmovbe rdx, qword ptr [r10]",
                "setbe al",
                "setbe byte ptr [r10 + 1]",
                "setbe ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmova eax, ecx",
                "cmova cx, dx",
                "cmova rdx, qword ptr [r10]",
                "seta al",
                "seta byte ptr [r10 + 1]",
                "seta ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmovs eax, ecx",
                "cmovs cx, dx",
                "cmovs rdx, qword ptr [r10]",
                "sets al",
                "sets byte ptr [r10 + 1]",
                "sets ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmovns eax, ecx",
                "cmovns cx, dx",
                "cmovns rdx, qword ptr [r10]",
                "setns al",
                "setns byte ptr [r10 + 1]",
                "setns ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmovp eax, ecx",
                "cmovp cx, dx",
                "cmovp rdx, qword ptr [r10]",
                "setp al",
                "setp byte ptr [r10 + 1]",
                "setp ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmovnp eax, ecx",
                "cmovnp cx, dx",
                "cmovnp rdx, qword ptr [r10]",
                "setnp al",
                "setnp byte ptr [r10 + 1]",
                "setnp ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmovl eax, ecx",
                "cmovl cx, dx",
                "cmovl rdx, qword ptr [r10]",
                "setl al",
                "setl byte ptr [r10 + 1]",
                "setl ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmovge eax, ecx",
                "cmovge cx, dx",
                "cmovge rdx, qword ptr [r10]",
                "setge al",
                "setge byte ptr [r10 + 1]",
                "setge ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmovle eax, ecx",
                "cmovle cx, dx",
                "cmovle rdx, qword ptr [r10]",
                "setle al",
                "setle byte ptr [r10 + 1]",
                "setle ch"
            ),
            cases(),
            FLAGS,
        );
        check(
            host!(
                "cmovg eax, ecx",
                "cmovg cx, dx",
                "cmovg rdx, qword ptr [r10]",
                "setg al",
                "setg byte ptr [r10 + 1]",
                "setg ch"
            ),
            cases(),
            FLAGS,
        );
    }

    #[test]
    fn moffs_movbe_and_sreg_moves_match_the_host() {
        if crate::interp::hosttest::host_has("movbe") {
            check(
                host!("movbe eax, dword ptr [r10]", "movbe cx, word ptr [r10 + 3]", "movbe rdx, qword ptr [r10 - 8]"),
                cases(),
                FLAGS,
            );
            check(
                host!("movbe dword ptr [r10], ecx", "movbe word ptr [r10 + 9], dx", "movbe qword ptr [r10 - 5], rax"),
                cases(),
                FLAGS,
            );
        }
        check(
            host!("mov eax, ds", "mov rcx, ss", "mov dx, cs", "mov word ptr [r10], ss", "mov r8d, es"),
            cases(),
            FLAGS,
        );
        check(host!("mov eax, ss", "mov ds, eax", "mov es, ax", "mov ecx, ds"), cases(), FLAGS);
    }

    #[test]
    fn moffs_forms_use_the_absolute_address() {
        // A0 / A3 with a 64-bit address (SDM MOV, moffs): mov al, [0x8022]; mov [0x8030], eax
        let mut g = Guest::new();
        let code = [0xa0, 0x22, 0x80, 0, 0, 0, 0, 0, 0, 0xa3, 0x30, 0x80, 0, 0, 0, 0, 0, 0];
        let r = Regs {
            rax: 0x1111_2222_3333_4444,
            mem: [0, 0, 0, 0, 0xaabb_ccdd_eeff_0011, 0, 0, 0],
            ..Default::default()
        };
        let (res, out) = g.run(&code, &r);
        assert!(res.is_ok());
        assert_eq!(out.rax, 0x1111_2222_3333_44ff); // byte 2 of mem[4] (at 0x8020)
        assert_eq!(out.mem[6] & 0xffff_ffff, 0x3333_44ff);
    }

    #[test]
    fn segment_loads_check_the_descriptor() {
        let mut g = Guest::new();
        // mov ds, ax with selector 0x1b: GDT entry 3 is not present data -> #GP(0x18)
        let f = g.fault(&[0x8e, 0xd8], &Regs { rax: 0x1b, ..Default::default() });
        assert_eq!((f.vector, f.error_code), (vector::GP, 0x18));
        // mov ss, ax with a null selector at CPL 3 -> #GP(0)
        let f = g.fault(&[0x8e, 0xd0], &Regs { rax: 0, ..Default::default() });
        assert_eq!((f.vector, f.error_code), (vector::GP, 0));
        // mov fs, ax with 0 clears the FS base (Intel; the host test cannot try it, it would lose
        // its own thread pointer)
        g.cpu.state.segs[4].base = 0x1234;
        let (res, _) = g.run(&[0x8e, 0xe0], &Regs::default());
        assert!(res.is_ok());
        assert_eq!(g.cpu.state.segs[4].base, 0);
    }
}
