/*
 * test_ml_gen.c - the synthetic training sets of ml_gen.c: the same file
 * for any thread count, the text parsed back here with strtod equal to the
 * rows, and the statistics of each kind checked against closed forms (the
 * Bayes accuracy of the logistic model by numerical integration, the noise
 * of the regression, the spread of the blobs), plus the error messages.
 */
#include <stdint.h>

#include "pt_test.h"

static char *slurp(const char *path, int64_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = '\0';
    fclose(f);
    *len = n;
    return buf;
}

static pt_status write_with_threads(const pt_gen_ml_opts *o, int threads, const char *path,
                                    int64_t *bytes, pt_error *err) {
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = threads;
    pt_ctx *ctx;
    PT_RETURN_NOT_OK(pt_ctx_new(&co, &ctx, err));
    pt_status s = pt_gen_ml_write(ctx, o, path, bytes, err);
    pt_ctx_free(ctx);
    return s;
}

/* Parses a libsvm line "label i:v ..." into y and dense x (zeros where
 * omitted); returns the pointer after the line, or NULL on a bad line. */
static const char *parse_libsvm_line(const char *p, int64_t d, double *x, double *y) {
    char *end;
    *y = strtod(p, &end);
    if (end == p) return NULL;
    p = end;
    for (int64_t j = 0; j < d; j++) x[j] = 0;
    int64_t last = 0;
    while (*p == ' ') {
        long long idx = strtoll(p + 1, &end, 10);
        if (*end != ':' || idx <= last || idx > d) return NULL;
        last = idx;
        x[idx - 1] = strtod(end + 1, &end);
        p = end;
    }
    return *p == '\n' ? p + 1 : NULL;
}

TEST(gen_same_file_any_thread_count) {
    pt_error err;
    pt_gen_ml_opts o;
    pt_gen_ml_opts_init(&o, PT_GEN_ML_CLASSIFY);
    o.rows = 20011; /* not a multiple of any chunk size */
    o.features = 7;
    const char *a = pt_test_tmp("a.svm"), *b = pt_test_tmp("b.svm");
    int64_t na = 0, nb = 0, la, lb;
    CHECK_OK(write_with_threads(&o, 1, a, &na, &err), &err);
    CHECK_OK(write_with_threads(&o, 3, b, &nb, &err), &err);
    char *ta = slurp(a, &la), *tb = slurp(b, &lb);
    CHECK(ta && tb);
    CHECK_EQ_I(la, na);
    CHECK_EQ_I(lb, nb);
    CHECK(la == lb && memcmp(ta, tb, (size_t)la) == 0);
    free(ta);
    free(tb);
    /* Another seed gives another file. */
    o.seed = 43;
    CHECK_OK(write_with_threads(&o, 2, b, &nb, &err), &err);
    ta = slurp(a, &la);
    tb = slurp(b, &lb);
    CHECK(ta && tb);
    CHECK(la != lb || memcmp(ta, tb, (size_t)la) != 0);
    free(ta);
    free(tb);
}

