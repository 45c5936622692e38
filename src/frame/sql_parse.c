/*
 * sql_parse.c - recursive-descent parser from tokens to the syntax tree of
 * sql.h. Every failure is reported at a token with what was expected;
 * semantic checks that need tables (names, grouping) are left to the
 * planner. Nesting is bounded so that hostile input cannot exhaust the
 * stack (the fuzz target feeds arbitrary bytes here).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "frame/sql.h"

#define MAX_DEPTH 200

static pt__sql_tok *cur(pt__sql *s) { return &s->toks[s->pos]; }
static pt__sql_tok *peek(pt__sql *s, size_t k) {
    size_t i = s->pos + k;
    return &s->toks[i < s->ntoks ? i : s->ntoks - 1];
}
static void advance(pt__sql *s) {
    if (s->pos + 1 < s->ntoks) s->pos++;
}
static bool is_kw(const pt__sql_tok *t, int kw) { return t->kind == PT_TK_KW && t->kw == kw; }
static bool is_sym(const pt__sql_tok *t, int sym) { return t->kind == PT_TK_SYM && t->sym == sym; }
static bool is_name(const pt__sql_tok *t) {
    return t->kind == PT_TK_IDENT || t->kind == PT_TK_QIDENT;
}
static bool is_word(const pt__sql_tok *t, const char *w) {
    return t->kind == PT_TK_IDENT && strcasecmp(t->text, w) == 0;
}
static bool accept_kw(pt__sql *s, int kw) {
    if (!is_kw(cur(s), kw)) return false;
    advance(s);
    return true;
}
static bool accept_sym(pt__sql *s, int sym) {
    if (!is_sym(cur(s), sym)) return false;
    advance(s);
    return true;
}
/* End of the previous token: the end of a construct just parsed. */
static size_t prev_end(pt__sql *s) {
    if (s->pos == 0) return 0;
    const pt__sql_tok *t = &s->toks[s->pos - 1];
    return t->off + t->len;
}

static void *oom(pt__sql *s) {
    pt_error_set(s->err, PT_ENOMEM, "sql: out of memory while parsing");
    return NULL;
}

static void *fail_expected(pt__sql *s, const char *what) {
    pt__sql_expected(s, what);
    return NULL;
}

static bool expect_sym(pt__sql *s, int sym, const char *what) {
    if (accept_sym(s, sym)) return true;
    pt__sql_expected(s, what);
    return false;
}

static bool expect_kw(pt__sql *s, int kw) {
    if (accept_kw(s, kw)) return true;
    pt__sql_expected(s, pt__sql_kw_name(kw));
    return false;
}

static pt__sql_node *new_node(pt__sql *s, pt__sql_nk kind, size_t pos) {
    pt__sql_node *n = pt__sql_alloc(&s->arena, sizeof *n);
    if (!n) return oom(s);
    n->kind = kind;
    n->pos = pos;
    n->end = pos;
    n->agg = -1;
    return n;
}

/* Appends to an arena array, doubling its capacity. */
static bool push_ptr(pt__sql *s, void *arrp, int *n, int *cap, size_t elsize) {
    void **arr = arrp;
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 4;
        void *na = pt__sql_alloc(&s->arena, (size_t)nc * elsize);
        if (!na) {
            oom(s);
            return false;
        }
        if (*arr) memcpy(na, *arr, (size_t)*n * elsize);
        *arr = na;
        *cap = nc;
    }
    return true;
}

static char *lower_dup(pt__sql *s, const char *t) {
    size_t n = strlen(t);
    char *d = pt__sql_strndup(&s->arena, t, n);
    if (!d) return oom(s);
    for (size_t i = 0; i < n; i++) d[i] = (char)tolower((unsigned char)d[i]);
    return d;
}

static pt__sql_node *parse_expr(pt__sql *s);
static pt__sql_query *parse_select(pt__sql *s, bool in_sub, int *stage);

