/*
 * ml_gen.h - seeded synthetic data sets for training (classification,
 * regression, Gaussian blobs) written as libsvm or CSV. Internal: used by
 * the CLI's `partita gen classify|regress|blobs`, the demo and the tests.
 */
#ifndef PT_ML_GEN_H
#define PT_ML_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "partita.h"

typedef enum pt__gen_ml_kind {
    PT__GEN_CLASSIFY = 0, /* y ~ Bernoulli(sigmoid(w.x)) or softmax over classes */
    PT__GEN_REGRESS,      /* y = w.x + b + noise */
    PT__GEN_BLOBS         /* x = centre[c] + noise, y = c */
} pt__gen_ml_kind;

typedef struct pt__gen_ml_opts {
    pt__gen_ml_kind kind;
    int64_t rows;     /* >= 0 */
    int64_t features; /* >= 1 */
    int classes;      /* classify: >= 2 (default 2); blobs: centres (default 3) */
    double scale;     /* classify: norm of each weight row (default 3, which makes the
                         Bayes accuracy of the binary problem about 0.836) */
    double noise;     /* regress: sd of the noise (default 0.1); blobs: sd of a
                         cluster (default 1) */
    uint64_t seed;
    bool csv;         /* CSV with a header "label,x1,...,xd"; else libsvm */
} pt__gen_ml_opts;

void pt__gen_ml_opts_init(pt__gen_ml_opts *o, pt__gen_ml_kind kind);
/* "classify", "regress" or "blobs"; false for any other name. */
bool pt__gen_ml_kind_parse(const char *name, pt__gen_ml_kind *out);

/* Values are written with 4 decimals, and labels computed from those
 * rounded values, so that the file is exactly the data the truth describes.
 * libsvm rows omit zero values; binary labels are -1/+1 in libsvm and 0/1
 * in CSV; classes and clusters are 0..k-1. Row r depends only on (seed, r),
 * so the file is the same whatever the thread count. Errors: PT_EINVAL
 * naming the option, PT_EIO/PT_ENOENT naming the path, PT_ENOMEM. */
pt_status pt__gen_ml_write(pt_ctx *ctx, const pt__gen_ml_opts *o, const char *path,
                           int64_t *bytes_out, pt_error *err);

/* The parameters the data were drawn from, pt_malloc'ed into *out (free
 * with pt_free), *n values:
 *   classify: classes rows of features weights (one row when binary);
 *   regress: features weights then the intercept;
 *   blobs: classes rows of features centre coordinates. */
pt_status pt__gen_ml_truth(const pt__gen_ml_opts *o, double **out, int64_t *n, pt_error *err);

/* Row r of the data set into x[features] (rounded as written) and *y. */
void pt__gen_ml_row(const pt__gen_ml_opts *o, const double *truth, int64_t r, double *x,
                    double *y);

#endif
