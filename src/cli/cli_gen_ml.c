/*
 * cli_gen_ml.c - `partita gen classify|regress|blobs`: the synthetic
 * training sets of the ML layer (see include/partita/ml.h) as libsvm or CSV.
 * `partita gen` hands these kinds over to this file.
 */
#include <string.h>

#include "cli.h"

enum { GM_ROWS = 1, GM_FEATURES, GM_CLASSES, GM_SCALE, GM_NOISE, GM_SEED, GM_FORMAT, GM_OUT };

bool cli_gen_ml_kind(const char *name) {
    pt_gen_ml_kind k;
    return pt_gen_ml_kind_parse(name, &k);
}

int cli_cmd_gen_ml(int argc, char **argv) {
    static const cli_opt opts[] = {
        {GM_ROWS, "rows", 'n', "N", "rows to generate, e.g. 1e6 (default 1000)"},
        {GM_FEATURES, "features", 'd', "D", "features per row (default 10)"},
        {GM_CLASSES, "classes", 'k', "K",
         "classify: classes (default 2); blobs: clusters (default 3)"},
        {GM_SCALE, "scale", 0, "S",
         "classify: norm of the true weights (default 3: Bayes accuracy ~0.836)"},
        {GM_NOISE, "noise", 0, "SD", "regress: noise sd (default 0.1); blobs: cluster sd (1)"},
        {GM_SEED, "seed", 0, "S", "random seed (default 42)"},
        {GM_FORMAT, "format", 'f', "F", "libsvm (default) or csv"},
        {GM_OUT, "output", 'o', "FILE", "file to write (required)"},
        {0, NULL, 0, NULL, NULL},
    };
    cli_parser p;
    cli_parser_init(&p, "gen", argc, argv, opts);
    const char *kind_name = NULL, *path = NULL, *format = "libsvm";
    int64_t rows = -1, features = -1, classes = -1, seed = 42;
    double scale = -1, noise = -1;
    for (int id; (id = cli_next(&p)) != CLI_END;) {
        switch (id) {
        case CLI_HELP:
            printf("usage: partita gen classify|regress|blobs [--rows N] [--features D] "
                   "[--classes K] [--seed S] [--format libsvm|csv] -o FILE\n\n"
                   "Generates a training set with x ~ N(0, 1) per feature (blobs: around\n"
                   "centres drawn in [-10, 10]^D), values written with 4 decimals:\n"
                   "  classify  y ~ Bernoulli(sigmoid(w.x)), |w| = scale (softmax for K > 2);\n"
                   "            libsvm labels -1/+1, CSV labels 0/1, classes 0..K-1\n"
                   "  regress   y = w.x + 0.5 + N(0, noise^2), w ~ N(0, 1)\n"
                   "  blobs     K Gaussian clusters, label = cluster id\n"
                   "The same seed gives the same file whatever the thread count.\n");
            cli_print_options(stdout, opts);
            return 0;
        case CLI_ERROR: return CLI_EXIT_USAGE;
        case CLI_POSITIONAL:
            if (kind_name) return cli_usage_error("gen", "unexpected argument '%s'", p.value);
            kind_name = p.value;
            break;
        case GM_ROWS:
            if (cli_parse_count("gen", "--rows", p.value, &rows)) return CLI_EXIT_USAGE;
            break;
        case GM_FEATURES:
            if (cli_parse_count("gen", "--features", p.value, &features)) return CLI_EXIT_USAGE;
            break;
        case GM_CLASSES:
            if (cli_parse_count("gen", "--classes", p.value, &classes)) return CLI_EXIT_USAGE;
            if (classes > 100000) return cli_usage_error("gen", "--classes: at most 100000");
            break;
        case GM_SCALE:
            if (cli_parse_double("gen", "--scale", p.value, &scale)) return CLI_EXIT_USAGE;
            break;
        case GM_NOISE:
            if (cli_parse_double("gen", "--noise", p.value, &noise)) return CLI_EXIT_USAGE;
            break;
        case GM_SEED:
            if (cli_parse_count("gen", "--seed", p.value, &seed)) return CLI_EXIT_USAGE;
            break;
        case GM_FORMAT: format = p.value; break;
        case GM_OUT: path = p.value; break;
        }
    }
    pt_gen_ml_kind kind;
    if (!kind_name || !pt_gen_ml_kind_parse(kind_name, &kind))
        return cli_usage_error("gen", "missing the data set (classify, regress or blobs)");
    if (strcmp(format, "libsvm") != 0 && strcmp(format, "csv") != 0)
        return cli_usage_error("gen", "--format: '%s' is not libsvm or csv", format);
    if (!path) return cli_usage_error("gen", "missing -o FILE");
    pt_gen_ml_opts o;
    pt_gen_ml_opts_init(&o, kind);
    if (rows >= 0) o.rows = rows;
    if (features >= 0) o.features = features;
    if (classes >= 0) o.classes = (int)classes;
    if (scale >= 0) o.scale = scale;
    if (noise >= 0) o.noise = noise;
    o.seed = (uint64_t)seed;
    o.csv = strcmp(format, "csv") == 0;

    pt_error err;
    pt_ctx *ctx;
    if (cli_ctx_new(cli_g.threads, cli_g.memory_limit, &ctx, &err) != PT_OK) return cli_fail(&err);
    double t0 = pt_now_s();
    int64_t bytes = 0;
    pt_status s = pt_gen_ml_write(ctx, &o, path, &bytes, &err);
    double dt = pt_now_s() - t0;
    int threads = pt_ctx_threads(ctx);
    pt_ctx_free(ctx);
    if (s != PT_OK) return cli_fail(&err);
    if (!cli_g.quiet) {
        char b[32];
        fprintf(stderr,
                "partita gen: %lld rows x %lld features of %s (%s), %s, written to %s in %.2f s "
                "(%d threads)\n",
                (long long)o.rows, (long long)o.features, kind_name, format,
                pt_format_bytes((double)bytes, b, sizeof b), path, dt, threads);
    }
    return 0;
}
