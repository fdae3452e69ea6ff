//! x87 environment and state images: FNSTENV/FSTENV, FLDENV, FNSAVE/FSAVE, FRSTOR (SDM Vol. 1,
//! 8.1.10, Figures 8-9 to 8-12; Vol. 2, those entries).
//!
//! The environment is 28 bytes with a 32- or 64-bit operand size (iced-x86's `m28byte` forms;
//! REX.W selects the same image, as the reference host stores it) and 14 bytes with a 16-bit
//! one; protected mode and real/virtual-8086 mode have different layouts of the pointer fields.
//! The save image is the environment followed by ST(0)..ST(7), 10 bytes each, in stack order.
//! Reserved halves of the 32-bit image are written as FFFFh, as the reference host does. FCS
//! and FDS are stored as 0 and ignored on load (deprecated, CPUID.(7,0):EBX[13]). FLDENV and
//! FRSTOR recompute ES/B from the flags and masks, and the tags of non-empty registers from
//! their contents, as the host does.
//! FNSTENV then masks all exceptions; FNSAVE then initializes the FPU as FNINIT does. Stores are
//! precise: every byte of the image is checked for write before any is written; loads read the
//! whole image before anything changes. Leaves out: nothing of these instructions.

use super::control::init;
use super::stack::{phys, set_tag, tag, tag_of, to_f80, to_reg, top, TAG_EMPTY};
use super::{enter, enter_nowait, probe_write};
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{ExecResult, Stop};
use crate::flags::W8;
use crate::state::{ctrl, rflags, FpuState};
use iced_x86::Code as C;
use x87float::F80;

/// Environment image size for an operand size.
const fn env_len(big: bool) -> usize {
    if big {
        28
    } else {
        14
    }
}

