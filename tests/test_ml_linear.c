/*
 * test_ml_linear.c - linear and logistic regression against independent
 * references written here: finite differences for every gradient, the
 * normal equations (Cholesky) for least squares and ridge, Newton's method
 * for binary and multinomial logistic regression, the KKT conditions for
 * L1 (OWL-QN); determinism across thread counts, reproducible mini-batch
 * runs, predictions, errors, and resume after a SIGKILL.
 */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ml/ml_internal.h"
#include "ml/ml_lbfgs.h"
#include "ml/ml_linear.h"
#include "pt_test.h"

/* ------------------------------------------------------------------------ */
/* Data                                                                     */
/* ------------------------------------------------------------------------ */

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

/* Dense rows with features of varied location and scale (so that
 * standardisation and centring matter), every ~3rd value zero. Labels:
 * kind 0 regression y = w.x + 0.3 + noise; kind 1 Bernoulli(sigmoid);
 * kind k >= 2 argmax of k noisy linear scores. */
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
    double w[4][64];
    for (int c = 0; c < 4; c++)
        for (int j = 0; j < 64; j++) w[c][j] = pt_rng_normal(&r) * (j % 4 == 3 ? 0.05 : 0.8);
    for (int64_t i = 0; i < n; i++) {
        d->row_id[i] = i;
        double s[4] = {0.3, -0.2, 0.1, 0.0};
        for (int64_t j = 0; j < p; j++) {
            double scale = 0.5 + (double)(j % 5), loc = (double)(j % 3) - 0.5;
            double v = pt_rng_uniform(&r) < 0.3 ? 0.0 : loc + scale * pt_rng_normal(&r);
            d->x[i * p + j] = v;
            for (int c = 0; c < 4; c++) s[c] += w[c][j % 64] * v / scale;
        }
        if (kind == 0) {
            d->y[i] = s[0] + 0.3 * pt_rng_normal(&r);
        } else if (kind == 1) {
            d->y[i] = pt_rng_uniform(&r) < 1.0 / (1.0 + exp(-s[0])) ? 1.0 : 0.0;
        } else {
            int best = 0;
            double bv = -1e300;
            for (int c = 0; c < kind && c < 4; c++) {
                double v = s[c] + pt_rng_normal(&r);
                if (v > bv) bv = v, best = c;
            }
            d->y[i] = best;
        }
    }
    return d;
}

/* The same rows stored as CSR (zeros dropped). */
static pt_dataset *to_sparse(const pt_dataset *s) {
    pt_dataset *d = pt_calloc(1, sizeof *d);
    *d = *s;
    int64_t n = s->nrows, p = s->nfeatures, nnz = 0;
    for (int64_t k = 0; k < n * p; k++) nnz += s->x[k] != 0;
    d->x = NULL;
    d->sparse = true;
    d->indptr = pt_calloc((size_t)n + 1, sizeof(int64_t));
    d->indices = pt_calloc((size_t)nnz + 1, sizeof(int32_t));
    d->values = pt_calloc((size_t)nnz + 1, sizeof(double));
    d->y = pt_calloc((size_t)n + 1, sizeof(double));
    d->row_id = pt_calloc((size_t)n + 1, sizeof(int64_t));
    memcpy(d->y, s->y, (size_t)n * sizeof(double));
    memcpy(d->row_id, s->row_id, (size_t)n * sizeof(int64_t));
    nnz = 0;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < p; j++)
            if (s->x[i * p + j] != 0) {
                d->indices[nnz] = (int32_t)j;
                d->values[nnz++] = s->x[i * p + j];
            }
        d->indptr[i + 1] = nnz;
    }
    return d;
}

/* Sample standard deviation (n - 1), as MLlib. */
static void col_std(const pt_dataset *d, double *sd) {
    int64_t n = d->nrows, p = d->nfeatures;
    for (int64_t j = 0; j < p; j++) {
        double mu = 0, ss = 0;
        for (int64_t i = 0; i < n; i++) mu += d->x[i * p + j];
        mu /= (double)n;
        for (int64_t i = 0; i < n; i++) ss += (d->x[i * p + j] - mu) * (d->x[i * p + j] - mu);
        sd[j] = sqrt(ss / (double)(n - 1));
    }
}

static pt_ctx *ctx_threads(int t) {
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = t;
    pt_ctx *c = NULL;
    if (pt_ctx_new(&co, &c, NULL) != PT_OK) return NULL;
    return c;
}

/* ------------------------------------------------------------------------ */
/* Dense linear algebra of the references                                   */
/* ------------------------------------------------------------------------ */

/* Solves A x = b (A n*n SPD, overwritten) by Cholesky; false if not SPD. */
static bool cholesky_solve(double *A, double *b, int n) {
    for (int j = 0; j < n; j++) {
        double s = A[j * n + j];
        for (int k = 0; k < j; k++) s -= A[j * n + k] * A[j * n + k];
        if (!(s > 0)) return false;
        A[j * n + j] = sqrt(s);
        for (int i = j + 1; i < n; i++) {
            double t = A[i * n + j];
            for (int k = 0; k < j; k++) t -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = t / A[j * n + j];
        }
    }
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < i; k++) b[i] -= A[i * n + k] * b[k];
        b[i] /= A[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        for (int k = i + 1; k < n; k++) b[i] -= A[k * n + i] * b[k];
        b[i] /= A[i * n + i];
    }
    return true;
}

