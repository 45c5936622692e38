/*
 * groupby_stream.c - the group-by's driver: argument checks, parallel
 * partial aggregation of pushed partitions, the parallel merge, the
 * out-of-core path and the construction of the result.
 *
 * Each worker thread aggregates the morsels it runs into its own tables
 * (no locks on the hot path). Hash tables are split into GB_NPARTS parts by
 * the top bits of the hash, so that at the end part p of every thread
 * merges into one table independently of the other parts: the merge runs in
 * parallel, one task per part, and so does the construction of the result.
 * In direct mode (small dense key codes) the tables are plain arrays and the
 * merge runs over ranges of codes.
 *
 * Out of core: when a thread's tables cannot grow within the budget (or
 * outgrow their share of it), the thread writes its parts to spill files,
 * part p into spill partition p, and starts again with empty tables. At
 * the end, if anything was spilled, every table is spilled too and the
 * partitions are merged one after the other, each into tables split by the
 * next hash bits; a partition that still does not fit spills into
 * sub-partitions that are merged recursively. Memory thus stays near the
 * budget whatever the number of groups.
 *
 * The one-shot form (pt__groupby) sees the whole input first, and takes a
 * faster road where one exists: with many groups, the rows are partitioned
 * by hash before aggregating (groupby_radix.c); in direct mode, MEDIAN and
 * COUNT_DISTINCT gather their values by a counting sort on the group code
 * (groupby_holistic.c).
 */
#include <string.h>

#include "frame/groupby.h"
#include "io/io_native.h"

#define MORSEL_ROWS (1 << 16)
#define DIRECT_RANGES 64

/* ------------------------------------------------------------------------ */
/* Creation                                                                 */
/* ------------------------------------------------------------------------ */

void pt__groupby_stream_free(gb_stream *g) {
    if (!g) return;
    for (int i = 0; g->locals && i < g->nlocals; i++) pt__gb_local_free(g, g->locals[i]);
    pt_free(g->locals);
    pt__gb_spillset_free(g, &g->spill0);
    if (g->sd) pt__spill_dir_free((pt__spill_dir *)g->sd);
    pt__gb_dict_release_cache(g);
    pt__gb_holistic_free(g);
    for (int d = 0; d < g->ndm; d++) pt__gb_dict_free(&g->dm[d]);
    pt_free(g->dm);
    pt_free(g->aggs);
    pt_schema_free(g->in);
    pthread_mutex_destroy(&g->mu);
    pt_free(g);
}

static pt_status gb_new(pt_ctx *ctx, const pt_schema *in, int nkeys, const int *keys, int naggs,
                        const pt__agg_spec *aggs, pt_table *const *hint, int64_t nhint,
                        gb_stream **out, pt_error *err) {
    *out = NULL;
    if (!ctx) return pt_error_set(err, PT_EINVAL, "group-by: ctx is NULL");
    if (!in) return pt_error_set(err, PT_EINVAL, "group-by: the input schema is NULL");
    if (nkeys < 0 || nkeys > GB_MAX_KEYS)
        return pt_error_set(err, PT_EINVAL, "group-by: nkeys is %d (0 to %d key columns)", nkeys,
                            GB_MAX_KEYS);
    if (nkeys > 0 && !keys) return pt_error_set(err, PT_EINVAL, "group-by: keys is NULL");
    if (naggs < 0 || naggs > GB_MAX_AGGS)
        return pt_error_set(err, PT_EINVAL, "group-by: naggs is %d (0 to %d aggregates)", naggs,
                            GB_MAX_AGGS);
    if (naggs > 0 && !aggs) return pt_error_set(err, PT_EINVAL, "group-by: aggs is NULL");
    for (int k = 0; k < nkeys; k++)
        if (keys[k] < 0 || keys[k] >= in->nfields)
            return pt_error_set(err, PT_EINVAL,
                                "group-by: key %d refers to column position %d, but the input has "
                                "%d columns",
                                k, keys[k], in->nfields);
    gb_stream *g = pt_calloc(1, sizeof *g);
    if (!g) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    pthread_mutex_init(&g->mu, NULL);
    g->ctx = ctx;
    g->mem = pt_ctx_mem(ctx);
    g->nkeys = nkeys;
    pt_status s = pt_schema_copy(in, &g->in, err);
    if (s == PT_OK) s = pt__gb_plan_aggs(g, naggs, aggs, err);
    for (int k = 0; s == PT_OK && k < nkeys; k++) {
        g->kc[k].col = keys[k];
        if (in->fields[keys[k]].type == PT_TYPE_DICT && pt__gb_add_dictmap(g, keys[k], err) < 0)
            s = PT_ENOMEM;
    }
    if (s == PT_OK && hint) s = pt__gb_dict_prepare(g, hint, nhint, err);
    if (s == PT_OK) s = pt__gb_plan_keys(g, hint, nhint, err);
    if (s == PT_OK) {
        int threads = pt_ctx_threads(ctx);
        if (threads < 1) threads = 1;
        g->nlocals = threads + 1;
        g->locals = pt_calloc((size_t)g->nlocals, sizeof *g->locals);
        if (!g->locals) s = pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
        int64_t limit = pt_mem_limit(g->mem);
        if (limit > 0) {
            /* Tables may use half the budget; the rest is for the input
             * batches, the merge and the other operators of the plan. */
            g->local_cap = limit / 2 / threads;
            if (g->direct) {
                int64_t per = 1;
                for (int j = 0; j < g->naggs; j++) per += 8 * (g->aggs[j].ni + g->aggs[j].nf);
                if ((int64_t)g->card * per * threads > limit / 4) g->direct = 0;
                /* the gathered values of MEDIAN / COUNT_DISTINCT */
                int64_t rows = 0;
                for (int64_t p = 0; hint && p < nhint; p++) rows += hint[p]->nrows;
                if (g->hol_direct && 16 * rows + 8 * (int64_t)g->card > limit / 4) g->direct = 0;
                if (!g->direct) {
                    g->hol_direct = 0;
                    for (int j = 0; j < g->naggs; j++)
                        if (g->aggs[j].holistic) g->direct = 0;
                }
            }
        }
    }
    if (s != PT_OK) {
        pt__groupby_stream_free(g);
        return s;
    }
    *out = g;
    return PT_OK;
}

