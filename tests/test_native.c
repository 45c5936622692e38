/*
 * test_native.c - the native columnar file format (writer, reader, CRC32C,
 * spill directories).
 *
 * Expected values come from outside the code under test: CRC-32C check
 * values and a bitwise reference CRC written here; tables built row by row
 * with the column builders and compared with pt_table_equal; byte regions
 * of files located by parsing the documented layout here (not through the
 * reader), and checksums of hand-patched files recomputed with the
 * reference CRC.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_native.h"
#include "io/native_format.h"
#include "pt_test.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* Bitwise CRC-32C, straight from the definition. */
static uint32_t ref_crc32c(const void *data, size_t n) {
    const uint8_t *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) {
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int have_zstd(void) {
    return strstr(pt_build_info(), "zstd=yes") != NULL;
}

static uint8_t *slurp(const char *path, int64_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = n;
    return b;
}

static int spit(const char *path, const void *data, int64_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t k = fwrite(data, 1, (size_t)len, f);
    fclose(f);
    return k == (size_t)len ? 0 : -1;
}

static int file_exists(const char *path) {
    return access(path, F_OK) == 0;
}

/* Number of entries in `dir` whose name starts with `prefix`. */
static int count_entries(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

static const char *const dict_words[] = {"red", "", "green", "blue-ish long value", "x"};
#define NWORDS 5

/* A table with one column of every type: b bool, i int32, l int64, f float32,
 * d float64, s utf8, c dict, z null. Every `null_every`-th row of the
 * nullable columns is null (0 = no nulls); strings include empty ones. */
static pt_status make_table(int64_t n, int null_every, uint64_t seed, pt_table **out,
                            pt_error *err) {
    const char *names[8] = {"b", "i", "l", "f", "d", "s", "c", "z"};
    pt_type types[8] = {PT_TYPE_BOOL,    PT_TYPE_INT32, PT_TYPE_INT64, PT_TYPE_FLOAT32,
                        PT_TYPE_FLOAT64, PT_TYPE_UTF8,  PT_TYPE_DICT,  PT_TYPE_NULL};
    pt_column *cols[8] = {0};
    pt_column *dict = NULL;
    pt_status s = PT_OK;
    for (int j = 0; j < 8 && s == PT_OK; j++) {
        if (types[j] == PT_TYPE_DICT) {
            s = pt_column_new(NULL, PT_TYPE_UTF8, NWORDS, 64, &dict, err);
            for (int k = 0; k < NWORDS && s == PT_OK; k++)
                s = pt_column_append_str(dict, dict_words[k], -1, err);
            if (s == PT_OK) s = pt_column_new_dict(NULL, dict, n, &cols[j], err);
        } else {
            s = pt_column_new(NULL, types[j], n, n * 4, &cols[j], err);
        }
    }
    pt_rng rng;
    pt_rng_seed(&rng, seed);
    char text[64];
    for (int64_t r = 0; r < n && s == PT_OK; r++) {
        int is_null = null_every > 0 && (r % null_every) == (int64_t)(seed % (uint64_t)null_every);
        uint64_t v = pt_rng_next(&rng);
        for (int j = 0; j < 8 && s == PT_OK; j++) {
            pt_column *c = cols[j];
            if (j == 7 || (is_null && j != 2)) { /* "l" never has nulls */
                s = pt_column_append_null(c, err);
                continue;
            }
            switch (j) {
            case 0: s = pt_column_append_bool(c, (v >> 3) & 1, err); break;
            case 1: s = pt_column_append_i32(c, (int32_t)(v >> 7), err); break;
            case 2: s = pt_column_append_i64(c, (int64_t)v, err); break;
            case 3: s = pt_column_append_f32(c, (float)(v % 100000) / 7.0f, err); break;
            case 4: s = pt_column_append_f64(c, (double)(int64_t)v / 3.0, err); break;
            case 5: {
                int len = (int)(v % 13); /* 0..12, so some strings are empty */
                for (int k = 0; k < len; k++)
                    text[k] = (char)('a' + (v >> (k + 8)) % 26);
                s = pt_column_append_str(c, text, len, err);
                break;
            }
            case 6: s = pt_column_append_index(c, (int32_t)(v % NWORDS), err); break;
            }
        }
    }
    pt_column_release(dict);
    pt_schema *schema = NULL;
    if (s == PT_OK) s = pt_schema_new(8, names, types, &schema, err);
    if (s != PT_OK) {
        for (int j = 0; j < 8; j++)
            pt_column_release(cols[j]);
        return s;
    }
    return pt_table_new(schema, cols, out, err);
}

/* Tables equal in values, in types (pt_table_equal accepts dict vs utf8)
 * and in null counts. */
static int tables_same(const pt_table *a, const pt_table *b, char *why, size_t cap) {
    if (!pt_table_equal(a, b, why, cap)) return 0;
    for (int j = 0; j < a->schema->nfields; j++) {
        if (a->cols[j]->type != b->cols[j]->type) {
            snprintf(why, cap, "column %d: type %s vs %s", j, pt_type_name(a->cols[j]->type),
                     pt_type_name(b->cols[j]->type));
            return 0;
        }
        if (a->cols[j]->null_count != b->cols[j]->null_count) {
            snprintf(why, cap, "column %d: null_count %lld vs %lld", j,
                     (long long)a->cols[j]->null_count, (long long)b->cols[j]->null_count);
            return 0;
        }
    }
    return 1;
}

static pt_native_write_opts opts_level(int level, int64_t batch_rows) {
    pt_native_write_opts o;
    pt_native_write_opts_init(&o);
    o.compression_level = level;
    o.batch_rows = batch_rows;
    o.durable = 0;
    return o;
}

/* Reads every batch of an in-memory file; returns the first failure. */
static pt_status read_everything(const uint8_t *data, int64_t len, const char *name,
                                 pt_error *err) {
    pt_native_reader *r;
    pt_status s = pt_native_open_buffer(NULL, data, len, name, &r, err);
    if (s != PT_OK) return s;
    for (int64_t b = 0; b < pt_native_num_batches(r) && s == PT_OK; b++) {
        pt_table *t;
        s = pt_native_read_batch(r, b, NULL, 0, &t, err);
        if (s == PT_OK) pt_table_free(t);
    }
    pt_native_close_read(r);
    return s;
}

/* Layout of a file, parsed here from the documented format. */
typedef struct chunk_loc {
    uint64_t off, len; /* absolute */
    int batch, col;
} chunk_loc;
typedef struct file_map {
    uint64_t footer_start;
    int nbatches;
    uint64_t batch_off[64], batch_hdr_end[64];
    chunk_loc chunks[512];
    int nchunks;
} file_map;

static void map_file(const uint8_t *f, int64_t len, file_map *m) {
    memset(m, 0, sizeof *m);
    uint64_t flen = rd64(f + len - 24);
    m->footer_start = (uint64_t)len - 24 - flen;
    uint64_t pos = 16;
    while (pos < m->footer_start && m->nbatches < 64) {
        uint32_t nc = rd32(f + pos + 4);
        m->batch_off[m->nbatches] = pos;
        m->batch_hdr_end[m->nbatches] = pos + 16 + 24 * (uint64_t)nc + 8;
        uint64_t end = m->batch_hdr_end[m->nbatches];
        for (uint32_t j = 0; j < nc; j++) {
            const uint8_t *e = f + pos + 16 + 24 * j;
            chunk_loc *c = &m->chunks[m->nchunks++];
            c->off = pos + rd64(e);
            c->len = rd64(e + 8);
            c->batch = m->nbatches;
            c->col = (int)j;
            end = c->off + c->len;
        }
        m->nbatches++;
        pos = end;
    }
}

/* After hand-editing chunk `ci`, recomputes its CRC in the batch directory
 * and the batch header CRC, so only the semantic checks can object. */
static void fix_crcs(uint8_t *f, const file_map *m, int ci) {
    const chunk_loc *c = &m->chunks[ci];
    uint64_t b = m->batch_off[c->batch];
    uint8_t *e = f + b + 16 + 24 * (uint64_t)c->col;
    wr32(e + 16, ref_crc32c(f + c->off, (size_t)c->len));
    uint64_t hend = m->batch_hdr_end[c->batch];
    wr32(f + hend - 4, ref_crc32c(f + b, (size_t)(hend - 4 - b)));
}

/* Recomputes every checksum the layout lets it find in a possibly mangled
 * file (bounds checked), so mutations reach the checks behind the CRCs. */
static void fix_all_crcs(uint8_t *f, uint64_t n) {
    if (n < 40) return;
    wr32(f + 12, ref_crc32c(f, 12));
    uint64_t flen = rd64(f + n - 24);
    if (flen < 12 || flen > n - 40) return;
    uint64_t fstart = n - 24 - flen;
    const uint8_t *p = f + fstart;
    uint64_t left = flen - 4;
    uint32_t nf = rd32(p);
    p += 4;
    for (uint32_t i = 0; i < nf; i++) {
        if (left < 8 || left - 8 < rd32(p + 4)) goto footer;
        uint64_t k = 8 + (uint64_t)rd32(p + 4);
        p += k;
        left -= k;
    }
    if (left < 8) goto footer;
    uint64_t nb = rd64(p);
    p += 8;
    left -= 8;
    for (uint64_t b = 0; b < nb && left >= 24; b++, p += 24, left -= 24) {
        uint64_t off = rd64(p), len = rd64(p + 8);
        if (off > fstart || len > fstart - off || len < 24) continue;
        uint64_t nc = rd32(f + off + 4);
        if (nc > (len - 24) / 24) continue;
        uint64_t hsize = 16 + 24 * nc + 8;
        for (uint64_t j = 0; j < nc; j++) {
            uint8_t *e = f + off + 16 + 24 * j;
            uint64_t co = rd64(e), cl = rd64(e + 8);
            if (co <= len && cl <= len - co) wr32(e + 16, ref_crc32c(f + off + co, (size_t)cl));
        }
        wr32(f + off + hsize - 4, ref_crc32c(f + off, (size_t)(hsize - 4)));
    }
footer:
    wr32(f + n - 16, ref_crc32c(f + fstart, (size_t)flen));
}

/* ------------------------------------------------------------------------ */
/* CRC32C                                                                   */
/* ------------------------------------------------------------------------ */

TEST(crc32c_known_values) {
    CHECK_EQ_I(pt_crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ_I(pt__crc32c_sw(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ_I(ref_crc32c("123456789", 9), 0xE3069283u);
    CHECK_EQ_I(pt_crc32c(0, "", 0), 0);
    /* RFC 3720 (iSCSI) test vectors: 32 bytes of zeros, of 0xff, ascending. */
    uint8_t buf[32];
    memset(buf, 0, 32);
    CHECK_EQ_I(pt_crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    CHECK_EQ_I(pt_crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    CHECK_EQ_I(pt_crc32c(0, buf, 32), 0x46DD794Eu);
}

TEST(crc32c_matches_reference) {
    uint8_t data[1100];
    pt_rng rng;
    pt_rng_seed(&rng, 42);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)pt_rng_next(&rng);
    /* Every alignment and many lengths, both implementations, and streaming
     * in two pieces. */
    for (size_t start = 0; start < 9; start++) {
        for (size_t len = 0; len + start <= sizeof data; len += (len < 80 ? 1 : 37)) {
            uint32_t want = ref_crc32c(data + start, len);
            CHECK_EQ_I(pt_crc32c(0, data + start, len), want);
            CHECK_EQ_I(pt__crc32c_sw(0, data + start, len), want);
            size_t cut = len / 3;
            CHECK_EQ_I(pt_crc32c(pt_crc32c(0, data + start, cut), data + start + cut, len - cut),
                       want);
        }
    }
}

TEST(crc32c_large_buffers) {
    /* Long enough for the interleaved hardware loop (3 x 4 KiB blocks),
     * with lengths and alignments around its block boundaries. */
    size_t n = 100000;
    uint8_t *data = malloc(n);
    pt_rng rng;
    pt_rng_seed(&rng, 7);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)pt_rng_next(&rng);
    const size_t lens[] = {12287, 12288, 12289, 24576 + 5, 36863, 99990};
    for (size_t a = 0; a < 4; a++) {
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            size_t len = lens[k];
            uint32_t want = ref_crc32c(data + a, len);
            CHECK_EQ_I(pt_crc32c(0, data + a, len), want);
            CHECK_EQ_I(pt__crc32c_sw(0, data + a, len), want);
            CHECK_EQ_I(pt_crc32c(pt_crc32c(0, data + a, 5000), data + a + 5000, len - 5000), want);
        }
    }
    free(data);
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                              */
/* ------------------------------------------------------------------------ */

TEST(roundtrip_all_types) {
    int64_t base = pt_alloc_bytes_in_use();
    pt_error err;
    const int64_t sizes[] = {0, 1, 7, 8, 9, 63, 64, 65, 1000, 5000};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        for (int level = 0; level <= 3; level += 3) {
            for (int nulls = 0; nulls <= 3; nulls += 3) {
                pt_table *t, *back;
                CHECK_OK(make_table(sizes[si], nulls, 7 + (uint64_t)si, &t, &err), &err);
                const char *path = pt_test_tmp("rt.ptn");
                pt_native_write_opts o = opts_level(level, 0);
                CHECK_OK(pt_native_write_table(path, t, &o, &err), &err);
                CHECK_OK(pt_native_read_all(NULL, path, &back, &err), &err);
                char why[256];
                CHECK_MSG(tables_same(t, back, why, sizeof why), "n=%lld level=%d nulls=%d: %s",
                          (long long)sizes[si], level, nulls, why);
                /* Null-type rows read as null; dict keeps its dictionary. */
                CHECK_EQ_I(back->cols[7]->null_count, sizes[si]);
                if (sizes[si] > 0) CHECK(!pt_column_is_valid(back->cols[7], 0));
                CHECK_EQ_I(back->cols[6]->dict->length, NWORDS);
                pt_table_free(t);
                pt_table_free(back);
            }
        }
    }
    CHECK_EQ_I(pt_alloc_bytes_in_use(), base);
}

TEST(roundtrip_hand_checked_values) {
    /* Small table checked cell by cell against literal values. */
    pt_error err;
    pt_column *s, *i;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_UTF8, 4, 16, &s, &err), &err);
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT32, 4, 0, &i, &err), &err);
    CHECK_OK(pt_column_append_str(s, "héllo", -1, &err), &err);
    CHECK_OK(pt_column_append_null(s, &err), &err);
    CHECK_OK(pt_column_append_str(s, "", 0, &err), &err);
    CHECK_OK(pt_column_append_str(s, "z", 1, &err), &err);
    CHECK_OK(pt_column_append_i32(i, -5, &err), &err);
    CHECK_OK(pt_column_append_i32(i, INT32_MAX, &err), &err);
    CHECK_OK(pt_column_append_null(i, &err), &err);
    CHECK_OK(pt_column_append_i32(i, INT32_MIN, &err), &err);
    const char *names[2] = {"name", "n"};
    pt_type types[2] = {PT_TYPE_UTF8, PT_TYPE_INT32};
    pt_schema *sc;
    CHECK_OK(pt_schema_new(2, names, types, &sc, &err), &err);
    pt_column *cols[2] = {s, i};
    pt_table *t, *back;
    CHECK_OK(pt_table_new(sc, cols, &t, &err), &err);
    const char *path = pt_test_tmp("hand.ptn");
    CHECK_OK(pt_native_write_table(path, t, NULL, &err), &err);
    CHECK_OK(pt_native_read_all(NULL, path, &back, &err), &err);
    CHECK_EQ_I(back->nrows, 4);
    CHECK_STR(back->schema->fields[0].name, "name");
    CHECK_STR(back->schema->fields[1].name, "n");
    int64_t len;
    const char *p = pt_column_str(back->cols[0], 0, &len);
    CHECK(len == 6 && memcmp(p, "héllo", 6) == 0);
    CHECK(!pt_column_is_valid(back->cols[0], 1));
    pt_column_str(back->cols[0], 2, &len);
    CHECK_EQ_I(len, 0);
    p = pt_column_str(back->cols[0], 3, &len);
    CHECK(len == 1 && p[0] == 'z');
    CHECK_EQ_I(pt_column_i32(back->cols[1])[0], -5);
    CHECK_EQ_I(pt_column_i32(back->cols[1])[1], INT32_MAX);
    CHECK(!pt_column_is_valid(back->cols[1], 2));
    CHECK_EQ_I(pt_column_i32(back->cols[1])[3], INT32_MIN);
    CHECK_EQ_I(back->cols[0]->null_count, 1);
    CHECK_EQ_I(back->cols[1]->null_count, 1);
    pt_table_free(t);
    pt_table_free(back);
}

