//! Signal system calls: rt_sigaction, rt_sigprocmask, rt_sigreturn, sigaltstack, kill/tkill/
//! tgkill to the process itself, rt_sigpending, rt_sigsuspend, rt_sigtimedwait, pause
//! (`kernel/signal.c`; the kernel `struct sigaction` is handler, flags, restorer, mask: 32
//! bytes on x86-64, with an 8-byte sigset).
//!
//! Delivery itself is in `user/signal.rs`. With one thread nothing can send a signal while the
//! process waits, so the waiting calls return at once: EINTR when a signal is ready (it is
//! delivered right after), EAGAIN or EINTR otherwise.

use super::{get, put, Errno, Layout, SysResult, EAGAIN, EFAULT, EINTR, EINVAL, ENOMEM, EPERM, ESRCH};
use crate::user::signal::{self as sig, bit, SigAction, SigInfo, NSIG, SIGKILL, SIGSTOP, SI_TKILL, UNBLOCKABLE};
use crate::user::{Process, ProcessEnd};

const SIG_BLOCK: u64 = 0;
const SIG_UNBLOCK: u64 = 1;
const SIG_SETMASK: u64 = 2;
const MINSIGSTKSZ: u64 = 2048;

fn valid(signo: u64) -> Result<i32, Errno> {
    if (1..=NSIG as u64).contains(&signo) {
        Ok(signo as i32)
    } else {
        Err(EINVAL)
    }
}

pub fn sys_rt_sigaction(p: &mut Process, signo: u64, act: u64, old: u64, size: u64) -> SysResult {
    if size != 8 {
        return Err(EINVAL);
    }
    let s = valid(signo)?;
    let new = if act != 0 {
        let b = get(p, act, 32)?;
        Some(SigAction {
            handler: super::le64(&b, 0),
            flags: super::le64(&b, 8),
            restorer: super::le64(&b, 16),
            mask: super::le64(&b, 24) & !UNBLOCKABLE,
        })
    } else {
        None
    };
    if new.is_some() && (s == SIGKILL || s == SIGSTOP) {
        return Err(EINVAL);
    }
    let prev = p.sys.signals.action(s);
    if old != 0 {
        let mut o = Layout::new(32);
        o.u64(0, prev.handler).u64(8, prev.flags).u64(16, prev.restorer).u64(24, prev.mask);
        put(p, old, &o.0)?;
    }
    if let Some(a) = new {
        *p.sys.signals.action_mut(s) = a;
        // Setting SIG_IGN (or SIG_DFL for a default-ignored signal) discards it if pending.
        if a.handler == sig::SIG_IGN || (a.handler == sig::SIG_DFL && sig::default_ignores(s)) {
            p.sys.signals.pending &= !bit(s);
        }
    }
    Ok(0)
}

pub fn sys_rt_sigprocmask(p: &mut Process, how: u64, set: u64, old: u64, size: u64) -> SysResult {
    if size != 8 {
        return Err(EINVAL);
    }
    let cur = p.sys.signals.blocked;
    let new = if set != 0 {
        let m = p.read_u64(set).ok_or(EFAULT)?;
        Some(match how {
            SIG_BLOCK => cur | m,
            SIG_UNBLOCK => cur & !m,
            SIG_SETMASK => m,
            _ => return Err(EINVAL),
        })
    } else {
        None
    };
    if old != 0 {
        p.write_u64(old, cur).ok_or(EFAULT)?;
    }
    if let Some(m) = new {
        p.sys.signals.blocked = m & !UNBLOCKABLE;
    }
    Ok(0)
}

/// rt_sigreturn: returns to the interrupted code with every register as the frame holds it
/// (RAX included, so the dispatcher must not overwrite it).
pub fn sys_rt_sigreturn(p: &mut Process) -> Option<ProcessEnd> {
    if sig::restore_frame(p).is_none() {
        eprintln!("strata: bad signal frame in rt_sigreturn; killed by SIGSEGV");
        return Some(ProcessEnd::Signaled(sig::SIGSEGV));
    }
    None
}

