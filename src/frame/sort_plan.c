/*
 * sort_plan.c - what the sort kernel knows about its input before sorting:
 * argument checks, per-partition column pointers, dictionary ranks, and the
 * row comparators used for small ranges, top-n and run merging.
 *
 * Dictionary columns are sorted by text, but comparing text per row is slow,
 * so every dictionary entry gets a dense rank by text once (equal texts, also
 * in different dictionaries, get equal ranks) and rows compare by rank.
 */
#include <math.h>
#include <string.h>

#include "frame/sort_internal.h"

pt_status pt__sort_check_keys(const char *fn, const pt_schema *s, int nkeys,
                              const pt__sort_key *keys, pt_error *err) {
    if (nkeys < 0)
        return pt_error_set(err, PT_EINVAL, "%s: nkeys must be >= 0, got %d", fn, nkeys);
    if (nkeys > 0 && !keys) return pt_error_set(err, PT_EINVAL, "%s: keys is NULL", fn);
    for (int k = 0; k < nkeys; k++) {
        if (keys[k].col < 0 || keys[k].col >= s->nfields)
            return pt_error_set(err, PT_EINVAL,
                                "%s: keys[%d].col = %d is out of range (the schema has %d columns)",
                                fn, k, keys[k].col, s->nfields);
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Dictionary ranks                                                         */
/* ------------------------------------------------------------------------ */

static int text_cmp(const char *a, int64_t la, const char *b, int64_t lb) {
    int64_t m = la < lb ? la : lb;
    int c = m > 0 ? memcmp(a, b, (size_t)m) : 0;
    if (c) return c;
    return (la > lb) - (la < lb);
}

static int entry_cmp(const pt__sort_dictmap *m, uint64_t a, uint64_t b) {
    int64_t la, lb;
    const char *sa = pt_column_str(m->dicts[a >> 32], (int64_t)(a & 0xffffffffu), &la);
    const char *sb = pt_column_str(m->dicts[b >> 32], (int64_t)(b & 0xffffffffu), &lb);
    return text_cmp(sa, la, sb, lb);
}

/* Top-down merge sort of entry ids; the order of equal texts does not
 * matter here (they get one rank), but a merge sort keeps the worst case. */
static void msort_entries(const pt__sort_dictmap *m, uint64_t *a, uint64_t *t, int64_t n) {
    if (n <= 16) {
        for (int64_t i = 1; i < n; i++) {
            uint64_t x = a[i];
            int64_t j = i;
            while (j > 0 && entry_cmp(m, a[j - 1], x) > 0) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
        return;
    }
    int64_t h = n / 2;
    msort_entries(m, a, t, h);
    msort_entries(m, a + h, t, n - h);
    if (entry_cmp(m, a[h - 1], a[h]) <= 0) return;
    memcpy(t, a, (size_t)h * sizeof *a);
    int64_t i = 0, j = h, o = 0;
    while (i < h && j < n) a[o++] = entry_cmp(m, a[j], t[i]) < 0 ? a[j++] : t[i++];
    while (i < h) a[o++] = t[i++];
}

void pt__sort_dictmap_reset(pt__sort_dictmap *m) {
    if (!m) return;
    if (m->rank)
        for (int64_t d = 0; d < m->ndicts; d++) pt_free(m->rank[d]);
    pt_free(m->rank);
    pt_free(m->dicts);
    pt_free(m->part_dict);
    pt_free(m->rank_src);
    memset(m, 0, sizeof *m);
}

pt_status pt__sort_dictmap_init(pt__sort_dictmap *m, pt_table *const *parts, int64_t nparts,
                                int col, bool with_src, pt_error *err) {
    memset(m, 0, sizeof *m);
    m->dicts = pt_calloc((size_t)nparts, sizeof *m->dicts);
    m->part_dict = pt_calloc((size_t)nparts, sizeof *m->part_dict);
    if (!m->dicts || !m->part_dict) goto oom;
    int64_t total = 0;
    for (int64_t p = 0; p < nparts; p++) {
        pt_column *d = parts[p]->cols[col]->dict;
        int64_t f = -1;
        /* Slices of one table share the dictionary object; checking the
         * latest one first makes that case O(1) per partition. */
        for (int64_t q = m->ndicts - 1; q >= 0 && f < 0; q--)
            if (m->dicts[q] == d) f = q;
        if (f < 0) {
            f = m->ndicts++;
            m->dicts[f] = d;
            total += d->length;
        }
        m->part_dict[p] = f;
    }
    if (total >= (INT64_C(1) << 31)) {
        pt__sort_dictmap_reset(m);
        return pt_error_set(err, PT_EUNSUPPORTED, "sort: dictionaries with %lld entries in all",
                            (long long)total);
    }
    m->rank = pt_calloc((size_t)m->ndicts, sizeof *m->rank);
    if (!m->rank) goto oom;
    for (int64_t d = 0; d < m->ndicts; d++) {
        m->rank[d] = pt_malloc((size_t)(m->dicts[d]->length ? m->dicts[d]->length : 1) * 4);
        if (!m->rank[d]) goto oom;
    }
    uint64_t *ids = pt_malloc((size_t)(total ? total : 1) * 8);
    uint64_t *tmp = pt_malloc((size_t)(total ? total : 1) * 8);
    if (!ids || !tmp) {
        pt_free(ids);
        pt_free(tmp);
        goto oom;
    }
    int64_t o = 0;
    for (int64_t d = 0; d < m->ndicts; d++)
        for (int64_t e = 0; e < m->dicts[d]->length; e++) ids[o++] = ((uint64_t)d << 32) | (uint64_t)e;
    msort_entries(m, ids, tmp, total);
    /* Compacts ids[0..r] to the first holder of each rank as it goes. */
    int64_t r = -1;
    for (int64_t i = 0; i < total; i++) {
        uint64_t x = ids[i];
        if (r < 0 || entry_cmp(m, ids[r], x) != 0) ids[++r] = x;
        m->rank[x >> 32][x & 0xffffffffu] = (uint32_t)r;
    }
    m->nranks = r + 1;
    pt_free(tmp);
    if (with_src) {
        m->rank_src = ids;
    } else {
        pt_free(ids);
    }
    return PT_OK;
oom:
    pt__sort_dictmap_reset(m);
    return pt_error_set(err, PT_ENOMEM, "sort: out of memory ranking dictionary entries");
}

/* ------------------------------------------------------------------------ */
/* Plan                                                                     */
/* ------------------------------------------------------------------------ */

void pt__sort_plan_reset(pt__sort_plan *pl) {
    if (!pl) return;
    if (pl->keys) {
        for (int k = 0; k < pl->nkeys; k++) {
            pt_free(pl->keys[k].cols);
            pt_free((void *)pl->keys[k].ranks);
            pt__sort_dictmap_reset(&pl->keys[k].dm);
        }
    }
    pt_free(pl->keys);
    pt_free(pl->starts);
    memset(pl, 0, sizeof *pl);
}

pt_status pt__sort_plan_init(pt__sort_plan *pl, const char *fn, pt_ctx *ctx,
                             pt_table *const *parts, int64_t nparts, int nkeys,
                             const pt__sort_key *keys, pt_error *err) {
    memset(pl, 0, sizeof *pl);
    if (!ctx) return pt_error_set(err, PT_EINVAL, "%s: ctx is NULL", fn);
    if (nparts < 1 || !parts)
        return pt_error_set(err, PT_EINVAL, "%s: parts must hold at least one partition (nparts=%lld)",
                            fn, (long long)nparts);
    if (nparts >= PT__SORT_MAXPARTS)
        return pt_error_set(err, PT_EUNSUPPORTED, "%s: nparts = %lld is more than %lld", fn,
                            (long long)nparts, (long long)PT__SORT_MAXPARTS);
    const pt_schema *s0 = parts[0] ? parts[0]->schema : NULL;
    if (!s0) return pt_error_set(err, PT_EINVAL, "%s: parts[0] is NULL", fn);
    for (int64_t p = 0; p < nparts; p++) {
        if (!parts[p]) return pt_error_set(err, PT_EINVAL, "%s: parts[%lld] is NULL", fn, (long long)p);
        const pt_schema *s = parts[p]->schema;
        if (s->nfields != s0->nfields)
            return pt_error_set(err, PT_EINVAL, "%s: parts[%lld] has %d columns, parts[0] has %d", fn,
                                (long long)p, s->nfields, s0->nfields);
        for (int i = 0; i < s->nfields; i++)
            if (s->fields[i].type != s0->fields[i].type)
                return pt_error_set(err, PT_EINVAL,
                                    "%s: parts[%lld] column %d '%s' is %s, parts[0] has %s", fn,
                                    (long long)p, i, s->fields[i].name,
                                    pt_type_name(s->fields[i].type),
                                    pt_type_name(s0->fields[i].type));
        if (parts[p]->nrows > (int64_t)PT__SORT_RMASK)
            return pt_error_set(err, PT_EUNSUPPORTED, "%s: parts[%lld] has %lld rows", fn,
                                (long long)p, (long long)parts[p]->nrows);
    }
    PT_RETURN_NOT_OK(pt__sort_check_keys(fn, s0, nkeys, keys, err));
    pl->ctx = ctx;
    pl->pool = pt_ctx_pool(ctx);
    pl->threads = pt_ctx_threads(ctx) > 0 ? pt_ctx_threads(ctx) : 1;
    pl->parts = parts;
    pl->nparts = nparts;
    pl->nkeys = nkeys;
    pl->starts = pt_malloc((size_t)(nparts + 1) * sizeof *pl->starts);
    pl->keys = pt_calloc((size_t)(nkeys ? nkeys : 1), sizeof *pl->keys);
    if (!pl->starts || !pl->keys) goto oom;
    pl->starts[0] = 0;
    for (int64_t p = 0; p < nparts; p++) pl->starts[p + 1] = pl->starts[p] + parts[p]->nrows;
    pl->nrows = pl->starts[nparts];
    for (int k = 0; k < nkeys; k++) {
        pt__sort_keyplan *kp = &pl->keys[k];
        kp->col = keys[k].col;
        kp->desc = keys[k].desc;
        kp->type = s0->fields[kp->col].type;
        kp->cols = pt_malloc((size_t)nparts * sizeof *kp->cols);
        if (!kp->cols) goto oom;
        for (int64_t p = 0; p < nparts; p++) {
            pt_column *c = parts[p]->cols[kp->col];
            kp->cols[p] = c;
            if (c->length > 0 && (c->null_count > 0 || c->type == PT_TYPE_NULL)) kp->has_nulls = true;
        }
        if (kp->type == PT_TYPE_DICT) {
            /* The same column as an earlier key shares nothing: ranks are
             * cheap next to the sort, and keys rarely repeat. */
            pt_status st = pt__sort_dictmap_init(&kp->dm, parts, nparts, kp->col, false, err);
            if (st != PT_OK) {
                pt__sort_plan_reset(pl);
                return st;
            }
            kp->ranks = pt_malloc((size_t)nparts * sizeof *kp->ranks);
            if (!kp->ranks) goto oom;
            for (int64_t p = 0; p < nparts; p++) kp->ranks[p] = kp->dm.rank[kp->dm.part_dict[p]];
        }
    }
    return PT_OK;
oom:
    pt__sort_plan_reset(pl);
    return pt_error_set(err, PT_ENOMEM, "%s: out of memory", fn);
}

/* ------------------------------------------------------------------------ */
/* Comparators                                                              */
/* ------------------------------------------------------------------------ */

/* Compares two non-null values of one type. Dictionary values compare by
 * rank when rank tables are given, else by text. */
static int cmp_values(pt_type t, const pt_column *a, int64_t i, const pt_column *b, int64_t j,
                      const uint32_t *ra, const uint32_t *rb, bool desc) {
    int c = 0;
    switch (t) {
    case PT_TYPE_NULL: return 0;
    case PT_TYPE_BOOL: {
        int x = pt_column_bool(a, i), y = pt_column_bool(b, j);
        c = (x > y) - (x < y);
        break;
    }
    case PT_TYPE_INT32: {
        int32_t x = pt_column_i32(a)[i], y = pt_column_i32(b)[j];
        c = (x > y) - (x < y);
        break;
    }
    case PT_TYPE_INT64: {
        int64_t x = pt_column_i64(a)[i], y = pt_column_i64(b)[j];
        c = (x > y) - (x < y);
        break;
    }
    case PT_TYPE_FLOAT32:
    case PT_TYPE_FLOAT64: {
        double x = t == PT_TYPE_FLOAT32 ? (double)pt_column_f32(a)[i] : pt_column_f64(a)[i];
        double y = t == PT_TYPE_FLOAT32 ? (double)pt_column_f32(b)[j] : pt_column_f64(b)[j];
        bool nx = isnan(x), ny = isnan(y);
        /* NaN after every number whatever the direction. */
        if (nx || ny) return (int)nx - (int)ny;
        c = (x > y) - (x < y);
        break;
    }
    case PT_TYPE_DICT: {
        int32_t x = pt_column_i32(a)[i], y = pt_column_i32(b)[j];
        if (ra && rb) {
            uint32_t p = ra[x], q = rb[y];
            c = (p > q) - (p < q);
            break;
        }
        if (a->dict == b->dict && x == y) return 0;
        /* fall through: compare the texts */
    }
    /* fall through */
    case PT_TYPE_UTF8: {
        int64_t la, lb;
        const char *sa = pt_column_str(a, i, &la);
        const char *sb = pt_column_str(b, j, &lb);
        c = text_cmp(sa, la, sb, lb);
        c = (c > 0) - (c < 0);
        break;
    }
    default: return 0;
    }
    return desc ? -c : c;
}

static inline int cmp_cells(pt_type t, const pt_column *a, int64_t i, const pt_column *b,
                            int64_t j, const uint32_t *ra, const uint32_t *rb, bool desc) {
    bool va = t != PT_TYPE_NULL && pt_column_is_valid(a, i);
    bool vb = t != PT_TYPE_NULL && pt_column_is_valid(b, j);
    if (!va || !vb) return (int)vb - (int)va; /* nulls last */
    return cmp_values(t, a, i, b, j, ra, rb, desc);
}

int pt__sort_cmp_ids(const pt__sort_plan *pl, int k, uint64_t a, uint64_t b) {
    int64_t pa = (int64_t)(a >> PT__SORT_PSHIFT), pb = (int64_t)(b >> PT__SORT_PSHIFT);
    int64_t ra = (int64_t)(a & PT__SORT_RMASK), rb = (int64_t)(b & PT__SORT_RMASK);
    for (; k < pl->nkeys; k++) {
        const pt__sort_keyplan *kp = &pl->keys[k];
        int c = cmp_cells(kp->type, kp->cols[pa], ra, kp->cols[pb], rb,
                          kp->ranks ? kp->ranks[pa] : NULL, kp->ranks ? kp->ranks[pb] : NULL,
                          kp->desc);
        if (c) return c;
    }
    return 0;
}

int pt__sort_cmp_rows(const pt_table *a, int64_t i, const pt_table *b, int64_t j, int nkeys,
                      const pt__sort_key *keys) {
    for (int k = 0; k < nkeys; k++) {
        const pt_column *ca = a->cols[keys[k].col], *cb = b->cols[keys[k].col];
        int c = cmp_cells(ca->type, ca, i, cb, j, NULL, NULL, keys[k].desc);
        if (c) return c;
    }
    return 0;
}
