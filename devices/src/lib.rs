//! devices: the PC platform (UART, PIC, PIT, RTC, i8042, APICs, PCI host bridge, exit port),
//! independent of the engine that runs the CPU (DESIGN decision 3).
#![forbid(unsafe_code)]
