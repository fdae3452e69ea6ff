//! The BIOS ROM and the i440FX's PAM ("programmable attribute map") shadowing of 0xC0000-0xFFFFF.
//!
//! A BIOS image of 64, 128 or 256 KiB sits at the top of 4 GiB and, as QEMU's `-bios` places it,
//! its last 128 KiB (or all of it, if smaller) also ends at 1 MiB. Below 1 MiB the chipset decides
//! per segment whether reads and writes reach that ROM or the RAM under it: Intel's *82441FX PMC*
//! datasheet, section 3.2.18 (PAM0-PAM6, config 0x59-0x5F): PAM0 bits 5:4 for 0xF0000-0xFFFFF,
//! then one nibble per 16 KiB from 0xC0000 (PAM1 bits 1:0 for 0xC0000, bits 5:4 for 0xC4000, ...),
//! bit 0 (of the nibble) read enable, bit 1 write enable: 00 both to ROM (writes lost), 01 read
//! RAM / write ROM (lost), 10 read ROM / write RAM, 11 RAM.
//!
//! Representation: guest RAM at these addresses always holds what *reads* return (the ROM's
//! bytes while reads go to ROM), and [`ShadowRom::hidden`] keeps the other side (the RAM under
//! the ROM). So every read, instruction fetch, TLB fast path and the JIT see plain RAM and need
//! no change. A segment whose writes do not reach what reads return (anything but 11) is
//! write-protected in the software TLB (`SoftMmu::set_rom_write_protect`): its stores take the
//! slow path, where [`ShadowRom::write`] sends them to the hidden RAM (10) or drops them. A PAM
//! change swaps contents; the pages whose contents changed are returned so the caller drops the
//! code decoded from them.

use crate::mem::GuestRam;
use std::sync::Arc;

/// First address PAM governs.
pub const SHADOW_BASE: u64 = 0xc_0000;
/// One past the last.
pub const SHADOW_END: u64 = 0x10_0000;
/// Pages under PAM control (exactly 64, one bit each in a `u64` mask).
pub const SHADOW_PAGES: usize = ((SHADOW_END - SHADOW_BASE) >> 12) as usize;
/// Largest part of the image that appears below 1 MiB.
pub const LOW_ALIAS_MAX: u64 = 0x2_0000;
/// Host bridge configuration offset of PAM0.
pub const PAM0: u8 = 0x59;
/// PAM registers (PAM0-PAM6).
pub const PAM_REGS: usize = 7;

/// Read enable and write enable of one segment's nibble.
const RE: u8 = 1;
const WE: u8 = 2;

/// One PAM segment: base, length, register index (0 = PAM0), nibble shift.
#[derive(Clone, Copy, Debug)]
struct Segment {
    base: u64,
    len: u64,
    reg: usize,
    shift: u32,
}

/// The 13 segments: 0xF0000 (64 KiB, PAM0 high nibble), then 12 of 16 KiB from 0xC0000.
fn segments() -> impl Iterator<Item = Segment> {
    std::iter::once(Segment { base: 0xf_0000, len: 0x1_0000, reg: 0, shift: 4 }).chain((0..12).map(|i| Segment {
        base: SHADOW_BASE + i * 0x4000,
        len: 0x4000,
        reg: 1 + (i as usize) / 2,
        shift: (i as u32 % 2) * 4,
    }))
}

impl Segment {
    fn attr(&self, pam: &[u8; PAM_REGS]) -> u8 {
        (pam[self.reg] >> self.shift) & 3
    }
    fn range(&self) -> std::ops::Range<usize> {
        (self.base - SHADOW_BASE) as usize..(self.base - SHADOW_BASE + self.len) as usize
    }
}

/// Why a BIOS image is refused.
#[derive(Debug, thiserror::Error)]
pub enum BiosError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: a BIOS image must be 64, 128 or 256 KiB, this one has {len} bytes")]
    Size { path: String, len: usize },
    #[error("{mem} bytes of RAM cannot hold the BIOS's shadow area below 1 MiB")]
    RamTooSmall { mem: u64 },
}

/// Checks a BIOS image's size (64, 128 or 256 KiB, as QEMU's `-bios` accepts for the PC).
///
/// # Errors
/// [`BiosError::Size`].
pub fn check_image(path: &str, image: &[u8]) -> Result<(), BiosError> {
    match image.len() {
        0x1_0000 | 0x2_0000 | 0x4_0000 => Ok(()),
        len => Err(BiosError::Size { path: path.to_string(), len }),
    }
}

/// The BIOS ROM and the PAM state (see the module doc).
pub struct ShadowRom {
    image: Arc<[u8]>,
    /// PAM0-PAM6 as last applied.
    pam: [u8; PAM_REGS],
    /// 256 KiB for 0xC0000-0xFFFFF: per segment, the side reads do not see.
    hidden: Vec<u8>,
    /// How far the firmware boot got, for the timeline.
    pub progress: BootProgress,
}

