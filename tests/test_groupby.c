/* Tests of the group-by kernel (src/frame/groupby.h) against a reference
 * written here the slow, obvious way: rows sorted by key with qsort, each
 * run aggregated by hand (two-pass variance, sorting for the median). Both
 * results are sorted by key before comparing, since the kernel's row order
 * is unspecified. */
#include <dirent.h>

#include "frame/groupby.h"
#include "pt_test.h"

/* ------------------------------------------------------------------------ */
/* Values                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct val {
    int null;
    int t; /* 0 int-like, 1 float, 2 text */
    int64_t i;
    double f;
    const char *s;
    int64_t len;
} val;

static val getv(const pt_column *c, int64_t r) {
    val v;
    memset(&v, 0, sizeof v);
    if (c->type == PT_TYPE_NULL || !pt_column_is_valid(c, r)) {
        v.null = 1;
        v.t = c->type == PT_TYPE_FLOAT32 || c->type == PT_TYPE_FLOAT64 ? 1 : pt_type_is_string(c->type) ? 2 : 0;
        return v;
    }
    switch (c->type) {
    case PT_TYPE_BOOL: v.i = pt_column_bool(c, r); break;
    case PT_TYPE_INT32: v.i = pt_column_i32(c)[r]; break;
    case PT_TYPE_INT64: v.i = pt_column_i64(c)[r]; break;
    case PT_TYPE_FLOAT32: v.t = 1; v.f = pt_column_f32(c)[r]; break;
    case PT_TYPE_FLOAT64: v.t = 1; v.f = pt_column_f64(c)[r]; break;
    default: v.t = 2; v.s = pt_column_str(c, r, &v.len); break;
    }
    return v;
}

static int vcmp(const val *a, const val *b) {
    if (a->null || b->null) return b->null - a->null;
    if (a->t == 2) {
        int64_t m = a->len < b->len ? a->len : b->len;
        int c = m ? memcmp(a->s, b->s, (size_t)m) : 0;
        if (c) return c < 0 ? -1 : 1;
        return a->len < b->len ? -1 : a->len > b->len;
    }
    if (a->t == 1) {
        /* NaNs form one group (after every number), as in the kernel */
        if (isnan(a->f) || isnan(b->f)) return isnan(a->f) - isnan(b->f);
        return a->f < b->f ? -1 : a->f > b->f;
    }
    return a->i < b->i ? -1 : a->i > b->i;
}

static double vnum(const val *v) { return v->t == 1 ? v->f : (double)v->i; }

/* ------------------------------------------------------------------------ */
/* The reference                                                            */
/* ------------------------------------------------------------------------ */

typedef struct rowref {
    const pt_table *t;
    int64_t r;
    int64_t ord;
    const val *kv; /* the row's key values, read once */
} rowref;

static int g_nkeys;

static int cmp_rows(const void *x, const void *y) {
    const rowref *a = x, *b = y;
    for (int k = 0; k < g_nkeys; k++) {
        int c = vcmp(&a->kv[k], &b->kv[k]);
        if (c) return c;
    }
    return a->ord < b->ord ? -1 : a->ord > b->ord;
}

static val *read_keys(rowref *rr, int64_t n, int nkeys, const int *keys) {
    val *kv = malloc(sizeof(val) * (size_t)(n * nkeys + 1));
    for (int64_t i = 0; i < n; i++) {
        for (int k = 0; k < nkeys; k++) kv[i * nkeys + k] = getv(rr[i].t->cols[keys[k]], rr[i].r);
        rr[i].kv = kv + i * nkeys;
    }
    return kv;
}