/* ------------------------------------------------------------------------ */
/* Expressions                                                              */
/* ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    pt_agg_kind kind;
    int nargs;
} agg_names[] = {
    {"count", PT_AGG_COUNT, 1},     {"sum", PT_AGG_SUM, 1},
    {"avg", PT_AGG_MEAN, 1},        {"mean", PT_AGG_MEAN, 1},
    {"min", PT_AGG_MIN, 1},         {"max", PT_AGG_MAX, 1},
    {"stddev", PT_AGG_STD, 1},      {"stddev_samp", PT_AGG_STD, 1},
    {"std", PT_AGG_STD, 1},         {"variance", PT_AGG_VAR, 1},
    {"var_samp", PT_AGG_VAR, 1},    {"median", PT_AGG_MEDIAN, 1},
    {"first", PT_AGG_FIRST, 1},     {"last", PT_AGG_LAST, 1},
    {"corr", PT_AGG_CORR, 2},
};

static pt__sql_node *parse_type(pt__sql *s, pt__sql_node *n) {
    pt__sql_tok *t = cur(s);
    if (!is_name(t)) return fail_expected(s, "a type name");
    size_t tpos = t->off;
    const char *name = t->text;
    advance(s);
    if (strcasecmp(name, "double") == 0 && is_word(cur(s), "precision")) advance(s);
    /* VARCHAR(20), DECIMAL(10, 2): the size does not change the column type. */
    if (accept_sym(s, PT_SY_LP)) {
        while (cur(s)->kind == PT_TK_INT || is_sym(cur(s), PT_SY_COMMA)) advance(s);
        if (!expect_sym(s, PT_SY_RP, "')'")) return NULL;
    }
    if (strcasecmp(name, "decimal") == 0 || strcasecmp(name, "numeric") == 0) name = "float64";
    if (pt_type_parse(name, &n->type, NULL) != PT_OK || n->type == PT_TYPE_NULL ||
        n->type == PT_TYPE_COUNT) {
        pt__sql_error_at(s, tpos, PT_EPARSE, "syntax error at ",
                         "unknown type '%s' (expected one of: boolean, int, bigint, float, "
                         "double, varchar, text, category)",
                         name);
        return NULL;
    }
    return n;
}

static bool parse_order_list(pt__sql *s, pt__sql_node ***keys, bool **desc, int *n) {
    int cap = 0, dcap = 0, dn = 0;
    do {
        pt__sql_node *e = parse_expr(s);
        if (!e) return false;
        bool d = false;
        if (accept_kw(s, PT_KW_DESC)) d = true;
        else accept_kw(s, PT_KW_ASC);
        if (is_kw(cur(s), PT_KW_NULLS)) {
            advance(s);
            if (is_word(cur(s), "first")) {
                pt__sql_error_at(s, cur(s)->off, PT_EUNSUPPORTED, "error at ",
                                 "NULLS FIRST is not supported (nulls always sort last)");
                return false;
            }
            if (!is_word(cur(s), "last")) {
                pt__sql_expected(s, "LAST");
                return false;
            }
            advance(s);
        }
        if (!push_ptr(s, keys, n, &cap, sizeof **keys)) return false;
        (*keys)[(*n)++] = e;
        if (!push_ptr(s, desc, &dn, &dcap, sizeof **desc)) return false;
        (*desc)[dn++] = d;
    } while (accept_sym(s, PT_SY_COMMA));
    return true;
}

static pt__sql_node *parse_window(pt__sql *s, pt__sql_node *n) {
    n->kind = PT_SN_WINDOW;
    if (!expect_sym(s, PT_SY_LP, "'(' after OVER")) return NULL;
    if (accept_kw(s, PT_KW_PARTITION)) {
        if (!expect_kw(s, PT_KW_BY)) return NULL;
        int cap = 0;
        do {
            pt__sql_node *e = parse_expr(s);
            if (!e) return NULL;
            if (!push_ptr(s, &n->args, &n->nargs, &cap, sizeof *n->args)) return NULL;
            n->args[n->nargs++] = e;
        } while (accept_sym(s, PT_SY_COMMA));
    }
    if (accept_kw(s, PT_KW_ORDER)) {
        if (!expect_kw(s, PT_KW_BY)) return NULL;
        if (!parse_order_list(s, &n->args2, &n->desc, &n->nargs2)) return NULL;
    }
    if (!accept_sym(s, PT_SY_RP)) {
        return fail_expected(s, n->nargs2 ? "',' or ')'"
                                          : (n->nargs ? "ORDER BY, ',' or ')'"
                                                      : "PARTITION BY, ORDER BY or ')'"));
    }
    n->end = prev_end(s);
    return n;
}

/* name(...) with the name already consumed; covers aggregates, scalar
 * functions and ROW_NUMBER() OVER (...). */
