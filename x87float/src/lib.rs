//! x87float: the x87 FPU's 80-bit extended-precision arithmetic in software.
#![forbid(unsafe_code)]
