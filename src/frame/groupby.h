/*
 * groupby.h - the parallel hash group-by kernel, in memory and out of core.
 * Internal to the frame layer: the planner binds names to column positions
 * and calls these functions with partitions of rows.
 *
 * The second half of this file declares the kernel's own internals, shared
 * by src/frame/groupby_*.c and by nothing else.
 */
#ifndef PT_FRAME_GROUPBY_H
#define PT_FRAME_GROUPBY_H

#include <pthread.h>

#include "partita/dataframe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One aggregate: `kind` over input column `col` (-1 for COUNT_STAR); `col2`
 * is the second argument of CORR and ignored otherwise. */
typedef struct pt__agg_spec {
    pt_agg_kind kind;
    int col;
    int col2;
} pt__agg_spec;

/* Groups the rows of all partitions by the key columns (positions) and
 * computes the aggregates.
 * Output: the key columns (same types; dict keys stay dict, with the union
 * of the partitions' dictionaries), then one column per aggregate, named
 * "<agg>(<column>)" ("count_star()" for COUNT_STAR):
 *   COUNT / COUNT_STAR / COUNT_DISTINCT -> int64; SUM of bool/int -> int64
 *   (PT_ERANGE naming the column on overflow), SUM of float -> float64;
 *   MEAN / STD / VAR / MEDIAN / CORR -> float64; MIN / MAX / FIRST / LAST ->
 *   the input type (text min/max by byte order).
 * Aggregates skip nulls; an aggregate over no non-null values is null
 * (COUNT gives 0). STD/VAR (sample, n - 1) need n >= 2, else null. Null
 * keys form one group; float keys group -0.0 with 0.0 and all NaNs
 * together. nkeys == 0 gives one row of global aggregates (also for zero
 * input rows). FIRST/LAST follow input order: partition order, then row
 * order. Output row order is unspecified.
 * Memory: hash tables are charged to pt_ctx_mem(ctx); when they do not fit,
 * partial aggregates spill to the context's spill directory (removed
 * before returning, also on error). The result table is NOT charged to the
 * budget: it belongs to the caller, who may charge it.
 * Errors: PT_EINVAL (bad positions or specs; the message names the
 * column), PT_ETYPE (an aggregate over a column of the wrong type),
 * PT_ERANGE (int64 SUM overflow), PT_EBUDGET (not even the spill path
 * fits), PT_EIO, PT_ENOMEM. */
pt_status pt__groupby(pt_ctx *ctx, pt_table *const *parts, int64_t nparts, int nkeys,
                             const int *keys, int naggs, const pt__agg_spec *aggs,
                             pt_table **out, pt_error *err) PT_MUST_USE;

/* Streaming form, for inputs that arrive batch by batch (CSV scans) and may
 * not fit in memory. `in` is the schema of every pushed partition (copied).
 * push may be called any number of times, then finish once; free always. */
typedef struct pt__groupby_stream pt__groupby_stream;
pt_status pt__groupby_stream_new(pt_ctx *ctx, const pt_schema *in, int nkeys,
                                        const int *keys, int naggs, const pt__agg_spec *aggs,
                                        pt__groupby_stream **out, pt_error *err) PT_MUST_USE;
/* Aggregates `parts` (in parallel). The partitions are only read: the caller
 * may free them afterwards. A failed push leaves the stream unusable except
 * for pt__groupby_stream_free. */
pt_status pt__groupby_stream_push(pt__groupby_stream *g, pt_table *const *parts,
                                         int64_t nparts, pt_error *err) PT_MUST_USE;
/* Merges everything into the result table (owned by the caller). */
pt_status pt__groupby_stream_finish(pt__groupby_stream *g, pt_table **out,
                                           pt_error *err) PT_MUST_USE;
/* Frees the stream and removes its spill files. NULL is ignored. */
void pt__groupby_stream_free(pt__groupby_stream *g);
/* For reports: groups in the result (after finish) and bytes spilled. */
void pt__groupby_stream_stats(const pt__groupby_stream *g, int64_t *groups,
                                     int64_t *spilled_bytes);

/* ======================================================================== */
/* Kernel internals (groupby_*.c only)                                      */
/* ======================================================================== */

