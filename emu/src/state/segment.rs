//! Segment registers with their hidden (descriptor-cache) parts, and descriptor-table registers.
//! Reference: SDM Vol. 3, 3.4 (segment selectors and descriptors).

/// Segment register numbers in the SReg encoding order.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegReg {
    Es = 0,
    Cs = 1,
    Ss = 2,
    Ds = 3,
    Fs = 4,
    Gs = 5,
}

/// Descriptor attribute bits as kept in `Segment::attr` (the descriptor's bits 40..55, packed
/// the way VMX and KVM store them: type in 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15).
pub mod attr {
    pub const TYPE_MASK: u16 = 0xf;
    pub const S: u16 = 1 << 4;
    pub const DPL_SHIFT: u16 = 5;
    pub const P: u16 = 1 << 7;
    pub const L: u16 = 1 << 13;
    pub const DB: u16 = 1 << 14;
    pub const G: u16 = 1 << 15;
}

/// A segment register: the visible selector and the cached descriptor.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub base: u64,
    pub limit: u32,
    pub selector: u16,
    pub attr: u16,
}

impl Segment {
    /// A flat 64-bit code segment as a long-mode OS sets it up (CS.L=1, D=0).
    pub fn flat_code64(selector: u16, dpl: u8) -> Self {
        Segment {
            base: 0,
            limit: 0xffff_ffff,
            selector,
            attr: 0xb | attr::S | (dpl as u16) << attr::DPL_SHIFT | attr::P | attr::L | attr::G,
        }
    }

    /// A flat writable data segment.
    pub fn flat_data(selector: u16, dpl: u8) -> Self {
        Segment {
            base: 0,
            limit: 0xffff_ffff,
            selector,
            attr: 0x3 | attr::S | (dpl as u16) << attr::DPL_SHIFT | attr::P | attr::DB | attr::G,
        }
    }

    pub fn long(&self) -> bool {
        self.attr & attr::L != 0
    }

    pub fn default_big(&self) -> bool {
        self.attr & attr::DB != 0
    }

    pub fn dpl(&self) -> u8 {
        ((self.attr >> attr::DPL_SHIFT) & 3) as u8
    }
}

/// GDTR or IDTR.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DescriptorTable {
    pub base: u64,
    pub limit: u16,
    pub _pad: [u16; 3],
}
