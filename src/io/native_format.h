/*
 * native_format.h - constants and little-endian field helpers shared by the
 * native format's writer (native_write.c, which documents the layout) and
 * reader (native_read.c). Internal.
 */
#ifndef PT_NATIVE_FORMAT_H
#define PT_NATIVE_FORMAT_H

#include <string.h>

#include "io/io_native.h"

#define PTN_MAGIC     "PTNATIVE"
#define PTN_MAGIC_LEN 8
#define PTN_VERSION   1u

#define PTN_HEADER_SIZE   16          /* magic, u16 version, u16 flags, u32 crc */
#define PTN_TAIL_SIZE     24          /* u64 footer_len, u32 footer_crc, u32 version, magic */
#define PTN_BATCH_MAGIC   0x54425450u /* "PTBT" read as a little-endian u32 */
#define PTN_BATCH_FIXED   16          /* u32 magic, u32 ncols, u64 nrows */
#define PTN_DIR_ENTRY     24          /* u64 offset, u64 length, u32 crc, u32 reserved */
#define PTN_BATCH_TRAILER 8           /* u32 reserved, u32 crc of everything before */
#define PTN_CHUNK_FIXED   32          /* type, nbufs, flags, reserved, length, nulls, dict_len */
#define PTN_BUF_DESC      24          /* codec, kind, reserved, u64 raw_len, u64 stored_len */
#define PTN_MAX_BUFS      4

/* Buffer slots, in file order; a column stores slots 0..nbufs-1. */
enum {
    PTN_SLOT_VALIDITY = 0, /* bitmap, 0 bytes when the chunk has no nulls */
    PTN_SLOT_VALUES = 1,   /* bool bits, fixed-width values, utf8 offsets,
                              dict indices */
    PTN_SLOT_DATA = 2,     /* utf8 bytes, or the dictionary's offsets */
    PTN_SLOT_DICT_BYTES = 3
};

enum { PTN_CODEC_RAW = 0, PTN_CODEC_ZSTD = 1 };

/* Buffers stored for a column of type t. */
static inline int ptn_nbufs(pt_type t) {
    switch (t) {
    case PT_TYPE_NULL: return 1;
    case PT_TYPE_UTF8: return 3;
    case PT_TYPE_DICT: return 4;
    default: return 2;
    }
}

/* The format is defined little-endian; data buffers are stored as they lie
 * in memory, so big-endian hosts are refused rather than byte-swapped. */
static inline int ptn_host_little_endian(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static inline void ptn_put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void ptn_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void ptn_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t ptn_get_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t ptn_get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline uint64_t ptn_get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Portable CRC path, exposed for the tests (crc32c.c). */
uint32_t pt__crc32c_sw(uint32_t crc, const void *data, size_t len);

#endif
