/*
 * crc32c.c - CRC-32C (Castagnoli), the checksum of the native file format.
 *
 * Two implementations with identical results: the SSE4.2 crc32 instruction
 * (three interleaved streams of 8 bytes per instruction, picked at run time
 * so that one binary runs on every x86-64), and a portable slice-by-8 table
 * walk. The tables are built
 * once on first use; building them twice from two threads is harmless
 * because both write the same values, and the ready flag is published with
 * release/acquire ordering.
 */
#include <string.h>

#include "io/io_native.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PT_CRC_HAVE_SSE42 1
#include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t g_table[8][256];
static int g_table_ready;

static void build_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
        g_table[0][i] = c;
    }
    /* table[k][i]: the CRC of byte i followed by k zero bytes, which lets the
     * loop fold 8 input bytes with 8 independent lookups. */
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = g_table[0][i];
        for (int k = 1; k < 8; k++) {
            c = g_table[0][c & 0xff] ^ (c >> 8);
            g_table[k][i] = c;
        }
    }
    __atomic_store_n(&g_table_ready, 1, __ATOMIC_RELEASE);
}

/* Slice-by-8 on the raw (not inverted) register. */
static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n) {
    if (!__atomic_load_n(&g_table_ready, __ATOMIC_ACQUIRE)) build_tables();
    while (n && ((uintptr_t)p & 7)) {
        c = g_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        n--;
    }
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= c;
        c = g_table[7][lo & 0xff] ^ g_table[6][(lo >> 8) & 0xff] ^ g_table[5][(lo >> 16) & 0xff] ^
            g_table[4][lo >> 24] ^ g_table[3][hi & 0xff] ^ g_table[2][(hi >> 8) & 0xff] ^
            g_table[1][(hi >> 16) & 0xff] ^ g_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = g_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#ifdef PT_CRC_HAVE_SSE42
/* Bytes per stream in the three-stream loop. */
#define HW_BLOCK 4096

/* a * b modulo the polynomial, in the reflected bit order (bit 31 is x^0). */
static uint32_t gf2_mul(uint32_t a, uint32_t b) {
    uint32_t p = 0;
    for (uint32_t m = 1u << 31; m; m >>= 1) {
        if (a & m) p ^= b;
        b = (b & 1) ? (b >> 1) ^ CRC32C_POLY : b >> 1;
    }
    return p;
}

/* x^(8 * HW_BLOCK) mod P: multiplying a CRC register by it has the effect of
 * feeding it HW_BLOCK zero bytes. */
static uint32_t g_shift_block;

static uint32_t shift_block(void) {
    uint32_t s = __atomic_load_n(&g_shift_block, __ATOMIC_RELAXED);
    if (s == 0) {
        s = 1u << 31; /* x^0 */
        for (int i = 0; i < 8 * HW_BLOCK; i++)
            s = (s & 1) ? (s >> 1) ^ CRC32C_POLY : s >> 1;
        __atomic_store_n(&g_shift_block, s, __ATOMIC_RELAXED);
    }
    return s;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t n) {
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8(c, *p++);
        n--;
    }
    /* The crc32 instruction has a latency of 3 cycles and a throughput of 1,
     * so three independent streams over adjacent blocks run about three
     * times faster; the CRC is linear, so the streams' registers combine
     * as reg(A B) = reg(A) * x^(8|B|) ^ reg0(B). */
    if (n >= 3 * HW_BLOCK) {
        const uint32_t k = shift_block();
        while (n >= 3 * HW_BLOCK) {
            uint64_t a = c, b = 0, d = 0;
            for (size_t i = 0; i < HW_BLOCK; i += 8) {
                uint64_t va, vb, vd;
                memcpy(&va, p + i, 8);
                memcpy(&vb, p + HW_BLOCK + i, 8);
                memcpy(&vd, p + 2 * HW_BLOCK + i, 8);
                a = _mm_crc32_u64(a, va);
                b = _mm_crc32_u64(b, vb);
                d = _mm_crc32_u64(d, vd);
            }
            c = gf2_mul((uint32_t)a, k) ^ (uint32_t)b;
            c = gf2_mul(c, k) ^ (uint32_t)d;
            p += 3 * HW_BLOCK;
            n -= 3 * HW_BLOCK;
        }
    }
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}

/* 0 = unknown, 1 = software, 2 = SSE4.2 */
static int g_impl;

static int pick_impl(void) {
    int impl = __atomic_load_n(&g_impl, __ATOMIC_RELAXED);
    if (impl == 0) {
        __builtin_cpu_init();
        impl = __builtin_cpu_supports("sse4.2") ? 2 : 1;
        __atomic_store_n(&g_impl, impl, __ATOMIC_RELAXED);
    }
    return impl;
}
#endif

uint32_t pt_crc32c(uint32_t crc, const void *data, size_t len) {
    const uint8_t *p = data;
    uint32_t c = ~crc;
    if (len == 0 || !p) return crc;
#ifdef PT_CRC_HAVE_SSE42
    if (pick_impl() == 2) return ~crc_hw(c, p, len);
#endif
    return ~crc_sw(c, p, len);
}

/* The portable path, reachable on SSE4.2 machines too, so that tests can
 * check both implementations against each other. Internal. */
uint32_t pt__crc32c_sw(uint32_t crc, const void *data, size_t len);
uint32_t pt__crc32c_sw(uint32_t crc, const void *data, size_t len) {
    if (len == 0 || !data) return crc;
    return ~crc_sw(~crc, data, len);
}
