/*
 * sort_radix.c - the core of the sort: every key becomes a 64-bit word
 * whose unsigned order is the key's order, and (word, row id) pairs are
 * radix sorted, stably.
 *
 * Words: ints flip the sign bit; floats flip the sign bit of positives and
 * every bit of negatives (-0.0 is read as 0.0, every NaN as the largest
 * word); bool is 0/1; dictionary entries become their rank by text; utf8 is
 * taken 7 bytes at a time with the remaining length (capped at 8) in the
 * low byte, so that a prefix sorts before its extensions. Descending keys
 * invert the word (NaN stays last). Nulls are moved behind the non-null
 * rows by a stable partition instead, since an int64 word has no spare
 * value for them.
 *
 * Multi-key sorts go most significant key first: sort a range by the first
 * key's word, then refine each group of equal words by the next key (or,
 * for text longer than the 7 bytes seen so far, by the next 7 bytes). Small
 * groups use insertion sort with the row comparator.
 *
 * Large ranges are sorted in parallel: a sample sort (splitters from a
 * sample, one stable scatter into 256 buckets, then a cache-resident LSD
 * radix sort of each bucket, buckets in parallel) when there are several
 * significant bytes, else a parallel LSD radix sort (per-chunk histograms,
 * stable parallel scatter). Byte positions on which all words agree are
 * skipped, so 100 dictionary entries cost one pass.
 */
#include <string.h>

#include "frame/sort_internal.h"

#define SMALL_N 24
#define PAR_MIN (INT64_C(1) << 16)
#define SAMPLE_BUCKETS 256
#define SAMPLE_PER_BUCKET 32

typedef struct sorter {
    pt__sort_plan *pl;
    pt__sort_kv *kv;
    pt__sort_kv *tmp;
    int64_t total;
} sorter;

static pt_status refine(sorter *s, int64_t lo, int64_t hi, int k, int level, bool par,
                        pt_error *err);

/* ------------------------------------------------------------------------ */
/* Key words                                                                */
/* ------------------------------------------------------------------------ */

static inline uint64_t f64_word(double x) {
    if (x != x) return UINT64_MAX;
    if (x == 0) x = 0; /* -0.0 */
    uint64_t u;
    memcpy(&u, &x, 8);
    return (u >> 63) ? ~u : (u | (UINT64_C(1) << 63));
}

static inline uint64_t utf8_word(const uint8_t *s, int64_t len, int64_t off) {
    int64_t rem = len - off;
    uint64_t w = 0;
    if (rem >= 8) {
        memcpy(&w, s + off, 8);
        w = __builtin_bswap64(w) & ~(uint64_t)0xff;
        return w | 8;
    }
    for (int64_t j = 0; j < rem && j < 7; j++) w |= (uint64_t)s[off + j] << (56 - 8 * j);
    return w | (uint64_t)rem;
}

/* Word of the utf8 low byte that says "longer than what the word holds". */
static inline uint64_t utf8_more(bool desc) { return desc ? (uint64_t)(uint8_t)~8u : 8; }

#define ENC_LOOP(DECL, EXPR)                                                   \
    do {                                                                       \
        if (pl->nparts == 1) {                                                 \
            const int64_t p = 0;                                               \
            const pt_column *c = kp->cols[0];                                  \
            DECL;                                                              \
            (void)p;                                                           \
            for (int64_t i = 0; i < n; i++) {                                  \
                int64_t r = (int64_t)(kv[i].v & PT__SORT_RMASK);               \
                uint64_t w = (EXPR) ^ flip;                                    \
                kv[i].k = w;                                                   \
                o |= w;                                                        \
                a &= w;                                                        \
            }                                                                  \
        } else {                                                               \
            for (int64_t i = 0; i < n; i++) {                                  \
                int64_t p = (int64_t)(kv[i].v >> PT__SORT_PSHIFT);             \
                int64_t r = (int64_t)(kv[i].v & PT__SORT_RMASK);               \
                const pt_column *c = kp->cols[p];                              \
                DECL;                                                          \
                uint64_t w = (EXPR) ^ flip;                                    \
                kv[i].k = w;                                                   \
                o |= w;                                                        \
                a &= w;                                                        \
            }                                                                  \
        }                                                                      \
    } while (0)

