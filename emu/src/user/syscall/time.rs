//! Clocks and sleeping: clock_gettime, clock_getres, gettimeofday, time, times, nanosleep,
//! clock_nanosleep (man-pages clock_gettime(2), `include/uapi/linux/time.h`).
//!
//! The wall clock is the host's. Monotonic clocks count from a fixed origin plus the time since
//! the process started (std does not expose the host's monotonic epoch; only differences
//! matter). CPU-time clocks report elapsed time, which for a single-threaded interpreter is close
//! to the host CPU time it spends. There is no vDSO, so libc calls these for every time query.
//! The ITIMER_REAL timer (alarm, setitimer) delivers SIGALRM; sleeps end early when it fires,
//! with EINTR, as on Linux. The virtual and profiling timers are not provided.

use super::{get, put, Errno, Layout, SysResult, EINVAL};
use crate::user::Process;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CLOCK_REALTIME: u64 = 0;
const CLOCK_MONOTONIC: u64 = 1;
const CLOCK_PROCESS_CPUTIME_ID: u64 = 2;
const CLOCK_THREAD_CPUTIME_ID: u64 = 3;
const CLOCK_MONOTONIC_RAW: u64 = 4;
const CLOCK_REALTIME_COARSE: u64 = 5;
const CLOCK_MONOTONIC_COARSE: u64 = 6;
const CLOCK_BOOTTIME: u64 = 7;
const TIMER_ABSTIME: u64 = 1;
/// Where the monotonic clocks start: as if the machine had been up a while.
const MONOTONIC_ORIGIN: Duration = Duration::from_secs(1000);

fn now_realtime() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn clock_value(p: &Process, clock: u64) -> Result<Duration, Errno> {
    match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE => Ok(now_realtime()),
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_MONOTONIC_COARSE | CLOCK_BOOTTIME => {
            Ok(MONOTONIC_ORIGIN + p.sys.start.elapsed())
        }
        CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID => Ok(p.sys.start.elapsed()),
        _ => Err(EINVAL),
    }
}

fn timespec(d: Duration) -> Vec<u8> {
    Layout::new(16).u64(0, d.as_secs()).u64(8, d.subsec_nanos() as u64).0.clone()
}

/// Reads a guest timespec; EINVAL for a negative or unnormalized one.
fn read_timespec(p: &mut Process, la: u64) -> Result<Duration, Errno> {
    let t = get(p, la, 16)?;
    let (s, ns) = (super::le64(&t, 0) as i64, super::le64(&t, 8));
    if s < 0 || ns >= 1_000_000_000 {
        return Err(EINVAL);
    }
    Ok(Duration::new(s as u64, ns as u32))
}

pub fn sys_clock_gettime(p: &mut Process, clock: u64, tp: u64) -> SysResult {
    let d = clock_value(p, clock)?;
    put(p, tp, &timespec(d))?;
    Ok(0)
}

pub fn sys_clock_getres(p: &mut Process, clock: u64, tp: u64) -> SysResult {
    clock_value(p, clock)?;
    let res = match clock {
        CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE => Duration::from_millis(4),
        _ => Duration::from_nanos(1),
    };
    if tp != 0 {
        put(p, tp, &timespec(res))?;
    }
    Ok(0)
}

pub fn sys_gettimeofday(p: &mut Process, tv: u64, tz: u64) -> SysResult {
    let d = now_realtime();
    if tv != 0 {
        put(p, tv, &Layout::new(16).u64(0, d.as_secs()).u64(8, d.subsec_micros() as u64).0)?;
    }
    if tz != 0 {
        put(p, tz, &[0u8; 8])?; // UTC, no DST
    }
    Ok(0)
}

pub fn sys_time(p: &mut Process, tloc: u64) -> SysResult {
    let s = now_realtime().as_secs();
    if tloc != 0 {
        put(p, tloc, &s.to_le_bytes())?;
    }
    Ok(s)
}

/// times(): user time = everything since start, in clock ticks (AT_CLKTCK = 100).
pub fn sys_times(p: &mut Process, buf: u64) -> SysResult {
    let ticks = (p.sys.start.elapsed().as_millis() / 10) as u64;
    if buf != 0 {
        put(p, buf, &Layout::new(32).u64(0, ticks).0)?;
    }
    Ok(ticks + MONOTONIC_ORIGIN.as_secs() * 100)
}

pub fn sys_nanosleep(p: &mut Process, req: u64, rem: u64) -> SysResult {
    let d = read_timespec(p, req)?;
    match sleep_interruptible(p, d) {
        Some(left) => {
            if rem != 0 {
                put(p, rem, &timespec(left))?;
            }
            Err(super::EINTR)
        }
        None => Ok(0),
    }
}

