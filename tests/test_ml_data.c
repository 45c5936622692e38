/*
 * test_ml_data.c - the ML data layer: the libsvm reader against hand-written
 * arrays and against a plain single-threaded reference parser written here
 * (on random files, with many threads and tiny byte ranges), every parse
 * error message, the writer (write -> read is exact), random_split against
 * the row hash formula computed here, and datasets from tables with one-hot
 * encoding and class-id labels.
 */
#include <stdint.h>

#include "pt_test.h"

/* Test hook of ml_libsvm.c: bytes per parse range (0: automatic). */
void pt__libsvm_set_chunk_bytes(int64_t n);

static pt_ctx *mkctx(int threads) {
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = threads;
    pt_ctx *ctx = NULL;
    if (pt_ctx_new(&co, &ctx, NULL) != PT_OK) return NULL;
    return ctx;
}

static bool same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ------------------------------------------------------------------------ */
/* Small files against hand-written arrays                                  */
/* ------------------------------------------------------------------------ */

static const char *SMALL =
    "# a comment line\n"
    "+1 1:0.5 3:-2 # trailing comment\n"
    "-1 qid:7 2:1e3   10:.25\r\n"
    "\r\n"
    "   \t \n"
    "+1\t4:7\n"
    "-1 1:1.5e-3 2:-0 3:123456789012345678901";

TEST(libsvm_small_sparse) {
    const char *path = pt_test_write("small.svm", SMALL);
    pt_dataset *d = NULL;
    pt_error err;
    CHECK_OK(pt_libsvm_read(NULL, NULL, path, NULL, &d, &err), &err);
    CHECK_EQ_I(d->nrows, 4);
    CHECK_EQ_I(d->nrows_global, 4);
    CHECK_EQ_I(d->nfeatures, 10);
    CHECK_EQ_I(d->nclasses, 2);
    CHECK(d->sparse && d->x == NULL);
    const double y[] = {1, 0, 1, 0};
    const int64_t ptr[] = {0, 2, 4, 5, 8};
    const int32_t idx[] = {0, 2, 1, 9, 3, 0, 1, 2};
    const double val[] = {0.5, -2, 1000, 0.25, 7, 0.0015, -0.0, 123456789012345678901.0};
    for (int i = 0; i < 4; i++) {
        CHECK(d->y[i] == y[i]);
        CHECK_EQ_I(d->row_id[i], i);
    }
    for (int i = 0; i < 5; i++) CHECK_EQ_I(d->indptr[i], ptr[i]);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ_I(d->indices[i], idx[i]);
        CHECK_MSG(same_bits(d->values[i], val[i]), "value %d: %.17g vs %.17g", i, d->values[i],
                  val[i]);
    }
    pt_dataset_free(d);
}

TEST(libsvm_small_dense_and_opts) {
    const char *path = pt_test_write("small.svm", SMALL);
    pt_libsvm_opts o;
    pt_libsvm_opts_init(&o);
    o.dense = true;
    o.nfeatures = 12;
    o.labels = PT_LABELS_RAW;
    pt_dataset *d = NULL;
    pt_error err;
    CHECK_OK(pt_libsvm_read(NULL, NULL, path, &o, &d, &err), &err);
    CHECK(!d->sparse && d->indptr == NULL);
    CHECK_EQ_I(d->nfeatures, 12);
    CHECK_EQ_I(d->nclasses, 0);
    double x[4][12] = {{0}};
    x[0][0] = 0.5, x[0][2] = -2;
    x[1][1] = 1000, x[1][9] = 0.25;
    x[2][3] = 7;
    x[3][0] = 0.0015, x[3][1] = -0.0, x[3][2] = 123456789012345678901.0;
    const double y[] = {1, -1, 1, -1};
    for (int r = 0; r < 4; r++) {
        CHECK(d->y[r] == y[r]);
        for (int j = 0; j < 12; j++) CHECK(same_bits(d->x[r * 12 + j], x[r][j]));
    }
    pt_dataset_free(d);
}

