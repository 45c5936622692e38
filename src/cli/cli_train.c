/*
 * cli_train.c - `partita train`, `partita predict` and `partita eval`: read
 * a libsvm or CSV file (each rank its share under mpirun), split or read a
 * test file, train through pt_train (data-parallel over the ranks), report
 * held-out metrics, save, load and predict. The library does the work; this
 * file parses options, narrates on rank 0 and prints one machine-readable
 * "result" line that bench/ml.sh parses.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Hidden layers accepted by --hidden (the output layer makes one more). */
#define TRAIN_MAX_HIDDEN 15

/* ------------------------------------------------------------------------ */
/* Shared: job (comm + ctx), data loading, metrics                           */
/* ------------------------------------------------------------------------ */

typedef struct ml_job {
    pt_ctx *ctx;
    pt_comm *comm;
    int rank, size;
} ml_job;

static pt_status job_open(ml_job *j, pt_error *err) {
    memset(j, 0, sizeof *j);
    PT_RETURN_NOT_OK(cli_ctx_new(cli_g.threads, cli_g.memory_limit, &j->ctx, err));
    /* auto: MPI under mpirun, else one process */
    pt_status s = pt_comm_init(NULL, &j->comm, err);
    if (s != PT_OK) {
        pt_ctx_free(j->ctx);
        j->ctx = NULL;
        return s;
    }
    j->rank = pt_comm_rank(j->comm);
    j->size = pt_comm_size(j->comm);
    return PT_OK;
}

static void job_close(ml_job *j) {
    pt_comm_free(j->comm);
    pt_ctx_free(j->ctx);
    memset(j, 0, sizeof *j);
}

/* Failure on some rank: every rank reports its own message, prefixed with
 * the rank when there are several. */
static int job_fail(const ml_job *j, const pt_error *err) {
    if (j->size > 1) {
        fprintf(stderr, "partita (rank %d): %s\n", j->rank,
                err->msg[0] ? err->msg : pt_status_str(err->code));
        return CLI_EXIT_FAIL;
    }
    return cli_fail(err);
}

typedef struct data_args {
    const char *format;   /* NULL: from the file name */
    const char *label;    /* CSV label column */
    char **features;      /* CSV feature columns, or NULL: all others */
    int nfeatures;
    int dense;            /* -1 auto, 0 sparse, 1 dense (libsvm) */
} data_args;

static int is_csv(const data_args *a, const char *path) {
    if (a->format) return strcmp(a->format, "csv") == 0;
    size_t n = strlen(path);
    return n >= 4 && strcmp(path + n - 4, ".csv") == 0;
}

/* Reads this rank's share of `path`. nfeatures > 0 fixes the width (a test
 * file read against the training set or a model); `like`, when given, is
 * the training set whose CSV feature columns (one-hot categories included)
 * the file must have, in the same order. */
static pt_status load_data(ml_job *j, const data_args *a, const char *path, bool classify,
                           bool dense_default, int64_t nfeatures, const pt_dataset *like,
                           pt_dataset **out, pt_error *err) {
    *out = NULL;
    if (!is_csv(a, path)) {
        pt_libsvm_opts o;
        pt_libsvm_opts_init(&o);
        o.nfeatures = nfeatures;
        o.labels = classify ? PT_LABELS_AUTO : PT_LABELS_RAW;
        o.dense = a->dense < 0 ? dense_default : a->dense == 1;
        return pt_libsvm_read(j->ctx, j->comm, path, &o, out, err);
    }
    /* CSV: the reader is not split by rank; every rank parses the file and
     * keeps its contiguous block of rows, so row ids stay the file order. */
    pt_csv_opts co;
    pt_csv_opts_init(&co);
    co.progress = 0;
    pt_table *t = NULL, *mine = NULL;
    PT_RETURN_NOT_OK(pt_csv_read(j->ctx, path, &co, &t, NULL, err));
    pt_status s = PT_OK;
    if (j->size > 1) {
        int64_t lo = t->nrows * j->rank / j->size, hi = t->nrows * (j->rank + 1) / j->size;
        s = pt_table_slice(t, lo, hi - lo, &mine, err);
    }
    if (s == PT_OK)
        s = pt_dataset_from_table(j->ctx, j->comm, mine ? mine : t, a->label ? a->label : "label",
                                  a->nfeatures, (const char *const *)a->features, classify, out,
                                  err);
    if (s == PT_OK && nfeatures > 0 && (*out)->nfeatures != nfeatures) {
        s = pt_error_set(err, PT_EINVAL, "%s: %lld features, expected %lld", path,
                         (long long)(*out)->nfeatures, (long long)nfeatures);
    }
    for (int64_t f = 0; s == PT_OK && like && like->feature_names && (*out)->feature_names &&
                        f < (*out)->nfeatures;
         f++) {
        const char *want = like->feature_names[f], *got = (*out)->feature_names[f];
        if (strcmp(want, got) != 0)
            s = pt_error_set(err, PT_EINVAL,
                             "%s: feature %lld is '%s' where the training data has '%s' (text "
                             "columns must have the same categories in both files)",
                             path, (long long)f + 1, got, want);
    }
    if (s != PT_OK) {
        pt_dataset_free(*out);
        *out = NULL;
    }
    pt_table_free(mine);
    pt_table_free(t);
    return s;
}

