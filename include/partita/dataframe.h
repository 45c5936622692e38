/*
 * partita/dataframe.h - lazy, partitioned dataframes, expressions and SQL.
 *
 * Building a frame runs nothing: each operation returns a new frame that is
 * a node of a logical plan. pt_frame_collect optimises the plan (projection
 * and predicate push-down into scans, constant folding, filter/project
 * fusion) and runs it in parallel over partitions, in bounded memory.
 *
 * Ownership: frames are reference counted and immutable. A frame operation
 * does not consume its input frame (the new node holds its own reference),
 * but it takes ownership of the expressions passed to it, also on failure.
 * Expression constructors take ownership of their argument expressions and
 * return NULL when out of memory (a NULL argument gives NULL), so nested
 * calls need no checks; the frame operation receiving NULL fails with
 * PT_ENOMEM. Frames and expressions may be shared between threads once built.
 */
#ifndef PARTITA_DATAFRAME_H
#define PARTITA_DATAFRAME_H

#include "partita/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Expressions                                                              */
/* ------------------------------------------------------------------------ */

typedef struct pt_expr pt_expr;

typedef enum pt_op {
    /* arithmetic */
    PT_OP_ADD, PT_OP_SUB, PT_OP_MUL, PT_OP_DIV, PT_OP_MOD, PT_OP_NEG,
    /* comparison (SQL semantics: null when either side is null) */
    PT_OP_EQ, PT_OP_NE, PT_OP_LT, PT_OP_LE, PT_OP_GT, PT_OP_GE,
    /* boolean logic (three-valued) */
    PT_OP_AND, PT_OP_OR, PT_OP_NOT,
    /* null tests (never null) */
    PT_OP_IS_NULL, PT_OP_IS_NOT_NULL,
    /* text concatenation (||) */
    PT_OP_CONCAT
} pt_op;

typedef enum pt_agg_kind {
    PT_AGG_COUNT,          /* count(x): non-null values */
    PT_AGG_COUNT_STAR,     /* count(*): rows */
    PT_AGG_COUNT_DISTINCT, /* count(distinct x) */
    PT_AGG_SUM,
    PT_AGG_MEAN,
    PT_AGG_MIN,
    PT_AGG_MAX,
    PT_AGG_STD,            /* sample standard deviation (n - 1) */
    PT_AGG_VAR,            /* sample variance (n - 1) */
    PT_AGG_MEDIAN,         /* mean of the two middle values for even n */
    PT_AGG_FIRST,          /* first non-null value in input order */
    PT_AGG_LAST,           /* last non-null value in input order */
    PT_AGG_CORR            /* Pearson correlation of two arguments */
} pt_agg_kind;

/* Column reference by name. */
PT_API pt_expr *pt_col(const char *name);
/* Literals. */
PT_API pt_expr *pt_lit_i64(int64_t v);
PT_API pt_expr *pt_lit_f64(double v);
PT_API pt_expr *pt_lit_bool(bool v);
PT_API pt_expr *pt_lit_str(const char *s);
PT_API pt_expr *pt_lit_null(void);
/* Operators: binary ops take (a, b); unary ops (NEG, NOT, IS_NULL,
 * IS_NOT_NULL) ignore b (pass NULL). */
PT_API pt_expr *pt_binary(pt_op op, pt_expr *a, pt_expr *b);
PT_API pt_expr *pt_unary(pt_op op, pt_expr *a);
/* CAST(a AS type). */
PT_API pt_expr *pt_cast(pt_expr *a, pt_type to);
/* Scalar function call by name: abs, round, floor, ceil, sqrt, ln, exp,
 * pow, lower, upper, length, substr, trim, coalesce, like, contains,
 * starts_with (see docs). Unknown names fail when the expression is bound. */
PT_API pt_expr *pt_call(const char *fn, int nargs, pt_expr **args);
/* CASE WHEN c1 THEN v1 ... ELSE e END; `otherwise` may be NULL (null). */
PT_API pt_expr *pt_case(int nwhen, pt_expr **conds, pt_expr **vals, pt_expr *otherwise);
/* Aggregate of `arg` (NULL for count(*)); corr takes arg2. */
PT_API pt_expr *pt_agg(pt_agg_kind kind, pt_expr *arg, pt_expr *arg2);
/* Names the result of an expression (SELECT ... AS name). */
PT_API pt_expr *pt_alias(pt_expr *e, const char *name);
/* A new reference to `e` (expressions are immutable and shareable). */
PT_API pt_expr *pt_expr_ref(pt_expr *e);
PT_API void pt_expr_free(pt_expr *e);
/* Parses an expression in SQL syntax ("value1 > 0 AND category = 'A'").
 * Errors (PT_EPARSE) show the position with a caret. */
