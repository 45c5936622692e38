/*
 * ml_lbfgs.c - L-BFGS with a strong-Wolfe line search (cubic interpolation,
 * Nocedal & Wright alg. 3.5/3.6) and OWL-QN (Andrew & Gao 2007: pseudo-
 * gradient, orthant-projected backtracking) when an L1 term is present.
 *
 * Determinism matters more than cleverness here: the iteration is a pure
 * function of the saved state and of the evaluations, so that every rank
 * takes the same path and a run resumed from a checkpoint ends bitwise equal
 * to one that was never interrupted.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "ml/ml_lbfgs.h"

#define LS_C1 1e-4
#define LS_C2 0.9
#define LS_MAX_EVALS 25
#define LS_HZ_DELTA 0.1
#define LS_FNOISE 1e-12

static double dot(const double *a, const double *b, int64_t n) {
    /* Four partial sums: keeps the loop vectorisable without -ffast-math. */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static int64_t bytes_for(int64_t n, int m) {
    return (int64_t)sizeof(double) * (2 * (int64_t)m * n + 8 * n + 2 * (int64_t)m);
}

pt_status pt__lbfgs_init(pt__lbfgs *s, int64_t n, int m, pt_mem *mem, pt_error *err) {
    memset(s, 0, sizeof *s);
    if (n <= 0 || m <= 0)
        return pt_error_set(err, PT_EINVAL, "lbfgs: n and m must be > 0 (got %lld, %d)",
                            (long long)n, m);
    int64_t bytes = bytes_for(n, m);
    pt_status st = pt_mem_reserve(mem, bytes, "L-BFGS history", err);
    if (st != PT_OK) return st;
    s->mem = mem;
    s->reserved = bytes;
    s->n = n;
    s->m = m;
    s->max_iter = 100;
    size_t nn = (size_t)n;
    s->x = pt_calloc(nn, sizeof(double));
    s->g = pt_calloc(nn, sizeof(double));
    s->d = pt_calloc(nn, sizeof(double));
    s->pg = pt_calloc(nn, sizeof(double));
    s->xt = pt_calloc(nn, sizeof(double));
    s->gt = pt_calloc(nn, sizeof(double));
    s->xl = pt_calloc(nn, sizeof(double));
    s->gl = pt_calloc(nn, sizeof(double));
    s->S = pt_calloc((size_t)m * nn, sizeof(double));
    s->Y = pt_calloc((size_t)m * nn, sizeof(double));
    s->rho = pt_calloc((size_t)m, sizeof(double));
    s->alpha = pt_calloc((size_t)m, sizeof(double));
    if (!s->x || !s->g || !s->d || !s->pg || !s->xt || !s->gt || !s->xl || !s->gl || !s->S ||
        !s->Y || !s->rho || !s->alpha) {
        pt__lbfgs_free(s);
        return pt_error_set(err, PT_ENOMEM, "lbfgs: out of memory for %lld unknowns",
                            (long long)n);
    }
    return PT_OK;
}

void pt__lbfgs_free(pt__lbfgs *s) {
    if (!s) return;
    double **bufs[] = {&s->x, &s->g,  &s->d, &s->pg,  &s->xt,   &s->gt,
                       &s->xl, &s->gl, &s->S, &s->Y, &s->rho, &s->alpha};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        pt_free(*bufs[i]);
        *bufs[i] = NULL;
    }
    pt_mem_release(s->mem, s->reserved);
    s->reserved = 0;
}

static double l1_norm(const pt__lbfgs *s, const double *x) {
    double r = 0;
    for (int64_t j = 0; j < s->npen; j++) r += fabs(x[j]);
    return r;
}

double pt__lbfgs_objective(const pt__lbfgs *s) {
    return s->l1 > 0 ? s->f + s->l1 * l1_norm(s, s->x) : s->f;
}

/* The pseudo-gradient of f + l1*|x[0..npen)|: the gradient where the term
 * is differentiable, else the one-sided derivative that points downhill,
 * or 0 when neither does (x_j = 0 is then optimal along j). */
