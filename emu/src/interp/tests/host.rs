//! The host CPU as the oracle for the interpreter's unit tests (x86-64 hosts only).
//!
//! `host!("insn", ...)` makes a closure that runs the instructions natively inside `asm!` on a
//! [`Regs`] record and returns the instructions' own machine code (read back from the test
//! binary between two labels). [`Guest`] decodes those same bytes with the real decoder and runs
//! them through the tier-0 handlers on the same record. So one string gives both sides and the
//! encodings can never disagree.
//!
//! Flags the SDM leaves undefined are compared only on the reference CPU, the Intel Cascade Lake
//! (family 6, model 85) these models were measured on: there the tests pin down what the
//! interpreter reproduces. On any other host they are masked per the handler table
//! (`decode::table::info`, iced-x86's facts corrected to the SDM), and tests of undefined
//! *results* are skipped (`reference_host()`).
//! Which CPU that was is printed once per test binary (`crate::hostcpu::announce`) and named in
//! every failure.
//!
//! Registers carried: RAX, RCX, RDX, RSI, RDI, R8, R9, RFLAGS (the six arithmetic flags and DF).
//! R10 points at `mem[4]` of a 64-byte buffer on both sides (host buffer / guest page), so memory
//! forms may address `[r10 - 32 .. r10 + 32)`. RBX and RBP cannot be named in `asm!`.

use crate::cpu::Cpu;
use crate::decode::build_instr;
use crate::exception::{Fault, Stop};
use crate::flags::{W64, W8};
use crate::mem::GuestRam;
use crate::state::{ctrl, rflags, Segment};
use crate::user::aspace::AddressSpace;
use crate::user::setup_long_mode_user;
use iced_x86::{Decoder, DecoderOptions};

/// Register and memory state the host and the guest run on. `mem` is 16-byte aligned (CMPXCHG16B).
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub r8: u64,
    pub r9: u64,
    pub flags: u64,
    pub mem: [u64; 8],
}

/// Flags the harness sets and compares: the arithmetic six and DF.
pub const FLAGS: u64 = rflags::ARITH | rflags::DF;

/// Guest physical = linear address of `Regs::mem` (paging off).
pub const GUEST_MEM: u64 = 0x8000;
/// Guest stack top.
pub const GUEST_STACK: u64 = 0x7000;
/// Guest address of the code (only matters for RIP-relative forms, which the tests avoid).
pub const GUEST_CODE: u64 = 0x4000;

/// Runs instructions on the host. Expands to `|r: &mut Regs| -> &'static [u8]`.
macro_rules! host {
    ($($insn:literal),+ $(,)?) => {
        |r: &mut $crate::interp::hosttest::Regs| -> &'static [u8] {
            let (s, e): (usize, usize);
            let m = r.mem.as_mut_ptr().wrapping_add(4);
            let mut f = (r.flags & $crate::interp::hosttest::FLAGS) | 0x202;
            // SAFETY: the instructions only touch the named registers, the flags and the 64-byte
            // buffer R10 points into (each test keeps its memory operands inside it); DF is
            // cleared again before leaving, as the Rust ABI requires. The code bytes between the
            // two labels are part of this function's text, which stays mapped and readable.
            unsafe {
                core::arch::asm!(
                    "lea {s}, [rip + 2f]",
                    "lea {e}, [rip + 3f]",
                    "push {f}",
                    "popfq",
                    "2:",
                    $($insn,)+
                    "3:",
                    "pushfq",
                    "pop {f}",
                    "cld",
                    s = out(reg) s,
                    e = out(reg) e,
                    f = inout(reg) f,
                    inout("rax") r.rax,
                    inout("rcx") r.rcx,
                    inout("rdx") r.rdx,
                    inout("rsi") r.rsi,
                    inout("rdi") r.rdi,
                    inout("r8") r.r8,
                    inout("r9") r.r9,
                    inout("r10") m => _,
                );
                r.flags = f;
                std::slice::from_raw_parts(s as *const u8, e - s)
            }
        }
    };
}
pub(crate) use host;

