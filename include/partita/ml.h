/*
 * ml.h - distributed training: datasets, models, metrics, persistence.
 *
 * Data parallelism follows Horovod: every rank holds a shard of the rows
 * (a pt_dataset), threads inside a rank split the shard, per-thread
 * gradients are summed in a fixed order, then one fused allreduce per step
 * sums them across ranks (deterministic float sums, see comm.h) and the sum
 * is divided by the global row count. Rank 0's initial parameters are
 * broadcast. With the self backend (comm == NULL) everything runs in one
 * process. Parameter names and defaults follow Spark MLlib.
 *
 * Every function that takes a pt_comm is a collective over it when the comm
 * has more than one rank: all ranks call it in the same order.
 */
#ifndef PARTITA_ML_H
#define PARTITA_ML_H

#include <stdbool.h>
#include <stdint.h>

#include "partita/base.h"
#include "partita/comm.h"
#include "partita/exec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Datasets                                                                 */
/* ------------------------------------------------------------------------ */

/* This rank's shard of a labelled design matrix. Rows are dense row-major
 * (x: nrows * nfeatures) or CSR (indptr[nrows + 1], indices and values of
 * indptr[nrows] stored entries, column indices zero-based and increasing
 * within a row). Fields are public and read-only for users; the dataset
 * owns every array (free with pt_dataset_free). */
typedef struct pt_dataset {
    int64_t nrows;        /* rows in this shard */
    int64_t nrows_global; /* rows over all ranks */
    int64_t nfeatures;    /* columns, equal on every rank */
    bool sparse;
    double *x;        /* dense values, or NULL when sparse */
    int64_t *indptr;  /* CSR row starts, or NULL when dense */
    int32_t *indices; /* CSR column indices */
    double *values;   /* CSR values */
    double *y;        /* labels: regression targets, 0/1, or class ids 0..k-1 */
    int64_t *row_id;  /* global row number (position in the input), so that
                         random_split does not depend on ranks or threads */
    int nclasses;     /* distinct class ids over all ranks (0 when unknown) */
    char **feature_names; /* nfeatures names, or NULL */
} pt_dataset;

PT_API void pt_dataset_free(pt_dataset *d);

typedef struct pt_libsvm_opts {
    int64_t nfeatures; /* 0: the largest index seen over all ranks */
    /* How labels are mapped: PT_LABELS_AUTO turns {-1,+1} into {0,1} and
     * keeps 0/1 and non-negative integer class ids; PT_LABELS_RAW keeps the
     * numbers (regression). */
    enum { PT_LABELS_AUTO = 0, PT_LABELS_RAW } labels;
    bool dense; /* store the rows dense (nrows * nfeatures) */
} pt_libsvm_opts;
PT_API void pt_libsvm_opts_init(pt_libsvm_opts *o);

/* Reads a libsvm/svmlight file: "label idx:val idx:val ... # comment", with
 * one-based increasing indices, "qid:N" ignored, blank and comment lines
 * skipped. Parsed in parallel by byte ranges on ctx's pool; with a comm of
 * several ranks each rank parses its share of the bytes (row_id stays the
 * global line order). Errors: PT_EIO (open/read), PT_EPARSE with
 * "file:line:column: what (near 'text')", PT_EINVAL, PT_ENOMEM. */
PT_API pt_status pt_libsvm_read(pt_ctx *ctx, pt_comm *comm, const char *path,
                                const pt_libsvm_opts *opts, pt_dataset **out,
                                pt_error *err) PT_MUST_USE;
/* Writes a dataset (this rank's rows) in libsvm format, labels as numbers.
 */
PT_API pt_status pt_libsvm_write(const pt_dataset *d, const char *path,
                                 pt_error *err) PT_MUST_USE;

