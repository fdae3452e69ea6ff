//! virtio-pci, modern interface only (virtio 1.2, section 4.1): a PCI function with vendor 1AF4h,
//! device 1040h + type, revision 1, whose vendor-specific capabilities (4.1.4) point into one 32-bit
//! memory BAR (BAR 0, 32 KiB) laid out as:
//!
//! | offset | structure |
//! |---|---|
//! | 0x0000 | common configuration (4.1.4.3) |
//! | 0x1000 | ISR status (4.1.4.5): bit 0 queue interrupt, bit 1 configuration change; read clears |
//! | 0x2000 | device-specific configuration |
//! | 0x3000 | notifications (4.1.4.4): queue n at n * 4 (`notify_off_multiplier` 4) |
//! | 0x4000 | MSI-X table (`msix.rs`), when the machine gave the function an MSI sink |
//! | 0x5000 | MSI-X pending-bit array |
//!
//! The guest may move BAR 0 (the usual all-ones sizing write, then any 32 KiB-aligned address);
//! [`PciMmioWindow`] routes accesses by the BAR's current value and the command register's memory
//! enable bit. Interrupts: with [`VirtioPci::with_msix`] the function has an MSI-X capability;
//! once the driver enables it, each queue and the configuration change send the message of the
//! vector the driver mapped them to (`queue_msix_vector`, `config_msix_vector`) and INTx stays
//! low. Otherwise legacy INTx (pin INTA), level-triggered, asserted while the ISR is non-zero
//! and the command register's interrupt-disable bit is clear.
//!
//! Transport features offered: VERSION_1, EVENT_IDX, INDIRECT_DESC. A driver that does not accept
//! VERSION_1 or asks for a feature not offered does not get FEATURES_OK (4.1.4.3.2, 3.1.1). Writing 0
//! to device_status resets the device and its queues. A malformed virtqueue sets DEVICE_NEEDS_RESET
//! and raises a configuration-change interrupt (2.1.2); the device then serves nothing until reset.
//!
//! Not modelled: the PCI configuration access capability (VIRTIO_PCI_CAP_PCI_CFG), the legacy interface, queue_reset.

pub mod msix;
mod state;
pub use state::VirtioPciState;

use super::queue::Queue;
use super::VirtioDevice;
use crate::bus::MmioDevice;
use crate::dma::GuestMemory;
use crate::irq::IrqLine;
use crate::pc::ioapic::ApicSink;
use crate::pc::pci_host::PciFunction;
use msix::MsixState;
use std::cell::RefCell;
use std::rc::Rc;
use tracing::{debug, trace};
use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_F_VERSION_1,
};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

/// Red Hat's vendor ID, which virtio uses (4.1.1).
pub const VIRTIO_VENDOR: u16 = 0x1af4;
/// Modern device IDs are 1040h + device type (4.1.2).
pub const MODERN_DEVICE_BASE: u16 = 0x1040;
/// Size of BAR 0.
pub const BAR_SIZE: u32 = 0x8000;
const COMMON: u64 = 0x0000;
const ISR: u64 = 0x1000;
const DEVICE: u64 = 0x2000;
const NOTIFY: u64 = 0x3000;
const NOTIFY_MULTIPLIER: u32 = 4;
/// virtio_pci_cap cfg_type values (4.1.4).
const CAP_COMMON: u8 = 1;
const CAP_NOTIFY: u8 = 2;
const CAP_ISR: u8 = 3;
const CAP_DEVICE: u8 = 4;
/// PCI capability ID for vendor-specific capabilities.
const CAP_VENDOR: u8 = 0x09;
/// "No MSI-X vector" (4.1.4.3).
pub const NO_VECTOR: u16 = 0xffff;
/// Where the MSI-X capability sits in configuration space, after the four vendor capabilities.
const MSIX_CAP: usize = 0x84;
/// Command register bits: I/O space, memory space, bus master, interrupt disable.
const CMD_MEMORY: u16 = 1 << 1;
const CMD_WRITABLE: u16 = 0x0007 | CMD_INTX_DISABLE;
const CMD_INTX_DISABLE: u16 = 1 << 10;
/// Status register: capabilities list; bit 3 is the interrupt status.
const STATUS_CAP_LIST: u16 = 1 << 4;
const STATUS_INTERRUPT: u16 = 1 << 3;