/// A CPU in 64-bit mode at CPL 3 with paging off (linear = physical) over 64 KiB of RAM.
pub struct Guest {
    pub cpu: Cpu,
}

impl Default for Guest {
    fn default() -> Self {
        Self::new()
    }
}

impl Guest {
    pub fn new() -> Self {
        Self::with_ram(0x10000)
    }

    /// As `new`, with `size` bytes of RAM (at least 64 KiB).
    pub fn with_ram(size: u64) -> Self {
        let mut cpu = Cpu::new(GuestRam::new(size).expect("test RAM"));
        let s = &mut cpu.state;
        s.cr0 = ctrl::CR0_PE | ctrl::CR0_ET | ctrl::CR0_NE;
        s.efer = ctrl::EFER_LME | ctrl::EFER_LMA;
        s.segs[1] = Segment::flat_code64(0x33, 3);
        // As Linux runs a 64-bit process: SS = 0x2b, DS = ES = FS = GS = 0.
        for i in [0, 3, 4, 5] {
            s.segs[i] = Segment::flat_data(0, 3);
        }
        s.segs[2] = Segment::flat_data(0x2b, 3);
        s.cpl = 3;
        // Linux's GDT (the one the user-mode runner gives a process), at the end of test RAM.
        const GDT_AT: u64 = 0xff00;
        for (i, d) in crate::user::aspace::GDT.iter().enumerate() {
            cpu.ram.write::<W64>(GDT_AT + 8 * i as u64, *d);
        }
        cpu.state.gdtr.base = GDT_AT;
        cpu.state.gdtr.limit = (crate::user::aspace::GDT.len() * 8 - 1) as u16;
        Guest { cpu }
    }

    /// Loads `r` into the CPU (R10 = the buffer, RSP = the stack).
    pub fn load(&mut self, r: &Regs) {
        let s = &mut self.cpu.state;
        s.gpr = [0; 16];
        s.gpr[0] = r.rax;
        s.gpr[1] = r.rcx;
        s.gpr[2] = r.rdx;
        s.gpr[4] = GUEST_STACK;
        s.gpr[6] = r.rsi;
        s.gpr[7] = r.rdi;
        s.gpr[8] = r.r8;
        s.gpr[9] = r.r9;
        s.gpr[10] = GUEST_MEM + 32;
        s.set_rflags((r.flags & FLAGS) | 0x202);
        for (i, v) in r.mem.iter().enumerate() {
            self.cpu.ram.write::<W64>(GUEST_MEM + 8 * i as u64, *v);
        }
    }

    /// The CPU state as a `Regs` record.
    pub fn save(&mut self) -> Regs {
        let s = &self.cpu.state;
        let mut r = Regs {
            rax: s.gpr[0],
            rcx: s.gpr[1],
            rdx: s.gpr[2],
            rsi: s.gpr[6],
            rdi: s.gpr[7],
            r8: s.gpr[8],
            r9: s.gpr[9],
            flags: s.rflags(),
            mem: [0; 8],
        };
        for (i, v) in r.mem.iter_mut().enumerate() {
            *v = self.cpu.ram.read::<W64>(GUEST_MEM + 8 * i as u64);
        }
        r
    }

    /// Runs `code` (placed at `GUEST_CODE`) one instruction at a time, following branches, until
    /// RIP leaves it or an instruction stops.
    pub fn exec(&mut self, code: &[u8]) -> Result<(), Stop> {
        self.cpu.state.rip = GUEST_CODE;
        let mut steps = 0;
        while let Some(off) = self.cpu.state.rip.checked_sub(GUEST_CODE).filter(|&o| o < code.len() as u64) {
            let insn = Decoder::with_ip(64, &code[off as usize..], self.cpu.state.rip, DecoderOptions::NONE).decode();
            let e = build_instr(&insn, 64);
            self.cpu.state.rip = e.next_rip; // branch handlers overwrite it
            (e.exec)(&mut self.cpu, &e)?;
            steps += 1;
            assert!(steps < 1_000_000, "guest code does not terminate");
        }
        Ok(())
    }

