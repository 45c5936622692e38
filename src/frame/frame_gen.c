/*
 * frame_gen.c - synthetic data sets (the classic Dask notebook frame and the
 * db-benchmark G1 group-by data), built in memory or streamed to CSV.
 *
 * Every value is a pure function of (seed, stream, row): stream s of a data
 * set has its own base pt_splitmix64(seed, s) and row i draws
 * pt_splitmix64(base + i). Chunks of rows can therefore be produced by any
 * thread in any order and the result never depends on the thread count, and
 * the CSV writer and the in-memory builders agree value for value.
 *
 * Floats are produced as integers of millionths ("micros") and divided by
 * 1e6: the quotient is the double nearest to the 6-decimal number, which is
 * exactly what strtod gives back for its "%.6f" text, so CSV round trips are
 * exact.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "partita.h"
#include "frame/join.h"

/* Rows per task. A multiple of 8 so that each task owns whole bytes of a
 * validity bitmap and tasks never write the same byte. */
#define GEN_CHUNK_ROWS 65536
/* Rows per CSV chunk (its buffer is this times the longest possible line). */
#define GEN_CSV_CHUNK_ROWS 32768
#define GEN_STREAMS 16

enum {
    S_CL_V1A = 1, S_CL_V1B, S_CL_V2A, S_CL_V2B, S_CL_CAT, S_CL_SCORE,
    S_G1_ID1 = 1, S_G1_ID2, S_G1_ID3, S_G1_ID4, S_G1_ID5, S_G1_ID6, S_G1_V1, S_G1_V2, S_G1_V3,
    S_G1_NA1, S_G1_NA2, S_G1_NA3
};

typedef struct gen_params {
    pt_gen_kind kind;
    int64_t nrows;
    int64_t k;         /* G1 groups */
    int64_t nk;        /* G1 N/K (at least 1) */
    uint64_t na_thresh; /* a value is null when its draw is below this */
    int na_all;         /* nas_pct == 100 */
    uint64_t base[GEN_STREAMS];
} gen_params;

static inline uint64_t draw(const gen_params *g, int stream, int64_t row) {
    return pt_splitmix64(g->base[stream] + (uint64_t)row);
}

/* Uniform integer in [0, n) by multiply-shift; the bias (n / 2^64) is far
 * below anything a benchmark data set could show. */
static inline int64_t below(uint64_t h, int64_t n) {
    return (int64_t)(((unsigned __int128)h * (uint64_t)n) >> 64);
}

static inline double unit(uint64_t h) { return (double)(h >> 11) * 0x1.0p-53; }

/* Standard normal by Box-Muller from two independent draws. */
static inline double normal01(uint64_t h1, uint64_t h2) {
    double u1 = (double)((h1 >> 11) + 1) * 0x1.0p-53; /* (0, 1]: log is finite */
    double u2 = unit(h2);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static inline int is_null(const gen_params *g, int stream, int64_t row) {
    if (g->na_all) return 1;
    return g->na_thresh != 0 && draw(g, stream, row) < g->na_thresh;
}

typedef struct classic_row {
    int64_t id, v1u, v2u, score;
    int cat;
} classic_row;

static inline void classic_at(const gen_params *g, int64_t i, classic_row *r) {
    r->id = i;
    double z1 = normal01(draw(g, S_CL_V1A, i), draw(g, S_CL_V1B, i));
    double z2 = normal01(draw(g, S_CL_V2A, i), draw(g, S_CL_V2B, i));
    r->v1u = llrint((50.0 + 10.0 * z1) * 1e6);
    r->v2u = llrint(z2 * 1e6);
    r->cat = (int)below(draw(g, S_CL_CAT, i), 4);
    r->score = below(draw(g, S_CL_SCORE, i), 100);
}

typedef struct g1_row {
    int64_t id[6]; /* 1-based draws: id1..id6 */
    int64_t v1, v2, v3u;
    int null1, null2, null3;
} g1_row;

static inline void g1_at(const gen_params *g, int64_t i, g1_row *r) {
    r->id[0] = 1 + below(draw(g, S_G1_ID1, i), g->k);
    r->id[1] = 1 + below(draw(g, S_G1_ID2, i), g->k);
    r->id[2] = 1 + below(draw(g, S_G1_ID3, i), g->nk);
    r->id[3] = 1 + below(draw(g, S_G1_ID4, i), g->k);
    r->id[4] = 1 + below(draw(g, S_G1_ID5, i), g->k);
    r->id[5] = 1 + below(draw(g, S_G1_ID6, i), g->nk);
    r->v1 = 1 + below(draw(g, S_G1_V1, i), 5);
    r->v2 = 1 + below(draw(g, S_G1_V2, i), 15);
    r->v3u = llrint(unit(draw(g, S_G1_V3, i)) * 1e8);
    r->null1 = is_null(g, S_G1_NA1, i);
    r->null2 = is_null(g, S_G1_NA2, i);
    r->null3 = is_null(g, S_G1_NA3, i);
}

/* ------------------------------------------------------------------------ */
/* Text formatting (printf is several times slower for this volume)         */
/* ------------------------------------------------------------------------ */

/* Writes v with at least `width` digits (zero padded). */
static inline char *fmt_u64(char *p, uint64_t v, int width) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width) tmp[n++] = '0';
    while (n) *p++ = tmp[--n];
    return p;
}