TEST(gen_text_parses_back_to_the_rows) {
    pt_error err;
    for (int csv = 0; csv < 2; csv++) {
        pt_gen_ml_opts o;
        pt_gen_ml_opts_init(&o, PT_GEN_ML_REGRESS);
        o.rows = 500;
        o.features = 5;
        o.csv = csv;
        const char *path = pt_test_tmp(csv ? "r.csv" : "r.svm");
        CHECK_OK(write_with_threads(&o, 2, path, NULL, &err), &err);
        double *truth;
        int64_t nt;
        CHECK_OK(pt_gen_ml_truth(&o, &truth, &nt, &err), &err);
        CHECK_EQ_I(nt, 6);
        int64_t len;
        char *text = slurp(path, &len);
        CHECK(text);
        const char *p = text;
        if (csv) {
            CHECK(strncmp(p, "label,x1,x2,x3,x4,x5\n", 21) == 0);
            p += 21;
        }
        for (int64_t r = 0; r < o.rows; r++) {
            double x[5], y, gx[5], gy;
            if (csv) {
                char *end;
                y = strtod(p, &end);
                for (int j = 0; j < 5; j++) {
                    CHECK(*end == ',');
                    x[j] = strtod(end + 1, &end);
                }
                CHECK(*end == '\n');
                p = end + 1;
            } else {
                p = parse_libsvm_line(p, 5, x, &y);
                CHECK_MSG(p != NULL, "bad libsvm line %lld", (long long)r + 1);
            }
            pt_gen_ml_row(&o, truth, r, gx, &gy);
            CHECK_MSG(y == gy, "row %lld label %.17g vs %.17g", (long long)r, y, gy);
            for (int j = 0; j < 5; j++)
                CHECK_MSG(x[j] == gx[j], "row %lld x%d %.17g vs %.17g", (long long)r, j, x[j],
                          gx[j]);
        }
        CHECK(*p == '\0');
        free(text);
        pt_free(truth);
    }
}

/* E[max(p, 1-p)] for p = sigmoid(m), m ~ N(0, s^2): the accuracy of the
 * true model, by Simpson's rule over [0, 10 s] of 2 phi(z/s)/s sigmoid(z). */
static double bayes_accuracy(double s) {
    int n = 20000;
    double h = 10 * s / n, sum = 0;
    for (int i = 0; i <= n; i++) {
        double z = i * h;
        double f = 2 * exp(-0.5 * (z / s) * (z / s)) / (s * sqrt(2 * M_PI)) / (1 + exp(-z));
        sum += f * (i == 0 || i == n ? 1 : i % 2 ? 4 : 2);
    }
    return sum * h / 3;
}

TEST(gen_classify_statistics) {
    pt_gen_ml_opts o;
    pt_gen_ml_opts_init(&o, PT_GEN_ML_CLASSIFY);
    o.features = 12;
    double *w;
    int64_t nw;
    pt_error err;
    CHECK_OK(pt_gen_ml_truth(&o, &w, &nw, &err), &err);
    CHECK_EQ_I(nw, 12);
    double norm = 0;
    for (int j = 0; j < 12; j++) norm += w[j] * w[j];
    CHECK(fabs(sqrt(norm) - 3.0) < 1e-12);
    int64_t n = 40000, agree = 0, ones = 0;
    double sx = 0, sxx = 0;
    for (int64_t r = 0; r < n; r++) {
        double x[12], y, m = 0;
        pt_gen_ml_row(&o, w, r, x, &y);
        for (int j = 0; j < 12; j++) m += w[j] * x[j], sx += x[j], sxx += x[j] * x[j];
        CHECK(y == 0 || y == 1);
        ones += y == 1;
        agree += (m > 0) == (y == 1);
    }
    double bayes = bayes_accuracy(3.0);
    CHECK(fabs(bayes - 0.836) < 0.002); /* the documented target */
    double acc = (double)agree / n;
    /* binomial sd of the estimate is about 0.002 */
    CHECK_MSG(fabs(acc - bayes) < 0.01, "accuracy of the true model %.4f, Bayes %.4f", acc,
              bayes);
    CHECK(fabs((double)ones / n - 0.5) < 0.02);
    double mean = sx / (n * 12.0), var = sxx / (n * 12.0) - mean * mean;
    CHECK(fabs(mean) < 0.01);
    CHECK(fabs(var - 1) < 0.02);
    pt_free(w);

    /* Three classes: labels in 0..2, each class present. */
    o.classes = 3;
    CHECK_OK(pt_gen_ml_truth(&o, &w, &nw, &err), &err);
    CHECK_EQ_I(nw, 36);
    int64_t count[3] = {0};
    for (int64_t r = 0; r < 3000; r++) {
        double x[12], y;
        pt_gen_ml_row(&o, w, r, x, &y);
        CHECK(y == 0 || y == 1 || y == 2);
        count[(int)y]++;
    }
    for (int c = 0; c < 3; c++) CHECK(count[c] > 600);
    pt_free(w);
}

