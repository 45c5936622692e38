/*
 * sql.h - internals of the SQL front end (pt_sql, pt_expr_parse): the token
 * stream of the lexer, the syntax tree built by the recursive-descent
 * parser, an arena that owns both for the length of one call, and the error
 * formatter that shows the offending line with a caret under the position.
 *
 * Flow: pt__sql_lex (sql_lex.c) -> pt__sql_parse_query / _parse_expr
 * (sql_parse.c) -> pt__sql_plan (sql_plan.c) builds frames with the public
 * dataframe API. Nothing here outlives one pt_sql call.
 */
#ifndef PT_FRAME_SQL_H
#define PT_FRAME_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "partita/base.h"
#include "partita/dataframe.h"

/* ------------------------------------------------------------------------ */
/* Arena                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct pt__sql_block pt__sql_block;

/* Everything allocated while parsing and planning one query lives here and
 * is freed at once; this keeps the many early-return error paths leak-free. */
typedef struct pt__sql_arena {
    pt__sql_block *head;
} pt__sql_arena;

void *pt__sql_alloc(pt__sql_arena *a, size_t n); /* zeroed; NULL when out of memory */
char *pt__sql_strndup(pt__sql_arena *a, const char *s, size_t n);
void pt__sql_arena_free(pt__sql_arena *a);

/* ------------------------------------------------------------------------ */
/* Tokens                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum pt__sql_tk {
    PT_TK_EOF,
    PT_TK_IDENT,  /* unquoted identifier (text as written) */
    PT_TK_QIDENT, /* "quoted identifier" (text unescaped) */
    PT_TK_KW,     /* reserved keyword (kw says which) */
    PT_TK_STR,    /* 'string' (text unescaped) */
    PT_TK_INT,
    PT_TK_FLOAT,
    PT_TK_SYM     /* punctuation or operator (sym says which) */
} pt__sql_tk;

#define PT__SQL_KEYWORDS(X)                                                                   \
    X(ALL) X(AND) X(AS) X(ASC) X(BETWEEN) X(BY) X(CASE) X(CAST) X(CROSS) X(DESC) X(DISTINCT)  \
    X(ELSE) X(END) X(EXPLAIN) X(FALSE) X(FROM) X(FULL) X(GROUP) X(HAVING) X(IN) X(INNER)      \
    X(IS) X(JOIN) X(LEFT) X(LIKE) X(LIMIT) X(NOT) X(NULL) X(NULLS) X(OFFSET) X(ON) X(OR)      \
    X(ORDER) X(OUTER) X(OVER) X(PARTITION) X(RIGHT) X(SELECT) X(THEN) X(TRUE) X(UNION)        \
    X(USING) X(WHEN) X(WHERE)

typedef enum pt__sql_kw {
    PT_KW_NONE_ = 0,
#define PT__KW_ENUM(k) PT_KW_##k,
    PT__SQL_KEYWORDS(PT__KW_ENUM)
#undef PT__KW_ENUM
    PT_KW_COUNT_
} pt__sql_kw;

typedef enum pt__sql_sym {
    PT_SY_NONE_ = 0,
    PT_SY_LP, PT_SY_RP, PT_SY_COMMA, PT_SY_DOT, PT_SY_SEMI, PT_SY_STAR, PT_SY_PLUS,
    PT_SY_MINUS, PT_SY_SLASH, PT_SY_PCT, PT_SY_EQ, PT_SY_NE, PT_SY_LT, PT_SY_LE, PT_SY_GT,
    PT_SY_GE, PT_SY_CONCAT, PT_SY_DCOLON
} pt__sql_sym;

typedef struct pt__sql_tok {
    pt__sql_tk kind;
    int kw;            /* pt__sql_kw for PT_TK_KW */
    int sym;           /* pt__sql_sym for PT_TK_SYM */
    size_t off, len;   /* byte range in the query text */
    const char *text;  /* identifiers and strings: NUL-terminated, unescaped */
    int64_t ival;
    double fval;
} pt__sql_tok;

/* The state shared by lexer, parser and planner for one call. */
typedef struct pt__sql {
    const char *src;
    size_t len;
    pt__sql_arena arena;
    pt__sql_tok *toks;
    size_t ntoks;
    size_t pos;   /* parser: index of the current token */
    int depth;    /* parser: nesting, bounded so that hostile input cannot exhaust the stack */
    pt_error *err;
} pt__sql;

/* Splits s->src into s->toks (ending with PT_TK_EOF). PT_EPARSE with a caret
 * on bad characters, unterminated strings, identifiers or comments. */
pt_status pt__sql_lex(pt__sql *s);
/* Frees the tokens and the arena. */
void pt__sql_release(pt__sql *s);

/* ------------------------------------------------------------------------ */
/* Syntax tree                                                              */
/* ------------------------------------------------------------------------ */

