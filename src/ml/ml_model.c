/*
 * ml_model.c - the model record, the pt_train / pt_model_predict dispatch,
 * option defaults and validation, and the two collectives every trainer
 * uses (the fused gradient allreduce and the parameter broadcast).
 */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "ml/ml_internal.h"

void pt_train_opts_init(pt_train_opts *o, pt_model_kind kind) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->solver = PT_SOLVER_AUTO;
    o->max_iter = 100;
    o->reg_param = 0.0;
    o->elastic_net = 0.0;
    o->tol = 1e-6;
    o->fit_intercept = true;
    o->standardization = true;
    o->threshold = 0.5;
    o->learning_rate = 0.0; /* 0: per solver default (0.01 SGD, 0.001 Adam) */
    o->momentum = 0.9;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->epsilon = 1e-8;
    o->batch_size = 256;
    o->seed = 42;
    o->k = 2;
    o->init_steps = 2;
    o->activation = PT_ACT_RELU;
    o->checkpoint_keep = 3;
}

pt_status pt__model_alloc(pt_model_kind kind, int64_t nparams, pt_model **out, pt_error *err) {
    *out = NULL;
    if (nparams < 0) return pt_error_set(err, PT_EINVAL, "model: negative parameter count");
    pt_model *m = pt_calloc(1, sizeof *m);
    if (!m) return pt_error_set(err, PT_ENOMEM, "model: out of memory");
    m->kind = kind;
    m->threshold = 0.5;
    m->nparams = nparams;
    if (nparams > 0) {
        m->params = pt_calloc((size_t)nparams, sizeof(double));
        if (!m->params) {
            pt_free(m);
            return pt_error_set(err, PT_ENOMEM, "model: out of memory for %lld parameters",
                                (long long)nparams);
        }
    }
    *out = m;
    return PT_OK;
}

void pt_model_free(pt_model *m) {
    if (!m) return;
    pt_free(m->params);
    pt_free(m);
}

pt_model_kind pt_model_kind_of(const pt_model *m) { return m->kind; }
int64_t pt_model_nfeatures(const pt_model *m) { return m->nfeatures; }
int pt_model_nclasses(const pt_model *m) { return m->nclasses; }
int64_t pt_model_iterations(const pt_model *m) { return m->iterations; }
double pt_model_loss(const pt_model *m) { return m->loss; }

const double *pt_model_coefficients(const pt_model *m, int64_t *rows, int64_t *cols) {
    if (!m || (m->kind != PT_MODEL_LINREG && m->kind != PT_MODEL_LOGREG)) return NULL;
    if (rows) *rows = m->rows;
    if (cols) *cols = m->nfeatures;
    return m->params;
}

const double *pt_model_intercepts(const pt_model *m) {
    if (!m || (m->kind != PT_MODEL_LINREG && m->kind != PT_MODEL_LOGREG)) return NULL;
    return m->params + m->rows * m->nfeatures;
}

const double *pt_model_centers(const pt_model *m) {
    if (!m || m->kind != PT_MODEL_KMEANS) return NULL;
    return m->params;
}

void pt_predictions_free(pt_predictions *p) {
    if (!p) return;
    pt_free(p->label);
    pt_free(p->prob);
    pt_free(p->raw);
    memset(p, 0, sizeof *p);
}

pt_status pt__ml_allreduce_sum(pt_comm *comm, double *buf, int64_t n, pt_error *err) {
    if (!comm || pt_comm_size(comm) <= 1 || n == 0) return PT_OK;
    return pt_comm_allreduce(comm, buf, n, PT_DTYPE_FLOAT64, PT_REDOP_SUM, err);
}

pt_status pt__ml_bcast(pt_comm *comm, double *buf, int64_t n, pt_error *err) {
    if (!comm || pt_comm_size(comm) <= 1 || n == 0) return PT_OK;
    return pt_comm_bcast(comm, buf, n * (int64_t)sizeof(double), 0, err);
}

