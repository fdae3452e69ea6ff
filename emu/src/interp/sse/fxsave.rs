//! FXSAVE/FXRSTOR: the 512-byte x87 + SSE state image (SDM Vol. 1, 10.5.1, Tables 10-2 and
//! 10-3; Vol. 2, FXSAVE). Both the REX.W form (64-bit FIP/FDP) and the plain form (32-bit
//! FIP/FDP; FCS/FDS stored as zero, as the reference CPU, which deprecates them, does) are
//! modelled. The x87 registers are stored in stack order (ST0 first, ST(i) = physical register
//! (TOP + i) mod 8); the tag word is stored abridged (one bit per
//! physical register, 1 = not empty) and rebuilt on FXRSTOR from the register contents (SDM
//! Vol. 1, 10.5.1.1). Bytes 416..511 are neither written nor read. The area must be 16-byte
//! aligned (#GP(0)); a store translates every qword it writes before writing any, and a load
//! reads the whole image before changing any state, so a fault changes nothing. FXRSTOR
//! normalizes as the reference CPU (AMD EPYC) does: FCW reserved bits, FSW.ES/B recomputed from
//! the unmasked flags, FIP made canonical. FOP/FIP/FDP are always stored (the host does so even
//! with FSW.ES clear). Where Intel and AMD CPUs store different values, the host test compares
//! only what both define (`tests::compared_bits` lists each case with its SDM/APM reference).

use super::MXCSR_MASK;
use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{vector, ExecResult, Fault, Stop};
use crate::flags::W64;
use crate::mmu::PhysLoc;
use crate::state::{ctrl, FpuState, X87Reg};
use iced_x86::Code as C;

/// Bytes of the image this model writes and reads.
pub const IMAGE: usize = 416;

/// FXSAVE and FXRSTOR raise #NM when CR0.TS or CR0.EM is set.
fn check_fx(cpu: &Cpu, la: u64) -> Result<(), Stop> {
    if cpu.state.cr0 & (ctrl::CR0_TS | ctrl::CR0_EM) != 0 {
        return Err(Stop::Fault(Fault::new(vector::NM)));
    }
    if la & 15 != 0 {
        return Err(Stop::Fault(Fault::gp0()));
    }
    Ok(())
}

/// The tag a register's contents imply: 0 valid, 1 zero, 2 special (SDM Vol. 1, 8.1.7).
fn tag_of(r: &X87Reg) -> u16 {
    let exp = r.sign_exp & 0x7fff;
    if exp == 0x7fff {
        2
    } else if exp == 0 {
        if r.signif == 0 {
            1
        } else {
            2
        }
    } else if r.signif >> 63 == 0 {
        2
    } else {
        0
    }
}

/// Builds the image as FXSAVE stores it.
pub fn save_image(cpu: &Cpu, rex_w: bool) -> [u8; IMAGE] {
    let s = &cpu.state;
    let f = &s.fpu;
    let mut b = [0u8; IMAGE];
    b[0..2].copy_from_slice(&f.fcw.to_le_bytes());
    b[2..4].copy_from_slice(&f.fsw.to_le_bytes());
    let abridged = (0..8).fold(0u8, |a, i| a | (((f.ftw >> (2 * i)) & 3 != 3) as u8) << i);
    b[4] = abridged;
    b[6..8].copy_from_slice(&(f.fop & 0x7ff).to_le_bytes());
    if rex_w {
        b[8..16].copy_from_slice(&f.fip.to_le_bytes());
        b[16..24].copy_from_slice(&f.fdp.to_le_bytes());
    } else {
        // FCS and FDS are stored as zero: the reference CPU deprecates them (CPUID.7.0:EBX
        // bit 13, SDM Vol. 1, 8.1.8).
        b[8..12].copy_from_slice(&(f.fip as u32).to_le_bytes());
        b[16..20].copy_from_slice(&(f.fdp as u32).to_le_bytes());
    }
    b[24..28].copy_from_slice(&s.mxcsr.to_le_bytes());
    b[28..32].copy_from_slice(&MXCSR_MASK.to_le_bytes());
    let top = ((f.fsw >> 11) & 7) as usize;
    for i in 0..8 {
        let r = &f.regs[(top + i) & 7];
        let o = 32 + 16 * i;
        b[o..o + 8].copy_from_slice(&r.signif.to_le_bytes());
        b[o + 8..o + 10].copy_from_slice(&r.sign_exp.to_le_bytes());
    }
    for (i, x) in s.xmm.iter().enumerate() {
        let o = 160 + 16 * i;
        b[o..o + 8].copy_from_slice(&x[0].to_le_bytes());
        b[o + 8..o + 16].copy_from_slice(&x[1].to_le_bytes());
    }
    b
}

