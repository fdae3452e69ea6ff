//! The 9P2000.L file server: one request in, one reply out ([`Server::handle`]).
//!
//! Fids live in a hash map (hashbrown), so no request costs time in the number of open fids or
//! files. A walked fid holds its file as an `O_PATH` descriptor (shared, via `Arc`, with the fids
//! cloned from it and walked below it) and the (parent, name) it was reached by; [`super::resolve`]
//! is the only place names become host files. Security model like QEMU's `security_model=none`:
//! files belong to the user running Strata, the guest's uid/gid in requests are not applied except
//! through an explicit chown (which the host may refuse).
//!
//! POSIX locks (Tlock/Tgetlock) are granted without a host lock, as QEMU's server does: the guest
//! kernel keeps the lock state among its own processes before asking the server, so guest
//! programs see working locks; a host program is not excluded by them.

use super::resolve::{check_name, walk_one, Reopener};
use super::wire::{msg, rlerror, Malformed, Qid, Reader, Writer, HEADER, QID_LEN};
use hashbrown::HashMap;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxFlags, Timestamps, XattrFlags};
use rustix::io::Errno;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

/// The largest msize we agree to (the Linux client asks for its `msize=` mount option).
pub const MAX_MSIZE: u32 = 4 << 20;
/// msize before Tversion, and the smallest we accept.
const MIN_MSIZE: u32 = 4096;
/// Most fids one guest may hold (each walked file may also hold a host descriptor).
const MAX_FIDS: usize = 1 << 20;
/// Largest extended attribute value (Linux's XATTR_SIZE_MAX).
const XATTR_MAX: usize = 65536;
/// Qid types.
const QTDIR: u8 = 0x80;
const QTSYMLINK: u8 = 0x02;
/// 9P2000.L getattr "valid" bits for the basic fields and btime (P9_GETATTR_BASIC | BTIME).
const GETATTR_BASIC: u64 = 0x07ff;
const GETATTR_BTIME: u64 = 0x0800;
/// Tsetattr valid bits.
const SET_MODE: u32 = 0x1;
const SET_UID: u32 = 0x2;
const SET_GID: u32 = 0x4;
const SET_SIZE: u32 = 0x8;
const SET_ATIME: u32 = 0x10;
const SET_MTIME: u32 = 0x20;
const SET_ATIME_SET: u32 = 0x80;
const SET_MTIME_SET: u32 = 0x100;
/// Tunlinkat flag (Linux AT_REMOVEDIR).
const AT_REMOVEDIR: u32 = 0x200;
/// 9P2000.L open flags (the Linux client's P9_DOTL_*; x86 Linux values, mapped explicitly so an
/// aarch64 host reads them right).
const L_WRONLY: u32 = 0o1;
const L_RDWR: u32 = 0o2;
const L_EXCL: u32 = 0o200;
const L_TRUNC: u32 = 0o1000;
const L_APPEND: u32 = 0o2000;
const L_DSYNC: u32 = 0o10000;
const L_SYNC: u32 = 0o4000000;
/// Linux xattr flags (XATTR_CREATE, XATTR_REPLACE).
const XATTR_CREATE: u32 = 1;
const XATTR_REPLACE: u32 = 2;
/// Tlock status: granted. Tgetlock type: F_UNLCK.
const LOCK_SUCCESS: u8 = 0;
const F_UNLCK: u8 = 2;
/// The magic number Rstatfs reports (V9FS_MAGIC).
const V9FS_MAGIC: u32 = 0x0102_1997;

/// A file reached by a walk.
#[derive(Clone)]
struct Node {
    /// The file itself, O_PATH (a symlink is held as the link).
    fd: Arc<OwnedFd>,
    /// The directory it was reached from and its name there (None for the root).
    parent: Option<(Arc<OwnedFd>, Vec<u8>)>,
    qid: Qid,
}

