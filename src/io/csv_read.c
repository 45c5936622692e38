/*
 * csv_read.c - the CSV reader's driver: options, the parallel parse of a
 * region of bytes (pre-pass, row-aligned ranges, per-range parse, type
 * widening by re-parsing ranges from their bytes, dictionary merge,
 * assembly into columns), the whole-file read (memory-mapped) and the
 * streaming reader (bounded windows read into a reused buffer).
 *
 * Determinism: the result does not depend on the number of ranges or
 * threads. Rows belong to the range where they start, the global dictionary
 * is in first-appearance order, the final type of a column is the join of
 * what every range saw, and the error reported is the first in file order.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "col/col_internal.h"
#include "io/csv_internal.h"
#include "io/csv_share.h"

void pt_csv_opts_init(pt_csv_opts *o) {
    memset(o, 0, sizeof *o);
    o->delimiter = ',';
    o->quote = '"';
    o->header = -1;
    o->sample_rows = 10000;
    o->dict_strings = 1;
    o->chunk_bytes = 8 << 20;
    o->progress = 1;
}

/* ------------------------------------------------------------------------ */
/* Reader state shared by the whole-file and the streaming read             */
/* ------------------------------------------------------------------------ */

typedef struct core {
    pt_ctx *ctx;
    pt_pool *pool;
    pt_mem *mem;
    int threads;
    pt_csv_opts opts;
    char *name;
    int streaming;
    pt__csv_head head;
    pt__csv_cfg cfg;
    int *out_of_file, *file_of_out;
    char **outnames;  /* [nout], borrowed from head.names */
    pt_type *types;   /* [nout] current types */
    pt_type *sample_types;
    int nnulls;
    pt_progress *prog;
    /* totals */
    int64_t rows, bad_rows, chunks;
    char first_bad[512];
    int promoted_any;
    uint8_t *promoted; /* [nout] */
} core;

static pt_status check_opts(const char *name, const pt_csv_opts *o, pt_error *err) {
    const char *what = NULL;
    if (o->delimiter == '\n' || o->delimiter == '\r')
        what = "delimiter must not be a line break";
    else if (o->quote == '\n' || o->quote == '\r')
        what = "quote must not be a line break";
    else if (o->quote == 0)
        what = "quote must be a character (0 given)";
    else if (o->delimiter && o->delimiter == o->quote)
        what = "delimiter and quote must differ";
    else if (o->header < -1 || o->header > 1)
        what = "header must be -1 (detect), 0 or 1";
    else if (o->sample_rows < 0)
        what = "sample_rows must be >= 0";
    else if (o->chunk_bytes < 0)
        what = "chunk_bytes must be >= 0";
    else if (o->batch_bytes < 0)
        what = "batch_bytes must be >= 0";
    else if (o->ncolumns < 0 || (o->ncolumns > 0 && !o->columns))
        what = "columns/ncolumns: ncolumns must be >= 0 and columns set when ncolumns > 0";
    else if (o->schema && (o->schema->nfields <= 0 || !o->schema->fields))
        what = "schema has no fields";
    if (what) return pt_error_set(err, PT_EINVAL, "%s: invalid CSV option: %s", name, what);
    if (o->schema)
        for (int i = 0; i < o->schema->nfields; i++)
            if ((int)o->schema->fields[i].type < 0 || o->schema->fields[i].type >= PT_TYPE_COUNT)
                return pt_error_set(err, PT_EINVAL,
                                    "%s: invalid CSV option: schema field %d has an invalid type",
                                    name, i);
    for (int i = 0; i < o->ncolumns; i++)
        if (!o->columns[i])
            return pt_error_set(err, PT_EINVAL, "%s: invalid CSV option: columns[%d] is NULL",
                                name, i);
    return PT_OK;
}

static void core_free(core *C) {
    pt__csv_head_free(&C->head);
    pt_free(C->out_of_file);
    pt_free(C->file_of_out);
    pt_free(C->outnames);
    pt_free(C->types);
    pt_free(C->sample_types);
    pt_free(C->promoted);
    pt_free(C->name);
    pt_progress_finish(C->prog);
    memset(C, 0, sizeof *C);
}

static pt_status core_init(core *C, pt_ctx *ctx, const char *name, const pt_csv_opts *opts,
                           int streaming, pt_error *err) {
    memset(C, 0, sizeof *C);
    if (opts)
        C->opts = *opts;
    else
        pt_csv_opts_init(&C->opts);
    C->name = pt_strdup(name ? name : "<buffer>");
    if (!C->name) return pt_error_set(err, PT_ENOMEM, "out of memory");
    PT_RETURN_NOT_OK(check_opts(C->name, &C->opts, err));
    if (C->opts.sample_rows == 0) C->opts.sample_rows = 10000;
    if (C->opts.chunk_bytes == 0) C->opts.chunk_bytes = 8 << 20;
    C->ctx = ctx;
    C->pool = ctx ? pt_ctx_pool(ctx) : NULL;
    /* A whole-file read must fit the budget (PT_EBUDGET otherwise); a
     * streaming batch is transient and bounded by batch_bytes, so it is
     * counted through the soft view and never refused (the operators that
     * hold state spill instead). */
    C->mem = ctx ? (streaming ? pt_ctx_mem_soft(ctx) : pt_ctx_mem(ctx)) : NULL;
    C->threads = C->opts.threads > 0 ? C->opts.threads : (ctx ? pt_ctx_threads(ctx) : 1);
    if (C->threads < 1) C->threads = 1;
    if (C->threads == 1) C->pool = NULL;
    C->streaming = streaming;
    return PT_OK;
}

