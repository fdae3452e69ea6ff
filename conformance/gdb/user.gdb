# Run natively (after `run`) and against `strata user --gdb` (after `target remote` and
# `continue`); the two outputs must be the same. Starts stopped at the first breakpoint.
bt
next
info locals
print n
finish
next
next
step
bt
info locals
watch counter
continue
continue
delete
break debuggee.c:23
continue
info locals
stepi
info registers rip
continue
