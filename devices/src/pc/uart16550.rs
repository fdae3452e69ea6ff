//! 16550A UART, as Linux's 8250 driver probes and drives it on COM1-COM4.
//!
//! Reference: National Semiconductor *PC16550D UART with FIFOs* datasheet (June 1995): Table II
//! (register summary and reset values), Table IV (interrupt control functions), section 8 (registers).
//!
//! Modelled: RBR/THR, IER (four enable bits), IIR with the datasheet's priorities (line status >
//! received data / character timeout > THR empty > modem status; reading IIR clears a THR-empty
//! interrupt), FCR (FIFO enable and reset, the four RX trigger levels, IIR bits 7:6 = 11 with FIFOs on),
//! LCR and the divisor latch (DLAB), MCR with loopback (TX fed back to RX, DTR/RTS/OUT1/OUT2 looped to
//! DSR/CTS/RI/DCD) and OUT2 gating the interrupt output as the PC board wires it, LSR (DR, OE, THRE,
//! TEMT), MSR with delta bits, SCR. The 16-byte RX FIFO (one byte with FIFOs off) with overrun.
//!
//! Not modelled: line timing. A byte written to THR goes to the output sink at once, so THR and the
//! TX FIFO are always empty (THRE and TEMT read 1) and THRE is raised again right after each write.
//! Baud rate, parity, framing and break errors (PE, FE, BI never set), DMA mode signalling. The
//! character timeout interrupt fires as soon as fewer bytes than the trigger level wait in the FIFO:
//! the machine queues input in bursts, so the end of a burst is the idle line the timeout detects.

use std::collections::VecDeque;
use std::io::Write;

use tracing::trace;

use crate::bus::PioDevice;
use crate::irq::IrqLine;

/// Receiver buffer (read) / transmitter holding register (write); DLL when LCR.DLAB = 1.
pub const RBR_THR: u16 = 0;
/// Interrupt enable register; DLM when LCR.DLAB = 1.
pub const IER: u16 = 1;
/// Interrupt identification (read) / FIFO control (write).
pub const IIR_FCR: u16 = 2;
/// Line control register.
pub const LCR: u16 = 3;
/// Modem control register.
pub const MCR: u16 = 4;
/// Line status register.
pub const LSR: u16 = 5;
/// Modem status register.
pub const MSR: u16 = 6;
/// Scratch register.
pub const SCR: u16 = 7;
/// Number of ports the UART decodes.
pub const PORT_COUNT: u16 = 8;

/// IER: interrupt when received data is available (or the character timeout).
pub const IER_RDA: u8 = 1 << 0;
/// IER: interrupt when the transmitter holding register is empty.
pub const IER_THRE: u8 = 1 << 1;
/// IER: interrupt on a receiver line status error.
pub const IER_RLS: u8 = 1 << 2;
/// IER: interrupt on a modem status change.
pub const IER_MS: u8 = 1 << 3;
/// IER: the four bits a 16550A implements (bits 7:4 read 0).
const IER_MASK: u8 = 0x0f;

/// IIR bit 0: no interrupt pending.
pub const IIR_NO_INT: u8 = 0x01;
/// IIR id: modem status (priority 4).
pub const IIR_MS: u8 = 0x00;
/// IIR id: THR empty (priority 3).
pub const IIR_THRE: u8 = 0x02;
/// IIR id: received data available (priority 2).
pub const IIR_RDA: u8 = 0x04;
/// IIR id: receiver line status (priority 1, highest).
pub const IIR_RLS: u8 = 0x06;
/// IIR id: character timeout (priority 2).
pub const IIR_TIMEOUT: u8 = 0x0c;
/// IIR bits 7:6 both set when FIFOs are enabled (16550A).
pub const IIR_FIFOS_ENABLED: u8 = 0xc0;

