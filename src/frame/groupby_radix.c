/*
 * groupby_radix.c - the partitioned ("radix") form of the in-memory
 * group-by, for inputs with many groups.
 *
 * When the tables of groups are much larger than a core's cache (up to one
 * group per row, as when grouping G1 by all its id columns), nearly every
 * probe of the plain path misses the cache, and the per-thread tables must
 * then be merged. Here instead:
 *  1. Scatter. Each morsel of input rows is encoded (key words, hash) and
 *     its rows are counting-sorted by the top bits of the hash into R radix
 *     partitions, within the morsel's own region of flat arrays: the key
 *     words and each aggregate's loaded input (value, null mask). The
 *     writes of a morsel stay within a few MiB of memory.
 *  2. Aggregate and emit. Each radix partition (its slice of every
 *     morsel's region) is aggregated on its own, in parallel, into a table
 *     sized for the cache. A group lives in exactly one partition, so
 *     nothing needs merging: the partition's groups go straight from the
 *     table, still in cache, to the result, at rows (and text bytes) it
 *     claims under a lock. The result's buffers are allocated up front for
 *     the worst case (a group per row) but not zeroed, so the pages beyond
 *     the groups are never touched. The row order of the result thus
 *     depends on the order in which partitions finish.
 * R follows an estimate of the number of groups from a sample of the rows
 * (a HyperLogLog sketch). Only keys made of words (no long texts) and
 * aggregates whose state is a few numbers (not MEDIAN, COUNT_DISTINCT,
 * FIRST, LAST or text MIN/MAX) qualify. When they do not, when the estimate
 * is small, or when the budget refuses the buffers, pt__gb_radix returns no
 * table and the caller runs the plain path; the input is never modified.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "col/col_internal.h"
#include "frame/groupby.h"

#define RX_MORSEL (1 << 16)       /* rows scattered together */
#define RX_SAMPLE_EVERY 32        /* one piece in this many is sampled */
#define RX_SAMPLE_ROWS 256        /* rows per sampled piece */
#define RX_HLL_BITS 12            /* 4096 registers: about 1.6% error */
#define RX_TABLE_BYTES (1 << 20)  /* aim for partition tables this large */
#define RX_MIN_TABLE (8 << 20)    /* plain path below this estimated size */
#define RX_MAX_BITS 10
#define RX_ARENA_CHUNK ((int64_t)32 << 20)
#define RX_MAX_STREAMS (4 * GB_MAX_AGGS) /* value, mask; CORR: two of each */

/* One flat array of loaded inputs, one element per input row, in scatter
 * order: int64 values, double values, or a null mask (1 = valid). */
enum { RX_I64, RX_F64, RX_OK };
typedef struct rx_stream {
    int col, kind, dm;
    uint8_t *data;
} rx_stream;

typedef struct rx_morsel {
    int64_t part, r0, n, pos; /* pos: first row of its region */
} rx_morsel;

/* What a worker thread keeps between tasks. */
typedef struct rx_worker {
    gb_local *L;      /* chunk buffers; parts[0] is the partition table */
    uint64_t *kbuf;   /* RX_MORSEL * kw key words of the morsel */
    uint16_t *pid;    /* radix partition of each row of the morsel */
    uint32_t *dst;    /* its place in the morsel's region */
    int64_t *cnt;     /* R + 1 */
    uint8_t *hll;     /* sample sketch */
} rx_worker;

typedef struct rx {
    gb_stream *g;
    pt_table *const *parts;
    int64_t nparts, rows;
    int bits;
    int64_t R;
    rx_morsel *m;
    int64_t nm;
    int32_t *moff; /* nm * (R + 1): partition starts within each region */
    uint64_t *keys;
    rx_stream st[RX_MAX_STREAMS];
    int ns;
    int vs[GB_MAX_AGGS], os[GB_MAX_AGGS], vs2[GB_MAX_AGGS], os2[GB_MAX_AGGS];
    int nw;
    rx_worker *w;
    int64_t est_groups;
    int64_t charged; /* bytes of the flat arrays reserved from the budget */
    pt_column **cols;
    int ncols;
    int64_t *col_cap;  /* per result column: text bytes room */
    pthread_mutex_t mu; /* guards the claims: */
    int64_t rows_out;
    int64_t *col_bytes; /* per result column: text bytes claimed */
} rx;

