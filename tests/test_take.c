/* Tests of row gather (take) and mask filter against a reference built
 * value by value with the append API. */
#include "pt_test.h"

/* A table with every type, nulls in every column, built row by row. */
static pt_table *sample(int64_t n) {
    const char *names[] = {"b", "i32", "i64", "f32", "f64", "s", "d"};
    pt_type types[] = {PT_TYPE_BOOL,    PT_TYPE_INT32, PT_TYPE_INT64, PT_TYPE_FLOAT32,
                       PT_TYPE_FLOAT64, PT_TYPE_UTF8,  PT_TYPE_DICT};
    pt_column *cols[7];
    pt_column *dict;
    if (pt_column_new(NULL, PT_TYPE_UTF8, 3, 16, &dict, NULL)) return NULL;
    if (pt_column_append_str(dict, "red", 3, NULL) || pt_column_append_str(dict, "green", 5, NULL) ||
        pt_column_append_str(dict, "blue", 4, NULL))
        return NULL;
    for (int j = 0; j < 6; j++)
        if (pt_column_new(NULL, types[j], 4, 16, &cols[j], NULL)) return NULL;
    if (pt_column_new_dict(NULL, dict, 4, &cols[6], NULL)) return NULL;
    pt_column_release(dict);
    for (int64_t i = 0; i < n; i++) {
        bool null = i % 5 == 3;
        char buf[32];
        int len = snprintf(buf, sizeof buf, "s%lld", (long long)(i * 7));
        for (int j = 0; j < 7; j++) {
            pt_status st;
            if (null && j != 2) {
                st = pt_column_append_null(cols[j], NULL);
            } else {
                switch (j) {
                case 0: st = pt_column_append_bool(cols[j], i % 3 == 0, NULL); break;
                case 1: st = pt_column_append_i32(cols[j], (int32_t)(i * 3 - 7), NULL); break;
                case 2: st = pt_column_append_i64(cols[j], i * 1000003LL, NULL); break;
                case 3: st = pt_column_append_f32(cols[j], (float)i / 4, NULL); break;
                case 4: st = pt_column_append_f64(cols[j], (double)i / 3, NULL); break;
                case 5: st = pt_column_append_str(cols[j], buf, len, NULL); break;
                default: st = pt_column_append_index(cols[j], (int32_t)(i % 3), NULL); break;
                }
            }
            if (st) return NULL;
        }
    }
    pt_schema *s;
    if (pt_schema_new(7, names, types, &s, NULL)) return NULL;
    pt_table *t;
    if (pt_table_new(s, cols, &t, NULL)) return NULL;
    return t;
}

TEST(take_matches_rebuilt_reference) {
    int64_t before = pt_alloc_bytes_in_use();
    pt_error e;
    pt_table *t = sample(200);
    CHECK(t != NULL);
    /* Reverse every third row, repeat some, and add -1 (null) entries. */
    int64_t idx[300];
    int64_t n = 0;
    for (int64_t i = 199; i >= 0; i -= 3) idx[n++] = i;
    for (int64_t i = 0; i < 40; i++) idx[n++] = (i * 37) % 200;
    idx[n++] = -1;
    idx[n++] = 5;
    idx[n++] = -7;
    pt_table *r;
    CHECK_OK(pt_table_take(NULL, t, idx, n, &r, &e), &e);
    CHECK_EQ_I(r->nrows, n);
    /* Reference: take each row as a one-row slice, or a null row. */
    for (int64_t k = 0; k < n; k++) {
        for (int j = 0; j < 7; j++) {
            char a[64], b[64];
            pt_column_format(r->cols[j], k, 6, a, sizeof a);
            if (idx[k] < 0) {
                CHECK_MSG(!pt_column_is_valid(r->cols[j], k), "row %lld col %d not null", (long long)k, j);
            } else {
                pt_column_format(t->cols[j], idx[k], 6, b, sizeof b);
                CHECK_MSG(strcmp(a, b) == 0, "row %lld col %d: %s vs %s", (long long)k, j, a, b);
            }
        }
    }
    int64_t nulls = 0;
    for (int64_t k = 0; k < n; k++) nulls += idx[k] < 0 || (idx[k] % 5 == 3);
    CHECK_EQ_I(r->cols[0]->null_count, nulls);
    pt_table_free(r);
    /* Out-of-range index is an error naming the position. */
    int64_t bad[2] = {0, 200};
    CHECK_EQ_I(pt_table_take(NULL, t, bad, 2, &r, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "position 1");
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), before);
}

TEST(take_from_slice_honours_offset) {
    pt_error e;
    pt_table *t = sample(50), *s, *r, *r2;
    CHECK(t != NULL);
    CHECK_OK(pt_table_slice(t, 13, 20, &s, &e), &e);
    int64_t idx[5] = {0, 19, 4, 4, 7};
    int64_t idx2[5] = {13, 32, 17, 17, 20};
    CHECK_OK(pt_table_take(NULL, s, idx, 5, &r, &e), &e);
    CHECK_OK(pt_table_take(NULL, t, idx2, 5, &r2, &e), &e);
    char why[200];
    CHECK_MSG(pt_table_equal(r, r2, why, sizeof why), "%s", why);
    pt_table_free(r);
    pt_table_free(r2);
    pt_table_free(s);
    pt_table_free(t);
}

TEST(filter_keeps_masked_rows) {
    pt_error e;
    pt_table *t = sample(100), *f, *ref;
    CHECK(t != NULL);
    uint8_t mask[100];
    int64_t idx[100], n = 0;
    for (int i = 0; i < 100; i++) {
        mask[i] = (uint8_t)((i * 7919) % 3 == 0 ? 2 : 0); /* any non-zero byte keeps */
        if (mask[i]) idx[n++] = i;
    }
    CHECK_OK(pt_table_filter(NULL, t, mask, &f, &e), &e);
    CHECK_OK(pt_table_take(NULL, t, idx, n, &ref, &e), &e);
    CHECK_EQ_I(f->nrows, n);
    char why[200];
    CHECK_MSG(pt_table_equal(f, ref, why, sizeof why), "%s", why);
    pt_table_free(f);
    pt_table_free(ref);
    memset(mask, 0, sizeof mask);
    CHECK_OK(pt_table_filter(NULL, t, mask, &f, &e), &e);
    CHECK_EQ_I(f->nrows, 0);
    pt_table_free(f);
    pt_table_free(t);
}

TEST(take_null_column) {
    int64_t before = pt_alloc_bytes_in_use();
    pt_error e;
    pt_column *c, *r;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_NULL, 10, 0, &c, &e), &e);
    for (int i = 0; i < 10; i++) CHECK_OK(pt_column_append_null(c, &e), &e);
    int64_t idx[3] = {9, 0, -1};
    CHECK_OK(pt_column_take(NULL, c, idx, 3, &r, &e), &e);
    CHECK_EQ_I(r->length, 3);
    CHECK_EQ_I(r->null_count, 3);
    for (int i = 0; i < 3; i++) CHECK(!pt_column_is_valid(r, i));
    pt_column_release(r);
    pt_column_release(c);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), before);
}