/* Builds a dense dataset from a table: `label` names the label column;
 * `features` lists feature columns (nfeatures == 0: every other numeric or
 * text column). Text columns are one-hot encoded (one feature per distinct
 * value in sorted byte order, named "col=value"); numbers are cast to
 * double; a null feature or label is an error naming column and row. With
 * `classify`, labels are mapped to class ids: 0/1 and non-negative integers
 * as they are, otherwise the sorted distinct values get 0..k-1. */
PT_API pt_status pt_dataset_from_table(pt_ctx *ctx, pt_comm *comm, const pt_table *t,
                                       const char *label, int nfeatures,
                                       const char *const *features, bool classify,
                                       pt_dataset **out, pt_error *err) PT_MUST_USE;

/* Splits the rows by weights (normalised to sum 1) like Spark's
 * randomSplit: a row goes to split i by a hash of (seed, row_id), so the
 * result is the same whatever the number of ranks and threads. Local (no
 * communication) except that nrows_global of each output is summed over
 * `comm` (may be NULL). outs receives nweights datasets. */
PT_API pt_status pt_dataset_random_split(pt_comm *comm, const pt_dataset *d, int nweights,
                                         const double *weights, uint64_t seed,
                                         pt_dataset **outs, pt_error *err) PT_MUST_USE;

/* ------------------------------------------------------------------------ */
/* Training                                                                 */
/* ------------------------------------------------------------------------ */

typedef enum pt_model_kind {
    PT_MODEL_LINREG = 0,
    PT_MODEL_LOGREG,
    PT_MODEL_KMEANS,
    PT_MODEL_MLP
} pt_model_kind;

typedef enum pt_solver {
    PT_SOLVER_AUTO = 0, /* L-BFGS (OWL-QN with an L1 term) for linear models,
                           Adam for the MLP, Lloyd for k-means */
    PT_SOLVER_LBFGS,
    PT_SOLVER_SGD, /* mini-batch SGD with momentum */
    PT_SOLVER_ADAM
} pt_solver;

typedef enum pt_activation { PT_ACT_RELU = 0, PT_ACT_TANH, PT_ACT_SIGMOID } pt_activation;

/* One line of progress, passed to pt_train_opts.progress on rank 0 after
 * every iteration (L-BFGS step, epoch, Lloyd iteration). */
typedef struct pt_train_progress {
    int64_t iter;
    double loss;      /* objective, regularisation included */
    double grad_norm; /* 0 where it does not apply (k-means: centre shift) */
    double seconds;   /* since training started */
} pt_train_progress;

typedef struct pt_train_opts {
    pt_model_kind kind;
    pt_solver solver;
    /* MLlib names and defaults */
    int max_iter;           /* 100 */
    double reg_param;       /* 0.0 */
    double elastic_net;     /* 0.0: pure L2; 1.0: pure L1 */
    double tol;             /* 1e-6 */
    bool fit_intercept;     /* true */
    bool standardization;   /* true: fit on standardised features, report
                               coefficients in the original scale */
    double threshold;       /* 0.5 (binary logistic) */
    int family;             /* 0 auto, 1 binomial, 2 multinomial */
    /* mini-batch solvers */
    double learning_rate; /* 0.01 (SGD), 0.001 (Adam) */
    double momentum;      /* 0.9 */
    double beta1, beta2, epsilon; /* 0.9, 0.999, 1e-8 */
    int64_t batch_size;   /* rows per step over all ranks, 256 (the MLP:
                             exactly; linear models: on average, rows being
                             hashed into ceil(n / batch_size) batches) */
    uint64_t seed;        /* 42 */
    /* k-means */
    int k;                /* 2 */
    bool init_plus_plus;  /* false: k-means|| (MLlib default); true: ++ */
    int init_steps;       /* 2 (k-means||) */
    /* MLP: hidden layer sizes; the output layer is softmax over classes */
    int nhidden;
    const int *hidden;
    pt_activation activation; /* relu */
    /* checkpoints (rank 0 writes; on resume the linear models read on every
     * rank, k-means and the MLP on rank 0, which broadcasts) */
    const char *checkpoint_dir; /* NULL: none */
    int checkpoint_every;       /* steps between checkpoints, 0: never */
    int checkpoint_keep;        /* newest kept, 3 */
    bool resume;                /* continue from the newest valid one */
    /* execution */
    pt_ctx *ctx;   /* threads and memory; NULL: a default one per call */
    pt_comm *comm; /* NULL: one process */
    void (*progress)(const pt_train_progress *p, void *arg);
    void *progress_arg;
} pt_train_opts;

