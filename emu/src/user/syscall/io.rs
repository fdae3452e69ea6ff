//! Reading, writing and descriptor control: read/write and their vectored and positioned forms,
//! lseek, close, dup, pipe, fcntl, ioctl (terminal queries), sendfile, poll/select.
//!
//! One call moves at most `MAX_IO` bytes (a short count, which POSIX allows), so a guest length
//! never sizes a host allocation beyond that. Terminal state is not the host's: TCGETS reports a
//! typical cooked-mode termios and TIOCGWINSZ 24x80 when the descriptor is a terminal; every
//! other descriptor gets ENOTTY, which is what libc's isatty() checks. Poll and select report
//! every descriptor ready (with one thread, nothing else could make it ready later).

use super::fd::{Node, OpenFile, Pipe, O_ACCMODE, O_APPEND, O_NONBLOCK};
use super::{get, put, Errno, Layout, SysResult, EAGAIN, EBADF, EFAULT, EINVAL, EISDIR, ENOTTY, EPIPE, ESPIPE};
use crate::user::signal::SIGPIPE;
use crate::user::Process;
use std::cell::RefCell;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::rc::Rc;

/// Largest transfer one call makes.
pub const MAX_IO: usize = 1 << 24;
const O_CLOEXEC: u64 = 0o2000000;
const IOV_MAX: u64 = 1024;

fn read_node(of: &mut OpenFile, buf: &mut [u8]) -> Result<usize, Errno> {
    if of.flags & O_ACCMODE == 1 {
        return Err(EBADF);
    }
    match &mut of.node {
        Node::File(f) => Ok(f.read(buf)?),
        Node::Dir { .. } => Err(EISDIR),
        Node::PipeRead(pipe) => {
            let mut d = pipe.data.borrow_mut();
            if d.is_empty() {
                // With writers open a real read would block; nothing else can fill it, so a
                // blocking read sees end of file rather than hanging forever.
                return if pipe.peer.strong_count() > 0 && of.flags & O_NONBLOCK != 0 { Err(EAGAIN) } else { Ok(0) };
            }
            let n = buf.len().min(d.len());
            for (dst, src) in buf.iter_mut().zip(d.drain(..n)) {
                *dst = src;
            }
            Ok(n)
        }
        Node::PipeWrite(_) => Err(EBADF),
    }
}

fn write_node(of: &mut OpenFile, data: &[u8]) -> Result<usize, Errno> {
    if of.flags & O_ACCMODE == 0 && !matches!(of.node, Node::PipeWrite(_)) && of.path.is_some() {
        return Err(EBADF);
    }
    match &mut of.node {
        Node::File(f) => {
            if of.flags & O_APPEND != 0 {
                f.seek(SeekFrom::End(0))?;
            }
            f.write_all(data)?;
            Ok(data.len())
        }
        Node::PipeWrite(pipe) => {
            if pipe.peer.strong_count() == 0 {
                return Err(EPIPE);
            }
            pipe.data.borrow_mut().extend(data);
            Ok(data.len())
        }
        _ => Err(EBADF),
    }
}

/// EPIPE also raises SIGPIPE, as Linux does for a write to a pipe nobody reads.
fn note_epipe(p: &mut Process, r: SysResult) -> SysResult {
    if r == Err(EPIPE) {
        crate::user::signal::raise(p, SIGPIPE);
    }
    r
}

pub fn sys_read(p: &mut Process, fd: u64, buf: u64, len: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let mut data = vec![0u8; (len as usize).min(MAX_IO)];
    let n = read_node(&mut f.borrow_mut(), &mut data)?;
    put(p, buf, &data[..n])?;
    Ok(n as u64)
}

pub fn sys_write(p: &mut Process, fd: u64, buf: u64, len: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let data = get(p, buf, (len as usize).min(MAX_IO))?;
    let r = write_node(&mut f.borrow_mut(), &data).map(|n| n as u64);
    note_epipe(p, r)
}

pub fn sys_pread64(p: &mut Process, fd: u64, buf: u64, len: u64, off: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let mut data = vec![0u8; (len as usize).min(MAX_IO)];
    let n = match f.borrow().host_file() {
        Some(h) if (off as i64) >= 0 => h.read_at(&mut data, off)?,
        Some(_) => return Err(EINVAL),
        None => return Err(ESPIPE),
    };
    put(p, buf, &data[..n])?;
    Ok(n as u64)
}

