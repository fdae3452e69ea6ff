//! The host's own x87, reached through inline assembly: the oracle for the property tests,
//! the transcendental report and the benchmarks. x86-64 only.
//!
//! This is the only module with `unsafe`. Every routine follows the pattern of
//! `testfloat/data/reference/x87ref.c`: FNINIT (unlike FNCLEX it also clears C0–C3,
//! so condition codes an instruction leaves alone read as 0), load the FCW, load the operands, run
//! one instruction, FNSTSW right after it, store the result(s), and leave the register stack
//! empty (the x86-64 ABI requires an empty x87 stack between functions). Callers must pass a
//! control word with all six exceptions masked: an unmasked exception would fault (#MF, a
//! SIGFPE) at the next waiting x87 instruction inside these sequences.
#![allow(unsafe_code)]

use std::arch::asm;
use x87float::F80;

/// An m80 buffer padded to 16 bytes.
type M80 = [u8; 16];

fn m80(x: F80) -> M80 {
    let mut b = [0u8; 16];
    b[..10].copy_from_slice(&x.to_le_bytes());
    b
}

fn f80(b: &M80) -> F80 {
    let mut t = [0u8; 10];
    t.copy_from_slice(&b[..10]);
    F80::from_le_bytes(t)
}

/// Panics (in tests) if the control word would unmask an exception.
fn check_cw(cw: u16) {
    assert_eq!(cw & 0x3F, 0x3F, "host x87 helpers need all exceptions masked");
}

macro_rules! x87 {
    ($($tmpl:literal),* ; $($args:tt)*) => {
        // SAFETY: every pointer operand points to a live local buffer at least as large as the
        // access (m80 buffers are 16 bytes); the sequence pops everything it pushes, so the
        // x87 stack is empty afterwards as the ABI requires; all x87 registers are declared
        // clobbered; with all exceptions masked (checked by `check_cw`) no instruction faults.
        unsafe {
            asm!($($tmpl),*, $($args)*,
                 out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                 out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                 options(nostack))
        }
    };
}

