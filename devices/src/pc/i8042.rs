//! Intel 8042 keyboard controller as a PC presents it: enough for Linux's i8042 probe, an AT
//! keyboard that answers its commands, the reset line and the A20 gate.
//!
//! References: IBM *PC/AT Technical Reference*, "Keyboard Controller" (status register, commands
//! 0x20-0xff, output port bits) and "Keyboard" (commands 0xed-0xff and their 0xfa acknowledgements,
//! BAT completion 0xaa, ID 0xab 0x83); Linux drivers/input/serio/i8042.c (the probe order: flush,
//! 0xaa self-test expecting 0x55, CTR reads and writes via 0x20/0x60, 0xd3 AUX loopback, 0xa9 AUX
//! test, 0xa7/0xa8 AUX disable/enable, 0xad/0xae keyboard disable/enable) and atkbd.c (0xff reset,
//! 0xf2 identify).
//!
//! Modelled: status register (OBF, SYS, A2, unlocked, AUX OBF, time-out), the command byte (CTR) and
//! the 32 bytes of controller RAM behind 0x20-0x3f / 0x60-0x7f, self-test and interface tests, port
//! enable/disable, output port read/write (bit 0 = reset, bit 1 = A20), 0xd2/0xd3 writes to the
//! output buffer, pulse commands 0xf0-0xff (bit 0 low = CPU reset), 0xdd/0xdf A20, IRQ1 and IRQ12 as
//! levels following "a byte for that port is in the output buffer and its interrupt is enabled".
//! The keyboard answers reset (0xfa 0xaa), identify (0xfa 0xab 0x83, or 0x41 with translation on),
//! LEDs, typematic, scan-code set (set 2), enable/disable scanning, echo, resend. Scan codes the
//! machine injects are delivered as given (already in the set the guest expects).
//!
//! Not modelled: a mouse (the AUX port exists, but bytes sent to it with 0xd4 are answered with a
//! time-out, as with nothing plugged in), scan-code translation tables, typematic repeat, LED
//! output, the controller's I/O timing (IBF always reads 0), port 0x92.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use tracing::trace;

use crate::bus::PioDevice;
use crate::irq::IrqLine;

/// Data port.
pub const DATA_PORT: u16 = 0x60;
/// Status (read) / command (write) port.
pub const COMMAND_PORT: u16 = 0x64;

/// Status: output buffer full.
pub const STATUS_OBF: u8 = 1 << 0;
/// Status: input buffer full (always 0: commands are processed at once).
pub const STATUS_IBF: u8 = 1 << 1;
/// Status: system flag (set by a passed self-test; mirrors CTR bit 2).
pub const STATUS_SYS: u8 = 1 << 2;
/// Status: the last write went to the command port.
pub const STATUS_A2: u8 = 1 << 3;
/// Status: keyboard not inhibited by the key lock.
pub const STATUS_UNLOCKED: u8 = 1 << 4;
/// Status: the output buffer holds AUX (mouse) data.
pub const STATUS_AUX_OBF: u8 = 1 << 5;
/// Status: general time-out.
pub const STATUS_TIMEOUT: u8 = 1 << 6;

/// CTR: keyboard interrupt (IRQ1) enable.
pub const CTR_KBD_INT: u8 = 1 << 0;
/// CTR: AUX interrupt (IRQ12) enable.
pub const CTR_AUX_INT: u8 = 1 << 1;
/// CTR: system flag.
pub const CTR_SYS: u8 = 1 << 2;
/// CTR: keyboard clock disabled.
pub const CTR_KBD_DISABLE: u8 = 1 << 4;
/// CTR: AUX clock disabled.
pub const CTR_AUX_DISABLE: u8 = 1 << 5;
/// CTR: translate keyboard codes to set 1.
pub const CTR_XLATE: u8 = 1 << 6;
/// CTR as a BIOS leaves it: keyboard interrupt, system flag, translation.
pub const CTR_DEFAULT: u8 = CTR_KBD_INT | CTR_SYS | CTR_XLATE;

