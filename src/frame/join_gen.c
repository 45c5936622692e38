/*
 * join_gen.c - the db-benchmark join data (J1), after the benchmark's R
 * generator (join-datagen.R), built in memory and in parallel.
 *
 * Rules. Three key levels: id1 with n1 = N/1e6 keys, id2 with n2 = N/1e3
 * and id3 with n3 = N (each at least 1, rounded to nearest). For a level
 * with n keys, a random permutation of 1..n + nl (nl = n - round(0.9 n))
 * is cut into three groups: the first round(0.9 n) values are keys of both
 * sides ("matching"), the next nl only of x ("left only"), the last nl only
 * of the lookup tables ("right only"). So x draws from n keys and the lookup
 * tables from n keys, 90% of them shared - which is what makes about 10% of
 * x's rows miss and 10% of a lookup table's keys unused.
 *
 * A column of `size` rows over a set of m keys is R's sample_all: every key
 * once, then size - m more drawn uniformly with replacement, all shuffled.
 * Hence x.id3 and big.id3 hold each of their keys exactly once, small.id1
 * and medium.id2 too, while x.id1 repeats each key about N/n1 times.
 *
 *   x      N rows:  id1, id2, id3 (int64), id4, id5 (dict: "id" + id1, id2),
 *                   id6 (utf8: "id" + id3), v1 (float64)
 *   small  n1 rows: id1, id4, v2
 *   medium n2 rows: id1 (repeats), id2, id4, id5, v2
 *   big    N rows:  id1, id2 (repeats), id3, id4, id5, id6, v2
 *
 * v1, v2 = round(runif(0, 100), 6). The dictionaries of id4 and id5 list a
 * side's keys in its own order, so x and the lookup tables have different
 * dictionaries, as two independently read files would. NA keys (the R
 * generator's optional NA fraction) are not produced.
 *
 * Determinism: a shuffle of [0, M) is a keyed 4-round Feistel network on
 * the next even power of two with cycle walking (a bijection computed per
 * element, no state), and draws are pt_splitmix64(stream base + index), so
 * any row can be produced by any thread.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "frame/join.h"

#define J1_CHUNK 65536
#define J1_MAX_N ((int64_t)1 << 40)

typedef struct perm {
    uint64_t m, mask;
    int half;
    uint64_t keys[4];
} perm;

static void perm_init(perm *p, uint64_t m, uint64_t seed) {
    int bits = 2;
    while (bits < 62 && ((uint64_t)1 << bits) < m) bits++;
    if (bits & 1) bits++;
    p->m = m;
    p->half = bits / 2;
    p->mask = ((uint64_t)1 << p->half) - 1;
    for (int r = 0; r < 4; r++) p->keys[r] = pt_splitmix64(seed ^ (0x243f6a8885a308d3ULL * (uint64_t)(r + 1)));
}

static inline uint64_t perm_apply(const perm *p, uint64_t x) {
    do {
        uint64_t l = x >> p->half, r = x & p->mask;
        for (int k = 0; k < 4; k++) {
            /* multiplicative hashing: the high bits of the product are
             * well mixed, and a round costs one multiply */
            uint64_t f = (((r ^ p->keys[k]) * 0x9e3779b97f4a7c15ULL) >> (64 - p->half)) & p->mask;
            uint64_t nl = r;
            r = l ^ f;
            l = nl;
        }
        x = (l << p->half) | r;
    } while (x >= p->m);
    return x;
}

static inline int64_t below(uint64_t h, int64_t n) {
    return (int64_t)(((unsigned __int128)h * (uint64_t)n) >> 64);
}

typedef struct level {
    int64_t n, nx, nl;
    perm kp; /* over [0, n + nl) */
} level;

/* Key of keyset index j (0 <= j < n) of side 0 (x) or 1 (lookup). */
static inline int64_t key_of(const level *L, int side, int64_t j) {
    int64_t pos = side == 0 || j < L->nx ? j : j + L->nl;
    return 1 + (int64_t)perm_apply(&L->kp, (uint64_t)pos);
}

