//! The I/O buses: port I/O (64 Ki ports) and MMIO dispatch to devices by offset.
//!
//! Port I/O uses a table of 65,536 slot numbers, one per port, so a guest `IN`/`OUT` costs one index
//! and no search. MMIO keeps its ranges in a `Vec` sorted by base address and finds the range with a
//! binary search. Devices see `(offset, data)` relative to their base, never the absolute address
//! (docs/ARCHITECTURE.md, "Conventions"). An access nothing claims reads as all ones (the floating ISA/PCI bus) and
//! writes go nowhere; both are logged at trace level.
//!
//! Devices are owned as `Box<dyn PioDevice>` / `Box<dyn MmioDevice>`; a machine that also needs to
//! call a device directly (to queue serial input, ask the PIC for a vector) registers a shared handle,
//! `Rc<RefCell<D>>` or `Arc<Mutex<D>>`, which implement the traits by forwarding.
//!
//! Not modelled: accesses spanning two devices (the device at the first byte gets the whole access),
//! bus timing, I/O permission (the CPU checks TSS bitmaps before it reaches the bus).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use tracing::trace;

/// Errors from building a bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The range {base:#x}+{len:#x} is empty or runs past the end of the address space.
    #[error("range {base:#x}+{len:#x} is empty or runs past the end of the address space")]
    BadRange {
        /// First address of the range.
        base: u64,
        /// Length of the range.
        len: u64,
    },
    /// The range {base:#x}+{len:#x} overlaps a range already registered.
    #[error("range {base:#x}+{len:#x} overlaps a registered device")]
    Overlap {
        /// First address of the range.
        base: u64,
        /// Length of the range.
        len: u64,
    },
}

/// A device reached through port I/O; `offset` is relative to the device's base port.
pub trait PioDevice {
    /// Reads `data.len()` bytes (1, 2 or 4) at `offset`; leave bytes untouched to read all ones.
    fn pio_read(&mut self, offset: u16, data: &mut [u8]);
    /// Writes `data.len()` bytes (1, 2 or 4) at `offset`.
    fn pio_write(&mut self, offset: u16, data: &[u8]);
}

/// A device reached through memory-mapped I/O; `offset` is relative to the device's base address.
pub trait MmioDevice {
    /// Reads `data.len()` bytes (1, 2, 4 or 8) at `offset`; leave bytes untouched to read all ones.
    fn mmio_read(&mut self, offset: u64, data: &mut [u8]);
    /// Writes `data.len()` bytes (1, 2, 4 or 8) at `offset`.
    fn mmio_write(&mut self, offset: u64, data: &[u8]);
}

impl<T: PioDevice + ?Sized> PioDevice for Rc<RefCell<T>> {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        self.borrow_mut().pio_read(offset, data);
    }
    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        self.borrow_mut().pio_write(offset, data);
    }
}

impl<T: PioDevice + ?Sized> PioDevice for Arc<Mutex<T>> {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        self.lock().unwrap_or_else(|e| e.into_inner()).pio_read(offset, data);
    }
    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        self.lock().unwrap_or_else(|e| e.into_inner()).pio_write(offset, data);
    }
}

impl<T: MmioDevice + ?Sized> MmioDevice for Rc<RefCell<T>> {
    fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        self.borrow_mut().mmio_read(offset, data);
    }
    fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        self.borrow_mut().mmio_write(offset, data);
    }
}

impl<T: MmioDevice + ?Sized> MmioDevice for Arc<Mutex<T>> {
    fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        self.lock().unwrap_or_else(|e| e.into_inner()).mmio_read(offset, data);
    }
    fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        self.lock().unwrap_or_else(|e| e.into_inner()).mmio_write(offset, data);
    }
}

/// Number of I/O ports on x86.
const PORT_COUNT: usize = 0x1_0000;
/// Slot value meaning "no device at this port".
const NO_DEVICE: u16 = u16::MAX;

