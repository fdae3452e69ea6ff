/* Integer arithmetic and bit tricks over pseudo-random operands: every width, signed and
 * unsigned division, 128-bit products, rotates, population counts, leading/trailing zeros,
 * byte swaps, overflow-checked arithmetic, and a checksum over all of it. */
#include <stdint.h>
#include <stdio.h>

static uint64_t state = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}
static uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001b3ull; }

int main(void) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 20000; i++) {
        uint64_t a = next(), b = next() | 1;
        int64_t sa = (int64_t)a, sb = (int64_t)b;
        uint32_t a32 = (uint32_t)a, b32 = (uint32_t)b;
        int32_t s32 = (int32_t)a32, t32 = (int32_t)b32;
        uint16_t a16 = (uint16_t)a, b16 = (uint16_t)(b | 1);
        uint8_t a8 = (uint8_t)a, b8 = (uint8_t)(b | 1);
        h = mix(h, a + b);
        h = mix(h, a - b);
        h = mix(h, a * b);
        h = mix(h, a / b);
        h = mix(h, a % b);
        if (sb != -1) {
            h = mix(h, (uint64_t)(sa / sb));
            h = mix(h, (uint64_t)(sa % sb));
        }
        h = mix(h, a32 / b32 + a32 % b32);
        if (t32 != -1) h = mix(h, (uint32_t)(s32 / t32) ^ (uint32_t)(s32 % t32));
        h = mix(h, (uint16_t)(a16 / b16) + (uint8_t)(a8 % b8));
        h = mix(h, (uint64_t)(((unsigned __int128)a * b) >> 64));
        h = mix(h, (uint64_t)(((__int128)sa * sb) >> 64));
        h = mix(h, a << (b & 63) | a >> ((64 - (b & 63)) & 63));
        h = mix(h, (uint64_t)(sa >> (b & 63)));
        h = mix(h, (uint64_t)(s32 >> (b & 31)));
        h = mix(h, (uint64_t)__builtin_popcountll(a));
        h = mix(h, (uint64_t)__builtin_clzll(b));
        h = mix(h, (uint64_t)__builtin_ctzll(b));
        h = mix(h, __builtin_bswap64(a) ^ __builtin_bswap32(a32) ^ __builtin_bswap16(a16));
        h = mix(h, a / 10 + a / 7 + (uint64_t)(sa / 3) + a32 / 1000);
        int64_t r;
        h = mix(h, (uint64_t)__builtin_add_overflow(sa, sb, &r) + (uint64_t)r);
        h = mix(h, (uint64_t)__builtin_mul_overflow(sa, sb, &r) + (uint64_t)r);
        h = mix(h, (uint64_t)(a < b) + (uint64_t)(sa < sb) * 2 + (uint64_t)(a32 > b32) * 4);
        h = mix(h, a > b ? a : b);
    }
    printf("checksum %016llx\n", (unsigned long long)h);
    printf("min/max %lld %lld %llu\n", (long long)INT64_MIN, (long long)INT64_MAX, (unsigned long long)UINT64_MAX);
    printf("INT64_MIN / -2 = %lld, %% 3 = %lld\n", (long long)(INT64_MIN / -2), (long long)(INT64_MIN % 3));
    printf("-7/2=%d -7%%2=%d 7/-2=%d 7%%-2=%d\n", -7 / 2, -7 % 2, 7 / -2, 7 % -2);
    printf("popcount 0xf0f0 = %d, clz 1 = %d, ctz 0x80 = %d\n", __builtin_popcount(0xf0f0), __builtin_clz(1), __builtin_ctz(0x80));
    return 0;
}
