//! `strata`: the command-line program.
//!
//! `strata user PROGRAM [ARGS...]` runs a static x86-64 Linux executable on the tier-0
//! interpreter (or, with `--tier kvm`, natively in a KVM guest); its exit status becomes
//! strata's. `strata run --kernel K` boots a kernel on
//! the virtual PC; `strata` alone boots a small built-in demo guest.

mod run;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "strata", version, about = "Strata: a portable x86 PC emulator")]
struct Cli {
    /// With no command, strata boots its built-in demo guest.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum UserTier {
    Interp,
    Kvm,
    Auto,
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
        #[arg(long, value_enum, default_value_t = UserTier::Interp)]
        tier: UserTier,
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
    let cli = Cli::parse();
    match cli.command {
        None => run::demo(process_start),
        Some(Command::Run(args)) => run::run(*args, process_start),
        Some(Command::User { mem_mib, stats, strace, tier, program, args }) => {
            let use_kvm = match tier {
                UserTier::Interp => false,
                UserTier::Auto => tiers::kvm_available().is_ok(),
                UserTier::Kvm => match tiers::kvm_available() {
                    Ok(()) => true,
                    Err(e) => {
                        eprintln!("strata: {e}");
                        return ExitCode::from(1);
                    }
                },
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
            let end = if use_kvm {
                match tiers::run_user_kvm(&mut p) {
                    Ok((end, k)) => {
                        if stats {
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
                    }
                    Err(e) => {
                        eprintln!("strata: kvm: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                let end = p.run();
                if stats {
                    let n = p.cpu.retired;
                    let t = start.elapsed().as_secs_f64();
                    eprintln!(
                        "strata: {n} instructions in {t:.3} s ({:.1} MIPS), {} blocks decoded, {} invalidated",
                        n as f64 / t / 1e6,
                        p.interp.cache.decoded,
                        p.interp.cache.invalidated
                    );
                }
                end
            };
            match end {
                emu::user::ProcessEnd::Exited(code) => ExitCode::from(code as u8),
                emu::user::ProcessEnd::Signaled(sig) => ExitCode::from(128 + sig as u8),
            }
        }
    }
}
