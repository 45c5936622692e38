/* Parallel CSV parsing against independent references: randomly generated
 * files (quotes, embedded delimiters and newlines, CRLF, nulls, unicode)
 * are read with tiny byte ranges, so that many ranges start inside quoted
 * fields, and compared with a straightforward char-by-char parser written
 * here, with a one-thread read, and with the streaming reader. Random
 * garbage must give the same result (table or message) whatever the
 * ranges. */
#include <stdint.h>

#include "pt_test.h"

/* ---- a growable byte string --------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_putc(sbuf *b, char c) { sb_put(b, &c, 1); }

/* ---- the reference parser ------------------------------------------------ */

typedef struct rfield {
    char *s;
    size_t n;
    int quoted;
} rfield;

typedef struct rtable {
    rfield *f; /* rows * ncols, row-major */
    int64_t rows;
    int ncols;
    size_t cap;
} rtable;

/* RFC 4180 state machine; CRLF and LF line ends. Assumes well-formed input
 * (the generator only writes that). */
static void ref_parse(const char *s, size_t n, char delim, rtable *t) {
    enum { START, PLAIN, QUOTED, AFTER } st = START;
    sbuf cur = {0};
    int quoted = 0, nf = 0;
    rfield row[64];
    memset(t, 0, sizeof *t);
    t->ncols = -1;
#define END_FIELD()                                                            \
    do {                                                                       \
        row[nf].s = malloc(cur.n + 1);                                         \
        memcpy(row[nf].s, cur.p ? cur.p : "", cur.n);                          \
        row[nf].s[cur.n] = 0;                                                  \
        row[nf].n = cur.n;                                                     \
        row[nf].quoted = quoted;                                               \
        nf++;                                                                  \
        cur.n = 0;                                                             \
        quoted = 0;                                                            \
    } while (0)
#define END_ROW()                                                              \
    do {                                                                       \
        if (t->ncols < 0) t->ncols = nf;                                       \
        if ((size_t)(t->rows + 1) * (size_t)nf > t->cap) {                     \
            t->cap = ((size_t)t->rows + 1) * (size_t)nf * 2 + 16;              \
            t->f = realloc(t->f, t->cap * sizeof *t->f);                       \
        }                                                                      \
        memcpy(t->f + t->rows * nf, row, (size_t)nf * sizeof *row);            \
        t->rows++;                                                             \
        nf = 0;                                                                \
    } while (0)
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int crlf = c == '\r' && i + 1 < n && s[i + 1] == '\n';
        switch (st) {
        case START:
        case PLAIN:
            if (st == START && c == '"') {
                st = QUOTED;
                quoted = 1;
            } else if (c == delim) {
                END_FIELD();
                st = START;
            } else if (c == '\n' || crlf) {
                END_FIELD();
                END_ROW();
                if (crlf) i++;
                st = START;
            } else {
                sb_putc(&cur, c);
                st = PLAIN;
            }
            break;
        case QUOTED:
            if (c == '"') {
                if (i + 1 < n && s[i + 1] == '"') {
                    sb_putc(&cur, '"');
                    i++;
                } else
                    st = AFTER;
            } else
                sb_putc(&cur, c);
            break;
        case AFTER:
            if (c == delim) {
                END_FIELD();
                st = START;
            } else if (c == '\n' || crlf) {
                END_FIELD();
                END_ROW();
                if (crlf) i++;
                st = START;
            }
            break;
        }
    }
    if (st != START || nf > 0) {
        END_FIELD();
        END_ROW();
    }
    free(cur.p);
#undef END_FIELD
#undef END_ROW
}

static void ref_free(rtable *t) {
    for (int64_t i = 0; i < t->rows * t->ncols; i++) free(t->f[i].s);
    free(t->f);
}

/* ---- random files --------------------------------------------------------- */

static const char *const pieces[] = {"a",  "bc",   "x y", ",",     "\"",   "\n",     "\r\n", "é",
                                     "✓", "😀", "1",   "-2.5",  ";",    "  ",     "\t",   "NA",
                                     "0", "id0001", "\r", "quote\"d", "true", "3e5"};

static void random_cell(pt_rng *r, sbuf *cell, int *isnull) {
    cell->n = 0;
    if (cell->p) cell->p[0] = 0;
    *isnull = 0;
    uint64_t k = pt_rng_below(r, 10);
    if (k == 0) {
        *isnull = 1;
        return;
    }
    if (k == 1) return; /* empty string */
    int np = 1 + (int)pt_rng_below(r, 4);
    for (int i = 0; i < np; i++) {
        const char *p = pieces[pt_rng_below(r, sizeof pieces / sizeof pieces[0])];
        sb_puts(cell, p);
    }
}