static int cmp_val(const void *x, const void *y) { return vcmp(x, y); }
static int cmp_dbl(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Expected value of aggregate `a` over rows rr[0, n) (in input order). */
static val ref_agg(const pt__agg_spec *a, const rowref *rr, int64_t n) {
    val out;
    memset(&out, 0, sizeof out);
    if (a->kind == PT_AGG_COUNT_STAR) {
        out.i = n;
        return out;
    }
    val *v = calloc((size_t)(n + 1), sizeof(val));
    double *x = malloc(sizeof(double) * (size_t)(n + 1)), *y = malloc(sizeof(double) * (size_t)(n + 1));
    int64_t m = 0;
    for (int64_t k = 0; k < n; k++) {
        val a1 = getv(rr[k].t->cols[a->col], rr[k].r);
        if (a1.null) continue;
        if (a->kind == PT_AGG_CORR) {
            val a2 = getv(rr[k].t->cols[a->col2], rr[k].r);
            if (a2.null) continue;
            y[m] = vnum(&a2);
        }
        if (a1.t == 1 && a1.f == 0) a1.f = 0.0; /* -0.0 and 0.0 are one value */
        x[m] = a1.t == 2 ? 0 : vnum(&a1);
        v[m++] = a1;
    }
    out.t = v[0].t;
    switch (a->kind) {
    case PT_AGG_COUNT_STAR: break;
    case PT_AGG_COUNT: out.t = 0; out.i = m; break;
    case PT_AGG_COUNT_DISTINCT: {
        qsort(v, (size_t)m, sizeof *v, cmp_val);
        int64_t d = m > 0;
        for (int64_t k = 1; k < m; k++) d += vcmp(&v[k - 1], &v[k]) != 0;
        out.t = 0;
        out.i = d;
        break;
    }
    case PT_AGG_SUM: {
        const pt_column *c = rr[0].t->cols[a->col];
        int fl = c->type == PT_TYPE_FLOAT32 || c->type == PT_TYPE_FLOAT64;
        out.t = fl;
        out.null = m == 0;
        for (int64_t k = 0; k < m; k++) {
            if (fl) out.f += x[k];
            else out.i += v[k].i;
        }
        break;
    }
    case PT_AGG_MEAN: {
        out.t = 1;
        out.null = m == 0;
        double s = 0;
        for (int64_t k = 0; k < m; k++) s += x[k];
        out.f = s / (double)m;
        break;
    }
    case PT_AGG_MIN:
    case PT_AGG_MAX:
        out.null = m == 0;
        if (m) {
            out = v[0];
            for (int64_t k = 1; k < m; k++) {
                int c = vcmp(&v[k], &out);
                if (a->kind == PT_AGG_MIN ? c < 0 : c > 0) out = v[k];
            }
        }
        break;
    case PT_AGG_FIRST: if (m) out = v[0]; else out.null = 1; break;
    case PT_AGG_LAST: if (m) out = v[m - 1]; else out.null = 1; break;
    case PT_AGG_STD:
    case PT_AGG_VAR: {
        out.t = 1;
        out.null = m < 2;
        if (m >= 2) {
            double mean = 0, ss = 0;
            for (int64_t k = 0; k < m; k++) mean += x[k];
            mean /= (double)m;
            for (int64_t k = 0; k < m; k++) ss += (x[k] - mean) * (x[k] - mean);
            out.f = ss / (double)(m - 1);
            if (a->kind == PT_AGG_STD) out.f = sqrt(out.f);
        }
        break;
    }
    case PT_AGG_MEDIAN:
        out.t = 1;
        out.null = m == 0;
        if (m) {
            qsort(x, (size_t)m, sizeof *x, cmp_dbl);
            out.f = m % 2 ? x[m / 2] : (x[m / 2 - 1] + x[m / 2]) / 2;
        }
        break;
    case PT_AGG_CORR: {
        out.t = 1;
        double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
        for (int64_t k = 0; k < m; k++) {
            mx += x[k];
            my += y[k];
        }
        mx /= (double)(m ? m : 1);
        my /= (double)(m ? m : 1);
        for (int64_t k = 0; k < m; k++) {
            sxx += (x[k] - mx) * (x[k] - mx);
            syy += (y[k] - my) * (y[k] - my);
            sxy += (x[k] - mx) * (y[k] - my);
        }
        out.null = m < 2 || !(sxx > 0) || !(syy > 0);
        if (!out.null) out.f = sxy / sqrt(sxx * syy);
        break;
    }
    }
    free(v);
    free(x);
    free(y);
    return out;
}

/* Compares `res` with the reference over `parts`; fills why on mismatch. */
static int check_against_ref(pt_table *const *parts, int64_t nparts, int nkeys, const int *keys,
                             int naggs, const pt__agg_spec *aggs, const pt_table *res, char *why,
                             size_t cap) {
    int64_t total = 0;
    for (int64_t p = 0; p < nparts; p++) total += parts[p]->nrows;
    rowref *rr = malloc(sizeof(rowref) * (size_t)(total + 1));
    int64_t k = 0;
    for (int64_t p = 0; p < nparts; p++)
        for (int64_t r = 0; r < parts[p]->nrows; r++, k++) {
            rr[k].t = parts[p];
            rr[k].r = r;
            rr[k].ord = k;
        }
    g_nkeys = nkeys;
    val *kv_in = read_keys(rr, total, nkeys, keys);
    qsort(rr, (size_t)total, sizeof *rr, cmp_rows);
    /* result rows sorted by key (key columns are the first nkeys) */
    int outkeys[GB_MAX_KEYS];
    for (int i = 0; i < nkeys; i++) outkeys[i] = i;
    rowref *orr = malloc(sizeof(rowref) * (size_t)(res->nrows + 1));
    for (int64_t r = 0; r < res->nrows; r++) {
        orr[r].t = res;
        orr[r].r = r;
        orr[r].ord = r;
    }
    val *kv_out = read_keys(orr, res->nrows, nkeys, outkeys);
    qsort(orr, (size_t)res->nrows, sizeof *orr, cmp_rows);
    int ok = 1;
    int64_t grp = 0;
    for (int64_t s = 0; ok && (s < total || (nkeys == 0 && grp == 0));) {
        int64_t e = s + 1;
        if (nkeys == 0) e = total;
        else
            while (e < total) {
                int same = 1;
                for (int q = 0; q < nkeys && same; q++) same = vcmp(&rr[s].kv[q], &rr[e].kv[q]) == 0;
                if (!same) break;
                e++;
            }
        if (grp >= res->nrows) {
            snprintf(why, cap, "result has %lld rows, reference has more", (long long)res->nrows);
            ok = 0;
            break;
        }
        int64_t orow = orr[grp].r;
        for (int q = 0; q < nkeys && ok; q++) {
            val a = getv(rr[s].t->cols[keys[q]], rr[s].r), b = getv(res->cols[q], orow);
            if (vcmp(&a, &b) != 0) {
                snprintf(why, cap, "group %lld: key %d differs", (long long)grp, q);
                ok = 0;
            }
        }
        for (int j = 0; j < naggs && ok; j++) {
            val ex = ref_agg(&aggs[j], rr + s, e - s);
            val got = getv(res->cols[nkeys + j], orow);
            int same;
            if (ex.null || got.null) same = ex.null == got.null;
            else if (ex.t == 1 || got.t == 1) {
                double a = vnum(&ex), b = vnum(&got);
                same = fabs(a - b) <= 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
            } else same = vcmp(&ex, &got) == 0;
            if (!same) {
                snprintf(why, cap, "group %lld (%lld rows), aggregate %d '%s': expected %s%g/%lld got %s%g/%lld",
                         (long long)grp, (long long)(e - s), j, res->schema->fields[nkeys + j].name,
                         ex.null ? "null " : "", ex.f, (long long)ex.i, got.null ? "null " : "",
                         got.f, (long long)got.i);
                ok = 0;
            }
        }
        grp++;
        s = e;
        if (nkeys == 0) break;
    }
    if (ok && grp != res->nrows) {
        snprintf(why, cap, "result has %lld rows, reference %lld", (long long)res->nrows, (long long)grp);
        ok = 0;
    }
    free(rr);
    free(orr);
    free(kv_in);
    free(kv_out);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Data                                                                     */
/* ------------------------------------------------------------------------ */

enum { C_B, C_I32, C_I64, C_F64, C_S, C_D, C_V, C_X, C_Y, C_F32, C_WIDE, NCOLS };
static const char *col_names[NCOLS] = {"b", "i32", "i64", "f64", "s", "d", "v", "x", "y", "f32", "wide"};
static const pt_type col_types[NCOLS] = {PT_TYPE_BOOL,  PT_TYPE_INT32,   PT_TYPE_INT64, PT_TYPE_FLOAT64,
                                         PT_TYPE_UTF8,  PT_TYPE_DICT,    PT_TYPE_INT64, PT_TYPE_FLOAT64,
                                         PT_TYPE_FLOAT64, PT_TYPE_FLOAT32, PT_TYPE_INT64};
/* texts of 0, 16 and more than 16 bytes take different paths */
static const char *words[] = {"apple", "kiwi", "", "a-rather-long-banana-name", "fig", "cherry-long-name", "date", "elderberry-is-long-too"};

/* A random partition of n rows; each partition gets its own dictionary
 * (other order, extra entries) as CSV batches do. */
static pt_table *rand_part(pt_rng *rng, int64_t n, int nulls) {
    pt_column *cols[NCOLS];
    pt_column *dict;
    if (pt_column_new(NULL, PT_TYPE_UTF8, 8, 64, &dict, NULL)) return NULL;
    int perm[8];
    for (int i = 0; i < 8; i++) perm[i] = i;
    for (int i = 7; i > 0; i--) {
        int j = (int)pt_rng_below(rng, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int i = 0; i < 8; i++)
        if (pt_column_append_str(dict, words[perm[i]], -1, NULL)) return NULL;
    for (int c = 0; c < NCOLS; c++) {
        if (c == C_D) {
            if (pt_column_new_dict(NULL, dict, n, &cols[c], NULL)) return NULL;
        } else if (pt_column_new(NULL, col_types[c], n, 16, &cols[c], NULL)) {
            return NULL;
        }
    }
    pt_column_release(dict);
    for (int64_t r = 0; r < n; r++) {
        for (int c = 0; c < NCOLS; c++) {
            pt_status st;
            if (nulls && pt_rng_below(rng, 8) == 0) {
                st = pt_column_append_null(cols[c], NULL);
                if (st) return NULL;
                continue;
            }
            switch (c) {
            case C_B: st = pt_column_append_bool(cols[c], pt_rng_below(rng, 2), NULL); break;
            case C_I32: st = pt_column_append_i32(cols[c], (int32_t)pt_rng_below(rng, 7) - 3, NULL); break;
            case C_I64: st = pt_column_append_i64(cols[c], (int64_t)pt_rng_below(rng, 13) * 1000 - 5000, NULL); break;
            case C_F64: {
                static const double fv[] = {0.0, -0.0, 1.5, -2.25, 1e300, 3.0};
                st = pt_column_append_f64(cols[c], fv[pt_rng_below(rng, 6)], NULL);
                break;
            }
            case C_S: st = pt_column_append_str(cols[c], words[pt_rng_below(rng, 5)], -1, NULL); break;
            case C_D: st = pt_column_append_index(cols[c], (int32_t)pt_rng_below(rng, 6), NULL); break;
            case C_V: st = pt_column_append_i64(cols[c], (int64_t)pt_rng_below(rng, 2001) - 1000, NULL); break;
            case C_X: st = pt_column_append_f64(cols[c], 1e6 + pt_rng_uniform(rng), NULL); break;
            case C_Y: st = pt_column_append_f64(cols[c], pt_rng_normal(rng), NULL); break;
            case C_F32: st = pt_column_append_f32(cols[c], (float)pt_rng_below(rng, 100) / 4, NULL); break;
            default:
                st = pt_column_append_i64(cols[c], pt_rng_below(rng, 2) ? INT64_MAX - (int64_t)pt_rng_below(rng, 3) : INT64_MIN + (int64_t)pt_rng_below(rng, 3), NULL);
                break;
            }
            if (st) return NULL;
        }
    }
    pt_schema *s;
    if (pt_schema_new(NCOLS, col_names, col_types, &s, NULL)) return NULL;
    pt_table *t;
    if (pt_table_new(s, cols, &t, NULL)) return NULL;
    return t;
}

static pt_ctx *make_ctx(int threads, int64_t limit, const char *spill) {
    pt_ctx_opts o;
    pt_ctx_opts_init(&o);
    o.threads = threads;
    o.memory_limit = limit;
    o.spill_dir = spill;
    pt_ctx *ctx = NULL;
    if (pt_ctx_new(&o, &ctx, NULL)) return NULL;
    return ctx;
}

#define A(k, c) {k, c, -1}
/* Every kind, over columns of every type. */
static const pt__agg_spec all_aggs[] = {
    A(PT_AGG_COUNT, C_V),          A(PT_AGG_COUNT_STAR, -1),      A(PT_AGG_COUNT_DISTINCT, C_S),
    A(PT_AGG_COUNT_DISTINCT, C_F64), A(PT_AGG_COUNT_DISTINCT, C_D), A(PT_AGG_SUM, C_V),
    A(PT_AGG_SUM, C_X),            A(PT_AGG_SUM, C_B),            A(PT_AGG_SUM, C_I32),
    A(PT_AGG_MEAN, C_V),           A(PT_AGG_MEAN, C_X),           A(PT_AGG_MIN, C_V),
    A(PT_AGG_MAX, C_X),            A(PT_AGG_MIN, C_S),            A(PT_AGG_MAX, C_S),
    A(PT_AGG_MIN, C_D),            A(PT_AGG_MAX, C_D),            A(PT_AGG_FIRST, C_S),
    A(PT_AGG_LAST, C_V),           A(PT_AGG_FIRST, C_D),          A(PT_AGG_LAST, C_X),
    A(PT_AGG_FIRST, C_B),          A(PT_AGG_STD, C_X),            A(PT_AGG_VAR, C_V),
    A(PT_AGG_MEDIAN, C_X),         A(PT_AGG_MEDIAN, C_V),         {PT_AGG_CORR, C_X, C_Y},
    A(PT_AGG_MIN, C_F32),          A(PT_AGG_MAX, C_B),            A(PT_AGG_MIN, C_I32),
    A(PT_AGG_LAST, C_F32),         A(PT_AGG_MAX, C_WIDE),         A(PT_AGG_COUNT, C_S),
};
/* Only aggregates that direct mode handles (no text states, no values). */
static const pt__agg_spec fast_aggs[] = {
    A(PT_AGG_COUNT, C_V),  A(PT_AGG_COUNT_STAR, -1), A(PT_AGG_SUM, C_V),  A(PT_AGG_SUM, C_X),
    A(PT_AGG_MEAN, C_X),   A(PT_AGG_MIN, C_V),       A(PT_AGG_MAX, C_X),  A(PT_AGG_STD, C_X),
    A(PT_AGG_VAR, C_X),    A(PT_AGG_FIRST, C_V),     A(PT_AGG_LAST, C_X), {PT_AGG_CORR, C_X, C_Y},
    A(PT_AGG_MIN, C_D),    A(PT_AGG_MAX, C_I32),     A(PT_AGG_SUM, C_B),  A(PT_AGG_LAST, C_D),
};
#define NALL ((int)(sizeof all_aggs / sizeof all_aggs[0]))
#define NFAST ((int)(sizeof fast_aggs / sizeof fast_aggs[0]))

static const int keysets[][4] = {
    {C_B},  {C_I32}, {C_I64}, {C_F64}, {C_S}, {C_D}, {C_I32, C_S, C_D}, {C_B, C_I64, C_F64},
    {C_WIDE}, {C_WIDE, C_S}, {C_F32, C_D}, {C_D, C_I32},
};
static const int keyset_n[] = {1, 1, 1, 1, 1, 1, 3, 3, 1, 2, 2, 2};
#define NKEYSETS ((int)(sizeof keyset_n / sizeof keyset_n[0]))

static void free_parts(pt_table **p, int64_t n) {
    for (int64_t i = 0; i < n; i++) pt_table_free(p[i]);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

TEST(every_aggregate_and_key_type_matches_reference) {
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    CHECK(ctx);
    pt_rng rng;
    pt_rng_seed(&rng, 42);
    pt_table *parts[7];
    for (int i = 0; i < 7; i++) {
        parts[i] = rand_part(&rng, i == 3 ? 0 : 150 + 37 * i, 1);
        CHECK(parts[i]);
    }
    pt_table *whole;
    pt_error e;
    CHECK_OK(pt_table_concat(NULL, parts, 7, &whole, &e), &e);
    char why[512];
    for (int ks = 0; ks < NKEYSETS; ks++) {
        for (int which = 0; which < 2; which++) {
            const pt__agg_spec *aggs = which ? fast_aggs : all_aggs;
            int naggs = which ? NFAST : NALL;
            pt_table *r1 = NULL, *r7 = NULL;
            CHECK_OK(pt__groupby(ctx, &whole, 1, keyset_n[ks], keysets[ks], naggs, aggs, &r1, &e), &e);
            CHECK_OK(pt__groupby(ctx, parts, 7, keyset_n[ks], keysets[ks], naggs, aggs, &r7, &e), &e);
            int ok1 = check_against_ref(parts, 7, keyset_n[ks], keysets[ks], naggs, aggs, r1, why, sizeof why);
            CHECK_MSG(ok1, "keyset %d aggs %d, 1 partition: %s", ks, which, why);
            int ok7 = check_against_ref(parts, 7, keyset_n[ks], keysets[ks], naggs, aggs, r7, why, sizeof why);
            CHECK_MSG(ok7, "keyset %d aggs %d, 7 partitions: %s", ks, which, why);
            CHECK_EQ_I(r1->schema->nfields, keyset_n[ks] + naggs);
            for (int k = 0; k < keyset_n[ks]; k++) CHECK_EQ_I(r1->schema->fields[k].type, col_types[keysets[ks][k]]);
            pt_table_free(r1);
            pt_table_free(r7);
        }
    }
    pt_table_free(whole);
    free_parts(parts, 7);
    pt_ctx_free(ctx);
}

TEST(output_types_and_names) {
    pt_ctx *ctx = make_ctx(1, 0, NULL);
    pt_rng rng;
    pt_rng_seed(&rng, 1);
    pt_table *t = rand_part(&rng, 50, 0);
    CHECK(ctx && t);
    pt_error e;
    pt_table *r;
    int key = C_D;
    CHECK_OK(pt__groupby(ctx, &t, 1, 1, &key, NALL, all_aggs, &r, &e), &e);
    const pt_type want[] = {PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_INT64,
                            PT_TYPE_INT64, PT_TYPE_FLOAT64, PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_FLOAT64,
                            PT_TYPE_FLOAT64, PT_TYPE_INT64, PT_TYPE_FLOAT64, PT_TYPE_UTF8, PT_TYPE_UTF8,
                            PT_TYPE_DICT, PT_TYPE_DICT, PT_TYPE_UTF8, PT_TYPE_INT64, PT_TYPE_DICT,
                            PT_TYPE_FLOAT64, PT_TYPE_BOOL, PT_TYPE_FLOAT64, PT_TYPE_FLOAT64, PT_TYPE_FLOAT64,
                            PT_TYPE_FLOAT64, PT_TYPE_FLOAT64, PT_TYPE_FLOAT32, PT_TYPE_BOOL, PT_TYPE_INT32,
                            PT_TYPE_FLOAT32, PT_TYPE_INT64, PT_TYPE_INT64};
    CHECK_EQ_I((int)(sizeof want / sizeof want[0]), NALL);
    CHECK_EQ_I(r->schema->fields[0].type, PT_TYPE_DICT);
    CHECK_STR(r->schema->fields[0].name, "d");
    for (int j = 0; j < NALL; j++) CHECK_MSG(r->schema->fields[1 + j].type == want[j], "agg %d: %s", j, pt_type_name(r->schema->fields[1 + j].type));
    CHECK_STR(r->schema->fields[1].name, "count(v)");
    CHECK_STR(r->schema->fields[2].name, "count_star()");
    CHECK_STR(r->schema->fields[27].name, "corr(x, y)");
    pt_table_free(r);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

TEST(hand_checked_small_example) {
    /* k: a a b null b a ; v: 1 2 null 4 5 6 */
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    const char *names[] = {"k", "v"};
    pt_type types[] = {PT_TYPE_UTF8, PT_TYPE_INT64};
    pt_column *k, *v;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_UTF8, 6, 8, &k, NULL), NULL);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 6, 0, &v, NULL), NULL);
    const char *ks[] = {"a", "a", "b", NULL, "b", "a"};
    int64_t vs[] = {1, 2, -1, 4, 5, 6};
    for (int i = 0; i < 6; i++) {
        CHECK_OK(ks[i] ? pt_column_append_str(k, ks[i], 1, NULL) : pt_column_append_null(k, NULL), NULL);
        CHECK_OK(vs[i] < 0 ? pt_column_append_null(v, NULL) : pt_column_append_i64(v, vs[i], NULL), NULL);
    }
    pt_schema *s;
    CHECK_OK(pt_schema_new(2, names, types, &s, NULL), NULL);
    pt_column *cols[] = {k, v};
    pt_table *t;
    CHECK_OK(pt_table_new(s, cols, &t, NULL), NULL);
    pt__agg_spec aggs[] = {A(PT_AGG_SUM, 1), A(PT_AGG_COUNT, 1), A(PT_AGG_COUNT_STAR, -1),
                           A(PT_AGG_STD, 1), A(PT_AGG_MEDIAN, 1)};
    int key = 0;
    pt_table *r;
    pt_error e;
    CHECK_OK(pt__groupby(ctx, &t, 1, 1, &key, 5, aggs, &r, &e), &e);
    CHECK_EQ_I(r->nrows, 3);
    int seen = 0;
    for (int64_t i = 0; i < 3; i++) {
        val kv = getv(r->cols[0], i);
        if (kv.null) {
            seen |= 1;
            CHECK_EQ_I(pt_column_i64(r->cols[1])[i], 4);
            CHECK_EQ_I(pt_column_i64(r->cols[3])[i], 1);
            CHECK(!pt_column_is_valid(r->cols[4], i)); /* std of one value */
        } else if (kv.s[0] == 'a') {
            seen |= 2;
            CHECK_EQ_I(pt_column_i64(r->cols[1])[i], 9);
            CHECK_EQ_I(pt_column_i64(r->cols[2])[i], 3);
            CHECK_NEAR(pt_column_f64(r->cols[4])[i], sqrt(7.0), 1e-12); /* 1,2,6: var 7 */
            CHECK_NEAR(pt_column_f64(r->cols[5])[i], 2, 0);
        } else {
            seen |= 4;
            CHECK_EQ_I(pt_column_i64(r->cols[1])[i], 5);
            CHECK_EQ_I(pt_column_i64(r->cols[2])[i], 1);
            CHECK_EQ_I(pt_column_i64(r->cols[3])[i], 2);
        }
    }
    CHECK_EQ_I(seen, 7);
    pt_table_free(r);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

TEST(stream_pushes_match_reference) {
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    pt_rng rng;
    pt_rng_seed(&rng, 7);
    pt_table *parts[5];
    for (int i = 0; i < 5; i++) CHECK((parts[i] = rand_part(&rng, 100 + 50 * i, 1)));
    pt_error e;
    char why[512];
    for (int ks = 0; ks < NKEYSETS; ks++) {
        for (int which = 0; which < 2; which++) {
            const pt__agg_spec *aggs = which ? fast_aggs : all_aggs;
            int naggs = which ? NFAST : NALL;
            pt__groupby_stream *g;
            CHECK_OK(pt__groupby_stream_new(ctx, parts[0]->schema, keyset_n[ks], keysets[ks], naggs, aggs, &g, &e), &e);
            CHECK_OK(pt__groupby_stream_push(g, parts, 2, &e), &e);
            CHECK_OK(pt__groupby_stream_push(g, parts + 2, 1, &e), &e);
            CHECK_OK(pt__groupby_stream_push(g, parts + 3, 2, &e), &e);
            pt_table *r;
            CHECK_OK(pt__groupby_stream_finish(g, &r, &e), &e);
            int64_t groups, spilled;
            pt__groupby_stream_stats(g, &groups, &spilled);
            CHECK_EQ_I(groups, r->nrows);
            CHECK_EQ_I(spilled, 0);
            pt__groupby_stream_free(g);
            int ok = check_against_ref(parts, 5, keyset_n[ks], keysets[ks], naggs, aggs, r, why, sizeof why);
            CHECK_MSG(ok, "keyset %d aggs %d: %s", ks, which, why);
            pt_table_free(r);
        }
    }
    free_parts(parts, 5);
    pt_ctx_free(ctx);
}

TEST(zero_rows_and_global_aggregates) {
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    pt_rng rng;
    pt_rng_seed(&rng, 3);
    pt_table *empty = rand_part(&rng, 0, 1), *t = rand_part(&rng, 300, 1);
    CHECK(empty && t);
    pt_error e;
    pt_table *r;
    int key = C_I64;
    CHECK_OK(pt__groupby(ctx, &empty, 1, 1, &key, NALL, all_aggs, &r, &e), &e);
    CHECK_EQ_I(r->nrows, 0);
    CHECK_EQ_I(r->schema->nfields, 1 + NALL);
    pt_table_free(r);
    /* no keys, no rows: one row; counts 0, everything else null */
    for (int which = 0; which < 2; which++) {
        const pt__agg_spec *aggs = which ? fast_aggs : all_aggs;
        int naggs = which ? NFAST : NALL;
        CHECK_OK(pt__groupby(ctx, &empty, 1, 0, NULL, naggs, aggs, &r, &e), &e);
        CHECK_EQ_I(r->nrows, 1);
        for (int j = 0; j < naggs; j++) {
            pt_agg_kind kd = aggs[j].kind;
            if (kd == PT_AGG_COUNT || kd == PT_AGG_COUNT_STAR || kd == PT_AGG_COUNT_DISTINCT)
                CHECK_EQ_I(pt_column_i64(r->cols[j])[0], 0);
            else
                CHECK_MSG(!pt_column_is_valid(r->cols[j], 0), "agg %d should be null", j);
        }
        pt_table_free(r);
        char why[512];
        CHECK_OK(pt__groupby(ctx, &t, 1, 0, NULL, naggs, aggs, &r, &e), &e);
        CHECK_MSG(check_against_ref(&t, 1, 0, NULL, naggs, aggs, r, why, sizeof why), "%s", why);
        pt_table_free(r);
        /* the stream form, with nothing pushed */
        pt__groupby_stream *g;
        CHECK_OK(pt__groupby_stream_new(ctx, t->schema, 0, NULL, naggs, aggs, &g, &e), &e);
        CHECK_OK(pt__groupby_stream_finish(g, &r, &e), &e);
        pt__groupby_stream_free(g);
        CHECK_EQ_I(r->nrows, 1);
        pt_table_free(r);
    }
    pt_table_free(empty);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

/* An int64 table: k = perm(i) % groups, v = f(i). */
static pt_table *big_table(int64_t n, int64_t groups, int64_t off, int with_str) {
    const char *names[] = {"k", "v", "x", "s"};
    pt_type types[] = {PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_FLOAT64, PT_TYPE_UTF8};
    pt_column *cols[4];
    int nc = with_str ? 4 : 3;
    if (pt_column_new(NULL, PT_TYPE_INT64, n, 0, &cols[0], NULL) ||
        pt_column_new(NULL, PT_TYPE_INT64, n, 0, &cols[1], NULL) ||
        pt_column_new(NULL, PT_TYPE_FLOAT64, n, 0, &cols[2], NULL) ||
        (with_str && pt_column_new(NULL, PT_TYPE_UTF8, n, n * 8, &cols[3], NULL)))
        return NULL;
    for (int64_t i = off; i < off + n; i++) {
        uint64_t h = pt_splitmix64((uint64_t)i);
        int64_t k = (int64_t)(h % (uint64_t)groups) * 7919 - 3;
        if (pt_column_append_i64(cols[0], k, NULL) || pt_column_append_i64(cols[1], i % 1000, NULL) ||
            pt_column_append_f64(cols[2], (double)(h >> 40) / 7.0, NULL))
            return NULL;
        if (with_str) {
            char b[32];
            int l = snprintf(b, sizeof b, "s%llx", (unsigned long long)(h % 5000));
            if (pt_column_append_str(cols[3], b, l, NULL)) return NULL;
        }
    }
    pt_schema *s;
    if (pt_schema_new(nc, names, types, &s, NULL)) return NULL;
    pt_table *t;
    if (pt_table_new(s, cols, &t, NULL)) return NULL;
    return t;
}

TEST(million_distinct_groups) {
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    const int64_t n = 1000000;
    const char *names[] = {"k", "v"};
    pt_type types[] = {PT_TYPE_INT64, PT_TYPE_INT64};
    pt_column *cols[2];
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, n, 0, &cols[0], NULL), NULL);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, n, 0, &cols[1], NULL), NULL);
    int64_t *kk = (int64_t *)cols[0]->values->data, *vv = (int64_t *)cols[1]->values->data;
    /* keys: an odd multiplier permutes [0, n) spread over a wide range */
    for (int64_t i = 0; i < n; i++) {
        kk[i] = (int64_t)(((uint64_t)i * 2654435761ULL) % (uint64_t)n) * 1000003;
        vv[i] = i;
    }
    for (int c = 0; c < 2; c++) {
        cols[c]->length = n;
        cols[c]->values->size = n * 8;
    }
    pt_schema *s;
    CHECK_OK(pt_schema_new(2, names, types, &s, NULL), NULL);
    pt_table *t, *parts[8];
    CHECK_OK(pt_table_new(s, cols, &t, NULL), NULL);
    for (int p = 0; p < 8; p++) CHECK_OK(pt_table_slice(t, n * p / 8, n * (p + 1) / 8 - n * p / 8, &parts[p], NULL), NULL);
    pt__agg_spec aggs[] = {A(PT_AGG_SUM, 1), A(PT_AGG_COUNT_STAR, -1), A(PT_AGG_FIRST, 1)};
    int key = 0;
    pt_table *r;
    pt_error e;
    CHECK_OK(pt__groupby(ctx, parts, 8, 1, &key, 3, aggs, &r, &e), &e);
    CHECK_EQ_I(r->nrows, n);
    /* each key appears once, with v = its row: check through the key */
    uint8_t *seen = calloc((size_t)n, 1);
    const int64_t *rk = pt_column_i64(r->cols[0]), *rs = pt_column_i64(r->cols[1]);
    const int64_t *rc = pt_column_i64(r->cols[2]), *rf = pt_column_i64(r->cols[3]);
    int bad = 0;
    for (int64_t i = 0; i < n && !bad; i++) {
        int64_t row = rs[i];
        if (row < 0 || row >= n || seen[row] || rc[i] != 1 || rf[i] != row || rk[i] != kk[row]) bad = 1;
        else seen[row] = 1;
    }
    free(seen);
    CHECK(!bad);
    pt_table_free(r);
    for (int p = 0; p < 8; p++) pt_table_free(parts[p]);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

