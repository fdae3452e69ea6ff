# ACPI S3 (suspend to RAM) and the resume through the FACS waking vector, as an OS does it:
# find the RSDP in E0000h-FFFFFh, the RSDT, the FADT and its FACS; put real-mode resume code at
# 0x1000 and its address in the FACS's Firmware Waking Vector; arm the RTC alarm (every second,
# AIE) and PM1_EN.RTC_EN; write SLP_TYP = 1 (the \_S3 value of QEMU's DSDT) with SLP_EN to
# PM1a_CNT. The resume code then checks: it was entered in real mode at CS:IP = 0100:0000, no
# instruction ran after the sleep request (the loop after it would have overwritten a
# sentinel), RAM kept its contents, PM1_STS has WAK_STS. References: ACPI 6.5, 4.8.3.1 (PM1
# status/enable, WAK_STS, RTC_STS/RTC_EN), 4.8.3.2.1 (SLP_TYP, SLP_EN), 5.2.10 (FACS, Firmware
# Waking Vector: real mode, CS = vector >> 4, IP = vector & 0Fh), 16.3 (waking); the MC146818A
# alarm. Under QEMU, SeaBIOS does the resume; under Strata, the platform (emu::machine::sleep).
.include "common.inc"
.set RESUME, 0x1000
.set SENTINEL, 0x2000
.set MARKER, 0x2004
.set EVT_PORT, 0x2008
MULTIBOOT_HEADER
.code32
.globl _start
_start:
    mov $0x7c00, %esp              # low, so nothing below 1 MiB but ours moves
    # The RSDP: "RSD PTR " on a 16-byte boundary in E0000h-FFFFFh.
    mov $0xe0000, %esi
1:  cmpl $0x20445352, (%esi)
    jne 2f
    cmpl $0x20525450, 4(%esi)
    je 3f
2:  add $16, %esi
    cmp $0x100000, %esi
    jb 1b
    jmp fail
3:  mov $4, %eax                  # entry size: the RSDT's
    mov 16(%esi), %ebx             # RSDT
    cmpb $2, 15(%esi)              # revision 2+: the XSDT if there is one (8-byte entries)
    jb 5f
    cmpl $0, 24(%esi)
    je 5f
    mov 24(%esi), %ebx
    mov $8, %eax
5:  test %ebx, %ebx
    jz fail
    mov 4(%ebx), %ecx              # the table's length
    lea 36(%ebx), %edi
    add %ebx, %ecx
4:  cmp %ecx, %edi
    jae fail
    mov (%edi), %edx
    add %eax, %edi
    cmpl $0x50434146, (%edx)       # "FACP"
    jne 4b
    mov 36(%edx), %ebx             # FIRMWARE_CTRL: the FACS
    cmpl $0x53434146, (%ebx)       # "FACS"
    jne fail
    movl $RESUME, 12(%ebx)         # Firmware Waking Vector
    mov 56(%edx), %eax             # PM1a_EVT_BLK
    mov %eax, EVT_PORT
    mov 64(%edx), %ebp             # PM1a_CNT_BLK
    # The resume code, copied below 1 MiB.
    lea resume_start, %esi
    mov $RESUME, %edi
    mov $resume_end - resume_start, %ecx
    rep movsb
    movl $0x5a5aa5a5, MARKER
    lea msg_sleep, %esi
    call puts
    # PM1_STS: clear WAK_STS and RTC_STS (write ones); PM1_EN: RTC_EN.
    mov EVT_PORT, %edx
    mov $0x8400, %ax
    out %ax, %dx
    add $2, %edx
    mov $0x400, %ax
    out %ax, %dx
    # The RTC alarm: every second (all three bytes "don't care", so an update cycle during
    # these writes cannot make it miss), from the next second boundary on.
    mov $0x0c, %al ; out %al, $0x70 ; in $0x71, %al   # clear the flags
    mov $0x01, %al ; out %al, $0x70 ; mov $0xc0, %al ; out %al, $0x71
    mov $0x03, %al ; out %al, $0x70 ; mov $0xc0, %al ; out %al, $0x71
    mov $0x05, %al ; out %al, $0x70 ; mov $0xc0, %al ; out %al, $0x71
    mov $0x0b, %al ; out %al, $0x70 ; in $0x71, %al
    or $0x20, %al                  # AIE
    mov %al, %ah
    mov $0x0b, %al ; out %al, $0x70 ; mov %ah, %al ; out %al, $0x71
    movl $0, SENTINEL
    mov %ebp, %edx
    mov $0x2400, %ax               # SLP_TYP 1 (S3), SLP_EN
    out %ax, %dx
1:  movl $1, SENTINEL              # must never run
    jmp 1b
fail:
    lea msg_nofacs, %esi
    call puts
    EXIT 1
DEFINE_PUTS

# Real-mode resume code, run from RESUME as 0100:0000 (data through DS = 0).
.code16
resume_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    xor %bp, %bp                   # failures
    mov %cs, %ax
    cmp $RESUME >> 4, %ax
    setne %al
    lea RESUME + (n_vector - resume_start), %si
    call report
    cmpl $0, SENTINEL
    setne %al
    lea RESUME + (n_stop - resume_start), %si
    call report
    cmpl $0x5a5aa5a5, MARKER
    setne %al
    lea RESUME + (n_ram - resume_start), %si
    call report
    mov EVT_PORT, %dx
    in %dx, %ax
    test $0x8000, %ax              # WAK_STS
    setz %al
    lea RESUME + (n_wak - resume_start), %si
    call report
    mov %bp, %ax
    out %al, $EXIT_PORT
    hlt
report:                            # AL = 0 PASS; SI = name (near calls: IP-relative)
    push %si
    test %al, %al
    lea RESUME + (s_pass - resume_start), %si
    jz 1f
    inc %bp
    lea RESUME + (s_fail - resume_start), %si
1:  call puts16
    pop %si
    call puts16
    lea RESUME + (s_nl - resume_start), %si
    jmp puts16
puts16:
    lodsb
    test %al, %al
    jz 2f
    mov %al, %ah
    mov $COM1 + 5, %dx
1:  in %dx, %al
    test $0x20, %al
    jz 1b
    mov %ah, %al
    mov $COM1, %dx
    out %al, %dx
    jmp puts16
2:  ret
s_pass: .asciz "PASS "
s_fail: .asciz "FAIL "
s_nl: .asciz "\n"
n_vector: .asciz "s3_resume_at_the_facs_waking_vector_in_real_mode"
n_stop: .asciz "s3_no_instruction_after_slp_en"
n_ram: .asciz "s3_ram_kept"
n_wak: .asciz "s3_wak_sts_set"
resume_end:
.code32
.data
msg_sleep: .asciz "entering S3\n"
msg_nofacs: .asciz "FAIL s3_facs_found\n"
