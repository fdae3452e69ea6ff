//! Intel 82093AA I/O APIC: 24 interrupt pins turned into interrupt messages for the local APICs.
//!
//! Reference: Intel *82093AA I/O Advanced Programmable Interrupt Controller (IOAPIC)* datasheet
//! (order 290566-001): section 3.0 "Register Description" (IOREGSEL at offset 0x00, IOWIN at 0x10,
//! IOAPICID 0x00, IOAPICVER 0x01 = 0x00170011, IOAPICARB 0x02, IOREDTBL 0x10-0x3f), section 3.2.4
//! (redirection table entry fields, all entries masked at reset) and 2.4 / 3.2.4 on level-triggered
//! interrupts (remote IRR set when the local APIC accepts, cleared by its EOI).
//!
//! Messages go to an [`ApicSink`] the machine provides (it routes them to the local APICs or to
//! KVM); the local APIC's EOI for a level-triggered vector comes back through
//! [`IoApic::end_of_interrupt`] (the EOI broadcast).
//!
//! Modelled: the three identification registers, 24 redirection entries (vector, delivery mode,
//! destination mode, polarity and trigger bits, mask, destination), edge delivery on a rising input
//! (an edge arriving while the entry is masked is lost),
//! level delivery with remote IRR and redelivery after EOI while the input stays asserted, delivery
//! when a level entry is unmasked while asserted. Only 32-bit accesses to IOREGSEL and IOWIN.
//!
//! Not modelled: the polarity bit's inversion (device lines are given as logical "asserted" levels,
//! so the polarity the guest programs does not flip them), delivery status (messages are delivered at
//! once, so it reads 0), the APIC serial bus arbitration, the PCI IRQ-pin assertion register of later
//! IOAPICs (version 0x20).

use std::cell::RefCell;
use std::rc::Rc;

use tracing::trace;

use crate::bus::MmioDevice;
use crate::irq::IrqLine;
use crate::pc::lapic::ApicMessage;

/// Default physical base address of the IOAPIC.
pub const IOAPIC_BASE: u64 = 0xfec0_0000;
/// Size of the MMIO window.
pub const IOAPIC_SIZE: u64 = 0x20;
/// Offset of IOREGSEL (register select).
pub const IOREGSEL: u64 = 0x00;
/// Offset of IOWIN (register data window).
pub const IOWIN: u64 = 0x10;
/// Register: IOAPIC identification (bits 27:24).
pub const REG_ID: u8 = 0x00;
/// Register: version (bits 7:0) and maximum redirection entry (bits 23:16).
pub const REG_VERSION: u8 = 0x01;
/// Register: arbitration ID (bits 27:24).
pub const REG_ARBITRATION: u8 = 0x02;
/// Register: first redirection table dword (entry n at 0x10 + 2n, high half at 0x11 + 2n).
pub const REG_REDIRECTION_BASE: u8 = 0x10;
/// Number of interrupt input pins.
pub const PIN_COUNT: usize = 24;
/// IOAPICVER as the datasheet gives it: version 0x11, 24 entries (maximum index 0x17).
pub const VERSION_VALUE: u32 = 0x0017_0011;

/// RTE bits 7:0: vector.
pub const RTE_VECTOR: u64 = 0xff;
/// RTE bits 10:8: delivery mode.
pub const RTE_DELIVERY_MODE_SHIFT: u32 = 8;
/// RTE bit 11: destination mode (1 = logical).
pub const RTE_DEST_LOGICAL: u64 = 1 << 11;
/// RTE bit 12: delivery status (read-only).
pub const RTE_DELIVERY_STATUS: u64 = 1 << 12;
/// RTE bit 13: input pin polarity (1 = active low).
pub const RTE_POLARITY_LOW: u64 = 1 << 13;
/// RTE bit 14: remote IRR (read-only, level-triggered only).
pub const RTE_REMOTE_IRR: u64 = 1 << 14;
/// RTE bit 15: trigger mode (1 = level).
pub const RTE_LEVEL: u64 = 1 << 15;
/// RTE bit 16: interrupt mask.
pub const RTE_MASKED: u64 = 1 << 16;
/// RTE bits 63:56: destination field.
pub const RTE_DEST_SHIFT: u32 = 56;
/// RTE bits the guest may write (delivery status and remote IRR are read-only; 55:17 reserved).
const RTE_WRITABLE: u64 = 0xff00_0000_0001_afff;