static pt_status validate(const pt_train_opts *o, const pt_dataset *d, pt_error *err) {
    if (!o) return pt_error_set(err, PT_EINVAL, "train: opts is NULL");
    if (!d) return pt_error_set(err, PT_EINVAL, "train: dataset is NULL");
    if (o->kind < PT_MODEL_LINREG || o->kind > PT_MODEL_MLP)
        return pt_error_set(err, PT_EINVAL, "train: unknown model kind %d", (int)o->kind);
    if (o->max_iter < 0)
        return pt_error_set(err, PT_EINVAL, "train: maxIter must be >= 0 (got %d)", o->max_iter);
    if (!(o->reg_param >= 0) || !isfinite(o->reg_param))
        return pt_error_set(err, PT_EINVAL, "train: regParam must be >= 0 (got %g)",
                            o->reg_param);
    if (!(o->elastic_net >= 0 && o->elastic_net <= 1))
        return pt_error_set(err, PT_EINVAL, "train: elasticNetParam must be in [0, 1] (got %g)",
                            o->elastic_net);
    if (!(o->tol >= 0))
        return pt_error_set(err, PT_EINVAL, "train: tol must be >= 0 (got %g)", o->tol);
    if (!(o->threshold >= 0 && o->threshold <= 1))
        return pt_error_set(err, PT_EINVAL, "train: threshold must be in [0, 1] (got %g)",
                            o->threshold);
    if (o->solver < PT_SOLVER_AUTO || o->solver > PT_SOLVER_ADAM)
        return pt_error_set(err, PT_EINVAL, "train: unknown solver %d", (int)o->solver);
    if (o->solver == PT_SOLVER_SGD || o->solver == PT_SOLVER_ADAM) {
        if (o->batch_size <= 0)
            return pt_error_set(err, PT_EINVAL, "train: batch_size must be > 0 (got %lld)",
                                (long long)o->batch_size);
        if (o->learning_rate < 0 || !isfinite(o->learning_rate))
            return pt_error_set(err, PT_EINVAL, "train: learning_rate must be >= 0 (got %g)",
                                o->learning_rate);
    }
    if (o->kind == PT_MODEL_KMEANS && o->k < 1)
        return pt_error_set(err, PT_EINVAL, "train: k must be >= 1 (got %d)", o->k);
    if (o->kind == PT_MODEL_MLP) {
        if (o->nhidden < 0 || o->nhidden > PT__ML_MAX_LAYERS - 1)
            return pt_error_set(err, PT_EINVAL, "train: hidden layers must be 0..%d (got %d)",
                                PT__ML_MAX_LAYERS - 1, o->nhidden);
        for (int i = 0; i < o->nhidden; i++)
            if (!o->hidden || o->hidden[i] < 1)
                return pt_error_set(err, PT_EINVAL, "train: hidden layer %d size must be >= 1",
                                    i);
    }
    if (o->checkpoint_every < 0)
        return pt_error_set(err, PT_EINVAL, "train: checkpoint_every must be >= 0 (got %d)",
                            o->checkpoint_every);
    if ((o->checkpoint_every > 0 || o->resume) && !o->checkpoint_dir)
        return pt_error_set(err, PT_EINVAL, "train: checkpoints need checkpoint_dir");
    if (d->nfeatures <= 0)
        return pt_error_set(err, PT_EINVAL, "train: the dataset has no features");
    return PT_OK;
}

/* Models run their BLAS calls inside tasks of our pool, so OpenBLAS's own
 * threads would oversubscribe the cores: one BLAS thread while a model
 * trains or predicts, and the caller's setting back afterwards. */
static int blas_single_begin(void) {
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return saved;
}

static void blas_single_end(int saved) { openblas_set_num_threads(saved); }

pt_status pt_train(const pt_train_opts *opts, const pt_dataset *train, pt_model **out,
                   pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "train: out is NULL");
    *out = NULL;
    pt_status st = validate(opts, train, err);
    if (st != PT_OK) return st;
    pt_train_opts o = *opts;
    pt_ctx *own = NULL;
    if (!o.ctx) {
        st = pt_ctx_new(NULL, &own, err);
        if (st != PT_OK) return st;
        o.ctx = own;
    }
    int blas = blas_single_begin();
    switch (o.kind) {
    case PT_MODEL_LINREG:
    case PT_MODEL_LOGREG: st = pt__linear_train(&o, train, out, err); break;
    case PT_MODEL_KMEANS: st = pt__kmeans_train(&o, train, out, err); break;
    case PT_MODEL_MLP: st = pt__mlp_train(&o, train, out, err); break;
    }
    blas_single_end(blas);
    pt_ctx_free(own);
    return st;
}

pt_status pt_model_predict(const pt_model *m, pt_ctx *ctx, const pt_dataset *d,
                           pt_predictions *out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "predict: out is NULL");
    memset(out, 0, sizeof *out);
    if (!m || !d) return pt_error_set(err, PT_EINVAL, "predict: model or dataset is NULL");
    if (d->nfeatures > m->nfeatures)
        return pt_error_set(err, PT_EINVAL,
                            "predict: data has %lld features, the model was trained on %lld",
                            (long long)d->nfeatures, (long long)m->nfeatures);
    pt_ctx *own = NULL;
    pt_status st;
    if (!ctx) {
        st = pt_ctx_new(NULL, &own, err);
        if (st != PT_OK) return st;
        ctx = own;
    }
    int blas = blas_single_begin();
    switch (m->kind) {
    case PT_MODEL_LINREG:
    case PT_MODEL_LOGREG: st = pt__linear_predict(m, ctx, d, out, err); break;
    case PT_MODEL_KMEANS: st = pt__kmeans_predict(m, ctx, d, out, err); break;
    case PT_MODEL_MLP: st = pt__mlp_predict(m, ctx, d, out, err); break;
    default: st = pt_error_set(err, PT_EINVAL, "predict: unknown model kind");
    }
    blas_single_end(blas);
    pt_ctx_free(own);
    return st;
}