/// A virtio device behind the PCI transport.
pub struct VirtioPci {
    dev: Box<dyn VirtioDevice>,
    irq: Box<dyn IrqLine>,
    /// Configuration header bytes (identification and capabilities; live registers are below).
    header: [u8; 256],
    command: u16,
    bar0: u32,
    interrupt_line: u8,
    device_feature_select: u32,
    driver_feature_select: u32,
    driver_features: u64,
    status: u8,
    queue_select: u16,
    queues: Vec<Queue>,
    isr: u8,
    /// Queues the driver notified since the last [`VirtioPci::process`] (bit n = queue n).
    notified: u64,
    /// Where MSI-X messages go; `None`: no MSI-X capability (INTx only).
    msi: Option<Box<dyn ApicSink>>,
    msix: MsixState,
    /// config_msix_vector and each queue's queue_msix_vector (NO_VECTOR: none).
    config_vector: u16,
    queue_vectors: Vec<u16>,
}

impl VirtioPci {
    /// `dev` on the transport, interrupting through `irq`, BAR 0 at `bar0` with memory decoding
    /// enabled (as firmware leaves a device it assigned).
    pub fn new(dev: Box<dyn VirtioDevice>, irq: Box<dyn IrqLine>, bar0: u32) -> Self {
        let mut h = [0u8; 256];
        h[0..2].copy_from_slice(&VIRTIO_VENDOR.to_le_bytes());
        h[2..4].copy_from_slice(&(MODERN_DEVICE_BASE + dev.device_type()).to_le_bytes());
        h[8] = 1; // revision 1: a modern-only device (4.1.2.1)
        let class: u32 = if dev.device_type() == 2 { 0x01_00_00 } else { 0xff_00_00 }; // SCSI storage / other
        h[9..12].copy_from_slice(&class.to_le_bytes()[..3]);
        h[0x2c..0x2e].copy_from_slice(&VIRTIO_VENDOR.to_le_bytes()); // subsystem vendor
        h[0x2e..0x30].copy_from_slice(&0x0040u16.to_le_bytes()); // subsystem ID >= 40h (4.1.2.1)
        h[0x34] = 0x40; // capabilities pointer
        h[0x3d] = 1; // interrupt pin INTA
        let caps: [(u8, u64, u32); 4] =
            [(CAP_COMMON, COMMON, 0x38), (CAP_ISR, ISR, 1), (CAP_DEVICE, DEVICE, 0x1000), (CAP_NOTIFY, NOTIFY, 0x1000)];
        let mut at = 0x40usize;
        for (i, (kind, offset, len)) in caps.iter().enumerate() {
            let cap_len = if *kind == CAP_NOTIFY { 20 } else { 16 };
            let next = if i + 1 < caps.len() { at + cap_len } else { 0 };
            h[at] = CAP_VENDOR;
            h[at + 1] = next as u8;
            h[at + 2] = cap_len as u8;
            h[at + 3] = *kind;
            h[at + 4] = 0; // BAR 0
            h[at + 8..at + 12].copy_from_slice(&(*offset as u32).to_le_bytes());
            h[at + 12..at + 16].copy_from_slice(&len.to_le_bytes());
            if *kind == CAP_NOTIFY {
                h[at + 16..at + 20].copy_from_slice(&NOTIFY_MULTIPLIER.to_le_bytes());
            }
            at += cap_len;
        }
        let queues: Vec<Queue> = dev.queue_sizes().into_iter().map(Queue::new).collect();
        let vectors = queues.len() + 1;
        VirtioPci {
            dev,
            irq,
            header: h,
            command: CMD_MEMORY | 0x4,
            bar0: bar0 & !(BAR_SIZE - 1),
            interrupt_line: 0,
            device_feature_select: 0,
            driver_feature_select: 0,
            driver_features: 0,
            status: 0,
            queue_select: 0,
            queues,
            isr: 0,
            notified: 0,
            msi: None,
            msix: MsixState::new(vectors),
            config_vector: NO_VECTOR,
            queue_vectors: vec![NO_VECTOR; vectors - 1],
        }
    }

