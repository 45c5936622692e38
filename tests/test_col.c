/* Tests of the col layer: builders with nulls for every type, slices of
 * slices against reference arrays, copy/concat/cast, schemas, tables,
 * equality with its explanation, printing, budgets and leaks. */
#include <pthread.h>
#include <stdint.h>

#include "pt_test.h"

/* Every test checks that it returns all the memory it took. */
#define LEAK_START() int64_t leak_start__ = pt_alloc_bytes_in_use()
#define LEAK_END() CHECK_EQ_I(pt_alloc_bytes_in_use(), leak_start__)

/* Reference pattern: row i is null when i % 7 == 3. */
static int ref_null(int64_t i) { return i % 7 == 3; }
static int64_t ref_i64(int64_t i) { return i * 1000003 - 77; }
static const char *ref_word(int64_t i) {
    static const char *const w[] = {"", "a", "bb", "ccc", "alpha", "beta", "gamma"};
    return w[(i * 5) % 7];
}

static pt_status build(pt_type t, int64_t n, pt_column **out, pt_error *e) {
    pt_column *c = NULL;
    pt_status s;
    if (t == PT_TYPE_DICT) {
        pt_column *d;
        PT_RETURN_NOT_OK(pt_column_new(NULL, PT_TYPE_UTF8, 0, 0, &d, e));
        /* Entry k is ref_word(k); the 7 words are distinct. */
        for (int k = 0; k < 7; k++) {
            s = pt_column_append_str(d, ref_word(k), -1, e);
            if (s) {
                pt_column_release(d);
                return s;
            }
        }
        s = pt_column_new_dict(NULL, d, 4, &c, e);
        pt_column_release(d);
        if (s) return s;
    } else {
        PT_RETURN_NOT_OK(pt_column_new(NULL, t, 2, 4, &c, e));
    }
    for (int64_t i = 0; i < n; i++) {
        if (ref_null(i)) {
            s = pt_column_append_null(c, e);
        } else {
            switch (t) {
            case PT_TYPE_NULL: s = pt_column_append_null(c, e); break;
            case PT_TYPE_BOOL: s = pt_column_append_bool(c, ref_i64(i) % 3 == 0, e); break;
            case PT_TYPE_INT32: s = pt_column_append_i32(c, (int32_t)(i * 7 - 50), e); break;
            case PT_TYPE_INT64: s = pt_column_append_i64(c, ref_i64(i), e); break;
            case PT_TYPE_FLOAT32: s = pt_column_append_f32(c, (float)i * 0.5f, e); break;
            case PT_TYPE_FLOAT64: s = pt_column_append_f64(c, (double)i / 4.0, e); break;
            case PT_TYPE_UTF8: s = pt_column_append_str(c, ref_word(i), -1, e); break;
            case PT_TYPE_DICT: s = pt_column_append_index(c, (int32_t)(i % 7), e); break;
            default: s = PT_EINVAL;
            }
        }
        if (s) {
            pt_column_release(c);
            return s;
        }
    }
    *out = c;
    return PT_OK;
}

/* Checks rows [0, c->length) of `c` against reference rows [base, ...). */
static int check_rows(const pt_column *c, int64_t base, char *msg, size_t cap) {
    int64_t nulls = 0;
    for (int64_t k = 0; k < c->length; k++) {
        int64_t i = base + k;
        int want_null = ref_null(i) || c->type == PT_TYPE_NULL;
        nulls += want_null;
        if (pt_column_is_valid(c, k) == want_null) {
            snprintf(msg, cap, "%s row %lld (ref %lld): validity", pt_type_name(c->type),
                     (long long)k, (long long)i);
            return 0;
        }
        if (want_null) {
            if (c->type == PT_TYPE_UTF8) {
                int64_t len;
                (void)pt_column_str(c, k, &len);
                if (len != 0) return snprintf(msg, cap, "null utf8 has length %lld", (long long)len), 0;
            }
            continue;
        }
        int ok = 1;
        switch (c->type) {
        case PT_TYPE_BOOL: ok = pt_column_bool(c, k) == (ref_i64(i) % 3 == 0); break;
        case PT_TYPE_INT32: ok = pt_column_i32(c)[k] == (int32_t)(i * 7 - 50); break;
        case PT_TYPE_INT64: ok = pt_column_i64(c)[k] == ref_i64(i); break;
        case PT_TYPE_FLOAT32: ok = pt_column_f32(c)[k] == (float)i * 0.5f; break;
        case PT_TYPE_FLOAT64: ok = pt_column_f64(c)[k] == (double)i / 4.0; break;
        case PT_TYPE_UTF8:
        case PT_TYPE_DICT: {
            int64_t len;
            const char *s = pt_column_str(c, k, &len);
            ok = len == (int64_t)strlen(ref_word(i)) && memcmp(s, ref_word(i), (size_t)len) == 0;
            break;
        }
        default: break;
        }
        if (!ok) {
            snprintf(msg, cap, "%s row %lld (ref %lld): value", pt_type_name(c->type), (long long)k,
                     (long long)i);
            return 0;
        }
    }
    if (nulls != c->null_count) {
        snprintf(msg, cap, "%s: null_count %lld, expected %lld", pt_type_name(c->type),
                 (long long)c->null_count, (long long)nulls);
        return 0;
    }
    return 1;
}

