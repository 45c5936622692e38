/*
 * native_write.c - writer of Partita's native columnar files (".ptn"), the
 * format used for spilling partitions, for checkpoints and as a fast data
 * source. Files are written to a temporary name and renamed on close, so a
 * reader never sees a partial file.
 *
 * Layout (all integers little-endian; the format is version 1):
 *
 *   header   16 bytes  "PTNATIVE", u16 version, u16 flags (0),
 *                      u32 CRC32C of the 12 bytes before it
 *   batch*             record batches, back to back from offset 16
 *   footer             the schema and the batch index (below)
 *   tail     24 bytes  u64 footer length, u32 CRC32C of the footer,
 *                      u32 version, "PTNATIVE"
 *
 * A reader reads the header and the tail, then the footer, and can then read
 * any batch by index without touching the others.
 *
 *   footer: u32 nfields; per field: u8 type, u8 0, u16 0, u32 name length,
 *           name bytes (no NUL); u64 nbatches; per batch: u64 offset, u64
 *           length, i64 rows. Batches must tile [16, footer start) exactly.
 *
 *   batch:  u32 "PTBT", u32 ncols, u64 rows; ncols directory entries of
 *           (u64 chunk offset from the batch start, u64 chunk length,
 *           u32 CRC32C of the chunk, u32 0); u32 0; u32 CRC32C of all the
 *           batch header bytes before it. Then the column chunks, tiling
 *           the rest of the batch in schema order.
 *
 *   chunk:  u8 type, u8 nbufs, u16 flags (0), u32 0, i64 rows, i64 nulls,
 *           i64 dictionary entries (dict columns; else 0); nbufs buffer
 *           descriptors of (u8 codec: 0 raw / 1 zstd frame, u8 slot, u16 0,
 *           u32 0, u64 decoded length, u64 stored length); then the stored
 *           bytes of each buffer in slot order.
 *
 *   slots:  0 validity bitmap ((rows + 7) / 8 bytes, LSB first, or 0 bytes
 *           when the chunk has no nulls; null-type columns store none and are
 *           all null); 1 values: bool bits, fixed-width values, utf8 int64
 *           offsets (rows + 1, starting at 0) or dict int32 indices (0 for
 *           null rows); 2 utf8 bytes, or the dictionary's int64 offsets;
 *           3 the dictionary's bytes. Each dictionary column stores its own
 *           dictionary in every batch, so batches stay independent.
 *
 * Every byte of the file is covered by a checksum or checked against a
 * fixed value, so a flipped bit is always reported. Checksums are per
 * column chunk rather than per batch, so that a projected read verifies
 * exactly the bytes it reads; the batch header's CRC protects the chunk
 * checksums themselves.
 *
 * Sliced columns are normalised on write: utf8 offsets are rebased to 0 and
 * bitmaps are re-aligned to bit 0. A buffer is stored raw when zstd is
 * absent, the level is 0, or compression saves less than 1/32 of its size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "col/col_internal.h"
#include "io/io_util.h"
#include "io/native_format.h"
#include "pt_build_info.h"

#if PT_BUILD_HAVE_ZSTD
#include <zstd.h>
#endif

#define WBUF_SIZE (1 << 20)
/* Buffers at least this large bypass the write buffer. */
#define DIRECT_WRITE_MIN (256 << 10)

/* A growable scratch block charged to the writer's budget. */
typedef struct scratch {
    uint8_t *p;
    int64_t cap;
} scratch;

struct pt_native_writer {
    char *path;     /* final path */
    char *tmp_path; /* where the bytes go until close */
    int fd;
    pt_schema *schema;
    pt_native_write_opts opts;
    int64_t pos; /* bytes handed to the file so far, incl. buffered */
    uint8_t *wbuf;
    int64_t wlen;
    /* batch index */
    int64_t nbatches, batch_cap;
    uint64_t *b_off, *b_len;
    int64_t *b_rows;
    /* scratch for normalised buffers (per slot) and compressed output */
    scratch norm[PTN_MAX_BUFS];
    scratch comp[PTN_MAX_BUFS];
    uint8_t *zeros; /* for the batch header placeholder */
#if PT_BUILD_HAVE_ZSTD
    ZSTD_CCtx *cctx;
#endif
    pt_status failed; /* sticky failure */
    pt_error fail_err;
};

