//! The one architectural state every engine reads and writes (ARCHITECTURE.md, decision 1).
//!
//! `CpuState` is plain `#[repr(C)]` data so a JIT can address fields at fixed offsets and the KVM
//! engine can convert it to `kvm_regs`/`kvm_sregs` at the boundary. Nothing here knows about
//! decoding or execution. EFLAGS is kept lazily: the six arithmetic flags live in [`LazyFlags`]
//! (see `flags.rs`), the rest in `rflags_other`.

mod segment;

pub use segment::{attr, DescriptorTable, SegReg, Segment};

use crate::flags::LazyFlags;

/// GPR numbers in the hardware encoding order (ModRM reg field, REX extended).
pub mod gpr {
    pub const RAX: usize = 0;
    pub const RCX: usize = 1;
    pub const RDX: usize = 2;
    pub const RBX: usize = 3;
    pub const RSP: usize = 4;
    pub const RBP: usize = 5;
    pub const RSI: usize = 6;
    pub const RDI: usize = 7;
}

/// RFLAGS bits, kept in their own bottom-layer file so the lazy flags (`flags`) can name them
/// without importing the state that holds the lazy flags.
pub use crate::rflags;

/// Control-register and EFER bits the core acts on (SDM Vol. 3, 2.5).
pub mod ctrl {
    pub const CR0_PE: u64 = 1 << 0;
    pub const CR0_MP: u64 = 1 << 1;
    pub const CR0_EM: u64 = 1 << 2;
    pub const CR0_TS: u64 = 1 << 3;
    pub const CR0_ET: u64 = 1 << 4;
    pub const CR0_NE: u64 = 1 << 5;
    pub const CR0_WP: u64 = 1 << 16;
    pub const CR0_AM: u64 = 1 << 18;
    pub const CR0_PG: u64 = 1 << 31;
    pub const CR4_PSE: u64 = 1 << 4;
    pub const CR4_PAE: u64 = 1 << 5;
    pub const CR4_PGE: u64 = 1 << 7;
    pub const CR4_OSFXSR: u64 = 1 << 9;
    pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
    pub const EFER_SCE: u64 = 1 << 0;
    pub const EFER_LME: u64 = 1 << 8;
    pub const EFER_LMA: u64 = 1 << 10;
    pub const EFER_NXE: u64 = 1 << 11;
}

/// One x87 data register as stored by FSAVE: 64-bit significand, then sign and exponent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct X87Reg {
    pub signif: u64,
    pub sign_exp: u16,
    pub _pad: [u16; 3],
}

/// x87 FPU state (SDM Vol. 1, 8.1). Registers are stored by physical number (R0..R7); ST(i) is
/// `regs[(top + i) & 7]`, with `top` kept inside `fsw` bits 13:11.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpuState {
    pub regs: [X87Reg; 8],
    /// Control word: exception masks, precision control, rounding control.
    pub fcw: u16,
    /// Status word, including TOP (bits 13:11) and the condition codes.
    pub fsw: u16,
    /// Full tag word, two bits per physical register (00 valid, 01 zero, 10 special, 11 empty).
    pub ftw: u16,
    /// Last non-control opcode (11 bits).
    pub fop: u16,
    /// Last instruction pointer and data pointer (64-bit form, as FXSAVE64 stores them).
    pub fip: u64,
    pub fdp: u64,
    pub fcs: u16,
    pub fds: u16,
    pub _pad: [u16; 2],
}

impl Default for FpuState {
    /// The state after FNINIT (SDM Vol. 1, 8.1.4 / Table 8-9 context): FCW 037F, all registers empty.
    fn default() -> Self {
        FpuState {
            regs: [X87Reg::default(); 8],
            fcw: 0x037f,
            fsw: 0,
            ftw: 0xffff,
            fop: 0,
            fip: 0,
            fdp: 0,
            fcs: 0,
            fds: 0,
            _pad: [0; 2],
        }
    }
}

/// Model-specific registers the core implements (the rest raise #GP when touched).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Msrs {
    pub star: u64,
    pub lstar: u64,
    pub cstar: u64,
    pub sfmask: u64,
    pub kernel_gs_base: u64,
    pub sysenter_cs: u64,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub pat: u64,
    pub tsc_aux: u64,
    pub apic_base: u64,
    pub misc_enable: u64,
}

