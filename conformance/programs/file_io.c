/* stdio and POSIX file I/O in the working directory: fopen/fprintf/fscanf/fgets/fread/fwrite,
 * fseek/ftell, buffered and unbuffered mixes, mkstemp, stat, rename, remove, fdopen, dup. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    FILE *f = fopen("data.txt", "w");
    for (int i = 0; i < 1000; i++) fprintf(f, "line %d value %d\n", i, i * i);
    fclose(f);
    struct stat st;
    stat("data.txt", &st);
    printf("size %lld\n", (long long)st.st_size);
    f = fopen("data.txt", "r");
    char line[128];
    int count = 0;
    long sum = 0;
    while (fgets(line, sizeof line, f)) {
        int a, b;
        if (sscanf(line, "line %d value %d", &a, &b) == 2) sum += b - a;
        count++;
    }
    printf("lines %d sum %ld\n", count, sum);
    fseek(f, 100, SEEK_SET);
    printf("ftell %ld\n", ftell(f));
    fgets(line, sizeof line, f);
    printf("at 100: %s", line);
    fseek(f, -20, SEEK_END);
    printf("ftell end-20 %ld\n", ftell(f));
    rewind(f);
    int x, y;
    fscanf(f, "line %d value %d", &x, &y);
    printf("fscanf %d %d\n", x, y);
    fclose(f);

    /* binary data through fwrite/fread */
    unsigned char blob[70000];
    for (unsigned i = 0; i < sizeof blob; i++) blob[i] = (unsigned char)(i * 31 + (i >> 8));
    f = fopen("blob.bin", "wb+");
    printf("fwrite %zu\n", fwrite(blob, 1, sizeof blob, f));
    fseek(f, 0, SEEK_SET);
    unsigned char back[70000];
    printf("fread %zu equal %d\n", fread(back, 1, sizeof back, f), memcmp(blob, back, sizeof blob) == 0);
    fclose(f);

    /* POSIX descriptors */
    int fd = open("blob.bin", O_RDONLY);
    printf("lseek end %ld\n", (long)lseek(fd, 0, SEEK_END));
    printf("pread %zd byte %d\n", pread(fd, back, 10, 5000), back[0] == blob[5000]);
    int fd2 = dup(fd);
    FILE *g = fdopen(fd2, "r");
    fseek(g, 65536, SEEK_SET);
    printf("fgetc at 64K %d\n", fgetc(g) == blob[65536]);
    fclose(g);
    close(fd);

    char tmpl[] = "tmpXXXXXX";
    int t = mkstemp(tmpl);
    printf("mkstemp ok %d len %zu\n", t >= 0, strlen(tmpl));
    write(t, "temp", 4);
    close(t);
    printf("rename %d\n", rename(tmpl, "renamed.txt"));
    printf("access %d %d\n", access("renamed.txt", R_OK), access(tmpl, F_OK));
    printf("remove %d %d %d\n", remove("renamed.txt"), remove("data.txt"), remove("blob.bin"));
    printf("fopen missing %s\n", fopen("missing.txt", "r") ? "opened" : "NULL");
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("unbuffered ");
    write(1, "raw ", 4);
    printf("done\n");
    return 0;
}
