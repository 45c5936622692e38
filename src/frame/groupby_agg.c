/*
 * groupby_agg.c - the aggregates of the group-by: planning and type checks,
 * the per-chunk update kernels, the merge of partial states and the final
 * values.
 *
 * State lives in one record per group (all the aggregates' numbers
 * together, after the group's key: see gb_state), all zero for an empty
 * group. Input values of a chunk are first loaded into a small
 * int64 or double buffer (nulls marked in a byte mask), so each kernel is
 * one loop specialised on the aggregate kind alone, with a separate loop
 * for chunks without nulls; no function pointer is called per row.
 *
 * Variance and correlation keep sums of deviations from a shift (the
 * group's first value): exact enough for data far from zero, and without a
 * division per row. Partial states merge with the pairwise formulas of
 * Chan et al., after which the shift is the merged mean. MEDIAN and
 * COUNT_DISTINCT keep (group, value) pairs that are bucketed by group at
 * the end.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frame/groupby.h"

static const char *agg_word(pt_agg_kind k) {
    switch (k) {
    case PT_AGG_COUNT: return "count";
    case PT_AGG_COUNT_STAR: return "count_star";
    case PT_AGG_COUNT_DISTINCT: return "count_distinct";
    case PT_AGG_SUM: return "sum";
    case PT_AGG_MEAN: return "mean";
    case PT_AGG_MIN: return "min";
    case PT_AGG_MAX: return "max";
    case PT_AGG_STD: return "std";
    case PT_AGG_VAR: return "var";
    case PT_AGG_MEDIAN: return "median";
    case PT_AGG_FIRST: return "first";
    case PT_AGG_LAST: return "last";
    case PT_AGG_CORR: return "corr";
    }
    return "?";
}

static bool numeric_or_bool(pt_type t) {
    return pt_type_is_numeric(t) || t == PT_TYPE_BOOL || t == PT_TYPE_NULL;
}

int pt__gb_add_dictmap(gb_stream *g, int col, pt_error *err) {
    for (int d = 0; d < g->ndm; d++)
        if (g->dm[d].col == col) return d;
    gb_dictmap *dm = pt_realloc(g->dm, (size_t)(g->ndm + 1) * sizeof *dm);
    if (!dm) {
        pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
        return -1;
    }
    g->dm = dm;
    memset(&dm[g->ndm], 0, sizeof *dm);
    dm[g->ndm].col = col;
    return g->ndm++;
}

pt_status pt__gb_plan_aggs(gb_stream *g, int naggs, const pt__agg_spec *aggs, pt_error *err) {
    const pt_schema *s = g->in;
    g->aggs = pt_calloc((size_t)(naggs + 1), sizeof *g->aggs);
    if (!g->aggs) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    g->naggs = naggs;
    for (int j = 0; j < naggs; j++) {
        gb_agg *a = &g->aggs[j];
        a->kind = aggs[j].kind;
        a->col = aggs[j].col;
        a->col2 = aggs[j].col2;
        a->dm = -1;
        if ((int)a->kind < PT_AGG_COUNT || a->kind > PT_AGG_CORR)
            return pt_error_set(err, PT_EINVAL, "group-by: aggregate %d has an unknown kind %d", j,
                                (int)a->kind);
        const char *w = agg_word(a->kind);
        if (a->kind == PT_AGG_COUNT_STAR) {
            snprintf(a->name, sizeof a->name, "count_star()");
            a->ni = 1;
            a->out_type = PT_TYPE_INT64;
            a->vk = GB_V_NONE;
            continue;
        }
        if (a->col < 0 || a->col >= s->nfields)
            return pt_error_set(err, PT_EINVAL,
                                "group-by: aggregate %d (%s) refers to column position %d, but the "
                                "input has %d columns",
                                j, w, a->col, s->nfields);
        const char *cname = s->fields[a->col].name;
        a->in_type = s->fields[a->col].type;
        pt_type t = a->in_type;
        if (a->kind == PT_AGG_CORR) {
            if (a->col2 < 0 || a->col2 >= s->nfields)
                return pt_error_set(err, PT_EINVAL,
                                    "group-by: corr(%s, ...) refers to second column position %d, "
                                    "but the input has %d columns",
                                    cname, a->col2, s->nfields);
            a->in_type2 = s->fields[a->col2].type;
            snprintf(a->name, sizeof a->name, "corr(%s, %s)", cname, s->fields[a->col2].name);
            if (!numeric_or_bool(t) || !numeric_or_bool(a->in_type2)) {
                int bad = !numeric_or_bool(t) ? a->col : a->col2;
                return pt_error_set(err, PT_ETYPE,
                                    "group-by: corr needs numeric columns, but column '%s' is %s",
                                    s->fields[bad].name, pt_type_name(s->fields[bad].type));
            }
        } else {
            snprintf(a->name, sizeof a->name, "%s(%s)", w, cname);
        }
        switch (a->kind) {
        case PT_AGG_SUM:
        case PT_AGG_MEAN:
        case PT_AGG_STD:
        case PT_AGG_VAR:
        case PT_AGG_MEDIAN:
            if (!numeric_or_bool(t))
                return pt_error_set(err, PT_ETYPE,
                                    "group-by: %s needs a numeric or bool column, but column '%s' "
                                    "is %s",
                                    w, cname, pt_type_name(t));
            break;
        default: break;
        }
        bool fl = t == PT_TYPE_FLOAT32 || t == PT_TYPE_FLOAT64;
        int vk_any = t == PT_TYPE_UTF8 ? GB_V_STR : fl ? GB_V_F64 : GB_V_I64;
        switch (a->kind) {
        case PT_AGG_COUNT:
            a->ni = 1;
            a->vk = GB_V_NONE;
            a->out_type = PT_TYPE_INT64;
            break;
        case PT_AGG_COUNT_DISTINCT:
            a->holistic = 1;
            a->vk = vk_any;
            a->out_type = PT_TYPE_INT64;
            break;
        case PT_AGG_SUM:
            a->ni = fl ? 1 : 2;
            a->nf = fl ? 1 : 0;
            a->vk = fl ? GB_V_F64 : GB_V_I64;
            a->out_type = fl ? PT_TYPE_FLOAT64 : PT_TYPE_INT64;
            break;
        case PT_AGG_MEAN:
            a->ni = 1;
            a->nf = 1;
            a->vk = GB_V_F64;
            a->out_type = PT_TYPE_FLOAT64;
            break;
        case PT_AGG_STD:
        case PT_AGG_VAR:
            a->ni = 1;
            a->nf = 3;
            a->vk = GB_V_F64;
            a->out_type = PT_TYPE_FLOAT64;
            break;
        case PT_AGG_CORR:
            a->ni = 1;
            a->nf = 7;
            a->vk = GB_V_F64;
            a->out_type = PT_TYPE_FLOAT64;
            break;
        case PT_AGG_MEDIAN:
            a->holistic = 1;
            a->vk = GB_V_F64;
            a->out_type = PT_TYPE_FLOAT64;
            break;
        case PT_AGG_MIN:
        case PT_AGG_MAX:
        case PT_AGG_FIRST:
        case PT_AGG_LAST: {
            int fl_ = a->kind == PT_AGG_FIRST || a->kind == PT_AGG_LAST;
            a->vk = vk_any;
            a->out_type = t;
            a->str = vk_any == GB_V_STR;
            a->ni = 1 + fl_ + (vk_any == GB_V_I64);
            a->nf = vk_any == GB_V_F64;
            break;
        }
        default: break;
        }
        if (t == PT_TYPE_DICT && a->vk == GB_V_I64) {
            a->dm = pt__gb_add_dictmap(g, a->col, err);
            if (a->dm < 0) return PT_ENOMEM;
        }
    }
    g->sw = 0;
    for (int j = 0; j < naggs; j++) g->sw += g->aggs[j].ni + g->aggs[j].nf;
    if (g->sw == 0) g->sw = 1;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Loading a chunk of values                                                */
