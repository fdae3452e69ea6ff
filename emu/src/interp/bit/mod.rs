//! Bit instructions: BT, BTS, BTR, BTC (register and imm8 bit offsets, register and memory
//! operands), BSF, BSR, BSWAP, POPCNT, LZCNT (SDM Vol. 2, those entries).
//!
//! A memory operand with a *register* bit offset addresses a bit string: the signed offset selects
//! the operand-sized word `offset >> log2(width)` words away from the effective address (SDM
//! Vol. 2, "BT": "bit base, bit offset"). An imm8 offset is taken modulo the width. BTS/BTR/BTC on
//! memory are read-modify-write (translated for write first).
//!
//! LZCNT is implemented and advertised (ABM, CPUID 8000_0001h:ECX bit 5), POPCNT too (CPUID
//! 1:ECX bit 23). TZCNT and the rest of BMI1/BMI2 are in `bmi.rs`.
//!
//! Undefined flags follow the reference CPU (Intel Cascade Lake; see `tests/host.rs`) (checked by the host tests): BT* change only
//! CF; BSF/BSR set PF from the index and clear CF/OF/SF/AF, and leave the destination (all 64
//! bits) alone when the source is zero; see each handler.

pub mod bmi;

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{ExecResult, Stop};
use crate::flags::{LazyFlags, Width, W16, W32, W64};
use crate::state::rflags;
use iced_x86::Code as C;

/// What BT/BTS/BTR/BTC do to the selected bit.
pub trait BitOp {
    /// False for BT (read only).
    const WRITES: bool = true;
    fn apply(v: u64, mask: u64) -> u64;
}
pub struct Bt;
pub struct Bts;
pub struct Btr;
pub struct Btc;
impl BitOp for Bt {
    const WRITES: bool = false;
    #[inline(always)]
    fn apply(v: u64, _mask: u64) -> u64 {
        v
    }
}
impl BitOp for Bts {
    #[inline(always)]
    fn apply(v: u64, mask: u64) -> u64 {
        v | mask
    }
}
impl BitOp for Btr {
    #[inline(always)]
    fn apply(v: u64, mask: u64) -> u64 {
        v & !mask
    }
}
impl BitOp for Btc {
    #[inline(always)]
    fn apply(v: u64, mask: u64) -> u64 {
        v ^ mask
    }
}

/// `bt* r, r` and `bt* r, imm8`: the offset is taken modulo the width.
pub fn exec_bt_r<O: BitOp, W: Width, const IMM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let off = if IMM { e.imm } else { cpu.get::<W>(e.src) };
    let mask = 1u64 << (off & (W::BITS as u64 - 1));
    let v = cpu.get::<W>(e.dst);
    cpu.state.lazy.force_cf(v & mask != 0);
    if O::WRITES {
        cpu.set::<W>(e.dst, O::apply(v, mask));
    }
    Ok(())
}

/// `bt* m, r` (bit string: the signed register offset may reach outside the operand) and
/// `bt* m, imm8` (offset modulo the width).
pub fn exec_bt_m<O: BitOp, W: Width, const IMM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let (la, bit) = if IMM {
        (cpu.ea(e), e.imm & (W::BITS as u64 - 1))
    } else {
        let off = W::sext(cpu.get::<W>(e.src)) as i64;
        let words = off >> W::BITS.trailing_zeros();
        let la = cpu.ea(e).wrapping_add((words as u64).wrapping_mul(W::BYTES as u64)) & e.lmask;
        (la, off as u64 & (W::BITS as u64 - 1))
    };
    let mask = 1u64 << bit;
    if O::WRITES {
        let loc = cpu.translate_rmw::<W>(la)?;
        let v = cpu.read_loc::<W>(loc);
        cpu.write_loc::<W>(loc, O::apply(v, mask));
        cpu.state.lazy.force_cf(v & mask != 0);
    } else {
        let v = cpu.read::<W>(la)?;
        cpu.state.lazy.force_cf(v & mask != 0);
    }
    Ok(())
}

#[inline(always)]
fn rm_src<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> Result<u64, Stop> {
    if MEM {
        cpu.read::<W>(cpu.ea(e))
    } else {
        Ok(cpu.get::<W>(e.src))
    }
}

