//! Motorola MC146818 real-time clock and the PC's 128 bytes of CMOS RAM (ports 0x70/0x71).
//!
//! Reference: Motorola *MC146818A Real-Time Clock Plus RAM* datasheet: Figure "Address Map", Table
//! "Time, Calendar and Alarm Data Modes" (BCD/binary, 12/24-hour), "Register A" (UIP, DV, RS and the
//! periodic-rate table for a 32.768 kHz time base), "Register B" (SET, PIE, AIE, UIE, DM, 24/12),
//! "Register C" (IRQF, PF, AF, UF; cleared by reading), "Register D" (VRT), "Update Cycle" (UIP is
//! set 244 µs before an update). IBM PC/AT Technical Reference for the CMOS RAM layout (0x10-0x2f,
//! checksum at 0x2e/0x2f, century at 0x32); the 0x5b-0x5d "memory above 4 GB" bytes follow the
//! SeaBIOS convention.
//!
//! Time comes from a [`Clock`]: the date is `start_unix_secs` (host wall time when the machine
//! starts) plus the clock's elapsed time, plus whatever offset the guest sets. Port 0x70 bit 7 is the
//! NMI mask, kept for the machine to read.
//!
//! Modelled: seconds to year and century, day of week, BCD or binary and 12- or 24-hour formats per
//! register B, the SET bit (updates stop and writes go to a held copy), UIP for the 244 µs before each
//! second boundary, alarm (with "don't care" bytes 0xc0-0xff), periodic and update-ended interrupts,
//! register C read-to-clear driving IRQ8 as a level, register D's VRT, the memory size bytes.
//!
//! Not modelled: the divider control bits DV (the oscillator always runs), daylight saving (DSE),
//! the square-wave output, writes to the day of week (it always follows the date), the extended
//! 128 bytes behind ports 0x72/0x73. The update is instantaneous at the second boundary.

use tracing::trace;

use crate::bus::PioDevice;
use crate::clock::Clock;
use crate::irq::IrqLine;
use crate::pc::time_base::TimeBase;

/// Index port (bit 7: NMI disable).
pub const PORT_INDEX: u16 = 0;
/// Data port.
pub const PORT_DATA: u16 = 1;
/// Base I/O port on a PC.
pub const RTC_BASE: u16 = 0x70;

/// Seconds.
pub const REG_SECONDS: u8 = 0x00;
/// Seconds alarm.
pub const REG_SECONDS_ALARM: u8 = 0x01;
/// Minutes.
pub const REG_MINUTES: u8 = 0x02;
/// Minutes alarm.
pub const REG_MINUTES_ALARM: u8 = 0x03;
/// Hours (bit 7 = PM in 12-hour mode).
pub const REG_HOURS: u8 = 0x04;
/// Hours alarm.
pub const REG_HOURS_ALARM: u8 = 0x05;
/// Day of week, 1 = Sunday.
pub const REG_DAY_OF_WEEK: u8 = 0x06;
/// Day of month.
pub const REG_DAY_OF_MONTH: u8 = 0x07;
/// Month.
pub const REG_MONTH: u8 = 0x08;
/// Year within the century.
pub const REG_YEAR: u8 = 0x09;
/// Register A: UIP, divider, rate select.
pub const REG_A: u8 = 0x0a;
/// Register B: SET, PIE, AIE, UIE, SQWE, DM, 24/12, DSE.
pub const REG_B: u8 = 0x0b;
/// Register C: interrupt flags (read-only, cleared by reading).
pub const REG_C: u8 = 0x0c;
/// Register D: valid RAM and time.
pub const REG_D: u8 = 0x0d;
/// AT CMOS: base memory in KB, low byte (0x16 high).
pub const CMOS_BASE_MEM_LO: u8 = 0x15;
/// AT CMOS: extended memory in KB above 1 MB, low byte (0x18 high).
pub const CMOS_EXT_MEM_LO: u8 = 0x17;
/// AT CMOS: checksum of 0x10-0x2d, high byte (0x2f low).
pub const CMOS_CHECKSUM_HI: u8 = 0x2e;
/// AT CMOS: extended memory in KB above 1 MB as found by POST, low byte (0x31 high).
pub const CMOS_POST_EXT_MEM_LO: u8 = 0x30;
/// IBM century byte.
pub const CMOS_CENTURY: u8 = 0x32;
/// Memory between 16 MB and 4 GB in 64 KB units, low byte (0x35 high).
pub const CMOS_MEM_ABOVE_16M_LO: u8 = 0x34;
/// Memory above 4 GB in 64 KB units, three bytes from here (0x5b-0x5d).
pub const CMOS_MEM_ABOVE_4G: u8 = 0x5b;

