/*
 * sort_gather.c - builds the sorted table: gathers rows named by ids
 * (partition << 40 | row) from many partitions into new columns, with the
 * work split into (column, row range) tasks so that both a wide table and a
 * single long column keep every thread busy.
 *
 * Row ranges are multiples of 64 rows, so tasks never share a byte of a
 * bitmap. Text columns take two rounds: lengths first (then the byte buffer
 * is sized once), bytes second.
 */
#include <string.h>

#include "frame/sort_internal.h"

#define GATHER_CHUNK_MIN 8192

typedef struct gcol {
    pt_type type;
    pt_column **src;     /* per partition */
    pt_column *out;
    bool nulls;          /* some source row may be null */
    const uint32_t *const *map; /* dict with several dictionaries: index -> unified */
    pt__sort_dictmap dm;
    int64_t *chunk_nulls;
    int64_t *chunk_bytes;
} gcol;

typedef struct gjob {
    gcol *cols;
    int ncols;
    const uint64_t *ids;
    int64_t stride, n, chunk, nchunks;
    bool single;   /* one partition: ids are row numbers */
    int *text_cols;
    int ntext;
} gjob;

#define ID_AT(i) (j->ids[(i) * j->stride])
#define SRC_OF(id) (g->src[(id) >> PT__SORT_PSHIFT])
#define ROW_OF(id) ((int64_t)((id) & PT__SORT_RMASK))

/* Rows come in random order, so every read misses the cache (and the TLB):
 * the loops prefetch the source of the row PF rows ahead, which keeps many
 * misses in flight instead of one. */
#define PF 16

static inline const pt_column *src_at(const gjob *j, const gcol *g, int64_t i, int64_t *row) {
    uint64_t id = ID_AT(i);
    *row = ROW_OF(id);
    return SRC_OF(id);
}

static inline void pf_value(const gjob *j, const gcol *g, int64_t i, int64_t b, int width) {
    if (i >= b) return;
    int64_t r;
    const pt_column *c = src_at(j, g, i, &r);
    __builtin_prefetch(c->values->data + (c->offset + r) * width);
}

static void gather_fixed(const gjob *j, gcol *g, int64_t a, int64_t b) {
    pt_column *o = g->out;
    switch (g->type) {
    case PT_TYPE_INT32:
    case PT_TYPE_FLOAT32:
    case PT_TYPE_DICT: {
        int32_t *d = (int32_t *)o->values->data;
        if (g->map) {
            for (int64_t i = a; i < b; i++) {
                pf_value(j, g, i + PF, b, 4);
                int64_t r;
                const pt_column *c = src_at(j, g, i, &r);
                d[i] = pt_column_is_valid(c, r)
                           ? (int32_t)g->map[ID_AT(i) >> PT__SORT_PSHIFT][pt_column_i32(c)[r]]
                           : 0;
            }
        } else if (j->single) {
            const int32_t *s = pt_column_i32(g->src[0]);
            int64_t i = a;
            for (; i + PF < b; i++) {
                __builtin_prefetch(&s[ROW_OF(ID_AT(i + PF))]);
                d[i] = s[ROW_OF(ID_AT(i))];
            }
            for (; i < b; i++) d[i] = s[ROW_OF(ID_AT(i))];
        } else {
            for (int64_t i = a; i < b; i++) {
                pf_value(j, g, i + PF, b, 4);
                int64_t r;
                d[i] = pt_column_i32(src_at(j, g, i, &r))[r];
            }
        }
        break;
    }
    case PT_TYPE_INT64:
    case PT_TYPE_FLOAT64: {
        int64_t *d = (int64_t *)o->values->data;
        if (j->single) {
            const int64_t *s = pt_column_i64(g->src[0]);
            int64_t i = a;
            for (; i + PF < b; i++) {
                __builtin_prefetch(&s[ROW_OF(ID_AT(i + PF))]);
                d[i] = s[ROW_OF(ID_AT(i))];
            }
            for (; i < b; i++) d[i] = s[ROW_OF(ID_AT(i))];
        } else {
            for (int64_t i = a; i < b; i++) {
                pf_value(j, g, i + PF, b, 8);
                int64_t r;
                d[i] = pt_column_i64(src_at(j, g, i, &r))[r];
            }
        }
        break;
    }
    case PT_TYPE_BOOL: {
        uint8_t *d = o->values->data;
        for (int64_t i = a; i < b; i++) {
            int64_t r;
            const pt_column *c = src_at(j, g, i, &r);
            if (pt_column_bool(c, r)) pt_bit_set(d, i);
        }
        break;
    }
    case PT_TYPE_UTF8: {
        /* Round one: lengths into offsets[i + 1]. */
        int64_t *off = (int64_t *)o->values->data;
        int64_t sum = 0;
        for (int64_t i = a; i < b; i++) {
            pf_value(j, g, i + PF, b, 8);
            int64_t r;
            const pt_column *c = src_at(j, g, i, &r);
            const int64_t *so = (const int64_t *)c->values->data + c->offset;
            int64_t len = so[r + 1] - so[r];
            off[i + 1] = len;
            sum += len;
        }
        g->chunk_bytes[a / j->chunk] = sum;
        break;
    }
    default: break;
    }
    if (g->nulls && g->type != PT_TYPE_NULL) {
        uint8_t *v = o->validity->data;
        int64_t nulls = 0;
        for (int64_t i = a; i < b; i++) {
            if (i + PF < b) {
                int64_t r;
                const pt_column *c = src_at(j, g, i + PF, &r);
                if (c->validity) __builtin_prefetch(c->validity->data + ((c->offset + r) >> 3));
            }
            int64_t r;
            const pt_column *c = src_at(j, g, i, &r);
            if (pt_column_is_valid(c, r)) {
                pt_bit_set(v, i);
            } else {
                nulls++;
            }
        }
        g->chunk_nulls[a / j->chunk] = nulls;
    }
}

