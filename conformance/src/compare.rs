//! Comparing the native result with the interpreter's, and printing a divergence so it can be
//! reproduced by hand: the instruction (Intel syntax and bytes), the initial state, and every
//! field that differs with both values.
//!
//! Flags are compared only where the instruction defines them: the handler table's per-form
//! flag facts (`emu::decode::table::info`, filled from iced-x86's instruction info; SDM Vol. 2
//! lists them per instruction as "undefined") mask the rest, through [`undefined_flags`].
//! Differences in undefined flags are counted separately, for information: they show where tier 0
//! does not reproduce what this host's CPU happens to produce.

use crate::state::{MachineState, Outcome, FLAGS_COMPARED};
use emu::decode::table;
use iced_x86::{Formatter, Instruction, IntelFormatter};
use std::fmt::Write;

pub const GPR_NAMES: [&str; 16] =
    ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

/// iced-x86's flag bits as RFLAGS bits (the table's conversion).
pub fn rflags_of(bits: u32) -> u64 {
    emu::decoded::rflags_of(bits) as u64
}

/// The RFLAGS bits the SDM leaves undefined after `ins`, from the handler table (exact for
/// shifts and rotates by an immediate: the count is applied).
pub fn undefined_flags(ins: &Instruction) -> u64 {
    table::info(ins.code()).flags_for(ins.immediate8()).undefined as u64
}

/// Names of the set RFLAGS bits among the compared ones.
pub fn flag_names(f: u64) -> String {
    const NAMES: [(u64, &str); 7] =
        [(1, "CF"), (4, "PF"), (0x10, "AF"), (0x40, "ZF"), (0x80, "SF"), (0x400, "DF"), (0x800, "OF")];
    let v: Vec<&str> = NAMES.iter().filter(|(b, _)| f & b != 0).map(|(_, n)| *n).collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(" ")
    }
}

/// The result of comparing one case.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// One line per differing field; empty if the runs agree.
    pub diffs: Vec<String>,
    /// Undefined flags whose value differed (informational).
    pub undefined_flag_diff: u64,
}

/// Compares `native` with the interpreter's `guest` outcome for instruction `ins`, run from
/// `init`.
pub fn compare(ins: &Instruction, init: &MachineState, native: &MachineState, guest: &Outcome) -> Comparison {
    let mut c = Comparison::default();
    let g = match guest {
        Outcome::Completed(g) => g,
        Outcome::Fault { vector, error_code, detail, .. } => {
            c.diffs.push(format!(
                "interpreter raised vector {vector} (error code {error_code:#x}): {detail}; the host did not fault"
            ));
            return c;
        }
    };
    let instance = instance_undefined(ins, init, native);
    for (i, ((name, a), b)) in GPR_NAMES.iter().zip(native.gpr.iter()).zip(g.gpr.iter()).enumerate() {
        if a != b && instance.gpr != Some(i) {
            c.diffs.push(format!("{name:>5}: host {a:#018x}  tier0 {b:#018x}"));
        }
    }
    if native.rip != g.rip {
        c.diffs.push(format!("  rip: host {:#x}  tier0 {:#x}", native.rip, g.rip));
    }
    let undefined = undefined_flags(ins) | instance.flags;
    let defined = FLAGS_COMPARED & !undefined;
    let fd = (native.rflags ^ g.rflags) & defined;
    if fd != 0 {
        c.diffs.push(format!(
            "flags: differ in {} (host {}, tier0 {})",
            flag_names(fd),
            flag_names(native.rflags & FLAGS_COMPARED),
            flag_names(g.rflags & FLAGS_COMPARED)
        ));
    }
    c.undefined_flag_diff = (native.rflags ^ g.rflags) & undefined;
    let approx = is_approximation(ins);
    for i in 0..16 {
        let same = if approx { approx_equal(native.xmm[i], g.xmm[i]) } else { native.xmm[i] == g.xmm[i] };
        if !same {
            c.diffs.push(format!(
                "xmm{i:<2}: host {:016x}_{:016x}  tier0 {:016x}_{:016x}",
                native.xmm[i][1], native.xmm[i][0], g.xmm[i][1], g.xmm[i][0]
            ));
        }
    }
    compare_x87(ins, &native.x87, &g.x87, &mut c);
    if native.mxcsr != g.mxcsr {
        c.diffs.push(format!("mxcsr: host {:#06x}  tier0 {:#06x}", native.mxcsr, g.mxcsr));
    }
    let mut shown = 0;
    for (off, (a, b)) in native.buf.iter().zip(g.buf.iter()).enumerate() {
        if a != b && !instance.buf.contains(&off) {
            if shown < 8 {
                c.diffs.push(format!("  buf+{off:#06x}: host {a:#04x}  tier0 {b:#04x}"));
            }
            shown += 1;
        }
    }
    if shown > 8 {
        c.diffs.push(format!("  ... {} more buffer bytes differ", shown - 8));
    }
    c
}

