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

/// RFLAGS bits (SDM Vol. 1, 3.4.3).
pub mod rflags {
    pub const CF: u64 = 1 << 0;
    pub const FIXED1: u64 = 1 << 1; // always reads as 1
    pub const PF: u64 = 1 << 2;
    pub const AF: u64 = 1 << 4;
    pub const ZF: u64 = 1 << 6;
    pub const SF: u64 = 1 << 7;
    pub const TF: u64 = 1 << 8;
    pub const IF: u64 = 1 << 9;
    pub const DF: u64 = 1 << 10;
    pub const OF: u64 = 1 << 11;
    pub const IOPL: u64 = 3 << 12;
    pub const NT: u64 = 1 << 14;
    pub const RF: u64 = 1 << 16;
    pub const VM: u64 = 1 << 17;
    pub const AC: u64 = 1 << 18;
    pub const VIF: u64 = 1 << 19;
    pub const VIP: u64 = 1 << 20;
    pub const ID: u64 = 1 << 21;
    /// The six flags kept lazily by arithmetic.
    pub const ARITH: u64 = CF | PF | AF | ZF | SF | OF;
}

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

// The JIT and KVM conversions address these fields by offset; a layout change must be deliberate.
const _: () = {
    assert!(core::mem::offset_of!(CpuState, gpr) == 0);
    assert!(core::mem::offset_of!(CpuState, rip) == 128);
    assert!(core::mem::offset_of!(CpuState, lazy) == 136);
};

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
