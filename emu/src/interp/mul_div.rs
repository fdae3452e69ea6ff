//! Multiply and divide: MUL, IMUL (one-, two- and three-operand), DIV, IDIV (SDM Vol. 2, those
//! entries), all widths, register and memory forms.
//!
//! Forms: `mul/imul/div/idiv r/m8|16|32|64` (implicit AL/AX/EAX/RAX and AH/DX/EDX/RDX),
//! `imul r, r/m` (16/32/64), `imul r, r/m, imm8|imm16|imm32` (16/32/64).
//!
//! Flags: MUL/IMUL define CF = OF = "the high half is significant". SF, ZF, AF and PF are
//! undefined; we produce what the reference CPU (Intel Cascade Lake; see `tests/host.rs`) produces (checked by the host tests):
//! SF from the low half of the result, ZF/AF cleared, PF from the low byte. DIV and IDIV leave all
//! six flags undefined; the reference CPU leaves them unchanged, and so do we.
//!
//! #DE (divide by zero, or a quotient that does not fit) is raised before any register changes.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{ExecResult, Fault, Stop};
use crate::flags::{LazyFlags, Width, W16, W32, W64, W8};
use iced_x86::Code as C;

/// Reads the r/m source: register `e.dst` for the register form, memory otherwise.
#[inline(always)]
fn rm_src<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr, reg: u8) -> Result<u64, Stop> {
    if MEM {
        cpu.read::<W>(cpu.ea(e))
    } else {
        Ok(cpu.get::<W>(reg))
    }
}

/// Flags of a multiply whose low half is `lo` and whose high half is significant when `ovf`.
#[inline(always)]
fn set_mul_flags<W: Width>(lf: &mut LazyFlags, lo: u64, ovf: bool) {
    // SF/PF from the low half and ZF = AF = 0, as the reference CPU does (undefined in the SDM). ZF is forced
    // clear by setting a bit above the operand in the stored result: it keeps SF/PF intact.
    lf.set_szp_with_cf_of_af::<W>(lo, ovf, ovf, false);
    if lf.result == 0 {
        lf.result = 0x100;
    }
}

/// Writes the double-width product/quotient pair: AX for bytes, else rDX:rAX.
#[inline(always)]
fn set_pair<W: Width>(cpu: &mut Cpu, lo: u64, hi: u64) {
    if W::BITS == 8 {
        cpu.set::<W16>(0, (hi << 8) | lo);
    } else {
        cpu.set::<W>(0, lo);
        cpu.set::<W>(2, hi);
    }
}

/// The double-width accumulator: AX for bytes, else rDX:rAX, as a 128-bit value.
#[inline(always)]
fn get_pair<W: Width>(cpu: &Cpu) -> u128 {
    if W::BITS == 8 {
        cpu.get::<W16>(0) as u128
    } else {
        (cpu.get::<W>(2) as u128) << W::BITS | cpu.get::<W>(0) as u128
    }
}

/// `mul r/m`: unsigned rDX:rAX = rAX * src.
pub fn exec_mul<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let b = rm_src::<W, MEM>(cpu, e, e.dst)?;
    let p = cpu.get::<W>(0) as u128 * b as u128;
    let lo = p as u64 & W::MASK;
    let hi = (p >> W::BITS) as u64 & W::MASK;
    set_pair::<W>(cpu, lo, hi);
    set_mul_flags::<W>(&mut cpu.state.lazy, lo, hi != 0);
    Ok(())
}

/// `imul r/m`: signed rDX:rAX = rAX * src.
pub fn exec_imul1<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let b = W::sext(rm_src::<W, MEM>(cpu, e, e.dst)?) as i64 as i128;
    let a = W::sext(cpu.get::<W>(0)) as i64 as i128;
    let p = a.wrapping_mul(b);
    let lo = p as u64 & W::MASK;
    let hi = (p >> W::BITS) as u64 & W::MASK;
    set_pair::<W>(cpu, lo, hi);
    set_mul_flags::<W>(&mut cpu.state.lazy, lo, p != W::sext(lo) as i64 as i128);
    Ok(())
}

