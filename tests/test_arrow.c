/* Tests of the Arrow C Data Interface: export -> import round trips for every
 * type (with nulls, slices and dictionaries), the layout of exported arrays,
 * hand-built producer arrays (32-bit offsets, narrow integers, dictionaries),
 * release callbacks called exactly once, and errors for unsupported formats. */
#include <stdint.h>

#include "pt_test.h"

#define LEAK_START() int64_t leak_start__ = pt_alloc_bytes_in_use()
#define LEAK_END() CHECK_EQ_I(pt_alloc_bytes_in_use(), leak_start__)

/* Counts calls of the producer's release callback through a wrapper. */
static int release_count;
static void (*orig_release)(struct ArrowArray *);
static void counting_release(struct ArrowArray *a) {
    release_count++;
    a->release = orig_release;
    orig_release(a);
}
static void count_releases(struct ArrowArray *a) {
    release_count = 0;
    orig_release = a->release;
    a->release = counting_release;
}

/* A table with one column of every type; row i is null when i % 5 == 2. */
static pt_table *every_type_table(int64_t n) {
    pt_error e;
    pt_schema *s;
    if (pt_schema_parse("nul:null,b:bool,i:int32,l:int64,f:float32,g:float64,s:utf8", &s, &e))
        return NULL;
    pt_column *c[8];
    for (int j = 0; j < 7; j++)
        if (pt_column_new(NULL, s->fields[j].type, 0, 0, &c[j], &e)) return NULL;
    static const char *const words[] = {"x", "", "hello", "wörld", "a,b"};
    for (int64_t i = 0; i < n; i++) {
        int bad = pt_column_append_null(c[0], &e);
        if (i % 5 == 2) {
            for (int j = 1; j < 7; j++) bad |= pt_column_append_null(c[j], &e);
        } else {
            bad |= pt_column_append_bool(c[1], i % 3 == 1, &e);
            bad |= pt_column_append_i32(c[2], (int32_t)(i * 37 - 1000), &e);
            bad |= pt_column_append_i64(c[3], (int64_t)i << 35, &e);
            bad |= pt_column_append_f32(c[4], (float)i / 8.0f, &e);
            bad |= pt_column_append_f64(c[5], i == 4 ? NAN : -(double)i * 1.25, &e);
            bad |= pt_column_append_str(c[6], words[i % 5], -1, &e);
        }
        if (bad) return NULL;
    }
    /* Dictionary column from the utf8 one. */
    if (pt_column_cast(NULL, c[6], PT_TYPE_DICT, &c[7], &e)) return NULL;
    pt_schema *s2;
    const char *names[8];
    pt_type types[8];
    for (int j = 0; j < 7; j++) names[j] = s->fields[j].name, types[j] = s->fields[j].type;
    names[7] = "d";
    types[7] = PT_TYPE_DICT;
    if (pt_schema_new(8, names, types, &s2, &e)) return NULL;
    pt_schema_free(s);
    pt_table *t;
    if (pt_table_new(s2, c, &t, &e)) return NULL;
    return t;
}

TEST(round_trip_every_type) {
    LEAK_START();
    pt_error e;
    pt_table *t = every_type_table(50);
    CHECK(t);
    struct ArrowSchema sch;
    struct ArrowArray arr;
    CHECK_OK(pt_table_export(t, &sch, &arr, &e), &e);
    count_releases(&arr);
    pt_table *back;
    CHECK_OK(pt_table_import(NULL, &arr, &sch, &back, &e), &e);
    CHECK(arr.release == NULL); /* moved */
    char why[256];
    CHECK_MSG(pt_table_equal(t, back, why, sizeof why), "%s", why);
    CHECK_EQ_I(back->cols[7]->type, PT_TYPE_DICT);
    /* The import shares the exported memory (zero-copy). */
    CHECK(back->cols[3]->values->data == t->cols[3]->values->data);
    /* The original can go first; the producer is released with the last
     * imported buffer, exactly once. */
    pt_table_free(t);
    CHECK_EQ_I(release_count, 0);
    pt_table_free(back);
    CHECK_EQ_I(release_count, 1);
    sch.release(&sch);
    CHECK(sch.release == NULL);
    LEAK_END();
}

