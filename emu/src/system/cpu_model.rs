//! CPU models (`strata run --cpu MODEL`): the identity a guest reads with CPUID — vendor,
//! family/model/stepping, brand, cache and topology leaves — and the feature bits each model
//! reports. This is the one table: tier 0's CPUID (`interp::misc::cpuid`), the KVM engine's
//! CPUID filter (`tiers/src/kvm/cpuid.rs`), the CR4 bits MOV CR4 accepts (`control.rs`) and the
//! vendor-specific MSRs (`msr.rs`) all read it.
//!
//! Every model reports only features tier 0 implements (a test in `interp::misc` checks each
//! model against the families' own CPUID constants), so the models differ in identity, caches
//! and vendor conventions, not in what code runs. Each identity is one a Linux kernel knows, so
//! it takes the vendor's own set-up path instead of "vendor unknown, using generic init".
//!
//! All models set CPUID.1:ECX[31] (a hypervisor is present; SDM Vol. 2A, CPUID, table 3-10,
//! "not used, always 0" on hardware, set by every hypervisor), which tells a guest kernel not to
//! expect bare-metal extras such as performance counters; and MCE/MCA with IA32_MCG_CAP = 0
//! (no banks), which is what a kernel probes to start its machine-check handler.

/// A CPU vendor: selects the vendor string and the vendor's leaf conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    /// "GenuineIntel": cache leaves 2 and 4, topology leaf 0Bh (SDM Vol. 2A, CPUID).
    Intel,
    /// "AuthenticAMD": cache leaves 8000_0005h/8000_0006h, core count in 8000_0008h (APM Vol. 3,
    /// appendix E).
    Amd,
}

impl Vendor {
    /// The 12-byte vendor string (CPUID.0: EBX, EDX, ECX).
    pub fn id(self) -> &'static [u8; 12] {
        match self {
            Vendor::Intel => b"GenuineIntel",
            Vendor::Amd => b"AuthenticAMD",
        }
    }
}

/// The feature registers a model reports (each a subset of what tier 0 implements).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    pub leaf1_ecx: u32,
    pub leaf1_edx: u32,
    /// CPUID.(7,0):EBX.
    pub leaf7_ebx: u32,
    /// CPUID.(7,0):ECX (OSPKE, bit 4, is added at run time from CR4.PKE).
    pub leaf7_ecx: u32,
    /// CPUID.8000_0001h:ECX and EDX.
    pub ext1_ecx: u32,
    pub ext1_edx: u32,
    /// CPUID.8000_0007h:EDX (power management; bit 8 is the invariant TSC).
    pub ext7_edx: u32,
}

/// One cache as CPUID leaf 4 describes it (SDM Vol. 2A, CPUID leaf 04h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cache {
    /// 1 data, 2 instruction, 3 unified.
    pub kind: u8,
    pub level: u8,
    pub size_kib: u32,
    pub ways: u32,
    pub line: u32,
}

impl Cache {
    /// Number of sets (size / (ways * line)).
    pub fn sets(&self) -> u32 {
        self.size_kib * 1024 / (self.ways * self.line)
    }
}

/// A CPU model: identity, features, caches.
#[derive(Debug, PartialEq, Eq)]
pub struct CpuModel {
    /// Name on the command line.
    pub name: &'static str,
    /// One line for `--cpu help` and the README.
    pub description: &'static str,
    pub vendor: Vendor,
    /// Highest basic and extended leaf (CPUID.0:EAX, CPUID.8000_0000h:EAX).
    pub max_basic: u32,
    pub max_ext: u32,
    /// CPUID.1:EAX: stepping [3:0], model [7:4], family [11:8], extended model [19:16],
    /// extended family [27:20].
    pub signature: u32,
    /// Brand string (CPUID 8000_0002h..8000_0004h), at most 47 bytes.
    pub brand: &'static str,
    pub features: Features,
    /// The caches, innermost first (leaf 4 on Intel; L1D, L1I, L2 on AMD's 8000_0005h/6h).
    pub caches: &'static [Cache],
}

