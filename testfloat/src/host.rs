//! Host x87.
