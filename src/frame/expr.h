/*
 * expr.h - the expression engine of the frame layer (internal).
 *
 * Three stages:
 *  1. Trees (struct pt_expr): built by the public constructors of
 *     dataframe.h or by the SQL parser. Immutable once built, reference
 *     counted (atomically), shareable between threads. Column references are
 *     names; nothing is typed yet.
 *  2. Bound trees (pt__bound): a tree resolved against an input schema:
 *     column names become positions, every node has a result type, implicit
 *     casts are explicit nodes, and subtrees without column references are
 *     folded into constants. Immutable too; evaluation is reentrant, so one
 *     bound tree serves every partition in parallel.
 *  3. Evaluation: vectorised over whole columns of a batch (pt_table).
 *
 * Semantics (the rules the SQL front end and the docs rely on):
 *  - Numeric promotion: int32 -> int64 -> float64, float32 -> float64.
 *    + - * % on integers give int64, on anything with a float give float64.
 *    `/` always gives float64 (like pandas and DuckDB's `/`): 7 / 2 = 3.5.
 *    Integer + - * and unary minus are checked: overflow fails with PT_ERANGE
 *    naming the expression, the row and the operands.
 *  - Division or modulo by zero gives null (integers and floats alike).
 *    % truncates like C and SQL: the sign of the result follows the dividend.
 *  - Null semantics are SQL's: null in -> null out; comparisons with null
 *    are null; AND/OR are three-valued (false AND null = false, true OR null
 *    = true); IS [NOT] NULL is never null. A filter keeps only true rows.
 *  - Float comparisons follow IEEE (NaN compares unequal to everything).
 *  - Strings (utf8 and dict<utf8> mix freely) compare bytewise, which for
 *    UTF-8 is code point order. lower/upper map ASCII letters only.
 *  - Domain errors of math functions (sqrt of a negative, ln/log10 of a
 *    non-positive number) give null.
 *  - A literal of type int64 compared with an int32 column is narrowed when
 *    it fits, so the comparison runs on the column as stored.
 *  - Limitation: CASE/if branches are evaluated for all rows (vectorised),
 *    so an error in a branch (overflow, bad cast) is raised even for rows
 *    that the branch would not have produced.
 *
 * SQL text (pt_expr_to_string) assumes the standard precedence, loosest
 * first: OR; AND; NOT; IS [NOT] NULL; comparisons (= <> < <= > >=, non
 * associative); ||; + -; * / %; unary -. Parentheses are added where needed
 * and, to be dialect-proof, also around arithmetic under ||, around binary
 * operands of IS NULL and around binary operands of NOT. like(s, p) prints
 * as `s LIKE p` (comparison precedence). Aggregates print as
 * count(*), count(x), count(DISTINCT x), sum, avg, min, max, stddev,
 * variance, median, first, last, corr; casts as CAST(x AS int64), with
 * dict<utf8> spelled "category"; names that are not plain identifiers (or
 * are keywords) are double-quoted.
 */
#ifndef PT_FRAME_EXPR_H
#define PT_FRAME_EXPR_H

#include "partita.h"
#include "partita/dataframe.h"

/* ------------------------------------------------------------------------ */
/* Trees                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum pt__expr_kind {
    PT__E_COL,    /* str = column name */
    PT__E_LIT,    /* type + lit_null/i/f/str */
    PT__E_BINARY, /* op, args[0] op args[1] */
    PT__E_UNARY,  /* op (NEG, NOT, IS_NULL, IS_NOT_NULL), args[0] */
    PT__E_CAST,   /* CAST(args[0] AS type) */
    PT__E_CALL,   /* str = function name as written, args[0..nargs) */
    PT__E_CASE,   /* args = cond0, val0, cond1, val1, ... [, else if has_else] */
    PT__E_AGG,    /* agg; args[0] (absent for count(*)), args[1] for corr */
    PT__E_ALIAS   /* args[0] AS str */
} pt__expr_kind;

