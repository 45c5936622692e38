/*
 * expr_bind.c - binding an expression tree to an input schema: column names
 * to positions, result types, implicit casts as explicit nodes, and folding
 * of constant subtrees (so that evaluation sees `x > 5` as a column against
 * a scalar, whatever the literal was written as).
 *
 * Type rules are listed in expr.h. Every error message names the expression
 * in SQL text so that a user can find it in a long query.
 */
#include <string.h>
#include <strings.h>

#include "frame/expr.h"

#define TEXT_CAP 256

/* ------------------------------------------------------------------------ */
/* Nodes                                                                    */
/* ------------------------------------------------------------------------ */

static pt__bound *bnode_new(pt__bound_kind kind, int nargs, const char *text) {
    pt__bound *b = pt_calloc(1, sizeof *b);
    if (!b) return NULL;
    b->kind = kind;
    b->col = -1;
    b->fn = -1;
    if (nargs > 0 && !(b->args = pt_calloc((size_t)nargs, sizeof *b->args))) {
        pt_free(b);
        return NULL;
    }
    b->nargs = nargs;
    if (!(b->text = pt_strdup(text ? text : ""))) {
        pt_free(b->args);
        pt_free(b);
        return NULL;
    }
    return b;
}

void pt__scalar_reset(pt__scalar *k) {
    pt_free(k->s);
    memset(k, 0, sizeof *k);
}

void pt__bound_free(pt__bound *b) {
    if (!b) return;
    for (int k = 0; k < b->nargs; k++) pt__bound_free(b->args[k]);
    pt_free(b->args);
    pt__scalar_reset(&b->k);
    pt_free(b->text);
    pt_free(b);
}

pt_type pt__bound_type(const pt__bound *b) { return b ? b->type : PT_TYPE_NULL; }

int pt__bound_column(const pt__bound *b) { return b && b->kind == PT__B_COL ? b->col : -1; }

bool pt__bound_is_const(const pt__bound *b) { return b && b->kind == PT__B_CONST; }

const char *pt__bound_describe(const pt__bound *b, char *buf, size_t cap) {
    if (b->kind == PT__B_COL) snprintf(buf, cap, "%s '%s'", pt_type_name(b->type), b->text);
    else snprintf(buf, cap, "%s %s", pt_type_name(b->type), b->text);
    return buf;
}

static pt_status oom(pt_error *err) {
    return pt_error_set(err, PT_ENOMEM, "out of memory binding an expression");
}

/* ------------------------------------------------------------------------ */
/* Types                                                                    */
/* ------------------------------------------------------------------------ */

static bool is_int(pt_type t) { return t == PT_TYPE_INT32 || t == PT_TYPE_INT64; }

bool pt__type_unify(pt_type a, pt_type b, pt_type *out) {
    if (a == b) return *out = a, true;
    if (a == PT_TYPE_NULL) return *out = b, true;
    if (b == PT_TYPE_NULL) return *out = a, true;
    if (pt_type_is_numeric(a) && pt_type_is_numeric(b)) {
        if (is_int(a) && is_int(b)) *out = PT_TYPE_INT64;
        else *out = PT_TYPE_FLOAT64;
        return true;
    }
    if (pt_type_is_string(a) && pt_type_is_string(b)) return *out = PT_TYPE_UTF8, true;
    return false;
}

/* Evaluates a node whose children are all constants and turns it into a
 * constant node (in place in *slot). */
static pt_status fold_node(pt__bound **slot, pt_error *err) {
    pt__bound *b = *slot;
    pt_schema empty = {0, NULL};
    pt_table one = {&empty, NULL, 1};
    pt__val v = {0};
    PT_RETURN_NOT_OK(pt__eval_node(b, &one, NULL, &v, err));
    pt__scalar k = {0};
    pt_status st;
    if (v.k) {
        k = *v.k;
        k.type = b->type;
        k.s = NULL;
        st = PT_OK;
        if (v.k->s && !(k.s = pt_strndup(v.k->s, (size_t)v.k->slen))) st = oom(err);
    } else {
        st = pt__scalar_from_column(v.col, b->type, &k, err);
    }
    pt__val_release(&v);
    if (st != PT_OK) return st;
    pt__bound *c = bnode_new(PT__B_CONST, 0, b->text);
    if (!c) {
        pt__scalar_reset(&k);
        return oom(err);
    }
    c->type = b->type;
    c->k = k;
    pt__bound_free(b);
    *slot = c;
    return PT_OK;
}

static bool all_args_const(const pt__bound *b) {
    for (int k = 0; k < b->nargs; k++)
        if (b->args[k]->kind != PT__B_CONST) return false;
    return true;
}

