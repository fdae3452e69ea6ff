//! QEMU's `pci-testdev` (opt-in, `--device pci-testdev`): a PCI function for test suites that
//! time and count memory-mapped and port I/O writes (kvm-unit-tests' `vmexit` `pci-mem` and
//! `pci-io` cases, its `pci-testdev` driver).
//!
//! Reference: QEMU's `docs/specs/pci-testdev.rst` (the header layout below, tests 0..N per BAR
//! until the width reads as unsupported) and `docs/specs/pci-ids.rst` (1B36:0005); what the
//! document leaves open was taken from QEMU 10.0's behaviour as a guest sees it under TCG (the
//! test names, offsets, data and counts kvm-unit-tests prints): BAR 0 is 4 KiB of memory, BAR 1
//! 256 I/O ports, and each BAR offers three tests, `no-eventfd`, `wildcard-eventfd` and
//! `datamatch-eventfd`, named `mmio-…` or `portio-…`. Each BAR starts with
//!
//! | offset | field | |
//! |---|---|---|
//! | 0 | test (u8) | write: select test n of this BAR's kind (n >= 3 selects none) |
//! | 1 | width (u8) | 1: the test is a byte write |
//! | 4 | offset (u32) | where to write: 2048 + test index (memory) or 128 + test index (I/O) |
//! | 8 | data (u32) | what to write: CEh for wildcard, FAh for the other two |
//! | 12 | count (u32) | writes seen since the test was selected |
//! | 16 | name | NUL-terminated |
//!
//! (test index: 0-2 memory, 3-5 I/O). The device takes one byte at a time (a wider access is
//! its bytes, little-endian, as QEMU's memory core splits it). The no-eventfd test counts the
//! bytes written at its offset that equal its data. The two eventfd tests count nothing: on QEMU
//! their writes go to an event notifier instead of the device (under TCG too), and QEMU 10.0
//! reports 0 for them, as the suite's driver allows ("count 0 or the number of writes"). A
//! byte read at or past the name's NUL, and any read while no test is selected, give 0.
//! Checked against QEMU 10.0 with byte writes (`conformance/kernels/pcitestdev.S`); wider writes
//! to a test's offset are not (QEMU 10.0's results for them differ between the two BARs).
//!
//! Not modelled: BAR 2 (`membar=`, an optional 64-bit BAR without storage), and eventfds
//! themselves (a VMM detail: the guest sees the same counts).

use crate::bus::{MmioDevice, PioDevice};
use crate::pc::pci_host::{PciFunction, CFG_COMMAND};
use std::cell::RefCell;
use std::rc::Rc;

/// Red Hat's PCI vendor ID (QEMU's docs/specs/pci-ids.rst).
pub const VENDOR_REDHAT: u16 = 0x1b36;
/// The test device's ID under it.
pub const DEVICE_TEST: u16 = 0x0005;
/// BAR 0: memory, 4 KiB.
pub const MEM_BAR_SIZE: u32 = 0x1000;
/// BAR 1: I/O, 256 ports.
pub const IO_BAR_SIZE: u32 = 0x100;
/// Where the I/O BAR sits before firmware moves it (SeaBIOS's first I/O BAR on QEMU's PC).
pub const DEFAULT_IO_BAR: u16 = 0xc000;
/// The I/O ports a firmware may give the BAR on this board (SeaBIOS allocates 0xC000-0xFFFF),
/// which [`PciTestdevPorts`] decodes.
pub const IO_WINDOW_BASE: u16 = 0xc000;
/// Ports in that window.
pub const IO_WINDOW_LEN: u16 = 0x4000;

const TESTS_PER_BAR: usize = 3;
const TEST_NAMES: [&str; TESTS_PER_BAR] = ["no-eventfd", "wildcard-eventfd", "datamatch-eventfd"];
/// Data the wildcard test reports and the datamatch test's notifier matches.
const DATA_WILDCARD: u8 = 0xce;
const DATA_MATCH: u8 = 0xfa;
const HEADER_LEN: usize = 16;
const COMMAND_IO: u16 = 1;
const COMMAND_MEMORY: u16 = 2;