static int worker_slot(const rx *x, pt_task_ctx *tc) {
    int w = pt_task_ctx_worker(tc);
    return w >= 0 && w < x->nw - 1 ? w : x->nw - 1;
}

/* Large arrays are touched once, sequentially: huge pages spare most of
 * the page faults. */
static void *big_alloc(size_t bytes) {
    void *p = pt_malloc(bytes);
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (p && bytes >= 2 * huge) {
        uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1);
        uintptr_t b = ((uintptr_t)p + bytes) & ~(huge - 1);
        if (b > a) (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
    }
#endif
    return p;
}

/* ------------------------------------------------------------------------ */
/* Eligibility and the estimate                                             */
/* ------------------------------------------------------------------------ */

static bool eligible(const gb_stream *g) {
    if (g->direct || g->nstr > 0 || g->nkeys == 0) return false;
    for (int j = 0; j < g->naggs; j++) {
        const gb_agg *a = &g->aggs[j];
        if (a->holistic || a->str || a->kind == PT_AGG_FIRST || a->kind == PT_AGG_LAST)
            return false;
    }
    return true;
}

static int64_t group_bytes(const gb_stream *g) { return 8 + 8 * (int64_t)g->rs + 16; }

typedef struct sample_job {
    rx *x;
    int64_t sampled; /* rows */
} sample_job;

static pt_status sample_task(pt_task_ctx *tc, void *arg, int64_t p, pt_error *err) {
    (void)err;
    sample_job *sj = arg;
    rx *x = sj->x;
    gb_stream *g = x->g;
    rx_worker *W = &x->w[worker_slot(x, tc)];
    gb_local *L = W->L;
    const pt_table *t = x->parts[p];
    const int32_t *const *maps = g->pmaps ? g->pmaps + p * g->ndm : NULL;
    int64_t got = 0;
    /* pieces of RX_SAMPLE_ROWS rows, one in RX_SAMPLE_EVERY, picked by a
     * hash of (partition, piece): partitions that repeat one another are
     * not sampled at the same places */
    for (int64_t r0 = 0; r0 < t->nrows; r0 += RX_SAMPLE_ROWS) {
        if (pt_hash_u64((uint64_t)p * 0x9e3779b97f4a7c15ULL + (uint64_t)r0) % RX_SAMPLE_EVERY) continue;
        int64_t n = t->nrows - r0 < RX_SAMPLE_ROWS ? t->nrows - r0 : RX_SAMPLE_ROWS;
        pt__gb_encode(g, L, t, maps, r0, n);
        for (int64_t i = 0; i < n; i++) {
            uint64_t h = L->h[i];
            uint32_t reg = (uint32_t)(h >> (64 - RX_HLL_BITS));
            uint64_t rest = h << RX_HLL_BITS | ((uint64_t)1 << (RX_HLL_BITS - 1));
            uint8_t rank = (uint8_t)(__builtin_clzll(rest) + 1);
            if (rank > W->hll[reg]) W->hll[reg] = rank;
        }
        got += n;
    }
    __atomic_fetch_add(&sj->sampled, got, __ATOMIC_RELAXED);
    return PT_OK;
}

/* Distinct keys among the sampled rows (HyperLogLog with the small-range
 * correction), then the number of groups G of the whole input that would
 * show that many in a uniform sample of s rows: G (1 - exp(-s / G)) = d. */
