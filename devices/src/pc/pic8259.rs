//! The PC's two cascaded Intel 8259A programmable interrupt controllers and the edge/level control
//! registers (ELCR) at ports 0x4d0/0x4d1.
//!
//! References: Intel *8259A Programmable Interrupt Controller* datasheet (order 231468-003):
//! "Initialization Command Words", "Operation Command Words", "Interrupt Sequence", "Fully nested
//! mode", "Rotation", "Special Mask Mode", "Poll Command", "Edge and Level Triggered Modes"; Intel
//! *82371AB PIIX4* datasheet, section "ELCR1/ELCR2" for the ELCR bits that must stay 0.
//!
//! Modelled: ICW1-ICW4 (single or cascade, LTIM, vector base, AEOI, SFNM), OCW1 (IMR), OCW2
//! (non-specific/specific EOI, rotate on EOI, rotate in AEOI, set priority), OCW3 (read IRR/ISR,
//! poll, special mask mode), fully nested priority with rotation, edge and level triggering (LTIM or
//! ELCR), spurious IRQ7/IRQ15, the master/slave cascade on IR2, the INTA cycle as
//! [`Pic8259::pending_vector`] / [`Pic8259::acknowledge`], an INTR output line.
//!
//! Simplifications: an edge-triggered request stays latched in IRR when its input falls before INTA
//! (the datasheet asks the input to stay high; latching keeps pulsed lines from being lost). The
//! slave's INT output is taken to fall during each INTA, so a slave request still waiting afterwards
//! gives master IR2 a fresh edge. Not modelled: 8080/8085 mode (ICW4 µPM = 0 is stored but vectors are always 8086-style),
//! buffered mode pins, the poll command's cascade view (a poll answers for the polled chip only).

use std::cell::RefCell;
use std::rc::Rc;

use tracing::trace;

use crate::bus::PioDevice;
use crate::irq::IrqLine;

/// Master command port (ICW1, OCW2, OCW3; reads IRR/ISR/poll).
pub const MASTER_BASE: u16 = 0x20;
/// Slave command port.
pub const SLAVE_BASE: u16 = 0xa0;
/// ELCR1 (IRQ0-7) and ELCR2 (IRQ8-15).
pub const ELCR_BASE: u16 = 0x4d0;

/// Offset of the command register (ICW1 / OCW2 / OCW3) from a chip's base.
pub const PORT_COMMAND: u16 = 0;
/// Offset of the data register (ICW2-4 / OCW1 = IMR).
pub const PORT_DATA: u16 = 1;

/// ICW1: ICW4 will follow.
pub const ICW1_IC4: u8 = 1 << 0;
/// ICW1: single chip, no ICW3.
pub const ICW1_SINGLE: u8 = 1 << 1;
/// ICW1: level-triggered mode for all inputs.
pub const ICW1_LTIM: u8 = 1 << 3;
/// ICW1 marker bit (with A0 = 0).
pub const ICW1_INIT: u8 = 1 << 4;
/// ICW4: 8086/8088 mode.
pub const ICW4_8086: u8 = 1 << 0;
/// ICW4: automatic end of interrupt.
pub const ICW4_AEOI: u8 = 1 << 1;
/// ICW4: special fully nested mode.
pub const ICW4_SFNM: u8 = 1 << 4;
/// OCW3 marker bit (with bit 4 = 0).
pub const OCW3_SELECT: u8 = 1 << 3;
/// OCW3: poll command.
pub const OCW3_POLL: u8 = 1 << 2;
/// OCW3: act on the read-register bit (RR).
pub const OCW3_RR: u8 = 1 << 1;
/// OCW3: read ISR rather than IRR (RIS).
pub const OCW3_RIS: u8 = 1 << 0;
/// OCW3: act on the special-mask bit (ESMM).
pub const OCW3_ESMM: u8 = 1 << 6;
/// OCW3: set (1) or reset (0) special mask mode (SMM).
pub const OCW3_SMM: u8 = 1 << 5;
/// OCW2 bits 7:5: non-specific EOI.
pub const OCW2_EOI: u8 = 0x20;
/// OCW2 bits 7:5: specific EOI (level in bits 2:0).
pub const OCW2_SPECIFIC_EOI: u8 = 0x60;
/// OCW2 bits 7:5: rotate on non-specific EOI.
pub const OCW2_ROTATE_EOI: u8 = 0xa0;
/// OCW2 bits 7:5: rotate on specific EOI.
pub const OCW2_ROTATE_SPECIFIC_EOI: u8 = 0xe0;
/// OCW2 bits 7:5: set priority (level in bits 2:0 becomes the lowest).
pub const OCW2_SET_PRIORITY: u8 = 0xc0;
/// OCW2 bits 7:5: set rotate in automatic EOI mode.
pub const OCW2_SET_ROTATE_AEOI: u8 = 0x80;
/// OCW2 bits 7:5: clear rotate in automatic EOI mode.
pub const OCW2_CLEAR_ROTATE_AEOI: u8 = 0x00;
/// The master input the slave's INT is wired to on a PC.
pub const CASCADE_IRQ: u8 = 2;
/// ELCR1 bits that must be 0: IRQ0, IRQ1, IRQ2 are always edge (PIIX4 ELCR1).
const ELCR1_MASK: u8 = 0xf8;
/// ELCR2 bits that must be 0: IRQ8 and IRQ13 are always edge (PIIX4 ELCR2).
const ELCR2_MASK: u8 = 0xde;

