/*
 * groupby_holistic.c - MEDIAN and COUNT_DISTINCT in direct mode (keys with
 * a small dense code, the whole input at hand).
 *
 * The plain path keeps a (group, value) pair per row, grown by doubling,
 * then sorted by group: three copies of 16 bytes per row. Here the values
 * are gathered straight into one array of 8 bytes per row, laid out group
 * by group by a counting sort on the group code: a first pass counts each
 * code's values per task, a second (over the same row ranges) puts every
 * value at its place. Each group's values are then selected (median) or
 * sorted (distinct count) where they lie, in parallel over code ranges.
 * The other aggregates of the query are updated as usual by the direct
 * path, which skips these two.
 */
#include <stdlib.h>
#include <string.h>

#include "frame/groupby.h"

#define HOL_MORSEL (1 << 16)
#define HOL_RANGES 64

typedef struct hol_morsel {
    int64_t part, r0, n;
} hol_morsel;

typedef struct hol {
    gb_stream *g;
    pt_table *const *parts;
    hol_morsel *m;
    int64_t nm;
    int64_t T;     /* tasks of the two passes over the input */
    int nh;
    int hj[GB_MAX_AGGS]; /* the holistic aggregates */
    int64_t card;
    uint32_t **cnt;      /* per holistic: T * card counts, then cursors */
    uint32_t **start;    /* per holistic: card + 1 */
    uint64_t **vals;     /* per holistic: its non-null values, by code */
    gb_local **L;        /* per worker */
    int nw;
    int64_t charged;
} hol;

static gb_local *worker_local(hol *h, pt_task_ctx *tc) {
    int w = pt_task_ctx_worker(tc);
    return h->L[w >= 0 && w < h->nw - 1 ? w : h->nw - 1];
}

/* Counts (pass 0) or places (pass 1) the values of morsels
 * [t * nm / T, (t + 1) * nm / T). */
static pt_status pass_task(hol *h, pt_task_ctx *tc, int64_t t, int place) {
    gb_stream *g = h->g;
    gb_local *L = worker_local(h, tc);
    int64_t m0 = t * h->nm / h->T, m1 = (t + 1) * h->nm / h->T;
    for (int64_t mi = m0; mi < m1; mi++) {
        const hol_morsel *m = &h->m[mi];
        const pt_table *tb = h->parts[m->part];
        const int32_t *const *maps = g->pmaps ? g->pmaps + m->part * g->ndm : NULL;
        for (int64_t off = 0; off < m->n; off += GB_CHUNK) {
            int64_t n = m->n - off < GB_CHUNK ? m->n - off : GB_CHUNK, r0 = m->r0 + off;
            pt__gb_encode(g, L, tb, maps, r0, n);
            const uint64_t *code = L->w;
            for (int k = 0; k < h->nh; k++) {
                const gb_agg *a = &g->aggs[h->hj[k]];
                const pt_column *c = tb->cols[a->col];
                const uint8_t *ok = pt__gb_load_ok(c, r0, n, L->ok);
                uint32_t *cnt = h->cnt[k] + t * h->card;
                if (!place) {
                    if (ok)
                        for (int64_t i = 0; i < n; i++) cnt[code[i]] += ok[i];
                    else
                        for (int64_t i = 0; i < n; i++) cnt[code[i]]++;
                    continue;
                }
                uint64_t *vals = h->vals[k];
                const uint64_t *v;
                if (a->vk == GB_V_I64) {
                    pt__gb_load_i64(c, a->dm >= 0 && maps ? maps[a->dm] : NULL, r0, n, L->iv);
                    v = (const uint64_t *)L->iv;
                } else {
                    pt__gb_load_f64(c, r0, n, L->xv);
                    if (a->kind == PT_AGG_COUNT_DISTINCT)
                        /* -0.0 is 0.0 and all NaNs are one value */
                        for (int64_t i = 0; i < n; i++) {
                            if (L->xv[i] == 0) L->xv[i] = 0.0;
                            if (L->xv[i] != L->xv[i]) {
                                uint64_t nan = 0x7ff8000000000000ULL;
                                memcpy(&L->xv[i], &nan, 8);
                            }
                        }
                    v = (const uint64_t *)L->xv;
                }
                if (ok) {
                    for (int64_t i = 0; i < n; i++)
                        if (ok[i]) vals[cnt[code[i]]++] = v[i];
                } else {
                    for (int64_t i = 0; i < n; i++) vals[cnt[code[i]]++] = v[i];
                }
            }
        }
    }
    return PT_OK;
}

