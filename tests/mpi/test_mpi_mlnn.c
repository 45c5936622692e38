/*
 * test_mpi_mlnn.c - k-means and the MLP trained data-parallel under
 * `mpirun -n N`, on uneven shards (the last rank holds no rows when N >= 3,
 * and for the MLP rows are dealt round-robin), compared with the same
 * training in one process on all rows, which every rank runs itself.
 *
 * What is rank-count independent and checked as such: k-means picks the
 * same initial rows (counter-based draws on global row ids) and, on
 * well-separated blobs, the same assignments, so centres and cost agree
 * to 1e-9 (only the order of float sums differs). The MLP sees the same
 * batches whatever the sharding, but its sums are ordered per rank, so a
 * run is bit-reproducible for a given rank count and close (not equal) to
 * the one-process run; every rank holds the same parameters bit for bit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ml/ml_internal.h"
#include "partita.h"

#include "mpi_check.h"

/* Rows of a global matrix selected by `take`, as a dense shard with
 * global row ids. */
static pt_dataset *shard(const double *x, const double *y, int64_t n, int64_t nf,
                         bool (*take)(int64_t i, int64_t n), int64_t nglobal) {
    pt_dataset *d = pt_calloc(1, sizeof *d);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) m += take(i, n);
    d->nrows = m;
    d->nrows_global = nglobal;
    d->nfeatures = nf;
    d->x = pt_malloc((size_t)(m * nf + 1) * sizeof(double));
    d->y = pt_malloc((size_t)(m + 1) * sizeof(double));
    d->row_id = pt_malloc((size_t)(m + 1) * sizeof(int64_t));
    int64_t q = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!take(i, n)) continue;
        memcpy(d->x + q * nf, x + i * nf, (size_t)nf * sizeof(double));
        d->y[q] = y[i];
        d->row_id[q++] = i;
    }
    return d;
}

static void ds_free(pt_dataset *d) {
    if (!d) return;
    pt_free(d->x);
    pt_free(d->y);
    pt_free(d->row_id);
    pt_free(d);
}

static bool take_all(int64_t i, int64_t n) {
    (void)i;
    (void)n;
    return true;
}

/* Contiguous, uneven: rank r gets a share proportional to (size - r), and
 * the last rank none when size >= 3. */
static bool take_uneven(int64_t i, int64_t n) {
    int parts = g_size >= 3 ? g_size - 1 : g_size;
    int64_t tot = (int64_t)parts * (parts + 1) / 2, lo = 0;
    for (int r = 0; r < parts; r++) {
        int64_t hi = r == parts - 1 ? n : lo + n * (parts - r) / tot;
        if (i >= lo && i < hi) return r == g_rank;
        lo = hi;
    }
    return false;
}

static bool take_round_robin(int64_t i, int64_t n) {
    (void)n;
    return i % g_size == g_rank;
}

/* Every rank holds the same bytes as rank 0. */
static bool same_on_all_ranks(pt_comm *c, const double *v, int64_t n) {
    double *r0 = malloc((size_t)n * sizeof(double));
    memcpy(r0, v, (size_t)n * sizeof(double));
    int32_t same = 1;
    if (pt_comm_bcast(c, r0, n * (int64_t)sizeof(double), 0, &g_err) != PT_OK) same = 0;
    if (same) same = memcmp(r0, v, (size_t)n * sizeof(double)) == 0;
    free(r0);
    if (pt_comm_allreduce(c, &same, 1, PT_DTYPE_INT32, PT_REDOP_MIN, &g_err) != PT_OK) return false;
    return same == 1;
}

static double max_rel_diff(const double *a, const double *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]) / fmax(1.0, fmax(fabs(a[i]), fabs(b[i])));
        if (d > m) m = d;
    }
    return m;
}

static void test_kmeans(pt_comm *c, pt_ctx *ctx) {
    int64_t n = 3001, nf = 5, k = 4;
    double *x = malloc((size_t)(n * nf) * sizeof(double)), *y = calloc((size_t)n, sizeof(double));
    pt_rng r;
    pt_rng_seed(&r, 99);
    for (int64_t i = 0; i < n; i++)
        for (int64_t f = 0; f < nf; f++)
            x[i * nf + f] = (f == i % k ? 20.0 : 0.0) + pt_rng_uniform(&r) * 2 - 1;
    pt_dataset *full = shard(x, y, n, nf, take_all, n);
    pt_dataset *part = shard(x, y, n, nf, take_uneven, n);
    for (int pp = 0; pp < 2; pp++) {
        pt_train_opts o;
        pt_train_opts_init(&o, PT_MODEL_KMEANS);
        o.k = (int)k;
        o.init_plus_plus = pp;
        o.max_iter = 10;
        o.ctx = ctx;
        pt_model *ref = NULL, *dist = NULL;
        OK(pt_train(&o, full, &ref, &g_err));
        o.comm = c;
        OK(pt_train(&o, part, &dist, &g_err));
        const double *a = pt_model_centers(ref), *b = pt_model_centers(dist);
        double rd = max_rel_diff(a, b, k * nf);
        EXPECT(rd <= 1e-9, "pp=%d centres differ by %g", pp, rd);
        EXPECT(fabs(pt_model_loss(ref) - pt_model_loss(dist)) <= 1e-9 * pt_model_loss(ref),
               "pp=%d cost %.17g vs %.17g", pp, pt_model_loss(ref), pt_model_loss(dist));
        EXPECT(same_on_all_ranks(c, b, k * nf), "pp=%d centres differ between ranks", pp);
        double cost = 0;
        OK(pt_kmeans_cost(c, ctx, dist, part, &cost, &g_err));
        EXPECT(fabs(cost - pt_model_loss(dist)) <= 1e-9 * cost, "cost %.17g vs loss %.17g", cost,
               pt_model_loss(dist));
        pt_model_free(ref);
        pt_model_free(dist);
    }
    ds_free(full);
    ds_free(part);
    free(x);
    free(y);
}