static inline char *fmt_i64(char *p, int64_t v) {
    if (v < 0) {
        *p++ = '-';
        return fmt_u64(p, -(uint64_t)v, 1);
    }
    return fmt_u64(p, (uint64_t)v, 1);
}

/* micros as a number with exactly 6 decimals ("%.6f" of micros / 1e6). */
static inline char *fmt_micro(char *p, int64_t m) {
    uint64_t u = (uint64_t)m;
    if (m < 0) {
        *p++ = '-';
        u = -(uint64_t)m;
    }
    p = fmt_u64(p, u / 1000000, 1);
    *p++ = '.';
    return fmt_u64(p, u % 1000000, 6);
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                               */
/* ------------------------------------------------------------------------ */

pt_status pt_gen_kind_parse(const char *name, pt_gen_kind *out, pt_error *err) {
    if (name && strcmp(name, "classic") == 0) {
        *out = PT_GEN_CLASSIC;
        return PT_OK;
    }
    if (name && (strcmp(name, "g1") == 0 || strcmp(name, "G1") == 0)) {
        *out = PT_GEN_G1;
        return PT_OK;
    }
    if (name && (strcmp(name, "j1") == 0 || strcmp(name, "J1") == 0)) {
        *out = PT_GEN_J1;
        return PT_OK;
    }
    return pt_error_set(err, PT_EINVAL, "unknown data set '%s' (expected classic, g1 or j1)",
                        name ? name : "(null)");
}

const char *pt_gen_kind_name(pt_gen_kind kind) {
    switch (kind) {
    case PT_GEN_CLASSIC: return "classic";
    case PT_GEN_G1: return "g1";
    case PT_GEN_J1: return "j1";
    }
    return "unknown";
}

static pt_status params_init(gen_params *g, pt_gen_kind kind, int64_t nrows, int64_t k,
                             double nas_pct, uint64_t seed, const char *fn, pt_error *err) {
    memset(g, 0, sizeof *g);
    if (kind != PT_GEN_CLASSIC && kind != PT_GEN_G1)
        return pt_error_set(err, PT_EINVAL, "%s: kind %d is not a data set", fn, (int)kind);
    if (nrows < 0)
        return pt_error_set(err, PT_EINVAL, "%s: nrows must be >= 0, not %lld", fn,
                            (long long)nrows);
    if (!(nas_pct >= 0 && nas_pct <= 100))
        return pt_error_set(err, PT_EINVAL, "%s: nas_pct must be in [0, 100], not %g", fn, nas_pct);
    g->kind = kind;
    g->nrows = nrows;
    g->k = k > 0 ? k : 100;
    g->nk = nrows / g->k > 0 ? nrows / g->k : 1;
    if (kind == PT_GEN_G1 && g->nk > 9999999999LL)
        return pt_error_set(err, PT_EINVAL,
                            "%s: nrows / k = %lld does not fit id3's 10 digits (raise k)", fn,
                            (long long)g->nk);
    if (nas_pct >= 100)
        g->na_all = 1;
    else
        g->na_thresh = (uint64_t)(nas_pct / 100.0 * 18446744073709551616.0);
    if (kind == PT_GEN_CLASSIC) g->na_thresh = 0, g->na_all = 0;
    for (int s = 0; s < GEN_STREAMS; s++)
        g->base[s] = pt_splitmix64(pt_splitmix64(seed) ^ pt_hash_u64((uint64_t)s + 1));
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* In memory                                                                */
/* ------------------------------------------------------------------------ */

#define GEN_MAX_COLS 9

typedef struct mem_job {
    const gen_params *g;
    pt_column *cols[GEN_MAX_COLS];
    int64_t *chunk_nulls; /* per chunk, per nullable column (3) */
} mem_job;

static inline void set_valid(pt_column *c, int64_t i, int is_null_value) {
    if (!is_null_value && c->validity) pt_bit_set(c->validity->data, i);
}

static pt_status classic_chunk(pt_task_ctx *tc, void *arg, int64_t chunk, pt_error *err) {
    (void)tc;
    (void)err;
    mem_job *j = arg;
    int64_t lo = chunk * GEN_CHUNK_ROWS, hi = lo + GEN_CHUNK_ROWS;
    if (hi > j->g->nrows) hi = j->g->nrows;
    int64_t *id = (int64_t *)j->cols[0]->values->data;
    double *v1 = (double *)j->cols[1]->values->data;
    double *v2 = (double *)j->cols[2]->values->data;
    int32_t *cat = (int32_t *)j->cols[3]->values->data;
    int64_t *score = (int64_t *)j->cols[4]->values->data;
    for (int64_t i = lo; i < hi; i++) {
        classic_row r;
        classic_at(j->g, i, &r);
        id[i] = r.id;
        v1[i] = (double)r.v1u / 1e6;
        v2[i] = (double)r.v2u / 1e6;
        cat[i] = r.cat;
        score[i] = r.score;
    }
    return PT_OK;
}

static pt_status g1_chunk(pt_task_ctx *tc, void *arg, int64_t chunk, pt_error *err) {
    (void)tc;
    (void)err;
    mem_job *j = arg;
    int64_t lo = chunk * GEN_CHUNK_ROWS, hi = lo + GEN_CHUNK_ROWS;
    if (hi > j->g->nrows) hi = j->g->nrows;
    int32_t *id1 = (int32_t *)j->cols[0]->values->data;
    int32_t *id2 = (int32_t *)j->cols[1]->values->data;
    int64_t *off3 = (int64_t *)j->cols[2]->values->data;
    char *bytes3 = (char *)j->cols[2]->bytes->data;
    int64_t *ids[3];
    for (int c = 0; c < 3; c++) ids[c] = (int64_t *)j->cols[3 + c]->values->data;
    int64_t *v1 = (int64_t *)j->cols[6]->values->data;
    int64_t *v2 = (int64_t *)j->cols[7]->values->data;
    double *v3 = (double *)j->cols[8]->values->data;
    int64_t n1 = 0, n2 = 0, n3 = 0;
    for (int64_t i = lo; i < hi; i++) {
        g1_row r;
        g1_at(j->g, i, &r);
        id1[i] = (int32_t)(r.id[0] - 1);
        id2[i] = (int32_t)(r.id[1] - 1);
        /* id3 is always 12 bytes ("id" + 10 digits; params_init bounds N/K). */
        char *p = bytes3 + i * 12;
        p[0] = 'i';
        p[1] = 'd';
        fmt_u64(p + 2, (uint64_t)r.id[2], 10);
        off3[i + 1] = (i + 1) * 12;
        for (int c = 0; c < 3; c++) ids[c][i] = r.id[3 + c];
        v1[i] = r.null1 ? 0 : r.v1;
        v2[i] = r.null2 ? 0 : r.v2;
        v3[i] = r.null3 ? 0.0 : (double)r.v3u / 1e6;
        set_valid(j->cols[6], i, r.null1);
        set_valid(j->cols[7], i, r.null2);
        set_valid(j->cols[8], i, r.null3);
        n1 += r.null1;
        n2 += r.null2;
        n3 += r.null3;
    }
    j->chunk_nulls[chunk * 3 + 0] = n1;
    j->chunk_nulls[chunk * 3 + 1] = n2;
    j->chunk_nulls[chunk * 3 + 2] = n3;
    return PT_OK;
}

/* The dictionary of a generated text column: 'A'..'D' (classic) or
 * "id001".."idK" (g1). */
static pt_status make_dict(pt_mem *mem, const gen_params *g, pt_column **out, pt_error *err) {
    int64_t n = g->kind == PT_GEN_CLASSIC ? 4 : g->k;
    pt_column *d;
    PT_RETURN_NOT_OK(pt_column_new(mem, PT_TYPE_UTF8, n, n * 8, &d, err));
    for (int64_t i = 0; i < n; i++) {
        char buf[32];
        int len = g->kind == PT_GEN_CLASSIC
                      ? snprintf(buf, sizeof buf, "%c", (char)('A' + i))
                      : snprintf(buf, sizeof buf, "id%03lld", (long long)(i + 1));
        pt_status s = pt_column_append_str(d, buf, len, err);
        if (s != PT_OK) {
            pt_column_release(d);
            return s;
        }
    }
    *out = d;
    return PT_OK;
}

static void finish_column(pt_column *c, int64_t n, int64_t nulls) {
    c->length = n;
    if (c->type == PT_TYPE_UTF8) {
        c->values->size = (n + 1) * 8;
    } else {
        c->values->size = n * pt_type_width(c->type);
    }
    if (c->validity) c->validity->size = (n + 7) / 8;
    c->null_count = nulls;
}

static pt_status build_table(pt_ctx *ctx, const gen_params *g, pt_table **out, pt_error *err) {
    static const char *const classic_names[] = {"id", "value1", "value2", "category", "score"};
    static const pt_type classic_types[] = {PT_TYPE_INT64, PT_TYPE_FLOAT64, PT_TYPE_FLOAT64,
                                            PT_TYPE_DICT, PT_TYPE_INT64};
    static const char *const g1_names[] = {"id1", "id2", "id3", "id4", "id5",
                                           "id6", "v1",  "v2",  "v3"};
    static const pt_type g1_types[] = {PT_TYPE_DICT,  PT_TYPE_DICT,  PT_TYPE_UTF8,
                                       PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_INT64,
                                       PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_FLOAT64};
    int classic = g->kind == PT_GEN_CLASSIC;
    int ncols = classic ? 5 : 9;
    const char *const *names = classic ? classic_names : g1_names;
    const pt_type *types = classic ? classic_types : g1_types;
    pt_mem *mem = pt_ctx_mem(ctx);
    int64_t n = g->nrows;
    int64_t nchunks = (n + GEN_CHUNK_ROWS - 1) / GEN_CHUNK_ROWS;

    mem_job j;
    memset(&j, 0, sizeof j);
    j.g = g;
    pt_status s = PT_OK;
    pt_column *dict = NULL;
    j.chunk_nulls = pt_calloc((size_t)(nchunks > 0 ? nchunks : 1) * 3, sizeof(int64_t));
    if (!j.chunk_nulls) return pt_error_set(err, PT_ENOMEM, "out of memory generating data");

    s = make_dict(mem, g, &dict, err);
    for (int c = 0; c < ncols && s == PT_OK; c++) {
        if (types[c] == PT_TYPE_DICT)
            s = pt_column_new_dict(mem, dict, n, &j.cols[c], err);
        else
            s = pt_column_new(mem, types[c], n, types[c] == PT_TYPE_UTF8 ? n * 12 : 0,
                              &j.cols[c], err);
    }
    pt_column_release(dict);
    if (s == PT_OK && !classic && g->na_thresh + (uint64_t)g->na_all > 0) {
        for (int c = 6; c < 9 && s == PT_OK; c++) s = pt_column_ensure_validity(j.cols[c], err);
    }
    if (s == PT_OK)
        s = pt_parallel_for(pt_ctx_pool(ctx), nchunks, classic ? classic_chunk : g1_chunk, &j,
                            NULL, err);
    if (s == PT_OK) {
        for (int c = 0; c < ncols; c++) {
            int64_t nulls = 0;
            if (!classic && c >= 6)
                for (int64_t k = 0; k < nchunks; k++) nulls += j.chunk_nulls[k * 3 + (c - 6)];
            finish_column(j.cols[c], n, nulls);
            if (j.cols[c]->type == PT_TYPE_UTF8) j.cols[c]->bytes->size = n * 12;
        }
    }
    pt_free(j.chunk_nulls);
    pt_schema *schema = NULL;
    if (s == PT_OK) s = pt_schema_new(ncols, names, types, &schema, err);
    if (s != PT_OK) {
        for (int c = 0; c < ncols; c++) pt_column_release(j.cols[c]);
        return s;
    }
    return pt_table_new(schema, j.cols, out, err);
}

pt_status pt_gen_classic(pt_ctx *ctx, int64_t nrows, uint64_t seed, pt_table **out,
                         pt_error *err) {
    if (out) *out = NULL;
    if (!ctx || !out) return pt_error_set(err, PT_EINVAL, "pt_gen_classic: ctx and out are required");
    gen_params g;
    PT_RETURN_NOT_OK(params_init(&g, PT_GEN_CLASSIC, nrows, 0, 0, seed, "pt_gen_classic", err));
    return build_table(ctx, &g, out, err);
}

pt_status pt_gen_g1(pt_ctx *ctx, int64_t nrows, int64_t k, double nas_pct, uint64_t seed,
                    pt_table **out, pt_error *err) {
    if (out) *out = NULL;
    if (!ctx || !out) return pt_error_set(err, PT_EINVAL, "pt_gen_g1: ctx and out are required");
    gen_params g;
    PT_RETURN_NOT_OK(params_init(&g, PT_GEN_G1, nrows, k, nas_pct, seed, "pt_gen_g1", err));
    return build_table(ctx, &g, out, err);
}

/* ------------------------------------------------------------------------ */
/* Streaming CSV                                                            */
/* ------------------------------------------------------------------------ */

typedef struct csv_chunk {
    char *buf;
    int64_t len;
} csv_chunk;

typedef struct csv_job {
    const gen_params *g;
    csv_chunk *chunks;
    int64_t first_row; /* of chunk 0 of the current round */
} csv_job;

static int64_t max_line_bytes(const gen_params *g) {
    /* classic: id <= 20 digits, |value| < 1000 ("-xxx.xxxxxx"), 1 letter,
     * 2 digits; g1: id1/id2 <= 21, id3 12, five ints <= 20, v3 10. */
    return g->kind == PT_GEN_CLASSIC ? 80 : 192;
}

static char *format_classic(const gen_params *g, int64_t i, char *p) {
    classic_row r;
    classic_at(g, i, &r);
    p = fmt_i64(p, r.id);
    *p++ = ',';
    p = fmt_micro(p, r.v1u);
    *p++ = ',';
    p = fmt_micro(p, r.v2u);
    *p++ = ',';
    *p++ = (char)('A' + r.cat);
    *p++ = ',';
    p = fmt_i64(p, r.score);
    *p++ = '\n';
    return p;
}

static char *format_g1(const gen_params *g, int64_t i, char *p) {
    g1_row r;
    g1_at(g, i, &r);
    for (int c = 0; c < 3; c++) {
        *p++ = 'i';
        *p++ = 'd';
        p = fmt_u64(p, (uint64_t)r.id[c], c == 2 ? 10 : 3);
        *p++ = ',';
    }
    for (int c = 3; c < 6; c++) {
        p = fmt_i64(p, r.id[c]);
        *p++ = ',';
    }
    if (!r.null1) p = fmt_i64(p, r.v1);
    *p++ = ',';
    if (!r.null2) p = fmt_i64(p, r.v2);
    *p++ = ',';
    if (!r.null3) p = fmt_micro(p, r.v3u);
    *p++ = '\n';
    return p;
}

static pt_status csv_chunk_fn(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    (void)err;
    csv_job *j = arg;
    int64_t lo = j->first_row + c * GEN_CSV_CHUNK_ROWS, hi = lo + GEN_CSV_CHUNK_ROWS;
    if (hi > j->g->nrows) hi = j->g->nrows;
    char *p = j->chunks[c].buf;
    if (j->g->kind == PT_GEN_CLASSIC) {
        for (int64_t i = lo; i < hi; i++) p = format_classic(j->g, i, p);
    } else {
        for (int64_t i = lo; i < hi; i++) p = format_g1(j->g, i, p);
    }
    j->chunks[c].len = p - j->chunks[c].buf;
    return PT_OK;
}

pt_status pt_gen_j1(pt_ctx *ctx, int64_t n, uint64_t seed, pt_table *tables[4], pt_error *err) {
    for (int i = 0; i < 4; i++) tables[i] = NULL;
    return pt__gen_j1(ctx, n, seed, &tables[0], &tables[1], &tables[2], &tables[3], err);
}

/* J1 is four tables: written as <path without .csv>_x.csv, _small.csv,
 * _medium.csv and _big.csv, built in memory first. */
static pt_status write_j1(pt_ctx *ctx, int64_t n, uint64_t seed, const char *path,
                          int64_t *bytes_out, pt_error *err) {
    static const char *const names[4] = {"x", "small", "medium", "big"};
    pt_table *t[4];
    PT_RETURN_NOT_OK(pt_gen_j1(ctx, n, seed, t, err));
    size_t len = strlen(path);
    if (len > 4 && strcmp(path + len - 4, ".csv") == 0) len -= 4;
    pt_status st = PT_OK;
    for (int i = 0; i < 4 && st == PT_OK; i++) {
        char file[4096];
        if ((size_t)snprintf(file, sizeof file, "%.*s_%s.csv", (int)len, path, names[i]) >=
            sizeof file) {
            st = pt_error_set(err, PT_EINVAL, "%s: path too long", path);
            break;
        }
        st = pt_csv_write(t[i], file, NULL, err);
        struct stat sb;
        if (st == PT_OK && bytes_out && stat(file, &sb) == 0) *bytes_out += (int64_t)sb.st_size;
    }
    for (int i = 0; i < 4; i++) pt_table_free(t[i]);
    return st;
}

pt_status pt_gen_write_csv(pt_ctx *ctx, pt_gen_kind kind, int64_t nrows, int64_t k,
                           double nas_pct, uint64_t seed, const char *path, int64_t *bytes_out,
                           pt_error *err) {
    if (bytes_out) *bytes_out = 0;
    if (!ctx || !path)
        return pt_error_set(err, PT_EINVAL, "pt_gen_write_csv: ctx and path are required");
    if (kind == PT_GEN_J1) return write_j1(ctx, nrows, seed, path, bytes_out, err);
    gen_params g;
    PT_RETURN_NOT_OK(params_init(&g, kind, nrows, k, nas_pct, seed, "pt_gen_write_csv", err));

    /* Two chunks per thread keep every worker busy while the previous
     * round's text is written; fewer when the budget is tight. */
    pt_mem *mem = pt_ctx_mem(ctx);
    int64_t chunk_cap = GEN_CSV_CHUNK_ROWS * max_line_bytes(&g);
    int64_t per_round = 2 * (int64_t)pt_ctx_threads(ctx);
    int64_t needed = (nrows + GEN_CSV_CHUNK_ROWS - 1) / GEN_CSV_CHUNK_ROWS;
    if (per_round > needed) per_round = needed > 0 ? needed : 1;
    pt_status s;
    for (;;) {
        s = pt_mem_reserve(mem, per_round * chunk_cap, "CSV generation buffers", err);
        if (s == PT_OK || per_round == 1) break;
        per_round /= 2;
    }
    if (s != PT_OK) return s;
    int64_t charged = per_round * chunk_cap;

    csv_job j = {.g = &g, .chunks = pt_calloc((size_t)per_round, sizeof(csv_chunk))};
    FILE *f = NULL;
    if (!j.chunks) {
        s = pt_error_set(err, PT_ENOMEM, "out of memory generating %s", path);
        goto done;
    }
    for (int64_t c = 0; c < per_round; c++) {
        j.chunks[c].buf = pt_malloc((size_t)chunk_cap);
        if (!j.chunks[c].buf) {
            s = pt_error_set(err, PT_ENOMEM, "out of memory generating %s", path);
            goto done;
        }
    }
    f = fopen(path, "wb");
    if (!f) {
        s = pt_error_set(err, errno == ENOENT ? PT_ENOENT : PT_EIO, "%s: cannot create: %s", path,
                         strerror(errno));
        goto done;
    }
    const char *header = kind == PT_GEN_CLASSIC ? "id,value1,value2,category,score\n"
                                                : "id1,id2,id3,id4,id5,id6,v1,v2,v3\n";
    int64_t written = (int64_t)strlen(header);
    if (fwrite(header, 1, (size_t)written, f) != (size_t)written) goto write_failed;
    pt_progress *prog = pt_progress_start("gen", 0);
    for (j.first_row = 0; j.first_row < nrows;
         j.first_row += per_round * GEN_CSV_CHUNK_ROWS) {
        int64_t left = (nrows - j.first_row + GEN_CSV_CHUNK_ROWS - 1) / GEN_CSV_CHUNK_ROWS;
        int64_t nchunks = left < per_round ? left : per_round;
        s = pt_parallel_for(pt_ctx_pool(ctx), nchunks, csv_chunk_fn, &j, NULL, err);
        if (s != PT_OK) break;
        for (int64_t c = 0; c < nchunks; c++) {
            if (fwrite(j.chunks[c].buf, 1, (size_t)j.chunks[c].len, f) != (size_t)j.chunks[c].len) {
                pt_progress_finish(prog);
                goto write_failed;
            }
            written += j.chunks[c].len;
            int64_t rows = nrows - (j.first_row + c * GEN_CSV_CHUNK_ROWS);
            pt_progress_add(prog, rows < GEN_CSV_CHUNK_ROWS ? rows : GEN_CSV_CHUNK_ROWS,
                            j.chunks[c].len);
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
    pt_mem_release(mem, charged);
    return s;
}
