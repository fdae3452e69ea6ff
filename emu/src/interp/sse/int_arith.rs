//! SSE2 packed integer arithmetic on XMM registers: PADD/PSUB B/W/D/Q with their signed and
//! unsigned saturating forms, PMULLW/PMULHW/PMULHUW/PMULUDQ/PMADDWD, PAVGB/W, PMINUB/PMAXUB,
//! PMINSW/PMAXSW, PSADBW, PCMPEQ/PCMPGT B/W/D (SDM Vol. 2, those entries). None of them touch
//! MXCSR or RFLAGS. The MMX (64-bit `mm`) forms are left out.

use super::float::FpEnv;
use super::lanes::{map16, map32, map64, map8, split8};
use super::{xrow, XOp, M128};
use crate::decoded::Row;

/// Defines an integer lane operation: `int_op!(Name, map, |x, y| expr)`.
macro_rules! int_op {
    ($name:ident, $map:ident, |$x:ident, $y:ident| $body:expr) => {
        pub struct $name;
        impl XOp for $name {
            #[inline(always)]
            fn apply(a: u128, b: u128, _imm: u8, _env: &mut FpEnv) -> u128 {
                $map(a, b, |$x, $y| $body)
            }
        }
    };
}

int_op!(Paddb, map8, |x, y| x.wrapping_add(y));
int_op!(Paddw, map16, |x, y| x.wrapping_add(y));
int_op!(Paddd, map32, |x, y| x.wrapping_add(y));
int_op!(Paddq, map64, |x, y| x.wrapping_add(y));
int_op!(Psubb, map8, |x, y| x.wrapping_sub(y));
int_op!(Psubw, map16, |x, y| x.wrapping_sub(y));
int_op!(Psubd, map32, |x, y| x.wrapping_sub(y));
int_op!(Psubq, map64, |x, y| x.wrapping_sub(y));
int_op!(Paddsb, map8, |x, y| (x as i8).saturating_add(y as i8) as u8);
int_op!(Paddsw, map16, |x, y| (x as i16).saturating_add(y as i16) as u16);
int_op!(Paddusb, map8, |x, y| x.saturating_add(y));
int_op!(Paddusw, map16, |x, y| x.saturating_add(y));
int_op!(Psubsb, map8, |x, y| (x as i8).saturating_sub(y as i8) as u8);
int_op!(Psubsw, map16, |x, y| (x as i16).saturating_sub(y as i16) as u16);
int_op!(Psubusb, map8, |x, y| x.saturating_sub(y));
int_op!(Psubusw, map16, |x, y| x.saturating_sub(y));
int_op!(Pmullw, map16, |x, y| x.wrapping_mul(y));
int_op!(Pmulhw, map16, |x, y| ((x as i16 as i32 * y as i16 as i32) >> 16) as u16);
int_op!(Pmulhuw, map16, |x, y| ((x as u32 * y as u32) >> 16) as u16);
int_op!(Pmuludq, map64, |x, y| (x as u32 as u64) * (y as u32 as u64));
// Both products summed with wrap-around: 0x8000*0x8000 twice gives 0x80000000 (SDM PMADDWD).
int_op!(Pmaddwd, map32, |x, y| ((x as i16 as i32 * y as i16 as i32)
    .wrapping_add((x >> 16) as i16 as i32 * (y >> 16) as i16 as i32)) as u32);
int_op!(Pavgb, map8, |x, y| ((x as u16 + y as u16 + 1) >> 1) as u8);
int_op!(Pavgw, map16, |x, y| ((x as u32 + y as u32 + 1) >> 1) as u16);
int_op!(Pminub, map8, |x, y| x.min(y));
int_op!(Pmaxub, map8, |x, y| x.max(y));
int_op!(Pminsw, map16, |x, y| (x as i16).min(y as i16) as u16);
int_op!(Pmaxsw, map16, |x, y| (x as i16).max(y as i16) as u16);
int_op!(Pcmpeqb, map8, |x, y| if x == y { u8::MAX } else { 0 });
int_op!(Pcmpeqw, map16, |x, y| if x == y { u16::MAX } else { 0 });
int_op!(Pcmpeqd, map32, |x, y| if x == y { u32::MAX } else { 0 });
int_op!(Pcmpgtb, map8, |x, y| if x as i8 > y as i8 { u8::MAX } else { 0 });
int_op!(Pcmpgtw, map16, |x, y| if x as i16 > y as i16 { u16::MAX } else { 0 });
int_op!(Pcmpgtd, map32, |x, y| if x as i32 > y as i32 { u32::MAX } else { 0 });

/// PSADBW: per 64-bit half, the sum of the eight absolute byte differences in bits 15:0.
pub struct Psadbw;
impl XOp for Psadbw {
    #[inline(always)]
    fn apply(a: u128, b: u128, _imm: u8, _env: &mut FpEnv) -> u128 {
        let (a, b) = (split8(a), split8(b));
        let sum = |h: usize| (0..8).map(|i| a[h * 8 + i].abs_diff(b[h * 8 + i]) as u128).sum::<u128>();
        sum(0) | sum(1) << 64
    }
}

