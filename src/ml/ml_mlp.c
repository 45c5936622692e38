/*
 * ml_mlp.c - the multilayer perceptron: dense layers with ReLU, tanh or
 * sigmoid, a softmax output with cross-entropy, trained by mini-batch SGD
 * with momentum or Adam (ml_sgd.c), data-parallel over ranks and threads.
 *
 * Batches come from a per-epoch permutation of the global row ids seeded
 * by (seed, epoch), so every rank knows which of its rows belong to each
 * batch whatever the sharding. A rank cuts its rows of a batch into fixed
 * chunks of MLP_CHUNK rows; each chunk runs forward and backward with
 * dgemm (OpenBLAS limited to one thread: our pool runs the chunks), the
 * chunk gradients are added in chunk order, and one allreduce of
 * [loss, gradient] per step combines the ranks. The model therefore
 * depends on the seed and the rank count, never on the thread count.
 *
 * Inputs are standardised on the fly (mean and deviation over all ranks;
 * sparse data is scaled, not centred) and the scaling is folded into W_0
 * and b_0 at the end, so the saved model reads raw features.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/ml_internal.h"
#include "ml/ml_nn.h"

/* Rows per chunk of a training batch: fixes the summation order. */
#define MLP_CHUNK 128
/* Rows per chunk when predicting (no sums, only throughput matters). */
#define MLP_PCHUNK 256
/* CSR rows with more features than this feed the first layer straight from
 * the sparse entries instead of being expanded to dense chunk rows. */
#define MLP_DENSIFY_MAX 8192
/* Rows per chunk of the standardisation statistics. */
#define MLP_STAT_CHUNK 2048
/* Epochs without an improvement of tol before stopping (as scikit-learn's
 * n_iter_no_change). */
#define MLP_NO_CHANGE 10

typedef struct mlp_net {
    int L;                             /* weight layers */
    int64_t s[PT__ML_MAX_LAYERS + 1]; /* units per layer, s[0] = inputs */
    int64_t woff[PT__ML_MAX_LAYERS], boff[PT__ML_MAX_LAYERS];
    int64_t aoff[PT__ML_MAX_LAYERS + 1]; /* start of layer l's activations, per row */
    int64_t asum;                         /* activation values per row (layers 1..L) */
    int64_t smax;                         /* widest layer after the input */
    int64_t nparams;
    pt_activation act;
} mlp_net;

static void net_init(mlp_net *N, int L, const int64_t *s, pt_activation act) {
    memset(N, 0, sizeof *N);
    N->L = L;
    N->act = act;
    int64_t off = 0, a = 0;
    for (int l = 0; l <= L; l++) N->s[l] = s[l];
    for (int l = 0; l < L; l++) {
        N->woff[l] = off;
        off += s[l + 1] * s[l];
        N->boff[l] = off;
        off += s[l + 1];
        N->aoff[l + 1] = a;
        a += s[l + 1];
        if (s[l + 1] > N->smax) N->smax = s[l + 1];
    }
    N->nparams = off;
    N->asum = a;
}

static void net_from_model(const pt_model *m, mlp_net *N) {
    net_init(N, m->nlayers, m->sizes, m->activation);
}

/* Where a chunk's rows come from and how they are scaled. */
typedef struct mlp_in {
    const pt_dataset *d;
    const double *mu, *isd; /* standardisation (mu NULL: not centred), or NULL */
    bool sparse_path;       /* first layer straight from CSR entries */
    const double *W0T;      /* sparse path: W_0 transposed, s0 x s1 */
} mlp_in;

static int64_t row_at(const int64_t *rows, int64_t r0, int64_t i) {
    return rows ? rows[r0 + i] : r0 + i;
}

/* Copies nc rows into X (nc x s0, row-major), scaled, zero-padded when the
 * data has fewer features than the model. */
static void gather(const mlp_net *N, const mlp_in *in, const int64_t *rows, int64_t r0,
                   int64_t nc, double *X) {
    const pt_dataset *d = in->d;
    int64_t s0 = N->s[0], nfd = d->nfeatures < s0 ? d->nfeatures : s0;
    for (int64_t i = 0; i < nc; i++) {
        int64_t r = row_at(rows, r0, i);
        double *xo = X + i * s0;
        if (!d->sparse) {
            const double *x = d->x + r * d->nfeatures;
            if (in->isd && in->mu)
                for (int64_t f = 0; f < nfd; f++) xo[f] = (x[f] - in->mu[f]) * in->isd[f];
            else if (in->isd)
                for (int64_t f = 0; f < nfd; f++) xo[f] = x[f] * in->isd[f];
            else
                memcpy(xo, x, (size_t)nfd * sizeof(double));
            for (int64_t f = nfd; f < s0; f++) xo[f] = 0;
        } else {
            memset(xo, 0, (size_t)s0 * sizeof(double));
            for (int64_t p = d->indptr[r]; p < d->indptr[r + 1]; p++) {
                int64_t f = d->indices[p];
                xo[f] = in->isd ? d->values[p] * in->isd[f] : d->values[p];
            }
        }
    }
}

/* Forward pass of nc rows: A (nc x asum) receives every layer's
 * activations, the last layer's as logits. X is the gathered input (unused
 * on the sparse path). */
