/* The program the gdb signal test debugs (conformance/tests/gdb.rs): signals sent to itself
 * (SIGUSR1 three times: gdb passes the first on, suppresses the second with `signal 0`, lets
 * `handle ... nostop noprint pass` deliver the third), a SIGSEGV its handler catches, and
 * abort()'s SIGABRT, which kills it. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile int usr1_count;
static sigjmp_buf recover;

static void on_usr1(int sig) {
    usr1_count += sig == SIGUSR1;
}

static void on_segv(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    siglongjmp(recover, si->si_addr == (void *)16 && sig == SIGSEGV ? 1 : 2);
}

int main(void) {
    struct sigaction usr1 = {0}, segv = {0};
    usr1.sa_handler = on_usr1;
    sigaction(SIGUSR1, &usr1, 0);
    segv.sa_sigaction = on_segv;
    segv.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &segv, 0);
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR1);
    printf("usr1 handled %d times\n", usr1_count);
    int how = sigsetjmp(recover, 1);
    if (how == 0) {
        volatile int *bad = (int *)16;
        *bad = 1;
    }
    printf("segv caught (%d)\n", how);
    fflush(stdout);
    abort();
}
