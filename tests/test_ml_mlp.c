/*
 * test_ml_mlp.c - the multilayer perceptron against a naive per-row
 * forward pass written here: the loss equals it, the gradient equals its
 * central finite differences (every activation, dense and both CSR paths),
 * standardisation folds into the first layer exactly, small nonlinear
 * problems are learnt, and training is reproducible, independent of the
 * thread count, and resumes after a SIGKILL to the same model.
 */
#include "pt_test.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ml/ml_internal.h"
#include "ml/ml_nn.h"

static pt_dataset *ds_dense(int64_t n, int64_t nf, const double *x, const double *y) {
    pt_dataset *d = pt_calloc(1, sizeof *d);
    d->nrows = d->nrows_global = n;
    d->nfeatures = nf;
    d->x = pt_malloc((size_t)(n * nf) * sizeof(double));
    memcpy(d->x, x, (size_t)(n * nf) * sizeof(double));
    d->y = pt_malloc((size_t)n * sizeof(double));
    memcpy(d->y, y, (size_t)n * sizeof(double));
    d->row_id = pt_malloc((size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) d->row_id[i] = i;
    return d;
}

static pt_dataset *ds_sparse(int64_t n, int64_t nf, const double *x, const double *y) {
    pt_dataset *d = pt_calloc(1, sizeof *d);
    d->nrows = d->nrows_global = n;
    d->nfeatures = nf;
    d->sparse = true;
    d->indptr = pt_malloc((size_t)(n + 1) * sizeof(int64_t));
    int64_t nnz = 0;
    for (int64_t i = 0; i < n * nf; i++) nnz += x[i] != 0;
    d->indices = pt_malloc((size_t)(nnz + 1) * sizeof(int32_t));
    d->values = pt_malloc((size_t)(nnz + 1) * sizeof(double));
    int64_t p = 0;
    for (int64_t i = 0; i < n; i++) {
        d->indptr[i] = p;
        for (int64_t f = 0; f < nf; f++)
            if (x[i * nf + f] != 0) {
                d->indices[p] = (int32_t)f;
                d->values[p++] = x[i * nf + f];
            }
    }
    d->indptr[n] = p;
    d->y = pt_malloc((size_t)n * sizeof(double));
    memcpy(d->y, y, (size_t)n * sizeof(double));
    d->row_id = pt_malloc((size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) d->row_id[i] = i;
    return d;
}

static void ds_free(pt_dataset *d) {
    if (!d) return;
    pt_free(d->x);
    pt_free(d->indptr);
    pt_free(d->indices);
    pt_free(d->values);
    pt_free(d->y);
    pt_free(d->row_id);
    pt_free(d);
}

static void set_shape(pt_model *m, int L, const int64_t *s, pt_activation act) {
    memset(m, 0, sizeof *m);
    m->kind = PT_MODEL_MLP;
    m->nlayers = L;
    m->activation = act;
    m->nparams = 0;
    for (int l = 0; l <= L; l++) m->sizes[l] = s[l];
    for (int l = 0; l < L; l++) m->nparams += s[l + 1] * s[l] + s[l + 1];
    m->nfeatures = s[0];
    m->nclasses = (int)s[L];
}

/* The network written out row by row: logits of one row into z. */
static void ref_forward(const pt_model *m, const double *P, const double *x, double *z) {
    double a[64], b[64];
    int64_t off = 0;
    memcpy(a, x, (size_t)m->sizes[0] * sizeof(double));
    for (int l = 0; l < m->nlayers; l++) {
        int64_t ni = m->sizes[l], no = m->sizes[l + 1];
        const double *W = P + off, *bias = P + off + no * ni;
        for (int64_t o = 0; o < no; o++) {
            double s = bias[o];
            for (int64_t i = 0; i < ni; i++) s += W[o * ni + i] * a[i];
            if (l < m->nlayers - 1) {
                if (m->activation == PT_ACT_RELU) s = s > 0 ? s : 0;
                else if (m->activation == PT_ACT_TANH) s = tanh(s);
                else s = 1 / (1 + exp(-s));
            }
            b[o] = s;
        }
        memcpy(a, b, (size_t)no * sizeof(double));
        off += no * ni + no;
    }
    memcpy(z, a, (size_t)m->sizes[m->nlayers] * sizeof(double));
}

static double ref_loss(const pt_model *m, const double *P, const double *x, const double *y,
                       int64_t n, double reg) {
    int64_t nf = m->sizes[0], C = m->sizes[m->nlayers];
    double t = 0, z[64];
    for (int64_t r = 0; r < n; r++) {
        ref_forward(m, P, x + r * nf, z);
        double s = 0;
        for (int64_t j = 0; j < C; j++) s += exp(z[j]);
        t += log(s) - z[(int)y[r]];
    }
    double w2 = 0;
    int64_t off = 0;
    for (int l = 0; l < m->nlayers; l++) {
        int64_t ni = m->sizes[l], no = m->sizes[l + 1];
        for (int64_t i = 0; i < no * ni; i++) w2 += P[off + i] * P[off + i];
        off += no * ni + no;
    }
    return t / (double)n + 0.5 * reg * w2;
}

static double *rand_vec(int64_t n, uint64_t seed, double lo, double hi) {
    pt_rng r;
    pt_rng_seed(&r, seed);
    double *v = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * pt_rng_uniform(&r);
    return v;
}

static pt_ctx *ctx_threads(int t) {
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = t;
    pt_ctx *c = NULL;
    pt_error e;
    if (pt_ctx_new(&co, &c, &e) != PT_OK) return NULL;
    return c;
}

/* Loss equals the reference; gradient equals central differences of the
 * reference loss. */
static void check_grad(pt_activation act, bool sparse) {
    int64_t n = 150, s[4] = {6, 5, 4, 3};
    pt_model shape;
    set_shape(&shape, 3, s, act);
    double *x = rand_vec(n * 6, 1, -2, 2);
    for (int64_t i = 0; i < n * 6; i += 4) x[i] = 0; /* some zeros for CSR */
    double *y = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) y[i] = (double)(i % 3);
    double *P = rand_vec(shape.nparams, 2 + (uint64_t)act, -0.8, 0.8);
    pt_dataset *d = sparse ? ds_sparse(n, 6, x, y) : ds_dense(n, 6, x, y);
    double *g = malloc((size_t)shape.nparams * sizeof(double));
    double loss = 0, reg = 0.05;
    pt_ctx *ctx = ctx_threads(2);
    pt_error e;
    pt_status st = pt__mlp_loss_grad(&shape, ctx, NULL, d, reg, P, &loss, g, &e);
    if (st != PT_OK) {
        pt_test_fail(__FILE__, __LINE__, "loss_grad: %s", e.msg);
        goto out;
    }
    double ref = ref_loss(&shape, P, x, y, n, reg);
    if (!(fabs(loss - ref) <= 1e-12 * fabs(ref)))
        pt_test_fail(__FILE__, __LINE__, "act %d loss %.17g vs %.17g", act, loss, ref);
    for (int64_t i = 0; i < shape.nparams; i++) {
        double h = 1e-5, keep = P[i];
        P[i] = keep + h;
        double lp = ref_loss(&shape, P, x, y, n, reg);
        P[i] = keep - h;
        double lm = ref_loss(&shape, P, x, y, n, reg);
        P[i] = keep;
        double fd = (lp - lm) / (2 * h);
        if (!(fabs(fd - g[i]) <= 1e-6 * fmax(1.0, fabs(fd)))) {
            pt_test_fail(__FILE__, __LINE__, "act %d sparse %d param %lld: grad %.10g vs fd %.10g",
                         act, sparse, (long long)i, g[i], fd);
            break;
        }
    }
out:
    pt_ctx_free(ctx);
    ds_free(d);
    free(x);
    free(y);
    free(P);
    free(g);
}

TEST(mlp_gradient_matches_finite_differences) {
    check_grad(PT_ACT_RELU, false);
    check_grad(PT_ACT_TANH, false);
    check_grad(PT_ACT_SIGMOID, false);
    check_grad(PT_ACT_TANH, true);
}

/* CSR rows with many features take the sparse first layer. The reference
 * there works on a few active features only: the other weights multiply
 * zeros, so their gradient is exactly the L2 term. */
TEST(mlp_gradient_sparse_first_layer) {
    int64_t n = 80, nf = 10000, s[3] = {nf, 4, 3};
    pt_model shape;
    set_shape(&shape, 2, s, PT_ACT_TANH);
    /* Every row uses features 7, 500 and 9999 only. */
    int64_t act_f[3] = {7, 500, 9999};
    double *xs = rand_vec(n * 3, 5, -1, 1);
    double *y = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) y[i] = (double)((i * 7) % 3);
    pt_dataset *d = pt_calloc(1, sizeof *d);
    d->nrows = d->nrows_global = n;
    d->nfeatures = nf;
    d->sparse = true;
    d->indptr = pt_malloc((size_t)(n + 1) * sizeof(int64_t));
    d->indices = pt_malloc((size_t)(3 * n) * sizeof(int32_t));
    d->values = pt_malloc((size_t)(3 * n) * sizeof(double));
    d->y = pt_malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i <= n; i++) d->indptr[i] = 3 * i;
    for (int64_t i = 0; i < n; i++) {
        d->y[i] = y[i];
        for (int j = 0; j < 3; j++) {
            d->indices[3 * i + j] = (int32_t)act_f[j];
            d->values[3 * i + j] = xs[3 * i + j];
        }
    }
    double *P = rand_vec(shape.nparams, 9, -0.5, 0.5);
    double *g = malloc((size_t)shape.nparams * sizeof(double));
    double loss = 0, reg = 0.01;
    pt_error e;
    pt_status st = pt__mlp_loss_grad(&shape, NULL, NULL, d, reg, P, &loss, g, &e);
    if (st != PT_OK) pt_test_fail(__FILE__, __LINE__, "loss_grad: %s", e.msg);
    /* The small network on the 3 active features, same weights. */
    int64_t s3[3] = {3, 4, 3};
    pt_model small;
    set_shape(&small, 2, s3, PT_ACT_TANH);
    double *Q = malloc((size_t)small.nparams * sizeof(double));
    for (int o = 0; o < 4; o++)
        for (int j = 0; j < 3; j++) Q[o * 3 + j] = P[o * nf + act_f[j]];
    memcpy(Q + 12, P + 4 * nf, (size_t)(4 + 12 + 3) * sizeof(double));
    double w2rest = 0;
    for (int o = 0; o < 4; o++)
        for (int64_t f = 0; f < nf; f++)
            if (f != 7 && f != 500 && f != 9999) w2rest += P[o * nf + f] * P[o * nf + f];
    double ref = ref_loss(&small, Q, xs, y, n, reg) + 0.5 * reg * w2rest;
    CHECK_NEAR(loss, ref, 1e-12);
    for (int64_t i = 0; i < small.nparams; i++) {
        int64_t pi = i < 12 ? (i / 3) * nf + act_f[i % 3] : 4 * nf + (i - 12);
        double h = 1e-5, keep = Q[i];
        Q[i] = keep + h;
        double lp = ref_loss(&small, Q, xs, y, n, reg);
        Q[i] = keep - h;
        double lm = ref_loss(&small, Q, xs, y, n, reg);
        Q[i] = keep;
        CHECK_NEAR(g[pi], (lp - lm) / (2 * h), 1e-6);
    }
    for (int64_t f = 0; f < nf; f += 97)
        if (f != 7 && f != 500 && f != 9999) CHECK(g[2 * nf + f] == reg * P[2 * nf + f]);
    free(xs);
    free(y);
    free(P);
    free(g);
    free(Q);
    ds_free(d);
}