/// What the manuals leave undefined for this instance, beyond iced-x86's per-form list: what
/// depends on the operands (a shift or rotate count, a zero BSF/BSR source). Intel and AMD CPUs
/// differ there, so it is not compared; each case is listed in `exclude::MODEL_SPECIFIC`.
#[derive(Debug, Default)]
pub struct InstanceUndefined {
    /// RFLAGS bits.
    pub flags: u64,
    /// A destination register (index into `gpr`).
    pub gpr: Option<usize>,
    /// A destination in the data buffer (offsets into `buf`).
    pub buf: std::ops::Range<usize>,
}

/// See [`InstanceUndefined`]. The rules, from SDM Vol. 2 (and the matching APM Vol. 3 entries):
/// - SAL/SAR/SHL/SHR, ROL/ROR/RCL/RCR, SHLD/SHRD: OF is defined only for a masked count of 1
///   (a count of 0 changes no flag).
/// - SHL/SHR (and SAL): CF is undefined when the masked count is at least the operand size
///   (8- and 16-bit operands).
/// - SHLD/SHRD: with a masked count above the operand size (16-bit operands) the result and
///   all six flags are undefined.
/// - BSF/BSR with a zero source (ZF set, which both define): the SDM calls the destination
///   undefined, AMD leaves it unchanged (APM Vol. 3), as tier 0 does.
pub fn instance_undefined(ins: &Instruction, init: &MachineState, native: &MachineState) -> InstanceUndefined {
    use iced_x86::{Mnemonic as M, OpKind};
    const CF: u64 = 1;
    const OF: u64 = 1 << 11;
    const ZF: u64 = 1 << 6;
    const ALL6: u64 = 0x8d5;
    let mut u = InstanceUndefined::default();
    let dest_reg = || {
        let r = ins.op0_register().full_register();
        r.is_gpr64().then(|| r as usize - iced_x86::Register::RAX as usize)
    };
    let width = if ins.op0_kind() == OpKind::Register {
        ins.op0_register().size() as u32 * 8
    } else {
        ins.memory_size().size() as u32 * 8
    };
    let mnemonic = ins.mnemonic();
    if matches!(mnemonic, M::Bsf | M::Bsr) {
        if native.rflags & ZF != 0 {
            u.gpr = dest_reg();
        }
        return u;
    }
    let double = matches!(mnemonic, M::Shld | M::Shrd);
    let shift = matches!(mnemonic, M::Shl | M::Sal | M::Shr | M::Sar);
    let rotate = matches!(mnemonic, M::Rol | M::Ror | M::Rcl | M::Rcr);
    if !(double || shift || rotate) {
        return u;
    }
    let count_op = if double { 2 } else { 1 };
    let count = match ins.op_kind(count_op) {
        OpKind::Immediate8 => ins.immediate8() as u32,
        OpKind::Register => init.gpr[1] as u8 as u32, // CL
        _ => 1,                                       // the D0/D1 "by 1" forms
    };
    let count = count & if width == 64 { 0x3f } else { 0x1f };
    if count == 0 {
        return u;
    }
    if count != 1 {
        u.flags |= OF;
    }
    if shift && matches!(mnemonic, M::Shl | M::Sal | M::Shr) && count >= width {
        u.flags |= CF;
    }
    if double && count > width {
        u.flags |= ALL6;
        if ins.op0_kind() == OpKind::Register {
            u.gpr = dest_reg();
        } else if let Some(ea) = crate::gen::effective_address(ins, init) {
            let off = ea.wrapping_sub(crate::state::BUF) as usize;
            u.buf = off..off + (width / 8) as usize;
        }
    }
    u
}

