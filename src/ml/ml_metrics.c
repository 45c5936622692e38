/*
 * ml_metrics.c - evaluation metrics over rows spread across ranks:
 * classification (accuracy, precision, recall, F1, log-loss, AUC-ROC,
 * AUC-PR, confusion matrix) and regression (RMSE, MAE, R²).
 *
 * Counts and sums are reduced with allreduce; the AUCs need the order of
 * every score, so the (score, label) pairs are gathered on every rank and
 * the curves computed exactly there (ties as scikit-learn treats them: one
 * curve point per distinct score). Input checks run before the first
 * collective and their outcome travels with it, so a bad value on one rank
 * fails every rank instead of leaving the others waiting in a collective.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml/ml_internal.h"

/* Class ids are dense indexes into a k * k confusion matrix; this bounds
 * it (4096² int64 = 128 MiB) so that a regression target passed by mistake
 * fails clearly instead of allocating terabytes. */
#define METRICS_MAX_CLASSES 4096
/* As scikit-learn's log_loss (before it moved to the dtype's epsilon). */
#define LOGLOSS_EPS 1e-15

/* Neumaier's compensated sum: local sums of many terms then stay accurate
 * to about one rounding, so 1-rank and N-rank results agree closely. */
typedef struct ksum {
    double s, c;
} ksum;
static void ksum_add(ksum *k, double x) {
    double t = k->s + x;
    if (fabs(k->s) >= fabs(x))
        k->c += (k->s - t) + x;
    else
        k->c += (x - t) + k->s;
    k->s = t;
}

static bool multi_rank(pt_comm *comm) { return comm && pt_comm_size(comm) > 1; }

void pt_class_metrics_free(pt_class_metrics *m) {
    if (!m) return;
    pt_free(m->confusion);
    m->confusion = NULL;
}

/* ------------------------------------------------------------------------ */
/* Ranking metrics                                                          */
/* ------------------------------------------------------------------------ */

typedef struct scored {
    double score, label; /* label 0 or 1 */
} scored;

/* Descending score; NaN sorts last so that the order is total. */
static int cmp_score_desc(const void *a, const void *b) {
    double x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    bool xn = isnan(x), yn = isnan(y);
    if (xn || yn) return (int)xn - (int)yn;
    return (x < y) - (x > y);
}

/* AUC-ROC by the trapezoid rule and average precision (sum over distinct
 * thresholds of (R_k - R_{k-1}) * P_k), both with every tied score forming
 * one threshold, as scikit-learn's roc_auc_score and
 * average_precision_score. NaN when a class is absent. Sorts v. */
static void ranking_metrics(scored *v, int64_t n, double *auc_roc, double *auc_pr) {
    if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_score_desc);
    double pos = 0;
    for (int64_t i = 0; i < n; i++) pos += v[i].label;
    double neg = (double)n - pos;
    *auc_roc = NAN;
    *auc_pr = NAN;
    if (pos == 0) return;
    double tp = 0, fp = 0, area = 0, ap = 0;
    for (int64_t i = 0; i < n;) {
        double tp0 = tp, fp0 = fp;
        int64_t j = i;
        while (j < n && cmp_score_desc(&v[i], &v[j]) == 0) {
            tp += v[j].label;
            fp += 1 - v[j].label;
            j++;
        }
        area += (fp - fp0) * (tp + tp0) * 0.5;
        ap += (tp - tp0) / pos * (tp / (tp + fp));
        i = j;
    }
    if (neg > 0) *auc_roc = area / (pos * neg);
    *auc_pr = ap;
}

/* ------------------------------------------------------------------------ */
/* Classification                                                           */
/* ------------------------------------------------------------------------ */

/* Checks that v is a usable class id below `limit`. */
static bool class_id(double v, int limit, int64_t *id) {
    if (!(v >= 0) || v >= limit || v != floor(v)) return false;
    *id = (int64_t)v;
    return true;
}

/* The probability the model gave the true class of row i. */
static double prob_of_true(const double *prob, int ncols, int64_t i, int64_t y) {
    if (ncols == 1) return y == 1 ? prob[i] : 1.0 - prob[i];
    return prob[i * ncols + y];
}

/* Local checks of the classification inputs; fills err and returns false
 * on the first problem. Also finds the largest class id. */
