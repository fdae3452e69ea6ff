//! virtio-blk (virtio 1.2, section 5.2): one request queue; read, write, flush, get-id, discard and
//! write-zeroes over a [`Drive`].
//!
//! A request is a header (type, reserved, sector) in device-readable bytes, then data, then one
//! device-writable status byte at the very end (5.2.6). Anything malformed (short header, data not a
//! multiple of 512 bytes, a range past the disk's end, a buffer outside RAM) completes with
//! VIRTIO_BLK_S_IOERR; an unknown type with VIRTIO_BLK_S_UNSUPP. Only a chain whose status byte
//! cannot be written is a queue error (the transport then resets the device). A request carries at
//! most [`MAX_REQUEST_BYTES`] (more is IOERR), so a huge length never costs host memory.
//!
//! Requests run either at the notify on the CPU thread ([`VirtioBlk::new`]: `--deterministic`, so
//! runs stay reproducible) or on the drive's I/O thread ([`VirtioBlk::with_io_thread`]), which
//! completes them in order; the machine collects completions at its next device poll.

use super::chain::ChainCursor;
use super::queue::{Chain, Queue, QueueError};
use super::VirtioDevice;
use crate::block::iothread::{run_op, IoThread, Op, Wake};
use crate::block::Drive;
use crate::dma::GuestMemory;
use std::collections::HashMap;
use virtio_bindings::virtio_blk::*;

/// Sector size of the virtio-blk protocol (5.2.6: "sector" is 512 bytes whatever blk_size says).
pub const SECTOR: u64 = 512;
/// Queue size offered.
pub const QUEUE_SIZE: u16 = 256;
/// Bytes of the device configuration (struct virtio_blk_config up to write_zeroes_may_unmap + pad).
const CONFIG_LEN: usize = 60;
/// Segments per discard / write-zeroes request we accept (max_discard_seg, max_write_zeroes_seg).
const MAX_RANGES: u32 = 1;
/// Largest discard / write-zeroes request, in sectors (max_discard_sectors, max_write_zeroes_sectors).
const MAX_RANGE_SECTORS: u32 = (1 << 30) / 512;

/// Largest data transfer one request may carry (bigger ones complete with IOERR; Linux sends at
/// most max_sectors_kb, 1280 KiB by default).
pub const MAX_REQUEST_BYTES: u64 = 64 << 20;

/// Where requests are carried out.
enum Backend {
    /// At the notify, on the CPU thread (`--deterministic`, tests).
    Sync(Drive),
    /// On the drive's I/O thread; completions are taken at the next device poll.
    Thread(IoThread),
}

/// A request handed to the I/O thread, waiting for its completion.
struct Pending {
    head: u16,
    status_addr: u64,
    /// For reads: where the data goes.
    out: Option<ChainCursor>,
}

/// A virtio block device over one drive.
pub struct VirtioBlk {
    backend: Backend,
    size: u64,
    readonly: bool,
    discard_unmap: bool,
    /// The serial number GET_ID returns (at most 20 bytes).
    serial: Vec<u8>,
    pending: HashMap<u64, Pending>,
    next_token: u64,
}

/// What to do with a parsed request.
enum Action {
    /// Done already: status and bytes written before the status.
    Done(u8, u32),
    /// Run this operation; reads put their data in the cursor.
    Run(Op, Option<ChainCursor>),
}

impl VirtioBlk {
    /// A device for `drive` serving requests at the notify, GET_ID answering `serial` (at most
    /// 20 bytes).
    pub fn new(drive: Drive, serial: &str) -> Self {
        let (size, readonly, discard_unmap) = (drive.size(), drive.readonly(), drive.spec().discard_unmap);
        Self::build(Backend::Sync(drive), size, readonly, discard_unmap, serial)
    }

    /// A device whose requests run on an I/O thread that owns `drive`; `wake` is called after
    /// each completion.
    ///
    /// # Errors
    /// The host could not start the thread.
    pub fn with_io_thread(drive: Drive, serial: &str, wake: Wake) -> std::io::Result<Self> {
        let (size, readonly, discard_unmap) = (drive.size(), drive.readonly(), drive.spec().discard_unmap);
        Ok(Self::build(Backend::Thread(IoThread::spawn(drive, wake)?), size, readonly, discard_unmap, serial))
    }

