/* Fault signals through libc's sigaction: a SIGSEGV handler reports the faulting address and
 * whether the access was a write (REG_ERR bit 1) for (a) a read of an unmapped page, (b) a
 * read-modify-write of a read-only page, (c) an 8-byte store crossing into a read-only page
 * (which must not modify the first page); then SIGFPE for an integer divide by zero and SIGILL
 * for ud2. Recovery is by siglongjmp. The program ends with abort() (exit status 134). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

static sigjmp_buf jb;
static volatile void *fault_addr;
static volatile long fault_err, fault_code, fault_sig;

static void handler(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    fault_sig = sig;
    fault_addr = si->si_addr;
    fault_code = si->si_code;
    fault_err = uc->uc_mcontext.gregs[REG_ERR];
    siglongjmp(jb, 1);
}

static void report(const char *what, volatile void *expect) {
    printf("%s: sig %ld code %ld addr %s write %ld\n", what, fault_sig, fault_code,
           fault_addr == expect ? "ok" : "WRONG", (fault_err >> 1) & 1);
    fault_sig = 0;
}

int main(void) {
    long pg = sysconf(_SC_PAGESIZE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);

    char *m = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(m, 0x11, 3 * pg);
    mprotect(m + pg, pg, PROT_READ);
    munmap(m + 2 * pg, pg);

    volatile int sink;
    if (!sigsetjmp(jb, 1)) sink = *(volatile int *)(m + 2 * pg + 12);
    report("read unmapped", m + 2 * pg + 12);

    if (!sigsetjmp(jb, 1)) asm volatile("addl $1, (%0)" ::"r"(m + pg + 8) : "memory");
    report("rmw read-only", m + pg + 8);
    printf("read-only value unchanged %d\n", *(int *)(m + pg + 8) == 0x11111111);

    if (!sigsetjmp(jb, 1)) asm volatile("movq %1, (%0)" ::"r"(m + pg - 3), "r"(-1L) : "memory");
    report("crossing store", m + pg);
    int untouched = 1;
    for (int i = 1; i <= 3; i++) untouched &= (unsigned char)m[pg - i] == 0x11;
    printf("first page untouched %d\n", untouched);

    volatile int zero = 0;
    if (!sigsetjmp(jb, 1)) sink = 100 / zero;
    printf("divide: sig %ld code %ld\n", fault_sig, fault_code);
    fault_sig = 0;
    if (!sigsetjmp(jb, 1)) asm volatile("ud2");
    printf("ud2: sig %ld code %ld\n", fault_sig, fault_code);
    (void)sink;

    /* raise() and a plain handler */
    printf("still running; aborting\n");
    fflush(stdout);
    abort();
}
