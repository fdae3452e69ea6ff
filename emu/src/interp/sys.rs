//! System instructions (tier 0), SDM Vol. 2 and Vol. 3 chapters 2, 5, 6:
//! MOV to/from CR0/CR2/CR3/CR4/CR8 and DR0-7, LGDT/LIDT/SGDT/SIDT, LLDT/LTR/SLDT/STR,
//! LMSW/SMSW/CLTS, INVLPG, WBINVD/INVD, RDMSR/WRMSR, INT n/INTO, IRET/IRETD/IRETQ, far JMP/CALL/RET,
//! SYSRET, SWAPGS, LAR/LSL/VERR/VERW.
//!
//! Instructions that change how the following code decodes or translates (CR writes, WRMSR, far
//! transfers, IRET) end the block with `Stop::Yield` after setting RIP, so the next block is
//! looked up under the new mode. Not implemented (they raise #UD): call and task gates,
//! XSETBV. SYSENTER/SYSEXIT are in `sysenter.rs`.

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{vector, ExecResult, Fault, Stop};
use crate::flags::{Width, W16, W32, W64};
use crate::state::{attr, ctrl, rflags, SegReg, Segment};
use iced_x86::Code as C;

#[inline(always)]
fn require_cpl0(cpu: &Cpu) -> ExecResult {
    if cpu.state.cpl != 0 {
        return Err(Stop::Fault(Fault::gp0()));
    }
    Ok(())
}

/// Completes an instruction that changed the mode or the translation: RIP to the next
/// instruction, back to the machine loop.
#[inline(always)]
fn done_yield(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.state.rip = e.next_rip;
    Err(Stop::Yield)
}

// ---- control and debug registers -------------------------------------------------------------

/// `mov r, crN`: `e.src` is the control register number.
pub fn exec_mov_r_cr(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    require_cpl0(cpu)?;
    let v = match e.src {
        0 => cpu.state.cr0,
        2 => cpu.state.cr2,
        3 => cpu.state.cr3,
        4 => cpu.state.cr4,
        8 => cpu.state.cr8,
        _ => return Err(Stop::Fault(Fault::ud())),
    };
    cpu.state.gpr[(e.dst & 15) as usize] = if e.lmask == u64::MAX { v } else { v & 0xffff_ffff };
    Ok(())
}

/// `mov crN, r`
pub fn exec_mov_cr_r(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    require_cpl0(cpu)?;
    let mut v = cpu.state.gpr[(e.src & 15) as usize];
    if e.lmask != u64::MAX {
        v &= 0xffff_ffff;
    }
    match e.dst {
        0 => cpu.write_cr0(v)?,
        2 => cpu.state.cr2 = v,
        3 => cpu.write_cr3(v)?,
        4 => cpu.write_cr4(v)?,
        8 => {
            if v > 15 {
                return Err(Stop::Fault(Fault::gp0()));
            }
            cpu.state.cr8 = v;
        }
        _ => return Err(Stop::Fault(Fault::ud())),
    }
    done_yield(cpu, e)
}

/// DR6 bits that read as 1 whatever is written: 4-11 and 16-31 (no RTM, no bus-lock
/// detection: SDM Vol. 3, 18.2.3).
const DR6_FIXED1: u64 = 0xffff_0ff0;
/// DR6 bits software can write: B0-B3, BD, BS, BT.
const DR6_WRITABLE: u64 = 0xe00f;
/// DR7 bit 10 reads as 1; bits 11, 12, 14 and 15 read as 0 (SDM Vol. 3, 18.2.4).
const DR7_FIXED1: u64 = 0x400;
const DR7_WRITABLE: u64 = 0xffff_23ff;

/// The debug register a MOV names: DR4 and DR5 alias DR6 and DR7 while CR4.DE is clear, and
/// raise #UD while it is set (SDM Vol. 3, 18.2.2); DR8-DR15 do not exist (#UD).
fn debug_register(cpu: &Cpu, n: u32) -> Result<usize, Stop> {
    match n {
        0..=3 | 6 | 7 => Ok(n as usize),
        4 | 5 if cpu.state.cr4 & CR4_DE == 0 => Ok(n as usize + 2),
        _ => Err(Stop::Fault(Fault::ud())),
    }
}

/// CR4.DE (debugging extensions).
const CR4_DE: u64 = 1 << 3;

/// DR7.GD (general detect) and DR6.BD: with GD set, any MOV DR is a #DB fault that reports
/// BD and clears GD, so the handler may use the debug registers (SDM Vol. 3, 18.2.4, 18.3.1.5).
fn general_detect(cpu: &mut Cpu) -> ExecResult {
    const DR7_GD: u64 = 1 << 13;
    const DR6_BD: u64 = 1 << 13;
    if cpu.state.dr[7] & DR7_GD != 0 {
        cpu.state.dr[7] &= !DR7_GD;
        cpu.state.dr[6] |= DR6_BD;
        return Err(Stop::Fault(Fault::new(vector::DB)));
    }
    Ok(())
}

