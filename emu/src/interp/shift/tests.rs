//! Host-differential tests for the shifts and rotates: every form, width and count source over
//! operand values and counts 0, 1, width-1, width, width+1, 31, 32, 33, 63, 64, 65 and beyond.

use super::super::hosttest::{check, host, reference_host, values, Regs, FLAGS, FLAG_INPUTS};

/// Operand values of `bits` in RAX (and in memory) times counts in CL, both flag inputs.
fn cases(bits: u32) -> Vec<Regs> {
    let counts = [0u64, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 0xff, 0x100 + 1, 0x1e0];
    let mut out = Vec::new();
    for &a in &values(bits, 12) {
        for &c in &counts {
            for f in FLAG_INPUTS {
                let junk = 0x5a5a_5a5a_5a5a_5a5a & !(u64::MAX >> (64 - bits));
                out.push(Regs { rax: a | junk, rcx: c, rdx: !a, flags: f, mem: [a; 8], ..Default::default() });
            }
        }
    }
    out
}

#[test]
fn shl_matches_the_host() {
    check(host!("shl al, cl"), cases(8), FLAGS);
    check(host!("shl al, 1"), cases(8), FLAGS);
    check(host!("shl al, 0"), cases(8), FLAGS);
    check(host!("shl al, 3"), cases(8), FLAGS);
    check(host!("shl al, 7"), cases(8), FLAGS);
    check(host!("shl al, 8"), cases(8), FLAGS);
    check(host!("shl al, 9"), cases(8), FLAGS);
    check(host!("shl al, 31"), cases(8), FLAGS);
    check(host!("shl byte ptr [r10], cl"), cases(8), FLAGS);
    check(host!("shl byte ptr [r10 - 1], 1"), cases(8), FLAGS);
    check(host!("shl byte ptr [r10 + 3], 7"), cases(8), FLAGS);
    check(host!("shl ax, cl"), cases(16), FLAGS);
    check(host!("shl ax, 1"), cases(16), FLAGS);
    check(host!("shl ax, 0"), cases(16), FLAGS);
    check(host!("shl ax, 3"), cases(16), FLAGS);
    check(host!("shl ax, 15"), cases(16), FLAGS);
    check(host!("shl ax, 16"), cases(16), FLAGS);
    check(host!("shl ax, 17"), cases(16), FLAGS);
    check(host!("shl ax, 31"), cases(16), FLAGS);
    check(host!("shl word ptr [r10], cl"), cases(16), FLAGS);
    check(host!("shl word ptr [r10 - 1], 1"), cases(16), FLAGS);
    check(host!("shl word ptr [r10 + 3], 7"), cases(16), FLAGS);
    check(host!("shl eax, cl"), cases(32), FLAGS);
    check(host!("shl eax, 1"), cases(32), FLAGS);
    check(host!("shl eax, 0"), cases(32), FLAGS);
    check(host!("shl eax, 3"), cases(32), FLAGS);
    check(host!("shl eax, 31"), cases(32), FLAGS);
    check(host!("shl eax, 32"), cases(32), FLAGS);
    check(host!("shl eax, 33"), cases(32), FLAGS);
    check(host!("shl eax, 31"), cases(32), FLAGS);
    check(host!("shl dword ptr [r10], cl"), cases(32), FLAGS);
    check(host!("shl dword ptr [r10 - 1], 1"), cases(32), FLAGS);
    check(host!("shl dword ptr [r10 + 3], 7"), cases(32), FLAGS);
    check(host!("shl rax, cl"), cases(64), FLAGS);
    check(host!("shl rax, 1"), cases(64), FLAGS);
    check(host!("shl rax, 0"), cases(64), FLAGS);
    check(host!("shl rax, 3"), cases(64), FLAGS);
    check(host!("shl rax, 63"), cases(64), FLAGS);
    check(host!("shl rax, 64"), cases(64), FLAGS);
    check(host!("shl rax, 65"), cases(64), FLAGS);
    check(host!("shl rax, 31"), cases(64), FLAGS);
    check(host!("shl qword ptr [r10], cl"), cases(64), FLAGS);
    check(host!("shl qword ptr [r10 - 1], 1"), cases(64), FLAGS);
    check(host!("shl qword ptr [r10 + 3], 7"), cases(64), FLAGS);
}

