/*
 * test_mpi_mlmetrics.c - metrics over rows sharded across ranks under
 * `mpirun -n N`: every rank generates the same full data set, computes the
 * one-process metrics on all of it (comm NULL) as the reference, then the
 * distributed metrics on its own uneven shard (rank 1 holds no rows).
 * Counts must match exactly, floats to 1e-12 relative. A bad label on one
 * rank must fail every rank, without a hang. Exit status 0 only if every
 * rank passed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "partita.h"

#include "mpi_check.h"

static int near(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fabs(a - b) <= 1e-12 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

enum { N = 1003 };

/* Rank r's rows are [start(r), start(r + 1)): weights r + 1, except rank 1
 * which gets none, so shards are uneven and one is empty. */
static int64_t shard_start(int r) {
    int64_t w = 0, tot = 0;
    for (int i = 0; i < g_size; i++) {
        int64_t wi = i == 1 ? 0 : i + 1;
        if (i < r) w += wi;
        tot += wi;
    }
    return N * w / tot;
}

static void compare_class(const char *what, const pt_class_metrics *a, const pt_class_metrics *b) {
    EXPECT(a->n == b->n, "%s n %lld vs %lld", what, (long long)a->n, (long long)b->n);
    EXPECT(a->nclasses == b->nclasses, "%s nclasses %d vs %d", what, a->nclasses, b->nclasses);
    if (a->nclasses == b->nclasses)
        EXPECT(memcmp(a->confusion, b->confusion,
                      (size_t)a->nclasses * (size_t)a->nclasses * sizeof(int64_t)) == 0,
               "%s confusion", what);
    EXPECT(near(a->accuracy, b->accuracy), "%s accuracy %.17g vs %.17g", what, a->accuracy, b->accuracy);
    EXPECT(near(a->precision, b->precision), "%s precision %.17g vs %.17g", what, a->precision, b->precision);
    EXPECT(near(a->recall, b->recall), "%s recall %.17g vs %.17g", what, a->recall, b->recall);
    EXPECT(near(a->f1, b->f1), "%s f1 %.17g vs %.17g", what, a->f1, b->f1);
    EXPECT(near(a->log_loss, b->log_loss), "%s log_loss %.17g vs %.17g", what, a->log_loss, b->log_loss);
    EXPECT(near(a->auc_roc, b->auc_roc), "%s auc_roc %.17g vs %.17g", what, a->auc_roc, b->auc_roc);
    EXPECT(near(a->auc_pr, b->auc_pr), "%s auc_pr %.17g vs %.17g", what, a->auc_pr, b->auc_pr);
}

static void test_binary(pt_comm *c) {
    static double y[N], pred[N], s[N];
    pt_rng r;
    pt_rng_seed(&r, 2024);
    for (int i = 0; i < N; i++) {
        y[i] = pt_rng_uniform(&r) < 0.4 ? 1 : 0;
        s[i] = round((0.3 * y[i] + 0.7 * pt_rng_uniform(&r)) * 50) / 50; /* ties */
        pred[i] = s[i] >= 0.5 ? 1 : 0;
    }
    pt_class_metrics ref, got;
    OK(pt_metrics_classification(NULL, N, y, pred, s, 1, 2, &ref, &g_err));
    int64_t a = shard_start(g_rank), b = shard_start(g_rank + 1);
    OK(pt_metrics_classification(c, b - a, y + a, pred + a, s + a, 1, 2, &got, &g_err));
    EXPECT(ref.auc_roc > 0.6 && ref.auc_roc < 1, "auc %g", ref.auc_roc);
    compare_class("binary", &ref, &got);
    pt_class_metrics_free(&ref);
    pt_class_metrics_free(&got);
}