    /// Gives the function an MSI-X capability (one vector per queue and one for configuration
    /// changes) whose messages go to `sink` (the machine's local APIC).
    pub fn with_msix(mut self, sink: Box<dyn ApicSink>) -> Self {
        let last_vendor_cap = 0x40 + 16 * 3;
        self.header[last_vendor_cap + 1] = MSIX_CAP as u8;
        let h = &mut self.header[MSIX_CAP..MSIX_CAP + msix::CAP_LEN];
        h[0] = msix::CAP_ID;
        h[1] = 0; // last capability
        h[4..8].copy_from_slice(&(msix::TABLE_OFFSET as u32).to_le_bytes()); // BIR 0
        h[8..12].copy_from_slice(&(msix::PBA_OFFSET as u32).to_le_bytes());
        self.msi = Some(sink);
        self
    }

    /// MSI-X is present and the driver enabled it.
    fn msix_on(&self) -> bool {
        self.msi.is_some() && self.msix.enabled()
    }

    /// Sends `vector`'s message now, or leaves it pending if masked.
    fn signal_vector(&mut self, vector: u16) {
        if let (Some(m), Some(sink)) = (self.msix.signal(vector), &self.msi) {
            sink.deliver(m);
        }
    }

    /// Sends the messages of pending vectors the driver has unmasked.
    fn deliver_unmasked_pending(&mut self) {
        let msgs = self.msix.take_unmasked_pending();
        if let Some(sink) = &self.msi {
            msgs.into_iter().for_each(|m| sink.deliver(m));
        }
    }

    /// Features offered: the device's and the transport's.
    pub fn offered_features(&self) -> u64 {
        self.dev.features() | 1 << VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX | 1 << VIRTIO_RING_F_INDIRECT_DESC
    }

    /// The features the driver accepted (meaningful once FEATURES_OK is set).
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// device_status as the driver sees it.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// Where BAR 0 decodes now, if memory decoding is on.
    pub fn bar0(&self) -> Option<u64> {
        (self.command & CMD_MEMORY != 0).then_some(u64::from(self.bar0))
    }

    /// The device model (for flushing a drive at exit, and tests).
    pub fn device_mut(&mut self) -> &mut dyn VirtioDevice {
        self.dev.as_mut()
    }

    /// Whether a notify is waiting for [`VirtioPci::process`].
    pub fn has_work(&self) -> bool {
        self.notified != 0 || self.dev.in_flight()
    }

    fn update_irq(&self) {
        self.irq.set_level(self.isr != 0 && self.command & CMD_INTX_DISABLE == 0 && !self.msix_on());
    }

    fn reset(&mut self) {
        debug!("virtio-pci: device reset");
        self.dev.reset();
        self.queues.iter_mut().for_each(Queue::reset);
        self.driver_features = 0;
        self.device_feature_select = 0;
        self.driver_feature_select = 0;
        self.queue_select = 0;
        self.status = 0;
        self.isr = 0;
        self.notified = 0;
        // The vector mappings are the transport's (4.1.4.3); the MSI-X table is PCI state and
        // survives a device reset.
        self.config_vector = NO_VECTOR;
        self.queue_vectors.fill(NO_VECTOR);
        self.update_irq();
    }

