/*
 * expr_build.c - expression trees: constructors, reference counting, SQL
 * text, structural equality and the tree rewrites the planner uses
 * (conjunct splitting, aggregate extraction, subtree replacement).
 *
 * Trees are immutable, so rewrites share every unchanged subtree with the
 * original (a new reference) and copy only the path to what changed.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "frame/expr.h"

/* ------------------------------------------------------------------------ */
/* Construction and lifetime                                                */
/* ------------------------------------------------------------------------ */

static pt_expr *node_new(pt__expr_kind kind, int nargs) {
    pt_expr *e = pt_calloc(1, sizeof *e);
    if (!e) return NULL;
    e->refcount = 1;
    e->kind = kind;
    if (nargs > 0) {
        e->args = pt_calloc((size_t)nargs, sizeof *e->args);
        if (!e->args) {
            pt_free(e);
            return NULL;
        }
    }
    e->nargs = nargs;
    return e;
}

pt_expr *pt_expr_ref(pt_expr *e) {
    if (e) __atomic_fetch_add(&e->refcount, 1, __ATOMIC_RELAXED);
    return e;
}

void pt_expr_free(pt_expr *e) {
    if (!e || __atomic_sub_fetch(&e->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    for (int k = 0; k < e->nargs; k++) pt_expr_free(e->args[k]);
    pt_free(e->args);
    pt_free(e->str);
    pt_free(e);
}

static void free_all(pt_expr **a, int n) {
    for (int k = 0; a && k < n; k++) pt_expr_free(a[k]);
}

/* A node of `kind` owning args[0..n); on failure (a NULL arg or out of
 * memory) the non-NULL args are freed and NULL returned. */
static pt_expr *node_with(pt__expr_kind kind, int n, pt_expr **args) {
    for (int k = 0; k < n; k++) {
        if (!args[k]) {
            free_all(args, n);
            return NULL;
        }
    }
    pt_expr *e = node_new(kind, n);
    if (!e) {
        free_all(args, n);
        return NULL;
    }
    for (int k = 0; k < n; k++) e->args[k] = args[k];
    return e;
}

pt_expr *pt_col(const char *name) {
    if (!name) return NULL;
    pt_expr *e = node_new(PT__E_COL, 0);
    if (!e) return NULL;
    if (!(e->str = pt_strdup(name))) {
        pt_free(e);
        return NULL;
    }
    return e;
}

pt_expr *pt_lit_i64(int64_t v) {
    pt_expr *e = node_new(PT__E_LIT, 0);
    if (e) e->type = PT_TYPE_INT64, e->i = v;
    return e;
}

pt_expr *pt_lit_f64(double v) {
    pt_expr *e = node_new(PT__E_LIT, 0);
    if (e) e->type = PT_TYPE_FLOAT64, e->f = v;
    return e;
}

pt_expr *pt_lit_bool(bool v) {
    pt_expr *e = node_new(PT__E_LIT, 0);
    if (e) e->type = PT_TYPE_BOOL, e->i = v ? 1 : 0;
    return e;
}

pt_expr *pt_lit_str(const char *s) {
    if (!s) return NULL;
    pt_expr *e = node_new(PT__E_LIT, 0);
    if (!e) return NULL;
    e->type = PT_TYPE_UTF8;
    if (!(e->str = pt_strdup(s))) {
        pt_free(e);
        return NULL;
    }
    return e;
}

pt_expr *pt_lit_null(void) {
    pt_expr *e = node_new(PT__E_LIT, 0);
    if (e) e->type = PT_TYPE_NULL, e->lit_null = true;
    return e;
}

static bool op_is_unary(pt_op op) {
    return op == PT_OP_NEG || op == PT_OP_NOT || op == PT_OP_IS_NULL || op == PT_OP_IS_NOT_NULL;
}

pt_expr *pt_unary(pt_op op, pt_expr *a) {
    if (!op_is_unary(op)) {
        pt_expr_free(a);
        return NULL;
    }
    pt_expr *e = node_with(PT__E_UNARY, 1, &a);
    if (e) e->op = op;
    return e;
}

pt_expr *pt_binary(pt_op op, pt_expr *a, pt_expr *b) {
    if (op_is_unary(op)) {
        pt_expr_free(b);
        return pt_unary(op, a);
    }
    if ((int)op < 0 || op > PT_OP_CONCAT) {
        pt_expr_free(a);
        pt_expr_free(b);
        return NULL;
    }
    pt_expr *args[2] = {a, b};
    pt_expr *e = node_with(PT__E_BINARY, 2, args);
    if (e) e->op = op;
    return e;
}

pt_expr *pt_cast(pt_expr *a, pt_type to) {
    if ((int)to < 0 || to >= PT_TYPE_COUNT) {
        pt_expr_free(a);
        return NULL;
    }
    pt_expr *e = node_with(PT__E_CAST, 1, &a);
    if (e) e->type = to;
    return e;
}

pt_expr *pt_call(const char *fn, int nargs, pt_expr **args) {
    if (nargs < 0) nargs = 0;
    if (!fn || (nargs > 0 && !args)) {
        free_all(args, nargs);
        return NULL;
    }
    pt_expr *e = node_with(PT__E_CALL, nargs, args);
    if (!e) return NULL;
    if (!(e->str = pt_strdup(fn))) {
        pt_expr_free(e);
        return NULL;
    }
    return e;
}

pt_expr *pt_case(int nwhen, pt_expr **conds, pt_expr **vals, pt_expr *otherwise) {
    if (nwhen < 1 || !conds || !vals) {
        if (nwhen > 0) {
            free_all(conds, nwhen);
            free_all(vals, nwhen);
        }
        pt_expr_free(otherwise);
        return NULL;
    }
    int n = 2 * nwhen + (otherwise ? 1 : 0);
    pt_expr **args = pt_calloc((size_t)n, sizeof *args);
    if (!args) {
        free_all(conds, nwhen);
        free_all(vals, nwhen);
        pt_expr_free(otherwise);
        return NULL;
    }
    for (int k = 0; k < nwhen; k++) {
        args[2 * k] = conds[k];
        args[2 * k + 1] = vals[k];
    }
    if (otherwise) args[n - 1] = otherwise;
    pt_expr *e = node_with(PT__E_CASE, n, args);
    pt_free(args);
    if (e) e->has_else = otherwise != NULL;
    return e;
}

pt_expr *pt_agg(pt_agg_kind kind, pt_expr *arg, pt_expr *arg2) {
    if ((int)kind < 0 || kind > PT_AGG_CORR) {
        pt_expr_free(arg);
        pt_expr_free(arg2);
        return NULL;
    }
    pt_expr *e;
    if (kind == PT_AGG_COUNT_STAR) {
        pt_expr_free(arg);
        pt_expr_free(arg2);
        e = node_new(PT__E_AGG, 0);
    } else if (kind == PT_AGG_CORR) {
        pt_expr *args[2] = {arg, arg2};
        e = node_with(PT__E_AGG, 2, args);
    } else {
        pt_expr_free(arg2);
        e = node_with(PT__E_AGG, 1, &arg);
    }
    if (e) e->agg = kind;
    return e;
}

pt_expr *pt_alias(pt_expr *e, const char *name) {
    if (!name) {
        pt_expr_free(e);
        return NULL;
    }
    pt_expr *a = node_with(PT__E_ALIAS, 1, &e);
    if (!a) return NULL;
    if (!(a->str = pt_strdup(name))) {
        pt_expr_free(a);
        return NULL;
    }
    return a;
}

pt_expr *pt__expr_with_args(const pt_expr *e, pt_expr **args) {
    pt_expr *c = node_with(e->kind, e->nargs, args);
    if (!c) return NULL;
    c->op = e->op;
    c->agg = e->agg;
    c->type = e->type;
    c->lit_null = e->lit_null;
    c->has_else = e->has_else;
    c->i = e->i;
    c->f = e->f;
    if (e->str && !(c->str = pt_strdup(e->str))) {
        pt_expr_free(c);
        return NULL;
    }
    return c;
}

/* ------------------------------------------------------------------------ */
/* Names                                                                    */
/* ------------------------------------------------------------------------ */

static const char *const agg_names[] = {
    "count", "count", "count", "sum", "avg", "min", "max",
    "stddev", "variance", "median", "first", "last", "corr",
};

const char *pt__agg_name(pt_agg_kind k) {
    if ((int)k < 0 || k > PT_AGG_CORR) return "?";
    return agg_names[k];
}

bool pt__agg_lookup(const char *name, pt_agg_kind *out) {
    static const struct {
        const char *name;
        pt_agg_kind kind;
    } tab[] = {
        {"count", PT_AGG_COUNT},      {"sum", PT_AGG_SUM},          {"avg", PT_AGG_MEAN},
        {"mean", PT_AGG_MEAN},        {"min", PT_AGG_MIN},          {"max", PT_AGG_MAX},
        {"stddev", PT_AGG_STD},       {"std", PT_AGG_STD},          {"stddev_samp", PT_AGG_STD},
        {"variance", PT_AGG_VAR},     {"var", PT_AGG_VAR},          {"var_samp", PT_AGG_VAR},
        {"median", PT_AGG_MEDIAN},    {"first", PT_AGG_FIRST},      {"last", PT_AGG_LAST},
        {"corr", PT_AGG_CORR},
    };
    if (!name) return false;
    for (size_t k = 0; k < sizeof tab / sizeof tab[0]; k++) {
        if (strcasecmp(name, tab[k].name) == 0) {
            *out = tab[k].kind;
            return true;
        }
    }
    return false;
}

const char *pt__agg_column_name(int k, char *buf, size_t cap) {
    snprintf(buf, cap, "__agg%d", k);
    return buf;
}

const char *pt__expr_col_name(const pt_expr *e) {
    return e && e->kind == PT__E_COL ? e->str : NULL;
}

/* ------------------------------------------------------------------------ */
/* SQL text                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct sbuf {
    char *buf;
    size_t cap, len; /* len may pass cap: the text is then cut */
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->len + 1 < b->cap) {
        size_t room = b->cap - 1 - b->len;
        memcpy(b->buf + b->len, s, n < room ? n : room);
    }
    b->len += n;
    if (b->cap > 0) b->buf[b->len < b->cap ? b->len : b->cap - 1] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt(sbuf *b, const char *fmt, ...) PT_PRINTF(2, 3);
static void sb_fmt(sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static bool is_keyword(const char *s) {
    static const char *const kw[] = {
        "select", "from",  "where", "and",    "or",     "not",   "null",     "true",
        "false",  "is",    "as",    "case",   "when",   "then",  "else",     "end",
        "cast",   "group", "by",    "order",  "limit",  "offset", "distinct", "in",
        "like",   "between", "join", "on",    "having", "union", "all",      "asc",
        "desc",   "inner", "left",  "right",  "full",   "outer", "using",    "explain",
    };
    for (size_t k = 0; k < sizeof kw / sizeof kw[0]; k++)
        if (strcasecmp(s, kw[k]) == 0) return true;
    return false;
}

/* Writes a name, double-quoted unless it is a plain identifier. */
static void sb_ident(sbuf *b, const char *s) {
    bool plain = (isalpha((unsigned char)s[0]) || s[0] == '_') && !is_keyword(s);
    for (const char *p = s; plain && *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_') plain = false;
    if (plain) {
        sb_str(b, s);
        return;
    }
    sb_put(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"') sb_put(b, "\"", 1);
        sb_put(b, p, 1);
    }
    sb_put(b, "\"", 1);
}

static void sb_quoted(sbuf *b, const char *s) {
    sb_put(b, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '\'') sb_put(b, "'", 1);
        sb_put(b, p, 1);
    }
    sb_put(b, "'", 1);
}

static const char *sql_type_name(pt_type t) {
    return t == PT_TYPE_DICT ? "category" : pt_type_name(t);
}

static void sb_f64(sbuf *b, double v) {
    if (!isfinite(v)) {
        sb_str(b, "CAST(");
        sb_quoted(b, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        sb_str(b, " AS float64)");
        return;
    }
    char tmp[64];
    for (int d = 15; d <= 17; d++) {
        snprintf(tmp, sizeof tmp, "%.*g", d, v);
        if (strtod(tmp, NULL) == v) break;
    }
    sb_str(b, tmp);
    /* Keep it a float literal when read back ("3" would be an integer). */
    if (!strpbrk(tmp, ".eE")) sb_str(b, ".0");
}

enum { P_OR = 1, P_AND, P_NOT, P_IS, P_CMP, P_CONCAT, P_ADD, P_MUL, P_NEG, P_ATOM };

static const pt_expr *strip_alias(const pt_expr *e) {
    while (e && e->kind == PT__E_ALIAS) e = e->args[0];
    return e;
}

/* like(s, p) is written `s LIKE p`: LIKE is a keyword in SQL, so the
 * function-call form would not parse back. */
static bool is_like(const pt_expr *e) {
    return e->kind == PT__E_CALL && e->nargs == 2 && strcasecmp(e->str, "like") == 0;
}

static int prec(const pt_expr *e) {
    e = strip_alias(e);
    switch (e->kind) {
    case PT__E_BINARY:
        switch (e->op) {
        case PT_OP_OR: return P_OR;
        case PT_OP_AND: return P_AND;
        case PT_OP_CONCAT: return P_CONCAT;
        case PT_OP_ADD:
        case PT_OP_SUB: return P_ADD;
        case PT_OP_MUL:
        case PT_OP_DIV:
        case PT_OP_MOD: return P_MUL;
        default: return P_CMP;
        }
    case PT__E_UNARY:
        return e->op == PT_OP_NOT ? P_NOT : e->op == PT_OP_NEG ? P_NEG : P_IS;
    case PT__E_CALL: return is_like(e) ? P_CMP : P_ATOM;
    case PT__E_LIT:
        if (e->type == PT_TYPE_INT64 && e->i < 0 && e->i != INT64_MIN) return P_NEG;
        if (e->type == PT_TYPE_FLOAT64 && isfinite(e->f) && signbit(e->f)) return P_NEG;
        return P_ATOM;
    default: return P_ATOM;
    }
}

static const char *op_text(pt_op op) {
    static const char *const t[] = {"+", "-", "*", "/", "%", "-", "=", "<>", "<", "<=",
                                    ">", ">=", "AND", "OR", "NOT", "IS NULL", "IS NOT NULL", "||"};
    return (int)op >= 0 && op <= PT_OP_CONCAT ? t[op] : "?";
}

static void write_expr(sbuf *b, const pt_expr *e);

static void write_sub(sbuf *b, const pt_expr *e, bool parens) {
    if (parens) sb_put(b, "(", 1);
    write_expr(b, e);
    if (parens) sb_put(b, ")", 1);
}

static void write_expr(sbuf *b, const pt_expr *e) {
    if (!e) {
        sb_str(b, "<null>");
        return;
    }
    switch (e->kind) {
    case PT__E_COL: sb_ident(b, e->str); break;
    case PT__E_LIT:
        switch (e->type) {
        case PT_TYPE_BOOL: sb_str(b, e->i ? "TRUE" : "FALSE"); break;
        case PT_TYPE_INT64:
            if (e->i == INT64_MIN) sb_str(b, "CAST('-9223372036854775808' AS int64)");
            else sb_fmt(b, "%lld", (long long)e->i);
            break;
        case PT_TYPE_FLOAT64: sb_f64(b, e->f); break;
        case PT_TYPE_UTF8: sb_quoted(b, e->str ? e->str : ""); break;
        default: sb_str(b, "NULL"); break;
        }
        break;
    case PT__E_BINARY: {
        int p = prec(e), pl = prec(e->args[0]), pr = prec(e->args[1]);
        bool lp = pl < p || (p == P_CMP && pl == P_CMP);
        bool rp = pr <= p;
        if (p == P_CONCAT) {
            lp = lp || pl == P_ADD || pl == P_MUL;
            rp = rp || pr == P_ADD || pr == P_MUL;
        }
        write_sub(b, e->args[0], lp);
        sb_put(b, " ", 1);
        sb_str(b, op_text(e->op));
        sb_put(b, " ", 1);
        write_sub(b, e->args[1], rp);
        break;
    }
    case PT__E_UNARY: {
        int pa = prec(e->args[0]);
        if (e->op == PT_OP_NEG) {
            sb_put(b, "-", 1);
            write_sub(b, e->args[0], pa < P_ATOM);
        } else if (e->op == PT_OP_NOT) {
            sb_str(b, "NOT ");
            write_sub(b, e->args[0], pa < P_NEG);
        } else {
            write_sub(b, e->args[0], pa < P_NEG);
            sb_str(b, e->op == PT_OP_IS_NULL ? " IS NULL" : " IS NOT NULL");
        }
        break;
    }
    case PT__E_CAST:
        sb_str(b, "CAST(");
        write_expr(b, e->args[0]);
        sb_str(b, " AS ");
        sb_str(b, sql_type_name(e->type));
        sb_put(b, ")", 1);
        break;
    case PT__E_CALL:
        if (is_like(e)) {
            write_sub(b, e->args[0], prec(e->args[0]) <= P_CONCAT);
            sb_str(b, " LIKE ");
            write_sub(b, e->args[1], prec(e->args[1]) <= P_CONCAT);
            break;
        }
        sb_str(b, e->str);
        sb_put(b, "(", 1);
        for (int k = 0; k < e->nargs; k++) {
            if (k) sb_str(b, ", ");
            write_expr(b, e->args[k]);
        }
        sb_put(b, ")", 1);
        break;
    case PT__E_CASE: {
        sb_str(b, "CASE");
        int nw = (e->nargs - (e->has_else ? 1 : 0)) / 2;
        for (int k = 0; k < nw; k++) {
            sb_str(b, " WHEN ");
            write_expr(b, e->args[2 * k]);
            sb_str(b, " THEN ");
            write_expr(b, e->args[2 * k + 1]);
        }
        if (e->has_else) {
            sb_str(b, " ELSE ");
            write_expr(b, e->args[e->nargs - 1]);
        }
        sb_str(b, " END");
        break;
    }
    case PT__E_AGG:
        sb_str(b, pt__agg_name(e->agg));
        sb_put(b, "(", 1);
        if (e->agg == PT_AGG_COUNT_STAR) sb_put(b, "*", 1);
        if (e->agg == PT_AGG_COUNT_DISTINCT) sb_str(b, "DISTINCT ");
        for (int k = 0; k < e->nargs; k++) {
            if (k) sb_str(b, ", ");
            write_expr(b, e->args[k]);
        }
        sb_put(b, ")", 1);
        break;
    case PT__E_ALIAS:
        /* An alias only means something at the top; inside an expression
         * (not valid SQL) the aliased expression stands for itself. */
        write_expr(b, e->args[0]);
        break;
    }
}

const char *pt_expr_to_string(const pt_expr *e, char *buf, size_t cap) {
    if (!buf || cap == 0) return buf;
    buf[0] = 0;
    sbuf b = {buf, cap, 0};
    if (e && e->kind == PT__E_ALIAS) {
        write_expr(&b, e->args[0]);
        sb_str(&b, " AS ");
        sb_ident(&b, e->str);
    } else {
        write_expr(&b, e);
    }
    return buf;
}

const char *pt__expr_output_name(const pt_expr *e, char *buf, size_t cap) {
    if (e && (e->kind == PT__E_ALIAS || e->kind == PT__E_COL)) {
        snprintf(buf, cap, "%s", e->str);
        return buf;
    }
    return pt_expr_to_string(e, buf, cap);
}

/* ------------------------------------------------------------------------ */
/* Queries                                                                  */
/* ------------------------------------------------------------------------ */

int pt__expr_columns(const pt_expr *e, void (*cb)(const char *name, void *ud), void *ud) {
    if (!e) return 0;
    if (e->kind == PT__E_COL) {
        if (cb) cb(e->str, ud);
        return 1;
    }
    int n = 0;
    for (int k = 0; k < e->nargs; k++) n += pt__expr_columns(e->args[k], cb, ud);
    return n;
}

bool pt__expr_has_agg(const pt_expr *e) {
    if (!e) return false;
    if (e->kind == PT__E_AGG) return true;
    for (int k = 0; k < e->nargs; k++)
        if (pt__expr_has_agg(e->args[k])) return true;
    return false;
}

bool pt__expr_equal(const pt_expr *a, const pt_expr *b) {
    if (a == b) return true;
    if (!a || !b || a->kind != b->kind || a->nargs != b->nargs) return false;
    switch (a->kind) {
    case PT__E_COL:
        if (strcmp(a->str, b->str) != 0) return false;
        break;
    case PT__E_LIT:
        if (a->type != b->type || a->lit_null != b->lit_null) return false;
        if (a->type == PT_TYPE_BOOL || a->type == PT_TYPE_INT64) return a->i == b->i;
        if (a->type == PT_TYPE_FLOAT64) return memcmp(&a->f, &b->f, sizeof a->f) == 0;
        if (a->type == PT_TYPE_UTF8) return strcmp(a->str, b->str) == 0;
        return true;
    case PT__E_BINARY:
    case PT__E_UNARY:
        if (a->op != b->op) return false;
        break;
    case PT__E_CAST:
        if (a->type != b->type) return false;
        break;
    case PT__E_CALL:
        if (strcasecmp(a->str, b->str) != 0) return false;
        break;
    case PT__E_CASE:
        if (a->has_else != b->has_else) return false;
        break;
    case PT__E_AGG:
        if (a->agg != b->agg) return false;
        break;
    case PT__E_ALIAS:
        if (strcmp(a->str, b->str) != 0) return false;
        break;
    }
    for (int k = 0; k < a->nargs; k++)
        if (!pt__expr_equal(a->args[k], b->args[k])) return false;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Conjuncts                                                                */
/* ------------------------------------------------------------------------ */

typedef struct elist {
    pt_expr **v;
    int n, cap;
} elist;

static bool elist_push(elist *l, pt_expr *e) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 4;
        pt_expr **v = pt_realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = e;
    return true;
}

static bool split_rec(const pt_expr *e, elist *l) {
    if (e->kind == PT__E_BINARY && e->op == PT_OP_AND)
        return split_rec(e->args[0], l) && split_rec(e->args[1], l);
    return elist_push(l, pt_expr_ref((pt_expr *)e));
}

pt_status pt__expr_split_and(const pt_expr *e, pt_expr ***out, int *n, pt_error *err) {
    *out = NULL;
    *n = 0;
    if (!e) return pt_error_set(err, PT_EINVAL, "pt__expr_split_and: expression is NULL");
    elist l = {0};
    if (!split_rec(e, &l)) {
        free_all(l.v, l.n);
        pt_free(l.v);
        return pt_error_set(err, PT_ENOMEM, "out of memory splitting a predicate");
    }
    *out = l.v;
    *n = l.n;
    return PT_OK;
}

pt_expr *pt__expr_join_and(pt_expr **parts, int n) {
    if (n <= 0) return pt_lit_bool(true);
    pt_expr *acc = parts[0];
    for (int k = 1; k < n; k++) {
        acc = pt_binary(PT_OP_AND, acc, parts[k]);
        if (!acc) {
            free_all(parts + k + 1, n - k - 1);
            return NULL;
        }
    }
    return acc;
}

/* ------------------------------------------------------------------------ */
/* Rewrites                                                                 */
/* ------------------------------------------------------------------------ */

/* Rebuilds `e` with each child replaced by fn(child); unchanged trees are
 * shared. fn returns a new reference or NULL (error already recorded). */
typedef struct rewriter {
    pt_expr *(*fn)(struct rewriter *rw, const pt_expr *e);
    pt_status st;
    pt_error *err;
    /* extract_aggs */
    pt_expr ***aggs;
    int *naggs, *cap;
    int depth_in_agg;
    /* replace */
    pt_expr *const *targets;
    const char *const *names;
    int ntargets;
} rewriter;

static pt_expr *rebuild_children(rewriter *rw, const pt_expr *e) {
    if (e->nargs == 0) return pt_expr_ref((pt_expr *)e);
    pt_expr *small[8];
    pt_expr **args = e->nargs <= 8 ? small : pt_calloc((size_t)e->nargs, sizeof *args);
    if (!args) {
        rw->st = pt_error_set(rw->err, PT_ENOMEM, "out of memory rewriting an expression");
        return NULL;
    }
    bool same = true;
    int k = 0;
    for (; k < e->nargs; k++) {
        args[k] = rw->fn(rw, e->args[k]);
        if (!args[k]) break;
        if (args[k] != e->args[k]) same = false;
    }
    pt_expr *r = NULL;
    if (k < e->nargs) {
        free_all(args, k);
    } else if (same) {
        free_all(args, k);
        r = pt_expr_ref((pt_expr *)e);
    } else {
        r = pt__expr_with_args(e, args);
        if (!r) rw->st = pt_error_set(rw->err, PT_ENOMEM, "out of memory rewriting an expression");
    }
    if (args != small) pt_free(args);
    return r;
}

static pt_expr *extract_fn(rewriter *rw, const pt_expr *e) {
    if (e->kind != PT__E_AGG) return rebuild_children(rw, e);
    if (pt__expr_has_agg(e->args && e->nargs > 0 ? e->args[0] : NULL) ||
        (e->nargs > 1 && pt__expr_has_agg(e->args[1]))) {
        char buf[256];
        rw->st = pt_error_set(rw->err, PT_EINVAL,
                              "nested aggregate in '%s': an aggregate's argument cannot contain "
                              "another aggregate",
                              pt_expr_to_string(e, buf, sizeof buf));
        return NULL;
    }
    int k = 0;
    for (; k < *rw->naggs; k++)
        if (pt__expr_equal((*rw->aggs)[k], e)) break;
    if (k == *rw->naggs) {
        if (*rw->naggs == *rw->cap) {
            int cap = *rw->cap ? 2 * *rw->cap : 4;
            pt_expr **v = pt_realloc(*rw->aggs, (size_t)cap * sizeof *v);
            if (!v) {
                rw->st = pt_error_set(rw->err, PT_ENOMEM, "out of memory extracting aggregates");
                return NULL;
            }
            *rw->aggs = v;
            *rw->cap = cap;
        }
        (*rw->aggs)[k] = pt_expr_ref((pt_expr *)e);
        (*rw->naggs)++;
    }
    char name[32];
    pt_expr *c = pt_col(pt__agg_column_name(k, name, sizeof name));
    if (!c) rw->st = pt_error_set(rw->err, PT_ENOMEM, "out of memory extracting aggregates");
    return c;
}

pt_status pt__expr_extract_aggs(pt_expr *e, pt_expr ***aggs, int *naggs, int *cap,
                                pt_expr **rewritten, pt_error *err) {
    *rewritten = NULL;
    if (!e) return pt_error_set(err, PT_EINVAL, "pt__expr_extract_aggs: expression is NULL");
    int before = *naggs;
    rewriter rw = {.fn = extract_fn, .err = err, .aggs = aggs, .naggs = naggs, .cap = cap};
    pt_expr *r = extract_fn(&rw, e);
    if (!r) {
        if (rw.st == PT_OK) rw.st = pt_error_set(err, PT_ENOMEM, "out of memory extracting aggregates");
        /* Leave the list as it was. */
        for (int k = before; k < *naggs; k++) pt_expr_free((*aggs)[k]);
        *naggs = before;
        return rw.st;
    }
    *rewritten = r;
    return PT_OK;
}

static pt_expr *replace_fn(rewriter *rw, const pt_expr *e) {
    if (e->kind == PT__E_AGG) return pt_expr_ref((pt_expr *)e);
    for (int k = 0; k < rw->ntargets; k++) {
        if (rw->targets[k] && pt__expr_equal(strip_alias(rw->targets[k]), e)) {
            pt_expr *c = pt_col(rw->names[k]);
            if (!c) rw->st = pt_error_set(rw->err, PT_ENOMEM, "out of memory rewriting an expression");
            return c;
        }
    }
    return rebuild_children(rw, e);
}

pt_status pt__expr_replace(const pt_expr *e, pt_expr *const *targets, const char *const *names,
                           int n, pt_expr **out, pt_error *err) {
    *out = NULL;
    if (!e) return pt_error_set(err, PT_EINVAL, "pt__expr_replace: expression is NULL");
    rewriter rw = {.fn = replace_fn, .err = err, .targets = targets, .names = names, .ntargets = n};
    /* A top-level alias keeps its name even when its body is replaced. */
    pt_expr *r = replace_fn(&rw, e);
    if (!r) return rw.st != PT_OK ? rw.st : pt_error_set(err, PT_ENOMEM, "out of memory");
    *out = r;
    return PT_OK;
}
