//! virtio-pci + split virtqueue + virtio-blk, driven as a driver would (virtio 1.2 sections 2.7,
//! 3.1, 4.1 and 5.2 give every expected value), over guest memory in a `Vec`.

use super::blk::VirtioBlk;
use super::pci::{PciMmioWindow, VirtioPci, BAR_SIZE};
use crate::block::options::DriveSpec;
use crate::block::{BlockBackend, Drive};
use crate::bus::MmioDevice;
use crate::dma::{GuestMemory, VecMemory};
use crate::irq::RecordingIrq;
use crate::pc::pci_host::PciFunction;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x2000;
const USED: u64 = 0x3000;
const QSIZE: u16 = 16;
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;
const VERSION_1: u64 = 1 << 32;
const EVENT_IDX: u64 = 1 << 29;
const INDIRECT: u64 = 1 << 28;

/// A disk in memory, shared with the test.
#[derive(Clone)]
struct MemDisk(Arc<Mutex<Vec<u8>>>);

impl MemDisk {
    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap()
    }
}

impl BlockBackend for MemDisk {
    fn size(&self) -> u64 {
        self.bytes().len() as u64
    }
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let o = offset as usize;
        buf.copy_from_slice(&self.bytes()[o..o + buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        let o = offset as usize;
        self.bytes()[o..o + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn discard(&mut self, offset: u64, len: u64) -> std::io::Result<()> {
        self.write_zeroes(offset, len, true)
    }
    fn write_zeroes(&mut self, offset: u64, len: u64, _unmap: bool) -> std::io::Result<()> {
        let o = offset as usize;
        self.bytes()[o..o + len as usize].fill(0);
        Ok(())
    }
}

struct Rig {
    pci: VirtioPci,
    mem: VecMemory,
    irq: RecordingIrq,
    disk: MemDisk,
    avail_idx: u16,
}

impl Rig {
    fn new(spec: &str) -> Rig {
        Self::build(spec, false)
    }

    fn build(spec: &str, threaded: bool) -> Rig {
        let disk = MemDisk(Arc::new(Mutex::new((0..64 * 1024).map(|i| (i / 512) as u8).collect())));
        let drive = Drive::with_backend(Box::new(disk.clone()), DriveSpec::parse(spec).unwrap());
        let irq = RecordingIrq::default();
        let blk = if threaded {
            VirtioBlk::with_io_thread(drive, "serial-1", Arc::new(|| {})).unwrap()
        } else {
            VirtioBlk::new(drive, "serial-1")
        };
        let pci = VirtioPci::new(Box::new(blk), Box::new(irq.clone()), 0xc000_0000);
        Rig { pci, mem: VecMemory(vec![0; 1 << 20]), irq, disk, avail_idx: 0 }
    }

    fn w(&mut self, off: u64, v: u64, n: usize) {
        self.pci.bar_write(off, &v.to_le_bytes()[..n]);
    }

    fn r(&mut self, off: u64, n: usize) -> u64 {
        let mut b = [0u8; 8];
        self.pci.bar_read(off, &mut b[..n]);
        u64::from_le_bytes(b)
    }

    /// The 3.1.1 initialisation sequence; returns the status read back after FEATURES_OK.
    fn negotiate(&mut self, features: u64) -> u8 {
        self.w(0x14, 1, 1); // ACKNOWLEDGE
        self.w(0x14, 3, 1); // DRIVER
        for half in 0..2 {
            self.w(0x08, half, 4);
            self.w(0x0c, features >> (32 * half) & 0xffff_ffff, 4);
        }
        self.w(0x14, 0xb, 1); // FEATURES_OK
        self.r(0x14, 1) as u8
    }

    fn start(&mut self, features: u64) {
        assert_eq!(self.negotiate(features) & 8, 8, "features accepted");
        self.w(0x16, 0, 2);
        self.w(0x18, u64::from(QSIZE), 2);
        for (off, addr) in [(0x20, DESC), (0x28, AVAIL), (0x30, USED)] {
            self.w(off, addr, 4);
            self.w(off + 4, 0, 4);
        }
        self.w(0x1c, 1, 2);
        self.w(0x14, 0xf, 1); // DRIVER_OK
    }

    fn desc(&mut self, table: u64, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        self.mem.write(table + 16 * u64::from(i), &d).unwrap();
    }

    /// Makes `head` available, notifies queue 0 and lets the device work.
    fn kick(&mut self, head: u16) {
        let slot = u64::from(self.avail_idx % QSIZE);
        self.mem.write_u16(AVAIL + 4 + 2 * slot, head).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.mem.write_u16(AVAIL + 2, self.avail_idx).unwrap();
        self.w(0x3000, 0, 2);
        self.pci.process(&mut self.mem);
        // With an I/O thread, poll until the device has nothing in flight (no time limit: a
        // completion that never comes hangs the test, which is the failure).
        while self.pci.has_work() {
            std::thread::yield_now();
            self.pci.process(&mut self.mem);
        }
    }

    /// A request: header at 0x10000, data at 0x20000 (`data_len` bytes, device-writable when
    /// `write`), status at 0x30000. Returns (status byte, used len).
    fn request(&mut self, kind: u32, sector: u64, data_len: u32, device_writes: bool) -> (u8, u32) {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&kind.to_le_bytes());
        h[8..16].copy_from_slice(&sector.to_le_bytes());
        self.mem.write(0x10000, &h).unwrap();
        self.mem.write(0x30000, &[0xee]).unwrap();
        self.desc(DESC, 0, 0x10000, 16, F_NEXT, 1);
        if data_len > 0 {
            self.desc(DESC, 1, 0x20000, data_len, F_NEXT | if device_writes { F_WRITE } else { 0 }, 2);
            self.desc(DESC, 2, 0x30000, 1, F_WRITE, 0);
        } else {
            self.desc(DESC, 1, 0x30000, 1, F_WRITE, 0);
        }
        self.kick(0);
        self.last_used()
    }

    fn last_used(&self) -> (u8, u32) {
        let idx = self.mem.read_u16(USED + 2).unwrap();
        let slot = u64::from(idx.wrapping_sub(1) % QSIZE);
        let mut e = [0u8; 8];
        self.mem.read(USED + 4 + 8 * slot, &mut e).unwrap();
        let mut st = [0u8];
        self.mem.read(0x30000, &mut st).unwrap();
        (st[0], u32::from_le_bytes(e[4..8].try_into().unwrap()))
    }

    fn needs_reset(&mut self) -> bool {
        self.r(0x14, 1) & 0x40 != 0
    }
}

#[test]
fn pci_header_and_capabilities() {
    let mut rig = Rig::new("file=x");
    let p = &mut rig.pci;
    assert_eq!(p.config_read(0), 0x1042_1af4); // 4.1.2: 1AF4h, 1040h + 2 (block)
    assert_eq!(p.config_read(8) & 0xff, 1); // revision 1: modern only
    assert_ne!(p.config_read(4) >> 16 & 0x10, 0); // capability list
    assert_eq!(p.config_read(0x3c) >> 8 & 0xff, 1); // INTA
                                                    // Walk the capability list: the four vendor capabilities (cfg_type 1-4), all in BAR 0.
    let mut at = p.config_read(0x34) as u8;
    let mut seen = Vec::new();
    while at != 0 {
        let head = p.config_read(at);
        assert_eq!(head & 0xff, 9, "vendor-specific capability");
        let (kind, bar) = ((head >> 24) as u8, p.config_read(at + 4) & 0xff);
        let (offset, len) = (p.config_read(at + 8), p.config_read(at + 12));
        assert_eq!(bar, 0);
        assert!(u64::from(offset) + u64::from(len) <= u64::from(BAR_SIZE));
        if kind == 2 {
            assert_eq!(p.config_read(at + 16), 4, "notify_off_multiplier");
        }
        seen.push(kind);
        at = (head >> 8) as u8;
    }
    seen.sort();
    assert_eq!(seen, [1, 2, 3, 4]);
}

#[test]
fn bar_sizing_and_moving() {
    let rig = Rig::new("file=x");
    let f = Rc::new(RefCell::new(rig.pci));
    let mut window = PciMmioWindow { base: 0xc000_0000, functions: Rc::new(RefCell::new(vec![f.clone()])) };
    let mut handle = f.clone();
    handle.config_write(0x10, 0xffff_ffff, 0xf);
    assert_eq!(handle.config_read(0x10), !(BAR_SIZE - 1)); // size 32 KiB, 32-bit memory
    handle.config_write(0x10, 0xc010_0000, 0xf);
    let mut b = [0u8; 2];
    window.mmio_read(0x10_0012, &mut b); // num_queues at the new place
    assert_eq!(u16::from_le_bytes(b), 1);
    window.mmio_read(0x12, &mut b); // the old place decodes nothing
    assert_eq!(b, [0xff; 2]);
    handle.config_write(0x04, 0, 0x3); // memory decoding off
    window.mmio_read(0x10_0012, &mut b);
    assert_eq!(b, [0xff; 2]);
}

#[test]
fn feature_negotiation() {
    let mut rig = Rig::new("file=x");
    assert_eq!(rig.negotiate(0) & 8, 0, "no VERSION_1: FEATURES_OK refused");
    rig.w(0x14, 0, 1);
    assert_eq!(rig.negotiate(VERSION_1 | 1 << 40) & 8, 0, "a feature not offered is refused");
    rig.w(0x14, 0, 1);
    assert_eq!(rig.negotiate(VERSION_1 | EVENT_IDX | INDIRECT | 1 << 9) & 8, 8);
    rig.w(0x00, 1, 4);
    assert_eq!(rig.r(0x04, 4) & 1, 1, "VERSION_1 offered in the high word");
    let mut ro = Rig::new("file=x,readonly=on");
    assert_ne!(ro.r(0x04, 4) & 1 << 5, 0, "VIRTIO_BLK_F_RO");
    assert_eq!(rig.r(0x2000, 8), 128, "capacity in 512-byte sectors");
}

#[test]
fn read_write_flush_get_id() {
    let mut rig = Rig::new("file=x");
    rig.start(VERSION_1);
    assert_eq!(rig.request(0, 3, 1024, true), (0, 1025)); // IN: sectors 3 and 4
    let mut got = vec![0u8; 1024];
    rig.mem.read(0x20000, &mut got).unwrap();
    assert!(got[..512].iter().all(|&b| b == 3) && got[512..].iter().all(|&b| b == 4));
    assert!(rig.irq.level(), "interrupt raised");
    assert_eq!(rig.r(0x1000, 1), 1, "ISR: queue interrupt");
    assert!(!rig.irq.level() && rig.r(0x1000, 1) == 0, "reading the ISR clears it and the line");

    rig.mem.write(0x20000, &[0x5a; 512]).unwrap();
    assert_eq!(rig.request(1, 7, 512, false), (0, 1)); // OUT
    assert!(rig.disk.bytes()[7 * 512..8 * 512].iter().all(|&b| b == 0x5a));
    assert_eq!(rig.request(4, 0, 0, false), (0, 1)); // FLUSH
    assert_eq!(rig.request(8, 0, 20, true), (0, 21)); // GET_ID
    let mut id = [0u8; 20];
    rig.mem.read(0x20000, &mut id).unwrap();
    assert_eq!(&id[..9], b"serial-1\0");
    assert_eq!(rig.request(99, 0, 0, false).0, 2, "unknown type: UNSUPP");
    assert_eq!(rig.request(0, 127, 1024, true).0, 1, "past the end: IOERR");
    assert_eq!(rig.request(0, u64::MAX / 2, 512, true).0, 1, "sector overflow: IOERR");
    assert_eq!(rig.request(0, 0, 100, true).0, 1, "not a multiple of 512: IOERR");
}

/// The same requests through the I/O thread: same results, and a flush completes after the
/// writes before it (one worker, in order).
#[test]
fn io_thread_serves_requests_in_order() {
    let mut rig = Rig::build("file=x", true);
    rig.start(VERSION_1);
    assert_eq!(rig.request(0, 3, 1024, true), (0, 1025));
    let mut got = vec![0u8; 1024];
    rig.mem.read(0x20000, &mut got).unwrap();
    assert!(got[..512].iter().all(|&b| b == 3) && got[512..].iter().all(|&b| b == 4));
    assert!(rig.irq.level());
    rig.mem.write(0x20000, &[0x77; 512]).unwrap();
    assert_eq!(rig.request(1, 9, 512, false), (0, 1));
    assert_eq!(rig.request(4, 0, 0, false), (0, 1));
    assert!(rig.disk.bytes()[9 * 512..10 * 512].iter().all(|&b| b == 0x77));
    assert_eq!(rig.request(0, 127, 1024, true).0, 1, "past the end: IOERR without the thread");
    rig.w(0x14, 0, 1); // reset with nothing in flight
    assert!(!rig.pci.has_work());
}

#[test]
fn readonly_discard_and_write_zeroes() {
    let mut rig = Rig::new("file=x,discard=unmap");
    rig.start(VERSION_1);
    let seg = |sector: u64, n: u32, flags: u32| {
        let mut s = [0u8; 16];
        s[0..8].copy_from_slice(&sector.to_le_bytes());
        s[8..12].copy_from_slice(&n.to_le_bytes());
        s[12..16].copy_from_slice(&flags.to_le_bytes());
        s
    };
    rig.mem.write(0x20000, &seg(2, 2, 0)).unwrap();
    assert_eq!(rig.request(11, 0, 16, false).0, 0); // DISCARD
    assert!(rig.disk.bytes()[1024..2048].iter().all(|&b| b == 0));
    rig.mem.write(0x20000, &seg(10, 1, 1)).unwrap();
    assert_eq!(rig.request(13, 0, 16, false).0, 0); // WRITE_ZEROES with UNMAP
    assert!(rig.disk.bytes()[5120..5632].iter().all(|&b| b == 0));
    assert_eq!(rig.disk.bytes()[5632], 11);
    rig.mem.write(0x20000, &seg(10, 1, 1)).unwrap();
    assert_eq!(rig.request(11, 0, 16, false).0, 2, "UNMAP flag on a discard: UNSUPP");
    rig.mem.write(0x20000, &seg(120, 100, 0)).unwrap();
    assert_eq!(rig.request(13, 0, 16, false).0, 1, "range past the end: IOERR");

    let mut ro = Rig::new("file=x,readonly=on");
    ro.start(VERSION_1 | 1 << 5);
    assert_eq!(ro.request(1, 0, 512, false).0, 1, "write to a read-only disk: IOERR");
    assert_eq!(ro.disk.bytes()[0], 0);
}

#[test]
fn indirect_descriptors_and_event_idx() {
    let mut rig = Rig::new("file=x");
    rig.start(VERSION_1 | INDIRECT | EVENT_IDX);
    let table = 0x4000;
    let mut h = [0u8; 16];
    h[8..16].copy_from_slice(&5u64.to_le_bytes());
    rig.mem.write(0x10000, &h).unwrap();
    rig.desc(table, 0, 0x10000, 16, F_NEXT, 1);
    rig.desc(table, 1, 0x20000, 300, F_NEXT | F_WRITE, 2); // data split over two buffers
    rig.desc(table, 2, 0x28000, 212, F_NEXT | F_WRITE, 3);
    rig.desc(table, 3, 0x30000, 1, F_WRITE, 0);
    rig.desc(DESC, 4, table, 64, F_INDIRECT, 0);
    // used_event = 5: the driver wants an interrupt only after the 6th used entry.
    rig.mem.write_u16(AVAIL + 4 + 2 * u64::from(QSIZE), 5).unwrap();
    rig.kick(4);
    assert_eq!(rig.last_used(), (0, 513));
    let mut a = [0u8; 300];
    rig.mem.read(0x20000, &mut a).unwrap();
    assert!(a.iter().all(|&b| b == 5));
    assert!(!rig.irq.level(), "EVENT_IDX: no interrupt before used_event");
    assert_eq!(rig.mem.read_u16(USED + 4 + 8 * u64::from(QSIZE)).unwrap(), 1, "avail_event published");
    rig.mem.write_u16(AVAIL + 4 + 2 * u64::from(QSIZE), 1).unwrap();
    rig.kick(4);
    assert!(rig.irq.level(), "EVENT_IDX: interrupt once used passes used_event");
}

#[test]
fn hostile_rings_never_panic_or_hang() {
    // A descriptor loop: the device marks itself as needing a reset and interrupts.
    let mut rig = Rig::new("file=x");
    rig.start(VERSION_1 | INDIRECT);
    rig.desc(DESC, 0, 0x10000, 16, F_NEXT, 1);
    rig.desc(DESC, 1, 0x10000, 16, F_NEXT, 0);
    rig.kick(0);
    assert!(rig.needs_reset());
    assert_eq!(rig.r(0x1000, 1) & 2, 2, "configuration-change interrupt");
    rig.kick(0); // ignored until reset
    rig.w(0x14, 0, 1);
    assert_eq!(rig.r(0x14, 1), 0, "reset");

    // A head index past the queue, a table outside RAM, nested indirect, an avail index too far.
    type Setup = fn(&mut Rig) -> u16;
    let cases: [(&str, Setup); 5] = [
        ("head out of range", |_| 40),
        ("next out of range", |r| {
            r.desc(DESC, 0, 0x10000, 16, F_NEXT, 999);
            0
        }),
        ("descriptor table outside RAM", |r| {
            r.w(0x14, 0, 1);
            r.negotiate(VERSION_1);
            r.w(0x20, 0xffff_0000, 4);
            r.w(0x24, 0x10, 4);
            r.w(0x28, AVAIL, 4);
            r.w(0x30, USED, 4);
            r.w(0x1c, 1, 2);
            r.w(0x14, 0xf, 1);
            0
        }),
        ("nested indirect", |r| {
            r.desc(0x4000, 0, 0x5000, 16, F_INDIRECT, 0);
            r.desc(DESC, 0, 0x4000, 16, F_INDIRECT, 0);
            0
        }),
        ("indirect loop", |r| {
            r.desc(0x4000, 0, 0x10000, 16, F_NEXT, 1);
            r.desc(0x4000, 1, 0x10000, 16, F_NEXT, 0);
            r.desc(DESC, 0, 0x4000, 32, F_INDIRECT, 0);
            0
        }),
    ];
    for (what, setup) in cases {
        let mut rig = Rig::new("file=x");
        rig.start(VERSION_1 | INDIRECT);
        let head = setup(&mut rig);
        rig.kick(head);
        assert!(rig.needs_reset(), "{what}: device should need a reset");
    }
    let mut rig = Rig::new("file=x");
    rig.start(VERSION_1);
    rig.mem.write_u16(AVAIL + 2, 1000).unwrap();
    rig.w(0x3000, 0, 2);
    rig.pci.process(&mut rig.mem);
    assert!(rig.needs_reset(), "avail index far ahead");

    // Data buffers outside RAM or absurdly long: IOERR, the queue goes on.
    let mut rig = Rig::new("file=x");
    rig.start(VERSION_1);
    rig.desc(DESC, 0, 0x10000, 16, F_NEXT, 1);
    rig.mem.write(0x10000, &[0; 16]).unwrap();
    rig.desc(DESC, 1, 0xffff_ffff_ffff_0000, 4096, F_NEXT | F_WRITE, 2);
    rig.desc(DESC, 2, 0x30000, 1, F_WRITE, 0);
    rig.kick(0);
    assert_eq!(rig.last_used().0, 1, "buffer outside RAM: IOERR");
    rig.desc(DESC, 1, 0x20000, u32::MAX, F_NEXT | F_WRITE, 2);
    rig.kick(0);
    assert_eq!(rig.last_used().0, 1, "4 GiB buffer: IOERR");
    assert!(!rig.needs_reset());
    assert_eq!(rig.request(0, 0, 512, true), (0, 513), "still serving");
}

/// MSI-X (PCI 3.0 6.8.2, virtio 1.2 4.1.4.3/4.1.5.1.2): the capability after the vendor ones,
/// vector mapping read back (NO_VECTOR for a vector that does not exist), a completion sending
/// the queue's message with the ISR queue bit clear and INTx low, masking leaving the vector
/// pending in the PBA until it is unmasked, and INTx again once MSI-X is disabled.
#[test]
fn msix_vectors_masking_and_fallback_to_intx() {
    use crate::pc::ioapic::RecordingSink;
    let mut rig = Rig::new("file=x");
    let sink = RecordingSink::default();
    let blk = VirtioBlk::new(Drive::with_backend(Box::new(rig.disk.clone()), DriveSpec::parse("file=x").unwrap()), "s");
    rig.pci = VirtioPci::new(Box::new(blk), Box::new(rig.irq.clone()), 0xc000_0000).with_msix(Box::new(sink.clone()));
    let p = &mut rig.pci;
    let mut at = p.config_read(0x34) as u8;
    let mut msix_at = None;
    while at != 0 {
        let head = p.config_read(at);
        if head & 0xff == 0x11 {
            msix_at = Some(at);
        }
        at = (head >> 8) as u8;
    }
    let cap = msix_at.expect("an MSI-X capability in the list");
    assert_eq!(p.config_read(cap) >> 16 & 0x7ff, 1, "table size 2 (queue 0 + configuration) minus 1");
    let (table, pba) = (p.config_read(cap + 4), p.config_read(cap + 8));
    assert_eq!((table & 7, pba & 7), (0, 0), "both in BAR 0");
    assert!(pba >= table + 2 * 16 && u64::from(pba) + 8 <= u64::from(BAR_SIZE));
    let (table, pba) = (u64::from(table), u64::from(pba));

    // Vector 1: address FEE00000h (APIC 0, physical), data vector 0x51, fixed, edge; unmasked.
    rig.w(table + 16, 0xfee0_0000, 4);
    rig.w(table + 20, 0, 4);
    rig.w(table + 24, 0x51, 4);
    rig.w(table + 28, 0, 4);
    rig.pci.config_write(cap, 1 << 31, 0xc); // enable
    rig.start(VERSION_1);
    rig.w(0x16, 0, 2);
    rig.w(0x1a, 1, 2); // queue_msix_vector = 1
    assert_eq!(rig.r(0x1a, 2), 1);
    rig.w(0x10, 7, 2); // config_msix_vector = 7: no such vector
    assert_eq!(rig.r(0x10, 2), 0xffff, "an impossible mapping reads back NO_VECTOR");

    assert_eq!(rig.request(0, 0, 512, true), (0, 513));
    let msgs = sink.take();
    assert_eq!(msgs.len(), 1);
    assert_eq!((msgs[0].vector, msgs[0].delivery_mode, msgs[0].destination), (0x51, 0, 0));
    assert!(!rig.irq.level(), "INTx stays low under MSI-X");
    assert_eq!(rig.r(0x1000, 1), 0, "no ISR queue bit under MSI-X");

    rig.w(table + 28, 1, 4); // mask vector 1
    assert_eq!(rig.request(0, 1, 512, true), (0, 513));
    assert!(sink.take().is_empty(), "masked: no message");
    assert_eq!(rig.r(pba, 8), 2, "vector 1 pending");
    rig.w(table + 28, 0, 4); // unmask: the pending message goes out
    assert_eq!(sink.take().len(), 1);
    assert_eq!(rig.r(pba, 8), 0);

    rig.pci.config_write(cap, 0, 0xc); // MSI-X off: back to INTx and the ISR
    assert_eq!(rig.request(0, 2, 512, true), (0, 513));
    assert!(sink.take().is_empty());
    assert!(rig.irq.level());
    assert_eq!(rig.r(0x1000, 1), 1);
}
