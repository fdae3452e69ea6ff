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
    crate::tier0::Interp::new().run(&mut cpu, code.len() as u64);
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

/// Serves port reads from a script (then 0xff) and records written values.
#[derive(Clone, Default)]
struct Scripted {
    reads: Rc<RefCell<std::collections::VecDeque<u32>>>,
    writes: Rc<RefCell<Vec<u32>>>,
}
impl IoBus for Scripted {
    fn pio_read(&mut self, _: u16, _: u8) -> u32 {
        self.reads.borrow_mut().pop_front().unwrap_or(0xff)
    }
    fn pio_write(&mut self, _: u16, _: u8, value: u32) {
        self.writes.borrow_mut().push(value);
    }
    fn mmio_read(&mut self, _: u64, _: u8) -> u64 {
        0
    }
    fn mmio_write(&mut self, _: u64, _: u8, _: u64) {}
}

/// INS/OUTS with a 32-bit address size in 64-bit mode, REP and not, both directions, with
/// garbage in bits 63:32 of RSI/RDI/RCX: the host CPU runs the same bytes on port 0x80
/// (the POST diagnostic port: writing it has no effect, reading it is harmless) after
/// ioperm(). The guest's port returns the bytes the host's port gave (read back from where
/// the host stored them), so only where the elements go and how the registers and flags
/// change is compared. Skipped, with a message, where the host refuses ioperm.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn ins_outs_with_a_32_bit_address_size_match_the_host() {
    use crate::interp::hosttest::{host, host_port_and_low_page, Guest, Regs, FLAGS};
    const PORT: u64 = 0x80;
    // The host page; the guest has RAM up to it and the same addresses.
    const LOW: u64 = 0x30_0000;
    let page = match host_port_and_low_page(PORT as u16, LOW) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIP: native port I/O unavailable ({why}); the INS/OUTS host comparison needs it");
            return;
        }
    };
    type HostRun = fn(&mut Regs) -> &'static [u8];
    // (is INS, element size, repeated, host run)
    let ops: [(bool, u64, bool, HostRun); 6] = [
        (false, 1, true, host!(".byte 0x67, 0xf3, 0x6e")),      // rep outsb
        (true, 1, true, host!(".byte 0x67, 0xf3, 0x6c")),       // rep insb
        (false, 1, false, host!(".byte 0x67, 0x6e")),           // outsb
        (true, 1, false, host!(".byte 0x67, 0x6c")),            // insb
        (false, 4, true, host!(".byte 0x67, 0xf3, 0x6f")),      // rep outsd
        (true, 2, true, host!(".byte 0x66, 0x67, 0xf3, 0x6d")), // rep insw
    ];
    let mut failures = Vec::new();
    let mut n = 0;
    for (is_ins, k, rep, host_run) in ops {
        for down in [false, true] {
            for count in [0u64, 1, 3] {
                for hi in [0u64, 0xdead_beef_0000_0000] {
                    let start = LOW + 32;
                    let input = Regs {
                        rsi: hi | start,
                        rdi: hi | start,
                        rcx: hi | count,
                        rdx: PORT,
                        flags: rflags::CF | rflags::ZF | if down { rflags::DF } else { 0 },
                        ..Default::default()
                    };
                    let pattern: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(7).wrapping_add(1)).collect();
                    page[..64].copy_from_slice(&pattern);
                    let mut want = input;
                    let code = host_run(&mut want);
                    let host_mem = page[..64].to_vec();
                    // The elements the instruction moves, in order (relative to LOW).
                    let elems = if rep { count } else { 1 };
                    let offs: Vec<usize> =
                        (0..elems).map(|i| if down { 32 - (i * k) as usize } else { 32 + (i * k) as usize }).collect();
                    let le =
                        |m: &[u8], o: usize| m[o..o + k as usize].iter().rev().fold(0u32, |a, b| a << 8 | *b as u32);
                    let bus = Scripted::default();
                    if is_ins {
                        bus.reads.borrow_mut().extend(offs.iter().map(|&o| le(&host_mem, o)));
                    }
                    let mut g = Guest::with_ram(LOW + 0x1000);
                    g.load(&input);
                    g.cpu.state.rflags_other |= rflags::IOPL; // the host has the port via ioperm
                    g.cpu.ram.slice_mut(LOW, 64).unwrap().copy_from_slice(&pattern);
                    g.cpu.bus = Box::new(bus.clone());
                    let res = g.exec(code);
                    let got = g.save();
                    let guest_mem = g.cpu.ram.slice(LOW, 64).unwrap().to_vec();
                    let out_ok =
                        is_ins || *bus.writes.borrow() == offs.iter().map(|&o| le(&pattern, o)).collect::<Vec<_>>();
                    n += 1;
                    let regs = |r: &Regs| (r.rsi, r.rdi, r.rcx, r.flags & FLAGS);
                    if res.is_err() || regs(&got) != regs(&want) || guest_mem != host_mem || !out_ok {
                        failures.push(format!(
                            "{:02x?} DF={down} count={count:#x} hi={hi:#x}: host (rsi, rdi, rcx, flags) {:x?}, guest {:x?} {res:?}; memory equal: {}, port writes right: {out_ok}",
                            code,
                            regs(&want),
                            regs(&got),
                            guest_mem == host_mem
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {n} cases differ:\n{}", failures.len(), failures.join("\n"));
}

#[cfg(target_arch = "x86_64")]
const RW: u32 = crate::user::aspace::PROT_READ | crate::user::aspace::PROT_WRITE;

/// A #PF in the middle of REP INSB leaves RDI/RCX at the progress so far, so the
/// instruction resumes where it stopped (SDM Vol. 2, REP), and the faulting element's input
/// is not taken from the port.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_fault_in_the_middle_of_rep_insb_keeps_the_progress_and_the_input() {
    use crate::exception::{pf_error, vector};
    use crate::interp::hosttest::{paged_cpu, run1};
    // 0x10000 is writable, 0x11000 is not mapped: 5 bytes from 0x10ffe fault after 2.
    let mut cpu = paged_cpu(&[(0x10000, RW)]);
    let bus = Scripted::default();
    bus.reads.borrow_mut().extend([0x11, 0x22, 0x33]);
    cpu.bus = Box::new(bus.clone());
    cpu.state.rflags_other |= rflags::IOPL;
    cpu.state.gpr[7] = 0x10ffe;
    cpu.state.gpr[1] = 5;
    cpu.state.gpr[2] = 0x80;
    let Err(Stop::Fault(f)) = run1(&mut cpu, &[0xf3, 0x6c]) else { panic!("no fault") };
    assert_eq!((f.vector, f.error_code), (vector::PF, pf_error::WRITE | pf_error::USER));
    assert_eq!(cpu.fault_addr, 0x11000);
    assert_eq!((cpu.state.gpr[7], cpu.state.gpr[1]), (0x11000, 3));
    assert_eq!((cpu.read::<W8>(0x10ffe).unwrap(), cpu.read::<W8>(0x10fff).unwrap()), (0x11, 0x22));
    assert_eq!(bus.reads.borrow().len(), 1, "the faulting element must not read the port");
}

/// The same for REP OUTSB faulting on its source: RSI/RCX at the progress, the bytes before
/// the fault written to the port.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_fault_in_the_middle_of_rep_outsb_keeps_the_progress() {
    use crate::exception::{pf_error, vector};
    use crate::interp::hosttest::{paged_cpu, run1};
    let mut cpu = paged_cpu(&[(0x10000, RW)]);
    let bus = Scripted::default();
    cpu.bus = Box::new(bus.clone());
    cpu.state.rflags_other |= rflags::IOPL;
    cpu.write::<W8>(0x10ffe, 0x41).unwrap();
    cpu.write::<W8>(0x10fff, 0x42).unwrap();
    cpu.state.gpr[6] = 0x10ffe;
    cpu.state.gpr[1] = 5;
    cpu.state.gpr[2] = 0x80;
    let Err(Stop::Fault(f)) = run1(&mut cpu, &[0xf3, 0x6e]) else { panic!("no fault") };
    assert_eq!((f.vector, f.error_code), (vector::PF, pf_error::USER));
    assert_eq!(cpu.fault_addr, 0x11000);
    assert_eq!((cpu.state.gpr[6], cpu.state.gpr[1]), (0x11000, 3));
    assert_eq!(*bus.writes.borrow(), vec![0x41, 0x42]);
}