static const char *kind_name(pt_model_kind k) {
    switch (k) {
    case PT_MODEL_LINREG: return "linreg";
    case PT_MODEL_LOGREG: return "logreg";
    case PT_MODEL_KMEANS: return "kmeans";
    case PT_MODEL_MLP: return "mlp";
    }
    return "?";
}

/* Metrics of model m on d (collective), printed on rank 0; `extra` gets the
 * key=value pairs of the result line. */
static pt_status report_metrics(ml_job *j, const pt_model *m, const pt_dataset *d,
                                const char *title, char *extra, size_t cap, pt_error *err) {
    pt_model_kind kind = pt_model_kind_of(m);
    extra[0] = '\0';
    if (kind == PT_MODEL_KMEANS) {
        double cost;
        PT_RETURN_NOT_OK(pt_kmeans_cost(j->comm, j->ctx, m, d, &cost, err));
        if (j->rank == 0) {
            printf("%s (%lld rows):\n  WSSSE      %.10g\n", title, (long long)d->nrows_global,
                   cost);
        }
        snprintf(extra, cap, " cost=%.10g", cost);
        return PT_OK;
    }
    pt_predictions p;
    PT_RETURN_NOT_OK(pt_model_predict(m, j->ctx, d, &p, err));
    pt_status s;
    if (kind == PT_MODEL_LINREG) {
        pt_reg_metrics r;
        s = pt_metrics_regression(j->comm, d->nrows, d->y, p.label, &r, err);
        if (s == PT_OK && j->rank == 0)
            printf("%s (%lld rows):\n  RMSE       %.6g\n  MAE        %.6g\n  R2         %.6f\n",
                   title, (long long)r.n, r.rmse, r.mae, r.r2);
        if (s == PT_OK) snprintf(extra, cap, " rmse=%.6g mae=%.6g r2=%.6f", r.rmse, r.mae, r.r2);
    } else {
        pt_class_metrics c;
        int k = pt_model_nclasses(m);
        s = pt_metrics_classification(j->comm, d->nrows, d->y, p.label, p.prob, p.ncols, k, &c,
                                      err);
        if (s == PT_OK && j->rank == 0) {
            printf("%s (%lld rows):\n", title, (long long)c.n);
            printf("  accuracy   %.6f\n  precision  %.6f\n  recall     %.6f\n  F1         %.6f\n"
                   "  log-loss   %.6f\n",
                   c.accuracy, c.precision, c.recall, c.f1, c.log_loss);
            if (k == 2) printf("  AUC-ROC    %.6f\n  AUC-PR     %.6f\n", c.auc_roc, c.auc_pr);
            if (k <= 10 && c.confusion) {
                printf("  confusion matrix (row = true class, column = predicted):\n");
                printf("  %6s", "");
                for (int b = 0; b < k; b++) printf(" %7d", b);
                printf("\n");
                for (int a = 0; a < k; a++) {
                    printf("  %6d", a);
                    for (int b = 0; b < k; b++)
                        printf(" %7lld", (long long)c.confusion[(int64_t)a * k + b]);
                    printf("\n");
                }
            }
        }
        if (s == PT_OK)
            snprintf(extra, cap, " accuracy=%.6f logloss=%.6f f1=%.6f auc_roc=%.6f", c.accuracy,
                     c.log_loss, c.f1, c.auc_roc);
        if (s == PT_OK) pt_class_metrics_free(&c);
    }
    pt_predictions_free(&p);
    return s;
}

/* Writes this rank's predictions after those of the ranks before it: the
 * shares are contiguous in file order, so the file keeps the input order. */
