//! The raw console: while the serial console (with its Ctrl-A keys) reads a terminal, the
//! terminal is put in raw mode (rustix termios), so every key reaches strata at once — Ctrl-A c
//! and Ctrl-A x act without Enter, and the guest sees each key as it is typed (Ctrl-C
//! included, as under QEMU's `-nographic`). Output processing stays on, so strata's own
//! lines (the prompt, messages) still end in CR LF.
//!
//! The terminal is restored on every way out: the guard's drop (a normal end or an error
//! return), the panic hook (before the default one prints), and SIGTERM, SIGHUP, SIGINT and
//! SIGQUIT from outside, which a thread (`signal-hook`) catches to restore the terminal before
//! the signal's default action ends the process.

use rustix::termios::{self, OptionalActions, OutputModes, Termios};
use std::sync::{Mutex, Once};

/// The terminal settings to restore, while raw mode is on.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Raw mode, on for as long as this lives.
pub struct RawTerminal(());

impl Drop for RawTerminal {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts stdin's terminal in raw mode; `None` when stdin is not a terminal (a pipe, a file:
/// nothing to change).
///
/// # Errors
/// The terminal's settings cannot be read or changed.
pub fn enter_raw() -> Result<Option<RawTerminal>, String> {
    let stdin = std::io::stdin();
    if !termios::isatty(&stdin) {
        return Ok(None);
    }
    let saved = termios::tcgetattr(&stdin).map_err(|e| format!("terminal: {e}"))?;
    let mut raw = saved.clone();
    raw.make_raw();
    raw.output_modes.insert(OutputModes::OPOST);
    *SAVED.lock().unwrap_or_else(|p| p.into_inner()) = Some(saved);
    install_restorers();
    termios::tcsetattr(&stdin, OptionalActions::Now, &raw).map_err(|e| format!("terminal: {e}"))?;
    Ok(Some(RawTerminal(())))
}

/// Puts the saved settings back, once.
fn restore() {
    let saved = SAVED.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(t) = saved {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &t);
    }
}

/// The panic hook and the signal thread (once per process).
fn install_restorers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
        if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT, SIGQUIT]) {
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    restore();
                    // The signal's own default action (termination) from here.
                    let _ = signal_hook::low_level::emulate_default_handler(sig);
                    std::process::exit(128 + sig);
                }
            });
        }
    });
}