    fn build(backend: Backend, size: u64, readonly: bool, discard_unmap: bool, serial: &str) -> Self {
        let mut s = serial.as_bytes().to_vec();
        s.truncate(VIRTIO_BLK_ID_BYTES as usize);
        VirtioBlk { backend, size, readonly, discard_unmap, serial: s, pending: HashMap::new(), next_token: 0 }
    }

    fn config(&self) -> [u8; CONFIG_LEN] {
        let mut c = [0u8; CONFIG_LEN];
        c[0..8].copy_from_slice(&(self.size / SECTOR).to_le_bytes()); // capacity
        c[12..16].copy_from_slice(&u32::from(QUEUE_SIZE - 2).to_le_bytes()); // seg_max
        c[20..24].copy_from_slice(&512u32.to_le_bytes()); // blk_size
        c[34..36].copy_from_slice(&1u16.to_le_bytes()); // num_queues
        c[36..40].copy_from_slice(&MAX_RANGE_SECTORS.to_le_bytes()); // max_discard_sectors
        c[40..44].copy_from_slice(&MAX_RANGES.to_le_bytes()); // max_discard_seg
        c[44..48].copy_from_slice(&1u32.to_le_bytes()); // discard_sector_alignment
        c[48..52].copy_from_slice(&MAX_RANGE_SECTORS.to_le_bytes()); // max_write_zeroes_sectors
        c[52..56].copy_from_slice(&MAX_RANGES.to_le_bytes()); // max_write_zeroes_seg
        c[56] = u8::from(self.discard_unmap); // write_zeroes_may_unmap
        c
    }

    /// Parses a request and gathers what it writes (5.2.6).
    fn parse(&self, chain: &Chain, mem: &mut dyn GuestMemory) -> Action {
        let ioerr = Action::Done(VIRTIO_BLK_S_IOERR as u8, 0);
        let mut input = ChainCursor::readable(chain);
        let mut output = ChainCursor::writable(chain);
        output.truncate(output.remaining().saturating_sub(1)); // the status byte is not data
        let mut header = [0u8; 16];
        if !matches!(input.read(mem, &mut header), Ok(true)) {
            return ioerr;
        }
        let kind = u32::from_le_bytes(header[0..4].try_into().unwrap_or_default());
        let sector = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
        match kind {
            VIRTIO_BLK_T_IN => match self.range(sector, output.remaining()) {
                Ok(offset) => Action::Run(Op::Read { offset, len: output.remaining() as usize }, Some(output)),
                Err(_) => ioerr,
            },
            VIRTIO_BLK_T_OUT => {
                let len = input.remaining();
                let Ok(offset) = self.range(sector, len) else { return ioerr };
                if self.readonly {
                    return ioerr;
                }
                let mut data = aio::AlignedBuf::zeroed(len as usize);
                match input.read(mem, &mut data) {
                    Ok(true) => Action::Run(Op::Write { offset, data }, None),
                    _ => ioerr,
                }
            }
            VIRTIO_BLK_T_FLUSH => Action::Run(Op::Flush, None),
            VIRTIO_BLK_T_GET_ID => {
                let mut id = [0u8; VIRTIO_BLK_ID_BYTES as usize];
                id[..self.serial.len()].copy_from_slice(&self.serial);
                let n = (output.remaining() as usize).min(id.len());
                match output.write(mem, &id[..n]) {
                    Ok(true) => Action::Done(VIRTIO_BLK_S_OK as u8, n as u32),
                    _ => ioerr,
                }
            }
            VIRTIO_BLK_T_DISCARD | VIRTIO_BLK_T_WRITE_ZEROES => match self.range_op(kind, &mut input, mem) {
                Ok(op) => Action::Run(op, None),
                Err(status) => Action::Done(status as u8, 0),
            },
            _ => Action::Done(VIRTIO_BLK_S_UNSUPP as u8, 0),
        }
    }

    /// Byte offset of `len` bytes at `sector`, if the range lies on the disk and is not too big.
    fn range(&self, sector: u64, len: u64) -> Result<u64, u32> {
        let offset = sector.checked_mul(SECTOR).ok_or(VIRTIO_BLK_S_IOERR)?;
        match offset.checked_add(len) {
            Some(end) if end <= self.size && len.is_multiple_of(SECTOR) && len <= MAX_REQUEST_BYTES => Ok(offset),
            _ => Err(VIRTIO_BLK_S_IOERR),
        }
    }