/* Writes rows x ncols of random cells, returning the expected texts
 * (NULL for nulls) in exp[row * ncols + col]. */
static char *random_csv(pt_rng *r, int64_t rows, int ncols, char delim, size_t *len,
                        char ***exp) {
    sbuf out = {0}, cell = {0};
    *exp = calloc((size_t)(rows * ncols + 1), sizeof **exp);
    for (int j = 0; j < ncols; j++) {
        char h[16];
        snprintf(h, sizeof h, "%sc%d", j ? (char[]){delim, 0} : "", j);
        sb_puts(&out, h);
    }
    sb_puts(&out, "\n");
    for (int64_t i = 0; i < rows; i++) {
        int rownull = 1;
        for (int j = 0; j < ncols; j++) {
            int isnull;
            random_cell(r, &cell, &isnull);
            if (j) sb_putc(&out, delim);
            if (isnull) continue;
            rownull = 0;
            (*exp)[i * ncols + j] = strdup(cell.p ? cell.p : "");
            int need = cell.n == 0 || pt_rng_below(r, 5) == 0;
            for (size_t k = 0; k < cell.n && !need; k++)
                need = cell.p[k] == delim || cell.p[k] == '"' || cell.p[k] == '\n' ||
                       cell.p[k] == '\r';
            if (!need) {
                sb_put(&out, cell.p, cell.n);
                continue;
            }
            sb_putc(&out, '"');
            for (size_t k = 0; k < cell.n; k++) {
                if (cell.p[k] == '"') sb_putc(&out, '"');
                sb_putc(&out, cell.p[k]);
            }
            sb_putc(&out, '"');
        }
        int last = i + 1 == rows;
        if (last && pt_rng_below(r, 2) == 0 && !(ncols == 1 && rownull)) break;
        sb_puts(&out, pt_rng_below(r, 3) == 0 ? "\r\n" : "\n");
    }
    free(cell.p);
    *len = out.n;
    return out.p;
}

static pt_ctx *mkctx(int threads) {
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = threads;
    pt_ctx *ctx = NULL;
    pt_error err;
    if (pt_ctx_new(&co, &ctx, &err) != PT_OK) return NULL;
    return ctx;
}

static pt_schema *utf8_schema(int ncols) {
    const char *names[64];
    pt_type types[64];
    char buf[64][16];
    for (int j = 0; j < ncols; j++) {
        snprintf(buf[j], sizeof buf[j], "c%d", j);
        names[j] = buf[j];
        types[j] = PT_TYPE_UTF8;
    }
    pt_schema *s = NULL;
    pt_error err;
    if (pt_schema_new(ncols, names, types, &s, &err) != PT_OK) return NULL;
    return s;
}

