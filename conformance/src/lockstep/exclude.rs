//! Known deviations of KVM's instruction emulator (the second implementation in the lockstep
//! on a `kvm_pvm` host) from the SDM, each with the instruction, the reason and the reference.
//! A divergence that matches one is not reported: KVM's side is overwritten with tier 0's
//! state and memory, and the match is counted under the deviation's name in the summary.
//!
//! The conditions are narrow on purpose: the instruction, whether it faulted, and the exact
//! shape of the difference. Anything else that differs is still a divergence.

use emu::state::CpuState;
use iced_x86::{Instruction, Mnemonic, OpKind, Register};

/// One known deviation.
pub struct KvmDeviation {
    pub name: &'static str,
    /// What KVM does and what the SDM says instead.
    pub reason: &'static str,
}

pub const CPUID_HOST: KvmDeviation = KvmDeviation {
    name: "cpuid_host_values",
    reason: "CPUID on kvm_pvm returns the host's values for feature leaves (1 and 7 seen), not the \
             table given with KVM_SET_CPUID2 (tier 0's promise restricted to the host); the SDM \
             (Vol. 2A, CPUID) makes them the processor's, i.e. the VM's configured ones. Only the \
             four result registers may differ",
};

pub const FAULTING_RMW_SETS_ACCESSED: KvmDeviation = KvmDeviation {
    name: "faulting_rmw_sets_accessed",
    reason: "a read-modify-write instruction whose write faults (#PF on a read-only page): KVM's \
             emulator translates the read first and sets the accessed flags of the paging entries, \
             tier 0 translates for write once, as hardware does (SDM Vol. 3, 4.8: A is set when an \
             entry is used for a translation; the faulting write-intent walk completes none)",
};

pub const SPLIT_STORE_WRITES_FIRST_PAGE: KvmDeviation = KvmDeviation {
    name: "split_store_writes_first_page",
    reason: "a store crossing a page boundary whose second page faults: KVM's emulator writes the \
             bytes of the first page before the fault, hardware writes nothing (SDM Vol. 3, 6.5: a \
             fault leaves the state as before the instruction; conformance/kernels/paging64.S checks it)",
};

pub const TZCNT_AS_BSF: KvmDeviation = KvmDeviation {
    name: "tzcnt_lzcnt_as_bsf_bsr",
    reason: "TZCNT/LZCNT (F3 0F BC/BD): KVM's emulator ignores the F3 prefix and executes BSF/BSR, \
             which define ZF by the source and leave the destination alone for a zero source; with \
             BMI1/LZCNT in CPUID (tier 0 offers them) the SDM (Vol. 2B, TZCNT, LZCNT) defines CF by \
             a zero source, ZF by a zero result, and the count as the result",
};

pub const FXSAVE_RESERVED_BYTES: KvmDeviation = KvmDeviation {
    name: "fxsave_writes_reserved_bytes",
    reason: "FXSAVE/FXSAVE64: KVM's emulator writes bytes 416..511 of the 512-byte area, which the \
             SDM (Vol. 1, 10.5.1, Table 10-2) marks reserved / available to software; tier 0 leaves \
             them untouched",
};

pub const ALL: [&KvmDeviation; 5] =
    [&CPUID_HOST, &FAULTING_RMW_SETS_ACCESSED, &SPLIT_STORE_WRITES_FIRST_PAGE, &TZCNT_AS_BSF, &FXSAVE_RESERVED_BYTES];

/// What the lockstep knows about a divergent step.
pub struct StepFacts<'a> {
    pub ins: Option<&'a Instruction>,
    pub before: &'a CpuState,
    /// Tier 0 delivered a fault for the instruction (it retired nothing).
    pub faulted: bool,
    /// The register/flag/segment differences (empty if only memory differs).
    pub reg_diffs: &'a [String],
    pub tier0: &'a CpuState,
    pub kvm: &'a CpuState,
    /// Differing pages: (physical address, tier 0's bytes, KVM's bytes).
    pub pages: &'a [(u64, Vec<u8>, Vec<u8>)],
}

