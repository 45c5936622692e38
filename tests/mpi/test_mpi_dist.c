/*
 * test_mpi_dist.c - the exchange primitives of src/frame/dist.h under
 * `mpirun -n N` (N = 2, 3, 4). Each rank builds its share of a global table
 * whose rows are a formula of the global row number g, so every rank can
 * check anything it receives on its own: every received row must equal the
 * formula for its g, and the global multiset of rows is checked with
 * allreduced counts and sums of a per-row fingerprint against closed forms
 * over all g. Exit status 0 only if every rank passed every check.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame/dist.h"
#include "partita.h"

#include "mpi_check.h"

/* ------------------------------------------------------------------------ */
/* The global table                                                         */
/* ------------------------------------------------------------------------ */

static const char *const WORDS[] = {"apple", "kiwi", "fig", "banana", "cherry", "date", "", "lime"};

/* Columns: g int64 (the row number), k int64 key (1009 distinct values, in
 * scrambled order), w dict (8 words, nulls), v float64 (nulls, -0.0),
 * s utf8 (distinct text), b bool. */
static int64_t f_k(int64_t g) { return (g * 7919) % 1009 - 300; }
static bool f_w_null(int64_t g) { return g % 10 == 3; }
static const char *f_w(int64_t g) { return WORDS[(g * 5 + g / 7) % 8]; }
static bool f_v_null(int64_t g) { return g % 17 == 4; }
static double f_v(int64_t g) { return g % 23 == 0 ? -0.0 : (double)((g * 104729) % 10007) / 8 - 600; }
static int f_s(int64_t g, char *buf, size_t cap) { return snprintf(buf, cap, "s%07lld", (long long)((g * 31) % 100003)); }
static bool f_b(int64_t g) { return (g / 3) % 2 == 0; }

static pt_table *build_rows(int64_t lo, int64_t hi, bool text_as_utf8, bool key_as_f64) {
    const char *names[] = {"g", "k", "w", "v", "s", "b"};
    pt_type types[] = {PT_TYPE_INT64, key_as_f64 ? PT_TYPE_FLOAT64 : PT_TYPE_INT64,
                       text_as_utf8 ? PT_TYPE_UTF8 : PT_TYPE_DICT, PT_TYPE_FLOAT64,
                       PT_TYPE_UTF8, PT_TYPE_BOOL};
    pt_column *c[6], *dict = NULL;
    int64_t n = hi - lo;
    if (!text_as_utf8) {
        /* Each rank's dictionary holds the words in another order, so the
         * receivers really have to merge different dictionaries. */
        if (pt_column_new(NULL, PT_TYPE_UTF8, 8, 64, &dict, NULL)) return NULL;
        for (int j = 0; j < 8; j++) {
            const char *wd = WORDS[(j + g_rank * 3) % 8];
            if (pt_column_append_str(dict, wd, (int64_t)strlen(wd), NULL)) return NULL;
        }
    }
    for (int j = 0; j < 6; j++) {
        pt_status st = j == 2 && !text_as_utf8 ? pt_column_new_dict(NULL, dict, n, &c[j], NULL)
                                               : pt_column_new(NULL, types[j], n, 16 * n, &c[j], NULL);
        if (st) return NULL;
    }
    pt_column_release(dict);
    for (int64_t g = lo; g < hi; g++) {
        char buf[32];
        int len = f_s(g, buf, sizeof buf);
        pt_status st = pt_column_append_i64(c[0], g, NULL);
        st |= key_as_f64 ? pt_column_append_f64(c[1], (double)f_k(g), NULL)
                         : pt_column_append_i64(c[1], f_k(g), NULL);
        if (f_w_null(g)) {
            st |= pt_column_append_null(c[2], NULL);
        } else if (text_as_utf8) {
            st |= pt_column_append_str(c[2], f_w(g), (int64_t)strlen(f_w(g)), NULL);
        } else {
            int32_t ix = 0;
            for (int j = 0; j < 8; j++)
                if (strcmp(WORDS[(j + g_rank * 3) % 8], f_w(g)) == 0) ix = j;
            st |= pt_column_append_index(c[2], ix, NULL);
        }
        st |= f_v_null(g) ? pt_column_append_null(c[3], NULL) : pt_column_append_f64(c[3], f_v(g), NULL);
        st |= pt_column_append_str(c[4], buf, len, NULL);
        st |= pt_column_append_bool(c[5], f_b(g), NULL);
        if (st) return NULL;
    }
    pt_schema *s;
    if (pt_schema_new(6, names, types, &s, NULL)) return NULL;
    pt_table *t;
    if (pt_table_new(s, c, &t, NULL)) return NULL;
    return t;
}

