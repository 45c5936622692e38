/*
 * cli_demo.c - `partita demo`, the guided tour that `make demo` runs: build a
 * frame in parallel, look at it, split it into zero-copy partitions, compute
 * statistics in parallel and single-threaded and check they agree, write it
 * to CSV, read it back in parallel, and stream statistics over the file with
 * a memory budget smaller than the file, then train a model (split, train,
 * evaluate, save, reload, predict). Everything shown is computed by the
 * library; this file only narrates and checks.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

enum { DEMO_ROWS = 1, DEMO_DIR };

static void say(const char *text) {
    if (!cli_g.quiet) printf("  %s\n", text);
}

static void step(int i, const char *title) { printf("\n[%d/7] %s\n", i, title); }

static const char *bytes_str(double b, char *buf) { return pt_format_bytes(b, buf, 32); }

static int same_double(double a, double b) { return a == b || (a != a && b != b); }

static double rel_diff(double a, double b) {
    if (same_double(a, b)) return 0;
    double m = fmax(fabs(a), fabs(b));
    return m > 0 ? fabs(a - b) / m : fabs(a - b);
}

/* Compares two statistics: counts, nulls, min, max and distinct must be
 * identical; returns the largest relative difference of mean and std in
 * *max_rel. Returns 0 when they agree, else fills why. */
static int stats_agree(const pt_stats *a, const pt_stats *b, double *max_rel, char *why,
                       size_t cap) {
    *max_rel = 0;
    if (a->ncols != b->ncols) {
        snprintf(why, cap, "%d columns vs %d", a->ncols, b->ncols);
        return 1;
    }
    for (int c = 0; c < a->ncols; c++) {
        const pt_col_stats *x = &a->cols[c], *y = &b->cols[c];
        if (x->count != y->count || x->nulls != y->nulls || !same_double(x->min, y->min) ||
            !same_double(x->max, y->max) || x->distinct != y->distinct) {
            snprintf(why, cap, "column '%s': count %lld/%lld, min %.17g/%.17g, max %.17g/%.17g, "
                               "distinct %lld/%lld",
                     x->name, (long long)x->count, (long long)y->count, x->min, y->min, x->max,
                     y->max, (long long)x->distinct, (long long)y->distinct);
            return 1;
        }
        *max_rel = fmax(*max_rel, fmax(rel_diff(x->mean, y->mean), rel_diff(x->std, y->std)));
    }
    return 0;
}

/* Best of `reps` runs of pt_stats_table on a context with `threads`. */
static pt_status timed_stats(int threads, const pt_table *t, int reps, double *best,
                             pt_stats **keep, pt_error *err) {
    pt_ctx *ctx;
    PT_RETURN_NOT_OK(cli_ctx_new(threads, 0, &ctx, err));
    *best = 1e300;
    pt_status s = PT_OK;
    for (int r = 0; r < reps && s == PT_OK; r++) {
        pt_stats *st = NULL;
        double t0 = pt_now_s();
        s = pt_stats_table(ctx, t, NULL, &st, err);
        double dt = pt_now_s() - t0;
        if (dt < *best) *best = dt;
        if (s == PT_OK && keep && !*keep)
            *keep = st;
        else
            pt_stats_free(st);
    }
    pt_ctx_free(ctx);
    return s;
}

/* Step 6: lazy frames, their plans, and results checked against plain
 * single-threaded loops over the same columns. */