/* ------------------------------------------------------------------------ */

/* Returns the null mask, or NULL when the chunk has no nulls. */
const uint8_t *pt__gb_load_ok(const pt_column *c, int64_t r0, int64_t n, uint8_t *ok) {
    if (c->type == PT_TYPE_NULL) {
        memset(ok, 0, (size_t)n);
        return ok;
    }
    if (c->null_count == 0) return NULL;
    const uint8_t *bits = c->validity->data;
    int64_t b = c->offset + r0;
    for (int64_t i = 0; i < n; i++) ok[i] = (bits[(b + i) >> 3] >> ((b + i) & 7)) & 1;
    return ok;
}

void pt__gb_load_i64(const pt_column *c, const int32_t *map, int64_t r0, int64_t n, int64_t *v) {
    switch (c->type) {
    case PT_TYPE_BOOL:
        for (int64_t i = 0; i < n; i++) v[i] = pt_column_bool(c, r0 + i);
        break;
    case PT_TYPE_INT32: {
        const int32_t *x = pt_column_i32(c) + r0;
        for (int64_t i = 0; i < n; i++) v[i] = x[i];
        break;
    }
    case PT_TYPE_INT64: memcpy(v, pt_column_i64(c) + r0, (size_t)n * 8); break;
    case PT_TYPE_DICT: {
        const int32_t *x = (const int32_t *)c->values->data + c->offset + r0;
        for (int64_t i = 0; i < n; i++) v[i] = (c->null_count && !pt_column_is_valid(c, r0 + i)) ? 0 : map[x[i]];
        break;
    }
    default: memset(v, 0, (size_t)n * 8); break;
    }
}

