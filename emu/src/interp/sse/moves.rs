//! Data movement between XMM registers, memory and GPRs: MOVAPS/MOVAPD/MOVDQA (aligned),
//! MOVUPS/MOVUPD/MOVDQU, MOVSS/MOVSD, MOVLPS/MOVHPS/MOVLPD/MOVHPD, MOVHLPS/MOVLHPS,
//! MOVD/MOVQ (XMM and GPR forms), MOVMSKPS/MOVMSKPD/PMOVMSKB, the non-temporal stores
//! MOVNTPS/MOVNTPD/MOVNTDQ/MOVNTI (plain stores here: tier 0 has no caches to bypass) and
//! MASKMOVDQU (SDM Vol. 2, those entries). No MXCSR flags: values move as bits.
//! Left out: MOVQ2DQ/MOVDQ2Q and MASKMOVQ (MMX).

use super::lanes::{split32, split64, split8};
use super::{check, set_xmm, write128, xmm, Src, M128, M128U, M32, M64};
use crate::cpu::Cpu;
use crate::decode::table::Row;
use crate::exception::ExecResult;
use crate::flags::{Width, W32, W64, W8};
use crate::interp::Instr;
use crate::mmu::PhysLoc;
use iced_x86::Code as C;

const LOW64: u128 = u64::MAX as u128;

/// `mov xmm, xmm` (whole register; also the register forms of MOVAPS/MOVUPS/MOVDQA/...)
pub fn exec_movx_x_x(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = xmm(cpu, e.src);
    set_xmm(cpu, e.dst, v);
    Ok(())
}

/// `mov xmm, m` with `S` as wide as the load; the rest of the register is zeroed (MOVAPS,
/// MOVUPS, MOVSS/MOVSD/MOVQ/MOVD loads).
pub fn exec_movx_x_m<S: Src>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = S::read(cpu, cpu.ea(e))?;
    set_xmm(cpu, e.dst, v);
    Ok(())
}

/// `mov m128, xmm` (in store forms the register is operand 1: `src`)
pub fn exec_movx_m128_x<const ALIGNED: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = xmm(cpu, e.src);
    write128(cpu, cpu.ea(e), v, ALIGNED)
}

/// `mov m32/m64, xmm`: the low `W` bits (MOVSS, MOVSD, MOVLPS, MOVQ, MOVD stores).
pub fn exec_movx_m_x<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = xmm(cpu, e.src) as u64;
    cpu.write::<W>(cpu.ea(e), v & W::MASK)
}

/// `movhps/movhpd m64, xmm`: the high half.
pub fn exec_movhps_m64_x(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = (xmm(cpu, e.src) >> 64) as u64;
    cpu.write::<W64>(cpu.ea(e), v)
}

/// `movss xmm, xmm` (both directions): the low dword moves, the rest of dst stays.
pub fn exec_movss_x_x(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = (xmm(cpu, e.dst) & !(u32::MAX as u128)) | (xmm(cpu, e.src) & u32::MAX as u128);
    set_xmm(cpu, e.dst, v);
    Ok(())
}

/// `movsd xmm, xmm` (both directions): the low qword moves, the high one stays.
pub fn exec_movsd_x_x(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = (xmm(cpu, e.dst) & !LOW64) | (xmm(cpu, e.src) & LOW64);
    set_xmm(cpu, e.dst, v);
    Ok(())
}

/// `movq xmm, xmm` (F3 0F 7E and 66 0F D6): the low qword, the high one zeroed.
pub fn exec_movq_x_x(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = xmm(cpu, e.src) & LOW64;
    set_xmm(cpu, e.dst, v);
    Ok(())
}

/// `movlps/movlpd xmm, m64`: loads the low half, keeps the high.
pub fn exec_movlps_x_m64(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = cpu.read::<W64>(cpu.ea(e))?;
    let x = (xmm(cpu, e.dst) & !LOW64) | v as u128;
    set_xmm(cpu, e.dst, x);
    Ok(())
}

/// `movhps/movhpd xmm, m64`: loads the high half, keeps the low.
pub fn exec_movhps_x_m64(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = cpu.read::<W64>(cpu.ea(e))?;
    let x = (xmm(cpu, e.dst) & LOW64) | (v as u128) << 64;
    set_xmm(cpu, e.dst, x);
    Ok(())
}

/// `movhlps xmm1, xmm2`: xmm1[63:0] = xmm2[127:64].
pub fn exec_movhlps(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let x = (xmm(cpu, e.dst) & !LOW64) | xmm(cpu, e.src) >> 64;
    set_xmm(cpu, e.dst, x);
    Ok(())
}