/// What a fid stands for.
enum Fid {
    /// A file, opened for I/O or not.
    File { node: Node, open: Option<OwnedFd> },
    /// An xattr value (or the name list) read by Txattrwalk, served by Tread.
    XattrRead { data: Vec<u8> },
    /// An xattr being written (Txattrcreate): set at clunk.
    XattrWrite { node: Node, name: Vec<u8>, size: usize, flags: u32, data: Vec<u8> },
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ShareConfig {
    /// The host folder.
    pub root: std::path::PathBuf,
    /// Refuse every write with EROFS.
    pub readonly: bool,
}

/// Failure to open a share's folder.
#[derive(Debug, thiserror::Error)]
#[error("cannot open shared folder {path}: {source}")]
pub struct ShareError {
    /// The folder.
    pub path: String,
    /// Why.
    pub source: std::io::Error,
}

/// A 9P2000.L server over one host folder.
pub struct Server {
    root: Arc<OwnedFd>,
    readonly: bool,
    fids: HashMap<u32, Fid>,
    msize: u32,
    reopener: Reopener,
}

type Reply = Result<Vec<u8>, Errno>;

impl From<Malformed> for Errno {
    fn from(_: Malformed) -> Errno {
        Errno::INVAL
    }
}

impl Server {
    /// A server for `config.root`, which must be a readable directory.
    ///
    /// # Errors
    /// The folder is missing, not a directory, or not readable.
    pub fn new(config: &ShareConfig) -> Result<Self, ShareError> {
        let err = |e: std::io::Error| ShareError { path: config.root.display().to_string(), source: e };
        let root = open_root(&config.root).map_err(|e| err(e.into()))?;
        // Listing the root proves it is readable now rather than at the guest's first readdir.
        std::fs::read_dir(&config.root).map_err(err)?;
        raise_fd_limit();
        Ok(Server {
            root: Arc::new(root),
            readonly: config.readonly,
            fids: HashMap::new(),
            msize: MIN_MSIZE,
            reopener: Reopener::new(),
        })
    }

    /// The negotiated msize.
    pub fn msize(&self) -> u32 {
        self.msize
    }

    /// Fids in use.
    pub fn fid_count(&self) -> usize {
        self.fids.len()
    }

    /// Answers one request; the reply never exceeds `max_reply` bytes (the space the driver gave)
    /// or the negotiated msize. A malformed request gets Rlerror(EINVAL).
    pub fn handle(&mut self, request: &[u8], max_reply: usize) -> Vec<u8> {
        let mut r = Reader::new(request);
        let (Ok(size), Ok(kind), Ok(tag)) = (r.u32(), r.u8(), r.u16()) else {
            return rlerror(u16::MAX, Errno::INVAL.raw_os_error() as u32);
        };
        let size = size as usize;
        if size < HEADER || size > request.len() || size > self.msize.max(MIN_MSIZE) as usize {
            return rlerror(tag, Errno::INVAL.raw_os_error() as u32);
        }
        let limit = max_reply.min(self.msize as usize);
        let body = Reader::new(&request[HEADER..size]);
        match self.dispatch(kind, tag, body, limit) {
            Ok(reply) if reply.len() <= limit || kind == msg::TVERSION => reply,
            Ok(_) => rlerror(tag, Errno::MSGSIZE.raw_os_error() as u32),
            Err(e) => rlerror(tag, e.raw_os_error() as u32),
        }
    }

    fn dispatch(&mut self, kind: u8, tag: u16, mut r: Reader<'_>, limit: usize) -> Reply {
        let w = Writer::new(kind.wrapping_add(1), tag);
        match kind {
            msg::TVERSION => self.version(w, &mut r),
            msg::TAUTH => Err(Errno::OPNOTSUPP),
            msg::TATTACH => self.attach(w, &mut r),
            msg::TFLUSH => {
                // Requests are answered in order before the next is read: nothing is pending.
                r.u16()?;
                Ok(w.finish())
            }
            msg::TWALK => self.walk(w, &mut r),
            msg::TCLUNK => self.clunk(w, r.u32()?),
            msg::TREMOVE => self.remove(w, r.u32()?),
            msg::TGETATTR => self.getattr(w, &mut r),
            msg::TSETATTR => self.setattr(w, &mut r),
            msg::TLOPEN => self.lopen(w, &mut r),
            msg::TLCREATE => self.lcreate(w, &mut r),
            msg::TREAD => self.read(w, &mut r, limit),
            msg::TWRITE => self.write(w, &mut r),
            msg::TREADDIR => self.readdir(w, &mut r, limit),
            msg::TMKDIR => self.mkdir(w, &mut r),
            msg::TSYMLINK => self.symlink(w, &mut r),
            msg::TMKNOD => self.mknod(w, &mut r),
            msg::TLINK => self.link(w, &mut r),
            msg::TRENAME => self.rename(w, &mut r),
            msg::TRENAMEAT => self.renameat(w, &mut r),
            msg::TUNLINKAT => self.unlinkat(w, &mut r),
            msg::TREADLINK => self.readlink(w, &mut r),
            msg::TSTATFS => self.statfs(w, &mut r),
            msg::TFSYNC => self.fsync(w, &mut r),
            msg::TLOCK => self.lock(w, &mut r),
            msg::TGETLOCK => self.getlock(w, &mut r),
            msg::TXATTRWALK => self.xattrwalk(w, &mut r),
            msg::TXATTRCREATE => self.xattrcreate(w, &mut r),
            _ => Err(Errno::OPNOTSUPP),
        }
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.readonly {
            Err(Errno::ROFS)
        } else {
            Ok(())
        }
    }