/// Where the IOAPIC's interrupt messages go (the machine routes them to local APICs).
pub trait ApicSink {
    /// Delivers one interrupt message.
    fn deliver(&self, message: ApicMessage);
}

impl<T: ApicSink + ?Sized> ApicSink for Rc<T> {
    fn deliver(&self, message: ApicMessage) {
        (**self).deliver(message);
    }
}

/// A sink that records messages (a test stand-in; clones share the record).
#[derive(Debug, Clone, Default)]
pub struct RecordingSink {
    messages: Rc<RefCell<Vec<ApicMessage>>>,
}

impl RecordingSink {
    /// Takes the messages delivered so far.
    pub fn take(&self) -> Vec<ApicMessage> {
        std::mem::take(&mut self.messages.borrow_mut())
    }
}

impl ApicSink for RecordingSink {
    fn deliver(&self, message: ApicMessage) {
        self.messages.borrow_mut().push(message);
    }
}

/// The IOAPIC's registers, for snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoApicState {
    /// IOREGSEL.
    pub select: u8,
    /// IOAPIC ID (bits 27:24 of register 0).
    pub id: u8,
    /// Redirection table entries.
    pub redirection: [u64; PIN_COUNT],
    /// Input pin levels (bit n = pin n asserted).
    pub pins: u32,
}

impl Default for IoApicState {
    /// Reset: every entry masked (datasheet 3.2.4), ID 0.
    fn default() -> Self {
        Self { select: 0, id: 0, redirection: [RTE_MASKED; PIN_COUNT], pins: 0 }
    }
}

/// An 82093AA delivering its messages to `S`.
///
/// # Example
/// ```
/// use devices::bus::MmioDevice;
/// use devices::pc::ioapic::{IoApic, RecordingSink, IOREGSEL, IOWIN};
/// let sink = RecordingSink::default();
/// let mut ioapic = IoApic::new(sink.clone());
/// // Pin 4 -> vector 0x24, edge, unmasked, physical destination APIC 0.
/// ioapic.mmio_write(IOREGSEL, &0x18u32.to_le_bytes());
/// ioapic.mmio_write(IOWIN, &0x24u32.to_le_bytes());
/// ioapic.set_irq(4, true);
/// assert_eq!(sink.take()[0].vector, 0x24);
/// ```
pub struct IoApic<S: ApicSink> {
    s: IoApicState,
    sink: S,
}

impl<S: ApicSink> IoApic<S> {
    /// An IOAPIC in its reset state.
    pub fn new(sink: S) -> Self {
        Self::from_state(IoApicState::default(), sink)
    }

    /// Rebuilds the IOAPIC from a snapshot (no messages are sent).
    pub fn from_state(state: IoApicState, sink: S) -> Self {
        Self { s: state, sink }
    }

    /// The registers, for a snapshot.
    pub fn state(&self) -> IoApicState {
        self.s.clone()
    }

    /// The select register, the redirection table (remote IRR included) and the pin levels, for a
    /// snapshot (same as [`Self::state`]).
    pub fn save_state(&self) -> IoApicState {
        self.state()
    }

    /// Puts the IOAPIC in a saved state. No message is sent: a message the saved IOAPIC had sent is
    /// the receiving APIC's state (IRR, or the machine's queue).
    pub fn restore_state(&mut self, s: &IoApicState) {
        self.s = s.clone();
    }

    fn message(&self, pin: usize) -> ApicMessage {
        let rte = self.s.redirection[pin];
        ApicMessage {
            vector: (rte & RTE_VECTOR) as u8,
            delivery_mode: ((rte >> RTE_DELIVERY_MODE_SHIFT) & 7) as u8,
            logical_destination: rte & RTE_DEST_LOGICAL != 0,
            destination: (rte >> RTE_DEST_SHIFT) as u8,
            level_triggered: rte & RTE_LEVEL != 0,
        }
    }