static pt_status gather_task(pt_task_ctx *tc, void *arg, int64_t t, pt_error *err) {
    (void)tc;
    (void)err;
    gjob *j = arg;
    gcol *g = &j->cols[t / j->nchunks];
    int64_t c = t % j->nchunks;
    int64_t a = c * j->chunk, b = a + j->chunk < j->n ? a + j->chunk : j->n;
    if (a < b) gather_fixed(j, g, a, b);
    return PT_OK;
}

/* Round two for text: turns lengths into offsets and copies the bytes. */
static pt_status text_task(pt_task_ctx *tc, void *arg, int64_t t, pt_error *err) {
    (void)tc;
    (void)err;
    gjob *j = arg;
    gcol *g = &j->cols[j->text_cols[t / j->nchunks]];
    int64_t c = t % j->nchunks;
    int64_t a = c * j->chunk, b = a + j->chunk < j->n ? a + j->chunk : j->n;
    if (a >= b) return PT_OK;
    int64_t pos = g->chunk_bytes[c]; /* start of this chunk after the prefix sum */
    int64_t *off = (int64_t *)g->out->values->data;
    uint8_t *dst = g->out->bytes->data;
    for (int64_t i = a; i < b; i++) {
        /* Offsets of row i + 2PF, then the bytes of row i + PF. */
        pf_value(j, g, i + 2 * PF, b, 8);
        if (i + PF < b) {
            int64_t r2;
            const pt_column *c2 = src_at(j, g, i + PF, &r2);
            __builtin_prefetch(c2->bytes->data + ((const int64_t *)c2->values->data)[c2->offset + r2]);
        }
        int64_t r;
        const pt_column *src = src_at(j, g, i, &r);
        int64_t len = off[i + 1];
        const uint8_t *from = src->bytes->data + ((const int64_t *)src->values->data)[src->offset + r];
        uint8_t *to = dst + pos;
        /* Short texts (ids, codes) are the common case: no call. */
        if (len <= 16) {
            for (int64_t q = 0; q < len; q++) to[q] = from[q];
        } else {
            memcpy(to, from, (size_t)len);
        }
        pos += len;
        off[i + 1] = pos;
    }
    return PT_OK;
}

