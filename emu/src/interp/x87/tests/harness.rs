//! Runs instruction bytes natively and under tier 0 from the same FPU image, and compares.

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
pub const MEM_LEN: usize = 128;

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
const AT_MEM: u32 = 0xa5a5_0002;

/// Replaces FIP/FDP in a 32-bit FNSAVE image by markers when they point at the instruction or
/// the operand (addresses differ between host and guest).
fn normalize(image: &mut [u8], insn_addr: u64, mem_addr: u64) {
    let fip = u32::from_le_bytes([image[12], image[13], image[14], image[15]]);
    if fip == insn_addr as u32 {
        image[12..16].copy_from_slice(&AT_INSN.to_le_bytes());
    }
    let fdp = u32::from_le_bytes([image[20], image[21], image[22], image[23]]);
    if fdp == mem_addr as u32 && fdp != 0 {
        image[20..24].copy_from_slice(&AT_MEM.to_le_bytes());
    }
}

const ARITH_FLAGS: u64 = 0x8d5;

/// The native prologue: `frstor [rdi]; push rdx; popfq; mov rax, rcx`.
const PROLOGUE: &[u8] = &[0xdd, 0x27, 0x52, 0x9d, 0x48, 0x89, 0xc8];
/// The native epilogue: `fnsave [rdi]; mov rcx, rax; pushfq; pop rax; ret`.
const EPILOGUE: &[u8] = &[0xdd, 0x37, 0x48, 0x89, 0xc1, 0x9c, 0x58, 0xc3];

/// The instruction under test, assembled into host code between FRSTOR and FNSAVE.
pub struct Native {
    exec: memmap2::Mmap,
}

impl Native {
    pub fn new(insn: &[u8]) -> Native {
        let mut code = Vec::new();
        code.extend_from_slice(PROLOGUE);
        code.extend_from_slice(insn);
        code.extend_from_slice(EPILOGUE);
        let mut map = memmap2::MmapMut::map_anon(4096).expect("map code");
        map[..code.len()].copy_from_slice(&code);
        Native { exec: map.make_exec().expect("make code executable") }
    }

    /// Runs the instruction on the host from `image` with `mem` at [RSI].
    pub fn run(&self, image: &[u8; 108], mem: &[u8], rflags: u64, rax: u64) -> RunOut {
        let insn_addr = self.exec.as_ptr() as u64 + PROLOGUE.len() as u64;
        let mut save = *image;
        let mut m = vec![0u8; MEM_LEN];
        m[..mem.len()].copy_from_slice(mem);
        let flags_in = (rflags & ARITH_FLAGS) | 0x202;
        let flags_out: u64;
        let rax_out: u64;
        // SAFETY: `exec` holds the code `new` built: FRSTOR/FNSAVE at RDI (the 108 bytes of
        // `save`), the instruction under test whose only memory operand is [RSI] (MEM_LEN bytes
        // of `m`), and stack-balanced PUSH/POPF. It ends in RET, leaves the FPU initialized
        // (FNSAVE does), changes only the registers declared here, and follows the C ABI.
        unsafe {
            core::arch::asm!(
                "call {f}",
                f = in(reg) self.exec.as_ptr(),
                in("rdi") save.as_mut_ptr(),
                in("rsi") m.as_mut_ptr(),
                in("rdx") flags_in,
                inout("rcx") rax => rax_out,
                out("rax") flags_out,
                clobber_abi("C"),
            );
        }
        normalize(&mut save, insn_addr, m.as_ptr() as u64);
        RunOut { image: save.to_vec(), mem: m, rflags: flags_out & ARITH_FLAGS, rax: rax_out, fault: None }
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
    fn put_code(&mut self, code: &[u8]) {
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

/// Runs `frstor [rdi]; insn; fnsave [rdi]` under tier 0 with the same inputs as `run_native`.
pub fn run_emu(g: &mut Guest, insn: &[u8], image: &[u8; 108], mem: &[u8], rflags: u64, rax: u64) -> RunOut {
    g.write(SAVE_VA, image);
    let mut m = vec![0u8; MEM_LEN];
    m[..mem.len()].copy_from_slice(mem);
    g.write(MEM_VA, &m);
    g.cpu.state.gpr[7] = SAVE_VA;
    g.cpu.state.gpr[6] = MEM_VA;
    g.cpu.state.gpr[0] = rax;
    g.cpu.state.set_rflags((rflags & ARITH_FLAGS) | 0x202);
    let mut code = vec![0xdd, 0x27];
    code.extend_from_slice(insn);
    let fault = g.exec(&code);
    let rax_out = g.cpu.state.gpr[0];
    if fault.is_none() {
        g.exec(&[0xdd, 0x37]);
    }
    let mut save = g.read(SAVE_VA, 108);
    normalize(&mut save, CODE_VA + 2, MEM_VA);
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