/// Everything one 8259A holds, for snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pic8259ChipState {
    /// Interrupt request register.
    pub irr: u8,
    /// In-service register.
    pub isr: u8,
    /// Interrupt mask register (OCW1).
    pub imr: u8,
    /// Input pin levels last seen (edge detection).
    pub pins: u8,
    /// Edge/level control register (1 = level), from the ELCR port.
    pub elcr: u8,
    /// The IR level with the highest priority (rotation moves it).
    pub priority_base: u8,
    /// ICW2 vector base (bits 7:3).
    pub vector_base: u8,
    /// ICW3 as written.
    pub icw3: u8,
    /// The next initialization word expected (0 = initialized, else 2, 3 or 4).
    pub init_step: u8,
    /// ICW1: ICW4 expected.
    pub expect_icw4: bool,
    /// ICW1: single mode.
    pub single: bool,
    /// ICW1: level-triggered mode for every input.
    pub ltim: bool,
    /// ICW4: automatic EOI.
    pub auto_eoi: bool,
    /// ICW4: 8086 mode bit.
    pub mode_8086: bool,
    /// ICW4: special fully nested mode.
    pub sfnm: bool,
    /// OCW2: rotate on automatic EOI.
    pub rotate_on_aeoi: bool,
    /// OCW3: special mask mode.
    pub special_mask: bool,
    /// OCW3: the command port reads ISR (else IRR).
    pub read_isr: bool,
    /// OCW3: the next command port read is a poll.
    pub poll: bool,
}

/// One 8259A.
#[derive(Debug, Clone, Default)]
struct Chip {
    s: Pic8259ChipState,
}

impl Chip {
    fn level_triggered(&self, irq: u8) -> bool {
        self.s.ltim || self.s.elcr & (1 << irq) != 0
    }

    fn set_input(&mut self, irq: u8, level: bool) {
        let bit = 1u8 << irq;
        if self.level_triggered(irq) {
            // Level mode: IRR follows the input.
            if level {
                self.s.irr |= bit;
            } else {
                self.s.irr &= !bit;
            }
        } else if level && self.s.pins & bit == 0 {
            // Edge mode: a low-to-high transition latches a request.
            self.s.irr |= bit;
        }
        if level {
            self.s.pins |= bit;
        } else {
            self.s.pins &= !bit;
        }
    }

    /// The IR level of the highest-priority set bit of `mask` under the current rotation.
    fn highest(&self, mask: u8) -> Option<u8> {
        (0..8).map(|i| self.s.priority_base.wrapping_add(i) & 7).find(|&irq| mask & (1 << irq) != 0)
    }

    /// Priority rank of an IR level: 0 is the highest.
    fn rank(&self, irq: u8) -> u8 {
        irq.wrapping_sub(self.s.priority_base) & 7
    }

    /// The request the chip would present on INT, if any (fully nested mode rules).
    fn output(&self, cascade_mask: u8) -> Option<u8> {
        let request = self.highest(self.s.irr & !self.s.imr)?;
        let mut blocking = self.s.isr;
        if self.s.special_mask {
            // Special mask mode: masked levels in service do not block anything.
            blocking &= !self.s.imr;
        }
        if self.s.sfnm {
            // Special fully nested: a slave in service does not block further slave requests.
            blocking &= !cascade_mask;
        }
        match self.highest(blocking) {
            Some(in_service) if self.rank(in_service) <= self.rank(request) => None,
            _ => Some(request),
        }
    }

