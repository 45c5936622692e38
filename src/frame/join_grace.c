/*
 * join_grace.c - the out-of-core (grace) hash join. Both sides are split
 * by a hash of their keys into K partitions written to native spill files;
 * partition pairs are then joined one at a time with the in-memory stream
 * join (build the smaller side, stream the other's batches through it). A
 * pair whose build side is still too big is split again with another hash
 * seed. Every row lands in exactly one pair, so outer joins stay exact:
 * each pair emits its own unmatched rows (null keys go to partition 0).
 *
 * Memory: one writer is open at a time (its 1 MiB buffer is charged to the
 * budget); rows are buffered per partition up to a quarter of the working
 * memory and then flushed as one file with one batch per partition, whose
 * batch index is kept in memory. The spill directory is private to the join
 * and removed on every exit path.
 */
#include <string.h>

#include "frame/join.h"
#include "io/io_native.h"

#define GRACE_MAX_K 64
#define GRACE_MAX_DEPTH 4
#define WRITER_OVERHEAD ((int64_t)5 << 18) /* 1 MiB buffer plus scratch */
#define UNLIMITED_WORK ((int64_t)256 << 20)

typedef struct gfile {
    char *path;
    int32_t *batch; /* [K] batch index of partition k, or -1 */
} gfile;

typedef struct gside {
    pt_schema *schema; /* copy */
    const int *keys;
    int kept;          /* unmatched rows of this side are emitted */
    int K;
    const char *prefix;
    gfile *files;
    int nfiles, capfiles;
    int64_t *rows, *bytes; /* [K] */
    pt_table ***buf;       /* [K] pending pieces */
    int *nbuf, *capbuf;
    int64_t buffered;
} gside;

typedef struct grace {
    pt_ctx *ctx;
    pt_mem *mem;
    pt__spill_dir *sd;
    pt_join_type type;
    int nkeys;
    int64_t work; /* working memory we aim for */
    pt__join_stats *stats;
    pt_table **outs;
    int64_t nouts, capouts;
    pt_native_write_opts wopts;
} grace;

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* Bytes per row of t, from the types (slices share their parents' buffers,
 * so buffer capacities would overcount). */
static int64_t row_bytes(const pt_table *t) {
    int64_t b = 1;
    for (int c = 0; c < t->schema->nfields; c++) {
        const pt_column *col = t->cols[c];
        switch (col->type) {
        case PT_TYPE_UTF8: {
            b += 8;
            if (t->nrows > 0) {
                const int64_t *o = (const int64_t *)col->values->data + col->offset;
                b += (o[t->nrows] - o[0]) / t->nrows + 1;
            }
            break;
        }
        case PT_TYPE_NULL:
        case PT_TYPE_BOOL: b += 1; break;
        default: b += pt_type_width(col->type);
        }
    }
    return b;
}

static pt_status empty_table(const pt_schema *s, pt_table **out, pt_error *err) {
    *out = NULL;
    int n = s->nfields;
    pt_column **cols = pt_calloc((size_t)(n ? n : 1), sizeof *cols);
    if (!cols) return pt_error_set(err, PT_ENOMEM, "join: out of memory");
    pt_status st = PT_OK;
    pt_column *dict = NULL;
    for (int c = 0; c < n && st == PT_OK; c++) {
        if (s->fields[c].type == PT_TYPE_DICT) {
            if (!dict) st = pt_column_new(NULL, PT_TYPE_UTF8, 0, 0, &dict, err);
            if (st == PT_OK) st = pt_column_new_dict(NULL, dict, 0, &cols[c], err);
        } else {
            st = pt_column_new(NULL, s->fields[c].type, 0, 0, &cols[c], err);
        }
    }
    pt_column_release(dict);
    pt_schema *sc = NULL;
    if (st == PT_OK) st = pt_schema_copy(s, &sc, err);
    if (st == PT_OK) {
        st = pt_table_new(sc, cols, out, err);
    } else {
        for (int c = 0; c < n; c++) pt_column_release(cols[c]);
    }
    pt_free(cols);
    return st;
}

/* A piece of a few rows taken from a column with a big dictionary would
 * carry (and spill) the whole dictionary: re-encode it with the entries it
 * uses. */
