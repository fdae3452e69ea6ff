/* File system calls in the (empty) working directory: create, write, read back, seek, stat,
 * dup/fcntl, append, truncate, rename, unlink, directories and getdents64, pipes, private file
 * mappings, utimensat, readlink of /proc/self/exe, and the errors Linux gives. */
#include "nolibc.h"

#define AT_FDCWD -100
#define O_RDONLY 0
#define O_WRONLY 1
#define O_RDWR 2
#define O_CREAT 0100
#define O_EXCL 0200
#define O_TRUNC 01000
#define O_APPEND 02000
#define O_DIRECTORY 0200000
#define O_CLOEXEC 02000000

static long open_(const char *p, int flags, int mode) { return sys4(SYS_openat, AT_FDCWD, p, flags, mode); }

struct kstat {
    u64 dev, ino, nlink;
    u32 mode, uid, gid, pad0;
    u64 rdev;
    i64 size, blksize, blocks;
    u64 atime, atime_ns, mtime, mtime_ns, ctime, ctime_ns;
    i64 reserved[3];
};

static void sort_names(char names[][64], int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            char *a = names[j - 1], *b = names[j];
            int k = 0;
            while (a[k] && a[k] == b[k]) k++;
            if ((u8)a[k] <= (u8)b[k]) break;
            char t[64];
            memcpy(t, a, 64), memcpy(a, b, 64), memcpy(b, t, 64);
        }
}

