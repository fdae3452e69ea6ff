//! `strata`: the command-line program.
//!
//! `strata user PROGRAM [ARGS...]` runs a static x86-64 Linux executable on the tier-0
//! interpreter (or, with `--tier kvm`, natively in a KVM guest); its exit status becomes
//! strata's. `strata run --kernel K` boots a kernel on
//! the virtual PC; `strata` alone boots a small built-in demo guest.

mod disk;
mod run;

use clap::{Parser, Subcommand};
use emu::engine::EngineKind;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "strata", version, about = "Strata: a portable x86 PC emulator")]
struct Cli {
    /// With no command, strata boots its built-in demo guest.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a static x86-64 Linux program in user mode.
    User {
        /// Guest RAM for the process, in MiB.
        #[arg(long, default_value_t = 4096)]
        mem_mib: u64,
        /// Print retired instructions and run time to stderr at exit.
        #[arg(long)]
        stats: bool,
        /// Print every system call, its arguments and its result to stderr.
        #[arg(long)]
        strace: bool,
        /// Engine: interp (tier 0), kvm (natively at CPL3 in a KVM guest), auto (kvm when
        /// /dev/kvm is usable, else interp).
        #[arg(long, value_enum, default_value_t = EngineKind::Interp)]
        tier: EngineKind,
        /// The program.
        program: String,
        /// Its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Boot a kernel (bzImage or Multiboot) on the virtual PC.
    Run(Box<run::RunArgs>),
}

fn main() -> ExitCode {
    let process_start = std::time::Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return command_line_error(&e),
    };
    match cli.command {
        None => run::demo(process_start),
        Some(Command::Run(args)) => run::run(*args, process_start),
        Some(Command::User { mem_mib, stats, strace, tier, program, args }) => {
            let kind = match tiers::resolve_engine(tier, true) {
                Ok(kind) => kind,
                Err(e) => {
                    eprintln!("strata: {e}");
                    return ExitCode::from(1);
                }
            };
            let mut argv = vec![program.clone()];
            argv.extend(args);
            let envp: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
            let start = std::time::Instant::now();
            let mut p = match emu::user::Process::load(&program, &argv, &envp, mem_mib << 20) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("strata: {e}");
                    return ExitCode::from(127);
                }
            };
            p.sys.trace = strace;
            // One loop (`Process::run_on`) for every engine; only the statistics differ.
            let end = if kind == EngineKind::Kvm {
                let mut kvm = match tiers::KvmUserEngine::new(&mut p) {
                    Ok(k) => k,
                    Err(e) => {
                        eprintln!("strata: kvm: {e}");
                        return ExitCode::from(1);
                    }
                };
                let end = p.run_on(kvm.engine());
                if stats {
                    let k = kvm.stats();
                    eprintln!(
                        "strata: kvm: {} exits ({} system calls, {} faults, {} translation flushes) in {:.3} s",
                        k.exits,
                        k.syscalls,
                        k.faults,
                        k.flushes,
                        start.elapsed().as_secs_f64()
                    );
                }
                end
            } else {
                let mut tier0 = emu::Interp::new();
                let end = p.run_on(&mut tier0);
                if stats {
                    let n = p.cpu.retired;
                    let t = start.elapsed().as_secs_f64();
                    eprintln!(
                        "strata: {n} instructions in {t:.3} s ({:.1} MIPS), {} blocks decoded, {} invalidated",
                        n as f64 / t / 1e6,
                        tier0.cache.decoded,
                        tier0.cache.invalidated
                    );
                }
                end
            };
            let end = match end {
                Ok(end) => end,
                Err(e) => {
                    eprintln!("strata: {e}");
                    return ExitCode::from(1);
                }
            };
            match end {
                emu::user::ProcessEnd::Exited(code) => ExitCode::from(code as u8),
                emu::user::ProcessEnd::Signaled(sig) => ExitCode::from(128 + sig as u8),
            }
        }
    }
}

/// A malformed command line: one line on stderr naming the problem (with the accepted values
/// where clap lists them), exit status 2 as clap's usage errors have; `--help` and `--version`
/// print as clap renders them.
fn command_line_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) || !e.use_stderr() {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("bad command line").trim_start_matches("error: ");
    let values = lines.find(|l| l.starts_with("[possible values:"));
    match values {
        Some(v) => eprintln!("strata: {first} {v}"),
        None => eprintln!("strata: {first} (see strata --help)"),
    }
    ExitCode::from(2)
}