TEST(random_files_match_reference) {
    pt_ctx *ctx = mkctx(2);
    CHECK(ctx);
    pt_rng r;
    pt_rng_seed(&r, 2024);
    for (int iter = 0; iter < 60; iter++) {
        int ncols = 1 + (int)pt_rng_below(&r, 5);
        int64_t rows = 1 + (int64_t)pt_rng_below(&r, 400);
        char delim = ",;\t|"[pt_rng_below(&r, 4)];
        size_t len;
        char **exp;
        char *text = random_csv(&r, rows, ncols, delim, &len, &exp);
        rtable ref;
        ref_parse(text, len, delim, &ref);
        CHECK_EQ_I(ref.rows, rows + 1); /* the header too */
        CHECK_EQ_I(ref.ncols, ncols);
        /* the reference agrees with what was generated */
        for (int64_t i = 0; i < rows; i++)
            for (int j = 0; j < ncols; j++) {
                rfield *f = &ref.f[(i + 1) * ncols + j];
                const char *e = exp[i * ncols + j];
                if (!e)
                    CHECK(f->n == 0 && !f->quoted);
                else
                    CHECK(f->n == strlen(e) && memcmp(f->s, e, f->n) == 0);
            }
        pt_schema *sc = utf8_schema(ncols);
        pt_csv_opts o;
        pt_csv_opts_init(&o);
        o.schema = sc;
        o.header = 1;
        o.delimiter = delim;
        o.progress = 0;
        o.chunk_bytes = 64 + (int64_t)pt_rng_below(&r, 4033);
        pt_error err;
        pt_table *t;
        pt_csv_report rep;
        CHECK_OK(pt_csv_read_buffer(ctx, text, (int64_t)len, "r.csv", &o, &t, &rep, &err), &err);
        CHECK_EQ_I(t->nrows, rows);
        for (int64_t i = 0; i < rows; i++)
            for (int j = 0; j < ncols; j++) {
                rfield *f = &ref.f[(i + 1) * ncols + j];
                pt_column *c = t->cols[j];
                if (f->n == 0 && !f->quoted) {
                    CHECK_MSG(!pt_column_is_valid(c, i), "iter %d row %lld col %d: want null",
                              iter, (long long)i, j);
                } else {
                    CHECK_MSG(pt_column_is_valid(c, i), "iter %d row %lld col %d: null", iter,
                              (long long)i, j);
                    int64_t n;
                    const char *s = pt_column_str(c, i, &n);
                    CHECK_MSG((size_t)n == f->n && memcmp(s, f->s, f->n) == 0,
                              "iter %d row %lld col %d (chunk_bytes %lld)", iter, (long long)i, j,
                              (long long)o.chunk_bytes);
                }
            }
        /* inferred types: many small ranges on two threads == one thread */
        o.schema = NULL;
        o.header = -1;
        pt_table *par, *seq;
        CHECK_OK(pt_csv_read_buffer(ctx, text, (int64_t)len, "r.csv", &o, &par, NULL, &err), &err);
        o.threads = 1;
        o.chunk_bytes = 0;
        CHECK_OK(pt_csv_read_buffer(NULL, text, (int64_t)len, "r.csv", &o, &seq, NULL, &err),
                 &err);
        char why[256] = "";
        CHECK_MSG(pt_table_equal(par, seq, why, sizeof why), "iter %d: %s", iter, why);
        pt_table_free(par);
        pt_table_free(seq);
        pt_table_free(t);
        pt_schema_free(sc);
        ref_free(&ref);
        for (int64_t i = 0; i < rows * ncols; i++) free(exp[i]);
        free(exp);
        free(text);
    }
    pt_ctx_free(ctx);
}

TEST(random_typed_columns_parallel) {
    /* numeric columns with late surprises; parallel == sequential */
    pt_ctx *ctx = mkctx(2);
    CHECK(ctx);
    pt_rng r;
    pt_rng_seed(&r, 99);
    for (int iter = 0; iter < 20; iter++) {
        sbuf out = {0};
        sb_puts(&out, "i,f,s,b,q\n");
        int64_t rows = 2000 + (int64_t)pt_rng_below(&r, 3000);
        int64_t surprise = (int64_t)pt_rng_below(&r, (uint64_t)rows);
        for (int64_t i = 0; i < rows; i++) {
            char line[256];
            int kind = (int)pt_rng_below(&r, 20);
            snprintf(line, sizeof line, "%lld,%s%.3f,%s,%s,\"%s\"\n",
                     (long long)((int64_t)pt_rng_next(&r) >> (pt_rng_below(&r, 60) + 1)),
                     kind == 0 ? "" : "", pt_rng_normal(&r) * 100,
                     i == surprise ? "00042" : (kind == 1 ? "" : "17"),
                     kind == 2 ? "" : (i % 2 ? "true" : "False"),
                     kind == 3 ? "a\nb,\"\"c" : "plain");
            sb_puts(&out, line);
        }
        pt_csv_opts o;
        pt_csv_opts_init(&o);
        o.progress = 0;
        o.sample_rows = 50;
        o.chunk_bytes = 64 + (int64_t)pt_rng_below(&r, 2000);
        pt_error err;
        pt_table *par, *seq;
        pt_csv_report rp, rs;
        CHECK_OK(pt_csv_read_buffer(ctx, out.p, (int64_t)out.n, "t.csv", &o, &par, &rp, &err), &err);
        o.threads = 1;
        o.chunk_bytes = 0;
        CHECK_OK(pt_csv_read_buffer(NULL, out.p, (int64_t)out.n, "t.csv", &o, &seq, &rs, &err), &err);
        char why[256] = "";
        CHECK_MSG(pt_table_equal(par, seq, why, sizeof why), "iter %d: %s", iter, why);
        CHECK_EQ_I(rp.promotions, rs.promotions);
        CHECK(rp.chunks > 1);
        /* the surprise keeps its text */
        pt_column *s = pt_table_column(par, "s");
        if (s->type == PT_TYPE_UTF8 || s->type == PT_TYPE_DICT) {
            int64_t n;
            const char *p = pt_column_str(s, surprise, &n);
            CHECK(n == 5 && memcmp(p, "00042", 5) == 0);
        }
        pt_table_free(par);
        pt_table_free(seq);
        free(out.p);
    }
    pt_ctx_free(ctx);
}

