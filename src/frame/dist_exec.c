/*
 * dist_exec.c - running an optimised plan over the ranks of a comm.
 *
 * The plan is cut at the operators that need rows from other ranks. A
 * subtree made only of scans, filters, projections, unions and local
 * repartitions runs unchanged on every rank over that rank's share of the
 * input (contiguous rows of in-memory tables, byte ranges of CSV files,
 * batches of native files), through the ordinary streaming executor, so
 * filters and projections stay fused into the scan and nothing is
 * materialised twice. Above it:
 *   group-by with count/sum/avg/min/max: local partial aggregation fused
 *     over the share, exchange of the partials by key hash, final merge
 *     (global aggregates: the partials are allgathered and merged on every
 *     rank); other aggregates (median, std, count distinct, ...) exchange
 *     the rows by key hash (or gather them to rank 0 without keys);
 *   sort: sample sort (range exchange on the first key, local stable sort);
 *   limit / top-n: local limit of offset + n rows, gather, final limit;
 *   join: broadcast (allgather) of a small side that may be broadcast for
 *     the join type, else hash exchange of both sides on the keys;
 *   distinct, ROW_NUMBER with PARTITION BY: hash exchange, then local;
 *     without PARTITION BY: gathered to rank 0.
 * Every intermediate result is this rank's part of the rows, or (marked
 * `repl`) the whole result held by every rank. Shares are cut in rank order
 * and every exchange keeps sender-rank order, so rank order is input order:
 * a gathered scan comes back in file order, and sorts are stable as in one
 * process.
 *
 * Memory: intermediate results are held in memory, a part per rank. A plan
 * whose files would give each rank more than half its budget is refused
 * with PT_EBUDGET before any work (the same decision everywhere), as is one
 * that runs out of budget on the way (agreed); the callers in plan_exec.c
 * then run it out of core in each process.
 *
 * Failures: after each local step the ranks agree on the status (a small
 * allreduce), and the failing rank's message is broadcast, so every rank
 * returns the same error naming the rank instead of waiting for a peer
 * that gave up; a rank that dies is named by the comm layer's timeouts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frame/dist.h"
#include "frame/expr.h"
#include "frame/plan.h"
#include "io/csv_share.h"

typedef struct dctx {
    pt_ctx *ctx;
    pt_comm *c;
    int rank, size;
} dctx;

typedef struct dres {
    pt_table *t;
    bool repl; /* every rank holds the whole result */
} dres;

/* Time spent moving rows between ranks (and agreeing) in this thread's
 * current or last distributed collect, for benchmarks. */
static _Thread_local double g_xchg_s;

void pt__dist_exec_stats(double *exchange_s) {
    if (exchange_s) *exchange_s = g_xchg_s;
}

bool pt__dist_active(const pt_frame *f) {
    pt_comm *c = f ? pt_ctx_comm(f->ctx) : NULL;
    return c && pt_comm_size(c) > 1;
}

/* ------------------------------------------------------------------------ */
/* Agreement on failures                                                    */
/* ------------------------------------------------------------------------ */

/* Collective: returns PT_OK when every rank's `st` is PT_OK; otherwise the
 * error of the highest-numbered failing rank, on every rank. */
static pt_status agree(dctx *D, pt_status st, pt_error *err) {
    /* A failed comm already told every rank (or names who is missing). */
    if (st != PT_OK && pt_comm_failed(D->c)) return st;
    int64_t who = st != PT_OK ? D->rank + 1 : 0;
    pt_error cerr;
    double t0 = pt_now_s();
    pt_status cs = pt_comm_allreduce(D->c, &who, 1, PT_DTYPE_INT64, PT_REDOP_MAX, &cerr);
    g_xchg_s += pt_now_s() - t0;
    if (cs != PT_OK) {
        if (err) *err = cerr;
        return cs;
    }
    if (who == 0) return PT_OK;
    /* That rank (the MAX) reports; its message goes to all. */
    struct {
        int64_t code;
        char msg[PT_ERROR_MSG_SIZE];
    } m;
    memset(&m, 0, sizeof m);
    int root = (int)who - 1;
    if (D->rank == root) {
        m.code = st;
        snprintf(m.msg, sizeof m.msg, "%s", err && err->msg[0] ? err->msg : pt_status_name(st));
    }
    cs = pt_comm_bcast(D->c, &m, (int64_t)sizeof m, root, &cerr);
    if (cs != PT_OK) {
        if (err) *err = cerr;
        return cs;
    }
    if (D->rank == root) return st;
    if (strncmp(m.msg, "rank ", 5) == 0)
        return pt_error_set(err, (pt_status)m.code, "%s", m.msg);
    return pt_error_set(err, (pt_status)m.code, "rank %d: %s", root, m.msg);
}

/* ------------------------------------------------------------------------ */
/* Local pieces                                                             */
/* ------------------------------------------------------------------------ */


static pt_status table_node(dctx *D, const pt_table *t, pt_frame **out, pt_error *err) {
    return pt_frame_from_table(D->ctx, t, 0, out, err);
}

/* A copy of node f over new inputs (references taken). */
static pt_status with_inputs(pt_frame *f, pt_frame *in0, pt_frame *in1, pt_frame **out,
                             pt_error *err) {
    PT_RETURN_NOT_OK(pt__node_clone(f, out, err));
    pt_frame_free((*out)->in[0]);
    pt_frame_free((*out)->in[1]);
    (*out)->in[0] = pt_frame_ref(in0);
    (*out)->in[1] = pt_frame_ref(in1);
    return PT_OK;
}