/* Row i of t equals the formula for its own g (returns the bad column). */
static const char *row_bad(const pt_table *t, int64_t i, int64_t *g_out) {
    pt_column *const *c = t->cols;
    int64_t g = pt_column_i64(c[0])[i];
    *g_out = g;
    if (g < 0) return "g";
    double k = c[1]->type == PT_TYPE_FLOAT64 ? pt_column_f64(c[1])[i] : (double)pt_column_i64(c[1])[i];
    if (k != (double)f_k(g)) return "k";
    if (pt_column_is_valid(c[2], i) == f_w_null(g)) return "w null";
    if (!f_w_null(g)) {
        int64_t len;
        const char *s = pt_column_str(c[2], i, &len);
        if (len != (int64_t)strlen(f_w(g)) || memcmp(s, f_w(g), (size_t)len)) return "w";
    }
    if (pt_column_is_valid(c[3], i) == f_v_null(g)) return "v null";
    if (!f_v_null(g)) {
        double v = pt_column_f64(c[3])[i], want = f_v(g);
        if (v != want || signbit(v) != signbit(want)) return "v";
    }
    char buf[32];
    int len = f_s(g, buf, sizeof buf);
    int64_t l;
    const char *s = pt_column_str(c[4], i, &l);
    if (l != len || memcmp(s, buf, (size_t)len)) return "s";
    if (!pt_column_is_valid(c[5], i) || pt_column_bool(c[5], i) != f_b(g)) return "b";
    return NULL;
}

static uint64_t fp(int64_t g) { return pt_splitmix64((uint64_t)g * 2654435761u + 17); }

/* Global rows of the test. */
static int64_t g_n;

/* This rank's share of rows as two parts (a split inside the share, so that
 * several parts per rank are exercised; the first may be empty). */
static int make_parts(pt_table *parts[2], bool text_as_utf8, bool key_as_f64) {
    int64_t lo, hi;
    pt__dist_share(g_n, g_rank, g_size, &lo, &hi);
    int64_t mid = lo + (hi - lo) / 3;
    parts[0] = build_rows(lo, mid, text_as_utf8, key_as_f64);
    parts[1] = build_rows(mid, hi, text_as_utf8, key_as_f64);
    return parts[0] && parts[1];
}

/* Checks the rows this rank received: each matches its formula, g strictly
 * increases (sender-rank order, then input order: shares are contiguous and
 * ascending), and globally every g in [0, g_n) arrived exactly once (count,
 * sum of g and sum of a fingerprint of g against closed forms). */