PT_API void pt_train_opts_init(pt_train_opts *o, pt_model_kind kind);

typedef struct pt_model pt_model;

/* Trains on every rank's shard of `train` (collective). Every rank gets the
 * same model. Errors: PT_EINVAL naming the parameter, PT_ETIMEOUT/PT_ECOMM
 * naming a lost rank, PT_EIO/PT_ECORRUPT for checkpoints, PT_ENOMEM. */
PT_API pt_status pt_train(const pt_train_opts *opts, const pt_dataset *train, pt_model **out,
                          pt_error *err) PT_MUST_USE;
PT_API void pt_model_free(pt_model *m);

PT_API pt_model_kind pt_model_kind_of(const pt_model *m);
PT_API int64_t pt_model_nfeatures(const pt_model *m);
/* Classes (logistic, MLP), clusters (k-means) or 1 (linear regression). */
PT_API int pt_model_nclasses(const pt_model *m);
/* Iterations run and final objective of the training that made the model. */
PT_API int64_t pt_model_iterations(const pt_model *m);
PT_API double pt_model_loss(const pt_model *m);
/* Linear models: coefficients in the original feature scale, row-major
 * (nclasses rows of nfeatures for multinomial, one row otherwise), and
 * intercepts (one per row). NULL for other models. */
PT_API const double *pt_model_coefficients(const pt_model *m, int64_t *rows, int64_t *cols);
PT_API const double *pt_model_intercepts(const pt_model *m);
/* k-means: k * nfeatures centres, row-major. */
PT_API const double *pt_model_centers(const pt_model *m);

/* Predictions for the rows of `d` (local, no communication). Arrays are
 * allocated with pt_malloc and owned by the caller (free with
 * pt_predictions_free). */
typedef struct pt_predictions {
    int64_t n;
    int ncols;     /* columns of prob and raw: classes (1 for binary
                      logistic: P(y=1)), 1 for regression, k for k-means
                      (distances) */
    double *label; /* predicted class / value / cluster */
    double *prob;  /* n * ncols probabilities, NULL when not a classifier */
    double *raw;   /* n * ncols raw scores (margins, distances) */
} pt_predictions;
PT_API pt_status pt_model_predict(const pt_model *m, pt_ctx *ctx, const pt_dataset *d,
                                  pt_predictions *out, pt_error *err) PT_MUST_USE;
PT_API void pt_predictions_free(pt_predictions *p);

/* Versioned file with a CRC32C over the whole content; written atomically
 * (temporary file + rename). Load checks magic, version and CRC:
 * PT_ECORRUPT naming the file and what is wrong. */
PT_API pt_status pt_model_save(const pt_model *m, const char *path, pt_error *err) PT_MUST_USE;
PT_API pt_status pt_model_load(const char *path, pt_model **out, pt_error *err) PT_MUST_USE;

/* ------------------------------------------------------------------------ */
/* Metrics                                                                  */
/* ------------------------------------------------------------------------ */

/* Classification metrics over every rank's rows (comm may be NULL). y and
 * pred hold class ids; prob is n * ncols as in pt_predictions (may be NULL:
 * log-loss and AUCs are then NaN). Binary problems report precision, recall
 * and F1 of class 1; multiclass ones their weighted averages (as MLlib).
 * AUCs are for binary problems only (NaN otherwise). The confusion matrix
 * is nclasses * nclasses, row = true class, allocated with pt_malloc. */