/// Command: read controller RAM byte 0 (CTR); 0x21-0x3f read bytes 1-31.
pub const CMD_READ_CTR: u8 = 0x20;
/// Command: write controller RAM byte 0 (CTR); 0x61-0x7f write bytes 1-31.
pub const CMD_WRITE_CTR: u8 = 0x60;
/// Command: disable the AUX port.
pub const CMD_AUX_DISABLE: u8 = 0xa7;
/// Command: enable the AUX port.
pub const CMD_AUX_ENABLE: u8 = 0xa8;
/// Command: test the AUX interface (0x00 = no error).
pub const CMD_AUX_TEST: u8 = 0xa9;
/// Command: controller self-test (0x55 = passed).
pub const CMD_SELF_TEST: u8 = 0xaa;
/// Command: test the keyboard interface (0x00 = no error).
pub const CMD_KBD_TEST: u8 = 0xab;
/// Command: disable the keyboard.
pub const CMD_KBD_DISABLE: u8 = 0xad;
/// Command: enable the keyboard.
pub const CMD_KBD_ENABLE: u8 = 0xae;
/// Command: read the input port.
pub const CMD_READ_INPUT: u8 = 0xc0;
/// Command: read the output port.
pub const CMD_READ_OUTPUT: u8 = 0xd0;
/// Command: write the output port (next data byte).
pub const CMD_WRITE_OUTPUT: u8 = 0xd1;
/// Command: put the next data byte in the output buffer as keyboard data.
pub const CMD_WRITE_KBD_OBUF: u8 = 0xd2;
/// Command: put the next data byte in the output buffer as AUX data (loopback).
pub const CMD_WRITE_AUX_OBUF: u8 = 0xd3;
/// Command: send the next data byte to the AUX device.
pub const CMD_WRITE_AUX: u8 = 0xd4;
/// Command: disable A20.
pub const CMD_A20_DISABLE: u8 = 0xdd;
/// Command: enable A20.
pub const CMD_A20_ENABLE: u8 = 0xdf;
/// Command: read test inputs.
pub const CMD_READ_TEST_INPUTS: u8 = 0xe0;
/// Command: pulse output port bit 0 low (CPU reset); 0xf0-0xff pulse the bits clear in 3:0.
pub const CMD_PULSE_RESET: u8 = 0xfe;

/// Output port: system reset line (0 resets the CPU).
pub const OUTPUT_RESET: u8 = 1 << 0;
/// Output port: A20 gate.
pub const OUTPUT_A20: u8 = 1 << 1;
/// Output port: keyboard output buffer full (IRQ1).
const OUTPUT_KBD_OBF: u8 = 1 << 4;
/// Output port: AUX output buffer full (IRQ12).
const OUTPUT_AUX_OBF: u8 = 1 << 5;

/// Keyboard answer: acknowledge.
pub const KBD_ACK: u8 = 0xfa;
/// Keyboard answer: basic assurance test passed.
pub const KBD_BAT_OK: u8 = 0xaa;
/// Keyboard answer: resend / unknown command.
pub const KBD_RESEND: u8 = 0xfe;
/// Keyboard answer to echo.
pub const KBD_ECHO: u8 = 0xee;
/// Keyboard command: set LEDs (one parameter).
const KBD_CMD_SET_LEDS: u8 = 0xed;
/// Keyboard command: echo.
const KBD_CMD_ECHO: u8 = 0xee;
/// Keyboard command: get/set scan-code set (one parameter).
const KBD_CMD_SCANCODE_SET: u8 = 0xf0;
/// Keyboard command: identify.
const KBD_CMD_IDENTIFY: u8 = 0xf2;
/// Keyboard command: set typematic rate (one parameter).
const KBD_CMD_TYPEMATIC: u8 = 0xf3;
/// Keyboard command: enable scanning.
const KBD_CMD_ENABLE: u8 = 0xf4;
/// Keyboard command: disable scanning and restore defaults.
const KBD_CMD_DISABLE: u8 = 0xf5;
/// Keyboard command: restore defaults.
const KBD_CMD_DEFAULTS: u8 = 0xf6;
/// Keyboard command: resend the last byte.
const KBD_CMD_RESEND: u8 = 0xfe;
/// Keyboard command: reset and self-test.
const KBD_CMD_RESET: u8 = 0xff;

