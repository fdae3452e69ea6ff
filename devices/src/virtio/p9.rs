//! virtio-9p (virtio 1.2, section 5.10 "9P transport"): one request queue carrying 9P2000.L
//! messages to a [`Server`], and the mount tag in the device configuration.
//!
//! Each chain holds a request in its device-readable bytes and room for the reply in its
//! device-writable bytes (the Linux driver's zero-copy reads and writes put the header in one
//! buffer and the data in user pages after it: both are one stream here, see [`ChainCursor`]).
//! The reply's length is the used length. A request longer than [`MAX_MSIZE`] is not read past
//! that (the server answers Rlerror); a chain with no writable byte is a queue error.
//!
//! Requests are served at the notify on the CPU thread ([`VirtioP9::new`], `--deterministic`) or,
//! with an I/O thread ([`VirtioP9::with_io_thread`]), split by cost: the requests that may wait
//! on the host's disk (Tfsync, and Tread/Twrite of more than [`INLINE_IO`] bytes) go to the
//! thread, everything else (walks, getattr, clunk, small reads...: a few system calls on cached
//! metadata) is answered at the notify, when nothing is queued on the thread, so requests are
//! still answered one at a time in order and a Tflush after the request it names. Sending those
//! small requests to the thread cost more than serving them: on a loaded 2-core host each one
//! waited for the thread to be scheduled, and `tar` over 2,000 files took twice the CPU-thread
//! time (see README, share-bench).

use super::chain::ChainCursor;
use super::queue::{Queue, QueueError};
use super::VirtioDevice;
use crate::block::iothread::Wake;
use crate::dma::GuestMemory;
use crate::p9::wire::msg;
use crate::p9::{Server, MAX_MSIZE};
use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Device type (virtio 1.2, 5: 9 is the 9P transport).
pub const DEVICE_TYPE: u16 = 9;
/// VIRTIO_9P_F_MOUNT_TAG: the configuration holds a mount tag.
const F_MOUNT_TAG: u64 = 1 << 0;
/// Queue size offered (the Linux driver uses up to 128 descriptors per request).
pub const QUEUE_SIZE: u16 = 128;
/// Longest mount tag accepted.
pub const MAX_TAG: usize = 64;

/// Largest Tread/Twrite answered at the notify when an I/O thread is there.
pub const INLINE_IO: u32 = 64 << 10;

/// A request on its way to the server: its token, bytes and room for the reply.
type Job = (u64, Vec<u8>, usize);

/// The I/O thread, which shares the server with the notify path (never both at once: the notify
/// path serves only when nothing is queued on the thread).
struct Worker {
    server: Arc<Mutex<Server>>,
    jobs: Option<Sender<Job>>,
    done: Receiver<(u64, Vec<u8>)>,
    thread: Option<JoinHandle<()>>,
}

enum Backend {
    Sync(Box<Server>),
    Thread(Worker),
}

/// A virtio-9p device sharing one host folder under one mount tag.
pub struct VirtioP9 {
    backend: Backend,
    tag: Vec<u8>,
    /// Requests on the I/O thread: token -> (head, where the reply goes).
    pending: HashMap<u64, (u16, ChainCursor)>,
    next_token: u64,
}

impl VirtioP9 {
    /// A device serving `server` at the notify, with mount tag `tag` (at most [`MAX_TAG`] bytes).
    pub fn new(server: Server, tag: &str) -> Self {
        Self::build(Backend::Sync(Box::new(server)), tag)
    }

