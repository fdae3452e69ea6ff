//! Port I/O and MMIO in lockstep: devices must see every access once. Tier 0 runs each step
//! first against the real bus through a [`RecordingBus`], which logs what every read returned
//! and every write carried; the KVM side then runs the same step against a [`ReplayBus`], which
//! serves its reads from that log and checks its writes (kind, port or address, size, value)
//! against it, in order.
//!
//! Left out: reordering. A step whose KVM accesses come in another order, size or number than
//! tier 0's is a divergence (reported by the lockstep loop from [`IoLog::mismatch`]).

use emu::cpu::IoBus;
use std::cell::RefCell;
use std::rc::Rc;

/// One device access as tier 0 made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoEvent {
    PioIn { port: u16, size: u8, value: u32 },
    PioOut { port: u16, size: u8, value: u32 },
    MmioRead { addr: u64, size: u8, value: u64 },
    MmioWrite { addr: u64, size: u8, value: u64 },
}

/// The accesses of the current step, and how far the replay has got.
#[derive(Default, Debug)]
pub struct IoLog {
    pub events: Vec<IoEvent>,
    /// Next event the replay serves.
    pub cursor: usize,
    /// The first access the replay could not match, described.
    pub mismatch: Option<String>,
}

impl IoLog {
    /// Starts a new step.
    pub fn clear(&mut self) {
        self.events.clear();
        self.cursor = 0;
        self.mismatch = None;
    }

    /// Events tier 0 made that the replay never asked for.
    pub fn unconsumed(&self) -> &[IoEvent] {
        self.events.get(self.cursor..).unwrap_or(&[])
    }

    /// Matches `got` (with its value ignored for reads) against the next recorded event and
    /// returns the recorded one; a mismatch is remembered and `None` returned.
    fn next(&mut self, got: IoEvent) -> Option<IoEvent> {
        let want = self.events.get(self.cursor).copied();
        let same_access = match (want, got) {
            (Some(IoEvent::PioIn { port: a, size: s, .. }), IoEvent::PioIn { port: b, size: t, .. }) => {
                a == b && s == t
            }
            (Some(IoEvent::MmioRead { addr: a, size: s, .. }), IoEvent::MmioRead { addr: b, size: t, .. }) => {
                a == b && s == t
            }
            (Some(w @ (IoEvent::PioOut { .. } | IoEvent::MmioWrite { .. })), g) => w == g,
            _ => false,
        };
        if same_access {
            self.cursor += 1;
            want
        } else {
            if self.mismatch.is_none() {
                self.mismatch = Some(format!("KVM made {got:x?}, tier 0's next access was {want:x?}"));
            }
            None
        }
    }
}

/// Tier 0's bus during lockstep: the machine's real bus, with every access logged.
pub struct RecordingBus {
    pub inner: Box<dyn IoBus>,
    pub log: Rc<RefCell<IoLog>>,
}

impl IoBus for RecordingBus {
    fn pio_read(&mut self, port: u16, size: u8) -> u32 {
        let value = self.inner.pio_read(port, size);
        self.log.borrow_mut().events.push(IoEvent::PioIn { port, size, value });
        value
    }
    fn pio_write(&mut self, port: u16, size: u8, value: u32) {
        self.log.borrow_mut().events.push(IoEvent::PioOut { port, size, value });
        self.inner.pio_write(port, size, value);
    }
    fn mmio_read(&mut self, addr: u64, size: u8) -> u64 {
        let value = self.inner.mmio_read(addr, size);
        self.log.borrow_mut().events.push(IoEvent::MmioRead { addr, size, value });
        value
    }
    fn mmio_write(&mut self, addr: u64, size: u8, value: u64) {
        self.log.borrow_mut().events.push(IoEvent::MmioWrite { addr, size, value });
        self.inner.mmio_write(addr, size, value);
    }
}

/// The KVM side's bus: answers from tier 0's log, never touches a device.
pub struct ReplayBus(pub Rc<RefCell<IoLog>>);

/// All ones for `size` bytes: what an access the log cannot serve reads (a floating bus).
fn ones(size: u8) -> u64 {
    u64::MAX >> (64 - 8 * u32::from(size.clamp(1, 8)))
}

impl IoBus for ReplayBus {
    fn pio_read(&mut self, port: u16, size: u8) -> u32 {
        match self.0.borrow_mut().next(IoEvent::PioIn { port, size, value: 0 }) {
            Some(IoEvent::PioIn { value, .. }) => value,
            _ => ones(size) as u32,
        }
    }
    fn pio_write(&mut self, port: u16, size: u8, value: u32) {
        self.0.borrow_mut().next(IoEvent::PioOut { port, size, value });
    }
    fn mmio_read(&mut self, addr: u64, size: u8) -> u64 {
        match self.0.borrow_mut().next(IoEvent::MmioRead { addr, size, value: 0 }) {
            Some(IoEvent::MmioRead { value, .. }) => value,
            _ => ones(size),
        }
    }
    fn mmio_write(&mut self, addr: u64, size: u8, value: u64) {
        self.0.borrow_mut().next(IoEvent::MmioWrite { addr, size, value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bus whose reads return the port number, so replayed values are recognisable.
    struct Echo;
    impl IoBus for Echo {
        fn pio_read(&mut self, port: u16, _size: u8) -> u32 {
            u32::from(port)
        }
        fn pio_write(&mut self, _port: u16, _size: u8, _value: u32) {}
        fn mmio_read(&mut self, addr: u64, _size: u8) -> u64 {
            addr
        }
        fn mmio_write(&mut self, _addr: u64, _size: u8, _value: u64) {}
    }

    #[test]
    fn replay_serves_recorded_reads_and_checks_writes() {
        let log = Rc::new(RefCell::new(IoLog::default()));
        let mut rec = RecordingBus { inner: Box::new(Echo), log: log.clone() };
        assert_eq!(rec.pio_read(0x3fd, 1), 0x3fd);
        rec.pio_write(0x3f8, 1, b'A' as u32);
        rec.mmio_read(0xfee0_0030, 4);
        let mut rep = ReplayBus(log.clone());
        assert_eq!(rep.pio_read(0x3fd, 1), 0x3fd);
        rep.pio_write(0x3f8, 1, b'A' as u32);
        assert_eq!(rep.mmio_read(0xfee0_0030, 4), 0xfee0_0030);
        assert!(log.borrow().mismatch.is_none());
        assert!(log.borrow().unconsumed().is_empty());
    }

    #[test]
    fn a_different_write_value_or_an_extra_read_is_a_mismatch() {
        let log = Rc::new(RefCell::new(IoLog::default()));
        let mut rec = RecordingBus { inner: Box::new(Echo), log: log.clone() };
        rec.pio_write(0xf4, 4, 0);
        let mut rep = ReplayBus(log.clone());
        rep.pio_write(0xf4, 4, 1);
        assert!(log.borrow().mismatch.is_some());
        log.borrow_mut().clear();
        assert_eq!(rep.pio_read(0x60, 1), 0xff, "nothing recorded: the bus floats");
        assert!(log.borrow().mismatch.is_some());
    }
}
