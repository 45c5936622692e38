/*
 * plan_build.c - building frames: sources and lazy operations. Each
 * operation checks its arguments against the input schema (so that an
 * unknown column is reported when the frame is built, with the available
 * columns listed) and derives the output schema.
 */
#include <glob.h>
#include <math.h>
#include <string.h>

#include "frame/expr.h"
#include "frame/plan.h"

/* ------------------------------------------------------------------------ */
/* Nodes                                                                    */
/* ------------------------------------------------------------------------ */

static const char *const node_names[] = {"Scan csv", "Scan table", "Scan native", "Filter",
                                         "Project",  "Aggregate",  "Sort",        "Limit",
                                         "Distinct", "Join",       "Union",       "RowNumber",
                                         "Repartition", "TopN"};

const char *pt__node_name(pt__node_kind k) { return node_names[k]; }

pt_status pt__node_new(pt_ctx *ctx, pt__node_kind kind, pt_frame **out, pt_error *err) {
    pt_frame *f = pt_calloc(1, sizeof *f);
    if (!f) return pt_error_set(err, PT_ENOMEM, "out of memory building a plan node");
    f->refcount = 1;
    f->kind = kind;
    f->ctx = ctx;
    *out = f;
    return PT_OK;
}

static void free_strs(char **s, int n) {
    if (!s) return;
    for (int i = 0; i < n; i++) pt_free(s[i]);
    pt_free(s);
}

static void free_exprs(pt_expr **e, int n) {
    if (!e) return;
    for (int i = 0; i < n; i++) pt_expr_free(e[i]);
    pt_free(e);
}

static int count_nulls(char **v) {
    int n = 0;
    while (v && v[n]) n++;
    return n;
}

pt_frame *pt_frame_ref(pt_frame *f) {
    if (f) __atomic_fetch_add(&f->refcount, 1, __ATOMIC_RELAXED);
    return f;
}