TEST(roundtrip_slices_odd_offsets) {
    int64_t base = pt_alloc_bytes_in_use();
    pt_error err;
    pt_table *t;
    CHECK_OK(make_table(300, 4, 99, &t, &err), &err);
    const int64_t offs[] = {1, 3, 5, 7, 8, 13, 64, 129};
    const int64_t lens[] = {0, 1, 9, 17, 100};
    for (size_t a = 0; a < sizeof offs / sizeof offs[0]; a++) {
        for (size_t b = 0; b < sizeof lens / sizeof lens[0]; b++) {
            pt_table *sl, *back;
            CHECK_OK(pt_table_slice(t, offs[a], lens[b], &sl, &err), &err);
            /* A slice of a slice makes dictionary and offsets start deeper. */
            pt_table *sl2;
            CHECK_OK(pt_table_slice(sl, lens[b] > 2 ? 1 : 0, lens[b] > 2 ? lens[b] - 2 : lens[b],
                                    &sl2, &err),
                     &err);
            const char *path = pt_test_tmp("slice.ptn");
            pt_native_write_opts o = opts_level((int)(a & 1), 0);
            CHECK_OK(pt_native_write_table(path, sl2, &o, &err), &err);
            CHECK_OK(pt_native_read_all(NULL, path, &back, &err), &err);
            char why[256];
            CHECK_MSG(tables_same(sl2, back, why, sizeof why), "offset %lld len %lld: %s",
                      (long long)offs[a], (long long)lens[b], why);
            /* The written columns are normalised: offset 0, offsets from 0. */
            CHECK_EQ_I(back->cols[5]->offset, 0);
            CHECK_EQ_I(((const int64_t *)back->cols[5]->values->data)[0], 0);
            pt_table_free(sl);
            pt_table_free(sl2);
            pt_table_free(back);
        }
    }
    /* A sliced dictionary (dict column whose dictionary has an offset). */
    pt_column *words, *dsl, *dc;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_UTF8, 8, 64, &words, &err), &err);
    for (int k = 0; k < NWORDS; k++)
        CHECK_OK(pt_column_append_str(words, dict_words[k], -1, &err), &err);
    CHECK_OK(pt_column_slice(words, 2, 3, &dsl, &err), &err); /* green, blue-ish, x */
    CHECK_OK(pt_column_new_dict(NULL, dsl, 4, &dc, &err), &err);
    CHECK_OK(pt_column_append_index(dc, 2, &err), &err);
    CHECK_OK(pt_column_append_index(dc, 0, &err), &err);
    CHECK_OK(pt_column_append_null(dc, &err), &err);
    const char *nm[1] = {"w"};
    pt_type ty[1] = {PT_TYPE_DICT};
    pt_schema *sc;
    CHECK_OK(pt_schema_new(1, nm, ty, &sc, &err), &err);
    pt_table *dt, *dback;
    CHECK_OK(pt_table_new(sc, &dc, &dt, &err), &err);
    const char *path = pt_test_tmp("dslice.ptn");
    CHECK_OK(pt_native_write_table(path, dt, NULL, &err), &err);
    CHECK_OK(pt_native_read_all(NULL, path, &dback, &err), &err);
    int64_t len;
    const char *p = pt_column_str(dback->cols[0], 0, &len);
    CHECK(len == 1 && p[0] == 'x');
    p = pt_column_str(dback->cols[0], 1, &len);
    CHECK(len == 5 && memcmp(p, "green", 5) == 0);
    CHECK(!pt_column_is_valid(dback->cols[0], 2));
    CHECK_EQ_I(dback->cols[0]->dict->length, 3);
    pt_column_release(words);
    pt_column_release(dsl);
    pt_table_free(dt);
    pt_table_free(dback);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), base);
}

