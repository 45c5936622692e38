/*
 * test_ml_kmeans.c - k-means against references written here: Lloyd steps
 * against a naive loop from the same initial centres, the cost against a
 * direct sum, centres of well-separated blobs against the true ones, plus
 * reproducibility, thread-count independence, dense/CSR agreement,
 * predictions and checkpoint resume.
 */
#include "pt_test.h"

#include "ml/ml_internal.h"
#include "ml/ml_nn.h"

/* Datasets built by hand (the dataset owns arrays allocated with pt_malloc;
 * freed here field by field). */
static pt_dataset *ds_dense(int64_t n, int64_t nf, const double *x) {
    pt_dataset *d = pt_calloc(1, sizeof *d);
    d->nrows = d->nrows_global = n;
    d->nfeatures = nf;
    d->x = pt_malloc((size_t)(n * nf) * sizeof(double));
    memcpy(d->x, x, (size_t)(n * nf) * sizeof(double));
    d->y = pt_calloc((size_t)n, sizeof(double));
    d->row_id = pt_malloc((size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) d->row_id[i] = i;
    return d;
}

/* The same rows in CSR form (zeros dropped). */
static pt_dataset *ds_sparse(int64_t n, int64_t nf, const double *x) {
    pt_dataset *d = pt_calloc(1, sizeof *d);
    d->nrows = d->nrows_global = n;
    d->nfeatures = nf;
    d->sparse = true;
    d->indptr = pt_malloc((size_t)(n + 1) * sizeof(int64_t));
    int64_t nnz = 0;
    for (int64_t i = 0; i < n * nf; i++) nnz += x[i] != 0;
    d->indices = pt_malloc((size_t)(nnz + 1) * sizeof(int32_t));
    d->values = pt_malloc((size_t)(nnz + 1) * sizeof(double));
    int64_t p = 0;
    for (int64_t i = 0; i < n; i++) {
        d->indptr[i] = p;
        for (int64_t f = 0; f < nf; f++)
            if (x[i * nf + f] != 0) {
                d->indices[p] = (int32_t)f;
                d->values[p++] = x[i * nf + f];
            }
    }
    d->indptr[n] = p;
    d->y = pt_calloc((size_t)n, sizeof(double));
    d->row_id = pt_malloc((size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) d->row_id[i] = i;
    return d;
}

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

/* Uniform random rows in [0, 1)^nf, some entries zeroed (for CSR). */
static double *rand_rows(int64_t n, int64_t nf, uint64_t seed) {
    pt_rng r;
    pt_rng_seed(&r, seed);
    double *x = malloc((size_t)(n * nf) * sizeof(double));
    for (int64_t i = 0; i < n * nf; i++) {
        double u = pt_rng_uniform(&r);
        x[i] = u < 0.2 ? 0.0 : u;
    }
    return x;
}

static const double BLOB_C[4][3] = {{0, 0, 0}, {10, 0, 0}, {0, 10, 5}, {-8, -8, 8}};

/* 4 blobs of n/4 rows each, noise of +-0.5 around BLOB_C. */
static double *blob_rows(int64_t n, uint64_t seed) {
    pt_rng r;
    pt_rng_seed(&r, seed);
    double *x = malloc((size_t)(n * 3) * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int f = 0; f < 3; f++) x[i * 3 + f] = BLOB_C[i % 4][f] + pt_rng_uniform(&r) - 0.5;
    return x;
}

static double sq(const double *a, const double *b, int64_t nf) {
    double s = 0;
    for (int64_t f = 0; f < nf; f++) s += (a[f] - b[f]) * (a[f] - b[f]);
    return s;
}

static int64_t nearest(const double *x, const double *C, int64_t k, int64_t nf) {
    int64_t b = 0;
    for (int64_t j = 1; j < k; j++)
        if (sq(x, C + j * nf, nf) < sq(x, C + b * nf, nf)) b = j;
    return b;
}

/* The textbook Lloyd step: nearest centre, then the mean of its rows (an
 * empty cluster keeps its centre). */
static void naive_lloyd(const double *x, int64_t n, int64_t nf, double *C, int64_t k) {
    double *s = calloc((size_t)(k * nf), sizeof(double));
    double *c = calloc((size_t)k, sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        int64_t j = nearest(x + i * nf, C, k, nf);
        for (int64_t f = 0; f < nf; f++) s[j * nf + f] += x[i * nf + f];
        c[j] += 1;
    }
    for (int64_t j = 0; j < k; j++)
        if (c[j] > 0)
            for (int64_t f = 0; f < nf; f++) C[j * nf + f] = s[j * nf + f] / c[j];
    free(s);
    free(c);
}

static double naive_cost(const double *x, int64_t n, int64_t nf, const double *C, int64_t k) {
    double t = 0;
    for (int64_t i = 0; i < n; i++) t += sq(x + i * nf, C + nearest(x + i * nf, C, k, nf) * nf, nf);
    return t;
}

static pt_ctx *ctx_threads(int t) {
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = t;
    pt_ctx *c = NULL;
    pt_error e;
    if (pt_ctx_new(&co, &c, &e) != PT_OK) return NULL;
    return c;
}

TEST(kmeans_blobs_recover_centres) {
    int64_t n = 2000;
    double *x = blob_rows(n, 7);
    pt_dataset *d = ds_dense(n, 3, x);
    for (int pp = 0; pp < 2; pp++) {
        pt_train_opts o;
        pt_train_opts_init(&o, PT_MODEL_KMEANS);
        o.k = 4;
        o.max_iter = 20;
        o.init_plus_plus = pp;
        pt_model *m = NULL;
        pt_error e;
        CHECK_OK(pt_train(&o, d, &m, &e), &e);
        const double *C = pt_model_centers(m);
        CHECK(C != NULL);
        CHECK_EQ_I(pt_model_nclasses(m), 4);
        for (int t = 0; t < 4; t++) {
            int64_t j = nearest(BLOB_C[t], C, 4, 3);
            CHECK_MSG(sq(BLOB_C[t], C + j * 3, 3) < 0.05 * 0.05,
                      "pp=%d blob %d: centre (%g %g %g)", pp, t, C[j * 3], C[j * 3 + 1],
                      C[j * 3 + 2]);
        }
        /* Noise uniform in a cube of side 1: E|e|^2 = 3/12 per row. */
        CHECK_NEAR(pt_model_loss(m) / (double)n, 0.25, 0.05);
        pt_model_free(m);
    }
    ds_free(d);
    free(x);
}

/* From the same initial centres, pt_train's Lloyd iterations equal the
 * textbook loop (same assignments; sums in another order, so 1e-12). */
static void lloyd_vs_naive(bool sparse, bool pp, int iters) {
    int64_t n = 3000, nf = 5, k = 6;
    double *x = rand_rows(n, nf, 11);
    pt_dataset *d = sparse ? ds_sparse(n, nf, x) : ds_dense(n, nf, x);
    pt_ctx *ctx = ctx_threads(2);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_KMEANS);
    o.k = (int)k;
    o.init_plus_plus = pp;
    o.max_iter = iters;
    o.tol = 0;
    o.ctx = ctx;
    double C[6 * 5];
    pt_error e;
    pt_status st = pt__kmeans_init(&o, d, C, &e);
    if (st != PT_OK) pt_test_fail(__FILE__, __LINE__, "init: %s", e.msg);
    for (int it = 0; it < iters; it++) naive_lloyd(x, n, nf, C, k);
    pt_model *m = NULL;
    st = pt_train(&o, d, &m, &e);
    if (st != PT_OK) {
        pt_test_fail(__FILE__, __LINE__, "train: %s", e.msg);
    } else {
        const double *M = pt_model_centers(m);
        for (int64_t i = 0; i < k * nf; i++)
            if (!(fabs(M[i] - C[i]) <= 1e-12)) {
                pt_test_fail(__FILE__, __LINE__, "sparse=%d pp=%d centre value %lld: %.17g vs %.17g",
                             sparse, pp, (long long)i, M[i], C[i]);
                break;
            }
        CHECK_EQ_I(pt_model_iterations(m), iters);
        double ref = naive_cost(x, n, nf, C, k);
        if (!(fabs(pt_model_loss(m) - ref) <= 1e-9 * ref))
            pt_test_fail(__FILE__, __LINE__, "loss %.17g vs %.17g", pt_model_loss(m), ref);
    }
    pt_model_free(m);
    pt_ctx_free(ctx);
    ds_free(d);
    free(x);
}

TEST(kmeans_lloyd_one_step_matches_naive) {
    lloyd_vs_naive(false, false, 1);
    lloyd_vs_naive(false, true, 1);
    lloyd_vs_naive(true, false, 1);
}

TEST(kmeans_lloyd_three_steps_match_naive) {
    lloyd_vs_naive(false, false, 3);
    lloyd_vs_naive(true, true, 3);
}

TEST(kmeans_init_picks_rows_and_is_reproducible) {
    int64_t n = 1500, nf = 4, k = 5;
    double *x = rand_rows(n, nf, 3);
    pt_dataset *d = ds_dense(n, nf, x);
    for (int pp = 0; pp < 2; pp++) {
        pt_train_opts o;
        pt_train_opts_init(&o, PT_MODEL_KMEANS);
        o.k = (int)k;
        o.init_plus_plus = pp;
        double a[5 * 4], b[5 * 4], c[5 * 4];
        pt_error e;
        CHECK_OK(pt__kmeans_init(&o, d, a, &e), &e);
        CHECK_OK(pt__kmeans_init(&o, d, b, &e), &e);
        CHECK(memcmp(a, b, sizeof a) == 0);
        o.seed = 43;
        CHECK_OK(pt__kmeans_init(&o, d, c, &e), &e);
        CHECK(memcmp(a, c, sizeof a) != 0);
        if (pp) {
            /* k-means++ centres are data rows, all distinct here. */
            for (int64_t j = 0; j < k; j++) {
                int64_t hit = -1;
                for (int64_t i = 0; i < n && hit < 0; i++)
                    if (memcmp(x + i * nf, a + j * nf, (size_t)nf * sizeof(double)) == 0) hit = i;
                CHECK_MSG(hit >= 0, "centre %lld is not a row", (long long)j);
                for (int64_t j2 = 0; j2 < j; j2++)
                    CHECK(memcmp(a + j * nf, a + j2 * nf, (size_t)nf * sizeof(double)) != 0);
            }
        }
    }
    ds_free(d);
    free(x);
}

TEST(kmeans_thread_count_independent) {
    int64_t n = 9000, nf = 8;
    double *x = rand_rows(n, nf, 5);
    pt_dataset *d = ds_dense(n, nf, x);
    double loss[3];
    double cent[3][7 * 8];
    int threads[3] = {1, 2, 4};
    for (int t = 0; t < 3; t++) {
        pt_ctx *ctx = ctx_threads(threads[t]);
        pt_train_opts o;
        pt_train_opts_init(&o, PT_MODEL_KMEANS);
        o.k = 7;
        o.max_iter = 10;
        o.ctx = ctx;
        pt_model *m = NULL;
        pt_error e;
        CHECK_OK(pt_train(&o, d, &m, &e), &e);
        memcpy(cent[t], pt_model_centers(m), sizeof cent[t]);
        loss[t] = pt_model_loss(m);
        pt_model_free(m);
        pt_ctx_free(ctx);
    }
    CHECK(memcmp(cent[0], cent[1], sizeof cent[0]) == 0);
    CHECK(memcmp(cent[0], cent[2], sizeof cent[0]) == 0);
    CHECK(loss[0] == loss[1] && loss[0] == loss[2]);
    ds_free(d);
    free(x);
}

TEST(kmeans_cost_and_predict_match_direct_computation) {
    int64_t n = 2500, nf = 6, k = 4;
    double *x = rand_rows(n, nf, 9);
    pt_dataset *dd = ds_dense(n, nf, x), *ds = ds_sparse(n, nf, x);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_KMEANS);
    o.k = (int)k;
    o.max_iter = 5;
    pt_model *m = NULL;
    pt_error e;
    CHECK_OK(pt_train(&o, dd, &m, &e), &e);
    const double *C = pt_model_centers(m);
    double ref = naive_cost(x, n, nf, C, k);
    CHECK_NEAR(pt_model_loss(m), ref, 1e-10);
    for (int s = 0; s < 2; s++) {
        pt_dataset *d = s ? ds : dd;
        double cost = -1;
        CHECK_OK(pt_kmeans_cost(NULL, NULL, m, d, &cost, &e), &e);
        CHECK_NEAR(cost, ref, 1e-10);
        pt_predictions p;
        CHECK_OK(pt_model_predict(m, NULL, d, &p, &e), &e);
        CHECK_EQ_I(p.n, n);
        CHECK_EQ_I(p.ncols, k);
        CHECK(p.prob == NULL);
        for (int64_t i = 0; i < n; i++) {
            CHECK_EQ_I((int64_t)p.label[i], nearest(x + i * nf, C, k, nf));
            for (int64_t j = 0; j < k; j++)
                CHECK_NEAR(p.raw[i * k + j], sqrt(sq(x + i * nf, C + j * nf, nf)), 1e-9);
        }
        pt_predictions_free(&p);
    }
    /* Wrong model kind and shape errors name the problem. */
    double cost;
    dd->nfeatures = 7;
    CHECK(pt_kmeans_cost(NULL, NULL, m, dd, &cost, &e) == PT_EINVAL);
    CHECK_CONTAINS(e.msg, "7 features");
    dd->nfeatures = nf;
    pt_model_free(m);
    ds_free(dd);
    ds_free(ds);
    free(x);
}