TEST(type_names_and_parse) {
    pt_error e;
    pt_type t;
    CHECK_STR(pt_type_name(PT_TYPE_INT64), "int64");
    CHECK_STR(pt_type_name(PT_TYPE_DICT), "dict<utf8>");
    CHECK_OK(pt_type_parse("dict<utf8>", &t, &e), &e);
    CHECK_EQ_I(t, PT_TYPE_DICT);
    CHECK_OK(pt_type_parse("string", &t, &e), &e);
    CHECK_EQ_I(t, PT_TYPE_UTF8);
    CHECK_OK(pt_type_parse("double", &t, &e), &e);
    CHECK_EQ_I(t, PT_TYPE_FLOAT64);
    CHECK_OK(pt_type_parse("boolean", &t, &e), &e);
    CHECK_EQ_I(t, PT_TYPE_BOOL);
    CHECK_OK(pt_type_parse("category", &t, &e), &e);
    CHECK_EQ_I(t, PT_TYPE_DICT);
    CHECK_EQ_I(pt_type_parse("decimal", &t, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "'decimal'");
    CHECK_EQ_I(pt_type_width(PT_TYPE_INT64), 8);
    CHECK_EQ_I(pt_type_width(PT_TYPE_DICT), 4);
    CHECK_EQ_I(pt_type_width(PT_TYPE_BOOL), 0);
}

TEST(buffers_aligned_counted_and_freed) {
    LEAK_START();
    pt_error e;
    pt_mem *m = pt_mem_new(0);
    pt_buffer *b;
    CHECK_OK(pt_buffer_new(m, 100, &b, &e), &e);
    CHECK_EQ_I((uintptr_t)b->data % 64, 0);
    CHECK(b->capacity >= 100);
    CHECK_EQ_I(pt_mem_used(m), b->capacity);
    memset(b->data, 7, 100);
    b->size = 100;
    CHECK_OK(pt_buffer_reserve(b, 5000, &e), &e);
    CHECK_EQ_I((uintptr_t)b->data % 64, 0);
    CHECK(b->capacity >= 5000);
    CHECK_EQ_I(b->data[99], 7);
    CHECK_EQ_I(pt_mem_used(m), b->capacity);
    pt_buffer_shrink(b);
    CHECK(b->capacity < 5000);
    CHECK_EQ_I(b->data[0], 7);
    CHECK_EQ_I(pt_mem_used(m), b->capacity);
    pt_buffer_retain(b);
    pt_buffer_release(b);
    CHECK(pt_mem_used(m) > 0);
    pt_buffer_release(b);
    CHECK_EQ_I(pt_mem_used(m), 0);
    pt_mem_free(m);
    LEAK_END();
}

TEST(budget_exceeded_fails_cleanly) {
    LEAK_START();
    pt_error e;
    pt_mem *m = pt_mem_new(4096);
    pt_column *c;
    CHECK_EQ_I(pt_column_new(m, PT_TYPE_INT64, 1000, 0, &c, &e), PT_EBUDGET);
    CHECK(c == NULL);
    CHECK_EQ_I(pt_mem_used(m), 0);
    CHECK_OK(pt_column_new(m, PT_TYPE_INT64, 10, 0, &c, &e), &e);
    pt_status s = PT_OK;
    int64_t n = 0;
    while ((s = pt_column_append_i64(c, n, &e)) == PT_OK) n++;
    CHECK_EQ_I(s, PT_EBUDGET);
    CHECK_CONTAINS(e.msg, "budget");
    /* The failed append left the column as it was. */
    CHECK_EQ_I(c->length, n);
    for (int64_t i = 0; i < n; i++) CHECK_EQ_I(pt_column_i64(c)[i], i);
    CHECK(pt_mem_used(m) <= 4096);
    pt_column_release(c);
    CHECK_EQ_I(pt_mem_used(m), 0);
    pt_mem_free(m);
    LEAK_END();
}

TEST(builders_with_nulls_every_type) {
    LEAK_START();
    pt_error e;
    char msg[256];
    for (int t = PT_TYPE_NULL; t < PT_TYPE_COUNT; t++) {
        pt_column *c;
        CHECK_OK(build((pt_type)t, 100, &c, &e), &e);
        CHECK_EQ_I(c->length, 100);
        CHECK_MSG(check_rows(c, 0, msg, sizeof msg), "%s", msg);
        pt_column_release(c);
    }
    /* The bitmap is created lazily, at the first null. */
    pt_column *c;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_FLOAT64, 0, 0, &c, &e), &e);
    for (int i = 0; i < 20; i++) CHECK_OK(pt_column_append_f64(c, i, &e), &e);
    CHECK(c->validity == NULL);
    CHECK_OK(pt_column_append_null(c, &e), &e);
    CHECK(c->validity != NULL);
    for (int i = 0; i < 20; i++) CHECK(pt_column_is_valid(c, i));
    CHECK(!pt_column_is_valid(c, 20));
    CHECK_EQ_I(pt_column_f64(c)[20], 0);
    CHECK_EQ_I(c->null_count, 1);
    CHECK_NEAR(pt_column_get_f64(c, 7), 7.0, 0);
    /* Wrong type and bad dictionary index are refused without change. */
    CHECK_EQ_I(pt_column_append_i32(c, 1, &e), PT_ETYPE);
    CHECK_CONTAINS(e.msg, "float64");
    CHECK_EQ_I(c->length, 21);
    CHECK(pt_column_nbytes(c) >= 21 * 8);
    pt_column_release(c);
    CHECK_OK(build(PT_TYPE_DICT, 3, &c, &e), &e);
    CHECK_EQ_I(pt_column_append_index(c, 7, &e), PT_ERANGE);
    CHECK_EQ_I(c->length, 3);
    pt_column_release(c);
    LEAK_END();
}