/* After the head is read: projection, configuration and types. */
static pt_status core_setup(core *C, pt_error *err) {
    pt__csv_head *h = &C->head;
    const pt_csv_opts *o = &C->opts;
    int nout = o->columns ? o->ncolumns : h->ncols;
    C->out_of_file = pt_malloc((size_t)(h->ncols + 1) * sizeof(int));
    C->file_of_out = pt_malloc((size_t)(nout + 1) * sizeof(int));
    C->outnames = pt_calloc((size_t)nout + 1, sizeof(char *));
    C->types = pt_calloc((size_t)nout + 1, sizeof(pt_type));
    C->sample_types = pt_calloc((size_t)nout + 1, sizeof(pt_type));
    C->promoted = pt_calloc((size_t)nout + 1, 1);
    if (!C->out_of_file || !C->file_of_out || !C->outnames || !C->types || !C->sample_types ||
        !C->promoted)
        return pt_error_set(err, PT_ENOMEM, "%s: out of memory", C->name);
    for (int j = 0; j < h->ncols; j++) C->out_of_file[j] = o->columns ? -1 : j;
    for (int i = 0; i < nout; i++) {
        int j = i;
        if (o->columns) {
            j = -1;
            for (int k = 0; k < h->ncols; k++)
                if (strcmp(h->names[k], o->columns[i]) == 0) j = k;
            if (j < 0) {
                char avail[700];
                size_t n = 0;
                avail[0] = 0;
                for (int k = 0; k < h->ncols && n + 4 < sizeof avail; k++)
                    n += (size_t)snprintf(avail + n, sizeof avail - n, "%s'%s'", k ? ", " : "",
                                          h->names[k]);
                if (n >= sizeof avail) strcpy(avail + sizeof avail - 5, "...");
                return pt_error_set(err, PT_EINVAL,
                                    "%s: unknown column '%s' in columns (available: %s)",
                                    C->name, o->columns[i], avail);
            }
            if (C->out_of_file[j] >= 0)
                return pt_error_set(err, PT_EINVAL, "%s: column '%s' is requested twice in columns",
                                    C->name, o->columns[i]);
            C->out_of_file[j] = i;
        }
        C->file_of_out[i] = j;
        C->outnames[i] = h->names[j];
        C->types[i] = h->types[j];
        C->sample_types[i] = h->types[j];
    }
    pt__csv_cfg *cfg = &C->cfg;
    cfg->name = C->name;
    cfg->delim = h->delim;
    cfg->quote = o->quote;
    pt__csv_set_classes(cfg);
    cfg->ncols = h->ncols;
    cfg->nout = nout;
    cfg->out_of_file = C->out_of_file;
    cfg->file_of_out = C->file_of_out;
    cfg->names = C->outnames;
    cfg->strict = o->schema != NULL;
    cfg->skip_bad = o->skip_bad_rows;
    cfg->blank_skip = h->ncols > 1;
    cfg->avg_row = h->avg_row;
    cfg->mem = C->mem;
    if (o->null_values) {
        int n = 0;
        for (const char *const *v = o->null_values; *v; v++) {
            size_t l = strlen(*v);
            if (l < 64)
                cfg->nulls.lenmask |= (uint64_t)1 << l;
            else
                cfg->nulls.haslong = 1;
            n++;
        }
        cfg->nulls.vals = o->null_values;
        cfg->nulls.n = n;
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Running range tasks on the pool                                          */
/* ------------------------------------------------------------------------ */

typedef pt_status (*range_fn)(core *C, void *arg, int64_t i, pt_error *err);

typedef struct prun {
    core *C;
    range_fn fn;
    void *arg;
    int64_t n;
    atomic_llong next;
} prun;

static pt_status prun_worker(pt_task_ctx *tc, void *arg, int64_t w, pt_error *err) {
    (void)tc;
    (void)w;
    prun *R = arg;
    for (;;) {
        int64_t i = atomic_fetch_add(&R->next, 1);
        if (i >= R->n) return PT_OK;
        PT_RETURN_NOT_OK(R->fn(R->C, R->arg, i, err));
    }
}

/* Runs fn for i in [0, n) with at most C->threads in flight; idle workers
 * take the next index, so uneven ranges balance. */
static pt_status run_ranges(core *C, int64_t n, range_fn fn, void *arg, pt_error *err) {
    if (n <= 0) return PT_OK;
    if (!C->pool || n == 1 || C->threads == 1) {
        for (int64_t i = 0; i < n; i++) PT_RETURN_NOT_OK(fn(C, arg, i, err));
        return PT_OK;
    }
    prun R;
    R.C = C;
    R.fn = fn;
    R.arg = arg;
    R.n = n;
    atomic_init(&R.next, 0);
    int64_t workers = n < C->threads ? n : C->threads;
    pt_job_opts jo;
    pt_job_opts_init(&jo);
    jo.max_retries = 0;
    jo.name = "csv";
    pt_status s = pt_parallel_for(C->pool, workers, prun_worker, &R, &jo, err);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Parsing a region                                                         */
/* ------------------------------------------------------------------------ */

typedef struct region {
    const char *data;
    int64_t start, end, line0;
    int64_t nr;         /* byte ranges */
    int64_t *qcount, *ncount, *first;
    int64_t nchunks;
    pt__csv_chunk *ck;
    atomic_llong fail_at; /* lowest range that failed */
    pt_type *final;
    uint8_t *reparse;     /* [nchunks * nout] */
    /* dictionary merge, per output column */
    struct gdict {
        int64_t n, cap, nbytes, bcap;
        int64_t *offs;
        char *bytes;
        uint64_t *ht;
        int64_t htcap;
        int32_t **map; /* [nchunks] local -> global */
    } *gd;
    int64_t *rowoff;   /* [nchunks + 1] */
    int64_t *byteoff;  /* [(nchunks + 1) * nout] utf8 byte offsets */
    int64_t *nulls;    /* [nchunks * nout] */
    pt_column **cols;
    int cur;           /* column being assembled */
} region;

static pt_status task_count(core *C, void *arg, int64_t i, pt_error *err) {
    region *G = arg;
    int64_t s = G->start + i * C->opts.chunk_bytes;
    int64_t e = s + C->opts.chunk_bytes < G->end ? s + C->opts.chunk_bytes : G->end;
    pt__csv_count(G->data + s, e - s, C->cfg.quote, &G->qcount[i], &G->ncount[i]);
    return PT_OK;
}

static pt_status task_first(core *C, void *arg, int64_t i, pt_error *err) {
    region *G = arg;
    int64_t s = G->start + i * C->opts.chunk_bytes;
    int64_t e = s + C->opts.chunk_bytes < G->end ? s + C->opts.chunk_bytes : G->end;
    G->first[i] = pt__csv_first_row_start(G->data, G->start, s, e, (int)(G->qcount[i] & 1),
                                          C->cfg.quote);
    return PT_OK;
}

static pt_status task_parse(core *C, void *arg, int64_t i, pt_error *err) {
    region *G = arg;
    if (i > atomic_load(&G->fail_at)) return PT_OK; /* an earlier range failed */
    pt__csv_chunk *ck = &G->ck[i];
    pt_status s = pt__csv_parse_chunk(&C->cfg, G->data, ck, C->types, NULL);
    if (s != PT_OK) {
        long long cur = atomic_load(&G->fail_at);
        while (i < cur && !atomic_compare_exchange_weak(&G->fail_at, &cur, i)) {
        }
    }
    pt_progress_add(C->prog, ck->nrows, ck->end - ck->start);
    return PT_OK;
}

static pt_status task_reparse(core *C, void *arg, int64_t i, pt_error *err) {
    region *G = arg;
    int nout = C->cfg.nout;
    uint8_t *sel = G->reparse + i * nout;
    int any = 0;
    for (int o = 0; o < nout; o++) any |= sel[o];
    if (!any) return PT_OK;
    pt__csv_chunk *ck = &G->ck[i], tmp;
    pt__csv_chunk_init(&tmp);
    tmp.start = ck->start;
    tmp.end = ck->end;
    tmp.line0 = ck->line0;
    tmp.badpos = ck->badpos;
    tmp.nbad = ck->nbad;
    tmp.badcap = ck->badcap;
    pt_status s = pt__csv_parse_chunk(&C->cfg, G->data, &tmp, G->final, sel);
    if (s == PT_OK && tmp.nrows != ck->nrows)
        s = pt_error_set(&tmp.err, PT_EINTERNAL,
                         "%s: internal error: re-parse of bytes %lld-%lld gave %lld rows, not %lld",
                         C->name, (long long)ck->start, (long long)ck->end,
                         (long long)tmp.nrows, (long long)ck->nrows);
    if (s == PT_OK)
        for (int o = 0; o < nout; o++) {
            if (!sel[o]) continue;
            pt__csv_col_free(&C->cfg, &ck->cols[o]);
            ck->cols[o] = tmp.cols[o];
            memset(&tmp.cols[o], 0, sizeof tmp.cols[o]);
        }
    if (s != PT_OK) {
        if (err) *err = tmp.err;
    }
    tmp.badpos = NULL; /* borrowed */
    pt__csv_chunk_free(&C->cfg, &tmp);
    return s;
}

static pt_status gdict_grow(struct gdict *D) {
    int64_t nc = D->htcap ? D->htcap * 2 : 1024;
    uint64_t *nt = pt_calloc((size_t)nc, 8);
    if (!nt) return PT_ENOMEM;
    for (int64_t i = 0; i < D->htcap; i++) {
        uint64_t v = D->ht[i];
        if (!v) continue;
        int64_t e = (int64_t)(uint32_t)v - 1;
        uint64_t h = pt__csv_hash(D->bytes + D->offs[e], D->offs[e + 1] - D->offs[e]);
        int64_t j = (int64_t)(h & (uint64_t)(nc - 1));
        while (nt[j]) j = (j + 1) & (nc - 1);
        nt[j] = v;
    }
    pt_free(D->ht);
    D->ht = nt;
    D->htcap = nc;
    return PT_OK;
}

/* Global index of a text, inserting it; -1 when out of memory. */
static int64_t gdict_index(struct gdict *D, const char *s, int64_t n) {
    if ((D->n + 1) * 2 >= D->htcap && gdict_grow(D) != PT_OK) return -1;
    uint64_t h = pt__csv_hash(s, n), tag = h >> 32 << 32, mask = (uint64_t)D->htcap - 1;
    int64_t j = (int64_t)(h & mask);
    for (;;) {
        uint64_t v = D->ht[j];
        if (!v) break;
        if ((v & 0xFFFFFFFF00000000ULL) == tag) {
            int64_t e = (int64_t)(uint32_t)v - 1;
            if (D->offs[e + 1] - D->offs[e] == n &&
                (n == 0 || memcmp(D->bytes + D->offs[e], s, (size_t)n) == 0))
                return e;
        }
        j = (int64_t)(((uint64_t)j + 1) & mask);
    }
    if (D->n + 2 > D->cap) {
        int64_t nc = D->cap ? D->cap * 2 : 1024;
        int64_t *no = pt_realloc(D->offs, (size_t)nc * 8);
        if (!no) return -1;
        if (!D->offs) no[0] = 0;
        D->offs = no;
        D->cap = nc;
    }
    if (D->nbytes + n > D->bcap || !D->bytes) {
        int64_t nc = D->bcap ? D->bcap : 4096;
        while (nc < D->nbytes + n) nc *= 2;
        char *nb = pt_realloc(D->bytes, (size_t)nc);
        if (!nb) return -1;
        D->bytes = nb;
        D->bcap = nc;
    }
    if (n) memcpy(D->bytes + D->nbytes, s, (size_t)n);
    D->nbytes += n;
    int64_t e = D->n++;
    D->offs[e + 1] = D->nbytes;
    D->ht[j] = tag | (uint64_t)(e + 1);
    return e;
}

static pt_status task_merge_dict(core *C, void *arg, int64_t o, pt_error *err) {
    region *G = arg;
    if (G->final[o] != PT_TYPE_DICT) return PT_OK;
    struct gdict *D = &G->gd[o];
    D->map = pt_calloc((size_t)G->nchunks + 1, sizeof *D->map);
    if (!D->map) return pt_error_set(err, PT_ENOMEM, "%s: out of memory", C->name);
    for (int64_t k = 0; k < G->nchunks; k++) {
        pt__csv_col *b = &G->ck[k].cols[o];
        if (b->type != PT_TYPE_DICT) continue; /* an all-null range */
        D->map[k] = pt_malloc((size_t)(b->ndict + 1) * 4);
        if (!D->map[k]) return pt_error_set(err, PT_ENOMEM, "%s: out of memory", C->name);
        for (int64_t e = 0; e < b->ndict; e++) {
            int64_t g = gdict_index(D, b->dbytes + b->doffs[e], b->doffs[e + 1] - b->doffs[e]);
            if (g < 0) return pt_error_set(err, PT_ENOMEM, "%s: out of memory", C->name);
            if (g > INT32_MAX)
                return pt_error_set(err, PT_ERANGE,
                                    "%s: column '%s' has more than 2^31 distinct values; read it "
                                    "as utf8",
                                    C->name, C->outnames[o]);
            D->map[k][e] = (int32_t)g;
        }
    }
    return PT_OK;
}

/* Per range: copy the values of column G->cur into the final column
 * (disjoint row ranges, so tasks do not touch the same bytes; bit-packed
 * data is done afterwards). */
static pt_status task_assemble(core *C, void *arg, int64_t k, pt_error *err) {
    region *G = arg;
    int nout = C->cfg.nout, o = G->cur;
    pt__csv_chunk *ck = &G->ck[k];
    int64_t r0 = G->rowoff[k], n = ck->nrows;
    pt__csv_col *b = &ck->cols[o];
    pt_column *c = G->cols[o];
    pt_type F = G->final[o];
    int allnull = b->type == PT_TYPE_NULL;
    G->nulls[k * nout + o] = allnull ? n : (b->valid ? n - pt__bits_count(b->valid, 0, n) : 0);
    if (F == PT_TYPE_NULL || F == PT_TYPE_BOOL) return PT_OK;
    if (F == PT_TYPE_UTF8) {
        int64_t *dst = (int64_t *)c->values->data + r0;
        int64_t base = G->byteoff[k * nout + o];
        if (allnull) {
            for (int64_t r = 0; r < n; r++) dst[r + 1] = base;
        } else if (b->type == PT_TYPE_DICT) {
            const int32_t *ix = (const int32_t *)b->vals;
            char *out = (char *)c->bytes->data + base;
            int64_t pos = base;
            for (int64_t r = 0; r < n; r++) {
                int32_t e = ix[r];
                if (e >= 0) {
                    int64_t l = b->doffs[e + 1] - b->doffs[e];
                    if (l) memcpy(out, b->dbytes + b->doffs[e], (size_t)l);
                    out += l;
                    pos += l;
                }
                dst[r + 1] = pos;
            }
        } else {
            for (int64_t r = 0; r < n; r++) dst[r + 1] = base + b->offs[r + 1];
            if (b->nbytes) memcpy(c->bytes->data + base, b->bytes, (size_t)b->nbytes);
        }
        return PT_OK;
    }
    if (F == PT_TYPE_DICT) {
        int32_t *dst = (int32_t *)c->values->data + r0;
        if (allnull) {
            memset(dst, 0, (size_t)n * 4);
            return PT_OK;
        }
        const int32_t *ix = (const int32_t *)b->vals;
        const int32_t *map = G->gd[o].map[k];
        for (int64_t r = 0; r < n; r++) dst[r] = ix[r] >= 0 ? map[ix[r]] : 0;
        return PT_OK;
    }
    int w = pt_type_width(F);
    if (allnull)
        memset(c->values->data + r0 * w, 0, (size_t)(n * w));
    else if (n)
        memcpy(c->values->data + r0 * w, b->vals, (size_t)(n * w));
    return PT_OK;
}

static void copy_bits(uint8_t *dst, int64_t off, const uint8_t *src, int64_t n) {
    int64_t i = 0;
    if ((off & 7) == 0) {
        if (n >= 8) memcpy(dst + off / 8, src, (size_t)(n / 8));
        i = n / 8 * 8;
    }
    for (; i < n; i++) {
        if (pt_bit_get(src, i))
            pt_bit_set(dst, off + i);
        else
            pt_bit_clear(dst, off + i);
    }
}

static void set_bits(uint8_t *dst, int64_t off, int64_t n, int v) {
    int64_t i = 0;
    while (i < n && ((off + i) & 7)) {
        if (v)
            pt_bit_set(dst, off + i);
        else
            pt_bit_clear(dst, off + i);
        i++;
    }
    if (n - i >= 8) {
        memset(dst + (off + i) / 8, v ? 0xFF : 0, (size_t)((n - i) / 8));
        i += (n - i) / 8 * 8;
    }
    for (; i < n; i++) {
        if (v)
            pt_bit_set(dst, off + i);
        else
            pt_bit_clear(dst, off + i);
    }
}

static void region_free(core *C, region *G) {
    int nout = C->cfg.nout;
    if (G->ck)
        for (int64_t k = 0; k < G->nchunks; k++) pt__csv_chunk_free(&C->cfg, &G->ck[k]);
    if (G->gd)
        for (int o = 0; o < nout; o++) {
            struct gdict *D = &G->gd[o];
            if (D->map)
                for (int64_t k = 0; k < G->nchunks; k++) pt_free(D->map[k]);
            pt_free(D->map);
            pt_free(D->offs);
            pt_free(D->bytes);
            pt_free(D->ht);
        }
    if (G->cols)
        for (int o = 0; o < nout; o++) pt_column_release(G->cols[o]);
    pt_free(G->gd);
    pt_free(G->cols);
    pt_free(G->ck);
    pt_free(G->qcount);
    pt_free(G->ncount);
    pt_free(G->first);
    pt_free(G->final);
    pt_free(G->reparse);
    pt_free(G->rowoff);
    pt_free(G->byteoff);
    pt_free(G->nulls);
}

/* The text of the field at pos for a message. */
static void show_field_at(const pt__csv_cfg *cfg, const char *pos, const char *end, char *buf,
                          size_t cap) {
    const char *e = pos;
    if (e < end && *e == cfg->quote) {
        e = pt__csv_row_end(pos, end, cfg->quote);
    } else {
        while (e < end && *e != cfg->delim && *e != '\n' && *e != '\r') e++;
    }
    pt__csv_show(buf, cap, pos, e - pos);
}

/* Splits [start, end) of data into row-aligned ranges. */
static pt_status split_ranges(core *C, region *G, pt_error *err) {
    int64_t len = G->end - G->start, cb = C->opts.chunk_bytes;
    G->nr = len <= cb ? 1 : (len + cb - 1) / cb;
    G->qcount = pt_calloc((size_t)G->nr + 1, 8);
    G->ncount = pt_calloc((size_t)G->nr + 1, 8);
    G->first = pt_calloc((size_t)G->nr + 1, 8);
    G->ck = pt_calloc((size_t)G->nr + 1, sizeof *G->ck);
    if (!G->qcount || !G->ncount || !G->first || !G->ck)
        return pt_error_set(err, PT_ENOMEM, "%s: out of memory", C->name);
    if (G->nr == 1) {
        pt__csv_chunk_init(&G->ck[0]);
        G->ck[0].start = G->start;
        G->ck[0].end = G->end;
        G->ck[0].line0 = G->line0;
        G->nchunks = G->start < G->end ? 1 : 0;
        return PT_OK;
    }
    PT_RETURN_NOT_OK(run_ranges(C, G->nr, task_count, G, err));
    /* exclusive prefix sums: quote parity and line number at range starts */
    int64_t q = 0, nl = 0;
    for (int64_t i = 0; i < G->nr; i++) {
        int64_t tq = G->qcount[i], tn = G->ncount[i];
        G->qcount[i] = q;
        G->ncount[i] = nl;
        q += tq;
        nl += tn;
    }
    PT_RETURN_NOT_OK(run_ranges(C, G->nr, task_first, G, err));
    /* A range without a row start inherits the next range's first row. */
    int64_t nextstart = G->end;
    for (int64_t i = G->nr - 1; i >= 0; i--) {
        if (G->first[i] < 0) G->first[i] = nextstart;
        nextstart = G->first[i];
    }
    int64_t m = 0;
    for (int64_t i = 0; i < G->nr; i++) {
        int64_t s = G->first[i], e = i + 1 < G->nr ? G->first[i + 1] : G->end;
        if (s >= e) continue;
        pt__csv_chunk *ck = &G->ck[m++];
        pt__csv_chunk_init(ck);
        ck->start = s;
        ck->end = e;
        int64_t rs = G->start + i * C->opts.chunk_bytes;
        ck->line0 = G->line0 + G->ncount[i] + pt__csv_count_nl(G->data + rs, s - rs);
    }
    G->nchunks = m;
    return PT_OK;
}

/* Parses rows in data[start, end) (start is a row start at line `line0`)
 * into a table with the reader's current types, widening them as needed. */
static pt_status parse_region(core *C, const char *data, int64_t start, int64_t end,
                              int64_t line0, pt_table **out, pt_error *err) {
    *out = NULL;
    const int nout = C->cfg.nout;
    region G;
    memset(&G, 0, sizeof G);
    G.data = data;
    G.start = start;
    G.end = end;
    G.line0 = line0;
    atomic_init(&G.fail_at, INT64_MAX);
    pt_status st = split_ranges(C, &G, err);
    if (st != PT_OK) goto fail;

    /* 1. parse every range with the current types */
    C->cfg.dict_local_cap = 0;
    if (!C->streaming && !C->cfg.strict) {
        /* A range may give up its dictionary once it alone proves the column
         * has too many distinct values for the final rule (distinct <=
         * max(1000, rows / 10)); every row takes at least ncols bytes. */
        int64_t max_rows = (end - start) / (C->cfg.ncols > 0 ? C->cfg.ncols : 1) + 1;
        C->cfg.dict_local_cap = max_rows / 10 > 1000 ? max_rows / 10 : 1000;
    }
    st = run_ranges(C, G.nchunks, task_parse, &G, err);
    if (st != PT_OK) goto fail;
    for (int64_t k = 0; k < G.nchunks; k++)
        if (G.ck[k].status != PT_OK) {
            st = G.ck[k].status;
            if (err) *err = G.ck[k].err;
            goto fail;
        }

    /* 2. final types */
    G.final = pt_calloc((size_t)nout + 1, sizeof *G.final);
    G.reparse = pt_calloc((size_t)(G.nchunks + 1) * (size_t)(nout + 1), 1);
    if (!G.final || !G.reparse) {
        st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", C->name);
        goto fail;
    }
    for (int o = 0; o < nout; o++) {
        pt_type cur = C->types[o], cls = pt__csv_class_of(cur);
        int abandoned = 0;
        int64_t kfirst = -1;
        for (int64_t k = 0; k < G.nchunks; k++) {
            pt__csv_col *b = &G.ck[k].cols[o];
            if (!b->deferred) continue;
            cls = pt__csv_join(cls, b->need);
            abandoned |= b->abandoned;
            if (b->text_pos >= 0 && kfirst < 0) kfirst = k;
        }
        pt_type F = cur;
        if (cls != pt__csv_class_of(cur))
            F = cls;
        else if (abandoned)
            F = PT_TYPE_UTF8;
        if (C->streaming && F != cur && !(cur == PT_TYPE_NULL) &&
            !(cur == PT_TYPE_INT64 && F == PT_TYPE_FLOAT64)) {
            pt__csv_chunk *ck = &G.ck[kfirst >= 0 ? kfirst : 0];
            int64_t tp = kfirst >= 0 ? ck->cols[o].text_pos : ck->start;
            int64_t line, col;
            pt__csv_linecol(data + ck->start, ck->line0, data + tp, &line, &col);
            char show[128];
            show_field_at(&C->cfg, data + tp, data + ck->end, show, sizeof show);
            st = pt_error_set(err, PT_ETYPE,
                              "%s:%lld:%lld: column '%s' was read as %s from the sample, but %s "
                              "needs %s; pass a schema (e.g. %s:%s) or a larger sample_rows",
                              C->name, (long long)line, (long long)col, C->outnames[o],
                              pt_type_name(cur), show, pt_type_name(F), C->outnames[o],
                              pt_type_name(F));
            goto fail;
        }
        G.final[o] = F;
        for (int64_t k = 0; k < G.nchunks; k++) {
            pt__csv_col *b = &G.ck[k].cols[o];
            int need = b->deferred || (F != cur && b->type != PT_TYPE_NULL &&
                                       !(b->type == PT_TYPE_DICT && F == PT_TYPE_UTF8));
            G.reparse[k * nout + o] = (uint8_t)need;
        }
        if (pt__csv_class_of(F) != pt__csv_class_of(cur)) C->promoted[o] = 1;
    }
    st = run_ranges(C, G.nchunks, task_reparse, &G, err);
    if (st != PT_OK) goto fail;

    /* 3. dictionaries: merge in range order (first appearance order) */
    G.gd = pt_calloc((size_t)nout + 1, sizeof *G.gd);
    G.rowoff = pt_calloc((size_t)G.nchunks + 1, 8);
    G.byteoff = pt_calloc((size_t)(G.nchunks + 1) * (size_t)(nout + 1), 8);
    G.nulls = pt_calloc((size_t)(G.nchunks + 1) * (size_t)(nout + 1), 8);
    G.cols = pt_calloc((size_t)nout + 1, sizeof *G.cols);
    if (!G.gd || !G.rowoff || !G.byteoff || !G.nulls || !G.cols) {
        st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", C->name);
        goto fail;
    }
    for (int64_t k = 0; k < G.nchunks; k++) G.rowoff[k + 1] = G.rowoff[k] + G.ck[k].nrows;
    int64_t N = G.rowoff[G.nchunks];
    st = run_ranges(C, nout, task_merge_dict, &G, err);
    if (st != PT_OK) goto fail;
    for (int o = 0; o < nout; o++) {
        if (G.final[o] != PT_TYPE_DICT || C->streaming || C->cfg.strict) continue;
        int64_t limit = N / 10 > 1000 ? N / 10 : 1000;
        if (G.gd[o].n > limit) G.final[o] = PT_TYPE_UTF8; /* expand the range dictionaries */
    }

    /* 4. assemble, one column at a time, freeing the range buffers of a
     * column once it is copied (peak memory: ranges + one final column) */
    for (int o = 0; o < nout; o++) {
        pt_type F = G.final[o];
        pt_column *c = NULL;
        if (F == PT_TYPE_UTF8) {
            int64_t total = 0;
            for (int64_t k = 0; k < G.nchunks; k++) {
                pt__csv_col *b = &G.ck[k].cols[o];
                G.byteoff[k * nout + o] = total;
                if (b->type == PT_TYPE_DICT) {
                    const int32_t *ix = (const int32_t *)b->vals;
                    for (int64_t r = 0; r < G.ck[k].nrows; r++)
                        if (ix[r] >= 0) total += b->doffs[ix[r] + 1] - b->doffs[ix[r]];
                } else if (b->type == PT_TYPE_UTF8)
                    total += b->nbytes;
            }
            st = pt_column_new(C->mem, F, N, total, &c, err);
            if (st == PT_OK) {
                c->values->size = (N + 1) * 8;
                c->bytes->size = total;
                ((int64_t *)c->values->data)[0] = 0;
            }
        } else if (F == PT_TYPE_DICT) {
            struct gdict *D = &G.gd[o];
            pt_column *dict = NULL;
            st = pt_column_new(C->mem, PT_TYPE_UTF8, D->n, D->nbytes, &dict, err);
            if (st == PT_OK) {
                if (D->n) memcpy(dict->values->data, D->offs, (size_t)(D->n + 1) * 8);
                if (D->nbytes) memcpy(dict->bytes->data, D->bytes, (size_t)D->nbytes);
                dict->values->size = (D->n + 1) * 8;
                dict->bytes->size = D->nbytes;
                dict->length = D->n;
                st = pt_column_new_dict(C->mem, dict, N, &c, err);
                if (st == PT_OK) c->values->size = N * 4;
            }
            pt_column_release(dict);
        } else {
            st = pt_column_new(C->mem, F, N, 0, &c, err);
            if (st == PT_OK && c->values) c->values->size = F == PT_TYPE_BOOL ? (N + 7) / 8 : N * pt_type_width(F);
        }
        if (st != PT_OK) goto fail;
        c->length = N;
        G.cols[o] = c;
        G.cur = o;
        st = run_ranges(C, G.nchunks, task_assemble, &G, err);
        if (st != PT_OK) goto fail;
        int64_t nn = 0;
        for (int64_t k = 0; k < G.nchunks; k++) nn += G.nulls[k * nout + o];
        if (F == PT_TYPE_NULL) {
            c->null_count = N;
            if (c->validity) c->validity->size = (N + 7) / 8;
            goto col_done;
        }
        if (F == PT_TYPE_BOOL)
            for (int64_t k = 0; k < G.nchunks; k++) {
                pt__csv_col *b = &G.ck[k].cols[o];
                if (b->type == PT_TYPE_BOOL)
                    copy_bits(c->values->data, G.rowoff[k], b->vals, G.ck[k].nrows);
                else
                    set_bits(c->values->data, G.rowoff[k], G.ck[k].nrows, 0);
            }
        c->null_count = nn;
        if (nn == 0) goto col_done;
        pt_buffer *v = NULL;
        st = pt_buffer_new(C->mem, (N + 7) / 8, &v, err);
        if (st != PT_OK) goto fail;
        v->size = (N + 7) / 8;
        for (int64_t k = 0; k < G.nchunks; k++) {
            pt__csv_col *b = &G.ck[k].cols[o];
            if (b->type == PT_TYPE_NULL)
                set_bits(v->data, G.rowoff[k], G.ck[k].nrows, 0);
            else if (b->valid)
                copy_bits(v->data, G.rowoff[k], b->valid, G.ck[k].nrows);
            else
                set_bits(v->data, G.rowoff[k], G.ck[k].nrows, 1);
        }
        c->validity = v;
    col_done:
        for (int64_t k = 0; k < G.nchunks; k++) pt__csv_col_free(&C->cfg, &G.ck[k].cols[o]);
    }

    /* 5. the table */
    pt_type *ft = pt_malloc((size_t)(nout + 1) * sizeof *ft);
    pt_schema *schema = NULL;
    if (!ft) {
        st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", C->name);
        goto fail;
    }
    for (int o = 0; o < nout; o++) ft[o] = G.final[o];
    st = pt_schema_new(nout, (const char *const *)C->outnames, ft, &schema, err);
    pt_free(ft);
    if (st != PT_OK) goto fail;
    st = pt_table_new(schema, G.cols, out, err);
    /* pt_table_new took the column references, also on failure */
    memset(G.cols, 0, (size_t)nout * sizeof *G.cols);
    if (st != PT_OK) goto fail;
    for (int o = 0; o < nout; o++) C->types[o] = G.final[o];
    C->rows += N;
    C->chunks += G.nchunks;
    for (int64_t k = 0; k < G.nchunks; k++) {
        if (G.ck[k].nbad && C->bad_rows == 0 && G.ck[k].first_bad)
            snprintf(C->first_bad, sizeof C->first_bad, "%s", G.ck[k].first_bad);
        C->bad_rows += G.ck[k].nbad;
    }
    region_free(C, &G);
    return PT_OK;
fail:
    region_free(C, &G);
    return st;
}

static void fill_report(const core *C, pt_csv_report *rep, int64_t bytes, double t0) {
    if (!rep) return;
    memset(rep, 0, sizeof *rep);
    rep->rows = C->rows;
    rep->bad_rows = C->bad_rows;
    snprintf(rep->first_bad, sizeof rep->first_bad, "%s", C->first_bad);
    rep->bytes = bytes;
    rep->chunks = C->chunks;
    int p = 0;
    for (int o = 0; o < C->cfg.nout; o++) p += C->promoted ? C->promoted[o] : 0;
    rep->promotions = p;
    rep->seconds = pt_now_s() - t0;
}

static int64_t bom_len(const char *d, int64_t n) {
    return (n >= 3 && (uint8_t)d[0] == 0xEF && (uint8_t)d[1] == 0xBB && (uint8_t)d[2] == 0xBF) ? 3
                                                                                               : 0;
}

static pt_status read_all(pt_ctx *ctx, const char *data, int64_t len, const char *name,
                          const pt_csv_opts *opts, pt_table **out, pt_csv_report *report,
                          pt_error *err) {
    double t0 = pt_now_s();
    core C;
    pt_status st = core_init(&C, ctx, name, opts, 0, err);
    if (st != PT_OK) {
        core_free(&C);
        return st;
    }
    int64_t b = bom_len(data, len);
    const char *d = data + b;
    int64_t n = len - b;
    if (n == 0) {
        st = pt_error_set(err, PT_EEMPTY, "%s: empty file", C.name);
        core_free(&C);
        return st;
    }
    st = pt__csv_head_read(C.name, d, n, 1, &C.opts, &C.head, err);
    if (st == PT_OK) st = core_setup(&C, err);
    if (st == PT_OK) {
        if (C.opts.progress) {
            char label[256];
            snprintf(label, sizeof label, "reading %s", C.name);
            C.prog = pt_progress_start(label, n);
        }
        st = parse_region(&C, d, C.head.body, n, C.head.body_line, out, err);
    }
    if (st == PT_OK) fill_report(&C, report, len, t0);
    core_free(&C);
    return st;
}

pt_status pt_csv_read_buffer(pt_ctx *ctx, const char *data, int64_t len, const char *name,
                             const pt_csv_opts *opts, pt_table **out, pt_csv_report *report,
                             pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_csv_read_buffer: out is NULL");
    *out = NULL;
    if (!data && len > 0)
        return pt_error_set(err, PT_EINVAL, "pt_csv_read_buffer: data is NULL");
    if (len < 0)
        return pt_error_set(err, PT_EINVAL, "pt_csv_read_buffer: len is negative (%lld)",
                            (long long)len);
    return read_all(ctx, data ? data : "", len, name, opts, out, report, err);
}

pt_status pt_csv_read(pt_ctx *ctx, const char *path, const pt_csv_opts *opts, pt_table **out,
                      pt_csv_report *report, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_csv_read: out is NULL");
    *out = NULL;
    if (!path) return pt_error_set(err, PT_EINVAL, "pt_csv_read: path is NULL");
    pt__csv_map m;
    PT_RETURN_NOT_OK(pt__csv_map_file(path, &m, err));
    pt_status st = read_all(ctx, m.data, m.len, path, opts, out, report, err);
    pt__csv_unmap(&m);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Streaming                                                                */
/* ------------------------------------------------------------------------ */

struct pt_csv_reader {
    core C;
    int fd;
    int64_t fsize;
    char *buf;
    int64_t cap, len, pos; /* unconsumed bytes are buf[pos, len) */
    int64_t charged;
    int eof;
    int64_t line;          /* line number of buf[pos] */
    int64_t batch;
    int64_t consumed;      /* file bytes before buf[0] */
    pt_schema *schema;
    int failed;
    double t0;
    int64_t body_off, body_line; /* where the first data row starts */
    int64_t limit;         /* read no byte at or past this offset (0: none) */
};

static pt_status rd_fill(pt_csv_reader *r, int64_t want, pt_error *err) {
    /* keep the unconsumed tail at the front */
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, (size_t)(r->len - r->pos));
        r->consumed += r->pos;
        r->len -= r->pos;
        r->pos = 0;
    }
    if (want > r->cap) {
        int64_t nc = r->cap ? r->cap : 1 << 16;
        while (nc < want) nc *= 2;
        PT_RETURN_NOT_OK(pt_mem_reserve(r->C.mem, nc - r->cap, "CSV read buffer", err));
        char *nb = pt_realloc(r->buf, (size_t)nc);
        if (!nb) {
            pt_mem_release(r->C.mem, nc - r->cap);
            return pt_error_set(err, PT_ENOMEM, "%s: out of memory (read buffer of %lld bytes)",
                                r->C.name, (long long)nc);
        }
        r->charged += nc - r->cap;
        r->buf = nb;
        r->cap = nc;
    }
    while (!r->eof && r->len < want) {
        int64_t room = want - r->len;
        if (r->limit > 0) {
            int64_t left = r->limit - (r->consumed + r->len);
            if (left <= 0) {
                r->eof = 1;
                break;
            }
            if (room > left) room = left;
        }
        ssize_t k = read(r->fd, r->buf + r->len, (size_t)room);
        if (k < 0) {
            if (errno == EINTR) continue;
            return pt_error_set(err, PT_EIO, "%s: read failed: %s", r->C.name, strerror(errno));
        }
        if (k == 0) {
            r->eof = 1;
            break;
        }
        r->len += k;
    }
    return PT_OK;
}

static pt_status rd_schema(pt_csv_reader *r, pt_error *err) {
    pt_schema *s = NULL;
    PT_RETURN_NOT_OK(pt_schema_new(r->C.cfg.nout, (const char *const *)r->C.outnames, r->C.types,
                                   &s, err));
    pt_schema_free(r->schema);
    r->schema = s;
    return PT_OK;
}

pt_status pt_csv_open(pt_ctx *ctx, const char *path, const pt_csv_opts *opts,
                      pt_csv_reader **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_csv_open: out is NULL");
    *out = NULL;
    if (!path) return pt_error_set(err, PT_EINVAL, "pt_csv_open: path is NULL");
    pt_csv_reader *r = pt_calloc(1, sizeof *r);
    if (!r) return pt_error_set(err, PT_ENOMEM, "out of memory");
    r->fd = -1;
    r->t0 = pt_now_s();
    pt_status st = core_init(&r->C, ctx, path, opts, 1, err);
    if (st != PT_OK) goto fail;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        int e = errno;
        st = pt_error_set(err, e == ENOENT ? PT_ENOENT : PT_EIO, "%s: cannot open: %s", path,
                          strerror(e));
        goto fail;
    }
    struct stat sb;
    if (fstat(r->fd, &sb) != 0 || S_ISDIR(sb.st_mode)) {
        st = pt_error_set(err, PT_EIO, "%s: %s", path,
                          S_ISDIR(sb.st_mode) ? "is a directory" : strerror(errno));
        goto fail;
    }
    r->fsize = S_ISREG(sb.st_mode) ? sb.st_size : -1;
    r->batch = r->C.opts.batch_bytes;
    if (r->batch <= 0) {
        int64_t avail = pt_mem_available(r->C.mem);
        if (!r->C.mem || avail == INT64_MAX)
            r->batch = 64 << 20;
        else {
            /* A parsed batch holds about 4-5 times its input bytes (range
             * buffers, columns, dictionaries), and the operators consuming
             * it need room too: a sixteenth keeps the whole pipeline within
             * the budget. */
            r->batch = avail / 16;
            if (r->batch < (256 << 10)) r->batch = 256 << 10;
            if (r->batch > (256 << 20)) r->batch = 256 << 20;
        }
    }
    int64_t want = r->batch;
    for (;;) {
        st = rd_fill(r, want, err);
        if (st != PT_OK) goto fail;
        int64_t b = bom_len(r->buf, r->len);
        if (r->len == b && r->eof) {
            st = pt_error_set(err, PT_EEMPTY, "%s: empty file", r->C.name);
            goto fail;
        }
        if (b == 0 && r->len < 3 && !r->eof) {
            want *= 2;
            continue;
        }
        pt__csv_head_free(&r->C.head);
        st = pt__csv_head_read(r->C.name, r->buf + b, r->len - b, r->eof, &r->C.opts, &r->C.head,
                               err);
        if (st != PT_OK) goto fail;
        if (!r->C.head.need_more) {
            r->pos = b + r->C.head.body;
            r->line = r->C.head.body_line;
            r->body_off = r->pos;
            r->body_line = r->line;
            break;
        }
        want = r->len * 2 > want ? r->len * 2 : want * 2;
    }
    st = core_setup(&r->C, err);
    if (st == PT_OK) st = rd_schema(r, err);
    if (st != PT_OK) goto fail;
    if (r->C.opts.progress) {
        char label[256];
        snprintf(label, sizeof label, "reading %s", r->C.name);
        r->C.prog = pt_progress_start(label, r->fsize > 0 ? r->fsize : 0);
    }
    *out = r;
    return PT_OK;
fail:
    pt_csv_close(r);
    return st;
}

const pt_schema *pt_csv_reader_schema(const pt_csv_reader *r) { return r ? r->schema : NULL; }

pt_status pt_csv_next(pt_csv_reader *r, pt_table **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_csv_next: out is NULL");
    *out = NULL;
    if (!r) return pt_error_set(err, PT_EINVAL, "pt_csv_next: reader is NULL");
    if (r->failed)
        return pt_error_set(err, PT_EINVAL, "%s: the reader failed earlier and cannot go on",
                            r->C.name);
    for (;;) {
        if (r->pos >= r->len && r->eof) {
            pt_progress_finish(r->C.prog);
            r->C.prog = NULL;
            return PT_OK;
        }
        pt_status st = PT_OK;
        int64_t want = r->batch;
        int64_t cut = -1;
        for (;;) {
            if (!r->eof && r->len - r->pos < want) {
                st = rd_fill(r, want, err);
                if (st != PT_OK) break;
            }
            if (r->eof) {
                cut = r->len;
                break;
            }
            /* the last row boundary: walk back from the end with the parity
             * of the quotes in the window (its start is a row start) */
            int64_t q, nl;
            pt__csv_count(r->buf + r->pos, r->len - r->pos, r->C.cfg.quote, &q, &nl);
            int inq = (int)(q & 1);
            char quote = r->C.cfg.quote;
            for (int64_t i = r->len - 1; i >= r->pos; i--) {
                char c = r->buf[i];
                if (c == quote)
                    inq ^= 1;
                else if (c == '\n' && !inq) {
                    cut = i + 1;
                    break;
                }
            }
            if (cut > r->pos) break;
            want = (r->len - r->pos) * 2; /* one row longer than the window */
        }
        if (st != PT_OK) {
            r->failed = 1;
            return st;
        }
        pt_table *t = NULL;
        st = parse_region(&r->C, r->buf, r->pos, cut, r->line, &t, err);
        if (st != PT_OK) {
            r->failed = 1;
            return st;
        }
        r->line += pt__csv_count_nl(r->buf + r->pos, cut - r->pos);
        pt_progress_add(r->C.prog, t->nrows, cut - r->pos);
        r->pos = cut;
        st = rd_schema(r, err);
        if (st != PT_OK) {
            pt_table_free(t);
            r->failed = 1;
            return st;
        }
        if (t->nrows == 0 && !(r->pos >= r->len && r->eof)) {
            pt_table_free(t);
            continue;
        }
        if (t->nrows == 0 && r->C.rows > 0) {
            pt_table_free(t);
            continue;
        }
        *out = t;
        return PT_OK;
    }
}

void pt_csv_reader_report(const pt_csv_reader *r, pt_csv_report *out) {
    if (!out) return;
    if (!r) {
        memset(out, 0, sizeof *out);
        return;
    }
    fill_report(&r->C, out, r->consumed + r->pos, r->t0);
}

int64_t pt_csv_reader_file_size(const pt_csv_reader *r) { return r ? r->fsize : -1; }

/* ---- byte ranges of one file, for the ranks of a distributed scan ------ */

int64_t pt__csv_reader_body_offset(const pt_csv_reader *r) { return r->body_off; }
int64_t pt__csv_reader_body_line(const pt_csv_reader *r) { return r->body_line; }
char pt__csv_reader_quote(const pt_csv_reader *r) { return r->C.cfg.quote; }

pt_status pt__csv_reader_set_range(pt_csv_reader *r, int64_t start, int64_t end, int64_t line,
                                   pt_error *err) {
    if (start < r->body_off || end < start)
        return pt_error_set(err, PT_EINVAL, "%s: bad byte range [%lld, %lld)", r->C.name,
                            (long long)start, (long long)end);
    if (lseek(r->fd, (off_t)start, SEEK_SET) < 0)
        return pt_error_set(err, PT_EIO, "%s: cannot seek to byte %lld: %s", r->C.name,
                            (long long)start, strerror(errno));
    r->consumed = start;
    r->pos = r->len = 0;
    r->line = line;
    r->limit = end;
    r->eof = start >= end;
    return PT_OK;
}

/* Reads [lo, hi) of path in blocks, handing each to fn. */
static pt_status for_blocks(const char *path, int64_t lo, int64_t hi,
                            bool (*fn)(void *arg, const char *p, int64_t n, int64_t at), void *arg,
                            pt_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pt_error_set(err, PT_EIO, "%s: cannot open: %s", path, strerror(errno));
    enum { BLOCK = 4 << 20 };
    char *buf = pt_malloc(BLOCK);
    pt_status st = buf ? PT_OK : pt_error_set(err, PT_ENOMEM, "%s: out of memory", path);
    for (int64_t at = lo; st == PT_OK && at < hi;) {
        int64_t want = hi - at < BLOCK ? hi - at : BLOCK;
        ssize_t k = pread(fd, buf, (size_t)want, (off_t)at);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            st = pt_error_set(err, PT_EIO, "%s: read failed at byte %lld: %s", path,
                              (long long)at, k < 0 ? strerror(errno) : "unexpected end of file");
            break;
        }
        if (!fn(arg, buf, k, at)) break;
        at += k;
    }
    pt_free(buf);
    close(fd);
    return st;
}