TEST(libsvm_labels) {
    pt_dataset *d = NULL;
    pt_error err;
    /* class ids as they are; nclasses = max + 1 */
    const char *p = pt_test_write("ids.svm", "0 1:1\n5 2:1\n2.0 1:2\n1 3:1\n");
    CHECK_OK(pt_libsvm_read(NULL, NULL, p, NULL, &d, &err), &err);
    CHECK_EQ_I(d->nclasses, 6);
    CHECK(d->y[0] == 0 && d->y[1] == 5 && d->y[2] == 2 && d->y[3] == 1);
    pt_dataset_free(d);
    /* 0/1 kept */
    p = pt_test_write("01.svm", "0 1:1\n1 1:1\n");
    CHECK_OK(pt_libsvm_read(NULL, NULL, p, NULL, &d, &err), &err);
    CHECK_EQ_I(d->nclasses, 2);
    CHECK(d->y[0] == 0 && d->y[1] == 1);
    pt_dataset_free(d);
    /* raw: regression targets kept */
    p = pt_test_write("raw.svm", "2.5 1:1\n-3 1:1\n-1 2:2\n");
    pt_libsvm_opts o;
    pt_libsvm_opts_init(&o);
    o.labels = PT_LABELS_RAW;
    CHECK_OK(pt_libsvm_read(NULL, NULL, p, &o, &d, &err), &err);
    CHECK(d->y[0] == 2.5 && d->y[1] == -3 && d->y[2] == -1);
    CHECK_EQ_I(d->nclasses, 0);
    pt_dataset_free(d);
    /* auto: not class ids */
    CHECK(pt_libsvm_read(NULL, NULL, p, NULL, &d, &err) == PT_EPARSE);
    CHECK(d == NULL);
    char want[600];
    snprintf(want, sizeof want,
             "%s:1:1: label '2.5' is not a class id (use raw labels for regression)", p);
    CHECK_STR(err.msg, want);
    p = pt_test_write("neg.svm", "1 1:1\n-3 1:1\n");
    CHECK(pt_libsvm_read(NULL, NULL, p, NULL, &d, &err) == PT_EPARSE);
    snprintf(want, sizeof want, "%s:2:1: label '-3' is not a class id", p);
    CHECK_CONTAINS(err.msg, want);
    /* -1 mixed with 0 or 2: the first -1 is named */
    p = pt_test_write("mix.svm", "# c\n0 1:1\n 1 1:1\n  -1 1:1\n-1 1:1\n2 1:1\n");
    CHECK(pt_libsvm_read(NULL, NULL, p, NULL, &d, &err) == PT_EPARSE);
    snprintf(want, sizeof want, "%s:4:3: label '-1' is not a class id", p);
    CHECK_CONTAINS(err.msg, want);
}

TEST(libsvm_empty_and_comments_only) {
    const char *texts[] = {"", "# only\n\n   \n#x", "\n"};
    for (int i = 0; i < 3; i++) {
        const char *p = pt_test_write("empty.svm", texts[i]);
        pt_dataset *d = NULL;
        pt_error err;
        CHECK_OK(pt_libsvm_read(NULL, NULL, p, NULL, &d, &err), &err);
        CHECK_EQ_I(d->nrows, 0);
        CHECK_EQ_I(d->nfeatures, 0);
        CHECK_EQ_I(d->indptr[0], 0);
        pt_dataset_free(d);
    }
}

/* ------------------------------------------------------------------------ */
/* Error messages                                                           */
/* ------------------------------------------------------------------------ */

typedef struct bad_case {
    const char *text;
    int64_t nfeatures;
    int line, col;
    const char *what;
} bad_case;

static const bad_case BAD[] = {
    {"1 2:3\n1 4\n", 0, 2, 3, "missing ':' in '4' (expected index:value)"},
    {"1 2:3 junk\n", 0, 1, 7, "missing ':' in 'junk'"},
    {"1 0:1\n", 0, 1, 3, "index 0 in '0:1': indices are one-based"},
    {"1 3:1 2:1\n", 0, 1, 7, "index 2 in '2:1' does not follow index 3: indices must increase"},
    {"1 3:1 3:1\n", 0, 1, 7, "index 3 in '3:1' does not follow index 3"},
    {"1 2:abc\n", 0, 1, 5, "bad number 'abc' in '2:abc'"},
    {"1 2:1.5x 4:1\n", 0, 1, 8, "trailing garbage 'x' after the number in '2:1.5x'"},
    {"1 2:1e5e\n", 0, 1, 8, "trailing garbage 'e' after the number in '2:1e5e'"},
    {"1 2:\n", 0, 1, 5, "missing value in '2:'"},
    {"abc 1:1\n", 0, 1, 1, "bad label 'abc'"},
    {"1.5.2 1:1\n", 0, 1, 1, "bad label '1.5.2'"},
    {"1 x:1\n", 0, 1, 3, "bad index in 'x:1'"},
    {"1 -2:1\n", 0, 1, 3, "bad index in '-2:1'"},
    {"1 99999999999:1\n", 0, 1, 3, "index too large in '99999999999:1'"},
    {"1 qid:z 1:1\n", 0, 1, 3, "bad qid 'qid:z'"},
    {"1 1:1\n1 4:1\n", 3, 2, 3, "index 4 in '4:1' is above nfeatures 3"},
    {"# c\n\n1 1:1\n\t1 1:1 junk # x\n", 0, 4, 8, "missing ':' in 'junk'"},
    {"1 1:1\r\n1 2:x\r\n", 0, 2, 5, "bad number 'x' in '2:x'"},
    {"1 1:1\n1 1:1\n1 1:1\n1 1:1\n1 1:1\n1 1:1 2:1 3:1 3:2", 0, 6, 15, "index 3 in '3:2' does not follow index 3"},
};

static void check_bad(pt_ctx *ctx) {
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        const char *p = pt_test_write("bad.svm", BAD[i].text);
        pt_libsvm_opts o;
        pt_libsvm_opts_init(&o);
        o.nfeatures = BAD[i].nfeatures;
        pt_dataset *d = NULL;
        pt_error err;
        pt_error_clear(&err);
        pt_status s = pt_libsvm_read(ctx, NULL, p, &o, &d, &err);
        CHECK_MSG(s == PT_EPARSE, "case %zu: %s (%s)", i, pt_status_name(s), err.msg);
        CHECK(d == NULL);
        char want[800];
        snprintf(want, sizeof want, "%s:%d:%d: %s", p, BAD[i].line, BAD[i].col, BAD[i].what);
        CHECK_MSG(strncmp(err.msg, want, strlen(want)) == 0, "case %zu: \"%s\" does not start with \"%s\"",
                  i, err.msg, want);
    }
}