TEST(reserve_and_direct_writes) {
    LEAK_START();
    pt_error e;
    pt_column *c;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT32, 0, 0, &c, &e), &e);
    CHECK_OK(pt_column_reserve(c, 1000, 0, &e), &e);
    CHECK(c->values->capacity >= 4000);
    int32_t *v = (int32_t *)c->values->data;
    for (int i = 0; i < 1000; i++) v[i] = i;
    c->length = 1000;
    CHECK_OK(pt_column_ensure_validity(c, &e), &e);
    CHECK(c->validity->capacity * 8 >= 1000);
    pt_bit_clear(c->validity->data, 500);
    c->null_count = 1;
    for (int i = 0; i < 1000; i++) CHECK_EQ_I(pt_column_is_valid(c, i), i != 500);
    pt_column_release(c);

    CHECK_OK(pt_column_new(NULL, PT_TYPE_UTF8, 0, 0, &c, &e), &e);
    CHECK_OK(pt_column_reserve(c, 10, 300, &e), &e);
    CHECK(c->bytes->capacity >= 300);
    CHECK(c->values->capacity >= 11 * 8);
    pt_column_release(c);
    LEAK_END();
}

TEST(slices_of_slices) {
    LEAK_START();
    pt_error e;
    char msg[256];
    for (int t = PT_TYPE_NULL; t < PT_TYPE_COUNT; t++) {
        pt_column *c, *s1, *s2, *s3;
        CHECK_OK(build((pt_type)t, 200, &c, &e), &e);
        CHECK_OK(pt_column_slice(c, 13, 150, &s1, &e), &e);
        CHECK_OK(pt_column_slice(s1, 5, 101, &s2, &e), &e);
        CHECK_OK(pt_column_slice(s2, 3, 9, &s3, &e), &e);
        CHECK_EQ_I(s3->offset, 13 + 5 + 3);
        /* Parents may go first: slices hold their own references. */
        pt_column_release(c);
        pt_column_release(s1);
        CHECK_MSG(check_rows(s2, 18, msg, sizeof msg), "%s", msg);
        CHECK_MSG(check_rows(s3, 21, msg, sizeof msg), "%s", msg);
        /* A slice with no nulls in its range (rows 25..30) drops the bitmap. */
        pt_column *s4;
        CHECK_OK(pt_column_slice(s2, 7, 5, &s4, &e), &e);
        CHECK_MSG(check_rows(s4, 25, msg, sizeof msg), "%s", msg);
        if (t != PT_TYPE_NULL) CHECK(s4->validity == NULL);
        pt_column *empty;
        CHECK_OK(pt_column_slice(s2, 101, 0, &empty, &e), &e);
        CHECK_EQ_I(empty->length, 0);
        CHECK_EQ_I(empty->null_count, 0);
        CHECK_EQ_I(pt_column_slice(s2, 100, 2, &s1, &e), PT_EINVAL);
        CHECK_CONTAINS(e.msg, "[100, 102)");
        CHECK_CONTAINS(e.msg, "101 rows");
        /* A deep copy of a slice has offset 0 and the same rows. */
        pt_column *cp;
        CHECK_OK(pt_column_copy(NULL, s2, &cp, &e), &e);
        CHECK_EQ_I(cp->offset, 0);
        CHECK_MSG(check_rows(cp, 18, msg, sizeof msg), "%s", msg);
        pt_column_release(cp);
        pt_column_release(empty);
        pt_column_release(s4);
        pt_column_release(s3);
        pt_column_release(s2);
    }
    LEAK_END();
}

TEST(concat_every_type_with_slices) {
    LEAK_START();
    pt_error e;
    char msg[256];
    for (int t = PT_TYPE_NULL; t < PT_TYPE_COUNT; t++) {
        pt_column *c, *parts[3], *r;
        CHECK_OK(build((pt_type)t, 90, &c, &e), &e);
        /* Bit offsets that are not multiples of 8 exercise the bit copies. */
        CHECK_OK(pt_column_slice(c, 0, 11, &parts[0], &e), &e);
        CHECK_OK(pt_column_slice(c, 11, 0, &parts[1], &e), &e);
        CHECK_OK(pt_column_slice(c, 11, 79, &parts[2], &e), &e);
        CHECK_OK(pt_column_concat(NULL, parts, 3, &r, &e), &e);
        CHECK_EQ_I(r->length, 90);
        CHECK_MSG(check_rows(r, 0, msg, sizeof msg), "%s", msg);
        if (t == PT_TYPE_DICT) CHECK(r->dict == c->dict); /* shared dictionary kept */
        pt_column_release(r);
        for (int k = 0; k < 3; k++) pt_column_release(parts[k]);
        pt_column_release(c);
    }
    pt_column *a, *b;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT32, 0, 0, &a, &e), &e);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 0, 0, &b, &e), &e);
    pt_column *ab[2] = {a, b}, *r;
    CHECK_EQ_I(pt_column_concat(NULL, ab, 2, &r, &e), PT_ETYPE);
    CHECK_CONTAINS(e.msg, "column 1 is int64");
    pt_column_release(a);
    pt_column_release(b);
    LEAK_END();
}

