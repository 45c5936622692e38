/*
 * cli_args.c - option parsing for the `partita` command: long options
 * (--name value, --name=value), short options (-n 5), global options mixed
 * freely with a command's own, and the number/size parsers the commands
 * share. Bad usage is reported here with the offending text.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

cli_global cli_g;

enum { G_THREADS = 1001, G_MEMORY, G_QUIET, G_LOG };

static const cli_opt global_opts[] = {
    {G_THREADS, "threads", 0, "N", "worker threads (default: all cores or PARTITA_THREADS)"},
    {G_MEMORY, "memory-limit", 0, "SIZE", "memory budget, e.g. 512M, 2G (default: unlimited)"},
    {G_QUIET, "quiet", 'q', NULL, "no progress bars or timing lines"},
    {G_LOG, "log", 0, "LEVEL", "log level: off, error, warn, info, debug, trace"},
    {0, NULL, 0, NULL, NULL},
};

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "partita%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'partita%s%s --help')\n", cmd ? " " : "", cmd ? cmd : "");
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_fail(const pt_error *err) {
    fprintf(stderr, "partita: %s\n",
            err && err->msg[0] ? err->msg : pt_status_str(err ? err->code : PT_EINTERNAL));
    return CLI_EXIT_FAIL;
}

void cli_parser_init(cli_parser *p, const char *cmd, int argc, char **argv, const cli_opt *opts) {
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->argc = argc;
    p->argv = argv;
    p->i = 1;
    p->opts = opts;
}

static const cli_opt *find_long(const cli_opt *opts, const char *name, size_t len) {
    for (const cli_opt *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
    return NULL;
}

static const cli_opt *find_short(const cli_opt *opts, char c) {
    for (const cli_opt *o = opts; o && o->name; o++)
        if (o->short_name && o->short_name == c) return o;
    return NULL;
}

static int parse_log_level(const char *cmd, const char *text) {
    static const char *const names[] = {"off", "error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 6; i++) {
        if (strcmp(text, names[i]) == 0 || (text[0] == '0' + i && text[1] == '\0')) {
            pt_log_level_set((pt_log_level)i);
            return 0;
        }
    }
    return cli_usage_error(cmd, "--log: unknown level '%s' (off, error, warn, info, debug, "
                                "trace or 0-5)",
                           text);
}

/* Applies a global option; returns 0 or a usage exit code. */
static int apply_global(const char *cmd, int id, const char *value) {
    switch (id) {
    case G_THREADS: {
        int64_t n;
        if (cli_parse_count(cmd, "--threads", value, &n)) return CLI_EXIT_USAGE;
        if (n < 1 || n > 4096) return cli_usage_error(cmd, "--threads: %s is not in 1..4096", value);
        cli_g.threads = (int)n;
        return 0;
    }
    case G_MEMORY: {
        pt_error err;
        int64_t bytes;
        if (pt_parse_size(value, "--memory-limit", &bytes, &err) != PT_OK)
            return cli_usage_error(cmd, "%s", err.msg);
        cli_g.memory_limit = bytes;
        return 0;
    }
    case G_QUIET:
        cli_g.quiet = 1;
        pt_progress_set_quiet(1);
        return 0;
    case G_LOG: return parse_log_level(cmd, value);
    }
    return 0;
}

int cli_next(cli_parser *p) {
    for (;;) {
        if (p->i >= p->argc) return CLI_END;
        const char *a = p->argv[p->i++];
        p->value = NULL;
        if (a[0] != '-' || a[1] == '\0') {
            p->value = a;
            return CLI_POSITIONAL;
        }
        if (strcmp(a, "--") == 0) {
            if (p->i >= p->argc) return CLI_END;
            p->value = p->argv[p->i++];
            return CLI_POSITIONAL;
        }
        const cli_opt *o = NULL;
        const char *inline_value = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            if (len == 4 && strncmp(name, "help", 4) == 0) return CLI_HELP;
            o = find_long(p->opts, name, len);
            if (!o) o = find_long(global_opts, name, len);
            if (eq) inline_value = eq + 1;
        } else {
            if (a[1] == 'h' && a[2] == '\0') return CLI_HELP;
            o = find_short(p->opts, a[1]);
            if (!o) o = find_short(global_opts, a[1]);
            if (o && a[2] != '\0') {
                if (!o->arg) o = NULL; /* "-qx": not supported */
                else inline_value = a + 2;
            }
        }
        if (!o) {
            cli_usage_error(p->cmd, "unknown option '%s'", a);
            return CLI_ERROR;
        }
        if (o->arg) {
            if (inline_value) {
                p->value = inline_value;
            } else if (p->i < p->argc) {
                p->value = p->argv[p->i++];
            } else {
                cli_usage_error(p->cmd, "option '%s' needs a value (%s)", a, o->arg);
                return CLI_ERROR;
            }
        } else if (inline_value) {
            cli_usage_error(p->cmd, "option '--%s' takes no value", o->name);
            return CLI_ERROR;
        }
        if (o->id >= G_THREADS) { /* commands number their options below 1000 */
            if (apply_global(p->cmd, o->id, p->value)) return CLI_ERROR;
            continue;
        }
        return o->id;
    }
}