TEST(gen_regress_and_blobs_statistics) {
    pt_gen_ml_opts o;
    pt_gen_ml_opts_init(&o, PT_GEN_ML_REGRESS);
    o.features = 4;
    o.noise = 0.5;
    double *t;
    int64_t nt;
    pt_error err;
    CHECK_OK(pt_gen_ml_truth(&o, &t, &nt, &err), &err);
    CHECK(t[4] == 0.5);
    int64_t n = 20000;
    double ss = 0, s = 0;
    for (int64_t r = 0; r < n; r++) {
        double x[4], y, f = t[4];
        pt_gen_ml_row(&o, t, r, x, &y);
        for (int j = 0; j < 4; j++) f += t[j] * x[j];
        s += y - f;
        ss += (y - f) * (y - f);
    }
    CHECK(fabs(s / n) < 0.02);
    CHECK_MSG(fabs(sqrt(ss / n) - 0.5) < 0.02, "noise sd %.4f", sqrt(ss / n));
    pt_free(t);

    pt_gen_ml_opts_init(&o, PT_GEN_ML_BLOBS);
    o.features = 3;
    o.classes = 5;
    o.noise = 0.25;
    CHECK_OK(pt_gen_ml_truth(&o, &t, &nt, &err), &err);
    CHECK_EQ_I(nt, 15);
    for (int i = 0; i < 15; i++) CHECK(t[i] >= -10 && t[i] <= 10);
    int64_t count[5] = {0};
    double d2 = 0;
    for (int64_t r = 0; r < n; r++) {
        double x[3], y;
        pt_gen_ml_row(&o, t, r, x, &y);
        int c = (int)y;
        CHECK(c >= 0 && c < 5 && c == y);
        count[c]++;
        for (int j = 0; j < 3; j++) d2 += (x[j] - t[c * 3 + j]) * (x[j] - t[c * 3 + j]);
    }
    for (int c = 0; c < 5; c++) CHECK(count[c] > 3600 && count[c] < 4400);
    /* E|x - centre|^2 = d * sd^2 */
    CHECK_MSG(fabs(d2 / n - 3 * 0.0625) < 0.01, "mean squared distance %.4f", d2 / n);
    pt_free(t);
}

TEST(gen_errors_name_the_option_and_path) {
    pt_error err;
    pt_gen_ml_opts o;
    pt_gen_ml_opts_init(&o, PT_GEN_ML_CLASSIFY);
    o.features = 0;
    CHECK(write_with_threads(&o, 1, pt_test_tmp("x.svm"), NULL, &err) == PT_EINVAL);
    CHECK(strstr(err.msg, "--features") != NULL);
    pt_gen_ml_opts_init(&o, PT_GEN_ML_CLASSIFY);
    o.classes = 1;
    CHECK(write_with_threads(&o, 1, pt_test_tmp("x.svm"), NULL, &err) == PT_EINVAL);
    CHECK(strstr(err.msg, "--classes") != NULL);
    pt_gen_ml_opts_init(&o, PT_GEN_ML_BLOBS);
    o.noise = -1;
    CHECK(write_with_threads(&o, 1, pt_test_tmp("x.svm"), NULL, &err) == PT_EINVAL);
    CHECK(strstr(err.msg, "--noise") != NULL);
    pt_gen_ml_opts_init(&o, PT_GEN_ML_BLOBS);
    const char *bad = "/nonexistent-dir-partita/x.svm";
    pt_status s = write_with_threads(&o, 1, bad, NULL, &err);
    CHECK(s == PT_ENOENT || s == PT_EIO);
    CHECK(strstr(err.msg, bad) != NULL);
    pt_gen_ml_kind k;
    CHECK(pt_gen_ml_kind_parse("blobs", &k) && k == PT_GEN_ML_BLOBS);
    CHECK(!pt_gen_ml_kind_parse("classic", &k));
}