static pt_status demo_frames(pt_ctx *ctx, const pt_table *t, pt_error *err) {
    pt_frame *f = NULL, *m = NULL, *g = NULL, *flt = NULL, *srt = NULL, *top = NULL, *q = NULL;
    pt_catalog *cat = NULL;
    pt_table *res = NULL, *res2 = NULL;
    pt_status s;
    const pt_column *cat_col = pt_table_column(t, "category"), *score = pt_table_column(t, "score");
    const pt_column *v1 = pt_table_column(t, "value1"), *id = pt_table_column(t, "id");
    if (!cat_col || !score || !v1 || !id)
        return pt_error_set(err, PT_EINTERNAL, "demo: classic frame columns missing");
    if ((s = pt_frame_from_table(ctx, t, 4, &f, err)) != PT_OK) goto done;
    say("pt_frame_from_table(ctx, table, 4): a lazy frame over 4 zero-copy partitions.");
    say("Operations only build a plan; nothing runs until a result is asked for.");

    /* A lazy mean. */
    if ((s = pt_frame_agg1(f, PT_AGG_MEAN, "value1", &m, err)) != PT_OK) goto done;
    printf("\n  mean(value1) is a lazy scalar; its plan:\n");
    if ((s = pt_frame_explain(m, stdout, err)) != PT_OK) goto done;
    double mean, ref = 0;
    if ((s = pt_frame_scalar_f64(m, &mean, err)) != PT_OK) goto done;
    for (int64_t i = 0; i < t->nrows; i++) ref += pt_column_f64(v1)[i];
    ref /= (double)(t->nrows ? t->nrows : 1);
    printf("  computed on demand: %.10f (single-threaded loop: %.10f, relative difference "
           "%.1e)\n", mean, ref, rel_diff(mean, ref));

    /* groupby('category').score.mean() */
    pt_expr *key = pt_col("category");
    pt_expr *agg = pt_alias(pt_agg(PT_AGG_MEAN, pt_col("score"), NULL), "mean_score");
    if ((s = pt_frame_groupby(f, 1, &key, 1, &agg, &g, err)) != PT_OK) goto done;
    pt_expr *gk = pt_col("category");
    if ((s = pt_frame_sort(g, 1, &gk, NULL, &srt, err)) != PT_OK) goto done;
    double t0 = pt_now_s();
    if ((s = pt_frame_collect(srt, &res, err)) != PT_OK) goto done;
    double dt = pt_now_s() - t0;
    printf("\n  groupby('category').score.mean(), partial hash aggregation per partition\n"
           "  then merged (%.4f s):\n", dt);
    if ((s = pt_table_print(res, stdout, NULL, err)) != PT_OK) goto done;
    {
        double sum[256] = {0};
        int64_t cnt[256] = {0};
        for (int64_t i = 0; i < t->nrows; i++) {
            int64_t len;
            const char *c = pt_column_str(cat_col, i, &len);
            sum[(unsigned char)c[0]] += (double)pt_column_i64(score)[i];
            cnt[(unsigned char)c[0]]++;
        }
        double worst = 0;
        for (int64_t r = 0; r < res->nrows; r++) {
            int64_t len;
            const char *c = pt_column_str(res->cols[0], r, &len);
            unsigned char k = (unsigned char)c[0];
            double d = rel_diff(pt_column_f64(res->cols[1])[r], sum[k] / (double)cnt[k]);
            if (d > worst) worst = d;
        }
        printf("  equal to a single-threaded loop (largest relative difference %.1e)\n", worst);
        if (worst > 1e-12) {
            s = pt_error_set(err, PT_EINTERNAL, "demo: group-by differs from the reference");
            goto done;
        }
    }

    /* Filter and sort, with the optimised plan. */
    pt_frame *tmp;
    if ((s = pt_frame_filter(f, pt_binary(PT_OP_GE, pt_col("score"), pt_lit_i64(99)), &flt,
                             err)) != PT_OK)
        goto done;
    pt_expr *sk = pt_col("value1");
    bool desc = true;
    if ((s = pt_frame_sort(flt, 1, &sk, &desc, &tmp, err)) != PT_OK) goto done;
    s = pt_frame_limit(tmp, 5, 0, &top, err);
    pt_frame_free(tmp);
    if (s != PT_OK) goto done;
    printf("\n  score >= 99, sorted by value1 descending, first 5 rows. The optimiser moves\n"
           "  the filter into the scan and turns sort + limit into a top-n:\n");
    if ((s = pt_frame_explain(top, stdout, err)) != PT_OK) goto done;
    pt_table_free(res);
    res = NULL;
    if ((s = pt_frame_collect(top, &res, err)) != PT_OK) goto done;
    if ((s = pt_table_print(res, stdout, NULL, err)) != PT_OK) goto done;
    {
        /* Reference: scan for the 5 largest value1 with score >= 99. */
        int64_t best[5];
        int nb = 0;
        for (int64_t i = 0; i < t->nrows; i++) {
            if (pt_column_i64(score)[i] < 99) continue;
            double v = pt_column_f64(v1)[i];
            int pos = nb;
            while (pos > 0 && pt_column_f64(v1)[best[pos - 1]] < v) pos--;
            if (pos >= 5) continue;
            if (nb < 5) nb++;
            for (int k = nb - 1; k > pos; k--) best[k] = best[k - 1];
            best[pos] = i;
        }
        int same = res->nrows == nb;
        for (int k = 0; same && k < nb; k++)
            same = pt_column_i64(res->cols[0])[k] == pt_column_i64(id)[best[k]];
        printf("  the same ids as a single-threaded scan: %s\n", same ? "yes" : "NO");
        if (!same) {
            s = pt_error_set(err, PT_EINTERNAL, "demo: top-n differs from the reference");
            goto done;
        }
    }

    /* The same group-by in SQL. */
    if ((s = pt_catalog_new(ctx, &cat, err)) != PT_OK) goto done;
    if ((s = pt_catalog_register(cat, "frame", f, err)) != PT_OK) goto done;
    const char *sql = "SELECT category, avg(score) AS mean_score FROM frame GROUP BY category "
                      "ORDER BY category";
    printf("\n  SQL builds the same plans: %s\n", sql);
    if ((s = pt_sql(ctx, cat, sql, &q, NULL, err)) != PT_OK) goto done;
    if ((s = pt_frame_collect(q, &res2, err)) != PT_OK) goto done;
    pt_table_free(res);
    res = NULL;
    if ((s = pt_frame_collect(srt, &res, err)) != PT_OK) goto done;
    char why[256];
    int eq = pt_table_equal(res, res2, why, sizeof why);
    printf("  result equal to the frame API's: %s\n", eq ? "yes" : why);
    if (!eq) s = pt_error_set(err, PT_EINTERNAL, "demo: SQL result differs: %s", why);
done:
    pt_table_free(res);
    pt_table_free(res2);
    pt_catalog_free(cat);
    pt_frame_free(q);
    pt_frame_free(top);
    pt_frame_free(flt);
    pt_frame_free(srt);
    pt_frame_free(g);
    pt_frame_free(m);
    pt_frame_free(f);
    return s;
}