TEST(kmeans_dense_and_sparse_agree) {
    int64_t n = 2000, nf = 6;
    double *x = rand_rows(n, nf, 21);
    pt_dataset *dd = ds_dense(n, nf, x), *ds = ds_sparse(n, nf, x);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_KMEANS);
    o.k = 3;
    o.max_iter = 8;
    pt_model *a = NULL, *b = NULL;
    pt_error e;
    CHECK_OK(pt_train(&o, dd, &a, &e), &e);
    CHECK_OK(pt_train(&o, ds, &b, &e), &e);
    for (int64_t i = 0; i < 3 * nf; i++)
        CHECK_NEAR(pt_model_centers(a)[i], pt_model_centers(b)[i], 1e-10);
    pt_model_free(a);
    pt_model_free(b);
    ds_free(dd);
    ds_free(ds);
    free(x);
}

TEST(kmeans_too_many_clusters_is_an_error) {
    double x[6] = {1, 2, 3, 4, 5, 6};
    pt_dataset *d = ds_dense(3, 2, x);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_KMEANS);
    o.k = 5;
    pt_model *m = NULL;
    pt_error e;
    CHECK(pt_train(&o, d, &m, &e) == PT_EINVAL);
    CHECK(m == NULL);
    CHECK_CONTAINS(e.msg, "k = 5");
    CHECK_CONTAINS(e.msg, "3 rows");
    ds_free(d);
}