/// `bsf r, r/m` (`REVERSE` = false) and `bsr r, r/m`. A zero source sets ZF and leaves the
/// destination untouched, upper half included (the reference CPU; AMD documents the same). The other flags
/// are undefined; the reference CPU sets them as a logic operation on the index (0 for a zero source) would.
pub fn exec_bsf_bsr<W: Width, const REVERSE: bool, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = rm_src::<W, MEM>(cpu, e)?;
    let lf = &mut cpu.state.lazy;
    if v == 0 {
        lf.set_oszapc_logic::<W>(0);
        return Ok(());
    }
    let idx = if REVERSE { 63 - v.leading_zeros() } else { v.trailing_zeros() } as u64;
    // Reference CPU: PF from the index, CF/OF/SF/AF clear. A nonzero stored result keeps ZF clear for
    // index 0 (bit 8 does not enter PF).
    lf.set_oszapc_logic::<W>(idx);
    if idx == 0 {
        lf.result = 0x100;
    }
    cpu.set::<W>(e.dst, idx);
    Ok(())
}

/// `popcnt r, r/m`: ZF = (source == 0); CF, OF, SF, AF, PF cleared (SDM POPCNT).
pub fn exec_popcnt<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = rm_src::<W, MEM>(cpu, e)?;
    cpu.set::<W>(e.dst, v.count_ones() as u64);
    cpu.state.lazy = LazyFlags::from_rflags(if v == 0 { rflags::ZF } else { 0 });
    Ok(())
}

/// `lzcnt r, r/m`: CF = (source == 0), ZF = (result == 0); OF, SF, AF, PF undefined (reference CPU: the
/// values below, checked by the host tests).
pub fn exec_lzcnt<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = rm_src::<W, MEM>(cpu, e)?;
    let n = (v.leading_zeros() - (64 - W::BITS)) as u64;
    cpu.set::<W>(e.dst, n);
    let mut f = 0;
    if v == 0 {
        f |= rflags::CF;
    }
    if n == 0 {
        f |= rflags::ZF;
    }
    cpu.state.lazy = LazyFlags::from_rflags(f);
    Ok(())
}

/// `bswap r32/r64`. With a 16-bit operand the result is undefined; the reference CPU clears the register's
/// low 16 bits, and so do we.
pub fn exec_bswap<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.get::<W>(e.dst);
    let r = match W::BITS {
        32 => (v as u32).swap_bytes() as u64,
        64 => v.swap_bytes(),
        _ => 0,
    };
    cpu.set::<W>(e.dst, r);
    Ok(())
}

macro_rules! bt_rows {
    ($op:ty; $r16:ident, $r32:ident, $r64:ident, $i16:ident, $i32:ident, $i64:ident) => {
        [
            Row::rm(C::$r16, exec_bt_r::<$op, W16, false>, exec_bt_m::<$op, W16, false>),
            Row::rm(C::$r32, exec_bt_r::<$op, W32, false>, exec_bt_m::<$op, W32, false>),
            Row::rm(C::$r64, exec_bt_r::<$op, W64, false>, exec_bt_m::<$op, W64, false>),
            Row::rm(C::$i16, exec_bt_r::<$op, W16, true>, exec_bt_m::<$op, W16, true>),
            Row::rm(C::$i32, exec_bt_r::<$op, W32, true>, exec_bt_m::<$op, W32, true>),
            Row::rm(C::$i64, exec_bt_r::<$op, W64, true>, exec_bt_m::<$op, W64, true>),
        ]
    };
}

const BT: [Row; 6] = bt_rows!(Bt; Bt_rm16_r16, Bt_rm32_r32, Bt_rm64_r64, Bt_rm16_imm8, Bt_rm32_imm8, Bt_rm64_imm8);
const BTS: [Row; 6] =
    bt_rows!(Bts; Bts_rm16_r16, Bts_rm32_r32, Bts_rm64_r64, Bts_rm16_imm8, Bts_rm32_imm8, Bts_rm64_imm8);
const BTR: [Row; 6] =
    bt_rows!(Btr; Btr_rm16_r16, Btr_rm32_r32, Btr_rm64_r64, Btr_rm16_imm8, Btr_rm32_imm8, Btr_rm64_imm8);
const BTC: [Row; 6] =
    bt_rows!(Btc; Btc_rm16_r16, Btc_rm32_r32, Btc_rm64_r64, Btc_rm16_imm8, Btc_rm32_imm8, Btc_rm64_imm8);

macro_rules! rm_rows {
    ($h:ident, $flag:literal; $($code:ident = $w:ty),*) => {
        [ $( Row::rm(C::$code, $h::<$w, $flag, false>, $h::<$w, $flag, true>), )* ]
    };
    ($h:ident; $($code:ident = $w:ty),*) => {
        [ $( Row::rm(C::$code, $h::<$w, false>, $h::<$w, true>), )* ]
    };
}

