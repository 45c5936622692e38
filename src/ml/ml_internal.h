/*
 * ml_internal.h - what the files of the ML layer share: the model record,
 * the per-model training entry points pt_train dispatches to, the
 * mini-batch update rules, and checkpoints.
 */
#ifndef PT_ML_INTERNAL_H
#define PT_ML_INTERNAL_H

#include "partita.h"
#include "partita/ml.h"

#define PT__ML_MAX_LAYERS 16

/* A trained model. Every parameter lives in one flat vector so that save,
 * load, broadcast and checkpoints treat all models alike; the layout is
 * fixed by the kind and the shape fields:
 *   linear (linreg, logreg): coef[rows * nfeatures] then intercept[rows],
 *     in the ORIGINAL feature scale (standardisation folded in);
 *     rows = 1 for linreg and binary logreg, nclasses for multinomial.
 *   k-means: centers[k * nfeatures] (nclasses == k, rows == k).
 *   MLP: for layer l in 0..nlayers-1: W_l[sizes[l+1] * sizes[l]] (row-major,
 *     out x in) then b_l[sizes[l+1]]; sizes[0] == nfeatures,
 *     sizes[nlayers] == nclasses; input scaling folded into W_0 and b_0;
 *     hidden layers use `activation`, the last one softmax. */
struct pt_model {
    pt_model_kind kind;
    int64_t nfeatures;
    int nclasses;       /* classes; 1 for linreg; k for k-means */
    int64_t rows;       /* coefficient rows (linear) / k (k-means) */
    bool multinomial;   /* logreg: softmax over nclasses rows */
    double threshold;   /* binary logreg */
    pt_activation activation;
    int nlayers;
    int64_t sizes[PT__ML_MAX_LAYERS + 1];
    int64_t iterations;
    double loss;
    int64_t nparams;
    double *params;
};

/* Allocates a zeroed model with nparams parameters. */
pt_status pt__model_alloc(pt_model_kind kind, int64_t nparams, pt_model **out, pt_error *err);

/* Per-kind training and prediction (pt_train and pt_model_predict
 * dispatch here). opts has been validated and has ctx set. Training fills
 * every field of *m (allocated by the callee). */
pt_status pt__linear_train(const pt_train_opts *o, const pt_dataset *d, pt_model **m,
                           pt_error *err);
pt_status pt__linear_predict(const pt_model *m, pt_ctx *ctx, const pt_dataset *d,
                             pt_predictions *out, pt_error *err);
pt_status pt__kmeans_train(const pt_train_opts *o, const pt_dataset *d, pt_model **m,
                           pt_error *err);
pt_status pt__kmeans_predict(const pt_model *m, pt_ctx *ctx, const pt_dataset *d,
                             pt_predictions *out, pt_error *err);
pt_status pt__mlp_train(const pt_train_opts *o, const pt_dataset *d, pt_model **m,
                        pt_error *err);
pt_status pt__mlp_predict(const pt_model *m, pt_ctx *ctx, const pt_dataset *d,
                          pt_predictions *out, pt_error *err);

/* Sum of `n` doubles over the ranks of comm (NULL or one rank: nothing to
 * do), in place, with the comm layer's deterministic float sums: the one
 * fused allreduce per step of the data-parallel trainers. */
pt_status pt__ml_allreduce_sum(pt_comm *comm, double *buf, int64_t n, pt_error *err);
/* Rank 0's n doubles on every rank. */
pt_status pt__ml_bcast(pt_comm *comm, double *buf, int64_t n, pt_error *err);

/* Mini-batch update rules shared by every model: SGD with (heavy-ball)
 * momentum, and Adam with bias correction. State is plain doubles so that
 * checkpoints can save it: `state` holds nstate = pt__sgd_state_size()
 * values (velocity for SGD; first and second moments then the step count
 * for Adam). */
typedef struct pt__sgd {
    pt_solver kind; /* PT_SOLVER_SGD or PT_SOLVER_ADAM */
    double lr, momentum, beta1, beta2, eps;
    int64_t n;      /* parameters */
    int64_t nstate;
    double *state;
} pt__sgd;
pt_status pt__sgd_init(pt__sgd *s, pt_solver kind, const pt_train_opts *o, int64_t nparams,
                       pt_error *err);
/* params -= update(grad); grad is the averaged gradient of the batch. */
void pt__sgd_step(pt__sgd *s, double *params, const double *grad);
void pt__sgd_free(pt__sgd *s);

/* Checkpoints: files "ckpt-<step, 12 digits>.ptc" in a directory, each
 * written to a temporary name, fsynced and renamed, with a CRC32C over the
 * content; `tag` identifies the run's configuration (model kind, shapes,
 * hyper-parameters that change the path, seed) so that a checkpoint of
 * another run is never resumed. Each trainer makes its own: the linear
 * models hash the row count but neither maxIter (a run can be resumed for
 * more iterations) nor the rank count (their models agree across rank
 * counts); k-means and the MLP hash the rank count. */
typedef struct pt__ckpt {
    uint64_t tag;
    int64_t step, epoch;
    uint64_t rng[4]; /* informational: draws are keyed on (seed, epoch, row) */
    int64_t nparams;
    double *params;
    int64_t nstate;
    double *state; /* optimiser state: L-BFGS history, velocities, moments */
} pt__ckpt;
/* Writes c as the checkpoint of c->step, then deletes all but the newest
 * `keep` checkpoints in dir (keep <= 0: none), any checkpoint of a later
 * step (left by an older run, it would shadow this one on resume) and
 * leftover temporary files; dir is created when missing. */
pt_status pt__ckpt_save(const char *dir, int keep, const pt__ckpt *c, pt_error *err);
/* Loads the newest valid checkpoint whose tag equals `tag`; files that fail
 * their checks are skipped with a warning (logged) naming the file and why.
 * *found is false when none is usable. *out's arrays are pt_malloc'ed. */
pt_status pt__ckpt_load_latest(const char *dir, uint64_t tag, pt__ckpt *out, bool *found,
                               pt_error *err);
void pt__ckpt_clear(pt__ckpt *c);

#endif
