//! Stack: PUSH, POP (register, r/m, immediate), PUSH/POP FS and GS, ENTER, LEAVE (SDM Vol. 2).
//! In 64-bit mode the stack is RSP-based with no segment base; the operand size is 64 (or 16
//! with 66h). Outside 64-bit mode the SS base and ESP/SP (per SS.B) are used, and the 32-bit
//! forms exist. A push computes the new RSP, writes, and only then commits RSP, so a faulting
//! push changes nothing; ENTER writes its whole frame before committing RSP and RBP.
//!
//! POP FS/GS load the selector under the simplified flat-model rules of `data_xfer.rs`
//! (`Cpu::load_data_segment`); PUSH/POP ES/CS/SS/DS are not encodable in 64-bit mode and are
//! left to the protected-mode work.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::ExecResult;
use crate::flags::{Width, W16, W32, W64};
use crate::state::{
    gpr::{RBP, RSP},
    SegReg,
};
use iced_x86::Code as C;

impl Cpu {
    /// Linear address of stack offset `off` (SS base outside 64-bit mode).
    #[inline(always)]
    pub fn stack_la(&self, off: u64, e: &Instr) -> u64 {
        if e.lmask == u64::MAX {
            off
        } else {
            self.state.segs[SegReg::Ss as usize].base.wrapping_add(off & self.stack_mask()) & 0xffff_ffff
        }
    }

    /// Mask of the stack pointer: SS.B selects ESP or SP outside 64-bit mode.
    #[inline(always)]
    pub fn stack_mask(&self) -> u64 {
        if self.state.segs[SegReg::Ss as usize].default_big() {
            0xffff_ffff
        } else {
            0xffff
        }
    }

    /// Pushes a `W`-sized value; RSP is committed after the write succeeds.
    #[inline(always)]
    pub fn push<W: Width>(&mut self, e: &Instr, v: u64) -> ExecResult {
        let rsp = self.state.gpr[RSP].wrapping_sub(W::BYTES as u64);
        self.write::<W>(self.stack_la(rsp, e), v)?;
        self.set_rsp(e, rsp);
        Ok(())
    }

    /// Reads the `W`-sized value at the top of the stack without popping it.
    #[inline(always)]
    pub fn peek<W: Width>(&mut self, e: &Instr, offset: u64) -> Result<u64, crate::exception::Stop> {
        let rsp = self.state.gpr[RSP].wrapping_add(offset);
        self.read::<W>(self.stack_la(rsp, e))
    }

    /// Writes RSP (or ESP/SP, per the stack size outside 64-bit mode).
    #[inline(always)]
    pub fn set_rsp(&mut self, e: &Instr, rsp: u64) {
        if e.lmask == u64::MAX {
            self.state.gpr[RSP] = rsp;
        } else {
            let m = self.stack_mask();
            self.state.gpr[RSP] = (self.state.gpr[RSP] & !m) | (rsp & m);
        }
    }
}

pub fn exec_push_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.get::<W>(e.dst);
    cpu.push::<W>(e, v)
}

pub fn exec_push_m<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.read::<W>(cpu.ea(e))?;
    cpu.push::<W>(e, v)
}

pub fn exec_push_i<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.push::<W>(e, e.imm)
}

pub fn exec_pop_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.peek::<W>(e, 0)?;
    let rsp = cpu.state.gpr[RSP].wrapping_add(W::BYTES as u64);
    cpu.set_rsp(e, rsp);
    // `pop rsp` loads the popped value, overriding the increment.
    cpu.set::<W>(e.dst, v);
    Ok(())
}

/// `pop m`: the address is computed with RSP already incremented (SDM POP, "If the destination
/// operand is a memory location that uses RSP as a base...").
pub fn exec_pop_m<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.peek::<W>(e, 0)?;
    let old = cpu.state.gpr[RSP];
    let new = old.wrapping_add(W::BYTES as u64);
    cpu.set_rsp(e, new);
    let la = cpu.ea(e);
    if let Err(f) = cpu.write::<W>(la, v) {
        cpu.state.gpr[RSP] = old;
        return Err(f);
    }
    Ok(())
}