/// The firmware phases the timeline marks beyond the reset and the first instruction.
#[derive(Debug, Default)]
pub struct BootProgress {
    /// The option ROM's first read of a kernel item from fw_cfg was recorded.
    pub option_rom_seen: bool,
    /// The kernel's entry: physical address and the bytes expected there (so a block decoded
    /// at that address before the kernel arrived does not count).
    pub entry: Option<(u64, Vec<u8>)>,
    /// When a block starting at `entry` with those bytes was first decoded: host time and
    /// instructions retired.
    pub entered: Option<(std::time::Instant, u64)>,
    /// `entered` is in the timeline.
    pub entry_recorded: bool,
}

impl ShadowRom {
    /// The reset state: PAM all 0 (every segment reads the ROM), so the ROM's bytes are put in
    /// RAM's place and the RAM's own (`ram` as loaded so far) go to the hidden side.
    ///
    /// # Errors
    /// RAM ends below 1 MiB.
    pub fn new(image: Arc<[u8]>, ram: &mut GuestRam) -> Result<Self, BiosError> {
        let len = (SHADOW_END - SHADOW_BASE) as usize;
        let hidden = ram.slice(SHADOW_BASE, len).ok_or(BiosError::RamTooSmall { mem: ram.len() })?.to_vec();
        let rom = Self { image, pam: [0; PAM_REGS], hidden, progress: BootProgress::default() };
        let low: Vec<u8> = (SHADOW_BASE..SHADOW_END).map(|pa| rom.rom_byte(pa)).collect();
        if let Some(dst) = ram.slice_mut(SHADOW_BASE, len) {
            dst.copy_from_slice(&low);
        }
        Ok(rom)
    }

    /// The whole image (mapped at the top of 4 GiB).
    pub fn image(&self) -> &Arc<[u8]> {
        &self.image
    }

    /// Where the image starts at the top of 4 GiB.
    pub fn high_base(&self) -> u64 {
        (1u64 << 32) - self.image.len() as u64
    }

    /// The ROM's byte at `pa` below 1 MiB: the image's tail ends at 1 MiB; below what it
    /// covers nothing answers (an open bus reads all ones).
    pub fn rom_byte(&self, pa: u64) -> u8 {
        let alias = (self.image.len() as u64).min(LOW_ALIAS_MAX);
        let back = SHADOW_END.wrapping_sub(pa);
        if pa < SHADOW_END && back <= alias {
            self.image[self.image.len() - back as usize]
        } else {
            0xff
        }
    }

    /// `len` bytes of the image's high copy at physical `pa`, if they all lie in it (for
    /// instruction fetches from the reset vector's region).
    pub fn high_bytes(&self, pa: u64, len: usize) -> Option<&[u8]> {
        let off = usize::try_from(pa.checked_sub(self.high_base())?).ok()?;
        self.image.get(off..off.checked_add(len)?)
    }

    /// A block of `bytes` is being decoded at physical `pa` (`retired` instructions so far):
    /// notes the kernel's entry when it is the one watched for.
    pub fn note_decode(&mut self, pa: u64, bytes: &[u8], retired: u64) {
        let p = &mut self.progress;
        if p.entered.is_none() && p.entry.as_ref().is_some_and(|(at, b)| *at == pa && bytes.starts_with(b)) {
            p.entered = Some((std::time::Instant::now(), retired));
        }
    }

    /// PAM0-PAM6 as last applied.
    pub fn pam(&self) -> [u8; PAM_REGS] {
        self.pam
    }

    /// Bit n set: page `SHADOW_BASE + n * 4096` is write-protected (its stores do not reach what
    /// its reads return).
    pub fn write_protect_mask(&self) -> u64 {
        let mut mask = 0u64;
        for s in segments() {
            if s.attr(&self.pam) != RE | WE {
                let first = (s.base - SHADOW_BASE) >> 12;
                for p in first..first + (s.len >> 12) {
                    mask |= 1 << p;
                }
            }
        }
        mask
    }

    /// Applies new PAM registers; returns the physical pages whose contents (what reads see)
    /// changed, so decoded code from them can be dropped.
    pub fn apply(&mut self, pam: [u8; PAM_REGS], ram: &mut GuestRam) -> Vec<u64> {
        let mut changed = Vec::new();
        for s in segments() {
            let (old, new) = (s.attr(&self.pam), s.attr(&pam));
            if (old ^ new) & RE == 0 {
                continue;
            }
            let r = s.range();
            let Some(visible) = ram.slice_mut(s.base, s.len as usize) else { continue };
            if new & RE != 0 {
                // ROM -> RAM: the RAM kept aside comes back.
                visible.copy_from_slice(&self.hidden[r]);
            } else {
                // RAM -> ROM: keep the RAM aside, show the ROM.
                self.hidden[r].copy_from_slice(visible);
                for (i, b) in visible.iter_mut().enumerate() {
                    *b = self.rom_byte(s.base + i as u64);
                }
            }
            changed.extend((0..s.len >> 12).map(|p| s.base + (p << 12)));
        }
        self.pam = pam;
        changed
    }