struct PioEntry {
    base: u16,
    dev: Box<dyn PioDevice>,
}

/// Port-I/O dispatch: one table entry per port.
///
/// # Example
/// ```
/// use devices::bus::{PioBus, PioDevice};
/// struct Echo(u8);
/// impl PioDevice for Echo {
///     fn pio_read(&mut self, offset: u16, data: &mut [u8]) { data.fill(self.0 + offset as u8) }
///     fn pio_write(&mut self, _offset: u16, data: &[u8]) { self.0 = data[0] }
/// }
/// let mut bus = PioBus::new();
/// bus.register(0x3f8, 8, Box::new(Echo(0)))?;
/// bus.write(0x3f8, &[0x40]);
/// let mut byte = [0];
/// bus.read(0x3fa, &mut byte);
/// assert_eq!(byte, [0x42]); // the device saw offset 2
/// bus.read(0x2f8, &mut byte);
/// assert_eq!(byte, [0xff]); // nothing there
/// # Ok::<(), devices::bus::BusError>(())
/// ```
pub struct PioBus {
    slots: Vec<u16>,
    devices: Vec<PioEntry>,
    unclaimed: u64,
}

impl Default for PioBus {
    fn default() -> Self {
        Self::new()
    }
}

impl PioBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self { slots: vec![NO_DEVICE; PORT_COUNT], devices: Vec::new(), unclaimed: 0 }
    }

    /// Places `dev` at ports `base..base + len`.
    ///
    /// # Errors
    /// [`BusError::BadRange`] if `len` is 0 or the range passes port 0xffff; [`BusError::Overlap`] if
    /// a port is already taken.
    pub fn register(&mut self, base: u16, len: u16, dev: Box<dyn PioDevice>) -> Result<(), BusError> {
        let start = usize::from(base);
        let end = start + usize::from(len);
        let range_error = BusError::BadRange { base: base.into(), len: len.into() };
        if len == 0 || end > PORT_COUNT || self.devices.len() >= usize::from(NO_DEVICE) {
            return Err(range_error);
        }
        if self.slots[start..end].iter().any(|&s| s != NO_DEVICE) {
            return Err(BusError::Overlap { base: base.into(), len: len.into() });
        }
        let index = u16::try_from(self.devices.len()).map_err(|_| range_error)?;
        self.slots[start..end].fill(index);
        self.devices.push(PioEntry { base, dev });
        Ok(())
    }

    /// Whether a device claims `port`.
    pub fn is_claimed(&self, port: u16) -> bool {
        self.slots[usize::from(port)] != NO_DEVICE
    }

    /// Accesses no device claimed so far.
    pub fn unclaimed_accesses(&self) -> u64 {
        self.unclaimed
    }

    /// A guest `IN`: fills `data` from the device at `port`, or with 0xff if there is none.
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        data.fill(0xff);
        match self.devices.get_mut(usize::from(self.slots[usize::from(port)])) {
            Some(entry) => entry.dev.pio_read(port.wrapping_sub(entry.base), data),
            None => {
                self.unclaimed += 1;
                trace!(port, len = data.len(), "pio read from unclaimed port");
            }
        }
    }

    /// A guest `OUT`: hands `data` to the device at `port`, or drops it.
    pub fn write(&mut self, port: u16, data: &[u8]) {
        match self.devices.get_mut(usize::from(self.slots[usize::from(port)])) {
            Some(entry) => entry.dev.pio_write(port.wrapping_sub(entry.base), data),
            None => {
                self.unclaimed += 1;
                trace!(port, len = data.len(), "pio write to unclaimed port");
            }
        }
    }
}

struct MmioEntry {
    base: u64,
    len: u64,
    dev: Box<dyn MmioDevice>,
}