static void test_multiclass(pt_comm *c) {
    enum { K = 4 };
    static double y[N], pred[N], prob[N * K];
    pt_rng r;
    pt_rng_seed(&r, 7);
    for (int i = 0; i < N; i++) {
        y[i] = (double)pt_rng_below(&r, 3);
        double sum = 0;
        for (int j = 0; j < K; j++) {
            prob[i * K + j] = pt_rng_uniform(&r) + (j == (int)y[i] ? 0.8 : 0);
            sum += prob[i * K + j];
        }
        int best = 0;
        for (int j = 0; j < K; j++) {
            prob[i * K + j] /= sum;
            if (prob[i * K + j] > prob[i * K + best]) best = j;
        }
        pred[i] = best;
    }
    /* class 3 appears once, in the last rank's shard: the inferred class
     * count must come from every rank */
    y[N - 1] = 3;
    pt_class_metrics ref, got;
    OK(pt_metrics_classification(NULL, N, y, pred, prob, K, 0, &ref, &g_err));
    int64_t a = shard_start(g_rank), b = shard_start(g_rank + 1);
    OK(pt_metrics_classification(c, b - a, y + a, pred + a, prob + a * K, K, 0, &got, &g_err));
    EXPECT(ref.nclasses == 4, "nclasses %d", ref.nclasses);
    compare_class("multiclass", &ref, &got);
    pt_class_metrics_free(&ref);
    pt_class_metrics_free(&got);
}

static void test_regression(pt_comm *c) {
    static double y[N], p[N];
    pt_rng r;
    pt_rng_seed(&r, 99);
    for (int i = 0; i < N; i++) {
        y[i] = 1e6 + 3 * pt_rng_normal(&r);
        p[i] = y[i] + pt_rng_normal(&r);
    }
    pt_reg_metrics ref, got;
    OK(pt_metrics_regression(NULL, N, y, p, &ref, &g_err));
    int64_t a = shard_start(g_rank), b = shard_start(g_rank + 1);
    OK(pt_metrics_regression(c, b - a, y + a, p + a, &got, &g_err));
    EXPECT(got.n == N, "n %lld", (long long)got.n);
    EXPECT(near(ref.rmse, got.rmse), "rmse %.17g vs %.17g", ref.rmse, got.rmse);
    EXPECT(near(ref.mae, got.mae), "mae %.17g vs %.17g", ref.mae, got.mae);
    EXPECT(near(ref.r2, got.r2), "r2 %.17g vs %.17g", ref.r2, got.r2);
}

static void test_bad_label_on_one_rank(pt_comm *c) {
    double y[3] = {0, 1, 1}, pred[3] = {0, 1, 0};
    int bad = g_size - 1;
    if (g_rank == bad) y[2] = 0.5;
    pt_class_metrics m;
    pt_error e;
    pt_status st = pt_metrics_classification(c, 3, y, pred, NULL, 0, 2, &m, &e);
    EXPECT(st == PT_EINVAL, "status %s", pt_status_name(st));
    if (st == PT_EINVAL) {
        const char *want = g_rank == bad ? "y[2] = 0.5 is not a class id" : "another rank";
        EXPECT(strstr(e.msg, want) != NULL, "message '%s'", e.msg);
    } else if (st == PT_OK) {
        pt_class_metrics_free(&m);
    }
    /* The comm is still usable afterwards. */
    pt_reg_metrics rm;
    OK(pt_metrics_regression(c, 3, y, pred, &rm, &g_err));
    EXPECT(rm.n == 3 * g_size, "n %lld", (long long)rm.n);
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
    test_binary(c);
    if (!pt_comm_failed(c)) test_multiclass(c);
    if (!pt_comm_failed(c)) test_regression(c);
    if (!pt_comm_failed(c)) test_bad_label_on_one_rank(c);
    int64_t fails = g_fail;
    pt_error e2;
    if (pt_comm_failed(c) ||
        pt_comm_allreduce(c, &fails, 1, PT_DTYPE_INT64, PT_REDOP_SUM, &e2) != PT_OK)
        fails = fails ? fails : 1;
    if (g_rank == 0) printf("%d ranks: %lld failures\n", g_size, (long long)fails);
    pt_comm_free(c);
    return fails == 0 && g_fail == 0 ? 0 : 1;
}
