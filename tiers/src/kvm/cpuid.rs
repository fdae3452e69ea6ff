//! The CPUID table a KVM vCPU reports: what tier 0 promises for the machine's CPU model
//! (`interp::misc::cpuid` over `system::cpu_model`, the one table of models), restricted to what
//! this host's KVM can provide (KVM_GET_SUPPORTED_CPUID).
//!
//! So a guest sees the same CPU on every engine and can move between them: a feature bit is set
//! only if tier 0 implements it *and* the host has it. Identification leaves (vendor, brand,
//! family) are tier 0's. KVM's paravirtual leaves (0x4000_0000..) are not offered: the virtual PC
//! has no kvmclock, and its clock must stay convertible to tier 0's.
//!
//! Feature registers masked: leaf 1 ECX/EDX, leaf 7.0 EBX/ECX/EDX, leaf 8000_0001h ECX/EDX.

use emu::interp::misc::cpuid;
use emu::system::cpu_model::CpuModel;
use kvm_bindings::{kvm_cpuid_entry2, CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX};

/// Builds the table for `model` from KVM's supported entries.
///
/// # Errors
/// Never in practice: the table has a few dozen entries, far below KVM_MAX_CPUID_ENTRIES.
pub fn table(supported: &CpuId, model: &CpuModel) -> Result<CpuId, vmm_sys_util::fam::Error> {
    let promised = |f, i| cpuid(model, f, i);
    let find = |f: u32, i: u32| {
        supported
            .as_slice()
            .iter()
            .find(|e| e.function == f && (e.index == i || e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX == 0))
            .copied()
    };
    let mut out: Vec<kvm_cpuid_entry2> = Vec::new();
    let max_basic = promised(0, 0)[0];
    let max_ext = promised(0x8000_0000, 0)[0];
    let leaves = (0..=max_basic).chain(0x8000_0000..=max_ext);
    for f in leaves {
        // Leaves 4 and 0Bh have subleaves: each is an entry of its own, up to the null one.
        if f == 4 || f == 0xb {
            for i in 0..8 {
                let [eax, ebx, ecx, edx] = promised(f, i);
                let flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
                out.push(kvm_cpuid_entry2 { function: f, index: i, flags, eax, ebx, ecx, edx, ..Default::default() });
                if (f == 4 && eax & 0x1f == 0) || (f == 0xb && ecx >> 8 & 0xff == 0) {
                    break;
                }
            }
            continue;
        }
        let [a, b, c, d] = promised(f, 0);
        let host = find(f, 0).unwrap_or_default();
        let (mut eax, mut ebx, mut ecx, mut edx) = (a, b, c, d);
        match f {
            1 => {
                ecx &= host.ecx;
                edx &= host.edx;
            }
            7 => {
                ebx &= host.ebx;
                // Protection keys stay with the software engines: PKRU and IA32_PKRS are not
                // converted at the engine boundary.
                use emu::system::cpu_model::ecx7;
                ecx &= host.ecx & !(ecx7::PKU | ecx7::PKS);
                edx &= host.edx;
                eax = 0; // one subleaf
            }
            0x8000_0001 => {
                ecx &= host.ecx;
                edx &= host.edx;
            }
            _ => {}
        }
        let flags = if f == 7 { KVM_CPUID_FLAG_SIGNIFCANT_INDEX } else { 0 };
        out.push(kvm_cpuid_entry2 { function: f, index: 0, flags, eax, ebx, ecx, edx, ..Default::default() });
    }
    CpuId::from_entries(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use emu::system::cpu_model::{default_model, MODELS};

    fn promised(f: u32, i: u32) -> [u32; 4] {
        cpuid(default_model(), f, i)
    }

    fn host_with(ecx1: u32, edx1: u32) -> CpuId {
        let e = [
            kvm_cpuid_entry2 { function: 0, eax: 0x1f, ..Default::default() },
            kvm_cpuid_entry2 { function: 1, ecx: ecx1, edx: edx1, ..Default::default() },
            kvm_cpuid_entry2 { function: 0x4000_0000, eax: 0x4000_0001, ..Default::default() },
        ];
        CpuId::from_entries(&e).unwrap()
    }

    #[test]
    fn a_feature_needs_both_tier0_and_the_host() {
        let ours = promised(1, 0);
        let t = table(&host_with(u32::MAX, 0), default_model()).unwrap();
        let leaf1 = t.as_slice().iter().find(|e| e.function == 1).unwrap();
        assert_eq!(leaf1.ecx, ours[2], "host has everything: ours stand");
        assert_eq!(leaf1.edx, 0, "host has nothing in EDX");
        let t = table(&host_with(0, u32::MAX), default_model()).unwrap();
        let leaf1 = t.as_slice().iter().find(|e| e.function == 1).unwrap();
        assert_eq!((leaf1.ecx, leaf1.edx), (0, ours[3]));
    }

    #[test]
    fn identification_is_ours_and_no_paravirt_leaves() {
        for m in MODELS {
            let t = table(&host_with(u32::MAX, u32::MAX), m).unwrap();
            let leaf0 = t.as_slice().iter().find(|e| e.function == 0).unwrap();
            assert_eq!([leaf0.eax, leaf0.ebx, leaf0.ecx, leaf0.edx], cpuid(m, 0, 0));
            assert!(t.as_slice().iter().all(|e| !(0x4000_0000..0x5000_0000).contains(&e.function)));
            // Every subleaf of leaf 4 the model has, then the null one.
            let l4 = t.as_slice().iter().filter(|e| e.function == 4).count();
            let want = if cpuid(m, 0, 0)[0] >= 4 && cpuid(m, 4, 0)[0] != 0 { m.caches.len() + 1 } else { 1 };
            assert_eq!(l4, want, "{}", m.name);
        }
    }
}