/* Writes the words of key k (text level `level`) for the non-null rows
 * kv[0, n) and returns the OR and AND of all words. */
static void encode(const pt__sort_plan *pl, int k, int level, pt__sort_kv *kv, int64_t n,
                   uint64_t *or_out, uint64_t *and_out) {
    const pt__sort_keyplan *kp = &pl->keys[k];
    uint64_t o = 0, a = UINT64_MAX;
    uint64_t flip = kp->desc ? UINT64_MAX : 0;
    switch (kp->type) {
    case PT_TYPE_NULL:
        for (int64_t i = 0; i < n; i++) kv[i].k = 0;
        a = 0;
        break;
    case PT_TYPE_BOOL:
        ENC_LOOP((void)0, (uint64_t)pt_column_bool(c, r));
        break;
    case PT_TYPE_INT32:
        ENC_LOOP(const int32_t *d = pt_column_i32(c),
                 (uint64_t)(int64_t)d[r] ^ (UINT64_C(1) << 63));
        break;
    case PT_TYPE_INT64:
        ENC_LOOP(const int64_t *d = pt_column_i64(c), (uint64_t)d[r] ^ (UINT64_C(1) << 63));
        break;
    case PT_TYPE_FLOAT32:
        /* NaN must stay the largest word also for descending keys. */
        ENC_LOOP(const float *d = pt_column_f32(c),
                 d[r] != d[r] ? flip ^ UINT64_MAX : f64_word((double)d[r]));
        break;
    case PT_TYPE_FLOAT64:
        ENC_LOOP(const double *d = pt_column_f64(c),
                 d[r] != d[r] ? flip ^ UINT64_MAX : f64_word(d[r]));
        break;
    case PT_TYPE_DICT:
        ENC_LOOP(const int32_t *d = pt_column_i32(c); const uint32_t *rk = kp->ranks[p],
                 (uint64_t)rk[d[r]]);
        break;
    case PT_TYPE_UTF8: {
        int64_t off = (int64_t)level * 7;
        ENC_LOOP(const int64_t *of = (const int64_t *)c->values->data + c->offset;
                 const uint8_t *by = c->bytes->data,
                 utf8_word(by + of[r], of[r + 1] - of[r], off));
        break;
    }
    default: break;
    }
    *or_out = o;
    *and_out = a;
}

typedef struct enc_job {
    const pt__sort_plan *pl;
    int k, level;
    pt__sort_kv *kv;
    int64_t n, nchunks;
    uint64_t *ors, *ands;
} enc_job;

static pt_status enc_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    (void)err;
    enc_job *j = arg;
    int64_t a = j->n * c / j->nchunks, b = j->n * (c + 1) / j->nchunks;
    encode(j->pl, j->k, j->level, j->kv + a, b - a, &j->ors[c], &j->ands[c]);
    return PT_OK;
}