#define GB_PBITS 4               /* radix bits per level */
#define GB_NPARTS (1 << GB_PBITS) /* hash parts per table */
#define GB_MAX_LEVEL 14          /* recursion depth bound of the spill merge */
#define GB_CHUNK 1024            /* rows encoded and probed together */
#define GB_MAX_KEYS 32
#define GB_MAX_AGGS 256
#define GB_NI 3                  /* int64 state arrays per aggregate, at most */
#define GB_NF 7                  /* double state arrays per aggregate, at most */

/* How one key column is encoded. Every group key is a row of `kw` u64
 * words plus `nstr` strings. Word 0 packs the columns of bounded
 * cardinality in mixed radix (code 0 = null), and the null flags of the
 * others; words 1.. hold the full-width columns (0 when null). */
enum { GB_KM_PACKED, GB_KM_FULL, GB_KM_STR, GB_KM_SSTR };
/* GB_KM_SSTR: a text column whose values all have at most GB_SSTR_MAX
 * bytes (measured when the whole input is known) takes two full words: the
 * bytes, zero padded, with the length in the top byte of the second. Keys
 * made only of words hash and compare faster, and suit the radix path. */
#define GB_SSTR_MAX 15
typedef struct gb_keycol {
    int col;
    pt_type type;
    int mode;
    int64_t base;  /* packed ints: code = v - base + 1 */
    uint64_t card; /* packed: codes incl. null */
    uint64_t mult; /* packed: radix weight; full/str: weight of the null flag */
    int shift;     /* when the stream is bit-packed: log2(mult) */
    int word;      /* full: word index; short text: first of two words */
    int sidx;      /* str: string index */
    int dm;        /* dict columns: index of the dictionary union */
    /* Packed short text (mode packed, type utf8): in the 16-byte image of
     * a value (its bytes, zero padded, the length in byte 15) only nv
     * bytes vary over the input, each within a small range, so the value
     * is the number code - 1 = sum of (byte vpos[i] - vmin[i]) * vmul[i].
     * Zero-padded ids ("id0000012345") and dates take a few bits. */
    int spack, nv;
    uint8_t vpos[16], vmin[16];
    uint64_t vrad[16], vmul[16];
    uint64_t vfd[16]; /* ceil(2^64 / vrad): division of 32-bit numbers */
    uint64_t cimg[2]; /* the image with the varying bytes zeroed */
} gb_keycol;

/* The union of the dictionaries of one dict column over all partitions:
 * global ids are stable for the life of the stream. */
typedef struct gb_dictmap {
    int col;
    pt_column *dict; /* utf8, the union (built single-threaded) */
    uint64_t *slots; /* (hash tag << 32) | (id + 1) */
    uint64_t mask;
    int64_t n;
    /* per-push cache: local dictionary -> local-to-global map */
    int ncache, cache_cap;
    const pt_column **cache_dict;
    int32_t **cache_map;
} gb_dictmap;

/* Per-aggregate plan. */
typedef struct gb_agg {
    pt_agg_kind kind;
    int col, col2;
    pt_type in_type, in_type2, out_type;
    int vk;        /* value kind loaded per chunk: GB_V_* */
    int ni, nf;    /* state arrays used */
    int str;       /* has a string state (utf8 MIN/MAX/FIRST/LAST) */
    int holistic;  /* MEDIAN / COUNT_DISTINCT: keeps (group, value) pairs */
    int dm;        /* dict input: dictionary union index, else -1 */
    char name[96];
} gb_agg;
enum { GB_V_NONE, GB_V_I64, GB_V_F64, GB_V_STR };

typedef struct gb_pair {
    uint64_t v;   /* value bits, or arena offset of a string */
    uint32_t g;   /* group */
    uint32_t len; /* string length */
} gb_pair;

typedef struct gb_pairs {
    gb_pair *p;
    int64_t n, cap;
} gb_pairs;

/* States of one aggregate. The numbers of all aggregates of a group lie
 * together, after the group's key in its record (or in a row of sblock in
 * direct mode), so that a row's probe and update touch few cache lines
 * however many aggregates there are: I[k] and F[k] point at the
 * aggregate's words of group 0, and group gi's are at [gi * p->ss]. Text
 * states are arrays indexed by group. All zero means empty. */
typedef struct gb_state {
    int64_t *I[GB_NI];
    double *F[GB_NF];
    int64_t *soff; /* string state: arena offset, length, room */
    int32_t *slen, *scap;
} gb_state;

/* A hash table of groups (or, in direct mode, arrays indexed by the packed
 * key code). */