/// FCR: enable both FIFOs.
pub const FCR_ENABLE: u8 = 1 << 0;
/// FCR: clear the RX FIFO (self-clearing).
pub const FCR_CLEAR_RX: u8 = 1 << 1;
/// FCR: clear the TX FIFO (self-clearing).
pub const FCR_CLEAR_TX: u8 = 1 << 2;
/// FCR: DMA mode select (stored, no effect).
pub const FCR_DMA_MODE: u8 = 1 << 3;
/// FCR bits 7:6: RX trigger level 1, 4, 8 or 14 bytes.
pub const FCR_TRIGGER_MASK: u8 = 0xc0;

/// LCR: divisor latch access bit.
pub const LCR_DLAB: u8 = 1 << 7;

/// MCR: data terminal ready.
pub const MCR_DTR: u8 = 1 << 0;
/// MCR: request to send.
pub const MCR_RTS: u8 = 1 << 1;
/// MCR: OUT1 (unused on PCs).
pub const MCR_OUT1: u8 = 1 << 2;
/// MCR: OUT2; on a PC it enables the UART's interrupt onto the ISA IRQ line.
pub const MCR_OUT2: u8 = 1 << 3;
/// MCR: local loopback.
pub const MCR_LOOP: u8 = 1 << 4;
/// MCR: the five bits a 16550A implements.
const MCR_MASK: u8 = 0x1f;

/// LSR: data ready.
pub const LSR_DR: u8 = 1 << 0;
/// LSR: overrun error.
pub const LSR_OE: u8 = 1 << 1;
/// LSR: parity error.
pub const LSR_PE: u8 = 1 << 2;
/// LSR: framing error.
pub const LSR_FE: u8 = 1 << 3;
/// LSR: break interrupt.
pub const LSR_BI: u8 = 1 << 4;
/// LSR: transmitter holding register empty.
pub const LSR_THRE: u8 = 1 << 5;
/// LSR: transmitter empty (THR and shift register).
pub const LSR_TEMT: u8 = 1 << 6;
/// LSR errors that raise a line status interrupt and clear on an LSR read.
const LSR_ERRORS: u8 = LSR_OE | LSR_PE | LSR_FE | LSR_BI;

/// MSR: CTS changed since the last MSR read.
pub const MSR_DCTS: u8 = 1 << 0;
/// MSR: DSR changed since the last MSR read.
pub const MSR_DDSR: u8 = 1 << 1;
/// MSR: RI went from active to inactive (trailing edge).
pub const MSR_TERI: u8 = 1 << 2;
/// MSR: DCD changed since the last MSR read.
pub const MSR_DDCD: u8 = 1 << 3;
/// MSR: clear to send.
pub const MSR_CTS: u8 = 1 << 4;
/// MSR: data set ready.
pub const MSR_DSR: u8 = 1 << 5;
/// MSR: ring indicator.
pub const MSR_RI: u8 = 1 << 6;
/// MSR: data carrier detect.
pub const MSR_DCD: u8 = 1 << 7;

/// Depth of each FIFO on a 16550A.
pub const FIFO_SIZE: usize = 16;
/// Modem inputs of a port with a terminal attached: DCD, DSR and CTS asserted, RI not.
pub const DEFAULT_MODEM_INPUTS: u8 = MSR_DCD | MSR_DSR | MSR_CTS;

/// Every register of the UART, for snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uart16550State {
    /// Divisor latch (DLM:DLL).
    pub divisor: u16,
    /// Interrupt enable register.
    pub ier: u8,
    /// Last FIFO control value kept (enable, DMA mode, trigger bits).
    pub fcr: u8,
    /// Line control register.
    pub lcr: u8,
    /// Modem control register.
    pub mcr: u8,
    /// Sticky LSR error bits (OE, PE, FE, BI) not yet read.
    pub lsr_errors: u8,
    /// MSR delta bits (3:0) not yet read.
    pub msr_delta: u8,
    /// Modem inputs from outside (MSR bits 7:4 when not in loopback).
    pub modem_inputs: u8,
    /// Scratch register.
    pub scr: u8,
    /// A THR-empty interrupt is waiting to be identified.
    pub thre_pending: bool,
    /// Received bytes, oldest first.
    pub rx_fifo: Vec<u8>,
}

