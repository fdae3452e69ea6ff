//! Runs one instruction natively in a 16- or 32-bit code segment (x86-64 Linux only). All of
//! this module's `unsafe` is the fixed mappings, `modify_ldt` and entering the generated code.
//!
//! The way in: a 64-bit entry saves the host (callee-saved registers, RSP, RFLAGS) and far-returns
//! to 32-bit stub code in USER32_CS (0x23). The stub loads GS with the flat data selector (read
//! through a CS override: the code segment is readable, and DS is null in a 64-bit process),
//! switches to a stack of its own, loads EFLAGS, SS/DS/ES and the GPRs from the state block
//! through GS, and far-jumps to the instruction (0x23 or the LDT's 16-bit code segment). The
//! fall-through and branch-taken stubs far-jump back into 32-bit code, which stores the GPRs,
//! the selectors and EFLAGS through GS and far-jumps to the 64-bit exit in 0x33, which restores
//! the host. GS ends null (its base was, and stays, 0: Linux programs do not use it). FS, which
//! holds the thread pointer's base, is never touched.

use super::{LegacyState, Mode, CODE, DATA, EXIT_PAGE, INSN_PAGE, LDT, SEL_CODE32, SEL_CODE64, SEL_FLAT, STATE};
use crate::native::{map_fixed, protect};
use crate::state::{BUF_LEN, FLAGS_COMPARED, FLAGS_FIXED};
use iced_x86::{Code, Encoder, Instruction, MemoryOperand, Register};
use std::sync::Mutex;

const PAGE: usize = 0x1000;

// State block fields (offsets from STATE).
const B_GPR: u64 = 0;
const B_EFLAGS: u64 = 32;
/// ES, SS, DS selectors, one u32 slot each.
const B_SEL: u64 = 36;
const B_TAKEN: u64 = 48;
/// m16:32 far pointer to the instruction.
const B_ENTRY: u64 = 52;
const B_HOST_RSP: u64 = 64;
const B_HOST_RFLAGS: u64 = 72;
/// m16:32 far pointer to the 64-bit exit.
const B_EPILOGUE: u64 = 80;
const B_FLATSEL: u64 = 88;
/// Top of the stubs' own stack.
const STACK32: u64 = STATE + 0xfc0;

// Code layout.
const ENTRY64: u64 = CODE;
const EXIT64: u64 = CODE + 0x800;
const ENTRY32: u64 = CODE + 0x1000;
const EXIT32_FALL: u64 = CODE + 0x1400;
const EXIT32_TAKEN: u64 = CODE + 0x1480;
const EXIT32_COMMON: u64 = CODE + 0x1500;

/// The native runner; one per process, used under a lock.
pub struct NativeLegacy {
    /// The mode the exit page is assembled for.
    exit_mode: Option<Mode>,
    /// The LDT entries, or why the host refused them (container seccomp profiles often block
    /// modify_ldt): without them only 32-bit code with flat segments runs.
    ldt: Result<(), String>,
}

static RUNNER: Mutex<Option<Result<NativeLegacy, String>>> = Mutex::new(None);

/// Runs `f` with the process's runner (made on first use), or says why it could not be made.
///
/// # Errors
/// The fixed addresses are taken, or the host refused the mappings or the LDT.
pub fn with_runner<R>(f: impl FnOnce(&mut NativeLegacy) -> R) -> Result<R, String> {
    let mut guard = RUNNER.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        emu::hostcpu::announce();
        *guard = Some(NativeLegacy::new());
    }
    match guard.as_mut() {
        Some(Ok(r)) => Ok(f(r)),
        Some(Err(e)) => Err(e.clone()),
        None => Err("native runner missing".into()),
    }
}

/// Linux's `struct user_desc` (arch/x86/include/uapi/asm/ldt.h); the bit fields packed in `flags`
/// from bit 0: seg_32bit, contents (2 bits), read_exec_only, limit_in_pages, seg_not_present,
/// useable, lm.
#[repr(C)]
struct UserDesc {
    entry_number: u32,
    base_addr: u32,
    limit: u32,
    flags: u32,
}