/// Where an output-buffer byte came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum I8042Source {
    /// The keyboard port (IRQ1).
    Keyboard,
    /// The AUX port (IRQ12).
    Aux,
}

/// Everything the controller holds, for snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I8042State {
    /// Controller RAM; byte 0 is the command byte (CTR).
    pub ram: [u8; 32],
    /// Output port (bit 0 reset, bit 1 A20).
    pub output_port: u8,
    /// Status bits kept between accesses (SYS, A2, time-out).
    pub status: u8,
    /// The command waiting for its data byte, if any.
    pub pending_command: Option<u8>,
    /// The keyboard command waiting for its parameter, if any.
    pub pending_kbd_command: Option<u8>,
    /// The byte in the output buffer.
    pub output_buffer: Option<(u8, I8042Source)>,
    /// Controller answers waiting for the output buffer.
    pub controller_queue: Vec<(u8, I8042Source)>,
    /// Keyboard bytes waiting for the output buffer.
    pub keyboard_queue: Vec<u8>,
    /// The keyboard is scanning (sends scan codes).
    pub scanning: bool,
    /// The last byte the keyboard sent (for resend).
    pub last_kbd_byte: u8,
    /// The last byte read from the output buffer (read again when it is empty).
    pub last_output: u8,
    /// The guest asked for a CPU reset.
    pub reset_requested: bool,
}

impl Default for I8042State {
    fn default() -> Self {
        let mut ram = [0; 32];
        ram[0] = CTR_DEFAULT;
        Self {
            ram,
            output_port: OUTPUT_RESET | OUTPUT_A20,
            status: STATUS_SYS,
            pending_command: None,
            pending_kbd_command: None,
            output_buffer: None,
            controller_queue: Vec::new(),
            keyboard_queue: Vec::new(),
            scanning: true,
            last_kbd_byte: 0,
            last_output: 0,
            reset_requested: false,
        }
    }
}

/// The keyboard controller, with IRQ1 on `K` and IRQ12 on `M`.
///
/// # Example
/// ```
/// use devices::irq::NoIrq;
/// use devices::pc::i8042::{I8042, I8042Ports};
/// let mut kbc = I8042::new(NoIrq, NoIrq);
/// kbc.write(I8042Ports::Command, 0xaa); // self-test
/// assert_eq!(kbc.read(I8042Ports::Data), 0x55);
/// kbc.write(I8042Ports::Data, 0xff); // keyboard reset
/// assert_eq!((kbc.read(I8042Ports::Data), kbc.read(I8042Ports::Data)), (0xfa, 0xaa));
/// kbc.write(I8042Ports::Command, 0xfe); // pulse the reset line
/// assert!(kbc.take_reset_request());
/// ```
pub struct I8042<K: IrqLine, M: IrqLine> {
    s: I8042State,
    controller_queue: VecDeque<(u8, I8042Source)>,
    keyboard_queue: VecDeque<u8>,
    kbd_irq: K,
    aux_irq: M,
    levels: (bool, bool),
}

/// Which of the controller's two ports an access came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum I8042Ports {
    /// Port 0x60.
    Data,
    /// Port 0x64.
    Command,
}

impl<K: IrqLine, M: IrqLine> I8042<K, M> {
    /// A controller as the BIOS leaves it: CTR 0x45, A20 on, self-test passed.
    pub fn new(kbd_irq: K, aux_irq: M) -> Self {
        Self::from_state(I8042State::default(), kbd_irq, aux_irq)
    }

