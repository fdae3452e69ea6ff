/* The in-guest half of disk-bench: sequential write (64 MiB in 1 MiB writes, then fsync, to a
 * new file on the ext4 data disk), sequential O_DIRECT read (a 256 MiB file in 1 MiB reads) and
 * 4 KiB O_DIRECT random reads of that file for 3 seconds. Times come from the guest's
 * CLOCK_MONOTONIC. Prints one line: DISKBENCH seq_write_MBps=... seq_read_MBps=... rand_read_iops=...
 * Built static (musl-gcc or gcc -static) by disk-bench and put in the initramfs. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    printf("DISKBENCH failed: %s\n", what);
    exit(1);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/mnt/disk";
    char path[256];
    const size_t MB = 1 << 20;
    void *buf;
    if (posix_memalign(&buf, 4096, MB)) die("posix_memalign");
    for (size_t i = 0; i < MB; i++) ((unsigned char *)buf)[i] = (unsigned char)(i * 2654435761u >> 13);

    snprintf(path, sizeof path, "%s/written", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) die("open written");
    double t0 = now();
    for (int i = 0; i < 64; i++) {
        ((unsigned char *)buf)[0] = (unsigned char)i;
        if (write(fd, buf, MB) != (ssize_t)MB) die("write");
    }
    if (fsync(fd)) die("fsync");
    double write_s = now() - t0;
    close(fd);

    snprintf(path, sizeof path, "%s/big", dir);
    fd = open(path, O_RDONLY | O_DIRECT);
    if (fd < 0) die("open big");
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < (off_t)(256 * MB)) die("big is smaller than 256 MiB");
    t0 = now();
    for (off_t off = 0; off < (off_t)(256 * MB); off += MB) {
        if (pread(fd, buf, MB, off) != (ssize_t)MB) die("pread");
    }
    double read_s = now() - t0;

    uint64_t x = 88172645463325252ull, n = 0;
    uint64_t blocks = (uint64_t)size / 4096;
    t0 = now();
    double t;
    while ((t = now() - t0) < 3.0) {
        for (int k = 0; k < 64; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            if (pread(fd, buf, 4096, (off_t)(x % blocks) * 4096) != 4096) die("pread 4k");
            n++;
        }
    }
    close(fd);
    printf("DISKBENCH seq_write_MBps=%.1f seq_read_MBps=%.1f rand_read_iops=%.0f\n", 64 / write_s, 256 / read_s, n / t);
    return 0;
}