TEST(many_batches_and_empty_batches) {
    int64_t base = pt_alloc_bytes_in_use();
    pt_error err;
    pt_table *t;
    CHECK_OK(make_table(2000, 5, 3, &t, &err), &err);
    const char *path = pt_test_tmp("many.ptn");
    pt_native_write_opts o = opts_level(1, 0);
    pt_native_writer *w;
    CHECK_OK(pt_native_open_write(path, t->schema, &o, &w, &err), &err);
    /* Batches of 0, 1, 2, ... rows with a 0-row batch every fifth. */
    int64_t starts[80], lens[80];
    int nb = 0;
    int64_t pos = 0;
    for (int k = 0; pos < t->nrows && nb < 80; k++) {
        int64_t len = (k % 5 == 0) ? 0 : (k * 7) % 97 + 1;
        if (len > t->nrows - pos) len = t->nrows - pos;
        pt_table *sl;
        CHECK_OK(pt_table_slice(t, pos, len, &sl, &err), &err);
        CHECK_OK(pt_native_write_batch(w, sl, &err), &err);
        pt_table_free(sl);
        starts[nb] = pos;
        lens[nb] = len;
        nb++;
        pos += len;
    }
    int64_t rows_written = pos;
    CHECK_OK(pt_native_close_write(w, &err), &err);

    pt_native_reader *r;
    CHECK_OK(pt_native_open_read(NULL, path, &r, &err), &err);
    CHECK_EQ_I(pt_native_num_batches(r), nb);
    CHECK_EQ_I(pt_native_num_rows(r), rows_written);
    CHECK_EQ_I(pt_native_schema(r)->nfields, 8);
    CHECK_EQ_I(pt_native_batch_rows(r, nb), -1);
    /* Read batches in reverse order: each is independent. */
    for (int b = nb - 1; b >= 0; b--) {
        CHECK_EQ_I(pt_native_batch_rows(r, b), lens[b]);
        pt_table *bt, *sl;
        CHECK_OK(pt_native_read_batch(r, b, NULL, 0, &bt, &err), &err);
        CHECK_OK(pt_table_slice(t, starts[b], lens[b], &sl, &err), &err);
        char why[256];
        CHECK_MSG(tables_same(sl, bt, why, sizeof why), "batch %d: %s", b, why);
        pt_table_free(bt);
        pt_table_free(sl);
    }
    pt_table *bt;
    CHECK(pt_native_read_batch(r, nb, NULL, 0, &bt, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "out of range");
    pt_native_close_read(r);

    pt_table *all, *prefix;
    CHECK_OK(pt_native_read_all(NULL, path, &all, &err), &err);
    CHECK_OK(pt_table_slice(t, 0, rows_written, &prefix, &err), &err);
    char why[256];
    CHECK_MSG(pt_table_equal(prefix, all, why, sizeof why), "%s", why);
    pt_table_free(all);
    pt_table_free(prefix);

    /* write_table with batch_rows splits the table. */
    o.batch_rows = 333;
    CHECK_OK(pt_native_write_table(path, t, &o, &err), &err);
    CHECK_OK(pt_native_open_read(NULL, path, &r, &err), &err);
    CHECK_EQ_I(pt_native_num_batches(r), 7); /* ceil(2000 / 333) */
    CHECK_EQ_I(pt_native_batch_rows(r, 6), 2000 - 6 * 333);
    pt_native_close_read(r);
    CHECK_OK(pt_native_read_all(NULL, path, &all, &err), &err);
    CHECK_MSG(tables_same(t, all, why, sizeof why), "%s", why);
    pt_table_free(all);

    /* A file with no batches reads as an empty table with the schema. */
    CHECK_OK(pt_native_open_write(path, t->schema, &o, &w, &err), &err);
    CHECK_OK(pt_native_close_write(w, &err), &err);
    CHECK_OK(pt_native_read_all(NULL, path, &all, &err), &err);
    CHECK_EQ_I(all->nrows, 0);
    CHECK_EQ_I(all->schema->nfields, 8);
    CHECK_EQ_I(all->cols[6]->type, PT_TYPE_DICT);
    pt_table_free(all);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), base);
}