/// MMIO dispatch: ranges sorted by base, found by binary search.
///
/// # Example
/// ```
/// use devices::bus::{MmioBus, MmioDevice};
/// struct Reg(u32);
/// impl MmioDevice for Reg {
///     fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
///         if offset == 0 && data.len() == 4 { data.copy_from_slice(&self.0.to_le_bytes()) }
///     }
///     fn mmio_write(&mut self, offset: u64, data: &[u8]) {
///         if let (0, Ok(bytes)) = (offset, <[u8; 4]>::try_from(data)) { self.0 = u32::from_le_bytes(bytes) }
///     }
/// }
/// let mut bus = MmioBus::new();
/// bus.register(0xfee0_0000, 0x1000, Box::new(Reg(0)))?;
/// bus.write(0xfee0_0000, &7u32.to_le_bytes());
/// let mut word = [0; 4];
/// bus.read(0xfee0_0000, &mut word);
/// assert_eq!(u32::from_le_bytes(word), 7);
/// # Ok::<(), devices::bus::BusError>(())
/// ```
#[derive(Default)]
pub struct MmioBus {
    ranges: Vec<MmioEntry>,
    unclaimed: u64,
}

impl MmioBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Places `dev` at addresses `base..base + len`.
    ///
    /// # Errors
    /// [`BusError::BadRange`] if `len` is 0 or the range wraps past 2^64; [`BusError::Overlap`] if it
    /// overlaps a registered range.
    pub fn register(&mut self, base: u64, len: u64, dev: Box<dyn MmioDevice>) -> Result<(), BusError> {
        let Some(end) = base.checked_add(len).filter(|_| len != 0) else {
            return Err(BusError::BadRange { base, len });
        };
        let at = self.ranges.partition_point(|r| r.base < base);
        let overlaps_prev = at > 0 && self.ranges[at - 1].base + self.ranges[at - 1].len > base;
        let overlaps_next = self.ranges.get(at).is_some_and(|r| r.base < end);
        if overlaps_prev || overlaps_next {
            return Err(BusError::Overlap { base, len });
        }
        self.ranges.insert(at, MmioEntry { base, len, dev });
        Ok(())
    }

    /// Accesses no device claimed so far.
    pub fn unclaimed_accesses(&self) -> u64 {
        self.unclaimed
    }

    /// Whether a device claims `addr`.
    pub fn is_claimed(&self, addr: u64) -> bool {
        self.find(addr).is_some()
    }

    fn find(&self, addr: u64) -> Option<usize> {
        // The last range starting at or below addr is the only candidate.
        let at = self.ranges.partition_point(|r| r.base <= addr).checked_sub(1)?;
        let r = &self.ranges[at];
        (addr - r.base < r.len).then_some(at)
    }

    /// A guest load from `addr`: fills `data` from the device there, or with 0xff.
    pub fn read(&mut self, addr: u64, data: &mut [u8]) {
        data.fill(0xff);
        match self.find(addr) {
            Some(i) => {
                let r = &mut self.ranges[i];
                r.dev.mmio_read(addr - r.base, data);
            }
            None => {
                self.unclaimed += 1;
                trace!(addr, len = data.len(), "mmio read from unclaimed address");
            }
        }
    }

    /// A guest store to `addr`: hands `data` to the device there, or drops it.
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        match self.find(addr) {
            Some(i) => {
                let r = &mut self.ranges[i];
                r.dev.mmio_write(addr - r.base, data);
            }
            None => {
                self.unclaimed += 1;
                trace!(addr, len = data.len(), "mmio write to unclaimed address");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the last offset and width it saw.
    #[derive(Default)]
    struct Probe {
        last: Option<(u64, usize, bool)>,
    }
    impl PioDevice for Probe {
        fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
            self.last = Some((offset.into(), data.len(), false));
            data.fill(0x11);
        }
        fn pio_write(&mut self, offset: u16, data: &[u8]) {
            self.last = Some((offset.into(), data.len(), true));
        }
    }
    impl MmioDevice for Probe {
        fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
            self.last = Some((offset, data.len(), false));
            data.fill(0x22);
        }
        fn mmio_write(&mut self, offset: u64, data: &[u8]) {
            self.last = Some((offset, data.len(), true));
        }
    }

    #[test]
    fn ports_dispatch_by_offset() {
        let a = Rc::new(RefCell::new(Probe::default()));
        let b = Rc::new(RefCell::new(Probe::default()));
        let mut bus = PioBus::new();
        bus.register(0x20, 2, Box::new(a.clone())).unwrap();
        bus.register(0xa0, 2, Box::new(b.clone())).unwrap();
        let mut w = [0; 2];
        bus.read(0xa1, &mut w);
        assert_eq!(w, [0x11, 0x11]);
        assert_eq!(b.borrow().last, Some((1, 2, false)));
        bus.write(0x20, &[1]);
        assert_eq!(a.borrow().last, Some((0, 1, true)));
        // Port 0x22 belongs to nobody: all ones, counted.
        let mut byte = [0];
        bus.read(0x22, &mut byte);
        assert_eq!(byte, [0xff]);
        assert_eq!(bus.unclaimed_accesses(), 1);
    }

    #[test]
    fn port_registration_errors() {
        let mut bus = PioBus::new();
        bus.register(0x3f8, 8, Box::new(Probe::default())).unwrap();
        assert_eq!(bus.register(0x3ff, 1, Box::new(Probe::default())), Err(BusError::Overlap { base: 0x3ff, len: 1 }));
        assert!(matches!(bus.register(0xffff, 2, Box::new(Probe::default())), Err(BusError::BadRange { .. })));
        assert!(matches!(bus.register(0x10, 0, Box::new(Probe::default())), Err(BusError::BadRange { .. })));
        bus.register(0xffff, 1, Box::new(Probe::default())).unwrap();
        assert!(bus.is_claimed(0xffff) && !bus.is_claimed(0x3f7));
    }

    #[test]
    fn mmio_binary_search_finds_each_range() {
        let mut bus = MmioBus::new();
        let probes: Vec<_> = (0..5).map(|_| Rc::new(RefCell::new(Probe::default()))).collect();
        // Registered out of order on purpose.
        for &i in &[3usize, 0, 4, 1, 2] {
            bus.register(0x1000 * (i as u64 + 1), 0x100, Box::new(probes[i].clone())).unwrap();
        }
        for (i, p) in probes.iter().enumerate() {
            let mut d = [0; 4];
            bus.read(0x1000 * (i as u64 + 1) + 0xfc, &mut d);
            assert_eq!(d, [0x22; 4]);
            assert_eq!(p.borrow().last, Some((0xfc, 4, false)));
        }
        let mut d = [0; 8];
        bus.read(0x1100, &mut d); // just past range 0
        assert_eq!(d, [0xff; 8]);
        bus.write(0xfff, &[0]);
        assert_eq!(bus.unclaimed_accesses(), 2);
        assert_eq!(
            bus.register(0x10ff, 2, Box::new(Probe::default())),
            Err(BusError::Overlap { base: 0x10ff, len: 2 })
        );
        assert_eq!(
            bus.register(0xf00, 0x101, Box::new(Probe::default())),
            Err(BusError::Overlap { base: 0xf00, len: 0x101 })
        );
        assert!(matches!(bus.register(u64::MAX, 2, Box::new(Probe::default())), Err(BusError::BadRange { .. })));
        bus.register(u64::MAX - 2, 2, Box::new(Probe::default())).unwrap();
        assert!(bus.is_claimed(u64::MAX - 1) && !bus.is_claimed(u64::MAX));
    }

    #[test]
    fn arc_mutex_handles_forward() {
        let dev = Arc::new(Mutex::new(Probe::default()));
        let mut bus = MmioBus::new();
        bus.register(0, 16, Box::new(dev.clone())).unwrap();
        bus.write(8, &[0; 2]);
        assert_eq!(dev.lock().unwrap().last, Some((8, 2, true)));
    }
}