#[test]
fn sal_matches_the_host() {
    check(host!("sal al, cl"), cases(8), FLAGS);
    check(host!("sal al, 1"), cases(8), FLAGS);
    check(host!("sal al, 0"), cases(8), FLAGS);
    check(host!("sal al, 3"), cases(8), FLAGS);
    check(host!("sal al, 7"), cases(8), FLAGS);
    check(host!("sal al, 8"), cases(8), FLAGS);
    check(host!("sal al, 9"), cases(8), FLAGS);
    check(host!("sal al, 31"), cases(8), FLAGS);
    check(host!("sal byte ptr [r10], cl"), cases(8), FLAGS);
    check(host!("sal byte ptr [r10 - 1], 1"), cases(8), FLAGS);
    check(host!("sal byte ptr [r10 + 3], 7"), cases(8), FLAGS);
    check(host!("sal ax, cl"), cases(16), FLAGS);
    check(host!("sal ax, 1"), cases(16), FLAGS);
    check(host!("sal ax, 0"), cases(16), FLAGS);
    check(host!("sal ax, 3"), cases(16), FLAGS);
    check(host!("sal ax, 15"), cases(16), FLAGS);
    check(host!("sal ax, 16"), cases(16), FLAGS);
    check(host!("sal ax, 17"), cases(16), FLAGS);
    check(host!("sal ax, 31"), cases(16), FLAGS);
    check(host!("sal word ptr [r10], cl"), cases(16), FLAGS);
    check(host!("sal word ptr [r10 - 1], 1"), cases(16), FLAGS);
    check(host!("sal word ptr [r10 + 3], 7"), cases(16), FLAGS);
    check(host!("sal eax, cl"), cases(32), FLAGS);
    check(host!("sal eax, 1"), cases(32), FLAGS);
    check(host!("sal eax, 0"), cases(32), FLAGS);
    check(host!("sal eax, 3"), cases(32), FLAGS);
    check(host!("sal eax, 31"), cases(32), FLAGS);
    check(host!("sal eax, 32"), cases(32), FLAGS);
    check(host!("sal eax, 33"), cases(32), FLAGS);
    check(host!("sal eax, 31"), cases(32), FLAGS);
    check(host!("sal dword ptr [r10], cl"), cases(32), FLAGS);
    check(host!("sal dword ptr [r10 - 1], 1"), cases(32), FLAGS);
    check(host!("sal dword ptr [r10 + 3], 7"), cases(32), FLAGS);
    check(host!("sal rax, cl"), cases(64), FLAGS);
    check(host!("sal rax, 1"), cases(64), FLAGS);
    check(host!("sal rax, 0"), cases(64), FLAGS);
    check(host!("sal rax, 3"), cases(64), FLAGS);
    check(host!("sal rax, 63"), cases(64), FLAGS);
    check(host!("sal rax, 64"), cases(64), FLAGS);
    check(host!("sal rax, 65"), cases(64), FLAGS);
    check(host!("sal rax, 31"), cases(64), FLAGS);
    check(host!("sal qword ptr [r10], cl"), cases(64), FLAGS);
    check(host!("sal qword ptr [r10 - 1], 1"), cases(64), FLAGS);
    check(host!("sal qword ptr [r10 + 3], 7"), cases(64), FLAGS);
}

