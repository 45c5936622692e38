/*
 * plan_optimize.c - rewrites a logical plan before it runs:
 *   1. constant folding in every expression;
 *   2. predicate push-down: filters move below sorts, renaming projections,
 *      joins (per side, as the join type allows), group-bys (conjuncts on
 *      plain keys) and unions, and into scans, where they run on each batch
 *      right after parsing;
 *   3. projection push-down: scans read only the columns the plan needs
 *      (the CSV reader then never converts the others);
 *   4. fusion: a projection directly over a scan runs inside the scan's
 *      per-batch task;
 *   5. SORT followed by LIMIT becomes a top-n.
 * The input tree is never modified: changed nodes are cloned.
 */
#include <string.h>

#include "frame/expr.h"
#include "frame/plan.h"

/* A small set of column names (plans have tens of columns, not more). */
typedef struct name_set {
    char **v;
    int n, cap;
    bool all; /* every column is needed */
} name_set;

static bool set_has(const name_set *s, const char *name) {
    if (s->all) return true;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0) return true;
    return false;
}

static void set_add(const char *name, void *ud) {
    name_set *s = ud;
    if (s->all || set_has(s, name)) return;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        char **v = pt_realloc(s->v, sizeof *v * (size_t)cap);
        if (!v) {
            s->all = true; /* out of memory: fall back to reading everything */
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    char *d = pt_strdup(name);
    if (!d) {
        s->all = true;
        return;
    }
    s->v[s->n++] = d;
}

static void set_free(name_set *s) {
    for (int i = 0; i < s->n; i++) pt_free(s->v[i]);
    pt_free(s->v);
    memset(s, 0, sizeof *s);
}

/* Column name of a plain column reference, also under an alias. */
static const char *passthrough_col(const pt_expr *e) {
    while (e && e->kind == PT__E_ALIAS && e->nargs > 0) e = e->args[0];
    return e ? pt__expr_col_name(e) : NULL;
}

static void set_add_expr(name_set *s, const pt_expr *e) {
    if (e) pt__expr_columns(e, set_add, s);
}

/* ------------------------------------------------------------------------ */
/* 1. Folding                                                               */
/* ------------------------------------------------------------------------ */

static void fold_array(pt_expr **e, int n) {
    for (int i = 0; i < n; i++)
        if (e[i]) e[i] = pt__expr_fold(e[i]);
}

static pt_status fold_tree(pt_frame *f, pt_frame **out, pt_error *err) {
    pt_frame *c = NULL;
    PT_RETURN_NOT_OK(pt__node_clone(f, &c, err));
    for (int i = 0; i < 2; i++) {
        if (!f->in[i]) continue;
        pt_frame *ci;
        pt_status st = fold_tree(f->in[i], &ci, err);
        if (st != PT_OK) {
            pt_frame_free(c);
            return st;
        }
        pt_frame_free(c->in[i]);
        c->in[i] = ci;
    }
    if (c->pred) c->pred = pt__expr_fold(c->pred);
    if (c->scan_pred) c->scan_pred = pt__expr_fold(c->scan_pred);
    if (c->kind != PT__N_AGG) fold_array(c->exprs, c->nexprs);
    fold_array(c->keys, c->nkeys);
    *out = c;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* 2. Predicate push-down                                                   */
/* ------------------------------------------------------------------------ */

/* True when every column `e` references is in `names` (n entries). */
typedef struct cols_check {
    const char *const *names;
    int n;
    bool ok;
} cols_check;

static void check_col(const char *name, void *ud) {
    cols_check *c = ud;
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->names[i], name) == 0) return;
    c->ok = false;
}

static bool refs_only(const pt_expr *e, const char *const *names, int n) {
    cols_check c = {names, n, true};
    pt__expr_columns(e, check_col, &c);
    return c.ok;
}

/* AND of two predicates (either may be NULL); takes ownership. */
static pt_expr *and_expr(pt_expr *a, pt_expr *b) {
    if (!a) return b;
    if (!b) return a;
    return pt_binary(PT_OP_AND, a, b);
}

/* Wraps `child` in a filter with `pred` (ownership of pred moves); when
 * pred is NULL returns child. */
static pt_status wrap_filter(pt_frame *child, pt_expr *pred, pt_frame **out, pt_error *err);
static pt_status push_filters(pt_frame *f, pt_frame **out, pt_error *err);

