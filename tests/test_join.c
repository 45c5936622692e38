/* Tests of the hash join kernel (in memory, streaming, out of core) against
 * a nested-loop reference join written here, and of the J1 generator
 * against the rules of the db-benchmark join data. Rows are compared as
 * sorted lists of their formatted cells, since join output order is
 * unspecified. */
#include <dirent.h>

#include "frame/join.h"
#include "pt_test.h"

static pt_ctx *make_ctx(int threads, int64_t limit, const char *spill) {
    pt_ctx_opts o;
    pt_ctx_opts_init(&o);
    o.threads = threads;
    o.memory_limit = limit;
    o.spill_dir = spill;
    pt_ctx *ctx = NULL;
    if (pt_ctx_new(&o, &ctx, NULL) != PT_OK) return NULL;
    return ctx;
}

/* ------------------------------------------------------------------------ */
/* Test data                                                                */
/* ------------------------------------------------------------------------ */

static uint64_t rnd(uint64_t *s) { return pt_splitmix64((*s)++); }

/* A dictionary holding "k0".."k<range-1>" plus a few unused entries, in an
 * order that depends on `seed` (so both sides get different dictionaries). */
static pt_column *make_dict(int range, uint64_t seed) {
    int n = range + 5;
    int *order = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) order[i] = i;
    uint64_t s = seed;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rnd(&s) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    pt_column *d = NULL;
    if (pt_column_new(NULL, PT_TYPE_UTF8, n, 0, &d, NULL) != PT_OK) return NULL;
    for (int i = 0; i < n; i++) {
        char buf[32];
        int len = order[i] < range ? snprintf(buf, sizeof buf, "k%d", order[i])
                                   : snprintf(buf, sizeof buf, "unused%d", order[i]);
        if (pt_column_append_str(d, buf, len, NULL) != PT_OK) return NULL;
    }
    free(order);
    return d;
}

static int dict_find(const pt_column *d, const char *s) {
    for (int64_t i = 0; i < d->length; i++) {
        int64_t len;
        const char *t = pt_column_str(d, i, &len);
        if ((size_t)len == strlen(s) && memcmp(t, s, (size_t)len) == 0) return (int)i;
    }
    return -1;
}

static pt_status append_key(pt_column *c, pt_type t, int64_t v, int spread, int null) {
    if (null) return pt_column_append_null(c, NULL);
    char buf[32];
    int len = snprintf(buf, sizeof buf, "k%lld", (long long)v);
    int64_t iv = spread ? v * 1000003 - 5000000 : v;
    switch (t) {
    case PT_TYPE_INT32: return pt_column_append_i32(c, (int32_t)iv, NULL);
    case PT_TYPE_INT64: return pt_column_append_i64(c, iv, NULL);
    case PT_TYPE_FLOAT64: return pt_column_append_f64(c, (double)v + 0.5, NULL);
    case PT_TYPE_BOOL: return pt_column_append_bool(c, v & 1, NULL);
    case PT_TYPE_UTF8: return pt_column_append_str(c, buf, len, NULL);
    case PT_TYPE_DICT: return pt_column_append_index(c, dict_find(c->dict, buf), NULL);
    default: return PT_EINVAL;
    }
}

/* Columns: <p>k (ktype), <p>k2 (k2type, when not PT_TYPE_NULL), <p>id (row
 * number), <p>s (utf8 payload, some nulls), <p>f (float64 payload, some
 * nulls). Keys in [0, range) with about 10% nulls, so many duplicates. */
static pt_table *make_side(const char *p, pt_type ktype, pt_type k2type, int64_t n, int range,
                           int spread, uint64_t seed) {
    int nc = k2type == PT_TYPE_NULL ? 4 : 5;
    const char *names[5];
    pt_type types[5];
    char nbuf[5][16];
    int c = 0;
    snprintf(nbuf[c], 16, "%sk", p), types[c] = ktype, c++;
    if (nc == 5) snprintf(nbuf[c], 16, "%sk2", p), types[c] = k2type, c++;
    snprintf(nbuf[c], 16, "%sid", p), types[c] = PT_TYPE_INT64, c++;
    snprintf(nbuf[c], 16, "%ss", p), types[c] = PT_TYPE_UTF8, c++;
    snprintf(nbuf[c], 16, "%sf", p), types[c] = PT_TYPE_FLOAT64, c++;
    for (int i = 0; i < nc; i++) names[i] = nbuf[i];
    pt_column *cols[5] = {0};
    for (int i = 0; i < nc; i++) {
        pt_status st;
        if (types[i] == PT_TYPE_DICT) {
            pt_column *d = make_dict(range, seed * 7 + (uint64_t)i);
            st = pt_column_new_dict(NULL, d, n, &cols[i], NULL);
            pt_column_release(d);
        } else {
            st = pt_column_new(NULL, types[i], n, 0, &cols[i], NULL);
        }
        if (st != PT_OK) return NULL;
    }
    uint64_t s = seed;
    for (int64_t r = 0; r < n; r++) {
        int64_t v = (int64_t)(rnd(&s) % (uint64_t)range);
        int null = rnd(&s) % 10 == 0;
        if (append_key(cols[0], ktype, v, spread, null) != PT_OK) return NULL;
        c = 1;
        if (nc == 5) {
            int64_t v2 = (int64_t)(rnd(&s) % 3);
            if (append_key(cols[c++], k2type, v2, 0, rnd(&s) % 20 == 0) != PT_OK) return NULL;
        }
        if (pt_column_append_i64(cols[c++], r, NULL) != PT_OK) return NULL;
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%s%lld", p, (long long)r);
        pt_status st = r % 7 == 3 ? pt_column_append_null(cols[c], NULL)
                                  : pt_column_append_str(cols[c], buf, len, NULL);
        c++;
        if (st != PT_OK) return NULL;
        st = r % 5 == 1 ? pt_column_append_null(cols[c], NULL)
                        : pt_column_append_f64(cols[c], (double)r / 4, NULL);
        if (st != PT_OK) return NULL;
    }
    pt_schema *sc;
    if (pt_schema_new(nc, names, types, &sc, NULL) != PT_OK) return NULL;
    pt_table *t;
    if (pt_table_new(sc, cols, &t, NULL) != PT_OK) return NULL;
    return t;
}

