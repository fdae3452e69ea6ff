//! The boot timeline: timestamped events of a run (process start, machine ready, first
//! instruction, first serial byte, each serial line, the marker, shutdown) and where the time
//! went between them — the libguestfs `boot-analysis` idea, built in. On tier 0 each event also
//! carries the instructions retired so far, so a phase's instruction count is known exactly.
//! Output: a table for the terminal, JSON, and an SVG bar chart.

use std::fmt::Write as _;
use std::time::Instant;

/// One event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub label: String,
    /// Nanoseconds since the process started.
    pub ns: u64,
    /// Guest instructions retired when it happened.
    pub retired: u64,
}

/// Events of one run, in order.
#[derive(Clone, Debug)]
pub struct Timeline {
    start: Instant,
    pub events: Vec<Event>,
    /// Record every serial line (off: only the first byte and the marker).
    pub lines: bool,
}

impl Timeline {
    /// A timeline whose zero is `process_start`.
    pub fn new(process_start: Instant) -> Self {
        Timeline { start: process_start, events: Vec::new(), lines: true }
    }

    pub fn record(&mut self, label: impl Into<String>, retired: u64) {
        let ns = self.start.elapsed().as_nanos() as u64;
        self.events.push(Event { label: label.into(), ns, retired });
    }

    /// Records an event that happened at `at` (noted earlier, recorded now).
    pub fn record_at(&mut self, label: impl Into<String>, at: Instant, retired: u64) {
        let ns = at.saturating_duration_since(self.start).as_nanos() as u64;
        self.events.push(Event { label: label.into(), ns, retired });
    }

    pub fn has(&self, label: &str) -> bool {
        self.events.iter().any(|e| e.label == label)
    }

    /// A table of phases: each event with the time and instructions since the previous one.
    pub fn table(&self) -> String {
        let mut s = String::from("  time (ms)   phase (ms)   instructions   MIPS   event\n");
        let mut prev = Event { label: String::new(), ns: 0, retired: 0 };
        for e in &self.events {
            let dt = e.ns.saturating_sub(prev.ns);
            let di = e.retired.saturating_sub(prev.retired);
            let mips = if dt > 0 { di as f64 * 1e3 / dt as f64 } else { 0.0 };
            let _ = writeln!(
                s,
                "{:>11.3}  {:>11.3}  {:>13}  {:>5.0}   {}",
                e.ns as f64 / 1e6,
                dt as f64 / 1e6,
                di,
                mips,
                e.label.escape_debug()
            );
            prev = e.clone();
        }
        s
    }

    /// The events as JSON (an array of {label, ns, retired}).
    pub fn json(&self) -> String {
        let mut s = String::from("[\n");
        for (i, e) in self.events.iter().enumerate() {
            // JSON string escapes (RFC 8259, section 7): serial lines carry control characters
            // (a BIOS's ESC sequences), which must be written \u00XX.
            let label: String = e
                .label
                .chars()
                .map(|c| match c {
                    '"' => "\\\"".to_string(),
                    '\\' => "\\\\".to_string(),
                    c if u32::from(c) < 0x20 || c == '\u{7f}' => format!("\\u{:04x}", u32::from(c)),
                    c => c.to_string(),
                })
                .collect();
            let _ = writeln!(
                s,
                "  {{\"label\": \"{}\", \"ns\": {}, \"retired\": {}}}{}",
                label,
                e.ns,
                e.retired,
                if i + 1 < self.events.len() { "," } else { "" }
            );
        }
        s.push(']');
        s
    }

    /// An SVG chart: one bar per phase, its length its duration.
    pub fn svg(&self) -> String {
        let total = self.events.last().map_or(1, |e| e.ns.max(1)) as f64;
        let (w, row) = (900.0, 18.0);
        let h = row * (self.events.len() as f64 + 2.0);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"monospace\" font-size=\"11\">\n"
        );
        let mut prev = 0u64;
        for (i, e) in self.events.iter().enumerate() {
            let x = 300.0 + (prev as f64 / total) * (w - 310.0);
            let bw = ((e.ns.saturating_sub(prev)) as f64 / total * (w - 310.0)).max(1.0);
            let y = row * (i as f64 + 1.0);
            let label: String = e.label.chars().filter(|c| !c.is_control()).take(40).collect();
            let label = label.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            let _ = writeln!(
                s,
                "<text x=\"4\" y=\"{}\">{:.1} ms {label}</text><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"#4a7\"/>",
                y + 12.0,
                e.ns as f64 / 1e6,
                y + 3.0,
                row - 6.0
            );
            prev = e.ns;
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_differences_between_events() {
        let mut t = Timeline::new(Instant::now());
        t.events.push(Event { label: "a".into(), ns: 1_000_000, retired: 10 });
        t.events.push(Event { label: "b\"q".into(), ns: 3_000_000, retired: 2_010 });
        let table = t.table();
        assert!(table.contains("2.000"), "{table}");
        assert!(table.contains("2000"), "{table}");
        assert!(t.json().contains("\"b\\\"q\""), "{}", t.json());
        // A control character (a BIOS's ESC) as RFC 8259 writes it.
        t.events.push(Event { label: "\u{1b}c".into(), ns: 4_000_000, retired: 2_020 });
        assert!(t.json().contains("\"\\u001bc\""), "{}", t.json());
        assert!(t.svg().starts_with("<svg"));
    }
}
