/*
 * frame_stats.c - column statistics ("describe") over a table in memory or a
 * CSV file streamed batch by batch.
 *
 * Rows are split into partitions (zero-copy slices) that are summarised in
 * parallel; the partial results are then merged in partition order, so a
 * result depends on the partition count but never on the thread count or on
 * scheduling.
 *
 * Numeric columns: count, mean, M2 (sum of squared deviations), min, max.
 * Within a partition, values are taken in blocks of BLOCK: a block's mean and
 * M2 are computed two-pass (exactly, in cache) and folded into the running
 * totals with the pairwise update of Chan et al. - Welford's update applied
 * to blocks instead of single values, as accurate as Welford (more, on long
 * runs) without a division per value. Partitions and batches merge with the
 * same update. Values are accumulated minus a shift (the column's first
 * value), so that means stay small and keep their digits through merges.
 * The naive sum-of-squares formula is never used: it loses all digits on
 * data like 1e9 + small noise.
 *
 * Text columns: exact counts per distinct value in a hash table per
 * partition (dictionary columns count per dictionary index, then map the
 * indices to text), merged into one table per column. When a column's
 * distinct set outgrows opts.exact_distinct_limit, or the exact tables
 * together outgrow half of the memory budget, the column switches to a
 * HyperLogLog sketch (precision 14, ~0.8% standard error) for the distinct
 * count and to a pruned frequency table (the 2 * TOP_TRACK largest counts,
 * cut back to TOP_TRACK when full) for the most frequent values, whose
 * counts are then lower bounds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "partita.h"

#define HLL_P 14
#define HLL_M (1 << HLL_P)
#define TOP_TRACK 2048
#define BLOCK 256
#define STR_SEED 0x7061727469746121ULL
#define DEFAULT_EXACT_LIMIT 1000000
/* Rows per streaming partition below which splitting a batch further costs
 * more in task overhead than it gains. */
#define MIN_PART_ROWS 4096

/* ------------------------------------------------------------------------ */
/* A hash table from text to count                                          */
/* ------------------------------------------------------------------------ */

/* Short texts (ids, codes, categories) are also kept inline, so that a
 * lookup that finds its entry compares without a cache miss on the text. */
#define SM_INLINE 16
typedef struct sm_entry {
    uint64_t hash;
    const char *s;
    int64_t len;
    int64_t count;
    char head[SM_INLINE];
} sm_entry;

typedef struct sm_block {
    struct sm_block *next;
    int64_t used, cap;
    char data[];
} sm_block;

/* Open addressing over entry indices (+1, 0 = empty), load <= 1/2. `own`
 * maps copy their keys into an arena (they outlive the batch the keys came
 * from); the others point into the columns they count. */
typedef struct smap {
    sm_entry *e;
    int64_t n, ecap;
    uint32_t *slots;
    uint64_t mask; /* slot count - 1, or 0 before the first insert */
    sm_block *arena;
    int64_t arena_bytes;
    int own;
    pt_mem *mem;
    int64_t charged;
} smap;

static void sm_init(smap *m, pt_mem *mem, int own) {
    memset(m, 0, sizeof *m);
    m->mem = mem;
    m->own = own;
}

static int64_t sm_bytes(const smap *m) {
    return m->ecap * (int64_t)sizeof(sm_entry) + (m->slots ? (int64_t)(m->mask + 1) * 4 : 0) +
           m->arena_bytes;
}

/* Hash tables are charged to the budget after the fact: they hold what the
 * statistics need, and failing halfway would waste the work done. */
static void sm_charge(smap *m) {
    int64_t b = sm_bytes(m);
    if (b > m->charged)
        pt_mem_force(m->mem, b - m->charged);
    else if (b < m->charged)
        pt_mem_release(m->mem, m->charged - b);
    m->charged = b;
}

static void sm_free(smap *m) {
    pt_free(m->e);
    pt_free(m->slots);
    for (sm_block *b = m->arena; b;) {
        sm_block *next = b->next;
        pt_free(b);
        b = next;
    }
    pt_mem_release(m->mem, m->charged);
    sm_init(m, m->mem, m->own);
}

static pt_status sm_rehash(smap *m, uint64_t nslots, pt_error *err) {
    uint32_t *slots = pt_calloc((size_t)nslots, sizeof *slots);
    if (!slots) return pt_error_set(err, PT_ENOMEM, "out of memory growing a hash table");
    uint64_t mask = nslots - 1;
    for (int64_t i = 0; i < m->n; i++) {
        uint64_t j = m->e[i].hash & mask;
        while (slots[j]) j = (j + 1) & mask;
        slots[j] = (uint32_t)(i + 1);
    }
    pt_free(m->slots);
    m->slots = slots;
    m->mask = mask;
    return PT_OK;
}