/// Which BAR an access came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    /// BAR 0, memory.
    Memory,
    /// BAR 1, I/O.
    Io,
}

/// One test: its header and name as the guest reads them, and how writes count.
#[derive(Debug, Clone)]
struct IoTest {
    /// Header (16 bytes) and the NUL-terminated name.
    bytes: Vec<u8>,
    offset: u64,
    data: u8,
    /// Whether writes are counted (no-eventfd only; see the module doc).
    counted: bool,
}

impl IoTest {
    fn new(index: usize) -> IoTest {
        let (kind, region) = if index < TESTS_PER_BAR { ("mmio", 2048) } else { ("portio", 128) };
        let test = TEST_NAMES[index % TESTS_PER_BAR];
        let data = if index % TESTS_PER_BAR == 1 { DATA_WILDCARD } else { DATA_MATCH };
        let offset = region + index as u32;
        let mut bytes = vec![0u8; HEADER_LEN];
        bytes[1] = 1; // width: byte writes
        bytes[4..8].copy_from_slice(&offset.to_le_bytes());
        bytes[8] = data;
        bytes.extend_from_slice(format!("{kind}-{test}").as_bytes());
        bytes.push(0);
        IoTest { bytes, offset: offset.into(), data, counted: index.is_multiple_of(TESTS_PER_BAR) }
    }

    fn count(&self) -> u32 {
        u32::from_le_bytes([self.bytes[12], self.bytes[13], self.bytes[14], self.bytes[15]])
    }

    fn set_count(&mut self, n: u32) {
        self.bytes[12..16].copy_from_slice(&n.to_le_bytes());
    }
}

/// The device: configuration space, its two BARs and the six tests.
#[derive(Debug, Clone)]
pub struct PciTestdev {
    command: u16,
    mem_bar: u32,
    io_bar: u32,
    interrupt_line: u8,
    tests: Vec<IoTest>,
    current: Option<usize>,
}

impl PciTestdev {
    /// The device with its memory BAR at `mem_bar` (4 KiB aligned) and its I/O BAR at
    /// [`DEFAULT_IO_BAR`], both decoding (as firmware would leave it for a direct boot).
    pub fn new(mem_bar: u32) -> PciTestdev {
        PciTestdev {
            command: COMMAND_IO | COMMAND_MEMORY,
            mem_bar: mem_bar & !(MEM_BAR_SIZE - 1),
            io_bar: u32::from(DEFAULT_IO_BAR),
            interrupt_line: 0,
            tests: (0..2 * TESTS_PER_BAR).map(IoTest::new).collect(),
            current: None,
        }
    }

    /// BAR 0's address while memory decoding is on.
    pub fn mem_base(&self) -> Option<u64> {
        (self.command & COMMAND_MEMORY != 0).then_some(u64::from(self.mem_bar))
    }

    /// BAR 1's first port while I/O decoding is on.
    pub fn io_base(&self) -> Option<u16> {
        (self.command & COMMAND_IO != 0).then_some((self.io_bar & 0xfffc) as u16)
    }

    /// A read of `data.len()` bytes at `offset` in a BAR.
    pub fn bar_read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let Some(test) = self.current.map(|i| &self.tests[i]) else { return };
        for (i, b) in data.iter_mut().enumerate() {
            // Byte by byte; QEMU answers 0 from the name's last byte (its NUL) on.
            let at = offset.saturating_add(i as u64);
            if at.saturating_add(1) < test.bytes.len() as u64 {
                *b = test.bytes[at as usize];
            }
        }
    }

    /// A write of `data` at `offset` in a BAR of `kind`.
    pub fn bar_write(&mut self, kind: BarKind, offset: u64, data: &[u8]) {
        if offset == 0 {
            let n = usize::from(data.first().copied().unwrap_or(0));
            self.current = (n < TESTS_PER_BAR).then(|| n + if kind == BarKind::Io { TESTS_PER_BAR } else { 0 });
            if let Some(i) = self.current {
                self.tests[i].set_count(0);
            }
            return;
        }
        let Some(test) = self.current.map(|i| &mut self.tests[i]) else { return };
        // Byte by byte: only the byte that lands on the test's offset can count.
        let Some(&byte) = test.offset.checked_sub(offset).and_then(|i| data.get(i as usize)) else { return };
        if test.counted && byte == test.data {
            let n = test.count().wrapping_add(1);
            test.set_count(n);
        }
    }
}