pub fn sys_pwrite64(p: &mut Process, fd: u64, buf: u64, len: u64, off: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let data = get(p, buf, (len as usize).min(MAX_IO))?;
    let of = f.borrow();
    match of.host_file() {
        Some(h) if (off as i64) >= 0 => Ok(h.write_at(&data, off)? as u64),
        Some(_) => Err(EINVAL),
        None => Err(ESPIPE),
    }
}

/// Reads a guest `struct iovec` array (base, len pairs).
fn read_iovecs(p: &mut Process, iov: u64, cnt: u64) -> Result<Vec<(u64, usize)>, Errno> {
    if cnt > IOV_MAX {
        return Err(EINVAL);
    }
    let raw = get(p, iov, cnt as usize * 16)?;
    let mut total = 0usize;
    let mut v = Vec::with_capacity(cnt as usize);
    for c in raw.chunks_exact(16) {
        let len = super::le64(c, 8);
        if (len as i64) < 0 {
            return Err(EINVAL);
        }
        let len = (len as usize).min(MAX_IO - total);
        total += len;
        v.push((super::le64(c, 0), len));
    }
    Ok(v)
}

fn scatter(p: &mut Process, iovs: &[(u64, usize)], data: &[u8]) -> Result<(), Errno> {
    let mut done = 0;
    for &(base, len) in iovs {
        let n = len.min(data.len() - done);
        put(p, base, &data[done..done + n])?;
        done += n;
        if done == data.len() {
            break;
        }
    }
    Ok(())
}

fn gather(p: &mut Process, iovs: &[(u64, usize)]) -> Result<Vec<u8>, Errno> {
    let mut data = Vec::new();
    for &(base, len) in iovs {
        data.extend(get(p, base, len)?);
    }
    Ok(data)
}

pub fn sys_readv(p: &mut Process, fd: u64, iov: u64, cnt: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let iovs = read_iovecs(p, iov, cnt)?;
    let mut data = vec![0u8; iovs.iter().map(|v| v.1).sum()];
    let n = read_node(&mut f.borrow_mut(), &mut data)?;
    scatter(p, &iovs, &data[..n])?;
    Ok(n as u64)
}

pub fn sys_writev(p: &mut Process, fd: u64, iov: u64, cnt: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let iovs = read_iovecs(p, iov, cnt)?;
    let data = gather(p, &iovs)?;
    let r = write_node(&mut f.borrow_mut(), &data).map(|n| n as u64);
    note_epipe(p, r)
}

pub fn sys_preadv(p: &mut Process, fd: u64, iov: u64, cnt: u64, off: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let iovs = read_iovecs(p, iov, cnt)?;
    let mut data = vec![0u8; iovs.iter().map(|v| v.1).sum()];
    let n = f.borrow().host_file().ok_or(ESPIPE)?.read_at(&mut data, off)?;
    scatter(p, &iovs, &data[..n])?;
    Ok(n as u64)
}

pub fn sys_pwritev(p: &mut Process, fd: u64, iov: u64, cnt: u64, off: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let iovs = read_iovecs(p, iov, cnt)?;
    let data = gather(p, &iovs)?;
    let n = f.borrow().host_file().ok_or(ESPIPE)?.write_at(&data, off)?;
    Ok(n as u64)
}

pub fn sys_lseek(p: &mut Process, fd: u64, off: u64, whence: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let mut of = f.borrow_mut();
    let pos = match whence {
        0 if (off as i64) < 0 => return Err(EINVAL),
        0 => SeekFrom::Start(off),
        1 => SeekFrom::Current(off as i64),
        2 => SeekFrom::End(off as i64),
        _ => return Err(EINVAL),
    };
    match &mut of.node {
        Node::File(h) => Ok(h.seek(pos)?),
        Node::Dir { entries, pos: cursor, .. } => match pos {
            SeekFrom::Start(0) => {
                *entries = None;
                *cursor = 0;
                Ok(0)
            }
            SeekFrom::Start(n) => {
                *cursor = n as usize;
                Ok(n)
            }
            _ => Err(EINVAL),
        },
        _ => Err(ESPIPE),
    }
}

pub fn sys_close(p: &mut Process, fd: u64) -> SysResult {
    p.sys.fds.close(fd)?;
    Ok(0)
}

pub fn sys_dup(p: &mut Process, fd: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    p.sys.fds.install(f, false)
}