/// `push fs/gs`: the selector, zero-extended to the operand size.
pub fn exec_push_sreg<W: Width, const SEG: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let sel = cpu.state.segs[SEG as usize].selector as u64;
    cpu.push::<W>(e, sel)
}

/// `pop fs/gs`: RSP moves only if the segment load succeeds.
pub fn exec_pop_sreg<W: Width, const SEG: u8>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.peek::<W>(e, 0)?;
    cpu.load_data_segment(SEG, v as u16)?;
    let rsp = cpu.state.gpr[RSP].wrapping_add(W::BYTES as u64);
    cpu.set_rsp(e, rsp);
    Ok(())
}

/// `leave`: rSP = rBP, then pop rBP (`W` is the operand size of the pop).
pub fn exec_leave<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let bp = cpu.state.gpr[RBP];
    // Read at the new stack top before changing anything.
    let top = if e.lmask == u64::MAX { bp } else { bp & cpu.stack_mask() };
    let v = cpu.read::<W>(cpu.stack_la(top, e))?;
    cpu.set_rsp(e, top.wrapping_add(W::BYTES as u64));
    cpu.set::<W>(RBP as u8, v);
    Ok(())
}

/// `enter imm16, imm8`: push rBP, copy `level - 1` outer frame pointers, push the new frame
/// pointer, then allocate `imm16` bytes (SDM ENTER, the nesting level taken mod 32).
pub fn exec_enter<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let size = e.imm & 0xffff;
    let level = (e.src2 & 31) as u64;
    let n = W::BYTES as u64;
    let rsp0 = cpu.state.gpr[RSP];
    let bp = cpu.state.gpr[RBP];
    let mut rsp = rsp0.wrapping_sub(n);
    cpu.write::<W>(cpu.stack_la(rsp, e), bp)?;
    let frame = rsp;
    if level > 0 {
        for i in 1..level {
            let v = cpu.read::<W>(cpu.stack_la(bp.wrapping_sub(i * n), e))?;
            rsp = rsp.wrapping_sub(n);
            cpu.write::<W>(cpu.stack_la(rsp, e), v)?;
        }
        rsp = rsp.wrapping_sub(n);
        cpu.write::<W>(cpu.stack_la(rsp, e), frame)?;
    }
    // The final stack top must be writable too (hardware checks it before committing).
    let top = rsp.wrapping_sub(size);
    if size > 0 {
        cpu.translate_rmw::<crate::flags::W8>(cpu.stack_la(top, e))?;
    }
    cpu.set::<W>(RBP as u8, frame);
    cpu.set_rsp(e, top);
    Ok(())
}

