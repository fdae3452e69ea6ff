//! Instructions that exist only outside 64-bit mode (SDM Vol. 2): PUSHA/POPA, PUSH/POP of
//! ES/CS/SS/DS, LDS/LES (and LSS/LFS/LGS, which also exist in 64-bit mode), the BCD adjustments
//! AAA/AAS/DAA/DAS/AAM/AAD, ARPL, BOUND and SALC. Needed by real-mode and 32-bit protected-mode code
//! (Multiboot kernels, boot paths).
//!
//! Flags that the SDM leaves undefined after the BCD adjustments are produced as AMD and Intel
//! CPUs produce them for the common cases (SF/ZF/PF from AL, OF cleared); the conformance
//! harness checks them against the host where the host can run 32-bit code.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{ExecResult, Fault, Stop};
use crate::flags::{Width, W16, W32, W8};
use crate::state::SegReg;
use iced_x86::Code as C;

/// `pusha` / `pushad`: AX CX DX BX (original) SP BP SI DI; all writes checked before RSP moves.
pub fn exec_pusha<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let sp0 = cpu.state.gpr[4];
    let vals: [u64; 8] = std::array::from_fn(|i| cpu.state.gpr[i] & W::MASK);
    for (i, v) in vals.iter().enumerate() {
        if let Err(f) = cpu.push::<W>(e, *v) {
            cpu.state.gpr[4] = sp0;
            return Err(f);
        }
        let _ = i;
    }
    Ok(())
}

/// `popa` / `popad`: the saved SP is skipped.
pub fn exec_popa<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let n = W::BYTES as u64;
    let mut vals = [0u64; 8];
    for (i, v) in vals.iter_mut().enumerate() {
        *v = cpu.peek::<W>(e, n * i as u64)?;
    }
    for (i, v) in vals.iter().enumerate() {
        let reg = 7 - i;
        if reg != 4 {
            cpu.set::<W>(reg as u8, *v);
        }
    }
    let sp = cpu.state.gpr[4].wrapping_add(8 * n);
    cpu.set_rsp(e, sp);
    Ok(())
}

/// `push es/cs/ss/ds`
pub fn exec_push_sreg<const S: u8, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let sel = cpu.state.segs[S as usize].selector as u64;
    cpu.push::<W>(e, sel)
}

/// `pop es/ss/ds` (POP CS does not exist).
pub fn exec_pop_sreg<const S: u8, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.peek::<W>(e, 0)? as u16;
    cpu.load_data_segment(S, v)?;
    let sp = cpu.state.gpr[4].wrapping_add(W::BYTES as u64);
    cpu.set_rsp(e, sp);
    super::data_xfer::ss_shadow(cpu, e, S)
}

/// `lds/les/lss/lfs/lgs r, m16:16/32/64`: W is the offset size.
pub fn exec_load_far_ptr<const S: u8, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let la = cpu.ea(e);
    let off = cpu.read::<W>(la)?;
    let sel = cpu.read::<W16>(la.wrapping_add(W::BYTES as u64))? as u16;
    cpu.load_data_segment(S, sel)?;
    cpu.set::<W>(e.dst, off);
    Ok(())
}

fn set_al_flags(cpu: &mut Cpu, al: u8, cf: bool, af: bool) {
    cpu.state.lazy.set_szp_with_cf_of_af::<W8>(al as u64, cf, false, af);
}

/// `daa`
pub fn exec_daa(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let old_al = cpu.state.gpr[0] as u8;
    let (old_cf, old_af) = (cpu.state.lazy.cf(), cpu.state.lazy.af());
    let mut al = old_al;
    let mut cf = false;
    let af = old_af || old_al & 0xf > 9;
    if af {
        al = al.wrapping_add(6);
        cf = old_cf || old_al > 0xf9;
    }
    if old_cf || old_al > 0x99 {
        al = al.wrapping_add(0x60);
        cf = true;
    }
    cpu.set::<W8>(0, al as u64);
    set_al_flags(cpu, al, cf, af);
    Ok(())
}