static pt__sql_node *parse_call(pt__sql *s, const pt__sql_tok *name_tok) {
    pt__sql_node *n = new_node(s, PT_SN_FUNC, name_tok->off);
    if (!n) return NULL;
    n->name = lower_dup(s, name_tok->text);
    if (!n->name) return NULL;
    advance(s); /* the name */
    advance(s); /* '(' */
    int cap = 0;
    int agg = -1, want = -1;
    for (size_t i = 0; i < sizeof agg_names / sizeof agg_names[0]; i++) {
        if (strcmp(agg_names[i].name, n->name) == 0) {
            agg = (int)agg_names[i].kind;
            want = agg_names[i].nargs;
        }
    }
    size_t distinct_pos = 0;
    if (is_kw(cur(s), PT_KW_DISTINCT)) {
        distinct_pos = cur(s)->off;
        advance(s);
        n->neg = true;
    } else {
        accept_kw(s, PT_KW_ALL);
    }
    if (is_sym(cur(s), PT_SY_STAR) && !n->neg) {
        if (agg != PT_AGG_COUNT) {
            pt__sql_error_at(s, cur(s)->off, PT_EPARSE, "syntax error at ",
                             "'*' is only allowed as the argument of count()");
            return NULL;
        }
        advance(s);
        n->star = true;
        agg = PT_AGG_COUNT_STAR;
        if (!expect_sym(s, PT_SY_RP, "')'")) return NULL;
    } else if (!accept_sym(s, PT_SY_RP)) {
        do {
            pt__sql_node *e = parse_expr(s);
            if (!e) return NULL;
            if (!push_ptr(s, &n->args, &n->nargs, &cap, sizeof *n->args)) return NULL;
            n->args[n->nargs++] = e;
        } while (accept_sym(s, PT_SY_COMMA));
        if (!expect_sym(s, PT_SY_RP, "',' or ')'")) return NULL;
    }
    n->end = prev_end(s);
    if (is_kw(cur(s), PT_KW_OVER)) {
        if (strcmp(n->name, "row_number") != 0) {
            pt__sql_error_at(s, n->pos, PT_EUNSUPPORTED, "error at ",
                             "window function %s() is not supported (only ROW_NUMBER() OVER "
                             "(...))",
                             n->name);
            return NULL;
        }
        if (n->nargs || n->neg) {
            pt__sql_error_at(s, n->pos, PT_EPARSE, "syntax error at ",
                             "ROW_NUMBER() takes no arguments");
            return NULL;
        }
        advance(s);
        n->nargs = 0;
        n->args = NULL;
        return parse_window(s, n);
    }
    if (strcmp(n->name, "row_number") == 0) return fail_expected(s, "OVER after ROW_NUMBER()");
    if (agg == PT_AGG_COUNT_STAR) {
        n->agg = agg;
        return n;
    }
    if (n->neg && agg != PT_AGG_COUNT) {
        pt__sql_error_at(s, distinct_pos, PT_EUNSUPPORTED, "error at ",
                         "DISTINCT is only supported in count(DISTINCT x)");
        return NULL;
    }
    if (agg >= 0) {
        if (n->nargs != want) {
            pt__sql_error_at(s, n->pos, PT_EPARSE, "syntax error at ",
                             "%s() takes %d argument%s, got %d", n->name, want,
                             want == 1 ? "" : "s", n->nargs);
            return NULL;
        }
        n->agg = n->neg ? PT_AGG_COUNT_DISTINCT : agg;
    }
    return n;
}

static pt__sql_node *parse_case(pt__sql *s) {
    pt__sql_node *n = new_node(s, PT_SN_CASE, cur(s)->off);
    if (!n) return NULL;
    advance(s);
    if (!is_kw(cur(s), PT_KW_WHEN)) {
        n->a = parse_expr(s);
        if (!n->a) return NULL;
    }
    int cap = 0, cap2 = 0, n2 = 0;
    while (accept_kw(s, PT_KW_WHEN)) {
        pt__sql_node *c = parse_expr(s);
        if (!c || !expect_kw(s, PT_KW_THEN)) return NULL;
        pt__sql_node *v = parse_expr(s);
        if (!v) return NULL;
        if (!push_ptr(s, &n->args, &n->nargs, &cap, sizeof *n->args)) return NULL;
        n->args[n->nargs++] = c;
        if (!push_ptr(s, &n->args2, &n2, &cap2, sizeof *n->args2)) return NULL;
        n->args2[n2++] = v;
    }
    n->nargs2 = n2;
    if (n->nargs == 0) return fail_expected(s, "WHEN");
    if (accept_kw(s, PT_KW_ELSE)) {
        n->b = parse_expr(s);
        if (!n->b) return NULL;
    }
    if (!accept_kw(s, PT_KW_END)) return fail_expected(s, n->b ? "END" : "WHEN, ELSE or END");
    n->end = prev_end(s);
    return n;
}