    /// Serves the queues the driver notified and collects I/O-thread completions, then interrupts
    /// if the driver wants it.
    pub fn process(&mut self, mem: &mut dyn GuestMemory) {
        let pending = std::mem::take(&mut self.notified);
        let live = u32::from(self.status) & VIRTIO_CONFIG_S_DRIVER_OK != 0
            && u32::from(self.status) & VIRTIO_CONFIG_S_NEEDS_RESET == 0;
        if !live {
            return;
        }
        for i in 0..self.queues.len() {
            let q = &mut self.queues[i];
            if !q.ready {
                continue;
            }
            let served = if pending & (1 << i) != 0 { self.dev.process(i, q, mem) } else { Ok(()) };
            let result = served.and_then(|()| self.dev.complete(i, q, mem)).and_then(|()| q.needs_interrupt(mem));
            match result {
                // With MSI-X the queue's vector is signalled and the ISR queue bit is not set
                // (4.1.4.5).
                Ok(true) if self.msix_on() => self.signal_vector(self.queue_vectors[i]),
                Ok(true) => self.isr |= 1,
                Ok(false) => {}
                Err(e) => {
                    debug!(queue = i, error = %e, "virtio-pci: queue error; device needs reset");
                    self.status |= VIRTIO_CONFIG_S_NEEDS_RESET as u8;
                    self.isr |= 2;
                    if self.msix_on() {
                        self.signal_vector(self.config_vector);
                    }
                    break;
                }
            }
        }
        self.update_irq();
    }

    /// The common configuration structure as bytes (4.1.4.3), for reads at any width.
    fn common_image(&self) -> [u8; 0x40] {
        let mut c = [0u8; 0x40];
        let features = self.offered_features();
        let dfeat = match self.device_feature_select {
            0 => features as u32,
            1 => (features >> 32) as u32,
            _ => 0,
        };
        let drv = match self.driver_feature_select {
            0 => self.driver_features as u32,
            1 => (self.driver_features >> 32) as u32,
            _ => 0,
        };
        c[0..4].copy_from_slice(&self.device_feature_select.to_le_bytes());
        c[4..8].copy_from_slice(&dfeat.to_le_bytes());
        c[8..12].copy_from_slice(&self.driver_feature_select.to_le_bytes());
        c[12..16].copy_from_slice(&drv.to_le_bytes());
        c[16..18].copy_from_slice(&self.config_vector.to_le_bytes());
        c[18..20].copy_from_slice(&(self.queues.len() as u16).to_le_bytes());
        c[20] = self.status;
        c[21] = 0; // config_generation: the configuration never changes under the driver
        c[22..24].copy_from_slice(&self.queue_select.to_le_bytes());
        if let Some(q) = self.queues.get(usize::from(self.queue_select)) {
            c[24..26].copy_from_slice(&q.size.to_le_bytes());
            c[26..28].copy_from_slice(&self.queue_vectors[usize::from(self.queue_select)].to_le_bytes());
            c[28..30].copy_from_slice(&u16::from(q.ready).to_le_bytes());
            c[30..32].copy_from_slice(&self.queue_select.to_le_bytes()); // queue_notify_off
            c[32..40].copy_from_slice(&q.desc.to_le_bytes());
            c[40..48].copy_from_slice(&q.avail.to_le_bytes());
            c[48..56].copy_from_slice(&q.used.to_le_bytes());
        }
        c
    }