/* Duplicate rows: fewer distinct points than k still gives k centres. */
TEST(kmeans_duplicate_rows) {
    double x[10] = {1, 1, 1, 1, 1, 1, 5, 5, 5, 5};
    pt_dataset *d = ds_dense(5, 2, x);
    for (int pp = 0; pp < 2; pp++) {
        pt_train_opts o;
        pt_train_opts_init(&o, PT_MODEL_KMEANS);
        o.k = 3;
        o.init_plus_plus = pp;
        pt_model *m = NULL;
        pt_error e;
        CHECK_OK(pt_train(&o, d, &m, &e), &e);
        CHECK_NEAR(pt_model_loss(m), 0.0, 1e-12);
        pt_model_free(m);
    }
    ds_free(d);
}

static void count_progress(const pt_train_progress *p, void *arg) {
    (void)p;
    (*(int *)arg)++;
}

TEST(kmeans_checkpoint_resume_equals_uninterrupted) {
    int64_t n = 4000, nf = 4;
    double *x = rand_rows(n, nf, 31);
    pt_dataset *d = ds_dense(n, nf, x);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_KMEANS);
    o.k = 8;
    o.tol = 0;
    o.max_iter = 12;
    pt_model *full = NULL, *part = NULL, *res = NULL;
    pt_error e;
    CHECK_OK(pt_train(&o, d, &full, &e), &e);
    /* A run stopped after 5 iterations leaves checkpoints behind... */
    o.checkpoint_dir = pt_test_tmp("km_ckpt");
    o.checkpoint_every = 1;
    o.max_iter = 5;
    CHECK_OK(pt_train(&o, d, &part, &e), &e);
    /* ...and the resumed run picks up from the newest one. */
    int calls = 0;
    o.max_iter = 12;
    o.resume = true;
    o.progress = count_progress;
    o.progress_arg = &calls;
    CHECK_OK(pt_train(&o, d, &res, &e), &e);
    CHECK_EQ_I(calls, 12 - 5);
    CHECK_EQ_I(pt_model_iterations(res), pt_model_iterations(full));
    CHECK(memcmp(pt_model_centers(full), pt_model_centers(res), 8 * 4 * sizeof(double)) == 0);
    CHECK(pt_model_loss(full) == pt_model_loss(res));
    pt_model_free(full);
    pt_model_free(part);
    pt_model_free(res);
    ds_free(d);
    free(x);
}