    /// Sends pin `pin`'s message if its entry allows it now.
    fn try_deliver(&mut self, pin: usize) {
        let rte = self.s.redirection[pin];
        if rte & RTE_MASKED != 0 {
            return;
        }
        if rte & RTE_LEVEL != 0 {
            // Level: one message until the local APIC's EOI clears remote IRR.
            if rte & RTE_REMOTE_IRR != 0 || self.s.pins & (1 << pin) == 0 {
                return;
            }
            self.s.redirection[pin] |= RTE_REMOTE_IRR;
        }
        self.sink.deliver(self.message(pin));
    }

    /// Drives input pin `pin` (0-23); other numbers are ignored.
    pub fn set_irq(&mut self, pin: usize, asserted: bool) {
        if pin >= PIN_COUNT {
            trace!(pin, "ioapic: no such pin");
            return;
        }
        let bit = 1u32 << pin;
        let was = self.s.pins & bit != 0;
        if asserted {
            self.s.pins |= bit;
        } else {
            self.s.pins &= !bit;
        }
        let level = self.s.redirection[pin] & RTE_LEVEL != 0;
        if asserted && (level || !was) {
            // Edge entries fire on the rising edge; level entries whenever asserted and idle.
            self.try_deliver(pin);
        }
    }

    /// The EOI broadcast from a local APIC for `vector`: clears remote IRR of the level entries with
    /// that vector and delivers again those whose input is still asserted.
    pub fn end_of_interrupt(&mut self, vector: u8) {
        for pin in 0..PIN_COUNT {
            let rte = self.s.redirection[pin];
            if rte & RTE_LEVEL != 0 && (rte & RTE_VECTOR) as u8 == vector && rte & RTE_REMOTE_IRR != 0 {
                self.s.redirection[pin] &= !RTE_REMOTE_IRR;
                self.try_deliver(pin);
            }
        }
    }

    fn read_register(&self, index: u8) -> u32 {
        match index {
            REG_ID => u32::from(self.s.id & 0x0f) << 24,
            REG_VERSION => VERSION_VALUE,
            REG_ARBITRATION => u32::from(self.s.id & 0x0f) << 24, // the arbitration ID loads from the ID
            0x10..=0x3f => {
                let rte = self.s.redirection[usize::from((index - REG_REDIRECTION_BASE) / 2)];
                if index & 1 == 0 {
                    rte as u32
                } else {
                    (rte >> 32) as u32
                }
            }
            _ => {
                trace!(index, "ioapic: read of unknown register");
                0
            }
        }
    }

    fn write_register(&mut self, index: u8, value: u32) {
        match index {
            REG_ID => self.s.id = ((value >> 24) & 0x0f) as u8,
            0x10..=0x3f => {
                let pin = usize::from((index - REG_REDIRECTION_BASE) / 2);
                let old = self.s.redirection[pin];
                let merged = if index & 1 == 0 {
                    (old & !0xffff_ffff) | u64::from(value)
                } else {
                    (old & 0xffff_ffff) | (u64::from(value) << 32)
                };
                let read_only = old & (RTE_DELIVERY_STATUS | RTE_REMOTE_IRR);
                let mut rte = (merged & RTE_WRITABLE) | read_only;
                if rte & RTE_LEVEL == 0 {
                    rte &= !RTE_REMOTE_IRR; // remote IRR is undefined for edge entries; keep it clear
                }
                self.s.redirection[pin] = rte;
                if rte & RTE_LEVEL != 0 && old & RTE_MASKED != 0 && rte & RTE_MASKED == 0 {
                    // Unmasking an asserted level-triggered input delivers it.
                    self.try_deliver(pin);
                }
            }
            _ => trace!(index, value, "ioapic: write to read-only or unknown register ignored"),
        }
    }
}

