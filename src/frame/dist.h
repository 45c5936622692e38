/*
 * dist.h - data exchange primitives for distributed plans: tables to and
 * from byte messages, and the collective moves built on pt_comm that the
 * distributed operators need (hash shuffle for group-by and join, range
 * shuffle for sample sort, gather, broadcast and allgather of tables, and
 * the split of a scan between ranks).
 *
 * Wire format of one serialised table (host byte order; little-endian hosts
 * only, like the native file format): a 24-byte header
 *   "PTX1" | u32 flags (bit 0: CRC present) | u32 crc32c of the payload |
 *   u32 reserved (0) | i64 payload bytes
 * then a payload of 8-byte aligned sections: row and column counts, the
 * schema (names and types), and per column its length, null count and raw
 * Arrow buffers with offset 0 (slices are normalised: bitmaps re-aligned,
 * utf8 offsets rebased to start at 0). A dictionary column carries its
 * dictionary as a nested utf8 column. Nothing is compressed: exchange is
 * bound by memory bandwidth, not by the network of one node, and zstd would
 * cost more than it saves. Deserialising checks every length, offset, index,
 * null count and the CRC before use, so bad bytes are PT_ECORRUPT, never a
 * crash.
 *
 * Determinism: every exchange returns what a rank received concatenated in
 * sender-rank order (rank 0's rows first), and within a sender in the order
 * of the input partitions and rows. Dictionary columns stay dictionary
 * columns: the pieces received from different senders carry different
 * dictionaries and are merged by pt_table_concat, which re-encodes them into
 * one dictionary (first-seen order), so the result is the same on every run.
 *
 * Memory: a shuffle holds the pieces it sends (taken rows) and one send
 * buffer; what it receives is not copied out of the comm layer's receive
 * block: the deserialised pieces point into it and are then concatenated
 * (one copy). A rank that fails before data moves (budget, memory) is agreed
 * on first with a small allreduce, so every rank returns an error naming it
 * and no rank waits for a peer that left or returns a silently partial
 * result.
 *
 * Every function here is a collective over `c` unless said otherwise: all
 * ranks call it in the same order with matching arguments. Result tables
 * are charged to pt_ctx_mem(ctx) (ctx may be NULL: nothing is counted).
 * Errors common to the collectives: PT_EINVAL (bad argument, named),
 * PT_ECORRUPT (a message that fails validation, naming the sending rank),
 * PT_ETIMEOUT / PT_ECOMM from the comm layer, PT_EBUDGET, PT_ENOMEM.
 */
#ifndef PT_FRAME_DIST_H
#define PT_FRAME_DIST_H

#include <stdbool.h>

#include "partita/col.h"
#include "partita/comm.h"
#include "partita/exec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Serialisation                                                            */
/* ------------------------------------------------------------------------ */

/* Flags of pt__table_serialize_into. */
#define PT__SER_CRC 1u

/* Exact size in bytes of the serialised form of `t` (a multiple of 8), or
 * -1 when `t` is NULL or malformed (a column type outside pt_type). */
int64_t pt__table_serialized_size(const pt_table *t);

/* Writes the serialised form of `t` into dst, which has room for `cap`
 * bytes (at least pt__table_serialized_size(t)); `flags` is 0 or
 * PT__SER_CRC. *len receives the bytes written. Errors: PT_EINVAL (cap too
 * small, bad table). Thread-safe for distinct dst. */
pt_status pt__table_serialize_into(const pt_table *t, uint32_t flags, uint8_t *dst, int64_t cap,
                                   int64_t *len, pt_error *err) PT_MUST_USE;

/* Serialises `t` (with a CRC) into a new buffer *buf of *len bytes,
 * allocated with pt_malloc and charged to `mem` (may be NULL); free it with
 * pt__table_buf_free(mem, buf, len). Errors: PT_EINVAL, PT_EBUDGET,
 * PT_ENOMEM. */
pt_status pt__table_serialize(const pt_table *t, pt_mem *mem, uint8_t **buf, int64_t *len,
                              pt_error *err) PT_MUST_USE;
void pt__table_buf_free(pt_mem *mem, uint8_t *buf, int64_t len);

/* Rebuilds a table from `len` bytes at `buf` (only read; the table owns new
 * buffers charged to `mem`). Every field is validated; the CRC is checked
 * when present. Errors: PT_ECORRUPT (what is wrong and at which byte
 * offset), PT_EBUDGET, PT_ENOMEM. The caller owns *out. */
pt_status pt__table_deserialize(pt_mem *mem, const uint8_t *buf, int64_t len, pt_table **out,
                                pt_error *err) PT_MUST_USE;

/* Size of the serialised table that starts at buf (from its header), so that
 * messages holding several tables back to back can be walked; -1 when fewer
 * than 24 bytes remain or the header is not one of ours. */