/* A utf8 column holding the distinct texts of a dictionary map in rank
 * order: the unified dictionary. */
static pt_status unified_dict(pt_mem *mem, const pt__sort_dictmap *m, pt_column **out,
                              pt_error *err) {
    int64_t bytes = 0, len;
    for (int64_t r = 0; r < m->nranks; r++) {
        uint64_t s = m->rank_src[r];
        (void)pt_column_str(m->dicts[s >> 32], (int64_t)(s & 0xffffffffu), &len);
        bytes += len;
    }
    pt_column *d;
    PT_RETURN_NOT_OK(pt_column_new(mem, PT_TYPE_UTF8, m->nranks, bytes, &d, err));
    int64_t *off = (int64_t *)d->values->data;
    off[0] = 0;
    int64_t pos = 0;
    for (int64_t r = 0; r < m->nranks; r++) {
        uint64_t s = m->rank_src[r];
        const char *t = pt_column_str(m->dicts[s >> 32], (int64_t)(s & 0xffffffffu), &len);
        if (len) memcpy(d->bytes->data + pos, t, (size_t)len);
        pos += len;
        off[r + 1] = pos;
    }
    d->values->size = (m->nranks + 1) * 8;
    d->bytes->size = pos;
    d->length = m->nranks;
    *out = d;
    return PT_OK;
}

static void gcols_free(gcol *gc, int nc, bool release_out) {
    if (!gc) return;
    for (int i = 0; i < nc; i++) {
        pt_free(gc[i].src);
        pt_free((void *)gc[i].map);
        pt__sort_dictmap_reset(&gc[i].dm);
        pt_free(gc[i].chunk_nulls);
        pt_free(gc[i].chunk_bytes);
        if (release_out) pt_column_release(gc[i].out);
    }
    pt_free(gc);
}

/* Creates the output column of g for n rows (text bytes come later). */
static pt_status gcol_prepare(gcol *g, pt_mem *mem, pt_table *const *parts, int64_t nparts,
                              int col, int64_t n, int64_t nchunks, pt_error *err) {
    g->type = parts[0]->schema->fields[col].type;
    g->src = pt_malloc((size_t)nparts * sizeof *g->src);
    g->chunk_nulls = pt_calloc((size_t)nchunks, sizeof *g->chunk_nulls);
    g->chunk_bytes = pt_calloc((size_t)nchunks + 1, sizeof *g->chunk_bytes);
    if (!g->src || !g->chunk_nulls || !g->chunk_bytes)
        return pt_error_set(err, PT_ENOMEM, "sort: out of memory gathering rows");
    for (int64_t p = 0; p < nparts; p++) {
        pt_column *c = parts[p]->cols[col];
        g->src[p] = c;
        if (c->length > 0 && (c->null_count > 0 || c->type == PT_TYPE_NULL)) g->nulls = true;
    }
    if (g->type == PT_TYPE_DICT) {
        bool shared = true;
        for (int64_t p = 1; p < nparts && shared; p++) shared = g->src[p]->dict == g->src[0]->dict;
        if (shared) {
            PT_RETURN_NOT_OK(pt_column_new_dict(mem, g->src[0]->dict, n, &g->out, err));
        } else {
            PT_RETURN_NOT_OK(pt__sort_dictmap_init(&g->dm, parts, nparts, col, true, err));
            const uint32_t **map = pt_malloc((size_t)nparts * sizeof *map);
            if (!map) return pt_error_set(err, PT_ENOMEM, "sort: out of memory gathering rows");
            for (int64_t p = 0; p < nparts; p++) map[p] = g->dm.rank[g->dm.part_dict[p]];
            g->map = map;
            pt_column *d;
            PT_RETURN_NOT_OK(unified_dict(mem, &g->dm, &d, err));
            pt_status st = pt_column_new_dict(mem, d, n, &g->out, err);
            pt_column_release(d);
            PT_RETURN_NOT_OK(st);
        }
    } else {
        PT_RETURN_NOT_OK(pt_column_new(mem, g->type, n, 0, &g->out, err));
    }
    if (g->nulls && g->type != PT_TYPE_NULL) {
        PT_RETURN_NOT_OK(pt_column_ensure_validity(g->out, err));
        /* ensure_validity marks the rows present so far (none) valid;
         * buffers start zeroed, so every row reads null until set. */
    }
    return PT_OK;
}

