//! Linux system calls for the user-mode runner (x86-64 numbering, `arch/x86/entry/syscalls/
//! syscall_64.tbl`; semantics from man-pages section 2).
//!
//! Arguments are translated: guest pointers are read and written through the guest MMU with the
//! process's permissions (`Process::read_mem`/`write_mem`, EFAULT when that fails), and every
//! structure is encoded field by field in the x86-64 layout, never handed to the host as raw
//! memory, so the runner behaves the same on an aarch64 host. An unsupported call returns
//! -ENOSYS and is reported once per number.
//!
//! One file per topic: `fd.rs` (the descriptor table), `io.rs` (read/write and descriptor
//! control), `fs.rs` (paths, stat, directories), `mem.rs` (brk/mmap), `signal.rs`, `time.rs`,
//! `process.rs` (ids, limits, uname, futex, exit).

pub mod fd;
pub mod fs;
pub mod io;
pub mod mem;
pub mod process;
pub mod signal;
pub mod time;

#[cfg(test)]
mod tests;

use super::{Process, ProcessEnd};
use crate::state::gpr;
use std::collections::HashSet;
use std::path::PathBuf;

pub use super::layout::{le32, le64, Layout};
pub use super::signal::{SIGFPE, SIGILL, SIGSEGV, SIGTRAP};

/// A Linux error number (`include/uapi/asm-generic/errno-base.h`, `errno.h`; x86-64 and the
/// generic architectures share these values, so host error numbers pass through unchanged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

/// rt_sigreturn's number: the one system call that reads the x87/SSE state (from a signal frame).
pub const NR_RT_SIGRETURN: u64 = 15;

pub const EPERM: Errno = Errno(1);
pub const ENOENT: Errno = Errno(2);
pub const ESRCH: Errno = Errno(3);
pub const EINTR: Errno = Errno(4);
pub const EIO: Errno = Errno(5);
pub const EBADF: Errno = Errno(9);
pub const EAGAIN: Errno = Errno(11);
pub const ENOMEM: Errno = Errno(12);
pub const EACCES: Errno = Errno(13);
pub const EFAULT: Errno = Errno(14);
pub const EEXIST: Errno = Errno(17);
pub const ENOTDIR: Errno = Errno(20);
pub const EISDIR: Errno = Errno(21);
pub const EINVAL: Errno = Errno(22);
pub const EMFILE: Errno = Errno(24);
pub const ENOTTY: Errno = Errno(25);
pub const ESPIPE: Errno = Errno(29);
pub const EPIPE: Errno = Errno(32);
pub const ERANGE: Errno = Errno(34);
pub const ENAMETOOLONG: Errno = Errno(36);
pub const ENOSYS: Errno = Errno(38);
pub const ELOOP: Errno = Errno(40);
pub const ETIMEDOUT: Errno = Errno(110);

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Self {
        Errno(e.raw_os_error().unwrap_or(EIO.0))
    }
}

/// A system call's result: the value for RAX, or an error number (RAX = -errno).
pub type SysResult = Result<u64, Errno>;

/// Per-process kernel state.
pub struct SysState {
    pub brk_start: u64,
    pub brk: u64,
    pub fs_base: u64,
    /// Absolute path of the executable (/proc/self/exe).
    pub exe: String,
    pub fds: fd::FdTable,
    pub signals: super::signal::SignalState,
    /// The working directory (kept here, not in the host process, so runners do not interfere).
    pub cwd: PathBuf,
    pub umask: u32,
    /// The thread name (prctl PR_SET_NAME / PR_GET_NAME).
    pub comm: [u8; 16],
    pub ids: process::HostIds,
    pub start: std::time::Instant,
    /// The ITIMER_REAL timer (alarm/setitimer), if armed.
    pub timer: Option<time::RealTimer>,
    /// Print each call and its result to stderr (`strata user --strace`).
    pub trace: bool,
    /// Where system calls and signals are recorded for the event trace (none: not recorded).
    pub events: Option<super::events::EventLog>,
    unsupported_seen: HashSet<u64>,
}

