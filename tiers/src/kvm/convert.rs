//! `CpuState` <-> KVM's register structures, at an instruction boundary (ARCHITECTURE.md, decision 1).
//!
//! | ours | KVM |
//! |---|---|
//! | GPRs, RIP, RFLAGS (lazy flags materialized) | `kvm_regs` |
//! | segments with hidden parts, GDTR/IDTR, CR0/2/3/4/8, EFER, APIC base | `kvm_sregs` |
//! | x87 registers, FCW/FSW/FTW/FOP/FIP/FDP, XMM, MXCSR | `kvm_xsave` (its legacy region is the FXSAVE64 image) |
//! | DR0-3, DR6, DR7 | `kvm_debugregs` |
//! | SYSCALL/SYSENTER MSRs, KERNEL_GS_BASE, PAT, TSC_AUX, MISC_ENABLE, TSC | `KVM_GET/SET_MSRS` |
//!
//! The x87/SSE part goes through tier 0's own FXSAVE image code (`interp::sse::fxsave`), so the
//! abridged tag word is expanded exactly as FXRSTOR does it. Segment attributes are stored in the
//! VMX/KVM packing already (`state::attr`), so they map field by field.
//!
//! Left out, on purpose: FCS/FDS (the 64-bit image has no room for them; the reference CPU
//! deprecates them), XCR0 beyond x87+SSE (tier 0 does not advertise XSAVE), and the "accessed" bit of a
//! segment type, which KVM requires set and tier 0 does not track in the cached descriptor.

use emu::interp::sse::fxsave::IMAGE;
use emu::state::{attr, CpuState, DescriptorTable, Segment};
use kvm_bindings::{kvm_debugregs, kvm_dtable, kvm_regs, kvm_segment, kvm_sregs, kvm_xsave};

/// IA32 MSR numbers exchanged with KVM (SDM Vol. 4).
pub mod msr {
    pub const TSC: u32 = 0x10;
    pub const SYSENTER_CS: u32 = 0x174;
    pub const SYSENTER_ESP: u32 = 0x175;
    pub const SYSENTER_EIP: u32 = 0x176;
    pub const MISC_ENABLE: u32 = 0x1a0;
    pub const PAT: u32 = 0x277;
    pub const STAR: u32 = 0xc000_0081;
    pub const LSTAR: u32 = 0xc000_0082;
    pub const CSTAR: u32 = 0xc000_0083;
    pub const SFMASK: u32 = 0xc000_0084;
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
    pub const TSC_AUX: u32 = 0xc000_0103;
}

/// The MSRs that move with the CPU, in a fixed order ([`msrs_from_state`] / [`msrs_into_state`]).
/// The TSC is handled separately: it is a function of the machine clock.
pub const MOVED_MSRS: [u32; 11] = [
    msr::SYSENTER_CS,
    msr::SYSENTER_ESP,
    msr::SYSENTER_EIP,
    msr::PAT,
    msr::STAR,
    msr::LSTAR,
    msr::CSTAR,
    msr::SFMASK,
    msr::KERNEL_GS_BASE,
    msr::TSC_AUX,
    msr::MISC_ENABLE,
];

pub fn regs_from_state(s: &CpuState) -> kvm_regs {
    let g = &s.gpr;
    kvm_regs {
        rax: g[0],
        rcx: g[1],
        rdx: g[2],
        rbx: g[3],
        rsp: g[4],
        rbp: g[5],
        rsi: g[6],
        rdi: g[7],
        r8: g[8],
        r9: g[9],
        r10: g[10],
        r11: g[11],
        r12: g[12],
        r13: g[13],
        r14: g[14],
        r15: g[15],
        rip: s.rip,
        rflags: s.rflags(),
    }
}

pub fn regs_into_state(r: &kvm_regs, s: &mut CpuState) {
    s.gpr =
        [r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15];
    s.rip = r.rip;
    s.set_rflags(r.rflags);
}

/// Our segment as KVM wants it. An unusable (not present) segment stays unusable; a usable code
/// or data segment gets its accessed bit, as the CPU sets it when it loads the descriptor.
pub fn segment_to_kvm(seg: &Segment) -> kvm_segment {
    let a = seg.attr;
    let present = a & attr::P != 0;
    let s = a & attr::S != 0;
    let mut type_ = (a & attr::TYPE_MASK) as u8;
    if present && s {
        type_ |= 1;
    }
    kvm_segment {
        base: seg.base,
        limit: seg.limit,
        selector: seg.selector,
        type_,
        present: present as u8,
        dpl: ((a >> attr::DPL_SHIFT) & 3) as u8,
        db: (a & attr::DB != 0) as u8,
        s: s as u8,
        l: (a & attr::L != 0) as u8,
        g: (a & attr::G != 0) as u8,
        avl: (a >> 12 & 1) as u8,
        unusable: (!present) as u8,
        padding: 0,
    }
}

