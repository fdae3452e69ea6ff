//! QEMU's firmware configuration device (fw_cfg), as QEMU's `docs/specs/fw_cfg.rst` documents
//! it for the PC: how a BIOS, an option ROM or a test kernel learns the CPU count, the RAM size,
//! the memory map, the ACPI tables and the kernel to boot.
//!
//! | port | register | access |
//! |---|---|---|
//! | 0x510 | selector: the item key (bit 14 "write" is ignored: no item is writable this way) | 16-bit write |
//! | 0x511 | data: the selected item's next byte; 0 past its end | 8-bit read |
//! | 0x514 | DMA address, high 32 bits, big-endian; reads give "QEMU CFG" | 32-bit |
//! | 0x518 | DMA address, low 32 bits, big-endian: writing it starts the transfer | 32-bit |
//!
//! A DMA transfer reads a 16-byte descriptor at the address (`control`, `length`: big-endian
//! u32; `address`: big-endian u64). `control` bits: ERROR (0), READ (1), SKIP (2), SELECT (3,
//! with the key in bits 31:16), WRITE (4). The device selects, then reads (bytes past the item's
//! end are zeros), writes or skips `length` bytes at the current offset, and stores `control`
//! back as 0, or with only ERROR set when anything failed: a descriptor or buffer outside RAM, or
//! a write (no item here accepts one). A descriptor that is not wholly in RAM is dropped, since
//! there is nowhere to report the error. The transfer happens when the machine next calls
//! [`FwCfg::run_dma`] (between CPU slices); guests poll `control` until it changes, as the spec
//! asks them to.
//!
//! Items: the fixed keys below ([`key`]) plus named files, listed in the directory (key 0x19:
//! big-endian count, then per file a big-endian size, key, reserved u16 and a 56-byte NUL-padded
//! name), with keys from 0x20 in the order they were added. Item contents are the builder's
//! (`emu::loaders::fw_cfg`); this file only moves bytes.

use crate::bus::PioDevice;
use crate::dma::GuestMemory;
use std::collections::BTreeMap;

/// The selector port; the data port is the next one.
pub const FW_CFG_IO_BASE: u16 = 0x510;
/// Ports decoded at [`FW_CFG_IO_BASE`].
pub const FW_CFG_IO_LEN: u16 = 2;
/// The DMA address register (8 ports).
pub const FW_CFG_DMA_BASE: u16 = 0x514;
/// Ports decoded at [`FW_CFG_DMA_BASE`].
pub const FW_CFG_DMA_LEN: u16 = 8;
/// What the DMA register reads as (big-endian "QEMU CFG").
pub const DMA_SIGNATURE: &[u8; 8] = b"QEMU CFG";

/// Fixed item keys (fw_cfg.rst, "Firmware Configuration Items"; `FW_CFG_*` in QEMU, whose
/// names these are).
#[allow(missing_docs)]
pub mod key {
    pub const SIGNATURE: u16 = 0x00;
    pub const ID: u16 = 0x01;
    pub const UUID: u16 = 0x02;
    pub const RAM_SIZE: u16 = 0x03;
    pub const NOGRAPHIC: u16 = 0x04;
    pub const NB_CPUS: u16 = 0x05;
    pub const KERNEL_ADDR: u16 = 0x07;
    pub const KERNEL_SIZE: u16 = 0x08;
    pub const KERNEL_CMDLINE: u16 = 0x09;
    pub const INITRD_ADDR: u16 = 0x0a;
    pub const INITRD_SIZE: u16 = 0x0b;
    pub const BOOT_DEVICE: u16 = 0x0c;
    pub const MAX_CPUS: u16 = 0x0f;
    pub const KERNEL_ENTRY: u16 = 0x10;
    pub const KERNEL_DATA: u16 = 0x11;
    pub const INITRD_DATA: u16 = 0x12;
    pub const CMDLINE_ADDR: u16 = 0x13;
    pub const CMDLINE_SIZE: u16 = 0x14;
    pub const CMDLINE_DATA: u16 = 0x15;
    pub const SETUP_ADDR: u16 = 0x16;
    pub const SETUP_SIZE: u16 = 0x17;
    pub const SETUP_DATA: u16 = 0x18;
    pub const FILE_DIR: u16 = 0x19;
    /// First key given to a file.
    pub const FILE_FIRST: u16 = 0x20;
    /// x86-specific: the IRQ 0 override flag, the E820 table (QEMU's own layout), ...
    pub const IRQ0_OVERRIDE: u16 = 0x8002;
}