static void pseudo_gradient(pt__lbfgs *s) {
    int64_t n = s->n, np = s->l1 > 0 ? s->npen : 0;
    const double *x = s->x, *g = s->g;
    double l1 = s->l1;
    for (int64_t j = 0; j < np; j++) {
        if (x[j] > 0) s->pg[j] = g[j] + l1;
        else if (x[j] < 0) s->pg[j] = g[j] - l1;
        else if (g[j] + l1 < 0) s->pg[j] = g[j] + l1;
        else if (g[j] - l1 > 0) s->pg[j] = g[j] - l1;
        else s->pg[j] = 0;
    }
    for (int64_t j = np; j < n; j++) s->pg[j] = g[j];
}

double pt__lbfgs_grad_norm(pt__lbfgs *s) {
    pseudo_gradient(s);
    return sqrt(dot(s->pg, s->pg, s->n));
}

static double max_abs(const double *v, int64_t n) {
    double r = 0;
    for (int64_t i = 0; i < n; i++) r = fmax(r, fabs(v[i]));
    return r;
}

pt_status pt__lbfgs_start(pt__lbfgs *s, const double *x0, pt_error *err) {
    memcpy(s->x, x0, (size_t)s->n * sizeof(double));
    s->iter = 0;
    s->count = s->head = 0;
    s->stop = PT__LBFGS_RUNNING;
    s->evals = 1;
    pt_status st = s->fn(s->arg, s->x, &s->f, s->g, err);
    if (st != PT_OK) return st;
    if (!isfinite(s->f))
        return pt_error_set(err, PT_ERANGE, "lbfgs: the objective is not finite at the start");
    if (s->max_iter <= 0) s->stop = PT__LBFGS_MAX_ITER;
    return PT_OK;
}

/* d = -H q by the two-loop recursion over the stored pairs. */
static void two_loop(pt__lbfgs *s, const double *q) {
    int64_t n = s->n;
    double *d = s->d;
    memcpy(d, q, (size_t)n * sizeof(double));
    for (int i = s->count - 1; i >= 0; i--) {
        int k = (s->head + i) % s->m;
        const double *Sk = s->S + (int64_t)k * n, *Yk = s->Y + (int64_t)k * n;
        double a = s->rho[k] * dot(Sk, d, n);
        s->alpha[i] = a;
        for (int64_t j = 0; j < n; j++) d[j] -= a * Yk[j];
    }
    double gamma = 1.0;
    if (s->count > 0) {
        int k = (s->head + s->count - 1) % s->m;
        const double *Yk = s->Y + (int64_t)k * n;
        gamma = 1.0 / (s->rho[k] * dot(Yk, Yk, n));
    }
    for (int64_t j = 0; j < n; j++) d[j] *= gamma;
    for (int i = 0; i < s->count; i++) {
        int k = (s->head + i) % s->m;
        const double *Sk = s->S + (int64_t)k * n, *Yk = s->Y + (int64_t)k * n;
        double b = s->rho[k] * dot(Yk, d, n);
        double c = s->alpha[i] - b;
        for (int64_t j = 0; j < n; j++) d[j] += c * Sk[j];
    }
    for (int64_t j = 0; j < n; j++) d[j] = -d[j];
}

/* Trial point x + a*d into xt/gt; returns f there and its slope along d. */
static pt_status trial(pt__lbfgs *s, double a, double *f, double *slope, pt_error *err) {
    int64_t n = s->n;
    for (int64_t j = 0; j < n; j++) s->xt[j] = s->x[j] + a * s->d[j];
    s->evals++;
    pt_status st = s->fn(s->arg, s->xt, f, s->gt, err);
    if (st != PT_OK) return st;
    *slope = dot(s->gt, s->d, n);
    return PT_OK;
}

static void keep_lo(pt__lbfgs *s) {
    memcpy(s->xl, s->xt, (size_t)s->n * sizeof(double));
    memcpy(s->gl, s->gt, (size_t)s->n * sizeof(double));
}

/* Minimiser of the cubic through (a, fa, da) and (b, fb, db), kept inside
 * the interval away from its ends; bisection when the cubic is useless. */
static double cubic_step(double a, double fa, double da, double b, double fb, double db) {
    double lo = fmin(a, b), hi = fmax(a, b), w = hi - lo;
    double d1 = da + db - 3.0 * (fa - fb) / (a - b);
    double disc = d1 * d1 - da * db;
    double t = 0.5 * (a + b);
    if (disc >= 0 && isfinite(disc)) {
        double d2 = copysign(sqrt(disc), b - a);
        double den = db - da + 2.0 * d2;
        if (den != 0) {
            double c = b - (b - a) * (db + d2 - d1) / den;
            if (isfinite(c)) t = c;
        }
    }
    if (!(t >= lo + 0.1 * w && t <= hi - 0.1 * w)) t = 0.5 * (a + b);
    return t;
}

