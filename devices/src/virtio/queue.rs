//! The split virtqueue (virtio 1.2, section 2.7), device side: descriptor table, available ring
//! (driver to device) and used ring (device to driver), with indirect descriptors (2.7.5.3) and
//! event-index notification suppression (2.7.7, 2.7.10).
//!
//! Our own code rather than rust-vmm's `virtio-queue` (which needs `vm-memory` and its unsafe
//! region set-up): it is small, and every guest-controlled value is checked here. A chain longer
//! than the queue (a descriptor loop), an index out of range, a nested indirect table, an address
//! outside RAM or an available index more than the queue size ahead is a [`QueueError`]; the
//! transport then marks the device DEVICE_NEEDS_RESET instead of going on (2.1.2).

use crate::dma::{DmaError, GuestMemory};
use virtio_bindings::virtio_ring::{
    VRING_AVAIL_F_NO_INTERRUPT, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};

/// Largest queue this implementation offers (2.7: at most 32768).
pub const MAX_QUEUE_SIZE: u16 = 256;
/// Most descriptors an indirect table may hold (QEMU's limit, VIRTQUEUE_MAX_SIZE, is the same).
pub const MAX_INDIRECT: u32 = 1024;
const DESC_SIZE: u64 = 16;

/// A driver error in a virtqueue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// A ring or descriptor lies outside guest RAM.
    #[error(transparent)]
    Dma(#[from] DmaError),
    /// The available index ran more than the queue size ahead of what the device consumed.
    #[error("available index {avail} is {ahead} entries ahead of the device (queue size {size})")]
    AvailTooFar {
        /// avail->idx as read.
        avail: u16,
        /// How far ahead.
        ahead: u16,
        /// The queue size.
        size: u16,
    },
    /// A descriptor index at or beyond the queue (or indirect table) size.
    #[error("descriptor index {index} out of range (table of {size})")]
    BadIndex {
        /// The index.
        index: u32,
        /// The table size.
        size: u32,
    },
    /// A chain visits more descriptors than the table holds (a loop).
    #[error("descriptor chain longer than its table ({size}): a loop")]
    Loop {
        /// The table size.
        size: u32,
    },
    /// An indirect descriptor that is malformed (nested, with NEXT, bad length).
    #[error("bad indirect descriptor: {0}")]
    BadIndirect(&'static str),
    /// A chain the device cannot complete (no place for its status).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// A device-readable descriptor after a device-writable one (2.7.4.2).
    #[error("device-readable descriptor after a device-writable one")]
    ReadAfterWrite,
}

/// One buffer of a descriptor chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Guest physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// Device-writable (else device-readable).
    pub writable: bool,
}

/// A descriptor chain taken from the available ring.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    /// Head descriptor index (the id returned in the used ring).
    pub head: u16,
    /// The buffers, device-readable ones first.
    pub segments: Vec<Segment>,
}

/// The guest-visible registers of one queue and the device's position in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// Most entries the device offers.
    pub max_size: u16,
    /// Entries the driver chose (queue_size).
    pub size: u16,
    /// queue_enable.
    pub ready: bool,
    /// Descriptor table address.
    pub desc: u64,
    /// Available ring ("driver area") address.
    pub avail: u64,
    /// Used ring ("device area") address.
    pub used: u64,
    /// The next available-ring entry the device will take.
    pub next_avail: u16,
    /// The next used-ring entry the device will fill.
    pub next_used: u16,
    /// VIRTIO_F_EVENT_IDX was negotiated.
    pub event_idx: bool,
    /// next_used when the driver was last notified.
    pub signalled_used: u16,
}

impl Queue {
    /// A queue at reset offering `max_size` entries.
    pub fn new(max_size: u16) -> Self {
        Queue {
            max_size,
            size: max_size,
            ready: false,
            desc: 0,
            avail: 0,
            used: 0,
            next_avail: 0,
            next_used: 0,
            event_idx: false,
            signalled_used: 0,
        }
    }

    /// Back to the reset state (device reset, 2.4).
    pub fn reset(&mut self) {
        *self = Queue::new(self.max_size);
    }

