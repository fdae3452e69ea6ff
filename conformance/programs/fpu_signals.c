/* The x87/SSE state across signal delivery: the handler starts with the default FPU state
 * (round to nearest, MXCSR 0x1F80) whatever the program had set, and sigreturn gives the
 * program back its own: the rounding mode in both the x87 control word and MXCSR, and the
 * values it keeps in XMM and x87 registers across the signal. Output must match natively. */
#include <fenv.h>
#include <signal.h>
#include <stdio.h>

static volatile int in_handler_round, in_handler_mxcsr;
static volatile double handler_result;

static unsigned mxcsr(void) {
    unsigned m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    return m;
}

static void on_usr1(int sig) {
    (void)sig;
    in_handler_round = fegetround();
    in_handler_mxcsr = (int)mxcsr();
    volatile double a = 1.0, b = 3.0;
    handler_result = a / b; /* dirties XMM registers inside the handler */
}

int main(void) {
    signal(SIGUSR1, on_usr1);
    fesetround(FE_DOWNWARD);
    volatile double x = 2.0, y = 3.0;
    double kept = x / y; /* rounded down, then kept live in a register across the signal */
    long double lkept = (long double)x / (long double)y;
    raise(SIGUSR1);
    double again = x / y;
    printf("handler: round %s mxcsr %#x result %.17g\n", in_handler_round == FE_TONEAREST ? "nearest" : "other",
           in_handler_mxcsr, handler_result);
    printf("after: round %s mxcsr %#x\n", fegetround() == FE_DOWNWARD ? "downward" : "other", mxcsr());
    printf("kept %.17g again %.17g same %d\n", kept, again, kept == again);
    printf("x87 kept %.21Lg\n", lkept);
    fesetround(FE_UPWARD);
    raise(SIGUSR1);
    printf("upward after signal: %s, 2/3 = %.17g\n", fegetround() == FE_UPWARD ? "yes" : "no", x / y);
    return 0;
}