pt_status pt__groupby_stream_new(pt_ctx *ctx, const pt_schema *in, int nkeys, const int *keys,
                                 int naggs, const pt__agg_spec *aggs, pt__groupby_stream **out,
                                 pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt__groupby_stream_new: out is NULL");
    return gb_new(ctx, in, nkeys, keys, naggs, aggs, NULL, 0, out, err);
}

void pt__groupby_stream_stats(const gb_stream *g, int64_t *groups, int64_t *spilled_bytes) {
    if (groups) *groups = g ? g->groups : 0;
    if (spilled_bytes) {
        int64_t b = g ? g->spilled_bytes : 0;
        if (g && g->sd) {
            pt__spill_stats st;
            pt__spill_stats_get((const pt__spill_dir *)g->sd, &st);
            b = st.bytes_written;
        }
        *spilled_bytes = b;
    }
}

/* ------------------------------------------------------------------------ */
/* Partial aggregation                                                      */
/* ------------------------------------------------------------------------ */

/* Finds or inserts the group of every row of the chunk. Stops with
 * PT_EBUDGET when a part cannot grow. */
static pt_status probe(gb_stream *g, gb_local *L, int64_t n, pt_error *err) {
    const int kw = g->kw, ns = g->nstr;
    const int64_t rs = g->rs;
    /* Rows' hashes are known in advance: prefetch the slot a few rows
     * ahead, and the group record it points to a little later, so that the
     * cache misses of a large table overlap. */
    enum { PF_SLOT = 16, PF_REC = 8 };
    for (int64_t i = 0; i < n; i++) {
        if (i + PF_SLOT < n) {
            uint64_t hh = L->h[i + PF_SLOT];
            const gb_part *q = &L->parts[gb_part_of(hh, 0)];
            if (q->slots) __builtin_prefetch(&q->slots[hh & q->mask]);
        }
        if (i + PF_REC < n) {
            uint64_t hh = L->h[i + PF_REC];
            const gb_part *q = &L->parts[gb_part_of(hh, 0)];
            if (q->slots) {
                uint64_t e = q->slots[hh & q->mask];
                if (e) __builtin_prefetch(&q->words[((e & 0xffffffffu) - 1) * (uint64_t)g->rs]);
            }
        }
        const uint64_t h = L->h[i];
        const int pi = gb_part_of(h, 0);
        gb_part *p = &L->parts[pi];
        L->pi[i] = (uint8_t)pi;
        const uint64_t tag = h >> 32 << 32;
        if (kw == 1 && ns == 0) {
            const uint64_t key = L->w[i];
            for (;;) {
                uint64_t j = h & p->mask;
                if (p->slots) {
                    for (;; j = (j + 1) & p->mask) {
                        uint64_t e = p->slots[j];
                        if (!e) break;
                        if ((e & ~0xffffffffULL) == tag && p->words[((e & 0xffffffffu) - 1) * rs] == key) {
                            L->gid[i] = (uint32_t)((e & 0xffffffffu) - 1);
                            goto next;
                        }
                    }
                    if (p->n < p->cap) {
                        int64_t gi = p->n++;
                        p->hash[gi] = h;
                        p->words[gi * rs] = key;
                        p->slots[j] = tag | (uint64_t)(gi + 1);
                        L->gid[i] = (uint32_t)gi;
                        goto next;
                    }
                }
                PT_RETURN_NOT_OK(pt__gb_part_reserve(g, L, p, 1, 0, NULL, err));
            }
        } else if (ns == 0) {
            /* keys of several words (no texts: ks == kw): compared inline */
            const uint64_t *key = L->w + i * kw;
            for (;;) {
                uint64_t j = h & p->mask;
                if (p->slots) {
                    for (;; j = (j + 1) & p->mask) {
                        uint64_t e = p->slots[j];
                        if (!e) break;
                        if ((e & ~0xffffffffULL) != tag) continue;
                        const uint64_t *gw = p->words + ((e & 0xffffffffu) - 1) * (uint64_t)rs;
                        int same = gw[0] == key[0];
                        for (int q = 1; same && q < kw; q++) same = gw[q] == key[q];
                        if (same) {
                            L->gid[i] = (uint32_t)((e & 0xffffffffu) - 1);
                            goto next;
                        }
                    }
                    if (p->n < p->cap) {
                        int64_t gi = p->n++;
                        p->hash[gi] = h;
                        memcpy(p->words + gi * rs, key, (size_t)kw * 8);
                        p->slots[j] = tag | (uint64_t)(gi + 1);
                        L->gid[i] = (uint32_t)gi;
                        goto next;
                    }
                }
                PT_RETURN_NOT_OK(pt__gb_part_reserve(g, L, p, 1, 0, NULL, err));
            }
        } else {
            const uint64_t *w = L->w + i * kw;
            const char *const *sp = L->sp + i * ns;
            const int32_t *sl = L->sl + i * ns;
            int64_t kbytes = 0;
            for (int s = 0; s < ns; s++) kbytes += sl[s] > GB_INLINE ? sl[s] : 0;
            if (p->n == p->cap || p->acap - p->alen < kbytes)
                PT_RETURN_NOT_OK(pt__gb_part_reserve(g, L, p, 1, kbytes, NULL, err));
            L->gid[i] = pt__gb_part_upsert(g, p, h, w, sp, sl);
        }
    next:;
    }
    return PT_OK;
}

