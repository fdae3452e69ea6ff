//! Checks on the harness itself: it must be able to fail, and its native run must agree with
//! values computed from the SDM's definitions rather than with tier 0.

use conformance::compare::compare;
use conformance::gen::{build_case, case_seed};
use conformance::guest::GuestRunner;
use conformance::harness::native_available;
use conformance::state::{Outcome, FALLTHROUGH};
use iced_x86::Code;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

fn runner() -> TestRunner {
    TestRunner::new_with_rng(Default::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]))
}

/// `add r64, r64` natively: the sum and the SDM's flag definitions, computed here.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn native_add_matches_the_sdm_definition() {
    if let Err(why) = native_available() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut r = runner();
    let mut done = 0;
    while done < 64 {
        let seed = case_seed().new_tree(&mut r).expect("seed").current();
        let Ok(case) = build_case(Code::Add_rm64_r64, &seed, true, false) else { continue };
        let (d, s) = (case.instr.op0_register(), case.instr.op1_register());
        let di = d as usize - iced_x86::Register::RAX as usize;
        let si = s as usize - iced_x86::Register::RAX as usize;
        let (a, b) = (case.init.gpr[di], case.init.gpr[si]);
        let out = conformance::native::with_runner(|n| n.run(&case.bytes, &case.init)).expect("native");
        let sum = a.wrapping_add(b);
        assert_eq!(out.gpr[di], sum);
        let cf = sum < a;
        let of = ((a ^ sum) & (b ^ sum)) >> 63 == 1;
        let zf = sum == 0;
        let sf = sum >> 63 == 1;
        let pf = (sum as u8).count_ones().is_multiple_of(2);
        let af = ((a ^ b ^ sum) >> 4) & 1 == 1;
        let f = out.rflags;
        assert_eq!((f & 1 != 0, f & 0x800 != 0, f & 0x40 != 0, f & 0x80 != 0), (cf, of, zf, sf));
        assert_eq!((f & 4 != 0, f & 0x10 != 0), (pf, af));
        assert_eq!(out.rip, FALLTHROUGH);
        done += 1;
    }
}

/// A changed result is reported: the comparison is not vacuous.
#[test]
fn a_wrong_result_is_reported() {
    let mut r = runner();
    let mut guest = GuestRunner::new().expect("guest RAM");
    let case = loop {
        let seed = case_seed().new_tree(&mut r).expect("seed").current();
        if let Ok(c) = build_case(Code::Add_rm64_r64, &seed, true, false) {
            break c;
        }
    };
    let Outcome::Completed(mut out) = guest.run(&case.bytes, &case.init) else { panic!("tier 0 faulted") };
    let same = compare(&case.instr, &case.init, &out, &Outcome::Completed(out.clone()));
    assert!(same.diffs.is_empty());
    let reference = (*out).clone();
    out.gpr[3] ^= 1;
    out.rflags ^= 1; // CF is defined by ADD
    out.xmm[5][1] ^= 1 << 40;
    out.buf[100] ^= 0x20;
    let c = compare(&case.instr, &case.init, &reference, &Outcome::Completed(out));
    assert_eq!(c.diffs.len(), 4, "{:?}", c.diffs);
}
