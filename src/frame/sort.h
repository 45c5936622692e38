/*
 * sort.h - the sort kernel of the dataframe layer: stable, multi-key,
 * parallel sorting of partitioned tables in memory, top-n without a full
 * sort, and a streaming external merge sort for inputs larger than memory.
 *
 * Ordering: bool false < true; ints and floats by value, where NaN sorts
 * after every number (also for descending keys) and -0.0 equals 0.0; utf8
 * and dictionary text by bytes (memcmp, a prefix before its extensions).
 * Nulls sort last for ascending and descending keys alike. Every sort is
 * stable: rows with equal keys keep their input order (partition order,
 * then row order).
 *
 * Key columns are positions in the partitions' schema. Every partition must
 * have the same schema (names and types). Result columns are charged to the
 * context's memory budget; working memory (about 32 bytes per row) is
 * reserved there too, so a sort that does not fit fails with PT_EBUDGET and
 * the caller can switch to the stream form.
 */
#ifndef PT_FRAME_SORT_H
#define PT_FRAME_SORT_H

#include <stdbool.h>

#include "partita/col.h"
#include "partita/exec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt__sort_key {
    int col;   /* position in the schema */
    bool desc; /* nulls still sort last */
} pt__sort_key;

/* Sorts the rows of all partitions (in partition order, then row order, for
 * stability) by the keys into one new table owned by the caller. nparts must
 * be >= 1 (the schema comes from parts[0]); zero rows give an empty table.
 * Errors: PT_EINVAL (bad key column, schemas that differ, naming the
 * parameter), PT_EBUDGET / PT_ENOMEM. */
pt_status pt__sort(pt_ctx *ctx, pt_table *const *parts, int64_t nparts, int nkeys,
                   const pt__sort_key *keys, pt_table **out, pt_error *err) PT_MUST_USE;

/* Stable sort permutation of one table: perm[i] = row index of the i-th row
 * in sorted order (t->nrows entries; the caller frees it with pt_free). */
pt_status pt__sort_indices(pt_ctx *ctx, const pt_table *t, int nkeys, const pt__sort_key *keys,
                           int64_t **perm, pt_error *err) PT_MUST_USE;

/* Top-n without a full sort (ORDER BY ... LIMIT n): the first min(n, rows)
 * rows of the stable sorted order, as a new table. n < 0 is PT_EINVAL. */
pt_status pt__sort_topn(pt_ctx *ctx, pt_table *const *parts, int64_t nparts, int nkeys,
                        const pt__sort_key *keys, int64_t n, pt_table **out,
                        pt_error *err) PT_MUST_USE;

/* Streaming external sort for inputs larger than memory. Pushed rows are
 * copied into runs charged to the context's budget; a run that reaches
 * about half the budget is sorted and spilled to a native file in a private
 * spill directory under pt_ctx_spill_dir(ctx). next() then merges the runs
 * (in several passes when there are too many to merge at once within the
 * budget). When everything fits, nothing is spilled. Not thread-safe (one
 * caller at a time); the work inside uses the context's pool. */
typedef struct pt__sort_stream pt__sort_stream;

/* Creates a stream for rows with schema `in` (copied). Errors: PT_EINVAL
 * (bad keys), PT_ENOMEM. */
pt_status pt__sort_stream_new(pt_ctx *ctx, const pt_schema *in, int nkeys,
                              const pt__sort_key *keys, pt__sort_stream **out,
                              pt_error *err) PT_MUST_USE;

/* Adds rows; the parts are only read (the caller may free them afterwards).
 * Fails with PT_EINVAL when a part's schema differs from the stream's, after
 * next() was called, or after an earlier failure; PT_EIO when spilling
 * fails; PT_EBUDGET when even a single row does not fit. */
pt_status pt__sort_stream_push(pt__sort_stream *s, pt_table *const *parts, int64_t nparts,
                               pt_error *err) PT_MUST_USE;

/* After the last push: hands out the sorted rows as batches of bounded size
 * (the caller owns each batch), and *out = NULL at the end. Errors: PT_EIO,
 * PT_ECORRUPT (a spill file could not be read back), PT_EBUDGET, PT_ENOMEM. */
pt_status pt__sort_stream_next(pt__sort_stream *s, pt_table **out, pt_error *err) PT_MUST_USE;

/* Frees the stream and removes its spill files. NULL is ignored. */
void pt__sort_stream_free(pt__sort_stream *s);

/* Number of sorted runs written to disk (0 when everything fit in memory)
 * and the bytes written to spill files, merge passes included. Either
 * pointer may be NULL. */
void pt__sort_stream_stats(const pt__sort_stream *s, int64_t *runs, int64_t *spilled_bytes);

#ifdef __cplusplus
}
#endif
#endif
