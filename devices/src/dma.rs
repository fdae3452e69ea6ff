//! Devices reaching guest memory (DMA): the [`GuestMemory`] trait the machine implements over its
//! one RAM mapping, so device models stay free of `unsafe` and of any knowledge of engines.
//!
//! Every access is bounds-checked by the implementation: an address range not wholly inside guest
//! RAM is a [`DmaError`], never a host access outside the mapping. Guest-controlled addresses (a
//! virtqueue's descriptors) go through here, so a guest that hands a device a bad address gets an
//! error status or a device reset, never a host fault.

/// A DMA access outside guest RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("DMA access to {len} bytes at {addr:#x} is outside guest RAM")]
pub struct DmaError {
    /// Guest physical address of the access.
    pub addr: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// Guest physical memory as a device sees it.
pub trait GuestMemory {
    /// Copies `buf.len()` bytes from guest physical `addr` into `buf`.
    ///
    /// # Errors
    /// [`DmaError`] if the range is not wholly inside RAM (nothing is read).
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError>;

    /// Copies `data` to guest physical `addr`.
    ///
    /// # Errors
    /// [`DmaError`] if the range is not wholly inside RAM (nothing is written).
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaError>;

    /// Reads a little-endian u16.
    ///
    /// # Errors
    /// As [`GuestMemory::read`].
    fn read_u16(&self, addr: u64) -> Result<u16, DmaError> {
        let mut b = [0; 2];
        self.read(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Writes a little-endian u16.
    ///
    /// # Errors
    /// As [`GuestMemory::write`].
    fn write_u16(&mut self, addr: u64, value: u16) -> Result<(), DmaError> {
        self.write(addr, &value.to_le_bytes())
    }
}

/// Guest memory held in a `Vec` (tests, fuzzing, host-side benchmarks).
///
/// # Example
/// ```
/// use devices::dma::{GuestMemory, VecMemory};
/// let mut m = VecMemory(vec![0; 16]);
/// m.write(14, &[1, 2]).unwrap();
/// assert_eq!(m.read_u16(14).unwrap(), 0x0201);
/// assert!(m.write(15, &[1, 2]).is_err());
/// assert!(m.read(u64::MAX, &mut [0]).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VecMemory(pub Vec<u8>);

fn range(len: usize, addr: u64, n: usize) -> Result<std::ops::Range<usize>, DmaError> {
    let err = DmaError { addr, len: n as u64 };
    let start = usize::try_from(addr).map_err(|_| err)?;
    let end = start.checked_add(n).filter(|&e| e <= len).ok_or(err)?;
    Ok(start..end)
}

impl GuestMemory for VecMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        buf.copy_from_slice(&self.0[range(self.0.len(), addr, buf.len())?]);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaError> {
        let r = range(self.0.len(), addr, data.len())?;
        self.0[r].copy_from_slice(data);
        Ok(())
    }
}
