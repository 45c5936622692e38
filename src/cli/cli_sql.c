/*
 * cli_sql.c - `partita sql`: runs a SQL query (or EXPLAIN) over CSV files
 * named in the query or registered with --table, printing an aligned table,
 * CSV on stdout, or streaming CSV to a file.
 */
#include <string.h>

#include "cli.h"
#include "partita/dataframe.h"

enum { SQL_FORMAT = 1, SQL_OUTPUT, SQL_TABLE, SQL_MAXROWS };

static void sql_help(const cli_opt *opts) {
    printf("usage: partita sql \"SELECT ...\" [--table NAME=FILE ...] [--format table|csv]\n"
           "                  [--output FILE] [--max-rows N]\n"
           "\n"
           "Runs a SQL query. Tables are CSV files named in the query with quotes\n"
           "(FROM 'data.csv', globs allowed) or registered with --table NAME=FILE.\n"
           "The query is planned lazily, optimised (projection and predicate push-down,\n"
           "constant folding) and run in parallel, in bounded memory with\n"
           "--memory-limit. EXPLAIN SELECT ... prints the plan before and after\n"
           "optimisation. Supported: SELECT [DISTINCT], expressions and aliases, FROM\n"
           "files, tables or subqueries, JOIN (INNER/LEFT/RIGHT/FULL, ON/USING), WHERE,\n"
           "GROUP BY, HAVING, ORDER BY, LIMIT/OFFSET, CASE, aggregates (count, sum,\n"
           "avg, min, max, stddev, variance, median, first, last, corr, count distinct)\n"
           "and ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...).\n");
    cli_print_options(stdout, opts);
}

int cli_cmd_sql(int argc, char **argv) {
    static const cli_opt opts[] = {
        {SQL_FORMAT, "format", 'f', "FMT", "table (aligned, default) or csv"},
        {SQL_OUTPUT, "output", 'o', "FILE", "write the result as CSV to FILE (streamed)"},
        {SQL_TABLE, "table", 't', "NAME=FILE", "register a CSV file as table NAME (repeatable)"},
        {SQL_MAXROWS, "max-rows", 'n', "N", "rows shown in table format (default 100)"},
        {0, NULL, 0, NULL, NULL},
    };
    cli_parser p;
    cli_parser_init(&p, "sql", argc, argv, opts);
    const char *query = NULL, *output = NULL, *tables[64];
    int ntables = 0, csv = 0, rc = -1;
    int64_t max_rows = 100;
    for (int id; rc < 0 && (id = cli_next(&p)) != CLI_END;) {
        switch (id) {
        case CLI_HELP: sql_help(opts); rc = 0; break;
        case CLI_ERROR: rc = CLI_EXIT_USAGE; break;
        case CLI_POSITIONAL:
            if (query) rc = cli_usage_error("sql", "give one query (quote it): extra '%s'", p.value);
            query = p.value;
            break;
        case SQL_FORMAT:
            if (strcmp(p.value, "csv") == 0) csv = 1;
            else if (strcmp(p.value, "table") == 0) csv = 0;
            else rc = cli_usage_error("sql", "--format: expected table or csv, got '%s'", p.value);
            break;
        case SQL_OUTPUT: output = p.value; break;
        case SQL_TABLE:
            if (!strchr(p.value, '=') || p.value[0] == '=')
                rc = cli_usage_error("sql", "--table: expected NAME=FILE, got '%s'", p.value);
            else if (ntables == 64) rc = cli_usage_error("sql", "--table: at most 64 tables");
            else tables[ntables++] = p.value;
            break;
        case SQL_MAXROWS:
            if (cli_parse_count("sql", "--max-rows", p.value, &max_rows)) rc = CLI_EXIT_USAGE;
            break;
        default: break;
        }
    }
    if (rc < 0 && !query) rc = cli_usage_error("sql", "missing the query, e.g. partita sql \"SELECT 1\"");
    if (rc >= 0) return rc;

    pt_error err;
    pt_ctx *ctx = NULL;
    pt_catalog *cat = NULL;
    pt_frame *f = NULL;
    pt_table *t = NULL;
    int explain = 0;
    double t0 = pt_now_s();
    pt_status s = cli_ctx_new(cli_g.threads, cli_g.memory_limit, &ctx, &err);
    if (s == PT_OK) s = pt_catalog_new(ctx, &cat, &err);
    for (int i = 0; s == PT_OK && i < ntables; i++) {
        char name[256];
        const char *eq = strchr(tables[i], '=');
        snprintf(name, sizeof name, "%.*s", (int)(eq - tables[i]), tables[i]);
        pt_frame *tf;
        s = pt_frame_read_csv(ctx, eq + 1, NULL, &tf, &err);
        if (s == PT_OK) {
            s = pt_catalog_register(cat, name, tf, &err);
            pt_frame_free(tf);
        }
    }
    if (s == PT_OK) s = pt_sql(ctx, cat, query, &f, &explain, &err);
    /* Under mpirun every rank runs the plan; rank 0 speaks. */
    int rank = pt_comm_rank(pt_ctx_comm(ctx)), nranks = pt_comm_size(pt_ctx_comm(ctx));
    if (s == PT_OK && explain) {
        if (rank == 0) s = pt_frame_explain(f, stdout, &err);
    } else if (s == PT_OK && output) {
        s = pt_frame_write_csv(f, output, NULL, &err);
    } else if (s == PT_OK) {
        s = pt_frame_collect_root(f, &t, &err);
        if (rank != 0) {
        } else if (s == PT_OK && csv) {
            s = pt_csv_write_file(t, stdout, 1, NULL, &err);
        } else if (s == PT_OK) {
            pt_print_opts po;
            pt_print_opts_init(&po);
            po.max_rows = max_rows;
            s = pt_table_print(t, stdout, &po, &err);
        }
    }
    if (s == PT_OK && !cli_g.quiet && !explain && rank == 0) {
        char b[32], b2[32], rk[48] = "";
        if (nranks > 1) snprintf(rk, sizeof rk, " per rank, %d ranks", nranks);
        fprintf(stderr, "%s%.3f s, %d threads%s, peak budget memory %s, spilled %s\n",
                t ? "" : "written; ", pt_now_s() - t0, pt_ctx_threads(ctx), rk,
                pt_format_bytes((double)pt_mem_peak(pt_ctx_mem(ctx)), b, sizeof b),
                pt_format_bytes((double)pt_ctx_spilled_bytes(ctx), b2, sizeof b2));
    }
    pt_table_free(t);
    pt_frame_free(f);
    pt_catalog_free(cat);
    pt_ctx_free(ctx);
    return s == PT_OK ? 0 : cli_fail(&err);
}