/* Least squares with penalty: minimises (1/2n)|X~t - y|^2 + 1/2 sum pen_j t_j^2,
 * X~ = [X, 1] (intercept last when icpt). */
static bool ridge_ref(const pt_dataset *d, bool icpt, const double *pen, double *t) {
    int p = (int)d->nfeatures, q = p + (icpt ? 1 : 0);
    double *A = calloc((size_t)(q * q), sizeof(double));
    double xr[64];
    for (int j = 0; j < q; j++) t[j] = 0;
    for (int64_t i = 0; i < d->nrows; i++) {
        for (int j = 0; j < p; j++) xr[j] = d->x[i * p + j];
        if (icpt) xr[p] = 1.0;
        for (int a = 0; a < q; a++) {
            t[a] += xr[a] * d->y[i] / (double)d->nrows;
            for (int b = 0; b < q; b++) A[a * q + b] += xr[a] * xr[b] / (double)d->nrows;
        }
    }
    for (int j = 0; j < p; j++) A[j * q + j] += pen[j];
    bool ok = cholesky_solve(A, t, q);
    free(A);
    return ok;
}

/* Gaussian elimination with partial pivoting (A n*n overwritten). */
static bool gauss_solve(double *A, double *b, int n) {
    for (int c = 0; c < n; c++) {
        int piv = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(A[r * n + c]) > fabs(A[piv * n + c])) piv = r;
        if (A[piv * n + c] == 0) return false;
        if (piv != c) {
            for (int k = 0; k < n; k++) {
                double t = A[c * n + k];
                A[c * n + k] = A[piv * n + k];
                A[piv * n + k] = t;
            }
            double t = b[c];
            b[c] = b[piv];
            b[piv] = t;
        }
        for (int r = c + 1; r < n; r++) {
            double f = A[r * n + c] / A[c * n + c];
            for (int k = c; k < n; k++) A[r * n + k] -= f * A[c * n + k];
            b[r] -= f * b[c];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        for (int k = r + 1; k < n; k++) b[r] -= A[r * n + k] * b[k];
        b[r] /= A[r * n + r];
    }
    return true;
}

/* Newton's method for softmax (K >= 3) or logistic (K == 1) regression
 * with intercepts, objective (1/n) sum loss + 1/2 sum_j pen_j |w_.j|^2.
 * Output layout as the model: W[K*p] then b[K] (multinomial b centred). */
static bool newton_ref(const pt_dataset *d, int K, const double *pen, double *out) {
    int p = (int)d->nfeatures, q = p + 1, nt = K * q;
    double *th = calloc((size_t)nt, sizeof(double)), *g = calloc((size_t)nt, sizeof(double));
    double *H = calloc((size_t)(nt * nt), sizeof(double));
    double n = (double)d->nrows, xr[64], pr[8];
    bool ok = true;
    for (int it = 0; it < 40 && ok; it++) {
        memset(g, 0, (size_t)nt * sizeof(double));
        memset(H, 0, (size_t)(nt * nt) * sizeof(double));
        for (int64_t i = 0; i < d->nrows; i++) {
            for (int j = 0; j < p; j++) xr[j] = d->x[i * p + j];
            xr[p] = 1.0;
            int y = (int)d->y[i];
            if (K == 1) {
                double m = 0;
                for (int j = 0; j < q; j++) m += th[j] * xr[j];
                double s = 1.0 / (1.0 + exp(-m)), r = s - y;
                for (int a = 0; a < q; a++) {
                    g[a] += r * xr[a] / n;
                    for (int b = 0; b < q; b++) H[a * nt + b] += s * (1 - s) * xr[a] * xr[b] / n;
                }
                continue;
            }
            double mx = -1e300, sum = 0;
            for (int c = 0; c < K; c++) {
                double m = 0;
                for (int j = 0; j < q; j++) m += th[c * q + j] * xr[j];
                pr[c] = m;
                mx = fmax(mx, m);
            }
            for (int c = 0; c < K; c++) sum += pr[c] = exp(pr[c] - mx);
            for (int c = 0; c < K; c++) pr[c] /= sum;
            for (int c = 0; c < K; c++)
                for (int a = 0; a < q; a++) {
                    g[c * q + a] += (pr[c] - (c == y)) * xr[a] / n;
                    for (int c2 = 0; c2 < K; c2++) {
                        double h = (c == c2 ? pr[c] : 0.0) - pr[c] * pr[c2];
                        for (int b = 0; b < q; b++)
                            H[(c * q + a) * nt + c2 * q + b] += h * xr[a] * xr[b] / n;
                    }
                }
        }
        for (int c = 0; c < K; c++) {
            for (int j = 0; j < p; j++) {
                g[c * q + j] += pen[j] * th[c * q + j];
                H[(c * q + j) * nt + c * q + j] += pen[j];
            }
            /* The intercepts of a softmax move together freely: a tiny
             * ridge makes the system regular without moving the answer. */
            if (K > 1) H[(c * q + p) * nt + c * q + p] += 1e-12;
        }
        ok = gauss_solve(H, g, nt);
        for (int k = 0; k < nt; k++) th[k] -= g[k];
    }
    double mean = 0;
    for (int c = 0; c < K; c++) mean += th[c * q + p] / K;
    for (int c = 0; c < K; c++) {
        for (int j = 0; j < p; j++) out[c * p + j] = th[c * q + j];
        out[K * p + c] = th[c * q + p] - (K > 1 ? mean : 0.0);
    }
    free(th);
    free(g);
    free(H);
    return ok;
}

