/*
 * cli_main.c - the `partita` command: dispatch and the commands info, gen,
 * head and stats (demo lives in cli_demo.c). Each command parses its
 * options, calls the library, and prints; the work itself is the library's.
 */
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void main_usage(FILE *out) {
    fprintf(out,
            "usage: partita [global options] COMMAND [options]\n"
            "\n"
            "Partita %s - a C data engine.\n"
            "\n"
            "Commands:\n"
            "  info     version, build options, threads, memory budget, MPI\n"
            "  gen      generate a data set (classic, g1, j1; classify, regress, blobs)\n"
            "  head     show the first rows of a CSV file\n"
            "  stats    column statistics of a CSV file, streamed in bounded memory\n"
            "  sql      run a SQL query over CSV files (lazy, parallel, out of core)\n"
            "  demo     a guided tour: generate, partition, compute in parallel, stream\n"
            "  train    train linreg, logreg, kmeans or mlp (data-parallel under MPI)\n"
            "  predict  predictions of a saved model\n"
            "  eval     metrics of a saved model on labelled data\n"
            "  launch   run a command on N processes with mpirun (launch -n 4 -- info)\n"
            "\n"
            "Run 'partita COMMAND --help' for a command's options.\n",
            pt_version());
    cli_print_global_options(out);
}

/* ------------------------------------------------------------------------ */
/* info                                                                     */
/* ------------------------------------------------------------------------ */

