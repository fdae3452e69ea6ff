//! What the user-mode kernel did for the process, for the event trace (`strata user --trace
//! --trace-events`): system calls with their arguments and results, and signals as they are
//! acted on. Recording is off unless a log is attached ([`super::syscall::SysState::events`]);
//! the tracer drains the log between instructions, so events land between the instruction
//! lines where they happened.

use std::sync::{Arc, Mutex};

/// One thing the kernel did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserEvent {
    /// System call `nr` with its six argument registers; `ret` is RAX afterwards, `None` when
    /// the call did not return (exit, exit_group).
    Syscall { nr: u64, args: [u64; 6], ret: Option<u64> },
    /// A signal taken off the pending set (or raised by a fault) and acted on as `action` says.
    Signal { signo: i32, code: i32, addr: u64, action: SignalAction },
}

/// What became of a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalAction {
    /// Its handler at this address runs.
    Handler(u64),
    Ignored,
    /// It ended the process.
    Killed,
}

/// The shared log the kernel appends to and the tracer drains (shared because the tracer
/// lives inside tier 0 while the kernel acts between engine exits).
pub type EventLog = Arc<Mutex<Vec<UserEvent>>>;

/// Appends `e` to the process's log, when one is attached.
pub fn record(log: &Option<EventLog>, e: UserEvent) {
    if let Some(log) = log {
        // A poisoned log (the tracer panicked) loses events, not the process.
        if let Ok(mut v) = log.lock() {
            v.push(e);
        }
    }
}