#[test]
fn shr_matches_the_host() {
    check(host!("shr al, cl"), cases(8), FLAGS);
    check(host!("shr al, 1"), cases(8), FLAGS);
    check(host!("shr al, 0"), cases(8), FLAGS);
    check(host!("shr al, 3"), cases(8), FLAGS);
    check(host!("shr al, 7"), cases(8), FLAGS);
    check(host!("shr al, 8"), cases(8), FLAGS);
    check(host!("shr al, 9"), cases(8), FLAGS);
    check(host!("shr al, 31"), cases(8), FLAGS);
    check(host!("shr byte ptr [r10], cl"), cases(8), FLAGS);
    check(host!("shr byte ptr [r10 - 1], 1"), cases(8), FLAGS);
    check(host!("shr byte ptr [r10 + 3], 7"), cases(8), FLAGS);
    check(host!("shr ax, cl"), cases(16), FLAGS);
    check(host!("shr ax, 1"), cases(16), FLAGS);
    check(host!("shr ax, 0"), cases(16), FLAGS);
    check(host!("shr ax, 3"), cases(16), FLAGS);
    check(host!("shr ax, 15"), cases(16), FLAGS);
    check(host!("shr ax, 16"), cases(16), FLAGS);
    check(host!("shr ax, 17"), cases(16), FLAGS);
    check(host!("shr ax, 31"), cases(16), FLAGS);
    check(host!("shr word ptr [r10], cl"), cases(16), FLAGS);
    check(host!("shr word ptr [r10 - 1], 1"), cases(16), FLAGS);
    check(host!("shr word ptr [r10 + 3], 7"), cases(16), FLAGS);
    check(host!("shr eax, cl"), cases(32), FLAGS);
    check(host!("shr eax, 1"), cases(32), FLAGS);
    check(host!("shr eax, 0"), cases(32), FLAGS);
    check(host!("shr eax, 3"), cases(32), FLAGS);
    check(host!("shr eax, 31"), cases(32), FLAGS);
    check(host!("shr eax, 32"), cases(32), FLAGS);
    check(host!("shr eax, 33"), cases(32), FLAGS);
    check(host!("shr eax, 31"), cases(32), FLAGS);
    check(host!("shr dword ptr [r10], cl"), cases(32), FLAGS);
    check(host!("shr dword ptr [r10 - 1], 1"), cases(32), FLAGS);
    check(host!("shr dword ptr [r10 + 3], 7"), cases(32), FLAGS);
    check(host!("shr rax, cl"), cases(64), FLAGS);
    check(host!("shr rax, 1"), cases(64), FLAGS);
    check(host!("shr rax, 0"), cases(64), FLAGS);
    check(host!("shr rax, 3"), cases(64), FLAGS);
    check(host!("shr rax, 63"), cases(64), FLAGS);
    check(host!("shr rax, 64"), cases(64), FLAGS);
    check(host!("shr rax, 65"), cases(64), FLAGS);
    check(host!("shr rax, 31"), cases(64), FLAGS);
    check(host!("shr qword ptr [r10], cl"), cases(64), FLAGS);
    check(host!("shr qword ptr [r10 - 1], 1"), cases(64), FLAGS);
    check(host!("shr qword ptr [r10 + 3], 7"), cases(64), FLAGS);
}

