//! Runs instruction bytes natively and under tier 0 from the same FPU image, and compares.
//!
//! The native code and operand lie at addresses congruent to the guest's CODE_VA/MEM_VA modulo
//! 4 GiB (`hostpage`), so the 32- and 16-bit FIP/FDP the two runs store are equal and
//! `normalize` treats both images alike, whatever pointers the input images hold.

use super::hostpage::HostPages;
use crate::cpu::Cpu;
use crate::decode::build_instr;
use crate::exception::Stop;
use crate::mem::GuestRam;
use crate::user::aspace::{AddressSpace, PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::user::setup_long_mode_user;
use iced_x86::{Decoder, DecoderOptions};

/// Guest addresses of the code, the memory operand (RSI) and the save image (RDI).
pub const CODE_VA: u64 = 0x40_0000;
pub const MEM_VA: u64 = 0x50_0000;
pub const SAVE_VA: u64 = 0x50_1000;
/// Bytes of memory operand the tests provide at RSI.
pub const MEM_LEN: usize = 256;

/// What one run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOut {
    /// The FNSAVE image with FIP/FDP replaced by markers (see `normalize`).
    pub image: Vec<u8>,
    pub mem: Vec<u8>,
    /// Arithmetic flags only (CF, PF, AF, ZF, SF, OF).
    pub rflags: u64,
    pub rax: u64,
    /// Set when the instruction faulted under tier 0 (the host run never faults in these tests).
    pub fault: Option<u8>,
}

/// FIP/FDP markers: the pointer equals this instruction's / operand's address, or neither.
const AT_INSN: u32 = 0xa5a5_0001;
const AT_MEM: u32 = 0xa5a5_0100;

/// Replaces FIP/FDP in a 32-bit FNSAVE image by markers when they point at the instruction or
/// the operand (addresses differ between host and guest).
/// `image` is a 32-bit layout (28/108 bytes) unless it is 14 or 94 bytes long (16-bit layout,
/// where the pointers are 16-bit offsets). An operand pointer becomes `AT_MEM + offset`.
pub fn normalize(image: &mut [u8], insn_addr: u64, mem_addr: u64) {
    let small = image.len() == 14 || image.len() == 94;
    let (ip_at, dp_at, w) = if small { (6, 10, 2) } else { (12, 20, 4) };
    let get = |b: &[u8], at: usize| (0..w).fold(0u64, |v, i| v | (b[at + i] as u64) << (8 * i));
    let mask = if small { 0xffff } else { 0xffff_ffff };
    let put = |b: &mut [u8], at: usize, v: u64| {
        for i in 0..w {
            b[at + i] = (v >> (8 * i)) as u8;
        }
    };
    if get(image, ip_at) == insn_addr & mask {
        put(image, ip_at, AT_INSN as u64 & mask);
    }
    let dp = get(image, dp_at);
    let k = dp.wrapping_sub(mem_addr & mask) & mask;
    if dp != 0 && k < MEM_LEN as u64 {
        put(image, dp_at, (AT_MEM as u64 + k) & mask);
    }
    clear_model_specific(image);
}

