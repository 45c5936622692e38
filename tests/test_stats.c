/*
 * test_stats.c - column statistics against references computed here: a
 * two-pass mean and variance, distinct counts and top values from a sorted
 * copy, on data with nulls, over many partition counts, on ill-conditioned
 * data, with a HyperLogLog estimate, and streamed from CSV (also under a
 * memory budget smaller than the file).
 */
#include <stdint.h>

#include "pt_test.h"

static pt_ctx *ctx_with(int threads, int64_t limit) {
    pt_ctx_opts o;
    pt_ctx_opts_init(&o);
    o.threads = threads;
    o.memory_limit = limit;
    pt_ctx *ctx = NULL;
    pt_error err;
    if (pt_ctx_new(&o, &ctx, &err) != PT_OK) fprintf(stderr, "pt_ctx_new: %s\n", err.msg);
    return ctx;
}

/* ------------------------------------------------------------------------ */
/* References                                                               */
/* ------------------------------------------------------------------------ */

typedef struct ref_num {
    int64_t count, nulls;
    double mean, std, min, max;
} ref_num;

/* Two-pass: mean = sum / n, then var = sum((x - mean)^2) / (n - 1). The sums
 * are long double: a plain double sum of 1e5 values near 1e9 is off by ~1e-5
 * in the mean, which would make the reference itself the least accurate
 * number in the ill-conditioned test. */
static ref_num ref_numeric(const double *x, const unsigned char *valid, int64_t n) {
    ref_num r = {0, 0, NAN, NAN, NAN, NAN};
    long double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!valid[i]) {
            r.nulls++;
            continue;
        }
        sum += x[i];
        if (r.count == 0 || x[i] < r.min) r.min = x[i];
        if (r.count == 0 || x[i] > r.max) r.max = x[i];
        r.count++;
    }
    if (r.count == 0) return r;
    long double mean = sum / r.count, ss = 0;
    r.mean = (double)mean;
    for (int64_t i = 0; i < n; i++)
        if (valid[i]) ss += (x[i] - mean) * (x[i] - mean);
    if (r.count > 1) r.std = (double)sqrtl(ss / (r.count - 1));
    return r;
}

typedef struct ref_top {
    const char *text;
    int64_t count;
} ref_top;

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_top(const void *a, const void *b) {
    const ref_top *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->text, y->text);
}

/* Distinct count and the 5 most frequent values (ties by text) of the
 * non-NULL strings, by sorting a copy. `top` needs room for n entries. */
static int64_t ref_text(const char **vals, int64_t n, ref_top *top, int *ntop) {
    const char **v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (vals[i]) v[m++] = vals[i];
    qsort(v, (size_t)m, sizeof *v, cmp_str);
    int64_t d = 0;
    for (int64_t i = 0; i < m;) {
        int64_t j = i;
        while (j < m && strcmp(v[j], v[i]) == 0) j++;
        top[d].text = v[i];
        top[d].count = j - i;
        d++;
        i = j;
    }
    qsort(top, (size_t)d, sizeof *top, cmp_top);
    *ntop = d < PT_STATS_TOP ? (int)d : PT_STATS_TOP;
    free(v);
    return d;
}

/* ------------------------------------------------------------------------ */
/* Test data                                                                */
/* ------------------------------------------------------------------------ */

typedef struct data {
    int64_t n;
    double *x;          /* float64 with nulls */
    unsigned char *xv;
    int64_t *k;         /* int64, no nulls */
    unsigned char *kv;
    double *kd;         /* k as doubles, for the reference */
    const char **s;     /* text with nulls (NULL) */
    char *sbuf;
    pt_table *t;        /* x float64, k int64, s utf8, d dict (same text as s) */
} data;

static void data_free(data *d) {
    free(d->x);
    free(d->xv);
    free(d->k);
    free(d->kv);
    free(d->kd);
    free(d->s);
    free(d->sbuf);
    pt_table_free(d->t);
}

/* n rows: x ~ offset + normal-ish noise * scale with 10% nulls; k in
 * [-500, 500); s and d = "w%d" with a skewed distribution over `card` values
 * and 5% nulls. */