/* Gradient of the smooth part (loss + L2) of the logistic or squared loss
 * at model parameters (original scale, standardization off), written
 * independently of the library. */
static void ref_grad(const pt_dataset *d, bool logistic, double l2, const double *w, double b,
                     double *g, double *gb) {
    int64_t p = d->nfeatures;
    for (int64_t j = 0; j < p; j++) g[j] = l2 * w[j];
    *gb = 0;
    for (int64_t i = 0; i < d->nrows; i++) {
        double m = b;
        for (int64_t j = 0; j < p; j++) m += w[j] * d->x[i * p + j];
        double r = logistic ? 1.0 / (1.0 + exp(-m)) - d->y[i] : m - d->y[i];
        for (int64_t j = 0; j < p; j++) g[j] += r * d->x[i * p + j] / (double)d->nrows;
        *gb += r / (double)d->nrows;
    }
}

static double max_rel_diff(const double *a, const double *b, int64_t n) {
    double scale = 0, diff = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (int64_t i = 0; i < n; i++) diff = fmax(diff, fabs(a[i] - b[i]));
    return diff / fmax(scale, 1e-300);
}

/* ------------------------------------------------------------------------ */
/* Gradients against finite differences                                     */
/* ------------------------------------------------------------------------ */

static bool g_thin;

static void fd_case(pt_model_kind kind, int labels, bool sparse, bool stdz, bool icpt, int family,
                    double reg) {
    pt_error e = {0};
    pt_dataset *dd = gen(57, 6, labels, 100 + (uint64_t)labels);
    if (g_thin) /* below 1/8 stored: the hand-written CSR kernels */
        for (int64_t k = 0; k < dd->nrows * dd->nfeatures; k++)
            if (k % 9 != 0) dd->x[k] = 0;
    pt_dataset *d = sparse ? to_sparse(dd) : dd;
    pt_train_opts o;
    pt_train_opts_init(&o, kind);
    o.standardization = stdz;
    o.fit_intercept = icpt;
    o.family = family;
    o.reg_param = reg;
    o.elastic_net = 0.3;
    pt__linear_chunk_rows = 10; /* several chunks */
    int64_t nx = 0;
    pt_status st = pt__linear_objective(&o, d, NULL, &nx, NULL, NULL, &e);
    CHECK_MSG(st == PT_OK, "objective setup: %s", e.msg);
    double *x = calloc((size_t)nx, sizeof(double)), *g = calloc((size_t)nx, sizeof(double));
    double *g2 = calloc((size_t)nx, sizeof(double));
    pt_rng r;
    pt_rng_seed(&r, 7);
    for (int64_t k = 0; k < nx; k++) x[k] = 0.4 * pt_rng_normal(&r);
    /* Point 0: random; point 1: zero weights (the set-up statistics give
     * that evaluation without a pass over the rows). */
    for (int point = 0; point < 2; point++) {
        double f, fsum = 0;
        if (point == 1)
            for (int64_t k = 0; k < nx - nx / (d->nfeatures + 1); k++) x[k] = 0;
        CHECK_OK(pt__linear_objective(&o, d, x, NULL, &f, g, &e), &e);
        for (int64_t k = 0; k < nx; k++) {
            double h = 1e-5 * fmax(1.0, fabs(x[k])), fp, fm, keep = x[k];
            x[k] = keep + h;
            CHECK_OK(pt__linear_objective(&o, d, x, NULL, &fp, g2, &e), &e);
            x[k] = keep - h;
            CHECK_OK(pt__linear_objective(&o, d, x, NULL, &fm, g2, &e), &e);
            x[k] = keep;
            double fd = (fp - fm) / (2 * h);
            /* Intercepts without fitIntercept are pinned: gradient 0. */
            bool pinned = !icpt && k >= nx - nx / (d->nfeatures + 1);
            if (pinned) fd = 0;
            CHECK_MSG(fabs(fd - g[k]) <= 1e-6 * fmax(1.0, fabs(fd)),
                      "point %d param %lld of %lld: analytic %.12g vs finite difference %.12g",
                      point, (long long)k, (long long)nx, g[k], fd);
            fsum = fp + fm;
        }
        CHECK_NEAR(f, fsum / 2, 1e-8);
        /* Without standardisation the internal parameters are the model's:
         * the value itself checks against a direct computation. */
        if (!stdz && labels <= 1 && family != 2) {
            int64_t p = d->nfeatures;
            double loss = 0, l2 = 0;
            for (int64_t i = 0; i < dd->nrows; i++) {
                double m = icpt ? x[p] : 0.0;
                for (int64_t j = 0; j < p; j++) m += x[j] * dd->x[i * p + j];
                double y = dd->y[i];
                loss += kind == PT_MODEL_LINREG ? 0.5 * (m - y) * (m - y)
                                                : log(1 + exp(m)) - y * m;
            }
            for (int64_t j = 0; j < p; j++) l2 += x[j] * x[j];
            double want = loss / (double)dd->nrows + 0.5 * reg * 0.7 * l2;
            CHECK_NEAR(f, want, 1e-12);
        }
    }
    pt__linear_chunk_rows = 4096;
    free(x);
    free(g);
    free(g2);
    if (sparse) ds_free(d);
    ds_free(dd);
}

