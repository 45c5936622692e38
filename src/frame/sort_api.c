/*
 * sort_api.c - the in-memory entry points of the sort kernel: full sort of
 * partitions into one table, the sort permutation of one table, and top-n.
 *
 * Working memory is two arrays of (word, id) pairs, 32 bytes per row,
 * reserved on the context's budget before it is allocated, so a sort that
 * cannot fit fails with PT_EBUDGET before touching anything.
 */
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>

#include "frame/sort_internal.h"

/* Asks for transparent huge pages on a large fresh block before it is
 * touched: the radix passes and the gather walk it in hundreds of streams,
 * and 4 KiB pages would cost a TLB miss and a page fault each. */
static void advise_huge(void *p, int64_t n) {
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (n < 8 * (int64_t)huge) return;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    uintptr_t b = ((uintptr_t)p + (uintptr_t)n) & ~(huge - 1);
    if (b > a) (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)n;
#endif
}

/* Sorts every row of the plan; on success *kv_out holds the sorted pairs
 * (the caller frees it and releases kv_bytes). With tmp_out the scratch
 * array is handed out too (same size, counted in kv_bytes), for the
 * gather to reuse. */
static pt_status sort_all(pt__sort_plan *pl, const char *fn, pt__sort_kv **kv_out,
                          pt__sort_kv **tmp_out, int64_t *kv_bytes, pt_error *err) {
    pt_mem *mem = pt_ctx_mem(pl->ctx);
    int64_t n = pl->nrows;
    int64_t half = n * (int64_t)sizeof(pt__sort_kv);
    PT_RETURN_NOT_OK(pt_mem_reserve(mem, 2 * half, "sort keys", err));
    pt__sort_kv *kv = pt_malloc((size_t)(half ? half : 1));
    pt__sort_kv *tmp = pt_malloc((size_t)(half ? half : 1));
    pt_status st = PT_OK;
    if (!kv || !tmp)
        st = pt_error_set(err, PT_ENOMEM, "%s: out of memory for the keys of %lld rows", fn,
                          (long long)n);
    if (st == PT_OK) {
        advise_huge(kv, half);
        advise_huge(tmp, half);
    }
    if (st == PT_OK) st = pt__sort_fill_ids(pl, kv, err);
    if (st == PT_OK) st = pt__sort_kv_run(pl, kv, tmp, n, err);
    if (st != PT_OK) {
        pt_free(kv);
        pt_free(tmp);
        pt_mem_release(mem, 2 * half);
        return st;
    }
    if (tmp_out) {
        *tmp_out = tmp;
        *kv_bytes = 2 * half;
    } else {
        pt_free(tmp);
        pt_mem_release(mem, half);
        *kv_bytes = half;
    }
    *kv_out = kv;
    return PT_OK;
}

pt_status pt__sort(pt_ctx *ctx, pt_table *const *parts, int64_t nparts, int nkeys,
                   const pt__sort_key *keys, pt_table **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt__sort: out is NULL");
    *out = NULL;
    pt__sort_plan pl;
    PT_RETURN_NOT_OK(pt__sort_plan_init(&pl, "pt__sort", ctx, parts, nparts, nkeys, keys, err));
    pt__sort_kv *kv = NULL, *tmp = NULL;
    int64_t kvb = 0;
    pt_status st = sort_all(&pl, "pt__sort", &kv, &tmp, &kvb, err);
    if (st == PT_OK) {
        st = pt__sort_gather(pl.pool, pt_ctx_mem(ctx), parts, nparts, &kv[0].v, 2, pl.nrows, tmp,
                             pl.nrows * (int64_t)sizeof *tmp, out, err);
        pt_free(kv);
        pt_free(tmp);
        pt_mem_release(pt_ctx_mem(ctx), kvb);
    }
    pt__sort_plan_reset(&pl);
    return st;
}

