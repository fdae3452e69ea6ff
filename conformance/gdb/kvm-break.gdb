# gdb against `strata run --gdb --wait-gdb` on conformance/kernels/hello.S under --tier interp
# and --tier kvm: software breakpoints (`break`: on KVM an INT3 where the host's KVM stops at
# one, else a free debug register), then a read watchpoint on the message's second byte (on
# KVM through a data breakpoint where the host does them, else on tier 0 with a message).
# @NAME@ is that symbol's address (from nm).
break *@puts@
break *@putc@
continue
p/x $pc
p/x $eax
p/x $esi
continue
p/x $pc
p/x $esp
delete
rwatch *(char *)(@msg@ + 1)
continue
p/x $pc
p/x $esi
delete
continue