    /// Rebuilds the controller from a snapshot and drives both lines to match.
    pub fn from_state(state: I8042State, kbd_irq: K, aux_irq: M) -> Self {
        let mut kbc = Self {
            s: I8042State::default(),
            controller_queue: VecDeque::new(),
            keyboard_queue: VecDeque::new(),
            kbd_irq,
            aux_irq,
            levels: (false, false),
        };
        kbc.restore_state(&state);
        kbc
    }

    /// The registers and queues, for a snapshot (same as [`Self::state`]).
    pub fn save_state(&self) -> I8042State {
        self.state()
    }

    /// Puts the controller in a saved state and drives both lines to match.
    pub fn restore_state(&mut self, s: &I8042State) {
        self.controller_queue = s.controller_queue.iter().copied().collect();
        self.keyboard_queue = s.keyboard_queue.iter().copied().collect();
        self.s = I8042State { controller_queue: Vec::new(), keyboard_queue: Vec::new(), ..s.clone() };
        self.levels = (false, false);
        self.kbd_irq.set_level(false);
        self.aux_irq.set_level(false);
        self.update();
    }

    /// The registers and queues, for a snapshot.
    pub fn state(&self) -> I8042State {
        I8042State {
            controller_queue: self.controller_queue.iter().copied().collect(),
            keyboard_queue: self.keyboard_queue.iter().copied().collect(),
            ..self.s.clone()
        }
    }

    /// Whether the guest pulsed the reset line; clears the request.
    pub fn take_reset_request(&mut self) -> bool {
        std::mem::take(&mut self.s.reset_requested)
    }

    /// Whether a reset is requested (without clearing it).
    pub fn reset_requested(&self) -> bool {
        self.s.reset_requested
    }

    /// Whether the A20 gate is open (output port bit 1).
    pub fn a20_enabled(&self) -> bool {
        self.s.output_port & OUTPUT_A20 != 0
    }

    /// Queues scan codes from the keyboard (dropped while the keyboard does not scan).
    pub fn inject_scancodes(&mut self, codes: &[u8]) {
        if !self.s.scanning {
            trace!(count = codes.len(), "i8042: keyboard not scanning; scan codes dropped");
            return;
        }
        self.keyboard_queue.extend(codes);
        self.update();
    }

    fn ctr(&self) -> u8 {
        self.s.ram[0]
    }

    fn respond(&mut self, byte: u8) {
        self.controller_queue.push_back((byte, I8042Source::Keyboard));
    }

    fn keyboard_sends(&mut self, bytes: &[u8]) {
        if let Some(&last) = bytes.last() {
            self.s.last_kbd_byte = last;
        }
        self.keyboard_queue.extend(bytes);
    }

    /// Refills the output buffer and drives IRQ1/IRQ12.
    fn update(&mut self) {
        if self.s.output_buffer.is_none() {
            if let Some(entry) = self.controller_queue.pop_front() {
                self.s.output_buffer = Some(entry);
            } else if self.ctr() & CTR_KBD_DISABLE == 0 {
                self.s.output_buffer = self.keyboard_queue.pop_front().map(|b| (b, I8042Source::Keyboard));
            }
        }
        let ctr = self.ctr();
        let kbd = matches!(self.s.output_buffer, Some((_, I8042Source::Keyboard))) && ctr & CTR_KBD_INT != 0;
        let aux = matches!(self.s.output_buffer, Some((_, I8042Source::Aux))) && ctr & CTR_AUX_INT != 0;
        if kbd != self.levels.0 {
            self.kbd_irq.set_level(kbd);
        }
        if aux != self.levels.1 {
            self.aux_irq.set_level(aux);
        }
        self.levels = (kbd, aux);
    }

    fn status(&self) -> u8 {
        let mut status = self.s.status | STATUS_UNLOCKED;
        match self.s.output_buffer {
            Some((_, I8042Source::Keyboard)) => status |= STATUS_OBF,
            Some((_, I8042Source::Aux)) => status |= STATUS_OBF | STATUS_AUX_OBF,
            None => {}
        }
        status
    }