/// Zeroes the fields of an FNSAVE/FNSTENV image whose value depends on the CPU model, where the
/// host's documented behaviour differs from the one tier 0 follows (the CPUs that report
/// CPUID.(EAX=7,ECX=0):EBX[6] and [13], see `x87/mod.rs`); applied to both images by
/// `normalize`, so they compare equal there on any host. On such an Intel host nothing is masked.
/// - FCS and FDS unless EBX[13] is set: tier 0 stores zero (deprecated, SDM Vol. 1, 8.1.8),
///   other CPUs (AMD) the selectors.
/// - FDP and FDS when no unmasked exception is pending (FSW.ES clear) unless EBX[6] is set:
///   tier 0 updates FDP only for an instruction that raised an unmasked exception (SDM Vol. 1,
///   8.1.8), other CPUs (AMD) on every x87 memory access.
/// - FOP when FSW.ES is clear on a non-Intel host: tier 0 and Intel CPUs store the opcode only
///   for an instruction that raised an unmasked exception (SDM Vol. 1, 8.1.9.1, fopcode
///   compatibility mode off); AMD CPUs store the last non-control instruction's (APM Vol. 1,
///   6.4.4, x87 last-instruction pointers).
pub fn clear_model_specific(image: &mut [u8]) {
    let cpu = crate::hostcpu::announce();
    let small = image.len() == 14 || image.len() == 94;
    // (FSW, FCS, FOP, FDP, FDS) offsets and the pointer width; the 16-bit form has no FOP.
    let (fsw_at, fcs_at, fop_at, dp_at, ds_at, w) =
        if small { (2, 8, None, 10, 12, 2) } else { (4, 16, Some(18), 20, 24, 4) };
    let es = image[fsw_at] & 0x80 != 0;
    if !cpu.fcs_fds_deprecated {
        image[fcs_at..fcs_at + 2].fill(0);
        image[ds_at..ds_at + 2].fill(0);
    }
    if !cpu.fdp_excptn_only && !es {
        image[dp_at..dp_at + w].fill(0);
        image[ds_at..ds_at + 2].fill(0);
    }
    if let Some(fop_at) = fop_at {
        if !cpu.is_intel() && !es {
            image[fop_at..fop_at + 2].fill(0);
        }
    }
    // FIP too, with ES clear on an AMD host: its FXSAVE/XSAVE keep the pointers only while an
    // exception is pending (APM Vol. 4, FXSAVE; measured on this project's EPYC even with
    // RstrFpErrPtrs), so a preemption between the instruction and the FNSAVE, whose context
    // switch saves and restores the FPU, reads back FIP = 0 (seen in 1 of 200 cases under load).
    if cpu.is_amd() && !es {
        let ip_at = if small { 6 } else { 12 };
        image[ip_at..ip_at + w].fill(0);
        image[fcs_at..fcs_at + 2].fill(0);
    }
}

const ARITH_FLAGS: u64 = 0x8d5;

/// The native prologue: `frstor [rdi]; push rdx; popfq; mov rax, rcx`.
const PROLOGUE: &[u8] = &[0xdd, 0x27, 0x52, 0x9d, 0x48, 0x89, 0xc8];
/// The native epilogue: `fnsave [rdi]; mov rcx, rax; pushfq; pop rax; ret`.
const EPILOGUE: &[u8] = &[0xdd, 0x37, 0x48, 0x89, 0xc1, 0x9c, 0x58, 0xc3];

/// The guest's code before the instruction in `run_emu`: `frstor [rdi]`.
const GUEST_PROLOGUE: &[u8] = &[0xdd, 0x27];

/// The instruction under test, assembled into host code between FRSTOR and FNSAVE.
pub struct Native {
    /// Two pages from CODE_VA - 4 KiB (modulo 4 GiB), read-execute.
    code: HostPages,
    /// Address of the instruction FIP should point at: the guest's, modulo 4 GiB.
    insn_addr: u64,
    /// Offset of the first byte of code in `code`.
    start: usize,
    /// The operand page at RSI, at MEM_VA modulo 4 GiB.
    mem: HostPages,
}

/// The end of a raw sequence: `mov rcx, rax; pushfq; pop rax; ret`.
const RAW_END: &[u8] = &[0x48, 0x89, 0xc1, 0x9c, 0x58, 0xc3];

impl Native {
    pub fn new(insn: &[u8]) -> Native {
        let mut code = Vec::new();
        code.extend_from_slice(PROLOGUE);
        code.extend_from_slice(insn);
        code.extend_from_slice(EPILOGUE);
        Self::map(&code, PROLOGUE.len(), CODE_VA + GUEST_PROLOGUE.len() as u64)
    }

    /// A raw sequence (it must leave the FPU initialized, e.g. end in FNSAVE); FIP is expected
    /// to point at offset `insn_off`.
    pub fn raw(seq: &[u8], insn_off: usize) -> Native {
        let mut code = seq.to_vec();
        code.extend_from_slice(RAW_END);
        Self::map(&code, insn_off, CODE_VA + insn_off as u64)
    }

    /// Places `code` so that its byte `insn_off` lies at `guest_insn` modulo 4 GiB.
    fn map(code: &[u8], insn_off: usize, guest_insn: u64) -> Native {
        let page = 4096;
        let base = CODE_VA - page;
        let start = (guest_insn - insn_off as u64 - base) as usize;
        assert!(start + code.len() <= 2 * page as usize, "code too long");
        let mut map = HostPages::at_low32(base, 2 * page as usize);
        map.as_mut_slice()[start..start + code.len()].copy_from_slice(code);
        map.make_exec();
        let insn_addr = map.addr() + (start + insn_off) as u64;
        let mem = HostPages::at_low32(MEM_VA, MEM_LEN);
        Native { code: map, insn_addr, start, mem }
    }

