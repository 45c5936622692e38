/*
 * test_ml_metrics.c - classification and regression metrics (one process)
 * against hand-checked values on tiny examples, against scikit-learn's
 * documented examples, and against straightforward references written
 * here: AUC-ROC by counting every (positive, negative) pair with ties as
 * 1/2, average precision as the mean over positives of the precision at
 * their score, R² by two passes in long double.
 */
#include <stdint.h>

#include "ml/ml_internal.h"
#include "pt_test.h"

/* O(n²) references: no sorting, no curves. */
static double ref_auc_roc(int64_t n, const double *y, const double *s) {
    double num = 0, pairs = 0;
    for (int64_t i = 0; i < n; i++) {
        if (y[i] != 1) continue;
        for (int64_t j = 0; j < n; j++) {
            if (y[j] != 0) continue;
            pairs += 1;
            num += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
        }
    }
    return num / pairs;
}

static double ref_avg_precision(int64_t n, const double *y, const double *s) {
    double sum = 0, pos = 0;
    for (int64_t i = 0; i < n; i++) {
        if (y[i] != 1) continue;
        pos += 1;
        double above = 0, pos_above = 0;
        for (int64_t j = 0; j < n; j++)
            if (s[j] >= s[i]) {
                above += 1;
                pos_above += y[j];
            }
        sum += pos_above / above;
    }
    return sum / pos;
}

TEST(binary_hand_checked) {
    /* scikit-learn's documentation example for roc_auc_score and
     * average_precision_score: 0.75 and 0.8333... */
    double y[] = {0, 0, 1, 1}, s[] = {0.1, 0.4, 0.35, 0.8}, pred[] = {0, 0, 0, 1};
    pt_class_metrics m;
    pt_error err;
    CHECK_OK(pt_metrics_classification(NULL, 4, y, pred, s, 1, 2, &m, &err), &err);
    CHECK_EQ_I(m.n, 4);
    CHECK_EQ_I(m.nclasses, 2);
    CHECK_NEAR(m.auc_roc, 0.75, 1e-15);
    CHECK_NEAR(m.auc_pr, 0.8333333333333333, 1e-15);
    CHECK_NEAR(m.accuracy, 0.75, 1e-15);
    CHECK_NEAR(m.precision, 1.0, 1e-15); /* one predicted positive, right */
    CHECK_NEAR(m.recall, 0.5, 1e-15);
    CHECK_NEAR(m.f1, 2.0 / 3.0, 1e-15);
    double ll = -(log(0.9) + log(0.6) + log(0.35) + log(0.8)) / 4;
    CHECK_NEAR(m.log_loss, ll, 1e-15);
    int64_t conf[4] = {2, 0, 1, 1};
    CHECK(memcmp(m.confusion, conf, sizeof conf) == 0);
    pt_class_metrics_free(&m);
    CHECK(m.confusion == NULL);

    /* The same with two probability columns. */
    double p2[8];
    for (int i = 0; i < 4; i++) {
        p2[2 * i] = 1 - s[i];
        p2[2 * i + 1] = s[i];
    }
    CHECK_OK(pt_metrics_classification(NULL, 4, y, pred, p2, 2, 2, &m, &err), &err);
    CHECK_NEAR(m.auc_roc, 0.75, 1e-15);
    CHECK_NEAR(m.auc_pr, 0.8333333333333333, 1e-15);
    CHECK_NEAR(m.log_loss, ll, 1e-15);
    pt_class_metrics_free(&m);
}

TEST(binary_ties_hand_checked) {
    /* scores 0.8(1) | 0.5(0) 0.5(1) | 0.2(0) 0.2(1): ROC points (0,1/3),
     * (1/2,2/3), (1,1): area = 1/2*(1/3+2/3)/2 + 1/2*(2/3+1)/2 = 2/3.
     * AP = 1/3*1 + 1/3*(2/3) + 1/3*(3/5) = 0.7555... */
    double y[] = {0, 1, 0, 1, 1}, s[] = {0.5, 0.5, 0.2, 0.8, 0.2};
    double pred[] = {1, 1, 0, 1, 0};
    pt_class_metrics m;
    pt_error err;
    CHECK_OK(pt_metrics_classification(NULL, 5, y, pred, s, 1, 0, &m, &err), &err);
    CHECK_EQ_I(m.nclasses, 2);
    CHECK_NEAR(m.auc_roc, 2.0 / 3.0, 1e-15);
    CHECK_NEAR(m.auc_pr, 1.0 / 3 + 2.0 / 9 + 1.0 / 5, 1e-15);
    CHECK_NEAR(m.auc_roc, ref_auc_roc(5, y, s), 1e-15);
    CHECK_NEAR(m.auc_pr, ref_avg_precision(5, y, s), 1e-15);
    /* predicted positives 3 (2 right), actual positives 3 */
    CHECK_NEAR(m.precision, 2.0 / 3, 1e-15);
    CHECK_NEAR(m.recall, 2.0 / 3, 1e-15);
    CHECK_NEAR(m.f1, 2.0 / 3, 1e-15);
    CHECK_NEAR(m.accuracy, 3.0 / 5, 1e-15);
    pt_class_metrics_free(&m);
}

