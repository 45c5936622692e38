/*
 * bench_groupby.c - the db-benchmark group-by questions on G1 data, run
 * straight through the group-by kernel (no planner), to measure the kernel
 * itself. q8 (largest two v3 per id6) is not a pure group-by and is left
 * out; q7 and q9 finish with the arithmetic on the (small) result.
 *
 * usage: bench_groupby [rows=1e7] [threads=all] [repeats=3]
 * Prints one line per question: best wall seconds of the repeats, best CPU
 * seconds (all threads), groups.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/frame/groupby.h"
#include "partita.h"

/* CPU seconds of the whole process: on a shared machine, wall time
 * measures the neighbours too; CPU time / threads is the time the run
 * would take with the cores to itself. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

enum { ID1, ID2, ID3, ID4, ID5, ID6, V1, V2, V3 };

typedef struct question {
    const char *name;
    int nkeys;
    int keys[6];
    int naggs;
    pt__agg_spec aggs[3];
} question;

#define AG(k, c) {k, c, -1}
static const question qs[] = {
    {"q1 sum v1 by id1", 1, {ID1}, 1, {AG(PT_AGG_SUM, V1)}},
    {"q2 sum v1 by id1:id2", 2, {ID1, ID2}, 1, {AG(PT_AGG_SUM, V1)}},
    {"q3 sum v1 mean v3 by id3", 1, {ID3}, 2, {AG(PT_AGG_SUM, V1), AG(PT_AGG_MEAN, V3)}},
    {"q4 mean v1:v3 by id4", 1, {ID4}, 3, {AG(PT_AGG_MEAN, V1), AG(PT_AGG_MEAN, V2), AG(PT_AGG_MEAN, V3)}},
    {"q5 sum v1:v3 by id6", 1, {ID6}, 3, {AG(PT_AGG_SUM, V1), AG(PT_AGG_SUM, V2), AG(PT_AGG_SUM, V3)}},
    {"q6 median v3 sd v3 by id4 id5", 2, {ID4, ID5}, 2, {AG(PT_AGG_MEDIAN, V3), AG(PT_AGG_STD, V3)}},
    {"q7 max v1 - min v2 by id3", 1, {ID3}, 2, {AG(PT_AGG_MAX, V1), AG(PT_AGG_MIN, V2)}},
    {"q9 regression v1 v2 by id2 id4", 2, {ID2, ID4}, 1, {{PT_AGG_CORR, V1, V2}}},
    {"q10 sum v3 count by id1:id6", 6, {ID1, ID2, ID3, ID4, ID5, ID6}, 2,
     {AG(PT_AGG_SUM, V3), AG(PT_AGG_COUNT_STAR, -1)}},
};

/* The post-processing of q7 and q9 (a pass over the result). */
static void finish_question(int q, pt_table *r) {
    if (q == 6) {
        const int64_t *mx = pt_column_i64(r->cols[1]), *mn = pt_column_i64(r->cols[2]);
        volatile int64_t sink = 0;
        for (int64_t i = 0; i < r->nrows; i++) sink += mx[i] - mn[i];
    } else if (q == 7) {
        const double *c = pt_column_f64(r->cols[2]);
        volatile double sink = 0;
        for (int64_t i = 0; i < r->nrows; i++) sink += c[i] * c[i];
    }
}

int main(int argc, char **argv) {
    int64_t rows = argc > 1 ? (int64_t)atof(argv[1]) : 10000000;
    int threads = argc > 2 ? atoi(argv[2]) : 0;
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    const char *only = argc > 4 ? argv[4] : NULL;
    pt_ctx_opts o;
    pt_ctx_opts_init(&o);
    o.threads = threads;
    pt_ctx *ctx;
    pt_error e;
    if (pt_ctx_new(&o, &ctx, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    double t0 = pt_now_s();
    pt_table *t;
    if (pt_gen_g1(ctx, rows, 100, 0, 1, &t, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    printf("G1 %lld rows generated in %.2f s; %d threads\n", (long long)rows, pt_now_s() - t0,
           pt_ctx_threads(ctx));
    /* Zero-copy partitions, as the planner makes of an in-memory table. */
    int64_t nparts = 4 * pt_ctx_threads(ctx);
    pt_table **parts = malloc(sizeof *parts * (size_t)nparts);
    for (int64_t p = 0; p < nparts; p++) {
        int64_t a = rows * p / nparts, b = rows * (p + 1) / nparts;
        if (pt_table_slice(t, a, b - a, &parts[p], &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
    }
    double total = 0;
    for (int q = 0; q < (int)(sizeof qs / sizeof qs[0]); q++) {
        if (only && !strstr(qs[q].name, only)) continue;
        double best = 1e30, best_cpu = 1e30;
        int64_t groups = 0;
        for (int r = 0; r < reps; r++) {
            double s = pt_now_s(), c0 = cpu_s();
            pt_table *res;
            if (pt__groupby(ctx, parts, nparts, qs[q].nkeys, qs[q].keys, qs[q].naggs, qs[q].aggs,
                            &res, &e)) {
                fprintf(stderr, "%s: %s\n", qs[q].name, e.msg);
                return 1;
            }
            finish_question(q, res);
            double dt = pt_now_s() - s, dc = cpu_s() - c0;
            if (dt < best) best = dt;
            if (dc < best_cpu) best_cpu = dc;
            groups = res->nrows;
            pt_table_free(res);
        }
        total += best;
        printf("%-34s %8.3f s wall %8.3f s cpu  %10lld groups\n", qs[q].name, best, best_cpu,
               (long long)groups);
        fflush(stdout);
    }
    printf("%-34s %8.3f s\n", "total", total);
    for (int64_t p = 0; p < nparts; p++) pt_table_free(parts[p]);
    free(parts);
    pt_table_free(t);
    pt_ctx_free(ctx);
    return 0;
}