pub fn segment_from_kvm(k: &kvm_segment) -> Segment {
    let present = k.present != 0 && k.unusable == 0;
    let attr = (k.type_ as u16 & attr::TYPE_MASK)
        | if k.s != 0 { attr::S } else { 0 }
        | (k.dpl as u16 & 3) << attr::DPL_SHIFT
        | if present { attr::P } else { 0 }
        | (k.avl as u16 & 1) << 12
        | if k.l != 0 { attr::L } else { 0 }
        | if k.db != 0 { attr::DB } else { 0 }
        | if k.g != 0 { attr::G } else { 0 };
    Segment { base: k.base, limit: k.limit, selector: k.selector, attr }
}

fn dtable_to_kvm(d: &DescriptorTable) -> kvm_dtable {
    kvm_dtable { base: d.base, limit: d.limit, padding: [0; 3] }
}

fn dtable_from_kvm(d: &kvm_dtable) -> DescriptorTable {
    DescriptorTable { base: d.base, limit: d.limit, _pad: [0; 3] }
}

/// A task register for a CPU that never executed LTR: a busy 32-bit TSS at 0 (what the CPU
/// holds after reset). VM entry refuses an unusable TR in protected mode, tier 0 does not care.
pub fn default_tr() -> Segment {
    Segment { base: 0, limit: 0xffff, selector: 0, attr: 0xb | attr::P }
}

pub fn sregs_from_state(s: &CpuState) -> kvm_sregs {
    let seg = |i: usize| segment_to_kvm(&s.segs[i]);
    let tr = if s.tr.attr & attr::P == 0 { default_tr() } else { s.tr };
    kvm_sregs {
        es: seg(0),
        cs: seg(1),
        ss: seg(2),
        ds: seg(3),
        fs: seg(4),
        gs: seg(5),
        tr: segment_to_kvm(&tr),
        ldt: segment_to_kvm(&s.ldtr),
        gdt: dtable_to_kvm(&s.gdtr),
        idt: dtable_to_kvm(&s.idtr),
        cr0: s.cr0,
        cr2: s.cr2,
        cr3: s.cr3,
        cr4: s.cr4,
        cr8: s.cr8,
        efer: s.efer,
        apic_base: s.msr.apic_base,
        interrupt_bitmap: [0; 4],
    }
}

/// Writes `k` into `s`. `tr_was_unset`: we handed KVM [`default_tr`] for a never-loaded TR; if
/// it comes back unchanged, ours stays never-loaded.
pub fn sregs_into_state(k: &kvm_sregs, s: &mut CpuState, tr_was_unset: bool) {
    for (i, ks) in [&k.es, &k.cs, &k.ss, &k.ds, &k.fs, &k.gs].into_iter().enumerate() {
        s.segs[i] = segment_from_kvm(ks);
    }
    let tr = segment_from_kvm(&k.tr);
    if !(tr_was_unset && tr == default_tr()) {
        s.tr = tr;
    }
    s.ldtr = segment_from_kvm(&k.ldt);
    s.gdtr = dtable_from_kvm(&k.gdt);
    s.idtr = dtable_from_kvm(&k.idt);
    s.cr0 = k.cr0;
    s.cr2 = k.cr2;
    s.cr3 = k.cr3;
    s.cr4 = k.cr4;
    s.cr8 = k.cr8;
    s.efer = k.efer;
    s.msr.apic_base = k.apic_base;
    // CPL: 0 in real mode; otherwise SS.DPL, which equals CPL in protected and long mode (VMX
    // keeps CPL there too).
    s.cpl = if s.cr0 & emu::state::ctrl::CR0_PE == 0 { 0 } else { k.ss.dpl & 3 };
}

/// Writes the FXSAVE64 image (as `interp::sse::fxsave::save_image` builds it) into the legacy
/// region of an XSAVE area, and marks x87 and SSE state present in XSTATE_BV (byte 512), so
/// KVM_SET_XSAVE takes them. (KVM_SET_FPU would be simpler but ignores MXCSR on some kernels,
/// this host's among them.)
pub fn image_into_xsave(b: &[u8; IMAGE], x: &mut kvm_xsave) {
    for (i, word) in x.region.iter_mut().take(IMAGE / 4).enumerate() {
        *word = u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    }
    x.region[7] = 0xffff; // MXCSR_MASK: every bit tier 0 allows
    x.region[128] |= 0x3; // XSTATE_BV: x87 | SSE
}