TEST(kmeans_saved_model_predicts_identically) {
    int64_t n = 1200, nf = 5;
    double *x = rand_rows(n, nf, 77);
    pt_dataset *d = ds_dense(n, nf, x);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_KMEANS);
    o.k = 6;
    o.max_iter = 5;
    pt_model *m = NULL, *l = NULL;
    pt_error e;
    CHECK_OK(pt_train(&o, d, &m, &e), &e);
    const char *path = pt_test_tmp("km.model");
    CHECK_OK(pt_model_save(m, path, &e), &e);
    CHECK_OK(pt_model_load(path, &l, &e), &e);
    CHECK(pt_model_kind_of(l) == PT_MODEL_KMEANS);
    CHECK_EQ_I(pt_model_nclasses(l), 6);
    pt_predictions a, b;
    CHECK_OK(pt_model_predict(m, NULL, d, &a, &e), &e);
    CHECK_OK(pt_model_predict(l, NULL, d, &b, &e), &e);
    CHECK(memcmp(a.label, b.label, (size_t)n * sizeof(double)) == 0);
    CHECK(memcmp(a.raw, b.raw, (size_t)(n * 6) * sizeof(double)) == 0);
    pt_predictions_free(&a);
    pt_predictions_free(&b);
    pt_model_free(m);
    pt_model_free(l);
    ds_free(d);
    free(x);
}

