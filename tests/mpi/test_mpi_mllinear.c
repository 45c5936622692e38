/*
 * test_mpi_mllinear.c - data-parallel linear models under `mpirun -n N`:
 * every rank generates the same data set (seeded), keeps its contiguous
 * share, and trains with the MPI comm; every rank also trains on the whole
 * set alone (comm NULL). Full-batch L-BFGS must reach the same model
 * (relative difference <= 1e-9) for binary, multinomial and linear
 * regression, with even shards and with shards where a rank holds no row;
 * every rank must hold the same bits; mini-batch Adam must be reproducible
 * and independent of the rank count up to rounding; a run resumed from a
 * checkpoint written by rank 0 must end on the uninterrupted model.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ml/ml_internal.h"
#include "partita.h"

static int g_rank, g_size, g_fail;
static pt_comm *g_comm;

#define EXPECT(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            g_fail++;                                                          \
            fprintf(stderr, "rank %d: %s:%d: FAILED %s: ", g_rank, __FILE__,   \
                    __LINE__, #cond);                                          \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

static void ds_free(pt_dataset *d) {
    if (!d) return;
    pt_free(d->x);
    pt_free(d->indptr);
    pt_free(d->indices);
    pt_free(d->values);
    pt_free(d->y);
    pt_free(d->row_id);
    pt_free(d);
}

/* Same generator on every rank: labels 0 regression, 1 binary, k classes. */
static pt_dataset *gen(int64_t n, int64_t p, int kind, uint64_t seed) {
    pt_rng r;
    pt_rng_seed(&r, seed);
    pt_dataset *d = pt_calloc(1, sizeof *d);
    d->nrows = d->nrows_global = n;
    d->nfeatures = p;
    d->x = pt_calloc((size_t)(n * p + 1), sizeof(double));
    d->y = pt_calloc((size_t)(n + 1), sizeof(double));
    d->row_id = pt_calloc((size_t)(n + 1), sizeof(int64_t));
    d->nclasses = kind == 0 ? 0 : kind == 1 ? 2 : kind;
    double w[4][32];
    for (int c = 0; c < 4; c++)
        for (int j = 0; j < 32; j++) w[c][j] = pt_rng_normal(&r);
    for (int64_t i = 0; i < n; i++) {
        d->row_id[i] = i;
        double s[4] = {0.2, -0.1, 0.3, 0.0};
        for (int64_t j = 0; j < p; j++) {
            double scale = 1.0 + (double)(j % 4), v = 0.5 + scale * pt_rng_normal(&r);
            if (pt_rng_uniform(&r) < 0.25) v = 0;
            d->x[i * p + j] = v;
            for (int c = 0; c < 4; c++) s[c] += w[c][j % 32] * v / scale;
        }
        if (kind == 0) {
            d->y[i] = s[0] + 0.5 * pt_rng_normal(&r);
        } else if (kind == 1) {
            d->y[i] = pt_rng_uniform(&r) < 1.0 / (1.0 + exp(-s[0])) ? 1.0 : 0.0;
        } else {
            int best = 0;
            double bv = -1e300;
            for (int c = 0; c < kind; c++) {
                double v = s[c] + pt_rng_normal(&r);
                if (v > bv) bv = v, best = c;
            }
            d->y[i] = best;
        }
    }
    return d;
}

/* Rows [a, b) of d as a new dataset (dense or CSR). */
static pt_dataset *shard(const pt_dataset *d, int64_t a, int64_t b, bool sparse) {
    int64_t n = b - a, p = d->nfeatures;
    pt_dataset *s = pt_calloc(1, sizeof *s);
    s->nrows = n;
    s->nrows_global = d->nrows;
    s->nfeatures = p;
    s->nclasses = d->nclasses;
    s->y = pt_calloc((size_t)n + 1, sizeof(double));
    s->row_id = pt_calloc((size_t)n + 1, sizeof(int64_t));
    memcpy(s->y, d->y + a, (size_t)n * sizeof(double));
    memcpy(s->row_id, d->row_id + a, (size_t)n * sizeof(int64_t));
    if (!sparse) {
        s->x = pt_calloc((size_t)(n * p) + 1, sizeof(double));
        memcpy(s->x, d->x + a * p, (size_t)(n * p) * sizeof(double));
        return s;
    }
    s->sparse = true;
    s->indptr = pt_calloc((size_t)n + 1, sizeof(int64_t));
    s->indices = pt_calloc((size_t)(n * p) + 1, sizeof(int32_t));
    s->values = pt_calloc((size_t)(n * p) + 1, sizeof(double));
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < p; j++)
            if (d->x[(a + i) * p + j] != 0) {
                s->indices[k] = (int32_t)j;
                s->values[k++] = d->x[(a + i) * p + j];
            }
        s->indptr[i + 1] = k;
    }
    return s;
}