struct pt_expr {
    int64_t refcount; /* atomic */
    pt__expr_kind kind;
    pt_op op;         /* BINARY, UNARY */
    pt_agg_kind agg;  /* AGG */
    pt_type type;     /* LIT: PT_TYPE_NULL/BOOL/INT64/FLOAT64/UTF8; CAST: target */
    bool lit_null;    /* LIT: the null literal (type PT_TYPE_NULL) */
    bool has_else;    /* CASE: the last argument is the ELSE value */
    int64_t i;        /* LIT: int64 value, or bool as 0/1 */
    double f;         /* LIT: float64 value */
    char *str;        /* COL, CALL, ALIAS name; LIT utf8 text (owned) */
    int nargs;
    pt_expr **args;   /* owned references */
};

/* A copy of node `e` (kind and fields) with the children args[0, e->nargs)
 * (ownership of each taken, also on failure; the array is only read).
 * Returns NULL when out of memory or when an arg is NULL. */
pt_expr *pt__expr_with_args(const pt_expr *e, pt_expr **args);

/* Name of an aggregate as printed in SQL ("sum", "avg", "count", ...). */
const char *pt__agg_name(pt_agg_kind k);
/* Looks up an aggregate function name for the SQL parser (case-insensitive):
 * count, sum, avg/mean, min, max, stddev/std/stddev_samp,
 * variance/var/var_samp, median, first, last, corr. count(*) and
 * count(DISTINCT x) are the parser's business (PT_AGG_COUNT_STAR,
 * PT_AGG_COUNT_DISTINCT). Returns false for other names. */
bool pt__agg_lookup(const char *name, pt_agg_kind *out);
/* True when `name` (case-insensitive) is a scalar function known to the
 * binder (for the SQL parser's error messages). */
bool pt__func_exists(const char *name);

/* Column name when `e` is a plain column reference (looking through no
 * alias), else NULL. */
const char *pt__expr_col_name(const pt_expr *e);
/* Calls cb(name) for every column reference in `e` (inside aggregates
 * too), in tree order, with repeats. Returns the number of calls. */
int pt__expr_columns(const pt_expr *e, void (*cb)(const char *name, void *ud), void *ud);
bool pt__expr_has_agg(const pt_expr *e);
/* Structural equality (function names compared case-insensitively, column
 * names exactly, float literals bitwise). */
bool pt__expr_equal(const pt_expr *a, const pt_expr *b);
/* The output column name of `e`: its alias, its column name, or its SQL
 * text (written into buf). */
const char *pt__expr_output_name(const pt_expr *e, char *buf, size_t cap);

/* Splits a predicate into its AND conjuncts (nested ANDs flattened, left to
 * right). *out is a new array (free with pt_free) of new references (free
 * each with pt_expr_free). Fails only with PT_ENOMEM. */
pt_status pt__expr_split_and(const pt_expr *e, pt_expr ***out, int *n, pt_error *err);
/* Rebuilds a predicate from conjuncts: a left-deep AND chain. Takes
 * ownership of the n expressions (not of the array). n == 0 gives the
 * literal true. Returns NULL when out of memory. */
pt_expr *pt__expr_join_and(pt_expr **parts, int n);

/* Name of the column that holds aggregate number k after extraction
 * ("__agg3"). Returns buf. */
const char *pt__agg_column_name(int k, char *buf, size_t cap);
/* Replaces every aggregate subtree of `e` (borrowed) by a column reference
 * named pt__agg_column_name(k), where k is the aggregate's index in the list
 * (*aggs, *naggs, capacity *cap; the list grows with pt_realloc and holds
 * new references; an aggregate equal to one already listed reuses it).
 * *rewritten gets a new expression. A nested aggregate (sum(max(x))) fails
 * with PT_EINVAL; out of memory with PT_ENOMEM. On failure the list keeps
 * what it had and *rewritten is NULL. */
pt_status pt__expr_extract_aggs(pt_expr *e, pt_expr ***aggs, int *naggs, int *cap,
                                pt_expr **rewritten, pt_error *err);
/* Replaces every subtree of `e` (borrowed) equal to targets[k] (aliases of
 * targets ignored) by pt_col(names[k]); aggregate subtrees are left as they
 * are (their arguments are computed before grouping). *out gets a new
 * expression. Fails only with PT_ENOMEM. */
pt_status pt__expr_replace(const pt_expr *e, pt_expr *const *targets, const char *const *names,
                           int n, pt_expr **out, pt_error *err);

