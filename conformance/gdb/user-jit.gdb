# `strata user --tier jit --gdb` against the native run: steps (on the JIT's tier 0) while a
# breakpoint is set, then, with none left, a free run on the JIT to the exit.
bt
next
print n
stepi
info registers rip
delete
continue