static bool check_class_inputs(int64_t n, const double *y, const double *pred,
                               const double *prob, int ncols, int nclasses, int64_t *maxid,
                               pt_error *err) {
    if (n < 0) {
        pt_error_set(err, PT_EINVAL, "metrics: n must be >= 0 (got %lld)", (long long)n);
        return false;
    }
    if (n > 0 && (!y || !pred)) {
        pt_error_set(err, PT_EINVAL, "metrics: %s is NULL", !y ? "y" : "pred");
        return false;
    }
    if (prob && n > 0 && ncols < 1) {
        pt_error_set(err, PT_EINVAL, "metrics: ncols must be >= 1 with prob (got %d)", ncols);
        return false;
    }
    if (nclasses > METRICS_MAX_CLASSES) {
        pt_error_set(err, PT_EINVAL, "metrics: nclasses %d exceeds the supported %d", nclasses,
                     METRICS_MAX_CLASSES);
        return false;
    }
    int limit = nclasses > 0 ? nclasses : METRICS_MAX_CLASSES;
    *maxid = -1;
    for (int64_t i = 0; i < n; i++) {
        int64_t a, b;
        if (!class_id(y[i], limit, &a) || !class_id(pred[i], limit, &b)) {
            bool bad_y = !class_id(y[i], limit, &a);
            double v = bad_y ? y[i] : pred[i];
            pt_error_set(err, PT_EINVAL, "metrics: %s[%lld] = %g is not a class id in 0..%d",
                         bad_y ? "y" : "pred", (long long)i, v, limit - 1);
            return false;
        }
        if (a > *maxid) *maxid = a;
        if (b > *maxid) *maxid = b;
        if (prob && ((ncols == 1 && a > 1) || (ncols > 1 && a >= ncols))) {
            pt_error_set(err, PT_EINVAL,
                         "metrics: y[%lld] = %lld has no column in prob (%d column%s)",
                         (long long)i, (long long)a, ncols, ncols == 1 ? ": P(y=1)" : "s");
            return false;
        }
    }
    return true;
}

pt_status pt_metrics_classification(pt_comm *comm, int64_t n, const double *y,
                                    const double *pred, const double *prob, int ncols,
                                    int nclasses, pt_class_metrics *out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "metrics: out is NULL");
    memset(out, 0, sizeof *out);
    bool multi = multi_rank(comm);

    /* 1. checks, class count and whether every rank has probabilities */
    int64_t flags[3] = {-1, 0, 0}; /* max class id, bad input, prob missing */
    pt_error local;
    local.code = PT_OK;
    local.msg[0] = '\0';
    if (!check_class_inputs(n, y, pred, prob, ncols, nclasses, &flags[0], &local)) flags[1] = 1;
    flags[2] = (!prob && n > 0) ? 1 : 0;
    if (multi)
        PT_RETURN_NOT_OK(
            pt_comm_allreduce(comm, flags, 3, PT_DTYPE_INT64, PT_REDOP_MAX, err));
    if (flags[1]) {
        if (local.code != PT_OK) {
            if (err) *err = local;
            return local.code;
        }
        return pt_error_set(err, PT_EINVAL, "metrics: invalid input on another rank");
    }
    int k = nclasses > 0 ? nclasses : (int)(flags[0] + 1);
    bool have_prob = flags[2] == 0;

    /* 2. confusion matrix and log-loss sum */
    int64_t *conf = pt_calloc((size_t)k * (size_t)k + 1, sizeof *conf);
    if (!conf) return pt_error_set(err, PT_ENOMEM, "metrics: out of memory for %d classes", k);
    ksum ll = {0, 0};
    for (int64_t i = 0; i < n; i++) {
        int64_t a = (int64_t)y[i], b = (int64_t)pred[i];
        conf[a * k + b]++;
        if (have_prob) {
            double p = prob_of_true(prob, ncols, i, a);
            if (p < LOGLOSS_EPS) p = LOGLOSS_EPS; /* NaN stays NaN */
            if (p > 1 - LOGLOSS_EPS) p = 1 - LOGLOSS_EPS;
            ksum_add(&ll, -log(p));
        }
    }
    double llsum[2] = {ll.s, ll.c};
    pt_status st = PT_OK;
    if (multi) {
        st = pt_comm_allreduce(comm, conf, (int64_t)k * k, PT_DTYPE_INT64, PT_REDOP_SUM, err);
        if (st == PT_OK && have_prob)
            st = pt_comm_allreduce(comm, llsum, 2, PT_DTYPE_FLOAT64, PT_REDOP_SUM, err);
        if (st != PT_OK) {
            pt_free(conf);
            return st;
        }
    }
    int64_t total = 0, correct = 0;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            total += conf[(int64_t)a * k + b];
            if (a == b) correct += conf[(int64_t)a * k + b];
        }
    out->n = total;
    out->nclasses = k;
    out->confusion = conf;
    double nt = (double)total;
    out->accuracy = total ? (double)correct / nt : NAN;
    out->log_loss = total && have_prob ? (llsum[0] + llsum[1]) / nt : NAN;

    /* 3. precision / recall / F1: of class 1 when binary, else weighted by
     * support as MLlib's weightedPrecision etc.; an empty denominator
     * gives 0, as both MLlib and scikit-learn do. */
    if (total == 0) {
        out->precision = out->recall = out->f1 = NAN;
    } else {
        double wp = 0, wr = 0, wf = 0;
        for (int c = 0; c < k; c++) {
            if (k == 2 && c != 1) continue;
            double tp = (double)conf[(int64_t)c * k + c], support = 0, predicted = 0;
            for (int j = 0; j < k; j++) {
                support += (double)conf[(int64_t)c * k + j];
                predicted += (double)conf[(int64_t)j * k + c];
            }
            double p = predicted > 0 ? tp / predicted : 0;
            double r = support > 0 ? tp / support : 0;
            double f = p + r > 0 ? 2 * p * r / (p + r) : 0;
            double w = k == 2 ? 1.0 : support / nt;
            wp += w * p;
            wr += w * r;
            wf += w * f;
        }
        out->precision = wp;
        out->recall = wr;
        out->f1 = wf;
    }

    /* 4. ranking metrics over every rank's (score, label) pairs */
    out->auc_roc = out->auc_pr = NAN;
    if (k != 2 || !have_prob) return PT_OK;
    scored *mine = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof *mine);
    if (!mine) {
        pt_class_metrics_free(out);
        return pt_error_set(err, PT_ENOMEM, "metrics: out of memory for %lld scores",
                            (long long)n);
    }
    for (int64_t i = 0; i < n; i++) {
        mine[i].score = ncols == 1 ? prob[i] : prob[i * ncols + 1];
        mine[i].label = y[i];
    }
    scored *all = mine;
    int64_t nall = n;
    if (multi) {
        int size = pt_comm_size(comm);
        int64_t *counts = pt_malloc((size_t)size * sizeof *counts);
        void *recv = NULL;
        st = counts ? pt_comm_allgatherv(comm, mine, n * (int64_t)sizeof *mine, &recv, counts,
                                         err)
                    : pt_error_set(err, PT_ENOMEM, "metrics: out of memory");
        pt_free(counts);
        pt_free(mine);
        if (st != PT_OK) {
            pt_class_metrics_free(out);
            return st;
        }
        all = recv;
        nall = total;
    }
    ranking_metrics(all, nall, &out->auc_roc, &out->auc_pr);
    pt_free(all);
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Regression                                                               */
/* ------------------------------------------------------------------------ */