TEST(round_trip_slices) {
    LEAK_START();
    pt_error e;
    pt_table *t = every_type_table(100);
    CHECK(t);
    /* Offsets that are not multiples of 8, and a slice of a slice. */
    pt_table *s1, *s2;
    CHECK_OK(pt_table_slice(t, 13, 70, &s1, &e), &e);
    CHECK_OK(pt_table_slice(s1, 3, 41, &s2, &e), &e);
    pt_table_free(s1);
    struct ArrowSchema sch;
    struct ArrowArray arr;
    CHECK_OK(pt_table_export(s2, &sch, &arr, &e), &e);
    CHECK_EQ_I(arr.children[2]->offset, 16);
    count_releases(&arr);
    pt_table *back;
    CHECK_OK(pt_table_import(NULL, &arr, &sch, &back, &e), &e);
    char why[256];
    CHECK_MSG(pt_table_equal(s2, back, why, sizeof why), "%s", why);
    /* And against a deep copy with offset 0. */
    pt_table *cp;
    pt_table *one[1] = {s2};
    CHECK_OK(pt_table_concat(NULL, one, 1, &cp, &e), &e);
    CHECK_EQ_I(cp->cols[1]->offset, 0);
    CHECK_MSG(pt_table_equal(cp, back, why, sizeof why), "%s", why);
    pt_table_free(cp);
    pt_table_free(back);
    CHECK_EQ_I(release_count, 1);
    sch.release(&sch);
    pt_table_free(s2);
    pt_table_free(t);
    LEAK_END();
}

TEST(export_layout_and_lifetime) {
    LEAK_START();
    pt_error e;
    pt_table *t = every_type_table(10);
    CHECK(t);
    struct ArrowSchema sch;
    struct ArrowArray arr;
    CHECK_OK(pt_table_export(t, &sch, &arr, &e), &e);
    CHECK_STR(sch.format, "+s");
    CHECK_EQ_I(sch.n_children, 8);
    CHECK_EQ_I(arr.n_children, 8);
    CHECK_EQ_I(arr.length, 10);
    const char *fmts[8] = {"n", "b", "i", "l", "f", "g", "U", "i"};
    const char *names[8] = {"nul", "b", "i", "l", "f", "g", "s", "d"};
    const int nbuf[8] = {0, 2, 2, 2, 2, 2, 3, 2};
    for (int j = 0; j < 8; j++) {
        CHECK_STR(sch.children[j]->format, fmts[j]);
        CHECK_STR(sch.children[j]->name, names[j]);
        CHECK(sch.children[j]->flags & ARROW_FLAG_NULLABLE);
        CHECK_EQ_I(arr.children[j]->n_buffers, nbuf[j]);
        CHECK_EQ_I(arr.children[j]->null_count, j == 0 ? 10 : 2);
    }
    CHECK(sch.children[7]->dictionary != NULL);
    CHECK_STR(sch.children[7]->dictionary->format, "U");
    CHECK(arr.children[7]->dictionary != NULL);
    CHECK_EQ_I(arr.children[7]->dictionary->length, 4); /* x, "", wörld, a,b */
    /* The table goes before the consumer is done: buffers stay alive. */
    pt_table_free(t);
    const struct ArrowArray *ls = arr.children[6];
    const int64_t *off = ls->buffers[1];
    const char *data = ls->buffers[2];
    const uint8_t *valid = ls->buffers[0];
    CHECK(valid != NULL);
    CHECK(!(valid[0] & (1 << 2)));
    CHECK(valid[0] & (1 << 3));
    CHECK_EQ_I(off[4] - off[3], 6); /* "wörld" is 6 bytes */
    CHECK(memcmp(data + off[3], "wörld", 6) == 0);
    const int64_t *lv = arr.children[3]->buffers[1];
    CHECK_EQ_I(lv[9], (int64_t)9 << 35);
    /* A consumer may move a child out and release it on its own. */
    struct ArrowArray moved = *arr.children[2];
    arr.children[2]->release = NULL;
    arr.release(&arr);
    CHECK(arr.release == NULL);
    CHECK_EQ_I(((const int32_t *)moved.buffers[1])[1], 37 - 1000);
    moved.release(&moved);
    sch.release(&sch);
    LEAK_END();
}

