//! Fuzz target: the user-mode runner's ELF loader (`emu::user::Process::load_image`): the
//! input is the executable. Parsing, mapping its segments and building the initial stack in a
//! 64 MiB guest must succeed or be a `UserError`, never a panic.
#![no_main]

use emu::user::Process;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let argv = ["prog".to_string(), "arg".to_string()];
    let envp = ["HOME=/".to_string()];
    let _ = Process::load_image("prog", data, &argv, &envp, 64 << 20);
});
