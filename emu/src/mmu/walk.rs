//! The page walk (SDM Vol. 3, chapter 4): no paging; 32-bit paging (4.3: two levels of 4-byte
//! entries, 4 MiB pages with CR4.PSE); PAE paging (4.4: four PDPTEs, then two levels of 8-byte
//! entries, 2 MiB pages, NX); and 4-level IA-32e paging (4.5) with 4 KiB, 2 MiB and 1 GiB pages.
//! NX, U/S, R/W with CR0.WP, SMEP, SMAP (with EFLAGS.AC and implicit supervisor accesses),
//! protection keys in IA-32e mode (CR4.PKE with PKRU for user pages, CR4.PKS with IA32_PKRS for
//! supervisor pages), accessed and dirty bits set the way hardware sets them, and exact #PF
//! error codes. PAE's PDPTEs are read from memory on each walk rather than kept from the last
//! MOV CR3 (4.4.1): the two differ only for a guest that edits its PDPTEs and relies on the old
//! ones until it reloads CR3, which Linux does not (it reloads CR3 after such an edit).
//!
//! What a [`Translation`] lets the TLB cache must hold for every later access through the entry
//! until the next flush: so a supervisor data access to a user page with CR4.SMAP set is never
//! cached (its outcome follows EFLAGS.AC, which STAC, CLAC, POPF and IRET change without a
//! flush); PKRU and IA32_PKRS writes flush the TLB instead.

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
/// The protection key of a leaf entry, bits 62:59 (SDM Vol. 3, 4.6.2).
const PKEY_SHIFT: u32 = 59;
const CR4_SMEP: u64 = 1 << 20;
const CR4_SMAP: u64 = 1 << 21;
const CR4_PKE: u64 = 1 << 22;
const CR4_PKS: u64 = 1 << 24;
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
    /// Data reads are allowed without another walk.
    pub readable: bool,
    pub executable: bool,
    pub global: bool,
}

/// Who makes an access, beyond the page tables: what SDM Vol. 3, 4.6 needs to judge it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accessor {
    /// A user-mode access (CPL 3, and not implicit).
    pub user: bool,
    /// An implicit supervisor-mode access (descriptor tables, the IDT, the TSS, interrupt and
    /// exception frames): SMAP denies it on user pages whatever EFLAGS.AC.
    pub implicit: bool,
    /// EFLAGS.AC: with SMAP, explicit supervisor accesses to user pages need it set.
    pub ac: bool,
    /// PKRU: two bits per key, access-disable (2k) and write-disable (2k+1), for user pages.
    pub pkru: u32,
    /// IA32_PKRS: the same layout, for supervisor pages.
    pub pkrs: u32,
}

fn page_fault(error: u32) -> Fault {
    Fault::with_code(vector::PF, error)
}

/// Translates `la` for `access` at privilege `user`, updating A/D bits in guest memory.
///
/// # Errors
/// A #PF fault with the hardware error code; the caller records `la` as the fault address.
pub fn translate(s: &CpuState, ram: &mut GuestRam, la: u64, access: Access, user: bool) -> Result<Translation, Fault> {
    translate_for(s, ram, la, access, Accessor { user, ..Accessor::default() })
}

