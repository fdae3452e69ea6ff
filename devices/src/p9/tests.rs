//! The server driven with encoded 9P2000.L requests over a temporary host folder; every expected
//! value comes from the host (std::fs, the kernel's errno) or the protocol description.

use super::server::{Server, ShareConfig};
use super::wire::{msg, Reader, Writer};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const ROOT: u32 = 1;
const EINVAL: u32 = 22;
const ENOENT: u32 = 2;
const EROFS: u32 = 30;
const EBADF: u32 = 9;
const EPERM: u32 = 1;
const ELOOP: u32 = 40;
const ENOTDIR: u32 = 20;

/// A temporary folder removed at drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("strata-p9-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test client: builds requests, checks the reply's tag and type.
struct Client {
    server: Server,
    tag: u16,
}

/// A reply: its type and body.
struct Reply {
    kind: u8,
    body: Vec<u8>,
}

impl Reply {
    fn reader(&self) -> Reader<'_> {
        Reader::new(&self.body)
    }
    /// The errno of an Rlerror (panics on anything else: a test failure).
    fn errno(&self) -> u32 {
        assert_eq!(self.kind, msg::RLERROR, "expected Rlerror");
        self.reader().u32().unwrap()
    }
    fn ok(&self, kind: u8) -> Reader<'_> {
        if self.kind == msg::RLERROR {
            panic!("expected R-message {}, got Rlerror {}", kind + 1, self.reader().u32().unwrap());
        }
        assert_eq!(self.kind, kind + 1);
        self.reader()
    }
}