/// Register A: update in progress.
pub const A_UIP: u8 = 1 << 7;
/// Register A: rate select bits.
pub const A_RS_MASK: u8 = 0x0f;
/// Register B: stop updates so the time can be set.
pub const B_SET: u8 = 1 << 7;
/// Register B: periodic interrupt enable.
pub const B_PIE: u8 = 1 << 6;
/// Register B: alarm interrupt enable.
pub const B_AIE: u8 = 1 << 5;
/// Register B: update-ended interrupt enable.
pub const B_UIE: u8 = 1 << 4;
/// Register B: data mode binary (1) or BCD (0).
pub const B_DM_BINARY: u8 = 1 << 2;
/// Register B: 24-hour (1) or 12-hour (0) mode.
pub const B_24H: u8 = 1 << 1;
/// Register C: an enabled interrupt flag is set.
pub const C_IRQF: u8 = 1 << 7;
/// Register C: periodic interrupt flag.
pub const C_PF: u8 = 1 << 6;
/// Register C: alarm flag.
pub const C_AF: u8 = 1 << 5;
/// Register C: update-ended flag.
pub const C_UF: u8 = 1 << 4;
/// Register D: valid RAM and time.
pub const D_VRT: u8 = 1 << 7;
/// Port 0x70 bit 7: NMI disabled.
pub const INDEX_NMI_DISABLE: u8 = 1 << 7;
/// Alarm bytes with bits 7:6 set match any value.
const ALARM_DONT_CARE: u8 = 0xc0;
/// The hours register's PM bit in 12-hour mode.
const HOURS_PM: u8 = 1 << 7;

/// UIP is set this long before each update (datasheet: tBUC = 244 µs).
pub const UIP_LEAD_NS: i128 = 244_000;
const NS_PER_SEC: i128 = 1_000_000_000;
/// Periodic taps count this time base.
const TIME_BASE_HZ: u64 = 32_768;

/// The chip's registers and RAM, for snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmosRtcState {
    /// All 128 bytes; the time bytes 0x00-0x09, 0x32 and registers C/D are derived on read.
    pub ram: Vec<u8>,
    /// Selected index (port 0x70 bits 6:0).
    pub index: u8,
    /// Port 0x70 bit 7.
    pub nmi_disabled: bool,
    /// Unix time (ns) at the RTC's time 0, guest adjustments included (see `saved_at_ns`).
    pub origin_unix_ns: i128,
    /// The time held while SET is 1 (Unix seconds).
    pub held_secs: Option<i64>,
    /// Register C flags.
    pub flags: u8,
    /// The last second whose update has been processed.
    pub last_update_sec: i64,
    /// The last periodic tap index processed (taps count from the RTC's time 0).
    pub last_periodic: u64,
    /// The RTC's time (ns) when the state was taken: the date shown is `origin_unix_ns +
    /// saved_at_ns`, and a restore maps `saved_at_ns` to the restoring clock's present, so the date,
    /// the second boundaries and the periodic taps continue with the same phase.
    pub saved_at_ns: u64,
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date (months outside 1-12 are clamped).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let month = month.clamp(1, 12);
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Broken-down time.
#[derive(Debug, Clone, Copy)]
struct DateTime {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
}

impl DateTime {
    fn from_unix(secs: i64) -> Self {
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let t = secs.rem_euclid(86_400);
        Self { year, month, day, hour: t / 3600, minute: t / 60 % 60, second: t % 60 }
    }

    fn to_unix(self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        days * 86_400 + self.hour * 3600 + self.minute * 60 + self.second
    }

    /// Day of week with Sunday = 1 (1970-01-01 was a Thursday).
    fn day_of_week(self) -> i64 {
        (days_from_civil(self.year, self.month, self.day) + 4).rem_euclid(7) + 1
    }
}

fn to_bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