impl SysState {
    pub fn new(brk: u64, exe: String) -> Self {
        let mut comm = [0u8; 16];
        let base = exe.rsplit('/').next().unwrap_or("").as_bytes();
        let n = base.len().min(15);
        comm[..n].copy_from_slice(&base[..n]);
        SysState {
            brk_start: brk,
            brk,
            fs_base: 0,
            exe,
            fds: fd::FdTable::with_host_stdio(),
            signals: super::signal::SignalState::default(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            umask: host_umask(),
            comm,
            ids: process::HostIds::get(),
            start: std::time::Instant::now(),
            timer: None,
            trace: false,
            events: None,
            unsupported_seen: HashSet::new(),
        }
    }
}

/// The host process's umask (from /proc/self/status; 022 if that is unavailable), so files the
/// guest creates get the permissions they would get natively.
fn host_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Umask:").and_then(|v| u32::from_str_radix(v.trim(), 8).ok()))
        })
        .unwrap_or(0o022)
}

/// Fills `buf` with random bytes from the host (for AT_RANDOM and getrandom).
pub fn fill_random(buf: &mut [u8]) {
    use std::io::Read;
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(buf).is_ok() {
            return;
        }
    }
    // No /dev/urandom: std's per-process hash keys are random enough for stack canaries.
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(i);
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Carries out the system call the guest just made, recording it for the event trace when a
/// log is attached. Returns `Some` when the process ended.
pub fn dispatch(p: &mut Process) -> Option<ProcessEnd> {
    if p.sys.events.is_none() {
        return carry_out(p);
    }
    let g = p.cpu.state.gpr;
    let (nr, args) = (g[gpr::RAX], [g[gpr::RDI], g[gpr::RSI], g[gpr::RDX], g[10], g[8], g[9]]);
    let end = carry_out(p);
    let ret = end.is_none().then_some(p.cpu.state.gpr[gpr::RAX]);
    super::events::record(&p.sys.events, super::events::UserEvent::Syscall { nr, args, ret });
    end
}

