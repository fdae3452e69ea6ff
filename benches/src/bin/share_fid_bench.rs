//! share-fid-bench: the 9P server's per-request cost against the number of open fids, which must
//! stay flat (issue 13: QEMU's server walked a list of fids on every request until it became a
//! hash table; with 278k files that was the difference between two hours and seven minutes).
//!
//! A server over a folder of 1,000 files, with N fids open (N = 100 ... 100,000), answers a fixed
//! mix of requests on fids picked pseudo-randomly among the N: Tgetattr, and a Twalk to a file
//! with its Tclunk. The fids beyond the first 1,000 are clones (Twalk with no names), which share
//! their file's host descriptor, so the run stays under the host's open-file limit; every fid is
//! an entry the server must find. Printed: nanoseconds per request (median of five rounds) and
//! the ratio to N = 100, in one run.
//!
//! Usage: `cargo run --release -p benches --bin share-fid-bench [-- --quick]` (`--quick`: fewer
//! requests per round).

use devices::p9::wire::{msg, Writer};
use devices::p9::{Server, ShareConfig};
use std::time::Instant;

const FILES: u32 = 1000;

fn request(server: &mut Server, w: Writer) {
    let reply = server.handle(&w.finish(), 1 << 16);
    assert_ne!(reply[4], msg::RLERROR, "the server refused a benchmark request");
}

fn walk(server: &mut Server, from: u32, to: u32, name: Option<&str>) {
    let mut w = Writer::new(msg::TWALK, 1);
    w.u32(from).u32(to);
    match name {
        Some(n) => w.u16(1).string(n.as_bytes()),
        None => w.u16(0),
    };
    request(server, w);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let per_round: u32 = if quick { 20_000 } else { 200_000 };
    let dir = std::env::temp_dir().join(format!("strata-share-fid-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench folder");
    for i in 0..FILES {
        std::fs::write(dir.join(format!("f{i}")), b"x").expect("bench file");
    }
    println!("share-fid-bench: {per_round} requests per round (getattr, walk + clunk), median of 5 rounds");
    println!("{:>10} {:>14} {:>10}", "open fids", "ns/request", "vs 100");
    let mut base = None;
    for n in [100u32, 1_000, 10_000, 100_000] {
        let mut server = Server::new(&ShareConfig { root: dir.clone(), readonly: false }).expect("share");
        let mut w = Writer::new(msg::TVERSION, 0xffff);
        w.u32(1 << 16).string(b"9P2000.L");
        request(&mut server, w);
        let mut w = Writer::new(msg::TATTACH, 0);
        w.u32(0).u32(!0).string(b"").string(b"").u32(0);
        request(&mut server, w);
        // Fids 1..=n: the first FILES walk to a file, the rest clone one of them.
        for fid in 1..=n {
            if fid <= FILES {
                walk(&mut server, 0, fid, Some(&format!("f{}", fid - 1)));
            } else {
                walk(&mut server, 1 + fid % FILES, fid, None);
            }
        }
        assert_eq!(server.fid_count(), n as usize + 1);
        let mut rounds = Vec::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5 {
            let start = Instant::now();
            for i in 0..per_round / 3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let fid = 1 + (x % u64::from(n)) as u32;
                let mut w = Writer::new(msg::TGETATTR, 2);
                w.u32(fid).u64(0x7ff);
                request(&mut server, w);
                let temp = n + 1;
                walk(&mut server, 0, temp, Some(&format!("f{}", i % FILES)));
                let mut w = Writer::new(msg::TCLUNK, 3);
                w.u32(temp);
                request(&mut server, w);
            }
            rounds.push(start.elapsed().as_nanos() as f64 / f64::from(per_round / 3 * 3));
        }
        rounds.sort_by(f64::total_cmp);
        let ns = rounds[2];
        let b = *base.get_or_insert(ns);
        println!("{n:>10} {ns:>14.0} {:>9.2}x", ns / b);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
