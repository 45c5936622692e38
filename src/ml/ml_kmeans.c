/*
 * ml_kmeans.c - k-means: k-means|| (MLlib's default) or k-means++
 * initialisation, then Lloyd iterations, data-parallel over ranks and
 * threads. Rows are cut into fixed chunks whose partial sums are added in
 * chunk order, and one allreduce of [sums, counts, cost] per iteration
 * combines the ranks, so the model depends on the seed and the rank count
 * only. Random draws are counter-based on (seed, stream, global row id), so
 * the rows picked by the initialisation do not depend on how rows are
 * spread over ranks either. Also home of the chunked sum shared with the
 * MLP (ml_nn.h).
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/ml_internal.h"
#include "ml/ml_nn.h"

/* Rows per chunk: fixes the summation order of every pass. */
#define KM_CHUNK 1024
/* Most rows per distance block inside a chunk (one dgemm each). */
#define KM_SUB 256
/* CSR rows with at most this many features are expanded to dense blocks
 * for the distance products (dgemm beats the scalar sparse loop unless
 * rows are very sparse). */
#define KM_DENSIFY_MAX 8192
/* Weighted Lloyd iterations on the k-means|| candidates, as MLlib's
 * LocalKMeans. */
#define KM_LOCAL_ITERS 30

/* ------------------------------------------------------------------------ */
/* Shared helpers (ml_nn.h)                                                 */
/* ------------------------------------------------------------------------ */

typedef struct chunk_wave {
    pt__chunk_fn fn;
    void *arg;
    double *buf;
    int64_t m, base;
} chunk_wave;

static pt_status wave_task(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    (void)tc;
    chunk_wave *w = arg;
    return w->fn(w->arg, w->base + i, (int)i, w->m ? w->buf + i * w->m : NULL, err);
}

pt_status pt__ml_chunk_sum(pt_pool *pool, int64_t nchunks, int64_t m, int nslots,
                           pt__chunk_fn fn, void *arg, double *acc, double *scratch,
                           pt_error *err) {
    if (nchunks <= 0) return PT_OK;
    if (nslots < 1) nslots = 1;
    int64_t w = nslots < nchunks ? nslots : nchunks;
    double *buf = scratch;
    if (m > 0 && !buf) {
        buf = pt_malloc((size_t)(w * m) * sizeof(double));
        if (!buf)
            return pt_error_set(err, PT_ENOMEM, "ml: out of memory for %lld partial sums",
                                (long long)(w * m));
    }
    chunk_wave wv = {fn, arg, buf, m, 0};
    pt_status st = PT_OK;
    for (int64_t base = 0; base < nchunks && st == PT_OK; base += w) {
        int64_t cnt = nchunks - base < w ? nchunks - base : w;
        if (buf) memset(buf, 0, (size_t)(cnt * m) * sizeof(double));
        wv.base = base;
        if (!pool || cnt == 1) {
            for (int64_t i = 0; i < cnt && st == PT_OK; i++) st = wave_task(NULL, &wv, i, err);
        } else {
            st = pt_parallel_for(pool, cnt, wave_task, &wv, NULL, err);
        }
        /* Chunk order, whatever order the chunks ran in. */
        for (int64_t i = 0; i < cnt && st == PT_OK && m > 0; i++) {
            const double *b = buf + i * m;
            for (int64_t j = 0; j < m; j++) acc[j] += b[j];
        }
    }
    if (buf != scratch) pt_free(buf);
    return st;
}

pt_status pt__ml_global_ids(pt_comm *comm, const pt_dataset *d, int64_t **gid,
                            int64_t *nglobal, pt_error *err) {
    *gid = NULL;
    int size = comm ? pt_comm_size(comm) : 1;
    int rank = comm ? pt_comm_rank(comm) : 0;
    int64_t off = 0, total = d->nrows;
    if (size > 1) {
        int64_t *all = pt_malloc((size_t)size * sizeof(int64_t));
        if (!all) return pt_error_set(err, PT_ENOMEM, "ml: out of memory");
        pt_status st = pt_comm_allgather(comm, &d->nrows, sizeof(int64_t), all, err);
        if (st != PT_OK) {
            pt_free(all);
            return st;
        }
        total = 0;
        for (int r = 0; r < size; r++) {
            if (r < rank) off += all[r];
            total += all[r];
        }
        pt_free(all);
    }
    int64_t *g = pt_malloc((size_t)(d->nrows > 0 ? d->nrows : 1) * sizeof(int64_t));
    if (!g) return pt_error_set(err, PT_ENOMEM, "ml: out of memory for row ids");
    for (int64_t i = 0; i < d->nrows; i++) g[i] = d->row_id ? d->row_id[i] : off + i;
    *gid = g;
    *nglobal = total;
    return PT_OK;
}

double pt__ml_row_uniform(uint64_t seed, uint64_t stream, int64_t gid) {
    uint64_t h = pt_splitmix64(seed ^ pt_splitmix64(stream * 0x9e3779b97f4a7c15ULL + 0x1234567ULL));
    h = pt_splitmix64(h ^ (uint64_t)gid);
    return ((double)(h >> 11) + 0.5) * 0x1p-53;
}