#[test]
fn sar_matches_the_host() {
    check(host!("sar al, cl"), cases(8), FLAGS);
    check(host!("sar al, 1"), cases(8), FLAGS);
    check(host!("sar al, 0"), cases(8), FLAGS);
    check(host!("sar al, 3"), cases(8), FLAGS);
    check(host!("sar al, 7"), cases(8), FLAGS);
    check(host!("sar al, 8"), cases(8), FLAGS);
    check(host!("sar al, 9"), cases(8), FLAGS);
    check(host!("sar al, 31"), cases(8), FLAGS);
    check(host!("sar byte ptr [r10], cl"), cases(8), FLAGS);
    check(host!("sar byte ptr [r10 - 1], 1"), cases(8), FLAGS);
    check(host!("sar byte ptr [r10 + 3], 7"), cases(8), FLAGS);
    check(host!("sar ax, cl"), cases(16), FLAGS);
    check(host!("sar ax, 1"), cases(16), FLAGS);
    check(host!("sar ax, 0"), cases(16), FLAGS);
    check(host!("sar ax, 3"), cases(16), FLAGS);
    check(host!("sar ax, 15"), cases(16), FLAGS);
    check(host!("sar ax, 16"), cases(16), FLAGS);
    check(host!("sar ax, 17"), cases(16), FLAGS);
    check(host!("sar ax, 31"), cases(16), FLAGS);
    check(host!("sar word ptr [r10], cl"), cases(16), FLAGS);
    check(host!("sar word ptr [r10 - 1], 1"), cases(16), FLAGS);
    check(host!("sar word ptr [r10 + 3], 7"), cases(16), FLAGS);
    check(host!("sar eax, cl"), cases(32), FLAGS);
    check(host!("sar eax, 1"), cases(32), FLAGS);
    check(host!("sar eax, 0"), cases(32), FLAGS);
    check(host!("sar eax, 3"), cases(32), FLAGS);
    check(host!("sar eax, 31"), cases(32), FLAGS);
    check(host!("sar eax, 32"), cases(32), FLAGS);
    check(host!("sar eax, 33"), cases(32), FLAGS);
    check(host!("sar eax, 31"), cases(32), FLAGS);
    check(host!("sar dword ptr [r10], cl"), cases(32), FLAGS);
    check(host!("sar dword ptr [r10 - 1], 1"), cases(32), FLAGS);
    check(host!("sar dword ptr [r10 + 3], 7"), cases(32), FLAGS);
    check(host!("sar rax, cl"), cases(64), FLAGS);
    check(host!("sar rax, 1"), cases(64), FLAGS);
    check(host!("sar rax, 0"), cases(64), FLAGS);
    check(host!("sar rax, 3"), cases(64), FLAGS);
    check(host!("sar rax, 63"), cases(64), FLAGS);
    check(host!("sar rax, 64"), cases(64), FLAGS);
    check(host!("sar rax, 65"), cases(64), FLAGS);
    check(host!("sar rax, 31"), cases(64), FLAGS);
    check(host!("sar qword ptr [r10], cl"), cases(64), FLAGS);
    check(host!("sar qword ptr [r10 - 1], 1"), cases(64), FLAGS);
    check(host!("sar qword ptr [r10 + 3], 7"), cases(64), FLAGS);
}