impl<S: ApicSink> MmioDevice for IoApic<S> {
    fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        let Ok(out) = <&mut [u8; 4]>::try_from(&mut *data) else {
            trace!(offset, len = data.len(), "ioapic: non-dword read ignored");
            return;
        };
        let value = match offset {
            IOREGSEL => u32::from(self.s.select),
            IOWIN => self.read_register(self.s.select),
            _ => {
                trace!(offset, "ioapic: read of unknown offset");
                0xffff_ffff
            }
        };
        *out = value.to_le_bytes();
    }

    fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            trace!(offset, len = data.len(), "ioapic: non-dword write ignored");
            return;
        };
        let value = u32::from_le_bytes(bytes);
        match offset {
            IOREGSEL => self.s.select = value as u8, // bits 7:0 select the register
            IOWIN => self.write_register(self.s.select, value),
            _ => trace!(offset, value, "ioapic: write to unknown offset"),
        }
    }
}

/// One IOAPIC pin as an [`IrqLine`] a device can drive.
pub struct IoApicInput<S: ApicSink> {
    /// The shared IOAPIC.
    pub ioapic: Rc<RefCell<IoApic<S>>>,
    /// The pin, 0-23.
    pub pin: usize,
}

impl<S: ApicSink> IrqLine for IoApicInput<S> {
    fn set_level(&self, asserted: bool) {
        self.ioapic.borrow_mut().set_irq(self.pin, asserted);
    }
}

#[cfg(test)]
mod tests {
    //! Expected values from the 82093AA datasheet (290566-001) sections cited per test.
    use super::*;

    fn ioapic() -> (IoApic<RecordingSink>, RecordingSink) {
        let sink = RecordingSink::default();
        (IoApic::new(sink.clone()), sink)
    }

    fn write_reg(io: &mut IoApic<RecordingSink>, index: u8, value: u32) {
        io.mmio_write(IOREGSEL, &u32::from(index).to_le_bytes());
        io.mmio_write(IOWIN, &value.to_le_bytes());
    }

    fn read_reg(io: &mut IoApic<RecordingSink>, index: u8) -> u32 {
        io.mmio_write(IOREGSEL, &u32::from(index).to_le_bytes());
        let mut d = [0; 4];
        io.mmio_read(IOWIN, &mut d);
        u32::from_le_bytes(d)
    }

    #[test]
    fn identification_and_reset_values() {
        // 3.2.1-3.2.3: ID in bits 27:24; version 0x11 with 0x17 as the maximum entry; 3.2.4: masked.
        let (mut io, _) = ioapic();
        write_reg(&mut io, REG_ID, 0x0a00_0000 | 0xff);
        assert_eq!(read_reg(&mut io, REG_ID), 0x0a00_0000);
        assert_eq!(read_reg(&mut io, REG_VERSION), 0x0017_0011);
        write_reg(&mut io, REG_VERSION, 0);
        assert_eq!(read_reg(&mut io, REG_VERSION), 0x0017_0011);
        assert_eq!(read_reg(&mut io, REG_ARBITRATION), 0x0a00_0000);
        for pin in 0..24u8 {
            assert_eq!(read_reg(&mut io, 0x10 + 2 * pin), 1 << 16);
        }
        let mut d = [0; 4];
        io.mmio_read(IOREGSEL, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x3e); // the last select: entry 23, low dword
    }

    #[test]
    fn edge_delivery_on_rising_edges_only() {
        let (mut io, sink) = ioapic();
        io.set_irq(2, true); // masked: lost
        write_reg(&mut io, 0x14, 0x30 | (1 << 11)); // pin 2, vector 0x30, logical
        write_reg(&mut io, 0x15, 0x0300_0000);
        assert!(sink.take().is_empty());
        io.set_irq(2, true); // already high: no edge
        io.set_irq(2, false);
        io.set_irq(2, true);
        let m = sink.take();
        assert_eq!(
            m,
            vec![ApicMessage {
                vector: 0x30,
                delivery_mode: 0,
                logical_destination: true,
                destination: 3,
                level_triggered: false
            }]
        );
    }

