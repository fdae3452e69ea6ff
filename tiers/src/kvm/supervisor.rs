//! The minimal supervisor a user-mode process needs under KVM: a few supervisor-only pages in
//! the kernel half of the process's address space holding an IDT, a 64-bit TSS, an exception
//! stack and one tiny CPL0 entry stub per vector plus one for SYSCALL. Every stub is a single
//! `out` to [`EXIT_PORT`], so each entry into CPL0 leaves KVM at once and the runner
//! (`user.rs`) serves it in Rust; the stub that was hit, known from RIP, names the event.
//!
//! Nothing here ever returns to CPL3: the runner resumes the program by loading its user
//! state into the vCPU directly. On a `kvm_pvm` host CPL0 code is emulated one instruction at
//! a time, which is why a stub is one instruction (followed by `hlt; jmp .`, never reached).
//!
//! Layout references: SDM Vol. 3A 6.14.1 (64-bit IDT gate descriptors), 7.7 (64-bit TSS),
//! 6.14.5 (interrupt stack table); Vol. 2B SYSCALL (STAR/LSTAR/CSTAR/FMASK).
//!
//! The TSS's I/O permission bitmap allows only [`EXIT_PORT`], for the SYSCALL stub when it runs
//! at CPL3; the program's own IN/OUT exits or faults and `user.rs` turns either into #GP(0).

use emu::mem::GuestRam;
use emu::state::{attr, CpuState, DescriptorTable, Segment};
use emu::user::aspace::{AddressSpace, GDT_VA};

/// Base of the supervisor's pages: just above the GDT page `aspace` maps for the process.
pub const BASE: u64 = GDT_VA + 0x1_0000;
/// The IDT: 256 gates of 16 bytes, one page.
pub const IDT_VA: u64 = BASE;
/// The 64-bit TSS (104 bytes used).
pub const TSS_VA: u64 = BASE + 0x1000;
/// The entry stubs, [`STUB_SIZE`] bytes apart: vectors 0..=255, then SYSCALL from 64-bit code,
/// then SYSCALL from compatibility mode.
pub const STUB_VA: u64 = BASE + 0x2000;
/// One page of stack for exception entry (IST1, also RSP0).
pub const STACK_VA: u64 = BASE + 0x3000;
pub const STACK_TOP: u64 = STACK_VA + 0x1000;
/// The SYSCALL entry stubs (IA32_LSTAR, IA32_CSTAR): a page of their own, executable from
/// CPL3 too, because `kvm_pvm` performs SYSCALL without leaving CPL3. There the stub's `out`
/// exits as port I/O straight from CPL3 (no exception delivery through KVM's emulator, which
/// costs ~100 us); on VMX/SVM hosts it runs at CPL0 as usual. Linux's vsyscall page is the
/// precedent for a user-executable page in the kernel half.
pub const SYSCALL_VA: u64 = BASE + 0x4000;

pub const STUB_SIZE: u64 = 8;
/// Stub index of the 64-bit SYSCALL entry (IA32_LSTAR), counted from `STUB_VA` (it lies in
/// the next page, `SYSCALL_VA`).
pub const SYSCALL_STUB: u64 = 0x2000 / STUB_SIZE;
/// Stub index of the compatibility-mode SYSCALL entry (IA32_CSTAR).
pub const COMPAT_SYSCALL_STUB: u64 = SYSCALL_STUB + 1;
/// Exception stubs: one per IDT vector.
const VECTORS: u64 = 256;
/// The port every stub writes to; the value written is meaningless.
pub const EXIT_PORT: u8 = 0xe0;

/// Linux's selectors (`aspace::GDT`): kernel code/data for the stubs, user code/data to resume.
pub const KERNEL_CS: u16 = 0x10;
pub const USER32_CS: u16 = 0x23;
pub const USER_DS: u16 = 0x2b;
pub const USER_CS: u16 = 0x33;
/// The TSS descriptor occupies GDT entries 8 and 9, as in Linux (GDT_ENTRY_TSS).
pub const TSS_SELECTOR: u16 = 0x40;
/// The TSS: 104 bytes, then the I/O permission bitmap for ports 0..=255 and its closing byte.
const IOPB: usize = 104;
const TSS_LIMIT: u32 = IOPB as u32 + 32;

/// RFLAGS bits SYSCALL clears on entry (TF, DF, IF, IOPL, AC, NT), as Linux programs FMASK.
pub const SYSCALL_FMASK: u64 = 0x4_7700;