/// CPUID.1:EDX bit numbers used below (SDM Vol. 2A, table 3-11).
pub mod edx1 {
    pub const FPU: u32 = 1 << 0;
    /// Debugging extensions: CR4.DE (DR4/DR5 are #UD instead of aliases).
    pub const DE: u32 = 1 << 2;
    pub const PSE: u32 = 1 << 3;
    pub const TSC: u32 = 1 << 4;
    pub const MSR: u32 = 1 << 5;
    pub const PAE: u32 = 1 << 6;
    pub const MCE: u32 = 1 << 7;
    pub const CX8: u32 = 1 << 8;
    pub const APIC: u32 = 1 << 9;
    /// SYSENTER/SYSEXIT and the IA32_SYSENTER_* MSRs.
    pub const SEP: u32 = 1 << 11;
    pub const PGE: u32 = 1 << 13;
    pub const MCA: u32 = 1 << 14;
    pub const CMOV: u32 = 1 << 15;
    pub const PAT: u32 = 1 << 16;
    pub const CLFSH: u32 = 1 << 19;
    pub const FXSR: u32 = 1 << 24;
    pub const SSE: u32 = 1 << 25;
    pub const SSE2: u32 = 1 << 26;
}

/// CPUID.1:ECX bit numbers (SDM Vol. 2A, table 3-10).
pub mod ecx1 {
    pub const CX16: u32 = 1 << 13;
    pub const MOVBE: u32 = 1 << 22;
    pub const POPCNT: u32 = 1 << 23;
    pub const HYPERVISOR: u32 = 1 << 31;
}

/// CPUID.(7,0):EBX bit numbers (SDM Vol. 2A, table 3-8).
pub mod ebx7 {
    pub const BMI1: u32 = 1 << 3;
    pub const BMI2: u32 = 1 << 8;
    pub const ADX: u32 = 1 << 19;
    /// Supervisor-mode execution prevention (CR4.SMEP).
    pub const SMEP: u32 = 1 << 7;
    /// Supervisor-mode access prevention (CR4.SMAP, STAC/CLAC).
    pub const SMAP: u32 = 1 << 20;
}

/// CPUID.(7,0):ECX bit numbers (SDM Vol. 2A, table 3-8).
pub mod ecx7 {
    /// Protection keys for user-mode pages (CR4.PKE, PKRU, RDPKRU/WRPKRU).
    pub const PKU: u32 = 1 << 3;
    /// CR4.PKE as software set it (reported at run time, never in a model's table).
    pub const OSPKE: u32 = 1 << 4;
    /// Protection keys for supervisor-mode pages (CR4.PKS, IA32_PKRS).
    pub const PKS: u32 = 1 << 31;
}

/// CPUID.8000_0001h bit numbers (SDM Vol. 2A; APM Vol. 3, E.4.2).
pub mod ext1 {
    pub const ECX_LAHF_LM: u32 = 1 << 0;
    /// LZCNT (Intel) / ABM (AMD): the same bit.
    pub const ECX_LZCNT: u32 = 1 << 5;
    pub const EDX_SYSCALL: u32 = 1 << 11;
    pub const EDX_NX: u32 = 1 << 20;
    pub const EDX_RDTSCP: u32 = 1 << 27;
    pub const EDX_LM: u32 = 1 << 29;
    /// AMD repeats leaf 1's EDX bits 0-9, 12-17, 23 and 24 here (APM Vol. 3, E.4.2).
    pub const EDX_AMD_MIRROR: u32 = 0x0183_f3ff;
}

/// Invariant TSC (CPUID.8000_0007h:EDX[8]): the machine's TSC follows its clock at a fixed rate.
pub const EXT7_INVARIANT_TSC: u32 = 1 << 8;

