/* The program the gdb stub test debugs (conformance/tests/gdb.rs): nested calls for a
 * backtrace, locals that change while stepping, a global for a watchpoint, an exit status. */
#include <stdio.h>

int counter;

static int square(int n) {
    int r = n * n;
    return r;
}

static int sum_squares(int limit) {
    int total = 0;
    for (int i = 1; i <= limit; i++) {
        total += square(i);
        counter = counter + 1;
    }
    return total;
}

int main(void) {
    int result = sum_squares(4);
    printf("result %d\n", result);
    return result % 7;
}
