//! A 9P2000.L file server sharing a host folder with the guest (virtio-9p carries its messages:
//! [`crate::virtio::p9`]).
//!
//! | module | what |
//! |---|---|
//! | [`wire`] | message fields, bounds-checked |
//! | [`resolve`] | names to host files beneath the share's root, never following a host symlink |
//! | [`server`] | fids (a hash map) and the requests |

pub mod resolve;
pub mod server;
#[cfg(test)]
mod tests;
pub mod wire;

pub use server::{Server, ShareConfig, ShareError, MAX_MSIZE};