/// dup2 (`dup2 == true`: same descriptor is a no-op) and dup3 (same descriptor is EINVAL).
pub fn sys_dup3(p: &mut Process, old: u64, new: u64, flags: u64, dup2: bool) -> SysResult {
    let f = p.sys.fds.get(old)?;
    if old == new {
        return if dup2 { Ok(new) } else { Err(EINVAL) };
    }
    if flags & !O_CLOEXEC != 0 {
        return Err(EINVAL);
    }
    p.sys.fds.install_at(new, f, flags & O_CLOEXEC != 0)
}

pub fn sys_pipe2(p: &mut Process, fds: u64, flags: u64) -> SysResult {
    if flags & !(O_CLOEXEC | O_NONBLOCK as u64 | 0o40000) != 0 {
        return Err(EINVAL);
    }
    let data: Rc<RefCell<std::collections::VecDeque<u8>>> = Rc::default();
    let (rtok, wtok) = (Rc::new(()), Rc::new(()));
    let reader = Pipe { data: data.clone(), peer: Rc::downgrade(&wtok), own: rtok.clone() };
    let writer = Pipe { data, peer: Rc::downgrade(&rtok), own: wtok };
    drop(rtok);
    let status = flags as u32 & O_NONBLOCK;
    let cloexec = flags & O_CLOEXEC != 0;
    let r = p.sys.fds.install(OpenFile::new(Node::PipeRead(reader), status, None), cloexec)?;
    let w = match p.sys.fds.install(OpenFile::new(Node::PipeWrite(writer), status | 1, None), cloexec) {
        Ok(w) => w,
        Err(e) => {
            let _ = p.sys.fds.close(r);
            return Err(e);
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&(r as u32).to_le_bytes());
    out[4..].copy_from_slice(&(w as u32).to_le_bytes());
    if let Err(e) = put(p, fds, &out) {
        let _ = p.sys.fds.close(r);
        let _ = p.sys.fds.close(w);
        return Err(e);
    }
    Ok(0)
}

const F_DUPFD: u64 = 0;
const F_GETFD: u64 = 1;
const F_SETFD: u64 = 2;
const F_GETFL: u64 = 3;
const F_SETFL: u64 = 4;
const F_GETLK: u64 = 5;
const F_SETLK: u64 = 6;
const F_SETLKW: u64 = 7;
const F_DUPFD_CLOEXEC: u64 = 1030;
const F_GETPIPE_SZ: u64 = 1032;
const FD_CLOEXEC: u64 = 1;
/// Status flags F_SETFL may change (fs/fcntl.c SETFL_MASK, the subset we track).
const SETFL_MASK: u32 = O_APPEND | O_NONBLOCK;
const F_UNLCK: u16 = 2;

pub fn sys_fcntl(p: &mut Process, fd: u64, cmd: u64, arg: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = usize::try_from(arg).ok().filter(|&m| m < super::fd::MAX_FDS).ok_or(EINVAL)?;
            p.sys.fds.install_from(min, f, cmd == F_DUPFD_CLOEXEC)
        }
        F_GETFD => Ok(p.sys.fds.slot_mut(fd)?.cloexec as u64),
        F_SETFD => {
            p.sys.fds.slot_mut(fd)?.cloexec = arg & FD_CLOEXEC != 0;
            Ok(0)
        }
        F_GETFL => Ok(f.borrow().flags as u64),
        F_SETFL => {
            let mut of = f.borrow_mut();
            of.flags = (of.flags & !SETFL_MASK) | (arg as u32 & SETFL_MASK);
            Ok(0)
        }
        F_GETLK => {
            // One process holds every lock it asked for: report the range unlocked.
            put(p, arg, &F_UNLCK.to_le_bytes())?;
            Ok(0)
        }
        F_SETLK | F_SETLKW => Ok(0),
        F_GETPIPE_SZ => Ok(65536),
        _ => Err(EINVAL),
    }
}

const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSF: u64 = 0x5404;
const TIOCGPGRP: u64 = 0x540f;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const FIONREAD: u64 = 0x541b;
const FIONBIO: u64 = 0x5421;
const FIONCLEX: u64 = 0x5450;
const FIOCLEX: u64 = 0x5451;

/// struct termios as TCGETS returns it (36 bytes): ICRNL|IXON, OPOST|ONLCR, B38400|CS8|CREAD,
/// ISIG|ICANON|ECHO|ECHOE|ECHOK|ECHOCTL|ECHOKE|IEXTEN, line 0, then the control characters
/// (`include/uapi/asm-generic/termbits.h`, default values from `stty sane`).
fn default_termios() -> Vec<u8> {
    let mut t = Layout::new(36);
    t.u32(0, 0o2400).u32(4, 0o5).u32(8, 0o277).u32(12, 0o105073);
    let cc: [u8; 19] = [3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0];
    t.bytes(17, &cc);
    t.0
}

