//! Asynchronous host file I/O for Strata's disks, with its `unsafe` fenced in one small crate
//! (`devices` forbids `unsafe`; STYLE.md: anything else that truly needs it gets a small module of
//! its own on the same terms).
//!
//! | module | what |
//! |---|---|
//! | [`aligned`] | [`AlignedBuf`]: an owned, zeroed, page-aligned byte buffer (what `O_DIRECT` needs) |
//! | [`ring`] | [`ring::FileRing`]: reads, writes and syncs of one file through io_uring (Linux) |
//!
//! The ring owns every buffer while the kernel may touch it: a request's buffer moves into the
//! ring at submission and comes back with its completion, and dropping the ring waits for every
//! request still in flight. That is what makes the safe API sound.

pub mod aligned;
#[cfg(target_os = "linux")]
pub mod ring;

pub use aligned::AlignedBuf;
