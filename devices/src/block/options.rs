//! The `--drive` option, parsed as QEMU documents `-drive` (qemu-options.hx, "-drive"): a
//! comma-separated list of `key=value` pairs, a literal comma in a value written as `,,`.
//!
//! Keys: `file` (required), `format=raw|qcow2` (probed from the file when absent), `readonly=on|off`,
//! `cache=writethrough|writeback|none|directsync|unsafe`, `discard=ignore|off|unmap|on`,
//! `detect-zeroes=off|on|unmap`, `aio=threads|native|io_uring`, and `if=virtio`, `media=disk`
//! (the only interface and medium Strata has). Anything else is an [`OptionError`] naming it.

/// A malformed `--drive` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// A part without `=`.
    #[error("--drive {spec}: \"{part}\" is not key=value")]
    NotKeyValue {
        /// The whole option.
        spec: String,
        /// The part.
        part: String,
    },
    /// A key QEMU's -drive has but Strata does not, or one that does not exist.
    #[error("--drive {spec}: unknown key \"{key}\" (known: file, format, readonly, cache, discard, detect-zeroes, aio, if, media)")]
    UnknownKey {
        /// The whole option.
        spec: String,
        /// The key.
        key: String,
    },
    /// A value outside the key's choices.
    #[error("--drive {spec}: {key}={value} is not one of {choices}")]
    BadValue {
        /// The whole option.
        spec: String,
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What is accepted.
        choices: &'static str,
    },
    /// A key given twice.
    #[error("--drive {spec}: {key} given twice")]
    Duplicate {
        /// The whole option.
        spec: String,
        /// The key.
        key: String,
    },
    /// No `file=`.
    #[error("--drive {spec}: file=PATH is required")]
    NoFile {
        /// The whole option.
        spec: String,
    },
    /// An option combination QEMU refuses.
    #[error("--drive {spec}: {why}")]
    Conflict {
        /// The whole option.
        spec: String,
        /// Why.
        why: &'static str,
    },
}

/// Image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A flat file, byte n of the disk at offset n.
    Raw,
    /// QEMU's copy-on-write format.
    Qcow2,
}

/// Host cache mode (QEMU: cache.writeback, cache.direct, cache.no-flush).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// A write completes only once it is on stable storage.
    Writethrough,
    /// Writes complete in the host cache; the guest's flush makes them stable.
    Writeback,
    /// As writeback for the guest, bypassing the host page cache (`O_DIRECT`) as QEMU does.
    None,
    /// As writethrough for the guest, also bypassing the host page cache.
    Directsync,
    /// As writeback, and the guest's flushes are ignored.
    Unsafe,
}

impl CacheMode {
    /// Whether every write must reach stable storage before it completes.
    pub fn write_through(self) -> bool {
        matches!(self, CacheMode::Writethrough | CacheMode::Directsync)
    }

    /// Whether the image is opened to bypass the host page cache (`O_DIRECT`).
    pub fn direct(self) -> bool {
        matches!(self, CacheMode::None | CacheMode::Directsync)
    }
}

/// What detect-zeroes turns an all-zero write into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectZeroes {
    /// Nothing: written as data.
    Off,
    /// A write-zeroes request.
    On,
    /// A discard when `discard=unmap`, else a write-zeroes request.
    Unmap,
}

/// Asynchronous I/O engine requested (accepted; see README for what each does in Strata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aio {
    /// A thread pool.
    Threads,
    /// Linux native AIO.
    Native,
    /// io_uring.
    IoUring,
}

/// One `--drive`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveSpec {
    /// The image file.
    pub file: String,
    /// Its format, or `None` to probe.
    pub format: Option<Format>,
    /// Opened read-only; the guest sees a read-only disk.
    pub readonly: bool,
    /// Cache mode (QEMU's default: writeback).
    pub cache: CacheMode,
    /// Guest discards are passed to the image (`unmap`) or dropped (`ignore`, the default).
    pub discard_unmap: bool,
    /// detect-zeroes (default off).
    pub detect_zeroes: DetectZeroes,
    /// aio (default threads).
    pub aio: Aio,
}

fn choose<T: Copy>(
    spec: &str,
    key: &str,
    value: &str,
    table: &[(&str, T)],
    choices: &'static str,
) -> Result<T, OptionError> {
    table.iter().find(|(name, _)| *name == value).map(|(_, v)| *v).ok_or_else(|| OptionError::BadValue {
        spec: spec.to_string(),
        key: key.to_string(),
        value: value.to_string(),
        choices,
    })
}

/// Splits at single commas; `,,` is a literal comma.
fn split_parts(spec: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                if let Some(p) = parts.last_mut() {
                    p.push(',');
                }
            } else {
                parts.push(String::new());
            }
        } else if let Some(p) = parts.last_mut() {
            p.push(c);
        }
    }
    parts
}