macro_rules! binary {
    ($(#[$m:meta])* $name:ident, $insn:literal) => {
        $(#[$m])*
        /// ST(0) = `a`, ST(1) = `b`; returns the new ST(0) and the FSW.
        pub fn $name(a: F80, b: F80, cw: u16) -> (F80, u16) {
            check_cw(cw);
            let (a, b, mut r) = (m80(a), m80(b), [0u8; 16]);
            let sw: u16;
            x87!("fninit", "fldcw word ptr [{cw}]", "fld tbyte ptr [{b}]", "fld tbyte ptr [{a}]",
                 $insn, "fnstsw ax", "fstp tbyte ptr [{r}]", "fstp st(0)";
                 cw = in(reg) &cw, a = in(reg) a.as_ptr(), b = in(reg) b.as_ptr(),
                 r = in(reg) r.as_mut_ptr(), out("ax") sw);
            (f80(&r), sw)
        }
    };
}

binary!(add, "fadd st(0), st(1)");
binary!(sub, "fsub st(0), st(1)");
binary!(
    /// FSUBR: ST(0) = ST(1) − ST(0).
    subr, "fsubr st(0), st(1)");
binary!(mul, "fmul st(0), st(1)");
binary!(div, "fdiv st(0), st(1)");
binary!(
    /// FDIVR: ST(0) = ST(1) / ST(0).
    divr, "fdivr st(0), st(1)");
binary!(
    /// One FPREM step (C2 in the FSW says whether it was partial).
    fprem, "fprem");
binary!(
    /// One FPREM1 step.
    fprem1, "fprem1");
binary!(fscale, "fscale");

macro_rules! binary_pop {
    ($(#[$m:meta])* $name:ident, $insn:literal) => {
        $(#[$m])*
        /// ST(0) = `a`, ST(1) = `b`; the instruction pops; returns the new ST(0) and the FSW.
        pub fn $name(a: F80, b: F80, cw: u16) -> (F80, u16) {
            check_cw(cw);
            let (a, b, mut r) = (m80(a), m80(b), [0u8; 16]);
            let sw: u16;
            x87!("fninit", "fldcw word ptr [{cw}]", "fld tbyte ptr [{b}]", "fld tbyte ptr [{a}]",
                 $insn, "fnstsw ax", "fstp tbyte ptr [{r}]";
                 cw = in(reg) &cw, a = in(reg) a.as_ptr(), b = in(reg) b.as_ptr(),
                 r = in(reg) r.as_mut_ptr(), out("ax") sw);
            (f80(&r), sw)
        }
    };
}

binary_pop!(
    /// FPATAN: atan(ST(1)/ST(0)).
    fpatan, "fpatan");
binary_pop!(
    /// FYL2X: ST(1)·log2(ST(0)).
    fyl2x, "fyl2x");
binary_pop!(
    /// FYL2XP1: ST(1)·log2(ST(0)+1).
    fyl2xp1, "fyl2xp1");

macro_rules! unary {
    ($(#[$m:meta])* $name:ident, $insn:literal) => {
        $(#[$m])*
        /// ST(0) = `a`; returns the new ST(0) and the FSW.
        pub fn $name(a: F80, cw: u16) -> (F80, u16) {
            check_cw(cw);
            let (a, mut r) = (m80(a), [0u8; 16]);
            let sw: u16;
            x87!("fninit", "fldcw word ptr [{cw}]", "fld tbyte ptr [{a}]",
                 $insn, "fnstsw ax", "fstp tbyte ptr [{r}]";
                 cw = in(reg) &cw, a = in(reg) a.as_ptr(), r = in(reg) r.as_mut_ptr(), out("ax") sw);
            (f80(&r), sw)
        }
    };
}

unary!(sqrt, "fsqrt");
unary!(frndint, "frndint");
unary!(fsin, "fsin");
unary!(fcos, "fcos");
unary!(f2xm1, "f2xm1");
unary!(fabs, "fabs");
unary!(fchs, "fchs");
unary!(
    /// FXAM (the value comes back unchanged; the FSW holds the class).
    fxam, "fxam");
unary!(
    /// FTST.
    ftst, "ftst");

macro_rules! unary2 {
    ($(#[$m:meta])* $name:ident, $insn:literal) => {
        $(#[$m])*
        /// ST(0) = `a`; returns (new ST(0), new ST(1), FSW). When the instruction does not
        /// push (C2 = 1), the second value is whatever the extra pop finds.
        pub fn $name(a: F80, cw: u16) -> (F80, F80, u16) {
            check_cw(cw);
            let (a, mut r0, mut r1) = (m80(a), [0u8; 16], [0u8; 16]);
            let sw: u16;
            x87!("fninit", "fldcw word ptr [{cw}]", "fld tbyte ptr [{a}]",
                 $insn, "fnstsw ax", "fstp tbyte ptr [{r0}]", "fstp tbyte ptr [{r1}]";
                 cw = in(reg) &cw, a = in(reg) a.as_ptr(), r0 = in(reg) r0.as_mut_ptr(),
                 r1 = in(reg) r1.as_mut_ptr(), out("ax") sw);
            (f80(&r0), f80(&r1), sw)
        }
    };
}

unary2!(
    /// FPTAN: (1.0, tan) on success.
    fptan, "fptan");
unary2!(
    /// FSINCOS: (cos, sin) on success.
    fsincos, "fsincos");
unary2!(
    /// FXTRACT: (significand, exponent).
    fxtract, "fxtract");

macro_rules! constant {
    ($name:ident, $insn:literal) => {
        /// Loads the constant under `cw`; returns it and the FSW.
        pub fn $name(cw: u16) -> (F80, u16) {
            check_cw(cw);
            let mut r = [0u8; 16];
            let sw: u16;
            x87!("fninit", "fldcw word ptr [{cw}]", $insn, "fnstsw ax", "fstp tbyte ptr [{r}]";
                 cw = in(reg) &cw, r = in(reg) r.as_mut_ptr(), out("ax") sw);
            (f80(&r), sw)
        }
    };
}

constant!(fld1, "fld1");
constant!(fldz, "fldz");
constant!(fldpi, "fldpi");
constant!(fldl2e, "fldl2e");
constant!(fldl2t, "fldl2t");
constant!(fldlg2, "fldlg2");
constant!(fldln2, "fldln2");

/// FCOM (`quiet` = false) or FUCOM with ST(0) = `a`, ST(1) = `b`; returns the FSW.
pub fn fcom(a: F80, b: F80, quiet: bool) -> u16 {
    let cw: u16 = 0x037F;
    let (a, b) = (m80(a), m80(b));
    let sw: u16;
    if quiet {
        x87!("fninit", "fldcw word ptr [{cw}]", "fld tbyte ptr [{b}]", "fld tbyte ptr [{a}]",
             "fucom st(1)", "fnstsw ax", "fstp st(0)", "fstp st(0)";
             cw = in(reg) &cw, a = in(reg) a.as_ptr(), b = in(reg) b.as_ptr(), out("ax") sw);
    } else {
        x87!("fninit", "fldcw word ptr [{cw}]", "fld tbyte ptr [{b}]", "fld tbyte ptr [{a}]",
             "fcom st(1)", "fnstsw ax", "fstp st(0)", "fstp st(0)";
             cw = in(reg) &cw, a = in(reg) a.as_ptr(), b = in(reg) b.as_ptr(), out("ax") sw);
    }
    sw
}

/// FCOMI/FUCOMI with ST(0) = `a`, ST(1) = `b`; returns (ZF, PF, CF, FSW).
pub fn fcomi(a: F80, b: F80, quiet: bool) -> (bool, bool, bool, u16) {
    let cw: u16 = 0x037F;
    let (a, b) = (m80(a), m80(b));
    let sw: u16;
    let (zf, pf, cf): (u8, u8, u8);
    if quiet {
        x87!("fninit", "fldcw word ptr [{cw}]", "fld tbyte ptr [{b}]", "fld tbyte ptr [{a}]",
             "fucomi st(0), st(1)", "setz {zf}", "setp {pf}", "setc {cf}", "fnstsw ax",
             "fstp st(0)", "fstp st(0)";
             cw = in(reg) &cw, a = in(reg) a.as_ptr(), b = in(reg) b.as_ptr(), out("ax") sw,
             zf = out(reg_byte) zf, pf = out(reg_byte) pf, cf = out(reg_byte) cf);
    } else {
        x87!("fninit", "fldcw word ptr [{cw}]", "fld tbyte ptr [{b}]", "fld tbyte ptr [{a}]",
             "fcomi st(0), st(1)", "setz {zf}", "setp {pf}", "setc {cf}", "fnstsw ax",
             "fstp st(0)", "fstp st(0)";
             cw = in(reg) &cw, a = in(reg) a.as_ptr(), b = in(reg) b.as_ptr(), out("ax") sw,
             zf = out(reg_byte) zf, pf = out(reg_byte) pf, cf = out(reg_byte) cf);
    }
    (zf != 0, pf != 0, cf != 0, sw)
}

macro_rules! load {
    ($name:ident, $t:ty, $insn:literal) => {
        /// Loads a memory operand of this type; returns ST(0) and the FSW.
        pub fn $name(v: $t, cw: u16) -> (F80, u16) {
            check_cw(cw);
            let mut r = [0u8; 16];
            let sw: u16;
            x87!("fninit", "fldcw word ptr [{cw}]", $insn, "fnstsw ax", "fstp tbyte ptr [{r}]";
                 cw = in(reg) &cw, p = in(reg) &v, r = in(reg) r.as_mut_ptr(), out("ax") sw);
            (f80(&r), sw)
        }
    };
}

load!(fild16, i16, "fild word ptr [{p}]");
load!(fild32, i32, "fild dword ptr [{p}]");
load!(fild64, i64, "fild qword ptr [{p}]");
load!(fld32, u32, "fld dword ptr [{p}]");
load!(fld64, u64, "fld qword ptr [{p}]");
load!(fbld, [u8; 16], "fbld tbyte ptr [{p}]");

macro_rules! store {
    ($name:ident, $t:ty, $fill:expr, $insn:literal) => {
        /// Stores ST(0) = `a` to memory of this type (the instruction pops); returns the
        /// memory contents (pre-filled with 0xA5 bytes, so "not written" shows) and the FSW.
        pub fn $name(a: F80, cw: u16) -> ($t, u16) {
            check_cw(cw);
            let a = m80(a);
            let mut r: $t = $fill;
            let sw: u16;
            x87!("fninit", "fldcw word ptr [{cw}]", "fld tbyte ptr [{a}]", $insn, "fnstsw ax";
                 cw = in(reg) &cw, a = in(reg) a.as_ptr(), p = in(reg) &mut r, out("ax") sw);
            (r, sw)
        }
    };
}

store!(fistp16, i16, 0xA5A5u16 as i16, "fistp word ptr [{p}]");
store!(fistp32, i32, 0xA5A5_A5A5u32 as i32, "fistp dword ptr [{p}]");
store!(fistp64, i64, 0xA5A5_A5A5_A5A5_A5A5u64 as i64, "fistp qword ptr [{p}]");
store!(fisttp16, i16, 0xA5A5u16 as i16, "fisttp word ptr [{p}]");
store!(fisttp32, i32, 0xA5A5_A5A5u32 as i32, "fisttp dword ptr [{p}]");
store!(fisttp64, i64, 0xA5A5_A5A5_A5A5_A5A5u64 as i64, "fisttp qword ptr [{p}]");
store!(fstp32, u32, 0xA5A5_A5A5, "fstp dword ptr [{p}]");
store!(fstp64, u64, 0xA5A5_A5A5_A5A5_A5A5, "fstp qword ptr [{p}]");
store!(fbstp, [u8; 16], [0xA5; 16], "fbstp tbyte ptr [{p}]");

/// The host CPU's vendor and brand string (CPUID leaf 0 and leaves 0x8000_0002..4), family and
/// model, for test logs: the property tests' oracle is this CPU's x87.
pub fn cpu_model() -> String {
    use core::arch::x86_64::__cpuid;
    let l0 = __cpuid(0);
    let vendor: Vec<u8> = [l0.ebx, l0.edx, l0.ecx].iter().flat_map(|r| r.to_le_bytes()).collect();
    let mut brand = Vec::new();
    if __cpuid(0x8000_0000).eax >= 0x8000_0004 {
        for leaf in 0x8000_0002..=0x8000_0004u32 {
            let r = __cpuid(leaf);
            brand.extend([r.eax, r.ebx, r.ecx, r.edx].iter().flat_map(|x| x.to_le_bytes()));
        }
    }
    let eax = __cpuid(1).eax;
    let (base_family, base_model) = ((eax >> 8) & 0xf, (eax >> 4) & 0xf);
    let family = if base_family == 0xf { base_family + ((eax >> 20) & 0xff) } else { base_family };
    let model = if base_family == 6 || base_family == 0xf { base_model | ((eax >> 16) & 0xf) << 4 } else { base_model };
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim_matches(|c: char| c == '\0' || c == ' ').to_string();
    format!("{} \"{}\" family {family} model {model}", text(&vendor), text(&brand))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let (r, sw) = add(F80::ONE, F80::ONE, 0x037F);
        assert_eq!((r.to_bits(), sw & 0x3F), (0x4000_8000_0000_0000_0000, 0));
        let (r, _) = fild32(-1, 0x037F);
        assert_eq!(r.to_bits(), 0xBFFF_8000_0000_0000_0000);
        let (v, _) = fistp16(F80::ONE, 0x037F);
        assert_eq!(v, 1);
    }
}