TEST(grad_linreg) {
    for (int m = 0; m < 8; m++) {
        fd_case(PT_MODEL_LINREG, 0, m & 1, m & 2, m & 4, 0, 0.1);
        if (pt_test_failed()) return;
    }
}

TEST(grad_binary) {
    for (int m = 0; m < 8; m++) {
        fd_case(PT_MODEL_LOGREG, 1, m & 1, m & 2, m & 4, 0, 0.1);
        if (pt_test_failed()) return;
    }
    fd_case(PT_MODEL_LOGREG, 1, false, true, true, 2, 0.05); /* binary as multinomial */
}

TEST(grad_multinomial) {
    for (int m = 0; m < 16; m++) {
        g_thin = m & 8;
        fd_case(PT_MODEL_LOGREG, 3, m & 1, m & 2, m & 4, 0, 0.1);
        g_thin = false;
        if (pt_test_failed()) return;
    }
}

/* ------------------------------------------------------------------------ */
/* Exact solutions                                                          */
/* ------------------------------------------------------------------------ */

static pt_model *train_ok(pt_train_opts *o, const pt_dataset *d) {
    pt_error e = {0};
    pt_model *m = NULL;
    pt_status st = pt_train(o, d, &m, &e);
    if (st != PT_OK) {
        pt_test_fail(__FILE__, __LINE__, "pt_train: %s", e.msg);
        return NULL;
    }
    return m;
}

static void ridge_case(bool icpt, bool stdz, double reg) {
    pt_dataset *d = gen(300, 5, 0, 11);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_LINREG);
    o.reg_param = reg;
    o.fit_intercept = icpt;
    o.standardization = stdz;
    o.tol = 1e-14;
    o.max_iter = 500;
    pt_model *m = train_ok(&o, d);
    if (!m) return;
    double sd[8], pen[8], t[8];
    col_std(d, sd);
    for (int j = 0; j < 5; j++) pen[j] = reg * (stdz ? sd[j] * sd[j] : 1.0);
    CHECK(ridge_ref(d, icpt, pen, t));
    int64_t rows, cols;
    const double *w = pt_model_coefficients(m, &rows, &cols);
    CHECK_EQ_I(rows, 1);
    CHECK_EQ_I(cols, 5);
    for (int j = 0; j < 5; j++) CHECK_NEAR(w[j], t[j], 1e-7);
    CHECK_NEAR(pt_model_intercepts(m)[0], icpt ? t[5] : 0.0, 1e-7);
    CHECK(pt_model_iterations(m) > 0);
    pt_model_free(m);
    ds_free(d);
}

TEST(linreg_normal_equations) {
    for (int k = 0; k < 4; k++) {
        ridge_case(k & 1, k & 2, 0.0);
        if (pt_test_failed()) return;
    }
}

TEST(ridge_closed_form) {
    for (int k = 0; k < 4; k++) {
        ridge_case(k & 1, k & 2, 0.3);
        if (pt_test_failed()) return;
    }
}

static void logistic_case(int K, bool stdz, double reg, bool sparse) {
    pt_dataset *dd = gen(400, 4, K == 1 ? 1 : K, 21 + (uint64_t)K);
    pt_dataset *d = sparse ? to_sparse(dd) : dd;
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_LOGREG);
    o.reg_param = reg;
    o.standardization = stdz;
    o.tol = 1e-14;
    o.max_iter = 1000;
    pt_model *m = train_ok(&o, d);
    if (!m) return;
    double sd[8], pen[8], want[64];
    col_std(dd, sd);
    for (int j = 0; j < 4; j++) pen[j] = reg * (stdz ? sd[j] * sd[j] : 1.0);
    CHECK(newton_ref(dd, K, pen, want));
    int64_t rows, cols;
    const double *w = pt_model_coefficients(m, &rows, &cols);
    CHECK_EQ_I(rows, K);
    CHECK_EQ_I(pt_model_nclasses(m), K == 1 ? 2 : K);
    double diff = max_rel_diff(w, want, rows * cols + rows);
    CHECK_MSG(diff <= 1e-6, "K=%d stdz=%d sparse=%d: max relative difference %g (w0 %.10g vs %.10g)",
              K, stdz, sparse, diff, w[0], want[0]);
    pt_model_free(m);
    if (sparse) ds_free(d);
    ds_free(dd);
}

TEST(logistic_binary_vs_newton) {
    logistic_case(1, false, 0.01, false);
    logistic_case(1, true, 0.01, false);
    logistic_case(1, true, 0.05, true);
    logistic_case(1, false, 0.0, false);
}