/* Rewrites column refs of `e` from names `from[i]` to `to[i]`. */
static pt_status rename_cols(pt_expr *e, const char *const *from, const char *const *to, int n,
                             pt_expr **out, pt_error *err) {
    pt_expr **refs = pt_calloc((size_t)n + 1, sizeof *refs);
    if (!refs) return pt_error_set(err, PT_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) refs[i] = pt_col(from[i]);
    pt_status st = pt__expr_replace(e, refs, to, n, out, err);
    for (int i = 0; i < n; i++) pt_expr_free(refs[i]);
    pt_free(refs);
    return st;
}

/* Tries to move the conjuncts of `pred` into or below `child` (already
 * pushed-down). Returns the new subtree in *out; conjuncts that cannot move
 * stay in a filter on top. Takes ownership of pred. */
static int64_t rownum_bound(const pt_expr *e, const char *name);

static pt_status push_into(pt_frame *child, pt_expr *pred, pt_frame **out, pt_error *err) {
    pt_status st = PT_OK;
    switch (child->kind) {
    case PT__N_SCAN_CSV:
    case PT__N_SCAN_TABLE:
    case PT__N_SCAN_NATIVE: {
        if (child->nexprs > 0) break; /* a fused projection: keep the filter above */
        pt_frame *c = NULL;
        st = pt__node_clone(child, &c, err);
        if (st != PT_OK) break;
        c->scan_pred = and_expr(c->scan_pred, pred);
        *out = c;
        return c->scan_pred ? PT_OK : pt_error_set(err, PT_ENOMEM, "out of memory");
    }
    case PT__N_FILTER: {
        pt_expr *both = and_expr(pt_expr_ref(child->pred), pred);
        if (!both) return pt_error_set(err, PT_ENOMEM, "out of memory");
        return push_into(child->in[0], both, out, err);
    }
    case PT__N_SORT:
    case PT__N_UNION:
    case PT__N_PROJECT:
    case PT__N_JOIN:
    case PT__N_AGG: {
        pt_frame *c = NULL;
        st = pt__node_clone(child, &c, err);
        if (st != PT_OK) break;
        pt_expr *rest = NULL;
        if (child->kind == PT__N_SORT) {
            pt_frame *ni = NULL;
            st = push_into(c->in[0], pred, &ni, err);
            pred = NULL;
            if (st == PT_OK) {
                pt_frame_free(c->in[0]);
                c->in[0] = ni;
            }
        } else if (child->kind == PT__N_UNION) {
            for (int side = 0; side < 2 && st == PT_OK; side++) {
                pt_frame *ni = NULL;
                st = push_into(c->in[side], pt_expr_ref(pred), &ni, err);
                if (st == PT_OK) {
                    pt_frame_free(c->in[side]);
                    c->in[side] = ni;
                }
            }
            pt_expr_free(pred);
            pred = NULL;
        } else {
            /* Split into conjuncts and route each. */
            pt_expr **conj = NULL;
            int nconj = 0;
            st = pt__expr_split_and(pred, &conj, &nconj, err);
            pt_expr_free(pred);
            pred = NULL;
            pt_expr *down[2] = {NULL, NULL};
            for (int k = 0; st == PT_OK && k < nconj; k++) {
                pt_expr *e = conj[k];
                conj[k] = NULL;
                bool moved = false;
                if (child->kind == PT__N_PROJECT) {
                    /* Pass-through columns: output name -> input column. */
                    const char *from[256], *to[256];
                    int m = 0;
                    for (int i = 0; i < child->nexprs && m < 256; i++) {
                        const pt_expr *x = child->exprs[i];
                        if (passthrough_col(x) != NULL) {
                            from[m] = child->names[i];
                            to[m] = passthrough_col(x);
                            m++;
                        }
                    }
                    if (refs_only(e, from, m)) {
                        pt_expr *r;
                        st = rename_cols(e, from, to, m, &r, err);
                        if (st == PT_OK) {
                            down[0] = and_expr(down[0], r);
                            moved = true;
                        }
                    }
                } else if (child->kind == PT__N_AGG) {
                    const char *from[256], *to[256];
                    int m = 0;
                    for (int i = 0; i < child->nkeys && m < 256; i++) {
                        if (passthrough_col(child->keys[i]) != NULL) {
                            from[m] = child->key_names[i];
                            to[m] = passthrough_col(child->keys[i]);
                            m++;
                        }
                    }
                    if (m > 0 && refs_only(e, from, m)) {
                        pt_expr *r;
                        st = rename_cols(e, from, to, m, &r, err);
                        if (st == PT_OK) {
                            down[0] = and_expr(down[0], r);
                            moved = true;
                        }
                    }
                } else { /* join */
                    const pt_schema *ls = child->in[0]->schema, *rs = child->in[1]->schema;
                    const pt_schema *js = child->schema;
                    int nl = ls->nfields, nr = rs->nfields;
                    const char *lout[256], *lin[256], *rout[256], *rin[256];
                    int ml = 0, mr = 0;
                    for (int i = 0; i < nl && ml < 256; i++, ml++) {
                        lout[ml] = js->fields[i].name;
                        lin[ml] = ls->fields[i].name;
                    }
                    for (int i = 0; i < nr && mr < 256; i++, mr++) {
                        rout[mr] = js->fields[nl + i].name;
                        rin[mr] = rs->fields[i].name;
                    }
                    pt_join_type jt = child->join_type;
                    if ((jt == PT_JOIN_INNER || jt == PT_JOIN_LEFT) && refs_only(e, lout, ml)) {
                        pt_expr *r;
                        st = rename_cols(e, lout, lin, ml, &r, err);
                        if (st == PT_OK) {
                            down[0] = and_expr(down[0], r);
                            moved = true;
                        }
                    } else if ((jt == PT_JOIN_INNER || jt == PT_JOIN_RIGHT) &&
                               refs_only(e, rout, mr)) {
                        pt_expr *r;
                        st = rename_cols(e, rout, rin, mr, &r, err);
                        if (st == PT_OK) {
                            down[1] = and_expr(down[1], r);
                            moved = true;
                        }
                    }
                }
                if (moved) {
                    pt_expr_free(e);
                } else {
                    rest = and_expr(rest, e);
                }
            }
            for (int k = 0; k < nconj; k++) pt_expr_free(conj[k]);
            pt_free(conj);
            for (int side = 0; side < 2; side++) {
                if (!down[side]) continue;
                if (st != PT_OK) {
                    pt_expr_free(down[side]);
                    continue;
                }
                pt_frame *ni = NULL;
                st = push_into(c->in[side], down[side], &ni, err);
                if (st == PT_OK) {
                    pt_frame_free(c->in[side]);
                    c->in[side] = ni;
                }
            }
        }
        pt_expr_free(pred);
        if (st != PT_OK) {
            pt_expr_free(rest);
            pt_frame_free(c);
            return st;
        }
        return wrap_filter(c, rest, out, err);
    }
    case PT__N_ROWNUM: {
        /* ROW_NUMBER() ... filtered by rn <= k: only the first k rows of each
         * partition can pass, so the operator may keep just those (a top-k
         * per partition instead of numbering every row). The filter stays. */
        int64_t k = rownum_bound(pred, child->rn_name);
        if (k <= 0 || (child->limit > 0 && child->limit <= k)) break;
        pt_frame *c;
        st = pt__node_clone(child, &c, err);
        if (st != PT_OK) break;
        c->limit = k;
        return wrap_filter(c, pred, out, err);
    }
    default: break;
    }
    if (st != PT_OK) {
        pt_expr_free(pred);
        return st;
    }
    return wrap_filter(pt_frame_ref(child), pred, out, err);
}

