/*
 * bench_sort.c - the sort kernel on the db-benchmark G1 data: a full sort by
 * v3 (every column reordered, the query DuckDB does in 2.0 s on 2 threads),
 * by id3 (text), and by id1 then v3 descending; plus top-10 by v3.
 *
 * usage: bench_sort [rows (1e7)] [partitions (1)] [repeats (3)]
 * The table is generated in memory once and cut into zero-copy slices, as
 * the planner does. Prints every time and the best in seconds, with the
 * least CPU time (user + system, all threads) of a run.
 * BENCH_SORT_QUERY=i runs only query i (0-based).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "frame/sort.h"
#include "partita.h"

/* CPU seconds of the process (all threads): on a shared machine, wall time
 * says as much about the neighbours as about the code. */
static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static int die(const char *what, const pt_error *e) {
    fprintf(stderr, "bench_sort: %s: %s\n", what, e->msg);
    return 1;
}

int main(int argc, char **argv) {
    int64_t rows = argc > 1 ? (int64_t)atof(argv[1]) : 10000000;
    int64_t nparts = argc > 2 ? atoll(argv[2]) : 1;
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    if (rows < 1 || nparts < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_sort [rows] [partitions] [repeats]\n");
        return 2;
    }
    pt_error e;
    pt_ctx *ctx;
    if (pt_ctx_new(NULL, &ctx, &e)) return die("context", &e);
    pt_table *t;
    double t0 = pt_now_s();
    if (pt_gen_g1(ctx, rows, 100, 0, 1, &t, &e)) return die("pt_gen_g1", &e);
    printf("G1 %lld rows generated in %.2f s, %d threads, %lld partitions\n", (long long)rows,
           pt_now_s() - t0, pt_ctx_threads(ctx), (long long)nparts);
    pt_table **parts = malloc((size_t)nparts * sizeof *parts);
    for (int64_t p = 0; p < nparts; p++) {
        int64_t a = rows * p / nparts, b = rows * (p + 1) / nparts;
        if (pt_table_slice(t, a, b - a, &parts[p], &e)) return die("slice", &e);
    }
    int id1 = pt_schema_find(t->schema, "id1"), id3 = pt_schema_find(t->schema, "id3");
    int v3 = pt_schema_find(t->schema, "v3");
    struct {
        const char *name;
        int nkeys;
        pt__sort_key keys[2];
        int64_t topn;
    } qs[] = {
        {"sort by v3 (all columns)", 1, {{v3, false}}, -1},
        {"sort by id3", 1, {{id3, false}}, -1},
        {"sort by id1, v3 desc", 2, {{id1, false}, {v3, true}}, -1},
        {"top 10 by v3 desc", 1, {{v3, true}}, 10},
    };
    const char *only = getenv("BENCH_SORT_QUERY"); /* run one query (0-based) */
    for (size_t q = 0; q < sizeof qs / sizeof *qs; q++) {
        if (only && *only && (size_t)atoi(only) != q) continue;
        double best = 1e30, best_cpu = 1e30;
        printf("%-28s", qs[q].name);
        for (int r = 0; r < reps; r++) {
            pt_table *out;
            double s = pt_now_s(), c0 = cpu_s();
            pt_status st = qs[q].topn >= 0
                               ? pt__sort_topn(ctx, parts, nparts, qs[q].nkeys, qs[q].keys,
                                               qs[q].topn, &out, &e)
                               : pt__sort(ctx, parts, nparts, qs[q].nkeys, qs[q].keys, &out, &e);
            double dt = pt_now_s() - s, dc = cpu_s() - c0;
            if (st) return die(qs[q].name, &e);
            if (out->nrows != (qs[q].topn >= 0 ? qs[q].topn : rows)) {
                fprintf(stderr, "bench_sort: %s: %lld rows out\n", qs[q].name, (long long)out->nrows);
                return 1;
            }
            pt_table_free(out);
            if (dt < best) best = dt;
            if (dc < best_cpu) best_cpu = dc;
            printf(" %7.3f", dt);
            fflush(stdout);
        }
        printf("   best %.3f s (cpu %.3f s)\n", best, best_cpu);
    }
    for (int64_t p = 0; p < nparts; p++) pt_table_free(parts[p]);
    free(parts);
    pt_table_free(t);
    pt_ctx_free(ctx);
    return 0;
}
