//! Fuzz target: the 9P2000.L server over a small folder. The input is a sequence of messages
//! (a u16 length, then the bytes); after a Tversion and a Tattach of fid 0 every message goes to
//! `Server::handle` as it is, or with its size field made right (an input byte chooses), so the
//! fuzzer reaches deep states. Nothing may panic; every reply must carry a correct size field and
//! fit the space given; and nothing outside the shared folder may change (a sentinel file beside
//! it keeps its bytes, and the parent folder holds only the two).
#![no_main]

use devices::p9::wire::{msg, Writer};
use devices::p9::{Server, ShareConfig};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The fuzz folder: PARENT/share (with a file, a directory and symlinks out) and PARENT/sentinel.
fn parent() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("strata-fuzz-p9-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("share/dir")).expect("fuzz folder");
        std::fs::write(d.join("share/file"), b"0123456789").expect("fuzz file");
        std::fs::write(d.join("sentinel"), b"untouched").expect("sentinel");
        let _ = std::os::unix::fs::symlink("/", d.join("share/root"));
        let _ = std::os::unix::fs::symlink("../sentinel", d.join("share/out"));
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = parent();
    let Ok(mut server) = Server::new(&ShareConfig { root: dir.join("share"), readonly: data.first() == Some(&0) })
    else {
        return;
    };
    let mut w = Writer::new(msg::TVERSION, 0xffff);
    w.u32(65536).string(b"9P2000.L");
    server.handle(&w.finish(), 65536);
    let mut w = Writer::new(msg::TATTACH, 0);
    w.u32(0).u32(!0).string(b"").string(b"").u32(0);
    server.handle(&w.finish(), 65536);
    let mut rest = data.get(1..).unwrap_or_default();
    while rest.len() >= 3 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let fix = rest[2] & 1 != 0;
        rest = &rest[3..];
        let mut m = rest[..len.min(rest.len())].to_vec();
        rest = &rest[m.len()..];
        if fix && m.len() >= 4 {
            let n = m.len() as u32;
            m[..4].copy_from_slice(&n.to_le_bytes());
        }
        let room = 256 + m.len() * 8;
        let reply = server.handle(&m, room);
        assert!(reply.len() >= 7 && reply.len() <= room.max(65536));
        assert_eq!(u32::from_le_bytes(reply[..4].try_into().unwrap()) as usize, reply.len());
    }
    assert_eq!(std::fs::read(dir.join("sentinel")).unwrap(), b"untouched");
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 2, "something appeared beside the share");
});