/* ------------------------------------------------------------------------ */
/* Distance passes                                                          */
/* ------------------------------------------------------------------------ */

typedef struct km_data {
    const pt_dataset *d;
    int64_t n, nf; /* local rows; columns stored per row */
    int64_t ldc;   /* row stride of centre matrices (the model's features) */
    double *xnorm; /* ||x||^2 per local row */
    pt_pool *pool;
    int nslots;
} km_data;

/* Squared distances of rows r0..r0+nr-1 to m centres, as
 * ||x||^2 - 2 x.c + ||c||^2 (one dgemm for dense rows, or CSR rows expanded
 * into Xb when given), clamped at 0 against cancellation. */
static void sqdist(const km_data *K, int64_t r0, int64_t nr, const double *C,
                   const double *cn, int64_t m, double *Xb, double *D) {
    const pt_dataset *d = K->d;
    if (!d->sparse || Xb) {
        const double *X = d->x + r0 * K->nf;
        if (d->sparse) {
            memset(Xb, 0, (size_t)(nr * K->nf) * sizeof(double));
            for (int64_t i = 0; i < nr; i++)
                for (int64_t p = d->indptr[r0 + i]; p < d->indptr[r0 + i + 1]; p++)
                    Xb[i * K->nf + d->indices[p]] = d->values[p];
            X = Xb;
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)m, (int)K->nf, -2.0,
                    X, (int)K->nf, C, (int)K->ldc, 0.0, D, (int)m);
    } else {
        for (int64_t i = 0; i < nr; i++) {
            int64_t a = d->indptr[r0 + i], b = d->indptr[r0 + i + 1];
            for (int64_t j = 0; j < m; j++) {
                const double *c = C + j * K->ldc;
                double s = 0;
                for (int64_t p = a; p < b; p++) s += d->values[p] * c[d->indices[p]];
                D[i * m + j] = -2.0 * s;
            }
        }
    }
    for (int64_t i = 0; i < nr; i++) {
        double xn = K->xnorm[r0 + i];
        for (int64_t j = 0; j < m; j++) {
            double v = D[i * m + j] + xn + cn[j];
            D[i * m + j] = v > 0 ? v : 0;
        }
    }
}

/* One pass over the rows against m centres. Output per chunk, in this
 * order: sums (m * nf, when want_sums), counts (m, when want_counts), cost
 * (1, when want_cost). Per-row side outputs: dmin (min with the previous
 * value), label and raw distances (sqrt). */
typedef struct km_pass {
    const km_data *K;
    const double *C, *cn;
    int64_t m;
    bool want_sums, want_counts, want_cost;
    double *dmin;
    double *label;
    double *raw;
    int64_t sub; /* rows per distance block */
    double *ws;  /* nslots * sub * m */
    double *xb;  /* nslots * sub * nf dense blocks of CSR rows, or NULL */
} km_pass;

static int64_t pass_width(const km_pass *P) {
    return (P->want_sums ? P->m * P->K->ldc : 0) + (P->want_counts ? P->m : 0) +
           (P->want_cost ? 1 : 0);
}

static pt_status pass_chunk(void *arg, int64_t chunk, int slot, double *out, pt_error *err) {
    (void)err;
    const km_pass *P = arg;
    const km_data *K = P->K;
    const pt_dataset *d = K->d;
    int64_t m = P->m, ldc = K->ldc;
    double *D = P->ws + (int64_t)slot * P->sub * m;
    double *Xb = P->xb ? P->xb + (int64_t)slot * P->sub * K->nf : NULL;
    double *sums = P->want_sums ? out : NULL;
    double *counts = P->want_counts ? out + (P->want_sums ? m * ldc : 0) : NULL;
    double *cost = P->want_cost ? out + pass_width(P) - 1 : NULL;
    int64_t r_end = (chunk + 1) * KM_CHUNK < K->n ? (chunk + 1) * KM_CHUNK : K->n;
    for (int64_t r0 = chunk * KM_CHUNK; r0 < r_end; r0 += P->sub) {
        int64_t nr = r_end - r0 < P->sub ? r_end - r0 : P->sub;
        sqdist(K, r0, nr, P->C, P->cn, m, Xb, D);
        for (int64_t i = 0; i < nr; i++) {
            const double *Di = D + i * m;
            int64_t best = 0;
            for (int64_t j = 1; j < m; j++)
                if (Di[j] < Di[best]) best = j;
            int64_t row = r0 + i;
            double dm = Di[best];
            if (sums) {
                double *s = sums + best * ldc;
                if (!d->sparse) {
                    const double *x = d->x + row * K->nf;
                    for (int64_t f = 0; f < K->nf; f++) s[f] += x[f];
                } else {
                    for (int64_t p = d->indptr[row]; p < d->indptr[row + 1]; p++)
                        s[d->indices[p]] += d->values[p];
                }
            }
            if (counts) counts[best] += 1.0;
            if (cost) *cost += dm;
            if (P->dmin && dm < P->dmin[row]) P->dmin[row] = dm;
            if (P->label) P->label[row] = (double)best;
            if (P->raw)
                for (int64_t j = 0; j < m; j++) P->raw[row * m + j] = sqrt(Di[j]);
        }
    }
    return PT_OK;
}