/* The largest row number a predicate lets through when one of its AND
 * conjuncts is `rn <= k`, `rn < k`, `k >= rn` or `k > rn` (rn the column
 * `name`, k an integer literal); 0 when there is none. */
static int64_t rownum_bound(const pt_expr *e, const char *name) {
    if (!e || e->kind != PT__E_BINARY || e->nargs != 2) return 0;
    if (e->op == PT_OP_AND) {
        int64_t a = rownum_bound(e->args[0], name), b = rownum_bound(e->args[1], name);
        return a && b ? (a < b ? a : b) : (a ? a : b);
    }
    const pt_expr *c = e->args[0], *l = e->args[1];
    pt_op op = e->op;
    if (c->kind == PT__E_LIT) { /* k >= rn is rn <= k */
        const pt_expr *t = c;
        c = l;
        l = t;
        op = op == PT_OP_GE ? PT_OP_LE : op == PT_OP_GT ? PT_OP_LT : PT_OP_EQ;
    }
    const char *cn = pt__expr_col_name(c);
    if (!cn || strcmp(cn, name) != 0 || l->kind != PT__E_LIT || l->lit_null ||
        l->type != PT_TYPE_INT64)
        return 0;
    if (op == PT_OP_LE) return l->i > 0 ? l->i : 0;
    if (op == PT_OP_LT) return l->i > 1 ? l->i - 1 : 0;
    return 0;
}

