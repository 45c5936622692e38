/*
 * test_gen.c - data generators: determinism across thread counts, value
 * ranges and text formats, row counts, and the streaming CSV writer checked
 * against the in-memory tables by parsing the file here (not with io).
 */
#include <ctype.h>
#include <stdint.h>

#include "pt_test.h"

static pt_ctx *ctx_with(int threads) {
    pt_ctx_opts o;
    pt_ctx_opts_init(&o);
    o.threads = threads;
    pt_ctx *ctx = NULL;
    pt_error err;
    if (pt_ctx_new(&o, &ctx, &err) != PT_OK) fprintf(stderr, "pt_ctx_new: %s\n", err.msg);
    return ctx;
}

/* Text of row i of a utf8 or dict column as a NUL-terminated string. */
static const char *text_at(const pt_column *c, int64_t i, char *buf, size_t cap) {
    int64_t len;
    const char *s = pt_column_str(c, i, &len);
    if ((size_t)len >= cap) len = (int64_t)cap - 1;
    memcpy(buf, s, (size_t)len);
    buf[len] = '\0';
    return buf;
}

/* "id" followed by exactly `digits` digits (at least, when digits < 0). */
static int id_format(const char *s, int digits, long long *value) {
    if (s[0] != 'i' || s[1] != 'd') return 0;
    int n = 0;
    for (const char *p = s + 2; *p; p++, n++)
        if (!isdigit((unsigned char)*p)) return 0;
    if (n != digits) return 0;
    *value = atoll(s + 2);
    return 1;
}

/* True when v printed with 6 decimals reads back as v (<= 6 decimals). */
static int six_decimals(double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.6f", v);
    return strtod(buf, NULL) == v;
}

TEST(same_seed_same_table_whatever_the_threads) {
    pt_error err;
    pt_ctx *c1 = ctx_with(1), *c2 = ctx_with(2);
    CHECK(c1 && c2);
    pt_table *a = NULL, *b = NULL, *c = NULL;
    char why[256];
    /* More rows than one generation chunk (65536), not a multiple of 8. */
    CHECK_OK(pt_gen_g1(c1, 200003, 100, 5, 7, &a, &err), &err);
    CHECK_OK(pt_gen_g1(c2, 200003, 100, 5, 7, &b, &err), &err);
    CHECK_MSG(pt_table_equal(a, b, why, sizeof why), "g1 1 vs 2 threads: %s", why);
    CHECK_OK(pt_gen_g1(c2, 200003, 100, 5, 8, &c, &err), &err);
    CHECK(!pt_table_equal(a, c, NULL, 0));
    pt_table_free(a);
    pt_table_free(b);
    pt_table_free(c);

    CHECK_OK(pt_gen_classic(c1, 150001, 42, &a, &err), &err);
    CHECK_OK(pt_gen_classic(c2, 150001, 42, &b, &err), &err);
    CHECK_MSG(pt_table_equal(a, b, why, sizeof why), "classic 1 vs 2 threads: %s", why);
    CHECK_OK(pt_gen_classic(c2, 150001, 43, &c, &err), &err);
    CHECK(!pt_table_equal(a, c, NULL, 0));
    pt_table_free(a);
    pt_table_free(b);
    pt_table_free(c);
    pt_ctx_free(c1);
    pt_ctx_free(c2);
}

