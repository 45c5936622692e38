/*
 * bench_join.c - the db-benchmark join questions on J1 data, in memory:
 *
 *   q1  x INNER JOIN small  ON id1
 *   q2  x INNER JOIN medium ON id2
 *   q3  x LEFT  JOIN medium ON id2
 *   q4  x INNER JOIN medium ON id5   (text key, different dictionaries)
 *   q5  x INNER JOIN big    ON id3
 *
 * Usage: bench_join [N (default 1e7)] [runs (default 3)] [questions, e.g.
 * "15" for q1 and q5 (default all)]. The tables are
 * generated once (pt__gen_j1) and split into zero-copy partitions, as
 * pt_frame_from_table does; each question runs `runs` times and the best
 * time is printed with the result's row count and the strategy used.
 * Threads: PARTITA_THREADS (default: all cores).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/frame/join.h"

static pt_table **split(pt_table *t, int64_t np) {
    pt_table **parts = calloc((size_t)np, sizeof *parts);
    for (int64_t p = 0; parts && p < np; p++) {
        int64_t lo = t->nrows * p / np, hi = t->nrows * (p + 1) / np;
        if (pt_table_slice(t, lo, hi - lo, &parts[p], NULL) != PT_OK) return NULL;
    }
    return parts;
}

static const char *strategy(const pt__join_stats *s) {
    static const char *n[] = {"broadcast", "partitioned", "grace"};
    static const char *t[] = {"direct", "dense", "hashed"};
    static char buf[64];
    snprintf(buf, sizeof buf, "%s/%s", n[s->strategy], t[s->table]);
    return buf;
}

int main(int argc, char **argv) {
    int64_t n = argc > 1 ? (int64_t)atof(argv[1]) : 10000000;
    int runs = argc > 2 ? atoi(argv[2]) : 3;
    const char *only = argc > 3 ? argv[3] : "12345";
    if (n < 1 || runs < 1) {
        fprintf(stderr, "usage: bench_join [N] [runs]\n");
        return 2;
    }
    pt_ctx *ctx;
    pt_error err;
    if (pt_ctx_new(NULL, &ctx, &err) != PT_OK) {
        fprintf(stderr, "context: %s\n", err.msg);
        return 1;
    }
    pt_table *x, *small, *medium, *big;
    double t0 = pt_now_s();
    if (pt__gen_j1(ctx, n, 1, &x, &small, &medium, &big, &err) != PT_OK) {
        fprintf(stderr, "gen: %s\n", err.msg);
        return 1;
    }
    printf("J1 N=%lld: x %lld, small %lld, medium %lld, big %lld rows; %d threads; generated in "
           "%.2f s\n",
           (long long)n, (long long)x->nrows, (long long)small->nrows, (long long)medium->nrows,
           (long long)big->nrows, pt_ctx_threads(ctx), pt_now_s() - t0);
    int64_t np = 4 * (int64_t)pt_ctx_threads(ctx);
    pt_table **xp = split(x, np), **bp = split(big, np);
    if (!xp || !bp) return 1;
    struct q {
        const char *name;
        pt_table **rp;
        int64_t nr;
        pt_join_type type;
        int lk, rk;
    } qs[5] = {
        {"q1 x INNER small ON id1", &small, 1, PT_JOIN_INNER, 0, 0},
        {"q2 x INNER medium ON id2", &medium, 1, PT_JOIN_INNER, 1, 1},
        {"q3 x LEFT medium ON id2", &medium, 1, PT_JOIN_LEFT, 1, 1},
        {"q4 x INNER medium ON id5", &medium, 1, PT_JOIN_INNER, 4, 3},
        {"q5 x INNER big ON id3", bp, np, PT_JOIN_INNER, 2, 2},
    };
    double total = 0;
    for (int q = 0; q < 5; q++) {
        if (!strchr(only, '1' + q)) continue;
        double best = 1e30;
        int64_t rows = 0;
        pt__join_stats st;
        for (int r = 0; r < runs; r++) {
            pt_table *out = NULL;
            double s = pt_now_s();
            if (pt__join_ex(ctx, xp, np, qs[q].rp, qs[q].nr, qs[q].type, 1, &qs[q].lk, &qs[q].rk,
                            NULL, &out, &st, &err) != PT_OK) {
                fprintf(stderr, "%s: %s\n", qs[q].name, err.msg);
                return 1;
            }
            double e = pt_now_s() - s;
            if (e < best) best = e;
            rows = out->nrows;
            pt_table_free(out);
        }
        total += best;
        printf("%-28s %8.3f s  %10lld rows  %s\n", qs[q].name, best, (long long)rows,
               strategy(&st));
    }
    printf("%-28s %8.3f s\n", "total (best of each)", total);
    for (int64_t p = 0; p < np; p++) {
        pt_table_free(xp[p]);
        pt_table_free(bp[p]);
    }
    free(xp);
    free(bp);
    pt_table_free(x);
    pt_table_free(small);
    pt_table_free(medium);
    pt_table_free(big);
    pt_ctx_free(ctx);
    return 0;
}
