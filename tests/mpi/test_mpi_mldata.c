/*
 * test_mpi_mldata.c - the ML data layer under `mpirun -n N`: each rank reads
 * its share of a libsvm file and must hold exactly the rows of the
 * one-process read (pt_libsvm_read with comm NULL) for its row ids, the
 * shares tiling [0, rows) in order; feature count and classes agreed over
 * ranks; random_split membership equal to the one-process split; parse
 * errors on one rank make every rank fail (the owner with file:line:column,
 * the others naming the rank) with no hang; datasets from per-rank tables
 * get one agreed one-hot layout. Exit status 0 only if every rank passed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "partita.h"

void pt__libsvm_set_chunk_bytes(int64_t n);

#include "mpi_check.h"

static char g_dir[256];

/* Rank 0 writes `text` to a file in the shared scratch directory; all ranks
 * get its path once it is there. */
static const char *put_file(pt_comm *c, const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    if (g_rank == 0) {
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(text, 1, strlen(text), f);
            fclose(f);
        }
    }
    if (pt_comm_barrier(c, &g_err) != PT_OK) g_fail++;
    return path;
}

static bool same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Random libsvm text, the same on every rank for a seed. */
static char *rand_text(uint64_t seed, int lines, int nf) {
    pt_rng r;
    pt_rng_seed(&r, seed);
    size_t cap = (size_t)lines * (size_t)nf * 8 + 1024, n = 0;
    char *s = malloc(cap);
    for (int l = 0; l < lines; l++) {
        if (pt_rng_below(&r, 20) == 0) {
            n += (size_t)snprintf(s + n, cap - n, "# comment\n");
            continue;
        }
        n += (size_t)snprintf(s + n, cap - n, "%d", (int)pt_rng_below(&r, 4));
        for (int j = 1; j <= nf; j++) {
            if (pt_rng_below(&r, 5)) continue;
            n += (size_t)snprintf(s + n, cap - n, " %d:%.17g", j, pt_rng_normal(&r));
        }
        n += (size_t)snprintf(s + n, cap - n, pt_rng_below(&r, 4) ? "\n" : "\r\n");
    }
    return s;
}

/* Every rank's shard equals the one-process read at its row ids, and the
 * shards tile [0, rows) in rank order. */
static void check_shard(pt_comm *c, const pt_dataset *sh, const pt_dataset *full) {
    EXPECT(sh->nrows_global == full->nrows, "nrows_global %lld vs %lld", (long long)sh->nrows_global,
           (long long)full->nrows);
    EXPECT(sh->nfeatures == full->nfeatures, "nfeatures %lld vs %lld", (long long)sh->nfeatures,
           (long long)full->nfeatures);
    EXPECT(sh->nclasses == full->nclasses, "nclasses %d vs %d", sh->nclasses, full->nclasses);
    int64_t *counts = malloc((size_t)g_size * sizeof *counts);
    if (pt_comm_allgather(c, &sh->nrows, 8, counts, &g_err) != PT_OK) {
        g_fail++;
        free(counts);
        return;
    }
    int64_t first = 0, total = 0;
    for (int r = 0; r < g_size; r++) {
        if (r < g_rank) first += counts[r];
        total += counts[r];
    }
    free(counts);
    EXPECT(total == full->nrows, "rows over ranks %lld vs %lld", (long long)total, (long long)full->nrows);
    int64_t nf = full->nfeatures;
    for (int64_t i = 0; i < sh->nrows; i++) {
        int64_t g = sh->row_id[i];
        if (g != first + i) {
            EXPECT(g == first + i, "row %lld has id %lld, want %lld", (long long)i, (long long)g,
                   (long long)(first + i));
            return;
        }
        EXPECT(sh->y[i] == full->y[g], "label of row %lld", (long long)g);
        if (sh->sparse) {
            int64_t a = sh->indptr[i], b = sh->indptr[i + 1], fa = full->indptr[g];
            if (b - a != full->indptr[g + 1] - fa) {
                EXPECT(0, "row %lld: %lld entries vs %lld", (long long)g, (long long)(b - a),
                       (long long)(full->indptr[g + 1] - fa));
                return;
            }
            for (int64_t k = 0; k < b - a; k++) {
                if (sh->indices[a + k] != full->indices[fa + k] ||
                    !same_bits(sh->values[a + k], full->values[fa + k])) {
                    EXPECT(0, "row %lld entry %lld differs", (long long)g, (long long)k);
                    return;
                }
            }
        } else if (memcmp(sh->x + i * nf, full->x + g * nf, (size_t)nf * sizeof(double)) != 0) {
            EXPECT(0, "dense row %lld differs", (long long)g);
            return;
        }
    }
}

