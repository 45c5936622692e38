/*
 * sort_stream.c - external merge sort for inputs larger than memory.
 *
 * Pushed rows are copied into the current run (charged to the budget, so
 * the caller may free its batches). When the run's data plus the 32 bytes
 * per row the in-memory sort needs would pass half the budget, or a copy
 * fails with PT_EBUDGET, the run is sorted in memory and written to a spill
 * file in batches. After the last push, next() hands out batches: straight
 * from the sorted run when nothing was spilled, else from a k-way merge of
 * the runs (a heap of run cursors, ties to the earlier run, so the result is
 * stable). Each run cursor holds one batch, so the fan-in is limited by the
 * budget; with more runs than that, groups of runs are merged into longer
 * runs first (several passes if needed).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "frame/sort_internal.h"
#include "io/io_native.h"

#define OUT_BATCH_ROWS 65536
#define MIN_BATCH_ROWS 64

/* A cursor over one spilled run during a merge. */
typedef struct msrc {
    pt_native_reader *r;
    int64_t nbatches, next_batch;
    pt_table *cur;    /* borrowed from the merger's held list */
    int64_t held;     /* index of cur in the held list */
    int64_t row;
} msrc;

typedef struct merger {
    msrc *src;
    int64_t nsrc;
    int64_t *heap; /* source indices, smallest current row on top */
    int64_t hn;
    pt_table **held; /* tables the pending output rows point into */
    int64_t nheld, capheld;
    uint64_t *ids;
    char **paths; /* the runs being merged (removed at the end) */
} merger;

struct pt__sort_stream {
    pt_ctx *ctx;
    pt_mem *mem;
    pt_mem *soft; /* transient batches (spill writes, merge output): counted, never refused */
    int64_t limit;
    pt_schema *schema;
    int nkeys;
    pt__sort_key *keys;
    /* The run being filled. */
    pt_table **run;
    int64_t nrun, caprun, run_rows, run_bytes;
    /* Runs on disk, in input order. */
    pt__spill_dir *sd;
    char **paths;
    int64_t npaths, cappaths;
    int64_t runs_written, spilled_bytes;
    int64_t batch_rows; /* rows per spilled batch; 0 until the first spill */
    pt_status failed;
    bool finished, done;
    /* Output from memory. */
    pt__sort_plan plan;
    bool have_plan;
    pt__sort_kv *kv;
    int64_t kv_bytes, pos;
    /* Output from a merge. */
    merger *mg;
};

/* Bytes a copy of t will take, roughly (no rounding of buffers). */
static int64_t table_bytes(const pt_table *t) {
    int64_t b = 0, n = t->nrows;
    for (int i = 0; i < t->schema->nfields; i++) {
        const pt_column *c = t->cols[i];
        if (c->null_count > 0) b += (n + 7) / 8;
        switch (c->type) {
        case PT_TYPE_NULL: break;
        case PT_TYPE_BOOL: b += (n + 7) / 8; break;
        case PT_TYPE_UTF8: {
            const int64_t *o = (const int64_t *)c->values->data + c->offset;
            b += (n + 1) * 8 + (n > 0 ? o[n] - o[0] : 0);
            break;
        }
        case PT_TYPE_DICT: {
            const pt_column *d = c->dict;
            const int64_t *o = (const int64_t *)d->values->data + d->offset;
            b += n * 4 + (d->length + 1) * 8 + (d->length > 0 ? o[d->length] - o[0] : 0);
            break;
        }
        default: b += n * pt_type_width(c->type); break;
        }
    }
    return b + 64 * (int64_t)t->schema->nfields;
}

static void free_run(pt__sort_stream *s) {
    for (int64_t i = 0; i < s->nrun; i++) pt_table_free(s->run[i]);
    s->nrun = 0;
    s->run_rows = 0;
    s->run_bytes = 0;
}

static pt_status fail(pt__sort_stream *s, pt_status st) {
    if (st != PT_OK && s->failed == PT_OK) s->failed = st;
    return st;
}

