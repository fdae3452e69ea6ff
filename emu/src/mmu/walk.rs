//! The page walk (SDM Vol. 3, chapter 4): no paging, and 4-level IA-32e paging with 4 KiB,
//! 2 MiB and 1 GiB pages, NX, U/S, R/W with CR0.WP, accessed and dirty bits set the way hardware
//! sets them, and exact #PF error codes. Legacy 32-bit and PAE paging are not modelled yet.

use super::Access;
use crate::exception::{pf_error, vector, Fault};
use crate::flags::W64;
use crate::mem::GuestRam;
use crate::state::{ctrl, CpuState};

const PTE_P: u64 = 1 << 0;
const PTE_RW: u64 = 1 << 1;
const PTE_US: u64 = 1 << 2;
const PTE_A: u64 = 1 << 5;
const PTE_D: u64 = 1 << 6;
const PTE_PS: u64 = 1 << 7;
const PTE_G: u64 = 1 << 8;
const PTE_NX: u64 = 1 << 63;
/// Physical address bits reported by CPUID 8000_0008 (MAXPHYADDR).
pub const MAX_PHYS_BITS: u32 = 40;
const ADDR_MASK: u64 = ((1u64 << MAX_PHYS_BITS) - 1) & !0xfff;

/// The result of a successful walk: the physical page and what the TLB may cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Physical address of the 4 KiB page holding the linear address.
    pub page: u64,
    /// Writes are allowed without another walk (permission granted and D already set).
    pub writable: bool,
    pub executable: bool,
    pub global: bool,
}

fn page_fault(error: u32) -> Fault {
    Fault::with_code(vector::PF, error)
}

/// Translates `la` for `access` at privilege `user`, updating A/D bits in guest memory.
///
/// # Errors
/// A #PF fault with the hardware error code; the caller records `la` as the fault address.
pub fn translate(s: &CpuState, ram: &mut GuestRam, la: u64, access: Access, user: bool) -> Result<Translation, Fault> {
    if s.cr0 & ctrl::CR0_PG == 0 {
        let la = if s.efer & ctrl::EFER_LMA != 0 { la } else { la & 0xffff_ffff };
        return Ok(Translation { page: la & !0xfff, writable: true, executable: true, global: false });
    }
    if s.efer & ctrl::EFER_LMA == 0 {
        // Legacy paging is not modelled: treat as a machine check-free #PF so the guest sees a fault.
        return Err(page_fault(pf_error::RSVD));
    }
    let nxe = s.efer & ctrl::EFER_NXE != 0;
    let mut code = if user { pf_error::USER } else { 0 };
    if access == Access::Write {
        code |= pf_error::WRITE;
    }
    if access == Access::Exec && nxe {
        code |= pf_error::FETCH;
    }
    // A non-canonical address is a #GP, not a #PF; the caller checks canonicality first.
    let mut table = s.cr3 & ADDR_MASK;
    let mut entries = [0u64; 4];
    let mut addrs = [0u64; 4];
    let (mut rw, mut us, mut nx) = (true, true, false);
    let mut level = 4u32;
    let page_base;
    let page_size_shift;
    loop {
        let shift = 12 + 9 * (level - 1);
        let idx = (la >> shift) & 0x1ff;
        let pa = table + idx * 8;
        let pte = ram.read::<W64>(pa);
        let i = (4 - level) as usize;
        entries[i] = pte;
        addrs[i] = pa;
        if pte & PTE_P == 0 {
            return Err(page_fault(code));
        }
        let mut reserved = pte & !(ADDR_MASK | 0xfff | PTE_NX) & ((1u64 << 52) - 1);
        if !nxe && pte & PTE_NX != 0 {
            reserved |= PTE_NX;
        }
        let is_leaf = level == 1 || (pte & PTE_PS != 0 && level <= 3);
        if pte & PTE_PS != 0 && level == 4 {
            reserved |= PTE_PS;
        }
        if is_leaf && level > 1 {
            // Large page: bits between 12 and the page size (except PAT at bit 12) must be zero.
            let low = ((1u64 << shift) - 1) & !0x1fff;
            reserved |= pte & low & ADDR_MASK;
        }
        if reserved != 0 {
            return Err(page_fault(code | pf_error::PRESENT | pf_error::RSVD));
        }
        rw &= pte & PTE_RW != 0;
        us &= pte & PTE_US != 0;
        nx |= nxe && pte & PTE_NX != 0;
        if is_leaf {
            page_size_shift = shift;
            page_base = pte & ADDR_MASK & !((1u64 << shift) - 1);
            break;
        }
        table = pte & ADDR_MASK;
        level -= 1;
    }
    // Permission checks (SDM Vol. 3, 4.6).
    let wp = s.cr0 & ctrl::CR0_WP != 0;
    let denied = match access {
        Access::Read => user && !us,
        Access::Write => (user && !us) || (!rw && (user || wp)),
        Access::Exec => (user && !us) || nx,
    };
    if denied {
        return Err(page_fault(code | pf_error::PRESENT));
    }
    // Accessed bits on every entry used, dirty on the leaf for a write.
    let levels_used = (4 - level + 1) as usize;
    for i in 0..levels_used {
        let mut e = entries[i];
        e |= PTE_A;
        if i == levels_used - 1 && access == Access::Write {
            e |= PTE_D;
        }
        if e != entries[i] {
            ram.write::<W64>(addrs[i], e);
            entries[i] = e;
        }
    }
    let leaf = entries[levels_used - 1];
    let offset_in_big = la & ((1u64 << page_size_shift) - 1) & !0xfff;
    let user_ok = !user || us;
    let writable_now = (rw || (!user && !wp)) && user_ok && leaf & PTE_D != 0;
    Ok(Translation {
        page: page_base | offset_in_big,
        writable: writable_now,
        executable: !nx && user_ok,
        global: leaf & PTE_G != 0 && s.cr4 & ctrl::CR4_PGE != 0,
    })
}

