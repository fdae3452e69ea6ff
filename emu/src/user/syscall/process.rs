//! Process identity and limits: ids, uname, rlimits, rusage, sysinfo, CPU affinity, futex,
//! prctl, arch_prctl, getrandom (man-pages section 2; structure layouts from
//! `include/uapi/linux/{utsname,resource,sysinfo}.h` for x86-64).
//!
//! The process is the host process as the world sees it: its pid, its parent, the host user's
//! ids, the host's kernel release (so output of `uname` matches a native run; a release below 4
//! is replaced by 6.1.0 so libc accepts it) with the machine always "x86_64". With one thread a
//! futex never has a waiter to wake, and a wait on an unchanged value could never end.

use super::{get, put, Errno, Layout, SysResult, EAGAIN, EFAULT, EINTR, EINVAL, ENOSYS, EPERM, ESRCH, ETIMEDOUT};
use crate::user::Process;
use std::os::unix::fs::MetadataExt;

/// The host process's identity.
#[derive(Clone, Copy, Debug)]
pub struct HostIds {
    pub pid: u32,
    pub ppid: u32,
    pub pgrp: u32,
    pub uid: u32,
    pub gid: u32,
}

impl HostIds {
    /// Reads them from the host (/proc/self is owned by the process's user).
    pub fn get() -> Self {
        let pid = std::process::id();
        let (uid, gid) = std::fs::metadata("/proc/self").map(|m| (m.uid(), m.gid())).unwrap_or((0, 0));
        // /proc/self/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces, so split after ')'.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        let pgrp = fields.get(2).and_then(|s| s.parse().ok()).unwrap_or(pid);
        HostIds { pid, ppid: std::os::unix::process::parent_id(), pgrp, uid, gid }
    }
}

pub fn sys_sched_yield() -> SysResult {
    std::thread::yield_now();
    Ok(0)
}

fn host_line(path: &str, fallback: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_else(|_| fallback.to_string())
}

/// The release reported by uname: the host's when it is at least 4.x.
pub fn kernel_release() -> String {
    let host = host_line("/proc/sys/kernel/osrelease", "6.1.0");
    let major: u32 = host.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    if major >= 4 {
        host
    } else {
        "6.1.0".into()
    }
}

pub fn sys_uname(p: &mut Process, buf: u64) -> SysResult {
    // struct new_utsname: six fields of 65 bytes.
    let fields = [
        "Linux".to_string(),
        host_line("/proc/sys/kernel/hostname", "strata"),
        kernel_release(),
        host_line("/proc/sys/kernel/version", "#1 SMP"),
        "x86_64".to_string(),
        host_line("/proc/sys/kernel/domainname", "(none)"),
    ];
    let mut u = Layout::new(6 * 65);
    for (i, f) in fields.iter().enumerate() {
        let b = f.as_bytes();
        u.bytes(i * 65, &b[..b.len().min(64)]);
    }
    put(p, buf, &u.0)?;
    Ok(0)
}

const RLIM_INFINITY: u64 = u64::MAX;
const RLIMIT_STACK: u64 = 3;
const RLIMIT_CORE: u64 = 4;
const RLIMIT_NOFILE: u64 = 7;
const RLIM_NLIMITS: u64 = 16;

fn rlimit(resource: u64) -> Result<(u64, u64), Errno> {
    match resource {
        RLIMIT_STACK => Ok((crate::user::STACK_SIZE, RLIM_INFINITY)),
        RLIMIT_CORE => Ok((0, RLIM_INFINITY)),
        RLIMIT_NOFILE => Ok((super::fd::MAX_FDS as u64, super::fd::MAX_FDS as u64)),
        r if r < RLIM_NLIMITS => Ok((RLIM_INFINITY, RLIM_INFINITY)),
        _ => Err(EINVAL),
    }
}

pub fn sys_getrlimit(p: &mut Process, resource: u64, buf: u64) -> SysResult {
    let (cur, max) = rlimit(resource)?;
    put(p, buf, &Layout::new(16).u64(0, cur).u64(8, max).0)?;
    Ok(0)
}

/// prlimit64: reports the limits; new limits are accepted and not enforced.
pub fn sys_prlimit64(p: &mut Process, pid: u64, resource: u64, new: u64, old: u64) -> SysResult {
    if pid != 0 && pid as u32 != p.sys.ids.pid {
        return Err(ESRCH);
    }
    let (cur, max) = rlimit(resource)?;
    if new != 0 {
        get(p, new, 16)?;
    }
    if old != 0 {
        put(p, old, &Layout::new(16).u64(0, cur).u64(8, max).0)?;
    }
    Ok(0)
}