/// Loads an image into the FPU state, XMM registers and MXCSR.
///
/// # Errors
/// #GP(0) when the image's MXCSR has a reserved bit set (nothing is changed then).
pub fn load_image(cpu: &mut Cpu, b: &[u8; IMAGE], rex_w: bool) -> Result<(), Stop> {
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let u64_at = |o: usize| u32_at(o) as u64 | (u32_at(o + 4) as u64) << 32;
    let mxcsr = u32_at(24);
    if mxcsr & !MXCSR_MASK != 0 {
        return Err(Stop::Fault(Fault::gp0()));
    }
    // FCW bit 6 is reserved and reads as 1, bits 7 and 13-15 read as 0 (as the host shows).
    let mut f = FpuState { fcw: (u16_at(0) & 0x1f3f) | 0x40, fsw: u16_at(2), fop: u16_at(6) & 0x7ff, ..cpu.state.fpu };
    // ES and B (bits 7 and 15) summarize the unmasked exception flags; they are recomputed.
    let es = f.fsw & !f.fcw & 0x3f != 0;
    f.fsw = (f.fsw & 0x7f7f) | if es { 0x8080 } else { 0 };
    if rex_w {
        // The host keeps FIP as a 48-bit canonical address (bits 63:48 follow bit 47); FDP
        // is kept whole.
        f.fip = ((u64_at(8) << 16) as i64 >> 16) as u64;
        f.fdp = u64_at(16);
    } else {
        f.fip = u32_at(8) as u64;
        f.fcs = u16_at(12);
        f.fdp = u32_at(16) as u64;
        f.fds = u16_at(20);
    }
    let top = ((f.fsw >> 11) & 7) as usize;
    for i in 0..8 {
        let o = 32 + 16 * i;
        f.regs[(top + i) & 7] = X87Reg { signif: u64_at(o), sign_exp: u16_at(o + 8), _pad: [0; 3] };
    }
    let abridged = b[4];
    f.ftw = (0..8).fold(0u16, |t, i| {
        let tag = if abridged >> i & 1 == 0 { 3 } else { tag_of(&f.regs[i]) };
        t | tag << (2 * i)
    });
    cpu.state.fpu = f;
    cpu.state.mxcsr = mxcsr;
    for i in 0..16 {
        let o = 160 + 16 * i;
        cpu.state.xmm[i] = [u64_at(o), u64_at(o + 8)];
    }
    Ok(())
}

/// `fxsave m512` / `fxsave64 m512`
pub fn exec_fxsave<const REX_W: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let la = cpu.ea(e);
    check_fx(cpu, la)?;
    let img = save_image(cpu, REX_W);
    let mut locs = [PhysLoc { pa: 0, pa2: 0, first: 0, slow: false }; IMAGE / 8];
    for (i, loc) in locs.iter_mut().enumerate() {
        *loc = cpu.translate_rmw::<W64>(la.wrapping_add(8 * i as u64) & e.lmask)?;
    }
    for (i, loc) in locs.iter().enumerate() {
        let mut q = [0u8; 8];
        q.copy_from_slice(&img[8 * i..8 * i + 8]);
        cpu.write_loc::<W64>(*loc, u64::from_le_bytes(q));
    }
    Ok(())
}