pub fn exec_mov_r_dr(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let n = debug_register(cpu, u32::from(e.src))?;
    require_cpl0(cpu)?;
    general_detect(cpu)?;
    let v = cpu.state.dr[n];
    cpu.state.gpr[(e.dst & 15) as usize] = v;
    Ok(())
}

pub fn exec_mov_dr_r(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let n = debug_register(cpu, u32::from(e.dst))?;
    require_cpl0(cpu)?;
    general_detect(cpu)?;
    let mut v = cpu.state.gpr[(e.src & 15) as usize];
    if e.lmask != u64::MAX {
        v &= 0xffff_ffff;
    }
    cpu.state.dr[n] = match n {
        // In 64-bit mode a 1 in bits 63:32 of DR6 or DR7 is #GP(0) (SDM Vol. 2, MOV DR).
        6 | 7 if v >> 32 != 0 => return Err(Stop::Fault(Fault::gp0())),
        6 => (v & DR6_WRITABLE) | DR6_FIXED1,
        7 => (v & DR7_WRITABLE) | DR7_FIXED1,
        _ => v,
    };
    if n == 7 {
        // Back to the machine, which steps instruction by instruction while DR7 enables a
        // breakpoint (`machine/single_step.rs`; translated code must not run on past it).
        return done_yield(cpu, e);
    }
    Ok(())
}

/// `clts`
pub fn exec_clts(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    require_cpl0(cpu)?;
    cpu.state.cr0 &= !ctrl::CR0_TS;
    Ok(())
}

/// The 16-bit source of LMSW, LLDT, LTR, VERR and VERW (`r/m16` in operand position 0): the
/// row picks the register (`MEM = false`) or memory form from the decoded operand, so no
/// handler guesses it from the addressing fields (an absolute `[0]` has no base, no index and
/// displacement 0, like a register form would).
#[inline(always)]
fn rm16_operand<const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> Result<u16, Stop> {
    Ok(if MEM { cpu.read::<W16>(cpu.ea(e))? } else { cpu.get::<W16>(e.dst) } as u16)
}

/// `lmsw r/m16`: sets PE (cannot clear it), MP, EM, TS.
pub fn exec_lmsw<const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    require_cpl0(cpu)?;
    let v = rm16_operand::<MEM>(cpu, e)? as u64;
    let cr0 = (cpu.state.cr0 & !0xe) | (v & 0xf) | (cpu.state.cr0 & 1);
    cpu.write_cr0(cr0)?;
    done_yield(cpu, e)
}

pub fn exec_smsw_r<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.set::<W>(e.dst, cpu.state.cr0 & W::MASK);
    Ok(())
}

pub fn exec_smsw_m(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.write::<W16>(cpu.ea(e), cpu.state.cr0 & 0xffff)
}

pub fn exec_invlpg(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    require_cpl0(cpu)?;
    let la = cpu.ea(e);
    cpu.softmmu.flush_tlb_page(la);
    done_yield(cpu, e)
}

pub fn exec_wbinvd(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    require_cpl0(cpu)
}

// ---- descriptor tables -------------------------------------------------------------------------

/// `lgdt m` / `lidt m`: 16-bit limit then a 64-bit (64-bit mode) or 32-bit base.
pub fn exec_lgdt_lidt<const IDT: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    require_cpl0(cpu)?;
    let la = cpu.ea(e);
    let limit = cpu.read::<W16>(la)? as u16;
    let base = if e.lmask == u64::MAX {
        cpu.read::<W64>(la.wrapping_add(2))?
    } else {
        let b = cpu.read::<W32>(la.wrapping_add(2))?;
        if e.opsize == 2 {
            b & 0xff_ffff
        } else {
            b
        }
    };
    if e.lmask == u64::MAX && !crate::mmu::walk::is_canonical(base) {
        return Err(Stop::Fault(Fault::gp0()));
    }
    let t = if IDT { &mut cpu.state.idtr } else { &mut cpu.state.gdtr };
    t.limit = limit;
    t.base = base;
    Ok(())
}

/// `sgdt m` / `sidt m`
pub fn exec_sgdt_sidt<const IDT: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let t = if IDT { cpu.state.idtr } else { cpu.state.gdtr };
    let la = cpu.ea(e);
    // Check the whole 10 (or 6) byte store before writing.
    let size = if e.lmask == u64::MAX { 10 } else { 6 };
    cpu.translate_rmw::<W16>(la)?;
    cpu.translate_rmw::<W32>(la.wrapping_add(size - 4))?;
    cpu.write::<W16>(la, t.limit as u64)?;
    if size == 10 {
        cpu.write::<W64>(la.wrapping_add(2), t.base)
    } else {
        cpu.write::<W32>(la.wrapping_add(2), t.base & 0xffff_ffff)
    }
}

