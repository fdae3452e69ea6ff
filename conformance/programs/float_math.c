/* Floating point through the compiler and libm: float, double and long double arithmetic,
 * conversions to and from integers (every rounding case of the C casts), comparisons with NaN,
 * and libm functions, printed with full precision so any last-bit difference shows. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

static volatile double vd[] = {0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, -2.5, 1e-310, 3.0e38, 1e300, -7.25, 123456.789,
                               4503599627370497.0, 9.2233720368547758e18, NAN, INFINITY};

int main(void) {
    unsigned n = sizeof vd / sizeof *vd;
    for (unsigned i = 0; i < n; i++) {
        double x = vd[i];
        float f = (float)x;
        long double l = x;
        printf("x=%a f=%a i64=%lld u32=%u r=%a s=%a\n", x, (double)f, (long long)(isfinite(x) && fabs(x) < 9e18 ? (int64_t)x : 0),
               (unsigned)(isfinite(x) && x >= 0 && x < 4e9 ? (uint32_t)x : 0), rint(x), sqrt(fabs(x)));
        printf("  l*3=%La l/7=%La fl=%a ce=%a tr=%a\n", l * 3, l / 7, floor(x), ceil(x), trunc(x));
        for (unsigned j = 0; j < n; j += 3) {
            double y = vd[j];
            printf("  %a %a %a %a %d%d%d\n", x + y, x - y, x * y, x / y, x < y, x == y, isunordered(x, y));
        }
    }
    double acc = 0;
    float facc = 0;
    for (int i = 1; i <= 2000; i++) {
        acc += sin(i * 0.001) * cos(i * 0.002) + log1p(i) - exp(-i * 0.01) + atan2(i, 7) + pow(i, 0.33) + fmod(i * 1.7, 3.3);
        facc += sinf(i * 0.01f) * sqrtf((float)i) + expf(-i * 0.001f);
    }
    printf("acc %.17g facc %.9g\n", acc, (double)facc);
    long double la = 0;
    for (int i = 1; i <= 1000; i++) la += 1.0L / ((long double)i * i);
    printf("zeta2 %.21Lg sqrtl %.21Lg\n", la, sqrtl(2.0L));
    printf("int->fp %a %a %a %a\n", (double)INT64_MAX, (double)UINT64_MAX, (float)16777217, (double)(uint64_t)0x8000000000000001ull);
    printf("eps %a %a min %a\n", DBL_EPSILON, (double)FLT_EPSILON, DBL_MIN);
    return 0;
}