/* Constant folding on a tree (no schema needed). Takes ownership of `e` and
 * returns a new or the same expression (NULL only if e is NULL). Folds
 * subtrees without column references or aggregates into literals (when the
 * result type has a literal: bool, int64, float64, utf8, null; a subtree
 * whose evaluation fails is kept so the error shows at run time), and
 * simplifies x AND true -> x, x AND false -> false, x OR false -> x,
 * x OR true -> true, NOT NOT x -> x. On out of memory it returns `e`
 * unchanged. */
pt_expr *pt__expr_fold(pt_expr *e);

/* ------------------------------------------------------------------------ */
/* Binding and evaluation                                                   */
/* ------------------------------------------------------------------------ */

typedef struct pt__bound pt__bound;

/* Resolves `e` against `in`. Column names match exactly first, then
 * case-insensitively when that match is unique. Errors: unknown column
 * (PT_EINVAL, listing the available columns), ambiguous column, unknown
 * function or wrong arity (PT_EINVAL), type errors (PT_ETYPE, naming the
 * expression), an aggregate (PT_EINVAL: extract them first), errors while
 * folding constant subtrees (e.g. PT_ERANGE), PT_ENOMEM. The caller frees
 * *out with pt__bound_free. */
pt_status pt__expr_bind(const pt_expr *e, const pt_schema *in, pt__bound **out, pt_error *err)
    PT_MUST_USE;
void pt__bound_free(pt__bound *b);
pt_type pt__bound_type(const pt__bound *b);
/* Position of the input column when the bound expression is a plain column
 * reference (evaluation is then zero-copy), else -1. */
int pt__bound_column(const pt__bound *b);
/* True when the bound expression is a constant (no column reference). */
bool pt__bound_is_const(const pt__bound *b);

/* Evaluates `b` over `batch` (whose schema must be the one bound against)
 * into a new column of batch->nrows rows charged to `mem` (a column
 * reference returns the batch's column with a new reference; constants are
 * broadcast). Errors: PT_ERANGE (integer overflow; names expression, row
 * and operands), PT_ETYPE (cast of text to a number failed; names row and
 * text), PT_EINVAL (batch does not match the bound schema), PT_ENOMEM,
 * PT_EBUDGET. Thread-safe: any number of batches may be evaluated in
 * parallel with one bound tree. */
pt_status pt__expr_eval(const pt__bound *b, const pt_table *batch, pt_mem *mem, pt_column **out,
                        pt_error *err) PT_MUST_USE;
/* Evaluates a bool predicate as a filter mask: mask[i] = 1 when row i is
 * true, 0 when false or null (mask has batch->nrows bytes); *nkeep (may be
 * NULL) gets the number of ones. AND/OR combine masks directly and
 * comparisons write bytes without building bool columns, so the common
 * WHERE runs at memory speed. Errors as pt__expr_eval; PT_ETYPE when the
 * expression is not bool. */
pt_status pt__expr_eval_mask(const pt__bound *b, const pt_table *batch, uint8_t *mask,
                             int64_t *nkeep, pt_error *err) PT_MUST_USE;

/* ------------------------------------------------------------------------ */
/* Engine internals shared by expr_bind.c, expr_eval.c and expr_func.c      */
/* ------------------------------------------------------------------------ */

/* A constant: a literal or a folded subtree. `type` is the bound type (a
 * dict<utf8> constant holds its text in s). */
typedef struct pt__scalar {
    pt_type type;
    bool null;
    int64_t i;   /* bool (0/1), int32, int64 */
    double f;    /* float32, float64 */
    char *s;     /* utf8/dict text, NUL-terminated (owned) */
    int64_t slen;
} pt__scalar;

typedef enum pt__bound_kind {
    PT__B_COL,
    PT__B_CONST,
    PT__B_ARITH,   /* op ADD SUB MUL DIV MOD; both args of the node type
                      (DIV: float64) */
    PT__B_NEG,
    PT__B_CMP,     /* op EQ..GE; args of one numeric type, or both strings */
    PT__B_AND,
    PT__B_OR,
    PT__B_NOT,
    PT__B_ISNULL,  /* op IS_NULL or IS_NOT_NULL */
    PT__B_CONCAT,  /* both args strings */
    PT__B_CAST,    /* to `type` */
    PT__B_CALL,    /* fn */
    PT__B_CASE     /* args as PT__E_CASE, has_else */
} pt__bound_kind;