/* Strong Wolfe, or Hager & Zhang's approximate Wolfe conditions: near the
 * optimum the decrease along d falls below the rounding noise of f, and
 * only the slope can tell a good step; accepting on the slope (with f not
 * above f(0) by more than its noise) lets the iterates converge to the
 * precision of the gradient instead of stalling at sqrt(eps). */
static bool wolfe_ok(double phi0, double dphi0, double a, double fa, double ga) {
    if (!isfinite(fa) || fabs(ga) > -LS_C2 * dphi0) return false;
    if (fa <= phi0 + LS_C1 * a * dphi0) return true;
    return fa <= phi0 + LS_FNOISE * fabs(phi0) && ga <= (2 * LS_HZ_DELTA - 1) * dphi0;
}

/* Strong-Wolfe line search along s->d. On success *found is true and the
 * new point is in (xt, gt) with value *fnew (or in (xl, gl) when *in_lo). */
static pt_status wolfe(pt__lbfgs *s, double a0, double dphi0, bool *found, bool *in_lo,
                       double *fnew, pt_error *err) {
    double phi0 = s->f;
    double a_prev = 0, f_prev = phi0, g_prev = dphi0;
    double a = a0, fa, ga;
    double a_lo = 0, f_lo = phi0, g_lo = dphi0, a_hi = 0, f_hi = 0, g_hi = 0;
    *found = *in_lo = false;
    int evals = 0;
    bool zoom = false;
    pt_status st;
    while (evals < LS_MAX_EVALS) {
        st = trial(s, a, &fa, &ga, err);
        if (st != PT_OK) return st;
        evals++;
        if (wolfe_ok(phi0, dphi0, a, fa, ga)) {
            *found = true;
            *fnew = fa;
            return PT_OK;
        }
        if (!isfinite(fa) || fa > phi0 + LS_C1 * a * dphi0 || (evals > 1 && fa >= f_prev)) {
            a_lo = a_prev, f_lo = f_prev, g_lo = g_prev;
            a_hi = a, f_hi = fa, g_hi = ga;
            zoom = true;
            break;
        }
        if (ga >= 0) {
            keep_lo(s);
            a_lo = a, f_lo = fa, g_lo = ga;
            a_hi = a_prev, f_hi = f_prev, g_hi = g_prev;
            zoom = true;
            break;
        }
        keep_lo(s);
        a_prev = a, f_prev = fa, g_prev = ga;
        a = a * 4.0;
    }
    if (!zoom) {
        /* Still descending after many expansions: take the farthest point. */
        if (a_prev > 0) {
            *found = *in_lo = true;
            *fnew = f_prev;
        }
        return PT_OK;
    }
    while (evals < LS_MAX_EVALS) {
        double t;
        if (isfinite(f_hi)) t = cubic_step(a_lo, f_lo, g_lo, a_hi, f_hi, g_hi);
        else t = 0.5 * (a_lo + a_hi);
        if (fabs(a_hi - a_lo) <= 1e-15 * fmax(a_lo, a_hi)) break;
        st = trial(s, t, &fa, &ga, err);
        if (st != PT_OK) return st;
        evals++;
        if (wolfe_ok(phi0, dphi0, t, fa, ga)) {
            *found = true;
            *fnew = fa;
            return PT_OK;
        }
        if (!isfinite(fa) || fa > phi0 + LS_C1 * t * dphi0 || fa >= f_lo) {
            a_hi = t, f_hi = fa, g_hi = ga;
        } else {
            if (ga * (a_hi - a_lo) >= 0) a_hi = a_lo, f_hi = f_lo, g_hi = g_lo;
            keep_lo(s);
            a_lo = t, f_lo = fa, g_lo = ga;
        }
    }
    /* No Wolfe point within the budget: the best point with sufficient
     * decrease still makes progress. */
    if (a_lo > 0 && f_lo < phi0) {
        *found = *in_lo = true;
        *fnew = f_lo;
    }
    return PT_OK;
}

