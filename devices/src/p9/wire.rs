//! 9P2000.L message encoding: little-endian integers, strings as a u16 length then bytes, qids as
//! 13 bytes. Every read is bounds-checked against the message, so a short message, a string past
//! its end or a bad length is an [`Malformed`] error (the server answers it with Rlerror EINVAL),
//! never a panic or an out-of-range slice.

/// Message types (the T-message; its R-message is one more). Numbers from the 9P2000.L protocol
/// description (the Linux kernel's `include/net/9p/9p.h` lists the same).
#[allow(missing_docs)] // each constant is the message's protocol name
pub mod msg {
    /// Error reply (9P2000.L).
    pub const RLERROR: u8 = 7;
    pub const TSTATFS: u8 = 8;
    pub const TLOPEN: u8 = 12;
    pub const TLCREATE: u8 = 14;
    pub const TSYMLINK: u8 = 16;
    pub const TMKNOD: u8 = 18;
    pub const TRENAME: u8 = 20;
    pub const TREADLINK: u8 = 22;
    pub const TGETATTR: u8 = 24;
    pub const TSETATTR: u8 = 26;
    pub const TXATTRWALK: u8 = 30;
    pub const TXATTRCREATE: u8 = 32;
    pub const TREADDIR: u8 = 40;
    pub const TFSYNC: u8 = 50;
    pub const TLOCK: u8 = 52;
    pub const TGETLOCK: u8 = 54;
    pub const TLINK: u8 = 70;
    pub const TMKDIR: u8 = 72;
    pub const TRENAMEAT: u8 = 74;
    pub const TUNLINKAT: u8 = 76;
    pub const TVERSION: u8 = 100;
    pub const TAUTH: u8 = 102;
    pub const TATTACH: u8 = 104;
    pub const TFLUSH: u8 = 108;
    pub const TWALK: u8 = 110;
    pub const TREAD: u8 = 116;
    pub const TWRITE: u8 = 118;
    pub const TCLUNK: u8 = 120;
    pub const TREMOVE: u8 = 122;
}

/// Bytes of the header every message starts with: size[4] type[1] tag[2].
pub const HEADER: usize = 7;
/// Bytes of a qid: type[1] version[4] path[8].
pub const QID_LEN: usize = 13;

/// A message that ends before a field it must hold, or holds a bad value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed 9P message")]
pub struct Malformed;

/// A qid: the server's identity for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Qid {
    /// QTDIR (0x80), QTSYMLINK (0x02) or QTFILE (0).
    pub kind: u8,
    /// Version (we report 0: the client's cache=none default does not use it).
    pub version: u32,
    /// Unique per file: the host inode number.
    pub path: u64,
}

/// A cursor reading fields from a message body.
pub struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Reads `data` from its start.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, at: 0 }
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// Fewer than `n` bytes are left.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.at.checked_add(n).ok_or(Malformed)?;
        let s = self.data.get(self.at..end).ok_or(Malformed)?;
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        self.bytes(N)?.try_into().map_err(|_| Malformed)
    }

    /// A u8.
    ///
    /// # Errors
    /// The message ends first.
    pub fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian u16.
    ///
    /// # Errors
    /// The message ends first.
    pub fn u16(&mut self) -> Result<u16, Malformed> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian u32.
    ///
    /// # Errors
    /// The message ends first.
    pub fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    ///
    /// # Errors
    /// The message ends first.
    pub fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A string (u16 length, then that many bytes; 9P strings are not NUL-terminated). Names
    /// are handled as bytes: Linux file names need not be UTF-8.
    ///
    /// # Errors
    /// The length runs past the end of the message.
    pub fn string(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.u16()?;
        self.bytes(usize::from(n))
    }
}

/// A reply being built: the header is written by [`Writer::finish`].
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A reply of type `kind` to `tag`.
    pub fn new(kind: u8, tag: u16) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0, 0, 0, 0, kind]);
        buf.extend_from_slice(&tag.to_le_bytes());
        Writer { buf }
    }

    /// Appends a u8.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends a u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends a u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends a string (at most 65535 bytes are sent; callers pass names and link targets,
    /// which Linux limits to 255 and 4095 bytes).
    pub fn string(&mut self, s: &[u8]) -> &mut Self {
        let s = &s[..s.len().min(usize::from(u16::MAX))];
        self.u16(s.len() as u16);
        self.buf.extend_from_slice(s);
        self
    }

    /// Appends a qid.
    pub fn qid(&mut self, q: Qid) -> &mut Self {
        self.u8(q.kind).u32(q.version).u64(q.path)
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// The buffer so far (to append a payload in place).
    pub fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// The message with its size field filled in.
    pub fn finish(mut self) -> Vec<u8> {
        let n = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

/// An Rlerror reply carrying the Linux errno `errno`.
pub fn rlerror(tag: u16, errno: u32) -> Vec<u8> {
    let mut w = Writer::new(msg::RLERROR, tag);
    w.u32(errno);
    w.finish()
}