static pt_column *make_dict(const char *const *words, int nw, const int *idx, int n) {
    pt_error e;
    pt_column *d, *c;
    if (pt_column_new(NULL, PT_TYPE_UTF8, 0, 0, &d, &e)) return NULL;
    for (int k = 0; k < nw; k++)
        if (pt_column_append_str(d, words[k], -1, &e)) return NULL;
    if (pt_column_new_dict(NULL, d, 0, &c, &e)) return NULL;
    pt_column_release(d);
    for (int i = 0; i < n; i++) {
        pt_status s = idx[i] < 0 ? pt_column_append_null(c, &e) : pt_column_append_index(c, idx[i], &e);
        if (s) return NULL;
    }
    return c;
}

TEST(concat_dict_with_different_dictionaries) {
    LEAK_START();
    pt_error e;
    const char *w1[] = {"red", "green", "blue"};
    const char *w2[] = {"blue", "black", "red", "white"};
    int i1[] = {0, 1, -1, 2, 2, 0};
    int i2[] = {3, -1, 0, 1, 2};
    const char *expect[] = {"red", "green", NULL, "blue", "blue", "red",
                            "white", NULL, "blue", "black", "red"};
    pt_column *a = make_dict(w1, 3, i1, 6), *b = make_dict(w2, 4, i2, 5);
    CHECK(a && b);
    pt_column *sb;
    CHECK_OK(pt_column_slice(b, 0, 5, &sb, &e), &e);
    pt_column *parts[2] = {a, sb}, *r;
    CHECK_OK(pt_column_concat(NULL, parts, 2, &r, &e), &e);
    CHECK_EQ_I(r->type, PT_TYPE_DICT);
    CHECK_EQ_I(r->length, 11);
    CHECK_EQ_I(r->null_count, 2);
    /* Each distinct text appears once in the merged dictionary. */
    CHECK_EQ_I(r->dict->length, 5);
    CHECK_EQ_I(r->dict->null_count, 0);
    for (int i = 0; i < 11; i++) {
        if (!expect[i]) {
            CHECK(!pt_column_is_valid(r, i));
            continue;
        }
        CHECK(pt_column_is_valid(r, i));
        int64_t len;
        const char *s = pt_column_str(r, i, &len);
        CHECK_MSG(len == (int64_t)strlen(expect[i]) && memcmp(s, expect[i], (size_t)len) == 0,
                  "row %d: %.*s vs %s", i, (int)len, s, expect[i]);
    }
    pt_column_release(r);
    pt_column_release(sb);
    pt_column_release(a);
    pt_column_release(b);
    LEAK_END();
}