PT_API pt_status pt_expr_parse(const char *text, pt_expr **out, pt_error *err) PT_MUST_USE;
/* Writes the expression as SQL text into buf (always NUL-terminated). */
PT_API const char *pt_expr_to_string(const pt_expr *e, char *buf, size_t cap);

/* ------------------------------------------------------------------------ */
/* Frames                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct pt_frame pt_frame;

typedef enum pt_join_type {
    PT_JOIN_INNER,
    PT_JOIN_LEFT,
    PT_JOIN_RIGHT,
    PT_JOIN_FULL
} pt_join_type;

typedef enum pt_partitioning {
    PT_PART_ROWS,   /* n partitions of consecutive rows */
    PT_PART_HASH,   /* by hash of the key columns */
    PT_PART_RANGE   /* by ranges of one key (splitters from a sample) */
} pt_partitioning;

/* Sources. A CSV source takes one path or a glob ("data/part-*.csv" style patterns); its schema
 * comes from the first file's sample (csv opts as pt_csv_read). */
PT_API pt_status pt_frame_read_csv(pt_ctx *ctx, const char *path_or_glob, const pt_csv_opts *opts,
                                   pt_frame **out, pt_error *err) PT_MUST_USE;
/* An in-memory table split into `npartitions` row partitions (zero-copy;
 * <= 0: one per thread). Takes a new reference to the table's columns. */
PT_API pt_status pt_frame_from_table(pt_ctx *ctx, const pt_table *t, int64_t npartitions,
                                     pt_frame **out, pt_error *err) PT_MUST_USE;
/* C arrays as columns (copied): names[i], types[i] and data[i] pointing to
 * nrows values (int64_t, double, int32_t, float, or const char * for utf8). */
PT_API pt_status pt_frame_from_arrays(pt_ctx *ctx, int ncols, const char *const *names,
                                      const pt_type *types, const void *const *data,
                                      int64_t nrows, int64_t npartitions, pt_frame **out,
                                      pt_error *err) PT_MUST_USE;
/* A file in the native format. */
PT_API pt_status pt_frame_read_native(pt_ctx *ctx, const char *path, pt_frame **out,
                                      pt_error *err) PT_MUST_USE;

PT_API pt_frame *pt_frame_ref(pt_frame *f);
PT_API void pt_frame_free(pt_frame *f);
/* The output schema (owned by the frame). */
PT_API const pt_schema *pt_frame_schema(const pt_frame *f);

/* Operations (lazy). Each returns a new frame in *out. Errors found while
 * building (unknown column: the message lists the available ones; type
 * mismatch) are reported here, not at collect time. */
PT_API pt_status pt_frame_filter(pt_frame *f, pt_expr *pred, pt_frame **out, pt_error *err)
    PT_MUST_USE;
/* Projection: output column i is exprs[i], named by its alias or its text. */
PT_API pt_status pt_frame_select(pt_frame *f, int n, pt_expr **exprs, pt_frame **out,
                                 pt_error *err) PT_MUST_USE;
/* Adds (or replaces) column `name`. */
PT_API pt_status pt_frame_with_column(pt_frame *f, const char *name, pt_expr *e, pt_frame **out,
                                      pt_error *err) PT_MUST_USE;
/* Group-by: output = key columns, then one column per aggregate (each an
 * expression containing pt_agg, e.g. pt_alias(pt_agg(PT_AGG_SUM, ...), "s")
 * or sum(v1) / count(*)). nkeys = 0 gives one row of global aggregates. */
PT_API pt_status pt_frame_groupby(pt_frame *f, int nkeys, pt_expr **keys, int naggs,
                                  pt_expr **aggs, pt_frame **out, pt_error *err) PT_MUST_USE;
/* Stable sort by several keys; desc[i] per key (NULL = all ascending);
 * nulls sort last in either direction. */
PT_API pt_status pt_frame_sort(pt_frame *f, int nkeys, pt_expr **keys, const bool *desc,
                               pt_frame **out, pt_error *err) PT_MUST_USE;
PT_API pt_status pt_frame_limit(pt_frame *f, int64_t n, int64_t offset, pt_frame **out,
                                pt_error *err) PT_MUST_USE;
PT_API pt_status pt_frame_distinct(pt_frame *f, pt_frame **out, pt_error *err) PT_MUST_USE;
/* Join on equal keys (lkeys[i] = rkeys[i]). Output: the left columns, then
 * the right columns; a right column whose name is taken gets "_right"
 * appended (USING-style merging of key columns is done by the SQL layer). */
PT_API pt_status pt_frame_join(pt_frame *left, pt_frame *right, pt_join_type type, int nkeys,
                               const char *const *lkeys, const char *const *rkeys,
                               pt_frame **out, pt_error *err) PT_MUST_USE;