TEST(binary_random_against_pair_counting) {
    enum { N = 700 };
    double *y = malloc(N * sizeof *y), *s = malloc(N * sizeof *s), *pred = malloc(N * 8);
    pt_rng r;
    pt_rng_seed(&r, 11);
    int64_t tp = 0, fp = 0, fn = 0, tn = 0;
    double ll = 0;
    for (int i = 0; i < N; i++) {
        y[i] = pt_rng_uniform(&r) < 0.3 ? 1 : 0;
        /* two decimals: many ties; informative but noisy */
        double raw = 0.35 * y[i] + 0.65 * pt_rng_uniform(&r);
        s[i] = round(raw * 100) / 100;
        if (i % 50 == 0) s[i] = y[i]; /* exact 0 and 1: clipped in the log-loss */
        pred[i] = s[i] >= 0.5 ? 1 : 0;
        tp += y[i] == 1 && pred[i] == 1;
        fp += y[i] == 0 && pred[i] == 1;
        fn += y[i] == 1 && pred[i] == 0;
        tn += y[i] == 0 && pred[i] == 0;
        double p = y[i] == 1 ? s[i] : 1 - s[i];
        p = p < 1e-15 ? 1e-15 : p > 1 - 1e-15 ? 1 - 1e-15 : p;
        ll -= log(p);
    }
    pt_class_metrics m;
    pt_error err;
    CHECK_OK(pt_metrics_classification(NULL, N, y, pred, s, 1, 2, &m, &err), &err);
    CHECK_NEAR(m.auc_roc, ref_auc_roc(N, y, s), 1e-12);
    CHECK_NEAR(m.auc_pr, ref_avg_precision(N, y, s), 1e-12);
    CHECK_NEAR(m.log_loss, ll / N, 1e-12);
    CHECK_EQ_I(m.confusion[0], tn);
    CHECK_EQ_I(m.confusion[1], fp);
    CHECK_EQ_I(m.confusion[2], fn);
    CHECK_EQ_I(m.confusion[3], tp);
    CHECK_NEAR(m.precision, (double)tp / (double)(tp + fp), 1e-15);
    CHECK_NEAR(m.recall, (double)tp / (double)(tp + fn), 1e-15);
    CHECK_NEAR(m.accuracy, (double)(tp + tn) / N, 1e-15);
    pt_class_metrics_free(&m);
    free(y);
    free(s);
    free(pred);
}

TEST(multiclass_weighted_hand_checked) {
    double y[] = {0, 0, 1, 1, 2, 2, 2}, pred[] = {0, 1, 1, 1, 2, 0, 2};
    /* confusion rows (true): [1 1 0] [0 2 0] [1 0 2]
     * precision per class 1/2, 2/3, 1; recall 1/2, 1, 2/3; F1 1/2, 4/5, 4/5;
     * supports 2, 2, 3 */
    double prob[21];
    for (int i = 0; i < 7; i++) {
        int c = (int)pred[i];
        for (int j = 0; j < 3; j++) prob[i * 3 + j] = j == c ? 0.6 : 0.2;
    }
    pt_class_metrics m;
    pt_error err;
    CHECK_OK(pt_metrics_classification(NULL, 7, y, pred, prob, 3, 3, &m, &err), &err);
    CHECK_EQ_I(m.nclasses, 3);
    int64_t conf[9] = {1, 1, 0, 0, 2, 0, 1, 0, 2};
    CHECK(memcmp(m.confusion, conf, sizeof conf) == 0);
    CHECK_NEAR(m.accuracy, 5.0 / 7, 1e-15);
    CHECK_NEAR(m.precision, (2 * 0.5 + 2 * (2.0 / 3) + 3 * 1.0) / 7, 1e-15);
    CHECK_NEAR(m.recall, 5.0 / 7, 1e-15); /* weighted recall == accuracy */
    CHECK_NEAR(m.f1, (2 * 0.5 + 2 * 0.8 + 3 * 0.8) / 7, 1e-15);
    /* 5 rows gave the true class 0.6, 2 rows 0.2 */
    CHECK_NEAR(m.log_loss, -(5 * log(0.6) + 2 * log(0.2)) / 7, 1e-15);
    CHECK(isnan(m.auc_roc) && isnan(m.auc_pr));
    pt_class_metrics_free(&m);
}