TEST(libsvm_errors) {
    check_bad(NULL);
    /* the same messages when the file is cut into tiny ranges on threads */
    pt_ctx *ctx = mkctx(4);
    CHECK(ctx);
    for (int64_t cb = 1; cb <= 9; cb += 4) {
        pt__libsvm_set_chunk_bytes(cb);
        check_bad(ctx);
        if (pt_test_failed()) break;
    }
    pt__libsvm_set_chunk_bytes(0);
    pt_ctx_free(ctx);
    pt_dataset *d = NULL;
    pt_error err;
    const char *p = pt_test_tmp("no_such_file.svm");
    CHECK(pt_libsvm_read(NULL, NULL, p, NULL, &d, &err) == PT_ENOENT);
    CHECK_CONTAINS(err.msg, p);
    pt_libsvm_opts o;
    pt_libsvm_opts_init(&o);
    o.nfeatures = -1;
    CHECK(pt_libsvm_read(NULL, NULL, p, &o, &d, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "opts.nfeatures");
}

/* ------------------------------------------------------------------------ */
/* Random files against a reference parser                                  */
/* ------------------------------------------------------------------------ */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void bput(buf *b, const char *s) {
    size_t k = strlen(s);
    if (b->n + k + 1 > b->cap) {
        b->cap = (b->n + k + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, k + 1);
    b->n += k;
}

/* A number in one of many spellings; some need the slow path. */
static void rand_number(pt_rng *r, char *s, size_t cap) {
    switch (pt_rng_below(r, 9)) {
    case 0: snprintf(s, cap, "%d", (int)pt_rng_below(r, 256)); break;
    case 1: snprintf(s, cap, "%.4f", pt_rng_normal(r)); break;
    case 2: snprintf(s, cap, "%.17g", pt_rng_normal(r) * pow(10, (double)pt_rng_below(r, 61) - 30)); break;
    case 3: { /* 1..25 random digits, a point somewhere, maybe an exponent */
        int nd = 1 + (int)pt_rng_below(r, 25), pt = (int)pt_rng_below(r, (uint64_t)nd + 1), k = 0;
        if (pt_rng_below(r, 3) == 0) s[k++] = '-';
        for (int i = 0; i < nd; i++) {
            if (i == pt) s[k++] = '.';
            s[k++] = (char)('0' + pt_rng_below(r, 10));
        }
        if (pt_rng_below(r, 2)) k += snprintf(s + k, cap - (size_t)k, "e%d", (int)pt_rng_below(r, 81) - 40);
        s[k] = '\0';
        break;
    }
    case 4: {
        static const char *odd[] = {"-0", "0.0", "1e0", "5.", ".5", "+3", "1E+2", "9007199254740993",
                                    "9007199254740992.5", "0.1", "1e-320", "1e308", "4.9e-324",
                                    "123456789012345678", "1.7976931348623157e308", "2.2250738585072014e-308",
                                    "0.000000000000000000000000000001", "18446744073709551615", "inf"};
        snprintf(s, cap, "%s", odd[pt_rng_below(r, sizeof odd / sizeof odd[0])]);
        break;
    }
    case 5: snprintf(s, cap, "%.15g", pt_rng_uniform(r) * 1e6); break;
    case 6: snprintf(s, cap, "%.19g", pt_rng_uniform(r)); break;
    case 7: /* halfway cases between doubles: m * 2^k + 2^(k-1) in decimal */
        snprintf(s, cap, "%llu", (unsigned long long)(((pt_rng_next(r) >> 11) | (1ULL << 52)) * 2048 + 1024));
        break;
    default: snprintf(s, cap, "%.3e", pt_rng_normal(r) * 1e10); break;
    }
}

static char *rand_file(uint64_t seed, int lines, int nf, size_t *len) {
    pt_rng r;
    pt_rng_seed(&r, seed);
    buf b = {0};
    bput(&b, "");
    char tmp[128];
    for (int l = 0; l < lines; l++) {
        uint64_t kind = pt_rng_below(&r, 100);
        if (kind < 4) {
            bput(&b, "# comment 1:2 x\n");
            continue;
        }
        if (kind < 7) {
            bput(&b, pt_rng_below(&r, 2) ? "\n" : "  \t\r\n");
            continue;
        }
        bput(&b, pt_rng_below(&r, 2) ? "+1" : "-1");
        if (pt_rng_below(&r, 10) == 0) bput(&b, " qid:3");
        double dens = pt_rng_uniform(&r) * 0.3;
        for (int j = 1; j <= nf; j++) {
            if (pt_rng_uniform(&r) >= dens) continue;
            rand_number(&r, tmp + 64, 64);
            snprintf(tmp, 64, "%s%d:", pt_rng_below(&r, 8) ? " " : "\t ", j);
            bput(&b, tmp);
            bput(&b, tmp + 64);
        }
        if (pt_rng_below(&r, 10) == 0) bput(&b, " # tail");
        if (pt_rng_below(&r, 5) == 0) bput(&b, "  ");
        if (l == lines - 1 && pt_rng_below(&r, 2)) break; /* no final newline */
        bput(&b, pt_rng_below(&r, 5) == 0 ? "\r\n" : "\n");
    }
    *len = b.n;
    return b.p;
}

/* The reference: one line at a time with strtok and strtod. */
typedef struct ref_ds {
    int64_t n, nnz, maxidx;
    double y[20000];
    int64_t ptr[20001];
    int32_t *idx;
    double *val;
} ref_ds;

static void ref_parse(char *text, ref_ds *R, int64_t cap) {
    R->n = R->nnz = R->maxidx = 0;
    R->ptr[0] = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *h = strchr(line, '#');
        if (h) *h = '\0';
        char *s2 = NULL;
        char *tok = strtok_r(line, " \t\r", &s2);
        if (!tok) continue;
        double lab = strtod(tok, NULL);
        R->y[R->n] = lab == -1 ? 0 : lab;
        while ((tok = strtok_r(NULL, " \t\r", &s2)) != NULL) {
            if (strncmp(tok, "qid:", 4) == 0) continue;
            char *colon = strchr(tok, ':');
            long ix = strtol(tok, NULL, 10);
            if (R->nnz < cap) {
                R->idx[R->nnz] = (int32_t)(ix - 1);
                R->val[R->nnz] = strtod(colon + 1, NULL);
            }
            R->nnz++;
            if (ix > R->maxidx) R->maxidx = ix;
        }
        R->n++;
        R->ptr[R->n] = R->nnz;
    }
}

static ref_ds g_ref;

TEST(libsvm_parallel_equals_reference) {
    const int64_t cap = 2000000;
    g_ref.idx = malloc((size_t)cap * sizeof(int32_t));
    g_ref.val = malloc((size_t)cap * sizeof(double));
    pt_ctx *ctxs[3] = {mkctx(1), mkctx(2), mkctx(4)};
    CHECK(ctxs[0] && ctxs[1] && ctxs[2]);
    /* the first file is small enough for one-byte ranges */
    for (uint64_t seed = 1; seed <= 3; seed++) {
        size_t len;
        char *text = rand_file(seed, seed == 1 ? 400 : 2500 + (int)seed * 500, 150, &len);
        const char *p = pt_test_tmp("rand.svm");
        FILE *f = fopen(p, "wb");
        CHECK(f);
        fwrite(text, 1, len, f);
        fclose(f);
        ref_parse(text, &g_ref, cap);
        free(text);
        CHECK(g_ref.nnz < cap);
        const int64_t chunks[] = {0, 100000, 1000, 64, 7, 1};
        for (int ci = 0; ci < (seed == 1 ? 6 : 4); ci++) {
            pt__libsvm_set_chunk_bytes(chunks[ci]);
            for (int t = 0; t < 3; t++) {
                for (int dense = 0; dense < 2; dense++) {
                    pt_libsvm_opts o;
                    pt_libsvm_opts_init(&o);
                    o.dense = dense;
                    pt_dataset *d = NULL;
                    pt_error err;
                    CHECK_OK(pt_libsvm_read(ctxs[t], NULL, p, &o, &d, &err), &err);
                    CHECK_EQ_I(d->nrows, g_ref.n);
                    CHECK_EQ_I(d->nfeatures, g_ref.maxidx);
                    int64_t nf = d->nfeatures;
                    for (int64_t r = 0; r < d->nrows; r++) {
                        CHECK(d->y[r] == g_ref.y[r]);
                        CHECK_EQ_I(d->row_id[r], r);
                        if (!dense) {
                            CHECK_EQ_I(d->indptr[r + 1], g_ref.ptr[r + 1]);
                            continue;
                        }
                        int64_t k = g_ref.ptr[r];
                        for (int64_t j = 0; j < nf; j++) {
                            double want = 0.0;
                            if (k < g_ref.ptr[r + 1] && g_ref.idx[k] == j) want = g_ref.val[k++];
                            CHECK_MSG(same_bits(d->x[r * nf + j], want), "row %lld col %lld: %.17g vs %.17g",
                                      (long long)r, (long long)j, d->x[r * nf + j], want);
                        }
                    }
                    for (int64_t k = 0; !dense && k < g_ref.nnz; k++) {
                        CHECK_EQ_I(d->indices[k], g_ref.idx[k]);
                        CHECK_MSG(same_bits(d->values[k], g_ref.val[k]), "entry %lld: %.17g vs %.17g",
                                  (long long)k, d->values[k], g_ref.val[k]);
                    }
                    pt_dataset_free(d);
                }
            }
        }
    }
    pt__libsvm_set_chunk_bytes(0);
    for (int t = 0; t < 3; t++) pt_ctx_free(ctxs[t]);
    free(g_ref.idx);
    free(g_ref.val);
}

/* Exactness of the number parser on many spellings, one value per line. */
TEST(libsvm_numbers_exact) {
    pt_rng r;
    pt_rng_seed(&r, 99);
    const int n = 60000;
    buf b = {0};
    bput(&b, "");
    char (*txt)[64] = malloc((size_t)n * 64);
    for (int i = 0; i < n; i++) {
        rand_number(&r, txt[i], 64);
        char line[96];
        snprintf(line, sizeof line, "1 1:%s\n", txt[i]);
        bput(&b, line);
    }
    const char *p = pt_test_tmp("num.svm");
    FILE *f = fopen(p, "wb");
    fwrite(b.p, 1, b.n, f);
    fclose(f);
    free(b.p);
    pt_libsvm_opts o;
    pt_libsvm_opts_init(&o);
    o.dense = true;
    pt_dataset *d = NULL;
    pt_error err;
    CHECK_OK(pt_libsvm_read(NULL, NULL, p, &o, &d, &err), &err);
    CHECK_EQ_I(d->nrows, n);
    for (int i = 0; i < n; i++) {
        double want = strtod(txt[i], NULL);
        CHECK_MSG(same_bits(d->x[i], want), "'%s': %.17g vs %.17g", txt[i], d->x[i], want);
    }
    pt_dataset_free(d);
    free(txt);
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

TEST(libsvm_write_read_roundtrip) {
    pt_rng r;
    pt_rng_seed(&r, 7);
    const int64_t n = 500, nf = 40;
    for (int dense = 0; dense < 2; dense++) {
        pt_dataset src;
        memset(&src, 0, sizeof src);
        src.nrows = src.nrows_global = n;
        src.nfeatures = nf;
        src.sparse = !dense;
        src.y = malloc(n * sizeof(double));
        src.row_id = malloc(n * sizeof(int64_t));
        src.x = malloc(n * nf * sizeof(double));
        src.indptr = malloc((n + 1) * sizeof(int64_t));
        src.indices = malloc(n * nf * sizeof(int32_t));
        src.values = malloc(n * nf * sizeof(double));
        src.indptr[0] = 0;
        for (int64_t i = 0; i < n; i++) {
            src.y[i] = pt_rng_normal(&r) * 1e3; /* regression targets */
            if (i % 5 == 0) src.y[i] = (double)(i % 7) - 3;
            src.row_id[i] = i;
            int64_t z = src.indptr[i];
            for (int64_t j = 0; j < nf; j++) {
                double v = 0;
                if (pt_rng_below(&r, 3) == 0) {
                    uint64_t u = pt_rng_below(&r, 5);
                    v = u == 0   ? (double)(int)pt_rng_below(&r, 1000) - 500
                        : u == 1 ? pt_rng_normal(&r) * 1e-300
                        : u == 2 ? pt_rng_normal(&r) * 1e300
                                 : pt_rng_normal(&r);
                }
                src.x[i * nf + j] = v;
                if (v != 0) {
                    src.indices[z] = (int32_t)j;
                    src.values[z++] = v;
                }
            }
            src.indptr[i + 1] = z;
        }
        if (!dense) {
            free(src.x);
            src.x = NULL;
        }
        const char *p = pt_test_tmp("rt.svm");
        pt_error err;
        CHECK_OK(pt_libsvm_write(&src, p, &err), &err);
        pt_libsvm_opts o;
        pt_libsvm_opts_init(&o);
        o.labels = PT_LABELS_RAW;
        o.dense = dense;
        o.nfeatures = nf;
        pt_dataset *d = NULL;
        CHECK_OK(pt_libsvm_read(NULL, NULL, p, &o, &d, &err), &err);
        CHECK_EQ_I(d->nrows, n);
        for (int64_t i = 0; i < n; i++) {
            CHECK(same_bits(d->y[i], src.y[i]));
            if (dense) {
                for (int64_t j = 0; j < nf; j++) CHECK(same_bits(d->x[i * nf + j], src.x[i * nf + j]));
            } else {
                CHECK_EQ_I(d->indptr[i + 1], src.indptr[i + 1]);
            }
        }
        for (int64_t k = 0; !dense && k < src.indptr[n]; k++) {
            CHECK_EQ_I(d->indices[k], src.indices[k]);
            CHECK(same_bits(d->values[k], src.values[k]));
        }
        pt_dataset_free(d);
        free(src.y);
        free(src.row_id);
        free(src.x);
        free(src.indptr);
        free(src.indices);
        free(src.values);
    }
    /* the exact text for a small case */
    pt_dataset s;
    memset(&s, 0, sizeof s);
    double x[] = {0, 1.5, -2, 0, 0, 0, 0.1, 0};
    double y[] = {1, -0.25};
    s.nrows = 2;
    s.nfeatures = 4;
    s.x = x;
    s.y = y;
    const char *p = pt_test_tmp("w.svm");
    pt_error err;
    CHECK_OK(pt_libsvm_write(&s, p, &err), &err);
    char got[200] = {0};
    FILE *f = fopen(p, "rb");
    CHECK(f);
    size_t k = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    got[k] = '\0';
    CHECK_STR(got, "1 2:1.5 3:-2\n-0.25 3:0.10000000000000001\n");
    CHECK(pt_libsvm_write(&s, "/nonexistent_dir/x.svm", &err) == PT_ENOENT);
    CHECK_CONTAINS(err.msg, "/nonexistent_dir/x.svm");
}

/* ------------------------------------------------------------------------ */
/* Random split                                                             */
/* ------------------------------------------------------------------------ */

/* The split formula, written out here independently. */
static int ref_split(uint64_t seed, int64_t row_id, const double *w, int n) {
    uint64_t h = pt_splitmix64(seed ^ pt_splitmix64((uint64_t)row_id));
    double u = (double)(h >> 11) / 9007199254740992.0;
    double tot = 0, acc = 0;
    for (int i = 0; i < n; i++) tot += w[i];
    for (int i = 0; i < n; i++) {
        acc += w[i];
        if (acc / tot > u) return i;
    }
    return n - 1;
}

static pt_dataset *rand_sparse_dataset(int64_t n, int64_t nf, uint64_t seed, bool dense) {
    pt_rng r;
    pt_rng_seed(&r, seed);
    buf b = {0};
    bput(&b, "");
    char tmp[64];
    for (int64_t i = 0; i < n; i++) {
        bput(&b, pt_rng_below(&r, 2) ? "1" : "0");
        for (int64_t j = 1; j <= nf; j++) {
            if (pt_rng_below(&r, 4)) continue;
            snprintf(tmp, sizeof tmp, " %lld:%.17g", (long long)j, pt_rng_normal(&r));
            bput(&b, tmp);
        }
        bput(&b, "\n");
    }
    const char *p = pt_test_tmp("split.svm");
    FILE *f = fopen(p, "wb");
    fwrite(b.p, 1, b.n, f);
    fclose(f);
    free(b.p);
    pt_libsvm_opts o;
    pt_libsvm_opts_init(&o);
    o.dense = dense;
    o.nfeatures = nf;
    pt_dataset *d = NULL;
    if (pt_libsvm_read(NULL, NULL, p, &o, &d, NULL) != PT_OK) return NULL;
    return d;
}

TEST(random_split_membership_and_content) {
    for (int dense = 0; dense < 2; dense++) {
        pt_dataset *d = rand_sparse_dataset(10000, 12, 5, dense);
        CHECK(d);
        const double w[] = {0.7, 0.3};
        const double w3[] = {1, 2, 1};
        for (int which = 0; which < 2; which++) {
            const double *ws = which ? w3 : w;
            int nw = which ? 3 : 2;
            pt_dataset *parts[3] = {0}, *again[3] = {0};
            pt_error err;
            CHECK_OK(pt_dataset_random_split(NULL, d, nw, ws, 42, parts, &err), &err);
            CHECK_OK(pt_dataset_random_split(NULL, d, nw, ws, 42, again, &err), &err);
            int64_t total = 0;
            int64_t *pos = calloc((size_t)d->nrows, sizeof *pos);
            double wt = 0;
            for (int i = 0; i < nw; i++) wt += ws[i];
            for (int i = 0; i < nw; i++) {
                pt_dataset *s = parts[i];
                CHECK(s->sparse == d->sparse);
                CHECK_EQ_I(s->nfeatures, d->nfeatures);
                CHECK_EQ_I(s->nclasses, d->nclasses);
                CHECK_EQ_I(s->nrows_global, s->nrows);
                CHECK_EQ_I(again[i]->nrows, s->nrows);
                /* proportional: within 4 standard deviations */
                double pexp = ws[i] / wt, sd = sqrt(pexp * (1 - pexp) * (double)d->nrows);
                CHECK_MSG(fabs((double)s->nrows - pexp * (double)d->nrows) < 4 * sd, "part %d: %lld rows",
                          i, (long long)s->nrows);
                total += s->nrows;
                for (int64_t k = 0; k < s->nrows; k++) {
                    int64_t id = s->row_id[k];
                    CHECK(id >= 0 && id < d->nrows);
                    CHECK_MSG(pos[id] == 0, "row %lld twice", (long long)id);
                    pos[id] = k + 1;
                    CHECK_EQ_I(ref_split(42, id, ws, nw), i);
                    CHECK_EQ_I(again[i]->row_id[k], id);
                    CHECK(s->y[k] == d->y[id]);
                    if (dense) {
                        CHECK(memcmp(s->x + k * 12, d->x + id * 12, 12 * sizeof(double)) == 0);
                    } else {
                        int64_t a = d->indptr[id], len = d->indptr[id + 1] - a;
                        CHECK_EQ_I(s->indptr[k + 1] - s->indptr[k], len);
                        CHECK(memcmp(s->indices + s->indptr[k], d->indices + a, (size_t)len * 4) == 0);
                        CHECK(memcmp(s->values + s->indptr[k], d->values + a, (size_t)len * 8) == 0);
                    }
                }
            }
            CHECK_EQ_I(total, d->nrows);
            free(pos);
            /* another seed gives another split */
            pt_dataset *other[3] = {0};
            CHECK_OK(pt_dataset_random_split(NULL, d, nw, ws, 43, other, &err), &err);
            int64_t same = 0, nmin = other[0]->nrows < parts[0]->nrows ? other[0]->nrows : parts[0]->nrows;
            for (int64_t k = 0; k < nmin; k++) same += other[0]->row_id[k] == parts[0]->row_id[k];
            CHECK(same < nmin);
            for (int i = 0; i < nw; i++) {
                pt_dataset_free(parts[i]);
                pt_dataset_free(again[i]);
                pt_dataset_free(other[i]);
            }
        }
        pt_dataset_free(d);
    }
}

TEST(random_split_bad_weights) {
    pt_dataset *d = rand_sparse_dataset(10, 3, 1, false);
    CHECK(d);
    pt_dataset *parts[2];
    pt_error err;
    const double neg[] = {0.5, -0.5}, zero[] = {0, 0}, one[] = {1, 0};
    CHECK(pt_dataset_random_split(NULL, d, 2, neg, 1, parts, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "weights[1]");
    CHECK(pt_dataset_random_split(NULL, d, 2, zero, 1, parts, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "weights");
    CHECK(pt_dataset_random_split(NULL, d, 0, one, 1, parts, &err) == PT_EINVAL);
    /* a zero weight gives an empty part */
    CHECK_OK(pt_dataset_random_split(NULL, d, 2, one, 1, parts, &err), &err);
    CHECK_EQ_I(parts[0]->nrows, 10);
    CHECK_EQ_I(parts[1]->nrows, 0);
    pt_dataset_free(parts[0]);
    pt_dataset_free(parts[1]);
    pt_dataset_free(d);
}

/* ------------------------------------------------------------------------ */
/* From a table                                                             */
/* ------------------------------------------------------------------------ */

static pt_table *csv_table(const char *text, bool dict) {
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.dict_strings = dict;
    o.header = 1;
    pt_table *t = NULL;
    pt_error err;
    if (pt_csv_read_buffer(NULL, text, (int64_t)strlen(text), "t.csv", &o, &t, NULL, &err) != PT_OK) {
        fprintf(stderr, "csv: %s\n", err.msg);
        return NULL;
    }
    return t;
}

static const char *TABLE_CSV =
    "a,color,b,kind,y\n"
    "1.5,red,10,x,cat\n"
    "-2,blue,20,y,dog\n"
    "0.25,green,30,x,ant\n"
    "4,red,40,y,cat\n"
    "8,,50,x,dog\n"; /* an empty unquoted field reads as null */

TEST(from_table_one_hot) {
    for (int dict = 0; dict < 2; dict++) {
        pt_table *t = csv_table(TABLE_CSV, dict);
        CHECK(t);
        pt_column *color = pt_table_column(t, "color");
        CHECK_EQ_I(color->null_count, 1);
        pt_table *s = NULL; /* the null row goes: a null feature is an error */
        CHECK_OK(pt_table_slice(t, 0, 4, &s, NULL), NULL);
        pt_table_free(t);
        t = s;
        pt_dataset *d = NULL;
        pt_error err;
        CHECK_OK(pt_dataset_from_table(NULL, NULL, t, "y", 0, NULL, true, &d, &err), &err);
        /* a, color=blue, color=green, color=red, b, kind=x, kind=y */
        const char *names[] = {"a", "color=blue", "color=green", "color=red", "b", "kind=x", "kind=y"};
        CHECK_EQ_I(d->nfeatures, 7);
        CHECK(!d->sparse);
        for (int j = 0; j < 7; j++) CHECK_STR(d->feature_names[j], names[j]);
        const double x[4][7] = {{1.5, 0, 0, 1, 10, 1, 0},
                                {-2, 1, 0, 0, 20, 0, 1},
                                {0.25, 0, 1, 0, 30, 1, 0},
                                {4, 0, 0, 1, 40, 0, 1}};
        const double y[4] = {1, 2, 0, 1}; /* ant, cat, dog */
        CHECK_EQ_I(d->nrows, 4);
        CHECK_EQ_I(d->nclasses, 3);
        for (int r = 0; r < 4; r++) {
            CHECK(d->y[r] == y[r]);
            CHECK_EQ_I(d->row_id[r], r);
            for (int j = 0; j < 7; j++) CHECK(d->x[r * 7 + j] == x[r][j]);
        }
        pt_dataset_free(d);
        /* explicit features, in the given order */
        const char *feats[] = {"kind", "a"};
        CHECK_OK(pt_dataset_from_table(NULL, NULL, t, "b", 2, feats, false, &d, &err), &err);
        CHECK_EQ_I(d->nfeatures, 3);
        CHECK_STR(d->feature_names[0], "kind=x");
        CHECK_STR(d->feature_names[2], "a");
        CHECK(d->x[1 * 3 + 1] == 1 && d->x[1 * 3 + 2] == -2);
        CHECK(d->y[3] == 40);
        CHECK_EQ_I(d->nclasses, 0);
        pt_dataset_free(d);
        /* text label without classify, unknown columns */
        CHECK(pt_dataset_from_table(NULL, NULL, t, "y", 0, NULL, false, &d, &err) == PT_ETYPE);
        CHECK_CONTAINS(err.msg, "'y'");
        CHECK(pt_dataset_from_table(NULL, NULL, t, "nope", 0, NULL, true, &d, &err) == PT_EINVAL);
        CHECK_CONTAINS(err.msg, "'nope'");
        const char *bad[] = {"a", "zz"};
        CHECK(pt_dataset_from_table(NULL, NULL, t, "y", 2, bad, true, &d, &err) == PT_EINVAL);
        CHECK_CONTAINS(err.msg, "'zz'");
        pt_table_free(t);
    }
}

TEST(from_table_labels_and_nulls) {
    pt_dataset *d = NULL;
    pt_error err;
    /* non-negative integer labels kept */
    pt_table *t = csv_table("f,y\n1,0\n2,3\n3,1\n", true);
    CHECK(t);
    CHECK_OK(pt_dataset_from_table(NULL, NULL, t, "y", 0, NULL, true, &d, &err), &err);
    CHECK_EQ_I(d->nclasses, 4);
    CHECK(d->y[0] == 0 && d->y[1] == 3 && d->y[2] == 1);
    CHECK_EQ_I(d->nfeatures, 1);
    pt_dataset_free(d);
    pt_table_free(t);
    /* -1/+1 and other numbers: sorted distinct values get 0..k-1 */
    t = csv_table("f,y\n1,1\n2,-1\n3,1\n4,-1\n", true);
    CHECK_OK(pt_dataset_from_table(NULL, NULL, t, "y", 0, NULL, true, &d, &err), &err);
    CHECK_EQ_I(d->nclasses, 2);
    CHECK(d->y[0] == 1 && d->y[1] == 0 && d->y[2] == 1 && d->y[3] == 0);
    pt_dataset_free(d);
    pt_table_free(t);
    t = csv_table("f,y\n1,2.5\n2,-7\n3,2.5\n4,10\n", true);
    CHECK_OK(pt_dataset_from_table(NULL, NULL, t, "y", 0, NULL, true, &d, &err), &err);
    CHECK_EQ_I(d->nclasses, 3);
    CHECK(d->y[0] == 1 && d->y[1] == 0 && d->y[2] == 1 && d->y[3] == 2);
    pt_dataset_free(d);
    /* regression: raw */
    CHECK_OK(pt_dataset_from_table(NULL, NULL, t, "y", 0, NULL, false, &d, &err), &err);
    CHECK(d->y[0] == 2.5 && d->y[1] == -7);
    pt_dataset_free(d);
    pt_table_free(t);
    /* nulls are named by column and row */
    t = csv_table("f,g,y\n1,2,0\n2,,1\n3,4,0\n", true);
    CHECK(pt_dataset_from_table(NULL, NULL, t, "y", 0, NULL, true, &d, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "column 'g', row 1: null value");
    CHECK(d == NULL);
    pt_table_free(t);
    t = csv_table("f,y\n1,0\n2,1\n3,\n", true);
    CHECK(pt_dataset_from_table(NULL, NULL, t, "y", 0, NULL, true, &d, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "column 'y', row 2: null value");
    pt_table_free(t);
}

/* ------------------------------------------------------------------------ */
/* Out of memory at every allocation                                        */
/* ------------------------------------------------------------------------ */

TEST(libsvm_out_of_memory_is_clean) {
    const char *p = pt_test_write("oom.svm", SMALL);
    pt_ctx *ctx = mkctx(2);
    CHECK(ctx);
    pt__libsvm_set_chunk_bytes(16);
    int64_t base = pt_alloc_bytes_in_use();
    bool finished = false;
    for (int64_t k = 0; k < 400 && !finished; k++) {
        pt_alloc_fail_after(k);
        pt_dataset *d = NULL;
        pt_error err;
        pt_status s = pt_libsvm_read(ctx, NULL, p, NULL, &d, &err);
        pt_alloc_fail_after(-1);
        CHECK_MSG(s == PT_OK || s == PT_ENOMEM || s == PT_EBUDGET, "k=%lld: %s %s", (long long)k,
                  pt_status_name(s), err.msg);
        if (s == PT_OK) {
            finished = true;
            CHECK_MSG(k > 20, "succeeded after only %lld allocations", (long long)k);
            CHECK_EQ_I(d->nrows, 4);
            pt_dataset_free(d);
        }
        CHECK_EQ_I(pt_alloc_bytes_in_use(), base);
    }
    CHECK(finished);
    pt__libsvm_set_chunk_bytes(0);
    pt_ctx_free(ctx);
}

/* Parse buffers are charged to the context's budget and given back. */
TEST(libsvm_memory_budget) {
    size_t len;
    char *text = rand_file(4, 2000, 100, &len);
    const char *p = pt_test_tmp("budget.svm");
    FILE *f = fopen(p, "wb");
    CHECK(f);
    fwrite(text, 1, len, f);
    fclose(f);
    free(text);
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = 2;
    co.memory_limit = 64 << 10;
    pt_ctx *small = NULL;
    CHECK_OK(pt_ctx_new(&co, &small, NULL), NULL);
    pt_dataset *d = NULL;
    pt_error err;
    CHECK(pt_libsvm_read(small, NULL, p, NULL, &d, &err) == PT_EBUDGET);
    CHECK_CONTAINS(err.msg, p);
    CHECK_CONTAINS(err.msg, "libsvm parse buffers");
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(small)), 0);
    pt_ctx_free(small);
    pt_ctx *ctx = mkctx(2);
    CHECK(ctx);
    CHECK_OK(pt_libsvm_read(ctx, NULL, p, NULL, &d, &err), &err);
    CHECK(pt_mem_peak(pt_ctx_mem(ctx)) > 0);
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(ctx)), 0);
    pt_dataset_free(d);
    pt_ctx_free(ctx);
}
