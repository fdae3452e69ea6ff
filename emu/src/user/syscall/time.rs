//! Clocks and sleeping: clock_gettime, clock_getres, gettimeofday, time, times, nanosleep,
//! clock_nanosleep (man-pages clock_gettime(2), `include/uapi/linux/time.h`).
//!
//! The wall clock is the host's. Monotonic clocks count from a fixed origin plus the time since
//! the process started (std does not expose the host's monotonic epoch; only differences
//! matter). CPU-time clocks report elapsed time, which for a single-threaded interpreter is close
//! to the host CPU time it spends. There is no vDSO, so libc calls these for every time query.

use super::{get, put, Errno, Layout, SysResult, EINVAL};
use crate::user::Process;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    std::thread::sleep(d);
    if rem != 0 {
        put(p, rem, &[0u8; 16])?;
    }
    Ok(0)
}

pub fn sys_clock_nanosleep(p: &mut Process, clock: u64, flags: u64, req: u64, rem: u64) -> SysResult {
    let now = clock_value(p, clock)?;
    let d = read_timespec(p, req)?;
    let d = if flags & TIMER_ABSTIME != 0 { d.saturating_sub(now) } else { d };
    std::thread::sleep(d);
    if rem != 0 && flags & TIMER_ABSTIME == 0 {
        put(p, rem, &[0u8; 16])?;
    }
    Ok(0)
}
