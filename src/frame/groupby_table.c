/*
 * groupby_table.c - the group-by's hash tables ("parts"), their growth
 * against the memory budget, merging one part into another, and spilling
 * parts to disk and reading them back.
 *
 * A part is an open-addressing table over group ids (linear probing, load
 * <= 1/2) whose slots also hold the top 32 bits of the hash, so a probe
 * that misses rarely touches the group's key. Keys and aggregate states
 * are arrays indexed by group id. Every growth is reserved from the budget
 * first: a part that cannot grow leaves everything as it was and reports
 * PT_EBUDGET, which is the caller's cue to spill.
 *
 * A spilled part is a "unit": a native file with one row per group (hash,
 * key words, key strings, state columns) and, per MEDIAN/COUNT_DISTINCT
 * aggregate, a file of (group row, value) pairs.
 */
#include <string.h>

#include "frame/groupby.h"
#include "io/io_native.h"

#define MIN_GROUPS 64
#define MIN_ARENA 4096

static int64_t group_bytes(const gb_stream *g) {
    int64_t b = 8 + 8 * (int64_t)g->rs + 16; /* hash, record (key, states), 2 slots */
    for (int j = 0; j < g->naggs; j++) b += g->aggs[j].str ? 16 : 0;
    return b;
}

static void charge(gb_local *L, gb_part *p, int64_t delta) {
    p->charged += delta;
    if (L) __atomic_fetch_add(&L->bytes, delta, __ATOMIC_RELAXED);
}

void pt__gb_part_free(const gb_stream *g, gb_part *p) {
    pt_free(p->slots);
    pt_free(p->hash);
    pt_free(p->words);
    pt_free(p->present);
    pt_free(p->sblock);
    for (int j = 0; p->st && j < g->naggs; j++) {
        gb_state *s = &p->st[j];
        pt_free(s->soff);
        pt_free(s->slen);
        pt_free(s->scap);
        pt_free(p->pairs[j].p);
    }
    pt_free(p->st);
    pt_free(p->pairs);
    pt_free(p->arena);
    pt_mem_release(g->mem, p->charged);
    memset(p, 0, sizeof *p);
}

/* Grows *a from `old` to `cap` elements of `size` bytes, zeroing the new
 * ones. */
static int grow_zero(void *pa, int64_t old, int64_t cap, size_t size) {
    void **a = pa;
    void *n = pt_realloc(*a, (size_t)cap * size);
    if (!n) return 0;
    memset((char *)n + (size_t)old * size, 0, (size_t)(cap - old) * size);
    *a = n;
    return 1;
}

static pt_status part_alloc_meta(const gb_stream *g, gb_part *p, pt_error *err) {
    if (p->st) return PT_OK;
    p->st = pt_calloc((size_t)g->naggs + 1, sizeof *p->st);
    p->pairs = pt_calloc((size_t)g->naggs + 1, sizeof *p->pairs);
    if (!p->st || !p->pairs) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    return PT_OK;
}

void pt__gb_state_ptrs(const gb_stream *g, gb_part *p) {
    int64_t off = p->words ? g->ks : 0;
    p->ss = p->words ? g->rs : g->sw;
    int64_t *base = p->words ? (int64_t *)p->words : p->sblock;
    for (int j = 0; j < g->naggs; j++) {
        const gb_agg *a = &g->aggs[j];
        gb_state *s = &p->st[j];
        for (int k = 0; k < GB_NI; k++) s->I[k] = k < a->ni ? base + off++ : NULL;
        for (int k = 0; k < GB_NF; k++) s->F[k] = k < a->nf ? (double *)(base + off++) : NULL;
    }
}

static pt_status grow_groups(const gb_stream *g, gb_part *p, int64_t cap, int with_slots,
                             pt_error *err) {
    int64_t old = p->cap;
    int ok = grow_zero(&p->hash, old, cap, 8) && grow_zero(&p->words, old * g->rs, cap * g->rs, 8);
    if (ok) pt__gb_state_ptrs(g, p);
    for (int j = 0; ok && j < g->naggs; j++) {
        const gb_agg *a = &g->aggs[j];
        gb_state *s = &p->st[j];
        if (ok && a->str)
            ok = grow_zero(&s->soff, old, cap, 8) && grow_zero(&s->slen, old, cap, 4) &&
                 grow_zero(&s->scap, old, cap, 4);
    }
    if (!ok) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory growing a hash table");
    if (with_slots) {
        uint64_t nslots = (uint64_t)cap * 2;
        uint64_t *slots = pt_calloc((size_t)nslots, sizeof *slots);
        if (!slots) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory growing a hash table");
        uint64_t mask = nslots - 1;
        for (int64_t i = 0; i < p->n; i++) {
            uint64_t h = p->hash[i];
            uint64_t j = h & mask;
            while (slots[j]) j = (j + 1) & mask;
            slots[j] = (h >> 32 << 32) | (uint64_t)(i + 1);
        }
        pt_free(p->slots);
        p->slots = slots;
        p->mask = mask;
    }
    p->cap = cap;
    return PT_OK;
}