struct pt__bound {
    pt__bound_kind kind;
    pt_type type;  /* result type */
    pt_op op;
    int col;       /* COL: input position */
    int fn;        /* CALL: index in the function table */
    bool has_else; /* CASE */
    pt__scalar k;  /* CONST */
    int nargs;
    pt__bound **args;
    char *text;    /* SQL text of the source expression, for messages */
};

/* A value during evaluation: a column (owned reference) or a constant
 * (borrowed from the bound tree). Exactly one is set. */
typedef struct pt__val {
    pt_column *col;
    const pt__scalar *k;
} pt__val;

/* Evaluates a node to a value (constants stay scalars). */
pt_status pt__eval_node(const pt__bound *b, const pt_table *batch, pt_mem *mem, pt__val *out,
                        pt_error *err);
void pt__val_release(pt__val *v);
/* A column of n rows holding the constant k as type `type`. */
pt_status pt__broadcast(pt_mem *mem, const pt__scalar *k, pt_type type, int64_t n,
                        pt_column **out, pt_error *err);
/* Makes `v` a column of n rows (broadcasting a constant). */
pt_status pt__val_to_column(pt_mem *mem, pt__val *v, pt_type type, int64_t n, pt_error *err);
/* Builds the evaluation result of a 1-row evaluation as a constant. */
pt_status pt__scalar_from_column(const pt_column *c, pt_type type, pt__scalar *out,
                                 pt_error *err);
void pt__scalar_reset(pt__scalar *k);

/* Wraps *slot in an implicit cast to `to` (nothing when already `to`;
 * constants are cast on the spot). Used by the binder and the function
 * table. */
pt_status pt__bind_coerce(pt__bound **slot, pt_type to, pt_error *err);
/* Common type of a and b for comparison/union purposes (null joins
 * anything; numbers promote; strings mix as utf8, except dict with dict);
 * false when incompatible. */
bool pt__type_unify(pt_type a, pt_type b, pt_type *out);
/* "utf8 'category'" for a column reference, "int64 3" otherwise. */
const char *pt__bound_describe(const pt__bound *b, char *buf, size_t cap);

/* Function table (expr_func.c). */
int pt__func_find(const char *name);
/* Checks arity and argument types of a bound CALL node (args bound), may
 * insert casts, and sets node->type. */
pt_status pt__func_bind(pt__bound *node, pt_error *err);
/* Evaluates a CALL node whose arguments are evaluated in args[]. n = rows. */
pt_status pt__func_eval(const pt__bound *node, pt__val *args, int64_t n, pt_mem *mem,
                        pt_column **out, pt_error *err);

/* Column building helpers (expr_eval.c). */
/* A result column of `type` with n rows and zeroed values (utf8: n empty
 * strings; use a builder instead when filling text). */
pt_status pt__new_fixed(pt_mem *mem, pt_type type, int64_t n, pt_column **out, pt_error *err);
/* Sets the validity of a result column built by pt__new_fixed: takes the
 * bitmap buffer (offset 0, n bits; NULL = all valid) and counts nulls. */
void pt__set_validity(pt_column *c, pt_buffer *validity);
/* A bitmap (offset 0) of n bits: the AND of the validity of the values
 * (a null constant makes every bit 0). *out = NULL when all are valid. */
pt_status pt__and_validity(pt_mem *mem, int64_t n, const pt__val *vals, int nvals,
                           pt_buffer **out, pt_error *err);
/* Byte-per-row comparison of two values of the same kernel type into out
 * (1 = true; null rows have undefined bytes: apply validity). */
pt_status pt__cmp_bytes(pt_op op, const pt__val *a, const pt__val *b, int64_t n, uint8_t *out,
                        pt_error *err);
/* Row-wise choice: out[i] = vals[choice[i]][i], null where choice[i] < 0.
 * All vals are of `type` (strings: utf8 or dict, result utf8 when `type`
 * is utf8). */
pt_status pt__choose(pt_mem *mem, pt_type type, const pt__val *vals, int nvals,
                     const int32_t *choice, int64_t n, pt_column **out, pt_error *err);
/* Unpacks a bool value into bytes: 1 where valid and true. */
pt_status pt__bool_to_bytes(const pt__val *v, int64_t n, uint8_t *out, pt_error *err);

#endif
