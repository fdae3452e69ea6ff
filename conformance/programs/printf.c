/* printf and friends: integers in every base and width, floating point in %f/%e/%g/%a with
 * rounding cases, strtod/strtol round trips, and a little long double (x87) formatting. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    printf("[%d] [%5d] [%-5d] [%05d] [%+d] [% d]\n", 42, 42, 42, 42, 42, 42);
    printf("[%x] [%X] [%#x] [%o] [%#o] [%u]\n", 0xbeef, 0xbeef, 0xbeef, 0755, 0755, 4000000000u);
    printf("[%lld] [%llu] [%" PRIx64 "] [%" PRId64 "]\n", -9223372036854775807LL - 1, 18446744073709551615ULL,
           (uint64_t)0xfedcba9876543210ull, (int64_t)-1);
    printf("[%hhd] [%hd] [%zd] [%c] [%s] [%.3s] [%10.4s] [%%]\n", (signed char)300, (short)70000, (ssize_t)-5, 'x', "str",
           "abcdef", "abcdef");
    printf("[%p]\n", (void *)0x1234);
    double vals[] = {0.0, -0.0, 1.0, -1.5, 3.14159265358979, 1e-300, 1e300, 123456789.0, 0.1, 2.5, 0.125, 1.0 / 3.0,
                     6.02214076e23, 5e-324, 1.7976931348623157e308};
    for (unsigned i = 0; i < sizeof vals / sizeof *vals; i++) {
        double v = vals[i];
        printf("%.3f|%e|%g|%.17g|%a|%10.2f|%-12.5e|\n", v, v, v, v, v, v, v);
    }
    printf("inf %f -inf %e nan %g\n", INFINITY, -INFINITY, NAN);
    printf("rounding: %.0f %.0f %.0f %.0f %.1f %.2f\n", 0.5, 1.5, 2.5, -0.5, 0.05, 1.005);
    const char *nums[] = {"3.14", "-2.5e-3", "1e400", "0x1.8p3", "  42abc", "inf", "-nan", "1e-320"};
    for (unsigned i = 0; i < sizeof nums / sizeof *nums; i++) {
        char *end;
        double d = strtod(nums[i], &end);
        printf("strtod(%s) = %.17g rest [%s]\n", nums[i], d, end);
    }
    printf("strtol %ld %ld %lu %lld\n", strtol("-123", 0, 10), strtol("ff", 0, 16), strtoul("0777", 0, 0),
           strtoll("9223372036854775807", 0, 10));
    printf("atoi %d atof %.2f\n", atoi("  -17x"), atof("2.75"));
    char buf[64];
    int n = snprintf(buf, 10, "%s-%d", "truncated", 12345);
    printf("snprintf %d [%s]\n", n, buf);
    double x = 0;
    for (int i = 0; i < 1000; i++) x += sqrt((double)i) * sin(i * 0.01) / (1.0 + i);
    printf("math %.12f %.12f %.12f %.12f\n", x, exp(1.0), log(10.0), pow(2.0, 0.5));
    long double ld = 1.0L / 3.0L;
    printf("long double %.20Lf %Lg\n", ld, ld * 1e100L);
    return 0;
}
