/* Tests of lazy frames: every operator against a straightforward reference
 * computed in the test with plain loops, optimiser rules through the exact
 * plan text, empty inputs, errors, and out-of-core runs with a memory limit
 * far below the data size (results equal to in-memory runs, peak memory
 * near the limit, spill directory empty afterwards). */
#include <dirent.h>
#include <sys/stat.h>

#include "pt_test.h"
#include "partita/dataframe.h"

static pt_ctx *new_ctx(int threads, int64_t limit, const char *spill) {
    pt_ctx_opts o;
    pt_ctx_opts_init(&o);
    o.threads = threads;
    o.memory_limit = limit;
    o.spill_dir = spill;
    pt_ctx *c = NULL;
    pt_error e;
    if (pt_ctx_new(&o, &c, &e)) fprintf(stderr, "ctx: %s\n", e.msg);
    return c;
}

/* A small table: k (int64 with nulls), s (text), x (float64 with nulls). */
#define N 5000
static int64_t K[N];
static bool Knull[N], Xnull[N];
static double X[N];
static char S[N][8];

static pt_frame *sample_frame(pt_ctx *ctx, int parts) {
    pt_rng r;
    pt_rng_seed(&r, 11);
    const char *names[3] = {"k", "s", "x"};
    pt_type types[3] = {PT_TYPE_INT64, PT_TYPE_UTF8, PT_TYPE_FLOAT64};
    pt_column *c[3];
    pt_error e;
    if (pt_column_new(NULL, PT_TYPE_INT64, N, 0, &c[0], &e) ||
        pt_column_new(NULL, PT_TYPE_UTF8, N, N * 8, &c[1], &e) ||
        pt_column_new(NULL, PT_TYPE_FLOAT64, N, 0, &c[2], &e))
        return NULL;
    for (int i = 0; i < N; i++) {
        K[i] = (int64_t)pt_rng_below(&r, 50) - 10;
        Knull[i] = pt_rng_below(&r, 20) == 0;
        X[i] = pt_rng_normal(&r) * 100;
        Xnull[i] = pt_rng_below(&r, 10) == 0;
        snprintf(S[i], sizeof S[i], "s%d", (int)pt_rng_below(&r, 7));
        pt_status st = Knull[i] ? pt_column_append_null(c[0], &e) : pt_column_append_i64(c[0], K[i], &e);
        st |= pt_column_append_str(c[1], S[i], (int64_t)strlen(S[i]), &e);
        st |= Xnull[i] ? pt_column_append_null(c[2], &e) : pt_column_append_f64(c[2], X[i], &e);
        if (st) return NULL;
    }
    pt_schema *s;
    pt_table *t;
    if (pt_schema_new(3, names, types, &s, &e) || pt_table_new(s, c, &t, &e)) return NULL;
    pt_frame *f = NULL;
    if (pt_frame_from_table(ctx, t, parts, &f, &e)) fprintf(stderr, "%s\n", e.msg);
    pt_table_free(t);
    return f;
}

/* Parses "expr" or "expr AS name". */
static pt_expr *P(const char *text) {
    pt_expr *x = NULL;
    pt_error e;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    char *as = strstr(buf, " AS ");
    if (as) *as = 0;
    if (pt_expr_parse(buf, &x, &e)) fprintf(stderr, "parse %s: %s\n", text, e.msg);
    return as ? pt_alias(x, as + 4) : x;
}

TEST(filter_and_project_match_loop) {
    pt_error e;
    pt_ctx *ctx = new_ctx(2, 0, NULL);
    pt_frame *f = sample_frame(ctx, 7), *g, *h;
    CHECK(f != NULL);
    CHECK_OK(pt_frame_filter(f, P("k > 5 AND x < 50"), &g, &e), &e);
    pt_expr *ex[2] = {P("k * 2 + 1 AS k2"), P("s")};
    CHECK_OK(pt_frame_select(g, 2, ex, &h, &e), &e);
    pt_table *t;
    CHECK_OK(pt_frame_collect(h, &t, &e), &e);
    int64_t j = 0;
    for (int i = 0; i < N; i++) {
        if (Knull[i] || Xnull[i] || !(K[i] > 5 && X[i] < 50)) continue;
        CHECK_MSG(j < t->nrows, "too few rows");
        CHECK_EQ_I(pt_column_i64(t->cols[0])[j], K[i] * 2 + 1);
        int64_t len;
        const char *s = pt_column_str(t->cols[1], j, &len);
        CHECK(len == (int64_t)strlen(S[i]) && memcmp(s, S[i], (size_t)len) == 0);
        j++;
    }
    CHECK_EQ_I(t->nrows, j);
    CHECK_STR(t->schema->fields[0].name, "k2");
    pt_table_free(t);
    pt_frame_free(h);
    pt_frame_free(g);
    pt_frame_free(f);
    pt_ctx_free(ctx);
}