typedef struct par_read {
    pt_native_reader *r;
    const pt_table *src;
    int64_t batch_rows;
    int64_t nbatches;
} par_read;

static pt_status par_read_one(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    par_read *pr = arg;
    int64_t b = i % pr->nbatches;
    pt_table *t, *sl;
    PT_RETURN_NOT_OK(pt_native_read_batch(pr->r, b, NULL, 0, &t, err));
    int64_t start = b * pr->batch_rows;
    int64_t len = pr->src->nrows - start < pr->batch_rows ? pr->src->nrows - start : pr->batch_rows;
    pt_status s = pt_table_slice(pr->src, start, len, &sl, err);
    char why[256];
    if (s == PT_OK && !tables_same(sl, t, why, sizeof why))
        s = pt_error_set(err, PT_EINTERNAL, "batch %lld differs: %s", (long long)b, why);
    pt_table_free(sl);
    pt_table_free(t);
    return s;
}

TEST(concurrent_batch_reads_share_a_reader) {
    pt_error err;
    pt_table *t;
    CHECK_OK(make_table(3000, 4, 31, &t, &err), &err);
    const char *path = pt_test_tmp("par.ptn");
    pt_native_write_opts o = opts_level(1, 200);
    CHECK_OK(pt_native_write_table(path, t, &o, &err), &err);
    pt_pool *pool;
    CHECK_OK(pt_pool_new(4, &pool, &err), &err);
    par_read pr = {NULL, t, 200, 15};
    CHECK_OK(pt_native_open_read(NULL, path, &pr.r, &err), &err);
    CHECK_EQ_I(pt_native_num_batches(pr.r), 15);
    CHECK_OK(pt_parallel_for(pool, 120, par_read_one, &pr, NULL, &err), &err);
    pt_native_close_read(pr.r);
    pt_pool_free(pool);
    pt_table_free(t);
}

TEST(projection_reads_only_asked_columns) {
    int64_t base = pt_alloc_bytes_in_use();
    pt_error err;
    pt_table *t;
    CHECK_OK(make_table(500, 3, 11, &t, &err), &err);
    const char *path = pt_test_tmp("proj.ptn");
    pt_native_write_opts o = opts_level(0, 0);
    CHECK_OK(pt_native_write_table(path, t, &o, &err), &err);

    pt_native_reader *r;
    CHECK_OK(pt_native_open_read(NULL, path, &r, &err), &err);
    int cols[3] = {6, 0, 3};
    pt_table *p;
    int64_t before = pt_native_reader_bytes(r);
    CHECK_OK(pt_native_read_batch(r, 0, cols, 3, &p, &err), &err);
    int64_t proj_bytes = pt_native_reader_bytes(r) - before;
    const char *want[3] = {"c", "b", "f"};
    pt_table *sel;
    CHECK_OK(pt_table_select(t, want, 3, &sel, &err), &err);
    char why[256];
    CHECK_MSG(tables_same(sel, p, why, sizeof why), "%s", why);
    CHECK_STR(p->schema->fields[0].name, "c");
    pt_table_free(p);
    pt_table_free(sel);
    /* An empty projection keeps the row count. */
    CHECK_OK(pt_native_read_batch(r, 0, cols, 0, &p, &err), &err);
    CHECK_EQ_I(p->schema->nfields, 0);
    CHECK_EQ_I(p->nrows, 500);
    pt_table_free(p);
    int bad[1] = {8};
    CHECK(pt_native_read_batch(r, 0, bad, 1, &p, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "columns[0] = 8 out of range");
    before = pt_native_reader_bytes(r);
    CHECK_OK(pt_native_read_batch(r, 0, NULL, 0, &p, &err), &err);
    int64_t all_bytes = pt_native_reader_bytes(r) - before;
    CHECK(proj_bytes < all_bytes);
    pt_table_free(p);
    pt_native_close_read(r);

    /* Corrupt the middle of column 'l' (index 2): a projection without it
     * still succeeds, with it the checksum error names the column. */
    int64_t len;
    uint8_t *f = slurp(path, &len);
    CHECK(f);
    file_map m;
    map_file(f, len, &m);
    CHECK_EQ_I(m.nbatches, 1);
    CHECK_EQ_I(m.chunks[2].col, 2);
    f[m.chunks[2].off + m.chunks[2].len / 2] ^= 0x10;
    CHECK_OK(pt_native_open_buffer(NULL, f, len, "proj.ptn", &r, &err), &err);
    CHECK_OK(pt_native_read_batch(r, 0, cols, 3, &p, &err), &err);
    pt_table_free(p);
    CHECK(pt_native_read_batch(r, 0, NULL, 0, &p, &err) == PT_ECORRUPT);
    CHECK_CONTAINS(err.msg, "proj.ptn: batch 0, column 'l': checksum mismatch (stored 0x");
    pt_native_close_read(r);
    free(f);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), base);
}