TEST(column_export_import) {
    LEAK_START();
    pt_error e;
    pt_column *c;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 0, 0, &c, &e), &e);
    for (int i = 0; i < 20; i++) CHECK_OK(pt_column_append_i64(c, i * i, &e), &e);
    pt_column *s;
    CHECK_OK(pt_column_slice(c, 5, 10, &s, &e), &e);
    pt_column_release(c);
    struct ArrowSchema sch;
    struct ArrowArray arr;
    CHECK_OK(pt_column_export(s, "sq", &sch, &arr, &e), &e);
    pt_column_release(s);
    CHECK_STR(sch.name, "sq");
    CHECK_STR(sch.format, "l");
    CHECK_EQ_I(arr.offset, 5);
    CHECK(arr.buffers[0] == NULL);
    count_releases(&arr);
    pt_column *back;
    pt_mem *m = pt_mem_new(0);
    CHECK_OK(pt_column_import(m, &arr, &sch, &back, &e), &e);
    CHECK_EQ_I(pt_mem_used(m), 0); /* zero-copy: nothing new charged */
    CHECK_EQ_I(back->length, 10);
    CHECK_EQ_I(back->null_count, 0);
    for (int i = 0; i < 10; i++) CHECK_EQ_I(pt_column_i64(back)[i], (i + 5) * (i + 5));
    pt_column_release(back);
    CHECK_EQ_I(release_count, 1);
    sch.release(&sch);
    pt_mem_free(m);
    LEAK_END();
}

/* ------------------------------------------------------------------------ */
/* Hand-built producer arrays                                               */
/* ------------------------------------------------------------------------ */

static int hand_releases;
static void hand_release(struct ArrowArray *a) {
    hand_releases++;
    a->release = NULL;
}
static void hand_schema_release(struct ArrowSchema *s) { s->release = NULL; }

static void hand_array(struct ArrowArray *a, int64_t length, int64_t offset, int64_t null_count,
                       int64_t n_buffers, const void **buffers) {
    memset(a, 0, sizeof *a);
    a->length = length;
    a->offset = offset;
    a->null_count = null_count;
    a->n_buffers = n_buffers;
    a->buffers = buffers;
    a->release = hand_release;
}

static void hand_schema(struct ArrowSchema *s, const char *format, const char *name) {
    memset(s, 0, sizeof *s);
    s->format = format;
    s->name = name;
    s->flags = ARROW_FLAG_NULLABLE;
    s->release = hand_schema_release;
}

static int str_is(const pt_column *c, int64_t i, const char *want) {
    int64_t len;
    const char *s = pt_column_str(c, i, &len);
    return len == (int64_t)strlen(want) && memcmp(s, want, (size_t)len) == 0;
}

TEST(import_hand_built_utf8_32bit_offsets) {
    LEAK_START();
    pt_error e;
    /* Rows: "skip", "foo", null, "hello", "" ; imported from offset 1. */
    static const int32_t offsets[] = {0, 4, 7, 7, 12, 12};
    static const char data[] = "skipfoohello";
    static const uint8_t valid[] = {0x1B}; /* 1,1,0,1,1 */
    const void *bufs[3] = {valid, offsets, data};
    struct ArrowArray a;
    struct ArrowSchema s;
    hand_array(&a, 4, 1, 1, 3, bufs);
    hand_schema(&s, "u", "word");
    hand_releases = 0;
    pt_column *c;
    CHECK_OK(pt_column_import(NULL, &a, &s, &c, &e), &e);
    CHECK(a.release == NULL);
    CHECK_EQ_I(c->type, PT_TYPE_UTF8);
    CHECK_EQ_I(c->length, 4);
    CHECK_EQ_I(c->null_count, 1);
    CHECK(str_is(c, 0, "foo"));
    CHECK(!pt_column_is_valid(c, 1));
    CHECK(str_is(c, 2, "hello"));
    CHECK(pt_column_is_valid(c, 3));
    CHECK(str_is(c, 3, ""));
    /* The character data is still the producer's. */
    CHECK_EQ_I(hand_releases, 0);
    pt_column_release(c);
    CHECK_EQ_I(hand_releases, 1);
    LEAK_END();
}

