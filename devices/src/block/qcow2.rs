//! qcow2 images through the `imago` crate (`sync` feature: plain blocking calls, no async
//! runtime), including backing chains: the backing file the image names is opened read-only by
//! imago (relative names resolve against the image's directory, as in QEMU).
//!
//! Discard uses imago's `discard_to_any`, which frees whole clusters in the qcow2 metadata but
//! leaves their bytes in the host file; as QEMU does with `discard=unmap`, we then punch holes for
//! the host clusters that were freed (found by comparing the mapping before and after), so the
//! image file really shrinks. Not done for images with internal snapshots, whose clusters may still
//! be referenced by a snapshot. Write-zeroes uses `write_zeroes` (zero clusters, which also hide a
//! backing image's data).

use super::{BlockBackend, BlockError};
use imago::file::File;
use imago::qcow2::Qcow2;
use imago::{FormatAccess, FormatDriverBuilder, PermissiveImplicitOpenGate, ShallowMapping};
use std::io;

/// An open qcow2 image (and its backing chain).
pub struct Qcow2Image {
    access: FormatAccess<File>,
    /// The image file again, for punching holes where freed clusters were (writable images
    /// without internal snapshots only).
    hole_punch: Option<std::fs::File>,
    cluster_size: u64,
}

/// Reads cluster_bits and nb_snapshots from the qcow2 header (QEMU docs/interop/qcow2.txt:
/// big-endian u32 at bytes 20 and 60).
fn header_facts(path: &str) -> io::Result<(u64, u32)> {
    use std::os::unix::fs::FileExt;
    let mut h = [0u8; 64];
    std::fs::File::open(path)?.read_exact_at(&mut h, 0)?;
    let cluster_bits = u32::from_be_bytes([h[20], h[21], h[22], h[23]]).clamp(9, 21);
    Ok((1 << cluster_bits, u32::from_be_bytes([h[60], h[61], h[62], h[63]])))
}

impl Qcow2Image {
    /// Opens `path`, writable unless `readonly`; its backing chain read-only.
    ///
    /// # Errors
    /// [`BlockError::Image`] naming the file: not qcow2, corrupt or truncated metadata, a missing
    /// backing file, or a file the host will not open for writing.
    pub fn open(path: &str, readonly: bool) -> Result<Qcow2Image, BlockError> {
        Self::open_with(path, readonly, false)
    }

    /// [`Qcow2Image::open`], bypassing the host page cache when `direct` (`cache=none` and
    /// `directsync`: imago opens the image and its backing chain with `O_DIRECT` and realigns
    /// requests that are not aligned through bounce buffers of its own).
    ///
    /// # Errors
    /// As [`Qcow2Image::open`].
    pub fn open_with(path: &str, readonly: bool, direct: bool) -> Result<Qcow2Image, BlockError> {
        check_backing_chain(path)?;
        if !readonly {
            check_refcount_coverage(path).map_err(|problem| BlockError::Image { path: path.to_string(), problem })?;
        }
        let image = Qcow2::<File>::builder_path(path)
            .storage_open_options(imago::StorageOpenOptions::new().direct(direct))
            .write(!readonly)
            .open(PermissiveImplicitOpenGate::default())
            .map_err(|e| BlockError::Image { path: path.to_string(), problem: one_line(&e) })?;
        let (cluster_size, snapshots) =
            header_facts(path).map_err(|e| BlockError::Open { path: path.to_string(), source: e })?;
        let hole_punch = if readonly || snapshots != 0 {
            None
        } else {
            Some(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| BlockError::Open { path: path.to_string(), source: e })?,
            )
        };
        Ok(Qcow2Image { access: FormatAccess::new(image), hole_punch, cluster_size })
    }

    /// The host offset of the top layer's data for the cluster at guest `offset`, if allocated there.
    fn host_cluster(&self, offset: u64) -> io::Result<Option<u64>> {
        Ok(match self.access.get_shallow_mapping(offset, self.cluster_size)? {
            (ShallowMapping::Raw { offset, .. }, _) => Some(offset),
            _ => None,
        })
    }
}

/// Deepest backing chain opened (imago opens a chain recursively, one stack frame set per file).
const MAX_BACKING_DEPTH: usize = 64;