/// The features both real models report: everything tier 0 implements, plus MCE/MCA (with no
/// banks) and the hypervisor bit.
const LEAF1_EDX: u32 = edx1::FPU
    | edx1::DE
    | edx1::PSE
    | edx1::TSC
    | edx1::MSR
    | edx1::PAE
    | edx1::MCE
    | edx1::CX8
    | edx1::APIC
    | edx1::SEP
    | edx1::PGE
    | edx1::MCA
    | edx1::CMOV
    | edx1::PAT
    | edx1::CLFSH
    | edx1::FXSR
    | edx1::SSE
    | edx1::SSE2;
const LEAF1_ECX: u32 = ecx1::CX16 | ecx1::MOVBE | ecx1::POPCNT | ecx1::HYPERVISOR;
const LEAF7_EBX: u32 = ebx7::BMI1 | ebx7::BMI2 | ebx7::ADX;
const EXT1_ECX: u32 = ext1::ECX_LAHF_LM | ext1::ECX_LZCNT;
const EXT1_EDX: u32 = ext1::EDX_SYSCALL | ext1::EDX_NX | ext1::EDX_RDTSCP | ext1::EDX_LM;

/// AMD K8 identity (the default): family 0Fh, model 6Bh, stepping 2, the signature of the
/// 65 nm Athlon 64 X2 ("Brisbane"), and K8's caches (64 KiB 2-way L1D and L1I, 512 KiB 16-way
/// L2; AMD's K8 BIOS and kernel developer's guide, CPUID 8000_0005h/8000_0006h).
pub static K8: CpuModel = CpuModel {
    name: "k8",
    description: "AuthenticAMD family 0Fh model 6Bh (K8), single core; the default",
    vendor: Vendor::Amd,
    max_basic: 7,
    max_ext: 0x8000_0008,
    signature: 0x0006_0fb2,
    brand: "Strata virtual CPU (AMD K8 class)",
    features: Features {
        leaf1_ecx: LEAF1_ECX,
        leaf1_edx: LEAF1_EDX,
        leaf7_ebx: LEAF7_EBX,
        leaf7_ecx: 0,
        ext1_ecx: EXT1_ECX,
        ext1_edx: EXT1_EDX | (LEAF1_EDX & ext1::EDX_AMD_MIRROR),
        ext7_edx: EXT7_INVARIANT_TSC,
    },
    caches: &[
        Cache { kind: 1, level: 1, size_kib: 64, ways: 2, line: 64 },
        Cache { kind: 2, level: 1, size_kib: 64, ways: 2, line: 64 },
        Cache { kind: 3, level: 2, size_kib: 512, ways: 16, line: 64 },
    ],
};

/// Intel Broadwell identity: family 6, model 3Dh, stepping 4 (Core i5/i7 5th generation), with
/// its caches (32 KiB 8-way L1D and L1I, 256 KiB 8-way L2, 3 MiB 12-way L3).
pub static BROADWELL: CpuModel = CpuModel {
    name: "broadwell",
    description: "GenuineIntel family 6 model 3Dh (Broadwell), one core, one thread",
    vendor: Vendor::Intel,
    max_basic: 0xd,
    max_ext: 0x8000_0008,
    signature: 0x0003_06d4,
    brand: "Strata virtual CPU (Intel Broadwell class)",
    features: Features {
        leaf1_ecx: LEAF1_ECX,
        leaf1_edx: LEAF1_EDX,
        // Broadwell is the first Intel core with SMAP; SMEP came with Ivy Bridge.
        leaf7_ebx: LEAF7_EBX | ebx7::SMEP | ebx7::SMAP,
        leaf7_ecx: 0,
        ext1_ecx: EXT1_ECX,
        ext1_edx: EXT1_EDX,
        ext7_edx: EXT7_INVARIANT_TSC,
    },
    caches: &[
        Cache { kind: 1, level: 1, size_kib: 32, ways: 8, line: 64 },
        Cache { kind: 2, level: 1, size_kib: 32, ways: 8, line: 64 },
        Cache { kind: 3, level: 2, size_kib: 256, ways: 8, line: 64 },
        Cache { kind: 3, level: 3, size_kib: 3072, ways: 12, line: 64 },
    ],
};

