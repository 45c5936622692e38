/*
 * Tests of the sort kernel (src/frame/sort.h) against a reference in this
 * file: qsort of row indices with a plain comparator written from the
 * ordering rules (nulls last, NaN after numbers, -0.0 == 0.0, text by bytes
 * with a prefix first), ties broken by the original index, which is what a
 * stable sort must produce. Every table carries an "id" column (the row
 * number) that is never a key, so row order is checked exactly.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "frame/sort.h"
#include "pt_test.h"

enum { C_ID, C_B, C_I32, C_I64, C_F32, C_F64, C_S, C_D, C_Z, NCOLS };

static const char *dict_words[] = {"pear", "apple", "fig", "apple", "", "banana",
                                   "app",  "zucchini-with-a-long-name", "zucchini-with-a-long-nam"};

static pt_column *make_dict(uint64_t seed) {
    /* Entries in a seed-dependent rotation, so different dictionaries order
     * the same texts differently. */
    int nw = (int)(sizeof dict_words / sizeof *dict_words);
    pt_column *d;
    if (pt_column_new(NULL, PT_TYPE_UTF8, nw, 128, &d, NULL)) return NULL;
    for (int i = 0; i < nw; i++) {
        const char *w = dict_words[(i + (int)seed) % nw];
        if (pt_column_append_str(d, w, (int64_t)strlen(w), NULL)) return NULL;
    }
    return d;
}

/* A table with every type; nulls, NaN, -0.0, extremes, shared prefixes and
 * embedded NUL bytes in text; few distinct values so that ties abound. */
static pt_table *make_table(int64_t n, uint64_t seed, int64_t id0) {
    static const char *names[NCOLS] = {"id", "b", "i32", "i64", "f32", "f64", "s", "d", "z"};
    pt_type types[NCOLS] = {PT_TYPE_INT64, PT_TYPE_BOOL, PT_TYPE_INT32, PT_TYPE_INT64,
                            PT_TYPE_FLOAT32, PT_TYPE_FLOAT64, PT_TYPE_UTF8, PT_TYPE_DICT,
                            PT_TYPE_NULL};
    pt_column *cols[NCOLS];
    pt_column *dict = make_dict(seed);
    if (!dict) return NULL;
    for (int j = 0; j < NCOLS; j++) {
        pt_status st = j == C_D ? pt_column_new_dict(NULL, dict, n, &cols[j], NULL)
                                : pt_column_new(NULL, types[j], n, n * 8, &cols[j], NULL);
        if (st) return NULL;
    }
    int64_t ndict = dict->length;
    pt_column_release(dict);
    pt_rng r;
    pt_rng_seed(&r, seed);
    static const int64_t i64s[] = {INT64_MIN, -5, -1, 0, 1, 7, 1000000007, INT64_MAX};
    static const double f64s[] = {-INFINITY, -1e300, -2.5, -0.0, 0.0, 1e-300, 3.25, 1e300, INFINITY};
    for (int64_t i = 0; i < n; i++) {
        pt_status st = pt_column_append_i64(cols[C_ID], id0 + i, NULL);
        for (int j = 1; j < NCOLS && !st; j++) {
            if (j == C_Z || pt_rng_below(&r, 10) == 0) {
                st = pt_column_append_null(cols[j], NULL);
                continue;
            }
            switch (j) {
            case C_B: st = pt_column_append_bool(cols[j], pt_rng_below(&r, 2), NULL); break;
            case C_I32:
                st = pt_column_append_i32(cols[j], (int32_t)pt_rng_below(&r, 40) - 20 +
                                                       (pt_rng_below(&r, 50) == 0 ? INT32_MIN + 20 : 0), NULL);
                break;
            case C_I64:
                st = pt_column_append_i64(cols[j], pt_rng_below(&r, 3) == 0
                                                       ? i64s[pt_rng_below(&r, 8)]
                                                       : (int64_t)pt_rng_next(&r), NULL);
                break;
            case C_F32: {
                float v = pt_rng_below(&r, 8) == 0 ? NAN : (float)(pt_rng_below(&r, 30)) - 15.0f;
                if (pt_rng_below(&r, 10) == 0) v = -0.0f;
                st = pt_column_append_f32(cols[j], v, NULL);
                break;
            }
            case C_F64: {
                uint64_t k = pt_rng_below(&r, 12);
                double v = k < 9 ? f64s[k] : k == 9 ? -NAN : k == 10 ? NAN : pt_rng_normal(&r);
                st = pt_column_append_f64(cols[j], v, NULL);
                break;
            }
            case C_S: {
                char buf[64];
                int len = 0;
                if (pt_rng_below(&r, 3) == 0) {
                    memcpy(buf, "a-shared-prefix-longer-than-7/", 30);
                    len = 30;
                }
                int extra = (int)pt_rng_below(&r, 11);
                for (int q = 0; q < extra; q++) {
                    static const char alpha[] = {'a', 'b', '\0', 'z', (char)0xe9};
                    buf[len++] = alpha[pt_rng_below(&r, 5)];
                }
                st = pt_column_append_str(cols[j], buf, len, NULL);
                break;
            }
            case C_D: st = pt_column_append_index(cols[j], (int32_t)pt_rng_below(&r, (uint64_t)ndict), NULL); break;
            default: break;
            }
        }
        if (st) return NULL;
    }
    pt_schema *s;
    if (pt_schema_new(NCOLS, names, types, &s, NULL)) return NULL;
    pt_table *t;
    if (pt_table_new(s, cols, &t, NULL)) return NULL;
    return t;
}