fn from_bcd(v: u8) -> u8 {
    (v >> 4).wrapping_mul(10).wrapping_add(v & 0xf)
}

/// An MC146818 with IRQ8 on `L`, time from `C`.
///
/// # Example
/// ```
/// use devices::clock::VirtualClock;
/// use devices::irq::NoIrq;
/// use devices::pc::cmos_rtc::CmosRtc;
/// // 2001-09-09 01:46:40 UTC.
/// let mut rtc = CmosRtc::new(NoIrq, VirtualClock::new(1), 1_000_000_000);
/// assert_eq!(rtc.read_register(0x04), 0x01); // hours, BCD
/// assert_eq!(rtc.read_register(0x02), 0x46); // minutes
/// assert_eq!(rtc.read_register(0x09), 0x01); // year
/// ```
pub struct CmosRtc<L: IrqLine, C: Clock> {
    s: CmosRtcState,
    irq: L,
    irq_level: bool,
    clock: C,
    time: TimeBase,
}

impl<L: IrqLine, C: Clock> CmosRtc<L, C> {
    /// An RTC showing `start_unix_secs` (UTC) at the clock's current time, with register A = 0x26
    /// (32.768 kHz, 1024 Hz periodic rate) and B = 0x02 (24-hour BCD), as a BIOS leaves them.
    pub fn new(irq: L, clock: C, start_unix_secs: i64) -> Self {
        let origin_unix_ns = i128::from(start_unix_secs) * NS_PER_SEC - i128::from(clock.now_ns());
        let mut ram = vec![0u8; 128];
        ram[usize::from(REG_A)] = 0x26;
        ram[usize::from(REG_B)] = B_24H;
        let state = CmosRtcState {
            ram,
            index: 0,
            nmi_disabled: false,
            origin_unix_ns,
            held_secs: None,
            flags: 0,
            last_update_sec: start_unix_secs,
            last_periodic: 0,
            saved_at_ns: clock.now_ns(),
        };
        let mut rtc = Self::from_state(state, irq, clock);
        rtc.s.last_periodic = rtc.periodic_index();
        rtc.update_checksum();
        rtc
    }

    /// Rebuilds the RTC from a snapshot and drives IRQ8 to match.
    pub fn from_state(state: CmosRtcState, irq: L, clock: C) -> Self {
        let time = TimeBase::default();
        let mut rtc = Self { s: state, irq, irq_level: false, clock, time };
        let state = rtc.s.clone();
        rtc.restore_state(&state);
        rtc
    }

    /// The registers, for a snapshot.
    pub fn state(&self) -> CmosRtcState {
        CmosRtcState { saved_at_ns: self.now_ns(), ..self.s.clone() }
    }

    /// The registers, the RAM and the RTC's time, for a snapshot (same as [`Self::state`]).
    pub fn save_state(&self) -> CmosRtcState {
        self.state()
    }

    /// Puts the RTC in a saved state (the date continues from `s.saved_at_ns` at the clock's
    /// present) and drives IRQ8 to match.
    pub fn restore_state(&mut self, s: &CmosRtcState) {
        self.s = s.clone();
        self.s.ram.resize(128, 0);
        self.time = TimeBase::anchored(s.saved_at_ns, self.clock.now_ns());
        self.irq_level = false;
        self.irq.set_level(false);
        self.update_irq();
    }

    /// The RTC's own time in ns (the clock, shifted by a restore).
    fn now_ns(&self) -> u64 {
        self.time.device_ns(self.clock.now_ns())
    }

    /// Whether the guest masked NMIs through port 0x70 bit 7.
    pub fn nmi_disabled(&self) -> bool {
        self.s.nmi_disabled
    }