/* Partitions of t: 0 = zero-copy slices, 1 = deep copies, 2 = deep copies
 * whose dict columns each get their own dictionary. Sizes are uneven. */
static pt_table **split(pt_table *t, int64_t np, int mode) {
    pt_table **parts = calloc((size_t)np, sizeof *parts);
    int64_t lo = 0;
    for (int64_t p = 0; p < np; p++) {
        int64_t hi = p == np - 1 ? t->nrows : lo + (t->nrows - lo) * (p + 1) / (2 * np - p);
        if (hi < lo) hi = lo;
        pt_table *s;
        if (pt_table_slice(t, lo, hi - lo, &s, NULL) != PT_OK) return NULL;
        if (mode > 0) {
            int64_t *idx = malloc(sizeof(int64_t) * (size_t)(hi - lo + 1));
            for (int64_t i = 0; i < hi - lo; i++) idx[i] = i;
            pt_table *c;
            if (pt_table_take(NULL, s, idx, hi - lo, &c, NULL) != PT_OK) return NULL;
            free(idx);
            pt_table_free(s);
            s = c;
            for (int k = 0; mode == 2 && k < s->schema->nfields; k++) {
                if (s->cols[k]->type != PT_TYPE_DICT) continue;
                pt_column *u, *d;
                if (pt_column_cast(NULL, s->cols[k], PT_TYPE_UTF8, &u, NULL) != PT_OK) return NULL;
                if (pt_column_cast(NULL, u, PT_TYPE_DICT, &d, NULL) != PT_OK) return NULL;
                pt_column_release(u);
                pt_column_release(s->cols[k]);
                s->cols[k] = d;
            }
        }
        parts[p] = s;
        lo = hi;
    }
    return parts;
}

static void free_parts(pt_table **parts, int64_t n) {
    for (int64_t p = 0; p < n; p++) pt_table_free(parts[p]);
    free(parts);
}

/* ------------------------------------------------------------------------ */
/* Reference                                                                */
/* ------------------------------------------------------------------------ */

typedef struct rows {
    char **r;
    int64_t n, cap;
} rows;

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    memcpy(d, s, n);
    return d;
}

static void rows_add(rows *rs, const char *s) {
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 256;
        rs->r = realloc(rs->r, sizeof(char *) * (size_t)rs->cap);
    }
    rs->r[rs->n++] = xstrdup(s);
}

static void rows_free(rows *rs) {
    for (int64_t i = 0; i < rs->n; i++) free(rs->r[i]);
    free(rs->r);
    memset(rs, 0, sizeof *rs);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Cells of row i of t ("null" for null; every cell when i < 0). */
static void cells(const pt_table *t, int64_t i, char *out, size_t cap) {
    size_t pos = strlen(out);
    for (int c = 0; c < t->schema->nfields; c++) {
        char buf[128];
        const char *s = i < 0 ? "null" : pt_column_format(t->cols[c], i, 17, buf, sizeof buf);
        pos += (size_t)snprintf(out + pos, cap - pos, "%s|", s);
    }
}

static void table_rows(const pt_table *t, rows *rs) {
    for (int64_t i = 0; i < t->nrows; i++) {
        char line[1024] = "";
        cells(t, i, line, sizeof line);
        rows_add(rs, line);
    }
    if (rs->n > 1) qsort(rs->r, (size_t)rs->n, sizeof(char *), cmp_str);
}

/* Key text of row i, or NULL when a key is null. */
static char *key_text(const pt_table *t, const int *keys, int nkeys, int64_t i) {
    char buf[512] = "";
    size_t pos = 0;
    for (int k = 0; k < nkeys; k++) {
        const pt_column *c = t->cols[keys[k]];
        if (!pt_column_is_valid(c, i)) return NULL;
        char cell[128];
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "%s\x1f",
                                pt_column_format(c, i, 17, cell, sizeof cell));
    }
    return xstrdup(buf);
}