static pt__sql_node *parse_primary(pt__sql *s) {
    pt__sql_tok *t = cur(s);
    pt__sql_node *n = NULL;
    switch (t->kind) {
    case PT_TK_INT:
        if (!(n = new_node(s, PT_SN_INT, t->off))) return NULL;
        n->ival = t->ival;
        advance(s);
        break;
    case PT_TK_FLOAT:
        if (!(n = new_node(s, PT_SN_FLOAT, t->off))) return NULL;
        n->fval = t->fval;
        advance(s);
        break;
    case PT_TK_STR:
        if (!(n = new_node(s, PT_SN_STR, t->off))) return NULL;
        n->str = t->text;
        advance(s);
        break;
    case PT_TK_KW:
        if (t->kw == PT_KW_TRUE || t->kw == PT_KW_FALSE) {
            if (!(n = new_node(s, PT_SN_BOOL, t->off))) return NULL;
            n->ival = t->kw == PT_KW_TRUE;
            advance(s);
        } else if (t->kw == PT_KW_NULL) {
            if (!(n = new_node(s, PT_SN_NULL, t->off))) return NULL;
            advance(s);
        } else if (t->kw == PT_KW_CASE) {
            return parse_case(s);
        } else if (t->kw == PT_KW_CAST) {
            if (!(n = new_node(s, PT_SN_CAST, t->off))) return NULL;
            advance(s);
            if (!expect_sym(s, PT_SY_LP, "'(' after CAST")) return NULL;
            if (!(n->a = parse_expr(s))) return NULL;
            if (!expect_kw(s, PT_KW_AS)) return NULL;
            if (!parse_type(s, n)) return NULL;
            if (!expect_sym(s, PT_SY_RP, "')'")) return NULL;
        } else {
            return fail_expected(s, "an expression");
        }
        break;
    case PT_TK_IDENT:
    case PT_TK_QIDENT:
        if (t->kind == PT_TK_IDENT && is_sym(peek(s, 1), PT_SY_LP)) return parse_call(s, t);
        if (!(n = new_node(s, PT_SN_COL, t->off))) return NULL;
        n->name = t->text;
        n->quoted = t->kind == PT_TK_QIDENT;
        advance(s);
        if (is_sym(cur(s), PT_SY_DOT)) {
            advance(s);
            if (!is_name(cur(s))) return fail_expected(s, "a column name after '.'");
            n->qual = n->name;
            n->name = cur(s)->text;
            n->quoted = cur(s)->kind == PT_TK_QIDENT;
            advance(s);
        }
        break;
    case PT_TK_SYM:
        if (t->sym == PT_SY_LP) {
            size_t open = t->off;
            advance(s);
            if (is_kw(cur(s), PT_KW_SELECT)) {
                pt__sql_error_at(s, cur(s)->off, PT_EUNSUPPORTED, "error at ",
                                 "subqueries are only supported in FROM");
                return NULL;
            }
            n = parse_expr(s);
            if (!n) return NULL;
            if (!expect_sym(s, PT_SY_RP, "')'")) return NULL;
            /* The parenthesised text names the expression (SELECT (a + b)). */
            n->pos = open;
            n->end = prev_end(s);
            return n;
        }
        return fail_expected(s, "an expression");
    default: return fail_expected(s, "an expression");
    }
    n->end = prev_end(s);
    return n;
}

static pt__sql_node *parse_postfix(pt__sql *s) {
    pt__sql_node *n = parse_primary(s);
    while (n && is_sym(cur(s), PT_SY_DCOLON)) {
        advance(s);
        pt__sql_node *c = new_node(s, PT_SN_CAST, n->pos);
        if (!c) return NULL;
        c->a = n;
        if (!parse_type(s, c)) return NULL;
        c->end = prev_end(s);
        n = c;
    }
    return n;
}

static pt__sql_node *parse_unary(pt__sql *s) {
    pt__sql_tok *t = cur(s);
    if (is_sym(t, PT_SY_MINUS) || is_sym(t, PT_SY_PLUS)) {
        bool minus = t->sym == PT_SY_MINUS;
        size_t pos = t->off;
        if (++s->depth > MAX_DEPTH) {
            pt__sql_error_at(s, pos, PT_EPARSE, "syntax error at ", "expression nested too deeply");
            return NULL;
        }
        advance(s);
        pt__sql_node *a = parse_unary(s);
        s->depth--;
        if (!a) return NULL;
        if (!minus) return a;
        /* Fold -literal so that "-3" is a literal, not an operation. */
        if (a->kind == PT_SN_INT && a->pos == pos + 1 && a->ival != INT64_MIN) {
            a->ival = -a->ival;
            a->pos = pos;
            return a;
        }
        if (a->kind == PT_SN_FLOAT && a->pos == pos + 1) {
            a->fval = -a->fval;
            a->pos = pos;
            return a;
        }
        pt__sql_node *n = new_node(s, PT_SN_UNARY, pos);
        if (!n) return NULL;
        n->op = PT_OP_NEG;
        n->a = a;
        n->end = a->end;
        return n;
    }
    return parse_postfix(s);
}

static pt__sql_node *binary(pt__sql *s, pt_op op, pt__sql_node *a, pt__sql_node *b) {
    pt__sql_node *n = new_node(s, PT_SN_BINARY, a->pos);
    if (!n) return NULL;
    n->op = op;
    n->a = a;
    n->b = b;
    n->end = b->end;
    return n;
}

static pt__sql_node *parse_mul(pt__sql *s) {
    pt__sql_node *a = parse_unary(s);
    while (a) {
        pt__sql_tok *t = cur(s);
        pt_op op;
        if (is_sym(t, PT_SY_STAR)) op = PT_OP_MUL;
        else if (is_sym(t, PT_SY_SLASH)) op = PT_OP_DIV;
        else if (is_sym(t, PT_SY_PCT)) op = PT_OP_MOD;
        else break;
        advance(s);
        pt__sql_node *b = parse_unary(s);
        if (!b) return NULL;
        a = binary(s, op, a, b);
    }
    return a;
}