static double accuracy(const pt_model *m, const pt_dataset *d) {
    pt_predictions p;
    pt_error e;
    if (pt_model_predict(m, NULL, d, &p, &e) != PT_OK) return -1;
    int64_t ok = 0;
    for (int64_t i = 0; i < d->nrows; i++) ok += p.label[i] == d->y[i];
    pt_predictions_free(&p);
    return (double)ok / (double)d->nrows;
}

TEST(mlp_learns_xor) {
    int64_t n = 200;
    double *x = malloc((size_t)(2 * n) * sizeof(double)), *y = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        int a = (int)(i & 1), b = (int)((i >> 1) & 1);
        x[2 * i] = a;
        x[2 * i + 1] = b;
        y[i] = a ^ b;
    }
    pt_dataset *d = ds_dense(n, 2, x, y);
    int hidden[1] = {8};
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_MLP);
    o.nhidden = 1;
    o.hidden = hidden;
    o.activation = PT_ACT_TANH;
    o.learning_rate = 0.05;
    o.batch_size = 32;
    o.max_iter = 100;
    pt_model *m = NULL;
    pt_error e;
    CHECK_OK(pt_train(&o, d, &m, &e), &e);
    CHECK_EQ_I(pt_model_nclasses(m), 2);
    CHECK(accuracy(m, d) == 1.0);
    CHECK(pt_model_loss(m) < 0.05);
    pt_model_free(m);
    ds_free(d);
    free(x);
    free(y);
}