static int make_data(data *d, int64_t n, double offset, double scale, int card, uint64_t seed) {
    memset(d, 0, sizeof *d);
    d->n = n;
    d->x = malloc((size_t)n * sizeof *d->x);
    d->xv = malloc((size_t)n);
    d->k = malloc((size_t)n * sizeof *d->k);
    d->kd = malloc((size_t)n * sizeof *d->kd);
    d->kv = malloc((size_t)n);
    d->s = malloc((size_t)n * sizeof *d->s);
    d->sbuf = malloc((size_t)n * 16);
    pt_rng r;
    pt_rng_seed(&r, seed);
    pt_error err;
    pt_column *cx, *ck, *cs, *cd, *dict;
    if (pt_column_new(NULL, PT_TYPE_FLOAT64, n, 0, &cx, &err) ||
        pt_column_new(NULL, PT_TYPE_INT64, n, 0, &ck, &err) ||
        pt_column_new(NULL, PT_TYPE_UTF8, n, n * 8, &cs, &err) ||
        pt_column_new(NULL, PT_TYPE_UTF8, card, card * 8, &dict, &err))
        return 0;
    /* Dictionary with every possible value, in reverse order, plus unused
     * entries: only the values present may count as distinct. */
    for (int v = card + 2; v >= 0; v--) {
        char b[16];
        int len = snprintf(b, sizeof b, "w%d", v);
        if (pt_column_append_str(dict, b, len, &err)) return 0;
    }
    if (pt_column_new_dict(NULL, dict, n, &cd, &err)) return 0;
    pt_column_release(dict);
    for (int64_t i = 0; i < n; i++) {
        double u = pt_rng_uniform(&r);
        d->xv[i] = u >= 0.1;
        d->x[i] = offset + scale * pt_rng_normal(&r);
        if (d->xv[i]) {
            if (pt_column_append_f64(cx, d->x[i], &err)) return 0;
        } else if (pt_column_append_null(cx, &err)) {
            return 0;
        }
        d->k[i] = (int64_t)pt_rng_below(&r, 1000) - 500;
        d->kd[i] = (double)d->k[i];
        d->kv[i] = 1;
        if (pt_column_append_i64(ck, d->k[i], &err)) return 0;
        if (pt_rng_uniform(&r) < 0.05) {
            d->s[i] = NULL;
            if (pt_column_append_null(cs, &err) || pt_column_append_null(cd, &err)) return 0;
        } else {
            double w = pt_rng_uniform(&r);
            int v = (int)(w * w * w * card);
            char *b = d->sbuf + i * 16;
            int len = snprintf(b, 16, "w%d", v);
            d->s[i] = b;
            if (pt_column_append_str(cs, b, len, &err)) return 0;
            if (pt_column_append_index(cd, card + 2 - v, &err)) return 0;
        }
    }
    const char *names[] = {"x", "k", "s", "d"};
    pt_type types[] = {PT_TYPE_FLOAT64, PT_TYPE_INT64, PT_TYPE_UTF8, PT_TYPE_DICT};
    pt_schema *schema;
    if (pt_schema_new(4, names, types, &schema, &err)) return 0;
    pt_column *cols[] = {cx, ck, cs, cd};
    return pt_table_new(schema, cols, &d->t, &err) == PT_OK;
}

#define CHECK_NUM(cs, ref, tol)                                                 \
    do {                                                                       \
        CHECK_EQ_I((cs)->count, (ref).count);                                  \
        CHECK_EQ_I((cs)->nulls, (ref).nulls);                                  \
        CHECK((cs)->min == (ref).min);                                         \
        CHECK((cs)->max == (ref).max);                                         \
        CHECK_MSG(fabs((cs)->mean - (ref).mean) <= (tol) * fabs((ref).mean) + 1e-300 || \
                      fabs((cs)->mean - (ref).mean) <= (tol),                  \
                  "mean %.17g vs %.17g", (cs)->mean, (ref).mean);              \
        CHECK_MSG(fabs((cs)->std - (ref).std) <= (tol) * (ref).std,            \
                  "std %.17g vs %.17g", (cs)->std, (ref).std);                 \
    } while (0)

