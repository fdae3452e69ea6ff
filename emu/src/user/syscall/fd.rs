//! The file descriptor table: guest descriptor numbers index a `Vec` of slots (lowest free number
//! first, as POSIX requires), each pointing at a shared open file description (`dup` shares the
//! offset and status flags, `FD_CLOEXEC` is per descriptor), as in Linux's `fs/file.c`.
//!
//! Open files are host `File`s (regular files, directories, terminals, and the host's own
//! descriptors 0, 1, 2, duplicated so the runner's stdio is left alone) or in-process pipes: with
//! one thread and no fork, a pipe is a byte queue the process both fills and drains.
//! Left out: sockets, eventfd, epoll, inotify.

use super::{Errno, EBADF, EMFILE};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::rc::{Rc, Weak};

/// Most descriptors a process may have (RLIMIT_NOFILE's usual soft limit).
pub const MAX_FDS: usize = 1024;

/// Status flags kept on the open file description (`O_*`, x86-64 values).
pub const O_ACCMODE: u32 = 3;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;

/// One direction of an in-process pipe.
pub struct Pipe {
    pub data: Rc<RefCell<VecDeque<u8>>>,
    /// The read end holds the writers' token weakly (EOF once every writer is closed); the write
    /// end holds the readers' token weakly (EPIPE once every reader is closed).
    pub own: Rc<()>,
    pub peer: Weak<()>,
}

/// What an open file description refers to.
pub enum Node {
    /// A host file: regular file, terminal, device or the host's stdio.
    File(File),
    /// A directory, listed on the first getdents64 and read from a cursor.
    Dir {
        file: File,
        entries: Option<Vec<DirEntry>>,
        pos: usize,
    },
    PipeRead(Pipe),
    PipeWrite(Pipe),
}

/// A directory entry as getdents64 reports it.
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub ino: u64,
    pub dtype: u8,
    pub name: Vec<u8>,
}

/// An open file description.
pub struct OpenFile {
    pub node: Node,
    /// Access mode and status flags (O_APPEND, O_NONBLOCK, ...).
    pub flags: u32,
    /// The path it was opened by, for *at calls relative to it and fchdir (None for pipes and
    /// inherited stdio).
    pub path: Option<PathBuf>,
}

impl OpenFile {
    pub fn new(node: Node, flags: u32, path: Option<PathBuf>) -> Rc<RefCell<OpenFile>> {
        Rc::new(RefCell::new(OpenFile { node, flags, path }))
    }

    /// The host file behind this description, if it has one.
    pub fn host_file(&self) -> Option<&File> {
        match &self.node {
            Node::File(f) | Node::Dir { file: f, .. } => Some(f),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct FdSlot {
    pub file: Rc<RefCell<OpenFile>>,
    pub cloexec: bool,
}

/// The descriptor table.
#[derive(Default)]
pub struct FdTable {
    slots: Vec<Option<FdSlot>>,
}

impl FdTable {
    /// Descriptors 0, 1, 2 as duplicates of the host's (a closed host descriptor stays closed).
    pub fn with_host_stdio() -> Self {
        use std::os::fd::AsFd;
        let mut t = FdTable::default();
        let dups = [
            std::io::stdin().as_fd().try_clone_to_owned(),
            std::io::stdout().as_fd().try_clone_to_owned(),
            std::io::stderr().as_fd().try_clone_to_owned(),
        ];
        for (fd, (dup, mode)) in dups.into_iter().zip([0, 1, 1]).enumerate() {
            let slot =
                dup.ok().map(|d| FdSlot { file: OpenFile::new(Node::File(File::from(d)), mode, None), cloexec: false });
            t.set(fd, slot);
        }
        t
    }

    fn set(&mut self, fd: usize, slot: Option<FdSlot>) {
        if self.slots.len() <= fd {
            self.slots.resize(fd + 1, None);
        }
        self.slots[fd] = slot;
    }

    /// The open file behind `fd`.
    ///
    /// # Errors
    /// EBADF for a number that is not open.
    pub fn get(&self, fd: u64) -> Result<Rc<RefCell<OpenFile>>, Errno> {
        let i = usize::try_from(fd).map_err(|_| EBADF)?;
        match self.slots.get(i) {
            Some(Some(s)) => Ok(s.file.clone()),
            _ => Err(EBADF),
        }
    }

    pub fn slot_mut(&mut self, fd: u64) -> Result<&mut FdSlot, Errno> {
        let i = usize::try_from(fd).map_err(|_| EBADF)?;
        self.slots.get_mut(i).and_then(|s| s.as_mut()).ok_or(EBADF)
    }

    /// Installs `file` at the lowest free number `>= min`.
    ///
    /// # Errors
    /// EMFILE when the table is full.
    pub fn install_from(&mut self, min: usize, file: Rc<RefCell<OpenFile>>, cloexec: bool) -> Result<u64, Errno> {
        let free = (min..MAX_FDS).find(|&i| self.slots.get(i).is_none_or(|s| s.is_none())).ok_or(EMFILE)?;
        self.set(free, Some(FdSlot { file, cloexec }));
        Ok(free as u64)
    }

    pub fn install(&mut self, file: Rc<RefCell<OpenFile>>, cloexec: bool) -> Result<u64, Errno> {
        self.install_from(0, file, cloexec)
    }

    /// Puts `file` at exactly `fd`, closing what was there (dup2).
    pub fn install_at(&mut self, fd: u64, file: Rc<RefCell<OpenFile>>, cloexec: bool) -> Result<u64, Errno> {
        let i = usize::try_from(fd).ok().filter(|&i| i < MAX_FDS).ok_or(EBADF)?;
        self.set(i, Some(FdSlot { file, cloexec }));
        Ok(fd)
    }

    /// Closes `fd`; the description goes away with its last descriptor.
    pub fn close(&mut self, fd: u64) -> Result<(), Errno> {
        let i = usize::try_from(fd).map_err(|_| EBADF)?;
        match self.slots.get_mut(i) {
            Some(s @ Some(_)) => {
                *s = None;
                Ok(())
            }
            _ => Err(EBADF),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe_file() -> Rc<RefCell<OpenFile>> {
        let own = Rc::new(());
        let pipe = Pipe { data: Rc::default(), peer: Rc::downgrade(&own), own };
        OpenFile::new(Node::PipeRead(pipe), 0, None)
    }

    #[test]
    fn lowest_free_number_is_reused_and_dup2_replaces() {
        let mut t = FdTable::default();
        assert_eq!(t.install(pipe_file(), false), Ok(0));
        assert_eq!(t.install(pipe_file(), false), Ok(1));
        assert_eq!(t.install(pipe_file(), false), Ok(2));
        t.close(1).unwrap();
        assert_eq!(t.close(1), Err(EBADF));
        assert_eq!(t.install(pipe_file(), true), Ok(1), "POSIX: the lowest free descriptor");
        assert_eq!(t.install_from(10, pipe_file(), false), Ok(10));
        let f = t.get(0).unwrap();
        t.install_at(2, f.clone(), false).unwrap();
        assert!(Rc::ptr_eq(&t.get(2).unwrap(), &f), "dup2 shares the description");
        assert_eq!(t.get(5).err(), Some(EBADF));
        assert_eq!(t.get(u64::MAX).err(), Some(EBADF));
    }
}