/* ------------------------------------------------------------------------ */
/* The reference                                                            */
/* ------------------------------------------------------------------------ */

static const pt_table *ref_t;
static const pt__sort_key *ref_keys;
static int ref_nkeys;

static int ref_cell(const pt_column *c, int64_t i, int64_t j, bool desc) {
    bool vi = c->type != PT_TYPE_NULL && pt_column_is_valid(c, i);
    bool vj = c->type != PT_TYPE_NULL && pt_column_is_valid(c, j);
    if (!vi && !vj) return 0;
    if (!vi) return 1;
    if (!vj) return -1;
    int r = 0;
    switch (c->type) {
    case PT_TYPE_BOOL: r = (int)pt_column_bool(c, i) - (int)pt_column_bool(c, j); break;
    case PT_TYPE_INT32: r = (pt_column_i32(c)[i] > pt_column_i32(c)[j]) - (pt_column_i32(c)[i] < pt_column_i32(c)[j]); break;
    case PT_TYPE_INT64: r = (pt_column_i64(c)[i] > pt_column_i64(c)[j]) - (pt_column_i64(c)[i] < pt_column_i64(c)[j]); break;
    case PT_TYPE_FLOAT32:
    case PT_TYPE_FLOAT64: {
        double x = pt_column_get_f64(c, i), y = pt_column_get_f64(c, j);
        if (isnan(x) || isnan(y)) return isnan(x) && isnan(y) ? 0 : isnan(x) ? 1 : -1;
        r = (x > y) - (x < y);
        break;
    }
    default: {
        int64_t li, lj;
        const char *a = pt_column_str(c, i, &li), *b = pt_column_str(c, j, &lj);
        int64_t m = li < lj ? li : lj;
        r = memcmp(a, b, (size_t)m);
        if (r == 0) r = (li > lj) - (li < lj);
        r = (r > 0) - (r < 0);
        break;
    }
    }
    return desc ? -r : r;
}

static int ref_cmp(const void *pa, const void *pb) {
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    for (int k = 0; k < ref_nkeys; k++) {
        int c = ref_cell(ref_t->cols[ref_keys[k].col], a, b, ref_keys[k].desc);
        if (c) return c;
    }
    return (a > b) - (a < b);
}

static int64_t *ref_perm(const pt_table *t, int nkeys, const pt__sort_key *keys) {
    int64_t *p = malloc((size_t)(t->nrows ? t->nrows : 1) * sizeof *p);
    for (int64_t i = 0; i < t->nrows; i++) p[i] = i;
    ref_t = t;
    ref_keys = keys;
    ref_nkeys = nkeys;
    qsort(p, (size_t)t->nrows, sizeof *p, ref_cmp);
    return p;
}

static pt_table *ref_sorted(const pt_table *t, int nkeys, const pt__sort_key *keys, int64_t limit) {
    int64_t *p = ref_perm(t, nkeys, keys);
    int64_t n = limit < t->nrows ? limit : t->nrows;
    /* pt_column_take, column by column; all-null columns are sliced instead
     * (pt_column_take leaks a bitmap on PT_TYPE_NULL columns, reported). */
    int nc = t->schema->nfields;
    pt_column **cols = calloc((size_t)nc + 1, sizeof *cols);
    pt_table *out = NULL;
    pt_schema *sc = NULL;
    bool ok = pt_schema_copy(t->schema, &sc, NULL) == PT_OK;
    for (int j = 0; j < nc && ok; j++)
        ok = (t->cols[j]->type == PT_TYPE_NULL ? pt_column_slice(t->cols[j], 0, n, &cols[j], NULL)
                                               : pt_column_take(NULL, t->cols[j], p, n, &cols[j], NULL)) == PT_OK;
    if (ok && pt_table_new(sc, cols, &out, NULL) != PT_OK) out = NULL;
    free(cols);
    free(p);
    return out;
}

