# gdb against `strata run --gdb --wait-gdb` on conformance/kernels/hello.S, run under both
# --tier interp and --tier kvm (where KVM_SET_GUEST_DEBUG does the hardware breakpoints and
# the steps): the stops and registers must agree. @NAME@ is that symbol's address (from nm).
hbreak *@puts@
continue
p/x $pc
p/x $eax
stepi
p/x $pc
stepi
p/x $pc
p/x $eax
p/x $esi
stepi
p/x $pc
stepi
p/x $pc
hbreak *@putc@
continue
p/x $pc
p/x $esp
stepi
stepi
p/x $pc
p/x $edx
delete
continue