typedef struct gb_part {
    int64_t n, cap;
    uint64_t *slots; /* (hash >> 32 << 32) | (group + 1); 0 = empty */
    uint64_t mask;   /* slot count - 1 */
    uint64_t *hash;  /* per group */
    uint64_t *words; /* cap * rs: each group's record: its key (ks words,
                        see gb_kstr), then its states (sw words) */
    uint8_t *present; /* direct mode */
    int64_t *sblock;  /* direct mode: card * sw state words */
    int64_t ss;       /* words from one group's states to the next */
    gb_state *st;     /* naggs: views into the records or sblock */
    gb_pairs *pairs;  /* naggs (used by holistic ones) */
    char *arena;
    int64_t alen, acap;
    int64_t charged; /* bytes reserved from the budget */
} gb_part;

/* One thread's partial aggregates: GB_NPARTS parts by hash bits at
 * `level`, or one direct part. */
typedef struct gb_local {
    gb_part parts[GB_NPARTS];
    int level;
    int64_t bytes;   /* sum of parts' charged */
    int overflow;    /* an int64 SUM overflowed: agg index + 1 */
    /* chunk scratch */
    uint64_t *w;     /* GB_CHUNK * kw */
    uint64_t *h;
    uint32_t *gid;
    uint8_t *pi;     /* part of each row */
    uint16_t *idx;   /* rows bucketed by part */
    int64_t rstart[GB_NPARTS + 1];
    int nrp;         /* parts in use: GB_NPARTS, or 1 in direct mode */
    const char **sp; /* GB_CHUNK * nstr */
    int32_t *sl;
    int64_t *iv;
    double *xv, *xv2;
    uint8_t *ok, *ok2;
    const char **vsp;
    int32_t *vsl;
} gb_local;

/* A spill file: one batch per part of the local that was spilled; removed
 * once every batch has been read back. */
typedef struct gb_sfile {
    char *path;
    int refs;
} gb_sfile;

/* A spilled piece of one partition: batch `batch` of a group file and, per
 * holistic aggregate, the same batch of a pairs file. */
typedef struct gb_unit {
    gb_sfile *gf;
    gb_sfile **pf; /* naggs, NULL where not holistic */
    int batch;
} gb_unit;

typedef struct gb_spillset {
    gb_unit *u[GB_NPARTS];
    int64_t n[GB_NPARTS], cap[GB_NPARTS];
} gb_spillset;

struct pt__groupby_stream {
    pt_ctx *ctx;
    pt_mem *mem;
    pt_schema *in;
    int nkeys;
    gb_keycol kc[GB_MAX_KEYS];
    int kw, nstr;
    int ks;           /* words per key record: kw + 3 * nstr */
    int rs;           /* words per group record: ks + sw */
    int pow2;         /* word 0 radixes are powers of two: decode by shifts */
    int direct;       /* direct mode: words[0] is the group index */
    int hol_direct;   /* direct mode with MEDIAN / COUNT_DISTINCT: see
                         groupby_holistic.c */
    int64_t **hres;   /* hol_direct: per aggregate, its value per code */
    uint8_t **hnull;  /* and whether it is null */
    int64_t hcharged;
    uint64_t card;    /* direct mode: number of codes */
    int naggs;
    gb_agg *aggs;
    int sw;           /* state words per group (at least 1) */
    int ndm;
    gb_dictmap *dm;
    int nlocals;
    gb_local **locals;
    int64_t local_cap; /* bytes of one local before it spills (0 = none) */
    int64_t rows_seen;
    /* spilling */
    void *sd; /* pt__spill_dir */
    pthread_mutex_t mu;
    gb_spillset spill0;
    int spilled;
    int64_t spilled_bytes;
    int64_t groups;
    int finished;
    /* per push: dict maps per partition [part * ndm + d] */
    const int32_t **pmaps;
};
typedef struct pt__groupby_stream gb_stream;

/* groupby_keys.c */
pt_status pt__gb_plan_keys(gb_stream *g, pt_table *const *parts, int64_t nparts, pt_error *err);
pt_status pt__gb_dict_prepare(gb_stream *g, pt_table *const *parts, int64_t nparts,
                              pt_error *err);
void pt__gb_dict_release_cache(gb_stream *g);
void pt__gb_dict_free(gb_dictmap *d);
void pt__gb_encode(const gb_stream *g, gb_local *L, const pt_table *t, const int32_t *const *maps,
                   int64_t r0, int64_t n);