typedef struct prep_job {
    gcol *gc;
    pt_mem *mem;
    pt_table *const *parts;
    int64_t nparts, n, nchunks;
} prep_job;

static pt_status prep_task(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    (void)tc;
    prep_job *j = arg;
    return gcol_prepare(&j->gc[i], j->mem, j->parts, j->nparts, (int)i, j->n, j->nchunks, err);
}

/* ------------------------------------------------------------------------ */
/* Full permutations: a two-pass scatter instead of random reads            */
/* ------------------------------------------------------------------------ */

/* When the ids are a permutation of every source row (a full sort), a
 * random gather reads each value from a random page: a cache miss and a
 * TLB miss per value per column. Instead, output rows are cut into buckets
 * of 2^shift consecutive rows; pass one reads the sources in order and
 * appends each value to its bucket's stream (a few hundred sequential
 * streams); pass two moves each bucket's values to their rows, all within
 * a region that fits in cache. The bucket of every source row (from the
 * inverse permutation) and the destination of every stream slot are worked
 * out once and shared by all columns. */

#define PERM_MIN (INT64_C(1) << 18)
#define PERM_MAX_BUCKETS 1024

enum { K64, K32, KMAP, KBIT, KBOOL, KLEN, KBYTES };

typedef struct perm {
    pt_table *const *parts;
    int64_t nparts;
    int64_t *starts;      /* nparts + 1 global offsets */
    const uint64_t *ids;
    int64_t stride, n;
    int shift;
    int64_t nb;           /* buckets */
    int64_t nsc;          /* source chunks */
    int64_t ndc;          /* destination chunks (for the inverse) */
    uint32_t *inv;        /* source row -> destination row, then -> stream slot */
    uint32_t *loc;        /* stream slot -> destination row */
    uint8_t *tmp;         /* n slots of up to 8 bytes */
    int64_t *off;         /* nsc * nb: first stream slot of chunk c in bucket b */
    int64_t *boff;        /* nsc * nb: text bytes of chunk c in bucket b, then offsets */
    int64_t *bnulls;      /* nb: nulls seen per bucket (validity passes) */
    /* The column being moved. */
    gcol *g;
    int kind;
    int64_t *out_off;
    uint8_t *tbytes;
} perm;

static inline int64_t part_of(const perm *m, int64_t g) {
    int64_t lo = 0, hi = m->nparts - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (m->starts[mid] <= g) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    return lo;
}

static pt_status inv_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    (void)err;
    perm *m = arg;
    int64_t a = m->n * c / m->ndc, b = m->n * (c + 1) / m->ndc;
    const uint64_t *ids = m->ids;
    int64_t st = m->stride;
    for (int64_t i = a; i < b; i++) {
        uint64_t id = ids[i * st];
        int64_t g = m->starts[id >> PT__SORT_PSHIFT] + (int64_t)(id & PT__SORT_RMASK);
        m->inv[g] = (uint32_t)i;
    }
    return PT_OK;
}

static pt_status hist_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    (void)err;
    perm *m = arg;
    int64_t a = m->n * c / m->nsc, b = m->n * (c + 1) / m->nsc;
    int64_t *cnt = m->off + c * m->nb;
    memset(cnt, 0, (size_t)m->nb * sizeof *cnt);
    for (int64_t g = a; g < b; g++) cnt[m->inv[g] >> m->shift]++;
    return PT_OK;
}

static pt_status loc_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    (void)err;
    perm *m = arg;
    int64_t a = m->n * c / m->nsc, b = m->n * (c + 1) / m->nsc;
    int64_t o[PERM_MAX_BUCKETS];
    memcpy(o, m->off + c * m->nb, (size_t)m->nb * sizeof *o);
    /* Slots of bucket b are numbered like its rows, so a slot also names
     * its bucket (slot >> shift). */
    for (int64_t g = a; g < b; g++) {
        uint32_t v = m->inv[g];
        int64_t slot = o[v >> m->shift]++;
        m->loc[slot] = v;
        m->inv[g] = (uint32_t)slot;
    }
    return PT_OK;
}