TEST(logistic_multinomial_vs_newton) {
    logistic_case(3, false, 0.02, false);
    logistic_case(3, true, 0.02, false);
    logistic_case(3, true, 0.02, true);
    logistic_case(4, false, 0.01, true);
}

/* L1: the KKT conditions of f + l1 |w|_1 hold at the result. */
static void l1_case(pt_model_kind kind, double reg, double alpha) {
    pt_dataset *d = gen(300, 12, kind == PT_MODEL_LINREG ? 0 : 1, 31);
    pt_train_opts o;
    pt_train_opts_init(&o, kind);
    o.reg_param = reg;
    o.elastic_net = alpha;
    o.standardization = false;
    o.tol = 1e-14;
    o.max_iter = 2000;
    pt_model *m = train_ok(&o, d);
    if (!m) return;
    const double *w = pt_model_coefficients(m, NULL, NULL);
    double b = pt_model_intercepts(m)[0], g[16], gb, l1 = reg * alpha;
    ref_grad(d, kind == PT_MODEL_LOGREG, reg * (1 - alpha), w, b, g, &gb);
    int zeros = 0;
    for (int j = 0; j < 12; j++) {
        if (w[j] == 0) {
            zeros++;
            CHECK_MSG(fabs(g[j]) <= l1 + 1e-7, "zero coefficient %d: |grad| %g > %g", j,
                      fabs(g[j]), l1);
        } else {
            double kkt = g[j] + l1 * (w[j] > 0 ? 1 : -1);
            CHECK_MSG(fabs(kkt) <= 1e-6, "coefficient %d = %g: grad + l1 sign = %g", j, w[j], kkt);
        }
    }
    CHECK_MSG(fabs(gb) <= 1e-6, "intercept gradient %g", gb);
    CHECK_MSG(zeros >= 2 && zeros < 12, "%d exact zeros", zeros);
    pt_model_free(m);
    ds_free(d);
}

TEST(l1_owlqn_kkt) {
    l1_case(PT_MODEL_LOGREG, 0.03, 1.0);
    l1_case(PT_MODEL_LOGREG, 0.05, 0.5);
    l1_case(PT_MODEL_LINREG, 0.15, 1.0);
}

/* Dense and sparse storage of the same rows reach the same optimum (the
 * dense path centres, the sparse one does not). */
TEST(dense_equals_sparse) {
    pt_dataset *d = gen(500, 7, 1, 41), *s = to_sparse(d);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_LOGREG);
    o.reg_param = 0.01;
    o.tol = 1e-14;
    o.max_iter = 500;
    pt_model *a = train_ok(&o, d), *b = train_ok(&o, s);
    CHECK(a && b);
    CHECK(max_rel_diff(a->params, b->params, a->nparams) < 1e-7);
    pt_model_free(a);
    pt_model_free(b);
    ds_free(d);
    ds_free(s);
}

/* Sparse rows with few distinct values (pixel-like levels) take the packed
 * one-byte-code kernel; it must give exactly the bits of the plain CSR one
 * (the same doubles summed in the same order). */
TEST(packed_values_same_bits) {
    pt_dataset *d = gen(2000, 12, 1, 43), *s = to_sparse(d);
    for (int64_t k = 0; k < s->indptr[s->nrows]; k++)
        s->values[k] = round(s->values[k] * 8.0) / 8.0; /* a few dozen levels */
    for (int kind = 0; kind < 2; kind++) {
        pt_train_opts o;
        pt_train_opts_init(&o, kind ? PT_MODEL_LOGREG : PT_MODEL_LINREG);
        o.reg_param = 0.01;
        o.max_iter = 60;
        pt_model *a = train_ok(&o, s);
        pt__linear_pack_values = 0;
        pt_model *b = train_ok(&o, s);
        pt__linear_pack_values = 1;
        CHECK(a && b);
        if (a && b) {
            CHECK(a->nparams == b->nparams && a->iterations == b->iterations);
            CHECK_MSG(memcmp(a->params, b->params, (size_t)a->nparams * sizeof(double)) == 0,
                      "packed and plain CSR differ (%s): %.17g vs %.17g",
                      kind ? "logreg" : "linreg", a->params[0], b->params[0]);
        }
        pt_model_free(a);
        pt_model_free(b);
    }
    ds_free(d);
    ds_free(s);
}

/* ------------------------------------------------------------------------ */
/* Determinism, mini-batch solvers                                          */
/* ------------------------------------------------------------------------ */

static void threads_case(int labels, bool sparse, pt_solver solver) {
    pt_dataset *dd = gen(3000, 9, labels, 51), *d = sparse ? to_sparse(dd) : dd;
    pt_ctx *c1 = ctx_threads(1), *c4 = ctx_threads(4);
    CHECK(c1 && c4);
    pt__linear_chunk_rows = 97;
    pt_train_opts o;
    pt_train_opts_init(&o, labels == 0 ? PT_MODEL_LINREG : PT_MODEL_LOGREG);
    o.reg_param = 0.01;
    o.elastic_net = 0.2;
    o.solver = solver;
    o.max_iter = solver == PT_SOLVER_LBFGS ? 40 : 3;
    o.batch_size = 500;
    o.ctx = c1;
    pt_model *a = train_ok(&o, d);
    o.ctx = c4;
    pt_model *b = train_ok(&o, d);
    pt__linear_chunk_rows = 4096;
    CHECK(a && b);
    CHECK(a->nparams == b->nparams);
    CHECK_MSG(memcmp(a->params, b->params, (size_t)a->nparams * sizeof(double)) == 0,
              "1 vs 4 threads differ (labels %d sparse %d): %.17g vs %.17g", labels, sparse,
              a->params[0], b->params[0]);
    CHECK(a->loss == b->loss && a->iterations == b->iterations);
    pt_model_free(a);
    pt_model_free(b);
    pt_ctx_free(c1);
    pt_ctx_free(c4);
    if (sparse) ds_free(d);
    ds_free(dd);
}