    /// INTA for `irq`: move the request into service (or finish it at once under AEOI).
    fn acknowledge(&mut self, irq: u8) {
        let bit = 1u8 << irq;
        if !self.level_triggered(irq) {
            self.s.irr &= !bit;
        }
        if self.s.auto_eoi {
            if self.s.rotate_on_aeoi {
                self.s.priority_base = (irq + 1) & 7;
            }
        } else {
            self.s.isr |= bit;
        }
    }

    fn write_command(&mut self, value: u8) {
        if value & ICW1_INIT != 0 {
            // ICW1: start initialization (datasheet: IMR cleared, IR7 lowest priority, special mask
            // mode cleared, status read set to IRR, edge sense reset, ICW4 functions cleared if IC4 = 0).
            self.s.init_step = 2;
            self.s.expect_icw4 = value & ICW1_IC4 != 0;
            self.s.single = value & ICW1_SINGLE != 0;
            self.s.ltim = value & ICW1_LTIM != 0;
            self.s.imr = 0;
            self.s.isr = 0;
            self.s.priority_base = 0;
            self.s.special_mask = false;
            self.s.read_isr = false;
            self.s.poll = false;
            self.s.rotate_on_aeoi = false;
            if !self.s.expect_icw4 {
                self.s.auto_eoi = false;
                self.s.sfnm = false;
                self.s.mode_8086 = false;
            }
            // Edge sense reset: only inputs held under level triggering keep a request.
            self.s.irr = if self.s.ltim { self.s.pins } else { self.s.pins & self.s.elcr };
            return;
        }
        if value & OCW3_SELECT != 0 {
            // OCW3: choose what the command port reads; poll; special mask mode.
            if value & OCW3_RR != 0 {
                self.s.read_isr = value & OCW3_RIS != 0;
            }
            self.s.poll = value & OCW3_POLL != 0;
            if value & OCW3_ESMM != 0 {
                self.s.special_mask = value & OCW3_SMM != 0;
            }
            return;
        }
        // OCW2: end of interrupt and rotation.
        let level = value & 7;
        match value & 0xe0 {
            OCW2_EOI | OCW2_ROTATE_EOI => {
                if let Some(irq) = self.highest(self.s.isr) {
                    self.s.isr &= !(1 << irq);
                    if value & 0xe0 == OCW2_ROTATE_EOI {
                        self.s.priority_base = (irq + 1) & 7;
                    }
                }
            }
            OCW2_SPECIFIC_EOI => self.s.isr &= !(1 << level),
            OCW2_ROTATE_SPECIFIC_EOI => {
                self.s.isr &= !(1 << level);
                self.s.priority_base = (level + 1) & 7;
            }
            OCW2_SET_PRIORITY => self.s.priority_base = (level + 1) & 7,
            OCW2_SET_ROTATE_AEOI => self.s.rotate_on_aeoi = true,
            OCW2_CLEAR_ROTATE_AEOI => self.s.rotate_on_aeoi = false,
            _ => {} // 010: no operation
        }
    }

    fn write_data(&mut self, value: u8) {
        match self.s.init_step {
            2 => {
                // ICW2: vector base; T7-T3 used in 8086 mode.
                self.s.vector_base = value & 0xf8;
                self.s.init_step = if !self.s.single {
                    3
                } else if self.s.expect_icw4 {
                    4
                } else {
                    0
                };
            }
            3 => {
                // ICW3: slave mask (master) or slave identity (slave).
                self.s.icw3 = value;
                self.s.init_step = if self.s.expect_icw4 { 4 } else { 0 };
            }
            4 => {
                // ICW4: mode.
                self.s.mode_8086 = value & ICW4_8086 != 0;
                self.s.auto_eoi = value & ICW4_AEOI != 0;
                self.s.sfnm = value & ICW4_SFNM != 0;
                self.s.init_step = 0;
            }
            _ => self.s.imr = value, // OCW1: the interrupt mask
        }
    }

    fn read_command(&mut self, cascade_mask: u8) -> u8 {
        if self.s.poll {
            // Poll: acknowledge the highest request as an INTA would and report it.
            self.s.poll = false;
            return match self.output(cascade_mask) {
                Some(irq) => {
                    self.acknowledge(irq);
                    0x80 | irq
                }
                None => 0,
            };
        }
        if self.s.read_isr {
            self.s.isr
        } else {
            self.s.irr
        }
    }
}

