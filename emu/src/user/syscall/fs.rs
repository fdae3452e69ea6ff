//! Paths and the file system: open, stat, directories, links, permissions and times, all carried
//! out on the host's file system with std (no raw host calls), results encoded in the x86-64
//! layouts (`struct stat` from `arch/x86/include/uapi/asm/stat.h`, `linux_dirent64`,
//! `struct statfs`).
//!
//! Relative paths resolve against the process's own working directory (kept in `SysState`, not
//! the host's) or a directory descriptor. `/proc/self/exe` names the program being run. statx is
//! left to -ENOSYS (glibc and musl fall back to newfstatat). Ownership changes are accepted and
//! ignored; permission checks in `faccessat` use the mode bits against the host user's ids.

use super::fd::{DirEntry, Node, OpenFile};
use super::{
    get, put, read_path, Errno, Layout, SysResult, EACCES, EBADF, EEXIST, EFAULT, EINVAL, ELOOP, ENOENT, ENOTDIR,
    ERANGE,
};
use crate::user::Process;
use std::ffi::OsStr;
use std::fs::{Metadata, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, DirEntryExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const AT_FDCWD: u64 = -100i64 as u64;
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
pub const AT_REMOVEDIR: u64 = 0x200;
pub const AT_EMPTY_PATH: u64 = 0x1000;
pub const O_WRONLY: u64 = 1;
pub const O_CREAT: u64 = 0o100;
const O_EXCL: u64 = 0o200;
pub const O_TRUNC: u64 = 0o1000;
const O_APPEND: u64 = 0o2000;
const O_DIRECTORY: u64 = 0o200000;
const O_NOFOLLOW: u64 = 0o400000;
const O_CLOEXEC: u64 = 0o2000000;
/// Set by the kernel on every open of a 64-bit process (force_o_largefile); F_GETFL shows it.
const O_LARGEFILE: u32 = 0o100000;
/// Status flags kept on the description.
const KEPT_FLAGS: u64 = 3 | O_APPEND | 0o4000;

/// Resolves a guest path argument relative to `dirfd` (AT_FDCWD: the working directory).
fn resolve(p: &mut Process, dirfd: u64, path: &[u8]) -> Result<PathBuf, Errno> {
    if path.is_empty() {
        return Err(ENOENT);
    }
    let rel = Path::new(OsStr::from_bytes(path));
    if path == b"/proc/self/exe" {
        return Ok(PathBuf::from(&p.sys.exe));
    }
    if rel.is_absolute() {
        return Ok(rel.to_path_buf());
    }
    // dirfd is an int: only its low 32 bits count.
    if dirfd as u32 == AT_FDCWD as u32 {
        return Ok(p.sys.cwd.join(rel));
    }
    let f = p.sys.fds.get(dirfd as u32 as u64)?;
    let of = f.borrow();
    match (&of.node, &of.path) {
        (Node::Dir { .. }, Some(dir)) => Ok(dir.join(rel)),
        _ => Err(ENOTDIR),
    }
}

fn resolve_arg(p: &mut Process, dirfd: u64, la: u64) -> Result<PathBuf, Errno> {
    let path = read_path(p, la)?;
    resolve(p, dirfd, &path)
}

pub fn sys_openat(p: &mut Process, dirfd: u64, path: u64, flags: u64, mode: u64) -> SysResult {
    let full = resolve_arg(p, dirfd, path)?;
    let acc = flags & 3;
    if acc == 3 {
        return Err(EINVAL);
    }
    if flags & O_NOFOLLOW != 0 && std::fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(ELOOP);
    }
    let create_mode = (mode as u32 & 0o7777) & !p.sys.umask;
    let existed = std::fs::symlink_metadata(&full).is_ok();
    let mut oo = OpenOptions::new();
    oo.read(acc != 1).write(acc != 0);
    if flags & O_CREAT != 0 {
        if acc == 0 {
            // std only creates with write access; Linux also allows O_RDONLY|O_CREAT.
            if flags & O_EXCL != 0 || !existed {
                OpenOptions::new().write(true).create_new(true).mode(create_mode).open(&full)?;
            }
        } else if flags & O_EXCL != 0 {
            oo.create_new(true).mode(create_mode);
        } else {
            oo.create(true).mode(create_mode);
        }
    }
    if flags & O_TRUNC != 0 && acc != 0 {
        oo.truncate(true);
    }
    let file = oo.open(&full)?;
    if flags & O_CREAT != 0 && !existed {
        // The host applied its own umask too; give the file exactly the guest's permissions.
        file.set_permissions(std::fs::Permissions::from_mode(create_mode))?;
    }
    let is_dir = file.metadata()?.is_dir();
    if flags & O_DIRECTORY != 0 && !is_dir {
        return Err(ENOTDIR);
    }
    let node = if is_dir { Node::Dir { file, entries: None, pos: 0 } } else { Node::File(file) };
    let of = OpenFile::new(node, (flags & KEPT_FLAGS) as u32 | O_LARGEFILE, Some(full));
    p.sys.fds.install(of, flags & O_CLOEXEC != 0)
}