static pt_status estimate_groups(rx *x, pt_error *err) {
    const int m = 1 << RX_HLL_BITS;
    for (int i = 0; i < x->nw; i++) memset(x->w[i].hll, 0, (size_t)m);
    sample_job sj = {x, 0};
    PT_RETURN_NOT_OK(pt_parallel_for(pt_ctx_pool(x->g->ctx), x->nparts, sample_task, &sj, NULL, err));
    double sum = 0;
    int zeros = 0;
    for (int r = 0; r < m; r++) {
        uint8_t mx = 0;
        for (int i = 0; i < x->nw; i++) mx = x->w[i].hll[r] > mx ? x->w[i].hll[r] : mx;
        sum += ldexp(1.0, -mx);
        zeros += mx == 0;
    }
    double d = 0.7213 / (1 + 1.079 / m) * m * m / sum;
    if (d <= 2.5 * m && zeros > 0) d = m * log((double)m / zeros);
    double s = (double)sj.sampled, N = (double)x->rows;
    if (s <= 0) {
        x->est_groups = 0;
        return PT_OK;
    }
    if (d > s) d = s;
    double G;
    if (d >= 0.98 * s) {
        G = N * d / s;
    } else {
        double lo = d, hi = N;
        for (int it = 0; it < 60 && hi - lo > 1; it++) {
            double mid = (lo + hi) / 2;
            if (mid * -expm1(-s / mid) < d) lo = mid;
            else hi = mid;
        }
        G = hi;
    }
    if (G > N) G = N;
    x->est_groups = (int64_t)G;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Setup and teardown                                                       */
/* ------------------------------------------------------------------------ */

static int add_stream(rx *x, int col, int kind, int dm) {
    for (int s = 0; s < x->ns; s++)
        if (x->st[s].col == col && x->st[s].kind == kind && x->st[s].dm == dm) return s;
    x->st[x->ns].col = col;
    x->st[x->ns].kind = kind;
    x->st[x->ns].dm = dm;
    x->st[x->ns].data = NULL;
    return x->ns++;
}

static bool col_has_nulls(const rx *x, int col) {
    for (int64_t p = 0; p < x->nparts; p++) {
        const pt_column *c = x->parts[p]->cols[col];
        if (c->null_count > 0 || c->type == PT_TYPE_NULL) return true;
    }
    return false;
}

static void plan_streams(rx *x) {
    const gb_stream *g = x->g;
    x->ns = 0;
    for (int j = 0; j < g->naggs; j++) {
        const gb_agg *a = &g->aggs[j];
        x->vs[j] = x->os[j] = x->vs2[j] = x->os2[j] = -1;
        if (a->col < 0) continue;
        if (a->vk == GB_V_I64) x->vs[j] = add_stream(x, a->col, RX_I64, a->dm);
        else if (a->vk == GB_V_F64) x->vs[j] = add_stream(x, a->col, RX_F64, -1);
        if (col_has_nulls(x, a->col)) x->os[j] = add_stream(x, a->col, RX_OK, -1);
        if (a->kind == PT_AGG_CORR) {
            x->vs2[j] = add_stream(x, a->col2, RX_F64, -1);
            if (col_has_nulls(x, a->col2)) x->os2[j] = add_stream(x, a->col2, RX_OK, -1);
        }
    }
}

static void worker_free(rx *x, rx_worker *W) {
    pt__gb_local_free(x->g, W->L);
    pt_free(W->kbuf);
    pt_free(W->pid);
    pt_free(W->dst);
    pt_free(W->cnt);
    pt_free(W->hll);
    memset(W, 0, sizeof *W);
}

static void rx_free(rx *x) {
    for (int i = 0; x->w && i < x->nw; i++) worker_free(x, &x->w[i]);
    pt_free(x->w);
    pt_free(x->m);
    pt_free(x->moff);
    pt_free(x->keys);
    for (int s = 0; s < x->ns; s++) pt_free(x->st[s].data);
    pt_mem_release(x->g->mem, x->charged);
    for (int c = 0; x->cols && c < x->ncols; c++) pt_column_release(x->cols[c]);
    pt_free(x->cols);
    pt_free(x->col_bytes);
    pt_free(x->col_cap);
}

static pt_status workers_new(rx *x, pt_error *err) {
    gb_stream *g = x->g;
    x->nw = g->nlocals;
    x->w = pt_calloc((size_t)x->nw, sizeof *x->w);
    if (!x->w) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    for (int i = 0; i < x->nw; i++) {
        rx_worker *W = &x->w[i];
        PT_RETURN_NOT_OK(pt__gb_local_new(g, 0, &W->L, err));
        W->L->nrp = 1;
        for (int k = 0; k < GB_CHUNK; k++) W->L->idx[k] = (uint16_t)k;
        W->hll = pt_calloc((size_t)1 << RX_HLL_BITS, 1);
        if (!W->hll) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* 1. Scatter                                                               */
/* ------------------------------------------------------------------------ */

static pt_status scatter_task(pt_task_ctx *tc, void *arg, int64_t mi, pt_error *err) {
    rx *x = arg;
    gb_stream *g = x->g;
    rx_worker *W = &x->w[worker_slot(x, tc)];
    gb_local *L = W->L;
    const int kw = g->kw;
    const rx_morsel *m = &x->m[mi];
    const pt_table *t = x->parts[m->part];
    const int32_t *const *maps = g->pmaps ? g->pmaps + m->part * g->ndm : NULL;
    const int64_t n = m->n, R = x->R;
    const int sh = 64 - x->bits;
    if (!W->kbuf) {
        W->kbuf = pt_malloc((size_t)RX_MORSEL * 8 * (size_t)kw);
        W->pid = pt_malloc((size_t)RX_MORSEL * sizeof *W->pid);
        W->dst = pt_malloc((size_t)RX_MORSEL * sizeof *W->dst);
        W->cnt = pt_malloc((size_t)(R + 1) * sizeof *W->cnt);
        if (!W->kbuf || !W->pid || !W->dst || !W->cnt)
            return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    }
    /* keys and partitions of the morsel's rows */
    uint64_t *const chunk_w = L->w;
    for (int64_t off = 0; off < n; off += GB_CHUNK) {
        int64_t cn = n - off < GB_CHUNK ? n - off : GB_CHUNK;
        L->w = W->kbuf + off * kw;
        pt__gb_encode(g, L, t, maps, m->r0 + off, cn);
        for (int64_t i = 0; i < cn; i++) W->pid[off + i] = (uint16_t)(L->h[i] >> sh);
    }
    L->w = chunk_w;
    /* counting sort: partition starts within the region */
    int64_t *cnt = W->cnt;
    memset(cnt, 0, (size_t)(R + 1) * sizeof *cnt);
    for (int64_t i = 0; i < n; i++) cnt[W->pid[i] + 1]++;
    int32_t *mo = x->moff + mi * (R + 1);
    for (int64_t r = 0; r < R; r++) cnt[r + 1] += cnt[r];
    for (int64_t r = 0; r <= R; r++) mo[r] = (int32_t)cnt[r];
    for (int64_t i = 0; i < n; i++) W->dst[i] = (uint32_t)(m->pos + cnt[W->pid[i]]++);
    const uint32_t *dst = W->dst;
    if (kw == 1) {
        for (int64_t i = 0; i < n; i++) x->keys[dst[i]] = W->kbuf[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < kw; j++) x->keys[(int64_t)dst[i] * kw + j] = W->kbuf[i * kw + j];
    }
    /* each input stream, a chunk at a time */
    for (int s = 0; s < x->ns; s++) {
        const rx_stream *st = &x->st[s];
        const pt_column *c = t->cols[st->col];
        for (int64_t off = 0; off < n; off += GB_CHUNK) {
            int64_t cn = n - off < GB_CHUNK ? n - off : GB_CHUNK, r0 = m->r0 + off;
            const uint32_t *d = dst + off;
            if (st->kind == RX_OK) {
                uint8_t *o = st->data;
                const uint8_t *ok = pt__gb_load_ok(c, r0, cn, L->ok);
                if (ok)
                    for (int64_t i = 0; i < cn; i++) o[d[i]] = ok[i];
                else
                    for (int64_t i = 0; i < cn; i++) o[d[i]] = 1;
                continue;
            }
            const uint64_t *src;
            if (st->kind == RX_I64 && c->type == PT_TYPE_INT64) {
                src = (const uint64_t *)pt_column_i64(c) + r0;
            } else if (st->kind == RX_F64 && c->type == PT_TYPE_FLOAT64) {
                src = (const uint64_t *)pt_column_f64(c) + r0;
            } else if (st->kind == RX_I64) {
                pt__gb_load_i64(c, st->dm >= 0 && maps ? maps[st->dm] : NULL, r0, cn, L->iv);
                src = (const uint64_t *)L->iv;
            } else {
                pt__gb_load_f64(c, r0, cn, L->xv);
                src = (const uint64_t *)L->xv;
            }
            uint64_t *o = (uint64_t *)st->data;
            for (int64_t i = 0; i < cn; i++) o[d[i]] = src[i];
        }
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* 2. Aggregate                                                             */
/* ------------------------------------------------------------------------ */

/* Finds or inserts the groups of keys[0, n) (kw words each) in p, whose
 * room for n more groups has been reserved. */
static void probe_chunk(const gb_stream *g, gb_part *p, const uint64_t *keys, int64_t n,
                        uint32_t *gid) {
    const int kw = g->kw;
    const int64_t rs = g->rs;
    const uint64_t mask = p->mask;
    uint64_t *slots = p->slots;
    for (int64_t i = 0; i < n; i++) {
        const uint64_t *k = keys + i * kw;
        const uint64_t h = gb_hash_words(k, kw), tag = h >> 32 << 32;
        for (uint64_t j = h & mask;; j = (j + 1) & mask) {
            uint64_t e = slots[j];
            if (!e) {
                int64_t gi = p->n++;
                p->hash[gi] = h;
                memcpy(p->words + gi * rs, k, (size_t)kw * 8);
                slots[j] = tag | (uint64_t)(gi + 1);
                gid[i] = (uint32_t)gi;
                break;
            }
            if ((e & ~0xffffffffULL) == tag) {
                int64_t gi = (int64_t)(e & 0xffffffffu) - 1;
                const uint64_t *gw = p->words + gi * rs;
                int same = gw[0] == k[0];
                for (int q = 1; same && q < kw; q++) same = gw[q] == k[q];
                if (same) {
                    gid[i] = (uint32_t)gi;
                    break;
                }
            }
        }
    }
}

static pt_status agg_task(pt_task_ctx *tc, void *arg, int64_t r, pt_error *err) {
    rx *x = arg;
    gb_stream *g = x->g;
    rx_worker *W = &x->w[worker_slot(x, tc)];
    gb_local *L = W->L;
    gb_part *p = &L->parts[0];
    const int kw = g->kw;
    const int64_t R = x->R;
    if (!p->slots) {
        int64_t want = x->est_groups / R + x->est_groups / R / 4 + 64;
        PT_RETURN_NOT_OK(pt__gb_part_reserve(g, L, p, want, 0, NULL, err));
    }
    for (int64_t mi = 0; mi < x->nm; mi++) {
        const int32_t *mo = x->moff + mi * (R + 1);
        int64_t a = x->m[mi].pos + mo[r], b = x->m[mi].pos + mo[r + 1];
        for (int64_t s0 = a; s0 < b; s0 += GB_CHUNK) {
            int64_t n = b - s0 < GB_CHUNK ? b - s0 : GB_CHUNK;
            PT_RETURN_NOT_OK(pt__gb_part_reserve(g, L, p, n, 0, NULL, err));
            probe_chunk(g, p, x->keys + s0 * kw, n, L->gid);
            L->rstart[0] = 0;
            L->rstart[1] = n;
            for (int j = 0; j < g->naggs; j++) {
                gb_vals v;
                memset(&v, 0, sizeof v);
                if (x->vs[j] >= 0) {
                    v.iv = (const int64_t *)x->st[x->vs[j]].data + s0;
                    v.xv = (const double *)x->st[x->vs[j]].data + s0;
                }
                if (x->os[j] >= 0) v.ok = x->st[x->os[j]].data + s0;
                if (x->vs2[j] >= 0) {
                    v.yv = (const double *)x->st[x->vs2[j]].data + s0;
                    v.both = v.ok;
                    if (x->os2[j] >= 0) {
                        const uint8_t *o2 = x->st[x->os2[j]].data + s0;
                        if (v.ok) {
                            for (int64_t i = 0; i < n; i++) L->ok2[i] = (uint8_t)(v.ok[i] & o2[i]);
                            v.both = L->ok2;
                        } else {
                            v.both = o2;
                        }
                    }
                }
                pt__gb_update_agg(g, L, j, &v, 0);
            }
            if (L->overflow) {
                int j = L->overflow - 1;
                return pt_error_set(err, PT_ERANGE, "group-by: %s overflows int64 (column '%s')",
                                    g->aggs[j].name, g->in->fields[g->aggs[j].col].name);
            }
        }
    }
    /* claim rows and text bytes for the groups, and write them */
    const int64_t n = p->n;
    int64_t bytes[GB_MAX_KEYS], row0, byte0[GB_MAX_KEYS];
    for (int c = 0; c < g->nkeys; c++) {
        bytes[c] = 0;
        if (g->kc[c].mode == GB_KM_SSTR)
            for (int64_t gi = 0; gi < n; gi++)
                bytes[c] += (int64_t)(p->words[gi * g->rs + g->kc[c].word + 1] >> 56);
        else if (g->kc[c].spack)
            for (int64_t gi = 0; gi < n; gi++) bytes[c] += pt__gb_key_len(g, c, p, gi);
    }
    pthread_mutex_lock(&x->mu);
    row0 = x->rows_out;
    x->rows_out += n;
    for (int c = 0; c < g->nkeys; c++) {
        byte0[c] = x->col_bytes[c];
        x->col_bytes[c] += bytes[c];
    }
    pthread_mutex_unlock(&x->mu);
    for (int c = 0; c < x->ncols; c++) {
        int64_t bp = c < g->nkeys ? byte0[c] : 0, end = c < g->nkeys ? byte0[c] + bytes[c] : 0;
        pt__gb_emit_range(g, c, p, 0, n, NULL, x->cols[c], row0, &bp, end);
    }
    /* empty the table for the next partition: all-zero states are empty */
    memset(p->slots, 0, (size_t)(p->mask + 1) * 8);
    memset(p->words, 0, (size_t)(n * g->rs) * 8);
    p->n = 0;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* The result                                                               */
/* ------------------------------------------------------------------------ */

static pt_type out_type(const gb_stream *g, int c) {
    return c < g->nkeys ? g->kc[c].type : g->aggs[c - g->nkeys].out_type;
}

static void free_block(void *raw) { pt_free(raw); }

/* A buffer of `bytes` (64-byte aligned, a cache line of slack to read)
 * that is NOT zeroed unless asked: with millions of groups, zeroing the
 * result before writing it, on one thread, cost as much as computing it.
 * The emit writes every value; its first touch of the pages then happens
 * in parallel, on huge pages. */
static pt_status buf_new(int64_t bytes, int zero, pt_buffer **out, pt_error *err) {
    int64_t cap = bytes < 64 ? 64 : (bytes + 63) & ~(int64_t)63;
    void *raw = big_alloc((size_t)cap + 128);
    if (!raw) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory for the result");
    uint8_t *data = (uint8_t *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    if (zero) memset(data, 0, (size_t)cap);
    pt_status s = pt__buffer_wrap(data, cap, free_block, raw, out, err);
    if (s != PT_OK) pt_free(raw);
    return s;
}

/* Allocates result column c (a task: the columns are made in parallel). */
static pt_status alloc_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    rx *x = arg;
    const gb_stream *g = x->g;
    const int64_t rows = x->rows; /* at most a group per row */
    pt_type t = out_type(g, (int)c);
    PT_RETURN_NOT_OK(pt__column_alloc(t, &x->cols[c], err));
    pt_column *col = x->cols[c];
    PT_RETURN_NOT_OK(buf_new((rows + 7) / 8, 0, &col->validity, err));
    memset(col->validity->data, t == PT_TYPE_NULL ? 0 : 0xff, (size_t)(rows + 7) / 8);
    if (t == PT_TYPE_NULL) return PT_OK;
    if (t == PT_TYPE_DICT) {
        int dm = c < g->nkeys ? g->kc[c].dm : g->aggs[c - g->nkeys].dm;
        col->dict = pt_column_retain(g->dm[dm].dict);
    }
    int64_t vb = t == PT_TYPE_BOOL   ? (rows + 7) / 8
                 : t == PT_TYPE_UTF8 ? (rows + 1) * 8
                 : t == PT_TYPE_DICT ? rows * 4
                                     : rows * pt_type_width(t);
    /* bool results are set bit by bit */
    PT_RETURN_NOT_OK(buf_new(vb, t == PT_TYPE_BOOL, &col->values, err));
    if (t == PT_TYPE_UTF8) {
        ((int64_t *)col->values->data)[0] = 0;
        PT_RETURN_NOT_OK(buf_new(x->col_cap[c], 0, &col->bytes, err));
    }
    return PT_OK;
}

/* Allocates the result columns, for up to a group per row. */
static pt_status alloc_result(rx *x, pt_error *err) {
    gb_stream *g = x->g;
    x->ncols = g->nkeys + g->naggs;
    x->cols = pt_calloc((size_t)x->ncols + 1, sizeof *x->cols);
    x->col_bytes = pt_calloc((size_t)x->ncols + 1, sizeof *x->col_bytes);
    x->col_cap = pt_calloc((size_t)x->ncols + 1, sizeof *x->col_cap);
    if (!x->cols || !x->col_bytes || !x->col_cap)
        return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    for (int c = 0; c < x->ncols; c++) {
        pt_type t = out_type(g, c);
        if (c < g->nkeys && (g->kc[c].mode == GB_KM_SSTR || g->kc[c].spack))
            x->col_cap[c] = x->rows * GB_SSTR_MAX;
        if (t != PT_TYPE_DICT) continue;
        int dm = c < g->nkeys ? g->kc[c].dm : g->aggs[c - g->nkeys].dm;
        if (!g->dm[dm].dict)
            PT_RETURN_NOT_OK(pt_column_new(NULL, PT_TYPE_UTF8, 1, 1, &g->dm[dm].dict, err));
    }
    return pt_parallel_for(pt_ctx_pool(g->ctx), x->ncols, alloc_task, x, NULL, err);
}

/* Sets the lengths of the written result and makes it a table. */
static pt_status seal_result(rx *x, pt_table **out, pt_error *err) {
    gb_stream *g = x->g;
    const int64_t rows = x->rows_out;
    const char **names = pt_calloc((size_t)x->ncols + 1, sizeof *names);
    pt_type *types = pt_calloc((size_t)x->ncols + 1, sizeof *types);
    pt_status s = PT_OK;
    if (!names || !types) s = pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    for (int c = 0; s == PT_OK && c < x->ncols; c++) {
        pt_column *col = x->cols[c];
        names[c] = c < g->nkeys ? g->in->fields[g->kc[c].col].name : g->aggs[c - g->nkeys].name;
        types[c] = out_type(g, c);
        col->length = rows;
        /* the room past the groups was never touched: not counted */
        col->validity->size = col->validity->capacity = (rows + 7) / 8;
        if (col->type == PT_TYPE_NULL) {
            col->null_count = rows;
            continue;
        }
        col->values->size = col->type == PT_TYPE_BOOL ? (rows + 7) / 8
                            : col->type == PT_TYPE_UTF8 ? (rows + 1) * 8
                            : col->type == PT_TYPE_DICT ? rows * 4
                                                        : rows * pt_type_width(col->type);
        col->values->capacity = col->values->size;
        if (col->type == PT_TYPE_UTF8) col->bytes->size = col->bytes->capacity = x->col_bytes[c];
        if (col->null_count == 0) {
            pt_buffer_release(col->validity);
            col->validity = NULL;
        }
    }
    pt_schema *sc = NULL;
    if (s == PT_OK) s = pt_schema_new(x->ncols, names, types, &sc, err);
    pt_free(names);
    pt_free(types);
    if (s == PT_OK) {
        s = pt_table_new(sc, x->cols, out, err);
        /* the table owns the columns now, also when it failed */
        pt_free(x->cols);
        x->cols = NULL;
    }
    return s;
}

/* ------------------------------------------------------------------------ */
/* Driver                                                                   */
/* ------------------------------------------------------------------------ */

int pt__gb_radix_mode(void) {
    const char *e = getenv("PARTITA_GROUPBY_RADIX");
    if (!e || !*e) return 0;
    if (!strcmp(e, "force") || !strcmp(e, "1")) return 1;
    if (!strcmp(e, "off") || !strcmp(e, "0")) return -1;
    return 0;
}

static pt_status run(rx *x, pt_table **out, pt_error *err) {
    gb_stream *g = x->g;
    const int mode = pt__gb_radix_mode();
    PT_RETURN_NOT_OK(workers_new(x, err));
    PT_RETURN_NOT_OK(estimate_groups(x, err));
    const int64_t gbytes = group_bytes(g);
    if (mode == 0 && x->est_groups * gbytes < RX_MIN_TABLE) return PT_OK;
    /* partitions: tables of about RX_TABLE_BYTES */
    int bits = 1;
    while (bits < RX_MAX_BITS && ((int64_t)1 << bits) * RX_TABLE_BYTES < x->est_groups * gbytes) bits++;
    x->bits = bits;
    x->R = (int64_t)1 << bits;
    plan_streams(x);
    /* morsels and flat arrays */
    x->nm = 0;
    for (int64_t p = 0; p < x->nparts; p++) x->nm += (x->parts[p]->nrows + RX_MORSEL - 1) / RX_MORSEL;
    int64_t flat = x->rows * 8 * g->kw;
    for (int s = 0; s < x->ns; s++) flat += x->rows * (x->st[s].kind == RX_OK ? 1 : 8);
    /* with a budget, leave the plain path (which can spill) what it needs */
    int64_t avail = pt_mem_available(g->mem);
    if (mode == 0 && avail != INT64_MAX && 3 * flat > avail) return PT_OK;
    pt_status s = pt_mem_reserve(g->mem, flat, "group-by radix partitions", err);
    if (s != PT_OK) return s;
    x->charged = flat;
    x->m = pt_malloc((size_t)(x->nm + 1) * sizeof *x->m);
    x->moff = pt_malloc((size_t)(x->nm * (x->R + 1) + 1) * sizeof *x->moff);
    x->keys = big_alloc((size_t)(x->rows * g->kw + 1) * 8);
    if (!x->m || !x->moff || !x->keys) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    for (int q = 0; q < x->ns; q++) {
        x->st[q].data = big_alloc((size_t)(x->rows + 1) * (x->st[q].kind == RX_OK ? 1 : 8));
        if (!x->st[q].data) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    }
    int64_t k = 0, pos = 0;
    for (int64_t p = 0; p < x->nparts; p++)
        for (int64_t r0 = 0; r0 < x->parts[p]->nrows; r0 += RX_MORSEL, k++) {
            x->m[k].part = p;
            x->m[k].r0 = r0;
            x->m[k].n = x->parts[p]->nrows - r0 < RX_MORSEL ? x->parts[p]->nrows - r0 : RX_MORSEL;
            x->m[k].pos = pos;
            pos += x->m[k].n;
        }
    pt_pool *pool = pt_ctx_pool(g->ctx);
    PT_RETURN_NOT_OK(pt_parallel_for(pool, x->nm, scatter_task, x, NULL, err));
    PT_RETURN_NOT_OK(alloc_result(x, err));
    PT_RETURN_NOT_OK(pt_parallel_for(pool, x->R, agg_task, x, NULL, err));
    return seal_result(x, out, err);
}

pt_status pt__gb_radix(gb_stream *g, pt_table *const *parts, int64_t nparts, pt_table **out,
                       pt_error *err) {
    *out = NULL;
    if (pt__gb_radix_mode() < 0 || !eligible(g)) return PT_OK;
    rx x;
    memset(&x, 0, sizeof x);
    pthread_mutex_init(&x.mu, NULL);
    x.g = g;
    x.parts = parts;
    x.nparts = nparts;
    for (int64_t p = 0; p < nparts; p++) x.rows += parts[p]->nrows;
    if (x.rows == 0 || x.rows > UINT32_MAX) return PT_OK;
    pt_status s = run(&x, out, err);
    rx_free(&x);
    pthread_mutex_destroy(&x.mu);
    if (s == PT_EBUDGET) {
        /* the plain path copes with a small budget: it spills */
        pt_error_clear(err);
        pt_table_free(*out);
        *out = NULL;
        return PT_OK;
    }
    if (s != PT_OK) {
        pt_table_free(*out);
        *out = NULL;
    }
    return s;
}
