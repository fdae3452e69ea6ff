//! Packs, unpacks and shuffles: PACKSSWB/PACKSSDW/PACKUSWB, PUNPCKL/H BW/WD/DQ/QDQ,
//! UNPCKL/H PS/PD, SHUFPS/SHUFPD, PSHUFD/PSHUFHW/PSHUFLW, PINSRW/PEXTRW (SDM Vol. 2).
//! Pure data movement: no MXCSR flags, NaNs are moved as bits.

use super::float::FpEnv;
use super::lanes::{join16, join32, join64, join8, split16, split32, split64, split8};
use super::{check, set_xmm, xmm, xrow, XOp, M128};
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::ExecResult;
use crate::flags::{W16, W32, W64};
use iced_x86::Code as C;

macro_rules! shuffle_op {
    ($name:ident, |$a:ident, $b:ident, $imm:ident| $body:expr) => {
        pub struct $name;
        impl XOp for $name {
            #[inline(always)]
            fn apply($a: u128, $b: u128, $imm: u8, _env: &mut FpEnv) -> u128 {
                $body
            }
        }
    };
}

shuffle_op!(Packsswb, |a, b, _i| {
    let (a, b) = (split16(a), split16(b));
    let mut r = [0u8; 16];
    for i in 0..8 {
        r[i] = (a[i] as i16).clamp(i8::MIN as i16, i8::MAX as i16) as u8;
        r[i + 8] = (b[i] as i16).clamp(i8::MIN as i16, i8::MAX as i16) as u8;
    }
    join8(r)
});
shuffle_op!(Packuswb, |a, b, _i| {
    let (a, b) = (split16(a), split16(b));
    let mut r = [0u8; 16];
    for i in 0..8 {
        r[i] = (a[i] as i16).clamp(0, 255) as u8;
        r[i + 8] = (b[i] as i16).clamp(0, 255) as u8;
    }
    join8(r)
});
shuffle_op!(Packssdw, |a, b, _i| {
    let (a, b) = (split32(a), split32(b));
    let mut r = [0u16; 8];
    for i in 0..4 {
        r[i] = (a[i] as i32).clamp(i16::MIN as i32, i16::MAX as i32) as u16;
        r[i + 4] = (b[i] as i32).clamp(i16::MIN as i32, i16::MAX as i32) as u16;
    }
    join16(r)
});

/// Interleaves the low (`$off = 0`) or high (`$off = half`) lanes of a and b.
macro_rules! unpack_op {
    ($name:ident, $split:ident, $join:ident, $t:ty, $n:expr, $off:expr) => {
        shuffle_op!($name, |a, b, _i| {
            let (a, b) = ($split(a), $split(b));
            let mut r = [0 as $t; $n];
            for i in 0..$n / 2 {
                r[2 * i] = a[$off + i];
                r[2 * i + 1] = b[$off + i];
            }
            $join(r)
        });
    };
}
unpack_op!(Punpcklbw, split8, join8, u8, 16, 0);
unpack_op!(Punpckhbw, split8, join8, u8, 16, 8);
unpack_op!(Punpcklwd, split16, join16, u16, 8, 0);
unpack_op!(Punpckhwd, split16, join16, u16, 8, 4);
unpack_op!(Punpckldq, split32, join32, u32, 4, 0);
unpack_op!(Punpckhdq, split32, join32, u32, 4, 2);
unpack_op!(Punpcklqdq, split64, join64, u64, 2, 0);
unpack_op!(Punpckhqdq, split64, join64, u64, 2, 1);

shuffle_op!(Shufps, |a, b, imm| {
    let (a, b, s) = (split32(a), split32(b), imm as usize);
    join32([a[s & 3], a[(s >> 2) & 3], b[(s >> 4) & 3], b[(s >> 6) & 3]])
});
shuffle_op!(Shufpd, |a, b, imm| {
    let (a, b, s) = (split64(a), split64(b), imm as usize);
    join64([a[s & 1], b[(s >> 1) & 1]])
});
shuffle_op!(Pshufd, |_a, b, imm| {
    let (b, s) = (split32(b), imm as usize);
    join32([b[s & 3], b[(s >> 2) & 3], b[(s >> 4) & 3], b[(s >> 6) & 3]])
});
shuffle_op!(Pshufhw, |_a, b, imm| {
    let (w, s) = (split16(b), imm as usize);
    join16([
        w[0],
        w[1],
        w[2],
        w[3],
        w[4 + (s & 3)],
        w[4 + ((s >> 2) & 3)],
        w[4 + ((s >> 4) & 3)],
        w[4 + ((s >> 6) & 3)],
    ])
});
shuffle_op!(Pshuflw, |_a, b, imm| {
    let (w, s) = (split16(b), imm as usize);
    join16([w[s & 3], w[(s >> 2) & 3], w[(s >> 4) & 3], w[(s >> 6) & 3], w[4], w[5], w[6], w[7]])
});

#[inline(always)]
fn insert_word(cpu: &mut Cpu, e: &Instr, v: u64) {
    let sh = 16 * (e.imm & 7) as u32;
    let x = xmm(cpu, e.dst);
    set_xmm(cpu, e.dst, (x & !(0xffffu128 << sh)) | ((v & 0xffff) as u128) << sh);
}