static pt_status encode_par(sorter *s, int k, int level, int64_t lo, int64_t n, bool par,
                            uint64_t *diff, pt_error *err) {
    pt__sort_plan *pl = s->pl;
    uint64_t o, a;
    if (!par || n < PAR_MIN || pl->threads < 2) {
        encode(pl, k, level, s->kv + lo, n, &o, &a);
        *diff = o ^ a;
        return PT_OK;
    }
    enum { MAXC = 256 };
    uint64_t ors[MAXC], ands[MAXC];
    int64_t nc = (int64_t)pl->threads * 4;
    if (nc > MAXC) nc = MAXC;
    enc_job j = {pl, k, level, s->kv + lo, n, nc, ors, ands};
    PT_RETURN_NOT_OK(pt_parallel_for(pl->pool, nc, enc_task, &j, NULL, err));
    o = 0;
    a = UINT64_MAX;
    for (int64_t c = 0; c < nc; c++) {
        o |= ors[c];
        a &= ands[c];
    }
    *diff = o ^ a;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Radix sorts of (word, id) pairs                                          */
/* ------------------------------------------------------------------------ */

static void insertion_k(pt__sort_kv *a, int64_t n) {
    for (int64_t i = 1; i < n; i++) {
        pt__sort_kv x = a[i];
        int64_t j = i;
        while (j > 0 && a[j - 1].k > x.k) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* Stable LSD radix sort of a[0, n) on the bytes set in `diff`, using b as
 * scratch. The result ends in b when `to_b`, else in a. */
static void lsd_seq(pt__sort_kv *a, pt__sort_kv *b, int64_t n, uint64_t diff, bool to_b) {
    if (n <= SMALL_N || diff == 0) {
        if (diff) insertion_k(a, n);
        if (to_b) memcpy(b, a, (size_t)n * sizeof *a);
        return;
    }
    int bytes[8], nb = 0;
    for (int i = 0; i < 8; i++)
        if ((diff >> (8 * i)) & 0xff) bytes[nb++] = i;
    int64_t cnt[8][256];
    memset(cnt, 0, sizeof(int64_t) * 256 * (size_t)nb);
    for (int64_t i = 0; i < n; i++) {
        uint64_t w = a[i].k;
        for (int q = 0; q < nb; q++) cnt[q][(w >> (8 * bytes[q])) & 0xff]++;
    }
    pt__sort_kv *src = a, *dst = b;
    for (int q = 0; q < nb; q++) {
        int sh = 8 * bytes[q];
        if (cnt[q][(src[0].k >> sh) & 0xff] == n) continue; /* one bucket: nothing moves */
        int64_t off[256], sum = 0;
        for (int d = 0; d < 256; d++) {
            off[d] = sum;
            sum += cnt[q][d];
        }
        for (int64_t i = 0; i < n; i++) dst[off[(src[i].k >> sh) & 0xff]++] = src[i];
        pt__sort_kv *t = src;
        src = dst;
        dst = t;
    }
    pt__sort_kv *want = to_b ? b : a;
    if (src != want) memcpy(want, src, (size_t)n * sizeof *a);
}

/* Parallel stable LSD: chunk c of the source scatters its elements after
 * those of chunks < c with the same digit. Result ends in a. */
typedef struct lsd_job {
    pt__sort_kv *src, *dst;
    int64_t n, nchunks;
    int shift;
    int64_t (*cnt)[256];
} lsd_job;

static pt_status lsd_hist_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    (void)err;
    lsd_job *j = arg;
    int64_t a = j->n * c / j->nchunks, b = j->n * (c + 1) / j->nchunks;
    int64_t *h = j->cnt[c];
    memset(h, 0, 256 * sizeof *h);
    for (int64_t i = a; i < b; i++) h[(j->src[i].k >> j->shift) & 0xff]++;
    return PT_OK;
}

static pt_status lsd_scatter_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    (void)err;
    lsd_job *j = arg;
    int64_t a = j->n * c / j->nchunks, b = j->n * (c + 1) / j->nchunks;
    int64_t off[256];
    memcpy(off, j->cnt[c], sizeof off);
    const pt__sort_kv *src = j->src;
    pt__sort_kv *dst = j->dst;
    int sh = j->shift;
    for (int64_t i = a; i < b; i++) dst[off[(src[i].k >> sh) & 0xff]++] = src[i];
    return PT_OK;
}

typedef struct copy_job {
    pt__sort_kv *dst;
    const pt__sort_kv *src;
    int64_t n, nchunks;
} copy_job;

static pt_status copy_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    (void)err;
    copy_job *j = arg;
    int64_t a = j->n * c / j->nchunks, b = j->n * (c + 1) / j->nchunks;
    memcpy(j->dst + a, j->src + a, (size_t)(b - a) * sizeof *j->dst);
    return PT_OK;
}

