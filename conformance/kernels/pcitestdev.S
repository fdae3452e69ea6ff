# QEMU's pci-testdev as a guest driver uses it (QEMU's docs/specs/pci-testdev.rst): find
# 1B36:0005 on bus 0 through configuration mechanism #1 (PCI 3.0, 3.2.2.3.2), take BAR 0
# (memory) and BAR 1 (I/O), and on each run tests 0, 1, ... until the width is not 1, 2 or 4:
# print the test's name, offset and data, write at its offset once other data, then 16 times its data
# with its width, and print the count the device reports. The output is compared with QEMU's, so it holds no addresses.
# Exit status 1 when the device was found and each BAR had at least one test.
.include "common.inc"
MULTIBOOT_HEADER
.code32
.globl _start
_start:
    mov $0x80000, %esp
    xor %ebx, %ebx                  # device number
find:
    mov %ebx, %eax
    shl $11, %eax
    or $0x80000000, %eax
    mov $0xcf8, %dx
    out %eax, %dx
    mov $0xcfc, %dx
    in %dx, %eax
    cmp $0x00051b36, %eax
    je found
    inc %ebx
    cmp $32, %ebx
    jne find
    lea nodev, %esi
    call puts
    EXIT 2
found:
    lea found_msg, %esi
    call puts
    mov %ebx, %eax
    shl $11, %eax
    or $0x80000010, %eax            # BAR 0
    mov $0xcf8, %dx
    out %eax, %dx
    mov $0xcfc, %dx
    in %dx, %eax
    and $0xfffffff0, %eax
    mov %eax, membar
    mov %ebx, %eax
    shl $11, %eax
    or $0x80000014, %eax            # BAR 1
    mov $0xcf8, %dx
    out %eax, %dx
    mov $0xcfc, %dx
    in %dx, %eax
    and $0xfffc, %eax
    mov %eax, iobar
    # Memory BAR: byte accesses through %edi.
    movl $0, ntests
    xor %ecx, %ecx
mem_next:
    mov membar, %edi
    mov %cl, (%edi)                 # select test %cl
    movzbl 1(%edi), %eax
    cmp $1, %eax
    jne mem_done
    lea mem_tag, %esi
    call puts
    lea 16(%edi), %esi              # the name, byte by byte from the device
1:  mov (%esi), %al
    inc %esi
    test %al, %al
    jz 2f
    call putc
    jmp 1b
2:  mov 4(%edi), %eax
    call put_hex16                  # " @offset"
    mov 8(%edi), %eax
    call put_hex16                  # " @data"
    mov 4(%edi), %edx               # offset
    mov 8(%edi), %eax               # data
    xor $0x55, %al                  # other data first: never counted
    mov %al, (%edi,%edx)
    xor $0x55, %al
    push %ecx
    mov $16, %ecx
3:  mov %al, (%edi,%edx)
    loop 3b
    pop %ecx
    mov 12(%edi), %eax
    call put_count
    incl ntests
    inc %ecx
    cmp $16, %ecx
    jne mem_next
mem_done:
    cmpl $0, ntests
    je fail
    # I/O BAR: the same through IN/OUT.
    movl $0, ntests
    xor %ecx, %ecx
io_next:
    mov iobar, %edx
    mov %cl, %al
    out %al, %dx                    # select test %cl
    inc %edx
    in %dx, %al
    cmp $1, %al
    jne io_done
    lea io_tag, %esi
    call puts
    mov iobar, %edx
    add $16, %edx
1:  in %dx, %al
    inc %edx
    test %al, %al
    jz 2f
    call putc
    jmp 1b
2:  mov iobar, %edx
    add $4, %edx
    in %dx, %eax
    call put_hex16                  # offset
    mov iobar, %edx
    add $8, %edx
    in %dx, %eax
    call put_hex16                  # data
    mov %eax, %edi                  # data
    mov iobar, %edx
    add $4, %edx
    in %dx, %eax
    mov iobar, %edx
    add %eax, %edx                  # the test's port
    mov %edi, %eax
    xor $0x55, %al                  # other data first: never counted
    out %al, %dx
    xor $0x55, %al
    push %ecx
    mov $16, %ecx
3:  out %al, %dx
    loop 3b
    pop %ecx
    mov iobar, %edx
    add $12, %edx
    in %dx, %eax
    call put_count
    incl ntests
    inc %ecx
    cmp $16, %ecx
    jne io_next
io_done:
    cmpl $0, ntests
    je fail
    EXIT 0
fail:
    EXIT 3

# put_count: " count=N\n" for N in %eax (0-99).
put_count:
    push %eax
    lea count_msg, %esi
    call puts
    pop %eax
    mov $10, %dl
    div %dl                         # al = tens, ah = ones (ax < 2560)
    test %al, %al
    jz 1f
    add $'0', %al
    call putc
1:  mov %ah, %al
    add $'0', %al
    call putc
    mov $'\n', %al
    call putc
    ret
# put_hex16: " " and the low 16 bits of %eax as four hex digits (%eax kept).
put_hex16:
    push %eax
    push %ecx
    push %ebx
    mov %eax, %ebx
    mov $' ', %al
    call putc
    mov $4, %ecx
1:  rol $4, %bx
    mov %bl, %al
    and $0xf, %al
    add $'0', %al
    cmp $'9', %al
    jbe 2f
    add $7, %al
2:  call putc
    loop 1b
    pop %ebx
    pop %ecx
    pop %eax
    ret
DEFINE_PUTS
.data
membar: .long 0
iobar: .long 0
ntests: .long 0
nodev: .asciz "no pci-testdev\n"
found_msg: .asciz "pci-testdev found\n"
mem_tag: .asciz "mem "
io_tag: .asciz "io "
count_msg: .asciz " count="
