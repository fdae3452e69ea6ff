//! Tests for the 8042. The expected answers are those of the IBM PC/AT Technical Reference
//! (controller self-test 0x55, interface tests 0x00, keyboard ACK 0xfa, BAT 0xaa, ID 0xab 0x83) and
//! the probe sequence of Linux's drivers/input/serio/i8042.c, replayed step by step.

use super::*;
use crate::irq::RecordingIrq;

type Kbc = I8042<RecordingIrq, RecordingIrq>;

fn kbc() -> (Kbc, RecordingIrq, RecordingIrq) {
    let (k, m) = (RecordingIrq::default(), RecordingIrq::default());
    (I8042::new(k.clone(), m.clone()), k, m)
}

fn cmd(c: &mut Kbc, v: u8) {
    c.write(I8042Ports::Command, v);
}

fn data(c: &mut Kbc, v: u8) {
    c.write(I8042Ports::Data, v);
}

/// i8042_wait_read + read: None if the output buffer stays empty (the driver would time out).
fn read_response(c: &mut Kbc) -> Option<u8> {
    (c.read(I8042Ports::Command) & STATUS_OBF != 0).then(|| c.read(I8042Ports::Data))
}

#[test]
fn linux_probe_sequence() {
    let (mut c, _, aux_irq) = kbc();
    // i8042_controller_check / i8042_flush: status is not 0xff; nothing to flush.
    assert_ne!(c.read(I8042Ports::Command), 0xff);
    assert_eq!(read_response(&mut c), None);
    // i8042_controller_selftest: 0xaa -> 0x55.
    cmd(&mut c, CMD_SELF_TEST);
    assert_eq!(read_response(&mut c), Some(0x55));
    // i8042_controller_init: read the CTR until two reads agree, then write it back.
    cmd(&mut c, CMD_READ_CTR);
    let ctr = read_response(&mut c).unwrap();
    cmd(&mut c, CMD_READ_CTR);
    assert_eq!(read_response(&mut c), Some(ctr));
    assert_eq!(ctr, 0x45);
    cmd(&mut c, CMD_WRITE_CTR);
    data(&mut c, ctr & !(CTR_KBD_INT | CTR_AUX_INT));
    cmd(&mut c, CMD_READ_CTR);
    assert_eq!(read_response(&mut c), Some(0x44));
    // i8042_check_aux: AUX loopback returns the byte as AUX data.
    cmd(&mut c, CMD_WRITE_AUX_OBUF);
    data(&mut c, 0x5a);
    assert_eq!(c.read(I8042Ports::Command) & (STATUS_OBF | STATUS_AUX_OBF), STATUS_OBF | STATUS_AUX_OBF);
    assert_eq!(c.read(I8042Ports::Data), 0x5a);
    // i8042_toggle_aux: the AUX disable bit follows 0xa7/0xa8.
    cmd(&mut c, CMD_AUX_DISABLE);
    cmd(&mut c, CMD_READ_CTR);
    assert_eq!(read_response(&mut c).unwrap() & CTR_AUX_DISABLE, CTR_AUX_DISABLE);
    cmd(&mut c, CMD_AUX_ENABLE);
    cmd(&mut c, CMD_READ_CTR);
    assert_eq!(read_response(&mut c).unwrap() & CTR_AUX_DISABLE, 0);
    // AUX IRQ test: with the AUX interrupt enabled, looped-back 0xa5 raises IRQ12.
    cmd(&mut c, CMD_WRITE_CTR);
    data(&mut c, 0x44 | CTR_AUX_INT);
    cmd(&mut c, CMD_WRITE_AUX_OBUF);
    data(&mut c, 0xa5);
    assert!(aux_irq.level());
    assert_eq!(c.read(I8042Ports::Data), 0xa5);
    assert!(!aux_irq.level());
    // Interface tests report "no error".
    cmd(&mut c, CMD_AUX_TEST);
    assert_eq!(read_response(&mut c), Some(0x00));
    cmd(&mut c, CMD_KBD_TEST);
    assert_eq!(read_response(&mut c), Some(0x00));
}

