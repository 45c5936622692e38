/*
 * ml_linear.c - linear regression and logistic regression (binary and
 * multinomial) trained data-parallel: L-BFGS / OWL-QN on the full batch, or
 * mini-batch SGD / Adam, with MLlib's objective, parameters and defaults.
 *
 * Every sum over rows is cut into chunks of a fixed number of rows whose
 * partial sums are added in chunk order, then summed across ranks by one
 * fused allreduce [loss, gradient, row count]; so a result does not depend
 * on the thread count, and every rank holds the same bits after each
 * evaluation and takes the same optimiser path.
 *
 * Training runs in the standardised space (features divided by their
 * standard deviation over all ranks) and, with an intercept, centred; the
 * centring is virtual (folded into the intercept and the gradient, so
 * sparse rows stay sparse) and conditions the problem better without
 * changing the optimum, since the intercept is not penalised. The model
 * stores coefficients in the original scale.
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "ml/ml_internal.h"
#include "ml/ml_lbfgs.h"
#include "ml/ml_linear.h"
#include "ml/ml_nn.h"

int64_t pt__linear_chunk_rows = 4096;
int pt__linear_pack_values = 1;

#define LBFGS_HISTORY 10
/* Rows per pair of BLAS products in the dense multinomial kernel. */
#define MULTI_BLOCK 64
/* Bound on the buffer of per-chunk partial sums of one parallel group. */
#define PART_BYTES_MAX ((int64_t)64 << 20)

enum { LIN_REG = 0, LIN_BIN, LIN_MULTI };

typedef struct lin lin;
typedef pt_status (*chunk_fn)(lin *L, int64_t a, int64_t b, double *out, pt_error *err);

struct lin {
    const pt_train_opts *o;
    const pt_dataset *d;
    pt_pool *pool;
    pt_comm *comm;
    pt_mem *mem;
    int64_t reserved;
    int rank;
    int kind;
    int K;          /* coefficient rows */
    int nclasses;
    int64_t p, nw, np; /* features, K*p weights, weights + K intercepts */
    int64_t nglobal;
    bool fit_intercept, center;
    bool dense_blocks; /* multinomial on CSR rows dense enough for BLAS */
    double l1, l2;
    double *inv_std; /* 1/std (0 for a constant feature), or 1 without standardisation */
    double *mean;    /* feature means when centring */
    double *counts;  /* class counts (logistic) or {sum y} (regression) */
    double y2;       /* sum of y^2 (regression) */
    double *shift;   /* p: the row subtracted in the statistics pass */
    double *colsum;  /* p: sum of x over every rank */
    double *ysum;    /* K*p: sum of y*x, or per class the sum of x */
    double *weff;    /* K*p weights applied to raw rows at the current point */
    double *wt;      /* the same, p*K (multinomial) */
    double *beff;    /* K intercepts applied to raw rows */
    double *acc;     /* width: loss, gradient in kernel layout, intercepts, count */
    double *part;    /* group * part_width */
    int64_t width, part_width, group;
    const int64_t *sel; /* rows of a mini-batch, or NULL: every local row */
    int64_t nsel;
    /* CSR values as one-byte codes into vtab, and column indices as 16 bits,
     * when there are at most 256 distinct values and 65536 columns (images:
     * pixel levels): a quarter of the bytes per stored value for the
     * memory-bound binary/regression kernel, with the same doubles. */
    uint8_t *vcode;
    uint16_t *vidx;
    double vtab[256];
    int64_t vbytes;
};

/* ------------------------------------------------------------------------ */
/* Chunked, order-fixed sums                                                */
/* ------------------------------------------------------------------------ */

typedef struct cs_task {
    lin *L;
    chunk_fn fn;
    int64_t c0, n, width;
} cs_task;

static pt_status cs_run(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    (void)tc;
    cs_task *t = arg;
    int64_t ch = pt__linear_chunk_rows;
    int64_t a = (t->c0 + i) * ch, b = a + ch < t->n ? a + ch : t->n;
    double *out = t->L->part + i * t->width;
    memset(out, 0, (size_t)t->width * sizeof(double));
    return t->fn(t->L, a, b, out, err);
}

/* acc[0..width) = sum over the chunks of [0, n) of fn's partials, added
 * in chunk order whatever thread computed them. */
static pt_status chunked_sum(lin *L, chunk_fn fn, int64_t n, int64_t width, double *acc,
                             pt_error *err) {
    memset(acc, 0, (size_t)width * sizeof(double));
    int64_t ch = pt__linear_chunk_rows > 0 ? pt__linear_chunk_rows : 4096;
    int64_t nch = (n + ch - 1) / ch;
    int64_t group = L->group * L->part_width / width;
    if (group < 1) group = 1;
    for (int64_t c0 = 0; c0 < nch; c0 += group) {
        int64_t cnt = nch - c0 < group ? nch - c0 : group;
        cs_task t = {L, fn, c0, n, width};
        pt_status st;
        if (cnt == 1 || !L->pool) {
            st = PT_OK;
            for (int64_t i = 0; i < cnt && st == PT_OK; i++) st = cs_run(NULL, &t, i, err);
        } else {
            st = pt_parallel_for(L->pool, cnt, cs_run, &t, NULL, err);
        }
        if (st != PT_OK) return st;
        for (int64_t i = 0; i < cnt; i++) {
            const double *src = L->part + i * width;
            for (int64_t j = 0; j < width; j++) acc[j] += src[j];
        }
    }
    return PT_OK;
}

static inline int64_t row_of(const lin *L, int64_t pos) { return L->sel ? L->sel[pos] : pos; }

static inline double dotv(const double *a, const double *b, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* log(1 + e^m) - y*m and its derivative sigmoid(m) - y, without overflow. */
static inline double logistic(double m, double y, double *r) {
    double e = exp(-fabs(m));
    *r = (m >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e)) - y;
    return (m > 0 ? m : 0) + log1p(e) - y * m;
}

/* Softmax cross-entropy of margins mg[0..K) for class y; mg becomes the
 * residual p - onehot(y). */
static inline double softmax_loss(double *mg, int K, int y) {
    double mx = mg[0];
    for (int c = 1; c < K; c++) mx = mg[c] > mx ? mg[c] : mx;
    double sum = 0;
    for (int c = 0; c < K; c++) {
        mg[c] = exp(mg[c] - mx);
        sum += mg[c];
    }
    double inv = 1.0 / sum;
    double loss = log(sum) - log(mg[y]);
    for (int c = 0; c < K; c++) mg[c] *= inv;
    mg[y] -= 1.0;
    return loss;
}

/* ------------------------------------------------------------------------ */
/* Loss and gradient kernels: out = [loss, G, gb, count], zeroed on entry.   */
/* K == 1: G[p] is sum r*x. Multinomial: G is p*K (feature-major).          */
/* ------------------------------------------------------------------------ */