/* Three classes: inside a disc, a ring around it, and outside; features
 * on a large scale, so standardisation matters. */
TEST(mlp_learns_rings) {
    int64_t n = 1500;
    double *x = rand_vec(2 * n, 17, -3, 3), *y = malloc((size_t)n * sizeof(double));
    int64_t keep = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = sqrt(x[2 * i] * x[2 * i] + x[2 * i + 1] * x[2 * i + 1]);
        if (fabs(r - 1.2) < 0.15 || fabs(r - 2.2) < 0.15) continue; /* a margin */
        x[2 * keep] = 1000 * x[2 * i];
        x[2 * keep + 1] = 1000 * x[2 * i + 1] + 5000;
        y[keep++] = r < 1.2 ? 0 : r < 2.2 ? 1 : 2;
    }
    pt_dataset *d = ds_dense(keep, 2, x, y);
    int hidden[2] = {32, 16};
    pt_activation acts[2] = {PT_ACT_RELU, PT_ACT_SIGMOID};
    for (int a = 0; a < 2; a++) {
        pt_train_opts o;
        pt_train_opts_init(&o, PT_MODEL_MLP);
        o.nhidden = 2;
        o.hidden = hidden;
        o.activation = acts[a];
        o.learning_rate = 0.01;
        o.batch_size = 64;
        o.max_iter = 150;
        pt_model *m = NULL;
        pt_error e;
        CHECK_OK(pt_train(&o, d, &m, &e), &e);
        double acc = accuracy(m, d);
        CHECK_MSG(acc == 1.0, "activation %d: accuracy %g", a, acc);
        pt_model_free(m);
    }
    ds_free(d);
    free(x);
    free(y);
}