/* Buckets the chunk's rows by part and reserves what the update needs. */
static pt_status bucket_and_reserve(gb_stream *g, gb_local *L, const pt_table *t, int64_t r0,
                                    int64_t n, pt_error *err) {
    int64_t cnt[GB_NPARTS + 1];
    memset(cnt, 0, sizeof cnt);
    for (int64_t i = 0; i < n; i++) cnt[L->pi[i] + 1]++;
    for (int p = 0; p < GB_NPARTS; p++) cnt[p + 1] += cnt[p];
    memcpy(L->rstart, cnt, sizeof cnt);
    for (int64_t i = 0; i < n; i++) L->idx[cnt[L->pi[i]]++] = (uint16_t)i;
    int need_arena = 0, need_pairs = 0;
    for (int j = 0; j < g->naggs; j++) {
        need_arena |= g->aggs[j].vk == GB_V_STR;
        need_pairs |= g->aggs[j].holistic;
    }
    if (!need_arena && !need_pairs) return PT_OK;
    int64_t pairs[GB_MAX_AGGS];
    for (int p = 0; p < GB_NPARTS; p++) {
        int64_t k0 = L->rstart[p], k1 = L->rstart[p + 1];
        if (k0 == k1) continue;
        int64_t arena = 0;
        for (int j = 0; j < g->naggs; j++) {
            const gb_agg *a = &g->aggs[j];
            pairs[j] = a->holistic ? k1 - k0 : 0;
            if (a->vk == GB_V_STR) {
                const pt_column *c = t->cols[a->col];
                const int64_t *o = (const int64_t *)c->values->data + c->offset + r0;
                for (int64_t k = k0; k < k1; k++) arena += o[L->idx[k] + 1] - o[L->idx[k]];
            }
        }
        PT_RETURN_NOT_OK(pt__gb_part_reserve(g, L, &L->parts[p], 0, arena, pairs, err));
    }
    return PT_OK;
}

static pt_status process_rows(gb_stream *g, gb_local *L, const pt_table *t,
                              const int32_t *const *maps, int64_t r0, int64_t nrows, int64_t pos0,
                              pt_error *err) {
    for (int64_t off = 0; off < nrows; off += GB_CHUNK) {
        int64_t n = nrows - off < GB_CHUNK ? nrows - off : GB_CHUNK;
        pt__gb_encode(g, L, t, maps, r0 + off, n);
        if (g->direct) {
            gb_part *p = &L->parts[0];
            if (!p->present) PT_RETURN_NOT_OK(pt__gb_part_init_direct(g, L, p, err));
            for (int64_t i = 0; i < n; i++) {
                L->gid[i] = (uint32_t)L->w[i];
                L->idx[i] = (uint16_t)i;
                p->present[L->w[i]] = 1;
            }
            L->rstart[0] = 0;
            L->rstart[1] = n;
        } else {
            for (int attempt = 0;; attempt++) {
                pt_status s = probe(g, L, n, err);
                if (s == PT_OK) s = bucket_and_reserve(g, L, t, r0 + off, n, err);
                if (s == PT_OK) break;
                if (s != PT_EBUDGET || attempt > 0) return s;
                /* Groups created by this chunk spill with empty states,
                 * which merge as nothing; the chunk is then done again. */
                pt_error_clear(err);
                PT_RETURN_NOT_OK(pt__gb_spill_local(g, L, &g->spill0, err));
            }
        }
        pt__gb_update(g, L, t, maps, r0 + off, n, pos0 + off);
        if (L->overflow) return PT_ERANGE;
        if (g->local_cap > 0 && L->bytes > g->local_cap && !g->direct)
            PT_RETURN_NOT_OK(pt__gb_spill_local(g, L, &g->spill0, err));
    }
    return PT_OK;
}

typedef struct morsel {
    int64_t part, r0, n, pos0;
} morsel;

typedef struct push_job {
    gb_stream *g;
    pt_table *const *parts;
    morsel *m;
} push_job;

static int local_slot(const gb_stream *g, pt_task_ctx *tc) {
    int w = pt_task_ctx_worker(tc);
    return w >= 0 && w < g->nlocals - 1 ? w : g->nlocals - 1;
}

static pt_status overflow_error(const gb_stream *g, int agg1, pt_error *err) {
    return pt_error_set(err, PT_ERANGE, "group-by: %s overflows int64 (column '%s')",
                        g->aggs[agg1 - 1].name, g->in->fields[g->aggs[agg1 - 1].col].name);
}

