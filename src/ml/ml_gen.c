/*
 * ml_gen.c - synthetic training sets (logistic classification, linear
 * regression, Gaussian blobs) written as libsvm or CSV. Each row is drawn
 * from a counter-based generator keyed by (seed, row), so row chunks are
 * generated and formatted in parallel and the file is the same for any
 * thread count. Numbers are written with a fixed 4-decimal formatter: the
 * %g family would take most of the time on 1e8 values.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "partita.h"

#define GEN_GOLDEN 0x9e3779b97f4a7c15ULL
#define GEN_TRUTH_SALT 0x5851f42d4c957f2dULL
#define GEN_ROW_SALT 0x14057b7ef767814fULL
/* Text of one round of chunks stays near this many bytes per chunk. */
#define GEN_CHUNK_BYTES (1 << 20)

void pt_gen_ml_opts_init(pt_gen_ml_opts *o, pt_gen_ml_kind kind) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->rows = 1000;
    o->features = 10;
    o->classes = kind == PT_GEN_ML_BLOBS ? 3 : 2;
    o->scale = 3.0;
    o->noise = kind == PT_GEN_ML_BLOBS ? 1.0 : 0.1;
    o->seed = 42;
}

bool pt_gen_ml_kind_parse(const char *name, pt_gen_ml_kind *out) {
    static const char *const names[] = {"classify", "regress", "blobs"};
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *out = (pt_gen_ml_kind)i;
            return true;
        }
    return false;
}

static pt_status check_opts(const pt_gen_ml_opts *o, pt_error *err) {
    if (!o) return pt_error_set(err, PT_EINVAL, "gen: opts is NULL");
    if (o->kind < PT_GEN_ML_CLASSIFY || o->kind > PT_GEN_ML_BLOBS)
        return pt_error_set(err, PT_EINVAL, "gen: unknown data set kind %d", (int)o->kind);
    if (o->rows < 0)
        return pt_error_set(err, PT_EINVAL, "gen: --rows must be >= 0 (got %lld)",
                            (long long)o->rows);
    if (o->features < 1 || o->features > (int64_t)1 << 30)
        return pt_error_set(err, PT_EINVAL, "gen: --features must be in 1..2^30 (got %lld)",
                            (long long)o->features);
    if (o->kind != PT_GEN_ML_REGRESS && (o->classes < (o->kind == PT_GEN_ML_BLOBS ? 1 : 2) ||
                                       o->classes > 100000))
        return pt_error_set(err, PT_EINVAL, "gen: --classes must be in %d..100000 (got %d)",
                            o->kind == PT_GEN_ML_BLOBS ? 1 : 2, o->classes);
    if (!(o->scale > 0 && o->scale <= 1e6))
        return pt_error_set(err, PT_EINVAL, "gen: --scale must be in (0, 1e6] (got %g)",
                            o->scale);
    if (!(o->noise >= 0 && o->noise <= 1e6))
        return pt_error_set(err, PT_EINVAL, "gen: --noise must be in [0, 1e6] (got %g)",
                            o->noise);
    int64_t rows = o->kind == PT_GEN_ML_REGRESS ? 1 : o->classes == 2 && o->kind == PT_GEN_ML_CLASSIFY
                                                        ? 1
                                                        : o->classes;
    if (rows * o->features > (int64_t)1 << 31)
        return pt_error_set(err, PT_EINVAL,
                            "gen: --classes x --features too large (%lld parameters)",
                            (long long)(rows * o->features));
    return PT_OK;
}

static int64_t truth_size(const pt_gen_ml_opts *o) {
    switch (o->kind) {
    case PT_GEN_ML_CLASSIFY: return (o->classes == 2 ? 1 : o->classes) * o->features;
    case PT_GEN_ML_REGRESS: return o->features + 1;
    case PT_GEN_ML_BLOBS: return (int64_t)o->classes * o->features;
    }
    return 0;
}