TEST(compressed_equals_uncompressed) {
    pt_error err;
    pt_table *t;
    CHECK_OK(make_table(20000, 7, 5, &t, &err), &err);
    const char *p0 = pt_test_tmp("raw.ptn");
    const char *p1 = pt_test_tmp("zstd.ptn");
    pt_native_write_opts o0 = opts_level(0, 4096), o1 = opts_level(1, 4096);
    CHECK_OK(pt_native_write_table(p0, t, &o0, &err), &err);
    CHECK_OK(pt_native_write_table(p1, t, &o1, &err), &err);
    pt_table *a, *b;
    CHECK_OK(pt_native_read_all(NULL, p0, &a, &err), &err);
    CHECK_OK(pt_native_read_all(NULL, p1, &b, &err), &err);
    char why[256];
    CHECK_MSG(tables_same(a, b, why, sizeof why), "%s", why);
    CHECK_MSG(tables_same(t, b, why, sizeof why), "%s", why);
    struct stat s0, s1;
    CHECK(stat(p0, &s0) == 0 && stat(p1, &s1) == 0);
    if (have_zstd())
        CHECK_MSG(s1.st_size < s0.st_size, "%lld vs %lld", (long long)s1.st_size,
                  (long long)s0.st_size);
    else
        CHECK_EQ_I(s1.st_size, s0.st_size);
    pt_table_free(a);
    pt_table_free(b);
    pt_table_free(t);
}

TEST(in_memory_reader_equals_file_reader) {
    pt_error err;
    pt_table *t;
    CHECK_OK(make_table(777, 2, 21, &t, &err), &err);
    const char *path = pt_test_tmp("mem.ptn");
    CHECK_OK(pt_native_write_table(path, t, NULL, &err), &err);
    int64_t len;
    uint8_t *f = slurp(path, &len);
    CHECK(f);
    pt_native_reader *r;
    CHECK_OK(pt_native_open_buffer(NULL, f, len, NULL, &r, &err), &err);
    pt_table *back;
    CHECK_OK(pt_native_read_batch(r, 0, NULL, 0, &back, &err), &err);
    char why[256];
    CHECK_MSG(tables_same(t, back, why, sizeof why), "%s", why);
    pt_table_free(back);
    pt_native_close_read(r);
    free(f);
    pt_table_free(t);
}

TEST(golden_file_from_the_seed_corpus) {
    /* A file written by an earlier build (tests/fuzz/corpus_native): the
     * format must stay readable. Values are those the generator wrote: row r
     * has b = r & 1, i = 7r - 3, l = 100000007r, d = 1.5r, s = the first
     * r % 6 bytes of "hello world", c = ["ab", "", "xyz"][r % 3], z null, and
     * every column null where r % 3 == 1. */
    const char *data = getenv("PARTITA_TEST_DATA");
    if (!data) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/../fuzz/corpus_native/all_types_zstd.ptn", data);
    pt_error err;
    pt_table *t;
    if (!have_zstd()) {
        CHECK(pt_native_read_all(NULL, path, &t, &err) == PT_EUNSUPPORTED);
        CHECK_CONTAINS(err.msg, "zstd-compressed but this build has no zstd");
        return;
    }
    CHECK_OK(pt_native_read_all(NULL, path, &t, &err), &err);
    CHECK_EQ_I(t->nrows, 200);
    CHECK_EQ_I(t->schema->nfields, 8);
    for (int64_t r = 0; r < 200; r++) {
        int valid = r % 3 != 1;
        for (int j = 0; j < 7; j++)
            CHECK_EQ_I(pt_column_is_valid(t->cols[j], r), valid);
        CHECK(!pt_column_is_valid(t->cols[7], r));
        if (!valid) continue;
        CHECK_EQ_I(pt_column_bool(t->cols[0], r), r & 1);
        CHECK_EQ_I(pt_column_i32(t->cols[1])[r], 7 * r - 3);
        CHECK_EQ_I(pt_column_i64(t->cols[2])[r], 100000007 * r);
        CHECK(pt_column_f32(t->cols[3])[r] == (float)r / 3);
        CHECK(pt_column_f64(t->cols[4])[r] == 1.5 * (double)r);
        int64_t len;
        const char *p = pt_column_str(t->cols[5], r, &len);
        CHECK(len == r % 6 && memcmp(p, "hello world", (size_t)len) == 0);
        static const char *const w[3] = {"ab", "", "xyz"};
        p = pt_column_str(t->cols[6], r, &len);
        CHECK(len == (int64_t)strlen(w[r % 3]) && memcmp(p, w[r % 3], (size_t)len) == 0);
    }
    CHECK_EQ_I(t->cols[1]->null_count, 67); /* r = 1, 4, ..., 199 */
    pt_table_free(t);
}

/* ------------------------------------------------------------------------ */
/* Corruption                                                               */
/* ------------------------------------------------------------------------ */

/* A small file with 3 batches, compressed, with nulls and all types. */
static pt_status corrupt_fixture(int level, uint8_t **out, int64_t *len, pt_error *err) {
    pt_table *t;
    pt_status s = make_table(150, 4, 8, &t, err);
    if (s != PT_OK) return s;
    const char *path = pt_test_tmp("fixture.ptn");
    pt_native_write_opts o = opts_level(level, 60);
    s = pt_native_write_table(path, t, &o, err);
    pt_table_free(t);
    if (s != PT_OK) return s;
    *out = slurp(path, len);
    return *out ? PT_OK : PT_EIO;
}

TEST(corrupt_every_region_is_detected) {
    int64_t base = pt_alloc_bytes_in_use();
    pt_error err;
    for (int level = 0; level <= 1; level++) {
        uint8_t *f;
        int64_t len;
        CHECK_OK(corrupt_fixture(level, &f, &len, &err), &err);
        CHECK_OK(read_everything(f, len, "fx.ptn", &err), &err);
        file_map m;
        map_file(f, len, &m);
        CHECK_EQ_I(m.nbatches, 3);
        /* 600 positions spread over the whole file (all of them when smaller). */
        int64_t step = len / 600 > 0 ? len / 600 : 1;
        int tested = 0;
        for (int64_t pos = 0; pos < len; pos += step) {
            for (int variant = 0; variant < 2; variant++) {
                uint8_t save = f[pos];
                f[pos] ^= variant ? 0xff : 0x01;
                pt_status s = read_everything(f, len, "fx.ptn", &err);
                f[pos] = save;
                CHECK_MSG(s == PT_ECORRUPT, "flip at %lld: %s: %s", (long long)pos,
                          pt_status_name(s), err.msg);
                CHECK_MSG(strncmp(err.msg, "fx.ptn: ", 8) == 0, "flip at %lld: %s", (long long)pos,
                          err.msg);
                /* Inside a column chunk's data the message names the batch and
                 * column and says checksum. */
                for (int c = 0; c < m.nchunks; c++) {
                    const chunk_loc *cl = &m.chunks[c];
                    if ((uint64_t)pos >= cl->off && (uint64_t)pos < cl->off + cl->len) {
                        char name[2] = {"bilfdscz"[cl->col], 0};
                        char full[128];
                        snprintf(full, sizeof full, "batch %d, column '%s': checksum mismatch",
                                 cl->batch, name);
                        CHECK_CONTAINS(err.msg, full);
                    }
                }
                if (pos < 16 && pos >= 8) CHECK_CONTAINS(err.msg, "header checksum mismatch");
                if ((uint64_t)pos >= m.footer_start && pos < len - 24)
                    CHECK_CONTAINS(err.msg, "footer checksum mismatch");
                tested++;
            }
        }
        CHECK(tested >= 400);
        free(f);
    }
    CHECK_EQ_I(pt_alloc_bytes_in_use(), base);
}