static pt_status add_path(pt__sort_stream *s, const char *path, pt_error *err) {
    if (s->npaths == s->cappaths) {
        int64_t cap = s->cappaths ? 2 * s->cappaths : 16;
        char **p = pt_realloc(s->paths, (size_t)cap * sizeof *p);
        if (!p) return pt_error_set(err, PT_ENOMEM, "sort: out of memory");
        s->paths = p;
        s->cappaths = cap;
    }
    s->paths[s->npaths] = pt_strdup(path);
    if (!s->paths[s->npaths]) return pt_error_set(err, PT_ENOMEM, "sort: out of memory");
    s->npaths++;
    return PT_OK;
}

static int64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* Opens a new spill file for a run. */
static pt_status open_run(pt__sort_stream *s, char *path, size_t cap, pt_native_writer **w,
                          pt_error *err) {
    if (!s->sd) PT_RETURN_NOT_OK(pt__spill_dir_new_ctx(s->ctx, &s->sd, err));
    PT_RETURN_NOT_OK(pt__spill_file_path(s->sd, "sort-run", path, cap, err));
    pt_native_write_opts o;
    pt_native_write_opts_init(&o);
    o.durable = 0;
    /* The writer's buffers are a fixed megabyte or so whatever the data,
     * so they are not charged: a small budget would otherwise go to I/O
     * buffers rather than to rows. */
    o.mem = NULL;
    return pt_native_open_write(path, s->schema, &o, w, err);
}

static pt_status close_run(pt__sort_stream *s, pt_native_writer *w, const char *path,
                           pt_error *err) {
    PT_RETURN_NOT_OK(pt_native_close_write(w, err));
    int64_t bytes = file_size(path);
    s->spilled_bytes += bytes;
    pt__spill_add_written(s->sd, bytes);
    return add_path(s, path, err);
}

/* Sorts the current run in memory; on success s->kv holds its order. */
static pt_status sort_run(pt__sort_stream *s, pt_error *err) {
    pt_status st = pt__sort_plan_init(&s->plan, "pt__sort_stream", s->ctx, s->run, s->nrun,
                                      s->nkeys, s->keys, err);
    if (st != PT_OK) return st;
    s->have_plan = true;
    int64_t n = s->plan.nrows, half = n * (int64_t)sizeof(pt__sort_kv);
    /* The run was sized to leave room for this; force it rather than fail
     * when another operator took the slack meanwhile. */
    pt_mem_force(s->mem, 2 * half);
    s->kv = pt_malloc((size_t)(half ? half : 1));
    pt__sort_kv *tmp = pt_malloc((size_t)(half ? half : 1));
    s->kv_bytes = 2 * half;
    if (!s->kv || !tmp) st = pt_error_set(err, PT_ENOMEM, "sort: out of memory for %lld keys", (long long)n);
    if (st == PT_OK) st = pt__sort_fill_ids(&s->plan, s->kv, err);
    if (st == PT_OK) st = pt__sort_kv_run(&s->plan, s->kv, tmp, n, err);
    pt_free(tmp);
    pt_mem_release(s->mem, half);
    s->kv_bytes = half;
    return st;
}

static void drop_sorted(pt__sort_stream *s) {
    pt_free(s->kv);
    s->kv = NULL;
    pt_mem_release(s->mem, s->kv_bytes);
    s->kv_bytes = 0;
    if (s->have_plan) pt__sort_plan_reset(&s->plan);
    s->have_plan = false;
}

static void pick_batch_rows(pt__sort_stream *s) {
    if (s->batch_rows > 0) return;
    int64_t bpr = s->run_rows > 0 ? s->run_bytes / s->run_rows + 1 : 64;
    int64_t target = s->limit > 0 ? s->limit / 32 : INT64_MAX;
    int64_t rows = target / bpr;
    if (rows < MIN_BATCH_ROWS) rows = MIN_BATCH_ROWS;
    if (rows > OUT_BATCH_ROWS) rows = OUT_BATCH_ROWS;
    s->batch_rows = rows;
}

