/*
 * join.h - the hash join kernel behind pt_frame_join and SQL joins: a
 * parallel in-memory hash join (inner, left, right, full; one or more
 * keys), its streaming form (build once, probe batches) for pipelines in
 * bounded memory, an out-of-core partitioned ("grace") hash join that takes
 * over when the build side does not fit the memory budget, and the
 * db-benchmark join data generator (J1). Internal; names are pt__join_*.
 */
#ifndef PT_FRAME_JOIN_H
#define PT_FRAME_JOIN_H

#include "partita.h"
#include "partita/dataframe.h"

/* How a join ran, for tests, EXPLAIN ANALYZE-style reports and debugging
 * (the same facts are logged at debug level). */
typedef enum pt__join_strategy {
    PT__JOIN_BROADCAST,   /* small build side: one shared hash table */
    PT__JOIN_PARTITIONED, /* radix-partitioned parallel build, shared probe */
    PT__JOIN_GRACE        /* out of core: both sides hash-partitioned to disk */
} pt__join_strategy;

typedef enum pt__join_table_kind {
    PT__JT_DIRECT, /* one integer key with a small range: perfect hashing */
    PT__JT_DENSE,  /* one text key: distinct build strings get dense ids */
    PT__JT_HASHED  /* anything else: open addressing on 64-bit hashes */
} pt__join_table_kind;

typedef struct pt__join_stats {
    pt__join_strategy strategy;
    pt__join_table_kind table; /* of the (last) in-memory table built */
    int build_is_right;        /* which input the hash table was built on */
    int64_t build_rows, probe_rows, out_rows;
    int64_t radix_parts;       /* partitions of the in-memory build (1 = broadcast) */
    int64_t grace_parts;       /* spill partitions per side (0 = in memory) */
    int grace_depth;           /* deepest re-partitioning level (1 = no recursion) */
    int64_t spill_bytes;       /* bytes written to spill files */
} pt__join_stats;

typedef struct pt__join_opts {
    int64_t broadcast_rows; /* build sides up to this many rows use one table
                               (default 1 << 16) */
    int force_grace;        /* 1: go out of core even when it would fit */
    int grace_parts;        /* spill partitions per level (0: from the budget) */
} pt__join_opts;
void pt__join_opts_init(pt__join_opts *o);

/* Joins left and right partitions on lkeys[i] = rkeys[i] (positions in the
 * partition schemas). Output schema: all left columns then all right
 * columns, named as in the inputs (the caller renames). Key types must match
 * exactly, except that utf8 and dict compare by text and int32/int64 by
 * value (else PT_ETYPE naming both columns). Null keys never match (SQL).
 * LEFT keeps unmatched left rows with nulls on the right; RIGHT the reverse;
 * FULL both. Output order unspecified. The inputs are only read. The result
 * (owned by the caller) is charged to the context's budget when the join
 * runs in memory; when the build side does not fit (a reservation fails with
 * PT_EBUDGET, or the hash table would take more than half of the budget)
 * the grace join runs instead, and its result is not charged (it is what
 * the caller asked for; bounded consumers use the stream form). Errors:
 * PT_EINVAL (bad arguments), PT_ETYPE, PT_ENOMEM, PT_EIO (spill files). */
pt_status pt__join(pt_ctx *ctx, pt_table *const *lparts, int64_t nl, pt_table *const *rparts,
                   int64_t nr, pt_join_type type, int nkeys, const int *lkeys, const int *rkeys,
                   pt_table **out, pt_error *err) PT_MUST_USE;
/* Same, with options (NULL = defaults) and a report of how it ran (may be
 * NULL). */
pt_status pt__join_ex(pt_ctx *ctx, pt_table *const *lparts, int64_t nl, pt_table *const *rparts,
                      int64_t nr, pt_join_type type, int nkeys, const int *lkeys,
                      const int *rkeys, const pt__join_opts *opts, pt_table **out,
                      pt__join_stats *stats, pt_error *err) PT_MUST_USE;

/* Streaming probe side for bounded memory: build once, then probe batches.
 * The build partitions are only read during pt__join_stream_new (the
 * stream keeps references to the columns it needs). `build_is_right` says
 * which input of the join the build side is; output rows always have the
 * left columns first. The probe schema is copied. Probe batches may be
 * given from one thread at a time. Errors as pt__join. */