/// `pinsrw xmm, r32, imm8`: the GPR's low word replaces word imm[2:0].
pub fn exec_pinsrw_xmm_r32(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = cpu.get::<W32>(e.src);
    insert_word(cpu, e, v);
    Ok(())
}

/// `pinsrw xmm, m16, imm8`
pub fn exec_pinsrw_xmm_m16(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = cpu.read::<W16>(cpu.ea(e))?;
    insert_word(cpu, e, v);
    Ok(())
}

/// `pextrw r32/r64, xmm, imm8`: word imm[2:0], zero-extended into the whole GPR.
pub fn exec_pextrw_r_xmm(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = (xmm(cpu, e.src) >> (16 * (e.imm & 7) as u32)) as u64 & 0xffff;
    cpu.set::<W64>(e.dst, v);
    Ok(())
}

pub(crate) const ROWS: &[Row] = &[
    xrow!(Packsswb_xmm_xmmm128, Packsswb, M128),
    xrow!(Packssdw_xmm_xmmm128, Packssdw, M128),
    xrow!(Packuswb_xmm_xmmm128, Packuswb, M128),
    xrow!(Punpcklbw_xmm_xmmm128, Punpcklbw, M128),
    xrow!(Punpcklwd_xmm_xmmm128, Punpcklwd, M128),
    xrow!(Punpckldq_xmm_xmmm128, Punpckldq, M128),
    xrow!(Punpcklqdq_xmm_xmmm128, Punpcklqdq, M128),
    xrow!(Punpckhbw_xmm_xmmm128, Punpckhbw, M128),
    xrow!(Punpckhwd_xmm_xmmm128, Punpckhwd, M128),
    xrow!(Punpckhdq_xmm_xmmm128, Punpckhdq, M128),
    xrow!(Punpckhqdq_xmm_xmmm128, Punpckhqdq, M128),
    xrow!(Unpcklps_xmm_xmmm128, Punpckldq, M128),
    xrow!(Unpckhps_xmm_xmmm128, Punpckhdq, M128),
    xrow!(Unpcklpd_xmm_xmmm128, Punpcklqdq, M128),
    xrow!(Unpckhpd_xmm_xmmm128, Punpckhqdq, M128),
    xrow!(Shufps_xmm_xmmm128_imm8, Shufps, M128),
    xrow!(Shufpd_xmm_xmmm128_imm8, Shufpd, M128),
    xrow!(Pshufd_xmm_xmmm128_imm8, Pshufd, M128),
    xrow!(Pshufhw_xmm_xmmm128_imm8, Pshufhw, M128),
    xrow!(Pshuflw_xmm_xmmm128_imm8, Pshuflw, M128),
    Row::rm(C::Pinsrw_xmm_r32m16_imm8, exec_pinsrw_xmm_r32, exec_pinsrw_xmm_m16),
    Row::rm(C::Pinsrw_xmm_r64m16_imm8, exec_pinsrw_xmm_r32, exec_pinsrw_xmm_m16),
    Row::reg(C::Pextrw_r32_xmm_imm8, exec_pextrw_r_xmm),
    Row::reg(C::Pextrw_r64_xmm_imm8, exec_pextrw_r_xmm),
];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::testutil::{host_cases, ints};

    host_cases! { 300;
        packsswb: "packsswb xmm0, xmm1", ints();
        packssdw: "packssdw xmm0, xmm1", ints();
        packuswb: "packuswb xmm0, xmm1", ints();
        punpcklbw: "punpcklbw xmm0, xmm1", ints();
        punpcklwd: "punpcklwd xmm0, xmm1", ints();
        punpckldq: "punpckldq xmm0, xmm1", ints();
        punpcklqdq: "punpcklqdq xmm0, xmm1", ints();
        punpckhbw: "punpckhbw xmm0, xmm1", ints();
        punpckhwd: "punpckhwd xmm0, xmm1", ints();
        punpckhdq: "punpckhdq xmm0, xmm1", ints();
        punpckhqdq: "punpckhqdq xmm0, xmm1", ints();
        unpcklps: "unpcklps xmm0, xmm1", ints();
        unpckhps: "unpckhps xmm0, xmm1", ints();
        unpcklpd: "unpcklpd xmm0, xmm1", ints();
        unpckhpd: "unpckhpd xmm0, xmm1", ints();
        shufps_1b: "shufps xmm0, xmm1, 0x1b", ints();
        shufps_e4: "shufps xmm0, xmm1, 0xe4", ints();
        shufpd_1: "shufpd xmm0, xmm1, 1", ints();
        shufpd_2: "shufpd xmm0, xmm1, 2", ints();
        pshufd_93: "pshufd xmm0, xmm1, 0x93", ints();
        pshufhw_c6: "pshufhw xmm0, xmm1, 0xc6", ints();
        pshuflw_27: "pshuflw xmm0, xmm1, 0x27", ints();
        pinsrw_5: "pinsrw xmm0, eax, 5", ints();
        pinsrw_mem: "pinsrw xmm0, word ptr [rdx], 2", ints();
        pextrw_3: "pextrw eax, xmm1, 3", ints();
        pextrw_15: "pextrw rax, xmm1, 15", ints();
        pshufd_mem: "pshufd xmm0, [rdx], 0x4e", ints();
    }
}