/* Runs node f over materialised inputs a (and b). */
static pt_status apply(dctx *D, pt_frame *f, const pt_table *a, const pt_table *b,
                       pt_table **out, pt_error *err) {
    *out = NULL;
    pt_frame *na = NULL, *nb = NULL, *g = NULL;
    pt_status st = table_node(D, a, &na, err);
    if (st == PT_OK && b) st = table_node(D, b, &nb, err);
    if (st == PT_OK) st = with_inputs(f, na, nb, &g, err);
    if (st == PT_OK) st = pt__plan_run(g, out, err);
    pt_frame_free(g);
    pt_frame_free(na);
    pt_frame_free(nb);
    return st;
}

static pt_status empty_of(dctx *D, const pt_schema *s, pt_table **out, pt_error *err) {
    return pt__parts_concat(D->ctx, NULL, 0, s, out, err);
}

/* This rank's part of a result: a replicated result stays on rank 0. */
static pt_status as_part(dctx *D, dres *r, pt_error *err) {
    if (!r->repl) return PT_OK;
    r->repl = false;
    if (D->rank == 0) return PT_OK;
    pt_table *e;
    PT_RETURN_NOT_OK(pt_table_slice(r->t, 0, 0, &e, err));
    pt_table_free(r->t);
    r->t = e;
    return PT_OK;
}

/* The columns of schema s, by name, from t (extra helper columns dropped). */
static pt_status fit_schema(pt_table **t, const pt_schema *s, pt_error *err) {
    if ((*t)->schema->nfields == s->nfields) return PT_OK;
    pt_table *r;
    PT_RETURN_NOT_OK(pt__select_schema(*t, s, &r, err));
    pt_table_free(*t);
    *t = r;
    return PT_OK;
}

/* Text columns are dictionaries on some ranks and plain utf8 on others
 * (each rank's reader chose from its own rows); exchanges need one layout,
 * so a column that is not a dictionary everywhere becomes utf8. */
static pt_status agree_text(dctx *D, pt_table **t, pt_error *err) {
    int n = (*t)->schema->nfields;
    int64_t *plain = pt_calloc((size_t)(n ? n : 1), sizeof *plain);
    if (!plain) return pt_error_set(err, PT_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) plain[i] = (*t)->cols[i]->type == PT_TYPE_UTF8;
    pt_status st = pt_comm_allreduce(D->c, plain, n, PT_DTYPE_INT64, PT_REDOP_MAX, err);
    pt_column **cols = NULL;
    bool change = false;
    for (int i = 0; st == PT_OK && i < n; i++)
        if (plain[i] && (*t)->cols[i]->type == PT_TYPE_DICT) change = true;
    if (st == PT_OK && change) {
        cols = pt_calloc((size_t)n, sizeof *cols);
        if (!cols) st = pt_error_set(err, PT_ENOMEM, "out of memory");
        for (int i = 0; st == PT_OK && i < n; i++) {
            pt_column *c = (*t)->cols[i];
            if (plain[i] && c->type == PT_TYPE_DICT)
                st = pt_column_cast(pt_ctx_mem_soft(D->ctx), c, PT_TYPE_UTF8, &cols[i], err);
            else
                cols[i] = pt_column_retain(c);
        }
        pt_schema *s = NULL;
        if (st == PT_OK) {
            const char **names = pt_malloc(sizeof *names * (size_t)n);
            pt_type *types = pt_malloc(sizeof *types * (size_t)n);
            if (!names || !types) st = pt_error_set(err, PT_ENOMEM, "out of memory");
            for (int i = 0; st == PT_OK && i < n; i++) {
                names[i] = (*t)->schema->fields[i].name;
                types[i] = cols[i]->type;
            }
            if (st == PT_OK) st = pt_schema_new(n, names, types, &s, err);
            pt_free(names);
            pt_free(types);
        }
        pt_table *r = NULL;
        if (st == PT_OK) {
            st = pt_table_new(s, cols, &r, err);
            if (st == PT_OK) {
                pt_table_free(*t);
                *t = r;
            }
        } else {
            pt_schema_free(s);
            for (int i = 0; i < n; i++) pt_column_release(cols[i]);
        }
        pt_free(cols);
    }
    pt_free(plain);
    return st;
}

static pt_status shuffle_hash(dctx *D, pt_table **t, int nkeys, const int *keys, pt_error *err) {
    double t0 = pt_now_s();
    PT_RETURN_NOT_OK(agree_text(D, t, err));
    pt_table *r;
    pt_status st = pt__dist_shuffle_hash(D->c, D->ctx, t, 1, nkeys, keys, &r, err);
    g_xchg_s += pt_now_s() - t0;
    if (st != PT_OK) return st;
    pt_table_free(*t);
    *t = r;
    return PT_OK;
}

/* Gathers every rank's part to rank 0; the others keep an empty table. */
static pt_status gather_root(dctx *D, pt_table **t, pt_error *err) {
    double t0 = pt_now_s();
    PT_RETURN_NOT_OK(agree_text(D, t, err));
    pt_table *r = NULL;
    pt_status st = pt__dist_gather(D->c, D->ctx, *t, 0, &r, err);
    g_xchg_s += pt_now_s() - t0;
    if (st != PT_OK) return st;
    if (D->rank == 0) {
        pt_table_free(*t);
        *t = r;
        return PT_OK;
    }
    pt_table *e;
    PT_RETURN_NOT_OK(pt_table_slice(*t, 0, 0, &e, err));
    pt_table_free(*t);
    *t = e;
    return PT_OK;
}