/// The architectural state of one x86-64 CPU.
#[repr(C)]
#[derive(Clone, Debug)]
pub struct CpuState {
    /// RAX..R15 in encoding order.
    pub gpr: [u64; 16],
    /// Address of the next instruction to execute (valid between instructions).
    pub rip: u64,
    /// CF, PF, AF, ZF, SF, OF in lazy form.
    pub lazy: LazyFlags,
    /// Every RFLAGS bit except the six arithmetic flags (DF, IF, TF, IOPL, AC, ID, ...; bit 1 set).
    pub rflags_other: u64,
    /// ES, CS, SS, DS, FS, GS, in the SReg encoding order.
    pub segs: [Segment; 6],
    pub ldtr: Segment,
    pub tr: Segment,
    pub gdtr: DescriptorTable,
    pub idtr: DescriptorTable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub dr: [u64; 8],
    pub xcr0: u64,
    /// XMM0..XMM15, little-endian lanes.
    pub xmm: [[u64; 2]; 16],
    pub mxcsr: u32,
    /// Current privilege level (CS.RPL in protected mode; 0 in real mode).
    pub cpl: u8,
    pub _pad: [u8; 3],
    pub fpu: FpuState,
    pub msr: Msrs,
    /// Added to the machine clock to form the TSC (written through WRMSR IA32_TSC).
    pub tsc_offset: u64,
}

impl Default for CpuState {
    fn default() -> Self {
        CpuState {
            gpr: [0; 16],
            rip: 0,
            lazy: LazyFlags::default(),
            rflags_other: rflags::FIXED1,
            segs: [Segment::default(); 6],
            ldtr: Segment::default(),
            tr: Segment::default(),
            gdtr: DescriptorTable::default(),
            idtr: DescriptorTable::default(),
            cr0: ctrl::CR0_ET,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            cr8: 0,
            efer: 0,
            dr: [0, 0, 0, 0, 0, 0, 0xffff_0ff0, 0x400],
            xcr0: 1,
            xmm: [[0; 2]; 16],
            mxcsr: 0x1f80,
            cpl: 0,
            _pad: [0; 3],
            fpu: FpuState::default(),
            msr: Msrs::default(),
            tsc_offset: 0,
        }
    }
}

impl CpuState {
    /// RFLAGS as the guest sees it: the lazy arithmetic flags materialized and merged.
    pub fn rflags(&self) -> u64 {
        (self.rflags_other & !rflags::ARITH) | self.lazy.materialize()
    }

    /// Writes RFLAGS as a whole; the arithmetic flags go back into lazy form.
    pub fn set_rflags(&mut self, value: u64) {
        self.lazy = LazyFlags::from_rflags(value);
        self.rflags_other = (value & !rflags::ARITH) | rflags::FIXED1;
    }

    pub fn seg(&self, s: SegReg) -> &Segment {
        &self.segs[s as usize]
    }

    /// True when the CPU executes 64-bit code (IA-32e mode with CS.L set).
    pub fn in_64bit_mode(&self) -> bool {
        self.efer & ctrl::EFER_LMA != 0 && self.segs[SegReg::Cs as usize].long()
    }

    /// Code size in bits (16, 32 or 64) from the mode and the CS descriptor.
    pub fn code_bits(&self) -> u32 {
        let cs = &self.segs[SegReg::Cs as usize];
        if self.cr0 & ctrl::CR0_PE == 0 {
            16
        } else if self.efer & ctrl::EFER_LMA != 0 && cs.long() {
            64
        } else if cs.default_big() {
            32
        } else {
            16
        }
    }
}

/// Byte offsets of the `CpuState` fields generated code addresses (the tier-1 JIT loads and
/// stores guest registers at `[state + offset]`; the KVM conversions rely on the same layout).
/// They are pinned here, as the layout is today, so that a field moved or resized fails the
/// build instead of silently breaking emitted code. Change a number only together with the code
/// generator. `CpuState` and every struct nested in it are `#[repr(C)]`, which makes the layout
/// follow declaration order.
pub mod layout {
    use super::{CpuState, FpuState, Segment, X87Reg};
    use crate::flags::LazyFlags;
    use core::mem::{offset_of, size_of};