/// FW_CFG_ID bits: the traditional interface (0) and DMA (1).
pub const ID_TRADITIONAL: u32 = 1 << 0;
/// FW_CFG_ID: the DMA interface exists.
pub const ID_DMA: u32 = 1 << 1;

/// DMA control bits (`FW_CFG_DMA_CTL_*`).
#[allow(missing_docs)]
pub mod dma {
    pub const ERROR: u32 = 1 << 0;
    pub const READ: u32 = 1 << 1;
    pub const SKIP: u32 = 1 << 2;
    pub const SELECT: u32 = 1 << 3;
    pub const WRITE: u32 = 1 << 4;
}

/// Longest file name, without its NUL.
pub const MAX_NAME: usize = 55;

/// Why an item could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FwCfgError {
    /// fw_cfg file name "{0}" is longer than 55 bytes
    #[error("fw_cfg file name \"{0}\" is longer than 55 bytes")]
    NameTooLong(String),
    /// fw_cfg file "{0}" already exists
    #[error("fw_cfg file \"{0}\" already exists")]
    Duplicate(String),
    /// an item is larger than 4 GiB (its size is a u32)
    #[error("fw_cfg item \"{0}\" is larger than 4 GiB")]
    TooLarge(String),
}

/// The fw_cfg device.
///
/// # Example
/// ```
/// use devices::bus::PioDevice;
/// use devices::pc::fw_cfg::{key, FwCfg};
/// let mut f = FwCfg::new();
/// f.pio_write(0, &key::SIGNATURE.to_le_bytes());
/// let mut sig = Vec::new();
/// for _ in 0..4 {
///     let mut b = [0u8];
///     f.pio_read(1, &mut b);
///     sig.push(b[0]);
/// }
/// assert_eq!(sig, b"QEMU");
/// ```
pub struct FwCfg {
    items: BTreeMap<u16, Vec<u8>>,
    /// Files in key order: (name, key).
    files: Vec<(String, u16)>,
    selector: u16,
    offset: u64,
    dma_high: u32,
    dma_pending: Option<u64>,
}

impl Default for FwCfg {
    fn default() -> Self {
        Self::new()
    }
}

impl FwCfg {
    /// The device with its signature, ID (DMA supported) and an empty directory.
    pub fn new() -> Self {
        let mut f =
            FwCfg { items: BTreeMap::new(), files: Vec::new(), selector: 0, offset: 0, dma_high: 0, dma_pending: None };
        f.items.insert(key::SIGNATURE, b"QEMU".to_vec());
        f.items.insert(key::ID, (ID_TRADITIONAL | ID_DMA).to_le_bytes().to_vec());
        f.rebuild_dir();
        f
    }

    /// Sets a fixed item (replacing any earlier value).
    pub fn set_item(&mut self, k: u16, data: Vec<u8>) {
        self.items.insert(k, data);
    }

    /// Adds a named file; returns its key.
    ///
    /// # Errors
    /// A name longer than [`MAX_NAME`], one already used, or more than 4 GiB of data.
    pub fn add_file(&mut self, name: &str, data: Vec<u8>) -> Result<u16, FwCfgError> {
        if name.len() > MAX_NAME {
            return Err(FwCfgError::NameTooLong(name.to_string()));
        }
        if self.files.iter().any(|(n, _)| n == name) {
            return Err(FwCfgError::Duplicate(name.to_string()));
        }
        if u32::try_from(data.len()).is_err() {
            return Err(FwCfgError::TooLarge(name.to_string()));
        }
        let k = key::FILE_FIRST + self.files.len() as u16;
        self.items.insert(k, data);
        self.files.push((name.to_string(), k));
        self.rebuild_dir();
        Ok(k)
    }

    /// Sets the contents of named file `name`, adding it if it is not there yet; returns its key.
    ///
    /// # Errors
    /// As [`FwCfg::add_file`].
    pub fn set_file(&mut self, name: &str, data: Vec<u8>) -> Result<u16, FwCfgError> {
        match self.files.iter().find(|(n, _)| n == name).map(|&(_, k)| k) {
            Some(k) => {
                self.items.insert(k, data);
                self.rebuild_dir();
                Ok(k)
            }
            None => self.add_file(name, data),
        }
    }