/* Runs a pass; acc (pass_width doubles) receives the chunk sums. */
static pt_status run_pass(km_pass *P, double *acc, pt_error *err) {
    const km_data *K = P->K;
    if (K->n == 0 || P->m == 0) return PT_OK;
    /* Blocks of at most ~1e6 multiply-adds stay on OpenBLAS's small-matrix
     * path, which skips packing the rows: with few centres, packing would
     * cost more than the products. */
    P->sub = 1000000 / (P->m * K->nf + 1);
    if (P->sub < 16) P->sub = 16;
    if (P->sub > KM_SUB) P->sub = KM_SUB;
    P->ws = pt_malloc((size_t)((int64_t)K->nslots * P->sub * P->m) * sizeof(double));
    if (!P->ws) return pt_error_set(err, PT_ENOMEM, "kmeans: out of memory for distances");
    P->xb = NULL;
    if (K->d->sparse && K->nf <= KM_DENSIFY_MAX) {
        P->xb = pt_malloc((size_t)((int64_t)K->nslots * P->sub * K->nf) * sizeof(double));
        if (!P->xb) {
            pt_free(P->ws);
            P->ws = NULL;
            return pt_error_set(err, PT_ENOMEM, "kmeans: out of memory for row blocks");
        }
    }
    int64_t nchunks = (K->n + KM_CHUNK - 1) / KM_CHUNK;
    pt_status st = pt__ml_chunk_sum(K->pool, nchunks, pass_width(P), K->nslots, pass_chunk, P,
                                    acc, NULL, err);
    pt_free(P->ws);
    pt_free(P->xb);
    P->ws = P->xb = NULL;
    return st;
}

static void center_norms(const double *C, int64_t m, int64_t ldc, double *cn) {
    for (int64_t j = 0; j < m; j++) {
        double s = 0;
        for (int64_t f = 0; f < ldc; f++) s += C[j * ldc + f] * C[j * ldc + f];
        cn[j] = s;
    }
}

static pt_status norm_chunk(void *arg, int64_t chunk, int slot, double *out, pt_error *err) {
    (void)slot;
    (void)out;
    (void)err;
    km_data *K = arg;
    const pt_dataset *d = K->d;
    int64_t r1 = (chunk + 1) * KM_CHUNK < K->n ? (chunk + 1) * KM_CHUNK : K->n;
    for (int64_t i = chunk * KM_CHUNK; i < r1; i++) {
        double s = 0;
        if (!d->sparse) {
            const double *x = d->x + i * K->nf;
            for (int64_t f = 0; f < K->nf; f++) s += x[f] * x[f];
        } else {
            for (int64_t p = d->indptr[i]; p < d->indptr[i + 1]; p++)
                s += d->values[p] * d->values[p];
        }
        K->xnorm[i] = s;
    }
    return PT_OK;
}

static pt_status km_data_init(km_data *K, const pt_dataset *d, int64_t ldc, pt_ctx *ctx,
                              pt_error *err) {
    memset(K, 0, sizeof *K);
    K->d = d;
    K->n = d->nrows;
    K->nf = d->nfeatures;
    K->ldc = ldc;
    K->pool = ctx ? pt_ctx_pool(ctx) : NULL;
    K->nslots = ctx ? 2 * pt_ctx_threads(ctx) : 1;
    K->xnorm = pt_malloc((size_t)(K->n > 0 ? K->n : 1) * sizeof(double));
    if (!K->xnorm) return pt_error_set(err, PT_ENOMEM, "kmeans: out of memory for row norms");
    return pt__ml_chunk_sum(K->pool, (K->n + KM_CHUNK - 1) / KM_CHUNK, 0, K->nslots, norm_chunk,
                            K, NULL, NULL, err);
}

static void km_data_free(km_data *K) {
    pt_free(K->xnorm);
    K->xnorm = NULL;
}