    pub const GPR: usize = 0;
    pub const RIP: usize = 128;
    /// `LazyFlags::result`, then `LazyFlags::aux` 8 bytes later.
    pub const LAZY_RESULT: usize = 136;
    pub const LAZY_AUX: usize = 144;
    /// RFLAGS bits other than the six arithmetic flags.
    pub const RFLAGS_OTHER: usize = 152;
    /// `segs[i]` is at `SEGS + i * SEGMENT_SIZE`; its base is at offset 0 of the segment.
    pub const SEGS: usize = 160;
    pub const SEGMENT_SIZE: usize = 16;
    pub const SEGMENT_BASE: usize = 0;
    pub const CR0: usize = 320;
    pub const CR3: usize = 336;
    pub const EFER: usize = 360;
    /// XMM0..XMM15, 16 bytes each. Only 8-byte aligned: generated code must use unaligned
    /// vector loads and stores (MOVUPS), not MOVAPS.
    pub const XMM: usize = 440;
    pub const MXCSR: usize = 696;
    pub const CPL: usize = 700;
    /// x87 data registers R0..R7 (physical order), `X87_REG_SIZE` bytes each: the 64-bit
    /// significand, then the 16-bit sign and exponent.
    pub const FPU_REGS: usize = 704;
    pub const X87_REG_SIZE: usize = 16;
    pub const X87_SIGN_EXP: usize = 8;
    pub const FCW: usize = 832;
    /// Status word, TOP in bits 13:11.
    pub const FSW: usize = 834;
    pub const FTW: usize = 836;
    pub const CPU_STATE_SIZE: usize = 968;

    const _: () = {
        assert!(offset_of!(CpuState, gpr) == GPR);
        assert!(offset_of!(CpuState, rip) == RIP);
        assert!(offset_of!(CpuState, lazy) + offset_of!(LazyFlags, result) == LAZY_RESULT);
        assert!(offset_of!(CpuState, lazy) + offset_of!(LazyFlags, aux) == LAZY_AUX);
        assert!(offset_of!(CpuState, rflags_other) == RFLAGS_OTHER);
        assert!(offset_of!(CpuState, segs) == SEGS);
        assert!(size_of::<Segment>() == SEGMENT_SIZE);
        assert!(offset_of!(Segment, base) == SEGMENT_BASE);
        assert!(offset_of!(CpuState, cr0) == CR0);
        assert!(offset_of!(CpuState, cr3) == CR3);
        assert!(offset_of!(CpuState, efer) == EFER);
        assert!(offset_of!(CpuState, xmm) == XMM);
        assert!(size_of::<[[u64; 2]; 16]>() == 256);
        assert!(offset_of!(CpuState, mxcsr) == MXCSR);
        assert!(offset_of!(CpuState, cpl) == CPL);
        assert!(offset_of!(CpuState, fpu) + offset_of!(FpuState, regs) == FPU_REGS);
        assert!(size_of::<X87Reg>() == X87_REG_SIZE);
        assert!(offset_of!(X87Reg, signif) == 0);
        assert!(offset_of!(X87Reg, sign_exp) == X87_SIGN_EXP);
        assert!(offset_of!(CpuState, fpu) + offset_of!(FpuState, fcw) == FCW);
        assert!(offset_of!(CpuState, fpu) + offset_of!(FpuState, fsw) == FSW);
        assert!(offset_of!(CpuState, fpu) + offset_of!(FpuState, ftw) == FTW);
        assert!(size_of::<CpuState>() == CPU_STATE_SIZE);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rflags_round_trips_through_lazy_form() {
        let mut s = CpuState::default();
        // Every combination of the six arithmetic flags plus DF and IF.
        for bits in 0u64..256 {
            let f = [rflags::CF, rflags::PF, rflags::AF, rflags::ZF, rflags::SF, rflags::OF, rflags::DF, rflags::IF]
                .iter()
                .enumerate()
                .filter(|(i, _)| bits >> i & 1 == 1)
                .fold(rflags::FIXED1, |acc, (_, f)| acc | f);
            s.set_rflags(f);
            assert_eq!(s.rflags(), f, "flags {f:#x}");
        }
    }

    #[test]
    fn reset_values_match_the_sdm() {
        // SDM Vol. 3, Table 9-1: MXCSR 1F80, x87 FCW 037F after FNINIT, DR6 FFFF0FF0, DR7 400.
        let s = CpuState::default();
        assert_eq!(s.mxcsr, 0x1f80);
        assert_eq!(s.fpu.fcw, 0x037f);
        assert_eq!(s.dr[6], 0xffff_0ff0);
        assert_eq!(s.dr[7], 0x400);
        assert_eq!(s.rflags(), 2);
    }
}
