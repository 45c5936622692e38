/*
 * dist_exchange.c - tables as byte messages and the exchanges of
 * distributed plans (hash and range shuffles, gather, broadcast, allgather)
 * on top of pt_comm. The wire format is described in dist.h.
 *
 * Why a format of its own rather than the native file format: exchange
 * messages live for one collective, are produced and consumed by the same
 * binary, and must cost little more than a memcpy; the file format's zstd
 * frames, batch index and footer are the wrong trade for that.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "col/col_internal.h"
#include "frame/dist.h"
#include "partita/io.h"

#define SER_MAGIC "PTX1"
#define SER_HEADER 24
#define COL_HEADER 32
/* Upper bound on columns of a table on the wire (a sanity bound, so that a
 * corrupt count cannot ask for a huge allocation before it is checked). */
#define SER_MAX_COLS (1 << 20)

static inline int64_t pad8(int64_t n) { return (n + 7) & ~(int64_t)7; }

/* ------------------------------------------------------------------------ */
/* Sizes                                                                    */
/* ------------------------------------------------------------------------ */

/* The wire carries a bitmap for every column with nulls and for every null
 * column, so that each row costs at least one bit on the wire and a row
 * count can always be checked against the bytes that follow. */
static bool col_has_bitmap(const pt_column *c) {
    return c->type == PT_TYPE_NULL || c->null_count > 0;
}

static int64_t col_text_bytes(const pt_column *c) {
    if (c->length == 0) return 0;
    const int64_t *o = (const int64_t *)c->values->data + c->offset;
    return o[c->length] - o[0];
}

static int64_t take_col_size(const pt_column *c, int64_t n, int64_t nulls, int64_t tbytes);

/* Wire size of a whole column: the size of the piece holding all its rows. */
static int64_t col_wire_size(const pt_column *c) {
    return take_col_size(c, c->length, c->null_count,
                         c->type == PT_TYPE_UTF8 ? col_text_bytes(c) : 0);
}