    /// Loads `r`, runs `code`, and returns the resulting state.
    pub fn run(&mut self, code: &[u8], r: &Regs) -> (Result<(), Stop>, Regs) {
        self.load(r);
        let res = self.exec(code);
        (res, self.save())
    }

    /// Runs `code` on `r` and returns the fault it raises (panics if it completes).
    pub fn fault(&mut self, code: &[u8], r: &Regs) -> Fault {
        match self.run(code, r).0 {
            Err(Stop::Fault(f)) => f,
            other => panic!("expected a fault, got {other:?}"),
        }
    }
}

/// Host-side set-up for port I/O tests: grants this thread access to `port` (ioperm(2)) and
/// maps 4 KiB of host memory at `at` (below 4 GiB, so 32-bit address-size string instructions
/// can reach it natively). `Err` says why the host refuses (no CAP_SYS_RAWIO, or a kernel built
/// without CONFIG_X86_IOPL_IOPERM, where ioperm is ENOSYS; or the address is taken).
#[cfg(target_os = "linux")]
pub fn host_port_and_low_page(port: u16, at: u64) -> Result<&'static mut [u8], String> {
    const SYS_MMAP: u64 = 9;
    const SYS_IOPERM: u64 = 173;
    const PROT_RW: u64 = 3;
    const MAP_PRIVATE_ANONYMOUS_FIXED_NOREPLACE: u64 = 0x02 | 0x20 | 0x10_0000;
    let syscall = |nr: u64, a: [u64; 6]| -> i64 {
        let ret: i64;
        // SAFETY: ioperm only changes this thread's I/O permission bitmap; mmap with
        // MAP_FIXED_NOREPLACE never replaces an existing mapping. Neither touches Rust-owned
        // memory; RCX and R11 are clobbered by SYSCALL.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") nr as i64 => ret,
                in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
                in("r10") a[3], in("r8") a[4], in("r9") a[5],
                lateout("rcx") _, lateout("r11") _,
                options(nostack),
            );
        }
        ret
    };
    let r = syscall(SYS_IOPERM, [port as u64, 1, 1, 0, 0, 0]);
    if r != 0 {
        return Err(format!("ioperm({port:#x}) failed with errno {}", -r));
    }
    let p = syscall(SYS_MMAP, [at, 4096, PROT_RW, MAP_PRIVATE_ANONYMOUS_FIXED_NOREPLACE, u64::MAX, 0]);
    if p as u64 != at {
        return Err(format!("mmap at {at:#x} failed ({p})"));
    }
    // SAFETY: the page was just mapped read-write at `at` for this process and is never
    // unmapped; the only reference to it is the one returned here.
    Ok(unsafe { std::slice::from_raw_parts_mut(at as *mut u8, 4096) })
}

/// True on the CPU whose undefined flags and results the interpreter reproduces.
pub fn reference_host() -> bool {
    let cpu = crate::hostcpu::announce();
    cpu.is_intel() && cpu.family == 6 && cpu.model == 85
}

/// True if the host CPU has `feature` (a `std::arch` feature name). Without it the instruction
/// would raise #UD natively, or run as another one (LZCNT as BSR, TZCNT as BSF: the F3 prefix
/// is ignored), so its tests skip, saying so on stderr.
pub fn host_has(feature: &str) -> bool {
    let has = match feature {
        "adx" => std::arch::is_x86_feature_detected!("adx"),
        "bmi1" => std::arch::is_x86_feature_detected!("bmi1"),
        "bmi2" => std::arch::is_x86_feature_detected!("bmi2"),
        "lzcnt" => std::arch::is_x86_feature_detected!("lzcnt"),
        "popcnt" => std::arch::is_x86_feature_detected!("popcnt"),
        "movbe" => std::arch::is_x86_feature_detected!("movbe"),
        _ => false,
    };
    if !has {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIP: the host CPU lacks {feature}; its host comparison is not run");
    }
    has
}

