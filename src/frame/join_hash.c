/*
 * join_hash.c - the in-memory hash join: key checks and hashing, the three
 * kinds of hash table (direct, dense text ids, radix-partitioned open
 * addressing), the parallel probe producing (probe row, build row) pairs,
 * and the gather of output columns from those pairs. The streaming API
 * (build once, probe batches) is the core; pt__join_ex (join_exec.c) and
 * the grace join (join_grace.c) are built on it.
 *
 * Row references are 32-bit: a build row is stored as row + 1 in the
 * uint32 head/next arrays (0 ends a chain), and the build side of an
 * in-memory join has fewer than 2^31 rows (bigger ones go out of core).
 * Probe rows are counted inside a unit of at most UNIT_ROWS rows.
 */
#include <string.h>

#include "col/col_internal.h"
#include "frame/join.h"

#define UNIT_ROWS 65536   /* probe rows per task */
#define BUILD_CHUNK 65536 /* build rows per task */
#define MAX_RADIX_BITS 10

enum { K_INT, K_STR, K_F32, K_F64, K_NULL };

static int key_kind(pt_type t) {
    switch (t) {
    case PT_TYPE_BOOL:
    case PT_TYPE_INT32:
    case PT_TYPE_INT64: return K_INT;
    case PT_TYPE_UTF8:
    case PT_TYPE_DICT: return K_STR;
    case PT_TYPE_FLOAT32: return K_F32;
    case PT_TYPE_FLOAT64: return K_F64;
    default: return K_NULL;
    }
}

void pt__join_opts_init(pt__join_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->broadcast_rows = (int64_t)1 << 16;
}

