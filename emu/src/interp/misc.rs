//! Miscellaneous general-purpose instructions (SDM Vol. 2, those entries):
//! - CPUID: the feature set tier 0 implements, and only that.
//! - Exchanges: XCHG r/m, r (all widths; the memory form is a locked read-modify-write, which on
//!   one vCPU is the same as an unlocked one) and XCHG r, rAX (90+r); CMPXCHG r/m, r (all
//!   widths); CMPXCHG8B m64; CMPXCHG16B m128 (#GP(0) unless 16-byte aligned); XADD r/m, r.
//! - Sign extensions: CBW/CWDE/CDQE, CWD/CDQ/CQO.
//! - XLAT (AL = [rBX + AL], any segment override, address size from the prefix).
//!
//! LOCK is accepted wherever iced-x86 accepts it (it rejects the invalid uses, which decode to
//! `exec_ud`); with a single vCPU a locked RMW is an ordinary RMW.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{ExecResult, Fault, Stop};
use crate::flags::{Width, W16, W32, W64, W8};
use iced_x86::Code as C;

/// CPUID.1:EDX bits for the general-purpose and system instructions this family file and its
/// neighbours implement: FPU (0), TSC (4), CX8 (8), CMOV (15). Each family that implements an
/// extension adds its bits in its own file (`sse::CPUID1_EDX`, `sse::CPUID1_ECX`, ...).
pub const CPUID1_EDX_BASE: u32 = (1 << 0) | (1 << 4) | (1 << 8) | (1 << 15) | CPUID1_EDX_SYSTEM;
/// The system-level features of the virtual PC (`system/`, `mmu/`, the LAPIC): PSE (3, large
/// pages), MSR (5, RDMSR/WRMSR), PAE (6, PAE page-table format as used by IA-32e paging), APIC
/// (9), PGE (13, global pages), PAT (16, IA32_PAT), CLFSH (19, CLFLUSH with the line size in
/// leaf 1 EBX[15:8]). Legacy (non-IA-32e) paging is not modelled; no 64-bit kernel uses it.
pub const CPUID1_EDX_SYSTEM: u32 = (1 << 3) | (1 << 5) | (1 << 6) | (1 << 9) | (1 << 13) | (1 << 16) | (1 << 19);
/// CPUID.1:ECX: CMPXCHG16B (13), MOVBE (22), POPCNT (23, from `bit.rs`).
pub const CPUID1_ECX_BASE: u32 = (1 << 13) | (1 << 22) | super::bit::CPUID1_ECX;
/// CPUID.8000_0001h:ECX: LAHF/SAHF in 64-bit mode (0), LZCNT (5, from `bit.rs`).
pub const CPUID_EXT1_ECX: u32 = 1 | super::bit::CPUID_EXT1_ECX;
/// CPUID.8000_0001h:EDX: SYSCALL (11), NX (20), RDTSCP (27), LM (29).
pub const CPUID_EXT1_EDX: u32 = (1 << 11) | (1 << 20) | (1 << 27) | (1 << 29);

/// The processor brand string (CPUID 8000_0002h..8000_0004h), NUL-padded to 48 bytes.
const BRAND: &[u8; 48] = b"Strata x86-64 virtual CPU\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// CPUID leaf `leaf`/`sub` as [EAX, EBX, ECX, EDX]. Features are reported only when they are
/// implemented and tested (glibc picks its string functions from these bits).
pub fn cpuid(leaf: u32, _sub: u32) -> [u32; 4] {
    match leaf {
        // Vendor "StrataVirtPC": EBX, EDX, ECX in that order.
        0 => [0xd, u32::from_le_bytes(*b"Stra"), u32::from_le_bytes(*b"rtPC"), u32::from_le_bytes(*b"taVi")],
        1 => [
            0x0005_0650,
            0x0000_0800,
            CPUID1_ECX_BASE | super::sse::CPUID1_ECX,
            CPUID1_EDX_BASE | super::sse::CPUID1_EDX | super::x87::CPUID1_EDX,
        ],
        // Structured extended features (subleaf 0): BMI1, BMI2, ADX.
        7 if _sub == 0 => [0, super::bit::bmi::CPUID7_EBX | super::arith::CPUID7_EBX, 0, 0],
        0x8000_0000 => [0x8000_0008, 0, 0, 0],
        0x8000_0001 => [0, 0, CPUID_EXT1_ECX, CPUID_EXT1_EDX],
        0x8000_0002..=0x8000_0004 => {
            let base = (leaf - 0x8000_0002) as usize * 16;
            let mut r = [0u32; 4];
            for (i, w) in r.iter_mut().enumerate() {
                let b = &BRAND[base + 4 * i..base + 4 * i + 4];
                *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            r
        }
        0x8000_0008 => [0x3028, 0, 0, 0],
        _ => [0; 4],
    }
}

pub fn exec_cpuid(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let g = &mut cpu.state.gpr;
    let r = cpuid(g[0] as u32, g[1] as u32);
    g[0] = r[0] as u64;
    g[3] = r[1] as u64;
    g[1] = r[2] as u64;
    g[2] = r[3] as u64;
    Ok(())
}

/// `xchg r, r` (and `xchg r, rAX`).
pub fn exec_xchg_r_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let a = cpu.get::<W>(e.dst);
    let b = cpu.get::<W>(e.src);
    cpu.set::<W>(e.dst, b);
    cpu.set::<W>(e.src, a);
    Ok(())
}

