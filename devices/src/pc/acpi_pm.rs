//! The ACPI fixed hardware of the PC: the PM1a event and control blocks and the power-management
//! timer, as the FADT describes them (ACPI 6.5, 4.8 "ACPI Hardware Specification").
//!
//! One port range of 12 bytes (at `ACPI_PM_BASE`, where QEMU's PIIX4 PM puts it too):
//!
//! | offset | register | width |
//! |---|---|---|
//! | 0 | PM1a_STS (4.8.3.1.1): TMR_STS (0), PWRBTN_STS (8), WAK_STS (15); write 1 to clear | 16 |
//! | 2 | PM1a_EN: the matching enables | 16 |
//! | 4 | PM1a_CNT (4.8.3.2.1): SCI_EN (0), SLP_TYP (12:10), SLP_EN (13, write-only) | 16 |
//! | 8 | PM_TMR (4.8.3.3): a 24-bit counter at 3.579545 MHz, read-only | 32 |
//!
//! Modelled: the timer (from the machine's clock, so it runs on virtual time in deterministic
//! runs), the status and enable bits as storage, SCI_EN always set (the FADT has no SMI command
//! port, so the platform is always in ACPI mode), and the sleep request: SLP_EN with SLP_TYP =
//! [`S5_SLP_TYP`] (the value the DSDT's `\_S5` package gives) is a power-off the machine acts
//! on. Not modelled: the SCI (no event here ever sets a status bit whose enable is set: the
//! timer's overflow interrupt, the only candidate, is never enabled by Linux), other sleep
//! states, the PM1b blocks and GPEs (the FADT declares none). Other offsets read as all ones
//! and ignore writes.

use crate::bus::PioDevice;
use crate::clock::Clock;

/// Base I/O port of the block (PM1a_EVT_BLK); PM1a_CNT_BLK is at +4, PM_TMR_BLK at +8.
pub const ACPI_PM_BASE: u16 = 0x600;
/// Ports decoded.
pub const ACPI_PM_LEN: u16 = 12;
/// Offset of PM1a_STS within the block.
pub const PM1_STS: u16 = 0;
/// Offset of PM1a_EN.
pub const PM1_EN: u16 = 2;
/// Offset of PM1a_CNT (the FADT's PM1a_CNT_BLK).
pub const PM1_CNT: u16 = 4;
/// Offset of PM_TMR (the FADT's PM_TMR_BLK).
pub const PM_TMR: u16 = 8;
/// The SLP_TYP value that means S5 (soft off); the DSDT's `\_S5` object carries the same value.
pub const S5_SLP_TYP: u16 = 5;
/// The SLP_TYP value for S3 (suspend to RAM): QEMU's `\_S3` value, which kvm-unit-tests' `s3`
/// writes directly. The machine sleeps until an enabled wake event (the RTC alarm) and resumes
/// at the FACS waking vector, as firmware does (`emu::machine::sleep`).
pub const S3_SLP_TYP: u16 = 1;
/// PM1_STS.RTC_STS / PM1_EN.RTC_EN (4.8.3.1).
pub const RTC_BIT: u16 = 1 << 10;
/// PM1_STS.WAK_STS: set when the system wakes from a sleeping state.
pub const WAK_STS: u16 = 1 << 15;
/// PM timer frequency (ACPI 6.5, 4.8.3.3: 3.579545 MHz).
pub const PM_TIMER_HZ: u64 = 3_579_545;

const SCI_EN: u16 = 1 << 0;
const SLP_TYP_SHIFT: u16 = 10;
const SLP_TYP_MASK: u16 = 7 << SLP_TYP_SHIFT;
const SLP_EN: u16 = 1 << 13;
/// PM1 status bits that exist (TMR, BM, GBL, PWRBTN, SLPBTN, RTC, WAK).
const STS_BITS: u16 = 0x8f31;
/// PM1 enable bits that exist (TMR, GBL, PWRBTN, SLPBTN, RTC).
const EN_BITS: u16 = 0x0721;