static pt_status kern_one(lin *L, int64_t a, int64_t b, double *out, pt_error *err) {
    (void)err;
    const pt_dataset *d = L->d;
    int64_t p = L->p;
    const double *w = L->weff;
    double b0 = L->beff[0], loss = 0, gb = 0;
    double *G = out + 1;
    bool reg = L->kind == LIN_REG;
    for (int64_t pos = a; pos < b; pos++) {
        int64_t i = row_of(L, pos);
        double y = d->y[i], m, r;
        if (!d->sparse) {
            const double *xi = d->x + i * p;
            m = b0 + dotv(xi, w, p);
            if (reg) {
                r = m - y;
                loss += 0.5 * r * r;
            } else {
                loss += logistic(m, y, &r);
            }
            for (int64_t j = 0; j < p; j++) G[j] += r * xi[j];
        } else {
            int64_t s = d->indptr[i], e = d->indptr[i + 1];
            m = b0;
            if (L->vcode) {
                const uint8_t *vc = L->vcode;
                const uint16_t *ix = L->vidx;
                const double *tab = L->vtab;
                for (int64_t k = s; k < e; k++) m += tab[vc[k]] * w[ix[k]];
                if (reg) {
                    r = m - y;
                    loss += 0.5 * r * r;
                } else {
                    loss += logistic(m, y, &r);
                }
                for (int64_t k = s; k < e; k++) G[ix[k]] += r * tab[vc[k]];
            } else {
                const int32_t *ix = d->indices;
                const double *v = d->values;
                for (int64_t k = s; k < e; k++) m += v[k] * w[ix[k]];
                if (reg) {
                    r = m - y;
                    loss += 0.5 * r * r;
                } else {
                    loss += logistic(m, y, &r);
                }
                for (int64_t k = s; k < e; k++) G[ix[k]] += r * v[k];
            }
        }
        gb += r;
    }
    out[0] = loss;
    out[1 + p] = gb;
    out[L->width - 1] = (double)(b - a);
    return PT_OK;
}

/* Dense multinomial over contiguous rows: the margins and the gradient are
 * matrix products (single-threaded BLAS inside our own tasks). */
static pt_status kern_multi_blas(lin *L, int64_t a, int64_t b, double *out, pt_error *err) {
    const pt_dataset *d = L->d;
    int64_t p = L->p, nr = b - a;
    int K = L->K;
    double *M = pt_malloc((size_t)nr * (size_t)K * sizeof(double));
    double *Xs = d->sparse ? pt_malloc((size_t)MULTI_BLOCK * (size_t)p * sizeof(double)) : NULL;
    if (!M || (d->sparse && !Xs)) {
        pt_free(M);
        pt_free(Xs);
        return pt_error_set(err, PT_ENOMEM, "train: out of memory for a chunk's margins");
    }
    double loss = 0, *gb = out + 1 + p * K;
    /* Blocks of a few rows: the block stays in cache between the two
     * products, and products this small take OpenBLAS's small-matrix
     * kernels, which skip the packing copies that dominate with few
     * classes. */
    for (int64_t r0 = 0; r0 < nr; r0 += MULTI_BLOCK) {
        int64_t nb = nr - r0 < MULTI_BLOCK ? nr - r0 : MULTI_BLOCK;
        const double *X;
        if (!d->sparse) {
            X = d->x + (a + r0) * p;
        } else {
            /* Dense enough CSR rows: expand the block, then the same
             * products (K flops per stored value by BLAS beat K by hand). */
            memset(Xs, 0, (size_t)(nb * p) * sizeof(double));
            for (int64_t r = 0; r < nb; r++)
                for (int64_t k = d->indptr[a + r0 + r]; k < d->indptr[a + r0 + r + 1]; k++)
                    Xs[r * p + d->indices[k]] = d->values[k];
            X = Xs;
        }
        double *Mb = M + r0 * K;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, K, (int)p, 1.0, X,
                    (int)p, L->wt, K, 0.0, Mb, K);
        for (int64_t r = 0; r < nb; r++) {
            double *mg = Mb + r * K;
            for (int c = 0; c < K; c++) mg[c] += L->beff[c];
            loss += softmax_loss(mg, K, (int)d->y[a + r0 + r]);
            for (int c = 0; c < K; c++) gb[c] += mg[c];
        }
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)p, K, (int)nb, 1.0, X, (int)p,
                    Mb, K, 1.0, out + 1, K);
    }
    pt_free(M);
    pt_free(Xs);
    out[0] = loss;
    out[L->width - 1] = (double)nr;
    return PT_OK;
}