TEST(int64_sum_overflow_is_an_error) {
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    const char *names[] = {"g", "big"};
    pt_type types[] = {PT_TYPE_INT32, PT_TYPE_INT64};
    pt_column *c0, *c1;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT32, 4, 0, &c0, NULL), NULL);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 4, 0, &c1, NULL), NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_OK(pt_column_append_i32(c0, i % 2, NULL), NULL);
        CHECK_OK(pt_column_append_i64(c1, INT64_MAX / 2 + 10, NULL), NULL);
    }
    pt_schema *s;
    CHECK_OK(pt_schema_new(2, names, types, &s, NULL), NULL);
    pt_column *cols[] = {c0, c1};
    pt_table *t, *halves[2];
    CHECK_OK(pt_table_new(s, cols, &t, NULL), NULL);
    CHECK_OK(pt_table_slice(t, 0, 2, &halves[0], NULL), NULL);
    CHECK_OK(pt_table_slice(t, 2, 2, &halves[1], NULL), NULL);
    pt__agg_spec agg = A(PT_AGG_SUM, 1);
    int key = 0;
    pt_table *r = NULL;
    pt_error e;
    /* within one chunk, and across partitions (in the merge) */
    CHECK_EQ_I(pt__groupby(ctx, &t, 1, 1, &key, 1, &agg, &r, &e), PT_ERANGE);
    CHECK_CONTAINS(e.msg, "sum(big)");
    CHECK_CONTAINS(e.msg, "overflow");
    CHECK(r == NULL);
    CHECK_EQ_I(pt__groupby(ctx, halves, 2, 1, &key, 1, &agg, &r, &e), PT_ERANGE);
    CHECK_CONTAINS(e.msg, "sum(big)");
    CHECK_EQ_I(pt__groupby(ctx, halves, 2, 0, NULL, 1, &agg, &r, &e), PT_ERANGE);
    /* the mean of the same values is fine */
    agg.kind = PT_AGG_MEAN;
    CHECK_OK(pt__groupby(ctx, halves, 2, 1, &key, 1, &agg, &r, &e), &e);
    pt_table_free(r);
    pt_table_free(halves[0]);
    pt_table_free(halves[1]);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