static void print_opt_table(FILE *out, const cli_opt *opts) {
    for (const cli_opt *o = opts; o && o->name; o++) {
        char left[64];
        int n = 0;
        if (o->short_name)
            n = snprintf(left, sizeof left, "-%c, --%s", o->short_name, o->name);
        else
            n = snprintf(left, sizeof left, "    --%s", o->name);
        if (o->arg && n < (int)sizeof left) snprintf(left + n, sizeof left - (size_t)n, " %s", o->arg);
        fprintf(out, "  %-26s %s\n", left, o->help);
    }
}

void cli_print_options(FILE *out, const cli_opt *opts) {
    fprintf(out, "\nOptions:\n");
    print_opt_table(out, opts);
    fprintf(out, "  %-26s %s\n", "-h, --help", "show this help");
    cli_print_global_options(out);
}

void cli_print_global_options(FILE *out) {
    fprintf(out, "\nGlobal options (any command):\n");
    print_opt_table(out, global_opts);
}

int cli_parse_count(const char *cmd, const char *opt, const char *text, int64_t *out) {
    const char *p = text ? text : "";
    errno = 0;
    char *end;
    double v = strtod(p, &end);
    if (end == p || errno) return cli_usage_error(cmd, "%s: invalid number '%s'", opt, p);
    double mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1e3; end++; break;
    case 'm': case 'M': mult = 1e6; end++; break;
    case 'g': case 'G': case 'b': case 'B': mult = 1e9; end++; break;
    default: break;
    }
    v *= mult;
    if (*end != '\0' || !(v >= 0) || v > 9.2e18 || v != floor(v))
        return cli_usage_error(cmd, "%s: invalid number '%s' (a non-negative integer such as "
                                    "1000, 1e7 or 10M)",
                               opt, p);
    *out = (int64_t)v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *text, double *out) {
    const char *p = text ? text : "";
    errno = 0;
    char *end;
    double v = strtod(p, &end);
    if (end == p || errno || *end != '\0' || !isfinite(v))
        return cli_usage_error(cmd, "%s: invalid number '%s'", opt, p);
    *out = v;
    return 0;
}

int cli_parse_delimiter(const char *cmd, const char *text, char *out) {
    if (strcmp(text, "\\t") == 0 || strcmp(text, "tab") == 0) {
        *out = '\t';
        return 0;
    }
    if (strlen(text) != 1 || text[0] == '"' || text[0] == '\n' || text[0] == '\r')
        return cli_usage_error(cmd, "--delimiter: '%s' is not a single character (e.g. ',', ';', "
                                    "tab)",
                               text);
    *out = text[0];
    return 0;
}

char **cli_split_list(const char *text, int *n) {
    int count = 1;
    for (const char *p = text; *p; p++) count += *p == ',';
    char **list = calloc((size_t)count + 1, sizeof *list);
    if (!list) return NULL;
    int k = 0;
    const char *start = text;
    for (const char *p = text;; p++) {
        if (*p == ',' || *p == '\0') {
            size_t len = (size_t)(p - start);
            while (len && isspace((unsigned char)*start)) start++, len--;
            while (len && isspace((unsigned char)start[len - 1])) len--;
            if (len) {
                list[k] = malloc(len + 1);
                if (!list[k]) {
                    cli_free_list(list);
                    return NULL;
                }
                memcpy(list[k], start, len);
                list[k][len] = '\0';
                k++;
            }
            if (*p == '\0') break;
            start = p + 1;
        }
    }
    *n = k;
    return list;
}

void cli_free_list(char **list) {
    if (!list) return;
    for (char **p = list; *p; p++) free(*p);
    free(list);
}

pt_status cli_ctx_new(int threads, int64_t memory_limit, pt_ctx **out, pt_error *err) {
    pt_ctx_opts o;
    pt_ctx_opts_init(&o);
    if (threads > 0) o.threads = threads;
    if (memory_limit > 0) o.memory_limit = memory_limit;
    return pt_ctx_new(&o, out, err);
}