pub fn sys_sigaltstack(p: &mut Process, ss: u64, old: u64) -> SysResult {
    let cur = p.sys.signals.altstack;
    let sp = p.cpu.state.gpr[crate::state::gpr::RSP];
    let on = cur.flags & sig::SS_DISABLE == 0 && sp.wrapping_sub(cur.sp) < cur.size;
    if old != 0 {
        let flags = if on { sig::SS_ONSTACK } else { cur.flags & sig::SS_DISABLE };
        let mut o = Layout::new(24);
        o.u64(0, cur.sp).u32(8, flags).u64(16, cur.size);
        put(p, old, &o.0)?;
    }
    if ss != 0 {
        let b = get(p, ss, 24)?;
        if on {
            return Err(EPERM);
        }
        let flags = super::le32(&b, 8);
        let new = if flags & sig::SS_DISABLE != 0 {
            sig::AltStack::default()
        } else if flags & !(1 << 31) != 0 {
            return Err(EINVAL); // only SS_AUTODISARM may accompany an enabled stack
        } else {
            let size = super::le64(&b, 16);
            if size < MINSIGSTKSZ {
                return Err(ENOMEM);
            }
            sig::AltStack { sp: super::le64(&b, 0), size, flags: 0 }
        };
        p.sys.signals.altstack = new;
    }
    Ok(0)
}

/// Sends `signo` to the process itself (signal 0 only checks that the target exists).
fn send_self(p: &mut Process, signo: u64, code: i32) -> SysResult {
    if signo == 0 {
        return Ok(0);
    }
    let s = valid(signo)?;
    let ids = p.sys.ids;
    sig::raise_info(p, SigInfo { signo: s, code, addr: ids.pid as u64 | (ids.uid as u64) << 32, ..SigInfo::default() });
    Ok(0)
}

pub fn sys_kill(p: &mut Process, pid: u64, signo: u64) -> SysResult {
    let pid = pid as i32;
    let ids = p.sys.ids;
    // Ourselves, our process group (0 or -pgrp), or everyone we may signal (-1): with no other
    // processes of ours, each of these reaches only this process.
    if pid == ids.pid as i32 || pid == 0 || pid == -1 || pid == -(ids.pgrp as i32) {
        send_self(p, signo, sig::SI_USER)
    } else {
        Err(ESRCH)
    }
}

pub fn sys_tkill(p: &mut Process, tid: u64, signo: u64) -> SysResult {
    if tid as i32 != p.sys.ids.pid as i32 {
        return Err(ESRCH);
    }
    send_self(p, signo, SI_TKILL)
}

pub fn sys_tgkill(p: &mut Process, tgid: u64, tid: u64, signo: u64) -> SysResult {
    if tgid as i32 != p.sys.ids.pid as i32 {
        return Err(ESRCH);
    }
    sys_tkill(p, tid, signo)
}

pub fn sys_rt_sigpending(p: &mut Process, set: u64, size: u64) -> SysResult {
    if size > 8 {
        return Err(EINVAL);
    }
    let s = &p.sys.signals;
    let pend = s.pending & s.blocked;
    put(p, set, &pend.to_le_bytes()[..size as usize])?;
    Ok(0)
}

pub fn sys_rt_sigsuspend(p: &mut Process, mask: u64, size: u64) -> SysResult {
    if size != 8 {
        return Err(EINVAL);
    }
    let m = p.read_u64(mask).ok_or(EFAULT)?;
    let old = p.sys.signals.blocked;
    p.sys.signals.blocked = m & !UNBLOCKABLE;
    wait_for_timer(p);
    let s = &mut p.sys.signals;
    s.blocked = old;
    if s.pending & !(m & !UNBLOCKABLE) != 0 {
        // The handler runs with the temporary mask; its sigreturn restores the old one.
        s.saved_mask = Some(s.blocked);
        s.blocked = m & !UNBLOCKABLE;
    }
    Err(EINTR)
}

/// pause: only the timer can still send a signal; wait for it if armed.
pub fn sys_pause(p: &mut Process) -> SysResult {
    wait_for_timer(p);
    Err(EINTR)
}

/// Sleeps until the interval timer fires (if it is armed and nothing is ready yet).
fn wait_for_timer(p: &mut Process) {
    let s = &p.sys.signals;
    if s.pending & !s.blocked != 0 {
        return;
    }
    if let Some(t) = p.sys.timer {
        std::thread::sleep(t.deadline.saturating_duration_since(std::time::Instant::now()));
        super::time::check_timer(p);
    }
}

pub fn sys_rt_sigtimedwait(p: &mut Process, set: u64, info: u64, _timeout: u64, size: u64) -> SysResult {
    if size != 8 {
        return Err(EINVAL);
    }
    let want = p.read_u64(set).ok_or(EFAULT)?;
    let ready = p.sys.signals.pending & want;
    if ready == 0 {
        return Err(EAGAIN);
    }
    let s = ready.trailing_zeros() as i32 + 1;
    p.sys.signals.pending &= !bit(s);
    if info != 0 {
        let i = p.sys.signals.pending_info[(s - 1) as usize];
        let mut si = Layout::new(128);
        si.u32(0, s as u32).u32(8, i.code as u32).u64(16, i.addr);
        put(p, info, &si.0)?;
    }
    Ok(s as u64)
}