/// `lldt r/m16`
pub fn exec_lldt<const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    require_cpl0(cpu)?;
    let sel = rm16_operand::<MEM>(cpu, e)?;
    if sel & !3 == 0 {
        cpu.state.ldtr = Segment { selector: sel, ..Segment::default() };
        return Ok(());
    }
    if sel & 4 != 0 {
        return Err(Stop::Fault(Fault::with_code(vector::GP, (sel & !3) as u32)));
    }
    let long = cpu.state.efer & ctrl::EFER_LMA != 0;
    let d = cpu.read_descriptor(sel, long)?;
    if d.is_code_or_data() || d.system_type() != 2 {
        return Err(Stop::Fault(Fault::with_code(vector::GP, (sel & !3) as u32)));
    }
    if !d.present() {
        return Err(Stop::Fault(Fault::with_code(vector::NP, (sel & !3) as u32)));
    }
    let mut seg = d.to_segment(sel);
    if long {
        seg.base |= (d.hi & 0xffff_ffff) << 32;
        // A non-canonical base in the 16-byte descriptor is #GP(selector) (SDM Vol. 2, LLDT).
        if !crate::mmu::walk::is_canonical(seg.base) {
            return Err(Stop::Fault(Fault::with_code(vector::GP, (sel & !3) as u32)));
        }
    }
    cpu.state.ldtr = seg;
    Ok(())
}

/// `ltr r/m16`: loads an available TSS and marks it busy.
pub fn exec_ltr<const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    require_cpl0(cpu)?;
    let sel = rm16_operand::<MEM>(cpu, e)?;
    if sel & !3 == 0 || sel & 4 != 0 {
        return Err(Stop::Fault(Fault::with_code(vector::GP, (sel & !3) as u32)));
    }
    let long = cpu.state.efer & ctrl::EFER_LMA != 0;
    let d = cpu.read_descriptor(sel, long)?;
    // Available 32/64-bit TSS is type 9 (type 1 is a 16-bit TSS, not supported in long mode).
    if d.is_code_or_data() || !(d.system_type() == 9 || (!long && d.system_type() == 1)) {
        return Err(Stop::Fault(Fault::with_code(vector::GP, (sel & !3) as u32)));
    }
    if !d.present() {
        return Err(Stop::Fault(Fault::with_code(vector::NP, (sel & !3) as u32)));
    }
    let mut seg = d.to_segment(sel);
    seg.attr |= 2;
    if long {
        seg.base |= (d.hi & 0xffff_ffff) << 32;
        // A non-canonical base is #GP(selector), before the busy bit is set (SDM Vol. 2, LTR).
        if !crate::mmu::walk::is_canonical(seg.base) {
            return Err(Stop::Fault(Fault::with_code(vector::GP, (sel & !3) as u32)));
        }
    }
    let la = cpu.state.gdtr.base.wrapping_add((sel & !7) as u64 + 5);
    let access = cpu.sys_read::<crate::flags::W8>(la)?;
    cpu.sys_write::<crate::flags::W8>(la, access | 2)?;
    cpu.state.tr = seg;
    Ok(())
}

/// `sldt r` / `str r`: the selector zero-extended to the register's width.
pub fn exec_sldt_str_r<const TR: bool, W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let sel = if TR { cpu.state.tr.selector } else { cpu.state.ldtr.selector } as u64;
    cpu.set::<W>(e.dst, sel);
    Ok(())
}

/// `sldt m16` / `str m16`
pub fn exec_sldt_str_m<const TR: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let sel = if TR { cpu.state.tr.selector } else { cpu.state.ldtr.selector } as u64;
    cpu.write::<W16>(cpu.ea(e), sel)
}

// ---- LAR / LSL / VERR / VERW ----------------------------------------------------------------

/// The descriptor `sel` names if it is visible at the current privilege (DPL >= max(CPL, RPL),
/// or conforming code), for the four "probe" instructions; `None` sets ZF = 0.
fn probe_descriptor(cpu: &mut Cpu, sel: u16) -> Result<Option<super::super::system::descriptor::Descriptor>, Stop> {
    if sel & !3 == 0 || !cpu.protected_mode() {
        return Ok(None);
    }
    let d = match cpu.read_descriptor(sel, false) {
        Ok(d) => d,
        Err(Stop::Fault(f)) if f.vector == vector::GP => return Ok(None), // beyond the limit
        Err(e) => return Err(e),
    };
    let conforming = d.is_code() && d.attr() & crate::system::descriptor::TYPE_CONFORMING != 0;
    if !conforming && d.dpl() < cpu.state.cpl.max((sel & 3) as u8) {
        return Ok(None);
    }
    Ok(Some(d))
}

/// `verr` / `verw r/m16`: ZF = the segment is readable / writable at this privilege.
pub fn exec_verr_verw<const WRITE: bool, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let sel = rm16_operand::<MEM>(cpu, e)?;
    let ok = match probe_descriptor(cpu, sel)? {
        Some(d) if d.is_code_or_data() => {
            let a = d.attr();
            if d.is_code() {
                !WRITE && a & crate::system::descriptor::TYPE_WRITABLE != 0
            } else {
                !WRITE || a & crate::system::descriptor::TYPE_WRITABLE != 0
            }
        }
        _ => false,
    };
    cpu.state.lazy.force_zf(ok);
    Ok(())
}