/// Signed `a * b` truncated to `W`, and whether it overflowed.
#[inline(always)]
fn imul_trunc<W: Width>(a: u64, b: u64) -> (u64, bool) {
    let p = (W::sext(a) as i64 as i128).wrapping_mul(W::sext(b) as i64 as i128);
    let lo = p as u64 & W::MASK;
    (lo, p != W::sext(lo) as i64 as i128)
}

/// `imul r, r/m`
pub fn exec_imul2<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let b = rm_src::<W, MEM>(cpu, e, e.src)?;
    let (lo, ovf) = imul_trunc::<W>(cpu.get::<W>(e.dst), b);
    cpu.set::<W>(e.dst, lo);
    set_mul_flags::<W>(&mut cpu.state.lazy, lo, ovf);
    Ok(())
}

/// `imul r, r/m, imm`
pub fn exec_imul3<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let a = rm_src::<W, MEM>(cpu, e, e.src)?;
    let (lo, ovf) = imul_trunc::<W>(a, e.imm & W::MASK);
    cpu.set::<W>(e.dst, lo);
    set_mul_flags::<W>(&mut cpu.state.lazy, lo, ovf);
    Ok(())
}

/// `div r/m`: unsigned rAX = rDX:rAX / src, rDX = remainder. #DE on zero or overflow.
pub fn exec_div<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let d = rm_src::<W, MEM>(cpu, e, e.dst)? as u128;
    if d == 0 {
        return Err(Stop::Fault(Fault::de()));
    }
    let n = get_pair::<W>(cpu);
    let q = n / d;
    if q > W::MASK as u128 {
        return Err(Stop::Fault(Fault::de()));
    }
    set_pair::<W>(cpu, q as u64, (n % d) as u64);
    Ok(())
}

/// `idiv r/m`: signed, quotient truncated toward zero, remainder has the dividend's sign.
pub fn exec_idiv<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let d = W::sext(rm_src::<W, MEM>(cpu, e, e.dst)?) as i64 as i128;
    if d == 0 {
        return Err(Stop::Fault(Fault::de()));
    }
    // Sign-extend the 2W-bit dividend to 128 bits.
    let raw = get_pair::<W>(cpu);
    let sh = 128 - 2 * W::BITS;
    let n = ((raw << sh) as i128) >> sh;
    // Only i128::MIN / -1 could overflow i128 itself, and a 2W-bit dividend is never i128::MIN.
    let q = n.wrapping_div(d);
    let r = n.wrapping_rem(d);
    let max = (W::SIGN - 1) as i128;
    if q > max || q < -max - 1 {
        return Err(Stop::Fault(Fault::de()));
    }
    set_pair::<W>(cpu, q as u64 & W::MASK, r as u64 & W::MASK);
    Ok(())
}

macro_rules! rm_rows {
    ($h:ident; $c8:ident, $c16:ident, $c32:ident, $c64:ident) => {
        [
            Row::rm(C::$c8, $h::<W8, false>, $h::<W8, true>),
            Row::rm(C::$c16, $h::<W16, false>, $h::<W16, true>),
            Row::rm(C::$c32, $h::<W32, false>, $h::<W32, true>),
            Row::rm(C::$c64, $h::<W64, false>, $h::<W64, true>),
        ]
    };
}

