//! QEMU's `pc-testdev`: the ISA test device kvm-unit-tests expects (`-device pc-testdev`).
//!
//! Facts from QEMU's `hw/misc/pc-testdev.c` (read, not copied) and from how kvm-unit-tests uses
//! the device:
//! - ports 0xE0-0xE3 and 0xE8-0xEB: one 32-bit scratch register; an access of any width at
//!   offset `o` reads or writes the bytes `o & 3 ..` of it (`realmode` and `emulator` check
//!   IN/OUT of every width and string I/O against it);
//! - ports 0xE4-0xE7: "flush page": a 32-bit write of a guest-physical address makes QEMU drop
//!   the host's mapping of that page (to force KVM to rebuild its shadow entries); nothing the
//!   guest can observe, so a write is accepted and ignored here;
//! - ports 0x2000-0x2017: one port per interrupt line: a byte write sets the line's level
//!   (non-zero: asserted) — `set_irq_line()` in kvm-unit-tests' `lib/x86/apic.c`; a wider
//!   write is split into bytes for the following lines, as QEMU's memory core splits it;
//! - memory 0xFF000000-0xFF00FFFF: 64 KiB of plain memory behind MMIO, so tests can run
//!   instructions against an address that is not RAM (the `emulator` test's "test RAM").
//!
//! Not modelled: nothing else exists. The device is opt-in (`--device pc-testdev`); its state is
//! not in snapshots.

use crate::bus::{MmioDevice, PioDevice};
use crate::irq::IrqLine;

/// The scratch register's ports and the flush port: 0xE0-0xEB.
pub const TESTDEV_PORTS_BASE: u16 = 0xe0;
/// Ports in the 0xE0 range (scratch, flush, scratch again).
pub const TESTDEV_PORTS_LEN: u16 = 12;
/// The first interrupt-line port.
pub const TESTDEV_IRQ_BASE: u16 = 0x2000;
/// Interrupt lines the device drives (one port each).
pub const TESTDEV_IRQ_LINES: u16 = 24;
/// Where the test memory is.
pub const TESTDEV_IOMEM_BASE: u64 = 0xff00_0000;
/// The test memory's size.
pub const TESTDEV_IOMEM_LEN: u64 = 0x1_0000;

/// Offset of the flush-page port in the 0xE0 range.
const FLUSH_OFFSET: u16 = 4;

/// Ports 0xE0-0xEB: the scratch register (twice) and the flush-page port.
///
/// # Example
/// ```
/// use devices::bus::PioDevice;
/// use devices::pc::testdev::TestdevPorts;
/// let mut p = TestdevPorts::default();
/// p.pio_write(0, &0x1234_5678u32.to_le_bytes());
/// p.pio_write(9, &[0xab]); // port 0xE9: byte 1 of the same register
/// let mut r = [0u8; 4];
/// p.pio_read(0, &mut r);
/// assert_eq!(u32::from_le_bytes(r), 0x1234_ab78);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestdevPorts {
    scratch: u32,
}

impl TestdevPorts {
    /// The byte lanes of the scratch register an access at `offset` of `len` bytes covers.
    fn lanes(offset: u16, len: usize) -> std::ops::Range<usize> {
        let start = usize::from(offset & 3);
        start..(start + len).min(4)
    }
}

impl PioDevice for TestdevPorts {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        if (FLUSH_OFFSET..FLUSH_OFFSET + 4).contains(&offset) {
            return; // write-only: reads float
        }
        let bytes = self.scratch.to_le_bytes();
        let lanes = Self::lanes(offset, data.len());
        data.fill(0);
        data[..lanes.len()].copy_from_slice(&bytes[lanes]);
    }

    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        if (FLUSH_OFFSET..FLUSH_OFFSET + 4).contains(&offset) {
            // The host-side page flush has no guest-visible effect in an interpreter.
            return;
        }
        let mut bytes = self.scratch.to_le_bytes();
        let lanes = Self::lanes(offset, data.len());
        let n = lanes.len();
        bytes[lanes].copy_from_slice(&data[..n]);
        self.scratch = u32::from_le_bytes(bytes);
    }
}

/// Ports 0x2000-0x2017: a byte written at `offset` sets interrupt line `offset` to (byte != 0).
pub struct TestdevIrqPorts<I: IrqLine> {
    lines: Vec<I>,
}

impl<I: IrqLine> TestdevIrqPorts<I> {
    /// The device driving `lines` (line n at port 0x2000 + n).
    pub fn new(lines: Vec<I>) -> Self {
        TestdevIrqPorts { lines }
    }
}

impl<I: IrqLine> PioDevice for TestdevIrqPorts<I> {
    fn pio_read(&mut self, _offset: u16, _data: &mut [u8]) {
        // Write-only: reads float.
    }

    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        // The ports are byte-wide: QEMU splits a wider access into byte accesses to the
        // following ports (kvm-unit-tests' realmode test raises IRQ 11 with an OUTL to 0x200B,
        // which also lowers lines 12-14).
        for (i, b) in data.iter().enumerate() {
            if let Some(line) = self.lines.get(usize::from(offset) + i) {
                line.set_level(*b != 0);
            }
        }
    }
}

