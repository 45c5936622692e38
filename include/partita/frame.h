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
 * m2 (sum of squared deviations from the mean), std (sample standard
 * deviation, n - 1; NaN when count < 2), min and max; a NaN value counts as
 * a null, as in pandas. Text columns (utf8, dict) fill the distinct count
 * and the most frequent values; their numeric fields are NaN. distinct is
 * -1 for columns that are not text. */
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
    int64_t peak_memory;  /* peak of the context's budget (pt_mem_peak: since
                             the context was made, so use a fresh context to
                             measure one run) */
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

/* ------------------------------------------------------------------------ */
/* Data generation                                                          */
/* ------------------------------------------------------------------------ */

/* Synthetic data sets, generated in parallel and reproducibly: every value
 * is a function of (seed, column, row) through pt_splitmix64, so a seed gives
 * the same data whatever the number of threads, in memory or as CSV.
 *
 * classic - the Dask seed notebook frame: id (int64 0..n-1), value1 (float64,
 *           normal with mean 50 and sd 10), value2 (float64, standard
 *           normal), category (dict<utf8> 'A'..'D', uniform), score (int64
 *           uniform 0..99). Floats are rounded to 6 decimals so that their
 *           CSV text is short and reads back to the same double.
 * g1      - the db-benchmark group-by data (its R generator): id1, id2 =
 *           sprintf("id%03d", sample(K)) (dict<utf8>), id3 =
 *           sprintf("id%010d", sample(N/K)) (utf8), id4, id5 = sample(K),
 *           id6 = sample(N/K) (int64, 1-based), v1 = sample(5), v2 =
 *           sample(15) (int64), v3 = round(runif(0, 100), 6) (float64).
 *           With nas_pct > 0 that percentage of v1, v2 and v3 is null.
 * j1      - the db-benchmark join data: four tables x (n rows), small
 *           (n/1e6), medium (n/1e3) and big (n), with about 90% of the keys
 *           matching (see pt_gen_j1). */
typedef enum pt_gen_kind { PT_GEN_CLASSIC = 0, PT_GEN_G1 = 1, PT_GEN_J1 = 2 } pt_gen_kind;

/* Parses "classic", "g1" or "j1"; PT_EINVAL naming the text otherwise. */
PT_API pt_status pt_gen_kind_parse(const char *name, pt_gen_kind *out, pt_error *err)
    PT_MUST_USE;
PT_API const char *pt_gen_kind_name(pt_gen_kind kind);

/* Builds the classic frame with `nrows` rows in memory (columns charged to
 * the context's budget: PT_EBUDGET when it does not fit). The caller owns
 * the table. */
PT_API pt_status pt_gen_classic(pt_ctx *ctx, int64_t nrows, uint64_t seed, pt_table **out,
                                pt_error *err) PT_MUST_USE;
/* Builds the G1 data with `nrows` rows and `k` groups (k <= 0: 100) and
 * `nas_pct` percent nulls in v1..v3 (0..100; PT_EINVAL otherwise). */
PT_API pt_status pt_gen_g1(pt_ctx *ctx, int64_t nrows, int64_t k, double nas_pct, uint64_t seed,
                           pt_table **out, pt_error *err) PT_MUST_USE;
/* Generates `nrows` rows of `kind` (k and nas_pct as for pt_gen_g1; ignored
 * for classic) straight into a CSV file with a header, in chunks of a fixed
 * number of rows formatted in parallel and written in order, so memory stays
 * bounded whatever nrows is. The file holds exactly the values of the
 * in-memory generators with the same arguments (nulls as empty fields).
 * `bytes_out` (may be NULL) receives the file size. PT_EIO names the path. */
PT_API pt_status pt_gen_write_csv(pt_ctx *ctx, pt_gen_kind kind, int64_t nrows, int64_t k,
                                  double nas_pct, uint64_t seed, const char *path,
                                  int64_t *bytes_out, pt_error *err) PT_MUST_USE;

/* Builds the four tables of the db-benchmark join task for `n` rows of x:
 * x (id1, id2, id3 int64, id4, id5 dict<utf8>, id6 utf8, v1 float64), small
 * (id1, id4, v2), medium (id1, id2, id4, id5, v2), big (id1..id6, v2). The
 * lookup tables hold about 90% of x's keys plus keys x lacks. Deterministic
 * for a seed whatever the thread count. tables[0..3] receive x, small,
 * medium and big (owned by the caller). */
PT_API pt_status pt_gen_j1(pt_ctx *ctx, int64_t n, uint64_t seed, pt_table *tables[4],
                           pt_error *err) PT_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