void pt__gb_load_f64(const pt_column *c, int64_t r0, int64_t n, double *v) {
    switch (c->type) {
    case PT_TYPE_BOOL:
        for (int64_t i = 0; i < n; i++) v[i] = pt_column_bool(c, r0 + i);
        break;
    case PT_TYPE_INT32: {
        const int32_t *x = pt_column_i32(c) + r0;
        for (int64_t i = 0; i < n; i++) v[i] = x[i];
        break;
    }
    case PT_TYPE_INT64: {
        const int64_t *x = pt_column_i64(c) + r0;
        for (int64_t i = 0; i < n; i++) v[i] = (double)x[i];
        break;
    }
    case PT_TYPE_FLOAT32: {
        const float *x = pt_column_f32(c) + r0;
        for (int64_t i = 0; i < n; i++) v[i] = x[i];
        break;
    }
    case PT_TYPE_FLOAT64: memcpy(v, pt_column_f64(c) + r0, (size_t)n * 8); break;
    default: memset(v, 0, (size_t)n * 8); break;
    }
}

static void load_str(const pt_column *c, int64_t r0, int64_t n, const char **sp, int32_t *sl) {
    const int64_t *o = (const int64_t *)c->values->data + c->offset + r0;
    const char *b = (const char *)c->bytes->data;
    for (int64_t i = 0; i < n; i++) {
        sp[i] = b + o[i];
        sl[i] = (int32_t)(o[i + 1] - o[i]);
    }
}

/* ------------------------------------------------------------------------ */
/* Strings in the arena                                                     */
/* ------------------------------------------------------------------------ */

static inline int cmp_bytes(const char *a, int64_t la, const char *b, int64_t lb) {
    int64_t m = la < lb ? la : lb;
    int c = m ? memcmp(a, b, (size_t)m) : 0;
    if (c) return c;
    return la < lb ? -1 : la > lb;
}

/* Replaces group gi's string state, in place when it fits. The arena has
 * been reserved for the worst case, so this never allocates. */
static void str_set(gb_part *p, gb_state *s, int64_t gi, const char *str, int64_t len) {
    if (s->scap[gi] >= len && s->scap[gi] > 0) {
        if (len > 0) memcpy(p->arena + s->soff[gi], str, (size_t)len);
    } else {
        s->soff[gi] = pt__gb_arena_put(p, str, len);
        s->scap[gi] = (int32_t)len;
    }
    s->slen[gi] = (int32_t)len;
}

static inline int cmp_dict(const gb_stream *g, const gb_agg *a, int64_t x, int64_t y) {
    const pt_column *d = g->dm[a->dm].dict;
    int64_t lx, ly;
    const char *sx = pt_column_str(d, x, &lx), *sy = pt_column_str(d, y, &ly);
    return cmp_bytes(sx, lx, sy, ly);
}

static inline uint64_t canon_bits(double v) {
    if (v == 0) v = 0.0;
    if (isnan(v)) return 0x7ff8000000000000ULL;
    uint64_t b;
    memcpy(&b, &v, 8);
    return b;
}

/* ------------------------------------------------------------------------ */
/* Update kernels                                                           */
/* ------------------------------------------------------------------------ */

/* Rows of the chunk that belong to the part being updated are listed in
 * idx[k0, k1); `i` is the row within the chunk, `gid_` its group and `gi`
 * the offset of the group's state record (SW words each). */
#define FOR_ROWS_(okp, IDX, ...)                                               \
    do {                                                                       \
        if (!(okp)) {                                                          \
            for (int64_t kk_ = k0; kk_ < k1; kk_++) {                          \
                const int64_t i = IDX;                                         \
                const uint32_t gid_ = G[i];                                    \
                const int64_t gi = (int64_t)gid_ * SW;                         \
                (void)gid_;                                                    \
                (void)gi;                                                      \
                __VA_ARGS__                                                    \
            }                                                                  \
        } else {                                                               \
            for (int64_t kk_ = k0; kk_ < k1; kk_++) {                          \
                const int64_t i = IDX;                                         \
                if (!(okp)[i]) continue;                                       \
                const uint32_t gid_ = G[i];                                    \
                const int64_t gi = (int64_t)gid_ * SW;                         \
                (void)gid_;                                                    \
                (void)gi;                                                      \
                __VA_ARGS__                                                    \
            }                                                                  \
        }                                                                      \
    } while (0)
/* With a single part (direct mode, radix partitions) the rows are in
 * order: no index to read. */
#define FOR_ROWS(okp, ...)                                                     \
    do {                                                                       \
        if (idx) FOR_ROWS_(okp, idx[kk_], __VA_ARGS__);                        \
        else FOR_ROWS_(okp, kk_, __VA_ARGS__);                                 \
    } while (0)