static pt_status write_predictions(ml_job *j, const pt_model *m, const pt_predictions *p,
                                   const char *path, pt_error *err) {
    pt_model_kind kind = pt_model_kind_of(m);
    pt_status s = PT_OK;
    for (int r = 0; r < j->size && s == PT_OK; r++) {
        if (r == j->rank) {
            FILE *f = fopen(path, r == 0 ? "w" : "a");
            if (!f) {
                /* Still meet the others at the barrier below. */
                s = pt_error_set(err, PT_EIO, "%s: cannot write: %s", path, strerror(errno));
                goto next;
            }
            if (r == 0) {
                fputs("prediction", f);
                if (kind == PT_MODEL_LOGREG && p->prob && p->ncols == 1) {
                    fputs(",probability", f);
                } else if (p->prob) {
                    for (int c = 0; c < p->ncols; c++) fprintf(f, ",p%d", c);
                } else if (kind == PT_MODEL_KMEANS && p->raw) {
                    for (int c = 0; c < p->ncols; c++) fprintf(f, ",d%d", c);
                }
                fputc('\n', f);
            }
            const double *extra = p->prob ? p->prob : kind == PT_MODEL_KMEANS ? p->raw : NULL;
            for (int64_t i = 0; i < p->n; i++) {
                fprintf(f, "%.17g", p->label[i]);
                for (int c = 0; extra && c < p->ncols; c++)
                    fprintf(f, ",%.17g", extra[i * p->ncols + c]);
                fputc('\n', f);
            }
            if (fclose(f) != 0)
                s = pt_error_set(err, PT_EIO, "%s: write failed: %s", path, strerror(errno));
        }
    next:
        if (j->size > 1) {
            pt_status b = pt_comm_barrier(j->comm, err);
            if (s == PT_OK) s = b;
        }
    }
    return s;
}

/* ------------------------------------------------------------------------ */
/* train                                                                    */
/* ------------------------------------------------------------------------ */

enum {
    T_DATA = 1, T_FORMAT, T_LABEL, T_FEATURES, T_TEST, T_SPLIT, T_SEED, T_MAXITER, T_REG,
    T_ENET, T_TOL, T_NOINTERCEPT, T_NOSTD, T_THRESHOLD, T_FAMILY, T_SOLVER, T_LR, T_MOMENTUM,
    T_BATCH, T_K, T_INIT, T_INITSTEPS, T_HIDDEN, T_ACT, T_SAVE, T_CKDIR, T_CKEVERY, T_CKKEEP,
    T_RESUME, T_DENSE, T_SPARSE, T_NUMFEATURES, T_OUTPUT
};

/* Shared by the progress callback: rank 0 only. */
static int progress_every_line = 1;

static void on_progress(const pt_train_progress *p, void *arg) {
    (void)arg;
    if (!progress_every_line) return;
    printf("iter %5lld  loss %-14.8g grad %-11.4e %8.3f s\n", (long long)p->iter, p->loss,
           p->grad_norm, p->seconds);
    fflush(stdout);
}

static int parse_kind(const char *name, pt_model_kind *k) {
    static const char *const names[] = {"linreg", "logreg", "kmeans", "mlp"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            *k = (pt_model_kind)i;
            return 0;
        }
    return -1;
}

static int parse_int_opt(const char *opt, const char *text, int lo, int *out) {
    int64_t v;
    if (cli_parse_count("train", opt, text, &v)) return -1;
    if (v < lo || v > 2147483647)
        return cli_usage_error("train", "%s: %s is out of range (at least %d)", opt, text, lo), -1;
    *out = (int)v;
    return 0;
}

static void train_help(const cli_opt *opts) {
    printf("usage: partita train linreg|logreg|kmeans|mlp --data FILE [options]\n\n"
           "Trains a model on a libsvm (default) or CSV file and reports metrics on\n"
           "held-out rows: --test FILE, or --split F (fraction kept for training; the\n"
           "rest is the test set, as randomSplit([F, 1-F], seed)). Without either the\n"
           "metrics are those of the training data. Parameters and defaults follow\n"
           "Spark MLlib (maxIter 100, regParam 0, elasticNetParam 0, tol 1e-6,\n"
           "fitIntercept, standardization). Linear models use L-BFGS (OWL-QN with an L1\n"
           "term), the MLP Adam, k-means Lloyd iterations after k-means|| seeding.\n"
           "Under mpirun -n N (or partita launch -n N) every rank reads its share of\n"
           "the file and the model is trained data-parallel; rank 0 prints and saves.\n"
           "The last line, 'result ...', repeats the figures as key=value pairs.\n");
    cli_print_options(stdout, opts);
}