TEST(argument_errors_name_the_column) {
    pt_ctx *ctx = make_ctx(1, 0, NULL);
    pt_rng rng;
    pt_rng_seed(&rng, 5);
    pt_table *t = rand_part(&rng, 10, 0);
    CHECK(ctx && t);
    pt_error e;
    pt_table *r = NULL;
    int bad_key = 99;
    pt__agg_spec ok = A(PT_AGG_SUM, C_V);
    CHECK_EQ_I(pt__groupby(ctx, &t, 1, 1, &bad_key, 1, &ok, &r, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "position 99");
    int key = C_I32;
    pt__agg_spec sum_s = A(PT_AGG_SUM, C_S);
    CHECK_EQ_I(pt__groupby(ctx, &t, 1, 1, &key, 1, &sum_s, &r, &e), PT_ETYPE);
    CHECK_CONTAINS(e.msg, "'s'");
    CHECK_CONTAINS(e.msg, "sum");
    pt__agg_spec mean_d = A(PT_AGG_MEAN, C_D);
    CHECK_EQ_I(pt__groupby(ctx, &t, 1, 1, &key, 1, &mean_d, &r, &e), PT_ETYPE);
    CHECK_CONTAINS(e.msg, "'d'");
    pt__agg_spec corr = {PT_AGG_CORR, C_X, C_S};
    CHECK_EQ_I(pt__groupby(ctx, &t, 1, 1, &key, 1, &corr, &r, &e), PT_ETYPE);
    CHECK_CONTAINS(e.msg, "'s'");
    pt__agg_spec corr2 = {PT_AGG_CORR, C_X, 42};
    CHECK_EQ_I(pt__groupby(ctx, &t, 1, 1, &key, 1, &corr2, &r, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "42");
    pt__agg_spec far = A(PT_AGG_MIN, -3);
    CHECK_EQ_I(pt__groupby(ctx, &t, 1, 1, &key, 1, &far, &r, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "position -3");
    /* a partition whose types disagree with the stream's schema */
    pt__groupby_stream *g;
    CHECK_OK(pt__groupby_stream_new(ctx, t->schema, 1, &key, 1, &ok, &g, &e), &e);
    pt_table *sl;
    const char *names[] = {"v", "b"};
    CHECK_OK(pt_table_select(t, names, 2, &sl, &e), &e);
    CHECK_EQ_I(pt__groupby_stream_push(g, &sl, 1, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "columns");
    pt_table_free(sl);
    pt__groupby_stream_free(g);
    CHECK(r == NULL);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

static int dir_entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* Streams `nb` batches through a context with a tiny memory limit and
 * compares with the in-memory result. */
static void spill_case(int64_t rows, int64_t groups, int64_t limit, int nkeys, const int *keys,
                       int naggs, const pt__agg_spec *aggs, int with_str) {
    const char *dir = pt_test_tmp(with_str ? "spill_str" : "spill");
    pt_ctx *big = make_ctx(2, 0, NULL), *small = make_ctx(2, limit, dir);
    CHECK(big && small);
    const int nb = 10;
    pt_table *b[10];
    for (int i = 0; i < nb; i++) CHECK((b[i] = big_table(rows / nb, groups, rows / nb * i, with_str)));
    pt_error e;
    pt_table *want;
    CHECK_OK(pt__groupby(big, b, nb, nkeys, keys, naggs, aggs, &want, &e), &e);
    CHECK(want->nrows > groups / 2);
    pt__groupby_stream *g;
    CHECK_OK(pt__groupby_stream_new(small, b[0]->schema, nkeys, keys, naggs, aggs, &g, &e), &e);
    for (int i = 0; i < nb; i++) CHECK_OK(pt__groupby_stream_push(g, &b[i], 1, &e), &e);
    pt_table *got;
    CHECK_OK(pt__groupby_stream_finish(g, &got, &e), &e);
    int64_t ngroups, spilled;
    pt__groupby_stream_stats(g, &ngroups, &spilled);
    pt__groupby_stream_free(g);
    CHECK_EQ_I(ngroups, want->nrows);
    CHECK_MSG(spilled > 0, "nothing was spilled");
    CHECK(dir_entries(dir) <= 0);
    int64_t peak = pt_mem_peak(pt_ctx_mem(small));
    CHECK_MSG(peak <= limit * 3 / 2, "peak %lld > 1.5 x %lld", (long long)peak, (long long)limit);
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(small)), 0);
    /* same groups and values: compare against the reference on the same rows */
    char why[512];
    CHECK_MSG(check_against_ref(b, nb, nkeys, keys, naggs, aggs, got, why, sizeof why), "%s", why);
    CHECK_EQ_I(got->nrows, want->nrows);
    pt_table_free(want);
    pt_table_free(got);
    for (int i = 0; i < nb; i++) pt_table_free(b[i]);
    pt_ctx_free(big);
    pt_ctx_free(small);
}

TEST(stream_spills_under_a_tiny_budget) {
    int key = 0;
    pt__agg_spec aggs[] = {A(PT_AGG_SUM, 1), A(PT_AGG_COUNT_STAR, -1), A(PT_AGG_MEAN, 2),
                           A(PT_AGG_STD, 2), A(PT_AGG_MIN, 1), A(PT_AGG_FIRST, 1)};
    spill_case(1000000, 200000, 1536 * 1024, 1, &key, 6, aggs, 0);
}

TEST(stream_spills_text_and_holistic_states) {
    int keys[] = {3, 0};
    pt__agg_spec aggs[] = {A(PT_AGG_MEDIAN, 2), A(PT_AGG_COUNT_DISTINCT, 1), A(PT_AGG_MAX, 3),
                           A(PT_AGG_LAST, 3), A(PT_AGG_VAR, 2), A(PT_AGG_COUNT_STAR, -1)};
    spill_case(200000, 20000, 1024 * 1024, 2, keys, 6, aggs, 1);
}

TEST(budget_too_small_fails_cleanly) {
    const char *dir = pt_test_tmp("spill_fail");
    pt_ctx *ctx = make_ctx(2, 2048, dir);
    pt_table *t = big_table(20000, 5000, 0, 0);
    CHECK(ctx && t);
    int key = 0;
    pt__agg_spec agg = A(PT_AGG_SUM, 1);
    pt_table *r = NULL;
    pt_error e;
    CHECK_EQ_I(pt__groupby(ctx, &t, 1, 1, &key, 1, &agg, &r, &e), PT_EBUDGET);
    CHECK_CONTAINS(e.msg, "budget");
    CHECK(r == NULL);
    CHECK(dir_entries(dir) <= 0);
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(ctx)), 0);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Many groups: the radix path and short text keys                          */
/* ------------------------------------------------------------------------ */

enum { M_K64, M_KS, M_KD, M_KF, M_I32, M_V, M_X, M_Y, M_B, M_KP, M_KQ, NMCOLS };
static const char *m_names[NMCOLS] = {"k64", "ks", "kd", "kf", "i32", "v", "x", "y", "b", "kp", "kq"};
static const pt_type m_types[NMCOLS] = {PT_TYPE_INT64, PT_TYPE_UTF8,    PT_TYPE_DICT,
                                        PT_TYPE_FLOAT64, PT_TYPE_INT32, PT_TYPE_INT64,
                                        PT_TYPE_FLOAT64, PT_TYPE_FLOAT64, PT_TYPE_BOOL,
                                        PT_TYPE_UTF8,    PT_TYPE_UTF8};

/* A partition whose keys take thousands of values: texts of 0 to 15 bytes
 * (8 and 15 included), a dictionary of 40 words permuted per partition,
 * floats with -0.0 and NaN, and texts that pack into a few bits: ids
 * "id0042" and numbers of 0 to 2 digits; about one value in 10 is null. */
static pt_table *many_part(pt_rng *rng, int64_t n) {
    pt_column *cols[NMCOLS], *dict;
    if (pt_column_new(NULL, PT_TYPE_UTF8, 40, 400, &dict, NULL)) return NULL;
    int perm[40];
    for (int i = 0; i < 40; i++) perm[i] = i;
    for (int i = 39; i > 0; i--) {
        int j = (int)pt_rng_below(rng, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int i = 0; i < 40; i++) {
        char b[16];
        int l = snprintf(b, sizeof b, "w%d", perm[i]);
        if (pt_column_append_str(dict, b, l, NULL)) return NULL;
    }
    for (int c = 0; c < NMCOLS; c++) {
        pt_status st = c == M_KD ? pt_column_new_dict(NULL, dict, n, &cols[c], NULL)
                                 : pt_column_new(NULL, m_types[c], n, 16 * n, &cols[c], NULL);
        if (st) return NULL;
    }
    pt_column_release(dict);
    static const double fv[] = {0.0, -0.0, 1.5, -2.25, 3.0, 7.0};
    for (int64_t r = 0; r < n; r++) {
        for (int c = 0; c < NMCOLS; c++) {
            pt_status st;
            if (c != M_Y && pt_rng_below(rng, 10) == 0) {
                if (pt_column_append_null(cols[c], NULL)) return NULL;
                continue;
            }
            switch (c) {
            case M_K64: st = pt_column_append_i64(cols[c], (int64_t)pt_rng_below(rng, 3000) * 977 - 100000, NULL); break;
            case M_KS: {
                /* lengths 0..15: a number, padded or cut to a length of
                 * its own */
                char b[48];
                uint64_t k = pt_rng_below(rng, 4000);
                snprintf(b, sizeof b, "%llu%s", (unsigned long long)k, "abcdefghijklmnop");
                st = pt_column_append_str(cols[c], b, (int64_t)(k % 16), NULL);
                break;
            }
            case M_KD: st = pt_column_append_index(cols[c], (int32_t)pt_rng_below(rng, 40), NULL); break;
            case M_KF: {
                double d = pt_rng_below(rng, 50) == 0 ? NAN : fv[pt_rng_below(rng, 6)] + (double)pt_rng_below(rng, 300);
                st = pt_column_append_f64(cols[c], d, NULL);
                break;
            }
            case M_I32: st = pt_column_append_i32(cols[c], (int32_t)pt_rng_below(rng, 50) - 25, NULL); break;
            case M_KP:
            case M_KQ: {
                char b[32];
                uint64_t k = pt_rng_below(rng, c == M_KP ? 3000 : 40);
                int l = snprintf(b, sizeof b, c == M_KP ? "id%04llu" : "%llu", (unsigned long long)k);
                if (c == M_KQ && k == 0) l = 0; /* the empty text */
                st = pt_column_append_str(cols[c], b, l, NULL);
                break;
            }
            case M_V: st = pt_column_append_i64(cols[c], (int64_t)pt_rng_below(rng, 2001) - 1000, NULL); break;
            case M_X: st = pt_column_append_f64(cols[c], 1e6 + pt_rng_uniform(rng), NULL); break;
            case M_Y: st = pt_column_append_f64(cols[c], pt_rng_normal(rng), NULL); break;
            default: st = pt_column_append_bool(cols[c], pt_rng_below(rng, 2), NULL); break;
            }
            if (st) return NULL;
        }
    }
    pt_schema *s;
    if (pt_schema_new(NMCOLS, m_names, m_types, &s, NULL)) return NULL;
    pt_table *t;
    if (pt_table_new(s, cols, &t, NULL)) return NULL;
    return t;
}

/* What the radix path computes (no MEDIAN, COUNT_DISTINCT, FIRST, LAST or
 * text states). */
static const pt__agg_spec radix_aggs[] = {
    A(PT_AGG_COUNT, M_V),  A(PT_AGG_COUNT_STAR, -1), A(PT_AGG_SUM, M_V),  A(PT_AGG_SUM, M_X),
    A(PT_AGG_SUM, M_B),    A(PT_AGG_MEAN, M_V),      A(PT_AGG_MEAN, M_X), A(PT_AGG_MIN, M_V),
    A(PT_AGG_MAX, M_X),    A(PT_AGG_MIN, M_KD),      A(PT_AGG_MAX, M_I32), A(PT_AGG_MAX, M_B),
    A(PT_AGG_STD, M_X),    A(PT_AGG_VAR, M_V),       {PT_AGG_CORR, M_X, M_Y}, A(PT_AGG_SUM, M_I32),
};
#define NRADIX ((int)(sizeof radix_aggs / sizeof radix_aggs[0]))

static const int m_keysets[][3] = {{M_K64}, {M_KS}, {M_K64, M_KS, M_KD}, {M_KF, M_KS},
                                   {M_KD, M_I32}, {M_KS, M_B}, {M_KP}, {M_KQ, M_B},
                                   {M_KP, M_KQ}, {M_KQ, M_I32}, {M_KQ, M_K64, M_KP}};
static const int m_keyset_n[] = {1, 1, 3, 2, 2, 2, 1, 2, 2, 2, 3};

static void set_radix(const char *mode) {
    if (mode) setenv("PARTITA_GROUPBY_RADIX", mode, 1);
    else unsetenv("PARTITA_GROUPBY_RADIX");
}

TEST(radix_path_and_short_texts_match_reference) {
    pt_rng rng;
    pt_rng_seed(&rng, 99);
    pt_table *parts[5];
    for (int i = 0; i < 5; i++) CHECK((parts[i] = many_part(&rng, i == 2 ? 0 : 1500 + 400 * i)));
    char why[512];
    static const char *modes[] = {"force", "off"};
    for (int threads = 1; threads <= 2; threads++) {
        pt_ctx *ctx = make_ctx(threads, 0, NULL);
        CHECK(ctx);
        for (int md = 0; md < 2; md++) {
            set_radix(modes[md]);
            for (int ks = 0; ks < (int)(sizeof m_keyset_n / sizeof m_keyset_n[0]); ks++) {
                pt_table *r = NULL;
                pt_error e;
                CHECK_OK(pt__groupby(ctx, parts, 5, m_keyset_n[ks], m_keysets[ks], NRADIX, radix_aggs, &r, &e), &e);
                int ok = check_against_ref(parts, 5, m_keyset_n[ks], m_keysets[ks], NRADIX, radix_aggs, r, why, sizeof why);
                CHECK_MSG(ok, "radix %s, %d threads, keyset %d: %s", modes[md], threads, ks, why);
                for (int k = 0; k < m_keyset_n[ks]; k++) CHECK_EQ_I(r->schema->fields[k].type, m_types[m_keysets[ks][k]]);
                CHECK_STR(r->schema->fields[m_keyset_n[ks] + 1].name, "count_star()");
                pt_table_free(r);
            }
        }
        set_radix(NULL);
        pt_ctx_free(ctx);
    }
    free_parts(parts, 5);
}

TEST(radix_sum_overflow_is_an_error) {
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    pt_table *t = big_table(5000, 3000, 0, 0);
    CHECK(ctx && t);
    /* v holds i % 1000: put one huge value in next to a positive one */
    int64_t *v = (int64_t *)t->cols[1]->values->data;
    int64_t *k = (int64_t *)t->cols[0]->values->data;
    k[10] = k[11];
    v[10] = INT64_MAX - 3;
    v[11] = 500;
    int key = 0;
    pt__agg_spec agg = A(PT_AGG_SUM, 1);
    pt_table *r = NULL;
    pt_error e;
    set_radix("force");
    CHECK_EQ_I(pt__groupby(ctx, &t, 1, 1, &key, 1, &agg, &r, &e), PT_ERANGE);
    set_radix(NULL);
    CHECK_CONTAINS(e.msg, "sum(v) overflows int64");
    CHECK_CONTAINS(e.msg, "'v'");
    CHECK(r == NULL);
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(ctx)), 0);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

/* With many groups the radix path is chosen by itself; every key appears
 * twice, at rows i and i + n / 2, so the sums have a closed form. */
TEST(radix_chosen_for_many_groups) {
    pt_ctx *ctx = make_ctx(2, 0, NULL);
    const int64_t n = 600000, h = n / 2;
    const char *names[] = {"k", "v"};
    pt_type types[] = {PT_TYPE_INT64, PT_TYPE_INT64};
    pt_column *cols[2];
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, n, 0, &cols[0], NULL), NULL);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, n, 0, &cols[1], NULL), NULL);
    int64_t *kk = (int64_t *)cols[0]->values->data, *vv = (int64_t *)cols[1]->values->data;
    for (int64_t i = 0; i < n; i++) {
        kk[i] = (int64_t)(((uint64_t)(i % h) * 2654435761ULL) % (uint64_t)h) * 1000003;
        vv[i] = i;
    }
    for (int c = 0; c < 2; c++) {
        cols[c]->length = n;
        cols[c]->values->size = n * 8;
    }
    pt_schema *s;
    CHECK_OK(pt_schema_new(2, names, types, &s, NULL), NULL);
    pt_table *t, *parts[6];
    CHECK_OK(pt_table_new(s, cols, &t, NULL), NULL);
    for (int p = 0; p < 6; p++) CHECK_OK(pt_table_slice(t, n * p / 6, n * (p + 1) / 6 - n * p / 6, &parts[p], NULL), NULL);
    pt__agg_spec aggs[] = {A(PT_AGG_SUM, 1), A(PT_AGG_COUNT_STAR, -1), A(PT_AGG_MIN, 1), A(PT_AGG_MEAN, 1)};
    int key = 0;
    pt_table *r;
    pt_error e;
    CHECK_OK(pt__groupby(ctx, parts, 6, 1, &key, 4, aggs, &r, &e), &e);
    CHECK_EQ_I(r->nrows, h);
    uint8_t *seen = calloc((size_t)h, 1);
    const int64_t *rk = pt_column_i64(r->cols[0]), *rs = pt_column_i64(r->cols[1]);
    const int64_t *rc = pt_column_i64(r->cols[2]), *rm = pt_column_i64(r->cols[3]);
    const double *ra = pt_column_f64(r->cols[4]);
    int bad = 0;
    for (int64_t i = 0; i < h && !bad; i++) {
        int64_t lo = rm[i]; /* the first row of the key */
        if (lo < 0 || lo >= h || seen[lo] || rc[i] != 2 || rs[i] != 2 * lo + h || rk[i] != kk[lo] ||
            ra[i] != (double)lo + (double)h / 2)
            bad = 1;
        else seen[lo] = 1;
    }
    free(seen);
    CHECK(!bad);
    CHECK(r->cols[0]->validity == NULL);
    pt_table_free(r);
    for (int p = 0; p < 6; p++) pt_table_free(parts[p]);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