pt_status pt_metrics_regression(pt_comm *comm, int64_t n, const double *y, const double *pred,
                                pt_reg_metrics *out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "metrics: out is NULL");
    memset(out, 0, sizeof *out);
    bool multi = multi_rank(comm);
    pt_error local;
    local.code = PT_OK;
    local.msg[0] = '\0';
    if (n < 0)
        pt_error_set(&local, PT_EINVAL, "metrics: n must be >= 0 (got %lld)", (long long)n);
    else if (n > 0 && (!y || !pred))
        pt_error_set(&local, PT_EINVAL, "metrics: %s is NULL", !y ? "y" : "pred");

    /* Two passes (mean, then squared deviations) rather than one pass of
     * sums of squares, which loses R² to cancellation when the labels sit
     * far from zero. */
    ksum sy = {0, 0};
    if (local.code == PT_OK)
        for (int64_t i = 0; i < n; i++) ksum_add(&sy, y[i]);
    double a[4] = {local.code == PT_OK ? (double)n : 0, sy.s, sy.c,
                   local.code != PT_OK ? 1.0 : 0.0};
    if (multi) PT_RETURN_NOT_OK(pt_comm_allreduce(comm, a, 4, PT_DTYPE_FLOAT64, PT_REDOP_SUM, err));
    if (a[3] != 0) {
        if (local.code != PT_OK) {
            if (err) *err = local;
            return local.code;
        }
        return pt_error_set(err, PT_EINVAL, "metrics: invalid input on another rank");
    }
    double nt = a[0], mean = nt > 0 ? (a[1] + a[2]) / nt : 0;
    ksum tot = {0, 0}, res = {0, 0}, abs_ = {0, 0};
    for (int64_t i = 0; i < n; i++) {
        double d = y[i] - mean, e = y[i] - pred[i];
        ksum_add(&tot, d * d);
        ksum_add(&res, e * e);
        ksum_add(&abs_, fabs(e));
    }
    double b[6] = {tot.s, tot.c, res.s, res.c, abs_.s, abs_.c};
    if (multi) PT_RETURN_NOT_OK(pt_comm_allreduce(comm, b, 6, PT_DTYPE_FLOAT64, PT_REDOP_SUM, err));
    out->n = (int64_t)nt;
    if (nt == 0) {
        out->rmse = out->mae = out->r2 = NAN;
        return PT_OK;
    }
    double sst = b[0] + b[1], ssr = b[2] + b[3];
    out->rmse = sqrt(ssr / nt);
    out->mae = (b[4] + b[5]) / nt;
    /* Constant labels: scikit-learn's r2_score convention (1 for a perfect
     * fit, else 0) rather than a division by zero. */
    out->r2 = sst > 0 ? 1.0 - ssr / sst : (ssr == 0 ? 1.0 : 0.0);
    return PT_OK;
}
