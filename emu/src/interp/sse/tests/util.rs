//! Test support for the SSE family: runs one instruction natively on the host (the oracle) and
//! in tier 0 from the very same bytes, and compares XMM0, XMM1, MXCSR, RAX, the arithmetic
//! flags and a 32-byte memory buffer addressed by RDX. Random operands come from proptest
//! strategies biased toward the floating-point edge cases.

use crate::cpu::Cpu;
use crate::exception::ExecResult;
use crate::mem::GuestRam;
use crate::state::{ctrl, rflags};
use proptest::prelude::*;

/// Guest address of the memory buffer (RDX points at it in both worlds).
pub const BUF: u64 = 0x2000;

/// Machine state an instruction is run from and leaves behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct St {
    pub x0: u128,
    pub x1: u128,
    pub mxcsr: u32,
    pub rax: u64,
    /// Arithmetic flags only (CF PF AF ZF SF OF).
    pub flags: u64,
    pub mem: [u8; 32],
}

impl St {
    pub fn new(x0: u128, x1: u128, mxcsr: u32) -> St {
        let mut mem = [0u8; 32];
        mem[..16].copy_from_slice(&x1.to_le_bytes());
        mem[16..].copy_from_slice(&x0.to_le_bytes());
        St { x0, x1, mxcsr, rax: x1 as u64 ^ (x1 >> 64) as u64, flags: 0, mem }
    }
}

/// A host function that runs the instruction, and where its bytes are.
pub struct Native {
    pub run: fn(&St) -> St,
    pub bytes: fn() -> &'static [u8],
}

#[repr(C, align(16))]
pub struct Buf(pub [u8; 32]);

/// Defines a [`Native`] for one instruction written in Intel syntax. The instruction may use
/// xmm0, xmm1, rax/eax and memory at [rdx] (rdi points there too); all exceptions must be masked in the MXCSR given.
macro_rules! native {
    ($insn:literal) => {{
        fn run(s: &$crate::interp::sse::testutil::St) -> $crate::interp::sse::testutil::St {
            use core::arch::x86_64::__m128i;
            let mut out = *s;
            let mut buf = $crate::interp::sse::testutil::Buf(s.mem);
            let mut mx = s.mxcsr;
            let mut saved = 0u32;
            let mut fl: u64;
            // SAFETY: u128 and __m128i are both 16 plain bytes.
            let (a, b): (__m128i, __m128i) = unsafe { (core::mem::transmute::<u128, __m128i>(s.x0), core::mem::transmute::<u128, __m128i>(s.x1)) };
            let (ra, rb): (__m128i, __m128i);
            // SAFETY: the block only touches the named registers, the two MXCSR slots and the
            // 32-byte buffer at rdx; the host MXCSR is saved first and restored last, and the
            // tests keep every exception masked so the instruction cannot trap.
            unsafe {
                core::arch::asm!(
                    "stmxcsr [{saved}]",
                    "push {fl}",
                    "popfq",
                    "ldmxcsr [{mx}]",
                    $insn,
                    "stmxcsr [{mx}]",
                    "pushfq",
                    "pop {fl}",
                    "ldmxcsr [{saved}]",
                    saved = in(reg) &mut saved,
                    mx = in(reg) &mut mx,
                    fl = inout(reg) (s.flags | 2) => fl,
                    inout("xmm0") a => ra,
                    inout("xmm1") b => rb,
                    inout("rax") s.rax => out.rax,
                    in("rdx") buf.0.as_mut_ptr(),
                    in("rdi") buf.0.as_mut_ptr(),
                );
                out.x0 = core::mem::transmute::<__m128i, u128>(ra);
                out.x1 = core::mem::transmute::<__m128i, u128>(rb);
            }
            out.mxcsr = mx;
            out.flags = fl & $crate::state::rflags::ARITH;
            out.mem = buf.0;
            out
        }
        fn bytes() -> &'static [u8] {
            let (start, end): (usize, usize);
            // SAFETY: only computes two addresses inside this function's own code.
            unsafe {
                core::arch::asm!(
                    "lea {s}, [rip + 2f]",
                    "lea {e}, [rip + 3f]",
                    "jmp 3f",
                    "2:",
                    $insn,
                    "3:",
                    s = out(reg) start,
                    e = out(reg) end,
                );
            }
            // SAFETY: [start, end) is the encoded instruction in this binary's text, which is
            // mapped readable for the life of the process.
            unsafe { core::slice::from_raw_parts(start as *const u8, end - start) }
        }
        $crate::interp::sse::testutil::Native { run, bytes }
    }};
}
pub(crate) use native;

/// A CPU with SSE enabled (CR4.OSFXSR, OSXMMEXCPT), paging off, 64 KiB of RAM.
pub fn sse_cpu() -> Cpu {
    let mut cpu = Cpu::new(GuestRam::new(1 << 16).expect("test RAM"));
    cpu.state.cr4 |= ctrl::CR4_OSFXSR | ctrl::CR4_OSXMMEXCPT;
    cpu
}

