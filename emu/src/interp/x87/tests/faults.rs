//! Faults: the deferred #MF of an unmasked exception (SDM Vol. 1, 8.6; Vol. 3, 6.15 "Interrupt
//! 16"), #NM for CR0.EM/TS/MP (SDM Vol. 3, 2.5; Vol. 2, WAIT/FWAIT), and precise memory
//! stores: a faulting store leaves the FPU as it was (ARCHITECTURE.md, decision 6). The host cannot show these without signal handling, so the expected
//! values come from the SDM.

use super::harness::{Guest, MEM_VA, SAVE_VA};
use crate::exception::vector;
use crate::state::ctrl;
use crate::state::FpuState;

/// An address with no page behind it in the test guest.
const UNMAPPED: u64 = 0x60_0000;

/// `fninit; fldcw [rsi]` with ZE unmasked, then `fld1; fldz; fdivp st(1), st(0)`: 1/0.
fn divide_by_zero_unmasked(g: &mut Guest) {
    g.write(MEM_VA, &0x037bu16.to_le_bytes());
    g.cpu.state.gpr[6] = MEM_VA;
    let code = [0xdb, 0xe3, 0xd9, 0x2e, 0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9];
    assert_eq!(g.exec(&code), None, "the faulting FDIVP itself completes");
}

#[test]
fn unmasked_exception_raises_mf_at_the_next_waiting_instruction() {
    let mut g = Guest::new();
    divide_by_zero_unmasked(&mut g);
    let f = g.cpu.state.fpu;
    // ZE, ES and B are set; an unmasked ZE writes no result and does not pop (SDM Vol. 1,
    // 8.5.3), so both operands are still on the stack.
    assert_eq!(f.fsw & 0x80ff, 0x8084, "fsw {:04x}", f.fsw);
    assert_eq!(super::super::stack::top(&f), 6);
    // The next waiting instruction faults with #MF before doing anything.
    assert_eq!(g.exec(&[0xd9, 0xe8]), Some(vector::MF)); // fld1
    assert_eq!(g.cpu.state.fpu, f);
    assert_eq!(g.exec(&[0x9b]), Some(vector::MF)); // fwait
                                                   // Non-waiting instructions run: FNSTSW AX, FNSTCW, FNSTENV (which then masks everything).
    assert_eq!(g.exec(&[0xdf, 0xe0]), None);
    assert_eq!(g.cpu.state.gpr[0] & 0xffff, f.fsw as u64);
    // FNCLEX clears the flags, ES and B; then waiting instructions run again.
    assert_eq!(g.exec(&[0xdb, 0xe2, 0xd9, 0xe8]), None);
    assert_eq!(g.cpu.state.fpu.fsw & 0x80ff, 0);
    assert_eq!(super::super::stack::top(&g.cpu.state.fpu), 5);
}

#[test]
fn fldcw_that_unmasks_a_set_flag_makes_the_next_waiting_instruction_fault() {
    let mut g = Guest::new();
    // Masked 1/0 sets ZE only; unmasking ZE with FLDCW sets ES and B (as the host does) and
    // arms #MF (SDM Vol. 2, FLDCW).
    g.write(MEM_VA, &0x037bu16.to_le_bytes());
    g.cpu.state.gpr[6] = MEM_VA;
    let code = [0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9, 0xd9, 0x2e];
    assert_eq!(g.exec(&code), None);
    assert_eq!(g.cpu.state.fpu.fsw & 0x80ff, 0x8084);
    assert_eq!(g.exec(&[0xd9, 0xe1]), Some(vector::MF)); // fabs
}

#[test]
fn without_cr0_ne_no_mf_is_raised() {
    let mut g = Guest::new();
    g.cpu.state.cr0 &= !ctrl::CR0_NE;
    divide_by_zero_unmasked(&mut g);
    // FERR#-style reporting is not modelled; the instruction simply runs.
    assert_eq!(g.exec(&[0xd9, 0xe8]), None);
}

#[test]
fn cr0_ts_and_em_raise_nm() {
    let mut g = Guest::new();
    g.cpu.state.cr0 |= ctrl::CR0_TS;
    assert_eq!(g.exec(&[0xd9, 0xe8]), Some(vector::NM)); // fld1
    assert_eq!(g.exec(&[0xdb, 0xe3]), Some(vector::NM)); // fninit: no-wait, still #NM
                                                         // WAIT faults only when MP is set as well.
    g.cpu.state.cr0 &= !ctrl::CR0_MP;
    assert_eq!(g.exec(&[0x9b]), None);
    g.cpu.state.cr0 |= ctrl::CR0_MP;
    assert_eq!(g.exec(&[0x9b]), Some(vector::NM));
    g.cpu.state.cr0 &= !ctrl::CR0_TS;
    g.cpu.state.cr0 |= ctrl::CR0_EM;
    assert_eq!(g.exec(&[0xd9, 0xe8]), Some(vector::NM));
    g.cpu.state.cr0 &= !ctrl::CR0_EM;
    assert_eq!(g.exec(&[0xd9, 0xe8]), None);
}

/// Runs `fninit; fld1; fldpi` and then `insn` with RSI pointing at `target`; returns the FPU
/// state before `insn` and the fault it raised.
fn store_to(target: u64, insn: &[u8]) -> (FpuState, FpuState, Option<u8>) {
    let mut g = Guest::new();
    assert_eq!(g.exec(&[0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xeb]), None);
    let before = g.cpu.state.fpu;
    g.cpu.state.gpr[6] = target;
    let fault = g.exec(insn);
    (before, g.cpu.state.fpu, fault)
}

#[test]
fn a_faulting_store_changes_no_fpu_state() {
    for insn in [
        &[0xdb, 0x3e][..], // fstp m80
        &[0xdd, 0x1e],     // fstp m64
        &[0xdf, 0x3e],     // fistp m64
        &[0xdf, 0x36],     // fbstp
        &[0xdd, 0x36],     // fnsave (would also reinitialize)
        &[0xd9, 0x36],     // fnstenv (would also mask exceptions)
    ] {
        let (before, after, fault) = store_to(UNMAPPED, insn);
        assert_eq!(fault, Some(vector::PF), "{insn:02x?}");
        assert_eq!(before, after, "{insn:02x?}");
    }
}

#[test]
fn a_store_crossing_into_an_unmapped_page_writes_nothing() {
    // The save page is followed by an unmapped page: FNSAVE 8 bytes before its end must fault
    // without writing the 8 bytes that fit.
    let mut g = Guest::new();
    let at = SAVE_VA + 4096 - 8;
    g.write(at, &[0x5a; 8]);
    assert_eq!(g.exec(&[0xdb, 0xe3, 0xd9, 0xe8]), None);
    let before = g.cpu.state.fpu;
    g.cpu.state.gpr[6] = at;
    assert_eq!(g.exec(&[0xdd, 0x36]), Some(vector::PF));
    assert_eq!(g.read(at, 8), vec![0x5a; 8]);
    assert_eq!(g.cpu.state.fpu, before);
    // An m80 store across the same boundary: the first 8 bytes fit, the last 2 do not.
    g.cpu.state.gpr[6] = at;
    assert_eq!(g.exec(&[0xdb, 0x3e]), Some(vector::PF));
    assert_eq!(g.read(at, 8), vec![0x5a; 8]);
    assert_eq!(g.cpu.state.fpu, before);
}