static pt_status allgather(dctx *D, pt_table **t, pt_error *err) {
    double t0 = pt_now_s();
    PT_RETURN_NOT_OK(agree_text(D, t, err));
    pt_table *r;
    pt_status st = pt__dist_allgather_table(D->c, D->ctx, *t, &r, err);
    g_xchg_s += pt_now_s() - t0;
    if (st != PT_OK) return st;
    pt_table_free(*t);
    *t = r;
    return PT_OK;
}

/* Column positions of plain column references; false if one is not. */
static bool col_positions(const pt_schema *s, pt_expr *const *e, int n, int *pos) {
    for (int i = 0; i < n; i++) {
        if (!e[i] || e[i]->kind != PT__E_COL) return false;
        pos[i] = pt_schema_find(s, e[i]->str);
        if (pos[i] < 0) return false;
    }
    return true;
}

/* Positions of n key expressions in *t, adding computed columns "__dk<i>"
 * for keys that are not plain columns. */
static pt_status key_columns(dctx *D, pt_table **t, pt_expr *const *keys, int n, int *pos,
                             pt_error *err) {
    if (col_positions((*t)->schema, keys, n, pos)) return PT_OK;
    pt_frame *f = NULL;
    PT_RETURN_NOT_OK(table_node(D, *t, &f, err));
    pt_status st = PT_OK;
    for (int i = 0; st == PT_OK && i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "__dk%d", i);
        pt_frame *g = NULL;
        st = pt_frame_with_column(f, name, pt_expr_ref(keys[i]), &g, err);
        pt_frame_free(f);
        f = g;
    }
    pt_table *r = NULL;
    if (st == PT_OK) st = pt__plan_run(f, &r, err);
    pt_frame_free(f);
    if (st != PT_OK) return st;
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "__dk%d", i);
        pos[i] = pt_schema_find(r->schema, name);
    }
    pt_table_free(*t);
    *t = r;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Shares of the scans                                                      */
/* ------------------------------------------------------------------------ */

static bool local_only(const pt_frame *f) {
    switch (f->kind) {
    case PT__N_SCAN_CSV:
    case PT__N_SCAN_TABLE:
    case PT__N_SCAN_NATIVE: return true;
    case PT__N_FILTER:
    case PT__N_PROJECT:
    case PT__N_REPART: return local_only(f->in[0]);
    case PT__N_UNION: return local_only(f->in[0]) && local_only(f->in[1]);
    default: return false;
    }
}

static pt_status share_table(dctx *D, pt_frame *c, pt_error *err) {
    int64_t total = 0;
    for (int64_t i = 0; i < c->nparts; i++) total += c->parts[i]->nrows;
    int64_t lo, hi;
    pt__dist_share(total, D->rank, D->size, &lo, &hi);
    int64_t at = 0, m = 0;
    pt_status st = PT_OK;
    for (int64_t i = 0; i < c->nparts; i++) {
        pt_table *p = c->parts[i];
        int64_t a = lo > at ? lo : at, b = hi < at + p->nrows ? hi : at + p->nrows;
        at += p->nrows;
        if (st == PT_OK && b > a) {
            pt_table *s;
            st = pt_table_slice(p, a - (at - p->nrows), b - a, &s, err);
            if (st == PT_OK) c->parts[m++] = s;
        }
        pt_table_free(p);
    }
    c->nparts = m;
    return st;
}

/* Splits the data bytes of the CSV files of c between the ranks (the files
 * are one address space, cut in equal ranges), then finds where each
 * rank's rows start: a rank learns the quote parity and line number at the
 * start of its range from the counts of the ranks before it (one
 * allgather), so the split is exact even with newlines inside quotes. */