    /// A store to a write-protected page at `pa` (the caller checked it lies in the shadow area):
    /// to the hidden RAM where the segment writes RAM but reads ROM, else lost (writes to ROM).
    pub fn write(&mut self, pa: u64, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            let a = pa + i as u64;
            let Some(s) = segments().find(|s| (s.base..s.base + s.len).contains(&a)) else { continue };
            if s.attr(&self.pam) == WE {
                self.hidden[(a - SHADOW_BASE) as usize] = b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 256 KiB image whose every byte says where it is (offset / 4096, and 0xAA for the
    /// last page), over 2 MiB of RAM holding 0x11 below 1 MiB.
    fn setup() -> (ShadowRom, GuestRam) {
        let image: Vec<u8> = (0..0x4_0000usize).map(|i| (i >> 12) as u8).collect();
        let mut ram = GuestRam::new(2 << 20).unwrap();
        ram.slice_mut(0, 0x10_0000).unwrap().fill(0x11);
        let rom = ShadowRom::new(image.into(), &mut ram).unwrap();
        (rom, ram)
    }

    #[test]
    fn reset_maps_the_images_last_128k_below_1m_and_all_of_it_below_4g() {
        let (rom, ram) = setup();
        // 0xE0000 is the image's offset 0x20000 (page 0x20), 0xFFFFF its last byte (page 0x3F).
        assert_eq!(ram.slice(0xe_0000, 1).unwrap()[0], 0x20);
        assert_eq!(ram.slice(0xf_ffff, 1).unwrap()[0], 0x3f);
        // 0xC0000-0xDFFFF: nothing answers.
        assert_eq!(ram.slice(0xc_0000, 1).unwrap()[0], 0xff);
        assert_eq!(rom.high_base(), 0xfffc_0000);
        assert_eq!(rom.high_bytes(0xffff_fff0, 16).unwrap()[0], 0x3f);
        assert_eq!(rom.high_bytes(0xfffc_0000, 1).unwrap()[0], 0);
        assert!(rom.high_bytes(0xffff_fff0, 17).is_none());
        assert!(rom.high_bytes(0xfffb_ffff, 1).is_none());
        assert_eq!(rom.write_protect_mask(), u64::MAX);
        // A 64 KiB image covers 0xF0000 only.
        let mut ram2 = GuestRam::new(2 << 20).unwrap();
        let small = ShadowRom::new(vec![7u8; 0x1_0000].into(), &mut ram2).unwrap();
        assert_eq!((small.rom_byte(0xf_0000), small.rom_byte(0xe_ffff)), (7, 0xff));
    }

    #[test]
    fn pam_switches_between_rom_and_ram_as_the_datasheet_says() {
        let (mut rom, mut ram) = setup();
        // SeaBIOS's sequence: F0000 to "write RAM, read ROM" (10), copy, then RAM (11).
        let mut pam = [0u8; PAM_REGS];
        pam[0] = 0x20;
        assert!(rom.apply(pam, &mut ram).is_empty(), "reads still go to ROM");
        assert_ne!(rom.write_protect_mask() & 1 << 0x30, 0);
        rom.write(0xf_0000, &[0x99]);
        assert_eq!(ram.slice(0xf_0000, 1).unwrap()[0], 0x30, "reads still see the ROM");
        pam[0] = 0x30;
        let changed = rom.apply(pam, &mut ram);
        assert_eq!(changed.len(), 16);
        assert_eq!(ram.slice(0xf_0000, 2).unwrap(), [0x99, 0x11], "the RAM written through 10");
        assert_eq!(rom.write_protect_mask() & 0xffff << 0x30, 0);
        // PAM1 low nibble 01 (read RAM, writes lost) for 0xC0000.
        pam[1] = 0x01;
        rom.apply(pam, &mut ram);
        assert_eq!(ram.slice(0xc_0000, 1).unwrap()[0], 0x11);
        assert_eq!(rom.write_protect_mask() & 0xf, 0xf);
        rom.write(0xc_0000, &[0x55]);
        // Back to ROM and to RAM again: the RAM's byte survived, the lost write did not appear.
        pam[1] = 0x00;
        rom.apply(pam, &mut ram);
        assert_eq!(ram.slice(0xc_0000, 1).unwrap()[0], 0xff);
        pam[1] = 0x03;
        rom.apply(pam, &mut ram);
        assert_eq!(ram.slice(0xc_0000, 1).unwrap()[0], 0x11);
        // PAM1's high nibble is 0xC4000's: untouched.
        assert_eq!(ram.slice(0xc_4000, 1).unwrap()[0], 0xff);
    }

    #[test]
    fn wrong_sizes_are_refused() {
        for n in [0, 512, 0x1_0000 + 1, 0x3_0000, 0x8_0000] {
            assert!(check_image("b", &vec![0; n]).is_err(), "{n}");
        }
        for n in [0x1_0000, 0x2_0000, 0x4_0000] {
            assert!(check_image("b", &vec![0; n]).is_ok());
        }
    }
}