TEST(import_hand_built_narrow_ints_and_dict) {
    LEAK_START();
    pt_error e;
    /* int16 with an offset: rows -300, null, 7. */
    static const int16_t v16[] = {99, -300, 0, 7};
    static const uint8_t valid[] = {0x0B}; /* 1,1,0,1 */
    const void *b16[2] = {valid, v16};
    struct ArrowArray a;
    struct ArrowSchema s;
    hand_array(&a, 3, 1, -1, 2, b16); /* null count unknown (-1) */
    hand_schema(&s, "s", "small");
    hand_releases = 0;
    pt_column *c;
    CHECK_OK(pt_column_import(NULL, &a, &s, &c, &e), &e);
    /* Everything was converted, so the producer is released at once. */
    CHECK_EQ_I(hand_releases, 1);
    CHECK_EQ_I(c->type, PT_TYPE_INT32);
    CHECK_EQ_I(c->null_count, 1);
    CHECK_EQ_I(pt_column_i32(c)[0], -300);
    CHECK(!pt_column_is_valid(c, 1));
    CHECK_EQ_I(pt_column_i32(c)[2], 7);
    pt_column_release(c);

    /* int8 indices into a 32-bit-offset dictionary. */
    static const int8_t idx[] = {2, 0, 1, 1, 0};
    static const int32_t doff[] = {0, 3, 8, 12};
    static const char dchars[] = "redgreenblue";
    const void *bi[2] = {NULL, idx};
    const void *bd[3] = {NULL, doff, dchars};
    struct ArrowArray dict;
    struct ArrowSchema dsch;
    hand_array(&a, 5, 0, 0, 2, bi);
    hand_array(&dict, 3, 0, 0, 3, bd);
    dict.release = NULL; /* released by its parent (here: nothing to do) */
    a.dictionary = &dict;
    hand_schema(&s, "c", "colour");
    hand_schema(&dsch, "u", NULL);
    s.dictionary = &dsch;
    hand_releases = 0;
    CHECK_OK(pt_column_import(NULL, &a, &s, &c, &e), &e);
    CHECK_EQ_I(c->type, PT_TYPE_DICT);
    CHECK_EQ_I(c->dict->length, 3);
    const char *want[] = {"blue", "red", "green", "green", "red"};
    for (int i = 0; i < 5; i++) CHECK_MSG(str_is(c, i, want[i]), "row %d", i);
    pt_column_release(c);
    CHECK_EQ_I(hand_releases, 1);

    /* An index outside the dictionary is caught at import. */
    static const int8_t bad_idx[] = {0, 3};
    const void *bb[2] = {NULL, bad_idx};
    hand_array(&a, 2, 0, 0, 2, bb);
    a.dictionary = &dict;
    hand_releases = 0;
    CHECK_EQ_I(pt_column_import(NULL, &a, &s, &c, &e), PT_ECORRUPT);
    CHECK_CONTAINS(e.msg, "'colour'");
    CHECK_CONTAINS(e.msg, "row 1 has dictionary index 3");
    CHECK_EQ_I(hand_releases, 1);
    LEAK_END();
}

TEST(import_misaligned_copies) {
    LEAK_START();
    pt_error e;
    /* A float64 buffer that is not 8-byte aligned is copied, not wrapped. */
    static uint64_t storage[4];
    double vals[3] = {1.5, -2.0, 1e10};
    unsigned char *p = (unsigned char *)storage + 1;
    memcpy(p, vals, sizeof vals);
    const void *bufs[2] = {NULL, p};
    struct ArrowArray a;
    struct ArrowSchema s;
    hand_array(&a, 2, 1, 0, 2, bufs);
    hand_schema(&s, "g", "x");
    hand_releases = 0;
    pt_column *c;
    CHECK_OK(pt_column_import(NULL, &a, &s, &c, &e), &e);
    CHECK_EQ_I(hand_releases, 1);
    CHECK_EQ_I(c->offset, 0);
    CHECK(pt_column_f64(c)[0] == -2.0);
    CHECK(pt_column_f64(c)[1] == 1e10);
    pt_column_release(c);
    LEAK_END();
}

