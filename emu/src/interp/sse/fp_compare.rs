//! Floating-point compares: CMPPS/CMPPD/CMPSS/CMPSD with the eight SSE predicates (imm8[2:0];
//! bits 7:3 are ignored by the legacy encodings), which write all-ones or zero masks, and
//! COMISS/COMISD/UCOMISS/UCOMISD, which set ZF, PF, CF and clear OF, SF, AF (SDM Vol. 2, those
//! entries, Table 3-1 for the predicates). The signaling predicates (LT, LE, NLT, NLE) and
//! COMIS* raise IE on any NaN; the others and UCOMIS* only on an SNaN. Denormal operands raise
//! DE (or read as zero under DAZ).

use super::float::{self, Cmp, FpEnv, F32, F64};
use super::lanes::{join32, join64, split32, split64};
use super::{check, commit_fp, xmm, xrow, Src, XOp, M128, M32, M64};
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::ExecResult;
use crate::flags::LazyFlags;
use crate::state::rflags;
use iced_x86::Code as C;

/// Evaluates predicate `p` (0 EQ, 1 LT, 2 LE, 3 UNORD, 4 NEQ, 5 NLT, 6 NLE, 7 ORD).
#[inline(always)]
fn holds(c: Cmp, p: u8) -> bool {
    match p & 7 {
        0 => c == Cmp::Eq,
        1 => c == Cmp::Lt,
        2 => matches!(c, Cmp::Lt | Cmp::Eq),
        3 => c == Cmp::Unordered,
        4 => c != Cmp::Eq,
        5 => c != Cmp::Lt,
        6 => !matches!(c, Cmp::Lt | Cmp::Eq),
        _ => c != Cmp::Unordered,
    }
}

#[inline(always)]
fn signals(p: u8) -> bool {
    matches!(p & 7, 1 | 2 | 5 | 6)
}

#[inline(always)]
fn cmp32(a: u32, b: u32, p: u8, env: &mut FpEnv) -> u32 {
    if holds(float::compare::<F32>(a as u64, b as u64, signals(p), env), p) {
        u32::MAX
    } else {
        0
    }
}
#[inline(always)]
fn cmp64(a: u64, b: u64, p: u8, env: &mut FpEnv) -> u64 {
    if holds(float::compare::<F64>(a, b, signals(p), env), p) {
        u64::MAX
    } else {
        0
    }
}

pub struct Cmpps;
pub struct Cmppd;
pub struct Cmpss;
pub struct Cmpsd;
impl XOp for Cmpps {
    const FP: bool = true;
    fn apply(a: u128, b: u128, p: u8, env: &mut FpEnv) -> u128 {
        let (a, b) = (split32(a), split32(b));
        join32([
            cmp32(a[0], b[0], p, env),
            cmp32(a[1], b[1], p, env),
            cmp32(a[2], b[2], p, env),
            cmp32(a[3], b[3], p, env),
        ])
    }
}
impl XOp for Cmppd {
    const FP: bool = true;
    fn apply(a: u128, b: u128, p: u8, env: &mut FpEnv) -> u128 {
        let (a, b) = (split64(a), split64(b));
        join64([cmp64(a[0], b[0], p, env), cmp64(a[1], b[1], p, env)])
    }
}
impl XOp for Cmpss {
    const FP: bool = true;
    fn apply(a: u128, b: u128, p: u8, env: &mut FpEnv) -> u128 {
        (a & !(u32::MAX as u128)) | cmp32(a as u32, b as u32, p, env) as u128
    }
}
impl XOp for Cmpsd {
    const FP: bool = true;
    fn apply(a: u128, b: u128, p: u8, env: &mut FpEnv) -> u128 {
        (a & !(u64::MAX as u128)) | cmp64(a as u64, b as u64, p, env) as u128
    }
}

/// Which COMIS* variant: format and whether a QNaN signals.
pub trait ComiKind {
    const SIGNAL_QNAN: bool;
    fn compare(a: u128, b: u128, env: &mut FpEnv) -> Cmp;
}
pub struct Comiss;
pub struct Ucomiss;
pub struct Comisd;
pub struct Ucomisd;
impl ComiKind for Comiss {
    const SIGNAL_QNAN: bool = true;
    fn compare(a: u128, b: u128, env: &mut FpEnv) -> Cmp {
        float::compare::<F32>(a as u32 as u64, b as u32 as u64, Self::SIGNAL_QNAN, env)
    }
}
impl ComiKind for Ucomiss {
    const SIGNAL_QNAN: bool = false;
    fn compare(a: u128, b: u128, env: &mut FpEnv) -> Cmp {
        float::compare::<F32>(a as u32 as u64, b as u32 as u64, Self::SIGNAL_QNAN, env)
    }
}
impl ComiKind for Comisd {
    const SIGNAL_QNAN: bool = true;
    fn compare(a: u128, b: u128, env: &mut FpEnv) -> Cmp {
        float::compare::<F64>(a as u64, b as u64, Self::SIGNAL_QNAN, env)
    }
}
impl ComiKind for Ucomisd {
    const SIGNAL_QNAN: bool = false;
    fn compare(a: u128, b: u128, env: &mut FpEnv) -> Cmp {
        float::compare::<F64>(a as u64, b as u64, Self::SIGNAL_QNAN, env)
    }
}

