/*
 * col_internal.h - helpers shared by the files of the col layer (buffers,
 * bitmaps, builders). Not part of the public API.
 */
#ifndef PT_COL_INTERNAL_H
#define PT_COL_INTERNAL_H

#include "partita/col.h"

/* Atomic reference counting on the public int64 refcount fields. */
static inline void pt__ref_inc(int64_t *rc) { __atomic_fetch_add(rc, 1, __ATOMIC_RELAXED); }
/* Returns true when the last reference was dropped. */
static inline bool pt__ref_dec(int64_t *rc) {
    return __atomic_sub_fetch(rc, 1, __ATOMIC_ACQ_REL) == 0;
}

/* Wraps foreign memory (not owned, not charged to a budget) in a buffer;
 * release_fn(ud) runs when the last reference goes. On failure release_fn is
 * NOT called: the caller keeps ownership of the memory. */
pt_status pt__buffer_wrap(const void *data, int64_t size, void (*release_fn)(void *), void *ud,
                          pt_buffer **out, pt_error *err);

/* Number of set bits in bits [start, start + n). */
int64_t pt__bits_count(const uint8_t *bits, int64_t start, int64_t n);
/* Copies n bits from src (starting at bit s) to dst (starting at bit d). */
void pt__bits_copy(uint8_t *dst, int64_t d, const uint8_t *src, int64_t s, int64_t n);
/* Sets bits [start, start + n) to 1. */
void pt__bits_set_range(uint8_t *bits, int64_t start, int64_t n);

/* Budget the column's buffers are charged to (NULL = none). */
pt_mem *pt__column_mem(const pt_column *c);

/* Allocates an empty column struct (refcount 1, no buffers). */
pt_status pt__column_alloc(pt_type type, pt_column **out, pt_error *err);


/* Makes a new utf8 column from a dictionary column (or a copy of a utf8
 * column) with offset 0. */
pt_status pt__dict_decode(pt_mem *mem, const pt_column *c, pt_column **out, pt_error *err);

/* Formats a double with `digits` significant digits, or (digits <= 0) the
 * shortest text that reads back to the same value; is_f32 does the same for
 * a float. Returns buf. */
const char *pt__format_double(double v, int digits, bool is_f32, char *buf, size_t cap);

/* Joins consecutive slices of the same buffers back into one column without
 * copying (see col_take.c). Returns false when they are not such slices. */
bool pt__column_rejoin(pt_column *const *cols, int64_t n, pt_column **out);

#endif
