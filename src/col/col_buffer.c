/*
 * col_buffer.c - reference-counted, 64-byte aligned buffers charged to a
 * memory budget, plus the bitmap helpers every column operation needs.
 *
 * Data is over-allocated through pt_malloc and aligned by hand; the raw
 * pointer lives in a private wrapper around the public struct. Capacities are
 * rounded up to 64 bytes (never 0), so `data` is never NULL and SIMD loops
 * may read a whole cache line past the last value.
 */
#include <string.h>

#include "col/col_internal.h"

#define PT_ALIGN 64

typedef struct buffer_impl {
    pt_buffer pub; /* first, so a pt_buffer * is a buffer_impl * */
    void *raw;     /* what pt_malloc returned; NULL for foreign memory */
} buffer_impl;

static int64_t round_capacity(int64_t capacity) {
    if (capacity < PT_ALIGN) return PT_ALIGN;
    return (capacity + PT_ALIGN - 1) & ~(int64_t)(PT_ALIGN - 1);
}

/* Allocates `capacity` zeroed bytes aligned to 64; returns the raw block. */
static void *alloc_aligned(int64_t capacity, uint8_t **aligned) {
    void *raw = pt_malloc((size_t)capacity + PT_ALIGN - 1);
    if (!raw) return NULL;
    uintptr_t p = ((uintptr_t)raw + PT_ALIGN - 1) & ~(uintptr_t)(PT_ALIGN - 1);
    *aligned = (uint8_t *)p;
    memset(*aligned, 0, (size_t)capacity);
    return raw;
}

pt_status pt_buffer_new(pt_mem *mem, int64_t capacity, pt_buffer **out, pt_error *err) {
    *out = NULL;
    if (capacity < 0)
        return pt_error_set(err, PT_EINVAL, "pt_buffer_new: capacity %lld is negative",
                            (long long)capacity);
    int64_t cap = round_capacity(capacity);
    PT_RETURN_NOT_OK(pt_mem_reserve(mem, cap, "column buffer", err));
    buffer_impl *b = pt_malloc(sizeof *b);
    uint8_t *data = NULL;
    void *raw = b ? alloc_aligned(cap, &data) : NULL;
    if (!raw) {
        pt_free(b);
        pt_mem_release(mem, cap);
        return pt_error_set(err, PT_ENOMEM, "out of memory allocating a column buffer of %lld bytes",
                            (long long)cap);
    }
    memset(b, 0, sizeof *b);
    b->raw = raw;
    b->pub.data = data;
    b->pub.size = 0;
    b->pub.capacity = cap;
    b->pub.mem = mem;
    b->pub.refcount = 1;
    *out = &b->pub;
    return PT_OK;
}

pt_status pt__buffer_wrap(const void *data, int64_t size, void (*release_fn)(void *), void *ud,
                          pt_buffer **out, pt_error *err) {
    *out = NULL;
    buffer_impl *b = pt_malloc(sizeof *b);
    if (!b) return pt_error_set(err, PT_ENOMEM, "out of memory wrapping an imported buffer");
    memset(b, 0, sizeof *b);
    b->pub.data = (uint8_t *)(uintptr_t)data;
    b->pub.size = size;
    b->pub.capacity = size;
    b->pub.refcount = 1;
    b->pub.release_fn = release_fn;
    b->pub.release_ud = ud;
    *out = &b->pub;
    return PT_OK;
}

pt_status pt_buffer_reserve(pt_buffer *pb, int64_t capacity, pt_error *err) {
    buffer_impl *b = (buffer_impl *)pb;
    if (capacity <= pb->capacity) return PT_OK;
    if (pb->release_fn || !b->raw)
        return pt_error_set(err, PT_EINVAL, "pt_buffer_reserve: buffer holds foreign memory");
    /* Geometric growth keeps appends amortised O(1). */
    int64_t cap = pb->capacity * 2;
    if (cap < capacity) cap = capacity;
    cap = round_capacity(cap);
    PT_RETURN_NOT_OK(pt_mem_reserve(pb->mem, cap - pb->capacity, "column buffer", err));
    uint8_t *data = NULL;
    void *raw = alloc_aligned(cap, &data);
    if (!raw) {
        pt_mem_release(pb->mem, cap - pb->capacity);
        return pt_error_set(err, PT_ENOMEM, "out of memory growing a column buffer to %lld bytes",
                            (long long)cap);
    }
    memcpy(data, pb->data, (size_t)pb->capacity);
    pt_free(b->raw);
    b->raw = raw;
    pb->data = data;
    pb->capacity = cap;
    return PT_OK;
}

void pt_buffer_shrink(pt_buffer *pb) {
    buffer_impl *b = (buffer_impl *)pb;
    if (!pb || pb->release_fn || !b->raw) return;
    int64_t cap = round_capacity(pb->size);
    if (cap >= pb->capacity) return;
    uint8_t *data = NULL;
    void *raw = alloc_aligned(cap, &data);
    if (!raw) return; /* best effort: keep the larger block */
    memcpy(data, pb->data, (size_t)pb->size);
    pt_free(b->raw);
    b->raw = raw;
    pt_mem_release(pb->mem, pb->capacity - cap);
    pb->data = data;
    pb->capacity = cap;
}

pt_buffer *pt_buffer_retain(pt_buffer *b) {
    if (b) pt__ref_inc(&b->refcount);
    return b;
}

void pt_buffer_release(pt_buffer *pb) {
    if (!pb || !pt__ref_dec(&pb->refcount)) return;
    buffer_impl *b = (buffer_impl *)pb;
    if (pb->release_fn) {
        pb->release_fn(pb->release_ud);
    } else {
        pt_free(b->raw);
        pt_mem_release(pb->mem, pb->capacity);
    }
    pt_free(b);
}

/* ------------------------------------------------------------------------ */
/* Bitmaps                                                                  */
/* ------------------------------------------------------------------------ */

int64_t pt__bits_count(const uint8_t *bits, int64_t start, int64_t n) {
    int64_t count = 0, i = start, end = start + n;
    while (i < end && (i & 7)) count += pt_bit_get(bits, i++);
    /* Whole bytes in the middle. */
    for (; i + 64 <= end; i += 64) {
        uint64_t w;
        memcpy(&w, bits + (i >> 3), 8);
        count += __builtin_popcountll(w);
    }
    for (; i + 8 <= end; i += 8) count += __builtin_popcount(bits[i >> 3]);
    while (i < end) count += pt_bit_get(bits, i++);
    return count;
}

void pt__bits_copy(uint8_t *dst, int64_t d, const uint8_t *src, int64_t s, int64_t n) {
    if (n <= 0) return;
    if ((d & 7) == 0 && (s & 7) == 0) {
        memcpy(dst + (d >> 3), src + (s >> 3), (size_t)(n >> 3));
        for (int64_t i = n & ~(int64_t)7; i < n; i++) {
            if (pt_bit_get(src, s + i)) pt_bit_set(dst, d + i);
            else pt_bit_clear(dst, d + i);
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        if (pt_bit_get(src, s + i)) pt_bit_set(dst, d + i);
        else pt_bit_clear(dst, d + i);
    }
}

void pt__bits_set_range(uint8_t *bits, int64_t start, int64_t n) {
    int64_t i = start, end = start + n;
    while (i < end && (i & 7)) pt_bit_set(bits, i++);
    if (i + 8 <= end) {
        int64_t nb = (end - i) >> 3;
        memset(bits + (i >> 3), 0xff, (size_t)nb);
        i += nb << 3;
    }
    while (i < end) pt_bit_set(bits, i++);
}
