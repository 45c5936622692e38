/*
 * groupby_keys.c - how the group-by encodes keys: the plan that maps key
 * columns onto a row of u64 words plus strings, the union of dictionaries
 * across partitions, the chunked encoder and hasher used by the hot loop,
 * and the decoder that turns a group's words back into key values.
 *
 * Columns of bounded cardinality (bool, dict, ints whose range is known)
 * share word 0 in mixed radix, with code 0 for null; a single small key, or
 * several whose product of cardinalities is small, thus gives a dense index
 * that the kernel uses directly instead of hashing (direct mode). Other
 * fixed-width columns get a word each; text keys are hashed and compared
 * byte by byte.
 *
 * When the whole input is known, texts of at most 15 bytes become two
 * words (their bytes and length), and, when only a few of their bytes vary
 * and the key can then be direct, a small number in word 0 (zero-padded
 * ids, codes, dates): measuring costs a pass over the keys, which the
 * faster aggregation repays.
 */
#include <math.h>
#include <string.h>

#include "frame/groupby.h"

#define KEY_SEED GB_KEY_SEED
#define DIRECT_MAX ((uint64_t)1 << 20)

/* ------------------------------------------------------------------------ */
/* Dictionary unions                                                        */
/* ------------------------------------------------------------------------ */

static pt_status dm_grow(gb_dictmap *d, pt_error *err) {
    uint64_t nslots = d->slots ? (d->mask + 1) * 2 : 256;
    uint64_t *s = pt_calloc((size_t)nslots, sizeof *s);
    if (!s) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory growing a dictionary");
    uint64_t mask = nslots - 1;
    for (uint64_t i = 0; d->slots && i <= d->mask; i++) {
        uint64_t e = d->slots[i];
        if (!e) continue;
        int64_t len;
        const char *str = pt_column_str(d->dict, (int64_t)(e & 0xffffffffu) - 1, &len);
        uint64_t j = pt_hash_bytes(str, (size_t)len, KEY_SEED) & mask;
        while (s[j]) j = (j + 1) & mask;
        s[j] = e;
    }
    pt_free(d->slots);
    d->slots = s;
    d->mask = mask;
    return PT_OK;
}

/* Global id of a text, added when new. */
static pt_status dm_add(gb_dictmap *d, const char *s, int64_t len, int32_t *id, pt_error *err) {
    if (!d->slots || (uint64_t)(d->n + 1) * 2 > d->mask + 1) PT_RETURN_NOT_OK(dm_grow(d, err));
    uint64_t h = pt_hash_bytes(s, (size_t)len, KEY_SEED);
    uint64_t tag = h >> 32 << 32;
    for (uint64_t j = h & d->mask;; j = (j + 1) & d->mask) {
        uint64_t e = d->slots[j];
        if (!e) {
            if (d->n >= INT32_MAX - 1)
                return pt_error_set(err, PT_ERANGE,
                                    "group-by: more than 2^31 distinct texts in column %d",
                                    d->col);
            PT_RETURN_NOT_OK(pt_column_append_str(d->dict, s, len, err));
            d->slots[j] = tag | (uint64_t)(d->n + 1);
            *id = (int32_t)d->n++;
            return PT_OK;
        }
        if ((e & ~0xffffffffULL) == tag) {
            int64_t l2;
            const char *s2 = pt_column_str(d->dict, (int64_t)(e & 0xffffffffu) - 1, &l2);
            if (l2 == len && memcmp(s, s2, (size_t)len) == 0) {
                *id = (int32_t)((e & 0xffffffffu) - 1);
                return PT_OK;
            }
        }
    }
}

void pt__gb_dict_release_cache(gb_stream *g) {
    for (int d = 0; d < g->ndm; d++) {
        gb_dictmap *m = &g->dm[d];
        for (int i = 0; i < m->ncache; i++) pt_free(m->cache_map[i]);
        m->ncache = 0;
    }
    pt_free(g->pmaps);
    g->pmaps = NULL;
}

void pt__gb_dict_free(gb_dictmap *d) {
    for (int i = 0; i < d->ncache; i++) pt_free(d->cache_map[i]);
    pt_free(d->cache_map);
    pt_free(d->cache_dict);
    pt_free(d->slots);
    pt_column_release(d->dict);
    memset(d, 0, sizeof *d);
}

/* Maps every partition's dictionary onto the unions (single-threaded; a
 * dictionary shared by many slices is mapped once). */