#[test]
fn rol_matches_the_host() {
    check(host!("rol al, cl"), cases(8), FLAGS);
    check(host!("rol al, 1"), cases(8), FLAGS);
    check(host!("rol al, 0"), cases(8), FLAGS);
    check(host!("rol al, 3"), cases(8), FLAGS);
    check(host!("rol al, 7"), cases(8), FLAGS);
    check(host!("rol al, 8"), cases(8), FLAGS);
    check(host!("rol al, 9"), cases(8), FLAGS);
    check(host!("rol al, 31"), cases(8), FLAGS);
    check(host!("rol byte ptr [r10], cl"), cases(8), FLAGS);
    check(host!("rol byte ptr [r10 - 1], 1"), cases(8), FLAGS);
    check(host!("rol byte ptr [r10 + 3], 7"), cases(8), FLAGS);
    check(host!("rol ax, cl"), cases(16), FLAGS);
    check(host!("rol ax, 1"), cases(16), FLAGS);
    check(host!("rol ax, 0"), cases(16), FLAGS);
    check(host!("rol ax, 3"), cases(16), FLAGS);
    check(host!("rol ax, 15"), cases(16), FLAGS);
    check(host!("rol ax, 16"), cases(16), FLAGS);
    check(host!("rol ax, 17"), cases(16), FLAGS);
    check(host!("rol ax, 31"), cases(16), FLAGS);
    check(host!("rol word ptr [r10], cl"), cases(16), FLAGS);
    check(host!("rol word ptr [r10 - 1], 1"), cases(16), FLAGS);
    check(host!("rol word ptr [r10 + 3], 7"), cases(16), FLAGS);
    check(host!("rol eax, cl"), cases(32), FLAGS);
    check(host!("rol eax, 1"), cases(32), FLAGS);
    check(host!("rol eax, 0"), cases(32), FLAGS);
    check(host!("rol eax, 3"), cases(32), FLAGS);
    check(host!("rol eax, 31"), cases(32), FLAGS);
    check(host!("rol eax, 32"), cases(32), FLAGS);
    check(host!("rol eax, 33"), cases(32), FLAGS);
    check(host!("rol eax, 31"), cases(32), FLAGS);
    check(host!("rol dword ptr [r10], cl"), cases(32), FLAGS);
    check(host!("rol dword ptr [r10 - 1], 1"), cases(32), FLAGS);
    check(host!("rol dword ptr [r10 + 3], 7"), cases(32), FLAGS);
    check(host!("rol rax, cl"), cases(64), FLAGS);
    check(host!("rol rax, 1"), cases(64), FLAGS);
    check(host!("rol rax, 0"), cases(64), FLAGS);
    check(host!("rol rax, 3"), cases(64), FLAGS);
    check(host!("rol rax, 63"), cases(64), FLAGS);
    check(host!("rol rax, 64"), cases(64), FLAGS);
    check(host!("rol rax, 65"), cases(64), FLAGS);
    check(host!("rol rax, 31"), cases(64), FLAGS);
    check(host!("rol qword ptr [r10], cl"), cases(64), FLAGS);
    check(host!("rol qword ptr [r10 - 1], 1"), cases(64), FLAGS);
    check(host!("rol qword ptr [r10 + 3], 7"), cases(64), FLAGS);
}

#[test]
fn ror_matches_the_host() {
    check(host!("ror al, cl"), cases(8), FLAGS);
    check(host!("ror al, 1"), cases(8), FLAGS);
    check(host!("ror al, 0"), cases(8), FLAGS);
    check(host!("ror al, 3"), cases(8), FLAGS);
    check(host!("ror al, 7"), cases(8), FLAGS);
    check(host!("ror al, 8"), cases(8), FLAGS);
    check(host!("ror al, 9"), cases(8), FLAGS);
    check(host!("ror al, 31"), cases(8), FLAGS);
    check(host!("ror byte ptr [r10], cl"), cases(8), FLAGS);
    check(host!("ror byte ptr [r10 - 1], 1"), cases(8), FLAGS);
    check(host!("ror byte ptr [r10 + 3], 7"), cases(8), FLAGS);
    check(host!("ror ax, cl"), cases(16), FLAGS);
    check(host!("ror ax, 1"), cases(16), FLAGS);
    check(host!("ror ax, 0"), cases(16), FLAGS);
    check(host!("ror ax, 3"), cases(16), FLAGS);
    check(host!("ror ax, 15"), cases(16), FLAGS);
    check(host!("ror ax, 16"), cases(16), FLAGS);
    check(host!("ror ax, 17"), cases(16), FLAGS);
    check(host!("ror ax, 31"), cases(16), FLAGS);
    check(host!("ror word ptr [r10], cl"), cases(16), FLAGS);
    check(host!("ror word ptr [r10 - 1], 1"), cases(16), FLAGS);
    check(host!("ror word ptr [r10 + 3], 7"), cases(16), FLAGS);
    check(host!("ror eax, cl"), cases(32), FLAGS);
    check(host!("ror eax, 1"), cases(32), FLAGS);
    check(host!("ror eax, 0"), cases(32), FLAGS);
    check(host!("ror eax, 3"), cases(32), FLAGS);
    check(host!("ror eax, 31"), cases(32), FLAGS);
    check(host!("ror eax, 32"), cases(32), FLAGS);
    check(host!("ror eax, 33"), cases(32), FLAGS);
    check(host!("ror eax, 31"), cases(32), FLAGS);
    check(host!("ror dword ptr [r10], cl"), cases(32), FLAGS);
    check(host!("ror dword ptr [r10 - 1], 1"), cases(32), FLAGS);
    check(host!("ror dword ptr [r10 + 3], 7"), cases(32), FLAGS);
    check(host!("ror rax, cl"), cases(64), FLAGS);
    check(host!("ror rax, 1"), cases(64), FLAGS);
    check(host!("ror rax, 0"), cases(64), FLAGS);
    check(host!("ror rax, 3"), cases(64), FLAGS);
    check(host!("ror rax, 63"), cases(64), FLAGS);
    check(host!("ror rax, 64"), cases(64), FLAGS);
    check(host!("ror rax, 65"), cases(64), FLAGS);
    check(host!("ror rax, 31"), cases(64), FLAGS);
    check(host!("ror qword ptr [r10], cl"), cases(64), FLAGS);
    check(host!("ror qword ptr [r10 - 1], 1"), cases(64), FLAGS);
    check(host!("ror qword ptr [r10 + 3], 7"), cases(64), FLAGS);
}

