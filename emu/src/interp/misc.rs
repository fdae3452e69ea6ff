//! Miscellaneous general-purpose instructions (SDM Vol. 2, those entries):
//! - CPUID: the identity of the machine's CPU model (`system::cpu_model`), whose features are
//!   a subset of what tier 0 implements (`IMPLEMENTED`), and only that.
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
use crate::system::cpu_model::{CpuModel, Vendor};
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

/// Every CPUID feature bit tier 0 implements, per register, gathered from the family files
/// ([EAX=1 ECX, EAX=1 EDX, EAX=7 EBX, 8000_0001h ECX, 8000_0001h EDX, EAX=7 ECX]). A CPU model
/// (`system::cpu_model`) reports a subset of these; MCE/MCA (the machine-check MSRs with no
/// banks, `system::msr`) and the hypervisor bit are system-level and also allowed.
pub const IMPLEMENTED: [u32; 6] = [
    CPUID1_ECX_BASE | super::sse::CPUID1_ECX | (1 << 31),
    IMPLEMENTED_EDX1,
    super::bit::bmi::CPUID7_EBX | super::arith::CPUID7_EBX | CPUID7_EBX_ACCESS_RIGHTS,
    CPUID_EXT1_ECX,
    CPUID_EXT1_EDX | (IMPLEMENTED_EDX1 & crate::system::cpu_model::ext1::EDX_AMD_MIRROR),
    CPUID7_ECX_ACCESS_RIGHTS,
];
/// SMEP and SMAP (the page walk, `interp::access_rights` for STAC/CLAC).
const CPUID7_EBX_ACCESS_RIGHTS: u32 = crate::system::cpu_model::ebx7::SMEP | crate::system::cpu_model::ebx7::SMAP;
/// PKU and PKS (the page walk, RDPKRU/WRPKRU, IA32_PKRS).
const CPUID7_ECX_ACCESS_RIGHTS: u32 = crate::system::cpu_model::ecx7::PKU | crate::system::cpu_model::ecx7::PKS;
/// ... with DE (2: CR4.DE and the DR4/DR5 rule, `interp::sys`; its I/O breakpoints never match)
/// and SEP (`interp::sysenter`).
const IMPLEMENTED_EDX1: u32 = CPUID1_EDX_BASE
    | super::sse::CPUID1_EDX
    | super::x87::CPUID1_EDX
    | (1 << 7)
    | (1 << 14)
    | (1 << 2)
    | super::sysenter::CPUID1_EDX;