/// `movlhps xmm1, xmm2`: xmm1[127:64] = xmm2[63:0].
pub fn exec_movlhps(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let x = (xmm(cpu, e.dst) & LOW64) | xmm(cpu, e.src) << 64;
    set_xmm(cpu, e.dst, x);
    Ok(())
}

/// `movd xmm, r32` / `movq xmm, r64`: zero-extended into the register.
pub fn exec_movd_x_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = cpu.get::<W>(e.src);
    set_xmm(cpu, e.dst, v as u128);
    Ok(())
}

/// `movd r32, xmm` / `movq r64, xmm` (a 32-bit write zero-extends the GPR).
pub fn exec_movd_r_x<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let v = xmm(cpu, e.src) as u64;
    cpu.set::<W>(e.dst, v & W::MASK);
    Ok(())
}

/// `movmskps r, xmm`: the four dword sign bits.
pub fn exec_movmskps(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let l = split32(xmm(cpu, e.src));
    let m = l.iter().enumerate().fold(0u64, |m, (i, x)| m | ((x >> 31) as u64) << i);
    cpu.set::<W64>(e.dst, m);
    Ok(())
}

/// `movmskpd r, xmm`: the two qword sign bits.
pub fn exec_movmskpd(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let l = split64(xmm(cpu, e.src));
    cpu.set::<W64>(e.dst, (l[0] >> 63) | (l[1] >> 63) << 1);
    Ok(())
}

/// `pmovmskb r, xmm`: the sixteen byte sign bits.
pub fn exec_pmovmskb(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    let l = split8(xmm(cpu, e.src));
    let m = l.iter().enumerate().fold(0u64, |m, (i, x)| m | ((x >> 7) as u64) << i);
    cpu.set::<W64>(e.dst, m);
    Ok(())
}

/// `movnti m, r`: a GPR store (no SSE state involved, so no CR0/CR4 checks).
pub fn exec_movnti<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.get::<W>(e.src);
    cpu.write::<W>(cpu.ea(e), v)
}

/// `maskmovdqu xmm1, xmm2`: stores the bytes of xmm1 whose mask byte in xmm2 has its top bit
/// set, at DS:rDI (unaligned). Every selected byte is translated for write before any is
/// stored, so a fault leaves memory unchanged.
pub fn exec_maskmovdqu(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check(cpu)?;
    // Operand 0 is the implicit [rDI], so xmm1 is `src` and xmm2 `src2`.
    let data = split8(xmm(cpu, e.src));
    let mask = split8(xmm(cpu, e.src2));
    let la = cpu.seg_addr(e.seg, cpu.state.gpr[7] & e.amask, e.lmask);
    let mut locs: [Option<PhysLoc>; 16] = [None; 16];
    for i in 0..16 {
        if mask[i] & 0x80 != 0 {
            locs[i] = Some(cpu.translate_rmw::<W8>(la.wrapping_add(i as u64) & e.lmask)?);
        }
    }
    for (i, loc) in locs.iter().enumerate() {
        if let Some(loc) = loc {
            cpu.write_loc::<W8>(*loc, data[i] as u64);
        }
    }
    Ok(())
}