    /// The bytes of item `k`, if it exists.
    pub fn item(&self, k: u16) -> Option<&[u8]> {
        self.items.get(&k).map(Vec::as_slice)
    }

    fn rebuild_dir(&mut self) {
        let mut d = (self.files.len() as u32).to_be_bytes().to_vec();
        for (name, k) in &self.files {
            let size = self.items.get(k).map_or(0, Vec::len) as u32;
            d.extend_from_slice(&size.to_be_bytes());
            d.extend_from_slice(&k.to_be_bytes());
            d.extend_from_slice(&0u16.to_be_bytes());
            let mut n = [0u8; MAX_NAME + 1];
            n[..name.len()].copy_from_slice(name.as_bytes());
            d.extend_from_slice(&n);
        }
        self.items.insert(key::FILE_DIR, d);
    }

    fn select(&mut self, k: u16) {
        // Bit 14 asks for write access and bit 15 an architecture-specific item; only the
        // write bit is dropped, since no item is writable through the data port.
        self.selector = k & !0x4000;
        self.offset = 0;
    }

    fn current(&self) -> &[u8] {
        self.items.get(&self.selector).map_or(&[], Vec::as_slice)
    }

    /// The next data-port byte (0 past the end, and for a key with no item).
    fn next_byte(&mut self) -> u8 {
        let b = usize::try_from(self.offset).ok().and_then(|o| self.current().get(o).copied()).unwrap_or(0);
        self.offset = self.offset.saturating_add(1);
        b
    }

    /// Whether a DMA transfer waits for [`FwCfg::run_dma`].
    pub fn dma_pending(&self) -> bool {
        self.dma_pending.is_some()
    }

    /// Runs the DMA transfer the guest started, if any (see the module doc).
    pub fn run_dma(&mut self, mem: &mut dyn GuestMemory) {
        let Some(addr) = self.dma_pending.take() else { return };
        let mut d = [0u8; 16];
        if mem.read(addr, &mut d).is_err() {
            tracing::debug!(addr, "fw_cfg: DMA descriptor outside RAM, dropped");
            return;
        }
        let control = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
        let length = u64::from(u32::from_be_bytes([d[4], d[5], d[6], d[7]]));
        let buf = u64::from_be_bytes([d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]]);
        if control & dma::SELECT != 0 {
            self.select((control >> 16) as u16);
        }
        let ok = if control & dma::READ != 0 {
            self.dma_read_item(mem, buf, length)
        } else if control & dma::WRITE != 0 {
            false // no item is writable
        } else {
            if control & dma::SKIP != 0 {
                self.offset = self.offset.saturating_add(length);
            }
            true
        };
        let done: u32 = if ok { 0 } else { dma::ERROR };
        // The descriptor was readable, so its first word is writable too.
        let _ = mem.write(addr, &done.to_be_bytes());
    }

    /// Copies `length` bytes of the item from the current offset to guest `buf`, zeros past the
    /// end; false if any part lies outside RAM.
    fn dma_read_item(&mut self, mem: &mut dyn GuestMemory, buf: u64, length: u64) -> bool {
        let Some(end) = buf.checked_add(length) else { return false };
        // The whole buffer must be RAM before a byte is written (a bad length fails at once).
        if length > 0 && mem.read(end - 1, &mut [0u8]).is_err() {
            self.offset = self.offset.saturating_add(length);
            return false;
        }
        let item = self.current();
        let start = usize::try_from(self.offset).unwrap_or(usize::MAX).min(item.len());
        let avail = ((item.len() - start) as u64).min(length);
        let data = item[start..start + avail as usize].to_vec();
        self.offset = self.offset.saturating_add(length);
        if mem.write(buf, &data).is_err() {
            return false;
        }
        // Zero-fill the rest in page-sized pieces (no allocation as large as a bad length).
        let zeros = [0u8; 4096];
        let mut at = buf + avail;
        while at < end {
            let n = (end - at).min(zeros.len() as u64) as usize;
            if mem.write(at, &zeros[..n]).is_err() {
                return false;
            }
            at += n as u64;
        }
        true
    }

    /// Plain-data state for snapshots (the items are rebuilt from the command line).
    pub fn save_state(&self) -> FwCfgState {
        FwCfgState { selector: self.selector, offset: self.offset, dma_high: self.dma_high }
    }

    /// Puts the registers in a saved state.
    pub fn restore_state(&mut self, s: &FwCfgState) {
        (self.selector, self.offset, self.dma_high) = (s.selector, s.offset, s.dma_high);
    }
}