/// The PM1a blocks and the PM timer.
///
/// # Example
/// ```
/// use devices::bus::PioDevice;
/// use devices::clock::VirtualClock;
/// use devices::pc::acpi_pm::{AcpiPm, PM1_CNT, PM_TMR, S5_SLP_TYP};
/// let clock = VirtualClock::new(1);
/// clock.advance_ns(1_000_000_000); // 1 s
/// let mut pm = AcpiPm::new(&clock);
/// let mut t = [0u8; 4];
/// pm.pio_read(PM_TMR, &mut t);
/// assert_eq!(u32::from_le_bytes(t), 3_579_545); // 1 s of 3.579545 MHz ticks (below 2^24)
/// pm.pio_write(PM1_CNT, &(S5_SLP_TYP << 10 | 1 << 13).to_le_bytes());
/// assert!(pm.take_power_off());
/// ```
pub struct AcpiPm<C: Clock> {
    clock: C,
    sts: u16,
    en: u16,
    /// SLP_TYP as last written (SCI_EN is fixed at 1, SLP_EN is write-only).
    cnt: u16,
    power_off: bool,
    /// S3 asked for since the machine last looked.
    sleep: bool,
}

/// The registers, for snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcpiPmState {
    /// PM1a_STS.
    pub sts: u16,
    /// PM1a_EN.
    pub en: u16,
    /// PM1a_CNT's SLP_TYP field as last written.
    pub cnt: u16,
}

impl<C: Clock> AcpiPm<C> {
    /// The block after power-on, its timer reading `clock`.
    pub fn new(clock: C) -> Self {
        AcpiPm { clock, sts: 0, en: 0, cnt: 0, power_off: false, sleep: false }
    }

    /// The timer's value: ticks since the clock's origin, modulo 2^24.
    pub fn timer(&self) -> u32 {
        let ticks = u128::from(self.clock.now_ns()) * u128::from(PM_TIMER_HZ) / 1_000_000_000;
        (ticks & 0xff_ffff) as u32
    }

    /// Whether the guest asked for S5 since the last call (the machine powers off).
    pub fn take_power_off(&mut self) -> bool {
        std::mem::take(&mut self.power_off)
    }

    /// Whether the guest asked for S3 since the last call (the machine sleeps).
    pub fn take_sleep_request(&mut self) -> bool {
        std::mem::take(&mut self.sleep)
    }

    /// Whether the RTC alarm may wake the system (PM1_EN.RTC_EN).
    pub fn rtc_wake_enabled(&self) -> bool {
        self.en & RTC_BIT != 0
    }

    /// The system woke from a sleeping state: WAK_STS, and RTC_STS if the RTC woke it.
    pub fn woke(&mut self, by_rtc: bool) {
        self.sts |= WAK_STS | if by_rtc { RTC_BIT } else { 0 };
    }

    /// The registers, for a snapshot.
    pub fn save_state(&self) -> AcpiPmState {
        AcpiPmState { sts: self.sts, en: self.en, cnt: self.cnt }
    }

    /// Puts the registers in a saved state.
    pub fn restore_state(&mut self, s: &AcpiPmState) {
        (self.sts, self.en, self.cnt) = (s.sts, s.en, s.cnt);
    }

    fn read16(&self, reg: u16) -> u16 {
        match reg {
            PM1_STS => self.sts,
            PM1_EN => self.en,
            PM1_CNT => self.cnt | SCI_EN,
            _ => 0xffff,
        }
    }

    fn write16(&mut self, reg: u16, v: u16) {
        match reg {
            // The guest clears status bits by writing ones (4.8.3.1.1).
            PM1_STS => self.sts &= !(v & STS_BITS),
            PM1_EN => self.en = v & EN_BITS,
            PM1_CNT => {
                self.cnt = v & SLP_TYP_MASK;
                if v & SLP_EN != 0 {
                    let typ = (v & SLP_TYP_MASK) >> SLP_TYP_SHIFT;
                    tracing::debug!(typ, "ACPI sleep request");
                    if typ == S5_SLP_TYP {
                        self.power_off = true;
                    } else if typ == S3_SLP_TYP {
                        self.sleep = true;
                    }
                }
            }
            _ => {}
        }
    }
}

