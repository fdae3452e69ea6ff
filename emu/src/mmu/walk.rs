//! The page walk (SDM Vol. 3, chapter 4): no paging; 32-bit paging (4.3: two levels of 4-byte
//! entries, 4 MiB pages with CR4.PSE); PAE paging (4.4: four PDPTEs, then two levels of 8-byte
//! entries, 2 MiB pages, NX); and 4-level IA-32e paging (4.5) with 4 KiB, 2 MiB and 1 GiB pages.
//! NX, U/S, R/W with CR0.WP, accessed and dirty bits set the way hardware sets them, and exact
//! #PF error codes. PAE's PDPTEs are read from memory on each walk rather than kept from the
//! last MOV CR3 (4.4.1): the two differ only for a guest that edits its PDPTEs and relies on the
//! old ones until it reloads CR3, which Linux does not (it reloads CR3 after such an edit).

use super::Access;
use crate::exception::{pf_error, vector, Fault};
use crate::flags::{W32, W64};
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
    let long = s.efer & ctrl::EFER_LMA != 0;
    let la = if long { la } else { la & 0xffff_ffff };
    if s.cr0 & ctrl::CR0_PG == 0 {
        return Ok(Translation { page: la & !0xfff, writable: true, executable: true, global: false });
    }
    let pae = s.cr4 & ctrl::CR4_PAE != 0;
    let nxe = s.efer & ctrl::EFER_NXE != 0 && (long || pae);
    let mut code = if user { pf_error::USER } else { 0 };
    if access == Access::Write {
        code |= pf_error::WRITE;
    }
    if access == Access::Exec && nxe {
        code |= pf_error::FETCH;
    }
    // A non-canonical address is a #GP, not a #PF; the caller checks canonicality first.
    // The walk's shape per mode: levels, index bits per level, entry width.
    let (top, idx_bits, wide) = if long {
        (4u32, 9u32, true)
    } else if pae {
        (2, 9, true)
    } else {
        (2, 10, false)
    };
    let mut table = if long {
        s.cr3 & ADDR_MASK
    } else if pae {
        // PAE (4.4.1): CR3 bits 31:5 locate four PDPTEs, chosen by la bits 31:30. A PDPTE has no
        // R/W, U/S, A or NX: bits 1, 2, 5-8 and 63 are reserved, like those above MAXPHYADDR.
        let pa = (s.cr3 & 0xffff_ffe0) + ((la >> 30) & 3) * 8;
        let pdpte = ram.read::<W64>(pa);
        if pdpte & PTE_P == 0 {
            return Err(page_fault(code));
        }
        if pdpte & (0x1e6 | PTE_NX | ((1u64 << 63) - 1) & !((1u64 << MAX_PHYS_BITS) - 1)) != 0 {
            return Err(page_fault(code | pf_error::PRESENT | pf_error::RSVD));
        }
        pdpte & ADDR_MASK
    } else {
        s.cr3 & 0xffff_f000
    };
    let mut entries = [0u64; 4];
    let mut addrs = [0u64; 4];
    let (mut rw, mut us, mut nx) = (true, true, false);
    let mut level = top;
    let page_base;
    let page_size_shift;
    loop {
        let shift = 12 + idx_bits * (level - 1);
        let idx = (la >> shift) & ((1 << idx_bits) - 1);
        let i = (top - level) as usize;
        let (pa, pte) = if wide {
            let pa = table + idx * 8;
            (pa, ram.read::<W64>(pa))
        } else {
            let pa = table + idx * 4;
            (pa, ram.read::<W32>(pa))
        };
        entries[i] = pte;
        addrs[i] = pa;
        if pte & PTE_P == 0 {
            return Err(page_fault(code));
        }
        // 32-bit paging has 4 KiB pages at level 1 and, with CR4.PSE, 4 MiB ones at level 2.
        let large_ok = if long { level <= 3 } else { level == 2 && (pae || s.cr4 & ctrl::CR4_PSE != 0) };
        let is_leaf = level == 1 || (pte & PTE_PS != 0 && large_ok);
        let mut reserved = 0;
        if wide {
            reserved = pte & !(ADDR_MASK | 0xfff | PTE_NX) & ((1u64 << 52) - 1);
            if !nxe && pte & PTE_NX != 0 {
                reserved |= PTE_NX;
            }
            if pte & PTE_PS != 0 && level == 4 {
                reserved |= PTE_PS;
            }
        }
        let base = if is_leaf && level > 1 && !wide {
            // A 4 MiB page (4.3, table 4-4): bits 31:22 and, PSE-36, bits 20:13 as address bits
            // 39:32; bit 21 is reserved.
            reserved |= pte & (1 << 21);
            (pte & 0xffc0_0000) | ((pte >> 13) & 0xff) << 32
        } else if is_leaf && level > 1 {
            // Large page: bits between 12 and the page size (except PAT at bit 12) must be zero.
            let low = ((1u64 << shift) - 1) & !0x1fff;
            reserved |= pte & low & ADDR_MASK;
            pte & ADDR_MASK & !((1u64 << shift) - 1)
        } else if wide {
            pte & ADDR_MASK
        } else {
            pte & 0xffff_f000
        };
        if reserved != 0 {
            return Err(page_fault(code | pf_error::PRESENT | pf_error::RSVD));
        }
        rw &= pte & PTE_RW != 0;
        us &= pte & PTE_US != 0;
        nx |= nxe && pte & PTE_NX != 0;
        if is_leaf {
            page_size_shift = shift;
            page_base = base;
            break;
        }
        table = base;
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
    let levels_used = (top - level + 1) as usize;
    for i in 0..levels_used {
        let mut e = entries[i];
        e |= PTE_A;
        if i == levels_used - 1 && access == Access::Write {
            e |= PTE_D;
        }
        if e != entries[i] {
            if wide {
                ram.write::<W64>(addrs[i], e);
            } else {
                ram.write::<W32>(addrs[i], e);
            }
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

    /// 32-bit paging (SDM Vol. 3, 4.3, figure 4-2 and tables 4-5/4-6): CR3 -> a page directory
    /// of 1024 4-byte PDEs (la bits 31:22) -> a page table of 4-byte PTEs (bits 21:12); with
    /// CR4.PSE a PDE with PS maps 4 MiB, PSE-36 bits 20:13 giving address bits 39:32.
    #[test]
    fn two_level_32_bit_paging_with_4_kib_and_4_mib_pages() {
        let mut ram = GuestRam::new(1 << 20).unwrap();
        let (p, rw, us, ps) = (PTE_P as u32, PTE_RW as u32, PTE_US as u32, PTE_PS as u32);
        // la 0xC040_3123: PDE 0x301 -> PT at 0x5000, PTE 3 -> 0x9000.
        ram.write::<W32>(0x1000 + 0x301 * 4, u64::from(0x5000 | p | rw | us));
        ram.write::<W32>(0x5000 + 3 * 4, u64::from(0x9000 | p | us));
        // la 0x0080_0000 (PDE 2): a 4 MiB page at 0x0040_0000 | address bits 39:32 = 1.
        ram.write::<W32>(0x1000 + 2 * 4, u64::from(0x0040_0000 | (1 << 13) | p | rw | ps));
        let mut s = CpuState { cr0: ctrl::CR0_PE | ctrl::CR0_PG | ctrl::CR0_WP, cr3: 0x1000, ..CpuState::default() };
        let t = translate(&s, &mut ram, 0xC040_3123, Access::Read, true).unwrap();
        assert_eq!(t.page, 0x9000);
        // A and D land in the 4-byte entries, the word after them untouched.
        assert_eq!(ram.read::<W32>(0x5000 + 3 * 4) as u32 & (PTE_A as u32), PTE_A as u32);
        assert_eq!(ram.read::<W32>(0x1000 + 0x301 * 4) as u32 & (PTE_A as u32), PTE_A as u32);
        assert_eq!(ram.read::<W32>(0x5000 + 4 * 4), 0);
        // Read-only PTE: a user write faults P=1 W=1 U=1; no D bit written.
        let f = translate(&s, &mut ram, 0xC040_3000, Access::Write, true).unwrap_err();
        assert_eq!(f.error_code, pf_error::PRESENT | pf_error::WRITE | pf_error::USER);
        assert_eq!(ram.read::<W32>(0x5000 + 3 * 4) as u32 & (PTE_D as u32), 0);
        // Without CR4.PSE the PS bit is ignored: the PDE points at a page table (at 0x40_0000,
        // outside this RAM, which reads as not present), so the access faults not-present.
        assert!(translate(&s, &mut ram, 0x0080_5000, Access::Read, false).is_err());
        s.cr4 = ctrl::CR4_PSE;
        let t = translate(&s, &mut ram, 0x0080_5000, Access::Write, false).unwrap();
        assert_eq!(t.page, 0x1_0040_5000);
        assert!(t.writable);
        // Bit 21 of a 4 MiB PDE is reserved.
        ram.write::<W32>(0x1000 + 2 * 4, u64::from(0x0040_0000 | (1 << 21) | p | ps));
        let f = translate(&s, &mut ram, 0x0080_0000, Access::Read, false).unwrap_err();
        assert_eq!(f.error_code, pf_error::PRESENT | pf_error::RSVD);
        // Linear addresses are 32 bits wide outside long mode.
        let t = translate(&s, &mut ram, 0x1_C040_3123, Access::Read, false).unwrap();
        assert_eq!(t.page, 0x9000);
    }

    /// PAE paging (4.4, figure 4-5 and tables 4-8 to 4-11): CR3 bits 31:5 locate four PDPTEs
    /// (la bits 31:30), then a page directory and a page table of 8-byte entries (9 bits each);
    /// a PDE with PS maps 2 MiB; NX with EFER.NXE; a PDPTE's bits 1, 2 and 5-8 are reserved.
    #[test]
    fn pae_paging_with_pdptes_2_mib_pages_and_nx() {
        let mut ram = GuestRam::new(1 << 20).unwrap();
        // CR3 = 0x1020 (32-byte aligned): PDPTE 3 (la 0xC000_0000 up) -> PD 0x2000.
        ram.write::<W64>(0x1020 + 3 * 8, 0x2000 | PTE_P);
        // la 0xC020_1000: PDE 1 -> PT 0x3000, PTE 1 -> 0x9000, NX.
        ram.write::<W64>(0x2000 + 8, 0x3000 | PTE_P | PTE_RW | PTE_US);
        ram.write::<W64>(0x3000 + 8, 0x9000 | PTE_P | PTE_RW | PTE_US | PTE_NX);
        // la 0xC040_0000: PDE 2, a 2 MiB page at 0x60_0000.
        ram.write::<W64>(0x2000 + 16, 0x60_0000 | PTE_P | PTE_RW | PTE_PS);
        let mut s = CpuState {
            cr0: ctrl::CR0_PE | ctrl::CR0_PG | ctrl::CR0_WP,
            cr4: ctrl::CR4_PAE,
            efer: ctrl::EFER_NXE,
            cr3: 0x1020,
            ..CpuState::default()
        };
        let t = translate(&s, &mut ram, 0xC020_1234, Access::Write, true).unwrap();
        assert_eq!(t.page, 0x9000);
        assert!(!t.executable);
        assert_eq!(ram.read::<W64>(0x3000 + 8) & (PTE_A | PTE_D), PTE_A | PTE_D);
        // The PDPTE has no A bit: it is left as written.
        assert_eq!(ram.read::<W64>(0x1020 + 3 * 8), 0x2000 | PTE_P);
        let f = translate(&s, &mut ram, 0xC020_1234, Access::Exec, true).unwrap_err();
        assert_eq!(f.error_code, pf_error::PRESENT | pf_error::USER | pf_error::FETCH);
        let t = translate(&s, &mut ram, 0xC05F_F000, Access::Read, false).unwrap();
        assert_eq!(t.page, 0x7F_F000);
        // PDPTE 0 is not present: P=0.
        let f = translate(&s, &mut ram, 0x1000, Access::Read, false).unwrap_err();
        assert_eq!(f.error_code, 0);
        // Without EFER.NXE bit 63 is reserved (a PAE PTE's XD needs NXE).
        s.efer = 0;
        let f = translate(&s, &mut ram, 0xC020_1234, Access::Read, false).unwrap_err();
        assert_eq!(f.error_code, pf_error::PRESENT | pf_error::RSVD);
        // A PDPTE with R/W (bit 1) set has a reserved bit set.
        ram.write::<W64>(0x1020 + 3 * 8, 0x2000 | PTE_P | PTE_RW);
        let f = translate(&s, &mut ram, 0xC040_0000, Access::Read, false).unwrap_err();
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