static void test_read_and_split(pt_comm *c, pt_ctx *ctx) {
    char *text = rand_text(11, 3000, 40);
    const char *path = put_file(c, "rand.svm", text);
    free(text);
    const int64_t chunks[] = {0, 97};
    for (int ci = 0; ci < 2; ci++) {
        pt__libsvm_set_chunk_bytes(chunks[ci]);
        for (int dense = 0; dense < 2; dense++) {
            pt_libsvm_opts o;
            pt_libsvm_opts_init(&o);
            o.dense = dense;
            pt_dataset *full = NULL, *sh = NULL;
            OK(pt_libsvm_read(ctx, NULL, path, &o, &full, &g_err));
            OK(pt_libsvm_read(ctx, c, path, &o, &sh, &g_err));
            check_shard(c, sh, full);
            /* random split: the same membership as the one-process split */
            const double w[] = {0.6, 0.3, 0.1};
            pt_dataset *fp[3], *sp[3];
            OK(pt_dataset_random_split(NULL, full, 3, w, 7, fp, &g_err));
            OK(pt_dataset_random_split(c, sh, 3, w, 7, sp, &g_err));
            int8_t *part = malloc((size_t)full->nrows + 1);
            for (int i = 0; i < 3; i++) {
                for (int64_t k = 0; k < fp[i]->nrows; k++) part[fp[i]->row_id[k]] = (int8_t)i;
            }
            int64_t seen = 0;
            for (int i = 0; i < 3; i++) {
                EXPECT(sp[i]->nrows_global == fp[i]->nrows, "part %d: %lld rows vs %lld", i,
                       (long long)sp[i]->nrows_global, (long long)fp[i]->nrows);
                for (int64_t k = 0; k < sp[i]->nrows; k++) {
                    int64_t g = sp[i]->row_id[k];
                    if (part[g] != i) {
                        EXPECT(part[g] == i, "row %lld in part %d, one process says %d", (long long)g, i,
                               part[g]);
                        break;
                    }
                }
                seen += sp[i]->nrows;
            }
            EXPECT(seen == sh->nrows, "split lost rows: %lld of %lld", (long long)seen, (long long)sh->nrows);
            free(part);
            for (int i = 0; i < 3; i++) {
                pt_dataset_free(fp[i]);
                pt_dataset_free(sp[i]);
            }
            pt_dataset_free(full);
            pt_dataset_free(sh);
        }
    }
    pt__libsvm_set_chunk_bytes(0);
}

/* The largest index and class only on the last line: every rank must still
 * agree on them; and a file with fewer lines than ranks. */
static void test_agreement(pt_comm *c, pt_ctx *ctx) {
    char text[4096];
    size_t n = 0;
    for (int i = 0; i < 40; i++) n += (size_t)snprintf(text + n, sizeof text - n, "%d 1:%d\n", i % 2, i);
    snprintf(text + n, sizeof text - n, "4 500:1.5\n");
    const char *path = put_file(c, "agree.svm", text);
    pt_dataset *d = NULL;
    OK(pt_libsvm_read(ctx, c, path, NULL, &d, &g_err));
    EXPECT(d->nfeatures == 500, "nfeatures %lld", (long long)d->nfeatures);
    EXPECT(d->nclasses == 5, "nclasses %d", d->nclasses);
    EXPECT(d->nrows_global == 41, "rows %lld", (long long)d->nrows_global);
    pt_dataset_free(d);
    path = put_file(c, "one.svm", "-1 3:2\n");
    OK(pt_libsvm_read(ctx, c, path, NULL, &d, &g_err));
    EXPECT(d->nrows_global == 1 && d->nfeatures == 3 && d->nclasses == 2, "one line");
    EXPECT(d->nrows == (g_rank == 0 ? 1 : 0), "rank %d holds %lld rows", g_rank, (long long)d->nrows);
    if (d->nrows) EXPECT(d->y[0] == 0 && d->row_id[0] == 0, "the row");
    pt_dataset_free(d);
}