TEST(streaming_matches_whole_file) {
    pt_ctx *ctx = mkctx(2);
    CHECK(ctx);
    pt_rng r;
    pt_rng_seed(&r, 5);
    for (int iter = 0; iter < 8; iter++) {
        int ncols = 1 + (int)pt_rng_below(&r, 4);
        size_t len;
        char **exp;
        char *text = random_csv(&r, 1500, ncols, ',', &len, &exp);
        const char *path = pt_test_tmp("s.csv");
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(text, 1, len, f) == len);
        fclose(f);
        pt_schema *sc = utf8_schema(ncols);
        pt_csv_opts o;
        pt_csv_opts_init(&o);
        o.schema = sc;
        o.header = 1;
        o.progress = 0;
        pt_error err;
        pt_table *whole;
        CHECK_OK(pt_csv_read(ctx, path, &o, &whole, NULL, &err), &err);
        o.batch_bytes = 500 + (int64_t)pt_rng_below(&r, 3000);
        o.chunk_bytes = 64 + (int64_t)pt_rng_below(&r, 500);
        pt_csv_reader *rd;
        CHECK_OK(pt_csv_open(ctx, path, &o, &rd, &err), &err);
        pt_table **bs = NULL;
        int nb = 0;
        for (;;) {
            pt_table *b;
            CHECK_OK(pt_csv_next(rd, &b, &err), &err);
            if (!b) break;
            bs = realloc(bs, (size_t)(nb + 1) * sizeof *bs);
            bs[nb++] = b;
        }
        pt_csv_close(rd);
        CHECK(nb > 1);
        pt_table *cat;
        CHECK_OK(pt_table_concat(NULL, bs, nb, &cat, &err), &err);
        char why[256] = "";
        CHECK_MSG(pt_table_equal(whole, cat, why, sizeof why), "iter %d: %s", iter, why);
        for (int i = 0; i < nb; i++) pt_table_free(bs[i]);
        free(bs);
        pt_table_free(cat);
        pt_table_free(whole);
        pt_schema_free(sc);
        for (int64_t i = 0; i < 1500 * ncols; i++) free(exp[i]);
        free(exp);
        free(text);
    }
    pt_ctx_free(ctx);
}

/* Same outcome (table or message) with tiny ranges on two threads as with
 * one range, on random bytes from a CSV-heavy alphabet. */
TEST(garbage_is_deterministic) {
    pt_ctx *ctx = mkctx(2);
    CHECK(ctx);
    pt_rng r;
    pt_rng_seed(&r, 77);
    static const char alpha[] = {',', ',', '"', '\n', '\n', '\r', 'a', '1', '.', ' ', 'x',
                                 (char)0xC3, (char)0xA9, (char)0xFF, '5', 't', 'e'};
    int agree = 0;
    for (int iter = 0; iter < 400; iter++) {
        int n = (int)pt_rng_below(&r, 600);
        char *s = malloc((size_t)n + 1);
        for (int i = 0; i < n; i++) s[i] = alpha[pt_rng_below(&r, sizeof alpha)];
        for (int skip = 0; skip < 2; skip++) {
            pt_csv_opts o;
            pt_csv_opts_init(&o);
            o.progress = 0;
            o.skip_bad_rows = skip;
            o.sample_rows = 1 + (int64_t)pt_rng_below(&r, 5);
            pt_error e1, e2;
            pt_table *t1 = NULL, *t2 = NULL;
            pt_csv_report r1, r2;
            memset(&r1, 0, sizeof r1);
            memset(&r2, 0, sizeof r2);
            pt_status s1 = pt_csv_read_buffer(NULL, s, n, "g.csv", &o, &t1, &r1, &e1);
            o.chunk_bytes = 1 + (int64_t)pt_rng_below(&r, 40);
            pt_status s2 = pt_csv_read_buffer(ctx, s, n, "g.csv", &o, &t2, &r2, &e2);
            CHECK_MSG(s1 == s2, "iter %d: %s vs %s (%s | %s)", iter, pt_status_name(s1),
                      pt_status_name(s2), s1 ? e1.msg : "", s2 ? e2.msg : "");
            if (s1 != PT_OK) {
                CHECK_STR(e1.msg, e2.msg);
            } else {
                char why[256] = "";
                CHECK_MSG(pt_table_equal(t1, t2, why, sizeof why), "iter %d: %s", iter, why);
                CHECK_EQ_I(r1.bad_rows, r2.bad_rows);
                CHECK_STR(r1.first_bad, r2.first_bad);
                agree++;
            }
            pt_table_free(t1);
            pt_table_free(t2);
        }
        free(s);
    }
    CHECK(agree > 50);
    pt_ctx_free(ctx);
}
