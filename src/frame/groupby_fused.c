/*
 * groupby_fused.c - a one-pass group-by for the commonest shape: one
 * integer or dictionary key of small range, and count/sum/mean/min/max over
 * numeric columns, with no nulls anywhere. Each task reads its partition
 * once, in blocks: the group numbers of a block are computed once (key -
 * min) and every aggregate then updates per-group accumulators that sit
 * together in one small array. The tasks' arrays are then added in
 * partition order. Any other shape (or an int64 sum that would overflow)
 * returns "not handled" and the general kernel runs instead, with its own
 * checks and messages.
 */
#include <stdlib.h>
#include <string.h>

#include "frame/groupby.h"

#define FZ_MAX_GROUPS (1 << 16)
#define FZ_MAX_AGGS 16
#define FZ_BLOCK 1024

typedef struct fz_job {
    pt_table *const *parts;
    int key, naggs;
    const pt__agg_spec *aggs;
    int64_t kmin, ng;
    int64_t **cnt;  /* per partition: ng counts */
    int64_t **iacc; /* per partition: ng * naggs integer sums / extremes */
    double **facc;  /* per partition: ng * naggs float sums */
    int overflow;   /* set (atomically) when an int64 sum overflows */
    int outside;    /* set when a key falls outside [kmin, kmin + ng) */
} fz_job;

static bool fz_int(pt_type t) { return t == PT_TYPE_INT64 || t == PT_TYPE_INT32; }

static pt_status fz_task(pt_task_ctx *tc, void *arg, int64_t p, pt_error *err) {
    (void)tc;
    (void)err;
    fz_job *j = arg;
    const pt_table *t = j->parts[p];
    const pt_column *kc = t->cols[j->key];
    int na = j->naggs;
    int64_t *cnt = j->cnt[p], *iacc = j->iacc[p];
    double *facc = j->facc[p];
    int32_t g[FZ_BLOCK];
    for (int64_t b = 0; b < t->nrows; b += FZ_BLOCK) {
        int m = (int)(t->nrows - b < FZ_BLOCK ? t->nrows - b : FZ_BLOCK);
        /* The range may come from a sample: check every key (in register,
         * nearly free) and give up when one falls outside. */
        uint64_t bad = 0;
        if (kc->type == PT_TYPE_INT64) {
            const int64_t *k = pt_column_i64(kc) + b;
            for (int i = 0; i < m; i++) {
                uint64_t d = (uint64_t)(k[i] - j->kmin);
                bad |= d >= (uint64_t)j->ng;
                g[i] = (int32_t)d;
            }
        } else {
            const int32_t *k = pt_column_i32(kc) + b;
            for (int i = 0; i < m; i++) {
                uint64_t d = (uint64_t)((int64_t)k[i] - j->kmin);
                bad |= d >= (uint64_t)j->ng;
                g[i] = (int32_t)d;
            }
        }
        if (bad) {
            __atomic_store_n(&j->outside, 1, __ATOMIC_RELAXED);
            return PT_OK;
        }
        for (int i = 0; i < m; i++) cnt[g[i]]++;
        for (int a = 0; a < na; a++) {
            pt_agg_kind kind = j->aggs[a].kind;
            if (kind == PT_AGG_COUNT || kind == PT_AGG_COUNT_STAR) continue;
            const pt_column *c = t->cols[j->aggs[a].col];
            if (c->type == PT_TYPE_FLOAT64) {
                const double *v = pt_column_f64(c) + b;
                for (int i = 0; i < m; i++) facc[(int64_t)g[i] * na + a] += v[i];
            } else if (c->type == PT_TYPE_FLOAT32) {
                const float *v = pt_column_f32(c) + b;
                for (int i = 0; i < m; i++) facc[(int64_t)g[i] * na + a] += v[i];
            } else if (kind == PT_AGG_MIN || kind == PT_AGG_MAX) {
                bool mx = kind == PT_AGG_MAX;
                for (int i = 0; i < m; i++) {
                    int64_t v = c->type == PT_TYPE_INT64 ? pt_column_i64(c)[b + i]
                                                         : pt_column_i32(c)[b + i];
                    int64_t *s = &iacc[(int64_t)g[i] * na + a];
                    if (mx ? v > *s : v < *s) *s = v;
                }
            } else if (c->type == PT_TYPE_INT64) {
                const int64_t *v = pt_column_i64(c) + b;
                bool of = false;
                for (int i = 0; i < m; i++)
                    of |= __builtin_add_overflow(iacc[(int64_t)g[i] * na + a], v[i],
                                                 &iacc[(int64_t)g[i] * na + a]);
                if (of) __atomic_store_n(&j->overflow, 1, __ATOMIC_RELAXED);
            } else {
                const int32_t *v = pt_column_i32(c) + b;
                for (int i = 0; i < m; i++) iacc[(int64_t)g[i] * na + a] += v[i];
            }
        }
    }
    return PT_OK;
}