/// The selector operand of LAR/LSL (`r, r/m16`: the register or memory is the second operand).
fn probe_source<const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> Result<u16, Stop> {
    Ok(if MEM { cpu.read::<W16>(cpu.ea(e))? } else { cpu.get::<W16>(e.src) } as u16)
}

/// `lar r, r/m16`: access rights (descriptor bytes 5-6 masked as the SDM gives) when visible.
pub fn exec_lar<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let sel = probe_source::<MEM>(cpu, e)?;
    let d = probe_descriptor(cpu, sel)?
        .filter(|d| d.is_code_or_data() || matches!(d.system_type(), 1 | 2 | 3 | 9 | 0xb | 0xc));
    match d {
        Some(d) => {
            cpu.set::<W>(e.dst, (d.lo >> 32) & 0x00f0_ff00 & W::MASK);
            cpu.state.lazy.force_zf(true);
        }
        None => cpu.state.lazy.force_zf(false),
    }
    Ok(())
}

/// `lsl r, r/m16`: the segment limit in bytes when visible.
pub fn exec_lsl<W: Width, const MEM: bool>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let sel = probe_source::<MEM>(cpu, e)?;
    let d =
        probe_descriptor(cpu, sel)?.filter(|d| d.is_code_or_data() || matches!(d.system_type(), 1 | 2 | 3 | 9 | 0xb));
    match d {
        Some(d) => {
            cpu.set::<W>(e.dst, d.limit() as u64 & W::MASK);
            cpu.state.lazy.force_zf(true);
        }
        None => cpu.state.lazy.force_zf(false),
    }
    Ok(())
}

// ---- MSRs --------------------------------------------------------------------------------------

pub fn exec_rdmsr(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    require_cpl0(cpu)?;
    let v = cpu.read_msr(cpu.state.gpr[1] as u32)?;
    cpu.state.gpr[0] = v & 0xffff_ffff;
    cpu.state.gpr[2] = v >> 32;
    Ok(())
}

pub fn exec_wrmsr(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    require_cpl0(cpu)?;
    let v = (cpu.state.gpr[2] << 32) | (cpu.state.gpr[0] & 0xffff_ffff);
    cpu.write_msr(cpu.state.gpr[1] as u32, v)?;
    done_yield(cpu, e)
}

// ---- software interrupts and returns -------------------------------------------------------

/// `int imm8`
pub fn exec_int_n(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    cpu.soft_int_rip = e.rip();
    cpu.state.rip = e.next_rip;
    Err(Stop::SoftInt(e.imm as u8))
}

/// `into`: #OF trap when OF is set (invalid in 64-bit mode; iced reports it invalid there).
pub fn exec_into(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    if cpu.state.lazy.of() {
        cpu.soft_int_rip = e.rip();
        cpu.state.rip = e.next_rip;
        return Err(Stop::SoftInt(vector::OF));
    }
    Ok(())
}

/// Applies an RFLAGS image popped by IRET/POPF with the privilege rules (SDM IRET: IOPL only at
/// CPL 0, IF only when CPL <= IOPL; VM/VIF/VIP not supported).
fn set_rflags_privileged(cpu: &mut Cpu, new: u64, width_mask: u64) {
    let old = cpu.state.rflags();
    let cpl = cpu.state.cpl as u64;
    let iopl = (old & rflags::IOPL) >> 12;
    let mut changeable = rflags::ARITH
        | rflags::TF
        | rflags::DF
        | rflags::NT
        | rflags::RF
        | rflags::AC
        | rflags::ID
        | rflags::IF
        | rflags::IOPL;
    if cpl > 0 {
        changeable &= !rflags::IOPL;
    }
    if cpl > iopl {
        changeable &= !rflags::IF;
    }
    changeable &= width_mask;
    cpu.state.set_rflags((old & !changeable) | (new & changeable));
}

