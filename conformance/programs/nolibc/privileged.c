/* Privileged and odd instructions at CPL3, each caught by a signal handler: HLT, CLI, IN and
 * OUT (immediate and DX forms, including port 0xE0, which strata's KVM supervisor uses
 * itself), INT3, INT n, a jump to address 0. (A jump to a non-canonical address is left out:
 * the CPU faults on the jump itself, tier 0 reports RIP at the target.) Linux answers
 * each with a signal (SIGSEGV for the #GP/#PF ones, SIGTRAP for INT3) and a ucontext whose
 * REG_TRAPNO, REG_ERR and REG_RIP say what the CPU reported; the output must be identical
 * natively and under every strata tier. */
#include "nolibc.h"

static volatile u64 recover, start;
static volatile int got_sig, got_code;
static volatile u64 got_err, got_trapno, got_rip, got_addr;

static void handler(int sig, struct ksiginfo *si, void *uc) {
    u64 *g = gregs(uc);
    got_sig = sig;
    got_code = si->code;
    got_addr = si->addr;
    got_err = g[REG_ERR];
    got_trapno = g[REG_TRAPNO];
    got_rip = g[REG_RIP];
    g[REG_RIP] = recover;
}

static void report(const char *what) {
    put(what);
    put(": sig=");
    put_i(got_sig);
    put(" code=");
    put_i(got_code);
    put(" trapno=");
    put_u(got_trapno);
    put(" err=");
    put_u(got_err);
    put(" rip=");
    put(got_rip == start ? "insn" : got_rip == recover ? "after" : "other");
    put("\n");
    got_sig = got_code = 0;
    got_err = got_trapno = got_rip = got_addr = 0;
}

/* `start` = the probed instruction, `recover` = the one after it; `setup` runs before. */
#define PROBE(setup, insn, ...)                                                                  \
    asm volatile("lea 1f(%%rip), %%rax\n mov %%rax, recover(%%rip)\n"                            \
                 "lea 2f(%%rip), %%rax\n mov %%rax, start(%%rip)\n" setup "\n"                  \
                 "2: " insn "\n1:\n" ::__VA_ARGS__ : "rax", "rdx", "memory")

int main(int argc, char **argv, char **envp) {
    (void)argc, (void)argv, (void)envp;
    sigaction_k(11, handler, SA_SIGINFO);
    sigaction_k(5, handler, SA_SIGINFO);
    sigaction_k(4, handler, SA_SIGINFO);

    PROBE("", "hlt");
    report("hlt");
    PROBE("", "cli");
    report("cli");
    PROBE("", "outb %%al, $0x80");
    report("out imm");
    PROBE("", "outb %%al, $0xe0");
    report("out 0xe0");
    PROBE("mov $0xe0, %%edx", "outb %%al, %%dx");
    report("out dx");
    PROBE("", "inb $0x60, %%al");
    report("in imm");
    PROBE("mov $0x3f8, %%edx", "inw %%dx, %%ax");
    report("in dx word");
    PROBE("", "int3");
    report("int3");
    PROBE("", "int $0x81");
    report("int 0x81");
    /* A jump (not a call: that would leave a return address behind) to address 0 faults on
     * the fetch there, with RIP 0. */
    PROBE("", "jmp *%0", "r"(0UL));
    report("jmp null");
    show("null si_addr", got_addr);

    /* The registers a system call preserves survive one (RCX and R11 are the kernel's). */
    u64 r12 = 0x1212, r13 = 0x1313, out12, out13;
    asm volatile("mov %2, %%r12\n mov %3, %%r13\n mov $39, %%eax\n syscall\n mov %%r12, %0\n mov %%r13, %1"
                 : "=r"(out12), "=r"(out13) : "r"(r12), "r"(r13) : "rax", "rcx", "r11", "r12", "r13", "memory");
    show("callee-saved kept", out12 == r12 && out13 == r13);
    /* RFLAGS bits the program set survive a system call too (DF is cleared around it). */
    u64 fl;
    asm volatile("stc\n mov $39, %%eax\n syscall\n pushf\n pop %0" : "=r"(fl) : : "rax", "rcx", "r11", "memory");
    show("carry kept", fl & 1);
    show("if set", (fl >> 9) & 1);
    return 0;
}