    #[test]
    fn level_delivery_with_remote_irr() {
        // A level entry delivers once, sets remote IRR; EOI clears it and redelivers if still high.
        let (mut io, sink) = ioapic();
        write_reg(&mut io, 0x22, 0x41 | (1 << 15) | (1 << 13)); // pin 9, level, active low
        io.set_irq(9, true);
        assert_eq!(sink.take().len(), 1);
        assert_ne!(read_reg(&mut io, 0x22) & (1 << 14), 0);
        io.set_irq(9, true);
        assert!(sink.take().is_empty());
        // The guest cannot clear remote IRR by writing the entry.
        write_reg(&mut io, 0x22, 0x41 | (1 << 15) | (1 << 13));
        assert_ne!(read_reg(&mut io, 0x22) & (1 << 14), 0);
        io.end_of_interrupt(0x42); // another vector: nothing
        assert!(sink.take().is_empty());
        io.end_of_interrupt(0x41);
        let m = sink.take();
        assert_eq!(m.len(), 1);
        assert!(m[0].level_triggered);
        io.set_irq(9, false);
        io.end_of_interrupt(0x41);
        assert!(sink.take().is_empty());
        assert_eq!(read_reg(&mut io, 0x22) & (1 << 14), 0);
    }

    #[test]
    fn unmasking_an_asserted_level_input_delivers() {
        let (mut io, sink) = ioapic();
        write_reg(&mut io, 0x20, 0x50 | (1 << 15) | (1 << 16));
        io.set_irq(8, true);
        assert!(sink.take().is_empty());
        write_reg(&mut io, 0x20, 0x50 | (1 << 15));
        assert_eq!(sink.take().len(), 1);
    }

    #[test]
    fn odd_accesses_and_the_input_adapter() {
        let (io, sink) = ioapic();
        let io = Rc::new(RefCell::new(io));
        let mut d = [0xee; 2];
        io.borrow_mut().mmio_read(IOWIN, &mut d);
        assert_eq!(d, [0xee; 2]);
        io.borrow_mut().mmio_write(IOREGSEL, &[0x10]);
        io.borrow_mut().mmio_write(IOREGSEL, &0x12u32.to_le_bytes());
        io.borrow_mut().mmio_write(IOWIN, &0x61u32.to_le_bytes());
        let line = IoApicInput { ioapic: io.clone(), pin: 1 };
        line.pulse();
        assert_eq!(sink.take()[0].vector, 0x61);
        io.borrow_mut().set_irq(99, true);
        let mut q = [0; 4];
        io.borrow_mut().mmio_read(0x08, &mut q);
        assert_eq!(q, [0xff; 4]);
        let state = io.borrow().state();
        assert_eq!(IoApic::from_state(state.clone(), RecordingSink::default()).state(), state);
    }

    /// Save with a level entry in service (remote IRR) and its input held, restore into a fresh
    /// IOAPIC (no message may be sent by the restore), then compare register reads and the message
    /// the EOI brings back, as datasheet 3.2.4 describes it.
    #[test]
    fn save_restore_keeps_remote_irr_and_pin_levels() {
        let (mut io, sink) = ioapic();
        write_reg(&mut io, 0x22, 0x41 | (1 << 15)); // pin 9: level, vector 0x41
        write_reg(&mut io, 0x23, 0x0100_0000); // destination 1
        write_reg(&mut io, 0x18, 0x34); // pin 4: edge, vector 0x34
        io.set_irq(9, true);
        assert_eq!(sink.take().len(), 1);
        io.mmio_write(IOREGSEL, &0x12u32.to_le_bytes()); // IOREGSEL is state too
        let saved = io.save_state();

        let (mut other, sink2) = ioapic();
        other.restore_state(&saved);
        assert!(sink2.take().is_empty());
        assert_eq!(other.save_state(), saved);
        let mut d1 = [0; 4];
        let mut d2 = [0; 4];
        io.mmio_read(IOREGSEL, &mut d1);
        other.mmio_read(IOREGSEL, &mut d2);
        assert_eq!(d1, d2);
        for index in 0..0x40 {
            assert_eq!(read_reg(&mut other, index), read_reg(&mut io, index), "register {index:#x}");
        }
        io.end_of_interrupt(0x41);
        other.end_of_interrupt(0x41);
        assert_eq!(sink2.take(), sink.take());
        io.set_irq(4, true);
        other.set_irq(4, true);
        assert_eq!(sink2.take(), sink.take());
    }
}