static pt_status compact_dicts(pt_mem *mem, pt_table *t, pt_error *err) {
    for (int c = 0; c < t->schema->nfields; c++) {
        pt_column *col = t->cols[c];
        if (col->type != PT_TYPE_DICT || col->dict->length <= 2 * t->nrows + 64) continue;
        int64_t dl = col->dict->length;
        int32_t *map = pt_malloc((size_t)dl * 4);
        if (!map) return pt_error_set(err, PT_ENOMEM, "join: out of memory");
        memset(map, 0xff, (size_t)dl * 4);
        pt_column *nd = NULL, *nc = NULL;
        pt_status st = pt_column_new(mem, PT_TYPE_UTF8, t->nrows, 0, &nd, err);
        if (st == PT_OK) st = pt_column_new_dict(mem, nd, t->nrows, &nc, err);
        const int32_t *idx = (const int32_t *)col->values->data + col->offset;
        for (int64_t i = 0; i < t->nrows && st == PT_OK; i++) {
            if (!pt_column_is_valid(col, i)) {
                st = pt_column_append_null(nc, err);
                continue;
            }
            int32_t e = idx[i];
            if (map[e] < 0) {
                int64_t len;
                const char *s = pt_column_str(col->dict, e, &len);
                st = pt_column_append_str(nd, s, len, err);
                map[e] = (int32_t)(nd->length - 1);
            }
            if (st == PT_OK) st = pt_column_append_index(nc, map[e], err);
        }
        pt_free(map);
        pt_column_release(nd);
        if (st != PT_OK) {
            pt_column_release(nc);
            return st;
        }
        pt_column_release(col);
        t->cols[c] = nc;
    }
    return PT_OK;
}