pt_status pt__sort_indices(pt_ctx *ctx, const pt_table *t, int nkeys, const pt__sort_key *keys,
                           int64_t **perm, pt_error *err) {
    if (!perm) return pt_error_set(err, PT_EINVAL, "pt__sort_indices: perm is NULL");
    *perm = NULL;
    if (!t) return pt_error_set(err, PT_EINVAL, "pt__sort_indices: t is NULL");
    pt_table *parts[1] = {(pt_table *)t};
    pt__sort_plan pl;
    PT_RETURN_NOT_OK(
        pt__sort_plan_init(&pl, "pt__sort_indices", ctx, parts, 1, nkeys, keys, err));
    pt__sort_kv *kv = NULL;
    int64_t kvb = 0;
    pt_status st = sort_all(&pl, "pt__sort_indices", &kv, NULL, &kvb, err);
    if (st == PT_OK) {
        int64_t n = pl.nrows;
        int64_t *p = pt_malloc((size_t)(n ? n : 1) * sizeof *p);
        if (!p) {
            st = pt_error_set(err, PT_ENOMEM, "pt__sort_indices: out of memory for %lld indices",
                              (long long)n);
        } else {
            for (int64_t i = 0; i < n; i++) p[i] = (int64_t)(kv[i].v & PT__SORT_RMASK);
            *perm = p;
        }
        pt_free(kv);
        pt_mem_release(pt_ctx_mem(ctx), kvb);
    }
    pt__sort_plan_reset(&pl);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Top-n                                                                    */
/* ------------------------------------------------------------------------ */

/* Each chunk of rows keeps the best m rows seen in a max-heap whose top is
 * the worst of them. Rows arrive in id order, so a row equal to the top is
 * worse than it (later) and is skipped: ties keep input order. */
typedef struct topn_job {
    pt__sort_plan *pl;
    int64_t m, nchunks;
    uint64_t *heaps; /* nchunks * m */
    int64_t *sizes;
} topn_job;

/* Heap order: a above b when a sorts after b. */
static bool heap_above(const pt__sort_plan *pl, uint64_t a, uint64_t b) {
    int c = pt__sort_cmp_ids(pl, 0, a, b);
    return c > 0 || (c == 0 && a > b);
}

static void sift_down(const pt__sort_plan *pl, uint64_t *h, int64_t n, int64_t i) {
    uint64_t x = h[i];
    for (;;) {
        int64_t l = 2 * i + 1;
        if (l >= n) break;
        int64_t c = l + 1 < n && heap_above(pl, h[l + 1], h[l]) ? l + 1 : l;
        if (!heap_above(pl, h[c], x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void sift_up(const pt__sort_plan *pl, uint64_t *h, int64_t i) {
    uint64_t x = h[i];
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!heap_above(pl, x, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static pt_status topn_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    (void)err;
    topn_job *j = arg;
    const pt__sort_plan *pl = j->pl;
    int64_t a = pl->nrows * c / j->nchunks, b = pl->nrows * (c + 1) / j->nchunks;
    uint64_t *h = j->heaps + c * j->m;
    int64_t n = 0, p = 0;
    while (p + 1 < pl->nparts && pl->starts[p + 1] <= a) p++;
    for (int64_t i = a; i < b; i++) {
        while (i >= pl->starts[p + 1]) p++;
        uint64_t id = pt__sort_id(p, i - pl->starts[p]);
        if (n < j->m) {
            h[n] = id;
            sift_up(pl, h, n++);
        } else if (pt__sort_cmp_ids(pl, 0, id, h[0]) < 0) {
            h[0] = id;
            sift_down(pl, h, n, 0);
        }
    }
    j->sizes[c] = n;
    return PT_OK;
}

static int u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

pt_status pt__sort_topn(pt_ctx *ctx, pt_table *const *parts, int64_t nparts, int nkeys,
                        const pt__sort_key *keys, int64_t n, pt_table **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt__sort_topn: out is NULL");
    *out = NULL;
    if (n < 0) return pt_error_set(err, PT_EINVAL, "pt__sort_topn: n must be >= 0, got %lld", (long long)n);
    pt__sort_plan pl;
    PT_RETURN_NOT_OK(pt__sort_plan_init(&pl, "pt__sort_topn", ctx, parts, nparts, nkeys, keys, err));
    pt_mem *mem = pt_ctx_mem(ctx);
    int64_t total = pl.nrows, m = n < total ? n : total;
    pt_status st = PT_OK;
    if (m == 0 || nkeys == 0) {
        /* No keys: the first m rows in input order. */
        uint64_t *ids = pt_malloc((size_t)(m ? m : 1) * sizeof *ids);
        if (!ids) {
            st = pt_error_set(err, PT_ENOMEM, "pt__sort_topn: out of memory");
        } else {
            int64_t p = 0;
            for (int64_t i = 0; i < m; i++) {
                while (i >= pl.starts[p + 1]) p++;
                ids[i] = pt__sort_id(p, i - pl.starts[p]);
            }
            st = pt__sort_gather(pl.pool, mem, parts, nparts, ids, 1, m, NULL, 0, out, err);
        }
        pt_free(ids);
    } else if (m > total / 8 || m > (INT64_C(1) << 20)) {
        /* A large share of the rows: a full sort is as cheap. */
        pt__sort_kv *kv = NULL;
        int64_t kvb = 0;
        st = sort_all(&pl, "pt__sort_topn", &kv, NULL, &kvb, err);
        if (st == PT_OK) {
            st = pt__sort_gather(pl.pool, mem, parts, nparts, &kv[0].v, 2, m, NULL, 0, out, err);
            pt_free(kv);
            pt_mem_release(mem, kvb);
        }
    } else {
        topn_job j = {&pl, m, (int64_t)pl.threads * 4, NULL, NULL};
        if (j.nchunks > total / m) j.nchunks = total / m > 0 ? total / m : 1;
        int64_t cap = j.nchunks * m;
        int64_t bytes = cap * (int64_t)(8 + 2 * sizeof(pt__sort_kv));
        st = pt_mem_reserve(mem, bytes, "top-n candidates", err);
        if (st != PT_OK) goto done;
        j.heaps = pt_malloc((size_t)cap * 8);
        j.sizes = pt_calloc((size_t)j.nchunks, sizeof *j.sizes);
        pt__sort_kv *kv = pt_malloc((size_t)cap * sizeof *kv);
        pt__sort_kv *tmp = pt_malloc((size_t)cap * sizeof *tmp);
        if (!j.heaps || !j.sizes || !kv || !tmp)
            st = pt_error_set(err, PT_ENOMEM, "pt__sort_topn: out of memory for %lld candidates",
                              (long long)cap);
        if (st == PT_OK) st = pt_parallel_for(pl.pool, j.nchunks, topn_task, &j, NULL, err);
        if (st == PT_OK) {
            /* Candidates back in input order, so that the sort keeps ties
             * in that order; then the first m of their sorted order. */
            int64_t nc = 0;
            for (int64_t c = 0; c < j.nchunks; c++) {
                uint64_t *h = j.heaps + c * m;
                qsort(h, (size_t)j.sizes[c], 8, u64_cmp);
                for (int64_t i = 0; i < j.sizes[c]; i++) kv[nc++].v = h[i];
            }
            st = pt__sort_kv_run(&pl, kv, tmp, nc, err);
            if (st == PT_OK)
                st = pt__sort_gather(pl.pool, mem, parts, nparts, &kv[0].v, 2, m, NULL, 0, out, err);
        }
        pt_free(j.heaps);
        pt_free(j.sizes);
        pt_free(kv);
        pt_free(tmp);
        pt_mem_release(mem, bytes);
    }
done:
    pt__sort_plan_reset(&pl);
    return st;
}