/// True in real-address and virtual-8086 mode (the real-mode image layouts apply).
fn real_layout(cpu: &Cpu) -> bool {
    cpu.state.cr0 & ctrl::CR0_PE == 0 || cpu.state.rflags_other & rflags::VM != 0
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The environment image of `f` in the layout `big`/`real` select.
pub fn store_env(f: &FpuState, big: bool, real: bool) -> Vec<u8> {
    let mut b = vec![0u8; env_len(big)];
    let fop = f.fop & 0x7ff;
    if big {
        for (i, v) in [f.fcw, f.fsw, f.ftw].into_iter().enumerate() {
            put16(&mut b, 4 * i, v);
            put16(&mut b, 4 * i + 2, 0xffff);
        }
        if real {
            // Figure 8-10: 32-bit linear pointers split into a low half and bits 31:16 at 27:12.
            put16(&mut b, 12, f.fip as u16);
            put16(&mut b, 14, 0xffff);
            put32(&mut b, 16, ((f.fip as u32 >> 16) << 12) | fop as u32);
            put16(&mut b, 20, f.fdp as u16);
            put16(&mut b, 22, 0xffff);
            put32(&mut b, 24, (f.fdp as u32 >> 16) << 12);
        } else {
            // Figure 8-9.
            put32(&mut b, 12, f.fip as u32);
            put32(&mut b, 16, (fop as u32) << 16 | f.fcs as u32);
            put32(&mut b, 20, f.fdp as u32);
            put16(&mut b, 24, f.fds);
            put16(&mut b, 26, 0xffff);
        }
    } else {
        put16(&mut b, 0, f.fcw);
        put16(&mut b, 2, f.fsw);
        put16(&mut b, 4, f.ftw);
        put16(&mut b, 6, f.fip as u16);
        put16(&mut b, 10, f.fdp as u16);
        if real {
            // Figure 8-12: 20-bit linear pointers.
            put16(&mut b, 8, ((f.fip >> 16) as u16 & 0xf) << 12 | fop);
            put16(&mut b, 12, ((f.fdp >> 16) as u16 & 0xf) << 12);
        } else {
            // Figure 8-11: no FOP.
            put16(&mut b, 8, f.fcs);
            put16(&mut b, 12, f.fds);
        }
    }
    b
}

/// Loads an environment image into `f` (registers untouched).
pub fn load_env(f: &mut FpuState, b: &[u8], big: bool, real: bool) {
    if big {
        f.fcw = get16(b, 0);
        f.fsw = get16(b, 4);
        f.ftw = get16(b, 8);
        if real {
            f.fip = (get16(b, 12) as u32 | (get32(b, 16) >> 12 & 0xffff) << 16) as u64;
            f.fop = get32(b, 16) as u16 & 0x7ff;
            f.fdp = (get16(b, 20) as u32 | (get32(b, 24) >> 12 & 0xffff) << 16) as u64;
            f.fcs = 0;
            f.fds = 0;
        } else {
            f.fip = get32(b, 12) as u64;
            f.fcs = get16(b, 16);
            f.fop = get16(b, 18) & 0x7ff;
            f.fdp = get32(b, 20) as u64;
            f.fds = get16(b, 24);
        }
    } else {
        f.fcw = get16(b, 0);
        f.fsw = get16(b, 2);
        f.ftw = get16(b, 4);
        f.fip = get16(b, 6) as u64;
        f.fdp = get16(b, 10) as u64;
        if real {
            f.fip |= ((get16(b, 8) >> 12) as u64) << 16;
            f.fop = get16(b, 8) & 0x7ff;
            f.fdp |= ((get16(b, 12) >> 12) as u64) << 16;
            f.fcs = 0;
            f.fds = 0;
        } else {
            f.fcs = get16(b, 8);
            f.fds = get16(b, 12);
            f.fop = 0; // the 16-bit protected-mode image has no FOP
        }
    }
    f.fcw = (f.fcw & 0x1f3f) | 0x0040;
    // FCS and FDS are deprecated (CPUID.(7,0):EBX[13]): they always read as 0.
    f.fcs = 0;
    f.fds = 0;
    super::stack::update_es(f);
}

/// FLDENV and FRSTOR keep only "empty or not" from the loaded tag word and recompute the
/// class of every non-empty register from its contents (as the host does).
fn retag(f: &mut FpuState) {
    for p in 0..8 {
        if tag(f, p) != TAG_EMPTY {
            let t = tag_of(to_f80(f.regs[p]));
            set_tag(f, p, t);
        }
    }
}

/// The full FNSAVE image (environment, then ST(0)..ST(7)).
pub fn store_state(f: &FpuState, big: bool, real: bool) -> Vec<u8> {
    let mut b = store_env(f, big, real);
    for i in 0..8u8 {
        b.extend_from_slice(&to_f80(f.regs[phys(f, i)]).to_le_bytes());
    }
    b
}

/// Loads a full FRSTOR image.
pub fn load_state(f: &mut FpuState, b: &[u8], big: bool, real: bool) {
    let n = env_len(big);
    load_env(f, b, big, real);
    let t = top(f);
    for i in 0..8 {
        let mut r = [0u8; 10];
        r.copy_from_slice(&b[n + 10 * i..n + 10 * i + 10]);
        f.regs[(t + i) & 7] = to_reg(F80::from_le_bytes(r));
    }
}

fn write_image(cpu: &mut Cpu, e: &Instr, image: &[u8]) -> ExecResult {
    let la = cpu.ea(e);
    probe_write(cpu, la, image.len() as u64, e.lmask)?;
    for (i, &byte) in image.iter().enumerate() {
        cpu.write::<W8>(la.wrapping_add(i as u64) & e.lmask, byte as u64)?;
    }
    Ok(())
}

fn read_image(cpu: &mut Cpu, e: &Instr, len: usize) -> Result<Vec<u8>, Stop> {
    let la = cpu.ea(e);
    let mut b = vec![0u8; len];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = cpu.read::<W8>(la.wrapping_add(i as u64) & e.lmask)? as u8;
    }
    Ok(b)
}

/// `fnstenv m14/m28byte` (`WAIT` = true: `fstenv`): store, then mask all exceptions.
pub fn exec_fstenv<const BIG: bool, const WAIT: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    if WAIT {
        enter(cpu)?;
    } else {
        enter_nowait(cpu)?;
    }
    let image = store_env(&cpu.state.fpu, BIG, real_layout(cpu));
    write_image(cpu, e, &image)?;
    cpu.state.fpu.fcw |= 0x3f;
    Ok(())
}

