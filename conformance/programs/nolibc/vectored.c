/* Vectored, positioned and zero-copy I/O and the descriptor odds and ends: readv/writev,
 * preadv/pwritev, sendfile with and without an offset, poll, dup3, F_SETFL O_APPEND, fcntl
 * locks, FIONREAD on a pipe, file mappings at an offset, futex on a private word, and
 * rt_sigtimedwait/rt_sigsuspend with a pending signal. */
#include "nolibc.h"

#define AT_FDCWD -100
struct iov { const void *base; u64 len; };

static long open_(const char *p, int flags, int mode) { return sys4(SYS_openat, AT_FDCWD, p, flags, mode); }

static volatile int usr1;
static void on_usr1(int sig) { (void)sig; usr1++; }

int main(int argc, char **argv, char **envp) {
    (void)argc, (void)argv, (void)envp;
    char buf[8192];
    long fd = open_("v.txt", 0102 | 01000, 0600); /* O_RDWR|O_CREAT|O_TRUNC */
    struct iov w[3] = {{"first,", 6}, {"", 0}, {"second\n", 7}};
    show("writev", sys3(20, fd, w, 3));
    show("writev bad count", sys3(20, fd, w, 100000));
    sys3(SYS_lseek, fd, 0, 0);
    char a[4], b[20];
    struct iov r[2] = {{a, 4}, {b, 20}};
    show("readv", sys3(19, fd, r, 2));
    b[9] = 0;
    put("readv parts: ");
    sys3(SYS_write, 1, a, 4);
    put("|");
    put(b);
    put("\n");
    struct iov pw[2] = {{"AB", 2}, {"CD", 2}};
    show("pwritev", sys4(296, fd, pw, 2, 3));
    show("offset unchanged", sys3(SYS_lseek, fd, 0, 1));
    struct iov pr[1] = {{buf, 13}};
    show("preadv", sys4(295, fd, pr, 1, 0));
    buf[13] = 0;
    put(buf);
    put("\n");

    /* sendfile: from an offset (file position untouched) and from the position */
    long out = open_("copy.txt", 0101 | 01000, 0600); /* O_WRONLY|O_CREAT|O_TRUNC */
    long off = 6;
    show("sendfile offset", sys4(40, out, fd, &off, 100));
    show("offset advanced to", off);
    sys3(SYS_lseek, fd, 0, 0);
    show("sendfile position", sys4(40, out, fd, 0, 5));
    show("position after", sys3(SYS_lseek, fd, 0, 1));
    sys3(SYS_close, out, 0, 0);
    out = open_("copy.txt", 0, 0);
    long n = sys3(SYS_read, out, buf, 100);
    buf[n] = 0;
    put("copy: ");
    put(buf);
    put("\n");

    /* O_APPEND switched on with F_SETFL */
    show("setfl append", sys3(SYS_fcntl, fd, 4, 02000));
    show("getfl has append", (sys3(SYS_fcntl, fd, 3, 0) & 02000) != 0);
    sys3(SYS_lseek, fd, 0, 0);
    sys3(SYS_write, fd, "!", 1);
    struct { long dev[2]; u64 pad[2]; long size; } st;
    long stbuf[18];
    sys3(SYS_fstat, fd, stbuf, 0);
    (void)st;
    show("appended size", stbuf[6]);
    short lk[16] = {1 /* F_WRLCK */, 0};
    show("setlk", sys3(SYS_fcntl, fd, 6, lk));
    show("getlk", sys3(SYS_fcntl, fd, 5, lk));
    show("getlk type unlocked", lk[0]);

    /* dup3 */
    show("dup3", sys4(292, fd, 40, 02000000, 0));
    show("dup3 cloexec", sys3(SYS_fcntl, 40, 1, 0));
    show("dup3 same fd", sys4(292, 40, 40, 0, 0));
    show("dup2 same fd", sys3(SYS_dup2, 40, 40, 0));

    /* a file mapping at a page offset */
    long big = open_("big.bin", 0102 | 01000, 0600);
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 4096; k++) buf[k] = (char)('a' + i);
        sys3(SYS_write, big, buf, 4096);
    }
    char *m = (char *)sys6(SYS_mmap, 0, 8192, 1, 2, big, 4096);
    show("mmap at offset", m[0] == 'b' && m[4096] == 'c');
    show("mmap bad offset", sys6(SYS_mmap, 0, 4096, 1, 2, big, 100));
    show("mmap bad fd", sys6(SYS_mmap, 0, 4096, 1, 2, 99, 0));

    /* pipes: poll and FIONREAD */
    int p[2];
    sys3(SYS_pipe2, p, 04000, 0); /* O_NONBLOCK */
    sys3(SYS_write, p[1], "12345", 5);
    int avail = 0;
    show("FIONREAD", sys3(16, p[0], 0x541b, &avail));
    show("bytes available", avail);
    struct { int fd; short ev, rev; } pfd[3] = {{p[0], 1, 0}, {p[1], 4, 0}, {77, 1, 0}};
    show("poll", sys3(7, pfd, 3, 0));
    show("revents", pfd[0].rev * 100 + pfd[1].rev * 10 + pfd[2].rev);
    sys3(SYS_read, p[0], buf, 5);
    show("nonblocking empty read", sys3(SYS_read, p[0], buf, 5));

    /* futex on a private word: WAIT on a changed value, WAKE with no waiters */
    static int word = 5;
    show("futex wait wrong value", sys4(202, &word, 128, 4, 0));
    show("futex wake", sys4(202, &word, 129, 1, 0));

    /* a pending blocked signal taken synchronously, and another delivered by sigsuspend */
    u64 set = 1UL << 9; /* SIGUSR1 */
    sigaction_k(10, on_usr1, 0);
    sys4(SYS_rt_sigprocmask, 0, &set, 0, 8);
    long pid = sys3(SYS_getpid, 0, 0, 0);
    sys3(SYS_kill, pid, 10, 0);
    struct ksiginfo si;
    show("sigtimedwait", sys4(128, &set, &si, 0, 8));
    show("siginfo signo", si.signo);
    show("handler not run", usr1);
    struct { long s, ns; } zero = {0, 0};
    show("sigtimedwait nothing", sys4(128, &set, &si, &zero, 8));
    sys3(SYS_kill, pid, 10, 0);
    u64 none = 0;
    show("sigsuspend", sys3(130, &none, 8, 0));
    show("handler ran once", usr1);
    u64 now;
    sys4(SYS_rt_sigprocmask, 0, 0, &now, 8);
    show("mask restored", now == set);
    return 0;
}