int cli_cmd_info(int argc, char **argv) {
    static const cli_opt opts[] = {{0, NULL, 0, NULL, NULL}};
    cli_parser p;
    cli_parser_init(&p, "info", argc, argv, opts);
    for (int id; (id = cli_next(&p)) != CLI_END;) {
        if (id == CLI_HELP) {
            printf("usage: partita info [options]\n\n"
                   "Prints the version, the build options, the threads and memory budget a\n"
                   "command would use, MPI availability and the number of cores.\n");
            cli_print_options(stdout, opts);
            return 0;
        }
        if (id == CLI_ERROR) return CLI_EXIT_USAGE;
        if (id == CLI_POSITIONAL) return cli_usage_error("info", "unexpected argument '%s'", p.value);
    }
    pt_error err;
    pt_ctx *ctx;
    if (cli_ctx_new(cli_g.threads, cli_g.memory_limit, &ctx, &err) != PT_OK) return cli_fail(&err);
    /* Under mpirun every rank runs this; rank 0 speaks for the job. */
    pt_comm *comm = NULL;
    pt_error cerr;
    pt_status cs = pt_comm_world(&comm, &cerr); /* the one the context uses */
    if (cs == PT_OK && pt_comm_rank(comm) != 0) {
        pt_ctx_free(ctx);
        return 0;
    }
    const char *bi = pt_build_info();
    printf("partita %s\n", pt_version());
    /* build info is key=value lines; show them aligned */
    const char *mpi = "no";
    char line[256];
    for (const char *s = bi; *s;) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        if (len >= sizeof line) len = sizeof line - 1;
        memcpy(line, s, len);
        line[len] = '\0';
        char *eq = strchr(line, '=');
        if (eq) {
            *eq = '\0';
            if (strcmp(line, "version") != 0) printf("  %-14s %s\n", line, eq + 1);
            if (strcmp(line, "mpi") == 0 && strncmp(eq + 1, "yes", 3) == 0) mpi = "yes";
        }
        s += len + (nl ? 1 : 0);
        if (!nl) break;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char buf[32];
    int64_t limit = pt_mem_limit(pt_ctx_mem(ctx));
    printf("  %-14s %d\n", "threads", pt_ctx_threads(ctx));
    printf("  %-14s %ld\n", "cores", cores);
    printf("  %-14s %s\n", "memory budget",
           limit > 0 ? pt_format_bytes((double)limit, buf, sizeof buf) : "unlimited");
    printf("  %-14s %s\n", "MPI available", mpi);
    char ver[256], host[256];
    printf("  %-14s %s\n", "MPI library", pt_comm_library_version(NULL, ver, sizeof ver));
    if (cs == PT_OK) {
        printf("  %-14s %s, rank 0 of %d on %s\n", "comm", pt_comm_backend_name(comm),
               pt_comm_size(comm), pt_comm_processor_name(comm, host, sizeof host));
    } else {
        printf("  %-14s unavailable: %s\n", "comm", cerr.msg);
    }
    printf("  %-14s %s\n", "spill dir", pt_ctx_spill_dir(ctx) ? pt_ctx_spill_dir(ctx) : "-");
    pt_ctx_free(ctx);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* gen                                                                      */
/* ------------------------------------------------------------------------ */

enum { GEN_ROWS = 1, GEN_GROUPS, GEN_NAS, GEN_SEED, GEN_OUT };

int cli_cmd_gen(int argc, char **argv) {
    static const cli_opt opts[] = {
        {GEN_ROWS, "rows", 'n', "N", "rows to generate, e.g. 1e7 or 10M (default 1e6)"},
        {GEN_GROUPS, "groups", 'k', "K", "g1: groups K (default 100)"},
        {GEN_NAS, "nas", 0, "PCT", "g1: percent of nulls in v1, v2, v3 (default 0)"},
        {GEN_SEED, "seed", 0, "S", "random seed (default 42)"},
        {GEN_OUT, "output", 'o', "FILE", "CSV file to write (required)"},
        {0, NULL, 0, NULL, NULL},
    };
    /* The data set is the first argument that is not an option or an
     * option's value; training sets are cli_gen_ml.c's. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            if (cli_gen_ml_kind(a)) return cli_cmd_gen_ml(argc, argv);
            break;
        }
        bool flag = strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0 ||
                    strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strchr(a, '=');
        if (!flag) i++; /* skip the option's value */
    }
    cli_parser p;
    cli_parser_init(&p, "gen", argc, argv, opts);
    int64_t rows = 1000000, groups = 100, seed = 42;
    double nas = 0;
    const char *kind_name = NULL, *path = NULL;
    for (int id; (id = cli_next(&p)) != CLI_END;) {
        switch (id) {
        case CLI_HELP:
            printf("usage: partita gen classic|g1|j1 [--rows N] [--groups K] [--nas PCT] [--seed S] "
                   "-o FILE\n\n"
                   "Generates a data set as CSV, in parallel chunks and in bounded memory.\n"
                   "  classic  id, value1 (normal, mean 50, sd 10), value2 (standard normal),\n"
                   "           category (A-D), score (0-99): the Dask notebook frame\n"
                   "  g1       id1..id6, v1..v3: the db-benchmark group-by data\n"
                   "  j1       the db-benchmark join data: FILE_x.csv, FILE_small.csv,\n"
                   "           FILE_medium.csv, FILE_big.csv (built in memory, then written)\n"
                   "  classify, regress, blobs  training sets as libsvm or CSV (see\n"
                   "           'partita gen classify --help')\n"
                   "The same seed gives the same file whatever the thread count.\n");
            cli_print_options(stdout, opts);
            return 0;
        case CLI_ERROR: return CLI_EXIT_USAGE;
        case CLI_POSITIONAL:
            if (kind_name) return cli_usage_error("gen", "unexpected argument '%s'", p.value);
            kind_name = p.value;
            break;
        case GEN_ROWS:
            if (cli_parse_count("gen", "--rows", p.value, &rows)) return CLI_EXIT_USAGE;
            break;
        case GEN_GROUPS:
            if (cli_parse_count("gen", "--groups", p.value, &groups)) return CLI_EXIT_USAGE;
            if (groups < 1) return cli_usage_error("gen", "--groups must be at least 1");
            break;
        case GEN_NAS:
            if (cli_parse_double("gen", "--nas", p.value, &nas)) return CLI_EXIT_USAGE;
            if (nas < 0 || nas > 100)
                return cli_usage_error("gen", "--nas: %s is not a percentage in 0..100", p.value);
            break;
        case GEN_SEED:
            if (cli_parse_count("gen", "--seed", p.value, &seed)) return CLI_EXIT_USAGE;
            break;
        case GEN_OUT: path = p.value; break;
        }
    }
    if (!kind_name) return cli_usage_error("gen", "missing the data set (classic, g1 or j1)");
    pt_error err;
    pt_gen_kind kind;
    if (pt_gen_kind_parse(kind_name, &kind, &err) != PT_OK) return cli_usage_error("gen", "%s", err.msg);
    if (!path) return cli_usage_error("gen", "missing -o FILE");
    pt_ctx *ctx;
    if (cli_ctx_new(cli_g.threads, cli_g.memory_limit, &ctx, &err) != PT_OK) return cli_fail(&err);
    double t0 = pt_now_s();
    int64_t bytes = 0;
    pt_status s = pt_gen_write_csv(ctx, kind, rows, groups, nas, (uint64_t)seed, path, &bytes, &err);
    double dt = pt_now_s() - t0;
    int threads = pt_ctx_threads(ctx);
    pt_ctx_free(ctx);
    if (s != PT_OK) return cli_fail(&err);
    if (!cli_g.quiet) {
        char b[32];
        fprintf(stderr, "partita gen: %lld rows of %s, %s, written to %s in %.2f s (%.1f M rows/s, "
                        "%d threads)\n",
                (long long)rows, pt_gen_kind_name(kind), pt_format_bytes((double)bytes, b, sizeof b),
                path, dt, dt > 0 ? rows / dt / 1e6 : 0.0, threads);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Options shared by head and stats                                         */
/* ------------------------------------------------------------------------ */

enum { RD_COLUMNS = 1, RD_DELIM, RD_NOHEADER, RD_ROWS, RD_EXACT };

typedef struct read_args {
    const char *path;
    char **columns;
    int ncolumns;
    char delimiter;
    int no_header;
} read_args;

static void read_args_apply(const read_args *a, pt_csv_opts *o) {
    if (a->columns) {
        o->columns = (const char *const *)a->columns;
        o->ncolumns = a->ncolumns;
    }
    if (a->delimiter) o->delimiter = a->delimiter;
    if (a->no_header) o->header = 0;
}

/* Handles an option common to head and stats; returns 1 when consumed, or a
 * negative value on a usage error. */
static int read_arg(const char *cmd, int id, const char *value, read_args *a) {
    switch (id) {
    case CLI_POSITIONAL:
        if (a->path) return cli_usage_error(cmd, "unexpected argument '%s'", value), -1;
        a->path = value;
        return 1;
    case RD_COLUMNS:
        cli_free_list(a->columns);
        a->columns = cli_split_list(value, &a->ncolumns);
        if (!a->columns || a->ncolumns == 0)
            return cli_usage_error(cmd, "--columns: no column names in '%s'", value), -1;
        return 1;
    case RD_DELIM:
        if (cli_parse_delimiter(cmd, value, &a->delimiter)) return -1;
        return 1;
    case RD_NOHEADER: a->no_header = 1; return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* head                                                                     */
/* ------------------------------------------------------------------------ */

int cli_cmd_head(int argc, char **argv) {
    static const cli_opt opts[] = {
        {RD_ROWS, "rows", 'n', "N", "rows to show (default 10)"},
        {RD_COLUMNS, "columns", 'c', "a,b", "only these columns, in this order"},
        {RD_DELIM, "delimiter", 'd', "C", "field delimiter (default: detected)"},
        {RD_NOHEADER, "no-header", 0, NULL, "the first line is data (columns c0, c1, ...)"},
        {0, NULL, 0, NULL, NULL},
    };
    cli_parser p;
    cli_parser_init(&p, "head", argc, argv, opts);
    read_args a = {0};
    int64_t n = 10;
    int rc = -1;
    for (int id; rc < 0 && (id = cli_next(&p)) != CLI_END;) {
        if (id == CLI_HELP) {
            printf("usage: partita head FILE [-n N] [--columns a,b] [--delimiter C] "
                   "[--no-header]\n\n"
                   "Shows the first N rows of a CSV file with their inferred types. Only the\n"
                   "start of the file is read.\n");
            cli_print_options(stdout, opts);
            rc = 0;
        } else if (id == CLI_ERROR) {
            rc = CLI_EXIT_USAGE;
        } else if (id == RD_ROWS) {
            if (cli_parse_count("head", "-n", p.value, &n)) rc = CLI_EXIT_USAGE;
        } else if (read_arg("head", id, p.value, &a) < 0) {
            rc = CLI_EXIT_USAGE;
        }
    }
    if (rc < 0 && !a.path) rc = cli_usage_error("head", "missing the FILE to read");
    if (rc >= 0) {
        cli_free_list(a.columns);
        return rc;
    }

    pt_error err;
    pt_ctx *ctx = NULL;
    pt_csv_reader *rd = NULL;
    pt_table **parts = NULL, *all = NULL, *head = NULL;
    int nparts = 0;
    int64_t got = 0;
    pt_status s = cli_ctx_new(cli_g.threads, cli_g.memory_limit, &ctx, &err);
    if (s == PT_OK) {
        pt_csv_opts o;
        pt_csv_opts_init(&o);
        read_args_apply(&a, &o);
        o.progress = 0;
        /* Small batches: head reads only about what it shows. */
        o.batch_bytes = 64 * 1024 + n * 256;
        if (o.sample_rows > n + 100) o.sample_rows = n + 100 > 1000 ? n + 100 : 1000;
        s = pt_csv_open(ctx, a.path, &o, &rd, &err);
    }
    while (s == PT_OK && got < n) {
        pt_table *b = NULL;
        s = pt_csv_next(rd, &b, &err);
        if (s != PT_OK || !b) break;
        pt_table **np = realloc(parts, (size_t)(nparts + 1) * sizeof *np);
        if (!np) {
            pt_table_free(b);
            s = pt_error_set(&err, PT_ENOMEM, "out of memory");
            break;
        }
        parts = np;
        parts[nparts++] = b;
        got += b->nrows;
    }
    if (s == PT_OK) {
        if (nparts == 0) {
            /* No data rows: show the header and types alone. */
            pt_schema *schema = NULL;
            s = pt_schema_copy(pt_csv_reader_schema(rd), &schema, &err);
            pt_column **cols = NULL;
            if (s == PT_OK) {
                cols = calloc((size_t)schema->nfields + 1, sizeof *cols);
                for (int c = 0; c < schema->nfields && s == PT_OK; c++) {
                    pt_type t = schema->fields[c].type;
                    if (t == PT_TYPE_DICT) t = PT_TYPE_UTF8;
                    schema->fields[c].type = t;
                    s = pt_column_new(NULL, t, 0, 0, &cols[c], &err);
                }
                if (s == PT_OK) s = pt_table_new(schema, cols, &head, &err);
                else pt_schema_free(schema);
                free(cols);
            }
        } else {
            if (nparts == 1) all = parts[0], parts[0] = NULL;
            else s = pt_table_concat(pt_ctx_mem(ctx), parts, nparts, &all, &err);
            if (s == PT_OK) s = pt_table_slice(all, 0, all->nrows < n ? all->nrows : n, &head, &err);
        }
    }
    if (s == PT_OK) {
        pt_print_opts po;
        pt_print_opts_init(&po);
        po.max_rows = n;
        s = pt_table_print(head, stdout, &po, &err);
    }
    pt_table_free(head);
    pt_table_free(all);
    for (int i = 0; i < nparts; i++) pt_table_free(parts[i]);
    free(parts);
    pt_csv_close(rd);
    pt_ctx_free(ctx);
    cli_free_list(a.columns);
    return s == PT_OK ? 0 : cli_fail(&err);
}

/* ------------------------------------------------------------------------ */
/* stats                                                                    */
/* ------------------------------------------------------------------------ */

int cli_cmd_stats(int argc, char **argv) {
    static const cli_opt opts[] = {
        {RD_COLUMNS, "columns", 'c', "a,b", "only these columns (the others are not parsed)"},
        {RD_DELIM, "delimiter", 'd', "C", "field delimiter (default: detected)"},
        {RD_NOHEADER, "no-header", 0, NULL, "the first line is data (columns c0, c1, ...)"},
        {RD_EXACT, "exact-limit", 0, "N",
         "distinct values counted exactly per column before estimating (default 1e6)"},
        {0, NULL, 0, NULL, NULL},
    };
    cli_parser p;
    cli_parser_init(&p, "stats", argc, argv, opts);
    read_args a = {0};
    pt_stats_opts so;
    pt_stats_opts_init(&so);
    int rc = -1;
    for (int id; rc < 0 && (id = cli_next(&p)) != CLI_END;) {
        if (id == CLI_HELP) {
            printf("usage: partita stats FILE [--columns a,b] [--threads N] [--memory-limit SIZE]\n"
                   "\n"
                   "Column statistics (count, nulls, mean, std, min, max, distinct values, most\n"
                   "frequent values) of a CSV file. The file is streamed batch by batch, each\n"
                   "batch split into partitions computed in parallel, so memory stays near the\n"
                   "--memory-limit budget whatever the file size.\n");
            cli_print_options(stdout, opts);
            rc = 0;
        } else if (id == CLI_ERROR) {
            rc = CLI_EXIT_USAGE;
        } else if (id == RD_EXACT) {
            if (cli_parse_count("stats", "--exact-limit", p.value, &so.exact_distinct_limit))
                rc = CLI_EXIT_USAGE;
        } else if (read_arg("stats", id, p.value, &a) < 0) {
            rc = CLI_EXIT_USAGE;
        }
    }
    if (rc < 0 && !a.path) rc = cli_usage_error("stats", "missing the FILE to read");
    if (rc >= 0) {
        cli_free_list(a.columns);
        return rc;
    }
    pt_error err;
    pt_ctx *ctx = NULL;
    pt_stats *st = NULL;
    pt_status s = cli_ctx_new(cli_g.threads, cli_g.memory_limit, &ctx, &err);
    if (s == PT_OK) {
        pt_csv_opts o;
        pt_csv_opts_init(&o);
        read_args_apply(&a, &o);
        s = pt_stats_csv(ctx, a.path, &o, &so, &st, &err);
    }
    if (s == PT_OK) {
        pt_stats_print(st, stdout);
        char b1[32], b2[32], b3[32];
        int64_t limit = pt_mem_limit(pt_ctx_mem(ctx));
        int64_t rss = pt_rss_peak();
        printf("\n%lld rows, %lld batches, %lld partitions, %d threads, %.2f s (%.1f M rows/s)\n",
               (long long)st->rows, (long long)st->batches, (long long)st->partitions,
               pt_ctx_threads(ctx), st->seconds,
               st->seconds > 0 ? (double)st->rows / st->seconds / 1e6 : 0.0);
        printf("peak budget memory %s (limit %s), peak RSS %s\n",
               pt_format_bytes((double)st->peak_memory, b1, sizeof b1),
               limit > 0 ? pt_format_bytes((double)limit, b2, sizeof b2) : "none",
               rss >= 0 ? pt_format_bytes((double)rss, b3, sizeof b3) : "n/a");
    }
    pt_stats_free(st);
    pt_ctx_free(ctx);
    cli_free_list(a.columns);
    return s == PT_OK ? 0 : cli_fail(&err);
}

/* ------------------------------------------------------------------------ */
/* main                                                                     */
/* ------------------------------------------------------------------------ */

/* Column buffers and exchange messages are large and short-lived. glibc
 * serves large blocks with mmap and returns them with munmap, so every
 * query paid a page fault and a zeroed page per 4 KiB again (a third of a
 * distributed group-by's time in profiles). Freed memory stays in the heap
 * for reuse instead; the peak is what the budget bounds anyway. */
static void tune_malloc(void) {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
    mallopt(M_TOP_PAD, 64 << 20);
}

int main(int argc, char **argv) {
    tune_malloc();
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"info", cli_cmd_info}, {"gen", cli_cmd_gen},   {"head", cli_cmd_head},
        {"stats", cli_cmd_stats}, {"demo", cli_cmd_demo}, {"sql", cli_cmd_sql},
        {"launch", cli_cmd_launch}, {"train", cli_cmd_train}, {"predict", cli_cmd_predict},
        {"eval", cli_cmd_eval},
    };
    if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        printf("partita %s\n", pt_version());
        return 0;
    }
    /* Global options may come before the command. */
    static const cli_opt none[] = {{0, NULL, 0, NULL, NULL}};
    cli_parser p;
    cli_parser_init(&p, NULL, argc, argv, none);
    int id;
    while ((id = cli_next(&p)) != CLI_END && id != CLI_POSITIONAL) {
        if (id == CLI_HELP) {
            main_usage(stdout);
            return 0;
        }
        if (id == CLI_ERROR) return CLI_EXIT_USAGE;
    }
    if (id == CLI_END) {
        main_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = p.value;
    if (strcmp(cmd, "help") == 0) {
        main_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0) {
        printf("partita %s\n", pt_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmd, cmds[i].name) == 0) return cmds[i].fn(argc - (p.i - 1), argv + (p.i - 1));
    return cli_usage_error(NULL, "unknown command '%s'", cmd);
}