/// `das`
pub fn exec_das(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let old_al = cpu.state.gpr[0] as u8;
    let (old_cf, old_af) = (cpu.state.lazy.cf(), cpu.state.lazy.af());
    let mut al = old_al;
    let mut cf = false;
    let af = old_af || old_al & 0xf > 9;
    if af {
        al = al.wrapping_sub(6);
        cf = old_cf || old_al < 6;
    }
    if old_cf || old_al > 0x99 {
        al = al.wrapping_sub(0x60);
        cf = true;
    }
    cpu.set::<W8>(0, al as u64);
    set_al_flags(cpu, al, cf, af);
    Ok(())
}

/// `aaa` / `aas`
pub fn exec_aaa_aas<const SUB: bool>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let ax = cpu.state.gpr[0] as u16;
    let adjust = (ax as u8) & 0xf > 9 || cpu.state.lazy.af();
    let ax = if adjust {
        if SUB {
            // SDM Vol. 2, AAS: AX := AX - 6 (a borrow out of AL reaches AH), then AH := AH - 1.
            ax.wrapping_sub(6).wrapping_sub(0x100)
        } else {
            ax.wrapping_add(0x106)
        }
    } else {
        ax
    };
    let ax = ax & 0xff0f;
    cpu.set::<W16>(0, ax as u64);
    set_al_flags(cpu, ax as u8, adjust, adjust);
    Ok(())
}

/// `aam imm8`: #DE when the base is 0.
pub fn exec_aam(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let base = e.imm as u8;
    if base == 0 {
        return Err(Stop::Fault(Fault::de()));
    }
    let al = cpu.state.gpr[0] as u8;
    let ax = ((al / base) as u16) << 8 | (al % base) as u16;
    cpu.set::<W16>(0, ax as u64);
    set_al_flags(cpu, ax as u8, false, false);
    Ok(())
}

/// `aad imm8`
pub fn exec_aad(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let ax = cpu.state.gpr[0] as u16;
    let al = ((ax as u8).wrapping_add(((ax >> 8) as u8).wrapping_mul(e.imm as u8))) as u16;
    cpu.set::<W16>(0, al as u64);
    set_al_flags(cpu, al as u8, false, false);
    Ok(())
}

/// ARPL's rule (SDM Vol. 2, ARPL): raise the destination's RPL to the source's; ZF says whether
/// it changed. The other flags are unchanged.
fn arpl(cpu: &mut Cpu, dest: u16, src: u16) -> Option<u16> {
    let adjust = dest & 3 < src & 3;
    if cpu.state.lazy.zf() != adjust {
        cpu.state.lazy.force_zf(adjust);
    }
    adjust.then_some((dest & !3) | (src & 3))
}

/// `arpl r16, r16`
pub fn exec_arpl_r(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let (d, s) = (cpu.get::<W16>(e.dst) as u16, cpu.get::<W16>(e.src) as u16);
    if let Some(v) = arpl(cpu, d, s) {
        cpu.set::<W16>(e.dst, v as u64);
    }
    Ok(())
}

/// `arpl m16, r16`: translated for write first, as every read-modify-write operand.
pub fn exec_arpl_m(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let loc = cpu.translate_rmw::<W16>(cpu.ea(e))?;
    let d = cpu.read_loc::<W16>(loc) as u16;
    let s = cpu.get::<W16>(e.src) as u16;
    if let Some(v) = arpl(cpu, d, s) {
        cpu.write_loc::<W16>(loc, v as u64);
    }
    Ok(())
}

/// `bound r, m`: #BR unless lower <= r <= upper, both bounds signed and read from memory (SDM
/// Vol. 2, BOUND). No flags change.
pub fn exec_bound<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let la = cpu.ea(e);
    let lower = W::sext(cpu.read::<W>(la)?) as i64;
    let upper = W::sext(cpu.read::<W>(la.wrapping_add(W::BYTES as u64))?) as i64;
    let idx = W::sext(cpu.get::<W>(e.dst)) as i64;
    if idx < lower || idx > upper {
        return Err(Stop::Fault(Fault::new(crate::exception::vector::BR)));
    }
    Ok(())
}