    fn common_write(&mut self, offset: usize, data: &[u8]) {
        let mut c = self.common_image();
        let Some(dst) = c.get_mut(offset..offset + data.len()) else { return };
        dst.copy_from_slice(data);
        let touched = |start: usize, len: usize| offset < start + len && start < offset + data.len();
        let u16_at = |o: usize| u16::from_le_bytes([c[o], c[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([c[o], c[o + 1], c[o + 2], c[o + 3]]);
        let u64_at = |o: usize| u64::from(u32_at(o)) | u64::from(u32_at(o + 4)) << 32;
        if touched(0, 4) {
            self.device_feature_select = u32_at(0);
        }
        if touched(8, 4) {
            self.driver_feature_select = u32_at(8);
        }
        if touched(12, 4) && u32::from(self.status) & VIRTIO_CONFIG_S_FEATURES_OK == 0 {
            let v = u64::from(u32_at(12));
            match self.driver_feature_select {
                0 => self.driver_features = self.driver_features & !0xffff_ffff | v,
                1 => self.driver_features = self.driver_features & 0xffff_ffff | v << 32,
                _ => {}
            }
        }
        if touched(20, 1) {
            self.write_status(c[20]);
        }
        if touched(16, 2) {
            self.config_vector = self.vector_or_none(u16_at(16));
        }
        if touched(22, 2) {
            self.queue_select = u16_at(22);
        }
        if touched(26, 2) && usize::from(self.queue_select) < self.queues.len() {
            let v = self.vector_or_none(u16_at(26));
            self.queue_vectors[usize::from(self.queue_select)] = v;
        }
        // Queue registers may only change while the queue is disabled (4.1.4.3.2).
        let Some(q) = self.queues.get_mut(usize::from(self.queue_select)) else { return };
        if q.ready {
            return;
        }
        if touched(24, 2) {
            q.size = u16_at(24);
        }
        if touched(32, 8) {
            q.desc = u64_at(32);
        }
        if touched(40, 8) {
            q.avail = u64_at(40);
        }
        if touched(48, 8) {
            q.used = u64_at(48);
        }
        if touched(28, 2) && u16_at(28) == 1 {
            if q.size == 0 || q.size > q.max_size {
                debug!(size = q.size, "virtio-pci: queue enabled with a bad size; ignored");
                return;
            }
            q.event_idx = self.driver_features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0;
            q.ready = true;
        }
    }

    /// A vector the driver asked for, or NO_VECTOR when there is no such vector: the driver
    /// reads the register back to see whether the mapping took (4.1.5.1.2).
    fn vector_or_none(&self, v: u16) -> u16 {
        if self.msi.is_some() && usize::from(v) < self.msix.table.len() {
            v
        } else {
            NO_VECTOR
        }
    }

    fn write_status(&mut self, value: u8) {
        if value == 0 {
            self.reset();
            return;
        }
        let mut v = value;
        let newly_ok = u32::from(v) & VIRTIO_CONFIG_S_FEATURES_OK != 0
            && u32::from(self.status) & VIRTIO_CONFIG_S_FEATURES_OK == 0;
        if newly_ok {
            let unknown = self.driver_features & !self.offered_features();
            if unknown != 0 || self.driver_features & (1 << VIRTIO_F_VERSION_1) == 0 {
                debug!(features = self.driver_features, "virtio-pci: features refused");
                v &= !(VIRTIO_CONFIG_S_FEATURES_OK as u8);
            }
        }
        // NEEDS_RESET is the device's to set, not the driver's.
        self.status = v & !(VIRTIO_CONFIG_S_NEEDS_RESET as u8) | self.status & VIRTIO_CONFIG_S_NEEDS_RESET as u8;
    }

    /// A read from BAR 0 at `offset`.
    pub fn bar_read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        match offset {
            COMMON..0x1000 => {
                let c = self.common_image();
                let o = offset as usize;
                if let Some(src) = c.get(o..o + data.len()) {
                    data.copy_from_slice(src);
                }
            }
            ISR => {
                data[0] = std::mem::take(&mut self.isr);
                self.update_irq();
            }
            DEVICE..NOTIFY => self.dev.read_config(offset - DEVICE, data),
            msix::TABLE_OFFSET..msix::PBA_OFFSET if self.msi.is_some() => {
                self.msix.table_read(offset - msix::TABLE_OFFSET, data);
            }
            msix::PBA_OFFSET..0x6000 if self.msi.is_some() => self.msix.pba_read(offset - msix::PBA_OFFSET, data),
            _ => trace!(offset, "virtio-pci: read from an unused BAR offset"),
        }
    }

    /// A write to BAR 0 at `offset`.
    pub fn bar_write(&mut self, offset: u64, data: &[u8]) {
        match offset {
            COMMON..0x1000 => self.common_write(offset as usize, data),
            DEVICE..NOTIFY => self.dev.write_config(offset - DEVICE, data),
            NOTIFY..msix::TABLE_OFFSET => {
                let q = (offset - NOTIFY) / u64::from(NOTIFY_MULTIPLIER);
                if (q as usize) < self.queues.len() {
                    self.notified |= 1 << q;
                }
            }
            msix::TABLE_OFFSET..msix::PBA_OFFSET if self.msi.is_some() => {
                self.msix.table_write(offset - msix::TABLE_OFFSET, data);
                self.deliver_unmasked_pending();
            }
            _ => trace!(offset, "virtio-pci: write to a read-only or unused BAR offset"),
        }
    }
}

impl PciFunction for VirtioPci {
    fn config_read(&mut self, offset: u8) -> u32 {
        let o = usize::from(offset & 0xfc);
        let mut b = [self.header[o], self.header[o + 1], self.header[o + 2], self.header[o + 3]];
        match o {
            0x04 => {
                let status = STATUS_CAP_LIST | if self.isr != 0 { STATUS_INTERRUPT } else { 0 };
                b = (u32::from(self.command) | u32::from(status) << 16).to_le_bytes();
            }
            0x10 => b = self.bar0.to_le_bytes(), // 32-bit, non-prefetchable memory BAR
            0x3c => b[0] = self.interrupt_line,
            MSIX_CAP if self.msi.is_some() => b[2..4].copy_from_slice(&self.msix.message_control().to_le_bytes()),
            _ => {}
        }
        u32::from_le_bytes(b)
    }

    fn config_write(&mut self, offset: u8, value: u32, byte_mask: u8) {
        let o = offset & 0xfc;
        let mut old = self.config_read(o).to_le_bytes();
        for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
            if byte_mask & (1 << i) != 0 {
                old[i] = byte;
            }
        }
        let v = u32::from_le_bytes(old);
        match o {
            0x04 => {
                self.command = v as u16 & CMD_WRITABLE;
                self.update_irq();
            }
            0x10 => self.bar0 = v & !(BAR_SIZE - 1),
            0x3c => self.interrupt_line = v as u8,
            o if usize::from(o) == MSIX_CAP && self.msi.is_some() => {
                self.msix.control = (v >> 16) as u16 & (msix::CONTROL_ENABLE | msix::CONTROL_FUNCTION_MASK);
                self.update_irq();
                self.deliver_unmasked_pending();
            }
            _ => trace!(offset, "virtio-pci: write to a read-only configuration register ignored"),
        }
    }
}

impl PciFunction for Rc<RefCell<VirtioPci>> {
    fn config_read(&mut self, offset: u8) -> u32 {
        self.borrow_mut().config_read(offset)
    }
    fn config_write(&mut self, offset: u8, value: u32, byte_mask: u8) {
        self.borrow_mut().config_write(offset, value, byte_mask);
    }
}

/// The 32-bit PCI memory window: routes each access to the virtio function whose BAR 0 covers it.
pub struct PciMmioWindow {
    /// Guest physical address of offset 0.
    pub base: u64,
    /// The functions, shared with the PCI host and the machine.
    pub functions: Rc<RefCell<Vec<Rc<RefCell<VirtioPci>>>>>,
}

impl PciMmioWindow {
    fn route(&self, offset: u64, f: impl FnOnce(&mut VirtioPci, u64)) -> bool {
        let addr = self.base + offset;
        for dev in self.functions.borrow().iter() {
            let mut d = dev.borrow_mut();
            if let Some(bar) = d.bar0() {
                if addr >= bar && addr - bar < u64::from(BAR_SIZE) {
                    f(&mut d, addr - bar);
                    return true;
                }
            }
        }
        false
    }
}

impl MmioDevice for PciMmioWindow {
    fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0xff);
        if !self.route(offset, |d, o| d.bar_read(o, data)) {
            trace!(offset, "pci window: read where no BAR decodes");
        }
    }

    fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        if !self.route(offset, |d, o| d.bar_write(o, data)) {
            trace!(offset, "pci window: write where no BAR decodes");
        }
    }
}