/* Wide CSR rows take the scalar sparse distance loop instead of dense
 * blocks; it must agree with the dense computation. */
TEST(kmeans_wide_sparse_agrees_with_dense) {
    int64_t n = 300, nf = 9000;
    double *x = calloc((size_t)(n * nf), sizeof(double));
    pt_rng r;
    pt_rng_seed(&r, 13);
    for (int64_t i = 0; i < n; i++)
        for (int t = 0; t < 6; t++)
            x[i * nf + (int64_t)pt_rng_below(&r, 40) * 200 + (i % 3)] = 1 + pt_rng_uniform(&r);
    pt_dataset *dd = ds_dense(n, nf, x), *ds = ds_sparse(n, nf, x);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_KMEANS);
    o.k = 3;
    o.max_iter = 4;
    pt_model *a = NULL, *b = NULL;
    pt_error e;
    CHECK_OK(pt_train(&o, dd, &a, &e), &e);
    CHECK_OK(pt_train(&o, ds, &b, &e), &e);
    for (int64_t i = 0; i < 3 * nf; i++)
        CHECK_NEAR(pt_model_centers(a)[i], pt_model_centers(b)[i], 1e-10);
    CHECK_NEAR(pt_model_loss(a), pt_model_loss(b), 1e-10);
    CHECK_NEAR(pt_model_loss(b), naive_cost(x, n, nf, pt_model_centers(b), 3), 1e-10);
    pt_model_free(a);
    pt_model_free(b);
    ds_free(dd);
    ds_free(ds);
    free(x);
}
