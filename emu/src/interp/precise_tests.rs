//! Precise memory faults across the families (ARCHITECTURE.md, decision 6), on real page tables at CPL 3:
//! a read-modify-write to a read-only page reports #PF with W=1 and changes no register, flag
//! or byte; a store that crosses into a page that faults writes nothing to the first page; a
//! read fault has W=0.

use super::hosttest::{paged_cpu, run1};
use crate::cpu::Cpu;
use crate::exception::{pf_error, vector, Stop};
use crate::flags::{W64, W8};
use crate::state::rflags;
use crate::user::aspace::{PROT_READ, PROT_WRITE};

const RW: u32 = PROT_READ | PROT_WRITE;
const RO_PAGE: u64 = 0x21000;

fn cpu_with_ro_page() -> Cpu {
    let mut cpu = paged_cpu(&[(0x20000, RW), (RO_PAGE, PROT_READ)]);
    for (i, r) in cpu.state.gpr.iter_mut().enumerate() {
        *r = 0x0101_0101_0101_0101u64.wrapping_mul(i as u64 + 1);
    }
    cpu.state.gpr[0] = 5; // a small bit offset for BT*
    cpu.state.gpr[1] = 3; // CL
    cpu.state.set_rflags(0x202 | rflags::CF | rflags::ZF);
    cpu
}

/// Runs `code` (which addresses [rdi]) with RDI at `addr`; expects #PF with `code_bits` there and
/// nothing changed.
fn expect_pf(mut cpu: Cpu, code: &[u8], addr: u64, fault_at: u64, error: u32) {
    cpu.state.gpr[7] = addr;
    let before = cpu.state.clone();
    let mem_before: Vec<u8> = (0..0x2000u64).map(|i| cpu.read::<W8>(0x20000 + i).unwrap() as u8).collect();
    match run1(&mut cpu, code) {
        Err(Stop::Fault(f)) => {
            assert_eq!(f.vector, vector::PF, "{code:x?}");
            assert_eq!(f.error_code, error, "{code:x?}");
            assert_eq!(cpu.fault_addr, fault_at, "{code:x?}");
        }
        other => panic!("{code:x?}: expected #PF, got {other:?}"),
    }
    assert_eq!(cpu.state.gpr, before.gpr, "{code:x?}");
    assert_eq!(cpu.state.rflags(), before.rflags(), "{code:x?}");
    let mem_after: Vec<u8> = (0..0x2000u64).map(|i| cpu.read::<W8>(0x20000 + i).unwrap() as u8).collect();
    assert!(mem_before == mem_after, "{code:x?}: memory changed");
}

#[test]
fn rmw_on_a_read_only_page_faults_with_w1_and_changes_nothing() {
    let w = pf_error::PRESENT | pf_error::WRITE | pf_error::USER;
    let rmw: &[&[u8]] = &[
        &[0x01, 0x07],                   // add [rdi], eax
        &[0x48, 0x11, 0x0f],             // adc [rdi], rcx
        &[0xff, 0x07],                   // inc dword [rdi]
        &[0x48, 0xf7, 0x1f],             // neg qword [rdi]
        &[0xf6, 0x17],                   // not byte [rdi]
        &[0x48, 0xd3, 0x27],             // shl qword [rdi], cl
        &[0xc1, 0x07, 0x05],             // rol dword [rdi], 5
        &[0xd1, 0x17],                   // rcl dword [rdi], 1
        &[0x48, 0x0f, 0xa5, 0x07],       // shld [rdi], rax, cl
        &[0x0f, 0xab, 0x07],             // bts [rdi], eax
        &[0x48, 0x0f, 0xba, 0x37, 0x05], // btr qword [rdi], 5
        &[0x87, 0x07],                   // xchg [rdi], eax
        &[0x0f, 0xb1, 0x0f],             // cmpxchg [rdi], ecx (unequal: still a write cycle)
        &[0xf0, 0x48, 0x0f, 0xc1, 0x0f], // lock xadd [rdi], rcx
        &[0x0f, 0xc7, 0x0f],             // cmpxchg8b [rdi]
        &[0x0f, 0x97, 0x07],             // seta byte [rdi] (a plain store)
        &[0x89, 0x07],                   // mov [rdi], eax
        &[0xaa],                         // stosb
        &[0xf3, 0x48, 0xab],             // rep stosq
    ];
    for code in rmw {
        expect_pf(cpu_with_ro_page(), code, RO_PAGE + 0x10, RO_PAGE + 0x10, w);
    }
    // An operand that reaches the read-only page from a bit offset (bit string) faults there too.
    let mut cpu = cpu_with_ro_page();
    cpu.state.gpr[0] = 0x1000 * 8; // bts [rdi], eax with EAX = 32768: one page further
    expect_pf(cpu, &[0x0f, 0xab, 0x07], 0x20000, RO_PAGE, w);
}

#[test]
fn a_page_crossing_store_writes_nothing_when_the_second_page_faults() {
    let w = pf_error::PRESENT | pf_error::WRITE | pf_error::USER;
    // mov [rdi], rax / add [rdi], rax / xchg [rdi], rax at 0x20ffc: 4 bytes in the writable page,
    // 4 in the read-only one.
    for code in [&[0x48, 0x89, 0x07][..], &[0x48, 0x01, 0x07], &[0x48, 0x87, 0x07], &[0x48, 0xd1, 0x27]] {
        expect_pf(cpu_with_ro_page(), code, RO_PAGE - 4, RO_PAGE, w);
    }
    // Crossing into an unmapped page (0x22000 is not mapped): not-present write fault.
    let mut cpu = paged_cpu(&[(0x20000, RW), (0x21000, RW)]);
    cpu.state.gpr[0] = u64::MAX;
    expect_pf(cpu, &[0x48, 0x89, 0x07], 0x22000 - 2, 0x22000, pf_error::WRITE | pf_error::USER);
}

#[test]
fn read_faults_have_w0() {
    // add eax, [rdi] / bt [rdi], eax / cmovz eax, [rdi] (condition false) on an unmapped page.
    for code in [&[0x03, 0x07][..], &[0x0f, 0xa3, 0x07], &[0x0f, 0x44, 0x07], &[0xf7, 0x37]] {
        let mut cpu = cpu_with_ro_page();
        cpu.state.lazy.force_zf(false);
        expect_pf(cpu, code, 0x30000, 0x30000, pf_error::USER);
    }
    // The same RMW on the read-only page reads fine but faults for the write.
    let mut cpu = cpu_with_ro_page();
    cpu.state.gpr[7] = RO_PAGE;
    assert!(run1(&mut cpu, &[0x48, 0x8b, 0x07]).is_ok()); // mov rax, [rdi]
    assert_eq!(cpu.read::<W64>(RO_PAGE).unwrap(), cpu.state.gpr[0]);
}
