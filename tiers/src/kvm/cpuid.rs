//! The CPUID table a KVM vCPU reports: what tier 0 promises (`interp::misc::cpuid`), restricted
//! to what this host's KVM can provide (KVM_GET_SUPPORTED_CPUID).
//!
//! So a guest sees the same CPU on every engine and can move between them: a feature bit is set
//! only if tier 0 implements it *and* the host has it. Identification leaves (vendor, brand,
//! family) are tier 0's. KVM's paravirtual leaves (0x4000_0000..) are not offered: the virtual PC
//! has no kvmclock, and its clock must stay convertible to tier 0's.
//!
//! Feature registers masked: leaf 1 ECX/EDX, leaf 7.0 EBX/ECX/EDX, leaf 8000_0001h ECX/EDX.

use emu::interp::misc::cpuid as promised;
use kvm_bindings::{kvm_cpuid_entry2, CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX};

/// Builds the table from KVM's supported entries.
///
/// # Errors
/// Never in practice: the table has a few dozen entries, far below KVM_MAX_CPUID_ENTRIES.
pub fn table(supported: &CpuId) -> Result<CpuId, vmm_sys_util::fam::Error> {
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
                ecx &= host.ecx;
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
        let t = table(&host_with(u32::MAX, 0)).unwrap();
        let leaf1 = t.as_slice().iter().find(|e| e.function == 1).unwrap();
        assert_eq!(leaf1.ecx, ours[2], "host has everything: ours stand");
        assert_eq!(leaf1.edx, 0, "host has nothing in EDX");
        let t = table(&host_with(0, u32::MAX)).unwrap();
        let leaf1 = t.as_slice().iter().find(|e| e.function == 1).unwrap();
        assert_eq!((leaf1.ecx, leaf1.edx), (0, ours[3]));
    }

    #[test]
    fn identification_is_ours_and_no_paravirt_leaves() {
        let t = table(&host_with(u32::MAX, u32::MAX)).unwrap();
        let leaf0 = t.as_slice().iter().find(|e| e.function == 0).unwrap();
        assert_eq!([leaf0.eax, leaf0.ebx, leaf0.ecx, leaf0.edx], promised(0, 0));
        assert!(t.as_slice().iter().all(|e| !(0x4000_0000..0x5000_0000).contains(&e.function)));
    }
}
