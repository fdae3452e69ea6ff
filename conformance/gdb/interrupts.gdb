# gdb against `strata run --gdb --wait-gdb` on conformance/kernels/interrupts.S: a watchpoint on
# the counter the timer interrupt handler increments, then a read watchpoint on it (the main
# loop's compare reads it after the handler returns).
watch *(int *)@timer_ticks@
continue
continue
delete
rwatch *(int *)@timer_ticks@
continue
delete
continue