typedef enum pt__sql_nk {
    PT_SN_COL,     /* [qual.]name */
    PT_SN_INT,
    PT_SN_FLOAT,
    PT_SN_STR,
    PT_SN_BOOL,
    PT_SN_NULL,
    PT_SN_BINARY,  /* op a b */
    PT_SN_UNARY,   /* op a (NEG, NOT, IS_NULL, IS_NOT_NULL) */
    PT_SN_BETWEEN, /* a BETWEEN b AND c; neg = NOT BETWEEN */
    PT_SN_IN,      /* a IN (args); neg = NOT IN */
    PT_SN_LIKE,    /* a LIKE b; neg = NOT LIKE */
    PT_SN_CAST,    /* CAST(a AS type) */
    PT_SN_CASE,    /* CASE [a] WHEN args[i] THEN args2[i] ... [ELSE b] END */
    PT_SN_FUNC,    /* name(args); agg >= 0 for aggregates; neg = DISTINCT; star = f(*) */
    PT_SN_WINDOW   /* name() OVER (PARTITION BY args ORDER BY args2 desc[]) */
} pt__sql_nk;

typedef struct pt__sql_node pt__sql_node;
struct pt__sql_node {
    pt__sql_nk kind;
    size_t pos, end;  /* byte range in the query text */
    pt_op op;
    bool neg, star, quoted;
    int agg;          /* pt_agg_kind or -1 */
    const char *qual; /* PT_SN_COL: qualifier or NULL */
    const char *name; /* PT_SN_COL column; PT_SN_FUNC / WINDOW function (lower case) */
    const char *str;  /* PT_SN_STR */
    int64_t ival;     /* PT_SN_INT; PT_SN_BOOL */
    double fval;
    pt_type type;     /* PT_SN_CAST */
    pt__sql_node *a, *b, *c;
    pt__sql_node **args, **args2;
    int nargs, nargs2;
    bool *desc;       /* PT_SN_WINDOW: per ORDER BY key */
};

typedef struct pt__sql_query pt__sql_query;

typedef struct pt__sql_item {
    pt__sql_node *e;       /* NULL for * and t.* */
    const char *star_qual; /* t of t.* */
    const char *alias;     /* NULL when none */
    size_t pos, end;
} pt__sql_item;

typedef struct pt__sql_order {
    pt__sql_node *e;
    bool desc;
    size_t pos;
} pt__sql_order;

typedef enum pt__sql_fk { PT_FI_TABLE, PT_FI_FILE, PT_FI_SUB, PT_FI_JOIN } pt__sql_fk;

typedef struct pt__sql_from pt__sql_from;
struct pt__sql_from {
    pt__sql_fk kind;
    size_t pos;
    const char *name;     /* table name or file path */
    bool quoted;          /* table name was "quoted" */
    pt__sql_query *sub;
    const char *alias;
    pt_join_type jtype;
    pt__sql_from *left, *right;
    pt__sql_node *on;
    const char **using_cols;
    size_t *using_pos;
    int nusing;
};

struct pt__sql_query {
    bool explain, distinct;
    size_t pos;
    pt__sql_item *items;
    int nitems;
    pt__sql_from *from;
    pt__sql_node *where;
    pt__sql_node **group;
    int ngroup;
    pt__sql_node *having;
    size_t having_pos;
    pt__sql_order *order;
    int norder;
    bool has_limit;
    int64_t limit, offset;
};

/* Parses a whole query (after pt__sql_lex). NULL on failure with s->err set
 * (PT_EPARSE with a caret, PT_ENOMEM). */
pt__sql_query *pt__sql_parse_query(pt__sql *s);
/* Parses a lone expression (pt_expr_parse). */
pt__sql_node *pt__sql_parse_expr_only(pt__sql *s);

/* Builds the frame of a parsed query. */
pt_status pt__sql_plan(pt__sql *s, pt_ctx *ctx, pt_catalog *cat, const pt__sql_query *q,
                       pt_frame **out);
/* Translates a parsed lone expression into a pt_expr (no tables). */
pt_status pt__sql_plan_expr(pt__sql *s, const pt__sql_node *n, pt_expr **out);

/* Catalog lookup (sql_catalog.c): the frame registered as `name` (exact
 * match first, then case-insensitive unless quoted) or NULL. */
pt_frame *pt__catalog_find(const pt_catalog *c, const char *name, bool quoted);
/* Writes "a, b, c" (the registered names) into buf. */
void pt__catalog_names(const pt_catalog *c, char *buf, size_t cap);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* Fills s->err with "<lead>line L, column C: <msg>" followed by the line of
 * the query holding byte offset `off` and a caret under it; returns code. */
pt_status pt__sql_error_at(pt__sql *s, size_t off, pt_status code, const char *lead,
                           const char *fmt, ...) PT_PRINTF(5, 6);
/* Syntax error at the current token: "expected <what>, found '<token>'". */
pt_status pt__sql_expected(pt__sql *s, const char *what);
/* Prefixes an error already in s->err (from the frame layer) with the
 * position `off` and appends the caret lines. */
pt_status pt__sql_locate(pt__sql *s, size_t off);
/* Keyword text ("SELECT") for messages. */
const char *pt__sql_kw_name(int kw);

#endif