static void forward(const mlp_net *N, const double *P, const mlp_in *in, const int64_t *rows,
                    int64_t r0, int64_t nc, const double *X, double *A) {
    for (int l = 0; l < N->L; l++) {
        int64_t ni = N->s[l], no = N->s[l + 1];
        const double *W = P + N->woff[l], *b = P + N->boff[l];
        double *Z = A + nc * N->aoff[l + 1];
        for (int64_t i = 0; i < nc; i++) memcpy(Z + i * no, b, (size_t)no * sizeof(double));
        if (l == 0 && in->sparse_path) {
            const pt_dataset *d = in->d;
            for (int64_t i = 0; i < nc; i++) {
                int64_t r = row_at(rows, r0, i);
                double *z = Z + i * no;
                for (int64_t p = d->indptr[r]; p < d->indptr[r + 1]; p++) {
                    int64_t f = d->indices[p];
                    double v = in->isd ? d->values[p] * in->isd[f] : d->values[p];
                    const double *w = in->W0T + f * no;
                    for (int64_t o = 0; o < no; o++) z[o] += v * w[o];
                }
            }
        } else {
            const double *Ain = l == 0 ? X : A + nc * N->aoff[l];
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nc, (int)no, (int)ni, 1.0,
                        Ain, (int)ni, W, (int)ni, 1.0, Z, (int)no);
        }
        if (l == N->L - 1) break;
        int64_t cnt = nc * no;
        switch (N->act) {
        case PT_ACT_RELU:
            for (int64_t i = 0; i < cnt; i++) Z[i] = Z[i] > 0 ? Z[i] : 0;
            break;
        case PT_ACT_TANH:
            for (int64_t i = 0; i < cnt; i++) Z[i] = tanh(Z[i]);
            break;
        case PT_ACT_SIGMOID:
            for (int64_t i = 0; i < cnt; i++) Z[i] = 1.0 / (1.0 + exp(-Z[i]));
            break;
        }
    }
}

/* Softmax of one row of logits into p; returns log-sum-exp. */
static double softmax_row(const double *z, int64_t c, double *p) {
    double mx = z[0];
    for (int64_t j = 1; j < c; j++)
        if (z[j] > mx) mx = z[j];
    double s = 0;
    for (int64_t j = 0; j < c; j++) s += exp(z[j] - mx);
    double lse = mx + log(s);
    for (int64_t j = 0; j < c; j++) p[j] = exp(z[j] - lse);
    return lse;
}

/* ------------------------------------------------------------------------ */
/* Loss and gradient of a set of rows                                       */
/* ------------------------------------------------------------------------ */

typedef struct mlp_grad_job {
    const mlp_net *N;
    const double *P;
    const mlp_in *in;
    const int64_t *rows; /* local rows (NULL: 0..nrows-1) */
    int64_t nrows;
    double *ws;
    int64_t ws_slot; /* doubles per slot */
} mlp_grad_job;

static int64_t grad_ws_size(const mlp_net *N) {
    return MLP_CHUNK * (N->s[0] + N->asum + 2 * N->smax);
}

/* out = [sum of cross-entropies, gradient sum (nparams)]; on the sparse
 * path W_0's gradient block is stored transposed (s0 x s1), which the
 * caller undoes after the chunk sum. */
static pt_status grad_chunk(void *arg, int64_t chunk, int slot, double *out, pt_error *err) {
    (void)err;
    const mlp_grad_job *J = arg;
    const mlp_net *N = J->N;
    const mlp_in *in = J->in;
    int64_t r0 = chunk * MLP_CHUNK;
    int64_t nc = J->nrows - r0 < MLP_CHUNK ? J->nrows - r0 : MLP_CHUNK;
    double *X = J->ws + (int64_t)slot * J->ws_slot;
    double *A = X + MLP_CHUNK * N->s[0];
    double *D0 = A + MLP_CHUNK * N->asum, *D1 = D0 + MLP_CHUNK * N->smax;
    if (!in->sparse_path) gather(N, in, J->rows, r0, nc, X);
    forward(N, J->P, in, J->rows, r0, nc, X, A);
    int L = N->L;
    int64_t C = N->s[L];
    double *logits = A + nc * N->aoff[L];
    double loss = 0;
    for (int64_t i = 0; i < nc; i++) {
        int64_t y = (int64_t)in->d->y[row_at(J->rows, r0, i)];
        double lse = softmax_row(logits + i * C, C, D0 + i * C);
        loss += lse - logits[i * C + y];
        D0[i * C + y] -= 1.0;
    }
    out[0] += loss;
    double *g = out + 1;
    double *Dl = D0, *Dn = D1;
    for (int l = L - 1; l >= 0; l--) {
        int64_t ni = N->s[l], no = N->s[l + 1];
        double *gW = g + N->woff[l], *gb = g + N->boff[l];
        if (l == 0 && in->sparse_path) {
            const pt_dataset *d = in->d;
            for (int64_t i = 0; i < nc; i++) {
                int64_t r = row_at(J->rows, r0, i);
                const double *dl = Dl + i * no;
                for (int64_t p = d->indptr[r]; p < d->indptr[r + 1]; p++) {
                    int64_t f = d->indices[p];
                    double v = in->isd ? d->values[p] * in->isd[f] : d->values[p];
                    double *gw = gW + f * no;
                    for (int64_t o = 0; o < no; o++) gw[o] += v * dl[o];
                }
            }
        } else {
            const double *Ain = l == 0 ? X : A + nc * N->aoff[l];
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)no, (int)ni, (int)nc, 1.0,
                        Dl, (int)no, Ain, (int)ni, 1.0, gW, (int)ni);
        }
        for (int64_t i = 0; i < nc; i++)
            for (int64_t o = 0; o < no; o++) gb[o] += Dl[i * no + o];
        if (l == 0) break;
        const double *W = J->P + N->woff[l];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nc, (int)ni, (int)no, 1.0, Dl,
                    (int)no, W, (int)ni, 0.0, Dn, (int)ni);
        const double *Al = A + nc * N->aoff[l];
        int64_t cnt = nc * ni;
        switch (N->act) {
        case PT_ACT_RELU:
            for (int64_t i = 0; i < cnt; i++)
                if (!(Al[i] > 0)) Dn[i] = 0;
            break;
        case PT_ACT_TANH:
            for (int64_t i = 0; i < cnt; i++) Dn[i] *= 1.0 - Al[i] * Al[i];
            break;
        case PT_ACT_SIGMOID:
            for (int64_t i = 0; i < cnt; i++) Dn[i] *= Al[i] * (1.0 - Al[i]);
            break;
        }
        double *t = Dl;
        Dl = Dn;
        Dn = t;
    }
    return PT_OK;
}