const MUL: [Row; 4] = rm_rows!(exec_mul; Mul_rm8, Mul_rm16, Mul_rm32, Mul_rm64);
const IMUL1: [Row; 4] = rm_rows!(exec_imul1; Imul_rm8, Imul_rm16, Imul_rm32, Imul_rm64);
const DIV: [Row; 4] = rm_rows!(exec_div; Div_rm8, Div_rm16, Div_rm32, Div_rm64);
const IDIV: [Row; 4] = rm_rows!(exec_idiv; Idiv_rm8, Idiv_rm16, Idiv_rm32, Idiv_rm64);
const IMUL23: [Row; 9] = [
    Row::rm(C::Imul_r16_rm16, exec_imul2::<W16, false>, exec_imul2::<W16, true>),
    Row::rm(C::Imul_r32_rm32, exec_imul2::<W32, false>, exec_imul2::<W32, true>),
    Row::rm(C::Imul_r64_rm64, exec_imul2::<W64, false>, exec_imul2::<W64, true>),
    Row::rm(C::Imul_r16_rm16_imm16, exec_imul3::<W16, false>, exec_imul3::<W16, true>),
    Row::rm(C::Imul_r32_rm32_imm32, exec_imul3::<W32, false>, exec_imul3::<W32, true>),
    Row::rm(C::Imul_r64_rm64_imm32, exec_imul3::<W64, false>, exec_imul3::<W64, true>),
    Row::rm(C::Imul_r16_rm16_imm8, exec_imul3::<W16, false>, exec_imul3::<W16, true>),
    Row::rm(C::Imul_r32_rm32_imm8, exec_imul3::<W32, false>, exec_imul3::<W32, true>),
    Row::rm(C::Imul_r64_rm64_imm8, exec_imul3::<W64, false>, exec_imul3::<W64, true>),
];

