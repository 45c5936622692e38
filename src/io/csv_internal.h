/*
 * csv_internal.h - what the CSV reader's files share: the parse
 * configuration, per-range column builders, the tokenizer entry points,
 * number parsing and the scanning helpers. Internal to src/io.
 */
#ifndef PT_CSV_INTERNAL_H
#define PT_CSV_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "partita/io.h"

/* Character classes of the tokenizer's table. */
enum { PT__CSV_NORMAL = 0, PT__CSV_DELIM = 1, PT__CSV_NL = 2, PT__CSV_CR = 3, PT__CSV_QUOTE = 4 };

/* Field texts that read as null besides the empty field (unquoted only). */
typedef struct pt__csv_nulls {
    const char *const *vals;
    int n;
    uint64_t lenmask; /* bit l set when some value has length l (l < 64) */
    int haslong;      /* some value is 64 bytes or longer */
} pt__csv_nulls;

/* Read-only configuration shared by all parse tasks of one read. */
typedef struct pt__csv_cfg {
    const char *name; /* file name for messages */
    char delim, quote;
    uint8_t cls[256];
    int ncols;          /* fields per row in the file */
    int nout;           /* materialised columns */
    const int *out_of_file; /* [ncols]: output index or -1 (skipped) */
    const int *file_of_out; /* [nout] */
    char **names;       /* [nout] output column names */
    int strict;         /* explicit schema: a value that does not fit fails */
    int skip_bad;
    int blank_skip;     /* blank lines are skipped (more than one column) */
    int64_t dict_local_cap; /* a range abandons a local dictionary beyond this
                               many entries (0 = never) */
    double avg_row;     /* bytes per row in the sample (sizing guess) */
    pt__csv_nulls nulls;
    pt_mem *mem;
} pt__csv_cfg;

/* A column being built by one parse range. Values are raw arrays so the hot
 * loop writes them directly; they become pt_columns at assembly. */
typedef struct pt__csv_col {
    pt_type type;   /* type being materialised (DICT = local dictionary) */
    pt_type need;   /* widest class seen (NULL, BOOL, INT64, FLOAT64, UTF8) */
    int deferred;   /* a value did not fit `type`: values are no longer
                       stored, the range is re-parsed at the final type */
    int abandoned;  /* deferred because the local dictionary grew too big */
    int64_t text_pos;   /* input offset of the first field classed as text
                           (for streaming's type errors), -1 if none */
    int64_t cap;        /* row capacity */
    uint8_t *vals;      /* values / bits / int32 indices */
    uint8_t *valid;     /* validity bits; NULL until the first null */
    int64_t *offs;      /* utf8 offsets (cap + 1) */
    char *bytes;
    int64_t nbytes, bcap;
    /* local dictionary (type DICT): open addressing table of
       (hash tag << 32 | entry + 1) */
    uint64_t *ht;
    int64_t htcap, ndict, dcap;
    int64_t *doffs;
    char *dbytes;
    int64_t dnbytes, dbcap;
    int64_t charged; /* bytes reserved on cfg->mem */
} pt__csv_col;

/* One parse range: rows starting in [start, end) of the region. */
typedef struct pt__csv_chunk {
    int64_t start, end; /* offsets into the data buffer, row aligned */
    int64_t line0;      /* physical line number of data[start] */
    int64_t nrows;
    int64_t cap;        /* row capacity of the builders */
    pt__csv_col *cols;  /* [nout] */
    int64_t nbad;
    int64_t *badpos;    /* start offsets of skipped rows */
    int64_t badcap;
    int64_t first_bad_pos;
    char *first_bad;    /* message of the first skipped row (pt_malloc) */
    pt_status status;
    pt_error err;
    char *scratch; /* unescaped quoted fields */
    int64_t scap;
} pt__csv_chunk;

/* ---- csv_scan.c -------------------------------------------------------- */

/* Counts quote characters and '\n' in [p, p + n). */
void pt__csv_count(const char *p, int64_t n, char quote, int64_t *quotes, int64_t *newlines);
/* Number of '\n' in [p, p + n). */
int64_t pt__csv_count_nl(const char *p, int64_t n);
/* First row start in [from, limit) given quote parity `inq` at `from`
 * (region start `rstart` is always a row start); returns -1 if none. */
int64_t pt__csv_first_row_start(const char *data, int64_t rstart, int64_t from, int64_t limit,
                                int inq, char quote);
/* End of the row that starts at `p` following quote parity (one past its
 * '\n', or `end`). */