static pt_status copy_par(pt__sort_plan *pl, pt__sort_kv *dst, const pt__sort_kv *src, int64_t n,
                          pt_error *err) {
    if (n < PAR_MIN || pl->threads < 2) {
        memcpy(dst, src, (size_t)n * sizeof *dst);
        return PT_OK;
    }
    copy_job j = {dst, src, n, pl->threads};
    return pt_parallel_for(pl->pool, j.nchunks, copy_task, &j, NULL, err);
}

static pt_status lsd_par(pt__sort_plan *pl, pt__sort_kv *a, pt__sort_kv *b, int64_t n,
                         uint64_t diff, pt_error *err) {
    int64_t nc = pl->threads * 2;
    int64_t(*cnt)[256] = pt_malloc((size_t)nc * sizeof *cnt);
    if (!cnt) return pt_error_set(err, PT_ENOMEM, "sort: out of memory for radix histograms");
    pt_status st = PT_OK;
    pt__sort_kv *src = a, *dst = b;
    for (int byte = 0; byte < 8 && st == PT_OK; byte++) {
        if (((diff >> (8 * byte)) & 0xff) == 0) continue;
        lsd_job j = {src, dst, n, nc, 8 * byte, cnt};
        st = pt_parallel_for(pl->pool, nc, lsd_hist_task, &j, NULL, err);
        if (st != PT_OK) break;
        int64_t sum = 0;
        bool one = false;
        for (int d = 0; d < 256; d++) {
            int64_t tot = 0;
            for (int64_t c = 0; c < nc; c++) tot += cnt[c][d];
            if (tot == n) one = true;
            for (int64_t c = 0; c < nc; c++) {
                int64_t x = cnt[c][d];
                cnt[c][d] = sum;
                sum += x;
            }
        }
        if (one) continue;
        st = pt_parallel_for(pl->pool, nc, lsd_scatter_task, &j, NULL, err);
        pt__sort_kv *t = src;
        src = dst;
        dst = t;
    }
    pt_free(cnt);
    if (st == PT_OK && src != a) st = copy_par(pl, a, src, n, err);
    return st;
}

/* Sample sort: bucket = number of splitters below the word, so equal words
 * share a bucket and the scatter keeps input order within buckets. */
typedef struct ss_job {
    pt__sort_plan *pl;
    pt__sort_kv *kv, *tmp;
    int64_t n, nchunks;
    uint64_t spl[SAMPLE_BUCKETS];
    uint8_t *bk;
    int64_t (*cnt)[SAMPLE_BUCKETS];
    int64_t start[SAMPLE_BUCKETS + 1];
} ss_job;

static pt_status ss_classify_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    (void)err;
    ss_job *j = arg;
    int64_t a = j->n * c / j->nchunks, b = j->n * (c + 1) / j->nchunks;
    int64_t *h = j->cnt[c];
    memset(h, 0, SAMPLE_BUCKETS * sizeof *h);
    const uint64_t *spl = j->spl;
    for (int64_t i = a; i < b; i++) {
        uint64_t w = j->kv[i].k;
        unsigned x = 0;
        for (unsigned step = SAMPLE_BUCKETS / 2; step; step >>= 1)
            x += (spl[x + step - 1] < w) ? step : 0;
        j->bk[i] = (uint8_t)x;
        h[x]++;
    }
    return PT_OK;
}

static pt_status ss_scatter_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    (void)err;
    ss_job *j = arg;
    int64_t a = j->n * c / j->nchunks, b = j->n * (c + 1) / j->nchunks;
    int64_t off[SAMPLE_BUCKETS];
    memcpy(off, j->cnt[c], sizeof off);
    for (int64_t i = a; i < b; i++) j->tmp[off[j->bk[i]]++] = j->kv[i];
    return PT_OK;
}