/// `fxrstor m512` / `fxrstor64 m512`
pub fn exec_fxrstor<const REX_W: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let la = cpu.ea(e);
    check_fx(cpu, la)?;
    let mut img = [0u8; IMAGE];
    for i in 0..IMAGE / 8 {
        let q = cpu.read::<W64>(la.wrapping_add(8 * i as u64) & e.lmask)?;
        img[8 * i..8 * i + 8].copy_from_slice(&q.to_le_bytes());
    }
    load_image(cpu, &img, REX_W)
}

pub(crate) const ROWS: &[Row] = &[
    Row::mem(C::Fxsave_m512byte, exec_fxsave::<false>),
    Row::mem(C::Fxsave64_m512byte, exec_fxsave::<true>),
    Row::mem(C::Fxrstor_m512byte, exec_fxrstor::<false>),
    Row::mem(C::Fxrstor64_m512byte, exec_fxrstor::<true>),
];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::testutil::{exec, sse_cpu, BUF};
    use crate::exception::{Fault, Stop};
    use proptest::prelude::*;

    #[repr(C, align(16))]
    struct Area([u8; 512]);

    /// The host's FXRSTOR then FXSAVE (REX.W forms when `w`): what hardware keeps of an image.
    fn host_round_trip(img: &[u8; 512], w: bool) -> [u8; 512] {
        let mut orig = Area([0; 512]);
        let mut a = Area(*img);
        // SAFETY: both areas are 512 bytes and 16-byte aligned; the host's own x87/SSE state is
        // saved first and restored last, and no FP instruction runs in between.
        unsafe {
            if w {
                core::arch::asm!(
                    "fxsave64 [{o}]",
                    "fxrstor64 [{a}]",
                    "fxsave64 [{a}]",
                    "fxrstor64 [{o}]",
                    o = in(reg) orig.0.as_mut_ptr(),
                    a = in(reg) a.0.as_mut_ptr(),
                );
            } else {
                core::arch::asm!(
                    "fxsave64 [{o}]",
                    "fxrstor [{a}]",
                    "fxsave [{a}]",
                    "fxrstor64 [{o}]",
                    o = in(reg) orig.0.as_mut_ptr(),
                    a = in(reg) a.0.as_mut_ptr(),
                );
            }
        }
        a.0
    }

    /// The same in tier 0 (fxrstor [rdx]; fxsave [rdx], with REX.W when `w`).
    fn emu_round_trip(img: &[u8; 512], w: bool) -> [u8; 512] {
        let mut cpu = sse_cpu();
        cpu.state.gpr[2] = BUF;
        cpu.ram.slice_mut(BUF, 512).expect("ram").copy_from_slice(img);
        let (rstor, save): (&[u8], &[u8]) = if w {
            (&[0x48, 0x0f, 0xae, 0x0a], &[0x48, 0x0f, 0xae, 0x02])
        } else {
            (&[0x0f, 0xae, 0x0a], &[0x0f, 0xae, 0x02])
        };
        exec(&mut cpu, rstor).expect("fxrstor");
        exec(&mut cpu, save).expect("fxsave");
        let mut out = [0u8; 512];
        out.copy_from_slice(cpu.ram.slice(BUF, 512).expect("ram"));
        out
    }

    /// Random images whose MXCSR both the host and tier 0 accept (a reserved MXCSR bit is a
    /// #GP on either, and the host's MXCSR_MASK is a property of its model).
    fn image() -> impl Strategy<Value = [u8; 512]> {
        let mask = host_mxcsr_mask() & super::MXCSR_MASK;
        (proptest::collection::vec(any::<u8>(), 512), any::<u32>(), any::<bool>()).prop_map(move |(v, mx, es)| {
            let mut b = [0u8; 512];
            b.copy_from_slice(&v);
            b[24..28].copy_from_slice(&(mx & mask).to_le_bytes());
            // Often unmask an exception whose flag is set, so FSW.ES/B are exercised.
            if es {
                b[0] &= !0x01;
                b[2] |= 0x01;
            }
            b
        })
    }

    /// The host's MXCSR_MASK (bytes 28..32 of its FXSAVE image; SDM Vol. 1, 11.6.6).
    fn host_mxcsr_mask() -> u32 {
        let mut a = Area([0; 512]);
        // SAFETY: a 512-byte, 16-byte-aligned area; FXSAVE only reads the FPU state.
        unsafe { core::arch::asm!("fxsave64 [{a}]", a = in(reg) a.0.as_mut_ptr()) };
        match u32::from_le_bytes([a.0[28], a.0[29], a.0[30], a.0[31]]) {
            0 => 0xffbf, // SDM Vol. 1, 11.6.6: a zero mask means the default, 0000FFBFh
            m => m,
        }
    }

    /// Which bits of each image byte the round-trip test compares: what the SDM (Intel) and the
    /// APM (AMD) both define for FXRSTOR followed by FXSAVE. Left out, each for its reason:
    /// - MXCSR_MASK (bytes 28..32): a property of the CPU model (SDM Vol. 1, 11.6.6).
    /// - FCW bits 6, 7, 13-15 and FOP bits 11-15 (byte 7 bits 3-7): reserved (SDM Vol. 1,
    ///   8.1.5 and 8.1.9; Table 10-2).
    /// - FSW.ES and FSW.B (bits 7 and 15): AMD recomputes them from the unmasked flags, as tier 0
    ///   does; the SDM does not say whether FXRSTOR keeps the loaded values. Tier 0's values are
    ///   checked against the SDM's definition instead (`es_and_b_summarize_the_unmasked_flags`).
    /// - Reserved bytes: 5, and 10..16 of each x87 register slot (Table 10-2); in the plain form
    ///   also 14..16 and 22..24. An Intel Xeon keeps what FXRSTOR was given in byte 14, tier 0
    ///   and AMD store zero.
    /// - Plain form, FCS (12..14) and FDS (20..22): stored as zero only where
    ///   CPUID.(EAX=7,ECX=0):EBX[13] is set (SDM Vol. 1, 8.1.8); otherwise the selector kept,
    ///   whose value is model-specific in 64-bit mode.
    /// - REX.W form, bits 63:48 of FIP and FDP (bytes 14..16, 22..24): beyond the linear-address
    ///   width; AMD keeps FIP canonical and FDP whole, and neither manual defines them.
    /// - FOP, FIP and FDP while FSW.ES is clear, on AMD hosts: the APM lets FXSAVE/FXRSTOR
    ///   skip them without a pending exception unless CPUID Fn8000_0008_EBX[2] (RstrFpErrPtrs)
    ///   is set (APM Vol. 4, FXSAVE), and this project's AMD EPYC (Zen 3, under kvm_pvm) stores
    ///   zeros there even with that bit set (measured: an FXRSTOR64/FXSAVE64 round trip of FIP
    ///   and FDP comes back as zero with ES clear, canonical with ES set).
    fn compared_bits(img: &[u8; 512], w: bool) -> [u8; 416] {
        let cpu = crate::hostcpu::announce();
        let mut m = [0xffu8; 416];
        m[28..32].fill(0);
        m[0] = 0x3f; // FCW: 6 and 7 reserved
        m[1] = 0x1f; // FCW: 13-15 reserved
        m[2] &= !0x80; // FSW.ES
        m[3] &= !0x80; // FSW.B
        m[5] = 0;
        m[7] = 0x07;
        for slot in 0..8 {
            let o = 32 + 16 * slot;
            m[o + 10..o + 16].fill(0);
        }
        // Reserved in the plain form, bits 63:48 of FIP and FDP in the REX.W form.
        m[14..16].fill(0);
        m[22..24].fill(0);
        if !w && !cpu.fcs_fds_deprecated {
            m[12..14].fill(0);
            m[20..22].fill(0);
        }
        let fcw = u16::from_le_bytes([img[0], img[1]]);
        let fsw = u16::from_le_bytes([img[2], img[3]]);
        let es = fsw & !fcw & 0x3f != 0;
        if cpu.is_amd() && !es {
            m[6..24].fill(0);
        }
        m
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Bytes 0..416 match the host after a restore/save round trip, in the bits both
        /// vendors define (`compared_bits`).
        #[test]
        fn fxrstor_fxsave_round_trip_matches_host(img in image(), w in proptest::bool::ANY) {
            let want = host_round_trip(&img, w);
            let got = emu_round_trip(&img, w);
            let mask = compared_bits(&img, w);
            for i in 0..416 {
                prop_assert_eq!(got[i] & mask[i], want[i] & mask[i], "byte {} of {:02x?}", i, &img[..48]);
            }
        }

        /// FSW.ES (bit 7) and B (bit 15) after FXRSTOR: set exactly when an exception flag
        /// (FSW bits 0-5) is set whose mask bit (FCW bits 0-5) is clear; B mirrors ES (SDM Vol. 1,
        /// 8.1.3, the exception summary and busy flags).
        #[test]
        fn es_and_b_summarize_the_unmasked_flags(img in image(), w in proptest::bool::ANY) {
            let got = emu_round_trip(&img, w);
            let fcw = u16::from_le_bytes([img[0], img[1]]);
            let fsw = u16::from_le_bytes([img[2], img[3]]);
            let es = fsw & !fcw & 0x3f != 0;
            prop_assert_eq!(got[2] & 0x80 != 0, es);
            prop_assert_eq!(got[3] & 0x80 != 0, es);
        }
    }

    #[test]
    fn registers_are_saved_in_stack_order_with_abridged_tags() {
        // Host: FNINIT; FLD1; FLDZ leaves TOP = 6, R7 = 1.0 (ST1), R6 = +0 (ST0).
        let mut orig = Area([0; 512]);
        let mut host = Area([0; 512]);
        // SAFETY: 512-byte aligned areas; the host x87/SSE state is saved and restored around.
        unsafe {
            core::arch::asm!(
                "fxsave64 [{o}]",
                "fninit",
                "fld1",
                "fldz",
                "fxsave64 [{h}]",
                "fxrstor64 [{o}]",
                o = in(reg) orig.0.as_mut_ptr(),
                h = in(reg) host.0.as_mut_ptr(),
            );
        }
        let mut cpu = sse_cpu();
        cpu.state.mxcsr = u32::from_le_bytes([host.0[24], host.0[25], host.0[26], host.0[27]]);
        cpu.state.xmm = core::array::from_fn(|i| {
            let o = 160 + 16 * i;
            let q = |o: usize| u64::from_le_bytes(host.0[o..o + 8].try_into().unwrap_or([0; 8]));
            [q(o), q(o + 8)]
        });
        let f = &mut cpu.state.fpu;
        f.fsw = 6 << 11;
        f.regs[7] = crate::state::X87Reg { signif: 1 << 63, sign_exp: 0x3fff, _pad: [0; 3] };
        f.ftw = 0x1fff; // R7 valid, R6 zero, the rest empty
        cpu.state.gpr[2] = BUF;
        exec(&mut cpu, &[0x48, 0x0f, 0xae, 0x02]).expect("fxsave64");
        let got = cpu.ram.slice(BUF, 416).expect("ram").to_vec();
        for i in (0..6).chain(24..28).chain(32..416) {
            assert_eq!(got[i], host.0[i], "byte {i}");
        }
    }

    #[test]
    fn fxrstor_rejects_reserved_mxcsr_bits_and_misalignment() {
        // SDM Vol. 2, FXRSTOR: #GP(0) for reserved MXCSR bits or a misaligned operand.
        let mut cpu = sse_cpu();
        cpu.state.gpr[2] = BUF;
        cpu.ram.slice_mut(BUF + 24, 4).expect("ram").copy_from_slice(&0x1_0000u32.to_le_bytes());
        let before = cpu.state.clone();
        assert_eq!(exec(&mut cpu, &[0x48, 0x0f, 0xae, 0x0a]), Err(Stop::Fault(Fault::gp0())));
        assert_eq!(cpu.state.mxcsr, before.mxcsr);
        cpu.state.gpr[2] = BUF + 8;
        assert_eq!(exec(&mut cpu, &[0x48, 0x0f, 0xae, 0x02]), Err(Stop::Fault(Fault::gp0())));
    }
}