#[test]
fn keyboard_reset_and_identify() {
    let (mut c, kbd_irq, _) = kbc();
    data(&mut c, 0xff);
    assert!(kbd_irq.level());
    assert_eq!(c.read(I8042Ports::Data), KBD_ACK);
    assert_eq!(c.read(I8042Ports::Data), KBD_BAT_OK);
    assert!(!kbd_irq.level());
    assert_eq!(kbd_irq.rising_edges(), 2); // one edge per byte
                                           // Identify: MF2 keyboard, translated by the controller (CTR bit 6).
    data(&mut c, 0xf2);
    assert_eq!([0, 0, 0].map(|_| c.read(I8042Ports::Data)), [0xfa, 0xab, 0x41]);
    cmd(&mut c, CMD_WRITE_CTR);
    data(&mut c, CTR_KBD_INT | CTR_SYS);
    data(&mut c, 0xf2);
    assert_eq!([0, 0, 0].map(|_| c.read(I8042Ports::Data)), [0xfa, 0xab, 0x83]);
    // Two-byte commands: LEDs, scan-code set query (set 2), echo, unknown.
    data(&mut c, 0xed);
    data(&mut c, 0x07);
    assert_eq!([0, 0].map(|_| c.read(I8042Ports::Data)), [0xfa, 0xfa]);
    data(&mut c, 0xf0);
    data(&mut c, 0x00);
    assert_eq!([0, 0, 0].map(|_| c.read(I8042Ports::Data)), [0xfa, 0xfa, 0x02]);
    data(&mut c, 0xee);
    assert_eq!(c.read(I8042Ports::Data), 0xee);
    data(&mut c, 0x01);
    assert_eq!(c.read(I8042Ports::Data), KBD_RESEND);
}

#[test]
fn reset_line_and_a20() {
    let (mut c, _, _) = kbc();
    assert!(c.a20_enabled());
    cmd(&mut c, CMD_READ_OUTPUT);
    assert_eq!(read_response(&mut c).unwrap() & 0x03, OUTPUT_RESET | OUTPUT_A20);
    cmd(&mut c, CMD_WRITE_OUTPUT);
    data(&mut c, OUTPUT_RESET);
    assert!(!c.a20_enabled());
    assert!(!c.reset_requested());
    cmd(&mut c, CMD_A20_ENABLE);
    assert!(c.a20_enabled());
    cmd(&mut c, CMD_A20_DISABLE);
    assert!(!c.a20_enabled());
    // Output port bit 0 written low resets the CPU.
    cmd(&mut c, CMD_WRITE_OUTPUT);
    data(&mut c, OUTPUT_A20);
    assert!(c.take_reset_request());
    assert!(!c.take_reset_request());
    // The classic reboot: pulse output port bit 0 with 0xfe. 0xff pulses nothing.
    cmd(&mut c, 0xff);
    assert!(!c.reset_requested());
    cmd(&mut c, CMD_PULSE_RESET);
    assert!(c.take_reset_request());
}

#[test]
fn scancodes_wait_while_the_keyboard_is_disabled() {
    let (mut c, kbd_irq, _) = kbc();
    cmd(&mut c, CMD_KBD_DISABLE);
    c.inject_scancodes(&[0x1e, 0x9e]); // 'a' make and break (set 1)
    assert!(!kbd_irq.level());
    assert_eq!(read_response(&mut c), None);
    cmd(&mut c, CMD_KBD_ENABLE);
    assert!(kbd_irq.level());
    assert_eq!(c.read(I8042Ports::Data), 0x1e);
    assert_eq!(c.read(I8042Ports::Data), 0x9e);
    // 0xf5: the keyboard stops scanning; injected codes are lost.
    data(&mut c, 0xf5);
    assert_eq!(c.read(I8042Ports::Data), KBD_ACK);
    c.inject_scancodes(&[0x1e]);
    assert_eq!(read_response(&mut c), None);
    data(&mut c, 0xf4);
    assert_eq!(c.read(I8042Ports::Data), KBD_ACK);
    c.inject_scancodes(&[0x1e]);
    assert_eq!(read_response(&mut c), Some(0x1e));
}