pt_status pt__bind_coerce(pt__bound **slot, pt_type to, pt_error *err) {
    pt__bound *c = *slot;
    if (c->type == to) return PT_OK;
    if (c->kind == PT__B_CONST && c->k.null) {
        c->type = c->k.type = to;
        return PT_OK;
    }
    pt__bound *b = bnode_new(PT__B_CAST, 1, c->text);
    if (!b) return oom(err);
    b->type = to;
    b->args[0] = c;
    *slot = b;
    if (c->kind == PT__B_CONST) return fold_node(slot, err);
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Columns                                                                  */
/* ------------------------------------------------------------------------ */

static pt_status resolve_column(const char *name, const pt_schema *in, int *pos, pt_error *err) {
    for (int k = 0; k < in->nfields; k++) {
        if (strcmp(in->fields[k].name, name) == 0) {
            *pos = k;
            return PT_OK;
        }
    }
    int found = -1, nfound = 0;
    for (int k = 0; k < in->nfields; k++) {
        if (strcasecmp(in->fields[k].name, name) == 0) {
            if (nfound++ == 0) found = k;
        }
    }
    if (nfound == 1) {
        *pos = found;
        return PT_OK;
    }
    char list[768];
    size_t len = 0;
    list[0] = 0;
    for (int k = 0; k < in->nfields; k++) {
        if (nfound > 1 && strcasecmp(in->fields[k].name, name) != 0) continue;
        size_t need = strlen(in->fields[k].name) + (len ? 2 : 0);
        if (len + need + 6 > sizeof list) {
            memcpy(list + len, ", ...", 6); /* the list is cut: keep the message short */
            break;
        }
        if (len) memcpy(list + len, ", ", 2);
        memcpy(list + len + (len ? 2 : 0), in->fields[k].name, need - (len ? 2 : 0));
        len += need;
        list[len] = 0;
    }
    if (nfound > 1)
        return pt_error_set(err, PT_EINVAL,
                            "column '%s' is ambiguous: it matches %s (names differ only in case)",
                            name, list);
    return pt_error_set(err, PT_EINVAL, "unknown column '%s'; available columns: %s", name,
                        in->nfields ? list : "(none)");
}

/* ------------------------------------------------------------------------ */
/* Operators                                                                */
/* ------------------------------------------------------------------------ */

static bool numeric_or_null(pt_type t) { return pt_type_is_numeric(t) || t == PT_TYPE_NULL; }

static bool fits_i32(const pt__bound *b) {
    return b->kind == PT__B_CONST && !b->k.null && b->k.type == PT_TYPE_INT64 &&
           b->k.i >= INT32_MIN && b->k.i <= INT32_MAX;
}

static const char *op_symbol(pt_op op) {
    static const char *const t[] = {"+", "-", "*", "/", "%", "-", "=", "<>", "<", "<=",
                                    ">", ">=", "AND", "OR", "NOT", "IS NULL", "IS NOT NULL", "||"};
    return t[op];
}

static pt_status bind_binary(pt__bound *n, const char *text, pt_error *err) {
    pt__bound **a = &n->args[0], **b = &n->args[1];
    pt_type ta = (*a)->type, tb = (*b)->type;
    char da[TEXT_CAP], db[TEXT_CAP];
    switch (n->op) {
    case PT_OP_ADD:
    case PT_OP_SUB:
    case PT_OP_MUL:
    case PT_OP_DIV:
    case PT_OP_MOD: {
        if (!numeric_or_null(ta) || !numeric_or_null(tb))
            return pt_error_set(err, PT_ETYPE, "cannot apply %s to %s and %s in '%s'",
                                op_symbol(n->op), pt__bound_describe(*a, da, sizeof da),
                                pt__bound_describe(*b, db, sizeof db), text);
        pt_type t = (is_int(ta) || ta == PT_TYPE_NULL) && (is_int(tb) || tb == PT_TYPE_NULL)
                        ? PT_TYPE_INT64
                        : PT_TYPE_FLOAT64;
        if (n->op == PT_OP_DIV) t = PT_TYPE_FLOAT64;
        n->kind = PT__B_ARITH;
        n->type = t;
        PT_RETURN_NOT_OK(pt__bind_coerce(a, t, err));
        return pt__bind_coerce(b, t, err);
    }
    case PT_OP_EQ:
    case PT_OP_NE:
    case PT_OP_LT:
    case PT_OP_LE:
    case PT_OP_GT:
    case PT_OP_GE: {
        n->kind = PT__B_CMP;
        n->type = PT_TYPE_BOOL;
        if (numeric_or_null(ta) && numeric_or_null(tb)) {
            pt_type t = PT_TYPE_INT64;
            if (ta == PT_TYPE_NULL && tb == PT_TYPE_NULL) t = PT_TYPE_INT64;
            else if (ta == PT_TYPE_INT32 && fits_i32(*b)) t = PT_TYPE_INT32;
            else if (tb == PT_TYPE_INT32 && fits_i32(*a)) t = PT_TYPE_INT32;
            else (void)pt__type_unify(ta, tb, &t);
            PT_RETURN_NOT_OK(pt__bind_coerce(a, t, err));
            return pt__bind_coerce(b, t, err);
        }
        if ((pt_type_is_string(ta) || ta == PT_TYPE_NULL) &&
            (pt_type_is_string(tb) || tb == PT_TYPE_NULL)) {
            /* utf8 and dict mix without casts; only a null needs a type. */
            if (ta == PT_TYPE_NULL) PT_RETURN_NOT_OK(pt__bind_coerce(a, PT_TYPE_UTF8, err));
            if (tb == PT_TYPE_NULL) PT_RETURN_NOT_OK(pt__bind_coerce(b, PT_TYPE_UTF8, err));
            return PT_OK;
        }
        if ((ta == PT_TYPE_BOOL || ta == PT_TYPE_NULL) && (tb == PT_TYPE_BOOL || tb == PT_TYPE_NULL)) {
            PT_RETURN_NOT_OK(pt__bind_coerce(a, PT_TYPE_INT32, err));
            return pt__bind_coerce(b, PT_TYPE_INT32, err);
        }
        return pt_error_set(err, PT_ETYPE, "cannot compare %s with %s in '%s'",
                            pt__bound_describe(*a, da, sizeof da),
                            pt__bound_describe(*b, db, sizeof db), text);
    }
    case PT_OP_AND:
    case PT_OP_OR:
        n->kind = n->op == PT_OP_AND ? PT__B_AND : PT__B_OR;
        n->type = PT_TYPE_BOOL;
        for (int k = 0; k < 2; k++) {
            pt_type t = n->args[k]->type;
            if (t != PT_TYPE_BOOL && t != PT_TYPE_NULL)
                return pt_error_set(err, PT_ETYPE, "%s needs bool operands, got %s in '%s'",
                                    op_symbol(n->op),
                                    pt__bound_describe(n->args[k], da, sizeof da), text);
            PT_RETURN_NOT_OK(pt__bind_coerce(&n->args[k], PT_TYPE_BOOL, err));
        }
        return PT_OK;
    case PT_OP_CONCAT:
        n->kind = PT__B_CONCAT;
        n->type = PT_TYPE_UTF8;
        for (int k = 0; k < 2; k++)
            if (!pt_type_is_string(n->args[k]->type))
                PT_RETURN_NOT_OK(pt__bind_coerce(&n->args[k], PT_TYPE_UTF8, err));
        return PT_OK;
    default:
        return pt_error_set(err, PT_EINVAL, "operator %d is not a binary operator in '%s'",
                            (int)n->op, text);
    }
}

static pt_status bind_unary(pt__bound *n, const char *text, pt_error *err) {
    pt_type t = n->args[0]->type;
    char d[TEXT_CAP];
    switch (n->op) {
    case PT_OP_NEG:
        if (!numeric_or_null(t))
            return pt_error_set(err, PT_ETYPE, "cannot negate %s in '%s'",
                                pt__bound_describe(n->args[0], d, sizeof d), text);
        n->kind = PT__B_NEG;
        n->type = is_int(t) || t == PT_TYPE_NULL ? PT_TYPE_INT64 : PT_TYPE_FLOAT64;
        return pt__bind_coerce(&n->args[0], n->type, err);
    case PT_OP_NOT:
        if (t != PT_TYPE_BOOL && t != PT_TYPE_NULL)
            return pt_error_set(err, PT_ETYPE, "NOT needs a bool operand, got %s in '%s'",
                                pt__bound_describe(n->args[0], d, sizeof d), text);
        n->kind = PT__B_NOT;
        n->type = PT_TYPE_BOOL;
        return pt__bind_coerce(&n->args[0], PT_TYPE_BOOL, err);
    case PT_OP_IS_NULL:
    case PT_OP_IS_NOT_NULL:
        n->kind = PT__B_ISNULL;
        n->type = PT_TYPE_BOOL;
        return PT_OK;
    default:
        return pt_error_set(err, PT_EINVAL, "operator %d is not a unary operator in '%s'",
                            (int)n->op, text);
    }
}

static pt_status bind_case(pt__bound *n, const char *text, pt_error *err) {
    int nw = (n->nargs - (n->has_else ? 1 : 0)) / 2;
    char d[TEXT_CAP];
    pt_type t = PT_TYPE_NULL;
    for (int k = 0; k < nw; k++) {
        pt__bound **c = &n->args[2 * k];
        if ((*c)->type != PT_TYPE_BOOL && (*c)->type != PT_TYPE_NULL)
            return pt_error_set(err, PT_ETYPE, "CASE WHEN needs a bool condition, got %s in '%s'",
                                pt__bound_describe(*c, d, sizeof d), text);
        PT_RETURN_NOT_OK(pt__bind_coerce(c, PT_TYPE_BOOL, err));
    }
    for (int k = 0; k < n->nargs; k++) {
        if (k < 2 * nw && k % 2 == 0) continue;
        pt_type u = PT_TYPE_NULL;
        if (!pt__type_unify(t, n->args[k]->type, &u))
            return pt_error_set(err, PT_ETYPE,
                                "CASE results have incompatible types: %s and %s in '%s'",
                                pt_type_name(t), pt__bound_describe(n->args[k], d, sizeof d), text);
        t = u;
    }
    if (t == PT_TYPE_DICT) t = PT_TYPE_UTF8;
    n->kind = PT__B_CASE;
    n->type = t;
    for (int k = 0; k < n->nargs; k++) {
        if (k < 2 * nw && k % 2 == 0) continue;
        if (pt_type_is_string(t) && pt_type_is_string(n->args[k]->type)) continue;
        PT_RETURN_NOT_OK(pt__bind_coerce(&n->args[k], t, err));
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* The recursion                                                            */
/* ------------------------------------------------------------------------ */

static pt_status bind_rec(const pt_expr *e, const pt_schema *in, pt__bound **out, pt_error *err) {
    *out = NULL;
    if (!e) return pt_error_set(err, PT_ENOMEM, "expression is NULL (out of memory while building it?)");
    char text[TEXT_CAP];
    pt_expr_to_string(e, text, sizeof text);
    switch (e->kind) {
    case PT__E_ALIAS: return bind_rec(e->args[0], in, out, err);
    case PT__E_AGG:
        return pt_error_set(err, PT_EINVAL,
                            "aggregate '%s' is not allowed here: aggregates belong in a group-by "
                            "or an aggregate query",
                            text);
    case PT__E_COL: {
        int pos = -1;
        PT_RETURN_NOT_OK(resolve_column(e->str, in, &pos, err));
        pt__bound *b = bnode_new(PT__B_COL, 0, in->fields[pos].name);
        if (!b) return oom(err);
        b->col = pos;
        b->type = in->fields[pos].type;
        *out = b;
        return PT_OK;
    }
    case PT__E_LIT: {
        pt__bound *b = bnode_new(PT__B_CONST, 0, text);
        if (!b) return oom(err);
        b->type = b->k.type = e->lit_null ? PT_TYPE_NULL : e->type;
        b->k.null = e->lit_null || e->type == PT_TYPE_NULL;
        b->k.i = e->i;
        b->k.f = e->f;
        if (e->type == PT_TYPE_UTF8 && !b->k.null) {
            const char *s = e->str ? e->str : "";
            b->k.slen = (int64_t)strlen(s);
            if (!(b->k.s = pt_strdup(s))) {
                pt__bound_free(b);
                return oom(err);
            }
        }
        *out = b;
        return PT_OK;
    }
    default: break;
    }
    pt__bound *n = bnode_new(PT__B_CONST, e->nargs, text);
    if (!n) return oom(err);
    pt_status st = PT_OK;
    for (int k = 0; k < e->nargs && st == PT_OK; k++) st = bind_rec(e->args[k], in, &n->args[k], err);
    if (st == PT_OK) {
        n->op = e->op;
        n->has_else = e->has_else;
        switch (e->kind) {
        case PT__E_BINARY: st = bind_binary(n, text, err); break;
        case PT__E_UNARY: st = bind_unary(n, text, err); break;
        case PT__E_CAST:
            if (n->args[0]->type == e->type) {
                /* A no-op cast: the child stands for itself. */
                pt__bound *c = n->args[0];
                n->args[0] = NULL;
                pt__bound_free(n);
                *out = c;
                return PT_OK;
            }
            n->kind = PT__B_CAST;
            n->type = e->type;
            break;
        case PT__E_CALL:
            n->kind = PT__B_CALL;
            n->fn = pt__func_find(e->str);
            if (n->fn < 0)
                st = pt_error_set(err, PT_EINVAL, "unknown function '%s' in '%s'", e->str, text);
            else st = pt__func_bind(n, err);
            break;
        case PT__E_CASE: st = bind_case(n, text, err); break;
        default: st = pt_error_set(err, PT_EINTERNAL, "bad expression kind %d", (int)e->kind);
        }
    }
    if (st == PT_OK && n->nargs > 0 && all_args_const(n)) st = fold_node(&n, err);
    if (st != PT_OK) {
        pt__bound_free(n);
        return st;
    }
    *out = n;
    return PT_OK;
}

pt_status pt__expr_bind(const pt_expr *e, const pt_schema *in, pt__bound **out, pt_error *err) {
    *out = NULL;
    if (!in) return pt_error_set(err, PT_EINVAL, "pt__expr_bind: schema is NULL");
    return bind_rec(e, in, out, err);
}
