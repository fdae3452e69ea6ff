/* Self-modifying code the way a JIT does it: write x86 code into an executable mapping, call it,
 * patch it, call again; then flip a page between writable and executable with mprotect. The
 * emulator must notice every change to code it has already decoded. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

typedef int (*fn)(int);

int main(void) {
    unsigned char *code = mmap(NULL, 8192, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* lea eax, [rdi + imm32]; ret */
    unsigned char add[] = {0x8d, 0x87, 0, 0, 0, 0, 0xc3};
    memcpy(code, add, sizeof add);
    long sum = 0;
    for (int32_t k = 0; k < 200; k++) {
        memcpy(code + 2, &k, 4); /* patch the immediate, then run the patched code */
        sum += ((fn)code)(1000);
    }
    printf("patched immediates: sum %ld\n", sum);
    /* rewrite the whole function: imul eax, edi, imm32; ret */
    unsigned char mul[] = {0x69, 0xc7, 7, 0, 0, 0, 0xc3};
    memcpy(code, mul, sizeof mul);
    printf("rewritten: %d\n", ((fn)code)(6));
    /* code that patches itself: mov byte [rip+1], 0x2a sets the immediate of the next mov */
    unsigned char selfmod[] = {0xc6, 0x05, 0x01, 0, 0, 0, 0x2a, /* mov byte [rip+1], 42 */
                               0xb8, 0, 0, 0, 0,              /* mov eax, imm32 (patched) */
                               0xc3};
    memcpy(code + 4096, selfmod, sizeof selfmod);
    printf("self-patched: %d\n", ((fn)(code + 4096))(0));
    /* W^X: generate while writable, run after mprotect to read+exec */
    unsigned char *wx = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int round = 0; round < 3; round++) {
        mprotect(wx, 4096, PROT_READ | PROT_WRITE);
        unsigned char ret_k[] = {0xb8, (unsigned char)(round * 11), 0, 0, 0, 0xc3};
        memcpy(wx, ret_k, sizeof ret_k);
        mprotect(wx, 4096, PROT_READ | PROT_EXEC);
        printf("W^X round %d: %d\n", round, ((fn)wx)(0));
    }
    return 0;
}
