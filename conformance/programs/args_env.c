/* argv, the environment (getenv/setenv/unsetenv/putenv/clearenv order), and the auxiliary
 * vector through getauxval. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    printf("argc %d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d] = [%s]\n", i, argv[i]);
    printf("argv[argc] null %d\n", argv[argc] == NULL);
    for (char **e = environ; *e; e++) printf("env %s\n", *e);
    printf("getenv LC_ALL %s, missing %s\n", getenv("LC_ALL"), getenv("NOPE") ? "set" : "(null)");
    setenv("NEWVAR", "one", 0);
    setenv("NEWVAR", "two", 0);
    printf("setenv no-overwrite %s\n", getenv("NEWVAR"));
    setenv("NEWVAR", "three", 1);
    printf("setenv overwrite %s\n", getenv("NEWVAR"));
    unsetenv("NEWVAR");
    printf("unset %s\n", getenv("NEWVAR") ? "still" : "gone");
    printf("AT_PAGESZ %lu\n", getauxval(AT_PAGESZ));
    printf("sysconf pagesize %ld\n", sysconf(_SC_PAGESIZE));
    printf("AT_UID matches getuid %d\n", getauxval(AT_UID) == getuid());
    printf("AT_RANDOM set %d\n", getauxval(AT_RANDOM) != 0);
    printf("AT_EXECFN is argv[0] %d\n", strcmp((char *)getauxval(AT_EXECFN), argv[0]) == 0);
    printf("AT_PHDR set %d AT_ENTRY set %d\n", getauxval(AT_PHDR) != 0, getauxval(AT_ENTRY) != 0);
    return argc;
}
