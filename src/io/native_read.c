/*
 * native_read.c - reader of Partita's native columnar files (layout in
 * native_write.c), from a file or from bytes in memory.
 *
 * The reader trusts nothing it reads: every length, offset and count is
 * checked against the file size, the footer and the schema before it is
 * used, checksums are verified before any buffer is decoded, and decoded
 * buffers are checked again (offsets monotonic and within the bytes,
 * dictionary indices within the dictionary, null counts equal to the
 * bitmap). A corrupt file gives PT_ECORRUPT naming the file, the batch, the
 * column and the problem; it never crashes. Allocations are checked against
 * the budget before they are made, and a zstd buffer may not claim more
 * decoded bytes than zstd can produce from its stored size, so a small
 * corrupt file cannot ask for a huge allocation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "col/col_internal.h"
#include "io/native_format.h"
#include "pt_build_info.h"

#if PT_BUILD_HAVE_ZSTD
#include <zstd.h>
#endif

/* Rows per batch the reader accepts: keeps every size computation such as
 * (rows + 1) * 8 far from overflow. */
#define PTN_MAX_ROWS ((int64_t)1 << 56)
/* No zstd frame decodes to more than this many bytes per stored byte (an RLE
 * block: 4 bytes for 128 KiB). */
#define PTN_ZSTD_MAX_RATIO 32768

struct pt_native_reader {
    char *name;
    int fd;              /* -1 when reading from memory */
    const uint8_t *data; /* memory source */
    int64_t size;
    pt_mem *mem;
    pt_schema *schema;
    int64_t nbatches;
    uint64_t *b_off, *b_len;
    int64_t *b_rows;
    int64_t total_rows;
    int64_t bytes_read; /* atomic */
};

static const char *type_str(int t) {
    return (t >= 0 && t < PT_TYPE_COUNT) ? pt_type_name((pt_type)t) : "unknown";
}

/* Reads len bytes at off into dst; anything past the end of the source is
 * reported as a truncated file. */