/* With no epoch run, the reported objective is computed on standardised
 * inputs before folding; the folded model on raw inputs must give the same
 * objective, and its predictions must equal the reference forward pass. */
TEST(mlp_standardisation_folds_into_first_layer) {
    int64_t n = 300;
    double *x = rand_vec(3 * n, 23, -1, 1), *y = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        x[3 * i] = 50 + 30 * x[3 * i];
        x[3 * i + 2] = 7; /* constant: ignored */
        y[i] = (double)(i % 4);
    }
    pt_dataset *d = ds_dense(n, 3, x, y);
    int hidden[1] = {6};
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_MLP);
    o.nhidden = 1;
    o.hidden = hidden;
    o.activation = PT_ACT_TANH;
    o.max_iter = 0;
    o.reg_param = 0.02;
    pt_model *m = NULL;
    pt_error e;
    CHECK_OK(pt_train(&o, d, &m, &e), &e);
    CHECK_EQ_I(pt_model_nclasses(m), 4);
    CHECK_EQ_I(pt_model_iterations(m), 0);
    /* The L2 term is on the standardised-space weights, so compare the
     * cross-entropy alone: reg 0 on both sides. */
    o.reg_param = 0;
    pt_model *m0 = NULL;
    CHECK_OK(pt_train(&o, d, &m0, &e), &e);
    double ref = ref_loss(m0, m0->params, x, y, n, 0);
    CHECK_NEAR(pt_model_loss(m0), ref, 1e-12);
    /* The constant feature has no weight after folding. */
    for (int o2 = 0; o2 < 6; o2++) CHECK(m0->params[o2 * 3 + 2] == 0);
    pt_predictions p;
    CHECK_OK(pt_model_predict(m0, NULL, d, &p, &e), &e);
    CHECK_EQ_I(p.ncols, 4);
    for (int64_t i = 0; i < n; i++) {
        double z[4], s = 0;
        ref_forward(m0, m0->params, x + 3 * i, z);
        int64_t best = 0;
        for (int j = 0; j < 4; j++) {
            CHECK_NEAR(p.raw[i * 4 + j], z[j], 1e-12);
            s += p.prob[i * 4 + j];
            if (z[j] > z[best]) best = j;
        }
        CHECK_NEAR(s, 1.0, 1e-12);
        CHECK_EQ_I((int64_t)p.label[i], best);
    }
    pt_predictions_free(&p);
    pt_model_free(m);
    pt_model_free(m0);
    ds_free(d);
    free(x);
    free(y);
}

