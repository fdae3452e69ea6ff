//! Shifts and rotates: SHL/SAL, SHR, SAR, ROL, ROR, RCL, RCR by 1, by CL and by imm8, and the
//! double shifts SHLD/SHRD by imm8 and by CL; all widths, register and memory (read-modify-write)
//! forms (SDM Vol. 2, "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR", "SHLD", "SHRD").
//!
//! The count is masked to 5 bits (6 for 64-bit operands). A masked count of 0 changes no flags
//! and writes nothing to memory (a 32-bit register is still written, which clears bits 63:32, as
//! hardware does). RCL/RCR rotate through CF, so 8- and 16-bit forms take the count mod 9 / 17.
//! ROL/ROR/RCL/RCR change only CF and OF.
//!
//! Undefined flags (OF for counts other than 1, AF, CF for shift counts past the width) and
//! undefined results (16-bit SHLD/SHRD counts past 16) follow the reference CPU (Intel Cascade
//! Lake; the host tests compare them bit for bit there): OF is, for every count, the OF a count
//! of 1 would give on the original operand, except that a register ROL/ROR by an immediate other
//! than 1 leaves OF alone; AF is cleared; RCL/RCR by a multiple of W+1 change no flag; a 16-bit
//! SHLD/SHRD past 16 shifts through the window dst:src:dst.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::ExecResult;
use crate::flags::{LazyFlags, Width, W16, W32, W64, W8};
use iced_x86::Code as C;

/// One shift or rotate: `c` is the masked count, never 0.
pub trait ShiftOp {
    /// ROL/ROR: with an immediate count other than 1 on a register, the reference CPU leaves OF unchanged.
    const IMM_KEEPS_OF: bool = false;
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, c: u32) -> u64;
}

pub struct Shl;
pub struct Shr;
pub struct Sar;
pub struct Rol;
pub struct Ror;
pub struct Rcl;
pub struct Rcr;

#[inline(always)]
fn msb<W: Width>(v: u64) -> bool {
    v & W::SIGN != 0
}

/// OF of a left shift or rotate by 1 of `a` (the top two bits differ). The reference CPU reports this for every
/// count (OF is defined only for a count of 1).
#[inline(always)]
fn of_left<W: Width>(a: u64) -> bool {
    msb::<W>(a ^ (a << 1))
}

/// `v << c` and `v >> c` that give 0 (not a panic) for counts of 64 and more.
#[inline(always)]
fn shl64(v: u64, c: u32) -> u64 {
    v.checked_shl(c).unwrap_or(0)
}
#[inline(always)]
fn shr64(v: u64, c: u32) -> u64 {
    v.checked_shr(c).unwrap_or(0)
}

impl ShiftOp for Shl {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, c: u32) -> u64 {
        let r = shl64(a, c) & W::MASK;
        // The last bit shifted out is bit W-c of the source (0 once the count passes the width).
        let cf = c <= W::BITS && shr64(a, W::BITS - c) & 1 != 0;
        lf.set_szp_with_cf_of_af::<W>(r, cf, of_left::<W>(a), false);
        r
    }
}

impl ShiftOp for Shr {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, c: u32) -> u64 {
        let r = shr64(a, c);
        let cf = shr64(a, c - 1) & 1 != 0;
        lf.set_szp_with_cf_of_af::<W>(r, cf, msb::<W>(a), false);
        r
    }
}

impl ShiftOp for Sar {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, c: u32) -> u64 {
        let s = W::sext(a) as i64;
        let r = (s >> c.min(63)) as u64 & W::MASK;
        let cf = (s >> (c - 1).min(63)) & 1 != 0;
        lf.set_szp_with_cf_of_af::<W>(r, cf, false, false);
        r
    }
}

/// Rotates `a` left by `n` (< W) within `W` bits.
#[inline(always)]
fn rotl<W: Width>(a: u64, n: u32) -> u64 {
    if n == 0 {
        a
    } else {
        ((a << n) | (a >> (W::BITS - n))) & W::MASK
    }
}

impl ShiftOp for Rol {
    const IMM_KEEPS_OF: bool = true;
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, c: u32) -> u64 {
        let r = rotl::<W>(a, c % W::BITS);
        let cf = r & 1 != 0;
        lf.force_cf(cf);
        lf.force_of(of_left::<W>(a));
        r
    }
}

impl ShiftOp for Ror {
    const IMM_KEEPS_OF: bool = true;
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, c: u32) -> u64 {
        let n = c % W::BITS;
        let r = rotl::<W>(a, (W::BITS - n) % W::BITS);
        lf.force_cf(msb::<W>(r));
        lf.force_of(msb::<W>(a) ^ (a & 1 != 0));
        r
    }
}