/* Pass one: source chunk c appends its values to the bucket streams. The
 * chunk is walked partition by partition so the inner loops are flat. */
#define SCATTER(T, EXPR)                                                       \
    do {                                                                       \
        T *t = (T *)m->tmp;                                                    \
        for (int64_t g = a; g < b;) {                                          \
            const pt_column *c = m->g->src[p];                                 \
            int64_t r = g - m->starts[p];                                      \
            int64_t e = m->starts[p + 1] < b ? m->starts[p + 1] : b;           \
            for (; g < e; g++, r++) {                                          \
                uint32_t v = m->inv[g];                                        \
                t[v] = (T)(EXPR);                                              \
            }                                                                  \
            (void)c;                                                           \
            p++;                                                               \
        }                                                                      \
    } while (0)

static pt_status scatter_task(pt_task_ctx *tc, void *arg, int64_t ci, pt_error *err) {
    (void)tc;
    (void)err;
    perm *m = arg;
    int64_t a = m->n * ci / m->nsc, b = m->n * (ci + 1) / m->nsc;
    if (a >= b) return PT_OK;
    int sh = m->shift;
    int64_t p = part_of(m, a);
    switch (m->kind) {
    case K64: SCATTER(int64_t, pt_column_i64(c)[r]); break;
    case K32: SCATTER(int32_t, pt_column_i32(c)[r]); break;
    case KMAP:
        SCATTER(uint32_t, pt_column_is_valid(c, r) ? m->g->map[p][pt_column_i32(c)[r]] : 0);
        break;
    case KBIT: SCATTER(uint8_t, pt_column_is_valid(c, r)); break;
    case KBOOL: SCATTER(uint8_t, pt_column_bool(c, r)); break;
    case KLEN: {
        int64_t *bc = m->boff + ci * m->nb;
        memset(bc, 0, (size_t)m->nb * sizeof *bc);
        SCATTER(int64_t, (bc[v >> sh] += pt_column_i64(c)[r + 1] - pt_column_i64(c)[r],
                          pt_column_i64(c)[r + 1] - pt_column_i64(c)[r]));
        break;
    }
    case KBYTES: {
        int64_t *bo = m->boff + ci * m->nb;
        for (int64_t g = a; g < b; p++) {
            const pt_column *c = m->g->src[p];
            const int64_t *so = pt_column_i64(c);
            int64_t r = g - m->starts[p];
            int64_t e = m->starts[p + 1] < b ? m->starts[p + 1] : b;
            for (; g < e; g++, r++) {
                int64_t len = so[r + 1] - so[r];
                int64_t *pos = &bo[m->inv[g] >> sh];
                const uint8_t *from = c->bytes->data + so[r];
                uint8_t *to = m->tbytes + *pos;
                if (len <= 16) {
                    for (int64_t q = 0; q < len; q++) to[q] = from[q];
                } else {
                    memcpy(to, from, (size_t)len);
                }
                *pos += len;
            }
        }
        break;
    }
    default: break;
    }
    return PT_OK;
}