/// `iret` / `iretd` / `iretq`: W is the operand size.
pub fn exec_iret<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let n = W::BYTES as u64;
    if !cpu.protected_mode() {
        let ip = cpu.peek::<W>(e, 0)?;
        let cs = cpu.peek::<W>(e, n)? as u16;
        let fl = cpu.peek::<W>(e, 2 * n)?;
        let rsp = cpu.state.gpr[4].wrapping_add(3 * n);
        cpu.set_rsp(e, rsp);
        let c = &mut cpu.state.segs[SegReg::Cs as usize];
        c.selector = cs;
        c.base = (cs as u64) << 4;
        let keep = cpu.state.rflags() & !(W::MASK & 0x3f_7fd5);
        cpu.state.set_rflags(keep | (fl & W::MASK & 0x3f_7fd5));
        cpu.state.rip = ip & W::MASK;
        return Err(Stop::Yield);
    }
    if cpu.state.rflags_other & rflags::NT != 0 && cpu.state.efer & ctrl::EFER_LMA == 0 {
        return Err(Stop::Fault(Fault::gp0())); // task return: not modelled
    }
    let rip = cpu.peek::<W>(e, 0)?;
    let cs_sel = cpu.peek::<W>(e, n)? as u16;
    let fl = cpu.peek::<W>(e, 2 * n)?;
    let rpl = (cs_sel & 3) as u8;
    let long = cpu.state.in_64bit_mode();
    let outer = rpl > cpu.state.cpl;
    let (new_rsp, ss_sel) = if long || outer {
        (cpu.peek::<W>(e, 3 * n)?, Some(cpu.peek::<W>(e, 4 * n)? as u16))
    } else {
        (cpu.state.gpr[4].wrapping_add(3 * n), None)
    };
    let (cs, new_cpl) = cpu.check_code_segment(cs_sel, rpl, true)?;
    let old_cpl = cpu.state.cpl;
    // Commit: flags under the old CPL's privilege, then CS/CPL, then the stack.
    set_rflags_privileged(cpu, fl, W::MASK);
    cpu.set_cs(cs, new_cpl);
    if let Some(ss) = ss_sel {
        if ss & !3 == 0 && long && new_cpl < 3 {
            let s = &mut cpu.state.segs[SegReg::Ss as usize];
            s.selector = ss;
            s.attr = attr::P | attr::S | 0x3 | (new_cpl as u16) << attr::DPL_SHIFT;
        } else if let Err(f) = cpu.load_sreg(SegReg::Ss, ss) {
            // Undo the CS change: the instruction must fault with no side effects.
            cpu.state.cpl = old_cpl;
            return Err(f);
        }
        cpu.state.gpr[4] = if W::BITS == 64 { new_rsp } else { new_rsp & W::MASK };
    } else {
        cpu.set_rsp(e, new_rsp);
    }
    if new_cpl > old_cpl {
        // Data segments the new privilege may not use become null (SDM IRET, RETURN-TO-OUTER).
        for s in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
            let seg = &mut cpu.state.segs[s as usize];
            let code_conforming = seg.attr & 0x8 != 0 && seg.attr & 0x4 != 0;
            if seg.attr & attr::P != 0 && !code_conforming && seg.dpl() < new_cpl {
                seg.selector = 0;
                seg.attr = 0;
            }
        }
    }
    // IRET ends NMI blocking (SDM Vol. 3, 6.7.1), even one that faults nowhere after here.
    cpu.nmi_blocked = false;
    cpu.state.rip = if long { rip } else { rip & 0xffff_ffff };
    Err(Stop::Yield)
}

// ---- far transfers -----------------------------------------------------------------------------

fn far_jump(cpu: &mut Cpu, sel: u16, off: u64) -> ExecResult {
    let cpl = cpu.state.cpl;
    let (cs, cpl) = cpu.check_code_segment(sel, cpl, false)?;
    cpu.set_cs(cs, cpl);
    cpu.state.rip = if cpu.state.code_bits() == 64 { off } else { off & 0xffff_ffff };
    Err(Stop::Yield)
}

/// `jmp ptr16:16/32` (immediate far pointer: selector in `imm` bits 47:32).
pub fn exec_jmp_far_imm(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    far_jump(cpu, (e.imm >> 32) as u16, e.imm & 0xffff_ffff)
}

/// `jmp m16:16/32/64`: W is the offset size.
pub fn exec_jmp_far_m<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let la = cpu.ea(e);
    let off = cpu.read::<W>(la)?;
    let sel = cpu.read::<W16>(la.wrapping_add(W::BYTES as u64))? as u16;
    far_jump(cpu, sel, off)
}

fn far_call<W: Width>(cpu: &mut Cpu, e: &Instr, sel: u16, off: u64) -> ExecResult {
    let cpl = cpu.state.cpl;
    let (cs, cpl) = cpu.check_code_segment(sel, cpl, false)?;
    let old_cs = cpu.state.segs[SegReg::Cs as usize].selector as u64;
    let rsp = cpu.state.gpr[4];
    cpu.push::<W>(e, old_cs)?;
    if let Err(f) = cpu.push::<W>(e, e.next_rip) {
        cpu.state.gpr[4] = rsp;
        return Err(f);
    }
    cpu.set_cs(cs, cpl);
    cpu.state.rip = off & W::MASK;
    Err(Stop::Yield)
}

pub fn exec_call_far_imm<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    far_call::<W>(cpu, e, (e.imm >> 32) as u16, e.imm & 0xffff_ffff)
}

pub fn exec_call_far_m<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let la = cpu.ea(e);
    let off = cpu.read::<W>(la)?;
    let sel = cpu.read::<W16>(la.wrapping_add(W::BYTES as u64))? as u16;
    far_call::<W>(cpu, e, sel, off)
}