static const char *sm_copy(smap *m, const char *s, int64_t len) {
    if (!m->arena || m->arena->cap - m->arena->used < len) {
        /* Blocks grow with the table (1 KiB .. 1 MiB) so that small tables
         * stay small against a tight budget. */
        int64_t cap = m->arena_bytes < 1024 ? 1024 : m->arena_bytes;
        if (cap > (1 << 20)) cap = 1 << 20;
        if (cap < len) cap = len;
        sm_block *b = pt_malloc(sizeof *b + (size_t)cap);
        if (!b) return NULL;
        b->next = m->arena;
        b->used = 0;
        b->cap = cap;
        m->arena = b;
        m->arena_bytes += cap + (int64_t)sizeof *b;
    }
    char *p = m->arena->data + m->arena->used;
    if (len) memcpy(p, s, (size_t)len);
    m->arena->used += len;
    return p;
}

/* Adds `count` to the entry for text s (inserting it). */
static pt_status sm_add(smap *m, uint64_t h, const char *s, int64_t len, int64_t count,
                        pt_error *err) {
    if ((uint64_t)(m->n + 1) * 2 > (m->slots ? m->mask + 1 : 0)) {
        uint64_t nslots = m->slots ? (m->mask + 1) * 2 : 64;
        if (nslots > (1ULL << 32))
            return pt_error_set(err, PT_ERANGE, "too many distinct values for one hash table");
        PT_RETURN_NOT_OK(sm_rehash(m, nslots, err));
        sm_charge(m);
    }
    uint64_t j = h & m->mask;
    for (; m->slots[j]; j = (j + 1) & m->mask) {
        sm_entry *e = &m->e[m->slots[j] - 1];
        if (e->hash == h && e->len == len &&
            memcmp(len <= SM_INLINE ? e->head : e->s, s, (size_t)len) == 0) {
            e->count += count;
            return PT_OK;
        }
    }
    if (m->n == m->ecap) {
        int64_t cap = m->ecap ? m->ecap * 2 : 32;
        sm_entry *e = pt_realloc(m->e, (size_t)cap * sizeof *e);
        if (!e) return pt_error_set(err, PT_ENOMEM, "out of memory growing a hash table");
        m->e = e;
        m->ecap = cap;
        sm_charge(m);
    }
    if (m->own) {
        int64_t before = m->arena_bytes;
        s = sm_copy(m, s, len);
        if (!s) return pt_error_set(err, PT_ENOMEM, "out of memory copying a text value");
        if (m->arena_bytes != before) sm_charge(m);
    }
    sm_entry *e = &m->e[m->n];
    *e = (sm_entry){h, s, len, count, {0}};
    if (len <= SM_INLINE) memcpy(e->head, s, (size_t)len);
    m->slots[j] = (uint32_t)(m->n + 1);
    m->n++;
    return PT_OK;
}

static int text_cmp(const char *a, int64_t la, const char *b, int64_t lb) {
    int c = memcmp(a, b, (size_t)(la < lb ? la : lb));
    if (c) return c;
    return (la > lb) - (la < lb);
}

/* Most frequent first; ties by text. */
static int entry_rank_cmp(const sm_entry *a, const sm_entry *b) {
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return text_cmp(a->s, a->len, b->s, b->len);
}