impl DriveSpec {
    /// Parses one `--drive` value.
    ///
    /// # Errors
    /// [`OptionError`] naming the part that is wrong.
    ///
    /// # Example
    /// ```
    /// use devices::block::options::{DriveSpec, Format, CacheMode, DetectZeroes};
    /// let d = DriveSpec::parse("file=a,,b.qcow2,format=qcow2,cache=writethrough,discard=unmap,detect-zeroes=unmap").unwrap();
    /// assert_eq!(d.file, "a,b.qcow2");
    /// assert_eq!((d.format, d.cache, d.discard_unmap, d.detect_zeroes),
    ///            (Some(Format::Qcow2), CacheMode::Writethrough, true, DetectZeroes::Unmap));
    /// assert!(DriveSpec::parse("file=x,cache=sometimes").unwrap_err().to_string().contains("cache=sometimes"));
    /// ```
    pub fn parse(spec: &str) -> Result<DriveSpec, OptionError> {
        let s = spec.to_string();
        let mut d = DriveSpec {
            file: String::new(),
            format: None,
            readonly: false,
            cache: CacheMode::Writeback,
            discard_unmap: false,
            detect_zeroes: DetectZeroes::Off,
            aio: Aio::Threads,
        };
        let mut seen: Vec<String> = Vec::new();
        let mut file = None;
        for part in split_parts(spec) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(OptionError::NotKeyValue { spec: s, part });
            };
            if seen.iter().any(|k| k == key) {
                return Err(OptionError::Duplicate { spec: s, key: key.to_string() });
            }
            seen.push(key.to_string());
            const ON_OFF: &str = "on, off";
            match key {
                "file" if !value.is_empty() => file = Some(value.to_string()),
                "file" => return Err(OptionError::NoFile { spec: s }),
                "format" => {
                    d.format =
                        Some(choose(&s, key, value, &[("raw", Format::Raw), ("qcow2", Format::Qcow2)], "raw, qcow2")?)
                }
                "readonly" => {
                    d.readonly = choose(&s, key, value, &[("on", true), ("off", false)], ON_OFF)?;
                }
                "cache" => {
                    d.cache = choose(
                        &s,
                        key,
                        value,
                        &[
                            ("writethrough", CacheMode::Writethrough),
                            ("writeback", CacheMode::Writeback),
                            ("none", CacheMode::None),
                            ("directsync", CacheMode::Directsync),
                            ("unsafe", CacheMode::Unsafe),
                        ],
                        "writethrough, writeback, none, directsync, unsafe",
                    )?
                }
                "discard" => {
                    d.discard_unmap = choose(
                        &s,
                        key,
                        value,
                        &[("ignore", false), ("off", false), ("unmap", true), ("on", true)],
                        "ignore, off, unmap, on",
                    )?
                }
                "detect-zeroes" => {
                    d.detect_zeroes = choose(
                        &s,
                        key,
                        value,
                        &[("off", DetectZeroes::Off), ("on", DetectZeroes::On), ("unmap", DetectZeroes::Unmap)],
                        "off, on, unmap",
                    )?
                }
                "aio" => {
                    d.aio = choose(
                        &s,
                        key,
                        value,
                        &[("threads", Aio::Threads), ("native", Aio::Native), ("io_uring", Aio::IoUring)],
                        "threads, native, io_uring",
                    )?
                }
                "if" => choose(&s, key, value, &[("virtio", ())], "virtio")?,
                "media" => choose(&s, key, value, &[("disk", ())], "disk")?,
                _ => return Err(OptionError::UnknownKey { spec: s, key: key.to_string() }),
            }
        }
        d.file = file.ok_or_else(|| OptionError::NoFile { spec: s.clone() })?;
        if d.aio == Aio::Native && !matches!(d.cache, CacheMode::None | CacheMode::Directsync) {
            // QEMU: "aio=native was specified, but it requires cache.direct=on".
            return Err(OptionError::Conflict { spec: s, why: "aio=native needs cache=none or cache=directsync" });
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    //! Accepted and refused forms follow qemu-options.hx's -drive documentation.
    use super::*;

    #[test]
    fn defaults_are_qemus() {
        let d = DriveSpec::parse("file=disk.img").unwrap();
        assert_eq!(d.file, "disk.img");
        assert_eq!(d.format, None);
        assert!(!d.readonly && !d.discard_unmap);
        assert_eq!((d.cache, d.detect_zeroes, d.aio), (CacheMode::Writeback, DetectZeroes::Off, Aio::Threads));
    }

    #[test]
    fn every_key() {
        let d = DriveSpec::parse(
            "if=virtio,file=/x/y.raw,format=raw,readonly=on,cache=none,discard=on,detect-zeroes=on,aio=native,media=disk",
        )
        .unwrap();
        assert_eq!(d.format, Some(Format::Raw));
        assert!(d.readonly && d.discard_unmap);
        assert_eq!((d.cache, d.detect_zeroes, d.aio), (CacheMode::None, DetectZeroes::On, Aio::Native));
        assert!(CacheMode::Directsync.write_through() && !CacheMode::Unsafe.write_through());
    }

    #[test]
    fn malformed_options_name_the_problem() {
        let e = |s: &str| DriveSpec::parse(s).unwrap_err().to_string();
        assert!(e("format=raw").contains("file=PATH is required"));
        assert!(e("file=").contains("file=PATH is required"));
        assert!(e("file=a,bogus").contains("\"bogus\" is not key=value"));
        assert!(e("file=a,snapshot=on").contains("unknown key \"snapshot\""));
        assert!(e("file=a,format=vmdk").contains("format=vmdk is not one of raw, qcow2"));
        assert!(e("file=a,file=b").contains("file given twice"));
        assert!(e("file=a,aio=native").contains("aio=native needs cache=none"));
        assert!(e("file=a,readonly=maybe").contains("readonly=maybe"));
        assert!(e("file=a,if=ide").contains("if=ide"));
        for msg in [e("file=a,cache=x"), e("file=a,discard=x"), e("file=a,detect-zeroes=x"), e("file=a,aio=x")] {
            assert!(!msg.contains('\n') && msg.starts_with("--drive file=a,"), "{msg}");
        }
    }

    #[test]
    fn double_comma_is_a_literal_comma() {
        assert_eq!(DriveSpec::parse("file=a,,,,b,readonly=on").unwrap().file, "a,,b");
        assert_eq!(DriveSpec::parse("readonly=on,file=,,x").unwrap().file, ",x");
    }
}