/// `retf` / `retf imm16`
pub fn exec_retf<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    let n = W::BYTES as u64;
    let off = cpu.peek::<W>(e, 0)?;
    let sel = cpu.peek::<W>(e, n)? as u16;
    let rpl = (sel & 3) as u8;
    let outer = cpu.protected_mode() && rpl > cpu.state.cpl;
    let release = e.imm & 0xffff;
    let (cs, new_cpl) = cpu.check_code_segment(sel, rpl, true)?;
    if outer {
        let rsp = cpu.peek::<W>(e, 2 * n + release)?;
        let ss = cpu.peek::<W>(e, 3 * n + release)? as u16;
        let old_cpl = cpu.state.cpl;
        cpu.set_cs(cs, new_cpl);
        if let Err(f) = cpu.load_sreg(SegReg::Ss, ss) {
            cpu.state.cpl = old_cpl;
            return Err(f);
        }
        cpu.state.gpr[4] = rsp.wrapping_add(release);
    } else {
        cpu.set_cs(cs, new_cpl);
        let rsp = cpu.state.gpr[4].wrapping_add(2 * n + release);
        cpu.set_rsp(e, rsp);
    }
    cpu.state.rip = off & W::MASK;
    Err(Stop::Yield)
}

// ---- SYSCALL/SYSRET/SWAPGS (IA-32e) ----------------------------------------------------------

/// SYSCALL in a system-level guest (SDM Vol. 2, SYSCALL).
pub fn syscall_system(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    // AMD CPUs also take SYSCALL in compatibility mode, to IA32_CSTAR (APM Vol. 3, SYSCALL:
    // "Long Mode, Compatibility Mode: RIP = CSTAR"); Intel's raise #UD there (SDM Vol. 2).
    let compat = cpu.state.efer & ctrl::EFER_LMA != 0
        && !cpu.state.in_64bit_mode()
        && cpu.config.model.vendor == crate::system::cpu_model::Vendor::Amd;
    if cpu.state.efer & ctrl::EFER_SCE == 0 || !(cpu.state.in_64bit_mode() || compat) {
        return Err(Stop::Fault(Fault::ud()));
    }
    let star = cpu.state.msr.star;
    cpu.state.gpr[1] = e.next_rip;
    cpu.state.gpr[11] = cpu.state.rflags() & !rflags::RF;
    let sel = ((star >> 32) & 0xfffc) as u16;
    cpu.state.segs[SegReg::Cs as usize] = Segment::flat_code64(sel, 0);
    let mut ss = Segment::flat_data(sel + 8, 0);
    ss.attr |= 1; // accessed
    cpu.state.segs[SegReg::Ss as usize] = ss;
    cpu.state.cpl = 0;
    let f = cpu.state.rflags() & !cpu.state.msr.sfmask & !rflags::RF;
    cpu.state.set_rflags(f);
    cpu.state.rip = if compat { cpu.state.msr.cstar } else { cpu.state.msr.lstar };
    cpu.rflags_loaded = true;
    Err(Stop::Yield)
}

/// `sysret` (W = 64: to 64-bit code; W = 32: to compatibility mode)
pub fn exec_sysret<W: Width>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    if cpu.state.efer & ctrl::EFER_SCE == 0 || !cpu.state.in_64bit_mode() {
        return Err(Stop::Fault(Fault::ud()));
    }
    require_cpl0(cpu)?;
    let rip = cpu.state.gpr[1];
    if W::BITS == 64 && !crate::mmu::walk::is_canonical(rip) {
        return Err(Stop::Fault(Fault::gp0()));
    }
    let base = ((cpu.state.msr.star >> 48) & 0xffff) as u16;
    if W::BITS == 64 {
        cpu.state.segs[SegReg::Cs as usize] = Segment::flat_code64((base + 16) | 3, 3);
    } else {
        let mut cs = Segment::flat_data(base | 3, 3);
        cs.attr = (cs.attr & !0xf) | 0xb;
        cpu.state.segs[SegReg::Cs as usize] = cs;
    }
    let ss = &mut cpu.state.segs[SegReg::Ss as usize];
    ss.selector = (base + 8) | 3;
    ss.attr = (ss.attr & !(3 << attr::DPL_SHIFT)) | 3 << attr::DPL_SHIFT;
    cpu.state.cpl = 3;
    let fl = cpu.state.gpr[11];
    cpu.state.set_rflags((fl & 0x3c_7fd7) | rflags::FIXED1);
    cpu.state.rip = if W::BITS == 64 { rip } else { rip & 0xffff_ffff };
    cpu.rflags_loaded = true;
    Err(Stop::Yield)
}

pub fn exec_swapgs(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    require_cpl0(cpu)?;
    let gs = &mut cpu.state.segs[SegReg::Gs as usize].base;
    std::mem::swap(gs, &mut cpu.state.msr.kernel_gs_base);
    Ok(())
}