pt_status pt_gen_ml_truth(const pt_gen_ml_opts *o, double **out, int64_t *n, pt_error *err) {
    *out = NULL;
    if (n) *n = 0;
    PT_RETURN_NOT_OK(check_opts(o, err));
    int64_t size = truth_size(o);
    double *t = pt_malloc((size_t)size * sizeof *t);
    if (!t) return pt_error_set(err, PT_ENOMEM, "gen: out of memory for %lld parameters",
                                (long long)size);
    pt_rng r;
    pt_rng_seed(&r, o->seed ^ GEN_TRUTH_SALT);
    int64_t d = o->features;
    switch (o->kind) {
    case PT_GEN_ML_CLASSIFY: {
        /* Each weight row has norm `scale`: the margin w.x of a standard
         * normal x is then N(0, scale^2) whatever the dimension. */
        for (int64_t c = 0; c < size / d; c++) {
            double *w = t + c * d, ss = 0;
            for (int64_t j = 0; j < d; j++) w[j] = pt_rng_normal(&r), ss += w[j] * w[j];
            double f = ss > 0 ? o->scale / sqrt(ss) : 0;
            for (int64_t j = 0; j < d; j++) w[j] *= f;
        }
        break;
    }
    case PT_GEN_ML_REGRESS:
        for (int64_t j = 0; j < d; j++) t[j] = pt_rng_normal(&r);
        t[d] = 0.5;
        break;
    case PT_GEN_ML_BLOBS:
        for (int64_t i = 0; i < size; i++) t[i] = 20.0 * pt_rng_uniform(&r) - 10.0;
        break;
    }
    *out = t;
    if (n) *n = size;
    return PT_OK;
}

/* The counter-based stream of one row: value k is splitmix64(base + k*golden). */
typedef struct row_stream {
    uint64_t base, k;
    double spare;
    bool has_spare;
} row_stream;

static void stream_init(row_stream *s, uint64_t seed, int64_t r) {
    s->base = pt_hash_u64(seed ^ GEN_ROW_SALT) ^ pt_hash_u64((uint64_t)r * GEN_GOLDEN + 1);
    s->k = 0;
    s->has_spare = false;
}

static uint64_t stream_next(row_stream *s) { return pt_splitmix64(s->base + GEN_GOLDEN * s->k++); }

/* Uniform in [0, 1). */
static double stream_uniform(row_stream *s) { return (double)(stream_next(s) >> 11) * 0x1p-53; }

/* Standard normal by Box-Muller, both values of a pair used. */
static double stream_normal(row_stream *s) {
    if (s->has_spare) {
        s->has_spare = false;
        return s->spare;
    }
    double u1 = ((double)(stream_next(s) >> 11) + 1.0) * 0x1p-53; /* (0, 1] */
    double u2 = stream_uniform(s);
    double rad = sqrt(-2.0 * log(u1));
    s->spare = rad * sin(2.0 * M_PI * u2);
    s->has_spare = true;
    return rad * cos(2.0 * M_PI * u2);
}

/* Rounds to the 4 decimals the file holds: strtod of the text written for
 * llround(x * 1e4) gives back exactly this double. */
static double round4(double x) { return (double)llround(x * 1e4) / 1e4; }

void pt_gen_ml_row(const pt_gen_ml_opts *o, const double *truth, int64_t r, double *x,
                    double *y) {
    row_stream s;
    stream_init(&s, o->seed, r);
    int64_t d = o->features;
    switch (o->kind) {
    case PT_GEN_ML_CLASSIFY: {
        for (int64_t j = 0; j < d; j++) x[j] = round4(stream_normal(&s));
        double u = stream_uniform(&s);
        if (o->classes == 2) {
            double z = 0;
            for (int64_t j = 0; j < d; j++) z += truth[j] * x[j];
            *y = u < 1.0 / (1.0 + exp(-z)) ? 1.0 : 0.0;
        } else {
            /* Sample from the softmax by inverting its CDF in two passes
             * (max-shifted so that exp never overflows). */
            double zmax = -INFINITY, total = 0;
            for (int c = 0; c < o->classes; c++) {
                double z = 0;
                for (int64_t j = 0; j < d; j++) z += truth[c * d + j] * x[j];
                if (z > zmax) zmax = z;
            }
            for (int c = 0; c < o->classes; c++) {
                double z = 0;
                for (int64_t j = 0; j < d; j++) z += truth[c * d + j] * x[j];
                total += exp(z - zmax);
            }
            double target = u * total, acc = 0;
            int pick = o->classes - 1;
            for (int c = 0; c < o->classes; c++) {
                double z = 0;
                for (int64_t j = 0; j < d; j++) z += truth[c * d + j] * x[j];
                acc += exp(z - zmax);
                if (target < acc) {
                    pick = c;
                    break;
                }
            }
            *y = pick;
        }
        break;
    }
    case PT_GEN_ML_REGRESS: {
        double z = truth[d];
        for (int64_t j = 0; j < d; j++) {
            x[j] = round4(stream_normal(&s));
            z += truth[j] * x[j];
        }
        *y = round4(z + o->noise * stream_normal(&s));
        break;
    }
    case PT_GEN_ML_BLOBS: {
        int c = (int)(stream_uniform(&s) * o->classes);
        if (c >= o->classes) c = o->classes - 1;
        for (int64_t j = 0; j < d; j++)
            x[j] = round4(truth[(int64_t)c * d + j] + o->noise * stream_normal(&s));
        *y = c;
        break;
    }
    }
}