enum Arg<'a> {
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    S(&'a [u8]),
    Raw(&'a [u8]),
}
use Arg::*;

impl Client {
    fn new(root: &Path, readonly: bool) -> Self {
        let server = Server::new(&ShareConfig { root: root.to_path_buf(), readonly }).unwrap();
        let mut c = Client { server, tag: 0 };
        let r = c.call(msg::TVERSION, &[U32(512 << 10), S(b"9P2000.L")]);
        let mut rd = r.ok(msg::TVERSION);
        assert_eq!(rd.u32().unwrap(), 512 << 10);
        assert_eq!(rd.string().unwrap(), b"9P2000.L");
        c.call(msg::TATTACH, &[U32(ROOT), U32(!0), S(b"root"), S(b""), U32(0)]).ok(msg::TATTACH);
        c
    }

    fn raw(&mut self, bytes: &[u8]) -> Reply {
        let out = self.server.handle(bytes, 1 << 20);
        let mut r = Reader::new(&out);
        let size = r.u32().unwrap() as usize;
        assert_eq!(size, out.len(), "reply size field");
        let kind = r.u8().unwrap();
        let _tag = r.u16().unwrap();
        Reply { kind, body: out[7..].to_vec() }
    }

    fn call(&mut self, kind: u8, args: &[Arg<'_>]) -> Reply {
        self.tag = self.tag.wrapping_add(1);
        let mut w = Writer::new(kind, self.tag);
        for a in args {
            match a {
                U8(v) => w.u8(*v),
                U16(v) => w.u16(*v),
                U32(v) => w.u32(*v),
                U64(v) => w.u64(*v),
                S(s) => w.string(s),
                Raw(b) => w.bytes(b),
            };
        }
        let bytes = w.finish();
        let out = self.server.handle(&bytes, 1 << 20);
        let mut r = Reader::new(&out);
        let _ = r.u32().unwrap();
        let k = r.u8().unwrap();
        assert_eq!(r.u16().unwrap(), self.tag, "reply tag");
        Reply { kind: k, body: out[7..].to_vec() }
    }

    /// Walks `names` from the root into `fid`.
    fn walk(&mut self, fid: u32, names: &[&str]) -> Reply {
        let mut args = vec![U32(ROOT), U32(fid), U16(names.len() as u16)];
        args.extend(names.iter().map(|n| S(n.as_bytes())));
        self.call(msg::TWALK, &args)
    }

    fn walk_ok(&mut self, fid: u32, names: &[&str]) {
        let r = self.walk(fid, names);
        assert_eq!(r.ok(msg::TWALK).u16().unwrap() as usize, names.len());
    }

    fn open(&mut self, fid: u32, flags: u32) -> Reply {
        self.call(msg::TLOPEN, &[U32(fid), U32(flags)])
    }

    fn read(&mut self, fid: u32, offset: u64, count: u32) -> Vec<u8> {
        let r = self.call(msg::TREAD, &[U32(fid), U64(offset), U32(count)]);
        let mut rd = r.ok(msg::TREAD);
        let n = rd.u32().unwrap() as usize;
        rd.bytes(n).unwrap().to_vec()
    }

    fn write(&mut self, fid: u32, offset: u64, data: &[u8]) -> Reply {
        self.call(msg::TWRITE, &[U32(fid), U64(offset), U32(data.len() as u32), Raw(data)])
    }

    fn clunk(&mut self, fid: u32) -> Reply {
        self.call(msg::TCLUNK, &[U32(fid)])
    }

    /// All names in directory fid (opened here), reading `count` bytes at a time.
    fn readdir_all(&mut self, fid: u32, count: u32) -> Vec<(String, u8, u64)> {
        self.open(fid, 0).ok(msg::TLOPEN);
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let r = self.call(msg::TREADDIR, &[U32(fid), U64(offset), U32(count)]);
            let mut rd = r.ok(msg::TREADDIR);
            let n = rd.u32().unwrap() as usize;
            if n == 0 {
                return out;
            }
            let data = rd.bytes(n).unwrap();
            let mut e = Reader::new(data);
            while let Ok(kind) = e.u8() {
                let _version = e.u32().unwrap();
                let ino = e.u64().unwrap();
                offset = e.u64().unwrap();
                let _dt = e.u8().unwrap();
                let name = String::from_utf8(e.string().unwrap().to_vec()).unwrap();
                out.push((name, kind, ino));
            }
        }
    }
}

#[test]
fn getattr_matches_the_host() {
    let d = TempDir::new("getattr");
    std::fs::write(d.0.join("f"), b"hello").unwrap();
    std::fs::set_permissions(d.0.join("f"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let mut c = Client::new(&d.0, false);
    c.walk_ok(2, &["f"]);
    let r = c.call(msg::TGETATTR, &[U32(2), U64(0x3fff)]);
    let mut rd = r.ok(msg::TGETATTR);
    let md = std::fs::symlink_metadata(d.0.join("f")).unwrap();
    let valid = rd.u64().unwrap();
    assert_eq!(valid & 0x7ff, 0x7ff);
    let (qtype, _v, qpath) = (rd.u8().unwrap(), rd.u32().unwrap(), rd.u64().unwrap());
    assert_eq!((qtype, qpath), (0, md.ino()));
    assert_eq!(rd.u32().unwrap(), md.mode());
    assert_eq!(rd.u32().unwrap(), md.uid());
    assert_eq!(rd.u32().unwrap(), md.gid());
    assert_eq!(rd.u64().unwrap(), md.nlink());
    assert_eq!(rd.u64().unwrap(), md.rdev());
    assert_eq!(rd.u64().unwrap(), md.size());
    assert_eq!(rd.u64().unwrap(), md.blksize());
    assert_eq!(rd.u64().unwrap(), md.blocks());
    assert_eq!((rd.u64().unwrap() as i64, rd.u64().unwrap() as i64), (md.atime(), md.atime_nsec()));
    assert_eq!((rd.u64().unwrap() as i64, rd.u64().unwrap() as i64), (md.mtime(), md.mtime_nsec()));
    assert_eq!((rd.u64().unwrap() as i64, rd.u64().unwrap() as i64), (md.ctime(), md.ctime_nsec()));
    // The root is a directory qid.
    c.walk_ok(3, &[]);
    let r = c.call(msg::TGETATTR, &[U32(3), U64(0x7ff)]);
    let mut rd = r.ok(msg::TGETATTR);
    rd.u64().unwrap();
    assert_eq!(rd.u8().unwrap(), 0x80);
}

#[test]
fn create_write_read_truncate_and_offsets() {
    let d = TempDir::new("rw");
    let mut c = Client::new(&d.0, false);
    c.walk_ok(2, &[]);
    // Lcreate: O_RDWR, mode 0644; the fid becomes the open file.
    let r = c.call(msg::TLCREATE, &[U32(2), S(b"new"), U32(2), U32(0o644), U32(0)]);
    r.ok(msg::TLCREATE);
    // O_EXCL on an existing name fails as on the host.
    c.walk_ok(9, &[]);
    let r = c.call(msg::TLCREATE, &[U32(9), S(b"new"), U32(2 | 0o200), U32(0o644), U32(0)]);
    assert_eq!(r.errno(), 17, "EEXIST");
    assert_eq!(c.write(2, 0, b"0123456789").ok(msg::TWRITE).u32().unwrap(), 10);
    assert_eq!(c.write(2, 20, b"xy").ok(msg::TWRITE).u32().unwrap(), 2);
    let host = std::fs::read(d.0.join("new")).unwrap();
    let mut want = b"0123456789".to_vec();
    want.resize(20, 0);
    want.extend_from_slice(b"xy");
    assert_eq!(host, want);
    assert_eq!(std::fs::metadata(d.0.join("new")).unwrap().mode() & 0o777, 0o644 & !umask());
    assert_eq!(c.read(2, 3, 4), b"3456");
    assert_eq!(c.read(2, 21, 100), b"y");
    assert_eq!(c.read(2, 1000, 100), b"");
    // Truncate through setattr (valid = SIZE).
    c.walk_ok(3, &["new"]);
    let set = |size| [U32(3), U32(0x8), U32(0), U32(0), U32(0), U64(size), U64(0), U64(0), U64(0), U64(0)];
    c.call(msg::TSETATTR, &set(5)).ok(msg::TSETATTR);
    assert_eq!(std::fs::read(d.0.join("new")).unwrap(), b"01234");
    // chmod and explicit mtime.
    let args =
        [U32(3), U32(0x1 | 0x20 | 0x100), U32(0o600), U32(0), U32(0), U64(0), U64(0), U64(0), U64(1_000_000), U64(7)];
    c.call(msg::TSETATTR, &args).ok(msg::TSETATTR);
    let md = std::fs::metadata(d.0.join("new")).unwrap();
    assert_eq!((md.mode() & 0o777, md.mtime(), md.mtime_nsec()), (0o600, 1_000_000, 7));
    // Lopen with O_TRUNC empties the file; a read of an open-for-write-only fid works on the host
    // side only as the host allows (EBADF for O_WRONLY).
    c.walk_ok(4, &["new"]);
    c.open(4, 1 | 0o1000).ok(msg::TLOPEN);
    assert_eq!(std::fs::metadata(d.0.join("new")).unwrap().len(), 0);
    assert_eq!(c.call(msg::TREAD, &[U32(4), U64(0), U32(10)]).errno(), EBADF);
    c.call(msg::TFSYNC, &[U32(4), U32(0)]).ok(msg::TFSYNC);
    // A 1 MiB file read back in msize-bounded pieces.
    let big: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(d.0.join("big"), &big).unwrap();
    c.walk_ok(5, &["big"]);
    c.open(5, 0).ok(msg::TLOPEN);
    let mut got = Vec::new();
    loop {
        let part = c.read(5, got.len() as u64, 1 << 20);
        assert!(part.len() <= (512 << 10) - 11, "a reply never exceeds msize");
        if part.is_empty() {
            break;
        }
        got.extend_from_slice(&part);
    }
    assert!(got == big);
}

fn umask() -> u32 {
    // The host's umask applies to creation modes, as it would for a local process.
    let p = std::env::temp_dir().join(format!("strata-p9-umask-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    std::fs::File::create(&p).unwrap();
    let m = std::fs::metadata(&p).unwrap().mode() & 0o777;
    std::fs::remove_file(&p).unwrap();
    !m & 0o666
}

#[test]
fn namespace_operations_match_the_host() {
    let d = TempDir::new("ns");
    std::fs::create_dir(d.0.join("a")).unwrap();
    std::fs::create_dir(d.0.join("b")).unwrap();
    std::fs::write(d.0.join("a/f"), b"data").unwrap();
    let mut c = Client::new(&d.0, false);
    c.walk_ok(2, &["a"]);
    c.walk_ok(3, &["b"]);
    // mkdir, symlink, mknod (FIFO), link.
    let r = c.call(msg::TMKDIR, &[U32(3), S(b"sub"), U32(0o755), U32(0)]);
    assert_eq!(r.ok(msg::TMKDIR).u8().unwrap(), 0x80);
    assert!(d.0.join("b/sub").is_dir());
    let r = c.call(msg::TSYMLINK, &[U32(3), S(b"ln"), S(b"../a/f"), U32(0)]);
    assert_eq!(r.ok(msg::TSYMLINK).u8().unwrap(), 0x02);
    assert_eq!(std::fs::read_link(d.0.join("b/ln")).unwrap(), Path::new("../a/f"));
    let r = c.call(msg::TMKNOD, &[U32(3), S(b"fifo"), U32(0o010644), U32(0), U32(0), U32(0)]);
    r.ok(msg::TMKNOD);
    assert!(std::fs::symlink_metadata(d.0.join("b/fifo")).unwrap().file_type().is_fifo());
    let r = c.call(msg::TMKNOD, &[U32(3), S(b"null"), U32(0o020666), U32(1), U32(3), U32(0)]);
    assert_eq!(r.errno(), EPERM, "character devices are refused");
    c.walk_ok(4, &["a", "f"]);
    c.call(msg::TLINK, &[U32(3), U32(4), S(b"hard")]).ok(msg::TLINK);
    assert_eq!(std::fs::metadata(d.0.join("a/f")).unwrap().nlink(), 2);
    assert_eq!(std::fs::read(d.0.join("b/hard")).unwrap(), b"data");
    // readlink.
    c.walk_ok(5, &["b", "ln"]);
    let r = c.call(msg::TREADLINK, &[U32(5)]);
    assert_eq!(r.ok(msg::TREADLINK).string().unwrap(), b"../a/f");
    // renameat across directories, then the file still opens through an old fid (it follows
    // the file, not the name).
    c.call(msg::TRENAMEAT, &[U32(2), S(b"f"), U32(3), S(b"moved")]).ok(msg::TRENAMEAT);
    assert!(!d.0.join("a/f").exists());
    c.open(4, 0).ok(msg::TLOPEN);
    assert_eq!(c.read(4, 0, 10), b"data");
    // Trename of a fid.
    c.walk_ok(6, &["b", "hard"]);
    c.call(msg::TRENAME, &[U32(6), U32(2), S(b"back")]).ok(msg::TRENAME);
    assert_eq!(std::fs::read(d.0.join("a/back")).unwrap(), b"data");
    // unlinkat of a file and of a directory (AT_REMOVEDIR), remove of a fid.
    c.call(msg::TUNLINKAT, &[U32(2), S(b"back"), U32(0)]).ok(msg::TUNLINKAT);
    assert!(!d.0.join("a/back").exists());
    assert_eq!(c.call(msg::TUNLINKAT, &[U32(3), S(b"sub"), U32(0)]).errno(), 21, "EISDIR without AT_REMOVEDIR");
    c.call(msg::TUNLINKAT, &[U32(3), S(b"sub"), U32(0x200)]).ok(msg::TUNLINKAT);
    assert!(!d.0.join("b/sub").exists());
    c.walk_ok(7, &["b", "fifo"]);
    c.call(msg::TREMOVE, &[U32(7)]).ok(msg::TREMOVE);
    assert!(!d.0.join("b/fifo").exists());
    assert_eq!(c.clunk(7).errno(), EBADF, "remove clunks the fid");
    // statfs against the host's statvfs (via df-like numbers from rustix, an independent call
    // on the folder's path).
    let r = c.call(msg::TSTATFS, &[U32(ROOT)]);
    let mut rd = r.ok(msg::TSTATFS);
    let vfs = rustix::fs::statvfs(&d.0).unwrap();
    assert_eq!(rd.u32().unwrap(), 0x0102_1997);
    assert_eq!(u64::from(rd.u32().unwrap()), vfs.f_bsize);
    assert_eq!(rd.u64().unwrap(), vfs.f_blocks);
    // Locks: granted; getlock reports F_UNLCK.
    let r = c.call(msg::TLOCK, &[U32(4), U8(1), U32(0), U64(0), U64(0), U32(42), S(b"guest")]);
    assert_eq!(r.ok(msg::TLOCK).u8().unwrap(), 0);
    let r = c.call(msg::TGETLOCK, &[U32(4), U8(1), U64(0), U64(10), U32(42), S(b"guest")]);
    assert_eq!(r.ok(msg::TGETLOCK).u8().unwrap(), 2);
    c.call(msg::TFLUSH, &[U16(3)]).ok(msg::TFLUSH);
}

#[test]
fn readdir_pages_through_thousands_of_entries() {
    let d = TempDir::new("readdir");
    for i in 0..3000 {
        std::fs::write(d.0.join(format!("file-{i:05}")), b"").unwrap();
    }
    std::fs::create_dir(d.0.join("dir")).unwrap();
    let mut c = Client::new(&d.0, false);
    c.walk_ok(2, &[]);
    let entries = c.readdir_all(2, 8192);
    let mut names: Vec<String> = entries.iter().map(|e| e.0.clone()).collect();
    names.sort();
    let mut want: Vec<String> =
        std::fs::read_dir(&d.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    want.push(".".into());
    want.push("..".into());
    want.sort();
    assert_eq!(names, want);
    let dir = entries.iter().find(|e| e.0 == "dir").unwrap();
    assert_eq!((dir.1, dir.2), (0x80, std::fs::metadata(d.0.join("dir")).unwrap().ino()));
}

#[test]
fn xattrs_round_trip_through_the_host() {
    let d = TempDir::new("xattr");
    std::fs::write(d.0.join("f"), b"").unwrap();
    // Not every host filesystem has user xattrs (tmpfs before 6.6): probe with the host first.
    if rustix::fs::setxattr(d.0.join("f"), "user.probe", b"1", rustix::fs::XattrFlags::empty()).is_err() {
        eprintln!("skipped: the temporary folder's filesystem has no user xattrs");
        return;
    }
    rustix::fs::removexattr(d.0.join("f"), "user.probe").unwrap();
    let mut c = Client::new(&d.0, false);
    c.walk_ok(2, &["f"]);
    c.walk_ok(3, &["f"]);
    c.call(msg::TXATTRCREATE, &[U32(3), S(b"user.colour"), U64(4), U32(0)]).ok(msg::TXATTRCREATE);
    c.write(3, 0, b"bl").ok(msg::TWRITE);
    c.write(3, 2, b"ue").ok(msg::TWRITE);
    c.clunk(3).ok(msg::TCLUNK);
    let mut buf = [0u8; 16];
    let n = rustix::fs::getxattr(d.0.join("f"), "user.colour", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"blue");
    let r = c.call(msg::TXATTRWALK, &[U32(2), U32(4), S(b"user.colour")]);
    assert_eq!(r.ok(msg::TXATTRWALK).u64().unwrap(), 4);
    assert_eq!(c.read(4, 0, 100), b"blue");
    let r = c.call(msg::TXATTRWALK, &[U32(2), U32(5), S(b"")]);
    let n = r.ok(msg::TXATTRWALK).u64().unwrap();
    let list = c.read(5, 0, 100);
    assert_eq!(list.len() as u64, n);
    assert!(list.split(|&b| b == 0).any(|s| s == b"user.colour"));
    // Removal: size 0 with XATTR_REPLACE.
    c.walk_ok(6, &["f"]);
    c.call(msg::TXATTRCREATE, &[U32(6), S(b"user.colour"), U64(0), U32(2)]).ok(msg::TXATTRCREATE);
    c.clunk(6).ok(msg::TCLUNK);
    assert!(rustix::fs::getxattr(d.0.join("f"), "user.colour", &mut buf[..]).is_err());
    assert_eq!(c.call(msg::TXATTRWALK, &[U32(2), U32(7), S(b"user.colour")]).errno(), 61, "ENODATA");
}

#[test]
fn readonly_share_refuses_every_write_with_erofs() {
    let d = TempDir::new("ro");
    std::fs::create_dir(d.0.join("dir")).unwrap();
    std::fs::write(d.0.join("f"), b"keep").unwrap();
    let mut c = Client::new(&d.0, true);
    c.walk_ok(2, &["dir"]);
    c.walk_ok(3, &["f"]);
    let cases: Vec<(u8, Vec<Arg<'_>>)> = vec![
        (msg::TLCREATE, vec![U32(2), S(b"x"), U32(2), U32(0o644), U32(0)]),
        (msg::TMKDIR, vec![U32(2), S(b"x"), U32(0o755), U32(0)]),
        (msg::TSYMLINK, vec![U32(2), S(b"x"), S(b"y"), U32(0)]),
        (msg::TMKNOD, vec![U32(2), S(b"x"), U32(0o010644), U32(0), U32(0), U32(0)]),
        (msg::TLINK, vec![U32(2), U32(3), S(b"x")]),
        (msg::TRENAMEAT, vec![U32(ROOT), S(b"f"), U32(2), S(b"x")]),
        (msg::TRENAME, vec![U32(3), U32(2), S(b"x")]),
        (msg::TUNLINKAT, vec![U32(ROOT), S(b"f"), U32(0)]),
        (msg::TSETATTR, vec![U32(3), U32(0x8), U32(0), U32(0), U32(0), U64(0), U64(0), U64(0), U64(0), U64(0)]),
        (msg::TXATTRCREATE, vec![U32(3), S(b"user.a"), U64(1), U32(0)]),
        (msg::TLOPEN, vec![U32(3), U32(1)]),
        (msg::TLOPEN, vec![U32(3), U32(2)]),
        (msg::TLOPEN, vec![U32(3), U32(0o1000)]),
        (msg::TREMOVE, vec![U32(3)]),
    ];
    for (kind, args) in cases {
        assert_eq!(c.call(kind, &args).errno(), EROFS, "message type {kind}");
    }
    assert_eq!(std::fs::read(d.0.join("f")).unwrap(), b"keep");
    assert_eq!(std::fs::read_dir(d.0.join("dir")).unwrap().count(), 0);
    // Reading works.
    c.walk_ok(4, &["f"]);
    c.open(4, 0).ok(msg::TLOPEN);
    assert_eq!(c.read(4, 0, 10), b"keep");
}

#[test]
fn malformed_messages_get_rlerror() {
    let d = TempDir::new("bad");
    let mut c = Client::new(&d.0, false);
    // Shorter than a header.
    assert_eq!(c.raw(&[1, 2, 3]).errno(), EINVAL);
    assert_eq!(c.raw(&[]).errno(), EINVAL);
    // Size field larger than the bytes, smaller than a header, larger than msize.
    assert_eq!(c.raw(&[100, 0, 0, 0, msg::TCLUNK, 1, 0, 1, 0, 0, 0]).errno(), EINVAL);
    assert_eq!(c.raw(&[3, 0, 0, 0, msg::TCLUNK, 1, 0, 1, 0, 0, 0]).errno(), EINVAL);
    let mut huge = vec![0u8; (600 << 10) + 7];
    let n = huge.len() as u32;
    huge[..4].copy_from_slice(&n.to_le_bytes());
    huge[4] = msg::TWRITE;
    assert_eq!(c.raw(&huge).errno(), EINVAL);
    // Fields missing.
    assert_eq!(c.call(msg::TWALK, &[U32(ROOT)]).errno(), EINVAL);
    assert_eq!(c.call(msg::TGETATTR, &[U16(1)]).errno(), EINVAL);
    // A string whose length runs past the end.
    assert_eq!(c.call(msg::TWALK, &[U32(ROOT), U32(9), U16(1), U16(50), Raw(b"ab")]).errno(), EINVAL);
    // A write whose count is past the end.
    c.walk_ok(2, &[]);
    assert_eq!(c.call(msg::TWRITE, &[U32(2), U64(0), U32(100), Raw(b"abc")]).errno(), EINVAL);
    // Unknown and R-message types.
    assert_eq!(c.call(0, &[]).errno(), 95);
    assert_eq!(c.call(msg::TWALK + 1, &[]).errno(), 95);
    assert_eq!(c.call(255, &[U64(0)]).errno(), 95);
    // Fids that do not exist, or in use.
    assert_eq!(c.call(msg::TGETATTR, &[U32(77), U64(0)]).errno(), EBADF);
    assert_eq!(c.clunk(77).errno(), EBADF);
    assert_eq!(c.call(msg::TREAD, &[U32(77), U64(0), U32(1)]).errno(), EBADF);
    assert_eq!(c.walk(2, &[]).errno(), EINVAL, "newfid 2 is in use");
    // More than 16 names in a walk.
    let names = ["a"; 17];
    assert_eq!(c.walk(20, &names).errno(), EINVAL);
    // Reading a directory that is not open, and readdir of a file.
    assert_eq!(c.call(msg::TREADDIR, &[U32(2), U64(0), U32(100)]).errno(), EBADF);
    // Every truncation of a valid request is answered, never a panic.
    let mut w = Writer::new(msg::TLCREATE, 5);
    w.u32(2).string(b"name").u32(2).u32(0o644).u32(0);
    let full = w.finish();
    for cut in 0..full.len() {
        let mut m = full[..cut].to_vec();
        if m.len() >= 4 {
            m[..4].copy_from_slice(&(cut as u32).to_le_bytes());
        }
        assert_eq!(c.raw(&m).kind, msg::RLERROR, "cut at {cut}");
    }
}

#[test]
fn escapes_fail() {
    let top = TempDir::new("escape");
    let share = top.0.join("share");
    let outside = top.0.join("outside");
    std::fs::create_dir_all(share.join("d/inner")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"host secret").unwrap();
    std::fs::write(share.join("d/inner/x"), b"inside").unwrap();
    std::os::unix::fs::symlink("/", share.join("toroot")).unwrap();
    std::os::unix::fs::symlink("../..", share.join("up")).unwrap();
    std::os::unix::fs::symlink("../outside/secret", share.join("tosecret")).unwrap();
    let mut c = Client::new(&share, false);
    // A symlink to / is a symlink to the guest: its qid says so, it reads back as "/", and a walk
    // through it stops at the link.
    let r = c.walk(2, &["toroot"]);
    let mut rd = r.ok(msg::TWALK);
    assert_eq!((rd.u16().unwrap(), rd.u8().unwrap()), (1, 0x02));
    assert_eq!(c.call(msg::TREADLINK, &[U32(2)]).ok(msg::TREADLINK).string().unwrap(), b"/");
    let r = c.walk(3, &["toroot", "etc"]);
    assert_eq!(r.ok(msg::TWALK).u16().unwrap(), 1, "the walk stops at the symlink");
    assert_eq!(c.walk(3, &["toroot", "etc"]).kind, msg::TWALK + 1);
    assert_eq!(c.call(msg::TGETATTR, &[U32(3), U64(0)]).errno(), EBADF, "a partial walk creates no fid");
    // Opening a symlink, or creating through one, never reaches its target.
    assert_eq!(c.open(2, 0).errno(), 13, "EACCES: symlinks are not opened on the host");
    c.walk_ok(4, &["tosecret"]);
    assert_eq!(c.open(4, 0).errno(), 13);
    assert_eq!(c.call(msg::TLCREATE, &[U32(4), S(b"x"), U32(2), U32(0o644), U32(0)]).errno(), ENOTDIR);
    c.walk_ok(5, &[]);
    let r = c.call(msg::TLCREATE, &[U32(5), S(b"tosecret"), U32(2 | 0o1000), U32(0o644), U32(0)]);
    assert_eq!(r.errno(), ELOOP, "O_CREAT on an existing symlink does not follow it");
    assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"host secret");
    // "..", ".", "/" and empty names are refused in walks and in every name argument.
    for bad in ["..", ".", "", "a/b", "../outside"] {
        assert_eq!(c.walk(6, &[bad]).errno(), EINVAL, "walk {bad:?}");
        assert_eq!(c.call(msg::TMKDIR, &[U32(ROOT), S(bad.as_bytes()), U32(0o755), U32(0)]).errno(), EINVAL);
    }
    assert_eq!(c.walk(6, &["up", ".."]).ok(msg::TWALK).u16().unwrap(), 1);
    assert_eq!(c.call(msg::TRENAMEAT, &[U32(ROOT), S(b"d"), U32(ROOT), S(b"../moved")]).errno(), EINVAL);
    // A directory renamed on the host to outside the share while the guest holds it: the fid
    // follows the directory, and nothing above it can be reached from it.
    c.walk_ok(7, &["d"]);
    std::fs::rename(share.join("d"), outside.join("d")).unwrap();
    assert_eq!(c.walk(8, &["d"]).errno(), ENOENT);
    let r = c.call(msg::TWALK, &[U32(7), U32(8), U16(1), S(b"..")]);
    assert_eq!(r.errno(), EINVAL);
    let r = c.call(msg::TWALK, &[U32(7), U32(8), U16(1), S(b"secret")]);
    assert_eq!(r.errno(), ENOENT, "the outside folder's files are not beneath the held directory");
    // A FIFO and (when the host lets us make one) a device node are never opened on the host.
    rustix::fs::mknodat(rustix::fs::CWD, share.join("fifo"), rustix::fs::FileType::Fifo, 0o644.into(), 0).unwrap();
    c.walk_ok(9, &["fifo"]);
    assert_eq!(c.open(9, 0).errno(), 13, "a FIFO open would block the server; refused");
    if rustix::fs::mknodat(
        rustix::fs::CWD,
        share.join("null"),
        rustix::fs::FileType::CharacterDevice,
        0o666.into(),
        rustix::fs::makedev(1, 3),
    )
    .is_ok()
    {
        c.walk_ok(10, &["null"]);
        assert_eq!(c.open(10, 2).errno(), 13);
    }
}

#[test]
fn version_resets_fids_and_caps_msize() {
    let d = TempDir::new("version");
    let mut c = Client::new(&d.0, false);
    c.walk_ok(2, &[]);
    let r = c.call(msg::TVERSION, &[U32(64 << 20), S(b"9P2000.L")]);
    assert_eq!(r.ok(msg::TVERSION).u32().unwrap(), super::MAX_MSIZE);
    assert_eq!(c.clunk(2).errno(), EBADF);
    let r = c.call(msg::TVERSION, &[U32(8192), S(b"9P2000.u")]);
    let mut rd = r.ok(msg::TVERSION);
    rd.u32().unwrap();
    assert_eq!(rd.string().unwrap(), b"unknown");
    // Attach twice to the same fid is refused; a missing share folder is an error.
    c.call(msg::TATTACH, &[U32(ROOT), U32(!0), S(b""), S(b""), U32(0)]).ok(msg::TATTACH);
    assert_eq!(c.call(msg::TATTACH, &[U32(ROOT), U32(!0), S(b""), S(b""), U32(0)]).errno(), EINVAL);
    let missing = Server::new(&ShareConfig { root: d.0.join("nope"), readonly: false });
    assert!(missing.err().unwrap().to_string().contains("nope"));
}