    /// A device whose requests run on an I/O thread that owns `server`; `wake` is called after
    /// each reply.
    ///
    /// # Errors
    /// The host could not start the thread.
    pub fn with_io_thread(server: Server, tag: &str, wake: Wake) -> std::io::Result<Self> {
        let (jobs, inbox) = channel::<Job>();
        let (outbox, done) = channel();
        let server = Arc::new(Mutex::new(server));
        let shared = server.clone();
        let thread = std::thread::Builder::new().name("strata-9p".into()).spawn(move || {
            while let Ok((token, request, room)) = inbox.recv() {
                // A panic elsewhere cannot leave the server half-updated for us: each request
                // is answered whole under the lock, so a poisoned lock still holds a usable one.
                let reply = shared.lock().unwrap_or_else(|e| e.into_inner()).handle(&request, room);
                if outbox.send((token, reply)).is_err() {
                    break;
                }
                wake();
            }
        })?;
        let worker = Worker { server, jobs: Some(jobs), done, thread: Some(thread) };
        Ok(Self::build(Backend::Thread(worker), tag))
    }

    fn build(backend: Backend, tag: &str) -> Self {
        let mut tag = tag.as_bytes().to_vec();
        tag.truncate(MAX_TAG);
        VirtioP9 { backend, tag, pending: HashMap::new(), next_token: 0 }
    }

    fn config(&self) -> Vec<u8> {
        let mut c = (self.tag.len() as u16).to_le_bytes().to_vec();
        c.extend_from_slice(&self.tag);
        c
    }
}

impl VirtioDevice for VirtioP9 {
    fn device_type(&self) -> u16 {
        DEVICE_TYPE
    }

    fn features(&self) -> u64 {
        F_MOUNT_TAG
    }