static void reference_join(const pt_table *L, const pt_table *R, pt_join_type type, int nkeys,
                           const int *lk, const int *rk, rows *out) {
    char **lt = calloc((size_t)L->nrows + 1, sizeof *lt), **rt = calloc((size_t)R->nrows + 1, sizeof *rt);
    char *rmatched = calloc((size_t)R->nrows + 1, 1);
    for (int64_t i = 0; i < L->nrows; i++) lt[i] = key_text(L, lk, nkeys, i);
    for (int64_t j = 0; j < R->nrows; j++) rt[j] = key_text(R, rk, nkeys, j);
    for (int64_t i = 0; i < L->nrows; i++) {
        int any = 0;
        for (int64_t j = 0; j < R->nrows; j++) {
            if (!lt[i] || !rt[j] || strcmp(lt[i], rt[j]) != 0) continue;
            char line[1024] = "";
            cells(L, i, line, sizeof line);
            cells(R, j, line, sizeof line);
            rows_add(out, line);
            any = 1;
            rmatched[j] = 1;
        }
        if (!any && (type == PT_JOIN_LEFT || type == PT_JOIN_FULL)) {
            char line[1024] = "";
            cells(L, i, line, sizeof line);
            cells(R, -1, line, sizeof line);
            rows_add(out, line);
        }
    }
    if (type == PT_JOIN_RIGHT || type == PT_JOIN_FULL) {
        for (int64_t j = 0; j < R->nrows; j++) {
            if (rmatched[j]) continue;
            char line[1024] = "";
            cells(L, -1, line, sizeof line);
            cells(R, j, line, sizeof line);
            rows_add(out, line);
        }
    }
    for (int64_t i = 0; i < L->nrows; i++) free(lt[i]);
    for (int64_t j = 0; j < R->nrows; j++) free(rt[j]);
    free(lt);
    free(rt);
    free(rmatched);
    if (out->n > 1) qsort(out->r, (size_t)out->n, sizeof(char *), cmp_str);
}

/* 1 when the rows of `got` are those of `want` (sorted), else prints the
 * first difference. */
static int same_rows(const pt_table *got, rows *want, const char *what) {
    rows g = {0};
    table_rows(got, &g);
    int ok = g.n == want->n;
    int64_t i = 0;
    for (; ok && i < g.n; i++) ok = strcmp(g.r[i], want->r[i]) == 0;
    if (!ok) {
        fprintf(stderr, "%s: %lld rows vs %lld expected", what, (long long)g.n, (long long)want->n);
        if (i > 0 && i <= g.n && i <= want->n)
            fprintf(stderr, "; row %lld: '%s' vs '%s'", (long long)(i - 1), g.r[i - 1],
                    want->r[i - 1]);
        fprintf(stderr, "\n");
    }
    rows_free(&g);
    return ok;
}

static const char *jname(pt_join_type t) {
    static const char *n[] = {"inner", "left", "right", "full"};
    return n[t];
}

/* Joins L and R split into nl/nr partitions (mode as split) with every
 * join type and compares with the reference. */