impl<C: Clock> PioDevice for AcpiPm<C> {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        // Byte and word accesses to the 16-bit registers; the timer is read as a dword (or in
        // parts, which a guest never does but costs nothing to allow).
        let word = |reg: u16| -> Option<u32> {
            match reg {
                PM1_STS | PM1_EN | PM1_CNT => Some(u32::from(self.read16(reg))),
                PM_TMR => Some(self.timer()),
                _ => None,
            }
        };
        let (reg, shift) = match offset {
            0..=7 => (offset & !1, (offset & 1) * 8),
            8..=11 => (PM_TMR, (offset - 8) * 8),
            _ => return,
        };
        if let Some(v) = word(reg) {
            let bytes = (v >> shift).to_le_bytes();
            let n = data.len().min(4);
            data[..n].copy_from_slice(&bytes[..n]);
        }
    }

    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        if offset >= 8 {
            return; // the timer is read-only
        }
        // Split a dword write into its two 16-bit registers (PM1_STS + PM1_EN at once).
        let mut buf = [0u8; 4];
        let n = data.len().min(4);
        buf[..n].copy_from_slice(&data[..n]);
        let v = u32::from_le_bytes(buf);
        let reg = offset & !1;
        if offset & 1 == 1 {
            // A byte write to the high half of a register: merge with the low half.
            let old = self.read16(reg) & 0x00ff;
            self.write16(reg, old | ((v as u16) << 8));
            return;
        }
        let low = if n == 1 { (self.read16(reg) & 0xff00) | (v as u16 & 0xff) } else { v as u16 };
        self.write16(reg, low);
        if n == 4 && reg + 2 < 8 {
            self.write16(reg + 2, (v >> 16) as u16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[derive(Clone, Default)]
    struct TestClock(Rc<Cell<u64>>);
    impl Clock for TestClock {
        fn now_ns(&self) -> u64 {
            self.0.get()
        }
    }

    fn read(pm: &mut AcpiPm<TestClock>, off: u16, n: usize) -> u32 {
        let mut b = [0u8; 4];
        pm.pio_read(off, &mut b[..n]);
        u32::from_le_bytes(b)
    }

    #[test]
    fn the_timer_counts_3_579545_mhz_and_wraps_at_24_bits() {
        let c = TestClock::default();
        let mut pm = AcpiPm::new(c.clone());
        assert_eq!(read(&mut pm, PM_TMR, 4), 0);
        c.0.set(1_000_000); // 1 ms: 3579.545 ticks
        assert_eq!(read(&mut pm, PM_TMR, 4), 3579);
        // 2^24 ticks is 4.687 s (ACPI 6.5, 4.8.3.3); just past it the counter starts over.
        let wrap_ns = (1u64 << 24) * 1_000_000_000 / PM_TIMER_HZ + 1;
        c.0.set(wrap_ns);
        assert!(read(&mut pm, PM_TMR, 4) < 4);
        assert!(read(&mut pm, PM_TMR, 4) <= 0xff_ffff);
    }

    #[test]
    fn sci_en_reads_set_and_only_s5_powers_off() {
        let mut pm = AcpiPm::new(TestClock::default());
        assert_eq!(read(&mut pm, PM1_CNT, 2) & 1, 1, "always in ACPI mode (no SMI_CMD)");
        pm.pio_write(PM1_CNT, &(2u16 << 10 | SLP_EN).to_le_bytes()); // a type with no meaning here
        assert!(!pm.take_power_off());
        assert!(!pm.take_sleep_request());
        pm.pio_write(PM1_CNT, &(S3_SLP_TYP << 10 | SLP_EN).to_le_bytes()); // S3: a sleep, not off
        assert!(!pm.take_power_off());
        assert!(pm.take_sleep_request());
        pm.pio_write(PM1_CNT, &(S5_SLP_TYP << 10).to_le_bytes()); // type without SLP_EN
        assert!(!pm.take_power_off());
        assert_eq!(read(&mut pm, PM1_CNT, 2) & SLP_EN as u32, 0, "SLP_EN is write-only");
        pm.pio_write(PM1_CNT, &(S5_SLP_TYP << 10 | SLP_EN).to_le_bytes());
        assert!(pm.take_power_off());
        assert!(!pm.take_power_off(), "taken once");
        // SLP_EN written by itself into the high byte, after the type (a byte-wise guest).
        pm.pio_write(PM1_CNT + 1, &[((S5_SLP_TYP << 2) as u8) | 0x20]);
        assert!(pm.take_power_off());
    }

    #[test]
    fn status_bits_clear_by_writing_ones_and_unknown_offsets_float() {
        let mut pm = AcpiPm::new(TestClock::default());
        pm.sts = 0x8001;
        pm.pio_write(PM1_STS, &0x0001u16.to_le_bytes());
        assert_eq!(read(&mut pm, PM1_STS, 2), 0x8000);
        pm.pio_write(PM1_EN, &0xffffu16.to_le_bytes());
        assert_eq!(read(&mut pm, PM1_EN, 2), EN_BITS as u32);
        let mut b = [0xaau8; 2];
        pm.pio_read(6, &mut b);
        assert_eq!(b, [0xaa, 0xaa], "untouched: the bus makes it all ones");
    }
}