/// Rotates the `W+1`-bit value CF:a left by `n` (<= W); returns (result, new CF).
#[inline(always)]
fn rcl_bits<W: Width>(a: u64, cf: bool, n: u32) -> (u64, bool) {
    let width = W::BITS + 1;
    let m = (1u128 << width) - 1;
    let v = (cf as u128) << W::BITS | a as u128;
    let r = if n == 0 { v } else { ((v << n) | (v >> (width - n))) & m };
    (r as u64 & W::MASK, (r >> W::BITS) & 1 != 0)
}

impl ShiftOp for Rcl {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, c: u32) -> u64 {
        let n = c % (W::BITS + 1);
        if n == 0 {
            return a; // Reference CPU: a rotate by a multiple of W+1 leaves every flag alone
        }
        let (r, cf) = rcl_bits::<W>(a, lf.cf(), n);
        lf.force_cf(cf);
        lf.force_of(of_left::<W>(a));
        r
    }
}

impl ShiftOp for Rcr {
    #[inline(always)]
    fn apply<W: Width>(lf: &mut LazyFlags, a: u64, c: u32) -> u64 {
        let n = c % (W::BITS + 1);
        if n == 0 {
            return a;
        }
        let cf_in = lf.cf();
        let (r, cf) = rcl_bits::<W>(a, cf_in, (W::BITS + 1 - n) % (W::BITS + 1));
        lf.force_cf(cf);
        lf.force_of(msb::<W>(a) ^ cf_in);
        r
    }
}

/// Where the count comes from.
pub const BY_1: u8 = 0;
pub const BY_CL: u8 = 1;
pub const BY_IMM: u8 = 2;

#[inline(always)]
fn count<W: Width, const SRC: u8>(cpu: &Cpu, e: &Instr) -> u32 {
    let c = match SRC {
        BY_1 => 1,
        BY_CL => cpu.state.gpr[1] as u32,
        _ => e.imm as u32,
    };
    c & if W::BITS == 64 { 63 } else { 31 }
}

/// `op r/m, 1|CL|imm8`
pub fn exec_shift<O: ShiftOp, W: Width, const SRC: u8, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let c = count::<W, SRC>(cpu, e);
    if MEM {
        let loc = cpu.translate_rmw::<W>(cpu.ea(e))?;
        if c != 0 {
            let a = cpu.read_loc::<W>(loc);
            let mut lf = cpu.state.lazy;
            let r = O::apply::<W>(&mut lf, a, c);
            cpu.write_loc::<W>(loc, r);
            cpu.state.lazy = lf;
        }
    } else {
        let a = cpu.get::<W>(e.dst);
        let r = if c == 0 { a } else { rotate_or_shift::<O, W, SRC>(&mut cpu.state.lazy, a, c) };
        cpu.set::<W>(e.dst, r);
    }
    Ok(())
}

/// Applies `O` to a register. The reference CPU leaves OF alone when a register ROL/ROR count is an immediate
/// other than 1 (with the count in CL, for memory operands and for RCL/RCR it reports the
/// count-1 OF like the shifts do); the host tests pin this down.
#[inline(always)]
fn rotate_or_shift<O: ShiftOp, W: Width, const SRC: u8>(lf: &mut LazyFlags, a: u64, c: u32) -> u64 {
    if O::IMM_KEEPS_OF && SRC == BY_IMM && c != 1 {
        let of = lf.of();
        let r = O::apply::<W>(lf, a, c);
        lf.force_of(of);
        r
    } else {
        O::apply::<W>(lf, a, c)
    }
}

/// SHLD (`LEFT`) or SHRD of `a` filled from `b` by `c` (1..=63): result and flags.
#[inline(always)]
fn double_shift<W: Width, const LEFT: bool>(lf: &mut LazyFlags, a: u64, b: u64, c: u32) -> u64 {
    let (r, cf) = if W::BITS == 16 {
        // Counts past 16 are undefined; modelled as a shift through the 48-bit window a:b:a
        // (dst, then src, then dst again), checked against the host.
        if LEFT {
            let v = (a << 32) | (b << 16) | a;
            let r = (shl64(v, c) >> 32) & 0xffff;
            (r, shr64(v, 48 - c) & 1 != 0)
        } else {
            let v = (a << 32) | (b << 16) | a;
            let r = shr64(v, c) & 0xffff;
            (r, shr64(v, c - 1) & 1 != 0)
        }
    } else if LEFT {
        let r = (shl64(a, c) | shr64(b, W::BITS - c)) & W::MASK;
        (r, shr64(a, W::BITS - c) & 1 != 0)
    } else {
        let r = (shr64(a, c) | shl64(b, W::BITS - c)) & W::MASK;
        (r, shr64(a, c - 1) & 1 != 0)
    };
    // OF as for a count of 1 (see the module doc): the new top bit against the old one.
    let top1 = if LEFT { a << 1 } else { b << (W::BITS - 1) };
    lf.set_szp_with_cf_of_af::<W>(r, cf, msb::<W>(top1) ^ msb::<W>(a), false);
    r
}