static pt__sql_node *parse_add(pt__sql *s) {
    pt__sql_node *a = parse_mul(s);
    while (a) {
        pt__sql_tok *t = cur(s);
        pt_op op;
        if (is_sym(t, PT_SY_PLUS)) op = PT_OP_ADD;
        else if (is_sym(t, PT_SY_MINUS)) op = PT_OP_SUB;
        else break;
        advance(s);
        pt__sql_node *b = parse_mul(s);
        if (!b) return NULL;
        a = binary(s, op, a, b);
    }
    return a;
}

static pt__sql_node *parse_concat(pt__sql *s) {
    pt__sql_node *a = parse_add(s);
    while (a && is_sym(cur(s), PT_SY_CONCAT)) {
        advance(s);
        pt__sql_node *b = parse_add(s);
        if (!b) return NULL;
        a = binary(s, PT_OP_CONCAT, a, b);
    }
    return a;
}

static pt__sql_node *parse_predicate(pt__sql *s) {
    pt__sql_node *a = parse_concat(s);
    if (!a) return NULL;
    pt__sql_tok *t = cur(s);
    if (t->kind == PT_TK_SYM) {
        pt_op op;
        switch (t->sym) {
        case PT_SY_EQ: op = PT_OP_EQ; break;
        case PT_SY_NE: op = PT_OP_NE; break;
        case PT_SY_LT: op = PT_OP_LT; break;
        case PT_SY_LE: op = PT_OP_LE; break;
        case PT_SY_GT: op = PT_OP_GT; break;
        case PT_SY_GE: op = PT_OP_GE; break;
        default: return a;
        }
        advance(s);
        pt__sql_node *b = parse_concat(s);
        if (!b) return NULL;
        return binary(s, op, a, b);
    }
    if (is_kw(t, PT_KW_IS)) {
        advance(s);
        bool neg = accept_kw(s, PT_KW_NOT);
        if (!accept_kw(s, PT_KW_NULL)) return fail_expected(s, neg ? "NULL" : "NULL or NOT NULL");
        pt__sql_node *n = new_node(s, PT_SN_UNARY, a->pos);
        if (!n) return NULL;
        n->op = neg ? PT_OP_IS_NOT_NULL : PT_OP_IS_NULL;
        n->a = a;
        n->end = prev_end(s);
        return n;
    }
    bool neg = false;
    if (is_kw(t, PT_KW_NOT) &&
        (is_kw(peek(s, 1), PT_KW_BETWEEN) || is_kw(peek(s, 1), PT_KW_IN) ||
         is_kw(peek(s, 1), PT_KW_LIKE))) {
        neg = true;
        advance(s);
        t = cur(s);
    }
    if (is_kw(t, PT_KW_BETWEEN)) {
        advance(s);
        pt__sql_node *n = new_node(s, PT_SN_BETWEEN, a->pos);
        if (!n) return NULL;
        n->neg = neg;
        n->a = a;
        if (!(n->b = parse_concat(s))) return NULL;
        if (!expect_kw(s, PT_KW_AND)) return NULL;
        if (!(n->c = parse_concat(s))) return NULL;
        n->end = prev_end(s);
        return n;
    }
    if (is_kw(t, PT_KW_IN)) {
        advance(s);
        pt__sql_node *n = new_node(s, PT_SN_IN, a->pos);
        if (!n) return NULL;
        n->neg = neg;
        n->a = a;
        if (!expect_sym(s, PT_SY_LP, "'(' after IN")) return NULL;
        if (is_kw(cur(s), PT_KW_SELECT)) {
            pt__sql_error_at(s, cur(s)->off, PT_EUNSUPPORTED, "error at ",
                             "IN (SELECT ...) is not supported; use a JOIN");
            return NULL;
        }
        int cap = 0;
        do {
            pt__sql_node *e = parse_expr(s);
            if (!e) return NULL;
            if (!push_ptr(s, &n->args, &n->nargs, &cap, sizeof *n->args)) return NULL;
            n->args[n->nargs++] = e;
        } while (accept_sym(s, PT_SY_COMMA));
        if (!expect_sym(s, PT_SY_RP, "',' or ')'")) return NULL;
        n->end = prev_end(s);
        return n;
    }
    if (is_kw(t, PT_KW_LIKE)) {
        advance(s);
        pt__sql_node *n = new_node(s, PT_SN_LIKE, a->pos);
        if (!n) return NULL;
        n->neg = neg;
        n->a = a;
        if (!(n->b = parse_concat(s))) return NULL;
        n->end = prev_end(s);
        return n;
    }
    return a;
}

static pt__sql_node *parse_not(pt__sql *s) {
    if (is_kw(cur(s), PT_KW_NOT)) {
        size_t pos = cur(s)->off;
        if (++s->depth > MAX_DEPTH) {
            pt__sql_error_at(s, pos, PT_EPARSE, "syntax error at ", "expression nested too deeply");
            return NULL;
        }
        advance(s);
        pt__sql_node *a = parse_not(s);
        s->depth--;
        if (!a) return NULL;
        pt__sql_node *n = new_node(s, PT_SN_UNARY, pos);
        if (!n) return NULL;
        n->op = PT_OP_NOT;
        n->a = a;
        n->end = a->end;
        return n;
    }
    return parse_predicate(s);
}