static pt_status push_task(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    push_job *pj = arg;
    gb_stream *g = pj->g;
    const morsel *m = &pj->m[i];
    int slot = local_slot(g, tc);
    if (!g->locals[slot]) PT_RETURN_NOT_OK(pt__gb_local_new(g, 0, &g->locals[slot], err));
    gb_local *L = g->locals[slot];
    const int32_t *const *maps = g->pmaps ? g->pmaps + m->part * g->ndm : NULL;
    pt_status s = process_rows(g, L, pj->parts[m->part], maps, m->r0, m->n, m->pos0, err);
    if (s == PT_ERANGE && L->overflow) return overflow_error(g, L->overflow, err);
    return s;
}

static pt_status check_part(const gb_stream *g, const pt_table *t, int64_t p, pt_error *err) {
    if (!t) return pt_error_set(err, PT_EINVAL, "group-by: partition %lld is NULL", (long long)p);
    if (t->schema->nfields < g->in->nfields)
        return pt_error_set(err, PT_EINVAL,
                            "group-by: partition %lld has %d columns, the schema has %d",
                            (long long)p, t->schema->nfields, g->in->nfields);
    for (int c = 0; c < g->in->nfields; c++)
        if (t->cols[c]->type != g->in->fields[c].type)
            return pt_error_set(err, PT_EINVAL,
                                "group-by: partition %lld: column '%s' is %s, the schema says %s",
                                (long long)p, g->in->fields[c].name,
                                pt_type_name(t->cols[c]->type),
                                pt_type_name(g->in->fields[c].type));
    return PT_OK;
}

pt_status pt__groupby_stream_push(gb_stream *g, pt_table *const *parts, int64_t nparts,
                                  pt_error *err) {
    if (!g) return pt_error_set(err, PT_EINVAL, "pt__groupby_stream_push: stream is NULL");
    if (g->finished)
        return pt_error_set(err, PT_EINVAL, "pt__groupby_stream_push: the stream is finished");
    if (nparts < 0 || (nparts > 0 && !parts))
        return pt_error_set(err, PT_EINVAL, "pt__groupby_stream_push: bad partitions (n=%lld)",
                            (long long)nparts);
    int64_t nm = 0;
    for (int64_t p = 0; p < nparts; p++) {
        PT_RETURN_NOT_OK(check_part(g, parts[p], p, err));
        nm += (parts[p]->nrows + MORSEL_ROWS - 1) / MORSEL_ROWS;
    }
    if (nm == 0) return PT_OK;
    PT_RETURN_NOT_OK(pt__gb_dict_prepare(g, parts, nparts, err));
    morsel *m = pt_malloc((size_t)nm * sizeof *m);
    if (!m) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    int64_t k = 0, pos = g->rows_seen;
    for (int64_t p = 0; p < nparts; p++) {
        for (int64_t r = 0; r < parts[p]->nrows; r += MORSEL_ROWS) {
            m[k].part = p;
            m[k].r0 = r;
            m[k].n = parts[p]->nrows - r < MORSEL_ROWS ? parts[p]->nrows - r : MORSEL_ROWS;
            m[k].pos0 = pos + r;
            k++;
        }
        pos += parts[p]->nrows;
    }
    push_job pj = {g, parts, m};
    pt_status s = pt_parallel_for(pt_ctx_pool(g->ctx), nm, push_task, &pj, NULL, err);
    pt_free(m);
    pt__gb_dict_release_cache(g);
    g->rows_seen = pos;
    return s;
}

/* ------------------------------------------------------------------------ */
/* The result                                                               */
/* ------------------------------------------------------------------------ */

/* A piece of the result: the groups of one part, or a range of codes of a
 * direct part. */
typedef struct seg {
    gb_part *p;
    int64_t lo, hi;
    int direct;
    int64_t rows, row0;
    int64_t *bytes; /* per output column: text bytes, then start offset */
    int64_t **pstart;
} seg;

typedef struct emit_job {
    gb_stream *g;
    seg *s;
    pt_column **cols;
    int ncols;
    int64_t nsegs;
    const int64_t *total_bytes; /* per column */
} emit_job;

static pt_type out_type(const gb_stream *g, int c) {
    return c < g->nkeys ? g->kc[c].type : g->aggs[c - g->nkeys].out_type;
}

static pt_status emit_count(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    (void)tc;
    emit_job *ej = arg;
    gb_stream *g = ej->g;
    seg *s = &ej->s[i];
    gb_part *p = s->p;
    if (!s->direct && p->st) {
        int hol = 0;
        for (int j = 0; j < g->naggs; j++) hol |= g->aggs[j].holistic;
        if (hol) PT_RETURN_NOT_OK(pt__gb_pairs_sort(g, p, p->n, s->pstart, err));
    }
    s->rows = 0;
    for (int64_t gi = s->lo; gi < s->hi; gi++) {
        if (s->direct && !p->present[gi]) continue;
        s->rows++;
        for (int c = 0; c < ej->ncols; c++) {
            if (out_type(g, c) != PT_TYPE_UTF8) continue;
            if (c < g->nkeys) s->bytes[c] += pt__gb_key_len(g, c, p, gi);
            else s->bytes[c] += pt__gb_str_bytes_agg(g, c - g->nkeys, p, gi);
        }
    }
    return PT_OK;
}