pt_status pt__gb_part_reserve(const gb_stream *g, gb_local *L, gb_part *p, int64_t groups,
                              int64_t arena, const int64_t *pairs, pt_error *err) {
    PT_RETURN_NOT_OK(part_alloc_meta(g, p, err));
    int64_t ncap = p->cap, acap = p->acap, delta = 0;
    if (p->n + groups > p->cap) {
        ncap = p->cap ? p->cap * 2 : MIN_GROUPS;
        while (ncap < p->n + groups) ncap *= 2;
        delta += (ncap - p->cap) * group_bytes(g);
    }
    if (p->alen + arena > p->acap) {
        acap = p->acap ? p->acap * 2 : MIN_ARENA;
        while (acap < p->alen + arena) acap *= 2;
        delta += acap - p->acap;
    }
    int64_t pcap[GB_MAX_AGGS];
    for (int j = 0; j < g->naggs; j++) {
        gb_pairs *pp = &p->pairs[j];
        pcap[j] = pp->cap;
        if (pairs && pairs[j] && pp->n + pairs[j] > pp->cap) {
            pcap[j] = pp->cap ? pp->cap * 2 : 256;
            while (pcap[j] < pp->n + pairs[j]) pcap[j] *= 2;
            delta += (pcap[j] - pp->cap) * (int64_t)sizeof(gb_pair);
        }
    }
    if (delta == 0) return PT_OK;
    PT_RETURN_NOT_OK(pt_mem_reserve(g->mem, delta, "group-by hash table", err));
    charge(L, p, delta);
    if (ncap > p->cap) PT_RETURN_NOT_OK(grow_groups(g, p, ncap, !g->direct, err));
    if (acap > p->acap) {
        char *a = pt_realloc(p->arena, (size_t)acap);
        if (!a) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory growing a text arena");
        p->arena = a;
        p->acap = acap;
    }
    for (int j = 0; j < g->naggs; j++) {
        gb_pairs *pp = &p->pairs[j];
        if (pcap[j] > pp->cap) {
            gb_pair *np = pt_realloc(pp->p, (size_t)pcap[j] * sizeof *np);
            if (!np) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
            pp->p = np;
            pp->cap = pcap[j];
        }
    }
    return PT_OK;
}

pt_status pt__gb_part_init_direct(const gb_stream *g, gb_local *L, gb_part *p, pt_error *err) {
    PT_RETURN_NOT_OK(part_alloc_meta(g, p, err));
    int64_t card = (int64_t)g->card;
    int64_t delta = card * (8 * (int64_t)g->sw + 1);
    PT_RETURN_NOT_OK(pt_mem_reserve(g->mem, delta, "group-by direct table", err));
    charge(L, p, delta);
    p->present = pt_calloc((size_t)card, 1);
    p->sblock = pt_calloc((size_t)card * (size_t)g->sw, 8);
    if (!p->present || !p->sblock) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    pt__gb_state_ptrs(g, p);
    p->n = p->cap = card;
    return PT_OK;
}

int64_t pt__gb_arena_put(gb_part *p, const char *s, int64_t len) {
    int64_t off = p->alen;
    if (len) memcpy(p->arena + off, s, (size_t)len);
    p->alen += len;
    return off;
}

/* Builds the key record of (w, sp, sl) into rec; long texts are left as
 * they are (compared through sp). */
static inline void make_rec(const gb_stream *g, const uint64_t *w, const int32_t *sl,
                            const char *const *sp, uint64_t *rec) {
    for (int j = 0; j < g->kw; j++) rec[j] = w[j];
    for (int s = 0; s < g->nstr; s++) {
        uint64_t *r = rec + g->kw + 3 * s;
        r[0] = (uint64_t)sl[s];
        r[1] = r[2] = 0;
        if (sl[s] <= GB_INLINE && sl[s] > 0) memcpy(r + 1, sp[s], (size_t)sl[s]);
    }
}