uint64_t pt__gb_hash_row(const gb_stream *g, const uint64_t *w, const char *const *sp,
                         const int32_t *sl);
/* Writes key column k of group `gi` of `p` into output column `c` at row. */
void pt__gb_decode_key(const gb_stream *g, int k, const gb_part *p, int64_t gi, pt_column *c,
                       int64_t row, int64_t *byte_pos);
/* The text of packed short text key kc with code - 1 = x: fills the
 * 16-byte image img (bytes, then padding) and returns the length. */
int pt__gb_spack_decode(const gb_keycol *kc, uint64_t x, uint64_t img[2]);
/* Byte length of text key k of group gi (0 for null). */
int32_t pt__gb_key_len(const gb_stream *g, int k, const gb_part *p, int64_t gi);

/* groupby_table.c */
void pt__gb_part_free(const gb_stream *g, gb_part *p);
pt_status pt__gb_part_reserve(const gb_stream *g, gb_local *L, gb_part *p, int64_t groups,
                              int64_t arena, const int64_t *pairs, pt_error *err);
pt_status pt__gb_part_init_direct(const gb_stream *g, gb_local *L, gb_part *p, pt_error *err);
/* Points p->st at the states in p->words (or p->sblock), after a move. */
void pt__gb_state_ptrs(const gb_stream *g, gb_part *p);
/* Finds or inserts a group; capacity must have been reserved. */
uint32_t pt__gb_part_upsert(const gb_stream *g, gb_part *p, uint64_t h, const uint64_t *w,
                            const char *const *sp, const int32_t *sl);
int64_t pt__gb_arena_put(gb_part *p, const char *s, int64_t len);
pt_status pt__gb_local_new(gb_stream *g, int level, gb_local **out, pt_error *err);
void pt__gb_local_free(gb_stream *g, gb_local *L);
void pt__gb_local_clear(gb_stream *g, gb_local *L);
/* A group's key record is kw words, then per string 3 words: the length,
 * then the text itself when it has at most 16 bytes (zero padded, so that
 * records compare word by word) or else its arena offset. */
#define GB_INLINE 16
static inline const char *gb_kstr(const gb_stream *g, const gb_part *p, int64_t gi, int s,
                                  int32_t *len) {
    const uint64_t *r = p->words + gi * g->rs + g->kw + 3 * s;
    *len = (int32_t)r[0];
    return r[0] <= GB_INLINE ? (const char *)(r + 1) : p->arena + r[1];
}
#define GB_KEY_SEED 0x6772706279000001ULL
/* The hash of a key's words (pt__gb_hash_row without texts): the words
 * are folded with a multiply each, then mixed once. */
static inline uint64_t gb_hash_words(const uint64_t *w, int kw) {
    uint64_t h = w[0] ^ GB_KEY_SEED;
    for (int j = 1; j < kw; j++) {
        h = (h ^ (h >> 29)) * 0x9e3779b97f4a7c15ULL + w[j];
    }
    return pt_hash_u64(h);
}
static inline int gb_part_of(uint64_t h, int level) {
    return (int)((h >> (64 - GB_PBITS * (level + 1))) & (GB_NPARTS - 1));
}
/* Writes every part of L to one spill file (part p's groups as a unit of
 * ss partition p) and empties L. */
pt_status pt__gb_spill_local(gb_stream *g, gb_local *L, gb_spillset *ss, pt_error *err);
void pt__gb_spillset_free(gb_stream *g, gb_spillset *ss);
/* Reads a unit back into a fresh uncharged part. */
pt_status pt__gb_unit_load(gb_stream *g, gb_unit *u, gb_part *out, pt_error *err);
void pt__gb_unit_free(gb_stream *g, gb_unit *u);
/* Merges groups [*pos, n) of src into the parts of dst chosen by hash at
 * dst->level; stops with PT_EBUDGET (leaving *pos at the first group not
 * merged) when dst cannot grow. src's pairs must be sorted by group
 * (pt__gb_pairs_sort) with starts in `pstart`. */
pt_status pt__gb_merge_part(gb_stream *g, gb_local *dst, gb_part *src, int64_t *const *pstart,
                            int64_t *pos, pt_error *err);

