//! Tests for the string instructions: host-differential runs over offsets, counts, DF and
//! prefixes; precise faults in the middle of a REP (with real page tables); the page-run fast
//! path against the element loop.

use super::super::hosttest::{check, host, paged_cpu, run1, Guest, Regs, FLAGS};
use super::MAX_ELEMENTS;
use crate::decode::build_instr;
use crate::exception::{pf_error, vector, Stop};
use crate::flags::W8;
use crate::mem::GuestRam;
use crate::state::rflags;
use crate::user::aspace::{PROT_READ, PROT_WRITE};
use iced_x86::{Decoder, DecoderOptions};

/// Cases for element size `k`: rSI/rDI are offsets from R10 (the buffer's middle) chosen so that
/// every element the instruction touches lies inside the 64-byte buffer, in both directions.
fn cases(k: i64, rep: bool) -> Vec<Regs> {
    let mut out = Vec::new();
    let offs = [-32i64, -17, -8, -3, 0, 1, 5, 8, 16];
    let counts: &[i64] = if rep { &[0, 1, 2, 3, 5, 8] } else { &[1] };
    let fits = |o: i64, c: i64, down: bool| {
        let (lo, hi) = if down { (o - (c - 1).max(0) * k, o + k) } else { (o, o + c.max(1) * k) };
        lo >= -32 && hi <= 32
    };
    let mut n = 0u64;
    for &si in &offs {
        for &di in &offs {
            for &c in counts {
                for down in [false, true] {
                    if !fits(si, c, down) || !fits(di, c, down) {
                        continue;
                    }
                    n += 1;
                    // Mostly equal bytes so REPE/REPNE CMPS/SCAS see runs, with one odd byte.
                    let mut mem = [0x4141_4141_4141_4141u64; 8];
                    let pos = (n * 7) % 64;
                    mem[(pos / 8) as usize] ^= 0x11 << (8 * (pos % 8));
                    if n.is_multiple_of(3) {
                        for (i, m) in mem.iter_mut().enumerate() {
                            *m = 0x0706_0504_0302_0100u64.wrapping_add(0x0808_0808_0808_0808 * i as u64);
                        }
                    }
                    let flags = if down { rflags::DF } else { 0 }
                        | if n.is_multiple_of(2) { rflags::ZF | rflags::CF } else { 0 };
                    out.push(Regs {
                        rax: 0x4141_4141_4141_4141 ^ if n.is_multiple_of(4) { 0x11 } else { 0 },
                        rcx: c as u64,
                        rsi: si as u64,
                        rdi: di as u64,
                        flags,
                        mem,
                        ..Default::default()
                    });
                }
            }
        }
    }
    assert!(out.len() > 50);
    out
}

