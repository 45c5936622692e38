/*
 * ml_libsvm.c - libsvm/svmlight files. The reader maps the file, gives each
 * rank a byte share and cuts the share into ranges parsed in parallel; a
 * range owns every line that STARTS inside it, so no line is lost or read
 * twice whatever the cuts. The pieces are stitched in line order, and one
 * small allgather of per-rank counts gives every rank its global row and
 * line offsets, the feature count, the label kind and whether anyone
 * failed, so that all ranks return together. Numbers go through a fast
 * exact parser with strtod as the fallback for what it cannot decide.
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_util.h"
#include "ml/ml_internal.h"

void pt_libsvm_opts_init(pt_libsvm_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->labels = PT_LABELS_AUTO;
}

/* Test hook: bytes per parse range (0: derived from the share and the
 * thread count), so that tests can force thousands of tiny ranges. */
void pt__libsvm_set_chunk_bytes(int64_t n);
static int64_t g_chunk_bytes;
void pt__libsvm_set_chunk_bytes(int64_t n) { g_chunk_bytes = n > 0 ? n : 0; }

/* ------------------------------------------------------------------------ */
/* Numbers                                                                  */
/* ------------------------------------------------------------------------ */

/* Every line is parsed up to its '\n' (the last line, when the file does
 * not end with one, is parsed from a copy that does), so the scanners below
 * need no bounds checks: '\n' stops them all. */

static const double k_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#if LDBL_MANT_DIG == 64
/* 10^k for k <= 27 is exact in the x87 format (5^27 < 2^64). */
static const long double k_pow10l[28] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
    1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
    1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
#endif

static inline bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }
/* Where a token ends: a blank, a comment or the end of the line. */
static inline bool is_term(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '#'; }
static inline bool is_digit(char c) { return (unsigned)(c - '0') < 10u; }

static const char *token_end(const char *p) {
    while (!is_term(*p)) p++;
    return p;
}

/* strtod on a NUL-terminated copy of the token [s, te) (the mapped file is
 * not NUL-terminated). Returns 0 when the whole token is a number, 1 when
 * it does not start with one, 2 when a number is followed by garbage (then
 * *bad points at the garbage). */
static int parse_slow(const char *s, const char *te, double *out, const char **bad) {
    char stackbuf[128];
    size_t n = (size_t)(te - s);
    char *buf = n < sizeof stackbuf ? stackbuf : pt_malloc(n + 1);
    if (!buf) return 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end = NULL;
    double v = pt__strtod_c(buf, &end);
    size_t used = (size_t)(end - buf);
    if (buf != stackbuf) pt_free(buf);
    if (used == 0) return 1;
    *out = v; /* overflow gives +-inf and underflow 0 or a subnormal, as strtod says */
    if (used != n) {
        *bad = s + used;
        return 2;
    }
    return 0;
}

/* m * 10^dexp when one correctly rounded operation gives it exactly: in
 * double when m fits 53 bits and 10^|dexp| is exact (|dexp| <= 22), else in
 * x87 extended precision (m < 2^64 and 10^|dexp| for |dexp| <= 27 are
 * exact there), refused when the extended result sits exactly on a halfway
 * point between two doubles, the only case where rounding twice can differ
 * from rounding once (a halfway point has 54 bits, so rounding to 64 bits
 * cannot cross one). Results stay far from the subnormal range. */
static inline bool eval_exact(uint64_t m, int dexp, bool neg, double *out) {
    if (m <= (UINT64_C(1) << 53) && dexp >= -22 && dexp <= 22) {
        double v = (double)m;
        v = dexp < 0 ? v / k_pow10[-dexp] : v * k_pow10[dexp];
        *out = neg ? -v : v;
        return true;
    }
#if LDBL_MANT_DIG == 64
    if (dexp >= -27 && dexp <= 27) {
        long double v = (long double)m;
        v = dexp < 0 ? v / k_pow10l[-dexp] : v * k_pow10l[dexp];
        union {
            long double v;
            struct {
                uint64_t mant;
                uint16_t se;
            } b;
        } u;
        memset(&u, 0, sizeof u);
        u.v = v;
        if ((u.b.mant & 0x7FF) != 0x400) {
            double d = (double)v;
            *out = neg ? -d : d;
            return true;
        }
    }
#endif
    return false;
}