/// struct stat, x86-64 layout (144 bytes).
pub fn encode_stat(m: &Metadata) -> Vec<u8> {
    let mut s = Layout::new(144);
    s.u64(0, m.dev()).u64(8, m.ino()).u64(16, m.nlink()).u32(24, m.mode()).u32(28, m.uid()).u32(32, m.gid());
    s.u64(40, m.rdev()).u64(48, m.size()).u64(56, m.blksize()).u64(64, m.blocks());
    s.u64(72, m.atime() as u64).u64(80, m.atime_nsec() as u64);
    s.u64(88, m.mtime() as u64).u64(96, m.mtime_nsec() as u64);
    s.u64(104, m.ctime() as u64).u64(112, m.ctime_nsec() as u64);
    s.0
}

/// The stat of a pipe: a FIFO owned by us, mode 0600.
fn pipe_stat(p: &Process) -> Vec<u8> {
    let mut s = Layout::new(144);
    s.u64(0, 0xc).u64(8, 1).u64(16, 1).u32(24, 0o010600).u32(28, p.sys.ids.uid).u32(32, p.sys.ids.gid);
    s.u64(56, 4096);
    s.0
}

fn fd_stat(p: &mut Process, fd: u64) -> Result<Vec<u8>, Errno> {
    let f = p.sys.fds.get(fd)?;
    let of = f.borrow();
    match of.host_file() {
        Some(h) => Ok(encode_stat(&h.metadata()?)),
        None => Ok(pipe_stat(p)),
    }
}

pub fn sys_fstat(p: &mut Process, fd: u64, buf: u64) -> SysResult {
    let st = fd_stat(p, fd)?;
    put(p, buf, &st)?;
    Ok(0)
}

pub fn sys_newfstatat(p: &mut Process, dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    let name = read_path(p, path)?;
    let st = if name.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if dirfd as u32 == AT_FDCWD as u32 {
            encode_stat(&std::fs::metadata(&p.sys.cwd)?)
        } else {
            fd_stat(p, dirfd as u32 as u64)?
        }
    } else {
        let full = resolve(p, dirfd, &name)?;
        let m = if flags & AT_SYMLINK_NOFOLLOW != 0 {
            std::fs::symlink_metadata(&full)?
        } else {
            std::fs::metadata(&full)?
        };
        encode_stat(&m)
    };
    put(p, buf, &st)?;
    Ok(0)
}

pub fn sys_faccessat(p: &mut Process, dirfd: u64, path: u64, mode: u64, _flags: u64) -> SysResult {
    let full = resolve_arg(p, dirfd, path)?;
    let m = std::fs::metadata(&full)?;
    let want = (mode & 7) as u32;
    if want == 0 {
        return Ok(0);
    }
    let ids = &p.sys.ids;
    let bits = if ids.uid == 0 {
        // root may read and write anything, and execute what has any execute bit or is a dir.
        let x = if m.mode() & 0o111 != 0 || m.is_dir() { 1 } else { 0 };
        6 | x
    } else if m.uid() == ids.uid {
        m.mode() >> 6 & 7
    } else if m.gid() == ids.gid {
        m.mode() >> 3 & 7
    } else {
        m.mode() & 7
    };
    if bits & want == want {
        Ok(0)
    } else {
        Err(EACCES)
    }
}

