/* The string and memory functions over every alignment 0..31 and lengths 0..300, checked
 * against plain byte loops. glibc picks SSE2 (or wider) versions of these at startup, so this
 * exercises the vector instructions through real library code. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static unsigned char bufa[1024], bufb[1024], bufc[1024];

static size_t ref_strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
static int sign(int v) { return (v > 0) - (v < 0); }
static int ref_memcmp(const unsigned char *a, const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++) if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
}

int main(void) {
    unsigned long errors = 0, sum = 0;
    for (int align = 0; align < 32; align++) {
        for (int len = 0; len <= 300; len += (len < 70 ? 1 : 7)) {
            char *s = (char *)bufa + align;
            for (int i = 0; i < len; i++) s[i] = (char)('a' + (i * 7 + align) % 26);
            s[len] = 0;
            if (strlen(s) != ref_strlen(s)) errors++;
            sum += strlen(s);

            unsigned char *d = bufb + (align * 5) % 32;
            memset(bufb, 0x55, sizeof bufb);
            memcpy(d, s, len);
            if (ref_memcmp(d, (unsigned char *)s, len) || d[len] != 0x55) errors++;

            /* overlapping moves both ways */
            memcpy(bufc, bufa, sizeof bufc);
            memmove(bufc + align + 3, bufc + align, len);
            if (ref_memcmp(bufc + align + 3, bufa + align, len)) errors++;
            memcpy(bufc, bufa, sizeof bufc);
            memmove(bufc + align, bufc + align + 5, len);
            if (ref_memcmp(bufc + align, bufa + align + 5, len)) errors++;

            /* compares: equal, then differing at every position */
            strcpy((char *)bufc + 1, s);
            if (strcmp(s, (char *)bufc + 1) != 0 || memcmp(s, bufc + 1, len) != 0) errors++;
            for (int k = 0; k < len; k += 1 + len / 9) {
                bufc[1 + k] ^= 0x20;
                int r = sign(strcmp(s, (char *)bufc + 1));
                int m = sign(memcmp(s, bufc + 1, len));
                if (r != sign(ref_memcmp((unsigned char *)s, bufc + 1, len)) || m != r) errors++;
                if (sign(strncmp(s, (char *)bufc + 1, k)) != 0) errors++;
                sum += (unsigned)(r + 1);
                bufc[1 + k] ^= 0x20;
            }
            char *c = strchr(s, 'q');
            char *rc = strrchr(s, 'a' + align % 26);
            sum += (c ? (unsigned long)(c - s) : 999) + (rc ? (unsigned long)(rc - s) : 777);
            void *mc = memchr(s, 'z', len);
            sum += mc ? (unsigned long)((char *)mc - s) : 555;
            memset(bufc + align, align, len);
            for (int i = 0; i < len; i++) if (bufc[align + i] != align) { errors++; break; }
        }
    }
    const char *hay = "the quick brown fox jumps over the lazy dog, then the quick cat";
    printf("strstr: %s\n", strstr(hay, "the quick c"));
    printf("strspn %zu strcspn %zu\n", strspn(hay, "the "), strcspn(hay, ","));
    char tok[] = "a,b;;c,d";
    int n = 0;
    for (char *t = strtok(tok, ",;"); t; t = strtok(NULL, ",;")) n++;
    printf("tokens %d\n", n);
    char *dup = strdup(hay);
    printf("strdup equal %d, strncat: ", strcmp(dup, hay) == 0);
    char cat[32] = "abc";
    strncat(cat, "defghij", 4);
    puts(cat);
    free(dup);
    printf("errors %lu sum %lu\n", errors, sum);
    return errors != 0;
}
