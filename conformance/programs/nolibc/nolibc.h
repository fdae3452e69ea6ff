/* A minimal freestanding runtime for test programs that must not depend on libc (and so on
 * instructions beyond the general-purpose set): raw x86-64 Linux system calls, _start, a few
 * string and printing helpers. Build with:
 *   gcc -O2 -static -nostdlib -ffreestanding -fno-builtin -mgeneral-regs-only
 *       -fno-stack-protector -fno-pie -no-pie prog.c
 */
#ifndef NOLIBC_H
#define NOLIBC_H

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef unsigned char u8;
typedef unsigned long size_t;

static inline long sys6(long n, long a, long b, long c, long d, long e, long f) {
    register long r10 asm("r10") = d;
    register long r8 asm("r8") = e;
    register long r9 asm("r9") = f;
    long ret;
    asm volatile("syscall"
                 : "=a"(ret)
                 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                 : "rcx", "r11", "memory");
    return ret;
}
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

enum {
    SYS_read = 0, SYS_write = 1, SYS_close = 3, SYS_fstat = 5, SYS_lseek = 8, SYS_mmap = 9,
    SYS_mprotect = 10, SYS_munmap = 11, SYS_brk = 12, SYS_rt_sigaction = 13,
    SYS_rt_sigprocmask = 14, SYS_pipe = 22, SYS_mremap = 25, SYS_dup = 32, SYS_dup2 = 33,
    SYS_getpid = 39, SYS_exit = 60, SYS_kill = 62, SYS_uname = 63, SYS_fcntl = 72,
    SYS_ftruncate = 77, SYS_getcwd = 79, SYS_chdir = 80, SYS_rename = 82, SYS_mkdir = 83,
    SYS_rmdir = 84, SYS_unlink = 87, SYS_readlink = 89, SYS_umask = 95, SYS_rt_sigpending = 127,
    SYS_sigaltstack = 131, SYS_getdents64 = 217, SYS_clock_gettime = 228, SYS_exit_group = 231,
    SYS_openat = 257, SYS_newfstatat = 262, SYS_pipe2 = 293, SYS_getrandom = 318,
};

static size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}
void *memset(void *d, int c, size_t n) {
    volatile u8 *p = d;
    while (n--) *p++ = (u8)c;
    return d;
}
void *memcpy(void *d, const void *s, size_t n) {
    volatile u8 *p = d;
    const u8 *q = s;
    while (n--) *p++ = *q++;
    return d;
}
static int streq(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

static void put(const char *s) { sys3(SYS_write, 1, s, strlen(s)); }
static void put_u(u64 v) {
    char b[24];
    int i = 23;
    b[i] = 0;
    do b[--i] = '0' + v % 10; while (v /= 10);
    put(b + i);
}
static void put_i(i64 v) {
    if (v < 0) { put("-"); put_u((u64)-v); } else put_u((u64)v);
}
static void put_x(u64 v) {
    char b[20];
    int i = 19;
    b[i] = 0;
    do b[--i] = "0123456789abcdef"[v & 15]; while (v >>= 4);
    put("0x");
    put(b + i);
}
/* "name=value\n" */
static void show(const char *name, i64 v) { put(name); put("="); put_i(v); put("\n"); }

static void exit(int code) {
    sys3(SYS_exit_group, code, 0, 0);
    for (;;) {}
}

int main(int argc, char **argv, char **envp);

void __attribute__((used)) start_c(long *sp) {
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    exit(main(argc, argv, argv + argc + 1));
}
asm(".globl _start\n_start:\n xor %ebp, %ebp\n mov %rsp, %rdi\n and $-16, %rsp\n call start_c\n hlt\n");

/* Signals: the kernel's struct sigaction and a restorer that calls rt_sigreturn. */
struct ksigaction {
    void *handler;
    u64 flags;
    void (*restorer)(void);
    u64 mask;
};
void restore_rt(void);
asm(".globl restore_rt\nrestore_rt:\n mov $15, %eax\n syscall\n hlt\n");
#define SA_SIGINFO 4
#define SA_RESTORER 0x04000000
#define SA_NODEFER 0x40000000
#define SA_RESETHAND 0x80000000UL
#define SA_ONSTACK 0x08000000

static long sigaction_k(int sig, void *handler, u64 flags) {
    struct ksigaction a = {handler, flags | SA_RESTORER, restore_rt, 0};
    return sys4(SYS_rt_sigaction, sig, &a, 0, 8);
}

/* glibc's gregs indices into uc_mcontext (ucontext + 40). */
enum { REG_R8 = 0, REG_RDI = 8, REG_RSI = 9, REG_RAX = 13, REG_RSP = 15, REG_RIP = 16,
       REG_EFL = 17, REG_ERR = 19, REG_TRAPNO = 20, REG_OLDMASK = 21, REG_CR2 = 22 };
static u64 *gregs(void *uc) { return (u64 *)((char *)uc + 40); }
struct ksiginfo {
    int signo, errno_, code, pad;
    u64 addr;
};

#endif
