//! Flag control (SDM Vol. 2, those entries): CLC, STC, CMC, CLD, STD, CLI, STI, LAHF, SAHF,
//! PUSHF/PUSHFQ (and PUSHFD outside 64-bit mode), POPF/POPFQ (POPFD).
//!
//! Privilege rules (SDM POPF, CLI, STI): POPF changes IOPL only at CPL 0 and IF only when
//! CPL <= IOPL (silently keeping them otherwise); VM, VIF and VIP are never changed and RF is
//! cleared. CLI/STI at CPL > IOPL raise #GP(0) (the VME/PVI virtual-interrupt variants are not
//! modelled). The pushed image has VM and RF clear.
//!
//! A POPF that changes IF or TF, and an STI that sets IF, complete and then stop the block with
//! `Stop::Yield`, so the machine loop sees the new interrupt window at once. STI's one-instruction
//! interrupt shadow and single-stepping (TF traps) are the machine loop's business and not
//! modelled here.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{ExecResult, Fault, Stop};
use crate::flags::{LazyFlags, Width, W16, W32, W64};
use crate::state::rflags;
use iced_x86::Code as C;

pub fn exec_clc(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    cpu.state.lazy.force_cf(false);
    Ok(())
}

pub fn exec_stc(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    cpu.state.lazy.force_cf(true);
    Ok(())
}

pub fn exec_cmc(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let cf = cpu.state.lazy.cf();
    cpu.state.lazy.force_cf(!cf);
    Ok(())
}

pub fn exec_cld(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    cpu.state.rflags_other &= !rflags::DF;
    Ok(())
}

pub fn exec_std(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    cpu.state.rflags_other |= rflags::DF;
    Ok(())
}

/// IOPL from RFLAGS.
#[inline(always)]
fn iopl(cpu: &Cpu) -> u8 {
    ((cpu.state.rflags_other & rflags::IOPL) >> 12) as u8
}

pub fn exec_cli(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    if cpu.state.cpl > iopl(cpu) {
        return Err(Stop::Fault(Fault::gp0()));
    }
    cpu.state.rflags_other &= !rflags::IF;
    Ok(())
}

pub fn exec_sti(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    if cpu.state.cpl > iopl(cpu) {
        return Err(Stop::Fault(Fault::gp0()));
    }
    if cpu.state.rflags_other & rflags::IF == 0 {
        cpu.state.rflags_other |= rflags::IF;
        cpu.state.rip = e.next_rip;
        cpu.interrupt_shadow = true;
        return Err(Stop::Yield);
    }
    Ok(())
}

/// `lahf`: AH = SF:ZF:0:AF:0:PF:1:CF.
pub fn exec_lahf(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let f = cpu.state.lazy.materialize() & 0xd5 | rflags::FIXED1;
    cpu.set::<crate::flags::W8>(16, f);
    Ok(())
}

/// `sahf`: SF, ZF, AF, PF, CF from AH; OF unchanged.
pub fn exec_sahf(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    let ah = cpu.get::<crate::flags::W8>(16);
    let f = cpu.state.lazy.materialize();
    cpu.state.lazy = LazyFlags::from_rflags((f & rflags::OF) | (ah & 0xd5));
    Ok(())
}

/// `pushf` with a `W`-sized image (VM and RF read as 0).
pub fn exec_pushf<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let f = cpu.state.rflags() & !(rflags::VM | rflags::RF);
    cpu.push::<W>(e, f & W::MASK)
}

/// Bits POPF may change at CPL 3 with IOPL < 3 (IF and IOPL are added when privilege allows).
const POPF_USER: u64 = rflags::ARITH | rflags::TF | rflags::DF | rflags::NT | rflags::AC | rflags::ID;

/// `popf` of a `W`-sized image.
pub fn exec_popf<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let v = cpu.peek::<W>(e, 0)?;
    let rsp = cpu.state.gpr[crate::state::gpr::RSP].wrapping_add(W::BYTES as u64);
    cpu.set_rsp(e, rsp);
    let mut mask = POPF_USER;
    if cpu.state.cpl == 0 {
        mask |= rflags::IOPL;
    }
    if cpu.state.cpl <= iopl(cpu) {
        mask |= rflags::IF;
    }
    mask &= W::MASK;
    let old = cpu.state.rflags();
    // RF is cleared by the 32- and 64-bit forms; a 16-bit image does not reach it.
    let rf = if W::BITS > 16 { rflags::RF } else { 0 };
    let new = (old & !mask & !rf) | (v & mask);
    cpu.state.set_rflags(new);
    if (old ^ new) & (rflags::IF | rflags::TF) != 0 {
        cpu.state.rip = e.next_rip;
        return Err(Stop::Yield);
    }
    Ok(())
}