static pt_status add_output(grace *g, pt_table *t, pt_error *err) {
    if (g->nouts == g->capouts) {
        int64_t nc = g->capouts ? 2 * g->capouts : 64;
        pt_table **n = pt_realloc(g->outs, (size_t)nc * sizeof *n);
        if (!n) {
            pt_table_free(t);
            return pt_error_set(err, PT_ENOMEM, "join: out of memory");
        }
        g->outs = n;
        g->capouts = nc;
    }
    g->outs[g->nouts++] = t;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Partitioned sides                                                        */
/* ------------------------------------------------------------------------ */

static void side_free(gside *s, grace *g) {
    for (int k = 0; s->nbuf && k < s->K; k++) {
        for (int b = 0; b < s->nbuf[k]; b++) pt_table_free(s->buf[k][b]);
        pt_free(s->buf[k]);
    }
    for (int f = 0; f < s->nfiles; f++) {
        if (g) pt__spill_remove(g->sd, s->files[f].path);
        pt_free(s->files[f].path);
        pt_free(s->files[f].batch);
    }
    pt_free(s->files);
    pt_free(s->rows);
    pt_free(s->bytes);
    pt_free(s->buf);
    pt_free(s->nbuf);
    pt_free(s->capbuf);
    pt_schema_free(s->schema);
    memset(s, 0, sizeof *s);
}

static pt_status side_init(gside *s, const pt_schema *schema, const int *keys, int kept, int K,
                           const char *prefix, pt_error *err) {
    memset(s, 0, sizeof *s);
    s->keys = keys;
    s->kept = kept;
    s->K = K;
    s->prefix = prefix;
    s->rows = pt_calloc((size_t)K, sizeof *s->rows);
    s->bytes = pt_calloc((size_t)K, sizeof *s->bytes);
    s->buf = pt_calloc((size_t)K, sizeof *s->buf);
    s->nbuf = pt_calloc((size_t)K, sizeof *s->nbuf);
    s->capbuf = pt_calloc((size_t)K, sizeof *s->capbuf);
    if (!s->rows || !s->bytes || !s->buf || !s->nbuf || !s->capbuf) {
        side_free(s, NULL);
        return pt_error_set(err, PT_ENOMEM, "join: out of memory");
    }
    pt_status st = pt_schema_copy(schema, &s->schema, err);
    if (st != PT_OK) side_free(s, NULL);
    return st;
}

/* Writes the buffered pieces as one file with one batch per partition. */
static pt_status side_flush(grace *g, gside *s, pt_error *err) {
    if (s->buffered == 0) return PT_OK;
    if (s->nfiles == s->capfiles) {
        int nc = s->capfiles ? 2 * s->capfiles : 16;
        gfile *n = pt_realloc(s->files, (size_t)nc * sizeof *n);
        if (!n) return pt_error_set(err, PT_ENOMEM, "join: out of memory");
        s->files = n;
        s->capfiles = nc;
    }
    gfile *f = &s->files[s->nfiles];
    memset(f, 0, sizeof *f);
    f->batch = pt_malloc((size_t)s->K * sizeof *f->batch);
    char path[4096];
    pt_status st = f->batch ? PT_OK : pt_error_set(err, PT_ENOMEM, "join: out of memory");
    if (st == PT_OK) st = pt__spill_file_path(g->sd, s->prefix, path, sizeof path, err);
    if (st == PT_OK) {
        f->path = pt_strdup(path);
        if (!f->path) st = pt_error_set(err, PT_ENOMEM, "join: out of memory");
    }
    if (st != PT_OK) {
        pt_free(f->batch);
        pt_free(f->path);
        return st;
    }
    s->nfiles++; /* from here on the file is removed with the side */
    pt_native_writer *w = NULL;
    st = pt_native_open_write(path, s->schema, &g->wopts, &w, err);
    int32_t nbatch = 0;
    for (int k = 0; k < s->K; k++) {
        f->batch[k] = -1;
        if (s->nbuf[k] == 0) continue;
        if (st == PT_OK) {
            pt_table *t = s->buf[k][0];
            pt_table *cat = NULL;
            if (s->nbuf[k] > 1) {
                st = pt_table_concat(g->mem, s->buf[k], s->nbuf[k], &cat, err);
                t = cat;
            }
            if (st == PT_OK) st = pt_native_write_batch(w, t, err);
            pt_table_free(cat);
            if (st == PT_OK) f->batch[k] = nbatch++;
        }
        for (int b = 0; b < s->nbuf[k]; b++) pt_table_free(s->buf[k][b]);
        s->nbuf[k] = 0;
    }
    s->buffered = 0;
    if (st == PT_OK) {
        int64_t bytes = pt_native_writer_bytes(w);
        st = pt_native_close_write(w, err);
        if (st == PT_OK) {
            pt__spill_add_written(g->sd, bytes);
            g->stats->spill_bytes += bytes;
        }
    } else {
        pt_native_abort_write(w);
    }
    if (st != PT_OK) pt_error_prefix(err, "join: spilling to '%s'", path);
    return st;
}

/* Splits rows of t by the hash of their keys into the side's partitions,
 * a chunk of rows at a time, flushing when the buffers are full. */
static pt_status side_add(grace *g, gside *s, const pt_table *t, uint64_t seed, pt_error *err) {
    int64_t n = t->nrows;
    if (n == 0) return PT_OK;
    int64_t rb = row_bytes(t);
    int64_t chunk = g->work / 16 / (rb + 24);
    if (chunk < 256) chunk = 256;
    if (chunk > n) chunk = n;
    int64_t abytes = chunk * (8 + 1 + 8 + 4) + ((int64_t)s->K + 1) * 8;
    PT_RETURN_NOT_OK(pt_mem_reserve(g->mem, abytes, "join partitioning", err));
    uint64_t *h = pt_malloc((size_t)chunk * 8);
    uint8_t *valid = pt_malloc((size_t)chunk);
    int64_t *idx = pt_malloc((size_t)chunk * 8);
    int32_t *pid = pt_malloc((size_t)chunk * 4);
    int64_t *off = pt_malloc(((size_t)s->K + 1) * 8);
    pt_status st = PT_OK;
    if (!h || !valid || !idx || !pid || !off) st = pt_error_set(err, PT_ENOMEM, "join: out of memory");
    for (int64_t lo = 0; lo < n && st == PT_OK; lo += chunk) {
        int64_t hi = lo + chunk < n ? lo + chunk : n;
        pt__join_hash_rows(t, g->nkeys, s->keys, lo, hi, seed, h, valid);
        memset(off, 0, ((size_t)s->K + 1) * 8);
        for (int64_t i = 0; i < hi - lo; i++) {
            int32_t k;
            if (valid[i]) k = (int32_t)(((h[i] >> 32) * (uint64_t)s->K) >> 32);
            else k = s->kept ? 0 : -1; /* a null key never matches */
            pid[i] = k;
            if (k >= 0) off[k + 1]++;
        }
        for (int k = 0; k < s->K; k++) off[k + 1] += off[k];
        for (int64_t i = 0; i < hi - lo; i++)
            if (pid[i] >= 0) idx[off[pid[i]]++] = lo + i;
        /* off[k] is now the end of partition k. */
        int64_t start = 0;
        for (int k = 0; k < s->K && st == PT_OK; k++) {
            int64_t cnt = off[k] - start;
            if (cnt == 0) continue;
            pt_table *piece = NULL;
            st = pt_table_take(g->mem, t, idx + start, cnt, &piece, err);
            start = off[k];
            if (st == PT_OK) st = compact_dicts(g->mem, piece, err);
            if (st == PT_OK && s->nbuf[k] == s->capbuf[k]) {
                int nc = s->capbuf[k] ? 2 * s->capbuf[k] : 4;
                pt_table **nb = pt_realloc(s->buf[k], (size_t)nc * sizeof *nb);
                if (!nb) st = pt_error_set(err, PT_ENOMEM, "join: out of memory");
                else s->buf[k] = nb, s->capbuf[k] = nc;
            }
            if (st != PT_OK) {
                pt_table_free(piece);
                break;
            }
            s->buf[k][s->nbuf[k]++] = piece;
            s->rows[k] += cnt;
            s->bytes[k] += cnt * rb;
            s->buffered += cnt * rb;
        }
        if (st == PT_OK && s->buffered > g->work / 4) st = side_flush(g, s, err);
    }
    pt_free(h);
    pt_free(valid);
    pt_free(idx);
    pt_free(pid);
    pt_free(off);
    pt_mem_release(g->mem, abytes);
    return st;
}

/* Reads batch b of file f (all columns). */
static pt_status read_batch(grace *g, const gfile *f, int32_t b, pt_table **out, pt_error *err) {
    *out = NULL;
    pt_native_reader *r = NULL;
    PT_RETURN_NOT_OK(pt_native_open_read(g->mem, f->path, &r, err));
    pt_status st = pt_native_read_batch(r, b, NULL, 0, out, err);
    if (st == PT_OK) pt__spill_add_read(g->sd, pt_native_reader_bytes(r));
    pt_native_close_read(r);
    return st;
}

/* Feeds partition k of `src` (from its files) into `dst` with a new seed. */
static pt_status side_repartition(grace *g, const gside *src, int k, gside *dst, uint64_t seed,
                                  pt_error *err) {
    for (int f = 0; f < src->nfiles; f++) {
        if (src->files[f].batch[k] < 0) continue;
        pt_table *t;
        PT_RETURN_NOT_OK(read_batch(g, &src->files[f], src->files[f].batch[k], &t, err));
        pt_status st = side_add(g, dst, t, seed, err);
        pt_table_free(t);
        PT_RETURN_NOT_OK(st);
    }
    return side_flush(g, dst, err);
}

/* ------------------------------------------------------------------------ */
/* Joining partition pairs                                                  */
/* ------------------------------------------------------------------------ */

static int choose_k(int64_t need, int64_t share) {
    int K = 4;
    while (K < GRACE_MAX_K && (int64_t)K * share < 2 * need) K *= 2;
    return K;
}

/* Cost in memory of building on `rows` rows of `bytes` bytes: the batches,
 * their concatenation and the table. */
static int64_t build_cost(int64_t rows, int64_t bytes) { return 2 * bytes + 40 * rows; }

static pt_status join_pair(grace *g, gside *L, gside *R, int k, int depth, uint64_t seed,
                           pt_error *err);

static pt_status join_level(grace *g, gside *L, gside *R, int depth, uint64_t seed,
                            pt_error *err) {
    if (depth > g->stats->grace_depth) g->stats->grace_depth = depth;
    for (int k = 0; k < L->K; k++) PT_RETURN_NOT_OK(join_pair(g, L, R, k, depth, seed, err));
    return PT_OK;
}

static pt_status join_pair(grace *g, gside *L, gside *R, int k, int depth, uint64_t seed,
                           pt_error *err) {
    if (L->rows[k] == 0 && R->rows[k] == 0) return PT_OK;
    int build_is_right = R->bytes[k] <= L->bytes[k];
    gside *B = build_is_right ? R : L, *P = build_is_right ? L : R;
    if (P->rows[k] == 0 && !P->kept && !B->kept) return PT_OK;
    if (B->rows[k] == 0 && !P->kept) return PT_OK;
    int64_t need = build_cost(B->rows[k], B->bytes[k]);
    int64_t share = g->work / 4;
    if (need > share && depth < GRACE_MAX_DEPTH && B->rows[k] > 1) {
        /* Split this pair again with a different seed. */
        int K2 = choose_k(need, share);
        uint64_t seed2 = pt_splitmix64(seed + (uint64_t)k + 1);
        gside L2, R2;
        pt_status st = side_init(&L2, L->schema, L->keys, L->kept, K2, "jl", err);
        if (st != PT_OK) return st;
        st = side_init(&R2, R->schema, R->keys, R->kept, K2, "jr", err);
        if (st != PT_OK) {
            side_free(&L2, g);
            return st;
        }
        st = side_repartition(g, L, k, &L2, seed2, err);
        if (st == PT_OK) st = side_repartition(g, R, k, &R2, seed2, err);
        /* A key repeated more than the budget allows cannot be split by
         * hashing: join such a pair in memory rather than recurse. */
        int64_t biggest = 0;
        for (int k2 = 0; k2 < K2; k2++) {
            int64_t b = build_is_right ? R2.rows[k2] : L2.rows[k2];
            if (b > biggest) biggest = b;
        }
        if (st == PT_OK) {
            if (biggest == B->rows[k]) {
                pt_log_debug("join: grace partition of %lld rows does not split (repeated key)",
                             (long long)B->rows[k]);
                for (int k2 = 0; k2 < K2 && st == PT_OK; k2++)
                    st = join_pair(g, &L2, &R2, k2, GRACE_MAX_DEPTH, seed2, err);
            } else {
                st = join_level(g, &L2, &R2, depth + 1, seed2, err);
            }
        }
        side_free(&L2, g);
        side_free(&R2, g);
        return st;
    }

    /* Build on B's partition k. */
    int64_t nb = 0;
    for (int f = 0; f < B->nfiles; f++) nb += B->files[f].batch[k] >= 0;
    pt_table **bt = pt_calloc((size_t)(nb ? nb : 1), sizeof *bt);
    if (!bt) return pt_error_set(err, PT_ENOMEM, "join: out of memory");
    pt_status st = PT_OK;
    int64_t i = 0;
    for (int f = 0; f < B->nfiles && st == PT_OK; f++)
        if (B->files[f].batch[k] >= 0) st = read_batch(g, &B->files[f], B->files[f].batch[k], &bt[i++], err);
    if (st == PT_OK && nb == 0) {
        st = empty_table(B->schema, &bt[0], err);
        nb = 1;
    }
    pt__join_stream *j = NULL;
    if (st == PT_OK)
        st = pt__join_stream_new_ex(g->ctx, bt, nb, build_is_right, g->type, g->nkeys, P->keys,
                                    B->keys, P->schema, (int64_t)1 << 16, &j, err);
    for (int64_t b = 0; b < nb; b++) pt_table_free(bt[b]);
    pt_free(bt);
    if (st == PT_OK) {
        pt__join_stream_set_output_mem(j, NULL);
        g->stats->table = pt__join_stream_table_kind(j);
    }
    for (int f = 0; f < P->nfiles && st == PT_OK; f++) {
        if (P->files[f].batch[k] < 0) continue;
        pt_table *pb = NULL, *o = NULL;
        st = read_batch(g, &P->files[f], P->files[f].batch[k], &pb, err);
        if (st == PT_OK) st = pt__join_stream_probe(j, pb, &o, err);
        pt_table_free(pb);
        if (st == PT_OK) st = add_output(g, o, err);
    }
    if (st == PT_OK) {
        pt_table *o = NULL;
        st = pt__join_stream_finish(j, &o, err);
        if (st == PT_OK) st = add_output(g, o, err);
    }
    pt__join_stream_free(j);
    return st;
}

pt_status pt__join_grace(pt_ctx *ctx, pt_table *const *lparts, int64_t nl,
                         pt_table *const *rparts, int64_t nr, pt_join_type type, int nkeys,
                         const int *lkeys, const int *rkeys, const pt__join_opts *opts,
                         pt_table **out, pt__join_stats *stats, pt_error *err) {
    *out = NULL;
    grace g;
    memset(&g, 0, sizeof g);
    g.ctx = ctx;
    g.mem = pt_ctx_mem(ctx);
    g.type = type;
    g.nkeys = nkeys;
    g.stats = stats;
    pt_native_write_opts_init(&g.wopts);
    g.wopts.durable = 0;
    g.wopts.compression_level = 1;
    g.wopts.mem = g.mem;
    int64_t avail = pt_mem_limit(g.mem) > 0 ? pt_mem_available(g.mem) : UNLIMITED_WORK;
    g.work = avail - WRITER_OVERHEAD;
    if (g.work < ((int64_t)128 << 10)) g.work = (int64_t)128 << 10;

    int left_kept = type == PT_JOIN_LEFT || type == PT_JOIN_FULL;
    int right_kept = type == PT_JOIN_RIGHT || type == PT_JOIN_FULL;
    int64_t lrows = 0, rrows = 0, lbytes = 0, rbytes = 0;
    for (int64_t p = 0; p < nl; p++) lrows += lparts[p]->nrows, lbytes += lparts[p]->nrows * row_bytes(lparts[p]);
    for (int64_t p = 0; p < nr; p++) rrows += rparts[p]->nrows, rbytes += rparts[p]->nrows * row_bytes(rparts[p]);
    int64_t need = rbytes <= lbytes ? build_cost(rrows, rbytes) : build_cost(lrows, lbytes);
    int K = opts && opts->grace_parts > 0 ? opts->grace_parts : choose_k(need, g.work / 4);
    if (K > 4096) K = 4096;
    stats->grace_parts = K;

    pt_status st = pt__spill_dir_new_ctx(ctx, &g.sd, err);
    if (st != PT_OK) return st;
    gside L, R;
    memset(&L, 0, sizeof L);
    memset(&R, 0, sizeof R);
    uint64_t seed = 0x6a09e667f3bcc908ULL;
    st = side_init(&L, lparts[0]->schema, lkeys, left_kept, K, "jl", err);
    if (st == PT_OK) st = side_init(&R, rparts[0]->schema, rkeys, right_kept, K, "jr", err);
    for (int64_t p = 0; p < nl && st == PT_OK; p++) st = side_add(&g, &L, lparts[p], seed, err);
    if (st == PT_OK) st = side_flush(&g, &L, err);
    for (int64_t p = 0; p < nr && st == PT_OK; p++) st = side_add(&g, &R, rparts[p], seed, err);
    if (st == PT_OK) st = side_flush(&g, &R, err);
    if (st == PT_OK) st = join_level(&g, &L, &R, 1, seed, err);
    side_free(&L, &g);
    side_free(&R, &g);
    if (st == PT_OK && g.nouts > INT32_MAX) st = pt_error_set(err, PT_EINVAL, "join: too many output batches");
    if (st == PT_OK && g.nouts == 0) {
        /* Only when every partition was skipped: an empty result. */
        pt__join_stream *j = NULL;
        pt_table *e = NULL;
        st = empty_table(rparts[0]->schema, &e, err);
        if (st == PT_OK)
            st = pt__join_stream_new_ex(ctx, &e, 1, 1, PT_JOIN_INNER, nkeys, lkeys, rkeys,
                                        lparts[0]->schema, 1, &j, err);
        pt_table_free(e);
        if (st == PT_OK) st = pt__join_stream_finish(j, out, err);
        pt__join_stream_free(j);
    } else if (st == PT_OK) {
        st = pt_table_concat(NULL, g.outs, (int)g.nouts, out, err);
    }
    for (int64_t o = 0; o < g.nouts; o++) pt_table_free(g.outs[o]);
    pt_free(g.outs);
    pt__spill_dir_free(g.sd);
    if (st != PT_OK) pt_error_prefix(err, "join (out of core)");
    return st;
}