static double max_rel_diff(const double *a, const double *b, int64_t n) {
    double scale = 0, diff = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (int64_t i = 0; i < n; i++) diff = fmax(diff, fabs(a[i] - b[i]));
    return diff / fmax(scale, 1e-300);
}

/* Every rank holds the same bits: min and max over the ranks agree. */
static bool same_on_all_ranks(const double *v, int64_t n) {
    double *mx = malloc((size_t)n * sizeof(double)), *mn = malloc((size_t)n * sizeof(double));
    memcpy(mx, v, (size_t)n * sizeof(double));
    memcpy(mn, v, (size_t)n * sizeof(double));
    bool ok = pt_comm_allreduce(g_comm, mx, n, PT_DTYPE_FLOAT64, PT_REDOP_MAX, NULL) == PT_OK &&
              pt_comm_allreduce(g_comm, mn, n, PT_DTYPE_FLOAT64, PT_REDOP_MIN, NULL) == PT_OK &&
              memcmp(mx, mn, (size_t)n * sizeof(double)) == 0;
    free(mx);
    free(mn);
    return ok;
}

static pt_model *train(pt_train_opts *o, const pt_dataset *d, pt_comm *comm) {
    pt_error e = {0};
    pt_model *m = NULL;
    o->comm = comm;
    if (pt_train(o, d, &m, &e) != PT_OK) {
        fprintf(stderr, "rank %d: train: %s\n", g_rank, e.msg);
        g_fail++;
        return NULL;
    }
    return m;
}

/* split 0: even shares; 1: rank 0 holds most, the last rank none. */
static void lbfgs_case(const char *name, int labels, bool sparse, double reg, double alpha,
                       int split) {
    pt_dataset *all = gen(1200, 7, labels, 1000 + (uint64_t)labels);
    int64_t n = all->nrows, a, b;
    if (split == 0) {
        a = n * g_rank / g_size;
        b = n * (g_rank + 1) / g_size;
    } else {
        int64_t big = n * 3 / 5;
        if (g_rank == 0) a = 0, b = big;
        else if (g_rank == g_size - 1) a = b = n;
        else a = big + (n - big) * (g_rank - 1) / (g_size - 2), b = big + (n - big) * g_rank / (g_size - 2);
        if (g_size == 2 && g_rank == 0) b = n;
    }
    pt_dataset *mine = shard(all, a, b, sparse), *whole = shard(all, 0, n, sparse);
    pt_train_opts o;
    pt_train_opts_init(&o, labels == 0 ? PT_MODEL_LINREG : PT_MODEL_LOGREG);
    o.reg_param = reg;
    o.elastic_net = alpha;
    /* Run to the optimum: with a loose tol two runs whose sums round
     * differently may stop one iteration apart. */
    o.tol = 0;
    o.max_iter = 100;
    pt_model *dist = train(&o, mine, g_comm), *solo = train(&o, whole, NULL);
    if (dist && solo) {
        double diff = max_rel_diff(dist->params, solo->params, solo->nparams);
        EXPECT(diff <= 1e-9, "%s split %d: relative difference %g (%lld vs %lld iterations)", name,
               split, diff, (long long)dist->iterations, (long long)solo->iterations);
        EXPECT(same_on_all_ranks(dist->params, dist->nparams), "%s: ranks differ", name);
        EXPECT(fabs(dist->loss - solo->loss) <= 1e-12 * fabs(solo->loss), "%s: loss %.17g vs %.17g",
               name, dist->loss, solo->loss);
    }
    if (g_rank == 0)
        printf("%s split %d: %s (%lld / %lld iterations)\n", name, split, g_fail ? "FAILED" : "ok",
               dist ? (long long)dist->iterations : -1LL, solo ? (long long)solo->iterations : -1LL);
    pt_model_free(dist);
    pt_model_free(solo);
    ds_free(mine);
    ds_free(whole);
    ds_free(all);
}