/// Refuses a backing chain that loops back on itself (an image naming itself or an ancestor as
/// its backing file) or is absurdly deep, before imago follows it: imago would recurse until the
/// host stack overflows (found by the `qcow2` fuzz target). Files that cannot be read are left
/// for imago to report.
fn check_backing_chain(path: &str) -> Result<(), BlockError> {
    let mut seen = Vec::new();
    let mut next = Some(path.to_string());
    while let Some(p) = next {
        let Ok(real) = std::fs::canonicalize(&p) else { return Ok(()) };
        if seen.contains(&real) {
            return Err(BlockError::Image {
                path: path.to_string(),
                problem: format!("backing file {p} makes the backing chain a loop"),
            });
        }
        if seen.len() == MAX_BACKING_DEPTH {
            return Err(BlockError::Image {
                path: path.to_string(),
                problem: format!("backing chain deeper than {MAX_BACKING_DEPTH} files"),
            });
        }
        seen.push(real);
        next = match super::probe(&p) {
            Ok(super::options::Format::Qcow2) => super::snapshot::backing_of(&p).ok().flatten(),
            _ => None,
        };
    }
    Ok(())
}

/// Refuses a writable image whose refcount table does not cover its own file: every cluster of
/// the file must fall under a refcount block the table points to inside the file (QEMU
/// docs/interop/qcow2.txt, "Host cluster management"; what `qemu-img check` calls a refcount
/// block outside the image or a missing one). imago fills such gaps on the first allocation by
/// making refcount blocks recursively, one level per missing block, and a crafted image could
/// send it deep enough to overflow the host stack (found by the `qcow2` fuzz target); images
/// qemu-img makes always satisfy this, and read-only ones never allocate.
fn check_refcount_coverage(path: &str) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut h = [0u8; 104];
    file.read_exact_at(&mut h[..72], 0).map_err(|_| "truncated qcow2 header".to_string())?;
    let v3_fields = file.read_exact_at(&mut h[72..104], 72).is_ok();
    let be32 = |o: usize| u32::from_be_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
    let be64 = |o: usize| u64::from(be32(o)) << 32 | u64::from(be32(o + 4));
    let (version, cluster_bits) = (be32(4), be32(20));
    if !(9..=21).contains(&cluster_bits) {
        return Ok(()); // imago refuses it with its own message
    }
    let refcount_order = if version >= 3 && v3_fields { be32(96) } else { 4 };
    if refcount_order > 6 {
        return Ok(()); // likewise
    }
    let cluster = 1u64 << cluster_bits;
    let per_block = (cluster * 8) >> refcount_order;
    let (table, table_clusters) = (be64(48), u64::from(be32(56)));
    let needed = len.div_ceil(cluster).div_ceil(per_block);
    if needed > table_clusters * cluster / 8 {
        return Err(format!(
            "the refcount table ({table_clusters} clusters) does not cover the {len}-byte file (corrupt image)"
        ));
    }
    // Read in chunks of 8192 entries: a large image's table is megabytes.
    let mut buf = vec![0u8; 8 * 8192];
    let mut first = 0;
    while first < needed {
        let n = (needed - first).min(8192) as usize;
        let at = table.checked_add(8 * first).ok_or("refcount table outside the file")?;
        file.read_exact_at(&mut buf[..8 * n], at).map_err(|_| "refcount table outside the file".to_string())?;
        for (k, e) in buf[..8 * n].chunks_exact(8).enumerate() {
            let block = u64::from_be_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
            let block = block & !(cluster - 1) & ((1 << 56) - 1);
            if block == 0 || block >= len {
                return Err(format!(
                    "refcount block {} is missing or outside the file (corrupt image; qemu-img check -r all repairs it)",
                    first + k as u64
                ));
            }
        }
        first += n as u64;
    }
    Ok(())
}

/// An error as one line (imago's messages may carry a cause chain).
fn one_line(e: &io::Error) -> String {
    e.to_string().replace('\n', "; ")
}

impl BlockBackend for Qcow2Image {
    fn size(&self) -> u64 {
        self.access.size()
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.access.read(buf, offset)
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.access.write(buf, offset)
    }

    fn flush(&mut self) -> io::Result<()> {
        // flush writes imago's cached metadata to the file; sync makes both stable.
        self.access.flush()?;
        self.access.sync()
    }

    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let cs = self.cluster_size;
        let end = offset.saturating_add(len).min(self.size());
        let mut before = Vec::new();
        if self.hole_punch.is_some() {
            let mut c = offset.div_ceil(cs) * cs;
            while c + cs <= end {
                if let Some(host) = self.host_cluster(c)? {
                    before.push((c, host));
                }
                c += cs;
            }
        }
        self.access.discard_to_any(offset, len)?;
        for (guest, host) in before {
            if self.host_cluster(guest)? != Some(host) {
                if let Some(f) = &self.hole_punch {
                    super::raw::punch_hole(f, host, cs)?;
                }
            }
        }
        Ok(())
    }

    fn write_zeroes(&mut self, offset: u64, len: u64, unmap: bool) -> io::Result<()> {
        if unmap {
            // discard_to_zero frees clusters where it can and reads back zeros.
            if self.access.discard_to_zero(offset, len).is_ok() {
                return Ok(());
            }
        }
        self.access.write_zeroes(offset, len)
    }
}