/* Pass two: bucket bk moves its stream slots to their rows. */
static pt_status place_task(pt_task_ctx *tc, void *arg, int64_t bk, pt_error *err) {
    (void)tc;
    (void)err;
    perm *m = arg;
    int64_t a = bk << m->shift, b = a + ((int64_t)1 << m->shift);
    if (b > m->n) b = m->n;
    const uint32_t *loc = m->loc;
    pt_column *o = m->g->out;
    switch (m->kind) {
    case K64: {
        const int64_t *t = (const int64_t *)m->tmp;
        int64_t *d = (int64_t *)o->values->data;
        for (int64_t k = a; k < b; k++) d[loc[k]] = t[k];
        break;
    }
    case K32:
    case KMAP: {
        const int32_t *t = (const int32_t *)m->tmp;
        int32_t *d = (int32_t *)o->values->data;
        for (int64_t k = a; k < b; k++) d[loc[k]] = t[k];
        break;
    }
    case KBIT:
    case KBOOL: {
        const uint8_t *t = m->tmp;
        uint8_t *d = m->kind == KBIT ? o->validity->data : o->values->data;
        int64_t zeros = 0;
        for (int64_t k = a; k < b; k++) {
            if (t[k]) {
                pt_bit_set(d, loc[k]);
            } else {
                zeros++;
            }
        }
        m->bnulls[bk] = zeros;
        break;
    }
    case KLEN: {
        const int64_t *t = (const int64_t *)m->tmp;
        for (int64_t k = a; k < b; k++) m->out_off[loc[k] + 1] = t[k];
        break;
    }
    case KBYTES: {
        int64_t pos = m->out_off[a];
        const int64_t *oo = m->out_off;
        uint8_t *d = o->bytes->data;
        for (int64_t k = a; k < b; k++) {
            uint32_t r = loc[k];
            int64_t len = oo[r + 1] - oo[r];
            const uint8_t *from = m->tbytes + pos;
            uint8_t *to = d + oo[r];
            if (len <= 16) {
                for (int64_t q = 0; q < len; q++) to[q] = from[q];
            } else {
                memcpy(to, from, (size_t)len);
            }
            pos += len;
        }
        break;
    }
    default: break;
    }
    return PT_OK;
}

static pt_status perm_pass(pt_pool *pool, perm *m, gcol *g, int kind, pt_error *err) {
    m->g = g;
    m->kind = kind;
    PT_RETURN_NOT_OK(pt_parallel_for(pool, m->nsc, scatter_task, m, NULL, err));
    return pt_parallel_for(pool, m->nb, place_task, m, NULL, err);
}

static pt_status perm_text(pt_pool *pool, pt_mem *mem, perm *m, gcol *g, pt_error *err) {
    pt_column *o = g->out;
    m->out_off = (int64_t *)o->values->data;
    m->out_off[0] = 0;
    PT_RETURN_NOT_OK(perm_pass(pool, m, g, KLEN, err));
    int64_t *oo = m->out_off;
    for (int64_t i = 0; i < m->n; i++) oo[i + 1] += oo[i];
    int64_t total = oo[m->n];
    /* Byte positions of chunk c's text in bucket b's stream, laid out like
     * the bucket's text in the output. */
    for (int64_t bk = 0; bk < m->nb; bk++) {
        int64_t pos = oo[bk << m->shift];
        for (int64_t c = 0; c < m->nsc; c++) {
            int64_t x = m->boff[c * m->nb + bk];
            m->boff[c * m->nb + bk] = pos;
            pos += x;
        }
    }
    PT_RETURN_NOT_OK(pt_column_reserve(o, m->n, total, err));
    o->bytes->size = total;
    PT_RETURN_NOT_OK(pt_mem_reserve(mem, total, "sort text scratch", err));
    m->tbytes = pt_malloc((size_t)(total ? total : 1));
    pt_status st = PT_OK;
    if (!m->tbytes) st = pt_error_set(err, PT_ENOMEM, "sort: out of memory for %lld bytes of text", (long long)total);
    if (st == PT_OK) st = perm_pass(pool, m, g, KBYTES, err);
    pt_free(m->tbytes);
    m->tbytes = NULL;
    pt_mem_release(mem, total);
    return st;
}

/* Moves every column of gc through the permutation. scratch holds at least
 * 16 bytes per row. Sets chunk_nulls[0] to each column's null count. */