TEST(g1_values_and_formats) {
    pt_error err;
    pt_ctx *ctx = ctx_with(2);
    CHECK(ctx);
    const int64_t n = 100000, k = 10, nk = n / k;
    pt_table *t = NULL;
    CHECK_OK(pt_gen_g1(ctx, n, k, 10, 3, &t, &err), &err);
    CHECK_EQ_I(t->nrows, n);
    CHECK_EQ_I(t->schema->nfields, 9);
    static const char *names[] = {"id1", "id2", "id3", "id4", "id5", "id6", "v1", "v2", "v3"};
    for (int c = 0; c < 9; c++) CHECK_STR(t->schema->fields[c].name, names[c]);
    CHECK(pt_type_is_string(t->cols[0]->type) && pt_type_is_string(t->cols[2]->type));
    CHECK_EQ_I(t->cols[8]->type, PT_TYPE_FLOAT64);
    int seen1[11] = {0}, seenv2[16] = {0};
    int64_t nulls[3] = {0};
    char buf[64];
    for (int64_t i = 0; i < n; i++) {
        long long v;
        for (int c = 0; c < 2; c++) {
            CHECK_MSG(id_format(text_at(t->cols[c], i, buf, sizeof buf), 3, &v) && v >= 1 && v <= k,
                      "row %lld id%d = '%s'", (long long)i, c + 1, buf);
            if (c == 0) seen1[v] = 1;
        }
        CHECK_MSG(id_format(text_at(t->cols[2], i, buf, sizeof buf), 10, &v) && v >= 1 && v <= nk,
                  "row %lld id3 = '%s'", (long long)i, buf);
        for (int c = 3; c < 6; c++) {
            CHECK(pt_column_is_valid(t->cols[c], i));
            int64_t x = pt_column_i64(t->cols[c])[i];
            CHECK_MSG(x >= 1 && x <= (c == 5 ? nk : k), "row %lld id%d = %lld", (long long)i,
                      c + 1, (long long)x);
        }
        for (int c = 0; c < 3; c++) CHECK(pt_column_is_valid(t->cols[c], i));
        if (pt_column_is_valid(t->cols[6], i)) {
            int64_t x = pt_column_i64(t->cols[6])[i];
            CHECK(x >= 1 && x <= 5);
        } else {
            nulls[0]++;
        }
        if (pt_column_is_valid(t->cols[7], i)) {
            int64_t x = pt_column_i64(t->cols[7])[i];
            CHECK(x >= 1 && x <= 15);
            seenv2[x] = 1;
        } else {
            nulls[1]++;
        }
        if (pt_column_is_valid(t->cols[8], i)) {
            double x = pt_column_f64(t->cols[8])[i];
            CHECK_MSG(x >= 0 && x <= 100 && six_decimals(x), "row %lld v3 = %.17g", (long long)i, x);
        } else {
            nulls[2]++;
        }
    }
    for (int v = 1; v <= k; v++) CHECK_MSG(seen1[v], "id1 never takes id%03d", v);
    for (int v = 1; v <= 15; v++) CHECK_MSG(seenv2[v], "v2 never takes %d", v);
    for (int c = 0; c < 3; c++) {
        /* 10% nulls: 10000 expected, sd ~95. */
        CHECK_MSG(nulls[c] > 9500 && nulls[c] < 10500, "v%d has %lld nulls", c + 1,
                  (long long)nulls[c]);
        CHECK_EQ_I(t->cols[6 + c]->null_count, nulls[c]);
    }
    pt_table_free(t);
    pt_ctx_free(ctx);
}

TEST(classic_values_and_formats) {
    pt_error err;
    pt_ctx *ctx = ctx_with(2);
    CHECK(ctx);
    const int64_t n = 200000;
    pt_table *t = NULL;
    CHECK_OK(pt_gen_classic(ctx, n, 11, &t, &err), &err);
    CHECK_EQ_I(t->nrows, n);
    static const char *names[] = {"id", "value1", "value2", "category", "score"};
    for (int c = 0; c < 5; c++) CHECK_STR(t->schema->fields[c].name, names[c]);
    CHECK_EQ_I(t->cols[3]->type, PT_TYPE_DICT);
    double s1 = 0, s2 = 0, q1 = 0, q2 = 0;
    int64_t cats[4] = {0}, scores[100] = {0};
    char buf[16];
    for (int64_t i = 0; i < n; i++) {
        CHECK_EQ_I(pt_column_i64(t->cols[0])[i], i);
        double a = pt_column_f64(t->cols[1])[i], b = pt_column_f64(t->cols[2])[i];
        CHECK_MSG(six_decimals(a) && six_decimals(b), "row %lld: %.17g %.17g", (long long)i, a, b);
        s1 += a, q1 += a * a, s2 += b, q2 += b * b;
        text_at(t->cols[3], i, buf, sizeof buf);
        CHECK_MSG(strlen(buf) == 1 && buf[0] >= 'A' && buf[0] <= 'D', "category '%s'", buf);
        cats[buf[0] - 'A']++;
        int64_t sc = pt_column_i64(t->cols[4])[i];
        CHECK(sc >= 0 && sc <= 99);
        scores[sc]++;
    }
    double m1 = s1 / n, m2 = s2 / n;
    double sd1 = sqrt(q1 / n - m1 * m1), sd2 = sqrt(q2 / n - m2 * m2);
    CHECK_MSG(fabs(m1 - 50) < 0.1 && fabs(sd1 - 10) < 0.1, "value1 mean %g sd %g", m1, sd1);
    CHECK_MSG(fabs(m2) < 0.01 && fabs(sd2 - 1) < 0.01, "value2 mean %g sd %g", m2, sd2);
    for (int c = 0; c < 4; c++) CHECK_MSG(labs((long)(cats[c] - n / 4)) < 1000, "category %c: %lld", 'A' + c, (long long)cats[c]);
    for (int s = 0; s < 100; s++) CHECK_MSG(scores[s] > 1500 && scores[s] < 2500, "score %d: %lld", s, (long long)scores[s]);
    pt_table_free(t);
    pt_ctx_free(ctx);
}

TEST(row_counts) {
    pt_error err;
    pt_ctx *ctx = ctx_with(2);
    CHECK(ctx);
    const int64_t counts[] = {0, 1, 7, 65536, 65537};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        pt_table *a = NULL, *b = NULL;
        CHECK_OK(pt_gen_classic(ctx, counts[i], 1, &a, &err), &err);
        CHECK_OK(pt_gen_g1(ctx, counts[i], 0, 50, 1, &b, &err), &err);
        CHECK_EQ_I(a->nrows, counts[i]);
        CHECK_EQ_I(b->nrows, counts[i]);
        for (int c = 0; c < b->schema->nfields; c++) CHECK_EQ_I(b->cols[c]->length, counts[i]);
        pt_table_free(a);
        pt_table_free(b);
    }
    pt_ctx_free(ctx);
}

