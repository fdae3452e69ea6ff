/* setjmp/longjmp (saved registers, volatile locals, nested jumps) and sigsetjmp/siglongjmp out
 * of a signal handler, with the signal mask restored. glibc mangles the saved stack and
 * instruction pointers with a per-process guard from AT_RANDOM. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static jmp_buf env;
static sigjmp_buf senv;
static int depth;

static void dive(int n) {
    char pad[256];
    memset(pad, n, sizeof pad);
    if (n == 0) longjmp(env, 7 + pad[0]);
    depth++;
    dive(n - 1);
}

static void on_usr1(int sig) { siglongjmp(senv, sig); }

int main(void) {
    volatile int counter = 0;
    int r = setjmp(env);
    counter++;
    if (r == 0) dive(50);
    printf("longjmp returned %d after depth %d counter %d\n", r, depth, counter);
    r = setjmp(env);
    if (r < 5) longjmp(env, r + 1);
    printf("looped to %d\n", r);
    if (setjmp(env) == 0) longjmp(env, 0);
    printf("longjmp(0) gives 1\n");

    signal(SIGUSR1, on_usr1);
    sigset_t set;
    int s = sigsetjmp(senv, 1);
    if (s == 0) {
        raise(SIGUSR1);
        printf("not reached\n");
    }
    sigprocmask(SIG_BLOCK, NULL, &set);
    printf("siglongjmp %d, usr1 blocked after: %d\n", s, sigismember(&set, SIGUSR1));
    return 0;
}