/* Everything a rank needs to compute [loss, gradient] sums over some of
 * its rows. */
typedef struct mlp_engine {
    mlp_net N;
    mlp_in in;
    pt_pool *pool;
    int nslots;
    double *ws;   /* nslots * grad_ws_size */
    double *W0T;  /* sparse path */
    double *tmp;  /* sparse path: s0 * s1 for the transposition */
    double *scratch; /* chunk outputs of a step, or NULL */
    int64_t scratch_chunks;
} mlp_engine;

static pt_status engine_init(mlp_engine *E, const mlp_net *N, const pt_dataset *d, pt_ctx *ctx,
                             pt_error *err) {
    memset(E, 0, sizeof *E);
    E->N = *N;
    E->in.d = d;
    E->in.sparse_path = d->sparse && N->s[0] > MLP_DENSIFY_MAX;
    E->pool = ctx ? pt_ctx_pool(ctx) : NULL;
    E->nslots = ctx ? 2 * pt_ctx_threads(ctx) : 1;
    E->ws = pt_malloc((size_t)(E->nslots * grad_ws_size(N)) * sizeof(double));
    if (!E->ws) return pt_error_set(err, PT_ENOMEM, "mlp: out of memory for the workspace");
    if (E->in.sparse_path) {
        int64_t n0 = N->s[0] * N->s[1];
        E->W0T = pt_malloc((size_t)n0 * sizeof(double));
        E->tmp = pt_malloc((size_t)n0 * sizeof(double));
        if (!E->W0T || !E->tmp)
            return pt_error_set(err, PT_ENOMEM, "mlp: out of memory for the first layer");
    }
    return PT_OK;
}

/* Keeps the chunk outputs of steps of at most `rows` rows, so that a
 * training step allocates nothing. */
static pt_status engine_scratch(mlp_engine *E, int64_t rows, pt_error *err) {
    int64_t c = (rows + MLP_CHUNK - 1) / MLP_CHUNK;
    if (c > E->nslots) c = E->nslots;
    E->scratch = pt_malloc((size_t)(c * (1 + E->N.nparams)) * sizeof(double));
    if (!E->scratch) return pt_error_set(err, PT_ENOMEM, "mlp: out of memory for gradients");
    E->scratch_chunks = c;
    return PT_OK;
}

static void engine_free(mlp_engine *E) {
    pt_free(E->ws);
    pt_free(E->W0T);
    pt_free(E->tmp);
    pt_free(E->scratch);
    E->ws = E->W0T = E->tmp = E->scratch = NULL;
}

static void transpose(const double *a, int64_t r, int64_t c, double *t) {
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < c; j++) t[j * r + i] = a[i * c + j];
}

/* buf (1 + nparams, zeroed by the caller) += [loss sum, gradient sum] over
 * the given local rows. No communication. */
static pt_status engine_grad(mlp_engine *E, const double *P, const int64_t *rows, int64_t n,
                             double *buf, pt_error *err) {
    const mlp_net *N = &E->N;
    if (E->in.sparse_path) {
        transpose(P + N->woff[0], N->s[1], N->s[0], E->W0T);
        E->in.W0T = E->W0T;
    }
    mlp_grad_job J = {N, P, &E->in, rows, n, E->ws, grad_ws_size(N)};
    int64_t nchunks = (n + MLP_CHUNK - 1) / MLP_CHUNK;
    bool fits = E->scratch && (nchunks <= E->scratch_chunks || E->scratch_chunks == E->nslots);
    pt_status st = pt__ml_chunk_sum(E->pool, nchunks, 1 + N->nparams,
                                    fits ? (int)E->scratch_chunks : E->nslots, grad_chunk, &J, buf,
                                    fits ? E->scratch : NULL, err);
    if (st == PT_OK && E->in.sparse_path) {
        double *g0 = buf + 1 + N->woff[0];
        transpose(g0, N->s[0], N->s[1], E->tmp);
        memcpy(g0, E->tmp, (size_t)(N->s[0] * N->s[1]) * sizeof(double));
    }
    return st;
}