void pt_native_write_opts_init(pt_native_write_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->compression_level = 1;
    o->durable = 1;
}

/* ------------------------------------------------------------------------ */
/* Low-level output                                                         */
/* ------------------------------------------------------------------------ */

static pt_status scratch_reserve(pt_native_writer *w, scratch *s, int64_t need, pt_error *err) {
    if (need <= s->cap) return PT_OK;
    int64_t cap = s->cap * 2;
    if (cap < need) cap = need;
    if (cap < 4096) cap = 4096;
    PT_RETURN_NOT_OK(pt_mem_reserve(w->opts.mem, cap, "native writer scratch", err));
    uint8_t *p = pt_malloc((size_t)cap);
    if (!p) {
        pt_mem_release(w->opts.mem, cap);
        return pt_error_set(err, PT_ENOMEM, "%s: out of memory for a %lld-byte write buffer",
                            w->path, (long long)cap);
    }
    pt_free(s->p);
    pt_mem_release(w->opts.mem, s->cap);
    s->p = p;
    s->cap = cap;
    return PT_OK;
}

static void scratch_free(pt_native_writer *w, scratch *s) {
    pt_free(s->p);
    pt_mem_release(w->opts.mem, s->cap);
    s->p = NULL;
    s->cap = 0;
}

/* Records a sticky failure so later calls report the first error. */
static pt_status writer_fail(pt_native_writer *w, pt_status s, pt_error *err) {
    w->failed = s;
    if (err)
        w->fail_err = *err;
    else
        pt_error_set(&w->fail_err, s, "%s: write failed", w->path);
    return s;
}

static pt_status write_all(pt_native_writer *w, const uint8_t *p, int64_t n, pt_error *err) {
    while (n > 0) {
        size_t chunk = n > (1 << 30) ? (size_t)1 << 30 : (size_t)n;
        ssize_t k = write(w->fd, p, chunk);
        if (k < 0) {
            if (errno == EINTR) continue;
            return pt_error_set(err, PT_EIO, "%s: write to '%s' failed: %s", w->path, w->tmp_path,
                                strerror(errno));
        }
        p += k;
        n -= k;
    }
    return PT_OK;
}

static pt_status wflush(pt_native_writer *w, pt_error *err) {
    if (w->wlen == 0) return PT_OK;
    pt_status s = write_all(w, w->wbuf, w->wlen, err);
    w->wlen = 0;
    return s;
}

static pt_status wput(pt_native_writer *w, const void *data, int64_t n, pt_error *err) {
    if (n <= 0) return PT_OK;
    w->pos += n;
    if (n >= DIRECT_WRITE_MIN) {
        PT_RETURN_NOT_OK(wflush(w, err));
        return write_all(w, data, n, err);
    }
    if (w->wlen + n > WBUF_SIZE) PT_RETURN_NOT_OK(wflush(w, err));
    memcpy(w->wbuf + w->wlen, data, (size_t)n);
    w->wlen += n;
    return PT_OK;
}