TEST(class_count_inferred_from_labels_and_predictions) {
    double y[] = {0, 2, 1}, pred[] = {3, 2, 1};
    pt_class_metrics m;
    pt_error err;
    CHECK_OK(pt_metrics_classification(NULL, 3, y, pred, NULL, 0, 0, &m, &err), &err);
    CHECK_EQ_I(m.nclasses, 4);
    CHECK_EQ_I(m.confusion[0 * 4 + 3], 1);
    CHECK_EQ_I(m.confusion[2 * 4 + 2], 1);
    CHECK_EQ_I(m.confusion[1 * 4 + 1], 1);
    /* class 3 has no support: weight 0; class 0 precision 0 (never
     * predicted), classes 1 and 2 perfect */
    CHECK_NEAR(m.precision, 2.0 / 3, 1e-15);
    CHECK_NEAR(m.recall, 2.0 / 3, 1e-15);
    CHECK(isnan(m.log_loss) && isnan(m.auc_roc) && isnan(m.auc_pr));
    pt_class_metrics_free(&m);
}

TEST(degenerate_cases) {
    pt_class_metrics m;
    pt_error err;
    /* one class only: AUC undefined, no predicted positives: precision 0 */
    double y[] = {0, 0, 0}, pred[] = {0, 0, 0}, s[] = {0.2, 0.1, 0.0};
    CHECK_OK(pt_metrics_classification(NULL, 3, y, pred, s, 1, 2, &m, &err), &err);
    CHECK(isnan(m.auc_roc) && isnan(m.auc_pr));
    CHECK_NEAR(m.accuracy, 1.0, 0);
    CHECK(m.precision == 0 && m.recall == 0 && m.f1 == 0);
    /* a probability of exactly 0 or 1 is clipped at 1e-15 */
    CHECK_NEAR(m.log_loss, -(log(0.8) + log(0.9) + log(1 - 1e-15)) / 3, 1e-15);
    pt_class_metrics_free(&m);
    double y1[] = {1}, p1[] = {0}, s1[] = {0.0};
    CHECK_OK(pt_metrics_classification(NULL, 1, y1, p1, s1, 1, 2, &m, &err), &err);
    CHECK_NEAR(m.log_loss, -log(1e-15), 1e-15);
    CHECK_NEAR(m.auc_pr, 1.0, 0); /* only positives: AP 1, ROC undefined */
    CHECK(isnan(m.auc_roc));
    pt_class_metrics_free(&m);
    /* no rows at all */
    CHECK_OK(pt_metrics_classification(NULL, 0, NULL, NULL, NULL, 1, 2, &m, &err), &err);
    CHECK_EQ_I(m.n, 0);
    CHECK(isnan(m.accuracy) && isnan(m.precision) && isnan(m.log_loss));
    CHECK(m.confusion != NULL && m.confusion[0] == 0 && m.confusion[3] == 0);
    pt_class_metrics_free(&m);
}

