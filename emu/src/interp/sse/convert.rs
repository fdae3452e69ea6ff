//! Conversions (SDM Vol. 2, the CVT* entries): between binary32 and binary64 (CVTPS2PD,
//! CVTPD2PS, CVTSS2SD, CVTSD2SS), from 32/64-bit integers (CVTDQ2PS, CVTDQ2PD, CVTSI2SS,
//! CVTSI2SD) and to them, rounding by MXCSR.RC or truncating (CVT(T)PS2DQ, CVT(T)PD2DQ,
//! CVT(T)SS2SI, CVT(T)SD2SI). A NaN, infinite or out-of-range source gives the integer
//! indefinite (0x80000000 / 0x8000000000000000) and IE. The arithmetic is in `float.rs`.
//! Left out: the MMX forms (CVTPI2PS, CVTPS2PI, CVTTPS2PI, CVTPI2PD, CVTPD2PI, CVTTPD2PI).

use super::float::{self, Fmt, FpEnv, F32, F64};
use super::lanes::{join32, join64, split32, split64};
use super::{check, commit_fp, set_xmm, xmm, xrow, Src, XOp, M128, M32, M64};
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::ExecResult;
use crate::flags::{Width, W32, W64};
use iced_x86::Code as C;

macro_rules! cvt_op {
    ($name:ident, |$a:ident, $b:ident, $env:ident| $body:expr) => {
        pub struct $name;
        impl XOp for $name {
            const FP: bool = true;
            #[inline(always)]
            fn apply($a: u128, $b: u128, _imm: u8, $env: &mut FpEnv) -> u128 {
                $body
            }
        }
    };
}

cvt_op!(Cvtps2pd, |_a, b, env| {
    let l = split32(b);
    join64([float::convert::<F32, F64>(l[0] as u64, env), float::convert::<F32, F64>(l[1] as u64, env)])
});
cvt_op!(Cvtpd2ps, |_a, b, env| {
    let l = split64(b);
    let r0 = float::convert::<F64, F32>(l[0], env) as u32;
    let r1 = float::convert::<F64, F32>(l[1], env) as u32;
    join32([r0, r1, 0, 0])
});
cvt_op!(Cvtss2sd, |a, b, env| (a & !(u64::MAX as u128)) | float::convert::<F32, F64>(b as u32 as u64, env) as u128);
cvt_op!(Cvtsd2ss, |a, b, env| (a & !(u32::MAX as u128)) | float::convert::<F64, F32>(b as u64, env) as u32 as u128);
cvt_op!(Cvtdq2ps, |_a, b, env| {
    let l = split32(b);
    let f = |x: u32, env: &mut FpEnv| float::from_int::<F32>(x as i32 as i64, env) as u32;
    join32([f(l[0], env), f(l[1], env), f(l[2], env), f(l[3], env)])
});
cvt_op!(Cvtdq2pd, |_a, b, env| {
    let l = split32(b);
    join64([float::from_int::<F64>(l[0] as i32 as i64, env), float::from_int::<F64>(l[1] as i32 as i64, env)])
});

/// CVTPS2DQ (`TRUNC = false`) and CVTTPS2DQ.
pub struct Cvtps2dq<const TRUNC: bool>;
impl<const TRUNC: bool> XOp for Cvtps2dq<TRUNC> {
    const FP: bool = true;
    fn apply(_a: u128, b: u128, _imm: u8, env: &mut FpEnv) -> u128 {
        let l = split32(b);
        let f = |x: u32, env: &mut FpEnv| float::to_int::<F32>(x as u64, 32, TRUNC, env) as u32;
        join32([f(l[0], env), f(l[1], env), f(l[2], env), f(l[3], env)])
    }
}

/// CVTPD2DQ (`TRUNC = false`) and CVTTPD2DQ: two results in the low qword, the high one zeroed.
pub struct Cvtpd2dq<const TRUNC: bool>;
impl<const TRUNC: bool> XOp for Cvtpd2dq<TRUNC> {
    const FP: bool = true;
    fn apply(_a: u128, b: u128, _imm: u8, env: &mut FpEnv) -> u128 {
        let l = split64(b);
        let r0 = float::to_int::<F64>(l[0], 32, TRUNC, env) as u32;
        let r1 = float::to_int::<F64>(l[1], 32, TRUNC, env) as u32;
        join32([r0, r1, 0, 0])
    }
}