#[test]
fn movs_matches_the_host() {
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "movsb", "sub rsi, r10", "sub rdi, r10"),
        cases(1, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep movsb", "sub rsi, r10", "sub rdi, r10"),
        cases(1, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "movsw", "sub rsi, r10", "sub rdi, r10"),
        cases(2, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep movsw", "sub rsi, r10", "sub rdi, r10"),
        cases(2, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "movsd", "sub rsi, r10", "sub rdi, r10"),
        cases(4, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep movsd", "sub rsi, r10", "sub rdi, r10"),
        cases(4, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "movsq", "sub rsi, r10", "sub rdi, r10"),
        cases(8, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep movsq", "sub rsi, r10", "sub rdi, r10"),
        cases(8, true),
        FLAGS,
    );
}

#[test]
fn cmps_matches_the_host() {
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "cmpsb", "sub rsi, r10", "sub rdi, r10"),
        cases(1, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep cmpsb", "sub rsi, r10", "sub rdi, r10"),
        cases(1, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "repne cmpsb", "sub rsi, r10", "sub rdi, r10"),
        cases(1, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "cmpsw", "sub rsi, r10", "sub rdi, r10"),
        cases(2, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep cmpsw", "sub rsi, r10", "sub rdi, r10"),
        cases(2, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "repne cmpsw", "sub rsi, r10", "sub rdi, r10"),
        cases(2, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "cmpsd", "sub rsi, r10", "sub rdi, r10"),
        cases(4, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep cmpsd", "sub rsi, r10", "sub rdi, r10"),
        cases(4, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "repne cmpsd", "sub rsi, r10", "sub rdi, r10"),
        cases(4, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "cmpsq", "sub rsi, r10", "sub rdi, r10"),
        cases(8, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep cmpsq", "sub rsi, r10", "sub rdi, r10"),
        cases(8, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "repne cmpsq", "sub rsi, r10", "sub rdi, r10"),
        cases(8, true),
        FLAGS,
    );
}

#[test]
fn scas_matches_the_host() {
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "scasb", "sub rsi, r10", "sub rdi, r10"),
        cases(1, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep scasb", "sub rsi, r10", "sub rdi, r10"),
        cases(1, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "repne scasb", "sub rsi, r10", "sub rdi, r10"),
        cases(1, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "scasw", "sub rsi, r10", "sub rdi, r10"),
        cases(2, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep scasw", "sub rsi, r10", "sub rdi, r10"),
        cases(2, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "repne scasw", "sub rsi, r10", "sub rdi, r10"),
        cases(2, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "scasd", "sub rsi, r10", "sub rdi, r10"),
        cases(4, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep scasd", "sub rsi, r10", "sub rdi, r10"),
        cases(4, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "repne scasd", "sub rsi, r10", "sub rdi, r10"),
        cases(4, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "scasq", "sub rsi, r10", "sub rdi, r10"),
        cases(8, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep scasq", "sub rsi, r10", "sub rdi, r10"),
        cases(8, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "repne scasq", "sub rsi, r10", "sub rdi, r10"),
        cases(8, true),
        FLAGS,
    );
}

#[test]
fn lods_matches_the_host() {
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "lodsb", "sub rsi, r10", "sub rdi, r10"),
        cases(1, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep lodsb", "sub rsi, r10", "sub rdi, r10"),
        cases(1, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "lodsw", "sub rsi, r10", "sub rdi, r10"),
        cases(2, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep lodsw", "sub rsi, r10", "sub rdi, r10"),
        cases(2, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "lodsd", "sub rsi, r10", "sub rdi, r10"),
        cases(4, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep lodsd", "sub rsi, r10", "sub rdi, r10"),
        cases(4, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "lodsq", "sub rsi, r10", "sub rdi, r10"),
        cases(8, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep lodsq", "sub rsi, r10", "sub rdi, r10"),
        cases(8, true),
        FLAGS,
    );
}

#[test]
fn stos_matches_the_host() {
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "stosb", "sub rsi, r10", "sub rdi, r10"),
        cases(1, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep stosb", "sub rsi, r10", "sub rdi, r10"),
        cases(1, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "stosw", "sub rsi, r10", "sub rdi, r10"),
        cases(2, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep stosw", "sub rsi, r10", "sub rdi, r10"),
        cases(2, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "stosd", "sub rsi, r10", "sub rdi, r10"),
        cases(4, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep stosd", "sub rsi, r10", "sub rdi, r10"),
        cases(4, true),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "stosq", "sub rsi, r10", "sub rdi, r10"),
        cases(8, false),
        FLAGS,
    );
    check(
        host!("lea rsi, [r10 + rsi]", "lea rdi, [r10 + rdi]", "rep stosq", "sub rsi, r10", "sub rdi, r10"),
        cases(8, true),
        FLAGS,
    );
}

const RW: u32 = PROT_READ | PROT_WRITE;

#[test]
fn a_fault_in_the_middle_of_rep_movsb_keeps_the_progress() {
    // 0x10000 and 0x11000 are writable, 0x12000 is not mapped: copying 0x30 bytes to 0x11ff0
    // faults after 0x10 bytes with a #PF (W=1, U=1, not present) at 0x12000.
    for code in [&[0xf3, 0xa4][..], &[0xf3, 0x48, 0xa5]] {
        let mut cpu = paged_cpu(&[(0x10000, RW), (0x11000, RW)]);
        let size = if code.len() == 2 { 1 } else { 8 };
        cpu.state.gpr[6] = 0x10000;
        cpu.state.gpr[7] = 0x11ff0;
        cpu.state.gpr[1] = 0x30 / size;
        for i in 0..0x30 {
            cpu.write::<W8>(0x10000 + i, i + 1).unwrap();
        }
        let flags = cpu.state.rflags();
        let Err(Stop::Fault(f)) = run1(&mut cpu, code) else { panic!("no fault") };
        assert_eq!(f.vector, vector::PF);
        assert_eq!(f.error_code, pf_error::WRITE | pf_error::USER);
        assert_eq!(cpu.fault_addr, 0x12000);
        assert_eq!(cpu.state.gpr[6], 0x10010);
        assert_eq!(cpu.state.gpr[7], 0x12000);
        assert_eq!(cpu.state.gpr[1], 0x20 / size);
        assert_eq!(cpu.state.rflags(), flags);
        for i in 0..0x10 {
            assert_eq!(cpu.read::<W8>(0x11ff0 + i).unwrap(), i + 1);
        }
    }
}

#[test]
fn a_read_only_destination_faults_with_w1_before_anything_changes() {
    let mut cpu = paged_cpu(&[(0x10000, RW), (0x11000, PROT_READ)]);
    cpu.state.gpr[7] = 0x11000;
    cpu.state.gpr[1] = 100;
    cpu.state.gpr[0] = 0x55;
    let Err(Stop::Fault(f)) = run1(&mut cpu, &[0xf3, 0xaa]) else { panic!("no fault") }; // rep stosb
    assert_eq!(f.error_code, pf_error::PRESENT | pf_error::WRITE | pf_error::USER);
    assert_eq!((cpu.state.gpr[7], cpu.state.gpr[1]), (0x11000, 100));
    assert_eq!(cpu.read::<W8>(0x11000).unwrap(), 0);
}

#[test]
fn the_page_run_fast_path_equals_the_element_loop() {
    // Large copies and fills across several pages, at odd alignments, compared with the
    // same instructions done one element at a time (no REP, looped here).
    let pages: Vec<(u64, u32)> = (0..12).map(|i| (0x40000 + i * 0x1000, RW)).collect();
    for (code, one, size) in [
        (&[0xf3, 0xa4][..], &[0xa4][..], 1u64),
        (&[0xf3, 0x48, 0xa5], &[0x48, 0xa5], 8),
        (&[0xf3, 0xaa], &[0xaa], 1),
        (&[0xf3, 0x48, 0xab], &[0x48, 0xab], 8),
        (&[0xf3, 0x66, 0xa5], &[0x66, 0xa5], 2),
    ] {
        for (src, dst, n) in [
            (0x40003u64, 0x45801u64, 9000u64),
            (0x40000, 0x46000, 4096),
            (0x45000, 0x45001, 3000),
            (0x45001, 0x45000, 3000),
        ] {
            let count = n / size;
            let mut fast = paged_cpu(&pages);
            let mut slow = paged_cpu(&pages);
            for cpu in [&mut fast, &mut slow] {
                for i in 0..0x6000u64 {
                    cpu.write::<W8>(0x40000 + i, (i * 7 + i / 251) & 0xff).unwrap();
                }
                cpu.state.gpr[0] = 0x1122_3344_5566_7788;
                cpu.state.gpr[6] = src;
                cpu.state.gpr[7] = dst;
                cpu.state.gpr[1] = count;
            }
            run1(&mut fast, code).unwrap();
            for _ in 0..count {
                run1(&mut slow, one).unwrap();
            }
            slow.state.gpr[1] = 0;
            assert_eq!(fast.state.gpr, slow.state.gpr, "{code:x?} {src:x} {dst:x}");
            for i in (0..0x6000u64).step_by(1) {
                assert_eq!(
                    fast.read::<W8>(0x40000 + i).unwrap(),
                    slow.read::<W8>(0x40000 + i).unwrap(),
                    "{code:x?} byte {i:x}"
                );
            }
        }
    }
}

#[test]
fn a_rep_store_over_code_is_seen_by_the_smc_check() {
    let mut cpu = paged_cpu(&[(0x10000, RW), (0x11000, RW)]);
    let pa = cpu.translate_slow(0x11000, crate::mmu::Access::Read).unwrap() & !0xfff;
    cpu.softmmu.mark_code_page(pa);
    cpu.state.gpr[7] = 0x10800;
    cpu.state.gpr[1] = 0x1000;
    run1(&mut cpu, &[0xf3, 0xaa]).unwrap();
    assert!(cpu.softmmu.stop_block());
    let mut modified = Vec::new();
    cpu.softmmu.drain_modified_code(|page| modified.push(page));
    assert_eq!(modified, vec![pa]);
}

#[test]
fn address_size_32_uses_esi_edi_ecx() {
    // 67 F3 A4: rep movsb with 32-bit addressing: ESI/EDI/ECX are used and written as 32-bit
    // registers (bits 63:32 cleared), SDM Vol. 1, 3.3.7.
    let mut g = Guest::new();
    let r = Regs {
        rsi: 0xffff_0000_0000_8020,
        rdi: 0x1_0000_8028,
        rcx: 0x5_0000_0004,
        mem: [0, 0, 0, 0, 0x0403_0201, 0, 0, 0],
        ..Default::default()
    };
    let (res, out) = g.run(&[0x67, 0xf3, 0xa4], &r);
    assert!(res.is_ok());
    assert_eq!((out.rsi, out.rdi, out.rcx), (0x8024, 0x802c, 0));
    assert_eq!(out.mem[5], 0x0403_0201);
}

#[test]
fn a_long_rep_yields_at_the_instruction_with_its_progress() {
    // rep lodsb over more than MAX_ELEMENTS bytes, in a RAM big enough to hold them.
    let mut g = Guest::new();
    g.cpu.ram = GuestRam::new(MAX_ELEMENTS + 0x1000).unwrap();
    g.load(&Regs { rcx: MAX_ELEMENTS + 10, ..Default::default() });
    let insn = Decoder::with_ip(64, &[0xf3, 0xac], 0x4000, DecoderOptions::NONE).decode(); // rep lodsb
    let e = build_instr(&insn, 64);
    let res = (e.exec)(&mut g.cpu, &e);
    assert_eq!(res, Err(Stop::Yield));
    assert_eq!(g.cpu.state.rip, 0x4000);
    assert_eq!(g.cpu.state.gpr[1], 10);
    assert_eq!(g.cpu.state.gpr[6], MAX_ELEMENTS);
}

#[test]
fn index_registers_at_the_top_of_the_address_space_do_not_panic() {
    // RDI/RSI near 2^64: the fast path must decline without overflowing; the element path
    // raises the #PF of the unmapped top page.
    for (rsi, rdi) in [(0x10000u64, u64::MAX - 3), (u64::MAX - 1, 0x10000)] {
        let mut cpu = paged_cpu(&[(0x10000, RW)]);
        cpu.state.gpr[6] = rsi;
        cpu.state.gpr[7] = rdi;
        cpu.state.gpr[1] = 100;
        let Err(Stop::Fault(f)) = run1(&mut cpu, &[0xf3, 0xa4]) else { panic!("no fault") }; // rep movsb
        assert_eq!(f.vector, vector::PF);
        assert_eq!(cpu.state.gpr[1], 100);
    }
}