/* Slope of F at xt along xt - x: the pseudo-gradient at (xt, gt) dotted
 * with the step. */
static double end_slope(const pt__lbfgs *s) {
    int64_t n = s->n, np = s->npen;
    double l1 = s->l1, r = 0;
    for (int64_t j = 0; j < n; j++) {
        double step = s->xt[j] - s->x[j], gj = s->gt[j], pj;
        if (j >= np) pj = gj;
        else if (s->xt[j] > 0) pj = gj + l1;
        else if (s->xt[j] < 0) pj = gj - l1;
        else if (gj + l1 < 0) pj = gj + l1;
        else if (gj - l1 > 0) pj = gj - l1;
        else pj = 0;
        r += pj * step;
    }
    return r;
}

/* Orthant-projected backtracking (OWL-QN): points whose coordinates leave
 * the orthant of x (or of -pg where x is 0) are clipped to 0. */
static pt_status owl_search(pt__lbfgs *s, double a0, bool *found, double *fnew, pt_error *err) {
    int64_t n = s->n, np = s->npen;
    double F0 = pt__lbfgs_objective(s), a = a0;
    *found = false;
    for (int it = 0; it < LS_MAX_EVALS * 2; it++) {
        for (int64_t j = 0; j < n; j++) s->xt[j] = s->x[j] + a * s->d[j];
        for (int64_t j = 0; j < np; j++) {
            double orth = s->x[j] != 0 ? s->x[j] : -s->pg[j];
            if (s->xt[j] * orth <= 0) s->xt[j] = 0;
        }
        double ft;
        s->evals++;
        pt_status st = s->fn(s->arg, s->xt, &ft, s->gt, err);
        if (st != PT_OK) return st;
        double Ft = ft + s->l1 * l1_norm(s, s->xt);
        double dec = 0;
        for (int64_t j = 0; j < n; j++) dec += s->pg[j] * (s->xt[j] - s->x[j]);
        /* Armijo on F, or (as in wolfe_ok) F within its noise and the
         * slope at the new point along the step not steeply uphill. */
        bool ok = isfinite(Ft) && Ft <= F0 + LS_C1 * dec;
        if (!ok && isfinite(Ft) && Ft <= F0 + LS_FNOISE * fabs(F0) && dec < 0)
            ok = end_slope(s) <= (2 * LS_HZ_DELTA - 1) * dec;
        if (ok) {
            *found = true;
            *fnew = ft;
            return PT_OK;
        }
        a *= 0.5;
    }
    return PT_OK;
}

/* Keeps (x_new - x, g_new - g) when it carries positive curvature; a
 * flat or non-convex step would spoil the inverse-Hessian estimate. */
static void push_pair(pt__lbfgs *s, const double *xn, const double *gn) {
    int64_t n = s->n;
    double sy = 0, yy = 0;
    for (int64_t j = 0; j < n; j++) {
        double sj = xn[j] - s->x[j], yj = gn[j] - s->g[j];
        sy += sj * yj;
        yy += yj * yj;
    }
    if (!(sy > 0 && sy > DBL_EPSILON * yy)) return;
    int k;
    if (s->count < s->m) {
        k = (s->head + s->count) % s->m;
        s->count++;
    } else {
        k = s->head;
        s->head = (s->head + 1) % s->m;
    }
    double *Sk = s->S + (int64_t)k * n, *Yk = s->Y + (int64_t)k * n;
    for (int64_t j = 0; j < n; j++) {
        Sk[j] = xn[j] - s->x[j];
        Yk[j] = gn[j] - s->g[j];
    }
    s->rho[k] = 1.0 / sy;
}

