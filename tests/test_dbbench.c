/* The ten db-benchmark group-by questions (and the five join questions when
 * their data is present) run as SQL on small G1/J1 data made by
 * `partita gen`, compared with answers computed by DuckDB, an independent
 * engine (tests/data/dbbench/make_expected.mjs produced the *_q*.csv files;
 * see that script). Rows are compared after sorting both sides; numbers
 * within a relative 1e-9, text exactly, nulls as nulls. */
#include "pt_test.h"

#define MAXQ 16

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    s[n] = 0;
    fclose(f);
    return s;
}

/* Splits a file of one query per line (lines starting with -- skipped). */
static int questions(const char *path, char **q) {
    char *s = slurp(path);
    if (!s) return 0;
    int n = 0;
    for (char *line = strtok(s, "\n"); line && n < MAXQ; line = strtok(NULL, "\n")) {
        if (strncmp(line, "--", 2) == 0 || !*line) continue;
        q[n++] = strdup(line);
    }
    free(s);
    return n;
}

/* One row as formatted cells, for sorting and comparing. */
typedef struct row {
    char **cell;
    double *num;
    bool *isnum, *isnull;
} row;

static row *rows_of(const pt_table *t) {
    int nc = t->schema->nfields;
    row *r = calloc((size_t)t->nrows + 1, sizeof *r);
    for (int64_t i = 0; i < t->nrows; i++) {
        r[i].cell = calloc((size_t)nc, sizeof(char *));
        r[i].num = calloc((size_t)nc, sizeof(double));
        r[i].isnum = calloc((size_t)nc, sizeof(bool));
        r[i].isnull = calloc((size_t)nc, sizeof(bool));
        for (int j = 0; j < nc; j++) {
            const pt_column *c = t->cols[j];
            char buf[256];
            r[i].isnull[j] = !pt_column_is_valid(c, i);
            if (!r[i].isnull[j] && (pt_type_is_numeric(c->type) || c->type == PT_TYPE_BOOL)) {
                r[i].isnum[j] = true;
                r[i].num[j] = pt_column_get_f64(c, i);
                snprintf(buf, sizeof buf, "%.9g", r[i].num[j]);
            } else {
                pt_column_format(c, i, 17, buf, sizeof buf);
            }
            r[i].cell[j] = strdup(r[i].isnull[j] ? "\x7fnull" : buf);
        }
    }
    return r;
}

static int g_nc;
static int cmp_rows(const void *a, const void *b) {
    const row *x = a, *y = b;
    for (int j = 0; j < g_nc; j++) {
        if (x->isnum[j] && y->isnum[j]) {
            if (x->num[j] < y->num[j]) return -1;
            if (x->num[j] > y->num[j]) return 1;
            continue;
        }
        int c = strcmp(x->cell[j], y->cell[j]);
        if (c) return c;
    }
    return 0;
}

static void free_rows(row *r, int64_t n, int nc) {
    for (int64_t i = 0; i < n; i++) {
        for (int j = 0; j < nc; j++) free(r[i].cell[j]);
        free(r[i].cell);
        free(r[i].num);
        free(r[i].isnum);
        free(r[i].isnull);
    }
    free(r);
}

