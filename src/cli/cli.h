/*
 * cli.h - shared pieces of the `partita` command: option parsing, global
 * options, context creation and error reporting. The CLI is a client of the
 * public API (partita.h) only.
 */
#ifndef PT_CLI_H
#define PT_CLI_H

#include "partita.h"

/* Exit codes: 0 ok, 1 a library failure, 2 bad usage. */
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* Options every command accepts. */
typedef struct cli_global {
    int threads;          /* 0 = default */
    int64_t memory_limit; /* 0 = unlimited / environment */
    int quiet;
} cli_global;
extern cli_global cli_g;

/* One option of a command. `id` is what cli_next returns for it. */
typedef struct cli_opt {
    int id;
    const char *name;  /* long name without "--" */
    char short_name;   /* 0 = none */
    const char *arg;   /* argument name for the help ("N"), NULL = flag */
    const char *help;
} cli_opt;

/* Returned by cli_next besides option ids (which must be > 0). */
#define CLI_END 0
#define CLI_POSITIONAL (-1)
#define CLI_HELP (-2)
#define CLI_ERROR (-3)

typedef struct cli_parser {
    const char *cmd; /* "stats" */
    int argc;
    char **argv;
    int i;
    const cli_opt *opts; /* ended by an entry with name NULL */
    const char *value;   /* argument of the option or the positional text */
} cli_parser;

void cli_parser_init(cli_parser *p, const char *cmd, int argc, char **argv, const cli_opt *opts);
/* Next option or positional argument. Global options are handled here
 * (stored in cli_g). On bad usage prints a message and returns CLI_ERROR. */
int cli_next(cli_parser *p);
/* Prints "usage" then the options of the command and the global options. */
void cli_print_options(FILE *out, const cli_opt *opts);
void cli_print_global_options(FILE *out);

/* Usage error: prints "partita CMD: message" and returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) PT_PRINTF(2, 3);
/* Library failure: prints "partita: message" and returns CLI_EXIT_FAIL. */
int cli_fail(const pt_error *err);

/* "1e7", "10M", "250k", "1000" -> count. Returns 0 on success, else prints a
 * usage error naming `opt` and returns CLI_EXIT_USAGE. */
int cli_parse_count(const char *cmd, const char *opt, const char *text, int64_t *out);
int cli_parse_double(const char *cmd, const char *opt, const char *text, double *out);
/* "," ";" "\t" "tab" "|" -> a delimiter character. */
int cli_parse_delimiter(const char *cmd, const char *text, char *out);
/* Splits "a,b,c" into a NULL-terminated array (free with cli_free_list). */
char **cli_split_list(const char *text, int *n);
void cli_free_list(char **list);

/* A context honouring --threads and --memory-limit (threads > 0 overrides). */
pt_status cli_ctx_new(int threads, int64_t memory_limit, pt_ctx **out, pt_error *err);

/* Commands. argv[0] is the command name. */
int cli_cmd_info(int argc, char **argv);
int cli_cmd_gen(int argc, char **argv);
int cli_cmd_head(int argc, char **argv);
int cli_cmd_stats(int argc, char **argv);
int cli_cmd_demo(int argc, char **argv);
int cli_cmd_sql(int argc, char **argv);
int cli_cmd_launch(int argc, char **argv);
/* ML: gen classify|regress|blobs (cli_gen_ml.c); cli_gen_ml_kind tells
 * whether a gen data set name is one of them. */
bool cli_gen_ml_kind(const char *name);
int cli_cmd_gen_ml(int argc, char **argv);
/* ML: train, predict, eval (cli_train.c). */
int cli_cmd_train(int argc, char **argv);
int cli_cmd_predict(int argc, char **argv);
int cli_cmd_eval(int argc, char **argv);

#endif
