/*
 * plan_exec.c - runs an optimised plan as a pull-based pipeline.
 *
 * Every operator is a stream whose next() returns a batch: an array of
 * partitions that the operator above processes in parallel (one task per
 * partition on the context's pool). Scans produce batches (an in-memory
 * table: all its partitions at once; a CSV file: one parse batch at a time,
 * cut into row slices), streaming operators (filter, project, limit, union)
 * map batches to batches, and blocking operators (aggregate, sort, join,
 * row number, repartition, distinct) consume their input and then hand out
 * their result. Group-by and sort consume through their streaming kernels,
 * which spill to disk when the memory budget is reached, so a CSV larger
 * than memory flows through in bounded memory.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "col/col_internal.h"
#include "frame/expr.h"
#include "frame/groupby.h"
#include "frame/join.h"
#include "frame/plan.h"
#include "frame/sort.h"
#include "io/csv_share.h"

void pt__parts_free(pt_table **parts, int64_t n) {
    if (!parts) return;
    for (int64_t i = 0; i < n; i++) pt_table_free(parts[i]);
    pt_free(parts);
}

void pt__stream_free(pt__stream *s) {
    if (s) s->free(s);
}

static pt_status oom(pt_error *err) { return pt_error_set(err, PT_ENOMEM, "out of memory"); }

/* ------------------------------------------------------------------------ */
/* Partition helpers                                                        */
/* ------------------------------------------------------------------------ */

/* Builds a table from columns and names (takes the column references). */
static pt_status table_from(int n, pt_column **cols, char *const *names, pt_table **out,
                            pt_error *err) {
    pt_type types[1024] = {0};
    if (n > 1024) {
        for (int i = 0; i < n; i++) pt_column_release(cols[i]);
        return pt_error_set(err, PT_EUNSUPPORTED, "more than 1024 columns");
    }
    for (int i = 0; i < n; i++) types[i] = cols[i]->type;
    pt_schema *s;
    pt_status st = pt_schema_new(n, (const char *const *)names, types, &s, err);
    if (st != PT_OK) {
        for (int i = 0; i < n; i++) pt_column_release(cols[i]);
        return st;
    }
    return pt_table_new(s, cols, out, err);
}

/* Evaluates exprs over t into a new table with the given names. */
static pt_status eval_exprs(pt_ctx *ctx, const pt_table *t, pt_expr *const *exprs,
                            char *const *names, int n, pt_table **out, pt_error *err) {
    pt_column **cols = pt_calloc((size_t)n, sizeof *cols);
    if (!cols) return oom(err);
    pt_status st = PT_OK;
    int done = 0;
    for (int i = 0; i < n && st == PT_OK; i++) {
        pt__bound *b;
        st = pt__expr_bind(exprs[i], t->schema, &b, err);
        if (st != PT_OK) break;
        st = pt__expr_eval(b, t, pt_ctx_mem_soft(ctx), &cols[i], err);
        pt__bound_free(b);
        if (st == PT_OK) done = i + 1;
    }
    if (st != PT_OK) {
        for (int i = 0; i < done; i++) pt_column_release(cols[i]);
        pt_free(cols);
        return st;
    }
    st = table_from(n, cols, names, out, err);
    pt_free(cols);
    return st;
}

/* Rows of t where pred is true. */
static pt_status filter_table(pt_ctx *ctx, const pt_table *t, const pt_expr *pred, pt_table **out,
                              pt_error *err) {
    pt__bound *b;
    PT_RETURN_NOT_OK(pt__expr_bind(pred, t->schema, &b, err));
    uint8_t *mask = pt_malloc((size_t)(t->nrows ? t->nrows : 1));
    if (!mask) {
        pt__bound_free(b);
        return oom(err);
    }
    int64_t keep = 0;
    pt_status st = pt__expr_eval_mask(b, t, mask, &keep, err);
    pt__bound_free(b);
    if (st == PT_OK) {
        if (keep == t->nrows) st = pt_table_slice(t, 0, t->nrows, out, err);
        else st = pt_table_filter(pt_ctx_mem_soft(ctx), t, mask, out, err);
    }
    pt_free(mask);
    return st;
}

/* Projects t onto the fields of `s` by name (zero-copy). */
pt_status pt__select_schema(const pt_table *t, const pt_schema *s, pt_table **out,
                           pt_error *err) {
    const char *names[1024];
    int n = s->nfields < 1024 ? s->nfields : 1024;
    for (int i = 0; i < n; i++) names[i] = s->fields[i].name;
    return pt_table_select(t, names, n, out, err);
}

/* Splits one table into k row slices (zero-copy) appended to a new array. */
static pt_status split_rows(pt_table *t, int64_t k, pt_table ***parts, int64_t *n, pt_error *err) {
    if (k < 1) k = 1;
    if (k > t->nrows) k = t->nrows > 0 ? t->nrows : 1;
    pt_table **p = pt_calloc((size_t)k, sizeof *p);
    if (!p) return oom(err);
    for (int64_t i = 0; i < k; i++) {
        int64_t lo = t->nrows * i / k, hi = t->nrows * (i + 1) / k;
        pt_status st = pt_table_slice(t, lo, hi - lo, &p[i], err);
        if (st != PT_OK) {
            pt__parts_free(p, i);
            return st;
        }
    }
    *parts = p;
    *n = k;
    return PT_OK;
}

/* split_rows, then drops the caller's reference to t. */
static pt_status split_rows_owned(pt_table *t, int64_t k, pt_table ***parts, int64_t *n,
                                  pt_error *err) {
    pt_status st = split_rows(t, k, parts, n, err);
    pt_table_free(t);
    return st;
}

/* Parallel map over partitions: out[i] = fn(in[i]). */
typedef pt_status (*part_fn)(void *ud, const pt_table *in, pt_table **out, pt_error *err);
typedef struct map_job {
    part_fn fn;
    void *ud;
    pt_table **in, **out;
} map_job;

static pt_status map_task(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    (void)tc;
    map_job *m = arg;
    return m->fn(m->ud, m->in[i], &m->out[i], err);
}

/* Applies fn to each partition in parallel; frees `in` (tables and array)
 * in every case; on success *out has n tables. */
static pt_status map_parts(pt_ctx *ctx, pt_table **in, int64_t n, part_fn fn, void *ud,
                           pt_table ***out, pt_error *err) {
    *out = NULL;
    pt_table **res = pt_calloc((size_t)(n ? n : 1), sizeof *res);
    if (!res) {
        pt__parts_free(in, n);
        return oom(err);
    }
    map_job m = {fn, ud, in, res};
    pt_status st = n == 1 ? fn(ud, in[0], &res[0], err)
                          : pt_parallel_for(pt_ctx_pool(ctx), n, map_task, &m, NULL, err);
    pt__parts_free(in, n);
    if (st != PT_OK) {
        pt__parts_free(res, n);
        return st;
    }
    *out = res;
    return PT_OK;
}

/* Drops 0-row partitions (keeping the array); returns the new count. */
static int64_t drop_empty(pt_table **p, int64_t n) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (p[i]->nrows == 0) pt_table_free(p[i]);
        else p[k++] = p[i];
    }
    return k;
}

/* Casts columns so that all partitions share `schema`'s representation:
 * dictionary/utf8 mixes become utf8; numeric widening is allowed; a
 * narrowing (float values where the plan expected integers) is an error. */
static pt_status normalise(pt_ctx *ctx, pt_table *t, const pt_schema *schema, int *text_as_utf8,
                           pt_table **out, pt_error *err) {
    int n = t->schema->nfields;
    pt_column **cols = pt_calloc((size_t)(n ? n : 1), sizeof *cols);
    if (!cols) return oom(err);
    pt_status st = PT_OK;
    for (int i = 0; i < n; i++) {
        pt_column *c = t->cols[i];
        pt_type want = schema->fields[i].type;
        if (text_as_utf8[i] && c->type == PT_TYPE_DICT) want = PT_TYPE_UTF8;
        else if (pt_type_is_string(c->type) && pt_type_is_string(want)) want = c->type;
        if (c->type == want || c->type == PT_TYPE_NULL) {
            if (c->type == PT_TYPE_NULL && want != PT_TYPE_NULL) {
                st = pt_column_cast(pt_ctx_mem_soft(ctx), c, want, &cols[i], err);
            } else {
                cols[i] = pt_column_retain(c);
            }
        } else if ((want == PT_TYPE_INT64 || want == PT_TYPE_INT32) &&
                   (c->type == PT_TYPE_FLOAT64 || c->type == PT_TYPE_FLOAT32)) {
            st = pt_error_set(err, PT_ETYPE,
                              "column '%s' was typed %s from the first rows but later rows hold "
                              "decimal numbers; give an explicit schema or a larger sample",
                              schema->fields[i].name, pt_type_name(want));
        } else {
            st = pt_column_cast(pt_ctx_mem_soft(ctx), c, want, &cols[i], err);
        }
        if (st != PT_OK) {
            for (int k = 0; k < i; k++) pt_column_release(cols[k]);
            pt_free(cols);
            return st;
        }
    }
    char *names[1024];
    for (int i = 0; i < n && i < 1024; i++) names[i] = schema->fields[i].name;
    st = table_from(n, cols, names, out, err);
    pt_free(cols);
    return st;
}