pub fn sys_clock_nanosleep(p: &mut Process, clock: u64, flags: u64, req: u64, rem: u64) -> SysResult {
    let now = clock_value(p, clock)?;
    let d = read_timespec(p, req)?;
    let d = if flags & TIMER_ABSTIME != 0 { d.saturating_sub(now) } else { d };
    match sleep_interruptible(p, d) {
        Some(left) => {
            if rem != 0 && flags & TIMER_ABSTIME == 0 {
                put(p, rem, &timespec(left))?;
            }
            Err(super::EINTR)
        }
        None => Ok(0),
    }
}

/// The real-time interval timer (alarm, setitimer ITIMER_REAL): when it expires the process
/// gets SIGALRM. It is checked between instruction slices (the runner runs in slices while a
/// timer is armed) and when the process sleeps.
#[derive(Clone, Copy, Debug)]
pub struct RealTimer {
    pub deadline: Instant,
    /// Period for a repeating timer (zero: one shot).
    pub interval: Duration,
}

const ITIMER_REAL: u64 = 0;
const SIGALRM: i32 = 14;

/// Raises SIGALRM if the timer has expired, re-arming a periodic one.
pub fn check_timer(p: &mut Process) {
    let Some(t) = p.sys.timer else { return };
    let now = Instant::now();
    if now < t.deadline {
        return;
    }
    p.sys.timer = if t.interval.is_zero() {
        None
    } else {
        // Skip the periods that passed while nobody looked, as overruns are not counted.
        let mut next = t.deadline + t.interval;
        while next <= now {
            next += t.interval;
        }
        Some(RealTimer { deadline: next, interval: t.interval })
    };
    crate::user::signal::raise(p, SIGALRM);
}

/// Sleeps for `d`, or until the timer expires if that comes first. Returns the time left when
/// the sleep was cut short by the timer (its SIGALRM is then pending).
pub fn sleep_interruptible(p: &mut Process, d: Duration) -> Option<Duration> {
    let start = Instant::now();
    match p.sys.timer {
        Some(t) if t.deadline < start + d => {
            std::thread::sleep(t.deadline.saturating_duration_since(start));
            check_timer(p);
            Some(d.saturating_sub(start.elapsed()))
        }
        _ => {
            std::thread::sleep(d);
            None
        }
    }
}

fn timeval(d: Duration) -> (u64, u64) {
    (d.as_secs(), d.subsec_micros() as u64)
}

/// The current timer as struct itimerval (interval, then value; timevals).
fn itimerval(p: &Process) -> Vec<u8> {
    let (iv, val) = match p.sys.timer {
        Some(t) => (t.interval, t.deadline.saturating_duration_since(Instant::now())),
        None => (Duration::ZERO, Duration::ZERO),
    };
    let (is, ius) = timeval(iv);
    let (vs, vus) = timeval(val);
    Layout::new(32).u64(0, is).u64(8, ius).u64(16, vs).u64(24, vus).0.clone()
}

pub fn sys_getitimer(p: &mut Process, which: u64, cur: u64) -> SysResult {
    if which != ITIMER_REAL {
        return Err(EINVAL);
    }
    let v = itimerval(p);
    put(p, cur, &v)?;
    Ok(0)
}

pub fn sys_setitimer(p: &mut Process, which: u64, new: u64, old: u64) -> SysResult {
    if which != ITIMER_REAL {
        return Err(EINVAL);
    }
    let t = if new != 0 { Some(get(p, new, 32)?) } else { None };
    if old != 0 {
        let v = itimerval(p);
        put(p, old, &v)?;
    }
    if let Some(t) = t {
        let tv = |o: usize| -> Result<Duration, Errno> {
            let (s, us) = (super::le64(&t, o), super::le64(&t, o + 8));
            if (s as i64) < 0 || us >= 1_000_000 {
                return Err(EINVAL);
            }
            Ok(Duration::new(s, us as u32 * 1000))
        };
        let (interval, value) = (tv(0)?, tv(16)?);
        p.sys.timer = (!value.is_zero()).then(|| RealTimer { deadline: Instant::now() + value, interval });
    }
    Ok(0)
}

/// alarm(seconds): returns the seconds left on the previous alarm (rounded up, as Linux).
pub fn sys_alarm(p: &mut Process, secs: u64) -> SysResult {
    let left = p.sys.timer.map_or(0, |t| {
        let d = t.deadline.saturating_duration_since(Instant::now());
        d.as_secs() + (d.subsec_nanos() > 0) as u64
    });
    p.sys.timer = (secs != 0).then(|| RealTimer {
        deadline: Instant::now() + Duration::from_secs(secs.min(u32::MAX as u64)),
        interval: Duration::ZERO,
    });
    Ok(left)
}