TEST(cast_numeric_and_errors) {
    LEAK_START();
    pt_error e;
    pt_column *c, *r;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 0, 0, &c, &e), &e);
    int64_t vals[] = {1, -5, 0, 2147483647, 3000000000LL};
    for (int i = 0; i < 5; i++) {
        if (i == 2) CHECK_OK(pt_column_append_null(c, &e), &e);
        else CHECK_OK(pt_column_append_i64(c, vals[i], &e), &e);
    }
    /* Narrowing fails at the first value that does not fit, naming it. */
    CHECK_EQ_I(pt_column_cast(NULL, c, PT_TYPE_INT32, &r, &e), PT_ERANGE);
    CHECK(r == NULL);
    CHECK_CONTAINS(e.msg, "row 4");
    CHECK_CONTAINS(e.msg, "3000000000");
    CHECK_CONTAINS(e.msg, "int32");
    pt_column *s;
    CHECK_OK(pt_column_slice(c, 0, 4, &s, &e), &e);
    CHECK_OK(pt_column_cast(NULL, s, PT_TYPE_INT32, &r, &e), &e);
    CHECK_EQ_I(r->null_count, 1);
    CHECK_EQ_I(pt_column_i32(r)[0], 1);
    CHECK_EQ_I(pt_column_i32(r)[1], -5);
    CHECK(!pt_column_is_valid(r, 2));
    CHECK_EQ_I(pt_column_i32(r)[3], 2147483647);
    pt_column_release(r);
    CHECK_OK(pt_column_cast(NULL, s, PT_TYPE_FLOAT64, &r, &e), &e);
    CHECK_NEAR(pt_column_f64(r)[1], -5.0, 0);
    CHECK_NEAR(pt_column_f64(r)[3], 2147483647.0, 0);
    pt_column *txt;
    CHECK_OK(pt_column_cast(NULL, r, PT_TYPE_UTF8, &txt, &e), &e);
    int64_t len;
    const char *p = pt_column_str(txt, 1, &len);
    CHECK_EQ_I(len, 2);
    CHECK(memcmp(p, "-5", 2) == 0);
    CHECK(!pt_column_is_valid(txt, 2));
    pt_column_release(txt);
    pt_column_release(r);
    pt_column_release(s);
    pt_column_release(c);

    /* float -> int: fractions truncate, NaN and huge values fail. */
    CHECK_OK(pt_column_new(NULL, PT_TYPE_FLOAT64, 0, 0, &c, &e), &e);
    CHECK_OK(pt_column_append_f64(c, 2.75, &e), &e);
    CHECK_OK(pt_column_append_f64(c, -1.5, &e), &e);
    CHECK_OK(pt_column_append_f64(c, NAN, &e), &e);
    CHECK_OK(pt_column_slice(c, 0, 2, &s, &e), &e);
    CHECK_OK(pt_column_cast(NULL, s, PT_TYPE_INT64, &r, &e), &e);
    CHECK_EQ_I(pt_column_i64(r)[0], 2);
    CHECK_EQ_I(pt_column_i64(r)[1], -1);
    pt_column_release(r);
    CHECK_EQ_I(pt_column_cast(NULL, c, PT_TYPE_INT64, &r, &e), PT_ERANGE);
    CHECK_CONTAINS(e.msg, "row 2");
    CHECK_OK(pt_column_cast(NULL, s, PT_TYPE_FLOAT32, &r, &e), &e);
    CHECK(pt_column_f32(r)[0] == 2.75f);
    pt_column_release(r);
    pt_column_release(s);
    pt_column_release(c);

    CHECK_OK(pt_column_new(NULL, PT_TYPE_FLOAT64, 0, 0, &c, &e), &e);
    CHECK_OK(pt_column_append_f64(c, 1e300, &e), &e);
    CHECK_EQ_I(pt_column_cast(NULL, c, PT_TYPE_FLOAT32, &r, &e), PT_ERANGE);
    CHECK_CONTAINS(e.msg, "row 0 value 1e+300");
    pt_column_release(c);

    /* Text -> numbers parses, and names the row and text it cannot. */
    CHECK_OK(pt_column_new(NULL, PT_TYPE_UTF8, 0, 0, &c, &e), &e);
    CHECK_OK(pt_column_append_str(c, " 42 ", -1, &e), &e);
    CHECK_OK(pt_column_append_str(c, "-7", -1, &e), &e);
    CHECK_OK(pt_column_append_str(c, "4x", -1, &e), &e);
    CHECK_EQ_I(pt_column_cast(NULL, c, PT_TYPE_INT64, &r, &e), PT_EPARSE);
    CHECK_CONTAINS(e.msg, "row 2 value '4x'");
    CHECK_OK(pt_column_slice(c, 0, 2, &s, &e), &e);
    CHECK_OK(pt_column_cast(NULL, s, PT_TYPE_INT32, &r, &e), &e);
    CHECK_EQ_I(pt_column_i32(r)[0], 42);
    CHECK_EQ_I(pt_column_i32(r)[1], -7);
    pt_column_release(r);
    pt_column_release(s);
    pt_column_release(c);
    LEAK_END();
}

TEST(cast_dict_utf8_round_trip) {
    LEAK_START();
    pt_error e;
    pt_column *u, *d, *back;
    CHECK_OK(build(PT_TYPE_UTF8, 50, &u, &e), &e);
    CHECK_OK(pt_column_cast(NULL, u, PT_TYPE_DICT, &d, &e), &e);
    CHECK_EQ_I(d->type, PT_TYPE_DICT);
    CHECK_EQ_I(d->dict->length, 6); /* rows i % 7 == 3 are null: 6 words left */
    char msg[256];
    CHECK_MSG(check_rows(d, 0, msg, sizeof msg), "%s", msg);
    CHECK_OK(pt_column_cast(NULL, d, PT_TYPE_UTF8, &back, &e), &e);
    CHECK_MSG(check_rows(back, 0, msg, sizeof msg), "%s", msg);
    pt_column_release(back);
    pt_column_release(d);
    /* Casting to the same type is a new reference to the same column. */
    CHECK_OK(pt_column_cast(NULL, u, PT_TYPE_UTF8, &back, &e), &e);
    CHECK(back == u);
    pt_column_release(back);
    pt_column_release(u);
    /* A null column becomes an all-null column of any type. */
    pt_column *n, *r;
    CHECK_OK(build(PT_TYPE_NULL, 9, &n, &e), &e);
    CHECK_OK(pt_column_cast(NULL, n, PT_TYPE_FLOAT64, &r, &e), &e);
    CHECK_EQ_I(r->null_count, 9);
    CHECK(!pt_column_is_valid(r, 8));
    pt_column_release(r);
    pt_column_release(n);
    LEAK_END();
}