/// Which of the PIC's port ranges an access came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PicPorts {
    /// Ports 0x20-0x21.
    Master,
    /// Ports 0xa0-0xa1.
    Slave,
    /// Ports 0x4d0-0x4d1.
    Elcr,
}

/// State of the pair, for snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pic8259State {
    /// The master (IRQ0-7).
    pub master: Pic8259ChipState,
    /// The slave (IRQ8-15).
    pub slave: Pic8259ChipState,
}

/// The master/slave 8259A pair of a PC, with its INTR output on `L`. (`L` must not call back into
/// the PIC: it runs while the PIC is being updated.)
///
/// # Example
/// ```
/// use devices::irq::RecordingIrq;
/// use devices::pc::pic8259::{Pic8259, PicPorts};
/// let intr = RecordingIrq::default();
/// let mut pic = Pic8259::new(intr.clone());
/// // Linux's init: ICW1-ICW4 on both chips, vectors 0x30 and 0x38.
/// for (chip, words) in [(PicPorts::Master, [0x11, 0x30, 0x04, 0x01]), (PicPorts::Slave, [0x11, 0x38, 0x02, 0x01])] {
///     pic.write(chip, 0, words[0]);
///     for &w in &words[1..] { pic.write(chip, 1, w); }
/// }
/// pic.set_irq(12, true);
/// assert!(intr.level());
/// assert_eq!(pic.acknowledge(), 0x3c);
/// pic.write(PicPorts::Slave, 0, 0x20); // EOI to the slave, then the master
/// pic.write(PicPorts::Master, 0, 0x20);
/// ```
pub struct Pic8259<L: IrqLine> {
    master: Chip,
    slave: Chip,
    intr: L,
    intr_level: bool,
}

impl<L: IrqLine> Pic8259<L> {
    /// A pair at power-on (uninitialized: all unmasked, vectors 0, as before the BIOS runs).
    pub fn new(intr: L) -> Self {
        Self::from_state(Pic8259State::default(), intr)
    }

    /// Rebuilds the pair from a snapshot and drives INTR to match.
    pub fn from_state(state: Pic8259State, intr: L) -> Self {
        let mut pic =
            Self { master: Chip { s: state.master }, slave: Chip { s: state.slave }, intr, intr_level: false };
        pic.intr.set_level(false);
        pic.update();
        pic
    }

    /// The registers of both chips.
    pub fn state(&self) -> Pic8259State {
        Pic8259State { master: self.master.s.clone(), slave: self.slave.s.clone() }
    }

    /// The registers of both chips, for a snapshot (same as [`Self::state`]).
    pub fn save_state(&self) -> Pic8259State {
        self.state()
    }

    /// Puts both chips in a saved state and drives INTR to match.
    pub fn restore_state(&mut self, s: &Pic8259State) {
        self.master.s = s.master.clone();
        self.slave.s = s.slave.clone();
        self.intr_level = false;
        self.intr.set_level(false);
        self.update();
    }

    fn cascade_mask(&self) -> u8 {
        if self.master.s.single {
            0
        } else {
            1 << CASCADE_IRQ
        }
    }

