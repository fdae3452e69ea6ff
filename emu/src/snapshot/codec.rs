//! The little-endian writer and reader every snapshot section is encoded with.
//!
//! Values are written in a fixed order, with no field names or type tags: a section's layout is
//! the order of the `put_*` calls in its encoder, and its decoder reads them back in that order.
//! Variable-length values (byte strings, lists) carry a u32 length first. `Option<T>` is a u8 tag
//! (0 none, 1 some) then `T`; `bool` is a u8 that must be 0 or 1. The reader never panics and never
//! allocates more than the bytes left in the section: a short or malformed section is a
//! [`DecodeError`] that the caller turns into a `SnapshotError` naming the file and section.

/// Why a section's bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// Result of a decode step.
pub type Decoded<T> = Result<T, DecodeError>;

/// Appends values to a byte buffer.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i128(&mut self, v: i128) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Raw bytes with no length (fixed-size arrays).
    pub fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    /// A u32 length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.raw(&v[..v.len().min(u32::MAX as usize)]);
    }
    /// A u8 tag, then the value if present.
    pub fn opt<T: Copy>(&mut self, v: Option<T>, put: impl FnOnce(&mut Self, T)) {
        self.bool(v.is_some());
        if let Some(x) = v {
            put(self, x);
        }
    }
}

/// Reads values back from a section's bytes.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    fn take<const N: usize>(&mut self) -> Decoded<[u8; N]> {
        let bytes = self.data.get(self.pos..self.pos.saturating_add(N)).ok_or_else(|| self.short(N))?;
        self.pos += N;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn short(&self, wanted: usize) -> DecodeError {
        DecodeError(format!(
            "needs {wanted} more bytes at offset {} but the section has {}",
            self.pos,
            self.data.len().saturating_sub(self.pos)
        ))
    }

    pub fn u8(&mut self) -> Decoded<u8> {
        Ok(self.take::<1>()?[0])
    }
    pub fn bool(&mut self) -> Decoded<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(DecodeError(format!("a flag byte is {v} at offset {}", self.pos - 1))),
        }
    }
    pub fn u16(&mut self) -> Decoded<u16> {
        Ok(u16::from_le_bytes(self.take()?))
    }
    pub fn u32(&mut self) -> Decoded<u32> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    pub fn u64(&mut self) -> Decoded<u64> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    pub fn i64(&mut self) -> Decoded<i64> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    pub fn i128(&mut self) -> Decoded<i128> {
        Ok(i128::from_le_bytes(self.take()?))
    }
    /// `N` raw bytes.
    pub fn array<const N: usize>(&mut self) -> Decoded<[u8; N]> {
        self.take()
    }
    /// A length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: usize) -> Decoded<Vec<u8>> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(DecodeError(format!("a byte string of {len} bytes where at most {max} fit")));
        }
        let end = self.pos.checked_add(len).filter(|&e| e <= self.data.len()).ok_or_else(|| self.short(len))?;
        let v = self.data[self.pos..end].to_vec();
        self.pos = end;
        Ok(v)
    }
    /// A u32 count of at most `max`, for a list that follows.
    pub fn count(&mut self, max: usize) -> Decoded<usize> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(DecodeError(format!("a list of {n} entries where at most {max} fit")));
        }
        Ok(n)
    }
    pub fn opt<T>(&mut self, get: impl FnOnce(&mut Self) -> Decoded<T>) -> Decoded<Option<T>> {
        if self.bool()? {
            Ok(Some(get(self)?))
        } else {
            Ok(None)
        }
    }
    /// Fails unless every byte was consumed (a section longer than its contents is inconsistent).
    pub fn finish(&self) -> Decoded<()> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(DecodeError(format!("{} unexpected bytes after the last field", self.data.len() - self.pos)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_input_is_an_error() {
        let mut w = Writer::default();
        w.u8(7);
        w.bool(true);
        w.u16(0x1234);
        w.u32(0xdead_beef);
        w.u64(u64::MAX - 1);
        w.i64(-5);
        w.i128(-(1 << 100));
        w.bytes(b"abc");
        w.opt(Some(9u16), |w, v| w.u16(v));
        w.opt(None::<u16>, |w, v| w.u16(v));
        // Little-endian on the wire, whatever the host.
        assert_eq!(&w.buf[2..4], &[0x34, 0x12]);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.bool(), Ok(true));
        assert_eq!(r.u16(), Ok(0x1234));
        assert_eq!(r.u32(), Ok(0xdead_beef));
        assert_eq!(r.u64(), Ok(u64::MAX - 1));
        assert_eq!(r.i64(), Ok(-5));
        assert_eq!(r.i128(), Ok(-(1 << 100)));
        assert_eq!(r.bytes(3), Ok(b"abc".to_vec()));
        assert_eq!(r.opt(|r| r.u16()), Ok(Some(9)));
        assert_eq!(r.opt(|r| r.u16()), Ok(None));
        assert!(r.finish().is_ok());
        assert!(r.u8().is_err());
        let mut r = Reader::new(&w.buf[..20]);
        assert!(r.array::<21>().is_err());
        let mut r = Reader::new(&[5, 0, 0, 0, 1]);
        assert!(r.bytes(4).is_err()); // longer than allowed
        let mut r = Reader::new(&[2, 0, 0, 0, 1]);
        assert!(r.bytes(4).is_err()); // longer than what is left
        assert!(Reader::new(&[2]).bool().is_err());
        assert!(Reader::new(&[1]).finish().is_err());
    }
}
