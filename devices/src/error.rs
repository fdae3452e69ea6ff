//! The crate's error type. Device models have no failure modes of their own (guest misuse is ignored
//! and trace-logged, as on the chips); errors come from building the machine's buses.

use crate::bus::BusError;

/// Errors from the devices crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// A bus could not place a device (see [`BusError`]).
    #[error(transparent)]
    Bus(#[from] BusError),
}