/* Adds the L2 term (weights only) to loss and gradient; loss is per row. */
static double add_l2(const mlp_net *N, const double *P, double reg, double *grad) {
    if (!(reg > 0)) return 0;
    double s = 0;
    for (int l = 0; l < N->L; l++) {
        const double *W = P + N->woff[l];
        double *g = grad + N->woff[l];
        int64_t cnt = N->s[l + 1] * N->s[l];
        for (int64_t i = 0; i < cnt; i++) {
            s += W[i] * W[i];
            g[i] += reg * W[i];
        }
    }
    return 0.5 * reg * s;
}

static double l2_term(const mlp_net *N, const double *P, double reg) {
    if (!(reg > 0)) return 0;
    double s = 0;
    for (int l = 0; l < N->L; l++) {
        const double *W = P + N->woff[l];
        for (int64_t i = 0; i < N->s[l + 1] * N->s[l]; i++) s += W[i] * W[i];
    }
    return 0.5 * reg * s;
}

static int comm_size(pt_comm *c) { return c ? pt_comm_size(c) : 1; }
static int comm_rank(pt_comm *c) { return c ? pt_comm_rank(c) : 0; }

pt_status pt__mlp_loss_grad(const pt_model *shape, pt_ctx *ctx, pt_comm *comm,
                            const pt_dataset *d, double reg, const double *params,
                            double *loss, double *grad, pt_error *err) {
    mlp_net N;
    net_from_model(shape, &N);
    mlp_engine E;
    pt_status st = engine_init(&E, &N, d, ctx, err);
    double *buf = pt_calloc((size_t)(N.nparams + 2), sizeof(double));
    if (st == PT_OK && !buf) st = pt_error_set(err, PT_ENOMEM, "mlp: out of memory");
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    if (st == PT_OK) st = engine_grad(&E, params, NULL, d->nrows, buf, err);
    openblas_set_num_threads(saved);
    if (st == PT_OK) {
        buf[N.nparams + 1] = (double)d->nrows; /* the row count rides along */
        st = pt__ml_allreduce_sum(comm, buf, N.nparams + 2, err);
    }
    if (st == PT_OK) {
        double n = buf[N.nparams + 1] > 0 ? buf[N.nparams + 1] : 1;
        for (int64_t i = 0; i < N.nparams; i++) grad[i] = buf[1 + i] / n;
        *loss = buf[0] / n + add_l2(&N, params, reg, grad);
    }
    pt_free(buf);
    engine_free(&E);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Training                                                                 */
/* ------------------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Global row positions: the global ids sorted; loc[pos] is the local row
 * holding that id, or -1 when another rank holds it. */
static pt_status build_loc(pt_comm *comm, const pt_dataset *d, int64_t **loc_out, int64_t *N_out,
                           pt_error *err) {
    int64_t *gid = NULL, N = 0;
    pt_status st = pt__ml_global_ids(comm, d, &gid, &N, err);
    if (st != PT_OK) return st;
    int64_t *all = NULL;
    if (comm_size(comm) > 1) {
        int size = comm_size(comm);
        int64_t *counts = pt_malloc((size_t)size * sizeof(int64_t));
        void *recv = NULL;
        if (!counts) st = pt_error_set(err, PT_ENOMEM, "mlp: out of memory");
        if (st == PT_OK)
            st = pt_comm_allgatherv(comm, gid, d->nrows * (int64_t)sizeof(int64_t), &recv, counts,
                                    err);
        pt_free(counts);
        all = recv;
    } else {
        all = pt_malloc((size_t)(N > 0 ? N : 1) * sizeof(int64_t));
        if (!all) st = pt_error_set(err, PT_ENOMEM, "mlp: out of memory for row ids");
        else memcpy(all, gid, (size_t)N * sizeof(int64_t));
    }
    int64_t *loc = NULL;
    if (st == PT_OK) {
        qsort(all, (size_t)N, sizeof(int64_t), cmp_i64);
        loc = pt_malloc((size_t)(N > 0 ? N : 1) * sizeof(int64_t));
        if (!loc) st = pt_error_set(err, PT_ENOMEM, "mlp: out of memory for row positions");
    }
    if (st == PT_OK) {
        for (int64_t p = 0; p < N; p++) loc[p] = -1;
        for (int64_t i = 0; i < d->nrows; i++) {
            int64_t *hit = bsearch(&gid[i], all, (size_t)N, sizeof(int64_t), cmp_i64);
            if (hit) loc[hit - all] = i;
        }
    }
    pt_free(gid);
    pt_free(all);
    if (st != PT_OK) {
        pt_free(loc);
        return st;
    }
    *loc_out = loc;
    *N_out = N;
    return PT_OK;
}

static void epoch_perm(uint64_t seed, int64_t epoch, int64_t *perm, int64_t N) {
    pt_rng r;
    pt_rng_seed(&r, pt_splitmix64(seed ^ pt_splitmix64((uint64_t)epoch + 0x6d6c70ULL)));
    for (int64_t i = 0; i < N; i++) perm[i] = i;
    for (int64_t i = N - 1; i > 0; i--) {
        int64_t j = (int64_t)pt_rng_below(&r, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

typedef struct stat_job {
    const pt_dataset *d;
} stat_job;

static pt_status stat_chunk(void *arg, int64_t chunk, int slot, double *out, pt_error *err) {
    (void)slot;
    (void)err;
    const pt_dataset *d = ((const stat_job *)arg)->d;
    int64_t nf = d->nfeatures;
    int64_t r1 = (chunk + 1) * MLP_STAT_CHUNK < d->nrows ? (chunk + 1) * MLP_STAT_CHUNK : d->nrows;
    double *s = out, *q = out + nf;
    for (int64_t r = chunk * MLP_STAT_CHUNK; r < r1; r++) {
        if (!d->sparse) {
            const double *x = d->x + r * nf;
            for (int64_t f = 0; f < nf; f++) {
                s[f] += x[f];
                q[f] += x[f] * x[f];
            }
        } else {
            for (int64_t p = d->indptr[r]; p < d->indptr[r + 1]; p++) {
                double v = d->values[p];
                s[d->indices[p]] += v;
                q[d->indices[p]] += v * v;
            }
        }
    }
    return PT_OK;
}

/* Mean and 1/deviation (sample deviation, as MLlib; 0 for a constant
 * feature, which then plays no part) over every rank's rows. */
static pt_status feature_stats(pt_comm *comm, pt_pool *pool, int nslots, const pt_dataset *d,
                               int64_t N, double *mu, double *isd, pt_error *err) {
    int64_t nf = d->nfeatures;
    double *acc = pt_calloc((size_t)(2 * nf), sizeof(double));
    if (!acc) return pt_error_set(err, PT_ENOMEM, "mlp: out of memory for feature statistics");
    stat_job J = {d};
    pt_status st = pt__ml_chunk_sum(pool, (d->nrows + MLP_STAT_CHUNK - 1) / MLP_STAT_CHUNK, 2 * nf,
                                    nslots, stat_chunk, &J, acc, NULL, err);
    if (st == PT_OK) st = pt__ml_allreduce_sum(comm, acc, 2 * nf, err);
    if (st == PT_OK) {
        for (int64_t f = 0; f < nf; f++) {
            double m = acc[f] / (double)N;
            double var = N > 1 ? (acc[nf + f] - (double)N * m * m) / (double)(N - 1) : 0;
            double sd = var > 0 ? sqrt(var) : 0;
            mu[f] = m;
            isd[f] = sd > 1e-12 * (fabs(m) > 1 ? fabs(m) : 1) ? 1.0 / sd : 0.0;
        }
    }
    pt_free(acc);
    return st;
}

static uint64_t mlp_tag(const pt_train_opts *o, const mlp_net *N, pt_solver solver, int nranks) {
    double t[PT__ML_MAX_LAYERS + 20];
    int n = 0;
    t[n++] = PT_MODEL_MLP;
    t[n++] = N->L;
    for (int l = 0; l <= N->L; l++) t[n++] = (double)N->s[l];
    t[n++] = N->act;
    t[n++] = solver;
    t[n++] = o->learning_rate;
    t[n++] = o->momentum;
    t[n++] = o->beta1;
    t[n++] = o->beta2;
    t[n++] = o->epsilon;
    t[n++] = (double)o->batch_size;
    t[n++] = o->reg_param;
    t[n++] = o->standardization;
    t[n++] = nranks;
    return pt_hash_bytes(t, (size_t)n * sizeof(double), o->seed ^ 0x6d6c70ULL);
}

/* Labels must be class ids; returns the class count over every rank. */
static pt_status class_count(pt_comm *comm, const pt_dataset *d, int *out, pt_error *err) {
    double v[2] = {0, -1}; /* max label, first bad local row (-1: none) */
    for (int64_t i = 0; i < d->nrows; i++) {
        double y = d->y[i];
        if (!(y >= 0 && y == floor(y) && y < 1e6)) {
            v[1] = (double)i;
            v[0] = y;
            break;
        }
        if (y > v[0]) v[0] = y;
    }
    double bad_label = v[1] >= 0 ? v[0] : 0, bad_row = v[1];
    if (v[1] >= 0) v[0] = 0;
    double g[2] = {v[0], v[1] >= 0 ? 1 : 0};
    if (comm_size(comm) > 1) {
        pt_status st = pt_comm_allreduce(comm, g, 2, PT_DTYPE_FLOAT64, PT_REDOP_MAX, err);
        if (st != PT_OK) return st;
    }
    if (bad_row >= 0)
        return pt_error_set(err, PT_EINVAL,
                            "train: mlp label %g of row %lld (rank %d) is not a class id 0, 1, ...",
                            bad_label, (long long)bad_row, comm_rank(comm));
    if (g[1] > 0)
        return pt_error_set(err, PT_EINVAL, "train: mlp labels on another rank are not class ids");
    int k = (int)g[0] + 1;
    if (d->nclasses > k) k = d->nclasses;
    *out = k < 2 ? 2 : k;
    return PT_OK;
}

/* Glorot uniform (He for ReLU hidden layers), biases 0; rank 0's values
 * are broadcast so that every rank starts from the same bits. */
static pt_status init_params(pt_comm *comm, const mlp_net *N, uint64_t seed, double *P,
                             pt_error *err) {
    pt_rng r;
    pt_rng_seed(&r, seed);
    memset(P, 0, (size_t)N->nparams * sizeof(double));
    for (int l = 0; l < N->L; l++) {
        double fi = (double)N->s[l], fo = (double)N->s[l + 1];
        double a = (l < N->L - 1 && N->act == PT_ACT_RELU) ? sqrt(6.0 / fi) : sqrt(6.0 / (fi + fo));
        double *W = P + N->woff[l];
        for (int64_t i = 0; i < N->s[l + 1] * N->s[l]; i++) W[i] = a * (2.0 * pt_rng_uniform(&r) - 1.0);
    }
    return pt__ml_bcast(comm, P, N->nparams, err);
}

typedef struct mlp_ckpt_hdr {
    double found, epoch, step, best, noimp;
} mlp_ckpt_hdr;

static pt_status save_ckpt(const pt_train_opts *o, uint64_t tag, const mlp_net *N,
                           const double *P, const pt__sgd *s, int64_t epoch, int64_t step,
                           double best, int noimp, pt_error *err) {
    pt_status st = PT_OK;
    if (comm_rank(o->comm) == 0) {
        double *state = pt_malloc((size_t)(s->nstate + 2) * sizeof(double));
        if (!state) {
            st = pt_error_set(err, PT_ENOMEM, "mlp: out of memory for a checkpoint");
        } else {
            memcpy(state, s->state, (size_t)s->nstate * sizeof(double));
            state[s->nstate] = best;
            state[s->nstate + 1] = noimp;
            pt__ckpt c = {.tag = tag, .step = step, .epoch = epoch, .nparams = N->nparams,
                          .params = (double *)P, .nstate = s->nstate + 2, .state = state};
            c.rng[0] = o->seed;
            c.rng[1] = (uint64_t)epoch;
            st = pt__ckpt_save(o->checkpoint_dir, o->checkpoint_keep, &c, err);
            pt_free(state);
        }
    }
    double flag = (double)st;
    pt_status cs = pt__ml_bcast(o->comm, &flag, 1, err);
    if (cs != PT_OK) return cs;
    if (st == PT_OK && flag != 0)
        return pt_error_set(err, (pt_status)(int)flag,
                            "train: rank 0 failed to write a checkpoint in %s", o->checkpoint_dir);
    return st;
}

/* Rank 0 reads the newest valid checkpoint and broadcasts it. */
static pt_status load_ckpt(const pt_train_opts *o, uint64_t tag, const mlp_net *N, double *P,
                           pt__sgd *s, mlp_ckpt_hdr *h, pt_error *err) {
    memset(h, 0, sizeof *h);
    pt_status st = PT_OK;
    pt__ckpt c;
    memset(&c, 0, sizeof c);
    if (comm_rank(o->comm) == 0) {
        bool f = false;
        st = pt__ckpt_load_latest(o->checkpoint_dir, tag, &c, &f, err);
        if (st != PT_OK) {
            h->found = -1;
        } else if (f && (c.nparams != N->nparams || c.nstate != s->nstate + 2)) {
            st = pt_error_set(err, PT_ECORRUPT,
                              "train: checkpoint in %s does not match the network's shape",
                              o->checkpoint_dir);
            h->found = -1;
        } else if (f) {
            h->found = 1;
            h->epoch = (double)c.epoch;
            h->step = (double)c.step;
            h->best = c.state[s->nstate];
            h->noimp = c.state[s->nstate + 1];
            memcpy(P, c.params, (size_t)N->nparams * sizeof(double));
            memcpy(s->state, c.state, (size_t)s->nstate * sizeof(double));
        }
    }
    pt_status cs = pt__ml_bcast(o->comm, (double *)h, 5, err);
    if (cs == PT_OK && h->found > 0) cs = pt__ml_bcast(o->comm, P, N->nparams, err);
    if (cs == PT_OK && h->found > 0) cs = pt__ml_bcast(o->comm, s->state, s->nstate, err);
    pt__ckpt_clear(&c);
    if (st != PT_OK) return st;
    if (cs != PT_OK) return cs;
    if (h->found < 0)
        return pt_error_set(err, PT_EIO, "train: rank 0 could not read the checkpoints in %s",
                            o->checkpoint_dir);
    return PT_OK;
}

pt_status pt__mlp_train(const pt_train_opts *o, const pt_dataset *d, pt_model **out,
                        pt_error *err) {
    *out = NULL;
    pt_comm *comm = o->comm;
    pt_solver solver = o->solver == PT_SOLVER_AUTO ? PT_SOLVER_ADAM : o->solver;
    if (solver != PT_SOLVER_SGD && solver != PT_SOLVER_ADAM)
        return pt_error_set(err, PT_EUNSUPPORTED,
                            "train: the mlp trains with solver sgd or adam, not lbfgs");
    int nclasses = 0;
    pt_status st = class_count(comm, d, &nclasses, err);
    if (st != PT_OK) return st;
    int64_t sizes[PT__ML_MAX_LAYERS + 1];
    int L = o->nhidden + 1;
    sizes[0] = d->nfeatures;
    for (int l = 0; l < o->nhidden; l++) sizes[l + 1] = o->hidden[l];
    sizes[L] = nclasses;
    mlp_net N;
    net_init(&N, L, sizes, o->activation);

    pt_model *m = NULL;
    st = pt__model_alloc(PT_MODEL_MLP, N.nparams, &m, err);
    if (st != PT_OK) return st;
    m->nfeatures = d->nfeatures;
    m->nclasses = nclasses;
    m->rows = nclasses;
    m->activation = o->activation;
    m->nlayers = L;
    for (int l = 0; l <= L; l++) m->sizes[l] = sizes[l];
    double *P = m->params;

    int64_t nf = d->nfeatures, B = o->batch_size > 0 ? o->batch_size : 256;
    int64_t *loc = NULL, *perm = NULL, *rows = NULL, Ng = 0;
    double *mu = NULL, *isd = NULL, *buf = NULL;
    pt__sgd sgd;
    memset(&sgd, 0, sizeof sgd);
    mlp_engine E;
    memset(&E, 0, sizeof E);
    pt_mem *mem = pt_ctx_mem(o->ctx);
    int64_t charged = 0;

    st = build_loc(comm, d, &loc, &Ng, err);
    if (st != PT_OK) goto done;
    if (Ng == 0) {
        st = pt_error_set(err, PT_EEMPTY, "train: mlp: the dataset has no rows");
        goto done;
    }
    if (B > Ng) B = Ng;
    charged = (2 * Ng + B + 2 * nf + 2 * N.nparams) * (int64_t)sizeof(double);
    st = pt_mem_reserve(mem, charged, "mlp training", err);
    if (st != PT_OK) {
        charged = 0;
        goto done;
    }
    perm = pt_malloc((size_t)Ng * sizeof(int64_t));
    rows = pt_malloc((size_t)B * sizeof(int64_t));
    buf = pt_malloc((size_t)(1 + N.nparams) * sizeof(double));
    if (!perm || !rows || !buf) {
        st = pt_error_set(err, PT_ENOMEM, "mlp: out of memory for %lld rows", (long long)Ng);
        goto done;
    }
    st = engine_init(&E, &N, d, o->ctx, err);
    if (st == PT_OK) st = engine_scratch(&E, B, err);
    if (st != PT_OK) goto done;
    if (o->standardization) {
        mu = pt_malloc((size_t)nf * sizeof(double));
        isd = pt_malloc((size_t)nf * sizeof(double));
        if (!mu || !isd) {
            st = pt_error_set(err, PT_ENOMEM, "mlp: out of memory for feature statistics");
            goto done;
        }
        st = feature_stats(comm, E.pool, E.nslots, d, Ng, mu, isd, err);
        if (st != PT_OK) goto done;
        E.in.mu = d->sparse ? NULL : mu; /* keep CSR rows sparse: scale only */
        E.in.isd = isd;
    }
    st = pt__sgd_init(&sgd, solver, o, N.nparams, err);
    if (st != PT_OK) goto done;
    uint64_t tag = mlp_tag(o, &N, solver, comm_size(comm));
    mlp_ckpt_hdr h = {0, 0, 0, INFINITY, 0};
    if (o->resume) {
        st = load_ckpt(o, tag, &N, P, &sgd, &h, err);
        if (st != PT_OK) goto done;
    }
    if (h.found <= 0) {
        st = init_params(comm, &N, o->seed, P, err);
        if (st != PT_OK) goto done;
        h.best = INFINITY;
        h.noimp = 0;
    }
    int64_t epoch0 = (int64_t)h.epoch, step = (int64_t)h.step;
    double best = h.best;
    int noimp = (int)h.noimp;
    double t0 = pt_now_s();
    double last_loss = NAN;
    m->iterations = epoch0;
    double *grad = buf + 1;
    int64_t nb = (Ng + B - 1) / B;
    for (int64_t ep = epoch0; ep < o->max_iter; ep++) {
        epoch_perm(o->seed, ep, perm, Ng);
        double ce = 0, gnorm = 0;
        for (int64_t b = 0; b < nb; b++) {
            int64_t j0 = b * B, j1 = j0 + B < Ng ? j0 + B : Ng, nl = 0;
            for (int64_t j = j0; j < j1; j++) {
                int64_t r = loc[perm[j]];
                if (r >= 0) rows[nl++] = r;
            }
            memset(buf, 0, (size_t)(1 + N.nparams) * sizeof(double));
            st = engine_grad(&E, P, rows, nl, buf, err);
            if (st == PT_OK) st = pt__ml_allreduce_sum(comm, buf, 1 + N.nparams, err);
            if (st != PT_OK) goto done;
            double inv = 1.0 / (double)(j1 - j0);
            ce += buf[0];
            for (int64_t i = 0; i < N.nparams; i++) grad[i] *= inv;
            add_l2(&N, P, o->reg_param, grad);
            if (b == nb - 1) {
                double s = 0;
                for (int64_t i = 0; i < N.nparams; i++) s += grad[i] * grad[i];
                gnorm = sqrt(s);
            }
            pt__sgd_step(&sgd, P, grad);
            step++;
        }
        double loss = ce / (double)Ng + l2_term(&N, P, o->reg_param);
        last_loss = loss;
        m->iterations = ep + 1;
        if (loss > best - o->tol)
            noimp++;
        else
            noimp = 0;
        if (loss < best) best = loss;
        bool stop = !isfinite(loss) || noimp >= MLP_NO_CHANGE;
        if (!stop && o->checkpoint_dir && o->checkpoint_every > 0 &&
            (ep + 1) % o->checkpoint_every == 0) {
            st = save_ckpt(o, tag, &N, P, &sgd, ep + 1, step, best, noimp, err);
            if (st != PT_OK) goto done;
        }
        if (o->progress && comm_rank(comm) == 0) {
            pt_train_progress p = {ep + 1, loss, gnorm, pt_now_s() - t0};
            o->progress(&p, o->progress_arg);
        }
        if (stop) break;
    }
    if (isnan(last_loss)) {
        /* No epoch ran: report the objective at the starting point. */
        memset(buf, 0, (size_t)(1 + N.nparams) * sizeof(double));
        st = engine_grad(&E, P, NULL, d->nrows, buf, err);
        if (st == PT_OK) st = pt__ml_allreduce_sum(comm, buf, 1, err);
        if (st != PT_OK) goto done;
        last_loss = buf[0] / (double)Ng + l2_term(&N, P, o->reg_param);
    }
    m->loss = last_loss;
    if (isd) {
        /* Fold the scaling into the first layer: W0 (x - mu) * isd + b0. */
        int64_t s1 = N.s[1];
        double *W0 = P + N.woff[0], *b0 = P + N.boff[0];
        const double *mm = E.in.mu;
        for (int64_t o2 = 0; o2 < s1; o2++) {
            double shift = 0;
            for (int64_t f = 0; f < nf; f++) {
                double w = W0[o2 * nf + f] * isd[f];
                W0[o2 * nf + f] = w;
                if (mm) shift += w * mm[f];
            }
            b0[o2] -= shift;
        }
    }
done:
    if (charged) pt_mem_release(mem, charged);
    engine_free(&E);
    pt__sgd_free(&sgd);
    pt_free(loc);
    pt_free(perm);
    pt_free(rows);
    pt_free(buf);
    pt_free(mu);
    pt_free(isd);
    if (st != PT_OK) {
        pt_model_free(m);
        return st;
    }
    *out = m;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Prediction                                                               */
/* ------------------------------------------------------------------------ */

typedef struct mlp_pred_job {
    const mlp_net *N;
    const double *P;
    const mlp_in *in;
    int64_t n;
    double *ws;
    int64_t ws_slot;
    pt_predictions *out;
} mlp_pred_job;

static pt_status pred_chunk(void *arg, int64_t chunk, int slot, double *unused, pt_error *err) {
    (void)unused;
    (void)err;
    const mlp_pred_job *J = arg;
    const mlp_net *N = J->N;
    int64_t r0 = chunk * MLP_PCHUNK, nc = J->n - r0 < MLP_PCHUNK ? J->n - r0 : MLP_PCHUNK;
    double *X = J->ws + (int64_t)slot * J->ws_slot;
    double *A = X + MLP_PCHUNK * N->s[0];
    if (!J->in->sparse_path) gather(N, J->in, NULL, r0, nc, X);
    forward(N, J->P, J->in, NULL, r0, nc, X, A);
    int64_t C = N->s[N->L];
    const double *z = A + nc * N->aoff[N->L];
    for (int64_t i = 0; i < nc; i++) {
        int64_t r = r0 + i;
        memcpy(J->out->raw + r * C, z + i * C, (size_t)C * sizeof(double));
        softmax_row(z + i * C, C, J->out->prob + r * C);
        int64_t best = 0;
        for (int64_t j = 1; j < C; j++)
            if (z[i * C + j] > z[i * C + best]) best = j;
        J->out->label[r] = (double)best;
    }
    return PT_OK;
}

pt_status pt__mlp_predict(const pt_model *m, pt_ctx *ctx, const pt_dataset *d,
                          pt_predictions *out, pt_error *err) {
    mlp_net N;
    net_from_model(m, &N);
    int64_t n = d->nrows, C = N.s[N.L];
    mlp_in in = {.d = d, .sparse_path = d->sparse && N.s[0] > MLP_DENSIFY_MAX};
    double *W0T = NULL, *ws = NULL;
    pt_pool *pool = ctx ? pt_ctx_pool(ctx) : NULL;
    int nslots = ctx ? 2 * pt_ctx_threads(ctx) : 1;
    int64_t ws_slot = MLP_PCHUNK * (N.s[0] + N.asum);
    out->n = n;
    out->ncols = (int)C;
    out->label = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    out->prob = pt_malloc((size_t)(n > 0 ? n * C : 1) * sizeof(double));
    out->raw = pt_malloc((size_t)(n > 0 ? n * C : 1) * sizeof(double));
    ws = pt_malloc((size_t)(nslots * ws_slot) * sizeof(double));
    if (in.sparse_path) W0T = pt_malloc((size_t)(N.s[0] * N.s[1]) * sizeof(double));
    pt_status st = PT_OK;
    if (!out->label || !out->prob || !out->raw || !ws || (in.sparse_path && !W0T)) {
        st = pt_error_set(err, PT_ENOMEM, "predict: out of memory for %lld rows", (long long)n);
    } else {
        if (W0T) {
            transpose(m->params + N.woff[0], N.s[1], N.s[0], W0T);
            in.W0T = W0T;
        }
        mlp_pred_job J = {&N, m->params, &in, n, ws, ws_slot, out};
        st = pt__ml_chunk_sum(pool, (n + MLP_PCHUNK - 1) / MLP_PCHUNK, 0, nslots, pred_chunk, &J,
                              NULL, NULL, err);
    }
    pt_free(ws);
    pt_free(W0T);
    if (st != PT_OK) pt_predictions_free(out);
    return st;
}