/* Lowers dmin to the distances to m new centres. */
static pt_status update_dmin(const km_data *K, const double *C, int64_t m, double *dmin,
                             pt_error *err) {
    double *cn = pt_malloc((size_t)(m > 0 ? m : 1) * sizeof(double));
    if (!cn) return pt_error_set(err, PT_ENOMEM, "kmeans: out of memory");
    center_norms(C, m, K->ldc, cn);
    km_pass P = {.K = K, .C = C, .cn = cn, .m = m, .dmin = dmin};
    pt_status st = run_pass(&P, NULL, err);
    pt_free(cn);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Collectives with comm == NULL meaning one process                        */
/* ------------------------------------------------------------------------ */

static int comm_size(pt_comm *c) { return c ? pt_comm_size(c) : 1; }
static int comm_rank(pt_comm *c) { return c ? pt_comm_rank(c) : 0; }

static pt_status allreduce_min_f64(pt_comm *c, double *v, pt_error *err) {
    if (comm_size(c) <= 1) return PT_OK;
    return pt_comm_allreduce(c, v, 1, PT_DTYPE_FLOAT64, PT_REDOP_MIN, err);
}
static pt_status allreduce_min_i64(pt_comm *c, int64_t *v, pt_error *err) {
    if (comm_size(c) <= 1) return PT_OK;
    return pt_comm_allreduce(c, v, 1, PT_DTYPE_INT64, PT_REDOP_MIN, err);
}

/* The row with the smallest key over all ranks (ties: smallest global id)
 * into row (ldc doubles) on every rank; *found is false when every key is
 * infinite. The owner alone contributes a non-zero vector to a sum, which
 * is therefore exact. */
static pt_status pick_min_key(const km_data *K, pt_comm *comm, const double *key,
                              const int64_t *gid, double *row, int64_t *picked, bool *found,
                              pt_error *err) {
    const pt_dataset *d = K->d;
    int64_t best = -1;
    for (int64_t i = 0; i < K->n; i++) {
        if (!(key[i] < INFINITY)) continue;
        if (best < 0 || key[i] < key[best] || (key[i] == key[best] && gid[i] < gid[best]))
            best = i;
    }
    double kmin = best >= 0 ? key[best] : INFINITY;
    pt_status st = allreduce_min_f64(comm, &kmin, err);
    if (st != PT_OK) return st;
    *found = kmin < INFINITY;
    if (!*found) return PT_OK;
    int64_t g = (best >= 0 && key[best] == kmin) ? gid[best] : INT64_MAX;
    st = allreduce_min_i64(comm, &g, err);
    if (st != PT_OK) return st;
    memset(row, 0, (size_t)K->ldc * sizeof(double));
    if (best >= 0 && key[best] == kmin && gid[best] == g) {
        if (!d->sparse) {
            memcpy(row, d->x + best * K->nf, (size_t)K->nf * sizeof(double));
        } else {
            for (int64_t p = d->indptr[best]; p < d->indptr[best + 1]; p++)
                row[d->indices[p]] = d->values[p];
        }
    }
    *picked = g;
    return pt__ml_allreduce_sum(comm, row, K->ldc, err);
}

/* ------------------------------------------------------------------------ */
/* Initialisation                                                           */
/* ------------------------------------------------------------------------ */

/* Streams of per-row draws. */
#define KM_STREAM_FIRST 1
#define KM_STREAM_PP 16
#define KM_STREAM_PAR (1u << 20)

/* k-means++ over the distributed rows: D^2 sampling as an exponential race
 * (key = -log(u) / d^2, smallest wins), which picks row i with probability
 * d_i^2 / sum d^2 and needs only a global minimum. */
static pt_status init_plus_plus(const km_data *K, pt_comm *comm, uint64_t seed, int k,
                                const int64_t *gid, double *C, pt_error *err) {
    int64_t n = K->n;
    double *key = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    double *dmin = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    pt_status st = PT_OK;
    if (!key || !dmin) {
        st = pt_error_set(err, PT_ENOMEM, "kmeans: out of memory for k-means++");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) dmin[i] = INFINITY;
    for (int j = 0; j < k && st == PT_OK; j++) {
        bool found = false;
        int64_t picked;
        if (j > 0) {
            for (int64_t i = 0; i < n; i++) {
                double u = pt__ml_row_uniform(seed, KM_STREAM_PP + (uint64_t)j, gid[i]);
                key[i] = dmin[i] > 0 ? -log(u) / dmin[i] : INFINITY;
            }
            st = pick_min_key(K, comm, key, gid, C + j * K->ldc, &picked, &found, err);
        }
        if (st == PT_OK && !found) {
            /* First centre, or every row sits on a centre already: uniform. */
            for (int64_t i = 0; i < n; i++)
                key[i] = pt__ml_row_uniform(seed, KM_STREAM_FIRST + (uint64_t)j * 7919u, gid[i]);
            st = pick_min_key(K, comm, key, gid, C + j * K->ldc, &picked, &found, err);
        }
        if (st == PT_OK && j + 1 < k) st = update_dmin(K, C + j * K->ldc, 1, dmin, err);
    }
done:
    pt_free(key);
    pt_free(dmin);
    return st;
}

static double sqdist_dense(const double *a, const double *b, int64_t nf) {
    double s = 0;
    for (int64_t f = 0; f < nf; f++) {
        double t = a[f] - b[f];
        s += t * t;
    }
    return s;
}

/* Index drawn with probability w[i] / sum(w) (uniform when the sum is 0). */
static int64_t pick_weighted(pt_rng *rng, const double *w, int64_t m) {
    double tot = 0;
    for (int64_t i = 0; i < m; i++) tot += w[i];
    if (!(tot > 0)) return (int64_t)pt_rng_below(rng, (uint64_t)m);
    double r = pt_rng_uniform(rng) * tot, c = 0;
    for (int64_t i = 0; i < m; i++) {
        c += w[i];
        if (r < c && w[i] > 0) return i;
    }
    for (int64_t i = m - 1; i >= 0; i--)
        if (w[i] > 0) return i;
    return 0;
}

/* Weighted k-means++ then weighted Lloyd on the candidates, identical on
 * every rank (same inputs, same sequential generator). */
static pt_status local_kmeans(const double *cand, const double *w, int64_t m, int64_t nf,
                              int k, uint64_t seed, double *C, pt_error *err) {
    double *dist = pt_malloc((size_t)m * sizeof(double));
    double *pw = pt_malloc((size_t)m * sizeof(double));
    int64_t *asg = pt_malloc((size_t)m * sizeof(int64_t));
    double *sums = pt_calloc((size_t)k * (size_t)nf + (size_t)k, sizeof(double));
    if (!dist || !pw || !asg || !sums) {
        pt_free(dist);
        pt_free(pw);
        pt_free(asg);
        pt_free(sums);
        return pt_error_set(err, PT_ENOMEM, "kmeans: out of memory for the candidates");
    }
    pt_rng rng;
    pt_rng_seed(&rng, pt_splitmix64(seed ^ 0x6b6d65616e737c7cULL));
    int64_t first = pick_weighted(&rng, w, m);
    memcpy(C, cand + first * nf, (size_t)nf * sizeof(double));
    for (int64_t i = 0; i < m; i++) dist[i] = sqdist_dense(cand + i * nf, C, nf);
    for (int j = 1; j < k; j++) {
        for (int64_t i = 0; i < m; i++) pw[i] = w[i] * dist[i];
        int64_t p = pick_weighted(&rng, pw, m);
        memcpy(C + (int64_t)j * nf, cand + p * nf, (size_t)nf * sizeof(double));
        for (int64_t i = 0; i < m; i++) {
            double dd = sqdist_dense(cand + i * nf, C + (int64_t)j * nf, nf);
            if (dd < dist[i]) dist[i] = dd;
        }
    }
    for (int64_t i = 0; i < m; i++) asg[i] = -1;
    for (int it = 0; it < KM_LOCAL_ITERS; it++) {
        bool changed = false;
        memset(sums, 0, ((size_t)k * (size_t)nf + (size_t)k) * sizeof(double));
        double *cnt = sums + (int64_t)k * nf;
        for (int64_t i = 0; i < m; i++) {
            int64_t best = 0;
            double bd = INFINITY;
            for (int j = 0; j < k; j++) {
                double dd = sqdist_dense(cand + i * nf, C + (int64_t)j * nf, nf);
                if (dd < bd) {
                    bd = dd;
                    best = j;
                }
            }
            if (asg[i] != best) changed = true;
            asg[i] = best;
            for (int64_t f = 0; f < nf; f++) sums[best * nf + f] += w[i] * cand[i * nf + f];
            cnt[best] += w[i];
        }
        if (!changed) break;
        for (int j = 0; j < k; j++)
            if (cnt[j] > 0)
                for (int64_t f = 0; f < nf; f++)
                    C[(int64_t)j * nf + f] = sums[(int64_t)j * nf + f] / cnt[j];
    }
    pt_free(dist);
    pt_free(pw);
    pt_free(asg);
    pt_free(sums);
    return PT_OK;
}

static int cmp_cand(const void *a, const void *b) {
    int64_t x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    return x < y ? -1 : x > y;
}

/* k-means|| (Bahmani et al., as MLlib): one uniform row, then init_steps
 * rounds that keep each row with probability min(1, 2k d^2 / cost); the
 * candidates of all ranks are gathered and sorted by global row id (so
 * their order does not depend on the rank count), weighted by the rows
 * nearest to them, and reduced to k centres locally. */
static pt_status init_parallel(const km_data *K, pt_comm *comm, const pt_train_opts *o,
                               const int64_t *gid, double *C, pt_error *err) {
    int64_t n = K->n, nf = K->ldc, rec = nf + 1;
    int k = o->k;
    pt_status st = PT_OK;
    double *key = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    double *dmin = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    double *cand = pt_malloc((size_t)nf * sizeof(double)); /* ncand * nf */
    double *w = NULL, *local = NULL;
    int64_t ncand = 1;
    if (!key || !dmin || !cand) {
        st = pt_error_set(err, PT_ENOMEM, "kmeans: out of memory for k-means||");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        dmin[i] = INFINITY;
        key[i] = pt__ml_row_uniform(o->seed, KM_STREAM_FIRST, gid[i]);
    }
    bool found;
    int64_t picked;
    st = pick_min_key(K, comm, key, gid, cand, &picked, &found, err);
    if (st == PT_OK) st = update_dmin(K, cand, 1, dmin, err);
    for (int r = 0; r < o->init_steps && st == PT_OK; r++) {
        double cost = 0;
        for (int64_t i = 0; i < n; i++) cost += dmin[i];
        st = pt__ml_allreduce_sum(comm, &cost, 1, err);
        if (st != PT_OK || !(cost > 0)) break;
        int64_t nloc = 0;
        for (int64_t i = 0; i < n; i++)
            if (pt__ml_row_uniform(o->seed, KM_STREAM_PAR + (uint64_t)r, gid[i]) <
                2.0 * k * dmin[i] / cost)
                nloc++;
        local = pt_malloc((size_t)(nloc > 0 ? nloc * rec : 1) * sizeof(double));
        if (!local) {
            st = pt_error_set(err, PT_ENOMEM, "kmeans: out of memory for candidates");
            break;
        }
        int64_t q = 0;
        for (int64_t i = 0; i < n; i++) {
            if (!(pt__ml_row_uniform(o->seed, KM_STREAM_PAR + (uint64_t)r, gid[i]) <
                  2.0 * k * dmin[i] / cost))
                continue;
            double *p = local + q++ * rec;
            memcpy(p, &gid[i], sizeof(int64_t));
            memset(p + 1, 0, (size_t)nf * sizeof(double));
            if (!K->d->sparse) {
                memcpy(p + 1, K->d->x + i * K->nf, (size_t)K->nf * sizeof(double));
            } else {
                for (int64_t t = K->d->indptr[i]; t < K->d->indptr[i + 1]; t++)
                    p[1 + K->d->indices[t]] = K->d->values[t];
            }
        }
        double *all = local;
        int64_t nall = nloc;
        if (comm_size(comm) > 1) {
            int size = comm_size(comm);
            int64_t *counts = pt_malloc((size_t)size * sizeof(int64_t));
            void *recv = NULL;
            if (!counts) {
                st = pt_error_set(err, PT_ENOMEM, "kmeans: out of memory");
                break;
            }
            st = pt_comm_allgatherv(comm, local, nloc * rec * (int64_t)sizeof(double), &recv,
                                    counts, err);
            nall = 0;
            for (int i = 0; st == PT_OK && i < size; i++)
                nall += counts[i] / (rec * (int64_t)sizeof(double));
            pt_free(counts);
            if (st != PT_OK) break;
            pt_free(local);
            local = all = recv;
        }
        qsort(all, (size_t)nall, (size_t)rec * sizeof(double), cmp_cand);
        if (nall > 0) {
            double *nc = pt_realloc(cand, (size_t)((ncand + nall) * nf) * sizeof(double));
            if (!nc) {
                st = pt_error_set(err, PT_ENOMEM, "kmeans: out of memory for candidates");
                break;
            }
            cand = nc;
            for (int64_t i = 0; i < nall; i++)
                memcpy(cand + (ncand + i) * nf, all + i * rec + 1, (size_t)nf * sizeof(double));
            st = update_dmin(K, cand + ncand * nf, nall, dmin, err);
            ncand += nall;
        }
        pt_free(local);
        local = NULL;
    }
    if (st != PT_OK) goto done;
    /* Weight of a candidate: the rows nearest to it. */
    w = pt_calloc((size_t)ncand, sizeof(double));
    double *cn = pt_malloc((size_t)ncand * sizeof(double));
    if (!w || !cn) {
        pt_free(cn);
        st = pt_error_set(err, PT_ENOMEM, "kmeans: out of memory for candidate weights");
        goto done;
    }
    center_norms(cand, ncand, nf, cn);
    km_pass P = {.K = K, .C = cand, .cn = cn, .m = ncand, .want_counts = true};
    st = run_pass(&P, w, err);
    pt_free(cn);
    if (st == PT_OK) st = pt__ml_allreduce_sum(comm, w, ncand, err);
    if (st == PT_OK) st = local_kmeans(cand, w, ncand, nf, k, o->seed, C, err);
done:
    pt_free(key);
    pt_free(dmin);
    pt_free(cand);
    pt_free(w);
    pt_free(local);
    return st;
}

/* The initial centres; k must not exceed the global row count N. */
static pt_status km_init(const km_data *K, const pt_train_opts *o, const int64_t *gid,
                         int64_t N, double *C, pt_error *err) {
    if (N < o->k)
        return pt_error_set(err, PT_EINVAL, "train: k = %d is larger than the %lld rows", o->k,
                            (long long)N);
    if (o->init_plus_plus) return init_plus_plus(K, o->comm, o->seed, o->k, gid, C, err);
    return init_parallel(K, o->comm, o, gid, C, err);
}

pt_status pt__kmeans_init(const pt_train_opts *o, const pt_dataset *d, double *centers,
                          pt_error *err) {
    km_data K;
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    pt_status st = km_data_init(&K, d, d->nfeatures, o->ctx, err);
    int64_t *gid = NULL, N = 0;
    if (st == PT_OK) st = pt__ml_global_ids(o->comm, d, &gid, &N, err);
    if (st == PT_OK) st = km_init(&K, o, gid, N, centers, err);
    openblas_set_num_threads(saved);
    pt_free(gid);
    km_data_free(&K);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Checkpoints                                                              */
/* ------------------------------------------------------------------------ */

static uint64_t km_tag(const pt_train_opts *o, int64_t nf, int nranks) {
    struct {
        int64_t kind, k, nf, plus, steps, nranks;
        uint64_t seed;
    } t = {PT_MODEL_KMEANS, o->k, nf, o->init_plus_plus, o->init_steps, nranks, o->seed};
    return pt_hash_bytes(&t, sizeof t, 0x6b6d65616e73ULL);
}

/* Rank 0 writes; its status is broadcast so that every rank fails alike. */
static pt_status km_ckpt_save(const pt_train_opts *o, uint64_t tag, int64_t iter,
                              const double *C, int64_t np, pt_error *err) {
    pt_status st = PT_OK;
    if (comm_rank(o->comm) == 0) {
        pt__ckpt c = {.tag = tag, .step = iter, .epoch = iter, .nparams = np,
                      .params = (double *)C, .nstate = 0, .state = NULL};
        c.rng[0] = o->seed;
        st = pt__ckpt_save(o->checkpoint_dir, o->checkpoint_keep, &c, err);
    }
    double flag = (double)st;
    pt_status cs = pt__ml_bcast(o->comm, &flag, 1, err);
    if (cs != PT_OK) return cs;
    if (st == PT_OK && flag != 0)
        return pt_error_set(err, (pt_status)(int)flag,
                            "train: rank 0 failed to write a checkpoint in %s",
                            o->checkpoint_dir);
    return st;
}

/* Rank 0 reads the newest valid checkpoint and broadcasts it. */
static pt_status km_ckpt_resume(const pt_train_opts *o, uint64_t tag, double *C, int64_t np,
                                int64_t *iter, bool *found, pt_error *err) {
    double hdr[2] = {0, 0}; /* found (-1: failed), step */
    pt_status st = PT_OK;
    pt__ckpt c;
    memset(&c, 0, sizeof c);
    if (comm_rank(o->comm) == 0) {
        bool f = false;
        st = pt__ckpt_load_latest(o->checkpoint_dir, tag, &c, &f, err);
        if (st != PT_OK) {
            hdr[0] = -1;
        } else if (f && c.nparams != np) {
            st = pt_error_set(err, PT_ECORRUPT,
                              "train: checkpoint in %s has %lld parameters, expected %lld",
                              o->checkpoint_dir, (long long)c.nparams, (long long)np);
            hdr[0] = -1;
        } else if (f) {
            hdr[0] = 1;
            hdr[1] = (double)c.step;
            memcpy(C, c.params, (size_t)np * sizeof(double));
        }
    }
    pt_status cs = pt__ml_bcast(o->comm, hdr, 2, err);
    if (cs == PT_OK && hdr[0] > 0) cs = pt__ml_bcast(o->comm, C, np, err);
    pt__ckpt_clear(&c);
    if (st != PT_OK) return st;
    if (cs != PT_OK) return cs;
    if (hdr[0] < 0)
        return pt_error_set(err, PT_EIO, "train: rank 0 could not read the checkpoints in %s",
                            o->checkpoint_dir);
    *found = hdr[0] > 0;
    *iter = (int64_t)hdr[1];
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Training, prediction, cost                                               */
/* ------------------------------------------------------------------------ */

static pt_status cost_pass(const km_data *K, pt_comm *comm, const double *C, int64_t k,
                           double *out, pt_error *err) {
    double *cn = pt_malloc((size_t)k * sizeof(double));
    if (!cn) return pt_error_set(err, PT_ENOMEM, "kmeans: out of memory");
    center_norms(C, k, K->ldc, cn);
    km_pass P = {.K = K, .C = C, .cn = cn, .m = k, .want_cost = true};
    double cost = 0;
    pt_status st = run_pass(&P, &cost, err);
    pt_free(cn);
    if (st == PT_OK) st = pt__ml_allreduce_sum(comm, &cost, 1, err);
    *out = cost;
    return st;
}

pt_status pt__kmeans_train(const pt_train_opts *o, const pt_dataset *d, pt_model **out,
                           pt_error *err) {
    *out = NULL;
    pt_comm *comm = o->comm;
    int64_t nf = d->nfeatures, k = o->k, np = k * nf;
    pt_model *m = NULL;
    pt_status st = pt__model_alloc(PT_MODEL_KMEANS, np, &m, err);
    if (st != PT_OK) return st;
    m->nfeatures = nf;
    m->nclasses = o->k;
    m->rows = k;
    double *C = m->params;
    km_data K;
    int64_t *gid = NULL, N = 0;
    st = km_data_init(&K, d, nf, o->ctx, err);
    if (st == PT_OK) st = pt__ml_global_ids(comm, d, &gid, &N, err);
    int64_t width = np + k + 1;
    double *acc = pt_malloc((size_t)width * sizeof(double));
    double *cn = pt_malloc((size_t)k * sizeof(double));
    pt_mem *mem = pt_ctx_mem(o->ctx);
    int64_t charged = (width + k + K.n) * (int64_t)sizeof(double);
    bool reserved = false;
    if (st != PT_OK) goto done;
    if (!acc || !cn) {
        st = pt_error_set(err, PT_ENOMEM, "kmeans: out of memory for %lld centres",
                          (long long)k);
        goto done;
    }
    st = pt_mem_reserve(mem, charged, "kmeans workspace", err);
    if (st != PT_OK) goto done;
    reserved = true;
    uint64_t tag = km_tag(o, nf, comm_size(comm));
    int64_t it0 = 0;
    bool resumed = false;
    if (o->resume) st = km_ckpt_resume(o, tag, C, np, &it0, &resumed, err);
    if (st == PT_OK && !resumed) st = km_init(&K, o, gid, N, C, err);
    if (st != PT_OK) goto done;
    double t0 = pt_now_s();
    double tol2 = o->tol * o->tol;
    m->iterations = it0;
    for (int64_t it = it0; it < o->max_iter; it++) {
        center_norms(C, k, nf, cn);
        memset(acc, 0, (size_t)width * sizeof(double));
        km_pass P = {.K = &K, .C = C, .cn = cn, .m = k, .want_sums = true,
                     .want_counts = true, .want_cost = true};
        st = run_pass(&P, acc, err);
        if (st == PT_OK) st = pt__ml_allreduce_sum(comm, acc, width, err);
        if (st != PT_OK) goto done;
        const double *cnt = acc + np;
        double maxshift = 0;
        for (int64_t j = 0; j < k; j++) {
            if (!(cnt[j] > 0)) continue; /* an empty cluster keeps its centre */
            double s2 = 0;
            for (int64_t f = 0; f < nf; f++) {
                double c = acc[j * nf + f] / cnt[j];
                double t = c - C[j * nf + f];
                s2 += t * t;
                C[j * nf + f] = c;
            }
            if (s2 > maxshift) maxshift = s2;
        }
        m->iterations = it + 1;
        bool converged = maxshift <= tol2;
        if (o->progress && comm_rank(comm) == 0) {
            pt_train_progress p = {it + 1, acc[width - 1], sqrt(maxshift), pt_now_s() - t0};
            o->progress(&p, o->progress_arg);
        }
        if (converged) break;
        if (o->checkpoint_dir && o->checkpoint_every > 0 && (it + 1) % o->checkpoint_every == 0) {
            st = km_ckpt_save(o, tag, it + 1, C, np, err);
            if (st != PT_OK) goto done;
        }
    }
    st = cost_pass(&K, comm, C, k, &m->loss, err);
done:
    if (reserved) pt_mem_release(mem, charged);
    pt_free(acc);
    pt_free(cn);
    pt_free(gid);
    km_data_free(&K);
    if (st != PT_OK) {
        pt_model_free(m);
        return st;
    }
    *out = m;
    return PT_OK;
}

pt_status pt__kmeans_predict(const pt_model *m, pt_ctx *ctx, const pt_dataset *d,
                             pt_predictions *out, pt_error *err) {
    int64_t k = m->rows, n = d->nrows;
    km_data K;
    pt_status st = km_data_init(&K, d, m->nfeatures, ctx, err);
    if (st != PT_OK) return st;
    out->n = n;
    out->ncols = (int)k;
    out->label = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    out->raw = pt_malloc((size_t)(n > 0 ? n * k : 1) * sizeof(double));
    double *cn = pt_malloc((size_t)k * sizeof(double));
    if (!out->label || !out->raw || !cn) {
        st = pt_error_set(err, PT_ENOMEM, "predict: out of memory for %lld rows",
                          (long long)n);
    } else {
        center_norms(m->params, k, m->nfeatures, cn);
        km_pass P = {.K = &K, .C = m->params, .cn = cn, .m = k, .label = out->label,
                     .raw = out->raw};
        st = run_pass(&P, NULL, err);
    }
    pt_free(cn);
    km_data_free(&K);
    if (st != PT_OK) pt_predictions_free(out);
    return st;
}

pt_status pt_kmeans_cost(pt_comm *comm, pt_ctx *ctx, const pt_model *m, const pt_dataset *d,
                         double *out, pt_error *err) {
    if (!m || !d || !out)
        return pt_error_set(err, PT_EINVAL, "kmeans_cost: model, dataset or out is NULL");
    if (m->kind != PT_MODEL_KMEANS)
        return pt_error_set(err, PT_EINVAL, "kmeans_cost: the model is not a k-means model");
    if (d->nfeatures > m->nfeatures)
        return pt_error_set(err, PT_EINVAL,
                            "kmeans_cost: data has %lld features, the model was trained on %lld",
                            (long long)d->nfeatures, (long long)m->nfeatures);
    km_data K;
    pt_status st = km_data_init(&K, d, m->nfeatures, ctx, err);
    if (st != PT_OK) return st;
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    st = cost_pass(&K, comm, m->params, m->rows, out, err);
    openblas_set_num_threads(saved);
    km_data_free(&K);
    return st;
}