TEST(threads_identical_bits) {
    threads_case(1, false, PT_SOLVER_LBFGS);
    threads_case(1, true, PT_SOLVER_LBFGS);
    threads_case(3, false, PT_SOLVER_LBFGS); /* BLAS path */
    threads_case(3, true, PT_SOLVER_LBFGS);
    threads_case(0, false, PT_SOLVER_LBFGS);
    threads_case(1, false, PT_SOLVER_ADAM);
}

TEST(sgd_adam_reach_optimum) {
    pt_dataset *d = gen(4000, 5, 1, 61);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_LOGREG);
    o.reg_param = 0.01;
    o.tol = 1e-12;
    pt_model *ref = train_ok(&o, d);
    CHECK(ref);
    for (int k = 0; k < 2; k++) {
        o.solver = k == 0 ? PT_SOLVER_SGD : PT_SOLVER_ADAM;
        o.learning_rate = 0.01;
        o.max_iter = 30;
        o.batch_size = 64;
        o.seed = 5;
        pt_model *a = train_ok(&o, d), *b = train_ok(&o, d);
        CHECK(a && b);
        CHECK_MSG(memcmp(a->params, b->params, (size_t)a->nparams * sizeof(double)) == 0,
                  "same seed, different model");
        CHECK_EQ_I(a->iterations, 30);
        CHECK_MSG(a->loss <= ref->loss * 1.002, "solver %d: loss %.8g vs L-BFGS %.8g", k,
                  a->loss, ref->loss);
        CHECK_MSG(max_rel_diff(a->params, ref->params, a->nparams) < 0.05,
                  "solver %d: parameters %g off", k,
                  max_rel_diff(a->params, ref->params, a->nparams));
        o.seed = 6;
        pt_model *c = train_ok(&o, d);
        CHECK(c);
        CHECK(memcmp(a->params, c->params, (size_t)a->nparams * sizeof(double)) != 0);
        pt_model_free(a);
        pt_model_free(b);
        pt_model_free(c);
    }
    pt_model_free(ref);
    ds_free(d);
}

/* ------------------------------------------------------------------------ */
/* The optimiser alone                                                      */
/* ------------------------------------------------------------------------ */

static pt_status rosenbrock(void *arg, const double *x, double *f, double *g, pt_error *err) {
    (void)arg;
    (void)err;
    *f = 0;
    for (int i = 0; i < 3; i++) {
        double a = x[i + 1] - x[i] * x[i], b = 1 - x[i];
        *f += 100 * a * a + b * b;
    }
    for (int i = 0; i < 4; i++) g[i] = 0;
    for (int i = 0; i < 3; i++) {
        double a = x[i + 1] - x[i] * x[i];
        g[i] += -400 * x[i] * a - 2 * (1 - x[i]);
        g[i + 1] += 200 * a;
    }
    return PT_OK;
}

TEST(lbfgs_rosenbrock) {
    pt__lbfgs s;
    pt_error e = {0};
    CHECK_OK(pt__lbfgs_init(&s, 4, 10, NULL, &e), &e);
    s.fn = rosenbrock;
    s.tol = 0;
    s.max_iter = 500;
    double x0[4] = {-1.2, 1, -1.2, 1};
    CHECK_OK(pt__lbfgs_start(&s, x0, &e), &e);
    while (s.stop == PT__LBFGS_RUNNING) CHECK_OK(pt__lbfgs_iterate(&s, &e), &e);
    for (int i = 0; i < 4; i++) CHECK_NEAR(s.x[i], 1.0, 1e-6);
    CHECK(s.iter < 200);
    pt__lbfgs_free(&s);
}

/* ------------------------------------------------------------------------ */
/* Predictions                                                              */
/* ------------------------------------------------------------------------ */

