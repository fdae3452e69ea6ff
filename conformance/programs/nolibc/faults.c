/* Synchronous faults delivered as signals, checked from inside the handler: the faulting
 * address (si_addr), si_code, and the ucontext's REG_ERR / REG_TRAPNO as Linux sets them.
 * Each probe records a recovery address; the handler resumes there by rewriting REG_RIP, which
 * also exercises rt_sigreturn. Output is identical natively and under the emulator. */
#include "nolibc.h"

#define PAGE 4096
static volatile u64 recover;
static volatile int got_sig, got_code, handled;
static volatile u64 got_addr, got_err, got_trapno, got_rip, blocked_inside;

static void handler(int sig, struct ksiginfo *si, void *uc) {
    u64 *g = gregs(uc);
    u64 mask;
    got_sig = sig;
    got_code = si->code;
    got_addr = si->addr;
    got_err = g[REG_ERR];
    got_trapno = g[REG_TRAPNO];
    got_rip = g[REG_RIP];
    sys4(SYS_rt_sigprocmask, 0, 0, &mask, 8);
    blocked_inside = mask;
    handled++;
    g[REG_RIP] = recover;
}

static void report(const char *what, u64 expect_addr) {
    put(what);
    put(": sig=");
    put_i(got_sig);
    put(" code=");
    put_i(got_code);
    put(" addr_ok=");
    put_i(got_addr == expect_addr);
    put(" err=");
    put_u(got_err);
    put(" write=");
    put_u((got_err >> 1) & 1);
    put(" trapno=");
    put_u(got_trapno);
    put(" self_blocked=");
    put_u((blocked_inside >> (got_sig - 1)) & 1);
    put("\n");
    got_sig = 0;
    got_addr = got_err = got_trapno = 0;
}

/* Sets `recover` to the label after the faulting instruction, then runs it. */
#define PROBE(insn, ...) \
    asm volatile("lea 1f(%%rip), %%rax\n mov %%rax, recover(%%rip)\n" insn "\n1:\n" ::__VA_ARGS__ : "rax", "rdx", "memory")

int main(int argc, char **argv, char **envp) {
    (void)argc, (void)argv, (void)envp;
    char *m = (char *)sys6(SYS_mmap, 0, 3 * PAGE, 3, 0x22, -1, 0);
    if ((long)m < 0) { put("mmap failed\n"); return 1; }
    for (int i = 0; i < 3 * PAGE; i++) m[i] = (char)i;
    sys3(SYS_mprotect, m + PAGE, PAGE, 1);        /* middle page read-only */
    sys3(SYS_munmap, m + 2 * PAGE, PAGE, 0);      /* last page unmapped */
    sigaction_k(11, handler, SA_SIGINFO);
    sigaction_k(8, handler, SA_SIGINFO);
    sigaction_k(4, handler, SA_SIGINFO);

    /* (a) read from an unmapped page */
    PROBE("mov (%0), %%edx", "r"(m + 2 * PAGE + 8));
    report("read unmapped", (u64)(m + 2 * PAGE + 8));

    /* (b) read-modify-write of a read-only page: a write fault */
    PROBE("addl $1, (%0)", "r"(m + PAGE + 16));
    report("rmw read-only", (u64)(m + PAGE + 16));
    show("rmw left value", *(int *)(m + PAGE + 16));

    /* plain store to a read-only page */
    PROBE("movb $7, (%0)", "r"(m + PAGE));
    report("store read-only", (u64)(m + PAGE));

    /* (c) 8-byte store crossing from a writable page into the read-only one: nothing written */
    u64 before = *(u64 *)(m + PAGE - 8);
    PROBE("movq $-1, (%0)", "r"(m + PAGE - 4));
    report("crossing store", (u64)(m + PAGE));
    show("first page unchanged", *(u64 *)(m + PAGE - 8) == before);

    /* a read of the read-only page is fine */
    show("read-only readable", m[PAGE + 1] == 1);

    /* integer divide by zero */
    u64 dl;
    asm volatile("lea 2f(%%rip), %%rax\n mov %%rax, recover(%%rip)\n lea 3f(%%rip), %0\n"
                 "xor %%edx, %%edx\n mov $5, %%eax\n xor %%ecx, %%ecx\n 3: div %%ecx\n 2:\n"
                 : "=&r"(dl) :: "rax", "rcx", "rdx", "memory");
    report("divide by zero", dl);
    show("rip at div", got_rip == dl);

    /* ud2 */
    asm volatile("lea 2f(%%rip), %%rax\n mov %%rax, recover(%%rip)\n lea 3f(%%rip), %0\n 3: ud2\n 2:\n"
                 : "=&r"(dl) :: "rax", "memory");
    report("ud2", dl);

    /* a non-canonical address: #GP, si_addr 0 */
    PROBE("mov (%0), %%edx", "r"(0x8000000000000000UL));
    report("non-canonical", 0);

    /* the signal is unblocked again after the handler returned */
    u64 mask = 1;
    sys4(SYS_rt_sigprocmask, 0, 0, &mask, 8);
    show("blocked after return", mask);
    show("handled", handled);
    return 0;
}
