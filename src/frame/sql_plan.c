/*
 * sql_plan.c - turns a parsed query into a lazy frame with the public
 * dataframe API: FROM (tables, files, subqueries, joins) -> WHERE -> GROUP
 * BY / aggregates -> HAVING -> ROW_NUMBER windows -> projection -> DISTINCT
 * -> ORDER BY -> LIMIT. Also the entry points pt_sql and pt_expr_parse.
 *
 * Names are resolved here, against a "scope": the columns visible after
 * FROM, each with its table alias and the frame column(s) that hold it. A
 * scope entry may name a frame column that differs from the SQL name (a
 * right join column renamed with "_right", the COALESCE of both keys of a
 * FULL JOIN ... USING), which is how qualified names survive joins.
 * After grouping, expressions are rewritten against the group-by output:
 * a subtree equal to a GROUP BY key becomes a reference to the key column,
 * an aggregate call a reference to its output column.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "frame/sql.h"

/* ------------------------------------------------------------------------ */
/* Scopes                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct ent {
    const char *qual;  /* table alias, or NULL */
    const char *name;  /* SQL name */
    const char **cols; /* frame columns; more than one = COALESCE of them */
    int ncols;
    bool hidden;       /* reachable only qualified (a key merged by USING) */
} ent;

typedef struct scope {
    ent *e;
    int n, cap;
} scope;

typedef struct planner {
    pt__sql *s;
    pt_ctx *ctx;
    pt_catalog *cat;
    int tmp;            /* counter for generated column names */
    bool has_unres;     /* a column name was passed through unresolved */
    size_t unres_pos;   /* ... at this offset (the frame layer will name it) */
} planner;

static pt_status nomem(planner *pl) {
    return pt_error_set(pl->s->err, PT_ENOMEM, "sql: out of memory while planning");
}

static pt_status sem(planner *pl, size_t off, pt_status code, const char *fmt, ...)
    PT_PRINTF(4, 5);