/* A bad line somewhere: all ranks fail, exactly one with the location. */
static void test_errors(pt_comm *c, pt_ctx *ctx) {
    for (int where = 0; where < 3; where++) {
        char *text = malloc(200000);
        size_t n = 0;
        int lines = 2000, bad = where == 0 ? 2 : where == 1 ? lines * 2 / 5 : lines;
        for (int i = 1; i <= lines; i++) {
            if (i == bad) n += (size_t)sprintf(text + n, "1 2:3 oops\n");
            else n += (size_t)sprintf(text + n, "%d 1:%d 2:0.5\n", i % 2, i);
        }
        const char *path = put_file(c, "bad.svm", text);
        free(text);
        pt_dataset *d = NULL;
        pt_error e;
        pt_error_clear(&e);
        pt_status s = pt_libsvm_read(ctx, c, path, NULL, &d, &e);
        EXPECT(s == PT_EPARSE, "where %d: %s %s", where, pt_status_name(s), e.msg);
        EXPECT(d == NULL, "dataset returned with an error");
        char want[700];
        snprintf(want, sizeof want, "%s:%d:7: missing ':' in 'oops'", path, bad);
        int64_t detailed = strncmp(e.msg, want, strlen(want)) == 0;
        EXPECT(detailed || strstr(e.msg, "failed to read its share") != NULL, "message: %s", e.msg);
        OK(pt_comm_allreduce(c, &detailed, 1, PT_DTYPE_INT64, PT_REDOP_SUM, &g_err));
        EXPECT(detailed == 1, "where %d: %lld ranks gave the location", where, (long long)detailed);
    }
    /* -1 on the first rank's lines, class 2 on the last rank's */
    char text[8192];
    size_t n = (size_t)sprintf(text, "1 1:1\n-1 1:1\n");
    for (int i = 0; i < 200; i++) n += (size_t)sprintf(text + n, "1 1:%d\n", i);
    sprintf(text + n, "2 1:1\n");
    const char *path = put_file(c, "mix.svm", text);
    pt_dataset *d = NULL;
    pt_error e;
    EXPECT(pt_libsvm_read(ctx, c, path, NULL, &d, &e) == PT_EPARSE, "mixed labels: %s", e.msg);
    if (g_rank == 0) {
        char want[700];
        snprintf(want, sizeof want, "%s:2:1: label '-1' is not a class id", path);
        EXPECT(strncmp(e.msg, want, strlen(want)) == 0, "message: %s", e.msg);
    } else {
        EXPECT(strstr(e.msg, "rank 0") != NULL, "message: %s", e.msg);
    }
    /* a file missing on one rank only must not hang the others */
    char mine[600];
    snprintf(mine, sizeof mine, "%s/%s", g_dir, g_rank == g_size - 1 ? "absent.svm" : "agree.svm");
    pt_status s = pt_libsvm_read(ctx, c, mine, NULL, &d, &e);
    EXPECT(s != PT_OK && d == NULL, "missing file on the last rank: %s", pt_status_name(s));
    if (g_rank == g_size - 1) EXPECT(s == PT_ENOENT && strstr(e.msg, "absent.svm"), "message: %s", e.msg);
    OK(pt_comm_barrier(c, &g_err));
}

