/*
 * csv_write.c - writing tables as RFC 4180 CSV. Fields holding the
 * delimiter, quotes or line breaks are quoted with quotes doubled; an empty
 * string is written as "" so that it stays distinct from a null (written as
 * null_text, unquoted), and a text equal to null_text is quoted for the same
 * reason (the reader only matches null texts on unquoted fields). Floats are
 * written with the fewest significant digits (15, 16 or 17) that read back
 * as the same double, independent of the caller's locale.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "io/csv_internal.h"

void pt_csv_write_opts_init(pt_csv_write_opts *o) {
    memset(o, 0, sizeof *o);
    o->delimiter = ',';
    o->header = 1;
    o->float_digits = 0;
    o->null_text = "";
}

static locale_t g_wloc;
static pthread_once_t g_wloc_once = PTHREAD_ONCE_INIT;
static void init_wloc(void) { g_wloc = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

typedef struct wbuf {
    FILE *f;
    char *b;
    size_t n, cap;
    int failed;
    int errnum;
} wbuf;

static void wflush(wbuf *w) {
    if (w->n && !w->failed) {
        if (fwrite(w->b, 1, w->n, w->f) != w->n) {
            w->failed = 1;
            w->errnum = errno;
        }
    }
    w->n = 0;
}

static inline void wput(wbuf *w, const char *s, size_t n) {
    if (w->n + n > w->cap) {
        wflush(w);
        if (n > w->cap) {
            if (!w->failed && fwrite(s, 1, n, w->f) != n) {
                w->failed = 1;
                w->errnum = errno;
            }
            return;
        }
    }
    if (n) memcpy(w->b + w->n, s, n);
    w->n += n;
}

static inline void wputc(wbuf *w, char c) {
    if (w->n == w->cap) wflush(w);
    w->b[w->n++] = c;
}

static void put_text(wbuf *w, const char *s, int64_t n, char delim, const char *null_text) {
    int q = n == 0;
    for (int64_t i = 0; i < n && !q; i++) {
        char c = s[i];
        q = c == delim || c == '"' || c == '\n' || c == '\r';
    }
    if (!q && null_text[0] && (int64_t)strlen(null_text) == n && memcmp(null_text, s, (size_t)n) == 0)
        q = 1;
    if (!q) {
        wput(w, s, (size_t)n);
        return;
    }
    wputc(w, '"');
    int64_t st = 0;
    for (int64_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            wput(w, s + st, (size_t)(i + 1 - st));
            wputc(w, '"');
            st = i + 1;
        }
    }
    wput(w, s + st, (size_t)(n - st));
    wputc(w, '"');
}

static void put_i64(wbuf *w, int64_t v) {
    char tmp[24];
    int i = 24;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[--i] = '-';
    wput(w, tmp + i, (size_t)(24 - i));
}

static void put_f64(wbuf *w, double d, int digits) {
    char tmp[40];
    int n;
    if (isnan(d)) {
        wput(w, "nan", 3);
        return;
    }
    if (isinf(d)) {
        if (d < 0)
            wput(w, "-inf", 4);
        else
            wput(w, "inf", 3);
        return;
    }
    if (digits > 0) {
        n = snprintf(tmp, sizeof tmp, "%.*g", digits > 40 ? 40 : digits, d);
    } else {
        n = 0;
        for (int p = 15; p <= 17; p++) {
            n = snprintf(tmp, sizeof tmp, "%.*g", p, d);
            if (p == 17 || strtod(tmp, NULL) == d) break;
        }
    }
    wput(w, tmp, (size_t)n);
}

static void put_f32(wbuf *w, float f, int digits) {
    char tmp[40];
    int n = 0;
    if (isnan(f) || isinf(f) || digits > 0) {
        put_f64(w, (double)f, digits);
        return;
    }
    for (int p = 6; p <= 9; p++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", p, (double)f);
        if (p == 9 || strtof(tmp, NULL) == f) break;
    }
    wput(w, tmp, (size_t)n);
}

pt_status pt_csv_write_file(const pt_table *t, FILE *f, int with_header,
                            const pt_csv_write_opts *opts, pt_error *err) {
    if (!t) return pt_error_set(err, PT_EINVAL, "pt_csv_write_file: table is NULL");
    if (!f) return pt_error_set(err, PT_EINVAL, "pt_csv_write_file: file is NULL");
    pt_csv_write_opts o;
    if (opts)
        o = *opts;
    else
        pt_csv_write_opts_init(&o);
    if (!o.null_text) o.null_text = "";
    if (!o.delimiter) o.delimiter = ',';
    if (o.delimiter == '"' || o.delimiter == '\n' || o.delimiter == '\r')
        return pt_error_set(err, PT_EINVAL,
                            "pt_csv_write: invalid option delimiter: must not be a quote or a "
                            "line break");
    if (strchr(o.null_text, o.delimiter) || strchr(o.null_text, '"') || strchr(o.null_text, '\n') ||
        strchr(o.null_text, '\r'))
        return pt_error_set(err, PT_EINVAL,
                            "pt_csv_write: invalid option null_text '%s': must not hold the "
                            "delimiter, quotes or line breaks",
                            o.null_text);
    int nc = t->schema ? t->schema->nfields : 0;
    wbuf w = {f, NULL, 0, 1 << 16, 0, 0};
    w.b = pt_malloc(w.cap);
    if (!w.b) return pt_error_set(err, PT_ENOMEM, "pt_csv_write: out of memory");
    pthread_once(&g_wloc_once, init_wloc);
    locale_t old = g_wloc ? uselocale(g_wloc) : (locale_t)0;
    size_t nt = strlen(o.null_text);
    if (with_header && nc > 0) {
        for (int j = 0; j < nc; j++) {
            if (j) wputc(&w, o.delimiter);
            const char *nm = t->schema->fields[j].name ? t->schema->fields[j].name : "";
            put_text(&w, nm, (int64_t)strlen(nm), o.delimiter, o.null_text);
        }
        wputc(&w, '\n');
    }
    for (int64_t i = 0; i < t->nrows && !w.failed; i++) {
        for (int j = 0; j < nc; j++) {
            if (j) wputc(&w, o.delimiter);
            const pt_column *c = t->cols[j];
            if (c->type == PT_TYPE_NULL || !pt_column_is_valid(c, i)) {
                wput(&w, o.null_text, nt);
                continue;
            }
            switch (c->type) {
            case PT_TYPE_BOOL:
                if (pt_column_bool(c, i))
                    wput(&w, "true", 4);
                else
                    wput(&w, "false", 5);
                break;
            case PT_TYPE_INT32:
                put_i64(&w, pt_column_i32(c)[i]);
                break;
            case PT_TYPE_INT64:
                put_i64(&w, pt_column_i64(c)[i]);
                break;
            case PT_TYPE_FLOAT32:
                put_f32(&w, pt_column_f32(c)[i], o.float_digits);
                break;
            case PT_TYPE_FLOAT64:
                put_f64(&w, pt_column_f64(c)[i], o.float_digits);
                break;
            case PT_TYPE_UTF8:
            case PT_TYPE_DICT: {
                int64_t n;
                const char *s = pt_column_str(c, i, &n);
                put_text(&w, s, n, o.delimiter, o.null_text);
                break;
            }
            default:
                wput(&w, o.null_text, nt);
                break;
            }
        }
        wputc(&w, '\n');
    }
    wflush(&w);
    if (g_wloc) uselocale(old);
    pt_free(w.b);
    if (w.failed)
        return pt_error_set(err, PT_EIO, "pt_csv_write: write failed: %s", strerror(w.errnum));
    return PT_OK;
}

pt_status pt_csv_write(const pt_table *t, const char *path, const pt_csv_write_opts *opts,
                       pt_error *err) {
    if (!path) return pt_error_set(err, PT_EINVAL, "pt_csv_write: path is NULL");
    if (!t) return pt_error_set(err, PT_EINVAL, "pt_csv_write: table is NULL");
    FILE *f = fopen(path, "wb");
    if (!f) {
        int e = errno;
        return pt_error_set(err, e == ENOENT ? PT_ENOENT : PT_EIO, "%s: cannot create: %s", path,
                            strerror(e));
    }
    pt_csv_write_opts o;
    if (opts)
        o = *opts;
    else
        pt_csv_write_opts_init(&o);
    pt_status s = pt_csv_write_file(t, f, o.header, &o, err);
    if (s != PT_OK) {
        fclose(f);
        return pt_error_prefix(err, "%s", path);
    }
    if (fclose(f) != 0) {
        int e = errno;
        return pt_error_set(err, PT_EIO, "%s: write failed: %s", path, strerror(e));
    }
    return PT_OK;
}
