//! MSI-X for the virtio-pci transport (PCI Local Bus 3.0, 6.8.2 "MSI-X Capability and Table
//! Structure"; virtio 1.2, 4.1.4.3 and 4.1.5.1.2): the capability in configuration space, the
//! vector table and the pending-bit array in BAR 0, per-vector and function-wide masking, and the
//! translation of a vector's (address, data) pair into an interrupt message for the local APIC
//! (SDM Vol. 3, 11.11 "Message Signalled Interrupts").
//!
//! The function has one vector per virtqueue plus one for configuration changes; the driver maps
//! queues and the configuration to vectors through `queue_msix_vector` / `config_msix_vector`.
//! A signal for a masked vector sets its pending bit; unmasking it (the entry's mask bit or the
//! function mask) sends the message then. Messages whose address is not in the local APICs'
//! 0xFEExxxxx window are dropped (a real device would write memory; no guest asks for that).

use crate::pc::lapic::ApicMessage;

/// PCI capability ID of MSI-X.
pub const CAP_ID: u8 = 0x11;
/// Length of the capability in configuration space.
pub const CAP_LEN: usize = 12;
/// Where the vector table starts in BAR 0 (BIR 0).
pub const TABLE_OFFSET: u64 = 0x4000;
/// Where the pending-bit array starts in BAR 0.
pub const PBA_OFFSET: u64 = 0x5000;
/// The largest table this transport offers (the PBA is one 64-bit word).
pub const MAX_VECTORS: usize = 64;
/// Message control bit 15: MSI-X enable (the guest's to write).
pub const CONTROL_ENABLE: u16 = 1 << 15;
/// Message control bit 14: function mask (the guest's to write).
pub const CONTROL_FUNCTION_MASK: u16 = 1 << 14;
/// Vector control bit 0: the vector is masked.
const ENTRY_MASKED: u32 = 1;
/// Bytes per table entry: message address low, high, data, vector control.
const ENTRY_LEN: u64 = 16;
/// The local APICs' MSI address window (SDM 11.11.1: address bits 31:20 = FEEh).
const MSI_WINDOW: u64 = 0xfee0_0000;

/// The MSI-X registers (also the snapshot's view of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsixState {
    /// Message control bits 15:14 (enable, function mask).
    pub control: u16,
    /// Table entries: address low, address high, data, vector control.
    pub table: Vec<[u32; 4]>,
    /// Pending bits (bit n = vector n signalled while masked).
    pub pending: u64,
}

impl MsixState {
    /// Reset state for `vectors` vectors: disabled, every vector masked (6.8.2.9).
    pub fn new(vectors: usize) -> Self {
        MsixState { control: 0, table: vec![[0, 0, 0, ENTRY_MASKED]; vectors.min(MAX_VECTORS)], pending: 0 }
    }

    /// MSI-X is enabled: interrupts are messages, INTx is off.
    pub fn enabled(&self) -> bool {
        self.control & CONTROL_ENABLE != 0
    }

    /// The message control register as configuration space shows it: enable, mask, table size - 1.
    pub fn message_control(&self) -> u16 {
        self.control | (self.table.len().saturating_sub(1) as u16 & 0x7ff)
    }

    fn masked(&self, vector: usize) -> bool {
        self.control & CONTROL_FUNCTION_MASK != 0 || self.table[vector][3] & ENTRY_MASKED != 0
    }

    /// The message `vector` sends, if its address targets the local APICs.
    fn message(&self, vector: usize) -> Option<ApicMessage> {
        let [lo, hi, data, _] = self.table[vector];
        let address = u64::from(hi) << 32 | u64::from(lo);
        if address & !0xf_ffff != MSI_WINDOW {
            tracing::debug!(vector, address, "msi-x: message address outside the APIC window; dropped");
            return None;
        }
        Some(ApicMessage {
            vector: data as u8,
            delivery_mode: (data >> 8 & 7) as u8,
            logical_destination: lo & (1 << 2) != 0,
            destination: (lo >> 12) as u8,
            level_triggered: data & (1 << 15) != 0,
        })
    }

    /// Signals `vector` (an index the driver chose; NO_VECTOR or out of range signals nothing):
    /// the message to send now, or none when the vector is masked (it is then left pending).
    pub fn signal(&mut self, vector: u16) -> Option<ApicMessage> {
        let v = usize::from(vector);
        if v >= self.table.len() {
            return None;
        }
        if self.masked(v) {
            self.pending |= 1 << v;
            return None;
        }
        self.message(v)
    }