const DT_FIFO: u8 = 1;
const DT_CHR: u8 = 2;
const DT_DIR: u8 = 4;
const DT_BLK: u8 = 6;
const DT_REG: u8 = 8;
const DT_LNK: u8 = 10;
const DT_SOCK: u8 = 12;

fn dtype(ft: std::fs::FileType) -> u8 {
    if ft.is_dir() {
        DT_DIR
    } else if ft.is_file() {
        DT_REG
    } else if ft.is_symlink() {
        DT_LNK
    } else if ft.is_char_device() {
        DT_CHR
    } else if ft.is_block_device() {
        DT_BLK
    } else if ft.is_fifo() {
        DT_FIFO
    } else if ft.is_socket() {
        DT_SOCK
    } else {
        0
    }
}

/// The directory's entries, with "." and ".." first (std's listing leaves them out).
fn list_dir(dir: &Path) -> Result<Vec<DirEntry>, Errno> {
    let mut v = Vec::new();
    let ino = |p: &Path| std::fs::metadata(p).map(|m| m.ino()).unwrap_or(0);
    v.push(DirEntry { ino: ino(dir), dtype: DT_DIR, name: b".".to_vec() });
    v.push(DirEntry { ino: ino(&dir.join("..")), dtype: DT_DIR, name: b"..".to_vec() });
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let dt = e.file_type().map(dtype).unwrap_or(0);
        v.push(DirEntry { ino: e.ino(), dtype: dt, name: e.file_name().as_bytes().to_vec() });
    }
    Ok(v)
}

pub fn sys_getdents64(p: &mut Process, fd: u64, buf: u64, count: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let mut out = Vec::new();
    {
        let mut of = f.borrow_mut();
        let path = of.path.clone();
        let Node::Dir { entries, pos, .. } = &mut of.node else { return Err(ENOTDIR) };
        if entries.is_none() {
            *entries = Some(list_dir(path.as_deref().ok_or(EBADF)?)?);
        }
        let list = entries.as_deref().unwrap_or(&[]);
        let cap = (count as usize).min(super::io::MAX_IO);
        while let Some(e) = list.get(*pos) {
            // d_ino, d_off, d_reclen, d_type, name, NUL, padded to 8 bytes.
            let reclen = (19 + e.name.len() + 1).div_ceil(8) * 8;
            if out.len() + reclen > cap {
                if out.is_empty() {
                    return Err(EINVAL);
                }
                break;
            }
            let mut r = Layout::new(reclen);
            r.u64(0, e.ino).u64(8, *pos as u64 + 1).u16(16, reclen as u16);
            r.0[18] = e.dtype;
            r.bytes(19, &e.name);
            out.extend(r.0);
            *pos += 1;
        }
    }
    put(p, buf, &out)?;
    Ok(out.len() as u64)
}

pub fn sys_getcwd(p: &mut Process, buf: u64, size: u64) -> SysResult {
    let mut cwd = p.sys.cwd.as_os_str().as_bytes().to_vec();
    cwd.push(0);
    if (size as usize) < cwd.len() {
        return Err(ERANGE);
    }
    put(p, buf, &cwd)?;
    Ok(cwd.len() as u64)
}

fn set_cwd(p: &mut Process, path: &Path) -> SysResult {
    let real = std::fs::canonicalize(path)?;
    if !real.is_dir() {
        return Err(ENOTDIR);
    }
    p.sys.cwd = real;
    Ok(0)
}

pub fn sys_chdir(p: &mut Process, path: u64) -> SysResult {
    let full = resolve_arg(p, AT_FDCWD, path)?;
    set_cwd(p, &full)
}

pub fn sys_fchdir(p: &mut Process, fd: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let path = f.borrow().path.clone().ok_or(ENOTDIR)?;
    set_cwd(p, &path)
}

const RENAME_NOREPLACE: u64 = 1;

pub fn sys_renameat(p: &mut Process, olddir: u64, old: u64, newdir: u64, new: u64, flags: u64) -> SysResult {
    let from = resolve_arg(p, olddir, old)?;
    let to = resolve_arg(p, newdir, new)?;
    if flags & !RENAME_NOREPLACE != 0 {
        return Err(EINVAL);
    }
    if flags & RENAME_NOREPLACE != 0 && std::fs::symlink_metadata(&to).is_ok() {
        return Err(EEXIST);
    }
    std::fs::rename(from, to)?;
    Ok(0)
}