int64_t pt__table_serialized_size(const pt_table *t) {
    if (!t || !t->schema) return -1;
    int64_t sz = SER_HEADER + 16;
    for (int i = 0; i < t->schema->nfields; i++)
        sz += 8 + pad8((int64_t)strlen(t->schema->fields[i].name));
    for (int i = 0; i < t->schema->nfields; i++) {
        int64_t c = col_wire_size(t->cols[i]);
        if (c < 0) return -1;
        sz += c;
    }
    return sz;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct wr {
    uint8_t *p;
} wr;

static inline void put_u32(wr *w, uint32_t v) {
    memcpy(w->p, &v, 4);
    w->p += 4;
}
static inline void put_i64(wr *w, int64_t v) {
    memcpy(w->p, &v, 8);
    w->p += 8;
}
/* Copies n bytes and zero-fills up to the next multiple of 8. */
static inline void put_bytes(wr *w, const void *src, int64_t n) {
    if (n > 0) memcpy(w->p, src, (size_t)n);
    int64_t p = pad8(n);
    if (p > n) memset(w->p + n, 0, (size_t)(p - n));
    w->p += p;
}

/* Writes bits [off, off + n) of src as a bitmap starting at bit 0, padded
 * with zero bits and bytes to a multiple of 8 bytes. */
static void put_bits(wr *w, const uint8_t *src, int64_t off, int64_t n) {
    int64_t nb = (n + 7) / 8, pb = pad8(nb);
    uint8_t *d = w->p;
    if (n > 0) {
        const uint8_t *s = src + (off >> 3);
        int sh = (int)(off & 7);
        if (sh == 0) {
            memcpy(d, s, (size_t)nb);
        } else {
            /* Source bytes end at bit off + n; never read past that byte. */
            int64_t last = (off + n - 1) >> 3, base = off >> 3;
            for (int64_t j = 0; j < nb; j++) {
                unsigned v = s[j] >> sh;
                if (base + j + 1 <= last) v |= (unsigned)s[j + 1] << (8 - sh);
                d[j] = (uint8_t)v;
            }
        }
        if (n & 7) d[nb - 1] &= (uint8_t)((1u << (n & 7)) - 1);
    }
    if (pb > nb) memset(d + nb, 0, (size_t)(pb - nb));
    w->p += pb;
}

static void put_col(wr *w, const pt_column *c) {
    int64_t n = c->length;
    bool bm = col_has_bitmap(c);
    uint8_t h[8] = {(uint8_t)c->type, (uint8_t)bm, 0, 0, 0, 0, 0, 0};
    memcpy(w->p, h, 8);
    w->p += 8;
    put_i64(w, n);
    put_i64(w, c->null_count);
    put_i64(w, c->type == PT_TYPE_UTF8 ? col_text_bytes(c) : 0);
    if (bm) {
        if (c->validity) {
            put_bits(w, c->validity->data, c->offset, n);
        } else {
            /* A null column without bitmap: every row is null. */
            int64_t pb = pad8((n + 7) / 8);
            memset(w->p, 0, (size_t)pb);
            w->p += pb;
        }
    }
    switch (c->type) {
    case PT_TYPE_NULL: break;
    case PT_TYPE_BOOL: put_bits(w, c->values->data, c->offset, n); break;
    case PT_TYPE_UTF8: {
        const int64_t *o = (const int64_t *)c->values->data + c->offset;
        int64_t base = n > 0 ? o[0] : 0;
        int64_t *d = (int64_t *)(void *)w->p;
        if (n == 0) {
            d[0] = 0;
        } else if (base == 0) {
            memcpy(d, o, (size_t)((n + 1) * 8));
        } else {
            for (int64_t i = 0; i <= n; i++) d[i] = o[i] - base;
        }
        w->p += (n + 1) * 8;
        put_bytes(w, c->bytes ? c->bytes->data + base : NULL, n > 0 ? o[n] - base : 0);
        break;
    }
    case PT_TYPE_DICT:
        put_bytes(w, (const int32_t *)c->values->data + c->offset, n * 4);
        put_col(w, c->dict);
        break;
    default: {
        int wd = pt_type_width(c->type);
        put_bytes(w, c->values->data + c->offset * wd, n * wd);
    }
    }
}

/* The row count and schema section that opens every payload. */
static void put_schema(wr *w, const pt_schema *sc, int64_t nrows) {
    int nf = sc->nfields;
    put_i64(w, nrows);
    put_u32(w, (uint32_t)nf);
    put_u32(w, 0);
    for (int i = 0; i < nf; i++) {
        const pt_field *f = &sc->fields[i];
        int64_t nl = (int64_t)strlen(f->name);
        put_u32(w, (uint32_t)nl);
        uint8_t tb[4] = {(uint8_t)f->type, 0, 0, 0};
        memcpy(w->p, tb, 4);
        w->p += 4;
        put_bytes(w, f->name, nl);
    }
}

/* The 24-byte header in front of a payload of `payload` bytes. */
static void put_header(uint8_t *dst, int64_t payload, uint32_t flags) {
    uint32_t crc = (flags & PT__SER_CRC) ? pt_crc32c(0, dst + SER_HEADER, (size_t)payload) : 0;
    memcpy(dst, SER_MAGIC, 4);
    memcpy(dst + 4, &flags, 4);
    memcpy(dst + 8, &crc, 4);
    memset(dst + 12, 0, 4);
    memcpy(dst + 16, &payload, 8);
}

pt_status pt__table_serialize_into(const pt_table *t, uint32_t flags, uint8_t *dst, int64_t cap,
                                   int64_t *len, pt_error *err) {
    if (len) *len = 0;
    int64_t sz = pt__table_serialized_size(t);
    if (sz < 0)
        return pt_error_set(err, PT_EINVAL, "pt__table_serialize_into: table is NULL or malformed");
    if (!dst || cap < sz)
        return pt_error_set(err, PT_EINVAL,
                            "pt__table_serialize_into: cap is %lld bytes, the table needs %lld",
                            (long long)cap, (long long)sz);
    if (flags & ~PT__SER_CRC)
        return pt_error_set(err, PT_EINVAL, "pt__table_serialize_into: unknown flags 0x%x",
                            (unsigned)flags);
    wr w = {dst + SER_HEADER};
    int nf = t->schema->nfields;
    put_schema(&w, t->schema, t->nrows);
    for (int i = 0; i < nf; i++) put_col(&w, t->cols[i]);
    int64_t payload = (int64_t)(w.p - dst) - SER_HEADER;
    if (payload + SER_HEADER != sz)
        return pt_error_set(err, PT_EINTERNAL,
                            "pt__table_serialize_into: wrote %lld bytes, sized %lld",
                            (long long)(payload + SER_HEADER), (long long)sz);
    put_header(dst, payload, flags);
    if (len) *len = sz;
    return PT_OK;
}

pt_status pt__table_serialize(const pt_table *t, pt_mem *mem, uint8_t **buf, int64_t *len,
                              pt_error *err) {
    *buf = NULL;
    *len = 0;
    int64_t sz = pt__table_serialized_size(t);
    if (sz < 0)
        return pt_error_set(err, PT_EINVAL, "pt__table_serialize: table is NULL or malformed");
    PT_RETURN_NOT_OK(pt_mem_reserve(mem, sz, "serialised table", err));
    uint8_t *b = pt_malloc((size_t)sz);
    if (!b) {
        pt_mem_release(mem, sz);
        return pt_error_set(err, PT_ENOMEM, "out of memory serialising a table (%lld bytes)",
                            (long long)sz);
    }
    pt_status st = pt__table_serialize_into(t, PT__SER_CRC, b, sz, len, err);
    if (st != PT_OK) {
        pt_free(b);
        pt_mem_release(mem, sz);
        *len = 0;
        return st;
    }
    *buf = b;
    return PT_OK;
}

void pt__table_buf_free(pt_mem *mem, uint8_t *buf, int64_t len) {
    if (!buf) return;
    pt_free(buf);
    pt_mem_release(mem, len);
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

/* A received block that column buffers point into (zero-copy receive):
 * freed, and its bytes returned to the budget, when the last buffer that
 * points into it and the receiver's own reference are gone. */
typedef struct recv_hold {
    int64_t refs; /* atomic */
    void *data;   /* pt_malloc'd by the comm layer */
    pt_mem *mem;
    int64_t bytes; /* charged to mem */
} recv_hold;

static void hold_release(void *ud) {
    recv_hold *h = ud;
    if (__atomic_sub_fetch(&h->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    pt_free(h->data);
    pt_mem_release(h->mem, h->bytes);
    pt_free(h);
}

typedef struct rd {
    const uint8_t *b; /* start of the message (offsets in messages count from here) */
    int64_t end;      /* bytes of the message */
    int64_t pos;
    pt_mem *mem;
    pt_error *err;
    recv_hold *hold; /* non-NULL: wrap the message's bytes instead of copying */
} rd;

static pt_status corrupt(rd *r, const char *fmt, ...) PT_PRINTF(2, 3);
static pt_status corrupt(rd *r, const char *fmt, ...) {
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return pt_error_set(r->err, PT_ECORRUPT, "exchange message: %s (at byte %lld of %lld)", m,
                        (long long)r->pos, (long long)r->end);
}

/* Points *p at the next n bytes (n then rounded up to 8) or fails. */
static pt_status take(rd *r, int64_t n, const char *what, const uint8_t **p) {
    *p = NULL;
    if (n < 0 || n > r->end - r->pos || pad8(n) > r->end - r->pos)
        return corrupt(r, "truncated: %s needs %lld bytes, %lld left", what, (long long)n,
                       (long long)(r->end - r->pos));
    *p = r->b + r->pos;
    r->pos += pad8(n);
    return PT_OK;
}

static int64_t get_i64(const uint8_t *p) {
    int64_t v;
    memcpy(&v, p, 8);
    return v;
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Rows whose per-row cost is `bits` bits fit in the rest of the message? */
static bool fits_rows(const rd *r, int64_t n, int64_t bits) {
    return n >= 0 && n <= (r->end - r->pos) / bits * 8 + 8;
}

/* Number of zero bits (nulls) among bits [0, n) of a bitmap at p. */
static int64_t count_zero_bits(const uint8_t *p, int64_t n) {
    return n - pt__bits_count(p, 0, n);
}

static pt_status new_buf(rd *r, int64_t bytes, const void *src, pt_buffer **out) {
    /* Sections are 8-byte aligned within a message; wrapping also needs the
     * message itself aligned so that int64/double reads are aligned. */
    if (r->hold && src && ((uintptr_t)src & 7) == 0) {
        PT_RETURN_NOT_OK(pt__buffer_wrap(src, bytes, hold_release, r->hold, out, r->err));
        __atomic_add_fetch(&r->hold->refs, 1, __ATOMIC_ACQ_REL);
        return PT_OK;
    }
    PT_RETURN_NOT_OK(pt_buffer_new(r->mem, bytes, out, r->err));
    if (bytes > 0 && src) memcpy((*out)->data, src, (size_t)bytes);
    (*out)->size = bytes;
    return PT_OK;
}

/* Reads one column of `want` type with `rows` rows (nested: the dictionary
 * of a dict column, whose row count comes from the wire). */
static pt_status get_col(rd *r, int depth, pt_type want, int64_t rows, pt_column **out) {
    *out = NULL;
    const uint8_t *h = NULL;
    PT_RETURN_NOT_OK(take(r, COL_HEADER, "column header", &h));
    pt_type type = (pt_type)h[0];
    int bm = h[1];
    int64_t n = get_i64(h + 8), nulls = get_i64(h + 16), nbytes = get_i64(h + 24);
    if (type != want)
        return corrupt(r, "column type %u where the schema says %s", (unsigned)h[0],
                       pt_type_name(want));
    if (bm > 1 || h[2] || h[3] || get_u32(h + 4))
        return corrupt(r, "bad column header flags");
    if (rows >= 0 && n != rows)
        return corrupt(r, "column has %lld rows, the table %lld", (long long)n, (long long)rows);
    /* Every row costs at least one bit on the wire (see col_has_bitmap). */
    if (!fits_rows(r, n, 1)) return corrupt(r, "row count %lld does not fit", (long long)n);
    if (nulls < 0 || nulls > n)
        return corrupt(r, "null count %lld of %lld rows", (long long)nulls, (long long)n);
    if ((type == PT_TYPE_NULL || nulls > 0) != (bm == 1))
        return corrupt(r, "bitmap flag %d with %lld nulls", bm, (long long)nulls);
    if (type == PT_TYPE_NULL && nulls != n)
        return corrupt(r, "null column with %lld nulls of %lld rows", (long long)nulls,
                       (long long)n);
    if (type != PT_TYPE_UTF8 && nbytes != 0) return corrupt(r, "text size on a %s column",
                                                            pt_type_name(type));
    int64_t vb = (n + 7) / 8;
    const uint8_t *valid = NULL;
    if (bm) {
        PT_RETURN_NOT_OK(take(r, vb, "validity bitmap", &valid));
        int64_t z = count_zero_bits(valid, n);
        if (z != nulls)
            return corrupt(r, "bitmap has %lld nulls, header says %lld", (long long)z,
                           (long long)nulls);
    }
    pt_column *c = NULL;
    pt_status st = PT_OK;
    switch (type) {
    case PT_TYPE_NULL:
        st = pt__column_alloc(type, &c, r->err);
        break;
    case PT_TYPE_BOOL: {
        const uint8_t *v;
        PT_RETURN_NOT_OK(take(r, vb, "bool values", &v));
        st = pt__column_alloc(type, &c, r->err);
        if (st == PT_OK) st = new_buf(r, vb, v, &c->values);
        break;
    }
    case PT_TYPE_INT32:
    case PT_TYPE_INT64:
    case PT_TYPE_FLOAT32:
    case PT_TYPE_FLOAT64: {
        int w = pt_type_width(type);
        if (!fits_rows(r, n, 8 * w)) return corrupt(r, "truncated: %lld values", (long long)n);
        const uint8_t *v;
        PT_RETURN_NOT_OK(take(r, n * w, "values", &v));
        st = pt__column_alloc(type, &c, r->err);
        if (st == PT_OK) st = new_buf(r, n * w, v, &c->values);
        break;
    }
    case PT_TYPE_UTF8: {
        if (!fits_rows(r, n, 64)) return corrupt(r, "truncated: %lld text offsets", (long long)n);
        const uint8_t *ob, *tb;
        PT_RETURN_NOT_OK(take(r, (n + 1) * 8, "text offsets", &ob));
        if (nbytes < 0) return corrupt(r, "text size %lld", (long long)nbytes);
        PT_RETURN_NOT_OK(take(r, nbytes, "text bytes", &tb));
        const int64_t *o = (const int64_t *)(const void *)ob;
        int64_t prev = 0;
        if (o[0] != 0) return corrupt(r, "first text offset is %lld", (long long)o[0]);
        for (int64_t i = 1; i <= n; i++) {
            if (o[i] < prev)
                return corrupt(r, "text offset %lld of row %lld goes backwards", (long long)o[i],
                               (long long)(i - 1));
            prev = o[i];
        }
        if (prev != nbytes)
            return corrupt(r, "text offsets end at %lld, text has %lld bytes", (long long)prev,
                           (long long)nbytes);
        st = pt__column_alloc(type, &c, r->err);
        if (st == PT_OK) st = new_buf(r, (n + 1) * 8, ob, &c->values);
        if (st == PT_OK) st = new_buf(r, nbytes, tb, &c->bytes);
        break;
    }
    case PT_TYPE_DICT: {
        if (depth > 0) return corrupt(r, "nested dictionary");
        if (!fits_rows(r, n, 32)) return corrupt(r, "truncated: %lld indices", (long long)n);
        const uint8_t *ib;
        PT_RETURN_NOT_OK(take(r, n * 4, "dictionary indices", &ib));
        pt_column *dict = NULL;
        PT_RETURN_NOT_OK(get_col(r, depth + 1, PT_TYPE_UTF8, -1, &dict));
        if (dict->null_count != 0) {
            pt_column_release(dict);
            return corrupt(r, "dictionary with nulls");
        }
        /* Indices of valid rows must point into the dictionary; a null
         * row's index is never read, but an out-of-range one is rewritten
         * to 0 (in a copy) so that nothing can trip over it. */
        int64_t dn = dict->length;
        bool fix = false;
        for (int64_t i = 0; i < n; i++) {
            int32_t k;
            memcpy(&k, ib + 4 * i, 4);
            if (k >= 0 && k < dn) continue;
            if (valid && !pt_bit_get(valid, i)) {
                fix = true;
                continue;
            }
            pt_column_release(dict);
            return corrupt(r, "dictionary index %d of row %lld outside [0, %lld)", (int)k,
                           (long long)i, (long long)dn);
        }
        st = pt__column_alloc(type, &c, r->err);
        if (st != PT_OK) {
            pt_column_release(dict);
            break;
        }
        c->dict = dict;
        recv_hold *hold = r->hold;
        if (fix) r->hold = NULL;
        st = new_buf(r, n * 4, ib, &c->values);
        r->hold = hold;
        if (st == PT_OK && fix) {
            int32_t *d = (int32_t *)(void *)c->values->data;
            for (int64_t i = 0; i < n; i++)
                if (d[i] < 0 || d[i] >= dn) d[i] = 0;
        }
        break;
    }
    default: return corrupt(r, "unknown column type %u", (unsigned)h[0]);
    }
    if (st == PT_OK && bm) st = new_buf(r, vb, valid, &c->validity);
    if (st != PT_OK) {
        pt_column_release(c);
        return st;
    }
    c->length = n;
    c->null_count = nulls;
    *out = c;
    return PT_OK;
}

int64_t pt__table_message_size(const uint8_t *buf, int64_t avail) {
    if (!buf || avail < SER_HEADER || memcmp(buf, SER_MAGIC, 4) != 0) return -1;
    int64_t payload = get_i64(buf + 16);
    if (payload < 0 || payload > INT64_MAX - SER_HEADER) return -1;
    return payload + SER_HEADER;
}

static pt_status deserialize(pt_mem *mem, const uint8_t *buf, int64_t len, recv_hold *hold,
                             pt_table **out, pt_error *err) {
    *out = NULL;
    rd r = {buf, len, 0, mem, err, hold};
    if (!buf || len < SER_HEADER)
        return corrupt(&r, "%lld bytes are too few for a table header", (long long)len);
    if (memcmp(buf, SER_MAGIC, 4) != 0) return corrupt(&r, "bad magic (not a table message)");
    uint32_t flags = get_u32(buf + 4), crc = get_u32(buf + 8);
    int64_t payload = get_i64(buf + 16);
    if ((flags & ~PT__SER_CRC) || get_u32(buf + 12) != 0 || (!(flags & PT__SER_CRC) && crc != 0))
        return corrupt(&r, "bad header flags 0x%x", (unsigned)flags);
    if (payload != len - SER_HEADER)
        return corrupt(&r, "header says %lld payload bytes, the message has %lld",
                       (long long)payload, (long long)(len - SER_HEADER));
    if (flags & PT__SER_CRC) {
        uint32_t got = pt_crc32c(0, buf + SER_HEADER, (size_t)payload);
        if (got != crc)
            return corrupt(&r, "checksum mismatch (stored 0x%08x, computed 0x%08x)", crc, got);
    }
    r.pos = SER_HEADER;
    const uint8_t *p = NULL;
    PT_RETURN_NOT_OK(take(&r, 16, "table header", &p));
    int64_t nrows = get_i64(p);
    uint32_t nf = get_u32(p + 8);
    if (nrows < 0) return corrupt(&r, "row count %lld", (long long)nrows);
    if (nf > SER_MAX_COLS || get_u32(p + 12) != 0 ||
        (int64_t)nf * (8 + COL_HEADER) > r.end - r.pos)
        return corrupt(&r, "column count %u does not fit", nf);
    char **names = pt_calloc(nf ? nf : 1, sizeof *names);
    pt_type *types = pt_calloc(nf ? nf : 1, sizeof *types);
    pt_column **cols = pt_calloc(nf ? nf : 1, sizeof *cols);
    pt_status st = PT_OK;
    if (!names || !types || !cols) st = pt_error_set(err, PT_ENOMEM, "out of memory reading a table");
    for (uint32_t i = 0; i < nf && st == PT_OK; i++) {
        const uint8_t *fh = NULL, *nm = NULL;
        st = take(&r, 8, "field", &fh);
        if (st != PT_OK) break;
        int64_t nl = get_u32(fh);
        if (fh[4] >= PT_TYPE_COUNT || fh[5] || fh[6] || fh[7]) {
            st = corrupt(&r, "field %u has type %u", i, (unsigned)fh[4]);
            break;
        }
        types[i] = (pt_type)fh[4];
        st = take(&r, nl, "field name", &nm);
        if (st != PT_OK) break;
        if (memchr(nm, 0, (size_t)nl)) {
            st = corrupt(&r, "field %u name holds a NUL byte", i);
            break;
        }
        names[i] = pt_strndup((const char *)nm, (size_t)nl);
        if (!names[i]) st = pt_error_set(err, PT_ENOMEM, "out of memory reading a table");
    }
    for (uint32_t i = 0; i < nf && st == PT_OK; i++) {
        st = get_col(&r, 0, types[i], nrows, &cols[i]);
        if (st != PT_OK) pt_error_prefix(err, "column '%s'", names[i]);
    }
    if (st == PT_OK && r.pos != r.end)
        st = corrupt(&r, "%lld bytes left over after the last column", (long long)(r.end - r.pos));
    pt_schema *schema = NULL;
    if (st == PT_OK) st = pt_schema_new((int)nf, (const char *const *)names, types, &schema, err);
    if (st == PT_OK) {
        st = pt_table_new(schema, cols, out, err); /* takes schema and columns */
        if (st == PT_OK) (*out)->nrows = nrows;
    } else {
        for (uint32_t i = 0; cols && i < nf; i++) pt_column_release(cols[i]);
    }
    for (uint32_t i = 0; names && i < nf; i++) pt_free(names[i]);
    pt_free(names);
    pt_free(types);
    pt_free(cols);
    return st;
}

pt_status pt__table_deserialize(pt_mem *mem, const uint8_t *buf, int64_t len, pt_table **out,
                                pt_error *err) {
    return deserialize(mem, buf, len, NULL, out, err);
}

/* ------------------------------------------------------------------------ */
/* Key hashing                                                              */
/* ------------------------------------------------------------------------ */

#define HASH_NULL 0x6e756c6c6b657921ULL /* any fixed value */
#define HASH_NAN 0x4e614e4e614e4e61ULL
#define SEED_TEXT 0x7465787474657874ULL

static inline uint64_t hash_int(int64_t v) { return pt_hash_u64((uint64_t)v ^ 0x9e3779b97f4a7c15ULL); }

static inline uint64_t hash_double(double d) {
    if (d != d) return HASH_NAN;
    /* Integral values in int64 range hash like the integer (also -0.0). */
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
        int64_t i = (int64_t)d;
        if ((double)i == d) return hash_int(i);
    }
    uint64_t b;
    memcpy(&b, &d, 8);
    return pt_hash_u64(b ^ 0x5bd1e9955bd1e995ULL);
}

static inline uint64_t hash_text(const void *s, int64_t len) {
    return pt_hash_bytes(s, (size_t)len, SEED_TEXT);
}

static inline uint64_t hash_combine(uint64_t h, uint64_t k) {
    return pt_hash_u64(h ^ (k + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

/* Hash of one value of c. */
static uint64_t value_hash(const pt_column *c, int64_t i) {
    if (c->type == PT_TYPE_NULL || !pt_column_is_valid(c, i)) return HASH_NULL;
    switch (c->type) {
    case PT_TYPE_BOOL: return hash_int(pt_column_bool(c, i));
    case PT_TYPE_INT32: return hash_int(pt_column_i32(c)[i]);
    case PT_TYPE_INT64: return hash_int(pt_column_i64(c)[i]);
    case PT_TYPE_FLOAT32: return hash_double(pt_column_f32(c)[i]);
    case PT_TYPE_FLOAT64: return hash_double(pt_column_f64(c)[i]);
    case PT_TYPE_UTF8:
    case PT_TYPE_DICT: {
        int64_t len;
        const char *s = pt_column_str(c, i, &len);
        return hash_text(s, len);
    }
    default: return HASH_NULL;
    }
}

uint64_t pt__dist_row_hash(const pt_table *t, int nkeys, const int *keys, int64_t row) {
    uint64_t h = 0;
    for (int k = 0; k < nkeys; k++) h = hash_combine(h, value_hash(t->cols[keys[k]], row));
    return h;
}

/* Hashes of every row of t into h (n = t->nrows), column at a time so the
 * type dispatch is per column, with dictionary entries hashed once. */
static pt_status hash_rows(const pt_table *t, int nkeys, const int *keys, uint64_t *h,
                           pt_error *err) {
    int64_t n = t->nrows;
    memset(h, 0, (size_t)n * sizeof *h);
    for (int k = 0; k < nkeys; k++) {
        const pt_column *c = t->cols[keys[k]];
        bool nulls = c->null_count > 0;
        switch (c->type) {
        case PT_TYPE_INT64: {
            const int64_t *v = pt_column_i64(c);
            for (int64_t i = 0; i < n; i++)
                h[i] = hash_combine(h[i], nulls && !pt_column_is_valid(c, i) ? HASH_NULL
                                                                             : hash_int(v[i]));
            break;
        }
        case PT_TYPE_INT32: {
            const int32_t *v = pt_column_i32(c);
            for (int64_t i = 0; i < n; i++)
                h[i] = hash_combine(h[i], nulls && !pt_column_is_valid(c, i) ? HASH_NULL
                                                                             : hash_int(v[i]));
            break;
        }
        case PT_TYPE_FLOAT64: {
            const double *v = pt_column_f64(c);
            for (int64_t i = 0; i < n; i++)
                h[i] = hash_combine(h[i], nulls && !pt_column_is_valid(c, i) ? HASH_NULL
                                                                             : hash_double(v[i]));
            break;
        }
        case PT_TYPE_DICT: {
            int64_t dn = c->dict->length;
            uint64_t *dh = pt_malloc((size_t)(dn > 0 ? dn : 1) * sizeof *dh);
            if (!dh) return pt_error_set(err, PT_ENOMEM, "out of memory hashing keys");
            for (int64_t j = 0; j < dn; j++) dh[j] = value_hash(c->dict, j);
            const int32_t *ix = (const int32_t *)c->values->data + c->offset;
            for (int64_t i = 0; i < n; i++)
                h[i] = hash_combine(h[i], nulls && !pt_column_is_valid(c, i) ? HASH_NULL
                                                                             : dh[ix[i]]);
            pt_free(dh);
            break;
        }
        default:
            for (int64_t i = 0; i < n; i++) h[i] = hash_combine(h[i], value_hash(c, i));
        }
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Exchange of routed rows                                                  */
/* ------------------------------------------------------------------------ */

static pt_mem *ctx_mem(pt_ctx *ctx) { return ctx ? pt_ctx_mem(ctx) : NULL; }

static bool schema_equal(const pt_schema *a, const pt_schema *b) {
    if (a->nfields != b->nfields) return false;
    for (int i = 0; i < a->nfields; i++)
        if (a->fields[i].type != b->fields[i].type ||
            strcmp(a->fields[i].name, b->fields[i].name) != 0)
            return false;
    return true;
}

static pt_status check_parts(const char *fn, pt_table *const *parts, int64_t nparts,
                             pt_error *err) {
    if (!parts || nparts < 1)
        return pt_error_set(err, PT_EINVAL, "%s: nparts is %lld; every rank passes at least one "
                            "part (0 rows is fine)", fn, (long long)nparts);
    for (int64_t p = 0; p < nparts; p++) {
        if (!parts[p]) return pt_error_set(err, PT_EINVAL, "%s: parts[%lld] is NULL", fn,
                                           (long long)p);
        if (!schema_equal(parts[p]->schema, parts[0]->schema))
            return pt_error_set(err, PT_EINVAL, "%s: parts[%lld] has another schema than parts[0]",
                                fn, (long long)p);
    }
    return PT_OK;
}

/* Deserialises every table in the blocks received (rank order, tables back
 * to back within a block) and concatenates them into *out; `like` gives
 * the schema every table must have and the empty result. Takes ownership
 * of `recv` (a pt_malloc block of the comm layer): the pieces point into it
 * rather than copying it, since they are copied once more by the
 * concatenation anyway; a result made of one piece keeps it alive. */
static pt_status unpack_received(pt_ctx *ctx, int size, void *recv_block,
                                 const int64_t *counts, const pt_table *like, const char *fn,
                                 pt_table **out, pt_error *err) {
    pt_mem *mem = ctx_mem(ctx);
    const uint8_t *recv = recv_block;
    int64_t ntab = 0, cap = 16, at = 0, total = 0;
    for (int r = 0; r < size; r++) total += counts[r];
    recv_hold *hold = pt_malloc(sizeof *hold);
    pt_table **tabs = pt_malloc((size_t)cap * sizeof *tabs);
    if (!tabs || !hold) {
        pt_free(tabs);
        pt_free(hold);
        pt_free(recv_block);
        return pt_error_set(err, PT_ENOMEM, "%s: out of memory", fn);
    }
    /* The block is already allocated: it is counted, not refused. */
    pt_mem_force(mem, total);
    *hold = (recv_hold){1, recv_block, mem, total};
    pt_status st = PT_OK;
    for (int r = 0; r < size && st == PT_OK; r++) {
        int64_t end = at + counts[r];
        while (at < end && st == PT_OK) {
            int64_t msz = pt__table_message_size(recv + at, end - at);
            if (msz < 0 || msz > end - at) {
                st = pt_error_set(err, PT_ECORRUPT,
                                  "%s: message from rank %d: bad table header at byte %lld of "
                                  "%lld", fn, r, (long long)(at - (end - counts[r])),
                                  (long long)counts[r]);
                break;
            }
            if (ntab == cap) {
                pt_table **nt = pt_realloc(tabs, (size_t)cap * 2 * sizeof *tabs);
                if (!nt) {
                    st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", fn);
                    break;
                }
                tabs = nt;
                cap *= 2;
            }
            pt_table *t = NULL;
            st = deserialize(mem, recv + at, msz, hold, &t, err);
            if (st != PT_OK) {
                pt_error_prefix(err, "%s: message from rank %d", fn, r);
                break;
            }
            tabs[ntab++] = t;
            if (!schema_equal(t->schema, like->schema)) {
                st = pt_error_set(err, PT_EINVAL,
                                  "%s: rank %d sent a table whose schema differs from this "
                                  "rank's", fn, r);
                break;
            }
            at += msz;
        }
        at = end;
    }
    if (st == PT_OK) {
        if (ntab == 0) {
            st = pt_table_slice(like, 0, 0, out, err);
        } else if (ntab == 1) {
            *out = tabs[0];
            ntab = 0;
        } else if (like->schema->nfields == 0) {
            int64_t rows = 0;
            for (int64_t i = 0; i < ntab; i++) rows += tabs[i]->nrows;
            st = pt_table_slice(like, 0, 0, out, err);
            if (st == PT_OK) (*out)->nrows = rows;
        } else if (ntab > 0x7fffffff) {
            st = pt_error_set(err, PT_ERANGE, "%s: too many pieces (%lld)", fn, (long long)ntab);
        } else {
            st = pt_table_concat(mem, tabs, (int)ntab, out, err);
        }
    }
    for (int64_t i = 0; i < ntab; i++) pt_table_free(tabs[i]);
    pt_free(tabs);
    hold_release(hold);
    return st;
}

/* Every rank learns whether any rank failed before a data exchange, so a
 * rank that could not prepare its part never leaves the others with a
 * silently incomplete result, and nobody waits for a peer that left. The
 * failing rank keeps its own message; the others name it. */
static pt_status agree(pt_comm *c, const char *fn, pt_status st, pt_error *err) {
    int64_t who = st != PT_OK ? pt_comm_rank(c) + 1 : 0;
    pt_error e;
    pt_status cs = pt_comm_allreduce(c, &who, 1, PT_DTYPE_INT64, PT_REDOP_MAX, &e);
    if (cs == PT_OK && who != 0) {
        /* The failing rank's code and words go to every rank. */
        struct {
            int64_t code;
            char msg[PT_ERROR_MSG_SIZE];
        } m;
        memset(&m, 0, sizeof m);
        int root = (int)who - 1;
        if (pt_comm_rank(c) == root) {
            m.code = st;
            snprintf(m.msg, sizeof m.msg, "%s", err && err->msg[0] ? err->msg : pt_status_str(st));
        }
        cs = pt_comm_bcast(c, &m, (int64_t)sizeof m, root, &e);
        if (st == PT_OK && cs == PT_OK)
            return pt_error_set(err, (pt_status)m.code, "%s: rank %d failed (%s), nothing exchanged",
                                fn, root, m.msg);
    }
    if (st != PT_OK) return st;
    if (cs != PT_OK) {
        if (err) *err = e;
        return cs;
    }
    return PT_OK;
}

/* ---- routing and packing in one pass -------------------------------------
 * Each piece (the rows of one part going to one rank) is written to the send
 * buffer straight from the part's columns through its row numbers, in the
 * wire format pt__table_serialize_into writes for the same rows, so no
 * intermediate table is gathered and copied again. */

static inline int bit_at(const uint8_t *b, int64_t k) { return (b[k >> 3] >> (k & 7)) & 1; }

/* A bitmap of bits src[off + idx[i]], i < n, padded to 8 bytes. */
static void put_bits_take(wr *w, const uint8_t *src, int64_t off, const int64_t *idx, int64_t n) {
    int64_t pb = pad8((n + 7) / 8);
    uint8_t *d = w->p;
    memset(d, 0, (size_t)pb);
    for (int64_t i = 0; i < n; i++)
        if (bit_at(src, off + idx[i])) d[i >> 3] |= (uint8_t)(1u << (i & 7));
    w->p += pb;
}

/* Null count and text bytes of rows idx[0, n) of c. */
static void take_stats(const pt_column *c, const int64_t *idx, int64_t n, int64_t *nulls,
                       int64_t *tbytes) {
    int64_t z = 0, b = 0;
    if (c->type == PT_TYPE_NULL) {
        z = n;
    } else if (c->null_count > 0 && c->validity) {
        const uint8_t *v = c->validity->data;
        for (int64_t i = 0; i < n; i++) z += !bit_at(v, c->offset + idx[i]);
    }
    if (c->type == PT_TYPE_UTF8) {
        const int64_t *o = (const int64_t *)c->values->data + c->offset;
        for (int64_t i = 0; i < n; i++) b += o[idx[i] + 1] - o[idx[i]];
    }
    *nulls = z;
    *tbytes = b;
}

static int64_t take_col_size(const pt_column *c, int64_t n, int64_t nulls, int64_t tbytes) {
    int64_t sz = COL_HEADER;
    if (c->type == PT_TYPE_NULL || nulls > 0) sz += pad8((n + 7) / 8);
    switch (c->type) {
    case PT_TYPE_NULL: break;
    case PT_TYPE_BOOL: sz += pad8((n + 7) / 8); break;
    case PT_TYPE_INT32:
    case PT_TYPE_FLOAT32: sz += pad8(n * 4); break;
    case PT_TYPE_INT64:
    case PT_TYPE_FLOAT64: sz += n * 8; break;
    case PT_TYPE_UTF8: sz += (n + 1) * 8 + pad8(tbytes); break;
    case PT_TYPE_DICT: {
        if (!c->dict) return -1;
        int64_t d = col_wire_size(c->dict);
        if (d < 0) return -1;
        sz += pad8(n * 4) + d;
        break;
    }
    default: return -1;
    }
    return sz;
}

static void put_col_take(wr *w, const pt_column *c, const int64_t *idx, int64_t n, int64_t nulls,
                         int64_t tbytes) {
    bool bm = c->type == PT_TYPE_NULL || nulls > 0;
    uint8_t h[8] = {(uint8_t)c->type, (uint8_t)bm, 0, 0, 0, 0, 0, 0};
    memcpy(w->p, h, 8);
    w->p += 8;
    put_i64(w, n);
    put_i64(w, nulls);
    put_i64(w, c->type == PT_TYPE_UTF8 ? tbytes : 0);
    if (bm) {
        if (c->validity) {
            put_bits_take(w, c->validity->data, c->offset, idx, n);
        } else {
            int64_t pb = pad8((n + 7) / 8);
            memset(w->p, 0, (size_t)pb);
            w->p += pb;
        }
    }
    switch (c->type) {
    case PT_TYPE_NULL: break;
    case PT_TYPE_BOOL: put_bits_take(w, c->values->data, c->offset, idx, n); break;
    case PT_TYPE_INT32:
    case PT_TYPE_FLOAT32:
    case PT_TYPE_DICT: {
        const uint32_t *v = (const uint32_t *)c->values->data + c->offset;
        uint32_t *d = (uint32_t *)(void *)w->p;
        for (int64_t i = 0; i < n; i++) d[i] = v[idx[i]];
        int64_t p = pad8(n * 4);
        if (p > n * 4) memset(w->p + n * 4, 0, (size_t)(p - n * 4));
        w->p += p;
        if (c->type == PT_TYPE_DICT) put_col(w, c->dict);
        break;
    }
    case PT_TYPE_INT64:
    case PT_TYPE_FLOAT64: {
        const uint64_t *v = (const uint64_t *)c->values->data + c->offset;
        uint64_t *d = (uint64_t *)(void *)w->p;
        for (int64_t i = 0; i < n; i++) d[i] = v[idx[i]];
        w->p += n * 8;
        break;
    }
    case PT_TYPE_UTF8: {
        const int64_t *o = (const int64_t *)c->values->data + c->offset;
        const uint8_t *txt = c->bytes ? c->bytes->data : NULL;
        int64_t *d = (int64_t *)(void *)w->p;
        uint8_t *tb = w->p + (n + 1) * 8;
        d[0] = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t a = o[idx[i]], len = o[idx[i] + 1] - a;
            if (len > 0) memcpy(tb + d[i], txt + a, (size_t)len);
            d[i + 1] = d[i] + len;
        }
        w->p = tb;
        int64_t p = pad8(tbytes);
        if (p > tbytes) memset(w->p + tbytes, 0, (size_t)(p - tbytes));
        w->p += p;
        break;
    }
    default: break;
    }
}

/* The piece of `t` made of rows idx[0, n): its wire size, with the null
 * counts and text sizes its columns will carry (in nulls/tbytes). */
static int64_t piece_size(const pt_table *t, const int64_t *idx, int64_t n, int64_t *nulls,
                          int64_t *tbytes) {
    int64_t sz = SER_HEADER + 16;
    int nf = t->schema->nfields;
    for (int i = 0; i < nf; i++) sz += 8 + pad8((int64_t)strlen(t->schema->fields[i].name));
    for (int i = 0; i < nf; i++) {
        take_stats(t->cols[i], idx, n, &nulls[i], &tbytes[i]);
        int64_t c = take_col_size(t->cols[i], n, nulls[i], tbytes[i]);
        if (c < 0) return -1;
        sz += c;
    }
    return sz;
}

static void put_piece(uint8_t *dst, int64_t sz, const pt_table *t, const int64_t *idx, int64_t n,
                      const int64_t *nulls, const int64_t *tbytes) {
    wr w = {dst + SER_HEADER};
    int nf = t->schema->nfields;
    put_schema(&w, t->schema, n);
    for (int i = 0; i < nf; i++) put_col_take(&w, t->cols[i], idx, n, nulls[i], tbytes[i]);
    put_header(dst, sz - SER_HEADER, PT__SER_CRC);
}

/* Routes row i of part p to rank dest[p][i]: one stable counting sort of
 * row numbers per part, then every piece is sized and written straight into
 * one send buffer, ranks in order and parts in order within a rank (the
 * message layout unpack_received expects). */
static pt_status route_pack(pt_mem *mem, int size, pt_table *const *parts, int64_t nparts,
                            uint32_t *const *dest, int64_t *send_counts, uint8_t **buf,
                            int64_t *total_out, int64_t *rows_sent, double *pack_s,
                            const char *fn, pt_error *err) {
    *buf = NULL;
    *total_out = 0;
    int nf = nparts > 0 ? parts[0]->schema->nfields : 0;
    int64_t npieces = nparts * size;
    int64_t **idx = pt_calloc((size_t)(nparts ? nparts : 1), sizeof *idx);
    int64_t *start = pt_calloc((size_t)npieces + 1, sizeof *start); /* piece row ranges */
    int64_t *len = pt_calloc((size_t)npieces + 1, sizeof *len);
    int64_t *psz = pt_calloc((size_t)npieces + 1, sizeof *psz);
    int64_t *nulls = pt_calloc((size_t)npieces * (size_t)(nf ? nf : 1) + 1, sizeof *nulls);
    int64_t *tbytes = pt_calloc((size_t)npieces * (size_t)(nf ? nf : 1) + 1, sizeof *tbytes);
    int64_t *cnt = pt_calloc((size_t)size + 1, sizeof *cnt);
    pt_status st = PT_OK;
    if (!idx || !start || !len || !psz || !nulls || !tbytes || !cnt)
        st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", fn);
    int64_t total = 0;
    for (int64_t p = 0; p < nparts && st == PT_OK; p++) {
        int64_t n = parts[p]->nrows;
        if (n == 0) continue;
        idx[p] = pt_malloc((size_t)n * sizeof **idx);
        if (!idx[p]) {
            st = pt_error_set(err, PT_ENOMEM, "%s: out of memory routing %lld rows", fn,
                              (long long)n);
            break;
        }
        memset(cnt, 0, ((size_t)size + 1) * sizeof *cnt);
        const uint32_t *d = dest[p];
        for (int64_t i = 0; i < n; i++) cnt[d[i] + 1]++;
        for (int r = 0; r < size; r++) len[(int64_t)r * nparts + p] = cnt[r + 1];
        for (int r = 0; r < size; r++) cnt[r + 1] += cnt[r];
        for (int r = 0; r < size; r++) start[(int64_t)r * nparts + p] = cnt[r];
        for (int64_t i = 0; i < n; i++) idx[p][cnt[d[i]]++] = i;
        for (int r = 0; r < size; r++) {
            int64_t k = (int64_t)r * nparts + p;
            if (len[k] == 0) continue;
            psz[k] = piece_size(parts[p], idx[p] + start[k], len[k], nulls + k * nf,
                                tbytes + k * nf);
            if (psz[k] < 0) {
                st = pt_error_set(err, PT_EINVAL, "%s: part %lld is malformed", fn, (long long)p);
                break;
            }
            send_counts[r] += psz[k];
            total += psz[k];
            *rows_sent += len[k];
        }
    }
    uint8_t *b = NULL;
    if (st == PT_OK) st = pt_mem_reserve(mem, total, "exchange send buffer", err);
    if (st == PT_OK) {
        b = pt_malloc((size_t)(total > 0 ? total : 1));
        if (!b) {
            pt_mem_release(mem, total);
            st = pt_error_set(err, PT_ENOMEM, "%s: out of memory for a %lld-byte send buffer", fn,
                              (long long)total);
        }
    }
    int64_t at = 0;
    double t0 = pt_now_s();
    for (int64_t k = 0; st == PT_OK && k < npieces; k++) {
        if (len[k] == 0) continue;
        int64_t p = k % nparts;
        put_piece(b + at, psz[k], parts[p], idx[p] + start[k], len[k], nulls + k * nf,
                  tbytes + k * nf);
        at += psz[k];
    }
    *pack_s = pt_now_s() - t0;
    for (int64_t p = 0; idx && p < nparts; p++) pt_free(idx[p]);
    pt_free(idx);
    pt_free(start);
    pt_free(len);
    pt_free(psz);
    pt_free(nulls);
    pt_free(tbytes);
    pt_free(cnt);
    if (st != PT_OK) return st;
    *buf = b;
    *total_out = total;
    return PT_OK;
}

static _Thread_local pt__dist_stats t_stats;

void pt__dist_last_stats(pt__dist_stats *out) { *out = t_stats; }

/* Sends row i of part p to rank dest[p][i] and collects what this rank
 * receives: route_pack writes the pieces per destination straight into
 * one send buffer, moved with one alltoallv. `local` is this rank's status so far (a failure is agreed on
 * before any data moves). */
static pt_status exchange_routed(pt_comm *c, pt_ctx *ctx, pt_table *const *parts, int64_t nparts,
                                 uint32_t *const *dest, pt_status local, const char *fn,
                                 pt_table **out, pt_error *err) {
    int size = pt_comm_size(c);
    pt_mem *mem = ctx_mem(ctx);
    int64_t *send_counts = pt_calloc((size_t)size, sizeof *send_counts);
    int64_t *recv_counts = pt_calloc((size_t)size, sizeof *recv_counts);
    uint8_t *send = NULL;
    void *recv = NULL;
    int64_t total = 0;
    pt_status st = local;
    pt__dist_stats *ss = &t_stats;
    memset(ss, 0, sizeof *ss);
    double t0 = pt_now_s();
    if (st == PT_OK && (!send_counts || !recv_counts))
        st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", fn);
    if (st == PT_OK)
        st = route_pack(mem, size, parts, nparts, dest, send_counts, &send, &total,
                        &ss->rows_sent, &ss->pack_s, fn, err);
    double t2 = pt_now_s();
    st = agree(c, fn, st, err);
    double t2b = pt_now_s();
    if (st == PT_OK) {
        st = pt_comm_alltoallv(c, send, send_counts, &recv, recv_counts, err);
        if (st != PT_OK) pt_error_prefix(err, "%s", fn);
    }
    if (send) {
        pt_free(send);
        pt_mem_release(mem, total);
    }
    double t3 = pt_now_s();
    if (st == PT_OK) {
        st = unpack_received(ctx, size, recv, recv_counts, parts[0], fn, out, err);
        recv = NULL;
    }
    double t4 = pt_now_s();
    ss->route_s = t2 - t0 - ss->pack_s;
    ss->sync_s = t2b - t2;
    ss->exchange_s = t3 - t2b;
    ss->unpack_s = t4 - t3;
    ss->bytes_sent = total;
    for (int r = 0; send_counts && recv_counts && r < size; r++) {
        if (r < PT__DIST_STATS_RANKS) ss->bytes_to[r] = send_counts[r];
        ss->bytes_received += recv_counts[r];
    }
    pt_free(recv);
    pt_free(send_counts);
    pt_free(recv_counts);
    return st;
}

/* Frees the per-part destination arrays. */
static void free_dests(uint32_t **dest, int64_t nparts) {
    for (int64_t p = 0; dest && p < nparts; p++) pt_free(dest[p]);
    pt_free(dest);
}

static pt_status alloc_dests(pt_table *const *parts, int64_t nparts, uint32_t ***out,
                             pt_error *err) {
    uint32_t **dest = pt_calloc((size_t)nparts, sizeof *dest);
    *out = dest;
    if (!dest) return pt_error_set(err, PT_ENOMEM, "out of memory routing rows");
    for (int64_t p = 0; p < nparts; p++) {
        int64_t n = parts[p]->nrows;
        dest[p] = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof **dest);
        if (!dest[p]) return pt_error_set(err, PT_ENOMEM, "out of memory routing rows");
    }
    return PT_OK;
}

pt_status pt__dist_shuffle_hash(pt_comm *c, pt_ctx *ctx, pt_table *const *parts, int64_t nparts,
                                int nkeys, const int *keys, pt_table **out, pt_error *err) {
    static const char fn[] = "pt__dist_shuffle_hash";
    *out = NULL;
    if (!c) return pt_error_set(err, PT_EINVAL, "%s: comm is NULL", fn);
    pt_status st = check_parts(fn, parts, nparts, err);
    if (st == PT_OK && (nkeys < 1 || !keys))
        st = pt_error_set(err, PT_EINVAL, "%s: nkeys is %d; need at least one key", fn, nkeys);
    for (int k = 0; st == PT_OK && k < nkeys; k++)
        if (keys[k] < 0 || keys[k] >= parts[0]->schema->nfields)
            st = pt_error_set(err, PT_EINVAL, "%s: keys[%d] = %d is not a column (0..%d)", fn, k,
                              keys[k], parts[0]->schema->nfields - 1);
    /* Argument errors are the same on every rank (the same call everywhere),
     * so returning before the collective leaves no peer waiting alone. */
    if (st != PT_OK) return st;
    uint32_t size = (uint32_t)pt_comm_size(c);
    uint32_t **dest = NULL;
    uint64_t *h = NULL;
    double t0 = pt_now_s();
    st = alloc_dests(parts, nparts, &dest, err);
    int64_t maxn = 1;
    for (int64_t p = 0; p < nparts; p++)
        if (parts[p]->nrows > maxn) maxn = parts[p]->nrows;
    if (st == PT_OK) {
        h = pt_malloc((size_t)maxn * sizeof *h);
        if (!h) st = pt_error_set(err, PT_ENOMEM, "%s: out of memory hashing rows", fn);
    }
    for (int64_t p = 0; p < nparts && st == PT_OK; p++) {
        st = hash_rows(parts[p], nkeys, keys, h, err);
        for (int64_t i = 0; st == PT_OK && i < parts[p]->nrows; i++)
            dest[p][i] = (uint32_t)(h[i] % size);
    }
    pt_free(h);
    double hash_s = pt_now_s() - t0;
    st = exchange_routed(c, ctx, parts, nparts, dest, st, fn, out, err);
    t_stats.route_s += hash_s;
    free_dests(dest, nparts);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Range shuffle (sample sort)                                              */
/* ------------------------------------------------------------------------ */

/* One key value, in a form that compares across representations. */
enum { KV_INT = 0, KV_FLT = 1, KV_TEXT = 2, KV_LAST = 3 };
typedef struct kv {
    int kind;
    int64_t i;
    double d;
    const char *s;
    int64_t len;
} kv;

static kv get_kv(const pt_column *c, int64_t i) {
    kv v = {KV_LAST, 0, 0, NULL, 0};
    if (c->type == PT_TYPE_NULL || !pt_column_is_valid(c, i)) return v;
    switch (c->type) {
    case PT_TYPE_BOOL: v.kind = KV_INT; v.i = pt_column_bool(c, i); break;
    case PT_TYPE_INT32: v.kind = KV_INT; v.i = pt_column_i32(c)[i]; break;
    case PT_TYPE_INT64: v.kind = KV_INT; v.i = pt_column_i64(c)[i]; break;
    case PT_TYPE_FLOAT32:
    case PT_TYPE_FLOAT64:
        v.d = c->type == PT_TYPE_FLOAT32 ? (double)pt_column_f32(c)[i] : pt_column_f64(c)[i];
        v.kind = v.d != v.d ? KV_LAST : KV_FLT; /* NaN sorts after every number */
        break;
    case PT_TYPE_UTF8:
    case PT_TYPE_DICT:
        v.kind = KV_TEXT;
        v.s = pt_column_str(c, i, &v.len);
        break;
    default: break;
    }
    return v;
}

/* Numbers (ints and floats by value), then text by bytes, then the rest. */
static int kv_cmp(const kv *a, const kv *b) {
    int ca = a->kind == KV_FLT ? KV_INT : a->kind, cb = b->kind == KV_FLT ? KV_INT : b->kind;
    if (ca != cb) return ca < cb ? -1 : 1;
    if (ca == KV_INT) {
        if (a->kind == KV_INT && b->kind == KV_INT) return (a->i > b->i) - (a->i < b->i);
        /* long double holds every int64 exactly on x86-64 and aarch64. */
        long double x = a->kind == KV_INT ? (long double)a->i : (long double)a->d;
        long double y = b->kind == KV_INT ? (long double)b->i : (long double)b->d;
        return (x > y) - (x < y);
    }
    if (ca == KV_TEXT) {
        int64_t m = a->len < b->len ? a->len : b->len;
        int r = m > 0 ? memcmp(a->s, b->s, (size_t)m) : 0;
        if (r) return r < 0 ? -1 : 1;
        return (a->len > b->len) - (a->len < b->len);
    }
    return 0;
}

static int kv_qsort_cmp(const void *a, const void *b) { return kv_cmp(a, b); }

/* This rank's sample of key column `key`: up to m non-null, non-NaN values
 * at evenly spaced rows over all parts, as a one-column table (text as
 * utf8, so no dictionary travels). */
static pt_status local_sample(pt_mem *mem, pt_table *const *parts, int64_t nparts, int key,
                              int64_t m, pt_table **out, pt_error *err) {
    *out = NULL;
    int64_t total = 0;
    for (int64_t p = 0; p < nparts; p++) total += parts[p]->nrows;
    if (m > total) m = total;
    pt_type type = parts[0]->schema->fields[key].type;
    if (type == PT_TYPE_DICT) type = PT_TYPE_UTF8;
    int64_t *idx = pt_malloc((size_t)(m > 0 ? m : 1) * sizeof *idx);
    pt_column **cols = pt_calloc((size_t)nparts, sizeof *cols);
    pt_status st = PT_OK;
    if (!idx || !cols) st = pt_error_set(err, PT_ENOMEM, "out of memory sampling keys");
    int64_t j = 0, base = 0;
    int ncols = 0;
    for (int64_t p = 0; p < nparts && st == PT_OK; p++) {
        const pt_column *c = parts[p]->cols[key];
        int64_t n = parts[p]->nrows, k = 0;
        /* Sample j sits at global row (2j + 1) * total / (2m). */
        for (; j < m; j++) {
            int64_t g = (int64_t)(((__int128)(2 * j + 1) * total) / (2 * m));
            if (g >= base + n) break;
            if (get_kv(c, g - base).kind != KV_LAST) idx[k++] = g - base;
        }
        base += n;
        if (k == 0) continue;
        pt_column *tk = NULL;
        st = pt_column_take(mem, c, idx, k, &tk, err);
        if (st == PT_OK && tk->type == PT_TYPE_DICT) {
            pt_column *u = NULL;
            st = pt_column_cast(mem, tk, PT_TYPE_UTF8, &u, err);
            pt_column_release(tk);
            tk = u;
        }
        if (st == PT_OK) cols[ncols++] = tk;
    }
    pt_column *all = NULL;
    if (st == PT_OK) {
        if (ncols == 0) {
            st = pt_column_new(mem, type, 0, 0, &all, err);
        } else if (ncols == 1) {
            all = cols[0];
            cols[0] = NULL;
        } else {
            st = pt_column_concat(mem, cols, ncols, &all, err);
        }
    }
    for (int i = 0; i < ncols; i++) pt_column_release(cols[i]);
    pt_free(cols);
    pt_free(idx);
    if (st != PT_OK) return st;
    const char *name = "key";
    pt_schema *s = NULL;
    st = pt_schema_new(1, &name, &type, &s, err);
    if (st != PT_OK) {
        pt_column_release(all);
        return st;
    }
    return pt_table_new(s, &all, out, err);
}

pt_status pt__dist_shuffle_range(pt_comm *c, pt_ctx *ctx, pt_table *const *parts, int64_t nparts,
                                 int key, bool desc, int64_t sample_per_rank, pt_table **out,
                                 pt_error *err) {
    static const char fn[] = "pt__dist_shuffle_range";
    *out = NULL;
    if (!c) return pt_error_set(err, PT_EINVAL, "%s: comm is NULL", fn);
    PT_RETURN_NOT_OK(check_parts(fn, parts, nparts, err));
    if (key < 0 || key >= parts[0]->schema->nfields)
        return pt_error_set(err, PT_EINVAL, "%s: key = %d is not a column (0..%d)", fn, key,
                            parts[0]->schema->nfields - 1);
    int size = pt_comm_size(c);
    if (sample_per_rank <= 0) sample_per_rank = 256 * (int64_t)size;
    pt_mem *mem = ctx_mem(ctx);
    double t0 = pt_now_s();

    /* 1. Samples, allgathered. */
    pt_table *sample = NULL;
    uint8_t *sbuf = NULL;
    int64_t slen = 0;
    pt_status st = local_sample(mem, parts, nparts, key, sample_per_rank, &sample, err);
    if (st == PT_OK) st = pt__table_serialize(sample, mem, &sbuf, &slen, err);
    pt_table_free(sample);
    int64_t *counts = pt_calloc((size_t)size, sizeof *counts);
    if (st == PT_OK && !counts) st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", fn);
    /* After a failed agreement every rank returns: nobody is left waiting. */
    st = agree(c, fn, st, err);
    if (st != PT_OK) {
        pt__table_buf_free(mem, sbuf, slen);
        pt_free(counts);
        return st;
    }
    void *all = NULL;
    {
        st = pt_comm_allgatherv(c, sbuf, slen, &all, counts, err);
        if (st != PT_OK) pt_error_prefix(err, "%s: sample exchange", fn);
    }
    pt__table_buf_free(mem, sbuf, slen);

    /* 2. Every rank sorts the same sample and picks the same splitters. */
    pt_table **samples = pt_calloc((size_t)size, sizeof *samples);
    kv *vals = NULL, *split = NULL;
    int64_t nv = 0;
    if (st == PT_OK && !samples) st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", fn);
    int64_t at = 0;
    for (int r = 0; r < size && st == PT_OK; r++) {
        st = pt__table_deserialize(mem, (const uint8_t *)all + at, counts[r], &samples[r], err);
        if (st == PT_OK && samples[r]->schema->nfields != 1)
            st = pt_error_set(err, PT_ECORRUPT, "sample has %d columns",
                              samples[r]->schema->nfields);
        if (st != PT_OK) pt_error_prefix(err, "%s: sample from rank %d", fn, r);
        else nv += samples[r]->nrows;
        at += counts[r];
    }
    pt_free(all);
    if (st == PT_OK) {
        vals = pt_malloc((size_t)(nv > 0 ? nv : 1) * sizeof *vals);
        split = pt_malloc((size_t)size * sizeof *split);
        if (!vals || !split) st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", fn);
    }
    int64_t m = 0;
    for (int r = 0; r < size && st == PT_OK; r++)
        for (int64_t i = 0; i < samples[r]->nrows; i++) {
            kv v = get_kv(samples[r]->cols[0], i);
            if (v.kind != KV_LAST) vals[m++] = v;
        }
    int nsplit = 0;
    if (st == PT_OK && m > 0) {
        qsort(vals, (size_t)m, sizeof *vals, kv_qsort_cmp);
        for (int i = 1; i < size; i++) split[nsplit++] = vals[(int64_t)((__int128)i * m / size)];
    }

    /* 3. Route every row to the rank of its range. */
    uint32_t **dest = NULL;
    if (st == PT_OK) st = alloc_dests(parts, nparts, &dest, err);
    for (int64_t p = 0; p < nparts && st == PT_OK; p++) {
        const pt_column *kc = parts[p]->cols[key];
        for (int64_t i = 0; i < parts[p]->nrows; i++) {
            kv v = get_kv(kc, i);
            uint32_t d;
            if (v.kind == KV_LAST) {
                d = (uint32_t)(size - 1);
            } else {
                /* Number of splitters <= v (upper bound). */
                int lo = 0, hi = nsplit;
                while (lo < hi) {
                    int mid = (lo + hi) / 2;
                    if (kv_cmp(&split[mid], &v) <= 0) lo = mid + 1;
                    else hi = mid;
                }
                d = (uint32_t)(desc ? size - 1 - lo : lo);
            }
            dest[p][i] = d;
        }
    }
    /* A rank that failed after the sample exchange still meets the others
     * in the exchange, where the failure is agreed on. */
    double route_s = pt_now_s() - t0;
    st = exchange_routed(c, ctx, parts, nparts, dest, st, fn, out, err);
    t_stats.route_s += route_s; /* sampling, splitters and routing */
    free_dests(dest, nparts);
    for (int r = 0; samples && r < size; r++) pt_table_free(samples[r]);
    pt_free(samples);
    pt_free(vals);
    pt_free(split);
    pt_free(counts);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Gather, broadcast, allgather                                             */
/* ------------------------------------------------------------------------ */

static pt_status check_root(pt_comm *c, const char *fn, int root, pt_error *err) {
    if (!c) return pt_error_set(err, PT_EINVAL, "%s: comm is NULL", fn);
    if (root < 0 || root >= pt_comm_size(c))
        return pt_error_set(err, PT_EINVAL, "%s: root %d is not a rank (0..%d)", fn, root,
                            pt_comm_size(c) - 1);
    return PT_OK;
}

pt_status pt__dist_gather(pt_comm *c, pt_ctx *ctx, const pt_table *local, int root,
                          pt_table **out, pt_error *err) {
    static const char fn[] = "pt__dist_gather";
    *out = NULL;
    PT_RETURN_NOT_OK(check_root(c, fn, root, err));
    if (!local) return pt_error_set(err, PT_EINVAL, "%s: local table is NULL", fn);
    int size = pt_comm_size(c);
    pt_mem *mem = ctx_mem(ctx);
    int64_t *send_counts = pt_calloc((size_t)size, sizeof *send_counts);
    int64_t *recv_counts = pt_calloc((size_t)size, sizeof *recv_counts);
    uint8_t *buf = NULL;
    int64_t len = 0;
    void *recv = NULL;
    pt_status st = PT_OK;
    if (!send_counts || !recv_counts) st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", fn);
    /* A gather is an all-to-all where only the root's blocks are non-empty:
     * one collective with the comm's timeouts, and no rank but the root
     * receives anything. */
    if (st == PT_OK) st = pt__table_serialize(local, mem, &buf, &len, err);
    if (st == PT_OK) send_counts[root] = len;
    st = agree(c, fn, st, err);
    if (st == PT_OK) {
        st = pt_comm_alltoallv(c, buf, send_counts, &recv, recv_counts, err);
        if (st != PT_OK) pt_error_prefix(err, "%s", fn);
    }
    pt__table_buf_free(mem, buf, len);
    if (st == PT_OK && pt_comm_rank(c) == root) {
        st = unpack_received(ctx, size, recv, recv_counts, local, fn, out, err);
        recv = NULL;
    }
    pt_free(recv);
    pt_free(send_counts);
    pt_free(recv_counts);
    return st;
}

pt_status pt__dist_broadcast_table(pt_comm *c, pt_ctx *ctx, const pt_table *t, int root,
                                   pt_table **out, pt_error *err) {
    static const char fn[] = "pt__dist_broadcast_table";
    *out = NULL;
    PT_RETURN_NOT_OK(check_root(c, fn, root, err));
    bool me = pt_comm_rank(c) == root;
    pt_mem *mem = ctx_mem(ctx);
    uint8_t *buf = NULL;
    int64_t len = 0;
    pt_status st = PT_OK;
    if (me) {
        if (!t) st = pt_error_set(err, PT_EINVAL, "%s: table is NULL on the root", fn);
        else st = pt__table_serialize(t, mem, &buf, &len, err);
    }
    /* The length doubles as the root's status: negative = the root failed. */
    int64_t hdr = me ? (st == PT_OK ? len : -(int64_t)st) : 0;
    pt_error e;
    pt_status cs = pt_comm_bcast(c, &hdr, 8, root, &e);
    if (cs != PT_OK) {
        pt__table_buf_free(mem, buf, len);
        if (st != PT_OK) return st;
        if (err) *err = e;
        return pt_error_prefix(err, "%s", fn);
    }
    if (st != PT_OK) {
        pt__table_buf_free(mem, buf, len);
        return st;
    }
    if (hdr < 0)
        return pt_error_set(err, (pt_status)(-hdr), "%s: root %d failed (%s), nothing sent", fn,
                            root, pt_status_str((pt_status)(-hdr)));
    if (!me) {
        len = hdr;
        st = pt_mem_reserve(mem, len, "broadcast receive buffer", err);
        if (st == PT_OK) {
            buf = pt_malloc((size_t)(len > 0 ? len : 1));
            if (!buf) {
                pt_mem_release(mem, len);
                st = pt_error_set(err, PT_ENOMEM, "%s: out of memory for %lld bytes", fn,
                                  (long long)len);
            }
        }
    }
    /* Every receiver must have room before the bytes move, or the root
     * would wait on a rank that cannot receive. */
    st = agree(c, fn, st, err);
    if (st == PT_OK) {
        st = pt_comm_bcast(c, buf, len, root, err);
        if (st != PT_OK) pt_error_prefix(err, "%s", fn);
    }
    if (st == PT_OK) {
        if (me) {
            st = pt_table_slice(t, 0, t->nrows, out, err);
        } else {
            st = pt__table_deserialize(mem, buf, len, out, err);
            if (st != PT_OK) pt_error_prefix(err, "%s: message from rank %d", fn, root);
        }
    }
    pt__table_buf_free(mem, buf, len);
    return st;
}

pt_status pt__dist_allgather_table(pt_comm *c, pt_ctx *ctx, const pt_table *local,
                                   pt_table **out, pt_error *err) {
    static const char fn[] = "pt__dist_allgather_table";
    *out = NULL;
    if (!c) return pt_error_set(err, PT_EINVAL, "%s: comm is NULL", fn);
    if (!local) return pt_error_set(err, PT_EINVAL, "%s: local table is NULL", fn);
    int size = pt_comm_size(c);
    pt_mem *mem = ctx_mem(ctx);
    int64_t *counts = pt_calloc((size_t)size, sizeof *counts);
    uint8_t *buf = NULL;
    int64_t len = 0;
    void *recv = NULL;
    pt_status st = PT_OK;
    if (!counts) st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", fn);
    if (st == PT_OK) st = pt__table_serialize(local, mem, &buf, &len, err);
    st = agree(c, fn, st, err);
    if (st == PT_OK) {
        st = pt_comm_allgatherv(c, buf, len, &recv, counts, err);
        if (st != PT_OK) pt_error_prefix(err, "%s", fn);
    }
    pt__table_buf_free(mem, buf, len);
    if (st == PT_OK) {
        st = unpack_received(ctx, size, recv, counts, local, fn, out, err);
        recv = NULL;
    }
    pt_free(recv);
    pt_free(counts);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Scan split                                                               */
/* ------------------------------------------------------------------------ */

void pt__dist_share(int64_t n, int rank, int size, int64_t *lo, int64_t *hi) {
    if (n < 0) n = 0;
    if (size < 1 || rank < 0 || rank >= size) {
        *lo = *hi = 0;
        return;
    }
    int64_t q = n / size, r = n % size;
    *lo = (int64_t)rank * q + (rank < r ? rank : r);
    *hi = *lo + q + (rank < r ? 1 : 0);
}