#[inline(always)]
fn comi<K: ComiKind>(cpu: &mut Cpu, a: u128, b: u128) -> ExecResult {
    let mut env = FpEnv::from_mxcsr(cpu.state.mxcsr);
    let c = K::compare(a, b, &mut env);
    commit_fp(cpu, env.flags)?;
    let f = match c {
        Cmp::Unordered => rflags::ZF | rflags::PF | rflags::CF,
        Cmp::Gt => 0,
        Cmp::Lt => rflags::CF,
        Cmp::Eq => rflags::ZF,
    };
    cpu.state.lazy = LazyFlags::from_rflags(f);
    Ok(())
}

/// `(u)comis{s,d} xmm, xmm`
pub fn exec_comi_x_x<K: ComiKind>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let (a, b) = (xmm(cpu, e.dst), xmm(cpu, e.src));
    comi::<K>(cpu, a, b)
}

/// `(u)comis{s,d} xmm, m32/m64`
pub fn exec_comi_x_m<K: ComiKind, S: Src>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let b = S::read(cpu, cpu.ea(e))?;
    let a = xmm(cpu, e.dst);
    comi::<K>(cpu, a, b)
}

pub(crate) const ROWS: &[Row] = &[
    xrow!(Cmpps_xmm_xmmm128_imm8, Cmpps, M128),
    xrow!(Cmppd_xmm_xmmm128_imm8, Cmppd, M128),
    xrow!(Cmpss_xmm_xmmm32_imm8, Cmpss, M32),
    xrow!(Cmpsd_xmm_xmmm64_imm8, Cmpsd, M64),
    Row::rm(C::Comiss_xmm_xmmm32, exec_comi_x_x::<Comiss>, exec_comi_x_m::<Comiss, M32>),
    Row::rm(C::Ucomiss_xmm_xmmm32, exec_comi_x_x::<Ucomiss>, exec_comi_x_m::<Ucomiss, M32>),
    Row::rm(C::Comisd_xmm_xmmm64, exec_comi_x_x::<Comisd>, exec_comi_x_m::<Comisd, M64>),
    Row::rm(C::Ucomisd_xmm_xmmm64, exec_comi_x_x::<Ucomisd>, exec_comi_x_m::<Ucomisd, M64>),
];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::testutil::{host_cases, pd, ps};

    // Masks and MXCSR for all eight predicates, and ZF/PF/CF (OF/SF/AF cleared) for COMIS*,
    // against the host.
    host_cases! { 1500;
        cmpps_eq: "cmpps xmm0, xmm1, 0", ps();
        cmpps_lt: "cmpps xmm0, xmm1, 1", ps();
        cmpps_le: "cmpps xmm0, xmm1, 2", ps();
        cmpps_unord: "cmpps xmm0, xmm1, 3", ps();
        cmpps_neq: "cmpps xmm0, xmm1, 4", ps();
        cmpps_nlt: "cmpps xmm0, xmm1, 5", ps();
        cmpps_nle: "cmpps xmm0, xmm1, 6", ps();
        cmpps_ord: "cmpps xmm0, xmm1, 7", ps();
        cmppd_eq: "cmppd xmm0, xmm1, 0", pd();
        cmppd_lt: "cmppd xmm0, xmm1, 1", pd();
        cmppd_le: "cmppd xmm0, xmm1, 2", pd();
        cmppd_unord: "cmppd xmm0, xmm1, 3", pd();
        cmppd_neq: "cmppd xmm0, xmm1, 4", pd();
        cmppd_nlt: "cmppd xmm0, xmm1, 5", pd();
        cmppd_nle: "cmppd xmm0, xmm1, 6", pd();
        cmppd_ord: "cmppd xmm0, xmm1, 7", pd();
        cmpss_lt: "cmpss xmm0, xmm1, 1", ps();
        cmpss_neq: "cmpss xmm0, xmm1, 4", ps();
        cmpsd_le: "cmpsd xmm0, xmm1, 2", pd();
        cmpsd_ord: "cmpsd xmm0, xmm1, 7", pd();
        comiss: "comiss xmm0, xmm1", ps();
        ucomiss: "ucomiss xmm0, xmm1", ps();
        comisd: "comisd xmm0, xmm1", pd();
        ucomisd: "ucomisd xmm0, xmm1", pd();
        ucomisd_mem: "ucomisd xmm0, qword ptr [rdx]", pd();
        comiss_mem: "comiss xmm0, dword ptr [rdx]", ps();
        cmpps_imm13: "cmpps xmm0, xmm1, 13", ps();
        cmpsd_imm0x88: "cmpsd xmm0, xmm1, 0x88", pd();
    }
}