pub fn sys_getrusage(p: &mut Process, who: u64, buf: u64) -> SysResult {
    if who as i32 != 0 && who as i32 != -1 && who as i32 != 1 {
        return Err(EINVAL);
    }
    let t = p.sys.start.elapsed();
    let mut r = Layout::new(144);
    r.u64(0, t.as_secs()).u64(8, t.subsec_micros() as u64);
    r.u64(32, p.aspace.frames_used() * 4); // ru_maxrss in KiB
    put(p, buf, &r.0)?;
    Ok(0)
}

pub fn sys_sysinfo(p: &mut Process, buf: u64) -> SysResult {
    let total = p.cpu.ram.len();
    let used = p.aspace.frames_used() * 4096;
    let mut s = Layout::new(112);
    s.u64(0, 1000 + p.sys.start.elapsed().as_secs());
    s.u64(32, total).u64(40, total.saturating_sub(used)).u16(80, 1).u32(104, 1);
    put(p, buf, &s.0)?;
    Ok(0)
}

/// One CPU: bit 0 of the mask; returns the bytes written, as the kernel does.
pub fn sys_sched_getaffinity(p: &mut Process, len: u64, mask: u64) -> SysResult {
    if len < 8 || !len.is_multiple_of(8) {
        return Err(EINVAL);
    }
    put(p, mask, &1u64.to_le_bytes())?;
    Ok(8)
}

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_CMD_MASK: u64 = 0x7f;

pub fn sys_futex(p: &mut Process, uaddr: u64, op: u64, val: u64, timeout: u64) -> SysResult {
    match op & FUTEX_CMD_MASK {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            if !uaddr.is_multiple_of(4) {
                return Err(EINVAL);
            }
            let cur = p.read_u32(uaddr).ok_or(EFAULT)?;
            if cur != val as u32 {
                Err(EAGAIN)
            } else if timeout != 0 {
                Err(ETIMEDOUT)
            } else {
                // No other thread exists to wake us: report an interruption rather than hang.
                Err(EINTR)
            }
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET | FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => Ok(0),
        _ => Err(ENOSYS),
    }
}

const PR_SET_PDEATHSIG: u64 = 1;
const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_NAME: u64 = 15;
const PR_GET_NAME: u64 = 16;

pub fn sys_prctl(p: &mut Process, option: u64, arg: u64) -> SysResult {
    match option {
        PR_SET_NAME => {
            let mut name = [0u8; 16];
            let s = p.read_cstr(arg, 4096).ok_or(EFAULT)?;
            let n = s.len().min(15);
            name[..n].copy_from_slice(&s[..n]);
            p.sys.comm = name;
            Ok(0)
        }
        PR_GET_NAME => {
            let comm = p.sys.comm;
            put(p, arg, &comm)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_PDEATHSIG | PR_SET_DUMPABLE => Ok(0),
        _ => Err(EINVAL),
    }
}

const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;

pub fn sys_arch_prctl(p: &mut Process, code: u64, addr: u64) -> SysResult {
    let canonical = |a: u64| a < 0x8000_0000_0000;
    match code {
        ARCH_SET_FS | ARCH_SET_GS if !canonical(addr) => Err(EPERM),
        ARCH_SET_FS => {
            p.sys.fs_base = addr;
            p.cpu.state.segs[4].base = addr;
            Ok(0)
        }
        ARCH_SET_GS => {
            p.cpu.state.segs[5].base = addr;
            Ok(0)
        }
        ARCH_GET_FS | ARCH_GET_GS => {
            let v = p.cpu.state.segs[if code == ARCH_GET_FS { 4 } else { 5 }].base;
            p.write_u64(addr, v).ok_or(EFAULT)?;
            Ok(0)
        }
        _ => Err(EINVAL),
    }
}

pub fn sys_getrandom(p: &mut Process, buf: u64, len: u64) -> SysResult {
    let mut data = vec![0u8; (len as usize).min(super::io::MAX_IO)];
    super::fill_random(&mut data);
    put(p, buf, &data)?;
    Ok(data.len() as u64)
}

/// The host user's supplementary groups (from /proc/self/status).
pub fn sys_getgroups(p: &mut Process, size: u64, list: u64) -> SysResult {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let groups: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| g.split_whitespace().filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    if size == 0 {
        return Ok(groups.len() as u64);
    }
    if (size as usize) < groups.len() {
        return Err(EINVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    put(p, list, &bytes)?;
    Ok(groups.len() as u64)
}

/// getresuid / getresgid: real, effective and saved ids are all the host user's.
pub fn sys_getresid(p: &mut Process, ptrs: [u64; 3], uid: bool) -> SysResult {
    let id = if uid { p.sys.ids.uid } else { p.sys.ids.gid };
    for ptr in ptrs {
        put(p, ptr, &id.to_le_bytes())?;
    }
    Ok(0)
}