pt_status pt__gb_dict_prepare(gb_stream *g, pt_table *const *parts, int64_t nparts,
                              pt_error *err) {
    pt__gb_dict_release_cache(g);
    if (g->ndm == 0) return PT_OK;
    g->pmaps = pt_calloc((size_t)(nparts * g->ndm + 1), sizeof *g->pmaps);
    if (!g->pmaps) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    for (int d = 0; d < g->ndm; d++) {
        gb_dictmap *m = &g->dm[d];
        if (!m->dict) PT_RETURN_NOT_OK(pt_column_new(NULL, PT_TYPE_UTF8, 64, 1024, &m->dict, err));
        for (int64_t p = 0; p < nparts; p++) {
            const pt_column *c = parts[p]->cols[m->col];
            const pt_column *dict = c->dict;
            int k = 0;
            while (k < m->ncache && m->cache_dict[k] != dict) k++;
            if (k == m->ncache) {
                if (m->ncache == m->cache_cap) {
                    int cap = m->cache_cap ? m->cache_cap * 2 : 8;
                    const pt_column **cd = pt_realloc(m->cache_dict, (size_t)cap * sizeof *cd);
                    if (!cd) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
                    m->cache_dict = cd;
                    int32_t **cm = pt_realloc(m->cache_map, (size_t)cap * sizeof *cm);
                    if (!cm) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
                    m->cache_map = cm;
                    m->cache_cap = cap;
                }
                int32_t *map = pt_malloc((size_t)(dict->length + 1) * sizeof *map);
                if (!map) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
                m->cache_dict[k] = dict;
                m->cache_map[k] = map;
                m->ncache++;
                for (int64_t i = 0; i < dict->length; i++) {
                    int64_t len;
                    const char *s = pt_column_str(dict, i, &len);
                    PT_RETURN_NOT_OK(dm_add(m, s, len, &map[i], err));
                }
            }
            g->pmaps[p * g->ndm + d] = m->cache_map[k];
        }
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Planning                                                                 */
/* ------------------------------------------------------------------------ */

static int dm_index(const gb_stream *g, int col) {
    for (int d = 0; d < g->ndm; d++)
        if (g->dm[d].col == col) return d;
    return -1;
}

/* The 16-byte image of a text of l <= GB_SSTR_MAX bytes at bytes + a: the
 * bytes, zero padded, and the length in the top byte. */
static inline void text_image(const uint8_t *bytes, int64_t bsize, int64_t a, int64_t l,
                              uint64_t *lo, uint64_t *hi) {
    uint64_t x = 0, y = 0;
    if (a + 16 <= bsize) {
        /* whole words, then the bytes past the text masked off */
        memcpy(&x, bytes + a, 8);
        memcpy(&y, bytes + a + 8, 8);
        x &= l >= 8 ? ~0ULL : ((uint64_t)1 << (8 * l)) - 1;
        y &= l > 8 ? ((uint64_t)1 << (8 * (l - 8))) - 1 : 0;
    } else {
        uint8_t b[16] = {0};
        memcpy(b, bytes + a, (size_t)l);
        memcpy(&x, b, 8);
        memcpy(&y, b + 8, 8);
    }
    *lo = x;
    *hi = y | (uint64_t)l << 56;
}

typedef uint8_t gb_v16 __attribute__((vector_size(16)));
typedef uint64_t gb_v2 __attribute__((vector_size(16)));

/* What planning measures of one key column in one partition: the range of
 * an int column; the longest value of a text column and, while it is at
 * most GB_SSTR_MAX bytes, the range of each byte of the values' images. */
typedef struct kstat {
    int64_t lo, hi;
    int any;
    gb_v16 bmin, bmax;
    int anyv;
} kstat;

static void int_range(const pt_column *c, kstat *st) {
    int64_t n = c->length, lo = INT64_MAX, hi = INT64_MIN;
    st->any = 0;
    if (c->null_count == n) return;
    if (c->type == PT_TYPE_INT32) {
        const int32_t *v = pt_column_i32(c);
        for (int64_t i = 0; i < n; i++) {
            if (c->null_count && !pt_column_is_valid(c, i)) continue;
            lo = v[i] < lo ? v[i] : lo;
            hi = v[i] > hi ? v[i] : hi;
        }
    } else {
        const int64_t *v = pt_column_i64(c);
        if (c->null_count == 0) {
            /* four independent chains: the scan runs at memory speed */
            int64_t l[4] = {lo, lo, lo, lo}, h[4] = {hi, hi, hi, hi}, i = 0;
            for (; i + 4 <= n; i += 4)
                for (int k = 0; k < 4; k++) {
                    l[k] = v[i + k] < l[k] ? v[i + k] : l[k];
                    h[k] = v[i + k] > h[k] ? v[i + k] : h[k];
                }
            for (; i < n; i++) {
                l[0] = v[i] < l[0] ? v[i] : l[0];
                h[0] = v[i] > h[0] ? v[i] : h[0];
            }
            for (int k = 0; k < 4; k++) {
                lo = l[k] < lo ? l[k] : lo;
                hi = h[k] > hi ? h[k] : hi;
            }
        } else {
            for (int64_t i = 0; i < n; i++) {
                if (!pt_column_is_valid(c, i)) continue;
                lo = v[i] < lo ? v[i] : lo;
                hi = v[i] > hi ? v[i] : hi;
            }
        }
    }
    st->lo = lo;
    st->hi = hi;
    st->any = 1;
}

static void max_len(const pt_column *c, kstat *st) {
    const int64_t *o = (const int64_t *)c->values->data + c->offset;
    int64_t mx = 0;
    for (int64_t i = 0; i < c->length; i++) {
        int64_t l = o[i + 1] - o[i];
        mx = l > mx ? l : mx;
    }
    st->hi = mx;
    st->any = 1;
}

/* The range of each byte of the images of the non-null values, while
 * they have at most GB_SSTR_MAX bytes; with `len`, the longest length too
 * (then a longer text ends the scan). */
static void text_bytes(const pt_column *c, kstat *st, int len) {
    const int64_t *o = (const int64_t *)c->values->data + c->offset;
    const uint8_t *bytes = c->bytes->data;
    const int64_t bsize = c->bytes->size;
    gb_v16 mn, mx;
    memset(&mn, 0xff, sizeof mn);
    memset(&mx, 0, sizeof mx);
    st->anyv = 0;
    int64_t mlen = 0;
    if (len) st->any = 1;
    for (int64_t i = 0; i < c->length; i++) {
        const int64_t l = o[i + 1] - o[i];
        if (len) {
            mlen = l > mlen ? l : mlen;
            if (l > GB_SSTR_MAX) {
                st->hi = l;
                st->anyv = 0;
                return;
            }
        }
        if (c->null_count && !pt_column_is_valid(c, i)) continue;
        uint64_t lo, hi;
        text_image(bytes, bsize, o[i], l, &lo, &hi);
        /* built in registers: a 16-byte load of two 8-byte stores would
         * stall on store forwarding */
        gb_v2 w2 = {lo, hi};
        gb_v16 v = (gb_v16)w2;
        gb_v16 lt = (gb_v16)(v < mn), gt = (gb_v16)(v > mx);
        mn = (v & lt) | (mn & ~lt);
        mx = (v & gt) | (mx & ~gt);
        st->anyv = 1;
    }
    if (len) st->hi = mlen;
    st->bmin = mn;
    st->bmax = mx;
}

typedef struct measure_job {
    const gb_stream *g;
    pt_table *const *parts;
    kstat *st;         /* [part * nkeys + key] */
    const int *bytes;  /* phase 1: the text keys whose bytes to measure */
    const int *fuse;   /* phase 0: text keys measured whole at once */
} measure_job;

/* One partition's key statistics (a task: the scans read every key value,
 * so they run in parallel). Phase 0: int ranges and text lengths; phase 1
 * (bytes set): the bytes of short texts. */
static pt_status measure_task(pt_task_ctx *tc, void *arg, int64_t p, pt_error *err) {
    (void)tc;
    (void)err;
    measure_job *mj = arg;
    const gb_stream *g = mj->g;
    for (int k = 0; k < g->nkeys; k++) {
        const pt_column *c = mj->parts[p]->cols[g->kc[k].col];
        kstat *st = &mj->st[p * g->nkeys + k];
        if (mj->bytes) {
            if (mj->bytes[k]) text_bytes(c, st, 0);
            continue;
        }
        st->any = 0;
        st->anyv = 0;
        if (c->type == PT_TYPE_INT32 || c->type == PT_TYPE_INT64) int_range(c, st);
        else if (c->type == PT_TYPE_UTF8 && mj->fuse[k]) text_bytes(c, st, 1);
        else if (c->type == PT_TYPE_UTF8) max_len(c, st);
    }
    return PT_OK;
}

/* Runs one phase of measure_task over the partitions and merges into kst. */
static pt_status measure(gb_stream *g, pt_table *const *parts, int64_t nparts, const int *bytes,
                         const int *fuse, kstat *kst, pt_error *err) {
    kstat *st = pt_calloc((size_t)(nparts * g->nkeys), sizeof *st);
    if (!st) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    measure_job mj = {g, parts, st, bytes, fuse};
    pt_status s = pt_parallel_for(pt_ctx_pool(g->ctx), nparts, measure_task, &mj, NULL, err);
    for (int64_t p = 0; s == PT_OK && p < nparts; p++)
        for (int k = 0; k < g->nkeys; k++) {
            const kstat *a = &st[p * g->nkeys + k];
            if (a->any) {
                kst[k].lo = a->lo < kst[k].lo ? a->lo : kst[k].lo;
                kst[k].hi = a->hi > kst[k].hi ? a->hi : kst[k].hi;
                kst[k].any = 1;
            }
            if (a->anyv) {
                gb_v16 lt = (gb_v16)(a->bmin < kst[k].bmin), gt = (gb_v16)(a->bmax > kst[k].bmax);
                kst[k].bmin = (a->bmin & lt) | (kst[k].bmin & ~lt);
                kst[k].bmax = (a->bmax & gt) | (kst[k].bmax & ~gt);
                kst[k].anyv = 1;
            }
        }
    pt_free(st);
    return s;
}

/* Makes text column kc a packed short text when the varying bytes of its
 * images (measured in st) number at most 2^32 combinations. */
static void plan_spack(gb_keycol *kc, const kstat *st) {
    uint8_t mn[16], mx[16];
    memcpy(mn, &st->bmin, 16);
    memcpy(mx, &st->bmax, 16);
    uint64_t prod = 1;
    kc->nv = 0;
    memset(kc->cimg, 0, sizeof kc->cimg);
    if (!st->anyv) {
        /* only nulls: the one code */
        memset(mn, 0, 16);
        memset(mx, 0, 16);
    }
    for (int b = 0; b < 16; b++) {
        if (mx[b] == mn[b]) {
            ((uint8_t *)kc->cimg)[b] = mn[b];
            continue;
        }
        uint64_t r = (uint64_t)mx[b] - mn[b] + 1;
        if (prod * r > ((uint64_t)1 << 32)) return; /* stays two words */
        kc->vpos[kc->nv] = (uint8_t)b;
        kc->vmin[kc->nv] = mn[b];
        kc->vrad[kc->nv] = r;
        kc->vmul[kc->nv] = prod;
        kc->vfd[kc->nv] = UINT64_MAX / r + 1;
        kc->nv++;
        prod *= r;
    }
    kc->spack = 1;
    kc->mode = GB_KM_PACKED;
    kc->card = prod + 1;
}

static void plan_layout(gb_stream *g, pt_table *const *parts, const kstat *kst, int spack,
                        int64_t total_rows);

/* With `parts` (the whole input known up front), ranges of int keys and the
 * sizes of dictionaries are measured, which is what makes direct mode and
 * compact words possible; the streaming form assumes full ranges. */
pt_status pt__gb_plan_keys(gb_stream *g, pt_table *const *parts, int64_t nparts, pt_error *err) {
    int64_t total_rows = 0;
    for (int64_t p = 0; parts && p < nparts; p++) total_rows += parts[p]->nrows;
    /* Per key: int range (lo, hi) or longest text (hi), over all parts. */
    kstat kst[GB_MAX_KEYS];
    for (int k = 0; k < g->nkeys; k++) {
        memset(&kst[k], 0, sizeof kst[k]);
        kst[k].lo = INT64_MAX;
        kst[k].hi = INT64_MIN;
        memset(&kst[k].bmin, 0xff, sizeof kst[k].bmin);
    }
    int want_bytes[GB_MAX_KEYS] = {0}, any_bytes = 0, fuse[GB_MAX_KEYS] = {0};
    if (parts && nparts > 0 && g->nkeys > 0) {
        /* When the other keys are known to be small (bools, small
         * dictionaries), the bytes of texts are measured in the same pass
         * as their lengths. */
        uint64_t known = 1;
        for (int k = 0; k < g->nkeys && known <= DIRECT_MAX; k++) {
            pt_type t = g->in->fields[g->kc[k].col].type;
            if (t == PT_TYPE_BOOL) known *= 3;
            else if (t == PT_TYPE_DICT) known *= (uint64_t)g->dm[dm_index(g, g->kc[k].col)].n + 1;
            else if (t != PT_TYPE_UTF8 && t != PT_TYPE_NULL) known = DIRECT_MAX + 1;
        }
        for (int k = 0; k < g->nkeys; k++)
            fuse[k] = known <= DIRECT_MAX && g->in->fields[g->kc[k].col].type == PT_TYPE_UTF8;
        PT_RETURN_NOT_OK(measure(g, parts, nparts, NULL, fuse, kst, err));
        /* Short texts may pack into a dense code (plan_spack), which pays
         * only when the whole key then gets a direct table; the bytes are
         * measured only when the other keys leave room for that. */
        unsigned __int128 other = 1;
        for (int k = 0; k < g->nkeys; k++) {
            pt_type t = g->in->fields[g->kc[k].col].type;
            uint64_t card = 0;
            if (t == PT_TYPE_BOOL) card = 3;
            else if (t == PT_TYPE_NULL) card = 1;
            else if (t == PT_TYPE_DICT) card = (uint64_t)g->dm[dm_index(g, g->kc[k].col)].n + 1;
            else if ((t == PT_TYPE_INT32 || t == PT_TYPE_INT64) && kst[k].any &&
                     (uint64_t)kst[k].hi - (uint64_t)kst[k].lo < ((uint64_t)1 << 40))
                card = (uint64_t)kst[k].hi - (uint64_t)kst[k].lo + 2;
            else if (t == PT_TYPE_UTF8 && kst[k].hi <= GB_SSTR_MAX) card = 2; /* at least */
            else card = (uint64_t)1 << 40;
            other *= card;
            if (other > ((unsigned __int128)1 << 64)) other = (unsigned __int128)1 << 64;
            want_bytes[k] = t == PT_TYPE_UTF8 && kst[k].hi <= GB_SSTR_MAX && !fuse[k];
            any_bytes |= t == PT_TYPE_UTF8 && kst[k].hi <= GB_SSTR_MAX;
        }
        if (!any_bytes || other > DIRECT_MAX) any_bytes = 0;
        else {
            int more = 0;
            for (int k = 0; k < g->nkeys; k++) more |= want_bytes[k];
            if (more) PT_RETURN_NOT_OK(measure(g, parts, nparts, want_bytes, NULL, kst, err));
        }
    }
    plan_layout(g, parts, kst, any_bytes, total_rows);
    if (!g->direct) {
        int spacked = 0;
        for (int k = 0; k < g->nkeys; k++) spacked |= g->kc[k].spack;
        if (spacked) plan_layout(g, parts, kst, 0, total_rows);
    }
    return PT_OK;
}

/* Chooses each key's mode and the layout of the key words. */
static void plan_layout(gb_stream *g, pt_table *const *parts, const kstat *kst, int spack,
                        int64_t total_rows) {
    for (int k = 0; k < g->nkeys; k++) {
        gb_keycol *kc = &g->kc[k];
        kc->type = g->in->fields[kc->col].type;
        kc->dm = -1;
        kc->base = 0;
        kc->spack = 0;
        switch (kc->type) {
        case PT_TYPE_NULL: kc->mode = GB_KM_PACKED; kc->card = 1; break;
        case PT_TYPE_BOOL: kc->mode = GB_KM_PACKED; kc->card = 3; break;
        case PT_TYPE_INT32:
        case PT_TYPE_INT64: {
            int64_t mn = kst[k].lo, mx = kst[k].hi;
            if (parts) {
                kc->mode = GB_KM_PACKED;
                if (!kst[k].any || mn > mx) {
                    kc->card = 1;
                } else if ((uint64_t)mx - (uint64_t)mn < ((uint64_t)1 << 62)) {
                    kc->base = mn;
                    kc->card = (uint64_t)mx - (uint64_t)mn + 2;
                } else {
                    kc->mode = GB_KM_FULL;
                }
            } else if (kc->type == PT_TYPE_INT32) {
                kc->mode = GB_KM_PACKED;
                kc->base = INT32_MIN;
                kc->card = ((uint64_t)1 << 32) + 1;
            } else {
                kc->mode = GB_KM_FULL;
            }
            break;
        }
        case PT_TYPE_DICT:
            kc->mode = GB_KM_PACKED;
            kc->dm = dm_index(g, kc->col);
            kc->card = parts ? (uint64_t)g->dm[kc->dm].n + 1 : ((uint64_t)1 << 31) + 1;
            break;
        case PT_TYPE_UTF8:
            kc->mode = GB_KM_STR;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            if (parts && kst[k].hi <= GB_SSTR_MAX) {
                kc->mode = GB_KM_SSTR;
                if (spack) plan_spack(kc, &kst[k]);
            }
#endif
            break;
        default: kc->mode = GB_KM_FULL; break;
        }
    }
    /* Choose which bounded columns share word 0: smallest first, each only
     * if the rest can still get their null flags. */
    int order[GB_MAX_KEYS], nc = 0, nflags = 0;
    for (int k = 0; k < g->nkeys; k++) {
        if (g->kc[k].mode == GB_KM_PACKED) order[nc++] = k;
        else nflags++;
    }
    for (int i = 1; i < nc; i++)
        for (int j = i; j > 0 && g->kc[order[j]].card < g->kc[order[j - 1]].card; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    unsigned __int128 prod = (unsigned __int128)1 << nflags;
    const unsigned __int128 lim = (unsigned __int128)UINT64_MAX;
    for (int i = 0; i < nc; i++) {
        gb_keycol *kc = &g->kc[order[i]];
        unsigned __int128 need = prod * kc->card;
        int rest = nc - 1 - i;
        if (rest < 64 && (need << rest) <= lim && need <= lim) {
            prod = need;
        } else {
            /* a short text that does not fit keeps its two words */
            kc->mode = kc->spack ? GB_KM_SSTR : GB_KM_FULL;
            kc->spack = 0;
            prod *= 2;
        }
    }
    /* Power-of-two radixes when they fit: decoding is then a shift and a
     * mask instead of a 64-bit division per key and group. */
    int bits = nflags;
    for (int i = 0; i < nc; i++) {
        const gb_keycol *kc = &g->kc[order[i]];
        if (kc->mode != GB_KM_PACKED) continue;
        int b = 0;
        while (b < 64 && ((uint64_t)1 << b) < kc->card) b++;
        bits += b;
    }
    g->pow2 = bits <= 63;
    for (int i = 0; g->pow2 && i < nc; i++) {
        gb_keycol *kc = &g->kc[order[i]];
        if (kc->mode != GB_KM_PACKED) continue;
        uint64_t c = 1;
        while (c < kc->card) c <<= 1;
        kc->card = c;
    }
    uint64_t mult = 1;
    g->kw = 1;
    g->nstr = 0;
    for (int k = 0; k < g->nkeys; k++) {
        gb_keycol *kc = &g->kc[k];
        kc->mult = mult;
        kc->shift = __builtin_ctzll(mult);
        if (kc->mode == GB_KM_PACKED) {
            mult *= kc->card;
        } else {
            mult *= 2;
            if (kc->mode == GB_KM_FULL) {
                kc->word = g->kw++;
            } else if (kc->mode == GB_KM_SSTR) {
                kc->word = g->kw;
                g->kw += 2;
            } else {
                kc->sidx = g->nstr++;
            }
        }
    }
    g->card = mult;
    g->ks = g->kw + 3 * g->nstr;
    g->rs = g->ks + g->sw;
    g->direct = 0;
    if (g->kw == 1 && g->nstr == 0 && mult <= DIRECT_MAX &&
        (parts == NULL ? g->nkeys == 0 || mult <= 4096 : (int64_t)mult <= 2 * total_rows + 4096)) {
        g->direct = 1;
        /* MEDIAN and COUNT_DISTINCT of numbers are computed apart
         * (groupby_holistic.c), which needs a second look at the input */
        for (int j = 0; j < g->naggs; j++)
            if (g->aggs[j].str || (g->aggs[j].holistic && (!parts || g->aggs[j].vk == GB_V_STR)))
                g->direct = 0;
    }
    g->hol_direct = 0;
    for (int j = 0; g->direct && j < g->naggs; j++) g->hol_direct |= g->aggs[j].holistic;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                 */
/* ------------------------------------------------------------------------ */

static inline uint64_t canon_f64(double v) {
    if (v == 0) v = 0.0;
    if (isnan(v)) return 0x7ff8000000000000ULL;
    uint64_t b;
    memcpy(&b, &v, 8);
    return b;
}

/* Fills L->w (row-major, kw words per row), L->sp/L->sl and L->h for rows
 * [r0, r0 + n) of t. Each column is one tight loop, specialised on type and
 * on whether it has nulls. */
void pt__gb_encode(const gb_stream *g, gb_local *L, const pt_table *t, const int32_t *const *maps,
                   int64_t r0, int64_t n) {
    const int kw = g->kw, ns = g->nstr;
    uint64_t *w = L->w;
    for (int64_t i = 0; i < n; i++) w[i * kw] = 0;
    for (int k = 0; k < g->nkeys; k++) {
        const gb_keycol *kc = &g->kc[k];
        const pt_column *c = t->cols[kc->col];
        const bool nulls = c->null_count > 0 || c->type == PT_TYPE_NULL;
        const uint64_t m = kc->mult;
        if (kc->mode == GB_KM_PACKED) {
            switch (kc->type) {
            case PT_TYPE_NULL: break;
            case PT_TYPE_BOOL:
                for (int64_t i = 0; i < n; i++) {
                    uint64_t code = pt_column_bool(c, r0 + i) ? 2 : 1;
                    if (nulls && !pt_column_is_valid(c, r0 + i)) code = 0;
                    w[i * kw] += code * m;
                }
                break;
            case PT_TYPE_INT32: {
                const int32_t *v = pt_column_i32(c) + r0;
                const uint64_t b = (uint64_t)kc->base - 1;
                if (!nulls)
                    for (int64_t i = 0; i < n; i++) w[i * kw] += ((uint64_t)(int64_t)v[i] - b) * m;
                else
                    for (int64_t i = 0; i < n; i++)
                        if (pt_column_is_valid(c, r0 + i))
                            w[i * kw] += ((uint64_t)(int64_t)v[i] - b) * m;
                break;
            }
            case PT_TYPE_INT64: {
                const int64_t *v = pt_column_i64(c) + r0;
                const uint64_t b = (uint64_t)kc->base - 1;
                if (!nulls)
                    for (int64_t i = 0; i < n; i++) w[i * kw] += ((uint64_t)v[i] - b) * m;
                else
                    for (int64_t i = 0; i < n; i++)
                        if (pt_column_is_valid(c, r0 + i)) w[i * kw] += ((uint64_t)v[i] - b) * m;
                break;
            }
            case PT_TYPE_UTF8: {
                const int64_t *o = (const int64_t *)c->values->data + c->offset + r0;
                const uint8_t *bytes = c->bytes->data;
                const int64_t bsize = c->bytes->size;
                const int nv = kc->nv;
                for (int64_t i = 0; i < n; i++) {
                    uint64_t im[2];
                    text_image(bytes, bsize, o[i], o[i + 1] - o[i], &im[0], &im[1]);
                    uint64_t code = 1;
                    for (int v = 0; v < nv; v++) {
                        const int b = kc->vpos[v];
                        uint64_t byte = (im[b >> 3] >> (8 * (b & 7))) & 0xff;
                        code += (byte - kc->vmin[v]) * kc->vmul[v];
                    }
                    if (nulls && !pt_column_is_valid(c, r0 + i)) code = 0;
                    w[i * kw] += code * m;
                }
                break;
            }
            case PT_TYPE_DICT: {
                const int32_t *v = (const int32_t *)c->values->data + c->offset + r0;
                const int32_t *map = maps[kc->dm];
                if (!nulls)
                    for (int64_t i = 0; i < n; i++) w[i * kw] += ((uint64_t)map[v[i]] + 1) * m;
                else
                    for (int64_t i = 0; i < n; i++)
                        if (pt_column_is_valid(c, r0 + i))
                            w[i * kw] += ((uint64_t)map[v[i]] + 1) * m;
                break;
            }
            default: break;
            }
        } else if (kc->mode == GB_KM_FULL) {
            uint64_t *wj = w + kc->word;
            for (int64_t i = 0; i < n; i++) {
                uint64_t x;
                switch (kc->type) {
                case PT_TYPE_BOOL: x = pt_column_bool(c, r0 + i); break;
                case PT_TYPE_INT32: x = (uint64_t)(int64_t)pt_column_i32(c)[r0 + i]; break;
                case PT_TYPE_INT64: x = (uint64_t)pt_column_i64(c)[r0 + i]; break;
                case PT_TYPE_FLOAT32: x = canon_f64(pt_column_f32(c)[r0 + i]); break;
                case PT_TYPE_FLOAT64: x = canon_f64(pt_column_f64(c)[r0 + i]); break;
                case PT_TYPE_DICT:
                    x = (uint64_t)maps[kc->dm][((const int32_t *)c->values->data)[c->offset + r0 + i]];
                    break;
                default: x = 0;
                }
                if (nulls && !pt_column_is_valid(c, r0 + i)) {
                    x = 0;
                    w[i * kw] += m;
                }
                wj[i * kw] = x;
            }
        } else if (kc->mode == GB_KM_SSTR) {
            const int64_t *o = (const int64_t *)c->values->data + c->offset + r0;
            const uint8_t *bytes = c->bytes->data;
            const int64_t bsize = c->bytes->size;
            uint64_t *wj = w + kc->word;
            for (int64_t i = 0; i < n; i++)
                text_image(bytes, bsize, o[i], o[i + 1] - o[i], &wj[i * kw], &wj[i * kw + 1]);
            if (nulls)
                for (int64_t i = 0; i < n; i++)
                    if (!pt_column_is_valid(c, r0 + i)) {
                        wj[i * kw] = wj[i * kw + 1] = 0;
                        w[i * kw] += m;
                    }
        } else {
            const int64_t *o = (const int64_t *)c->values->data + c->offset + r0;
            const char *bytes = (const char *)c->bytes->data;
            for (int64_t i = 0; i < n; i++) {
                L->sp[i * ns + kc->sidx] = bytes + o[i];
                L->sl[i * ns + kc->sidx] = (int32_t)(o[i + 1] - o[i]);
            }
            if (nulls)
                for (int64_t i = 0; i < n; i++)
                    if (!pt_column_is_valid(c, r0 + i)) {
                        L->sl[i * ns + kc->sidx] = 0;
                        w[i * kw] += m;
                    }
        }
    }
    if (g->direct) return;
    if (kw == 1 && ns == 0) {
        for (int64_t i = 0; i < n; i++) L->h[i] = pt_hash_u64(w[i] ^ KEY_SEED);
    } else if (ns == 0) {
        for (int64_t i = 0; i < n; i++) L->h[i] = gb_hash_words(w + i * kw, kw);
    } else {
        for (int64_t i = 0; i < n; i++) L->h[i] = pt__gb_hash_row(g, w + i * kw, L->sp + i * ns, L->sl + i * ns);
    }
}

uint64_t pt__gb_hash_row(const gb_stream *g, const uint64_t *w, const char *const *sp,
                         const int32_t *sl) {
    uint64_t h = gb_hash_words(w, g->kw);
    for (int s = 0; s < g->nstr; s++) h = pt_hash_bytes(sp[s], (size_t)sl[s], h);
    return h;
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                 */
/* ------------------------------------------------------------------------ */

static void set_null(pt_column *c, int64_t row) {
    __atomic_fetch_and(&c->validity->data[row >> 3], (uint8_t)~(1u << (row & 7)), __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->null_count, 1, __ATOMIC_RELAXED);
}

void pt__gb_decode_key(const gb_stream *g, int k, const gb_part *p, int64_t gi, pt_column *c,
                       int64_t row, int64_t *byte_pos) {
    const gb_keycol *kc = &g->kc[k];
    const uint64_t *w = p->words ? p->words + gi * g->rs : NULL;
    uint64_t w0 = w ? w[0] : (uint64_t)gi;
    bool null;
    uint64_t x = 0, img[2];
    if (kc->mode == GB_KM_PACKED) {
        uint64_t code = g->pow2 ? (w0 >> kc->shift) & (kc->card - 1) : (w0 / kc->mult) % kc->card;
        null = code == 0;
        if (!null) {
            x = code - 1;
            if (kc->type == PT_TYPE_INT32 || kc->type == PT_TYPE_INT64) x += (uint64_t)kc->base;
        }
    } else {
        null = g->pow2 ? (w0 >> kc->shift) & 1 : (w0 / kc->mult) % 2 == 1;
        if (kc->mode == GB_KM_FULL) x = w[kc->word];
    }
    switch (kc->type) {
    case PT_TYPE_NULL: break;
    case PT_TYPE_BOOL:
        if (!null && x) __atomic_fetch_or(&c->values->data[row >> 3], (uint8_t)(1u << (row & 7)), __ATOMIC_RELAXED);
        break;
    case PT_TYPE_INT32: ((int32_t *)c->values->data)[row] = (int32_t)(int64_t)x; break;
    case PT_TYPE_DICT: ((int32_t *)c->values->data)[row] = (int32_t)x; break;
    case PT_TYPE_INT64: ((int64_t *)c->values->data)[row] = (int64_t)x; break;
    case PT_TYPE_FLOAT64: memcpy((double *)c->values->data + row, &x, 8); break;
    case PT_TYPE_FLOAT32: {
        double d;
        memcpy(&d, &x, 8);
        ((float *)c->values->data)[row] = (float)d;
        break;
    }
    case PT_TYPE_UTF8: {
        int64_t *o = (int64_t *)c->values->data;
        int32_t len = 0;
        const char *str = NULL;
        if (null) {
        } else if (kc->mode == GB_KM_SSTR) {
            /* little endian: the two words hold the bytes in order */
            len = (int32_t)(w[kc->word + 1] >> 56);
            str = (const char *)(w + kc->word);
        } else if (kc->spack) {
            len = pt__gb_spack_decode(kc, x, img);
            str = (const char *)img;
        } else {
            str = gb_kstr(g, p, gi, kc->sidx, &len);
        }
        if (len) memcpy(c->bytes->data + *byte_pos, str, (size_t)len);
        *byte_pos += len;
        o[row + 1] = *byte_pos;
        break;
    }
    default: break;
    }
    if (null && c->type != PT_TYPE_NULL) {
        if (c->type == PT_TYPE_INT32 || c->type == PT_TYPE_DICT) ((int32_t *)c->values->data)[row] = 0;
        else if (c->type == PT_TYPE_INT64 || c->type == PT_TYPE_FLOAT64) ((int64_t *)c->values->data)[row] = 0;
        else if (c->type == PT_TYPE_FLOAT32) ((float *)c->values->data)[row] = 0;
        set_null(c, row);
    } else if (null) {
        __atomic_fetch_add(&c->null_count, 1, __ATOMIC_RELAXED);
    }
}

int pt__gb_spack_decode(const gb_keycol *kc, uint64_t x, uint64_t img[2]) {
    img[0] = kc->cimg[0];
    img[1] = kc->cimg[1];
    /* the digits of x (< 2^32) in the mixed radix, lowest first; a
     * multiply by the inverse of each radix divides exactly */
    uint32_t y = (uint32_t)x;
    for (int v = 0; v < kc->nv; v++) {
        uint32_t q = (uint32_t)(((unsigned __int128)kc->vfd[v] * y) >> 64);
        uint64_t d = y - q * (uint32_t)kc->vrad[v];
        y = q;
        const int b = kc->vpos[v];
        img[b >> 3] |= (d + kc->vmin[v]) << (8 * (b & 7));
    }
    int len = (int)(img[1] >> 56);
    img[1] &= ((uint64_t)1 << 56) - 1;
    return len;
}

int32_t pt__gb_key_len(const gb_stream *g, int k, const gb_part *p, int64_t gi) {
    const gb_keycol *kc = &g->kc[k];
    int32_t len = 0;
    if (kc->mode == GB_KM_SSTR) {
        len = (int32_t)(p->words[gi * g->rs + kc->word + 1] >> 56);
    } else if (kc->mode == GB_KM_STR) {
        (void)gb_kstr(g, p, gi, kc->sidx, &len);
    } else if (kc->spack) {
        uint64_t w0 = p->words ? p->words[gi * g->rs] : (uint64_t)gi, img[2];
        uint64_t code = g->pow2 ? (w0 >> kc->shift) & (kc->card - 1) : (w0 / kc->mult) % kc->card;
        if (code) len = pt__gb_spack_decode(kc, code - 1, img);
    }
    return len;
}