/// x87 condition codes the SDM leaves undefined after `ins` (C0 bit 8, C2 bit 10, C3 bit 14;
/// C1 is defined by almost every instruction). Instructions that set the condition codes as
/// their result, or leave them unchanged, define all four.
pub fn x87_cc_undefined(ins: &Instruction) -> u16 {
    use iced_x86::Mnemonic as M;
    const C0: u16 = 1 << 8;
    const C1: u16 = 1 << 9;
    const C2: u16 = 1 << 10;
    const C3: u16 = 1 << 14;
    let name = format!("{:?}", ins.mnemonic());
    if !name.starts_with('F') || name.starts_with("Fx") {
        return 0; // not x87: the status word must not change at all
    }
    match ins.mnemonic() {
        M::Fcom
        | M::Fcomp
        | M::Fcompp
        | M::Fucom
        | M::Fucomp
        | M::Fucompp
        | M::Ficom
        | M::Ficomp
        | M::Ftst
        | M::Fxam => 0,
        M::Fprem | M::Fprem1 | M::Fninit | M::Finit | M::Fcomi | M::Fcomip | M::Fucomi | M::Fucomip => 0,
        M::Fnstsw | M::Fstsw | M::Fnstcw | M::Fstcw | M::Fcmovb | M::Fcmove | M::Fcmovbe | M::Fcmovu => C0 | C2 | C3,
        M::Fcmovnb | M::Fcmovne | M::Fcmovnbe | M::Fcmovnu => C0 | C2 | C3,
        M::Fsin | M::Fcos | M::Fsincos | M::Fptan => C0 | C3,
        M::Fnclex | M::Fclex | M::Ffree | M::Ffreep | M::Fnop | M::Wait => C0 | C1 | C2 | C3,
        _ => C0 | C2 | C3,
    }
}

fn compare_x87(ins: &Instruction, n: &crate::state::X87, g: &crate::state::X87, c: &mut Comparison) {
    if n.fcw != g.fcw {
        c.diffs.push(format!("  fcw: host {:#06x}  tier0 {:#06x}", n.fcw, g.fcw));
    }
    let approx = is_x87_transcendental(ins);
    // C1 reports the rounding direction, which follows the approximation.
    let undefined = x87_cc_undefined(ins) | if approx { 1 << 9 } else { 0 };
    if (n.fsw ^ g.fsw) & !undefined != 0 {
        c.diffs.push(format!("  fsw: host {:#06x}  tier0 {:#06x} (undefined bits {undefined:#06x})", n.fsw, g.fsw));
    }
    if n.tag != g.tag {
        c.diffs.push(format!(
            "  ftw: host {:#04x}  tier0 {:#04x} (abridged: bit = physical register in use)",
            n.tag, g.tag
        ));
    }
    // SDM Vol. 1, 8.3.10: a transcendental's error is below 1 ulp when rounding to nearest and
    // below 1.5 ulps in the other modes, so two CPUs (or a CPU and tier 0) may be 1 or 2 ulps
    // apart (Intel and AMD are). RC is FCW bits 11:10.
    let ulps = if n.fcw >> 10 & 3 == 0 { 1 } else { 2 };
    for i in 0..8 {
        let same = n.st[i] == g.st[i] || (approx && within_ulps(n.st[i], g.st[i], ulps));
        if n.valid(i) && !same {
            let (a, b) = (n.st[i], g.st[i]);
            c.diffs.push(format!("st({i}): host {:04x}_{:016x}  tier0 {:04x}_{:016x}", a.1, a.0, b.1, b.0));
        }
    }
}

/// The x87 transcendentals: the SDM promises an error below one unit in the last place, and
/// the exact bits differ between implementations (Intel and AMD round these differently).
pub fn is_x87_transcendental(ins: &Instruction) -> bool {
    use iced_x86::Mnemonic as M;
    matches!(ins.mnemonic(), M::F2xm1 | M::Fyl2x | M::Fyl2xp1 | M::Fptan | M::Fpatan | M::Fsin | M::Fcos | M::Fsincos)
}