/* Takes ownership of child (one reference) and pred. */
static pt_status wrap_filter(pt_frame *child, pt_expr *pred, pt_frame **out, pt_error *err) {
    if (!pred) {
        *out = child;
        return PT_OK;
    }
    pt_frame *f = NULL;
    pt_status st = pt__node_new(child->ctx, PT__N_FILTER, &f, err);
    if (st == PT_OK) st = pt_schema_copy(child->schema, &f->schema, err);
    if (st != PT_OK) {
        pt_frame_free(f);
        pt_frame_free(child);
        pt_expr_free(pred);
        return st;
    }
    f->in[0] = child;
    f->pred = pred;
    *out = f;
    return PT_OK;
}

static pt_status push_filters(pt_frame *f, pt_frame **out, pt_error *err) {
    /* Children first, so that filters arrive at already pushed subtrees. */
    pt_frame *ins[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        if (!f->in[i]) continue;
        pt_status st = push_filters(f->in[i], &ins[i], err);
        if (st != PT_OK) {
            pt_frame_free(ins[0]);
            return st;
        }
    }
    if (f->kind == PT__N_FILTER) {
        pt_status st = push_into(ins[0], pt_expr_ref(f->pred), out, err);
        pt_frame_free(ins[0]);
        return st;
    }
    pt_frame *c = NULL;
    pt_status st = pt__node_clone(f, &c, err);
    if (st != PT_OK) {
        pt_frame_free(ins[0]);
        pt_frame_free(ins[1]);
        return st;
    }
    for (int i = 0; i < 2; i++) {
        if (!ins[i]) continue;
        pt_frame_free(c->in[i]);
        c->in[i] = ins[i];
    }
    *out = c;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* 3. Projection push-down                                                  */
/* ------------------------------------------------------------------------ */

/* Keeps only the fields of `s` whose names are in `need` (schema order). */
static pt_status prune_schema(const pt_schema *s, const name_set *need, pt_schema **out,
                              pt_error *err) {
    int n = 0;
    const char *names[1024];
    pt_type types[1024];
    for (int i = 0; i < s->nfields && n < 1024; i++) {
        if (set_has(need, s->fields[i].name)) {
            names[n] = s->fields[i].name;
            types[n] = s->fields[i].type;
            n++;
        }
    }
    if (n == 0) { /* keep one column so row counts survive (count(*)) */
        names[0] = s->fields[0].name;
        types[0] = s->fields[0].type;
        n = 1;
    }
    return pt_schema_new(n, names, types, out, err);
}

/* Rebuilds f's subtree so that it produces at least the columns in `need`
 * (f's own output names); nodes that pass their input's schema through get
 * the pruned schema. */
static pt_status prune(pt_frame *f, const name_set *need, pt_frame **out, pt_error *err) {
    pt_frame *c = NULL;
    PT_RETURN_NOT_OK(pt__node_clone(f, &c, err));
    pt_status st = PT_OK;
    name_set in_need = {0}, rneed = {0};
    switch (f->kind) {
    case PT__N_SCAN_CSV:
    case PT__N_SCAN_TABLE:
    case PT__N_SCAN_NATIVE: {
        if (need->all) break;
        pt_schema *ps;
        st = prune_schema(f->schema, need, &ps, err);
        if (st != PT_OK) break;
        /* Columns read = needed + those the pushed predicate uses. */
        name_set rd = {0};
        for (int i = 0; i < ps->nfields; i++) set_add(ps->fields[i].name, &rd);
        set_add_expr(&rd, f->scan_pred);
        pt_schema *rs;
        st = prune_schema(f->schema, &rd, &rs, err);
        if (st == PT_OK) {
            c->nscan_cols = rs->nfields;
            c->scan_cols = pt_calloc((size_t)rs->nfields, sizeof *c->scan_cols);
            if (!c->scan_cols) st = pt_error_set(err, PT_ENOMEM, "out of memory");
            for (int i = 0; st == PT_OK && i < rs->nfields; i++)
                if (!(c->scan_cols[i] = pt_strdup(rs->fields[i].name)))
                    st = pt_error_set(err, PT_ENOMEM, "out of memory");
            pt_schema_free(rs);
        }
        set_free(&rd);
        pt_schema_free(c->schema);
        c->schema = ps;
        break;
    }
    case PT__N_FILTER:
    case PT__N_SORT:
    case PT__N_TOPN:
    case PT__N_LIMIT:
    case PT__N_REPART:
    case PT__N_ROWNUM: {
        in_need = *need;
        in_need.v = NULL;
        in_need.n = in_need.cap = 0;
        for (int i = 0; i < need->n; i++) set_add(need->v[i], &in_need);
        set_add_expr(&in_need, f->pred);
        for (int i = 0; i < f->nkeys; i++) set_add_expr(&in_need, f->keys[i]);
        if (f->kind == PT__N_ROWNUM)
            for (int i = 0; i < f->nexprs; i++) set_add_expr(&in_need, f->exprs[i]);
        for (int i = 0; i < f->npart_keys; i++) set_add(f->part_keys[i], &in_need);
        pt_frame *ni = NULL;
        st = prune(f->in[0], &in_need, &ni, err);
        if (st != PT_OK) break;
        pt_frame_free(c->in[0]);
        c->in[0] = ni;
        pt_schema_free(c->schema);
        c->schema = NULL;
        if (f->kind == PT__N_ROWNUM) {
            int n = ni->schema->nfields;
            const char *names[1025];
            pt_type types[1025];
            for (int i = 0; i < n && i < 1024; i++) {
                names[i] = ni->schema->fields[i].name;
                types[i] = ni->schema->fields[i].type;
            }
            names[n] = f->rn_name;
            types[n] = PT_TYPE_INT64;
            st = pt_schema_new(n + 1, names, types, &c->schema, err);
        } else {
            st = pt_schema_copy(ni->schema, &c->schema, err);
        }
        break;
    }
    case PT__N_PROJECT:
    case PT__N_AGG: {
        for (int i = 0; i < f->nkeys; i++) set_add_expr(&in_need, f->keys[i]);
        if (f->kind == PT__N_PROJECT) {
            for (int i = 0; i < f->nexprs; i++) set_add_expr(&in_need, f->exprs[i]);
        } else {
            for (int i = 0; i < f->naggs; i++) set_add_expr(&in_need, f->aggs[i]);
        }
        pt_frame *ni = NULL;
        st = prune(f->in[0], &in_need, &ni, err);
        if (st == PT_OK) {
            pt_frame_free(c->in[0]);
            c->in[0] = ni;
        }
        break;
    }
    case PT__N_JOIN: {
        /* Map needed output names back to each side; keys are needed. */
        const pt_schema *ls = f->in[0]->schema, *rs = f->in[1]->schema;
        int nl = ls->nfields;
        for (int i = 0; i < f->schema->nfields; i++) {
            if (!set_has(need, f->schema->fields[i].name)) continue;
            if (i < nl) set_add(ls->fields[i].name, &in_need);
            else set_add(rs->fields[i - nl].name, &rneed);
        }
        for (int k = 0; k < f->njkeys; k++) {
            set_add(f->lkeys[k], &in_need);
            set_add(f->rkeys[k], &rneed);
        }
        pt_frame *li = NULL, *ri = NULL;
        st = prune(f->in[0], &in_need, &li, err);
        if (st == PT_OK) st = prune(f->in[1], &rneed, &ri, err);
        if (st != PT_OK) {
            pt_frame_free(li);
            break;
        }
        /* Output names stay those of the unpruned join (no re-suffixing). */
        const char *names[2048];
        pt_type types[2048];
        int n = 0;
        for (int i = 0; i < f->schema->nfields && n < 2048; i++) {
            const char *src = i < nl ? ls->fields[i].name : rs->fields[i - nl].name;
            const pt_schema *ps = i < nl ? li->schema : ri->schema;
            if (pt_schema_find(ps, src) >= 0) {
                names[n] = f->schema->fields[i].name;
                types[n] = f->schema->fields[i].type;
                n++;
            }
        }
        pt_frame_free(c->in[0]);
        pt_frame_free(c->in[1]);
        c->in[0] = li;
        c->in[1] = ri;
        pt_schema_free(c->schema);
        c->schema = NULL;
        st = pt_schema_new(n, names, types, &c->schema, err);
        break;
    }
    case PT__N_UNION: {
        pt_frame *a = NULL, *b = NULL;
        st = prune(f->in[0], need, &a, err);
        if (st == PT_OK) st = prune(f->in[1], need, &b, err);
        if (st != PT_OK) {
            pt_frame_free(a);
            break;
        }
        pt_frame_free(c->in[0]);
        pt_frame_free(c->in[1]);
        c->in[0] = a;
        c->in[1] = b;
        pt_schema_free(c->schema);
        c->schema = NULL;
        st = pt_schema_copy(a->schema, &c->schema, err);
        break;
    }
    case PT__N_DISTINCT: {
        name_set all = {0};
        all.all = true;
        pt_frame *ni = NULL;
        st = prune(f->in[0], &all, &ni, err);
        if (st == PT_OK) {
            pt_frame_free(c->in[0]);
            c->in[0] = ni;
        }
        break;
    }
    }
    set_free(&in_need);
    set_free(&rneed);
    if (st != PT_OK) {
        pt_frame_free(c);
        return st;
    }
    *out = c;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* 4-5. Fusion and top-n                                                    */
/* ------------------------------------------------------------------------ */

static pt_status fuse(pt_frame *f, pt_frame **out, pt_error *err) {
    pt_frame *ins[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        if (!f->in[i]) continue;
        pt_status st = fuse(f->in[i], &ins[i], err);
        if (st != PT_OK) {
            pt_frame_free(ins[0]);
            return st;
        }
    }
    pt_frame *c = NULL;
    pt_status st;
    pt_frame *child = ins[0];
    if (f->kind == PT__N_PROJECT && child &&
        (child->kind == PT__N_SCAN_CSV || child->kind == PT__N_SCAN_TABLE ||
         child->kind == PT__N_SCAN_NATIVE) &&
        child->nexprs == 0) {
        /* Scan + project in one per-batch task. */
        st = pt__node_clone(child, &c, err);
        if (st == PT_OK) {
            c->nexprs = f->nexprs;
            c->exprs = pt_calloc((size_t)f->nexprs, sizeof *c->exprs);
            c->names = pt_calloc((size_t)f->nexprs, sizeof *c->names);
            if (!c->exprs || !c->names) st = pt_error_set(err, PT_ENOMEM, "out of memory");
            for (int i = 0; st == PT_OK && i < f->nexprs; i++) {
                c->exprs[i] = pt_expr_ref(f->exprs[i]);
                if (!(c->names[i] = pt_strdup(f->names[i])))
                    st = pt_error_set(err, PT_ENOMEM, "out of memory");
            }
            pt_schema_free(c->schema);
            c->schema = NULL;
            if (st == PT_OK) st = pt_schema_copy(f->schema, &c->schema, err);
            if (st != PT_OK) {
                pt_frame_free(c);
                c = NULL;
            }
        }
        pt_frame_free(ins[0]);
        if (st != PT_OK) return st;
        *out = c;
        return PT_OK;
    }
    if (f->kind == PT__N_LIMIT && child && child->kind == PT__N_SORT) {
        st = pt__node_clone(child, &c, err);
        if (st == PT_OK) {
            c->kind = PT__N_TOPN;
            c->limit = f->limit;
            c->offset = f->offset;
        }
        pt_frame_free(ins[0]);
        if (st != PT_OK) return st;
        *out = c;
        return PT_OK;
    }
    st = pt__node_clone(f, &c, err);
    if (st != PT_OK) {
        pt_frame_free(ins[0]);
        pt_frame_free(ins[1]);
        return st;
    }
    for (int i = 0; i < 2; i++) {
        if (!ins[i]) continue;
        pt_frame_free(c->in[i]);
        c->in[i] = ins[i];
    }
    *out = c;
    return PT_OK;
}

pt_status pt__optimize(pt_frame *f, pt_frame **out, pt_error *err) {
    pt_frame *a = NULL, *b = NULL, *c = NULL;
    pt_status st = fold_tree(f, &a, err);
    if (st == PT_OK) st = push_filters(a, &b, err);
    if (st == PT_OK) {
        name_set all = {0};
        all.all = true;
        st = prune(b, &all, &c, err);
    }
    pt_frame_free(a);
    pt_frame_free(b);
    if (st != PT_OK) return pt_error_prefix(err, "optimising the plan");
    st = fuse(c, out, err);
    pt_frame_free(c);
    return st;
}