const PUSH_POP: &[Row] = &[
    Row::reg(C::Push_r64, exec_push_r::<W64>),
    Row::reg(C::Push_r16, exec_push_r::<W16>),
    Row::reg(C::Pop_r64, exec_pop_r::<W64>),
    Row::reg(C::Pop_r16, exec_pop_r::<W16>),
    Row::rm(C::Push_rm64, exec_push_r::<W64>, exec_push_m::<W64>),
    Row::rm(C::Push_rm16, exec_push_r::<W16>, exec_push_m::<W16>),
    Row::rm(C::Pop_rm64, exec_pop_r::<W64>, exec_pop_m::<W64>),
    Row::rm(C::Pop_rm16, exec_pop_r::<W16>, exec_pop_m::<W16>),
    Row::reg(C::Pushq_imm8, exec_push_i::<W64>),
    Row::reg(C::Pushq_imm32, exec_push_i::<W64>),
    Row::reg(C::Pushw_imm8, exec_push_i::<W16>),
    Row::reg(C::Push_imm16, exec_push_i::<W16>),
    // 32-bit forms (not encodable in 64-bit mode; used by 32-bit code).
    Row::reg(C::Push_r32, exec_push_r::<W32>),
    Row::reg(C::Pop_r32, exec_pop_r::<W32>),
    Row::rm(C::Push_rm32, exec_push_r::<W32>, exec_push_m::<W32>),
    Row::rm(C::Pop_rm32, exec_pop_r::<W32>, exec_pop_m::<W32>),
    Row::reg(C::Pushd_imm8, exec_push_i::<W32>),
    Row::reg(C::Pushd_imm32, exec_push_i::<W32>),
    Row::reg(C::Pushq_FS, exec_push_sreg::<W64, 4>),
    Row::reg(C::Pushw_FS, exec_push_sreg::<W16, 4>),
    Row::reg(C::Pushd_FS, exec_push_sreg::<W32, 4>),
    Row::reg(C::Pushq_GS, exec_push_sreg::<W64, 5>),
    Row::reg(C::Pushw_GS, exec_push_sreg::<W16, 5>),
    Row::reg(C::Pushd_GS, exec_push_sreg::<W32, 5>),
    Row::reg(C::Popq_FS, exec_pop_sreg::<W64, 4>),
    Row::reg(C::Popw_FS, exec_pop_sreg::<W16, 4>),
    Row::reg(C::Popd_FS, exec_pop_sreg::<W32, 4>),
    Row::reg(C::Popq_GS, exec_pop_sreg::<W64, 5>),
    Row::reg(C::Popw_GS, exec_pop_sreg::<W16, 5>),
    Row::reg(C::Popd_GS, exec_pop_sreg::<W32, 5>),
    Row::reg(C::Leaveq, exec_leave::<W64>),
    Row::reg(C::Leaved, exec_leave::<W32>),
    Row::reg(C::Leavew, exec_leave::<W16>),
    Row::reg(C::Enterq_imm16_imm8, exec_enter::<W64>),
    Row::reg(C::Enterd_imm16_imm8, exec_enter::<W32>),
    Row::reg(C::Enterw_imm16_imm8, exec_enter::<W16>),
];