static pt_model *train_small(const pt_dataset *d, pt_ctx *ctx, uint64_t seed, pt_solver solver,
                             int epochs) {
    static int hidden[2] = {16, 8};
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_MLP);
    o.nhidden = 2;
    o.hidden = hidden;
    o.solver = solver;
    o.seed = seed;
    o.max_iter = epochs;
    o.batch_size = 256;
    o.reg_param = 1e-3;
    o.ctx = ctx;
    pt_model *m = NULL;
    pt_error e;
    if (pt_train(&o, d, &m, &e) != PT_OK) {
        fprintf(stderr, "train: %s\n", e.msg);
        return NULL;
    }
    return m;
}

static pt_dataset *blobs3(int64_t n, bool sparse) {
    double *x = rand_vec(5 * n, 41, -1, 1), *y = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        y[i] = (double)(i % 3);
        x[5 * i + (i % 3)] += 1.5;
        if (i % 5 == 0) x[5 * i + 4] = 0;
    }
    pt_dataset *d = sparse ? ds_sparse(n, 5, x, y) : ds_dense(n, 5, x, y);
    free(x);
    free(y);
    return d;
}

TEST(mlp_reproducible_and_thread_count_independent) {
    pt_dataset *d = blobs3(1100, false);
    pt_ctx *c1 = ctx_threads(1), *c4 = ctx_threads(4);
    pt_model *a = train_small(d, c1, 42, PT_SOLVER_ADAM, 30);
    pt_model *b = train_small(d, c4, 42, PT_SOLVER_ADAM, 30);
    pt_model *c = train_small(d, c4, 7, PT_SOLVER_ADAM, 30);
    pt_model *s1 = train_small(d, c1, 42, PT_SOLVER_SGD, 3);
    pt_model *s4 = train_small(d, c4, 42, PT_SOLVER_SGD, 3);
    CHECK(a && b && c && s1 && s4);
    CHECK_EQ_I(a->nparams, 5 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3);
    CHECK(memcmp(a->params, b->params, (size_t)a->nparams * sizeof(double)) == 0);
    CHECK(a->loss == b->loss);
    CHECK(memcmp(a->params, c->params, (size_t)a->nparams * sizeof(double)) != 0);
    CHECK(memcmp(s1->params, s4->params, (size_t)s1->nparams * sizeof(double)) == 0);
    CHECK_MSG(accuracy(a, d) > 0.8, "accuracy %g", accuracy(a, d));
    pt_model_free(a);
    pt_model_free(b);
    pt_model_free(c);
    pt_model_free(s1);
    pt_model_free(s4);
    pt_ctx_free(c1);
    pt_ctx_free(c4);
    ds_free(d);
}

/* Without standardisation (which centres dense rows only), dense and CSR
 * inputs feed identical numbers to the network. */
TEST(mlp_dense_and_sparse_identical) {
    pt_dataset *dd = blobs3(700, false), *ds = blobs3(700, true);
    static int hidden[1] = {10};
    pt_model *m[2];
    for (int i = 0; i < 2; i++) {
        pt_train_opts o;
        pt_train_opts_init(&o, PT_MODEL_MLP);
        o.nhidden = 1;
        o.hidden = hidden;
        o.max_iter = 3;
        o.standardization = false;
        pt_error e;
        m[i] = NULL;
        CHECK_OK(pt_train(&o, i ? ds : dd, &m[i], &e), &e);
    }
    CHECK(memcmp(m[0]->params, m[1]->params, (size_t)m[0]->nparams * sizeof(double)) == 0);
    pt_model_free(m[0]);
    pt_model_free(m[1]);
    ds_free(dd);
    ds_free(ds);
}