typedef struct pt_class_metrics {
    int64_t n;
    int nclasses;
    double accuracy, precision, recall, f1, log_loss, auc_roc, auc_pr;
    int64_t *confusion;
} pt_class_metrics;
PT_API pt_status pt_metrics_classification(pt_comm *comm, int64_t n, const double *y,
                                           const double *pred, const double *prob, int ncols,
                                           int nclasses, pt_class_metrics *out,
                                           pt_error *err) PT_MUST_USE;
PT_API void pt_class_metrics_free(pt_class_metrics *m);

typedef struct pt_reg_metrics {
    int64_t n;
    double rmse, mae, r2;
} pt_reg_metrics;
PT_API pt_status pt_metrics_regression(pt_comm *comm, int64_t n, const double *y,
                                       const double *pred, pt_reg_metrics *out,
                                       pt_error *err) PT_MUST_USE;

/* k-means cost: sum over rows of the squared distance to the nearest
 * centre (WSSSE), over every rank's rows. */
PT_API pt_status pt_kmeans_cost(pt_comm *comm, pt_ctx *ctx, const pt_model *m,
                                const pt_dataset *d, double *out, pt_error *err) PT_MUST_USE;

/* ------------------------------------------------------------------------ */
/* Synthetic training sets (partita gen classify|regress|blobs)             */
/* ------------------------------------------------------------------------ */

typedef enum pt_gen_ml_kind {
    PT_GEN_ML_CLASSIFY = 0, /* y ~ Bernoulli(sigmoid(w.x)) or softmax over classes */
    PT_GEN_ML_REGRESS,      /* y = w.x + b + noise */
    PT_GEN_ML_BLOBS         /* x = centre[c] + noise, y = c */
} pt_gen_ml_kind;

typedef struct pt_gen_ml_opts {
    pt_gen_ml_kind kind;
    int64_t rows;     /* >= 0 */
    int64_t features; /* >= 1 */
    int classes;      /* classify: >= 2 (default 2); blobs: centres (default 3) */
    double scale;     /* classify: norm of each weight row (default 3, which makes the
                         Bayes accuracy of the binary problem about 0.836) */
    double noise;     /* regress: sd of the noise (default 0.1); blobs: sd of a
                         cluster (default 1) */
    uint64_t seed;
    bool csv;         /* CSV with a header "label,x1,...,xd"; else libsvm */
} pt_gen_ml_opts;

PT_API void pt_gen_ml_opts_init(pt_gen_ml_opts *o, pt_gen_ml_kind kind);
/* "classify", "regress" or "blobs"; false for any other name. */
PT_API bool pt_gen_ml_kind_parse(const char *name, pt_gen_ml_kind *out);

/* Values are written with 4 decimals, and labels computed from those
 * rounded values, so that the file is exactly the data the truth describes.
 * libsvm rows omit zero values; binary labels are -1/+1 in libsvm and 0/1
 * in CSV; classes and clusters are 0..k-1. Row r depends only on (seed, r),
 * so the file is the same whatever the thread count. Errors: PT_EINVAL
 * naming the option, PT_EIO/PT_ENOENT naming the path, PT_ENOMEM. */
PT_API pt_status pt_gen_ml_write(pt_ctx *ctx, const pt_gen_ml_opts *o, const char *path,
                           int64_t *bytes_out, pt_error *err);

/* The parameters the data were drawn from, pt_malloc'ed into *out (free
 * with pt_free), *n values:
 *   classify: classes rows of features weights (one row when binary);
 *   regress: features weights then the intercept;
 *   blobs: classes rows of features centre coordinates. */
PT_API pt_status pt_gen_ml_truth(const pt_gen_ml_opts *o, double **out, int64_t *n, pt_error *err);

/* Row r of the data set into x[features] (rounded as written) and *y. */
PT_API void pt_gen_ml_row(const pt_gen_ml_opts *o, const double *truth, int64_t r, double *x,
                    double *y);

#ifdef __cplusplus
}
#endif
#endif
