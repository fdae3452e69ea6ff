//! benches: guest workloads (`workloads/*.S`, classic emulator micro-benchmarks as tiny static
//! programs) and `guest-bench`, which times each one natively, under `strata user` and under
//! `qemu-x86_64` in the same invocation. Nothing here is used by the emulator itself.