pub(crate) const ROWS: &[&[Row]] = &[&MUL, &IMUL1, &DIV, &IDIV, &IMUL23];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::hosttest::{check, host, values, Guest, Regs, FLAGS, FLAG_INPUTS};
    use crate::exception::vector;
    use crate::state::rflags;

    /// Every pair of interesting values of `bits` in RAX/RCX (RDX = `rdx`), both flag inputs.
    fn pairs(bits: u32, rdx: u64) -> Vec<Regs> {
        let vs = values(bits, 24);
        let mut out = Vec::new();
        for &a in &vs {
            for &b in &vs {
                for f in FLAG_INPUTS {
                    // Garbage above the operand in every register checks the merge rules.
                    let hi = !((1u128 << bits) - 1) as u64 & 0xdead_beef_cafe_f00d;
                    out.push(Regs {
                        rax: a | hi,
                        rcx: b | hi,
                        rdx: rdx | hi,
                        flags: f,
                        mem: [b; 8],
                        ..Default::default()
                    });
                }
            }
        }
        out
    }

    const ALL: u64 = FLAGS;

    #[test]
    fn mul_and_one_operand_imul_match_the_host() {
        check(host!("mul cl"), pairs(8, 0), ALL);
        check(host!("mul cx"), pairs(16, 0), ALL);
        check(host!("mul ecx"), pairs(32, 0), ALL);
        check(host!("mul rcx"), pairs(64, 0), ALL);
        check(host!("imul cl"), pairs(8, 0), ALL);
        check(host!("imul cx"), pairs(16, 0), ALL);
        check(host!("imul ecx"), pairs(32, 0), ALL);
        check(host!("imul rcx"), pairs(64, 0), ALL);
        check(host!("mul byte ptr [r10]"), pairs(8, 0), ALL);
        check(host!("imul qword ptr [r10 - 8]"), pairs(64, 0), ALL);
        check(host!("mul ah"), pairs(16, 0), ALL);
    }

    #[test]
    fn two_and_three_operand_imul_match_the_host() {
        check(host!("imul cx, ax"), pairs(16, 0), ALL);
        check(host!("imul ecx, eax"), pairs(32, 0), ALL);
        check(host!("imul rcx, rax"), pairs(64, 0), ALL);
        check(host!("imul eax, dword ptr [r10]"), pairs(32, 0), ALL);
        check(host!("imul ax, cx, -3"), pairs(16, 0), ALL);
        check(host!("imul eax, ecx, 0x7fff1234"), pairs(32, 0), ALL);
        check(host!("imul rax, rcx, -0x80000000"), pairs(64, 0), ALL);
        check(host!("imul rax, qword ptr [r10+8], 100"), pairs(64, 0), ALL);
        check(host!("imul ax, word ptr [r10], 0x1234"), pairs(16, 0), ALL);
    }

    /// Dividend/divisor pairs that do not fault (the host would raise SIGFPE otherwise).
    fn div_cases(bits: u32, signed: bool) -> Vec<Regs> {
        let vs = values(bits, 20);
        let mut out = Vec::new();
        let sext =
            |v: u64| if bits == 64 { v as i64 as i128 } else { ((v << (64 - bits)) as i64 >> (64 - bits)) as i128 };
        for &hi in &vs {
            for &lo in &vs {
                for &d in &vs {
                    let (n, dd) = if bits == 8 {
                        ((hi << 8 | lo) as u128 & 0xffff, d as u128)
                    } else {
                        ((hi as u128) << bits | lo as u128, d as u128)
                    };
                    if dd == 0 {
                        continue;
                    }
                    let ok = if signed {
                        let sh = 128 - 2 * bits;
                        let n = ((n << sh) as i128) >> sh;
                        let q = n.wrapping_div(sext(d));
                        q >= -(1i128 << (bits - 1)) && q < (1i128 << (bits - 1))
                    } else {
                        n / dd < (1u128 << bits)
                    };
                    if ok {
                        let (rax, rdx) = if bits == 8 { (n as u64, 0) } else { (lo, hi) };
                        out.push(Regs { rax, rdx, rcx: d, mem: [d; 8], flags: rflags::ARITH, ..Default::default() });
                    }
                }
            }
        }
        assert!(out.len() > 100);
        out
    }

    #[test]
    fn div_and_idiv_match_the_host() {
        check(host!("div cl"), div_cases(8, false), ALL);
        check(host!("div cx"), div_cases(16, false), ALL);
        check(host!("div ecx"), div_cases(32, false), ALL);
        check(host!("div rcx"), div_cases(64, false), ALL);
        check(host!("idiv cl"), div_cases(8, true), ALL);
        check(host!("idiv cx"), div_cases(16, true), ALL);
        check(host!("idiv ecx"), div_cases(32, true), ALL);
        check(host!("idiv rcx"), div_cases(64, true), ALL);
        check(host!("div qword ptr [r10]"), div_cases(64, false), ALL);
        check(
            host!("idiv byte ptr [r10+1]"),
            div_cases(8, true).into_iter().map(|mut r| {
                r.mem[4] = r.rcx << 8;
                r
            }),
            ALL,
        );
    }

    #[test]
    fn divide_errors_fault_before_any_register_changes() {
        // SDM DIV/IDIV: #DE when the divisor is 0 or the quotient is too large for the destination.
        let mut g = Guest::new();
        let cases: &[(&[u8], Regs)] = &[
            (&[0xf6, 0xf1], Regs { rax: 0x1234, rcx: 0, ..Default::default() }), // div cl, by 0
            (&[0xf6, 0xf1], Regs { rax: 0x1234, rcx: 0x12, ..Default::default() }), // quotient 0x102
            (&[0x48, 0xf7, 0xf1], Regs { rax: 0, rdx: 5, rcx: 5, ..Default::default() }), // div rcx
            // idiv rcx: i64::MIN / -1
            (&[0x48, 0xf7, 0xf9], Regs { rax: 1 << 63, rdx: u64::MAX, rcx: u64::MAX, ..Default::default() }),
            // idiv ecx: 0x80000000 / -1
            (&[0xf7, 0xf9], Regs { rax: 0x8000_0000, rdx: u64::MAX, rcx: u64::MAX, ..Default::default() }),
            // idiv cx: 0x8000 / -1
            (&[0x66, 0xf7, 0xf9], Regs { rax: 0x8000, rdx: 0xffff, rcx: 0xffff, ..Default::default() }),
        ];
        for (code, r) in cases {
            let r = Regs { flags: rflags::CF | rflags::ZF, ..*r };
            let f = g.fault(code, &r);
            assert_eq!(f.vector, vector::DE);
            let after = g.save();
            assert_eq!(after, Regs { flags: r.flags | 0x202, ..r }, "{code:x?}");
        }
    }
}