#[inline(always)]
fn int_to_float<F: Fmt>(cpu: &mut Cpu, e: &Instr, v: i64) -> ExecResult {
    let mut env = FpEnv::from_mxcsr(cpu.state.mxcsr);
    let r = float::from_int::<F>(v, &mut env) as u128;
    commit_fp(cpu, env.flags)?;
    let keep = if F::BITS == 32 { !(u32::MAX as u128) } else { !(u64::MAX as u128) };
    let x = (xmm(cpu, e.dst) & keep) | r;
    set_xmm(cpu, e.dst, x);
    Ok(())
}

/// `cvtsi2ss/cvtsi2sd xmm, r32/r64`
pub fn exec_cvtsi2f_x_r<F: Fmt, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = W::sext(cpu.get::<W>(e.src)) as i64;
    int_to_float::<F>(cpu, e, v)
}

/// `cvtsi2ss/cvtsi2sd xmm, m32/m64`
pub fn exec_cvtsi2f_x_m<F: Fmt, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = W::sext(cpu.read::<W>(cpu.ea(e))?) as i64;
    int_to_float::<F>(cpu, e, v)
}

#[inline(always)]
fn float_to_int<F: Fmt, W: Width, const TRUNC: bool>(cpu: &mut Cpu, e: &Instr, v: u128) -> ExecResult {
    let mut env = FpEnv::from_mxcsr(cpu.state.mxcsr);
    let bits = if F::BITS == 32 { v as u32 as u64 } else { v as u64 };
    let r = float::to_int::<F>(bits, W::BITS, TRUNC, &mut env);
    commit_fp(cpu, env.flags)?;
    cpu.set::<W>(e.dst, r);
    Ok(())
}

/// `cvt(t)ss2si/cvt(t)sd2si r32/r64, xmm`
pub fn exec_cvtf2si_r_x<F: Fmt, W: Width, const TRUNC: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = xmm(cpu, e.src);
    float_to_int::<F, W, TRUNC>(cpu, e, v)
}

/// `cvt(t)ss2si/cvt(t)sd2si r32/r64, m32/m64`
pub fn exec_cvtf2si_r_m<F: Fmt, S: Src, W: Width, const TRUNC: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = S::read(cpu, cpu.ea(e))?;
    float_to_int::<F, W, TRUNC>(cpu, e, v)
}

macro_rules! f2si_row {
    ($code:ident, $f:ty, $s:ty, $w:ty, $t:expr) => {
        Row::rm(C::$code, exec_cvtf2si_r_x::<$f, $w, $t>, exec_cvtf2si_r_m::<$f, $s, $w, $t>)
    };
}