int cli_cmd_train(int argc, char **argv) {
    static const cli_opt opts[] = {
        {T_DATA, "data", 'd', "FILE", "training data (libsvm or CSV; required)"},
        {T_FORMAT, "format", 'f', "F", "libsvm or csv (default: csv for *.csv, else libsvm)"},
        {T_LABEL, "label", 0, "COL", "CSV: label column (default 'label')"},
        {T_FEATURES, "features", 0, "a,b", "CSV: feature columns (default: all others)"},
        {T_NUMFEATURES, "num-features", 0, "N", "libsvm: number of features (default: largest "
                                                 "index)"},
        {T_DENSE, "dense", 0, NULL, "libsvm: store rows dense (default for kmeans and mlp)"},
        {T_SPARSE, "sparse", 0, NULL, "libsvm: store rows as CSR (default for linear models)"},
        {T_TEST, "test", 't', "FILE", "held-out test data"},
        {T_SPLIT, "split", 0, "F", "train on a random fraction F, test on the rest"},
        {T_SEED, "seed", 0, "S", "seed of the split, initialisation and batches (default 42)"},
        {T_MAXITER, "max-iter", 0, "N", "maxIter: iterations / epochs (default 100)"},
        {T_REG, "reg", 0, "R", "regParam (default 0)"},
        {T_ENET, "elastic-net", 0, "A", "elasticNetParam: 0 = L2, 1 = L1 (default 0)"},
        {T_TOL, "tol", 0, "T", "convergence tolerance (default 1e-6)"},
        {T_NOINTERCEPT, "no-intercept", 0, NULL, "fitIntercept = false"},
        {T_NOSTD, "no-standardize", 0, NULL, "standardization = false"},
        {T_THRESHOLD, "threshold", 0, "T", "binary logistic threshold (default 0.5)"},
        {T_FAMILY, "family", 0, "F", "logreg: auto, binomial or multinomial"},
        {T_SOLVER, "solver", 0, "S", "auto, lbfgs, sgd or adam"},
        {T_LR, "lr", 0, "R", "learning rate (default 0.01 SGD, 0.001 Adam)"},
        {T_MOMENTUM, "momentum", 0, "M", "SGD momentum (default 0.9)"},
        {T_BATCH, "batch-size", 0, "N", "rows per mini-batch over all ranks (default 256)"},
        {T_K, "k", 'k', "K", "k-means: clusters (default 2)"},
        {T_INIT, "init", 0, "I", "k-means: 'kmeans||' (default) or 'kmeans++'"},
        {T_INITSTEPS, "init-steps", 0, "N", "k-means||: rounds (default 2)"},
        {T_HIDDEN, "hidden", 0, "a,b", "MLP: hidden layer sizes (default 100)"},
        {T_ACT, "activation", 0, "A", "MLP: relu (default), tanh or sigmoid"},
        {T_SAVE, "save", 's', "FILE", "save the model"},
        {T_OUTPUT, "output", 'o', "FILE",
         "write the predictions on the test rows (as 'partita predict' does)"},
        {T_CKDIR, "checkpoint-dir", 0, "D", "write checkpoints into D"},
        {T_CKEVERY, "checkpoint-every", 0, "K", "steps between checkpoints"},
        {T_CKKEEP, "checkpoint-keep", 0, "N", "newest checkpoints kept (default 3)"},
        {T_RESUME, "resume", 0, NULL, "continue from the newest valid checkpoint"},
        {0, NULL, 0, NULL, NULL},
    };
    cli_parser p;
    cli_parser_init(&p, "train", argc, argv, opts);
    const char *kind_s = NULL, *path = NULL, *test_path = NULL, *save = NULL, *init = NULL;
    const char *out_path = NULL;
    const char *family = NULL, *solver = NULL, *act = NULL;
    data_args da = {.dense = -1};
    double split = 0;
    int hidden[TRAIN_MAX_HIDDEN], nhidden = -1;
    int64_t num_features = 0;
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_LOGREG);
    int64_t seed = 42;
    int rc = -1;
    for (int id; rc < 0 && (id = cli_next(&p)) != CLI_END;) {
        switch (id) {
        case CLI_HELP: train_help(opts); rc = 0; break;
        case CLI_ERROR: rc = CLI_EXIT_USAGE; break;
        case CLI_POSITIONAL:
            if (kind_s) rc = cli_usage_error("train", "unexpected argument '%s'", p.value);
            kind_s = p.value;
            break;
        case T_DATA: path = p.value; break;
        case T_FORMAT: da.format = p.value; break;
        case T_LABEL: da.label = p.value; break;
        case T_FEATURES:
            cli_free_list(da.features);
            da.features = cli_split_list(p.value, &da.nfeatures);
            if (!da.features || da.nfeatures == 0)
                rc = cli_usage_error("train", "--features: no column names in '%s'", p.value);
            break;
        case T_NUMFEATURES:
            if (cli_parse_count("train", "--num-features", p.value, &num_features))
                rc = CLI_EXIT_USAGE;
            break;
        case T_DENSE: da.dense = 1; break;
        case T_SPARSE: da.dense = 0; break;
        case T_TEST: test_path = p.value; break;
        case T_SPLIT:
            if (cli_parse_double("train", "--split", p.value, &split)) rc = CLI_EXIT_USAGE;
            else if (!(split > 0 && split < 1))
                rc = cli_usage_error("train", "--split: %s is not a fraction in (0, 1)", p.value);
            break;
        case T_SEED:
            if (cli_parse_count("train", "--seed", p.value, &seed)) rc = CLI_EXIT_USAGE;
            break;
        case T_MAXITER:
            if (parse_int_opt("--max-iter", p.value, 0, &o.max_iter)) rc = CLI_EXIT_USAGE;
            break;
        case T_REG:
            if (cli_parse_double("train", "--reg", p.value, &o.reg_param)) rc = CLI_EXIT_USAGE;
            break;
        case T_ENET:
            if (cli_parse_double("train", "--elastic-net", p.value, &o.elastic_net))
                rc = CLI_EXIT_USAGE;
            break;
        case T_TOL:
            if (cli_parse_double("train", "--tol", p.value, &o.tol)) rc = CLI_EXIT_USAGE;
            break;
        case T_NOINTERCEPT: o.fit_intercept = false; break;
        case T_NOSTD: o.standardization = false; break;
        case T_THRESHOLD:
            if (cli_parse_double("train", "--threshold", p.value, &o.threshold))
                rc = CLI_EXIT_USAGE;
            break;
        case T_FAMILY: family = p.value; break;
        case T_SOLVER: solver = p.value; break;
        case T_LR:
            if (cli_parse_double("train", "--lr", p.value, &o.learning_rate)) rc = CLI_EXIT_USAGE;
            break;
        case T_MOMENTUM:
            if (cli_parse_double("train", "--momentum", p.value, &o.momentum))
                rc = CLI_EXIT_USAGE;
            break;
        case T_BATCH:
            if (cli_parse_count("train", "--batch-size", p.value, &o.batch_size))
                rc = CLI_EXIT_USAGE;
            break;
        case T_K:
            if (parse_int_opt("--k", p.value, 1, &o.k)) rc = CLI_EXIT_USAGE;
            break;
        case T_INIT: init = p.value; break;
        case T_INITSTEPS:
            if (parse_int_opt("--init-steps", p.value, 1, &o.init_steps)) rc = CLI_EXIT_USAGE;
            break;
        case T_HIDDEN: {
            int n = 0;
            char **list = cli_split_list(p.value, &n);
            nhidden = 0;
            for (int i = 0; list && i < n && rc < 0; i++) {
                if (nhidden == TRAIN_MAX_HIDDEN)
                    rc = cli_usage_error("train", "--hidden: at most %d layers",
                                         TRAIN_MAX_HIDDEN);
                else if (parse_int_opt("--hidden", list[i], 1, &hidden[nhidden]))
                    rc = CLI_EXIT_USAGE;
                else
                    nhidden++;
            }
            cli_free_list(list);
            break;
        }
        case T_ACT: act = p.value; break;
        case T_SAVE: save = p.value; break;
        case T_OUTPUT: out_path = p.value; break;
        case T_CKDIR: o.checkpoint_dir = p.value; break;
        case T_CKEVERY:
            if (parse_int_opt("--checkpoint-every", p.value, 0, &o.checkpoint_every))
                rc = CLI_EXIT_USAGE;
            break;
        case T_CKKEEP:
            if (parse_int_opt("--checkpoint-keep", p.value, 1, &o.checkpoint_keep))
                rc = CLI_EXIT_USAGE;
            break;
        case T_RESUME: o.resume = true; break;
        }
    }
    pt_model_kind kind = PT_MODEL_LOGREG;
    if (rc < 0 && !kind_s)
        rc = cli_usage_error("train", "missing the model (linreg, logreg, kmeans or mlp)");
    if (rc < 0 && parse_kind(kind_s, &kind))
        rc = cli_usage_error("train", "unknown model '%s' (linreg, logreg, kmeans or mlp)",
                             kind_s);
    if (rc < 0 && !path) rc = cli_usage_error("train", "missing --data FILE");
    if (rc < 0 && test_path && split > 0)
        rc = cli_usage_error("train", "--test and --split exclude each other");
    if (rc < 0 && da.format && strcmp(da.format, "csv") != 0 && strcmp(da.format, "libsvm") != 0)
        rc = cli_usage_error("train", "--format: '%s' is not libsvm or csv", da.format);
    /* Keyword options into the opts, with the kind fixed first. */
    pt_train_opts o2;
    pt_train_opts_init(&o2, kind);
    if (rc < 0) {
        o.kind = kind;
        o2 = o;
        o2.seed = (uint64_t)seed;
        if (family) {
            if (strcmp(family, "auto") == 0) o2.family = 0;
            else if (strcmp(family, "binomial") == 0) o2.family = 1;
            else if (strcmp(family, "multinomial") == 0) o2.family = 2;
            else rc = cli_usage_error("train", "--family: '%s' is not auto, binomial or "
                                               "multinomial", family);
        }
        if (solver) {
            static const char *const names[] = {"auto", "lbfgs", "sgd", "adam"};
            int found = -1;
            for (int i = 0; i < 4; i++)
                if (strcmp(solver, names[i]) == 0) found = i;
            if (found < 0)
                rc = cli_usage_error("train", "--solver: '%s' is not auto, lbfgs, sgd or adam",
                                     solver);
            else
                o2.solver = (pt_solver)found;
        }
        if (init) {
            if (strcmp(init, "kmeans++") == 0 || strcmp(init, "k-means++") == 0)
                o2.init_plus_plus = true;
            else if (strcmp(init, "kmeans||") == 0 || strcmp(init, "k-means||") == 0)
                o2.init_plus_plus = false;
            else
                rc = cli_usage_error("train", "--init: '%s' is not kmeans|| or kmeans++", init);
        }
        if (act) {
            if (strcmp(act, "relu") == 0) o2.activation = PT_ACT_RELU;
            else if (strcmp(act, "tanh") == 0) o2.activation = PT_ACT_TANH;
            else if (strcmp(act, "sigmoid") == 0) o2.activation = PT_ACT_SIGMOID;
            else rc = cli_usage_error("train", "--activation: '%s' is not relu, tanh or "
                                               "sigmoid", act);
        }
        if (kind == PT_MODEL_MLP) {
            if (nhidden < 0) hidden[0] = 100, nhidden = 1;
            o2.nhidden = nhidden;
            o2.hidden = hidden;
        }
    }
    if (rc >= 0) {
        cli_free_list(da.features);
        return rc;
    }

    pt_error err;
    ml_job j;
    if (job_open(&j, &err) != PT_OK) {
        cli_free_list(da.features);
        return cli_fail(&err);
    }
    pt_dataset *all = NULL, *parts[2] = {NULL, NULL}, *test = NULL;
    const pt_dataset *train = NULL;
    pt_model *m = NULL;
    pt_status s;
    bool classify = kind != PT_MODEL_LINREG;
    bool dense_default = kind == PT_MODEL_KMEANS || kind == PT_MODEL_MLP;
    bool quiet = cli_g.quiet != 0;
    progress_every_line = !quiet && j.rank == 0;
    char extra[256] = "";

    double t0 = pt_now_s();
    s = load_data(&j, &da, path, classify, dense_default, num_features, NULL, &all, &err);
    double t_read = pt_now_s() - t0;
    if (s != PT_OK) goto fail;
    if (j.rank == 0 && !quiet)
        printf("read %s: %lld rows, %lld features%s, %.3f s (%d rank%s, %d threads each)\n", path,
               (long long)all->nrows_global, (long long)all->nfeatures,
               all->sparse ? " (sparse)" : "", t_read, j.size, j.size > 1 ? "s" : "",
               pt_ctx_threads(j.ctx));
    train = all;
    double t_split = 0, t_test = 0;
    if (split > 0) {
        double w[2] = {split, 1 - split};
        t0 = pt_now_s();
        s = pt_dataset_random_split(j.comm, all, 2, w, (uint64_t)seed, parts, &err);
        t_split = pt_now_s() - t0;
        if (s != PT_OK) goto fail;
        train = parts[0];
        test = parts[1];
        if (j.rank == 0 && !quiet)
            printf("split %.2f/%.2f (seed %lld): %lld training rows, %lld test rows\n", split,
                   1 - split, (long long)seed, (long long)train->nrows_global,
                   (long long)test->nrows_global);
    } else if (test_path) {
        t0 = pt_now_s();
        s = load_data(&j, &da, test_path, classify, dense_default, all->nfeatures, all, &test,
                      &err);
        t_test = pt_now_s() - t0;
        if (s != PT_OK) goto fail;
        if (j.rank == 0 && !quiet)
            printf("read %s: %lld test rows, %.3f s\n", test_path, (long long)test->nrows_global,
                   t_test);
    }
    o2.ctx = j.ctx;
    o2.comm = j.comm;
    o2.progress = on_progress;
    o2.progress_arg = NULL;
    t0 = pt_now_s();
    s = pt_train(&o2, train, &m, &err);
    double t_train = pt_now_s() - t0;
    if (s != PT_OK) goto fail;
    if (j.rank == 0 && !quiet)
        printf("trained %s: %lld iterations, loss %.10g, %.3f s\n", kind_name(kind),
               (long long)pt_model_iterations(m), pt_model_loss(m), t_train);
    if (save) {
        /* Rank 0 writes; the others learn whether it worked, so that none
         * waits in the collectives below for a rank that gave up. */
        int32_t ok = 1;
        if (j.rank == 0) {
            s = pt_model_save(m, save, &err);
            ok = s == PT_OK;
        }
        if (j.size > 1) {
            pt_error berr;
            if (pt_comm_bcast(j.comm, &ok, sizeof ok, 0, &berr) != PT_OK && j.rank != 0) {
                err = berr;
                goto fail;
            }
            if (!ok && j.rank != 0) {
                pt_error_set(&err, PT_EIO, "rank 0 could not save the model to %s", save);
                goto fail;
            }
        }
        if (!ok) goto fail;
        if (!quiet && j.rank == 0) printf("saved %s\n", save);
    }
    {
        const pt_dataset *ev = test ? test : train;
        s = report_metrics(&j, m, ev, test ? "test metrics" : "training metrics", extra,
                           sizeof extra, &err);
        if (s != PT_OK) goto fail;
        if (out_path) {
            /* The in-memory model's predictions, to compare with a reloaded one. */
            pt_predictions pr;
            s = pt_model_predict(m, j.ctx, ev, &pr, &err);
            if (s == PT_OK) s = write_predictions(&j, m, &pr, out_path, &err);
            pt_predictions_free(&pr);
            if (s != PT_OK) goto fail;
        }
    }
    if (j.rank == 0) {
        printf("read %.3f s, train %.3f s\n", t_read + t_split, t_train);
        printf("result model=%s ranks=%d threads=%d rows=%lld features=%lld read_s=%.3f "
               "train_s=%.3f total_s=%.3f test_read_s=%.3f iterations=%lld loss=%.10g%s\n",
               kind_name(kind), j.size, pt_ctx_threads(j.ctx), (long long)train->nrows_global,
               (long long)train->nfeatures, t_read + t_split, t_train,
               t_read + t_split + t_train, t_test, (long long)pt_model_iterations(m),
               pt_model_loss(m), extra);
    }
    rc = 0;
    goto out;
