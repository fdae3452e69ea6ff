//! Model-specific registers: RDMSR/WRMSR for the ones a Linux kernel touches (SDM Vol. 4),
//! including the machine-check globals of a CPU with no MCE banks and the vendor MSRs of the
//! CPU model (`cpu_model.rs`), and the AMD models' performance counters (`pmu.rs`).
//! Any other MSR raises #GP(0), as hardware does for an unimplemented one (Linux probes with
//! `rdmsr_safe` and copes).

use crate::cpu::Cpu;
use crate::exception::{Fault, Stop};
use crate::state::SegReg;
use crate::system::cpu_model::Vendor;
use crate::system::pmu::AmdPmu;

pub const IA32_TSC: u32 = 0x10;
pub const IA32_APIC_BASE: u32 = 0x1b;
pub const IA32_MISC_ENABLE: u32 = 0x1a0;
pub const IA32_SYSENTER_CS: u32 = 0x174;
pub const IA32_SYSENTER_ESP: u32 = 0x175;
pub const IA32_SYSENTER_EIP: u32 = 0x176;
pub const IA32_PAT: u32 = 0x277;
pub const IA32_TSC_DEADLINE: u32 = 0x6e0;
pub const IA32_EFER: u32 = 0xc000_0080;
pub const IA32_STAR: u32 = 0xc000_0081;
pub const IA32_LSTAR: u32 = 0xc000_0082;
pub const IA32_CSTAR: u32 = 0xc000_0083;
pub const IA32_FMASK: u32 = 0xc000_0084;
pub const IA32_FS_BASE: u32 = 0xc000_0100;
pub const IA32_GS_BASE: u32 = 0xc000_0101;
pub const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;
pub const IA32_TSC_AUX: u32 = 0xc000_0103;
/// Microcode update signature (Intel IA32_BIOS_SIGN_ID; AMD's patch level at the same index).
pub const IA32_BIOS_SIGN_ID: u32 = 0x8b;
/// Machine-check global capability: bank count [7:0], MCG_CTL_P (8), ... (SDM Vol. 3B, 16.3.1.1).
pub const IA32_MCG_CAP: u32 = 0x179;
/// Protection-key rights for supervisor pages (SDM Vol. 4, table 2-2; Vol. 3, 4.6.2), with PKS.
pub const IA32_PKRS: u32 = 0x6e1;
/// Machine-check global status: RIPV, EIPV, MCIP (SDM Vol. 3B, 16.3.1.2).
pub const IA32_MCG_STATUS: u32 = 0x17a;
/// AMD K8 interrupt pending and CMP-halt register (C1E state); Linux reads it on K8/family 10h
/// parts with erratum 400 (AMD BKDG for family 0Fh, MSRC001_0055).
pub const AMD_INT_PENDING_MSG: u32 = 0xc001_0055;

fn canonical(v: u64) -> Result<u64, Stop> {
    if crate::mmu::walk::is_canonical(v) {
        Ok(v)
    } else {
        Err(Stop::Fault(Fault::gp0()))
    }
}

impl Cpu {
    /// The guest-visible TSC.
    pub fn read_tsc(&self) -> u64 {
        self.tsc.tsc(self.retired).wrapping_add(self.state.tsc_offset)
    }