const CONTROL: &[Row] = &[
    Row::reg(C::Mov_r64_cr, exec_mov_r_cr),
    Row::reg(C::Mov_r32_cr, exec_mov_r_cr),
    Row::reg(C::Mov_cr_r64, exec_mov_cr_r),
    Row::reg(C::Mov_cr_r32, exec_mov_cr_r),
    Row::reg(C::Mov_r64_dr, exec_mov_r_dr),
    Row::reg(C::Mov_r32_dr, exec_mov_r_dr),
    Row::reg(C::Mov_dr_r64, exec_mov_dr_r),
    Row::reg(C::Mov_dr_r32, exec_mov_dr_r),
    Row::reg(C::Clts, exec_clts),
    Row::rm(C::Lmsw_rm16, exec_lmsw::<false>, exec_lmsw::<true>),
    Row::rm(C::Lmsw_r32m16, exec_lmsw::<false>, exec_lmsw::<true>),
    Row::rm(C::Lmsw_r64m16, exec_lmsw::<false>, exec_lmsw::<true>),
    Row::rm(C::Smsw_rm16, exec_smsw_r::<W16>, exec_smsw_m),
    Row::rm(C::Smsw_r32m16, exec_smsw_r::<W32>, exec_smsw_m),
    Row::rm(C::Smsw_r64m16, exec_smsw_r::<W64>, exec_smsw_m),
    Row::mem(C::Invlpg_m, exec_invlpg),
    Row::reg(C::Wbinvd, exec_wbinvd),
    Row::reg(C::Invd, exec_wbinvd),
    Row::reg(C::Rdmsr, exec_rdmsr),
    Row::reg(C::Wrmsr, exec_wrmsr),
];

const TABLES: &[Row] = &[
    Row::mem(C::Lgdt_m1664, exec_lgdt_lidt::<false>),
    Row::mem(C::Lgdt_m1632, exec_lgdt_lidt::<false>),
    Row::mem(C::Lgdt_m1632_16, exec_lgdt_lidt::<false>),
    Row::mem(C::Lidt_m1664, exec_lgdt_lidt::<true>),
    Row::mem(C::Lidt_m1632, exec_lgdt_lidt::<true>),
    Row::mem(C::Lidt_m1632_16, exec_lgdt_lidt::<true>),
    Row::mem(C::Sgdt_m1664, exec_sgdt_sidt::<false>),
    Row::mem(C::Sgdt_m1632, exec_sgdt_sidt::<false>),
    Row::mem(C::Sgdt_m1632_16, exec_sgdt_sidt::<false>),
    Row::mem(C::Sidt_m1664, exec_sgdt_sidt::<true>),
    Row::mem(C::Sidt_m1632, exec_sgdt_sidt::<true>),
    Row::mem(C::Sidt_m1632_16, exec_sgdt_sidt::<true>),
    Row::rm(C::Lldt_rm16, exec_lldt::<false>, exec_lldt::<true>),
    Row::rm(C::Lldt_r32m16, exec_lldt::<false>, exec_lldt::<true>),
    Row::rm(C::Lldt_r64m16, exec_lldt::<false>, exec_lldt::<true>),
    Row::rm(C::Ltr_rm16, exec_ltr::<false>, exec_ltr::<true>),
    Row::rm(C::Ltr_r32m16, exec_ltr::<false>, exec_ltr::<true>),
    Row::rm(C::Ltr_r64m16, exec_ltr::<false>, exec_ltr::<true>),
    Row::rm(C::Sldt_rm16, exec_sldt_str_r::<false, W16>, exec_sldt_str_m::<false>),
    Row::rm(C::Sldt_r32m16, exec_sldt_str_r::<false, W32>, exec_sldt_str_m::<false>),
    Row::rm(C::Sldt_r64m16, exec_sldt_str_r::<false, W64>, exec_sldt_str_m::<false>),
    Row::rm(C::Str_rm16, exec_sldt_str_r::<true, W16>, exec_sldt_str_m::<true>),
    Row::rm(C::Str_r32m16, exec_sldt_str_r::<true, W32>, exec_sldt_str_m::<true>),
    Row::rm(C::Str_r64m16, exec_sldt_str_r::<true, W64>, exec_sldt_str_m::<true>),
];

const PROBES: &[Row] = &[
    Row::rm(C::Verr_rm16, exec_verr_verw::<false, false>, exec_verr_verw::<false, true>),
    Row::rm(C::Verr_r32m16, exec_verr_verw::<false, false>, exec_verr_verw::<false, true>),
    Row::rm(C::Verr_r64m16, exec_verr_verw::<false, false>, exec_verr_verw::<false, true>),
    Row::rm(C::Verw_rm16, exec_verr_verw::<true, false>, exec_verr_verw::<true, true>),
    Row::rm(C::Verw_r32m16, exec_verr_verw::<true, false>, exec_verr_verw::<true, true>),
    Row::rm(C::Verw_r64m16, exec_verr_verw::<true, false>, exec_verr_verw::<true, true>),
    Row::rm(C::Lar_r16_rm16, exec_lar::<W16, false>, exec_lar::<W16, true>),
    Row::rm(C::Lar_r32_r32m16, exec_lar::<W32, false>, exec_lar::<W32, true>),
    Row::rm(C::Lar_r64_r64m16, exec_lar::<W64, false>, exec_lar::<W64, true>),
    Row::rm(C::Lsl_r16_rm16, exec_lsl::<W16, false>, exec_lsl::<W16, true>),
    Row::rm(C::Lsl_r32_r32m16, exec_lsl::<W32, false>, exec_lsl::<W32, true>),
    Row::rm(C::Lsl_r64_r64m16, exec_lsl::<W64, false>, exec_lsl::<W64, true>),
];