static void check_received(pt_comm *c, const pt_table *t, const char *what) {
    int64_t sums[3] = {t->nrows, 0, 0};
    int64_t prev = -1;
    int bad = 0;
    for (int64_t i = 0; i < t->nrows; i++) {
        int64_t g;
        const char *b = row_bad(t, i, &g);
        if (b && bad++ < 3) EXPECT(b == NULL, "%s: row %lld (g=%lld): column %s", what, (long long)i, (long long)g, b);
        if (g <= prev && bad++ < 3) EXPECT(g > prev, "%s: row %lld: g %lld after %lld", what, (long long)i, (long long)g, (long long)prev);
        prev = g;
        sums[1] += g;
        sums[2] = (int64_t)((uint64_t)sums[2] + fp(g));
    }
    if (pt_comm_allreduce(c, sums, 3, PT_DTYPE_INT64, PT_REDOP_SUM, &g_err) != PT_OK) {
        EXPECT(0, "allreduce: %s", g_err.msg);
        return;
    }
    uint64_t want_fp = 0;
    for (int64_t g = 0; g < g_n; g++) want_fp += fp(g);
    EXPECT(sums[0] == g_n, "%s: %lld rows in all, want %lld", what, (long long)sums[0], (long long)g_n);
    EXPECT(sums[1] == g_n * (g_n - 1) / 2, "%s: sum of g %lld", what, (long long)sums[1]);
    EXPECT((uint64_t)sums[2] == want_fp, "%s: fingerprint sum differs", what);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_shuffle_hash(pt_comm *c, pt_ctx *ctx) {
    pt_table *parts[2];
    EXPECT(make_parts(parts, false, false), "build");
    int keys_sets[3][2] = {{1, 0}, {2, 0}, {2, 1}};
    int nkeys[3] = {1, 1, 2};
    for (int ks = 0; ks < 3; ks++) {
        pt_table *out = NULL;
        OK(pt__dist_shuffle_hash(c, ctx, parts, 2, nkeys[ks], keys_sets[ks], &out, &g_err));
        char what[64];
        snprintf(what, sizeof what, "shuffle_hash keys set %d", ks);
        check_received(c, out, what);
        int wrong = 0;
        for (int64_t i = 0; i < out->nrows; i++)
            if (pt__dist_row_hash(out, nkeys[ks], keys_sets[ks], i) % (uint64_t)g_size != (uint64_t)g_rank) wrong++;
        EXPECT(wrong == 0, "%s: %d rows hash to another rank", what, wrong);
        /* Received text keys with different dictionaries were merged. */
        EXPECT(out->schema->fields[2].type == PT_TYPE_DICT, "w stays a dictionary");
        EXPECT(out->cols[2]->dict->length <= 8, "merged dictionary has %lld entries", (long long)out->cols[2]->dict->length);
        pt_table_free(out);
    }
    /* Equal keys co-locate whatever their representation: the same rows
     * with k as float64 and w as utf8 land on the same ranks. */
    pt_table *alt[2];
    EXPECT(make_parts(alt, true, true), "build alt");
    for (int ks = 0; ks < 3; ks++) {
        pt_table *a = NULL, *b = NULL;
        OK(pt__dist_shuffle_hash(c, ctx, parts, 2, nkeys[ks], keys_sets[ks], &a, &g_err));
        OK(pt__dist_shuffle_hash(c, ctx, alt, 2, nkeys[ks], keys_sets[ks], &b, &g_err));
        EXPECT(a->nrows == b->nrows, "alt keys set %d: %lld vs %lld rows", ks, (long long)a->nrows, (long long)b->nrows);
        for (int64_t i = 0; i < a->nrows && i < b->nrows; i++)
            if (pt_column_i64(a->cols[0])[i] != pt_column_i64(b->cols[0])[i]) {
                EXPECT(0, "alt keys set %d: row %lld: g %lld vs %lld", ks, (long long)i,
                       (long long)pt_column_i64(a->cols[0])[i], (long long)pt_column_i64(b->cols[0])[i]);
                break;
            }
        check_received(c, b, "shuffle_hash alt types");
        pt_table_free(a);
        pt_table_free(b);
    }
    for (int i = 0; i < 2; i++) {
        pt_table_free(parts[i]);
        pt_table_free(alt[i]);
    }
}

/* Min and max of the non-null numeric key on this rank (NaN-free data). */
static void check_ranges_numeric(pt_comm *c, const pt_table *t, int key, bool desc, const char *what) {
    const pt_column *k = t->cols[key];
    double mm[3] = {INFINITY, -INFINITY, 0}; /* min, max, nulls */
    for (int64_t i = 0; i < t->nrows; i++) {
        if (!pt_column_is_valid(k, i)) {
            mm[2]++;
            continue;
        }
        double v = k->type == PT_TYPE_FLOAT64 ? pt_column_f64(k)[i] : (double)pt_column_i64(k)[i];
        if (v < mm[0]) mm[0] = v;
        if (v > mm[1]) mm[1] = v;
    }
    double *all = malloc(sizeof mm * (size_t)g_size);
    if (pt_comm_allgather(c, mm, sizeof mm, all, &g_err) != PT_OK) {
        EXPECT(0, "allgather: %s", g_err.msg);
        free(all);
        return;
    }
    /* Every value on rank r is <= (>= when desc) every value on rank r+1;
     * nulls only on the last rank. */
    double edge = desc ? INFINITY : -INFINITY;
    for (int r = 0; r < g_size; r++) {
        double lo = all[3 * r], hi = all[3 * r + 1];
        if (r < g_size - 1) EXPECT(all[3 * r + 2] == 0, "%s: %g nulls on rank %d", what, all[3 * r + 2], r);
        if (lo > hi) continue; /* no values */
        if (!desc) EXPECT(lo >= edge, "%s: rank %d min %g below rank before's max %g", what, r, lo, edge);
        else EXPECT(hi <= edge, "%s: rank %d max %g above rank before's min %g", what, r, hi, edge);
        edge = desc ? lo : hi;
    }
    free(all);
}

static void check_ranges_text(pt_comm *c, const pt_table *t, int key, const char *what) {
    const pt_column *k = t->cols[key];
    char mm[2][32];
    memset(mm, 0, sizeof mm);
    int64_t nulls = 0, vals = 0;
    for (int64_t i = 0; i < t->nrows; i++) {
        if (!pt_column_is_valid(k, i)) {
            nulls++;
            continue;
        }
        int64_t len;
        const char *s = pt_column_str(k, i, &len);
        char buf[32] = {0};
        memcpy(buf, s, (size_t)(len < 31 ? len : 31));
        if (vals == 0 || strcmp(buf, mm[0]) < 0) memcpy(mm[0], buf, 32);
        if (vals == 0 || strcmp(buf, mm[1]) > 0) memcpy(mm[1], buf, 32);
        vals++;
    }
    struct { char mm[2][32]; int64_t vals, nulls; } mine, *all = malloc(sizeof mine * (size_t)g_size);
    memcpy(mine.mm, mm, sizeof mm);
    mine.vals = vals;
    mine.nulls = nulls;
    if (pt_comm_allgather(c, &mine, sizeof mine, all, &g_err) != PT_OK) {
        EXPECT(0, "allgather: %s", g_err.msg);
        free(all);
        return;
    }
    const char *edge = NULL;
    for (int r = 0; r < g_size; r++) {
        if (r < g_size - 1) EXPECT(all[r].nulls == 0, "%s: nulls on rank %d", what, r);
        if (all[r].vals == 0) continue;
        if (edge) EXPECT(strcmp(all[r].mm[0], edge) >= 0, "%s: rank %d min '%s' < '%s'", what, r, all[r].mm[0], edge);
        edge = all[r].mm[1];
    }
    free(all);
}

static void test_shuffle_range(pt_comm *c, pt_ctx *ctx) {
    pt_table *parts[2];
    EXPECT(make_parts(parts, false, false), "build");
    struct { int key; bool desc; const char *what; } cases[] = {
        {1, false, "range k asc"}, {1, true, "range k desc"}, {3, false, "range v asc (nulls)"},
        {3, true, "range v desc (nulls)"}, {2, false, "range w (dict text)"}, {4, false, "range s (utf8)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        pt_table *out = NULL;
        OK(pt__dist_shuffle_range(c, ctx, parts, 2, cases[k].key, cases[k].desc, 0, &out, &g_err));
        check_received(c, out, cases[k].what);
        if (cases[k].key == 2 || cases[k].key == 4) check_ranges_text(c, out, cases[k].key, cases[k].what);
        else check_ranges_numeric(c, out, cases[k].key, cases[k].desc, cases[k].what);
        /* Balance: a key with 1009 values spreads within 2x of even. For
         * s (distinct) it is tighter. */
        if (cases[k].key == 1 || cases[k].key == 4)
            EXPECT(out->nrows <= 2 * g_n / g_size + 64, "%s: %lld rows on one rank", cases[k].what, (long long)out->nrows);
        pt_table_free(out);
    }
    /* A tiny sample still gives a correct (if less balanced) split. */
    pt_table *out = NULL;
    OK(pt__dist_shuffle_range(c, ctx, parts, 2, 1, false, 1, &out, &g_err));
    check_received(c, out, "range k, sample of 1");
    check_ranges_numeric(c, out, 1, false, "range k, sample of 1");
    pt_table_free(out);
    for (int i = 0; i < 2; i++) pt_table_free(parts[i]);
}

static void test_gather_bcast_allgather(pt_comm *c, pt_ctx *ctx) {
    pt_table *parts[2];
    EXPECT(make_parts(parts, false, false), "build");
    pt_table *local = NULL;
    OK(pt_table_concat(NULL, parts, 2, &local, &g_err));
    for (int root = 0; root < g_size; root += g_size - 1 > 0 ? g_size - 1 : 1) {
        pt_table *out = NULL;
        OK(pt__dist_gather(c, ctx, local, root, &out, &g_err));
        if (g_rank == root) {
            EXPECT(out && out->nrows == g_n, "gather to %d: %lld rows", root, out ? (long long)out->nrows : -1LL);
            /* The root rebuilds the global table by formula. */
            pt_table *want = build_rows(0, g_n, false, false);
            char why[256] = "";
            EXPECT(out && pt_table_equal(want, out, why, sizeof why), "gather to %d: %s", root, why);
            pt_table_free(want);
        } else {
            EXPECT(out == NULL, "gather: non-root got a table");
        }
        pt_table_free(out);
        if (g_size == 1) break;
    }
    /* Broadcast from the last rank: everyone gets its share. */
    int root = g_size - 1;
    pt_table *b = NULL;
    OK(pt__dist_broadcast_table(c, ctx, g_rank == root ? local : NULL, root, &b, &g_err));
    int64_t lo, hi;
    pt__dist_share(g_n, root, g_size, &lo, &hi);
    pt_table *want = build_rows(lo, hi, false, false);
    char why[256] = "";
    EXPECT(pt_table_equal(want, b, why, sizeof why), "broadcast: %s", why);
    pt_table_free(want);
    pt_table_free(b);
    pt_table *all = NULL;
    OK(pt__dist_allgather_table(c, ctx, local, &all, &g_err));
    want = build_rows(0, g_n, false, false);
    EXPECT(pt_table_equal(want, all, why, sizeof why), "allgather: %s", why);
    pt_table_free(want);
    pt_table_free(all);
    pt_table_free(local);
    for (int i = 0; i < 2; i++) pt_table_free(parts[i]);
}

/* A rank that fails locally (its budget is too small) makes every rank
 * fail, naming it, and the comm stays usable. */
static void test_agreed_failure(pt_comm *c, pt_ctx *ctx) {
    pt_ctx_opts o;
    pt_ctx_opts_init(&o);
    o.threads = 1;
    o.memory_limit = g_rank == 1 ? 4096 : 0;
    pt_ctx *small = NULL;
    OK(pt_ctx_new(&o, &small, &g_err));
    pt_table *parts[2];
    EXPECT(make_parts(parts, false, false), "build");
    pt_table *out = NULL;
    int key = 1;
    pt_status st = pt__dist_shuffle_hash(c, small, parts, 2, 1, &key, &out, &g_err);
    if (g_size >= 2) {
        EXPECT(st == PT_EBUDGET, "failed shuffle: %s", pt_status_name(st));
        if (g_rank != 1) EXPECT(strstr(g_err.msg, "rank 1 failed") != NULL, "message: %s", g_err.msg);
        EXPECT(out == NULL, "no result");
    }
    EXPECT(!pt_comm_failed(c), "comm still usable");
    pt_table_free(out);
    pt_ctx_free(small);
    OK(pt__dist_shuffle_hash(c, ctx, parts, 2, 1, &key, &out, &g_err));
    check_received(c, out, "after a failed shuffle");
    pt_table_free(out);
    for (int i = 0; i < 2; i++) pt_table_free(parts[i]);
}

int main(void) {
    pt_comm_opts o;
    pt_comm_opts_init(&o);
    o.backend = "mpi";
    o.timeout_s = 30;
    pt_comm *c = NULL;
    if (pt_comm_init(&o, &c, &g_err) != PT_OK) {
        fprintf(stderr, "pt_comm_init: %s\n", g_err.msg);
        return 1;
    }
    g_rank = pt_comm_rank(c);
    g_size = pt_comm_size(c);
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = 1;
    pt_ctx *ctx = NULL;
    if (pt_ctx_new(&co, &ctx, &g_err) != PT_OK) {
        fprintf(stderr, "pt_ctx_new: %s\n", g_err.msg);
        return 1;
    }
    /* A size that does not divide evenly, then one where some ranks hold
     * no rows at all. */
    const int64_t sizes[] = {20011, 2};
    for (int k = 0; k < 2 && !pt_comm_failed(c); k++) {
        g_n = sizes[k];
        test_shuffle_hash(c, ctx);
        if (pt_comm_failed(c)) break;
        test_shuffle_range(c, ctx);
        if (pt_comm_failed(c)) break;
        test_gather_bcast_allgather(c, ctx);
    }
    g_n = 5000;
    if (!pt_comm_failed(c)) test_agreed_failure(c, ctx);
    EXPECT(pt_mem_used(pt_ctx_mem(ctx)) == 0, "budget left charged: %lld", (long long)pt_mem_used(pt_ctx_mem(ctx)));
    int64_t fails = g_fail;
    pt_error e2;
    if (pt_comm_failed(c) || pt_comm_allreduce(c, &fails, 1, PT_DTYPE_INT64, PT_REDOP_SUM, &e2) != PT_OK)
        fails = 1;
    if (g_rank == 0) printf("%d ranks: %lld failures\n", g_size, (long long)fails);
    pt_ctx_free(ctx);
    pt_comm_free(c);
    return fails == 0 && g_fail == 0 ? 0 : 1;
}