impl Default for Uart16550State {
    /// The datasheet's reset values (Table II / "Reset" column); the divisor is undefined at reset and
    /// starts at 12 (9600 baud from the 1.8432 MHz PC crystal).
    fn default() -> Self {
        Self {
            divisor: 12,
            ier: 0,
            fcr: 0,
            lcr: 0,
            mcr: 0,
            lsr_errors: 0,
            msr_delta: 0,
            modem_inputs: DEFAULT_MODEM_INPUTS,
            scr: 0,
            thre_pending: false,
            rx_fifo: Vec::new(),
        }
    }
}

/// A 16550A UART with its interrupt output on `L` and its transmitter writing to `W`.
///
/// # Example
/// ```
/// use devices::bus::PioDevice;
/// use devices::irq::RecordingIrq;
/// use devices::pc::uart16550::{Uart16550, IER, IER_RDA, MCR, MCR_OUT2, RBR_THR};
/// let irq = RecordingIrq::default();
/// let mut uart = Uart16550::new(irq.clone(), Vec::new());
/// uart.pio_write(RBR_THR, b"h");
/// uart.pio_write(RBR_THR, b"i");
/// assert_eq!(uart.output(), b"hi");
/// uart.pio_write(MCR, &[MCR_OUT2]);
/// uart.pio_write(IER, &[IER_RDA]);
/// uart.enqueue_input(b"x");
/// assert!(irq.level());
/// let mut byte = [0];
/// uart.pio_read(RBR_THR, &mut byte);
/// assert_eq!(byte, *b"x");
/// assert!(!irq.level());
/// ```
pub struct Uart16550<L: IrqLine, W: Write> {
    s: Uart16550State,
    rx: VecDeque<u8>,
    irq: L,
    irq_level: bool,
    out: W,
}

impl<L: IrqLine, W: Write> Uart16550<L, W> {
    /// A UART in its reset state.
    pub fn new(irq: L, out: W) -> Self {
        Self::from_state(Uart16550State::default(), irq, out)
    }

    /// Rebuilds a UART from a snapshot and drives its interrupt line to match.
    pub fn from_state(state: Uart16550State, irq: L, out: W) -> Self {
        let mut uart = Self { s: Uart16550State::default(), rx: VecDeque::new(), irq, irq_level: false, out };
        uart.restore_state(&state);
        uart
    }

    /// The registers, for a snapshot.
    pub fn state(&self) -> Uart16550State {
        Uart16550State { rx_fifo: self.rx.iter().copied().collect(), ..self.s.clone() }
    }

    /// The registers and the receive FIFO, for a snapshot (same as [`Self::state`]).
    pub fn save_state(&self) -> Uart16550State {
        self.state()
    }

    /// Puts the UART in a saved state (at most [`FIFO_SIZE`] received bytes are kept) and drives
    /// its interrupt line to match. The output sink is kept.
    pub fn restore_state(&mut self, s: &Uart16550State) {
        self.rx = s.rx_fifo.iter().copied().take(FIFO_SIZE).collect();
        self.s = Uart16550State { rx_fifo: Vec::new(), ..s.clone() };
        self.irq_level = false;
        self.irq.set_level(false);
        self.update_irq();
    }

    /// The output sink (bytes the guest transmitted).
    pub fn output(&self) -> &W {
        &self.out
    }

    /// The output sink, mutably (to drain it).
    pub fn output_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// How many bytes the receiver can take now without an overrun (0 in loopback mode, where the
    /// serial input is disconnected).
    pub fn rx_space(&self) -> usize {
        if self.s.mcr & MCR_LOOP != 0 {
            0
        } else {
            self.rx_capacity().saturating_sub(self.rx.len())
        }
    }

    /// Bytes arriving on the serial input. Bytes beyond the FIFO's room cause an overrun (LSR.OE),
    /// as on the chip; use [`Self::rx_space`] to avoid that. Ignored in loopback mode.
    pub fn enqueue_input(&mut self, bytes: &[u8]) {
        if self.s.mcr & MCR_LOOP != 0 {
            trace!(count = bytes.len(), "uart: input dropped in loopback mode");
            return;
        }
        for &b in bytes {
            self.receive(b);
        }
        self.update_irq();
    }

