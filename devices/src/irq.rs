//! Interrupt lines: the one-method trait every device raises its interrupt through.
//!
//! A device owns something implementing [`IrqLine`] and drives it to the level its datasheet says the
//! interrupt pin has. The machine decides what the line is wired to: an input of the 8259A pair, an
//! 82093AA IOAPIC pin, or KVM's in-kernel irqchip. Level-triggered sources (UART, RTC) hold the line
//! while their condition lasts; edge-triggered users (the ISA bus, the PIT's OUT0 seen through the
//! PIC's edge detector) may [`IrqLine::pulse`] it.
//!
//! Modelled: levels and pulses, shared handles (`&T`, `Rc<T>`, `Arc<T>`), a no-op line, a fan-out to
//! two inputs, a closure adapter, and a recording stand-in for tests. Not modelled: wired-OR sharing of one line by several devices (the
//! machine combines levels itself if it shares a pin).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// One interrupt output pin of a device; the machine wires it to the PIC, the IOAPIC or KVM.
pub trait IrqLine {
    /// Drives the line: `true` asserts it, `false` releases it. Repeating a level is harmless.
    fn set_level(&self, asserted: bool);

    /// An edge for edge-triggered inputs: assert, then release.
    fn pulse(&self) {
        self.set_level(true);
        self.set_level(false);
    }
}

impl<T: IrqLine + ?Sized> IrqLine for &T {
    fn set_level(&self, asserted: bool) {
        (**self).set_level(asserted);
    }
}

impl<T: IrqLine + ?Sized> IrqLine for Rc<T> {
    fn set_level(&self, asserted: bool) {
        (**self).set_level(asserted);
    }
}

impl<T: IrqLine + ?Sized> IrqLine for Arc<T> {
    fn set_level(&self, asserted: bool) {
        (**self).set_level(asserted);
    }
}

/// A line connected to nothing (a device whose interrupt the board leaves unwired).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIrq;

impl IrqLine for NoIrq {
    fn set_level(&self, _asserted: bool) {}
}

/// One device output wired to two inputs, as the PC wires ISA IRQs to both the 8259A and the IOAPIC.
///
/// # Example
/// ```
/// use devices::irq::{IrqFanOut, IrqLine, RecordingIrq};
/// let (pic, ioapic) = (RecordingIrq::default(), RecordingIrq::default());
/// IrqFanOut(pic.clone(), ioapic.clone()).set_level(true);
/// assert!(pic.level() && ioapic.level());
/// ```
#[derive(Debug, Clone, Default)]
pub struct IrqFanOut<A: IrqLine, B: IrqLine>(pub A, pub B);

impl<A: IrqLine, B: IrqLine> IrqLine for IrqFanOut<A, B> {
    fn set_level(&self, asserted: bool) {
        self.0.set_level(asserted);
        self.1.set_level(asserted);
    }
}

/// A line that calls a closure with each level (for machine wiring that needs custom routing).
///
/// # Example
/// ```
/// use devices::irq::{FnIrq, IrqLine};
/// use std::cell::Cell;
/// let seen = Cell::new(false);
/// FnIrq(|level| seen.set(level)).set_level(true);
/// assert!(seen.get());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FnIrq<F: Fn(bool)>(pub F);

impl<F: Fn(bool)> IrqLine for FnIrq<F> {
    fn set_level(&self, asserted: bool) {
        (self.0)(asserted);
    }
}

/// A test stand-in that records every level driven on it; clones share the same record.
///
/// # Example
/// ```
/// use devices::irq::{IrqLine, RecordingIrq};
/// let line = RecordingIrq::default();
/// let wired = line.clone();
/// wired.set_level(true);
/// wired.pulse();
/// assert!(!line.level());
/// assert_eq!(line.rising_edges(), 1); // true, true, false: one edge
/// assert_eq!(line.history(), vec![true, true, false]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RecordingIrq {
    levels: Rc<RefCell<Vec<bool>>>,
}

impl RecordingIrq {
    /// The level last driven (released if never driven).
    pub fn level(&self) -> bool {
        self.levels.borrow().last().copied().unwrap_or(false)
    }

    /// Every level driven, oldest first.
    pub fn history(&self) -> Vec<bool> {
        self.levels.borrow().clone()
    }

    /// How many times the line went from released to asserted.
    pub fn rising_edges(&self) -> usize {
        let levels = self.levels.borrow();
        let mut previous = false;
        let mut edges = 0;
        for &level in levels.iter() {
            if level && !previous {
                edges += 1;
            }
            previous = level;
        }
        edges
    }

    /// Forgets the history but keeps the current level as the first entry.
    pub fn clear(&self) {
        let level = self.level();
        let mut levels = self.levels.borrow_mut();
        levels.clear();
        if level {
            levels.push(true);
        }
    }
}

impl IrqLine for RecordingIrq {
    fn set_level(&self, asserted: bool) {
        self.levels.borrow_mut().push(asserted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_levels_are_one_edge() {
        let line = RecordingIrq::default();
        line.set_level(true);
        line.set_level(true);
        line.set_level(false);
        line.set_level(true);
        assert_eq!(line.rising_edges(), 2);
        assert!(line.level());
        line.clear();
        assert_eq!(line.history(), vec![true]);
    }

    #[test]
    fn shared_handles_forward() {
        let line = Rc::new(RecordingIrq::default());
        let by_ref: &dyn IrqLine = &line;
        by_ref.pulse();
        assert_eq!(line.history(), vec![true, false]);
        NoIrq.pulse();
    }
}