typedef struct fz_range_job {
    pt_table *const *parts;
    int key;
    int64_t *out; /* min, max per partition */
} fz_range_job;

static pt_status fz_range_task(pt_task_ctx *tc, void *arg, int64_t p, pt_error *err) {
    (void)tc;
    (void)err;
    fz_range_job *j = arg;
    const pt_column *kc = j->parts[p]->cols[j->key];
    int64_t n = j->parts[p]->nrows, mn = INT64_MAX, mx = INT64_MIN;
    if (kc->type == PT_TYPE_INT64) {
        const int64_t *k = pt_column_i64(kc);
        for (int64_t i = 0; i < n; i++) {
            mn = k[i] < mn ? k[i] : mn;
            mx = k[i] > mx ? k[i] : mx;
        }
    } else {
        const int32_t *k = pt_column_i32(kc);
        for (int64_t i = 0; i < n; i++) {
            mn = k[i] < mn ? k[i] : mn;
            mx = k[i] > mx ? k[i] : mx;
        }
    }
    j->out[2 * p] = mn;
    j->out[2 * p + 1] = mx;
    return PT_OK;
}

static const char *fz_word(pt_agg_kind k) {
    switch (k) {
    case PT_AGG_COUNT: return "count";
    case PT_AGG_SUM: return "sum";
    case PT_AGG_MEAN: return "mean";
    case PT_AGG_MIN: return "min";
    default: return "max";
    }
}

