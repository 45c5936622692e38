/*
 * expr_fold.c - constant folding and boolean simplification on expression
 * trees, before any schema is known (the optimiser runs it on every
 * expression of a plan).
 *
 * A subtree without column references or aggregates is evaluated with the
 * real engine (bound against an empty schema, evaluated on one row), so
 * folding can never disagree with evaluation. Results keep their type: a
 * null of type float64 becomes CAST(NULL AS float64), not a bare NULL, and
 * results whose type has no literal (int32, float32, dict) stay unfolded.
 */
#include <string.h>

#include "frame/expr.h"

static bool is_bool_lit(const pt_expr *e, bool v) {
    return e->kind == PT__E_LIT && e->type == PT_TYPE_BOOL && !e->lit_null && (e->i != 0) == v;
}

/* The literal for a folded constant, or NULL when it has none. */
static pt_expr *literal_of(const pt__bound *b) {
    const pt__scalar *k = &b->k;
    if (k->null) {
        if (b->type == PT_TYPE_NULL) return pt_lit_null();
        if (b->type == PT_TYPE_BOOL || b->type == PT_TYPE_INT64 || b->type == PT_TYPE_FLOAT64 ||
            b->type == PT_TYPE_UTF8)
            return pt_cast(pt_lit_null(), b->type);
        return NULL;
    }
    switch (b->type) {
    case PT_TYPE_BOOL: return pt_lit_bool(k->i != 0);
    case PT_TYPE_INT64: return pt_lit_i64(k->i);
    case PT_TYPE_FLOAT64: return pt_lit_f64(k->f);
    case PT_TYPE_UTF8:
        /* Text with an embedded NUL has no literal. */
        if (k->s && (int64_t)strlen(k->s) == k->slen) return pt_lit_str(k->s);
        return NULL;
    default: return NULL;
    }
}

static pt_expr *fold_constant(pt_expr *e) {
    if (e->kind == PT__E_LIT || e->kind == PT__E_ALIAS || e->kind == PT__E_AGG) return e;
    if (pt__expr_columns(e, NULL, NULL) > 0 || pt__expr_has_agg(e)) return e;
    /* A typed null written as CAST(NULL AS t) is already folded. */
    if (e->kind == PT__E_CAST && e->args[0]->kind == PT__E_LIT && e->args[0]->lit_null) return e;
    pt_schema empty = {0, NULL};
    pt__bound *b = NULL;
    pt_status st = pt__expr_bind(e, &empty, &b, NULL);
    if (st != PT_OK || b->kind != PT__B_CONST) {
        pt__bound_free(b);
        return e; /* an error shows again, with its message, at run time */
    }
    pt_expr *lit = literal_of(b);
    pt__bound_free(b);
    if (!lit) return e;
    pt_expr_free(e);
    return lit;
}

pt_expr *pt__expr_fold(pt_expr *e) {
    if (!e || e->nargs == 0) return e;
    pt_expr *small[8];
    pt_expr **args = e->nargs <= 8 ? small : pt_calloc((size_t)e->nargs, sizeof *args);
    if (!args) return e;
    bool changed = false;
    for (int k = 0; k < e->nargs; k++) {
        args[k] = pt__expr_fold(pt_expr_ref(e->args[k]));
        changed |= args[k] != e->args[k];
    }
    pt_expr *r = e;
    if (changed) {
        r = pt__expr_with_args(e, args); /* takes the args */
        if (!r) {
            r = e; /* out of memory: keep the original */
        } else {
            pt_expr_free(e);
        }
    } else {
        for (int k = 0; k < e->nargs; k++) pt_expr_free(args[k]);
    }
    if (args != small) pt_free(args);

    /* Boolean identities; all hold in three-valued logic. */
    if (r->kind == PT__E_BINARY && (r->op == PT_OP_AND || r->op == PT_OP_OR)) {
        bool is_and = r->op == PT_OP_AND;
        for (int k = 0; k < 2; k++) {
            pt_expr *a = r->args[k], *other = r->args[1 - k];
            if (is_bool_lit(a, !is_and)) { /* x AND false = false, x OR true = true */
                pt_expr *keep = pt_expr_ref(a);
                pt_expr_free(r);
                return keep;
            }
            if (is_bool_lit(a, is_and)) { /* x AND true = x, x OR false = x */
                pt_expr *keep = pt_expr_ref(other);
                pt_expr_free(r);
                return keep;
            }
        }
    }
    if (r->kind == PT__E_UNARY && r->op == PT_OP_NOT && r->args[0]->kind == PT__E_UNARY &&
        r->args[0]->op == PT_OP_NOT) {
        pt_expr *keep = pt_expr_ref(r->args[0]->args[0]);
        pt_expr_free(r);
        return keep;
    }
    return fold_constant(r);
}