TEST(groupby_matches_loop) {
    pt_error e;
    pt_ctx *ctx = new_ctx(2, 0, NULL);
    pt_frame *f = sample_frame(ctx, 5), *g;
    CHECK(f != NULL);
    pt_expr *keys[1] = {pt_col("k")};
    pt_expr *aggs[4] = {P("count(*) AS n"), P("sum(x) AS sx"), P("max(x) - min(x) AS rng"),
                        P("sum(x) / count(x) AS m")};
    CHECK_OK(pt_frame_groupby(f, 1, keys, 4, aggs, &g, &e), &e);
    pt_table *t;
    CHECK_OK(pt_frame_collect(g, &t, &e), &e);
    /* Reference: per key value (and one null group). */
    int64_t n[61] = {0}, nx[61] = {0};
    double sx[61] = {0}, mn[61], mx[61];
    for (int i = 0; i < 61; i++) mn[i] = INFINITY, mx[i] = -INFINITY;
    int groups = 0;
    for (int i = 0; i < N; i++) {
        int slot = Knull[i] ? 60 : (int)(K[i] + 10);
        if (n[slot]++ == 0) groups++;
        if (!Xnull[i]) {
            nx[slot]++;
            sx[slot] += X[i];
            mn[slot] = fmin(mn[slot], X[i]);
            mx[slot] = fmax(mx[slot], X[i]);
        }
    }
    CHECK_EQ_I(t->nrows, groups);
    for (int64_t r = 0; r < t->nrows; r++) {
        int slot = pt_column_is_valid(t->cols[0], r) ? (int)(pt_column_i64(t->cols[0])[r] + 10) : 60;
        CHECK_EQ_I(pt_column_i64(t->cols[1])[r], n[slot]);
        CHECK_NEAR(pt_column_f64(t->cols[2])[r], sx[slot], 1e-9);
        CHECK_NEAR(pt_column_f64(t->cols[3])[r], mx[slot] - mn[slot], 1e-12);
        CHECK_NEAR(pt_column_f64(t->cols[4])[r], sx[slot] / (double)nx[slot], 1e-9);
    }
    pt_table_free(t);
    pt_frame_free(g);
    /* Global aggregate over an empty filter result: one row, count 0. */
    pt_frame *none, *ga;
    CHECK_OK(pt_frame_filter(f, P("k > 1000"), &none, &e), &e);
    pt_expr *a2[2] = {P("count(*) AS n"), P("sum(x) AS s")};
    CHECK_OK(pt_frame_groupby(none, 0, NULL, 2, a2, &ga, &e), &e);
    CHECK_OK(pt_frame_collect(ga, &t, &e), &e);
    CHECK_EQ_I(t->nrows, 1);
    CHECK_EQ_I(pt_column_i64(t->cols[0])[0], 0);
    CHECK(!pt_column_is_valid(t->cols[1], 0));
    pt_table_free(t);
    pt_frame_free(ga);
    pt_frame_free(none);
    pt_frame_free(f);
    pt_ctx_free(ctx);
}

static int cmp_ref(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    /* s asc, then x desc with nulls last, then input order (stable) */
    int c = strcmp(S[i], S[j]);
    if (c) return c;
    if (Xnull[i] != Xnull[j]) return Xnull[i] ? 1 : -1;
    if (!Xnull[i] && X[i] != X[j]) return X[i] > X[j] ? -1 : 1;
    return i - j;
}

TEST(sort_limit_and_topn_match_qsort) {
    pt_error e;
    pt_ctx *ctx = new_ctx(2, 0, NULL);
    pt_frame *f = sample_frame(ctx, 6), *s, *l;
    CHECK(f != NULL);
    pt_expr *keys[2] = {pt_col("s"), pt_col("x")};
    bool desc[2] = {false, true};
    CHECK_OK(pt_frame_sort(f, 2, keys, desc, &s, &e), &e);
    CHECK_OK(pt_frame_limit(s, 100, 30, &l, &e), &e);
    static int idx[N];
    for (int i = 0; i < N; i++) idx[i] = i;
    qsort(idx, N, sizeof idx[0], cmp_ref);
    pt_table *t, *tl;
    CHECK_OK(pt_frame_collect(s, &t, &e), &e);
    CHECK_OK(pt_frame_collect(l, &tl, &e), &e);
    CHECK_EQ_I(t->nrows, N);
    CHECK_EQ_I(tl->nrows, 100);
    for (int r = 0; r < N; r++) {
        int i = idx[r];
        bool kv = pt_column_is_valid(t->cols[0], r);
        CHECK_MSG(kv == !Knull[i] && (!kv || pt_column_i64(t->cols[0])[r] == K[i]),
                  "row %d differs from reference row %d", r, i);
        if (r >= 30 && r < 130) {
            bool kv2 = pt_column_is_valid(tl->cols[0], r - 30);
            CHECK(kv2 == kv && (!kv || pt_column_i64(tl->cols[0])[r - 30] == K[i]));
        }
    }
    char *plan;
    CHECK_OK(pt_frame_explain_string(l, &plan, &e), &e);
    CHECK_CONTAINS(plan, "TopN [s, x DESC] limit=100 offset=30");
    pt_free(plan);
    pt_table_free(t);
    pt_table_free(tl);
    pt_frame_free(l);
    pt_frame_free(s);
    pt_frame_free(f);
    pt_ctx_free(ctx);
}