/// `shld/shrd r/m, r, imm8|CL`
pub fn exec_shxd<W: Width, const LEFT: bool, const SRC: u8, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let c = count::<W, SRC>(cpu, e);
    let b = cpu.get::<W>(e.src);
    if MEM {
        let loc = cpu.translate_rmw::<W>(cpu.ea(e))?;
        if c != 0 {
            let a = cpu.read_loc::<W>(loc);
            let mut lf = cpu.state.lazy;
            let r = double_shift::<W, LEFT>(&mut lf, a, b, c);
            cpu.write_loc::<W>(loc, r);
            cpu.state.lazy = lf;
        }
    } else {
        let a = cpu.get::<W>(e.dst);
        let r = if c == 0 { a } else { double_shift::<W, LEFT>(&mut cpu.state.lazy, a, b, c) };
        cpu.set::<W>(e.dst, r);
    }
    Ok(())
}

/// The 12 rows of one shift operation: widths 8..64 by 1, by CL and by imm8.
macro_rules! shift_rows {
    ($op:ty; $($code:ident = $w:ty, $src:expr;)*) => {
        [ $( Row::rm(C::$code, exec_shift::<$op, $w, { $src }, false>, exec_shift::<$op, $w, { $src }, true>), )* ]
    };
}
const SHL: [Row; 12] = shift_rows!(Shl;
    Shl_rm8_1 = W8, BY_1; Shl_rm16_1 = W16, BY_1; Shl_rm32_1 = W32, BY_1; Shl_rm64_1 = W64, BY_1;
    Shl_rm8_CL = W8, BY_CL; Shl_rm16_CL = W16, BY_CL; Shl_rm32_CL = W32, BY_CL; Shl_rm64_CL = W64, BY_CL;
    Shl_rm8_imm8 = W8, BY_IMM; Shl_rm16_imm8 = W16, BY_IMM; Shl_rm32_imm8 = W32, BY_IMM; Shl_rm64_imm8 = W64, BY_IMM;
);
const SAL: [Row; 12] = shift_rows!(Shl;
    Sal_rm8_1 = W8, BY_1; Sal_rm16_1 = W16, BY_1; Sal_rm32_1 = W32, BY_1; Sal_rm64_1 = W64, BY_1;
    Sal_rm8_CL = W8, BY_CL; Sal_rm16_CL = W16, BY_CL; Sal_rm32_CL = W32, BY_CL; Sal_rm64_CL = W64, BY_CL;
    Sal_rm8_imm8 = W8, BY_IMM; Sal_rm16_imm8 = W16, BY_IMM; Sal_rm32_imm8 = W32, BY_IMM; Sal_rm64_imm8 = W64, BY_IMM;
);
const SHR: [Row; 12] = shift_rows!(Shr;
    Shr_rm8_1 = W8, BY_1; Shr_rm16_1 = W16, BY_1; Shr_rm32_1 = W32, BY_1; Shr_rm64_1 = W64, BY_1;
    Shr_rm8_CL = W8, BY_CL; Shr_rm16_CL = W16, BY_CL; Shr_rm32_CL = W32, BY_CL; Shr_rm64_CL = W64, BY_CL;
    Shr_rm8_imm8 = W8, BY_IMM; Shr_rm16_imm8 = W16, BY_IMM; Shr_rm32_imm8 = W32, BY_IMM; Shr_rm64_imm8 = W64, BY_IMM;
);
const SAR: [Row; 12] = shift_rows!(Sar;
    Sar_rm8_1 = W8, BY_1; Sar_rm16_1 = W16, BY_1; Sar_rm32_1 = W32, BY_1; Sar_rm64_1 = W64, BY_1;
    Sar_rm8_CL = W8, BY_CL; Sar_rm16_CL = W16, BY_CL; Sar_rm32_CL = W32, BY_CL; Sar_rm64_CL = W64, BY_CL;
    Sar_rm8_imm8 = W8, BY_IMM; Sar_rm16_imm8 = W16, BY_IMM; Sar_rm32_imm8 = W32, BY_IMM; Sar_rm64_imm8 = W64, BY_IMM;
);
const ROL: [Row; 12] = shift_rows!(Rol;
    Rol_rm8_1 = W8, BY_1; Rol_rm16_1 = W16, BY_1; Rol_rm32_1 = W32, BY_1; Rol_rm64_1 = W64, BY_1;
    Rol_rm8_CL = W8, BY_CL; Rol_rm16_CL = W16, BY_CL; Rol_rm32_CL = W32, BY_CL; Rol_rm64_CL = W64, BY_CL;
    Rol_rm8_imm8 = W8, BY_IMM; Rol_rm16_imm8 = W16, BY_IMM; Rol_rm32_imm8 = W32, BY_IMM; Rol_rm64_imm8 = W64, BY_IMM;
);
const ROR: [Row; 12] = shift_rows!(Ror;
    Ror_rm8_1 = W8, BY_1; Ror_rm16_1 = W16, BY_1; Ror_rm32_1 = W32, BY_1; Ror_rm64_1 = W64, BY_1;
    Ror_rm8_CL = W8, BY_CL; Ror_rm16_CL = W16, BY_CL; Ror_rm32_CL = W32, BY_CL; Ror_rm64_CL = W64, BY_CL;
    Ror_rm8_imm8 = W8, BY_IMM; Ror_rm16_imm8 = W16, BY_IMM; Ror_rm32_imm8 = W32, BY_IMM; Ror_rm64_imm8 = W64, BY_IMM;
);
const RCL: [Row; 12] = shift_rows!(Rcl;
    Rcl_rm8_1 = W8, BY_1; Rcl_rm16_1 = W16, BY_1; Rcl_rm32_1 = W32, BY_1; Rcl_rm64_1 = W64, BY_1;
    Rcl_rm8_CL = W8, BY_CL; Rcl_rm16_CL = W16, BY_CL; Rcl_rm32_CL = W32, BY_CL; Rcl_rm64_CL = W64, BY_CL;
    Rcl_rm8_imm8 = W8, BY_IMM; Rcl_rm16_imm8 = W16, BY_IMM; Rcl_rm32_imm8 = W32, BY_IMM; Rcl_rm64_imm8 = W64, BY_IMM;
);
const RCR: [Row; 12] = shift_rows!(Rcr;
    Rcr_rm8_1 = W8, BY_1; Rcr_rm16_1 = W16, BY_1; Rcr_rm32_1 = W32, BY_1; Rcr_rm64_1 = W64, BY_1;
    Rcr_rm8_CL = W8, BY_CL; Rcr_rm16_CL = W16, BY_CL; Rcr_rm32_CL = W32, BY_CL; Rcr_rm64_CL = W64, BY_CL;
    Rcr_rm8_imm8 = W8, BY_IMM; Rcr_rm16_imm8 = W16, BY_IMM; Rcr_rm32_imm8 = W32, BY_IMM; Rcr_rm64_imm8 = W64, BY_IMM;
);