int main(int argc, char **argv, char **envp) {
    (void)argc, (void)envp;
    char buf[4096];
    struct kstat st;
    long fd = open_("f.txt", O_CREAT | O_WRONLY | O_TRUNC, 0640);
    show("open new", fd);
    for (int i = 0; i < 100; i++) sys3(SYS_write, fd, "hello world\n", 12);
    show("close", sys3(SYS_close, fd, 0, 0));
    show("stat", sys4(SYS_newfstatat, AT_FDCWD, "f.txt", &st, 0));
    show("size", st.size);
    show("mode", st.mode & 07777);
    show("is regular", (st.mode & 0170000) == 0100000);
    show("open excl existing", open_("f.txt", O_CREAT | O_EXCL | O_WRONLY, 0600));

    fd = open_("f.txt", O_RDWR, 0);
    show("read", sys3(SYS_read, fd, buf, 20));
    buf[20] = 0;
    put(buf);
    put("|\n");
    show("lseek cur", sys3(SYS_lseek, fd, 0, 1));
    show("lseek end", sys3(SYS_lseek, fd, -6, 2));
    show("read tail", sys3(SYS_read, fd, buf, 100));
    show("read at eof", sys3(SYS_read, fd, buf, 100));
    show("pread", sys4(17, fd, buf, 5, 12));
    buf[5] = 0;
    put(buf);
    put("|\n");
    show("pwrite", sys4(18, fd, "HELLO", 5, 0));
    show("fstat", sys3(SYS_fstat, fd, &st, 0));
    show("fstat size", st.size);

    long d = sys3(SYS_dup, fd, 0, 0);
    show("dup shares offset", sys3(SYS_lseek, d, 0, 1) == sys3(SYS_lseek, fd, 0, 1));
    show("dup2", sys3(SYS_dup2, fd, 20, 0));
    show("fcntl getfd", sys3(SYS_fcntl, 20, 1, 0));
    show("fcntl setfd", sys3(SYS_fcntl, 20, 2, 1));
    show("fcntl getfd after", sys3(SYS_fcntl, 20, 1, 0));
    show("fcntl getfl accmode", sys3(SYS_fcntl, fd, 3, 0) & 3);
    show("fcntl dupfd >= 30", sys3(SYS_fcntl, fd, 0, 30));
    show("close bad", sys3(SYS_close, 999, 0, 0));
    show("ftruncate", sys3(SYS_ftruncate, fd, 5, 0));
    sys3(SYS_fstat, fd, &st, 0);
    show("size after truncate", st.size);
    show("ioctl TCGETS on file", sys3(16, fd, 0x5401, buf));
    sys3(SYS_close, fd, 0, 0);

    fd = open_("f.txt", O_WRONLY | O_APPEND, 0);
    sys3(SYS_write, fd, "+tail", 5);
    sys3(SYS_close, fd, 0, 0);
    fd = open_("f.txt", O_RDONLY, 0);
    long n = sys3(SYS_read, fd, buf, 100);
    buf[n] = 0;
    put("after append: ");
    put(buf);
    put("\n");
    show("write to read-only fd", sys3(SYS_write, fd, "x", 1));

    /* a private file mapping sees the file; writes to it stay private */
    char *m = (char *)sys6(SYS_mmap, 0, 4096, 3, 2, fd, 0);
    show("mmap file ok", (long)m > 0);
    m[10] = 0;
    put("mapped: ");
    put(m);
    put("\n");
    m[0] = 'J';
    sys4(17, fd, buf, 1, 0);
    show("file unchanged by private write", buf[0] == 'H');
    sys3(SYS_close, fd, 0, 0);

    show("rename", sys3(SYS_rename, "f.txt", "g.txt", 0));
    show("stat old name", sys4(SYS_newfstatat, AT_FDCWD, "f.txt", &st, 0));
    show("access g", sys3(21, "g.txt", 4, 0));
    show("access missing", sys3(21, "nope", 0, 0));

    /* times */
    struct { i64 s, ns; } ts[2] = {{1000000000, 0}, {1234567890, 500}};
    show("utimensat", sys4(280, AT_FDCWD, "g.txt", ts, 0));
    sys4(SYS_newfstatat, AT_FDCWD, "g.txt", &st, 0);
    show("mtime", st.mtime);
    show("mtime ns", st.mtime_ns);
    show("atime", st.atime);

    /* directories */
    show("mkdir", sys3(SYS_mkdir, "d", 0755, 0));
    show("mkdir again", sys3(SYS_mkdir, "d", 0755, 0));
    const char *names[] = {"d/zeta", "d/alpha", "d/mid.txt", "d/Beta"};
    for (int i = 0; i < 4; i++) sys3(SYS_close, open_(names[i], O_CREAT | O_WRONLY, 0600), 0, 0);
    long dfd = sys4(SYS_openat, AT_FDCWD, "d", O_RDONLY | O_DIRECTORY, 0);
    show("open dir", dfd >= 0);
    show("read dir", sys3(SYS_read, dfd, buf, 10));
    char list[16][64];
    int count = 0;
    long got;
    while ((got = sys3(SYS_getdents64, dfd, buf, 64)) > 0) {
        for (long off = 0; off < got;) {
            u8 *e = (u8 *)buf + off;
            unsigned short reclen = *(unsigned short *)(e + 16);
            if (count < 16) {
                int k = 0;
                for (; e[19 + k] && k < 63; k++) list[count][k] = (char)e[19 + k];
                list[count][k] = 0;
                count++;
            }
            off += reclen;
        }
    }
    show("getdents end", got);
    sort_names(list, count);
    for (int i = 0; i < count; i++) { put("  entry "); put(list[i]); put("\n"); }
    long sub = sys4(SYS_openat, dfd, "alpha", O_RDONLY, 0);
    show("openat relative to dir fd", sub >= 0);
    show("rmdir non-empty", sys3(SYS_rmdir, "d", 0, 0));
    show("unlink dir", sys3(SYS_unlink, "d", 0, 0));
    for (int i = 0; i < 4; i++) sys3(SYS_unlink, names[i], 0, 0);
    show("rmdir", sys3(SYS_rmdir, "d", 0, 0));
    show("open file as dir", sys4(SYS_openat, AT_FDCWD, "g.txt", O_RDONLY | O_DIRECTORY, 0));
    show("unlink", sys3(SYS_unlink, "g.txt", 0, 0));
    show("unlink missing", sys3(SYS_unlink, "g.txt", 0, 0));

    /* cwd */
    char cwd[512], cwd2[512];
    long len = sys3(SYS_getcwd, cwd, sizeof cwd, 0);
    show("getcwd len ok", len == (long)strlen(cwd) + 1);
    show("getcwd small buffer", sys3(SYS_getcwd, cwd, 2, 0));
    sys3(SYS_mkdir, "sub", 0700, 0);
    show("chdir", sys3(SYS_chdir, "sub", 0, 0));
    sys3(SYS_getcwd, cwd2, sizeof cwd2, 0);
    show("cwd grew by /sub", strlen(cwd2) == strlen(cwd) + 4 && streq(cwd2 + strlen(cwd), "/sub"));
    show("chdir ..", sys3(SYS_chdir, "..", 0, 0));
    show("rmdir sub", sys3(SYS_rmdir, "sub", 0, 0));
    show("chdir missing", sys3(SYS_chdir, "missing", 0, 0));

    /* pipes */
    int p[2];
    show("pipe", sys3(SYS_pipe, p, 0, 0));
    show("pipe write", sys3(SYS_write, p[1], "through the pipe", 16));
    n = sys3(SYS_read, p[0], buf, 100);
    buf[n] = 0;
    put(buf);
    put("\n");
    sys3(SYS_close, p[1], 0, 0);
    show("read after writer closed", sys3(SYS_read, p[0], buf, 100));
    show("lseek on pipe", sys3(SYS_lseek, p[0], 0, 0));
    sys3(SYS_close, p[0], 0, 0);

    /* /proc/self/exe names the program */
    n = sys3(SYS_readlink, "/proc/self/exe", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    show("readlink exe is argv0", streq(buf, argv[0]));
    return 0;
}
