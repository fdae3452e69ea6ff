/* Directories: mkdir, opendir/readdir (sorted for output), scandir with alphasort, file types
 * from d_type and stat, nested removal, getcwd/chdir. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void) {
    mkdir("top", 0755);
    mkdir("top/sub", 0700);
    const char *files[] = {"top/b.txt", "top/a.txt", "top/sub/deep", "top/Zed", "top/.hidden"};
    for (unsigned i = 0; i < 5; i++) {
        FILE *f = fopen(files[i], "w");
        fprintf(f, "%u", i);
        fclose(f);
    }
    symlink("a.txt", "top/link");
    DIR *d = opendir("top");
    char *names[32];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 32) {
        char buf[300];
        snprintf(buf, sizeof buf, "%s type=%d", e->d_name, e->d_type);
        names[n++] = strdup(buf);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    for (int i = 0; i < n; i++) { printf("readdir %s\n", names[i]); free(names[i]); }
    struct dirent **list;
    int m = scandir("top", &list, NULL, alphasort);
    for (int i = 0; i < m; i++) { printf("scandir %s\n", list[i]->d_name); free(list[i]); }
    free(list);
    struct stat st;
    lstat("top/link", &st);
    printf("link is symlink %d\n", S_ISLNK(st.st_mode));
    stat("top/link", &st);
    printf("link target size %lld\n", (long long)st.st_size);
    char target[64] = {0};
    printf("readlink %zd %s\n", readlink("top/link", target, sizeof target - 1), target);
    stat("top/sub", &st);
    printf("sub mode %o\n", st.st_mode & 0777);
    char cwd[4096], cwd2[4096];
    getcwd(cwd, sizeof cwd);
    chdir("top/sub");
    getcwd(cwd2, sizeof cwd2);
    printf("cwd suffix %s\n", cwd2 + strlen(cwd));
    FILE *f = fopen("deep", "r");
    printf("relative open %d\n", f != NULL);
    if (f) fclose(f);
    chdir("../..");
    printf("rmdir non-empty %d\n", rmdir("top"));
    unlink("top/link");
    for (unsigned i = 0; i < 5; i++) unlink(files[i]);
    printf("rmdir %d %d\n", rmdir("top/sub"), rmdir("top"));
    printf("opendir missing %s\n", opendir("top") ? "opened" : "NULL");
    return 0;
}