/// The 64 KiB of test memory at 0xFF000000.
pub struct TestdevIomem {
    bytes: Vec<u8>,
}

impl Default for TestdevIomem {
    fn default() -> Self {
        TestdevIomem { bytes: vec![0; TESTDEV_IOMEM_LEN as usize] }
    }
}

impl TestdevIomem {
    /// The bytes an access at `offset` of `len` bytes covers (clipped at the end of the memory).
    fn span(offset: u64, len: usize) -> std::ops::Range<usize> {
        let start = (offset.min(TESTDEV_IOMEM_LEN)) as usize;
        start..(start + len).min(TESTDEV_IOMEM_LEN as usize)
    }
}

impl MmioDevice for TestdevIomem {
    fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        let span = Self::span(offset, data.len());
        let n = span.len();
        data[..n].copy_from_slice(&self.bytes[span]);
    }

    fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        let span = Self::span(offset, data.len());
        let n = span.len();
        self.bytes[span].copy_from_slice(&data[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[derive(Clone, Default)]
    struct Level(Rc<RefCell<Vec<bool>>>);
    impl IrqLine for Level {
        fn set_level(&self, asserted: bool) {
            self.0.borrow_mut().push(asserted);
        }
    }

    fn read(p: &mut TestdevPorts, offset: u16, len: usize) -> u32 {
        let mut b = [0u8; 4];
        p.pio_read(offset, &mut b[..len]);
        u32::from_le_bytes(b)
    }

    // kvm-unit-tests' realmode test: OUT AL/AX/EAX to 0xE0 then IN of the same width reads it
    // back; emulator's string I/O test writes bytes through 0xE0..0xE3 and reads the dword.
    #[test]
    fn scratch_register_byte_lanes() {
        let mut p = TestdevPorts::default();
        p.pio_write(0, &[0xff]);
        assert_eq!(read(&mut p, 0, 1), 0xff);
        p.pio_write(0, &0xbeefu16.to_le_bytes());
        assert_eq!(read(&mut p, 0, 2), 0xbeef);
        p.pio_write(0, &0xdead_beefu32.to_le_bytes());
        assert_eq!(read(&mut p, 0, 4), 0xdead_beef);
        for (i, b) in [0x11u8, 0x22, 0x33, 0x44].iter().enumerate() {
            p.pio_write(8 + i as u16, &[*b]);
        }
        assert_eq!(read(&mut p, 0, 4), 0x4433_2211);
        assert_eq!(read(&mut p, 2, 2), 0x4433);
        assert_eq!(read(&mut p, 11, 1), 0x44);
        // A word at offset 3 covers only the last lane.
        assert_eq!(read(&mut p, 3, 2), 0x44);
    }

    #[test]
    fn flush_port_does_not_touch_the_register() {
        let mut p = TestdevPorts::default();
        p.pio_write(0, &7u32.to_le_bytes());
        p.pio_write(4, &0x1000u32.to_le_bytes());
        assert_eq!(read(&mut p, 0, 4), 7);
    }

    #[test]
    fn irq_ports_set_levels_by_line() {
        let lines: Vec<Level> = (0..TESTDEV_IRQ_LINES).map(|_| Level::default()).collect();
        let mut d = TestdevIrqPorts::new(lines.clone());
        d.pio_write(0x0e, &[1]);
        d.pio_write(0x0e, &[0]);
        d.pio_write(0x13, &[5]);
        d.pio_write(0x0b, &1u32.to_le_bytes()); // one byte per line: 11 up, 12-14 down
        d.pio_write(0x16, &[0, 1]); // lines 22, 23
        d.pio_write(30, &[1]); // beyond the lines: ignored
        assert_eq!(*lines[0x0e].0.borrow(), vec![true, false, false]);
        assert_eq!(*lines[0x13].0.borrow(), vec![true]);
        assert_eq!(*lines[0x0b].0.borrow(), vec![true]);
        assert_eq!(*lines[0x0c].0.borrow(), vec![false]);
        assert_eq!(*lines[0x17].0.borrow(), vec![true]);
        assert!(lines[0].0.borrow().is_empty());
    }

    #[test]
    fn iomem_is_plain_memory_clipped_at_its_end() {
        let mut m = TestdevIomem::default();
        m.mmio_write(0x100, &0x0102_0304_0506_0708u64.to_le_bytes());
        let mut b = [0u8; 8];
        m.mmio_read(0x100, &mut b);
        assert_eq!(u64::from_le_bytes(b), 0x0102_0304_0506_0708);
        let mut w = [0u8; 2];
        m.mmio_read(0x103, &mut w);
        assert_eq!(u16::from_le_bytes(w), 0x0405);
        m.mmio_write(TESTDEV_IOMEM_LEN - 1, &[9, 9, 9, 9]);
        let mut last = [0xffu8; 4];
        m.mmio_read(TESTDEV_IOMEM_LEN - 1, &mut last);
        assert_eq!(last, [9, 0xff, 0xff, 0xff]);
    }
}