static void check_text(const pt_col_stats *cs, const char **vals, int64_t n) {
    ref_top *top = malloc((size_t)(n > 0 ? n : 1) * sizeof *top);
    int ntop;
    int64_t distinct = ref_text(vals, n, top, &ntop);
    int64_t nn = 0;
    for (int64_t i = 0; i < n; i++) nn += vals[i] == NULL;
    CHECK_EQ_I(cs->count, n - nn);
    CHECK_EQ_I(cs->nulls, nn);
    CHECK_EQ_I(cs->distinct, distinct);
    CHECK(cs->distinct_exact && cs->top_exact);
    CHECK_EQ_I(cs->ntop, ntop);
    for (int i = 0; i < ntop; i++) {
        CHECK_STR(cs->top[i].text, top[i].text);
        CHECK_EQ_I(cs->top[i].count, top[i].count);
    }
    CHECK(isnan(cs->mean) && isnan(cs->std));
    free(top);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

TEST(against_two_pass_reference_for_any_partition_count) {
    pt_error err;
    pt_ctx *ctx = ctx_with(2, 0);
    CHECK(ctx);
    data d;
    CHECK(make_data(&d, 50001, 3.0, 2.0, 300, 1));
    ref_num rx = ref_numeric(d.x, d.xv, d.n), rk = ref_numeric(d.kd, d.kv, d.n);
    const int64_t parts[] = {1, 2, 7, 64, 1000, 50001};
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
        pt_stats_opts o;
        pt_stats_opts_init(&o);
        o.partitions = parts[p];
        pt_stats *st = NULL;
        CHECK_OK(pt_stats_table(ctx, d.t, &o, &st, &err), &err);
        CHECK_EQ_I(st->ncols, 4);
        CHECK_EQ_I(st->rows, d.n);
        CHECK_EQ_I(st->partitions, parts[p]);
        CHECK_STR(st->cols[0].name, "x");
        CHECK_NUM(&st->cols[0], rx, 1e-12);
        CHECK_NUM(&st->cols[1], rk, 1e-12);
        CHECK_EQ_I(st->cols[0].distinct, -1);
        check_text(&st->cols[2], d.s, d.n);
        check_text(&st->cols[3], d.s, d.n);
        pt_stats_free(st);
    }
    data_free(&d);
    pt_ctx_free(ctx);
}

TEST(ill_conditioned_data) {
    pt_error err;
    pt_ctx *ctx = ctx_with(2, 0);
    CHECK(ctx);
    data d;
    /* 1e9 + noise of sd 1e-3: x^2 ~ 1e18 swamps the variance (1e-6). */
    CHECK(make_data(&d, 200000, 1e9, 1e-3, 10, 2));
    ref_num r = ref_numeric(d.x, d.xv, d.n);
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < d.n; i++)
        if (d.xv[i]) sum += d.x[i], sq += d.x[i] * d.x[i];
    double naive_var = (sq - sum * sum / r.count) / (r.count - 1);
    double ref_var = r.std * r.std;
    /* The textbook one-pass formula is useless here... */
    CHECK_MSG(!(fabs(naive_var - ref_var) < 0.5 * ref_var), "naive %.17g vs %.17g", naive_var,
              ref_var);
    /* ...but the merged statistics match the two-pass reference. */
    const int64_t parts[] = {1, 13, 256};
    for (size_t p = 0; p < 3; p++) {
        pt_stats_opts o;
        pt_stats_opts_init(&o);
        o.partitions = parts[p];
        pt_stats *st = NULL;
        CHECK_OK(pt_stats_table(ctx, d.t, &o, &st, &err), &err);
        CHECK_NUM(&st->cols[0], r, 1e-9);
        CHECK_MSG(fabs(st->cols[0].m2 / (r.count - 1) - ref_var) <= 1e-9 * ref_var,
                  "m2 %.17g", st->cols[0].m2);
        pt_stats_free(st);
    }
    data_free(&d);
    pt_ctx_free(ctx);
}