/// Vectors whose exception pushes an error code (SDM Vol. 3A Table 6-1): #DF, #TS, #NP, #SS,
/// #GP, #PF, #AC, #CP, #VC, #SX.
pub fn pushes_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// Where the supervisor's pages live in guest-physical RAM (for reading exception frames).
#[derive(Clone, Copy, Debug)]
pub struct Supervisor {
    pub stack_pa: u64,
}

/// The stub index whose `out` is at or ends at `rip`, if any. KVM reports a port write with
/// RIP at the instruction (its fast path completes it at the next KVM_RUN, and only if RIP is
/// unchanged) or, from its instruction emulator (CPL0 on `kvm_pvm`), past it.
pub fn stub_at(rip: u64) -> Option<u64> {
    let off = rip.checked_sub(STUB_VA)?;
    let (index, within) = (off / STUB_SIZE, off % STUB_SIZE);
    (matches!(within, 0 | 2) && (index < VECTORS || index == SYSCALL_STUB || index == COMPAT_SYSCALL_STUB))
        .then_some(index)
}

/// One 16-byte interrupt gate to `target` in the kernel code segment, on IST1.
fn gate(target: u64, dpl: u8) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[0..2].copy_from_slice(&(target as u16).to_le_bytes());
    g[2..4].copy_from_slice(&KERNEL_CS.to_le_bytes());
    g[4] = 1; // IST1: a known stack whatever happened before
    g[5] = 0x80 | dpl << 5 | 0xe; // present, DPL, 64-bit interrupt gate
    g[6..8].copy_from_slice(&((target >> 16) as u16).to_le_bytes());
    g[8..12].copy_from_slice(&((target >> 32) as u32).to_le_bytes());
    g
}

/// The 16-byte 64-bit TSS descriptor for a TSS at `base` (type 0xB, busy, as after LTR).
fn tss_descriptor(base: u64) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[0..2].copy_from_slice(&(TSS_LIMIT as u16).to_le_bytes());
    d[2..4].copy_from_slice(&(base as u16).to_le_bytes());
    d[4] = (base >> 16) as u8;
    d[5] = 0x80 | 0xb;
    d[7] = (base >> 24) as u8;
    d[8..12].copy_from_slice(&((base >> 32) as u32).to_le_bytes());
    d
}

fn put(ram: &mut GuestRam, pa: u64, bytes: &[u8]) -> Option<()> {
    ram.slice_mut(pa, bytes.len())?.copy_from_slice(bytes);
    Some(())
}

/// Maps and fills the supervisor's pages in `aspace`, and points `state` at them: IDTR, TR,
/// STAR/LSTAR/CSTAR/FMASK. `None` when guest RAM is exhausted.
pub fn install(aspace: &mut AddressSpace, ram: &mut GuestRam, state: &mut CpuState) -> Option<Supervisor> {
    let idt_pa = aspace.map_supervisor_page(ram, IDT_VA, false, false)?;
    let tss_pa = aspace.map_supervisor_page(ram, TSS_VA, false, false)?;
    let stub_pa = aspace.map_supervisor_page(ram, STUB_VA, false, true)?;
    let stack_pa = aspace.map_supervisor_page(ram, STACK_VA, true, false)?;
    let syscall_pa = aspace.map_user_page(ram, SYSCALL_VA)?;

    let mut idt = Vec::with_capacity(4096);
    for v in 0..256u64 {
        // INT3 is allowed from CPL3 (SIGTRAP with RIP past it), as Linux's gate; any other
        // INT n from user code raises #GP(n*8+2), as tier 0 reports it.
        let dpl = if v == 3 { 3 } else { 0 };
        idt.extend_from_slice(&gate(STUB_VA + v * STUB_SIZE, dpl));
    }
    put(ram, idt_pa, &idt)?;

    let mut tss = [0u8; TSS_LIMIT as usize + 1];
    tss[4..12].copy_from_slice(&STACK_TOP.to_le_bytes()); // RSP0
    tss[36..44].copy_from_slice(&STACK_TOP.to_le_bytes()); // IST1
    tss[102..104].copy_from_slice(&(IOPB as u16).to_le_bytes());
    // The I/O permission bitmap for ports 0..=255 plus the closing all-ones byte: only
    // EXIT_PORT is allowed (the SYSCALL stub may run at CPL3); ports above 255 lie past the
    // limit and fault (SDM Vol. 1, 19.5.2).
    tss[IOPB..].fill(0xff);
    tss[IOPB + EXIT_PORT as usize / 8] &= !(1 << (EXIT_PORT % 8));
    put(ram, tss_pa, &tss)?;

    // out %al, $EXIT_PORT; hlt; jmp .
    let stub = [0xe6, EXIT_PORT, 0xf4, 0xeb, 0xfe, 0xcc, 0xcc, 0xcc];
    let stubs: Vec<u8> = (0..VECTORS).flat_map(|_| stub).collect();
    put(ram, stub_pa, &stubs)?;
    put(ram, syscall_pa, &[stub, stub].concat())?;

    let gdt_pa = aspace.lookup(ram, GDT_VA)?;
    put(ram, gdt_pa + u64::from(TSS_SELECTOR), &tss_descriptor(TSS_VA))?;

    state.idtr = DescriptorTable { base: IDT_VA, limit: 0xfff, ..DescriptorTable::default() };
    state.tr = Segment { base: TSS_VA, limit: TSS_LIMIT, selector: TSS_SELECTOR, attr: 0xb | attr::P };
    // SYSCALL loads CS from STAR[47:32] and SS = CS + 8 (KERNEL_DS); SYSRET is never used.
    state.msr.star = u64::from(USER32_CS) << 48 | u64::from(KERNEL_CS) << 32;
    state.msr.lstar = STUB_VA + SYSCALL_STUB * STUB_SIZE;
    state.msr.cstar = STUB_VA + COMPAT_SYSCALL_STUB * STUB_SIZE;
    state.msr.sfmask = SYSCALL_FMASK;
    Some(Supervisor { stack_pa })
}

