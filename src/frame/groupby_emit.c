/*
 * groupby_emit.c - writes a range of a table's groups into one result
 * column: one tight loop per column for the common shapes (packed int and
 * dict keys, full-word keys, short texts, counts, sums, means, numeric
 * min/max), and the per-group decoders of groupby_keys.c / groupby_agg.c
 * for everything else. With millions of groups the result is as large as
 * the input, and a call per value and column cost more than the
 * aggregation itself.
 */
#include <string.h>

#include "frame/groupby.h"

static void set_null(pt_column *c, int64_t row) {
    __atomic_fetch_and(&c->validity->data[row >> 3], (uint8_t)~(1u << (row & 7)), __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->null_count, 1, __ATOMIC_RELAXED);
}

/* Key column k; false when the shape has no fast loop. */
static bool emit_key(const gb_stream *g, int k, const gb_part *p, int64_t lo, int64_t hi,
                     pt_column *col, int64_t row0, int64_t *byte_pos, int64_t byte_end) {
    const gb_keycol *kc = &g->kc[k];
    const uint64_t *W = p->words;
    const int64_t ks = g->rs;
    const int sh = kc->shift;
    if (!W || !g->pow2) return false;
    if (kc->mode == GB_KM_PACKED &&
        (kc->type == PT_TYPE_INT64 || kc->type == PT_TYPE_INT32 || kc->type == PT_TYPE_DICT)) {
        const uint64_t mask = kc->card - 1;
        const uint64_t add = (kc->type == PT_TYPE_DICT ? 0 : (uint64_t)kc->base) - 1;
        if (kc->type == PT_TYPE_INT64) {
            int64_t *o = (int64_t *)col->values->data;
            const int64_t d = row0 - lo;
            for (int64_t gi = lo; gi < hi; gi++) {
                uint64_t code = (W[gi * ks] >> sh) & mask;
                o[gi + d] = (int64_t)(code + add);
                if (__builtin_expect(code == 0, 0)) {
                    o[gi + d] = 0;
                    set_null(col, gi + d);
                }
            }
        } else {
            int32_t *o = (int32_t *)col->values->data;
            const int64_t d = row0 - lo;
            for (int64_t gi = lo; gi < hi; gi++) {
                uint64_t code = (W[gi * ks] >> sh) & mask;
                o[gi + d] = (int32_t)(int64_t)(code + add);
                if (__builtin_expect(code == 0, 0)) {
                    o[gi + d] = 0;
                    set_null(col, gi + d);
                }
            }
        }
        return true;
    }
    if (kc->mode == GB_KM_PACKED && kc->type == PT_TYPE_UTF8) {
        const uint64_t mask = kc->card - 1;
        int64_t *o = (int64_t *)col->values->data;
        const int64_t d = row0 + 1 - lo;
        uint8_t *bytes = col->bytes->data;
        int64_t bp = *byte_pos;
        for (int64_t gi = lo; gi < hi; gi++) {
            uint64_t code = (W[gi * ks] >> sh) & mask, img[2];
            int64_t len = 0;
            if (__builtin_expect(code == 0, 0)) {
                set_null(col, gi + d - 1);
            } else {
                len = pt__gb_spack_decode(kc, code - 1, img);
                if (bp + 16 <= byte_end) memcpy(bytes + bp, img, 16);
                else if (len) memcpy(bytes + bp, img, (size_t)len);
            }
            bp += len;
            o[gi + d] = bp;
        }
        *byte_pos = bp;
        return true;
    }
    if (kc->mode == GB_KM_FULL && (kc->type == PT_TYPE_INT64 || kc->type == PT_TYPE_FLOAT64)) {
        uint64_t *o = (uint64_t *)col->values->data;
        const int64_t d = row0 - lo;
        for (int64_t gi = lo; gi < hi; gi++) {
            const uint64_t *r = W + gi * ks;
            o[gi + d] = r[kc->word];
            if (__builtin_expect((r[0] >> sh) & 1, 0)) {
                o[gi + d] = 0;
                set_null(col, gi + d);
            }
        }
        return true;
    }
    if (kc->mode == GB_KM_SSTR) {
        int64_t *o = (int64_t *)col->values->data;
        const int64_t d = row0 + 1 - lo;
        uint8_t *bytes = col->bytes->data;
        int64_t bp = *byte_pos;
        for (int64_t gi = lo; gi < hi; gi++) {
            const uint64_t *r = W + gi * ks;
            const int64_t len = (int64_t)(r[kc->word + 1] >> 56);
            /* a whole 16-byte copy when it stays inside this range's bytes */
            if (bp + 16 <= byte_end) memcpy(bytes + bp, r + kc->word, 16);
            else if (len) memcpy(bytes + bp, r + kc->word, (size_t)len);
            bp += len;
            o[gi + d] = bp;
            if (__builtin_expect((r[0] >> sh) & 1, 0)) set_null(col, gi + d - 1);
        }
        *byte_pos = bp;
        return true;
    }
    return false;
}