static pt__sql_node *parse_and(pt__sql *s) {
    pt__sql_node *a = parse_not(s);
    while (a && is_kw(cur(s), PT_KW_AND)) {
        advance(s);
        pt__sql_node *b = parse_not(s);
        if (!b) return NULL;
        a = binary(s, PT_OP_AND, a, b);
    }
    return a;
}

static pt__sql_node *parse_expr(pt__sql *s) {
    if (++s->depth > MAX_DEPTH) {
        pt__sql_error_at(s, cur(s)->off, PT_EPARSE, "syntax error at ",
                         "expression nested too deeply");
        return NULL;
    }
    pt__sql_node *a = parse_and(s);
    while (a && is_kw(cur(s), PT_KW_OR)) {
        advance(s);
        pt__sql_node *b = parse_and(s);
        if (!b) {
            a = NULL;
            break;
        }
        a = binary(s, PT_OP_OR, a, b);
    }
    s->depth--;
    return a;
}

/* ------------------------------------------------------------------------ */
/* Queries                                                                  */
/* ------------------------------------------------------------------------ */

/* An identifier not followed by one of these is not taken as an implicit
 * alias, so that "SELECT a FORM t" reports FORM instead of 't'. */
static bool item_alias_follows(const pt__sql_tok *t) {
    return t->kind == PT_TK_EOF || is_sym(t, PT_SY_COMMA) || is_sym(t, PT_SY_SEMI) ||
           is_sym(t, PT_SY_RP) || is_kw(t, PT_KW_FROM);
}

static bool from_alias_follows(const pt__sql_tok *t) {
    if (t->kind == PT_TK_EOF || is_sym(t, PT_SY_COMMA) || is_sym(t, PT_SY_SEMI) ||
        is_sym(t, PT_SY_RP))
        return true;
    if (t->kind != PT_TK_KW) return false;
    switch (t->kw) {
    case PT_KW_WHERE: case PT_KW_GROUP: case PT_KW_HAVING: case PT_KW_ORDER: case PT_KW_LIMIT:
    case PT_KW_OFFSET: case PT_KW_JOIN: case PT_KW_INNER: case PT_KW_LEFT: case PT_KW_RIGHT:
    case PT_KW_FULL: case PT_KW_CROSS: case PT_KW_ON: case PT_KW_USING: case PT_KW_UNION:
        return true;
    default: return false;
    }
}

/* [AS] alias; NULL result with no error when there is none. */
static bool parse_alias(pt__sql *s, bool (*follows)(const pt__sql_tok *), const char **alias) {
    *alias = NULL;
    if (accept_kw(s, PT_KW_AS)) {
        if (!is_name(cur(s))) {
            pt__sql_expected(s, "an alias after AS");
            return false;
        }
        *alias = cur(s)->text;
        advance(s);
        return true;
    }
    if (is_name(cur(s)) && follows(peek(s, 1))) {
        *alias = cur(s)->text;
        advance(s);
    }
    return true;
}

static const char *basename_noext(pt__sql *s, const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strchr(b, '.');
    size_t n = dot ? (size_t)(dot - b) : strlen(b);
    if (n == 0 || memchr(b, '*', n) || memchr(b, '?', n)) return NULL;
    return pt__sql_strndup(&s->arena, b, n);
}

static pt__sql_from *parse_from(pt__sql *s);

static pt__sql_from *parse_from_primary(pt__sql *s) {
    pt__sql_tok *t = cur(s);
    pt__sql_from *f = pt__sql_alloc(&s->arena, sizeof *f);
    if (!f) return oom(s);
    f->pos = t->off;
    if (t->kind == PT_TK_STR) {
        f->kind = PT_FI_FILE;
        f->name = t->text;
        advance(s);
        if (!parse_alias(s, from_alias_follows, &f->alias)) return NULL;
        if (!f->alias) {
            f->alias = basename_noext(s, f->name);
            if (!f->alias && s->err && s->err->code == PT_ENOMEM) return NULL;
        }
        return f;
    }
    if (is_name(t)) {
        f->kind = PT_FI_TABLE;
        f->name = t->text;
        f->quoted = t->kind == PT_TK_QIDENT;
        advance(s);
        if (!parse_alias(s, from_alias_follows, &f->alias)) return NULL;
        return f;
    }
    if (is_sym(t, PT_SY_LP)) {
        if (++s->depth > MAX_DEPTH) {
            pt__sql_error_at(s, t->off, PT_EPARSE, "syntax error at ", "query nested too deeply");
            return NULL;
        }
        advance(s);
        if (is_kw(cur(s), PT_KW_SELECT)) {
            int stage = 0;
            f->kind = PT_FI_SUB;
            f->sub = parse_select(s, true, &stage);
            if (!f->sub) return NULL;
            if (!accept_sym(s, PT_SY_RP)) return NULL; /* parse_select reported it */
            s->depth--;
            if (!parse_alias(s, from_alias_follows, &f->alias)) return NULL;
            return f;
        }
        pt__sql_from *inner = parse_from(s);
        if (!inner) return NULL;
        if (!expect_sym(s, PT_SY_RP, "JOIN or ')'")) return NULL;
        s->depth--;
        return inner;
    }
    return fail_expected(s, "a table name, a quoted file path or '('");
}

