//! Tests of the SSE moves: each form against the host CPU, alignment faults, and stores that
//! cross into a page they may not write.

use super::super::testutil::{emulate, host_cases, ints, native, St};
use crate::exception::{Fault, Stop};

// Memory at [rdx] starts as x1's bytes then x0's, so loads see nonzero data.
host_cases! { 200;
    movaps_rr: "movaps xmm0, xmm1", ints();
    movaps_load: "movaps xmm0, [rdx]", ints();
    movaps_store: "movaps [rdx + 16], xmm1", ints();
    movapd_load: "movapd xmm0, [rdx + 16]", ints();
    movdqa_store: "movdqa [rdx], xmm0", ints();
    movups_load: "movups xmm0, [rdx + 3]", ints();
    movupd_store: "movupd [rdx + 5], xmm1", ints();
    movdqu_load: "movdqu xmm0, [rdx + 9]", ints();
    movdqu_store: "movdqu [rdx + 1], xmm0", ints();
    movss_rr: "movss xmm0, xmm1", ints();
    movss_load: "movss xmm0, dword ptr [rdx + 4]", ints();
    movss_store: "movss dword ptr [rdx + 8], xmm0", ints();
    movsd_rr: "movsd xmm0, xmm1", ints();
    movsd_load: "movsd xmm0, qword ptr [rdx + 8]", ints();
    movsd_store: "movsd qword ptr [rdx + 3], xmm0", ints();
    movlps_load: "movlps xmm0, qword ptr [rdx + 8]", ints();
    movlps_store: "movlps qword ptr [rdx + 1], xmm0", ints();
    movhps_load: "movhps xmm0, qword ptr [rdx + 8]", ints();
    movhps_store: "movhps qword ptr [rdx + 2], xmm0", ints();
    movlpd_load: "movlpd xmm0, qword ptr [rdx]", ints();
    movhpd_store: "movhpd qword ptr [rdx], xmm1", ints();
    movhlps: "movhlps xmm0, xmm1", ints();
    movlhps: "movlhps xmm0, xmm1", ints();
    movd_x_r: "movd xmm0, eax", ints();
    movq_x_r: "movq xmm0, rax", ints();
    movd_r_x: "movd eax, xmm1", ints();
    movq_r_x: "movq rax, xmm1", ints();
    movd_load: "movd xmm0, dword ptr [rdx + 4]", ints();
    movd_store: "movd dword ptr [rdx + 4], xmm0", ints();
    movq_load: "movq xmm0, qword ptr [rdx + 4]", ints();
    movq_store: "movq qword ptr [rdx + 4], xmm0", ints();
    movq_xx: "movq xmm0, xmm1", ints();
    movmskps: "movmskps eax, xmm1", ints();
    movmskpd: "movmskpd rax, xmm1", ints();
    pmovmskb: "pmovmskb eax, xmm1", ints();
    movntps: "movntps [rdx], xmm1", ints();
    movntdq: "movntdq [rdx + 16], xmm0", ints();
    movnti32: "movnti dword ptr [rdx + 4], eax", ints();
    movnti64: "movnti qword ptr [rdx + 4], rax", ints();
    maskmovdqu: "maskmovdqu xmm0, xmm1", ints();
}

#[test]
fn aligned_forms_fault_on_misalignment_and_change_nothing() {
    // SDM Vol. 2, MOVAPS: "If the memory address is not aligned on a 16-byte boundary, a
    // #GP is generated"; MOVUPS has no such condition.
    let s = St::new(1, 2, 0x1f80);
    for n in [native!("movaps xmm0, [rdx + 8]"), native!("movdqa [rdx + 4], xmm1"), native!("paddd xmm0, [rdx + 8]")] {
        let (r, out) = emulate((n.bytes)(), &s);
        assert_eq!(r, Err(Stop::Fault(Fault::gp0())));
        assert_eq!(out, s);
    }
    let (r, _) = emulate((native!("movups xmm0, [rdx + 8]").bytes)(), &s);
    assert!(r.is_ok());
}

#[test]
fn stores_crossing_into_a_read_only_page_fault_before_writing_anything() {
    // docs/ARCHITECTURE.md, decision 6: a page-crossing store checks both pages first.
    use super::super::testutil::exec;
    use crate::exception::vector;
    use crate::mem::GuestRam;
    use crate::user::aspace::{AddressSpace, PROT_READ, PROT_WRITE};
    use crate::Cpu;
    let mut ram = GuestRam::new(1 << 20).expect("ram");
    let mut a = AddressSpace::new(&mut ram);
    let rw = a.populate(&mut ram, 0x10000, PROT_READ | PROT_WRITE).expect("frame");
    a.populate(&mut ram, 0x11000, PROT_READ).expect("frame");
    let mut cpu = Cpu::new(ram);
    crate::user::setup_long_mode_user(&mut cpu, a.pml4);
    cpu.state.xmm[0] = [u64::MAX, u64::MAX];
    cpu.state.xmm[1] = [u64::MAX, u64::MAX];
    let cases: [(&[u8], u64); 4] = [
        (&[0x0f, 0x11, 0x02], 0x10ff8),       // movups [rdx], xmm0
        (&[0x0f, 0x13, 0x02], 0x10ffc),       // movlps [rdx], xmm0
        (&[0x66, 0x0f, 0xf7, 0xc1], 0x10ff8), // maskmovdqu xmm0, xmm1 at [rdi]
        (&[0x48, 0x0f, 0xae, 0x02], 0x10f00), // fxsave64 [rdx] (416 bytes cross)
    ];
    for (bytes, at) in cases {
        cpu.state.gpr[2] = at;
        cpu.state.gpr[7] = at;
        let r = exec(&mut cpu, bytes);
        assert!(matches!(r, Err(Stop::Fault(f)) if f.vector == vector::PF), "{bytes:02x?}: {r:?}");
        assert_eq!(cpu.fault_addr, 0x11000, "{bytes:02x?}");
        assert!(cpu.ram.slice(rw, 4096).expect("frame").iter().all(|b| *b == 0), "{bytes:02x?} wrote");
    }
    // A load crossing into an unmapped page faults and leaves the register alone.
    cpu.state.gpr[2] = 0x11ff8;
    let r = exec(&mut cpu, &[0x0f, 0x10, 0x02]); // movups xmm0, [rdx]
    assert!(matches!(r, Err(Stop::Fault(f)) if f.vector == vector::PF));
    assert_eq!(cpu.state.xmm[0], [u64::MAX, u64::MAX]);
}
