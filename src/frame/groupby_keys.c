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
 */
#include <math.h>
#include <string.h>

#include "frame/groupby.h"

#define KEY_SEED 0x6772706279000001ULL
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

/* Min and max of an int column over all partitions; false when no value. */
static bool int_range(pt_table *const *parts, int64_t nparts, int col, int64_t *mn, int64_t *mx) {
    bool any = false;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (int64_t p = 0; p < nparts; p++) {
        const pt_column *c = parts[p]->cols[col];
        int64_t n = c->length;
        if (c->null_count == n) continue;
        if (c->type == PT_TYPE_INT32) {
            const int32_t *v = pt_column_i32(c);
            for (int64_t i = 0; i < n; i++) {
                if (c->null_count && !pt_column_is_valid(c, i)) continue;
                if (v[i] < lo) lo = v[i];
                if (v[i] > hi) hi = v[i];
            }
        } else {
            const int64_t *v = pt_column_i64(c);
            if (c->null_count == 0) {
                for (int64_t i = 0; i < n; i++) {
                    lo = v[i] < lo ? v[i] : lo;
                    hi = v[i] > hi ? v[i] : hi;
                }
            } else {
                for (int64_t i = 0; i < n; i++) {
                    if (!pt_column_is_valid(c, i)) continue;
                    lo = v[i] < lo ? v[i] : lo;
                    hi = v[i] > hi ? v[i] : hi;
                }
            }
        }
        any = true;
    }
    *mn = lo;
    *mx = hi;
    return any && lo <= hi;
}

/* With `parts` (the whole input known up front), ranges of int keys and the
 * sizes of dictionaries are measured, which is what makes direct mode and
 * compact words possible; the streaming form assumes full ranges. */
pt_status pt__gb_plan_keys(gb_stream *g, pt_table *const *parts, int64_t nparts, pt_error *err) {
    int64_t total_rows = 0;
    for (int64_t p = 0; parts && p < nparts; p++) total_rows += parts[p]->nrows;
    for (int k = 0; k < g->nkeys; k++) {
        gb_keycol *kc = &g->kc[k];
        kc->type = g->in->fields[kc->col].type;
        kc->dm = -1;
        kc->base = 0;
        switch (kc->type) {
        case PT_TYPE_NULL: kc->mode = GB_KM_PACKED; kc->card = 1; break;
        case PT_TYPE_BOOL: kc->mode = GB_KM_PACKED; kc->card = 3; break;
        case PT_TYPE_INT32:
        case PT_TYPE_INT64: {
            int64_t mn, mx;
            if (parts) {
                kc->mode = GB_KM_PACKED;
                if (!int_range(parts, nparts, kc->col, &mn, &mx)) {
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
        case PT_TYPE_UTF8: kc->mode = GB_KM_STR; break;
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
            kc->mode = GB_KM_FULL;
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
    g->pow2 = bits <= 62;
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
            if (kc->mode == GB_KM_FULL) kc->word = g->kw++;
            else kc->sidx = g->nstr++;
        }
    }
    g->card = mult;
    g->ks = g->kw + 3 * g->nstr;
    g->direct = 0;
    if (g->kw == 1 && g->nstr == 0 && mult <= DIRECT_MAX &&
        (parts == NULL ? g->nkeys == 0 || mult <= 4096 : (int64_t)mult <= 2 * total_rows + 4096)) {
        g->direct = 1;
        for (int j = 0; j < g->naggs; j++)
            if (g->aggs[j].holistic || g->aggs[j].str) g->direct = 0;
    }
    return PT_OK;
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
    } else {
        for (int64_t i = 0; i < n; i++) L->h[i] = pt__gb_hash_row(g, w + i * kw, L->sp + i * ns, L->sl + i * ns);
    }
}

uint64_t pt__gb_hash_row(const gb_stream *g, const uint64_t *w, const char *const *sp,
                         const int32_t *sl) {
    uint64_t h = pt_hash_u64(w[0] ^ KEY_SEED);
    for (int j = 1; j < g->kw; j++) h = pt_hash_u64(h ^ w[j]) + (uint64_t)j;
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
    const uint64_t *w = p->words ? p->words + gi * g->ks : NULL;
    uint64_t w0 = w ? w[0] : (uint64_t)gi;
    bool null;
    uint64_t x = 0;
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
        const char *str = null ? NULL : gb_kstr(g, p, gi, kc->sidx, &len);
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