void pt__gb_update(const gb_stream *g, gb_local *L, const pt_table *t,
                   const int32_t *const *maps, int64_t r0, int64_t n, int64_t pos0) {
    for (int j = 0; j < g->naggs; j++) {
        const gb_agg *a = &g->aggs[j];
        if (a->holistic && g->direct) continue; /* groupby_holistic.c */
        const pt_column *c = a->col >= 0 ? t->cols[a->col] : NULL;
        const int32_t *map = a->dm >= 0 ? maps[a->dm] : NULL;
        gb_vals v;
        memset(&v, 0, sizeof v);
        v.iv = L->iv;
        v.xv = L->xv;
        v.yv = L->xv2;
        v.sp = L->vsp;
        v.sl = L->vsl;
        if (c) v.ok = pt__gb_load_ok(c, r0, n, L->ok);
        /* int64 and float64 columns are read in place */
        if (a->vk == GB_V_I64 && c->type == PT_TYPE_INT64) v.iv = pt_column_i64(c) + r0;
        else if (a->vk == GB_V_I64) pt__gb_load_i64(c, map, r0, n, L->iv);
        else if (a->vk == GB_V_F64 && c->type == PT_TYPE_FLOAT64) v.xv = pt_column_f64(c) + r0;
        else if (a->vk == GB_V_F64) pt__gb_load_f64(c, r0, n, L->xv);
        else if (a->vk == GB_V_STR) load_str(c, r0, n, L->vsp, L->vsl);
        if (a->kind == PT_AGG_CORR) {
            const pt_column *c2 = t->cols[a->col2];
            const uint8_t *ok2 = pt__gb_load_ok(c2, r0, n, L->ok2);
            if (c2->type == PT_TYPE_FLOAT64) v.yv = pt_column_f64(c2) + r0;
            else pt__gb_load_f64(c2, r0, n, L->xv2);
            v.both = v.ok;
            if (ok2) {
                if (v.ok)
                    for (int64_t i = 0; i < n; i++) L->ok2[i] = (uint8_t)(v.ok[i] & ok2[i]);
                v.both = L->ok2;
            }
        }
        pt__gb_update_agg(g, L, j, &v, pos0);
    }
}