pt_status pt__lbfgs_iterate(pt__lbfgs *s, pt_error *err) {
    if (s->stop != PT__LBFGS_RUNNING) return PT_OK;
    int64_t n = s->n;
    bool owl = s->l1 > 0;
    pseudo_gradient(s);
    double F0 = pt__lbfgs_objective(s);
    if (max_abs(s->pg, n) == 0) {
        s->stop = PT__LBFGS_GRAD;
        return PT_OK;
    }
    bool found = false, in_lo = false;
    double fnew = 0;
    for (int attempt = 0; attempt < 2 && !found; attempt++) {
        if (attempt == 1) {
            if (s->count == 0) break;
            s->count = s->head = 0; /* retry once along steepest descent */
        }
        two_loop(s, s->pg);
        if (owl)
            for (int64_t j = 0; j < n; j++)
                if (s->d[j] * s->pg[j] >= 0) s->d[j] = 0;
        double slope = dot(s->pg, s->d, n);
        if (!(slope < 0)) {
            s->count = s->head = 0;
            for (int64_t j = 0; j < n; j++) s->d[j] = -s->pg[j];
            slope = dot(s->pg, s->d, n);
        }
        double a0 = 1.0;
        if (s->count == 0) a0 = fmin(1.0, 1.0 / sqrt(dot(s->pg, s->pg, n)));
        pt_status st = owl ? owl_search(s, a0, &found, &fnew, err)
                           : wolfe(s, a0, slope, &found, &in_lo, &fnew, err);
        if (st != PT_OK) return st;
    }
    if (!found) {
        s->stop = PT__LBFGS_NO_PROGRESS;
        return PT_OK;
    }
    const double *xn = in_lo ? s->xl : s->xt, *gn = in_lo ? s->gl : s->gt;
    push_pair(s, xn, gn);
    memcpy(s->x, xn, (size_t)n * sizeof(double));
    memcpy(s->g, gn, (size_t)n * sizeof(double));
    s->f = fnew;
    s->iter++;
    double F1 = pt__lbfgs_objective(s);
    pseudo_gradient(s);
    if (s->iter >= s->max_iter) s->stop = PT__LBFGS_MAX_ITER;
    else if (max_abs(s->pg, n) <= s->tol * fabs(F1)) s->stop = PT__LBFGS_GRAD;
    else if (fabs(F0 - F1) < s->tol * fmax(fabs(F0), fabs(F1))) s->stop = PT__LBFGS_FVAL;
    return PT_OK;
}

/* State layout: iter, f, count, head, evals, g[n], rho[m], S[m*n], Y[m*n]. */
int64_t pt__lbfgs_state_size(const pt__lbfgs *s) {
    return 5 + s->n + s->m + 2 * (int64_t)s->m * s->n;
}

void pt__lbfgs_state_save(const pt__lbfgs *s, double *out) {
    int64_t n = s->n, m = s->m;
    out[0] = (double)s->iter;
    out[1] = s->f;
    out[2] = s->count;
    out[3] = s->head;
    out[4] = (double)s->evals;
    memcpy(out + 5, s->g, (size_t)n * sizeof(double));
    memcpy(out + 5 + n, s->rho, (size_t)m * sizeof(double));
    memcpy(out + 5 + n + m, s->S, (size_t)(m * n) * sizeof(double));
    memcpy(out + 5 + n + m + m * n, s->Y, (size_t)(m * n) * sizeof(double));
}

pt_status pt__lbfgs_state_load(pt__lbfgs *s, const double *x, const double *in, int64_t nstate,
                               pt_error *err) {
    int64_t n = s->n, m = s->m;
    if (nstate != pt__lbfgs_state_size(s))
        return pt_error_set(err, PT_ECORRUPT,
                            "lbfgs: checkpoint state has %lld values, expected %lld",
                            (long long)nstate, (long long)pt__lbfgs_state_size(s));
    int count = (int)in[2], head = (int)in[3];
    if (!(in[0] >= 0) || count < 0 || count > m || head < 0 || head >= m)
        return pt_error_set(err, PT_ECORRUPT, "lbfgs: checkpoint state is inconsistent");
    s->iter = (int64_t)in[0];
    s->f = in[1];
    s->count = count;
    s->head = head;
    s->evals = (int64_t)in[4];
    memcpy(s->x, x, (size_t)n * sizeof(double));
    memcpy(s->g, in + 5, (size_t)n * sizeof(double));
    memcpy(s->rho, in + 5 + n, (size_t)m * sizeof(double));
    memcpy(s->S, in + 5 + n + m, (size_t)(m * n) * sizeof(double));
    memcpy(s->Y, in + 5 + n + m + m * n, (size_t)(m * n) * sizeof(double));
    s->stop = s->iter >= s->max_iter ? PT__LBFGS_MAX_ITER : PT__LBFGS_RUNNING;
    return PT_OK;
}