TEST(truncation_at_many_lengths) {
    int64_t base = pt_alloc_bytes_in_use();
    pt_error err;
    uint8_t *f;
    int64_t len;
    CHECK_OK(corrupt_fixture(1, &f, &len, &err), &err);
    int64_t step = len / 300 > 0 ? len / 300 : 1;
    for (int64_t cut = 0; cut < len; cut += (cut < 64 ? 1 : step)) {
        /* An exact-size copy so any read past the end is caught by ASan. */
        uint8_t *g = malloc(cut > 0 ? (size_t)cut : 1);
        memcpy(g, f, (size_t)cut);
        pt_status s = read_everything(g, cut, "cut.ptn", &err);
        free(g);
        CHECK_MSG(s == PT_ECORRUPT, "cut at %lld: %s", (long long)cut, pt_status_name(s));
        CHECK_CONTAINS(err.msg, "cut.ptn: truncated");
    }
    /* Truncated on disk too. */
    const char *path = pt_test_tmp("cut.ptn");
    CHECK(spit(path, f, len - 5) == 0);
    pt_native_reader *r;
    CHECK(pt_native_open_read(NULL, path, &r, &err) == PT_ECORRUPT);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "truncated");
    free(f);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), base);
}

TEST(bad_magic_version_and_io_errors) {
    pt_error err;
    uint8_t *f;
    int64_t len;
    CHECK_OK(corrupt_fixture(0, &f, &len, &err), &err);
    pt_native_reader *r;
    /* Wrong magic. */
    const char *csv = "a,b\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n13,14\n15,16\n17,18\n";
    CHECK(pt_native_open_buffer(NULL, csv, (int64_t)strlen(csv), "data.csv", &r, &err) ==
          PT_ECORRUPT);
    CHECK_STR(err.msg, "data.csv: not a Partita native file (bad magic at offset 0)");
    /* A newer version, with a valid header checksum. */
    uint8_t save[16];
    memcpy(save, f, 16);
    f[8] = 2;
    wr32(f + 12, ref_crc32c(f, 12));
    CHECK(pt_native_open_buffer(NULL, f, len, "v2.ptn", &r, &err) == PT_EUNSUPPORTED);
    CHECK_CONTAINS(err.msg, "v2.ptn: format version 2 is newer than this library supports (1)");
    memcpy(f, save, 16);
    /* Header checksum. */
    f[9] ^= 1;
    CHECK(pt_native_open_buffer(NULL, f, len, "h.ptn", &r, &err) == PT_ECORRUPT);
    CHECK_CONTAINS(err.msg, "h.ptn: header checksum mismatch (stored 0x");
    memcpy(f, save, 16);
    /* Missing file, directory, unwritable place. */
    CHECK(pt_native_open_read(NULL, "/nonexistent/dir/x.ptn", &r, &err) == PT_ENOENT);
    CHECK_STR(err.msg, "/nonexistent/dir/x.ptn: cannot open: No such file or directory");
    const char *dir = pt_test_tmp("");
    CHECK(pt_native_open_read(NULL, dir, &r, &err) == PT_EIO);
    CHECK_CONTAINS(err.msg, "not a regular file");
    pt_table *t;
    CHECK_OK(make_table(3, 0, 1, &t, &err), &err);
    CHECK(pt_native_write_table("/nonexistent/dir/y.ptn", t, NULL, &err) == PT_ENOENT);
    CHECK_CONTAINS(err.msg, "/nonexistent/dir/y.ptn: cannot create '/nonexistent/dir/y.ptn.tmp-");
    CHECK_CONTAINS(err.msg, "No such file or directory");
    pt_table_free(t);
    free(f);
}

TEST(semantic_validation_behind_valid_checksums) {
    int64_t base = pt_alloc_bytes_in_use();
    pt_error err;
    uint8_t *f;
    int64_t len;
    /* Uncompressed, so the buffers can be edited in place. */
    CHECK_OK(corrupt_fixture(0, &f, &len, &err), &err);
    file_map m;
    map_file(f, len, &m);
    uint8_t *g = malloc((size_t)len);
    /* Chunk layout: 32-byte header, nbufs * 24 descriptors, then buffers. */
#define DATA_OF(ci, nb) (m.chunks[ci].off + 32 + 24 * (nb))
    struct {
        int col, nbufs;
        const char *expect;
    } cases[] = {
        {5, 3, "column 's': utf8 offsets decrease at row"},
        {6, 4, "column 'c': dictionary index"},
        {1, 2, "column 'i': null count"},
        {0, 2, "column 'b': chunk has"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memcpy(g, f, (size_t)len);
        int ci = cases[k].col; /* batch 0 */
        uint64_t data = DATA_OF(ci, cases[k].nbufs);
        uint64_t validity_len = rd64(g + m.chunks[ci].off + 32 + 8);
        switch (k) {
        case 0: {
            /* Second utf8 offset made huge: offsets then decrease. */
            uint8_t *o = g + data + validity_len + 8;
            for (int b = 0; b < 8; b++)
                o[b] = b == 6 ? 0x7f : 0;
            break;
        }
        case 1: {
            /* Row 1 (valid: nulls are rows 0, 4, 8, ...) gets index 77. */
            wr32(g + data + validity_len + 4, 77);
            break;
        }
        case 2: {
            /* Stored null count off by one. */
            uint8_t *nc = g + m.chunks[ci].off + 16;
            nc[0] ^= 1;
            break;
        }
        case 3: {
            /* Row count in the chunk header disagrees with the batch. */
            g[m.chunks[ci].off + 8] ^= 2;
            break;
        }
        }
        fix_crcs(g, &m, ci);
        pt_status s = read_everything(g, len, "sem.ptn", &err);
        CHECK_MSG(s == PT_ECORRUPT, "case %zu: %s %s", k, pt_status_name(s), err.msg);
        CHECK_CONTAINS(err.msg, "sem.ptn: batch 0, ");
        CHECK_CONTAINS(err.msg, cases[k].expect);
    }
    /* Footer claiming more rows than the batch header says (footer CRC fixed). */
    memcpy(g, f, (size_t)len);
    uint64_t flen = rd64(g + len - 24);
    uint8_t *rows0 = g + len - 24 - 3 * 24 + 16; /* rows of batch 0 */
    rows0[0] ^= 1;
    wr32(g + len - 16, ref_crc32c(g + m.footer_start, (size_t)flen));
    CHECK(read_everything(g, len, "rows.ptn", &err) == PT_ECORRUPT);
    CHECK_CONTAINS(err.msg, "rows.ptn: batch 0: 60 rows, the footer says 61");
    free(g);
    free(f);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), base);
}