static pt_ctx *new_ctx(int threads, int64_t limit) {
    pt_ctx_opts o;
    pt_ctx_opts_init(&o);
    o.threads = threads;
    o.memory_limit = limit;
    o.spill_dir = pt_test_tmp("spill");
    mkdir(o.spill_dir, 0700);
    pt_ctx *ctx = NULL;
    if (pt_ctx_new(&o, &ctx, NULL)) return NULL;
    return ctx;
}

/* Zero-copy slices of t at the given cut points (nparts pieces). */
static pt_table **split(const pt_table *t, int64_t nparts) {
    pt_table **parts = calloc((size_t)nparts, sizeof *parts);
    for (int64_t p = 0; p < nparts; p++) {
        int64_t a = t->nrows * p / nparts, b = t->nrows * (p + 1) / nparts;
        if (pt_table_slice(t, a, b - a, &parts[p], NULL)) return NULL;
    }
    return parts;
}

static void free_parts(pt_table **parts, int64_t n) {
    for (int64_t p = 0; p < n; p++) pt_table_free(parts[p]);
    free(parts);
}

/* Sorts t (as nparts slices) and compares with the reference. */
static bool sort_matches(pt_ctx *ctx, const pt_table *t, int64_t nparts, int nkeys,
                         const pt__sort_key *keys, char *why, size_t cap) {
    pt_table **parts = split(t, nparts);
    pt_table *got = NULL, *want = ref_sorted(t, nkeys, keys, INT64_MAX);
    pt_error e;
    pt_status st = pt__sort(ctx, parts, nparts, nkeys, keys, &got, &e);
    bool ok = st == PT_OK && want && pt_table_equal(got, want, why, cap);
    if (st != PT_OK) snprintf(why, cap, "pt__sort: %.200s", e.msg);
    pt_table_free(got);
    pt_table_free(want);
    free_parts(parts, nparts);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* In-memory sorts                                                          */
/* ------------------------------------------------------------------------ */

TEST(every_type_asc_desc_with_nulls_and_nan) {
    pt_ctx *ctx = new_ctx(2, 0);
    CHECK(ctx);
    pt_table *t = make_table(3000, 1, 0);
    CHECK(t);
    char why[256];
    for (int c = 1; c < NCOLS; c++) {
        for (int desc = 0; desc < 2; desc++) {
            pt__sort_key k = {c, desc != 0};
            CHECK_MSG(sort_matches(ctx, t, 1, 1, &k, why, sizeof why), "col %d desc %d: %s", c, desc, why);
            CHECK_MSG(sort_matches(ctx, t, 7, 1, &k, why, sizeof why), "col %d desc %d, 7 parts: %s", c, desc, why);
        }
    }
    pt_table_free(t);
    pt_ctx_free(ctx);
}

TEST(multi_key_mixes) {
    pt_ctx *ctx = new_ctx(2, 0);
    CHECK(ctx);
    pt_table *t = make_table(4000, 2, 0);
    CHECK(t);
    const pt__sort_key mixes[][3] = {
        {{C_D, false}, {C_F64, true}, {C_I32, false}},
        {{C_S, true}, {C_B, false}, {C_F32, true}},
        {{C_B, true}, {C_S, false}, {C_I64, true}},
        {{C_Z, false}, {C_F32, false}, {C_D, true}},
        {{C_I32, true}, {C_D, false}, {C_S, true}},
    };
    char why[256];
    for (size_t m = 0; m < sizeof mixes / sizeof *mixes; m++) {
        CHECK_MSG(sort_matches(ctx, t, 1, 3, mixes[m], why, sizeof why), "mix %zu: %s", m, why);
        CHECK_MSG(sort_matches(ctx, t, 13, 3, mixes[m], why, sizeof why), "mix %zu, 13 parts: %s", m, why);
    }
    pt_table_free(t);
    pt_ctx_free(ctx);
}

TEST(stable_and_degenerate_sizes) {
    pt_ctx *ctx = new_ctx(2, 0);
    CHECK(ctx);
    char why[256];
    pt__sort_key k[2] = {{C_Z, false}, {C_B, true}};
    /* All-equal key (a null column): input order. */
    pt_table *t = make_table(5000, 3, 0);
    CHECK(t);
    CHECK_MSG(sort_matches(ctx, t, 3, 1, k, why, sizeof why), "%s", why);
    /* Two distinct values: ties must keep the input (id) order. */
    CHECK_MSG(sort_matches(ctx, t, 3, 2, k, why, sizeof why), "%s", why);
    pt_table **parts = split(t, 1);
    pt_table *got;
    pt_error e;
    CHECK_OK(pt__sort(ctx, parts, 1, 1, &k[1], &got, &e), &e);
    const int64_t *ids = pt_column_i64(got->cols[C_ID]);
    for (int64_t i = 1; i < got->nrows; i++) {
        const pt_column *b = got->cols[C_B];
        bool same = pt_column_is_valid(b, i) == pt_column_is_valid(b, i - 1) &&
                    (!pt_column_is_valid(b, i) || pt_column_bool(b, i) == pt_column_bool(b, i - 1));
        CHECK_MSG(!same || ids[i] > ids[i - 1], "row %lld: ids %lld then %lld", (long long)i,
                  (long long)ids[i - 1], (long long)ids[i]);
    }
    pt_table_free(got);
    free_parts(parts, 1);
    /* No keys: a copy in input order. */
    CHECK_MSG(sort_matches(ctx, t, 4, 0, NULL, why, sizeof why), "%s", why);
    pt_table_free(t);
    for (int64_t n = 0; n <= 2; n++) {
        t = make_table(n, 4, 0);
        CHECK(t);
        pt__sort_key k2[2] = {{C_S, false}, {C_F64, true}};
        CHECK_MSG(sort_matches(ctx, t, 1, 2, k2, why, sizeof why), "n=%lld: %s", (long long)n, why);
        CHECK_MSG(sort_matches(ctx, t, 2, 2, k2, why, sizeof why), "n=%lld: %s", (long long)n, why);
        pt_table_free(t);
    }
    pt_ctx_free(ctx);
}

TEST(partitions_with_different_dictionaries) {
    pt_ctx *ctx = new_ctx(2, 0);
    CHECK(ctx);
    pt_table *ts[5];
    for (int p = 0; p < 5; p++) {
        ts[p] = make_table(700 + 100 * p, (uint64_t)(10 + p), 10000 * p);
        CHECK(ts[p]);
    }
    pt_table *all;
    pt_error e;
    CHECK_OK(pt_table_concat(NULL, ts, 5, &all, &e), &e);
    const pt__sort_key keysets[][2] = {{{C_D, false}, {C_I64, false}},
                                       {{C_F32, true}, {C_D, true}}};
    for (int q = 0; q < 2; q++) {
        pt_table *got, *want = ref_sorted(all, 2, keysets[q], INT64_MAX);
        CHECK(want);
        CHECK_OK(pt__sort(ctx, ts, 5, 2, keysets[q], &got, &e), &e);
        char why[256];
        CHECK_MSG(pt_table_equal(got, want, why, sizeof why), "keys %d: %s", q, why);
        pt_table_free(got);
        pt_table_free(want);
    }
    pt_table_free(all);
    for (int p = 0; p < 5; p++) pt_table_free(ts[p]);
    pt_ctx_free(ctx);
}

TEST(indices_match_reference) {
    pt_ctx *ctx = new_ctx(2, 0);
    CHECK(ctx);
    pt_table *t = make_table(2500, 5, 0);
    CHECK(t);
    pt__sort_key k[2] = {{C_S, false}, {C_I32, true}};
    int64_t *perm;
    pt_error e;
    CHECK_OK(pt__sort_indices(ctx, t, 2, k, &perm, &e), &e);
    int64_t *want = ref_perm(t, 2, k);
    for (int64_t i = 0; i < t->nrows; i++)
        CHECK_MSG(perm[i] == want[i], "perm[%lld] = %lld, want %lld", (long long)i, (long long)perm[i],
                  (long long)want[i]);
    free(want);
    pt_free(perm);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

TEST(topn_is_prefix_of_full_sort) {
    pt_ctx *ctx = new_ctx(2, 0);
    CHECK(ctx);
    pt_table *t = make_table(20000, 6, 0);
    CHECK(t);
    pt_table **parts = split(t, 6);
    const pt__sort_key keysets[][2] = {{{C_F64, false}, {C_S, true}}, {{C_D, true}, {C_B, false}}};
    const int64_t ns[] = {0, 1, 7, 100, 2499, 2500, 19999, 20000, 25000};
    pt_error e;
    for (int q = 0; q < 2; q++) {
        pt_table *full;
        CHECK_OK(pt__sort(ctx, parts, 6, 2, keysets[q], &full, &e), &e);
        for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
            pt_table *got, *want;
            CHECK_OK(pt__sort_topn(ctx, parts, 6, 2, keysets[q], ns[i], &got, &e), &e);
            int64_t m = ns[i] < full->nrows ? ns[i] : full->nrows;
            CHECK_OK(pt_table_slice(full, 0, m, &want, &e), &e);
            char why[256];
            CHECK_MSG(pt_table_equal(got, want, why, sizeof why), "keys %d n=%lld: %s", q,
                      (long long)ns[i], why);
            pt_table_free(want);
            pt_table_free(got);
        }
        pt_table *ref = ref_sorted(t, 2, keysets[q], INT64_MAX);
        char why[256];
        CHECK_MSG(pt_table_equal(full, ref, why, sizeof why), "%s", why);
        pt_table_free(ref);
        pt_table_free(full);
    }
    /* No keys: the first rows in input order. */
    pt_table *got, *want;
    CHECK_OK(pt__sort_topn(ctx, parts, 6, 0, NULL, 5000, &got, &e), &e);
    CHECK_OK(pt_table_slice(t, 0, 5000, &want, &e), &e);
    char why0[256];
    CHECK_MSG(pt_table_equal(got, want, why0, sizeof why0), "%s", why0);
    pt_table_free(got);
    pt_table_free(want);
    CHECK(pt__sort_topn(ctx, parts, 6, 1, keysets[0], -1, &(pt_table *){NULL}, &e) == PT_EINVAL);
    CHECK_CONTAINS(e.msg, "n must be >= 0");
    free_parts(parts, 6);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

/* Enough rows for the parallel paths (sample sort, parallel LSD, parallel
 * group refinement, text levels) on 1 and 2 threads; the reference is
 * computed once per key set. */
TEST(large_parallel_paths) {
    pt_table *t = make_table(270000, 7, 0);
    CHECK(t);
    const pt__sort_key keysets[][2] = {{{C_F64, false}, {C_ID, false}},
                                       {{C_I64, true}, {C_ID, false}},
                                       {{C_D, false}, {C_F32, true}},
                                       {{C_S, false}, {C_I32, true}}};
    pt_ctx *ctx[2] = {new_ctx(1, 0), new_ctx(2, 0)};
    CHECK(ctx[0] && ctx[1]);
    pt_table **parts = split(t, 5);
    for (size_t q = 0; q < sizeof keysets / sizeof *keysets; q++) {
        int nk = keysets[q][1].col == C_ID ? 1 : 2;
        pt_table *want = ref_sorted(t, nk, keysets[q], INT64_MAX);
        CHECK(want);
        for (int c = 0; c < 2; c++) {
            pt_table *got;
            pt_error e;
            int64_t np = q % 2 ? 5 : 1;
            CHECK_OK(pt__sort(ctx[c], np == 1 ? (pt_table **)&t : parts, np, nk, keysets[q], &got, &e), &e);
            char why[256];
            CHECK_MSG(pt_table_equal(got, want, why, sizeof why), "threads %d keys %zu: %s", c + 1, q, why);
            pt_table_free(got);
        }
        pt_table_free(want);
    }
    free_parts(parts, 5);
    pt_ctx_free(ctx[0]);
    pt_ctx_free(ctx[1]);
    pt_table_free(t);
}

/* A full permutation of many rows goes through the two-pass scatter; here
 * with partitions that each have their own dictionary (remapped to one). */
TEST(large_partitions_with_different_dictionaries) {
    pt_table *ts[3];
    for (int p = 0; p < 3; p++) {
        ts[p] = make_table(100000, (uint64_t)(20 + p), 100000 * p);
        CHECK(ts[p]);
    }
    pt_table *all;
    pt_error e;
    CHECK_OK(pt_table_concat(NULL, ts, 3, &all, &e), &e);
    pt__sort_key k[2] = {{C_D, true}, {C_F64, false}};
    pt_table *want = ref_sorted(all, 2, k, INT64_MAX);
    CHECK(want);
    pt_ctx *ctx = new_ctx(2, 0);
    CHECK(ctx);
    pt_table *got;
    CHECK_OK(pt__sort(ctx, ts, 3, 2, k, &got, &e), &e);
    char why[256];
    CHECK_MSG(pt_table_equal(got, want, why, sizeof why), "%s", why);
    /* One dictionary for the result, each text once. */
    const pt_column *d = got->cols[C_D]->dict;
    for (int64_t i = 1; i < d->length; i++) {
        int64_t la, lb;
        const char *a = pt_column_str(d, i - 1, &la), *b = pt_column_str(d, i, &lb);
        CHECK(la != lb || memcmp(a, b, (size_t)la) != 0);
    }
    pt_table_free(got);
    pt_table_free(want);
    pt_table_free(all);
    for (int p = 0; p < 3; p++) pt_table_free(ts[p]);
    pt_ctx_free(ctx);
}

TEST(errors_name_the_problem) {
    pt_ctx *ctx = new_ctx(2, 0);
    CHECK(ctx);
    pt_table *t = make_table(10, 8, 0);
    CHECK(t);
    pt_table *out = NULL;
    pt_error e;
    pt__sort_key bad = {42, false};
    CHECK(pt__sort(ctx, &t, 1, 1, &bad, &out, &e) == PT_EINVAL);
    CHECK_CONTAINS(e.msg, "keys[0].col = 42 is out of range");
    CHECK(pt__sort(ctx, &t, 0, 0, NULL, &out, &e) == PT_EINVAL);
    CHECK_CONTAINS(e.msg, "nparts=0");
    pt_table *sel;
    const char *nm[] = {"id", "b"};
    CHECK_OK(pt_table_select(t, nm, 2, &sel, &e), &e);
    pt_table *mixed[2] = {t, sel};
    pt__sort_key k = {0, false};
    CHECK(pt__sort(ctx, mixed, 2, 1, &k, &out, &e) == PT_EINVAL);
    CHECK_CONTAINS(e.msg, "parts[1] has 2 columns");
    pt_table_free(sel);
    pt_ctx_free(ctx);
    /* A budget too small for the keys. */
    ctx = new_ctx(2, 100);
    CHECK(ctx);
    CHECK(pt__sort(ctx, &t, 1, 1, &k, &out, &e) == PT_EBUDGET);
    CHECK_CONTAINS(e.msg, "sort keys");
    pt_table_free(t);
    pt_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* External sort                                                            */
/* ------------------------------------------------------------------------ */

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

/* Pushes t in batches of `batch` rows, drains the stream, returns the rows
 * concatenated (NULL on failure, message in e). */
static pt_table *stream_sort(pt_ctx *ctx, const pt_table *t, int64_t batch, int nkeys,
                             const pt__sort_key *keys, int64_t *runs, int64_t *max_batch,
                             pt_error *e) {
    pt__sort_stream *s;
    if (pt__sort_stream_new(ctx, t->schema, nkeys, keys, &s, e)) return NULL;
    for (int64_t a = 0; a < t->nrows; a += batch) {
        pt_table *sl;
        int64_t n = t->nrows - a < batch ? t->nrows - a : batch;
        if (pt_table_slice(t, a, n, &sl, e)) return NULL;
        pt_status st = pt__sort_stream_push(s, &sl, 1, e);
        pt_table_free(sl);
        if (st) {
            pt__sort_stream_free(s);
            return NULL;
        }
    }
    pt_table **outs = NULL;
    int64_t nout = 0;
    *max_batch = 0;
    for (;;) {
        pt_table *b;
        if (pt__sort_stream_next(s, &b, e)) {
            pt__sort_stream_free(s);
            return NULL;
        }
        if (!b) break;
        if (b->nrows > *max_batch) *max_batch = b->nrows;
        /* Batches are charged to the budget: keep unbudgeted copies, as a
         * consumer that writes them out would. */
        pt_table *copy;
        pt_status st = pt_table_concat(NULL, &b, 1, &copy, e);
        pt_table_free(b);
        if (st) {
            pt__sort_stream_free(s);
            return NULL;
        }
        outs = realloc(outs, (size_t)(nout + 1) * sizeof *outs);
        outs[nout++] = copy;
    }
    pt__sort_stream_stats(s, runs, NULL);
    pt__sort_stream_free(s);
    pt_table *all = NULL;
    if (nout > 0 && pt_table_concat(NULL, outs, (int)nout, &all, e)) all = NULL;
    for (int64_t i = 0; i < nout; i++) pt_table_free(outs[i]);
    free(outs);
    return all;
}

TEST(stream_without_spill_matches_reference) {
    pt_ctx *ctx = new_ctx(2, 0);
    CHECK(ctx);
    pt_table *t = make_table(30000, 9, 0);
    CHECK(t);
    pt__sort_key k[3] = {{C_D, false}, {C_F64, true}, {C_I32, false}};
    int64_t runs = -1, maxb;
    pt_error e;
    pt_table *got = stream_sort(ctx, t, 4096, 3, k, &runs, &maxb, &e);
    CHECK_MSG(got != NULL, "%s", e.msg);
    CHECK_EQ_I(runs, 0);
    pt_table *want = ref_sorted(t, 3, k, INT64_MAX);
    char why[256];
    CHECK_MSG(pt_table_equal(got, want, why, sizeof why), "%s", why);
    pt_table_free(got);
    pt_table_free(want);
    /* Empty input: no batches at all. */
    pt__sort_stream *s;
    CHECK_OK(pt__sort_stream_new(ctx, t->schema, 1, k, &s, &e), &e);
    pt_table *b = (pt_table *)1;
    CHECK_OK(pt__sort_stream_next(s, &b, &e), &e);
    CHECK(b == NULL);
    CHECK(pt__sort_stream_push(s, &t, 1, &e) == PT_EINVAL);
    CHECK_CONTAINS(e.msg, "after pt__sort_stream_next");
    pt__sort_stream_free(s);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

TEST(stream_spills_with_all_types) {
    /* Every type (dict, text, NaN, nulls) through spill files and merges. */
    pt_ctx *ctx = new_ctx(2, 1 << 20);
    CHECK(ctx);
    pt_table *t = make_table(60000, 11, 0);
    CHECK(t);
    pt__sort_key k[3] = {{C_S, true}, {C_D, false}, {C_F32, false}};
    int64_t runs = 0, maxb;
    pt_error e;
    pt_table *got = stream_sort(ctx, t, 1000, 3, k, &runs, &maxb, &e);
    CHECK_MSG(got != NULL, "%s", e.msg);
    CHECK_MSG(runs > 1, "runs = %lld", (long long)runs);
    pt_table *want = ref_sorted(t, 3, k, INT64_MAX);
    char why[256];
    CHECK_MSG(pt_table_equal(got, want, why, sizeof why), "%s", why);
    pt_table_free(got);
    pt_table_free(want);
    pt_table_free(t);
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(ctx)), 0);
    pt_ctx_free(ctx);
}

/* ThreadSanitizer slows these loops down about 30 times: the heaviest
 * tests run on smaller inputs there (still many runs and spills); the
 * Release and ASan runs use the full sizes. */
#if defined(__SANITIZE_THREAD__)
#define SORT_TEST_SCALE 5
#else
#define SORT_TEST_SCALE 1
#endif

TEST(stream_million_rows_in_two_megabytes) {
    const int64_t n = 1000000 / SORT_TEST_SCALE, limit = 2 << 20;
    /* Input: id, a random int64 key with ties, a float, short text, a dict. */
    const char *names[] = {"id", "k", "x", "s", "d"};
    pt_type types[] = {PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_FLOAT64, PT_TYPE_UTF8, PT_TYPE_DICT};
    pt_column *cols[5], *dict;
    CHECK(pt_column_new(NULL, PT_TYPE_UTF8, 4, 64, &dict, NULL) == PT_OK);
    const char *dw[] = {"red", "green", "blue", "cyan"};
    for (int i = 0; i < 4; i++) CHECK(pt_column_append_str(dict, dw[i], (int64_t)strlen(dw[i]), NULL) == PT_OK);
    for (int j = 0; j < 4; j++) CHECK(pt_column_new(NULL, types[j], n, n * 6, &cols[j], NULL) == PT_OK);
    CHECK(pt_column_new_dict(NULL, dict, n, &cols[4], NULL) == PT_OK);
    pt_column_release(dict);
    pt_rng r;
    pt_rng_seed(&r, 99);
    for (int64_t i = 0; i < n; i++) {
        char buf[16];
        int len = snprintf(buf, sizeof buf, "s%u", (unsigned)pt_rng_below(&r, 1000));
        pt_status st = pt_column_append_i64(cols[0], i, NULL);
        st |= pt_column_append_i64(cols[1], (int64_t)pt_rng_below(&r, 200000) - 100000, NULL);
        st |= pt_column_append_f64(cols[2], pt_rng_uniform(&r), NULL);
        st |= pt_column_append_str(cols[3], buf, len, NULL);
        st |= pt_column_append_index(cols[4], (int32_t)pt_rng_below(&r, 4), NULL);
        CHECK(st == PT_OK);
    }
    pt_schema *sc;
    CHECK(pt_schema_new(5, names, types, &sc, NULL) == PT_OK);
    pt_table *t;
    CHECK(pt_table_new(sc, cols, &t, NULL) == PT_OK);

    pt__sort_key k[2] = {{1, false}, {4, true}};
    pt_error e;
    pt_ctx *big = new_ctx(2, 0);
    CHECK(big);
    pt_table *want;
    CHECK_OK(pt__sort(big, &t, 1, 2, k, &want, &e), &e);
    /* The in-memory result against the reference, once. */
    int64_t *perm = ref_perm(t, 2, k);
    const int64_t *wid = pt_column_i64(want->cols[0]);
    for (int64_t i = 0; i < n; i++) CHECK_MSG(wid[i] == perm[i], "row %lld", (long long)i);
    free(perm);

    pt_ctx *ctx = new_ctx(2, limit);
    CHECK(ctx);
    const char *spill = pt_test_tmp("spill");
    int before = dir_entries(spill);
    int64_t runs = 0, maxb = 0;
    pt_table *got = stream_sort(ctx, t, 50000, 2, k, &runs, &maxb, &e);
    CHECK_MSG(got != NULL, "%s", e.msg);
    char why[256];
    CHECK_MSG(pt_table_equal(got, want, why, sizeof why), "%s", why);
    CHECK_MSG(runs > 1, "runs = %lld", (long long)runs);
    int64_t peak = pt_mem_peak(pt_ctx_mem(ctx));
    CHECK_MSG(peak <= limit * 3 / 2, "peak %lld > 1.5 x %lld", (long long)peak, (long long)limit);
    CHECK_MSG(maxb * 40 <= limit, "output batches of %lld rows", (long long)maxb);
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(ctx)), 0);
    CHECK_EQ_I(dir_entries(spill), before);
    pt_table_free(got);
    pt_table_free(want);
    pt_table_free(t);
    pt_ctx_free(ctx);
    pt_ctx_free(big);
}

