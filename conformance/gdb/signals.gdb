# Run natively (after `run`) and against `strata user --gdb` (after `target remote` and
# `continue`); the two outputs must be the same. Starts stopped at the first SIGUSR1.
print usr1_count
continue
print usr1_count
signal 0
handle SIGUSR1 nostop noprint pass
continue
bt 1
print usr1_count
print how
continue
info frame
print usr1_count
continue