    /// Sets the modem inputs CTS, DSR, RI and DCD (MSR bits 7:4); changes set the delta bits.
    pub fn set_modem_inputs(&mut self, inputs: u8) {
        let before = self.modem_status();
        self.s.modem_inputs = inputs & 0xf0;
        self.note_modem_change(before);
        self.update_irq();
    }

    fn fifo_enabled(&self) -> bool {
        self.s.fcr & FCR_ENABLE != 0
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled() {
            FIFO_SIZE
        } else {
            1
        }
    }

    /// The RX trigger level from FCR bits 7:6 (datasheet FCR description: 1, 4, 8, 14 bytes).
    fn rx_trigger(&self) -> usize {
        if !self.fifo_enabled() {
            return 1;
        }
        match self.s.fcr >> 6 {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        }
    }

    fn receive(&mut self, byte: u8) {
        if self.rx.len() >= self.rx_capacity() {
            self.s.lsr_errors |= LSR_OE;
            if !self.fifo_enabled() {
                // Without FIFOs the new character overwrites the unread one in RBR.
                self.rx.clear();
                self.rx.push_back(byte);
            }
            // With FIFOs the character in the shift register is lost; the FIFO keeps its bytes.
            return;
        }
        self.rx.push_back(byte);
    }

    fn transmit(&mut self, byte: u8) {
        if self.s.mcr & MCR_LOOP != 0 {
            // Loopback: the transmitter output is fed straight back to the receiver.
            self.receive(byte);
        } else if let Err(err) = self.out.write_all(&[byte]).and_then(|()| self.out.flush()) {
            trace!(%err, "uart: output sink failed; byte dropped");
        }
        // The byte left THR at once, so THR is empty again.
        self.s.thre_pending = true;
    }

    /// MSR bits 7:4 as the chip sees them: looped MCR outputs in loopback, else the inputs.
    fn modem_status(&self) -> u8 {
        let mcr = self.s.mcr;
        if mcr & MCR_LOOP == 0 {
            return self.s.modem_inputs & 0xf0;
        }
        let mut msr = 0;
        if mcr & MCR_RTS != 0 {
            msr |= MSR_CTS;
        }
        if mcr & MCR_DTR != 0 {
            msr |= MSR_DSR;
        }
        if mcr & MCR_OUT1 != 0 {
            msr |= MSR_RI;
        }
        if mcr & MCR_OUT2 != 0 {
            msr |= MSR_DCD;
        }
        msr
    }

    fn note_modem_change(&mut self, before: u8) {
        let after = self.modem_status();
        let changed = before ^ after;
        if changed & MSR_CTS != 0 {
            self.s.msr_delta |= MSR_DCTS;
        }
        if changed & MSR_DSR != 0 {
            self.s.msr_delta |= MSR_DDSR;
        }
        if before & MSR_RI != 0 && after & MSR_RI == 0 {
            self.s.msr_delta |= MSR_TERI;
        }
        if changed & MSR_DCD != 0 {
            self.s.msr_delta |= MSR_DDCD;
        }
    }

    /// The highest-priority enabled interrupt (datasheet Table IV), as its IIR id.
    fn pending_interrupt(&self) -> Option<u8> {
        let ier = self.s.ier;
        if ier & IER_RLS != 0 && self.s.lsr_errors & LSR_ERRORS != 0 {
            return Some(IIR_RLS);
        }
        if ier & IER_RDA != 0 && !self.rx.is_empty() {
            return Some(if self.rx.len() >= self.rx_trigger() { IIR_RDA } else { IIR_TIMEOUT });
        }
        if ier & IER_THRE != 0 && self.s.thre_pending {
            return Some(IIR_THRE);
        }
        if ier & IER_MS != 0 && self.s.msr_delta != 0 {
            return Some(IIR_MS);
        }
        None
    }