static pt__sql_from *parse_from(pt__sql *s) {
    pt__sql_from *left = parse_from_primary(s);
    while (left) {
        pt__sql_tok *t = cur(s);
        size_t pos = t->off;
        pt_join_type jt = PT_JOIN_INNER;
        if (is_sym(t, PT_SY_COMMA)) {
            pt__sql_error_at(s, pos, PT_EUNSUPPORTED, "error at ",
                             "comma-separated FROM lists (cross joins) are not supported; use "
                             "JOIN ... ON");
            return NULL;
        }
        if (is_kw(t, PT_KW_CROSS)) {
            pt__sql_error_at(s, pos, PT_EUNSUPPORTED, "error at ", "CROSS JOIN is not supported");
            return NULL;
        }
        if (accept_kw(s, PT_KW_INNER)) {
            jt = PT_JOIN_INNER;
        } else if (is_kw(t, PT_KW_LEFT) || is_kw(t, PT_KW_RIGHT) || is_kw(t, PT_KW_FULL)) {
            jt = t->kw == PT_KW_LEFT ? PT_JOIN_LEFT : t->kw == PT_KW_RIGHT ? PT_JOIN_RIGHT
                                                                           : PT_JOIN_FULL;
            advance(s);
            accept_kw(s, PT_KW_OUTER);
        } else if (!is_kw(t, PT_KW_JOIN)) {
            break;
        }
        if (!expect_kw(s, PT_KW_JOIN)) return NULL;
        pt__sql_from *j = pt__sql_alloc(&s->arena, sizeof *j);
        if (!j) return oom(s);
        j->kind = PT_FI_JOIN;
        j->pos = pos;
        j->jtype = jt;
        j->left = left;
        j->right = parse_from_primary(s);
        if (!j->right) return NULL;
        if (accept_kw(s, PT_KW_ON)) {
            j->on = parse_expr(s);
            if (!j->on) return NULL;
        } else if (accept_kw(s, PT_KW_USING)) {
            if (!expect_sym(s, PT_SY_LP, "'(' after USING")) return NULL;
            int cap = 0, pcap = 0, pn = 0;
            do {
                if (!is_name(cur(s))) return fail_expected(s, "a column name");
                if (!push_ptr(s, &j->using_cols, &j->nusing, &cap, sizeof *j->using_cols))
                    return NULL;
                j->using_cols[j->nusing++] = cur(s)->text;
                if (!push_ptr(s, &j->using_pos, &pn, &pcap, sizeof *j->using_pos)) return NULL;
                j->using_pos[pn++] = cur(s)->off;
                advance(s);
            } while (accept_sym(s, PT_SY_COMMA));
            if (!expect_sym(s, PT_SY_RP, "',' or ')'")) return NULL;
        } else {
            return fail_expected(s, "ON or USING");
        }
        left = j;
    }
    return left;
}

static bool parse_limit_value(pt__sql *s, int64_t *v) {
    if (cur(s)->kind != PT_TK_INT) {
        pt__sql_expected(s, "a non-negative integer");
        return false;
    }
    *v = cur(s)->ival;
    advance(s);
    return true;
}

/* Stages reached, for the "expected ..." message at the end of a query. */
enum { ST_FROM = 1, ST_WHERE, ST_GROUP, ST_HAVING, ST_ORDER, ST_LIMIT, ST_OFFSET };

static const char *end_expected(int stage, bool in_sub) {
    static const char *const top[] = {
        "",
        "WHERE, GROUP BY, HAVING, ORDER BY, LIMIT, JOIN or end of query",
        "GROUP BY, HAVING, ORDER BY, LIMIT or end of query",
        "HAVING, ORDER BY, LIMIT or end of query",
        "ORDER BY, LIMIT or end of query",
        "LIMIT or end of query",
        "OFFSET or end of query",
        "end of query",
    };
    static const char *const sub[] = {
        "",
        "WHERE, GROUP BY, HAVING, ORDER BY, LIMIT, JOIN or ')'",
        "GROUP BY, HAVING, ORDER BY, LIMIT or ')'",
        "HAVING, ORDER BY, LIMIT or ')'",
        "ORDER BY, LIMIT or ')'",
        "LIMIT or ')'",
        "OFFSET or ')'",
        "')'",
    };
    return in_sub ? sub[stage] : top[stage];
}