static pt_status emit_fill(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    (void)tc;
    (void)err;
    emit_job *ej = arg;
    gb_stream *g = ej->g;
    seg *s = &ej->s[i];
    gb_part *p = s->p;
    for (int c = 0; c < ej->ncols; c++) {
        pt_column *col = ej->cols[c];
        if (col->type == PT_TYPE_NULL) continue;
        int64_t row = s->row0, bp = s->bytes[c];
        if (!s->direct) {
            int64_t end = i + 1 < ej->nsegs ? ej->s[i + 1].bytes[c] : ej->total_bytes[c];
            pt__gb_emit_range(g, c, p, s->lo, s->hi, c < g->nkeys ? NULL : s->pstart[c - g->nkeys],
                              col, row, &bp, end);
            continue;
        }
        for (int64_t gi = s->lo; gi < s->hi; gi++) {
            if (s->direct && !p->present[gi]) continue;
            if (c < g->nkeys) pt__gb_decode_key(g, c, p, gi, col, row, &bp);
            else pt__gb_finalize(g, c - g->nkeys, p, gi, s->pstart[c - g->nkeys], col, row, &bp);
            row++;
        }
    }
    return PT_OK;
}

static pt_status make_col(gb_stream *g, int c, int64_t rows, int64_t bytes, pt_column **out,
                          pt_error *err) {
    pt_type t = out_type(g, c);
    if (t == PT_TYPE_DICT) {
        int dm = c < g->nkeys ? g->kc[c].dm : g->aggs[c - g->nkeys].dm;
        if (!g->dm[dm].dict)
            PT_RETURN_NOT_OK(pt_column_new(NULL, PT_TYPE_UTF8, 1, 1, &g->dm[dm].dict, err));
        PT_RETURN_NOT_OK(pt_column_new_dict(NULL, g->dm[dm].dict, rows, out, err));
    } else {
        PT_RETURN_NOT_OK(pt_column_new(NULL, t, rows, bytes, out, err));
    }
    pt_column *col = *out;
    if (t == PT_TYPE_NULL) {
        memset(col->validity->data, 0, (size_t)(rows + 7) / 8);
        return PT_OK;
    }
    /* values are zeroed by pt_column_new already */
    PT_RETURN_NOT_OK(pt_column_ensure_validity(col, err));
    memset(col->validity->data, 0xff, (size_t)(rows + 7) / 8);
    return PT_OK;
}

static void seal_col(pt_column *col, int64_t rows, int64_t bytes) {
    pt_type t = col->type;
    col->length = rows;
    if (t == PT_TYPE_NULL) {
        col->null_count = rows;
        col->validity->size = (rows + 7) / 8;
        return;
    }
    col->values->size = t == PT_TYPE_BOOL ? (rows + 7) / 8 : t == PT_TYPE_UTF8 ? (rows + 1) * 8 : rows * pt_type_width(t);
    if (t == PT_TYPE_UTF8) col->bytes->size = bytes;
    col->validity->size = (rows + 7) / 8;
    if (col->null_count == 0) {
        pt_buffer_release(col->validity);
        col->validity = NULL;
    }
}