TEST(predict_matches_formula) {
    pt_dataset *d = gen(200, 4, 3, 71), *b = gen(200, 4, 1, 72), *r = gen(200, 4, 0, 73);
    pt_error e = {0};
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_LOGREG);
    o.reg_param = 0.01;
    pt_model *mm = train_ok(&o, d), *mb = NULL, *mr = NULL;
    o.threshold = 0.3;
    mb = train_ok(&o, b);
    pt_train_opts_init(&o, PT_MODEL_LINREG);
    mr = train_ok(&o, r);
    CHECK(mm && mb && mr);
    /* Multinomial: softmax of coef.x + b, label the argmax. Only the first
     * 3 features given: the 4th counts as 0. */
    d->nfeatures = 3;
    for (int64_t i = 0; i < d->nrows; i++)
        for (int j = 0; j < 3; j++) d->x[i * 3 + j] = d->x[i * 4 + j];
    pt_predictions pr;
    CHECK_OK(pt_model_predict(mm, NULL, d, &pr, &e), &e);
    CHECK_EQ_I(pr.ncols, 3);
    for (int64_t i = 0; i < d->nrows; i++) {
        double mg[3], mx = -1e300, s = 0;
        int best = 0;
        for (int c = 0; c < 3; c++) {
            mg[c] = mm->params[12 + c];
            for (int j = 0; j < 3; j++) mg[c] += mm->params[c * 4 + j] * d->x[i * 3 + j];
            if (mg[c] > mx) mx = mg[c], best = c;
        }
        for (int c = 0; c < 3; c++) s += exp(mg[c] - mx);
        for (int c = 0; c < 3; c++) {
            CHECK_NEAR(pr.raw[i * 3 + c], mg[c], 1e-12);
            CHECK_NEAR(pr.prob[i * 3 + c], exp(mg[c] - mx) / s, 1e-12);
        }
        CHECK(pr.label[i] == best);
    }
    pt_predictions_free(&pr);
    /* Binary: P(y=1) and the threshold. */
    CHECK_OK(pt_model_predict(mb, NULL, b, &pr, &e), &e);
    CHECK_EQ_I(pr.ncols, 1);
    int above = 0;
    for (int64_t i = 0; i < b->nrows; i++) {
        double m = mb->params[4];
        for (int j = 0; j < 4; j++) m += mb->params[j] * b->x[i * 4 + j];
        double p1 = 1 / (1 + exp(-m));
        CHECK_NEAR(pr.raw[i], m, 1e-12);
        CHECK_NEAR(pr.prob[i], p1, 1e-12);
        CHECK(pr.label[i] == (p1 > 0.3 ? 1.0 : 0.0));
        above += p1 > 0.3 && p1 <= 0.5;
    }
    CHECK(above > 0); /* the threshold made a difference */
    pt_predictions_free(&pr);
    /* Regression: the value, no probabilities; sparse input works too. */
    pt_dataset *rs = to_sparse(r);
    CHECK_OK(pt_model_predict(mr, NULL, rs, &pr, &e), &e);
    CHECK(pr.prob == NULL);
    for (int64_t i = 0; i < r->nrows; i++) {
        double m = mr->params[4];
        for (int j = 0; j < 4; j++) m += mr->params[j] * r->x[i * 4 + j];
        CHECK_NEAR(pr.label[i], m, 1e-12);
        CHECK_NEAR(pr.raw[i], m, 1e-12);
    }
    pt_predictions_free(&pr);
    pt_model_free(mm);
    pt_model_free(mb);
    pt_model_free(mr);
    ds_free(d);
    ds_free(b);
    ds_free(r);
    ds_free(rs);
}

/* ------------------------------------------------------------------------ */
/* Errors and edge cases                                                    */
/* ------------------------------------------------------------------------ */

TEST(errors_name_the_fault) {
    pt_dataset *d = gen(50, 3, 1, 81);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_LOGREG);
    pt_model *m = NULL;
    pt_error e = {0};
    d->y[17] = 0.5;
    CHECK(pt_train(&o, d, &m, &e) == PT_EINVAL);
    CHECK_CONTAINS(e.msg, "label 0.5 of row 17");
    d->y[17] = -1;
    CHECK(pt_train(&o, d, &m, &e) == PT_EINVAL);
    CHECK_CONTAINS(e.msg, "label -1 of row 17");
    d->y[17] = 2; /* nclasses says 2 */
    CHECK(pt_train(&o, d, &m, &e) == PT_EINVAL);
    CHECK_CONTAINS(e.msg, "[0, 2)");
    d->nclasses = 0; /* now 3 classes, binomial asked */
    o.family = 1;
    CHECK(pt_train(&o, d, &m, &e) == PT_EINVAL);
    CHECK_CONTAINS(e.msg, "binomial needs 2 classes, the labels have 3");
    CHECK(m == NULL);
    pt_train_opts_init(&o, PT_MODEL_LINREG);
    d->y[3] = NAN;
    CHECK(pt_train(&o, d, &m, &e) == PT_EINVAL);
    CHECK_CONTAINS(e.msg, "row 3 is not a finite number");
    d->y[3] = 1;
    int64_t keep = d->nrows;
    d->nrows = 0;
    CHECK(pt_train(&o, d, &m, &e) == PT_EEMPTY);
    CHECK_CONTAINS(e.msg, "no rows");
    d->nrows = keep;
    double *x = d->x;
    d->x = NULL;
    CHECK(pt_train(&o, d, &m, &e) == PT_EINVAL);
    CHECK_CONTAINS(e.msg, "x is NULL");
    d->x = x;
    ds_free(d);
}

/* A constant feature (std 0) gets coefficient 0 under standardisation. */
TEST(constant_feature) {
    pt_dataset *d = gen(300, 4, 1, 91);
    for (int64_t i = 0; i < d->nrows; i++) d->x[i * 4 + 2] = 3.7;
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_LOGREG);
    o.reg_param = 0.01;
    pt_model *m = train_ok(&o, d);
    CHECK(m);
    CHECK(m->params[2] == 0.0);
    CHECK(isfinite(m->params[4]));
    pt_model_free(m);
    ds_free(d);
}

