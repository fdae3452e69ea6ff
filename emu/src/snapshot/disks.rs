//! The disks section (kind 5, present only when the machine has virtio functions): for each
//! function in PCI slot order, the transport's registers and queues, then the device's part.
//!
//! | field | encoding |
//! |---|---|
//! | function count | u32 |
//! | per function: command, bar0, interrupt_line | u16, u32, u8 |
//! | device/driver feature select, driver features, status, queue_select | u32, u32, u64, u8, u16 |
//! | queue count, then per queue: max_size, size, ready, desc, avail, used, next_avail, next_used, event_idx, signalled_used | u32; u16, u16, bool, u64 ×3, u16, u16, bool, u16 |
//! | isr, notified | u8, u64 |
//! | MSI-X (format version 2; absent in version 1): message control, pending bits, table length, then per entry address low, address high, data, vector control | u16, u64, u32; u32 ×4 |
//! | config_msix_vector, queue vector count, then each queue_msix_vector (version 2) | u16, u32; u16 |
//! | device kind (1 virtio-blk), serial | u32, bytes |
//! | drive options (`--drive` syntax, `file` = the frozen image), overlay path | bytes, bytes |
//! | chain length, then per file: path, length, mtime (ns) | u32; bytes, u64, i64 |
//!
//! Saving drains each function's in-flight requests first (their completions go to the used
//! rings, which are in RAM), so no request is half-done in a snapshot.

use super::codec::{Decoded, Reader, Writer};
use devices::block::snapshot::{ChainFile, FrozenDrive};
use devices::virtio::pci::msix::MsixState;
use devices::virtio::pci::{VirtioPciState, NO_VECTOR};
use devices::virtio::queue::Queue;
use devices::virtio::DeviceSnapshot;

/// One saved virtio function.
pub type SavedFunction = (VirtioPciState, DeviceSnapshot);

const KIND_BLK: u32 = 1;
const MAX_FUNCTIONS: usize = 32;
const MAX_QUEUES: usize = 64;
const MAX_TEXT: usize = 4096;

fn put_queue(w: &mut Writer, q: &Queue) {
    let Queue { max_size, size, ready, desc, avail, used, next_avail, next_used, event_idx, signalled_used } = q;
    w.u16(*max_size);
    w.u16(*size);
    w.bool(*ready);
    w.u64(*desc);
    w.u64(*avail);
    w.u64(*used);
    w.u16(*next_avail);
    w.u16(*next_used);
    w.bool(*event_idx);
    w.u16(*signalled_used);
}

fn get_queue(r: &mut Reader) -> Decoded<Queue> {
    Ok(Queue {
        max_size: r.u16()?,
        size: r.u16()?,
        ready: r.bool()?,
        desc: r.u64()?,
        avail: r.u64()?,
        used: r.u64()?,
        next_avail: r.u16()?,
        next_used: r.u16()?,
        event_idx: r.bool()?,
        signalled_used: r.u16()?,
    })
}

fn text(r: &mut Reader) -> Decoded<String> {
    String::from_utf8(r.bytes(MAX_TEXT)?).map_err(|_| super::codec::DecodeError("a path is not UTF-8".into()))
}

/// Encodes the saved functions.
pub fn encode(functions: &[SavedFunction]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(functions.len() as u32);
    for (s, device) in functions {
        let VirtioPciState {
            command,
            bar0,
            interrupt_line,
            device_feature_select,
            driver_feature_select,
            driver_features,
            status,
            queue_select,
            queues,
            isr,
            notified,
            msix,
            config_vector,
            queue_vectors,
        } = s;
        w.u16(*command);
        w.u32(*bar0);
        w.u8(*interrupt_line);
        w.u32(*device_feature_select);
        w.u32(*driver_feature_select);
        w.u64(*driver_features);
        w.u8(*status);
        w.u16(*queue_select);
        w.u32(queues.len() as u32);
        queues.iter().for_each(|q| put_queue(&mut w, q));
        w.u8(*isr);
        w.u64(*notified);
        let MsixState { control, table, pending } = msix;
        w.u16(*control);
        w.u64(*pending);
        w.u32(table.len() as u32);
        table.iter().flatten().for_each(|&v| w.u32(v));
        w.u16(*config_vector);
        w.u32(queue_vectors.len() as u32);
        queue_vectors.iter().for_each(|&v| w.u16(v));
        match device {
            DeviceSnapshot::Blk { serial, drive } => {
                let FrozenDrive { options, chain, overlay } = drive;
                w.u32(KIND_BLK);
                w.bytes(serial.as_bytes());
                w.bytes(options.as_bytes());
                w.bytes(overlay.as_bytes());
                w.u32(chain.len() as u32);
                for ChainFile { path, len, mtime_ns } in chain {
                    w.bytes(path.as_bytes());
                    w.u64(*len);
                    w.i64(*mtime_ns);
                }
            }
        }
    }
    w.buf
}