static pt_status pwrite_all(pt_native_writer *w, const uint8_t *p, int64_t n, int64_t off,
                            pt_error *err) {
    while (n > 0) {
        ssize_t k = pwrite(w->fd, p, (size_t)n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR) continue;
            return pt_error_set(err, PT_EIO, "%s: write to '%s' failed: %s", w->path, w->tmp_path,
                                strerror(errno));
        }
        p += k;
        n -= k;
        off += k;
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Open / abort                                                             */
/* ------------------------------------------------------------------------ */

static void writer_free(pt_native_writer *w) {
    if (!w) return;
    for (int i = 0; i < PTN_MAX_BUFS; i++) {
        scratch_free(w, &w->norm[i]);
        scratch_free(w, &w->comp[i]);
    }
#if PT_BUILD_HAVE_ZSTD
    ZSTD_freeCCtx(w->cctx);
#endif
    if (w->wbuf) pt_mem_release(w->opts.mem, WBUF_SIZE);
    pt_free(w->wbuf);
    pt_free(w->zeros);
    pt_free(w->b_off);
    pt_free(w->b_len);
    pt_free(w->b_rows);
    pt_schema_free(w->schema);
    pt_free(w->path);
    pt_free(w->tmp_path);
    pt_free(w);
}

static pt_status check_schema(const pt_schema *s, pt_error *err) {
    if (!s) return pt_error_set(err, PT_EINVAL, "pt_native_open_write: schema is NULL");
    if (s->nfields < 0 || (s->nfields > 0 && !s->fields))
        return pt_error_set(err, PT_EINVAL, "pt_native_open_write: schema has %d fields",
                            s->nfields);
    for (int i = 0; i < s->nfields; i++) {
        if (!s->fields[i].name)
            return pt_error_set(err, PT_EINVAL, "pt_native_open_write: field %d has no name", i);
        if ((int)s->fields[i].type < 0 || s->fields[i].type >= PT_TYPE_COUNT)
            return pt_error_set(err, PT_EINVAL,
                                "pt_native_open_write: field %d ('%s') has invalid type %d", i,
                                s->fields[i].name, (int)s->fields[i].type);
    }
    return PT_OK;
}

pt_status pt_native_open_write(const char *path, const pt_schema *schema,
                               const pt_native_write_opts *opts, pt_native_writer **out,
                               pt_error *err) {
    static uint32_t seq;
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_native_open_write: out is NULL");
    *out = NULL;
    if (!path || !*path) return pt_error_set(err, PT_EINVAL, "pt_native_open_write: path is empty");
    PT_RETURN_NOT_OK(check_schema(schema, err));
    if (!ptn_host_little_endian())
        return pt_error_set(err, PT_EUNSUPPORTED,
                            "%s: the native format needs a little-endian host", path);
    pt_native_writer *w = pt_calloc(1, sizeof *w);
    if (!w) return pt_error_set(err, PT_ENOMEM, "%s: out of memory opening a writer", path);
    w->fd = -1;
    if (opts)
        w->opts = *opts;
    else
        pt_native_write_opts_init(&w->opts);
    if (w->opts.compression_level < 0) w->opts.compression_level = 0;
    pt_status s = PT_OK;
    size_t plen = strlen(path);
    w->path = pt_strdup(path);
    w->tmp_path = pt_malloc(plen + 48);
    if (!w->path || !w->tmp_path) {
        writer_free(w);
        return pt_error_set(err, PT_ENOMEM, "%s: out of memory opening a writer", path);
    }
    /* pid + a process-wide counter: unique across processes and threads. */
    snprintf(w->tmp_path, plen + 48, "%s.tmp-%ld-%u", path, (long)getpid(),
             __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
    s = pt_schema_copy(schema, &w->schema, err);
    if (s == PT_OK) s = pt_mem_reserve(w->opts.mem, WBUF_SIZE, "native write buffer", err);
    if (s == PT_OK) {
        w->wbuf = pt_malloc(WBUF_SIZE);
        if (!w->wbuf) {
            pt_mem_release(w->opts.mem, WBUF_SIZE);
            s = pt_error_set(err, PT_ENOMEM, "%s: out of memory for the write buffer", path);
        }
    }
#if PT_BUILD_HAVE_ZSTD
    if (s == PT_OK && w->opts.compression_level > 0) {
        w->cctx = ZSTD_createCCtx();
        if (!w->cctx) s = pt_error_set(err, PT_ENOMEM, "%s: out of memory for zstd", path);
    }
#endif
    if (s != PT_OK) {
        writer_free(w);
        return s;
    }
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (w->fd < 0) {
        int e = errno;
        s = pt_error_set(err, e == ENOENT ? PT_ENOENT : PT_EIO, "%s: cannot create '%s': %s", path,
                         w->tmp_path, strerror(e));
        writer_free(w);
        return s;
    }
    uint8_t hdr[PTN_HEADER_SIZE];
    memcpy(hdr, PTN_MAGIC, PTN_MAGIC_LEN);
    ptn_put_u16(hdr + 8, PTN_VERSION);
    ptn_put_u16(hdr + 10, 0);
    ptn_put_u32(hdr + 12, pt_crc32c(0, hdr, 12));
    s = wput(w, hdr, sizeof hdr, err);
    if (s != PT_OK) {
        pt_native_abort_write(w);
        return s;
    }
    *out = w;
    return PT_OK;
}

void pt_native_abort_write(pt_native_writer *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    unlink(w->tmp_path);
    writer_free(w);
}

int64_t pt_native_writer_bytes(const pt_native_writer *w) {
    return w ? w->pos : 0;
}

/* ------------------------------------------------------------------------ */
/* Batches                                                                  */
/* ------------------------------------------------------------------------ */

/* One buffer about to be written: where its decoded bytes are, and what is
 * actually stored. */
typedef struct slot_out {
    const uint8_t *raw;
    int64_t raw_len;
    const uint8_t *stored;
    int64_t stored_len;
    int codec;
} slot_out;

/* Copies bits [start, start + n) of src to bit 0 of dst, clearing the bits
 * past n in the last byte so the stored bitmap is deterministic. */
static void realign_bits(uint8_t *dst, const uint8_t *src, int64_t start, int64_t n) {
    int64_t nbytes = (n + 7) / 8;
    if ((start & 7) == 0) {
        memcpy(dst, src + (start >> 3), (size_t)nbytes);
    } else {
        int sh = (int)(start & 7);
        const uint8_t *s = src + (start >> 3);
        /* The last output byte may need one source byte past the range;
         * read it only when the range reaches into it. */
        int64_t last_src = (start + n - 1) >> 3;
        for (int64_t k = 0; k < nbytes; k++) {
            unsigned lo = s[k] >> sh;
            unsigned hi = ((start >> 3) + k + 1 <= last_src) ? (unsigned)s[k + 1] << (8 - sh) : 0;
            dst[k] = (uint8_t)(lo | hi);
        }
    }
    if (n & 7) dst[nbytes - 1] &= (uint8_t)((1u << (n & 7)) - 1);
}

/* Normalised utf8 offsets of rows [off, off + n) of an offsets buffer,
 * rebased to start at 0; *base gets the first offset. */
static pt_status norm_offsets(pt_native_writer *w, scratch *sc, const pt_buffer *values,
                              int64_t off, int64_t n, const uint8_t **out, int64_t *base,
                              pt_error *err) {
    static const int64_t zero = 0;
    if (!values) {
        *out = (const uint8_t *)&zero;
        *base = 0;
        return PT_OK;
    }
    const int64_t *o = (const int64_t *)values->data + off;
    *base = o[0];
    if (o[0] == 0) {
        *out = (const uint8_t *)o;
        return PT_OK;
    }
    PT_RETURN_NOT_OK(scratch_reserve(w, sc, (n + 1) * 8, err));
    int64_t *d = (int64_t *)sc->p;
    for (int64_t i = 0; i <= n; i++)
        d[i] = o[i] - o[0];
    *out = sc->p;
    return PT_OK;
}

/* Decides between raw and zstd for one slot. */
static void compress_slot(pt_native_writer *w, int slot, slot_out *so, pt_error *err) {
    so->stored = so->raw;
    so->stored_len = so->raw_len;
    so->codec = PTN_CODEC_RAW;
#if PT_BUILD_HAVE_ZSTD
    if (w->opts.compression_level <= 0 || so->raw_len < 64 || !w->cctx) return;
    size_t bound = ZSTD_compressBound((size_t)so->raw_len);
    pt_error local;
    /* Compression is an optimisation: when scratch memory is refused, the
     * buffer is simply stored raw. */
    if (scratch_reserve(w, &w->comp[slot], (int64_t)bound, &local) != PT_OK) return;
    size_t r = ZSTD_compressCCtx(w->cctx, w->comp[slot].p, bound, so->raw, (size_t)so->raw_len,
                                 w->opts.compression_level);
    if (ZSTD_isError(r)) {
        pt_log_debug("%s: zstd failed (%s); storing raw", w->path, ZSTD_getErrorName(r));
        return;
    }
    if ((int64_t)r < so->raw_len - so->raw_len / 32) {
        so->stored = w->comp[slot].p;
        so->stored_len = (int64_t)r;
        so->codec = PTN_CODEC_ZSTD;
    }
#else
    (void)w;
    (void)slot;
#endif
    (void)err;
}

/* Writes one column chunk; fills its directory entry. */
static pt_status write_column(pt_native_writer *w, const pt_column *c, const char *name,
                              uint64_t chunk_off, uint8_t *dir, pt_error *err) {
    const int64_t n = c->length, off = c->offset;
    const int nb = ptn_nbufs(c->type);
    slot_out so[PTN_MAX_BUFS];
    memset(so, 0, sizeof so);
    int64_t nulls = 0, dict_len = 0;

    if (n > 0 && c->type != PT_TYPE_NULL && !c->values)
        return pt_error_set(err, PT_EINVAL, "%s: column '%s' has no values buffer", w->path, name);
    if (n > 0 && c->type == PT_TYPE_UTF8 && !c->bytes)
        return pt_error_set(err, PT_EINVAL, "%s: column '%s' has no bytes buffer", w->path, name);
    if (c->type == PT_TYPE_DICT && (!c->dict || c->dict->type != PT_TYPE_UTF8))
        return pt_error_set(err, PT_EINVAL, "%s: dictionary column '%s' has no utf8 dictionary",
                            w->path, name);

    /* Slot 0: validity. The null count is recomputed from the bitmap so the
     * stored count always agrees with the stored bits. */
    if (c->type == PT_TYPE_NULL) {
        nulls = n;
    } else if (c->validity && n > 0) {
        nulls = n - pt__bits_count(c->validity->data, off, n);
        if (nulls > 0) {
            PT_RETURN_NOT_OK(scratch_reserve(w, &w->norm[0], (n + 7) / 8, err));
            realign_bits(w->norm[0].p, c->validity->data, off, n);
            so[0].raw = w->norm[0].p;
            so[0].raw_len = (n + 7) / 8;
        }
    }

    switch (c->type) {
    case PT_TYPE_NULL: break;
    case PT_TYPE_BOOL:
        so[1].raw_len = (n + 7) / 8;
        if (n == 0) break;
        if ((off & 7) == 0 && (n & 7) == 0) {
            so[1].raw = c->values->data + (off >> 3);
        } else {
            PT_RETURN_NOT_OK(scratch_reserve(w, &w->norm[1], so[1].raw_len, err));
            realign_bits(w->norm[1].p, c->values->data, off, n);
            so[1].raw = w->norm[1].p;
        }
        break;
    case PT_TYPE_INT32:
    case PT_TYPE_INT64:
    case PT_TYPE_FLOAT32:
    case PT_TYPE_FLOAT64: {
        int wd = pt_type_width(c->type);
        so[1].raw_len = n * wd;
        if (n > 0) so[1].raw = c->values->data + off * wd;
        break;
    }
    case PT_TYPE_UTF8: {
        int64_t base;
        PT_RETURN_NOT_OK(
            norm_offsets(w, &w->norm[1], n > 0 ? c->values : NULL, off, n, &so[1].raw, &base, err));
        so[1].raw_len = (n + 1) * 8;
        int64_t end = n > 0 ? ((const int64_t *)c->values->data)[off + n] : 0;
        so[2].raw_len = end - base;
        if (so[2].raw_len < 0)
            return pt_error_set(err, PT_EINVAL, "%s: column '%s' has decreasing offsets", w->path,
                                name);
        if (so[2].raw_len > 0) so[2].raw = c->bytes->data + base;
        break;
    }
    case PT_TYPE_DICT: {
        const pt_column *d = c->dict;
        dict_len = d->length;
        so[1].raw_len = n * 4;
        if (n > 0) {
            const int32_t *idx = (const int32_t *)c->values->data + off;
            if (nulls > 0) {
                /* Null rows store index 0 so the reader can require every
                 * valid index to be in range without special cases. */
                PT_RETURN_NOT_OK(scratch_reserve(w, &w->norm[1], n * 4, err));
                int32_t *o = (int32_t *)w->norm[1].p;
                for (int64_t i = 0; i < n; i++)
                    o[i] = pt_bit_get(so[0].raw, i) ? idx[i] : 0;
                so[1].raw = w->norm[1].p;
            } else {
                so[1].raw = (const uint8_t *)idx;
            }
        }
        int64_t base;
        PT_RETURN_NOT_OK(norm_offsets(w, &w->norm[2], dict_len > 0 ? d->values : NULL, d->offset,
                                      dict_len, &so[2].raw, &base, err));
        so[2].raw_len = (dict_len + 1) * 8;
        int64_t end = dict_len > 0 ? ((const int64_t *)d->values->data)[d->offset + dict_len] : 0;
        so[3].raw_len = end - base;
        if (so[3].raw_len < 0)
            return pt_error_set(err, PT_EINVAL,
                                "%s: dictionary of column '%s' has decreasing offsets", w->path,
                                name);
        if (so[3].raw_len > 0) so[3].raw = d->bytes->data + base;
        break;
    }
    default:
        return pt_error_set(err, PT_EINVAL, "%s: column '%s' has invalid type %d", w->path, name,
                            (int)c->type);
    }

    for (int k = 0; k < nb; k++)
        compress_slot(w, k, &so[k], err);

    uint8_t hdr[PTN_CHUNK_FIXED + PTN_MAX_BUFS * PTN_BUF_DESC];
    memset(hdr, 0, sizeof hdr);
    hdr[0] = (uint8_t)c->type;
    hdr[1] = (uint8_t)nb;
    ptn_put_u64(hdr + 8, (uint64_t)n);
    ptn_put_u64(hdr + 16, (uint64_t)nulls);
    ptn_put_u64(hdr + 24, (uint64_t)dict_len);
    int64_t total = PTN_CHUNK_FIXED + nb * PTN_BUF_DESC;
    for (int k = 0; k < nb; k++) {
        uint8_t *d = hdr + PTN_CHUNK_FIXED + k * PTN_BUF_DESC;
        d[0] = (uint8_t)so[k].codec;
        d[1] = (uint8_t)k;
        ptn_put_u64(d + 8, (uint64_t)so[k].raw_len);
        ptn_put_u64(d + 16, (uint64_t)so[k].stored_len);
        total += so[k].stored_len;
    }
    int64_t hlen = PTN_CHUNK_FIXED + nb * PTN_BUF_DESC;
    uint32_t crc = pt_crc32c(0, hdr, (size_t)hlen);
    for (int k = 0; k < nb; k++)
        crc = pt_crc32c(crc, so[k].stored, (size_t)so[k].stored_len);
    PT_RETURN_NOT_OK(wput(w, hdr, hlen, err));
    for (int k = 0; k < nb; k++)
        PT_RETURN_NOT_OK(wput(w, so[k].stored, so[k].stored_len, err));

    ptn_put_u64(dir, chunk_off);
    ptn_put_u64(dir + 8, (uint64_t)total);
    ptn_put_u32(dir + 16, crc);
    ptn_put_u32(dir + 20, 0);
    return PT_OK;
}

static pt_status check_table(const pt_native_writer *w, const pt_table *t, pt_error *err) {
    if (!t || !t->schema)
        return pt_error_set(err, PT_EINVAL, "pt_native_write_batch: table is NULL");
    const pt_schema *a = w->schema, *b = t->schema;
    if (a->nfields != b->nfields)
        return pt_error_set(err, PT_EINVAL, "%s: batch has %d columns but the file's schema has %d",
                            w->path, b->nfields, a->nfields);
    for (int i = 0; i < a->nfields; i++) {
        if (strcmp(a->fields[i].name, b->fields[i].name) != 0 ||
            a->fields[i].type != b->fields[i].type)
            return pt_error_set(
                err, PT_EINVAL,
                "%s: batch column %d is '%s' (%s) but the file's schema has '%s' (%s)", w->path, i,
                b->fields[i].name, pt_type_name(b->fields[i].type), a->fields[i].name,
                pt_type_name(a->fields[i].type));
        const pt_column *c = t->cols[i];
        if (!c || c->type != a->fields[i].type || c->length != t->nrows)
            return pt_error_set(err, PT_EINVAL,
                                "%s: batch column '%s' is missing, mistyped or has a row count "
                                "other than the table's %lld",
                                w->path, a->fields[i].name, (long long)t->nrows);
    }
    return PT_OK;
}

/* Cuts the file back to `start` bytes (dropping a partial batch). */
static pt_status rollback(pt_native_writer *w, int64_t start) {
    pt_error local;
    if (wflush(w, &local) != PT_OK) return PT_EIO;
    if (ftruncate(w->fd, (off_t)start) != 0) return PT_EIO;
    if (lseek(w->fd, (off_t)start, SEEK_SET) != (off_t)start) return PT_EIO;
    w->pos = start;
    return PT_OK;
}

pt_status pt_native_write_batch(pt_native_writer *w, const pt_table *t, pt_error *err) {
    if (!w) return pt_error_set(err, PT_EINVAL, "pt_native_write_batch: writer is NULL");
    if (w->failed) {
        if (err) *err = w->fail_err;
        return w->failed;
    }
    PT_RETURN_NOT_OK(check_table(w, t, err));
    const int nc = w->schema->nfields;
    const int64_t hsize = PTN_BATCH_FIXED + (int64_t)nc * PTN_DIR_ENTRY + PTN_BATCH_TRAILER;
    if (w->nbatches == w->batch_cap) {
        int64_t cap = w->batch_cap ? w->batch_cap * 2 : 16;
        uint64_t *o = pt_realloc(w->b_off, (size_t)cap * sizeof *o);
        if (o) w->b_off = o;
        uint64_t *l = o ? pt_realloc(w->b_len, (size_t)cap * sizeof *l) : NULL;
        if (l) w->b_len = l;
        int64_t *r = l ? pt_realloc(w->b_rows, (size_t)cap * sizeof *r) : NULL;
        if (r) w->b_rows = r;
        if (!r)
            return pt_error_set(err, PT_ENOMEM, "%s: out of memory for the batch index", w->path);
        w->batch_cap = cap;
    }
    uint8_t *bh = pt_calloc(1, (size_t)hsize);
    if (!bh) return pt_error_set(err, PT_ENOMEM, "%s: out of memory for a batch header", w->path);
    const int64_t start = w->pos;
    pt_status s = PT_OK;
    /* Placeholder for the batch header; the real one is written in place
     * once the chunk sizes and checksums are known. */
    s = wput(w, bh, hsize, err);
    for (int j = 0; j < nc && s == PT_OK; j++) {
        uint64_t coff = (uint64_t)(w->pos - start);
        s = write_column(w, t->cols[j], w->schema->fields[j].name, coff,
                         bh + PTN_BATCH_FIXED + (int64_t)j * PTN_DIR_ENTRY, err);
    }
    if (s == PT_OK) {
        ptn_put_u32(bh, PTN_BATCH_MAGIC);
        ptn_put_u32(bh + 4, (uint32_t)nc);
        ptn_put_u64(bh + 8, (uint64_t)t->nrows);
        ptn_put_u32(bh + hsize - 8, 0);
        ptn_put_u32(bh + hsize - 4, pt_crc32c(0, bh, (size_t)(hsize - 4)));
        s = wflush(w, err);
        if (s == PT_OK) s = pwrite_all(w, bh, hsize, start, err);
    }
    pt_free(bh);
    if (s != PT_OK) {
        /* A failure other than I/O (a bad column, no memory) leaves the
         * writer as it was: the partial batch is cut off the file. */
        if (s == PT_EIO || rollback(w, start) != PT_OK) writer_fail(w, s, err);
        return s;
    }
    w->b_off[w->nbatches] = (uint64_t)start;
    w->b_len[w->nbatches] = (uint64_t)(w->pos - start);
    w->b_rows[w->nbatches] = t->nrows;
    w->nbatches++;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Close                                                                    */
/* ------------------------------------------------------------------------ */

void pt__fsync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some filesystems refuse it */
        close(fd);
    }
}

pt_status pt_native_close_write(pt_native_writer *w, pt_error *err) {
    if (!w) return PT_OK;
    if (w->failed) {
        pt_status s = w->failed;
        if (err) *err = w->fail_err;
        pt_native_abort_write(w);
        return s;
    }
    const pt_schema *sc = w->schema;
    int64_t flen = 4 + 8 + w->nbatches * 24;
    for (int i = 0; i < sc->nfields; i++)
        flen += 8 + (int64_t)strlen(sc->fields[i].name);
    uint8_t *f = pt_malloc((size_t)(flen + PTN_TAIL_SIZE));
    if (!f) {
        pt_status s = pt_error_set(err, PT_ENOMEM, "%s: out of memory for the footer", w->path);
        pt_native_abort_write(w);
        return s;
    }
    uint8_t *p = f;
    ptn_put_u32(p, (uint32_t)sc->nfields);
    p += 4;
    for (int i = 0; i < sc->nfields; i++) {
        size_t len = strlen(sc->fields[i].name);
        p[0] = (uint8_t)sc->fields[i].type;
        p[1] = 0;
        ptn_put_u16(p + 2, 0);
        ptn_put_u32(p + 4, (uint32_t)len);
        memcpy(p + 8, sc->fields[i].name, len);
        p += 8 + len;
    }
    ptn_put_u64(p, (uint64_t)w->nbatches);
    p += 8;
    for (int64_t b = 0; b < w->nbatches; b++) {
        ptn_put_u64(p, w->b_off[b]);
        ptn_put_u64(p + 8, w->b_len[b]);
        ptn_put_u64(p + 16, (uint64_t)w->b_rows[b]);
        p += 24;
    }
    ptn_put_u64(p, (uint64_t)flen);
    ptn_put_u32(p + 8, pt_crc32c(0, f, (size_t)flen));
    ptn_put_u32(p + 12, PTN_VERSION);
    memcpy(p + 16, PTN_MAGIC, PTN_MAGIC_LEN);
    pt_status s = wput(w, f, flen + PTN_TAIL_SIZE, err);
    pt_free(f);
    if (s == PT_OK) s = wflush(w, err);
    if (s == PT_OK && w->opts.durable && fsync(w->fd) != 0)
        s = pt_error_set(err, PT_EIO, "%s: fsync of '%s' failed: %s", w->path, w->tmp_path,
                         strerror(errno));
    if (s == PT_OK) {
        int fd = w->fd;
        w->fd = -1;
        if (close(fd) != 0)
            s = pt_error_set(err, PT_EIO, "%s: close of '%s' failed: %s", w->path, w->tmp_path,
                             strerror(errno));
    }
    if (s == PT_OK && rename(w->tmp_path, w->path) != 0)
        s = pt_error_set(err, PT_EIO, "%s: rename from '%s' failed: %s", w->path, w->tmp_path,
                         strerror(errno));
    if (s != PT_OK) {
        pt_native_abort_write(w);
        return s;
    }
    if (w->opts.durable) pt__fsync_parent_dir(w->path);
    writer_free(w);
    return PT_OK;
}

pt_status pt_native_write_table(const char *path, const pt_table *table,
                                const pt_native_write_opts *opts, pt_error *err) {
    if (!table || !table->schema)
        return pt_error_set(err, PT_EINVAL, "pt_native_write_table: table is NULL");
    pt_native_writer *w;
    PT_RETURN_NOT_OK(pt_native_open_write(path, table->schema, opts, &w, err));
    int64_t step = opts && opts->batch_rows > 0 ? opts->batch_rows : table->nrows;
    pt_status s = PT_OK;
    if (table->nrows == 0 || step >= table->nrows) {
        s = pt_native_write_batch(w, table, err);
    } else {
        for (int64_t r = 0; r < table->nrows && s == PT_OK; r += step) {
            int64_t len = table->nrows - r < step ? table->nrows - r : step;
            pt_table *slice;
            s = pt_table_slice(table, r, len, &slice, err);
            if (s == PT_OK) {
                s = pt_native_write_batch(w, slice, err);
                pt_table_free(slice);
            }
        }
    }
    if (s != PT_OK) {
        pt_native_abort_write(w);
        return s;
    }
    return pt_native_close_write(w, err);
}