/* The general spelling: leading zeros, more than 19 digits, odd forms. */
static int parse_num_general(const char *s, double *out, const char **next, const char **bad) {
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    uint64_t m = 0;
    int nd = 0, dexp = 0;
    bool any = false, trunc = false;
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        any = true;
        if (nd < 19) {
            if (m || d) {
                m = m * 10 + d;
                nd++;
            }
        } else {
            dexp++;
            if (d) trunc = true;
        }
    }
    if (*p == '.') {
        for (p++; is_digit(*p); p++) {
            unsigned d = (unsigned)(*p - '0');
            any = true;
            if (nd < 19) {
                if (m || d) {
                    m = m * 10 + d;
                    nd++;
                }
                dexp--;
            } else if (d) {
                trunc = true;
            }
        }
    }
    if (!any) goto slow;
    if (*p == 'e' || *p == 'E') {
        p++;
        bool eneg = false;
        if (*p == '+' || *p == '-') {
            eneg = *p == '-';
            p++;
        }
        if (!is_digit(*p)) goto slow;
        int x = 0;
        for (; is_digit(*p); p++) {
            if (x < 100000) x = x * 10 + (*p - '0');
        }
        dexp += eneg ? -x : x;
    }
    if (!is_term(*p)) goto slow;
    if (m == 0) {
        *next = p;
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    if (!trunc && eval_exact(m, dexp, neg, out)) {
        *next = p;
        return 0;
    }
slow:
    *next = token_end(s);
    return parse_slow(s, *next, out, bad);
}

/* Parses the number token at s. The common spelling (sign, at most 19
 * digits around an optional point, optional exponent) is read in one tight
 * pass; anything else goes to the general reader, and what no exact
 * method decides to strtod. Returns as parse_slow; *next is the end of the
 * token. */
static inline int parse_num(const char *s, double *out, const char **next, const char **bad) {
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    const char *d0 = p;
    uint64_t m = 0;
    while (is_digit(*p)) m = m * 10 + (uint64_t)(*p++ - '0');
    int nd = (int)(p - d0), dexp = 0;
    if (*p == '.') {
        const char *f0 = ++p;
        while (is_digit(*p)) m = m * 10 + (uint64_t)(*p++ - '0');
        dexp = -(int)(p - f0);
        nd -= dexp;
    }
    /* more than 19 digits may have wrapped m: the general reader redoes it */
    if (nd == 0 || nd > 19 || !is_term(*p)) return parse_num_general(s, out, next, bad);
    *next = p;
    if (eval_exact(m, dexp, neg, out)) return 0;
    return parse_num_general(s, out, next, bad);
}

/* ------------------------------------------------------------------------ */
/* One parse range                                                          */
/* ------------------------------------------------------------------------ */

typedef struct lsvm_chunk {
    int64_t lo, hi; /* lines starting in [lo, hi) */
    int64_t nrows, nlines, nnz;
    int64_t cap_rows, cap_nnz;
    double *y;
    int64_t *rowptr; /* nrows + 1 local offsets */
    int32_t *idx;    /* zero-based */
    double *val;
    int64_t maxidx;  /* largest one-based index seen */
    /* AUTO labels: -1 is only a class when every other label is +1 */
    bool has_neg1, has_other;
    int64_t maxlabel;
    int64_t neg1_line; /* local line (0-based) and column of the first -1 */
    int neg1_col;
    char neg1_text[32];
    /* first failure: a line error (err_line >= 0) or another one */
    pt_status st;
    int64_t err_line;
    int err_col;
    char err_msg[PT_ERROR_MSG_SIZE];
    int64_t charged; /* bytes reserved on the budget */
} lsvm_chunk;

typedef struct lsvm_job {
    const char *data;
    int64_t len;
    const pt_libsvm_opts *opts;
    pt_mem *mem;
    const char *tail;      /* start of a last line without '\n', or NULL */
    char *tail_copy;       /* that line with a '\n' */
    int64_t tail_len;
    lsvm_chunk *chunks;
    /* stitching */
    const int64_t *row_off, *nnz_off;
    int64_t row_base; /* global row id of this rank's first row */
    int64_t nfeatures;
    bool map_neg1;
    pt_dataset *d;
} lsvm_job;

/* Large parse and result buffers are touched once, front to back: with
 * transparent huge pages (where the system offers them on request) the
 * first touch costs one fault per 2 MiB instead of one per 4 KiB, which
 * was a third of the read time on big files. Best effort. */