/// RFLAGS bits that some instruction of `code` leaves undefined (the handler table's facts,
/// with the instance's immediate count applied).
pub fn undefined_flags(code: &[u8]) -> u64 {
    let mut d = Decoder::with_ip(64, code, GUEST_CODE, DecoderOptions::NONE);
    let mut u = 0;
    while d.can_decode() {
        let i = d.decode();
        u |= crate::decode::table::info(i.code()).flags_for(i.immediate8()).undefined as u64;
    }
    u & rflags::ARITH
}

/// Flags a shift or rotate of `code` leaves undefined for its count, which iced-x86's per-form
/// list cannot know (SDM Vol. 2, SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR, SHLD/SHRD): OF unless the
/// masked count is 1 (a count of 0 changes no flag); CF of SHL/SHR when the count is at least
/// the operand size; all six for a 16-bit SHLD/SHRD past 16. `cl` is the count register's value
/// on entry. Intel and AMD CPUs differ in these (an AMD EPYC clears OF for RCL AL, 9, where the
/// reference Intel leaves it).
pub fn count_undefined_flags(code: &[u8], cl: u8) -> u64 {
    use iced_x86::{Mnemonic as M, OpKind};
    let mut d = Decoder::with_ip(64, code, GUEST_CODE, DecoderOptions::NONE);
    let mut u = 0;
    while d.can_decode() {
        let ins = d.decode();
        let m = ins.mnemonic();
        let double = matches!(m, M::Shld | M::Shrd);
        if !(double || matches!(m, M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror | M::Rcl | M::Rcr)) {
            continue;
        }
        let width = if ins.op0_kind() == OpKind::Register {
            ins.op0_register().size() as u32 * 8
        } else {
            ins.memory_size().size() as u32 * 8
        };
        let count = match ins.op_kind(if double { 2 } else { 1 }) {
            OpKind::Immediate8 => ins.immediate8() as u32,
            OpKind::Register => cl as u32,
            _ => 1,
        } & if width == 64 { 0x3f } else { 0x1f };
        if count > 1 {
            u |= rflags::OF;
        }
        if matches!(m, M::Shl | M::Sal | M::Shr) && count >= width {
            u |= rflags::CF;
        }
        if double && count > width {
            u |= rflags::ARITH;
        }
    }
    u
}

/// A user-mode CPU (CPL 3, 64-bit) on real page tables: `pages` lists (address, prot) to map.
pub fn paged_cpu(pages: &[(u64, u32)]) -> Cpu {
    let mut ram = GuestRam::new(1 << 20).unwrap();
    let mut aspace = AddressSpace::new(&mut ram);
    for &(va, prot) in pages {
        aspace.populate(&mut ram, va, prot).unwrap();
    }
    let mut cpu = Cpu::new(ram);
    setup_long_mode_user(&mut cpu, aspace.pml4);
    cpu
}

/// Decodes and runs the one instruction at the start of `code`.
pub fn run1(cpu: &mut Cpu, code: &[u8]) -> Result<(), Stop> {
    let insn = Decoder::with_ip(64, code, 0x1000, DecoderOptions::NONE).decode();
    let e = build_instr(&insn, 64);
    (e.exec)(cpu, &e)
}

/// Disassembly of `code` for failure messages.
pub fn disasm(code: &[u8]) -> String {
    let mut d = Decoder::with_ip(64, code, GUEST_CODE, DecoderOptions::NONE);
    let mut out = Vec::new();
    while d.can_decode() {
        out.push(format!("{}", d.decode()));
    }
    out.join("; ")
}