impl PciFunction for PciTestdev {
    fn config_read(&mut self, offset: u8) -> u32 {
        match offset & 0xfc {
            0x00 => u32::from(DEVICE_TEST) << 16 | u32::from(VENDOR_REDHAT),
            CFG_COMMAND => u32::from(self.command),
            0x08 => 0x00ff_0000, // revision 0, class FFh ("other"), as QEMU's PCI_CLASS_OTHERS
            0x10 => self.mem_bar,
            0x14 => self.io_bar | 1,                                       // bit 0: I/O space
            0x2c => u32::from(0x1100u16) << 16 | u32::from(VENDOR_REDHAT), // subsystem (QEMU's)
            0x3c => u32::from(self.interrupt_line),
            _ => 0,
        }
    }

    fn config_write(&mut self, offset: u8, value: u32, byte_mask: u8) {
        let mut old = self.config_read(offset).to_le_bytes();
        for (i, b) in value.to_le_bytes().into_iter().enumerate() {
            if byte_mask & (1 << i) != 0 {
                old[i] = b;
            }
        }
        let v = u32::from_le_bytes(old);
        match offset & 0xfc {
            CFG_COMMAND => self.command = (v as u16) & (COMMAND_IO | COMMAND_MEMORY | 0x4 | 0x400),
            // Sizing: the bits below the BAR's size read 0 (PCI 3.0, 6.2.5.1).
            0x10 => self.mem_bar = v & !(MEM_BAR_SIZE - 1),
            // All 32 address bits are writable, as on QEMU's device: SeaBIOS sizes the BAR
            // from all 32 bits (0000FF01h would read as a 4 GiB - 64 KiB I/O range).
            0x14 => self.io_bar = v & !(IO_BAR_SIZE - 1),
            0x3c => self.interrupt_line = v as u8,
            _ => {}
        }
    }
}

/// The device shared by the PCI host, the memory window and the I/O window.
pub type SharedPciTestdev = Rc<RefCell<PciTestdev>>;

impl PciFunction for SharedPciTestdev {
    fn config_read(&mut self, offset: u8) -> u32 {
        self.borrow_mut().config_read(offset)
    }
    fn config_write(&mut self, offset: u8, value: u32, byte_mask: u8) {
        self.borrow_mut().config_write(offset, value, byte_mask);
    }
}

/// Ports [`IO_WINDOW_BASE`].. : reach the device where its I/O BAR decodes.
pub struct PciTestdevPorts(pub SharedPciTestdev);

impl PciTestdevPorts {
    fn offset(&self, port_offset: u16) -> Option<u64> {
        let port = IO_WINDOW_BASE + port_offset;
        let base = self.0.borrow().io_base()?;
        (port >= base && u32::from(port - base) < IO_BAR_SIZE).then_some(u64::from(port - base))
    }
}

impl PioDevice for PciTestdevPorts {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        match self.offset(offset) {
            Some(o) => self.0.borrow_mut().bar_read(o, data),
            None => data.fill(0xff),
        }
    }
    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        if let Some(o) = self.offset(offset) {
            self.0.borrow_mut().bar_write(BarKind::Io, o, data);
        }
    }
}

/// The PCI memory window with a pci-testdev beside the virtio functions: an access inside the
/// test device's memory BAR goes to it, any other to `inner` (the virtio functions' window).
pub struct PciMemWindow<W: MmioDevice> {
    /// Guest physical address of offset 0.
    pub base: u64,
    /// The virtio functions' window, for every other address.
    pub inner: W,
    /// The test device, once `--device pci-testdev` plugged it in.
    pub testdev: Rc<RefCell<Option<SharedPciTestdev>>>,
}