TEST(edge_cases) {
    pt_error err;
    pt_ctx *ctx = ctx_with(2, 0);
    CHECK(ctx);
    /* one value, all-null and empty columns */
    pt_column *a, *b, *c;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_FLOAT64, 2, 0, &a, &err), &err);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 2, 0, &b, &err), &err);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_UTF8, 2, 0, &c, &err), &err);
    CHECK_OK(pt_column_append_f64(a, 2.5, &err), &err);
    CHECK_OK(pt_column_append_null(a, &err), &err);
    CHECK_OK(pt_column_append_null(b, &err), &err);
    CHECK_OK(pt_column_append_null(b, &err), &err);
    CHECK_OK(pt_column_append_str(c, "b", 1, &err), &err);
    CHECK_OK(pt_column_append_str(c, "a", 1, &err), &err);
    const char *names[] = {"a", "b", "c"};
    pt_type types[] = {PT_TYPE_FLOAT64, PT_TYPE_INT64, PT_TYPE_UTF8};
    pt_schema *schema;
    CHECK_OK(pt_schema_new(3, names, types, &schema, &err), &err);
    pt_column *cols[] = {a, b, c};
    pt_table *t;
    CHECK_OK(pt_table_new(schema, cols, &t, &err), &err);
    pt_stats *st = NULL;
    CHECK_OK(pt_stats_table(ctx, t, NULL, &st, &err), &err);
    CHECK_EQ_I(st->cols[0].count, 1);
    CHECK(st->cols[0].mean == 2.5 && st->cols[0].min == 2.5 && st->cols[0].max == 2.5);
    CHECK(isnan(st->cols[0].std)); /* n < 2 */
    CHECK_EQ_I(st->cols[1].count, 0);
    CHECK_EQ_I(st->cols[1].nulls, 2);
    CHECK(isnan(st->cols[1].mean) && isnan(st->cols[1].min) && isnan(st->cols[1].std));
    /* a tie: both values once, text order decides */
    CHECK_EQ_I(st->cols[2].ntop, 2);
    CHECK_STR(st->cols[2].top[0].text, "a");
    CHECK_STR(st->cols[2].top[1].text, "b");
    pt_stats_free(st);
    pt_table *empty;
    CHECK_OK(pt_table_slice(t, 0, 0, &empty, &err), &err);
    CHECK_OK(pt_stats_table(ctx, empty, NULL, &st, &err), &err);
    CHECK_EQ_I(st->rows, 0);
    CHECK_EQ_I(st->cols[0].count, 0);
    CHECK_EQ_I(st->cols[2].distinct, 0);
    CHECK(isnan(st->cols[0].mean));
    pt_stats_free(st);
    pt_table_free(empty);
    pt_table_free(t);
    CHECK(pt_stats_table(ctx, NULL, NULL, &st, &err) == PT_EINVAL);
    pt_ctx_free(ctx);
}

TEST(hyperloglog_for_a_million_distinct) {
    pt_error err;
    pt_ctx *ctx = ctx_with(2, 0);
    CHECK(ctx);
    const int64_t n = 1000000;
    pt_column *c;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_UTF8, n, n * 8, &c, &err), &err);
    for (int64_t i = 0; i < n; i++) {
        char b[16];
        /* every value once, plus a frequent one */
        int len = i % 10 == 0 ? snprintf(b, sizeof b, "hot") : snprintf(b, sizeof b, "u%07lld", (long long)i);
        CHECK_OK(pt_column_append_str(c, b, len, &err), &err);
    }
    const int64_t distinct = n - n / 10 + 1;
    const char *names[] = {"u"};
    pt_type types[] = {PT_TYPE_UTF8};
    pt_schema *schema;
    CHECK_OK(pt_schema_new(1, names, types, &schema, &err), &err);
    pt_table *t;
    CHECK_OK(pt_table_new(schema, &c, &t, &err), &err);
    pt_stats_opts o;
    pt_stats_opts_init(&o);
    o.exact_distinct_limit = 1000;
    pt_stats *st = NULL;
    CHECK_OK(pt_stats_table(ctx, t, &o, &st, &err), &err);
    CHECK(!st->cols[0].distinct_exact);
    CHECK(!st->cols[0].top_exact);
    double rel = fabs((double)st->cols[0].distinct - distinct) / distinct;
    CHECK_MSG(rel < 0.02, "estimate %lld for %lld (%.2f%%)", (long long)st->cols[0].distinct,
              (long long)distinct, rel * 100);
    CHECK_EQ_I(st->cols[0].count, n);
    CHECK(st->cols[0].ntop >= 1);
    CHECK_STR(st->cols[0].top[0].text, "hot"); /* the frequent value survives the pruning */
    pt_stats_free(st);
    /* With the default limit the same data is counted exactly. */
    CHECK_OK(pt_stats_table(ctx, t, NULL, &st, &err), &err);
    CHECK(st->cols[0].distinct_exact);
    CHECK_EQ_I(st->cols[0].distinct, distinct);
    CHECK_EQ_I(st->cols[0].top[0].count, n / 10);
    pt_stats_free(st);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