/// Intel Sapphire Rapids identity (opt-in: the newest features tier 0 models): family 6, model
/// 8Fh, stepping 8 (4th generation Xeon Scalable), with one core's caches (48 KiB 12-way L1D,
/// 32 KiB 8-way L1I, 2 MiB 16-way L2, and the 1.875 MiB 15-way slice of L3 per core). It adds
/// protection keys for user pages (PKU, Skylake-SP and later) and for supervisor pages (PKS,
/// new with Sapphire Rapids) to Broadwell's SMEP and SMAP. The rest of its real feature set
/// (AVX-512, AMX, XSAVE) is not reported: tier 0 does not implement it.
pub static SAPPHIRE_RAPIDS: CpuModel = CpuModel {
    name: "sapphirerapids",
    description: "GenuineIntel family 6 model 8Fh (Sapphire Rapids), one core, one thread; adds PKU and PKS",
    vendor: Vendor::Intel,
    max_basic: 0xd,
    max_ext: 0x8000_0008,
    signature: 0x0008_06f8,
    brand: "Strata virtual CPU (Intel Sapphire Rapids)",
    features: Features {
        leaf1_ecx: LEAF1_ECX,
        leaf1_edx: LEAF1_EDX,
        leaf7_ebx: LEAF7_EBX | ebx7::SMEP | ebx7::SMAP,
        leaf7_ecx: ecx7::PKU | ecx7::PKS,
        ext1_ecx: EXT1_ECX,
        ext1_edx: EXT1_EDX,
        ext7_edx: EXT7_INVARIANT_TSC,
    },
    caches: &[
        Cache { kind: 1, level: 1, size_kib: 48, ways: 12, line: 64 },
        Cache { kind: 2, level: 1, size_kib: 32, ways: 8, line: 64 },
        Cache { kind: 3, level: 2, size_kib: 2048, ways: 16, line: 64 },
        Cache { kind: 3, level: 3, size_kib: 1920, ways: 15, line: 64 },
    ],
};

/// Every model, the default first.
pub static MODELS: [&CpuModel; 3] = [&K8, &BROADWELL, &SAPPHIRE_RAPIDS];

/// The model a machine gets unless told otherwise.
pub fn default_model() -> &'static CpuModel {
    MODELS[0]
}

/// The model called `name`.
///
/// # Errors
/// An unknown name: the message lists the known ones.
pub fn by_name(name: &str) -> Result<&'static CpuModel, String> {
    MODELS.iter().copied().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
        format!("unknown CPU model '{name}' (known: {})", names.join(", "))
    })
}

/// CR4 bits (SDM Vol. 3A, 2.5) and the feature each needs.
mod cr4 {
    pub const TSD: u64 = 1 << 2;
    pub const DE: u64 = 1 << 3;
    pub const PSE: u64 = 1 << 4;
    pub const PAE: u64 = 1 << 5;
    pub const MCE: u64 = 1 << 6;
    pub const PGE: u64 = 1 << 7;
    pub const PCE: u64 = 1 << 8;
    pub const OSFXSR: u64 = 1 << 9;
    pub const OSXMMEXCPT: u64 = 1 << 10;
    pub const SMEP: u64 = 1 << 20;
    pub const SMAP: u64 = 1 << 21;
    pub const PKE: u64 = 1 << 22;
    pub const PKS: u64 = 1 << 24;
}