/// `xchg m, r`: translated for write first; the register changes only after the store.
pub fn exec_xchg_m_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let loc = cpu.translate_rmw::<W>(cpu.ea(e))?;
    let old = cpu.read_loc::<W>(loc);
    let v = cpu.get::<W>(e.src);
    cpu.write_loc::<W>(loc, v);
    cpu.set::<W>(e.src, old);
    Ok(())
}

/// `cmpxchg r, r`: flags as `cmp rAX, dst`; equal: dst = src, else rAX = dst.
pub fn exec_cmpxchg_r_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let acc = cpu.get::<W>(0);
    let d = cpu.get::<W>(e.dst);
    cpu.state.lazy.set_oszapc_sub::<W>(acc, d, acc.wrapping_sub(d) & W::MASK);
    if acc == d {
        let s = cpu.get::<W>(e.src);
        cpu.set::<W>(e.dst, s);
    } else {
        cpu.set::<W>(0, d);
    }
    Ok(())
}

/// `cmpxchg m, r`: always a write cycle (the old value is written back when unequal, as the
/// locked hardware operation does), so a read-only page faults either way.
pub fn exec_cmpxchg_m_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let loc = cpu.translate_rmw::<W>(cpu.ea(e))?;
    let d = cpu.read_loc::<W>(loc);
    let acc = cpu.get::<W>(0);
    let s = cpu.get::<W>(e.src);
    cpu.write_loc::<W>(loc, if acc == d { s } else { d });
    cpu.state.lazy.set_oszapc_sub::<W>(acc, d, acc.wrapping_sub(d) & W::MASK);
    if acc != d {
        cpu.set::<W>(0, d);
    }
    Ok(())
}

/// Sets ZF alone (CMPXCHG8B/16B leave the other flags unchanged).
fn set_zf(cpu: &mut Cpu, zf: bool) {
    if cpu.state.lazy.zf() != zf {
        cpu.state.lazy.force_zf(zf);
    }
}

/// `cmpxchg8b m64`: EDX:EAX against m64; equal: m64 = ECX:EBX, else EDX:EAX = m64.
pub fn exec_cmpxchg8b(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let loc = cpu.translate_rmw::<W64>(cpu.ea(e))?;
    let m = cpu.read_loc::<W64>(loc);
    let g = &cpu.state.gpr;
    let acc = (g[2] & 0xffff_ffff) << 32 | (g[0] & 0xffff_ffff);
    let new = (g[1] & 0xffff_ffff) << 32 | (g[3] & 0xffff_ffff);
    let eq = acc == m;
    cpu.write_loc::<W64>(loc, if eq { new } else { m });
    if !eq {
        cpu.set::<W32>(0, m);
        cpu.set::<W32>(2, m >> 32);
    }
    set_zf(cpu, eq);
    Ok(())
}

/// `cmpxchg16b m128`: RDX:RAX against m128; equal: m128 = RCX:RBX, else RDX:RAX = m128.
/// #GP(0) unless the operand is 16-byte aligned (SDM CMPXCHG16B).
pub fn exec_cmpxchg16b(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let la = cpu.ea(e);
    if la & 15 != 0 {
        return Err(Stop::Fault(Fault::gp0()));
    }
    // Both halves lie in one page (aligned), so the second translation cannot fault.
    let lo_loc = cpu.translate_rmw::<W64>(la)?;
    let hi_loc = cpu.translate_rmw::<W64>(la.wrapping_add(8))?;
    let lo = cpu.read_loc::<W64>(lo_loc);
    let hi = cpu.read_loc::<W64>(hi_loc);
    let g = cpu.state.gpr;
    let eq = lo == g[0] && hi == g[2];
    let (wlo, whi) = if eq { (g[3], g[1]) } else { (lo, hi) };
    cpu.write_loc::<W64>(lo_loc, wlo);
    cpu.write_loc::<W64>(hi_loc, whi);
    if !eq {
        cpu.state.gpr[0] = lo;
        cpu.state.gpr[2] = hi;
    }
    set_zf(cpu, eq);
    Ok(())
}

