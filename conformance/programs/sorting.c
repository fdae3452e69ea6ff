/* qsort and bsearch over integers, strings and structures; output is checksums and samples. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rec { int key; char name[12]; double w; };

static int cmp_int(const void *a, const void *b) { int x = *(const int *)a, y = *(const int *)b; return (x > y) - (x < y); }
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_rec(const void *a, const void *b) {
    const struct rec *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return strcmp(x->name, y->name);
}

int main(void) {
    enum { N = 20000 };
    int *v = malloc(N * sizeof *v);
    unsigned s = 12345;
    for (int i = 0; i < N; i++) { s = s * 1103515245 + 12345; v[i] = (int)(s >> 8) % 100000 - 50000; }
    qsort(v, N, sizeof *v, cmp_int);
    int sorted = 1;
    long long sum = 0;
    for (int i = 1; i < N; i++) sorted &= v[i - 1] <= v[i];
    for (int i = 0; i < N; i++) sum += (long long)v[i] * (i % 7);
    printf("ints sorted %d min %d max %d median %d weighted %lld\n", sorted, v[0], v[N - 1], v[N / 2], sum);
    int key = v[1234];
    int *hit = bsearch(&key, v, N, sizeof *v, cmp_int);
    printf("bsearch found %d\n", hit && *hit == key);

    static char words[2000][16];
    char *ptrs[2000];
    for (int i = 0; i < 2000; i++) {
        s = s * 1103515245 + 12345;
        int len = 3 + (s >> 16) % 10;
        for (int j = 0; j < len; j++) { s = s * 1103515245 + 12345; words[i][j] = 'a' + (s >> 16) % 26; }
        words[i][len] = 0;
        ptrs[i] = words[i];
    }
    qsort(ptrs, 2000, sizeof *ptrs, cmp_str);
    printf("strings first %s last %s\n", ptrs[0], ptrs[1999]);
    unsigned long h = 0;
    for (int i = 0; i < 2000; i++) for (char *p = ptrs[i]; *p; p++) h = h * 31 + (unsigned char)*p;
    printf("strings hash %lu\n", h);

    struct rec r[3000];
    for (int i = 0; i < 3000; i++) {
        s = s * 1103515245 + 12345;
        r[i].key = (s >> 16) % 50;
        snprintf(r[i].name, sizeof r[i].name, "n%05d", (int)((s >> 4) % 100000));
        r[i].w = i * 0.5;
    }
    qsort(r, 3000, sizeof *r, cmp_rec);
    printf("recs first %d/%s last %d/%s\n", r[0].key, r[0].name, r[2999].key, r[2999].name);
    free(v);
    return 0;
}