void pt__gb_update_agg(const gb_stream *g, gb_local *L, int j, const gb_vals *v, int64_t pos0) {
    const uint32_t *G = L->gid;
    const uint16_t *idx = L->nrp == 1 ? NULL : L->idx;
    const gb_agg *a = &g->aggs[j];
    const uint8_t *ok = v->ok, *both = v->both;
    const int64_t *iv = v->iv;
    const double *xv = v->xv, *yv = v->yv;
    for (int pi = 0; pi < L->nrp; pi++) {
        const int64_t k0 = L->rstart[pi], k1 = L->rstart[pi + 1];
        if (k0 == k1) continue;
        gb_part *p = &L->parts[pi];
        gb_state *s = &p->st[j];
        const int64_t SW = p->ss;
        int64_t *I0 = s->I[0], *I1 = s->I[1], *I2 = s->I[2];
        double *F0 = s->F[0], *F1 = s->F[1], *F2 = s->F[2];
        switch (a->kind) {
        case PT_AGG_COUNT_STAR: FOR_ROWS((const uint8_t *)NULL, { I0[gi]++; }); break;
        case PT_AGG_COUNT: FOR_ROWS(ok, { I0[gi]++; }); break;
        case PT_AGG_SUM:
            if (a->vk == GB_V_I64) {
                int ovf = 0;
                FOR_ROWS(ok, {
                    I0[gi]++;
                    ovf |= __builtin_add_overflow(I1[gi], iv[i], &I1[gi]);
                });
                if (ovf && !L->overflow) L->overflow = j + 1;
            } else {
                FOR_ROWS(ok, {
                    I0[gi]++;
                    F0[gi] += xv[i];
                });
            }
            break;
        case PT_AGG_MEAN:
            FOR_ROWS(ok, {
                I0[gi]++;
                F0[gi] += xv[i];
            });
            break;
        case PT_AGG_MIN:
        case PT_AGG_MAX: {
            const int mx = a->kind == PT_AGG_MAX;
            if (a->vk == GB_V_I64 && a->dm < 0) {
                if (mx) FOR_ROWS(ok, { if (!I0[gi]++ || iv[i] > I1[gi]) I1[gi] = iv[i]; });
                else FOR_ROWS(ok, { if (!I0[gi]++ || iv[i] < I1[gi]) I1[gi] = iv[i]; });
            } else if (a->vk == GB_V_I64) {
                FOR_ROWS(ok, {
                    if (!I0[gi]++) I1[gi] = iv[i];
                    else {
                        int cm = cmp_dict(g, a, iv[i], I1[gi]);
                        if (mx ? cm > 0 : cm < 0) I1[gi] = iv[i];
                    }
                });
            } else if (a->vk == GB_V_F64) {
                if (mx) FOR_ROWS(ok, { if (!I0[gi]++ || xv[i] > F0[gi]) F0[gi] = xv[i]; });
                else FOR_ROWS(ok, { if (!I0[gi]++ || xv[i] < F0[gi]) F0[gi] = xv[i]; });
            } else {
                const char *const *sp = v->sp;
                const int32_t *sl = v->sl;
                FOR_ROWS(ok, {
                    int set = !I0[gi]++;
                    if (!set) {
                        int cm = cmp_bytes(sp[i], sl[i], p->arena + s->soff[gid_], s->slen[gid_]);
                        set = mx ? cm > 0 : cm < 0;
                    }
                    if (set) str_set(p, s, gid_, sp[i], sl[i]);
                });
            }
            break;
        }
        case PT_AGG_FIRST:
        case PT_AGG_LAST: {
            const int last = a->kind == PT_AGG_LAST;
            const char *const *sp = v->sp;
            const int32_t *sl = v->sl;
            FOR_ROWS(ok, {
                int64_t pos = pos0 + i;
                if (!I0[gi]++ || (last ? pos > I1[gi] : pos < I1[gi])) {
                    I1[gi] = pos;
                    if (a->vk == GB_V_I64) I2[gi] = iv[i];
                    else if (a->vk == GB_V_F64) F0[gi] = xv[i];
                    else if (a->vk == GB_V_STR) str_set(p, s, gid_, sp[i], sl[i]);
                }
            });
            break;
        }
        case PT_AGG_STD:
        case PT_AGG_VAR:
            FOR_ROWS(ok, {
                double x = xv[i];
                if (!I0[gi]++) F0[gi] = x;
                double d = x - F0[gi];
                F1[gi] += d;
                F2[gi] += d * d;
            });
            break;
        case PT_AGG_CORR: {
            double *F3 = s->F[3], *F4 = s->F[4], *F5 = s->F[5], *F6 = s->F[6];
            FOR_ROWS(both, {
                double x = xv[i], y = yv[i];
                if (!I0[gi]++) {
                    F0[gi] = x;
                    F1[gi] = y;
                }
                double dx = x - F0[gi], dy = y - F1[gi];
                F2[gi] += dx;
                F3[gi] += dy;
                F4[gi] += dx * dx;
                F5[gi] += dy * dy;
                F6[gi] += dx * dy;
            });
            break;
        }
        case PT_AGG_MEDIAN:
        case PT_AGG_COUNT_DISTINCT: {
            gb_pairs *pp = &p->pairs[j];
            gb_pair *out = pp->p + pp->n;
            int64_t k = 0;
            const int distinct = a->kind == PT_AGG_COUNT_DISTINCT;
            if (a->vk == GB_V_I64) {
                FOR_ROWS(ok, {
                    out[k].v = (uint64_t)iv[i];
                    out[k].g = gid_;
                    out[k++].len = 0;
                });
            } else if (a->vk == GB_V_F64) {
                FOR_ROWS(ok, {
                    uint64_t b;
                    if (distinct) b = canon_bits(xv[i]);
                    else memcpy(&b, &xv[i], 8);
                    out[k].v = b;
                    out[k].g = gid_;
                    out[k++].len = 0;
                });
            } else {
                const char *const *sp = v->sp;
                const int32_t *sl = v->sl;
                FOR_ROWS(ok, {
                    out[k].v = (uint64_t)pt__gb_arena_put(p, sp[i], sl[i]);
                    out[k].g = gid_;
                    out[k++].len = (uint32_t)sl[i];
                });
            }
            pp->n += k;
            break;
        }
        default: break;
        }
        (void)I2;
    }
}

/* ------------------------------------------------------------------------ */
/* Merging partial states                                                   */
/* ------------------------------------------------------------------------ */

/* (n, shift, s1, s2) -> mean and m2 */
static inline void moments(int64_t n, double shift, double s1, double s2, double *mean, double *m2) {
    *mean = shift + s1 / (double)n;
    *m2 = s2 - s1 * s1 / (double)n;
    if (*m2 < 0) *m2 = 0;
}