static void *advise_huge(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
    if (p && n >= (8u << 20)) {
        uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
        uintptr_t b = ((uintptr_t)p + n) & ~(uintptr_t)4095;
        if (b > a) (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
    }
#endif
    return p;
}

static void chunk_free(lsvm_chunk *c, pt_mem *mem) {
    pt_free(c->y);
    pt_free(c->rowptr);
    pt_free(c->idx);
    pt_free(c->val);
    c->y = c->val = NULL;
    c->rowptr = NULL;
    c->idx = NULL;
    pt_mem_release(mem, c->charged);
    c->charged = 0;
}

/* Grows rows (when need_rows) or entries to hold one more. */
static pt_status chunk_grow(lsvm_chunk *c, pt_mem *mem, bool rows, pt_error *err) {
    if (rows) {
        int64_t nc = c->cap_rows ? c->cap_rows * 2 : 1024;
        int64_t add = (nc - c->cap_rows) * (int64_t)(sizeof(double) + sizeof(int64_t));
        PT_RETURN_NOT_OK(pt_mem_reserve(mem, add, "libsvm parse buffers", err));
        c->charged += add;
        double *y = pt_realloc(c->y, (size_t)nc * sizeof *y);
        if (y) c->y = y;
        int64_t *rp = y ? pt_realloc(c->rowptr, (size_t)(nc + 1) * sizeof *rp) : NULL;
        if (!rp) return pt_error_set(err, PT_ENOMEM, "out of memory for %lld rows", (long long)nc);
        c->rowptr = rp;
        c->cap_rows = nc;
    } else {
        int64_t nc = c->cap_nnz ? c->cap_nnz * 2 : 8192;
        int64_t add = (nc - c->cap_nnz) * (int64_t)(sizeof(double) + sizeof(int32_t));
        PT_RETURN_NOT_OK(pt_mem_reserve(mem, add, "libsvm parse buffers", err));
        c->charged += add;
        int32_t *ix = pt_realloc(c->idx, (size_t)nc * sizeof *ix);
        if (ix) c->idx = ix;
        double *v = ix ? pt_realloc(c->val, (size_t)nc * sizeof *v) : NULL;
        if (!v) {
            return pt_error_set(err, PT_ENOMEM, "out of memory for %lld entries", (long long)nc);
        }
        c->val = v;
        c->cap_nnz = nc;
    }
    return PT_OK;
}

/* Records a line error: the message gets its file:line: prefix once the
 * global line number is known. */
PT_PRINTF(4, 5)
static void chunk_fail(lsvm_chunk *c, const char *line_start, const char *at, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err_msg, sizeof c->err_msg, fmt, ap);
    va_end(ap);
    c->st = PT_EPARSE;
    c->err_line = c->nlines;
    c->err_col = (int)(at - line_start) + 1;
}

/* Width at which quoted input is cut in messages. */
#define QMAX 40
static int qlen(const char *s, const char *e) { return e - s > QMAX ? QMAX : (int)(e - s); }

/* Records an out-of-memory or budget failure of a chunk (no location). */
static void chunk_fail_status(lsvm_chunk *c, const pt_error *e) {
    c->st = e->code;
    c->err_line = -1;
    memcpy(c->err_msg, e->msg, sizeof c->err_msg);
}

/* Parses the line starting at ls (it ends with '\n'). Returns where the
 * line's '\n' is, or NULL after recording an error. */
static const char *parse_line(lsvm_chunk *c, const lsvm_job *J, const char *ls, const char *end) {
    const char *p = ls;
    while (is_blank(*p)) p++;
    if (*p == '\n') return p;
    if (*p == '#') return memchr(p, '\n', (size_t)(end - p));
    const char *t = p, *bad = NULL;
    double lab;
    int r = parse_num(t, &lab, &p, &bad);
    if (r != 0) {
        const char *te = token_end(t);
        chunk_fail(c, ls, t, "bad label '%.*s'", qlen(t, te), t);
        return NULL;
    }
    if (J->opts->labels == PT_LABELS_AUTO) {
        if (lab == -1.0) {
            if (!c->has_neg1) {
                c->has_neg1 = true;
                c->neg1_line = c->nlines;
                c->neg1_col = (int)(t - ls) + 1;
                snprintf(c->neg1_text, sizeof c->neg1_text, "%.*s", qlen(t, p), t);
            }
        } else if (!(lab >= 0 && lab <= (double)(INT_MAX - 1) && lab == floor(lab))) {
            chunk_fail(c, ls, t, "label '%.*s' is not a class id (use raw labels for regression)",
                       qlen(t, p), t);
            return NULL;
        } else {
            if (lab != 1.0) c->has_other = true;
            if ((int64_t)lab > c->maxlabel) c->maxlabel = (int64_t)lab;
            lab = lab + 0.0; /* -0 becomes class 0 */
        }
    }
    if (c->nrows == c->cap_rows) {
        pt_error e;
        if (chunk_grow(c, J->mem, true, &e) != PT_OK) {
            chunk_fail_status(c, &e);
            return NULL;
        }
    }
    c->y[c->nrows] = lab;
    int64_t prev = 0, nnz = c->nnz, cap = c->cap_nnz;
    int32_t *idx = c->idx;
    double *val = c->val;
    const int64_t limit = J->opts->nfeatures;
    for (;;) {
        while (is_blank(*p)) p++;
        if (*p == '\n') break;
        if (*p == '#') {
            p = memchr(p, '\n', (size_t)(end - p));
            break;
        }
        t = p;
        uint64_t ix = 0;
        while (is_digit(*p)) ix = ix * 10 + (uint64_t)(*p++ - '0');
        if (*p != ':' || p == t) {
            const char *te = token_end(t);
            if (p == t && te - t > 4 && memcmp(t, "qid:", 4) == 0) {
                double q;
                const char *qe;
                if (parse_num(t + 4, &q, &qe, &bad) == 0) {
                    p = qe;
                    continue;
                }
                chunk_fail(c, ls, t, "bad qid '%.*s'", qlen(t, te), t);
                return NULL;
            }
            if (memchr(t, ':', (size_t)(te - t)) == NULL) {
                chunk_fail(c, ls, t, "missing ':' in '%.*s' (expected index:value)", qlen(t, te), t);
            } else {
                chunk_fail(c, ls, t, "bad index in '%.*s'", qlen(t, te), t);
            }
            return NULL;
        }
        if (ix == 0 || p - t > 10 || ix > (uint64_t)INT32_MAX || (int64_t)ix <= prev ||
            (limit > 0 && (int64_t)ix > limit)) {
            const char *te = token_end(t);
            if (p - t > 10 || ix > (uint64_t)INT32_MAX) {
                chunk_fail(c, ls, t, "index too large in '%.*s'", qlen(t, te), t);
            } else if (ix == 0) {
                chunk_fail(c, ls, t, "index 0 in '%.*s': indices are one-based", qlen(t, te), t);
            } else if ((int64_t)ix <= prev) {
                chunk_fail(c, ls, t,
                           "index %llu in '%.*s' does not follow index %lld: indices must increase",
                           (unsigned long long)ix, qlen(t, te), t, (long long)prev);
            } else {
                chunk_fail(c, ls, t, "index %llu in '%.*s' is above nfeatures %lld",
                           (unsigned long long)ix, qlen(t, te), t, (long long)limit);
            }
            return NULL;
        }
        const char *vs = p + 1;
        double v;
        r = parse_num(vs, &v, &p, &bad);
        if (r != 0) {
            const char *te = token_end(t);
            if (vs == te) {
                chunk_fail(c, ls, vs, "missing value in '%.*s'", qlen(t, te), t);
            } else if (r == 2) {
                chunk_fail(c, ls, bad, "trailing garbage '%.*s' after the number in '%.*s'",
                           qlen(bad, te), bad, qlen(t, te), t);
            } else {
                chunk_fail(c, ls, vs, "bad number '%.*s' in '%.*s'", qlen(vs, te), vs,
                           qlen(t, te), t);
            }
            return NULL;
        }
        if (nnz == cap) {
            pt_error e;
            c->nnz = nnz;
            if (chunk_grow(c, J->mem, false, &e) != PT_OK) {
                chunk_fail_status(c, &e);
                return NULL;
            }
            cap = c->cap_nnz;
            idx = c->idx;
            val = c->val;
        }
        idx[nnz] = (int32_t)(ix - 1);
        val[nnz] = v;
        nnz++;
        prev = (int64_t)ix;
    }
    if (prev > c->maxidx) c->maxidx = prev;
    c->nnz = nnz;
    c->nrows++;
    c->rowptr[c->nrows] = nnz;
    return p;
}

