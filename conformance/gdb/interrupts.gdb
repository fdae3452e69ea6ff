# gdb against `strata run --gdb --wait-gdb` on conformance/kernels/interrupts.S: a watchpoint on
# the counter the timer interrupt handler increments.
watch *(int *)@timer_ticks@
continue
continue
delete
continue