/// [`translate`] for the accessor `who` (its privilege, whether it is implicit, EFLAGS.AC, the
/// protection-key registers).
///
/// # Errors
/// A #PF fault with the hardware error code; the caller records `la` as the fault address.
pub fn translate_for(
    s: &CpuState,
    ram: &mut GuestRam,
    la: u64,
    access: Access,
    who: Accessor,
) -> Result<Translation, Fault> {
    let user = who.user;
    let long = s.efer & ctrl::EFER_LMA != 0;
    let la = if long { la } else { la & 0xffff_ffff };
    if s.cr0 & ctrl::CR0_PG == 0 {
        return Ok(Translation { page: la & !0xfff, writable: true, readable: true, executable: true, global: false });
    }
    let pae = s.cr4 & ctrl::CR4_PAE != 0;
    let nxe = s.efer & ctrl::EFER_NXE != 0 && (long || pae);
    let mut code = if user { pf_error::USER } else { 0 };
    if access == Access::Write {
        code |= pf_error::WRITE;
    }
    // I/D is reported where execute rights exist at all: with NX or SMEP enabled (SDM Vol. 3, 4.7).
    if access == Access::Exec && (nxe || s.cr4 & CR4_SMEP != 0) {
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
            // Under PAE paging bits 62:52 are reserved (tables 4-8 to 4-11); IA-32e paging
            // ignores them (or reads a protection key from 62:59).
            if !long {
                reserved |= pte & (0x7ff << 52);
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
    let leaf_pte = entries[(top - level) as usize];
    let rights = Rights::of(s, who, (us, rw, nx, wp), long.then_some(leaf_pte));
    let allowed = match access {
        Access::Read => rights.read,
        Access::Write => rights.write,
        Access::Exec => rights.exec,
    };
    let key_allowed = match access {
        Access::Read => rights.key_read,
        Access::Write => rights.key_write,
        Access::Exec => true,
    };
    if !allowed || !key_allowed {
        // PK reports the key's verdict, whatever the other rights say (kvm-unit-tests'
        // `access` checks a user write to a read-only page with its key's AD set: P|W|U|PK).
        let pk = if key_allowed { 0 } else { pf_error::PK };
        return Err(page_fault(code | pf_error::PRESENT | pk));
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
    Ok(Translation {
        page: page_base | offset_in_big,
        writable: rights.cacheable_data && rights.write && rights.key_write && leaf & PTE_D != 0,
        readable: rights.cacheable_data && rights.read && rights.key_read,
        executable: rights.exec,
        global: leaf & PTE_G != 0 && s.cr4 & ctrl::CR4_PGE != 0,
    })
}

/// What the paging structures, the control registers and the accessor allow on one page.
struct Rights {
    read: bool,
    write: bool,
    exec: bool,
    /// The protection keys allow a read, a write (a denial adds PK to the error code).
    key_read: bool,
    key_write: bool,
    /// Data rights do not depend on EFLAGS.AC or the accessor being implicit, so the TLB may
    /// cache them.
    cacheable_data: bool,
}

impl Rights {
    /// SDM Vol. 3, 4.6.1 (access rights, SMEP and SMAP) and 4.6.2 (protection keys); `us`, `rw`
    /// and `nx` are the walk's combined U/S, R/W and XD, `wp` CR0.WP, `leaf` the entry that maps
    /// the page under IA-32e paging (None under 32-bit and PAE paging, which have no keys).
    fn of(s: &CpuState, who: Accessor, (us, rw, nx, wp): (bool, bool, bool, bool), leaf: Option<u64>) -> Rights {
        let pkey = (leaf.unwrap_or(0) >> PKEY_SHIFT & 0xf) as u32;
        // The key's access-disable and write-disable bits, from PKRU for a user page (CR4.PKE),
        // from IA32_PKRS for a supervisor page accessed in supervisor mode (CR4.PKS); keys
        // apply with IA-32e paging only (4.6.2): `leaf` is None under 32-bit and PAE paging.
        let keys = if leaf.is_none() {
            0
        } else if us && s.cr4 & CR4_PKE != 0 {
            who.pkru >> (2 * pkey) & 3
        } else if !us && !who.user && s.cr4 & CR4_PKS != 0 {
            who.pkrs >> (2 * pkey) & 3
        } else {
            0
        };
        let (ad, wd) = (keys & 1 != 0, keys & 2 != 0);
        if who.user {
            return Rights {
                read: us,
                write: us && rw,
                exec: us && !nx,
                key_read: !ad,
                key_write: !ad && !wd,
                cacheable_data: true,
            };
        }
        // Supervisor: SMAP denies data accesses to user pages unless explicit with AC set.
        let smap_applies = us && s.cr4 & CR4_SMAP != 0;
        let smap_ok = !smap_applies || (!who.implicit && who.ac);
        Rights {
            read: smap_ok,
            write: smap_ok && (rw || !wp),
            exec: !(nx || (us && s.cr4 & CR4_SMEP != 0)),
            key_read: !ad,
            // Write-disable binds supervisor writes only with CR0.WP set.
            key_write: !(ad || (wd && wp)),
            cacheable_data: !smap_applies,
        }
    }
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
        // A PTE's bits 62:52 are reserved under PAE paging (where IA-32e paging keeps a
        // protection key in 62:59).
        ram.write::<W64>(0x1020 + 3 * 8, 0x2000 | PTE_P);
        s.efer = ctrl::EFER_NXE;
        ram.write::<W64>(0x3000 + 8, 0x9000 | PTE_P | PTE_RW | PTE_US | 1 << PKEY_SHIFT);
        let f = translate(&s, &mut ram, 0xC020_1234, Access::Read, true).unwrap_err();
        assert_eq!(f.error_code, pf_error::PRESENT | pf_error::USER | pf_error::RSVD);
        // Protection keys apply with IA-32e paging only (4.6.2): PKRU denying key 0 leaves a
        // user read under PAE paging allowed.
        ram.write::<W64>(0x3000 + 8, 0x9000 | PTE_P | PTE_RW | PTE_US);
        s.cr4 |= CR4_PKE;
        let who = Accessor { user: true, pkru: 0b11, ..Accessor::default() };
        assert!(translate_for(&s, &mut ram, 0xC020_1234, Access::Read, who).is_ok());
    }

    #[test]
    fn smep_smap_and_protection_keys_follow_sdm_4_6() {
        const LA: u64 = 0x40_0000;
        let err = |s: &CpuState, ram: &mut GuestRam, a, who| translate_for(s, ram, LA, a, who).unwrap_err().error_code;
        // A user page with protection key 2.
        let (mut s, mut ram) = setup(PTE_P | PTE_RW | PTE_US | PTE_D | 2 << PKEY_SHIFT);
        s.cr4 |= CR4_SMEP | CR4_SMAP;
        let sup = Accessor::default();
        // SMEP: a supervisor fetch from a user page is P|I/D.
        assert_eq!(err(&s, &mut ram, Access::Exec, sup), pf_error::PRESENT | pf_error::FETCH);
        // SMAP: with AC clear a supervisor read is P, a write P|W.
        assert_eq!(err(&s, &mut ram, Access::Read, sup), pf_error::PRESENT);
        assert_eq!(err(&s, &mut ram, Access::Write, sup), pf_error::PRESENT | pf_error::WRITE);
        // With AC set an explicit access goes through, but is not cached (AC changes freely);
        // an implicit one faults whatever AC.
        let t = translate_for(&s, &mut ram, LA, Access::Write, Accessor { ac: true, ..sup }).unwrap();
        assert!(!t.readable && !t.writable);
        let implicit = Accessor { ac: true, implicit: true, ..sup };
        assert_eq!(err(&s, &mut ram, Access::Read, implicit), pf_error::PRESENT);
        // PKU: key 2's access-disable bit (PKRU bit 4) stops a user read (P|U|PK) and a
        // supervisor read; write-disable (bit 5) stops user writes, supervisor ones only with
        // CR0.WP.
        s.cr4 = ctrl::CR4_PAE | CR4_PKE;
        let user = Accessor { user: true, ..sup };
        let pk = pf_error::PRESENT | pf_error::PK;
        assert_eq!(err(&s, &mut ram, Access::Read, Accessor { pkru: 1 << 4, ..user }), pk | pf_error::USER);
        assert_eq!(err(&s, &mut ram, Access::Read, Accessor { pkru: 1 << 4, ..sup }), pk);
        assert!(translate_for(&s, &mut ram, LA, Access::Read, Accessor { pkru: 1 << 2, ..user }).is_ok(), "key 1");
        let wd = Accessor { pkru: 1 << 5, ..user };
        assert_eq!(err(&s, &mut ram, Access::Write, wd), pk | pf_error::USER | pf_error::WRITE);
        assert_eq!(err(&s, &mut ram, Access::Write, Accessor { user: false, ..wd }), pk | pf_error::WRITE);
        s.cr0 &= !ctrl::CR0_WP;
        assert!(translate_for(&s, &mut ram, LA, Access::Write, Accessor { user: false, ..wd }).is_ok());
        assert!(translate_for(&s, &mut ram, LA, Access::Exec, Accessor { pkru: 1 << 4, ..user }).is_ok(), "fetches");
        // PK is reported with the other causes too: a user write to a read-only page whose key
        // has AD set is P|W|U|PK (kvm-unit-tests' `access`).
        let (mut ro, mut ram2) = setup(PTE_P | PTE_US | 2 << PKEY_SHIFT);
        ro.cr4 |= CR4_PKE;
        let f = translate_for(&ro, &mut ram2, LA, Access::Write, Accessor { pkru: 1 << 4, ..user }).unwrap_err();
        assert_eq!(f.error_code, pk | pf_error::USER | pf_error::WRITE);
        // PKS: IA32_PKRS for a supervisor page (key 2 here), not for user pages.
        let (mut s, mut ram) = setup(PTE_P | PTE_RW | PTE_D | 2 << PKEY_SHIFT);
        s.cr4 |= CR4_PKS;
        assert_eq!(err(&s, &mut ram, Access::Read, Accessor { pkrs: 1 << 4, ..sup }), pk);
        assert!(translate_for(&s, &mut ram, LA, Access::Read, Accessor { pkru: 1 << 4, ..sup }).is_ok());
    }

    #[test]
    fn supervisor_write_to_read_only_page_depends_on_cr0_wp() {
        let (mut s, mut ram) = setup(PTE_P | PTE_D);
        assert!(translate(&s, &mut ram, 0x40_0000, Access::Write, false).is_err());
        s.cr0 &= !ctrl::CR0_WP;
        assert!(translate(&s, &mut ram, 0x40_0000, Access::Write, false).is_ok());
    }
}