static pt_status parse_chunk(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    (void)tc;
    (void)err;
    lsvm_job *J = arg;
    lsvm_chunk *c = &J->chunks[i];
    const char *d = J->data, *end = J->data + J->len, *stop = J->data + c->hi;
    int64_t start = c->lo;
    if (start > 0 && d[start - 1] != '\n') {
        const char *nl = memchr(d + start, '\n', (size_t)(J->len - start));
        start = nl ? nl - d + 1 : J->len;
    }
    const char *p = d + start;
    bool ok = true;
    if (p < stop) {
        /* first guess from the bytes, so that growing is rare */
        int64_t bytes = c->hi - start;
        pt_error e;
        c->cap_rows = bytes / 64 + 16;
        c->cap_nnz = bytes / 8 + 16;
        c->charged = c->cap_rows * 16 + c->cap_nnz * 12;
        pt_status s = pt_mem_reserve(J->mem, c->charged, "libsvm parse buffers", &e);
        if (s != PT_OK) c->charged = c->cap_rows = c->cap_nnz = 0;
        c->y = s ? NULL : advise_huge(pt_malloc((size_t)c->cap_rows * sizeof(double)), (size_t)c->cap_rows * sizeof(double));
        c->rowptr = s ? NULL : pt_malloc((size_t)(c->cap_rows + 1) * sizeof(int64_t));
        c->idx = s ? NULL : advise_huge(pt_malloc((size_t)c->cap_nnz * sizeof(int32_t)), (size_t)c->cap_nnz * sizeof(int32_t));
        c->val = s ? NULL : advise_huge(pt_malloc((size_t)c->cap_nnz * sizeof(double)), (size_t)c->cap_nnz * sizeof(double));
        if (s == PT_OK && (!c->y || !c->rowptr || !c->idx || !c->val)) {
            s = pt_error_set(&e, PT_ENOMEM, "out of memory for %lld bytes of parse buffers",
                             (long long)c->charged);
        }
        if (s != PT_OK) {
            chunk_fail_status(c, &e);
            ok = false;
        } else {
            c->rowptr[0] = 0;
        }
    }
    while (p < stop) {
        const char *eol = NULL;
        if (p == J->tail) {
            /* the last line has no '\n': parse the copy that has one */
            if (ok && !parse_line(c, J, J->tail_copy, J->tail_copy + J->tail_len + 1)) ok = false;
            eol = end;
        } else {
            if (ok) {
                eol = parse_line(c, J, p, end);
                if (!eol) ok = false;
            }
            /* after an error the lines are still counted, so that every
             * rank's line offsets stay right for the messages of others */
            if (!eol) eol = memchr(p, '\n', (size_t)(end - p));
        }
        c->nlines++;
        p = eol < end ? eol + 1 : end;
    }
    return PT_OK; /* failures are in the chunk, reported in line order */
}