/* Aggregate j; false when the kind has no fast loop. */
static bool emit_agg(const gb_stream *g, int j, const gb_part *p, int64_t lo, int64_t hi,
                     pt_column *col, int64_t row0) {
    const gb_agg *a = &g->aggs[j];
    const gb_state *s = &p->st[j];
    const int64_t *I0 = s->I[0];
    const int64_t S = p->ss;
    switch (a->kind) {
    case PT_AGG_COUNT:
    case PT_AGG_COUNT_STAR: {
        int64_t *o = (int64_t *)col->values->data;
        const int64_t d = row0 - lo;
        for (int64_t gi = lo; gi < hi; gi++) o[gi + d] = I0[gi * S];
        return true;
    }
    case PT_AGG_SUM:
    case PT_AGG_MIN:
    case PT_AGG_MAX:
    case PT_AGG_MEAN: {
        int kind; /* 0: int64 from I[1], 1: double from F[0], 2: mean */
        if (a->kind == PT_AGG_MEAN) kind = 2;
        else if (a->vk == GB_V_I64 && a->dm < 0 && a->out_type == PT_TYPE_INT64) kind = 0;
        else if (a->vk == GB_V_F64 && a->out_type == PT_TYPE_FLOAT64) kind = 1;
        else return false;
        uint64_t *o = (uint64_t *)col->values->data;
        const int64_t d = row0 - lo;
        const uint64_t *src = kind == 0 ? (const uint64_t *)s->I[1] : (const uint64_t *)s->F[0];
        if (kind == 2) {
            const double *F0 = s->F[0];
            double *od = (double *)col->values->data;
            for (int64_t gi = lo; gi < hi; gi++) od[gi + d] = F0[gi * S] / (double)I0[gi * S];
        } else {
            for (int64_t gi = lo; gi < hi; gi++) o[gi + d] = src[gi * S];
        }
        for (int64_t gi = lo; gi < hi; gi++)
            if (__builtin_expect(I0[gi * S] == 0, 0)) {
                o[gi + d] = 0;
                set_null(col, gi + d);
            }
        return true;
    }
    default: return false;
    }
}

void pt__gb_emit_range(const gb_stream *g, int c, const gb_part *p, int64_t lo, int64_t hi,
                       const int64_t *pstart, pt_column *col, int64_t row0, int64_t *byte_pos,
                       int64_t byte_end) {
    if (col->type == PT_TYPE_NULL) return;
    if (c < g->nkeys) {
        if (emit_key(g, c, p, lo, hi, col, row0, byte_pos, byte_end)) return;
        for (int64_t gi = lo; gi < hi; gi++) pt__gb_decode_key(g, c, p, gi, col, row0 + gi - lo, byte_pos);
    } else {
        int j = c - g->nkeys;
        if (!g->aggs[j].holistic && emit_agg(g, j, p, lo, hi, col, row0)) return;
        for (int64_t gi = lo; gi < hi; gi++)
            pt__gb_finalize(g, j, p, gi, pstart, col, row0 + gi - lo, byte_pos);
    }
}
