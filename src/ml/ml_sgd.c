/*
 * ml_sgd.c - the mini-batch update rules (SGD with momentum, Adam), kept
 * apart from the models so that every model steps the same way and
 * checkpoints can save the state as plain doubles.
 */
#include <math.h>
#include <string.h>

#include "ml/ml_internal.h"

pt_status pt__sgd_init(pt__sgd *s, pt_solver kind, const pt_train_opts *o, int64_t nparams,
                       pt_error *err) {
    memset(s, 0, sizeof *s);
    if (kind != PT_SOLVER_SGD && kind != PT_SOLVER_ADAM)
        return pt_error_set(err, PT_EINVAL, "sgd: solver must be sgd or adam");
    if (nparams < 0) return pt_error_set(err, PT_EINVAL, "sgd: negative parameter count");
    s->kind = kind;
    s->lr = o->learning_rate > 0 ? o->learning_rate : (kind == PT_SOLVER_SGD ? 0.01 : 0.001);
    s->momentum = o->momentum;
    s->beta1 = o->beta1;
    s->beta2 = o->beta2;
    s->eps = o->epsilon;
    s->n = nparams;
    /* SGD: velocity. Adam: m, v, then the step count (as a double, exact
     * up to 2^53 steps) so that the whole state checkpoints as doubles. */
    s->nstate = kind == PT_SOLVER_SGD ? nparams : 2 * nparams + 1;
    s->state = pt_calloc((size_t)(s->nstate > 0 ? s->nstate : 1), sizeof(double));
    if (!s->state) return pt_error_set(err, PT_ENOMEM, "sgd: out of memory for the state");
    return PT_OK;
}

void pt__sgd_step(pt__sgd *s, double *params, const double *grad) {
    int64_t n = s->n;
    if (s->kind == PT_SOLVER_SGD) {
        double *v = s->state, mu = s->momentum, lr = s->lr;
        for (int64_t i = 0; i < n; i++) {
            v[i] = mu * v[i] + grad[i];
            params[i] -= lr * v[i];
        }
        return;
    }
    double *m = s->state, *v = s->state + n;
    double t = s->state[2 * n] + 1.0;
    s->state[2 * n] = t;
    double b1 = s->beta1, b2 = s->beta2;
    double c1 = 1.0 - pow(b1, t), c2 = 1.0 - pow(b2, t);
    double a = s->lr * sqrt(c2) / c1;
    for (int64_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1.0 - b1) * grad[i];
        v[i] = b2 * v[i] + (1.0 - b2) * grad[i] * grad[i];
        params[i] -= a * m[i] / (sqrt(v[i]) + s->eps * sqrt(c2));
    }
}

void pt__sgd_free(pt__sgd *s) {
    if (!s) return;
    pt_free(s->state);
    s->state = NULL;
}