pt_status pt__parts_concat(pt_ctx *ctx, pt_table *const *parts, int64_t n, const pt_schema *schema,
                           pt_table **out, pt_error *err) {
    *out = NULL;
    int nf = schema->nfields;
    if (n == 0) {
        /* An empty result still has the plan's columns. */
        pt_column **cols = pt_calloc((size_t)(nf ? nf : 1), sizeof *cols);
        if (!cols) return oom(err);
        pt_status st = PT_OK;
        for (int i = 0; i < nf && st == PT_OK; i++) {
            pt_type t = schema->fields[i].type;
            if (t == PT_TYPE_DICT) t = PT_TYPE_UTF8;
            st = pt_column_new(pt_ctx_mem_soft(ctx), t, 0, 0, &cols[i], err);
            if (st != PT_OK)
                for (int k = 0; k < i; k++) pt_column_release(cols[k]);
        }
        char *names[1024];
        for (int i = 0; i < nf && i < 1024; i++) names[i] = schema->fields[i].name;
        if (st == PT_OK) st = table_from(nf, cols, names, out, err);
        pt_free(cols);
        return st;
    }
    /* Text columns whose representation differs between partitions (or
     * whose dictionaries differ) are unified to utf8 by concat/cast. */
    int text_utf8[1024] = {0};
    for (int i = 0; i < nf && i < 1024; i++) {
        pt_type t0 = parts[0]->cols[i]->type;
        for (int64_t k = 1; k < n; k++)
            if (parts[k]->cols[i]->type != t0) text_utf8[i] = 1;
    }
    pt_table **norm = pt_calloc((size_t)n, sizeof *norm);
    if (!norm) return oom(err);
    pt_status st = PT_OK;
    for (int64_t k = 0; k < n && st == PT_OK; k++)
        st = normalise(ctx, parts[k], schema, text_utf8, &norm[k], err);
    if (st == PT_OK) {
        if (n == 1) {
            *out = norm[0];
            norm[0] = NULL;
        } else {
            /* Partitions sliced from one table go back together for free. */
            pt_column **cols = pt_calloc((size_t)(nf ? nf : 1), sizeof *cols);
            pt_column **one = pt_calloc((size_t)n, sizeof *one);
            bool ok = cols && one;
            int made = 0;
            for (int j = 0; ok && j < nf; j++) {
                for (int64_t k = 0; k < n; k++) one[k] = norm[k]->cols[j];
                ok = pt__column_rejoin(one, n, &cols[j]);
                if (ok) made = j + 1;
            }
            if (ok) {
                char *names[1024];
                for (int i = 0; i < nf && i < 1024; i++) names[i] = schema->fields[i].name;
                st = table_from(nf, cols, names, out, err);
            } else {
                for (int j = 0; j < made; j++) pt_column_release(cols[j]);
                st = pt_table_concat(pt_ctx_mem_soft(ctx), norm, (int)n, out, err);
            }
            pt_free(cols);
            pt_free(one);
        }
    }
    for (int64_t k = 0; k < n; k++) pt_table_free(norm[k]);
    pt_free(norm);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Scans                                                                    */
/* ------------------------------------------------------------------------ */

/* Per-partition work of a scan: pushed predicate, then the fused projection
 * or the column selection of the (pruned) output schema. */
static pt_status scan_part(void *ud, const pt_table *in, pt_table **out, pt_error *err) {
    pt_frame *node = ud;
    pt_table *t = NULL;
    pt_status st;
    if (node->scan_pred) {
        st = filter_table(node->ctx, in, node->scan_pred, &t, err);
    } else {
        st = pt_table_slice(in, 0, in->nrows, &t, err);
    }
    if (st != PT_OK) return st;
    if (node->nexprs > 0) {
        st = eval_exprs(node->ctx, t, node->exprs, node->names, node->nexprs, out, err);
    } else {
        st = pt__select_schema(t, node->schema, out, err);
    }
    pt_table_free(t);
    return st;
}

typedef struct table_scan {
    pt__stream s;
    pt_frame *node;
    bool done;
} table_scan;

static pt_status table_scan_next(pt__stream *s, pt_table ***parts, int64_t *n, pt_error *err) {
    table_scan *ts = (table_scan *)s;
    *parts = NULL;
    *n = 0;
    if (ts->done) return PT_OK;
    ts->done = true;
    pt_frame *node = ts->node;
    int64_t np = node->nparts;
    pt_table **in = pt_calloc((size_t)(np ? np : 1), sizeof *in);
    if (!in) return oom(err);
    for (int64_t i = 0; i < np; i++) {
        pt_status st = pt_table_slice(node->parts[i], 0, node->parts[i]->nrows, &in[i], err);
        if (st != PT_OK) {
            pt__parts_free(in, i);
            return st;
        }
    }
    if (np == 0) {
        pt_free(in);
        return PT_OK;
    }
    pt_table **res;
    PT_RETURN_NOT_OK(map_parts(node->ctx, in, np, scan_part, node, &res, err));
    *parts = res;
    *n = np;
    return PT_OK;
}

static void table_scan_free(pt__stream *s) {
    table_scan *ts = (table_scan *)s;
    pt_frame_free(ts->node);
    pt_free(ts);
}

typedef struct csv_scan {
    pt__stream s;
    pt_frame *node;
    int file;
    pt_csv_reader *reader;
    pt_csv_opts opts;
} csv_scan;

static pt_status csv_scan_next(pt__stream *s, pt_table ***parts, int64_t *n, pt_error *err) {
    csv_scan *cs = (csv_scan *)s;
    pt_frame *node = cs->node;
    *parts = NULL;
    *n = 0;
    for (;;) {
        if (!cs->reader) {
            if (cs->file >= node->npaths) return PT_OK;
            const int64_t *rg = node->csv_range ? node->csv_range + 3 * cs->file : NULL;
            if (rg && rg[0] < 0) { /* no row of this file is ours */
                cs->file++;
                continue;
            }
            PT_RETURN_NOT_OK(pt_csv_open(node->ctx, node->paths[cs->file], &cs->opts, &cs->reader, err));
            if (rg) PT_RETURN_NOT_OK(pt__csv_reader_set_range(cs->reader, rg[0], rg[1], rg[2], err));
        }
        pt_table *batch;
        PT_RETURN_NOT_OK(pt_csv_next(cs->reader, &batch, err));
        if (!batch) {
            pt_csv_close(cs->reader);
            cs->reader = NULL;
            cs->file++;
            continue;
        }
        pt_table **in;
        int64_t k;
        pt_status st = split_rows(batch, pt_ctx_threads(node->ctx), &in, &k, err);
        pt_table_free(batch);
        if (st != PT_OK) return st;
        pt_table **res;
        PT_RETURN_NOT_OK(map_parts(node->ctx, in, k, scan_part, node, &res, err));
        k = drop_empty(res, k);
        if (k == 0) {
            pt_free(res);
            continue;
        }
        *parts = res;
        *n = k;
        return PT_OK;
    }
}

static void csv_scan_free(pt__stream *s) {
    csv_scan *cs = (csv_scan *)s;
    pt_csv_close(cs->reader);
    pt_frame_free(cs->node);
    pt_free(cs);
}

/* Native files: batches read in parallel (one task per batch, up to two
 * per thread at a time), only the needed columns decoded. */
typedef struct native_scan {
    pt__stream s;
    pt_frame *node;
    pt_native_reader *reader;
    int64_t next_batch;
    int cols[1024];
    int ncols; /* -1: all */
} native_scan;

typedef struct native_job {
    native_scan *ns;
    int64_t first;
    pt_table **out;
} native_job;

static pt_status native_task(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    (void)tc;
    native_job *j = arg;
    native_scan *ns = j->ns;
    pt_table *t = NULL;
    PT_RETURN_NOT_OK(pt_native_read_batch(ns->reader, j->first + i, ns->ncols < 0 ? NULL : ns->cols,
                                          ns->ncols < 0 ? 0 : ns->ncols, &t, err));
    pt_status st = scan_part(ns->node, t, &j->out[i], err);
    pt_table_free(t);
    return st;
}

static pt_status native_scan_next(pt__stream *s, pt_table ***parts, int64_t *n, pt_error *err) {
    native_scan *ns = (native_scan *)s;
    pt_frame *node = ns->node;
    *parts = NULL;
    *n = 0;
    if (!ns->reader) {
        PT_RETURN_NOT_OK(pt_native_open_read(pt_ctx_mem_soft(node->ctx), node->native_path, &ns->reader, err));
        const pt_schema *fs = pt_native_schema(ns->reader);
        ns->ncols = -1;
        if (node->scan_cols) {
            ns->ncols = 0;
            for (int i = 0; i < node->nscan_cols && i < 1024; i++) {
                int pos = pt_schema_find(fs, node->scan_cols[i]);
                if (pos < 0)
                    return pt_error_set(err, PT_EINVAL, "%s: column '%s' is not in the file",
                                        node->native_path, node->scan_cols[i]);
                ns->cols[ns->ncols++] = pos;
            }
        }
    }
    if (node->nat_share && ns->next_batch < node->nat_lo) ns->next_batch = node->nat_lo;
    for (;;) {
        int64_t total = pt_native_num_batches(ns->reader);
        if (node->nat_share && node->nat_hi < total) total = node->nat_hi;
        if (ns->next_batch >= total) return PT_OK;
        int64_t k = total - ns->next_batch, cap = 2 * (int64_t)pt_ctx_threads(node->ctx);
        if (k > cap) k = cap;
        pt_table **out = pt_calloc((size_t)k, sizeof *out);
        if (!out) return oom(err);
        native_job j = {ns, ns->next_batch, out};
        pt_status st = pt_parallel_for(pt_ctx_pool(node->ctx), k, native_task, &j, NULL, err);
        ns->next_batch += k;
        if (st != PT_OK) {
            pt__parts_free(out, k);
            return st;
        }
        k = drop_empty(out, k);
        if (k == 0) {
            pt_free(out);
            continue;
        }
        *parts = out;
        *n = k;
        return PT_OK;
    }
}

static void native_scan_free(pt__stream *s) {
    native_scan *ns = (native_scan *)s;
    pt_native_close_read(ns->reader);
    pt_frame_free(ns->node);
    pt_free(ns);
}

/* ------------------------------------------------------------------------ */
/* Streaming operators                                                      */
/* ------------------------------------------------------------------------ */

typedef struct unary_stream {
    pt__stream s;
    pt_frame *node;
    pt__stream *child;
    pt__stream *child2; /* union */
    int64_t seen;       /* limit: rows passed so far (offset included) */
    bool done;
    /* blocking operators: their result, handed out once */
    pt_table **res;
    int64_t nres;
    /* full sort: the kernel's stream, drained batch by batch */
    pt__sort_stream *ss;
    bool sort_extra;
} unary_stream;

static void unary_free(pt__stream *s) {
    unary_stream *u = (unary_stream *)s;
    pt__stream_free(u->child);
    pt__stream_free(u->child2);
    pt__parts_free(u->res, u->nres);
    pt__sort_stream_free(u->ss);
    pt_frame_free(u->node);
    pt_free(u);
}

static pt_status filter_part(void *ud, const pt_table *in, pt_table **out, pt_error *err) {
    pt_frame *node = ud;
    return filter_table(node->ctx, in, node->pred, out, err);
}

static pt_status project_part(void *ud, const pt_table *in, pt_table **out, pt_error *err) {
    pt_frame *node = ud;
    return eval_exprs(node->ctx, in, node->exprs, node->names, node->nexprs, out, err);
}

static pt_status map_next(pt__stream *s, pt_table ***parts, int64_t *n, pt_error *err) {
    unary_stream *u = (unary_stream *)s;
    for (;;) {
        pt_table **in;
        int64_t k;
        PT_RETURN_NOT_OK(u->child->next(u->child, &in, &k, err));
        if (!in) {
            *parts = NULL;
            *n = 0;
            return PT_OK;
        }
        part_fn fn = u->node->kind == PT__N_FILTER ? filter_part : project_part;
        pt_table **res;
        PT_RETURN_NOT_OK(map_parts(u->node->ctx, in, k, fn, u->node, &res, err));
        if (u->node->kind == PT__N_FILTER) k = drop_empty(res, k);
        if (k == 0) {
            pt_free(res);
            continue;
        }
        *parts = res;
        *n = k;
        return PT_OK;
    }
}

static pt_status limit_next(pt__stream *s, pt_table ***parts, int64_t *n, pt_error *err) {
    unary_stream *u = (unary_stream *)s;
    *parts = NULL;
    *n = 0;
    int64_t end = u->node->offset + u->node->limit;
    while (!u->done) {
        pt_table **in;
        int64_t k;
        PT_RETURN_NOT_OK(u->child->next(u->child, &in, &k, err));
        if (!in) break;
        pt_table **res = pt_calloc((size_t)k, sizeof *res);
        if (!res) {
            pt__parts_free(in, k);
            return oom(err);
        }
        int64_t m = 0;
        pt_status st = PT_OK;
        for (int64_t i = 0; i < k && st == PT_OK; i++) {
            int64_t lo = u->seen, hi = u->seen + in[i]->nrows;
            u->seen = hi;
            int64_t a = lo > u->node->offset ? lo : u->node->offset;
            int64_t b = hi < end ? hi : end;
            if (b > a) {
                st = pt_table_slice(in[i], a - lo, b - a, &res[m], err);
                if (st == PT_OK) m++;
            }
            if (u->seen >= end) {
                u->done = true;
                break;
            }
        }
        pt__parts_free(in, k);
        if (st != PT_OK) {
            pt__parts_free(res, m);
            return st;
        }
        if (m > 0) {
            *parts = res;
            *n = m;
            return PT_OK;
        }
        pt_free(res);
    }
    return PT_OK;
}

static pt_status union_next(pt__stream *s, pt_table ***parts, int64_t *n, pt_error *err) {
    unary_stream *u = (unary_stream *)s;
    if (u->child) {
        PT_RETURN_NOT_OK(u->child->next(u->child, parts, n, err));
        if (*parts) return PT_OK;
        pt__stream_free(u->child);
        u->child = NULL;
    }
    return u->child2->next(u->child2, parts, n, err);
}

/* Hands out a blocking operator's result once. */
static pt_status result_next(unary_stream *u, pt_table ***parts, int64_t *n) {
    *parts = u->res;
    *n = u->nres;
    u->res = NULL;
    u->nres = 0;
    return PT_OK;
}

/* Pulls the whole input into one array of partitions. */
static pt_status drain(pt__stream *child, pt_table ***parts, int64_t *n, pt_error *err) {
    pt_table **all = NULL;
    int64_t na = 0, cap = 0;
    for (;;) {
        pt_table **in;
        int64_t k;
        pt_status st = child->next(child, &in, &k, err);
        if (st != PT_OK) {
            pt__parts_free(all, na);
            return st;
        }
        if (!in) break;
        if (na + k > cap) {
            int64_t nc = (na + k) * 2;
            pt_table **b = pt_realloc(all, sizeof *b * (size_t)nc);
            if (!b) {
                pt__parts_free(in, k);
                pt__parts_free(all, na);
                return oom(err);
            }
            all = b;
            cap = nc;
        }
        memcpy(all + na, in, sizeof *in * (size_t)k);
        na += k;
        pt_free(in);
    }
    *parts = all;
    *n = na;
    return PT_OK;
}

/* Splits a blocking operator's single result table into partitions for
 * the operators above (takes ownership of t). */
static pt_status set_result(unary_stream *u, pt_table *t, pt_error *err) {
    if (t->nrows == 0) {
        u->res = pt_calloc(1, sizeof *u->res);
        if (!u->res) {
            pt_table_free(t);
            return oom(err);
        }
        u->res[0] = t;
        u->nres = 1;
        return PT_OK;
    }
    int64_t k = t->nrows >= 65536 ? pt_ctx_threads(u->node->ctx) * 2 : 1;
    pt_status st = split_rows(t, k, &u->res, &u->nres, err);
    pt_table_free(t);
    return st;
}

/* Computes the key expressions as extra columns "__k<i>" appended to each
 * partition (zero-copy for plain columns); returns the positions. */
typedef struct keys_job {
    pt_ctx *ctx;
    pt_expr *const *keys;
    int nkeys;
} keys_job;

static pt_status with_keys_part(void *ud, const pt_table *in, pt_table **out, pt_error *err) {
    keys_job *kj = ud;
    int n = in->schema->nfields, m = n + kj->nkeys;
    pt_column **cols = pt_calloc((size_t)m, sizeof *cols);
    char **names = pt_calloc((size_t)m, sizeof *names);
    char (*tmp)[16] = pt_calloc((size_t)kj->nkeys + 1, 16);
    if (!cols || !names || !tmp) {
        pt_free(cols);
        pt_free(names);
        pt_free(tmp);
        return oom(err);
    }
    for (int i = 0; i < n; i++) {
        cols[i] = pt_column_retain(in->cols[i]);
        names[i] = in->schema->fields[i].name;
    }
    pt_status st = PT_OK;
    int done = n;
    for (int k = 0; k < kj->nkeys && st == PT_OK; k++) {
        pt__bound *b;
        st = pt__expr_bind(kj->keys[k], in->schema, &b, err);
        if (st != PT_OK) break;
        st = pt__expr_eval(b, in, pt_ctx_mem_soft(kj->ctx), &cols[n + k], err);
        pt__bound_free(b);
        snprintf(tmp[k], 16, "__k%d", k);
        names[n + k] = tmp[k];
        if (st == PT_OK) done = n + k + 1;
    }
    if (st == PT_OK) {
        st = table_from(m, cols, names, out, err);
    } else {
        for (int i = 0; i < done; i++) pt_column_release(cols[i]);
    }
    pt_free(cols);
    pt_free(names);
    pt_free(tmp);
    return st;
}

/* True when the subtree under f reads files (its input may not fit in
 * memory, so blocking operators consume it batch by batch and spill);
 * in-memory inputs go to the whole-input kernels, which can look at all
 * partitions at once (key ranges, sample splitters). */
static bool reads_files(const pt_frame *f) {
    if (!f) return false;
    if (f->kind == PT__N_SCAN_CSV || f->kind == PT__N_SCAN_NATIVE) return true;
    return reads_files(f->in[0]) || reads_files(f->in[1]);
}

/* ------------------------------------------------------------------------ */
/* Aggregation and distinct                                                 */
/* ------------------------------------------------------------------------ */

/* The group-by input of one partition: [keys..., agg args...]. */
typedef struct agg_plan {
    pt_frame *node;
    int nk;               /* key columns */
    int ncols;            /* key + argument columns */
    pt_expr **cols;       /* expressions of the temp columns */
    pt__agg_spec *specs;  /* aggregates over temp column positions */
    char **names;         /* "__c<i>" */
} agg_plan;

static void agg_plan_free(agg_plan *p) {
    for (int i = 0; i < p->ncols; i++) {
        pt_expr_free(p->cols[i]);
        pt_free(p->names[i]);
    }
    pt_free(p->cols);
    pt_free(p->names);
    pt_free(p->specs);
}

static pt_status agg_plan_init(pt_frame *node, bool distinct, agg_plan *p, pt_error *err) {
    memset(p, 0, sizeof *p);
    p->node = node;
    const pt_schema *in = node->in[0]->schema;
    int nk = distinct ? in->nfields : node->nkeys;
    int na = distinct ? 0 : node->naggs;
    int max = nk + 2 * na + 1;
    p->cols = pt_calloc((size_t)max + 1, sizeof *p->cols);
    p->names = pt_calloc((size_t)max + 1, sizeof *p->names);
    p->specs = pt_calloc((size_t)na + 1, sizeof *p->specs);
    if (!p->cols || !p->names || !p->specs) return oom(err);
    for (int i = 0; i < nk; i++)
        p->cols[p->ncols++] = distinct ? pt_col(in->fields[i].name) : pt_expr_ref(node->keys[i]);
    p->nk = nk;
    for (int a = 0; a < na; a++) {
        const pt_expr *ag = node->aggs[a];
        p->specs[a].kind = ag->agg;
        p->specs[a].col = -1;
        p->specs[a].col2 = -1;
        for (int j = 0; j < ag->nargs && j < 2; j++) {
            if (!ag->args[j]) continue;
            /* Reuse an equal argument column. */
            int pos = -1;
            for (int c = nk; c < p->ncols; c++)
                if (pt__expr_equal(p->cols[c], ag->args[j])) pos = c;
            if (pos < 0) {
                pos = p->ncols;
                p->cols[p->ncols++] = pt_expr_ref(ag->args[j]);
            }
            if (j == 0) p->specs[a].col = pos;
            else p->specs[a].col2 = pos;
        }
    }
    if (p->ncols == 0 && in->nfields > 0) {
        /* Only count(*): carry one input column so that the temporary
         * tables keep their row counts (a table without columns has none). */
        p->cols[p->ncols++] = pt_col(in->fields[0].name);
    }
    for (int i = 0; i < p->ncols; i++) {
        char buf[24];
        snprintf(buf, sizeof buf, "__c%d", i);
        if (!(p->names[i] = pt_strdup(buf)) || !p->cols[i]) return oom(err);
    }
    return PT_OK;
}

static pt_status agg_input_part(void *ud, const pt_table *in, pt_table **out, pt_error *err) {
    agg_plan *p = ud;
    return eval_exprs(p->node->ctx, in, p->cols, p->names, p->ncols, out, err);
}

static pt_status run_agg(unary_stream *u, bool distinct, pt_error *err) {
    pt_frame *node = u->node;
    pt_ctx *ctx = node->ctx;
    agg_plan p;
    pt_status st = agg_plan_init(node, distinct, &p, err);
    int keys[1024];
    for (int i = 0; i < p.nk && i < 1024; i++) keys[i] = i;
    pt__groupby_stream *g = NULL;
    bool first = true;
    pt_table *res = NULL;
    if (st == PT_OK && !reads_files(node->in[0])) {
        pt_table **all = NULL, **tmp = NULL;
        int64_t n = 0;
        st = drain(u->child, &all, &n, err);
        if (st == PT_OK && n > 0) st = map_parts(ctx, all, n, agg_input_part, &p, &tmp, err);
        else pt__parts_free(all, n);
        if (st == PT_OK && n > 0)
            st = pt__groupby(ctx, tmp, n, p.nk, keys, distinct ? 0 : node->naggs, p.specs, &res,
                             err);
        if (n > 0) pt__parts_free(tmp, n);
        first = n == 0;
        if (st != PT_OK || n > 0) goto have_result;
    }
    while (st == PT_OK) {
        pt_table **in;
        int64_t k;
        st = u->child->next(u->child, &in, &k, err);
        if (st != PT_OK || !in) break;
        pt_table **tmp;
        st = map_parts(ctx, in, k, agg_input_part, &p, &tmp, err);
        if (st != PT_OK) break;
        if (first) {
            st = pt__groupby_stream_new(ctx, tmp[0]->schema, p.nk, keys,
                                        distinct ? 0 : node->naggs, p.specs, &g, err);
            first = false;
        }
        if (st == PT_OK) st = pt__groupby_stream_push(g, tmp, k, err);
        pt__parts_free(tmp, k);
    }
    if (st == PT_OK && first) {
        /* No input rows at all: aggregate an empty table of the right
         * types so that global aggregates still give their one row. */
        pt_table *empty = NULL;
        st = pt__parts_concat(ctx, NULL, 0, node->in[0]->schema, &empty, err);
        pt_table *tmp = NULL;
        if (st == PT_OK) st = agg_input_part(&p, empty, &tmp, err);
        pt_table_free(empty);
        if (st == PT_OK)
            st = pt__groupby_stream_new(ctx, tmp->schema, p.nk, keys, distinct ? 0 : node->naggs,
                                        p.specs, &g, err);
        if (st == PT_OK) st = pt__groupby_stream_push(g, &tmp, 1, err);
        pt_table_free(tmp);
    }
    if (st == PT_OK) st = pt__groupby_stream_finish(g, &res, err);
    pt__groupby_stream_free(g);
have_result:
    if (st == PT_OK && distinct) {
        /* Back to the input's names. */
        pt_column **cols = pt_calloc((size_t)res->schema->nfields + 1, sizeof *cols);
        if (!cols) st = oom(err);
        for (int i = 0; st == PT_OK && i < res->schema->nfields; i++)
            cols[i] = pt_column_retain(res->cols[i]);
        char *names[1024];
        for (int i = 0; st == PT_OK && i < node->schema->nfields; i++)
            names[i] = node->schema->fields[i].name;
        pt_table *t2 = NULL;
        if (st == PT_OK) st = table_from(res->schema->nfields, cols, names, &t2, err);
        pt_free(cols);
        pt_table_free(res);
        res = t2;
    } else if (st == PT_OK) {
        /* Rename to [key names..., __agg<i>...] and run the projection. */
        int nm = node->nkeys + node->naggs;
        char **mn = pt_calloc((size_t)nm + 1, sizeof *mn);
        pt_column **cols = pt_calloc((size_t)nm + 1, sizeof *cols);
        if (!mn || !cols) st = oom(err);
        for (int i = 0; st == PT_OK && i < nm; i++) {
            char buf[24];
            if (i < node->nkeys) {
                mn[i] = pt_strdup(node->key_names[i]);
            } else {
                mn[i] = pt_strdup(pt__agg_column_name(i - node->nkeys, buf, sizeof buf));
            }
            if (!mn[i]) st = oom(err);
            cols[i] = pt_column_retain(res->cols[i]);
        }
        pt_table *mid = NULL;
        if (st == PT_OK) {
            st = table_from(nm, cols, mn, &mid, err);
        } else if (cols) {
            for (int i = 0; i < nm; i++) pt_column_release(cols[i]);
        }
        pt_table_free(res);
        res = NULL;
        if (st == PT_OK) {
            int no = node->nkeys + node->nexprs;
            pt_expr **ex = pt_calloc((size_t)no + 1, sizeof *ex);
            char **on = pt_calloc((size_t)no + 1, sizeof *on);
            if (!ex || !on) st = oom(err);
            for (int i = 0; st == PT_OK && i < node->nkeys; i++) {
                ex[i] = pt_col(node->key_names[i]);
                on[i] = node->key_names[i];
            }
            for (int i = 0; st == PT_OK && i < node->nexprs; i++) {
                ex[node->nkeys + i] = pt_expr_ref(node->exprs[i]);
                on[node->nkeys + i] = node->names[i];
            }
            if (st == PT_OK) st = eval_exprs(ctx, mid, ex, on, no, &res, err);
            for (int i = 0; ex && i < no; i++) pt_expr_free(ex[i]);
            pt_free(ex);
            pt_free(on);
        }
        pt_table_free(mid);
        for (int i = 0; mn && i < nm; i++) pt_free(mn[i]);
        pt_free(mn);
        pt_free(cols);
    }
    agg_plan_free(&p);
    if (st != PT_OK) {
        pt_table_free(res);
        return st;
    }
    return set_result(u, res, err);
}

/* ------------------------------------------------------------------------ */
/* Sort, top-n, row number                                                  */
/* ------------------------------------------------------------------------ */

/* Sort keys as positions: plain column keys point at the column, others at
 * appended "__k<i>" columns (then *extra is set). */
static pt_status sort_keys(pt_frame *node, pt_expr *const *keys, int nkeys, const bool *desc,
                           pt__sort_key *out, bool *extra) {
    const pt_schema *in = node->in[0]->schema;
    *extra = false;
    for (int i = 0; i < nkeys; i++) {
        const char *c = pt__expr_col_name(keys[i]);
        int pos = c ? pt_schema_find(in, c) : -1;
        if (pos < 0) *extra = true;
        out[i].col = pos;
        out[i].desc = desc ? desc[i] : false;
    }
    if (*extra)
        for (int i = 0; i < nkeys; i++) out[i].col = in->nfields + i;
    return PT_OK;
}

static pt_status drop_extra(pt_table *t, const pt_schema *schema, pt_table **out, pt_error *err) {
    pt_status st = pt__select_schema(t, schema, out, err);
    pt_table_free(t);
    return st;
}

static pt_status run_sort(unary_stream *u, pt_error *err) {
    pt_frame *node = u->node;
    pt_ctx *ctx = node->ctx;
    pt__sort_key keys[256];
    bool extra;
    if (node->nkeys > 256) return pt_error_set(err, PT_EUNSUPPORTED, "sort: more than 256 keys");
    sort_keys(node, node->keys, node->nkeys, node->desc, keys, &extra);
    keys_job kj = {ctx, node->keys, node->nkeys};
    pt_status st = PT_OK;
    if (node->kind == PT__N_TOPN) {
        pt_table **all;
        int64_t n;
        PT_RETURN_NOT_OK(drain(u->child, &all, &n, err));
        if (extra && n > 0) st = map_parts(ctx, all, n, with_keys_part, &kj, &all, err);
        pt_table *top = NULL;
        if (st == PT_OK) {
            if (n == 0) {
                st = pt__parts_concat(ctx, NULL, 0, node->schema, &top, err);
            } else {
                st = pt__sort_topn(ctx, all, n, node->nkeys, keys, node->limit + node->offset,
                                   &top, err);
            }
        }
        pt__parts_free(all, n);
        if (st != PT_OK) return st;
        pt_table *sl = NULL;
        int64_t off = node->offset < top->nrows ? node->offset : top->nrows;
        st = pt_table_slice(top, off, top->nrows - off, &sl, err);
        pt_table_free(top);
        if (st != PT_OK) return st;
        if (extra) {
            PT_RETURN_NOT_OK(drop_extra(sl, node->schema, &sl, err));
        }
        return set_result(u, sl, err);
    }
    if (!reads_files(node->in[0])) {
        /* Everything is in memory already: one parallel sort. */
        pt_table **all;
        int64_t n;
        PT_RETURN_NOT_OK(drain(u->child, &all, &n, err));
        if (extra && n > 0) st = map_parts(ctx, all, n, with_keys_part, &kj, &all, err);
        pt_table *sorted = NULL;
        if (st == PT_OK) {
            if (n == 0) st = pt__parts_concat(ctx, NULL, 0, node->schema, &sorted, err);
            else st = pt__sort(ctx, all, n, node->nkeys, keys, &sorted, err);
        }
        pt__parts_free(all, n);
        if (st == PT_OK && extra) st = drop_extra(sorted, node->schema, &sorted, err);
        if (st != PT_OK) return st;
        return set_result(u, sorted, err);
    }
    /* Full sort through the streaming kernel (spills when over budget);
     * its output is handed out batch by batch by sort_next. */
    bool first = true;
    while (st == PT_OK) {
        pt_table **in;
        int64_t k;
        st = u->child->next(u->child, &in, &k, err);
        if (st != PT_OK || !in) break;
        if (extra) {
            st = map_parts(ctx, in, k, with_keys_part, &kj, &in, err);
            if (st != PT_OK) break;
        }
        if (first) {
            st = pt__sort_stream_new(ctx, in[0]->schema, node->nkeys, keys, &u->ss, err);
            first = false;
        }
        if (st == PT_OK) st = pt__sort_stream_push(u->ss, in, k, err);
        pt__parts_free(in, k);
    }
    u->sort_extra = extra;
    return st;
}

/* Next batch of a full sort's output. */
static pt_status sort_next(unary_stream *u, pt_table ***parts, int64_t *n, pt_error *err) {
    *parts = NULL;
    *n = 0;
    if (!u->ss) return PT_OK;
    pt_table *b;
    PT_RETURN_NOT_OK(pt__sort_stream_next(u->ss, &b, err));
    if (!b) {
        pt__sort_stream_free(u->ss);
        u->ss = NULL;
        return PT_OK;
    }
    if (u->sort_extra) PT_RETURN_NOT_OK(drop_extra(b, u->node->schema, &b, err));
    if (b->nrows >= 65536) {
        /* A big sorted batch: slices for parallel consumers. */
        return split_rows_owned(b, pt_ctx_threads(u->node->ctx) * 2, parts, n, err);
    }
    pt_table **p = pt_malloc(sizeof *p);
    if (!p) {
        pt_table_free(b);
        return oom(err);
    }
    p[0] = b;
    *parts = p;
    *n = 1;
    return PT_OK;
}

/* True when rows i and j of the first `n` columns (from `from`) are equal
 * (nulls equal nulls). */
static bool rows_equal(const pt_table *t, int from, int n, int64_t i, int64_t j) {
    for (int k = 0; k < n; k++) {
        const pt_column *c = t->cols[from + k];
        bool vi = pt_column_is_valid(c, i), vj = pt_column_is_valid(c, j);
        if (vi != vj) return false;
        if (!vi) continue;
        switch (c->type) {
        case PT_TYPE_NULL: break;
        case PT_TYPE_BOOL:
            if (pt_column_bool(c, i) != pt_column_bool(c, j)) return false;
            break;
        case PT_TYPE_INT32:
            if (pt_column_i32(c)[i] != pt_column_i32(c)[j]) return false;
            break;
        case PT_TYPE_INT64:
            if (pt_column_i64(c)[i] != pt_column_i64(c)[j]) return false;
            break;
        case PT_TYPE_FLOAT32:
            if (pt_column_f32(c)[i] != pt_column_f32(c)[j]) return false;
            break;
        case PT_TYPE_FLOAT64:
            if (pt_column_f64(c)[i] != pt_column_f64(c)[j]) return false;
            break;
        default: {
            int64_t li, lj;
            const char *si = pt_column_str(c, i, &li), *sj = pt_column_str(c, j, &lj);
            if (li != lj || memcmp(si, sj, (size_t)li) != 0) return false;
        }
        }
    }
    return true;
}


/* ------------------------------------------------------------------------ */
/* Top-k per partition (ROW_NUMBER with rn <= k above it)                   */
/* ------------------------------------------------------------------------ */

/* Each thread scans a range of rows and keeps, per partition key, the k best
 * rows by the order keys (ties by position, as the stable sort would); the
 * union of the threads' candidates holds every row that can get a number
 * <= k, so only those are sorted and numbered. */
typedef struct topk_part {
    int64_t cap, ngroups;
    int64_t *rep;     /* a row of the group in each slot, -1 when empty */
    uint64_t *hash;
    int32_t *cnt;
    int64_t *rows;    /* cap * k rows, best first */
} topk_part;

typedef struct topk_job {
    const pt_table *t;
    int pfrom, np, ofrom, no;
    const bool *desc;
    int64_t k, nchunks;
    topk_part *parts;
} topk_job;

static int cmp_cell(const pt_column *c, int64_t i, const pt_column *d, int64_t j);
static int cmp_i64(const void *a, const void *b);
static uint64_t row_hash(const pt_table *t, const int *cols, int n, int64_t i);

/* True when row a comes before row b in the window's order. */
static bool topk_before(const topk_job *j, int64_t a, int64_t b) {
    for (int k = 0; k < j->no; k++) {
        const pt_column *c = j->t->cols[j->ofrom + k];
        bool va = pt_column_is_valid(c, a), vb = pt_column_is_valid(c, b);
        if (va != vb) return va; /* nulls last in both directions */
        if (!va) continue;
        int r = cmp_cell(c, a, c, b);
        if (r) return j->desc[k] ? r > 0 : r < 0;
    }
    return a < b;
}

static pt_status topk_grow(topk_part *p, int64_t k, pt_error *err) {
    int64_t cap = p->cap ? p->cap * 2 : 1024;
    int64_t *rep = pt_malloc(sizeof *rep * (size_t)cap);
    uint64_t *hash = pt_malloc(sizeof *hash * (size_t)cap);
    int32_t *cnt = pt_calloc((size_t)cap, sizeof *cnt);
    int64_t *rows = pt_malloc(sizeof *rows * (size_t)(cap * k));
    if (!rep || !hash || !cnt || !rows) {
        pt_free(rep);
        pt_free(hash);
        pt_free(cnt);
        pt_free(rows);
        return oom(err);
    }
    for (int64_t i = 0; i < cap; i++) rep[i] = -1;
    for (int64_t s = 0; s < p->cap; s++) {
        if (p->rep[s] < 0) continue;
        int64_t d = (int64_t)(p->hash[s] & (uint64_t)(cap - 1));
        while (rep[d] >= 0) d = (d + 1) & (cap - 1);
        rep[d] = p->rep[s];
        hash[d] = p->hash[s];
        cnt[d] = p->cnt[s];
        memcpy(rows + d * k, p->rows + s * k, sizeof *rows * (size_t)p->cnt[s]);
    }
    pt_free(p->rep);
    pt_free(p->hash);
    pt_free(p->cnt);
    pt_free(p->rows);
    p->rep = rep;
    p->hash = hash;
    p->cnt = cnt;
    p->rows = rows;
    p->cap = cap;
    return PT_OK;
}

static pt_status topk_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    topk_job *j = arg;
    topk_part *p = &j->parts[c];
    int64_t n = j->t->nrows, lo = n * c / j->nchunks, hi = n * (c + 1) / j->nchunks, k = j->k;
    int pcols[256];
    for (int i = 0; i < j->np; i++) pcols[i] = j->pfrom + i;
    for (int64_t r = lo; r < hi; r++) {
        if (2 * (p->ngroups + 1) > p->cap) PT_RETURN_NOT_OK(topk_grow(p, k, err));
        uint64_t h = row_hash(j->t, pcols, j->np, r);
        int64_t s = (int64_t)(h & (uint64_t)(p->cap - 1));
        while (p->rep[s] >= 0 && !(p->hash[s] == h && rows_equal(j->t, j->pfrom, j->np, p->rep[s], r)))
            s = (s + 1) & (p->cap - 1);
        int64_t *best = p->rows + s * k;
        if (p->rep[s] < 0) {
            p->rep[s] = r;
            p->hash[s] = h;
            p->cnt[s] = 0;
            p->ngroups++;
        }
        int32_t m = p->cnt[s];
        if (m == k && !topk_before(j, r, best[m - 1])) continue;
        if (m < k) p->cnt[s] = ++m;
        /* insert r in order, dropping the last when full */
        int64_t pos = m - 1;
        while (pos > 0 && topk_before(j, r, best[pos - 1])) {
            best[pos] = best[pos - 1];
            pos--;
        }
        best[pos] = r;
    }
    return PT_OK;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Fast path of topk_candidates: one integer or dictionary partition key of
 * small range and one numeric order key, neither with nulls. Groups index
 * arrays directly and values are compared inline. */
typedef struct topk_fast_job {
    const pt_column *key, *ord;
    int64_t kmin, ngroups, k, nchunks, n;
    bool desc, is_float;
    int64_t **rows;  /* per chunk: ngroups * k row ids, best first */
    void **vals;     /* per chunk: their order values (8-byte slots) */
    uint8_t **cnt;   /* per chunk: ngroups */
} topk_fast_job;

/* One scan specialised on the key type K (int64 or int32/dict index) and
 * the order value type T, reading both arrays directly. Later rows lose
 * ties: only strictly better values enter a full list. */
#define TOPK_SCAN(K, T)                                                                \
    do {                                                                               \
        const K *kv = (const K *)j->key->values->data + j->key->offset;                \
        const T *ov = (const T *)j->ord->values->data + j->ord->offset;                \
        T *vals = (T *)j->vals[c];                                                     \
        for (int64_t r = lo; r < hi; r++) {                                            \
            int64_t g = (int64_t)kv[r] - j->kmin;                                      \
            T v = ov[r];                                                               \
            int64_t *best = rows + g * k;                                              \
            T *bv = vals + g * k;                                                      \
            int m = cnt[g];                                                            \
            if (m == k) {                                                              \
                if (!(j->desc ? v > bv[m - 1] : v < bv[m - 1])) continue;              \
            } else {                                                                   \
                cnt[g] = (uint8_t)++m;                                                 \
            }                                                                          \
            int64_t pos = m - 1;                                                       \
            while (pos > 0 && (j->desc ? v > bv[pos - 1] : v < bv[pos - 1])) {         \
                best[pos] = best[pos - 1];                                             \
                bv[pos] = bv[pos - 1];                                                 \
                pos--;                                                                 \
            }                                                                          \
            best[pos] = r;                                                             \
            bv[pos] = v;                                                               \
        }                                                                              \
    } while (0)

#define TOPK_BY_ORDER(K)                                                               \
    switch (j->ord->type) {                                                            \
    case PT_TYPE_FLOAT64: TOPK_SCAN(K, double); break;                                 \
    case PT_TYPE_FLOAT32: TOPK_SCAN(K, float); break;                                  \
    case PT_TYPE_INT64: TOPK_SCAN(K, int64_t); break;                                  \
    default: TOPK_SCAN(K, int32_t); break;                                             \
    }

static pt_status topk_fast_task(pt_task_ctx *tc, void *arg, int64_t c, pt_error *err) {
    (void)tc;
    (void)err;
    topk_fast_job *j = arg;
    int64_t lo = j->n * c / j->nchunks, hi = j->n * (c + 1) / j->nchunks, k = j->k;
    int64_t *rows = j->rows[c];
    uint8_t *cnt = j->cnt[c];
    if (j->key->type == PT_TYPE_INT64) {
        TOPK_BY_ORDER(int64_t)
    } else {
        TOPK_BY_ORDER(int32_t)
    }
    return PT_OK;
}

/* Returns PT_EUNSUPPORTED (quietly) when the fast path does not apply. */
static pt_status topk_fast(pt_ctx *ctx, const pt_table *t, int pcol, int ocol, bool desc,
                           int64_t k, int64_t **idx_out, int64_t *n_out, pt_error *err) {
    const pt_column *key = t->cols[pcol], *ord = t->cols[ocol];
    bool key_ok = key->type == PT_TYPE_INT64 || key->type == PT_TYPE_INT32 || key->type == PT_TYPE_DICT;
    bool ord_ok = pt_type_is_numeric(ord->type);
    if (!key_ok || !ord_ok || key->null_count || ord->null_count || t->nrows == 0 || k > 255)
        return PT_EUNSUPPORTED;
    int64_t mn = INT64_MAX, mx = INT64_MIN;
    if (key->type == PT_TYPE_INT64) {
        const int64_t *kv = pt_column_i64(key);
        for (int64_t i = 0; i < t->nrows; i++) {
            mn = kv[i] < mn ? kv[i] : mn;
            mx = kv[i] > mx ? kv[i] : mx;
        }
    } else {
        const int32_t *kv = pt_column_i32(key);
        for (int64_t i = 0; i < t->nrows; i++) {
            mn = kv[i] < mn ? kv[i] : mn;
            mx = kv[i] > mx ? kv[i] : mx;
        }
    }
    if ((uint64_t)(mx - mn) >= (1u << 22)) return PT_EUNSUPPORTED;
    topk_fast_job j = {key, ord, mn, mx - mn + 1, k, pt_ctx_threads(ctx), t->nrows, desc,
                       ord->type == PT_TYPE_FLOAT64 || ord->type == PT_TYPE_FLOAT32, NULL, NULL,
                       NULL};
    if (t->nrows < 65536) j.nchunks = 1;
    j.rows = pt_calloc((size_t)j.nchunks, sizeof *j.rows);
    j.vals = pt_calloc((size_t)j.nchunks, sizeof *j.vals);
    j.cnt = pt_calloc((size_t)j.nchunks, sizeof *j.cnt);
    pt_status st = j.rows && j.vals && j.cnt ? PT_OK : oom(err);
    for (int64_t c = 0; st == PT_OK && c < j.nchunks; c++) {
        j.rows[c] = pt_malloc(sizeof(int64_t) * (size_t)(j.ngroups * k));
        j.vals[c] = pt_malloc(8 * (size_t)(j.ngroups * k));
        j.cnt[c] = pt_calloc((size_t)j.ngroups, 1);
        if (!j.rows[c] || !j.vals[c] || !j.cnt[c]) st = oom(err);
    }
    if (st == PT_OK) st = pt_parallel_for(pt_ctx_pool(ctx), j.nchunks, topk_fast_task, &j, NULL, err);
    int64_t total = 0;
    for (int64_t c = 0; st == PT_OK && c < j.nchunks; c++)
        for (int64_t g = 0; g < j.ngroups; g++) total += j.cnt[c][g];
    int64_t *idx = st == PT_OK ? pt_malloc(sizeof *idx * (size_t)(total ? total : 1)) : NULL;
    uint8_t *mark = st == PT_OK ? pt_calloc((size_t)t->nrows, 1) : NULL;
    if (st == PT_OK && (!idx || !mark)) st = oom(err);
    if (st == PT_OK) {
        /* Candidates in row order: mark them, then one scan (cheaper than
         * sorting the ids). */
        for (int64_t c = 0; c < j.nchunks; c++)
            for (int64_t g = 0; g < j.ngroups; g++)
                for (int q = 0; q < j.cnt[c][g]; q++) mark[j.rows[c][g * k + q]] = 1;
        int64_t m = 0;
        for (int64_t r = 0; r < t->nrows; r++)
            if (mark[r]) idx[m++] = r;
        *idx_out = idx;
        *n_out = m;
    } else {
        pt_free(idx);
    }
    pt_free(mark);
    for (int64_t c = 0; j.rows && c < j.nchunks; c++) pt_free(j.rows[c]);
    for (int64_t c = 0; j.vals && c < j.nchunks; c++) pt_free(j.vals[c]);
    for (int64_t c = 0; j.cnt && c < j.nchunks; c++) pt_free(j.cnt[c]);
    pt_free(j.rows);
    pt_free(j.vals);
    pt_free(j.cnt);
    return st;
}

/* Replaces *t by its rows that can be among the first k of their window
 * partition (in their original order). */
static pt_status topk_candidates(pt_ctx *ctx, pt_table **t, int pfrom, int np, int ofrom, int no,
                                 const bool *desc, int64_t k, pt_error *err) {
    if (np == 1 && no == 1) {
        int64_t *fidx = NULL, fn = 0;
        pt_status fs = topk_fast(ctx, *t, pfrom, ofrom, desc[0], k, &fidx, &fn, err);
        if (fs == PT_OK) {
            pt_table *sub;
            fs = pt_table_take(pt_ctx_mem_soft(ctx), *t, fidx, fn, &sub, err);
            pt_free(fidx);
            if (fs == PT_OK) {
                pt_table_free(*t);
                *t = sub;
            }
            return fs;
        }
        if (fs != PT_EUNSUPPORTED) return fs;
    }
    int64_t nchunks = pt_ctx_threads(ctx);
    if ((*t)->nrows < 65536) nchunks = 1;
    topk_part *parts = pt_calloc((size_t)nchunks, sizeof *parts);
    if (!parts) return oom(err);
    topk_job j = {*t, pfrom, np, ofrom, no, desc, k, nchunks, parts};
    pt_status st = pt_parallel_for(pt_ctx_pool(ctx), nchunks, topk_task, &j, NULL, err);
    int64_t total = 0;
    for (int64_t c = 0; c < nchunks; c++)
        for (int64_t s = 0; s < parts[c].cap; s++)
            if (parts[c].rep[s] >= 0) total += parts[c].cnt[s];
    int64_t *idx = st == PT_OK ? pt_malloc(sizeof *idx * (size_t)(total ? total : 1)) : NULL;
    if (st == PT_OK && !idx) st = oom(err);
    if (st == PT_OK) {
        int64_t m = 0;
        for (int64_t c = 0; c < nchunks; c++)
            for (int64_t s = 0; s < parts[c].cap; s++)
                for (int32_t q = 0; parts[c].rep[s] >= 0 && q < parts[c].cnt[s]; q++)
                    idx[m++] = parts[c].rows[s * k + q];
        qsort(idx, (size_t)m, sizeof *idx, cmp_i64);
        pt_table *sub;
        st = pt_table_take(pt_ctx_mem_soft(ctx), *t, idx, m, &sub, err);
        if (st == PT_OK) {
            pt_table_free(*t);
            *t = sub;
        }
    }
    pt_free(idx);
    for (int64_t c = 0; c < nchunks; c++) {
        pt_free(parts[c].rep);
        pt_free(parts[c].hash);
        pt_free(parts[c].cnt);
        pt_free(parts[c].rows);
    }
    pt_free(parts);
    return st;
}


static pt_status run_rownum(unary_stream *u, pt_error *err) {
    pt_frame *node = u->node;
    pt_ctx *ctx = node->ctx;
    int np = node->nkeys, no = node->nexprs, nk = np + no;
    pt_expr **keys = pt_calloc((size_t)nk + 1, sizeof *keys);
    bool *desc = pt_calloc((size_t)nk + 1, sizeof *desc);
    pt__sort_key *sk = pt_calloc((size_t)nk + 1, sizeof *sk);
    if (!keys || !desc || !sk) {
        pt_free(keys);
        pt_free(desc);
        pt_free(sk);
        return oom(err);
    }
    for (int i = 0; i < np; i++) keys[i] = node->keys[i];
    for (int i = 0; i < no; i++) {
        keys[np + i] = node->exprs[i];
        desc[np + i] = node->desc[i];
    }
    pt_table **all = NULL;
    int64_t n = 0;
    pt_table *t = NULL, *sorted = NULL;
    int64_t *perm = NULL;
    keys_job kj = {ctx, keys, nk};
    pt_status st = drain(u->child, &all, &n, err);
    if (st == PT_OK && n > 0) st = map_parts(ctx, all, n, with_keys_part, &kj, &all, err);
    const pt_schema *in = node->in[0]->schema;
    if (st == PT_OK) {
        if (n == 0) {
            /* empty input: empty output with the rn column */
            pt__parts_free(all, n);
            pt_free(keys);
            pt_free(desc);
            pt_free(sk);
            pt_table *e;
            PT_RETURN_NOT_OK(pt__parts_concat(ctx, NULL, 0, node->schema, &e, err));
            return set_result(u, e, err);
        }
        /* The concatenation schema: the first partition's. */
        st = pt__parts_concat(ctx, all, n, all[0]->schema, &t, err);
    }
    pt__parts_free(all, n);
    for (int i = 0; i < nk; i++) {
        sk[i].col = in->nfields + i;
        sk[i].desc = desc[i];
    }
    if (st == PT_OK && node->limit > 0 && node->limit <= 64 && np <= 256)
        st = topk_candidates(ctx, &t, in->nfields, np, in->nfields + np, no, desc + np,
                             node->limit, err);
    if (st == PT_OK && nk > 0) st = pt__sort_indices(ctx, t, nk, sk, &perm, err);
    if (st == PT_OK && nk == 0) {
        perm = pt_malloc(sizeof *perm * (size_t)(t->nrows ? t->nrows : 1));
        if (!perm) st = oom(err);
        for (int64_t i = 0; st == PT_OK && i < t->nrows; i++) perm[i] = i;
    }
    /* Numbers are assigned in sorted order but written at each row's own
     * position, so the rows keep their order and only the number column is
     * new (the other columns are shared, not gathered). */
    pt_column *rn = NULL;
    if (st == PT_OK) st = pt_column_new(pt_ctx_mem_soft(ctx), PT_TYPE_INT64, t->nrows, 0, &rn, err);
    if (st == PT_OK) {
        int64_t *v = (int64_t *)rn->values->data;
        int64_t num = 0;
        for (int64_t i = 0; i < t->nrows; i++) {
            if (i == 0 || !rows_equal(t, in->nfields, np, perm[i - 1], perm[i])) num = 0;
            v[perm[i]] = ++num;
        }
        rn->values->size = t->nrows * 8;
        rn->length = t->nrows;
    }
    sorted = t;
    t = NULL;
    pt_table *res = NULL;
    if (st == PT_OK) {
        int m = in->nfields + 1;
        pt_column **cols = pt_calloc((size_t)m, sizeof *cols);
        char *names[1025];
        if (!cols) st = oom(err);
        for (int i = 0; st == PT_OK && i < in->nfields; i++) {
            cols[i] = pt_column_retain(sorted->cols[i]);
            names[i] = node->schema->fields[i].name;
        }
        if (st == PT_OK) {
            cols[in->nfields] = rn;
            rn = NULL;
            names[in->nfields] = node->rn_name;
            st = table_from(m, cols, names, &res, err);
        }
        pt_free(cols);
    }
    pt_column_release(rn);
    pt_table_free(sorted);
    pt_table_free(t);
    pt_free(perm);
    pt_free(keys);
    pt_free(desc);
    pt_free(sk);
    if (st != PT_OK) return st;
    return set_result(u, res, err);
}

/* ------------------------------------------------------------------------ */
/* Join                                                                     */
/* ------------------------------------------------------------------------ */

static pt_status run_join(unary_stream *u, pt_error *err) {
    pt_frame *node = u->node;
    pt_ctx *ctx = node->ctx;
    pt_table **l = NULL, **r = NULL;
    int64_t nl = 0, nr = 0;
    pt_status st = drain(u->child, &l, &nl, err);
    if (st == PT_OK) st = drain(u->child2, &r, &nr, err);
    const pt_schema *ls = node->in[0]->schema, *rs = node->in[1]->schema;
    /* A side without rows still needs its columns. */
    if (st == PT_OK && nl == 0) {
        l = pt_calloc(1, sizeof *l);
        if (!l) st = oom(err);
        else st = pt__parts_concat(ctx, NULL, 0, ls, &l[0], err);
        if (st == PT_OK) nl = 1;
    }
    if (st == PT_OK && nr == 0) {
        pt_free(r);
        r = pt_calloc(1, sizeof *r);
        if (!r) st = oom(err);
        else st = pt__parts_concat(ctx, NULL, 0, rs, &r[0], err);
        if (st == PT_OK) nr = 1;
    }
    int lk[256], rk[256];
    for (int i = 0; st == PT_OK && i < node->njkeys && i < 256; i++) {
        lk[i] = pt_schema_find(ls, node->lkeys[i]);
        rk[i] = pt_schema_find(rs, node->rkeys[i]);
    }
    pt_table *res = NULL;
    if (st == PT_OK)
        st = pt__join(ctx, l, nl, r, nr, node->join_type, node->njkeys, lk, rk, &res, err);
    pt__parts_free(l, nl);
    pt__parts_free(r, nr);
    if (st != PT_OK) return st;
    /* Rename to the join's output names (positions match). */
    int n = res->schema->nfields;
    pt_column **cols = pt_calloc((size_t)n + 1, sizeof *cols);
    char *names[2048];
    if (!cols || n != node->schema->nfields) {
        pt_free(cols);
        pt_table_free(res);
        return cols ? pt_error_set(err, PT_EINTERNAL, "join produced %d columns, plan expects %d", n,
                                   node->schema->nfields)
                    : oom(err);
    }
    for (int i = 0; i < n; i++) {
        cols[i] = pt_column_retain(res->cols[i]);
        names[i] = node->schema->fields[i].name;
    }
    pt_table *t;
    st = table_from(n, cols, names, &t, err);
    pt_free(cols);
    pt_table_free(res);
    if (st != PT_OK) return st;
    return set_result(u, t, err);
}

/* ------------------------------------------------------------------------ */
/* Repartition                                                              */
/* ------------------------------------------------------------------------ */

static uint64_t row_hash(const pt_table *t, const int *cols, int n, int64_t i) {
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (int k = 0; k < n; k++) {
        const pt_column *c = t->cols[cols[k]];
        uint64_t v;
        if (!pt_column_is_valid(c, i)) {
            v = 0x6a09e667f3bcc909ULL;
        } else if (pt_type_is_string(c->type)) {
            int64_t len;
            const char *s = pt_column_str(c, i, &len);
            v = pt_hash_bytes(s, (size_t)len, 7);
        } else if (c->type == PT_TYPE_FLOAT64 || c->type == PT_TYPE_FLOAT32) {
            double d = pt_column_get_f64(c, i);
            if (d == 0) d = 0; /* -0.0 hashes like 0.0 */
            memcpy(&v, &d, 8);
            v = pt_hash_u64(v);
        } else {
            v = pt_hash_u64((uint64_t)(int64_t)pt_column_get_f64(c, i));
            if (c->type == PT_TYPE_INT64) v = pt_hash_u64((uint64_t)pt_column_i64(c)[i]);
        }
        h = pt_hash_u64(h ^ v);
    }
    return h;
}

/* Compares row i of column c with row j of column d (same type family);
 * nulls last. */
static int cmp_cell(const pt_column *c, int64_t i, const pt_column *d, int64_t j) {
    bool vi = pt_column_is_valid(c, i), vj = pt_column_is_valid(d, j);
    if (!vi || !vj) return vi == vj ? 0 : (vi ? -1 : 1);
    if (pt_type_is_string(c->type)) {
        int64_t li, lj;
        const char *si = pt_column_str(c, i, &li), *sj = pt_column_str(d, j, &lj);
        int r = memcmp(si, sj, (size_t)(li < lj ? li : lj));
        return r ? r : (li < lj ? -1 : li > lj);
    }
    if (c->type == PT_TYPE_INT64) {
        int64_t a = pt_column_i64(c)[i], b = pt_column_i64(d)[j];
        return a < b ? -1 : a > b;
    }
    double a = pt_column_get_f64(c, i), b = pt_column_get_f64(d, j);
    return a < b ? -1 : a > b;
}

static pt_status run_repart(unary_stream *u, pt_error *err) {
    pt_frame *node = u->node;
    pt_ctx *ctx = node->ctx;
    pt_table **all;
    int64_t n;
    PT_RETURN_NOT_OK(drain(u->child, &all, &n, err));
    pt_table *t = NULL;
    pt_status st = pt__parts_concat(ctx, all, n, node->schema, &t, err);
    pt__parts_free(all, n);
    if (st != PT_OK) return st;
    int64_t np = node->part_n;
    if (node->part_how == PT_PART_ROWS) {
        pt_table **p = pt_calloc((size_t)np, sizeof *p);
        if (!p) st = oom(err);
        for (int64_t i = 0; st == PT_OK && i < np; i++) {
            int64_t lo = t->nrows * i / np, hi = t->nrows * (i + 1) / np;
            st = pt_table_slice(t, lo, hi - lo, &p[i], err);
            if (st != PT_OK) pt__parts_free(p, i), p = NULL;
        }
        pt_table_free(t);
        if (st != PT_OK) return st;
        u->res = p;
        u->nres = np;
        return PT_OK;
    }
    int keys[256];
    for (int i = 0; i < node->npart_keys && i < 256; i++)
        keys[i] = pt_schema_find(t->schema, node->part_keys[i]);
    int64_t *pid = pt_malloc(sizeof *pid * (size_t)(t->nrows ? t->nrows : 1));
    int64_t *count = pt_calloc((size_t)np, sizeof *count);
    if (!pid || !count) st = oom(err);
    if (st == PT_OK && node->part_how == PT_PART_HASH) {
        for (int64_t i = 0; i < t->nrows; i++)
            pid[i] = (int64_t)(row_hash(t, keys, node->npart_keys, i) % (uint64_t)np);
    } else if (st == PT_OK) {
        /* Range: splitters from an evenly spaced sample, sorted. */
        const pt_column *c = t->cols[keys[0]];
        int64_t ns = t->nrows < 100 * np ? t->nrows : 100 * np;
        int64_t *sidx = pt_malloc(sizeof *sidx * (size_t)(ns ? ns : 1));
        if (!sidx) st = oom(err);
        for (int64_t i = 0; st == PT_OK && i < ns; i++) sidx[i] = t->nrows * i / ns;
        pt_table *sample = NULL;
        int64_t *perm = NULL;
        if (st == PT_OK) st = pt_table_take(pt_ctx_mem_soft(ctx), t, sidx, ns, &sample, err);
        pt__sort_key sk = {keys[0], false};
        if (st == PT_OK && ns > 0) st = pt__sort_indices(ctx, sample, 1, &sk, &perm, err);
        if (st == PT_OK) {
            const pt_column *sc = sample->cols[keys[0]];
            /* splitter k = sample row at rank (k+1)*ns/np */
            for (int64_t i = 0; i < t->nrows; i++) {
                int64_t lo = 0, hi = np - 1;
                if (!pt_column_is_valid(c, i)) {
                    pid[i] = np - 1;
                    continue;
                }
                while (lo < hi) { /* first partition whose upper splitter >= value */
                    int64_t mid = (lo + hi) / 2;
                    int64_t r = (mid + 1) * ns / np;
                    if (r >= ns) r = ns - 1;
                    if (cmp_cell(c, i, sc, perm[r]) <= 0) hi = mid;
                    else lo = mid + 1;
                }
                pid[i] = lo;
            }
        }
        pt_free(perm);
        pt_free(sidx);
        pt_table_free(sample);
    }
    if (st == PT_OK) {
        for (int64_t i = 0; i < t->nrows; i++) count[pid[i]]++;
        u->res = pt_calloc((size_t)np, sizeof *u->res);
        if (!u->res) st = oom(err);
        int64_t *idx = pt_malloc(sizeof *idx * (size_t)(t->nrows ? t->nrows : 1));
        int64_t *start = pt_calloc((size_t)np + 1, sizeof *start);
        if (!idx || !start) st = oom(err);
        for (int64_t p = 0; st == PT_OK && p < np; p++) start[p + 1] = start[p] + count[p];
        for (int64_t i = 0; st == PT_OK && i < t->nrows; i++) idx[start[pid[i]]++] = i;
        for (int64_t p = 0; st == PT_OK && p < np; p++) {
            int64_t lo = start[p] - count[p];
            st = pt_table_take(pt_ctx_mem_soft(ctx), t, idx + lo, count[p], &u->res[p], err);
            if (st == PT_OK) u->nres = p + 1;
        }
        pt_free(idx);
        pt_free(start);
    }
    pt_free(pid);
    pt_free(count);
    pt_table_free(t);
    return st;
}

/* ------------------------------------------------------------------------ */

static pt_status blocking_next(pt__stream *s, pt_table ***parts, int64_t *n, pt_error *err) {
    unary_stream *u = (unary_stream *)s;
    if (!u->done) {
        u->done = true;
        pt_status st;
        switch (u->node->kind) {
        case PT__N_AGG: st = run_agg(u, false, err); break;
        case PT__N_DISTINCT: st = run_agg(u, true, err); break;
        case PT__N_SORT:
        case PT__N_TOPN: st = run_sort(u, err); break;
        case PT__N_ROWNUM: st = run_rownum(u, err); break;
        case PT__N_JOIN: st = run_join(u, err); break;
        default: st = run_repart(u, err); break;
        }
        /* Inputs are no longer needed: release their memory now. */
        pt__stream_free(u->child);
        pt__stream_free(u->child2);
        u->child = u->child2 = NULL;
        if (st != PT_OK) return st;
    }
    if (u->node->kind == PT__N_SORT && u->ss) return sort_next(u, parts, n, err);
    return result_next(u, parts, n);
}

pt_status pt__stream_open(pt_frame *f, pt__stream **out, pt_error *err) {
    *out = NULL;
    switch (f->kind) {
    case PT__N_SCAN_TABLE: {
        table_scan *ts = pt_calloc(1, sizeof *ts);
        if (!ts) return oom(err);
        ts->s.next = table_scan_next;
        ts->s.free = table_scan_free;
        ts->s.ctx = f->ctx;
        ts->node = pt_frame_ref(f);
        *out = &ts->s;
        return PT_OK;
    }
    case PT__N_SCAN_CSV: {
        csv_scan *cs = pt_calloc(1, sizeof *cs);
        if (!cs) return oom(err);
        cs->s.next = csv_scan_next;
        cs->s.free = csv_scan_free;
        cs->s.ctx = f->ctx;
        cs->node = pt_frame_ref(f);
        cs->opts = f->csv;
        cs->opts.columns = (const char *const *)f->scan_cols;
        cs->opts.ncolumns = f->nscan_cols;
        *out = &cs->s;
        return PT_OK;
    }
    case PT__N_SCAN_NATIVE: {
        native_scan *ns = pt_calloc(1, sizeof *ns);
        if (!ns) return oom(err);
        ns->s.next = native_scan_next;
        ns->s.free = native_scan_free;
        ns->s.ctx = f->ctx;
        ns->node = pt_frame_ref(f);
        *out = &ns->s;
        return PT_OK;
    }
    default: break;
    }
    unary_stream *u = pt_calloc(1, sizeof *u);
    if (!u) return oom(err);
    u->s.free = unary_free;
    u->s.ctx = f->ctx;
    u->node = pt_frame_ref(f);
    pt_status st = pt__stream_open(f->in[0], &u->child, err);
    if (st == PT_OK && f->in[1]) st = pt__stream_open(f->in[1], &u->child2, err);
    if (st != PT_OK) {
        unary_free(&u->s);
        return st;
    }
    switch (f->kind) {
    case PT__N_FILTER:
    case PT__N_PROJECT: u->s.next = map_next; break;
    case PT__N_LIMIT: u->s.next = limit_next; break;
    case PT__N_UNION: u->s.next = union_next; break;
    case PT__N_REPART:
        /* Rows repartitioning of a streaming input is done on the whole. */
    default: u->s.next = blocking_next; break;
    }
    *out = &u->s;
    return PT_OK;
}

pt_status pt__stream_collect(pt__stream *s, const pt_schema *schema, pt_table **out,
                             pt_error *err) {
    pt_table **all;
    int64_t n;
    PT_RETURN_NOT_OK(drain(s, &all, &n, err));
    pt_status st = pt__parts_concat(s->ctx, all, n, schema, out, err);
    pt__parts_free(all, n);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Public execution entry points                                            */
/* ------------------------------------------------------------------------ */

static pt_status open_optimized(pt_frame *f, pt_frame **opt, pt__stream **s, pt_error *err) {
    if (!f) return pt_error_set(err, PT_EINVAL, "frame is NULL");
    PT_RETURN_NOT_OK(pt__optimize(f, opt, err));
    pt_status st = pt__stream_open(*opt, s, err);
    if (st != PT_OK) pt_frame_free(*opt);
    return st;
}

/* Distributed plans hold each rank's part of every intermediate result in
 * memory; when that does not fit a rank's budget the plan runs as in one
 * process (streaming, spilling) instead, on every rank that needs it. */
static void out_of_core_note(pt_frame *f, const pt_error *err) {
    if (pt_comm_rank(pt_ctx_comm(f->ctx)) == 0)
        pt_log_warn("the distributed plan does not fit each rank's memory budget (%s); running "
                    "it out of core in each process instead",
                    err ? err->msg : "budget exceeded");
}

pt_status pt__plan_run(pt_frame *optimized, pt_table **out, pt_error *err) {
    *out = NULL;
    pt__stream *s;
    PT_RETURN_NOT_OK(pt__stream_open(optimized, &s, err));
    pt_status st = pt__stream_collect(s, optimized->schema, out, err);
    pt__stream_free(s);
    return st;
}

static pt_status collect(pt_frame *f, bool everywhere, pt_table **out, pt_error *err) {
    *out = NULL;
    if (!f) return pt_error_set(err, PT_EINVAL, "frame is NULL");
    pt_frame *opt;
    PT_RETURN_NOT_OK(pt__optimize(f, &opt, err));
    pt_status st = PT_EBUDGET;
    if (pt__dist_active(f)) {
        st = pt__dist_collect(opt, everywhere, out, err);
        if (st == PT_EBUDGET) {
            /* Every rank got the same PT_EBUDGET (the ranks agree on it). */
            out_of_core_note(f, err);
            if (!everywhere && pt_comm_rank(pt_ctx_comm(f->ctx)) != 0)
                st = pt__parts_concat(f->ctx, NULL, 0, opt->schema, out, err);
        }
    }
    if (st == PT_EBUDGET) st = pt__plan_run(opt, out, err);
    pt_frame_free(opt);
    return st;
}

pt_status pt_frame_collect(pt_frame *f, pt_table **out, pt_error *err) {
    return collect(f, true, out, err);
}

pt_status pt_frame_collect_root(pt_frame *f, pt_table **out, pt_error *err) {
    return collect(f, false, out, err);
}

/* Writes table t as CSV to path. */
static pt_status write_table_csv(const pt_table *t, const char *path, const pt_csv_write_opts *opts,
                                 pt_error *err) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return pt_error_set(err, PT_EIO, "%s: cannot create: %s", path, strerror(errno));
    pt_status st = pt_csv_write_file(t, fp, 1, opts, err);
    if (fclose(fp) != 0 && st == PT_OK)
        st = pt_error_set(err, PT_EIO, "%s: write failed: %s", path, strerror(errno));
    if (st != PT_OK) remove(path);
    return st;
}

static pt_status write_csv_local(pt_frame *f, const char *path, const pt_csv_write_opts *opts,
                                 pt_error *err);

/* Distributed: when every rank names the same file, the result is gathered
 * to rank 0, which writes it; when the ranks name different files (a
 * per-process temporary directory, say), each writes the whole result to
 * its own. The ranks then agree on how the writes went. */
static pt_status write_csv_dist(pt_frame *f, const char *path, const pt_csv_write_opts *opts,
                                pt_error *err) {
    pt_comm *c = pt_ctx_comm(f->ctx);
    int64_t h[2] = {(int64_t)(pt_hash_bytes(path, strlen(path), 7) >> 1), 0};
    h[1] = -h[0];
    PT_RETURN_NOT_OK(pt_comm_allreduce(c, h, 2, PT_DTYPE_INT64, PT_REDOP_MAX, err));
    bool same = h[0] == -h[1];
    bool writer = !same || pt_comm_rank(c) == 0;
    pt_frame *opt;
    PT_RETURN_NOT_OK(pt__optimize(f, &opt, err));
    pt_table *t = NULL;
    pt_status st = pt__dist_collect(opt, !same, &t, err);
    pt_frame_free(opt);
    if (st == PT_EBUDGET) {
        /* No collective from here: the writers stream the plan alone. */
        out_of_core_note(f, err);
        return writer ? write_csv_local(f, path, opts, err) : PT_OK;
    }
    if (st != PT_OK) return st;
    if (writer) st = write_table_csv(t, path, opts, err);
    pt_table_free(t);
    int64_t bad = st != PT_OK;
    pt_error cerr;
    pt_status cs = pt_comm_allreduce(c, &bad, 1, PT_DTYPE_INT64, PT_REDOP_MAX, &cerr);
    if (cs != PT_OK) {
        if (err) *err = cerr;
        return cs;
    }
    if (bad && st == PT_OK)
        return pt_error_set(err, PT_EIO, "%s: another rank could not write its result", path);
    return st;
}

pt_status pt_frame_write_csv(pt_frame *f, const char *path, const pt_csv_write_opts *opts,
                             pt_error *err) {
    if (f && path && pt__dist_active(f)) return write_csv_dist(f, path, opts, err);
    return write_csv_local(f, path, opts, err);
}

static pt_status write_csv_local(pt_frame *f, const char *path, const pt_csv_write_opts *opts,
                                 pt_error *err) {
    pt_frame *opt;
    pt__stream *s;
    PT_RETURN_NOT_OK(open_optimized(f, &opt, &s, err));
    FILE *fp = fopen(path, "wb");
    pt_status st = PT_OK;
    if (!fp) st = pt_error_set(err, PT_EIO, "%s: cannot create: %s", path, strerror(errno));
    bool header = true;
    while (st == PT_OK) {
        pt_table **parts;
        int64_t n;
        st = s->next(s, &parts, &n, err);
        if (st != PT_OK || !parts) break;
        for (int64_t i = 0; i < n && st == PT_OK; i++) {
            st = pt_csv_write_file(parts[i], fp, header, opts, err);
            header = false;
        }
        pt__parts_free(parts, n);
    }
    if (st == PT_OK && header) {
        /* No rows: still write the header line. */
        pt_table *e;
        st = pt__parts_concat(f->ctx, NULL, 0, opt->schema, &e, err);
        if (st == PT_OK) st = pt_csv_write_file(e, fp, 1, opts, err);
        pt_table_free(e);
    }
    if (fp && fclose(fp) != 0 && st == PT_OK)
        st = pt_error_set(err, PT_EIO, "%s: write failed: %s", path, strerror(errno));
    if (st != PT_OK && fp) remove(path);
    pt__stream_free(s);
    pt_frame_free(opt);
    return st;
}

pt_status pt_frame_scalar_f64(pt_frame *f, double *out, pt_error *err) {
    pt_table *t;
    PT_RETURN_NOT_OK(pt_frame_collect(f, &t, err));
    pt_status st = PT_OK;
    if (t->nrows != 1 || t->schema->nfields != 1) {
        st = pt_error_set(err, PT_EINVAL,
                          "scalar: the frame has %lld rows and %d columns, not one value",
                          (long long)t->nrows, t->schema->nfields);
    } else if (!pt_type_is_numeric(t->cols[0]->type) && t->cols[0]->type != PT_TYPE_BOOL) {
        st = pt_error_set(err, PT_ETYPE, "scalar: the value is %s, not a number",
                          pt_type_name(t->cols[0]->type));
    } else {
        *out = pt_column_is_valid(t->cols[0], 0) ? pt_column_get_f64(t->cols[0], 0) : NAN;
    }
    pt_table_free(t);
    return st;
}

pt_status pt_frame_balance(pt_frame *f, pt_balance *out, pt_error *err) {
    memset(out, 0, sizeof *out);
    pt_frame *opt;
    pt__stream *s;
    PT_RETURN_NOT_OK(open_optimized(f, &opt, &s, err));
    pt_status st = PT_OK;
    int64_t total = 0;
    out->min_rows = INT64_MAX;
    while (st == PT_OK) {
        pt_table **parts;
        int64_t n;
        st = s->next(s, &parts, &n, err);
        if (st != PT_OK || !parts) break;
        for (int64_t i = 0; i < n; i++) {
            int64_t r = parts[i]->nrows;
            out->partitions++;
            total += r;
            if (r < out->min_rows) out->min_rows = r;
            if (r > out->max_rows) out->max_rows = r;
        }
        pt__parts_free(parts, n);
    }
    if (out->partitions == 0) out->min_rows = 0;
    out->mean_rows = out->partitions ? (double)total / (double)out->partitions : 0;
    pt__stream_free(s);
    pt_frame_free(opt);
    return st;
}
