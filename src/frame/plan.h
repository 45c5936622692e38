/*
 * plan.h - the logical plan behind pt_frame, its optimiser and executor.
 *
 * A frame is an immutable, reference-counted plan node. Building computes
 * the output schema (so errors surface at build time); pt_frame_collect
 * optimises a copy of the tree and runs it as a pull-based pipeline of
 * batches, where each batch is a set of partitions processed in parallel.
 */
#ifndef PT_FRAME_PLAN_H
#define PT_FRAME_PLAN_H

#include "partita.h"
#include "partita/dataframe.h"

typedef enum pt__node_kind {
    PT__N_SCAN_CSV,
    PT__N_SCAN_TABLE,
    PT__N_SCAN_NATIVE,
    PT__N_FILTER,
    PT__N_PROJECT,
    PT__N_AGG,
    PT__N_SORT,
    PT__N_LIMIT,
    PT__N_DISTINCT,
    PT__N_JOIN,
    PT__N_UNION,
    PT__N_ROWNUM,
    PT__N_REPART,
    PT__N_TOPN /* produced by the optimiser from SORT + LIMIT */
} pt__node_kind;

struct pt_frame {
    int64_t refcount;
    pt__node_kind kind;
    pt_ctx *ctx;
    pt_schema *schema; /* output schema */
    pt_frame *in[2];   /* inputs (NULL when unused) */

    /* scans */
    char **paths; /* CSV files (a glob expanded at build time) */
    int npaths;
    pt_csv_opts csv;          /* copy; pointer members below are owned */
    pt_schema *csv_schema;    /* explicit schema or NULL */
    char **csv_nulls;         /* owned copy of null_values (NULL-ended) */
    pt_table **parts;         /* in-memory partitions (own references) */
    int64_t nparts;
    char *native_path;
    /* set by the optimiser on scans: columns to read (NULL = all) and a
     * predicate evaluated on each batch right after parsing */
    char **scan_cols;
    int nscan_cols;
    pt_expr *scan_pred;
    /* set on one rank's copy of a scan by the distributed executor: the CSV
     * rows that start in [csv_range[3i], csv_range[3i+1]) of paths[i], the
     * first at line csv_range[3i+2] (start < 0: none of that file), and
     * the native batches [nat_lo, nat_hi) */
    int64_t *csv_range;
    bool nat_share;
    int64_t nat_lo, nat_hi;

    /* filter */
    pt_expr *pred;
    /* project: exprs[i] named names[i]; agg: keys then post-projection */
    pt_expr **exprs;
    char **names;
    int nexprs;
    /* agg: key expressions (nkeys), their output names; aggregates (pure
     * aggregate calls), and the post-projection in `exprs` over
     * [keys..., "__agg0"...] */
    pt_expr **keys;
    char **key_names;
    int nkeys;
    pt_expr **aggs;
    int naggs;
    bool *desc; /* sort / rownum order keys */
    /* limit / topn */
    int64_t limit, offset;
    /* join */
    pt_join_type join_type;
    char **lkeys, **rkeys;
    int njkeys;
    /* rownum: partition keys in `keys` (nkeys), order keys in `exprs`
     * (nexprs) with `desc`; output column name in rn_name */
    char *rn_name;
    /* repartition */
    pt_partitioning part_how;
    int64_t part_n;
    char **part_keys;
    int npart_keys;
};

/* Allocates a node of `kind` with refcount 1 for `ctx`. */
pt_status pt__node_new(pt_ctx *ctx, pt__node_kind kind, pt_frame **out, pt_error *err);
/* Deep copy of one node (not its inputs, which are referenced). */
pt_status pt__node_clone(const pt_frame *f, pt_frame **out, pt_error *err);
const char *pt__node_name(pt__node_kind k);

/* Optimiser: returns a new tree (inputs shared where unchanged). */
pt_status pt__optimize(pt_frame *f, pt_frame **out, pt_error *err);
/* Writes the tree, indented, one node per line. */
void pt__plan_print(const pt_frame *f, int indent, char **buf, size_t *len, size_t *cap);

/* Executor: a pull-based stream of batches; each batch is an array of
 * partitions (same schema) that operators process in parallel. */
typedef struct pt__stream pt__stream;
struct pt__stream {
    /* Next batch: *parts gets an array of *nparts tables (ownership moves to
     * the caller: free each table and the array with pt_free). *parts is
     * NULL at the end. */
    pt_status (*next)(pt__stream *s, pt_table ***parts, int64_t *nparts, pt_error *err);
    void (*free)(pt__stream *s);
    pt_ctx *ctx;
};
pt_status pt__stream_open(pt_frame *optimized, pt__stream **out, pt_error *err);
void pt__stream_free(pt__stream *s);
/* Frees an array of partitions as returned by next(). */
void pt__parts_free(pt_table **parts, int64_t n);
/* The columns of schema s, by name, from t (zero-copy). */
pt_status pt__select_schema(const pt_table *t, const pt_schema *s, pt_table **out,
                            pt_error *err);
/* Runs the stream to the end, concatenating all partitions into one table
 * with schema `schema` (text columns normalised to one representation). */
pt_status pt__stream_collect(pt__stream *s, const pt_schema *schema, pt_table **out,
                             pt_error *err);
/* Runs an optimised plan in this process to one table. */
pt_status pt__plan_run(pt_frame *optimized, pt_table **out, pt_error *err);
/* Concatenates partitions, casting dictionary/utf8 mixes to one type. */
pt_status pt__parts_concat(pt_ctx *ctx, pt_table *const *parts, int64_t n,
                           const pt_schema *schema, pt_table **out, pt_error *err);

/* Distributed execution (dist_exec.c) of an optimised plan over the ranks
 * of pt_ctx_comm(f->ctx): a collective. Every rank gets the whole result,
 * or with !everywhere rank 0 does and the others an empty table. */
pt_status pt__dist_collect(pt_frame *optimized, bool everywhere, pt_table **out, pt_error *err);
/* Seconds spent exchanging rows (and agreeing) in the calling thread's last
 * distributed collect. */
void pt__dist_exec_stats(double *exchange_s);
/* True when f's context has a comm of more than one rank. */
bool pt__dist_active(const pt_frame *f);

#endif