/// Two extended values with the same sign, `ulps` units in the last place apart at most.
fn within_ulps(a: (u64, u16), b: (u64, u16), ulps: u128) -> bool {
    if a.1 & 0x8000 != b.1 & 0x8000 {
        return false;
    }
    // Magnitudes as integers, contiguous across exponents: the exponent above the 63 fraction
    // bits (the explicit integer bit is dropped), so 1.0 and the value just below it are 1 apart.
    let mag = |v: (u64, u16)| ((v.1 & 0x7fff) as u128) << 63 | (v.0 & !(1 << 63)) as u128;
    mag(a).abs_diff(mag(b)) <= ulps
}

/// RCPPS/RCPSS/RSQRTPS/RSQRTSS: the result is an approximation whose exact bits are
/// implementation-specific; the SDM bounds only the relative error (|error| ≤ 1.5 · 2⁻¹²).
pub fn is_approximation(ins: &Instruction) -> bool {
    use iced_x86::Mnemonic as M;
    matches!(ins.mnemonic(), M::Rcpps | M::Rcpss | M::Rsqrtps | M::Rsqrtss)
}

/// Single-precision lanes equal, or both finite and nonzero within twice the SDM's bound of
/// each other (the host's value and tier 0's may each be off by 1.5 · 2⁻¹²).
fn approx_equal(a: [u64; 2], b: [u64; 2]) -> bool {
    let lanes = |x: [u64; 2]| [x[0] as u32, (x[0] >> 32) as u32, x[1] as u32, (x[1] >> 32) as u32];
    lanes(a).iter().zip(lanes(b).iter()).all(|(&x, &y)| {
        let (fx, fy) = (f32::from_bits(x) as f64, f32::from_bits(y) as f64);
        x == y || (fx.is_normal() && fy.is_normal() && ((fx - fy) / fx).abs() <= 3.0 * (2f64).powi(-12))
    })
}

/// The instruction in Intel syntax.
pub fn format_instr(ins: &Instruction) -> String {
    let mut f = IntelFormatter::new();
    let mut s = String::new();
    f.format(ins, &mut s);
    s
}

/// A full report of one divergence.
pub fn describe(ins: &Instruction, bytes: &[u8], init: &MachineState, c: &Comparison) -> String {
    let mut s = String::new();
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let _ = writeln!(s, "{:?}: `{}` [{}] at {:#x}", ins.code(), format_instr(ins), hex.join(" "), init.rip);
    let _ = writeln!(s, "  initial state:");
    for row in 0..4 {
        let line: Vec<String> =
            (0..4).map(|c| row * 4 + c).map(|i| format!("{:>3}={:016x}", GPR_NAMES[i], init.gpr[i])).collect();
        let _ = writeln!(s, "    {}", line.join(" "));
    }
    let _ = writeln!(s, "    flags: {}  mxcsr={:#06x}", flag_names(init.rflags), init.mxcsr);
    if format!("{:?}", ins.mnemonic()).starts_with('F') {
        let x = &init.x87;
        let _ = writeln!(s, "    fcw={:#06x} fsw={:#06x} (top {}) ftw={:#04x}", x.fcw, x.fsw, x.top(), x.tag);
        for i in 0..8 {
            if x.valid(i) {
                let _ = writeln!(s, "    st({i})={:04x}_{:016x}", x.st[i].1, x.st[i].0);
            }
        }
    }
    for (i, x) in init.xmm.iter().enumerate() {
        if uses_xmm(ins, i) {
            let _ = writeln!(s, "    xmm{i}={:016x}_{:016x}", x[1], x[0]);
        }
    }
    if let Some(ea) = crate::gen::effective_address(ins, init) {
        let n = (ins.memory_size().size().clamp(1, 16)) as u64;
        let bytes: Vec<String> = (0..n).filter_map(|k| init.read_buf(ea + k, 1)).map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(s, "    memory operand at {ea:#x}: {}", bytes.join(" "));
    }
    let _ = writeln!(s, "  differences:");
    for d in &c.diffs {
        let _ = writeln!(s, "    {d}");
    }
    s
}

fn uses_xmm(ins: &Instruction, n: usize) -> bool {
    (0..ins.op_count()).any(|i| {
        ins.op_kind(i) == iced_x86::OpKind::Register
            && ins.op_register(i).is_xmm()
            && ins.op_register(i) as usize - iced_x86::Register::XMM0 as usize == n
    })
}