typedef struct count_acc {
    char quote;
    int64_t q, nl;
} count_acc;

static bool count_block(void *arg, const char *p, int64_t n, int64_t at) {
    (void)at;
    count_acc *a = arg;
    int64_t q, nl;
    pt__csv_count(p, n, a->quote, &q, &nl);
    a->q += q;
    a->nl += nl;
    return true;
}

pt_status pt__csv_count_range(const char *path, int64_t lo, int64_t hi, char quote, int64_t *quotes,
                              int64_t *newlines, pt_error *err) {
    count_acc a = {quote, 0, 0};
    pt_status st = hi > lo ? for_blocks(path, lo, hi, count_block, &a, err) : PT_OK;
    *quotes = a.q;
    *newlines = a.nl;
    return st;
}

typedef struct start_acc {
    char quote;
    int inq;
    int64_t found, nl;
} start_acc;

static bool start_block(void *arg, const char *p, int64_t n, int64_t at) {
    start_acc *a = arg;
    for (int64_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == a->quote) {
            a->inq ^= 1;
        } else if (c == '\n') {
            a->nl++;
            if (!a->inq) {
                a->found = at + i + 1;
                return false;
            }
        }
    }
    return true;
}

pt_status pt__csv_row_start(const char *path, int64_t pos, int64_t fend, char quote, int inq,
                            int64_t *start, int64_t *newlines, pt_error *err) {
    *start = fend;
    *newlines = 0;
    if (pos >= fend) return PT_OK;
    /* A row starts at pos when the byte before it ends a row: scan from
     * pos - 1 with the quote state before that byte. */
    char prev;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pt_error_set(err, PT_EIO, "%s: cannot open: %s", path, strerror(errno));
    ssize_t k = pread(fd, &prev, 1, (off_t)(pos - 1));
    close(fd);
    if (k != 1)
        return pt_error_set(err, PT_EIO, "%s: cannot read byte %lld", path, (long long)(pos - 1));
    start_acc a = {quote, inq ^ (prev == quote), -1, 0};
    PT_RETURN_NOT_OK(for_blocks(path, pos - 1, fend, start_block, &a, err));
    if (a.found >= 0) *start = a.found;
    *newlines = a.nl - (prev == '\n' ? 1 : 0); /* a newline at pos - 1 is before pos */
    return PT_OK;
}

void pt_csv_close(pt_csv_reader *r) {
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    pt_free(r->buf);
    if (r->charged) pt_mem_release(r->C.mem, r->charged);
    pt_schema_free(r->schema);
    core_free(&r->C);
    pt_free(r);
}