/* ------------------------------------------------------------------------ */
/* Formatting                                                               */
/* ------------------------------------------------------------------------ */

static char *put_u64(char *p, uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

/* x (already a multiple of 1e-4) as "-12.3401" with trailing zeros cut. */
static char *put_fixed4(char *p, double x) {
    int64_t v = llround(x * 1e4);
    if (v < 0) {
        *p++ = '-';
        v = -v;
    }
    p = put_u64(p, (uint64_t)v / 10000);
    int fr = (int)((uint64_t)v % 10000);
    if (fr) {
        *p++ = '.';
        char dig[4];
        for (int i = 3; i >= 0; i--) dig[i] = (char)('0' + fr % 10), fr /= 10;
        int n = 4;
        while (dig[n - 1] == '0') n--;
        memcpy(p, dig, (size_t)n);
        p += n;
    }
    return p;
}

static char *put_label(char *p, const pt_gen_ml_opts *o, double y) {
    if (o->kind == PT_GEN_ML_REGRESS) return put_fixed4(p, y);
    if (o->kind == PT_GEN_ML_CLASSIFY && o->classes == 2 && !o->csv) {
        /* The libsvm convention for binary problems. */
        if (y > 0) *p++ = '1';
        else *p++ = '-', *p++ = '1';
        return p;
    }
    return put_u64(p, (uint64_t)y);
}

/* Bytes one row can take: label, then per value a separator, the index and
 * ':' (libsvm), and a number of at most 1 sign + 16 integer digits + '.' +
 * 4 decimals (|x| < 1e12 for every kind). */
static int64_t row_bound(const pt_gen_ml_opts *o) { return 32 + o->features * 48 + 2; }

typedef struct gen_chunk {
    char *buf;
    int64_t len;
} gen_chunk;

typedef struct gen_job {
    const pt_gen_ml_opts *o;
    const double *truth;
    int64_t first_row, chunk_rows;
    gen_chunk *chunks;
    double *scratch; /* per chunk, features values */
} gen_job;

static pt_status chunk_fn(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    (void)tc;
    (void)err;
    gen_job *j = arg;
    const pt_gen_ml_opts *o = j->o;
    int64_t lo = j->first_row + i * j->chunk_rows;
    int64_t hi = lo + j->chunk_rows < o->rows ? lo + j->chunk_rows : o->rows;
    double *x = j->scratch + i * o->features;
    char *p = j->chunks[i].buf;
    for (int64_t r = lo; r < hi; r++) {
        double y;
        pt_gen_ml_row(o, j->truth, r, x, &y);
        p = put_label(p, o, y);
        if (o->csv) {
            for (int64_t c = 0; c < o->features; c++) {
                *p++ = ',';
                p = put_fixed4(p, x[c]);
            }
        } else {
            for (int64_t c = 0; c < o->features; c++) {
                if (x[c] == 0) continue; /* sparse format: zeros are implied */
                *p++ = ' ';
                p = put_u64(p, (uint64_t)c + 1);
                *p++ = ':';
                p = put_fixed4(p, x[c]);
            }
        }
        *p++ = '\n';
    }
    j->chunks[i].len = p - j->chunks[i].buf;
    return PT_OK;
}

pt_status pt_gen_ml_write(pt_ctx *ctx, const pt_gen_ml_opts *o, const char *path,
                           int64_t *bytes_out, pt_error *err) {
    if (bytes_out) *bytes_out = 0;
    if (!ctx || !path) return pt_error_set(err, PT_EINVAL, "gen: ctx and path are required");
    PT_RETURN_NOT_OK(check_opts(o, err));
    double *truth = NULL;
    PT_RETURN_NOT_OK(pt_gen_ml_truth(o, &truth, NULL, err));

    int64_t bound = row_bound(o);
    int64_t chunk_rows = GEN_CHUNK_BYTES / bound;
    if (chunk_rows < 1) chunk_rows = 1;
    if (chunk_rows > 16384) chunk_rows = 16384;
    int64_t nchunks_all = (o->rows + chunk_rows - 1) / chunk_rows;
    int64_t per_round = 2 * (int64_t)pt_ctx_threads(ctx);
    if (per_round > nchunks_all) per_round = nchunks_all > 0 ? nchunks_all : 1;
    int64_t chunk_cap = chunk_rows * bound;
    int64_t charged = per_round * (chunk_cap + o->features * (int64_t)sizeof(double));
    pt_mem *mem = pt_ctx_mem_soft(ctx);
    pt_status s = pt_mem_reserve(mem, charged, "gen: text buffers", err);
    if (s != PT_OK) {
        pt_free(truth);
        return s;
    }

    gen_job j = {.o = o, .truth = truth, .chunk_rows = chunk_rows};
    FILE *f = NULL;
    int64_t written = 0;
    j.chunks = pt_calloc((size_t)per_round, sizeof *j.chunks);
    j.scratch = pt_malloc((size_t)(per_round * o->features) * sizeof(double));
    if (!j.chunks || !j.scratch) {
        s = pt_error_set(err, PT_ENOMEM, "gen: out of memory generating %s", path);
        goto done;
    }
    for (int64_t c = 0; c < per_round; c++) {
        j.chunks[c].buf = pt_malloc((size_t)chunk_cap);
        if (!j.chunks[c].buf) {
            s = pt_error_set(err, PT_ENOMEM, "gen: out of memory generating %s", path);
            goto done;
        }
    }
    f = fopen(path, "wb");
    if (!f) {
        s = pt_error_set(err, errno == ENOENT ? PT_ENOENT : PT_EIO, "%s: cannot create: %s",
                         path, strerror(errno));
        goto done;
    }
    if (o->csv) {
        char small[32];
        if (fputs("label", f) == EOF) goto write_failed;
        written += 5;
        for (int64_t c = 0; c < o->features; c++) {
            int n = snprintf(small, sizeof small, ",x%lld", (long long)c + 1);
            if (fputs(small, f) == EOF) goto write_failed;
            written += n;
        }
        if (fputc('\n', f) == EOF) goto write_failed;
        written++;
    }
    pt_progress *prog = pt_progress_start("gen", 0);
    for (j.first_row = 0; j.first_row < o->rows; j.first_row += per_round * chunk_rows) {
        int64_t left = (o->rows - j.first_row + chunk_rows - 1) / chunk_rows;
        int64_t n = left < per_round ? left : per_round;
        s = pt_parallel_for(pt_ctx_pool(ctx), n, chunk_fn, &j, NULL, err);
        if (s != PT_OK) break;
        for (int64_t c = 0; c < n; c++) {
            if (fwrite(j.chunks[c].buf, 1, (size_t)j.chunks[c].len, f) !=
                (size_t)j.chunks[c].len) {
                pt_progress_finish(prog);
                goto write_failed;
            }
            written += j.chunks[c].len;
            int64_t rows = o->rows - (j.first_row + c * chunk_rows);
            pt_progress_add(prog, rows < chunk_rows ? rows : chunk_rows, j.chunks[c].len);
        }
    }
    pt_progress_finish(prog);
    if (s != PT_OK) goto done;
    if (fclose(f) != 0) {
        f = NULL;
        s = pt_error_set(err, PT_EIO, "%s: write failed: %s", path, strerror(errno));
        goto done;
    }
    f = NULL;
    if (bytes_out) *bytes_out = written;
    goto done;

write_failed:
    s = pt_error_set(err, PT_EIO, "%s: write failed after %lld bytes: %s", path,
                     (long long)written, strerror(errno));
done:
    if (f) fclose(f);
    if (j.chunks)
        for (int64_t c = 0; c < per_round; c++) pt_free(j.chunks[c].buf);
    pt_free(j.chunks);
    pt_free(j.scratch);
    pt_free(truth);
    pt_mem_release(mem, charged);
    return s;
}