    fn output_port(&self) -> u8 {
        let mut port = self.s.output_port;
        match self.s.output_buffer {
            Some((_, I8042Source::Keyboard)) => port |= OUTPUT_KBD_OBF,
            Some((_, I8042Source::Aux)) => port |= OUTPUT_AUX_OBF,
            None => {}
        }
        port
    }

    fn write_output_port(&mut self, value: u8) {
        self.s.output_port = value & (OUTPUT_RESET | OUTPUT_A20 | 0xcc);
        if value & OUTPUT_RESET == 0 {
            // Bit 0 low drives the CPU's RESET line.
            self.s.reset_requested = true;
            self.s.output_port |= OUTPUT_RESET;
        }
    }

    fn command(&mut self, cmd: u8) {
        self.s.status |= STATUS_A2;
        match cmd {
            0x20..=0x3f => self.respond(self.s.ram[usize::from(cmd & 0x1f)]), // read CTR / RAM
            0x60..=0x7f | CMD_WRITE_OUTPUT | CMD_WRITE_KBD_OBUF | CMD_WRITE_AUX_OBUF | CMD_WRITE_AUX => {
                self.s.pending_command = Some(cmd); // the data byte follows on port 0x60
            }
            CMD_AUX_DISABLE => self.s.ram[0] |= CTR_AUX_DISABLE,
            CMD_AUX_ENABLE => self.s.ram[0] &= !CTR_AUX_DISABLE,
            CMD_AUX_TEST | CMD_KBD_TEST => self.respond(0x00), // interface test: no error
            CMD_SELF_TEST => {
                // Self-test passed; the system flag is set.
                self.s.status |= STATUS_SYS;
                self.respond(0x55);
            }
            CMD_KBD_DISABLE => self.s.ram[0] |= CTR_KBD_DISABLE,
            CMD_KBD_ENABLE => self.s.ram[0] &= !CTR_KBD_DISABLE,
            CMD_READ_INPUT => self.respond(0x80), // keyboard not inhibited
            CMD_READ_OUTPUT => self.respond(self.output_port()),
            CMD_A20_DISABLE => self.s.output_port &= !OUTPUT_A20,
            CMD_A20_ENABLE => self.s.output_port |= OUTPUT_A20,
            CMD_READ_TEST_INPUTS => self.respond(0x00),
            0xf0..=0xff => {
                // Pulse output port bits whose command bit is 0; bit 0 is the reset line.
                if cmd & 1 == 0 {
                    self.s.reset_requested = true;
                }
            }
            _ => trace!(cmd, "i8042: unsupported controller command ignored"),
        }
    }

    fn command_data(&mut self, cmd: u8, value: u8) {
        match cmd {
            0x60..=0x7f => {
                self.s.ram[usize::from(cmd & 0x1f)] = value;
                if cmd == CMD_WRITE_CTR {
                    // The system flag in CTR is reflected in the status register.
                    self.s.status = (self.s.status & !STATUS_SYS) | (value & CTR_SYS);
                }
            }
            CMD_WRITE_OUTPUT => self.write_output_port(value),
            CMD_WRITE_KBD_OBUF => self.controller_queue.push_back((value, I8042Source::Keyboard)),
            CMD_WRITE_AUX_OBUF => self.controller_queue.push_back((value, I8042Source::Aux)),
            _ => {
                // CMD_WRITE_AUX: no mouse is attached, so the transfer times out.
                self.s.status |= STATUS_TIMEOUT;
                self.controller_queue.push_back((KBD_RESEND, I8042Source::Aux));
            }
        }
    }

