//! virtio-blk (virtio 1.2, section 5.2): one request queue; read, write, flush, get-id, discard and
//! write-zeroes over a [`Drive`].
//!
//! A request is a header (type, reserved, sector) in device-readable bytes, then data, then one
//! device-writable status byte at the very end (5.2.6). Anything malformed (short header, data not a
//! multiple of 512 bytes, a range past the disk's end, a buffer outside RAM) completes with
//! VIRTIO_BLK_S_IOERR; an unknown type with VIRTIO_BLK_S_UNSUPP. Only a chain whose status byte
//! cannot be written is a queue error (the transport then resets the device). Data moves through a
//! bounded bounce buffer, so a huge length costs time in proportion to the disk, never host memory.

use super::chain::ChainCursor;
use super::queue::{Chain, Queue, QueueError};
use super::VirtioDevice;
use crate::block::Drive;
use crate::dma::GuestMemory;
use virtio_bindings::virtio_blk::*;

/// Sector size of the virtio-blk protocol (5.2.6: "sector" is 512 bytes whatever blk_size says).
pub const SECTOR: u64 = 512;
/// Queue size offered.
pub const QUEUE_SIZE: u16 = 256;
/// Bytes moved per host I/O call.
const CHUNK: usize = 256 << 10;
/// Bytes of the device configuration (struct virtio_blk_config up to write_zeroes_may_unmap + pad).
const CONFIG_LEN: usize = 60;
/// Segments per discard / write-zeroes request we accept (max_discard_seg, max_write_zeroes_seg).
const MAX_RANGES: u32 = 1;
/// Largest discard / write-zeroes request, in sectors (max_discard_sectors, max_write_zeroes_sectors).
const MAX_RANGE_SECTORS: u32 = (1 << 30) / 512;

/// A virtio block device over one drive.
pub struct VirtioBlk {
    drive: Drive,
    /// The serial number GET_ID returns (at most 20 bytes).
    serial: Vec<u8>,
    bounce: Vec<u8>,
}

impl VirtioBlk {
    /// A device for `drive`, GET_ID answering `serial` (truncated to 20 bytes).
    pub fn new(drive: Drive, serial: &str) -> Self {
        let mut s = serial.as_bytes().to_vec();
        s.truncate(VIRTIO_BLK_ID_BYTES as usize);
        VirtioBlk { drive, serial: s, bounce: Vec::new() }
    }

    /// The drive (for flushing at exit and for tests).
    pub fn drive_mut(&mut self) -> &mut Drive {
        &mut self.drive
    }

    fn config(&self) -> [u8; CONFIG_LEN] {
        let mut c = [0u8; CONFIG_LEN];
        c[0..8].copy_from_slice(&(self.drive.size() / SECTOR).to_le_bytes()); // capacity
        c[12..16].copy_from_slice(&u32::from(QUEUE_SIZE - 2).to_le_bytes()); // seg_max
        c[20..24].copy_from_slice(&512u32.to_le_bytes()); // blk_size
        c[34..36].copy_from_slice(&1u16.to_le_bytes()); // num_queues
        c[36..40].copy_from_slice(&MAX_RANGE_SECTORS.to_le_bytes()); // max_discard_sectors
        c[40..44].copy_from_slice(&MAX_RANGES.to_le_bytes()); // max_discard_seg
        c[44..48].copy_from_slice(&1u32.to_le_bytes()); // discard_sector_alignment
        c[48..52].copy_from_slice(&MAX_RANGE_SECTORS.to_le_bytes()); // max_write_zeroes_sectors
        c[52..56].copy_from_slice(&MAX_RANGES.to_le_bytes()); // max_write_zeroes_seg
        c[56] = u8::from(self.drive.spec().discard_unmap); // write_zeroes_may_unmap
        c
    }

    /// Serves one request; returns (status, bytes of data written to the driver before the status).
    fn serve(&mut self, chain: &Chain, mem: &mut dyn GuestMemory) -> (u8, u32) {
        let mut input = ChainCursor::readable(chain);
        let mut output = ChainCursor::writable(chain);
        output.truncate(output.remaining().saturating_sub(1)); // the status byte is not data
        let mut header = [0u8; 16];
        if !matches!(input.read(mem, &mut header), Ok(true)) {
            return (VIRTIO_BLK_S_IOERR as u8, 0);
        }
        let kind = u32::from_le_bytes(header[0..4].try_into().unwrap_or_default());
        let sector = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
        let result = match kind {
            VIRTIO_BLK_T_IN => self.read(sector, &mut output, mem),
            VIRTIO_BLK_T_OUT => self.write(sector, &mut input, mem).map(|()| 0),
            VIRTIO_BLK_T_FLUSH => self.drive.flush().map(|()| 0).map_err(|_| VIRTIO_BLK_S_IOERR),
            VIRTIO_BLK_T_GET_ID => {
                let mut id = [0u8; VIRTIO_BLK_ID_BYTES as usize];
                id[..self.serial.len()].copy_from_slice(&self.serial);
                let n = (output.remaining() as usize).min(id.len());
                match output.write(mem, &id[..n]) {
                    Ok(true) => Ok(n as u32),
                    _ => Err(VIRTIO_BLK_S_IOERR),
                }
            }
            VIRTIO_BLK_T_DISCARD | VIRTIO_BLK_T_WRITE_ZEROES => self.ranges(kind, &mut input, mem).map(|()| 0),
            _ => Err(VIRTIO_BLK_S_UNSUPP),
        };
        match result {
            Ok(n) => (VIRTIO_BLK_S_OK as u8, n),
            Err(status) => (status as u8, 0),
        }
    }

