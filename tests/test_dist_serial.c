/*
 * test_dist_serial.c - the exchange primitives of src/frame/dist.h in one
 * process: table serialisation round trips for every column type (nulls,
 * slices at odd offsets, dictionaries, empty tables, tables without
 * columns) checked value by value against the formula that built them;
 * corrupt and truncated messages (every truncation length, a bit flip at
 * every byte) refused with PT_ECORRUPT and never a crash; key hashing equal
 * across representations; the self backend, where every exchange is the
 * identity; and the split of a scan between ranks.
 */
#include "frame/dist.h"
#include "pt_test.h"

/* ------------------------------------------------------------------------ */
/* A table built by formula from the row number                             */
/* ------------------------------------------------------------------------ */

static const char *const COLORS[] = {"red", "green", "", "blue", "ultraviolet-and-more"};

static bool null_at(int64_t g, int m, int r) { return g % m == r; }

/* Every type, nulls in every nullable column. */
static pt_table *formula_table(int64_t n) {
    const char *names[] = {"n", "b", "i32", "i64", "f32", "f64", "s", "d"};
    pt_type types[] = {PT_TYPE_NULL,    PT_TYPE_BOOL, PT_TYPE_INT32, PT_TYPE_INT64,
                       PT_TYPE_FLOAT32, PT_TYPE_FLOAT64, PT_TYPE_UTF8, PT_TYPE_DICT};
    pt_column *cols[8], *dict;
    if (pt_column_new(NULL, PT_TYPE_UTF8, 5, 64, &dict, NULL)) return NULL;
    for (int k = 0; k < 5; k++)
        if (pt_column_append_str(dict, COLORS[k], (int64_t)strlen(COLORS[k]), NULL)) return NULL;
    for (int j = 0; j < 7; j++)
        if (pt_column_new(NULL, types[j], 4, 16, &cols[j], NULL)) return NULL;
    if (pt_column_new_dict(NULL, dict, 4, &cols[7], NULL)) return NULL;
    pt_column_release(dict);
    for (int64_t g = 0; g < n; g++) {
        char buf[48];
        int len = snprintf(buf, sizeof buf, "row-%lld%s", (long long)g, g % 4 ? "" : "-long-tail");
        pt_status st = pt_column_append_null(cols[0], NULL);
        st |= null_at(g, 7, 2) ? pt_column_append_null(cols[1], NULL)
                               : pt_column_append_bool(cols[1], g % 3 == 0, NULL);
        st |= null_at(g, 5, 1) ? pt_column_append_null(cols[2], NULL)
                               : pt_column_append_i32(cols[2], (int32_t)(g * 31 - 1000), NULL);
        st |= pt_column_append_i64(cols[3], g * 1000003LL - 7, NULL); /* never null */
        st |= null_at(g, 9, 8) ? pt_column_append_null(cols[4], NULL)
                               : pt_column_append_f32(cols[4], (float)g / 8, NULL);
        double f = g % 10 == 6 ? -0.0 : g % 10 == 7 ? NAN : (double)g / 3 - 11;
        st |= null_at(g, 11, 4) ? pt_column_append_null(cols[5], NULL)
                                : pt_column_append_f64(cols[5], f, NULL);
        st |= null_at(g, 13, 5) ? pt_column_append_null(cols[6], NULL)
                                : pt_column_append_str(cols[6], buf, g % 6 == 1 ? 0 : len, NULL);
        st |= null_at(g, 6, 0) ? pt_column_append_null(cols[7], NULL)
                               : pt_column_append_index(cols[7], (int32_t)(g % 5), NULL);
        if (st) return NULL;
    }
    pt_schema *s;
    if (pt_schema_new(8, names, types, &s, NULL)) return NULL;
    pt_table *t;
    if (pt_table_new(s, cols, &t, NULL)) return NULL;
    return t;
}