/* Copies a chunk's rows into the dataset. */
static pt_status stitch_chunk(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    (void)tc;
    (void)err;
    lsvm_job *J = arg;
    lsvm_chunk *c = &J->chunks[i];
    pt_dataset *d = J->d;
    int64_t r0 = J->row_off[i], z0 = J->nnz_off[i];
    for (int64_t r = 0; r < c->nrows; r++) {
        double lab = c->y[r];
        d->y[r0 + r] = J->map_neg1 && lab == -1.0 ? 0.0 : lab;
        d->row_id[r0 + r] = J->row_base + r0 + r;
    }
    if (d->sparse) {
        for (int64_t r = 0; r < c->nrows; r++) d->indptr[r0 + r + 1] = z0 + c->rowptr[r + 1];
        if (c->nnz) {
            memcpy(d->indices + z0, c->idx, (size_t)c->nnz * sizeof(int32_t));
            memcpy(d->values + z0, c->val, (size_t)c->nnz * sizeof(double));
        }
    } else {
        int64_t nf = J->nfeatures;
        double *x = d->x + r0 * nf;
        if (c->nrows) memset(x, 0, (size_t)(c->nrows * nf) * sizeof(double));
        for (int64_t r = 0; r < c->nrows; r++) {
            double *row = x + r * nf;
            for (int64_t k = c->rowptr[r]; k < c->rowptr[r + 1]; k++) row[c->idx[k]] = c->val[k];
        }
    }
    chunk_free(c, J->mem);
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* The file                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct lsvm_map {
    const char *data;
    int64_t len;
    void *mapped; /* munmap on close */
    char *owned;  /* pt_free on close */
} lsvm_map;

static void map_close(lsvm_map *m) {
    if (m->mapped) munmap(m->mapped, (size_t)m->len);
    pt_free(m->owned);
    memset(m, 0, sizeof *m);
}

static pt_status map_open(const char *path, lsvm_map *m, pt_error *err) {
    memset(m, 0, sizeof *m);
    m->data = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return pt_error_set(err, e == ENOENT ? PT_ENOENT : PT_EIO, "%s: cannot open: %s", path,
                            strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        int e = errno;
        close(fd);
        return pt_error_set(err, PT_EIO, "%s: %s", path,
                            S_ISDIR(st.st_mode) ? "is a directory" : strerror(e));
    }
    if (S_ISREG(st.st_mode)) {
        if (st.st_size == 0) {
            close(fd);
            return PT_OK;
        }
        void *b = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (b != MAP_FAILED) {
            close(fd);
            m->mapped = b;
            m->data = b;
            m->len = st.st_size;
            return PT_OK;
        }
    }
    /* pipes and files that cannot be mapped are read whole */
    int64_t cap = S_ISREG(st.st_mode) ? st.st_size + 1 : 1 << 20, len = 0;
    char *buf = pt_malloc((size_t)cap);
    for (;;) {
        if (!buf) {
            close(fd);
            return pt_error_set(err, PT_ENOMEM, "%s: out of memory reading the file", path);
        }
        if (len == cap) {
            char *nb = pt_realloc(buf, (size_t)cap * 2);
            if (!nb) pt_free(buf);
            buf = nb;
            cap *= 2;
            continue;
        }
        ssize_t k = read(fd, buf + len, (size_t)(cap - len));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            pt_free(buf);
            close(fd);
            return pt_error_set(err, PT_EIO, "%s: read failed: %s", path, strerror(e));
        }
        if (k == 0) break;
        len += k;
    }
    close(fd);
    m->owned = buf;
    m->data = buf;
    m->len = len;
    return PT_OK;
}

/* What each rank tells the others after parsing its share. */
enum {
    S_STATUS = 0, /* pt_status of the first failure */
    S_ROWS,
    S_LINES,
    S_NNZ,
    S_MAXIDX,
    S_NEG1,  /* a -1 label was seen */
    S_OTHER, /* a label other than -1 and +1 was seen */
    S_MAXLABEL,
    S_COUNT
};