/// The known deviation this divergence is, if any.
pub fn classify(f: &StepFacts) -> Option<&'static KvmDeviation> {
    let ins = f.ins?;
    if ins.mnemonic() == Mnemonic::Cpuid && f.pages.is_empty() {
        let mut k = f.kvm.clone();
        k.gpr[0..=3].copy_from_slice(&f.tier0.gpr[0..=3]);
        if k.gpr == f.tier0.gpr && k.rip == f.tier0.rip {
            return Some(&CPUID_HOST);
        }
    }
    if matches!(ins.mnemonic(), Mnemonic::Tzcnt | Mnemonic::Lzcnt) && f.pages.is_empty() && !f.faulted {
        return tzcnt_lzcnt_per_sdm(ins, f).then_some(&TZCNT_AS_BSF);
    }
    if matches!(ins.mnemonic(), Mnemonic::Fxsave | Mnemonic::Fxsave64) && f.reg_diffs.is_empty() && !f.faulted {
        if let Some((start, _)) = store_range(ins, f.before) {
            let base = (start & 0xfff) as usize;
            let reserved = |i: usize| (416..512).contains(&(i.wrapping_sub(base) & 0xfff));
            if f.pages.iter().all(|(_, t, k)| t.iter().zip(k).enumerate().all(|(i, (a, b))| a == b || reserved(i))) {
                return Some(&FXSAVE_RESERVED_BYTES);
            }
        }
    }
    if !f.faulted || !f.reg_diffs.is_empty() || f.pages.is_empty() {
        return None;
    }
    let only_accessed_bits = f.pages.iter().all(|(_, t, k)| t.iter().zip(k).all(|(a, b)| a == b || *b == *a | 0x20));
    if only_accessed_bits && writes_memory(ins) {
        return Some(&FAULTING_RMW_SETS_ACCESSED);
    }
    if let Some((start, len)) = store_range(ins, f.before) {
        let off = (start & 0xfff) as usize;
        let crosses = off + len > 0x1000;
        let in_first_part = f.pages.len() == 1
            && f.pages.iter().all(|(_, t, k)| t.iter().zip(k).enumerate().all(|(i, (a, b))| a == b || i >= off));
        if crosses && in_first_part {
            return Some(&SPLIT_STORE_WRITES_FIRST_PAGE);
        }
    }
    None
}

/// Whether tier 0's TZCNT/LZCNT result and CF/ZF are what the SDM defines (Vol. 2B: the count
/// of trailing/leading zero bits, the operand size for a zero source; CF = source is zero,
/// ZF = result is zero), computed here from the source register with Rust's own bit counts,
/// and nothing else differs from KVM but the destination and the flags. A memory source is
/// not checked (never matches).
fn tzcnt_lzcnt_per_sdm(ins: &Instruction, f: &StepFacts) -> bool {
    if ins.op_count() != 2 || ins.op0_kind() != OpKind::Register || ins.op1_kind() != OpKind::Register {
        return false;
    }
    let index = |r: Register| {
        let full = r.full_register();
        (Register::RAX..=Register::R15).contains(&full).then(|| full as usize - Register::RAX as usize)
    };
    let (Some(dst), Some(src)) = (index(ins.op0_register()), index(ins.op1_register())) else { return false };
    let bits = ins.op0_register().size() as u32 * 8;
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let v = f.before.gpr[src] & mask;
    let count = match ins.mnemonic() {
        Mnemonic::Tzcnt if v == 0 => bits,
        Mnemonic::Tzcnt => v.trailing_zeros(),
        _ => v.leading_zeros() - (64 - bits),
    } as u64;
    // A 32-bit destination is zero-extended, a 16-bit one merges into the old value.
    let expect = if bits == 16 { (f.before.gpr[dst] & !0xffff) | count } else { count };
    let flags = f.tier0.rflags();
    let (cf, zf) = (flags & 1 != 0, flags & 0x40 != 0);
    let mut others_t = f.tier0.gpr;
    let mut others_k = f.kvm.gpr;
    others_t[dst] = 0;
    others_k[dst] = 0;
    f.tier0.gpr[dst] == expect
        && cf == (v == 0)
        && zf == (count == 0)
        && others_t == others_k
        && f.tier0.rip == f.kvm.rip
}

/// Whether the instruction's first operand is a memory destination.
fn writes_memory(ins: &Instruction) -> bool {
    ins.op_count() > 0 && ins.op0_kind() == OpKind::Memory && !matches!(ins.mnemonic(), Mnemonic::Cmp | Mnemonic::Test)
}