/// `xadd r, r`: src = old dst, dst = sum (the sum wins when both name one register).
pub fn exec_xadd_r_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let d = cpu.get::<W>(e.dst);
    let s = cpu.get::<W>(e.src);
    let r = d.wrapping_add(s) & W::MASK;
    cpu.state.lazy.set_oszapc_add::<W>(d, s, r);
    cpu.set::<W>(e.src, d);
    cpu.set::<W>(e.dst, r);
    Ok(())
}

/// `xadd m, r`
pub fn exec_xadd_m_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let loc = cpu.translate_rmw::<W>(cpu.ea(e))?;
    let d = cpu.read_loc::<W>(loc);
    let s = cpu.get::<W>(e.src);
    let r = d.wrapping_add(s) & W::MASK;
    cpu.write_loc::<W>(loc, r);
    cpu.state.lazy.set_oszapc_add::<W>(d, s, r);
    cpu.set::<W>(e.src, d);
    Ok(())
}

/// CBW / CWDE / CDQE: rAX = sign-extended lower half (`W` is the destination width).
pub fn exec_cbw<W: Width>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let half = W::BITS / 2;
    let v = cpu.get::<W>(0) & ((1u64 << half) - 1);
    let s = ((v << (64 - half)) as i64 >> (64 - half)) as u64;
    cpu.set::<W>(0, s & W::MASK);
    Ok(())
}

/// CWD / CDQ / CQO: rDX = all copies of rAX's sign bit.
pub fn exec_cwd<W: Width>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let neg = cpu.get::<W>(0) & W::SIGN != 0;
    cpu.set::<W>(2, if neg { W::MASK } else { 0 });
    Ok(())
}

/// `xlat`: AL = [seg: rBX + zero-extended AL], wrapped to the address size.
pub fn exec_xlat(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let off = cpu.state.gpr[3].wrapping_add(cpu.state.gpr[0] & 0xff) & e.amask;
    let v = cpu.read::<W8>(cpu.seg_addr(e.seg, off, e.lmask))?;
    cpu.set::<W8>(0, v);
    Ok(())
}

const MISC: &[Row] = &[
    Row::reg(C::Cpuid, exec_cpuid),
    Row::rm(C::Xchg_rm8_r8, exec_xchg_r_r::<W8>, exec_xchg_m_r::<W8>),
    Row::rm(C::Xchg_rm16_r16, exec_xchg_r_r::<W16>, exec_xchg_m_r::<W16>),
    Row::rm(C::Xchg_rm32_r32, exec_xchg_r_r::<W32>, exec_xchg_m_r::<W32>),
    Row::rm(C::Xchg_rm64_r64, exec_xchg_r_r::<W64>, exec_xchg_m_r::<W64>),
    Row::reg(C::Xchg_r16_AX, exec_xchg_r_r::<W16>),
    Row::reg(C::Xchg_r32_EAX, exec_xchg_r_r::<W32>),
    Row::reg(C::Xchg_r64_RAX, exec_xchg_r_r::<W64>),
    Row::rm(C::Cmpxchg_rm8_r8, exec_cmpxchg_r_r::<W8>, exec_cmpxchg_m_r::<W8>),
    Row::rm(C::Cmpxchg_rm16_r16, exec_cmpxchg_r_r::<W16>, exec_cmpxchg_m_r::<W16>),
    Row::rm(C::Cmpxchg_rm32_r32, exec_cmpxchg_r_r::<W32>, exec_cmpxchg_m_r::<W32>),
    Row::rm(C::Cmpxchg_rm64_r64, exec_cmpxchg_r_r::<W64>, exec_cmpxchg_m_r::<W64>),
    Row::mem(C::Cmpxchg8b_m64, exec_cmpxchg8b),
    Row::mem(C::Cmpxchg16b_m128, exec_cmpxchg16b),
    Row::rm(C::Xadd_rm8_r8, exec_xadd_r_r::<W8>, exec_xadd_m_r::<W8>),
    Row::rm(C::Xadd_rm16_r16, exec_xadd_r_r::<W16>, exec_xadd_m_r::<W16>),
    Row::rm(C::Xadd_rm32_r32, exec_xadd_r_r::<W32>, exec_xadd_m_r::<W32>),
    Row::rm(C::Xadd_rm64_r64, exec_xadd_r_r::<W64>, exec_xadd_m_r::<W64>),
    Row::reg(C::Cbw, exec_cbw::<W16>),
    Row::reg(C::Cwde, exec_cbw::<W32>),
    Row::reg(C::Cdqe, exec_cbw::<W64>),
    Row::reg(C::Cwd, exec_cwd::<W16>),
    Row::reg(C::Cdq, exec_cwd::<W32>),
    Row::reg(C::Cqo, exec_cwd::<W64>),
    Row::any(C::Xlat_m8, exec_xlat),
];