/* groupby_radix.c */
/* The partitioned form of pt__groupby for many groups. Returns PT_OK with
 * *out NULL when it does not apply (then the plain path runs). The
 * environment variable PARTITA_GROUPBY_RADIX=force|off overrides the
 * choice (for tests and measurements); pt__gb_radix_mode reads it. */
pt_status pt__gb_radix(gb_stream *g, pt_table *const *parts, int64_t nparts, pt_table **out,
                       pt_error *err);
int pt__gb_radix_mode(void);

/* groupby_holistic.c */
/* In direct mode, computes the MEDIAN and COUNT_DISTINCT aggregates of the
 * whole input (g->hres): the values of each group are gathered by a
 * counting sort on the group code, then selected or sorted per group, in
 * parallel. */
pt_status pt__gb_holistic_direct(gb_stream *g, pt_table *const *parts, int64_t nparts,
                                 pt_error *err);
void pt__gb_holistic_free(gb_stream *g);

/* groupby_emit.c */
/* Writes result column c (key c, or aggregate c - nkeys) of groups
 * [lo, hi) of p (not direct) at rows row0...; text bytes go from *byte_pos
 * and may not pass byte_end. pstart: that aggregate's pair starts. */
void pt__gb_emit_range(const gb_stream *g, int c, const gb_part *p, int64_t lo, int64_t hi,
                       const int64_t *pstart, pt_column *col, int64_t row0, int64_t *byte_pos,
                       int64_t byte_end);

/* groupby_agg.c */
pt_status pt__gb_plan_aggs(gb_stream *g, int naggs, const pt__agg_spec *aggs, pt_error *err);
/* The input of one aggregate for the rows of a chunk, loaded: `ok` is the
 * null mask (NULL: no nulls), `both` the joint mask of CORR. */
typedef struct gb_vals {
    const uint8_t *ok, *both;
    const int64_t *iv;
    const double *xv, *yv;
    const char *const *sp;
    const int32_t *sl;
} gb_vals;
/* Loaders of a chunk of rows [r0, r0 + n) of a column (see gb_vals). */
const uint8_t *pt__gb_load_ok(const pt_column *c, int64_t r0, int64_t n, uint8_t *ok);
void pt__gb_load_i64(const pt_column *c, const int32_t *map, int64_t r0, int64_t n, int64_t *v);
void pt__gb_load_f64(const pt_column *c, int64_t r0, int64_t n, double *v);
/* Updates aggregate j of the groups in L->gid from loaded values, over the
 * rows bucketed in L->idx / L->rstart; row i is input position pos0 + i. */
void pt__gb_update_agg(const gb_stream *g, gb_local *L, int j, const gb_vals *v, int64_t pos0);
/* Updates the states of rows [r0, r0 + n) of t, whose groups are in
 * L->gid and whose parts are bucketed in L->idx / L->rstart. */
void pt__gb_update(const gb_stream *g, gb_local *L, const pt_table *t,
                   const int32_t *const *maps, int64_t r0, int64_t n, int64_t pos0);
int pt__gb_add_dictmap(gb_stream *g, int col, pt_error *err);
void pt__gb_merge_state(const gb_stream *g, gb_part *d, uint32_t dg, const gb_part *s,
                        int64_t sg, int *overflow);
/* Stable counting sort of pairs by group; pstart[j] gets n+1 starts. */
pt_status pt__gb_pairs_sort(const gb_stream *g, gb_part *p, int64_t ngroups, int64_t **pstart,
                            pt_error *err);
/* Writes aggregate j of group gi into output column c at row. */
void pt__gb_finalize(const gb_stream *g, int j, const gb_part *p, int64_t gi,
                     const int64_t *pstart, pt_column *c, int64_t row, int64_t *byte_pos);
int64_t pt__gb_str_bytes_agg(const gb_stream *g, int j, const gb_part *p, int64_t gi);

#ifdef __cplusplus
}
#endif
/* One-pass path for one small-range integer/dictionary key and
 * count/sum/mean/min/max over numeric columns without nulls
 * (groupby_fused.c). Sets *out when it handled the query, leaves it NULL
 * when the shape does not fit (or an int64 sum would overflow) so that the
 * general kernel runs. PARTITA_GROUPBY_FUSED=off disables it. */
pt_status pt__gb_fused(pt_ctx *ctx, pt_table *const *parts, int64_t nparts, int nkeys,
                       const int *keys, int naggs, const pt__agg_spec *aggs, pt_table **out,
                       pt_error *err);

#endif