    /// Drives input `irq` (0-15) to `level`; other numbers are ignored.
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        match irq {
            CASCADE_IRQ if !self.master.s.single => trace!("pic: IR2 carries the slave; input ignored"),
            0..=7 => self.master.set_input(irq, level),
            8..=15 => self.slave.set_input(irq - 8, level),
            _ => trace!(irq, "pic: no such input"),
        }
        self.update();
    }

    fn update(&mut self) {
        if !self.master.s.single {
            // The slave's INT output is master input IR2 (edge-triggered: ELCR1 bit 2 is always 0).
            let slave_int = self.slave.output(0).is_some();
            self.master.set_input(CASCADE_IRQ, slave_int);
        }
        let level = self.master.output(self.cascade_mask()).is_some();
        if level != self.intr_level {
            self.intr_level = level;
            self.intr.set_level(level);
        }
    }

    /// Whether INTR is asserted.
    pub fn intr(&self) -> bool {
        self.intr_level
    }

    /// The vector an INTA would return now, if INTR is asserted. No side effects.
    pub fn pending_vector(&self) -> Option<u8> {
        let irq = self.master.output(self.cascade_mask())?;
        if irq == CASCADE_IRQ && !self.master.s.single {
            let slave_irq = self.slave.output(0).unwrap_or(7);
            return Some(self.slave.s.vector_base | slave_irq);
        }
        Some(self.master.s.vector_base | irq)
    }

    /// The CPU's interrupt acknowledge cycle: returns the vector and moves the request into service.
    /// With nothing pending it returns the spurious IRQ7 vector with no ISR bit set; when the master
    /// latched IR2 but the slave withdrew its request, the slave answers with the spurious IRQ15
    /// vector (the master's ISR bit 2 is then set, and the guest must EOI the master).
    pub fn acknowledge(&mut self) -> u8 {
        let cascade = self.cascade_mask();
        let vector = match self.master.output(cascade) {
            None => self.master.s.vector_base | 7,
            Some(irq) => {
                self.master.acknowledge(irq);
                if irq == CASCADE_IRQ && cascade != 0 {
                    // The slave's INT falls during INTA; a request still waiting re-raises it.
                    self.master.set_input(CASCADE_IRQ, false);
                    match self.slave.output(0) {
                        Some(slave_irq) => {
                            self.slave.acknowledge(slave_irq);
                            self.slave.s.vector_base | slave_irq
                        }
                        None => self.slave.s.vector_base | 7,
                    }
                } else {
                    self.master.s.vector_base | irq
                }
            }
        };
        self.update();
        vector
    }

    /// A byte read from one of the PIC's port ranges.
    pub fn read(&mut self, ports: PicPorts, offset: u16) -> u8 {
        let cascade = self.cascade_mask();
        let value = match (ports, offset) {
            (PicPorts::Master, PORT_COMMAND) => self.master.read_command(cascade),
            (PicPorts::Slave, PORT_COMMAND) => self.slave.read_command(0),
            (PicPorts::Master, PORT_DATA) => self.master.s.imr,
            (PicPorts::Slave, PORT_DATA) => self.slave.s.imr,
            (PicPorts::Elcr, 0) => self.master.s.elcr,
            (PicPorts::Elcr, 1) => self.slave.s.elcr,
            _ => {
                trace!(?ports, offset, "pic: read of unknown offset");
                0xff
            }
        };
        self.update();
        value
    }

    /// A byte written to one of the PIC's port ranges.
    pub fn write(&mut self, ports: PicPorts, offset: u16, value: u8) {
        match (ports, offset) {
            (PicPorts::Master, PORT_COMMAND) => self.master.write_command(value),
            (PicPorts::Slave, PORT_COMMAND) => self.slave.write_command(value),
            (PicPorts::Master, PORT_DATA) => self.master.write_data(value),
            (PicPorts::Slave, PORT_DATA) => self.slave.write_data(value),
            (PicPorts::Elcr, 0) => self.master.s.elcr = value & ELCR1_MASK,
            (PicPorts::Elcr, 1) => self.slave.s.elcr = value & ELCR2_MASK,
            _ => trace!(?ports, offset, value, "pic: write to unknown offset"),
        }
        self.update();
    }
}

/// One of the PIC's port ranges as a bus device, sharing the pair through `Rc<RefCell<…>>`.
pub struct PicPortDevice<L: IrqLine> {
    /// The shared pair.
    pub pic: Rc<RefCell<Pic8259<L>>>,
    /// Which range this device answers.
    pub ports: PicPorts,
}

impl<L: IrqLine> PioDevice for PicPortDevice<L> {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        match data {
            [byte] => *byte = self.pic.borrow_mut().read(self.ports, offset),
            _ => trace!(offset, len = data.len(), "pic: non-byte read ignored"),
        }
    }

    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        match data {
            [value] => self.pic.borrow_mut().write(self.ports, offset, *value),
            _ => trace!(offset, len = data.len(), "pic: non-byte write ignored"),
        }
    }
}

/// One PIC input as an [`IrqLine`] a device can drive.
pub struct PicInput<L: IrqLine> {
    /// The shared pair.
    pub pic: Rc<RefCell<Pic8259<L>>>,
    /// The input, 0-15.
    pub irq: u8,
}

impl<L: IrqLine> IrqLine for PicInput<L> {
    fn set_level(&self, asserted: bool) {
        self.pic.borrow_mut().set_irq(self.irq, asserted);
    }
}

#[cfg(test)]
mod tests;
