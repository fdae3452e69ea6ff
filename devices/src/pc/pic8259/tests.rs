//! Tests for the 8259A pair. Expected behaviour comes from the Intel 8259A datasheet (231468-003)
//! sections cited per test, and from the initialization Linux performs (arch/x86/kernel/i8259.c:
//! ICW1 0x11, ICW2 0x30/0x38, ICW3 0x04/0x02, ICW4 0x01, both chips masked at first).

use super::*;
use crate::irq::RecordingIrq;

fn linux_pic() -> (Pic8259<RecordingIrq>, RecordingIrq) {
    let intr = RecordingIrq::default();
    let mut pic = Pic8259::new(intr.clone());
    pic.write(PicPorts::Master, 0, 0x11);
    pic.write(PicPorts::Master, 1, 0x30);
    pic.write(PicPorts::Master, 1, 0x04);
    pic.write(PicPorts::Master, 1, 0x01);
    pic.write(PicPorts::Slave, 0, 0x11);
    pic.write(PicPorts::Slave, 1, 0x38);
    pic.write(PicPorts::Slave, 1, 0x02);
    pic.write(PicPorts::Slave, 1, 0x01);
    (pic, intr)
}

fn eoi(pic: &mut Pic8259<RecordingIrq>, ports: PicPorts) {
    pic.write(ports, 0, OCW2_EOI);
}

#[test]
fn icw1_clears_imr_and_isr_reads_irr() {
    // ICW1: "the Interrupt Mask Register is cleared ... Status Read is set to IRR".
    let (mut pic, intr) = linux_pic();
    assert_eq!(pic.read(PicPorts::Master, 1), 0);
    assert_eq!(pic.read(PicPorts::Slave, 1), 0);
    pic.set_irq(3, true);
    assert!(intr.level());
    assert_eq!(pic.read(PicPorts::Master, 0), 0x08); // IRR
    assert_eq!(pic.state().master.vector_base, 0x30);
    assert_eq!(pic.state().slave.icw3, 0x02);
}

#[test]
fn fully_nested_priorities() {
    // Fully nested mode: IR0 highest ... IR7 lowest; an in-service level blocks equal and lower ones.
    let (mut pic, intr) = linux_pic();
    pic.set_irq(5, true);
    pic.set_irq(3, true);
    assert_eq!(pic.pending_vector(), Some(0x33));
    assert_eq!(pic.acknowledge(), 0x33);
    assert_eq!(pic.pending_vector(), None); // IR5 is lower than IR3 in service
    assert!(!intr.level());
    pic.set_irq(1, true);
    assert_eq!(pic.acknowledge(), 0x31); // IR1 preempts
    pic.write(PicPorts::Master, 0, 0x0b); // OCW3: read ISR
    assert_eq!(pic.read(PicPorts::Master, 0), 0b0000_1010);
    eoi(&mut pic, PicPorts::Master); // non-specific EOI clears the highest: IR1
    assert_eq!(pic.read(PicPorts::Master, 0), 0b0000_1000);
    eoi(&mut pic, PicPorts::Master);
    assert_eq!(pic.acknowledge(), 0x35);
}

#[test]
fn cascade_through_ir2() {
    // A slave request appears on master IR2; INTA returns the slave's vector; both ISRs set.
    let (mut pic, intr) = linux_pic();
    pic.set_irq(12, true);
    assert!(intr.level());
    assert_eq!(pic.pending_vector(), Some(0x3c));
    assert_eq!(pic.acknowledge(), 0x3c);
    assert_eq!(pic.state().master.isr, 1 << 2);
    assert_eq!(pic.state().slave.isr, 1 << 4);
    // A second slave request of higher priority waits for the master's IR2 to finish (fully nested).
    pic.set_irq(9, true);
    assert!(!intr.level());
    eoi(&mut pic, PicPorts::Slave);
    eoi(&mut pic, PicPorts::Master);
    assert!(intr.level());
    assert_eq!(pic.acknowledge(), 0x39);
}

#[test]
fn masked_requests_wait_in_irr() {
    let (mut pic, intr) = linux_pic();
    pic.write(PicPorts::Master, 1, 0xfb); // Linux masks all but the cascade
    pic.write(PicPorts::Slave, 1, 0xff);
    pic.set_irq(0, true);
    pic.set_irq(8, true);
    assert!(!intr.level());
    pic.write(PicPorts::Slave, 1, 0xfe);
    assert_eq!(pic.acknowledge(), 0x38);
    pic.write(PicPorts::Master, 1, 0xfa);
    eoi(&mut pic, PicPorts::Slave);
    eoi(&mut pic, PicPorts::Master);
    assert_eq!(pic.acknowledge(), 0x30);
}

