//! Which of the looking-inside options (`--gdb`, `--trace`, `--monitor`) go together with each
//! other and with the run-shaping ones (`--save-at`, `--switch-at`, `--max-instructions`), and
//! the one-line reason for each pair that does not.
//!
//! What works together, and how:
//! - `--trace` with `--gdb` or `--monitor`: the trace observes tier 0, which then runs the
//!   whole session (gdb's free runs, the monitor's `cont` and `step`); a monitor `switch kvm`
//!   leaves tier 0 and so the trace.
//! - `--trace` with `--save-at`: tier 0 runs, traced, up to the save point.
//! - `--trace` or `--monitor` with `--max-instructions`: the run stops at the limit as without.
//!
//! What is refused: two drivers of one machine (`--gdb` and `--monitor`: gdb's own `monitor`
//! command serves the monitor's commands), and an option whose job the driver already has a
//! command for (`--save-at`: `monitor savevm`; `--switch-at`: the monitor's `switch`), or that
//! would take the run off tier 0 under the trace (`--switch-at`).

/// The options of one `strata run`, as far as their combinations matter.
pub struct Chosen {
    pub gdb: bool,
    pub trace: bool,
    pub monitor: bool,
    pub save_at: bool,
    pub switch_at: bool,
    pub max_instructions: bool,
}

/// Refuses a combination that cannot work, with the reason.
///
/// # Errors
/// One line naming the two options and why.
pub fn check(c: &Chosen) -> Result<(), String> {
    let refused: &[(bool, &str)] = &[
        (c.save_at && c.switch_at, "--save-at and --switch-at cannot be combined"),
        (
            c.gdb && c.monitor,
            "--gdb and --monitor cannot both drive the machine; gdb's `monitor` command serves the \
             monitor's commands (monitor info registers, monitor xp/4xg ADDR, ...)",
        ),
        (c.gdb && c.save_at, "--gdb with --save-at: save from gdb instead (monitor savevm FILE)"),
        (
            c.gdb && (c.switch_at || c.max_instructions),
            "--gdb cannot be combined with --switch-at or --max-instructions (gdb decides when the guest runs)",
        ),
        (c.monitor && c.save_at, "--monitor with --save-at: use the monitor's savevm FILE instead"),
        (c.monitor && c.switch_at, "--monitor with --switch-at: use the monitor's switch ENGINE instead"),
        (
            c.trace && c.switch_at,
            "--trace cannot be combined with --switch-at (the trace keeps the run on tier 0 to see every instruction)",
        ),
    ];
    match refused.iter().find(|(bad, _)| *bad) {
        Some((_, why)) => Err((*why).to_string()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(names: &[&str]) -> Chosen {
        let has = |n| names.contains(&n);
        Chosen {
            gdb: has("gdb"),
            trace: has("trace"),
            monitor: has("monitor"),
            save_at: has("save-at"),
            switch_at: has("switch-at"),
            max_instructions: has("max"),
        }
    }

    #[test]
    fn sensible_pairs_pass_and_the_rest_name_both_options() {
        for ok in [
            &["gdb", "trace"][..],
            &["monitor", "trace"],
            &["trace", "save-at"],
            &["trace", "max"],
            &["monitor", "max"],
        ] {
            assert!(check(&chosen(ok)).is_ok(), "{ok:?}");
        }
        for (bad, a, b) in [
            (&["gdb", "monitor"][..], "--gdb", "--monitor"),
            (&["gdb", "save-at"], "--gdb", "--save-at"),
            (&["monitor", "switch-at"], "--monitor", "--switch-at"),
            (&["trace", "switch-at"], "--trace", "--switch-at"),
            (&["save-at", "switch-at"], "--save-at", "--switch-at"),
        ] {
            let why = check(&chosen(bad)).unwrap_err();
            assert!(why.contains(a) && why.contains(b) && !why.contains('\n'), "{bad:?}: {why}");
        }
    }
}
