# gdb against `strata run --gdb --wait-gdb` on conformance/kernels/paging64.S (64-bit mode,
# 4-level paging, a #PF handler). @NAME@ is the address of that symbol (from nm).
break *long_mode
continue
p/x $cr3
p/x $cr0
p/x $efer
monitor xp/2xw 0x100000
monitor info tlb 0x40001000
break *pf_handler
continue
p/x $cr2
x/gx $rsp
stepi
p/x $rax
delete
watch *(long *)@pf_error@
continue
delete
continue
