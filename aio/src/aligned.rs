//! [`AlignedBuf`]: a heap byte buffer aligned to [`ALIGN`] bytes, zeroed when made. `O_DIRECT`
//! transfers need their memory aligned (to the file's `stx_dio_mem_align`, at most a page on the
//! hosts we run on), which `Vec<u8>` does not promise; the same buffer type also serves buffered
//! I/O, so a request's data is allocated once whichever path serves it.

use std::alloc::Layout;
use std::ptr::NonNull;

/// Alignment of every buffer: a page, enough for any `O_DIRECT` memory alignment Linux asks.
pub const ALIGN: usize = 4096;

/// An owned, zero-initialised, [`ALIGN`]-aligned byte buffer of a fixed length.
///
/// It is carved out of a `calloc`-style allocation [`ALIGN`] bytes larger than asked (the
/// allocator's default alignment), not from an allocation made with `ALIGN` alignment: glibc
/// serves large over-aligned requests through `posix_memalign` plus a `memset`, which measured
/// about 2 ms per 1 MiB buffer allocated on one thread and freed on another (the I/O thread's
/// pattern), against about 0.1 ms this way (fresh zero pages, no `memset`).
pub struct AlignedBuf {
    /// The allocation's start (what is freed).
    base: NonNull<u8>,
    /// `base` rounded up to [`ALIGN`]: the buffer's first byte.
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer is uniquely owned heap memory (no shared interior), like a `Vec<u8>`.
unsafe impl Send for AlignedBuf {}
// SAFETY: `&AlignedBuf` only gives `&[u8]`.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// `len` zero bytes. A zero length allocates nothing.
    ///
    /// # Panics
    /// When the allocator fails (as `Vec` does): the callers bound `len` (a virtio-blk request
    /// carries at most 64 MiB).
    pub fn zeroed(len: usize) -> AlignedBuf {
        if len == 0 {
            let dangling = NonNull::<u64>::dangling().cast();
            return AlignedBuf { base: dangling, ptr: dangling, len: 0 };
        }
        let layout = Self::layout(len);
        // SAFETY: `layout` has a non-zero size (len > 0).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(base) = NonNull::new(raw) else { std::alloc::handle_alloc_error(layout) };
        let skip = base.as_ptr().align_offset(ALIGN);
        // SAFETY: `skip` < ALIGN, and the allocation holds len + ALIGN bytes, so `ptr` and the
        // `len` bytes after it lie inside it.
        let ptr = unsafe { base.add(skip) };
        AlignedBuf { base, ptr, len }
    }

    /// A copy of `data` in an aligned buffer.
    pub fn copy_from(data: &[u8]) -> AlignedBuf {
        let mut b = AlignedBuf::zeroed(data.len());
        b.copy_from_slice(data);
        b
    }

    /// The allocation behind a buffer of `len` bytes: room to align its start.
    fn layout(len: usize) -> Layout {
        Layout::from_size_align(len.checked_add(ALIGN).expect("a buffer length below isize::MAX"), 16)
            .expect("a buffer length below isize::MAX")
    }

    /// Bytes in the buffer.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length buffer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` initialised bytes (zeroed at allocation; dangling
        // but aligned and non-null for len 0), owned by `self` for the borrow's lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: `base` was allocated in `zeroed` with this same layout and not freed since.
            unsafe { std::alloc::dealloc(self.base.as_ptr(), Self::layout(self.len)) };
        }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_page_aligned_zeroed_and_owned() {
        for len in [1usize, 511, 4096, 1 << 20] {
            let mut b = AlignedBuf::zeroed(len);
            assert_eq!(b.as_ptr() as usize % ALIGN, 0);
            assert_eq!(b.len(), len);
            assert!(b.iter().all(|&x| x == 0));
            b[len - 1] = 7;
            assert_eq!(b[len - 1], 7);
        }
        let e = AlignedBuf::zeroed(0);
        assert!(e.is_empty() && e.iter().next().is_none());
        assert_eq!(&*AlignedBuf::copy_from(b"abc"), b"abc");
    }
}