pt_status pt__join_check_keys(const pt_schema *ls, const pt_schema *rs, int nkeys,
                              const int *lkeys, const int *rkeys, pt_error *err) {
    if (nkeys < 1 || !lkeys || !rkeys)
        return pt_error_set(err, PT_EINVAL, "join: nkeys must be >= 1 with lkeys and rkeys (got %d)",
                            nkeys);
    for (int k = 0; k < nkeys; k++) {
        if (lkeys[k] < 0 || lkeys[k] >= ls->nfields)
            return pt_error_set(err, PT_EINVAL, "join: lkeys[%d] = %d is not a column (left has %d)",
                                k, lkeys[k], ls->nfields);
        if (rkeys[k] < 0 || rkeys[k] >= rs->nfields)
            return pt_error_set(err, PT_EINVAL,
                                "join: rkeys[%d] = %d is not a column (right has %d)", k, rkeys[k],
                                rs->nfields);
        const pt_field *a = &ls->fields[lkeys[k]], *b = &rs->fields[rkeys[k]];
        int ok = a->type == b->type ||
                 (key_kind(a->type) == K_INT && key_kind(b->type) == K_INT &&
                  a->type != PT_TYPE_BOOL && b->type != PT_TYPE_BOOL) ||
                 (key_kind(a->type) == K_STR && key_kind(b->type) == K_STR);
        if (!ok)
            return pt_error_set(err, PT_ETYPE,
                                "join key %d: left column '%s' (%s) and right column '%s' (%s) "
                                "have incompatible types",
                                k + 1, a->name, pt_type_name(a->type), b->name,
                                pt_type_name(b->type));
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Key access and hashing                                                   */
/* ------------------------------------------------------------------------ */

static inline int kvalid(const pt_column *c, int64_t i) {
    return c->type != PT_TYPE_NULL && pt_column_is_valid(c, i);
}

static inline int64_t ival(const pt_column *c, int64_t i) {
    switch (c->type) {
    case PT_TYPE_INT32: return pt_column_i32(c)[i];
    case PT_TYPE_INT64: return pt_column_i64(c)[i];
    case PT_TYPE_BOOL: return pt_column_bool(c, i);
    default: return 0;
    }
}

#define STR_SEED 0x5bd1e9955bd1e995ULL

static inline uint64_t str_hash(const char *s, int64_t len) {
    return pt_hash_bytes(s, (size_t)len, STR_SEED);
}

/* Hash of one key value; equal values of compatible types hash alike. */
static inline uint64_t key_hash(const pt_column *c, int kind, int64_t i) {
    switch (kind) {
    case K_INT: return pt_hash_u64((uint64_t)ival(c, i));
    case K_STR: {
        int64_t len;
        const char *s = pt_column_str(c, i, &len);
        return str_hash(s, len);
    }
    case K_F32:
    case K_F64: {
        double d = kind == K_F32 ? (double)pt_column_f32(c)[i] : pt_column_f64(c)[i];
        if (d == 0) d = 0; /* -0.0 equals 0.0 */
        uint64_t b;
        memcpy(&b, &d, sizeof b);
        return pt_hash_u64(b);
    }
    default: return 0;
    }
}

static inline uint64_t hash_combine(uint64_t h, uint64_t kh, int k) {
    return pt_hash_u64(h ^ (kh + 0x9e3779b97f4a7c15ULL * (uint64_t)(k + 1)));
}

void pt__join_hash_rows(const pt_table *t, int nkeys, const int *keys, int64_t lo, int64_t hi,
                        uint64_t seed, uint64_t *h, uint8_t *valid) {
    for (int64_t i = lo; i < hi; i++) {
        uint64_t x = seed;
        uint8_t ok = 1;
        for (int k = 0; k < nkeys && ok; k++) {
            const pt_column *c = t->cols[keys[k]];
            if (!kvalid(c, i)) {
                ok = 0;
                break;
            }
            x = hash_combine(x, key_hash(c, key_kind(c->type), i), k);
        }
        h[i - lo] = x;
        valid[i - lo] = ok;
    }
}

/* ------------------------------------------------------------------------ */
/* The join state                                                           */
/* ------------------------------------------------------------------------ */

typedef struct jdict {
    pt_column *dict; /* a reference, so the pointer cannot be reused */
    int32_t *trans;  /* dictionary entry -> dense build id, or -1 */
    int64_t len;
    int used;
} jdict;

struct pt__join_stream {
    pt_ctx *ctx;
    pt_mem *mem;     /* working memory (tables, pairs) */
    pt_mem *out_mem; /* output columns */
    pt_join_type type;
    int build_is_right, keep_probe, keep_build;
    int nkeys;
    int *pk, *bk, *kind;
    pt_schema *probe_schema;
    pt_table *build;
    int64_t nbuild;
    int64_t broadcast_rows;
    pt__join_table_kind tk;
    int64_t radix_parts;
    int64_t reserved; /* bytes of the arrays below charged to mem */
    /* direct and dense: chains start at head[key - kmin] */
    uint32_t *head;
    int64_t kmin;
    uint64_t range;
    uint32_t *next; /* [nbuild] */
    int64_t head_bytes;
    /* hashed */
    int bits, int_mode;
    int64_t *pbase, *pcap;
    uint64_t *skey;
    uint32_t *shead;
    int64_t slots;
    /* dense: distinct build strings */
    uint64_t *mhash;
    uint32_t *mid; /* id + 1; 0 = empty slot */
    int64_t mcap;
    const char **rstr;
    int64_t *rlen;
    int64_t ndistinct, rcap;
    jdict *dicts;
    int ndicts, capdicts;
    uint8_t *matched; /* [nbuild] when keep_build */
    int finished;
};

static void *jalloc(pt__join_stream *j, int64_t bytes, int zero, const char *what, pt_error *err) {
    if (bytes < 1) bytes = 1;
    if (pt_mem_reserve(j->mem, bytes, what, err) != PT_OK) return NULL;
    void *p = zero ? pt_calloc(1, (size_t)bytes) : pt_malloc((size_t)bytes);
    if (!p) {
        pt_mem_release(j->mem, bytes);
        pt_error_set(err, PT_ENOMEM, "join: out of memory for %s (%lld bytes)", what,
                     (long long)bytes);
        return NULL;
    }
    j->reserved += bytes;
    return p;
}

static void jfree(pt__join_stream *j, void *p, int64_t bytes) {
    if (!p) return;
    if (bytes < 1) bytes = 1;
    pt_free(p);
    pt_mem_release(j->mem, bytes);
    j->reserved -= bytes;
}

static pt_status fail_status(pt_error *err, pt_status dflt) {
    return err && err->code != PT_OK ? err->code : dflt;
}

/* ------------------------------------------------------------------------ */
/* Build side: one table from the partitions                                */
/* ------------------------------------------------------------------------ */

/* When the non-empty partitions are consecutive zero-copy slices of one
 * table (what pt_frame_from_table makes), column j can be re-assembled
 * without copying. Returns NULL when they are not. */
static pt_column *merge_slices(pt_table *const *parts, int64_t n, int j) {
    const pt_column *first = NULL, *prev = NULL;
    pt_buffer *validity = NULL;
    int64_t len = 0, nulls = 0;
    for (int64_t p = 0; p < n; p++) {
        const pt_column *c = parts[p]->cols[j];
        if (c->length == 0) continue;
        if (!first) {
            first = c;
        } else if (c->values != first->values || c->bytes != first->bytes ||
                   c->dict != first->dict || c->offset != prev->offset + prev->length) {
            return NULL;
        }
        if (c->validity) {
            if (validity && c->validity != validity) return NULL;
            validity = c->validity;
        }
        len += c->length;
        nulls += c->null_count;
        prev = c;
    }
    if (!first || first->type == PT_TYPE_NULL) return NULL;
    pt_column *m;
    if (pt__column_alloc(first->type, &m, NULL) != PT_OK) return NULL;
    m->length = len;
    m->offset = first->offset;
    m->null_count = nulls;
    m->values = pt_buffer_retain(first->values);
    m->bytes = pt_buffer_retain(first->bytes);
    m->dict = pt_column_retain(first->dict);
    if (nulls > 0) m->validity = pt_buffer_retain(validity);
    return m;
}

static pt_status merge_parts(pt_mem *mem, pt_table *const *parts, int64_t n, pt_table **out,
                             pt_error *err) {
    *out = NULL;
    int64_t nonempty = 0, last = 0;
    for (int64_t p = 0; p < n; p++)
        if (parts[p]->nrows > 0) nonempty++, last = p;
    if (nonempty <= 1) return pt_table_slice(parts[last], 0, parts[last]->nrows, out, err);
    int nf = parts[0]->schema->nfields;
    pt_column **cols = pt_calloc((size_t)(nf ? nf : 1), sizeof *cols);
    if (!cols) return pt_error_set(err, PT_ENOMEM, "join: out of memory");
    int ok = 1;
    for (int c = 0; c < nf && ok; c++) {
        cols[c] = merge_slices(parts, n, c);
        ok = cols[c] != NULL;
    }
    if (!ok) {
        for (int c = 0; c < nf; c++) pt_column_release(cols[c]);
        pt_free(cols);
        if (n > INT32_MAX) return pt_error_set(err, PT_EINVAL, "join: too many build partitions");
        pt_status st = pt_table_concat(mem, parts, (int)n, out, err);
        if (st != PT_OK) pt_error_prefix(err, "join (build side)");
        return st;
    }
    pt_schema *s;
    pt_status st = pt_schema_copy(parts[0]->schema, &s, err);
    if (st != PT_OK) {
        for (int c = 0; c < nf; c++) pt_column_release(cols[c]);
        pt_free(cols);
        return st;
    }
    st = pt_table_new(s, cols, out, err);
    pt_free(cols);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Building the hash tables                                                 */
/* ------------------------------------------------------------------------ */

typedef struct direct_job {
    pt__join_stream *j;
    const pt_column *c;
    const int32_t *ids; /* dense: per-row ids (-1 = none); NULL: integer keys */
} direct_job;

static pt_status direct_insert_chunk(pt_task_ctx *tc, void *arg, int64_t chunk, pt_error *err) {
    (void)tc;
    (void)err;
    direct_job *d = arg;
    pt__join_stream *j = d->j;
    int64_t lo = chunk * BUILD_CHUNK, hi = lo + BUILD_CHUNK;
    if (hi > j->nbuild) hi = j->nbuild;
    for (int64_t i = lo; i < hi; i++) {
        uint64_t slot;
        if (d->ids) {
            if (d->ids[i] < 0) continue;
            slot = (uint64_t)d->ids[i];
        } else {
            if (!kvalid(d->c, i)) continue;
            slot = (uint64_t)ival(d->c, i) - (uint64_t)j->kmin;
        }
        /* Lock-free push on the chain: readers only run after the build. */
        uint32_t old = __atomic_exchange_n(&j->head[slot], (uint32_t)(i + 1), __ATOMIC_RELAXED);
        j->next[i] = old;
    }
    return PT_OK;
}

static pt_status run_direct_insert(pt__join_stream *j, const pt_column *c, const int32_t *ids,
                                   pt_error *err) {
    direct_job d = {j, c, ids};
    int64_t nchunks = (j->nbuild + BUILD_CHUNK - 1) / BUILD_CHUNK;
    pt_pool *pool = nchunks > 1 ? pt_ctx_pool(j->ctx) : NULL;
    return pt_parallel_for(pool, nchunks, direct_insert_chunk, &d, NULL, err);
}

static pt_status build_direct(pt__join_stream *j, int64_t kmin, uint64_t range, pt_error *err) {
    const pt_column *c = j->build->cols[j->bk[0]];
    j->tk = PT__JT_DIRECT;
    j->kmin = kmin;
    j->range = range;
    j->head_bytes = (int64_t)(range ? range : 1) * 4;
    j->head = jalloc(j, j->head_bytes, 1, "join hash table", err);
    if (!j->head) return fail_status(err, PT_ENOMEM);
    return run_direct_insert(j, c, NULL, err);
}

/* Dense ids for text keys: a map of the distinct build strings. */
static int64_t map_find(const pt__join_stream *j, uint64_t h, const char *s, int64_t len) {
    uint64_t mask = (uint64_t)j->mcap - 1;
    for (uint64_t slot = h & mask;; slot = (slot + 1) & mask) {
        uint32_t id = j->mid[slot];
        if (!id) return -1;
        if (j->mhash[slot] == h && j->rlen[id - 1] == len &&
            (len == 0 || memcmp(j->rstr[id - 1], s, (size_t)len) == 0))
            return id - 1;
    }
}

static int64_t map_insert(pt__join_stream *j, uint64_t h, const char *s, int64_t len) {
    uint64_t mask = (uint64_t)j->mcap - 1;
    for (uint64_t slot = h & mask;; slot = (slot + 1) & mask) {
        uint32_t id = j->mid[slot];
        if (!id) {
            int64_t nid = j->ndistinct++;
            j->mid[slot] = (uint32_t)(nid + 1);
            j->mhash[slot] = h;
            j->rstr[nid] = s;
            j->rlen[nid] = len;
            return nid;
        }
        if (j->mhash[slot] == h && j->rlen[id - 1] == len &&
            (len == 0 || memcmp(j->rstr[id - 1], s, (size_t)len) == 0))
            return id - 1;
    }
}

static int64_t pow2_at_least(int64_t n) {
    int64_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

static pt_status build_dense(pt__join_stream *j, pt_error *err) {
    const pt_column *c = j->build->cols[j->bk[0]];
    int is_dict = c->type == PT_TYPE_DICT;
    int64_t maxd = is_dict ? c->dict->length : j->nbuild;
    j->tk = PT__JT_DENSE;
    j->rcap = maxd > 0 ? maxd : 1;
    j->mcap = pow2_at_least(2 * j->rcap + 2);
    j->mhash = jalloc(j, j->mcap * 8, 0, "join text key map", err);
    j->mid = j->mhash ? jalloc(j, j->mcap * 4, 1, "join text key map", err) : NULL;
    j->rstr = j->mid ? jalloc(j, j->rcap * (int64_t)sizeof(char *), 0, "join text keys", err) : NULL;
    j->rlen = j->rstr ? jalloc(j, j->rcap * 8, 0, "join text keys", err) : NULL;
    int32_t *ids = j->rlen ? jalloc(j, j->nbuild * 4, 0, "join key ids", err) : NULL;
    if (!ids) return fail_status(err, PT_ENOMEM);
    pt_status st = PT_OK;
    if (is_dict) {
        int64_t dl = c->dict->length;
        int32_t *tr = jalloc(j, dl * 4, 0, "join dictionary ids", err);
        if (!tr) {
            jfree(j, ids, j->nbuild * 4);
            return fail_status(err, PT_ENOMEM);
        }
        for (int64_t e = 0; e < dl; e++) {
            int64_t len;
            const char *s = pt_column_str(c->dict, e, &len);
            tr[e] = (int32_t)map_insert(j, str_hash(s, len), s, len);
        }
        const int32_t *idx = (const int32_t *)c->values->data + c->offset;
        for (int64_t i = 0; i < j->nbuild; i++) ids[i] = kvalid(c, i) ? tr[idx[i]] : -1;
        jfree(j, tr, dl * 4);
    } else {
        for (int64_t i = 0; i < j->nbuild; i++) {
            if (!kvalid(c, i)) {
                ids[i] = -1;
                continue;
            }
            int64_t len;
            const char *s = pt_column_str(c, i, &len);
            ids[i] = (int32_t)map_insert(j, str_hash(s, len), s, len);
        }
    }
    j->kmin = 0;
    j->range = (uint64_t)j->ndistinct;
    j->head_bytes = (j->ndistinct ? j->ndistinct : 1) * 4;
    j->head = jalloc(j, j->head_bytes, 1, "join hash table", err);
    if (j->head) st = run_direct_insert(j, c, ids, err);
    else st = fail_status(err, PT_ENOMEM);
    jfree(j, ids, j->nbuild * 4);
    return st;
}

typedef struct hashed_job {
    pt__join_stream *j;
    uint64_t *bkey;
    uint16_t *bpart; /* radix partition, or 0xFFFF for a null key */
    int64_t *counts; /* [chunk * P + p], then write cursors */
    uint32_t *order; /* build rows grouped by partition */
    int64_t *pstart; /* [P + 1] */
    int64_t P;
} hashed_job;

static inline void row_key(const pt__join_stream *j, const pt_table *t, const int *keys,
                           int64_t i, uint64_t *key, uint64_t *h, int *ok) {
    if (j->int_mode) {
        const pt_column *c = t->cols[keys[0]];
        *ok = kvalid(c, i);
        *key = (uint64_t)(*ok ? ival(c, i) : 0);
        *h = pt_hash_u64(*key);
        return;
    }
    uint64_t x = 0;
    *ok = 1;
    for (int k = 0; k < j->nkeys; k++) {
        const pt_column *c = t->cols[keys[k]];
        if (!kvalid(c, i)) {
            *ok = 0;
            break;
        }
        x = hash_combine(x, key_hash(c, j->kind[k], i), k);
    }
    *key = *h = x;
}

static pt_status hashed_count(pt_task_ctx *tc, void *arg, int64_t chunk, pt_error *err) {
    (void)tc;
    (void)err;
    hashed_job *hj = arg;
    pt__join_stream *j = hj->j;
    int64_t lo = chunk * BUILD_CHUNK, hi = lo + BUILD_CHUNK;
    if (hi > j->nbuild) hi = j->nbuild;
    int64_t *cnt = hj->counts + chunk * hj->P;
    for (int64_t i = lo; i < hi; i++) {
        uint64_t key, h;
        int ok;
        row_key(j, j->build, j->bk, i, &key, &h, &ok);
        hj->bkey[i] = key;
        if (!ok) {
            hj->bpart[i] = 0xFFFF;
            continue;
        }
        uint16_t p = j->bits ? (uint16_t)(h >> (64 - j->bits)) : 0;
        hj->bpart[i] = p;
        cnt[p]++;
    }
    return PT_OK;
}

static pt_status hashed_scatter(pt_task_ctx *tc, void *arg, int64_t chunk, pt_error *err) {
    (void)tc;
    (void)err;
    hashed_job *hj = arg;
    int64_t lo = chunk * BUILD_CHUNK, hi = lo + BUILD_CHUNK;
    if (hi > hj->j->nbuild) hi = hj->j->nbuild;
    int64_t *cur = hj->counts + chunk * hj->P;
    for (int64_t i = lo; i < hi; i++)
        if (hj->bpart[i] != 0xFFFF) hj->order[cur[hj->bpart[i]]++] = (uint32_t)i;
    return PT_OK;
}

static pt_status hashed_fill(pt_task_ctx *tc, void *arg, int64_t p, pt_error *err) {
    (void)tc;
    (void)err;
    hashed_job *hj = arg;
    pt__join_stream *j = hj->j;
    uint64_t *skey = j->skey + j->pbase[p];
    uint32_t *shead = j->shead + j->pbase[p];
    uint64_t mask = (uint64_t)j->pcap[p] - 1;
    for (int64_t o = hj->pstart[p]; o < hj->pstart[p + 1]; o++) {
        uint32_t i = hj->order[o];
        uint64_t key = hj->bkey[i];
        uint64_t h = j->int_mode ? pt_hash_u64(key) : key;
        for (uint64_t s = h & mask;; s = (s + 1) & mask) {
            if (!shead[s]) {
                skey[s] = key;
                shead[s] = i + 1;
                j->next[i] = 0;
                break;
            }
            if (skey[s] == key) {
                j->next[i] = shead[s];
                shead[s] = i + 1;
                break;
            }
        }
    }
    return PT_OK;
}

static pt_status build_hashed(pt__join_stream *j, int int_mode, pt_error *err) {
    j->tk = PT__JT_HASHED;
    j->int_mode = int_mode;
    int bits = 0;
    if (j->nbuild > j->broadcast_rows) {
        /* Partitions of about 32K rows keep each table in cache while it is
         * filled (smaller when the broadcast threshold is, for tests). */
        int64_t target = j->broadcast_rows < 32768 ? j->broadcast_rows : 32768;
        if (target < 1) target = 1;
        while (bits < MAX_RADIX_BITS && (j->nbuild >> bits) > target) bits++;
    }
    j->bits = bits;
    int64_t P = (int64_t)1 << bits;
    j->radix_parts = P;
    int64_t nchunks = (j->nbuild + BUILD_CHUNK - 1) / BUILD_CHUNK;
    if (nchunks < 1) nchunks = 1;
    hashed_job hj;
    memset(&hj, 0, sizeof hj);
    hj.j = j;
    hj.P = P;
    int64_t nb = j->nbuild;
    pt_status st = PT_OK;
    hj.bkey = jalloc(j, nb * 8, 0, "join build keys", err);
    hj.bpart = hj.bkey ? jalloc(j, nb * 2, 0, "join build keys", err) : NULL;
    hj.counts = hj.bpart ? jalloc(j, nchunks * P * 8, 1, "join build counts", err) : NULL;
    hj.order = hj.counts ? jalloc(j, nb * 4, 0, "join build order", err) : NULL;
    hj.pstart = hj.order ? jalloc(j, (P + 1) * 8, 1, "join build counts", err) : NULL;
    j->pbase = hj.pstart ? jalloc(j, P * 8, 0, "join hash table", err) : NULL;
    j->pcap = j->pbase ? jalloc(j, P * 8, 0, "join hash table", err) : NULL;
    if (!j->pcap) st = fail_status(err, PT_ENOMEM);
    pt_pool *pool = nchunks > 1 ? pt_ctx_pool(j->ctx) : NULL;
    if (st == PT_OK) st = pt_parallel_for(pool, nchunks, hashed_count, &hj, NULL, err);
    if (st == PT_OK) {
        int64_t run = 0, slots = 0;
        for (int64_t p = 0; p < P; p++) {
            hj.pstart[p] = run;
            for (int64_t c = 0; c < nchunks; c++) {
                int64_t k = hj.counts[c * P + p];
                hj.counts[c * P + p] = run;
                run += k;
            }
            int64_t cnt = run - hj.pstart[p];
            j->pcap[p] = pow2_at_least(cnt * 2 > 4 ? cnt * 2 : 4);
            j->pbase[p] = slots;
            slots += j->pcap[p];
        }
        hj.pstart[P] = run;
        j->slots = slots;
        st = pt_parallel_for(pool, nchunks, hashed_scatter, &hj, NULL, err);
    }
    if (st == PT_OK) {
        j->skey = jalloc(j, j->slots * 8, 0, "join hash table", err);
        j->shead = j->skey ? jalloc(j, j->slots * 4, 1, "join hash table", err) : NULL;
        if (!j->shead) st = fail_status(err, PT_ENOMEM);
    }
    if (st == PT_OK)
        st = pt_parallel_for(P > 1 ? pt_ctx_pool(j->ctx) : NULL, P, hashed_fill, &hj, NULL, err);
    jfree(j, hj.bkey, nb * 8);
    jfree(j, hj.bpart, nb * 2);
    jfree(j, hj.counts, nchunks * P * 8);
    jfree(j, hj.order, nb * 4);
    jfree(j, hj.pstart, (P + 1) * 8);
    return st;
}

static pt_status build_table(pt__join_stream *j, pt_error *err) {
    j->radix_parts = 1;
    j->next = jalloc(j, j->nbuild * 4, 0, "join hash chains", err);
    if (!j->next) return fail_status(err, PT_ENOMEM);
    if (j->nkeys == 1 && j->kind[0] == K_STR) return build_dense(j, err);
    if (j->nkeys == 1 && j->kind[0] == K_INT) {
        const pt_column *c = j->build->cols[j->bk[0]];
        int64_t mn = INT64_MAX, mx = INT64_MIN, nvalid = 0;
        for (int64_t i = 0; i < j->nbuild; i++) {
            if (!kvalid(c, i)) continue;
            int64_t v = ival(c, i);
            if (v < mn) mn = v;
            if (v > mx) mx = v;
            nvalid++;
        }
        if (nvalid == 0) return build_direct(j, 0, 0, err);
        uint64_t range = (uint64_t)mx - (uint64_t)mn + 1;
        if (range != 0 && range <= (uint64_t)(2 * j->nbuild + 4096)) return build_direct(j, mn, range, err);
        return build_hashed(j, 1, err);
    }
    return build_hashed(j, 0, err);
}

/* ------------------------------------------------------------------------ */
/* Stream life cycle                                                        */
/* ------------------------------------------------------------------------ */

void pt__join_stream_free(pt__join_stream *j) {
    if (!j) return;
    pt_free(j->head);
    pt_free(j->next);
    pt_free(j->pbase);
    pt_free(j->pcap);
    pt_free(j->skey);
    pt_free(j->shead);
    pt_free(j->mhash);
    pt_free(j->mid);
    pt_free(j->rstr);
    pt_free(j->rlen);
    pt_free(j->matched);
    for (int d = 0; d < j->ndicts; d++) {
        pt_column_release(j->dicts[d].dict);
        pt_free(j->dicts[d].trans);
    }
    pt_free(j->dicts);
    pt_mem_release(j->mem, j->reserved);
    pt_table_free(j->build);
    pt_schema_free(j->probe_schema);
    pt_free(j->pk);
    pt_free(j->bk);
    pt_free(j->kind);
    pt_free(j);
}

pt__join_table_kind pt__join_stream_table_kind(const pt__join_stream *j) { return j->tk; }
int64_t pt__join_stream_radix_parts(const pt__join_stream *j) { return j->radix_parts; }
void pt__join_stream_set_output_mem(pt__join_stream *j, pt_mem *m) { j->out_mem = m; }

pt_status pt__join_stream_new_ex(pt_ctx *ctx, pt_table *const *build_parts, int64_t nb,
                                 int build_is_right, pt_join_type type, int nkeys,
                                 const int *probe_keys, const int *build_keys,
                                 const pt_schema *probe_schema, int64_t broadcast_rows,
                                 pt__join_stream **out, pt_error *err) {
    if (out) *out = NULL;
    if (!ctx || !out || !probe_schema || !build_parts || nb < 1)
        return pt_error_set(err, PT_EINVAL,
                            "pt__join_stream_new: ctx, out, probe_schema and at least one build "
                            "partition are required");
    if ((int)type < PT_JOIN_INNER || type > PT_JOIN_FULL)
        return pt_error_set(err, PT_EINVAL, "join: type %d is not a join type", (int)type);
    const pt_schema *bs = build_parts[0]->schema;
    for (int64_t p = 0; p < nb; p++) {
        const pt_schema *s = build_parts[p]->schema;
        int same = s->nfields == bs->nfields;
        for (int c = 0; same && c < s->nfields; c++) same = s->fields[c].type == bs->fields[c].type;
        if (!same)
            return pt_error_set(err, PT_EINVAL,
                                "join: build partition %lld has a schema different from partition 0",
                                (long long)p);
    }
    PT_RETURN_NOT_OK(build_is_right
                         ? pt__join_check_keys(probe_schema, bs, nkeys, probe_keys, build_keys, err)
                         : pt__join_check_keys(bs, probe_schema, nkeys, build_keys, probe_keys, err));
    pt__join_stream *j = pt_calloc(1, sizeof *j);
    if (!j) return pt_error_set(err, PT_ENOMEM, "join: out of memory");
    j->ctx = ctx;
    j->mem = j->out_mem = pt_ctx_mem(ctx);
    j->type = type;
    j->build_is_right = build_is_right ? 1 : 0;
    int left_kept = type == PT_JOIN_LEFT || type == PT_JOIN_FULL;
    int right_kept = type == PT_JOIN_RIGHT || type == PT_JOIN_FULL;
    j->keep_probe = build_is_right ? left_kept : right_kept;
    j->keep_build = build_is_right ? right_kept : left_kept;
    j->nkeys = nkeys;
    j->broadcast_rows = broadcast_rows;
    j->pk = pt_malloc(sizeof(int) * (size_t)nkeys);
    j->bk = pt_malloc(sizeof(int) * (size_t)nkeys);
    j->kind = pt_malloc(sizeof(int) * (size_t)nkeys);
    pt_status st = PT_OK;
    if (!j->pk || !j->bk || !j->kind) st = pt_error_set(err, PT_ENOMEM, "join: out of memory");
    for (int k = 0; st == PT_OK && k < nkeys; k++) {
        j->pk[k] = probe_keys[k];
        j->bk[k] = build_keys[k];
        j->kind[k] = key_kind(bs->fields[build_keys[k]].type);
    }
    if (st == PT_OK) st = pt_schema_copy(probe_schema, &j->probe_schema, err);
    if (st == PT_OK) st = merge_parts(j->mem, build_parts, nb, &j->build, err);
    if (st == PT_OK) {
        j->nbuild = j->build->nrows;
        if (j->nbuild >= INT32_MAX)
            st = pt_error_set(err, PT_EUNSUPPORTED,
                              "join: the build side has %lld rows; an in-memory hash table holds "
                              "at most 2^31 - 2",
                              (long long)j->nbuild);
    }
    if (st == PT_OK) st = build_table(j, err);
    if (st == PT_OK && j->keep_build) {
        j->matched = jalloc(j, j->nbuild, 1, "join match flags", err);
        if (!j->matched) st = fail_status(err, PT_ENOMEM);
    }
    if (st != PT_OK) {
        pt__join_stream_free(j);
        return st;
    }
    *out = j;
    return PT_OK;
}

pt_status pt__join_stream_new(pt_ctx *ctx, pt_table *const *build_parts, int64_t nb,
                              int build_is_right, pt_join_type type, int nkeys,
                              const int *probe_keys, const int *build_keys,
                              const pt_schema *probe_schema, pt__join_stream **out,
                              pt_error *err) {
    return pt__join_stream_new_ex(ctx, build_parts, nb, build_is_right, type, nkeys, probe_keys,
                                  build_keys, probe_schema, (int64_t)1 << 16, out, err);
}

/* ------------------------------------------------------------------------ */
/* Probe                                                                    */
/* ------------------------------------------------------------------------ */

/* Dictionary translation tables for a dense table probed with dict keys,
 * computed once per distinct probe dictionary; entries not used by the
 * current partitions are dropped so that a stream's cache stays small. */
static pt_status prep_dicts(pt__join_stream *j, pt_table *const *parts, int64_t nparts,
                            const int32_t **trans, pt_error *err) {
    for (int d = 0; d < j->ndicts; d++) j->dicts[d].used = 0;
    for (int64_t p = 0; p < nparts; p++) {
        const pt_column *c = parts[p]->cols[j->pk[0]];
        trans[p] = NULL;
        if (c->type != PT_TYPE_DICT) continue;
        int d = 0;
        while (d < j->ndicts && j->dicts[d].dict != c->dict) d++;
        if (d == j->ndicts) {
            if (j->ndicts == j->capdicts) {
                int nc = j->capdicts ? 2 * j->capdicts : 4;
                jdict *nd = pt_realloc(j->dicts, sizeof *nd * (size_t)nc);
                if (!nd) return pt_error_set(err, PT_ENOMEM, "join: out of memory");
                j->dicts = nd;
                j->capdicts = nc;
            }
            int64_t dl = c->dict->length;
            int32_t *tr = pt_malloc((size_t)(dl ? dl : 1) * 4);
            if (!tr) return pt_error_set(err, PT_ENOMEM, "join: out of memory");
            for (int64_t e = 0; e < dl; e++) {
                int64_t len;
                const char *s = pt_column_str(c->dict, e, &len);
                tr[e] = (int32_t)map_find(j, str_hash(s, len), s, len);
            }
            j->dicts[d].dict = pt_column_retain(c->dict);
            j->dicts[d].trans = tr;
            j->dicts[d].len = dl;
            j->ndicts++;
        }
        j->dicts[d].used = 1;
        trans[p] = j->dicts[d].trans;
    }
    int w = 0;
    for (int d = 0; d < j->ndicts; d++) {
        if (j->dicts[d].used) {
            j->dicts[w++] = j->dicts[d];
        } else {
            pt_column_release(j->dicts[d].dict);
            pt_free(j->dicts[d].trans);
        }
    }
    j->ndicts = w;
    /* Compaction moved entries: look the pointers up again. */
    for (int64_t p = 0; p < nparts; p++) {
        const pt_column *c = parts[p]->cols[j->pk[0]];
        if (c->type != PT_TYPE_DICT) continue;
        for (int d = 0; d < j->ndicts; d++)
            if (j->dicts[d].dict == c->dict) trans[p] = j->dicts[d].trans;
    }
    return PT_OK;
}

typedef struct junit {
    int64_t part, lo, hi;
} junit;

typedef struct jres {
    int32_t *p, *b; /* probe row (unit-relative; -1 = none), build row (-1 = none) */
    int64_t n, cap;
    int b_neg;      /* some b is -1 */
} jres;

static void jres_free(pt__join_stream *j, jres *r) {
    if (r->cap) {
        pt_free(r->p);
        pt_free(r->b);
        pt_mem_release(j->mem, r->cap * 8);
    }
    memset(r, 0, sizeof *r);
}

static pt_status jres_grow(pt__join_stream *j, jres *r, int64_t want, pt_error *err) {
    int64_t nc = r->cap ? r->cap * 2 : 1024;
    while (nc < want) nc *= 2;
    PT_RETURN_NOT_OK(pt_mem_reserve(j->mem, (nc - r->cap) * 8, "join row pairs", err));
    int32_t *np = pt_realloc(r->p, (size_t)nc * 4);
    if (np) r->p = np;
    int32_t *nb = np ? pt_realloc(r->b, (size_t)nc * 4) : NULL;
    if (nb) r->b = nb;
    if (!np || !nb) {
        /* r->p may be bigger now; the old cap stays charged, which is fine. */
        pt_mem_release(j->mem, (nc - r->cap) * 8);
        return pt_error_set(err, PT_ENOMEM, "join: out of memory for %lld row pairs",
                            (long long)nc);
    }
    r->cap = nc;
    return PT_OK;
}

static int keys_equal(const pt__join_stream *j, const pt_table *t, int64_t i, int64_t b) {
    for (int k = 0; k < j->nkeys; k++) {
        const pt_column *pc = t->cols[j->pk[k]], *bc = j->build->cols[j->bk[k]];
        switch (j->kind[k]) {
        case K_INT:
            if (ival(pc, i) != ival(bc, b)) return 0;
            break;
        case K_STR: {
            int64_t l1, l2;
            const char *s1 = pt_column_str(pc, i, &l1), *s2 = pt_column_str(bc, b, &l2);
            if (l1 != l2 || (l1 && memcmp(s1, s2, (size_t)l1) != 0)) return 0;
            break;
        }
        case K_F32:
            if (!(pt_column_f32(pc)[i] == pt_column_f32(bc)[b])) return 0;
            break;
        case K_F64:
            if (!(pt_column_f64(pc)[i] == pt_column_f64(bc)[b])) return 0;
            break;
        default: return 0;
        }
    }
    return 1;
}

#define EMIT(pi, bi)                                                            \
    do {                                                                       \
        if (r->n == r->cap) PT_RETURN_NOT_OK(jres_grow(j, r, r->n + 1, err));  \
        r->p[r->n] = (int32_t)(pi);                                            \
        r->b[r->n] = (int32_t)(bi);                                            \
        r->n++;                                                                \
    } while (0)

/* Walks the chain starting at `e` (row + 1) for probe row i. */
#define EMIT_CHAIN(e, check)                                                    \
    do {                                                                       \
        int any__ = 0;                                                         \
        for (uint32_t c__ = (e); c__; c__ = j->next[c__ - 1]) {                \
            if (!(check)) continue;                                            \
            EMIT(i - lo, c__ - 1);                                             \
            if (j->matched) __atomic_store_n(&j->matched[c__ - 1], 1, __ATOMIC_RELAXED); \
            any__ = 1;                                                         \
        }                                                                      \
        if (!any__ && j->keep_probe) {                                         \
            EMIT(i - lo, -1);                                                  \
            r->b_neg = 1;                                                      \
        }                                                                      \
    } while (0)

static pt_status probe_unit(pt__join_stream *j, const pt_table *t, int64_t lo, int64_t hi,
                            const int32_t *trans, jres *r, pt_error *err) {
    if (hi > lo) PT_RETURN_NOT_OK(jres_grow(j, r, hi - lo, err));
    if (j->tk == PT__JT_DIRECT) {
        const pt_column *c = t->cols[j->pk[0]];
        /* Big tables miss the cache on every probe: prefetch ahead. */
        int prefetch = j->range > ((uint64_t)1 << 16);
        for (int64_t i = lo; i < hi; i++) {
            if (prefetch && i + 16 < hi) {
                uint64_t dp = (uint64_t)ival(c, i + 16) - (uint64_t)j->kmin;
                if (dp < j->range) __builtin_prefetch(&j->head[dp]);
            }
            uint32_t e = 0;
            if (kvalid(c, i)) {
                uint64_t d = (uint64_t)ival(c, i) - (uint64_t)j->kmin;
                if (d < j->range) e = j->head[d];
            }
            EMIT_CHAIN(e, 1);
        }
    } else if (j->tk == PT__JT_DENSE) {
        const pt_column *c = t->cols[j->pk[0]];
        const int32_t *idx = c->type == PT_TYPE_DICT ? (const int32_t *)c->values->data + c->offset
                                                     : NULL;
        for (int64_t i = lo; i < hi; i++) {
            uint32_t e = 0;
            if (kvalid(c, i)) {
                int64_t id;
                if (idx) {
                    id = trans[idx[i]];
                } else {
                    int64_t len;
                    const char *s = pt_column_str(c, i, &len);
                    id = map_find(j, str_hash(s, len), s, len);
                }
                if (id >= 0) e = j->head[id];
            }
            EMIT_CHAIN(e, 1);
        }
    } else {
        for (int64_t i = lo; i < hi; i++) {
            uint64_t key, h;
            int ok;
            row_key(j, t, j->pk, i, &key, &h, &ok);
            uint32_t e = 0;
            if (ok) {
                int64_t p = j->bits ? (int64_t)(h >> (64 - j->bits)) : 0;
                const uint64_t *skey = j->skey + j->pbase[p];
                const uint32_t *shead = j->shead + j->pbase[p];
                uint64_t mask = (uint64_t)j->pcap[p] - 1;
                for (uint64_t s = h & mask; shead[s]; s = (s + 1) & mask) {
                    if (skey[s] == key) {
                        e = shead[s];
                        break;
                    }
                }
            }
            if (j->int_mode) {
                EMIT_CHAIN(e, 1);
            } else {
                EMIT_CHAIN(e, keys_equal(j, t, i, c__ - 1));
            }
        }
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Gather                                                                   */
/* ------------------------------------------------------------------------ */

/* Output columns are written in parallel by tasks of (column, group of
 * segments); a segment is the pairs of one probe unit (or the unmatched
 * build rows). Build-side reads are random, so the loops prefetch a few
 * rows ahead. Bitmaps are shared at task edges: the first and last byte of
 * a task are OR-ed atomically, the bytes between are stored. */

#define GATHER_PREFETCH 16

typedef struct gseg {
    const pt_column *col; /* NULL: every row null */
    int64_t base;         /* added to every index */
    const int32_t *idx;   /* -1 = null row */
    int64_t n;
    int may_neg;
} gseg;

typedef struct bitw {
    uint8_t *bits;
    int64_t first, last, cur_b;
    uint8_t cur;
} bitw;

static inline void bitw_init(bitw *w, uint8_t *bits, int64_t p0, int64_t p1) {
    w->bits = bits;
    w->first = p0 >> 3;
    w->last = (p1 - 1) >> 3;
    w->cur_b = p0 >> 3;
    w->cur = 0;
}

static inline void bitw_flush(bitw *w) {
    if (w->cur_b == w->first || w->cur_b == w->last) {
        if (w->cur) __atomic_fetch_or(&w->bits[w->cur_b], w->cur, __ATOMIC_RELAXED);
    } else {
        w->bits[w->cur_b] = w->cur;
    }
}

static inline void bitw_put(bitw *w, int64_t pos, int v) {
    int64_t b = pos >> 3;
    if (b != w->cur_b) {
        bitw_flush(w);
        w->cur_b = b;
        w->cur = 0;
    }
    w->cur |= (uint8_t)((v ? 1u : 0u) << (pos & 7));
}

static void take4(int32_t *d, const int32_t *s, const int32_t *idx, int64_t n) {
    for (int64_t k = 0; k < n; k++) {
        if (k + GATHER_PREFETCH < n) {
            int32_t q = idx[k + GATHER_PREFETCH];
            if (q >= 0) __builtin_prefetch(s + q);
        }
        int32_t i = idx[k];
        d[k] = i >= 0 ? s[i] : 0;
    }
}

static void take8(int64_t *d, const int64_t *s, const int32_t *idx, int64_t n) {
    for (int64_t k = 0; k < n; k++) {
        if (k + GATHER_PREFETCH < n) {
            int32_t q = idx[k + GATHER_PREFETCH];
            if (q >= 0) __builtin_prefetch(s + q);
        }
        int32_t i = idx[k];
        d[k] = i >= 0 ? s[i] : 0;
    }
}

typedef struct gather_job {
    pt__join_stream *j;
    int nout;
    pt_type *types;
    pt_column **dicts;
    gseg **segs;          /* [nout][nsegs] */
    int64_t nsegs, total;
    int64_t *seg_pos;     /* [nsegs + 1] first output row of each segment */
    int64_t **seg_bytes;  /* utf8 columns: [nsegs + 1] first byte of each segment */
    int64_t ngroups;
    int64_t *group_seg;   /* [ngroups + 1] */
    int *need_val;
    int *utf8_cols;
    int nutf8;
    pt_column **out;
    int64_t *nulls;       /* [nout * ngroups] */
    int phase;            /* 0: utf8 lengths, 1: allocation, 2: values */
} gather_job;

static pt_status gather_lengths(gather_job *g, int c, int64_t grp) {
    for (int64_t s = g->group_seg[grp]; s < g->group_seg[grp + 1]; s++) {
        const gseg *sg = &g->segs[c][s];
        int64_t bytes = 0;
        if (sg->col) {
            const pt_column *src = sg->col;
            const int64_t *o = (const int64_t *)src->values->data + src->offset + sg->base;
            for (int64_t k = 0; k < sg->n; k++) {
                if (k + GATHER_PREFETCH < sg->n) {
                    int32_t q = sg->idx[k + GATHER_PREFETCH];
                    if (q >= 0) __builtin_prefetch(o + q);
                }
                int32_t i = sg->idx[k];
                if (i >= 0 && pt_column_is_valid(src, sg->base + i)) bytes += o[i + 1] - o[i];
            }
        }
        g->seg_bytes[c][s + 1] = bytes;
    }
    return PT_OK;
}

static pt_status gather_values(gather_job *g, int c, int64_t grp) {
    pt_column *oc = g->out[c];
    pt_type type = g->types[c];
    int64_t s0 = g->group_seg[grp], s1 = g->group_seg[grp + 1];
    int64_t p0 = g->seg_pos[s0], p1 = g->seg_pos[s1];
    if (p1 == p0) return PT_OK;
    uint8_t *vb = g->need_val[c] ? oc->validity->data : NULL;
    bitw vw = {0}, bw = {0};
    if (vb) bitw_init(&vw, vb, p0, p1);
    if (type == PT_TYPE_BOOL) bitw_init(&bw, oc->values->data, p0, p1);
    int64_t nulls = 0;
    for (int64_t s = s0; s < s1; s++) {
        const gseg *sg = &g->segs[c][s];
        const pt_column *src = sg->col;
        int64_t pos = g->seg_pos[s];
        switch (type) {
        case PT_TYPE_NULL:
        case PT_TYPE_BOOL:
            break;
        case PT_TYPE_UTF8: {
            int64_t *o = (int64_t *)oc->values->data + pos;
            char *b = (char *)oc->bytes->data;
            int64_t bpos = g->seg_bytes[c][s];
            if (!src) {
                for (int64_t k = 0; k < sg->n; k++) o[k + 1] = bpos;
                break;
            }
            const int64_t *so = (const int64_t *)src->values->data + src->offset + sg->base;
            const char *sb = (const char *)src->bytes->data;
            for (int64_t k = 0; k < sg->n; k++) {
                if (k + GATHER_PREFETCH < sg->n) {
                    int32_t q = sg->idx[k + GATHER_PREFETCH];
                    if (q >= 0) __builtin_prefetch(so + q);
                }
                int32_t i = sg->idx[k];
                if (i >= 0 && pt_column_is_valid(src, sg->base + i)) {
                    int64_t len = so[i + 1] - so[i];
                    memcpy(b + bpos, sb + so[i], (size_t)len);
                    bpos += len;
                }
                o[k + 1] = bpos;
            }
            break;
        }
        default: {
            int w = pt_type_width(type);
            if (!src) {
                memset(oc->values->data + pos * w, 0, (size_t)(sg->n * w));
            } else if (w == 4) {
                take4((int32_t *)oc->values->data + pos,
                      (const int32_t *)src->values->data + src->offset + sg->base, sg->idx, sg->n);
            } else {
                take8((int64_t *)oc->values->data + pos,
                      (const int64_t *)src->values->data + src->offset + sg->base, sg->idx, sg->n);
            }
        }
        }
        if (type == PT_TYPE_BOOL) {
            for (int64_t k = 0; k < sg->n; k++) {
                int32_t i = src ? sg->idx[k] : -1;
                bitw_put(&bw, pos + k, i >= 0 && pt_column_bool(src, sg->base + i));
            }
        }
        if (vb) {
            if (!src || type == PT_TYPE_NULL) {
                for (int64_t k = 0; k < sg->n; k++) bitw_put(&vw, pos + k, 0);
                nulls += sg->n;
            } else if (!src->validity) {
                for (int64_t k = 0; k < sg->n; k++) {
                    int v = sg->idx[k] >= 0;
                    bitw_put(&vw, pos + k, v);
                    nulls += !v;
                }
            } else {
                for (int64_t k = 0; k < sg->n; k++) {
                    int32_t i = sg->idx[k];
                    int v = i >= 0 && pt_column_is_valid(src, sg->base + i);
                    bitw_put(&vw, pos + k, v);
                    nulls += !v;
                }
            }
        }
    }
    if (vb) bitw_flush(&vw);
    if (type == PT_TYPE_BOOL) bitw_flush(&bw);
    g->nulls[c * g->ngroups + grp] = nulls;
    return PT_OK;
}

static pt_status gather_alloc(gather_job *g, int c, pt_error *err);

static pt_status gather_task(pt_task_ctx *tc, void *arg, int64_t t, pt_error *err) {
    (void)tc;
    gather_job *g = arg;
    if (g->phase == 0) return gather_lengths(g, g->utf8_cols[t / g->ngroups], t % g->ngroups);
    /* New buffers are zero-filled (and first touched) by whoever allocates
     * them, so the columns are allocated in parallel too. */
    if (g->phase == 1) return gather_alloc(g, (int)t, err);
    return gather_values(g, (int)(t / g->ngroups), t % g->ngroups);
}

/* Allocates output column c (after the utf8 lengths are known). */
static pt_status gather_alloc(gather_job *g, int c, pt_error *err) {
    pt_type type = g->types[c];
    pt_mem *mem = g->j->out_mem;
    int64_t total = g->total;
    pt_column *dict = g->dicts[c], *empty_dict = NULL;
    if (type == PT_TYPE_DICT && !dict) {
        PT_RETURN_NOT_OK(pt_column_new(NULL, PT_TYPE_UTF8, 0, 0, &empty_dict, err));
        dict = empty_dict;
    }
    int64_t bytes = type == PT_TYPE_UTF8 ? g->seg_bytes[c][g->nsegs] : 0;
    pt_column *oc;
    pt_status st = type == PT_TYPE_DICT ? pt_column_new_dict(mem, dict, total, &oc, err)
                                        : pt_column_new(mem, type, total, bytes, &oc, err);
    pt_column_release(empty_dict);
    if (st != PT_OK) return st;
    g->out[c] = oc;
    int64_t vbytes = (total + 7) / 8;
    if (type == PT_TYPE_NULL) {
        g->need_val[c] = 1;
    } else if (g->need_val[c]) {
        PT_RETURN_NOT_OK(pt_buffer_new(mem, vbytes, &oc->validity, err));
    }
    if (g->need_val[c]) {
        memset(oc->validity->data, 0, (size_t)vbytes);
        oc->validity->size = vbytes;
    }
    if (type == PT_TYPE_BOOL) memset(oc->values->data, 0, (size_t)vbytes);
    if (type == PT_TYPE_UTF8) ((int64_t *)oc->values->data)[0] = 0;
    return PT_OK;
}

static void gather_finish(gather_job *g, int c) {
    pt_column *oc = g->out[c];
    pt_type type = g->types[c];
    int64_t total = g->total, nulls = 0;
    for (int64_t grp = 0; grp < g->ngroups; grp++) nulls += g->nulls[c * g->ngroups + grp];
    oc->length = total;
    oc->null_count = type == PT_TYPE_NULL ? total : nulls;
    if (type == PT_TYPE_UTF8) {
        oc->values->size = (total + 1) * 8;
        oc->bytes->size = g->seg_bytes[c][g->nsegs];
    } else if (type == PT_TYPE_BOOL) {
        oc->values->size = (total + 7) / 8;
    } else if (type != PT_TYPE_NULL) {
        oc->values->size = total * pt_type_width(type);
    }
    if (type != PT_TYPE_NULL && oc->validity && nulls == 0) {
        pt_buffer_release(oc->validity);
        oc->validity = NULL;
    }
}

/* Assembles the output table from the pairs of every unit and, when
 * `unm` is given, the unmatched build rows (nulls on the probe side). */
static pt_status gather_output(pt__join_stream *j, pt_table *const *parts, int64_t nparts,
                               const junit *units, const jres *res, int64_t nunits,
                               const int32_t *unm, int64_t nunm, pt_table **out, pt_error *err) {
    *out = NULL;
    const pt_schema *ps = j->probe_schema, *bs = j->build->schema;
    const pt_schema *ls = j->build_is_right ? ps : bs, *rs = j->build_is_right ? bs : ps;
    int nl = ls->nfields, nr = rs->nfields, nout = nl + nr;
    int64_t nsegs = nunits + (nunm > 0 ? 1 : 0);

    gather_job g;
    memset(&g, 0, sizeof g);
    g.j = j;
    g.nout = nout;
    g.nsegs = nsegs;
    pt_status st = PT_OK;
    const char **names = pt_calloc((size_t)nout, sizeof *names);
    g.types = pt_calloc((size_t)nout, sizeof *g.types);
    g.dicts = pt_calloc((size_t)nout, sizeof *g.dicts);
    g.segs = pt_calloc((size_t)nout, sizeof *g.segs);
    g.seg_bytes = pt_calloc((size_t)nout, sizeof *g.seg_bytes);
    g.need_val = pt_calloc((size_t)nout, sizeof *g.need_val);
    g.utf8_cols = pt_calloc((size_t)nout, sizeof *g.utf8_cols);
    g.out = pt_calloc((size_t)nout, sizeof *g.out);
    g.seg_pos = pt_calloc((size_t)nsegs + 1, sizeof *g.seg_pos);
    pt_column **merged = pt_calloc((size_t)nout, sizeof *merged); /* probe dicts re-encoded */
    int64_t *partoff = pt_calloc((size_t)(nparts + 1), sizeof *partoff);
    if (!names || !g.types || !g.dicts || !g.segs || !g.seg_bytes || !g.need_val ||
        !g.utf8_cols || !g.out || !g.seg_pos || !merged || !partoff)
        st = pt_error_set(err, PT_ENOMEM, "join: out of memory");
    for (int64_t p = 0; st == PT_OK && p < nparts; p++)
        partoff[p + 1] = partoff[p] + parts[p]->nrows;
    if (st == PT_OK) {
        for (int64_t u = 0; u < nunits; u++) g.seg_pos[u + 1] = g.seg_pos[u] + res[u].n;
        if (nunm) g.seg_pos[nsegs] = g.seg_pos[nunits] + nunm;
        g.total = g.seg_pos[nsegs];
        /* Groups of segments of at least 64K rows, about 4 per thread. */
        int64_t target = g.total / (4 * (int64_t)pt_ctx_threads(j->ctx) + 1);
        if (target < 65536) target = 65536;
        g.group_seg = pt_calloc((size_t)nsegs + 2, sizeof *g.group_seg);
        if (!g.group_seg) st = pt_error_set(err, PT_ENOMEM, "join: out of memory");
        int64_t ng = 0, acc = 0;
        for (int64_t s = 0; st == PT_OK && s < nsegs; s++) {
            acc += g.seg_pos[s + 1] - g.seg_pos[s];
            if (acc >= target || s == nsegs - 1) {
                g.group_seg[++ng] = s + 1;
                acc = 0;
            }
        }
        g.ngroups = ng;
    }
    for (int c = 0; st == PT_OK && c < nout; c++) {
        int is_left = c < nl;
        int sc = is_left ? c : c - nl; /* column in its own side */
        int probe_side = is_left == j->build_is_right;
        const pt_field *f = is_left ? &ls->fields[sc] : &rs->fields[sc];
        names[c] = f->name;
        g.types[c] = f->type;
        g.segs[c] = pt_calloc((size_t)(nsegs ? nsegs : 1), sizeof(gseg));
        if (!g.segs[c]) {
            st = pt_error_set(err, PT_ENOMEM, "join: out of memory");
            break;
        }
        if (f->type == PT_TYPE_UTF8) {
            g.seg_bytes[c] = pt_calloc((size_t)nsegs + 1, sizeof(int64_t));
            if (!g.seg_bytes[c]) {
                st = pt_error_set(err, PT_ENOMEM, "join: out of memory");
                break;
            }
            g.utf8_cols[g.nutf8++] = c;
        }
        if (!probe_side) {
            const pt_column *bc = j->build->cols[sc];
            g.dicts[c] = bc->dict;
            for (int64_t u = 0; u < nunits; u++)
                g.segs[c][u] = (gseg){bc, 0, res[u].b, res[u].n, res[u].b_neg};
            if (nunm) g.segs[c][nunits] = (gseg){bc, 0, unm, nunm, 0};
            g.need_val[c] = bc->null_count > 0;
            for (int64_t u = 0; u < nunits; u++) g.need_val[c] |= res[u].b_neg;
            continue;
        }
        /* Probe side: one dictionary for the output column. */
        if (f->type == PT_TYPE_DICT && nparts > 0) {
            pt_column *d0 = parts[0]->cols[sc]->dict;
            int same = 1;
            for (int64_t p = 1; p < nparts && same; p++) same = parts[p]->cols[sc]->dict == d0;
            if (!same) {
                pt_column **cs = pt_calloc((size_t)nparts, sizeof *cs);
                if (!cs || nparts > INT32_MAX) {
                    pt_free(cs);
                    st = pt_error_set(err, PT_ENOMEM, "join: out of memory");
                    break;
                }
                for (int64_t p = 0; p < nparts; p++) cs[p] = parts[p]->cols[sc];
                st = pt_column_concat(j->mem, cs, (int)nparts, &merged[c], err);
                pt_free(cs);
                if (st != PT_OK) break;
                d0 = merged[c]->dict;
            }
            g.dicts[c] = d0;
        }
        g.need_val[c] = nunm > 0;
        for (int64_t u = 0; u < nunits; u++) {
            const junit *un = &units[u];
            const pt_column *pc = parts[un->part]->cols[sc];
            if (pc->null_count > 0) g.need_val[c] = 1;
            g.segs[c][u] = merged[c] ? (gseg){merged[c], partoff[un->part] + un->lo, res[u].p,
                                              res[u].n, 0}
                                     : (gseg){pc, un->lo, res[u].p, res[u].n, 0};
        }
        if (nunm) g.segs[c][nunits] = (gseg){NULL, 0, NULL, nunm, 1};
    }
    if (st == PT_OK) {
        g.nulls = pt_calloc((size_t)nout * (size_t)(g.ngroups ? g.ngroups : 1), sizeof(int64_t));
        if (!g.nulls) st = pt_error_set(err, PT_ENOMEM, "join: out of memory");
    }
    pt_pool *pool = g.total > 4096 ? pt_ctx_pool(j->ctx) : NULL;
    if (st == PT_OK && g.nutf8 > 0 && g.ngroups > 0) {
        g.phase = 0;
        st = pt_parallel_for(pool, g.nutf8 * g.ngroups, gather_task, &g, NULL, err);
        for (int u = 0; st == PT_OK && u < g.nutf8; u++) {
            int64_t *sb = g.seg_bytes[g.utf8_cols[u]];
            for (int64_t s = 0; s < nsegs; s++) sb[s + 1] += sb[s];
        }
    }
    if (st == PT_OK) {
        g.phase = 1;
        st = pt_parallel_for(pool, nout, gather_task, &g, NULL, err);
    }
    if (st == PT_OK && g.ngroups > 0) {
        g.phase = 2;
        st = pt_parallel_for(pool, nout * g.ngroups, gather_task, &g, NULL, err);
    }
    if (st == PT_OK)
        for (int c = 0; c < nout; c++) gather_finish(&g, c);
    pt_schema *schema = NULL;
    if (st == PT_OK) st = pt_schema_new(nout, names, g.types, &schema, err);
    if (st == PT_OK) {
        st = pt_table_new(schema, g.out, out, err);
        if (st == PT_OK) (*out)->nrows = g.total;
    } else if (g.out) {
        for (int c = 0; c < nout; c++) pt_column_release(g.out[c]);
    }
    for (int c = 0; c < nout; c++) {
        if (g.segs) pt_free(g.segs[c]);
        if (g.seg_bytes) pt_free(g.seg_bytes[c]);
        if (merged) pt_column_release(merged[c]);
    }
    pt_free(names);
    pt_free(g.types);
    pt_free(g.dicts);
    pt_free(g.segs);
    pt_free(g.seg_bytes);
    pt_free(g.need_val);
    pt_free(g.utf8_cols);
    pt_free(g.out);
    pt_free(g.seg_pos);
    pt_free(g.group_seg);
    pt_free(g.nulls);
    pt_free(merged);
    pt_free(partoff);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Probing partitions                                                       */
/* ------------------------------------------------------------------------ */

typedef struct probe_job {
    pt__join_stream *j;
    pt_table *const *parts;
    const junit *units;
    jres *res;
    const int32_t **trans;
} probe_job;

static pt_status probe_task(pt_task_ctx *tc, void *arg, int64_t u, pt_error *err) {
    (void)tc;
    probe_job *pj = arg;
    const junit *un = &pj->units[u];
    return probe_unit(pj->j, pj->parts[un->part], un->lo, un->hi, pj->trans[un->part],
                      &pj->res[u], err);
}

/* Unmatched build rows (including null keys) after every probe. */
static pt_status collect_unmatched(pt__join_stream *j, int32_t **out, int64_t *n, pt_error *err) {
    *out = NULL;
    *n = 0;
    if (!j->keep_build) return PT_OK;
    int64_t k = 0;
    for (int64_t i = 0; i < j->nbuild; i++) k += !j->matched[i];
    if (!k) return PT_OK;
    int32_t *u = pt_malloc((size_t)k * 4);
    if (!u) return pt_error_set(err, PT_ENOMEM, "join: out of memory");
    k = 0;
    for (int64_t i = 0; i < j->nbuild; i++)
        if (!j->matched[i]) u[k++] = (int32_t)i;
    *out = u;
    *n = k;
    return PT_OK;
}

pt_status pt__join_stream_probe_parts(pt__join_stream *j, pt_table *const *parts, int64_t nparts,
                                      int with_unmatched, pt_table **out, pt_error *err) {
    *out = NULL;
    const pt_schema *ps = j->probe_schema;
    for (int64_t p = 0; p < nparts; p++) {
        const pt_schema *s = parts[p]->schema;
        int same = s->nfields == ps->nfields;
        for (int c = 0; same && c < s->nfields; c++) same = s->fields[c].type == ps->fields[c].type;
        if (!same)
            return pt_error_set(err, PT_EINVAL,
                                "join: probe partition %lld does not have the probe schema "
                                "(%d columns expected)",
                                (long long)p, ps->nfields);
    }
    int64_t nunits = 0;
    for (int64_t p = 0; p < nparts; p++) nunits += (parts[p]->nrows + UNIT_ROWS - 1) / UNIT_ROWS;
    junit *units = pt_calloc((size_t)(nunits ? nunits : 1), sizeof *units);
    jres *res = pt_calloc((size_t)(nunits ? nunits : 1), sizeof *res);
    const int32_t **trans = pt_calloc((size_t)(nparts ? nparts : 1), sizeof *trans);
    pt_status st = PT_OK;
    if (!units || !res || !trans) st = pt_error_set(err, PT_ENOMEM, "join: out of memory");
    int64_t u = 0;
    for (int64_t p = 0; st == PT_OK && p < nparts; p++)
        for (int64_t lo = 0; lo < parts[p]->nrows; lo += UNIT_ROWS)
            units[u++] = (junit){p, lo,
                                 lo + UNIT_ROWS < parts[p]->nrows ? lo + UNIT_ROWS
                                                                  : parts[p]->nrows};
    if (st == PT_OK && j->tk == PT__JT_DENSE) st = prep_dicts(j, parts, nparts, trans, err);
    double t0 = pt_now_s();
    if (st == PT_OK) {
        probe_job pj = {j, parts, units, res, trans};
        st = pt_parallel_for(nunits > 1 ? pt_ctx_pool(j->ctx) : NULL, nunits, probe_task, &pj,
                             NULL, err);
    }
    double t1 = pt_now_s();
    int32_t *unm = NULL;
    int64_t nunm = 0;
    if (st == PT_OK && with_unmatched) {
        st = collect_unmatched(j, &unm, &nunm, err);
        j->finished = 1;
    }
    if (st == PT_OK) st = gather_output(j, parts, nparts, units, res, nunits, unm, nunm, out, err);
    if (st == PT_OK && nparts > 1 && PT_LOG_ENABLED(PT_LOG_DEBUG))
        pt_log_debug("join: probe %.3f s, gather %.3f s (%lld units)", t1 - t0, pt_now_s() - t1,
                     (long long)nunits);
    pt_free(unm);
    for (int64_t k = 0; res && k < nunits; k++) jres_free(j, &res[k]);
    pt_free(units);
    pt_free(res);
    pt_free(trans);
    return st;
}

pt_status pt__join_stream_probe(pt__join_stream *j, const pt_table *probe_batch, pt_table **out,
                                pt_error *err) {
    if (out) *out = NULL;
    if (!j || !probe_batch || !out)
        return pt_error_set(err, PT_EINVAL, "pt__join_stream_probe: stream, batch and out are required");
    if (j->finished)
        return pt_error_set(err, PT_EINVAL, "pt__join_stream_probe: the stream is already finished");
    pt_table *const parts[1] = {(pt_table *)probe_batch};
    return pt__join_stream_probe_parts(j, parts, 1, 0, out, err);
}

pt_status pt__join_stream_finish(pt__join_stream *j, pt_table **out, pt_error *err) {
    if (out) *out = NULL;
    if (!j || !out) return pt_error_set(err, PT_EINVAL, "pt__join_stream_finish: stream and out are required");
    if (j->finished)
        return pt_error_set(err, PT_EINVAL, "pt__join_stream_finish: called twice");
    int32_t *unm = NULL;
    int64_t nunm = 0;
    PT_RETURN_NOT_OK(collect_unmatched(j, &unm, &nunm, err));
    j->finished = 1;
    pt_status st = gather_output(j, NULL, 0, NULL, NULL, 0, unm, nunm, out, err);
    pt_free(unm);
    return st;
}