    fn update_irq(&mut self) {
        // On a PC, OUT2 enables the interrupt driver; in loopback the OUT pins are forced inactive.
        let gated = self.s.mcr & MCR_OUT2 != 0 && self.s.mcr & MCR_LOOP == 0;
        let level = gated && self.pending_interrupt().is_some();
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set_level(level);
        }
    }

    fn read_register(&mut self, offset: u16) -> u8 {
        let dlab = self.s.lcr & LCR_DLAB != 0;
        match offset {
            RBR_THR if dlab => self.s.divisor as u8,
            IER if dlab => (self.s.divisor >> 8) as u8,
            RBR_THR => self.rx.pop_front().unwrap_or(0), // guest takes a received byte
            IER => self.s.ier,
            IIR_FCR => {
                // The guest asks why the UART interrupted; identifying THRE acknowledges it.
                let fifo_bits = if self.fifo_enabled() { IIR_FIFOS_ENABLED } else { 0 };
                match self.pending_interrupt() {
                    Some(id) => {
                        if id == IIR_THRE {
                            self.s.thre_pending = false;
                        }
                        id | fifo_bits
                    }
                    None => IIR_NO_INT | fifo_bits,
                }
            }
            LCR => self.s.lcr,
            MCR => self.s.mcr,
            LSR => {
                // Line status; error bits clear once read.
                let dr = if self.rx.is_empty() { 0 } else { LSR_DR };
                let value = dr | self.s.lsr_errors | LSR_THRE | LSR_TEMT;
                self.s.lsr_errors = 0;
                value
            }
            MSR => {
                // Modem status; the delta bits clear once read.
                let value = self.modem_status() | self.s.msr_delta;
                self.s.msr_delta = 0;
                value
            }
            SCR => self.s.scr,
            _ => {
                trace!(offset, "uart: read of unknown offset");
                0xff
            }
        }
    }

    fn write_register(&mut self, offset: u16, value: u8) {
        let dlab = self.s.lcr & LCR_DLAB != 0;
        match offset {
            RBR_THR if dlab => self.s.divisor = (self.s.divisor & 0xff00) | u16::from(value),
            IER if dlab => self.s.divisor = (self.s.divisor & 0x00ff) | (u16::from(value) << 8),
            RBR_THR => self.transmit(value), // guest sends a byte
            IER => {
                let old = self.s.ier;
                self.s.ier = value & IER_MASK;
                // Enabling the THRE interrupt while THR is empty raises it at once.
                if self.s.ier & IER_THRE != 0 && old & IER_THRE == 0 {
                    self.s.thre_pending = true;
                }
            }
            IIR_FCR => self.write_fcr(value),
            LCR => self.s.lcr = value,
            MCR => {
                let before = self.modem_status();
                self.s.mcr = value & MCR_MASK;
                self.note_modem_change(before);
            }
            LSR | MSR => trace!(offset, value, "uart: write to a read-only status register ignored"),
            SCR => self.s.scr = value,
            _ => trace!(offset, value, "uart: write to unknown offset"),
        }
    }

    fn write_fcr(&mut self, value: u8) {
        let enable = value & FCR_ENABLE != 0;
        if enable != self.fifo_enabled() {
            // Changing FIFO mode clears both FIFOs.
            self.rx.clear();
        }
        if !enable {
            // FCR0 must be 1 for the other bits to be programmed.
            self.s.fcr = 0;
            return;
        }
        self.s.fcr = value & (FCR_ENABLE | FCR_DMA_MODE | FCR_TRIGGER_MASK);
        if value & FCR_CLEAR_RX != 0 {
            self.rx.clear();
        }
        // FCR_CLEAR_TX: the TX FIFO is always empty here.
    }
}

impl<L: IrqLine, W: Write> PioDevice for Uart16550<L, W> {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        let [byte] = data else {
            trace!(offset, len = data.len(), "uart: non-byte read ignored");
            return;
        };
        *byte = self.read_register(offset);
        self.update_irq();
    }

    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        let &[value] = data else {
            trace!(offset, len = data.len(), "uart: non-byte write ignored");
            return;
        };
        self.write_register(offset, value);
        self.update_irq();
    }
}

#[cfg(test)]
mod tests;
