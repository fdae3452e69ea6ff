//! Linux x86-64 signal numbers and gdb's: the remote protocol numbers signals gdb's own way
//! (gdb's `gdb/signals.def`, gdbstub's `Signal` constants), which differ from Linux's past
//! SIGBUS (Linux 7 is SIGBUS, gdb's 7 is SIGEMT; Linux 10 is SIGUSR1, gdb's 30). Linux numbers
//! from `signal(7)`.

use gdbstub::common::Signal;

/// gdb's number for Linux signals 1..=31, by index (STKFLT, which gdb has no name for, is gdb's
/// "unknown signal").
const LINUX_TO_GDB: [u8; 32] = [
    0,   // 0: none
    1,   // SIGHUP
    2,   // SIGINT
    3,   // SIGQUIT
    4,   // SIGILL
    5,   // SIGTRAP
    6,   // SIGABRT
    10,  // SIGBUS
    8,   // SIGFPE
    9,   // SIGKILL
    30,  // SIGUSR1
    11,  // SIGSEGV
    31,  // SIGUSR2
    13,  // SIGPIPE
    14,  // SIGALRM
    15,  // SIGTERM
    143, // SIGSTKFLT: GDB_SIGNAL_UNKNOWN
    20,  // SIGCHLD
    19,  // SIGCONT
    17,  // SIGSTOP
    18,  // SIGTSTP
    21,  // SIGTTIN
    22,  // SIGTTOU
    16,  // SIGURG
    24,  // SIGXCPU
    25,  // SIGXFSZ
    26,  // SIGVTALRM
    27,  // SIGPROF
    28,  // SIGWINCH
    23,  // SIGIO
    32,  // SIGPWR
    12,  // SIGSYS
];

/// gdb's number for Linux signal `sig`.
pub fn to_gdb(sig: i32) -> Signal {
    Signal(match sig {
        1..=31 => LINUX_TO_GDB[sig as usize],
        32 => 77,                    // GDB_SIGNAL_REALTIME_32
        33..=63 => (sig + 12) as u8, // GDB_SIGNAL_REALTIME_33.. = 45..
        64 => 78,                    // GDB_SIGNAL_REALTIME_64
        _ => 143,
    })
}

/// The Linux signal for gdb's `sig`; `None` when Linux has none.
pub fn from_gdb(sig: Signal) -> Option<i32> {
    let g = sig.0;
    if let Some(i) = LINUX_TO_GDB.iter().position(|&x| x == g && g != 0 && g != 143) {
        return Some(i as i32);
    }
    match g {
        77 => Some(32),
        45..=75 => Some(g as i32 - 12),
        78 => Some(64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_gdbstub_names() {
        for sig in (1..=64).filter(|&s| s != 16) {
            assert_eq!(from_gdb(to_gdb(sig)), Some(sig), "signal {sig}");
        }
        // gdbstub's names for gdb's numbers; Linux x86-64's numbers from signal(7).
        for (linux, gdb) in [
            (10, Signal::SIGUSR1),
            (12, Signal::SIGUSR2),
            (11, Signal::SIGSEGV),
            (7, Signal::SIGBUS),
            (17, Signal::SIGCHLD),
            (31, Signal::SIGSYS),
            (29, Signal::SIGIO),
            (30, Signal::SIGPWR),
            (34, Signal::SIG34),
            (6, Signal::SIGABRT),
            (8, Signal::SIGFPE),
            (4, Signal::SIGILL),
        ] {
            assert_eq!(to_gdb(linux), gdb, "Linux signal {linux}");
        }
    }
}
