//! Linear-to-physical translation: the page walk (`walk.rs`), the software TLB (`tlb.rs`), the
//! caches the software engines keep around it (`softmmu.rs`) and the guest memory access helpers
//! every instruction uses (`access.rs`).

pub mod access;
pub mod softmmu;
pub mod tlb;
pub mod walk;

/// The kind of access being translated; it decides the permission checked and the #PF error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Exec,
}

pub use access::PhysLoc;
pub use softmmu::SoftMmu;
pub use tlb::Tlb;
pub use walk::Translation;