/* Builds the result table from segments, in parallel. */
static pt_status emit(gb_stream *g, seg *segs, int64_t nsegs, pt_table **out, pt_error *err) {
    *out = NULL;
    int ncols = g->nkeys + g->naggs;
    pt_status s = PT_OK;
    int64_t *bytes = pt_calloc((size_t)(nsegs * ncols + 1), sizeof *bytes);
    int64_t **pst = pt_calloc((size_t)(nsegs * g->naggs + 1), sizeof *pst);
    pt_column **cols = pt_calloc((size_t)ncols + 1, sizeof *cols);
    if (!bytes || !pst || !cols) s = pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    for (int64_t i = 0; s == PT_OK && i < nsegs; i++) {
        segs[i].bytes = bytes + i * ncols;
        segs[i].pstart = pst + i * g->naggs;
    }
    emit_job ej = {g, segs, cols, ncols, nsegs, NULL};
    if (s == PT_OK) s = pt_parallel_for(pt_ctx_pool(g->ctx), nsegs, emit_count, &ej, NULL, err);
    int64_t rows = 0;
    int64_t *tb = pt_calloc((size_t)ncols + 1, sizeof *tb);
    if (s == PT_OK && !tb) s = pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    for (int64_t i = 0; s == PT_OK && i < nsegs; i++) {
        segs[i].row0 = rows;
        rows += segs[i].rows;
        for (int c = 0; c < ncols; c++) {
            int64_t b = segs[i].bytes[c];
            segs[i].bytes[c] = tb[c];
            tb[c] += b;
        }
    }
    ej.total_bytes = tb;
    for (int c = 0; s == PT_OK && c < ncols; c++) s = make_col(g, c, rows, tb[c], &cols[c], err);
    if (s == PT_OK) s = pt_parallel_for(pt_ctx_pool(g->ctx), nsegs, emit_fill, &ej, NULL, err);
    pt_schema *sc = NULL;
    if (s == PT_OK) {
        const char **names = pt_calloc((size_t)ncols + 1, sizeof *names);
        pt_type *types = pt_calloc((size_t)ncols + 1, sizeof *types);
        if (!names || !types) s = pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
        for (int c = 0; s == PT_OK && c < ncols; c++) {
            names[c] = c < g->nkeys ? g->in->fields[g->kc[c].col].name : g->aggs[c - g->nkeys].name;
            types[c] = out_type(g, c);
            seal_col(cols[c], rows, tb[c]);
        }
        if (s == PT_OK) s = pt_schema_new(ncols, names, types, &sc, err);
        pt_free(names);
        pt_free(types);
    }
    if (s == PT_OK) {
        s = pt_table_new(sc, cols, out, err);
    } else {
        for (int c = 0; cols && c < ncols; c++) pt_column_release(cols[c]);
    }
    for (int64_t i = 0; pst && i < nsegs * g->naggs; i++) pt_free(pst[i]);
    pt_free(pst);
    pt_free(bytes);
    pt_free(tb);
    pt_free(cols);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Merging in memory                                                        */
/* ------------------------------------------------------------------------ */

typedef struct merge_job {
    gb_stream *g;
    gb_local **act;
    int nact;
    int *failed;
    int *dst; /* per part: index into act */
} merge_job;

static pt_status merge_direct_task(pt_task_ctx *tc, void *arg, int64_t r, pt_error *err) {
    (void)tc;
    (void)err;
    merge_job *mj = arg;
    gb_stream *g = mj->g;
    int64_t card = (int64_t)g->card;
    int64_t lo = card * r / DIRECT_RANGES, hi = card * (r + 1) / DIRECT_RANGES;
    gb_part *d = &mj->act[0]->parts[0];
    int ovf = 0;
    for (int k = 1; k < mj->nact; k++) {
        gb_part *s = &mj->act[k]->parts[0];
        for (int64_t c = lo; c < hi; c++) {
            if (!s->present[c]) continue;
            pt__gb_merge_state(g, d, (uint32_t)c, s, c, &ovf);
            d->present[c] = 1;
        }
    }
    if (ovf) return overflow_error(g, ovf, err);
    return PT_OK;
}

/* Merges part p of every thread into the largest one, after growing that
 * one once to the worst case so that the merge cannot fail half-way. */
static pt_status merge_hash_task(pt_task_ctx *tc, void *arg, int64_t p, pt_error *err) {
    (void)tc;
    merge_job *mj = arg;
    gb_stream *g = mj->g;
    int best = 0;
    for (int k = 1; k < mj->nact; k++)
        if (mj->act[k]->parts[p].n > mj->act[best]->parts[p].n) best = k;
    mj->dst[p] = best;
    gb_local *D = mj->act[best];
    gb_part *d = &D->parts[p];
    int64_t groups = 0, arena = 0, pairs[GB_MAX_AGGS];
    memset(pairs, 0, sizeof(int64_t) * (size_t)g->naggs);
    for (int k = 0; k < mj->nact; k++) {
        if (k == best) continue;
        gb_part *s = &mj->act[k]->parts[p];
        groups += s->n;
        arena += s->alen;
        for (int j = 0; j < g->naggs; j++) pairs[j] += s->pairs ? s->pairs[j].n : 0;
    }
    if (groups == 0) return PT_OK;
    pt_status st = pt__gb_part_reserve(g, D, d, groups, arena, pairs, err);
    if (st == PT_EBUDGET) {
        mj->failed[p] = 1;
        pt_error_clear(err);
        return PT_OK;
    }
    PT_RETURN_NOT_OK(st);
    for (int k = 0; k < mj->nact; k++) {
        if (k == best) continue;
        gb_part *s = &mj->act[k]->parts[p];
        int64_t pos = 0;
        /* merge_part picks the destination part by hash: part p of D. */
        PT_RETURN_NOT_OK(pt__gb_merge_part(g, D, s, NULL, &pos, err));
        pt__gb_part_free(g, s);
    }
    if (D->overflow) return overflow_error(g, D->overflow, err);
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Merging spilled partitions                                               */
/* ------------------------------------------------------------------------ */

typedef struct chunks {
    pt_table **t;
    int n, cap;
} chunks;

static pt_status emit_local(gb_stream *g, gb_local *L, chunks *ch, pt_error *err) {
    seg segs[GB_NPARTS];
    int ns = 0;
    for (int p = 0; p < GB_NPARTS; p++) {
        if (L->parts[p].n == 0) continue;
        memset(&segs[ns], 0, sizeof segs[ns]);
        segs[ns].p = &L->parts[p];
        segs[ns].lo = 0;
        segs[ns].hi = L->parts[p].n;
        ns++;
    }
    if (ns == 0) return PT_OK;
    if (ch->n == ch->cap) {
        int cap = ch->cap ? ch->cap * 2 : 16;
        pt_table **t = pt_realloc(ch->t, (size_t)cap * sizeof *t);
        if (!t) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
        ch->t = t;
        ch->cap = cap;
    }
    PT_RETURN_NOT_OK(emit(g, segs, ns, &ch->t[ch->n], err));
    ch->n++;
    return PT_OK;
}

/* Merges the units of one spill partition at `level` and emits its
 * groups; recurses into sub-partitions when they do not fit. */
static pt_status merge_spilled(gb_stream *g, gb_unit *units, int64_t nunits, int level, chunks *ch,
                               pt_error *err) {
    if (nunits == 0) return PT_OK;
    if (level > GB_MAX_LEVEL)
        return pt_error_set(err, PT_EBUDGET,
                            "group-by: the memory budget (%lld bytes) is too small even for one "
                            "spill partition after %d levels of repartitioning",
                            (long long)pt_mem_limit(g->mem), GB_MAX_LEVEL);
    gb_local *L = NULL;
    gb_spillset sub;
    memset(&sub, 0, sizeof sub);
    pt_status s = pt__gb_local_new(g, level, &L, err);
    int subspilled = 0;
    for (int64_t u = 0; s == PT_OK && u < nunits; u++) {
        gb_part src;
        s = pt__gb_unit_load(g, &units[u], &src, err);
        if (s != PT_OK) break;
        int64_t *pstart[GB_MAX_AGGS];
        s = pt__gb_pairs_sort(g, &src, src.n, pstart, err);
        if (s != PT_OK) {
            pt__gb_part_free(g, &src);
            break;
        }
        int64_t pos = 0;
        for (;;) {
            s = pt__gb_merge_part(g, L, &src, pstart, &pos, err);
            if (s != PT_EBUDGET || L->bytes == 0) break;
            pt_error_clear(err);
            s = pt__gb_spill_local(g, L, &sub, err);
            subspilled = 1;
            if (s != PT_OK) break;
        }
        for (int j = 0; j < g->naggs; j++) pt_free(pstart[j]);
        pt__gb_part_free(g, &src);
        if (s == PT_OK && L->overflow) s = overflow_error(g, L->overflow, err);
    }
    if (s == PT_OK && !subspilled) {
        s = emit_local(g, L, ch, err);
    } else if (s == PT_OK) {
        s = pt__gb_spill_local(g, L, &sub, err);
        pt__gb_local_free(g, L);
        L = NULL;
        for (int p = 0; s == PT_OK && p < GB_NPARTS; p++)
            s = merge_spilled(g, sub.u[p], sub.n[p], level + 1, ch, err);
    }
    pt__gb_local_free(g, L);
    pt__gb_spillset_free(g, &sub);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Finish                                                                   */
/* ------------------------------------------------------------------------ */

static pt_status finish_spilled(gb_stream *g, pt_table **out, pt_error *err) {
    for (int i = 0; i < g->nlocals; i++)
        if (g->locals[i]) PT_RETURN_NOT_OK(pt__gb_spill_local(g, g->locals[i], &g->spill0, err));
    chunks ch = {NULL, 0, 0};
    pt_status s = PT_OK;
    for (int p = 0; s == PT_OK && p < GB_NPARTS; p++) {
        s = merge_spilled(g, g->spill0.u[p], g->spill0.n[p], 1, &ch, err);
        for (int64_t u = 0; u < g->spill0.n[p]; u++) pt__gb_unit_free(g, &g->spill0.u[p][u]);
        g->spill0.n[p] = 0;
    }
    if (s == PT_OK) {
        if (ch.n == 0) {
            seg none;
            memset(&none, 0, sizeof none);
            s = emit(g, &none, 0, out, err);
        } else if (ch.n == 1) {
            *out = ch.t[0];
            ch.t[0] = NULL;
        } else {
            s = pt_table_concat(NULL, ch.t, ch.n, out, err);
        }
    }
    for (int i = 0; i < ch.n; i++) pt_table_free(ch.t[i]);
    pt_free(ch.t);
    return s;
}

pt_status pt__groupby_stream_finish(gb_stream *g, pt_table **out, pt_error *err) {
    if (!g || !out) return pt_error_set(err, PT_EINVAL, "pt__groupby_stream_finish: NULL argument");
    *out = NULL;
    if (g->finished)
        return pt_error_set(err, PT_EINVAL, "pt__groupby_stream_finish: called twice");
    g->finished = 1;
    pt_status s = PT_OK;
    gb_local **act = pt_calloc((size_t)g->nlocals + 1, sizeof *act);
    if (!act) return pt_error_set(err, PT_ENOMEM, "group-by: out of memory");
    int nact = 0;
    for (int i = 0; i < g->nlocals; i++)
        if (g->locals[i]) act[nact++] = g->locals[i];
    if (g->nkeys == 0 && nact == 0) {
        /* Global aggregates of no rows still give one row. */
        s = pt__gb_local_new(g, 0, &g->locals[0], err);
        if (s == PT_OK) act[nact++] = g->locals[0];
    }
    if (s == PT_OK && g->direct && nact > 0 && !act[0]->parts[0].present)
        s = pt__gb_part_init_direct(g, act[0], &act[0]->parts[0], err);
    if (s == PT_OK && g->nkeys == 0 && !g->direct) {
        /* The one global group must exist even when no row reached it. */
        uint64_t w0 = 0, h = pt__gb_hash_row(g, &w0, NULL, NULL);
        gb_part *p = &act[0]->parts[gb_part_of(h, 0)];
        s = pt__gb_part_reserve(g, act[0], p, 1, 0, NULL, err);
        if (s == PT_OK) (void)pt__gb_part_upsert(g, p, h, &w0, NULL, NULL);
    }
    if (s != PT_OK) {
        pt_free(act);
        return s;
    }
    if (g->spilled) {
        s = finish_spilled(g, out, err);
    } else if (g->direct && nact > 0) {
        for (int k = 1; k < nact; k++)
            if (!act[k]->parts[0].present) act[k--] = act[--nact];
        merge_job mj = {g, act, nact, NULL, NULL};
        gb_part *d = &act[0]->parts[0];
        if (g->nkeys == 0) d->present[0] = 1;
        s = pt_parallel_for(pt_ctx_pool(g->ctx), DIRECT_RANGES, merge_direct_task, &mj, NULL, err);
        seg segs[DIRECT_RANGES];
        memset(segs, 0, sizeof segs);
        for (int r = 0; r < DIRECT_RANGES; r++) {
            segs[r].p = d;
            segs[r].direct = 1;
            segs[r].lo = (int64_t)g->card * r / DIRECT_RANGES;
            segs[r].hi = (int64_t)g->card * (r + 1) / DIRECT_RANGES;
        }
        if (s == PT_OK) s = emit(g, segs, DIRECT_RANGES, out, err);
    } else {
        int failed[GB_NPARTS] = {0}, dst[GB_NPARTS] = {0};
        merge_job mj = {g, act, nact, failed, dst};
        if (nact > 0) s = pt_parallel_for(pt_ctx_pool(g->ctx), GB_NPARTS, merge_hash_task, &mj, NULL, err);
        int anyfail = 0;
        for (int p = 0; p < GB_NPARTS; p++) anyfail |= failed[p];
        if (s == PT_OK && anyfail) {
            s = finish_spilled(g, out, err);
        } else if (s == PT_OK) {
            seg segs[GB_NPARTS];
            int ns = 0;
            for (int p = 0; p < GB_NPARTS && nact > 0; p++) {
                gb_part *pp = &act[dst[p]]->parts[p];
                if (pp->n == 0) continue;
                memset(&segs[ns], 0, sizeof segs[ns]);
                segs[ns].p = pp;
                segs[ns].hi = pp->n;
                ns++;
            }
            s = emit(g, segs, ns, out, err);
        }
    }
    pt_free(act);
    /* The tables are no longer needed: give their memory back now. */
    for (int i = 0; i < g->nlocals; i++) {
        pt__gb_local_free(g, g->locals[i]);
        g->locals[i] = NULL;
    }
    if (g->sd) {
        pt__spill_stats st;
        pt__spill_stats_get((const pt__spill_dir *)g->sd, &st);
        g->spilled_bytes = st.bytes_written;
        pt__gb_spillset_free(g, &g->spill0);
        pt__spill_dir_free((pt__spill_dir *)g->sd);
        g->sd = NULL;
    }
    if (s == PT_OK) g->groups = (*out)->nrows;
    else {
        pt_table_free(*out);
        *out = NULL;
    }
    return s;
}

/* ------------------------------------------------------------------------ */
/* One-shot form                                                            */
/* ------------------------------------------------------------------------ */

pt_status pt__groupby(pt_ctx *ctx, pt_table *const *parts, int64_t nparts, int nkeys,
                      const int *keys, int naggs, const pt__agg_spec *aggs, pt_table **out,
                      pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt__groupby: out is NULL");
    *out = NULL;
    if (nparts < 0 || (nparts > 0 && !parts))
        return pt_error_set(err, PT_EINVAL, "pt__groupby: bad partitions (n=%lld)", (long long)nparts);
    if (nparts == 0)
        return pt_error_set(err, PT_EINVAL,
                            "pt__groupby: no partitions (the schema comes from the first one)");
    for (int64_t p = 0; p < nparts; p++)
        if (!parts[p])
            return pt_error_set(err, PT_EINVAL, "pt__groupby: partition %lld is NULL", (long long)p);
    const pt_schema *in = parts[0]->schema;
    for (int64_t p = 1; p < nparts; p++) {
        const pt_schema *s = parts[p]->schema;
        if (s->nfields != in->nfields)
            return pt_error_set(err, PT_EINVAL,
                                "pt__groupby: partition %lld has %d columns, partition 0 has %d",
                                (long long)p, s->nfields, in->nfields);
        for (int c = 0; c < in->nfields; c++)
            if (s->fields[c].type != in->fields[c].type)
                return pt_error_set(err, PT_EINVAL,
                                    "pt__groupby: partition %lld: column '%s' is %s, partition 0 "
                                    "has %s",
                                    (long long)p, in->fields[c].name,
                                    pt_type_name(s->fields[c].type), pt_type_name(in->fields[c].type));
    }
    /* The commonest shape has a one-pass path (groupby_fused.c). */
    pt_status fs = pt__gb_fused(ctx, parts, nparts, nkeys, keys, naggs, aggs, out, err);
    if (fs != PT_OK || *out) return fs;
    gb_stream *g = NULL;
    /* With the whole input at hand, key ranges and dictionary sizes are
     * measured up front (gb_new checks positions before that). */
    pt_status s = gb_new(ctx, in, nkeys, keys, naggs, aggs, parts, nparts, &g, err);
    /* many groups: partition the rows first (groupby_radix.c) */
    if (s == PT_OK) s = pt__gb_radix(g, parts, nparts, out, err);
    if (s == PT_OK && !*out) {
        s = pt__groupby_stream_push(g, parts, nparts, err);
        if (s == PT_OK && g->hol_direct) s = pt__gb_holistic_direct(g, parts, nparts, err);
        if (s == PT_OK) s = pt__groupby_stream_finish(g, out, err);
    }
    pt__groupby_stream_free(g);
    return s;
}