TEST(radix_under_a_small_budget_falls_back) {
    const char *dir = pt_test_tmp("radix_budget");
    pt_ctx *ctx = make_ctx(2, 1536 * 1024, dir);
    pt_table *b[4];
    for (int i = 0; i < 4; i++) CHECK((b[i] = big_table(50000, 40000, 50000 * i, 0)));
    int key = 0;
    pt__agg_spec aggs[] = {A(PT_AGG_SUM, 1), A(PT_AGG_COUNT_STAR, -1), A(PT_AGG_MAX, 2)};
    pt_table *r = NULL;
    pt_error e;
    set_radix("force");
    CHECK_OK(pt__groupby(ctx, b, 4, 1, &key, 3, aggs, &r, &e), &e);
    set_radix(NULL);
    char why[512];
    CHECK_MSG(check_against_ref(b, 4, 1, &key, 3, aggs, r, why, sizeof why), "%s", why);
    CHECK(pt_ctx_spilled_bytes(ctx) > 0);
    CHECK(dir_entries(dir) <= 0);
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(ctx)), 0);
    pt_table_free(r);
    for (int i = 0; i < 4; i++) pt_table_free(b[i]);
    pt_ctx_free(ctx);
}

/* Direct mode (small key codes) with MEDIAN and COUNT_DISTINCT of numbers:
 * the values are gathered per group apart from the other aggregates. */