const char *pt__csv_row_end(const char *p, const char *end, char quote);
/* Maps a file read-only (or reads it when mapping fails). */
typedef struct pt__csv_map {
    const char *data;
    int64_t len;
    void *mapped; /* munmap base, or NULL */
    char *owned;  /* pt_malloc copy, or NULL */
} pt__csv_map;
pt_status pt__csv_map_file(const char *path, pt__csv_map *m, pt_error *err);
void pt__csv_unmap(pt__csv_map *m);
/* Writes `len` bytes of `s` into `buf` (cap bytes) as quoted, printable
 * text cut to ~40 characters. */
void pt__csv_show(char *buf, size_t cap, const char *s, int64_t len);
/* Line and 1-based byte column of `pos`, counting from `base` whose line is
 * `line0` (base must be at a line start). */
void pt__csv_linecol(const char *base, int64_t line0, const char *pos, int64_t *line,
                     int64_t *col);
/* Offset of the first invalid UTF-8 byte in [s, s + n), or -1. */
int64_t pt__csv_utf8_check(const char *s, int64_t n);

/* ---- csv_parse.c ------------------------------------------------------- */

/* Number parsing (leading/trailing blanks allowed). Return 1 on success, 0
 * when the text is not of that type; pt__csv_parse_i64 returns -1 for an
 * integer out of int64 range. */
int pt__csv_parse_i64(const char *s, int64_t n, int64_t *out);
int pt__csv_parse_f64(const char *s, int64_t n, double *out);
int pt__csv_parse_f32(const char *s, int64_t n, float *out);
int pt__csv_parse_bool(const char *s, int64_t n, int *out);
/* Class of a non-null field text: BOOL, INT64, FLOAT64 or UTF8. */
pt_type pt__csv_classify(const char *s, int64_t n);
/* Whether an unquoted field text is one of the null values. */
int pt__csv_is_null_text(const pt__csv_nulls *nl, const char *s, int64_t n);
/* Widest of two classes (int64 + float64 = float64, bool + number = utf8). */
pt_type pt__csv_join(pt_type a, pt_type b);
/* Class of a materialisation type. */
pt_type pt__csv_class_of(pt_type t);
uint64_t pt__csv_hash(const char *s, int64_t n);

void pt__csv_chunk_init(pt__csv_chunk *ck);
void pt__csv_chunk_free(const pt__csv_cfg *cfg, pt__csv_chunk *ck);
void pt__csv_col_free(const pt__csv_cfg *cfg, pt__csv_col *b);
/* Parses the chunk's rows materialising columns with types[] (nout).
 * When `only` >= 0... columns with reparse[i] set are materialised and the
 * rest skipped, re-using the rows skipped in the first pass. */
pt_status pt__csv_parse_chunk(const pt__csv_cfg *cfg, const char *data, pt__csv_chunk *ck,
                              const pt_type *types, const uint8_t *select);
/* Tokenises one field at p (for the sample and the header). Returns the
 * position after the field (at its terminator) or NULL on a malformed field
 * (then *bad points at the offending byte). The text is (*s, *n), unescaped
 * into *scratch when needed; *quoted tells whether it was quoted. */
const char *pt__csv_field(const pt__csv_cfg *cfg, const char *p, const char *end,
                          const char **s, int64_t *n, int *quoted, char **scratch,
                          int64_t *scap, const char **bad);

/* ---- csv_infer.c ------------------------------------------------------- */

/* Fills cfg->cls from cfg->delim and cfg->quote. */
void pt__csv_set_classes(pt__csv_cfg *cfg);

typedef struct pt__csv_sample_col {
    pt_type cls;       /* join of the classes seen (NULL when all null) */
    int64_t nonnull;
    int64_t distinct;  /* distinct texts, counted up to a cap */
    int has_text_null_quoted;
} pt__csv_sample_col;

/* Everything the reader learns from the start of the input. */
typedef struct pt__csv_head {
    char delim;
    int has_header;
    int64_t body;        /* offset of the first data row */
    int64_t body_line;   /* its line number */
    int ncols;
    char **names;        /* [ncols] */
    pt_type *types;      /* [ncols] inferred (or schema) types */
    int64_t sample_rows;
    double avg_row;      /* bytes per sampled row */
    int need_more;       /* an incomplete window ended before the first row */
} pt__csv_head;

/* Sniffs the delimiter, reads the header, and infers types from up to
 * opts->sample_rows rows of data[0, len) (BOM already skipped). `complete`
 * tells whether data ends at the end of the input. */
pt_status pt__csv_head_read(const char *name, const char *data, int64_t len, int complete,
                            const pt_csv_opts *opts, pt__csv_head *h, pt_error *err);
void pt__csv_head_free(pt__csv_head *h);

#endif