/// Decodes `bytes` as one 64-bit instruction and runs its tier-0 handler.
pub fn exec(cpu: &mut Cpu, bytes: &[u8]) -> ExecResult {
    let mut d = iced_x86::Decoder::with_ip(64, bytes, 0x1000, iced_x86::DecoderOptions::NONE);
    let insn = d.decode();
    let e = crate::decode::build_instr(&insn, 64);
    (e.exec)(cpu, &e)
}

/// Runs the instruction in tier 0 from state `s`.
pub fn emulate(bytes: &[u8], s: &St) -> (ExecResult, St) {
    let mut cpu = sse_cpu();
    cpu.state.xmm[0] = [s.x0 as u64, (s.x0 >> 64) as u64];
    cpu.state.xmm[1] = [s.x1 as u64, (s.x1 >> 64) as u64];
    cpu.state.mxcsr = s.mxcsr;
    cpu.state.gpr[0] = s.rax;
    cpu.state.gpr[2] = BUF;
    cpu.state.gpr[7] = BUF;
    cpu.state.set_rflags(rflags::FIXED1 | (s.flags & rflags::ARITH));
    cpu.ram.slice_mut(BUF, 32).expect("buffer").copy_from_slice(&s.mem);
    let r = exec(&mut cpu, bytes);
    let x = |i: usize| cpu.state.xmm[i][0] as u128 | (cpu.state.xmm[i][1] as u128) << 64;
    let mut mem = [0u8; 32];
    mem.copy_from_slice(cpu.ram.slice(BUF, 32).expect("buffer"));
    let out = St {
        x0: x(0),
        x1: x(1),
        mxcsr: cpu.state.mxcsr,
        rax: cpu.state.gpr[0],
        flags: cpu.state.rflags() & rflags::ARITH,
        mem,
    };
    (r, out)
}

/// Runs natively and in tier 0 and asserts the same outcome.
pub fn same(n: &Native, s: &St) -> Result<(), TestCaseError> {
    let want = (n.run)(s);
    let (r, got) = emulate((n.bytes)(), s);
    prop_assert!(r.is_ok(), "tier 0 stopped with {:?} for {:02x?}", r, (n.bytes)());
    prop_assert_eq!(got, want, "{:02x?} from x0={:#034x} x1={:#034x} mxcsr={:#x}", (n.bytes)(), s.x0, s.x1, s.mxcsr);
    Ok(())
}

const SPECIAL32: [u32; 20] = [
    0,
    0x8000_0000,
    1,
    0x8000_0001,
    0x007f_ffff,
    0x0080_0000,
    0x8080_0000,
    0x7f7f_ffff,
    0xff7f_ffff,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0xffc0_0000,
    0x7fa0_0001,
    0xff80_0001,
    0x3f80_0000,
    0xbf80_0000,
    0x3f80_0001,
    0x4f00_0000,
    0xcf00_0000,
];
const SPECIAL64: [u64; 20] = [
    0,
    1 << 63,
    1,
    (1 << 63) | 1,
    0x000f_ffff_ffff_ffff,
    0x0010_0000_0000_0000,
    0x8010_0000_0000_0000,
    0x7fef_ffff_ffff_ffff,
    0xffef_ffff_ffff_ffff,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    0x7ff8_0000_0000_0000,
    0xfff8_0000_0000_0000,
    0x7ff4_0000_0000_0001,
    0xfff0_0000_0000_0001,
    0x3ff0_0000_0000_0000,
    0xbff0_0000_0000_0000,
    0x3ff0_0000_0000_0001,
    0x43e0_0000_0000_0000,
    0xc1e0_0000_0000_0000,
];

/// One binary32 value: random bits, edge values, or a value in a chosen exponent region.
pub fn f32_bits() -> impl Strategy<Value = u32> + Clone {
    (any::<u32>(), 0u8..10).prop_map(|(r, k)| match k {
        0 | 1 => r,
        2 => r & 0x807f_ffff,                 // zero or denormal
        3 => (r & 0x807f_ffff) | 0x0080_0000, // smallest binade
        4 => (r & 0x80ff_ffff) | 0x7f00_0000, // near overflow
        5 => (r & 0x807f_ffff) | 0x7f80_0000, // infinity or NaN
        6 => SPECIAL32[(r % 20) as usize],
        7 => (r & 0x83ff_ffff) | 0x3c00_0000,                     // around 1
        8 => (r & 0x87ff_ffff) | 0x0400_0000,                     // small normals (underflow region)
        _ => (r & 0x8000_00ff) | 0x4b00_0000 ^ (r & 0x0070_0000), // integers, halves
    })
}

