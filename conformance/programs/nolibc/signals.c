/* Asynchronous signals to self: kill/tgkill with handlers, SI_USER siginfo, blocking and
 * pending sets, SA_RESETHAND, SA_NODEFER, SIG_IGN, default-ignored SIGCHLD, the alternate
 * signal stack, a handler changing a saved register, and finally death by SIGTERM (exit status
 * 143 both natively and under the emulator). */
#include "nolibc.h"

#define SIGUSR1 10
#define SIGUSR2 12
#define SIGTERM 15
#define SIGCHLD 17

static volatile int count1, count2, last_code, pid_ok, nodefer_unblocked, on_alt;
static volatile u64 alt_lo, alt_hi;
static volatile long pid;

static void h1(int sig, struct ksiginfo *si, void *uc) {
    u64 mask;
    (void)uc;
    count1++;
    last_code = si->code;
    pid_ok = *(int *)((char *)si + 16) == pid;
    sys4(SYS_rt_sigprocmask, 0, 0, &mask, 8);
    nodefer_unblocked = !((mask >> (sig - 1)) & 1);
    char probe;
    on_alt = (u64)&probe >= alt_lo && (u64)&probe < alt_hi;
}
static void h2(int sig) {
    (void)sig;
    count2++;
}

static long get_handler(int sig) {
    struct ksigaction old;
    sys4(SYS_rt_sigaction, sig, 0, &old, 8);
    return (long)old.handler;
}

int main(int argc, char **argv, char **envp) {
    (void)argc, (void)argv, (void)envp;
    pid = sys3(SYS_getpid, 0, 0, 0);
    sigaction_k(SIGUSR1, h1, SA_SIGINFO);
    sys3(SYS_kill, pid, SIGUSR1, 0);
    show("usr1 handled", count1);
    show("si_code", last_code);
    show("si_pid ok", pid_ok);
    show("self blocked in handler", !nodefer_unblocked);

    /* blocked: stays pending until unblocked */
    u64 set = 1UL << (SIGUSR2 - 1), pend = 0;
    sigaction_k(SIGUSR2, h2, 0);
    sys4(SYS_rt_sigprocmask, 0, &set, 0, 8);
    sys3(SYS_kill, pid, SIGUSR2, 0);
    show("usr2 while blocked", count2);
    sys3(SYS_rt_sigpending, &pend, 8, 0);
    show("usr2 pending", (pend >> (SIGUSR2 - 1)) & 1);
    sys4(SYS_rt_sigprocmask, 1, &set, 0, 8);
    show("usr2 after unblock", count2);

    /* SA_NODEFER: the signal is not blocked inside its handler */
    sigaction_k(SIGUSR1, h1, SA_SIGINFO | SA_NODEFER);
    sys3(SYS_kill, pid, SIGUSR1, 0);
    show("nodefer unblocked", nodefer_unblocked);

    /* SA_RESETHAND: back to SIG_DFL after one delivery */
    sigaction_k(SIGUSR1, h1, SA_SIGINFO | SA_RESETHAND);
    sys3(SYS_kill, pid, SIGUSR1, 0);
    show("resethand handler now", get_handler(SIGUSR1));

    /* the alternate stack */
    static char altstack[65536];
    struct { void *sp; int flags; int pad; u64 size; } ss = {altstack, 0, 0, sizeof altstack};
    alt_lo = (u64)altstack;
    alt_hi = alt_lo + sizeof altstack;
    show("sigaltstack", sys3(SYS_sigaltstack, &ss, 0, 0));
    sigaction_k(SIGUSR1, h1, SA_SIGINFO | SA_ONSTACK);
    sys3(SYS_kill, pid, SIGUSR1, 0);
    show("handler on altstack", on_alt);
    struct { void *sp; int flags; int pad; u64 size; } old;
    sys3(SYS_sigaltstack, 0, &old, 0);
    show("altstack flags outside", old.flags);

    /* tgkill to our own thread */
    sys3(234, pid, pid, SIGUSR2);
    show("tgkill usr2", count2);

    /* ignored and default-ignored signals */
    sigaction_k(SIGUSR2, (void *)1, 0);
    sys3(SYS_kill, pid, SIGUSR2, 0);
    sys3(SYS_kill, pid, SIGCHLD, 0);
    show("survived ignored signals", 1);
    show("kill bad signal", sys3(SYS_kill, pid, 99, 0));
    show("kill signal 0", sys3(SYS_kill, pid, 0, 0));
    show("sigaction SIGKILL", sigaction_k(9, h2, 0));

    put("dying by SIGTERM\n");
    sys3(SYS_kill, pid, SIGTERM, 0);
    put("not reached\n");
    return 0;
}