#[test]
fn spurious_irq7_and_irq15() {
    // Datasheet "Interrupt Sequence": if the request is gone at INTA, the 8259A issues IR7 and sets
    // no ISR bit. Level-triggered inputs (ELCR) withdraw their request when the line falls.
    let (mut pic, _) = linux_pic();
    pic.write(PicPorts::Elcr, 0, 0x20); // IRQ5 level-triggered
    pic.write(PicPorts::Elcr, 1, 0x02); // IRQ9 level-triggered
    pic.set_irq(5, true);
    pic.set_irq(5, false);
    assert_eq!(pic.acknowledge(), 0x37);
    assert_eq!(pic.state().master.isr, 0);
    // The master latched IR2's edge; the slave's request is gone by INTA: IRQ15 from the slave, and
    // the master's IR2 is in service (the guest EOIs the master only).
    pic.write(PicPorts::Master, 1, 0xff);
    pic.set_irq(9, true);
    pic.set_irq(9, false);
    pic.write(PicPorts::Master, 1, 0x00);
    assert_eq!(pic.acknowledge(), 0x3f);
    assert_eq!(pic.state().slave.isr, 0);
    assert_eq!(pic.state().master.isr, 1 << 2);
}

#[test]
fn edge_and_level_triggering() {
    // Edge mode needs a low-to-high transition; level mode re-requests while the input stays high.
    let (mut pic, _) = linux_pic();
    pic.set_irq(4, true);
    assert_eq!(pic.acknowledge(), 0x34);
    eoi(&mut pic, PicPorts::Master);
    assert_eq!(pic.pending_vector(), None); // still high, but no new edge
    pic.set_irq(4, false);
    pic.set_irq(4, true);
    assert_eq!(pic.pending_vector(), Some(0x34));
    pic.acknowledge();
    eoi(&mut pic, PicPorts::Master);
    pic.write(PicPorts::Elcr, 0, 0x10);
    pic.set_irq(4, true);
    assert_eq!(pic.acknowledge(), 0x34);
    eoi(&mut pic, PicPorts::Master);
    assert_eq!(pic.pending_vector(), Some(0x34)); // level still high: requested again
}

#[test]
fn elcr_reserved_bits_read_zero() {
    // PIIX4 ELCR1 bits 2:0 and ELCR2 bits 0 and 5 must be 0 (IRQ0/1/2/8/13 always edge).
    let (mut pic, _) = linux_pic();
    pic.write(PicPorts::Elcr, 0, 0xff);
    pic.write(PicPorts::Elcr, 1, 0xff);
    assert_eq!(pic.read(PicPorts::Elcr, 0), 0xf8);
    assert_eq!(pic.read(PicPorts::Elcr, 1), 0xde);
}

#[test]
fn rotation_commands() {
    // "Set priority command": L2-L0 becomes the lowest level, L+1 the highest.
    let (mut pic, _) = linux_pic();
    pic.write(PicPorts::Master, 0, OCW2_SET_PRIORITY | 4);
    pic.set_irq(3, true);
    pic.set_irq(6, true);
    assert_eq!(pic.acknowledge(), 0x36);
    // "Rotate on non-specific EOI": the serviced level becomes the lowest (IR7 highest next).
    pic.write(PicPorts::Master, 0, OCW2_ROTATE_EOI);
    assert_eq!(pic.state().master.priority_base, 7);
    pic.set_irq(7, true);
    assert_eq!(pic.acknowledge(), 0x37);
    // "Rotate on specific EOI" for IR7: priority base becomes 0 again.
    pic.write(PicPorts::Master, 0, OCW2_ROTATE_SPECIFIC_EOI | 7);
    assert_eq!(pic.state().master.priority_base, 0);
    assert_eq!(pic.acknowledge(), 0x33);
    pic.write(PicPorts::Master, 0, OCW2_SPECIFIC_EOI | 3);
    assert_eq!(pic.state().master.isr, 0);
}

#[test]
fn automatic_eoi_and_rotation() {
    // ICW4 AEOI: the ISR bit is reset at the end of INTA; with rotate-in-AEOI the level goes lowest.
    let intr = RecordingIrq::default();
    let mut pic = Pic8259::new(intr);
    pic.write(PicPorts::Master, 0, ICW1_INIT | ICW1_IC4 | ICW1_SINGLE);
    pic.write(PicPorts::Master, 1, 0x08);
    pic.write(PicPorts::Master, 1, ICW4_8086 | ICW4_AEOI);
    pic.write(PicPorts::Master, 0, OCW2_SET_ROTATE_AEOI);
    pic.set_irq(2, true); // single mode: IR2 is an ordinary input
    pic.set_irq(5, true);
    assert_eq!(pic.acknowledge(), 0x0a);
    assert_eq!(pic.state().master.isr, 0);
    assert_eq!(pic.state().master.priority_base, 3);
    assert_eq!(pic.acknowledge(), 0x0d);
    assert_eq!(pic.state().master.priority_base, 6);
}

#[test]
fn special_mask_mode() {
    // Special mask mode: masking an in-service level enables all other unmasked levels, lower too.
    let (mut pic, _) = linux_pic();
    pic.set_irq(3, true);
    assert_eq!(pic.acknowledge(), 0x33);
    pic.set_irq(6, true);
    assert_eq!(pic.pending_vector(), None);
    pic.write(PicPorts::Master, 0, OCW3_SELECT | OCW3_ESMM | OCW3_SMM);
    pic.write(PicPorts::Master, 1, 1 << 3);
    assert_eq!(pic.acknowledge(), 0x36);
    pic.write(PicPorts::Master, 0, OCW3_SELECT | OCW3_ESMM);
    assert!(!pic.state().master.special_mask);
}