fn carry_out(p: &mut Process) -> Option<ProcessEnd> {
    let g = p.cpu.state.gpr;
    let nr = g[gpr::RAX];
    let a = [g[gpr::RDI], g[gpr::RSI], g[gpr::RDX], g[10], g[8], g[9]];
    if p.sys.trace && matches!(nr, 60 | 231) {
        eprintln!("strata: syscall {nr}({:#x}): the process exits", a[0]);
    }
    let r: SysResult = match nr {
        0 => io::sys_read(p, a[0], a[1], a[2]),
        1 => io::sys_write(p, a[0], a[1], a[2]),
        2 => fs::sys_openat(p, fs::AT_FDCWD, a[0], a[1], a[2]),
        3 => io::sys_close(p, a[0]),
        4 => fs::sys_newfstatat(p, fs::AT_FDCWD, a[0], a[1], 0),
        5 => fs::sys_fstat(p, a[0], a[1]),
        6 => fs::sys_newfstatat(p, fs::AT_FDCWD, a[0], a[1], fs::AT_SYMLINK_NOFOLLOW),
        7 => io::sys_poll(p, a[0], a[1], a[2]),
        8 => io::sys_lseek(p, a[0], a[1], a[2]),
        9 => mem::sys_mmap(p, a[0], a[1], a[2], a[3], a[4], a[5]),
        10 => mem::sys_mprotect(p, a[0], a[1], a[2]),
        11 => mem::sys_munmap(p, a[0], a[1]),
        12 => mem::sys_brk(p, a[0]),
        13 => signal::sys_rt_sigaction(p, a[0], a[1], a[2], a[3]),
        14 => signal::sys_rt_sigprocmask(p, a[0], a[1], a[2], a[3]),
        NR_RT_SIGRETURN => return signal::sys_rt_sigreturn(p),
        16 => io::sys_ioctl(p, a[0], a[1], a[2]),
        17 => io::sys_pread64(p, a[0], a[1], a[2], a[3]),
        18 => io::sys_pwrite64(p, a[0], a[1], a[2], a[3]),
        19 => io::sys_readv(p, a[0], a[1], a[2]),
        20 => io::sys_writev(p, a[0], a[1], a[2]),
        21 => fs::sys_faccessat(p, fs::AT_FDCWD, a[0], a[1], 0),
        22 => io::sys_pipe2(p, a[0], 0),
        24 => process::sys_sched_yield(),
        25 => mem::sys_mremap(p, a[0], a[1], a[2], a[3], a[4]),
        26 | 27 => Ok(0), // msync, mincore: private memory only; nothing to write back
        28 => mem::sys_madvise(p, a[0], a[1], a[2]),
        32 => io::sys_dup(p, a[0]),
        33 => io::sys_dup3(p, a[0], a[1], 0, true),
        34 => signal::sys_pause(p),
        35 => time::sys_nanosleep(p, a[0], a[1]),
        36 => time::sys_getitimer(p, a[0], a[1]),
        37 => time::sys_alarm(p, a[0]),
        38 => time::sys_setitimer(p, a[0], a[1], a[2]),
        39 => Ok(p.sys.ids.pid as u64),
        40 => io::sys_sendfile(p, a[0], a[1], a[2], a[3]),
        60 => return Some(ProcessEnd::Exited(a[0] as i32)),
        62 => signal::sys_kill(p, a[0], a[1]),
        63 => process::sys_uname(p, a[0]),
        72 => io::sys_fcntl(p, a[0], a[1], a[2]),
        73 => Ok(0), // flock: one process, no one to exclude
        74 | 75 => fs::sys_fsync(p, a[0]),
        76 => fs::sys_truncate(p, a[0], a[1]),
        77 => fs::sys_ftruncate(p, a[0], a[1]),
        78 | 217 => fs::sys_getdents64(p, a[0], a[1], a[2]),
        79 => fs::sys_getcwd(p, a[0], a[1]),
        80 => fs::sys_chdir(p, a[0]),
        81 => fs::sys_fchdir(p, a[0]),
        82 => fs::sys_renameat(p, fs::AT_FDCWD, a[0], fs::AT_FDCWD, a[1], 0),
        83 => fs::sys_mkdirat(p, fs::AT_FDCWD, a[0], a[1]),
        84 => fs::sys_unlinkat(p, fs::AT_FDCWD, a[0], fs::AT_REMOVEDIR),
        85 => fs::sys_openat(p, fs::AT_FDCWD, a[0], fs::O_CREAT | fs::O_WRONLY | fs::O_TRUNC, a[1]),
        86 => fs::sys_linkat(p, fs::AT_FDCWD, a[0], fs::AT_FDCWD, a[1]),
        87 => fs::sys_unlinkat(p, fs::AT_FDCWD, a[0], 0),
        88 => fs::sys_symlinkat(p, a[0], fs::AT_FDCWD, a[1]),
        89 => fs::sys_readlinkat(p, fs::AT_FDCWD, a[0], a[1], a[2]),
        90 => fs::sys_fchmodat(p, fs::AT_FDCWD, a[0], a[1]),
        91 => fs::sys_fchmod(p, a[0], a[1]),
        92..=94 => Ok(0), // chown, fchown, lchown: ownership is the host's; accept and ignore
        95 => Ok(std::mem::replace(&mut p.sys.umask, a[0] as u32 & 0o777) as u64),
        96 => time::sys_gettimeofday(p, a[0], a[1]),
        97 => process::sys_getrlimit(p, a[0], a[1]),
        98 => process::sys_getrusage(p, a[0], a[1]),
        99 => process::sys_sysinfo(p, a[0]),
        100 => time::sys_times(p, a[0]),
        102 | 107 => Ok(p.sys.ids.uid as u64),
        104 | 108 => Ok(p.sys.ids.gid as u64),
        105 | 106 | 113 | 114 | 116 => Ok(0), // setuid/setgid family: stay who we are
        109 => Ok(0),                         // setpgid
        110 => Ok(p.sys.ids.ppid as u64),
        111 => Ok(p.sys.ids.pgrp as u64),
        112 => Ok(p.sys.ids.pid as u64), // setsid: already a session of our own, as far as we show
        115 => process::sys_getgroups(p, a[0], a[1]),
        118 | 120 => process::sys_getresid(p, [a[0], a[1], a[2]], nr == 118),
        121 | 124 => Ok(p.sys.ids.pgrp as u64), // getpgid, getsid
        127 => signal::sys_rt_sigpending(p, a[0], a[1]),
        128 => signal::sys_rt_sigtimedwait(p, a[0], a[1], a[2], a[3]),
        130 => signal::sys_rt_sigsuspend(p, a[0], a[1]),
        131 => signal::sys_sigaltstack(p, a[0], a[1]),
        132 => fs::sys_utimensat_times(p, a[0], a[1]),
        137 | 138 => fs::sys_statfs(p, a[1]),
        157 => process::sys_prctl(p, a[0], a[1]),
        158 => process::sys_arch_prctl(p, a[0], a[1]),
        160 => Ok(0), // setrlimit: accepted, not enforced
        186 => Ok(p.sys.ids.pid as u64),
        200 => signal::sys_tkill(p, a[0], a[1]),
        201 => time::sys_time(p, a[0]),
        202 => process::sys_futex(p, a[0], a[1], a[2], a[3]),
        203 => Ok(0), // sched_setaffinity
        204 => process::sys_sched_getaffinity(p, a[1], a[2]),
        218 => Ok(p.sys.ids.pid as u64), // set_tid_address: returns the thread id
        221 => Ok(0),                    // fadvise64: advice only
        228 => time::sys_clock_gettime(p, a[0], a[1]),
        229 => time::sys_clock_getres(p, a[0], a[1]),
        230 => time::sys_clock_nanosleep(p, a[0], a[1], a[2], a[3]),
        231 => return Some(ProcessEnd::Exited(a[0] as i32)),
        234 => signal::sys_tgkill(p, a[0], a[1], a[2]),
        235 => fs::sys_utimes(p, a[0], a[1]),
        257 => fs::sys_openat(p, a[0], a[1], a[2], a[3]),
        258 => fs::sys_mkdirat(p, a[0], a[1], a[2]),
        260 => Ok(0), // fchownat
        262 => fs::sys_newfstatat(p, a[0], a[1], a[2], a[3]),
        263 => fs::sys_unlinkat(p, a[0], a[1], a[2]),
        264 => fs::sys_renameat(p, a[0], a[1], a[2], a[3], 0),
        265 => fs::sys_linkat(p, a[0], a[1], a[2], a[3]),
        266 => fs::sys_symlinkat(p, a[0], a[1], a[2]),
        267 => fs::sys_readlinkat(p, a[0], a[1], a[2], a[3]),
        268 => fs::sys_fchmodat(p, a[0], a[1], a[2]),
        269 => fs::sys_faccessat(p, a[0], a[1], a[2], 0),
        270 => io::sys_pselect6(p, a[0], a[1], a[2], a[3], a[4]),
        271 => io::sys_ppoll(p, a[0], a[1], a[2]),
        273 => Ok(0), // set_robust_list: no other threads to tell
        280 => fs::sys_utimensat(p, a[0], a[1], a[2], a[3]),
        285 => fs::sys_fallocate(p, a[0], a[1], a[2], a[3]),
        292 => io::sys_dup3(p, a[0], a[1], a[2], false),
        293 => io::sys_pipe2(p, a[0], a[1]),
        295 => io::sys_preadv(p, a[0], a[1], a[2], a[3]),
        296 => io::sys_pwritev(p, a[0], a[1], a[2], a[3]),
        302 => process::sys_prlimit64(p, a[0], a[1], a[2], a[3]),
        316 => fs::sys_renameat(p, a[0], a[1], a[2], a[3], a[4]),
        318 => process::sys_getrandom(p, a[0], a[1]),
        439 => fs::sys_faccessat(p, a[0], a[1], a[2], a[3]),
        // Known and deliberately absent: statx (libc falls back to newfstatat), rseq (glibc
        // runs without it), clone3 and the thread/process creation family.
        332 | 334 | 435 => Err(ENOSYS),
        _ => {
            if p.sys.unsupported_seen.insert(nr) {
                eprintln!("strata: unsupported system call {nr}; returning -ENOSYS");
            }
            Err(ENOSYS)
        }
    };
    let ret = match r {
        Ok(v) => v,
        Err(Errno(e)) => (-(e as i64)) as u64,
    };
    if p.sys.trace {
        eprintln!(
            "strata: syscall {nr}({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}) = {}",
            a[0], a[1], a[2], a[3], a[4], a[5], ret as i64
        );
    }
    p.cpu.state.gpr[gpr::RAX] = ret;
    None
}

/// Reads a NUL-terminated path argument (PATH_MAX 4096, as Linux).
pub fn read_path(p: &mut Process, la: u64) -> Result<Vec<u8>, Errno> {
    if la == 0 {
        return Err(EFAULT);
    }
    match p.read_cstr(la, 4096) {
        Some(s) => Ok(s),
        None => {
            // Either a bad pointer or no NUL within PATH_MAX.
            let mut b = [0u8];
            if p.read_mem(la, &mut b).is_none() {
                Err(EFAULT)
            } else {
                Err(ENAMETOOLONG)
            }
        }
    }
}

/// Copies `data` to the guest, EFAULT when it cannot.
pub fn put(p: &mut Process, la: u64, data: &[u8]) -> Result<(), Errno> {
    p.write_mem(la, data).ok_or(EFAULT)
}

/// Copies guest bytes in, EFAULT when it cannot.
pub fn get(p: &mut Process, la: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut v = vec![0u8; len];
    p.read_mem(la, &mut v).ok_or(EFAULT)?;
    Ok(v)
}