    /// Messages for pending vectors that are no longer masked (their pending bits clear).
    pub fn take_unmasked_pending(&mut self) -> Vec<ApicMessage> {
        let mut out = Vec::new();
        for v in 0..self.table.len() {
            if self.pending & (1 << v) != 0 && !self.masked(v) {
                self.pending &= !(1 << v);
                out.extend(self.message(v));
            }
        }
        out
    }

    /// A read at `offset` from the table's start.
    pub fn table_read(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            let at = offset + i as u64;
            *b = self
                .table
                .get((at / ENTRY_LEN) as usize)
                .map_or(0, |e| e[(at % ENTRY_LEN / 4) as usize].to_le_bytes()[(at % 4) as usize]);
        }
    }

    /// A write at `offset` from the table's start (any width; reserved vector control bits stay 0).
    pub fn table_write(&mut self, offset: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let at = offset + i as u64;
            let Some(entry) = self.table.get_mut((at / ENTRY_LEN) as usize) else { continue };
            let word = &mut entry[(at % ENTRY_LEN / 4) as usize];
            let mut bytes = word.to_le_bytes();
            bytes[(at % 4) as usize] = b;
            *word = u32::from_le_bytes(bytes);
            if at % ENTRY_LEN >= 12 {
                entry[3] &= ENTRY_MASKED;
            }
        }
    }

    /// A read at `offset` from the pending-bit array's start (read-only).
    pub fn pba_read(&self, offset: u64, data: &mut [u8]) {
        let bits = self.pending.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = usize::try_from(offset + i as u64).ok().and_then(|o| bits.get(o)).copied().unwrap_or(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(m: &mut MsixState, v: usize, address: u64, data: u32, masked: bool) {
        let mut e = Vec::new();
        e.extend_from_slice(&(address as u32).to_le_bytes());
        e.extend_from_slice(&((address >> 32) as u32).to_le_bytes());
        e.extend_from_slice(&data.to_le_bytes());
        e.extend_from_slice(&u32::from(masked).to_le_bytes());
        m.table_write(v as u64 * 16, &e);
    }

    #[test]
    fn message_fields_follow_the_sdm_layout() {
        let mut m = MsixState::new(2);
        m.control = CONTROL_ENABLE;
        // Destination ID 3 in bits 19:12, logical (bit 2); vector 0x41, lowest priority, edge.
        entry(&mut m, 1, 0xfee0_3004, 0x0141, false);
        let msg = m.signal(1).expect("unmasked vector sends");
        assert_eq!(
            msg,
            ApicMessage {
                vector: 0x41,
                delivery_mode: 1,
                logical_destination: true,
                destination: 3,
                level_triggered: false
            }
        );
        assert_eq!(m.signal(0xffff), None, "NO_VECTOR signals nothing");
        assert_eq!(m.signal(2), None, "out of range signals nothing");
    }

    #[test]
    fn masked_vectors_pend_until_unmasked() {
        let mut m = MsixState::new(2);
        m.control = CONTROL_ENABLE | CONTROL_FUNCTION_MASK;
        entry(&mut m, 0, 0xfee0_0000, 0x30, false);
        assert_eq!(m.signal(0), None);
        let mut pba = [0u8; 8];
        m.pba_read(0, &mut pba);
        assert_eq!(pba[0], 1);
        assert!(m.take_unmasked_pending().is_empty(), "still masked by the function mask");
        m.control = CONTROL_ENABLE;
        assert_eq!(m.take_unmasked_pending().len(), 1);
        assert_eq!(m.pending, 0);
        // Entry mask: set by writing vector control, cleared the same way.
        m.table_write(12, &1u32.to_le_bytes());
        assert_eq!(m.signal(0), None);
        m.table_write(12, &0xffff_fffeu32.to_le_bytes());
        let mut ctl = [0u8; 4];
        m.table_read(12, &mut ctl);
        assert_eq!(u32::from_le_bytes(ctl), 0, "reserved vector control bits read 0");
        assert_eq!(m.take_unmasked_pending().len(), 1);
    }

    #[test]
    fn reset_masks_every_vector_and_reports_the_table_size() {
        let m = MsixState::new(3);
        assert!(m.table.iter().all(|e| e[3] == ENTRY_MASKED));
        assert_eq!(m.message_control(), 2);
        assert!(!m.enabled());
    }
}
