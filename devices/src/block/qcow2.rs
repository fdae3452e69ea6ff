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
        let image = Qcow2::<File>::builder_path(path)
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