static void demo_progress(const pt_train_progress *p, void *arg) {
    (void)arg;
    if (!cli_g.quiet && (p->iter <= 3 || p->iter % 5 == 0))
        printf("    iter %3lld  loss %.8f  gradient norm %.3e  %.3f s\n", (long long)p->iter,
               p->loss, p->grad_norm, p->seconds);
}

/* Step 7: logistic regression on a generated libsvm file. *same is set when
 * the reloaded model predicts exactly what the trained one did. */
static pt_status demo_train(pt_ctx *ctx, const char *dir, int64_t rows, int *same,
                            pt_error *err) {
    char path[4096], mpath[4096];
    pt_dataset *all = NULL, *parts[2] = {NULL, NULL};
    pt_model *m = NULL, *back = NULL;
    pt_predictions p1, p2;
    pt_class_metrics cm;
    memset(&p1, 0, sizeof p1);
    memset(&p2, 0, sizeof p2);
    memset(&cm, 0, sizeof cm);
    *same = 0;
    if ((size_t)snprintf(path, sizeof path, "%s/classify.svm", dir) >= sizeof path ||
        (size_t)snprintf(mpath, sizeof mpath, "%s/logreg.model", dir) >= sizeof mpath)
        return pt_error_set(err, PT_EINVAL, "--dir: path too long: %s", dir);
    pt_gen_ml_opts go;
    pt_gen_ml_opts_init(&go, PT_GEN_ML_CLASSIFY);
    go.rows = rows;
    go.features = 20;
    pt_status s;
    double t0 = pt_now_s();
    if ((s = pt_gen_ml_write(ctx, &go, path, NULL, err)) != PT_OK) return s;
    printf("  wrote %s in %.3f s:\n  %lld rows x 20 features, y ~ Bernoulli(sigmoid(w.x)) with "
           "|w| = 3, so no\n  model can beat an accuracy of about 0.836 on it.\n",
           path, pt_now_s() - t0, (long long)rows);
    pt_libsvm_opts lo;
    pt_libsvm_opts_init(&lo);
    t0 = pt_now_s();
    if ((s = pt_libsvm_read(ctx, NULL, path, &lo, &all, err)) != PT_OK) goto done;
    printf("  read it back in parallel (sparse rows): %.3f s\n", pt_now_s() - t0);
    double w[2] = {0.7, 0.3};
    if ((s = pt_dataset_random_split(NULL, all, 2, w, 42, parts, err)) != PT_OK) goto done;
    printf("  randomSplit([0.7, 0.3], seed 42): %lld training rows, %lld test rows; a row's\n"
           "  side depends on (seed, row number) only, so ranks and threads do not change it.\n",
           (long long)parts[0]->nrows, (long long)parts[1]->nrows);
    pt_train_opts o;
    pt_train_opts_init(&o, PT_MODEL_LOGREG);
    o.max_iter = 50;
    o.reg_param = 1e-4;
    o.ctx = ctx;
    o.progress = demo_progress;
    say("Logistic regression, L-BFGS on the full batch (MLlib defaults, regParam 1e-4);");
    say("threads sum gradients over fixed row chunks, in a fixed order:");
    t0 = pt_now_s();
    if ((s = pt_train(&o, parts[0], &m, err)) != PT_OK) goto done;
    printf("  trained in %.3f s, %lld iterations, final loss %.6f\n", pt_now_s() - t0,
           (long long)pt_model_iterations(m), pt_model_loss(m));
    if ((s = pt_model_predict(m, ctx, parts[1], &p1, err)) != PT_OK) goto done;
    if ((s = pt_metrics_classification(NULL, p1.n, parts[1]->y, p1.label, p1.prob, p1.ncols, 2,
                                       &cm, err)) != PT_OK)
        goto done;
    printf("  held-out: accuracy %.4f, F1 %.4f, log-loss %.4f, AUC-ROC %.4f\n", cm.accuracy,
           cm.f1, cm.log_loss, cm.auc_roc);
    if ((s = pt_model_save(m, mpath, err)) != PT_OK) goto done;
    if ((s = pt_model_load(mpath, &back, err)) != PT_OK) goto done;
    if ((s = pt_model_predict(back, ctx, parts[1], &p2, err)) != PT_OK) goto done;
    *same = p1.n == p2.n && p1.ncols == p2.ncols;
    for (int64_t i = 0; *same && i < p1.n; i++)
        *same = p1.label[i] == p2.label[i] &&
                (!p1.prob || memcmp(&p1.prob[i * p1.ncols], &p2.prob[i * p2.ncols],
                                    (size_t)p1.ncols * sizeof(double)) == 0);
    printf("  saved to %s (versioned, CRC32C-checked) and loaded\n  back: the %lld "
           "predictions and probabilities are %s\n",
           mpath, (long long)p1.n, *same ? "identical, bit for bit" : "DIFFERENT");
done:
    unlink(mpath); /* on failure too: the caller removes the directory */
    unlink(path);
    pt_class_metrics_free(&cm);
    pt_predictions_free(&p1);
    pt_predictions_free(&p2);
    pt_model_free(m);
    pt_model_free(back);
    pt_dataset_free(parts[0]);
    pt_dataset_free(parts[1]);
    pt_dataset_free(all);
    return s;
}