static int check_join(pt_ctx *ctx, pt_table *L, pt_table *R, int nkeys, const int *lk,
                      const int *rk, int64_t nl, int64_t nr, int mode, const pt__join_opts *opts,
                      const char *what) {
    pt_table **lp = split(L, nl, mode), **rp = split(R, nr, mode);
    int ok = lp && rp;
    for (int t = 0; ok && t < 4; t++) {
        rows want = {0};
        reference_join(L, R, (pt_join_type)t, nkeys, lk, rk, &want);
        pt_table *out = NULL;
        pt_error err;
        pt_error_clear(&err);
        pt__join_stats stats;
        pt_status st = pt__join_ex(ctx, lp, nl, rp, nr, (pt_join_type)t, nkeys, lk, rk, opts, &out,
                                   &stats, &err);
        char label[256];
        snprintf(label, sizeof label, "%s, %s join, %lld x %lld parts, mode %d", what,
                 jname((pt_join_type)t), (long long)nl, (long long)nr, mode);
        if (st != PT_OK) {
            fprintf(stderr, "%s: %s\n", label, err.msg);
            ok = 0;
        } else {
            ok = same_rows(out, &want, label);
            int ncols = L->schema->nfields + R->schema->nfields;
            if (ok && out->schema->nfields != ncols) ok = 0;
            for (int c = 0; ok && c < L->schema->nfields; c++)
                ok = strcmp(out->schema->fields[c].name, L->schema->fields[c].name) == 0 &&
                     out->schema->fields[c].type == L->schema->fields[c].type;
            if (!ok) fprintf(stderr, "%s: failed\n", label);
        }
        pt_table_free(out);
        rows_free(&want);
    }
    free_parts(lp, nl);
    free_parts(rp, nr);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* In-memory joins                                                          */
/* ------------------------------------------------------------------------ */

typedef struct kcase {
    const char *name;
    pt_type lt, rt, lt2, rt2;
    int spread;
} kcase;

static const kcase KCASES[] = {
    {"int32", PT_TYPE_INT32, PT_TYPE_INT32, PT_TYPE_NULL, PT_TYPE_NULL, 0},
    {"int64", PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_NULL, PT_TYPE_NULL, 0},
    {"int64 spread (hashed)", PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_NULL, PT_TYPE_NULL, 1},
    {"int32 vs int64", PT_TYPE_INT32, PT_TYPE_INT64, PT_TYPE_NULL, PT_TYPE_NULL, 0},
    {"int64 vs int32 spread", PT_TYPE_INT64, PT_TYPE_INT32, PT_TYPE_NULL, PT_TYPE_NULL, 1},
    {"utf8", PT_TYPE_UTF8, PT_TYPE_UTF8, PT_TYPE_NULL, PT_TYPE_NULL, 0},
    {"dict vs dict", PT_TYPE_DICT, PT_TYPE_DICT, PT_TYPE_NULL, PT_TYPE_NULL, 0},
    {"utf8 vs dict", PT_TYPE_UTF8, PT_TYPE_DICT, PT_TYPE_NULL, PT_TYPE_NULL, 0},
    {"dict vs utf8", PT_TYPE_DICT, PT_TYPE_UTF8, PT_TYPE_NULL, PT_TYPE_NULL, 0},
    {"float64", PT_TYPE_FLOAT64, PT_TYPE_FLOAT64, PT_TYPE_NULL, PT_TYPE_NULL, 0},
    {"bool", PT_TYPE_BOOL, PT_TYPE_BOOL, PT_TYPE_NULL, PT_TYPE_NULL, 0},
    {"int64 + utf8", PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_UTF8, PT_TYPE_DICT, 0},
    {"dict + int32/int64", PT_TYPE_DICT, PT_TYPE_UTF8, PT_TYPE_INT32, PT_TYPE_INT64, 0},
};

static int run_kcase(pt_ctx *ctx, const kcase *kc, int64_t ln, int64_t rn, int64_t nl, int64_t nr,
                     int mode, const pt__join_opts *opts) {
    pt_table *L = make_side("l", kc->lt, kc->lt2, ln, 23, kc->spread, 11);
    pt_table *R = make_side("r", kc->rt, kc->rt2, rn, 23, kc->spread, 97);
    int lk[2] = {0, 1}, rk[2] = {0, 1};
    int nkeys = kc->lt2 == PT_TYPE_NULL ? 1 : 2;
    int ok = L && R && check_join(ctx, L, R, nkeys, lk, rk, nl, nr, mode, opts, kc->name);
    pt_table_free(L);
    pt_table_free(R);
    return ok;
}

TEST(join_key_types_all_join_types) {
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    CHECK(ctx);
    int n = (int)(sizeof KCASES / sizeof KCASES[0]);
    for (int i = 0; i < n; i++) {
        /* left bigger (build right), then right bigger (build left) */
        CHECK_MSG(run_kcase(ctx, &KCASES[i], 240, 130, 1, 1, 0, NULL), "%s", KCASES[i].name);
        CHECK_MSG(run_kcase(ctx, &KCASES[i], 90, 170, 1, 1, 0, NULL), "%s", KCASES[i].name);
    }
    pt_ctx_free(ctx);
}

TEST(join_many_partitions_vs_one) {
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    CHECK(ctx);
    int n = (int)(sizeof KCASES / sizeof KCASES[0]);
    for (int i = 0; i < n; i++) {
        for (int mode = 0; mode < 3; mode++) {
            CHECK_MSG(run_kcase(ctx, &KCASES[i], 200, 120, 7, 5, mode, NULL), "%s mode %d",
                      KCASES[i].name, mode);
            CHECK_MSG(run_kcase(ctx, &KCASES[i], 90, 160, 4, 9, mode, NULL), "%s mode %d",
                      KCASES[i].name, mode);
        }
    }
    pt_ctx_free(ctx);
}

TEST(join_radix_partitioned_build) {
    /* A tiny broadcast threshold makes small build sides use the
     * radix-partitioned table, which big inputs would use. */
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    CHECK(ctx);
    pt__join_opts o;
    pt__join_opts_init(&o);
    o.broadcast_rows = 8;
    const kcase *cases[] = {&KCASES[2], &KCASES[9], &KCASES[11], &KCASES[12]};
    for (int i = 0; i < 4; i++)
        CHECK_MSG(run_kcase(ctx, cases[i], 400, 300, 3, 4, 0, &o), "%s", cases[i]->name);
    /* and the stats say so */
    pt_table *L = make_side("l", PT_TYPE_INT64, PT_TYPE_NULL, 500, 50, 1, 5);
    pt_table *R = make_side("r", PT_TYPE_INT64, PT_TYPE_NULL, 300, 50, 1, 6);
    int k = 0;
    pt_table *out = NULL;
    pt__join_stats st;
    pt_error err;
    CHECK_OK(pt__join_ex(ctx, &L, 1, &R, 1, PT_JOIN_INNER, 1, &k, &k, &o, &out, &st, &err), &err);
    CHECK(st.strategy == PT__JOIN_PARTITIONED);
    CHECK(st.table == PT__JT_HASHED);
    CHECK(st.radix_parts > 1);
    CHECK_EQ_I(st.build_is_right, 1);
    pt_table_free(out);
    CHECK_OK(pt__join_ex(ctx, &L, 1, &R, 1, PT_JOIN_INNER, 1, &k, &k, NULL, &out, &st, &err), &err);
    CHECK(st.strategy == PT__JOIN_BROADCAST);
    CHECK_EQ_I(st.radix_parts, 1);
    pt_table_free(out);
    pt_table_free(L);
    pt_table_free(R);
    pt_ctx_free(ctx);
}

TEST(join_empty_sides) {
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    CHECK(ctx);
    const kcase *cases[] = {&KCASES[1], &KCASES[6], &KCASES[11]};
    for (int i = 0; i < 3; i++) {
        CHECK_MSG(run_kcase(ctx, cases[i], 0, 50, 1, 2, 0, NULL), "%s", cases[i]->name);
        CHECK_MSG(run_kcase(ctx, cases[i], 60, 0, 3, 1, 0, NULL), "%s", cases[i]->name);
        CHECK_MSG(run_kcase(ctx, cases[i], 0, 0, 1, 1, 0, NULL), "%s", cases[i]->name);
    }
    pt_ctx_free(ctx);
}

TEST(join_all_null_keys_never_match) {
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    CHECK(ctx);
    /* Two one-column tables whose keys are all null. */
    pt_column *a, *b;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 4, 0, &a, NULL), NULL);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 4, 0, &b, NULL), NULL);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(pt_column_append_null(a, NULL), NULL);
        CHECK_OK(pt_column_append_null(b, NULL), NULL);
    }
    const char *na[] = {"a"}, *nb[] = {"b"};
    pt_type ty[] = {PT_TYPE_INT64};
    pt_schema *sa, *sb;
    CHECK_OK(pt_schema_new(1, na, ty, &sa, NULL), NULL);
    CHECK_OK(pt_schema_new(1, nb, ty, &sb, NULL), NULL);
    pt_table *A, *B;
    CHECK_OK(pt_table_new(sa, &a, &A, NULL), NULL);
    CHECK_OK(pt_table_new(sb, &b, &B, NULL), NULL);
    int k = 0;
    pt_table *out;
    pt_error err;
    CHECK_OK(pt__join(ctx, &A, 1, &B, 1, PT_JOIN_INNER, 1, &k, &k, &out, &err), &err);
    CHECK_EQ_I(out->nrows, 0);
    pt_table_free(out);
    CHECK_OK(pt__join(ctx, &A, 1, &B, 1, PT_JOIN_FULL, 1, &k, &k, &out, &err), &err);
    CHECK_EQ_I(out->nrows, 6);
    CHECK_EQ_I(out->cols[0]->null_count, 6);
    pt_table_free(out);
    pt_table_free(A);
    pt_table_free(B);
    pt_ctx_free(ctx);
}