/* Writes the data as CSV: floats with 17 digits so they read back exactly. */
static const char *write_csv(const data *d, const char *name) {
    const char *path = pt_test_tmp(name);
    FILE *f = fopen(path, "w");
    if (!f) return NULL;
    fprintf(f, "x,k,s\n");
    for (int64_t i = 0; i < d->n; i++) {
        if (d->xv[i]) fprintf(f, "%.17g", d->x[i]);
        fprintf(f, ",%lld,%s\n", (long long)d->k[i], d->s[i] ? d->s[i] : "");
    }
    fclose(f);
    return path;
}

static void check_same_stats(const pt_stats *a, const pt_stats *b, double tol) {
    CHECK_EQ_I(a->ncols, b->ncols);
    CHECK_EQ_I(a->rows, b->rows);
    for (int c = 0; c < a->ncols; c++) {
        const pt_col_stats *x = &a->cols[c], *y = &b->cols[c];
        CHECK_STR(x->name, y->name);
        CHECK_EQ_I(x->count, y->count);
        CHECK_EQ_I(x->nulls, y->nulls);
        CHECK_EQ_I(x->distinct, y->distinct);
        CHECK((isnan(x->min) && isnan(y->min)) || x->min == y->min);
        CHECK((isnan(x->max) && isnan(y->max)) || x->max == y->max);
        if (!isnan(x->mean)) CHECK_NEAR(x->mean, y->mean, tol);
        if (!isnan(x->std)) CHECK_NEAR(x->std, y->std, tol);
        CHECK_EQ_I(x->ntop, y->ntop);
        for (int i = 0; i < x->ntop; i++) {
            CHECK_STR(x->top[i].text, y->top[i].text);
            CHECK_EQ_I(x->top[i].count, y->top[i].count);
        }
    }
}

TEST(csv_streaming_equals_in_memory) {
    pt_error err;
    pt_ctx *ctx = ctx_with(2, 0);
    CHECK(ctx);
    data d;
    CHECK(make_data(&d, 100000, -7.0, 3.0, 500, 3));
    const char *path = write_csv(&d, "stats.csv");
    CHECK(path);
    /* the same data as a table without the dict column */
    const char *names[] = {"x", "k", "s"};
    pt_table *sel;
    CHECK_OK(pt_table_select(d.t, names, 3, &sel, &err), &err);
    pt_stats *mem = NULL, *csv = NULL;
    CHECK_OK(pt_stats_table(ctx, sel, NULL, &mem, &err), &err);
    pt_csv_opts co;
    pt_csv_opts_init(&co);
    co.progress = 0;
    co.batch_bytes = 256 * 1024; /* several batches */
    CHECK_OK(pt_stats_csv(ctx, path, &co, NULL, &csv, &err), &err);
    CHECK_MSG(csv->batches > 1, "%lld batches", (long long)csv->batches);
    check_same_stats(mem, csv, 1e-12);
    /* and against the reference directly */
    ref_num rx = ref_numeric(d.x, d.xv, d.n);
    CHECK_NUM(&csv->cols[0], rx, 1e-12);
    check_text(&csv->cols[2], d.s, d.n);
    pt_stats_free(mem);
    pt_stats_free(csv);
    pt_table_free(sel);
    data_free(&d);
    pt_ctx_free(ctx);
}

