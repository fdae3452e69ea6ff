/* Memory management calls: brk growth and shrink, anonymous mmap with and without hints,
 * MAP_FIXED and MAP_FIXED_NOREPLACE, munmap of a middle part, mprotect, mremap (shrink, grow in
 * place, move), madvise(MADV_DONTNEED) zeroing, and the errors for bad arguments. */
#include "nolibc.h"

#define PAGE 4096
#define PROT_RW 3
#define MAP_PRIVATE_ANON 0x22
#define MAP_FIXED 0x10
#define MAP_FIXED_NOREPLACE 0x100000

static long mmap_(void *a, u64 len, int prot, int flags) { return sys6(SYS_mmap, (long)a, len, prot, flags, -1, 0); }

static u64 sum(const u8 *p, u64 n) {
    u64 s = 0;
    for (u64 i = 0; i < n; i++) s = s * 31 + p[i];
    return s;
}

int main(int argc, char **argv, char **envp) {
    (void)argc, (void)argv, (void)envp;
    /* brk */
    u64 b0 = sys3(SYS_brk, 0, 0, 0);
    u64 b1 = sys3(SYS_brk, b0 + 100000, 0, 0);
    show("brk grew", b1 == b0 + 100000);
    u8 *heap = (u8 *)b0;
    for (int i = 0; i < 100000; i++) heap[i] = (u8)(i * 7);
    show("heap sum ok", sum(heap, 100000) != 0);
    show("brk shrink", sys3(SYS_brk, b0 + 10, 0, 0) == b0 + 10);
    show("brk below start keeps", sys3(SYS_brk, 1, 0, 0) == b0 + 10);

    /* anonymous memory is zeroed, and survives a partial munmap */
    u8 *m = (u8 *)mmap_(0, 16 * PAGE, PROT_RW, MAP_PRIVATE_ANON);
    show("mmap ok", (long)m > 0 && ((u64)m % PAGE) == 0);
    show("zero filled", sum(m, 16 * PAGE) == 0);
    for (int i = 0; i < 16 * PAGE; i++) m[i] = (u8)(i >> 3);
    u64 s_tail = sum(m + 12 * PAGE, 4 * PAGE);
    show("munmap middle", sys3(SYS_munmap, m + 4 * PAGE, 8 * PAGE, 0));
    show("head intact", m[PAGE] == (u8)(PAGE >> 3));
    show("tail intact", sum(m + 12 * PAGE, 4 * PAGE) == s_tail);
    show("munmap unaligned", sys3(SYS_munmap, m + 1, PAGE, 0));
    show("munmap zero length", sys3(SYS_munmap, m, 0, 0));

    /* MAP_FIXED into the hole, MAP_FIXED_NOREPLACE over something mapped */
    long f = mmap_(m + 4 * PAGE, 2 * PAGE, PROT_RW, MAP_PRIVATE_ANON | MAP_FIXED);
    show("map fixed in hole", f == (long)(m + 4 * PAGE));
    show("fixed noreplace over mapping", mmap_(m, PAGE, PROT_RW, MAP_PRIVATE_ANON | MAP_FIXED_NOREPLACE));
    show("mmap zero length", mmap_(0, 0, PROT_RW, MAP_PRIVATE_ANON));
    show("mmap no type", mmap_(0, PAGE, PROT_RW, 0x20));

    /* mprotect */
    show("mprotect ro", sys3(SYS_mprotect, m, PAGE, 1));
    show("mprotect unaligned", sys3(SYS_mprotect, m + 5, PAGE, 1));
    show("mprotect unmapped", sys3(SYS_mprotect, m + 6 * PAGE, PAGE, 1));
    show("mprotect rw again", sys3(SYS_mprotect, m, PAGE, 3));
    m[0] = 1;

    /* mremap: shrink, grow in place, move */
    u8 *r = (u8 *)mmap_(0, 4 * PAGE, PROT_RW, MAP_PRIVATE_ANON);
    for (int i = 0; i < 4 * PAGE; i++) r[i] = (u8)(i * 13);
    u64 s_r = sum(r, 2 * PAGE);
    show("mremap shrink", sys6(SYS_mremap, (long)r, 4 * PAGE, 2 * PAGE, 0, 0, 0) == (long)r);
    /* block growth in place by mapping right after it */
    long blocker = mmap_(r + 2 * PAGE, PAGE, PROT_RW, MAP_PRIVATE_ANON | MAP_FIXED);
    show("blocker placed", blocker == (long)(r + 2 * PAGE));
    show("mremap grow without maymove", sys6(SYS_mremap, (long)r, 2 * PAGE, 8 * PAGE, 0, 0, 0));
    u8 *moved = (u8 *)sys6(SYS_mremap, (long)r, 2 * PAGE, 8 * PAGE, 1, 0, 0);
    show("mremap moved", moved != r && (long)moved > 0);
    show("moved contents", sum(moved, 2 * PAGE) == s_r);
    show("grown part zero", sum(moved + 2 * PAGE, 6 * PAGE) == 0);

    /* madvise(MADV_DONTNEED) on private anonymous memory: reads back as zeros */
    moved[100] = 42;
    show("madvise dontneed", sys3(28, moved, PAGE, 4));
    show("zero after dontneed", moved[100]);

    /* a big sparse mapping costs nothing until touched */
    u8 *big = (u8 *)mmap_(0, 1UL << 30, PROT_RW, MAP_PRIVATE_ANON);
    show("1 GiB mapping", (long)big > 0);
    big[(1UL << 30) - 1] = 9;
    big[12345678] = 8;
    show("sparse touch", big[(1UL << 30) - 1] + big[12345678]);
    show("munmap big", sys3(SYS_munmap, big, 1UL << 30, 0));
    return 0;
}