#[test]
fn poll_command() {
    // OCW3 poll: the next read returns 1000 0LLL for the highest request and sets its ISR bit.
    let (mut pic, _) = linux_pic();
    pic.write(PicPorts::Master, 1, 0xff);
    pic.set_irq(6, true);
    pic.write(PicPorts::Master, 0, OCW3_SELECT | OCW3_POLL);
    pic.write(PicPorts::Master, 1, 0x00);
    pic.write(PicPorts::Master, 0, OCW3_SELECT | OCW3_POLL);
    assert_eq!(pic.read(PicPorts::Master, 0), 0x86);
    assert_eq!(pic.state().master.isr, 1 << 6);
    pic.write(PicPorts::Master, 0, OCW3_SELECT | OCW3_POLL);
    assert_eq!(pic.read(PicPorts::Master, 0), 0x00);
    assert_eq!(pic.read(PicPorts::Master, 0), 0x00); // back to reading IRR, now empty
}

#[test]
fn special_fully_nested_lets_the_slave_nest() {
    // SFNM (ICW4 bit 4) on the master: a higher-priority slave request is recognized while another
    // slave interrupt is in service.
    let intr = RecordingIrq::default();
    let mut pic = Pic8259::new(intr.clone());
    for (ports, icw4) in [(PicPorts::Master, ICW4_8086 | ICW4_SFNM), (PicPorts::Slave, ICW4_8086)] {
        pic.write(ports, 0, 0x11);
        pic.write(ports, 1, if ports == PicPorts::Master { 0x20 } else { 0x28 });
        pic.write(ports, 1, if ports == PicPorts::Master { 0x04 } else { 0x02 });
        pic.write(ports, 1, icw4);
    }
    pic.set_irq(12, true);
    assert_eq!(pic.acknowledge(), 0x2c);
    pic.set_irq(9, true);
    assert!(intr.level());
    assert_eq!(pic.acknowledge(), 0x29);
}

#[test]
fn bus_views_and_odd_accesses() {
    let (pic, _) = linux_pic();
    let pic = Rc::new(RefCell::new(pic));
    let mut master = PicPortDevice { pic: pic.clone(), ports: PicPorts::Master };
    master.pio_write(1, &[0x5a]);
    let mut b = [0];
    master.pio_read(1, &mut b);
    assert_eq!(b, [0x5a]);
    let mut w = [0xee; 2];
    master.pio_read(0, &mut w);
    assert_eq!(w, [0xee; 2]);
    master.pio_write(0, &[0x20, 0x20]);
    master.pio_read(5, &mut b);
    assert_eq!(b, [0xff]);
    let line = PicInput { pic: pic.clone(), irq: 14 };
    line.set_level(true);
    assert_eq!(pic.borrow().pending_vector(), Some(0x3e));
    pic.borrow_mut().set_irq(200, true);
    let state = pic.borrow().state();
    let copy = Pic8259::from_state(state.clone(), RecordingIrq::default());
    assert_eq!(copy.state(), state);
    assert_eq!(copy.pending_vector(), Some(0x3e));
}

/// Save mid-interrupt (one IRQ in service, others requested, a level input held), restore into a
/// fresh pair and compare INTR, the register reads and the acknowledge sequence with the original.
#[test]
fn save_restore_gives_the_same_interrupts() {
    let (mut pic, intr) = linux_pic();
    pic.write(PicPorts::Elcr, 1, 0x08); // IRQ11 level-triggered
    pic.set_irq(0, true);
    pic.set_irq(11, true);
    pic.set_irq(4, true);
    pic.set_irq(4, false); // an edge latched, input low again
    assert_eq!(pic.acknowledge(), 0x30);
    pic.write(PicPorts::Master, 0, OCW3_SELECT | OCW3_RR | OCW3_RIS); // command port reads ISR
    let saved = pic.save_state();

    let intr2 = RecordingIrq::default();
    let mut other = Pic8259::new(intr2.clone());
    other.restore_state(&saved);
    assert_eq!(other.save_state(), saved);
    assert_eq!(intr2.level(), intr.level());
    for (ports, offset) in [(PicPorts::Master, 0), (PicPorts::Master, 1), (PicPorts::Slave, 1), (PicPorts::Elcr, 1)] {
        assert_eq!(other.read(ports, offset), pic.read(ports, offset));
    }
    for _ in 0..4 {
        assert_eq!(other.pending_vector(), pic.pending_vector());
        assert_eq!(other.acknowledge(), pic.acknowledge());
        eoi(&mut pic, PicPorts::Slave);
        eoi(&mut other, PicPorts::Slave);
        eoi(&mut pic, PicPorts::Master);
        eoi(&mut other, PicPorts::Master);
        assert_eq!(intr2.level(), intr.level());
    }
}