TEST(csv_streaming_under_a_memory_limit) {
    pt_error err;
    data d;
    CHECK(make_data(&d, 300000, 100.0, 10.0, 2000, 4));
    const char *path = write_csv(&d, "limited.csv");
    CHECK(path);
    FILE *f = fopen(path, "rb");
    CHECK(f);
    fseek(f, 0, SEEK_END);
    int64_t size = ftell(f);
    fclose(f);
    int64_t limit = size / 3;
    pt_ctx *free_ctx = ctx_with(2, 0), *small = ctx_with(2, limit);
    CHECK(free_ctx && small);
    pt_csv_opts co;
    pt_csv_opts_init(&co);
    co.progress = 0;
    pt_stats *a = NULL, *b = NULL;
    CHECK_OK(pt_stats_csv(free_ctx, path, &co, NULL, &a, &err), &err);
    CHECK_OK(pt_stats_csv(small, path, &co, NULL, &b, &err), &err);
    check_same_stats(a, b, 1e-12);
    CHECK_MSG(b->batches > 1, "%lld batches", (long long)b->batches);
    CHECK_MSG(b->peak_memory <= limit + limit / 2, "peak %lld for a limit of %lld (file %lld)",
              (long long)b->peak_memory, (long long)limit, (long long)size);
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(small)), 0);
    pt_stats_free(a);
    pt_stats_free(b);
    data_free(&d);
    pt_ctx_free(free_ctx);
    pt_ctx_free(small);
}

TEST(csv_widening_between_batches) {
    pt_error err;
    pt_ctx *ctx = ctx_with(2, 0);
    CHECK(ctx);
    const char *path = pt_test_tmp("widen.csv");
    FILE *f = fopen(path, "w");
    CHECK(f);
    fprintf(f, "a,b\n");
    const int n = 60000;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        /* integers at first, a fraction far past the sample */
        double v = i == 50000 ? 0.5 : (double)(i % 1000);
        if (i == 50000)
            fprintf(f, "0.5,x%d\n", i % 7);
        else
            fprintf(f, "%d,x%d\n", i % 1000, i % 7);
        sum += v;
    }
    fclose(f);
    pt_csv_opts co;
    pt_csv_opts_init(&co);
    co.progress = 0;
    co.sample_rows = 100;
    co.batch_bytes = 64 * 1024;
    pt_stats *st = NULL;
    CHECK_OK(pt_stats_csv(ctx, path, &co, NULL, &st, &err), &err);
    CHECK_EQ_I(st->cols[0].count, n);
    CHECK_EQ_I(st->cols[0].type, PT_TYPE_FLOAT64);
    CHECK_NEAR(st->cols[0].mean, sum / n, 1e-12);
    CHECK(st->cols[0].min == 0 && st->cols[0].max == 999);
    CHECK_EQ_I(st->cols[1].distinct, 7);
    pt_stats_free(st);
    /* a missing file names the path */
    CHECK(pt_stats_csv(ctx, "/nonexistent/partita.csv", &co, NULL, &st, &err) != PT_OK);
    CHECK_CONTAINS(err.msg, "/nonexistent/partita.csv");
    pt_ctx_free(ctx);
}

TEST(print_has_a_row_per_column) {
    pt_error err;
    pt_ctx *ctx = ctx_with(1, 0);
    CHECK(ctx);
    data d;
    CHECK(make_data(&d, 1000, 0, 1, 20, 5));
    pt_stats *st = NULL;
    CHECK_OK(pt_stats_table(ctx, d.t, NULL, &st, &err), &err);
    const char *path = pt_test_tmp("print.txt");
    FILE *f = fopen(path, "w+");
    CHECK(f);
    pt_stats_print(st, f);
    rewind(f);
    char line[512];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        if (lines == 0) CHECK(strstr(line, "column") && strstr(line, "mean") && strstr(line, "top values"));
        if (lines == 2) CHECK(strncmp(line, "x ", 2) == 0);
        lines++;
    }
    fclose(f);
    CHECK_EQ_I(lines, 2 + 4); /* header, rule, one line per column */
    pt_stats_free(st);
    data_free(&d);
    pt_ctx_free(ctx);
}