/// `salc`: AL = CF ? 0xff : 0 (undocumented, present on Intel and AMD).
pub fn exec_salc(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let v = if cpu.state.lazy.cf() { 0xff } else { 0 };
    cpu.set::<W8>(0, v);
    Ok(())
}

const ES: u8 = SegReg::Es as u8;
const CS: u8 = SegReg::Cs as u8;
const SS: u8 = SegReg::Ss as u8;
const DS: u8 = SegReg::Ds as u8;
const FS: u8 = SegReg::Fs as u8;
const GS: u8 = SegReg::Gs as u8;

const LEGACY: &[Row] = &[
    Row::reg(C::Pushaw, exec_pusha::<W16>),
    Row::reg(C::Pushad, exec_pusha::<W32>),
    Row::reg(C::Popaw, exec_popa::<W16>),
    Row::reg(C::Popad, exec_popa::<W32>),
    Row::reg(C::Pushw_ES, exec_push_sreg::<ES, W16>),
    Row::reg(C::Pushd_ES, exec_push_sreg::<ES, W32>),
    Row::reg(C::Pushw_CS, exec_push_sreg::<CS, W16>),
    Row::reg(C::Pushd_CS, exec_push_sreg::<CS, W32>),
    Row::reg(C::Pushw_SS, exec_push_sreg::<SS, W16>),
    Row::reg(C::Pushd_SS, exec_push_sreg::<SS, W32>),
    Row::reg(C::Pushw_DS, exec_push_sreg::<DS, W16>),
    Row::reg(C::Pushd_DS, exec_push_sreg::<DS, W32>),
    Row::reg(C::Popw_ES, exec_pop_sreg::<ES, W16>),
    Row::reg(C::Popd_ES, exec_pop_sreg::<ES, W32>),
    Row::reg(C::Popw_SS, exec_pop_sreg::<SS, W16>),
    Row::reg(C::Popd_SS, exec_pop_sreg::<SS, W32>),
    Row::reg(C::Popw_DS, exec_pop_sreg::<DS, W16>),
    Row::reg(C::Popd_DS, exec_pop_sreg::<DS, W32>),
    Row::mem(C::Les_r16_m1616, exec_load_far_ptr::<ES, W16>),
    Row::mem(C::Les_r32_m1632, exec_load_far_ptr::<ES, W32>),
    Row::mem(C::Lds_r16_m1616, exec_load_far_ptr::<DS, W16>),
    Row::mem(C::Lds_r32_m1632, exec_load_far_ptr::<DS, W32>),
    Row::mem(C::Lss_r16_m1616, exec_load_far_ptr::<SS, W16>),
    Row::mem(C::Lss_r32_m1632, exec_load_far_ptr::<SS, W32>),
    Row::mem(C::Lfs_r16_m1616, exec_load_far_ptr::<FS, W16>),
    Row::mem(C::Lfs_r32_m1632, exec_load_far_ptr::<FS, W32>),
    Row::mem(C::Lgs_r16_m1616, exec_load_far_ptr::<GS, W16>),
    Row::mem(C::Lgs_r32_m1632, exec_load_far_ptr::<GS, W32>),
    Row::reg(C::Daa, exec_daa),
    Row::reg(C::Das, exec_das),
    Row::reg(C::Aaa, exec_aaa_aas::<false>),
    Row::reg(C::Aas, exec_aaa_aas::<true>),
    Row::reg(C::Aam_imm8, exec_aam),
    Row::reg(C::Aad_imm8, exec_aad),
    Row::reg(C::Salc, exec_salc),
    Row::rm(C::Arpl_rm16_r16, exec_arpl_r, exec_arpl_m),
    Row::rm(C::Arpl_r32m16_r32, exec_arpl_r, exec_arpl_m),
    Row::mem(C::Bound_r16_m1616, exec_bound::<W16>),
    Row::mem(C::Bound_r32_m3232, exec_bound::<W32>),
];

pub(crate) const ROWS: &[&[Row]] = &[LEGACY];