TEST(join_type_mismatch_and_bad_keys) {
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    CHECK(ctx);
    pt_table *L = make_side("l", PT_TYPE_INT64, PT_TYPE_NULL, 10, 5, 0, 1);
    pt_table *R = make_side("r", PT_TYPE_UTF8, PT_TYPE_NULL, 10, 5, 0, 2);
    CHECK(L && R);
    int k = 0;
    pt_table *out = NULL;
    pt_error err;
    pt_error_clear(&err);
    CHECK(pt__join(ctx, &L, 1, &R, 1, PT_JOIN_INNER, 1, &k, &k, &out, &err) == PT_ETYPE);
    CHECK(out == NULL);
    CHECK_CONTAINS(err.msg, "'lk' (int64)");
    CHECK_CONTAINS(err.msg, "'rk' (utf8)");
    CHECK_CONTAINS(err.msg, "incompatible");
    /* float64 payload vs int64 id */
    int lk = 3, rk = 1;
    CHECK(pt__join(ctx, &L, 1, &R, 1, PT_JOIN_LEFT, 1, &lk, &rk, &out, &err) == PT_ETYPE);
    CHECK_CONTAINS(err.msg, "'lf' (float64)");
    CHECK_CONTAINS(err.msg, "'rid' (int64)");
    int bad = 9;
    CHECK(pt__join(ctx, &L, 1, &R, 1, PT_JOIN_INNER, 1, &bad, &k, &out, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "lkeys[0] = 9");
    CHECK(pt__join(ctx, &L, 0, &R, 1, PT_JOIN_INNER, 1, &k, &k, &out, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "lparts");
    CHECK(pt__join(ctx, &L, 1, &R, 1, PT_JOIN_INNER, 0, &k, &k, &out, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "nkeys");
    pt_table_free(L);
    pt_table_free(R);
    pt_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Streaming                                                                */
/* ------------------------------------------------------------------------ */

static int check_stream(pt_ctx *ctx, const kcase *kc, int build_is_right, pt_join_type type) {
    pt_table *L = make_side("l", kc->lt, kc->lt2, 260, 23, kc->spread, 3);
    pt_table *R = make_side("r", kc->rt, kc->rt2, 180, 23, kc->spread, 4);
    int keys[2] = {0, 1};
    int nkeys = kc->lt2 == PT_TYPE_NULL ? 1 : 2;
    pt_table *B = build_is_right ? R : L, *P = build_is_right ? L : R;
    pt_table **bp = split(B, 3, 0), **pp = split(P, 6, 2);
    pt__join_stream *j = NULL;
    pt_error err;
    pt_error_clear(&err);
    int ok = pt__join_stream_new(ctx, bp, 3, build_is_right, type, nkeys, keys, keys, P->schema,
                                 &j, &err) == PT_OK;
    free_parts(bp, 3); /* the stream keeps what it needs */
    pt_table *outs[8];
    int nout = 0;
    for (int p = 0; ok && p < 6; p++) ok = pt__join_stream_probe(j, pp[p], &outs[nout++], &err) == PT_OK;
    if (ok) ok = pt__join_stream_finish(j, &outs[nout++], &err) == PT_OK;
    /* probing after finish is refused */
    pt_table *extra = NULL;
    if (ok) ok = pt__join_stream_probe(j, pp[0], &extra, NULL) == PT_EINVAL;
    pt__join_stream_free(j);
    pt_table *all = NULL;
    if (ok) ok = pt_table_concat(NULL, outs, nout, &all, &err) == PT_OK;
    if (!ok) fprintf(stderr, "stream %s: %s\n", kc->name, err.msg);
    rows want = {0};
    reference_join(L, R, type, nkeys, keys, keys, &want);
    char label[128];
    snprintf(label, sizeof label, "stream %s %s build %s", kc->name, jname(type),
             build_is_right ? "right" : "left");
    if (ok) ok = same_rows(all, &want, label);
    rows_free(&want);
    for (int o = 0; o < nout; o++) pt_table_free(outs[o]);
    pt_table_free(all);
    free_parts(pp, 6);
    pt_table_free(L);
    pt_table_free(R);
    return ok;
}

TEST(join_stream) {
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    CHECK(ctx);
    const kcase *cases[] = {&KCASES[1], &KCASES[2], &KCASES[6], &KCASES[7], &KCASES[11]};
    for (int i = 0; i < 5; i++)
        for (int t = 0; t < 4; t++)
            for (int side = 0; side < 2; side++)
                CHECK_MSG(check_stream(ctx, cases[i], side, (pt_join_type)t), "%s %s side %d",
                          cases[i]->name, jname((pt_join_type)t), side);
    pt_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Out of core                                                              */
/* ------------------------------------------------------------------------ */

static int dir_entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

TEST(join_grace_matches_reference) {
    /* Forced out of core with few partitions, every join type and key kind
     * against the nested-loop reference (outer rows per partition pair). */
    const char *spill = pt_test_tmp("spill_small");
    pt_ctx *ctx = make_ctx(2, 0, spill);
    CHECK(ctx);
    pt__join_opts o;
    pt__join_opts_init(&o);
    o.force_grace = 1;
    o.grace_parts = 4;
    const kcase *cases[] = {&KCASES[1], &KCASES[3], &KCASES[6], &KCASES[7], &KCASES[11], &KCASES[9]};
    for (int i = 0; i < 6; i++) {
        CHECK_MSG(run_kcase(ctx, cases[i], 250, 170, 3, 2, 0, &o), "%s", cases[i]->name);
        CHECK_MSG(run_kcase(ctx, cases[i], 0, 40, 1, 1, 0, &o), "%s", cases[i]->name);
    }
    CHECK_EQ_I(dir_entries(spill), 0);
    pt_ctx_free(ctx);
}

/* Left: lid = i, lk = i % 700000, ls = "s<i % 1000>" (1e6 rows); right: rid =
 * j, rk = 2j (5e5 rows). Keys 0..299999 occur twice on the left. */
static pt_table *ooc_side(int left, int64_t n) {
    pt_column *c0, *c1, *c2 = NULL;
    if (pt_column_new(NULL, PT_TYPE_INT64, n, 0, &c0, NULL) ||
        pt_column_new(NULL, PT_TYPE_INT64, n, 0, &c1, NULL))
        return NULL;
    if (left && pt_column_new(NULL, PT_TYPE_UTF8, n, n * 5, &c2, NULL)) return NULL;
    int64_t *a = (int64_t *)c0->values->data, *b = (int64_t *)c1->values->data;
    for (int64_t i = 0; i < n; i++) {
        a[i] = i;
        b[i] = left ? i % 700000 : 2 * i;
        if (left) {
            char buf[16];
            int len = snprintf(buf, sizeof buf, "s%d", (int)(i % 1000));
            if (pt_column_append_str(c2, buf, len, NULL)) return NULL;
        }
    }
    c0->length = c1->length = n;
    c0->values->size = c1->values->size = n * 8;
    const char *ln[] = {"lid", "lk", "ls"}, *rn[] = {"rid", "rk"};
    pt_type ty[] = {PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_UTF8};
    pt_schema *s;
    if (pt_schema_new(left ? 3 : 2, left ? ln : rn, ty, &s, NULL)) return NULL;
    pt_column *cols[] = {c0, c1, c2};
    pt_table *t;
    if (pt_table_new(s, cols, &t, NULL)) return NULL;
    return t;
}

/* Checks a FULL join of the two sides above row by row against the closed
 * form: every left row once, with rid = lk / 2 when lk is even; every right
 * row with rk >= 700000 once with a null left side. */
static int check_ooc_full(const pt_table *out) {
    const int64_t NL = 1000000, NR = 500000;
    if (out->nrows != NL + 150000) {
        fprintf(stderr, "full join: %lld rows, expected %lld\n", (long long)out->nrows,
                (long long)(NL + 150000));
        return 0;
    }
    char *seen_l = calloc((size_t)NL, 1), *seen_r = calloc((size_t)NR, 1);
    int ok = 1;
    const pt_column *lid = out->cols[0], *lk = out->cols[1], *ls = out->cols[2], *rid = out->cols[3],
                    *rk = out->cols[4];
    for (int64_t i = 0; ok && i < out->nrows; i++) {
        if (pt_column_is_valid(lid, i)) {
            int64_t l = pt_column_i64(lid)[i], k = pt_column_i64(lk)[i];
            int64_t len;
            const char *s = pt_column_str(ls, i, &len);
            char buf[16];
            snprintf(buf, sizeof buf, "s%d", (int)(l % 1000));
            ok = l >= 0 && l < NL && !seen_l[l] && k == l % 700000 && (size_t)len == strlen(buf) &&
                 memcmp(s, buf, (size_t)len) == 0;
            if (ok) seen_l[l] = 1;
            if (ok && k % 2 == 0) {
                ok = pt_column_is_valid(rid, i) && pt_column_i64(rid)[i] == k / 2 &&
                     pt_column_i64(rk)[i] == k;
                if (ok) seen_r[k / 2] = 1;
            } else if (ok) {
                ok = !pt_column_is_valid(rid, i) && !pt_column_is_valid(rk, i);
            }
        } else {
            int64_t r = pt_column_i64(rid)[i];
            ok = !pt_column_is_valid(lk, i) && !pt_column_is_valid(ls, i) && r >= 350000 &&
                 r < NR && !seen_r[r] && pt_column_i64(rk)[i] == 2 * r;
            if (ok) seen_r[r] = 1;
        }
        if (!ok) fprintf(stderr, "full join: row %lld is wrong\n", (long long)i);
    }
    for (int64_t l = 0; ok && l < NL; l++) ok = seen_l[l];
    for (int64_t r = 0; ok && r < NR; r++) ok = seen_r[r];
    free(seen_l);
    free(seen_r);
    return ok;
}

TEST(join_out_of_core_tiny_budget) {
    const int64_t limit = 2 << 20;
    const char *spill = pt_test_tmp("spill_ooc");
    pt_ctx *big = make_ctx(2, 0, NULL);
    pt_ctx *ctx = make_ctx(2, limit, spill);
    CHECK(big && ctx);
    pt_table *L = ooc_side(1, 1000000), *R = ooc_side(0, 500000);
    CHECK(L && R);
    pt_table **lp = split(L, 8, 0), **rp = split(R, 4, 0);
    int lk = 1, rk = 1;
    pt_table *out = NULL, *mem_out = NULL;
    pt__join_stats st;
    pt_error err;
    pt_error_clear(&err);
    CHECK_OK(pt__join_ex(ctx, lp, 8, rp, 4, PT_JOIN_FULL, 1, &lk, &rk, NULL, &out, &st, &err),
             &err);
    CHECK(st.strategy == PT__JOIN_GRACE);
    CHECK(st.spill_bytes > 0);
    CHECK(st.grace_depth >= 2); /* 64 partitions are not enough at 2 MiB */
    CHECK_MSG(pt_mem_peak(pt_ctx_mem(ctx)) <= limit * 3 / 2, "peak %lld",
              (long long)pt_mem_peak(pt_ctx_mem(ctx)));
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(ctx)), 0);
    CHECK_EQ_I(dir_entries(spill), 0);
    CHECK(check_ooc_full(out));
    /* The same join in memory gives the same rows. */
    CHECK_OK(pt__join_ex(big, lp, 8, rp, 4, PT_JOIN_FULL, 1, &lk, &rk, NULL, &mem_out, &st, &err),
             &err);
    CHECK(st.strategy != PT__JOIN_GRACE);
    CHECK(check_ooc_full(mem_out));
    pt_table_free(out);
    pt_table_free(mem_out);
    free_parts(lp, 8);
    free_parts(rp, 4);
    pt_table_free(L);
    pt_table_free(R);
    pt_ctx_free(ctx);
    pt_ctx_free(big);
}

TEST(join_out_of_core_error_cleans_up) {
    /* A spill base that is a file: the join fails with the path in the
     * message and nothing is left behind. */
    const char *file = pt_test_write("not_a_dir", "x");
    pt_ctx *ctx = make_ctx(2, 0, file);
    CHECK(ctx);
    pt_table *L = make_side("l", PT_TYPE_INT64, PT_TYPE_NULL, 50, 5, 0, 1);
    pt_table *R = make_side("r", PT_TYPE_INT64, PT_TYPE_NULL, 50, 5, 0, 2);
    pt__join_opts o;
    pt__join_opts_init(&o);
    o.force_grace = 1;
    int k = 0;
    pt_table *out = NULL;
    pt_error err;
    pt_error_clear(&err);
    CHECK(pt__join_ex(ctx, &L, 1, &R, 1, PT_JOIN_INNER, 1, &k, &k, &o, &out, NULL, &err) != PT_OK);
    CHECK(out == NULL);
    CHECK_CONTAINS(err.msg, "not_a_dir");
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(ctx)), 0);
    pt_table_free(L);
    pt_table_free(R);
    pt_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* J1                                                                       */
/* ------------------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorted distinct values of an int64 column (count in *nd). */
static int64_t *distinct(const pt_column *c, int64_t *nd) {
    int64_t n = c->length;
    int64_t *v = malloc(sizeof(int64_t) * (size_t)(n + 1));
    memcpy(v, pt_column_i64(c), sizeof(int64_t) * (size_t)n);
    qsort(v, (size_t)n, sizeof(int64_t), cmp_i64);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (k == 0 || v[k - 1] != v[i]) v[k++] = v[i];
    *nd = k;
    return v;
}

static int64_t count_in(const pt_column *c, const int64_t *set, int64_t nset) {
    int64_t m = 0;
    for (int64_t i = 0; i < c->length; i++)
        m += bsearch(&pt_column_i64(c)[i], set, (size_t)nset, sizeof(int64_t), cmp_i64) != NULL;
    return m;
}

static int text_is_id(const pt_column *txt, const pt_column *id) {
    for (int64_t i = 0; i < id->length; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "id%lld", (long long)pt_column_i64(id)[i]);
        int64_t len;
        const char *s = pt_column_str(txt, i, &len);
        if ((size_t)len != strlen(buf) || memcmp(s, buf, (size_t)len) != 0) return 0;
    }
    return 1;
}

TEST(j1_generator_rules) {
    const int64_t N = 300000;
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    CHECK(ctx);
    pt_table *x, *small, *medium, *big;
    pt_error err;
    CHECK_OK(pt__gen_j1(ctx, N, 42, &x, &small, &medium, &big, &err), &err);
    CHECK_EQ_I(x->nrows, N);
    CHECK_EQ_I(small->nrows, 1); /* round(N / 1e6), at least 1 */
    CHECK_EQ_I(medium->nrows, 300);
    CHECK_EQ_I(big->nrows, N);
    CHECK_STR(x->schema->fields[5].name, "id6");
    CHECK(x->cols[4]->type == PT_TYPE_DICT && x->cols[5]->type == PT_TYPE_UTF8);
    /* id3: each key once on each side; 90% shared, keys in 1..1.1N */
    int64_t nx3, nb3, nx2, nm2;
    int64_t *x3 = distinct(x->cols[2], &nx3), *b3 = distinct(big->cols[2], &nb3);
    CHECK_EQ_I(nx3, N);
    CHECK_EQ_I(nb3, N);
    CHECK(x3[0] >= 1 && x3[N - 1] <= N + N / 10);
    CHECK_EQ_I(count_in(x->cols[2], b3, nb3), 270000);
    /* id2: all n2 = 300 keys present in x (with repeats), each once in medium,
     * 270 shared, so about 90% of x's rows match */
    int64_t *x2 = distinct(x->cols[1], &nx2), *m2 = distinct(medium->cols[1], &nm2);
    CHECK_EQ_I(nx2, 300);
    CHECK_EQ_I(nm2, 300);
    int64_t shared = 0;
    for (int64_t i = 0; i < nm2; i++)
        shared += bsearch(&m2[i], x2, (size_t)nx2, sizeof(int64_t), cmp_i64) != NULL;
    CHECK_EQ_I(shared, 270);
    double rate = (double)count_in(x->cols[1], m2, nm2) / (double)N;
    CHECK_MSG(rate > 0.88 && rate < 0.92, "id2 match rate %g", rate);
    /* text keys are "id" + the integer key */
    CHECK(text_is_id(x->cols[3], x->cols[0]));
    CHECK(text_is_id(x->cols[4], x->cols[1]));
    CHECK(text_is_id(x->cols[5], x->cols[2]));
    CHECK(text_is_id(medium->cols[3], medium->cols[1]));
    CHECK(text_is_id(big->cols[5], big->cols[2]));
    CHECK(x->cols[4]->dict != medium->cols[3]->dict);
    for (int64_t i = 0; i < N; i += 997) {
        double v = pt_column_f64(x->cols[6])[i];
        CHECK(v >= 0 && v <= 100 && fabs(v * 1e6 - nearbyint(v * 1e6)) < 1e-3);
    }
    /* q2/q4/q5 through the join kernel agree with the counts above */
    int k1 = 1, k4 = 4, km5 = 3, k2 = 2;
    pt_table *out;
    CHECK_OK(pt__join(ctx, &x, 1, &medium, 1, PT_JOIN_INNER, 1, &k1, &k1, &out, &err), &err);
    CHECK_EQ_I(out->nrows, count_in(x->cols[1], m2, nm2));
    pt_table_free(out);
    CHECK_OK(pt__join(ctx, &x, 1, &medium, 1, PT_JOIN_INNER, 1, &k4, &km5, &out, &err), &err);
    CHECK_EQ_I(out->nrows, count_in(x->cols[1], m2, nm2));
    pt_table_free(out);
    CHECK_OK(pt__join(ctx, &x, 1, &medium, 1, PT_JOIN_LEFT, 1, &k1, &k1, &out, &err), &err);
    CHECK_EQ_I(out->nrows, N);
    pt_table_free(out);
    CHECK_OK(pt__join(ctx, &x, 1, &big, 1, PT_JOIN_INNER, 1, &k2, &k2, &out, &err), &err);
    CHECK_EQ_I(out->nrows, 270000);
    pt_table_free(out);
    free(x3);
    free(b3);
    free(x2);
    free(m2);
    /* the same data with one thread */
    pt_ctx *one = make_ctx(1, 0, NULL);
    pt_table *x1, *b1;
    CHECK_OK(pt__gen_j1(one, N, 42, &x1, NULL, NULL, &b1, &err), &err);
    char why[256];
    CHECK_MSG(pt_table_equal(x, x1, why, sizeof why), "%s", why);
    CHECK_MSG(pt_table_equal(big, b1, why, sizeof why), "%s", why);
    pt_table_free(x1);
    pt_table_free(b1);
    pt_ctx_free(one);
    pt_table_free(x);
    pt_table_free(small);
    pt_table_free(medium);
    pt_table_free(big);
    pt_ctx_free(ctx);
}