pt_status pt_libsvm_read(pt_ctx *ctx, pt_comm *comm, const char *path, const pt_libsvm_opts *opts,
                         pt_dataset **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_libsvm_read: out is NULL");
    *out = NULL;
    pt_libsvm_opts defaults;
    if (!opts) {
        pt_libsvm_opts_init(&defaults);
        opts = &defaults;
    }
    const int rank = pt_comm_rank(comm), nranks = pt_comm_size(comm);
    const bool multi = comm && nranks > 1;
    pt_pool *pool = ctx ? pt_ctx_pool(ctx) : NULL;
    pt_mem *mem = ctx ? pt_ctx_mem(ctx) : NULL;
    const char *name = path ? path : "(null)";

    /* Local phase: every failure is kept in `st`/`e` and carried to the
     * exchange, so that no rank leaves before the others know. */
    pt_error e;
    pt_error_clear(&e);
    pt_status st = PT_OK;
    lsvm_map map;
    memset(&map, 0, sizeof map);
    lsvm_chunk *chunks = NULL;
    int64_t nch = 0;
    lsvm_job J;
    memset(&J, 0, sizeof J);
    if (!path) {
        st = pt_error_set(&e, PT_EINVAL, "pt_libsvm_read: path is NULL");
    } else if (opts->nfeatures < 0 || opts->nfeatures > (int64_t)INT32_MAX) {
        st = pt_error_set(&e, PT_EINVAL, "pt_libsvm_read: opts.nfeatures %lld is out of range",
                          (long long)opts->nfeatures);
    } else if (opts->labels != PT_LABELS_AUTO && opts->labels != PT_LABELS_RAW) {
        st = pt_error_set(&e, PT_EINVAL, "pt_libsvm_read: opts.labels %d is unknown",
                          (int)opts->labels);
    } else {
        st = map_open(path, &map, &e);
    }
    if (st == PT_OK) {
        int64_t a = map.len * rank / nranks, b = map.len * (rank + 1) / nranks;
        int64_t share = b - a, cb = g_chunk_bytes;
        if (cb <= 0) {
            int threads = pool ? pt_pool_threads(pool) : 1;
            cb = share / (threads * 4);
            if (cb < (256 << 10)) cb = 256 << 10;
            if (cb > (64 << 20)) cb = 64 << 20;
        }
        nch = share > 0 ? (share + cb - 1) / cb : 0;
        chunks = pt_calloc((size_t)(nch ? nch : 1), sizeof *chunks);
        if (!chunks) {
            nch = 0;
            st = pt_error_set(&e, PT_ENOMEM, "%s: out of memory", name);
        } else {
            for (int64_t i = 0; i < nch; i++) {
                chunks[i].lo = a + i * cb;
                chunks[i].hi = i == nch - 1 ? b : a + (i + 1) * cb;
                chunks[i].err_line = -1;
                chunks[i].neg1_line = -1;
            }
            if (map.mapped && share > 0) {
                /* read ahead this rank's share only */
                uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
                uintptr_t s0 = ((uintptr_t)map.data + (uintptr_t)a) & ~(pg - 1);
                (void)madvise((void *)s0, (size_t)((uintptr_t)map.data + (uintptr_t)b - s0),
                              MADV_WILLNEED);
            }
            J.data = map.data;
            J.len = map.len;
            J.opts = opts;
            J.mem = mem;
            J.chunks = chunks;
            if (map.len > 0 && map.data[map.len - 1] != '\n') {
                const char *nl = memrchr(map.data, '\n', (size_t)map.len);
                J.tail = nl ? nl + 1 : map.data;
                J.tail_len = map.data + map.len - J.tail;
                J.tail_copy = pt_malloc((size_t)J.tail_len + 1);
                if (!J.tail_copy) {
                    st = pt_error_set(&e, PT_ENOMEM, "%s: out of memory", name);
                    nch = 0;
                } else {
                    memcpy(J.tail_copy, J.tail, (size_t)J.tail_len);
                    J.tail_copy[J.tail_len] = '\n';
                }
            }
            if (st == PT_OK) st = pt_parallel_for(pool, nch, parse_chunk, &J, NULL, &e);
        }
    }
    /* The first failing chunk in line order speaks for this rank. */
    int64_t sum[S_COUNT] = {0};
    int64_t fail_chunk = -1, neg1_chunk = -1, lines_before_fail = 0, lines_before_neg1 = 0;
    for (int64_t i = 0; i < nch; i++) {
        lsvm_chunk *c = &chunks[i];
        if (st == PT_OK && c->st != PT_OK && fail_chunk < 0) {
            fail_chunk = i;
            lines_before_fail = sum[S_LINES];
        }
        if (c->has_neg1 && neg1_chunk < 0) {
            neg1_chunk = i;
            lines_before_neg1 = sum[S_LINES];
        }
        sum[S_ROWS] += c->nrows;
        sum[S_LINES] += c->nlines;
        sum[S_NNZ] += c->nnz;
        if (c->maxidx > sum[S_MAXIDX]) sum[S_MAXIDX] = c->maxidx;
        sum[S_NEG1] |= c->has_neg1;
        sum[S_OTHER] |= c->has_other;
        if (c->maxlabel > sum[S_MAXLABEL]) sum[S_MAXLABEL] = c->maxlabel;
    }
    if (st == PT_OK && fail_chunk >= 0) st = chunks[fail_chunk].st;
    sum[S_STATUS] = st;

    /* Exchange: one allgather of the per-rank counts. */
    int64_t *all = pt_malloc((size_t)nranks * S_COUNT * sizeof(int64_t));
    pt_status xs = PT_OK;
    pt_error xe;
    if (!all) {
        xs = pt_error_set(&xe, PT_ENOMEM, "%s: out of memory", name);
    } else if (multi) {
        xs = pt_comm_allgather(comm, sum, (int64_t)sizeof sum, all, &xe);
    } else {
        memcpy(all, sum, sizeof sum);
    }
    if (xs != PT_OK) {
        /* the comm is failed or we are out of memory: nothing more can be agreed */
        if (err) *err = xe;
        goto done;
    }
    int64_t row_base = 0, line_base = 0, rows_global = 0, maxidx = 0, maxlabel = 0;
    int first_fail = -1, first_neg1 = -1;
    bool neg1 = false, other = false;
    for (int r = 0; r < nranks; r++) {
        const int64_t *s = all + (int64_t)r * S_COUNT;
        if (r < rank) {
            row_base += s[S_ROWS];
            line_base += s[S_LINES];
        }
        rows_global += s[S_ROWS];
        if (s[S_STATUS] != PT_OK && first_fail < 0) first_fail = r;
        if (s[S_NEG1] && first_neg1 < 0) first_neg1 = r;
        if (s[S_MAXIDX] > maxidx) maxidx = s[S_MAXIDX];
        if (s[S_MAXLABEL] > maxlabel) maxlabel = s[S_MAXLABEL];
        neg1 |= s[S_NEG1] != 0;
        other |= s[S_OTHER] != 0;
    }
    if (first_fail >= 0) {
        if (st != PT_OK && fail_chunk >= 0 && chunks[fail_chunk].err_line >= 0) {
            lsvm_chunk *c = &chunks[fail_chunk];
            pt_error_set(err, st, "%s:%lld:%d: %s", name,
                         (long long)(line_base + lines_before_fail + c->err_line + 1), c->err_col,
                         c->err_msg);
        } else if (st != PT_OK && fail_chunk >= 0) {
            pt_error_set(err, st, "%s: %s", name, chunks[fail_chunk].err_msg);
        } else if (st != PT_OK) {
            if (err) *err = e;
        } else {
            pt_error_set(err, (pt_status)all[(int64_t)first_fail * S_COUNT + S_STATUS],
                         "%s: rank %d failed to read its share of the file (see its message)",
                         name, first_fail);
        }
        if (st == PT_OK) st = (pt_status)all[(int64_t)first_fail * S_COUNT + S_STATUS];
        goto done;
    }
    if (opts->labels == PT_LABELS_AUTO && neg1 && other) {
        st = PT_EPARSE;
        if (rank == first_neg1) {
            lsvm_chunk *c = &chunks[neg1_chunk];
            pt_error_set(err, st,
                         "%s:%lld:%d: label '%s' is not a class id (-1 is read as class 0 only "
                         "when every other label is +1; use raw labels for regression)",
                         name, (long long)(line_base + lines_before_neg1 + c->neg1_line + 1),
                         c->neg1_col, c->neg1_text);
        } else {
            pt_error_set(err, st,
                         "%s: labels mix -1 with class ids other than +1 (rank %d reports where)",
                         name, first_neg1);
        }
        goto done;
    }

    /* Stitch this rank's pieces in line order. */
    {
        int64_t nf = opts->nfeatures > 0 ? opts->nfeatures : maxidx;
        int64_t nrows = sum[S_ROWS], nnz = sum[S_NNZ];
        pt_dataset *d = pt_calloc(1, sizeof *d);
        int64_t *offs = pt_malloc((size_t)(2 * nch + 2) * sizeof(int64_t));
        bool ok = d && offs;
        if (ok) {
            d->nrows = nrows;
            d->nrows_global = rows_global;
            d->nfeatures = nf;
            d->sparse = !opts->dense;
            d->nclasses = opts->labels == PT_LABELS_RAW ? 0
                          : neg1                        ? 2
                          : rows_global > 0             ? (int)(maxlabel + 1)
                                                        : 0;
            d->y = pt_malloc((size_t)nrows * sizeof(double));
            d->row_id = pt_malloc((size_t)nrows * sizeof(int64_t));
            ok = d->y && d->row_id;
            if (d->sparse) {
                d->indptr = pt_malloc((size_t)(nrows + 1) * sizeof(int64_t));
                d->indices = advise_huge(pt_malloc((size_t)nnz * sizeof(int32_t)), (size_t)nnz * sizeof(int32_t));
                d->values = advise_huge(pt_malloc((size_t)nnz * sizeof(double)), (size_t)nnz * sizeof(double));
                ok = ok && d->indptr && d->indices && d->values;
                if (ok) d->indptr[0] = 0;
            } else if (nf > 0 && nrows > INT64_MAX / 8 / nf) {
                ok = false;
            } else {
                d->x = advise_huge(pt_malloc((size_t)(nrows * nf) * sizeof(double)), (size_t)(nrows * nf) * sizeof(double));
                ok = ok && d->x;
            }
        }
        if (!ok) {
            pt_free(offs);
            pt_dataset_free(d);
            st = pt_error_set(err, PT_ENOMEM, "%s: out of memory for %lld rows", name,
                              (long long)sum[S_ROWS]);
        } else {
            int64_t *row_off = offs, *nnz_off = offs + nch + 1;
            row_off[0] = nnz_off[0] = 0;
            for (int64_t i = 0; i < nch; i++) {
                row_off[i + 1] = row_off[i] + chunks[i].nrows;
                nnz_off[i + 1] = nnz_off[i] + chunks[i].nnz;
            }
            J.row_off = row_off;
            J.nnz_off = nnz_off;
            J.row_base = row_base;
            J.nfeatures = nf;
            J.map_neg1 = opts->labels == PT_LABELS_AUTO && neg1;
            J.d = d;
            st = pt_parallel_for(pool, nch, stitch_chunk, &J, NULL, err);
            pt_free(offs);
            if (st == PT_OK) {
                *out = d;
            } else {
                pt_dataset_free(d);
            }
        }
    }
    /* A failure after the exchange (memory) must reach every rank too. */
    if (multi) {
        int64_t *fl = all; /* reuse: nranks entries */
        int64_t mine = st;
        pt_error ae;
        pt_status as = pt_comm_allgather(comm, &mine, (int64_t)sizeof mine, fl, &ae);
        if (as != PT_OK) {
            if (st == PT_OK && err) *err = ae;
            if (st == PT_OK) st = as;
        } else if (st == PT_OK) {
            for (int r = 0; r < nranks; r++) {
                if (fl[r] != PT_OK) {
                    st = pt_error_set(err, (pt_status)fl[r],
                                      "%s: rank %d failed to read its share of the file (see its "
                                      "message)",
                                      name, r);
                    break;
                }
            }
        }
        if (st != PT_OK && *out) {
            pt_dataset_free(*out);
            *out = NULL;
        }
    }
done:
    if (xs != PT_OK) st = xs;
    for (int64_t i = 0; i < nch; i++) chunk_free(&chunks[i], mem);
    pt_free(chunks);
    pt_free(all);
    pt_free(J.tail_copy);
    map_close(&map);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

/* Formats v so that strtod gives it back exactly; integers (the common
 * case for labels and pixel data) skip snprintf. */
static int fmt_num(char *buf, double v) {
    if (v == floor(v) && fabs(v) < 1e15) {
        long long iv = (long long)v;
        char tmp[24];
        int n = 0;
        unsigned long long u = iv < 0 ? (unsigned long long)(-iv) : (unsigned long long)iv;
        do {
            tmp[n++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        int k = 0;
        if (iv < 0 || (v == 0 && signbit(v))) buf[k++] = '-';
        while (n) buf[k++] = tmp[--n];
        return k;
    }
    return snprintf(buf, 32, "%.17g", v);
}

pt_status pt_libsvm_write(const pt_dataset *d, const char *path, pt_error *err) {
    if (!d) return pt_error_set(err, PT_EINVAL, "pt_libsvm_write: d is NULL");
    if (!path) return pt_error_set(err, PT_EINVAL, "pt_libsvm_write: path is NULL");
    FILE *f = fopen(path, "wb");
    if (!f) {
        int e = errno;
        return pt_error_set(err, e == ENOENT ? PT_ENOENT : PT_EIO, "%s: cannot create: %s", path,
                            strerror(e));
    }
    const size_t cap = 1 << 20;
    char *buf = pt_malloc(cap);
    if (!buf) {
        fclose(f);
        return pt_error_set(err, PT_ENOMEM, "%s: out of memory", path);
    }
    size_t n = 0;
    bool ioerr = false;
#define FLUSH_IF(room)                                                          \
    do {                                                                       \
        if (n + (room) > cap) {                                                \
            if (fwrite(buf, 1, n, f) != n) ioerr = true;                       \
            n = 0;                                                             \
        }                                                                      \
    } while (0)
    for (int64_t r = 0; r < d->nrows && !ioerr; r++) {
        FLUSH_IF(64);
        n += (size_t)fmt_num(buf + n, d->y ? d->y[r] : 0.0);
        if (d->sparse) {
            for (int64_t k = d->indptr[r]; k < d->indptr[r + 1]; k++) {
                if (d->values[k] == 0) continue;
                FLUSH_IF(64);
                n += (size_t)snprintf(buf + n, 16, " %d:", (int)d->indices[k] + 1);
                n += (size_t)fmt_num(buf + n, d->values[k]);
            }
        } else {
            const double *x = d->x + r * d->nfeatures;
            for (int64_t j = 0; j < d->nfeatures; j++) {
                if (x[j] == 0) continue;
                FLUSH_IF(64);
                n += (size_t)snprintf(buf + n, 24, " %lld:", (long long)j + 1);
                n += (size_t)fmt_num(buf + n, x[j]);
            }
        }
        buf[n++] = '\n';
    }
#undef FLUSH_IF
    if (!ioerr && n && fwrite(buf, 1, n, f) != n) ioerr = true;
    int e = errno;
    pt_free(buf);
    if (fclose(f) != 0 && !ioerr) {
        ioerr = true;
        e = errno;
    }
    if (ioerr) return pt_error_set(err, PT_EIO, "%s: write failed: %s", path, strerror(e));
    return PT_OK;
}