/* Checks row i of t against the formula for global row g, column by column;
 * returns the first mismatching column name or NULL. */
static const char *row_mismatch(const pt_table *t, int64_t i, int64_t g) {
    pt_column *const *c = t->cols;
    if (pt_column_is_valid(c[0], i)) return "n";
    if (pt_column_is_valid(c[1], i) == null_at(g, 7, 2)) return "b null";
    if (!null_at(g, 7, 2) && pt_column_bool(c[1], i) != (g % 3 == 0)) return "b";
    if (pt_column_is_valid(c[2], i) == null_at(g, 5, 1)) return "i32 null";
    if (!null_at(g, 5, 1) && pt_column_i32(c[2])[i] != (int32_t)(g * 31 - 1000)) return "i32";
    if (!pt_column_is_valid(c[3], i) || pt_column_i64(c[3])[i] != g * 1000003LL - 7) return "i64";
    if (pt_column_is_valid(c[4], i) == null_at(g, 9, 8)) return "f32 null";
    if (!null_at(g, 9, 8) && pt_column_f32(c[4])[i] != (float)g / 8) return "f32";
    if (pt_column_is_valid(c[5], i) == null_at(g, 11, 4)) return "f64 null";
    if (!null_at(g, 11, 4)) {
        double v = pt_column_f64(c[5])[i];
        if (g % 10 == 6 && !(v == 0 && signbit(v))) return "f64 -0";
        if (g % 10 == 7 && !isnan(v)) return "f64 nan";
        if (g % 10 != 6 && g % 10 != 7 && v != (double)g / 3 - 11) return "f64";
    }
    if (pt_column_is_valid(c[6], i) == null_at(g, 13, 5)) return "s null";
    if (!null_at(g, 13, 5)) {
        char buf[48];
        int len = snprintf(buf, sizeof buf, "row-%lld%s", (long long)g, g % 4 ? "" : "-long-tail");
        if (g % 6 == 1) len = 0;
        int64_t l;
        const char *s = pt_column_str(c[6], i, &l);
        if (l != len || memcmp(s, buf, (size_t)len) != 0) return "s";
    }
    if (pt_column_is_valid(c[7], i) == null_at(g, 6, 0)) return "d null";
    if (!null_at(g, 6, 0)) {
        int64_t l;
        const char *s = pt_column_str(c[7], i, &l);
        const char *want = COLORS[g % 5];
        if (l != (int64_t)strlen(want) || memcmp(s, want, (size_t)l) != 0) return "d";
    }
    return NULL;
}

/* Exact null counts, recomputed from the bitmaps. */
static bool null_counts_exact(const pt_table *t) {
    for (int j = 0; j < t->schema->nfields; j++) {
        const pt_column *c = t->cols[j];
        int64_t k = 0;
        for (int64_t i = 0; i < c->length; i++) k += !pt_column_is_valid(c, i);
        if (k != c->null_count) return false;
    }
    return true;
}