#[test]
fn rcl_matches_the_host() {
    check(host!("rcl al, cl"), cases(8), FLAGS);
    check(host!("rcl al, 1"), cases(8), FLAGS);
    check(host!("rcl al, 0"), cases(8), FLAGS);
    check(host!("rcl al, 3"), cases(8), FLAGS);
    check(host!("rcl al, 7"), cases(8), FLAGS);
    check(host!("rcl al, 8"), cases(8), FLAGS);
    check(host!("rcl al, 9"), cases(8), FLAGS);
    check(host!("rcl al, 31"), cases(8), FLAGS);
    check(host!("rcl byte ptr [r10], cl"), cases(8), FLAGS);
    check(host!("rcl byte ptr [r10 - 1], 1"), cases(8), FLAGS);
    check(host!("rcl byte ptr [r10 + 3], 7"), cases(8), FLAGS);
    check(host!("rcl ax, cl"), cases(16), FLAGS);
    check(host!("rcl ax, 1"), cases(16), FLAGS);
    check(host!("rcl ax, 0"), cases(16), FLAGS);
    check(host!("rcl ax, 3"), cases(16), FLAGS);
    check(host!("rcl ax, 15"), cases(16), FLAGS);
    check(host!("rcl ax, 16"), cases(16), FLAGS);
    check(host!("rcl ax, 17"), cases(16), FLAGS);
    check(host!("rcl ax, 31"), cases(16), FLAGS);
    check(host!("rcl word ptr [r10], cl"), cases(16), FLAGS);
    check(host!("rcl word ptr [r10 - 1], 1"), cases(16), FLAGS);
    check(host!("rcl word ptr [r10 + 3], 7"), cases(16), FLAGS);
    check(host!("rcl eax, cl"), cases(32), FLAGS);
    check(host!("rcl eax, 1"), cases(32), FLAGS);
    check(host!("rcl eax, 0"), cases(32), FLAGS);
    check(host!("rcl eax, 3"), cases(32), FLAGS);
    check(host!("rcl eax, 31"), cases(32), FLAGS);
    check(host!("rcl eax, 32"), cases(32), FLAGS);
    check(host!("rcl eax, 33"), cases(32), FLAGS);
    check(host!("rcl eax, 31"), cases(32), FLAGS);
    check(host!("rcl dword ptr [r10], cl"), cases(32), FLAGS);
    check(host!("rcl dword ptr [r10 - 1], 1"), cases(32), FLAGS);
    check(host!("rcl dword ptr [r10 + 3], 7"), cases(32), FLAGS);
    check(host!("rcl rax, cl"), cases(64), FLAGS);
    check(host!("rcl rax, 1"), cases(64), FLAGS);
    check(host!("rcl rax, 0"), cases(64), FLAGS);
    check(host!("rcl rax, 3"), cases(64), FLAGS);
    check(host!("rcl rax, 63"), cases(64), FLAGS);
    check(host!("rcl rax, 64"), cases(64), FLAGS);
    check(host!("rcl rax, 65"), cases(64), FLAGS);
    check(host!("rcl rax, 31"), cases(64), FLAGS);
    check(host!("rcl qword ptr [r10], cl"), cases(64), FLAGS);
    check(host!("rcl qword ptr [r10 - 1], 1"), cases(64), FLAGS);
    check(host!("rcl qword ptr [r10 + 3], 7"), cases(64), FLAGS);
}