/// Linear address and size of the instruction's memory destination, from the state before it.
fn store_range(ins: &Instruction, s: &CpuState) -> Option<(u64, usize)> {
    if !writes_memory(ins) {
        return None;
    }
    let size = ins.memory_size().size();
    let va = ins.virtual_address(0, 0, |reg, _, _| {
        let full = reg.full_register();
        if (Register::RAX..=Register::R15).contains(&full) {
            Some(s.gpr[full as usize - Register::RAX as usize])
        } else {
            match reg {
                Register::ES => Some(s.segs[0].base),
                Register::CS => Some(s.segs[1].base),
                Register::SS => Some(s.segs[2].base),
                Register::DS => Some(s.segs[3].base),
                Register::FS => Some(s.segs[4].base),
                Register::GS => Some(s.segs[5].base),
                Register::RIP | Register::EIP => Some(ins.next_ip()),
                _ => None,
            }
        }
    })?;
    Some((va, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockstep::diff::decode;

    fn facts<'a>(ins: &'a Instruction, s: &'a CpuState, pages: &'a [(u64, Vec<u8>, Vec<u8>)]) -> StepFacts<'a> {
        StepFacts { ins: Some(ins), before: s, faulted: true, reg_diffs: &[], tier0: s, kvm: s, pages }
    }

    #[test]
    fn accessed_bits_after_a_faulting_add_to_memory_are_the_known_deviation() {
        let ins = decode(&[0x83, 0x04, 0x25, 0x08, 0x20, 0x00, 0x40, 0x01], 64, 0x1000).unwrap();
        let s = CpuState::default();
        let pages = vec![(0x1000, vec![0x03; 16], {
            let mut v = vec![0x03; 16];
            v[8] = 0x23;
            v
        })];
        assert_eq!(classify(&facts(&ins, &s, &pages)).map(|d| d.name), Some("faulting_rmw_sets_accessed"));
        // Any other bit is a divergence.
        let pages = vec![(0x1000, vec![0x03; 16], {
            let mut v = vec![0x03; 16];
            v[8] = 0x43;
            v
        })];
        assert!(classify(&facts(&ins, &s, &pages)).is_none());
    }

    #[test]
    fn tzcnt_flags_and_fxsave_reserved_bytes_are_known_but_other_fxsave_bytes_are_not() {
        let tz = decode(&[0xf3, 0x48, 0x0f, 0xbc, 0xc9], 64, 0x1000).unwrap(); // tzcnt rcx, rcx
        let mut before = CpuState::default();
        before.gpr[1] = 0x8; // three trailing zeros
        let mut t = before.clone();
        t.gpr[1] = 3;
        t.set_rflags(0x2); // CF = 0 (source not zero), ZF = 0 (result not zero)
        let mut k = t.clone();
        k.set_rflags(0x6); // BSF's flags: ZF by the source, PF as it happens
        let mut f = StepFacts {
            ins: Some(&tz),
            before: &before,
            faulted: false,
            reg_diffs: &[],
            tier0: &t,
            kvm: &k,
            pages: &[],
        };
        assert_eq!(classify(&f).map(|d| d.name), Some("tzcnt_lzcnt_as_bsf_bsr"));
        let mut wrong = t.clone();
        wrong.gpr[1] = 4; // a tier-0 bug in the count must stay a divergence
        f.tier0 = &wrong;
        assert!(classify(&f).is_none());
        // fxsave64 [rbp] with rbp at page offset 0x140: bytes 416.. of the image are 0x2e0..
        let fx = decode(&[0x48, 0x0f, 0xae, 0x45, 0x00], 64, 0x1000).unwrap();
        let mut s = CpuState::default();
        s.gpr[5] = 0x7ffd_6ef1_7140;
        let mut k = vec![1u8; 0x1000];
        k[0x2e1..0x2eb].fill(0);
        let pages = vec![(0xb9f_1000, vec![1u8; 0x1000], k.clone())];
        let mut f = facts(&fx, &s, &pages);
        f.faulted = false;
        assert_eq!(classify(&f).map(|d| d.name), Some("fxsave_writes_reserved_bytes"));
        k[0x140 + 160] = 0; // XMM0: part of the architectural image
        let pages = vec![(0xb9f_1000, vec![1u8; 0x1000], k)];
        let mut f = facts(&fx, &s, &pages);
        f.faulted = false;
        assert!(classify(&f).is_none());
    }

    #[test]
    fn a_split_store_is_recognised_only_across_a_page_end() {
        // mov [rbx], rax with rbx 4 bytes before a page end.
        let ins = decode(&[0x48, 0x89, 0x03], 64, 0x1000).unwrap();
        let mut s = CpuState::default();
        s.gpr[3] = 0x4000_0ffc;
        let mut k = vec![0u8; 0x1000];
        k[0xffc..].fill(0xaa);
        let pages = vec![(0x7000, vec![0u8; 0x1000], k)];
        assert_eq!(classify(&facts(&ins, &s, &pages)).map(|d| d.name), Some("split_store_writes_first_page"));
        s.gpr[3] = 0x4000_0ff0; // does not cross: a real divergence
        assert!(classify(&facts(&ins, &s, &pages)).is_none());
    }
}