static inline bool key_eq(const gb_stream *g, const gb_part *p, int64_t gi, const uint64_t *rec,
                          const char *const *sp) {
    const uint64_t *gw = p->words + gi * g->rs;
    for (int j = 0; j < g->kw; j++)
        if (gw[j] != rec[j]) return false;
    for (int s = 0; s < g->nstr; s++) {
        const uint64_t *a = gw + g->kw + 3 * s, *b = rec + g->kw + 3 * s;
        if (a[0] != b[0]) return false;
        if (a[0] <= GB_INLINE) {
            if (a[1] != b[1] || a[2] != b[2]) return false;
        } else if (memcmp(p->arena + a[1], sp[s], (size_t)a[0])) {
            return false;
        }
    }
    return true;
}

uint32_t pt__gb_part_upsert(const gb_stream *g, gb_part *p, uint64_t h, const uint64_t *w,
                            const char *const *sp, const int32_t *sl) {
    const uint64_t tag = h >> 32 << 32;
    uint64_t rec[GB_MAX_KEYS * 3 + 1];
    make_rec(g, w, sl, sp, rec);
    for (uint64_t j = h & p->mask;; j = (j + 1) & p->mask) {
        uint64_t e = p->slots[j];
        if (!e) {
            int64_t gi = p->n++;
            p->hash[gi] = h;
            uint64_t *gw = p->words + gi * g->rs;
            memcpy(gw, rec, (size_t)g->ks * 8);
            for (int s = 0; s < g->nstr; s++)
                if (sl[s] > GB_INLINE) gw[g->kw + 3 * s + 1] = (uint64_t)pt__gb_arena_put(p, sp[s], sl[s]);
            p->slots[j] = tag | (uint64_t)(gi + 1);
            return (uint32_t)gi;
        }
        if ((e & ~0xffffffffULL) == tag) {
            int64_t gi = (int64_t)(e & 0xffffffffu) - 1;
            if (key_eq(g, p, gi, rec, sp)) return (uint32_t)gi;
        }
    }
}

pt_status pt__gb_local_new(gb_stream *g, int level, gb_local **out, pt_error *err) {
    gb_local *L = pt_calloc(1, sizeof *L);
    *out = L;
    if (!L) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    L->level = level;
    size_t n = GB_CHUNK;
    L->w = pt_malloc(n * 8 * (size_t)g->kw);
    L->h = pt_malloc(n * 8);
    L->gid = pt_malloc(n * 4);
    L->pi = pt_malloc(n);
    L->idx = pt_malloc(n * 2);
    L->nrp = g->direct ? 1 : GB_NPARTS;
    L->sp = pt_malloc(n * sizeof(char *) * (size_t)(g->nstr + 1));
    L->sl = pt_malloc(n * 4 * (size_t)(g->nstr + 1));
    L->iv = pt_malloc(n * 8);
    L->xv = pt_malloc(n * 8);
    L->xv2 = pt_malloc(n * 8);
    L->ok = pt_malloc(n);
    L->ok2 = pt_malloc(n);
    L->vsp = pt_malloc(n * sizeof(char *));
    L->vsl = pt_malloc(n * 4);
    if (!L->w || !L->h || !L->gid || !L->pi || !L->idx || !L->sp || !L->sl || !L->iv || !L->xv ||
        !L->xv2 || !L->ok || !L->ok2 || !L->vsp || !L->vsl)
        return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    return PT_OK;
}

void pt__gb_local_clear(gb_stream *g, gb_local *L) {
    for (int p = 0; p < GB_NPARTS; p++) pt__gb_part_free(g, &L->parts[p]);
    L->bytes = 0;
}

void pt__gb_local_free(gb_stream *g, gb_local *L) {
    if (!L) return;
    pt__gb_local_clear(g, L);
    pt_free(L->w);
    pt_free(L->h);
    pt_free(L->gid);
    pt_free(L->pi);
    pt_free(L->idx);
    pt_free(L->sp);
    pt_free(L->sl);
    pt_free(L->iv);
    pt_free(L->xv);
    pt_free(L->xv2);
    pt_free(L->ok);
    pt_free(L->ok2);
    pt_free(L->vsp);
    pt_free(L->vsl);
    pt_free(L);
}

/* ------------------------------------------------------------------------ */
/* Merging                                                                  */
/* ------------------------------------------------------------------------ */