/* The k-th largest (0-based) of a[0..n), reordering a. Quickselect. */
static int64_t kth_largest(int64_t *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int64_t x = a[lo], y = a[mid], z = a[hi];
        int64_t pivot = x > y ? (y > z ? y : (x > z ? z : x)) : (x > z ? x : (y > z ? z : y));
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] > pivot) i++;
            while (a[j] < pivot) j--;
            if (i <= j) {
                int64_t t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

/* Keeps about `keep` of the most frequent entries (approximate mode): those
 * above the keep-th largest count, then ties with it in table order. Linear
 * time, so pruning often is cheap. */
static pt_status sm_prune(smap *m, int64_t keep, pt_error *err) {
    if (m->n <= keep) return PT_OK;
    int64_t *counts = pt_malloc((size_t)m->n * sizeof *counts);
    if (!counts) return pt_error_set(err, PT_ENOMEM, "out of memory pruning a frequency table");
    for (int64_t i = 0; i < m->n; i++) counts[i] = m->e[i].count;
    int64_t cut = kth_largest(counts, m->n, keep - 1);
    pt_free(counts);
    int64_t above = 0;
    for (int64_t i = 0; i < m->n; i++) above += m->e[i].count > cut;
    int64_t ties = keep - above;
    smap k;
    sm_init(&k, m->mem, 1);
    pt_status s = PT_OK;
    for (int64_t i = 0; i < m->n && s == PT_OK; i++) {
        const sm_entry *e = &m->e[i];
        if (e->count > cut || (e->count == cut && ties-- > 0))
            s = sm_add(&k, e->hash, e->s, e->len, e->count, err);
    }
    if (s != PT_OK) {
        sm_free(&k);
        return s;
    }
    sm_free(m);
    *m = k;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* HyperLogLog                                                              */
/* ------------------------------------------------------------------------ */

static inline void hll_add(uint8_t *reg, uint64_t h) {
    uint64_t j = h >> (64 - HLL_P);
    uint64_t w = h << HLL_P;
    uint8_t rank = w ? (uint8_t)(__builtin_clzll(w) + 1) : (uint8_t)(64 - HLL_P + 1);
    if (rank > reg[j]) reg[j] = rank;
}

static double hll_estimate(const uint8_t *reg) {
    double m = HLL_M, sum = 0;
    int zeros = 0;
    for (int j = 0; j < HLL_M; j++) {
        sum += ldexp(1.0, -reg[j]);
        zeros += reg[j] == 0;
    }
    double e = 0.7213 / (1 + 1.079 / m) * m * m / sum;
    /* Small cardinalities: linear counting is the better estimator. */
    if (e <= 2.5 * m && zeros) e = m * log(m / zeros);
    return e;
}

/* ------------------------------------------------------------------------ */
/* Numeric accumulation                                                     */
/* ------------------------------------------------------------------------ */

typedef struct num_acc {
    int64_t n;
    double mean, m2, min, max;
} num_acc;

/* Chan et al.: combines two summaries of disjoint sets. */
static void num_merge(num_acc *a, const num_acc *b) {
    if (b->n == 0) return;
    if (a->n == 0) {
        *a = *b;
        return;
    }
    double na = (double)a->n, nb = (double)b->n, n = na + nb;
    double delta = b->mean - a->mean;
    a->mean += delta * (nb / n);
    a->m2 += b->m2 + delta * delta * (na * nb / n);
    a->n += b->n;
    if (b->min < a->min) a->min = b->min;
    if (b->max > a->max) a->max = b->max;
}

/* Folds a block of (shifted) values into a; min and max are the caller's. */
static void num_block(num_acc *a, const double *x, int k) {
    if (k == 0) return;
    double sum = 0;
    for (int i = 0; i < k; i++) sum += x[i];
    double mean = sum / k, corr = 0, m2 = 0;
    for (int i = 0; i < k; i++) corr += x[i] - mean;
    mean += corr / k; /* the rounding error of the first pass, recovered */
    for (int i = 0; i < k; i++) m2 += (x[i] - mean) * (x[i] - mean);
    num_acc b = {k, mean, m2, a->min, a->max};
    num_merge(a, &b);
}

/* Summarises a numeric or bool column into a fresh `acc`. Values are
 * accumulated minus `shift` (a value of the column): a mean near 1e9 cannot
 * be held to better than 6e-8 in a double, and the merges would carry that
 * error into M2; shifted, the data's spread keeps its digits. Min and max are
 * kept unshifted so that they are exact. NaN counts as null (as in pandas). */
static void num_column(const pt_column *c, double shift, num_acc *acc, int64_t *nulls) {
    double buf[BLOCK], mn = INFINITY, mx = -INFINITY;
    int k = 0;
    int64_t n = c->length, nn = 0;
#define NUM_LOOP(GET)                                                       \
    for (int64_t i = 0; i < n; i++) {                                      \
        if (!pt_column_is_valid(c, i)) {                                   \
            nn++;                                                          \
            continue;                                                      \
        }                                                                  \
        double v = (double)(GET);                                          \
        if (v != v) {                                                      \
            nn++;                                                          \
            continue;                                                      \
        }                                                                  \
        mn = v < mn ? v : mn;                                              \
        mx = v > mx ? v : mx;                                              \
        buf[k++] = v - shift;                                              \
        if (k == BLOCK) {                                                  \
            num_block(acc, buf, k);                                        \
            k = 0;                                                         \
        }                                                                  \
    }
    switch (c->type) {
    case PT_TYPE_INT32: {
        const int32_t *x = pt_column_i32(c);
        NUM_LOOP(x[i]);
        break;
    }
    case PT_TYPE_INT64: {
        const int64_t *x = pt_column_i64(c);
        NUM_LOOP(x[i]);
        break;
    }
    case PT_TYPE_FLOAT32: {
        const float *x = pt_column_f32(c);
        NUM_LOOP(x[i]);
        break;
    }
    case PT_TYPE_FLOAT64: {
        const double *x = pt_column_f64(c);
        NUM_LOOP(x[i]);
        break;
    }
    case PT_TYPE_BOOL: NUM_LOOP(pt_column_bool(c, i) ? 1 : 0); break;
    default: nn = n; break;
    }
#undef NUM_LOOP
    num_block(acc, buf, k);
    if (acc->n > 0) {
        acc->min = mn;
        acc->max = mx;
    }
    *nulls += nn;
}

/* The first valid, non-NaN value of a numeric column, if any. */
static int first_value(const pt_column *c, double *out) {
    if (!pt_type_is_numeric(c->type) && c->type != PT_TYPE_BOOL) return 0;
    for (int64_t i = 0; i < c->length; i++) {
        if (!pt_column_is_valid(c, i)) continue;
        double v = pt_column_get_f64(c, i);
        if (v == v) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Per-column state                                                         */
/* ------------------------------------------------------------------------ */

enum { KIND_UNKNOWN = 0, KIND_NUM, KIND_TEXT };

static int kind_of(pt_type t) {
    if (pt_type_is_numeric(t) || t == PT_TYPE_BOOL) return KIND_NUM;
    if (pt_type_is_string(t)) return KIND_TEXT;
    return KIND_UNKNOWN;
}

typedef struct col_acc {
    char *name;
    pt_type type;
    int kind;
    int64_t nulls;
    num_acc num;   /* mean is of the values minus shift */
    double shift;
    int has_shift;
    int64_t text_count;
    smap map; /* own keys */
    int64_t counted; /* map bytes added to run->text_bytes */
    uint8_t *hll;
    int approx;
} col_acc;

/* What one partition found in one column. */
typedef struct col_part {
    int64_t nulls;
    num_acc num;
    int64_t text_count;
    smap map; /* keys point into the batch */
    int64_t *dcounts;        /* dictionary fast path: count per index */
    const pt_column *dict;
} col_part;

typedef struct stats_run {
    pt_ctx *ctx;
    pt_mem *mem;
    int ncols;
    col_acc *acc;
    int64_t exact_limit;
    int64_t text_budget; /* budget bytes the exact tables may use together */
    int64_t text_bytes;  /* atomic: bytes they use now */
    const pt_table *batch;
    int64_t nparts;
    col_part *parts; /* nparts * ncols */
    int *text_cols;
    int ntext;
    int64_t rows, partitions, batches;
} stats_run;

static pt_status text_column(const pt_column *c, col_part *p, pt_mem *mem, pt_error *err) {
    int64_t n = c->length;
    if (c->type == PT_TYPE_DICT && c->dict->length <= 2 * n + 64) {
        p->dict = c->dict;
        p->dcounts = pt_calloc((size_t)(c->dict->length > 0 ? c->dict->length : 1),
                               sizeof(int64_t));
        if (!p->dcounts) return pt_error_set(err, PT_ENOMEM, "out of memory counting values");
        const int32_t *idx = (const int32_t *)c->values->data + c->offset;
        int64_t nn = 0;
        if (!c->validity) {
            for (int64_t i = 0; i < n; i++) p->dcounts[idx[i]]++;
        } else {
            for (int64_t i = 0; i < n; i++) {
                if (pt_column_is_valid(c, i))
                    p->dcounts[idx[i]]++;
                else
                    nn++;
            }
        }
        p->nulls += nn;
        p->text_count += n - nn;
        return PT_OK;
    }
    sm_init(&p->map, mem, 0);
    for (int64_t i = 0; i < n; i++) {
        if (!pt_column_is_valid(c, i)) {
            p->nulls++;
            continue;
        }
        int64_t len;
        const char *s = pt_column_str(c, i, &len);
        PT_RETURN_NOT_OK(sm_add(&p->map, pt_hash_bytes(s, (size_t)len, STR_SEED), s, len, 1, err));
        p->text_count++;
    }
    return PT_OK;
}

static pt_status part_fn(pt_task_ctx *tc, void *arg, int64_t p, pt_error *err) {
    (void)tc;
    stats_run *r = arg;
    int64_t rows = r->batch->nrows;
    int64_t lo = rows * p / r->nparts, hi = rows * (p + 1) / r->nparts;
    pt_table *slice;
    PT_RETURN_NOT_OK(pt_table_slice(r->batch, lo, hi - lo, &slice, err));
    pt_status s = PT_OK;
    for (int c = 0; c < r->ncols && s == PT_OK; c++) {
        const pt_column *col = slice->cols[c];
        col_part *cp = &r->parts[p * r->ncols + c];
        switch (kind_of(col->type)) {
        case KIND_NUM: num_column(col, r->acc[c].shift, &cp->num, &cp->nulls); break;
        case KIND_TEXT: s = text_column(col, cp, r->mem, err); break;
        default: cp->nulls += col->length; break;
        }
    }
    pt_table_free(slice);
    return s;
}

static pt_status to_approx(col_acc *a, pt_error *err) {
    a->hll = pt_calloc(HLL_M, 1);
    if (!a->hll) return pt_error_set(err, PT_ENOMEM, "out of memory for a distinct-count sketch");
    for (int64_t i = 0; i < a->map.n; i++) hll_add(a->hll, a->map.e[i].hash);
    a->approx = 1;
    return sm_prune(&a->map, TOP_TRACK, err);
}

static pt_status text_add(stats_run *r, col_acc *a, uint64_t h, const char *s, int64_t len,
                          int64_t count, pt_error *err) {
    if (a->approx) {
        hll_add(a->hll, h);
        PT_RETURN_NOT_OK(sm_add(&a->map, h, s, len, count, err));
        if (a->map.n >= 2 * TOP_TRACK) return sm_prune(&a->map, TOP_TRACK, err);
        return PT_OK;
    }
    PT_RETURN_NOT_OK(sm_add(&a->map, h, s, len, count, err));
    int over = a->map.n > r->exact_limit;
    if (a->map.charged != a->counted) {
        /* columns merge in parallel: their total is kept atomically */
        int64_t total = __atomic_add_fetch(&r->text_bytes, a->map.charged - a->counted,
                                           __ATOMIC_RELAXED);
        a->counted = a->map.charged;
        over |= r->text_budget > 0 && total > r->text_budget;
    }
    if (over) {
        pt_log_debug("stats: column '%s' has more than %lld distinct values (%lld bytes); "
                     "switching to an estimate",
                     a->name, (long long)a->map.n - 1, (long long)a->map.charged);
        PT_RETURN_NOT_OK(to_approx(a, err));
        __atomic_add_fetch(&r->text_bytes, -a->counted, __ATOMIC_RELAXED);
        a->counted = 0;
    }
    return PT_OK;
}

/* Folds every partition's counts of text column i into its running totals,
 * in partition order. Columns are independent, so they merge in parallel. */
static pt_status merge_text_fn(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    (void)tc;
    stats_run *r = arg;
    int c = r->text_cols[i];
    col_acc *a = &r->acc[c];
    for (int64_t p = 0; p < r->nparts; p++) {
        col_part *cp = &r->parts[p * r->ncols + c];
        a->nulls += cp->nulls;
        a->text_count += cp->text_count;
        if (cp->dcounts) {
            for (int64_t j = 0; j < cp->dict->length; j++) {
                if (!cp->dcounts[j]) continue;
                int64_t len;
                const char *s = pt_column_str(cp->dict, j, &len);
                PT_RETURN_NOT_OK(text_add(r, a, pt_hash_bytes(s, (size_t)len, STR_SEED), s, len,
                                          cp->dcounts[j], err));
            }
        } else {
            for (int64_t j = 0; j < cp->map.n; j++) {
                const sm_entry *e = &cp->map.e[j];
                PT_RETURN_NOT_OK(text_add(r, a, e->hash, e->s, e->len, e->count, err));
            }
        }
    }
    return PT_OK;
}

static void free_parts(stats_run *r) {
    if (!r->parts) return;
    for (int64_t i = 0; i < r->nparts * r->ncols; i++) {
        sm_free(&r->parts[i].map);
        pt_free(r->parts[i].dcounts);
    }
    pt_free(r->parts);
    r->parts = NULL;
}

static void run_free(stats_run *r) {
    free_parts(r);
    if (r->acc) {
        for (int c = 0; c < r->ncols; c++) {
            pt_free(r->acc[c].name);
            sm_free(&r->acc[c].map);
            pt_free(r->acc[c].hll);
        }
    }
    pt_free(r->acc);
    pt_free(r->text_cols);
}

static pt_status run_init(stats_run *r, pt_ctx *ctx, const pt_schema *schema,
                          const pt_stats_opts *opts, pt_error *err) {
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    r->mem = pt_ctx_mem(ctx);
    r->ncols = schema->nfields;
    r->exact_limit = opts && opts->exact_distinct_limit > 0 ? opts->exact_distinct_limit
                                                            : DEFAULT_EXACT_LIMIT;
    r->acc = pt_calloc((size_t)(r->ncols > 0 ? r->ncols : 1), sizeof *r->acc);
    r->text_cols = pt_calloc((size_t)(r->ncols > 0 ? r->ncols : 1), sizeof *r->text_cols);
    if (!r->acc || !r->text_cols) return pt_error_set(err, PT_ENOMEM, "out of memory for statistics");
    int ntext = 0;
    for (int c = 0; c < r->ncols; c++) {
        col_acc *a = &r->acc[c];
        a->name = pt_strdup(schema->fields[c].name);
        if (!a->name) return pt_error_set(err, PT_ENOMEM, "out of memory for statistics");
        a->type = schema->fields[c].type;
        a->kind = kind_of(a->type);
        a->num.min = a->num.max = NAN;
        sm_init(&a->map, r->mem, 1);
        ntext += a->kind == KIND_TEXT;
    }
    /* With a budget, the exact distinct tables get half of it between them
     * (the rest is for the batches in flight); the column that crosses the
     * line switches to estimates. */
    int64_t limit = pt_mem_limit(r->mem);
    if (limit > 0 && ntext > 0) r->text_budget = limit / 2;
    return PT_OK;
}

static pt_status run_batch(stats_run *r, const pt_table *t, int64_t nparts, pt_error *err) {
    if (t->schema->nfields != r->ncols)
        return pt_error_set(err, PT_ETYPE, "batch %lld has %d columns where %d were expected",
                            (long long)r->batches + 1, t->schema->nfields, r->ncols);
    r->ntext = 0;
    for (int c = 0; c < r->ncols; c++) {
        col_acc *a = &r->acc[c];
        pt_type ty = t->cols[c]->type;
        int k = kind_of(ty);
        if (a->kind == KIND_UNKNOWN) {
            a->kind = k;
        } else if (k != KIND_UNKNOWN && k != a->kind) {
            return pt_error_set(err, PT_ETYPE,
                                "column '%s' is %s in batch %lld but was %s before; give the "
                                "column a type (a schema) to read it consistently",
                                a->name, pt_type_name(ty), (long long)r->batches + 1,
                                pt_type_name(a->type));
        }
        if (ty != PT_TYPE_NULL) a->type = ty; /* numeric widening between batches */
        if (a->kind == KIND_NUM && !a->has_shift) a->has_shift = first_value(t->cols[c], &a->shift);
        if (a->kind == KIND_TEXT) r->text_cols[r->ntext++] = c;
    }
    if (nparts > t->nrows) nparts = t->nrows;
    if (nparts < 1) nparts = 1;
    r->nparts = nparts;
    r->batch = t;
    r->parts = pt_calloc((size_t)(nparts * (r->ncols > 0 ? r->ncols : 1)), sizeof *r->parts);
    if (!r->parts) return pt_error_set(err, PT_ENOMEM, "out of memory for statistics");
    for (int64_t i = 0; i < nparts * r->ncols; i++) sm_init(&r->parts[i].map, r->mem, 0);
    pt_pool *pool = pt_ctx_pool(r->ctx);
    pt_status s = pt_parallel_for(pool, nparts, part_fn, r, NULL, err);
    if (s == PT_OK) {
        for (int c = 0; c < r->ncols; c++) {
            col_acc *a = &r->acc[c];
            if (a->kind == KIND_TEXT) continue;
            for (int64_t p = 0; p < nparts; p++) {
                col_part *cp = &r->parts[p * r->ncols + c];
                a->nulls += cp->nulls;
                num_merge(&a->num, &cp->num);
            }
        }
        s = pt_parallel_for(pool, r->ntext, merge_text_fn, r, NULL, err);
    }
    free_parts(r);
    r->batch = NULL;
    if (s == PT_OK) {
        r->rows += t->nrows;
        r->partitions += nparts;
        r->batches++;
    }
    return s;
}

static void select_top(const smap *m, pt_col_stats *cs, pt_status *st) {
    const sm_entry *best[PT_STATS_TOP];
    int nb = 0;
    for (int64_t i = 0; i < m->n; i++) {
        const sm_entry *e = &m->e[i];
        if (nb == PT_STATS_TOP && entry_rank_cmp(e, best[nb - 1]) >= 0) continue;
        int j = nb < PT_STATS_TOP ? nb++ : nb - 1;
        while (j > 0 && entry_rank_cmp(e, best[j - 1]) < 0) {
            best[j] = best[j - 1];
            j--;
        }
        best[j] = e;
    }
    for (int i = 0; i < nb; i++) {
        cs->top[i].text = pt_strndup(best[i]->s, (size_t)best[i]->len);
        cs->top[i].count = best[i]->count;
        if (!cs->top[i].text) *st = PT_ENOMEM;
    }
    cs->ntop = nb;
}

static pt_status run_finish(stats_run *r, double t0, pt_stats **out, pt_error *err) {
    pt_stats *st = pt_calloc(1, sizeof *st);
    if (!st) return pt_error_set(err, PT_ENOMEM, "out of memory for statistics");
    st->ncols = r->ncols;
    st->cols = pt_calloc((size_t)(r->ncols > 0 ? r->ncols : 1), sizeof *st->cols);
    pt_status s = st->cols ? PT_OK : PT_ENOMEM;
    for (int c = 0; c < r->ncols && s == PT_OK; c++) {
        col_acc *a = &r->acc[c];
        pt_col_stats *cs = &st->cols[c];
        cs->name = pt_strdup(a->name);
        if (!cs->name) s = PT_ENOMEM;
        cs->type = a->type;
        cs->nulls = a->nulls;
        cs->mean = cs->m2 = cs->std = cs->min = cs->max = NAN;
        cs->distinct = -1;
        if (a->kind == KIND_NUM) {
            cs->count = a->num.n;
            if (a->num.n > 0) {
                cs->mean = a->num.mean + a->shift;
                cs->m2 = a->num.m2;
                cs->min = a->num.min;
                cs->max = a->num.max;
            }
            if (a->num.n > 1) cs->std = sqrt(a->num.m2 / (double)(a->num.n - 1));
        } else if (a->kind == KIND_TEXT) {
            cs->count = a->text_count;
            cs->distinct_exact = !a->approx;
            cs->top_exact = !a->approx;
            cs->distinct = a->approx ? llround(hll_estimate(a->hll)) : a->map.n;
            select_top(&a->map, cs, &s);
        } else {
            cs->count = 0;
        }
    }
    if (s != PT_OK) {
        pt_stats_free(st);
        return pt_error_set(err, PT_ENOMEM, "out of memory for statistics");
    }
    st->rows = r->rows;
    st->partitions = r->partitions;
    st->batches = r->batches;
    st->peak_memory = pt_mem_peak(r->mem);
    st->seconds = pt_now_s() - t0;
    *out = st;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Public entry points                                                      */
/* ------------------------------------------------------------------------ */

void pt_stats_opts_init(pt_stats_opts *o) {
    memset(o, 0, sizeof *o);
    o->exact_distinct_limit = DEFAULT_EXACT_LIMIT;
}

pt_status pt_stats_table(pt_ctx *ctx, const pt_table *t, const pt_stats_opts *opts,
                         pt_stats **out, pt_error *err) {
    if (out) *out = NULL;
    if (!ctx || !t || !out)
        return pt_error_set(err, PT_EINVAL, "pt_stats_table: ctx, t and out are required");
    double t0 = pt_now_s();
    stats_run r;
    pt_status s = run_init(&r, ctx, t->schema, opts, err);
    int64_t nparts = opts && opts->partitions > 0 ? opts->partitions
                                                  : 4 * (int64_t)pt_ctx_threads(ctx);
    if (s == PT_OK) s = run_batch(&r, t, nparts, err);
    if (s == PT_OK) s = run_finish(&r, t0, out, err);
    run_free(&r);
    return s;
}

pt_status pt_stats_csv(pt_ctx *ctx, const char *path, const pt_csv_opts *csv,
                       const pt_stats_opts *opts, pt_stats **out, pt_error *err) {
    if (out) *out = NULL;
    if (!ctx || !path || !out)
        return pt_error_set(err, PT_EINVAL, "pt_stats_csv: ctx, path and out are required");
    double t0 = pt_now_s();
    pt_csv_opts o;
    if (csv)
        o = *csv;
    else
        pt_csv_opts_init(&o);
    /* A batch costs the reader about 4-5 times its text (input window, parse
     * buffers, columns); with a tenth of the available budget per batch, and
     * half of it for the exact text tables, the peak stays near the limit. */
    int64_t avail = pt_mem_available(pt_ctx_mem(ctx));
    if (o.batch_bytes <= 0 && avail != INT64_MAX) {
        o.batch_bytes = avail / 10;
        if (o.batch_bytes < (64 << 10)) o.batch_bytes = 64 << 10;
        if (o.batch_bytes > (256 << 20)) o.batch_bytes = 256 << 20;
    }
    pt_csv_reader *rd;
    PT_RETURN_NOT_OK(pt_csv_open(ctx, path, &o, &rd, err));
    stats_run r;
    pt_status s = run_init(&r, ctx, pt_csv_reader_schema(rd), opts, err);
    int64_t nparts = 4 * (int64_t)pt_ctx_threads(ctx);
    while (s == PT_OK) {
        pt_table *batch = NULL;
        s = pt_csv_next(rd, &batch, err);
        if (s != PT_OK || !batch) break;
        int64_t np = batch->nrows / MIN_PART_ROWS;
        s = run_batch(&r, batch, np < nparts ? np : nparts, err);
        pt_table_free(batch);
    }
    pt_csv_close(rd);
    if (s == PT_OK) s = run_finish(&r, t0, out, err);
    run_free(&r);
    return s;
}

void pt_stats_free(pt_stats *s) {
    if (!s) return;
    if (s->cols) {
        for (int c = 0; c < s->ncols; c++) {
            pt_free(s->cols[c].name);
            for (int i = 0; i < s->cols[c].ntop; i++) pt_free(s->cols[c].top[i].text);
        }
    }
    pt_free(s->cols);
    pt_free(s);
}

/* ------------------------------------------------------------------------ */
/* Printing                                                                 */
/* ------------------------------------------------------------------------ */

#define PRINT_FIELDS 10
#define CELL 96

static void fmt_num(char *buf, double v, pt_type t) {
    if (v != v) {
        buf[0] = '\0';
    } else if ((t == PT_TYPE_INT32 || t == PT_TYPE_INT64 || t == PT_TYPE_BOOL) &&
               fabs(v) < 9e15 && v == floor(v)) {
        snprintf(buf, CELL, "%.0f", v);
    } else {
        snprintf(buf, CELL, "%.6g", v);
    }
}

void pt_stats_print(const pt_stats *s, FILE *out) {
    if (!s || !out) return;
    static const char *const heads[PRINT_FIELDS] = {"column", "type", "count", "nulls",
                                                    "mean",   "std",  "min",   "max",
                                                    "distinct", "top values"};
    /* numbers right-aligned, names and texts left-aligned */
    static const int right[PRINT_FIELDS] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 0};
    int rows = s->ncols + 1;
    char(*cells)[PRINT_FIELDS][CELL] = pt_calloc((size_t)rows, sizeof *cells);
    if (!cells) return;
    int width[PRINT_FIELDS] = {0};
    for (int f = 0; f < PRINT_FIELDS; f++) snprintf(cells[0][f], CELL, "%s", heads[f]);
    for (int c = 0; c < s->ncols; c++) {
        const pt_col_stats *cs = &s->cols[c];
        char(*row)[CELL] = cells[c + 1];
        snprintf(row[0], CELL, "%s", cs->name);
        snprintf(row[1], CELL, "%s", pt_type_name(cs->type));
        snprintf(row[2], CELL, "%lld", (long long)cs->count);
        snprintf(row[3], CELL, "%lld", (long long)cs->nulls);
        fmt_num(row[4], cs->mean, PT_TYPE_FLOAT64);
        fmt_num(row[5], cs->std, PT_TYPE_FLOAT64);
        fmt_num(row[6], cs->min, cs->type);
        fmt_num(row[7], cs->max, cs->type);
        if (cs->distinct >= 0)
            snprintf(row[8], CELL, "%s%lld", cs->distinct_exact ? "" : "~",
                     (long long)cs->distinct);
        size_t used = 0;
        for (int i = 0; i < cs->ntop && used < CELL - 1; i++) {
            int w = snprintf(row[9] + used, CELL - used, "%s%.20s%s (%s%lld)", i ? ", " : "",
                             cs->top[i].text, strlen(cs->top[i].text) > 20 ? "..." : "",
                             cs->top_exact ? "" : ">=", (long long)cs->top[i].count);
            if (w < 0) break;
            used += (size_t)w;
        }
        if (used >= CELL - 1) memcpy(row[9] + CELL - 4, "...", 4);
    }
    for (int r = 0; r < rows; r++)
        for (int f = 0; f < PRINT_FIELDS; f++) {
            int w = (int)strlen(cells[r][f]);
            if (w > width[f]) width[f] = w;
        }
    for (int r = 0; r < rows; r++) {
        for (int f = 0; f < PRINT_FIELDS; f++) {
            if (f == PRINT_FIELDS - 1)
                fprintf(out, "%s", cells[r][f]);
            else
                fprintf(out, right[f] ? "%*s  " : "%-*s  ", width[f], cells[r][f]);
        }
        fputc('\n', out);
        if (r == 0) {
            for (int f = 0; f < PRINT_FIELDS; f++) {
                for (int i = 0; i < width[f]; i++) fputc('-', out);
                if (f < PRINT_FIELDS - 1) fputs("  ", out);
            }
            fputc('\n', out);
        }
    }
    pt_free(cells);
}