TEST(direct_median_and_distinct_match_reference) {
    pt_rng rng;
    pt_rng_seed(&rng, 5);
    pt_table *parts[6];
    for (int i = 0; i < 6; i++) CHECK((parts[i] = rand_part(&rng, i == 4 ? 0 : 700 + 150 * i, 1)));
    const pt__agg_spec aggs[] = {A(PT_AGG_MEDIAN, C_X),  A(PT_AGG_STD, C_X),
                                 A(PT_AGG_MEDIAN, C_V),  A(PT_AGG_COUNT_DISTINCT, C_V),
                                 A(PT_AGG_COUNT_DISTINCT, C_F64), A(PT_AGG_COUNT_DISTINCT, C_D),
                                 A(PT_AGG_MEDIAN, C_I32), A(PT_AGG_COUNT_STAR, -1),
                                 A(PT_AGG_MEDIAN, C_F32), A(PT_AGG_SUM, C_V)};
    const int naggs = (int)(sizeof aggs / sizeof aggs[0]);
    static const int ksets[][2] = {{C_I32}, {C_B, C_D}, {C_D, C_I32}};
    static const int kn[] = {1, 2, 2};
    char why[512];
    for (int threads = 1; threads <= 2; threads++) {
        pt_ctx *ctx = make_ctx(threads, 0, NULL);
        for (int ks = 0; ks < 3; ks++) {
            pt_table *r = NULL;
            pt_error e;
            CHECK_OK(pt__groupby(ctx, parts, 6, kn[ks], ksets[ks], naggs, aggs, &r, &e), &e);
            int ok = check_against_ref(parts, 6, kn[ks], ksets[ks], naggs, aggs, r, why, sizeof why);
            CHECK_MSG(ok, "%d threads, keyset %d: %s", threads, ks, why);
            pt_table_free(r);
        }
        /* keys of packed short texts */
        {
            pt_table *mp[3];
            for (int i = 0; i < 3; i++) CHECK((mp[i] = many_part(&rng, 3000)));
            const int kk[][2] = {{M_KQ}, {M_KQ, M_B}};
            const pt__agg_spec ma[] = {A(PT_AGG_MEDIAN, M_X), A(PT_AGG_COUNT_DISTINCT, M_V),
                                       A(PT_AGG_MEAN, M_V), A(PT_AGG_MIN, M_KD)};
            for (int q = 0; q < 2; q++) {
                pt_table *r = NULL;
                pt_error e;
                CHECK_OK(pt__groupby(ctx, mp, 3, q + 1, kk[q], 4, ma, &r, &e), &e);
                CHECK_MSG(check_against_ref(mp, 3, q + 1, kk[q], 4, ma, r, why, sizeof why), "%s", why);
                CHECK_EQ_I(r->schema->fields[0].type, PT_TYPE_UTF8);
                pt_table_free(r);
            }
            free_parts(mp, 3);
        }
        /* no keys: one global median */
        pt_table *r = NULL;
        pt_error e;
        CHECK_OK(pt__groupby(ctx, parts, 6, 0, NULL, naggs, aggs, &r, &e), &e);
        CHECK_MSG(check_against_ref(parts, 6, 0, NULL, naggs, aggs, r, why, sizeof why), "%s", why);
        pt_table_free(r);
        pt_ctx_free(ctx);
    }
    free_parts(parts, 6);
}
