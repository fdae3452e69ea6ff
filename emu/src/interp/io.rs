//! Port I/O: IN, OUT (immediate and DX forms), INS, OUTS with REP (SDM Vol. 2; Vol. 1 18.5 for
//! the I/O privilege rule). Accesses go to the machine's bus through `Cpu::bus`.
//!
//! Privilege: outside real mode, CPL > IOPL raises #GP(0); the TSS I/O permission bitmap is not
//! consulted (a kernel that grants user ports through it will see #GP instead).

use super::Instr;
use crate::cpu::Cpu;
use crate::decode::table::Row;
use crate::exception::{ExecResult, Fault, Stop};
use crate::flags::{Width, W16, W32, W8};
use crate::state::rflags;
use iced_x86::Code as C;

#[inline(always)]
fn check_io_privilege(cpu: &Cpu) -> ExecResult {
    let iopl = (cpu.state.rflags_other & rflags::IOPL) >> 12;
    if cpu.protected_mode() && cpu.state.cpl as u64 > iopl {
        return Err(Stop::Fault(Fault::gp0()));
    }
    Ok(())
}

/// `in al/ax/eax, imm8`
pub fn exec_in_imm<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let v = cpu.bus.pio_read(e.imm as u8 as u16, W::BYTES as u8) as u64;
    cpu.set::<W>(0, v);
    Ok(())
}

/// `in al/ax/eax, dx`
pub fn exec_in_dx<W: Width>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let port = cpu.state.gpr[2] as u16;
    let v = cpu.bus.pio_read(port, W::BYTES as u8) as u64;
    cpu.set::<W>(0, v);
    Ok(())
}

/// `out imm8, al/ax/eax`
pub fn exec_out_imm<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let v = cpu.get::<W>(0) as u32;
    cpu.bus.pio_write(e.imm as u8 as u16, W::BYTES as u8, v);
    Ok(())
}

/// `out dx, al/ax/eax`
pub fn exec_out_dx<W: Width>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let port = cpu.state.gpr[2] as u16;
    let v = cpu.get::<W>(0) as u32;
    cpu.bus.pio_write(port, W::BYTES as u8, v);
    Ok(())
}