/// The legacy region of an XSAVE area as an FXSAVE64 image, for
/// `interp::sse::fxsave::load_image`. A component whose XSTATE_BV bit is clear is in its initial
/// state (SDM Vol. 1, 13.6), whatever the region holds: FCW 037F and empty tags for x87, zero
/// XMM registers for SSE (MXCSR is always taken from the legacy region).
pub fn image_from_xsave(x: &kvm_xsave) -> [u8; IMAGE] {
    let mut b = [0u8; IMAGE];
    for (i, word) in x.region.iter().take(IMAGE / 4).enumerate() {
        b[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    let bv = x.region[128];
    if bv & 1 == 0 {
        let mxcsr = [b[24], b[25], b[26], b[27], b[28], b[29], b[30], b[31]];
        b[..160].fill(0);
        b[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        b[24..32].copy_from_slice(&mxcsr);
    }
    if bv & 2 == 0 {
        b[160..].fill(0);
    }
    b
}

pub fn debugregs_from_state(s: &CpuState) -> kvm_debugregs {
    kvm_debugregs { db: [s.dr[0], s.dr[1], s.dr[2], s.dr[3]], dr6: s.dr[6], dr7: s.dr[7], ..Default::default() }
}

pub fn debugregs_into_state(d: &kvm_debugregs, s: &mut CpuState) {
    s.dr[..4].copy_from_slice(&d.db);
    s.dr[6] = d.dr6;
    s.dr[7] = d.dr7;
}

/// Values of [`MOVED_MSRS`] from our state, in that order.
pub fn msrs_from_state(s: &CpuState) -> [u64; MOVED_MSRS.len()] {
    let m = &s.msr;
    [
        m.sysenter_cs,
        m.sysenter_esp,
        m.sysenter_eip,
        m.pat,
        m.star,
        m.lstar,
        m.cstar,
        m.sfmask,
        m.kernel_gs_base,
        m.tsc_aux,
        m.misc_enable,
    ]
}

/// Stores one MSR value read from KVM into our state (unknown indices are ignored).
pub fn msr_into_state(index: u32, value: u64, s: &mut CpuState) {
    let m = &mut s.msr;
    match index {
        msr::SYSENTER_CS => m.sysenter_cs = value,
        msr::SYSENTER_ESP => m.sysenter_esp = value,
        msr::SYSENTER_EIP => m.sysenter_eip = value,
        msr::PAT => m.pat = value,
        msr::STAR => m.star = value,
        msr::LSTAR => m.lstar = value,
        msr::CSTAR => m.cstar = value,
        msr::SFMASK => m.sfmask = value,
        msr::KERNEL_GS_BASE => m.kernel_gs_base = value,
        msr::TSC_AUX => m.tsc_aux = value,
        msr::MISC_ENABLE => m.misc_enable = value,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emu::state::SegReg;

    /// A state with every converted field distinct, so a swapped or dropped field shows.
    fn busy_state() -> CpuState {
        let mut s = CpuState::default();
        for (i, g) in s.gpr.iter_mut().enumerate() {
            *g = 0x1111_1111_1111_1111u64.wrapping_mul(i as u64 + 1);
        }
        s.rip = 0xffff_ffff_8100_0000;
        s.set_rflags(0x2 | 0x1 | 0x40 | 0x200 | 0x800 | 0x4_0000);
        s.segs[SegReg::Cs as usize] = Segment::flat_code64(0x10, 0);
        s.segs[SegReg::Ss as usize] = Segment::flat_data(0x18, 0);
        s.segs[SegReg::Fs as usize] = Segment { base: 0x7fff_0000_1000, ..Segment::flat_data(0, 3) };
        s.segs[SegReg::Ds as usize] = Segment::default(); // null, unusable
        s.tr = Segment { base: 0xffff_8800_0000_4000, limit: 0x67, selector: 0x40, attr: 0xb | attr::P };
        s.gdtr = DescriptorTable { base: 0x1000, limit: 0x7f, _pad: [0; 3] };
        s.idtr = DescriptorTable { base: 0x2000, limit: 0xfff, _pad: [0; 3] };
        s.cr0 = 0x8005_0033;
        s.cr2 = 0xdead_b000;
        s.cr3 = 0x0010_0000;
        s.cr4 = 0x6b0;
        s.cr8 = 3;
        s.efer = 0xd01;
        s.msr.apic_base = 0xfee0_0900;
        s.cpl = 0;
        s
    }

    #[test]
    fn registers_round_trip() {
        let s = busy_state();
        let mut t = CpuState::default();
        regs_into_state(&regs_from_state(&s), &mut t);
        sregs_into_state(&sregs_from_state(&s), &mut t, false);
        assert_eq!(t.gpr, s.gpr);
        assert_eq!(t.rip, s.rip);
        assert_eq!(t.rflags(), s.rflags());
        for i in 0..6 {
            let (a, b) = (t.segs[i], s.segs[i]);
            // The accessed bit is set for KVM; nothing else may change.
            assert_eq!(
                (a.base, a.limit, a.selector, a.attr & !1),
                (b.base, b.limit, b.selector, b.attr & !1),
                "seg {i}"
            );
        }
        assert_eq!(t.tr, s.tr);
        assert_eq!((t.gdtr, t.idtr), (s.gdtr, s.idtr));
        assert_eq!((t.cr0, t.cr2, t.cr3, t.cr4, t.cr8, t.efer), (s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer));
        assert_eq!(t.msr.apic_base, s.msr.apic_base);
    }

    #[test]
    fn segment_attributes_match_the_vmx_packing() {
        // A 64-bit ring-3 code segment: type 0xb, S, DPL 3, P, L, G (SDM Vol. 3, 24.4.1 layout).
        let k = segment_to_kvm(&Segment::flat_code64(0x33, 3));
        assert_eq!((k.type_, k.s, k.dpl, k.present, k.l, k.db, k.g, k.unusable), (0xb, 1, 3, 1, 1, 0, 1, 0));
        let null = segment_to_kvm(&Segment::default());
        assert_eq!((null.present, null.unusable), (0, 1));
    }

    #[test]
    fn a_never_loaded_task_register_stays_never_loaded() {
        let mut s = busy_state();
        s.tr = Segment::default();
        let k = sregs_from_state(&s);
        assert_eq!(k.tr.present, 1, "VM entry needs a usable TR");
        let mut t = s.clone();
        sregs_into_state(&k, &mut t, true);
        assert_eq!(t.tr, Segment::default());
    }

    #[test]
    fn cpl_follows_ss_dpl_in_protected_mode_and_is_zero_in_real_mode() {
        let mut s = busy_state();
        s.segs[SegReg::Ss as usize] = Segment::flat_data(0x2b, 3);
        s.segs[SegReg::Cs as usize] = Segment::flat_code64(0x33, 3);
        let mut t = CpuState::default();
        sregs_into_state(&sregs_from_state(&s), &mut t, false);
        assert_eq!(t.cpl, 3);
        s.cr0 = 0x10;
        sregs_into_state(&sregs_from_state(&s), &mut t, false);
        assert_eq!(t.cpl, 0);
    }

    #[test]
    fn fpu_image_round_trips_through_the_xsave_area() {
        let mut img = [0u8; IMAGE];
        for (i, b) in img.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        img[28..32].copy_from_slice(&0xffffu32.to_le_bytes()); // MXCSR_MASK is ours
        let mut x = kvm_xsave::default();
        image_into_xsave(&img, &mut x);
        assert_eq!(x.region[128] & 3, 3, "x87 and SSE marked present");
        assert_eq!(image_from_xsave(&x), img);
    }

    #[test]
    fn components_in_their_initial_state_read_as_reset_values() {
        let mut x = kvm_xsave::default();
        x.region.iter_mut().take(IMAGE / 4).for_each(|w| *w = 0xdead_beef);
        x.region[6] = 0x1f80; // MXCSR
        x.region[128] = 0; // XSTATE_BV: nothing present
        let b = image_from_xsave(&x);
        assert_eq!(u16::from_le_bytes([b[0], b[1]]), 0x037f, "FCW after FNINIT");
        assert_eq!(b[4], 0, "all registers empty");
        assert_eq!(u32::from_le_bytes([b[24], b[25], b[26], b[27]]), 0x1f80);
        assert!(b[160..].iter().all(|&v| v == 0), "XMM registers zero");
    }

    #[test]
    fn msrs_round_trip_in_order() {
        let mut s = CpuState::default();
        s.msr.star = 1;
        s.msr.lstar = 2;
        s.msr.cstar = 3;
        s.msr.sfmask = 4;
        s.msr.kernel_gs_base = 5;
        s.msr.sysenter_cs = 6;
        s.msr.sysenter_esp = 7;
        s.msr.sysenter_eip = 8;
        s.msr.pat = 9;
        s.msr.tsc_aux = 10;
        s.msr.misc_enable = 11;
        let mut t = CpuState::default();
        for (i, v) in MOVED_MSRS.iter().zip(msrs_from_state(&s)) {
            msr_into_state(*i, v, &mut t);
        }
        assert_eq!(t.msr, s.msr);
    }
}