/* sample_all over the n keys of a level into `size` rows. */
typedef struct sampler {
    perm rp;
    uint64_t base;
    int64_t m;
} sampler;

static inline int64_t sample_j(const sampler *s, int64_t i) {
    int64_t j = (int64_t)perm_apply(&s->rp, (uint64_t)i);
    if (j < s->m) return j;
    return below(pt_splitmix64(s->base + (uint64_t)j), s->m);
}

enum { C_ID, C_DICT, C_TXT, C_VAL };

typedef struct cspec {
    const char *name;
    int kind;
    int level; /* 0..2 */
} cspec;

typedef struct tjob {
    const level *lv;
    int side;
    int64_t nrows;
    int ncols;
    const cspec *spec;
    sampler smp[3];
    int uses[3];
    uint64_t vbase;
    pt_column **cols;
    int idcol[3];      /* the C_ID column of each level, or -1 */
    int64_t *chunk_bytes;
    int pass;
} tjob;

static int digits(int64_t v) {
    int d = 1;
    while (v >= 10) v /= 10, d++;
    return d;
}

static pt_status gen_chunk(pt_task_ctx *tc, void *arg, int64_t chunk, pt_error *err) {
    (void)tc;
    (void)err;
    tjob *t = arg;
    int64_t lo = chunk * J1_CHUNK, hi = lo + J1_CHUNK;
    if (hi > t->nrows) hi = t->nrows;
    if (t->pass == 0) {
        int64_t bytes = 0;
        for (int64_t i = lo; i < hi; i++) {
            int64_t j[3] = {0, 0, 0}, key[3] = {0, 0, 0};
            for (int l = 0; l < 3; l++) {
                if (!t->uses[l]) continue;
                j[l] = sample_j(&t->smp[l], i);
                key[l] = key_of(&t->lv[l], t->side, j[l]);
            }
            for (int c = 0; c < t->ncols; c++) {
                const cspec *s = &t->spec[c];
                switch (s->kind) {
                case C_ID: ((int64_t *)t->cols[c]->values->data)[i] = key[s->level]; break;
                case C_DICT: ((int32_t *)t->cols[c]->values->data)[i] = (int32_t)j[s->level]; break;
                case C_TXT: bytes += 2 + digits(key[s->level]); break;
                default: {
                    double u = (double)(pt_splitmix64(t->vbase + (uint64_t)i) >> 11) * 0x1.0p-53;
                    ((double *)t->cols[c]->values->data)[i] = (double)llrint(u * 1e8) / 1e6;
                }
                }
            }
        }
        t->chunk_bytes[chunk] = bytes;
        return PT_OK;
    }
    /* pass 1: text columns, from the id column of their level */
    for (int c = 0; c < t->ncols; c++) {
        if (t->spec[c].kind != C_TXT) continue;
        pt_column *col = t->cols[c];
        const int64_t *ids = (const int64_t *)t->cols[t->idcol[t->spec[c].level]]->values->data;
        int64_t *off = (int64_t *)col->values->data;
        char *b = (char *)col->bytes->data;
        int64_t pos = t->chunk_bytes[chunk];
        for (int64_t i = lo; i < hi; i++) {
            char tmp[24];
            int n = 0;
            uint64_t v = (uint64_t)ids[i];
            do {
                tmp[n++] = (char)('0' + v % 10);
                v /= 10;
            } while (v);
            b[pos++] = 'i';
            b[pos++] = 'd';
            while (n) b[pos++] = tmp[--n];
            off[i + 1] = pos;
        }
    }
    return PT_OK;
}

/* Dictionary "id<key>" of the n keys of a level as seen by one side. */
static pt_status make_dict(pt_mem *mem, const level *L, int side, pt_column **out, pt_error *err) {
    pt_column *d;
    PT_RETURN_NOT_OK(pt_column_new(mem, PT_TYPE_UTF8, L->n, L->n * 12, &d, err));
    for (int64_t j = 0; j < L->n; j++) {
        char buf[32];
        int len = snprintf(buf, sizeof buf, "id%lld", (long long)key_of(L, side, j));
        pt_status st = pt_column_append_str(d, buf, len, err);
        if (st != PT_OK) {
            pt_column_release(d);
            return st;
        }
    }
    *out = d;
    return PT_OK;
}

