//! Tests of IN/OUT/INS/OUTS, run through the tier-0 run loop against a recording I/O bus.

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
    let mut it = crate::tier0::Interp::new(cpu);
    it.run(code.len() as u64);
    let l = log.borrow().clone();
    (it.cpu, l)
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
