/*
 * sort_internal.h - pieces shared by the files of the sort kernel: the
 * row-id encoding, the key plan (per-partition column pointers and dictionary
 * ranks), the radix core and the parallel gather.
 *
 * A row of a partitioned input is named by a 64-bit id: partition << 40 |
 * row. Ids increase in input order, so sorting (key, id) pairs stably by
 * key, or breaking ties by id, gives the stable order.
 */
#ifndef PT_FRAME_SORT_INTERNAL_H
#define PT_FRAME_SORT_INTERNAL_H

#include "frame/sort.h"

#define PT__SORT_PSHIFT 40
#define PT__SORT_RMASK ((UINT64_C(1) << PT__SORT_PSHIFT) - 1)
#define PT__SORT_MAXPARTS (INT64_C(1) << 23)

static inline uint64_t pt__sort_id(int64_t part, int64_t row) {
    return ((uint64_t)part << PT__SORT_PSHIFT) | (uint64_t)row;
}

/* A key word and the id of its row; sorted stably by k. */
typedef struct pt__sort_kv {
    uint64_t k;
    uint64_t v;
} pt__sort_kv;

/* Dictionary columns of one field across partitions. Partitions that share
 * a dictionary (slices of one table) share its rank table; different
 * dictionaries are ranked together so that ranks compare across them. */
typedef struct pt__sort_dictmap {
    int64_t ndicts;
    pt_column **dicts;   /* distinct dictionaries (borrowed) */
    uint32_t **rank;     /* per dictionary: dense rank of each entry by text */
    int64_t *part_dict;  /* per partition: index into dicts */
    int64_t nranks;      /* number of distinct texts */
    uint64_t *rank_src;  /* per rank: dict << 32 | entry holding that text */
} pt__sort_dictmap;

/* Builds the map for column `col` of the partitions (all of type dict).
 * with_src keeps rank_src (needed to build a unified dictionary). */
pt_status pt__sort_dictmap_init(pt__sort_dictmap *m, pt_table *const *parts, int64_t nparts,
                                int col, bool with_src, pt_error *err);
void pt__sort_dictmap_reset(pt__sort_dictmap *m);

typedef struct pt__sort_keyplan {
    int col;
    bool desc;
    pt_type type;
    bool has_nulls;
    pt_column **cols;        /* per partition (borrowed) */
    const uint32_t **ranks;  /* dict: per partition rank table */
    pt__sort_dictmap dm;
} pt__sort_keyplan;

typedef struct pt__sort_plan {
    pt_ctx *ctx;
    pt_pool *pool;
    int threads;
    pt_table *const *parts;
    int64_t nparts;
    int64_t *starts; /* nparts + 1 global row offsets */
    int64_t nrows;
    int nkeys;
    pt__sort_keyplan *keys;
} pt__sort_plan;

/* Checks the arguments (the message names the parameter and `fn`) and
 * prepares the plan. nparts >= 1. */
pt_status pt__sort_plan_init(pt__sort_plan *pl, const char *fn, pt_ctx *ctx,
                             pt_table *const *parts, int64_t nparts, int nkeys,
                             const pt__sort_key *keys, pt_error *err);
void pt__sort_plan_reset(pt__sort_plan *pl);

/* Compares two rows (ids) by keys [k, nkeys): <0, 0, >0; no tie-break. */
int pt__sort_cmp_ids(const pt__sort_plan *pl, int k, uint64_t a, uint64_t b);

/* Compares row i of `a` with row j of `b` (tables with the same schema)
 * by the keys, dictionary text compared as text. */
int pt__sort_cmp_rows(const pt_table *a, int64_t i, const pt_table *b, int64_t j, int nkeys,
                      const pt__sort_key *keys);

/* Sorts kv[0, n) whose v fields hold row ids (in input order) by all keys,
 * stably. `tmp` is scratch of n elements. The key words are overwritten. */
pt_status pt__sort_kv_run(pt__sort_plan *pl, pt__sort_kv *kv, pt__sort_kv *tmp, int64_t n,
                          pt_error *err);

/* Fills kv[i].v with the ids of all rows of the plan in input order. */
pt_status pt__sort_fill_ids(pt__sort_plan *pl, pt__sort_kv *kv, pt_error *err);

/* Gathers rows ids[0], ids[stride], ... (n of them) of the partitions into a
 * new table charged to `mem`, columns and row ranges in parallel on `pool`
 * (may be NULL). Dictionary columns keep their dictionary when every
 * partition shares it, else get one unified dictionary. When the ids are a
 * permutation of every row and `scratch` (not charged here) holds at least
 * 16 bytes per row, a cache-friendly two-pass scatter is used instead of
 * random reads; scratch may be NULL. */
pt_status pt__sort_gather(pt_pool *pool, pt_mem *mem, pt_table *const *parts, int64_t nparts,
                          const uint64_t *ids, int64_t stride, int64_t n, void *scratch,
                          int64_t scratch_bytes, pt_table **out, pt_error *err);

/* Validates keys against a schema; the message names `fn` and the key. */
pt_status pt__sort_check_keys(const char *fn, const pt_schema *s, int nkeys,
                              const pt__sort_key *keys, pt_error *err);

#endif