/* Sorts the current run and writes it to a new spill file. */
static pt_status spill_run(pt__sort_stream *s, pt_error *err) {
    if (s->run_rows == 0) {
        free_run(s);
        return PT_OK;
    }
    pick_batch_rows(s);
    pt_status st = sort_run(s, err);
    char path[4096];
    pt_native_writer *w = NULL;
    if (st == PT_OK) st = open_run(s, path, sizeof path, &w, err);
    int64_t n = s->plan.nrows;
    for (int64_t pos = 0; pos < n && st == PT_OK; pos += s->batch_rows) {
        int64_t cnt = n - pos < s->batch_rows ? n - pos : s->batch_rows;
        pt_table *b;
        /* The batch lives only until it is written: spilling must always be
         * able to make progress, so it is counted but never refused. */
        st = pt__sort_gather(s->plan.pool, s->soft, s->run, s->nrun, &s->kv[pos].v, 2, cnt, NULL, 0,
                             &b, err);
        if (st == PT_OK) st = pt_native_write_batch(w, b, err);
        pt_table_free(b);
    }
    if (st == PT_OK) {
        st = close_run(s, w, path, err);
        if (st == PT_OK) s->runs_written++;
    } else if (w) {
        pt_native_abort_write(w);
    }
    drop_sorted(s);
    free_run(s);
    return st;
}

pt_status pt__sort_stream_new(pt_ctx *ctx, const pt_schema *in, int nkeys,
                              const pt__sort_key *keys, pt__sort_stream **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt__sort_stream_new: out is NULL");
    *out = NULL;
    if (!ctx) return pt_error_set(err, PT_EINVAL, "pt__sort_stream_new: ctx is NULL");
    if (!in) return pt_error_set(err, PT_EINVAL, "pt__sort_stream_new: in (the schema) is NULL");
    PT_RETURN_NOT_OK(pt__sort_check_keys("pt__sort_stream_new", in, nkeys, keys, err));
    pt__sort_stream *s = pt_calloc(1, sizeof *s);
    if (!s) return pt_error_set(err, PT_ENOMEM, "pt__sort_stream_new: out of memory");
    s->ctx = ctx;
    s->mem = pt_ctx_mem(ctx);
    s->soft = pt_ctx_mem_soft(ctx);
    s->limit = pt_mem_limit(s->mem);
    s->nkeys = nkeys;
    s->keys = pt_malloc((size_t)(nkeys ? nkeys : 1) * sizeof *s->keys);
    if (!s->keys) {
        pt_free(s);
        return pt_error_set(err, PT_ENOMEM, "pt__sort_stream_new: out of memory");
    }
    if (nkeys) memcpy(s->keys, keys, (size_t)nkeys * sizeof *keys);
    pt_status st = pt_schema_copy(in, &s->schema, err);
    if (st != PT_OK) {
        pt_free(s->keys);
        pt_free(s);
        return st;
    }
    *out = s;
    return PT_OK;
}

static pt_status append_run(pt__sort_stream *s, pt_table *t, pt_error *err) {
    if (s->nrun == s->caprun) {
        int64_t cap = s->caprun ? 2 * s->caprun : 16;
        pt_table **r = pt_realloc(s->run, (size_t)cap * sizeof *r);
        if (!r) return pt_error_set(err, PT_ENOMEM, "sort: out of memory");
        s->run = r;
        s->caprun = cap;
    }
    s->run[s->nrun++] = t;
    s->run_rows += t->nrows;
    s->run_bytes += pt_table_nbytes(t);
    return PT_OK;
}

/* Copies a pushed table into memory charged to the budget. The copy is a
 * gather in row order, which keeps a dictionary column's dictionary object
 * (a shared reference, not a copy): batches cut from one table then share
 * it and the sort compares their entries by one rank table. */