/// The user code segment for selector `cs` as the process's GDT defines it: 32-bit
/// compatibility code for USER32_CS, 64-bit code otherwise.
pub fn user_code_segment(cs: u16) -> Segment {
    if cs & !3 == USER32_CS & !3 {
        Segment {
            base: 0,
            limit: 0xffff_ffff,
            selector: USER32_CS,
            attr: 0xb | attr::S | 3 << attr::DPL_SHIFT | attr::P | attr::DB | attr::G,
        }
    } else {
        Segment::flat_code64(USER_CS, 3)
    }
}

/// Puts `state` back at CPL3 with the user's CS and SS, as SYSRET/IRETQ would.
pub fn to_user(state: &mut CpuState, cs: u16) {
    state.segs[1] = user_code_segment(cs);
    state.segs[2] = Segment::flat_data(USER_DS, 3);
    state.cpl = 3;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_encode_the_sdm_layout() {
        // SDM Vol. 3A Figure 6-8: offset 15:0, selector, IST, type/DPL/P, offset 31:16, 63:32.
        let g = gate(0xffff_ffff_ff58_2010, 3);
        assert_eq!(&g[0..2], &[0x10, 0x20]);
        assert_eq!(u16::from_le_bytes([g[2], g[3]]), 0x10);
        assert_eq!(g[4], 1);
        assert_eq!(g[5], 0xee, "P=1, DPL=3, type 0xE");
        assert_eq!(&g[6..8], &[0x58, 0xff]);
        assert_eq!(&g[8..12], &[0xff; 4]);
    }

    #[test]
    fn stub_index_comes_from_rip_after_the_out() {
        assert_eq!(stub_at(STUB_VA + 2), Some(0));
        assert_eq!(stub_at(STUB_VA + 14 * STUB_SIZE + 2), Some(14));
        assert_eq!(stub_at(STUB_VA + SYSCALL_STUB * STUB_SIZE + 2), Some(SYSCALL_STUB));
        assert_eq!(stub_at(STUB_VA + 14 * STUB_SIZE), Some(14), "RIP still at the OUT");
        assert_eq!(stub_at(STUB_VA + 3), None);
        assert_eq!(stub_at(STUB_VA + VECTORS * STUB_SIZE + 2), None);
        assert_eq!(stub_at(SYSCALL_VA + STUB_SIZE), Some(COMPAT_SYSCALL_STUB));
        assert_eq!(stub_at(0x401002), None);
    }

    #[test]
    fn error_code_vectors_follow_table_6_1() {
        let with: Vec<u8> = (0..32).filter(|&v| pushes_error_code(v)).collect();
        assert_eq!(with, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
    }
}