    /// Runs the instruction on the host from `image` with `mem` at [RSI].
    /// `mem_layout` is the length of an FPU image the instruction stores at [RSI] (0: none),
    /// whose pointers are normalized like the FNSAVE image's.
    pub fn run(&mut self, image: &[u8; 108], mem: &[u8], rflags: u64, rax: u64, mem_layout: usize) -> RunOut {
        let mut save = *image;
        let (flags_out, rax_out) = self.call(&mut save, mem, rflags, rax);
        let (insn_addr, mem_addr) = (self.insn_addr, self.mem.addr());
        let mut m = self.mem.as_mut_slice()[..MEM_LEN].to_vec();
        normalize(&mut save, insn_addr, mem_addr);
        if mem_layout != 0 {
            normalize(&mut m[..mem_layout], insn_addr, mem_addr);
        }
        RunOut { image: save.to_vec(), mem: m, rflags: flags_out & ARITH_FLAGS, rax: rax_out, fault: None }
    }

    /// Runs a raw sequence that stores a `len`-byte image at [RDI]; returns that image with its
    /// pointers normalized.
    pub fn run_raw(&mut self, image: &[u8; 108], mem: &[u8], len: usize) -> Vec<u8> {
        let mut save = *image;
        self.call(&mut save, mem, 0, 0);
        normalize(&mut save[..len], self.insn_addr, self.mem.addr());
        save.to_vec()
    }

    /// Runs the code with `mem` (zero-padded to MEM_LEN bytes) in the operand page at RSI.
    fn call(&mut self, save: &mut [u8; 108], mem: &[u8], rflags: u64, rax: u64) -> (u64, u64) {
        let m = &mut self.mem.as_mut_slice()[..MEM_LEN];
        m.fill(0);
        m[..mem.len()].copy_from_slice(mem);
        let entry = self.code.addr() + self.start as u64;
        let flags_in = (rflags & ARITH_FLAGS) | 0x202;
        let flags_out: u64;
        let rax_out: u64;
        // SAFETY: `entry` starts the code `new`/`raw` built: FRSTOR/FNSAVE/FNSTENV at RDI (the
        // 108 bytes of `save`), instructions whose memory operands lie in the MEM_LEN bytes at
        // RSI (`m`, in the operand page), and stack-balanced PUSH/POPF. It ends in RET, leaves
        // the FPU initialized, changes only the registers declared here, and follows the C ABI
        // otherwise.
        unsafe {
            core::arch::asm!(
                "call {f}",
                f = in(reg) entry,
                in("rdi") save.as_mut_ptr(),
                in("rsi") m.as_mut_ptr(),
                in("rdx") flags_in,
                inout("rcx") rax => rax_out,
                out("rax") flags_out,
                clobber_abi("C"),
            );
        }
        (flags_out, rax_out)
    }
}

/// A user-mode CPU with code, operand and save pages mapped.
pub struct Guest {
    pub cpu: Cpu,
}

impl Guest {
    pub fn new() -> Guest {
        let mut ram = GuestRam::new(4 << 20).expect("guest RAM");
        let mut a = AddressSpace::new(&mut ram);
        a.populate(&mut ram, CODE_VA, PROT_READ | PROT_EXEC).expect("code page");
        a.populate(&mut ram, MEM_VA, PROT_READ | PROT_WRITE).expect("operand page");
        a.populate(&mut ram, SAVE_VA, PROT_READ | PROT_WRITE).expect("save page");
        let mut cpu = Cpu::new(ram);
        setup_long_mode_user(&mut cpu, a.pml4);
        Guest { cpu }
    }

    /// Writes `code` at CODE_VA through the page tables (bypassing the read-only mapping).
    pub fn put_code(&mut self, code: &[u8]) {
        // CODE_VA's frame is the first populated one; find it by translating.
        let pa = self.cpu.translate_fetch(CODE_VA).expect("code page mapped");
        if let Some(s) = self.cpu.ram.slice_mut(pa, code.len()) {
            s.copy_from_slice(code);
        }
    }

    /// Decodes and executes `code` (at CODE_VA) instruction by instruction; stops at the first
    /// fault and returns its vector.
    pub fn exec(&mut self, code: &[u8]) -> Option<u8> {
        self.put_code(code);
        let mut d = Decoder::with_ip(64, code, CODE_VA, DecoderOptions::NONE);
        while d.can_decode() {
            let insn = d.decode();
            let e = build_instr(&insn, 64);
            match (e.exec)(&mut self.cpu, &e) {
                Ok(()) => self.cpu.state.rip = e.next_rip,
                Err(Stop::Fault(f)) => {
                    self.cpu.state.rip = e.rip();
                    return Some(f.vector);
                }
                Err(other) => panic!("unexpected stop {other:?}"),
            }
        }
        None
    }