    fn queue_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let c = self.config();
        for (i, b) in data.iter_mut().enumerate() {
            *b = usize::try_from(offset).ok().and_then(|o| c.get(o + i)).copied().unwrap_or(0);
        }
    }

    fn write_config(&mut self, _offset: u64, _data: &[u8]) {
        // The mount tag is read-only.
    }

    fn process(&mut self, _index: usize, queue: &mut Queue, mem: &mut dyn GuestMemory) -> Result<(), QueueError> {
        while let Some(chain) = queue.pop(mem)? {
            let mut input = ChainCursor::readable(&chain);
            let output = ChainCursor::writable(&chain);
            let room = output.remaining().min(u64::from(MAX_MSIZE)) as usize;
            if room == 0 {
                return Err(QueueError::Malformed("9P request without room for a reply"));
            }
            // Never more than MAX_MSIZE bytes from the guest: a longer request is refused by the
            // server for its size field.
            let mut request = vec![0u8; input.remaining().min(u64::from(MAX_MSIZE) + 1) as usize];
            if !input.read(mem, &mut request)? {
                request.clear();
            }
            match &mut self.backend {
                Backend::Sync(server) => {
                    let reply = server.handle(&request, room);
                    finish(queue, mem, chain.head, output, &reply)?;
                }
                Backend::Thread(w) if self.pending.is_empty() && !may_block(&request) => {
                    let reply = w.server.lock().unwrap_or_else(|e| e.into_inner()).handle(&request, room);
                    finish(queue, mem, chain.head, output, &reply)?;
                }
                Backend::Thread(w) => {
                    let token = self.next_token;
                    self.next_token += 1;
                    if let Some(jobs) = &w.jobs {
                        if jobs.send((token, request, room)).is_ok() {
                            self.pending.insert(token, (chain.head, output));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn complete(&mut self, _index: usize, queue: &mut Queue, mem: &mut dyn GuestMemory) -> Result<(), QueueError> {
        let Backend::Thread(w) = &mut self.backend else { return Ok(()) };
        while let Ok((token, reply)) = w.done.try_recv() {
            if let Some((head, output)) = self.pending.remove(&token) {
                finish(queue, mem, head, output, &reply)?;
            }
        }
        Ok(())
    }

    fn in_flight(&self) -> bool {
        !self.pending.is_empty()
    }

    fn reset(&mut self) {
        // Requests in flight finish on the I/O thread; their replies are dropped (their rings
        // are gone). The server's fids stay until the driver's next Tversion clears them.
        if let Backend::Thread(w) = &mut self.backend {
            while !self.pending.is_empty() {
                match w.done.recv() {
                    Ok((token, _)) => {
                        self.pending.remove(&token);
                    }
                    Err(_) => break,
                }
            }
        }
        self.pending.clear();
    }
}

/// Whether a request may wait on the host's disk (so it goes to the I/O thread): Tfsync, and
/// Tread/Twrite of more than [`INLINE_IO`] bytes. A malformed request is answered at once.
fn may_block(request: &[u8]) -> bool {
    // size[4] type[1] tag[2], then for Tread/Twrite: fid[4] offset[8] count[4].
    let count = request.get(19..23).map_or(0, |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    match request.get(4) {
        Some(&msg::TFSYNC) => true,
        Some(&msg::TREAD | &msg::TWRITE) => count > INLINE_IO,
        _ => false,
    }
}

/// Writes `reply` to the chain's writable bytes and returns the chain.
fn finish(
    queue: &mut Queue,
    mem: &mut dyn GuestMemory,
    head: u16,
    mut output: ChainCursor,
    reply: &[u8],
) -> Result<(), QueueError> {
    // The server keeps replies within the room it was given.
    let n = if output.write(mem, reply)? { reply.len() } else { 0 };
    queue.push_used(mem, head, n as u32)
}

impl Drop for Worker {
    /// Lets the thread finish what was queued and exit.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dma::VecMemory;
    use crate::p9::wire::{msg, Reader, Writer};
    use crate::p9::ShareConfig;
    use std::sync::Arc;

    const DESC: u64 = 0x1000;
    const AVAIL: u64 = 0x2000;
    const USED: u64 = 0x3000;
    const F_NEXT: u16 = 1;
    const F_WRITE: u16 = 2;

    /// The device under a split virtqueue the test fills as the Linux driver does (virtio 1.2,
    /// 2.7): the request in two readable buffers, the reply in an 11-byte header buffer and a
    /// data buffer (the zero-copy read layout).
    struct Rig {
        dev: VirtioP9,
        q: Queue,
        mem: VecMemory,
        avail: u16,
    }

    impl Rig {
        fn new(dev: VirtioP9) -> Rig {
            let mut q = Queue::new(QUEUE_SIZE);
            (q.size, q.desc, q.avail, q.used, q.ready) = (16, DESC, AVAIL, USED, true);
            Rig { dev, q, mem: VecMemory(vec![0; 1 << 20]), avail: 0 }
        }

        fn desc(&mut self, i: u16, addr: u64, len: u32, flags: u16) {
            let mut d = [0u8; 16];
            d[0..8].copy_from_slice(&addr.to_le_bytes());
            d[8..12].copy_from_slice(&len.to_le_bytes());
            d[12..14].copy_from_slice(&flags.to_le_bytes());
            d[14..16].copy_from_slice(&(i + 1).to_le_bytes());
            self.mem.write(DESC + 16 * u64::from(i), &d).unwrap();
        }

        /// Sends `req`, returns the reply read back from guest memory using the used length.
        fn call(&mut self, req: &[u8]) -> Vec<u8> {
            let split = req.len() / 2;
            self.mem.write(0x10000, &req[..split]).unwrap();
            self.mem.write(0x18000, &req[split..]).unwrap();
            self.desc(0, 0x10000, split as u32, F_NEXT);
            self.desc(1, 0x18000, (req.len() - split) as u32, F_NEXT);
            self.desc(2, 0x20000, 11, F_NEXT | F_WRITE);
            self.desc(3, 0x40000, 0x10000, F_WRITE);
            self.mem.write_u16(AVAIL + 4 + 2 * u64::from(self.avail % 16), 0).unwrap();
            self.avail = self.avail.wrapping_add(1);
            self.mem.write_u16(AVAIL + 2, self.avail).unwrap();
            self.dev.process(0, &mut self.q, &mut self.mem).unwrap();
            // With the I/O thread: poll until the reply is back (no time limit: a reply that
            // never comes hangs the test, which is the failure).
            while self.dev.in_flight() {
                std::thread::yield_now();
                self.dev.complete(0, &mut self.q, &mut self.mem).unwrap();
            }
            let idx = self.mem.read_u16(USED + 2).unwrap();
            assert_eq!(idx, self.avail);
            let mut e = [0u8; 8];
            self.mem.read(USED + 4 + 8 * u64::from(idx.wrapping_sub(1) % 16), &mut e).unwrap();
            let len = u32::from_le_bytes(e[4..8].try_into().unwrap()) as usize;
            let mut out = vec![0u8; len];
            let head = len.min(11);
            self.mem.read(0x20000, &mut out[..head]).unwrap();
            self.mem.read(0x40000, &mut out[head..]).unwrap();
            out
        }
    }

    fn exercise(dev: VirtioP9, dir: &std::path::Path) {
        let mut rig = Rig::new(dev);
        // The mount tag in the configuration: tag_len, then the bytes (5.10.4).
        let mut cfg = [0u8; 8];
        rig.dev.read_config(0, &mut cfg);
        assert_eq!(&cfg, b"\x05\x00share\x00");
        let mut w = Writer::new(msg::TVERSION, 0xffff);
        w.u32(512 << 10).string(b"9P2000.L");
        let r = rig.call(&w.finish());
        assert_eq!(r[4], msg::TVERSION + 1);
        let mut w = Writer::new(msg::TATTACH, 1);
        w.u32(0).u32(!0).string(b"").string(b"").u32(0);
        assert_eq!(rig.call(&w.finish())[4], msg::TATTACH + 1);
        let mut w = Writer::new(msg::TWALK, 2);
        w.u32(0).u32(1).u16(1).string(b"data");
        assert_eq!(rig.call(&w.finish())[4], msg::TWALK + 1);
        let mut w = Writer::new(msg::TLOPEN, 3);
        w.u32(1).u32(0);
        assert_eq!(rig.call(&w.finish())[4], msg::TLOPEN + 1);
        let mut w = Writer::new(msg::TREAD, 4);
        w.u32(1).u64(0).u32(1 << 20);
        let r = rig.call(&w.finish());
        let mut rd = Reader::new(&r[7..]);
        let n = rd.u32().unwrap() as usize;
        // The reply is limited by the 11 + 64 KiB the driver gave, not by the request's count.
        assert_eq!(n, 0x10000);
        assert_eq!(rd.bytes(n).unwrap(), &std::fs::read(dir.join("data")).unwrap()[..n]);
    }

    /// What goes to the I/O thread: Tfsync and big reads/writes (their count field), nothing else.
    #[test]
    fn only_requests_that_may_wait_on_the_disk_leave_the_notify() {
        let io = |kind: u8, count: u32| {
            let mut w = Writer::new(kind, 1);
            w.u32(1).u64(0).u32(count);
            may_block(&w.finish())
        };
        assert!(!io(msg::TREAD, INLINE_IO) && io(msg::TREAD, INLINE_IO + 1));
        assert!(!io(msg::TWRITE, 4096) && io(msg::TWRITE, 512 << 10));
        let mut w = Writer::new(msg::TFSYNC, 1);
        w.u32(1).u32(0);
        assert!(may_block(&w.finish()));
        let mut w = Writer::new(msg::TGETATTR, 1);
        w.u32(1).u64(!0);
        assert!(!may_block(&w.finish()));
        assert!(!may_block(&[]) && !may_block(&[0, 0, 0, 0, msg::TREAD]));
    }

    #[test]
    fn requests_and_replies_cross_the_queue() {
        let dir = std::env::temp_dir().join(format!("strata-virtio-9p-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data"), (0..200_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
        let config = ShareConfig { root: dir.clone(), readonly: false };
        exercise(VirtioP9::new(Server::new(&config).unwrap(), "share"), &dir);
        let threaded = VirtioP9::with_io_thread(Server::new(&config).unwrap(), "share", Arc::new(|| {})).unwrap();
        exercise(threaded, &dir);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