static pt_model *train_mlp(pt_comm *c, pt_ctx *ctx, const pt_dataset *d, int epochs,
                           const char *ckpt, bool resume) {
    static int hidden[1] = {12};
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_MLP);
    o.nhidden = 1;
    o.hidden = hidden;
    o.max_iter = epochs;
    o.batch_size = 128;
    o.reg_param = 1e-3;
    o.ctx = ctx;
    o.comm = c;
    o.checkpoint_dir = ckpt;
    o.checkpoint_every = ckpt ? 1 : 0;
    o.resume = resume;
    pt_model *m = NULL;
    if (pt_train(&o, d, &m, &g_err) != PT_OK) {
        fprintf(stderr, "rank %d: train: %s\n", g_rank, g_err.msg);
        return NULL;
    }
    return m;
}

static void test_mlp(pt_comm *c, pt_ctx *ctx) {
    int64_t n = 1203, nf = 6;
    double *x = malloc((size_t)(n * nf) * sizeof(double)), *y = malloc((size_t)n * sizeof(double));
    pt_rng r;
    pt_rng_seed(&r, 5);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (double)(i % 3);
        for (int64_t f = 0; f < nf; f++)
            x[i * nf + f] = pt_rng_uniform(&r) * 2 - 1 + (f == i % 3 ? 1.0 : 0.0);
    }
    pt_dataset *full = shard(x, y, n, nf, take_all, n);
    pt_dataset *part = shard(x, y, n, nf, take_round_robin, n);
    pt_model *ref = train_mlp(NULL, ctx, full, 5, NULL, false);
    pt_model *a = train_mlp(c, ctx, part, 5, NULL, false);
    pt_model *b = train_mlp(c, ctx, part, 5, NULL, false);
    EXPECT(ref && a && b, "training failed");
    if (ref && a && b) {
        EXPECT(memcmp(a->params, b->params, (size_t)a->nparams * sizeof(double)) == 0,
               "two runs differ");
        EXPECT(same_on_all_ranks(c, a->params, a->nparams), "params differ between ranks");
        double rd = max_rel_diff(ref->params, a->params, a->nparams);
        EXPECT(rd <= 1e-6, "one process vs %d ranks: %g", g_size, rd);
        if (g_rank == 0) printf("mlp: 1 process vs %d ranks: max relative difference %.3g\n", g_size, rd);
    }
    /* Resume under MPI: rank 0 writes, rank 0 reads and broadcasts. */
    char dir[256] = {0};
    if (g_rank == 0) {
        snprintf(dir, sizeof dir, "/tmp/pt_mpi_mlnn_XXXXXX");
        if (!mkdtemp(dir)) dir[0] = 0;
    }
    if (pt_comm_bcast(c, dir, sizeof dir, 0, &g_err) != PT_OK || !dir[0]) {
        g_fail++;
    } else {
        pt_model *p = train_mlp(c, ctx, part, 2, dir, false);
        pt_model *q = train_mlp(c, ctx, part, 5, dir, true);
        EXPECT(p && q, "checkpointed training failed");
        if (q && a)
            EXPECT(memcmp(q->params, a->params, (size_t)a->nparams * sizeof(double)) == 0,
                   "resumed run differs from the uninterrupted one");
        pt_model_free(p);
        pt_model_free(q);
        if (pt_comm_barrier(c, &g_err) != PT_OK) g_fail++;
        if (g_rank == 0) {
            char cmd[300];
            snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
            if (system(cmd) != 0) g_fail++;
        }
    }
    pt_model_free(ref);
    pt_model_free(a);
    pt_model_free(b);
    ds_free(full);
    ds_free(part);
    free(x);
    free(y);
}

int main(void) {
    pt_comm_opts o;
    pt_comm_opts_init(&o);
    o.backend = "mpi";
    o.timeout_s = 30;
    pt_comm *c = NULL;
    if (pt_comm_init(&o, &c, &g_err) != PT_OK) {
        fprintf(stderr, "pt_comm_init: %s\n", g_err.msg);
        return 1;
    }
    g_rank = pt_comm_rank(c);
    g_size = pt_comm_size(c);
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = 1;
    pt_ctx *ctx = NULL;
    if (pt_ctx_new(&co, &ctx, &g_err) != PT_OK) {
        fprintf(stderr, "pt_ctx_new: %s\n", g_err.msg);
        return 1;
    }
    test_kmeans(c, ctx);
    if (!pt_comm_failed(c)) test_mlp(c, ctx);
    int64_t fails = g_fail;
    pt_error e2;
    if (pt_comm_failed(c) || pt_comm_allreduce(c, &fails, 1, PT_DTYPE_INT64, PT_REDOP_SUM, &e2) != PT_OK)
        fails = 1;
    if (g_rank == 0) printf("%d ranks: %lld failures\n", g_size, (long long)fails);
    pt_ctx_free(ctx);
    pt_comm_free(c);
    return fails == 0 && g_fail == 0 ? 0 : 1;
}