const TRANSFERS: &[Row] = &[
    Row::reg(C::Int_imm8, exec_int_n),
    Row::reg(C::Into, exec_into),
    Row::reg(C::Iretw, exec_iret::<W16>),
    Row::reg(C::Iretd, exec_iret::<W32>),
    Row::reg(C::Iretq, exec_iret::<W64>),
    Row::reg(C::Jmp_ptr1616, exec_jmp_far_imm),
    Row::reg(C::Jmp_ptr1632, exec_jmp_far_imm),
    Row::mem(C::Jmp_m1616, exec_jmp_far_m::<W16>),
    Row::mem(C::Jmp_m1632, exec_jmp_far_m::<W32>),
    Row::mem(C::Jmp_m1664, exec_jmp_far_m::<W64>),
    Row::reg(C::Call_ptr1616, exec_call_far_imm::<W16>),
    Row::reg(C::Call_ptr1632, exec_call_far_imm::<W32>),
    Row::mem(C::Call_m1616, exec_call_far_m::<W16>),
    Row::mem(C::Call_m1632, exec_call_far_m::<W32>),
    Row::mem(C::Call_m1664, exec_call_far_m::<W64>),
    Row::reg(C::Retfw, exec_retf::<W16>),
    Row::reg(C::Retfw_imm16, exec_retf::<W16>),
    Row::reg(C::Retfd, exec_retf::<W32>),
    Row::reg(C::Retfd_imm16, exec_retf::<W32>),
    Row::reg(C::Retfq, exec_retf::<W64>),
    Row::reg(C::Retfq_imm16, exec_retf::<W64>),
    Row::reg(C::Sysretd, exec_sysret::<W32>),
    Row::reg(C::Sysretq, exec_sysret::<W64>),
    Row::reg(C::Swapgs, exec_swapgs),
];

pub(crate) const ROWS: &[&[Row]] =
    &[CONTROL, TABLES, PROBES, TRANSFERS, super::access_rights::ROWS, super::sysenter::ROWS];

#[cfg(test)]
mod tests {
    use super::ROWS;
    use crate::decode::table::families;
    use iced_x86::Mnemonic as M;

    /// Every row here with a register and a memory form has one handler per form: none of them
    /// tells the forms apart at run time (an absolute `[0]` looks like a register form to a
    /// handler that checks base, index and displacement).
    #[test]
    fn system_rows_have_a_handler_per_form() {
        for row in ROWS.iter().flat_map(|rows| rows.iter()) {
            if let (Some(reg), Some(mem)) = (row.reg, row.mem) {
                assert_ne!(reg as usize, mem as usize, "{:?} shares one handler for both forms", row.code);
            }
        }
    }

    /// `Row::any` is left only to instructions whose handler has nothing to tell apart: string
    /// and port-string instructions and XLAT (implicit memory operands, no ModRM), MASKMOVDQU
    /// (registers only; the store goes to [rDI]), and the NOP/UD0/UD1 forms, which never touch
    /// their operand.
    #[test]
    fn only_form_independent_instructions_share_one_handler() {
        let form_independent = [
            M::Movsb,
            M::Movsw,
            M::Movsd,
            M::Movsq,
            M::Cmpsb,
            M::Cmpsw,
            M::Cmpsd,
            M::Cmpsq,
            M::Scasb,
            M::Scasw,
            M::Scasd,
            M::Scasq,
            M::Lodsb,
            M::Lodsw,
            M::Lodsd,
            M::Lodsq,
            M::Stosb,
            M::Stosw,
            M::Stosd,
            M::Stosq,
            M::Insb,
            M::Insw,
            M::Insd,
            M::Outsb,
            M::Outsw,
            M::Outsd,
            M::Xlatb,
            M::Maskmovdqu,
            M::Nop,
            M::Reservednop,
            M::Ud0,
            M::Ud1,
        ];
        let mut shared = 0;
        for row in families().iter().flat_map(|f| f.iter()).flat_map(|rows| rows.iter()) {
            if let (Some(reg), Some(mem)) = (row.reg, row.mem) {
                if reg as usize == mem as usize {
                    shared += 1;
                    assert!(
                        form_independent.contains(&row.code.mnemonic()),
                        "{:?} shares one handler for its register and memory forms",
                        row.code
                    );
                }
            }
        }
        assert!(shared > 0);
    }
}
