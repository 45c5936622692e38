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

#include "partita/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Spill directories                                                        */
/* ------------------------------------------------------------------------ */

/* A private directory for the spill files of one computation: created with
 * mode 0700 under a base directory, named partita-spill-<pid>-<random>, and
 * removed with everything in it by pt__spill_dir_free. Thread-safe. */
typedef struct pt__spill_dir pt__spill_dir;

typedef struct pt__spill_stats {
    int64_t files;         /* file names handed out */
    int64_t bytes_written; /* counted by pt__spill_write / pt__spill_add_written */
    int64_t bytes_read;    /* counted by pt__spill_read / pt__spill_add_read */
} pt__spill_stats;

/* Creates a fresh spill directory under `base_dir` (for instance
 * pt_ctx_spill_dir(ctx); NULL = $TMPDIR or /tmp; the base is created when
 * missing). Errors: PT_EIO / PT_ENOENT with the path and strerror,
 * PT_ENOMEM. The caller owns the result. */
pt_status pt__spill_dir_new(const char *base_dir, pt__spill_dir **out,
                                  pt_error *err) PT_MUST_USE;
/* Same, with the base taken from the context. */
pt_status pt__spill_dir_new_ctx(const pt_ctx *ctx, pt__spill_dir **out,
                                      pt_error *err) PT_MUST_USE;

/* The directory's path (owned by sd). */
const char *pt__spill_dir_path(const pt__spill_dir *sd);

/* Writes a unique file name "<dir>/<prefix>-<n>.ptn" into buf (cap bytes)
 * and records it for cleanup; the file itself is not created. `prefix` may
 * be NULL ("spill") and must not contain '/'. Errors: PT_EINVAL (bad
 * prefix), PT_ERANGE (buf too small), PT_ENOMEM. */
pt_status pt__spill_file_path(pt__spill_dir *sd, const char *prefix, char *buf, size_t cap,
                                    pt_error *err) PT_MUST_USE;

/* Writes `table` to a new spill file (zstd level 1 when available, not
 * fsynced, batches of opts->batch_rows when opts is given) and puts its path
 * into path_out (cap bytes). Counts the bytes written. Errors as
 * pt__spill_file_path and pt_native_write_table. */
pt_status pt__spill_write(pt__spill_dir *sd, const char *prefix, const pt_table *table,
                                const pt_native_write_opts *opts, char *path_out, size_t cap,
                                pt_error *err) PT_MUST_USE;
/* Reads a spill file back into one table charged to `mem`, counting the
 * bytes read; with `remove_after` the file is deleted once read. Errors as
 * pt_native_read_all. */
pt_status pt__spill_read(pt__spill_dir *sd, pt_mem *mem, const char *path, int remove_after,
                               pt_table **out, pt_error *err) PT_MUST_USE;
/* Deletes one spill file early (missing files are fine). */
void pt__spill_remove(pt__spill_dir *sd, const char *path);

/* Counters for reports, for callers that do their own I/O in the dir. */
void pt__spill_add_written(pt__spill_dir *sd, int64_t bytes);
void pt__spill_add_read(pt__spill_dir *sd, int64_t bytes);
void pt__spill_stats_get(const pt__spill_dir *sd, pt__spill_stats *out);

/* Removes every file in the directory (also files it did not hand out, such
 * as a writer's leftover temporary files) and the directory itself, then
 * frees sd. Safe on error paths; NULL is ignored. Failures to remove are
 * logged at warn level. */
void pt__spill_dir_free(pt__spill_dir *sd);

#ifdef __cplusplus
}
#endif
#endif