/// True if `la` is canonical for 48-bit linear addresses.
#[inline(always)]
pub fn is_canonical(la: u64) -> bool {
    ((la as i64) << 16 >> 16) as u64 == la
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds PML4 at 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000 mapping la 0x40_0000 -> 0x9000.
    fn setup(leaf_flags: u64) -> (CpuState, GuestRam) {
        let mut ram = GuestRam::new(1 << 20).unwrap();
        ram.write::<W64>(0x1000, 0x2000 | PTE_P | PTE_RW | PTE_US);
        ram.write::<W64>(0x2000, 0x3000 | PTE_P | PTE_RW | PTE_US);
        ram.write::<W64>(0x3000 + 2 * 8, 0x4000 | PTE_P | PTE_RW | PTE_US);
        ram.write::<W64>(0x4000, 0x9000 | leaf_flags);
        let s = CpuState {
            cr0: ctrl::CR0_PE | ctrl::CR0_PG | ctrl::CR0_WP,
            cr4: ctrl::CR4_PAE,
            efer: ctrl::EFER_LME | ctrl::EFER_LMA | ctrl::EFER_NXE,
            cr3: 0x1000,
            ..CpuState::default()
        };
        (s, ram)
    }

    #[test]
    fn a_and_d_bits_are_set_as_hardware_sets_them() {
        let (s, mut ram) = setup(PTE_P | PTE_RW | PTE_US);
        let t = translate(&s, &mut ram, 0x40_0123, Access::Read, true).unwrap();
        assert_eq!(t.page, 0x9000);
        assert!(!t.writable, "D clear: the first write must walk again to set it");
        assert_eq!(ram.read::<W64>(0x4000) & (PTE_A | PTE_D), PTE_A);
        let t = translate(&s, &mut ram, 0x40_0123, Access::Write, true).unwrap();
        assert!(t.writable);
        assert_eq!(ram.read::<W64>(0x4000) & (PTE_A | PTE_D), PTE_A | PTE_D);
        assert_eq!(ram.read::<W64>(0x1000) & PTE_A, PTE_A);
    }

    #[test]
    fn page_fault_error_codes_follow_sdm_4_7() {
        // Not present, user write: P=0 W=1 U=1.
        let (s, mut ram) = setup(0);
        let f = translate(&s, &mut ram, 0x40_0000, Access::Write, true).unwrap_err();
        assert_eq!(f.error_code, pf_error::WRITE | pf_error::USER);
        // Read-only page, user write: P=1 W=1 U=1.
        let (s, mut ram) = setup(PTE_P | PTE_US);
        let f = translate(&s, &mut ram, 0x40_0000, Access::Write, true).unwrap_err();
        assert_eq!(f.error_code, pf_error::PRESENT | pf_error::WRITE | pf_error::USER);
        // NX page, user fetch: P=1 U=1 I/D=1.
        let (s, mut ram) = setup(PTE_P | PTE_US | PTE_NX);
        let f = translate(&s, &mut ram, 0x40_0000, Access::Exec, true).unwrap_err();
        assert_eq!(f.error_code, pf_error::PRESENT | pf_error::USER | pf_error::FETCH);
        // Supervisor page, user read: P=1 U=1.
        let (s, mut ram) = setup(PTE_P);
        let f = translate(&s, &mut ram, 0x40_0000, Access::Read, true).unwrap_err();
        assert_eq!(f.error_code, pf_error::PRESENT | pf_error::USER);
        // Reserved bit in the leaf: P=1 RSVD=1.
        let (s, mut ram) = setup(PTE_P | PTE_US | (1 << 45));
        let f = translate(&s, &mut ram, 0x40_0000, Access::Read, false).unwrap_err();
        assert_eq!(f.error_code, pf_error::PRESENT | pf_error::RSVD);
    }

    #[test]
    fn supervisor_write_to_read_only_page_depends_on_cr0_wp() {
        let (mut s, mut ram) = setup(PTE_P | PTE_D);
        assert!(translate(&s, &mut ram, 0x40_0000, Access::Write, false).is_err());
        s.cr0 &= !ctrl::CR0_WP;
        assert!(translate(&s, &mut ram, 0x40_0000, Access::Write, false).is_ok());
    }
}
