/*
 * csv_scan.c - byte-level scanning for the CSV reader: mapping the file,
 * the quote/newline counting pre-pass (whose prefix sums give the exact
 * quote state and line number at any range start), finding row boundaries
 * under quote parity, UTF-8 validation and the excerpts shown in messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/csv_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

void pt__csv_count(const char *p, int64_t n, char quote, int64_t *quotes, int64_t *newlines) {
    int64_t q = 0, nl = 0, i = 0;
#if defined(__SSE2__)
    const __m128i vq = _mm_set1_epi8(quote), vn = _mm_set1_epi8('\n');
    for (; i + 64 <= n; i += 64) {
        uint64_t mq = 0, mn = 0;
        for (int k = 0; k < 4; k++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 16 * k));
            mq |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vq)) << (16 * k);
            mn |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vn)) << (16 * k);
        }
        q += __builtin_popcountll(mq);
        nl += __builtin_popcountll(mn);
    }
#endif
    for (; i < n; i++) {
        q += p[i] == quote;
        nl += p[i] == '\n';
    }
    *quotes = q;
    *newlines = nl;
}

int64_t pt__csv_count_nl(const char *p, int64_t n) {
    int64_t nl = 0;
    const char *end = p + n;
    while (p < end) {
        const char *h = memchr(p, '\n', (size_t)(end - p));
        if (!h) break;
        nl++;
        p = h + 1;
    }
    return nl;
}

int64_t pt__csv_first_row_start(const char *data, int64_t rstart, int64_t from, int64_t limit,
                                int inq, char quote) {
    if (from == rstart) return from;
    /* `from` itself starts a row when the byte before it is an unquoted '\n'
     * (a '\n' does not change the parity, so the state there is `inq`). */
    if (!inq && data[from - 1] == '\n') return from;
    for (int64_t i = from; i < limit; i++) {
        char c = data[i];
        if (c == quote)
            inq ^= 1;
        else if (c == '\n' && !inq)
            return i + 1;
    }
    return -1;
}

const char *pt__csv_row_end(const char *p, const char *end, char quote) {
    int inq = 0;
    while (p < end) {
        if (!inq) {
            /* Outside quotes only '\n' and the quote matter. */
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *qt = memchr(p, quote, (size_t)((nl ? nl : end) - p));
            if (!qt) return nl ? nl + 1 : end;
            p = qt + 1;
            inq = 1;
        } else {
            const char *qt = memchr(p, quote, (size_t)(end - p));
            if (!qt) return end;
            p = qt + 1;
            inq = 0;
        }
    }
    return end;
}

pt_status pt__csv_map_file(const char *path, pt__csv_map *m, pt_error *err) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return pt_error_set(err, e == ENOENT ? PT_ENOENT : PT_EIO, "%s: cannot open: %s", path,
                            strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return pt_error_set(err, PT_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return pt_error_set(err, PT_EIO, "%s: is a directory", path);
    }
    if (S_ISREG(st.st_mode)) {
        if (st.st_size == 0) {
            close(fd);
            m->data = "";
            return PT_OK;
        }
        void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (base != MAP_FAILED) {
            close(fd);
#ifdef MADV_SEQUENTIAL
            (void)madvise(base, (size_t)st.st_size, MADV_WILLNEED);
#endif
            m->mapped = base;
            m->data = base;
            m->len = st.st_size;
            return PT_OK;
        }
    }
    /* Pipes and files that cannot be mapped are read into memory. */
    int64_t cap = S_ISREG(st.st_mode) ? st.st_size + 1 : 1 << 20, len = 0;
    char *buf = pt_malloc((size_t)cap);
    if (!buf) {
        close(fd);
        return pt_error_set(err, PT_ENOMEM, "%s: out of memory reading the file", path);
    }
    for (;;) {
        if (len == cap) {
            char *nb = pt_realloc(buf, (size_t)cap * 2);
            if (!nb) {
                pt_free(buf);
                close(fd);
                return pt_error_set(err, PT_ENOMEM, "%s: out of memory reading the file", path);
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, (size_t)(cap - len));
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            pt_free(buf);
            close(fd);
            return pt_error_set(err, PT_EIO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0) break;
        len += r;
    }
    close(fd);
    m->owned = buf;
    m->data = buf;
    m->len = len;
    return PT_OK;
}

void pt__csv_unmap(pt__csv_map *m) {
    if (m->mapped) munmap(m->mapped, (size_t)m->len);
    pt_free(m->owned);
    memset(m, 0, sizeof *m);
}

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0. */
static int utf8_seq(const unsigned char *s, int64_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F; /* <= U+10FFFF */
    } else
        return 0;
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (int k = 2; k < len; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    return len;
}

int64_t pt__csv_utf8_check(const char *s, int64_t n) {
    const unsigned char *u = (const unsigned char *)s;
    int64_t i = 0;
    while (i < n) {
        /* ASCII runs eight bytes at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, u + i, 8);
            if (w & 0x8080808080808080ULL) break;
            i += 8;
        }
        if (i >= n) break;
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        int l = utf8_seq(u + i, n - i);
        if (!l) return i;
        i += l;
    }
    return -1;
}

void pt__csv_show(char *buf, size_t cap, const char *s, int64_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    int64_t i = 0;
    if (cap < 8) {
        if (cap) buf[0] = 0;
        return;
    }
    buf[o++] = '\'';
    while (i < len && o + 8 < cap) {
        if (i >= 40) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        unsigned c = u[i];
        if (c == '\n' || c == '\r' || c == '\t') {
            buf[o++] = '\\';
            buf[o++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
            i++;
        } else if (c < 0x80) {
            buf[o++] = (char)c;
            i++;
        } else {
            int l = utf8_seq(u + i, len - i);
            if (l && o + (size_t)l + 8 < cap) {
                memcpy(buf + o, u + i, (size_t)l);
                o += (size_t)l;
                i += l;
            } else {
                o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
                i++;
            }
        }
    }
    if (i < len && o + 4 < cap && (o < 4 || memcmp(buf + o - 3, "...", 3) != 0)) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '\'';
    buf[o] = 0;
}

void pt__csv_linecol(const char *base, int64_t line0, const char *pos, int64_t *line,
                     int64_t *col) {
    int64_t nl = 0;
    const char *ls = base, *p = base;
    while (p < pos) {
        const char *h = memchr(p, '\n', (size_t)(pos - p));
        if (!h) break;
        nl++;
        ls = h + 1;
        p = h + 1;
    }
    *line = line0 + nl;
    *col = (int64_t)(pos - ls) + 1;
}