    /// Fills the memory size bytes as a BIOS would: 640 KB base memory, extended memory above 1 MB in
    /// KB (0x17/0x18 and 0x30/0x31, capped at 65535), memory from 16 MB to 4 GB in 64 KB units
    /// (0x34/0x35), memory above 4 GB in 64 KB units (0x5b-0x5d); then the AT checksum.
    pub fn set_memory_size(&mut self, below_4g: u64, above_4g: u64) {
        const MB: u64 = 1 << 20;
        let ext_kb = (below_4g.saturating_sub(MB) / 1024).min(0xffff) as u16;
        let above_16m = (below_4g.saturating_sub(16 * MB) / 0x1_0000).min(0xffff) as u16;
        let above_4g = (above_4g / 0x1_0000).min(0xff_ffff) as u32;
        let ram = &mut self.s.ram;
        ram[usize::from(CMOS_BASE_MEM_LO)..][..2].copy_from_slice(&640u16.to_le_bytes());
        ram[usize::from(CMOS_EXT_MEM_LO)..][..2].copy_from_slice(&ext_kb.to_le_bytes());
        ram[usize::from(CMOS_POST_EXT_MEM_LO)..][..2].copy_from_slice(&ext_kb.to_le_bytes());
        ram[usize::from(CMOS_MEM_ABOVE_16M_LO)..][..2].copy_from_slice(&above_16m.to_le_bytes());
        ram[usize::from(CMOS_MEM_ABOVE_4G)..][..3].copy_from_slice(&above_4g.to_le_bytes()[..3]);
        self.update_checksum();
    }

    /// Sets a CMOS RAM byte (0x0e-0x7f) directly, as firmware set-up would.
    pub fn set_ram_byte(&mut self, index: u8, value: u8) {
        if (0x0e..0x80).contains(&index) {
            self.s.ram[usize::from(index)] = value;
            self.update_checksum();
        }
    }

    /// The AT checksum: the sum of bytes 0x10-0x2d, big-endian at 0x2e/0x2f.
    fn update_checksum(&mut self) {
        let sum: u16 = self.s.ram[0x10..0x2e].iter().map(|&b| u16::from(b)).fold(0, u16::wrapping_add);
        self.s.ram[usize::from(CMOS_CHECKSUM_HI)..][..2].copy_from_slice(&sum.to_be_bytes());
    }

    fn reg(&self, index: u8) -> u8 {
        self.s.ram[usize::from(index & 0x7f)]
    }

    /// Unix time in ns now (not counting a held SET time).
    fn rtc_ns(&self) -> i128 {
        self.s.origin_unix_ns + i128::from(self.now_ns())
    }

    /// The seconds the time registers show now.
    fn shown_secs(&self) -> i64 {
        self.s.held_secs.unwrap_or_else(|| self.rtc_ns().div_euclid(NS_PER_SEC) as i64)
    }

    fn binary(&self) -> bool {
        self.reg(REG_B) & B_DM_BINARY != 0
    }

    fn encode(&self, v: i64) -> u8 {
        let v = v.rem_euclid(100) as u8;
        if self.binary() {
            v
        } else {
            to_bcd(v)
        }
    }

    fn decode(&self, v: u8) -> i64 {
        i64::from(if self.binary() { v } else { from_bcd(v) })
    }

    fn encode_hours(&self, hour: i64) -> u8 {
        if self.reg(REG_B) & B_24H != 0 {
            return self.encode(hour);
        }
        let h12 = if hour % 12 == 0 { 12 } else { hour % 12 };
        self.encode(h12) | if hour >= 12 { HOURS_PM } else { 0 }
    }

    fn decode_hours(&self, v: u8) -> i64 {
        if self.reg(REG_B) & B_24H != 0 {
            return self.decode(v).clamp(0, 23);
        }
        let pm = if v & HOURS_PM != 0 { 12 } else { 0 };
        self.decode(v & !HOURS_PM) % 12 + pm
    }

    /// A time register's value for Unix time `secs`.
    fn time_register(&self, index: u8, secs: i64) -> u8 {
        let t = DateTime::from_unix(secs);
        match index {
            REG_SECONDS => self.encode(t.second),
            REG_MINUTES => self.encode(t.minute),
            REG_HOURS => self.encode_hours(t.hour),
            REG_DAY_OF_WEEK => self.encode(t.day_of_week()),
            REG_DAY_OF_MONTH => self.encode(t.day),
            REG_MONTH => self.encode(t.month),
            REG_YEAR => self.encode(t.year),
            _ => self.encode(t.year.div_euclid(100)), // CMOS_CENTURY
        }
    }