TEST(bad_arguments) {
    pt_error err;
    pt_ctx *ctx = ctx_with(1);
    CHECK(ctx);
    pt_table *t = NULL;
    CHECK(pt_gen_g1(ctx, 10, 10, 150, 1, &t, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "nas_pct");
    CHECK(t == NULL);
    CHECK(pt_gen_classic(ctx, -5, 1, &t, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "nrows");
    pt_gen_kind kind;
    CHECK(pt_gen_kind_parse("h2o", &kind, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "'h2o'");
    CHECK_OK(pt_gen_kind_parse("g1", &kind, &err), &err);
    CHECK_EQ_I(kind, PT_GEN_G1);
    const char *bad = "/nonexistent-dir-partita/x.csv";
    CHECK(pt_gen_write_csv(ctx, PT_GEN_G1, 10, 10, 0, 1, bad, NULL, &err) != PT_OK);
    CHECK_CONTAINS(err.msg, bad);
    pt_ctx_free(ctx);
}

static char *slurp(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)*size + 1);
    if (buf && fread(buf, 1, (size_t)*size, f) != (size_t)*size) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[*size] = '\0';
    fclose(f);
    return buf;
}

/* Splits one line in place into at most `max` fields. */
static int split_line(char *line, char **fields, int max) {
    int n = 0;
    fields[n++] = line;
    for (char *p = line; *p; p++) {
        if (*p == ',') {
            *p = '\0';
            if (n < max) fields[n++] = p + 1;
        }
    }
    return n;
}

/* The CSV writer produces the in-memory generator's values, text for text. */
static void check_csv_matches(pt_gen_kind kind, int64_t n, double nas) {
    pt_error err;
    pt_ctx *c1 = ctx_with(1), *c2 = ctx_with(2);
    CHECK(c1 && c2);
    const char *p1 = pt_test_tmp(kind == PT_GEN_G1 ? "g1_t1.csv" : "cl_t1.csv");
    const char *p2 = pt_test_tmp(kind == PT_GEN_G1 ? "g1_t2.csv" : "cl_t2.csv");
    int64_t bytes1 = 0, bytes2 = 0;
    CHECK_OK(pt_gen_write_csv(c1, kind, n, 20, nas, 5, p1, &bytes1, &err), &err);
    CHECK_OK(pt_gen_write_csv(c2, kind, n, 20, nas, 5, p2, &bytes2, &err), &err);
    long s1, s2;
    char *f1 = slurp(p1, &s1), *f2 = slurp(p2, &s2);
    CHECK(f1 && f2);
    CHECK_EQ_I(s1, bytes1);
    CHECK(s1 == s2 && memcmp(f1, f2, (size_t)s1) == 0); /* byte-identical */
    pt_table *t = NULL;
    if (kind == PT_GEN_G1)
        CHECK_OK(pt_gen_g1(c2, n, 20, nas, 5, &t, &err), &err);
    else
        CHECK_OK(pt_gen_classic(c2, n, 5, &t, &err), &err);
    int ncols = t->schema->nfields;
    char *line = f1, *nl = strchr(line, '\n');
    CHECK(nl);
    *nl = '\0';
    CHECK_STR(line, kind == PT_GEN_G1 ? "id1,id2,id3,id4,id5,id6,v1,v2,v3"
                                      : "id,value1,value2,category,score");
    int64_t row = 0;
    char buf[64];
    for (line = nl + 1; *line; line = nl + 1, row++) {
        nl = strchr(line, '\n');
        CHECK(nl);
        *nl = '\0';
        char *fields[16];
        CHECK_EQ_I(split_line(line, fields, 16), ncols);
        CHECK(row < n);
        for (int c = 0; c < ncols; c++) {
            const pt_column *col = t->cols[c];
            if (!pt_column_is_valid(col, row)) {
                CHECK_MSG(fields[c][0] == '\0', "row %lld col %d: '%s' for a null",
                          (long long)row, c, fields[c]);
            } else if (pt_type_is_string(col->type)) {
                CHECK_STR(fields[c], text_at(col, row, buf, sizeof buf));
            } else if (col->type == PT_TYPE_INT64) {
                CHECK_EQ_I(strtoll(fields[c], NULL, 10), pt_column_i64(col)[row]);
            } else {
                double v = strtod(fields[c], NULL);
                CHECK_MSG(v == pt_column_f64(col)[row], "row %lld col %d: '%s' vs %.17g",
                          (long long)row, c, fields[c], pt_column_f64(col)[row]);
            }
        }
    }
    CHECK_EQ_I(row, n);
    free(f1);
    free(f2);
    pt_table_free(t);
    pt_ctx_free(c1);
    pt_ctx_free(c2);
}

TEST(csv_writer_matches_memory_g1) { check_csv_matches(PT_GEN_G1, 100003, 7); }
TEST(csv_writer_matches_memory_classic) { check_csv_matches(PT_GEN_CLASSIC, 70001, 0); }