TEST(classification_errors) {
    pt_class_metrics m;
    pt_error err;
    double y[] = {0, 2.5, 1}, pred[] = {0, 1, 1}, s[] = {0.1, 0.2, 0.3};
    CHECK(pt_metrics_classification(NULL, 3, y, pred, NULL, 0, 0, &m, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "y[1] = 2.5 is not a class id");
    y[1] = 1;
    pred[2] = -1;
    CHECK(pt_metrics_classification(NULL, 3, y, pred, NULL, 0, 0, &m, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "pred[2] = -1 is not a class id");
    pred[2] = 1;
    y[0] = 2;
    CHECK(pt_metrics_classification(NULL, 3, y, pred, NULL, 0, 2, &m, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "y[0] = 2 is not a class id in 0..1");
    /* a class with no probability column */
    CHECK(pt_metrics_classification(NULL, 3, y, pred, s, 1, 0, &m, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "y[0] = 2 has no column in prob");
    y[0] = NAN;
    CHECK(pt_metrics_classification(NULL, 3, y, pred, NULL, 0, 0, &m, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "y[0] = nan");
    y[0] = 1e9;
    CHECK(pt_metrics_classification(NULL, 3, y, pred, NULL, 0, 0, &m, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "y[0] = 1e+09 is not a class id in 0..4095");
    CHECK(pt_metrics_classification(NULL, -1, y, pred, NULL, 0, 0, &m, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "n must be >= 0");
    CHECK(pt_metrics_classification(NULL, 3, NULL, pred, NULL, 0, 0, &m, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "y is NULL");
    CHECK(pt_metrics_classification(NULL, 3, y, pred, NULL, 0, 0, NULL, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "out is NULL");
}

/* ------------------------------------------------------------------------ */
/* Regression                                                               */
/* ------------------------------------------------------------------------ */

TEST(regression_hand_checked) {
    /* scikit-learn's documentation example: MSE 0.375, MAE 0.5,
     * R² 0.948608137... (= 1 - 1.5 / 29.1875) */
    double y[] = {3, -0.5, 2, 7}, p[] = {2.5, 0.0, 2, 8};
    pt_reg_metrics m;
    pt_error err;
    CHECK_OK(pt_metrics_regression(NULL, 4, y, p, &m, &err), &err);
    CHECK_EQ_I(m.n, 4);
    CHECK_NEAR(m.rmse, sqrt(0.375), 1e-15);
    CHECK_NEAR(m.mae, 0.5, 1e-15);
    CHECK_NEAR(m.r2, 1 - 1.5 / 29.1875, 1e-15);
    CHECK_NEAR(m.r2, 0.9486081370449679, 1e-15);
}

TEST(regression_far_from_zero_against_long_double) {
    enum { N = 5000 };
    double *y = malloc(N * 8), *p = malloc(N * 8);
    pt_rng r;
    pt_rng_seed(&r, 5);
    long double sy = 0;
    for (int i = 0; i < N; i++) {
        y[i] = 1e9 + pt_rng_normal(&r);
        p[i] = y[i] + 0.3 * pt_rng_normal(&r);
        sy += y[i];
    }
    long double mean = sy / N, sst = 0, ssr = 0, sa = 0;
    for (int i = 0; i < N; i++) {
        sst += ((long double)y[i] - mean) * ((long double)y[i] - mean);
        ssr += ((long double)y[i] - p[i]) * ((long double)y[i] - p[i]);
        sa += fabsl((long double)y[i] - p[i]);
    }
    pt_reg_metrics m;
    pt_error err;
    CHECK_OK(pt_metrics_regression(NULL, N, y, p, &m, &err), &err);
    CHECK_NEAR(m.r2, (double)(1 - ssr / sst), 1e-12);
    CHECK_NEAR(m.rmse, (double)sqrtl(ssr / N), 1e-12);
    CHECK_NEAR(m.mae, (double)(sa / N), 1e-12);
    CHECK(m.r2 > 0.85 && m.r2 < 0.95); /* 1 - 0.09 / 1, roughly */
    free(y);
    free(p);
}

TEST(regression_degenerate_and_errors) {
    pt_reg_metrics m;
    pt_error err;
    double y[] = {2, 2, 2}, p[] = {2, 2, 2}, q[] = {1, 2, 3};
    CHECK_OK(pt_metrics_regression(NULL, 3, y, p, &m, &err), &err);
    CHECK(m.r2 == 1.0 && m.rmse == 0 && m.mae == 0);
    CHECK_OK(pt_metrics_regression(NULL, 3, y, q, &m, &err), &err);
    CHECK(m.r2 == 0.0);
    CHECK_NEAR(m.rmse, sqrt(2.0 / 3), 1e-15);
    CHECK_OK(pt_metrics_regression(NULL, 0, NULL, NULL, &m, &err), &err);
    CHECK(m.n == 0 && isnan(m.rmse) && isnan(m.mae) && isnan(m.r2));
    CHECK(pt_metrics_regression(NULL, 3, y, NULL, &m, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "pred is NULL");
    CHECK(pt_metrics_regression(NULL, -2, y, p, &m, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "n must be >= 0 (got -2)");
}
