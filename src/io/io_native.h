/*
 * io_native.h - Partita's native columnar file format (".ptn"): writer,
 * reader, CRC32C and the spill-directory manager used by out-of-core
 * operators. Internal for now; written in the public style so that the
 * declarations can move into partita/io.h unchanged.
 *
 * The file layout is documented at the top of native_write.c. In short: a
 * header, record batches (every column chunk checksummed with CRC32C, each
 * buffer compressed with zstd or stored raw) and a footer holding the schema
 * and the batch index, so any batch can be read without reading the rest.
 */
#ifndef PT_IO_NATIVE_H
#define PT_IO_NATIVE_H

#include "partita/col.h"
#include "partita/exec.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/* ------------------------------------------------------------------------ */
/* Spill directories                                                        */
/* ------------------------------------------------------------------------ */

/* A private directory for the spill files of one computation: created with
 * mode 0700 under a base directory, named partita-spill-<pid>-<random>, and
 * removed with everything in it by pt_spill_dir_free. Thread-safe. */
typedef struct pt_spill_dir pt_spill_dir;

typedef struct pt_spill_stats {
    int64_t files;         /* file names handed out */
    int64_t bytes_written; /* counted by pt_spill_write / pt_spill_add_written */
    int64_t bytes_read;    /* counted by pt_spill_read / pt_spill_add_read */
} pt_spill_stats;

/* Creates a fresh spill directory under `base_dir` (for instance
 * pt_ctx_spill_dir(ctx); NULL = $TMPDIR or /tmp; the base is created when
 * missing). Errors: PT_EIO / PT_ENOENT with the path and strerror,
 * PT_ENOMEM. The caller owns the result. */
PT_API pt_status pt_spill_dir_new(const char *base_dir, pt_spill_dir **out,
                                  pt_error *err) PT_MUST_USE;
/* Same, with the base taken from the context. */
PT_API pt_status pt_spill_dir_new_ctx(const pt_ctx *ctx, pt_spill_dir **out,
                                      pt_error *err) PT_MUST_USE;

/* The directory's path (owned by sd). */
PT_API const char *pt_spill_dir_path(const pt_spill_dir *sd);

/* Writes a unique file name "<dir>/<prefix>-<n>.ptn" into buf (cap bytes)
 * and records it for cleanup; the file itself is not created. `prefix` may
 * be NULL ("spill") and must not contain '/'. Errors: PT_EINVAL (bad
 * prefix), PT_ERANGE (buf too small), PT_ENOMEM. */
PT_API pt_status pt_spill_file_path(pt_spill_dir *sd, const char *prefix, char *buf, size_t cap,
                                    pt_error *err) PT_MUST_USE;

/* Writes `table` to a new spill file (zstd level 1 when available, not
 * fsynced, batches of opts->batch_rows when opts is given) and puts its path
 * into path_out (cap bytes). Counts the bytes written. Errors as
 * pt_spill_file_path and pt_native_write_table. */
PT_API pt_status pt_spill_write(pt_spill_dir *sd, const char *prefix, const pt_table *table,
                                const pt_native_write_opts *opts, char *path_out, size_t cap,
                                pt_error *err) PT_MUST_USE;
/* Reads a spill file back into one table charged to `mem`, counting the
 * bytes read; with `remove_after` the file is deleted once read. Errors as
 * pt_native_read_all. */
PT_API pt_status pt_spill_read(pt_spill_dir *sd, pt_mem *mem, const char *path, int remove_after,
                               pt_table **out, pt_error *err) PT_MUST_USE;
/* Deletes one spill file early (missing files are fine). */
PT_API void pt_spill_remove(pt_spill_dir *sd, const char *path);

/* Counters for reports, for callers that do their own I/O in the dir. */
PT_API void pt_spill_add_written(pt_spill_dir *sd, int64_t bytes);
PT_API void pt_spill_add_read(pt_spill_dir *sd, int64_t bytes);
PT_API void pt_spill_stats_get(const pt_spill_dir *sd, pt_spill_stats *out);

/* Removes every file in the directory (also files it did not hand out, such
 * as a writer's leftover temporary files) and the directory itself, then
 * frees sd. Safe on error paths; NULL is ignored. Failures to remove are
 * logged at warn level. */
PT_API void pt_spill_dir_free(pt_spill_dir *sd);

#ifdef __cplusplus
}
#endif
#endif
