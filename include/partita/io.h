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

/* The native columnar format (".ptn"): batches of columns, each buffer
 * compressed with zstd, every column chunk checksummed with CRC32C, and a
 * footer with the schema and a batch index. Used for spill files and
 * checkpoints, and as a data source (pt_frame_read_native). */

/* ------------------------------------------------------------------------ */
/* CRC32C                                                                   */
/* ------------------------------------------------------------------------ */

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `len` bytes,
 * continuing from `crc` (pass 0 to start). pt_crc32c(pt_crc32c(0, a), b) is
 * the CRC of a followed by b; pt_crc32c(0, "123456789", 9) == 0xE3069283.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, else a portable
 * slice-by-8 table. Thread-safe. */
PT_API uint32_t pt_crc32c(uint32_t crc, const void *data, size_t len);

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct pt_native_write_opts {
    int compression_level; /* zstd level for every buffer; 0 = store raw.
                              Default 1. Ignored (raw) when the library was
                              built without zstd. */
    int durable;           /* 1 (default): fsync the file and its directory
                              on close. Spill files use 0. */
    int64_t batch_rows;    /* pt_native_write_table only: rows per batch
                              (default 0 = the whole table as one batch) */
    pt_mem *mem;           /* budget charged with the writer's scratch
                              buffers; NULL = not counted */
} pt_native_write_opts;
PT_API void pt_native_write_opts_init(pt_native_write_opts *o);

typedef struct pt_native_writer pt_native_writer;

/* Starts writing a file with `schema` (copied). The data goes to a temporary
 * file "<path>.tmp-<pid>-<n>" in the same directory; `path` itself appears
 * only when pt_native_close_write succeeds (atomic rename), so readers never
 * see a partial file. opts may be NULL (defaults). Errors: PT_EINVAL (bad
 * argument or schema), PT_EIO / PT_ENOENT (the temporary file cannot be
 * created; the message has the path and strerror), PT_EUNSUPPORTED (a
 * big-endian host), PT_ENOMEM. The caller owns the writer and must end it
 * with pt_native_close_write or pt_native_abort_write. Not thread-safe. */
PT_API pt_status pt_native_open_write(const char *path, const pt_schema *schema,
                                      const pt_native_write_opts *opts, pt_native_writer **out,
                                      pt_error *err) PT_MUST_USE;

/* Appends `table` as one record batch. The table's schema must have the
 * writer's field names and types (PT_EINVAL naming the column otherwise).
 * Sliced columns are normalised (offsets rebased, bitmaps re-aligned); the
 * table is only read. 0-row tables make valid empty batches. After an I/O
 * failure (PT_EIO with strerror) the writer is failed: every later call
 * returns the same error and close removes the temporary file. */
PT_API pt_status pt_native_write_batch(pt_native_writer *w, const pt_table *table,
                                       pt_error *err) PT_MUST_USE;

/* Writes the footer, flushes (fsync when durable), renames the temporary
 * file to the final path and frees the writer, in every case. On any
 * failure the temporary file is removed and `path` is left as it was.
 * NULL is accepted (PT_OK). Errors: PT_EIO with strerror, or the writer's
 * earlier failure. */
PT_API pt_status pt_native_close_write(pt_native_writer *w, pt_error *err) PT_MUST_USE;

/* Abandons the write: removes the temporary file and frees the writer.
 * NULL is ignored. */
PT_API void pt_native_abort_write(pt_native_writer *w);

/* Bytes handed to the file so far (header and batches; the footer comes on
 * close); for spill accounting. */
PT_API int64_t pt_native_writer_bytes(const pt_native_writer *w);

/* Convenience: writes `table` to `path` (opts->batch_rows rows per batch),
 * atomically. Errors as above. */
PT_API pt_status pt_native_write_table(const char *path, const pt_table *table,
                                       const pt_native_write_opts *opts, pt_error *err) PT_MUST_USE;

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct pt_native_reader pt_native_reader;

/* Opens `path` and reads its header and footer (schema and batch index);
 * nothing else is read. Column buffers of batches read later are charged to
 * `mem` (may be NULL). Errors: PT_ENOENT, PT_EIO (with strerror), PT_ECORRUPT
 * (not a native file, truncated, checksum mismatch, inconsistent footer; the
 * message names the file and what is wrong), PT_EUNSUPPORTED (a newer format
 * version), PT_ENOMEM, PT_EBUDGET. The caller owns the reader. */
PT_API pt_status pt_native_open_read(pt_mem *mem, const char *path, pt_native_reader **out,
                                     pt_error *err) PT_MUST_USE;

/* The same for a file image in memory (`name` is used in messages and may
 * be NULL). The bytes are not copied: they must stay valid and unchanged
 * until pt_native_close_read. Used by the fuzzer and for in-memory data. */
PT_API pt_status pt_native_open_buffer(pt_mem *mem, const void *data, int64_t len, const char *name,
                                       pt_native_reader **out, pt_error *err) PT_MUST_USE;

/* The file's schema (owned by the reader), its number of batches, and the
 * rows of batch i (-1 when i is out of range) and of the whole file. */
PT_API const pt_schema *pt_native_schema(const pt_native_reader *r);
PT_API int64_t pt_native_num_batches(const pt_native_reader *r);
PT_API int64_t pt_native_batch_rows(const pt_native_reader *r, int64_t i);
PT_API int64_t pt_native_num_rows(const pt_native_reader *r);
/* Bytes read from the source so far (footer and batches). */
PT_API int64_t pt_native_reader_bytes(const pt_native_reader *r);

/* Reads batch `i` into a new table. `columns` lists the indices of the
 * schema fields to read, in the order wanted (NULL = every column, and
 * ncols is then ignored); only those columns' bytes are read and checked.
 * Every checksum, length, offset, dictionary index and null count is
 * validated before use, so a corrupt file gives PT_ECORRUPT ("x.ptn: batch
 * 3, column 'v1': checksum mismatch (stored 0x..., computed 0x...)") and
 * never a crash. Other errors: PT_EINVAL (i or a column index out of range),
 * PT_EIO, PT_EUNSUPPORTED (zstd-compressed data in a build without zstd),
 * PT_EBUDGET / PT_ENOMEM (nothing is left charged to the budget then). The caller owns the table.
 * Several threads may read batches of the same reader at once. */
PT_API pt_status pt_native_read_batch(pt_native_reader *r, int64_t i, const int *columns, int ncols,
                                      pt_table **out, pt_error *err) PT_MUST_USE;

/* Frees the reader (closes the file). NULL is ignored. Tables already read
 * stay valid. */
PT_API void pt_native_close_read(pt_native_reader *r);

/* Convenience: reads every batch of `path` and concatenates them into one
 * table charged to `mem`. Errors as above. */
PT_API pt_status pt_native_read_all(pt_mem *mem, const char *path, pt_table **out,
                                    pt_error *err) PT_MUST_USE;


#ifdef __cplusplus
}
#endif
#endif