pub fn sys_mkdirat(p: &mut Process, dirfd: u64, path: u64, mode: u64) -> SysResult {
    let full = resolve_arg(p, dirfd, path)?;
    let mode = (mode as u32 & 0o7777) & !p.sys.umask;
    std::fs::DirBuilder::new().mode(mode).create(&full)?;
    std::fs::set_permissions(full, std::fs::Permissions::from_mode(mode))?;
    Ok(0)
}

pub fn sys_unlinkat(p: &mut Process, dirfd: u64, path: u64, flags: u64) -> SysResult {
    let full = resolve_arg(p, dirfd, path)?;
    if flags & AT_REMOVEDIR != 0 {
        std::fs::remove_dir(full)?;
    } else {
        std::fs::remove_file(full)?;
    }
    Ok(0)
}

pub fn sys_linkat(p: &mut Process, olddir: u64, old: u64, newdir: u64, new: u64) -> SysResult {
    let from = resolve_arg(p, olddir, old)?;
    let to = resolve_arg(p, newdir, new)?;
    std::fs::hard_link(from, to)?;
    Ok(0)
}

pub fn sys_symlinkat(p: &mut Process, target: u64, newdir: u64, link: u64) -> SysResult {
    let target = read_path(p, target)?;
    let link = resolve_arg(p, newdir, link)?;
    std::os::unix::fs::symlink(OsStr::from_bytes(&target), link)?;
    Ok(0)
}

pub fn sys_readlinkat(p: &mut Process, dirfd: u64, path: u64, buf: u64, size: u64) -> SysResult {
    if (size as i64) <= 0 {
        return Err(EINVAL);
    }
    let name = read_path(p, path)?;
    let target = if name == b"/proc/self/exe" {
        p.sys.exe.as_bytes().to_vec()
    } else {
        let full = resolve(p, dirfd, &name)?;
        std::fs::read_link(full)?.as_os_str().as_bytes().to_vec()
    };
    let n = target.len().min(size as usize);
    put(p, buf, &target[..n])?;
    Ok(n as u64)
}

pub fn sys_fchmodat(p: &mut Process, dirfd: u64, path: u64, mode: u64) -> SysResult {
    let full = resolve_arg(p, dirfd, path)?;
    std::fs::set_permissions(full, std::fs::Permissions::from_mode(mode as u32 & 0o7777))?;
    Ok(0)
}

pub fn sys_fchmod(p: &mut Process, fd: u64, mode: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let of = f.borrow();
    of.host_file().ok_or(EBADF)?.set_permissions(std::fs::Permissions::from_mode(mode as u32 & 0o7777))?;
    Ok(0)
}

pub fn sys_fsync(p: &mut Process, fd: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let of = f.borrow();
    of.host_file().ok_or(EINVAL)?.sync_all()?;
    Ok(0)
}

pub fn sys_truncate(p: &mut Process, path: u64, len: u64) -> SysResult {
    let full = resolve_arg(p, AT_FDCWD, path)?;
    if (len as i64) < 0 {
        return Err(EINVAL);
    }
    OpenOptions::new().write(true).open(full)?.set_len(len)?;
    Ok(0)
}

pub fn sys_ftruncate(p: &mut Process, fd: u64, len: u64) -> SysResult {
    if (len as i64) < 0 {
        return Err(EINVAL);
    }
    let f = p.sys.fds.get(fd)?;
    let of = f.borrow();
    of.host_file().ok_or(EINVAL)?.set_len(len)?;
    Ok(0)
}

pub fn sys_fallocate(p: &mut Process, fd: u64, mode: u64, off: u64, len: u64) -> SysResult {
    let f = p.sys.fds.get(fd)?;
    let of = f.borrow();
    let h = of.host_file().ok_or(EBADF)?;
    if mode != 0 {
        return Err(Errno(95)); // EOPNOTSUPP: only plain allocation
    }
    let end = off.checked_add(len).filter(|&e| (e as i64) > 0).ok_or(EINVAL)?;
    if h.metadata()?.len() < end {
        h.set_len(end)?;
    }
    Ok(0)
}