static pt_status ss_bucket_task(pt_task_ctx *tc, void *arg, int64_t bkt, pt_error *err) {
    (void)tc;
    ss_job *j = arg;
    int64_t a = j->start[bkt], b = j->start[bkt + 1], n = b - a;
    if (n == 0) return PT_OK;
    uint64_t o = 0, an = UINT64_MAX;
    for (int64_t i = a; i < b; i++) {
        o |= j->tmp[i].k;
        an &= j->tmp[i].k;
    }
    if (n >= 4 * PAR_MIN && n > j->n / 8) {
        /* A skewed bucket: sort it with all threads. */
        memcpy(j->kv + a, j->tmp + a, (size_t)n * sizeof *j->kv);
        return lsd_par(j->pl, j->kv + a, j->tmp + a, n, o ^ an, err);
    }
    lsd_seq(j->tmp + a, j->kv + a, n, o ^ an, true);
    return PT_OK;
}

static pt_status sample_sort(pt__sort_plan *pl, pt__sort_kv *kv, pt__sort_kv *tmp, int64_t n,
                             pt_error *err) {
    ss_job *j = pt_calloc(1, sizeof *j);
    int64_t nc = (int64_t)pl->threads * 4;
    int64_t m = SAMPLE_BUCKETS * SAMPLE_PER_BUCKET;
    pt__sort_kv *smp = pt_malloc((size_t)m * 2 * sizeof *smp);
    if (j) {
        j->bk = pt_malloc((size_t)n);
        j->cnt = pt_malloc((size_t)nc * sizeof *j->cnt);
    }
    pt_status st = PT_OK;
    if (!j || !smp || !j->bk || !j->cnt) {
        st = pt_error_set(err, PT_ENOMEM, "sort: out of memory for sample sort buffers");
        goto done;
    }
    j->pl = pl;
    j->kv = kv;
    j->tmp = tmp;
    j->n = n;
    j->nchunks = nc;
    /* A fixed pseudo-random sample: results never depend on it, only the
     * balance of the buckets does. */
    uint64_t o = 0, a = UINT64_MAX;
    for (int64_t i = 0; i < m; i++) {
        smp[i].k = kv[pt_splitmix64((uint64_t)i * 0x9e37u + 17) % (uint64_t)n].k;
        smp[i].v = 0;
        o |= smp[i].k;
        a &= smp[i].k;
    }
    lsd_seq(smp, smp + m, m, o ^ a, false);
    for (int b = 0; b < SAMPLE_BUCKETS - 1; b++) j->spl[b] = smp[(int64_t)(b + 1) * m / SAMPLE_BUCKETS].k;
    j->spl[SAMPLE_BUCKETS - 1] = UINT64_MAX;
    st = pt_parallel_for(pl->pool, nc, ss_classify_task, j, NULL, err);
    if (st != PT_OK) goto done;
    int64_t sum = 0;
    for (int d = 0; d < SAMPLE_BUCKETS; d++) {
        j->start[d] = sum;
        for (int64_t c = 0; c < nc; c++) {
            int64_t x = j->cnt[c][d];
            j->cnt[c][d] = sum;
            sum += x;
        }
    }
    j->start[SAMPLE_BUCKETS] = sum;
    st = pt_parallel_for(pl->pool, nc, ss_scatter_task, j, NULL, err);
    if (st != PT_OK) goto done;
    st = pt_parallel_for(pl->pool, SAMPLE_BUCKETS, ss_bucket_task, j, NULL, err);
done:
    if (j) {
        pt_free(j->bk);
        pt_free(j->cnt);
    }
    pt_free(j);
    pt_free(smp);
    return st;
}

/* Sorts kv[lo, lo + n) by word, stably; diff = OR ^ AND of the words. */
static pt_status sort_words(sorter *s, int64_t lo, int64_t n, uint64_t diff, bool par,
                            pt_error *err) {
    if (diff == 0 || n < 2) return PT_OK;
    pt__sort_plan *pl = s->pl;
    int nbytes = 0;
    for (int i = 0; i < 8; i++) nbytes += ((diff >> (8 * i)) & 0xff) != 0;
    if (!par || n < PAR_MIN) {
        lsd_seq(s->kv + lo, s->tmp + lo, n, diff, false);
        return PT_OK;
    }
    if (nbytes >= 3 && n >= 4 * PAR_MIN) return sample_sort(pl, s->kv + lo, s->tmp + lo, n, err);
    if (pl->threads < 2) {
        lsd_seq(s->kv + lo, s->tmp + lo, n, diff, false);
        return PT_OK;
    }
    return lsd_par(pl, s->kv + lo, s->tmp + lo, n, diff, err);
}