/* ------------------------------------------------------------------------ */
/* Resume after SIGKILL                                                     */
/* ------------------------------------------------------------------------ */

static void kill_at(const pt_train_progress *p, void *arg) {
    if (p->iter == *(int64_t *)arg) kill(getpid(), SIGKILL);
}

/* Records the first iteration a run reports: a resumed run starts after its
 * checkpoint's step, one that started over at 1. */
static void first_iter(const pt_train_progress *p, void *arg) {
    int64_t *first = arg;
    if (*first == 0) *first = p->iter;
}

static void resume_case(const char *name, pt_solver solver, double alpha, int labels) {
    const char *dir = pt_test_tmp(name);
    pt_dataset *d = gen(2000, 8, labels, 101);
    pt_train_opts o;
    pt_train_opts_init(&o, labels == 0 ? PT_MODEL_LINREG : PT_MODEL_LOGREG);
    o.solver = solver;
    o.reg_param = 0.02;
    o.elastic_net = alpha;
    o.tol = 1e-12;
    o.max_iter = solver == PT_SOLVER_LBFGS ? 25 : 9;
    o.batch_size = 128;
    pt_model *ref = train_ok(&o, d);
    CHECK(ref);
    CHECK(ref->iterations > 6);
    int64_t at = 5;
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        o.checkpoint_dir = dir;
        o.checkpoint_every = 2;
        o.progress = kill_at;
        o.progress_arg = &at;
        pt_model *m = NULL;
        pt_status st = pt_train(&o, d, &m, NULL);
        _exit(st == PT_OK ? 3 : 4); /* not reached: killed at step 5 */
    }
    int ws = 0;
    CHECK(waitpid(pid, &ws, 0) == pid);
    CHECK_MSG(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL, "child status %d", ws);
    char path[600];
    struct stat sb;
    snprintf(path, sizeof path, "%s/ckpt-%012d.ptc", dir, 4);
    CHECK_MSG(stat(path, &sb) == 0, "no checkpoint %s", path);
    o.checkpoint_dir = dir;
    o.checkpoint_every = 2;
    o.resume = true;
    int64_t first = 0;
    o.progress = first_iter;
    o.progress_arg = &first;
    pt_model *res = train_ok(&o, d);
    CHECK(res);
    CHECK_MSG(first == 5, "%s: the resumed run began at step %lld, not 5", name, (long long)first);
    CHECK_EQ_I(res->iterations, ref->iterations);
    CHECK_MSG(memcmp(res->params, ref->params, (size_t)ref->nparams * sizeof(double)) == 0,
              "%s: resumed %.17g vs uninterrupted %.17g", name, res->params[0], ref->params[0]);
    CHECK(res->loss == ref->loss);
    pt_model_free(res);
    pt_model_free(ref);
    ds_free(d);
}

TEST(resume_after_kill_lbfgs) { resume_case("ck_lbfgs", PT_SOLVER_LBFGS, 0.0, 1); }
TEST(resume_after_kill_owlqn_multinomial) { resume_case("ck_owl", PT_SOLVER_LBFGS, 0.5, 3); }
TEST(resume_after_kill_adam) { resume_case("ck_adam", PT_SOLVER_ADAM, 0.0, 1); }
TEST(resume_after_kill_sgd_linreg) { resume_case("ck_sgd", PT_SOLVER_SGD, 0.0, 0); }

/* A damaged newest checkpoint is skipped for the one before; the run still
 * ends on the uninterrupted model. */
TEST(resume_skips_corrupt_checkpoint) {
    const char *dir = pt_test_tmp("ck_corrupt");
    pt_dataset *d = gen(1500, 6, 1, 111);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_LOGREG);
    o.reg_param = 0.01;
    o.tol = 1e-12;
    o.max_iter = 20;
    pt_model *ref = train_ok(&o, d);
    CHECK(ref);
    int64_t at = 7;
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        o.checkpoint_dir = dir;
        o.checkpoint_every = 3;
        o.progress = kill_at;
        o.progress_arg = &at;
        pt_model *m = NULL;
        pt_status st = pt_train(&o, d, &m, NULL);
        _exit(st == PT_OK ? 3 : 4);
    }
    int ws = 0;
    CHECK(waitpid(pid, &ws, 0) == pid);
    CHECK(WIFSIGNALED(ws));
    char path[600];
    snprintf(path, sizeof path, "%s/ckpt-%012d.ptc", dir, 6);
    FILE *f = fopen(path, "r+b");
    CHECK_MSG(f != NULL, "no checkpoint %s", path);
    fseek(f, 100, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 100, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
    o.checkpoint_dir = dir;
    o.resume = true;
    int64_t first = 0;
    o.progress = first_iter;
    o.progress_arg = &first;
    pt_model *res = train_ok(&o, d);
    CHECK(res);
    CHECK_MSG(first == 4, "resumed from step %lld, not after checkpoint 3", (long long)first - 1);
    CHECK(memcmp(res->params, ref->params, (size_t)ref->nparams * sizeof(double)) == 0);
    pt_model_free(res);
    pt_model_free(ref);
    ds_free(d);
}