static pt_status count_task(pt_task_ctx *tc, void *arg, int64_t t, pt_error *err) {
    (void)err;
    return pass_task(arg, tc, t, 0);
}

static pt_status place_task(pt_task_ctx *tc, void *arg, int64_t t, pt_error *err) {
    (void)err;
    return pass_task(arg, tc, t, 1);
}

/* k-th smallest (0-based) of a[0, n) (Hoare selection); a is reordered so
 * that a[0, k) holds no value above it. */
static double select_kth(double *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double piv = a[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < piv) i++;
            while (a[j] > piv) j--;
            if (i <= j) {
                double t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    return a[k];
}

static int cmp_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static pt_status finish_task(pt_task_ctx *tc, void *arg, int64_t r, pt_error *err) {
    (void)tc;
    (void)err;
    hol *h = arg;
    gb_stream *g = h->g;
    int64_t c0 = h->card * r / HOL_RANGES, c1 = h->card * (r + 1) / HOL_RANGES;
    for (int k = 0; k < h->nh; k++) {
        int j = h->hj[k];
        const gb_agg *a = &g->aggs[j];
        const uint32_t *st = h->start[k];
        for (int64_t c = c0; c < c1; c++) {
            int64_t n = (int64_t)st[c + 1] - st[c];
            uint64_t *v = h->vals[k] + st[c];
            if (a->kind == PT_AGG_MEDIAN) {
                g->hnull[j][c] = n == 0;
                if (n == 0) continue;
                double *x = (double *)v;
                double m = select_kth(x, n, n / 2);
                if (n % 2 == 0) {
                    /* the lower middle is the largest of the lower half */
                    double lm = x[0];
                    for (int64_t i = 1; i < n / 2; i++)
                        if (x[i] > lm) lm = x[i];
                    m = lm + (m - lm) / 2;
                }
                memcpy(&g->hres[j][c], &m, 8);
            } else {
                int64_t nd = 0;
                if (n > 0) {
                    qsort(v, (size_t)n, sizeof *v, cmp_u64);
                    nd = 1;
                    for (int64_t i = 1; i < n; i++) nd += v[i - 1] != v[i];
                }
                g->hnull[j][c] = 0;
                g->hres[j][c] = nd;
            }
        }
    }
    return PT_OK;
}

void pt__gb_holistic_free(gb_stream *g) {
    for (int j = 0; g->hres && j < g->naggs; j++) {
        pt_free(g->hres[j]);
        pt_free(g->hnull[j]);
    }
    pt_free(g->hres);
    pt_free(g->hnull);
    g->hres = NULL;
    g->hnull = NULL;
    pt_mem_release(g->mem, g->hcharged);
    g->hcharged = 0;
}

static void hol_free(hol *h) {
    for (int k = 0; k < h->nh; k++) {
        if (h->cnt) pt_free(h->cnt[k]);
        if (h->start) pt_free(h->start[k]);
        if (h->vals) pt_free(h->vals[k]);
    }
    pt_free(h->cnt);
    pt_free(h->start);
    pt_free(h->vals);
    for (int i = 0; h->L && i < h->nw; i++) pt__gb_local_free(h->g, h->L[i]);
    pt_free(h->L);
    pt_free(h->m);
    pt_mem_release(h->g->mem, h->charged);
}

static pt_status run(hol *h, int64_t nparts, pt_error *err) {
    gb_stream *g = h->g;
    int64_t rows = 0;
    for (int64_t p = 0; p < nparts; p++) {
        rows += h->parts[p]->nrows;
        h->nm += (h->parts[p]->nrows + HOL_MORSEL - 1) / HOL_MORSEL;
    }
    if (rows >= (int64_t)UINT32_MAX)
        return pt_error_set(err, PT_EINVAL, "group-by: %lld rows are too many for a median "
                            "in one pass", (long long)rows);
    h->card = (int64_t)g->card;
    int threads = pt_ctx_threads(g->ctx);
    h->T = 4 * (int64_t)(threads > 0 ? threads : 1);
    if (h->T > h->nm) h->T = h->nm > 0 ? h->nm : 1;
    /* the values (8 bytes per row) and counts, against the budget; the
     * results (9 bytes per code) stay until the stream is freed */
    int64_t res = 9 * h->card * h->nh;
    h->charged = (int64_t)h->nh * (8 * rows + 4 * (h->T + 1) * h->card);
    PT_RETURN_NOT_OK(pt_mem_reserve(g->mem, res, "group-by median results", err));
    g->hcharged = res;
    pt_status s = pt_mem_reserve(g->mem, h->charged, "group-by median values", err);
    if (s != PT_OK) {
        h->charged = 0;
        return s;
    }
    h->m = pt_malloc((size_t)(h->nm + 1) * sizeof *h->m);
    h->cnt = pt_calloc((size_t)h->nh, sizeof *h->cnt);
    h->start = pt_calloc((size_t)h->nh, sizeof *h->start);
    h->vals = pt_calloc((size_t)h->nh, sizeof *h->vals);
    h->nw = g->nlocals;
    h->L = pt_calloc((size_t)h->nw, sizeof *h->L);
    g->hres = pt_calloc((size_t)g->naggs, sizeof *g->hres);
    g->hnull = pt_calloc((size_t)g->naggs, sizeof *g->hnull);
    if (!h->m || !h->cnt || !h->start || !h->vals || !h->L || !g->hres || !g->hnull)
        return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    for (int i = 0; i < h->nw; i++) PT_RETURN_NOT_OK(pt__gb_local_new(g, 0, &h->L[i], err));
    for (int k = 0; k < h->nh; k++) {
        int j = h->hj[k];
        h->cnt[k] = pt_calloc((size_t)(h->T * h->card), sizeof **h->cnt);
        h->start[k] = pt_malloc((size_t)(h->card + 1) * sizeof **h->start);
        h->vals[k] = pt_malloc((size_t)(rows + 1) * sizeof **h->vals);
        g->hres[j] = pt_calloc((size_t)h->card, sizeof **g->hres);
        g->hnull[j] = pt_calloc((size_t)h->card, 1);
        if (!h->cnt[k] || !h->start[k] || !h->vals[k] || !g->hres[j] || !g->hnull[j])
            return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    }
    int64_t k = 0;
    for (int64_t p = 0; p < nparts; p++)
        for (int64_t r0 = 0; r0 < h->parts[p]->nrows; r0 += HOL_MORSEL, k++) {
            h->m[k].part = p;
            h->m[k].r0 = r0;
            h->m[k].n = h->parts[p]->nrows - r0 < HOL_MORSEL ? h->parts[p]->nrows - r0 : HOL_MORSEL;
        }
    pt_pool *pool = pt_ctx_pool(g->ctx);
    PT_RETURN_NOT_OK(pt_parallel_for(pool, h->T, count_task, h, NULL, err));
    /* counts -> each task's first place per code */
    for (int q = 0; q < h->nh; q++) {
        uint32_t *st = h->start[q], *cnt = h->cnt[q];
        uint32_t pos = 0;
        for (int64_t c = 0; c < h->card; c++) {
            st[c] = pos;
            for (int64_t t = 0; t < h->T; t++) {
                uint32_t n = cnt[t * h->card + c];
                cnt[t * h->card + c] = pos;
                pos += n;
            }
        }
        st[h->card] = pos;
    }
    PT_RETURN_NOT_OK(pt_parallel_for(pool, h->T, place_task, h, NULL, err));
    return pt_parallel_for(pool, HOL_RANGES, finish_task, h, NULL, err);
}

pt_status pt__gb_holistic_direct(gb_stream *g, pt_table *const *parts, int64_t nparts,
                                 pt_error *err) {
    hol h;
    memset(&h, 0, sizeof h);
    h.g = g;
    h.parts = parts;
    for (int j = 0; j < g->naggs; j++)
        if (g->aggs[j].holistic) h.hj[h.nh++] = j;
    if (h.nh == 0) return PT_OK;
    /* the dictionary maps of the partitions, as the push had them */
    pt_status s = pt__gb_dict_prepare(g, parts, nparts, err);
    if (s == PT_OK) s = run(&h, nparts, err);
    hol_free(&h);
    pt__gb_dict_release_cache(g);
    return s;
}