/// Runs every input on the host and on the guest and compares registers, memory and the flags
/// in `flag_mask` (undefined flags only on the reference host; see the module doc).
pub fn check<I: IntoIterator<Item = Regs>>(
    host: impl Fn(&mut Regs) -> &'static [u8],
    inputs: I,
    flag_mask: u64,
) -> usize {
    crate::hostcpu::announce();
    let mut g = Guest::new();
    let mut n = 0;
    let mut failures = Vec::new();
    for input in inputs {
        let mut h = input;
        let code = host(&mut h);
        let (res, out) = g.run(code, &input);
        n += 1;
        let mask = if reference_host() {
            flag_mask
        } else {
            flag_mask & !undefined_flags(code) & !count_undefined_flags(code, input.rcx as u8)
        };
        let mut want = h;
        let mut got = out;
        want.flags &= mask;
        got.flags &= mask;
        if res.is_err() || want != got {
            failures.push(format!(
                "{}\n  input {:x?}\n  host  {:x?}\n  guest {:x?} {:?}",
                disasm(code),
                input,
                want,
                got,
                res
            ));
        }
    }
    if !failures.is_empty() {
        let k = failures.len();
        failures.truncate(6);
        let cpu = crate::hostcpu::host_cpu().describe();
        panic!("{k} of {n} cases differ (host CPU: {cpu}):\n{}", failures.join("\n"));
    }
    n
}

/// Interesting values of a `bits`-wide operand plus pseudo-random ones (fixed seed).
pub fn values(bits: u32, random: usize) -> Vec<u64> {
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let sign = 1u64 << (bits - 1);
    let mut v = vec![0, 1, 2, 3, 5, 7, 0x0f, 0x10, sign - 1, sign, sign + 1, mask, mask - 1, mask >> 1, sign >> 1];
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ bits as u64;
    for _ in 0..random {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Mix full-width values with small and sign-extended small ones.
        let pick = match x % 4 {
            0 => x,
            1 => x & 0xff,
            2 => (x as i8 as i64) as u64,
            _ => x >> (x % 60),
        };
        v.push(pick & mask);
    }
    v
}

/// Pseudo-random 64-bit values (for the bits of a register not under test).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// The two flag inputs every case is run with: all clear and all arithmetic flags set.
pub const FLAG_INPUTS: [u64; 2] = [0, rflags::ARITH];

/// Guest byte at `la` (test helper).
pub fn byte(cpu: &mut Cpu, la: u64) -> u8 {
    cpu.ram.read::<W8>(la) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "cases differ")]
    fn a_wrong_result_is_caught() {
        let wrong = |r: &mut Regs| {
            let code = host!("inc eax")(r);
            r.rax ^= 1 << 40;
            code
        };
        check(wrong, values(32, 4).into_iter().map(|v| Regs { rax: v, ..Default::default() }), FLAGS);
    }

    /// `op m, r` reads its register from operand position 1 (decode puts it in `src`).
    #[test]
    fn memory_destination_forms_use_the_register_operand() {
        let r = Regs { rcx: 5, r9: 7, mem: [1; 8], ..Default::default() };
        check(host!("add qword ptr [r10], rcx", "mov qword ptr [r10+8], r9", "xor dword ptr [r10-8], r9d"), [r], FLAGS);
    }

    #[test]
    fn undefined_flags_come_from_the_table() {
        // SDM MUL: SF, ZF, AF, PF undefined. ADD: none.
        assert_eq!(undefined_flags(&[0xf7, 0xe1]), rflags::SF | rflags::ZF | rflags::AF | rflags::PF);
        assert_eq!(undefined_flags(&[0x01, 0xc8]), 0);
        let _ = reference_host();
    }

    #[test]
    fn the_host_and_guest_agree_on_a_known_case_and_memory_is_shared() {
        let r = Regs { rax: 0xff, flags: rflags::CF, mem: [0, 0, 0, 0, 0x11, 0, 0, 0], ..Default::default() };
        let n = check(host!("add al, 1", "add qword ptr [r10], rax", "inc byte ptr [r10 - 32]"), [r], FLAGS);
        assert_eq!(n, 1);
        let mut g = Guest::new();
        let (_, out) = g.run(host!("add al, 1", "add qword ptr [r10], rax")(&mut r.clone()), &r);
        assert_eq!((out.rax, out.mem[4]), (0, 0x11));
        assert_eq!(byte(&mut g.cpu, GUEST_MEM + 32), 0x11);
        assert_ne!(Rng(1).next(), Rng(2).next());
    }
}