/// `fldenv m14/m28byte`
pub fn exec_fldenv<const BIG: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let image = read_image(cpu, e, env_len(BIG))?;
    let real = real_layout(cpu);
    load_env(&mut cpu.state.fpu, &image, BIG, real);
    retag(&mut cpu.state.fpu);
    Ok(())
}

/// `fnsave m94/m108byte` (`WAIT` = true: `fsave`): store, then FNINIT.
pub fn exec_fsave<const BIG: bool, const WAIT: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    if WAIT {
        enter(cpu)?;
    } else {
        enter_nowait(cpu)?;
    }
    let image = store_state(&cpu.state.fpu, BIG, real_layout(cpu));
    write_image(cpu, e, &image)?;
    init(&mut cpu.state.fpu);
    Ok(())
}

/// `frstor m94/m108byte`
pub fn exec_frstor<const BIG: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    enter(cpu)?;
    let image = read_image(cpu, e, env_len(BIG) + 80)?;
    let real = real_layout(cpu);
    load_state(&mut cpu.state.fpu, &image, BIG, real);
    retag(&mut cpu.state.fpu);
    Ok(())
}

pub(crate) const ENV: &[Row] = &[
    Row::mem(C::Fnstenv_m14byte, exec_fstenv::<false, false>),
    Row::mem(C::Fnstenv_m28byte, exec_fstenv::<true, false>),
    Row::mem(C::Fstenv_m14byte, exec_fstenv::<false, true>),
    Row::mem(C::Fstenv_m28byte, exec_fstenv::<true, true>),
    Row::mem(C::Fldenv_m14byte, exec_fldenv::<false>),
    Row::mem(C::Fldenv_m28byte, exec_fldenv::<true>),
    Row::mem(C::Fnsave_m94byte, exec_fsave::<false, false>),
    Row::mem(C::Fnsave_m108byte, exec_fsave::<true, false>),
    Row::mem(C::Fsave_m94byte, exec_fsave::<false, true>),
    Row::mem(C::Fsave_m108byte, exec_fsave::<true, true>),
    Row::mem(C::Frstor_m94byte, exec_frstor::<false>),
    Row::mem(C::Frstor_m108byte, exec_frstor::<true>),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FpuState {
        FpuState {
            fcw: 0x037f,
            fsw: 0x3800,
            ftw: 0x3fff,
            fop: 0x5ab,
            fip: 0x1_2345,
            fdp: 0xa_bcde,
            ..FpuState::default()
        }
    }

    #[test]
    fn real_mode_images_split_linear_pointers_as_figures_8_10_and_8_12_show() {
        let f = sample();
        // Figure 8-10 (32-bit real mode): IP 15:0 at 12, then FOP in 10:0 and IP 31:16 in
        // 27:12 at 16; DP 15:0 at 20, DP 31:16 in 27:12 at 24.
        let b = store_env(&f, true, true);
        assert_eq!(get16(&b, 12), 0x2345);
        assert_eq!(get32(&b, 16), 0x0000_15ab);
        assert_eq!(get16(&b, 20), 0xbcde);
        assert_eq!(get32(&b, 24), 0x0000_a000);
        // Figure 8-12 (16-bit real mode): IP 19:16 in 15:12 with FOP in 10:0 at 8.
        let b = store_env(&f, false, true);
        assert_eq!((get16(&b, 6), get16(&b, 8)), (0x2345, 0x15ab));
        assert_eq!((get16(&b, 10), get16(&b, 12)), (0xbcde, 0xa000));
        // Loading either image gives the pointers back.
        for big in [false, true] {
            let mut g = FpuState::default();
            load_env(&mut g, &store_env(&f, big, true), big, true);
            assert_eq!((g.fip, g.fdp, g.fop), (f.fip, f.fdp, f.fop), "big {big}");
        }
    }
}