pub fn sys_ioctl(p: &mut Process, fd: u64, req: u64, arg: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    match req {
        FIOCLEX | FIONCLEX => {
            p.sys.fds.slot_mut(fd)?.cloexec = req == FIOCLEX;
            return Ok(0);
        }
        FIONBIO => {
            let on = get(p, arg, 4).map(|b| super::le32(&b, 0) != 0)?;
            let mut of = f.borrow_mut();
            of.flags = if on { of.flags | O_NONBLOCK } else { of.flags & !O_NONBLOCK };
            return Ok(0);
        }
        FIONREAD => {
            let n = match &mut f.borrow_mut().node {
                Node::PipeRead(pipe) => pipe.data.borrow().len() as u64,
                Node::File(h) => {
                    let pos = h.stream_position().unwrap_or(0);
                    h.metadata().map(|m| m.len().saturating_sub(pos)).unwrap_or(0)
                }
                _ => return Err(ENOTTY),
            };
            put(p, arg, &(n as u32).to_le_bytes())?;
            return Ok(0);
        }
        _ => {}
    }
    let tty = matches!(&f.borrow().node, Node::File(h) if h.is_terminal());
    if !tty {
        return Err(ENOTTY);
    }
    match req {
        TCGETS => put(p, arg, &default_termios())?,
        TCSETS..=TCSETSF | TIOCSWINSZ => {}
        TIOCGWINSZ => put(p, arg, &Layout::new(8).u16(0, 24).u16(2, 80).0)?,
        TIOCGPGRP => {
            let pgrp = p.sys.ids.pgrp;
            put(p, arg, &pgrp.to_le_bytes())?
        }
        _ => return Err(EINVAL),
    }
    Ok(0)
}

pub fn sys_sendfile(p: &mut Process, out: u64, inp: u64, offp: u64, count: u64) -> SysResult {
    let fin = p.sys.fds.get(inp)?;
    let fout = p.sys.fds.get(out)?;
    let mut data = vec![0u8; (count as usize).min(MAX_IO)];
    let n = if offp != 0 {
        let off = p.read_u64(offp).ok_or(EFAULT)?;
        let n = fin.borrow().host_file().ok_or(EINVAL)?.read_at(&mut data, off)?;
        p.write_u64(offp, off.wrapping_add(n as u64)).ok_or(EFAULT)?;
        n
    } else {
        read_node(&mut fin.borrow_mut(), &mut data)?
    };
    let r = write_node(&mut fout.borrow_mut(), &data[..n]).map(|n| n as u64);
    note_epipe(p, r)
}

const POLLIN: u16 = 1;
const POLLOUT: u16 = 4;
const POLLNVAL: u16 = 0x20;

pub fn sys_poll(p: &mut Process, fds: u64, nfds: u64, _timeout: u64) -> SysResult {
    if nfds > super::fd::MAX_FDS as u64 {
        return Err(EINVAL);
    }
    let mut raw = get(p, fds, nfds as usize * 8)?;
    let mut ready = 0;
    for c in raw.chunks_exact_mut(8) {
        let fd = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let events = u16::from_le_bytes([c[4], c[5]]);
        let revents = if fd < 0 {
            0
        } else if p.sys.fds.get(fd as u64).is_err() {
            POLLNVAL
        } else {
            events & (POLLIN | POLLOUT)
        };
        c[6..8].copy_from_slice(&revents.to_le_bytes());
        ready += (revents != 0) as u64;
    }
    put(p, fds, &raw)?;
    Ok(ready)
}

pub fn sys_ppoll(p: &mut Process, fds: u64, nfds: u64, timeout: u64) -> SysResult {
    sys_poll(p, fds, nfds, timeout)
}

/// select: every descriptor asked about is ready; the sets are left as given.
pub fn sys_pselect6(p: &mut Process, nfds: u64, r: u64, w: u64, _e: u64, _t: u64) -> SysResult {
    let bytes = (nfds.min(super::fd::MAX_FDS as u64) as usize).div_ceil(64) * 8;
    let mut n = 0;
    for set in [r, w] {
        if set != 0 {
            n += get(p, set, bytes)?.iter().map(|b| b.count_ones() as u64).sum::<u64>();
        }
    }
    Ok(n)
}