static pt_status gen_table(pt_ctx *ctx, const level *lv, pt_column *const *dicts, int side,
                           int tid, uint64_t seed, int64_t nrows, int ncols, const cspec *spec,
                           pt_table **out, pt_error *err) {
    pt_mem *mem = pt_ctx_mem(ctx);
    tjob t;
    memset(&t, 0, sizeof t);
    t.lv = lv;
    t.side = side;
    t.nrows = nrows;
    t.ncols = ncols;
    t.spec = spec;
    pt_column *cols[8] = {0};
    t.cols = cols;
    for (int l = 0; l < 3; l++) t.idcol[l] = -1;
    uint64_t tseed = pt_splitmix64(seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(tid + 11)));
    for (int c = 0; c < ncols; c++) {
        int l = spec[c].level;
        if (spec[c].kind != C_VAL && !t.uses[l]) {
            t.uses[l] = 1;
            perm_init(&t.smp[l].rp, (uint64_t)nrows, pt_splitmix64(tseed + 2 * (uint64_t)l + 1));
            t.smp[l].base = pt_splitmix64(tseed + 2 * (uint64_t)l + 2);
            t.smp[l].m = lv[l].n;
        }
        if (spec[c].kind == C_ID) t.idcol[l] = c;
    }
    t.vbase = pt_splitmix64(tseed + 100);
    int64_t nchunks = (nrows + J1_CHUNK - 1) / J1_CHUNK;
    t.chunk_bytes = pt_calloc((size_t)(nchunks + 1), sizeof(int64_t));
    pt_status st = t.chunk_bytes ? PT_OK : pt_error_set(err, PT_ENOMEM, "pt__gen_j1: out of memory");
    for (int c = 0; c < ncols && st == PT_OK; c++) {
        switch (spec[c].kind) {
        case C_ID: st = pt_column_new(mem, PT_TYPE_INT64, nrows, 0, &cols[c], err); break;
        case C_DICT: st = pt_column_new_dict(mem, dicts[spec[c].level], nrows, &cols[c], err); break;
        case C_VAL: st = pt_column_new(mem, PT_TYPE_FLOAT64, nrows, 0, &cols[c], err); break;
        default: break; /* text: after the first pass, when its size is known */
        }
    }
    t.pass = 0;
    if (st == PT_OK) st = pt_parallel_for(pt_ctx_pool(ctx), nchunks, gen_chunk, &t, NULL, err);
    if (st == PT_OK) {
        int64_t run = 0;
        for (int64_t k = 0; k < nchunks; k++) {
            int64_t b = t.chunk_bytes[k];
            t.chunk_bytes[k] = run;
            run += b;
        }
        for (int c = 0; c < ncols && st == PT_OK; c++) {
            if (spec[c].kind != C_TXT) continue;
            st = pt_column_new(mem, PT_TYPE_UTF8, nrows, run, &cols[c], err);
            if (st == PT_OK) {
                ((int64_t *)cols[c]->values->data)[0] = 0;
                cols[c]->bytes->size = run;
            }
        }
        t.pass = 1;
        if (st == PT_OK) st = pt_parallel_for(pt_ctx_pool(ctx), nchunks, gen_chunk, &t, NULL, err);
    }
    pt_free(t.chunk_bytes);
    for (int c = 0; c < ncols && st == PT_OK; c++) {
        pt_column *col = cols[c];
        col->length = nrows;
        col->null_count = 0;
        col->values->size = col->type == PT_TYPE_UTF8 ? (nrows + 1) * 8
                                                      : nrows * pt_type_width(col->type);
    }
    const char *names[8];
    pt_type types[8];
    for (int c = 0; c < ncols; c++) {
        names[c] = spec[c].name;
        types[c] = spec[c].kind == C_ID     ? PT_TYPE_INT64
                   : spec[c].kind == C_DICT ? PT_TYPE_DICT
                   : spec[c].kind == C_TXT  ? PT_TYPE_UTF8
                                            : PT_TYPE_FLOAT64;
    }
    pt_schema *schema = NULL;
    if (st == PT_OK) st = pt_schema_new(ncols, names, types, &schema, err);
    if (st != PT_OK) {
        for (int c = 0; c < ncols; c++) pt_column_release(cols[c]);
        return st;
    }
    return pt_table_new(schema, cols, out, err);
}

