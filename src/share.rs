//! `strata run --share PATH,tag=NAME[,readonly=on]`: a host folder in the guest over virtio-9p
//! (QEMU's `-virtfs local,path=PATH,mount_tag=NAME,security_model=none` habit).
//!
//! Each `--share` (repeatable) opens its folder now, so a missing or unreadable one is a one-line
//! error before the guest starts, and plugs a virtio-9p device into the next PCI slot. Requests
//! that may wait on the host's disk go to an I/O thread per share, the rest are served at the
//! notify (`devices::virtio::p9`); all at the notify under `--deterministic`.

use devices::p9::{Server, ShareConfig};
use devices::virtio::p9::{VirtioP9, MAX_TAG};
use emu::machine::Machine;

/// One parsed `--share`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareSpec {
    /// The host folder.
    pub path: String,
    /// The mount tag the guest names it by.
    pub tag: String,
    /// Writes are refused with EROFS.
    pub readonly: bool,
}

/// Parses every `--share` value.
pub fn parse_shares(values: &[String]) -> Result<Vec<ShareSpec>, String> {
    values.iter().map(|v| parse_share(v)).collect()
}

fn parse_share(value: &str) -> Result<ShareSpec, String> {
    let bad = |why: &str| format!("--share {value}: {why} (use PATH,tag=NAME[,readonly=on])");
    let mut parts = value.split(',');
    let path = parts.next().filter(|p| !p.is_empty()).ok_or_else(|| bad("no folder"))?.to_string();
    let (mut tag, mut readonly) = (None, false);
    for opt in parts {
        match opt.split_once('=') {
            Some(("tag", t)) if !t.is_empty() && t.len() <= MAX_TAG => tag = Some(t.to_string()),
            Some(("tag", _)) => return Err(bad(&format!("the tag must be 1 to {MAX_TAG} bytes"))),
            Some(("readonly", "on")) => readonly = true,
            Some(("readonly", "off")) => readonly = false,
            _ => return Err(bad(&format!("unknown option {opt}"))),
        }
    }
    let tag = tag.ok_or_else(|| bad("tag=NAME is required"))?;
    Ok(ShareSpec { path, tag, readonly })
}

/// Opens every share and attaches it; one line naming the folder on error.
pub fn attach_shares(m: &mut Machine, specs: &[ShareSpec], synchronous: bool) -> Result<(), String> {
    for spec in specs {
        let config = ShareConfig { root: spec.path.clone().into(), readonly: spec.readonly };
        let server = Server::new(&config).map_err(|e| format!("--share: {e}"))?;
        let dev = if synchronous {
            VirtioP9::new(server, &spec.tag)
        } else {
            VirtioP9::with_io_thread(server, &spec.tag, m.io_waker())
                .map_err(|e| format!("--share {}: cannot start its I/O thread: {e}", spec.path))?
        };
        if m.board.borrow_mut().add_virtio(Box::new(dev)).is_none() {
            return Err(format!("--share {}: no PCI slot left (8 virtio devices at most)", spec.path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_options_parse_or_give_one_line() {
        let s = parse_share("/tmp/x,tag=share,readonly=on").unwrap();
        assert_eq!(s, ShareSpec { path: "/tmp/x".into(), tag: "share".into(), readonly: true });
        assert!(!parse_share("/tmp/x,tag=t").unwrap().readonly);
        for bad in ["/tmp/x", ",tag=t", "/tmp/x,tag=", "/tmp/x,tag=t,cache=loose", "/tmp/x,tag=t,readonly=yes"] {
            let e = parse_share(bad).unwrap_err();
            assert!(e.starts_with("--share ") && !e.contains('\n'), "{e}");
        }
    }
}
