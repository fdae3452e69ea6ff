//! Reaching host files beneath a share's root, and nothing else.
//!
//! The server holds every file it has walked to as an `O_PATH` descriptor and only ever resolves
//! one validated name relative to such a descriptor: a name is refused if it is empty, `.`, `..`
//! or holds a `/` or NUL byte ([`check_name`]). Each step is `openat2(dir, name, O_PATH |
//! O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS)`; where the host
//! kernel lacks `openat2` (before 5.6: ENOSYS) it is `openat(dir, name, O_PATH | O_NOFOLLOW)`,
//! which for one checked component is just as confined. A symlink is therefore opened as the link
//! itself (the guest reads its target and resolves it in its own tree), never followed, and a
//! directory renamed on the host while the guest holds it is still reached through its descriptor,
//! never by a path that could now lead elsewhere.
//!
//! Opening a walked file for I/O re-opens its descriptor through `/proc/self/fd` (the descriptor
//! itself, so nothing is resolved by name), which keeps working after the file is renamed; only
//! regular files and directories may be opened, so a device node or FIFO in the share never
//! reaches a host device. Without `/proc` the server re-opens by (parent, name) with O_NOFOLLOW.

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the host lacks `openat2` (learned at the first ENOSYS).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Refuses names a 9P client must not send: empty, `.`, `..`, or with `/` or NUL.
///
/// # Errors
/// EINVAL for such a name.
pub fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.iter().any(|&b| b == b'/' || b == 0) {
        return Err(Errno::INVAL);
    }
    Ok(())
}

/// Opens `name` beneath `dir` with `flags`, never following a symlink and never leaving `dir`.
///
/// # Errors
/// The host's errno; EINVAL for a refused name.
pub fn open_beneath(dir: BorrowedFd<'_>, name: &[u8], flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    check_name(name)?;
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_SYMLINKS;
        match rustix::fs::openat2(dir, name, flags, mode, resolve) {
            Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            // ELOOP with O_PATH|O_NOFOLLOW and NO_SYMLINKS: the last component is a symlink;
            // open the link itself the per-component way below.
            Err(Errno::LOOP) if flags.contains(OFlags::PATH) => {}
            other => return other,
        }
    }
    open_nofollow(dir, name, flags, mode)
}

/// The per-component fallback: `name` (checked to be one component) opened with O_NOFOLLOW.
fn open_nofollow(dir: BorrowedFd<'_>, name: &[u8], flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(dir, name, flags | OFlags::NOFOLLOW | OFlags::CLOEXEC, mode)
}

/// The O_PATH descriptor of `name` in `dir` (a symlink is returned as itself).
///
/// # Errors
/// The host's errno.
pub fn walk_one(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    open_beneath(dir, name, OFlags::PATH, Mode::empty())
}

/// How walked files are re-opened for I/O.
pub struct Reopener {
    /// `/proc/self/fd`, if the host has it.
    proc_fd: Option<OwnedFd>,
}

impl Reopener {
    /// Looks for `/proc/self/fd`.
    pub fn new() -> Self {
        let proc_fd =
            rustix::fs::open("/proc/self/fd", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok();
        Reopener { proc_fd }
    }

    /// Opens the file held by `path` (an O_PATH descriptor of a regular file or directory, whose
    /// parent and name are `parent`) with `flags`.
    ///
    /// # Errors
    /// The host's errno.
    pub fn reopen(
        &self,
        path: BorrowedFd<'_>,
        parent: Option<(BorrowedFd<'_>, &[u8])>,
        flags: OFlags,
    ) -> Result<OwnedFd, Errno> {
        let flags = flags | OFlags::CLOEXEC;
        if let Some(proc_fd) = &self.proc_fd {
            // The name is the descriptor's number: /proc resolves it to the very file we hold.
            let n = std::os::fd::AsRawFd::as_raw_fd(&path).to_string();
            return rustix::fs::openat(proc_fd.as_fd(), n.as_str(), flags, Mode::empty());
        }
        match parent {
            Some((dir, name)) => open_beneath(dir, name, flags, Mode::empty()),
            // The share's root: "." of its own descriptor.
            None => rustix::fs::openat(path, ".", flags | OFlags::DIRECTORY, Mode::empty()),
        }
    }

    /// The `/proc/self/fd/N` path of `fd`, if `/proc` is there (for `linkat`, which cannot take
    /// an O_PATH descriptor without CAP_DAC_READ_SEARCH).
    pub fn proc_path(&self, fd: BorrowedFd<'_>) -> Option<String> {
        self.proc_fd.as_ref().map(|_| format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)))
    }
}

impl Default for Reopener {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::FileType;

    /// The fallback path (hosts without openat2) confines as openat2 does, checked against the
    /// host's errno for the same cases.
    #[test]
    fn per_component_fallback_is_confined() {
        let d = std::env::temp_dir().join(format!("strata-p9-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("share")).unwrap();
        std::fs::write(d.join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink("../secret", d.join("share/ln")).unwrap();
        let root = rustix::fs::open(d.join("share"), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        // A symlink is opened as itself with O_PATH, and refused (ELOOP) for reading.
        let ln = open_nofollow(root.as_fd(), b"ln", OFlags::PATH, Mode::empty()).unwrap();
        let st = rustix::fs::statx(&ln, "", rustix::fs::AtFlags::EMPTY_PATH, rustix::fs::StatxFlags::TYPE).unwrap();
        assert_eq!(FileType::from_raw_mode(u32::from(st.stx_mode)), FileType::Symlink);
        assert_eq!(open_nofollow(root.as_fd(), b"ln", OFlags::RDONLY, Mode::empty()).err(), Some(Errno::LOOP));
        // With openat2 the same answers.
        let via2 = open_beneath(root.as_fd(), b"ln", OFlags::PATH, Mode::empty()).unwrap();
        let st2 = rustix::fs::statx(&via2, "", rustix::fs::AtFlags::EMPTY_PATH, rustix::fs::StatxFlags::INO).unwrap();
        let st1 = rustix::fs::statx(&ln, "", rustix::fs::AtFlags::EMPTY_PATH, rustix::fs::StatxFlags::INO).unwrap();
        assert_eq!(st1.stx_ino, st2.stx_ino);
        assert_eq!(open_beneath(root.as_fd(), b"ln", OFlags::RDONLY, Mode::empty()).err(), Some(Errno::LOOP));
        for bad in [&b".."[..], b".", b"", b"a/b", b"x\0y"] {
            assert_eq!(open_beneath(root.as_fd(), bad, OFlags::PATH, Mode::empty()).err(), Some(Errno::INVAL));
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