TEST(random_mutations_never_crash) {
    int64_t base = pt_alloc_bytes_in_use();
    pt_error err;
    uint8_t *f;
    int64_t len;
    CHECK_OK(corrupt_fixture(1, &f, &len, &err), &err);
    pt_mem *mem = pt_mem_new(64 << 20);
    pt_rng rng;
    pt_rng_seed(&rng, 2024);
    uint8_t *g = malloc((size_t)len);
    int semantic = 0;
    for (int it = 0; it < 2000; it++) {
        memcpy(g, f, (size_t)len);
        int nflips = 1 + (int)pt_rng_below(&rng, 8);
        for (int k = 0; k < nflips; k++)
            g[pt_rng_below(&rng, (uint64_t)len)] ^= (uint8_t)(1 + pt_rng_below(&rng, 255));
        int64_t glen = (it % 7 == 0) ? (int64_t)pt_rng_below(&rng, (uint64_t)len) : len;
        /* Half the time with valid checksums, to reach the structural and
         * semantic checks; then any outcome but a crash or a leak is fine. */
        int fixed = it & 1;
        int unchanged = glen == len && memcmp(g, f, (size_t)len) == 0; /* flips cancelled */
        if (fixed) fix_all_crcs(g, (uint64_t)glen);
        pt_native_reader *r;
        pt_status s = pt_native_open_buffer(mem, g, glen, "m.ptn", &r, &err);
        if (s == PT_OK) {
            for (int64_t b = 0; b < pt_native_num_batches(r) && s == PT_OK; b++) {
                pt_table *t;
                s = pt_native_read_batch(r, b, NULL, 0, &t, &err);
                if (s == PT_OK) pt_table_free(t);
            }
            pt_native_close_read(r);
        }
        if (!fixed && !unchanged)
            CHECK_MSG(s == PT_ECORRUPT, "iteration %d: %s", it, pt_status_name(s));
        else
            CHECK_MSG(s == PT_OK || s == PT_ECORRUPT || s == PT_EUNSUPPORTED || s == PT_EBUDGET,
                      "iteration %d: %s %s", it, pt_status_name(s), err.msg);
        if (s != PT_OK) CHECK_CONTAINS(err.msg, "m.ptn: ");
        if (s == PT_ECORRUPT && fixed) semantic++;
        CHECK_EQ_I(pt_mem_used(mem), 0);
    }
    CHECK(semantic > 100); /* the fixed-up half does reach the later checks */
    free(g);
    free(f);
    pt_mem_free(mem);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), base);
}

/* ------------------------------------------------------------------------ */
/* Atomic writes                                                            */
/* ------------------------------------------------------------------------ */

TEST(atomic_write_and_abort) {
    int64_t base = pt_alloc_bytes_in_use();
    pt_error err;
    pt_table *t;
    CHECK_OK(make_table(100, 3, 4, &t, &err), &err);
    const char *dir = pt_test_tmp("atomic");
    CHECK(mkdir(dir, 0700) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/final.ptn", dir);

    pt_native_writer *w;
    CHECK_OK(pt_native_open_write(path, t->schema, NULL, &w, &err), &err);
    CHECK_OK(pt_native_write_batch(w, t, &err), &err);
    CHECK(!file_exists(path));
    CHECK_EQ_I(count_entries(dir, "final.ptn.tmp-"), 1);
    CHECK(pt_native_writer_bytes(w) > 16);
    CHECK_OK(pt_native_close_write(w, &err), &err);
    CHECK(file_exists(path));
    CHECK_EQ_I(count_entries(dir, "final.ptn.tmp-"), 0);

    /* An aborted rewrite leaves the old file alone and no temporary. */
    struct stat before, after;
    CHECK(stat(path, &before) == 0);
    CHECK_OK(pt_native_open_write(path, t->schema, NULL, &w, &err), &err);
    CHECK_OK(pt_native_write_batch(w, t, &err), &err);
    CHECK_OK(pt_native_write_batch(w, t, &err), &err);
    pt_native_abort_write(w);
    CHECK(stat(path, &after) == 0);
    CHECK_EQ_I(after.st_size, before.st_size);
    CHECK_EQ_I(count_entries(dir, "final.ptn.tmp-"), 0);
    /* An aborted first write leaves nothing at all. */
    char other[700];
    snprintf(other, sizeof other, "%s/never.ptn", dir);
    CHECK_OK(pt_native_open_write(other, t->schema, NULL, &w, &err), &err);
    pt_native_abort_write(w);
    CHECK(!file_exists(other));
    CHECK_EQ_I(count_entries(dir, "never"), 0);

    /* A batch that does not match the schema is refused and leaves the
     * writer usable: the file ends up with the good batches only. */
    CHECK_OK(pt_native_open_write(path, t->schema, NULL, &w, &err), &err);
    CHECK_OK(pt_native_write_batch(w, t, &err), &err);
    const char *two[2] = {"b", "i"};
    pt_table *narrow;
    CHECK_OK(pt_table_select(t, two, 2, &narrow, &err), &err);
    CHECK(pt_native_write_batch(w, narrow, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "batch has 2 columns but the file's schema has 8");
    pt_table_free(narrow);
    CHECK_OK(pt_native_write_batch(w, t, &err), &err);
    CHECK_OK(pt_native_close_write(w, &err), &err);
    pt_table *back;
    CHECK_OK(pt_native_read_all(NULL, path, &back, &err), &err);
    CHECK_EQ_I(back->nrows, 200);
    pt_table_free(back);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), base);
}

/* ------------------------------------------------------------------------ */
/* Spill directories                                                        */
/* ------------------------------------------------------------------------ */