static pt_status perm_gather(pt_pool *pool, pt_mem *mem, gcol *gc, int nc, pt_table *const *parts,
                             int64_t nparts, const uint64_t *ids, int64_t stride, int64_t n,
                             void *scratch, pt_error *err) {
    perm m;
    memset(&m, 0, sizeof m);
    int threads = pool ? pt_pool_threads(pool) : 1;
    m.parts = parts;
    m.nparts = nparts;
    m.ids = ids;
    m.stride = stride;
    m.n = n;
    m.shift = 15;
    while ((n >> m.shift) + 1 > PERM_MAX_BUCKETS) m.shift++;
    m.nb = (n + ((int64_t)1 << m.shift) - 1) >> m.shift;
    m.nsc = (int64_t)threads * 4;
    m.ndc = (int64_t)threads * 4;
    m.tmp = scratch;
    m.inv = (uint32_t *)((uint8_t *)scratch + 8 * n);
    m.loc = m.inv + n;
    m.starts = pt_malloc((size_t)(nparts + 1) * sizeof *m.starts);
    m.off = pt_malloc((size_t)(m.nsc * m.nb) * sizeof *m.off);
    m.boff = pt_malloc((size_t)(m.nsc * m.nb) * sizeof *m.boff);
    m.bnulls = pt_malloc((size_t)m.nb * sizeof *m.bnulls);
    pt_status st = PT_OK;
    if (!m.starts || !m.off || !m.boff || !m.bnulls)
        st = pt_error_set(err, PT_ENOMEM, "sort: out of memory gathering rows");
    if (st == PT_OK) {
        m.starts[0] = 0;
        for (int64_t p = 0; p < nparts; p++) m.starts[p + 1] = m.starts[p] + parts[p]->nrows;
        st = pt_parallel_for(pool, m.ndc, inv_task, &m, NULL, err);
    }
    if (st == PT_OK) st = pt_parallel_for(pool, m.nsc, hist_task, &m, NULL, err);
    if (st == PT_OK) {
        for (int64_t bk = 0; bk < m.nb; bk++) {
            int64_t base = bk << m.shift;
            for (int64_t c = 0; c < m.nsc; c++) {
                int64_t x = m.off[c * m.nb + bk];
                m.off[c * m.nb + bk] = base;
                base += x;
            }
        }
        st = pt_parallel_for(pool, m.nsc, loc_task, &m, NULL, err);
    }
    for (int i = 0; i < nc && st == PT_OK; i++) {
        gcol *g = &gc[i];
        switch (g->type) {
        case PT_TYPE_NULL: break;
        case PT_TYPE_BOOL: st = perm_pass(pool, &m, g, KBOOL, err); break;
        case PT_TYPE_INT32:
        case PT_TYPE_FLOAT32: st = perm_pass(pool, &m, g, K32, err); break;
        case PT_TYPE_DICT: st = perm_pass(pool, &m, g, g->map ? KMAP : K32, err); break;
        case PT_TYPE_UTF8: st = perm_text(pool, mem, &m, g, err); break;
        default: st = perm_pass(pool, &m, g, K64, err); break;
        }
        if (st == PT_OK && g->nulls && g->type != PT_TYPE_NULL) {
            st = perm_pass(pool, &m, g, KBIT, err);
            int64_t nulls = 0;
            for (int64_t bk = 0; bk < m.nb; bk++) nulls += m.bnulls[bk];
            g->chunk_nulls[0] = nulls;
        }
    }
    pt_free(m.starts);
    pt_free(m.off);
    pt_free(m.boff);
    pt_free(m.bnulls);
    return st;
}

