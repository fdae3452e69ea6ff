//! The initial process stack: argument and environment strings, the argv/envp pointer arrays and
//! the auxiliary vector, laid out as Linux's `create_elf_tables` does (System V x86-64 psABI,
//! 3.4.1 "Initial Stack and Register State"; auxv types from `include/uapi/linux/auxvec.h`).
//! There is no vDSO, so AT_SYSINFO_EHDR is absent and libc uses the real system calls.

use super::aspace::PAGE;
use super::Process;

const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_FLAGS: u64 = 8;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_PLATFORM: u64 = 15;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_HWCAP2: u64 = 26;
const AT_EXECFN: u64 = 31;

/// Builds argv, envp and the auxiliary vector below `STACK_TOP`. Returns the initial RSP.
pub fn build_initial_stack(
    p: &mut Process,
    path: &str,
    argv: &[String],
    envp: &[String],
    phdr: u64,
    phnum: u16,
    entry: u64,
) -> Option<u64> {
    let mut sp = super::STACK_TOP - 8; // a NULL word at the very top, as Linux leaves it
    let push_bytes = |p: &mut Process, sp: &mut u64, b: &[u8]| -> Option<u64> {
        *sp -= b.len() as u64;
        p.write_mem(*sp, b)?;
        Some(*sp)
    };
    let push_cstr = |p: &mut Process, sp: &mut u64, s: &str| -> Option<u64> {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        push_bytes(p, sp, &b)
    };
    let execfn = push_cstr(p, &mut sp, path)?;
    let mut envs = Vec::with_capacity(envp.len());
    for e in envp.iter().rev() {
        envs.push(push_cstr(p, &mut sp, e)?);
    }
    envs.reverse();
    let mut strs = Vec::with_capacity(argv.len());
    for a in argv.iter().rev() {
        strs.push(push_cstr(p, &mut sp, a)?);
    }
    strs.reverse();
    let platform = push_bytes(p, &mut sp, b"x86_64\0")?;
    let mut random = [0u8; 16];
    super::syscall::fill_random(&mut random);
    let random = push_bytes(p, &mut sp, &random)?;
    sp &= !15;
    let ids = super::syscall::process::HostIds::get();
    let auxv: [(u64, u64); 17] = [
        (AT_PHDR, phdr),
        (AT_PHENT, 56),
        (AT_PHNUM, phnum as u64),
        (AT_PAGESZ, PAGE),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, entry),
        (AT_UID, ids.uid as u64),
        (AT_EUID, ids.uid as u64),
        (AT_GID, ids.gid as u64),
        (AT_EGID, ids.gid as u64),
        (AT_HWCAP, hwcap()),
        (AT_HWCAP2, 0),
        (AT_CLKTCK, 100),
        (AT_RANDOM, random),
        (AT_EXECFN, execfn),
        (AT_PLATFORM, platform),
    ];
    let words = 1 + strs.len() + 1 + envs.len() + 1 + 2 * (auxv.len() + 2);
    sp -= 8 * words as u64;
    sp &= !15;
    let mut table = Vec::with_capacity(words);
    table.push(strs.len() as u64);
    table.extend(&strs);
    table.push(0);
    table.extend(&envs);
    table.push(0);
    for (k, v) in auxv {
        table.extend([k, v]);
    }
    table.extend([AT_SECURE, 0, 0, 0]); // AT_SECURE, then AT_NULL
    let bytes: Vec<u8> = table.iter().flat_map(|w| w.to_le_bytes()).collect();
    p.write_mem(sp, &bytes)?;
    Some(sp)
}

/// AT_HWCAP: CPUID.1:EDX of the CPU the guest sees.
pub fn hwcap() -> u64 {
    crate::interp::misc::cpuid(crate::system::cpu_model::default_model(), 1, 0)[3] as u64
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::Process;

    /// A static "program" that is only a `hlt`; enough to load and inspect the initial stack.
    fn tiny_elf() -> Vec<u8> {
        let mut d = vec![0u8; 4096 + 16];
        d[..4].copy_from_slice(b"\x7fELF");
        d[4] = 2;
        d[5] = 1;
        d[6] = 1;
        d[16..18].copy_from_slice(&2u16.to_le_bytes());
        d[18..20].copy_from_slice(&62u16.to_le_bytes());
        d[24..32].copy_from_slice(&0x401000u64.to_le_bytes());
        d[32..40].copy_from_slice(&64u64.to_le_bytes());
        d[54..56].copy_from_slice(&56u16.to_le_bytes());
        d[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = 64;
        d[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
        d[ph + 4..ph + 8].copy_from_slice(&5u32.to_le_bytes());
        d[ph + 16..ph + 24].copy_from_slice(&0x400000u64.to_le_bytes());
        d[ph + 32..ph + 40].copy_from_slice(&(4096u64 + 16).to_le_bytes());
        d[ph + 40..ph + 48].copy_from_slice(&(4096u64 + 16).to_le_bytes());
        d[ph + 48..ph + 56].copy_from_slice(&4096u64.to_le_bytes());
        d[4096] = 0xf4;
        d
    }

    pub(crate) fn load_tiny(args: &[&str], env: &[&str]) -> Process {
        let dir =
            std::env::temp_dir().join(format!("strata-stack-{}-{:?}", std::process::id(), std::thread::current().id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tiny");
        std::fs::write(&path, tiny_elf()).unwrap();
        let path = path.to_string_lossy().into_owned();
        let argv: Vec<String> = std::iter::once(path.clone()).chain(args.iter().map(|s| s.to_string())).collect();
        let envp: Vec<String> = env.iter().map(|s| s.to_string()).collect();
        Process::load(&path, &argv, &envp, 64 << 20).unwrap()
    }

    #[test]
    fn argv_envp_and_auxv_follow_the_psabi_layout() {
        let mut p = load_tiny(&["one", "two"], &["A=1"]);
        let sp = p.cpu.state.gpr[crate::state::gpr::RSP];
        assert_eq!(sp % 16, 0, "psABI: RSP is 16-byte aligned at entry");
        assert_eq!(p.read_u64(sp), Some(3));
        let arg1 = p.read_u64(sp + 16).unwrap();
        assert_eq!(p.read_cstr(arg1, 100).unwrap(), b"one");
        assert_eq!(p.read_u64(sp + 32), Some(0), "argv is NULL-terminated");
        let env0 = p.read_u64(sp + 40).unwrap();
        assert_eq!(p.read_cstr(env0, 100).unwrap(), b"A=1");
        assert_eq!(p.read_u64(sp + 48), Some(0));
        // auxv: find AT_PAGESZ and AT_ENTRY.
        let mut a = sp + 56;
        let mut seen = std::collections::HashMap::new();
        loop {
            let (k, v) = (p.read_u64(a).unwrap(), p.read_u64(a + 8).unwrap());
            if k == 0 {
                break;
            }
            seen.insert(k, v);
            a += 16;
        }
        assert_eq!(seen.get(&super::AT_PAGESZ), Some(&4096));
        assert_eq!(seen.get(&super::AT_ENTRY), Some(&0x401000));
        assert_eq!(seen.get(&super::AT_PHDR), Some(&0x400040));
    }
}