pt_status pt__gb_merge_part(gb_stream *g, gb_local *dst, gb_part *src, int64_t *const *pstart,
                            int64_t *pos, pt_error *err) {
    const char *sp[GB_MAX_KEYS];
    int32_t sl[GB_MAX_KEYS];
    int64_t needp[GB_MAX_AGGS];
    uint32_t *map = NULL;
    int any_hol = 0;
    for (int j = 0; j < g->naggs; j++) any_hol |= g->aggs[j].holistic;
    if (any_hol && !pstart) {
        /* The caller has reserved everything: pairs move in bulk below. */
        map = pt_malloc((size_t)(src->n + 1) * sizeof *map);
        if (!map) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    }
    int ovf = 0;
    for (int64_t i = *pos; i < src->n; i++) {
        uint64_t h = src->hash[i];
        gb_part *dp = &dst->parts[gb_part_of(h, dst->level)];
        int64_t arena = 0;
        for (int s = 0; s < g->nstr; s++) {
            sp[s] = gb_kstr(g, src, i, s, &sl[s]);
            arena += sl[s] > GB_INLINE ? sl[s] : 0;
        }
        for (int j = 0; j < g->naggs; j++) {
            needp[j] = 0;
            if (g->aggs[j].str) arena += src->st[j].slen[i];
            if (g->aggs[j].holistic && pstart) {
                needp[j] = pstart[j][i + 1] - pstart[j][i];
                if (g->aggs[j].vk == GB_V_STR)
                    for (int64_t k = pstart[j][i]; k < pstart[j][i + 1]; k++)
                        arena += src->pairs[j].p[k].len;
            }
        }
        pt_status st = pt__gb_part_reserve(g, dst, dp, 1, arena, needp, err);
        if (st != PT_OK) {
            *pos = i;
            pt_free(map);
            if (ovf) __atomic_store_n(&dst->overflow, ovf, __ATOMIC_RELAXED);
            return st;
        }
        uint32_t gid = pt__gb_part_upsert(g, dp, h, src->words + i * g->rs, sp, sl);
        pt__gb_merge_state(g, dp, gid, src, i, &ovf);
        if (map) map[i] = gid;
        for (int j = 0; pstart && j < g->naggs; j++) {
            if (!g->aggs[j].holistic) continue;
            gb_pairs *dpp = &dp->pairs[j];
            for (int64_t k = pstart[j][i]; k < pstart[j][i + 1]; k++) {
                gb_pair q = src->pairs[j].p[k];
                if (g->aggs[j].vk == GB_V_STR) q.v = (uint64_t)pt__gb_arena_put(dp, src->arena + q.v, q.len);
                q.g = gid;
                dpp->p[dpp->n++] = q;
            }
        }
    }
    if (map) {
        /* Bulk mode is only used with a single destination part. */
        gb_part *dp = src->n ? &dst->parts[gb_part_of(src->hash[0], dst->level)] : NULL;
        for (int j = 0; dp && j < g->naggs; j++) {
            if (!g->aggs[j].holistic) continue;
            gb_pairs *dpp = &dp->pairs[j];
            for (int64_t k = 0; k < src->pairs[j].n; k++) {
                gb_pair q = src->pairs[j].p[k];
                if (g->aggs[j].vk == GB_V_STR) q.v = (uint64_t)pt__gb_arena_put(dp, src->arena + q.v, q.len);
                q.g = map[q.g];
                dpp->p[dpp->n++] = q;
            }
        }
        pt_free(map);
    }
    *pos = src->n;
    if (ovf) __atomic_store_n(&dst->overflow, ovf, __ATOMIC_RELAXED);
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Spilling                                                                 */
/* ------------------------------------------------------------------------ */

static pt_status col_i64(const int64_t *src, int64_t stride, int64_t n, pt_column **out,
                         pt_error *err) {
    PT_RETURN_NOT_OK(pt_column_new(NULL, PT_TYPE_INT64, n, 0, out, err));
    int64_t *d = (int64_t *)(*out)->values->data;
    if (stride == 1) memcpy(d, src, (size_t)n * 8);
    else
        for (int64_t i = 0; i < n; i++) d[i] = src[i * stride];
    (*out)->length = n;
    (*out)->values->size = n * 8;
    return PT_OK;
}

static pt_status col_str(const char *arena, const int64_t *off, const int32_t *len, int64_t stride,
                         int64_t n, pt_column **out, pt_error *err) {
    int64_t bytes = 0;
    for (int64_t i = 0; i < n; i++) bytes += len[i * stride];
    PT_RETURN_NOT_OK(pt_column_new(NULL, PT_TYPE_UTF8, n, bytes, out, err));
    int64_t *o = (int64_t *)(*out)->values->data;
    char *b = (char *)(*out)->bytes->data;
    int64_t pos = 0;
    o[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t l = len[i * stride];
        if (l) memcpy(b + pos, arena + off[i * stride], (size_t)l);
        pos += l;
        o[i + 1] = pos;
    }
    (*out)->length = n;
    (*out)->values->size = (n + 1) * 8;
    (*out)->bytes->size = bytes;
    return PT_OK;
}

/* A table from columns built one by one; frees everything on failure. */
typedef struct tbuild {
    int n;
    pt_column *cols[4 + GB_MAX_KEYS * 2 + GB_MAX_AGGS * (GB_NI + GB_NF + 1)];
    char *names[4 + GB_MAX_KEYS * 2 + GB_MAX_AGGS * (GB_NI + GB_NF + 1)];
    pt_type types[4 + GB_MAX_KEYS * 2 + GB_MAX_AGGS * (GB_NI + GB_NF + 1)];
} tbuild;

static pt_status tb_add(tbuild *tb, const char *name, pt_column *c, pt_error *err) {
    tb->cols[tb->n] = c;
    tb->types[tb->n] = c->type;
    tb->names[tb->n] = pt_strdup(name);
    tb->n++;
    if (!tb->names[tb->n - 1]) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    return PT_OK;
}

static void tb_free(tbuild *tb) {
    for (int i = 0; i < tb->n; i++) {
        pt_column_release(tb->cols[i]);
        pt_free(tb->names[i]);
    }
    tb->n = 0;
}

/* Turns the built columns into a table (consuming them). */
static pt_status tb_table(tbuild *tb, pt_table **out, pt_error *err) {
    pt_schema *sc = NULL;
    pt_status s = pt_schema_new(tb->n, (const char *const *)tb->names, tb->types, &sc, err);
    for (int i = 0; i < tb->n; i++) pt_free(tb->names[i]);
    if (s != PT_OK) {
        for (int i = 0; i < tb->n; i++) pt_column_release(tb->cols[i]);
        tb->n = 0;
        return s;
    }
    s = pt_table_new(sc, tb->cols, out, err);
    tb->n = 0;
    return s;
}

static pt_status ensure_spill_dir(gb_stream *g, pt_error *err) {
    pthread_mutex_lock(&g->mu);
    pt_status s = PT_OK;
    if (!g->sd) {
        pt__spill_dir *sd = NULL;
        s = pt__spill_dir_new_ctx(g->ctx, &sd, err);
        g->sd = sd;
    }
    g->spilled = 1;
    pthread_mutex_unlock(&g->mu);
    return s;
}

static pt_status key_col(const gb_stream *g, const gb_part *p, int k, pt_column **out,
                         pt_error *err) {
    int64_t n = p->n, bytes = 0;
    for (int64_t i = 0; i < n; i++) bytes += (int64_t)p->words[i * g->rs + g->kw + 3 * k];
    PT_RETURN_NOT_OK(pt_column_new(NULL, PT_TYPE_UTF8, n, bytes, out, err));
    int64_t *o = (int64_t *)(*out)->values->data, pos = 0;
    o[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t l;
        const char *str = gb_kstr(g, p, i, k, &l);
        if (l) memcpy((*out)->bytes->data + pos, str, (size_t)l);
        pos += l;
        o[i + 1] = pos;
    }
    (*out)->length = n;
    (*out)->values->size = (n + 1) * 8;
    (*out)->bytes->size = bytes;
    return PT_OK;
}

/* The group table of part p: hash, key words, key strings, states. */
static pt_status group_table(const gb_stream *g, const gb_part *p, pt_table **out, pt_error *err) {
    int64_t n = p->n;
    tbuild tb;
    tb.n = 0;
    char name[64];
    pt_column *c;
    pt_status s = col_i64((const int64_t *)p->hash, 1, n, &c, err);
    if (s == PT_OK) s = tb_add(&tb, "h", c, err);
    for (int j = 0; s == PT_OK && j < g->kw; j++) {
        snprintf(name, sizeof name, "w%d", j);
        s = col_i64((const int64_t *)p->words + j, g->rs, n, &c, err);
        if (s == PT_OK) s = tb_add(&tb, name, c, err);
    }
    for (int k = 0; s == PT_OK && k < g->nstr; k++) {
        snprintf(name, sizeof name, "k%d", k);
        s = key_col(g, p, k, &c, err);
        if (s == PT_OK) s = tb_add(&tb, name, c, err);
    }
    for (int j = 0; s == PT_OK && j < g->naggs; j++) {
        const gb_agg *a = &g->aggs[j];
        for (int k = 0; s == PT_OK && k < a->ni; k++) {
            snprintf(name, sizeof name, "a%di%d", j, k);
            s = col_i64(p->st[j].I[k], p->ss, n, &c, err);
            if (s == PT_OK) s = tb_add(&tb, name, c, err);
        }
        for (int k = 0; s == PT_OK && k < a->nf; k++) {
            /* doubles travel as their bits: exact, and one column type */
            snprintf(name, sizeof name, "a%df%d", j, k);
            s = col_i64((const int64_t *)p->st[j].F[k], p->ss, n, &c, err);
            if (s == PT_OK) s = tb_add(&tb, name, c, err);
        }
        if (s == PT_OK && a->str) {
            snprintf(name, sizeof name, "a%ds", j);
            s = col_str(p->arena, p->st[j].soff, p->st[j].slen, 1, n, &c, err);
            if (s == PT_OK) s = tb_add(&tb, name, c, err);
        }
    }
    if (s == PT_OK) return tb_table(&tb, out, err);
    tb_free(&tb);
    return s;
}

/* The (group row, value) pairs of holistic aggregate j of part p. */
static pt_status pairs_table(const gb_stream *g, const gb_part *p, int j, pt_table **out,
                             pt_error *err) {
    const gb_agg *a = &g->aggs[j];
    const gb_pairs *pp = &p->pairs[j];
    int64_t n = pp->p ? pp->n : 0;
    tbuild tb;
    tb.n = 0;
    pt_column *cg = NULL, *cv = NULL;
    pt_status s = pt_column_new(NULL, PT_TYPE_INT64, n, 0, &cg, err);
    if (s == PT_OK) {
        for (int64_t k = 0; k < n; k++) ((int64_t *)cg->values->data)[k] = pp->p[k].g;
        cg->length = n;
        cg->values->size = n * 8;
        s = tb_add(&tb, "g", cg, err);
    }
    if (s == PT_OK && a->vk == GB_V_STR) {
        int64_t bytes = 0;
        for (int64_t k = 0; k < n; k++) bytes += pp->p[k].len;
        s = pt_column_new(NULL, PT_TYPE_UTF8, n, bytes, &cv, err);
        if (s == PT_OK) {
            int64_t *o = (int64_t *)cv->values->data, pos = 0;
            o[0] = 0;
            for (int64_t k = 0; k < n; k++) {
                if (pp->p[k].len) memcpy(cv->bytes->data + pos, p->arena + pp->p[k].v, pp->p[k].len);
                pos += pp->p[k].len;
                o[k + 1] = pos;
            }
            cv->length = n;
            cv->values->size = (n + 1) * 8;
            cv->bytes->size = bytes;
        }
    } else if (s == PT_OK) {
        s = pt_column_new(NULL, PT_TYPE_INT64, n, 0, &cv, err);
        if (s == PT_OK) {
            for (int64_t k = 0; k < n; k++) ((int64_t *)cv->values->data)[k] = (int64_t)pp->p[k].v;
            cv->length = n;
            cv->values->size = n * 8;
        }
    }
    if (s == PT_OK) s = tb_add(&tb, "v", cv, err);
    if (s == PT_OK) return tb_table(&tb, out, err);
    tb_free(&tb);
    return s;
}

static void sfile_unref(gb_stream *g, gb_sfile *f) {
    if (!f || --f->refs > 0) return;
    if (g->sd) pt__spill_remove((pt__spill_dir *)g->sd, f->path);
    pt_free(f->path);
    pt_free(f);
}

void pt__gb_unit_free(gb_stream *g, gb_unit *u) {
    sfile_unref(g, u->gf);
    for (int j = 0; u->pf && j < g->naggs; j++) sfile_unref(g, u->pf[j]);
    pt_free(u->pf);
    memset(u, 0, sizeof *u);
}

/* One open spill file being written. */
typedef struct swriter {
    pt_native_writer *w;
    gb_sfile *f;
} swriter;

static pt_status sw_batch(gb_stream *g, swriter *sw, pt_table *t, pt_error *err) {
    pt_status s = PT_OK;
    if (!sw->w) {
        char path[4096];
        s = pt__spill_file_path((pt__spill_dir *)g->sd, "gb", path, sizeof path, err);
        sw->f = pt_calloc(1, sizeof *sw->f);
        if (s == PT_OK && (!sw->f || !(sw->f->path = pt_strdup(path))))
            s = pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
        pt_native_write_opts o;
        pt_native_write_opts_init(&o);
        o.durable = 0;
        if (s == PT_OK) s = pt_native_open_write(path, t->schema, &o, &sw->w, err);
    }
    if (s == PT_OK) s = pt_native_write_batch(sw->w, t, err);
    pt_table_free(t);
    return s;
}

static pt_status sw_close(gb_stream *g, swriter *sw, pt_status s, pt_error *err) {
    if (!sw->w) return s;
    pt__spill_add_written((pt__spill_dir *)g->sd, pt_native_writer_bytes(sw->w));
    if (s == PT_OK) s = pt_native_close_write(sw->w, err);
    else pt_native_abort_write(sw->w);
    sw->w = NULL;
    return s;
}

pt_status pt__gb_spill_local(gb_stream *g, gb_local *L, gb_spillset *ss, pt_error *err) {
    int any = 0;
    for (int p = 0; p < GB_NPARTS; p++) any |= L->parts[p].n > 0;
    pt_status s = PT_OK;
    if (any) s = ensure_spill_dir(g, err);
    swriter gw = {NULL, NULL}, pw[GB_MAX_AGGS];
    memset(pw, 0, sizeof(swriter) * (size_t)g->naggs);
    gb_unit units[GB_NPARTS];
    int which[GB_NPARTS], nu = 0;
    for (int p = 0; any && s == PT_OK && p < GB_NPARTS; p++) {
        gb_part *pp = &L->parts[p];
        if (pp->n == 0) continue;
        pt_table *t = NULL;
        s = group_table(g, pp, &t, err);
        if (s == PT_OK) s = sw_batch(g, &gw, t, err);
        for (int j = 0; s == PT_OK && j < g->naggs; j++) {
            if (!g->aggs[j].holistic) continue;
            s = pairs_table(g, pp, j, &t, err);
            if (s == PT_OK) s = sw_batch(g, &pw[j], t, err);
        }
        if (s != PT_OK) break;
        memset(&units[nu], 0, sizeof units[nu]);
        units[nu].batch = nu;
        which[nu++] = p;
        pt__gb_part_free(g, pp);
    }
    s = sw_close(g, &gw, s, err);
    for (int j = 0; j < g->naggs; j++) s = sw_close(g, &pw[j], s, err);
    /* Hand the units to the spill set; each refers to the shared files. */
    if (s == PT_OK) {
        pthread_mutex_lock(&g->mu);
        for (int k = 0; s == PT_OK && k < nu; k++) {
            gb_unit *u = &units[k];
            int w = which[k];
            u->pf = pt_calloc((size_t)g->naggs + 1, sizeof *u->pf);
            if (!u->pf) {
                s = pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
                break;
            }
            u->gf = gw.f;
            gw.f->refs++;
            for (int j = 0; j < g->naggs; j++)
                if (pw[j].f) {
                    u->pf[j] = pw[j].f;
                    pw[j].f->refs++;
                }
            if (ss->n[w] == ss->cap[w]) {
                int64_t cap = ss->cap[w] ? ss->cap[w] * 2 : 16;
                gb_unit *nu2 = pt_realloc(ss->u[w], (size_t)cap * sizeof *nu2);
                if (!nu2) {
                    pthread_mutex_unlock(&g->mu);
                    pt__gb_unit_free(g, u);
                    pthread_mutex_lock(&g->mu);
                    s = pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
                    break;
                }
                ss->u[w] = nu2;
                ss->cap[w] = cap;
            }
            ss->u[w][ss->n[w]++] = *u;
        }
        pthread_mutex_unlock(&g->mu);
    }
    /* Files nobody refers to (after a failure) are removed now; the others
     * go when their last unit has been read. */
    if (gw.f && gw.f->refs == 0) {
        gw.f->refs = 1;
        sfile_unref(g, gw.f);
    }
    for (int j = 0; j < g->naggs; j++)
        if (pw[j].f && pw[j].f->refs == 0) {
            pw[j].f->refs = 1;
            sfile_unref(g, pw[j].f);
        }
    for (int p = 0; p < GB_NPARTS; p++) pt__gb_part_free(g, &L->parts[p]);
    L->bytes = 0;
    return s;
}

void pt__gb_spillset_free(gb_stream *g, gb_spillset *ss) {
    for (int p = 0; p < GB_NPARTS; p++) {
        for (int64_t i = 0; i < ss->n[p]; i++) pt__gb_unit_free(g, &ss->u[p][i]);
        pt_free(ss->u[p]);
    }
    memset(ss, 0, sizeof *ss);
}

static pt_status read_unit_batch(gb_stream *g, gb_sfile *f, int batch, pt_table **out,
                                 pt_error *err) {
    pt_native_reader *r = NULL;
    PT_RETURN_NOT_OK(pt_native_open_read(NULL, f->path, &r, err));
    pt_status s = pt_native_read_batch(r, batch, NULL, 0, out, err);
    pt__spill_add_read((pt__spill_dir *)g->sd, pt_native_reader_bytes(r));
    pt_native_close_read(r);
    return s;
}

/* Copies a group table (and pairs tables) back into a part that is not
 * charged to the budget: units are a small share of it by construction. */
pt_status pt__gb_unit_load(gb_stream *g, gb_unit *u, gb_part *p, pt_error *err) {
    memset(p, 0, sizeof *p);
    pt_table *t = NULL;
    PT_RETURN_NOT_OK(read_unit_batch(g, u->gf, u->batch, &t, err));
    int64_t n = t->nrows;
    pt_status s = part_alloc_meta(g, p, err);
    int64_t abytes = 0;
    for (int c = 0; c < t->schema->nfields; c++)
        if (t->cols[c]->type == PT_TYPE_UTF8) abytes += t->cols[c]->bytes->size;
    int64_t pbytes[GB_MAX_AGGS];
    pt_table *pt[GB_MAX_AGGS];
    memset(pt, 0, sizeof(pt_table *) * (size_t)g->naggs);
    for (int j = 0; s == PT_OK && j < g->naggs; j++) {
        pbytes[j] = 0;
        if (!u->pf || !u->pf[j]) continue;
        s = read_unit_batch(g, u->pf[j], u->batch, &pt[j], err);
        if (s == PT_OK) {
            pbytes[j] = pt[j]->nrows;
            if (pt[j]->cols[1]->type == PT_TYPE_UTF8) abytes += pt[j]->cols[1]->bytes->size;
        }
    }
    if (s == PT_OK) s = grow_groups(g, p, n > 0 ? n : 1, 0, err);
    if (s == PT_OK && abytes > 0) {
        p->arena = pt_malloc((size_t)abytes);
        if (!p->arena) s = pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
        p->acap = abytes;
    }
    for (int j = 0; s == PT_OK && j < g->naggs; j++) {
        if (!pt[j]) continue;
        p->pairs[j].p = pt_malloc((size_t)(pbytes[j] + 1) * sizeof(gb_pair));
        if (!p->pairs[j].p) s = pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
        p->pairs[j].cap = pbytes[j] + 1;
    }
    if (s == PT_OK) {
        int c = 0;
        memcpy(p->hash, pt_column_i64(t->cols[c++]), (size_t)n * 8);
        for (int j = 0; j < g->kw; j++, c++) {
            const int64_t *w = pt_column_i64(t->cols[c]);
            for (int64_t i = 0; i < n; i++) p->words[i * g->rs + j] = (uint64_t)w[i];
        }
        for (int k = 0; k < g->nstr; k++, c++) {
            const pt_column *col = t->cols[c];
            for (int64_t i = 0; i < n; i++) {
                int64_t len;
                const char *str = pt_column_str(col, i, &len);
                uint64_t *r = p->words + i * g->rs + g->kw + 3 * k;
                r[0] = (uint64_t)len;
                r[1] = r[2] = 0;
                if (len > GB_INLINE) r[1] = (uint64_t)pt__gb_arena_put(p, str, len);
                else if (len > 0) memcpy(r + 1, str, (size_t)len);
            }
        }
        for (int j = 0; j < g->naggs; j++) {
            const gb_agg *a = &g->aggs[j];
            gb_state *st = &p->st[j];
            for (int k = 0; k < a->ni + a->nf; k++, c++) {
                int64_t *d = k < a->ni ? st->I[k] : (int64_t *)st->F[k - a->ni];
                const int64_t *v = pt_column_i64(t->cols[c]);
                for (int64_t i = 0; i < n; i++) d[i * p->ss] = v[i];
            }
            if (a->str) {
                const pt_column *col = t->cols[c++];
                for (int64_t i = 0; i < n; i++) {
                    int64_t len;
                    const char *str = pt_column_str(col, i, &len);
                    st->soff[i] = pt__gb_arena_put(p, str, len);
                    st->slen[i] = st->scap[i] = (int32_t)len;
                }
            }
            if (pt[j]) {
                const int64_t *gg = pt_column_i64(pt[j]->cols[0]);
                const pt_column *vc = pt[j]->cols[1];
                gb_pairs *pp = &p->pairs[j];
                for (int64_t k = 0; k < pt[j]->nrows; k++) {
                    gb_pair q;
                    q.g = (uint32_t)gg[k];
                    if (vc->type == PT_TYPE_UTF8) {
                        int64_t len;
                        const char *str = pt_column_str(vc, k, &len);
                        q.v = (uint64_t)pt__gb_arena_put(p, str, len);
                        q.len = (uint32_t)len;
                    } else {
                        q.v = (uint64_t)pt_column_i64(vc)[k];
                        q.len = 0;
                    }
                    pp->p[pp->n++] = q;
                }
            }
        }
        p->n = n;
    }
    pt_table_free(t);
    for (int j = 0; j < g->naggs; j++) pt_table_free(pt[j]);
    /* this unit's batches are read: its files may go */
    pt__gb_unit_free(g, u);
    if (s != PT_OK) pt__gb_part_free(g, p);
    return s;
}