int64_t pt__table_message_size(const uint8_t *buf, int64_t avail);

/* ------------------------------------------------------------------------ */
/* Hashing of key values for partitioning                                   */
/* ------------------------------------------------------------------------ */

/* Hash of row `row` over the key columns `keys[0, nkeys)` of `t`, equal on
 * every rank for equal keys whatever their representation: integers (and
 * bools as 0/1) by value, floats by value where -0.0 == 0.0, every NaN is
 * one value, and a float holding an integer hashes like that integer; utf8
 * and dictionary text by bytes; a null key hashes to a fixed value. */
uint64_t pt__dist_row_hash(const pt_table *t, int nkeys, const int *keys, int64_t row);

/* ------------------------------------------------------------------------ */
/* Exchanges (collectives)                                                  */
/* ------------------------------------------------------------------------ */

/* Hash shuffle: every row of parts[0, nparts) goes to rank
 * pt__dist_row_hash % size; *out is what this rank received (see the
 * determinism note above). Every rank passes at least one part (possibly
 * with 0 rows) so that the schema of an empty result is known; all parts on
 * all ranks must have the same schema (PT_EINVAL otherwise, naming the
 * part). Keys are column positions. */
pt_status pt__dist_shuffle_hash(pt_comm *c, pt_ctx *ctx, pt_table *const *parts, int64_t nparts,
                                int nkeys, const int *keys, pt_table **out,
                                pt_error *err) PT_MUST_USE;

/* Range shuffle for sample sort on key column `key`: each rank samples up
 * to `sample_per_rank` non-null, non-NaN key values (evenly spaced over its
 * rows; <= 0 means 256 * size), the samples are allgathered and sorted
 * identically everywhere, and size-1 splitters are taken at even quantiles.
 * A row with key v goes to the rank r with splitter[r-1] <= v < splitter[r]
 * (ascending), or to size-1-r when `desc`; nulls and NaN go to the last
 * rank in both cases (they sort last, as in sort.h). So after a local sort
 * of each rank's rows, rank order is the global order. Ordering of values:
 * numbers by value (-0.0 == 0.0; ints and floats may mix), bool as 0/1,
 * text by bytes (memcmp, a prefix first). */
pt_status pt__dist_shuffle_range(pt_comm *c, pt_ctx *ctx, pt_table *const *parts, int64_t nparts,
                                 int key, bool desc, int64_t sample_per_rank, pt_table **out,
                                 pt_error *err) PT_MUST_USE;

/* Concatenation of every rank's `local` table in rank order, on `root`
 * (*out = NULL on the other ranks). Schemas must match. */
pt_status pt__dist_gather(pt_comm *c, pt_ctx *ctx, const pt_table *local, int root,
                          pt_table **out, pt_error *err) PT_MUST_USE;

/* Root's table on every rank (joins broadcast with allgather instead, since
 * every rank holds part of the small side): `t` is read on root and
 * ignored elsewhere (may be NULL there). On root *out shares t's columns
 * (no copy); elsewhere it is a new table. */
pt_status pt__dist_broadcast_table(pt_comm *c, pt_ctx *ctx, const pt_table *t, int root,
                                   pt_table **out, pt_error *err) PT_MUST_USE;

/* Concatenation of every rank's `local` table in rank order, on every
 * rank. */
pt_status pt__dist_allgather_table(pt_comm *c, pt_ctx *ctx, const pt_table *local,
                                   pt_table **out, pt_error *err) PT_MUST_USE;

/* What the calling thread's last shuffle (hash or range) did, for
 * benchmarks and EXPLAIN ANALYZE: bytes and rows this rank sent (to itself
 * included), bytes received, and seconds spent routing (hash, counting sort,
 * take), packing (serialisation), agreeing on the ranks' statuses before
 * data moves (which also waits for the slowest rank), exchanging (the
 * alltoallv) and unpacking (deserialisation and concatenation). */
#define PT__DIST_STATS_RANKS 64
typedef struct pt__dist_stats {
    int64_t rows_sent, bytes_sent, bytes_received;
    int64_t bytes_to[PT__DIST_STATS_RANKS]; /* per destination, first 64 ranks */
    double route_s, pack_s, sync_s, exchange_s, unpack_s;
} pt__dist_stats;
void pt__dist_last_stats(pt__dist_stats *out);

/* ------------------------------------------------------------------------ */
/* Scan split (local, not a collective)                                     */
/* ------------------------------------------------------------------------ */

/* Rank `rank`'s share [*lo, *hi) of n items split contiguously among `size`
 * ranks: the first n % size ranks get one item more, so shares differ by
 * at most one and cover [0, n) in rank order. n < 0 counts as 0. */
void pt__dist_share(int64_t n, int rank, int size, int64_t *lo, int64_t *hi);

#ifdef __cplusplus
}
#endif
#endif
