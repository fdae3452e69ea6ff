/* malloc, calloc, realloc and free under a pseudo-random workload of small, medium and large
 * (mmap-sized) blocks; every block is filled (memset) and carries a strided pattern that is
 * checked before it is freed or after it is reallocated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long s = 88172645463325252ull;
static unsigned long rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
/* The byte at k of block i of length n: the fill value, or the pattern on the stride. */
static unsigned char expect(int i, size_t k, size_t n) { return (unsigned char)(k % (1 + n / 64) == 0 ? i + k : i); }

int main(void) {
    enum { SLOTS = 512 };
    unsigned char *p[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    unsigned long errors = 0, total = 0;
    for (int round = 0; round < 20000; round++) {
        int i = rnd() % SLOTS;
        if (p[i]) {
            for (size_t k = 0; k < len[i]; k += 1 + len[i] / 97)
                if (p[i][k] != expect(i, k, len[i])) { errors++; break; }
            if (rnd() % 4 == 0) {
                size_t nl = rnd() % 5000 + 1;
                unsigned char *q = realloc(p[i], nl);
                size_t keep = nl < len[i] ? nl : len[i];
                for (size_t k = 0; k < keep; k += 1 + keep / 97)
                    if (q[k] != expect(i, k, len[i])) { errors++; break; }
                memset(q, i, nl);
                for (size_t k = 0; k < nl; k += 1 + nl / 64) q[k] = (unsigned char)(i + k);
                p[i] = q;
                len[i] = nl;
                continue;
            }
            free(p[i]);
            p[i] = 0;
            continue;
        }
        unsigned long kind = rnd() % 100;
        size_t n = kind < 70 ? rnd() % 128 + 1 : kind < 99 ? rnd() % 8192 + 1 : rnd() % (1 << 18) + 140000;
        if (kind % 3 == 0) {
            p[i] = calloc(n, 1);
            for (size_t k = 0; k < n; k += 1 + n / 64) if (p[i][k]) { errors++; break; }
        } else {
            p[i] = malloc(n);
        }
        if (!p[i]) { printf("allocation of %zu failed\n", n); return 1; }
        memset(p[i], i, n);
        for (size_t k = 0; k < n; k += 1 + n / 64) p[i][k] = (unsigned char)(i + k);
        len[i] = n;
        total += n;
    }
    for (int i = 0; i < SLOTS; i++) free(p[i]);
    void *a = malloc(0);
    printf("malloc(0) %s\n", a ? "non-null" : "null");
    free(a);
    void *al = aligned_alloc(4096, 4096 * 3);
    printf("aligned %d\n", ((unsigned long)al & 4095) == 0);
    free(al);
    printf("errors %lu total %lu\n", errors, total);
    return errors != 0;
}