void pt__gb_merge_state(const gb_stream *g, gb_part *d, uint32_t dg, const gb_part *sp,
                        int64_t sg, int *overflow) {
    const int64_t DO = (int64_t)dg * d->ss, SO = sg * sp->ss;
    for (int j = 0; j < g->naggs; j++) {
        const gb_agg *a = &g->aggs[j];
        gb_state *D = &d->st[j];
        const gb_state *S = &sp->st[j];
        if (a->holistic) continue;
        int64_t nb = S->I[0][SO];
        if (nb == 0) continue;
        int64_t na = D->I[0][DO];
        switch (a->kind) {
        case PT_AGG_COUNT:
        case PT_AGG_COUNT_STAR: D->I[0][DO] += nb; break;
        case PT_AGG_SUM:
            D->I[0][DO] += nb;
            if (a->vk == GB_V_I64) {
                if (__builtin_add_overflow(D->I[1][DO], S->I[1][SO], &D->I[1][DO]) && !*overflow)
                    *overflow = j + 1;
            } else {
                D->F[0][DO] += S->F[0][SO];
            }
            break;
        case PT_AGG_MEAN:
            D->I[0][DO] += nb;
            D->F[0][DO] += S->F[0][SO];
            break;
        case PT_AGG_MIN:
        case PT_AGG_MAX: {
            int mx = a->kind == PT_AGG_MAX, set = na == 0;
            if (!set) {
                int cm;
                if (a->vk == GB_V_I64 && a->dm < 0)
                    cm = S->I[1][SO] < D->I[1][DO] ? -1 : S->I[1][SO] > D->I[1][DO];
                else if (a->vk == GB_V_I64) cm = cmp_dict(g, a, S->I[1][SO], D->I[1][DO]);
                else if (a->vk == GB_V_F64)
                    cm = S->F[0][SO] < D->F[0][DO] ? -1 : S->F[0][SO] > D->F[0][DO];
                else
                    cm = cmp_bytes(sp->arena + S->soff[sg], S->slen[sg], d->arena + D->soff[dg],
                                   D->slen[dg]);
                set = mx ? cm > 0 : cm < 0;
            }
            if (set) {
                if (a->vk == GB_V_I64) D->I[1][DO] = S->I[1][SO];
                else if (a->vk == GB_V_F64) D->F[0][DO] = S->F[0][SO];
                else str_set(d, D, dg, sp->arena + S->soff[sg], S->slen[sg]);
            }
            D->I[0][DO] += nb;
            break;
        }
        case PT_AGG_FIRST:
        case PT_AGG_LAST: {
            int last = a->kind == PT_AGG_LAST;
            if (na == 0 || (last ? S->I[1][SO] > D->I[1][DO] : S->I[1][SO] < D->I[1][DO])) {
                D->I[1][DO] = S->I[1][SO];
                if (a->vk == GB_V_I64) D->I[2][DO] = S->I[2][SO];
                else if (a->vk == GB_V_F64) D->F[0][DO] = S->F[0][SO];
                else if (a->vk == GB_V_STR)
                    str_set(d, D, dg, sp->arena + S->soff[sg], S->slen[sg]);
            }
            D->I[0][DO] += nb;
            break;
        }
        case PT_AGG_STD:
        case PT_AGG_VAR: {
            if (na == 0) {
                D->I[0][DO] = nb;
                for (int f = 0; f < 3; f++) D->F[f][DO] = S->F[f][SO];
                break;
            }
            /* Chan's update, with the means kept as offsets from D's shift
             * so that no digits go into a large common offset. */
            double fa = (double)na, fb = (double)nb, n = fa + fb;
            double ua = D->F[1][DO] / fa, ub = (S->F[0][SO] - D->F[0][DO]) + S->F[1][SO] / fb;
            double m2a = D->F[2][DO] - D->F[1][DO] * ua, m2b = S->F[2][SO] - S->F[1][SO] * S->F[1][SO] / fb;
            double delta = ub - ua, u = ua + delta * fb / n;
            double m2 = m2a + m2b + delta * delta * fa * fb / n;
            D->F[1][DO] = n * u;
            D->F[2][DO] = m2 + n * u * u;
            D->I[0][DO] = na + nb;
            break;
        }
        case PT_AGG_CORR: {
            if (na == 0) {
                D->I[0][DO] = nb;
                for (int f = 0; f < 7; f++) D->F[f][DO] = S->F[f][SO];
                break;
            }
            double *Df[7];
            const double *Sf[7];
            for (int f = 0; f < 7; f++) {
                Df[f] = &D->F[f][DO];
                Sf[f] = &S->F[f][SO];
            }
            double fa = (double)na, fb = (double)nb, n = fa + fb;
            double uxa = *Df[2] / fa, uya = *Df[3] / fa;
            double uxb = (*Sf[0] - *Df[0]) + *Sf[2] / fb, uyb = (*Sf[1] - *Df[1]) + *Sf[3] / fb;
            double cxxa = *Df[4] - *Df[2] * uxa, cyya = *Df[5] - *Df[3] * uya;
            double cxya = *Df[6] - *Df[2] * uya;
            double cxxb = *Sf[4] - *Sf[2] * *Sf[2] / fb, cyyb = *Sf[5] - *Sf[3] * *Sf[3] / fb;
            double cxyb = *Sf[6] - *Sf[2] * *Sf[3] / fb;
            double dx = uxb - uxa, dy = uyb - uya, w = fa * fb / n;
            double ux = uxa + dx * fb / n, uy = uya + dy * fb / n;
            *Df[2] = n * ux;
            *Df[3] = n * uy;
            *Df[4] = cxxa + cxxb + dx * dx * w + n * ux * ux;
            *Df[5] = cyya + cyyb + dy * dy * w + n * uy * uy;
            *Df[6] = cxya + cxyb + dx * dy * w + n * ux * uy;
            D->I[0][DO] = na + nb;
            break;
        }
        default: break;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Holistic aggregates                                                      */
/* ------------------------------------------------------------------------ */

pt_status pt__gb_pairs_sort(const gb_stream *g, gb_part *p, int64_t ngroups, int64_t **pstart,
                            pt_error *err) {
    for (int j = 0; j < g->naggs; j++) {
        pstart[j] = NULL;
        if (!g->aggs[j].holistic) continue;
        gb_pairs *pp = &p->pairs[j];
        int64_t *st = pt_calloc((size_t)(ngroups + 2), sizeof *st);
        gb_pair *sorted = pt_malloc((size_t)(pp->n + 1) * sizeof *sorted);
        if (!st || !sorted) {
            pt_free(st);
            pt_free(sorted);
            for (int k = 0; k < j; k++) pt_free(pstart[k]);
            return pt_error_set(err, PT_ENOMEM, "group-by: out of memory sorting values");
        }
        for (int64_t i = 0; i < pp->n; i++) st[pp->p[i].g + 1]++;
        for (int64_t gi = 0; gi < ngroups; gi++) st[gi + 1] += st[gi];
        int64_t *pos = pt_malloc((size_t)(ngroups + 1) * sizeof *pos);
        if (!pos) {
            pt_free(st);
            pt_free(sorted);
            for (int k = 0; k < j; k++) pt_free(pstart[k]);
            return pt_error_set(err, PT_ENOMEM, "group-by: out of memory sorting values");
        }
        memcpy(pos, st, (size_t)(ngroups + 1) * sizeof *pos);
        for (int64_t i = 0; i < pp->n; i++) sorted[pos[pp->p[i].g]++] = pp->p[i];
        pt_free(pos);
        pt_free(pp->p);
        pp->p = sorted;
        pp->cap = pp->n + 1;
        pstart[j] = st;
    }
    return PT_OK;
}

static double pair_f(const gb_pair *x) {
    double d;
    memcpy(&d, &x->v, 8);
    return d;
}

/* k-th smallest (0-based) of a[0, n) by value (Hoare selection). */
static double select_kth(gb_pair *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double piv = pair_f(&a[lo + (hi - lo) / 2]);
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (pair_f(&a[i]) < piv) i++;
            while (pair_f(&a[j]) > piv) j--;
            if (i <= j) {
                gb_pair t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    return pair_f(&a[k]);
}

static _Thread_local const char *tl_arena;
static int cmp_pair_u64(const void *x, const void *y) {
    uint64_t a = ((const gb_pair *)x)->v, b = ((const gb_pair *)y)->v;
    return a < b ? -1 : a > b;
}
static int cmp_pair_str(const void *x, const void *y) {
    const gb_pair *a = x, *b = y;
    return cmp_bytes(tl_arena + a->v, a->len, tl_arena + b->v, b->len);
}

/* ------------------------------------------------------------------------ */
/* Final values                                                             */
/* ------------------------------------------------------------------------ */

/* A null result; its value slot is zeroed (result buffers may come
 * unzeroed, groupby_radix.c). */
static void out_null(pt_column *c, int64_t row) {
    int w = c->type == PT_TYPE_NULL || c->type == PT_TYPE_BOOL || c->type == PT_TYPE_UTF8
                ? 0
                : pt_type_width(c->type);
    if (w > 0) memset(c->values->data + row * w, 0, (size_t)w);
    if (c->type != PT_TYPE_NULL)
        __atomic_fetch_and(&c->validity->data[row >> 3], (uint8_t)~(1u << (row & 7)), __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->null_count, 1, __ATOMIC_RELAXED);
}

static void out_f64(pt_column *c, int64_t row, double v) { ((double *)c->values->data)[row] = v; }
static void out_i64(pt_column *c, int64_t row, int64_t v) { ((int64_t *)c->values->data)[row] = v; }

/* Writes an int-like or float value in the column's own type. */
static void out_typed(pt_column *c, int64_t row, int64_t iv, double fv) {
    switch (c->type) {
    case PT_TYPE_BOOL:
        if (iv) __atomic_fetch_or(&c->values->data[row >> 3], (uint8_t)(1u << (row & 7)), __ATOMIC_RELAXED);
        break;
    case PT_TYPE_INT32:
    case PT_TYPE_DICT: ((int32_t *)c->values->data)[row] = (int32_t)iv; break;
    case PT_TYPE_INT64: ((int64_t *)c->values->data)[row] = iv; break;
    case PT_TYPE_FLOAT32: ((float *)c->values->data)[row] = (float)fv; break;
    case PT_TYPE_FLOAT64: ((double *)c->values->data)[row] = fv; break;
    default: break;
    }
}

int64_t pt__gb_str_bytes_agg(const gb_stream *g, int j, const gb_part *p, int64_t gi) {
    const gb_agg *a = &g->aggs[j];
    if (!a->str || p->st[j].I[0][gi * p->ss] == 0) return 0;
    return p->st[j].slen[gi];
}

void pt__gb_finalize(const gb_stream *g, int j, const gb_part *p, int64_t gi,
                     const int64_t *pstart, pt_column *c, int64_t row, int64_t *byte_pos) {
    const gb_agg *a = &g->aggs[j];
    const gb_state *s = &p->st[j];
    const int64_t so = gi * p->ss;
    if (a->holistic && g->hres && g->hres[j]) {
        if (g->hnull[j][gi]) out_null(c, row);
        else if (a->kind == PT_AGG_MEDIAN) memcpy((double *)c->values->data + row, &g->hres[j][gi], 8);
        else out_i64(c, row, g->hres[j][gi]);
        return;
    }
    int64_t n = a->holistic ? 0 : s->I[0][so];
    if (c->type == PT_TYPE_UTF8) {
        int64_t *o = (int64_t *)c->values->data;
        if (n > 0 && s->slen[gi] > 0) {
            memcpy(c->bytes->data + *byte_pos, p->arena + s->soff[gi], (size_t)s->slen[gi]);
            *byte_pos += s->slen[gi];
        }
        o[row + 1] = *byte_pos;
        if (n == 0) out_null(c, row);
        return;
    }
    switch (a->kind) {
    case PT_AGG_COUNT:
    case PT_AGG_COUNT_STAR: out_i64(c, row, n); return;
    case PT_AGG_SUM:
        if (n == 0) break;
        if (a->vk == GB_V_I64) out_i64(c, row, s->I[1][so]);
        else out_f64(c, row, s->F[0][so]);
        return;
    case PT_AGG_MEAN:
        if (n == 0) break;
        out_f64(c, row, s->F[0][so] / (double)n);
        return;
    case PT_AGG_MIN:
    case PT_AGG_MAX:
        if (n == 0) break;
        out_typed(c, row, a->vk == GB_V_I64 ? s->I[1][so] : 0, a->vk == GB_V_F64 ? s->F[0][so] : 0);
        return;
    case PT_AGG_FIRST:
    case PT_AGG_LAST:
        if (n == 0) break;
        out_typed(c, row, a->vk == GB_V_I64 ? s->I[2][so] : 0, a->vk == GB_V_F64 ? s->F[0][so] : 0);
        return;
    case PT_AGG_STD:
    case PT_AGG_VAR: {
        if (n < 2) break;
        double mean, m2;
        moments(n, s->F[0][so], s->F[1][so], s->F[2][so], &mean, &m2);
        double var = m2 / (double)(n - 1);
        out_f64(c, row, a->kind == PT_AGG_VAR ? var : sqrt(var));
        return;
    }
    case PT_AGG_CORR: {
        if (n < 2) break;
        double fn = (double)n;
        double cxx = s->F[4][so] - s->F[2][so] * s->F[2][so] / fn;
        double cyy = s->F[5][so] - s->F[3][so] * s->F[3][so] / fn;
        double cxy = s->F[6][so] - s->F[2][so] * s->F[3][so] / fn;
        if (!(cxx > 0) || !(cyy > 0)) break;
        double r = cxy / sqrt(cxx * cyy);
        if (r > 1) r = 1;
        if (r < -1) r = -1;
        out_f64(c, row, r);
        return;
    }
    case PT_AGG_MEDIAN: {
        int64_t lo = pstart[gi], cnt = pstart[gi + 1] - lo;
        if (cnt == 0) break;
        gb_pair *v = p->pairs[j].p + lo;
        double m = select_kth(v, cnt, cnt / 2);
        if (cnt % 2 == 0) {
            /* the lower middle is the largest of the lower half */
            double lm = pair_f(&v[0]);
            for (int64_t i = 1; i < cnt / 2; i++)
                if (pair_f(&v[i]) > lm) lm = pair_f(&v[i]);
            m = lm + (m - lm) / 2;
        }
        out_f64(c, row, m);
        return;
    }
    case PT_AGG_COUNT_DISTINCT: {
        int64_t lo = pstart[gi], cnt = pstart[gi + 1] - lo;
        gb_pair *v = p->pairs[j].p + lo;
        int64_t nd = 0;
        if (cnt > 0) {
            if (a->vk == GB_V_STR) {
                tl_arena = p->arena;
                qsort(v, (size_t)cnt, sizeof *v, cmp_pair_str);
                nd = 1;
                for (int64_t i = 1; i < cnt; i++) nd += cmp_pair_str(&v[i - 1], &v[i]) != 0;
            } else {
                qsort(v, (size_t)cnt, sizeof *v, cmp_pair_u64);
                nd = 1;
                for (int64_t i = 1; i < cnt; i++) nd += v[i - 1].v != v[i].v;
            }
        }
        out_i64(c, row, nd);
        return;
    }
    }
    out_null(c, row);
}