static pt__sql_query *parse_select(pt__sql *s, bool in_sub, int *stage) {
    pt__sql_query *q = pt__sql_alloc(&s->arena, sizeof *q);
    if (!q) return oom(s);
    q->pos = cur(s)->off;
    if (!expect_kw(s, PT_KW_SELECT)) return NULL;
    if (accept_kw(s, PT_KW_DISTINCT)) q->distinct = true;
    else accept_kw(s, PT_KW_ALL);
    int cap = 0;
    do {
        pt__sql_item it;
        memset(&it, 0, sizeof it);
        pt__sql_tok *t = cur(s);
        it.pos = t->off;
        if (is_sym(t, PT_SY_STAR)) {
            advance(s);
        } else if (is_name(t) && is_sym(peek(s, 1), PT_SY_DOT) && is_sym(peek(s, 2), PT_SY_STAR)) {
            it.star_qual = t->text;
            advance(s);
            advance(s);
            advance(s);
        } else {
            if (is_kw(t, PT_KW_FROM)) return fail_expected(s, "an expression or '*'");
            it.e = parse_expr(s);
            if (!it.e) return NULL;
            it.end = prev_end(s);
            if (!parse_alias(s, item_alias_follows, &it.alias)) return NULL;
        }
        if (!it.end) it.end = prev_end(s);
        if (!push_ptr(s, &q->items, &q->nitems, &cap, sizeof *q->items)) return NULL;
        q->items[q->nitems++] = it;
    } while (accept_sym(s, PT_SY_COMMA));
    if (!expect_kw(s, PT_KW_FROM)) return NULL;
    q->from = parse_from(s);
    if (!q->from) return NULL;
    *stage = ST_FROM;
    if (accept_kw(s, PT_KW_WHERE)) {
        if (!(q->where = parse_expr(s))) return NULL;
        *stage = ST_WHERE;
    }
    if (is_kw(cur(s), PT_KW_GROUP)) {
        advance(s);
        if (!expect_kw(s, PT_KW_BY)) return NULL;
        int gcap = 0;
        do {
            pt__sql_node *e = parse_expr(s);
            if (!e) return NULL;
            if (!push_ptr(s, &q->group, &q->ngroup, &gcap, sizeof *q->group)) return NULL;
            q->group[q->ngroup++] = e;
        } while (accept_sym(s, PT_SY_COMMA));
        *stage = ST_GROUP;
    }
    if (is_kw(cur(s), PT_KW_HAVING)) {
        q->having_pos = cur(s)->off;
        advance(s);
        if (!(q->having = parse_expr(s))) return NULL;
        *stage = ST_HAVING;
    }
    if (is_kw(cur(s), PT_KW_ORDER)) {
        advance(s);
        if (!expect_kw(s, PT_KW_BY)) return NULL;
        pt__sql_node **keys = NULL;
        bool *desc = NULL;
        if (!parse_order_list(s, &keys, &desc, &q->norder)) return NULL;
        q->order = pt__sql_alloc(&s->arena, (size_t)q->norder * sizeof *q->order);
        if (!q->order) return oom(s);
        for (int i = 0; i < q->norder; i++) {
            q->order[i].e = keys[i];
            q->order[i].desc = desc[i];
            q->order[i].pos = keys[i]->pos;
        }
        *stage = ST_ORDER;
    }
    if (accept_kw(s, PT_KW_LIMIT)) {
        q->has_limit = true;
        if (!parse_limit_value(s, &q->limit)) return NULL;
        *stage = ST_LIMIT;
    }
    if (accept_kw(s, PT_KW_OFFSET)) {
        if (!q->has_limit) {
            q->has_limit = true;
            q->limit = INT64_MAX;
        }
        if (!parse_limit_value(s, &q->offset)) return NULL;
        *stage = ST_OFFSET;
    }
    if (in_sub && !is_sym(cur(s), PT_SY_RP)) return fail_expected(s, end_expected(*stage, true));
    return q;
}

pt__sql_query *pt__sql_parse_query(pt__sql *s) {
    s->pos = 0;
    s->depth = 0;
    bool explain = accept_kw(s, PT_KW_EXPLAIN);
    if (!is_kw(cur(s), PT_KW_SELECT)) return fail_expected(s, explain ? "SELECT" : "SELECT or EXPLAIN");
    int stage = 0;
    pt__sql_query *q = parse_select(s, false, &stage);
    if (!q) return NULL;
    q->explain = explain;
    accept_sym(s, PT_SY_SEMI);
    if (cur(s)->kind != PT_TK_EOF) {
        return fail_expected(s, s->toks[s->pos - 1].kind == PT_TK_SYM &&
                                        s->toks[s->pos - 1].sym == PT_SY_SEMI
                                    ? "end of query after ';'"
                                    : end_expected(stage, false));
    }
    return q;
}

pt__sql_node *pt__sql_parse_expr_only(pt__sql *s) {
    s->pos = 0;
    s->depth = 0;
    if (cur(s)->kind == PT_TK_EOF) return fail_expected(s, "an expression");
    pt__sql_node *n = parse_expr(s);
    if (!n) return NULL;
    if (cur(s)->kind != PT_TK_EOF) return fail_expected(s, "an operator or end of expression");
    return n;
}
