/* share-probe FILE: extended attributes and locks on FILE, printed as lines whose text depends
 * only on what the file system did (errno names, values), so a run inside the guest over 9p and a
 * run on the host give the same lines. Built static by conformance/tests/share.rs.
 * share-probe fill FILE MIB: writes MIB MiB of xorshift64 bytes (the same on every run) to FILE in
 * 1 MiB writes; a C loop, so the guest's CPU spends its time on the 9p path, not on making data. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static const char *err(int r) {
    if (r >= 0) return "ok";
    switch (errno) {
    case EEXIST: return "EEXIST";
    case ENODATA: return "ENODATA";
    case EAGAIN: return "EAGAIN";
    case EACCES: return "EACCES";
    case ENOTSUP: return "ENOTSUP";
    default: return strerror(errno);
    }
}

/* Runs f in a child process (a different lock owner) and waits for it. */
static void in_child(void (*f)(const char *), const char *path) {
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        f(path);
        fflush(stdout);
        _exit(0);
    }
    waitpid(p, NULL, 0);
}

static void child_locks(const char *path) {
    int fd = open(path, O_RDWR);
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    int r = fcntl(fd, F_GETLK, &l);
    printf("child getlk %s type=%s start=%ld len=%ld owner=%s\n", err(r),
           l.l_type == F_WRLCK ? "wr" : l.l_type == F_UNLCK ? "un" : "rd", (long)l.l_start, (long)l.l_len,
           l.l_pid == getppid() ? "parent" : "other");
    struct flock a = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1};
    printf("child setlk [5,6) %s\n", err(fcntl(fd, F_SETLK, &a)));
    struct flock b = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 10};
    printf("child setlk [20,30) %s\n", err(fcntl(fd, F_SETLK, &b)));
    close(fd);
}

static void child_after_unlock(const char *path) {
    int fd = open(path, O_RDWR);
    struct flock a = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    printf("child setlk after unlock %s\n", err(fcntl(fd, F_SETLK, &a)));
    close(fd);
}

/* flock on its own file: the Linux 9p client turns flock into a whole-file POSIX lock owned by
 * the open file, so mixing it with fcntl locks on one file in one process would conflict there
 * (and not on a local file system). */
static void child_flock(const char *path) {
    int fd = open(path, O_RDWR);
    printf("child flock nb %s\n", err(flock(fd, LOCK_EX | LOCK_NB)));
    close(fd);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Writes mib MiB of a fixed pseudo-random sequence: not zeros, which a file system could store
 * as holes, and not a short repeating pattern, so a misplaced block changes the checksum. */
static int fill(const char *path, long mib) {
    static unsigned long long chunk[1 << 17];
    unsigned long long x = 0x9e3779b97f4a7c15ull;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return printf("fill open %s\n", err(fd)), 1;
    for (long m = 0; m < mib; m++) {
        for (size_t i = 0; i < sizeof chunk / sizeof *chunk; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk[i] = x;
        }
        for (size_t done = 0; done < sizeof chunk;) {
            ssize_t n = write(fd, (char *)chunk + done, sizeof chunk - done);
            if (n <= 0) return printf("fill write %s\n", err(-1)), 1;
            done += (size_t)n;
        }
    }
    return close(fd) != 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "fill") == 0) return fill(argv[2], atol(argv[3]));
    if (argc != 2) return 2;
    const char *f = argv[1];
    char buf[512];
    printf("setxattr colour %s\n", err(setxattr(f, "user.colour", "blue", 4, 0)));
    printf("setxattr size create %s\n", err(setxattr(f, "user.size", "12345", 5, XATTR_CREATE)));
    printf("setxattr colour create %s\n", err(setxattr(f, "user.colour", "red", 3, XATTR_CREATE)));
    printf("setxattr absent replace %s\n", err(setxattr(f, "user.absent", "x", 1, XATTR_REPLACE)));
    ssize_t n = getxattr(f, "user.colour", buf, sizeof buf);
    printf("getxattr colour %s %.*s\n", err(n), n > 0 ? (int)n : 0, buf);
    n = getxattr(f, "user.size", NULL, 0);
    printf("getxattr size query %s %zd\n", err(n), n);
    n = listxattr(f, buf, sizeof buf);
    char *names[32];
    int k = 0;
    for (char *p = buf; n > 0 && p < buf + n && k < 32; p += strlen(p) + 1)
        if (strncmp(p, "user.", 5) == 0) names[k++] = p;
    qsort(names, k, sizeof *names, by_name);
    printf("listxattr %s:", err(n));
    for (int i = 0; i < k; i++) printf(" %s", names[i]);
    printf("\n");
    printf("removexattr size %s\n", err(removexattr(f, "user.size")));
    printf("getxattr size after remove %s\n", err(getxattr(f, "user.size", buf, sizeof buf)));

    int fd = open(f, O_RDWR);
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    printf("setlk [0,10) %s\n", err(fcntl(fd, F_SETLK, &l)));
    in_child(child_locks, f);
    struct flock u = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    printf("unlock %s\n", err(fcntl(fd, F_SETLK, &u)));
    in_child(child_after_unlock, f);
    close(fd);

    char lockfile[4096];
    snprintf(lockfile, sizeof lockfile, "%s.flock", f);
    int lf = open(lockfile, O_RDWR | O_CREAT, 0644);
    printf("flock ex %s\n", err(flock(lf, LOCK_EX)));
    in_child(child_flock, lockfile);
    printf("flock un %s\n", err(flock(lf, LOCK_UN)));
    in_child(child_flock, lockfile);
    close(lf);
    return 0;
}