/* Rows of a then rows of b (same column names and compatible types). */
PT_API pt_status pt_frame_union(pt_frame *a, pt_frame *b, pt_frame **out, pt_error *err)
    PT_MUST_USE;
/* ROW_NUMBER() OVER (PARTITION BY pkeys ORDER BY okeys) as column `name`. */
PT_API pt_status pt_frame_row_number(pt_frame *f, const char *name, int npkeys, pt_expr **pkeys,
                                     int nokeys, pt_expr **okeys, const bool *desc,
                                     pt_frame **out, pt_error *err) PT_MUST_USE;
/* Repartitions the rows: n partitions of consecutive rows, by hash of the
 * keys (equal keys land in the same partition), or by ranges of one key
 * (splitters taken from a sample, so partitions hold ordered, disjoint key
 * ranges; nulls go to the last). */
PT_API pt_status pt_frame_repartition(pt_frame *f, pt_partitioning how, int64_t n, int nkeys,
                                      const char *const *keys, pt_frame **out, pt_error *err)
    PT_MUST_USE;
/* Vertical partitioning: splits the columns into `n` groups of about equal
 * width (bytes per row), as n frames over the same rows (projections of f).
 * outs must have room for n frames; the caller frees each. */
PT_API pt_status pt_frame_split_columns(pt_frame *f, int n, pt_frame **outs, pt_error *err)
    PT_MUST_USE;

/* Execution. When the frame's context has a comm of several ranks
 * (pt_ctx_comm, e.g. under mpirun), collecting is a collective: every rank
 * calls it, the plan runs distributed (each rank scans its share of the
 * input; in-memory sources are taken to hold the same rows on every rank)
 * and every rank gets the whole result. */
PT_API pt_status pt_frame_collect(pt_frame *f, pt_table **out, pt_error *err) PT_MUST_USE;
/* Like pt_frame_collect, but a distributed result is gathered to rank 0
 * only; the other ranks get an empty table with the result's schema. */
PT_API pt_status pt_frame_collect_root(pt_frame *f, pt_table **out, pt_error *err) PT_MUST_USE;
/* Streams the result to a CSV file without holding it all in memory. */
PT_API pt_status pt_frame_write_csv(pt_frame *f, const char *path,
                                    const pt_csv_write_opts *opts, pt_error *err) PT_MUST_USE;
/* Lazy scalars: a frame of one row and one column (e.g. from a global
 * aggregate) computed on demand as a double. */
PT_API pt_status pt_frame_scalar_f64(pt_frame *f, double *out, pt_error *err) PT_MUST_USE;
/* Shorthand for the global aggregate of one column, as a lazy frame. */
PT_API pt_status pt_frame_agg1(pt_frame *f, pt_agg_kind kind, const char *column, pt_frame **out,
                               pt_error *err) PT_MUST_USE;
/* Writes the logical plan before and after optimisation. */
PT_API pt_status pt_frame_explain(pt_frame *f, FILE *out, pt_error *err) PT_MUST_USE;
/* Same, into a new string the caller frees with pt_free. */
PT_API pt_status pt_frame_explain_string(pt_frame *f, char **out, pt_error *err) PT_MUST_USE;

/* Partition balance of the frame's current partitioning (runs the plan). */
typedef struct pt_balance {
    int64_t partitions;
    int64_t min_rows, max_rows;
    double mean_rows;
} pt_balance;
PT_API pt_status pt_frame_balance(pt_frame *f, pt_balance *out, pt_error *err) PT_MUST_USE;

/* ------------------------------------------------------------------------ */
/* SQL                                                                      */
/* ------------------------------------------------------------------------ */

/* A catalog of named frames for SQL (FROM name). */
typedef struct pt_catalog pt_catalog;
PT_API pt_status pt_catalog_new(pt_ctx *ctx, pt_catalog **out, pt_error *err) PT_MUST_USE;
PT_API void pt_catalog_free(pt_catalog *c);
/* Registers `f` as `name` (takes a new reference). */
PT_API pt_status pt_catalog_register(pt_catalog *c, const char *name, pt_frame *f, pt_error *err)
    PT_MUST_USE;

/* Builds the plan of a SQL query (SELECT ... or EXPLAIN SELECT ...). Tables
 * are names registered in `cat` (may be NULL) or quoted file paths
 * (FROM 'data.csv'). Errors show the query with a caret under the position
 * at fault and say what was expected; an unknown column lists the available
 * ones. *is_explain is set for EXPLAIN queries (may be NULL). */
PT_API pt_status pt_sql(pt_ctx *ctx, pt_catalog *cat, const char *query, pt_frame **out,
                        int *is_explain, pt_error *err) PT_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