static pt_status round_trip(const pt_table *t, pt_table **out, int64_t *len, pt_error *e) {
    uint8_t *buf;
    pt_status st = pt__table_serialize(t, NULL, &buf, len, e);
    if (st) return st;
    st = pt__table_deserialize(NULL, buf, *len, out, e);
    pt__table_buf_free(NULL, buf, *len);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Serialisation                                                            */
/* ------------------------------------------------------------------------ */

TEST(round_trip_every_type) {
    int64_t before = pt_alloc_bytes_in_use();
    pt_error e;
    pt_table *t = formula_table(300);
    CHECK(t != NULL);
    pt_table *r = NULL;
    int64_t len;
    CHECK_OK(round_trip(t, &r, &len, &e), &e);
    CHECK_EQ_I(len % 8, 0);
    CHECK_EQ_I(len, pt__table_serialized_size(t));
    CHECK_EQ_I(r->nrows, 300);
    CHECK_EQ_I(r->schema->nfields, 8);
    for (int j = 0; j < 8; j++) {
        CHECK_STR(r->schema->fields[j].name, t->schema->fields[j].name);
        CHECK_EQ_I(r->schema->fields[j].type, t->schema->fields[j].type);
        CHECK_EQ_I(r->cols[j]->offset, 0);
    }
    for (int64_t i = 0; i < 300; i++) {
        const char *bad = row_mismatch(r, i, i);
        CHECK_MSG(bad == NULL, "row %lld column %s", (long long)i, bad);
    }
    CHECK(null_counts_exact(r));
    /* The dictionary travels as is (same entries, same order). */
    CHECK_EQ_I(r->cols[7]->dict->length, 5);
    CHECK_EQ_I(r->cols[7]->dict->null_count, 0);
    /* Only bits that exist: no validity buffer without nulls. */
    CHECK(r->cols[3]->validity == NULL);
    char why[256];
    CHECK_MSG(pt_table_equal(t, r, why, sizeof why), "%s", why);
    pt_table_free(r);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), before);
}

TEST(round_trip_slices_at_odd_offsets) {
    pt_error e;
    pt_table *t = formula_table(200);
    CHECK(t != NULL);
    int64_t whole = pt__table_serialized_size(t);
    const int64_t offs[] = {0, 1, 3, 7, 8, 9, 13, 64, 65, 190, 199, 200};
    for (size_t k = 0; k < sizeof offs / sizeof *offs; k++) {
        for (int64_t n = 0; offs[k] + n <= 200; n += 1 + n / 2) {
            pt_table *s = NULL, *r = NULL;
            CHECK_OK(pt_table_slice(t, offs[k], n, &s, &e), &e);
            int64_t len;
            CHECK_OK(round_trip(s, &r, &len, &e), &e);
            /* Slices are normalised: only their own rows travel. */
            CHECK(n == 200 || len < whole);
            CHECK_EQ_I(r->nrows, n);
            for (int64_t i = 0; i < n; i++) {
                const char *bad = row_mismatch(r, i, offs[k] + i);
                CHECK_MSG(bad == NULL, "slice at %lld: row %lld column %s", (long long)offs[k],
                          (long long)i, bad);
            }
            CHECK(null_counts_exact(r));
            pt_table_free(s);
            pt_table_free(r);
        }
    }
    pt_table_free(t);
}

TEST(round_trip_empty_and_columnless) {
    pt_error e;
    pt_table *t = formula_table(0), *r = NULL;
    CHECK(t != NULL);
    int64_t len;
    CHECK_OK(round_trip(t, &r, &len, &e), &e);
    CHECK_EQ_I(r->nrows, 0);
    CHECK_EQ_I(r->schema->nfields, 8);
    CHECK_EQ_I(r->schema->fields[7].type, PT_TYPE_DICT);
    CHECK_EQ_I(r->cols[7]->dict->length, 5);
    pt_table_free(r);
    pt_table_free(t);

    /* No columns but rows (what count(*) plans carry). */
    pt_schema *s;
    CHECK_OK(pt_schema_new(0, NULL, NULL, &s, &e), &e);
    CHECK_OK(pt_table_new(s, NULL, &t, &e), &e);
    t->nrows = 12345;
    CHECK_OK(round_trip(t, &r, &len, &e), &e);
    CHECK_EQ_I(r->schema->nfields, 0);
    CHECK_EQ_I(r->nrows, 12345);
    CHECK_EQ_I(len, 24 + 16);
    pt_table_free(r);
    pt_table_free(t);
}