pub(crate) const ROWS: &[&[Row]] = &[MISC];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::hosttest::{check, host, values, Guest, Regs, FLAGS, FLAG_INPUTS};
    use crate::exception::vector;
    use crate::state::rflags;

    /// RAX, RCX, RDX and memory from the interesting values, sometimes equal to each other (so
    /// CMPXCHG takes both paths).
    fn cases(bits: u32) -> Vec<Regs> {
        let vs = values(bits, 10);
        let junk = if bits == 64 { 0 } else { 0xa5a5_a5a5_a5a5_a5a5u64 & !((1u64 << bits) - 1) };
        let mut out = Vec::new();
        for (i, &a) in vs.iter().enumerate() {
            for (j, &b) in vs.iter().enumerate() {
                let c = vs[(i * 7 + j) % vs.len()];
                for f in FLAG_INPUTS {
                    let m = if (i + j) % 3 == 0 { a } else { c };
                    out.push(Regs {
                        rax: a | junk,
                        rcx: b | junk,
                        rdx: if j % 2 == 0 { a | junk } else { c | junk },
                        r8: b ^ 0x77,
                        flags: f,
                        mem: [m, m ^ 1, a, b, m, a, c, m],
                        ..Default::default()
                    });
                }
            }
        }
        out
    }

    #[test]
    fn xchg_xadd_cmpxchg_match_the_host() {
        check(host!("xchg cl, dl"), cases(8), FLAGS);
        check(host!("xchg ah, cl"), cases(8), FLAGS);
        check(host!("xchg cx, dx"), cases(16), FLAGS);
        check(host!("xchg ecx, edx"), cases(32), FLAGS);
        check(host!("xchg eax, eax"), cases(32), FLAGS);
        check(host!("xchg rcx, rax"), cases(64), FLAGS);
        check(host!("xchg ecx, eax"), cases(32), FLAGS);
        check(host!("xchg cx, ax"), cases(16), FLAGS);
        check(host!("xchg r8, rax"), cases(64), FLAGS);
        check(host!("xchg qword ptr [r10], rcx"), cases(64), FLAGS);
        check(host!("xchg rdi, r10", "xchg byte ptr [rdi + 1], dh", "xchg rdi, r10"), cases(8), FLAGS);
        check(host!("lock xchg word ptr [r10 - 2], cx"), cases(16), FLAGS);
        check(host!("xadd cl, dl"), cases(8), FLAGS);
        check(host!("xadd ecx, edx"), cases(32), FLAGS);
        check(host!("xadd rcx, rcx"), cases(64), FLAGS);
        check(host!("lock xadd qword ptr [r10], rcx"), cases(64), FLAGS);
        check(host!("xadd word ptr [r10 + 6], cx"), cases(16), FLAGS);
        for_each_width_cmpxchg();
    }

    fn for_each_width_cmpxchg() {
        check(host!("cmpxchg cl, dl"), cases(8), FLAGS);
        check(host!("cmpxchg cx, dx"), cases(16), FLAGS);
        check(host!("cmpxchg ecx, edx"), cases(32), FLAGS);
        check(host!("cmpxchg rcx, rdx"), cases(64), FLAGS);
        check(host!("cmpxchg eax, edx"), cases(32), FLAGS);
        check(host!("cmpxchg edx, eax"), cases(32), FLAGS);
        check(host!("cmpxchg byte ptr [r10], dl"), cases(8), FLAGS);
        check(host!("lock cmpxchg dword ptr [r10], edx"), cases(32), FLAGS);
        check(host!("lock cmpxchg qword ptr [r10 + 8], rdx"), cases(64), FLAGS);
        check(host!("cmpxchg word ptr [r10 - 4], dx"), cases(16), FLAGS);
    }

    #[test]
    fn cmpxchg8b_and_16b_match_the_host() {
        // RBX cannot be an asm! operand: R9 carries it in and out.
        let mk = |r: Regs, eq: bool| {
            let mut r = r;
            r.r9 = r.rcx ^ 0x1111;
            if eq {
                r.mem[4] = (r.rdx << 32) | (r.rax & 0xffff_ffff);
                r.mem[5] = r.rdx;
            }
            r
        };
        let inputs = || cases(64).into_iter().enumerate().map(move |(i, r)| mk(r, i % 2 == 0));
        check(host!("xchg rbx, r9", "cmpxchg8b qword ptr [r10]", "xchg rbx, r9"), inputs(), FLAGS);
        check(host!("xchg rbx, r9", "lock cmpxchg8b qword ptr [r10 + 3]", "xchg rbx, r9"), inputs(), FLAGS);
        let inputs16 = || {
            cases(64).into_iter().enumerate().map(|(i, r)| {
                let mut r = mk(r, false);
                if i % 2 == 0 {
                    r.mem[4] = r.rax;
                }
                if i % 4 < 2 {
                    r.mem[5] = r.rdx;
                }
                r
            })
        };
        check(host!("xchg rbx, r9", "lock cmpxchg16b xmmword ptr [r10]", "xchg rbx, r9"), inputs16(), FLAGS);
    }

    #[test]
    fn cmpxchg16b_needs_16_byte_alignment() {
        // SDM CMPXCHG16B: #GP(0) if the memory operand is not aligned on a 16-byte boundary.
        let mut g = Guest::new();
        let code = &[0x49, 0x0f, 0xc7, 0x4a, 0x08]; // cmpxchg16b [r10 + 8] (not run on the host)
        let r = Regs { rax: 5, ..Default::default() };
        let f = g.fault(code, &r);
        assert_eq!((f.vector, f.error_code), (vector::GP, 0));
        assert_eq!(g.save().rax, 5);
    }

    #[test]
    fn sign_extensions_and_xlat_match_the_host() {
        let inputs = || {
            values(64, 30).into_iter().flat_map(|v| {
                FLAG_INPUTS.map(|f| Regs {
                    rax: v,
                    rdx: !v,
                    flags: f,
                    mem: [0x0706050403020100 ^ v; 8],
                    ..Default::default()
                })
            })
        };
        for code in [host!("cbw"), host!("cwde"), host!("cdqe"), host!("cwd"), host!("cdq"), host!("cqo")] {
            check(code, inputs(), FLAGS);
        }
        // xlat with rBX = the buffer: swap RBX and R10 around it (R10 = the buffer on both sides).
        check(
            host!("xchg rbx, r10", "xlatb", "xchg rbx, r10"),
            inputs().map(|r| Regs { rax: r.rax & !0xe0, ..r }),
            FLAGS,
        );
    }

    #[test]
    fn cpuid_reports_what_is_implemented() {
        let mut g = Guest::new();
        let (_, r) = g.run(&[0x0f, 0xa2], &Regs { rax: 1, ..Default::default() });
        // SDM CPUID leaf 1: EDX bits FPU 0, TSC 4, CX8 8, CMOV 15; ECX CX16 13, MOVBE 22, POPCNT 23.
        for bit in [0, 4, 8, 15] {
            assert!(r.rdx >> bit & 1 == 1, "edx bit {bit}");
        }
        for bit in [13, 22, 23] {
            assert!(r.rcx >> bit & 1 == 1, "ecx bit {bit}");
        }
        // Leaf 7 subleaf 0: EBX BMI1 (3), BMI2 (8); subleaf 1: nothing.
        assert!(g.run(&[0x0f, 0xa2], &Regs { rax: 7, ..Default::default() }).0.is_ok());
        assert_eq!(g.cpu.state.gpr[3] & 0x8_0108, 0x8_0108); // and ADX (19)
        assert!(g.run(&[0x0f, 0xa2], &Regs { rax: 7, rcx: 1, ..Default::default() }).0.is_ok());
        assert_eq!(g.cpu.state.gpr[3], 0);
        let (_, r) = g.run(&[0x0f, 0xa2], &Regs { rax: 0x8000_0001, ..Default::default() });
        assert_eq!(r.rcx & 0x21, 0x21); // LAHF-SAHF, ABM (LZCNT)
        assert_eq!(r.rdx >> 27 & 1, 1); // RDTSCP
        let mut brand = Vec::new();
        for leaf in 0x8000_0002u64..=0x8000_0004 {
            let (_, r) = g.run(&[0x0f, 0xa2], &Regs { rax: leaf, ..Default::default() });
            g.cpu.state.gpr[0] = r.rax;
            let rbx = g.cpu.state.gpr[3];
            for w in [r.rax, rbx, r.rcx, r.rdx] {
                brand.extend_from_slice(&(w as u32).to_le_bytes());
            }
        }
        assert!(brand.starts_with(b"Strata x86-64 virtual CPU\0"));
        let _ = rflags::CF;
    }
}