pub fn f64_bits() -> impl Strategy<Value = u64> + Clone {
    (any::<u64>(), 0u8..10).prop_map(|(r, k)| match k {
        0 | 1 => r,
        2 => r & 0x800f_ffff_ffff_ffff,
        3 => (r & 0x800f_ffff_ffff_ffff) | 0x0010_0000_0000_0000,
        4 => (r & 0x801f_ffff_ffff_ffff) | 0x7fe0_0000_0000_0000,
        5 => (r & 0x800f_ffff_ffff_ffff) | 0x7ff0_0000_0000_0000,
        6 => SPECIAL64[(r % 20) as usize],
        7 => (r & 0x807f_ffff_ffff_ffff) | 0x3f80_0000_0000_0000,
        8 => (r & 0x80ff_ffff_ffff_ffff) | 0x0080_0000_0000_0000,
        _ => (r & 0x8000_0000_0000_0fff) | 0x4330_0000_0000_0000 ^ (r & 0x000f_0000_0000_0000),
    })
}

/// Four binary32 lanes.
pub fn ps() -> impl Strategy<Value = u128> + Clone {
    [f32_bits(), f32_bits(), f32_bits(), f32_bits()]
        .prop_map(|l| l.iter().enumerate().fold(0u128, |v, (i, x)| v | (*x as u128) << (32 * i)))
}

/// Two binary64 lanes.
pub fn pd() -> impl Strategy<Value = u128> + Clone {
    [f64_bits(), f64_bits()].prop_map(|l| l[0] as u128 | (l[1] as u128) << 64)
}

/// An operand pair where the second is sometimes a close relative of the first (cancellation,
/// ties, equal values).
pub fn pair(s: impl Strategy<Value = u128> + Clone) -> impl Strategy<Value = (u128, u128)> {
    (s.clone(), s, any::<u128>(), 0u8..4).prop_map(|(a, b, r, k)| match k {
        0 => (a, a ^ (r & 0x0000_000f_0000_000f_0000_000f_0000_000f)),
        1 => (a, a ^ 0x8000_0000_8000_0000_8000_0000_8000_0000 ^ (r & 0x0000_0003_0000_0003_0000_0003_0000_0003)),
        _ => (a, b),
    })
}

/// MXCSR with every exception masked, any rounding mode, DAZ and FTZ either way, and some
/// flags already set.
pub fn mxcsr() -> impl Strategy<Value = u32> {
    (0u32..4, any::<bool>(), any::<bool>(), 0u32..64, any::<bool>()).prop_map(|(rc, daz, ftz, flags, keep)| {
        0x1f80 | rc << 13 | (daz as u32) << 6 | (ftz as u32) << 15 | if keep { flags } else { 0 }
    })
}

/// Multiplies every case count: `STRATA_SSE_SOAK=20 cargo test -p emu sse::` for a long run.
pub fn soak_factor() -> u32 {
    std::env::var("STRATA_SSE_SOAK").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// Property tests comparing one instruction per line with the host:
/// `name: "insn xmm0, xmm1", operand strategy;`.
macro_rules! host_cases {
    ($cases:expr; $($name:ident: $insn:literal, $strat:expr;)*) => {
        proptest::proptest! {
            #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
                $cases * $crate::interp::sse::testutil::soak_factor()
            ))]
            $(
                #[test]
                fn $name((a, b) in $crate::interp::sse::testutil::pair($strat),
                         mx in $crate::interp::sse::testutil::mxcsr()) {
                    let n = $crate::interp::sse::testutil::native!($insn);
                    $crate::interp::sse::testutil::same(&n, &$crate::interp::sse::testutil::St::new(a, b, mx))?;
                }
            )*
        }
    };
}
pub(crate) use host_cases;

/// Integer vectors: random bits, lanes at the saturation limits, and small values.
pub fn ints() -> impl Strategy<Value = u128> + Clone {
    (any::<u128>(), 0u8..5).prop_map(|(r, k)| match k {
        0 | 1 => r,
        2 => r & 0x8080_8080_8080_8080_7f7f_7f7f_ffff_0000 | 0x7f00_8000_7fff_8000_0100_ff00_0000_8001,
        3 => r & 0x0303_0303_0303_0303_0303_0303_0303_0303,
        _ => !(r & 0x0303_0303_0303_0303_0303_0303_0303_0303),
    })
}

/// Shift counts: small, at the lane limits, and huge.
pub fn counts() -> impl Strategy<Value = u128> + Clone {
    (any::<u128>(), 0u8..4).prop_map(|(r, k)| match k {
        0 => r & 0xf,
        1 => (r & 0x7f) as u64 as u128 | (r & !0xffff_ffff_ffff_ffffu128),
        2 => [15u128, 16, 31, 32, 63, 64][(r % 6) as usize],
        _ => r,
    })
}