#[test]
fn rcr_matches_the_host() {
    check(host!("rcr al, cl"), cases(8), FLAGS);
    check(host!("rcr al, 1"), cases(8), FLAGS);
    check(host!("rcr al, 0"), cases(8), FLAGS);
    check(host!("rcr al, 3"), cases(8), FLAGS);
    check(host!("rcr al, 7"), cases(8), FLAGS);
    check(host!("rcr al, 8"), cases(8), FLAGS);
    check(host!("rcr al, 9"), cases(8), FLAGS);
    check(host!("rcr al, 31"), cases(8), FLAGS);
    check(host!("rcr byte ptr [r10], cl"), cases(8), FLAGS);
    check(host!("rcr byte ptr [r10 - 1], 1"), cases(8), FLAGS);
    check(host!("rcr byte ptr [r10 + 3], 7"), cases(8), FLAGS);
    check(host!("rcr ax, cl"), cases(16), FLAGS);
    check(host!("rcr ax, 1"), cases(16), FLAGS);
    check(host!("rcr ax, 0"), cases(16), FLAGS);
    check(host!("rcr ax, 3"), cases(16), FLAGS);
    check(host!("rcr ax, 15"), cases(16), FLAGS);
    check(host!("rcr ax, 16"), cases(16), FLAGS);
    check(host!("rcr ax, 17"), cases(16), FLAGS);
    check(host!("rcr ax, 31"), cases(16), FLAGS);
    check(host!("rcr word ptr [r10], cl"), cases(16), FLAGS);
    check(host!("rcr word ptr [r10 - 1], 1"), cases(16), FLAGS);
    check(host!("rcr word ptr [r10 + 3], 7"), cases(16), FLAGS);
    check(host!("rcr eax, cl"), cases(32), FLAGS);
    check(host!("rcr eax, 1"), cases(32), FLAGS);
    check(host!("rcr eax, 0"), cases(32), FLAGS);
    check(host!("rcr eax, 3"), cases(32), FLAGS);
    check(host!("rcr eax, 31"), cases(32), FLAGS);
    check(host!("rcr eax, 32"), cases(32), FLAGS);
    check(host!("rcr eax, 33"), cases(32), FLAGS);
    check(host!("rcr eax, 31"), cases(32), FLAGS);
    check(host!("rcr dword ptr [r10], cl"), cases(32), FLAGS);
    check(host!("rcr dword ptr [r10 - 1], 1"), cases(32), FLAGS);
    check(host!("rcr dword ptr [r10 + 3], 7"), cases(32), FLAGS);
    check(host!("rcr rax, cl"), cases(64), FLAGS);
    check(host!("rcr rax, 1"), cases(64), FLAGS);
    check(host!("rcr rax, 0"), cases(64), FLAGS);
    check(host!("rcr rax, 3"), cases(64), FLAGS);
    check(host!("rcr rax, 63"), cases(64), FLAGS);
    check(host!("rcr rax, 64"), cases(64), FLAGS);
    check(host!("rcr rax, 65"), cases(64), FLAGS);
    check(host!("rcr rax, 31"), cases(64), FLAGS);
    check(host!("rcr qword ptr [r10], cl"), cases(64), FLAGS);
    check(host!("rcr qword ptr [r10 - 1], 1"), cases(64), FLAGS);
    check(host!("rcr qword ptr [r10 + 3], 7"), cases(64), FLAGS);
}