TEST(round_trip_dictionary_slice_and_take) {
    /* A taken dict column keeps its whole dictionary, indices untouched. */
    pt_error e;
    pt_table *t = formula_table(50), *tk = NULL, *r = NULL;
    CHECK(t != NULL);
    int64_t idx[] = {49, 3, 3, 0, 17, -1, 12};
    CHECK_OK(pt_table_take(NULL, t, idx, 7, &tk, &e), &e);
    int64_t len;
    CHECK_OK(round_trip(tk, &r, &len, &e), &e);
    for (int64_t i = 0; i < 7; i++) {
        if (idx[i] < 0) {
            for (int j = 0; j < 8; j++) CHECK(!pt_column_is_valid(r->cols[j], i));
            continue;
        }
        const char *bad = row_mismatch(r, i, idx[i]);
        CHECK_MSG(bad == NULL, "row %lld column %s", (long long)i, bad);
    }
    pt_table_free(tk);
    pt_table_free(r);
    pt_table_free(t);
}

TEST(every_truncation_is_corrupt) {
    pt_error e;
    pt_table *t = formula_table(40);
    CHECK(t != NULL);
    uint8_t *buf;
    int64_t len;
    CHECK_OK(pt__table_serialize(t, NULL, &buf, &len, &e), &e);
    for (int64_t n = 0; n < len; n++) {
        /* A copy of exactly n bytes, so that ASan sees any read past it. */
        uint8_t *cut = malloc((size_t)(n > 0 ? n : 1));
        memcpy(cut, buf, (size_t)n);
        pt_table *r = NULL;
        pt_status st = pt__table_deserialize(NULL, cut, n, &r, &e);
        free(cut);
        CHECK_MSG(st == PT_ECORRUPT, "truncated to %lld bytes: %s", (long long)n,
                  pt_status_name(st));
        CHECK(r == NULL);
        CHECK_CONTAINS(e.msg, "exchange message");
    }
    /* Trailing bytes are refused too. */
    uint8_t *longer = malloc((size_t)len + 8);
    memcpy(longer, buf, (size_t)len);
    memset(longer + len, 0, 8);
    pt_table *r = NULL;
    CHECK_EQ_I(pt__table_deserialize(NULL, longer, len + 8, &r, &e), PT_ECORRUPT);
    CHECK_CONTAINS(e.msg, "payload bytes");
    free(longer);
    pt__table_buf_free(NULL, buf, len);
    pt_table_free(t);
}

TEST(every_bit_flip_is_corrupt_with_crc) {
    int64_t before = pt_alloc_bytes_in_use();
    pt_error e;
    pt_table *t = formula_table(40);
    CHECK(t != NULL);
    uint8_t *buf;
    int64_t len;
    CHECK_OK(pt__table_serialize(t, NULL, &buf, &len, &e), &e);
    for (int64_t at = 0; at < len; at++) {
        for (int bit = 0; bit < 8; bit += 3) {
            buf[at] ^= (uint8_t)(1u << bit);
            pt_table *r = NULL;
            pt_status st = pt__table_deserialize(NULL, buf, len, &r, &e);
            buf[at] ^= (uint8_t)(1u << bit);
            CHECK_MSG(st == PT_ECORRUPT, "flip of bit %d at byte %lld: %s", bit, (long long)at,
                      pt_status_name(st));
            CHECK(r == NULL);
        }
    }
    /* The payload flips are caught by the checksum, and it says so. */
    buf[len - 1] ^= 0x10;
    pt_table *r = NULL;
    CHECK_EQ_I(pt__table_deserialize(NULL, buf, len, &r, &e), PT_ECORRUPT);
    CHECK_CONTAINS(e.msg, "checksum mismatch");
    pt__table_buf_free(NULL, buf, len);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), before);
}