TEST(mlp_errors_name_the_problem) {
    double x[8] = {0, 1, 1, 0, 2, 2, 3, 1}, y[4] = {0, 1, 1.5, 0};
    pt_dataset *d = ds_dense(4, 2, x, y);
    int hidden[1] = {3};
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_MLP);
    o.nhidden = 1;
    o.hidden = hidden;
    pt_model *m = NULL;
    pt_error e;
    CHECK(pt_train(&o, d, &m, &e) == PT_EINVAL);
    CHECK(m == NULL);
    CHECK_CONTAINS(e.msg, "label 1.5 of row 2");
    d->y[2] = 1;
    o.solver = PT_SOLVER_LBFGS;
    CHECK(pt_train(&o, d, &m, &e) == PT_EUNSUPPORTED);
    CHECK_CONTAINS(e.msg, "lbfgs");
    ds_free(d);
}

static void kill_at_3(const pt_train_progress *p, void *arg) {
    (void)arg;
    if (p->iter == 3) kill(getpid(), SIGKILL);
}

/* The first epoch a run reports: after its checkpoint when it resumed. */
static void first_epoch(const pt_train_progress *p, void *arg) {
    int64_t *first = arg;
    if (*first == 0) *first = p->iter;
}

TEST(mlp_resume_after_kill_equals_uninterrupted) {
    pt_dataset *d = blobs3(900, false);
    static int hidden[1] = {12};
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_MLP);
    o.nhidden = 1;
    o.hidden = hidden;
    o.max_iter = 6;
    o.batch_size = 100;
    o.reg_param = 1e-3;
    pt_model *full = NULL, *res = NULL;
    pt_error e;
    CHECK_OK(pt_train(&o, d, &full, &e), &e);
    o.checkpoint_dir = pt_test_tmp("mlp_ckpt");
    o.checkpoint_every = 1;
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        pt_train_opts oc = o;
        oc.progress = kill_at_3;
        pt_model *m = NULL;
        pt_error ec;
        if (pt_train(&oc, d, &m, &ec) != PT_OK) _exit(3);
        _exit(0); /* not reached: killed at epoch 3 */
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
    o.resume = true;
    int64_t first = 0;
    o.progress = first_epoch;
    o.progress_arg = &first;
    CHECK_OK(pt_train(&o, d, &res, &e), &e);
    /* epoch 3's checkpoint is written before its progress line */
    CHECK_MSG(first == 4, "the resumed run began at epoch %lld, not 4", (long long)first);
    CHECK_EQ_I(pt_model_iterations(res), 6);
    CHECK(memcmp(full->params, res->params, (size_t)full->nparams * sizeof(double)) == 0);
    CHECK(full->loss == res->loss);
    pt_model_free(full);
    pt_model_free(res);
    ds_free(d);
}

TEST(mlp_saved_model_predicts_identically) {
    pt_dataset *d = blobs3(600, false);
    pt_model *m = train_small(d, NULL, 42, PT_SOLVER_ADAM, 3), *l = NULL;
    CHECK(m != NULL);
    pt_error e;
    const char *path = pt_test_tmp("mlp.model");
    CHECK_OK(pt_model_save(m, path, &e), &e);
    CHECK_OK(pt_model_load(path, &l, &e), &e);
    CHECK(pt_model_kind_of(l) == PT_MODEL_MLP);
    pt_predictions a, b;
    CHECK_OK(pt_model_predict(m, NULL, d, &a, &e), &e);
    CHECK_OK(pt_model_predict(l, NULL, d, &b, &e), &e);
    CHECK_EQ_I(a.ncols, 3);
    CHECK(memcmp(a.label, b.label, (size_t)a.n * sizeof(double)) == 0);
    CHECK(memcmp(a.prob, b.prob, (size_t)(a.n * 3) * sizeof(double)) == 0);
    CHECK(memcmp(a.raw, b.raw, (size_t)(a.n * 3) * sizeof(double)) == 0);
    pt_predictions_free(&a);
    pt_predictions_free(&b);
    pt_model_free(m);
    pt_model_free(l);
    ds_free(d);
}