TEST(schema_new_find_parse) {
    LEAK_START();
    pt_error e;
    pt_schema *s;
    CHECK_OK(pt_schema_parse("id:int64, name : string,score:double,ok:bool", &s, &e), &e);
    CHECK_EQ_I(s->nfields, 4);
    CHECK_STR(s->fields[1].name, "name");
    CHECK_EQ_I(s->fields[1].type, PT_TYPE_UTF8);
    CHECK_EQ_I(s->fields[2].type, PT_TYPE_FLOAT64);
    CHECK_EQ_I(pt_schema_find(s, "score"), 2);
    CHECK_EQ_I(pt_schema_find(s, "nope"), -1);
    pt_schema *c;
    CHECK_OK(pt_schema_copy(s, &c, &e), &e);
    CHECK_STR(c->fields[3].name, "ok");
    pt_schema_free(c);
    pt_schema_free(s);
    CHECK_EQ_I(pt_schema_parse("a:int64,b", &s, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "field 2 ('b')");
    CHECK_EQ_I(pt_schema_parse("a:int64,b:float128", &s, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "field 2 ('b')");
    CHECK_CONTAINS(e.msg, "'float128'");
    CHECK_EQ_I(pt_schema_parse("a:int64,a:int32", &s, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "'a' appears twice");
    CHECK_EQ_I(pt_schema_parse(":int64", &s, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "empty name");
    LEAK_END();
}

/* Builds the 3-row table used by several tests. */
static pt_table *small_table(void) {
    pt_error e;
    pt_schema *s;
    if (pt_schema_parse("id:int64,name:utf8,score:float64,ok:bool", &s, &e)) return NULL;
    pt_column *c[4];
    for (int j = 0; j < 4; j++)
        if (pt_column_new(NULL, s->fields[j].type, 0, 0, &c[j], &e)) return NULL;
    int bad = 0;
    bad |= pt_column_append_i64(c[0], 1, &e) | pt_column_append_i64(c[0], 22, &e) |
           pt_column_append_i64(c[0], -333, &e);
    bad |= pt_column_append_str(c[1], "alice", -1, &e) | pt_column_append_null(c[1], &e) |
           pt_column_append_str(c[1], "bob", -1, &e);
    bad |= pt_column_append_f64(c[2], 1.5, &e) | pt_column_append_f64(c[2], -0.25, &e) |
           pt_column_append_null(c[2], &e);
    bad |= pt_column_append_bool(c[3], true, &e) | pt_column_append_bool(c[3], false, &e) |
           pt_column_append_null(c[3], &e);
    pt_table *t;
    if (bad || pt_table_new(s, c, &t, &e)) return NULL;
    return t;
}

TEST(table_new_slice_select_column) {
    LEAK_START();
    pt_error e;
    pt_table *t = small_table();
    CHECK(t);
    CHECK_EQ_I(t->nrows, 3);
    CHECK(pt_table_column(t, "score") == t->cols[2]);
    CHECK(pt_table_column(t, "nope") == NULL);
    CHECK(pt_table_nbytes(t) > 0);
    const char *names[] = {"score", "id"};
    pt_table *p;
    CHECK_OK(pt_table_select(t, names, 2, &p, &e), &e);
    CHECK_EQ_I(p->schema->nfields, 2);
    CHECK_STR(p->schema->fields[0].name, "score");
    CHECK(p->cols[1] == t->cols[0]); /* zero-copy */
    pt_table_free(p);
    const char *bad[] = {"id", "nmae"};
    CHECK_EQ_I(pt_table_select(t, bad, 2, &p, &e), PT_EINVAL);
    CHECK_STR(e.msg, "no column 'nmae' (available: id, name, score, ok)");
    pt_table *sl;
    CHECK_OK(pt_table_slice(t, 1, 2, &sl, &e), &e);
    CHECK_EQ_I(sl->nrows, 2);
    CHECK_EQ_I(pt_column_i64(sl->cols[0])[1], -333);
    CHECK_EQ_I(sl->cols[1]->null_count, 1);
    CHECK_EQ_I(pt_table_slice(t, 2, 2, &p, &e), PT_EINVAL);
    pt_table_free(sl);

    /* Mismatched lengths and types are refused; the references are taken. */
    pt_schema *s;
    CHECK_OK(pt_schema_parse("a:int64,b:int64", &s, &e), &e);
    pt_column *c[2];
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 0, 0, &c[0], &e), &e);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 0, 0, &c[1], &e), &e);
    CHECK_OK(pt_column_append_i64(c[1], 5, &e), &e);
    CHECK_EQ_I(pt_table_new(s, c, &p, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "column 1 ('b') has 1 rows but column 0 ('a') has 0");
    CHECK_OK(pt_schema_parse("a:int64,b:float64", &s, &e), &e);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 0, 0, &c[0], &e), &e);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 0, 0, &c[1], &e), &e);
    CHECK_EQ_I(pt_table_new(s, c, &p, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "column 1 ('b') is int64 but the schema says float64");
    pt_table_free(t);
    LEAK_END();
}