TEST(spill_dir_lifecycle) {
    int64_t base = pt_alloc_bytes_in_use();
    pt_error err;
    const char *root = pt_test_tmp("spillroot");
    pt__spill_dir *sd, *sd2;
    CHECK_OK(pt__spill_dir_new(root, &sd, &err), &err); /* creates the base */
    CHECK_OK(pt__spill_dir_new(root, &sd2, &err), &err);
    const char *dpath = pt__spill_dir_path(sd);
    char saved[600];
    snprintf(saved, sizeof saved, "%s", dpath);
    CHECK(strcmp(dpath, pt__spill_dir_path(sd2)) != 0);
    char expect_prefix[64];
    snprintf(expect_prefix, sizeof expect_prefix, "/partita-spill-%ld-", (long)getpid());
    CHECK_CONTAINS(dpath, expect_prefix);
    struct stat st;
    CHECK(stat(dpath, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK_EQ_I(st.st_mode & 0777, 0700);

    pt_table *t;
    CHECK_OK(make_table(1000, 3, 17, &t, &err), &err);
    char p1[700], p2[700];
    CHECK_OK(pt__spill_write(sd, "part", t, NULL, p1, sizeof p1, &err), &err);
    pt_native_write_opts o = opts_level(0, 100);
    CHECK_OK(pt__spill_write(sd, "part", t, &o, p2, sizeof p2, &err), &err);
    CHECK(strcmp(p1, p2) != 0);
    CHECK(strncmp(p1, dpath, strlen(dpath)) == 0);
    CHECK_CONTAINS(p1, "/part-");
    struct stat s1, s2;
    CHECK(stat(p1, &s1) == 0 && stat(p2, &s2) == 0);
    pt__spill_stats stats;
    pt__spill_stats_get(sd, &stats);
    CHECK_EQ_I(stats.files, 2);
    CHECK_EQ_I(stats.bytes_written, s1.st_size + s2.st_size);

    pt_table *back;
    CHECK_OK(pt__spill_read(sd, NULL, p2, 1, &back, &err), &err);
    char why[256];
    CHECK_MSG(tables_same(t, back, why, sizeof why), "%s", why);
    pt_table_free(back);
    CHECK(!file_exists(p2));
    pt__spill_stats_get(sd, &stats);
    CHECK_EQ_I(stats.bytes_read, s2.st_size);

    char small[8];
    CHECK(pt__spill_file_path(sd, "x", small, sizeof small, &err) == PT_ERANGE);
    CHECK(pt__spill_file_path(sd, "a/b", p2, sizeof p2, &err) == PT_EINVAL);

    /* Leftovers: a stray file, and a writer that never finished. */
    char stray[700];
    snprintf(stray, sizeof stray, "%s/stray.bin", dpath);
    CHECK(spit(stray, "x", 1) == 0);
    char p3[700];
    CHECK_OK(pt__spill_file_path(sd, "open", p3, sizeof p3, &err), &err);
    pt_native_writer *w;
    CHECK_OK(pt_native_open_write(p3, t->schema, NULL, &w, &err), &err);
    CHECK_OK(pt_native_write_batch(w, t, &err), &err);
    pt__spill_dir_free(sd);
    CHECK(!file_exists(saved));
    CHECK(!file_exists(p1));
    pt_native_abort_write(w); /* temp file already gone: still fine */
    CHECK(file_exists(pt__spill_dir_path(sd2)));
    pt__spill_dir_free(sd2);
    pt__spill_dir_free(NULL);
    CHECK_EQ_I(count_entries(root, "partita-spill-"), 0);

    /* From a context: the context's spill dir is the base. */
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = 1;
    co.spill_dir = root;
    pt_ctx *ctx;
    CHECK_OK(pt_ctx_new(&co, &ctx, &err), &err);
    CHECK_OK(pt__spill_dir_new_ctx(ctx, &sd, &err), &err);
    CHECK(strncmp(pt__spill_dir_path(sd), root, strlen(root)) == 0);
    pt__spill_dir_free(sd);
    pt_ctx_free(ctx);
    CHECK(pt__spill_dir_new("/nonexistent/deeper/base", &sd, &err) == PT_ENOENT);
    CHECK_CONTAINS(err.msg, "/nonexistent/deeper/base");
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), base);
}

/* ------------------------------------------------------------------------ */
/* Budget and allocation failures                                           */
/* ------------------------------------------------------------------------ */

TEST(budget_charging) {
    int64_t base = pt_alloc_bytes_in_use();
    pt_error err;
    pt_table *t;
    CHECK_OK(make_table(10000, 3, 1, &t, &err), &err);
    const char *path = pt_test_tmp("budget.ptn");
    CHECK_OK(pt_native_write_table(path, t, NULL, &err), &err);
    /* A small budget fails cleanly. */
    pt_mem *m = pt_mem_new(8192);
    pt_table *back = NULL;
    CHECK(pt_native_read_all(m, path, &back, &err) == PT_EBUDGET);
    CHECK(back == NULL);
    CHECK_CONTAINS(err.msg, "budget");
    CHECK_EQ_I(pt_mem_used(m), 0);
    pt_mem_free(m);
    /* Growing limits: every failure leaves nothing charged; the first
     * success charges exactly the table's buffers. */
    int ok = 0;
    for (int64_t lim = 1024; lim < (64 << 20) && !ok; lim = lim * 3 / 2) {
        m = pt_mem_new(lim);
        pt_native_reader *r;
        pt_status s = pt_native_open_read(m, path, &r, &err);
        if (s == PT_OK) {
            s = pt_native_read_batch(r, 0, NULL, 0, &back, &err);
            pt_native_close_read(r);
        }
        if (s == PT_OK) {
            ok = 1;
            CHECK(pt_mem_used(m) > 0);
            CHECK(pt_mem_used(m) <= lim);
            CHECK_EQ_I(pt_mem_used(m), pt_table_nbytes(back));
            char why[256];
            CHECK_MSG(tables_same(t, back, why, sizeof why), "%s", why);
            pt_table_free(back);
        } else {
            CHECK_MSG(s == PT_EBUDGET, "%s: %s", pt_status_name(s), err.msg);
        }
        CHECK_EQ_I(pt_mem_used(m), 0);
        pt_mem_free(m);
    }
    CHECK(ok);
    /* The writer's scratch is charged too. */
    m = pt_mem_new(1000);
    pt_native_write_opts o = opts_level(1, 0);
    o.mem = m;
    CHECK(pt_native_write_table(pt_test_tmp("b2.ptn"), t, &o, &err) == PT_EBUDGET);
    CHECK(!file_exists(pt_test_tmp("b2.ptn")));
    CHECK_EQ_I(pt_mem_used(m), 0);
    pt_mem_free(m);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), base);
}

TEST(allocation_failures_are_clean) {
    int64_t base = pt_alloc_bytes_in_use();
    pt_error err;
    pt_table *t;
    CHECK_OK(make_table(300, 3, 2, &t, &err), &err);
    char path[600], wp[600], dir[600];
    snprintf(path, sizeof path, "%s", pt_test_tmp("oom.ptn"));
    snprintf(wp, sizeof wp, "%s", pt_test_tmp("oom_w.ptn"));
    snprintf(dir, sizeof dir, "%s", pt_test_tmp(""));
    pt_native_write_opts o = opts_level(1, 100);
    CHECK_OK(pt_native_write_table(path, t, &o, &err), &err);
    int64_t with_table = pt_alloc_bytes_in_use();
    int read_ok = 0, write_ok = 0;
    for (int64_t n = 0; n < 400 && !(read_ok && write_ok); n++) {
        pt_table *back = NULL;
        if (!read_ok) {
            pt_alloc_fail_after(n);
            pt_status s = pt_native_read_all(NULL, path, &back, &err);
            pt_alloc_fail_after(-1);
            if (s == PT_OK) {
                read_ok = 1;
                char why[256];
                CHECK_MSG(tables_same(t, back, why, sizeof why), "%s", why);
                pt_table_free(back);
            } else {
                CHECK_MSG(s == PT_ENOMEM, "n=%lld: %s %s", (long long)n, pt_status_name(s),
                          err.msg);
            }
        }
        if (!write_ok) {
            pt_alloc_fail_after(n);
            pt_status s = pt_native_write_table(wp, t, &o, &err);
            pt_alloc_fail_after(-1);
            if (s == PT_OK)
                write_ok = 1;
            else
                CHECK_MSG(s == PT_ENOMEM, "n=%lld: %s %s", (long long)n, pt_status_name(s),
                          err.msg);
            CHECK_EQ_I(count_entries(dir, "oom_w.ptn.tmp-"), 0);
        }
        CHECK_EQ_I(pt_alloc_bytes_in_use(), with_table);
    }
    CHECK(read_ok && write_ok);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), base);
}