    /// RDMSR.
    ///
    /// # Errors
    /// #GP(0) for an MSR that is not implemented.
    pub fn read_msr(&mut self, msr: u32) -> Result<u64, Stop> {
        let m = &self.state.msr;
        Ok(match msr {
            IA32_TSC => self.read_tsc(),
            IA32_APIC_BASE => m.apic_base,
            IA32_MISC_ENABLE => m.misc_enable,
            IA32_SYSENTER_CS => m.sysenter_cs,
            IA32_SYSENTER_ESP => m.sysenter_esp,
            IA32_SYSENTER_EIP => m.sysenter_eip,
            IA32_PAT => m.pat,
            IA32_EFER => self.state.efer,
            IA32_STAR => m.star,
            IA32_LSTAR => m.lstar,
            IA32_CSTAR => m.cstar,
            IA32_FMASK => m.sfmask,
            IA32_FS_BASE => self.state.segs[SegReg::Fs as usize].base,
            IA32_GS_BASE => self.state.segs[SegReg::Gs as usize].base,
            IA32_KERNEL_GS_BASE => m.kernel_gs_base,
            IA32_TSC_AUX => m.tsc_aux,
            IA32_TSC_DEADLINE => self.tsc_deadline,
            // No microcode update was loaded: signature 0.
            IA32_BIOS_SIGN_ID => 0,
            // No banks, no MCG_CTL, no extended registers; nothing in progress.
            IA32_MCG_CAP | IA32_MCG_STATUS if self.config.model.has_mca() => 0,
            IA32_PKRS if self.config.model.has_pks() => self.pkrs,
            // No C1E, no pending SMI/IOAPIC message bits.
            AMD_INT_PENDING_MSG if self.config.model.vendor == Vendor::Amd => 0,
            m if AmdPmu::decodes(m) && self.config.model.vendor == Vendor::Amd => self.amd_pmu.read(m),
            _ => return Err(Stop::Fault(Fault::gp0())),
        })
    }

    /// WRMSR.
    ///
    /// # Errors
    /// #GP(0) for an unimplemented MSR, reserved bits, or a non-canonical address.
    pub fn write_msr(&mut self, msr: u32, v: u64) -> Result<(), Stop> {
        match msr {
            IA32_TSC => self.state.tsc_offset = v.wrapping_sub(self.tsc.tsc(self.retired)),
            IA32_APIC_BASE => self.state.msr.apic_base = v,
            IA32_MISC_ENABLE => self.state.msr.misc_enable = v,
            IA32_SYSENTER_CS => self.state.msr.sysenter_cs = v & 0xffff,
            IA32_SYSENTER_ESP => self.state.msr.sysenter_esp = canonical(v)?,
            IA32_SYSENTER_EIP => self.state.msr.sysenter_eip = canonical(v)?,
            IA32_PAT => {
                // Each byte must be a valid memory type (0, 1, 4, 5, 6, 7).
                if v.to_le_bytes().iter().any(|b| matches!(b, 2 | 3) || *b > 7) {
                    return Err(Stop::Fault(Fault::gp0()));
                }
                self.state.msr.pat = v
            }
            IA32_EFER => self.write_efer(v)?,
            IA32_STAR => self.state.msr.star = v,
            IA32_LSTAR => self.state.msr.lstar = canonical(v)?,
            IA32_CSTAR => self.state.msr.cstar = canonical(v)?,
            IA32_FMASK => self.state.msr.sfmask = v & 0xffff_ffff,
            IA32_FS_BASE => self.state.segs[SegReg::Fs as usize].base = canonical(v)?,
            IA32_GS_BASE => self.state.segs[SegReg::Gs as usize].base = canonical(v)?,
            IA32_KERNEL_GS_BASE => self.state.msr.kernel_gs_base = canonical(v)?,
            IA32_TSC_AUX => self.state.msr.tsc_aux = v & 0xffff_ffff,
            IA32_TSC_DEADLINE => self.tsc_deadline = v,
            // Writing 0 before reading is how software asks for the signature; nothing to load.
            IA32_BIOS_SIGN_ID => {}
            // With no machine check possible the status stays 0; clearing it is the one write
            // software makes (MCG_CAP is read-only: a write is #GP, as below).
            IA32_MCG_STATUS if self.config.model.has_mca() && v == 0 => {}
            // Bits 63:32 are reserved (#GP). New rights change what cached translations allow.
            IA32_PKRS if self.config.model.has_pks() && v >> 32 == 0 => {
                self.pkrs = v;
                self.softmmu.flush_tlb();
            }
            AMD_INT_PENDING_MSG if self.config.model.vendor == Vendor::Amd => {}
            m if AmdPmu::decodes(m) && self.config.model.vendor == Vendor::Amd => self.amd_pmu.write(m, v)?,
            _ => return Err(Stop::Fault(Fault::gp0())),
        }
        Ok(())
    }
}
