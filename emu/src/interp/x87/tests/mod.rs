//! Differential tests of the x87 family against the host FPU (x86-64 only).
//!
//! `harness` runs one instruction natively between FRSTOR and FNSAVE of the same 108-byte image
//! and under tier 0 (the same bytes decoded and executed by the handlers), then compares the two
//! FNSAVE images (registers in stack order, FCW, FSW with TOP, condition codes, SF, ES and the
//! flags, the full tag word, FOP), the memory operand, EFLAGS and RAX. FIP and FDP are compared
//! as "points at this instruction / this operand": the host code and operand sit at the guest's
//! addresses modulo 4 GiB (`hostpage`), so the truncated pointers the images hold agree.
//! `differential` draws random FPU states and operands; `layout` checks the FNSAVE/FNSTENV
//! images themselves against images the host wrote after plain loads; `faults` checks #MF,
//! #NM and precise stores against the SDM.

mod differential;
mod faults;
mod harness;
mod hostpage;
mod layout;
mod program;