    fn node(&self, fid: u32) -> Result<&Node, Errno> {
        match self.fids.get(&fid) {
            Some(Fid::File { node, .. }) => Ok(node),
            Some(_) => Err(Errno::INVAL),
            None => Err(Errno::BADF),
        }
    }

    /// A directory fid not opened for I/O (the target of create-like requests).
    fn dir(&self, fid: u32) -> Result<Arc<OwnedFd>, Errno> {
        let node = self.node(fid)?;
        if node.qid.kind != QTDIR {
            return Err(Errno::NOTDIR);
        }
        Ok(node.fd.clone())
    }

    fn insert(&mut self, fid: u32, f: Fid) -> Result<(), Errno> {
        if self.fids.len() >= MAX_FIDS && !self.fids.contains_key(&fid) {
            return Err(Errno::NFILE);
        }
        self.fids.insert(fid, f);
        Ok(())
    }

    fn version(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let msize = r.u32()?;
        let version = r.string()?;
        // A new session: every fid of the old one is clunked (9P: version).
        self.fids.clear();
        self.msize = msize.clamp(MIN_MSIZE, MAX_MSIZE);
        let v: &[u8] = if version == b"9P2000.L" { b"9P2000.L" } else { b"unknown" };
        w.u32(self.msize).string(v);
        Ok(w.finish())
    }

    fn attach(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let fid = r.u32()?;
        let _afid = r.u32()?;
        let _uname = r.string()?;
        let _aname = r.string()?;
        let _n_uname = r.u32()?;
        if self.fids.contains_key(&fid) {
            return Err(Errno::INVAL);
        }
        let qid = qid_of(self.root.as_fd())?;
        self.insert(fid, Fid::File { node: Node { fd: self.root.clone(), parent: None, qid }, open: None })?;
        w.qid(qid);
        Ok(w.finish())
    }

    fn walk(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let fid = r.u32()?;
        let newfid = r.u32()?;
        let n = r.u16()?;
        if n > 16 {
            return Err(Errno::INVAL); // MAXWELEM
        }
        let names = (0..n).map(|_| r.string()).collect::<Result<Vec<_>, _>>()?;
        let mut node = self.node(fid)?.clone();
        if newfid != fid && self.fids.contains_key(&newfid) {
            return Err(Errno::INVAL);
        }
        let mut qids = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let step = check_name(name).and_then(|()| walk_one(node.fd.as_fd(), name));
            let fd = match step {
                Ok(fd) => fd,
                Err(e) if i == 0 => return Err(e),
                Err(_) => break, // a partial walk: newfid is not created
            };
            let qid = qid_of(fd.as_fd())?;
            node = Node { fd: Arc::new(fd), parent: Some((node.fd, name.to_vec())), qid };
            qids.push(qid);
        }
        if qids.len() == names.len() {
            self.insert(newfid, Fid::File { node, open: None })?;
        }
        w.u16(qids.len() as u16);
        for q in qids {
            w.qid(q);
        }
        Ok(w.finish())
    }

    fn clunk(&mut self, w: Writer, fid: u32) -> Reply {
        match self.fids.remove(&fid).ok_or(Errno::BADF)? {
            Fid::XattrWrite { node, name, size, flags, data } => {
                if data.len() != size {
                    return Err(Errno::INVAL);
                }
                let target = self.xattr_target(&node)?;
                if size == 0 && flags & XATTR_REPLACE != 0 {
                    target.with(
                        |p| rustix::fs::removexattr(p, name.as_slice()),
                        |fd| rustix::fs::fremovexattr(fd, name.as_slice()),
                    )?;
                } else {
                    let f = xattr_flags(flags);
                    target.with(
                        |p| rustix::fs::setxattr(p, name.as_slice(), &data, f),
                        |fd| rustix::fs::fsetxattr(fd, name.as_slice(), &data, f),
                    )?;
                }
            }
            Fid::File { .. } | Fid::XattrRead { .. } => {}
        }
        Ok(w.finish())
    }

