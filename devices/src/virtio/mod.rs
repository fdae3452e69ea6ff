//! virtio 1.x devices (OASIS virtio 1.2): the split virtqueue, the PCI transport (modern only) and
//! the device models behind it.
//!
//! | module | what |
//! |---|---|
//! | [`queue`] | the split virtqueue, device side, robust against any ring content |
//! | [`chain`] | a chain's readable and writable bytes as streams |
//! | [`pci`] | virtio-pci modern: capabilities, common/notify/ISR/device configuration in BAR 0, INTx |
//! | [`blk`] | virtio-blk over a [`crate::block::Drive`] |
//! | [`p9`] | virtio-9p over a [`crate::p9::Server`] (a shared host folder) |
//!
//! Devices never run on their own: the machine calls [`pci::VirtioPci::process`] between CPU
//! slices with guest memory ([`crate::dma::GuestMemory`]), after the driver wrote a notify register.

pub mod blk;
pub mod chain;
pub mod p9;
pub mod pci;
pub mod queue;
#[cfg(test)]
mod tests;

use crate::block::snapshot::FrozenDrive;
use crate::dma::GuestMemory;
use queue::{Queue, QueueError};
use std::path::Path;

/// A device model's part of a machine snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSnapshot {
    /// virtio-blk: GET_ID's serial and the frozen drive.
    Blk {
        /// The serial number GET_ID returns.
        serial: String,
        /// The frozen image and where a restore continues.
        drive: FrozenDrive,
    },
}

/// What a device type adds to the transport.
pub trait VirtioDevice {
    /// Device type (virtio 1.2, 5: 2 is a block device).
    fn device_type(&self) -> u16;
    /// Device-specific feature bits (the transport adds VERSION_1, EVENT_IDX, INDIRECT_DESC).
    fn features(&self) -> u64;
    /// Largest size of each queue.
    fn queue_sizes(&self) -> Vec<u16>;
    /// Reads device configuration bytes at `offset` (absent bytes read 0).
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Writes device configuration bytes.
    fn write_config(&mut self, offset: u64, data: &[u8]);
    /// Serves what the driver made available on queue `index`.
    ///
    /// # Errors
    /// A malformed ring: the transport marks the device as needing a reset.
    fn process(&mut self, index: usize, queue: &mut Queue, mem: &mut dyn GuestMemory) -> Result<(), QueueError>;
    /// Finishes requests an I/O thread completed since the last call (default: none).
    ///
    /// # Errors
    /// A malformed ring: the transport marks the device as needing a reset.
    fn complete(&mut self, _index: usize, _queue: &mut Queue, _mem: &mut dyn GuestMemory) -> Result<(), QueueError> {
        Ok(())
    }
    /// Whether requests are out on an I/O thread.
    fn in_flight(&self) -> bool {
        false
    }
    /// Device reset (the transport resets the queues).
    fn reset(&mut self);
    /// The device's part of a snapshot, taken with nothing in flight; a disk freezes its image
    /// and continues on an overlay at `overlay` (default: the device cannot be saved).
    ///
    /// # Errors
    /// One line saying why the device cannot be saved.
    fn save(&mut self, _overlay: &Path) -> Result<DeviceSnapshot, String> {
        Err(format!("virtio device type {} cannot be saved in a snapshot", self.device_type()))
    }
}