const SCAN: [Row; 15] = {
    let f = rm_rows!(exec_bsf_bsr, false; Bsf_r16_rm16 = W16, Bsf_r32_rm32 = W32, Bsf_r64_rm64 = W64);
    let r = rm_rows!(exec_bsf_bsr, true; Bsr_r16_rm16 = W16, Bsr_r32_rm32 = W32, Bsr_r64_rm64 = W64);
    let p = rm_rows!(exec_popcnt; Popcnt_r16_rm16 = W16, Popcnt_r32_rm32 = W32, Popcnt_r64_rm64 = W64);
    let l = rm_rows!(exec_lzcnt; Lzcnt_r16_rm16 = W16, Lzcnt_r32_rm32 = W32, Lzcnt_r64_rm64 = W64);
    let s = [
        Row::reg(C::Bswap_r16, exec_bswap::<W16>),
        Row::reg(C::Bswap_r32, exec_bswap::<W32>),
        Row::reg(C::Bswap_r64, exec_bswap::<W64>),
    ];
    [f[0], f[1], f[2], r[0], r[1], r[2], p[0], p[1], p[2], l[0], l[1], l[2], s[0], s[1], s[2]]
};

/// CPUID.1:ECX bit for POPCNT.
pub const CPUID1_ECX: u32 = 1 << 23;
/// CPUID.8000_0001h:ECX bit for LZCNT (ABM).
pub const CPUID_EXT1_ECX: u32 = 1 << 5;