pt_status pt__gb_fused(pt_ctx *ctx, pt_table *const *parts, int64_t nparts, int nkeys,
                       const int *keys, int naggs, const pt__agg_spec *aggs, pt_table **out,
                       pt_error *err) {
    *out = NULL;
    if (nkeys != 1 || naggs < 1 || naggs > FZ_MAX_AGGS || nparts < 1) return PT_OK;
    if (getenv("PARTITA_GROUPBY_FUSED") && strcmp(getenv("PARTITA_GROUPBY_FUSED"), "off") == 0)
        return PT_OK;
    const pt_schema *in = parts[0]->schema;
    int key = keys[0];
    if (key < 0 || key >= in->nfields) return PT_OK;
    pt_type kt = in->fields[key].type;
    if (!fz_int(kt) && kt != PT_TYPE_DICT) return PT_OK;
    for (int a = 0; a < naggs; a++) {
        pt_agg_kind k = aggs[a].kind;
        if (k == PT_AGG_COUNT_STAR) continue;
        if (aggs[a].col < 0 || aggs[a].col >= in->nfields) return PT_OK;
        pt_type t = in->fields[aggs[a].col].type;
        bool ok = (k == PT_AGG_COUNT || k == PT_AGG_SUM || k == PT_AGG_MEAN) ? pt_type_is_numeric(t)
                  : (k == PT_AGG_MIN || k == PT_AGG_MAX)                     ? fz_int(t)
                                                                             : false;
        if (!ok) return PT_OK;
    }
    /* No nulls anywhere; dictionary keys share one dictionary. */
    int64_t mn = INT64_MAX, mx = INT64_MIN, rows = 0;
    for (int64_t p = 0; p < nparts; p++) {
        const pt_table *t = parts[p];
        const pt_column *kc = t->cols[key];
        if (kc->null_count || kc->type != kt) return PT_OK;
        if (kt == PT_TYPE_DICT && kc->dict != parts[0]->cols[key]->dict) return PT_OK;
        for (int a = 0; a < naggs; a++)
            if (aggs[a].col >= 0 && t->cols[aggs[a].col]->null_count) return PT_OK;
        rows += t->nrows;
    }
    /* Key range: first guessed from every 61st row (the main pass checks
     * each key against it), measured exactly only if the guess was wrong. */
    bool exact = false;
    for (int64_t p = 0; p < nparts; p++) {
        const pt_column *kc = parts[p]->cols[key];
        for (int64_t i = 0; i < parts[p]->nrows; i += 61) {
            int64_t v = kt == PT_TYPE_INT64 ? pt_column_i64(kc)[i] : pt_column_i32(kc)[i];
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
    }
again:
    if (exact) {
        int64_t *rng = pt_malloc(sizeof *rng * 2 * (size_t)nparts);
        if (!rng) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
        fz_range_job rj = {parts, key, rng};
        pt_status rs = pt_parallel_for(pt_ctx_pool(ctx), nparts, fz_range_task, &rj, NULL, err);
        mn = INT64_MAX;
        mx = INT64_MIN;
        for (int64_t p = 0; rs == PT_OK && p < nparts; p++) {
            mn = rng[2 * p] < mn ? rng[2 * p] : mn;
            mx = rng[2 * p + 1] > mx ? rng[2 * p + 1] : mx;
        }
        pt_free(rng);
        if (rs != PT_OK) return rs;
    }
    if (rows == 0 || mx - mn >= FZ_MAX_GROUPS || (uint64_t)(mx - mn) > (uint64_t)rows) return PT_OK;
    fz_job j = {parts, key, naggs, aggs, mn, mx - mn + 1, NULL, NULL, NULL, 0, 0};
    int64_t cells = j.ng * naggs;
    j.cnt = pt_calloc((size_t)nparts, sizeof *j.cnt);
    j.iacc = pt_calloc((size_t)nparts, sizeof *j.iacc);
    j.facc = pt_calloc((size_t)nparts, sizeof *j.facc);
    pt_status st = j.cnt && j.iacc && j.facc ? PT_OK
                                             : pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    for (int64_t p = 0; st == PT_OK && p < nparts; p++) {
        j.cnt[p] = pt_calloc((size_t)j.ng, sizeof(int64_t));
        j.iacc[p] = pt_malloc(sizeof(int64_t) * (size_t)cells);
        j.facc[p] = pt_calloc((size_t)cells, sizeof(double));
        if (!j.cnt[p] || !j.iacc[p] || !j.facc[p]) {
            st = pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
            break;
        }
        for (int64_t gi = 0; gi < j.ng; gi++)
            for (int a = 0; a < naggs; a++)
                j.iacc[p][gi * naggs + a] = aggs[a].kind == PT_AGG_MIN   ? INT64_MAX
                                            : aggs[a].kind == PT_AGG_MAX ? INT64_MIN
                                                                         : 0;
    }
    if (st == PT_OK) st = pt_parallel_for(pt_ctx_pool(ctx), nparts, fz_task, &j, NULL, err);
    if (st == PT_OK && j.outside) {
        /* The sampled range missed a key: measure it and start over. */
        for (int64_t p = 0; p < nparts; p++) {
            pt_free(j.cnt[p]);
            pt_free(j.iacc[p]);
            pt_free(j.facc[p]);
        }
        pt_free(j.cnt);
        pt_free(j.iacc);
        pt_free(j.facc);
        if (exact) return pt_error_set(err, PT_EINTERNAL, "group-by: key outside its measured range");
        exact = true;
        goto again;
    }
    /* Add the partitions' accumulators into the first, in order. */
    for (int64_t p = 1; st == PT_OK && p < nparts; p++) {
        for (int64_t gi = 0; gi < j.ng; gi++) j.cnt[0][gi] += j.cnt[p][gi];
        for (int64_t c = 0; c < cells; c++) {
            pt_agg_kind k = aggs[c % naggs].kind;
            int64_t *d = &j.iacc[0][c], v = j.iacc[p][c];
            if (k == PT_AGG_MIN) *d = v < *d ? v : *d;
            else if (k == PT_AGG_MAX) *d = v > *d ? v : *d;
            else if (__builtin_add_overflow(*d, v, d)) j.overflow = 1;
            j.facc[0][c] += j.facc[p][c];
        }
    }
    int64_t ngroups = 0;
    for (int64_t gi = 0; st == PT_OK && gi < j.ng; gi++) ngroups += j.cnt[0][gi] > 0;
    pt_column *cols[FZ_MAX_AGGS + 1] = {NULL};
    int made = 0;
    if (st == PT_OK && !j.overflow) {
        /* Key column: the values present, in key order. */
        if (kt == PT_TYPE_DICT) st = pt_column_new_dict(NULL, parts[0]->cols[key]->dict, ngroups, &cols[0], err);
        else st = pt_column_new(NULL, kt, ngroups, 0, &cols[0], err);
        if (st == PT_OK) made = 1;
        for (int a = 0; st == PT_OK && a < naggs; a++) {
            pt_agg_kind k = aggs[a].kind;
            pt_type at = k == PT_AGG_COUNT || k == PT_AGG_COUNT_STAR ? PT_TYPE_INT64
                         : k == PT_AGG_MEAN                          ? PT_TYPE_FLOAT64
                         : k == PT_AGG_SUM ? (fz_int(in->fields[aggs[a].col].type) ? PT_TYPE_INT64
                                                                                   : PT_TYPE_FLOAT64)
                                           : in->fields[aggs[a].col].type;
            st = pt_column_new(NULL, at, ngroups, 0, &cols[a + 1], err);
            if (st == PT_OK) made = a + 2;
        }
        int64_t r = 0;
        for (int64_t gi = 0; st == PT_OK && gi < j.ng; gi++) {
            int64_t n = j.cnt[0][gi];
            if (!n) continue;
            if (kt == PT_TYPE_INT64) ((int64_t *)cols[0]->values->data)[r] = mn + gi;
            else ((int32_t *)cols[0]->values->data)[r] = (int32_t)(mn + gi);
            for (int a = 0; a < naggs; a++) {
                pt_column *c = cols[a + 1];
                int64_t iv = j.iacc[0][gi * naggs + a];
                double fv = j.facc[0][gi * naggs + a];
                bool isint = aggs[a].col >= 0 && fz_int(in->fields[aggs[a].col].type);
                switch (aggs[a].kind) {
                case PT_AGG_COUNT:
                case PT_AGG_COUNT_STAR: ((int64_t *)c->values->data)[r] = n; break;
                case PT_AGG_MEAN:
                    ((double *)c->values->data)[r] = (isint ? (double)iv : fv) / (double)n;
                    break;
                case PT_AGG_SUM:
                    if (isint) ((int64_t *)c->values->data)[r] = iv;
                    else ((double *)c->values->data)[r] = fv;
                    break;
                default:
                    if (c->type == PT_TYPE_INT64) ((int64_t *)c->values->data)[r] = iv;
                    else ((int32_t *)c->values->data)[r] = (int32_t)iv;
                }
            }
            r++;
        }
        for (int c = 0; st == PT_OK && c <= naggs; c++) {
            cols[c]->length = ngroups;
            cols[c]->values->size = ngroups * pt_type_width(cols[c]->type);
        }
    }
    if (st == PT_OK && !j.overflow) {
        const char *names[FZ_MAX_AGGS + 1];
        char buf[FZ_MAX_AGGS][96];
        pt_type types[FZ_MAX_AGGS + 1];
        names[0] = in->fields[key].name;
        for (int a = 0; a < naggs; a++) {
            if (aggs[a].kind == PT_AGG_COUNT_STAR) snprintf(buf[a], sizeof buf[a], "count_star()");
            else snprintf(buf[a], sizeof buf[a], "%s(%s)", fz_word(aggs[a].kind), in->fields[aggs[a].col].name);
            names[a + 1] = buf[a];
        }
        for (int c = 0; c <= naggs; c++) types[c] = cols[c]->type;
        pt_schema *s;
        st = pt_schema_new(naggs + 1, names, types, &s, err);
        if (st == PT_OK) {
            st = pt_table_new(s, cols, out, err);
            made = 0; /* the table took the columns, also on failure */
        }
    }
    for (int c = 0; c < made; c++) pt_column_release(cols[c]);
    for (int64_t p = 0; p < nparts; p++) {
        if (j.cnt) pt_free(j.cnt[p]);
        if (j.iacc) pt_free(j.iacc[p]);
        if (j.facc) pt_free(j.facc[p]);
    }
    pt_free(j.cnt);
    pt_free(j.iacc);
    pt_free(j.facc);
    return st;
}
