/*
 * ml_persist.h - what the ML files that write files (model files,
 * checkpoints) share: a growable little-endian byte buffer, a bounds-checked
 * reader over one, and whole-file atomic write / read. Files are built in
 * memory and written in one go because models and optimiser states are small
 * next to the data, and a single buffer makes the CRC and the atomic rename
 * trivial to get right.
 */
#ifndef PT_ML_PERSIST_H
#define PT_ML_PERSIST_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "partita/base.h"

typedef struct pt__mlbuf {
    unsigned char *p;
    size_t len, cap;
    bool oom; /* an append failed; the buffer is then unusable */
} pt__mlbuf;

/* Appends raw bytes; on allocation failure sets b->oom and drops the rest. */
void pt__mlbuf_put(pt__mlbuf *b, const void *data, size_t n);
void pt__mlbuf_free(pt__mlbuf *b);

/* Fixed-width little-endian encodings, so files move between machines. */
static inline void pt__mlbuf_u32(pt__mlbuf *b, uint32_t v) {
    unsigned char t[4];
    for (int i = 0; i < 4; i++) t[i] = (unsigned char)(v >> (8 * i));
    pt__mlbuf_put(b, t, 4);
}
static inline void pt__mlbuf_u64(pt__mlbuf *b, uint64_t v) {
    unsigned char t[8];
    for (int i = 0; i < 8; i++) t[i] = (unsigned char)(v >> (8 * i));
    pt__mlbuf_put(b, t, 8);
}
static inline void pt__mlbuf_i64(pt__mlbuf *b, int64_t v) { pt__mlbuf_u64(b, (uint64_t)v); }
/* Doubles travel as their exact bit patterns: a reloaded model must predict
 * bitwise what the saved one did. */
static inline void pt__mlbuf_f64(pt__mlbuf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    pt__mlbuf_u64(b, u);
}
void pt__mlbuf_f64s(pt__mlbuf *b, const double *v, int64_t n);

typedef struct pt__mlreader {
    const unsigned char *p;
    size_t len, pos;
} pt__mlreader;

/* Each getter returns false (and leaves *out alone) past the end. */
static inline bool pt__mlread_u32(pt__mlreader *r, uint32_t *out) {
    if (r->len - r->pos < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)r->p[r->pos + (size_t)i] << (8 * i);
    r->pos += 4;
    *out = v;
    return true;
}
static inline bool pt__mlread_u64(pt__mlreader *r, uint64_t *out) {
    if (r->len - r->pos < 8) return false;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)r->p[r->pos + (size_t)i] << (8 * i);
    r->pos += 8;
    *out = v;
    return true;
}
static inline bool pt__mlread_i64(pt__mlreader *r, int64_t *out) {
    uint64_t u;
    if (!pt__mlread_u64(r, &u)) return false;
    *out = (int64_t)u;
    return true;
}
static inline bool pt__mlread_f64(pt__mlreader *r, double *out) {
    uint64_t u;
    if (!pt__mlread_u64(r, &u)) return false;
    memcpy(out, &u, 8);
    return true;
}
/* Reads n doubles into dst (caller storage); false when fewer remain. */
bool pt__mlread_f64s(pt__mlreader *r, double *dst, int64_t n);

/* Writes len bytes to `path` atomically: to `tmp_path`, fsync, rename, fsync
 * of the directory. On failure the temporary file is removed and `path` is
 * untouched. `what` names the kind of file in messages ("checkpoint"). */
pt_status pt__ml_write_atomic(const char *what, const char *path, const char *tmp_path,
                              const void *data, size_t len, pt_error *err);
/* Reads a whole file into a pt_malloc'ed buffer. PT_ENOENT when missing,
 * PT_EIO otherwise, both naming the path. */
pt_status pt__ml_read_file(const char *what, const char *path, unsigned char **data,
                           size_t *len, pt_error *err);

#endif
