//! Comparing tier 0's architectural state with KVM's after one instruction, field by field, and
//! printing states and instructions for the divergence report.
//!
//! Compared: the 16 GPRs, RIP, RFLAGS (minus the flags the SDM leaves undefined for that
//! instruction, from iced-x86's `rflags_undefined()` as `crate::compare` uses it), CPL, the six
//! segment registers (selector; for usable segments also base, limit and attributes without
//! the accessed bit, which KVM always sets and tier 0 does not track), LDTR, TR, GDTR, IDTR,
//! CR0, CR2, CR3, CR4, EFER; and when asked, the x87/SSE state (FCW, FSW, tags, ST0-7, XMM,
//! MXCSR; registers by physical number) and the MSRs that move with the CPU.
//!
//! In 64-bit mode the hidden base, limit and attributes of ES, SS and DS (and all but the base
//! of FS and GS) are not compared: the CPU ignores them there (SDM Vol. 3, 3.4.4), and KVM's
//! emulator fills them differently for a null selector (a "fake" 4 KiB-granular data segment).
//!
//! Left out: RF and TF (KVM's single-stepping owns them), CR8 (the lockstep runs no in-kernel
//! APIC), debug registers, FIP/FDP/FOP (KVM's emulator does not maintain them).

use crate::compare::{rflags_of, GPR_NAMES};
use emu::state::{attr, CpuState, Segment};
use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};

/// RFLAGS bits compared (everything defined but TF and RF: KVM's single-stepping uses them).
const RFLAGS_COMPARED: u64 = 0x003f_7fd5 & !(1 << 8) & !(1 << 16);

const SEG_NAMES: [&str; 6] = ["es", "cs", "ss", "ds", "fs", "gs"];

/// What to compare beyond the always-compared fields.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extent {
    pub fpu: bool,
    pub msrs: bool,
}

/// How much of a segment register the architecture lets software observe.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Visible {
    /// Everything (outside 64-bit mode, and CS, LDTR, TR).
    All,
    /// 64-bit mode, ES/SS/DS: base, limit and most attributes are ignored (SDM Vol. 3, 3.4.4;
    /// Vol. 1, 3.4.2.1): selector and DPL remain.
    SelectorDpl,
    /// 64-bit mode, FS/GS: the base is used as well.
    SelectorDplBase,
}

fn seg_diff(name: &str, t: &Segment, k: &Segment, vis: Visible, out: &mut Vec<String>) {
    let usable = |s: &Segment| s.attr & attr::P != 0;
    // A null selector leaves the register "unusable" (KVM) or present (tier 0) in 64-bit mode,
    // which means the same there: P counts only for FS/GS (whose base is used).
    let same = if vis == Visible::SelectorDpl {
        let dpl = 3 << attr::DPL_SHIFT;
        (t.selector, t.attr & dpl) == (k.selector, k.attr & dpl)
    } else if vis == Visible::SelectorDplBase {
        let dpl = attr::P | 3 << attr::DPL_SHIFT;
        (t.selector, t.attr & dpl, t.base) == (k.selector, k.attr & dpl, k.base)
    } else if usable(t) || usable(k) {
        (t.selector, t.base, t.limit, t.attr & !1) == (k.selector, k.base, k.limit, k.attr & !1)
    } else {
        t.selector == k.selector
    };
    if !same {
        out.push(format!(
            "{name:>6}: tier0 {:04x} base {:#x} limit {:#x} attr {:#06x}   kvm {:04x} base {:#x} limit {:#x} attr {:#06x}",
            t.selector, t.base, t.limit, t.attr, k.selector, k.base, k.limit, k.attr
        ));
    }
}

/// Every compared field that differs between tier 0 (`t`) and KVM (`k`) after `ins` (None when
/// the instruction could not be decoded: then every flag is compared).
pub fn state_diff(ins: Option<&Instruction>, t: &CpuState, k: &CpuState, extent: Extent) -> Vec<String> {
    let mut out = Vec::new();
    for ((name, a), b) in GPR_NAMES.iter().zip(&t.gpr).zip(&k.gpr) {
        if a != b {
            out.push(format!("{name:>6}: tier0 {a:#018x}  kvm {b:#018x}"));
        }
    }
    if t.rip != k.rip {
        out.push(format!("{:>6}: tier0 {:#018x}  kvm {:#018x}", "rip", t.rip, k.rip));
    }
    let undefined = ins.map_or(0, |i| rflags_of(i.rflags_undefined()));
    let (fa, fb) = (t.rflags(), k.rflags());
    if (fa ^ fb) & RFLAGS_COMPARED & !undefined != 0 {
        out.push(format!("{:>6}: tier0 {fa:#010x}  kvm {fb:#010x} (undefined here: {undefined:#x})", "rflags"));
    }
    if t.cpl != k.cpl {
        out.push(format!("{:>6}: tier0 {}  kvm {}", "cpl", t.cpl, k.cpl));
    }
    let long = t.in_64bit_mode() && k.in_64bit_mode();
    for (i, name) in SEG_NAMES.iter().enumerate() {
        let vis = match (long, i) {
            (false, _) | (true, 1) => Visible::All,
            (true, 4 | 5) => Visible::SelectorDplBase,
            (true, _) => Visible::SelectorDpl,
        };
        seg_diff(name, &t.segs[i], &k.segs[i], vis, &mut out);
    }
    seg_diff("ldtr", &t.ldtr, &k.ldtr, Visible::All, &mut out);
    seg_diff("tr", &t.tr, &k.tr, Visible::All, &mut out);
    for (name, a, b) in [("gdtr", &t.gdtr, &k.gdtr), ("idtr", &t.idtr, &k.idtr)] {
        if (a.base, a.limit) != (b.base, b.limit) {
            out.push(format!("{name:>6}: tier0 {:#x}/{:#x}  kvm {:#x}/{:#x}", a.base, a.limit, b.base, b.limit));
        }
    }
    for (name, a, b) in [
        ("cr0", t.cr0, k.cr0),
        ("cr2", t.cr2, k.cr2),
        ("cr3", t.cr3, k.cr3),
        ("cr4", t.cr4, k.cr4),
        ("efer", t.efer, k.efer),
    ] {
        if a != b {
            out.push(format!("{name:>6}: tier0 {a:#x}  kvm {b:#x}"));
        }
    }
    if extent.fpu {
        fpu_diff(t, k, &mut out);
    }
    if extent.msrs && t.msr != k.msr {
        out.push(format!("{:>6}: tier0 {:x?}\n        kvm   {:x?}", "msrs", t.msr, k.msr));
    }
    out
}

