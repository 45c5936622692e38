/*
 * ml_lbfgs.h - limited-memory quasi-Newton minimiser (L-BFGS, and OWL-QN
 * when an L1 term is present) driven one iteration at a time, so that the
 * trainer can report progress and checkpoint between iterations, and with
 * its whole state as plain doubles so that a resumed run continues bit for
 * bit. Every function evaluation may be a collective: the minimiser takes
 * the same path on every rank as long as the evaluations return the same
 * bits everywhere (which the allreduce guarantees).
 */
#ifndef PT_ML_LBFGS_H
#define PT_ML_LBFGS_H

#include "partita.h"

/* f and its gradient g (length n) at x; f excludes the L1 term. */
typedef pt_status (*pt__lbfgs_fn)(void *arg, const double *x, double *f, double *g,
                                  pt_error *err);

typedef enum pt__lbfgs_stop {
    PT__LBFGS_RUNNING = 0,
    PT__LBFGS_MAX_ITER,
    PT__LBFGS_FVAL,      /* relative change of the objective below tol */
    PT__LBFGS_GRAD,      /* max-norm of the (pseudo-)gradient below tol * |F| */
    PT__LBFGS_NO_PROGRESS /* the line search found no decrease */
} pt__lbfgs_stop;

typedef struct pt__lbfgs {
    int64_t n;
    int m;           /* history pairs kept */
    int64_t npen;    /* the L1 term covers x[0 .. npen) */
    double l1;       /* weight of the L1 term (0: plain L-BFGS) */
    double tol;
    int64_t max_iter;
    pt__lbfgs_fn fn;
    void *arg;
    /* state (checkpointed) */
    int64_t iter;  /* iterations done */
    double f;      /* smooth part at x */
    double *x, *g;
    double *S, *Y, *rho; /* ring of m pairs */
    int count, head;     /* pairs stored, slot of the oldest */
    /* scratch */
    double *d, *pg, *xt, *gt, *xl, *gl, *alpha;
    int64_t evals;
    pt__lbfgs_stop stop;
    pt_mem *mem;
    int64_t reserved;
} pt__lbfgs;

/* Allocates the state for n unknowns and m pairs (charged to mem, which
 * may be NULL). */
pt_status pt__lbfgs_init(pt__lbfgs *s, int64_t n, int m, pt_mem *mem, pt_error *err);
void pt__lbfgs_free(pt__lbfgs *s);
/* Evaluates at x0 (copied) and makes it the current point. */
pt_status pt__lbfgs_start(pt__lbfgs *s, const double *x0, pt_error *err);
/* One iteration (direction, line search, history update, convergence
 * check). Sets s->stop when it is the last one; calling again after that
 * does nothing. */
pt_status pt__lbfgs_iterate(pt__lbfgs *s, pt_error *err);
/* Objective including the L1 term, and the 2-norm of the pseudo-gradient. */
double pt__lbfgs_objective(const pt__lbfgs *s);
double pt__lbfgs_grad_norm(pt__lbfgs *s);

/* Checkpointed state: the doubles of everything but x (which is saved as
 * the parameters). load checks the size and returns PT_ECORRUPT on a
 * mismatch. */
int64_t pt__lbfgs_state_size(const pt__lbfgs *s);
void pt__lbfgs_state_save(const pt__lbfgs *s, double *out);
pt_status pt__lbfgs_state_load(pt__lbfgs *s, const double *x, const double *state,
                               int64_t nstate, pt_error *err);

#endif