static int demo_run(int64_t rows, const char *dir) {
    pt_error err;
    pt_status s;
    pt_ctx *ctx = NULL, *small = NULL;
    pt_table *t = NULL, *back = NULL, *first = NULL, *parts[4] = {NULL};
    pt_stats *par = NULL, *one = NULL, *streamed = NULL;
    char b1[32], b2[32], b3[32], why[512], path[4096] = "";
    int rc = CLI_EXIT_FAIL;
    double t_all = pt_now_s();

    if (cli_ctx_new(cli_g.threads, cli_g.memory_limit, &ctx, &err) != PT_OK) return cli_fail(&err);
    int threads = pt_ctx_threads(ctx);
    pt_mem *mem = pt_ctx_mem(ctx);
    printf("Partita %s demo: %lld rows, %d threads.\n", pt_version(), (long long)rows, threads);
    say("A tour of what the library does with a data frame: build it in parallel,");
    say("partition it, compute on the partitions in parallel, and stream a file");
    say("through a memory budget smaller than the file.");

    /* 1. Generate. */
    step(1, "Generate the classic frame in memory");
    say("Columns: id, value1 ~ N(50, 10), value2 ~ N(0, 1), category A-D, score 0-99.");
    say("Each value is a function of (seed, column, row) - a counter-based RNG - so row");
    say("chunks are built in parallel and the frame is the same with any thread count.");
    double t0 = pt_now_s();
    if ((s = pt_gen_classic(ctx, rows, 42, &t, &err)) != PT_OK) goto fail;
    double t_gen = pt_now_s() - t0;
    printf("  -> %lld rows x %d columns, %s, in %.3f s\n", (long long)t->nrows,
           t->schema->nfields, bytes_str((double)pt_table_nbytes(t), b1), t_gen);

    /* 2. Head. */
    step(2, "The first rows");
    if ((s = pt_table_slice(t, 0, t->nrows < 5 ? t->nrows : 5, &first, &err)) != PT_OK) goto fail;
    {
        pt_print_opts po;
        pt_print_opts_init(&po);
        po.max_rows = 5;
        if ((s = pt_table_print(first, stdout, &po, &err)) != PT_OK) goto fail;
    }

    /* 3. Partitions. */
    step(3, "Split into 4 partitions (zero-copy slices)");
    say("A slice shares its parent's buffers and records only an offset and a length,");
    say("so partitioning costs no copy: each partition below still points into the");
    say("frame's buffers, and the memory budget does not move.");
    {
        int64_t used_before = pt_mem_used(mem);
        for (int p = 0; p < 4; p++) {
            int64_t lo = t->nrows * p / 4, hi = t->nrows * (p + 1) / 4;
            if ((s = pt_table_slice(t, lo, hi - lo, &parts[p], &err)) != PT_OK) goto fail;
        }
        for (int p = 0; p < 4; p++) {
            double share = t->nrows ? (double)pt_table_nbytes(t) * parts[p]->nrows / t->nrows : 0;
            printf("  partition %d: rows [%lld, %lld), %lld rows, ~%s of data (buffers "
                   "referenced: %s, shared)\n",
                   p, (long long)(t->nrows * p / 4), (long long)(t->nrows * (p + 1) / 4),
                   (long long)parts[p]->nrows, bytes_str(share, b1),
                   bytes_str((double)pt_table_nbytes(parts[p]), b2));
        }
        printf("  budget in use: %s before slicing, %s after (nothing was copied)\n",
               bytes_str((double)used_before, b1), bytes_str((double)pt_mem_used(mem), b2));
    }

    /* 4. Statistics, parallel and single-threaded. */
    step(4, "Statistics in parallel, and with one thread");
    say("Each partition is summarised on its own - count, mean and M2 with Welford-style");
    say("updates, min, max, hash tables of the text values - and the partial results");
    say("are merged pairwise (Chan et al.), so no partition ever sees another's rows.");
    {
        double t_par, t_one;
        if ((s = timed_stats(threads, t, 3, &t_par, &par, &err)) != PT_OK) goto fail;
        if ((s = timed_stats(1, t, 3, &t_one, &one, &err)) != PT_OK) goto fail;
        printf("\n  with %d threads (%lld partitions):\n", threads, (long long)par->partitions);
        pt_stats_print(par, stdout);
        printf("\n  with 1 thread (%lld partitions):\n", (long long)one->partitions);
        pt_stats_print(one, stdout);
        double max_rel;
        if (stats_agree(par, one, &max_rel, why, sizeof why)) {
            printf("  MISMATCH between parallel and single-threaded results: %s\n", why);
            goto out;
        }
        printf("\n  They agree: count, nulls, min, max and distinct are identical; mean and std\n"
               "  differ by at most %.1e (relative), the rounding of a different merge order.\n",
               max_rel);
        printf("\n  threads  seconds  speed-up\n");
        printf("  %7d  %7.4f  %7.2fx\n", 1, t_one, 1.0);
        for (int th = 2; threads > 1; th *= 2) {
            if (th > threads) th = threads; /* end with all threads */
            double dt = t_par;
            if (th != threads && (s = timed_stats(th, t, 3, &dt, NULL, &err)) != PT_OK) goto fail;
            printf("  %7d  %7.4f  %7.2fx\n", th, dt, dt > 0 ? t_one / dt : 0.0);
            if (th == threads) break;
        }
    }

    /* 5. CSV round trip and streaming in bounded memory. */
    step(5, "CSV round trip, then streaming through a small memory budget");
    if ((size_t)snprintf(path, sizeof path, "%s/classic.csv", dir) >= sizeof path) {
        s = pt_error_set(&err, PT_EINVAL, "--dir: path too long: %s", dir);
        goto fail;
    }
    {
        t0 = pt_now_s();
        if ((s = pt_csv_write(t, path, NULL, &err)) != PT_OK) goto fail;
        double t_write = pt_now_s() - t0;
        struct stat sb;
        int64_t fsize = stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
        printf("  wrote %s (%s) in %.3f s\n", path, bytes_str((double)fsize, b1), t_write);
        say("Reading it back: the file is cut into byte ranges parsed in parallel.");
        pt_csv_opts co;
        pt_csv_opts_init(&co);
        co.progress = 0;
        t0 = pt_now_s();
        if ((s = pt_csv_read(ctx, path, &co, &back, NULL, &err)) != PT_OK) goto fail;
        double t_read = pt_now_s() - t0;
        printf("  read %lld rows in %.3f s: %.1f M rows/s, %.0f MB/s\n", (long long)back->nrows,
               t_read, t_read > 0 ? back->nrows / t_read / 1e6 : 0.0,
               t_read > 0 ? fsize / t_read / 1e6 : 0.0);
        if (!pt_table_equal(t, back, why, sizeof why)) {
            printf("  MISMATCH: the file read back differs from the frame: %s\n", why);
            goto out;
        }
        say("The table read back is equal to the frame in memory, value for value.");

        int64_t limit = fsize / 3 > 1 << 20 ? fsize / 3 : 1 << 20;
        printf("\n  Now statistics straight from the file with a memory budget of %s (a third\n"
               "  of the file): batches are read, split into partitions, summarised in\n"
               "  parallel, merged into running totals and freed before the next batch.\n",
               bytes_str((double)limit, b1));
        if ((s = cli_ctx_new(cli_g.threads, limit, &small, &err)) != PT_OK) goto fail;
        if ((s = pt_stats_csv(small, path, &co, NULL, &streamed, &err)) != PT_OK) goto fail;
        double max_rel;
        if (stats_agree(par, streamed, &max_rel, why, sizeof why)) {
            printf("  MISMATCH between streamed and in-memory statistics: %s\n", why);
            goto out;
        }
        printf("  %lld rows in %lld batches (%lld partitions) in %.3f s; peak budget memory %s\n"
               "  for a %s limit and a %s file; results equal to the in-memory ones (mean/std\n"
               "  within %.1e).\n",
               (long long)streamed->rows, (long long)streamed->batches,
               (long long)streamed->partitions, streamed->seconds,
               bytes_str((double)streamed->peak_memory, b1), bytes_str((double)limit, b2),
               bytes_str((double)fsize, b3), max_rel);
    }
    step(6, "Lazy frames, plans and SQL");
    if ((s = demo_frames(ctx, t, &err)) != PT_OK) goto fail;
    step(7, "Train, evaluate, save, reload and predict");
    {
        int same = 0;
        int64_t ml_rows = rows / 20 < 2000 ? 2000 : rows / 20 > 200000 ? 200000 : rows / 20;
        if ((s = demo_train(ctx, dir, ml_rows, &same, &err)) != PT_OK) goto fail;
        if (!same) goto out;
    }
    printf("\nDone in %.2f s (peak RSS %s).\n", pt_now_s() - t_all,
           bytes_str((double)pt_rss_peak(), b1));
    rc = 0;
    goto out;

fail:
    rc = cli_fail(&err);
out:
    if (path[0]) unlink(path); /* on failure too: the caller removes the directory */
    pt_stats_free(par);
    pt_stats_free(one);
    pt_stats_free(streamed);
    for (int p = 0; p < 4; p++) pt_table_free(parts[p]);
    pt_table_free(first);
    pt_table_free(back);
    pt_table_free(t);
    pt_ctx_free(small);
    pt_ctx_free(ctx);
    return rc;
}