const LOADS: &[Row] = &[
    Row::rm(C::Movaps_xmm_xmmm128, exec_movx_x_x, exec_movx_x_m::<M128>),
    Row::rm(C::Movapd_xmm_xmmm128, exec_movx_x_x, exec_movx_x_m::<M128>),
    Row::rm(C::Movdqa_xmm_xmmm128, exec_movx_x_x, exec_movx_x_m::<M128>),
    Row::rm(C::Movups_xmm_xmmm128, exec_movx_x_x, exec_movx_x_m::<M128U>),
    Row::rm(C::Movupd_xmm_xmmm128, exec_movx_x_x, exec_movx_x_m::<M128U>),
    Row::rm(C::Movdqu_xmm_xmmm128, exec_movx_x_x, exec_movx_x_m::<M128U>),
    Row::rm(C::Movaps_xmmm128_xmm, exec_movx_x_x, exec_movx_m128_x::<true>),
    Row::rm(C::Movapd_xmmm128_xmm, exec_movx_x_x, exec_movx_m128_x::<true>),
    Row::rm(C::Movdqa_xmmm128_xmm, exec_movx_x_x, exec_movx_m128_x::<true>),
    Row::rm(C::Movups_xmmm128_xmm, exec_movx_x_x, exec_movx_m128_x::<false>),
    Row::rm(C::Movupd_xmmm128_xmm, exec_movx_x_x, exec_movx_m128_x::<false>),
    Row::rm(C::Movdqu_xmmm128_xmm, exec_movx_x_x, exec_movx_m128_x::<false>),
    Row::mem(C::Movntps_m128_xmm, exec_movx_m128_x::<true>),
    Row::mem(C::Movntpd_m128_xmm, exec_movx_m128_x::<true>),
    Row::mem(C::Movntdq_m128_xmm, exec_movx_m128_x::<true>),
    Row::mem(C::Movnti_m32_r32, exec_movnti::<W32>),
    Row::mem(C::Movnti_m64_r64, exec_movnti::<W64>),
    Row::rm(C::Movss_xmm_xmmm32, exec_movss_x_x, exec_movx_x_m::<M32>),
    Row::rm(C::Movss_xmmm32_xmm, exec_movss_x_x, exec_movx_m_x::<W32>),
    Row::rm(C::Movsd_xmm_xmmm64, exec_movsd_x_x, exec_movx_x_m::<M64>),
    Row::rm(C::Movsd_xmmm64_xmm, exec_movsd_x_x, exec_movx_m_x::<W64>),
    Row::mem(C::Movlps_xmm_m64, exec_movlps_x_m64),
    Row::mem(C::Movlpd_xmm_m64, exec_movlps_x_m64),
    Row::mem(C::Movlps_m64_xmm, exec_movx_m_x::<W64>),
    Row::mem(C::Movlpd_m64_xmm, exec_movx_m_x::<W64>),
    Row::mem(C::Movhps_xmm_m64, exec_movhps_x_m64),
    Row::mem(C::Movhpd_xmm_m64, exec_movhps_x_m64),
    Row::mem(C::Movhps_m64_xmm, exec_movhps_m64_x),
    Row::mem(C::Movhpd_m64_xmm, exec_movhps_m64_x),
    Row::reg(C::Movhlps_xmm_xmm, exec_movhlps),
    Row::reg(C::Movlhps_xmm_xmm, exec_movlhps),
    Row::rm(C::Movd_xmm_rm32, exec_movd_x_r::<W32>, exec_movx_x_m::<M32>),
    Row::rm(C::Movq_xmm_rm64, exec_movd_x_r::<W64>, exec_movx_x_m::<M64>),
    Row::rm(C::Movd_rm32_xmm, exec_movd_r_x::<W32>, exec_movx_m_x::<W32>),
    Row::rm(C::Movq_rm64_xmm, exec_movd_r_x::<W64>, exec_movx_m_x::<W64>),
    Row::rm(C::Movq_xmm_xmmm64, exec_movq_x_x, exec_movx_x_m::<M64>),
    Row::rm(C::Movq_xmmm64_xmm, exec_movq_x_x, exec_movx_m_x::<W64>),
    Row::reg(C::Movmskps_r32_xmm, exec_movmskps),
    Row::reg(C::Movmskps_r64_xmm, exec_movmskps),
    Row::reg(C::Movmskpd_r32_xmm, exec_movmskpd),
    Row::reg(C::Movmskpd_r64_xmm, exec_movmskpd),
    Row::reg(C::Pmovmskb_r32_xmm, exec_pmovmskb),
    Row::reg(C::Pmovmskb_r64_xmm, exec_pmovmskb),
    Row::any(C::Maskmovdqu_rDI_xmm_xmm, exec_maskmovdqu),
];