pub(crate) const ROWS: &[Row] = &[
    xrow!(Cvtps2pd_xmm_xmmm64, Cvtps2pd, M64),
    xrow!(Cvtpd2ps_xmm_xmmm128, Cvtpd2ps, M128),
    xrow!(Cvtss2sd_xmm_xmmm32, Cvtss2sd, M32),
    xrow!(Cvtsd2ss_xmm_xmmm64, Cvtsd2ss, M64),
    xrow!(Cvtdq2ps_xmm_xmmm128, Cvtdq2ps, M128),
    xrow!(Cvtdq2pd_xmm_xmmm64, Cvtdq2pd, M64),
    xrow!(Cvtps2dq_xmm_xmmm128, Cvtps2dq<false>, M128),
    xrow!(Cvttps2dq_xmm_xmmm128, Cvtps2dq<true>, M128),
    xrow!(Cvtpd2dq_xmm_xmmm128, Cvtpd2dq<false>, M128),
    xrow!(Cvttpd2dq_xmm_xmmm128, Cvtpd2dq<true>, M128),
    Row::rm(C::Cvtsi2ss_xmm_rm32, exec_cvtsi2f_x_r::<F32, W32>, exec_cvtsi2f_x_m::<F32, W32>),
    Row::rm(C::Cvtsi2ss_xmm_rm64, exec_cvtsi2f_x_r::<F32, W64>, exec_cvtsi2f_x_m::<F32, W64>),
    Row::rm(C::Cvtsi2sd_xmm_rm32, exec_cvtsi2f_x_r::<F64, W32>, exec_cvtsi2f_x_m::<F64, W32>),
    Row::rm(C::Cvtsi2sd_xmm_rm64, exec_cvtsi2f_x_r::<F64, W64>, exec_cvtsi2f_x_m::<F64, W64>),
    f2si_row!(Cvtss2si_r32_xmmm32, F32, M32, W32, false),
    f2si_row!(Cvtss2si_r64_xmmm32, F32, M32, W64, false),
    f2si_row!(Cvttss2si_r32_xmmm32, F32, M32, W32, true),
    f2si_row!(Cvttss2si_r64_xmmm32, F32, M32, W64, true),
    f2si_row!(Cvtsd2si_r32_xmmm64, F64, M64, W32, false),
    f2si_row!(Cvtsd2si_r64_xmmm64, F64, M64, W64, false),
    f2si_row!(Cvttsd2si_r32_xmmm64, F64, M64, W32, true),
    f2si_row!(Cvttsd2si_r64_xmmm64, F64, M64, W64, true),
];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::testutil::{host_cases, pd, ps};
    use proptest::prelude::*;

    /// Integer lanes: random, near the i32/i64 limits, small, and round-to-float boundaries.
    fn ints() -> impl Strategy<Value = u128> + Clone {
        (any::<u128>(), 0u8..4).prop_map(|(r, k)| match k {
            0 => r,
            1 => r & 0x0000_00ff_8000_00ff_ffff_ffff_7fff_ffff,
            2 => r & 0x8000_0003_0000_0003_0100_0001_0000_0003,
            _ => r | 0x7fff_ffc0_ffff_ff80_0000_0000_0000_0000,
        })
    }

    host_cases! { 2000;
        cvtps2pd: "cvtps2pd xmm0, xmm1", ps();
        cvtpd2ps: "cvtpd2ps xmm0, xmm1", pd();
        cvtss2sd: "cvtss2sd xmm0, xmm1", ps();
        cvtsd2ss: "cvtsd2ss xmm0, xmm1", pd();
        cvtdq2ps: "cvtdq2ps xmm0, xmm1", ints();
        cvtdq2pd: "cvtdq2pd xmm0, xmm1", ints();
        cvtps2dq: "cvtps2dq xmm0, xmm1", ps();
        cvttps2dq: "cvttps2dq xmm0, xmm1", ps();
        cvtpd2dq: "cvtpd2dq xmm0, xmm1", pd();
        cvttpd2dq: "cvttpd2dq xmm0, xmm1", pd();
        cvtss2si32: "cvtss2si eax, xmm1", ps();
        cvtss2si64: "cvtss2si rax, xmm1", ps();
        cvttss2si32: "cvttss2si eax, xmm1", ps();
        cvttss2si64: "cvttss2si rax, xmm1", ps();
        cvtsd2si32: "cvtsd2si eax, xmm1", pd();
        cvtsd2si64: "cvtsd2si rax, xmm1", pd();
        cvttsd2si32: "cvttsd2si eax, xmm1", pd();
        cvttsd2si64: "cvttsd2si rax, xmm1", pd();
        cvtsd2si64_mem: "cvtsd2si rax, qword ptr [rdx]", pd();
        cvttss2si32_mem: "cvttss2si eax, dword ptr [rdx]", ps();
        cvtsi2ss_mem32: "cvtsi2ss xmm0, dword ptr [rdx]", ints();
        cvtsi2sd_mem64: "cvtsi2sd xmm0, qword ptr [rdx]", ints();
        cvtps2pd_mem: "cvtps2pd xmm0, qword ptr [rdx]", ps();
        cvtss2sd_mem: "cvtss2sd xmm0, dword ptr [rdx]", ps();
    }

    /// CVTSI2SS/SD take RAX: the integer operand comes from the second strategy's low bits.
    fn gpr_case(n: &super::super::testutil::Native, a: u128, b: u128, mx: u32) -> Result<(), TestCaseError> {
        let mut s = super::super::testutil::St::new(a, 0, mx);
        s.rax = b as u64;
        super::super::testutil::same(n, &s)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn cvtsi2ss_32(a in ps(), b in ints(), mx in super::super::testutil::mxcsr()) {
            gpr_case(&super::super::testutil::native!("cvtsi2ss xmm0, eax"), a, b, mx)?;
        }
        #[test]
        fn cvtsi2ss_64(a in ps(), b in ints(), mx in super::super::testutil::mxcsr()) {
            gpr_case(&super::super::testutil::native!("cvtsi2ss xmm0, rax"), a, b, mx)?;
        }
        #[test]
        fn cvtsi2sd_32(a in pd(), b in ints(), mx in super::super::testutil::mxcsr()) {
            gpr_case(&super::super::testutil::native!("cvtsi2sd xmm0, eax"), a, b, mx)?;
        }
        #[test]
        fn cvtsi2sd_64(a in pd(), b in ints(), mx in super::super::testutil::mxcsr()) {
            gpr_case(&super::super::testutil::native!("cvtsi2sd xmm0, rax"), a, b, mx)?;
        }
    }
}