TEST(bit_flips_without_crc_never_crash) {
    /* Without a checksum the structure checks alone must stop bad bytes:
     * any result is either a valid table or PT_ECORRUPT, and nothing is
     * leaked (ASan/UBSan runs make "never crash" real). */
    int64_t before = pt_alloc_bytes_in_use();
    pt_error e;
    pt_table *t = formula_table(40);
    CHECK(t != NULL);
    int64_t len = pt__table_serialized_size(t);
    uint8_t *buf = malloc((size_t)len);
    int64_t wrote;
    CHECK_OK(pt__table_serialize_into(t, 0, buf, len, &wrote, &e), &e);
    CHECK_EQ_I(wrote, len);
    pt_table *r = NULL;
    CHECK_OK(pt__table_deserialize(NULL, buf, len, &r, &e), &e);
    char why[256];
    CHECK_MSG(pt_table_equal(t, r, why, sizeof why), "%s", why);
    pt_table_free(r);
    int64_t ok = 0, bad = 0;
    for (int64_t at = 0; at < len; at++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[at] ^= (uint8_t)(1u << bit);
            r = NULL;
            pt_status st = pt__table_deserialize(NULL, buf, len, &r, &e);
            buf[at] ^= (uint8_t)(1u << bit);
            CHECK_MSG(st == PT_OK || st == PT_ECORRUPT, "flip at %lld: %s: %s", (long long)at,
                      pt_status_name(st), e.msg);
            if (st == PT_OK) {
                CHECK(null_counts_exact(r));
                ok++;
            } else {
                bad++;
            }
            pt_table_free(r);
        }
    }
    /* Most flips land in values (accepted); structure flips are refused. */
    CHECK(ok > 0 && bad > 0);
    /* Garbage that claims huge sizes. */
    uint8_t junk[64];
    memset(junk, 0xff, sizeof junk);
    memcpy(junk, "PTX1", 4);
    memset(junk + 4, 0, 12);
    int64_t pl = 40;
    memcpy(junk + 16, &pl, 8);
    CHECK_EQ_I(pt__table_deserialize(NULL, junk, 64, &r, &e), PT_ECORRUPT);
    free(buf);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), before);
}

