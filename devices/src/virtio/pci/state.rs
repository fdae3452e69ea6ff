//! The virtio-pci transport in machine snapshots: its registers and queues as plain data
//! ([`VirtioPciState`]), taken once no request is left on an I/O thread, and the device model's
//! own part ([`DeviceSnapshot`]), which for a disk freezes the drive's image.

use super::VirtioPci;
use crate::dma::GuestMemory;
use crate::virtio::queue::Queue;
use crate::virtio::DeviceSnapshot;
use std::path::Path;
use virtio_bindings::virtio_config::{VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_NEEDS_RESET};

/// The transport's guest-visible state (the configuration header's fixed bytes are rebuilt
/// from the device type, so they are not part of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtioPciState {
    /// PCI command register.
    pub command: u16,
    /// BAR 0 as the guest last set it.
    pub bar0: u32,
    /// PCI interrupt line register (scratch for the guest).
    pub interrupt_line: u8,
    /// device_feature_select.
    pub device_feature_select: u32,
    /// driver_feature_select.
    pub driver_feature_select: u32,
    /// The features the driver wrote.
    pub driver_features: u64,
    /// device_status.
    pub status: u8,
    /// queue_select.
    pub queue_select: u16,
    /// Every queue, registers and device position.
    pub queues: Vec<Queue>,
    /// ISR status bits not yet read.
    pub isr: u8,
    /// Queues notified and not yet served (they are served after the restore).
    pub notified: u64,
    /// MSI-X: message control, table and pending bits.
    pub msix: super::msix::MsixState,
    /// config_msix_vector.
    pub config_vector: u16,
    /// Each queue's queue_msix_vector.
    pub queue_vectors: Vec<u16>,
}

impl VirtioPci {
    /// Waits for every request out on an I/O thread and completes it into the used ring (as a
    /// device poll would), so nothing is in flight when the state is taken.
    fn drain(&mut self, mem: &mut dyn GuestMemory) -> Result<(), String> {
        let notified = std::mem::take(&mut self.notified);
        while self.dev.in_flight() {
            let live = u32::from(self.status) & VIRTIO_CONFIG_S_DRIVER_OK != 0
                && u32::from(self.status) & VIRTIO_CONFIG_S_NEEDS_RESET == 0;
            if !live {
                return Err("a virtio device has requests in flight but is not running".into());
            }
            self.process(mem);
            if self.dev.in_flight() {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        }
        self.notified = notified;
        Ok(())
    }

    /// The transport's state and the device's snapshot, once in-flight requests are done;
    /// `overlay` is where a disk pivots to (see [`crate::block::snapshot`]).
    ///
    /// # Errors
    /// The device cannot be saved (a writable raw drive, a device kind without snapshot support)
    /// or its image could not be frozen; one line.
    pub fn save_state(
        &mut self,
        mem: &mut dyn GuestMemory,
        overlay: &Path,
    ) -> Result<(VirtioPciState, DeviceSnapshot), String> {
        self.drain(mem)?;
        let device = self.dev.save(overlay)?;
        let state = VirtioPciState {
            command: self.command,
            bar0: self.bar0,
            interrupt_line: self.interrupt_line,
            device_feature_select: self.device_feature_select,
            driver_feature_select: self.driver_feature_select,
            driver_features: self.driver_features,
            status: self.status,
            queue_select: self.queue_select,
            queues: self.queues.clone(),
            isr: self.isr,
            notified: self.notified,
            msix: self.msix.clone(),
            config_vector: self.config_vector,
            queue_vectors: self.queue_vectors.clone(),
        };
        Ok((state, device))
    }

    /// Puts back a saved transport state (on a function built for the same device kind).
    ///
    /// # Errors
    /// The saved queues do not match this device's (count or sizes).
    pub fn restore_state(&mut self, s: &VirtioPciState) -> Result<(), String> {
        let fits = s.queues.len() == self.queues.len()
            && s.queues.iter().zip(&self.queues).all(|(a, b)| a.max_size == b.max_size);
        if !fits {
            return Err("the saved virtqueues do not match the device".into());
        }
        if s.msix.table.len() != self.msix.table.len() || s.queue_vectors.len() != self.queue_vectors.len() {
            return Err("the saved MSI-X vectors do not match the device".into());
        }
        self.command = s.command;
        self.bar0 = s.bar0;
        self.interrupt_line = s.interrupt_line;
        self.device_feature_select = s.device_feature_select;
        self.driver_feature_select = s.driver_feature_select;
        self.driver_features = s.driver_features;
        self.status = s.status;
        self.queue_select = s.queue_select;
        self.queues = s.queues.clone();
        self.isr = s.isr;
        self.notified = s.notified;
        self.msix = s.msix.clone();
        self.config_vector = s.config_vector;
        self.queue_vectors = s.queue_vectors.clone();
        self.update_irq();
        Ok(())
    }
}