void pt_frame_free(pt_frame *f) {
    if (!f || __atomic_sub_fetch(&f->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    pt_frame_free(f->in[0]);
    pt_frame_free(f->in[1]);
    pt_schema_free(f->schema);
    free_strs(f->paths, f->npaths);
    pt_schema_free(f->csv_schema);
    free_strs(f->csv_nulls, count_nulls(f->csv_nulls) + 1);
    for (int64_t i = 0; i < f->nparts; i++) pt_table_free(f->parts[i]);
    pt_free(f->parts);
    pt_free(f->csv_range);
    pt_free(f->native_path);
    free_strs(f->scan_cols, f->nscan_cols);
    pt_expr_free(f->scan_pred);
    pt_expr_free(f->pred);
    free_exprs(f->exprs, f->nexprs);
    free_strs(f->names, f->nexprs);
    free_exprs(f->keys, f->nkeys);
    free_strs(f->key_names, f->nkeys);
    free_exprs(f->aggs, f->naggs);
    pt_free(f->desc);
    free_strs(f->lkeys, f->njkeys);
    free_strs(f->rkeys, f->njkeys);
    pt_free(f->rn_name);
    free_strs(f->part_keys, f->npart_keys);
    pt_free(f);
}

const pt_schema *pt_frame_schema(const pt_frame *f) { return f ? f->schema : NULL; }

static pt_status dup_strs(char *const *src, int n, char ***out, pt_error *err) {
    *out = NULL;
    if (!src || n <= 0) return PT_OK;
    char **d = pt_calloc((size_t)n + 1, sizeof *d);
    if (!d) return pt_error_set(err, PT_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        if (src[i] && !(d[i] = pt_strdup(src[i]))) {
            free_strs(d, i);
            return pt_error_set(err, PT_ENOMEM, "out of memory");
        }
    }
    *out = d;
    return PT_OK;
}

static pt_status dup_exprs(pt_expr *const *src, int n, pt_expr ***out, pt_error *err) {
    *out = NULL;
    if (!src || n <= 0) return PT_OK;
    pt_expr **d = pt_calloc((size_t)n, sizeof *d);
    if (!d) return pt_error_set(err, PT_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) d[i] = pt_expr_ref(src[i]);
    *out = d;
    return PT_OK;
}

pt_status pt__node_clone(const pt_frame *f, pt_frame **out, pt_error *err) {
    pt_frame *c = NULL;
    PT_RETURN_NOT_OK(pt__node_new(f->ctx, f->kind, &c, err));
    *c = *f;
    c->refcount = 1;
    c->in[0] = pt_frame_ref(f->in[0]);
    c->in[1] = pt_frame_ref(f->in[1]);
    /* Null every owned pointer first so a failure part-way frees safely. */
    c->schema = NULL;
    c->paths = NULL; c->csv_schema = NULL; c->csv_nulls = NULL; c->parts = NULL; c->nparts = 0;
    c->native_path = NULL; c->scan_cols = NULL; c->scan_pred = NULL; c->pred = NULL;
    c->csv_range = NULL;
    c->exprs = NULL; c->names = NULL; c->keys = NULL; c->key_names = NULL; c->aggs = NULL;
    c->desc = NULL; c->lkeys = NULL; c->rkeys = NULL; c->rn_name = NULL; c->part_keys = NULL;
    pt_status st = pt_schema_copy(f->schema, &c->schema, err);
    if (st == PT_OK) st = dup_strs(f->paths, f->npaths, &c->paths, err);
    if (st == PT_OK && f->csv_schema) st = pt_schema_copy(f->csv_schema, &c->csv_schema, err);
    if (st == PT_OK && f->csv_nulls)
        st = dup_strs(f->csv_nulls, count_nulls(f->csv_nulls), &c->csv_nulls, err);
    if (st == PT_OK && f->nparts) {
        c->parts = pt_calloc((size_t)f->nparts, sizeof *c->parts);
        if (!c->parts) st = pt_error_set(err, PT_ENOMEM, "out of memory");
        for (int64_t i = 0; st == PT_OK && i < f->nparts; i++) {
            st = pt_table_slice(f->parts[i], 0, f->parts[i]->nrows, &c->parts[i], err);
            if (st == PT_OK) c->nparts = i + 1;
        }
    }
    if (st == PT_OK && f->csv_range) {
        c->csv_range = pt_malloc(sizeof(int64_t) * 3 * (size_t)f->npaths);
        if (!c->csv_range) st = pt_error_set(err, PT_ENOMEM, "out of memory");
        else memcpy(c->csv_range, f->csv_range, sizeof(int64_t) * 3 * (size_t)f->npaths);
    }
    if (st == PT_OK && f->native_path && !(c->native_path = pt_strdup(f->native_path)))
        st = pt_error_set(err, PT_ENOMEM, "out of memory");
    if (st == PT_OK) st = dup_strs(f->scan_cols, f->nscan_cols, &c->scan_cols, err);
    c->scan_pred = pt_expr_ref(f->scan_pred);
    c->pred = pt_expr_ref(f->pred);
    if (st == PT_OK) st = dup_exprs(f->exprs, f->nexprs, &c->exprs, err);
    if (st == PT_OK) st = dup_strs(f->names, f->nexprs, &c->names, err);
    if (st == PT_OK) st = dup_exprs(f->keys, f->nkeys, &c->keys, err);
    if (st == PT_OK) st = dup_strs(f->key_names, f->nkeys, &c->key_names, err);
    if (st == PT_OK) st = dup_exprs(f->aggs, f->naggs, &c->aggs, err);
    int nd = f->kind == PT__N_ROWNUM ? f->nexprs : f->nkeys;
    if (st == PT_OK && f->desc) {
        c->desc = pt_malloc(sizeof(bool) * (size_t)(nd ? nd : 1));
        if (!c->desc) st = pt_error_set(err, PT_ENOMEM, "out of memory");
        else memcpy(c->desc, f->desc, sizeof(bool) * (size_t)nd);
    }
    if (st == PT_OK) st = dup_strs(f->lkeys, f->njkeys, &c->lkeys, err);
    if (st == PT_OK) st = dup_strs(f->rkeys, f->njkeys, &c->rkeys, err);
    if (st == PT_OK && f->rn_name && !(c->rn_name = pt_strdup(f->rn_name)))
        st = pt_error_set(err, PT_ENOMEM, "out of memory");
    if (st == PT_OK) st = dup_strs(f->part_keys, f->npart_keys, &c->part_keys, err);
    if (st == PT_OK) {
        c->csv.schema = c->csv_schema;
        c->csv.null_values = (const char *const *)c->csv_nulls;
        c->csv.columns = NULL;
        c->csv.ncolumns = 0;
    }
    if (st != PT_OK) {
        pt_frame_free(c);
        return st;
    }
    *out = c;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Schema helpers                                                           */
/* ------------------------------------------------------------------------ */

/* Builds a schema from names and types (names copied). */
static pt_status make_schema(int n, char *const *names, const pt_type *types, pt_schema **out,
                             pt_error *err) {
    return pt_schema_new(n, (const char *const *)names, types, out, err);
}

/* "a, b, c" list of a schema's names, for error messages. */
static const char *schema_names(const pt_schema *s, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->nfields && len + 4 < cap; i++) {
        int n = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", s->fields[i].name);
        if (n < 0) break;
        len += (size_t)n;
        if (len >= cap) {
            len = cap - 1;
            break;
        }
    }
    return buf;
}

static pt_status find_column(const pt_schema *s, const char *name, const char *what, int *pos,
                             pt_error *err) {
    int i = pt_schema_find(s, name);
    if (i < 0) {
        char buf[600];
        return pt_error_set(err, PT_EINVAL, "%s: unknown column '%s'; available columns: %s", what,
                            name, schema_names(s, buf, sizeof buf));
    }
    *pos = i;
    return PT_OK;
}

/* Type of `e` over `in` (binding checks columns and types). */
static pt_status expr_type(const pt_expr *e, const pt_schema *in, pt_type *t, pt_error *err) {
    pt__bound *b;
    PT_RETURN_NOT_OK(pt__expr_bind(e, in, &b, err));
    *t = pt__bound_type(b);
    pt__bound_free(b);
    return PT_OK;
}

/* Result type of an aggregate over an argument of type `arg`. */
static pt_type agg_type(pt_agg_kind k, pt_type arg) {
    switch (k) {
    case PT_AGG_COUNT:
    case PT_AGG_COUNT_STAR:
    case PT_AGG_COUNT_DISTINCT: return PT_TYPE_INT64;
    case PT_AGG_SUM:
        return (arg == PT_TYPE_FLOAT32 || arg == PT_TYPE_FLOAT64) ? PT_TYPE_FLOAT64 : PT_TYPE_INT64;
    case PT_AGG_MEAN:
    case PT_AGG_STD:
    case PT_AGG_VAR:
    case PT_AGG_MEDIAN:
    case PT_AGG_CORR: return PT_TYPE_FLOAT64;
    default: return arg;
    }
}

static void free_node_inputs_on_error(pt_frame *node) { pt_frame_free(node); }

/* ------------------------------------------------------------------------ */
/* Sources                                                                  */
/* ------------------------------------------------------------------------ */

static bool has_glob_chars(const char *p) { return strpbrk(p, "*?[") != NULL; }

pt_status pt_frame_read_csv(pt_ctx *ctx, const char *path_or_glob, const pt_csv_opts *opts,
                            pt_frame **out, pt_error *err) {
    *out = NULL;
    if (!ctx || !path_or_glob)
        return pt_error_set(err, PT_EINVAL, "pt_frame_read_csv: ctx and path are required");
    pt_frame *f = NULL;
    PT_RETURN_NOT_OK(pt__node_new(ctx, PT__N_SCAN_CSV, &f, err));
    pt_status st = PT_OK;
    if (has_glob_chars(path_or_glob)) {
        glob_t g;
        int rc = glob(path_or_glob, 0, NULL, &g);
        if (rc != 0 || g.gl_pathc == 0) {
            if (rc == 0) globfree(&g);
            pt_frame_free(f);
            return pt_error_set(err, PT_ENOENT, "%s: no file matches this pattern", path_or_glob);
        }
        st = dup_strs(g.gl_pathv, (int)g.gl_pathc, &f->paths, err);
        f->npaths = (int)g.gl_pathc;
        globfree(&g);
    } else {
        char *p = (char *)path_or_glob;
        st = dup_strs(&p, 1, &f->paths, err);
        f->npaths = 1;
    }
    if (st != PT_OK) {
        pt_frame_free(f);
        return st;
    }
    if (opts) {
        f->csv = *opts;
    } else {
        pt_csv_opts_init(&f->csv);
    }
    f->csv.columns = NULL;
    f->csv.ncolumns = 0;
    if (opts && opts->schema) st = pt_schema_copy(opts->schema, &f->csv_schema, err);
    if (st == PT_OK && opts && opts->null_values) {
        int n = 0;
        while (opts->null_values[n]) n++;
        st = dup_strs((char *const *)opts->null_values, n, &f->csv_nulls, err);
    }
    f->csv.schema = f->csv_schema;
    f->csv.null_values = (const char *const *)f->csv_nulls;
    if (st != PT_OK) {
        pt_frame_free(f);
        return st;
    }
    /* The schema comes from the first file's sample; projection of other
     * columns (opts->columns) is honoured by projecting after the scan. */
    pt_csv_reader *r;
    st = pt_csv_open(ctx, f->paths[0], &f->csv, &r, err);
    if (st == PT_OK) {
        st = pt_schema_copy(pt_csv_reader_schema(r), &f->schema, err);
        pt_csv_close(r);
    }
    if (st != PT_OK) {
        pt_frame_free(f);
        return st;
    }
    if (opts && opts->columns && opts->ncolumns > 0) {
        pt_expr **cols = pt_calloc((size_t)opts->ncolumns, sizeof *cols);
        if (!cols) {
            pt_frame_free(f);
            return pt_error_set(err, PT_ENOMEM, "out of memory");
        }
        for (int i = 0; i < opts->ncolumns; i++) cols[i] = pt_col(opts->columns[i]);
        pt_frame *p = NULL;
        st = pt_frame_select(f, opts->ncolumns, cols, &p, err);
        pt_free(cols);
        pt_frame_free(f);
        if (st != PT_OK) return st;
        f = p;
    }
    *out = f;
    return PT_OK;
}

pt_status pt_frame_from_table(pt_ctx *ctx, const pt_table *t, int64_t npartitions, pt_frame **out,
                              pt_error *err) {
    *out = NULL;
    if (!ctx || !t) return pt_error_set(err, PT_EINVAL, "pt_frame_from_table: ctx and table are required");
    if (npartitions <= 0) npartitions = pt_ctx_threads(ctx);
    if (npartitions > t->nrows) npartitions = t->nrows > 0 ? t->nrows : 1;
    pt_frame *f = NULL;
    PT_RETURN_NOT_OK(pt__node_new(ctx, PT__N_SCAN_TABLE, &f, err));
    pt_status st = pt_schema_copy(t->schema, &f->schema, err);
    if (st == PT_OK) {
        f->parts = pt_calloc((size_t)npartitions, sizeof *f->parts);
        if (!f->parts) st = pt_error_set(err, PT_ENOMEM, "out of memory");
    }
    for (int64_t i = 0; st == PT_OK && i < npartitions; i++) {
        int64_t lo = t->nrows * i / npartitions, hi = t->nrows * (i + 1) / npartitions;
        st = pt_table_slice(t, lo, hi - lo, &f->parts[i], err);
        if (st == PT_OK) f->nparts = i + 1;
    }
    if (st != PT_OK) {
        pt_frame_free(f);
        return st;
    }
    *out = f;
    return PT_OK;
}

pt_status pt_frame_from_arrays(pt_ctx *ctx, int ncols, const char *const *names,
                               const pt_type *types, const void *const *data, int64_t nrows,
                               int64_t npartitions, pt_frame **out, pt_error *err) {
    *out = NULL;
    if (!ctx || ncols <= 0 || !names || !types || !data || nrows < 0)
        return pt_error_set(err, PT_EINVAL, "pt_frame_from_arrays: invalid arguments");
    pt_mem *mem = pt_ctx_mem(ctx);
    pt_column **cols = pt_calloc((size_t)ncols, sizeof *cols);
    if (!cols) return pt_error_set(err, PT_ENOMEM, "out of memory");
    pt_status st = PT_OK;
    int built = 0;
    for (int j = 0; st == PT_OK && j < ncols; j++) {
        pt_type t = types[j];
        int64_t bytes = 0;
        if (t == PT_TYPE_UTF8) {
            const char *const *s = data[j];
            for (int64_t i = 0; i < nrows; i++) bytes += s[i] ? (int64_t)strlen(s[i]) : 0;
        } else if (t != PT_TYPE_INT32 && t != PT_TYPE_INT64 && t != PT_TYPE_FLOAT32 &&
                   t != PT_TYPE_FLOAT64) {
            st = pt_error_set(err, PT_EUNSUPPORTED,
                              "pt_frame_from_arrays: column '%s': type %s is not supported from "
                              "C arrays (use int32, int64, float32, float64 or utf8)",
                              names[j], pt_type_name(t));
            break;
        }
        st = pt_column_new(mem, t, nrows, bytes, &cols[j], err);
        if (st != PT_OK) break;
        built = j + 1;
        for (int64_t i = 0; st == PT_OK && i < nrows; i++) {
            switch (t) {
            case PT_TYPE_INT32: st = pt_column_append_i32(cols[j], ((const int32_t *)data[j])[i], err); break;
            case PT_TYPE_INT64: st = pt_column_append_i64(cols[j], ((const int64_t *)data[j])[i], err); break;
            case PT_TYPE_FLOAT32: st = pt_column_append_f32(cols[j], ((const float *)data[j])[i], err); break;
            case PT_TYPE_FLOAT64: st = pt_column_append_f64(cols[j], ((const double *)data[j])[i], err); break;
            default: {
                const char *s = ((const char *const *)data[j])[i];
                st = s ? pt_column_append_str(cols[j], s, (int64_t)strlen(s), err)
                       : pt_column_append_null(cols[j], err);
            }
            }
        }
    }
    if (st != PT_OK) {
        for (int j = 0; j < built; j++) pt_column_release(cols[j]);
        pt_free(cols);
        return st;
    }
    pt_schema *s;
    st = pt_schema_new(ncols, names, types, &s, err);
    pt_table *t = NULL;
    if (st == PT_OK) {
        st = pt_table_new(s, cols, &t, err);
    } else {
        for (int j = 0; j < ncols; j++) pt_column_release(cols[j]);
    }
    pt_free(cols);
    if (st != PT_OK) return st;
    st = pt_frame_from_table(ctx, t, npartitions, out, err);
    pt_table_free(t);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Operations                                                               */
/* ------------------------------------------------------------------------ */

/* Starts a unary node over `in`. */
static pt_status unary_node(pt_frame *in, pt__node_kind kind, pt_frame **out, pt_error *err) {
    if (!in) return pt_error_set(err, PT_EINVAL, "%s: input frame is NULL", pt__node_name(kind));
    PT_RETURN_NOT_OK(pt__node_new(in->ctx, kind, out, err));
    (*out)->in[0] = pt_frame_ref(in);
    return PT_OK;
}

pt_status pt_frame_filter(pt_frame *f, pt_expr *pred, pt_frame **out, pt_error *err) {
    *out = NULL;
    if (!pred) return pt_error_set(err, PT_ENOMEM, "filter: predicate missing (out of memory?)");
    pt_frame *n = NULL;
    pt_status st = unary_node(f, PT__N_FILTER, &n, err);
    if (st != PT_OK) {
        pt_expr_free(pred);
        return st;
    }
    n->pred = pred;
    pt_type t;
    st = expr_type(pred, f->schema, &t, err);
    if (st == PT_OK && t != PT_TYPE_BOOL && t != PT_TYPE_NULL) {
        char buf[256];
        st = pt_error_set(err, PT_ETYPE, "filter: predicate '%s' is %s, not bool",
                          pt_expr_to_string(pred, buf, sizeof buf), pt_type_name(t));
    }
    if (st == PT_OK) st = pt_schema_copy(f->schema, &n->schema, err);
    if (st != PT_OK) {
        free_node_inputs_on_error(n);
        return pt_error_prefix(err, "filter");
    }
    *out = n;
    return PT_OK;
}

pt_status pt_frame_select(pt_frame *f, int n, pt_expr **exprs, pt_frame **out, pt_error *err) {
    *out = NULL;
    pt_frame *p = NULL;
    pt_status st = unary_node(f, PT__N_PROJECT, &p, err);
    if (st == PT_OK && n <= 0) st = pt_error_set(err, PT_EINVAL, "select: no columns given");
    if (st == PT_OK) {
        p->exprs = pt_calloc((size_t)n, sizeof *p->exprs);
        p->names = pt_calloc((size_t)n, sizeof *p->names);
        if (!p->exprs || !p->names) st = pt_error_set(err, PT_ENOMEM, "out of memory");
    }
    if (st != PT_OK) {
        for (int i = 0; i < n; i++) pt_expr_free(exprs[i]);
        pt_frame_free(p);
        return st;
    }
    p->nexprs = n;
    for (int i = 0; i < n; i++) p->exprs[i] = exprs[i];
    pt_type *types = pt_malloc(sizeof(pt_type) * (size_t)n);
    if (!types) st = pt_error_set(err, PT_ENOMEM, "out of memory");
    for (int i = 0; st == PT_OK && i < n; i++) {
        if (!exprs[i]) {
            st = pt_error_set(err, PT_ENOMEM, "select: expression %d missing (out of memory?)", i + 1);
            break;
        }
        if (pt__expr_has_agg(exprs[i])) {
            char buf[256];
            st = pt_error_set(err, PT_EINVAL,
                              "select: '%s' is an aggregate; use a group-by (or a global "
                              "aggregate) for it",
                              pt_expr_to_string(exprs[i], buf, sizeof buf));
            break;
        }
        st = expr_type(exprs[i], f->schema, &types[i], err);
        char buf[256];
        if (st == PT_OK && !(p->names[i] = pt_strdup(pt__expr_output_name(exprs[i], buf, sizeof buf))))
            st = pt_error_set(err, PT_ENOMEM, "out of memory");
    }
    for (int i = 0; st == PT_OK && i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(p->names[i], p->names[j]) == 0) {
                st = pt_error_set(err, PT_EINVAL,
                                  "select: output column name '%s' appears twice (use an alias)",
                                  p->names[i]);
                break;
            }
    if (st == PT_OK) st = make_schema(n, p->names, types, &p->schema, err);
    pt_free(types);
    if (st != PT_OK) {
        pt_frame_free(p);
        return st;
    }
    *out = p;
    return PT_OK;
}

pt_status pt_frame_with_column(pt_frame *f, const char *name, pt_expr *e, pt_frame **out,
                               pt_error *err) {
    *out = NULL;
    if (!f || !name || !e) {
        pt_expr_free(e);
        return pt_error_set(err, PT_EINVAL, "with_column: frame, name and expression are required");
    }
    int n = f->schema->nfields;
    int at = pt_schema_find(f->schema, name);
    int total = at >= 0 ? n : n + 1;
    pt_expr **ex = pt_calloc((size_t)total, sizeof *ex);
    if (!ex) {
        pt_expr_free(e);
        return pt_error_set(err, PT_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) ex[i] = pt_col(f->schema->fields[i].name);
    if (at >= 0) {
        pt_expr_free(ex[at]);
        ex[at] = pt_alias(e, name);
    } else {
        ex[n] = pt_alias(e, name);
    }
    pt_status st = pt_frame_select(f, total, ex, out, err);
    pt_free(ex);
    return st;
}

pt_status pt_frame_groupby(pt_frame *f, int nkeys, pt_expr **keys, int naggs, pt_expr **aggs,
                           pt_frame **out, pt_error *err) {
    *out = NULL;
    pt_frame *g = NULL;
    pt_status st = unary_node(f, PT__N_AGG, &g, err);
    if (st != PT_OK || nkeys < 0 || naggs < 0 || (nkeys == 0 && naggs == 0)) {
        for (int i = 0; i < nkeys; i++) pt_expr_free(keys[i]);
        for (int i = 0; i < naggs; i++) pt_expr_free(aggs[i]);
        pt_frame_free(g);
        return st != PT_OK ? st
                           : pt_error_set(err, PT_EINVAL, "groupby: give keys and/or aggregates");
    }
    g->nkeys = nkeys;
    g->keys = pt_calloc((size_t)(nkeys ? nkeys : 1), sizeof *g->keys);
    g->key_names = pt_calloc((size_t)(nkeys ? nkeys : 1), sizeof *g->key_names);
    g->nexprs = naggs;
    g->exprs = pt_calloc((size_t)(naggs ? naggs : 1), sizeof *g->exprs);
    g->names = pt_calloc((size_t)(naggs ? naggs : 1), sizeof *g->names);
    if (!g->keys || !g->key_names || !g->exprs || !g->names) {
        for (int i = 0; i < nkeys; i++) pt_expr_free(keys[i]);
        for (int i = 0; i < naggs; i++) pt_expr_free(aggs[i]);
        g->nkeys = g->nexprs = 0;
        pt_frame_free(g);
        return pt_error_set(err, PT_ENOMEM, "out of memory");
    }
    for (int i = 0; i < nkeys; i++) g->keys[i] = keys[i];
    int total = nkeys + naggs;
    pt_type *types = pt_calloc((size_t)total + 1, sizeof *types);
    char **names = pt_calloc((size_t)total + 1, sizeof *names);
    if (!types || !names) st = pt_error_set(err, PT_ENOMEM, "out of memory");
    /* Keys: expressions over the input, no aggregates. */
    for (int i = 0; st == PT_OK && i < nkeys; i++) {
        char buf[256];
        if (!keys[i]) {
            st = pt_error_set(err, PT_ENOMEM, "groupby: key %d missing", i + 1);
            break;
        }
        if (pt__expr_has_agg(keys[i])) {
            st = pt_error_set(err, PT_EINVAL, "groupby: key '%s' contains an aggregate",
                              pt_expr_to_string(keys[i], buf, sizeof buf));
            break;
        }
        st = expr_type(keys[i], f->schema, &types[i], err);
        if (st == PT_OK && !(g->key_names[i] = pt_strdup(pt__expr_output_name(keys[i], buf, sizeof buf))))
            st = pt_error_set(err, PT_ENOMEM, "out of memory");
        if (st == PT_OK) names[i] = g->key_names[i];
    }
    /* Aggregates: extract the aggregate calls, then type the rest over
     * [keys, __agg0, ...]. */
    int cap = 0;
    for (int i = 0; st == PT_OK && i < naggs; i++) {
        char buf[256];
        if (!aggs[i]) {
            st = pt_error_set(err, PT_ENOMEM, "groupby: aggregate %d missing", i + 1);
            break;
        }
        if (!(g->names[i] = pt_strdup(pt__expr_output_name(aggs[i], buf, sizeof buf)))) {
            st = pt_error_set(err, PT_ENOMEM, "out of memory");
            break;
        }
        pt_expr *rw = NULL;
        st = pt__expr_extract_aggs(aggs[i], &g->aggs, &g->naggs, &cap, &rw, err);
        if (st != PT_OK) break;
        /* Key expressions used inside aggregate expressions become refs. */
        pt_expr *rw2 = rw;
        if (nkeys > 0) {
            st = pt__expr_replace(rw, (pt_expr *const *)g->keys, (const char *const *)g->key_names,
                                  nkeys, &rw2, err);
            pt_expr_free(rw);
            if (st != PT_OK) break;
        }
        g->exprs[i] = rw2;
        names[nkeys + i] = g->names[i];
    }
    for (int i = 0; i < naggs; i++) pt_expr_free(aggs[i]);
    /* Types of the aggregate calls over the input. */
    pt_schema *mid = NULL;
    if (st == PT_OK) {
        int nm = nkeys + g->naggs;
        pt_type *mt = pt_calloc((size_t)nm + 1, sizeof *mt);
        char **mn = pt_calloc((size_t)nm + 1, sizeof *mn);
        if (!mt || !mn) st = pt_error_set(err, PT_ENOMEM, "out of memory");
        for (int i = 0; st == PT_OK && i < nkeys; i++) {
            mt[i] = types[i];
            mn[i] = g->key_names[i];
        }
        char aname[32];
        for (int a = 0; st == PT_OK && a < g->naggs; a++) {
            const pt_expr *ag = g->aggs[a];
            pt_type at = PT_TYPE_INT64;
            if (ag->nargs > 0 && ag->args[0]) {
                st = expr_type(ag->args[0], f->schema, &at, err);
                if (st == PT_OK && ag->nargs > 1 && ag->args[1])
                    st = expr_type(ag->args[1], f->schema, &at, err);
                if (st == PT_OK && ag->nargs > 0) st = expr_type(ag->args[0], f->schema, &at, err);
            }
            if (st == PT_OK) {
                bool numeric = pt_type_is_numeric(at) || at == PT_TYPE_BOOL || at == PT_TYPE_NULL;
                pt_agg_kind k = ag->agg;
                if (!numeric && k != PT_AGG_COUNT && k != PT_AGG_COUNT_STAR &&
                    k != PT_AGG_COUNT_DISTINCT && k != PT_AGG_MIN && k != PT_AGG_MAX &&
                    k != PT_AGG_FIRST && k != PT_AGG_LAST) {
                    char buf[256];
                    st = pt_error_set(err, PT_ETYPE, "groupby: '%s' needs a numeric argument, not %s",
                                      pt_expr_to_string(ag, buf, sizeof buf), pt_type_name(at));
                }
            }
            mt[nkeys + a] = agg_type(ag->agg, at == PT_TYPE_DICT ? PT_TYPE_UTF8 : at);
            snprintf(aname, sizeof aname, "__agg%d", a);
            if (st == PT_OK && !(mn[nkeys + a] = pt_strdup(aname)))
                st = pt_error_set(err, PT_ENOMEM, "out of memory");
        }
        if (st == PT_OK) st = make_schema(nm, mn, mt, &mid, err);
        for (int a = 0; mn && a < g->naggs; a++) pt_free(mn[nkeys + a]);
        pt_free(mt);
        pt_free(mn);
    }
    for (int i = 0; st == PT_OK && i < naggs; i++) st = expr_type(g->exprs[i], mid, &types[nkeys + i], err);
    for (int i = 0; st == PT_OK && i < total; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) {
                st = pt_error_set(err, PT_EINVAL,
                                  "groupby: output column name '%s' appears twice (use an alias)",
                                  names[i]);
                break;
            }
    if (st == PT_OK) st = make_schema(total, names, types, &g->schema, err);
    pt_schema_free(mid);
    pt_free(types);
    pt_free(names);
    if (st != PT_OK) {
        pt_frame_free(g);
        return st;
    }
    *out = g;
    return PT_OK;
}

pt_status pt_frame_agg1(pt_frame *f, pt_agg_kind kind, const char *column, pt_frame **out,
                        pt_error *err) {
    pt_expr *a = pt_agg(kind, kind == PT_AGG_COUNT_STAR ? NULL : pt_col(column), NULL);
    return pt_frame_groupby(f, 0, NULL, 1, &a, out, err);
}

pt_status pt_frame_sort(pt_frame *f, int nkeys, pt_expr **keys, const bool *desc, pt_frame **out,
                        pt_error *err) {
    *out = NULL;
    pt_frame *s = NULL;
    pt_status st = unary_node(f, PT__N_SORT, &s, err);
    if (st == PT_OK && nkeys <= 0) st = pt_error_set(err, PT_EINVAL, "sort: no keys given");
    if (st == PT_OK) {
        s->keys = pt_calloc((size_t)nkeys, sizeof *s->keys);
        s->desc = pt_calloc((size_t)nkeys, sizeof *s->desc);
        if (!s->keys || !s->desc) st = pt_error_set(err, PT_ENOMEM, "out of memory");
    }
    if (st != PT_OK) {
        for (int i = 0; i < nkeys; i++) pt_expr_free(keys[i]);
        pt_frame_free(s);
        return st;
    }
    s->nkeys = nkeys;
    for (int i = 0; i < nkeys; i++) {
        s->keys[i] = keys[i];
        s->desc[i] = desc ? desc[i] : false;
    }
    for (int i = 0; st == PT_OK && i < nkeys; i++) {
        pt_type t;
        if (!keys[i]) st = pt_error_set(err, PT_ENOMEM, "sort: key %d missing", i + 1);
        else st = expr_type(keys[i], f->schema, &t, err);
    }
    if (st == PT_OK) st = pt_schema_copy(f->schema, &s->schema, err);
    if (st != PT_OK) {
        pt_frame_free(s);
        return pt_error_prefix(err, "sort");
    }
    *out = s;
    return PT_OK;
}

pt_status pt_frame_limit(pt_frame *f, int64_t n, int64_t offset, pt_frame **out, pt_error *err) {
    *out = NULL;
    if (n < 0 || offset < 0)
        return pt_error_set(err, PT_EINVAL, "limit: n (%lld) and offset (%lld) must be >= 0",
                            (long long)n, (long long)offset);
    pt_frame *l = NULL;
    PT_RETURN_NOT_OK(unary_node(f, PT__N_LIMIT, &l, err));
    l->limit = n;
    l->offset = offset;
    pt_status st = pt_schema_copy(f->schema, &l->schema, err);
    if (st != PT_OK) {
        pt_frame_free(l);
        return st;
    }
    *out = l;
    return PT_OK;
}

pt_status pt_frame_distinct(pt_frame *f, pt_frame **out, pt_error *err) {
    *out = NULL;
    pt_frame *d = NULL;
    PT_RETURN_NOT_OK(unary_node(f, PT__N_DISTINCT, &d, err));
    pt_status st = pt_schema_copy(f->schema, &d->schema, err);
    if (st != PT_OK) {
        pt_frame_free(d);
        return st;
    }
    *out = d;
    return PT_OK;
}

pt_status pt_frame_join(pt_frame *left, pt_frame *right, pt_join_type type, int nkeys,
                        const char *const *lkeys, const char *const *rkeys, pt_frame **out,
                        pt_error *err) {
    *out = NULL;
    if (!left || !right || nkeys <= 0 || !lkeys || !rkeys)
        return pt_error_set(err, PT_EINVAL, "join: two frames and at least one key are required");
    if (left->ctx != right->ctx)
        return pt_error_set(err, PT_EINVAL, "join: both frames must belong to the same context");
    const pt_schema *ls = left->schema, *rs = right->schema;
    for (int i = 0; i < nkeys; i++) {
        int a = 0, b = 0;
        PT_RETURN_NOT_OK(find_column(ls, lkeys[i], "join (left key)", &a, err));
        PT_RETURN_NOT_OK(find_column(rs, rkeys[i], "join (right key)", &b, err));
        pt_type ta = ls->fields[a].type, tb = rs->fields[b].type;
        bool text = pt_type_is_string(ta) && pt_type_is_string(tb);
        bool ints = (ta == PT_TYPE_INT32 || ta == PT_TYPE_INT64) &&
                    (tb == PT_TYPE_INT32 || tb == PT_TYPE_INT64);
        if (!(ta == tb || text || ints))
            return pt_error_set(err, PT_ETYPE,
                                "join: key types differ: left '%s' is %s, right '%s' is %s "
                                "(cast one side)",
                                lkeys[i], pt_type_name(ta), rkeys[i], pt_type_name(tb));
    }
    pt_frame *j = NULL;
    PT_RETURN_NOT_OK(pt__node_new(left->ctx, PT__N_JOIN, &j, err));
    j->in[0] = pt_frame_ref(left);
    j->in[1] = pt_frame_ref(right);
    j->join_type = type;
    j->njkeys = nkeys;
    pt_status st = dup_strs((char *const *)lkeys, nkeys, &j->lkeys, err);
    if (st == PT_OK) st = dup_strs((char *const *)rkeys, nkeys, &j->rkeys, err);
    int n = ls->nfields + rs->nfields;
    char **names = pt_calloc((size_t)n, sizeof *names);
    pt_type *types = pt_calloc((size_t)n, sizeof *types);
    if (st == PT_OK && (!names || !types)) st = pt_error_set(err, PT_ENOMEM, "out of memory");
    for (int i = 0; st == PT_OK && i < n; i++) {
        const pt_field *fd = i < ls->nfields ? &ls->fields[i] : &rs->fields[i - ls->nfields];
        types[i] = fd->type;
        size_t len = strlen(fd->name);
        names[i] = pt_malloc(len + 16);
        if (!names[i]) {
            st = pt_error_set(err, PT_ENOMEM, "out of memory");
            break;
        }
        memcpy(names[i], fd->name, len + 1);
        /* A right column whose name is taken gets "_right" (repeatedly). */
        for (bool clash = true; clash && i >= ls->nfields;) {
            clash = false;
            for (int k = 0; k < i; k++)
                if (strcmp(names[k], names[i]) == 0) clash = true;
            if (clash) {
                size_t l2 = strlen(names[i]);
                if (l2 + 7 > len + 15) {
                    char *bigger = pt_realloc(names[i], l2 + 16);
                    if (!bigger) {
                        st = pt_error_set(err, PT_ENOMEM, "out of memory");
                        break;
                    }
                    names[i] = bigger;
                    len = l2;
                }
                strcat(names[i], "_right");
            }
        }
    }
    if (st == PT_OK) st = make_schema(n, names, types, &j->schema, err);
    for (int i = 0; names && i < n; i++) pt_free(names[i]);
    pt_free(names);
    pt_free(types);
    if (st != PT_OK) {
        pt_frame_free(j);
        return st;
    }
    *out = j;
    return PT_OK;
}

pt_status pt_frame_union(pt_frame *a, pt_frame *b, pt_frame **out, pt_error *err) {
    *out = NULL;
    if (!a || !b) return pt_error_set(err, PT_EINVAL, "union: two frames are required");
    const pt_schema *sa = a->schema, *sb = b->schema;
    if (sa->nfields != sb->nfields)
        return pt_error_set(err, PT_EINVAL, "union: %d columns on the left, %d on the right",
                            sa->nfields, sb->nfields);
    for (int i = 0; i < sa->nfields; i++) {
        pt_type ta = sa->fields[i].type, tb = sb->fields[i].type;
        if (strcmp(sa->fields[i].name, sb->fields[i].name) != 0)
            return pt_error_set(err, PT_EINVAL, "union: column %d is '%s' on the left, '%s' on the right",
                                i + 1, sa->fields[i].name, sb->fields[i].name);
        if (!(ta == tb || (pt_type_is_string(ta) && pt_type_is_string(tb))))
            return pt_error_set(err, PT_ETYPE, "union: column '%s' is %s on the left, %s on the right",
                                sa->fields[i].name, pt_type_name(ta), pt_type_name(tb));
    }
    pt_frame *u = NULL;
    PT_RETURN_NOT_OK(pt__node_new(a->ctx, PT__N_UNION, &u, err));
    u->in[0] = pt_frame_ref(a);
    u->in[1] = pt_frame_ref(b);
    pt_status st = pt_schema_copy(sa, &u->schema, err);
    if (st != PT_OK) {
        pt_frame_free(u);
        return st;
    }
    *out = u;
    return PT_OK;
}

pt_status pt_frame_row_number(pt_frame *f, const char *name, int npkeys, pt_expr **pkeys,
                              int nokeys, pt_expr **okeys, const bool *desc, pt_frame **out,
                              pt_error *err) {
    *out = NULL;
    pt_frame *r = NULL;
    pt_status st = unary_node(f, PT__N_ROWNUM, &r, err);
    if (st == PT_OK) {
        r->keys = pt_calloc((size_t)npkeys + 1, sizeof *r->keys);
        r->exprs = pt_calloc((size_t)nokeys + 1, sizeof *r->exprs);
        r->desc = pt_calloc((size_t)nokeys + 1, sizeof *r->desc);
        r->rn_name = pt_strdup(name ? name : "row_number");
        if (!r->keys || !r->exprs || !r->desc || !r->rn_name)
            st = pt_error_set(err, PT_ENOMEM, "out of memory");
    }
    if (st != PT_OK) {
        for (int i = 0; i < npkeys; i++) pt_expr_free(pkeys[i]);
        for (int i = 0; i < nokeys; i++) pt_expr_free(okeys[i]);
        pt_frame_free(r);
        return st;
    }
    r->nkeys = npkeys;
    r->nexprs = nokeys;
    for (int i = 0; i < npkeys; i++) r->keys[i] = pkeys[i];
    for (int i = 0; i < nokeys; i++) {
        r->exprs[i] = okeys[i];
        r->desc[i] = desc ? desc[i] : false;
    }
    pt_type t;
    for (int i = 0; st == PT_OK && i < npkeys; i++)
        st = r->keys[i] ? expr_type(r->keys[i], f->schema, &t, err)
                        : pt_error_set(err, PT_ENOMEM, "out of memory");
    for (int i = 0; st == PT_OK && i < nokeys; i++)
        st = r->exprs[i] ? expr_type(r->exprs[i], f->schema, &t, err)
                         : pt_error_set(err, PT_ENOMEM, "out of memory");
    if (st == PT_OK && pt_schema_find(f->schema, r->rn_name) >= 0)
        st = pt_error_set(err, PT_EINVAL, "row_number: column '%s' already exists", r->rn_name);
    if (st == PT_OK) {
        int n = f->schema->nfields;
        char **names = pt_calloc((size_t)n + 1, sizeof *names);
        pt_type *types = pt_calloc((size_t)n + 1, sizeof *types);
        if (!names || !types) st = pt_error_set(err, PT_ENOMEM, "out of memory");
        for (int i = 0; st == PT_OK && i < n; i++) {
            names[i] = f->schema->fields[i].name;
            types[i] = f->schema->fields[i].type;
        }
        if (st == PT_OK) {
            names[n] = r->rn_name;
            types[n] = PT_TYPE_INT64;
            st = make_schema(n + 1, names, types, &r->schema, err);
        }
        pt_free(names);
        pt_free(types);
    }
    if (st != PT_OK) {
        pt_frame_free(r);
        return pt_error_prefix(err, "row_number");
    }
    *out = r;
    return PT_OK;
}

pt_status pt_frame_repartition(pt_frame *f, pt_partitioning how, int64_t n, int nkeys,
                               const char *const *keys, pt_frame **out, pt_error *err) {
    *out = NULL;
    if (n <= 0) return pt_error_set(err, PT_EINVAL, "repartition: n must be > 0 (got %lld)", (long long)n);
    if ((how == PT_PART_HASH || how == PT_PART_RANGE) && nkeys <= 0)
        return pt_error_set(err, PT_EINVAL, "repartition: hash and range partitioning need keys");
    if (how == PT_PART_RANGE && nkeys != 1)
        return pt_error_set(err, PT_EINVAL, "repartition: range partitioning takes one key");
    if ((int)how < 0 || how > PT_PART_RANGE)
        return pt_error_set(err, PT_EINVAL, "repartition: unknown partitioning %d", (int)how);
    for (int i = 0; i < nkeys; i++) {
        int pos;
        PT_RETURN_NOT_OK(find_column(f->schema, keys[i], "repartition", &pos, err));
    }
    pt_frame *r = NULL;
    PT_RETURN_NOT_OK(unary_node(f, PT__N_REPART, &r, err));
    r->part_how = how;
    r->part_n = n;
    r->npart_keys = nkeys;
    pt_status st = dup_strs((char *const *)keys, nkeys, &r->part_keys, err);
    if (st == PT_OK) st = pt_schema_copy(f->schema, &r->schema, err);
    if (st != PT_OK) {
        pt_frame_free(r);
        return st;
    }
    *out = r;
    return PT_OK;
}

pt_status pt_frame_split_columns(pt_frame *f, int n, pt_frame **outs, pt_error *err) {
    if (!f || n <= 0 || n > f->schema->nfields)
        return pt_error_set(err, PT_EINVAL,
                            "split_columns: n must be between 1 and the %d columns of the frame",
                            f ? f->schema->nfields : 0);
    int nf = f->schema->nfields;
    /* Greedy by width: columns in order, a new group when the running width
     * passes the next multiple of total/n (keeps column order). */
    double total = 0;
    for (int i = 0; i < nf; i++) {
        int w = pt_type_width(f->schema->fields[i].type);
        total += w > 0 ? w : 16; /* text: a typical 16 bytes per value */
    }
    int start = 0;
    double acc = 0;
    for (int g = 0; g < n; g++) {
        int end = start;
        double target = total * (g + 1) / n;
        do {
            int w = pt_type_width(f->schema->fields[end].type);
            acc += w > 0 ? w : 16;
            end++;
        } while (end < nf - (n - g - 1) && acc < target);
        if (g == n - 1) end = nf;
        int m = end - start;
        pt_expr **ex = pt_calloc((size_t)m, sizeof *ex);
        if (!ex) {
            for (int k = 0; k < g; k++) pt_frame_free(outs[k]);
            return pt_error_set(err, PT_ENOMEM, "out of memory");
        }
        for (int k = 0; k < m; k++) ex[k] = pt_col(f->schema->fields[start + k].name);
        pt_status st = pt_frame_select(f, m, ex, &outs[g], err);
        pt_free(ex);
        if (st != PT_OK) {
            for (int k = 0; k < g; k++) pt_frame_free(outs[k]);
            return st;
        }
        start = end;
    }
    return PT_OK;
}

pt_status pt_frame_read_native(pt_ctx *ctx, const char *path, pt_frame **out, pt_error *err) {
    *out = NULL;
    if (!ctx || !path) return pt_error_set(err, PT_EINVAL, "pt_frame_read_native: ctx and path are required");
    pt_native_reader *r;
    PT_RETURN_NOT_OK(pt_native_open_read(pt_ctx_mem(ctx), path, &r, err));
    pt_frame *f = NULL;
    pt_status st = pt__node_new(ctx, PT__N_SCAN_NATIVE, &f, err);
    if (st == PT_OK) st = pt_schema_copy(pt_native_schema(r), &f->schema, err);
    if (st == PT_OK && !(f->native_path = pt_strdup(path))) st = pt_error_set(err, PT_ENOMEM, "out of memory");
    pt_native_close_read(r);
    if (st != PT_OK) {
        pt_frame_free(f);
        return st;
    }
    *out = f;
    return PT_OK;
}