/* Compares `got` with the expected CSV; fills why on mismatch. */
static bool same_answer(const pt_table *got, const pt_table *want, char *why, size_t cap) {
    int nc = want->schema->nfields;
    if (got->schema->nfields != nc) {
        snprintf(why, cap, "%d columns, expected %d", got->schema->nfields, nc);
        return false;
    }
    for (int j = 0; j < nc; j++) {
        if (strcmp(got->schema->fields[j].name, want->schema->fields[j].name) != 0) {
            snprintf(why, cap, "column %d is '%s', expected '%s'", j, got->schema->fields[j].name,
                     want->schema->fields[j].name);
            return false;
        }
    }
    if (got->nrows != want->nrows) {
        snprintf(why, cap, "%lld rows, expected %lld", (long long)got->nrows, (long long)want->nrows);
        return false;
    }
    row *a = rows_of(got), *b = rows_of(want);
    g_nc = nc;
    qsort(a, (size_t)got->nrows, sizeof *a, cmp_rows);
    qsort(b, (size_t)want->nrows, sizeof *b, cmp_rows);
    bool ok = true;
    for (int64_t i = 0; i < got->nrows && ok; i++) {
        for (int j = 0; j < nc && ok; j++) {
            if (a[i].isnull[j] != b[i].isnull[j]) {
                ok = false;
            } else if (a[i].isnull[j]) {
                continue;
            } else if (a[i].isnum[j] && b[i].isnum[j]) {
                double x = a[i].num[j], y = b[i].num[j];
                ok = fabs(x - y) <= 1e-9 * fmax(1.0, fmax(fabs(x), fabs(y)));
            } else {
                ok = strcmp(a[i].cell[j], b[i].cell[j]) == 0;
            }
            if (!ok)
                snprintf(why, cap, "sorted row %lld, column '%s': got %s, expected %s", (long long)i,
                         want->schema->fields[j].name, a[i].cell[j], b[i].cell[j]);
        }
    }
    free_rows(a, got->nrows, nc);
    free_rows(b, want->nrows, nc);
    return ok;
}

static const char *data_dir(void) {
    const char *d = getenv("PARTITA_TEST_DATA");
    return d ? d : "tests/data";
}

static void run_suite(const char *kind, const char *const *tables, int ntables, int threads) {
    char path[512];
    snprintf(path, sizeof path, "%s/dbbench/%s.sql", data_dir(), kind);
    char *q[MAXQ];
    int nq = questions(path, q);
    CHECK_MSG(nq > 0, "no questions in %s", path);
    pt_error e;
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = threads;
    pt_ctx *ctx;
    CHECK_OK(pt_ctx_new(&co, &ctx, &e), &e);
    pt_catalog *cat;
    CHECK_OK(pt_catalog_new(ctx, &cat, &e), &e);
    for (int t = 0; t < ntables; t++) {
        snprintf(path, sizeof path, "%s/dbbench/%s", data_dir(), tables[2 * t + 1]);
        pt_frame *f;
        CHECK_OK(pt_frame_read_csv(ctx, path, NULL, &f, &e), &e);
        CHECK_OK(pt_catalog_register(cat, tables[2 * t], f, &e), &e);
        pt_frame_free(f);
    }
    for (int i = 0; i < nq; i++) {
        pt_frame *f;
        pt_table *got, *want;
        CHECK_OK(pt_sql(ctx, cat, q[i], &f, NULL, &e), &e);
        CHECK_OK(pt_frame_collect(f, &got, &e), &e);
        pt_frame_free(f);
        snprintf(path, sizeof path, "%s/dbbench/%s_q%d.csv", data_dir(), kind, i + 1);
        pt_csv_opts o;
        pt_csv_opts_init(&o);
        o.progress = 0;
        CHECK_OK(pt_csv_read(ctx, path, &o, &want, NULL, &e), &e);
        char why[512];
        bool ok = same_answer(got, want, why, sizeof why);
        pt_table_free(got);
        pt_table_free(want);
        CHECK_MSG(ok, "%s q%d (%d threads): %s\n  query: %s", kind, i + 1, threads, why, q[i]);
    }
    for (int i = 0; i < nq; i++) free(q[i]);
    pt_catalog_free(cat);
    pt_ctx_free(ctx);
}

TEST(groupby_questions_match_duckdb) {
    const char *tables[] = {"x", "g1.csv"};
    run_suite("groupby", tables, 1, 2);
    if (pt_test_failed()) return;
    run_suite("groupby", tables, 1, 1);
}

TEST(join_questions_match_duckdb) {
    const char *tables[] = {"x", "j1_x.csv", "small", "j1_small.csv", "medium", "j1_medium.csv",
                            "big", "j1_big.csv"};
    run_suite("join", tables, 4, 2);
}