    fn remove(&mut self, w: Writer, fid: u32) -> Reply {
        // The fid is clunked whether or not the removal works (9P: remove).
        let f = self.fids.remove(&fid).ok_or(Errno::BADF)?;
        self.writable()?;
        let Fid::File { node, .. } = f else { return Err(Errno::INVAL) };
        let Some((dir, name)) = &node.parent else { return Err(Errno::BUSY) };
        let flags = if node.qid.kind == QTDIR { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        rustix::fs::unlinkat(dir.as_fd(), name.as_slice(), flags)?;
        Ok(w.finish())
    }

    fn getattr(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let fid = r.u32()?;
        let _mask = r.u64()?;
        let node = self.node(fid)?;
        let st = statx_fd(node.fd.as_fd())?;
        let btime = st.stx_mask & StatxFlags::BTIME.bits() != 0;
        w.u64(GETATTR_BASIC | if btime { GETATTR_BTIME } else { 0 })
            .qid(qid_from(&st))
            .u32(u32::from(st.stx_mode))
            .u32(st.stx_uid)
            .u32(st.stx_gid)
            .u64(u64::from(st.stx_nlink))
            .u64(rustix::fs::makedev(st.stx_rdev_major, st.stx_rdev_minor))
            .u64(st.stx_size)
            .u64(u64::from(st.stx_blksize))
            .u64(st.stx_blocks);
        for t in [st.stx_atime, st.stx_mtime, st.stx_ctime, st.stx_btime] {
            w.u64(t.tv_sec as u64).u64(u64::from(t.tv_nsec));
        }
        w.u64(0).u64(0); // gen, data_version: reserved for future use (9P2000.L)
        Ok(w.finish())
    }

    fn setattr(&mut self, w: Writer, r: &mut Reader<'_>) -> Reply {
        let fid = r.u32()?;
        let valid = r.u32()?;
        let mode = r.u32()?;
        let uid = r.u32()?;
        let gid = r.u32()?;
        let size = r.u64()?;
        let (asec, ansec, msec, mnsec) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        self.writable()?;
        let node = self.node(fid)?.clone();
        let symlink = node.qid.kind == QTSYMLINK;
        if valid & SET_MODE != 0 {
            if symlink {
                return Err(Errno::OPNOTSUPP);
            }
            let m = Mode::from_bits_truncate(mode & 0o7777);
            match self.reopener.proc_path(node.fd.as_fd()) {
                Some(p) => rustix::fs::chmodat(rustix::fs::CWD, p.as_str(), m, AtFlags::empty())?,
                None => rustix::fs::fchmod(self.open_for(&node, OFlags::RDONLY)?, m)?,
            }
        }
        if valid & (SET_UID | SET_GID) != 0 {
            let u = (valid & SET_UID != 0).then(|| rustix::fs::Uid::from_raw(uid));
            let g = (valid & SET_GID != 0).then(|| rustix::fs::Gid::from_raw(gid));
            rustix::fs::chownat(node.fd.as_fd(), "", u, g, AtFlags::EMPTY_PATH)?;
        }
        if valid & SET_SIZE != 0 {
            if node.qid.kind != 0 {
                return Err(Errno::INVAL);
            }
            rustix::fs::ftruncate(self.open_for(&node, OFlags::WRONLY)?, size)?;
        }
        if valid & (SET_ATIME | SET_MTIME) != 0 {
            let time = |set: u32, given: u32, sec: u64, nsec: u64| rustix::fs::Timespec {
                tv_sec: sec as i64,
                tv_nsec: if valid & set == 0 {
                    rustix::fs::UTIME_OMIT
                } else if valid & given == 0 {
                    rustix::fs::UTIME_NOW
                } else {
                    (nsec % 1_000_000_000) as _
                },
            };
            let times = Timestamps {
                last_access: time(SET_ATIME, SET_ATIME_SET, asec, ansec),
                last_modification: time(SET_MTIME, SET_MTIME_SET, msec, mnsec),
            };
            match (&node.parent, self.reopener.proc_path(node.fd.as_fd())) {
                (_, Some(p)) if !symlink => {
                    rustix::fs::utimensat(rustix::fs::CWD, p.as_str(), &times, AtFlags::empty())?
                }
                (Some((dir, name)), _) => {
                    rustix::fs::utimensat(dir.as_fd(), name.as_slice(), &times, AtFlags::SYMLINK_NOFOLLOW)?;
                }
                (None, _) => rustix::fs::futimens(self.open_for(&node, OFlags::RDONLY)?, &times)?,
            }
        }
        Ok(w.finish())
    }

    /// A new descriptor for I/O on a regular file or directory `node`.
    fn open_for(&self, node: &Node, flags: OFlags) -> Result<OwnedFd, Errno> {
        let st = statx_fd(node.fd.as_fd())?;
        let kind = FileType::from_raw_mode(u32::from(st.stx_mode));
        let flags = match kind {
            FileType::RegularFile => flags,
            FileType::Directory => flags | OFlags::DIRECTORY,
            // Device nodes, FIFOs, sockets and symlinks are never opened on the host.
            _ => return Err(Errno::ACCESS),
        };
        let parent = node.parent.as_ref().map(|(d, n)| (d.as_fd(), n.as_slice()));
        self.reopener.reopen(node.fd.as_fd(), parent, flags)
    }

    fn lopen(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let fid = r.u32()?;
        let flags = r.u32()?;
        let write = flags & (L_WRONLY | L_RDWR | L_TRUNC | L_APPEND) != 0;
        if write {
            self.writable()?;
        }
        let node = self.node(fid)?.clone();
        let mut o = open_flags(flags);
        if node.qid.kind == QTDIR {
            if write {
                return Err(Errno::ISDIR);
            }
            o = OFlags::RDONLY;
        }
        let fd = self.open_for(&node, o)?;
        if let Some(Fid::File { open, .. }) = self.fids.get_mut(&fid) {
            *open = Some(fd);
        }
        w.qid(node.qid).u32(0);
        Ok(w.finish())
    }

    fn lcreate(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let fid = r.u32()?;
        let name = r.string()?;
        let flags = r.u32()?;
        let mode = r.u32()?;
        let _gid = r.u32()?;
        self.writable()?;
        let dir = self.dir(fid)?;
        check_name(name)?;
        let o = open_flags(flags) | OFlags::CREATE;
        let fd = super::resolve::open_beneath(dir.as_fd(), name, o, Mode::from_bits_truncate(mode & 0o7777))?;
        let path = walk_one(dir.as_fd(), name)?;
        let qid = qid_of(path.as_fd())?;
        let node = Node { fd: Arc::new(path), parent: Some((dir, name.to_vec())), qid };
        self.fids.insert(fid, Fid::File { node, open: Some(fd) });
        w.qid(qid).u32(0);
        Ok(w.finish())
    }

    fn read(&mut self, mut w: Writer, r: &mut Reader<'_>, limit: usize) -> Reply {
        let fid = r.u32()?;
        let offset = r.u64()?;
        let count = r.u32()? as usize;
        let count = count.min(limit.saturating_sub(HEADER + 4));
        match self.fids.get(&fid).ok_or(Errno::BADF)? {
            Fid::File { open: Some(fd), node } if node.qid.kind != QTDIR => {
                w.u32(0);
                let buf = w.buf_mut();
                let start = buf.len();
                buf.resize(start + count, 0);
                let n = rustix::io::pread(fd, &mut buf[start..], offset)?;
                buf.truncate(start + n);
                buf[HEADER..HEADER + 4].copy_from_slice(&(n as u32).to_le_bytes());
                Ok(w.finish())
            }
            Fid::XattrRead { data } => {
                let from = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
                let part = &data[from..(from + count).min(data.len())];
                w.u32(part.len() as u32).bytes(part);
                Ok(w.finish())
            }
            _ => Err(Errno::BADF),
        }
    }

    fn write(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let fid = r.u32()?;
        let offset = r.u64()?;
        let count = r.u32()?;
        let data = r.bytes(count as usize)?;
        let readonly = self.readonly;
        match self.fids.get_mut(&fid).ok_or(Errno::BADF)? {
            Fid::File { open: Some(fd), .. } => {
                // (A readonly share never opens a file for writing; this is the second wall.)
                if readonly {
                    return Err(Errno::ROFS);
                }
                let n = rustix::io::pwrite(&*fd, data, offset)?;
                w.u32(n as u32);
                Ok(w.finish())
            }
            Fid::XattrWrite { size, data: buf, .. } => {
                let at = usize::try_from(offset).map_err(|_| Errno::INVAL)?;
                let end = at.checked_add(data.len()).filter(|&e| e <= *size).ok_or(Errno::INVAL)?;
                if buf.len() < end {
                    buf.resize(end, 0);
                }
                buf[at..end].copy_from_slice(data);
                w.u32(count);
                Ok(w.finish())
            }
            _ => Err(Errno::BADF),
        }
    }

    fn readdir(&mut self, mut w: Writer, r: &mut Reader<'_>, limit: usize) -> Reply {
        let fid = r.u32()?;
        let offset = r.u64()?;
        let count = (r.u32()? as usize).min(limit.saturating_sub(HEADER + 4));
        let Some(Fid::File { open: Some(fd), node }) = self.fids.get(&fid) else { return Err(Errno::BADF) };
        if node.qid.kind != QTDIR {
            return Err(Errno::NOTDIR);
        }
        // The offset is the cookie of the last entry the client has (0: from the start).
        rustix::fs::seek(fd, rustix::fs::SeekFrom::Start(offset))?;
        let mut space = vec![MaybeUninit::<u8>::uninit(); (count + 512).clamp(4096, 1 << 20)];
        let mut dir = rustix::fs::RawDir::new(fd, &mut space);
        w.u32(0);
        let start = w.buf_mut().len();
        while let Some(entry) = dir.next() {
            let e = entry?;
            let name = e.file_name().to_bytes();
            if w.buf_mut().len() - start + QID_LEN + 8 + 1 + 2 + name.len() > count {
                break;
            }
            let dt = (e.file_type().as_raw_mode() >> 12) as u8;
            let kind = match e.file_type() {
                FileType::Directory => QTDIR,
                FileType::Symlink => QTSYMLINK,
                _ => 0,
            };
            w.qid(Qid { kind, version: 0, path: e.ino() }).u64(e.next_entry_cookie()).u8(dt).string(name);
        }
        let n = (w.buf_mut().len() - start) as u32;
        w.buf_mut()[HEADER..HEADER + 4].copy_from_slice(&n.to_le_bytes());
        Ok(w.finish())
    }

    /// Creates something in directory `dfid` with `make`, then returns its qid.
    fn create(
        &mut self,
        dfid: u32,
        name: &[u8],
        make: impl FnOnce(BorrowedFd<'_>) -> Result<(), Errno>,
    ) -> Result<Qid, Errno> {
        self.writable()?;
        let dir = self.dir(dfid)?;
        check_name(name)?;
        make(dir.as_fd())?;
        qid_of(walk_one(dir.as_fd(), name)?.as_fd())
    }

    fn mkdir(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let dfid = r.u32()?;
        let name = r.string()?;
        let mode = Mode::from_bits_truncate(r.u32()? & 0o7777);
        let _gid = r.u32()?;
        let qid = self.create(dfid, name, |d| rustix::fs::mkdirat(d, name, mode))?;
        w.qid(qid);
        Ok(w.finish())
    }

    fn symlink(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let dfid = r.u32()?;
        let name = r.string()?;
        let target = r.string()?;
        let _gid = r.u32()?;
        // The target is stored as given and never followed by the server.
        let qid = self.create(dfid, name, |d| rustix::fs::symlinkat(target, d, name))?;
        w.qid(qid);
        Ok(w.finish())
    }

    fn mknod(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let dfid = r.u32()?;
        let name = r.string()?;
        let mode = r.u32()?;
        let (_major, _minor, _gid) = (r.u32()?, r.u32()?, r.u32()?);
        let kind = FileType::from_raw_mode(mode);
        // No host device nodes: the guest's own device numbers mean nothing on the host.
        if !matches!(kind, FileType::RegularFile | FileType::Fifo | FileType::Socket) {
            return Err(Errno::PERM);
        }
        let perm = Mode::from_bits_truncate(mode & 0o7777);
        let qid = self.create(dfid, name, |d| rustix::fs::mknodat(d, name, kind, perm, 0))?;
        w.qid(qid);
        Ok(w.finish())
    }

    fn link(&mut self, w: Writer, r: &mut Reader<'_>) -> Reply {
        let dfid = r.u32()?;
        let fid = r.u32()?;
        let name = r.string()?;
        self.writable()?;
        let dir = self.dir(dfid)?;
        check_name(name)?;
        let node = self.node(fid)?;
        if node.qid.kind == QTDIR {
            return Err(Errno::PERM);
        }
        match (self.reopener.proc_path(node.fd.as_fd()), &node.parent) {
            (Some(p), _) => {
                rustix::fs::linkat(rustix::fs::CWD, p.as_str(), dir.as_fd(), name, AtFlags::SYMLINK_FOLLOW)?;
            }
            (None, Some((old_dir, old))) => {
                rustix::fs::linkat(old_dir.as_fd(), old.as_slice(), dir.as_fd(), name, AtFlags::empty())?;
            }
            (None, None) => return Err(Errno::PERM),
        }
        Ok(w.finish())
    }

    fn rename(&mut self, w: Writer, r: &mut Reader<'_>) -> Reply {
        let fid = r.u32()?;
        let dfid = r.u32()?;
        let name = r.string()?;
        self.writable()?;
        let dir = self.dir(dfid)?;
        check_name(name)?;
        let node = self.node(fid)?;
        let Some((old_dir, old)) = &node.parent else { return Err(Errno::BUSY) };
        rustix::fs::renameat(old_dir.as_fd(), old.as_slice(), dir.as_fd(), name)?;
        if let Some(Fid::File { node, .. }) = self.fids.get_mut(&fid) {
            node.parent = Some((dir, name.to_vec()));
        }
        Ok(w.finish())
    }

    fn renameat(&mut self, w: Writer, r: &mut Reader<'_>) -> Reply {
        let olddir = r.u32()?;
        let oldname = r.string()?;
        let newdir = r.u32()?;
        let newname = r.string()?;
        self.writable()?;
        let (a, b) = (self.dir(olddir)?, self.dir(newdir)?);
        check_name(oldname)?;
        check_name(newname)?;
        rustix::fs::renameat(a.as_fd(), oldname, b.as_fd(), newname)?;
        Ok(w.finish())
    }

    fn unlinkat(&mut self, w: Writer, r: &mut Reader<'_>) -> Reply {
        let dfid = r.u32()?;
        let name = r.string()?;
        let flags = r.u32()?;
        self.writable()?;
        let dir = self.dir(dfid)?;
        check_name(name)?;
        let f = if flags & AT_REMOVEDIR != 0 { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        rustix::fs::unlinkat(dir.as_fd(), name, f)?;
        Ok(w.finish())
    }

    fn readlink(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let node = self.node(r.u32()?)?;
        if node.qid.kind != QTSYMLINK {
            return Err(Errno::INVAL);
        }
        let target = rustix::fs::readlinkat(node.fd.as_fd(), "", Vec::new())?;
        w.string(target.as_bytes());
        Ok(w.finish())
    }

    fn statfs(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let node = self.node(r.u32()?)?;
        let s = rustix::fs::fstatvfs(node.fd.as_fd())?;
        w.u32(V9FS_MAGIC)
            .u32(s.f_bsize as u32)
            .u64(s.f_blocks)
            .u64(s.f_bfree)
            .u64(s.f_bavail)
            .u64(s.f_files)
            .u64(s.f_ffree)
            .u64(s.f_fsid)
            .u32(s.f_namemax as u32);
        Ok(w.finish())
    }

    fn fsync(&mut self, w: Writer, r: &mut Reader<'_>) -> Reply {
        let fid = r.u32()?;
        let datasync = r.u32()?;
        let Some(Fid::File { open: Some(fd), .. }) = self.fids.get(&fid) else { return Err(Errno::BADF) };
        if datasync != 0 {
            rustix::fs::fdatasync(fd)?;
        } else {
            rustix::fs::fsync(fd)?;
        }
        Ok(w.finish())
    }

    fn lock(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let fid = r.u32()?;
        let (_kind, _flags, _start, _len, _pid) = (r.u8()?, r.u32()?, r.u64()?, r.u64()?, r.u32()?);
        let _client = r.string()?;
        self.node(fid)?;
        w.u8(LOCK_SUCCESS);
        Ok(w.finish())
    }

    fn getlock(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let fid = r.u32()?;
        let (_kind, start, len, pid) = (r.u8()?, r.u64()?, r.u64()?, r.u32()?);
        let client = r.string()?;
        self.node(fid)?;
        w.u8(F_UNLCK).u64(start).u64(len).u32(pid).string(client);
        Ok(w.finish())
    }

    /// Where xattr calls go for `node`: its /proc path, or a descriptor opened read-only.
    fn xattr_target(&self, node: &Node) -> Result<XattrTarget, Errno> {
        if node.qid.kind == QTSYMLINK {
            // Linux allows no user.* attributes on symlinks; the server touches none.
            return Err(Errno::OPNOTSUPP);
        }
        Ok(match self.reopener.proc_path(node.fd.as_fd()) {
            Some(p) => XattrTarget::Path(p),
            None => XattrTarget::Fd(self.open_for(node, OFlags::RDONLY)?),
        })
    }

    fn xattrwalk(&mut self, mut w: Writer, r: &mut Reader<'_>) -> Reply {
        let fid = r.u32()?;
        let newfid = r.u32()?;
        let name = r.string()?;
        let node = self.node(fid)?;
        if newfid != fid && self.fids.contains_key(&newfid) {
            return Err(Errno::INVAL);
        }
        let data = if node.qid.kind == QTSYMLINK {
            if name.is_empty() {
                Vec::new()
            } else {
                return Err(Errno::NODATA);
            }
        } else {
            let target = self.xattr_target(node)?;
            let mut buf = vec![0u8; XATTR_MAX];
            let b = &mut buf[..];
            let n = match (&target, name.is_empty()) {
                (XattrTarget::Path(p), true) => rustix::fs::listxattr(p.as_str(), b)?,
                (XattrTarget::Path(p), false) => rustix::fs::getxattr(p.as_str(), name, b)?,
                (XattrTarget::Fd(fd), true) => rustix::fs::flistxattr(fd, b)?,
                (XattrTarget::Fd(fd), false) => rustix::fs::fgetxattr(fd, name, b)?,
            };
            buf.truncate(n);
            buf
        };
        w.u64(data.len() as u64);
        self.insert(newfid, Fid::XattrRead { data })?;
        Ok(w.finish())
    }

    fn xattrcreate(&mut self, w: Writer, r: &mut Reader<'_>) -> Reply {
        let fid = r.u32()?;
        let name = r.string()?;
        let size = r.u64()?;
        let flags = r.u32()?;
        self.writable()?;
        let node = self.node(fid)?.clone();
        let size = usize::try_from(size).ok().filter(|&s| s <= XATTR_MAX).ok_or(Errno::TOOBIG)?;
        if name.is_empty() || flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
            return Err(Errno::INVAL);
        }
        self.xattr_target(&node)?;
        self.fids.insert(fid, Fid::XattrWrite { node, name: name.to_vec(), size, flags, data: Vec::new() });
        Ok(w.finish())
    }
}

/// A file xattr calls reach by path (/proc/self/fd/N) or by an open descriptor.
enum XattrTarget {
    Path(String),
    Fd(OwnedFd),
}

impl XattrTarget {
    fn with<T>(
        &self,
        by_path: impl FnOnce(&str) -> rustix::io::Result<T>,
        by_fd: impl FnOnce(BorrowedFd<'_>) -> rustix::io::Result<T>,
    ) -> Result<T, Errno> {
        match self {
            XattrTarget::Path(p) => by_path(p),
            XattrTarget::Fd(fd) => by_fd(fd.as_fd()),
        }
    }
}

fn xattr_flags(flags: u32) -> XattrFlags {
    let mut f = XattrFlags::empty();
    if flags & XATTR_CREATE != 0 {
        f |= XattrFlags::CREATE;
    }
    if flags & XATTR_REPLACE != 0 {
        f |= XattrFlags::REPLACE;
    }
    f
}

/// Host open flags for 9P2000.L open flags (access mode, exclusive create, truncate, append,
/// sync; the rest are
/// the client's business or refused by design: O_NOFOLLOW is always added).
fn open_flags(l: u32) -> OFlags {
    let mut o = match l & 3 {
        L_WRONLY => OFlags::WRONLY,
        L_RDWR => OFlags::RDWR,
        _ => OFlags::RDONLY,
    };
    if l & L_EXCL != 0 {
        o |= OFlags::EXCL;
    }
    if l & L_TRUNC != 0 {
        o |= OFlags::TRUNC;
    }
    if l & L_APPEND != 0 {
        o |= OFlags::APPEND;
    }
    if l & L_DSYNC != 0 {
        o |= OFlags::DSYNC;
    }
    if l & L_SYNC != 0 {
        o |= OFlags::SYNC;
    }
    o
}

fn open_root(path: &Path) -> Result<OwnedFd, Errno> {
    rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
}

fn statx_fd(fd: BorrowedFd<'_>) -> Result<rustix::fs::Statx, Errno> {
    rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS | StatxFlags::BTIME,
    )
}

fn qid_from(st: &rustix::fs::Statx) -> Qid {
    let kind = match FileType::from_raw_mode(u32::from(st.stx_mode)) {
        FileType::Directory => QTDIR,
        FileType::Symlink => QTSYMLINK,
        _ => 0,
    };
    Qid { kind, version: 0, path: st.stx_ino }
}

fn qid_of(fd: BorrowedFd<'_>) -> Result<Qid, Errno> {
    Ok(qid_from(&statx_fd(fd)?))
}

/// Each walked file holds a descriptor: lift the soft limit to the hard one so a guest's big tree
/// walk does not stop at the usual 1024.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        l.current = l.maximum;
        let _ = setrlimit(Resource::Nofile, l);
    }
}