pub(crate) const ROWS: &[Row] = LOADS;

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::testutil::{emulate, host_cases, ints, native, St};
    use crate::exception::{Fault, Stop};

    // Memory at [rdx] starts as x1's bytes then x0's, so loads see nonzero data.
    host_cases! { 200;
        movaps_rr: "movaps xmm0, xmm1", ints();
        movaps_load: "movaps xmm0, [rdx]", ints();
        movaps_store: "movaps [rdx + 16], xmm1", ints();
        movapd_load: "movapd xmm0, [rdx + 16]", ints();
        movdqa_store: "movdqa [rdx], xmm0", ints();
        movups_load: "movups xmm0, [rdx + 3]", ints();
        movupd_store: "movupd [rdx + 5], xmm1", ints();
        movdqu_load: "movdqu xmm0, [rdx + 9]", ints();
        movdqu_store: "movdqu [rdx + 1], xmm0", ints();
        movss_rr: "movss xmm0, xmm1", ints();
        movss_load: "movss xmm0, dword ptr [rdx + 4]", ints();
        movss_store: "movss dword ptr [rdx + 8], xmm0", ints();
        movsd_rr: "movsd xmm0, xmm1", ints();
        movsd_load: "movsd xmm0, qword ptr [rdx + 8]", ints();
        movsd_store: "movsd qword ptr [rdx + 3], xmm0", ints();
        movlps_load: "movlps xmm0, qword ptr [rdx + 8]", ints();
        movlps_store: "movlps qword ptr [rdx + 1], xmm0", ints();
        movhps_load: "movhps xmm0, qword ptr [rdx + 8]", ints();
        movhps_store: "movhps qword ptr [rdx + 2], xmm0", ints();
        movlpd_load: "movlpd xmm0, qword ptr [rdx]", ints();
        movhpd_store: "movhpd qword ptr [rdx], xmm1", ints();
        movhlps: "movhlps xmm0, xmm1", ints();
        movlhps: "movlhps xmm0, xmm1", ints();
        movd_x_r: "movd xmm0, eax", ints();
        movq_x_r: "movq xmm0, rax", ints();
        movd_r_x: "movd eax, xmm1", ints();
        movq_r_x: "movq rax, xmm1", ints();
        movd_load: "movd xmm0, dword ptr [rdx + 4]", ints();
        movd_store: "movd dword ptr [rdx + 4], xmm0", ints();
        movq_load: "movq xmm0, qword ptr [rdx + 4]", ints();
        movq_store: "movq qword ptr [rdx + 4], xmm0", ints();
        movq_xx: "movq xmm0, xmm1", ints();
        movmskps: "movmskps eax, xmm1", ints();
        movmskpd: "movmskpd rax, xmm1", ints();
        pmovmskb: "pmovmskb eax, xmm1", ints();
        movntps: "movntps [rdx], xmm1", ints();
        movntdq: "movntdq [rdx + 16], xmm0", ints();
        movnti32: "movnti dword ptr [rdx + 4], eax", ints();
        movnti64: "movnti qword ptr [rdx + 4], rax", ints();
        maskmovdqu: "maskmovdqu xmm0, xmm1", ints();
    }

    #[test]
    fn aligned_forms_fault_on_misalignment_and_change_nothing() {
        // SDM Vol. 2, MOVAPS: "If the memory address is not aligned on a 16-byte boundary, a
        // #GP is generated"; MOVUPS has no such condition.
        let s = St::new(1, 2, 0x1f80);
        for n in
            [native!("movaps xmm0, [rdx + 8]"), native!("movdqa [rdx + 4], xmm1"), native!("paddd xmm0, [rdx + 8]")]
        {
            let (r, out) = emulate((n.bytes)(), &s);
            assert_eq!(r, Err(Stop::Fault(Fault::gp0())));
            assert_eq!(out, s);
        }
        let (r, _) = emulate((native!("movups xmm0, [rdx + 8]").bytes)(), &s);
        assert!(r.is_ok());
    }

    #[test]
    fn stores_crossing_into_a_read_only_page_fault_before_writing_anything() {
        // ARCHITECTURE.md, decision 6: a page-crossing store checks both pages first.
        use super::super::testutil::exec;
        use crate::exception::vector;
        use crate::mem::GuestRam;
        use crate::user::aspace::{AddressSpace, PROT_READ, PROT_WRITE};
        use crate::Cpu;
        let mut ram = GuestRam::new(1 << 20).expect("ram");
        let mut a = AddressSpace::new(&mut ram);
        let rw = a.populate(&mut ram, 0x10000, PROT_READ | PROT_WRITE).expect("frame");
        a.populate(&mut ram, 0x11000, PROT_READ).expect("frame");
        let mut cpu = Cpu::new(ram);
        crate::user::setup_long_mode_user(&mut cpu, a.pml4);
        cpu.state.xmm[0] = [u64::MAX, u64::MAX];
        cpu.state.xmm[1] = [u64::MAX, u64::MAX];
        let cases: [(&[u8], u64); 4] = [
            (&[0x0f, 0x11, 0x02], 0x10ff8),       // movups [rdx], xmm0
            (&[0x0f, 0x13, 0x02], 0x10ffc),       // movlps [rdx], xmm0
            (&[0x66, 0x0f, 0xf7, 0xc1], 0x10ff8), // maskmovdqu xmm0, xmm1 at [rdi]
            (&[0x48, 0x0f, 0xae, 0x02], 0x10f00), // fxsave64 [rdx] (416 bytes cross)
        ];
        for (bytes, at) in cases {
            cpu.state.gpr[2] = at;
            cpu.state.gpr[7] = at;
            let r = exec(&mut cpu, bytes);
            assert!(matches!(r, Err(Stop::Fault(f)) if f.vector == vector::PF), "{bytes:02x?}: {r:?}");
            assert_eq!(cpu.fault_addr, 0x11000, "{bytes:02x?}");
            assert!(cpu.ram.slice(rw, 4096).expect("frame").iter().all(|b| *b == 0), "{bytes:02x?} wrote");
        }
        // A load crossing into an unmapped page faults and leaves the register alone.
        cpu.state.gpr[2] = 0x11ff8;
        let r = exec(&mut cpu, &[0x0f, 0x10, 0x02]); // movups xmm0, [rdx]
        assert!(matches!(r, Err(Stop::Fault(f)) if f.vector == vector::PF));
        assert_eq!(cpu.state.xmm[0], [u64::MAX, u64::MAX]);
    }
}