fn set_ldt_entry(n: u32, base: u64, limit: u32, big: bool, code: bool) -> Result<(), String> {
    let contents = if code { 2 } else { 0 }; // MODIFY_LDT_CONTENTS_CODE / _DATA
    let d = UserDesc { entry_number: n, base_addr: base as u32, limit, flags: big as u32 | contents << 1 };
    // SAFETY: modify_ldt(1, ptr, size) reads `size` bytes at `ptr`, a live `UserDesc`.
    let r = unsafe { libc::syscall(libc::SYS_modify_ldt, 1, &d as *const UserDesc, std::mem::size_of::<UserDesc>()) };
    if r != 0 {
        return Err(format!("modify_ldt refused LDT entry {n}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

fn ok(r: Result<Instruction, iced_x86::IcedError>) -> Instruction {
    r.expect("harness stub instruction")
}

fn assemble(bits: u32, list: &[Instruction], at: u64) -> Vec<u8> {
    let mut enc = Encoder::new(bits);
    let mut ip = at;
    for i in list {
        ip += enc.encode(i, ip).expect("harness stub encodes") as u64;
    }
    enc.take_buffer()
}

/// `[addr]` with a segment override (absolute 32-bit address).
fn abs(seg: Register, addr: u64) -> MemoryOperand {
    MemoryOperand::new(Register::None, Register::None, 1, addr as i64, 4, false, seg)
}

fn gs(field: u64) -> MemoryOperand {
    abs(Register::GS, STATE + field)
}

const GPRS32: [Register; 8] = [
    Register::EAX,
    Register::ECX,
    Register::EDX,
    Register::EBX,
    Register::ESP,
    Register::EBP,
    Register::ESI,
    Register::EDI,
];
const SAVED: [Register; 6] = [Register::RBX, Register::RBP, Register::R12, Register::R13, Register::R14, Register::R15];

/// Page 0: the 64-bit entry (at 0) and exit (at 0x800).
fn page64() -> Vec<u8> {
    let mut page = vec![0xccu8; PAGE];
    let mut v: Vec<Instruction> = SAVED.iter().map(|&r| ok(Instruction::with1(Code::Push_r64, r))).collect();
    let flat = |a: u64| MemoryOperand::new(Register::None, Register::None, 1, a as i64, 4, false, Register::None);
    v.push(ok(Instruction::with2(Code::Mov_rm64_r64, flat(STATE + B_HOST_RSP), Register::RSP)));
    v.push(Instruction::with(Code::Pushfq));
    v.push(ok(Instruction::with1(Code::Pop_rm64, flat(STATE + B_HOST_RFLAGS))));
    v.push(ok(Instruction::with1(Code::Pushq_imm8, SEL_CODE32 as i32)));
    v.push(ok(Instruction::with1(Code::Pushq_imm32, ENTRY32 as i32)));
    v.push(Instruction::with(Code::Retfq));
    let entry = assemble(64, &v, ENTRY64);
    page[..entry.len()].copy_from_slice(&entry);
    let mut v = vec![
        ok(Instruction::with2(Code::Mov_r64_rm64, Register::RSP, flat(STATE + B_HOST_RSP))),
        ok(Instruction::with1(Code::Push_rm64, flat(STATE + B_HOST_RFLAGS))),
        Instruction::with(Code::Popfq),
        ok(Instruction::with2(Code::Xor_r32_rm32, Register::EAX, Register::EAX)),
        ok(Instruction::with2(Code::Mov_Sreg_r32m16, Register::GS, Register::EAX)),
    ];
    v.extend(SAVED.iter().rev().map(|&r| ok(Instruction::with1(Code::Pop_r64, r))));
    v.push(Instruction::with(Code::Retnq));
    let exit = assemble(64, &v, EXIT64);
    let o = (EXIT64 - CODE) as usize;
    page[o..o + exit.len()].copy_from_slice(&exit);
    page
}

/// Page 1: the 32-bit stubs.
fn page32() -> Vec<u8> {
    let mut page = vec![0xccu8; PAGE];
    let mut put = |at: u64, list: &[Instruction]| {
        let b = assemble(32, list, at);
        let o = (at - ENTRY32) as usize;
        page[o..o + b.len()].copy_from_slice(&b);
    };
    let load_gs = ok(Instruction::with2(Code::Mov_Sreg_rm16, Register::GS, abs(Register::CS, STATE + B_FLATSEL)));
    let mut v = vec![
        load_gs,
        ok(Instruction::with2(Code::Mov_r32_imm32, Register::ESP, STACK32 as u32)),
        ok(Instruction::with1(Code::Push_rm32, gs(B_EFLAGS))),
        Instruction::with(Code::Popfd),
        ok(Instruction::with2(Code::Mov_Sreg_rm16, Register::SS, gs(B_SEL + 4))),
        ok(Instruction::with2(Code::Mov_r32_rm32, Register::ESP, gs(B_GPR + 16))),
        ok(Instruction::with2(Code::Mov_Sreg_rm16, Register::DS, gs(B_SEL + 8))),
        ok(Instruction::with2(Code::Mov_Sreg_rm16, Register::ES, gs(B_SEL))),
    ];
    for (i, &r) in GPRS32.iter().enumerate() {
        if r != Register::ESP {
            v.push(ok(Instruction::with2(Code::Mov_r32_rm32, r, gs(B_GPR + 4 * i as u64))));
        }
    }
    v.push(ok(Instruction::with1(Code::Jmp_m1632, gs(B_ENTRY))));
    put(ENTRY32, &v);
    put(EXIT32_FALL, &[load_gs, ok(Instruction::with_branch(Code::Jmp_rel32_32, EXIT32_COMMON))]);
    put(
        EXIT32_TAKEN,
        &[
            load_gs,
            ok(Instruction::with2(Code::Mov_rm32_imm32, gs(B_TAKEN), 1u32)),
            ok(Instruction::with_branch(Code::Jmp_rel32_32, EXIT32_COMMON)),
        ],
    );
    let mut v: Vec<Instruction> = GPRS32
        .iter()
        .enumerate()
        .map(|(i, &r)| ok(Instruction::with2(Code::Mov_rm32_r32, gs(B_GPR + 4 * i as u64), r)))
        .collect();
    for (i, s) in [Register::ES, Register::SS, Register::DS].into_iter().enumerate() {
        v.push(ok(Instruction::with2(Code::Mov_r32m16_Sreg, gs(B_SEL + 4 * i as u64), s)));
    }
    let flatsel = abs(Register::CS, STATE + B_FLATSEL);
    v.extend([
        ok(Instruction::with2(Code::Mov_Sreg_rm16, Register::SS, flatsel)),
        ok(Instruction::with2(Code::Mov_r32_imm32, Register::ESP, STACK32 as u32)),
        Instruction::with(Code::Pushfd),
        ok(Instruction::with1(Code::Pop_rm32, gs(B_EFLAGS))),
        ok(Instruction::with2(Code::Mov_Sreg_rm16, Register::DS, flatsel)),
        ok(Instruction::with2(Code::Mov_Sreg_rm16, Register::ES, flatsel)),
        ok(Instruction::with1(Code::Jmp_m1632, gs(B_EPILOGUE))),
    ]);
    put(EXIT32_COMMON, &v);
    page
}

/// The exit page for `mode`: far jumps (in that mode's code) to the 32-bit exit stubs.
fn exit_page(mode: Mode) -> Vec<u8> {
    let mut page = vec![0xccu8; PAGE];
    let fall = ok(Instruction::with_far_branch(Code::Jmp_ptr1632, SEL_CODE32, EXIT32_FALL as u32));
    let taken = ok(Instruction::with_far_branch(Code::Jmp_ptr1632, SEL_CODE32, EXIT32_TAKEN as u32));
    let at = |off: u64| EXIT_PAGE - mode.cs_base() + off;
    let a = assemble(mode.bits(), &[fall], at(0));
    page[..a.len()].copy_from_slice(&a);
    let t = (super::TAKEN_OFF - super::FALL_OFF) as usize;
    let b = assemble(mode.bits(), &[taken], at(t as u64));
    page[t..t + b.len()].copy_from_slice(&b);
    page
}

fn write_u32(addr: u64, v: u32) {
    // SAFETY: only called for fields of the state block, inside this module's data mapping.
    unsafe { (addr as *mut u32).write_unaligned(v) }
}

fn read_u32(addr: u64) -> u32 {
    // SAFETY: as `write_u32`.
    unsafe { (addr as *const u32).read_unaligned() }
}

impl NativeLegacy {
    fn new() -> Result<Self, String> {
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        map_fixed(DATA, 0x1_0000, rw)?;
        map_fixed(CODE, 4 * PAGE, rw)?;
        let ldt = LDT
            .iter()
            .enumerate()
            .try_for_each(|(n, &(base, limit, big, code))| set_ldt_entry(n as u32, base, limit, big, code));
        let p64 = page64();
        let p32 = page32();
        // SAFETY: CODE is this module's writable mapping of four pages; the slices cover the
        // first two and alias nothing.
        unsafe {
            std::slice::from_raw_parts_mut(CODE as *mut u8, PAGE).copy_from_slice(&p64);
            std::slice::from_raw_parts_mut((CODE + 0x1000) as *mut u8, PAGE).copy_from_slice(&p32);
        }
        protect(CODE, 2 * PAGE, libc::PROT_READ | libc::PROT_EXEC);
        write_u32(STATE + B_EPILOGUE, EXIT64 as u32);
        write_u32(STATE + B_EPILOGUE + 4, SEL_CODE64 as u32);
        write_u32(STATE + B_FLATSEL, SEL_FLAT as u32);
        Ok(NativeLegacy { exit_mode: None, ldt })
    }

    /// Runs `insn` (the bytes for `mode`, at most 15) from `init`; the instruction ends at
    /// offset `FALL_OFF` of the code segment. The caller guarantees it cannot fault or escape:
    /// every access is inside the buffer, segment loads take [`super::SELECTORS`], FS/GS and CS
    /// are not written and branches go to `TAKEN_OFF`.
    /// Why 16-bit code (and LDT selectors) cannot run here, if they cannot.
    pub fn ldt_unavailable(&self) -> Option<String> {
        self.ldt.as_ref().err().cloned()
    }

    /// Whether this case can run here: it needs the LDT in 16-bit code or with an LDT selector.
    pub fn can_run(&self, mode: Mode, init: &LegacyState) -> bool {
        self.ldt.is_ok() || (mode == Mode::Bits32 && init.sel.iter().all(|s| s & 4 == 0))
    }

    pub fn run(&mut self, mode: Mode, insn: &[u8], init: &LegacyState) -> LegacyState {
        assert!(!insn.is_empty() && insn.len() <= 15);
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        protect(INSN_PAGE, 2 * PAGE, rw);
        let at = INSN_PAGE + PAGE as u64 - insn.len() as u64;
        // SAFETY: the two pages are this module's, writable right now, referred to by nothing
        // else; the state block and buffer are this module's data mapping.
        unsafe {
            let page = std::slice::from_raw_parts_mut(INSN_PAGE as *mut u8, PAGE);
            page.fill(0xcc);
            page[PAGE - insn.len()..].copy_from_slice(insn);
            if self.exit_mode != Some(mode) {
                std::slice::from_raw_parts_mut(EXIT_PAGE as *mut u8, PAGE).copy_from_slice(&exit_page(mode));
            }
            std::slice::from_raw_parts_mut(super::BUF as *mut u8, BUF_LEN).copy_from_slice(&init.buf);
        }
        self.exit_mode = Some(mode);
        protect(INSN_PAGE, 2 * PAGE, libc::PROT_READ | libc::PROT_EXEC);
        for (i, &g) in init.gpr.iter().enumerate() {
            write_u32(STATE + B_GPR + 4 * i as u64, g);
        }
        write_u32(STATE + B_EFLAGS, (init.eflags as u64 & FLAGS_COMPARED | FLAGS_FIXED) as u32);
        for (i, &s) in init.sel.iter().enumerate() {
            write_u32(STATE + B_SEL + 4 * i as u64, s as u32);
        }
        write_u32(STATE + B_TAKEN, 0);
        write_u32(STATE + B_ENTRY, (at - mode.cs_base()) as u32);
        write_u32(STATE + B_ENTRY + 4, mode.cs() as u32);
        // SAFETY: ENTRY64 holds the entry assembled above: it saves every callee-saved
        // register, RSP and RFLAGS, runs the 32-bit stubs and the instruction, and the exit
        // restores them and returns; DF is clear again after the POPFQ. The instruction keeps
        // the invariants of `run`'s contract, so it neither faults nor escapes.
        unsafe {
            let f: extern "C" fn() = std::mem::transmute(ENTRY64 as *const u8);
            f();
        }
        let mut out = LegacyState::zeroed();
        for (i, g) in out.gpr.iter_mut().enumerate() {
            *g = read_u32(STATE + B_GPR + 4 * i as u64);
        }
        out.eflags = read_u32(STATE + B_EFLAGS);
        for (i, s) in out.sel.iter_mut().enumerate() {
            *s = read_u32(STATE + B_SEL + 4 * i as u64) as u16;
        }
        out.eip = if read_u32(STATE + B_TAKEN) != 0 { super::TAKEN_OFF } else { super::FALL_OFF } as u32;
        if mode == Mode::Bits32 {
            out.eip += CODE as u32;
        }
        // SAFETY: the buffer is this module's mapping; the run is over.
        out.buf = unsafe { std::slice::from_raw_parts(super::BUF as *const u8, BUF_LEN).to_vec() };
        out
    }
}