/// CPUID leaf `leaf`/`sub` of `model` as [EAX, EBX, ECX, EDX]. Features are reported only when
/// they are implemented and tested (glibc picks its string functions from these bits).
pub fn cpuid(model: &CpuModel, leaf: u32, sub: u32) -> [u32; 4] {
    let f = &model.features;
    let in_range = if leaf >= 0x8000_0000 { leaf <= model.max_ext } else { leaf <= model.max_basic };
    if !in_range {
        return [0; 4];
    }
    match (model.vendor, leaf) {
        (_, 0) => {
            let v = model.vendor.id();
            let w = |i: usize| u32::from_le_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
            [model.max_basic, w(0), w(8), w(4)]
        }
        // EBX: CLFLUSH line size 8 x 8 bytes, one logical processor, initial APIC ID 0.
        (_, 1) => [model.signature, 0x0001_0800, f.leaf1_ecx, f.leaf1_edx],
        // Leaf 2: descriptor FFh, "no cache descriptors here, use leaf 4" (SDM table 3-12).
        (Vendor::Intel, 2) => [0x0000_ff01, 0, 0, 0],
        (Vendor::Intel, 4) => match model.caches.get(sub as usize) {
            Some(c) => {
                // EAX: type, level, self-initializing (bit 8); one thread shares it, one core
                // per package (the [25:14] and [31:26] fields are counts minus one).
                let eax = u32::from(c.kind) | u32::from(c.level) << 5 | 1 << 8;
                let ebx = (c.line - 1) | (c.ways - 1) << 22;
                [eax, ebx, c.sets() - 1, 0]
            }
            None => [0; 4],
        },
        // Structured extended features (subleaf 0 only).
        (_, 7) if sub == 0 => [0, f.leaf7_ebx, f.leaf7_ecx, 0],
        // Topology: one thread (SMT level, type 1) in one core (core level, type 2), x2APIC ID
        // 0; each level's EAX is the APIC-ID shift to the next, 0 with one of each.
        (Vendor::Intel, 0xb) => match sub {
            0 => [0, 1, 1 << 8, 0],
            1 => [0, 1, 1 | 2 << 8, 0],
            _ => [0, 0, sub & 0xff, 0],
        },
        (_, 0x8000_0000) => [model.max_ext, 0, 0, 0],
        (Vendor::Amd, 0x8000_0001) => [model.signature, 0, f.ext1_ecx, f.ext1_edx],
        (_, 0x8000_0001) => [0, 0, f.ext1_ecx, f.ext1_edx],
        (_, 0x8000_0002..=0x8000_0004) => {
            let mut brand = [0u8; 48];
            let n = model.brand.len().min(47);
            brand[..n].copy_from_slice(&model.brand.as_bytes()[..n]);
            let base = (leaf - 0x8000_0002) as usize * 16;
            let mut r = [0u32; 4];
            for (i, w) in r.iter_mut().enumerate() {
                let b = &brand[base + 4 * i..base + 4 * i + 4];
                *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            r
        }
        // AMD L1: TLBs (2M/4M: 8 entries, 4K: 32 entries, fully associative), then L1D in ECX
        // and L1I in EDX: size KiB [31:24], ways [23:16], lines per tag [15:8], line [7:0].
        (Vendor::Amd, 0x8000_0005) => {
            let l1 = |c: Option<&crate::system::cpu_model::Cache>| {
                c.map_or(0, |c| c.size_kib << 24 | c.ways << 16 | 1 << 8 | c.line)
            };
            [0xff08_ff08, 0xff20_ff20, l1(model.caches.first()), l1(model.caches.get(1))]
        }
        // L2: size KiB [31:16], associativity code [15:12], lines per tag [11:8], line [7:0]
        // (AMD codes: 2 = 2-way, 4 = 4-way, 6 = 8-way, 8 = 16-way; Intel uses the same layout).
        (_, 0x8000_0006) => {
            let l2 = model.caches.iter().find(|c| c.level == 2).map_or(0, |c| {
                let code = match c.ways {
                    1 => 1,
                    2 => 2,
                    4 => 4,
                    8 => 6,
                    16 => 8,
                    _ => 0xf,
                };
                c.size_kib << 16 | code << 12 | 1 << 8 | c.line
            });
            [0, 0, l2, 0]
        }
        (_, 0x8000_0007) => [0, 0, 0, f.ext7_edx],
        // 40 physical and 48 linear address bits; ECX (AMD): one core.
        (_, 0x8000_0008) => [0x3028, 0, 0, 0],
        _ => [0; 4],
    }
}

pub fn exec_cpuid(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let g = &mut cpu.state.gpr;
    let mut r = cpuid(cpu.config.model, g[0] as u32, g[1] as u32);
    // OSPKE mirrors CR4.PKE (SDM Vol. 2A, CPUID leaf 07h ECX bit 4).
    if g[0] as u32 == 7 && g[1] as u32 == 0 && cpu.state.cr4 & (1 << 22) != 0 {
        r[2] |= crate::system::cpu_model::ecx7::OSPKE;
    }
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
    use super::{cpuid, IMPLEMENTED};
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
        assert!(brand.starts_with(b"Strata virtual CPU (AMD K8 class)\0"));
        let _ = rflags::CF;
    }

    #[test]
    fn every_model_reports_only_what_tier0_implements() {
        use crate::system::cpu_model::MODELS;
        for m in MODELS {
            let regs = [
                cpuid(m, 1, 0)[2],
                cpuid(m, 1, 0)[3],
                cpuid(m, 7, 0)[1],
                cpuid(m, 0x8000_0001, 0)[2],
                cpuid(m, 0x8000_0001, 0)[3],
                cpuid(m, 7, 0)[2],
            ];
            for (i, (r, imp)) in regs.iter().zip(IMPLEMENTED).enumerate() {
                assert_eq!(r & !imp, 0, "{}: register {i} reports {:#x} beyond tier 0", m.name, r & !imp);
            }
        }
    }

    #[test]
    fn identity_leaves_follow_the_manuals() {
        use crate::system::cpu_model::{BROADWELL, K8};
        // CPUID.0: vendor in EBX, EDX, ECX (SDM Vol. 2A, CPUID; APM Vol. 3, E.3.1).
        let v = |m| {
            let r = cpuid(m, 0, 0);
            [r[1], r[3], r[2]].iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>()
        };
        assert_eq!(v(&K8), b"AuthenticAMD");
        assert_eq!(v(&BROADWELL), b"GenuineIntel");
        // Displayed family = family + extended family; model = extended model << 4 | model.
        let fms = |m| {
            let a = cpuid(m, 1, 0)[0];
            let fam = (a >> 8 & 0xf) + if a >> 8 & 0xf == 0xf { a >> 20 & 0xff } else { 0 };
            (fam, (a >> 16 & 0xf) << 4 | (a >> 4 & 0xf), a & 0xf)
        };
        assert_eq!(fms(&K8), (0xf, 0x6b, 2));
        assert_eq!(fms(&BROADWELL), (6, 0x3d, 4));
        // Intel leaf 4: L1D 32 KiB = ways x partitions x line x sets (SDM Vol. 2A, leaf 04h).
        let r = cpuid(&BROADWELL, 4, 0);
        assert_eq!(r[0] & 0x1f, 1);
        let size = ((r[1] >> 22) + 1) * ((r[1] >> 12 & 0x3ff) + 1) * ((r[1] & 0xfff) + 1) * (r[2] + 1);
        assert_eq!(size, 32 * 1024);
        assert_eq!(cpuid(&BROADWELL, 4, 4)[0] & 0x1f, 0, "no fifth cache");
        // Leaf 0Bh: SMT level then core level, one logical processor each.
        assert_eq!(cpuid(&BROADWELL, 0xb, 0)[2] >> 8 & 0xff, 1);
        assert_eq!(cpuid(&BROADWELL, 0xb, 1)[2] >> 8 & 0xff, 2);
        assert_eq!(cpuid(&BROADWELL, 0xb, 2)[1], 0);
        // AMD 8000_0005h ECX: L1D 64 KiB, 2-way, 64-byte lines (APM Vol. 3, E.4.4).
        assert_eq!(cpuid(&K8, 0x8000_0005, 0)[2], 64 << 24 | 2 << 16 | 1 << 8 | 64);
        // Leaves past the maximum report nothing on these models' AMD conventions.
        assert_eq!(cpuid(&K8, 0xb, 0), [0; 4]);
    }
}