/* ------------------------------------------------------------------------ */
/* Multi-key refinement                                                     */
/* ------------------------------------------------------------------------ */

static void insertion_rows(const pt__sort_plan *pl, pt__sort_kv *a, int64_t n, int k) {
    for (int64_t i = 1; i < n; i++) {
        pt__sort_kv x = a[i];
        int64_t j = i;
        while (j > 0 && pt__sort_cmp_ids(pl, k, a[j - 1].v, x.v) > 0) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static inline bool id_valid(const pt__sort_keyplan *kp, uint64_t id) {
    const pt_column *c = kp->cols[id >> PT__SORT_PSHIFT];
    return c->type != PT_TYPE_NULL && pt_column_is_valid(c, (int64_t)(id & PT__SORT_RMASK));
}

/* Moves rows whose key is null behind the others, keeping both in order.
 * Returns the number of non-null rows. */
static int64_t partition_nulls(const pt__sort_keyplan *kp, pt__sort_kv *kv, pt__sort_kv *tmp,
                               int64_t n) {
    int64_t w = 0, z = 0;
    for (int64_t i = 0; i < n; i++) {
        if (id_valid(kp, kv[i].v)) {
            kv[w++] = kv[i];
        } else {
            tmp[z++] = kv[i];
        }
    }
    memcpy(kv + w, tmp, (size_t)z * sizeof *kv);
    return w;
}

typedef struct grp_job {
    sorter *s;
    int k, level;
    int64_t *bounds;
    pt_error *errs;
} grp_job;

/* Refines every run of equal words in kv[lo, hi) by what comes next. */
static pt_status scan_groups(sorter *s, int64_t lo, int64_t hi, int k, int level, pt_error *err) {
    const pt__sort_plan *pl = s->pl;
    const pt__sort_keyplan *kp = &pl->keys[k];
    bool text = kp->type == PT_TYPE_UTF8;
    uint64_t more = utf8_more(kp->desc);
    pt__sort_kv *kv = s->kv;
    int64_t i = lo;
    while (i < hi) {
        uint64_t w = kv[i].k;
        int64_t j = i + 1;
        while (j < hi && kv[j].k == w) j++;
        if (j - i > 1) {
            bool par = (j - i) >= PAR_MIN && (j - i) >= s->total / 4;
            if (text && (w & 0xff) == more) {
                PT_RETURN_NOT_OK(refine(s, i, j, k, level + 1, par, err));
            } else if (k + 1 < pl->nkeys) {
                PT_RETURN_NOT_OK(refine(s, i, j, k + 1, 0, par, err));
            }
        }
        i = j;
    }
    return PT_OK;
}

static pt_status grp_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    grp_job *j = arg;
    return scan_groups(j->s, j->bounds[c], j->bounds[c + 1], j->k, j->level, err);
}

static pt_status groups(sorter *s, int64_t lo, int64_t hi, int k, int level, bool par,
                        pt_error *err) {
    pt__sort_plan *pl = s->pl;
    int64_t n = hi - lo;
    if (!par || n < PAR_MIN || pl->threads < 2) return scan_groups(s, lo, hi, k, level, err);
    /* Chunk boundaries moved forward to group starts, computed before any
     * task runs because refining a group rewrites its words. */
    int64_t nc = (int64_t)pl->threads * 8;
    int64_t *b = pt_malloc((size_t)(nc + 1) * sizeof *b);
    if (!b) return pt_error_set(err, PT_ENOMEM, "sort: out of memory");
    b[0] = lo;
    for (int64_t c = 1; c < nc; c++) {
        int64_t x = lo + n * c / nc;
        if (x < b[c - 1]) x = b[c - 1];
        while (x > lo && x < hi && s->kv[x].k == s->kv[x - 1].k) x++;
        b[c] = x;
    }
    b[nc] = hi;
    grp_job j = {s, k, level, b, NULL};
    pt_status st = pt_parallel_for(pl->pool, nc, grp_task, &j, NULL, err);
    pt_free(b);
    return st;
}

static pt_status refine(sorter *s, int64_t lo, int64_t hi, int k, int level, bool par,
                        pt_error *err) {
    pt__sort_plan *pl = s->pl;
    const pt__sort_keyplan *kp = &pl->keys[k];
    int64_t n = hi - lo;
    if (n < 2) return PT_OK;
    if (n <= SMALL_N) {
        insertion_rows(pl, s->kv + lo, n, k);
        return PT_OK;
    }
    if (level == 0 && kp->has_nulls) {
        int64_t nn = partition_nulls(kp, s->kv + lo, s->tmp + lo, n);
        if (n - nn > 1 && k + 1 < pl->nkeys)
            PT_RETURN_NOT_OK(refine(s, lo + nn, hi, k + 1, 0, par && n - nn >= PAR_MIN, err));
        hi = lo + nn;
        n = nn;
        if (n < 2) return PT_OK;
    }
    uint64_t diff;
    PT_RETURN_NOT_OK(encode_par(s, k, level, lo, n, par, &diff, err));
    PT_RETURN_NOT_OK(sort_words(s, lo, n, diff, par, err));
    if (k + 1 >= pl->nkeys && kp->type != PT_TYPE_UTF8) return PT_OK;
    if (diff == 0) {
        /* One group: go straight to what comes next, keeping parallelism. */
        bool more = kp->type == PT_TYPE_UTF8 && (s->kv[lo].k & 0xff) == utf8_more(kp->desc);
        if (more) return refine(s, lo, hi, k, level + 1, par, err);
        if (k + 1 < pl->nkeys) return refine(s, lo, hi, k + 1, 0, par, err);
        return PT_OK;
    }
    return groups(s, lo, hi, k, level, par, err);
}

pt_status pt__sort_kv_run(pt__sort_plan *pl, pt__sort_kv *kv, pt__sort_kv *tmp, int64_t n,
                          pt_error *err) {
    if (pl->nkeys == 0 || n < 2) return PT_OK;
    sorter s = {pl, kv, tmp, n};
    return refine(&s, 0, n, 0, 0, true, err);
}

/* ------------------------------------------------------------------------ */
/* Row ids                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct fill_job {
    pt__sort_plan *pl;
    pt__sort_kv *kv;
    int64_t nchunks;
} fill_job;

static pt_status fill_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    (void)err;
    fill_job *j = arg;
    const pt__sort_plan *pl = j->pl;
    int64_t a = pl->nrows * c / j->nchunks, b = pl->nrows * (c + 1) / j->nchunks;
    if (a >= b) return PT_OK;
    /* The partition holding row a: the last p with starts[p] <= a. */
    int64_t lo = 0, hi = pl->nparts - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (pl->starts[mid] <= a) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    int64_t p = lo;
    for (int64_t i = a; i < b; i++) {
        while (i >= pl->starts[p + 1]) p++;
        j->kv[i].v = pt__sort_id(p, i - pl->starts[p]);
    }
    return PT_OK;
}

pt_status pt__sort_fill_ids(pt__sort_plan *pl, pt__sort_kv *kv, pt_error *err) {
    int64_t nc = pl->nrows >= PAR_MIN ? (int64_t)pl->threads * 4 : 1;
    fill_job j = {pl, kv, nc};
    if (nc == 1) return fill_task(NULL, &j, 0, err);
    return pt_parallel_for(pl->pool, nc, fill_task, &j, NULL, err);
}