#[test]
fn aux_device_writes_time_out() {
    // No mouse: a byte sent with 0xd4 comes back as a time-out.
    let (mut c, _, _) = kbc();
    cmd(&mut c, CMD_WRITE_AUX);
    data(&mut c, 0xff);
    let status = c.read(I8042Ports::Command);
    assert_eq!(status & (STATUS_OBF | STATUS_AUX_OBF | STATUS_TIMEOUT), STATUS_OBF | STATUS_AUX_OBF | STATUS_TIMEOUT);
    assert_eq!(c.read(I8042Ports::Data), 0xfe);
    assert_eq!(c.read(I8042Ports::Command) & STATUS_TIMEOUT, 0);
    assert_eq!(c.read(I8042Ports::Data), 0xfe); // an empty buffer reads its last value again
}

#[test]
fn status_bits_and_controller_ram() {
    let (mut c, _, _) = kbc();
    // SYS set (POST passed), unlocked, A2 after a command write, cleared by a data write.
    assert_eq!(c.read(I8042Ports::Command), STATUS_SYS | STATUS_UNLOCKED);
    cmd(&mut c, 0x61);
    assert_eq!(c.read(I8042Ports::Command) & STATUS_A2, STATUS_A2);
    data(&mut c, 0x99);
    assert_eq!(c.read(I8042Ports::Command) & STATUS_A2, 0);
    cmd(&mut c, 0x21);
    assert_eq!(read_response(&mut c), Some(0x99));
    // Writing CTR without the system flag clears the status SYS bit.
    cmd(&mut c, CMD_WRITE_CTR);
    data(&mut c, 0);
    assert_eq!(c.read(I8042Ports::Command) & STATUS_SYS, 0);
}

#[test]
fn bus_view_and_snapshot() {
    let (c, _, _) = kbc();
    let c = Rc::new(RefCell::new(c));
    let mut port64 = I8042PortDevice { kbc: c.clone(), ports: I8042Ports::Command };
    let mut port60 = I8042PortDevice { kbc: c.clone(), ports: I8042Ports::Data };
    port64.pio_write(0, &[0xaa]);
    port64.pio_write(0, &[0xaa, 0]); // word write ignored
    let mut b = [0];
    port60.pio_read(0, &mut b);
    assert_eq!(b, [0x55]);
    c.borrow_mut().inject_scancodes(&[1, 2, 3]);
    let state = c.borrow().state();
    assert_eq!(state.output_buffer, Some((1, I8042Source::Keyboard)));
    assert_eq!(state.keyboard_queue, vec![2, 3]);
    let irq = RecordingIrq::default();
    let mut copy = I8042::from_state(state.clone(), irq.clone(), RecordingIrq::default());
    assert_eq!(copy.state(), state);
    assert!(irq.level());
    assert_eq!([0, 0, 0].map(|_| copy.read(I8042Ports::Data)), [1, 2, 3]);
}

/// Save with answers queued behind a full output buffer, restore into a fresh controller and
/// compare the status and data reads and both interrupt lines.
#[test]
fn save_restore_keeps_queued_answers() {
    let (mut c, k, m) = kbc();
    data(&mut c, 0xf2); // identify: FA AB 83 queued
    cmd(&mut c, 0xd0); // read the output port: answer queued too
    let saved = c.save_state();

    let (k2, m2) = (RecordingIrq::default(), RecordingIrq::default());
    let mut d = I8042::new(k2.clone(), m2.clone());
    d.restore_state(&saved);
    assert_eq!(d.save_state(), saved);
    for _ in 0..6 {
        assert_eq!((k2.level(), m2.level()), (k.level(), m.level()));
        assert_eq!(d.read(I8042Ports::Command), c.read(I8042Ports::Command));
        assert_eq!(d.read(I8042Ports::Data), c.read(I8042Ports::Data));
    }
}