static pt_status sem(planner *pl, size_t off, pt_status code, const char *fmt, ...) {
    char msg[PT_ERROR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pt__sql_error_at(pl->s, off, code, "error at ", "%s", msg);
}

/* A frame operation failed: point at the unresolved column if one was
 * passed through (the frame's message lists the available columns), else
 * at the clause. */
static pt_status frame_fail(planner *pl, pt_status st, size_t off) {
    if (st == PT_OK) st = PT_EINTERNAL;
    if (pl->s->err && pl->s->err->code == PT_OK) pl->s->err->code = st;
    pt__sql_locate(pl->s, pl->has_unres ? pl->unres_pos : off);
    return st;
}

static void reset_unres(planner *pl) { pl->has_unres = false; }

static char *adup(planner *pl, const char *s) {
    return pt__sql_strndup(&pl->s->arena, s, strlen(s));
}

static char *gen_name(planner *pl, const char *prefix) {
    char buf[32];
    snprintf(buf, sizeof buf, "__%s%d", prefix, pl->tmp++);
    return adup(pl, buf);
}

static ent *scope_add(planner *pl, scope *sc) {
    if (sc->n == sc->cap) {
        int nc = sc->cap ? sc->cap * 2 : 16;
        ent *ne = pt__sql_alloc(&pl->s->arena, (size_t)nc * sizeof *ne);
        if (!ne) return NULL;
        if (sc->n) memcpy(ne, sc->e, (size_t)sc->n * sizeof *ne);
        sc->e = ne;
        sc->cap = nc;
    }
    ent *e = &sc->e[sc->n++];
    memset(e, 0, sizeof *e);
    return e;
}

/* One entry per column of a frame's schema, qualified by `qual`. */
static pt_status scope_from_frame(planner *pl, pt_frame *f, const char *qual, scope *sc) {
    const pt_schema *sch = pt_frame_schema(f);
    if (!sch) return pt_error_set(pl->s->err, PT_EINTERNAL, "sql: frame without a schema");
    memset(sc, 0, sizeof *sc);
    for (int i = 0; i < sch->nfields; i++) {
        ent *e = scope_add(pl, sc);
        if (!e) return nomem(pl);
        e->qual = qual;
        /* copied: the frame may be gone before the names are last used */
        e->name = adup(pl, sch->fields[i].name);
        if (!e->name) return nomem(pl);
        e->cols = pt__sql_alloc(&pl->s->arena, sizeof *e->cols);
        if (!e->cols) return nomem(pl);
        e->cols[0] = e->name;
        e->ncols = 1;
    }
    return PT_OK;
}

static void scope_list(const scope *sc, bool visible_only, const char *qual, char *buf,
                       size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    int k = 0;
    for (int i = 0; i < sc->n && n + 1 < cap; i++) {
        const ent *e = &sc->e[i];
        if (visible_only && e->hidden) continue;
        if (qual && (!e->qual || strcasecmp(e->qual, qual) != 0)) continue;
        int w = snprintf(buf + n, cap - n, "%s%s", k++ ? ", " : "", e->name);
        if (w < 0) break;
        n += (size_t)w;
    }
    if (k == 0) snprintf(buf, cap, "none");
}

enum { R_UNRESOLVED = -1, R_ERROR = -2 };

/* Finds the entry a column reference names. Returns its index,
 * R_UNRESOLVED for an unknown unqualified name (left to the frame layer),
 * or R_ERROR (message set only when `report`). */
static int resolve(planner *pl, const scope *sc, const pt__sql_node *n, bool report) {
    if (n->qual) {
        bool qual_seen = false;
        int found = -1, nfound = 0;
        for (int pass = 0; pass < 2 && nfound == 0; pass++) {
            if (pass == 1 && n->quoted) break;
            for (int i = 0; i < sc->n; i++) {
                const ent *e = &sc->e[i];
                if (!e->qual || strcasecmp(e->qual, n->qual) != 0) continue;
                qual_seen = true;
                if (pass == 0 ? strcmp(e->name, n->name) == 0 : strcasecmp(e->name, n->name) == 0) {
                    found = i;
                    nfound++;
                }
            }
        }
        if (nfound == 1) return found;
        if (!report) return R_ERROR;
        char list[512];
        if (!qual_seen) {
            size_t k = 0;
            list[0] = '\0';
            for (int i = 0; i < sc->n && k + 1 < sizeof list; i++) {
                const char *q = sc->e[i].qual;
                if (!q) continue;
                bool dup = false;
                for (int j = 0; j < i; j++)
                    if (sc->e[j].qual && strcasecmp(sc->e[j].qual, q) == 0) dup = true;
                if (dup) continue;
                int w = snprintf(list + k, sizeof list - k, "%s%s", k ? ", " : "", q);
                if (w < 0) break;
                k += (size_t)w;
            }
            sem(pl, n->pos, PT_EINVAL, "unknown table or alias '%s' in '%s.%s' (known: %s)",
                n->qual, n->qual, n->name, list[0] ? list : "none");
        } else if (nfound == 0) {
            scope_list(sc, false, n->qual, list, sizeof list);
            sem(pl, n->pos, PT_EINVAL, "column '%s' not found in '%s' (available: %s)", n->name,
                n->qual, list);
        } else {
            sem(pl, n->pos, PT_EINVAL, "column reference '%s.%s' is ambiguous", n->qual, n->name);
        }
        return R_ERROR;
    }
    int found = -1, nfound = 0;
    for (int pass = 0; pass < 2 && nfound == 0; pass++) {
        if (pass == 1 && n->quoted) break;
        for (int i = 0; i < sc->n; i++) {
            const ent *e = &sc->e[i];
            if (e->hidden) continue;
            if (pass == 0 ? strcmp(e->name, n->name) == 0 : strcasecmp(e->name, n->name) == 0) {
                if (nfound == 0) found = i;
                nfound++;
            }
        }
    }
    if (nfound == 1) return found;
    if (nfound == 0) return R_UNRESOLVED;
    if (!report) return R_ERROR;
    char where[256];
    size_t k = 0;
    where[0] = '\0';
    for (int i = 0; i < sc->n && k + 1 < sizeof where; i++) {
        const ent *e = &sc->e[i];
        if (e->hidden || strcasecmp(e->name, n->name) != 0) continue;
        int w = snprintf(where + k, sizeof where - k, "%s%s.%s", k ? ", " : "",
                         e->qual ? e->qual : "?", e->name);
        if (w < 0) break;
        k += (size_t)w;
    }
    sem(pl, n->pos, PT_EINVAL, "column reference '%s' is ambiguous (could be %s); qualify it",
        n->name, where);
    return R_ERROR;
}

static pt_expr *ent_expr(const ent *e) {
    if (e->ncols == 1) return pt_col(e->cols[0]);
    pt_expr *args[64];
    int n = e->ncols < 64 ? e->ncols : 64;
    for (int i = 0; i < n; i++) args[i] = pt_col(e->cols[i]);
    return pt_call("coalesce", n, args);
}

/* ------------------------------------------------------------------------ */
/* Translation of expressions                                               */
/* ------------------------------------------------------------------------ */

typedef struct tctx {
    planner *pl;
    const scope *sc;     /* NULL: loose mode (pt_expr_parse), names pass through */
    const char *clause;  /* for "... not allowed in <clause>" */
    bool grouped;        /* only keys and aggregates may be referenced */
    int nkeys;
    const pt__sql_node **keys;
    const char **key_names;
    int *key_ent;        /* scope entry of a plain-column key, else -1 */
    bool aggs_ok, in_agg;
    int naggs;
    const pt__sql_node **aggs;
    const char **agg_names;
    bool wins_ok;
    int nwins;
    const pt__sql_node **wins;
    const char **win_names;
} tctx;

static int resolve_q(const tctx *tc, const pt__sql_node *n) {
    return tc->sc ? resolve(tc->pl, tc->sc, n, false) : R_UNRESOLVED;
}

static bool str_eq(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

/* Structural equality, with column references compared by what they
 * resolve to (so that t.a matches a). */
static bool node_eq(const tctx *tc, const pt__sql_node *a, const pt__sql_node *b) {
    if (a == b) return true;
    if (!a || !b || a->kind != b->kind) return false;
    switch (a->kind) {
    case PT_SN_COL: {
        int ra = resolve_q(tc, a), rb = resolve_q(tc, b);
        if (ra >= 0 || rb >= 0) return ra == rb;
        return ra == R_UNRESOLVED && rb == R_UNRESOLVED && str_eq(a->qual, b->qual) &&
               strcmp(a->name, b->name) == 0;
    }
    case PT_SN_INT:
    case PT_SN_BOOL: return a->ival == b->ival;
    case PT_SN_FLOAT: return a->fval == b->fval;
    case PT_SN_STR: return strcmp(a->str, b->str) == 0;
    case PT_SN_NULL: return true;
    case PT_SN_BINARY:
    case PT_SN_UNARY:
        if (a->op != b->op) return false;
        break;
    case PT_SN_BETWEEN:
    case PT_SN_IN:
    case PT_SN_LIKE:
        if (a->neg != b->neg) return false;
        break;
    case PT_SN_CAST:
        if (a->type != b->type) return false;
        break;
    case PT_SN_CASE: break;
    case PT_SN_FUNC:
        if (strcmp(a->name, b->name) != 0 || a->agg != b->agg || a->neg != b->neg ||
            a->star != b->star)
            return false;
        break;
    case PT_SN_WINDOW:
        if (strcmp(a->name, b->name) != 0) return false;
        for (int i = 0; i < a->nargs2 && i < b->nargs2; i++)
            if (a->desc[i] != b->desc[i]) return false;
        break;
    }
    if (a->nargs != b->nargs || a->nargs2 != b->nargs2) return false;
    if (!node_eq(tc, a->a, b->a) || !node_eq(tc, a->b, b->b) || !node_eq(tc, a->c, b->c))
        return false;
    for (int i = 0; i < a->nargs; i++)
        if (!node_eq(tc, a->args[i], b->args[i])) return false;
    for (int i = 0; i < a->nargs2; i++)
        if (!node_eq(tc, a->args2[i], b->args2[i])) return false;
    return true;
}

static void free_exprs(pt_expr **e, int n) {
    for (int i = 0; i < n; i++) pt_expr_free(e[i]);
}

static pt_status tr(tctx *tc, const pt__sql_node *n, pt_expr **out);

static pt_status tr_list(tctx *tc, pt__sql_node *const *nodes, int n, pt_expr **out) {
    for (int i = 0; i < n; i++) {
        pt_status st = tr(tc, nodes[i], &out[i]);
        if (st != PT_OK) {
            free_exprs(out, i);
            return st;
        }
    }
    return PT_OK;
}

#define CHECK_NEW(pl, e)                              \
    do {                                              \
        if (!(e)) return nomem(pl);                   \
    } while (0)

/* Builds pt_agg for an aggregate call; its arguments are translated in
 * the (ungrouped) FROM scope. */
static pt_status tr_agg_call(tctx *tc, const pt__sql_node *n, pt_expr **out) {
    tctx sub = *tc;
    sub.grouped = false;
    sub.in_agg = true;
    sub.aggs_ok = false;
    sub.wins_ok = false;
    pt_expr *a = NULL, *b = NULL;
    if (n->nargs >= 1) PT_RETURN_NOT_OK(tr(&sub, n->args[0], &a));
    if (n->nargs >= 2) {
        pt_status st = tr(&sub, n->args[1], &b);
        if (st != PT_OK) {
            pt_expr_free(a);
            return st;
        }
    }
    *out = pt_agg((pt_agg_kind)n->agg, a, b);
    CHECK_NEW(tc->pl, *out);
    return PT_OK;
}

static pt_status tr(tctx *tc, const pt__sql_node *n, pt_expr **out) {
    planner *pl = tc->pl;
    *out = NULL;
    if (tc->grouped) {
        for (int i = 0; i < tc->nkeys; i++) {
            if (node_eq(tc, n, tc->keys[i])) {
                *out = pt_col(tc->key_names[i]);
                CHECK_NEW(pl, *out);
                return PT_OK;
            }
        }
    }
    pt_status st;
    switch (n->kind) {
    case PT_SN_COL: {
        if (!tc->sc) {
            if (n->qual)
                return sem(pl, n->pos, PT_EINVAL,
                           "qualified name '%s.%s' needs a FROM clause; quote it as \"%s.%s\" if "
                           "the column is called that",
                           n->qual, n->name, n->qual, n->name);
            *out = pt_col(n->name);
            break;
        }
        int r = resolve(pl, tc->sc, n, true);
        if (r == R_ERROR) return pl->s->err ? pl->s->err->code : PT_EINVAL;
        if (tc->grouped) {
            if (r >= 0) {
                for (int i = 0; i < tc->nkeys; i++) {
                    if (tc->key_ent[i] == r) {
                        *out = pt_col(tc->key_names[i]);
                        CHECK_NEW(pl, *out);
                        return PT_OK;
                    }
                }
                return sem(pl, n->pos, PT_EINVAL,
                           "column '%s' must appear in GROUP BY or be used in an aggregate "
                           "function",
                           n->name);
            }
            char list[512];
            scope_list(tc->sc, true, NULL, list, sizeof list);
            return sem(pl, n->pos, PT_EINVAL, "unknown column '%s' (available: %s)", n->name,
                       list);
        }
        if (r >= 0) {
            *out = ent_expr(&tc->sc->e[r]);
        } else {
            /* Not in the scope: pass it through so that the frame layer
             * reports it with the list of available columns. */
            if (!pl->has_unres) {
                pl->has_unres = true;
                pl->unres_pos = n->pos;
            }
            *out = pt_col(n->name);
        }
        break;
    }
    case PT_SN_INT: *out = pt_lit_i64(n->ival); break;
    case PT_SN_FLOAT: *out = pt_lit_f64(n->fval); break;
    case PT_SN_STR: *out = pt_lit_str(n->str); break;
    case PT_SN_BOOL: *out = pt_lit_bool(n->ival != 0); break;
    case PT_SN_NULL: *out = pt_lit_null(); break;
    case PT_SN_BINARY: {
        pt_expr *ab[2];
        pt__sql_node *const kids[2] = {n->a, n->b};
        PT_RETURN_NOT_OK(tr_list(tc, kids, 2, ab));
        *out = pt_binary(n->op, ab[0], ab[1]);
        break;
    }
    case PT_SN_UNARY: {
        pt_expr *a;
        PT_RETURN_NOT_OK(tr(tc, n->a, &a));
        *out = pt_unary(n->op, a);
        break;
    }
    case PT_SN_BETWEEN: {
        pt_expr *v[3];
        pt__sql_node *const kids[3] = {n->a, n->b, n->c};
        PT_RETURN_NOT_OK(tr_list(tc, kids, 3, v));
        pt_expr *x2 = pt_expr_ref(v[0]);
        pt_expr *e = pt_binary(PT_OP_AND, pt_binary(PT_OP_GE, v[0], v[1]),
                               pt_binary(PT_OP_LE, x2, v[2]));
        *out = n->neg ? pt_unary(PT_OP_NOT, e) : e;
        break;
    }
    case PT_SN_IN: {
        pt_expr *x;
        PT_RETURN_NOT_OK(tr(tc, n->a, &x));
        pt_expr *acc = NULL;
        for (int i = 0; i < n->nargs; i++) {
            pt_expr *v;
            st = tr(tc, n->args[i], &v);
            if (st != PT_OK) {
                pt_expr_free(acc);
                pt_expr_free(x);
                return st;
            }
            pt_expr *cmp = pt_binary(PT_OP_EQ, pt_expr_ref(x), v);
            acc = acc ? pt_binary(PT_OP_OR, acc, cmp) : cmp;
            if (!acc) {
                pt_expr_free(x);
                return nomem(pl);
            }
        }
        pt_expr_free(x);
        *out = n->neg ? pt_unary(PT_OP_NOT, acc) : acc;
        break;
    }
    case PT_SN_LIKE: {
        pt_expr *v[2];
        pt__sql_node *const kids[2] = {n->a, n->b};
        PT_RETURN_NOT_OK(tr_list(tc, kids, 2, v));
        pt_expr *e = pt_call("like", 2, v);
        *out = n->neg ? pt_unary(PT_OP_NOT, e) : e;
        break;
    }
    case PT_SN_CAST: {
        pt_expr *a;
        PT_RETURN_NOT_OK(tr(tc, n->a, &a));
        *out = pt_cast(a, n->type);
        break;
    }
    case PT_SN_CASE: {
        int k = n->nargs;
        pt_expr **conds = pt__sql_alloc(&pl->s->arena, (size_t)k * sizeof *conds);
        pt_expr **vals = pt__sql_alloc(&pl->s->arena, (size_t)k * sizeof *vals);
        if (!conds || !vals) return nomem(pl);
        pt_expr *operand = NULL, *otherwise = NULL;
        if (n->a) PT_RETURN_NOT_OK(tr(tc, n->a, &operand));
        st = tr_list(tc, n->args, k, conds); /* frees its own partial results */
        if (st != PT_OK) {
            pt_expr_free(operand);
            return st;
        }
        st = tr_list(tc, n->args2, k, vals);
        if (st != PT_OK) {
            free_exprs(conds, k);
            pt_expr_free(operand);
            return st;
        }
        if (n->b && (st = tr(tc, n->b, &otherwise)) != PT_OK) {
            free_exprs(conds, k);
            free_exprs(vals, k);
            pt_expr_free(operand);
            return st;
        }
        if (operand) {
            for (int i = 0; i < k; i++) conds[i] = pt_binary(PT_OP_EQ, pt_expr_ref(operand), conds[i]);
            pt_expr_free(operand);
        }
        *out = pt_case(k, conds, vals, otherwise);
        break;
    }
    case PT_SN_FUNC: {
        if (n->agg >= 0) {
            if (tc->in_agg)
                return sem(pl, n->pos, PT_EINVAL, "aggregate function calls cannot be nested");
            if (!tc->sc) return tr_agg_call(tc, n, out); /* loose: a bare pt_agg */
            if (!tc->aggs_ok)
                return sem(pl, n->pos, PT_EINVAL, "aggregate functions are not allowed in %s",
                           tc->clause);
            for (int i = 0; i < tc->naggs; i++) {
                if (node_eq(tc, n, tc->aggs[i])) {
                    *out = pt_col(tc->agg_names[i]);
                    CHECK_NEW(pl, *out);
                    return PT_OK;
                }
            }
            return sem(pl, n->pos, PT_EINTERNAL, "aggregate %s() was not planned", n->name);
        }
        pt_expr *argv[64];
        if (n->nargs > 64)
            return sem(pl, n->pos, PT_EUNSUPPORTED, "too many arguments to %s()", n->name);
        PT_RETURN_NOT_OK(tr_list(tc, n->args, n->nargs, argv));
        *out = pt_call(n->name, n->nargs, argv);
        break;
    }
    case PT_SN_WINDOW: {
        if (!tc->wins_ok)
            return sem(pl, n->pos, PT_EINVAL, "window functions are not allowed in %s",
                       tc->clause);
        for (int i = 0; i < tc->nwins; i++) {
            if (node_eq(tc, n, tc->wins[i])) {
                *out = pt_col(tc->win_names[i]);
                CHECK_NEW(pl, *out);
                return PT_OK;
            }
        }
        return sem(pl, n->pos, PT_EINTERNAL, "window function was not planned");
    }
    }
    CHECK_NEW(pl, *out);
    return PT_OK;
}

/* The frame column an expression translates to when it is exactly a column
 * reference (lets the projection skip aliases and identity selects). */
static const char *plain_name(const tctx *tc, const pt__sql_node *n) {
    if (tc->grouped) {
        for (int i = 0; i < tc->nkeys; i++)
            if (node_eq(tc, n, tc->keys[i])) return tc->key_names[i];
    }
    if (n->kind == PT_SN_FUNC && n->agg >= 0 && tc->aggs_ok) {
        for (int i = 0; i < tc->naggs; i++)
            if (node_eq(tc, n, tc->aggs[i])) return tc->agg_names[i];
    }
    if (n->kind == PT_SN_WINDOW && tc->wins_ok) {
        for (int i = 0; i < tc->nwins; i++)
            if (node_eq(tc, n, tc->wins[i])) return tc->win_names[i];
    }
    if (n->kind == PT_SN_COL && !tc->grouped && tc->sc) {
        int r = resolve_q(tc, n);
        if (r >= 0) return tc->sc->e[r].ncols == 1 ? tc->sc->e[r].cols[0] : NULL;
        if (r == R_UNRESOLVED) return n->name;
    }
    return NULL;
}

/* Walks a tree collecting distinct aggregate calls (not descending into
 * them) or distinct window calls. */
typedef struct collect {
    const pt__sql_node **v;
    int n, cap;
} collect;

static pt_status collect_add(tctx *tc, collect *c, const pt__sql_node *n) {
    for (int i = 0; i < c->n; i++)
        if (node_eq(tc, c->v[i], n)) return PT_OK;
    if (c->n == c->cap) {
        int nc = c->cap ? c->cap * 2 : 8;
        const pt__sql_node **nv = pt__sql_alloc(&tc->pl->s->arena, (size_t)nc * sizeof *nv);
        if (!nv) return nomem(tc->pl);
        if (c->n) memcpy(nv, c->v, (size_t)c->n * sizeof *nv);
        c->v = nv;
        c->cap = nc;
    }
    c->v[c->n++] = n;
    return PT_OK;
}

static pt_status collect_walk(tctx *tc, collect *c, const pt__sql_node *n, bool windows) {
    if (!n) return PT_OK;
    if (n->kind == PT_SN_FUNC && n->agg >= 0) return windows ? PT_OK : collect_add(tc, c, n);
    if (n->kind == PT_SN_WINDOW && windows) return collect_add(tc, c, n);
    PT_RETURN_NOT_OK(collect_walk(tc, c, n->a, windows));
    PT_RETURN_NOT_OK(collect_walk(tc, c, n->b, windows));
    PT_RETURN_NOT_OK(collect_walk(tc, c, n->c, windows));
    for (int i = 0; i < n->nargs; i++) PT_RETURN_NOT_OK(collect_walk(tc, c, n->args[i], windows));
    for (int i = 0; i < n->nargs2; i++)
        PT_RETURN_NOT_OK(collect_walk(tc, c, n->args2[i], windows));
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* FROM                                                                     */
/* ------------------------------------------------------------------------ */

static pt_status plan_query(planner *pl, const pt__sql_query *q, pt_frame **out);
static pt_status plan_from(planner *pl, const pt__sql_from *fi, pt_frame **out, scope *sc);

/* Which side of a join the column references of a tree belong to: bit 1
 * left, bit 2 right. An unknown or ambiguous name is an error here: ON
 * conditions are split by side before any frame sees them. */
static pt_status join_sides(planner *pl, const scope *sl, const scope *sr,
                            const pt__sql_node *n, int *mask) {
    if (!n) return PT_OK;
    if (n->kind == PT_SN_COL) {
        int rl = resolve(pl, sl, n, false), rr = resolve(pl, sr, n, false);
        if (rl >= 0 && rr >= 0)
            return sem(pl, n->pos, PT_EINVAL,
                       "column reference '%s' is ambiguous (both sides of the join have it); "
                       "qualify it",
                       n->name);
        if (rl >= 0) {
            *mask |= 1;
            return PT_OK;
        }
        if (rr >= 0) {
            *mask |= 2;
            return PT_OK;
        }
        /* Report the more precise message of a failed qualified lookup. */
        if (n->qual) {
            bool in_left = false;
            for (int i = 0; i < sl->n; i++)
                if (sl->e[i].qual && strcasecmp(sl->e[i].qual, n->qual) == 0) in_left = true;
            resolve(pl, in_left ? sl : sr, n, true);
            bool in_right = false;
            for (int i = 0; i < sr->n; i++)
                if (sr->e[i].qual && strcasecmp(sr->e[i].qual, n->qual) == 0) in_right = true;
            if (!in_left && !in_right) {
                scope both = {0};
                for (int i = 0; i < sl->n; i++) {
                    ent *e = scope_add(pl, &both);
                    if (!e) return nomem(pl);
                    *e = sl->e[i];
                }
                for (int i = 0; i < sr->n; i++) {
                    ent *e = scope_add(pl, &both);
                    if (!e) return nomem(pl);
                    *e = sr->e[i];
                }
                resolve(pl, &both, n, true);
            }
            return pl->s->err ? pl->s->err->code : PT_EINVAL;
        }
        char l[300], r[300];
        scope_list(sl, true, NULL, l, sizeof l);
        scope_list(sr, true, NULL, r, sizeof r);
        return sem(pl, n->pos, PT_EINVAL,
                   "column '%s' not found on either side of the join (left: %s; right: %s)",
                   n->name, l, r);
    }
    if (n->kind == PT_SN_FUNC && n->agg >= 0)
        return sem(pl, n->pos, PT_EINVAL, "aggregate functions are not allowed in ON");
    if (n->kind == PT_SN_WINDOW)
        return sem(pl, n->pos, PT_EINVAL, "window functions are not allowed in ON");
    PT_RETURN_NOT_OK(join_sides(pl, sl, sr, n->a, mask));
    PT_RETURN_NOT_OK(join_sides(pl, sl, sr, n->b, mask));
    PT_RETURN_NOT_OK(join_sides(pl, sl, sr, n->c, mask));
    for (int i = 0; i < n->nargs; i++) PT_RETURN_NOT_OK(join_sides(pl, sl, sr, n->args[i], mask));
    for (int i = 0; i < n->nargs2; i++)
        PT_RETURN_NOT_OK(join_sides(pl, sl, sr, n->args2[i], mask));
    return PT_OK;
}

static pt_status split_and(planner *pl, const pt__sql_node *n, const pt__sql_node ***v, int *k,
                           int *cap) {
    if (n->kind == PT_SN_BINARY && n->op == PT_OP_AND) {
        PT_RETURN_NOT_OK(split_and(pl, n->a, v, k, cap));
        return split_and(pl, n->b, v, k, cap);
    }
    if (*k == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        const pt__sql_node **nv = pt__sql_alloc(&pl->s->arena, (size_t)nc * sizeof *nv);
        if (!nv) return nomem(pl);
        if (*k) memcpy(nv, *v, (size_t)*k * sizeof *nv);
        *v = nv;
        *cap = nc;
    }
    (*v)[(*k)++] = n;
    return PT_OK;
}

/* The name of a frame column holding a join key: the column itself when the
 * key is one, else a new column computed on that side. */
static pt_status key_column(planner *pl, pt_frame **f, const scope *sc, const pt__sql_node *n,
                            int ent_idx, size_t pos, const char **name) {
    const ent *e = NULL;
    if (ent_idx >= 0) {
        e = &sc->e[ent_idx];
    } else if (n->kind == PT_SN_COL) {
        int r = resolve(pl, sc, n, true);
        if (r < 0) return pl->s->err ? pl->s->err->code : PT_EINVAL;
        e = &sc->e[r];
    }
    if (e && e->ncols == 1) {
        *name = e->cols[0];
        return PT_OK;
    }
    pt_expr *x = NULL;
    if (e) {
        x = ent_expr(e);
        CHECK_NEW(pl, x);
    } else {
        tctx tc;
        memset(&tc, 0, sizeof tc);
        tc.pl = pl;
        tc.sc = sc;
        tc.clause = "ON";
        reset_unres(pl);
        PT_RETURN_NOT_OK(tr(&tc, n, &x));
    }
    char *nm = gen_name(pl, "j");
    if (!nm) {
        pt_expr_free(x);
        return nomem(pl);
    }
    pt_frame *nf = NULL;
    pt_status st = pt_frame_with_column(*f, nm, x, &nf, pl->s->err);
    if (st != PT_OK) return frame_fail(pl, st, pos);
    pt_frame_free(*f);
    *f = nf;
    *name = nm;
    return PT_OK;
}

static int find_visible(const scope *sc, const char *name, int *count) {
    int found = -1;
    *count = 0;
    for (int pass = 0; pass < 2 && *count == 0; pass++) {
        for (int i = 0; i < sc->n; i++) {
            if (sc->e[i].hidden) continue;
            if (pass == 0 ? strcmp(sc->e[i].name, name) == 0
                          : strcasecmp(sc->e[i].name, name) == 0) {
                if (*count == 0) found = i;
                (*count)++;
            }
        }
    }
    return found;
}

static pt_status plan_join(planner *pl, const pt__sql_from *fi, pt_frame **out, scope *sc) {
    pt_frame *fl = NULL, *fr = NULL, *fj = NULL;
    scope sl, sr;
    pt_status st = plan_from(pl, fi->left, &fl, &sl);
    if (st != PT_OK) return st;
    st = plan_from(pl, fi->right, &fr, &sr);
    if (st != PT_OK) goto done;
    for (int i = 0; i < sr.n && st == PT_OK; i++) {
        if (!sr.e[i].qual) continue;
        for (int j = 0; j < sl.n; j++) {
            if (sl.e[j].qual && strcasecmp(sl.e[j].qual, sr.e[i].qual) == 0) {
                st = sem(pl, fi->right->pos, PT_EINVAL,
                         "table name '%s' is used twice in FROM; give one an alias",
                         sr.e[i].qual);
                break;
            }
        }
    }
    if (st != PT_OK) goto done;

    /* Equality pairs (left side, right side) and the rest of ON. */
    int npairs = 0, cap = 0;
    const pt__sql_node **conj = NULL;
    int nconj = 0, ccap = 0;
    int *lent = NULL, *rent = NULL;
    const pt__sql_node **lnode = NULL, **rnode = NULL;
    const pt__sql_node **resid = NULL;
    int nresid = 0;
    if (fi->nusing) {
        cap = fi->nusing;
    } else {
        st = split_and(pl, fi->on, &conj, &nconj, &ccap);
        if (st != PT_OK) goto done;
        cap = nconj;
    }
    lent = pt__sql_alloc(&pl->s->arena, (size_t)cap * sizeof *lent + 1);
    rent = pt__sql_alloc(&pl->s->arena, (size_t)cap * sizeof *rent + 1);
    lnode = pt__sql_alloc(&pl->s->arena, (size_t)cap * sizeof *lnode + 1);
    rnode = pt__sql_alloc(&pl->s->arena, (size_t)cap * sizeof *rnode + 1);
    resid = pt__sql_alloc(&pl->s->arena, (size_t)cap * sizeof *resid + 1);
    if (!lent || !rent || !lnode || !rnode || !resid) {
        st = nomem(pl);
        goto done;
    }
    if (fi->nusing) {
        for (int i = 0; i < fi->nusing; i++) {
            int cl, cr;
            int li = find_visible(&sl, fi->using_cols[i], &cl);
            int ri = find_visible(&sr, fi->using_cols[i], &cr);
            char list[512];
            if (cl != 1 || cr != 1) {
                const scope *bad = cl != 1 ? &sl : &sr;
                scope_list(bad, true, NULL, list, sizeof list);
                st = sem(pl, fi->using_pos[i], PT_EINVAL,
                         (cl > 1 || (cl == 1 && cr > 1))
                             ? "column '%s' in USING is ambiguous on the %s side of the join "
                               "(columns: %s)"
                             : "column '%s' in USING is not on the %s side of the join "
                               "(columns: %s)",
                         fi->using_cols[i], cl != 1 ? "left" : "right", list);
                goto done;
            }
            lent[npairs] = li;
            rent[npairs] = ri;
            lnode[npairs] = rnode[npairs] = NULL;
            npairs++;
        }
    } else {
        for (int i = 0; i < nconj; i++) {
            const pt__sql_node *c = conj[i];
            if (c->kind == PT_SN_BINARY && c->op == PT_OP_EQ) {
                int ma = 0, mb = 0;
                st = join_sides(pl, &sl, &sr, c->a, &ma);
                if (st == PT_OK) st = join_sides(pl, &sl, &sr, c->b, &mb);
                if (st != PT_OK) goto done;
                if ((ma == 1 && mb == 2) || (ma == 2 && mb == 1)) {
                    lnode[npairs] = ma == 1 ? c->a : c->b;
                    rnode[npairs] = ma == 1 ? c->b : c->a;
                    lent[npairs] = rent[npairs] = -1;
                    npairs++;
                    continue;
                }
            } else {
                int m = 0;
                st = join_sides(pl, &sl, &sr, c, &m);
                if (st != PT_OK) goto done;
            }
            if (fi->jtype != PT_JOIN_INNER) {
                st = sem(pl, c->pos, PT_EUNSUPPORTED,
                         "only equalities between the two sides are supported in the ON "
                         "condition of an outer join");
                goto done;
            }
            resid[nresid++] = c;
        }
        if (npairs == 0) {
            st = sem(pl, fi->on->pos, PT_EUNSUPPORTED,
                     "JOIN needs at least one equality between a column of each side in ON");
            goto done;
        }
    }

    const char **lk = pt__sql_alloc(&pl->s->arena, (size_t)npairs * sizeof *lk);
    const char **rk = pt__sql_alloc(&pl->s->arena, (size_t)npairs * sizeof *rk);
    if (!lk || !rk) {
        st = nomem(pl);
        goto done;
    }
    for (int i = 0; i < npairs; i++) {
        size_t pos = fi->nusing ? fi->using_pos[i] : lnode[i]->pos;
        st = key_column(pl, &fl, &sl, lnode[i], lent[i], pos, &lk[i]);
        if (st == PT_OK)
            st = key_column(pl, &fr, &sr, rnode[i], rent[i], fi->nusing ? pos : rnode[i]->pos,
                            &rk[i]);
        if (st != PT_OK) goto done;
    }
    reset_unres(pl);
    st = pt_frame_join(fl, fr, fi->jtype, npairs, lk, rk, &fj, pl->s->err);
    if (st != PT_OK) {
        st = frame_fail(pl, st, fi->pos);
        goto done;
    }

    /* Output columns are the left ones then the right ones, by position;
     * map each side's frame names to the joined frame's names. */
    const pt_schema *ls = pt_frame_schema(fl), *rs = pt_frame_schema(fr), *js = pt_frame_schema(fj);
    if (!ls || !rs || !js || js->nfields != ls->nfields + rs->nfields) {
        st = pt_error_set(pl->s->err, PT_EINTERNAL,
                          "sql: join output has %d columns, expected %d + %d",
                          js ? js->nfields : -1, ls ? ls->nfields : -1, rs ? rs->nfields : -1);
        goto done;
    }
    memset(sc, 0, sizeof *sc);
    for (int side = 0; side < 2; side++) {
        const scope *ss = side ? &sr : &sl;
        const pt_schema *fs = side ? rs : ls;
        int base = side ? ls->nfields : 0;
        for (int i = 0; i < ss->n; i++) {
            ent *e = scope_add(pl, sc);
            if (!e) {
                st = nomem(pl);
                goto done;
            }
            *e = ss->e[i];
            e->cols = pt__sql_alloc(&pl->s->arena, (size_t)e->ncols * sizeof *e->cols);
            if (!e->cols) {
                st = nomem(pl);
                goto done;
            }
            for (int k = 0; k < e->ncols; k++) {
                int idx = pt_schema_find(fs, ss->e[i].cols[k]);
                if (idx < 0) {
                    st = pt_error_set(pl->s->err, PT_EINTERNAL,
                                      "sql: column '%s' missing from a join input",
                                      ss->e[i].cols[k]);
                    goto done;
                }
                e->cols[k] = adup(pl, js->fields[base + idx].name);
                if (!e->cols[k]) {
                    st = nomem(pl);
                    goto done;
                }
            }
        }
    }
    if (fi->nusing) {
        /* USING merges each key pair into one column, listed first. */
        scope merged = {0};
        for (int i = 0; i < npairs; i++) {
            ent *L = &sc->e[lent[i]], *R = &sc->e[sl.n + rent[i]];
            ent *m = scope_add(pl, &merged);
            if (!m) {
                st = nomem(pl);
                goto done;
            }
            m->name = L->name; /* the spelling of the left input */
            if (fi->jtype == PT_JOIN_FULL) {
                m->ncols = L->ncols + R->ncols;
                m->cols = pt__sql_alloc(&pl->s->arena, (size_t)m->ncols * sizeof *m->cols);
                if (!m->cols) {
                    st = nomem(pl);
                    goto done;
                }
                memcpy(m->cols, L->cols, (size_t)L->ncols * sizeof *m->cols);
                memcpy(m->cols + L->ncols, R->cols, (size_t)R->ncols * sizeof *m->cols);
            } else {
                const ent *src = fi->jtype == PT_JOIN_RIGHT ? R : L;
                m->cols = src->cols;
                m->ncols = src->ncols;
            }
            L->hidden = R->hidden = true;
        }
        for (int i = 0; i < sc->n; i++) {
            ent *e = scope_add(pl, &merged);
            if (!e) {
                st = nomem(pl);
                goto done;
            }
            *e = sc->e[i];
        }
        *sc = merged;
    }
    if (nresid) {
        tctx tc;
        memset(&tc, 0, sizeof tc);
        tc.pl = pl;
        tc.sc = sc;
        tc.clause = "ON";
        reset_unres(pl);
        pt_expr *pred = NULL;
        for (int i = 0; i < nresid; i++) {
            pt_expr *x;
            st = tr(&tc, resid[i], &x);
            if (st != PT_OK) {
                pt_expr_free(pred);
                goto done;
            }
            pred = pred ? pt_binary(PT_OP_AND, pred, x) : x;
        }
        pt_frame *ff = NULL;
        st = pt_frame_filter(fj, pred, &ff, pl->s->err);
        if (st != PT_OK) {
            st = frame_fail(pl, st, resid[0]->pos);
            goto done;
        }
        pt_frame_free(fj);
        fj = ff;
    }
    *out = fj;
    fj = NULL;
done:
    pt_frame_free(fl);
    pt_frame_free(fr);
    pt_frame_free(fj);
    return st;
}

static pt_status plan_from(planner *pl, const pt__sql_from *fi, pt_frame **out, scope *sc) {
    *out = NULL;
    pt_status st;
    switch (fi->kind) {
    case PT_FI_TABLE: {
        pt_frame *f = pt__catalog_find(pl->cat, fi->name, fi->quoted);
        if (!f) {
            char names[512];
            pt__catalog_names(pl->cat, names, sizeof names);
            return sem(pl, fi->pos, PT_EINVAL,
                       "unknown table '%s' (registered tables: %s; quote a file path as "
                       "'file.csv')",
                       fi->name, names);
        }
        *out = pt_frame_ref(f);
        st = scope_from_frame(pl, *out, fi->alias ? fi->alias : fi->name, sc);
        break;
    }
    case PT_FI_FILE: {
        if (!pl->ctx)
            return sem(pl, fi->pos, PT_EINVAL, "reading '%s' needs a context (ctx is NULL)",
                       fi->name);
        st = pt_frame_read_csv(pl->ctx, fi->name, NULL, out, pl->s->err);
        if (st != PT_OK) {
            *out = NULL;
            reset_unres(pl);
            return frame_fail(pl, st, fi->pos);
        }
        st = scope_from_frame(pl, *out, fi->alias, sc);
        break;
    }
    case PT_FI_SUB:
        PT_RETURN_NOT_OK(plan_query(pl, fi->sub, out));
        st = scope_from_frame(pl, *out, fi->alias, sc);
        break;
    case PT_FI_JOIN: return plan_join(pl, fi, out, sc);
    default: return pt_error_set(pl->s->err, PT_EINTERNAL, "sql: bad FROM item");
    }
    if (st != PT_OK) {
        pt_frame_free(*out);
        *out = NULL;
    }
    return st;
}

/* ------------------------------------------------------------------------ */
/* SELECT                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct outcol {
    const char *name;
    const pt__sql_node *e; /* NULL: a scope entry from * */
    int ent;
    size_t pos;
} outcol;

/* "sum( v1 )" -> "sum( v1 )" with whitespace runs folded to one space:
 * the query text of an unnamed select item names its column. */
static char *item_text(planner *pl, size_t pos, size_t end) {
    const char *src = pl->s->src;
    char *d = pt__sql_alloc(&pl->s->arena, end - pos + 1);
    if (!d) return NULL;
    size_t n = 0;
    bool space = false;
    char quote = 0;
    for (size_t i = pos; i < end; i++) {
        char c = src[i];
        if (quote) {
            if (c == quote) quote = 0;
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (isspace((unsigned char)c)) {
            space = true;
            continue;
        }
        if (space && n > 0) d[n++] = ' ';
        space = false;
        d[n++] = c;
    }
    d[n] = '\0';
    return d;
}

/* Makes output names unique: the second "x" becomes "x_1". */
static pt_status dedupe_names(planner *pl, outcol *o, int n) {
    for (int i = 1; i < n; i++) {
        bool dup = false;
        for (int j = 0; j < i; j++)
            if (strcmp(o[j].name, o[i].name) == 0) dup = true;
        if (!dup) continue;
        size_t len = strlen(o[i].name) + 24;
        char *nm = pt__sql_alloc(&pl->s->arena, len);
        if (!nm) return nomem(pl);
        for (int k = 1;; k++) {
            snprintf(nm, len, "%s_%d", o[i].name, k);
            bool taken = false;
            for (int j = 0; j < n; j++)
                if (j != i && strcmp(o[j].name, nm) == 0) taken = true;
            if (!taken) break;
        }
        o[i].name = nm;
    }
    return PT_OK;
}

/* Replaces *f by op's result, or reports the failure at `pos`. */
#define APPLY(pl, f, pos, call)                    \
    do {                                           \
        pt_frame *ap__next = NULL;                 \
        pt_status ap__st = (call);                 \
        if (ap__st != PT_OK) {                     \
            st = frame_fail(pl, ap__st, pos);      \
            goto done;                             \
        }                                          \
        pt_frame_free(*(f));                       \
        *(f) = ap__next;                           \
    } while (0)
#define NEXT (&ap__next)

static bool is_reserved_name(const char *s) { return s[0] == '_' && s[1] == '_'; }

static pt_status tr_out(tctx *tc, const outcol *o, pt_expr **x) {
    if (o->e) return tr(tc, o->e, x);
    const ent *e = &tc->sc->e[o->ent];
    if (tc->grouped) {
        for (int i = 0; i < tc->nkeys; i++) {
            if (tc->key_ent[i] == o->ent) {
                *x = pt_col(tc->key_names[i]);
                CHECK_NEW(tc->pl, *x);
                return PT_OK;
            }
        }
        return sem(tc->pl, o->pos, PT_EINVAL,
                   "column '%s' (from *) must appear in GROUP BY or be used in an aggregate "
                   "function",
                   e->name);
    }
    *x = ent_expr(e);
    CHECK_NEW(tc->pl, *x);
    return PT_OK;
}

static const char *out_plain(const tctx *tc, const outcol *o) {
    if (o->e) return plain_name(tc, o->e);
    const ent *e = &tc->sc->e[o->ent];
    if (tc->grouped) {
        for (int i = 0; i < tc->nkeys; i++)
            if (tc->key_ent[i] == o->ent) return tc->key_names[i];
        return NULL;
    }
    return e->ncols == 1 ? e->cols[0] : NULL;
}

static pt_status plan_query(planner *pl, const pt__sql_query *q, pt_frame **out) {
    pt_frame *f = NULL;
    scope sc;
    pt_status st = plan_from(pl, q->from, &f, &sc);
    if (st != PT_OK) return st;
    pt__sql_arena *ar = &pl->s->arena;

    tctx tc;
    memset(&tc, 0, sizeof tc);
    tc.pl = pl;
    tc.sc = &sc;

    /* WHERE */
    if (q->where) {
        tc.clause = "WHERE";
        reset_unres(pl);
        pt_expr *pred;
        st = tr(&tc, q->where, &pred);
        if (st != PT_OK) goto done;
        APPLY(pl, &f, q->where->pos, pt_frame_filter(f, pred, NEXT, pl->s->err));
    }

    /* GROUP BY and aggregates */
    collect aggs = {0};
    for (int i = 0; i < q->nitems; i++)
        if ((st = collect_walk(&tc, &aggs, q->items[i].e, false)) != PT_OK) goto done;
    if ((st = collect_walk(&tc, &aggs, q->having, false)) != PT_OK) goto done;
    for (int i = 0; i < q->norder; i++)
        if ((st = collect_walk(&tc, &aggs, q->order[i].e, false)) != PT_OK) goto done;
    bool grouped = q->ngroup > 0 || aggs.n > 0 || q->having;
    if (grouped) {
        int cap = q->ngroup + 1;
        tc.keys = pt__sql_alloc(ar, (size_t)cap * sizeof *tc.keys);
        tc.key_names = pt__sql_alloc(ar, (size_t)cap * sizeof *tc.key_names);
        tc.key_ent = pt__sql_alloc(ar, (size_t)cap * sizeof *tc.key_ent);
        pt_expr **kx = pt__sql_alloc(ar, (size_t)cap * sizeof *kx);
        pt_expr **ax = pt__sql_alloc(ar, (size_t)(aggs.n + 1) * sizeof *ax);
        tc.agg_names = pt__sql_alloc(ar, (size_t)(aggs.n + 1) * sizeof *tc.agg_names);
        if (!tc.keys || !tc.key_names || !tc.key_ent || !kx || !ax || !tc.agg_names) {
            st = nomem(pl);
            goto done;
        }
        tc.clause = "GROUP BY";
        reset_unres(pl);
        int nk = 0;
        for (int i = 0; i < q->ngroup; i++) {
            const pt__sql_node *g = q->group[i];
            /* GROUP BY 2 and GROUP BY alias refer to select items. */
            if (g->kind == PT_SN_INT) {
                if (g->ival < 1 || g->ival > q->nitems || !q->items[g->ival - 1].e) {
                    st = sem(pl, g->pos, PT_EINVAL,
                             "GROUP BY position %lld is not an expression of the select list "
                             "(1..%d)",
                             (long long)g->ival, q->nitems);
                    break;
                }
                g = q->items[g->ival - 1].e;
            } else if (g->kind == PT_SN_COL && !g->qual &&
                       resolve(pl, &sc, g, false) == R_UNRESOLVED) {
                for (int k = 0; k < q->nitems; k++) {
                    if (q->items[k].alias && q->items[k].e &&
                        strcmp(q->items[k].alias, g->name) == 0) {
                        g = q->items[k].e;
                        break;
                    }
                }
            }
            bool dup = false;
            for (int k = 0; k < nk; k++)
                if (node_eq(&tc, tc.keys[k], g)) dup = true;
            if (dup) continue;
            pt_expr *x;
            st = tr(&tc, g, &x);
            if (st != PT_OK) break;
            const char *plain = plain_name(&tc, g);
            tc.keys[nk] = g;
            tc.key_ent[nk] = g->kind == PT_SN_COL ? resolve(pl, &sc, g, false) : -1;
            if (plain) {
                tc.key_names[nk] = plain;
            } else {
                tc.key_names[nk] = gen_name(pl, "k");
                x = pt_alias(x, tc.key_names[nk]);
                if (!tc.key_names[nk] || !x) {
                    pt_expr_free(x);
                    st = nomem(pl);
                    break;
                }
            }
            kx[nk++] = x;
        }
        if (st != PT_OK) {
            free_exprs(kx, nk);
            goto done;
        }
        tc.nkeys = nk;
        /* Aggregates: named after their select item when that is unique,
         * so that the final projection is a plain rename or nothing. */
        tc.clause = "an aggregate";
        for (int j = 0; j < aggs.n; j++) {
            const char *nm = NULL;
            for (int i = 0; i < q->nitems && !nm; i++) {
                const pt__sql_item *it = &q->items[i];
                if (!it->e || !node_eq(&tc, it->e, aggs.v[j])) continue;
                nm = it->alias ? it->alias : item_text(pl, it->pos, it->end);
                if (!nm) {
                    st = nomem(pl);
                    break;
                }
            }
            if (nm && !is_reserved_name(nm)) {
                for (int k = 0; k < nk; k++)
                    if (strcmp(tc.key_names[k], nm) == 0) nm = NULL;
                for (int k = 0; nm && k < j; k++)
                    if (strcmp(tc.agg_names[k], nm) == 0) nm = NULL;
            } else {
                nm = NULL;
            }
            if (st == PT_OK && !nm && !(nm = gen_name(pl, "a"))) st = nomem(pl);
            pt_expr *x = NULL;
            if (st == PT_OK) st = tr_agg_call(&tc, aggs.v[j], &x);
            if (st == PT_OK) {
                tc.agg_names[j] = nm;
                ax[j] = pt_alias(x, nm);
                if (!ax[j]) st = nomem(pl);
            }
            if (st != PT_OK) {
                free_exprs(kx, nk);
                free_exprs(ax, j);
                goto done;
            }
        }
        tc.aggs = aggs.v;
        tc.naggs = aggs.n;
        size_t gpos = q->ngroup ? q->group[0]->pos : q->items[0].pos;
        APPLY(pl, &f, gpos, pt_frame_groupby(f, nk, kx, aggs.n, ax, NEXT, pl->s->err));
        tc.grouped = true;
        tc.aggs_ok = true;
        if (q->having) {
            tc.clause = "HAVING";
            reset_unres(pl);
            pt_expr *pred;
            st = tr(&tc, q->having, &pred);
            if (st != PT_OK) goto done;
            APPLY(pl, &f, q->having->pos, pt_frame_filter(f, pred, NEXT, pl->s->err));
        }
    }

    /* ROW_NUMBER() windows, computed before the projection that uses them. */
    collect wins = {0};
    for (int i = 0; i < q->nitems; i++)
        if ((st = collect_walk(&tc, &wins, q->items[i].e, true)) != PT_OK) goto done;
    for (int i = 0; i < q->norder; i++)
        if ((st = collect_walk(&tc, &wins, q->order[i].e, true)) != PT_OK) goto done;
    if (wins.n) {
        tc.win_names = pt__sql_alloc(ar, (size_t)wins.n * sizeof *tc.win_names);
        if (!tc.win_names) {
            st = nomem(pl);
            goto done;
        }
        tc.clause = "a window specification";
        for (int w = 0; w < wins.n; w++) {
            const pt__sql_node *wn = wins.v[w];
            const char *nm = NULL;
            for (int i = 0; i < q->nitems && !nm; i++) {
                const pt__sql_item *it = &q->items[i];
                if (it->e && it->alias && node_eq(&tc, it->e, wn)) nm = it->alias;
            }
            const pt_schema *fs = pt_frame_schema(f);
            if (nm && (is_reserved_name(nm) || (fs && pt_schema_find(fs, nm) >= 0))) nm = NULL;
            for (int k = 0; nm && k < w; k++)
                if (strcmp(tc.win_names[k], nm) == 0) nm = NULL;
            if (!nm && !(nm = gen_name(pl, "w"))) {
                st = nomem(pl);
                goto done;
            }
            tc.win_names[w] = nm;
            pt_expr **px = pt__sql_alloc(ar, (size_t)(wn->nargs + 1) * sizeof *px);
            pt_expr **ox = pt__sql_alloc(ar, (size_t)(wn->nargs2 + 1) * sizeof *ox);
            if (!px || !ox) {
                st = nomem(pl);
                goto done;
            }
            reset_unres(pl);
            st = tr_list(&tc, wn->args, wn->nargs, px);
            if (st != PT_OK) goto done;
            st = tr_list(&tc, wn->args2, wn->nargs2, ox);
            if (st != PT_OK) {
                free_exprs(px, wn->nargs);
                goto done;
            }
            APPLY(pl, &f, wn->pos,
                  pt_frame_row_number(f, nm, wn->nargs, px, wn->nargs2, ox, wn->desc, NEXT,
                                      pl->s->err));
        }
        tc.wins = wins.v;
        tc.nwins = wins.n;
    }
    tc.wins_ok = true;
    tc.clause = "SELECT";

    /* Output columns: * expands to the visible scope. */
    int nout = 0, ocap = 0;
    outcol *outs = NULL;
    for (int i = 0; i < q->nitems; i++) {
        const pt__sql_item *it = &q->items[i];
        int from = 0, to = 1;
        if (!it->e) to = sc.n;
        for (int k = from; k < to; k++) {
            outcol o;
            memset(&o, 0, sizeof o);
            o.pos = it->pos;
            if (it->e) {
                o.e = it->e;
                o.ent = -1;
                if (it->alias) o.name = it->alias;
                else if (it->e->kind == PT_SN_COL) o.name = it->e->name;
                else if (!(o.name = item_text(pl, it->pos, it->end))) {
                    st = nomem(pl);
                    goto done;
                }
            } else {
                const ent *e = &sc.e[k];
                if (it->star_qual ? (!e->qual || strcasecmp(e->qual, it->star_qual) != 0)
                                  : e->hidden)
                    continue;
                o.ent = k;
                o.name = e->name;
            }
            if (nout == ocap) {
                int nc = ocap ? ocap * 2 : 16;
                outcol *no = pt__sql_alloc(ar, (size_t)nc * sizeof *no);
                if (!no) {
                    st = nomem(pl);
                    goto done;
                }
                if (nout) memcpy(no, outs, (size_t)nout * sizeof *no);
                outs = no;
                ocap = nc;
            }
            outs[nout++] = o;
        }
        if (!it->e && it->star_qual) {
            bool any = false;
            for (int k = 0; k < sc.n; k++)
                if (sc.e[k].qual && strcasecmp(sc.e[k].qual, it->star_qual) == 0) any = true;
            if (!any) {
                st = sem(pl, it->pos, PT_EINVAL, "unknown table or alias '%s' in '%s.*'",
                         it->star_qual, it->star_qual);
                goto done;
            }
        }
    }
    if (nout == 0) {
        st = sem(pl, q->items[0].pos, PT_EINVAL, "the select list has no columns");
        goto done;
    }
    if ((st = dedupe_names(pl, outs, nout)) != PT_OK) goto done;

    /* ORDER BY keys: an output column (by position, name or equal
     * expression), or an expression over the input, which forces the sort
     * before the projection. */
    int *okey = pt__sql_alloc(ar, (size_t)(q->norder + 1) * sizeof *okey);
    if (!okey) {
        st = nomem(pl);
        goto done;
    }
    bool need_pre = false;
    for (int i = 0; i < q->norder; i++) {
        const pt__sql_node *n = q->order[i].e;
        okey[i] = -1;
        if (n->kind == PT_SN_INT) {
            if (n->ival < 1 || n->ival > nout) {
                st = sem(pl, n->pos, PT_EINVAL,
                         "ORDER BY position %lld is not in the select list (1..%d)",
                         (long long)n->ival, nout);
                goto done;
            }
            okey[i] = (int)n->ival - 1;
            continue;
        }
        if (n->kind == PT_SN_COL && !n->qual) {
            for (int k = 0; k < nout && okey[i] < 0; k++)
                if (strcmp(outs[k].name, n->name) == 0) okey[i] = k;
            for (int k = 0; k < nout && okey[i] < 0 && !n->quoted; k++)
                if (strcasecmp(outs[k].name, n->name) == 0 && resolve_q(&tc, n) < 0) okey[i] = k;
        }
        for (int k = 0; k < nout && okey[i] < 0; k++)
            if (outs[k].e && node_eq(&tc, outs[k].e, n)) okey[i] = k;
        if (okey[i] < 0) need_pre = true;
    }
    if (need_pre && q->distinct) {
        for (int i = 0; i < q->norder; i++) {
            if (okey[i] < 0) {
                st = sem(pl, q->order[i].pos, PT_EINVAL,
                         "for SELECT DISTINCT, ORDER BY expressions must appear in the select "
                         "list");
                goto done;
            }
        }
    }
    bool *desc = pt__sql_alloc(ar, (size_t)(q->norder + 1) * sizeof *desc);
    pt_expr **sx = pt__sql_alloc(ar, (size_t)(q->norder + 1) * sizeof *sx);
    if (!desc || !sx) {
        st = nomem(pl);
        goto done;
    }
    for (int i = 0; i < q->norder; i++) desc[i] = q->order[i].desc;
    if (need_pre) {
        tc.clause = "ORDER BY";
        reset_unres(pl);
        for (int i = 0; i < q->norder; i++) {
            st = okey[i] >= 0 ? tr_out(&tc, &outs[okey[i]], &sx[i]) : tr(&tc, q->order[i].e, &sx[i]);
            if (st != PT_OK) {
                free_exprs(sx, i);
                goto done;
            }
        }
        APPLY(pl, &f, q->order[0].pos, pt_frame_sort(f, q->norder, sx, desc, NEXT, pl->s->err));
        tc.clause = "SELECT";
        /* LIMIT commutes with the projection; keeping it next to the sort
         * lets the optimiser make a top-n of the two. */
        if (q->has_limit) {
            reset_unres(pl);
            APPLY(pl, &f, q->pos, pt_frame_limit(f, q->limit, q->offset, NEXT, pl->s->err));
        }
    }

    /* Projection (skipped when it would change nothing). */
    {
        pt_expr **px = pt__sql_alloc(ar, (size_t)nout * sizeof *px);
        if (!px) {
            st = nomem(pl);
            goto done;
        }
        const pt_schema *fs = pt_frame_schema(f);
        bool identity = fs && fs->nfields == nout;
        reset_unres(pl);
        for (int i = 0; i < nout; i++) {
            st = tr_out(&tc, &outs[i], &px[i]);
            if (st != PT_OK) {
                free_exprs(px, i);
                goto done;
            }
            const char *plain = out_plain(&tc, &outs[i]);
            bool same = plain && strcmp(plain, outs[i].name) == 0;
            if (!same) {
                px[i] = pt_alias(px[i], outs[i].name);
                if (!px[i]) {
                    free_exprs(px, i);
                    st = nomem(pl);
                    goto done;
                }
            }
            if (!same || !identity || strcmp(fs->fields[i].name, outs[i].name) != 0)
                identity = false;
        }
        /* The error position of a failed projection: the first unresolved
         * name, else the first select item. */
        if (identity) {
            free_exprs(px, nout);
        } else {
            APPLY(pl, &f, q->items[0].pos, pt_frame_select(f, nout, px, NEXT, pl->s->err));
        }
    }
    if (q->distinct) APPLY(pl, &f, q->pos, pt_frame_distinct(f, NEXT, pl->s->err));
    if (q->norder && !need_pre) {
        for (int i = 0; i < q->norder; i++) {
            sx[i] = pt_col(outs[okey[i]].name);
            if (!sx[i]) {
                free_exprs(sx, i);
                st = nomem(pl);
                goto done;
            }
        }
        reset_unres(pl);
        APPLY(pl, &f, q->order[0].pos, pt_frame_sort(f, q->norder, sx, desc, NEXT, pl->s->err));
    }
    if (q->has_limit && !need_pre) {
        reset_unres(pl);
        APPLY(pl, &f, q->pos, pt_frame_limit(f, q->limit, q->offset, NEXT, pl->s->err));
    }
    *out = f;
    f = NULL;
done:
    pt_frame_free(f);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Entry points                                                             */
/* ------------------------------------------------------------------------ */

pt_status pt__sql_plan(pt__sql *s, pt_ctx *ctx, pt_catalog *cat, const pt__sql_query *q,
                       pt_frame **out) {
    planner pl;
    memset(&pl, 0, sizeof pl);
    pl.s = s;
    pl.ctx = ctx;
    pl.cat = cat;
    return plan_query(&pl, q, out);
}

pt_status pt__sql_plan_expr(pt__sql *s, const pt__sql_node *n, pt_expr **out) {
    planner pl;
    memset(&pl, 0, sizeof pl);
    pl.s = s;
    tctx tc;
    memset(&tc, 0, sizeof tc);
    tc.pl = &pl;
    tc.clause = "an expression";
    return tr(&tc, n, out);
}

static void copy_err(pt_error *dst, const pt_error *src) {
    if (!dst) return;
    dst->code = src->code;
    memcpy(dst->msg, src->msg, sizeof dst->msg);
}

pt_status pt_sql(pt_ctx *ctx, pt_catalog *cat, const char *query, pt_frame **out, int *is_explain,
                 pt_error *err) {
    if (out) *out = NULL;
    if (is_explain) *is_explain = 0;
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_sql: out is NULL");
    if (!query) return pt_error_set(err, PT_EINVAL, "pt_sql: query is NULL");
    pt_error lerr;
    pt_error_clear(&lerr);
    pt__sql s;
    memset(&s, 0, sizeof s);
    s.src = query;
    s.len = strlen(query);
    s.err = &lerr;
    pt_status st = pt__sql_lex(&s);
    pt__sql_query *q = NULL;
    if (st == PT_OK) {
        q = pt__sql_parse_query(&s);
        if (!q) st = lerr.code != PT_OK ? lerr.code : PT_EPARSE;
    }
    if (st == PT_OK) st = pt__sql_plan(&s, ctx, cat, q, out);
    if (st == PT_OK && is_explain) *is_explain = q->explain ? 1 : 0;
    if (st != PT_OK) {
        if (lerr.code == PT_OK) lerr.code = st;
        copy_err(err, &lerr);
        *out = NULL;
    }
    pt__sql_release(&s);
    return st;
}

pt_status pt_expr_parse(const char *text, pt_expr **out, pt_error *err) {
    if (out) *out = NULL;
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_expr_parse: out is NULL");
    if (!text) return pt_error_set(err, PT_EINVAL, "pt_expr_parse: text is NULL");
    pt_error lerr;
    pt_error_clear(&lerr);
    pt__sql s;
    memset(&s, 0, sizeof s);
    s.src = text;
    s.len = strlen(text);
    s.err = &lerr;
    pt_status st = pt__sql_lex(&s);
    if (st == PT_OK) {
        pt__sql_node *n = pt__sql_parse_expr_only(&s);
        if (!n) st = lerr.code != PT_OK ? lerr.code : PT_EPARSE;
        else st = pt__sql_plan_expr(&s, n, out);
    }
    if (st != PT_OK) {
        if (lerr.code == PT_OK) lerr.code = st;
        copy_err(err, &lerr);
        *out = NULL;
    }
    pt__sql_release(&s);
    return st;
}
