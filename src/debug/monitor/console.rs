//! The serial console's monitor, QEMU's mux habit: when strata's stdin feeds the guest's UART,
//! Ctrl-A c switches the terminal to a `(strata) ` prompt serving the monitor's [`commands`]
//! (the guest stopped meanwhile), and Ctrl-A c again or `cont` returns to the guest; Ctrl-A
//! Ctrl-A sends one Ctrl-A to the guest; Ctrl-A x quits.
//!
//! The stdin reader thread ([`spawn_reader`]) only scans for Ctrl-A; on Ctrl-A c it raises an
//! [`Attention`] flag, which the machine checks as its watch ([`Watch::Flag`]), so a run that
//! never uses the prompt runs as before. Lines typed at the prompt reach the machine loop over
//! a channel.
//!
//! On a terminal (in raw mode for the run: [`super::terminal`]) the prompt does its own line
//! handling, as the terminal no longer does: typed characters are echoed, Enter (CR) ends the
//! line, Backspace erases.

use super::commands::{self, Control};
use emu::machine::{Attention, Machine, RunEnd};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

const CTRL_A: u8 = 0x01;
const PROMPT: &str = "(strata) ";

/// What the reader thread tells the machine loop while the prompt is up.
enum Event {
    /// A line typed at the prompt.
    Line(String),
    /// Ctrl-A c at the prompt: back to the guest.
    Leave,
    /// Ctrl-A x, or stdin closed at the prompt.
    Quit,
}

/// The machine loop's end of the console.
pub struct Console {
    /// Raised by the reader on Ctrl-A c or Ctrl-A x (the machine's watch).
    pub attention: Attention,
    /// True while the prompt (not the guest) receives the terminal's bytes.
    prompt: Arc<AtomicBool>,
    events: Receiver<Event>,
    /// Told when a line's command is done (and the prompt flag says where the next bytes go).
    done: Sender<()>,
}

/// How a stay at the prompt ended.
pub enum Resume {
    /// Back to the guest.
    Guest,
    Quit,
    /// `step` ran the guest to its end.
    Ended(RunEnd),
}

/// Starts the thread reading stdin: guest bytes go to `guest`, prompt lines to the console;
/// `raw`: stdin is a terminal in raw mode (the prompt echoes and edits its line itself).
pub fn spawn_reader(guest: Sender<Vec<u8>>, raw: bool) -> Console {
    let attention = Attention(Arc::new(AtomicBool::new(false)));
    let prompt = Arc::new(AtomicBool::new(false));
    let (tx, events) = channel();
    let (done, done_rx) = channel::<()>();
    let (flag, at_prompt) = (attention.0.clone(), prompt.clone());
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin();
        let mut escape = false;
        let mut line = Vec::new();
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut to_guest = Vec::with_capacity(n);
            for &b in &buf[..n] {
                let prompting = at_prompt.load(Ordering::SeqCst);
                if escape {
                    escape = false;
                    match b {
                        b'c' if prompting => {
                            at_prompt.store(false, Ordering::SeqCst);
                            let _ = tx.send(Event::Leave);
                        }
                        b'c' => {
                            at_prompt.store(true, Ordering::SeqCst);
                            flag.store(true, Ordering::SeqCst);
                        }
                        b'x' => {
                            let _ = tx.send(Event::Quit);
                            flag.store(true, Ordering::SeqCst);
                        }
                        CTRL_A if !prompting => to_guest.push(CTRL_A),
                        // Anything else after Ctrl-A is dropped, as QEMU's mux does.
                        _ => {}
                    }
                } else if b == CTRL_A {
                    escape = true;
                } else if prompting {
                    if raw && !edit_line(&mut line, b) {
                        continue;
                    }
                    if b == b'\n' || (raw && b == b'\r') {
                        let _ = tx.send(Event::Line(String::from_utf8_lossy(&line).trim_end().to_string()));
                        line.clear();
                        // Bytes typed after `cont` are the guest's: wait until the command ran.
                        let _ = done_rx.recv();
                    } else {
                        line.push(b);
                    }
                } else {
                    to_guest.push(b);
                }
            }
            if !to_guest.is_empty() && guest.send(to_guest).is_err() {
                break;
            }
        }
        // Stdin closed: a prompt waiting for a line would wait forever.
        if at_prompt.load(Ordering::SeqCst) {
            let _ = tx.send(Event::Quit);
        }
    });
    Console { attention, prompt, events, done }
}

/// A byte typed at the prompt on a raw terminal: echoes it; Backspace/DEL erases the last
/// character. False when the byte was consumed (an erase).
fn edit_line(line: &mut Vec<u8>, b: u8) -> bool {
    let mut out = std::io::stdout();
    let keep = match b {
        0x7f | 0x08 => {
            if line.pop().is_some() {
                let _ = out.write_all(b"\x08 \x08");
            }
            false
        }
        b'\r' | b'\n' => {
            let _ = out.write_all(b"\n");
            true
        }
        _ => {
            let _ = out.write_all(&[b]);
            true
        }
    };
    let _ = out.flush();
    keep
}

impl Console {
    /// Shows the prompt and serves commands until the guest should run again or the run end.
    pub fn serve(&mut self, m: &mut Machine) -> Resume {
        self.attention.0.store(false, Ordering::SeqCst);
        let mut out = std::io::stdout();
        // Ctrl-A x sends Quit without raising the prompt.
        if !self.prompt.load(Ordering::SeqCst) {
            if let Ok(Event::Quit) = self.events.try_recv() {
                return Resume::Quit;
            }
        }
        let _ = write!(out, "\nStrata monitor (Ctrl-A c: back to the guest)\n{PROMPT}");
        let _ = out.flush();
        let resume = loop {
            let Ok(event) = self.events.recv() else { break Resume::Quit };
            let line = match event {
                Event::Leave => break Resume::Guest,
                Event::Quit => break Resume::Quit,
                Event::Line(l) => l,
            };
            let (text, control) = match commands::execute(m, &line) {
                Ok(r) => r,
                Err(e) => (format!("error: {e}\n"), Control::None),
            };
            let _ = write!(out, "{text}");
            let resume = match control {
                Control::Continue => Some(Resume::Guest),
                Control::Quit => Some(Resume::Quit),
                Control::Ended(end) => Some(Resume::Ended(end)),
                Control::None | Control::Stop | Control::Json => None,
            };
            if let Some(resume) = resume {
                self.prompt.store(false, Ordering::SeqCst);
                let _ = self.done.send(());
                break resume;
            }
            let _ = self.done.send(());
            let _ = write!(out, "{PROMPT}");
            let _ = out.flush();
        };
        self.prompt.store(false, Ordering::SeqCst);
        let _ = out.flush();
        resume
    }
}