pt_status pt__sort_gather(pt_pool *pool, pt_mem *mem, pt_table *const *parts, int64_t nparts,
                          const uint64_t *ids, int64_t stride, int64_t n, void *scratch,
                          int64_t scratch_bytes, pt_table **out, pt_error *err) {
    *out = NULL;
    const pt_schema *s0 = parts[0]->schema;
    int nc = s0->nfields;
    int threads = pool ? pt_pool_threads(pool) : 1;
    int64_t chunk = n / ((int64_t)threads * 8);
    if (chunk < GATHER_CHUNK_MIN) chunk = GATHER_CHUNK_MIN;
    chunk = (chunk + 63) & ~(int64_t)63;
    int64_t nchunks = n > 0 ? (n + chunk - 1) / chunk : 1;
    gcol *gc = pt_calloc((size_t)(nc ? nc : 1), sizeof *gc);
    int *text = pt_malloc((size_t)(nc ? nc : 1) * sizeof *text);
    pt_status st = PT_OK;
    if (!gc || !text) st = pt_error_set(err, PT_ENOMEM, "sort: out of memory gathering rows");
    /* New buffers are zeroed as they are allocated: one column per task
     * spreads that first touch of the memory over the threads. */
    prep_job pj = {gc, mem, parts, nparts, n, nchunks};
    if (st == PT_OK && nc > 0)
        st = n >= GATHER_CHUNK_MIN ? pt_parallel_for(pool, nc, prep_task, &pj, NULL, err)
                                   : prep_task(NULL, &pj, 0, err);
    for (int i = 1; i < nc && st == PT_OK && n < GATHER_CHUNK_MIN; i++) st = prep_task(NULL, &pj, i, err);
    int ntext = 0;
    for (int i = 0; i < nc && st == PT_OK; i++)
        if (gc[i].type == PT_TYPE_UTF8) text[ntext++] = i;
    gjob j = {gc, nc, ids, stride, n, chunk, nchunks, nparts == 1, text, ntext};
    int64_t total = 0;
    for (int64_t p = 0; p < nparts; p++) total += parts[p]->nrows;
    if (st == PT_OK && scratch && scratch_bytes >= 16 * n && n == total && n >= PERM_MIN &&
        n < (INT64_C(1) << 32)) {
        st = perm_gather(pool, mem, gc, nc, parts, nparts, ids, stride, n, scratch, err);
        ntext = 0; /* done */
    } else if (st == PT_OK && n > 0 && nc > 0) {
        st = pt_parallel_for(pool, (int64_t)nc * nchunks, gather_task, &j, NULL, err);
    }
    /* Prefix sums of the text bytes per chunk, then the byte buffers. */
    for (int t = 0; t < ntext && st == PT_OK && n > 0; t++) {
        gcol *g = &gc[text[t]];
        int64_t sum = 0;
        for (int64_t c = 0; c < nchunks; c++) {
            int64_t x = g->chunk_bytes[c];
            g->chunk_bytes[c] = sum;
            sum += x;
        }
        st = pt_column_reserve(g->out, n, sum, err);
        if (st == PT_OK) g->out->bytes->size = sum;
    }
    if (st == PT_OK && ntext > 0 && n > 0)
        st = pt_parallel_for(pool, (int64_t)ntext * nchunks, text_task, &j, NULL, err);
    pt_column **cols = NULL;
    if (st == PT_OK) {
        cols = pt_malloc((size_t)(nc ? nc : 1) * sizeof *cols);
        if (!cols) st = pt_error_set(err, PT_ENOMEM, "sort: out of memory gathering rows");
    }
    if (st != PT_OK) {
        gcols_free(gc, nc, true);
        pt_free(text);
        return st;
    }
    for (int i = 0; i < nc; i++) {
        gcol *g = &gc[i];
        pt_column *o = g->out;
        o->length = n;
        switch (g->type) {
        case PT_TYPE_NULL: break;
        case PT_TYPE_BOOL: o->values->size = (n + 7) / 8; break;
        case PT_TYPE_UTF8: o->values->size = (n + 1) * 8; break;
        default: o->values->size = n * pt_type_width(g->type); break;
        }
        if (g->type == PT_TYPE_NULL) {
            o->null_count = n;
            if (o->validity) o->validity->size = (n + 7) / 8;
        } else if (g->nulls) {
            int64_t nulls = 0;
            for (int64_t c = 0; c < nchunks; c++) nulls += g->chunk_nulls[c];
            o->null_count = nulls;
            o->validity->size = (n + 7) / 8;
            if (nulls == 0) {
                pt_buffer_release(o->validity);
                o->validity = NULL;
            }
        }
        cols[i] = o;
        g->out = NULL;
    }
    gcols_free(gc, nc, false);
    pt_free(text);
    pt_schema *schema;
    st = pt_schema_copy(s0, &schema, err);
    if (st != PT_OK) {
        for (int i = 0; i < nc; i++) pt_column_release(cols[i]);
        pt_free(cols);
        return st;
    }
    st = pt_table_new(schema, cols, out, err);
    pt_free(cols);
    if (st == PT_OK) (*out)->nrows = n;
    return st;
}