typedef struct pt__join_stream pt__join_stream;
pt_status pt__join_stream_new(pt_ctx *ctx, pt_table *const *build_parts, int64_t nb,
                              int build_is_right, pt_join_type type, int nkeys,
                              const int *probe_keys, const int *build_keys,
                              const pt_schema *probe_schema, pt__join_stream **out,
                              pt_error *err) PT_MUST_USE;
/* Joins one probe batch (schema equal to the probe schema) with the build
 * side; *out is a new table (possibly with 0 rows) owned by the caller. */
pt_status pt__join_stream_probe(pt__join_stream *j, const pt_table *probe_batch, pt_table **out,
                                pt_error *err) PT_MUST_USE;
/* The build side's unmatched rows (with nulls for the probe columns) when
 * the join keeps them (RIGHT/FULL with the build side on the right,
 * LEFT/FULL with it on the left); a 0-row table otherwise. Call once, after
 * the last probe. */
pt_status pt__join_stream_finish(pt__join_stream *j, pt_table **out, pt_error *err) PT_MUST_USE;
/* Which table kind the stream built (for stats). */
pt__join_table_kind pt__join_stream_table_kind(const pt__join_stream *j);
void pt__join_stream_free(pt__join_stream *j);

/* ------------------------------------------------------------------------ */
/* J1: the db-benchmark join data                                           */
/* ------------------------------------------------------------------------ */

/* Builds the four tables of the db-benchmark join task for `n` rows of x
 * (rules in join_gen.c): x (n rows: id1, id2, id3 int64, id4, id5 dict,
 * id6 utf8, v1 float64), small (n/1e6 rows: id1, id4, v2), medium (n/1e3
 * rows: id1, id2, id4, id5, v2) and big (n rows: id1..id3, id4..id6, v2).
 * Deterministic for a seed whatever the thread count. Columns are charged
 * to the context's budget. Any output pointer may be NULL (that table is
 * not built). Errors: PT_EINVAL (n < 1 or n too large), PT_ENOMEM,
 * PT_EBUDGET. */
pt_status pt__gen_j1(pt_ctx *ctx, int64_t n, uint64_t seed, pt_table **x, pt_table **small,
                     pt_table **medium, pt_table **big, pt_error *err) PT_MUST_USE;

/* Internal to join_*.c. */
/* The stream constructor with the broadcast threshold (rows). */
pt_status pt__join_stream_new_ex(pt_ctx *ctx, pt_table *const *build_parts, int64_t nb,
                                 int build_is_right, pt_join_type type, int nkeys,
                                 const int *probe_keys, const int *build_keys,
                                 const pt_schema *probe_schema, int64_t broadcast_rows,
                                 pt__join_stream **out, pt_error *err) PT_MUST_USE;
/* Probes several partitions in parallel into one table; with
 * `with_unmatched` the build side's unmatched rows are appended and the
 * stream is finished. */
pt_status pt__join_stream_probe_parts(pt__join_stream *j, pt_table *const *parts, int64_t nparts,
                                      int with_unmatched, pt_table **out, pt_error *err)
    PT_MUST_USE;
int64_t pt__join_stream_radix_parts(const pt__join_stream *j);
/* Budget charged with output columns (default: the context's). */
void pt__join_stream_set_output_mem(pt__join_stream *j, pt_mem *m);
/* Hashes of the key columns of rows [lo, hi) of t (h[i - lo]); valid[i -
 * lo] = 0 when a key is null. Equal keys of compatible types hash alike. */
void pt__join_hash_rows(const pt_table *t, int nkeys, const int *keys, int64_t lo, int64_t hi,
                        uint64_t seed, uint64_t *h, uint8_t *valid);
/* The out-of-core path, called by pt__join_ex. */
pt_status pt__join_grace(pt_ctx *ctx, pt_table *const *lparts, int64_t nl,
                         pt_table *const *rparts, int64_t nr, pt_join_type type, int nkeys,
                         const int *lkeys, const int *rkeys, const pt__join_opts *opts,
                         pt_table **out, pt__join_stats *stats, pt_error *err) PT_MUST_USE;
/* Checks the key pairs (positions and types), PT_EINVAL / PT_ETYPE. */
pt_status pt__join_check_keys(const pt_schema *ls, const pt_schema *rs, int nkeys,
                              const int *lkeys, const int *rkeys, pt_error *err) PT_MUST_USE;

#endif