const UTIME_NOW: u64 = (1 << 30) - 1;
const UTIME_OMIT: u64 = (1 << 30) - 2;

/// A time to set: `None` leaves it unchanged.
fn timespec_to_time(sec: u64, nsec: u64) -> Result<Option<SystemTime>, Errno> {
    match nsec {
        UTIME_OMIT => Ok(None),
        UTIME_NOW => Ok(Some(SystemTime::now())),
        n if n < 1_000_000_000 => {
            // Times before 1970 are negative seconds plus a positive fraction.
            let t = if (sec as i64) >= 0 {
                UNIX_EPOCH.checked_add(Duration::new(sec, n as u32))
            } else {
                UNIX_EPOCH
                    .checked_sub(Duration::new(sec.wrapping_neg(), 0))
                    .and_then(|t| t.checked_add(Duration::new(0, n as u32)))
            };
            t.map(Some).ok_or(EINVAL)
        }
        _ => Err(EINVAL),
    }
}

fn set_times(file: &std::fs::File, atime: Option<SystemTime>, mtime: Option<SystemTime>) -> SysResult {
    let mut t = std::fs::FileTimes::new();
    if let Some(a) = atime {
        t = t.set_accessed(a);
    }
    if let Some(m) = mtime {
        t = t.set_modified(m);
    }
    file.set_times(t)?;
    Ok(0)
}

fn set_path_times(path: &Path, atime: Option<SystemTime>, mtime: Option<SystemTime>) -> SysResult {
    let file = OpenOptions::new().read(true).open(path).or_else(|_| OpenOptions::new().write(true).open(path))?;
    set_times(&file, atime, mtime)
}

pub fn sys_utimensat(p: &mut Process, dirfd: u64, path: u64, times: u64, _flags: u64) -> SysResult {
    let (atime, mtime) = if times == 0 {
        let now = Some(SystemTime::now());
        (now, now)
    } else {
        let t = get(p, times, 32)?;
        (
            timespec_to_time(super::le64(&t, 0), super::le64(&t, 8))?,
            timespec_to_time(super::le64(&t, 16), super::le64(&t, 24))?,
        )
    };
    if path == 0 {
        let f = p.sys.fds.get(dirfd as u32 as u64)?;
        let of = f.borrow();
        return set_times(of.host_file().ok_or(EBADF)?, atime, mtime);
    }
    let full = resolve_arg(p, dirfd, path)?;
    set_path_times(&full, atime, mtime)
}

/// utimes(path, struct timeval[2]).
pub fn sys_utimes(p: &mut Process, path: u64, times: u64) -> SysResult {
    let full = resolve_arg(p, AT_FDCWD, path)?;
    if times == 0 {
        let now = Some(SystemTime::now());
        return set_path_times(&full, now, now);
    }
    let t = get(p, times, 32)?;
    let us = |i: usize| super::le64(&t, i).checked_mul(1000).ok_or(EINVAL);
    let a = timespec_to_time(super::le64(&t, 0), us(8)?)?;
    let m = timespec_to_time(super::le64(&t, 16), us(24)?)?;
    set_path_times(&full, a, m)
}

/// utime(path, struct utimbuf { actime, modtime }).
pub fn sys_utimensat_times(p: &mut Process, path: u64, times: u64) -> SysResult {
    let full = resolve_arg(p, AT_FDCWD, path)?;
    if times == 0 {
        let now = Some(SystemTime::now());
        return set_path_times(&full, now, now);
    }
    let t = get(p, times, 16)?;
    let a = timespec_to_time(super::le64(&t, 0), 0)?;
    let m = timespec_to_time(super::le64(&t, 8), 0)?;
    set_path_times(&full, a, m)
}

/// statfs/fstatfs: a plausible ext4 with room to spare (std has no statvfs).
pub fn sys_statfs(p: &mut Process, buf: u64) -> SysResult {
    if buf == 0 {
        return Err(EFAULT);
    }
    let mut s = Layout::new(120);
    s.u64(0, 0xef53).u64(8, 4096).u64(16, 1 << 24).u64(24, 1 << 23).u64(32, 1 << 23);
    s.u64(40, 1 << 20).u64(48, 1 << 19).u64(64, 255).u64(72, 4096);
    put(p, buf, &s.0)?;
    Ok(0)
}