pt_status pt__gen_j1(pt_ctx *ctx, int64_t n, uint64_t seed, pt_table **x, pt_table **small,
                     pt_table **medium, pt_table **big, pt_error *err) {
    pt_table **outs[4] = {x, small, medium, big};
    for (int k = 0; k < 4; k++)
        if (outs[k]) *outs[k] = NULL;
    if (!ctx) return pt_error_set(err, PT_EINVAL, "pt__gen_j1: ctx is required");
    if (n < 1 || n > J1_MAX_N)
        return pt_error_set(err, PT_EINVAL, "pt__gen_j1: n must be in [1, 2^40], not %lld",
                            (long long)n);
    level lv[3];
    int64_t ns[3] = {llround((double)n / 1e6), llround((double)n / 1e3), n};
    for (int l = 0; l < 3; l++) {
        lv[l].n = ns[l] < 1 ? 1 : ns[l];
        lv[l].nx = llround(0.9 * (double)lv[l].n);
        if (lv[l].nx < 1) lv[l].nx = 1;
        lv[l].nl = lv[l].n - lv[l].nx;
        perm_init(&lv[l].kp, (uint64_t)(lv[l].n + lv[l].nl), pt_splitmix64(seed + 7 * (uint64_t)l + 3));
    }
    static const cspec xs[] = {{"id1", C_ID, 0},   {"id2", C_ID, 1},   {"id3", C_ID, 2},
                               {"id4", C_DICT, 0}, {"id5", C_DICT, 1}, {"id6", C_TXT, 2},
                               {"v1", C_VAL, 0}};
    static const cspec ss[] = {{"id1", C_ID, 0}, {"id4", C_DICT, 0}, {"v2", C_VAL, 0}};
    static const cspec ms[] = {{"id1", C_ID, 0},   {"id2", C_ID, 1}, {"id4", C_DICT, 0},
                               {"id5", C_DICT, 1}, {"v2", C_VAL, 0}};
    static const cspec bs[] = {{"id1", C_ID, 0},   {"id2", C_ID, 1},   {"id3", C_ID, 2},
                               {"id4", C_DICT, 0}, {"id5", C_DICT, 1}, {"id6", C_TXT, 2},
                               {"v2", C_VAL, 0}};
    const cspec *specs[4] = {xs, ss, ms, bs};
    int nspec[4] = {7, 3, 5, 7};
    int64_t rows[4] = {n, lv[0].n, lv[1].n, n};
    pt_mem *mem = pt_ctx_mem(ctx);
    pt_column *dicts[2][3] = {{NULL}}; /* [side][level], levels 0 and 1 */
    pt_status st = PT_OK;
    for (int side = 0; side < 2 && st == PT_OK; side++)
        for (int l = 0; l < 2 && st == PT_OK; l++) st = make_dict(mem, &lv[l], side, &dicts[side][l], err);
    for (int k = 0; k < 4 && st == PT_OK; k++) {
        if (!outs[k]) continue;
        int side = k == 0 ? 0 : 1;
        st = gen_table(ctx, lv, dicts[side], side, k, seed, rows[k], nspec[k], specs[k], outs[k], err);
    }
    for (int side = 0; side < 2; side++)
        for (int l = 0; l < 2; l++) pt_column_release(dicts[side][l]);
    if (st != PT_OK) {
        for (int k = 0; k < 4; k++)
            if (outs[k]) {
                pt_table_free(*outs[k]);
                *outs[k] = NULL;
            }
        pt_error_prefix(err, "pt__gen_j1");
    }
    return st;
}