static void adam_case(void) {
    pt_dataset *all = gen(2000, 5, 1, 77);
    int64_t n = all->nrows, a = n * g_rank / g_size, b = n * (g_rank + 1) / g_size;
    pt_dataset *mine = shard(all, a, b, false);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_LOGREG);
    o.solver = PT_SOLVER_ADAM;
    o.learning_rate = 0.01;
    o.max_iter = 5;
    o.batch_size = 100;
    o.reg_param = 0.01;
    pt_model *m1 = train(&o, mine, g_comm), *m2 = train(&o, mine, g_comm);
    pt_model *solo = train(&o, all, NULL);
    if (m1 && m2 && solo) {
        EXPECT(memcmp(m1->params, m2->params, (size_t)m1->nparams * sizeof(double)) == 0,
               "adam: two runs differ");
        EXPECT(same_on_all_ranks(m1->params, m1->nparams), "adam: ranks differ");
        double diff = max_rel_diff(m1->params, solo->params, solo->nparams);
        EXPECT(diff <= 1e-9, "adam: %d ranks vs 1 process: %g", g_size, diff);
    }
    if (g_rank == 0) printf("adam: %s\n", g_fail ? "FAILED" : "ok");
    pt_model_free(m1);
    pt_model_free(m2);
    pt_model_free(solo);
    ds_free(mine);
    ds_free(all);
}

/* Rank 0 writes checkpoints, every rank reads them back. */
static void resume_case(void) {
    char dir[256] = {0};
    if (g_rank == 0) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/pt_mpi_lin_XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir)) dir[0] = 0;
    }
    if (pt_comm_bcast(g_comm, dir, sizeof dir, 0, NULL) != PT_OK || !dir[0]) {
        g_fail++;
        return;
    }
    pt_dataset *all = gen(1500, 6, 3, 99);
    int64_t n = all->nrows, a = n * g_rank / g_size, b = n * (g_rank + 1) / g_size;
    pt_dataset *mine = shard(all, a, b, false);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_LOGREG);
    o.reg_param = 0.01;
    o.tol = 1e-12;
    o.max_iter = 20;
    pt_model *ref = train(&o, mine, g_comm);
    /* An "interrupted" run: stops after 7 iterations, checkpoints at 3, 6. */
    o.checkpoint_dir = dir;
    o.checkpoint_every = 3;
    o.max_iter = 7;
    pt_model *part = train(&o, mine, g_comm);
    o.max_iter = 20;
    o.resume = true;
    pt_model *res = train(&o, mine, g_comm);
    if (ref && res) {
        EXPECT(res->iterations == ref->iterations, "iterations %lld vs %lld",
               (long long)res->iterations, (long long)ref->iterations);
        EXPECT(memcmp(res->params, ref->params, (size_t)ref->nparams * sizeof(double)) == 0,
               "resumed model differs: %.17g vs %.17g", res->params[0], ref->params[0]);
    }
    if (g_rank == 0) printf("resume: %s\n", g_fail ? "FAILED" : "ok");
    pt_model_free(ref);
    pt_model_free(part);
    pt_model_free(res);
    ds_free(mine);
    ds_free(all);
    if (pt_comm_barrier(g_comm, NULL) != PT_OK) g_fail++;
    if (g_rank == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
}

int main(void) {
    pt_comm_opts co;
    pt_comm_opts_init(&co);
    co.backend = "mpi";
    co.timeout_s = 60;
    pt_error e = {0};
    if (pt_comm_init(&co, &g_comm, &e) != PT_OK) {
        fprintf(stderr, "pt_comm_init: %s\n", e.msg);
        return 1;
    }
    g_rank = pt_comm_rank(g_comm);
    g_size = pt_comm_size(g_comm);
    for (int split = 0; split < 2; split++) {
        lbfgs_case("binary", 1, false, 0.01, 0.0, split);
        lbfgs_case("binary-sparse", 1, true, 0.01, 0.0, split);
        lbfgs_case("multinomial", 3, false, 0.01, 0.0, split);
        lbfgs_case("multinomial-sparse", 4, true, 0.01, 0.0, split);
        lbfgs_case("linreg", 0, false, 0.1, 0.0, split);
        lbfgs_case("binary-l1", 1, false, 0.02, 0.7, split);
        if (pt_comm_failed(g_comm)) break;
    }
    if (!pt_comm_failed(g_comm)) adam_case();
    if (!pt_comm_failed(g_comm)) resume_case();
    int64_t fails = g_fail;
    if (pt_comm_failed(g_comm) ||
        pt_comm_allreduce(g_comm, &fails, 1, PT_DTYPE_INT64, PT_REDOP_SUM, &e) != PT_OK)
        fails = fails ? fails : 1;
    if (g_rank == 0) printf("%d ranks: %lld failures\n", g_size, (long long)fails);
    pt_comm_free(g_comm);
    return fails ? 1 : 0;
}