/* Per-rank tables with different text values: one agreed layout. */
static void test_from_table(pt_comm *c, pt_ctx *ctx) {
    char csv[1024];
    size_t n = (size_t)sprintf(csv, "v,color,y\n");
    int rows = g_rank == 1 ? 0 : 3; /* rank 1 holds no rows */
    for (int i = 0; i < rows; i++) {
        n += (size_t)sprintf(csv + n, "%d,%s%d,lab%d\n", g_rank * 10 + i, i == 0 ? "common" : "c", i == 0 ? 0 : g_rank,
                             g_rank);
    }
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.header = 1;
    pt_schema *sc = NULL;
    OK(pt_schema_parse("v:float64,color:utf8,y:utf8", &sc, &g_err));
    o.schema = sc;
    pt_table *t = NULL;
    OK(pt_csv_read_buffer(NULL, csv, (int64_t)n, "t.csv", &o, &t, NULL, &g_err));
    pt_schema_free(sc);
    pt_dataset *d = NULL;
    OK(pt_dataset_from_table(ctx, c, t, "y", 0, NULL, true, &d, &g_err));
    /* colors: common0 and c<r> for every rank with rows; labels lab<r> */
    int with_rows = g_size >= 2 ? g_size - 1 : g_size;
    EXPECT(d->nfeatures == 1 + 1 + with_rows, "nfeatures %lld", (long long)d->nfeatures);
    EXPECT(d->nclasses == with_rows, "nclasses %d", d->nclasses);
    EXPECT(d->nrows_global == 3 * with_rows, "rows %lld", (long long)d->nrows_global);
    uint64_t h = 0;
    for (int64_t j = 0; j < d->nfeatures; j++) h = pt_hash_bytes(d->feature_names[j], strlen(d->feature_names[j]), h);
    uint64_t *hs = malloc((size_t)g_size * 8);
    OK(pt_comm_allgather(c, &h, 8, hs, &g_err));
    for (int r = 0; r < g_size; r++) EXPECT(hs[r] == hs[0], "rank %d has another layout", r);
    free(hs);
    EXPECT(strcmp(d->feature_names[1], "color=c0") == 0 || strcmp(d->feature_names[1], "color=c2") == 0,
           "first category %s", d->feature_names[1]);
    int64_t base = g_rank == 0 ? 0 : 3 * (g_rank - 1);
    for (int64_t i = 0; i < d->nrows; i++) {
        EXPECT(d->row_id[i] == base + i, "row id %lld", (long long)d->row_id[i]);
        /* the class of lab<r> is r's position among ranks with rows */
        double want_class = g_rank == 0 ? 0 : g_rank - 1;
        EXPECT(d->y[i] == want_class, "class %g", d->y[i]);
        double sum = 0;
        for (int64_t j = 1; j < d->nfeatures; j++) sum += d->x[i * d->nfeatures + j];
        EXPECT(sum == 1.0 && d->x[i * d->nfeatures] == g_rank * 10 + i, "one-hot row %lld", (long long)i);
        const char *want = i == 0 ? "color=common0" : NULL;
        char buf[64];
        if (!want) {
            snprintf(buf, sizeof buf, "color=c%d", g_rank);
            want = buf;
        }
        for (int64_t j = 1; j < d->nfeatures; j++) {
            if (d->x[i * d->nfeatures + j] == 1.0) EXPECT(strcmp(d->feature_names[j], want) == 0, "hot %s", want);
        }
    }
    pt_dataset_free(d);
    pt_table_free(t);
}

int main(void) {
    pt_comm_opts o;
    pt_comm_opts_init(&o);
    o.backend = "mpi";
    o.timeout_s = 30;
    pt_comm *c = NULL;
    if (pt_comm_init(&o, &c, &g_err) != PT_OK) {
        fprintf(stderr, "pt_comm_init: %s\n", g_err.msg);
        return 1;
    }
    g_rank = pt_comm_rank(c);
    g_size = pt_comm_size(c);
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = 2;
    pt_ctx *ctx = NULL;
    if (pt_ctx_new(&co, &ctx, &g_err) != PT_OK) {
        fprintf(stderr, "pt_ctx_new: %s\n", g_err.msg);
        return 1;
    }
    /* a scratch directory named by rank 0 */
    if (g_rank == 0) {
        const char *base = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/pt_mpi_mldata_XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(g_dir)) g_dir[0] = '\0';
    }
    if (pt_comm_bcast(c, g_dir, sizeof g_dir, 0, &g_err) != PT_OK || !g_dir[0]) {
        fprintf(stderr, "rank %d: no scratch directory\n", g_rank);
        return 1;
    }
    test_read_and_split(c, ctx);
    if (!pt_comm_failed(c)) test_agreement(c, ctx);
    if (!pt_comm_failed(c)) test_errors(c, ctx);
    if (!pt_comm_failed(c)) test_from_table(c, ctx);
    int64_t fails = g_fail;
    pt_error e2;
    if (pt_comm_failed(c) || pt_comm_allreduce(c, &fails, 1, PT_DTYPE_INT64, PT_REDOP_SUM, &e2) != PT_OK)
        fails = 1;
    if (g_rank == 0) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
        printf("%d ranks: %lld failures\n", g_size, (long long)fails);
    }
    pt_ctx_free(ctx);
    pt_comm_free(c);
    return fails == 0 && g_fail == 0 ? 0 : 1;
}