TEST(table_concat_and_equal) {
    LEAK_START();
    pt_error e;
    pt_table *t = small_table();
    CHECK(t);
    pt_table *a, *b, *r;
    CHECK_OK(pt_table_slice(t, 0, 1, &a, &e), &e);
    CHECK_OK(pt_table_slice(t, 1, 2, &b, &e), &e);
    pt_table *ab[2] = {a, b};
    CHECK_OK(pt_table_concat(NULL, ab, 2, &r, &e), &e);
    char why[256];
    CHECK_MSG(pt_table_equal(t, r, why, sizeof why), "%s", why);
    CHECK_STR(why, "");
    CHECK(!pt_table_equal(t, a, why, sizeof why));
    CHECK_STR(why, "row count: 3 vs 1");
    pt_table_free(r);

    /* Change one value in a copy: the first difference is reported. */
    pt_table *u = small_table();
    CHECK(u);
    ((double *)u->cols[2]->values->data)[1] = 2.5;
    CHECK(!pt_table_equal(t, u, why, sizeof why));
    CHECK_STR(why, "row 1, column 'score': -0.25 vs 2.5");
    ((double *)u->cols[2]->values->data)[1] = -0.25;
    pt_bit_set(u->cols[1]->validity->data, 1);
    CHECK(!pt_table_equal(t, u, why, sizeof why));
    CHECK_STR(why, "row 1, column 'name': null vs \"\"");
    pt_table_free(u);

    /* utf8 vs dict compare by text. */
    pt_column *d;
    CHECK_OK(pt_column_cast(NULL, t->cols[1], PT_TYPE_DICT, &d, &e), &e);
    pt_schema *s;
    CHECK_OK(pt_schema_copy(t->schema, &s, &e), &e);
    s->fields[1].type = PT_TYPE_DICT;
    pt_column *cols[4] = {pt_column_retain(t->cols[0]), d, pt_column_retain(t->cols[2]),
                          pt_column_retain(t->cols[3])};
    CHECK_OK(pt_table_new(s, cols, &u, &e), &e);
    CHECK_MSG(pt_table_equal(t, u, why, sizeof why), "%s", why);
    pt_table_free(u);

    /* NaN equals NaN; -0.0 differs from 0.0 (bit-exact). */
    CHECK_OK(pt_schema_parse("x:float64", &s, &e), &e);
    pt_column *x, *y;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_FLOAT64, 0, 0, &x, &e), &e);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_FLOAT64, 0, 0, &y, &e), &e);
    CHECK_OK(pt_column_append_f64(x, NAN, &e), &e);
    CHECK_OK(pt_column_append_f64(y, NAN, &e), &e);
    CHECK_OK(pt_column_append_f64(x, 0.0, &e), &e);
    CHECK_OK(pt_column_append_f64(y, -0.0, &e), &e);
    pt_table *tx, *ty, *sx, *sy;
    CHECK_OK(pt_table_new(s, &x, &tx, &e), &e);
    CHECK_OK(pt_schema_parse("x:float64", &s, &e), &e);
    CHECK_OK(pt_table_new(s, &y, &ty, &e), &e);
    CHECK(!pt_table_equal(tx, ty, why, sizeof why));
    CHECK_STR(why, "row 1, column 'x': 0 vs -0");
    CHECK_OK(pt_table_slice(tx, 0, 1, &sx, &e), &e);
    CHECK_OK(pt_table_slice(ty, 0, 1, &sy, &e), &e);
    CHECK(pt_table_equal(sx, sy, NULL, 0));
    pt_table_free(sx);
    pt_table_free(sy);
    CHECK(!pt_table_equal(t, tx, why, sizeof why));
    CHECK_STR(why, "column count: 4 vs 1");
    pt_table_free(tx);
    pt_table_free(ty);

    pt_table *tt[2] = {t, a};
    CHECK_OK(pt_table_concat(NULL, tt, 2, &r, &e), &e);
    CHECK_EQ_I(r->nrows, 4);
    CHECK_EQ_I(pt_column_i64(r->cols[0])[3], 1);
    CHECK_EQ_I(r->cols[2]->null_count, 1);
    pt_table_free(r);
    pt_table_free(a);
    pt_table_free(b);
    pt_table_free(t);
    LEAK_END();
}

static char *print_to_string(const pt_table *t, const pt_print_opts *o) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    pt_error e;
    pt_status s = pt_table_print(t, f, o, &e);
    fclose(f);
    if (s) {
        free(buf);
        return NULL;
    }
    return buf;
}

TEST(print_small_table) {
    LEAK_START();
    pt_table *t = small_table();
    CHECK(t);
    char *got = print_to_string(t, NULL);
    CHECK(got);
    const char *want =
        "      id  name     score     ok\n"
        "   int64  utf8   float64   bool\n"
        "0      1  alice      1.5   true\n"
        "1     22  null     -0.25  false\n"
        "2   -333  bob       null   null\n"
        "[3 rows x 4 columns]\n";
    CHECK_MSG(strcmp(got, want) == 0, "got:\n%s\nwant:\n%s", got, want);
    free(got);
    pt_print_opts o;
    pt_print_opts_init(&o);
    CHECK_EQ_I(o.max_rows, 10);
    CHECK_EQ_I(o.max_width, 24);
    o.show_types = 0;
    got = print_to_string(t, &o);
    CHECK(got);
    CHECK_STR(got, "     id  name   score     ok\n"
                   "0     1  alice    1.5   true\n"
                   "1    22  null   -0.25  false\n"
                   "2  -333  bob     null   null\n"
                   "[3 rows x 4 columns]\n");
    free(got);
    pt_table_free(t);
    LEAK_END();
}

