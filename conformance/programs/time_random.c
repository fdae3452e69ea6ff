/* Time and randomness: clock_gettime/gettimeofday/time agree and move forward, nanosleep waits,
 * gmtime/strftime/mktime on fixed times, the C library's seeded generators (deterministic), and
 * getrandom (not deterministic, so only its return is printed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>

int main(void) {
    struct timespec a, b, r;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct timespec nap = {0, 3000000};
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long long dt = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    printf("monotonic advanced >= 3ms: %d\n", dt >= 3000000);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    time_t now = time(NULL);
    printf("time agrees with gettimeofday: %d\n", now - tv.tv_sec >= 0 && now - tv.tv_sec < 3);
    printf("after 2020: %d\n", now > 1577836800);
    printf("getres ok %d\n", clock_getres(CLOCK_REALTIME, &r) == 0 && r.tv_sec == 0);
    clock_t c = clock();
    printf("clock() non-negative %d\n", c >= 0);

    time_t fixed = 1234567890;
    struct tm tm;
    gmtime_r(&fixed, &tm);
    char buf[128];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %A %j %U", &tm);
    printf("gmtime %s\n", buf);
    tm.tm_mday += 40;
    time_t back = timegm(&tm);
    printf("timegm +40 days %lld\n", (long long)back);
    printf("asctime %s", asctime(gmtime(&fixed)));

    srand(42);
    unsigned long h = 0;
    for (int i = 0; i < 1000; i++) h = h * 31 + (unsigned)rand();
    printf("rand hash %lu\n", h);
    srandom(7);
    printf("random %ld %ld\n", random(), random());
    unsigned short seed[3] = {1, 2, 3};
    printf("nrand48 %ld erand48 %.10f\n", nrand48(seed), erand48(seed));

    unsigned char rb[32];
    printf("getrandom %zd\n", getrandom(rb, sizeof rb, 0));
    int same = 1;
    for (int i = 1; i < 32; i++) same &= rb[i] == rb[0];
    printf("random bytes vary %d\n", !same);
    return 0;
}