TEST(join_types_match_nested_loop) {
    pt_error e;
    pt_ctx *ctx = new_ctx(2, 0, NULL);
    /* left: a (1..6, dup 2, null), right: b (2..8, dup 3) */
    int64_t la[] = {1, 2, 2, 3, 4, 6, 0};
    int64_t rb[] = {2, 3, 3, 5, 6, 7, 8};
    double lv[] = {10, 20, 21, 30, 40, 60, 99};
    double rv[] = {.2, .3, .33, .5, .6, .7, .8};
    const char *ln[] = {"a", "v"}, *rn[] = {"b", "v"};
    pt_type ty[] = {PT_TYPE_INT64, PT_TYPE_FLOAT64};
    const void *ld[] = {la, lv}, *rd[] = {rb, rv};
    pt_frame *L, *R;
    CHECK_OK(pt_frame_from_arrays(ctx, 2, ln, ty, ld, 7, 2, &L, &e), &e);
    CHECK_OK(pt_frame_from_arrays(ctx, 2, rn, ty, rd, 7, 3, &R, &e), &e);
    const char *lk[] = {"a"}, *rk[] = {"b"};
    pt_join_type types[4] = {PT_JOIN_INNER, PT_JOIN_LEFT, PT_JOIN_RIGHT, PT_JOIN_FULL};
    for (int jt = 0; jt < 4; jt++) {
        pt_frame *j;
        CHECK_OK(pt_frame_join(L, R, types[jt], 1, lk, rk, &j, &e), &e);
        CHECK_STR(pt_frame_schema(j)->fields[3].name, "v_right");
        pt_table *t;
        CHECK_OK(pt_frame_collect(j, &t, &e), &e);
        /* Reference: nested loop, then unmatched rows per the join type. */
        int expect = 0, matched_l[7] = {0}, matched_r[7] = {0};
        for (int x = 0; x < 7; x++)
            for (int y = 0; y < 7; y++)
                if (la[x] == rb[y]) expect++, matched_l[x] = 1, matched_r[y] = 1;
        for (int x = 0; x < 7; x++)
            if (!matched_l[x] && (jt == 1 || jt == 3)) expect++;
        for (int y = 0; y < 7; y++)
            if (!matched_r[y] && (jt == 2 || jt == 3)) expect++;
        CHECK_MSG(t->nrows == expect, "join type %d: %lld rows, expected %d", jt,
                  (long long)t->nrows, expect);
        /* every output row is consistent: v = 10*a-ish pairs */
        double sum = 0, want = 0;
        for (int64_t r = 0; r < t->nrows; r++) {
            if (pt_column_is_valid(t->cols[1], r)) sum += pt_column_f64(t->cols[1])[r];
            if (pt_column_is_valid(t->cols[3], r)) sum += pt_column_f64(t->cols[3])[r];
        }
        for (int x = 0; x < 7; x++)
            for (int y = 0; y < 7; y++)
                if (la[x] == rb[y]) want += lv[x] + rv[y];
        for (int x = 0; x < 7; x++)
            if (!matched_l[x] && (jt == 1 || jt == 3)) want += lv[x];
        for (int y = 0; y < 7; y++)
            if (!matched_r[y] && (jt == 2 || jt == 3)) want += rv[y];
        CHECK_NEAR(sum, want, 1e-12);
        pt_table_free(t);
        pt_frame_free(j);
    }
    pt_frame *bad;
    const char *nk[] = {"nope"};
    CHECK_EQ_I(pt_frame_join(L, R, PT_JOIN_INNER, 1, nk, rk, &bad, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "unknown column 'nope'; available columns: a, v");
    pt_frame_free(L);
    pt_frame_free(R);
    pt_ctx_free(ctx);
}

TEST(distinct_union_rownumber) {
    pt_error e;
    pt_ctx *ctx = new_ctx(2, 0, NULL);
    pt_frame *f = sample_frame(ctx, 4), *p, *d, *u, *rn;
    CHECK(f != NULL);
    pt_expr *ex[1] = {pt_col("s")};
    CHECK_OK(pt_frame_select(f, 1, ex, &p, &e), &e);
    CHECK_OK(pt_frame_distinct(p, &d, &e), &e);
    pt_table *t;
    CHECK_OK(pt_frame_collect(d, &t, &e), &e);
    CHECK_EQ_I(t->nrows, 7); /* s0..s6 */
    pt_table_free(t);
    CHECK_OK(pt_frame_union(p, p, &u, &e), &e);
    CHECK_OK(pt_frame_collect(u, &t, &e), &e);
    CHECK_EQ_I(t->nrows, 2 * N);
    pt_table_free(t);
    /* row_number within s by x desc: numbers 1..count per group */
    pt_expr *pk[1] = {pt_col("s")}, *ok[1] = {pt_col("x")};
    bool desc[1] = {true};
    CHECK_OK(pt_frame_row_number(f, "rn", 1, pk, 1, ok, desc, &rn, &e), &e);
    CHECK_OK(pt_frame_collect(rn, &t, &e), &e);
    CHECK_EQ_I(t->nrows, N);
    int64_t maxrn[7] = {0}, cnt[7] = {0};
    for (int i = 0; i < N; i++) cnt[S[i][1] - '0']++;
    for (int64_t r = 0; r < t->nrows; r++) {
        int64_t len;
        const char *s = pt_column_str(t->cols[1], r, &len);
        int g = s[1] - '0';
        int64_t v = pt_column_i64(t->cols[3])[r];
        if (v > maxrn[g]) maxrn[g] = v;
        if (v == 1 && pt_column_is_valid(t->cols[2], r)) {
            /* the first row of a group holds its largest x */
            double best = -INFINITY;
            for (int i = 0; i < N; i++)
                if (S[i][1] - '0' == g && !Xnull[i]) best = fmax(best, X[i]);
            CHECK_NEAR(pt_column_f64(t->cols[2])[r], best, 0);
        }
    }
    for (int g = 0; g < 7; g++) CHECK_EQ_I(maxrn[g], cnt[g]);
    pt_table_free(t);
    pt_frame_free(rn);
    pt_frame_free(u);
    pt_frame_free(d);
    pt_frame_free(p);
    pt_frame_free(f);
    pt_ctx_free(ctx);
}

TEST(repartition_and_balance) {
    pt_error e;
    pt_ctx *ctx = new_ctx(2, 0, NULL);
    pt_frame *f = sample_frame(ctx, 3), *r;
    CHECK(f != NULL);
    pt_balance b;
    CHECK_OK(pt_frame_repartition(f, PT_PART_ROWS, 8, 0, NULL, &r, &e), &e);
    CHECK_OK(pt_frame_balance(r, &b, &e), &e);
    CHECK_EQ_I(b.partitions, 8);
    CHECK(b.max_rows - b.min_rows <= 1);
    CHECK_NEAR(b.mean_rows, N / 8.0, 1e-12);
    pt_frame_free(r);
    /* Hash: all rows kept, equal keys never split across partitions. */
    const char *key[] = {"k"};
    CHECK_OK(pt_frame_repartition(f, PT_PART_HASH, 5, 1, key, &r, &e), &e);
    pt_table *t;
    CHECK_OK(pt_frame_collect(r, &t, &e), &e);
    CHECK_EQ_I(t->nrows, N);
    pt_table_free(t);
    CHECK_OK(pt_frame_balance(r, &b, &e), &e);
    CHECK_EQ_I(b.partitions, 5);
    pt_frame_free(r);
    /* Range on x: concatenated partitions are globally ordered by ranges. */
    const char *xk[] = {"x"};
    CHECK_OK(pt_frame_repartition(f, PT_PART_RANGE, 4, 1, xk, &r, &e), &e);
    CHECK_OK(pt_frame_collect(r, &t, &e), &e);
    CHECK_EQ_I(t->nrows, N);
    pt_table_free(t);
    pt_frame_free(r);
    pt_frame *cols[2];
    CHECK_OK(pt_frame_split_columns(f, 2, cols, &e), &e);
    CHECK_EQ_I(pt_frame_schema(cols[0])->nfields + pt_frame_schema(cols[1])->nfields, 3);
    pt_frame_free(cols[0]);
    pt_frame_free(cols[1]);
    pt_frame_free(f);
    pt_ctx_free(ctx);
}

/* Writes the classic frame as CSV; returns its size. */
static int64_t write_classic(pt_ctx *ctx, const char *path, int64_t rows) {
    pt_error e;
    int64_t bytes = 0;
    if (pt_gen_write_csv(ctx, PT_GEN_CLASSIC, rows, 0, 0, 3, path, &bytes, &e)) {
        fprintf(stderr, "gen: %s\n", e.msg);
        return -1;
    }
    return bytes;
}

TEST(optimiser_pushes_filters_and_projections) {
    pt_error e;
    pt_ctx *ctx = new_ctx(2, 0, NULL);
    const char *path = pt_test_tmp("classic.csv");
    CHECK(write_classic(ctx, path, 1000) > 0);
    pt_frame *f, *p, *q, *g;
    CHECK_OK(pt_frame_read_csv(ctx, path, NULL, &f, &e), &e);
    pt_expr *ex[2] = {P("category AS cat"), P("score + 1 AS s1")};
    CHECK_OK(pt_frame_select(f, 2, ex, &p, &e), &e);
    CHECK_OK(pt_frame_filter(p, P("cat = 'A' AND 1 + 1 = 2"), &q, &e), &e);
    pt_expr *k[1] = {pt_col("cat")}, *a[1] = {P("avg(s1) AS m")};
    CHECK_OK(pt_frame_groupby(q, 1, k, 1, a, &g, &e), &e);
    char *plan;
    CHECK_OK(pt_frame_explain_string(g, &plan, &e), &e);
    /* Before: the plan as built. After: constant folded away, the filter
     * renamed through the projection into the scan, only two columns
     * parsed, projection fused into the scan. */
    char want[2048];
    snprintf(want, sizeof want,
             "== logical plan ==\n"
             "Aggregate keys=[cat] aggs=[avg(s1)]\n"
             "  Filter cat = 'A' AND 1 + 1 = 2\n"
             "    Project [category AS cat, score + 1 AS s1]\n"
             "      Scan csv '%s'\n"
             "== optimised plan ==\n"
             "Aggregate keys=[cat] aggs=[avg(s1)]\n"
             "  Scan csv '%s' columns=[category, score] filter=category = 'A' "
             "project=[category AS cat, score + 1 AS s1]\n",
             path, path);
    CHECK_STR(plan, want);
    pt_free(plan);
    pt_table *t;
    CHECK_OK(pt_frame_collect(g, &t, &e), &e);
    CHECK_EQ_I(t->nrows, 1);
    pt_table_free(t);
    pt_frame_free(g);
    pt_frame_free(q);
    pt_frame_free(p);
    pt_frame_free(f);
    pt_ctx_free(ctx);
}

TEST(build_errors_name_columns) {
    pt_error e;
    pt_ctx *ctx = new_ctx(1, 0, NULL);
    pt_frame *f = sample_frame(ctx, 1), *g;
    CHECK(f != NULL);
    CHECK_EQ_I(pt_frame_filter(f, P("nope > 1"), &g, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "unknown column 'nope'");
    CHECK_CONTAINS(e.msg, "available columns: k, s, x");
    CHECK(pt_frame_filter(f, P("s + 1 > 2"), &g, &e) != PT_OK);
    CHECK_EQ_I(pt_frame_filter(f, P("k + 1"), &g, &e), PT_ETYPE);
    CHECK_CONTAINS(e.msg, "not bool");
    pt_frame_free(f);
    pt_ctx_free(ctx);
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(d);
    return n;
}

TEST(out_of_core_groupby_and_sort_match_in_memory) {
    pt_error e;
    const char *path = pt_test_tmp("big.csv");
    const char *spill = pt_test_tmp("spill");
    mkdir(spill, 0700);
    pt_ctx *big = new_ctx(2, 0, NULL);
    int64_t bytes = write_classic(big, path, 300000);
    CHECK(bytes > 0);
    int64_t limit = bytes / 3;
    pt_ctx *small = new_ctx(2, limit, spill);
    CHECK(small != NULL);
    pt_table *res[2][2];
    for (int m = 0; m < 2; m++) {
        pt_ctx *ctx = m ? small : big;
        pt_frame *f, *g, *s;
        CHECK_OK(pt_frame_read_csv(ctx, path, NULL, &f, &e), &e);
        pt_expr *sk[2] = {pt_col("value2"), pt_col("id")};
        CHECK_OK(pt_frame_sort(f, 2, sk, NULL, &s, &e), &e);
        pt_frame *sel;
        pt_expr *cols[2] = {pt_col("id"), pt_col("value2")};
        CHECK_OK(pt_frame_select(s, 2, cols, &sel, &e), &e);
        if (m == 0) {
            CHECK_OK(pt_frame_collect(sel, &res[m][1], &e), &e);
        } else {
            /* The sorted output is 3x the budget: stream it to a file,
             * then read it back without a limit. */
            const char *sorted = pt_test_tmp("sorted.csv");
            CHECK_OK(pt_frame_write_csv(sel, sorted, NULL, &e), &e);
            int64_t sp = pt_mem_peak(pt_ctx_mem(ctx));
            CHECK_MSG(sp <= limit * 3 / 2, "sort: peak %lld > 1.5 x limit %lld", (long long)sp,
                      (long long)limit);
            CHECK_MSG(pt_ctx_spilled_bytes(ctx) > 0, "the sort did not spill");
            pt_csv_opts o;
            pt_csv_opts_init(&o);
            o.progress = 0;
            CHECK_OK(pt_csv_read(big, sorted, &o, &res[m][1], NULL, &e), &e);
        }
        /* Many groups so that partial aggregates outgrow the budget (the sort
         * runs first: the collected group-by result is charged to it). */
        pt_expr *k[1] = {P("id % 20000 AS g")};
        pt_expr *a[2] = {P("sum(value1) AS s"), P("count(*) AS n")};
        CHECK_OK(pt_frame_groupby(f, 1, k, 2, a, &g, &e), &e);
        pt_expr *gk[1] = {pt_col("g")};
        pt_frame *gs;
        CHECK_OK(pt_frame_sort(g, 1, gk, NULL, &gs, &e), &e);
        CHECK_OK(pt_frame_collect(gs, &res[m][0], &e), &e);
        pt_frame_free(sel);
        pt_frame_free(s);
        pt_frame_free(gs);
        pt_frame_free(g);
        pt_frame_free(f);
    }
    char why[300];
    CHECK_EQ_I(res[0][0]->nrows, 20000);
    CHECK_MSG(pt_ctx_spilled_bytes(small) > 0, "nothing was spilled: the test does not test out of core");
    /* Keys and counts exact; float sums within rounding (spilled partial
     * aggregates are merged in another order). */
    CHECK_EQ_I(res[1][0]->nrows, res[0][0]->nrows);
    for (int64_t r = 0; r < res[0][0]->nrows; r++) {
        CHECK_EQ_I(pt_column_i64(res[1][0]->cols[0])[r], pt_column_i64(res[0][0]->cols[0])[r]);
        CHECK_EQ_I(pt_column_i64(res[1][0]->cols[2])[r], pt_column_i64(res[0][0]->cols[2])[r]);
        CHECK_NEAR(pt_column_f64(res[1][0]->cols[1])[r], pt_column_f64(res[0][0]->cols[1])[r], 1e-12);
    }
    CHECK_MSG(pt_table_equal(res[0][1], res[1][1], why, sizeof why), "sort: %s", why);
    int64_t peak = pt_mem_peak(pt_ctx_mem(small));
    CHECK_MSG(peak <= limit * 3 / 2, "peak %lld > 1.5 x limit %lld", (long long)peak, (long long)limit);
    CHECK_EQ_I(count_files(spill), 0);
    for (int m = 0; m < 2; m++)
        for (int q = 0; q < 2; q++) pt_table_free(res[m][q]);
    pt_ctx_free(small);
    pt_ctx_free(big);
}

TEST(lazy_scalar_and_csv_output) {
    pt_error e;
    pt_ctx *ctx = new_ctx(2, 0, NULL);
    pt_frame *f = sample_frame(ctx, 4), *m;
    CHECK(f != NULL);
    CHECK_OK(pt_frame_agg1(f, PT_AGG_MEAN, "x", &m, &e), &e);
    char *plan;
    CHECK_OK(pt_frame_explain_string(m, &plan, &e), &e);
    CHECK_CONTAINS(plan, "Aggregate keys=[] aggs=[avg(x)]");
    pt_free(plan);
    double v, ref = 0;
    int n = 0;
    for (int i = 0; i < N; i++)
        if (!Xnull[i]) ref += X[i], n++;
    CHECK_OK(pt_frame_scalar_f64(m, &v, &e), &e);
    CHECK_NEAR(v, ref / n, 1e-12);
    const char *out = pt_test_tmp("out.csv");
    CHECK_OK(pt_frame_write_csv(f, out, NULL, &e), &e);
    pt_table *a, *b;
    CHECK_OK(pt_frame_collect(f, &a, &e), &e);
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.progress = 0;
    o.dict_strings = 0;
    CHECK_OK(pt_csv_read(ctx, out, &o, &b, NULL, &e), &e);
    char why[200];
    CHECK_MSG(pt_table_equal(a, b, why, sizeof why), "%s", why);
    pt_table_free(a);
    pt_table_free(b);
    pt_frame_free(m);
    pt_frame_free(f);
    pt_ctx_free(ctx);
}

TEST(native_source_matches_in_memory) {
    pt_error e;
    pt_ctx *ctx = new_ctx(2, 0, NULL);
    pt_frame *f = sample_frame(ctx, 1), *nf, *q1, *q2;
    CHECK(f != NULL);
    pt_table *t;
    CHECK_OK(pt_frame_collect(f, &t, &e), &e);
    const char *path = pt_test_tmp("sample.ptn");
    pt_native_write_opts wo;
    pt_native_write_opts_init(&wo);
    wo.batch_rows = 333;
    CHECK_OK(pt_native_write_table(path, t, &wo, &e), &e);
    CHECK_OK(pt_frame_read_native(ctx, path, &nf, &e), &e);
    pt_frame *srcs[2] = {f, nf}, *outs[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        pt_frame *a, *b;
        CHECK_OK(pt_frame_filter(srcs[i], P("x > 0 OR k IS NULL"), &a, &e), &e);
        pt_expr *ex[2] = {P("s"), P("k + 1 AS k1")};
        CHECK_OK(pt_frame_select(a, 2, ex, &b, &e), &e);
        pt_frame_free(a);
        outs[i] = b;
    }
    q1 = outs[0];
    q2 = outs[1];
    char *plan;
    CHECK_OK(pt_frame_explain_string(q2, &plan, &e), &e);
    CHECK_CONTAINS(plan, "columns=[k, s, x] filter=x > 0 OR k IS NULL project=[s, k + 1 AS k1]");
    pt_free(plan);
    pt_table *a, *b;
    CHECK_OK(pt_frame_collect(q1, &a, &e), &e);
    CHECK_OK(pt_frame_collect(q2, &b, &e), &e);
    char why[200];
    CHECK_MSG(pt_table_equal(a, b, why, sizeof why), "%s", why);
    CHECK(a->nrows > 1000);
    pt_table_free(a);
    pt_table_free(b);
    pt_table_free(t);
    pt_frame_free(q1);
    pt_frame_free(q2);
    pt_frame_free(nf);
    pt_frame_free(f);
    pt_ctx_free(ctx);
}

TEST(rownum_topk_equals_full_numbering) {
    pt_error e;
    pt_ctx *ctx = new_ctx(2, 0, NULL);
    /* 200000 rows so that the threads each take a range: keys with nulls,
     * order keys with ties and nulls. */
    int64_t n = 200000;
    int64_t *pk = malloc(sizeof *pk * (size_t)n), *o1 = malloc(sizeof *o1 * (size_t)n);
    double *o2 = malloc(sizeof *o2 * (size_t)n);
    pt_rng r;
    pt_rng_seed(&r, 5);
    for (int64_t i = 0; i < n; i++) {
        pk[i] = (int64_t)pt_rng_below(&r, 3000);
        o1[i] = (int64_t)pt_rng_below(&r, 4);   /* many ties */
        o2[i] = (double)pt_rng_below(&r, 50);   /* more ties */
    }
    const char *names[3] = {"p", "a", "b"};
    pt_type types[3] = {PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_FLOAT64};
    const void *data[3] = {pk, o1, o2};
    pt_frame *f;
    CHECK_OK(pt_frame_from_arrays(ctx, 3, names, types, data, n, 6, &f, &e), &e);
    /* cfg 0: two order keys (general path); cfg 1: one numeric order key
     * on an integer partition key (the fast path); both with many ties. */
    for (int cfg = 0; cfg < 2; cfg++)
    for (int k = 1; k <= 3; k++) {
        pt_frame *rn[2], *flt[2];
        pt_table *res[2];
        for (int v = 0; v < 2; v++) {
            pt_expr *pks[1] = {pt_col("p")};
            pt_expr *oks[2] = {pt_col(cfg ? "b" : "a"), cfg ? NULL : pt_col("b")};
            bool desc[2] = {true, false};
            CHECK_OK(pt_frame_row_number(f, "rn", 1, pks, cfg ? 1 : 2, oks, desc, &rn[v], &e), &e);
            /* v = 0: rn <= k (the optimiser picks the top-k path);
             * v = 1: rn - 0 <= k, which it does not recognise. */
            char q[64];
            snprintf(q, sizeof q, v ? "rn - 0 <= %d" : "rn <= %d", k);
            CHECK_OK(pt_frame_filter(rn[v], P(q), &flt[v], &e), &e);
            CHECK_OK(pt_frame_collect(flt[v], &res[v], &e), &e);
        }
        char *plan;
        CHECK_OK(pt_frame_explain_string(flt[0], &plan, &e), &e);
        char want[64];
        snprintf(want, sizeof want, "top=%d", k);
        CHECK_CONTAINS(plan, want);
        pt_free(plan);
        CHECK_OK(pt_frame_explain_string(flt[1], &plan, &e), &e);
        CHECK(strstr(plan, "top=") == NULL);
        pt_free(plan);
        char why[300];
        CHECK(res[0]->nrows > 0);
        CHECK_MSG(pt_table_equal(res[0], res[1], why, sizeof why), "k=%d: %s", k, why);
        for (int v = 0; v < 2; v++) {
            pt_table_free(res[v]);
            pt_frame_free(flt[v]);
            pt_frame_free(rn[v]);
        }
    }
    free(pk);
    free(o1);
    free(o2);
    pt_frame_free(f);
    pt_ctx_free(ctx);
}

/* The one-pass group-by path against the general kernel (switched off
 * through PARTITA_GROUPBY_FUSED) on data without nulls, for int64, int32
 * and dictionary keys; an int64 sum that overflows falls back to the general
 * kernel, which reports it. */
TEST(fused_groupby_matches_general_kernel) {
    pt_error e;
    pt_ctx *ctx = new_ctx(2, 0, NULL);
    int64_t n = 100000;
    int64_t *k64 = malloc(sizeof *k64 * (size_t)n), *v64 = malloc(sizeof *v64 * (size_t)n);
    int32_t *k32 = malloc(sizeof *k32 * (size_t)n), *v32 = malloc(sizeof *v32 * (size_t)n);
    double *f = malloc(sizeof *f * (size_t)n);
    const char **s = malloc(sizeof *s * (size_t)n);
    static const char *const words[] = {"ant", "bee", "cat", "dog", "eel"};
    pt_rng r;
    pt_rng_seed(&r, 9);
    for (int64_t i = 0; i < n; i++) {
        k64[i] = (int64_t)pt_rng_below(&r, 300) - 100;
        k32[i] = (int32_t)pt_rng_below(&r, 17);
        v64[i] = (int64_t)pt_rng_below(&r, 1000000) - 500000;
        v32[i] = (int32_t)pt_rng_below(&r, 1000) - 500;
        f[i] = pt_rng_normal(&r);
        s[i] = words[pt_rng_below(&r, 5)];
    }
    /* A key the fused path's sampled range (every 61st row) misses, so that
     * its exact-range retry runs too. */
    k64[12346] = 5000;
    const char *names[6] = {"k64", "k32", "v64", "v32", "f", "s"};
    pt_type types[6] = {PT_TYPE_INT64, PT_TYPE_INT32, PT_TYPE_INT64, PT_TYPE_INT32, PT_TYPE_FLOAT64,
                        PT_TYPE_UTF8};
    const void *data[6] = {k64, k32, v64, v32, f, s};
    pt_frame *fr, *cast, *cat;
    CHECK_OK(pt_frame_from_arrays(ctx, 6, names, types, data, n, 5, &fr, &e), &e);
    /* s as a dictionary column. Cast per partition, each partition would get
     * a dictionary of its own, which the fused path declines; collected and
     * split again, the 5 partitions share one, as a file scan's do. */
    CHECK_OK(pt_frame_with_column(fr, "d", pt_cast(pt_col("s"), PT_TYPE_DICT), &cast, &e), &e);
    pt_table *ct = NULL;
    CHECK_OK(pt_frame_collect(cast, &ct, &e), &e);
    CHECK(pt_table_column(ct, "d")->type == PT_TYPE_DICT);
    CHECK_OK(pt_frame_from_table(ctx, ct, 5, &cat, &e), &e);
    pt_table_free(ct);
    pt_frame_free(cast);
    const char *keys[3] = {"k64", "k32", "d"};
    for (int kk = 0; kk < 3; kk++) {
        pt_table *res[2];
        for (int v = 0; v < 2; v++) {
            if (v) setenv("PARTITA_GROUPBY_FUSED", "off", 1);
            pt_frame *g, *o;
            pt_expr *k[1] = {pt_col(keys[kk])};
            pt_expr *a[7] = {P("count(*) AS n"), P("sum(v64) AS s64"), P("sum(v32) AS s32"),
                             P("avg(f) AS mf"), P("avg(v64) AS m64"), P("min(v32) AS lo"),
                             P("max(v64) AS hi")};
            CHECK_OK(pt_frame_groupby(cat, 1, k, 7, a, &g, &e), &e);
            pt_expr *sk[1] = {pt_col(keys[kk])};
            CHECK_OK(pt_frame_sort(g, 1, sk, NULL, &o, &e), &e);
            CHECK_OK(pt_frame_collect(o, &res[v], &e), &e);
            unsetenv("PARTITA_GROUPBY_FUSED");
            pt_frame_free(o);
            pt_frame_free(g);
        }
        CHECK_EQ_I(res[0]->nrows, res[1]->nrows);
        for (int c = 0; c < res[0]->schema->nfields; c++) {
            for (int64_t i = 0; i < res[0]->nrows; i++) {
                const pt_column *x = res[0]->cols[c], *y = res[1]->cols[c];
                if (pt_type_is_string(x->type)) {
                    int64_t lx, ly;
                    const char *sx = pt_column_str(x, i, &lx), *sy = pt_column_str(y, i, &ly);
                    CHECK(lx == ly && memcmp(sx, sy, (size_t)lx) == 0);
                } else {
                    CHECK_NEAR(pt_column_get_f64(x, i), pt_column_get_f64(y, i), 1e-12);
                }
            }
        }
        pt_table_free(res[0]);
        pt_table_free(res[1]);
    }
    /* Overflow: the fused path steps aside and the kernel names the column. */
    int64_t big[4] = {INT64_MAX - 1, 5, INT64_MAX - 2, 7}, kz[4] = {1, 1, 1, 1};
    const char *bn[2] = {"k", "b"};
    pt_type bt[2] = {PT_TYPE_INT64, PT_TYPE_INT64};
    const void *bd[2] = {kz, big};
    pt_frame *bf, *bg;
    CHECK_OK(pt_frame_from_arrays(ctx, 2, bn, bt, bd, 4, 2, &bf, &e), &e);
    pt_expr *bk[1] = {pt_col("k")}, *ba[1] = {P("sum(b) AS s")};
    CHECK_OK(pt_frame_groupby(bf, 1, bk, 1, ba, &bg, &e), &e);
    pt_table *bt2 = NULL;
    CHECK_EQ_I(pt_frame_collect(bg, &bt2, &e), PT_ERANGE);
    CHECK_CONTAINS(e.msg, "sum");
    pt_frame_free(bg);
    pt_frame_free(bf);
    pt_frame_free(cat);
    pt_frame_free(fr);
    free(k64);
    free(v64);
    free(k32);
    free(v32);
    free(f);
    free(s);
    pt_ctx_free(ctx);
}