pub(crate) const ROWS: &[Row] = &[
    xrow!(Paddb_xmm_xmmm128, Paddb, M128),
    xrow!(Paddw_xmm_xmmm128, Paddw, M128),
    xrow!(Paddd_xmm_xmmm128, Paddd, M128),
    xrow!(Paddq_xmm_xmmm128, Paddq, M128),
    xrow!(Psubb_xmm_xmmm128, Psubb, M128),
    xrow!(Psubw_xmm_xmmm128, Psubw, M128),
    xrow!(Psubd_xmm_xmmm128, Psubd, M128),
    xrow!(Psubq_xmm_xmmm128, Psubq, M128),
    xrow!(Paddsb_xmm_xmmm128, Paddsb, M128),
    xrow!(Paddsw_xmm_xmmm128, Paddsw, M128),
    xrow!(Paddusb_xmm_xmmm128, Paddusb, M128),
    xrow!(Paddusw_xmm_xmmm128, Paddusw, M128),
    xrow!(Psubsb_xmm_xmmm128, Psubsb, M128),
    xrow!(Psubsw_xmm_xmmm128, Psubsw, M128),
    xrow!(Psubusb_xmm_xmmm128, Psubusb, M128),
    xrow!(Psubusw_xmm_xmmm128, Psubusw, M128),
    xrow!(Pmullw_xmm_xmmm128, Pmullw, M128),
    xrow!(Pmulhw_xmm_xmmm128, Pmulhw, M128),
    xrow!(Pmulhuw_xmm_xmmm128, Pmulhuw, M128),
    xrow!(Pmuludq_xmm_xmmm128, Pmuludq, M128),
    xrow!(Pmaddwd_xmm_xmmm128, Pmaddwd, M128),
    xrow!(Pavgb_xmm_xmmm128, Pavgb, M128),
    xrow!(Pavgw_xmm_xmmm128, Pavgw, M128),
    xrow!(Pminub_xmm_xmmm128, Pminub, M128),
    xrow!(Pmaxub_xmm_xmmm128, Pmaxub, M128),
    xrow!(Pminsw_xmm_xmmm128, Pminsw, M128),
    xrow!(Pmaxsw_xmm_xmmm128, Pmaxsw, M128),
    xrow!(Psadbw_xmm_xmmm128, Psadbw, M128),
    xrow!(Pcmpeqb_xmm_xmmm128, Pcmpeqb, M128),
    xrow!(Pcmpeqw_xmm_xmmm128, Pcmpeqw, M128),
    xrow!(Pcmpeqd_xmm_xmmm128, Pcmpeqd, M128),
    xrow!(Pcmpgtb_xmm_xmmm128, Pcmpgtb, M128),
    xrow!(Pcmpgtw_xmm_xmmm128, Pcmpgtw, M128),
    xrow!(Pcmpgtd_xmm_xmmm128, Pcmpgtd, M128),
];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::testutil::{host_cases, ints};

    host_cases! { 500;
        paddb: "paddb xmm0, xmm1", ints();
        paddw: "paddw xmm0, xmm1", ints();
        paddd: "paddd xmm0, xmm1", ints();
        paddq: "paddq xmm0, xmm1", ints();
        psubb: "psubb xmm0, xmm1", ints();
        psubw: "psubw xmm0, xmm1", ints();
        psubd: "psubd xmm0, xmm1", ints();
        psubq: "psubq xmm0, xmm1", ints();
        paddsb: "paddsb xmm0, xmm1", ints();
        paddsw: "paddsw xmm0, xmm1", ints();
        paddusb: "paddusb xmm0, xmm1", ints();
        paddusw: "paddusw xmm0, xmm1", ints();
        psubsb: "psubsb xmm0, xmm1", ints();
        psubsw: "psubsw xmm0, xmm1", ints();
        psubusb: "psubusb xmm0, xmm1", ints();
        psubusw: "psubusw xmm0, xmm1", ints();
        pmullw: "pmullw xmm0, xmm1", ints();
        pmulhw: "pmulhw xmm0, xmm1", ints();
        pmulhuw: "pmulhuw xmm0, xmm1", ints();
        pmuludq: "pmuludq xmm0, xmm1", ints();
        pmaddwd: "pmaddwd xmm0, xmm1", ints();
        pavgb: "pavgb xmm0, xmm1", ints();
        pavgw: "pavgw xmm0, xmm1", ints();
        pminub: "pminub xmm0, xmm1", ints();
        pmaxub: "pmaxub xmm0, xmm1", ints();
        pminsw: "pminsw xmm0, xmm1", ints();
        pmaxsw: "pmaxsw xmm0, xmm1", ints();
        psadbw: "psadbw xmm0, xmm1", ints();
        pcmpeqb: "pcmpeqb xmm0, xmm1", ints();
        pcmpeqw: "pcmpeqw xmm0, xmm1", ints();
        pcmpeqd: "pcmpeqd xmm0, xmm1", ints();
        pcmpgtb: "pcmpgtb xmm0, xmm1", ints();
        pcmpgtw: "pcmpgtw xmm0, xmm1", ints();
        pcmpgtd: "pcmpgtd xmm0, xmm1", ints();
        paddw_mem: "paddw xmm0, [rdx]", ints();
    }
}