TEST(serialize_arguments) {
    pt_error e;
    pt_table *t = formula_table(3);
    CHECK(t != NULL);
    uint8_t small[16];
    int64_t len;
    CHECK_EQ_I(pt__table_serialize_into(t, PT__SER_CRC, small, sizeof small, &len, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "cap is 16 bytes");
    CHECK_EQ_I(pt__table_serialized_size(NULL), -1);
    pt_table *r;
    CHECK_EQ_I(pt__table_deserialize(NULL, small, 3, &r, &e), PT_ECORRUPT);
    CHECK_CONTAINS(e.msg, "too few");
    memset(small, 0, sizeof small);
    memcpy(small, "NOPE", 4);
    CHECK_EQ_I(pt__table_deserialize(NULL, small, sizeof small, &r, &e), PT_ECORRUPT);
    CHECK_CONTAINS(e.msg, "too few"); /* 16 < the 24-byte header */
    pt_table_free(t);
}

TEST(deserialize_charges_the_budget) {
    pt_error e;
    pt_table *t = formula_table(1000);
    CHECK(t != NULL);
    uint8_t *buf;
    int64_t len;
    pt_mem *mem = pt_mem_new(0);
    CHECK_OK(pt__table_serialize(t, mem, &buf, &len, &e), &e);
    CHECK_EQ_I(pt_mem_used(mem), len);
    pt_mem *tight = pt_mem_new(1024);
    pt_table *r = NULL;
    CHECK_EQ_I(pt__table_deserialize(tight, buf, len, &r, &e), PT_EBUDGET);
    CHECK_EQ_I(pt_mem_used(tight), 0);
    pt_mem *roomy = pt_mem_new(0);
    CHECK_OK(pt__table_deserialize(roomy, buf, len, &r, &e), &e);
    CHECK(pt_mem_used(roomy) > 0);
    pt_table_free(r);
    CHECK_EQ_I(pt_mem_used(roomy), 0);
    pt__table_buf_free(mem, buf, len);
    CHECK_EQ_I(pt_mem_used(mem), 0);
    pt_mem_free(mem);
    pt_mem_free(tight);
    pt_mem_free(roomy);
    pt_table_free(t);
}

/* ------------------------------------------------------------------------ */
/* Hashing                                                                  */
/* ------------------------------------------------------------------------ */

/* One-row table holding column c. */
static pt_table *one_col(pt_column *c) {
    const char *name = "k";
    pt_schema *s;
    if (pt_schema_new(1, &name, &c->type, &s, NULL)) return NULL;
    pt_table *t;
    if (pt_table_new(s, &c, &t, NULL)) return NULL;
    return t;
}

static uint64_t h1(pt_table *t, int64_t row) {
    int key = 0;
    return pt__dist_row_hash(t, 1, &key, row);
}

TEST(hash_equal_across_representations) {
    pt_column *i32, *i64, *f32, *f64, *u, *dict, *d;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT32, 4, 0, &i32, NULL), NULL);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 4, 0, &i64, NULL), NULL);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_FLOAT32, 4, 0, &f32, NULL), NULL);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_FLOAT64, 4, 0, &f64, NULL), NULL);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_UTF8, 4, 0, &u, NULL), NULL);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_UTF8, 4, 0, &dict, NULL), NULL);
    CHECK_OK(pt_column_append_str(dict, "zz", 2, NULL), NULL);
    CHECK_OK(pt_column_append_str(dict, "abc", 3, NULL), NULL);
    CHECK_OK(pt_column_new_dict(NULL, dict, 4, &d, NULL), NULL);
    pt_column_release(dict);
    /* rows: 5, 0 (as -0.0 for floats), null, 7 / 7.5 */
    CHECK_OK(pt_column_append_i32(i32, 5, NULL), NULL);
    CHECK_OK(pt_column_append_i32(i32, 0, NULL), NULL);
    CHECK_OK(pt_column_append_null(i32, NULL), NULL);
    CHECK_OK(pt_column_append_i32(i32, 7, NULL), NULL);
    CHECK_OK(pt_column_append_i64(i64, 5, NULL), NULL);
    CHECK_OK(pt_column_append_i64(i64, 0, NULL), NULL);
    CHECK_OK(pt_column_append_null(i64, NULL), NULL);
    CHECK_OK(pt_column_append_i64(i64, 7, NULL), NULL);
    CHECK_OK(pt_column_append_f32(f32, 5.0f, NULL), NULL);
    CHECK_OK(pt_column_append_f32(f32, -0.0f, NULL), NULL);
    CHECK_OK(pt_column_append_null(f32, NULL), NULL);
    CHECK_OK(pt_column_append_f32(f32, 7.5f, NULL), NULL);
    CHECK_OK(pt_column_append_f64(f64, 5.0, NULL), NULL);
    CHECK_OK(pt_column_append_f64(f64, 0.0, NULL), NULL);
    CHECK_OK(pt_column_append_null(f64, NULL), NULL);
    CHECK_OK(pt_column_append_f64(f64, 7.5, NULL), NULL);
    CHECK_OK(pt_column_append_str(u, "abc", 3, NULL), NULL);
    CHECK_OK(pt_column_append_str(u, "zz", 2, NULL), NULL);
    CHECK_OK(pt_column_append_null(u, NULL), NULL);
    CHECK_OK(pt_column_append_str(u, "", 0, NULL), NULL);
    CHECK_OK(pt_column_append_index(d, 1, NULL), NULL);
    CHECK_OK(pt_column_append_index(d, 0, NULL), NULL);
    CHECK_OK(pt_column_append_null(d, NULL), NULL);
    CHECK_OK(pt_column_append_index(d, 0, NULL), NULL);
    pt_table *T[6] = {one_col(i32), one_col(i64), one_col(f32), one_col(f64), one_col(u),
                      one_col(d)};
    for (int k = 0; k < 6; k++) CHECK(T[k] != NULL);
    for (int k = 1; k < 4; k++) {
        CHECK(h1(T[k], 0) == h1(T[0], 0)); /* 5 == 5L == 5.0f == 5.0 */
        CHECK(h1(T[k], 1) == h1(T[0], 1)); /* 0 == -0.0 */
    }
    CHECK(h1(T[2], 3) == h1(T[3], 3)); /* 7.5f == 7.5 */
    CHECK(h1(T[0], 3) == h1(T[1], 3));
    CHECK(h1(T[0], 3) != h1(T[3], 3)); /* 7 != 7.5 */
    CHECK(h1(T[4], 0) == h1(T[5], 0)); /* "abc" utf8 == dict */
    CHECK(h1(T[4], 1) == h1(T[5], 1));
    CHECK(h1(T[4], 0) != h1(T[4], 1));
    CHECK(h1(T[4], 3) != h1(T[4], 1)); /* "" is not "zz" */
    for (int k = 1; k < 6; k++) CHECK(h1(T[k], 2) == h1(T[0], 2)); /* every null alike */
    CHECK(h1(T[0], 2) != h1(T[4], 3));                              /* null is not "" */
    /* Two keys: the order matters, and it is a function of both. */
    pt_table *two;
    pt_column *cc[2] = {pt_column_retain(T[1]->cols[0]), pt_column_retain(T[4]->cols[0])};
    const char *names[] = {"a", "b"};
    pt_type types[] = {PT_TYPE_INT64, PT_TYPE_UTF8};
    pt_schema *s;
    CHECK_OK(pt_schema_new(2, names, types, &s, NULL), NULL);
    CHECK_OK(pt_table_new(s, cc, &two, NULL), NULL);
    int ab[] = {0, 1}, ba[] = {1, 0};
    CHECK(pt__dist_row_hash(two, 2, ab, 0) != pt__dist_row_hash(two, 2, ba, 0));
    CHECK(pt__dist_row_hash(two, 2, ab, 0) != pt__dist_row_hash(two, 1, ab, 0));
    pt_table_free(two);
    for (int k = 0; k < 6; k++) pt_table_free(T[k]);
}