impl<W: MmioDevice> PciMemWindow<W> {
    fn testdev_offset(&self, offset: u64) -> Option<(SharedPciTestdev, u64)> {
        let dev = self.testdev.borrow().clone()?;
        let bar = dev.borrow().mem_base()?;
        let addr = self.base + offset;
        (addr >= bar && addr - bar < u64::from(MEM_BAR_SIZE)).then_some((dev, addr - bar))
    }
}

impl<W: MmioDevice> MmioDevice for PciMemWindow<W> {
    fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        match self.testdev_offset(offset) {
            Some((dev, o)) => dev.borrow_mut().bar_read(o, data),
            None => self.inner.mmio_read(offset, data),
        }
    }
    fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        match self.testdev_offset(offset) {
            Some((dev, o)) => dev.borrow_mut().bar_write(BarKind::Memory, o, data),
            None => self.inner.mmio_write(offset, data),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Expected values: QEMU's docs/specs/pci-testdev.rst and pci-ids.rst, and the BAR sizing
    //! rule of the PCI Local Bus Specification 3.0, 6.2.5.1.
    use super::*;

    fn read_u32(d: &mut PciTestdev, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        d.bar_read(offset, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn identification_and_bar_sizing() {
        let mut d = PciTestdev::new(0xc001_0000);
        assert_eq!(d.config_read(0), 0x0005_1b36);
        d.config_write(0x10, 0xffff_ffff, 0xf);
        assert_eq!(d.config_read(0x10), !(MEM_BAR_SIZE - 1)); // 4 KiB, 32-bit memory
        d.config_write(0x14, 0xffff_ffff, 0xf);
        assert_eq!(d.config_read(0x14), 0xffff_ff01); // 256 ports, I/O space
        d.config_write(0x14, 0xc100, 0xf);
        assert_eq!(d.io_base(), Some(0xc100));
        d.config_write(CFG_COMMAND, 0, 0x3);
        assert_eq!((d.io_base(), d.mem_base()), (None, None));
    }

    /// The suite's scan: select tests 0.. through a BAR until the width is unsupported; write the
    /// data at the offset 16 times, and other data twice (once in a word's high byte); the
    /// counts are QEMU 10.0's (16 for no-eventfd, 0 for the eventfd tests; see the module doc).
    #[test]
    fn each_bar_offers_three_tests_that_count_their_writes() {
        let mut d = PciTestdev::new(0xc001_0000);
        for (kind, prefix) in [(BarKind::Memory, "mmio-"), (BarKind::Io, "portio-")] {
            let mut names = Vec::new();
            for n in 0u8.. {
                d.bar_write(kind, 0, &[n]);
                let mut width = [0u8];
                d.bar_read(1, &mut width);
                if width[0] != 1 {
                    break;
                }
                let (off, data) = (read_u32(&mut d, 4), read_u32(&mut d, 8));
                for _ in 0..16 {
                    d.bar_write(kind, u64::from(off), &[data as u8]);
                }
                d.bar_write(kind, u64::from(off), &[data as u8 ^ 1]);
                d.bar_write(kind, u64::from(off) - 1, &[0, data as u8 ^ 1]); // its byte differs
                let mut name = Vec::new();
                for i in 16.. {
                    let mut c = [0u8];
                    d.bar_read(i, &mut c);
                    if c[0] == 0 {
                        break;
                    }
                    name.push(c[0]);
                }
                names.push((String::from_utf8(name).unwrap(), read_u32(&mut d, 12)));
            }
            let expect: Vec<(String, u32)> = [("no-eventfd", 16), ("wildcard-eventfd", 0), ("datamatch-eventfd", 0)]
                .iter()
                .map(|(n, c)| (format!("{prefix}{n}"), *c))
                .collect();
            assert_eq!(names, expect);
        }
    }
}