fn fpu_diff(t: &CpuState, k: &CpuState, out: &mut Vec<String>) {
    let (a, b) = (&t.fpu, &k.fpu);
    // The tag word compares in FXSAVE's abridged form (empty or not, SDM Vol. 1, 10.5.1.1): KVM
    // keeps only that and FXRSTOR rebuilds the rest from the register contents.
    let abridged = |ftw: u16| (0..8).fold(0u8, |acc, i| acc | (((ftw >> (2 * i)) & 3 != 3) as u8) << i);
    for (name, x, y) in
        [("fcw", a.fcw, b.fcw), ("fsw", a.fsw, b.fsw), ("ftw", abridged(a.ftw).into(), abridged(b.ftw).into())]
    {
        if x != y {
            out.push(format!("{name:>6}: tier0 {x:#06x}  kvm {y:#06x}"));
        }
    }
    for (i, (x, y)) in a.regs.iter().zip(&b.regs).enumerate() {
        if (x.signif, x.sign_exp) != (y.signif, y.sign_exp) {
            out.push(format!(
                "  r{i}(x87): tier0 {:04x}_{:016x}  kvm {:04x}_{:016x}",
                x.sign_exp, x.signif, y.sign_exp, y.signif
            ));
        }
    }
    for (i, (x, y)) in t.xmm.iter().zip(&k.xmm).enumerate() {
        if x != y {
            out.push(format!(" xmm{i:<2}: tier0 {:016x}_{:016x}  kvm {:016x}_{:016x}", x[1], x[0], y[1], y[0]));
        }
    }
    if t.mxcsr != k.mxcsr {
        out.push(format!("{:>6}: tier0 {:#x}  kvm {:#x}", "mxcsr", t.mxcsr, k.mxcsr));
    }
}

/// Decodes the instruction at the start of `bytes` for a CPU executing `bits`-bit code at `rip`.
pub fn decode(bytes: &[u8], bits: u32, rip: u64) -> Option<Instruction> {
    let mut d = Decoder::with_ip(bits, bytes, rip, DecoderOptions::NONE);
    let ins = d.decode();
    (!ins.is_invalid()).then_some(ins)
}

/// Intel syntax plus the bytes: "mov eax,[ebx] (8b 03)".
pub fn disassemble(ins: &Instruction, bytes: &[u8]) -> String {
    let mut text = String::new();
    IntelFormatter::new().format(ins, &mut text);
    let raw: Vec<String> = bytes.iter().take(ins.len()).map(|b| format!("{b:02x}")).collect();
    format!("{text} ({})", raw.join(" "))
}

/// The state in a few lines, for the report.
pub fn dump(s: &CpuState) -> String {
    let mut out = String::new();
    for (i, n) in GPR_NAMES.iter().enumerate() {
        out += &format!("{n:>4}={:016x}{}", s.gpr[i], if i % 4 == 3 { "\n" } else { " " });
    }
    out += &format!(" rip={:016x} rflags={:08x} cpl={}\n", s.rip, s.rflags(), s.cpl);
    for (i, n) in SEG_NAMES.iter().enumerate() {
        let g = &s.segs[i];
        out += &format!("  {n}={:04x} base={:x} limit={:x} attr={:04x}\n", g.selector, g.base, g.limit, g.attr);
    }
    out += &format!(
        " cr0={:x} cr2={:x} cr3={:x} cr4={:x} efer={:x} gdtr={:x}/{:x} idtr={:x}/{:x} tr={:04x}\n",
        s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.gdtr.base, s.gdtr.limit, s.idtr.base, s.idtr.limit, s.tr.selector
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_flags_of_the_instruction_are_masked_and_defined_ones_are_not() {
        // AND leaves AF undefined and defines ZF (SDM Vol. 2A, AND "Flags Affected").
        let ins = decode(&[0x21, 0xc8], 64, 0x1000).unwrap(); // and eax, ecx
        let t = CpuState::default();
        let mut k = t.clone();
        k.set_rflags(t.rflags() | 0x10);
        assert!(state_diff(Some(&ins), &t, &k, Extent::default()).is_empty());
        k.set_rflags(t.rflags() | 0x40);
        assert_eq!(state_diff(Some(&ins), &t, &k, Extent::default()).len(), 1);
    }

    #[test]
    fn accessed_bit_is_ignored_but_other_segment_fields_are_not() {
        let mut t = CpuState::default();
        t.segs[3] = Segment::flat_data(0x18, 0);
        let mut k = t.clone();
        k.segs[3].attr |= 1;
        assert!(state_diff(None, &t, &k, Extent::default()).is_empty());
        k.segs[3].limit = 0xfff;
        assert_eq!(state_diff(None, &t, &k, Extent::default()).len(), 1);
    }
}