static pt_status src_read(pt_native_reader *r, uint64_t off, uint64_t len, void *dst,
                          const char *what, pt_error *err) {
    if (off > (uint64_t)r->size || len > (uint64_t)r->size - off)
        return pt_error_set(err, PT_ECORRUPT,
                            "%s: truncated: %s at offset %llu (%llu bytes) is past the end of the "
                            "file (%lld bytes)",
                            r->name, what, (unsigned long long)off, (unsigned long long)len,
                            (long long)r->size);
    if (len == 0) return PT_OK;
    if (r->fd < 0) {
        memcpy(dst, r->data + off, (size_t)len);
    } else {
        uint8_t *p = dst;
        uint64_t left = len;
        while (left > 0) {
            size_t want = left > (1u << 30) ? (size_t)1 << 30 : (size_t)left;
            ssize_t k = pread(r->fd, p, want, (off_t)off);
            if (k < 0) {
                if (errno == EINTR) continue;
                return pt_error_set(err, PT_EIO, "%s: read of %s at offset %llu failed: %s",
                                    r->name, what, (unsigned long long)off, strerror(errno));
            }
            if (k == 0)
                return pt_error_set(err, PT_ECORRUPT,
                                    "%s: truncated: the file ended while reading %s at offset %llu",
                                    r->name, what, (unsigned long long)off);
            p += k;
            off += (uint64_t)k;
            left -= (uint64_t)k;
        }
    }
    __atomic_fetch_add(&r->bytes_read, (int64_t)len, __ATOMIC_RELAXED);
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Open: header, tail, footer                                               */
/* ------------------------------------------------------------------------ */

/* Bounds-checked cursor over the footer. */
typedef struct cursor {
    const uint8_t *p;
    uint64_t left;
} cursor;

static int cur_take(cursor *c, uint64_t n, const uint8_t **out) {
    if (n > c->left) return 0;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return 1;
}

static pt_status parse_footer(pt_native_reader *r, const uint8_t *f, uint64_t flen,
                              uint64_t footer_start, pt_error *err) {
    cursor c = {f, flen};
    const uint8_t *p;
    if (!cur_take(&c, 4, &p))
        return pt_error_set(err, PT_ECORRUPT, "%s: footer too short for the field count", r->name);
    uint32_t nf = ptn_get_u32(p);
    if ((uint64_t)nf > c.left / 8 || nf > (1u << 24))
        return pt_error_set(err, PT_ECORRUPT, "%s: footer claims %u fields, more than it can hold",
                            r->name, nf);
    char **names = pt_calloc(nf ? nf : 1, sizeof *names);
    pt_type *types = pt_calloc(nf ? nf : 1, sizeof *types);
    pt_status s = PT_OK;
    if (!names || !types)
        s = pt_error_set(err, PT_ENOMEM, "%s: out of memory reading the schema", r->name);
    for (uint32_t i = 0; i < nf && s == PT_OK; i++) {
        if (!cur_take(&c, 8, &p)) {
            s = pt_error_set(err, PT_ECORRUPT, "%s: footer ends inside field %u", r->name, i);
            break;
        }
        int t = p[0];
        uint32_t nlen = ptn_get_u32(p + 4);
        if (t >= PT_TYPE_COUNT) {
            s = pt_error_set(err, PT_ECORRUPT, "%s: field %u has unknown type code %d", r->name, i,
                             t);
        } else if (p[1] != 0 || ptn_get_u16(p + 2) != 0) {
            s = pt_error_set(err, PT_ECORRUPT, "%s: field %u has nonzero reserved bytes", r->name,
                             i);
        } else if (!cur_take(&c, nlen, &p)) {
            s = pt_error_set(err, PT_ECORRUPT,
                             "%s: name of field %u (%u bytes) runs past the footer", r->name, i,
                             nlen);
        } else if (memchr(p, 0, nlen)) {
            s = pt_error_set(err, PT_ECORRUPT, "%s: name of field %u contains a NUL byte", r->name,
                             i);
        } else {
            types[i] = (pt_type)t;
            names[i] = pt_strndup((const char *)p, nlen);
            if (!names[i])
                s = pt_error_set(err, PT_ENOMEM, "%s: out of memory reading the schema", r->name);
        }
    }
    if (s == PT_OK) s = pt_schema_new((int)nf, (const char *const *)names, types, &r->schema, err);
    if (names)
        for (uint32_t i = 0; i < nf; i++)
            pt_free(names[i]);
    pt_free(names);
    pt_free(types);
    if (s != PT_OK) return s;

    if (!cur_take(&c, 8, &p))
        return pt_error_set(err, PT_ECORRUPT, "%s: footer ends before the batch count", r->name);
    uint64_t nb = ptn_get_u64(p);
    if (nb > c.left / 24 || c.left != nb * 24)
        return pt_error_set(err, PT_ECORRUPT,
                            "%s: footer claims %llu batches but has room for %llu", r->name,
                            (unsigned long long)nb, (unsigned long long)(c.left / 24));
    r->nbatches = (int64_t)nb;
    r->b_off = pt_malloc((size_t)(nb ? nb : 1) * sizeof *r->b_off);
    r->b_len = pt_malloc((size_t)(nb ? nb : 1) * sizeof *r->b_len);
    r->b_rows = pt_malloc((size_t)(nb ? nb : 1) * sizeof *r->b_rows);
    if (!r->b_off || !r->b_len || !r->b_rows)
        return pt_error_set(err, PT_ENOMEM, "%s: out of memory for the batch index", r->name);
    const uint64_t min_len =
        PTN_BATCH_FIXED + (uint64_t)nf * (PTN_DIR_ENTRY + PTN_CHUNK_FIXED) + PTN_BATCH_TRAILER;
    uint64_t expect = PTN_HEADER_SIZE;
    int64_t total = 0;
    for (uint64_t b = 0; b < nb; b++) {
        cur_take(&c, 24, &p);
        uint64_t off = ptn_get_u64(p), len = ptn_get_u64(p + 8);
        int64_t rows = (int64_t)ptn_get_u64(p + 16);
        /* Batches must tile the space between header and footer, so that
         * every byte of the file belongs to exactly one checked region. */
        if (off != expect)
            return pt_error_set(
                err, PT_ECORRUPT, "%s: batch %llu starts at offset %llu, expected %llu", r->name,
                (unsigned long long)b, (unsigned long long)off, (unsigned long long)expect);
        if (len < min_len || len > footer_start - off)
            return pt_error_set(
                err, PT_ECORRUPT, "%s: batch %llu has length %llu, outside [%llu, %llu]", r->name,
                (unsigned long long)b, (unsigned long long)len, (unsigned long long)min_len,
                (unsigned long long)(footer_start - off));
        if (rows < 0 || rows > PTN_MAX_ROWS || total > INT64_MAX - rows)
            return pt_error_set(err, PT_ECORRUPT, "%s: batch %llu has an invalid row count %lld",
                                r->name, (unsigned long long)b, (long long)rows);
        r->b_off[b] = off;
        r->b_len[b] = len;
        r->b_rows[b] = rows;
        total += rows;
        expect = off + len;
    }
    if (expect != footer_start)
        return pt_error_set(err, PT_ECORRUPT,
                            "%s: batches end at offset %llu but the footer starts at %llu", r->name,
                            (unsigned long long)expect, (unsigned long long)footer_start);
    r->total_rows = total;
    return PT_OK;
}

static pt_status open_common(pt_native_reader *r, pt_error *err) {
    uint8_t hdr[PTN_HEADER_SIZE], tail[PTN_TAIL_SIZE];
    const int64_t min_size = PTN_HEADER_SIZE + PTN_TAIL_SIZE;
    if (r->size >= PTN_MAGIC_LEN) {
        PT_RETURN_NOT_OK(src_read(r, 0, PTN_MAGIC_LEN, hdr, "the header", err));
        if (memcmp(hdr, PTN_MAGIC, PTN_MAGIC_LEN) != 0)
            return pt_error_set(err, PT_ECORRUPT,
                                "%s: not a Partita native file (bad magic at offset 0)", r->name);
    }
    if (r->size < min_size)
        return pt_error_set(err, PT_ECORRUPT,
                            "%s: truncated: %lld bytes, a native file has at least %lld", r->name,
                            (long long)r->size, (long long)min_size);
    PT_RETURN_NOT_OK(src_read(r, 0, PTN_HEADER_SIZE, hdr, "the header", err));
    uint32_t stored = ptn_get_u32(hdr + 12), computed = pt_crc32c(0, hdr, 12);
    if (stored != computed)
        return pt_error_set(err, PT_ECORRUPT,
                            "%s: header checksum mismatch (stored 0x%08x, computed 0x%08x)",
                            r->name, stored, computed);
    unsigned version = ptn_get_u16(hdr + 8);
    if (version == 0)
        return pt_error_set(err, PT_ECORRUPT, "%s: invalid format version 0", r->name);
    if (version > PTN_VERSION)
        return pt_error_set(err, PT_EUNSUPPORTED,
                            "%s: format version %u is newer than this library supports (%u)",
                            r->name, version, PTN_VERSION);
    if (ptn_get_u16(hdr + 10) != 0)
        return pt_error_set(err, PT_EUNSUPPORTED, "%s: unsupported header flags 0x%04x", r->name,
                            ptn_get_u16(hdr + 10));

    PT_RETURN_NOT_OK(
        src_read(r, (uint64_t)(r->size - PTN_TAIL_SIZE), PTN_TAIL_SIZE, tail, "the tail", err));
    if (memcmp(tail + 16, PTN_MAGIC, PTN_MAGIC_LEN) != 0)
        return pt_error_set(err, PT_ECORRUPT,
                            "%s: truncated or incomplete: no trailing magic at the end of the file "
                            "(%lld bytes)",
                            r->name, (long long)r->size);
    if (ptn_get_u32(tail + 12) != version)
        return pt_error_set(err, PT_ECORRUPT, "%s: tail says format version %u, header says %u",
                            r->name, ptn_get_u32(tail + 12), version);
    uint64_t flen = ptn_get_u64(tail);
    uint64_t room = (uint64_t)(r->size - min_size);
    if (flen < 12 || flen > room)
        return pt_error_set(err, PT_ECORRUPT,
                            "%s: footer length %llu is impossible for a file of %lld bytes",
                            r->name, (unsigned long long)flen, (long long)r->size);
    uint64_t fstart = (uint64_t)r->size - PTN_TAIL_SIZE - flen;
    PT_RETURN_NOT_OK(pt_mem_reserve(r->mem, (int64_t)flen, "native file footer", err));
    uint8_t *f = pt_malloc((size_t)flen);
    pt_status s = PT_OK;
    if (!f)
        s = pt_error_set(err, PT_ENOMEM, "%s: out of memory for a %llu-byte footer", r->name,
                         (unsigned long long)flen);
    if (s == PT_OK) s = src_read(r, fstart, flen, f, "the footer", err);
    if (s == PT_OK) {
        uint32_t fs = ptn_get_u32(tail + 8), fc = pt_crc32c(0, f, (size_t)flen);
        if (fs != fc)
            s = pt_error_set(err, PT_ECORRUPT,
                             "%s: footer checksum mismatch (stored 0x%08x, computed 0x%08x)",
                             r->name, fs, fc);
    }
    if (s == PT_OK) s = parse_footer(r, f, flen, fstart, err);
    pt_free(f);
    pt_mem_release(r->mem, (int64_t)flen);
    return s;
}

static pt_status reader_alloc(pt_mem *mem, const char *name, pt_native_reader **out,
                              pt_error *err) {
    pt_native_reader *r = pt_calloc(1, sizeof *r);
    if (r) r->name = pt_strdup(name);
    if (!r || !r->name) {
        pt_free(r);
        return pt_error_set(err, PT_ENOMEM, "%s: out of memory opening a reader", name);
    }
    r->fd = -1;
    r->mem = mem;
    *out = r;
    return PT_OK;
}

void pt_native_close_read(pt_native_reader *r) {
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    pt_schema_free(r->schema);
    pt_free(r->b_off);
    pt_free(r->b_len);
    pt_free(r->b_rows);
    pt_free(r->name);
    pt_free(r);
}

pt_status pt_native_open_read(pt_mem *mem, const char *path, pt_native_reader **out,
                              pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_native_open_read: out is NULL");
    *out = NULL;
    if (!path || !*path) return pt_error_set(err, PT_EINVAL, "pt_native_open_read: path is empty");
    if (!ptn_host_little_endian())
        return pt_error_set(err, PT_EUNSUPPORTED,
                            "%s: the native format needs a little-endian host", path);
    pt_native_reader *r = NULL;
    PT_RETURN_NOT_OK(reader_alloc(mem, path, &r, err));
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        int e = errno;
        pt_native_close_read(r);
        return pt_error_set(err, e == ENOENT ? PT_ENOENT : PT_EIO, "%s: cannot open: %s", path,
                            strerror(e));
    }
    struct stat st;
    const char *why = NULL;
    if (fstat(r->fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    if (why) {
        pt_status s = pt_error_set(err, PT_EIO, "%s: %s", path, why);
        pt_native_close_read(r);
        return s;
    }
    r->size = (int64_t)st.st_size;
    pt_status s = open_common(r, err);
    if (s != PT_OK) {
        pt_native_close_read(r);
        return s;
    }
    *out = r;
    return PT_OK;
}

pt_status pt_native_open_buffer(pt_mem *mem, const void *data, int64_t len, const char *name,
                                pt_native_reader **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_native_open_buffer: out is NULL");
    *out = NULL;
    if (!name) name = "<memory>";
    if (len < 0 || (!data && len > 0))
        return pt_error_set(err, PT_EINVAL, "pt_native_open_buffer: bad buffer (len %lld)",
                            (long long)len);
    if (!ptn_host_little_endian())
        return pt_error_set(err, PT_EUNSUPPORTED,
                            "%s: the native format needs a little-endian host", name);
    pt_native_reader *r = NULL;
    PT_RETURN_NOT_OK(reader_alloc(mem, name, &r, err));
    r->data = data;
    r->size = len;
    pt_status s = open_common(r, err);
    if (s != PT_OK) {
        pt_native_close_read(r);
        return s;
    }
    *out = r;
    return PT_OK;
}

const pt_schema *pt_native_schema(const pt_native_reader *r) {
    return r ? r->schema : NULL;
}
int64_t pt_native_num_batches(const pt_native_reader *r) {
    return r ? r->nbatches : 0;
}
int64_t pt_native_batch_rows(const pt_native_reader *r, int64_t i) {
    if (!r || i < 0 || i >= r->nbatches) return -1;
    return r->b_rows[i];
}
int64_t pt_native_num_rows(const pt_native_reader *r) {
    return r ? r->total_rows : 0;
}
int64_t pt_native_reader_bytes(const pt_native_reader *r) {
    return r ? __atomic_load_n(&r->bytes_read, __ATOMIC_RELAXED) : 0;
}

/* ------------------------------------------------------------------------ */
/* Batches                                                                  */
/* ------------------------------------------------------------------------ */

/* State of one pt_native_read_batch call (calls do not share state, so
 * several threads may read from one reader). */
typedef struct batch_ctx {
    pt_native_reader *r;
    int64_t batch;
    int64_t nrows;
#if PT_BUILD_HAVE_ZSTD
    ZSTD_DCtx *dctx;
#endif
} batch_ctx;

#define COLERR(bc, name, err, code, ...) col_error(bc, name, err, code, __VA_ARGS__)

static pt_status col_error(const batch_ctx *bc, const char *col, pt_error *err, pt_status code,
                           const char *fmt, ...) PT_PRINTF(5, 6);
static pt_status col_error(const batch_ctx *bc, const char *col, pt_error *err, pt_status code,
                           const char *fmt, ...) {
    char msg[PT_ERROR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pt_error_set(err, code, "%s: batch %lld, column '%s': %s", bc->r->name,
                        (long long)bc->batch, col, msg);
}

static void mask_tail(uint8_t *bits, int64_t n) {
    if (n & 7) bits[n >> 3] &= (uint8_t)((1u << (n & 7)) - 1);
}

static const char *const slot_names[PTN_MAX_BUFS] = {"validity", "values", "data",
                                                     "dictionary bytes"};

/* Checks int64 offsets: start at 0, never decrease, end at nbytes. */
static pt_status check_offsets(const batch_ctx *bc, const char *col, const char *what,
                               const int64_t *o, int64_t n, int64_t nbytes, pt_error *err) {
    if (o[0] != 0)
        return COLERR(bc, col, err, PT_ECORRUPT, "%s offsets start at %lld, not 0", what,
                      (long long)o[0]);
    for (int64_t i = 0; i < n; i++) {
        if (o[i + 1] < o[i])
            return COLERR(bc, col, err, PT_ECORRUPT,
                          "%s offsets decrease at row %lld (%lld -> %lld)", what, (long long)i,
                          (long long)o[i], (long long)o[i + 1]);
    }
    if (o[n] != nbytes)
        return COLERR(bc, col, err, PT_ECORRUPT, "%s offsets end at %lld but there are %lld bytes",
                      what, (long long)o[n], (long long)nbytes);
    return PT_OK;
}

/* A chunk whose header makes no sense: when its checksum does not match
 * either, a damaged file is the better diagnosis, so that is what is
 * reported; otherwise the specific problem. Only runs on error paths. */
static pt_status chunk_error(const batch_ctx *bc, const char *col, uint64_t coff, uint64_t clen,
                             uint32_t want, pt_error *err, pt_status code, const char *fmt, ...)
    PT_PRINTF(8, 9);
static pt_status chunk_error(const batch_ctx *bc, const char *col, uint64_t coff, uint64_t clen,
                             uint32_t want, pt_error *err, pt_status code, const char *fmt, ...) {
    uint8_t tmp[16384];
    uint32_t crc = 0;
    for (uint64_t done = 0; done < clen;) {
        uint64_t k = clen - done < sizeof tmp ? clen - done : sizeof tmp;
        PT_RETURN_NOT_OK(src_read(bc->r, coff + done, k, tmp, "a column chunk", err));
        crc = pt_crc32c(crc, tmp, (size_t)k);
        done += k;
    }
    if (crc != want)
        return COLERR(bc, col, err, PT_ECORRUPT,
                      "checksum mismatch (stored 0x%08x, computed 0x%08x)", want, crc);
    char msg[PT_ERROR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return COLERR(bc, col, err, code, "%s", msg);
}

#define HDRERR(...) chunk_error(bc, col, coff, clen, crc_want, err, PT_ECORRUPT, __VA_ARGS__)

/* Reads and validates one column chunk into a new column. */
static pt_status read_column(batch_ctx *bc, int j, uint64_t coff, uint64_t clen, uint32_t crc_want,
                             pt_column **out, pt_error *err) {
    pt_native_reader *r = bc->r;
    const char *col = r->schema->fields[j].name;
    const pt_type want = r->schema->fields[j].type;
    const int64_t n = bc->nrows;
    uint8_t hdr[PTN_CHUNK_FIXED + PTN_MAX_BUFS * PTN_BUF_DESC];
    *out = NULL;

    /* clen >= PTN_CHUNK_FIXED was checked with the directory. */
    PT_RETURN_NOT_OK(src_read(r, coff, PTN_CHUNK_FIXED, hdr, "a column chunk header", err));
    int type = hdr[0], nb = hdr[1];
    if (type != (int)want)
        return HDRERR("stored type %s (%d) but the schema says %s", type_str(type), type,
                      pt_type_name(want));
    if (nb != ptn_nbufs(want))
        return HDRERR("%d buffers, a %s column has %d", nb, pt_type_name(want), ptn_nbufs(want));
    if (ptn_get_u16(hdr + 2) != 0 || ptn_get_u32(hdr + 4) != 0)
        return HDRERR("nonzero reserved bytes in the chunk header");
    int64_t len = (int64_t)ptn_get_u64(hdr + 8), nulls = (int64_t)ptn_get_u64(hdr + 16);
    int64_t dlen = (int64_t)ptn_get_u64(hdr + 24);
    if (len != n)
        return HDRERR("chunk has %lld rows, the batch has %lld", (long long)len, (long long)n);
    if (nulls < 0 || nulls > n)
        return HDRERR("null count %lld outside [0, %lld]", (long long)nulls, (long long)n);
    if (want == PT_TYPE_NULL && nulls != n)
        return HDRERR("null column with %lld nulls in %lld rows", (long long)nulls, (long long)n);
    if (want == PT_TYPE_DICT ? (dlen < 0 || dlen > INT32_MAX) : dlen != 0)
        return HDRERR("invalid dictionary length %lld", (long long)dlen);
    const int64_t hlen = PTN_CHUNK_FIXED + (int64_t)nb * PTN_BUF_DESC;
    if ((uint64_t)hlen > clen)
        return HDRERR("chunk of %llu bytes is shorter than its header", (unsigned long long)clen);
    PT_RETURN_NOT_OK(src_read(r, coff + PTN_CHUNK_FIXED, (uint64_t)(hlen - PTN_CHUNK_FIXED),
                              hdr + PTN_CHUNK_FIXED, "buffer descriptors", err));

    /* Expected decoded sizes; -1 = any (checked against offsets later). */
    int64_t expect[PTN_MAX_BUFS] = {(n + 7) / 8, 0, -1, -1};
    switch (want) {
    case PT_TYPE_NULL: expect[0] = 0; break;
    case PT_TYPE_BOOL: expect[1] = (n + 7) / 8; break;
    case PT_TYPE_UTF8: expect[1] = (n + 1) * 8; break;
    case PT_TYPE_DICT:
        expect[1] = n * 4;
        expect[2] = (dlen + 1) * 8;
        break;
    default: expect[1] = n * pt_type_width(want); break;
    }
    int codec[PTN_MAX_BUFS];
    int64_t raw[PTN_MAX_BUFS], stored[PTN_MAX_BUFS];
    uint64_t left = clen - (uint64_t)hlen;
    for (int k = 0; k < nb; k++) {
        const uint8_t *d = hdr + PTN_CHUNK_FIXED + k * PTN_BUF_DESC;
        uint64_t rl = ptn_get_u64(d + 8), sl = ptn_get_u64(d + 16);
        codec[k] = d[0];
        if (d[1] != k || ptn_get_u16(d + 2) != 0 || ptn_get_u32(d + 4) != 0)
            return HDRERR("bad descriptor for the %s buffer", slot_names[k]);
        if (codec[k] != PTN_CODEC_RAW && codec[k] != PTN_CODEC_ZSTD)
            return HDRERR("unknown codec %d for the %s buffer", codec[k], slot_names[k]);
#if !PT_BUILD_HAVE_ZSTD
        if (codec[k] == PTN_CODEC_ZSTD)
            return chunk_error(bc, col, coff, clen, crc_want, err, PT_EUNSUPPORTED,
                               "the %s buffer is zstd-compressed but this build has no zstd",
                               slot_names[k]);
#endif
        if (sl > left)
            return HDRERR("the %s buffer (%llu bytes) runs past the end of the chunk",
                          slot_names[k], (unsigned long long)sl);
        left -= sl;
        if (codec[k] == PTN_CODEC_RAW
                ? rl != sl
                : (rl / PTN_ZSTD_MAX_RATIO > sl || rl > (uint64_t)INT64_MAX / 2))
            return HDRERR("the %s buffer claims %llu decoded bytes from %llu stored", slot_names[k],
                          (unsigned long long)rl, (unsigned long long)sl);
        bool ok = k == 0 ? (rl == 0 || (int64_t)rl == expect[0])
                         : (expect[k] < 0 || (int64_t)rl == expect[k]);
        if (!ok)
            return HDRERR("the %s buffer has %llu bytes, expected %lld for %lld rows",
                          slot_names[k], (unsigned long long)rl, (long long)expect[k],
                          (long long)(k >= 2 && want == PT_TYPE_DICT ? dlen : n));
        raw[k] = (int64_t)rl;
        stored[k] = (int64_t)sl;
    }
    if (left != 0)
        return HDRERR("%llu bytes left over after the buffers", (unsigned long long)left);
    if (raw[0] == 0 && want != PT_TYPE_NULL && nulls != 0)
        return HDRERR("null count %lld but no validity bitmap", (long long)nulls);

    /* Read every stored buffer: raw ones straight into their column
     * buffers, compressed ones into scratch to be decoded once the checksum
     * has been verified. */
    pt_buffer *buf[PTN_MAX_BUFS] = {0}, *zbuf[PTN_MAX_BUFS] = {0};
    pt_status s = PT_OK;
    uint32_t crc = pt_crc32c(0, hdr, (size_t)hlen);
    uint64_t pos = coff + (uint64_t)hlen;
    for (int k = 0; k < nb && s == PT_OK; k++) {
        if (k == 0 && raw[0] == 0 && stored[0] == 0) continue; /* no bitmap */
        s = pt_buffer_new(r->mem, raw[k], &buf[k], err);
        if (s != PT_OK) break;
        buf[k]->size = raw[k];
        uint8_t *dst = buf[k]->data;
        if (codec[k] == PTN_CODEC_ZSTD) {
            s = pt_buffer_new(r->mem, stored[k], &zbuf[k], err);
            if (s != PT_OK) break;
            dst = zbuf[k]->data;
        }
        s = src_read(r, pos, (uint64_t)stored[k], dst, slot_names[k], err);
        if (s != PT_OK) break;
        crc = pt_crc32c(crc, dst, (size_t)stored[k]);
        pos += (uint64_t)stored[k];
    }
    if (s == PT_OK && crc != crc_want)
        s = COLERR(bc, col, err, PT_ECORRUPT, "checksum mismatch (stored 0x%08x, computed 0x%08x)",
                   crc_want, crc);
#if PT_BUILD_HAVE_ZSTD
    for (int k = 0; k < nb && s == PT_OK; k++) {
        if (!zbuf[k]) continue;
        if (!bc->dctx && !(bc->dctx = ZSTD_createDCtx())) {
            s = pt_error_set(err, PT_ENOMEM, "%s: out of memory for zstd", r->name);
            break;
        }
        size_t got = ZSTD_decompressDCtx(bc->dctx, buf[k]->data, (size_t)raw[k], zbuf[k]->data,
                                         (size_t)stored[k]);
        if (ZSTD_isError(got))
            s = COLERR(bc, col, err, PT_ECORRUPT, "cannot decompress the %s buffer: %s",
                       slot_names[k], ZSTD_getErrorName(got));
        else if ((int64_t)got != raw[k])
            s = COLERR(bc, col, err, PT_ECORRUPT,
                       "the %s buffer decompressed to %lld bytes, expected %lld", slot_names[k],
                       (long long)got, (long long)raw[k]);
    }
#endif
    for (int k = 0; k < nb; k++)
        pt_buffer_release(zbuf[k]);

    /* Content checks on the decoded buffers. */
    if (s == PT_OK && raw[0] > 0) {
        mask_tail(buf[0]->data, n);
        int64_t z = n - pt__bits_count(buf[0]->data, 0, n);
        if (z != nulls)
            s = COLERR(bc, col, err, PT_ECORRUPT,
                       "null count %lld does not match the validity bitmap (%lld nulls)",
                       (long long)nulls, (long long)z);
    }
    if (s == PT_OK && want == PT_TYPE_BOOL && n > 0) mask_tail(buf[1]->data, n);
    if (s == PT_OK && want == PT_TYPE_UTF8)
        s = check_offsets(bc, col, "utf8", (const int64_t *)buf[1]->data, n, raw[2], err);
    if (s == PT_OK && want == PT_TYPE_DICT) {
        s = check_offsets(bc, col, "dictionary", (const int64_t *)buf[2]->data, dlen, raw[3], err);
        int32_t *idx = (int32_t *)buf[1]->data;
        const uint8_t *valid = raw[0] > 0 ? buf[0]->data : NULL;
        for (int64_t i = 0; i < n && s == PT_OK; i++) {
            if (valid && !pt_bit_get(valid, i)) {
                idx[i] = 0; /* null rows carry no index; keep them harmless */
            } else if (idx[i] < 0 || idx[i] >= dlen) {
                s = COLERR(bc, col, err, PT_ECORRUPT,
                           "dictionary index %d at row %lld is outside the dictionary (%lld "
                           "entries)",
                           (int)idx[i], (long long)i, (long long)dlen);
            }
        }
    }

    /* Assemble. */
    pt_column *c = NULL, *d = NULL;
    if (s == PT_OK) s = pt__column_alloc(want, &c, err);
    if (s == PT_OK && want == PT_TYPE_NULL) {
        s = pt_buffer_new(r->mem, (n + 7) / 8, &c->validity, err);
        if (s == PT_OK) c->validity->size = (n + 7) / 8;
    }
    if (s == PT_OK && want == PT_TYPE_DICT) {
        s = pt__column_alloc(PT_TYPE_UTF8, &d, err);
        if (s == PT_OK) {
            d->length = dlen;
            d->values = buf[2];
            d->bytes = buf[3];
            buf[2] = buf[3] = NULL;
            c->dict = d;
        }
    }
    if (s != PT_OK) {
        for (int k = 0; k < nb; k++)
            pt_buffer_release(buf[k]);
        pt_column_release(c);
        return s;
    }
    c->length = n;
    c->null_count = nulls;
    if (want != PT_TYPE_NULL) {
        if (nulls > 0)
            c->validity = buf[0];
        else
            pt_buffer_release(buf[0]);
        buf[0] = NULL;
        c->values = buf[1];
        buf[1] = NULL;
        if (want == PT_TYPE_UTF8) {
            c->bytes = buf[2];
            buf[2] = NULL;
        }
    }
    for (int k = 0; k < nb; k++)
        pt_buffer_release(buf[k]);
    *out = c;
    return PT_OK;
}

pt_status pt_native_read_batch(pt_native_reader *r, int64_t i, const int *columns, int ncols,
                               pt_table **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_native_read_batch: out is NULL");
    *out = NULL;
    if (!r) return pt_error_set(err, PT_EINVAL, "pt_native_read_batch: reader is NULL");
    if (i < 0 || i >= r->nbatches)
        return pt_error_set(err, PT_EINVAL, "%s: batch %lld out of range (the file has %lld)",
                            r->name, (long long)i, (long long)r->nbatches);
    const int nf = r->schema->nfields;
    if (!columns) ncols = nf;
    if (ncols < 0) return pt_error_set(err, PT_EINVAL, "pt_native_read_batch: ncols is %d", ncols);
    for (int k = 0; columns && k < ncols; k++)
        if (columns[k] < 0 || columns[k] >= nf)
            return pt_error_set(err, PT_EINVAL,
                                "%s: columns[%d] = %d out of range (the file has %d columns)",
                                r->name, k, columns[k], nf);

    batch_ctx bc;
    memset(&bc, 0, sizeof bc);
    bc.r = r;
    bc.batch = i;
    bc.nrows = r->b_rows[i];
    const uint64_t boff = r->b_off[i], blen = r->b_len[i];
    const uint64_t hsize = PTN_BATCH_FIXED + (uint64_t)nf * PTN_DIR_ENTRY + PTN_BATCH_TRAILER;
    /* blen >= hsize + nf * PTN_CHUNK_FIXED was checked when the footer was read. */
    uint8_t *bh = pt_malloc((size_t)hsize);
    pt_column **cols = pt_calloc(ncols > 0 ? (size_t)ncols : 1, sizeof *cols);
    const char **names = pt_calloc(ncols > 0 ? (size_t)ncols : 1, sizeof *names);
    pt_type *types = pt_calloc(ncols > 0 ? (size_t)ncols : 1, sizeof *types);
    pt_status s = PT_OK;
    if (!bh || !cols || !names || !types)
        s = pt_error_set(err, PT_ENOMEM, "%s: out of memory reading batch %lld", r->name,
                         (long long)i);
    if (s == PT_OK) s = src_read(r, boff, hsize, bh, "a batch header", err);
    if (s == PT_OK) {
        uint32_t stored = ptn_get_u32(bh + hsize - 4);
        uint32_t computed = pt_crc32c(0, bh, (size_t)(hsize - 4));
        if (ptn_get_u32(bh) != PTN_BATCH_MAGIC && stored != computed)
            s = pt_error_set(err, PT_ECORRUPT, "%s: batch %lld: bad batch magic at offset %llu",
                             r->name, (long long)i, (unsigned long long)boff);
        else if (stored != computed)
            s = pt_error_set(err, PT_ECORRUPT,
                             "%s: batch %lld: header checksum mismatch (stored 0x%08x, computed "
                             "0x%08x)",
                             r->name, (long long)i, stored, computed);
        else if (ptn_get_u32(bh) != PTN_BATCH_MAGIC)
            s = pt_error_set(err, PT_ECORRUPT, "%s: batch %lld: bad batch magic at offset %llu",
                             r->name, (long long)i, (unsigned long long)boff);
        else if (ptn_get_u32(bh + 4) != (uint32_t)nf)
            s = pt_error_set(err, PT_ECORRUPT, "%s: batch %lld: %u columns, the schema has %d",
                             r->name, (long long)i, ptn_get_u32(bh + 4), nf);
        else if ((int64_t)ptn_get_u64(bh + 8) != bc.nrows)
            s = pt_error_set(err, PT_ECORRUPT, "%s: batch %lld: %lld rows, the footer says %lld",
                             r->name, (long long)i, (long long)ptn_get_u64(bh + 8),
                             (long long)bc.nrows);
        else if (ptn_get_u32(bh + hsize - 8) != 0)
            s = pt_error_set(err, PT_ECORRUPT, "%s: batch %lld: nonzero reserved bytes", r->name,
                             (long long)i);
    }
    /* The chunks must tile the batch after its header. */
    uint64_t expect = hsize;
    for (int j = 0; j < nf && s == PT_OK; j++) {
        const uint8_t *e = bh + PTN_BATCH_FIXED + (size_t)j * PTN_DIR_ENTRY;
        uint64_t co = ptn_get_u64(e), cl = ptn_get_u64(e + 8);
        if (co != expect || cl < PTN_CHUNK_FIXED || cl > blen - co || ptn_get_u32(e + 20) != 0)
            s = pt_error_set(err, PT_ECORRUPT,
                             "%s: batch %lld, column '%s': chunk at %llu (%llu bytes) does not fit "
                             "the batch (%llu bytes, expected at %llu)",
                             r->name, (long long)i, r->schema->fields[j].name,
                             (unsigned long long)co, (unsigned long long)cl,
                             (unsigned long long)blen, (unsigned long long)expect);
        else
            expect = co + cl;
    }
    if (s == PT_OK && expect != blen)
        s = pt_error_set(err, PT_ECORRUPT, "%s: batch %lld: chunks end at %llu, the batch at %llu",
                         r->name, (long long)i, (unsigned long long)expect,
                         (unsigned long long)blen);
    for (int k = 0; k < ncols && s == PT_OK; k++) {
        int j = columns ? columns[k] : k;
        const uint8_t *e = bh + PTN_BATCH_FIXED + (size_t)j * PTN_DIR_ENTRY;
        s = read_column(&bc, j, boff + ptn_get_u64(e), ptn_get_u64(e + 8), ptn_get_u32(e + 16),
                        &cols[k], err);
        names[k] = r->schema->fields[j].name;
        types[k] = r->schema->fields[j].type;
    }
#if PT_BUILD_HAVE_ZSTD
    ZSTD_freeDCtx(bc.dctx);
#endif
    pt_schema *sch = NULL;
    if (s == PT_OK) s = pt_schema_new(ncols, names, types, &sch, err);
    if (s == PT_OK) {
        /* pt_table_new takes the columns and the schema, also on failure. */
        s = pt_table_new(sch, cols, out, err);
        if (s == PT_OK && ncols == 0) (*out)->nrows = bc.nrows;
    } else if (cols) {
        for (int k = 0; k < ncols; k++)
            pt_column_release(cols[k]);
    }
    pt_free(bh);
    pt_free(cols);
    pt_free(names);
    pt_free(types);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Whole files                                                              */
/* ------------------------------------------------------------------------ */

static pt_status empty_table(pt_mem *mem, const pt_schema *schema, pt_table **out, pt_error *err) {
    int nf = schema->nfields;
    pt_column **cols = pt_calloc(nf > 0 ? (size_t)nf : 1, sizeof *cols);
    if (!cols) return pt_error_set(err, PT_ENOMEM, "out of memory for an empty table");
    pt_status s = PT_OK;
    for (int j = 0; j < nf && s == PT_OK; j++) {
        if (schema->fields[j].type == PT_TYPE_DICT) {
            pt_column *d;
            s = pt_column_new(mem, PT_TYPE_UTF8, 0, 0, &d, err);
            if (s == PT_OK) {
                s = pt_column_new_dict(mem, d, 0, &cols[j], err);
                pt_column_release(d);
            }
        } else {
            s = pt_column_new(mem, schema->fields[j].type, 0, 0, &cols[j], err);
        }
    }
    pt_schema *copy = NULL;
    if (s == PT_OK) s = pt_schema_copy(schema, &copy, err);
    if (s == PT_OK) {
        s = pt_table_new(copy, cols, out, err);
    } else {
        for (int j = 0; j < nf; j++)
            pt_column_release(cols[j]);
    }
    pt_free(cols);
    return s;
}

pt_status pt_native_read_all(pt_mem *mem, const char *path, pt_table **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_native_read_all: out is NULL");
    *out = NULL;
    pt_native_reader *r = NULL;
    PT_RETURN_NOT_OK(pt_native_open_read(mem, path, &r, err));
    int64_t nb = r->nbatches;
    pt_status s = PT_OK;
    if (nb == 0) {
        s = empty_table(mem, r->schema, out, err);
    } else if (nb == 1) {
        s = pt_native_read_batch(r, 0, NULL, 0, out, err);
    } else if (nb > INT32_MAX) {
        s = pt_error_set(err, PT_EUNSUPPORTED, "%s: too many batches (%lld) to concatenate", path,
                         (long long)nb);
    } else {
        pt_table **parts = pt_calloc((size_t)nb, sizeof *parts);
        if (!parts) s = pt_error_set(err, PT_ENOMEM, "%s: out of memory", path);
        for (int64_t b = 0; b < nb && s == PT_OK; b++)
            s = pt_native_read_batch(r, b, NULL, 0, &parts[b], err);
        if (s == PT_OK) s = pt_table_concat(mem, parts, (int)nb, out, err);
        for (int64_t b = 0; parts && b < nb; b++)
            pt_table_free(parts[b]);
        pt_free(parts);
    }
    pt_native_close_read(r);
    return s;
}