fail:
    rc = job_fail(&j, &err);
out:
    pt_model_free(m);
    pt_dataset_free(parts[0]);
    pt_dataset_free(parts[1]);
    if (test != parts[1]) pt_dataset_free(test);
    pt_dataset_free(all);
    job_close(&j);
    cli_free_list(da.features);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* predict and eval                                                         */
/* ------------------------------------------------------------------------ */

enum { P_MODEL = 1, P_DATA, P_FORMAT, P_LABEL, P_FEATURES, P_OUTPUT, P_DENSE };

static int predict_or_eval(int argc, char **argv, int eval) {
    const char *cmd = eval ? "eval" : "predict";
    static const cli_opt popts[] = {
        {P_MODEL, "model", 'm', "FILE", "model saved by 'partita train --save' (required)"},
        {P_DATA, "data", 'd', "FILE", "data to score (libsvm or CSV; required)"},
        {P_FORMAT, "format", 'f', "F", "libsvm or csv (default: csv for *.csv, else libsvm)"},
        {P_LABEL, "label", 0, "COL", "CSV: label column (default 'label')"},
        {P_FEATURES, "features", 0, "a,b", "CSV: feature columns (default: all others)"},
        {P_DENSE, "dense", 0, NULL, "libsvm: store rows dense"},
        {P_OUTPUT, "output", 'o', "FILE", "CSV of predictions (required)"},
        {0, NULL, 0, NULL, NULL},
    };
    /* eval has no --output */
    static const cli_opt eopts[] = {
        {P_MODEL, "model", 'm', "FILE", "model saved by 'partita train --save' (required)"},
        {P_DATA, "data", 'd', "FILE", "labelled data (libsvm or CSV; required)"},
        {P_FORMAT, "format", 'f', "F", "libsvm or csv (default: csv for *.csv, else libsvm)"},
        {P_LABEL, "label", 0, "COL", "CSV: label column (default 'label')"},
        {P_FEATURES, "features", 0, "a,b", "CSV: feature columns (default: all others)"},
        {P_DENSE, "dense", 0, NULL, "libsvm: store rows dense"},
        {0, NULL, 0, NULL, NULL},
    };
    const cli_opt *opts = eval ? eopts : popts;
    cli_parser p;
    cli_parser_init(&p, cmd, argc, argv, opts);
    const char *model_path = NULL, *path = NULL, *out_path = NULL;
    data_args da = {.dense = -1};
    int rc = -1;
    for (int id; rc < 0 && (id = cli_next(&p)) != CLI_END;) {
        switch (id) {
        case CLI_HELP:
            if (eval)
                printf("usage: partita eval --model M --data FILE\n\n"
                       "Metrics of a saved model on labelled data: accuracy, precision, recall,\n"
                       "F1, log-loss, AUC-ROC/PR and the confusion matrix for classifiers, RMSE,\n"
                       "MAE and R2 for regression, the cost (WSSSE) for k-means.\n");
            else
                printf("usage: partita predict --model M --data FILE --output PREDS.csv\n\n"
                       "Predictions of a saved model, one CSV row per input row in input\n"
                       "order: the prediction (class, value or cluster), then the probability\n"
                       "of class 1 (binary logistic), the class probabilities p0.. (multiclass)\n"
                       "or the distances d0.. to the centres (k-means), all as %%.17g.\n");
            cli_print_options(stdout, opts);
            rc = 0;
            break;
        case CLI_ERROR: rc = CLI_EXIT_USAGE; break;
        case CLI_POSITIONAL: rc = cli_usage_error(cmd, "unexpected argument '%s'", p.value); break;
        case P_MODEL: model_path = p.value; break;
        case P_DATA: path = p.value; break;
        case P_FORMAT: da.format = p.value; break;
        case P_LABEL: da.label = p.value; break;
        case P_FEATURES:
            cli_free_list(da.features);
            da.features = cli_split_list(p.value, &da.nfeatures);
            break;
        case P_DENSE: da.dense = 1; break;
        case P_OUTPUT: out_path = p.value; break;
        }
    }
    if (rc < 0 && !model_path) rc = cli_usage_error(cmd, "missing --model FILE");
    if (rc < 0 && !path) rc = cli_usage_error(cmd, "missing --data FILE");
    if (rc < 0 && !eval && !out_path) rc = cli_usage_error(cmd, "missing --output FILE");
    if (rc >= 0) {
        cli_free_list(da.features);
        return rc;
    }
    pt_error err;
    ml_job j;
    if (job_open(&j, &err) != PT_OK) {
        cli_free_list(da.features);
        return cli_fail(&err);
    }
    pt_model *m = NULL;
    pt_dataset *d = NULL;
    pt_predictions pr;
    memset(&pr, 0, sizeof pr);
    pt_status s = pt_model_load(model_path, &m, &err);
    if (s == PT_OK) {
        pt_model_kind kind = pt_model_kind_of(m);
        s = load_data(&j, &da, path, kind != PT_MODEL_LINREG,
                      kind == PT_MODEL_KMEANS || kind == PT_MODEL_MLP, pt_model_nfeatures(m), NULL,
                      &d, &err);
    }
    if (s == PT_OK && eval) {
        char extra[256];
        s = report_metrics(&j, m, d, "metrics", extra, sizeof extra, &err);
        if (s == PT_OK && j.rank == 0)
            printf("result model=%s rows=%lld%s\n", kind_name(pt_model_kind_of(m)),
                   (long long)d->nrows_global, extra);
    } else if (s == PT_OK) {
        s = pt_model_predict(m, j.ctx, d, &pr, &err);
        if (s == PT_OK) s = write_predictions(&j, m, &pr, out_path, &err);
        if (s == PT_OK && j.rank == 0 && !cli_g.quiet)
            fprintf(stderr, "partita predict: %lld rows written to %s\n",
                    (long long)d->nrows_global, out_path);
    }
    rc = s == PT_OK ? 0 : job_fail(&j, &err);
    pt_predictions_free(&pr);
    pt_dataset_free(d);
    pt_model_free(m);
    job_close(&j);
    cli_free_list(da.features);
    return rc;
}

int cli_cmd_predict(int argc, char **argv) { return predict_or_eval(argc, argv, 0); }
int cli_cmd_eval(int argc, char **argv) { return predict_or_eval(argc, argv, 1); }