static pt_status kern_multi(lin *L, int64_t a, int64_t b, double *out, pt_error *err) {
    const pt_dataset *d = L->d;
    if (!L->sel && (!d->sparse || L->dense_blocks) && b > a)
        return kern_multi_blas(L, a, b, out, err);
    int64_t p = L->p;
    int K = L->K;
    double *mg = pt_malloc((size_t)K * sizeof(double));
    if (!mg) return pt_error_set(err, PT_ENOMEM, "train: out of memory");
    double loss = 0, *GT = out + 1, *gb = out + 1 + p * K;
    for (int64_t pos = a; pos < b; pos++) {
        int64_t i = row_of(L, pos);
        for (int c = 0; c < K; c++) mg[c] = L->beff[c];
        if (!d->sparse) {
            const double *xi = d->x + i * p;
            for (int64_t j = 0; j < p; j++) {
                double xv = xi[j];
                if (xv == 0) continue;
                const double *wr = L->wt + j * K;
                for (int c = 0; c < K; c++) mg[c] += xv * wr[c];
            }
            loss += softmax_loss(mg, K, (int)d->y[i]);
            for (int64_t j = 0; j < p; j++) {
                double xv = xi[j];
                if (xv == 0) continue;
                double *gr = GT + j * K;
                for (int c = 0; c < K; c++) gr[c] += xv * mg[c];
            }
        } else {
            int64_t s = d->indptr[i], e = d->indptr[i + 1];
            for (int64_t k = s; k < e; k++) {
                const double *wr = L->wt + (int64_t)d->indices[k] * K;
                double xv = d->values[k];
                for (int c = 0; c < K; c++) mg[c] += xv * wr[c];
            }
            loss += softmax_loss(mg, K, (int)d->y[i]);
            for (int64_t k = s; k < e; k++) {
                double *gr = GT + (int64_t)d->indices[k] * K;
                double xv = d->values[k];
                for (int c = 0; c < K; c++) gr[c] += xv * mg[c];
            }
        }
        for (int c = 0; c < K; c++) gb[c] += mg[c];
    }
    pt_free(mg);
    out[0] = loss;
    out[L->width - 1] = (double)(b - a);
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Objective                                                                */
/* ------------------------------------------------------------------------ */

/* Index in the kernel layout of the gradient of weight (c, j). */
static inline int64_t gidx(const lin *L, int c, int64_t j) {
    return L->kind == LIN_MULTI ? 1 + j * L->K + c : 1 + j;
}

static void set_point(lin *L, const double *x) {
    int64_t p = L->p;
    for (int c = 0; c < L->K; c++) {
        double be = L->fit_intercept ? x[L->nw + c] : 0.0;
        for (int64_t j = 0; j < p; j++) {
            double w = x[(int64_t)c * p + j] * L->inv_std[j];
            L->weff[(int64_t)c * p + j] = w;
            if (L->wt) L->wt[j * L->K + c] = w;
            if (L->center) be -= w * L->mean[j];
        }
        L->beff[c] = be;
    }
}

static void zero_point(lin *L);

/* One evaluation over the selected rows: a collective (one allreduce).
 * f and g are the averages over the selected rows of every rank, plus the
 * L2 term; *count gets that row count (f, g untouched when it is 0). */
static pt_status evaluate(lin *L, const double *x, double *f, double *g, double *count,
                          bool zero, pt_error *err) {
    set_point(L, x);
    pt_status st = PT_OK, st2 = PT_OK;
    if (zero) {
        /* Already global sums: no pass and no allreduce. */
        zero_point(L);
    } else {
        chunk_fn fn = L->kind == LIN_MULTI ? kern_multi : kern_one;
        int64_t n = L->sel ? L->nsel : L->d->nrows;
        st = chunked_sum(L, fn, n, L->width, L->acc, err);
        /* A failed chunk on one rank must not leave the others waiting:
         * the failure travels in the reduced buffer (count = NaN). */
        if (st != PT_OK) L->acc[L->width - 1] = NAN;
        st2 = pt__ml_allreduce_sum(L->comm, L->acc, L->width, err);
    }
    if (st != PT_OK) return st;
    if (st2 != PT_OK) return st2;
    double N = L->acc[L->width - 1];
    if (isnan(N))
        return pt_error_set(err, PT_EINTERNAL, "train: a gradient evaluation failed on another rank");
    if (count) *count = N;
    if (N == 0) return PT_OK;
    double inv = 1.0 / N, reg = 0;
    int64_t p = L->p;
    const double *gbs = L->acc + L->width - 1 - L->K;
    for (int c = 0; c < L->K; c++) {
        for (int64_t j = 0; j < p; j++) {
            int64_t k = (int64_t)c * p + j;
            double gj = L->acc[gidx(L, c, j)];
            if (L->center) gj -= L->mean[j] * gbs[c];
            g[k] = gj * L->inv_std[j] * inv + L->l2 * x[k];
            reg += x[k] * x[k];
        }
        g[L->nw + c] = L->fit_intercept ? gbs[c] * inv : 0.0;
    }
    *f = L->acc[0] * inv + 0.5 * L->l2 * reg;
    return PT_OK;
}

static pt_status eval_full(void *arg, const double *x, double *f, double *g, pt_error *err) {
    lin *L = arg;
    L->sel = NULL;
    bool zero = true;
    for (int64_t k = 0; k < L->nw && zero; k++) zero = x[k] == 0;
    return evaluate(L, x, f, g, NULL, zero, err);
}

/* ------------------------------------------------------------------------ */
/* Set-up: labels, class counts, feature statistics (collective)            */
/* ------------------------------------------------------------------------ */

/* The one pass of the set-up: per feature, sums of (x - shift) and of its
 * square (shift: a row of the data, so that constant columns come out with
 * variance exactly 0 and the sums do not cancel), and the label-weighted
 * sums that give the gradient at zero weights without another pass: sum of
 * y*x, or per class the sum of x (multinomial). Sparse rows use shift 0. */
static pt_status kern_stats(lin *L, int64_t a, int64_t b, double *out, pt_error *err) {
    (void)err;
    const pt_dataset *d = L->d;
    int64_t p = L->p;
    bool stdz = L->o->standardization, multi = L->kind == LIN_MULTI;
    double *S1 = out, *S2 = out + p, *Y1 = out + (stdz ? 2 * p : p);
    const double *K = L->shift;
    for (int64_t i = a; i < b; i++) {
        double y = d->y[i];
        double *yr = multi ? Y1 + (int64_t)y * p : Y1, yw = multi ? 1.0 : y;
        if (!d->sparse) {
            const double *xi = d->x + i * p;
            if (stdz) {
                for (int64_t j = 0; j < p; j++) {
                    double t = xi[j] - K[j];
                    S1[j] += t;
                    S2[j] += t * t;
                    yr[j] += yw * xi[j];
                }
            } else {
                for (int64_t j = 0; j < p; j++) {
                    S1[j] += xi[j];
                    yr[j] += yw * xi[j];
                }
            }
        } else {
            for (int64_t k = d->indptr[i]; k < d->indptr[i + 1]; k++) {
                int64_t j = d->indices[k];
                double v = d->values[k];
                S1[j] += v;
                if (stdz) S2[j] += v * v;
                yr[j] += yw * v;
            }
        }
    }
    return PT_OK;
}

/* Loss and gradient sums at zero weights (margins = intercepts) from the
 * set-up statistics, in the kernel layout of acc: the first evaluation
 * of every L-BFGS run costs no pass over the data. */
static void zero_point(lin *L) {
    int64_t p = L->p;
    int K = L->K;
    double N = (double)L->nglobal, *acc = L->acc, *gb = acc + L->width - 1 - K;
    memset(acc, 0, (size_t)L->width * sizeof(double));
    if (L->kind == LIN_MULTI) {
        double mx = L->beff[0], sum = 0, loss = 0;
        for (int c = 1; c < K; c++) mx = L->beff[c] > mx ? L->beff[c] : mx;
        for (int c = 0; c < K; c++) sum += exp(L->beff[c] - mx);
        double lse = mx + log(sum);
        for (int c = 0; c < K; c++) {
            double prob = exp(L->beff[c] - lse), nc = L->counts[c];
            loss += nc * (lse - L->beff[c]);
            gb[c] = N * prob - nc;
            const double *yc = L->ysum + (int64_t)c * p;
            for (int64_t j = 0; j < p; j++) acc[1 + j * K + c] = prob * L->colsum[j] - yc[j];
        }
        acc[0] = loss;
    } else {
        double b0 = L->beff[0], r0, loss, sumr;
        if (L->kind == LIN_REG) {
            double sy = L->counts[0];
            r0 = b0;
            loss = 0.5 * (N * b0 * b0 - 2 * b0 * sy + L->y2);
            sumr = N * b0 - sy;
        } else {
            double n1 = L->counts[1], e = exp(-fabs(b0));
            r0 = b0 >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            loss = N * ((b0 > 0 ? b0 : 0) + log1p(e)) - b0 * n1;
            sumr = N * r0 - n1;
        }
        for (int64_t j = 0; j < p; j++) acc[1 + j] = r0 * L->colsum[j] - L->ysum[j];
        acc[0] = loss;
        gb[0] = sumr;
    }
    acc[L->width - 1] = N;
}

static void lin_free(lin *L) {
    pt_free(L->vcode);
    pt_free(L->vidx);
    pt_mem_release(L->mem, L->vbytes);
    pt_free(L->inv_std);
    pt_free(L->mean);
    pt_free(L->counts);
    pt_free(L->shift);
    pt_free(L->colsum);
    pt_free(L->ysum);
    pt_free(L->weff);
    pt_free(L->wt);
    pt_free(L->beff);
    pt_free(L->acc);
    pt_free(L->part);
    pt_mem_release(L->mem, L->reserved);
    memset(L, 0, sizeof *L);
}

/* Local shape problems, found before any collective so that every rank
 * can learn of them through the first reduction. */
static const char *check_shape(const pt_dataset *d) {
    if (d->nrows < 0) return "negative row count";
    if (d->nrows > 0 && !d->y) return "no labels (y is NULL)";
    if (d->nfeatures > INT32_MAX) return "more than 2^31-1 features";
    if (d->nrows == 0) return NULL;
    if (!d->sparse && !d->x) return "dense rows without values (x is NULL)";
    if (d->sparse) {
        if (!d->indptr || (d->indptr[d->nrows] > 0 && (!d->indices || !d->values)))
            return "sparse rows without indptr/indices/values";
        for (int64_t i = 0; i < d->nrows; i++)
            if (d->indptr[i + 1] < d->indptr[i]) return "indptr is not increasing";
        for (int64_t k = 0; k < d->indptr[d->nrows]; k++)
            if (d->indices[k] < 0 || d->indices[k] >= d->nfeatures)
                return "a column index is outside [0, nfeatures)";
    }
    return NULL;
}

static pt_status reduce_max(pt_comm *comm, double *v, int64_t n, pt_error *err) {
    if (!comm || pt_comm_size(comm) <= 1) return PT_OK;
    return pt_comm_allreduce(comm, v, n, PT_DTYPE_FLOAT64, PT_REDOP_MAX, err);
}

/* Builds vcode/vidx when the local CSR rows have at most 256 distinct
 * values (compared by bits, so -0.0 and 0.0 stay apart and every double is
 * kept exactly) and fewer than 65537 columns; otherwise, or when the budget
 * has no room, the kernel reads the CSR arrays as they are. Local only:
 * results are the same bits either way. */
static void pack_values(lin *L) {
    const pt_dataset *d = L->d;
    if (!pt__linear_pack_values || !d->sparse || d->nrows == 0 || L->kind == LIN_MULTI ||
        d->nfeatures > 65536)
        return;
    if (d->indptr[0] != 0) return;
    int64_t nnz = d->indptr[d->nrows];
    if (nnz <= 0) return;
    enum { SLOTS = 1024 };
    uint64_t keys[SLOTS];
    int16_t code[SLOTS];
    memset(keys, 0, sizeof keys);
    memset(code, -1, sizeof code);
    int n = 0;
    const double *v = d->values;
    for (int64_t k = 0; k < nnz; k++) {
        uint64_t b;
        memcpy(&b, &v[k], 8);
        uint64_t h = (pt_splitmix64(b) >> 20) & (SLOTS - 1);
        while (code[h] >= 0 && keys[h] != b) h = (h + 1) & (SLOTS - 1);
        if (code[h] >= 0) continue;
        if (n == 256) return;
        keys[h] = b;
        code[h] = (int16_t)n;
        L->vtab[n++] = v[k];
    }
    int64_t bytes = nnz * 3;
    if (pt_mem_reserve(L->mem, bytes, "packed training values", NULL) != PT_OK) return;
    uint8_t *vc = pt_malloc((size_t)nnz);
    uint16_t *vi = pt_malloc((size_t)nnz * sizeof *vi);
    if (!vc || !vi) {
        pt_free(vc);
        pt_free(vi);
        pt_mem_release(L->mem, bytes);
        return;
    }
    for (int64_t k = 0; k < nnz; k++) {
        uint64_t b;
        memcpy(&b, &v[k], 8);
        uint64_t h = (pt_splitmix64(b) >> 20) & (SLOTS - 1);
        while (keys[h] != b) h = (h + 1) & (SLOTS - 1);
        vc[k] = (uint8_t)code[h];
        vi[k] = (uint16_t)d->indices[k];
    }
    L->vcode = vc;
    L->vidx = vi;
    L->vbytes = bytes;
}

static pt_status lin_setup(lin *L, const pt_train_opts *o, const pt_dataset *d, pt_error *err) {
    memset(L, 0, sizeof *L);
    L->o = o;
    L->d = d;
    L->comm = o->comm;
    L->rank = o->comm ? pt_comm_rank(o->comm) : 0;
    int size = o->comm ? pt_comm_size(o->comm) : 1;
    L->pool = o->ctx ? pt_ctx_pool(o->ctx) : NULL;
    L->mem = o->ctx ? pt_ctx_mem(o->ctx) : NULL;
    L->p = d->nfeatures;
    L->fit_intercept = o->fit_intercept;
    const char *shape = check_shape(d);
    bool logreg = o->kind == PT_MODEL_LOGREG;

    /* Labels: class ids must be non-negative integers (below nclasses when
     * the dataset says how many); regression targets finite. */
    int64_t bad = 0, bad_row = -1;
    double bad_y = 0, ymax = 0;
    if (!shape) {
        for (int64_t i = 0; i < d->nrows; i++) {
            double y = d->y[i];
            bool ok = isfinite(y);
            if (ok && logreg)
                ok = y >= 0 && y == floor(y) && y < 1e9 && (d->nclasses <= 0 || y < d->nclasses);
            if (!ok) {
                if (bad++ == 0) bad_row = d->row_id ? d->row_id[i] : i, bad_y = y;
            } else if (y > ymax) {
                ymax = y;
            }
        }
    }
    /* First reduction (max): the class count, and the lowest rank holding
     * rows, whose first row is the shift of the statistics pass. */
    double mx[2] = {d->nclasses > 0 ? d->nclasses - 1 : ymax,
                    !shape && !bad && d->nrows > 0 ? (double)(size - L->rank) : 0.0};
    pt_status st = reduce_max(L->comm, mx, 2, err);
    if (st != PT_OK) return st;
    int nclasses = logreg ? (int)mx[0] + 1 : 1;
    if (logreg && nclasses < 2) nclasses = 2;
    int root = mx[1] > 0 ? size - (int)mx[1] : -1;
    L->nclasses = nclasses;
    bool multi = logreg && (o->family == 2 || (o->family == 0 && nclasses > 2));
    L->kind = !logreg ? LIN_REG : multi ? LIN_MULTI : LIN_BIN;
    L->K = multi ? nclasses : 1;
    L->nw = (int64_t)L->K * L->p;
    L->np = L->nw + L->K;
    L->l2 = o->reg_param * (1.0 - o->elastic_net);
    L->l1 = o->reg_param * o->elastic_net;
    bool stdz = o->standardization;
    L->center = stdz && L->fit_intercept;
    /* A local choice (it changes no sum's order across ranks, only how
     * each chunk computes): CSR rows with >= 1/8 stored values. */
    L->dense_blocks = multi && d->sparse && d->nrows > 0 && d->indptr &&
                      (double)d->indptr[d->nrows] >= 0.125 * (double)d->nrows * (double)d->nfeatures;
    int ncount = logreg ? nclasses : 1;
    int64_t p = L->p;
    L->width = 1 + (int64_t)L->K * p + L->K + 1;
    int64_t nstats = (stdz ? 2 * p : p) + (int64_t)L->K * p;

    /* Buffers: partial sums of a group of chunks sized for the larger of
     * the gradient and the statistics. */
    int64_t ch = pt__linear_chunk_rows > 0 ? pt__linear_chunk_rows : 4096;
    int64_t nch = (d->nrows + ch - 1) / ch;
    L->part_width = L->width > nstats ? L->width : nstats;
    int64_t threads = L->pool ? pt_pool_threads(L->pool) : 1;
    int64_t group = 4 * threads;
    if (group > nch) group = nch;
    if (group * L->part_width * (int64_t)sizeof(double) > PART_BYTES_MAX)
        group = PART_BYTES_MAX / (L->part_width * (int64_t)sizeof(double));
    if (group < 1) group = 1;
    L->group = group;
    int64_t bytes = (int64_t)sizeof(double) * (group * L->part_width + L->part_width + 5 * p +
                                               ncount + 3 * L->nw + L->K);
    st = pt_mem_reserve(L->mem, bytes, "linear model training buffers", err);
    if (st != PT_OK) return st;
    L->reserved = bytes;
    L->part = pt_malloc((size_t)(group * L->part_width) * sizeof(double));
    L->acc = pt_calloc((size_t)L->part_width, sizeof(double));
    L->inv_std = pt_malloc((size_t)p * sizeof(double));
    L->mean = pt_calloc((size_t)p, sizeof(double));
    L->shift = pt_calloc((size_t)p, sizeof(double));
    L->colsum = pt_calloc((size_t)p, sizeof(double));
    L->ysum = pt_calloc((size_t)L->nw, sizeof(double));
    L->counts = pt_calloc((size_t)ncount, sizeof(double));
    L->weff = pt_calloc((size_t)L->nw, sizeof(double));
    L->wt = multi ? pt_calloc((size_t)L->nw, sizeof(double)) : NULL;
    L->beff = pt_calloc((size_t)L->K, sizeof(double));
    if (!L->part || !L->acc || !L->inv_std || !L->mean || !L->shift || !L->colsum ||
        !L->ysum || !L->counts || !L->weff || (multi && !L->wt) || !L->beff) {
        lin_free(L);
        return pt_error_set(err, PT_ENOMEM, "train: out of memory for %lld parameters",
                            (long long)L->np);
    }
    if (stdz && !d->sparse && root >= 0) {
        if (root == L->rank) memcpy(L->shift, d->x, (size_t)p * sizeof(double));
        if (size > 1) st = pt_comm_bcast(L->comm, L->shift, p * (int64_t)sizeof(double), root, err);
        if (st != PT_OK) {
            lin_free(L);
            return st;
        }
    }

    /* Second reduction (sum): [rows, bad labels, bad shapes, class counts
     * or sum y, sum y^2, statistics of the pass]. */
    int64_t n1 = 4 + ncount + nstats;
    double *r1 = pt_calloc((size_t)n1, sizeof(double));
    if (!r1) {
        lin_free(L);
        return pt_error_set(err, PT_ENOMEM, "train: out of memory");
    }
    r1[0] = shape ? 0 : (double)d->nrows;
    r1[1] = (double)bad;
    r1[2] = shape ? 1 : 0;
    if (!shape && !bad) {
        for (int64_t i = 0; i < d->nrows; i++) {
            if (logreg) {
                r1[3 + (int64_t)d->y[i]] += 1;
            } else {
                r1[3] += d->y[i];
                r1[3 + ncount] += d->y[i] * d->y[i];
            }
        }
    }
    st = PT_OK;
    double *stats = r1 + 4 + ncount;
    if (!shape && !bad) st = chunked_sum(L, kern_stats, d->nrows, nstats, stats, err);
    if (st != PT_OK) r1[2] += 1;
    pt_status st2 = pt__ml_allreduce_sum(L->comm, r1, n1, err);
    if (st == PT_OK) st = st2;
    if (st == PT_OK && shape)
        st = pt_error_set(err, PT_EINVAL, "train: dataset on rank %d: %s", L->rank, shape);
    else if (st == PT_OK && r1[2] > 0)
        st = pt_error_set(err, PT_EINVAL, "train: the dataset of another rank is malformed");
    else if (st == PT_OK && bad > 0 && logreg)
        st = pt_error_set(err, PT_EINVAL,
                          "train: label %g of row %lld is not a class id (an integer in [0, %d))",
                          bad_y, (long long)bad_row,
                          d->nclasses > 0 ? d->nclasses : 1000000000);
    else if (st == PT_OK && bad > 0)
        st = pt_error_set(err, PT_EINVAL, "train: label %g of row %lld is not a finite number",
                          bad_y, (long long)bad_row);
    else if (st == PT_OK && r1[1] > 0)
        st = pt_error_set(err, PT_EINVAL, "train: %.0f labels on other ranks are invalid",
                          r1[1]);
    else if (st == PT_OK && r1[0] < 1)
        st = pt_error_set(err, PT_EEMPTY, "train: the dataset has no rows on any rank");
    if (st != PT_OK) {
        pt_free(r1);
        lin_free(L);
        return st;
    }
    L->nglobal = (int64_t)r1[0];
    if (d->nrows_global > 0 && d->nrows_global != L->nglobal)
        pt_log_debug("train: nrows_global says %lld, the ranks hold %lld rows",
                     (long long)d->nrows_global, (long long)L->nglobal);
    memcpy(L->counts, r1 + 3, (size_t)ncount * sizeof(double));
    L->y2 = r1[3 + ncount];
    double N = (double)L->nglobal;
    const double *S1 = stats, *S2 = stats + p;
    memcpy(L->ysum, stats + (stdz ? 2 * p : p), (size_t)L->nw * sizeof(double));
    for (int64_t j = 0; j < p; j++) {
        double K = stdz ? L->shift[j] : 0.0;
        L->colsum[j] = S1[j] + N * K;
        L->mean[j] = K + S1[j] / N;
        L->inv_std[j] = 1.0;
        if (!stdz) continue;
        double var = N > 1 ? (S2[j] - S1[j] * S1[j] / N) / (N - 1) : 0.0;
        double sd = var > 0 ? sqrt(var) : 0.0, mu = fabs(L->mean[j]);
        /* Dense: a constant column gives exactly 0. Sparse sums are not
         * shifted; their cancellation leaves noise of order 1e-8 * |mean|. */
        double floor_sd = (d->sparse ? 1e-7 : 1e-10) * mu;
        L->inv_std[j] = sd > floor_sd && sd > 0 ? 1.0 / sd : 0.0;
    }
    pt_free(r1);
    if (!L->center) memset(L->mean, 0, (size_t)p * sizeof(double));
    pack_values(L);
    return PT_OK;
}

/* MLlib's starting point: zero weights, intercepts at the log-odds (or the
 * mean) of the labels. */
static void initial_point(const lin *L, double *x) {
    memset(x, 0, (size_t)L->np * sizeof(double));
    if (!L->fit_intercept) return;
    double N = (double)L->nglobal;
    if (L->kind == LIN_REG) {
        x[L->nw] = L->counts[0] / N;
    } else if (L->kind == LIN_BIN) {
        double n1 = L->counts[1], n0 = N - n1;
        if (n1 > 0 && n0 > 0) x[L->nw] = log(n1 / n0);
    } else {
        bool all = true;
        double mean = 0;
        for (int c = 0; c < L->K; c++) all = all && L->counts[c] > 0;
        if (!all) return;
        for (int c = 0; c < L->K; c++) mean += log(L->counts[c]);
        mean /= L->K;
        for (int c = 0; c < L->K; c++) x[L->nw + c] = log(L->counts[c]) - mean;
    }
}

/* Internal parameters to the model's original-scale layout. */
static void to_model(const lin *L, const double *x, double *params) {
    int64_t p = L->p;
    for (int c = 0; c < L->K; c++) {
        double b = L->fit_intercept ? x[L->nw + c] : 0.0;
        for (int64_t j = 0; j < p; j++) {
            double w = x[(int64_t)c * p + j] * L->inv_std[j];
            params[(int64_t)c * p + j] = w;
            if (L->center) b -= w * L->mean[j];
        }
        params[L->nw + c] = b;
    }
    if (L->kind == LIN_MULTI && L->fit_intercept) {
        /* Intercepts are unpenalised, so only their differences matter;
         * MLlib reports them centred. */
        double mean = 0;
        for (int c = 0; c < L->K; c++) mean += params[L->nw + c];
        mean /= L->K;
        for (int c = 0; c < L->K; c++) params[L->nw + c] -= mean;
    }
}

/* ------------------------------------------------------------------------ */
/* Checkpoints and progress                                                 */
/* ------------------------------------------------------------------------ */

static uint64_t mix(uint64_t h, uint64_t v) { return pt_splitmix64(h ^ pt_splitmix64(v)); }
static uint64_t mixd(uint64_t h, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return mix(h, u);
}

static uint64_t run_tag(const lin *L) {
    const pt_train_opts *o = L->o;
    uint64_t h = 0x6c696e6561720001ULL; /* "linear", v1 */
    h = mix(h, (uint64_t)o->kind);
    h = mix(h, (uint64_t)L->kind);
    h = mix(h, (uint64_t)L->p);
    h = mix(h, (uint64_t)L->nclasses);
    h = mix(h, (uint64_t)L->nglobal);
    h = mix(h, (uint64_t)(o->solver == PT_SOLVER_AUTO ? PT_SOLVER_LBFGS : o->solver));
    h = mixd(h, o->reg_param);
    h = mixd(h, o->elastic_net);
    h = mixd(h, o->tol);
    h = mix(h, (uint64_t)o->fit_intercept * 2 + (uint64_t)o->standardization);
    h = mixd(h, o->learning_rate);
    h = mixd(h, o->momentum);
    h = mixd(h, o->beta1);
    h = mixd(h, o->beta2);
    h = mixd(h, o->epsilon);
    h = mix(h, (uint64_t)o->batch_size);
    h = mix(h, o->seed);
    return h;
}

/* Rank 0 writes; the outcome is broadcast so that a failed write stops
 * every rank instead of leaving the others in the next collective. */
static pt_status save_ckpt(const lin *L, int64_t step, const double *x, const double *state,
                           int64_t nstate, pt_error *err) {
    double ok = 1;
    pt_error e0 = {0};
    if (L->rank == 0) {
        pt__ckpt c;
        memset(&c, 0, sizeof c);
        c.tag = run_tag(L);
        c.step = c.epoch = step;
        c.nparams = L->np;
        c.params = (double *)x;
        c.nstate = nstate;
        c.state = (double *)state;
        if (pt__ckpt_save(L->o->checkpoint_dir, L->o->checkpoint_keep, &c, &e0) != PT_OK) ok = 0;
    }
    pt_status st = pt__ml_bcast(L->comm, &ok, 1, err);
    if (st != PT_OK) return st;
    if (ok != 1) {
        if (L->rank == 0) {
            if (err) *err = e0;
            return e0.code != PT_OK ? e0.code : PT_EIO;
        }
        return pt_error_set(err, PT_EIO, "train: rank 0 failed to write a checkpoint");
    }
    return PT_OK;
}

/* Every rank loads the newest usable checkpoint; the ranks must agree on
 * its step (else they would continue from different states). */
static pt_status load_ckpt(const lin *L, pt__ckpt *c, bool *found, pt_error *err) {
    memset(c, 0, sizeof *c);
    *found = false;
    pt_error e0 = {0};
    pt_status st = pt__ckpt_load_latest(L->o->checkpoint_dir, run_tag(L), c, found, &e0);
    if (st == PT_OK && *found && c->nparams != L->np) {
        st = pt_error_set(&e0, PT_ECORRUPT,
                          "train: checkpoint in %s has %lld parameters, the model %lld",
                          L->o->checkpoint_dir, (long long)c->nparams, (long long)L->np);
    }
    double v[3] = {st != PT_OK ? 1.0 : 0.0, *found ? 1.0 : 0.0, *found ? (double)c->step : 0.0};
    double mx[3] = {v[0], v[1], v[2]}, mn[3] = {-v[0], -v[1], -v[2]};
    pt_status s2 = reduce_max(L->comm, mx, 3, err);
    if (s2 == PT_OK) s2 = reduce_max(L->comm, mn, 3, err);
    if (s2 != PT_OK) {
        pt__ckpt_clear(c);
        return s2;
    }
    if (st != PT_OK) {
        pt__ckpt_clear(c);
        if (err) *err = e0;
        return st;
    }
    if (mx[0] > 0) {
        pt__ckpt_clear(c);
        return pt_error_set(err, PT_EIO, "train: another rank failed to read its checkpoint");
    }
    if (mx[1] != -mn[1] || mx[2] != -mn[2]) {
        pt__ckpt_clear(c);
        *found = false;
        return pt_error_set(err, PT_ECORRUPT,
                            "train: ranks see different checkpoints in %s (steps %.0f..%.0f)",
                            L->o->checkpoint_dir, -mn[2], mx[2]);
    }
    return PT_OK;
}

static void report(const lin *L, int64_t iter, double loss, double gnorm, double t0) {
    if (L->rank != 0 || !L->o->progress) return;
    pt_train_progress pr = {iter, loss, gnorm, pt_now_s() - t0};
    L->o->progress(&pr, L->o->progress_arg);
}

static bool ckpt_due(const lin *L, int64_t step) {
    return L->o->checkpoint_every > 0 && L->o->checkpoint_dir &&
           step % L->o->checkpoint_every == 0;
}

/* ------------------------------------------------------------------------ */
/* Solvers                                                                  */
/* ------------------------------------------------------------------------ */

static pt_status run_lbfgs(lin *L, double *x, int64_t *iters, double *loss, pt_error *err) {
    const pt_train_opts *o = L->o;
    pt__lbfgs s;
    pt_status st = pt__lbfgs_init(&s, L->np, LBFGS_HISTORY, L->mem, err);
    if (st != PT_OK) return st;
    s.fn = eval_full;
    s.arg = L;
    s.l1 = L->l1;
    s.npen = L->nw;
    s.tol = o->tol;
    s.max_iter = o->max_iter;
    double *state = NULL;
    bool resumed = false;
    if (o->resume && o->checkpoint_dir) {
        pt__ckpt c;
        st = load_ckpt(L, &c, &resumed, err);
        if (st == PT_OK && resumed) {
            st = pt__lbfgs_state_load(&s, c.params, c.state, c.nstate, err);
            if (st != PT_OK)
                pt_error_prefix(err, "train: checkpoint in %s", o->checkpoint_dir);
        }
        pt__ckpt_clear(&c);
    }
    if (st == PT_OK && !resumed) st = pt__lbfgs_start(&s, x, err);
    if (st == PT_OK) {
        state = pt_malloc((size_t)pt__lbfgs_state_size(&s) * sizeof(double));
        if (!state) st = pt_error_set(err, PT_ENOMEM, "train: out of memory for L-BFGS state");
    }
    double t0 = pt_now_s();
    while (st == PT_OK && s.stop == PT__LBFGS_RUNNING) {
        st = pt__lbfgs_iterate(&s, err);
        if (st != PT_OK) break;
        if (s.stop == PT__LBFGS_RUNNING && ckpt_due(L, s.iter)) {
            pt__lbfgs_state_save(&s, state);
            st = save_ckpt(L, s.iter, s.x, state, pt__lbfgs_state_size(&s), err);
            if (st != PT_OK) break;
        }
        report(L, s.iter, pt__lbfgs_objective(&s), pt__lbfgs_grad_norm(&s), t0);
    }
    if (st == PT_OK) {
        memcpy(x, s.x, (size_t)L->np * sizeof(double));
        *iters = s.iter;
        *loss = pt__lbfgs_objective(&s);
    }
    pt_free(state);
    pt__lbfgs_free(&s);
    return st;
}

/* Uniform in [0, 1) from (seed, epoch, global row): the batch of a row in
 * an epoch depends on nothing else, so neither ranks nor threads change
 * which rows are averaged together. */
static double row_u01(uint64_t seed, int64_t epoch, int64_t gid) {
    uint64_t h = pt_splitmix64(seed ^ pt_splitmix64((uint64_t)epoch * 0x9e3779b97f4a7c15ULL +
                                                    0x5851f42d4c957f2dULL));
    h = pt_splitmix64(h ^ (uint64_t)gid);
    return (double)(h >> 11) * 0x1.0p-53;
}

static pt_status run_sgd(lin *L, double *x, int64_t *iters, double *loss, pt_error *err) {
    const pt_train_opts *o = L->o;
    const pt_dataset *d = L->d;
    int64_t n = d->nrows, N = L->nglobal, np = L->np;
    int64_t B = o->batch_size > 0 ? o->batch_size : 256;
    int64_t nb = (N + B - 1) / B;
    pt__sgd opt;
    pt_status st = pt__sgd_init(&opt, o->solver, o, np, err);
    if (st != PT_OK) return st;
    int64_t *gid = NULL, nglobal = 0;
    int64_t *bat = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    int64_t *order = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    int64_t *start = pt_calloc((size_t)nb + 2, sizeof(int64_t));
    double *g = pt_malloc((size_t)np * sizeof(double));
    if (!bat || !order || !start || !g) {
        st = pt_error_set(err, PT_ENOMEM, "train: out of memory for mini-batches");
        goto done;
    }
    /* Global row numbers: the dataset's, else this rank's offset (the
     * counts are gathered either way, so that ranks whose datasets differ
     * in having row_id still meet in the same collectives). */
    st = pt__ml_global_ids(L->comm, d, &gid, &nglobal, err);
    if (st != PT_OK) goto done;
    int64_t epoch0 = 0;
    if (o->resume && o->checkpoint_dir) {
        pt__ckpt c;
        bool found = false;
        st = load_ckpt(L, &c, &found, err);
        if (st == PT_OK && found) {
            if (c.nstate != opt.nstate) {
                st = pt_error_set(err, PT_ECORRUPT,
                                  "train: checkpoint in %s has %lld optimiser values, expected "
                                  "%lld",
                                  o->checkpoint_dir, (long long)c.nstate,
                                  (long long)opt.nstate);
            } else {
                memcpy(x, c.params, (size_t)np * sizeof(double));
                memcpy(opt.state, c.state, (size_t)opt.nstate * sizeof(double));
                epoch0 = c.epoch;
            }
        }
        pt__ckpt_clear(&c);
        if (st != PT_OK) goto done;
    }
    double t0 = pt_now_s();
    for (int64_t e = epoch0; e < o->max_iter; e++) {
        /* Counting sort of this rank's rows by batch; rows keep their
         * order inside a batch. */
        memset(start, 0, (size_t)(nb + 2) * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++) {
            int64_t b = (int64_t)(row_u01(o->seed, e, gid[i]) * (double)nb);
            if (b >= nb) b = nb - 1;
            bat[i] = b;
            start[b + 2]++;
        }
        for (int64_t b = 0; b < nb; b++) start[b + 2] += start[b + 1];
        for (int64_t i = 0; i < n; i++) order[start[bat[i] + 1]++] = i;
        double lsum = 0, gnorm = 0;
        for (int64_t b = 0; b < nb; b++) {
            L->sel = order + start[b];
            L->nsel = start[b + 1] - start[b];
            double cnt = 0, f = 0;
            st = evaluate(L, x, &f, g, &cnt, false, err);
            if (st != PT_OK) goto done;
            if (cnt == 0) continue;
            lsum += L->acc[0];
            for (int64_t j = 0; j < L->nw && L->l1 > 0; j++)
                g[j] += x[j] > 0 ? L->l1 : x[j] < 0 ? -L->l1 : 0.0;
            pt__sgd_step(&opt, x, g);
            if (b == nb - 1 || L->o->progress) gnorm = sqrt(dotv(g, g, np));
        }
        L->sel = NULL;
        if (e + 1 < o->max_iter && ckpt_due(L, e + 1)) {
            st = save_ckpt(L, e + 1, x, opt.state, opt.nstate, err);
            if (st != PT_OK) goto done;
        }
        if (L->rank == 0 && o->progress) {
            double reg = 0, l1 = 0;
            for (int64_t j = 0; j < L->nw; j++) reg += x[j] * x[j], l1 += fabs(x[j]);
            report(L, e + 1, lsum / (double)N + 0.5 * L->l2 * reg + L->l1 * l1, gnorm, t0);
        }
    }
    {
        /* The final objective over every row, as the L-BFGS path reports. */
        double f = 0, l1 = 0;
        L->sel = NULL;
        st = evaluate(L, x, &f, g, NULL, false, err);
        if (st != PT_OK) goto done;
        for (int64_t j = 0; j < L->nw; j++) l1 += fabs(x[j]);
        *loss = f + L->l1 * l1;
        *iters = o->max_iter > epoch0 ? o->max_iter : epoch0;
    }
done:
    L->sel = NULL;
    pt_free(gid);
    pt_free(bat);
    pt_free(order);
    pt_free(start);
    pt_free(g);
    pt__sgd_free(&opt);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Entry points                                                             */
/* ------------------------------------------------------------------------ */

pt_status pt__linear_objective(const pt_train_opts *o, const pt_dataset *d, const double *x,
                               int64_t *nx_out, double *f, double *g, pt_error *err) {
    lin L;
    pt_status st = lin_setup(&L, o, d, err);
    if (st != PT_OK) return st;
    if (nx_out) *nx_out = L.np;
    if (x) st = eval_full(&L, x, f, g, err);
    lin_free(&L);
    return st;
}

pt_status pt__linear_train(const pt_train_opts *o, const pt_dataset *d, pt_model **m,
                           pt_error *err) {
    *m = NULL;
    if (o->kind == PT_MODEL_LINREG && o->family == 2)
        return pt_error_set(err, PT_EINVAL, "train: family multinomial needs logistic regression");
    lin L;
    pt_status st = lin_setup(&L, o, d, err);
    if (st != PT_OK) return st;
    if (o->kind == PT_MODEL_LOGREG && o->family == 1 && L.nclasses > 2) {
        int k = L.nclasses;
        lin_free(&L);
        return pt_error_set(err, PT_EINVAL,
                            "train: family binomial needs 2 classes, the labels have %d", k);
    }
    double *x = pt_malloc((size_t)L.np * sizeof(double));
    if (!x) {
        lin_free(&L);
        return pt_error_set(err, PT_ENOMEM, "train: out of memory");
    }
    initial_point(&L, x);
    st = pt__ml_bcast(L.comm, x, L.np, err);
    int64_t iters = 0;
    double loss = 0;
    if (st == PT_OK) {
        if (o->solver == PT_SOLVER_SGD || o->solver == PT_SOLVER_ADAM)
            st = run_sgd(&L, x, &iters, &loss, err);
        else
            st = run_lbfgs(&L, x, &iters, &loss, err);
    }
    pt_model *mod = NULL;
    if (st == PT_OK) st = pt__model_alloc(o->kind, L.np, &mod, err);
    if (st == PT_OK) {
        mod->nfeatures = L.p;
        mod->nclasses = o->kind == PT_MODEL_LINREG ? 1 : L.nclasses;
        mod->rows = L.K;
        mod->multinomial = L.kind == LIN_MULTI;
        mod->threshold = o->threshold;
        mod->iterations = iters;
        mod->loss = loss;
        to_model(&L, x, mod->params);
        *m = mod;
    }
    pt_free(x);
    lin_free(&L);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Prediction                                                               */
/* ------------------------------------------------------------------------ */

typedef struct pred_task {
    const pt_model *m;
    const pt_dataset *d;
    pt_predictions *out;
    int64_t chunk;
} pred_task;

static pt_status pred_run(pt_task_ctx *tc, void *arg, int64_t ci, pt_error *err) {
    (void)tc;
    (void)err;
    pred_task *t = arg;
    const pt_model *m = t->m;
    const pt_dataset *d = t->d;
    int64_t P = m->nfeatures, pf = d->nfeatures < P ? d->nfeatures : P;
    int K = (int)m->rows;
    const double *W = m->params, *bias = m->params + (int64_t)K * P;
    int64_t a = ci * t->chunk, b = a + t->chunk < d->nrows ? a + t->chunk : d->nrows;
    int ncols = t->out->ncols;
    for (int64_t i = a; i < b; i++) {
        double *raw = t->out->raw + i * ncols;
        for (int c = 0; c < K; c++) {
            const double *wc = W + (int64_t)c * P;
            double s = bias[c];
            if (!d->sparse) {
                s += dotv(d->x + i * d->nfeatures, wc, pf);
            } else {
                for (int64_t k = d->indptr[i]; k < d->indptr[i + 1]; k++)
                    if (d->indices[k] >= 0 && d->indices[k] < pf)
                        s += d->values[k] * wc[d->indices[k]];
            }
            raw[c] = s;
        }
        if (m->kind == PT_MODEL_LINREG) {
            t->out->label[i] = raw[0];
        } else if (!m->multinomial) {
            double e = exp(-fabs(raw[0]));
            double p1 = raw[0] >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            t->out->prob[i] = p1;
            t->out->label[i] = p1 > m->threshold ? 1.0 : 0.0;
        } else {
            double *pr = t->out->prob + i * ncols, mx = raw[0], sum = 0;
            int best = 0;
            for (int c = 1; c < K; c++)
                if (raw[c] > mx) mx = raw[c], best = c;
            for (int c = 0; c < K; c++) sum += pr[c] = exp(raw[c] - mx);
            for (int c = 0; c < K; c++) pr[c] /= sum;
            t->out->label[i] = best;
        }
    }
    return PT_OK;
}

pt_status pt__linear_predict(const pt_model *m, pt_ctx *ctx, const pt_dataset *d,
                             pt_predictions *out, pt_error *err) {
    memset(out, 0, sizeof *out);
    if (d->nrows < 0) return pt_error_set(err, PT_EINVAL, "predict: negative row count");
    if (d->nrows > 0 && ((!d->sparse && !d->x) || (d->sparse && !d->indptr)))
        return pt_error_set(err, PT_EINVAL, "predict: the dataset has no values");
    int64_t n = d->nrows;
    int ncols = m->multinomial ? (int)m->rows : 1;
    size_t cells = (size_t)(n > 0 ? n : 1) * (size_t)ncols;
    out->n = n;
    out->ncols = ncols;
    out->label = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    out->raw = pt_malloc(cells * sizeof(double));
    if (m->kind == PT_MODEL_LOGREG) out->prob = pt_malloc(cells * sizeof(double));
    if (!out->label || !out->raw || (m->kind == PT_MODEL_LOGREG && !out->prob)) {
        pt_predictions_free(out);
        return pt_error_set(err, PT_ENOMEM, "predict: out of memory for %lld rows",
                            (long long)n);
    }
    pred_task t = {m, d, out, pt__linear_chunk_rows > 0 ? pt__linear_chunk_rows : 4096};
    int64_t nch = (n + t.chunk - 1) / t.chunk;
    pt_status st = nch <= 1 ? (nch == 1 ? pred_run(NULL, &t, 0, err) : PT_OK)
                            : pt_parallel_for(ctx ? pt_ctx_pool(ctx) : NULL, nch, pred_run, &t,
                                              NULL, err);
    if (st != PT_OK) pt_predictions_free(out);
    return st;
}