/// SHLD/SHRD rows: `$left` selects SHLD.
macro_rules! shxd_rows {
    ($left:literal; $($code:ident = $w:ty, $src:expr;)*) => {
        [ $( Row::rm(C::$code, exec_shxd::<$w, $left, { $src }, false>, exec_shxd::<$w, $left, { $src }, true>), )* ]
    };
}
const SHLD: [Row; 6] = shxd_rows!(true;
    Shld_rm16_r16_imm8 = W16, BY_IMM; Shld_rm32_r32_imm8 = W32, BY_IMM; Shld_rm64_r64_imm8 = W64, BY_IMM;
    Shld_rm16_r16_CL = W16, BY_CL; Shld_rm32_r32_CL = W32, BY_CL; Shld_rm64_r64_CL = W64, BY_CL;
);
const SHRD: [Row; 6] = shxd_rows!(false;
    Shrd_rm16_r16_imm8 = W16, BY_IMM; Shrd_rm32_r32_imm8 = W32, BY_IMM; Shrd_rm64_r64_imm8 = W64, BY_IMM;
    Shrd_rm16_r16_CL = W16, BY_CL; Shrd_rm32_r32_CL = W32, BY_CL; Shrd_rm64_r64_CL = W64, BY_CL;
);

pub(crate) const ROWS: &[&[Row]] = &[&SHL, &SAL, &SHR, &SAR, &ROL, &ROR, &RCL, &RCR, &SHLD, &SHRD];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests;