    /// Takes the next available chain, if the driver made one available.
    ///
    /// # Errors
    /// [`QueueError`] for a malformed ring or chain: the caller should stop using the queue.
    pub fn pop(&mut self, mem: &mut dyn GuestMemory) -> Result<Option<Chain>, QueueError> {
        if !self.ready || self.size == 0 {
            return Ok(None);
        }
        let avail_idx = mem.read_u16(self.avail + 2)?;
        let ahead = avail_idx.wrapping_sub(self.next_avail);
        if ahead == 0 {
            return Ok(None);
        }
        if ahead > self.size {
            return Err(QueueError::AvailTooFar { avail: avail_idx, ahead, size: self.size });
        }
        let slot = u64::from(self.next_avail % self.size);
        let head = mem.read_u16(self.avail + 4 + 2 * slot)?;
        let chain = self.walk(mem, head)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        if self.event_idx {
            // avail_event: "notify me when you make entry next_avail available" (2.7.10).
            mem.write_u16(self.used + 4 + 8 * u64::from(self.size), self.next_avail)?;
        }
        Ok(Some(chain))
    }

    /// Follows the chain starting at `head`, expanding an indirect table.
    fn walk(&self, mem: &dyn GuestMemory, head: u16) -> Result<Chain, QueueError> {
        let size = u32::from(self.size);
        let mut chain = Chain { head, segments: Vec::new() };
        let mut index = u32::from(head);
        let mut table = (self.desc, size);
        let mut indirect = false;
        let mut visited = 0u32;
        loop {
            if index >= table.1 {
                return Err(QueueError::BadIndex { index, size: table.1 });
            }
            visited += 1;
            if visited > table.1 {
                return Err(QueueError::Loop { size: table.1 });
            }
            let mut d = [0u8; 16];
            mem.read(table.0 + DESC_SIZE * u64::from(index), &mut d)?;
            let addr = u64::from_le_bytes(d[0..8].try_into().unwrap_or_default());
            let len = u32::from_le_bytes(d[8..12].try_into().unwrap_or_default());
            let flags = u32::from(u16::from_le_bytes([d[12], d[13]]));
            let next = u32::from(u16::from_le_bytes([d[14], d[15]]));
            if flags & VRING_DESC_F_INDIRECT != 0 {
                if indirect {
                    return Err(QueueError::BadIndirect("an indirect table inside an indirect table"));
                }
                if flags & VRING_DESC_F_NEXT != 0 {
                    return Err(QueueError::BadIndirect("INDIRECT together with NEXT"));
                }
                if len == 0 || !len.is_multiple_of(16) || len / 16 > MAX_INDIRECT {
                    return Err(QueueError::BadIndirect("length not a non-zero multiple of 16 up to 1024 entries"));
                }
                indirect = true;
                table = (addr, len / 16);
                index = 0;
                visited = 0;
                continue;
            }
            let writable = flags & VRING_DESC_F_WRITE != 0;
            if !writable && chain.segments.last().is_some_and(|s| s.writable) {
                return Err(QueueError::ReadAfterWrite);
            }
            chain.segments.push(Segment { addr, len, writable });
            if flags & VRING_DESC_F_NEXT == 0 {
                return Ok(chain);
            }
            index = next;
        }
    }

    /// Returns chain `head` to the driver with `len` bytes written into its device-writable buffers.
    ///
    /// # Errors
    /// The used ring lies outside RAM.
    pub fn push_used(&mut self, mem: &mut dyn GuestMemory, head: u16, len: u32) -> Result<(), QueueError> {
        let slot = u64::from(self.next_used % self.size.max(1));
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        mem.write(self.used + 4 + 8 * slot, &elem)?;
        self.next_used = self.next_used.wrapping_add(1);
        // The index last, so the driver never sees an entry before it is written.
        mem.write_u16(self.used + 2, self.next_used)?;
        Ok(())
    }

    /// Whether the driver wants an interrupt for the entries used since the last one
    /// (used_event with EVENT_IDX, 2.7.10; else the NO_INTERRUPT flag, 2.7.7), and notes that
    /// it got one if so.
    ///
    /// # Errors
    /// The available ring lies outside RAM.
    pub fn needs_interrupt(&mut self, mem: &dyn GuestMemory) -> Result<bool, QueueError> {
        let old = self.signalled_used;
        let new = self.next_used;
        if old == new {
            return Ok(false);
        }
        let wanted = if self.event_idx {
            let used_event = mem.read_u16(self.avail + 4 + 2 * u64::from(self.size))?;
            // vring_need_event: did new pass used_event since old?
            new.wrapping_sub(used_event).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            u32::from(mem.read_u16(self.avail)?) & VRING_AVAIL_F_NO_INTERRUPT == 0
        };
        self.signalled_used = new;
        Ok(wanted)
    }
}