    /// Unix time `secs` with one time register replaced by `value`.
    fn with_time_register(&self, secs: i64, index: u8, value: u8) -> i64 {
        let mut t = DateTime::from_unix(secs);
        match index {
            REG_SECONDS => t.second = self.decode(value).clamp(0, 59),
            REG_MINUTES => t.minute = self.decode(value).clamp(0, 59),
            REG_HOURS => t.hour = self.decode_hours(value),
            REG_DAY_OF_MONTH => t.day = self.decode(value).clamp(1, 31),
            REG_MONTH => t.month = self.decode(value).clamp(1, 12),
            REG_YEAR => t.year = t.year.div_euclid(100) * 100 + self.decode(value).rem_euclid(100),
            CMOS_CENTURY => t.year = self.decode(value) * 100 + t.year.rem_euclid(100),
            _ => trace!(index, value, "rtc: day-of-week write ignored (it follows the date)"),
        }
        t.to_unix()
    }

    /// Index of the current periodic tap (0 when the rate select is 0).
    fn periodic_index(&self) -> u64 {
        match self.periodic_units() {
            Some(units) => (u128::from(self.now_ns()) * u128::from(TIME_BASE_HZ) / 1_000_000_000) as u64 / units,
            None => 0,
        }
    }

    /// The periodic rate in 32.768 kHz periods (datasheet Table: RS 1 and 2 repeat RS 8 and 9).
    fn periodic_units(&self) -> Option<u64> {
        match self.reg(REG_A) & A_RS_MASK {
            0 => None,
            rs @ (1 | 2) => Some(1 << (rs + 6)),
            rs => Some(1 << (rs - 1)),
        }
    }

    /// Brings the flags up to date with the clock and drives IRQ8.
    pub fn poll_irq(&mut self) {
        let periodic = self.periodic_index();
        if periodic != self.s.last_periodic {
            self.s.last_periodic = periodic;
            if self.periodic_units().is_some() {
                self.s.flags |= C_PF;
            }
        }
        if self.reg(REG_B) & B_SET == 0 {
            let now = self.shown_secs();
            if now > self.s.last_update_sec {
                // Each second boundary: an update cycle ends (UF) and the alarm is compared (AF).
                let first = self.s.last_update_sec.saturating_add(1).max(now - 86_400);
                for secs in first..=now {
                    if self.alarm_matches(secs) {
                        self.s.flags |= C_AF;
                    }
                }
                self.s.flags |= C_UF;
            }
            self.s.last_update_sec = now;
        }
        self.update_irq();
    }

    /// The alarm fired with its interrupt enabled (AF and AIE): what wakes a sleeping PC
    /// through the chipset's RTC wake event.
    pub fn alarm_interrupt(&self) -> bool {
        self.s.flags & C_AF != 0 && self.reg(REG_B) & B_AIE != 0
    }

    fn alarm_matches(&self, secs: i64) -> bool {
        [(REG_SECONDS_ALARM, REG_SECONDS), (REG_MINUTES_ALARM, REG_MINUTES), (REG_HOURS_ALARM, REG_HOURS)].iter().all(
            |&(alarm, time)| {
                let a = self.reg(alarm);
                a & ALARM_DONT_CARE == ALARM_DONT_CARE || a == self.time_register(time, secs)
            },
        )
    }

    fn irqf(&self) -> bool {
        // PIE/AIE/UIE in register B sit at the same bit positions as PF/AF/UF in register C.
        self.s.flags & self.reg(REG_B) & (B_PIE | B_AIE | B_UIE) != 0
    }

    fn update_irq(&mut self) {
        let level = self.irqf();
        if level != self.irq_level {
            self.irq_level = level;
            self.irq.set_level(level);
        }
    }

    /// When (clock ns) the next enabled interrupt is due, if one is enabled and not yet raised.
    pub fn next_event_ns(&self) -> Option<u64> {
        if self.irq_level {
            return None;
        }
        let b = self.reg(REG_B);
        let mut next: Option<u64> = None;
        if b & B_PIE != 0 {
            if let Some(units) = self.periodic_units() {
                let tap = (self.periodic_index() + 1).saturating_mul(units);
                let ns = (u128::from(tap) * 1_000_000_000).div_ceil(u128::from(TIME_BASE_HZ));
                next = Some(self.time.clock_ns(u64::try_from(ns).unwrap_or(u64::MAX)));
            }
        }
        if b & (B_UIE | B_AIE) != 0 && b & B_SET == 0 {
            let rtc = self.rtc_ns();
            let boundary = (rtc.div_euclid(NS_PER_SEC) + 1) * NS_PER_SEC;
            let ns = self.clock.now_ns().saturating_add(u64::try_from(boundary - rtc).unwrap_or(u64::MAX));
            next = Some(next.map_or(ns, |n| n.min(ns)));
        }
        next
    }