pub(crate) const ROWS: &[&[Row]] = &[PUSH_POP];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::hosttest::{check, host, values, Guest, Regs, FLAGS, GUEST_STACK};
    use crate::exception::vector;

    /// RSP differs between host and guest, so the tests save it in R8 and report
    /// `RSP - saved` (and RBP - saved) instead of absolute values.
    fn cases() -> Vec<Regs> {
        values(64, 8).into_iter().map(|v| Regs { rax: v, rcx: !v, rdx: v >> 7, ..Default::default() }).collect()
    }

    #[test]
    fn enter_and_leave_match_the_host() {
        // RBP cannot be an asm! operand: keep it in R9 around the test sequence. Results are
        // reported relative to the entry RSP (R8): RSI = RBP, RDI = RSP after ENTER, RAX = the
        // frame pointer ENTER stored, RCX/RDX = copied outer frame pointers, mem[4] = RSP after
        // LEAVE.
        for code in [
            host!(
                "mov r9, rbp",
                "mov r8, rsp",
                "mov rbp, rsp",
                "sub rbp, 64",
                "mov [rbp - 8], rax",
                "mov [rbp - 16], rcx",
                "enter 40, 3",
                "mov rsi, rbp",
                "sub rsi, r8",
                "mov rdi, rsp",
                "sub rdi, r8",
                "mov rax, [rsp + 40]",
                "sub rax, r8",
                "mov rcx, [rsp + 48]",
                "mov rdx, [rsp + 56]",
                "leave",
                "mov [r10], rsp",
                "sub [r10], r8",
                "mov rsp, r8",
                "mov rbp, r9",
                "xor r8, r8",
                "xor r9, r9"
            ),
            host!(
                "mov r9, rbp",
                "mov r8, rsp",
                "mov rbp, rsp",
                "enter 0, 0",
                "mov rsi, rbp",
                "sub rsi, r8",
                "mov rdi, rsp",
                "sub rdi, r8",
                "leave",
                "mov [r10], rsp",
                "sub [r10], r8",
                "mov rsp, r8",
                "mov rbp, r9",
                "xor r8, r8",
                "xor r9, r9"
            ),
            host!(
                "mov r9, rbp",
                "mov r8, rsp",
                "mov rbp, rsp",
                "sub rbp, 32",
                "enter 8, 33",
                "mov rsi, rbp",
                "sub rsi, r8",
                "mov rdi, rsp",
                "sub rdi, r8",
                "mov rax, [rsp + 8]",
                "sub rax, r8",
                "leave",
                "mov [r10], rsp",
                "sub [r10], r8",
                "mov rsp, r8",
                "mov rbp, r9",
                "xor r8, r8",
                "xor r9, r9"
            ),
            // 16-bit ENTER: BP and the stored frame pointer are 16 bits, reported modulo 2^16.
            host!(
                "mov r9, rbp",
                "mov r8, rsp",
                "mov rbp, rsp",
                "sub rbp, 16",
                "mov word ptr [rbp - 2], ax",
                ".byte 0x66, 0xc8, 6, 0, 2",
                "movzx esi, bp",
                "sub esi, r8d",
                "and esi, 0xffff",
                "mov rdi, rsp",
                "sub rdi, r8",
                "movzx eax, word ptr [rsp + 6]",
                "sub eax, r8d",
                "and eax, 0xffff",
                "movzx ecx, word ptr [rsp + 8]",
                "mov rsp, r8",
                "mov rbp, r9",
                "xor r8, r8",
                "xor r9, r9"
            ),
        ] {
            check(code, cases(), FLAGS);
        }
    }

    #[test]
    fn push_fs_gs_match_the_host() {
        // POP FS/GS cannot run here: a host FS load would lose the thread pointer.
        check(
            host!(".byte 0x0f, 0xa0", "pop rax", ".byte 0x0f, 0xa8", "pop rcx", ".byte 0x66, 0x0f, 0xa0", "pop dx"),
            cases(),
            FLAGS,
        );
    }

    #[test]
    fn pop_fs_gs_load_through_the_gdt() {
        let mut g = Guest::new();
        g.cpu.state.segs[5].base = 0x777;
        // push 0x2b; pop gs: the user data descriptor, base 0. push 0x13; pop fs: GDT entry 2 is
        // empty: #GP(0x10), RSP kept.
        let (res, r) = g.run(&[0x6a, 0x2b, 0x0f, 0xa9], &Regs::default());
        assert!(res.is_ok());
        assert_eq!((g.cpu.state.segs[5].selector, g.cpu.state.segs[5].base), (0x2b, 0));
        assert_eq!(g.cpu.state.gpr[4], GUEST_STACK);
        let _ = r;
        g.load(&Regs::default());
        let res = g.exec(&[0x6a, 0x13, 0x0f, 0xa1]);
        assert!(matches!(res, Err(crate::exception::Stop::Fault(f)) if f.vector == vector::GP && f.error_code == 0x10));
        assert_eq!(g.cpu.state.gpr[4], GUEST_STACK - 8);
    }

    #[test]
    fn a_faulting_enter_changes_no_register() {
        // The frame would go below RAM... use a stack top of 16 with a non-canonical wrap: the
        // first push to RSP - 8 faults (#GP: non-canonical) and RSP/RBP stay.
        let mut g = Guest::new();
        g.load(&Regs::default());
        g.cpu.state.gpr[4] = 0x8000_0000_0000_0004;
        g.cpu.state.gpr[5] = 0x1234;
        let r = g.exec(&[0xc8, 0x10, 0x00, 0x02]); // enter 16, 2
        assert!(matches!(r, Err(crate::exception::Stop::Fault(f)) if f.vector == vector::GP));
        assert_eq!((g.cpu.state.gpr[4], g.cpu.state.gpr[5]), (0x8000_0000_0000_0004, 0x1234));
    }
}