/* ------------------------------------------------------------------------ */
/* The self backend: every exchange is the identity                         */
/* ------------------------------------------------------------------------ */

static pt_comm *self_comm(void) {
    pt_comm_opts o;
    pt_comm_opts_init(&o);
    o.backend = "self";
    pt_comm *c = NULL;
    pt_error e;
    if (pt_comm_init(&o, &c, &e) != PT_OK) return NULL;
    return c;
}

TEST(self_exchanges_are_identity) {
    int64_t before = pt_alloc_bytes_in_use();
    pt_error e;
    pt_comm *c = self_comm();
    CHECK(c != NULL);
    pt_ctx *ctx;
    CHECK_OK(pt_ctx_new(NULL, &ctx, &e), &e);
    pt_table *t = formula_table(500);
    CHECK(t != NULL);
    /* Three parts of the same table (slices), as a scan would make. */
    pt_table *p[3];
    CHECK_OK(pt_table_slice(t, 0, 123, &p[0], &e), &e);
    CHECK_OK(pt_table_slice(t, 123, 0, &p[1], &e), &e);
    CHECK_OK(pt_table_slice(t, 123, 377, &p[2], &e), &e);
    int keys[] = {6, 2};
    pt_table *outs[5] = {0};
    CHECK_OK(pt__dist_shuffle_hash(c, ctx, p, 3, 2, keys, &outs[0], &e), &e);
    CHECK_OK(pt__dist_shuffle_range(c, ctx, p, 3, 5, false, 0, &outs[1], &e), &e);
    CHECK_OK(pt__dist_gather(c, ctx, t, 0, &outs[2], &e), &e);
    CHECK_OK(pt__dist_broadcast_table(c, ctx, t, 0, &outs[3], &e), &e);
    CHECK_OK(pt__dist_allgather_table(c, ctx, t, &outs[4], &e), &e);
    for (int k = 0; k < 5; k++) {
        CHECK_EQ_I(outs[k]->nrows, 500);
        for (int64_t i = 0; i < 500; i++) {
            const char *bad = row_mismatch(outs[k], i, i);
            CHECK_MSG(bad == NULL, "exchange %d: row %lld column %s", k, (long long)i, bad);
        }
        pt_table_free(outs[k]);
    }
    /* Zero rows everywhere still gives the schema. */
    pt_table *empty;
    CHECK_OK(pt__dist_shuffle_hash(c, ctx, &p[1], 1, 2, keys, &empty, &e), &e);
    CHECK_EQ_I(empty->nrows, 0);
    CHECK_EQ_I(empty->schema->nfields, 8);
    pt_table_free(empty);
    /* Argument errors name the parameter. */
    int badkey = 8;
    pt_table *r = NULL;
    CHECK_EQ_I(pt__dist_shuffle_hash(c, ctx, p, 3, 1, &badkey, &r, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "keys[0] = 8");
    CHECK_EQ_I(pt__dist_shuffle_hash(c, ctx, p, 0, 1, keys, &r, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "nparts is 0");
    CHECK_EQ_I(pt__dist_shuffle_range(c, ctx, p, 3, -1, false, 0, &r, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "key = -1");
    CHECK_EQ_I(pt__dist_gather(c, ctx, t, 1, &r, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "root 1");
    pt_table *other = NULL;
    CHECK_OK(pt_table_select(t, (const char *const[]){"s", "d"}, 2, &other, &e), &e);
    pt_table *mixed[2] = {t, other};
    CHECK_EQ_I(pt__dist_shuffle_hash(c, ctx, mixed, 2, 1, keys + 1, &r, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "parts[1]");
    CHECK(pt_comm_failed(c) == false);
    pt_table_free(other);
    for (int k = 0; k < 3; k++) pt_table_free(p[k]);
    pt_table_free(t);
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(ctx)), 0);
    pt_ctx_free(ctx);
    pt_comm_free(c);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), before);
}

TEST(self_range_shuffle_descending_and_nulls) {
    /* With one rank everything lands on rank 0, in input order, for either
     * direction and whatever the key type. */
    pt_error e;
    pt_comm *c = self_comm();
    CHECK(c != NULL);
    pt_table *t = formula_table(64);
    CHECK(t != NULL);
    for (int key = 0; key < 8; key++) {
        pt_table *r = NULL;
        CHECK_OK(pt__dist_shuffle_range(c, NULL, &t, 1, key, key % 2 == 1, 7, &r, &e), &e);
        char why[256];
        CHECK_MSG(pt_table_equal(t, r, why, sizeof why), "key %d: %s", key, why);
        pt_table_free(r);
    }
    pt_table_free(t);
    pt_comm_free(c);
}

/* ------------------------------------------------------------------------ */
/* Scan split                                                               */
/* ------------------------------------------------------------------------ */

TEST(share_is_contiguous_and_balanced) {
    const int64_t ns[] = {0, 1, 2, 3, 7, 10, 100, 1000003};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        for (int size = 1; size <= 9; size++) {
            int64_t n = ns[k], prev = 0, q = n / size;
            for (int r = 0; r < size; r++) {
                int64_t lo, hi;
                pt__dist_share(n, r, size, &lo, &hi);
                CHECK_EQ_I(lo, prev);
                CHECK(hi - lo == q || hi - lo == q + 1);
                /* The larger shares come first. */
                CHECK_EQ_I(hi - lo, q + (r < n % size ? 1 : 0));
                prev = hi;
            }
            CHECK_EQ_I(prev, n);
        }
    }
    int64_t lo, hi;
    pt__dist_share(-5, 0, 2, &lo, &hi);
    CHECK(lo == 0 && hi == 0);
    pt__dist_share(10, 3, 2, &lo, &hi);
    CHECK(lo == 0 && hi == 0);
}
