/*
 * partita/frame.h - computations over tables and files. For now: column
 * statistics (describe), computed in parallel by partitions and merged with
 * numerically sound formulas, in memory or streaming over a CSV file in
 * bounded memory. The lazy dataframe grows here.
 */
#ifndef PARTITA_FRAME_H
#define PARTITA_FRAME_H

#include "partita/io.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PT_STATS_TOP 5

typedef struct pt_top_value {
    char *text; /* owned */
    int64_t count;
} pt_top_value;

/* Statistics of one column. Numeric columns (and bool, as 0/1) fill mean,
 * std (sample standard deviation, n - 1), min and max; text columns fill the
 * distinct count and the most frequent values. */
typedef struct pt_col_stats {
    char *name; /* owned */
    pt_type type;
    int64_t count; /* non-null values */
    int64_t nulls;
    double mean, m2, std, min, max; /* numeric; NaN when count == 0 */
    int64_t distinct;   /* text: number of distinct values */
    int distinct_exact; /* 1 when exact, 0 when estimated (HyperLogLog,
                           after the exact set outgrew its memory share) */
    int ntop;
    pt_top_value top[PT_STATS_TOP]; /* most frequent first; ties by text */
    int top_exact;      /* 1 when the counts are exact */
} pt_col_stats;

typedef struct pt_stats {
    int ncols;
    pt_col_stats *cols;
    int64_t rows;
    int64_t partitions;   /* partitions (tasks) the work was split into */
    int64_t batches;      /* streaming batches (1 for in-memory tables) */
    int64_t peak_memory;  /* peak of the context's budget during the run */
    double seconds;
} pt_stats;

typedef struct pt_stats_opts {
    int64_t partitions;  /* in-memory: partitions to split the rows into
                            (<= 0: 4 per thread) */
    int64_t exact_distinct_limit; /* distinct values kept exactly per column
                                     before switching to an estimate
                                     (default 1,000,000) */
} pt_stats_opts;
PT_API void pt_stats_opts_init(pt_stats_opts *o);

/* Statistics of every column of `t`, in parallel over row partitions on the
 * context's pool. The caller frees the result with pt_stats_free. */
PT_API pt_status pt_stats_table(pt_ctx *ctx, const pt_table *t, const pt_stats_opts *opts,
                                pt_stats **out, pt_error *err) PT_MUST_USE;
/* Statistics of a CSV file streamed batch by batch (memory bounded by the
 * context's budget, not by the file size). */
PT_API pt_status pt_stats_csv(pt_ctx *ctx, const char *path, const pt_csv_opts *csv,
                              const pt_stats_opts *opts, pt_stats **out, pt_error *err)
    PT_MUST_USE;
/* Prints a table of the statistics (one row per column). */
PT_API void pt_stats_print(const pt_stats *s, FILE *out);
PT_API void pt_stats_free(pt_stats *s);

#ifdef __cplusplus
}
#endif
#endif