/// Decodes the disks section.
/// Decodes the disks section of a file of format `version`. A version 1 section has no MSI-X
/// state: its functions come back with MSI-X off and every vector unmapped (their drivers were
/// on INTx, the only interrupt a version 1 build offered).
pub fn decode(data: &[u8], version: u32) -> Decoded<Vec<SavedFunction>> {
    let r = &mut Reader::new(data);
    let n = r.count(MAX_FUNCTIONS)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let command = r.u16()?;
        let bar0 = r.u32()?;
        let interrupt_line = r.u8()?;
        let device_feature_select = r.u32()?;
        let driver_feature_select = r.u32()?;
        let driver_features = r.u64()?;
        let status = r.u8()?;
        let queue_select = r.u16()?;
        let nq = r.count(MAX_QUEUES)?;
        let queues = (0..nq).map(|_| get_queue(r)).collect::<Decoded<Vec<_>>>()?;
        let isr = r.u8()?;
        let notified = r.u64()?;
        let (msix, config_vector, queue_vectors) = if version >= 2 {
            let control = r.u16()?;
            let pending = r.u64()?;
            let nv = r.count(MAX_QUEUES + 1)?;
            let table = (0..nv).map(|_| Ok([r.u32()?, r.u32()?, r.u32()?, r.u32()?])).collect::<Decoded<Vec<_>>>()?;
            let config_vector = r.u16()?;
            let nqv = r.count(MAX_QUEUES)?;
            let queue_vectors = (0..nqv).map(|_| r.u16()).collect::<Decoded<Vec<_>>>()?;
            (MsixState { control, table, pending }, config_vector, queue_vectors)
        } else {
            // One vector per queue plus the configuration vector, as `VirtioPci::new` sizes it.
            (MsixState::new(queues.len() + 1), NO_VECTOR, vec![NO_VECTOR; queues.len()])
        };
        let state = VirtioPciState {
            command,
            bar0,
            interrupt_line,
            device_feature_select,
            driver_feature_select,
            driver_features,
            status,
            queue_select,
            queues,
            isr,
            notified,
            msix,
            config_vector,
            queue_vectors,
        };
        let kind = r.u32()?;
        if kind != KIND_BLK {
            return Err(super::codec::DecodeError(format!("unknown virtio device kind {kind}")));
        }
        let serial = text(r)?;
        let options = text(r)?;
        let overlay = text(r)?;
        let files = r.count(MAX_FUNCTIONS)?;
        let mut chain = Vec::with_capacity(files);
        for _ in 0..files {
            chain.push(ChainFile { path: text(r)?, len: r.u64()?, mtime_ns: r.i64()? });
        }
        out.push((state, DeviceSnapshot::Blk { serial, drive: FrozenDrive { options, chain, overlay } }));
    }
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_section_round_trips_and_rejects_short_or_long_data() {
        let mut q = Queue::new(256);
        (q.desc, q.avail, q.used, q.ready, q.next_avail, q.next_used, q.event_idx, q.signalled_used) =
            (0x1000, 0x2000, 0x3000, true, 7, 6, true, 5);
        let state = VirtioPciState {
            command: 6,
            bar0: 0xc001_0000,
            interrupt_line: 11,
            device_feature_select: 1,
            driver_feature_select: 1,
            driver_features: 1 << 32 | 1 << 29,
            status: 15,
            queue_select: 0,
            queues: vec![q],
            isr: 1,
            notified: 1,
            msix: MsixState { control: 0x8000, table: vec![[0xfee0_0000, 0, 0x41, 0], [0, 0, 0, 1]], pending: 2 },
            config_vector: 1,
            queue_vectors: vec![0],
        };
        let drive = FrozenDrive {
            options: "file=/x/o,,v.qcow2,format=qcow2,readonly=off".into(),
            chain: vec![ChainFile { path: "/x/o,v.qcow2".into(), len: 196_608, mtime_ns: -5 }],
            overlay: "/x/snap.vda.qcow2".into(),
        };
        let saved = vec![(state, DeviceSnapshot::Blk { serial: "strata-vda".into(), drive })];
        let bytes = encode(&saved);
        assert_eq!(decode(&bytes, 2).unwrap(), saved);
        assert!(decode(&bytes[..bytes.len() - 1], 2).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long, 2).is_err());
        // Version 1: the same bytes without the MSI-X block (control 2, pending 8, count 4, two
        // entries of 16, config vector 2, count 4, one queue vector 2 = 54 bytes), which sits
        // just before the device kind (u32) and the serial's length (u32).
        let serial_at = bytes.windows(10).position(|w| w == b"strata-vda").unwrap();
        let msix_end = serial_at - 8;
        let v1 = [&bytes[..msix_end - 54], &bytes[msix_end..]].concat();
        let mut old = saved.clone();
        old[0].0.msix = MsixState::new(2);
        (old[0].0.config_vector, old[0].0.queue_vectors) = (NO_VECTOR, vec![NO_VECTOR]);
        assert_eq!(decode(&v1, 1).unwrap(), old);
        assert!(decode(&bytes, 1).is_err());
    }
}