    /// Byte offset of `len` bytes at `sector`, if the range lies on the disk.
    fn range(&self, sector: u64, len: u64) -> Result<u64, u32> {
        let offset = sector.checked_mul(SECTOR).ok_or(VIRTIO_BLK_S_IOERR)?;
        match offset.checked_add(len) {
            Some(end) if end <= self.drive.size() && len.is_multiple_of(SECTOR) => Ok(offset),
            _ => Err(VIRTIO_BLK_S_IOERR),
        }
    }

    fn read(&mut self, sector: u64, out: &mut ChainCursor, mem: &mut dyn GuestMemory) -> Result<u32, u32> {
        let len = out.remaining();
        let mut offset = self.range(sector, len)?;
        let mut done = 0u64;
        while let Some((addr, n)) = out.next_piece(CHUNK as u64) {
            self.bounce.resize(n, 0);
            self.drive.read(&mut self.bounce[..n], offset).map_err(|_| VIRTIO_BLK_S_IOERR)?;
            mem.write(addr, &self.bounce[..n]).map_err(|_| VIRTIO_BLK_S_IOERR)?;
            offset += n as u64;
            done += n as u64;
        }
        Ok(done as u32)
    }

    fn write(&mut self, sector: u64, input: &mut ChainCursor, mem: &mut dyn GuestMemory) -> Result<(), u32> {
        if self.drive.readonly() {
            return Err(VIRTIO_BLK_S_IOERR);
        }
        let mut offset = self.range(sector, input.remaining())?;
        while let Some((addr, n)) = input.next_piece(CHUNK as u64) {
            self.bounce.resize(n, 0);
            mem.read(addr, &mut self.bounce[..n]).map_err(|_| VIRTIO_BLK_S_IOERR)?;
            self.drive.write(&self.bounce[..n], offset).map_err(|_| VIRTIO_BLK_S_IOERR)?;
            offset += n as u64;
        }
        Ok(())
    }

    /// DISCARD and WRITE_ZEROES: a list of {sector, num_sectors, flags} (5.2.6).
    fn ranges(&mut self, kind: u32, input: &mut ChainCursor, mem: &dyn GuestMemory) -> Result<(), u32> {
        let count = input.remaining() / 16;
        if !input.remaining().is_multiple_of(16) || count == 0 || count > u64::from(MAX_RANGES) {
            return Err(VIRTIO_BLK_S_UNSUPP);
        }
        for _ in 0..count {
            let mut seg = [0u8; 16];
            if !matches!(input.read(mem, &mut seg), Ok(true)) {
                return Err(VIRTIO_BLK_S_IOERR);
            }
            let sector = u64::from_le_bytes(seg[0..8].try_into().unwrap_or_default());
            let sectors = u32::from_le_bytes(seg[8..12].try_into().unwrap_or_default());
            let flags = u32::from_le_bytes(seg[12..16].try_into().unwrap_or_default());
            let unmap = flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP != 0;
            // Unknown flags, or UNMAP on a discard, are unsupported (5.2.6.2).
            if flags & !VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP != 0
                || (kind == VIRTIO_BLK_T_DISCARD && unmap)
                || sectors > MAX_RANGE_SECTORS
            {
                return Err(VIRTIO_BLK_S_UNSUPP);
            }
            let len = u64::from(sectors) * SECTOR;
            let offset = self.range(sector, len)?;
            let r = if kind == VIRTIO_BLK_T_DISCARD {
                self.drive.discard(offset, len)
            } else {
                self.drive.write_zeroes(offset, len, unmap)
            };
            r.map_err(|_| VIRTIO_BLK_S_IOERR)?;
        }
        Ok(())
    }
}

/// Address of a chain's last device-writable byte (the status byte), if it has one.
fn status_address(chain: &Chain) -> Option<u64> {
    let last = chain.segments.iter().rev().find(|s| s.writable && s.len > 0)?;
    last.addr.checked_add(u64::from(last.len) - 1)
}

impl VirtioDevice for VirtioBlk {
    fn device_type(&self) -> u16 {
        2 // VIRTIO_ID_BLOCK
    }

    fn features(&self) -> u64 {
        let mut f = 1 << VIRTIO_BLK_F_SEG_MAX
            | 1 << VIRTIO_BLK_F_BLK_SIZE
            | 1 << VIRTIO_BLK_F_FLUSH
            | 1 << VIRTIO_BLK_F_DISCARD
            | 1 << VIRTIO_BLK_F_WRITE_ZEROES;
        if self.drive.readonly() {
            f |= 1 << VIRTIO_BLK_F_RO;
        }
        f
    }

    fn queue_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let c = self.config();
        for (i, b) in data.iter_mut().enumerate() {
            *b = usize::try_from(offset).ok().and_then(|o| c.get(o + i)).copied().unwrap_or(0);
        }
    }

    fn write_config(&mut self, _offset: u64, _data: &[u8]) {
        // writeback (CONFIG_WCE) is not offered: the configuration is read-only.
    }

    fn process(&mut self, _index: usize, queue: &mut Queue, mem: &mut dyn GuestMemory) -> Result<(), QueueError> {
        while let Some(chain) = queue.pop(mem)? {
            let (status, written) = self.serve(&chain, mem);
            let addr = status_address(&chain).ok_or(QueueError::Malformed("request without a status byte"))?;
            mem.write(addr, &[status])?;
            queue.push_used(mem, chain.head, written + 1)?;
        }
        Ok(())
    }

    fn reset(&mut self) {}
}
