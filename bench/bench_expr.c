/*
 * bench_expr.c - throughput of the expression engine on G1 data: filter
 * masks (the common WHERE), arithmetic, dictionary comparisons and text
 * functions, single-threaded over one batch, best of several runs.
 *
 * Usage: bench_expr [rows] (default 1e7).
 */
#include <stdio.h>
#include <stdlib.h>

#include "../src/frame/expr.h"

/* Best time of `reps` runs over the batches (one batch = the whole table,
 * or morsels as the executor feeds them). */
static double best_of(int reps, const pt__bound *b, pt_table *const *parts, int64_t nparts,
                      int64_t rows, bool mask_mode, int64_t *keep, pt_error *err) {
    double best = 1e30;
    uint8_t *mask = malloc((size_t)rows);
    for (int r = 0; r < reps; r++) {
        double t0 = pt_now_s();
        int64_t total = 0;
        for (int64_t p = 0; p < nparts; p++) {
            if (mask_mode) {
                int64_t k;
                if (pt__expr_eval_mask(b, parts[p], mask, &k, err) != PT_OK) return -1;
                total += k;
            } else {
                pt_column *c;
                if (pt__expr_eval(b, parts[p], NULL, &c, err) != PT_OK) return -1;
                pt_column_release(c);
            }
        }
        double dt = pt_now_s() - t0;
        if (dt < best) best = dt;
        *keep = mask_mode ? total : -1;
    }
    free(mask);
    return best;
}

int main(int argc, char **argv) {
    int64_t rows = argc > 1 ? atoll(argv[1]) : 10000000;
    pt_error err;
    pt_ctx *ctx;
    pt_table *t;
    if (pt_ctx_new(NULL, &ctx, &err) || pt_gen_g1(ctx, rows, 100, 0, 42, &t, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    struct {
        const char *name;
        pt_expr *e;
        bool mask;
    } cases[] = {
        {"mask  v3 > 50", pt_binary(PT_OP_GT, pt_col("v3"), pt_lit_i64(50)), true},
        {"mask  v1 = 3 AND v3 < 50",
         pt_binary(PT_OP_AND, pt_binary(PT_OP_EQ, pt_col("v1"), pt_lit_i64(3)),
                   pt_binary(PT_OP_LT, pt_col("v3"), pt_lit_i64(50))),
         true},
        {"mask  id1 = 'id042' (dict)", pt_binary(PT_OP_EQ, pt_col("id1"), pt_lit_str("id042")), true},
        {"mask  id3 < 'id0000050000' (utf8)", pt_binary(PT_OP_LT, pt_col("id3"), pt_lit_str("id0000050000")), true},
        {"eval  v3 > 50 (bool column)", pt_binary(PT_OP_GT, pt_col("v3"), pt_lit_i64(50)), false},
        {"eval  v1 + v2 (checked int64)", pt_binary(PT_OP_ADD, pt_col("v1"), pt_col("v2")), false},
        {"eval  v3 * 2.5 + v1", pt_binary(PT_OP_ADD, pt_binary(PT_OP_MUL, pt_col("v3"), pt_lit_f64(2.5)), pt_col("v1")), false},
        {"eval  v3 / v2", pt_binary(PT_OP_DIV, pt_col("v3"), pt_col("v2")), false},
        {"eval  lower(id1) (dict)", pt_call("lower", 1, (pt_expr *[]){pt_col("id1")}), false},
    };
    int ncases = (int)(sizeof cases / sizeof cases[0]);
    const int64_t morsel = 65536;
    int64_t nparts = (rows + morsel - 1) / morsel;
    pt_table **parts = calloc((size_t)nparts, sizeof *parts);
    for (int64_t p = 0; p < nparts; p++) {
        int64_t len = p == nparts - 1 ? rows - p * morsel : morsel;
        if (pt_table_slice(t, p * morsel, len, &parts[p], &err)) {
            fprintf(stderr, "slice: %s\n", err.msg);
            return 1;
        }
    }
    printf("bench_expr: %lld rows, 1 thread, best of 5; one batch / morsels of %lld rows\n",
           (long long)rows, (long long)morsel);
    for (int k = 0; k < ncases; k++) {
        pt__bound *b;
        if (pt__expr_bind(cases[k].e, t->schema, &b, &err)) {
            fprintf(stderr, "%s: %s\n", cases[k].name, err.msg);
            return 1;
        }
        int64_t keep = -1, keep2 = -1;
        double s1 = best_of(5, b, &t, 1, rows, cases[k].mask, &keep, &err);
        double s2 = s1 < 0 ? -1 : best_of(5, b, parts, nparts, rows, cases[k].mask, &keep2, &err);
        if (s1 < 0 || s2 < 0 || keep != keep2) {
            fprintf(stderr, "%s: %s\n", cases[k].name, keep != keep2 ? "morsels disagree" : err.msg);
            return 1;
        }
        printf("%-36s %8.2f ms %6.0f Mrows/s | %8.2f ms %6.0f Mrows/s", cases[k].name, s1 * 1e3,
               rows / s1 / 1e6, s2 * 1e3, rows / s2 / 1e6);
        if (keep >= 0) printf("  (%lld kept)", (long long)keep);
        printf("\n");
        pt__bound_free(b);
        pt_expr_free(cases[k].e);
    }
    for (int64_t p = 0; p < nparts; p++) pt_table_free(parts[p]);
    free(parts);
    pt_table_free(t);
    pt_ctx_free(ctx);
    return 0;
}