/* Allocation failures at many points of a spilling sort: every one must
 * come back as an error (never a crash), and the spill directory and the
 * budget must be clean once the stream is freed. */
TEST(stream_failures_leave_nothing_behind) {
    pt_table *t = make_table(20000, 12, 0);
    CHECK(t);
    pt__sort_key k[2] = {{C_I32, false}, {C_S, true}};
    const char *spill = pt_test_tmp("spill");
    int failures = 0;
    int successes = 0;
    /* Dense up to the ~50000 allocations a whole run makes, then one run
     * that should not fail at all. */
    for (int64_t after = 0; after < 300000;
         after = after < 60000 ? after + 2999 * SORT_TEST_SCALE : after * 5) {
        pt_ctx *ctx = new_ctx(2, 512 << 10);
        CHECK(ctx);
        int before = dir_entries(spill);
        pt__sort_stream *s;
        pt_error e;
        CHECK_OK(pt__sort_stream_new(ctx, t->schema, 2, k, &s, &e), &e);
        pt_alloc_fail_after(after);
        pt_status st = PT_OK;
        for (int64_t a = 0; a < t->nrows && st == PT_OK; a += 2000) {
            pt_table *sl = NULL;
            st = pt_table_slice(t, a, 2000, &sl, &e);
            if (st == PT_OK) st = pt__sort_stream_push(s, &sl, 1, &e);
            pt_table_free(sl);
        }
        int64_t rows = 0;
        while (st == PT_OK) {
            pt_table *b = NULL;
            st = pt__sort_stream_next(s, &b, &e);
            if (st != PT_OK || !b) break;
            rows += b->nrows;
            pt_table_free(b);
        }
        pt_alloc_fail_after(-1);
        if (st != PT_OK) {
            failures++;
            CHECK_MSG(e.msg[0] != 0, "failure %s without a message", pt_status_name(st));
        } else {
            successes++;
            CHECK_EQ_I(rows, t->nrows);
        }
        pt__sort_stream_free(s);
        CHECK_EQ_I(dir_entries(spill), before);
        CHECK_EQ_I(pt_mem_used(pt_ctx_mem(ctx)), 0);
        pt_ctx_free(ctx);
    }
    CHECK_MSG(failures > 10 / SORT_TEST_SCALE && successes > 0, "%d failures, %d successes", failures,
              successes);
    pt_table_free(t);
}