#[test]
fn shld_matches_the_host() {
    if reference_host() {
        check(host!("shld ax, dx, cl"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shld ax, dx, 1"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shld ax, dx, 0"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shld ax, dx, 15"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shld ax, dx, 16"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shld ax, dx, 20"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shld word ptr [r10], dx, cl"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shld word ptr [r10 + 2], dx, 5"), cases(16), FLAGS);
    }
    check(host!("shld eax, edx, cl"), cases(32), FLAGS);
    check(host!("shld eax, edx, 1"), cases(32), FLAGS);
    check(host!("shld eax, edx, 0"), cases(32), FLAGS);
    check(host!("shld eax, edx, 31"), cases(32), FLAGS);
    check(host!("shld eax, edx, 32"), cases(32), FLAGS);
    check(host!("shld eax, edx, 20"), cases(32), FLAGS);
    check(host!("shld dword ptr [r10], edx, cl"), cases(32), FLAGS);
    check(host!("shld dword ptr [r10 + 2], edx, 5"), cases(32), FLAGS);
    check(host!("shld rax, rdx, cl"), cases(64), FLAGS);
    check(host!("shld rax, rdx, 1"), cases(64), FLAGS);
    check(host!("shld rax, rdx, 0"), cases(64), FLAGS);
    check(host!("shld rax, rdx, 63"), cases(64), FLAGS);
    check(host!("shld rax, rdx, 64"), cases(64), FLAGS);
    check(host!("shld rax, rdx, 20"), cases(64), FLAGS);
    check(host!("shld qword ptr [r10], rdx, cl"), cases(64), FLAGS);
    check(host!("shld qword ptr [r10 + 2], rdx, 5"), cases(64), FLAGS);
}

#[test]
fn shrd_matches_the_host() {
    if reference_host() {
        check(host!("shrd ax, dx, cl"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shrd ax, dx, 1"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shrd ax, dx, 0"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shrd ax, dx, 15"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shrd ax, dx, 16"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shrd ax, dx, 20"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shrd word ptr [r10], dx, cl"), cases(16), FLAGS);
    }
    if reference_host() {
        check(host!("shrd word ptr [r10 + 2], dx, 5"), cases(16), FLAGS);
    }
    check(host!("shrd eax, edx, cl"), cases(32), FLAGS);
    check(host!("shrd eax, edx, 1"), cases(32), FLAGS);
    check(host!("shrd eax, edx, 0"), cases(32), FLAGS);
    check(host!("shrd eax, edx, 31"), cases(32), FLAGS);
    check(host!("shrd eax, edx, 32"), cases(32), FLAGS);
    check(host!("shrd eax, edx, 20"), cases(32), FLAGS);
    check(host!("shrd dword ptr [r10], edx, cl"), cases(32), FLAGS);
    check(host!("shrd dword ptr [r10 + 2], edx, 5"), cases(32), FLAGS);
    check(host!("shrd rax, rdx, cl"), cases(64), FLAGS);
    check(host!("shrd rax, rdx, 1"), cases(64), FLAGS);
    check(host!("shrd rax, rdx, 0"), cases(64), FLAGS);
    check(host!("shrd rax, rdx, 63"), cases(64), FLAGS);
    check(host!("shrd rax, rdx, 64"), cases(64), FLAGS);
    check(host!("shrd rax, rdx, 20"), cases(64), FLAGS);
    check(host!("shrd qword ptr [r10], rdx, cl"), cases(64), FLAGS);
    check(host!("shrd qword ptr [r10 + 2], rdx, 5"), cases(64), FLAGS);
}