    /// Reads CMOS register `index` (0-0x7f) as the guest would through port 0x71.
    pub fn read_register(&mut self, index: u8) -> u8 {
        self.poll_irq();
        let index = index & 0x7f;
        match index {
            REG_SECONDS | REG_MINUTES | REG_HOURS | REG_DAY_OF_WEEK | REG_DAY_OF_MONTH | REG_MONTH | REG_YEAR
            | CMOS_CENTURY => self.time_register(index, self.shown_secs()),
            REG_A => {
                // UIP: an update is less than 244 µs away (never while SET holds updates).
                let into_second = self.rtc_ns().rem_euclid(NS_PER_SEC);
                let uip = self.reg(REG_B) & B_SET == 0 && into_second >= NS_PER_SEC - UIP_LEAD_NS;
                (self.reg(REG_A) & !A_UIP) | if uip { A_UIP } else { 0 }
            }
            REG_C => {
                // Reading C reports and clears every flag, releasing IRQ8.
                let value = self.s.flags | if self.irqf() { C_IRQF } else { 0 };
                self.s.flags = 0;
                self.update_irq();
                value
            }
            REG_D => D_VRT,
            _ => self.reg(index),
        }
    }

    /// Writes CMOS register `index` (0-0x7f) as the guest would through port 0x71.
    pub fn write_register(&mut self, index: u8, value: u8) {
        self.poll_irq();
        let index = index & 0x7f;
        match index {
            REG_SECONDS | REG_MINUTES | REG_HOURS | REG_DAY_OF_WEEK | REG_DAY_OF_MONTH | REG_MONTH | REG_YEAR
            | CMOS_CENTURY => {
                let secs = self.shown_secs();
                let new = self.with_time_register(secs, index, value);
                match self.s.held_secs.as_mut() {
                    Some(held) => *held = new,
                    None => {
                        self.s.origin_unix_ns += i128::from(new - secs) * NS_PER_SEC;
                        self.s.last_update_sec = new;
                    }
                }
            }
            REG_A => {
                // UIP is read-only.
                self.s.ram[usize::from(REG_A)] = value & !A_UIP;
                self.s.last_periodic = self.periodic_index();
            }
            REG_B => {
                let old = self.reg(REG_B);
                if value & B_SET != 0 && old & B_SET == 0 {
                    // SET: hold the time; writes now go to the held copy.
                    self.s.held_secs = Some(self.shown_secs());
                } else if value & B_SET == 0 {
                    if let Some(held) = self.s.held_secs.take() {
                        // Leaving SET: the clock resumes from the time written, keeping its phase.
                        let now = self.rtc_ns().div_euclid(NS_PER_SEC) as i64;
                        self.s.origin_unix_ns += i128::from(held - now) * NS_PER_SEC;
                        self.s.last_update_sec = held;
                    }
                }
                self.s.ram[usize::from(REG_B)] = value;
            }
            REG_C | REG_D => trace!(index, value, "rtc: write to read-only register ignored"),
            _ => {
                self.s.ram[usize::from(index)] = value;
            }
        }
        self.update_irq();
    }
}

impl<L: IrqLine, C: Clock> PioDevice for CmosRtc<L, C> {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        let [byte] = data else {
            trace!(offset, len = data.len(), "rtc: non-byte read ignored");
            return;
        };
        *byte = match offset {
            PORT_DATA => self.read_register(self.s.index),
            _ => {
                trace!(offset, "rtc: read of the write-only index port");
                0xff
            }
        };
    }

    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        let &[value] = data else {
            trace!(offset, len = data.len(), "rtc: non-byte write ignored");
            return;
        };
        match offset {
            PORT_INDEX => {
                // Select a register; bit 7 masks NMIs.
                self.s.index = value & 0x7f;
                self.s.nmi_disabled = value & INDEX_NMI_DISABLE != 0;
            }
            PORT_DATA => self.write_register(self.s.index, value),
            _ => trace!(offset, value, "rtc: write to unknown offset"),
        }
    }
}

#[cfg(test)]
mod tests;