pub(crate) const ROWS: &[&[Row]] = &[&BT, &BTS, &BTR, &BTC, &SCAN, bmi::BMI32, bmi::BMI64, bmi::TZCNT];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::hosttest::{check, host, host_has, reference_host, values, Regs, FLAGS, FLAG_INPUTS};

    /// Operand in RAX and memory, bit offsets in RCX within [-256, 256) (the buffer), with junk
    /// above the operand width in RCX.
    fn cases(bits: u32) -> Vec<Regs> {
        let mut out = Vec::new();
        let offs: Vec<i64> = vec![
            0, 1, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 200, 255, -1, -2, -16, -17, -32, -33, -64, -65, -200,
            -256,
        ];
        for &a in &values(64, 6) {
            for &o in &offs {
                for f in FLAG_INPUTS {
                    let m = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
                    let rcx = (o as u64 & m) | (0x1234_5678_9abc_def0 & !m);
                    out.push(Regs {
                        rax: a,
                        rcx,
                        rdx: !a,
                        flags: f,
                        mem: [a, !a, a >> 3, a << 5, a ^ 0x5555, 7, a, 9],
                        ..Default::default()
                    });
                }
            }
        }
        out
    }

    /// Source values in RCX for the scans, destination junk in RAX.
    fn scan_cases(bits: u32) -> Vec<Regs> {
        let mut out = Vec::new();
        for &v in &values(bits, 40) {
            for f in FLAG_INPUTS {
                let v = v | if bits == 64 { 0 } else { 0xf00d_0000_0000_0000 };
                out.push(Regs { rax: 0xdead_beef_dead_beef, rcx: v, flags: f, mem: [v; 8], ..Default::default() });
            }
        }
        out
    }

    /// `scan_cases` for BSF/BSR: with a zero source AMD leaves the destination unchanged (APM
    /// Vol. 3, BSF/BSR), as tier 0 does, while the SDM calls it undefined (Vol. 2, BSF/BSR).
    /// Zero sources are compared on AMD hosts and on the reference Intel model only.
    fn bsf_bsr_cases(bits: u32) -> Vec<Regs> {
        let keep_zero = reference_host() || crate::hostcpu::host_cpu().is_amd();
        let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
        scan_cases(bits).into_iter().filter(|r| keep_zero || r.rcx & mask != 0).collect()
    }

    #[test]
    fn bt_matches_the_host() {
        check(host!("bt ax, cx"), cases(16), FLAGS);
        check(host!("bt ax, 3"), cases(16), FLAGS);
        check(host!("bt ax, 15"), cases(16), FLAGS);
        check(host!("bt ax, 21"), cases(16), FLAGS);
        check(host!("bt word ptr [r10], cx"), cases(16), FLAGS);
        check(host!("bt word ptr [r10 - 8], 13"), cases(16), FLAGS);
        check(host!("bt word ptr [r10 + 2], 33"), cases(16), FLAGS);
        check(host!("bt eax, ecx"), cases(32), FLAGS);
        check(host!("bt eax, 3"), cases(32), FLAGS);
        check(host!("bt eax, 31"), cases(32), FLAGS);
        check(host!("bt eax, 37"), cases(32), FLAGS);
        check(host!("bt dword ptr [r10], ecx"), cases(32), FLAGS);
        check(host!("bt dword ptr [r10 - 8], 13"), cases(32), FLAGS);
        check(host!("bt dword ptr [r10 + 2], 65"), cases(32), FLAGS);
        check(host!("bt rax, rcx"), cases(64), FLAGS);
        check(host!("bt rax, 3"), cases(64), FLAGS);
        check(host!("bt rax, 63"), cases(64), FLAGS);
        check(host!("bt rax, 69"), cases(64), FLAGS);
        check(host!("bt qword ptr [r10], rcx"), cases(64), FLAGS);
        check(host!("bt qword ptr [r10 - 8], 13"), cases(64), FLAGS);
        check(host!("bt qword ptr [r10 + 2], 129"), cases(64), FLAGS);
    }

    #[test]
    fn bts_matches_the_host() {
        check(host!("bts ax, cx"), cases(16), FLAGS);
        check(host!("bts ax, 3"), cases(16), FLAGS);
        check(host!("bts ax, 15"), cases(16), FLAGS);
        check(host!("bts ax, 21"), cases(16), FLAGS);
        check(host!("bts word ptr [r10], cx"), cases(16), FLAGS);
        check(host!("bts word ptr [r10 - 8], 13"), cases(16), FLAGS);
        check(host!("bts word ptr [r10 + 2], 33"), cases(16), FLAGS);
        check(host!("bts eax, ecx"), cases(32), FLAGS);
        check(host!("bts eax, 3"), cases(32), FLAGS);
        check(host!("bts eax, 31"), cases(32), FLAGS);
        check(host!("bts eax, 37"), cases(32), FLAGS);
        check(host!("bts dword ptr [r10], ecx"), cases(32), FLAGS);
        check(host!("bts dword ptr [r10 - 8], 13"), cases(32), FLAGS);
        check(host!("bts dword ptr [r10 + 2], 65"), cases(32), FLAGS);
        check(host!("bts rax, rcx"), cases(64), FLAGS);
        check(host!("bts rax, 3"), cases(64), FLAGS);
        check(host!("bts rax, 63"), cases(64), FLAGS);
        check(host!("bts rax, 69"), cases(64), FLAGS);
        check(host!("bts qword ptr [r10], rcx"), cases(64), FLAGS);
        check(host!("bts qword ptr [r10 - 8], 13"), cases(64), FLAGS);
        check(host!("bts qword ptr [r10 + 2], 129"), cases(64), FLAGS);
    }

    #[test]
    fn btr_matches_the_host() {
        check(host!("btr ax, cx"), cases(16), FLAGS);
        check(host!("btr ax, 3"), cases(16), FLAGS);
        check(host!("btr ax, 15"), cases(16), FLAGS);
        check(host!("btr ax, 21"), cases(16), FLAGS);
        check(host!("btr word ptr [r10], cx"), cases(16), FLAGS);
        check(host!("btr word ptr [r10 - 8], 13"), cases(16), FLAGS);
        check(host!("btr word ptr [r10 + 2], 33"), cases(16), FLAGS);
        check(host!("btr eax, ecx"), cases(32), FLAGS);
        check(host!("btr eax, 3"), cases(32), FLAGS);
        check(host!("btr eax, 31"), cases(32), FLAGS);
        check(host!("btr eax, 37"), cases(32), FLAGS);
        check(host!("btr dword ptr [r10], ecx"), cases(32), FLAGS);
        check(host!("btr dword ptr [r10 - 8], 13"), cases(32), FLAGS);
        check(host!("btr dword ptr [r10 + 2], 65"), cases(32), FLAGS);
        check(host!("btr rax, rcx"), cases(64), FLAGS);
        check(host!("btr rax, 3"), cases(64), FLAGS);
        check(host!("btr rax, 63"), cases(64), FLAGS);
        check(host!("btr rax, 69"), cases(64), FLAGS);
        check(host!("btr qword ptr [r10], rcx"), cases(64), FLAGS);
        check(host!("btr qword ptr [r10 - 8], 13"), cases(64), FLAGS);
        check(host!("btr qword ptr [r10 + 2], 129"), cases(64), FLAGS);
    }

    #[test]
    fn btc_matches_the_host() {
        check(host!("btc ax, cx"), cases(16), FLAGS);
        check(host!("btc ax, 3"), cases(16), FLAGS);
        check(host!("btc ax, 15"), cases(16), FLAGS);
        check(host!("btc ax, 21"), cases(16), FLAGS);
        check(host!("btc word ptr [r10], cx"), cases(16), FLAGS);
        check(host!("btc word ptr [r10 - 8], 13"), cases(16), FLAGS);
        check(host!("btc word ptr [r10 + 2], 33"), cases(16), FLAGS);
        check(host!("btc eax, ecx"), cases(32), FLAGS);
        check(host!("btc eax, 3"), cases(32), FLAGS);
        check(host!("btc eax, 31"), cases(32), FLAGS);
        check(host!("btc eax, 37"), cases(32), FLAGS);
        check(host!("btc dword ptr [r10], ecx"), cases(32), FLAGS);
        check(host!("btc dword ptr [r10 - 8], 13"), cases(32), FLAGS);
        check(host!("btc dword ptr [r10 + 2], 65"), cases(32), FLAGS);
        check(host!("btc rax, rcx"), cases(64), FLAGS);
        check(host!("btc rax, 3"), cases(64), FLAGS);
        check(host!("btc rax, 63"), cases(64), FLAGS);
        check(host!("btc rax, 69"), cases(64), FLAGS);
        check(host!("btc qword ptr [r10], rcx"), cases(64), FLAGS);
        check(host!("btc qword ptr [r10 - 8], 13"), cases(64), FLAGS);
        check(host!("btc qword ptr [r10 + 2], 129"), cases(64), FLAGS);
    }

    #[test]
    fn scans_and_counts_match_the_host() {
        check(host!("bsf ax, cx"), bsf_bsr_cases(16), FLAGS);
        check(host!("bsf ax, word ptr [r10 - 16]"), bsf_bsr_cases(16), FLAGS);
        check(host!("bsf eax, ecx"), bsf_bsr_cases(32), FLAGS);
        check(host!("bsf eax, dword ptr [r10 - 16]"), bsf_bsr_cases(32), FLAGS);
        check(host!("bsf rax, rcx"), bsf_bsr_cases(64), FLAGS);
        check(host!("bsf rax, qword ptr [r10 - 16]"), bsf_bsr_cases(64), FLAGS);
        check(host!("bsr ax, cx"), bsf_bsr_cases(16), FLAGS);
        check(host!("bsr ax, word ptr [r10 - 16]"), bsf_bsr_cases(16), FLAGS);
        check(host!("bsr eax, ecx"), bsf_bsr_cases(32), FLAGS);
        check(host!("bsr eax, dword ptr [r10 - 16]"), bsf_bsr_cases(32), FLAGS);
        check(host!("bsr rax, rcx"), bsf_bsr_cases(64), FLAGS);
        check(host!("bsr rax, qword ptr [r10 - 16]"), bsf_bsr_cases(64), FLAGS);
        if !host_has("popcnt") || !host_has("lzcnt") {
            return;
        }
        check(host!("popcnt ax, cx"), scan_cases(16), FLAGS);
        check(host!("popcnt ax, word ptr [r10 - 16]"), scan_cases(16), FLAGS);
        check(host!("popcnt eax, ecx"), scan_cases(32), FLAGS);
        check(host!("popcnt eax, dword ptr [r10 - 16]"), scan_cases(32), FLAGS);
        check(host!("popcnt rax, rcx"), scan_cases(64), FLAGS);
        check(host!("popcnt rax, qword ptr [r10 - 16]"), scan_cases(64), FLAGS);
        check(host!("lzcnt ax, cx"), scan_cases(16), FLAGS);
        check(host!("lzcnt ax, word ptr [r10 - 16]"), scan_cases(16), FLAGS);
        check(host!("lzcnt eax, ecx"), scan_cases(32), FLAGS);
        check(host!("lzcnt eax, dword ptr [r10 - 16]"), scan_cases(32), FLAGS);
        check(host!("lzcnt rax, rcx"), scan_cases(64), FLAGS);
        check(host!("lzcnt rax, qword ptr [r10 - 16]"), scan_cases(64), FLAGS);
    }

    #[test]
    fn bswap_matches_the_host() {
        check(host!("bswap eax"), scan_cases(64).into_iter().map(|r| Regs { rax: r.rcx, ..r }), FLAGS);
        check(host!("bswap rax"), scan_cases(64).into_iter().map(|r| Regs { rax: r.rcx, ..r }), FLAGS);
        check(host!("bswap r8"), scan_cases(64).into_iter().map(|r| Regs { r8: r.rcx, ..r }), FLAGS);
        // 66 0F C8: bswap ax (undefined result)
        if reference_host() {
            check(host!(".byte 0x66, 0x0f, 0xc8"), scan_cases(64).into_iter().map(|r| Regs { rax: r.rcx, ..r }), FLAGS);
        }
    }
}