impl CpuModel {
    /// The CR4 bits MOV CR4 accepts: a bit whose feature this model does not report is
    /// reserved, and setting it raises #GP(0) (SDM Vol. 3A, 2.5: "attempting to set any
    /// reserved bits in CR4 ... results in #GP"; e.g. VME, DE, UMIP, FSGSBASE, PCIDE, OSXSAVE,
    /// SMEP, SMAP are tied to CPUID flags none of these models report).
    pub fn cr4_allowed(&self) -> u64 {
        let f = &self.features;
        let pairs = [
            (edx1::TSC, cr4::TSD),
            (edx1::DE, cr4::DE),
            (edx1::PSE, cr4::PSE),
            (edx1::PAE, cr4::PAE),
            (edx1::MCE, cr4::MCE),
            (edx1::PGE, cr4::PGE),
            (edx1::FXSR, cr4::OSFXSR),
            (edx1::SSE, cr4::OSXMMEXCPT),
        ];
        let leaf7 = [
            (f.leaf7_ebx & ebx7::SMEP, cr4::SMEP),
            (f.leaf7_ebx & ebx7::SMAP, cr4::SMAP),
            (f.leaf7_ecx & ecx7::PKU, cr4::PKE),
            (f.leaf7_ecx & ecx7::PKS, cr4::PKS),
        ];
        let base = pairs.iter().filter(|(bit, _)| f.leaf1_edx & bit != 0).fold(cr4::PCE, |acc, (_, c)| acc | c);
        leaf7.iter().filter(|(has, _)| *has != 0).fold(base, |acc, (_, c)| acc | c)
    }

    /// Whether protection keys for user pages are reported (CR4.PKE, RDPKRU/WRPKRU exist).
    pub fn has_pku(&self) -> bool {
        self.features.leaf7_ecx & ecx7::PKU != 0
    }

    /// Whether protection keys for supervisor pages are reported (CR4.PKS, IA32_PKRS exist).
    pub fn has_pks(&self) -> bool {
        self.features.leaf7_ecx & ecx7::PKS != 0
    }

    /// Whether SMAP is reported (STAC and CLAC exist).
    pub fn has_smap(&self) -> bool {
        self.features.leaf7_ebx & ebx7::SMAP != 0
    }

    /// Whether the machine-check architecture is reported (IA32_MCG_CAP and IA32_MCG_STATUS
    /// then exist).
    pub fn has_mca(&self) -> bool {
        self.features.leaf1_edx & edx1::MCA != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for m in MODELS {
            assert_eq!(by_name(m.name).unwrap(), m);
        }
        let e = by_name("pentium").unwrap_err();
        assert!(e.contains("k8") && e.contains("broadwell"), "{e}");
    }

    #[test]
    fn brands_fit_the_48_byte_field_with_a_nul() {
        for m in MODELS {
            assert!(m.brand.len() < 48, "{}", m.name);
        }
    }

    #[test]
    fn cache_geometry_is_whole() {
        // Leaf 4 reports sets, ways and line size separately; their product must be the size.
        for m in MODELS {
            for c in m.caches {
                assert_eq!(c.sets() * c.ways * c.line, c.size_kib * 1024, "{} {:?}", m.name, c);
                assert!(c.sets().is_power_of_two(), "{} {:?}", m.name, c);
            }
        }
    }

    #[test]
    fn cr4_follows_the_features() {
        // SDM Vol. 3A, 2.5: OSFXSR needs FXSR, MCE needs MCE, DE needs DE; VME (bit 0) is not
        // reported, so it is reserved.
        let a = K8.cr4_allowed();
        assert_ne!(a & cr4::OSFXSR, 0);
        assert_ne!(a & cr4::MCE, 0);
        assert_eq!(a & 0b1001, 0b1000);
        assert_eq!(a & (1 << 20), 0, "SMEP is not reported");
        // SDM Vol. 3A, 2.5: SMEP (20), SMAP (21), PKE (22), PKS (24) with their CPUID flags.
        let b = BROADWELL.cr4_allowed();
        assert_eq!(b & (0b1011 << 21 | 1 << 20), 0b11 << 20);
        let s = SAPPHIRE_RAPIDS.cr4_allowed();
        assert_eq!(s & (0b1011 << 21 | 1 << 20), 0b1011 << 21 | 1 << 20);
    }
}