static pt_status copy_table(pt__sort_stream *s, pt_table *const *one, pt_table **out,
                            pt_error *err) {
    int64_t n = one[0]->nrows;
    uint64_t *ids = pt_malloc((size_t)n * sizeof *ids);
    if (!ids) return pt_error_set(err, PT_ENOMEM, "pt__sort_stream_push: out of memory");
    for (int64_t i = 0; i < n; i++) ids[i] = (uint64_t)i;
    pt_pool *pool = n >= (INT64_C(1) << 16) ? pt_ctx_pool(s->ctx) : NULL;
    pt_status st = pt__sort_gather(pool, s->mem, one, 1, ids, 1, n, NULL, 0, out, err);
    pt_free(ids);
    return st;
}

/* Adds one table to the run, spilling the run first when it would grow
 * past its share, and splitting tables too big for one run. */
static pt_status add_table(pt__sort_stream *s, const pt_table *t, pt_error *err) {
    int64_t n = t->nrows;
    if (n == 0) return PT_OK;
    int64_t est = table_bytes(t);
    int64_t share = s->limit / 2;
    int64_t per = (est + 32 * n) / n + 1;
    int64_t rows = per > 0 ? (share / 2) / per : n;
    if (rows < 1) rows = 1;
    if (s->limit > 0 && rows < n) {
        /* Too big for a comfortable run: add it in slices. */
        for (int64_t a = 0; a < n; a += rows) {
            pt_table *sl;
            PT_RETURN_NOT_OK(pt_table_slice(t, a, n - a < rows ? n - a : rows, &sl, err));
            pt_status st = add_table(s, sl, err);
            pt_table_free(sl);
            PT_RETURN_NOT_OK(st);
        }
        return PT_OK;
    }
    if (s->limit > 0 && s->run_rows > 0 &&
        s->run_bytes + est + 32 * (s->run_rows + n) > share)
        PT_RETURN_NOT_OK(spill_run(s, err));
    for (;;) {
        pt_table *copy;
        pt_error e2;
        pt_table *one[1] = {(pt_table *)t};
        pt_status st = copy_table(s, one, &copy, &e2);
        if (st == PT_OK) {
            st = append_run(s, copy, err);
            if (st != PT_OK) pt_table_free(copy);
            return st;
        }
        if (st != PT_EBUDGET) {
            if (err) *err = e2;
            return st;
        }
        if (s->run_rows > 0) {
            PT_RETURN_NOT_OK(spill_run(s, err));
            continue;
        }
        if (n > 1) {
            int64_t h = n / 2;
            pt_table *a, *b;
            PT_RETURN_NOT_OK(pt_table_slice(t, 0, h, &a, err));
            st = pt_table_slice(t, h, n - h, &b, err);
            if (st == PT_OK) st = add_table(s, a, err);
            if (st == PT_OK) st = add_table(s, b, err);
            pt_table_free(a);
            pt_table_free(b);
            return st;
        }
        if (err) *err = e2;
        return pt_error_prefix(err, "pt__sort_stream_push: a single row does not fit the budget");
    }
}