TEST(print_long_table_elides_and_cuts) {
    LEAK_START();
    pt_error e;
    pt_schema *s;
    CHECK_OK(pt_schema_parse("n:int64,s:utf8", &s, &e), &e);
    pt_column *c[2];
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 0, 0, &c[0], &e), &e);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_UTF8, 0, 0, &c[1], &e), &e);
    for (int i = 0; i < 25; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "row%d", i);
        CHECK_OK(pt_column_append_i64(c[0], (int64_t)i * i, &e), &e);
        CHECK_OK(pt_column_append_str(c[1], i == 1 ? "abcdefghijklmnop" : buf, -1, &e), &e);
    }
    pt_table *t;
    CHECK_OK(pt_table_new(s, c, &t, &e), &e);
    pt_print_opts o;
    pt_print_opts_init(&o);
    o.max_rows = 4;
    o.max_width = 8;
    char *got = print_to_string(t, &o);
    CHECK(got);
    const char *want = "         n  s\n"
                       "     int64  utf8\n"
                       "0        0  row0\n"
                       "1        1  abcde...\n"
                       "...    ...  ...\n"
                       "23     529  row23\n"
                       "24     576  row24\n"
                       "[25 rows x 2 columns]\n";
    CHECK_MSG(strcmp(got, want) == 0, "got:\n%s\nwant:\n%s", got, want);
    free(got);
    pt_table_free(t);

    /* Widths count code points; control characters are escaped. */
    CHECK_OK(pt_schema_parse("w:utf8,k:int32", &s, &e), &e);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_UTF8, 0, 0, &c[0], &e), &e);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT32, 0, 0, &c[1], &e), &e);
    const char *words[] = {"h\xc3\xa9llo", "ab", "a\nb"};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(pt_column_append_str(c[0], words[i], -1, &e), &e);
        CHECK_OK(pt_column_append_i32(c[1], i + 1, &e), &e);
    }
    CHECK_OK(pt_table_new(s, c, &t, &e), &e);
    pt_print_opts_init(&o);
    o.show_types = 0;
    got = print_to_string(t, &o);
    CHECK(got);
    CHECK_STR(got, "   w      k\n"
                   "0  h\xc3\xa9llo  1\n"
                   "1  ab     2\n"
                   "2  a\\nb   3\n"
                   "[3 rows x 2 columns]\n");
    free(got);
    char buf[32];
    CHECK_STR(pt_column_format(t->cols[1], 2, 6, buf, sizeof buf), "3");
    pt_table_free(t);

    /* Floats use float_digits significant digits. */
    pt_column *f;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_FLOAT64, 0, 0, &f, &e), &e);
    CHECK_OK(pt_column_append_f64(f, 3.14159265358979, &e), &e);
    CHECK_OK(pt_column_append_null(f, &e), &e);
    CHECK_STR(pt_column_format(f, 0, 6, buf, sizeof buf), "3.14159");
    CHECK_STR(pt_column_format(f, 0, 3, buf, sizeof buf), "3.14");
    CHECK_STR(pt_column_format(f, 1, 3, buf, sizeof buf), "null");
    pt_column_release(f);
    LEAK_END();
}

TEST(allocation_failures_leave_no_leaks) {
    /* Fail the k-th allocation for every k during a build/slice/concat/cast
     * sequence: each must fail cleanly and free what it took. */
    LEAK_START();
    for (int k = 0; k < 60; k++) {
        pt_error e;
        pt_column *c = NULL, *d = NULL, *s = NULL, *r = NULL;
        pt_alloc_fail_after(k);
        pt_status st = build(PT_TYPE_UTF8, 40, &c, &e);
        if (st == PT_OK) st = pt_column_slice(c, 3, 30, &s, &e);
        if (st == PT_OK) st = pt_column_cast(NULL, s, PT_TYPE_DICT, &d, &e);
        pt_column *parts[2] = {d, d};
        if (st == PT_OK) st = pt_column_concat(NULL, parts, 2, &r, &e);
        pt_alloc_fail_after(-1);
        CHECK(st == PT_OK || st == PT_ENOMEM);
        pt_column_release(r);
        pt_column_release(d);
        pt_column_release(s);
        pt_column_release(c);
    }
    LEAK_END();
}

static void *slice_worker(void *arg) {
    pt_column *c = arg;
    for (int k = 0; k < 20000; k++) {
        pt_column *s;
        if (pt_column_slice(c, k % 50, 10, &s, NULL) != PT_OK) return (void *)1;
        pt_column_retain(s);
        pt_column_release(s);
        pt_column_release(s);
    }
    return NULL;
}

TEST(refcounts_are_thread_safe) {
    LEAK_START();
    pt_error e;
    pt_column *c;
    CHECK_OK(build(PT_TYPE_UTF8, 64, &c, &e), &e);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&th[i], NULL, slice_worker, c) == 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        CHECK(r == NULL);
    }
    CHECK_EQ_I(c->refcount, 1);
    CHECK_EQ_I(c->values->refcount, 1);
    CHECK_EQ_I(c->validity->refcount, 1);
    pt_column_release(c);
    LEAK_END();
}
