/* Process-level calls: argv/envp/auxv, uname, ids, clocks, getrandom, limits, sysinfo,
 * affinity, prctl names, umask, terminal ioctls on a non-terminal, and errors. */
#include "nolibc.h"

#define AT_PAGESZ 6
#define AT_ENTRY 9
#define AT_UID 11
#define AT_RANDOM 25
#define AT_EXECFN 31
#define AT_PLATFORM 15

struct ts { i64 s, ns; };

int main(int argc, char **argv, char **envp) {
    show("argc", argc);
    for (int i = 0; i < argc; i++) { put("argv: ["); put(argv[i]); put("]\n"); }
    char **e = envp;
    for (; *e; e++) { put("env: "); put(*e); put("\n"); }
    u64 *aux = (u64 *)(e + 1);
    u64 pagesz = 0, uid_aux = 0, random = 0;
    char *execfn = 0, *platform = 0;
    for (; aux[0]; aux += 2) {
        if (aux[0] == AT_PAGESZ) pagesz = aux[1];
        if (aux[0] == AT_UID) uid_aux = aux[1];
        if (aux[0] == AT_RANDOM) random = aux[1];
        if (aux[0] == AT_EXECFN) execfn = (char *)aux[1];
        if (aux[0] == AT_PLATFORM) platform = (char *)aux[1];
    }
    show("AT_PAGESZ", pagesz);
    show("AT_RANDOM set", random != 0);
    show("AT_EXECFN is argv0", execfn && streq(execfn, argv[0]));
    put("AT_PLATFORM ");
    put(platform ? platform : "(none)");
    put("\n");

    char u[6 * 65];
    show("uname", sys3(SYS_uname, u, 0, 0));
    put("sysname ");
    put(u);
    put("\nmachine ");
    put(u + 4 * 65);
    put("\nrelease ");
    put(u + 2 * 65);
    put("\n");

    long uid = sys3(102, 0, 0, 0);
    show("uid matches AT_UID", (u64)uid == uid_aux);
    show("euid == uid", sys3(107, 0, 0, 0) == uid);
    show("gid == egid", sys3(104, 0, 0, 0) == sys3(108, 0, 0, 0));
    long pid = sys3(SYS_getpid, 0, 0, 0);
    show("gettid == pid", sys3(186, 0, 0, 0) == pid);
    show("ppid > 1", sys3(110, 0, 0, 0) > 1);
    show("set_tid_address", sys3(218, 0, 0, 0) == pid);

    struct ts a, b, r;
    show("clock mono", sys3(SYS_clock_gettime, 1, &a, 0));
    struct ts nap = {0, 2000000};
    show("nanosleep", sys3(35, &nap, 0, 0));
    sys3(SYS_clock_gettime, 1, &b, 0);
    i64 dt = (b.s - a.s) * 1000000000 + (b.ns - a.ns);
    show("slept at least 2ms", dt >= 2000000);
    sys3(SYS_clock_gettime, 0, &a, 0);
    show("realtime after 2020", a.s > 1577836800);
    long t = sys3(201, 0, 0, 0);
    // time() reads the kernel's coarse clock (updated once a tick), which can still show the
    // previous second just after CLOCK_REALTIME crossed into the next: allow one second behind.
    show("time() near realtime", t - a.s >= -1 && t - a.s < 5);
    show("bad clock", sys3(SYS_clock_gettime, 12345, &a, 0));
    show("clock_getres", sys3(229, 1, &r, 0));
    show("res positive", r.s == 0 && r.ns > 0);
    struct { i64 s, us; } tv;
    show("gettimeofday", sys3(96, &tv, 0, 0));
    show("usec in range", tv.us >= 0 && tv.us < 1000000);

    u8 rnd[64];
    show("getrandom", sys3(SYS_getrandom, rnd, 64, 0));
    int nonzero = 0;
    for (int i = 0; i < 64; i++) nonzero |= rnd[i];
    show("random not all zero", nonzero != 0);

    u64 lim[2];
    show("prlimit64 stack", sys4(302, 0, 3, 0, lim));
    show("getrlimit bad", sys3(97, 1000, lim, 0));
    u8 si[112];
    show("sysinfo", sys3(99, si, 0, 0));
    u64 mask[16];
    show("sched_getaffinity bytes > 0", sys3(204, 0, sizeof mask, mask) > 0);
    show("cpu 0 set", mask[0] & 1);
    char name[16];
    show("prctl get name", sys3(157, 16, name, 0));
    put("comm ");
    put(name);
    put("\n");
    sys3(157, 15, "renamed", 0);
    sys3(157, 16, name, 0);
    put("comm now ");
    put(name);
    put("\n");
    long old = sys3(SYS_umask, 077, 0, 0);
    show("umask round trip", sys3(SYS_umask, old, 0, 0) == 077);
    u8 ws[8];
    show("TIOCGWINSZ on /dev/null", sys3(16, 0, 0x5413, ws));
    show("read bad fd", sys3(SYS_read, 77, ws, 1));
    show("write bad pointer", sys3(SYS_write, 1, 16, 4));
    show("arch_prctl bad code", sys3(158, 0x9999, 0, 0));
    u64 fs;
    show("arch_prctl get fs", sys3(158, 0x1003, &fs, 0));
    return 42;
}