pt_status pt__sort_stream_push(pt__sort_stream *s, pt_table *const *parts, int64_t nparts,
                               pt_error *err) {
    if (!s) return pt_error_set(err, PT_EINVAL, "pt__sort_stream_push: s is NULL");
    if (s->failed != PT_OK)
        return pt_error_set(err, PT_EINVAL, "pt__sort_stream_push: the stream failed earlier (%s)",
                            pt_status_name(s->failed));
    if (s->finished)
        return pt_error_set(err, PT_EINVAL, "pt__sort_stream_push: called after pt__sort_stream_next");
    if (nparts < 0 || (nparts > 0 && !parts))
        return pt_error_set(err, PT_EINVAL, "pt__sort_stream_push: parts is NULL or nparts < 0");
    for (int64_t p = 0; p < nparts; p++) {
        const pt_table *t = parts[p];
        if (!t) return pt_error_set(err, PT_EINVAL, "pt__sort_stream_push: parts[%lld] is NULL", (long long)p);
        if (t->schema->nfields != s->schema->nfields)
            return pt_error_set(err, PT_EINVAL,
                                "pt__sort_stream_push: parts[%lld] has %d columns, the stream has %d",
                                (long long)p, t->schema->nfields, s->schema->nfields);
        for (int i = 0; i < s->schema->nfields; i++)
            if (t->schema->fields[i].type != s->schema->fields[i].type)
                return pt_error_set(err, PT_EINVAL,
                                    "pt__sort_stream_push: parts[%lld] column %d '%s' is %s, the stream has %s",
                                    (long long)p, i, t->schema->fields[i].name,
                                    pt_type_name(t->schema->fields[i].type),
                                    pt_type_name(s->schema->fields[i].type));
    }
    for (int64_t p = 0; p < nparts; p++) {
        pt_status st = add_table(s, parts[p], err);
        if (st != PT_OK) {
            pt_error_prefix(err, "pt__sort_stream_push: run %lld", (long long)s->runs_written + 1);
            return fail(s, st);
        }
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Merging                                                                  */
/* ------------------------------------------------------------------------ */

static bool src_less(const pt__sort_stream *s, const merger *m, int64_t a, int64_t b) {
    const msrc *x = &m->src[a], *y = &m->src[b];
    int c = pt__sort_cmp_rows(x->cur, x->row, y->cur, y->row, s->nkeys, s->keys);
    return c < 0 || (c == 0 && a < b);
}

static void heap_down(const pt__sort_stream *s, merger *m, int64_t i) {
    int64_t x = m->heap[i];
    for (;;) {
        int64_t l = 2 * i + 1;
        if (l >= m->hn) break;
        int64_t c = l + 1 < m->hn && src_less(s, m, m->heap[l + 1], m->heap[l]) ? l + 1 : l;
        if (!src_less(s, m, m->heap[c], x)) break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    m->heap[i] = x;
}

static pt_status hold(merger *m, pt_table *t, int64_t *idx, pt_error *err) {
    if (m->nheld == m->capheld) {
        int64_t cap = m->capheld ? 2 * m->capheld : 16;
        pt_table **h = pt_realloc(m->held, (size_t)cap * sizeof *h);
        if (!h) return pt_error_set(err, PT_ENOMEM, "sort: out of memory merging runs");
        m->held = h;
        m->capheld = cap;
    }
    m->held[m->nheld] = t;
    *idx = m->nheld++;
    return PT_OK;
}

/* Moves source i to its next non-empty batch; *alive = false at its end. */
static pt_status advance_batch(pt__sort_stream *s, merger *m, int64_t i, bool *alive,
                               pt_error *err) {
    msrc *x = &m->src[i];
    *alive = false;
    while (x->next_batch < x->nbatches) {
        pt_table *t;
        PT_RETURN_NOT_OK(pt_native_read_batch(x->r, x->next_batch++, NULL, 0, &t, err));
        if (t->nrows == 0) {
            pt_table_free(t);
            continue;
        }
        pt_status st = hold(m, t, &x->held, err);
        if (st != PT_OK) {
            pt_table_free(t);
            return st;
        }
        x->cur = t;
        x->row = 0;
        *alive = true;
        return PT_OK;
    }
    pt_native_close_read(x->r);
    x->r = NULL;
    x->cur = NULL;
    return PT_OK;
}

static void merger_free(merger *m) {
    if (!m) return;
    for (int64_t i = 0; i < m->nsrc; i++) pt_native_close_read(m->src[i].r);
    for (int64_t i = 0; i < m->nheld; i++) pt_table_free(m->held[i]);
    pt_free(m->held);
    pt_free(m->src);
    pt_free(m->heap);
    pt_free(m->ids);
    pt_free(m->paths);
    pt_free(m);
}

/* Opens a merge over paths[0, n) (borrowed strings). */
static pt_status merger_new(pt__sort_stream *s, char **paths, int64_t n, merger **out,
                            pt_error *err) {
    *out = NULL;
    merger *m = pt_calloc(1, sizeof *m);
    if (!m) return pt_error_set(err, PT_ENOMEM, "sort: out of memory merging runs");
    m->src = pt_calloc((size_t)n, sizeof *m->src);
    m->heap = pt_malloc((size_t)n * sizeof *m->heap);
    m->ids = pt_malloc((size_t)s->batch_rows * sizeof *m->ids);
    m->paths = pt_malloc((size_t)n * sizeof *m->paths);
    pt_status st = PT_OK;
    if (!m->src || !m->heap || !m->ids || !m->paths)
        st = pt_error_set(err, PT_ENOMEM, "sort: out of memory merging runs");
    for (int64_t i = 0; i < n && st == PT_OK; i++) {
        m->paths[i] = paths[i];
        m->nsrc = i + 1;
        st = pt_native_open_read(s->mem, paths[i], &m->src[i].r, err);
        if (st != PT_OK) break;
        m->src[i].nbatches = pt_native_num_batches(m->src[i].r);
        bool alive;
        st = advance_batch(s, m, i, &alive, err);
        if (st == PT_OK && alive) m->heap[m->hn++] = i;
    }
    if (st != PT_OK) {
        merger_free(m);
        return st;
    }
    for (int64_t i = m->hn / 2 - 1; i >= 0; i--) heap_down(s, m, i);
    *out = m;
    return PT_OK;
}

/* The next batch of merged rows, or *out = NULL at the end. */
static pt_status merger_next(pt__sort_stream *s, merger *m, pt_table **out, pt_error *err) {
    *out = NULL;
    int64_t cnt = 0;
    while (cnt < s->batch_rows && m->hn > 0) {
        int64_t i = m->heap[0];
        msrc *x = &m->src[i];
        m->ids[cnt++] = pt__sort_id(x->held, x->row);
        if (++x->row == x->cur->nrows) {
            bool alive;
            PT_RETURN_NOT_OK(advance_batch(s, m, i, &alive, err));
            if (!alive) {
                m->heap[0] = m->heap[--m->hn];
                if (m->hn == 0) break;
            }
        }
        heap_down(s, m, 0);
    }
    if (cnt == 0) return PT_OK;
    PT_RETURN_NOT_OK(pt__sort_gather(pt_ctx_pool(s->ctx), s->soft, m->held, m->nheld, m->ids, 1,
                                     cnt, NULL, 0, out, err));
    /* Keep only the batches still being read. */
    int64_t k = 0;
    for (int64_t h = 0; h < m->nheld; h++) {
        int64_t owner = -1;
        for (int64_t i = 0; i < m->nsrc && owner < 0; i++)
            if (m->src[i].cur && m->src[i].held == h) owner = i;
        if (owner < 0) {
            pt_table_free(m->held[h]);
            continue;
        }
        m->held[k] = m->held[h];
        m->src[owner].held = k++;
    }
    m->nheld = k;
    return PT_OK;
}

/* Runs merged at once: every cursor holds a batch (and briefly the next). */
static int64_t fan_in(const pt__sort_stream *s) {
    if (s->limit <= 0) return INT64_MAX;
    int64_t batch = s->limit / 32; /* the size pick_batch_rows aims at */
    int64_t f = (s->limit / 2) / (2 * batch);
    return f < 2 ? 2 : f;
}

/* Merges runs into fewer, longer runs until one merge can take them all. */
static pt_status merge_passes(pt__sort_stream *s, pt_error *err) {
    int64_t f = fan_in(s);
    while (s->npaths > f) {
        char **old = s->paths;
        int64_t nold = s->npaths;
        s->paths = NULL;
        s->npaths = s->cappaths = 0;
        pt_status st = PT_OK;
        int64_t g = 0;
        for (; g < nold && st == PT_OK; g += f) {
            int64_t n = nold - g < f ? nold - g : f;
            if (n == 1) {
                st = add_path(s, old[g], err);
                continue;
            }
            merger *m;
            st = merger_new(s, old + g, n, &m, err);
            if (st != PT_OK) break;
            char path[4096];
            pt_native_writer *w = NULL;
            st = open_run(s, path, sizeof path, &w, err);
            while (st == PT_OK) {
                pt_table *b;
                st = merger_next(s, m, &b, err);
                if (st != PT_OK || !b) break;
                st = pt_native_write_batch(w, b, err);
                pt_table_free(b);
            }
            merger_free(m);
            if (st == PT_OK) {
                st = close_run(s, w, path, err);
            } else if (w) {
                pt_native_abort_write(w);
            }
            for (int64_t i = 0; i < n; i++) pt__spill_remove(s->sd, old[g + i]);
        }
        /* Runs not merged because of a failure still belong to the dir,
         * which removes them on free. */
        for (int64_t i = 0; i < nold; i++) pt_free(old[i]);
        pt_free(old);
        if (st != PT_OK) return st;
    }
    return PT_OK;
}

pt_status pt__sort_stream_next(pt__sort_stream *s, pt_table **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt__sort_stream_next: out is NULL");
    *out = NULL;
    if (!s) return pt_error_set(err, PT_EINVAL, "pt__sort_stream_next: s is NULL");
    if (s->failed != PT_OK)
        return pt_error_set(err, PT_EINVAL, "pt__sort_stream_next: the stream failed earlier (%s)",
                            pt_status_name(s->failed));
    if (s->done) return PT_OK;
    if (!s->finished) {
        s->finished = true;
        if (s->npaths == 0) {
            if (s->run_rows == 0) {
                s->done = true;
                return PT_OK;
            }
            pt_status st = sort_run(s, err);
            if (st != PT_OK) return fail(s, st);
            s->pos = 0;
        } else {
            pt_status st = spill_run(s, err);
            if (st == PT_OK) st = merge_passes(s, err);
            if (st == PT_OK) st = merger_new(s, s->paths, s->npaths, &s->mg, err);
            if (st != PT_OK) {
                pt_error_prefix(err, "pt__sort_stream_next: merging %lld runs", (long long)s->npaths);
                return fail(s, st);
            }
        }
    }
    if (s->mg) {
        pt_status st = merger_next(s, s->mg, out, err);
        if (st != PT_OK) {
            pt_error_prefix(err, "pt__sort_stream_next: final merge of %lld runs", (long long)s->npaths);
            return fail(s, st);
        }
        if (!*out) {
            merger_free(s->mg);
            s->mg = NULL;
            for (int64_t i = 0; i < s->npaths; i++) pt__spill_remove(s->sd, s->paths[i]);
            s->done = true;
        }
        return PT_OK;
    }
    int64_t n = s->plan.nrows;
    if (s->pos >= n) {
        drop_sorted(s);
        free_run(s);
        s->done = true;
        return PT_OK;
    }
    int64_t rows = s->batch_rows > 0 ? s->batch_rows : OUT_BATCH_ROWS;
    int64_t cnt = n - s->pos < rows ? n - s->pos : rows;
    /* Output batches are transient (the consumer frees them). */
    pt_status st = pt__sort_gather(s->plan.pool, s->soft, s->run, s->nrun, &s->kv[s->pos].v, 2,
                                   cnt, NULL, 0, out, err);
    if (st != PT_OK) return fail(s, st);
    s->pos += cnt;
    return PT_OK;
}

void pt__sort_stream_free(pt__sort_stream *s) {
    if (!s) return;
    merger_free(s->mg);
    drop_sorted(s);
    free_run(s);
    pt_free(s->run);
    for (int64_t i = 0; i < s->npaths; i++) pt_free(s->paths[i]);
    pt_free(s->paths);
    pt__spill_dir_free(s->sd);
    pt_schema_free(s->schema);
    pt_free(s->keys);
    pt_free(s);
}

void pt__sort_stream_stats(const pt__sort_stream *s, int64_t *runs, int64_t *spilled_bytes) {
    if (runs) *runs = s ? s->runs_written : 0;
    if (spilled_bytes) *spilled_bytes = s ? s->spilled_bytes : 0;
}