TEST(import_struct_with_offset) {
    LEAK_START();
    pt_error e;
    static const int32_t v[] = {10, 11, 12, 13, 14};
    const void *cb[2] = {NULL, v};
    const void *sb[1] = {NULL};
    struct ArrowArray child, parent;
    struct ArrowSchema cs, ps;
    hand_array(&child, 5, 0, 0, 2, cb);
    child.release = NULL;
    hand_array(&parent, 2, 2, 0, 1, sb);
    struct ArrowArray *children[1] = {&child};
    parent.n_children = 1;
    parent.children = children;
    hand_schema(&cs, "i", "v");
    hand_schema(&ps, "+s", "");
    struct ArrowSchema *schildren[1] = {&cs};
    ps.n_children = 1;
    ps.children = schildren;
    hand_releases = 0;
    pt_table *t;
    CHECK_OK(pt_table_import(NULL, &parent, &ps, &t, &e), &e);
    CHECK_EQ_I(t->nrows, 2);
    CHECK_STR(t->schema->fields[0].name, "v");
    CHECK_EQ_I(pt_column_i32(t->cols[0])[0], 12);
    CHECK_EQ_I(pt_column_i32(t->cols[0])[1], 13);
    CHECK_EQ_I(hand_releases, 0);
    pt_table_free(t);
    CHECK_EQ_I(hand_releases, 1);
    LEAK_END();
}

TEST(import_unsupported_format) {
    LEAK_START();
    pt_error e;
    static const int64_t ts[] = {0, 1};
    const void *bufs[2] = {NULL, ts};
    struct ArrowArray a;
    struct ArrowSchema s;
    hand_array(&a, 2, 0, 0, 2, bufs);
    hand_schema(&s, "tsu:", "when");
    hand_releases = 0;
    pt_column *c;
    CHECK_EQ_I(pt_column_import(NULL, &a, &s, &c, &e), PT_EUNSUPPORTED);
    CHECK(c == NULL);
    CHECK_CONTAINS(e.msg, "format 'tsu:'");
    CHECK_CONTAINS(e.msg, "field 'when'");
    /* Ownership moved anyway: the producer was released once. */
    CHECK(a.release == NULL);
    CHECK_EQ_I(hand_releases, 1);

    /* Inside a table, the error names the column. */
    struct ArrowArray child, parent;
    struct ArrowSchema cs, ps;
    hand_array(&child, 2, 0, 0, 2, bufs);
    child.release = NULL;
    const void *sb[1] = {NULL};
    hand_array(&parent, 2, 0, 0, 1, sb);
    struct ArrowArray *children[1] = {&child};
    parent.n_children = 1;
    parent.children = children;
    hand_schema(&cs, "+l", "lists");
    hand_schema(&ps, "+s", "");
    struct ArrowSchema *schildren[1] = {&cs};
    ps.n_children = 1;
    ps.children = schildren;
    hand_releases = 0;
    pt_table *t;
    CHECK_EQ_I(pt_table_import(NULL, &parent, &ps, &t, &e), PT_EUNSUPPORTED);
    CHECK_CONTAINS(e.msg, "'lists'");
    CHECK_CONTAINS(e.msg, "'+l'");
    CHECK_EQ_I(hand_releases, 1);
    /* A column import of a struct is refused: tables use pt_table_import. */
    hand_array(&a, 2, 0, 0, 2, bufs);
    CHECK_EQ_I(pt_column_import(NULL, &a, &ps, &c, &e), PT_EUNSUPPORTED);
    CHECK_CONTAINS(e.msg, "'+s'");
    LEAK_END();
}