    pub fn write(&mut self, la: u64, data: &[u8]) {
        self.cpu.write_bytes(la, data).expect("guest write");
    }

    pub fn read(&mut self, la: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.cpu.read_bytes(la, &mut b).expect("guest read");
        b
    }
}

/// Runs `frstor [rdi]; insn; fnsave [rdi]` under tier 0 with the same inputs as `Native::run`.
pub fn run_emu(
    g: &mut Guest,
    insn: &[u8],
    image: &[u8; 108],
    mem: &[u8],
    rflags: u64,
    rax: u64,
    mem_layout: usize,
) -> RunOut {
    let mut code = GUEST_PROLOGUE.to_vec();
    code.extend_from_slice(insn);
    code.extend_from_slice(&[0xdd, 0x37]);
    let mut out = run_emu_raw(g, &code, GUEST_PROLOGUE.len(), image, mem, rflags, rax);
    if mem_layout != 0 {
        normalize(&mut out.mem[..mem_layout], CODE_VA + GUEST_PROLOGUE.len() as u64, MEM_VA);
    }
    out
}

/// Runs a raw sequence under tier 0 (as `Native::raw` runs it on the host).
pub fn run_emu_raw(
    g: &mut Guest,
    code: &[u8],
    insn_off: usize,
    image: &[u8; 108],
    mem: &[u8],
    rflags: u64,
    rax: u64,
) -> RunOut {
    g.write(SAVE_VA, image);
    let mut m = vec![0u8; MEM_LEN];
    m[..mem.len()].copy_from_slice(mem);
    g.write(MEM_VA, &m);
    g.cpu.state.gpr[7] = SAVE_VA;
    g.cpu.state.gpr[6] = MEM_VA;
    g.cpu.state.gpr[0] = rax;
    g.cpu.state.set_rflags((rflags & ARITH_FLAGS) | 0x202);
    let fault = g.exec(code);
    let rax_out = g.cpu.state.gpr[0];
    let mut save = g.read(SAVE_VA, 108);
    normalize(&mut save, CODE_VA + insn_off as u64, MEM_VA);
    let mem_out = g.read(MEM_VA, MEM_LEN);
    RunOut { image: save, mem: mem_out, rflags: g.cpu.state.rflags() & ARITH_FLAGS, rax: rax_out, fault }
}

/// A readable account of an FNSAVE image for failure messages.
pub fn describe(image: &[u8]) -> String {
    let w = |at: usize| u16::from_le_bytes([image[at], image[at + 1]]);
    let d = |at: usize| u32::from_le_bytes([image[at], image[at + 1], image[at + 2], image[at + 3]]);
    let mut s = format!(
        "fcw {:04x} fsw {:04x} (top {}) ftw {:04x} fip {:08x} fop {:03x} fdp {:08x}\n",
        w(0),
        w(4),
        (w(4) >> 11) & 7,
        w(8),
        d(12),
        w(18) & 0x7ff,
        d(20)
    );
    for i in 0..8 {
        let at = 28 + 10 * i;
        let sig = u64::from_le_bytes(image[at..at + 8].try_into().unwrap_or([0; 8]));
        s += &format!("  st{i} {:04x}_{:016x}\n", w(at + 8), sig);
    }
    s
}

/// The host instruction and operand lie where the guest's do, modulo 4 GiB, so the pointers the
/// 32- and 16-bit images keep are equal in both runs (see the module doc).
#[test]
fn native_code_and_operand_match_the_guest_modulo_4_gib() {
    let low = |a: u64| a & 0xffff_ffff;
    let n = Native::new(&[0xd9, 0xe8]);
    assert_eq!(low(n.insn_addr), CODE_VA + GUEST_PROLOGUE.len() as u64);
    assert_eq!(low(n.code.addr() + n.start as u64 + PROLOGUE.len() as u64), low(n.insn_addr));
    assert_eq!(low(n.mem.addr()), MEM_VA);
    let r = Native::raw(&[0xdb, 0xe3, 0xd9, 0xe8, 0xdd, 0x37], 2);
    assert_eq!(low(r.code.addr() + r.start as u64), CODE_VA);
    assert_eq!(low(r.insn_addr), CODE_VA + 2);
    // Two at once (as parallel tests make them) get distinct ranges.
    assert_ne!(n.mem.addr(), r.mem.addr());
}