    /// DISCARD and WRITE_ZEROES: one {sector, num_sectors, flags} segment (max_*_seg is 1).
    fn range_op(&self, kind: u32, input: &mut ChainCursor, mem: &dyn GuestMemory) -> Result<Op, u32> {
        if input.remaining() != 16 * u64::from(MAX_RANGES) {
            return Err(VIRTIO_BLK_S_UNSUPP);
        }
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
        if self.readonly {
            return Err(VIRTIO_BLK_S_IOERR);
        }
        let len = u64::from(sectors) * SECTOR;
        let offset = sector.checked_mul(SECTOR).filter(|o| o.checked_add(len).is_some_and(|e| e <= self.size));
        let offset = offset.ok_or(VIRTIO_BLK_S_IOERR)?;
        Ok(if kind == VIRTIO_BLK_T_DISCARD {
            Op::Discard { offset, len }
        } else {
            Op::WriteZeroes { offset, len, unmap }
        })
    }

    /// Finishes a request: read data to the driver, the status byte, the used ring.
    fn finish(
        queue: &mut Queue,
        mem: &mut dyn GuestMemory,
        p: Pending,
        result: std::io::Result<aio::AlignedBuf>,
    ) -> Result<(), QueueError> {
        let (status, written) = match (result, p.out) {
            (Ok(data), Some(mut out)) => match out.write(mem, &data) {
                Ok(true) => (VIRTIO_BLK_S_OK as u8, data.len() as u32),
                _ => (VIRTIO_BLK_S_IOERR as u8, 0),
            },
            (Ok(_), None) => (VIRTIO_BLK_S_OK as u8, 0),
            (Err(_), _) => (VIRTIO_BLK_S_IOERR as u8, 0),
        };
        mem.write(p.status_addr, &[status])?;
        queue.push_used(mem, p.head, written + 1)
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
        if self.readonly {
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
            let status_addr = status_address(&chain).ok_or(QueueError::Malformed("request without a status byte"))?;
            let (op, out) = match self.parse(&chain, mem) {
                Action::Done(status, written) => {
                    mem.write(status_addr, &[status])?;
                    queue.push_used(mem, chain.head, written + 1)?;
                    continue;
                }
                Action::Run(op, out) => (op, out),
            };
            let p = Pending { head: chain.head, status_addr, out };
            match &mut self.backend {
                Backend::Sync(drive) => {
                    let result = run_op(drive, op);
                    Self::finish(queue, mem, p, result)?;
                }
                Backend::Thread(io) => {
                    let token = self.next_token;
                    self.next_token += 1;
                    io.submit(token, op);
                    self.pending.insert(token, p);
                }
            }
        }
        Ok(())
    }

    fn complete(&mut self, _index: usize, queue: &mut Queue, mem: &mut dyn GuestMemory) -> Result<(), QueueError> {
        let Backend::Thread(io) = &mut self.backend else { return Ok(()) };
        while let Some(c) = io.try_complete() {
            if let Some(p) = self.pending.remove(&c.token) {
                Self::finish(queue, mem, p, c.result)?;
            }
        }
        Ok(())
    }

    fn in_flight(&self) -> bool {
        matches!(&self.backend, Backend::Thread(io) if io.in_flight() > 0)
    }

    fn reset(&mut self) {
        // Requests in flight finish on the I/O thread; their completions are dropped (the rings
        // they would be written to are gone).
        if let Backend::Thread(io) = &mut self.backend {
            while io.in_flight() > 0 {
                if io.try_complete().is_none() {
                    std::thread::yield_now();
                }
            }
        }
        self.pending.clear();
    }

    fn save(&mut self, overlay: &std::path::Path) -> Result<super::DeviceSnapshot, String> {
        let drive = match &mut self.backend {
            Backend::Sync(drive) => drive.freeze(overlay).map_err(|e| e.to_string())?,
            Backend::Thread(io) => {
                io.with_drive(|d| d.freeze(overlay)).map_err(|e| e.to_string())?.map_err(|e| e.to_string())?
            }
        };
        Ok(super::DeviceSnapshot::Blk { serial: String::from_utf8_lossy(&self.serial).into_owned(), drive })
    }
}