static pt_status share_csv(dctx *D, pt_frame *c, pt_error *err) {
    int n = c->npaths;
    /* per file: data offset, end, first data line; then the quote char */
    int64_t *body = pt_calloc((size_t)n * 3 + 1, sizeof *body);
    int64_t *cnt = pt_calloc((size_t)n * 2 * (size_t)D->size + 1, sizeof *cnt);
    int64_t *mine = pt_calloc((size_t)n * 2 + 1, sizeof *mine);
    int64_t *rng = pt_malloc(sizeof(int64_t) * 3 * (size_t)(n ? n : 1));
    pt_status st = body && cnt && mine && rng ? PT_OK : pt_error_set(err, PT_ENOMEM, "out of memory");
    /* Opening a reader reads its first window and infers types: rank 0 does
     * it once per file and tells the others what they need. */
    if (body) body[3 * n] = '"';
    for (int i = 0; st == PT_OK && D->rank == 0 && i < n; i++) {
        pt_csv_reader *r;
        st = pt_csv_open(c->ctx, c->paths[i], &c->csv, &r, err);
        if (st != PT_OK) break;
        body[3 * i] = pt__csv_reader_body_offset(r);
        body[3 * i + 1] = pt_csv_reader_file_size(r);
        body[3 * i + 2] = pt__csv_reader_body_line(r);
        body[3 * n] = pt__csv_reader_quote(r);
        pt_csv_close(r);
        if (body[3 * i + 1] < body[3 * i]) body[3 * i + 1] = body[3 * i];
    }
    st = agree(D, st, err);
    if (st == PT_OK)
        st = pt_comm_bcast(D->c, body, (int64_t)sizeof *body * (3 * (int64_t)n + 1), 0, err);
    char quote = body ? (char)body[3 * n] : '"';
    int64_t total = 0;
    for (int i = 0; st == PT_OK && i < n; i++) total += body[3 * i + 1] - body[3 * i];
    int64_t glo = 0, ghi = 0;
    pt__dist_share(total, D->rank, D->size, &glo, &ghi);
    /* count quotes and newlines in this rank's piece of each file */
    int64_t base = 0;
    for (int i = 0; st == PT_OK && i < n; i++) {
        int64_t b = body[3 * i], e = body[3 * i + 1], len = e - b;
        int64_t lo = glo - base, hi = ghi - base;
        if (lo < 0) lo = 0;
        if (hi > len) hi = len;
        if (hi > lo)
            st = pt__csv_count_range(c->paths[i], b + lo, b + hi, quote, &mine[2 * i],
                                     &mine[2 * i + 1], err);
        base += len;
    }
    st = agree(D, st, err);
    if (st == PT_OK)
        st = pt_comm_allgather(D->c, mine, (int64_t)sizeof(int64_t) * 2 * n, cnt, err);
    base = 0;
    for (int i = 0; st == PT_OK && i < n; i++) {
        int64_t b = body[3 * i], e = body[3 * i + 1], len = e - b;
        int64_t lo = glo - base, hi = ghi - base;
        base += len;
        rng[3 * i] = rng[3 * i + 1] = -1;
        rng[3 * i + 2] = 0;
        if (lo < 0) lo = 0;
        if (hi > len) hi = len;
        if (hi <= lo) continue;
        int64_t q = 0, nl = 0;
        for (int r = 0; r < D->rank; r++) {
            q += cnt[(size_t)r * 2 * (size_t)n + 2 * (size_t)i];
            nl += cnt[(size_t)r * 2 * (size_t)n + 2 * (size_t)i + 1];
        }
        int64_t start = b + lo, snl = 0, end = e, enl = 0;
        if (lo > 0) st = pt__csv_row_start(c->paths[i], b + lo, e, quote, (int)(q & 1), &start, &snl, err);
        if (st == PT_OK && hi < len)
            st = pt__csv_row_start(c->paths[i], b + hi, e, quote, (int)((q + mine[2 * i]) & 1),
                                   &end, &enl, err);
        if (st != PT_OK) break;
        if (start >= end) continue;
        rng[3 * i] = start;
        rng[3 * i + 1] = end;
        rng[3 * i + 2] = body[3 * i + 2] + nl + snl;
    }
    st = agree(D, st, err); /* a read error on one rank */
    pt_free(body);
    pt_free(cnt);
    pt_free(mine);
    if (st == PT_OK) {
        pt_free(c->csv_range);
        c->csv_range = rng;
    } else {
        pt_free(rng);
    }
    return st;
}

static pt_status share_native(dctx *D, pt_frame *c, pt_error *err) {
    pt_native_reader *r;
    PT_RETURN_NOT_OK(pt_native_open_read(pt_ctx_mem_soft(c->ctx), c->native_path, &r, err));
    int64_t nb = pt_native_num_batches(r);
    pt_native_close_read(r);
    pt__dist_share(nb, D->rank, D->size, &c->nat_lo, &c->nat_hi);
    c->nat_share = true;
    return PT_OK;
}

/* A copy of the local-only tree f that reads this rank's share. Not a
 * collective except for CSV scans (share_csv), which every rank reaches in
 * the same order because the tree is the same everywhere. */