int cli_cmd_demo(int argc, char **argv) {
    static const cli_opt opts[] = {
        {DEMO_ROWS, "rows", 'n', "N", "rows of the frame (default 1e6)"},
        {DEMO_DIR, "dir", 0, "D", "directory for the CSV file (default: a temporary one, removed)"},
        {0, NULL, 0, NULL, NULL},
    };
    cli_parser p;
    cli_parser_init(&p, "demo", argc, argv, opts);
    int64_t rows = 1000000;
    const char *dir = NULL;
    for (int id; (id = cli_next(&p)) != CLI_END;) {
        switch (id) {
        case CLI_HELP:
            printf("usage: partita demo [--rows N] [--dir D]\n\n"
                   "A guided tour: generate a frame in parallel, show it, partition it, compute\n"
                   "statistics in parallel and single-threaded, write and read CSV, stream\n"
                   "statistics over the file with a memory budget smaller than the file, and\n"
                   "train a logistic regression: split, train, evaluate, save, reload, predict.\n");
            cli_print_options(stdout, opts);
            return 0;
        case CLI_ERROR: return CLI_EXIT_USAGE;
        case CLI_POSITIONAL: return cli_usage_error("demo", "unexpected argument '%s'", p.value);
        case DEMO_ROWS:
            if (cli_parse_count("demo", "--rows", p.value, &rows)) return CLI_EXIT_USAGE;
            break;
        case DEMO_DIR: dir = p.value; break;
        }
    }
    char tmp[4096];
    int made = 0;
    if (!dir) {
        const char *base = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/partita-demo-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmp)) {
            pt_error err;
            pt_error_set(&err, PT_EIO, "cannot create a temporary directory under %s",
                         base && *base ? base : "/tmp");
            return cli_fail(&err);
        }
        dir = tmp;
        made = 1;
    }
    int rc = demo_run(rows, dir);
    if (made) rmdir(tmp);
    return rc;
}
