//! The host CPU as CPUID describes it (x86-64 hosts): vendor, brand string, family and model,
//! and the CPUID bits that decide what a host-differential test may compare, because Intel and
//! AMD CPUs (and generations of each) legitimately store different values there.
//!
//! Tests that compare with the host call [`announce`], which writes one line naming the CPU to
//! stderr the first time it is called in a test binary. It writes to the stream directly, past
//! the test harness's output capture, so every test log (and every failure) says which CPU the
//! suite ran on.

use core::arch::x86_64::{__cpuid, __cpuid_count};
use std::io::Write;
use std::sync::OnceLock;

/// What the tests need to know about the host CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostCpu {
    /// CPUID leaf 0: "GenuineIntel", "AuthenticAMD", ...
    pub vendor: String,
    /// CPUID leaves 0x8000_0002..4, trimmed (empty where the CPU has none).
    pub brand: String,
    /// Display family and model (SDM Vol. 2, CPUID leaf 1: the extended fields are added in).
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
    /// CPUID.(EAX=7,ECX=0):EBX[6]: the x87 data pointer (FDP) is updated only by x87
    /// instructions that raise an unmasked exception (SDM Vol. 1, 8.1.8).
    pub fdp_excptn_only: bool,
    /// CPUID.(EAX=7,ECX=0):EBX[13]: FCS and FDS are deprecated and stored as zero (SDM Vol. 1,
    /// 8.1.8).
    pub fcs_fds_deprecated: bool,
    /// CPUID Fn8000_0008_EBX[2] (AMD "RstrFpErrPtrs"): FXSAVE/FXRSTOR always save and restore
    /// FOP, FIP and FDP; without it an AMD CPU does so only while FSW.ES is set (APM Vol. 4,
    /// FXSAVE; Vol. 3, CPUID Fn8000_0008).
    pub rstr_fp_err_ptrs: bool,
}

impl HostCpu {
    fn read() -> HostCpu {
        let l0 = __cpuid(0);
        let vendor: Vec<u8> = [l0.ebx, l0.edx, l0.ecx].iter().flat_map(|r| r.to_le_bytes()).collect();
        let l1 = __cpuid(1);
        let base_family = (l1.eax >> 8) & 0xf;
        let base_model = (l1.eax >> 4) & 0xf;
        let family = if base_family == 0xf { base_family + ((l1.eax >> 20) & 0xff) } else { base_family };
        let model =
            if base_family == 6 || base_family == 0xf { base_model | ((l1.eax >> 16) & 0xf) << 4 } else { base_model };
        let l7 = if l0.eax >= 7 { __cpuid_count(7, 0).ebx } else { 0 };
        let max_ext = __cpuid(0x8000_0000).eax;
        let mut brand = Vec::new();
        if max_ext >= 0x8000_0004 {
            for leaf in 0x8000_0002..=0x8000_0004u32 {
                let r = __cpuid(leaf);
                brand.extend([r.eax, r.ebx, r.ecx, r.edx].iter().flat_map(|x| x.to_le_bytes()));
            }
        }
        let ext8 = if max_ext >= 0x8000_0008 { __cpuid(0x8000_0008).ebx } else { 0 };
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim_matches(|c: char| c == '\0' || c == ' ').to_string();
        HostCpu {
            vendor: text(&vendor),
            brand: text(&brand),
            family,
            model,
            stepping: l1.eax & 0xf,
            fdp_excptn_only: l7 >> 6 & 1 != 0,
            fcs_fds_deprecated: l7 >> 13 & 1 != 0,
            rstr_fp_err_ptrs: ext8 >> 2 & 1 != 0,
        }
    }

    pub fn is_amd(&self) -> bool {
        self.vendor == "AuthenticAMD"
    }

    pub fn is_intel(&self) -> bool {
        self.vendor == "GenuineIntel"
    }

    /// One line: vendor, brand, family/model/stepping, and the x87 pointer bits.
    pub fn describe(&self) -> String {
        format!(
            "{} \"{}\" family {} model {} stepping {} (FDP_EXCPTN_ONLY {}, FCS/FDS deprecated {}, RstrFpErrPtrs {})",
            self.vendor,
            self.brand,
            self.family,
            self.model,
            self.stepping,
            self.fdp_excptn_only as u8,
            self.fcs_fds_deprecated as u8,
            self.rstr_fp_err_ptrs as u8
        )
    }
}

/// The host CPU (read once).
pub fn host_cpu() -> &'static HostCpu {
    static CPU: OnceLock<HostCpu> = OnceLock::new();
    CPU.get_or_init(HostCpu::read)
}

/// The host CPU, named on stderr the first time this is called in the process.
pub fn announce() -> &'static HostCpu {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let cpu = host_cpu();
    ONCE.call_once(|| {
        // Straight to the stream: the test harness captures only the print macros.
        let _ = writeln!(std::io::stderr(), "host CPU: {}", cpu.describe());
    });
    cpu
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names the host CPU in every `cargo test -p emu` log, and checks the fields against
    /// /proc/cpuinfo, which the kernel fills from the same CPUID leaves independently.
    #[test]
    fn host_cpu_is_named_and_agrees_with_proc_cpuinfo() {
        let cpu = announce();
        assert!(!cpu.vendor.is_empty());
        let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else { return };
        let first = info.split("\n\n").next().unwrap_or("");
        let field = |name: &str| {
            first.lines().find(|l| l.starts_with(name)).and_then(|l| l.split(':').nth(1)).map(|v| v.trim().to_string())
        };
        assert_eq!(field("vendor_id").as_deref(), Some(cpu.vendor.as_str()));
        assert_eq!(field("cpu family"), Some(cpu.family.to_string()));
        assert_eq!(field("model\t"), Some(cpu.model.to_string()));
        if let Some(flags) = field("flags") {
            let has = |f: &str| flags.split(' ').any(|x| x == f);
            assert_eq!(has("xsaveerptr"), cpu.rstr_fp_err_ptrs);
        }
    }
}