static pt_status share_tree(dctx *D, pt_frame *f, pt_frame **out, pt_error *err) {
    *out = NULL;
    pt_frame *a = NULL, *b = NULL;
    pt_status st = PT_OK;
    if (f->in[0]) st = share_tree(D, f->in[0], &a, err);
    if (st == PT_OK && f->in[1]) st = share_tree(D, f->in[1], &b, err);
    pt_frame *c = NULL;
    if (st == PT_OK) st = with_inputs(f, a, b, &c, err);
    pt_frame_free(a);
    pt_frame_free(b);
    if (st != PT_OK) return st;
    switch (f->kind) {
    case PT__N_SCAN_TABLE: st = share_table(D, c, err); break;
    case PT__N_SCAN_CSV: st = share_csv(D, c, err); break;
    case PT__N_SCAN_NATIVE: st = share_native(D, c, err); break;
    default: break;
    }
    if (st != PT_OK) {
        pt_frame_free(c);
        return st;
    }
    *out = c;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Evaluation                                                               */
/* ------------------------------------------------------------------------ */

static pt_status deval(dctx *D, pt_frame *f, dres *out, pt_error *err);

/* Input i of f as a frame to build on: the share tree when it is local
 * (so that f's local step fuses with the scan), else its materialised
 * result. *repl tells whether that input is replicated. */
static pt_status input_frame(dctx *D, pt_frame *in, pt_frame **out, bool *repl, pt_error *err) {
    *out = NULL;
    *repl = false;
    if (local_only(in)) return share_tree(D, in, out, err);
    dres r = {0};
    PT_RETURN_NOT_OK(deval(D, in, &r, err));
    *repl = r.repl;
    pt_status st = table_node(D, r.t, out, err);
    pt_table_free(r.t);
    return st;
}

static pt_status input_table(dctx *D, pt_frame *in, dres *out, pt_error *err) {
    out->t = NULL;
    out->repl = false;
    if (!local_only(in)) return deval(D, in, out, err);
    pt_frame *s = NULL;
    pt_status st = share_tree(D, in, &s, err);
    if (st == PT_OK) st = pt__plan_run(s, &out->t, err);
    pt_frame_free(s);
    return agree(D, st, err);
}

/* Runs node f locally over input frame(s) given; the status is agreed. */
static pt_status step(dctx *D, pt_frame *f, pt_frame *a, pt_frame *b, pt_table **out,
                      pt_error *err) {
    pt_frame *g = NULL;
    pt_status st = with_inputs(f, a, b, &g, err);
    if (st == PT_OK) st = pt__plan_run(g, out, err);
    pt_frame_free(g);
    return agree(D, st, err);
}

/* ---- group-by ------------------------------------------------------------ */

static bool decomposable(const pt_frame *g) {
    for (int a = 0; a < g->naggs; a++) {
        switch (g->aggs[a]->agg) {
        case PT_AGG_COUNT:
        case PT_AGG_COUNT_STAR:
        case PT_AGG_SUM:
        case PT_AGG_MIN:
        case PT_AGG_MAX:
        case PT_AGG_MEAN: break;
        default: return false;
        }
    }
    return true;
}

/* e with every column reference "__agg<a>" replaced by sub[a]. */
static pt_expr *subst_aggs(const pt_expr *e, pt_expr *const *sub, int n) {
    if (e->kind == PT__E_COL && strncmp(e->str, "__agg", 5) == 0) {
        int a = atoi(e->str + 5);
        if (a >= 0 && a < n) return pt_expr_ref(sub[a]);
    }
    if (e->nargs == 0) return pt_expr_ref((pt_expr *)e);
    pt_expr *args[64];
    if (e->nargs > 64) return NULL;
    for (int i = 0; i < e->nargs; i++) {
        args[i] = e->args[i] ? subst_aggs(e->args[i], sub, n) : NULL;
        if (e->args[i] && !args[i]) {
            for (int k = 0; k < i; k++) pt_expr_free(args[k]);
            return NULL;
        }
    }
    return pt__expr_with_args(e, args);
}

static pt_expr *pcol(int m) {
    char name[32];
    snprintf(name, sizeof name, "__p%d", m);
    return pt_col(name);
}

/* Builds the partial and final group-bys of a decomposable aggregation g:
 * partial over `in` gives keys + "__p<m>" columns; final over the partials
 * gives g's output. */
static pt_status split_agg(pt_frame *g, pt_frame *in, pt_frame **partial, pt_expr ***fkeys,
                           pt_expr ***fexprs, pt_error *err) {
    *partial = NULL;
    *fkeys = *fexprs = NULL;
    int na = g->naggs, nk = g->nkeys;
    pt_expr **pk = pt_calloc((size_t)nk + 1, sizeof *pk);
    pt_expr **pa = pt_calloc(2 * (size_t)na + 1, sizeof *pa);
    pt_expr **sub = pt_calloc((size_t)na + 1, sizeof *sub);
    pt_expr **fk = pt_calloc((size_t)nk + 1, sizeof *fk);
    pt_expr **fe = pt_calloc((size_t)g->nexprs + 1, sizeof *fe);
    pt_status st = pk && pa && sub && fk && fe ? PT_OK : pt_error_set(err, PT_ENOMEM, "out of memory");
    int m = 0;
    for (int j = 0; st == PT_OK && j < nk; j++) {
        pk[j] = pt_alias(pt_expr_ref(g->keys[j]), g->key_names[j]);
        fk[j] = pt_col(g->key_names[j]);
    }
    for (int a = 0; st == PT_OK && a < na; a++) {
        pt_expr *ag = g->aggs[a];
        char name[32];
        switch (ag->agg) {
        case PT_AGG_MEAN: {
            snprintf(name, sizeof name, "__p%d", m);
            pa[m] = pt_alias(pt_agg(PT_AGG_SUM, pt_expr_ref(ag->args[0]), NULL), name);
            snprintf(name, sizeof name, "__p%d", m + 1);
            pa[m + 1] = pt_alias(pt_agg(PT_AGG_COUNT, pt_expr_ref(ag->args[0]), NULL), name);
            pt_expr *s = pt_cast(pt_agg(PT_AGG_SUM, pcol(m), NULL), PT_TYPE_FLOAT64);
            pt_expr *c = pt_cast(pt_agg(PT_AGG_SUM, pcol(m + 1), NULL), PT_TYPE_FLOAT64);
            sub[a] = pt_binary(PT_OP_DIV, s, c);
            m += 2;
            break;
        }
        default: {
            snprintf(name, sizeof name, "__p%d", m);
            pa[m] = pt_alias(pt_expr_ref(ag), name);
            pt_agg_kind fk2 = ag->agg == PT_AGG_MIN ? PT_AGG_MIN
                              : ag->agg == PT_AGG_MAX ? PT_AGG_MAX
                                                      : PT_AGG_SUM;
            sub[a] = pt_agg(fk2, pcol(m), NULL);
            m += 1;
        }
        }
    }
    for (int i = 0; st == PT_OK && i < g->nexprs; i++) {
        pt_expr *e = subst_aggs(g->exprs[i], sub, na);
        fe[i] = e ? pt_alias(e, g->names[i]) : NULL;
        if (!fe[i]) st = pt_error_set(err, PT_ENOMEM, "out of memory");
    }
    if (st == PT_OK) {
        st = pt_frame_groupby(in, nk, pk, m, pa, partial, err); /* takes pk, pa */
        pk = NULL;
        pa = NULL;
    }
    if (pk)
        for (int j = 0; j < nk; j++) pt_expr_free(pk[j]);
    if (pa)
        for (int j = 0; j < m; j++) pt_expr_free(pa[j]);
    pt_free(pk);
    pt_free(pa);
    for (int a = 0; a < na; a++) pt_expr_free(sub ? sub[a] : NULL);
    pt_free(sub);
    if (st != PT_OK) {
        for (int j = 0; fk && j < nk; j++) pt_expr_free(fk[j]);
        for (int j = 0; fe && j < g->nexprs; j++) pt_expr_free(fe[j]);
        pt_free(fk);
        pt_free(fe);
        return st;
    }
    *fkeys = fk;
    *fexprs = fe;
    return PT_OK;
}

static pt_status dist_agg(dctx *D, pt_frame *g, dres *out, pt_error *err) {
    pt_frame *in = NULL;
    bool repl;
    PT_RETURN_NOT_OK(input_frame(D, g->in[0], &in, &repl, err));
    pt_status st;
    if (repl) { /* every rank has all rows: aggregate locally */
        st = step(D, g, in, NULL, &out->t, err);
        out->repl = true;
        pt_frame_free(in);
        return st;
    }
    if (decomposable(g)) {
        pt_frame *partial = NULL;
        pt_expr **fk = NULL, **fe = NULL;
        st = split_agg(g, in, &partial, &fk, &fe, err);
        pt_frame_free(in);
        pt_table *pt = NULL;
        if (st == PT_OK) st = pt__plan_run(partial, &pt, err);
        pt_frame_free(partial);
        st = agree(D, st, err);
        if (st == PT_OK) {
            if (g->nkeys > 0) {
                int *keys = pt_malloc(sizeof *keys * (size_t)g->nkeys);
                if (!keys) st = pt_error_set(err, PT_ENOMEM, "out of memory");
                for (int j = 0; keys && j < g->nkeys; j++) keys[j] = j;
                st = agree(D, st, err);
                if (st == PT_OK) st = shuffle_hash(D, &pt, g->nkeys, keys, err);
                pt_free(keys);
            } else {
                st = allgather(D, &pt, err);
                out->repl = true;
            }
        }
        pt_frame *tf = NULL, *fin = NULL;
        if (st == PT_OK) st = table_node(D, pt, &tf, err);
        if (st == PT_OK) {
            st = pt_frame_groupby(tf, g->nkeys, fk, g->nexprs, fe, &fin, err);
            fk = fe = NULL;
        }
        if (st == PT_OK) st = pt__plan_run(fin, &out->t, err);
        if (st == PT_OK) st = fit_schema(&out->t, g->schema, err);
        if (fk)
            for (int j = 0; j < g->nkeys; j++) pt_expr_free(fk[j]);
        if (fe)
            for (int j = 0; j < g->nexprs; j++) pt_expr_free(fe[j]);
        pt_free(fk);
        pt_free(fe);
        pt_frame_free(tf);
        pt_frame_free(fin);
        pt_table_free(pt);
        return agree(D, st, err);
    }
    /* Holistic aggregates: the rows of a group meet on one rank. */
    pt_table *t = NULL;
    st = pt__plan_run(in, &t, err);
    pt_frame_free(in);
    st = agree(D, st, err);
    if (st != PT_OK) {
        pt_table_free(t);
        return st;
    }
    if (g->nkeys == 0) {
        st = gather_root(D, &t, err);
        if (st == PT_OK && D->rank == 0) st = apply(D, g, t, NULL, &out->t, err);
        else if (st == PT_OK) st = empty_of(D, g->schema, &out->t, err);
        pt_table_free(t);
        return agree(D, st, err);
    }
    int pos[256];
    st = g->nkeys <= 256 ? key_columns(D, &t, g->keys, g->nkeys, pos, err)
                         : pt_error_set(err, PT_EINVAL, "groupby: too many keys to distribute");
    st = agree(D, st, err);
    if (st == PT_OK) st = shuffle_hash(D, &t, g->nkeys, pos, err);
    if (st == PT_OK) st = apply(D, g, t, NULL, &out->t, err);
    pt_table_free(t);
    return agree(D, st, err);
}

/* ---- the other operators ----------------------------------------------- */

/* LIMIT and TOP-N: each rank keeps its first offset + n rows (fused with
 * its scan when the input is local), rank 0 takes the final n. */
static pt_status dist_limit(dctx *D, pt_frame *f, dres *out, pt_error *err) {
    pt_frame *in = NULL;
    bool repl;
    PT_RETURN_NOT_OK(input_frame(D, f->in[0], &in, &repl, err));
    pt_status st;
    if (repl) {
        st = step(D, f, in, NULL, &out->t, err);
        out->repl = true;
        pt_frame_free(in);
        return st;
    }
    pt_frame *pre = NULL;
    st = with_inputs(f, in, NULL, &pre, err);
    pt_frame_free(in);
    if (st == PT_OK) {
        pre->limit = f->limit + f->offset;
        pre->offset = 0;
    }
    pt_table *t = NULL;
    if (st == PT_OK) st = pt__plan_run(pre, &t, err);
    pt_frame_free(pre);
    st = agree(D, st, err);
    if (st == PT_OK) st = gather_root(D, &t, err);
    if (st == PT_OK && D->rank == 0) st = apply(D, f, t, NULL, &out->t, err);
    else if (st == PT_OK) st = empty_of(D, f->schema, &out->t, err);
    pt_table_free(t);
    return agree(D, st, err);
}

static pt_status dist_sort(dctx *D, pt_frame *f, dres *out, pt_error *err) {
    dres r = {0};
    PT_RETURN_NOT_OK(input_table(D, f->in[0], &r, err));
    pt_status st = PT_OK;
    if (r.repl) {
        st = apply(D, f, r.t, NULL, &out->t, err);
        out->repl = true;
        pt_table_free(r.t);
        return agree(D, st, err);
    }
    /* Sample sort on the first key when it is a column; an expression key
     * sorts on rank 0 (its rows gathered), as does nothing else here. */
    int pos = -1;
    if (!col_positions(r.t->schema, f->keys, 1, &pos)) {
        st = gather_root(D, &r.t, err);
    } else {
        pt_table *s = NULL;
        double t0 = pt_now_s();
        st = agree_text(D, &r.t, err);
        if (st == PT_OK) {
            st = pt__dist_shuffle_range(D->c, D->ctx, &r.t, 1, pos, f->desc ? f->desc[0] : false,
                                        0, &s, err);
        }
        g_xchg_s += pt_now_s() - t0;
        if (st == PT_OK) {
            pt_table_free(r.t);
            r.t = s;
        }
    }
    if (st == PT_OK) st = apply(D, f, r.t, NULL, &out->t, err);
    pt_table_free(r.t);
    return agree(D, st, err);
}

static pt_status dist_distinct(dctx *D, pt_frame *f, dres *out, pt_error *err) {
    pt_frame *in = NULL;
    bool repl;
    PT_RETURN_NOT_OK(input_frame(D, f->in[0], &in, &repl, err));
    pt_table *t = NULL;
    pt_status st = step(D, f, in, NULL, &t, err); /* local distinct first */
    pt_frame_free(in);
    if (st != PT_OK || repl) {
        out->t = t;
        out->repl = repl;
        return st;
    }
    int n = t->schema->nfields;
    int *keys = pt_calloc((size_t)(n ? n : 1), sizeof *keys);
    if (!keys) st = pt_error_set(err, PT_ENOMEM, "out of memory");
    for (int i = 0; i < n && keys; i++) keys[i] = i;
    st = agree(D, st, err);
    if (st == PT_OK) st = shuffle_hash(D, &t, n, keys, err);
    pt_free(keys);
    if (st == PT_OK) st = apply(D, f, t, NULL, &out->t, err);
    pt_table_free(t);
    return agree(D, st, err);
}

static pt_status dist_rownum(dctx *D, pt_frame *f, dres *out, pt_error *err) {
    dres r = {0};
    PT_RETURN_NOT_OK(input_table(D, f->in[0], &r, err));
    pt_status st = PT_OK;
    if (r.repl) {
        st = apply(D, f, r.t, NULL, &out->t, err);
        out->repl = true;
        pt_table_free(r.t);
        return agree(D, st, err);
    }
    int pos[256];
    if (f->nkeys == 0 || f->nkeys > 256 || !col_positions(r.t->schema, f->keys, f->nkeys, pos)) {
        st = gather_root(D, &r.t, err);
    } else {
        if (f->limit > 0) {
            /* rn <= k: only a rank's own top k of a partition can be in the
             * global top k, so those candidates are all that moves. */
            pt_table *cand = NULL;
            st = apply(D, f, r.t, NULL, &cand, err);
            if (st == PT_OK) st = fit_schema(&cand, r.t->schema, err);
            if (st == PT_OK) {
                pt_table_free(r.t);
                r.t = cand;
            } else {
                pt_table_free(cand);
            }
            st = agree(D, st, err);
        }
        if (st == PT_OK) st = shuffle_hash(D, &r.t, f->nkeys, pos, err);
    }
    if (st == PT_OK) st = apply(D, f, r.t, NULL, &out->t, err);
    pt_table_free(r.t);
    return agree(D, st, err);
}

/* Total serialised size of every rank's t. */
static pt_status global_bytes(dctx *D, const pt_table *t, int64_t *out, pt_error *err) {
    int64_t b = pt_table_nbytes(t);
    PT_RETURN_NOT_OK(pt_comm_allreduce(D->c, &b, 1, PT_DTYPE_INT64, PT_REDOP_SUM, err));
    *out = b;
    return PT_OK;
}

#define BROADCAST_BYTES (64LL << 20)

static pt_status dist_join(dctx *D, pt_frame *f, dres *out, pt_error *err) {
    dres L = {0}, R = {0};
    pt_status st = input_table(D, f->in[0], &L, err);
    if (st == PT_OK) st = input_table(D, f->in[1], &R, err);
    if (st != PT_OK) {
        pt_table_free(L.t);
        pt_table_free(R.t);
        return st;
    }
    pt_join_type jt = f->join_type;
    bool keep_left = jt == PT_JOIN_INNER || jt == PT_JOIN_LEFT;
    bool keep_right = jt == PT_JOIN_INNER || jt == PT_JOIN_RIGHT;
    if (L.repl && R.repl) {
        out->repl = true;
    } else if (R.repl && keep_left) {
        /* each rank joins its left rows with the whole right side */
    } else if (L.repl && keep_right) {
    } else {
        st = as_part(D, &L, err);
        if (st == PT_OK) st = as_part(D, &R, err);
        int64_t lb = 0, rb = 0;
        if (st == PT_OK) st = global_bytes(D, L.t, &lb, err);
        if (st == PT_OK) st = global_bytes(D, R.t, &rb, err);
        if (st == PT_OK && keep_left && rb <= BROADCAST_BYTES && rb <= lb) {
            st = allgather(D, &R.t, err);
        } else if (st == PT_OK && keep_right && lb <= BROADCAST_BYTES && lb < rb) {
            st = allgather(D, &L.t, err);
        } else if (st == PT_OK) {
            int n = f->njkeys;
            int *lk = pt_calloc((size_t)n + 1, sizeof *lk), *rk = pt_calloc((size_t)n + 1, sizeof *rk);
            if (!lk || !rk) st = pt_error_set(err, PT_ENOMEM, "out of memory");
            for (int i = 0; st == PT_OK && i < n; i++) {
                lk[i] = pt_schema_find(L.t->schema, f->lkeys[i]);
                rk[i] = pt_schema_find(R.t->schema, f->rkeys[i]);
                if (lk[i] < 0 || rk[i] < 0)
                    st = pt_error_set(err, PT_EINTERNAL, "join: key '%s' not found",
                                      lk[i] < 0 ? f->lkeys[i] : f->rkeys[i]);
            }
            st = agree(D, st, err);
            if (st == PT_OK) st = shuffle_hash(D, &L.t, n, lk, err);
            if (st == PT_OK) st = shuffle_hash(D, &R.t, n, rk, err);
            pt_free(lk);
            pt_free(rk);
        }
    }
    if (st == PT_OK) st = apply(D, f, L.t, R.t, &out->t, err);
    pt_table_free(L.t);
    pt_table_free(R.t);
    return agree(D, st, err);
}

static pt_status deval(dctx *D, pt_frame *f, dres *out, pt_error *err) {
    out->t = NULL;
    out->repl = false;
    if (local_only(f)) return input_table(D, f, out, err);
    switch (f->kind) {
    case PT__N_FILTER:
    case PT__N_PROJECT:
    case PT__N_REPART: {
        dres r = {0};
        PT_RETURN_NOT_OK(deval(D, f->in[0], &r, err));
        pt_status st = apply(D, f, r.t, NULL, &out->t, err);
        out->repl = r.repl;
        pt_table_free(r.t);
        return agree(D, st, err);
    }
    case PT__N_UNION: {
        dres a = {0}, b = {0};
        pt_status st = input_table(D, f->in[0], &a, err);
        if (st == PT_OK) st = input_table(D, f->in[1], &b, err);
        if (st == PT_OK && !(a.repl && b.repl)) {
            st = as_part(D, &a, err);
            if (st == PT_OK) st = as_part(D, &b, err);
        }
        if (st == PT_OK) st = apply(D, f, a.t, b.t, &out->t, err);
        out->repl = a.repl && b.repl;
        pt_table_free(a.t);
        pt_table_free(b.t);
        return agree(D, st, err);
    }
    case PT__N_AGG: return dist_agg(D, f, out, err);
    case PT__N_DISTINCT: return dist_distinct(D, f, out, err);
    case PT__N_SORT: return dist_sort(D, f, out, err);
    case PT__N_LIMIT:
    case PT__N_TOPN: return dist_limit(D, f, out, err);
    case PT__N_JOIN: return dist_join(D, f, out, err);
    case PT__N_ROWNUM: return dist_rownum(D, f, out, err);
    default:
        return agree(D, pt_error_set(err, PT_EINTERNAL, "distributed: unexpected %s node",
                                     pt__node_name(f->kind)),
                     err);
    }
}

/* Bytes of the files the plan reads. */
static int64_t file_bytes(const pt_frame *f) {
    if (!f) return 0;
    int64_t b = file_bytes(f->in[0]) + file_bytes(f->in[1]);
    struct stat sb;
    for (int i = 0; f->kind == PT__N_SCAN_CSV && i < f->npaths; i++)
        if (stat(f->paths[i], &sb) == 0) b += (int64_t)sb.st_size;
    if (f->kind == PT__N_SCAN_NATIVE && f->native_path && stat(f->native_path, &sb) == 0)
        b += (int64_t)sb.st_size;
    return b;
}

pt_status pt__dist_collect(pt_frame *f, bool everywhere, pt_table **out, pt_error *err) {
    *out = NULL;
    /* Intermediate results are held in memory, a part per rank: a plan
     * whose files would give each rank more than half its budget is better
     * run out of core (the same decision on every rank: no message). */
    int64_t limit = pt_mem_limit(pt_ctx_mem(f->ctx));
    int nr = pt_comm_size(pt_ctx_comm(f->ctx));
    if (limit > 0) {
        int64_t share = file_bytes(f) / (nr > 0 ? nr : 1);
        if (share > limit / 2) {
            char a[32], b[32];
            return pt_error_set(err, PT_EBUDGET,
                                "each rank's share of the input (%s) is over half its memory "
                                "budget (%s)",
                                pt_format_bytes((double)share, a, sizeof a),
                                pt_format_bytes((double)limit, b, sizeof b));
        }
    }
    dctx D = {f->ctx, pt_ctx_comm(f->ctx), 0, 1};
    D.rank = pt_comm_rank(D.c);
    D.size = pt_comm_size(D.c);
    g_xchg_s = 0;
    pt_log_debug("distributed plan over %d ranks (%s at the root)", D.size,
                 pt__node_name(f->kind));
    dres r = {0};
    PT_RETURN_NOT_OK(deval(&D, f, &r, err));
    pt_status st = PT_OK;
    if (!r.repl && everywhere) st = allgather(&D, &r.t, err);
    else if (!r.repl) st = gather_root(&D, &r.t, err);
    if (st == PT_OK) st = pt__parts_concat(D.ctx, &r.t, 1, f->schema, out, err);
    pt_table_free(r.t);
    return st;
}