/// The registers, for snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FwCfgState {
    /// The selected key.
    pub selector: u16,
    /// The data offset within it.
    pub offset: u64,
    /// The DMA address's high half as written.
    pub dma_high: u32,
}

/// The selector/data pair (register at [`FW_CFG_IO_BASE`]).
impl PioDevice for FwCfg {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        if offset == 1 {
            for b in data.iter_mut() {
                *b = self.next_byte();
            }
        }
    }

    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        if offset == 0 {
            let k = match data {
                [lo] => u16::from(*lo),
                [lo, hi, ..] => u16::from_le_bytes([*lo, *hi]),
                [] => return,
            };
            self.select(k);
        }
    }
}

/// The DMA address register: a view of the same device (register at [`FW_CFG_DMA_BASE`]).
pub struct FwCfgDmaPort(pub std::rc::Rc<std::cell::RefCell<FwCfg>>);

impl PioDevice for FwCfgDmaPort {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            if let Some(s) = DMA_SIGNATURE.get(offset as usize + i) {
                *b = *s;
            }
        }
    }

    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        let mut f = self.0.borrow_mut();
        // Big-endian halves: a 32-bit write at 0 is the high half, at 4 the low half.
        let word = |d: &[u8]| {
            let mut b = [0u8; 4];
            b[4 - d.len().min(4)..].copy_from_slice(&d[..d.len().min(4)]);
            u32::from_be_bytes(b)
        };
        match offset {
            0 => f.dma_high = word(data),
            4 => {
                let addr = u64::from(f.dma_high) << 32 | u64::from(word(data));
                f.dma_pending = Some(addr);
                f.dma_high = 0;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    use crate::dma::VecMemory as Ram;

    fn read_bytes(f: &mut FwCfg, k: u16, n: usize) -> Vec<u8> {
        f.pio_write(0, &k.to_le_bytes());
        (0..n).map(|_| f.next_byte()).collect()
    }

    /// Writes a descriptor at `at` and starts the transfer through the DMA port, big-endian
    /// halves as the spec says; returns the control word the device wrote back.
    fn dma(f: &Rc<RefCell<FwCfg>>, ram: &mut Ram, at: u64, control: u32, len: u32, buf: u64) -> u32 {
        let mut d = control.to_be_bytes().to_vec();
        d.extend_from_slice(&len.to_be_bytes());
        d.extend_from_slice(&buf.to_be_bytes());
        ram.write(at, &d).unwrap();
        let mut port = FwCfgDmaPort(f.clone());
        port.pio_write(0, &((at >> 32) as u32).to_be_bytes());
        port.pio_write(4, &(at as u32).to_be_bytes());
        assert!(f.borrow().dma_pending());
        f.borrow_mut().run_dma(ram);
        let mut c = [0u8; 4];
        ram.read(at, &mut c).unwrap();
        u32::from_be_bytes(c)
    }

    #[test]
    fn signature_id_and_byte_reads_follow_the_spec() {
        let mut f = FwCfg::new();
        assert_eq!(read_bytes(&mut f, key::SIGNATURE, 4), b"QEMU");
        // ID: little-endian u32 with bit 0 (traditional) and bit 1 (DMA).
        assert_eq!(read_bytes(&mut f, key::ID, 4), [3, 0, 0, 0]);
        // Past the end and unknown keys read 0.
        assert_eq!(read_bytes(&mut f, key::SIGNATURE, 6)[4..], [0, 0]);
        assert_eq!(read_bytes(&mut f, 0x1234, 2), [0, 0]);
        // The DMA register reads as "QEMU CFG".
        let mut port = FwCfgDmaPort(Rc::new(RefCell::new(FwCfg::new())));
        let mut b = [0u8; 4];
        port.pio_read(0, &mut b);
        assert_eq!(&b, b"QEMU");
        port.pio_read(4, &mut b);
        assert_eq!(&b, b" CFG");
    }

    #[test]
    fn the_directory_lists_files_big_endian() {
        let mut f = FwCfg::new();
        let k1 = f.add_file("etc/boot-cpus", 1u16.to_le_bytes().to_vec()).unwrap();
        let k2 = f.add_file("bootorder", Vec::new()).unwrap();
        assert_eq!((k1, k2), (0x20, 0x21));
        // fw_cfg.rst: struct FWCfgFiles { be32 count; FWCfgFile f[] } with FWCfgFile { be32
        // size; be16 select; u16 reserved; char name[56] }.
        let d = read_bytes(&mut f, key::FILE_DIR, 4 + 2 * 64);
        assert_eq!(u32::from_be_bytes(d[0..4].try_into().unwrap()), 2);
        let e = &d[4..68];
        assert_eq!(u32::from_be_bytes(e[0..4].try_into().unwrap()), 2);
        assert_eq!(u16::from_be_bytes([e[4], e[5]]), 0x20);
        assert_eq!(&e[8..8 + 13], b"etc/boot-cpus");
        assert_eq!(e[8 + 13], 0);
        assert_eq!(&d[68 + 8..68 + 8 + 9], b"bootorder");
        assert!(matches!(f.add_file("bootorder", vec![]), Err(FwCfgError::Duplicate(_))));
        assert!(matches!(f.add_file(&"x".repeat(56), vec![]), Err(FwCfgError::NameTooLong(_))));
        assert!(f.add_file(&"x".repeat(55), vec![]).is_ok());
        // set_file replaces a file's contents in place: same key, the directory's size follows.
        assert_eq!(f.set_file("bootorder", b"/rom@genroms/x\n".to_vec()).unwrap(), 0x21);
        let d = read_bytes(&mut f, key::FILE_DIR, 4 + 2 * 64);
        assert_eq!(u32::from_be_bytes(d[68..72].try_into().unwrap()), 15);
        assert_eq!(read_bytes(&mut f, 0x21, 15), b"/rom@genroms/x\n");
        assert_eq!(f.set_file("etc/new", vec![1]).unwrap(), 0x23);
    }

    #[test]
    fn dma_selects_reads_skips_and_zero_fills() {
        let f = Rc::new(RefCell::new(FwCfg::new()));
        let k = f.borrow_mut().add_file("etc/e820", (1u8..=20).collect()).unwrap();
        let mut ram = Ram(vec![0xee; 0x2000]);
        // SELECT + READ of 8 bytes to 0x100.
        let c = dma(&f, &mut ram, 0x40, u32::from(k) << 16 | dma::SELECT | dma::READ, 8, 0x100);
        assert_eq!(c, 0);
        assert_eq!(&ram.0[0x100..0x108], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(ram.0[0x108], 0xee, "exactly length bytes");
        // SKIP 4, then READ 12: bytes 13-20 and four zeros past the end.
        assert_eq!(dma(&f, &mut ram, 0x40, dma::SKIP, 4, 0), 0);
        assert_eq!(dma(&f, &mut ram, 0x40, dma::READ, 12, 0x200), 0);
        assert_eq!(&ram.0[0x200..0x20c], &[13, 14, 15, 16, 17, 18, 19, 20, 0, 0, 0, 0]);
        // The byte interface continues from the DMA offset (24 now): past the end, 0.
        assert_eq!(f.borrow_mut().next_byte(), 0);
    }

    #[test]
    fn malformed_descriptors_set_the_error_bit_and_never_panic() {
        let f = Rc::new(RefCell::new(FwCfg::new()));
        let k = f.borrow_mut().add_file("etc/acpi/rsdp", vec![7; 36]).unwrap();
        let mut ram = Ram(vec![0; 0x1000]);
        let sel = u32::from(k) << 16 | dma::SELECT;
        // Buffer outside RAM, a huge length, an address that wraps, a write: ERROR alone.
        for (control, len, buf) in [
            (sel | dma::READ, 36, 0x10_0000u64),
            (sel | dma::READ, u32::MAX, 0x100),
            (sel | dma::READ, 36, u64::MAX - 4),
            (sel | dma::WRITE, 4, 0x100),
        ] {
            assert_eq!(dma(&f, &mut ram, 0x40, control, len, buf), dma::ERROR, "{control:#x} {len} {buf:#x}");
        }
        // A descriptor outside RAM: dropped, nothing written, the device still works.
        let mut port = FwCfgDmaPort(f.clone());
        port.pio_write(0, &1u32.to_be_bytes());
        port.pio_write(4, &0u32.to_be_bytes());
        f.borrow_mut().run_dma(&mut ram);
        assert!(!f.borrow().dma_pending());
        assert_eq!(dma(&f, &mut ram, 0x40, sel | dma::READ, 36, 0x100), 0);
        assert_eq!(ram.0[0x100], 7);
    }
}
