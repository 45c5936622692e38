/*
 * partita/io.h - reading and writing files: CSV (parallel by byte ranges,
 * streaming in bounded batches) and, in later layers' time, libsvm and the
 * native columnar format.
 */
#ifndef PARTITA_IO_H
#define PARTITA_IO_H

#include "partita/col.h"
#include "partita/exec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* CSV reading                                                              */
/* ------------------------------------------------------------------------ */

/* Format rules (RFC 4180 plus what real files need):
 *  - Rows end with LF or CRLF; a UTF-8 BOM is skipped; the last row may lack
 *    a line end. With more than one column, blank lines are skipped; with a
 *    single column a blank line is a null value.
 *  - A quoted field may hold delimiters, line breaks and doubled quotes. A
 *    quote inside an unquoted field, or text after a closing quote, is a
 *    parse error (so that byte ranges can be parsed independently).
 *  - An unquoted empty field, or an unquoted field equal to one of
 *    null_values, is null. A quoted empty field ("") is an empty string in
 *    a text column and null in other columns.
 *  - Numbers and booleans may have surrounding blanks; text is kept as is.
 *    Booleans are true/false in any case; floats accept nan and inf.
 * Type inference: per column the narrowest of bool, int64, float64, utf8
 * over the sample; a column with no value in the sample is PT_TYPE_NULL
 * (and stays so when the whole file has none). An integer too big for
 * int64 makes the column float64 (never wraps). Widening after the sample
 * re-reads text from the input, so "007" stays "007" when a column becomes
 * text; columns widened to text after the sample are utf8, not dict.
 * Dictionaries (dict_strings): a text column is dictionary-encoded when its
 * sample has at most max(1000, sample rows / 10) distinct values and the
 * whole file at most max(1000, rows / 10); otherwise it is utf8. Explicit
 * schema types are used as given (dict columns are always dictionaries).
 * Text columns are validated as UTF-8; unselected columns are not. */

typedef struct pt_csv_opts {
    char delimiter;           /* default ','; 0 = detect from the first line
                                 among , ; \t | */
    char quote;               /* default '"' */
    int header;               /* 1 = first line is a header, 0 = none
                                 (columns named c0, c1, ...), -1 = detect
                                 (default): a header when the first line has
                                 a text field where the sample has numbers, or
                                 all fields are non-numeric */
    const pt_schema *schema;  /* explicit column types (by position, names
                                 taken from the schema), or NULL to infer */
    const char *const *columns; /* projection: names to materialise, in
                                   this order; NULL = all */
    int ncolumns;
    int64_t sample_rows;      /* rows used for type inference (default 10000) */
    int skip_bad_rows;        /* skip ragged/unparseable rows, counting them,
                                 instead of failing (default 0) */
    int dict_strings;         /* encode low-cardinality text columns as
                                 dictionaries (default 1) */
    const char *const *null_values; /* extra texts read as null besides the
                                       empty field (e.g. "NA"); NULL-ended */
    int64_t batch_bytes;      /* streaming: bytes of input per batch
                                 (default: derived from the memory budget) */
    int64_t chunk_bytes;      /* bytes per parse task (default 8 MiB) */
    int threads;              /* parse tasks in flight (<= 0: the pool's) */
    int progress;             /* draw a progress bar (default 1; it also
                                 needs a terminal and quiet off) */
} pt_csv_opts;
PT_API void pt_csv_opts_init(pt_csv_opts *o);

/* What happened during a read. */
typedef struct pt_csv_report {
    int64_t rows;          /* rows returned */
    int64_t bad_rows;      /* rows skipped (skip_bad_rows) */
    char first_bad[512];   /* where and why the first skipped row was bad */
    int64_t bytes;         /* input bytes */
    int64_t chunks;        /* parse tasks run */
    int promotions;        /* columns whose type was widened after the sample */
    double seconds;
} pt_csv_report;

/* Reads a whole CSV file into a table, parsing byte ranges in parallel on the
 * context's pool. Types are inferred from a sample and widened (int64 ->
 * float64 -> utf8) when a later row disagrees; with an explicit schema a
 * value that does not parse is an error. Errors (PT_ENOENT, PT_EIO,
 * PT_EEMPTY, PT_EPARSE, PT_ETYPE, PT_EBUDGET, PT_ENOMEM) name the file, line
 * and column and quote the offending text. `report` may be NULL. The caller
 * owns the table. */
PT_API pt_status pt_csv_read(pt_ctx *ctx, const char *path, const pt_csv_opts *opts,
                             pt_table **out, pt_csv_report *report, pt_error *err) PT_MUST_USE;
/* The same for text in memory (`name` is used in messages). The text is
 * only read. */
PT_API pt_status pt_csv_read_buffer(pt_ctx *ctx, const char *data, int64_t len, const char *name,
                                    const pt_csv_opts *opts, pt_table **out,
                                    pt_csv_report *report, pt_error *err) PT_MUST_USE;

/* Streaming reader: hands the file out as a sequence of tables of bounded
 * size (each batch parsed in parallel), so a file larger than memory can be
 * processed chunk by chunk. Types come from the sample; when a later batch
 * needs int64 -> float64 the batch carries float64 and the reader's schema
 * is widened (consumers must accept numeric widening); when a batch would
 * need a text column where numbers were already handed out, the read fails
 * with PT_ETYPE naming the line and column and suggesting a schema. */
typedef struct pt_csv_reader pt_csv_reader;
PT_API pt_status pt_csv_open(pt_ctx *ctx, const char *path, const pt_csv_opts *opts,
                             pt_csv_reader **out, pt_error *err) PT_MUST_USE;
/* The current schema (valid until the next call on the reader). */
PT_API const pt_schema *pt_csv_reader_schema(const pt_csv_reader *r);
/* Next batch, or *out = NULL at the end. The caller owns each batch. */
PT_API pt_status pt_csv_next(pt_csv_reader *r, pt_table **out, pt_error *err) PT_MUST_USE;
/* Progress and totals so far. */
PT_API void pt_csv_reader_report(const pt_csv_reader *r, pt_csv_report *out);
PT_API int64_t pt_csv_reader_file_size(const pt_csv_reader *r);
PT_API void pt_csv_close(pt_csv_reader *r);

/* ------------------------------------------------------------------------ */
/* CSV writing                                                              */
/* ------------------------------------------------------------------------ */

typedef struct pt_csv_write_opts {
    char delimiter;   /* default ',' */
    int header;       /* default 1 */
    int float_digits; /* 0 (default) = shortest text that reads back exactly */
    const char *null_text; /* default "" */
} pt_csv_write_opts;
PT_API void pt_csv_write_opts_init(pt_csv_write_opts *o);

/* Writes a table as RFC 4180 CSV (fields with the delimiter, quotes or line
 * breaks are quoted, quotes doubled). Floats are written so that reading
 * them back gives the same double. */
PT_API pt_status pt_csv_write(const pt_table *t, const char *path, const pt_csv_write_opts *opts,
                              pt_error *err) PT_MUST_USE;
PT_API pt_status pt_csv_write_file(const pt_table *t, FILE *f, int with_header,
                                   const pt_csv_write_opts *opts, pt_error *err) PT_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