fn asize_mask(e: &Instr) -> u64 {
    match e.asize {
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

fn update_reg(cpu: &mut Cpu, r: usize, v: u64, mask: u64) {
    cpu.state.gpr[r] = (cpu.state.gpr[r] & !mask) | (v & mask);
}

/// `ins m, dx` (REP optional): port to ES:[rDI]. Each element is precise: a faulting store
/// leaves rCX/rDI at the progress so far. The port is read only once the store is known to
/// be possible (translated first), so a fault does not lose an input byte.
pub fn exec_ins<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let m = asize_mask(e);
    let step =
        if cpu.state.rflags_other & rflags::DF != 0 { (W::BYTES as u64).wrapping_neg() } else { W::BYTES as u64 };
    let port = cpu.state.gpr[2] as u16;
    let es = if e.lmask == u64::MAX { super::NO_SEG } else { 0 };
    loop {
        if e.rep != 0 && cpu.state.gpr[1] & m == 0 {
            return Ok(());
        }
        let di = cpu.state.gpr[7] & m;
        let la = cpu.seg_addr(es, di, e.lmask);
        let loc = cpu.translate_rmw::<W>(la)?;
        let v = cpu.bus.pio_read(port, W::BYTES as u8) as u64;
        cpu.write_loc::<W>(loc, v);
        update_reg(cpu, 7, di.wrapping_add(step), m);
        if e.rep == 0 {
            return Ok(());
        }
        let c = (cpu.state.gpr[1] & m).wrapping_sub(1);
        update_reg(cpu, 1, c, m);
    }
}

/// `outs dx, m` (REP optional): DS:[rSI] (or the override) to the port.
pub fn exec_outs<W: Width>(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    check_io_privilege(cpu)?;
    let m = asize_mask(e);
    let step =
        if cpu.state.rflags_other & rflags::DF != 0 { (W::BYTES as u64).wrapping_neg() } else { W::BYTES as u64 };
    let port = cpu.state.gpr[2] as u16;
    loop {
        if e.rep != 0 && cpu.state.gpr[1] & m == 0 {
            return Ok(());
        }
        let si = cpu.state.gpr[6] & m;
        let v = cpu.read::<W>(cpu.seg_addr(e.seg, si, e.lmask))?;
        cpu.bus.pio_write(port, W::BYTES as u8, v as u32);
        update_reg(cpu, 6, si.wrapping_add(step), m);
        if e.rep == 0 {
            return Ok(());
        }
        let c = (cpu.state.gpr[1] & m).wrapping_sub(1);
        update_reg(cpu, 1, c, m);
    }
}

const IO: &[Row] = &[
    Row::reg(C::In_AL_imm8, exec_in_imm::<W8>),
    Row::reg(C::In_AX_imm8, exec_in_imm::<W16>),
    Row::reg(C::In_EAX_imm8, exec_in_imm::<W32>),
    Row::reg(C::In_AL_DX, exec_in_dx::<W8>),
    Row::reg(C::In_AX_DX, exec_in_dx::<W16>),
    Row::reg(C::In_EAX_DX, exec_in_dx::<W32>),
    Row::reg(C::Out_imm8_AL, exec_out_imm::<W8>),
    Row::reg(C::Out_imm8_AX, exec_out_imm::<W16>),
    Row::reg(C::Out_imm8_EAX, exec_out_imm::<W32>),
    Row::reg(C::Out_DX_AL, exec_out_dx::<W8>),
    Row::reg(C::Out_DX_AX, exec_out_dx::<W16>),
    Row::reg(C::Out_DX_EAX, exec_out_dx::<W32>),
    Row::any(C::Insb_m8_DX, exec_ins::<W8>),
    Row::any(C::Insw_m16_DX, exec_ins::<W16>),
    Row::any(C::Insd_m32_DX, exec_ins::<W32>),
    Row::any(C::Outsb_DX_m8, exec_outs::<W8>),
    Row::any(C::Outsw_DX_m16, exec_outs::<W16>),
    Row::any(C::Outsd_DX_m32, exec_outs::<W32>),
];

pub(crate) const ROWS: &[&[Row]] = &[IO];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::IoBus;
    use crate::mem::GuestRam;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Records port writes; reads return port + size.
    struct Probe(Rc<RefCell<Vec<(u16, u8, u32)>>>);
    impl IoBus for Probe {
        fn pio_read(&mut self, port: u16, size: u8) -> u32 {
            port as u32 + size as u32
        }
        fn pio_write(&mut self, port: u16, size: u8, value: u32) {
            self.0.borrow_mut().push((port, size, value));
        }
        fn mmio_read(&mut self, _: u64, _: u8) -> u64 {
            0
        }
        fn mmio_write(&mut self, _: u64, _: u8, _: u64) {}
    }

    fn run(code: &[u8], setup: impl FnOnce(&mut Cpu)) -> (Cpu, Vec<(u16, u8, u32)>) {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut cpu = Cpu::new(GuestRam::new(1 << 20).unwrap());
        cpu.bus = Box::new(Probe(log.clone()));
        // Real mode, CS=0: the bytes at 0x1000.
        cpu.ram.slice_mut(0x1000, code.len()).unwrap().copy_from_slice(code);
        cpu.state.rip = 0x1000;
        setup(&mut cpu);
        crate::interp::Interp::new().run(&mut cpu, code.len() as u64);
        let l = log.borrow().clone();
        (cpu, l)
    }

    #[test]
    fn in_and_out_move_the_accumulator_width_the_encoding_names() {
        // mov dx, 0x3f8 ; out dx, al ; in ax, 0x60 ; hlt
        let (cpu, log) = run(&[0xba, 0xf8, 0x03, 0xee, 0x66, 0xe5, 0x60, 0xf4], |c| c.state.gpr[0] = 0x41);
        assert_eq!(log, vec![(0x3f8, 1, 0x41)]);
        assert_eq!(cpu.state.gpr[0] & 0xffff_ffff, 0x60 + 4, "in eax (66h in 16-bit code), 4 bytes");
    }

    #[test]
    fn rep_outsb_writes_each_byte_and_counts_down() {
        // rep outsb with SI=0x2000, CX=3, DX=0xe9
        let (cpu, log) = run(&[0xf3, 0x6e, 0xf4], |c| {
            c.ram.slice_mut(0x2000, 3).unwrap().copy_from_slice(b"abc");
            c.state.gpr[6] = 0x2000;
            c.state.gpr[1] = 3;
            c.state.gpr[2] = 0xe9;
        });
        assert_eq!(log.iter().map(|x| x.2 as u8).collect::<Vec<_>>(), b"abc");
        assert_eq!(cpu.state.gpr[1], 0);
        assert_eq!(cpu.state.gpr[6], 0x2003);
    }
}