const FLAG_CTRL: &[Row] = &[
    Row::reg(C::Clc, exec_clc),
    Row::reg(C::Stc, exec_stc),
    Row::reg(C::Cmc, exec_cmc),
    Row::reg(C::Cld, exec_cld),
    Row::reg(C::Std, exec_std),
    Row::reg(C::Cli, exec_cli),
    Row::reg(C::Sti, exec_sti),
    Row::reg(C::Lahf, exec_lahf),
    Row::reg(C::Sahf, exec_sahf),
    Row::reg(C::Pushfq, exec_pushf::<W64>),
    Row::reg(C::Pushfd, exec_pushf::<W32>),
    Row::reg(C::Pushfw, exec_pushf::<W16>),
    Row::reg(C::Popfq, exec_popf::<W64>),
    Row::reg(C::Popfd, exec_popf::<W32>),
    Row::reg(C::Popfw, exec_popf::<W16>),
];

pub(crate) const ROWS: &[&[Row]] = &[FLAG_CTRL];

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::hosttest::{check, host, values, Guest, Regs, FLAGS};
    use crate::exception::{vector, Stop};
    use crate::state::rflags;

    fn cases() -> Vec<Regs> {
        let mut out = Vec::new();
        for f in 0..64u64 {
            // Spread the six bits over CF, PF, AF, ZF, SF, OF, plus DF on odd ones.
            let bits = [rflags::CF, rflags::PF, rflags::AF, rflags::ZF, rflags::SF, rflags::OF];
            let fl = bits.iter().enumerate().filter(|(i, _)| f >> i & 1 == 1).fold(0, |a, (_, b)| a | b);
            let fl = if f % 3 == 0 { fl | rflags::DF } else { fl };
            out.push(Regs { rax: f.wrapping_mul(0x0123_4567_89ab_cdef), flags: fl, ..Default::default() });
        }
        out
    }

    #[test]
    fn flag_instructions_match_the_host() {
        for code in [host!("clc"), host!("stc"), host!("cmc"), host!("std"), host!("cld"), host!("lahf"), host!("sahf")]
        {
            check(code, cases(), FLAGS);
        }
        check(host!("sahf", "lahf", "cmc", "lahf"), cases(), FLAGS);
        check(host!("pushfq", "pop rcx"), cases(), FLAGS);
        check(host!("pushfw", "pop dx"), cases(), FLAGS);
    }

    #[test]
    fn popf_at_cpl3_matches_the_host() {
        // Images with IOPL, IF clear, NT, ID, VM/VIF/VIP, RF and reserved bits; never TF or AC
        // (they would trap or make the test's own accesses fault on the host).
        let mut inputs = Vec::new();
        let extra = [
            0,
            rflags::IOPL,
            rflags::NT,
            rflags::ID,
            rflags::VM | rflags::VIF | rflags::VIP,
            rflags::RF,
            0x8028,
            rflags::IF,
        ];
        for r in cases() {
            for (i, &x) in extra.iter().enumerate() {
                let img = (r.rax & (rflags::ARITH | rflags::DF)) | x | if i % 2 == 0 { rflags::IF } else { 0 };
                inputs.push(Regs { rcx: img, ..r });
            }
        }
        check(host!("push rcx", "popfq", "pushfq", "pop rdx"), inputs.clone(), FLAGS);
        check(host!("push cx", "popfw", "pushfq", "pop rdx"), inputs, FLAGS);
        let _ = values(8, 0);
    }

    #[test]
    fn cli_sti_fault_at_cpl3_and_sti_opens_the_window_at_cpl0() {
        // SDM CLI/STI: #GP(0) if CPL > IOPL (protected mode, VME/PVI off).
        let mut g = Guest::new();
        assert_eq!(g.fault(&[0xfa], &Regs::default()).vector, vector::GP);
        assert_eq!(g.fault(&[0xfb], &Regs::default()).vector, vector::GP);
        g.load(&Regs::default());
        g.cpu.state.cpl = 0;
        assert_eq!(g.exec(&[0xfa]), Ok(()));
        assert_eq!(g.cpu.state.rflags() & rflags::IF, 0);
        assert_eq!(g.exec(&[0xfb]), Err(Stop::Yield));
        assert_ne!(g.cpu.state.rflags() & rflags::IF, 0);
    }
}