    fn keyboard_command(&mut self, value: u8) {
        if let Some(cmd) = self.s.pending_kbd_command.take() {
            // The parameter byte of a two-byte keyboard command.
            if cmd == KBD_CMD_SCANCODE_SET && value == 0 {
                self.keyboard_sends(&[KBD_ACK, 0x02]); // report set 2
            } else {
                self.keyboard_sends(&[KBD_ACK]);
            }
            return;
        }
        match value {
            KBD_CMD_SET_LEDS | KBD_CMD_SCANCODE_SET | KBD_CMD_TYPEMATIC => {
                self.s.pending_kbd_command = Some(value);
                self.keyboard_sends(&[KBD_ACK]);
            }
            KBD_CMD_ECHO => self.keyboard_sends(&[KBD_ECHO]),
            KBD_CMD_IDENTIFY => {
                // MF2 keyboard: 0xab 0x83, which the controller's translation turns into 0x41.
                let second = if self.ctr() & CTR_XLATE != 0 { 0x41 } else { 0x83 };
                self.keyboard_sends(&[KBD_ACK, 0xab, second]);
            }
            KBD_CMD_ENABLE => {
                self.s.scanning = true;
                self.keyboard_sends(&[KBD_ACK]);
            }
            KBD_CMD_DISABLE => {
                self.s.scanning = false;
                self.keyboard_queue.clear();
                self.keyboard_sends(&[KBD_ACK]);
            }
            KBD_CMD_DEFAULTS | 0xf7..=0xfd => self.keyboard_sends(&[KBD_ACK]),
            KBD_CMD_RESEND => {
                let last = self.s.last_kbd_byte;
                self.keyboard_queue.push_back(last);
            }
            KBD_CMD_RESET => {
                // Reset: acknowledge, run the basic assurance test, report success; scanning on.
                self.s.scanning = true;
                self.keyboard_queue.clear();
                self.keyboard_sends(&[KBD_ACK, KBD_BAT_OK]);
            }
            _ => self.keyboard_sends(&[KBD_RESEND]),
        }
    }

    /// A byte read from port 0x60 or 0x64.
    pub fn read(&mut self, ports: I8042Ports) -> u8 {
        match ports {
            I8042Ports::Command => self.status(),
            I8042Ports::Data => {
                // The guest takes the output buffer; the next waiting byte moves in.
                let value = match self.s.output_buffer.take() {
                    Some((byte, _)) => {
                        self.s.status &= !STATUS_TIMEOUT;
                        self.s.last_output = byte;
                        byte
                    }
                    None => self.s.last_output, // the buffer keeps its last value
                };
                // Let the interrupt line fall between two bytes so the PIC sees a new edge.
                self.update_lines_empty();
                self.update();
                value
            }
        }
    }

    fn update_lines_empty(&mut self) {
        if self.levels.0 {
            self.kbd_irq.set_level(false);
        }
        if self.levels.1 {
            self.aux_irq.set_level(false);
        }
        self.levels = (false, false);
    }

    /// A byte written to port 0x60 or 0x64.
    pub fn write(&mut self, ports: I8042Ports, value: u8) {
        match ports {
            I8042Ports::Command => self.command(value),
            I8042Ports::Data => {
                self.s.status &= !STATUS_A2;
                match self.s.pending_command.take() {
                    Some(cmd) => self.command_data(cmd, value),
                    None => self.keyboard_command(value), // a byte for the keyboard itself
                }
            }
        }
        self.update();
    }
}

/// One of the controller's ports as a bus device, sharing it through `Rc<RefCell<…>>`.
pub struct I8042PortDevice<K: IrqLine, M: IrqLine> {
    /// The shared controller.
    pub kbc: Rc<RefCell<I8042<K, M>>>,
    /// Which port this device answers.
    pub ports: I8042Ports,
}

impl<K: IrqLine, M: IrqLine> PioDevice for I8042PortDevice<K, M> {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        match (offset, data) {
            (0, [byte]) => *byte = self.kbc.borrow_mut().read(self.ports),
            (_, data) => trace!(offset, len = data.len(), "i8042: odd read ignored"),
        }
    }

    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        match (offset, data) {
            (0, [value]) => self.kbc.borrow_mut().write(self.ports, *value),
            (_, data) => trace!(offset, len = data.len(), "i8042: odd write ignored"),
        }
    }
}

#[cfg(test)]
mod tests;
