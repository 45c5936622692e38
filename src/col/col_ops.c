/*
 * col_ops.c - whole-column operations that produce new columns: deep copy,
 * concatenation (re-encoding dictionaries), and casts between types.
 *
 * Every result is built with offset 0 and exactly sized buffers, and carries
 * a validity bitmap only when it has nulls.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "col/col_internal.h"

/* Gives `c` a bitmap with the validity of src[0, n) at rows [at, at + n),
 * creating it (all valid before `at`) when src has nulls. */
static pt_status put_validity(pt_column *c, const pt_column *src, int64_t at, int64_t n,
                              int64_t total, pt_error *err) {
    if (src->null_count == 0 && src->type != PT_TYPE_NULL) {
        if (c->validity) pt__bits_set_range(c->validity->data, at, n);
        return PT_OK;
    }
    if (!c->validity) {
        PT_RETURN_NOT_OK(pt_buffer_new(pt__column_mem(c), (total + 7) / 8, &c->validity, err));
        c->validity->size = (total + 7) / 8;
        pt__bits_set_range(c->validity->data, 0, at);
    }
    if (src->validity) pt__bits_copy(c->validity->data, at, src->validity->data, src->offset, n);
    /* A null column without bitmap has no rows; nothing to copy. */
    return PT_OK;
}

/* Allocates an empty result column of `type` for `rows` rows. */
static pt_status new_result(pt_mem *mem, pt_type type, int64_t rows, int64_t bytes,
                            pt_column *dict, pt_column **out, pt_error *err) {
    if (type == PT_TYPE_DICT) return pt_column_new_dict(mem, dict, rows, out, err);
    return pt_column_new(mem, type, rows, bytes, out, err);
}

/* Copies the values of src[0, n) to rows [at, at + n) of c (same type;
 * for utf8, bytes go after byte position o[at]). */
static void put_values(pt_column *c, const pt_column *src, int64_t at, int64_t n) {
    switch (c->type) {
    case PT_TYPE_NULL: break;
    case PT_TYPE_BOOL: pt__bits_copy(c->values->data, at, src->values->data, src->offset, n); break;
    case PT_TYPE_UTF8: {
        const int64_t *so = (const int64_t *)src->values->data + src->offset;
        int64_t *o = (int64_t *)c->values->data;
        int64_t base = o[at], shift = base - so[0];
        for (int64_t i = 1; i <= n; i++) o[at + i] = so[i] + shift;
        int64_t nb = so[n] - so[0];
        if (nb > 0) memcpy(c->bytes->data + base, src->bytes->data + so[0], (size_t)nb);
        c->bytes->size = base + nb;
        break;
    }
    default: {
        int w = pt_type_width(c->type);
        if (n > 0)
            memcpy(c->values->data + at * w, src->values->data + src->offset * w, (size_t)(n * w));
    }
    }
}

static int64_t text_bytes(const pt_column *c) {
    if (c->type != PT_TYPE_UTF8 || c->length == 0) return 0;
    const int64_t *o = (const int64_t *)c->values->data + c->offset;
    return o[c->length] - o[0];
}

/* Sets the bookkeeping of a freshly filled result. */
static void finish_result(pt_column *c, int64_t rows) {
    c->length = rows;
    if (c->type == PT_TYPE_NULL) {
        c->null_count = rows;
        return;
    }
    c->null_count = c->validity ? rows - pt__bits_count(c->validity->data, 0, rows) : 0;
    if (c->validity && c->null_count == 0) {
        pt_buffer_release(c->validity);
        c->validity = NULL;
    }
    c->values->size = c->type == PT_TYPE_BOOL   ? (rows + 7) / 8
                      : c->type == PT_TYPE_UTF8 ? (rows + 1) * 8
                                                : rows * pt_type_width(c->type);
}

pt_status pt_column_copy(pt_mem *mem, const pt_column *c, pt_column **out, pt_error *err) {
    *out = NULL;
    if (!c) return pt_error_set(err, PT_EINVAL, "pt_column_copy: column is NULL");
    pt_column *r;
    PT_RETURN_NOT_OK(new_result(mem, c->type, c->length, text_bytes(c), c->dict, &r, err));
    pt_status st = put_validity(r, c, 0, c->length, c->length, err);
    if (st != PT_OK) {
        pt_column_release(r);
        return st;
    }
    put_values(r, c, 0, c->length);
    finish_result(r, c->length);
    *out = r;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* A string -> index hash map for building dictionaries                     */
/* ------------------------------------------------------------------------ */

typedef struct str_map {
    int32_t *slots; /* index into `dict`, or -1 */
    int64_t mask;
    pt_column *dict; /* the utf8 column being built (owned by the caller) */
} str_map;

static pt_status map_init(str_map *m, pt_column *dict, int64_t expected, pt_error *err) {
    int64_t cap = 16;
    while (cap < expected * 2) cap *= 2;
    m->slots = pt_malloc((size_t)cap * sizeof *m->slots);
    if (!m->slots) return pt_error_set(err, PT_ENOMEM, "out of memory building a dictionary");
    memset(m->slots, 0xff, (size_t)cap * sizeof *m->slots);
    m->mask = cap - 1;
    m->dict = dict;
    return PT_OK;
}

static pt_status map_grow(str_map *m, pt_error *err) {
    int64_t cap = (m->mask + 1) * 2;
    int32_t *slots = pt_malloc((size_t)cap * sizeof *slots);
    if (!slots) return pt_error_set(err, PT_ENOMEM, "out of memory building a dictionary");
    memset(slots, 0xff, (size_t)cap * sizeof *slots);
    for (int64_t k = 0; k < m->dict->length; k++) {
        int64_t len;
        const char *s = pt_column_str(m->dict, k, &len);
        uint64_t h = pt_hash_bytes(s, (size_t)len, 0) & (uint64_t)(cap - 1);
        while (slots[h] >= 0) h = (h + 1) & (uint64_t)(cap - 1);
        slots[h] = (int32_t)k;
    }
    pt_free(m->slots);
    m->slots = slots;
    m->mask = cap - 1;
    return PT_OK;
}

/* Finds `s` in the dictionary, appending it when new. */
static pt_status map_intern(str_map *m, const char *s, int64_t len, int32_t *idx, pt_error *err) {
    uint64_t h = pt_hash_bytes(s, (size_t)len, 0) & (uint64_t)m->mask;
    for (;;) {
        int32_t k = m->slots[h];
        if (k < 0) break;
        int64_t kl;
        const char *ks = pt_column_str(m->dict, k, &kl);
        if (kl == len && (len == 0 || memcmp(ks, s, (size_t)len) == 0)) {
            *idx = k;
            return PT_OK;
        }
        h = (h + 1) & (uint64_t)m->mask;
    }
    if (m->dict->length >= INT32_MAX)
        return pt_error_set(err, PT_ERANGE, "dictionary exceeds %d entries", INT32_MAX);
    PT_RETURN_NOT_OK(pt_column_append_str(m->dict, s, len, err));
    *idx = (int32_t)(m->dict->length - 1);
    m->slots[h] = *idx;
    if ((m->dict->length + 1) * 2 > m->mask + 1) PT_RETURN_NOT_OK(map_grow(m, err));
    return PT_OK;
}

/* Re-encodes string columns (utf8 or dict) into one new dictionary column. */
static pt_status dict_encode(pt_mem *mem, pt_column *const *cols, int n, pt_column **out,
                             pt_error *err) {
    int64_t rows = 0, entries = 0;
    for (int k = 0; k < n; k++) {
        rows += cols[k]->length;
        entries += cols[k]->type == PT_TYPE_DICT ? cols[k]->dict->length : cols[k]->length;
    }
    pt_column *dict = NULL, *r = NULL;
    str_map m = {0};
    int32_t *remap = NULL;
    pt_status st = pt_column_new(mem, PT_TYPE_UTF8, 16, 64, &dict, err);
    if (st == PT_OK) st = map_init(&m, dict, entries < 1024 ? entries : 1024, err);
    if (st == PT_OK) st = pt_column_new_dict(mem, dict, rows, &r, err);
    int64_t at = 0;
    for (int k = 0; k < n && st == PT_OK; k++) {
        const pt_column *c = cols[k];
        int32_t *idx = (int32_t *)r->values->data;
        st = put_validity(r, c, at, c->length, rows, err);
        if (st != PT_OK) break;
        if (c->type == PT_TYPE_DICT) {
            /* Map each dictionary entry once, then rewrite the indices. */
            pt_free(remap);
            remap = pt_malloc((size_t)(c->dict->length > 0 ? c->dict->length : 1) * sizeof *remap);
            if (!remap) {
                st = pt_error_set(err, PT_ENOMEM, "out of memory re-encoding a dictionary");
                break;
            }
            for (int64_t j = 0; j < c->dict->length && st == PT_OK; j++) {
                int64_t len;
                const char *s = pt_column_str(c->dict, j, &len);
                st = map_intern(&m, s, len, &remap[j], err);
            }
            const int32_t *src = pt_column_i32(c);
            for (int64_t i = 0; i < c->length && st == PT_OK; i++)
                idx[at + i] = pt_column_is_valid(c, i) ? remap[src[i]] : 0;
        } else {
            for (int64_t i = 0; i < c->length && st == PT_OK; i++) {
                if (!pt_column_is_valid(c, i)) {
                    idx[at + i] = 0;
                    continue;
                }
                int64_t len;
                const char *s = pt_column_str(c, i, &len);
                st = map_intern(&m, s, len, &idx[at + i], err);
            }
        }
        at += c->length;
    }
    pt_free(remap);
    pt_free(m.slots);
    if (st == PT_OK) {
        pt_buffer_shrink(dict->values);
        pt_buffer_shrink(dict->bytes);
        finish_result(r, rows);
        *out = r;
    } else {
        pt_column_release(r);
    }
    pt_column_release(dict); /* r holds its own reference */
    return st;
}

pt_status pt_column_concat(pt_mem *mem, pt_column *const *cols, int n, pt_column **out,
                           pt_error *err) {
    *out = NULL;
    if (n <= 0 || !cols)
        return pt_error_set(err, PT_EINVAL, "pt_column_concat: need at least one column (n=%d)", n);
    pt_type type = cols[0]->type;
    bool same_dict = true;
    int64_t rows = 0, bytes = 0;
    for (int k = 0; k < n; k++) {
        if (!cols[k]) return pt_error_set(err, PT_EINVAL, "pt_column_concat: cols[%d] is NULL", k);
        if (cols[k]->type != type)
            return pt_error_set(err, PT_ETYPE, "pt_column_concat: column %d is %s, column 0 is %s",
                                k, pt_type_name(cols[k]->type), pt_type_name(type));
        if (cols[k]->dict != cols[0]->dict) same_dict = false;
        rows += cols[k]->length;
        bytes += text_bytes(cols[k]);
    }
    if (type == PT_TYPE_DICT && !same_dict) return dict_encode(mem, cols, n, out, err);
    pt_column *r;
    PT_RETURN_NOT_OK(new_result(mem, type, rows, bytes, cols[0]->dict, &r, err));
    int64_t at = 0;
    for (int k = 0; k < n; k++) {
        pt_status st = put_validity(r, cols[k], at, cols[k]->length, rows, err);
        if (st != PT_OK) {
            pt_column_release(r);
            return st;
        }
        put_values(r, cols[k], at, cols[k]->length);
        at += cols[k]->length;
    }
    finish_result(r, rows);
    *out = r;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Casts                                                                    */
/* ------------------------------------------------------------------------ */

const char *pt__format_double(double v, int digits, bool is_f32, char *buf, size_t cap) {
    if (digits > 0) {
        snprintf(buf, cap, "%.*g", digits, v);
        return buf;
    }
    if (!isfinite(v)) {
        snprintf(buf, cap, "%g", v);
        return buf;
    }
    /* Shortest of 6..17 digits that reads back to the same value. */
    for (int d = is_f32 ? 6 : 15; d <= 17; d++) {
        snprintf(buf, cap, "%.*g", d, v);
        double back = strtod(buf, NULL);
        if (is_f32 ? (float)back == (float)v : back == v) break;
    }
    return buf;
}

pt_status pt__dict_decode(pt_mem *mem, const pt_column *c, pt_column **out, pt_error *err) {
    *out = NULL;
    int64_t bytes = 0;
    for (int64_t i = 0; i < c->length; i++) {
        if (!pt_column_is_valid(c, i)) continue;
        int64_t len;
        (void)pt_column_str(c, i, &len);
        bytes += len;
    }
    pt_column *r;
    PT_RETURN_NOT_OK(pt_column_new(mem, PT_TYPE_UTF8, c->length, bytes, &r, err));
    pt_status st = put_validity(r, c, 0, c->length, c->length, err);
    if (st != PT_OK) {
        pt_column_release(r);
        return st;
    }
    int64_t *o = (int64_t *)r->values->data;
    for (int64_t i = 0; i < c->length; i++) {
        int64_t len = 0;
        if (pt_column_is_valid(c, i)) {
            const char *s = pt_column_str(c, i, &len);
            if (len > 0) memcpy(r->bytes->data + o[i], s, (size_t)len);
        }
        o[i + 1] = o[i] + len;
    }
    r->bytes->size = o[c->length];
    finish_result(r, c->length);
    *out = r;
    return PT_OK;
}

/* A column of `type` with `rows` nulls. */
static pt_status all_null(pt_mem *mem, pt_type type, int64_t rows, pt_column **out,
                          pt_error *err) {
    pt_column *dict = NULL, *r = NULL;
    pt_status st = PT_OK;
    if (type == PT_TYPE_DICT) st = pt_column_new(mem, PT_TYPE_UTF8, 0, 0, &dict, err);
    if (st == PT_OK) st = new_result(mem, type, rows, 0, dict, &r, err);
    pt_column_release(dict);
    if (st != PT_OK) return st;
    if (!r->validity) st = pt_buffer_new(mem, (rows + 7) / 8, &r->validity, err);
    if (st != PT_OK) {
        pt_column_release(r);
        return st;
    }
    r->validity->size = (rows + 7) / 8;
    finish_result(r, rows); /* utf8 offsets stay all 0: every value empty */
    *out = r;
    return PT_OK;
}

static bool parse_bool(const char *s, bool *v) {
    static const char *const yes[] = {"true", "t", "yes", "y", "1"};
    static const char *const no[] = {"false", "f", "no", "n", "0"};
    for (int k = 0; k < 5; k++) {
        if (strcasecmp(s, yes[k]) == 0) return *v = true, true;
        if (strcasecmp(s, no[k]) == 0) return *v = false, true;
    }
    return false;
}

/* Reads row i of a numeric/bool/string column as either an integer (*is_int)
 * or a double. Strings are parsed; false when the text is not a number. */
static bool read_number(const pt_column *c, int64_t i, pt_type to, int64_t *iv, double *dv,
                        bool *is_int, char *text, size_t text_cap) {
    *is_int = true;
    switch (c->type) {
    case PT_TYPE_BOOL: *iv = pt_column_bool(c, i); return true;
    case PT_TYPE_INT32: *iv = pt_column_i32(c)[i]; return true;
    case PT_TYPE_INT64: *iv = pt_column_i64(c)[i]; return true;
    case PT_TYPE_FLOAT32: *is_int = false; *dv = pt_column_f32(c)[i]; return true;
    case PT_TYPE_FLOAT64: *is_int = false; *dv = pt_column_f64(c)[i]; return true;
    default: break;
    }
    int64_t len;
    const char *s = pt_column_str(c, i, &len);
    while (len > 0 && (*s == ' ' || *s == '\t')) s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    if ((size_t)len >= text_cap) len = (int64_t)text_cap - 1;
    memcpy(text, s, (size_t)len);
    text[len] = 0;
    if (len == 0) return false;
    if (to == PT_TYPE_BOOL) {
        bool b;
        if (!parse_bool(text, &b)) return false;
        *iv = b;
        return true;
    }
    char *end;
    errno = 0;
    if (to == PT_TYPE_INT32 || to == PT_TYPE_INT64) {
        long long v = strtoll(text, &end, 10);
        if (*end == 0 && errno == 0) {
            *iv = v;
            return true;
        }
    }
    errno = 0;
    *dv = strtod(text, &end);
    *is_int = false;
    return *end == 0;
}

static pt_status cast_numeric(pt_mem *mem, const pt_column *c, pt_type to, pt_column **out,
                              pt_error *err) {
    pt_column *r;
    PT_RETURN_NOT_OK(pt_column_new(mem, to, c->length, 0, &r, err));
    pt_status st = put_validity(r, c, 0, c->length, c->length, err);
    char text[64];
    for (int64_t i = 0; i < c->length && st == PT_OK; i++) {
        if (!pt_column_is_valid(c, i)) continue; /* slot stays 0 */
        int64_t iv = 0;
        double dv = 0;
        bool is_int;
        if (!read_number(c, i, to, &iv, &dv, &is_int, text, sizeof text)) {
            st = pt_error_set(err, PT_EPARSE, "cast %s -> %s: row %lld value '%s' is not a valid %s",
                              pt_type_name(c->type), pt_type_name(to), (long long)i, text,
                              pt_type_name(to));
            break;
        }
        bool fits = true;
        switch (to) {
        case PT_TYPE_BOOL:
            if (is_int ? iv != 0 : dv != 0) pt_bit_set(r->values->data, i);
            break;
        case PT_TYPE_INT32:
            if (is_int) {
                fits = iv >= INT32_MIN && iv <= INT32_MAX;
            } else {
                /* Fractions are truncated toward zero, as C and SQL do. */
                fits = isfinite(dv) && dv > -2147483649.0 && dv < 2147483648.0;
                iv = fits ? (int64_t)dv : 0;
            }
            if (fits) ((int32_t *)r->values->data)[i] = (int32_t)iv;
            break;
        case PT_TYPE_INT64:
            if (!is_int) {
                fits = isfinite(dv) && dv >= -9223372036854775808.0 && dv < 9223372036854775808.0;
                iv = fits ? (int64_t)dv : 0;
            }
            if (fits) ((int64_t *)r->values->data)[i] = iv;
            break;
        case PT_TYPE_FLOAT32: {
            double v = is_int ? (double)iv : dv;
            fits = !isfinite(v) || fabs(v) <= FLT_MAX;
            if (fits) ((float *)r->values->data)[i] = (float)v;
            break;
        }
        case PT_TYPE_FLOAT64:
            ((double *)r->values->data)[i] = is_int ? (double)iv : dv;
            break;
        default: break;
        }
        if (!fits) {
            char vb[64];
            if (pt_type_is_string(c->type)) snprintf(vb, sizeof vb, "%s", text);
            else if (is_int) snprintf(vb, sizeof vb, "%lld", (long long)iv);
            else pt__format_double(dv, 0, false, vb, sizeof vb);
            st = pt_error_set(err, PT_ERANGE, "cast %s -> %s: row %lld value %s does not fit in %s",
                              pt_type_name(c->type), pt_type_name(to), (long long)i, vb,
                              pt_type_name(to));
        }
    }
    if (st != PT_OK) {
        pt_column_release(r);
        return st;
    }
    finish_result(r, c->length);
    *out = r;
    return PT_OK;
}

static pt_status cast_to_text(pt_mem *mem, const pt_column *c, pt_column **out, pt_error *err) {
    pt_column *r;
    PT_RETURN_NOT_OK(pt_column_new(mem, PT_TYPE_UTF8, c->length, c->length * 8, &r, err));
    char buf[64];
    pt_status st = PT_OK;
    for (int64_t i = 0; i < c->length && st == PT_OK; i++) {
        if (!pt_column_is_valid(c, i)) {
            st = pt_column_append_null(r, err);
            continue;
        }
        switch (c->type) {
        case PT_TYPE_BOOL: snprintf(buf, sizeof buf, "%s", pt_column_bool(c, i) ? "true" : "false"); break;
        case PT_TYPE_INT32: snprintf(buf, sizeof buf, "%d", (int)pt_column_i32(c)[i]); break;
        case PT_TYPE_INT64: snprintf(buf, sizeof buf, "%lld", (long long)pt_column_i64(c)[i]); break;
        case PT_TYPE_FLOAT32: pt__format_double(pt_column_f32(c)[i], 0, true, buf, sizeof buf); break;
        default: pt__format_double(pt_column_f64(c)[i], 0, false, buf, sizeof buf); break;
        }
        st = pt_column_append_str(r, buf, (int64_t)strlen(buf), err);
    }
    if (st != PT_OK) {
        pt_column_release(r);
        return st;
    }
    if (r->null_count == 0 && r->validity) {
        pt_buffer_release(r->validity);
        r->validity = NULL;
    }
    *out = r;
    return PT_OK;
}

pt_status pt_column_cast(pt_mem *mem, pt_column *c, pt_type to, pt_column **out, pt_error *err) {
    *out = NULL;
    if (!c) return pt_error_set(err, PT_EINVAL, "pt_column_cast: column is NULL");
    if ((int)to < 0 || to >= PT_TYPE_COUNT)
        return pt_error_set(err, PT_EINVAL, "pt_column_cast: target type %d is not a type", (int)to);
    if (c->type == to) {
        *out = pt_column_retain(c);
        return PT_OK;
    }
    if (c->type == PT_TYPE_NULL) return all_null(mem, to, c->length, out, err);
    if (to == PT_TYPE_NULL) {
        if (c->null_count != c->length)
            return pt_error_set(err, PT_ETYPE,
                                "cast %s -> null: the column has %lld non-null values",
                                pt_type_name(c->type), (long long)(c->length - c->null_count));
        return all_null(mem, to, c->length, out, err);
    }
    if (to == PT_TYPE_UTF8) {
        if (c->type == PT_TYPE_DICT) return pt__dict_decode(mem, c, out, err);
        return cast_to_text(mem, c, out, err);
    }
    if (to == PT_TYPE_DICT) {
        if (c->type == PT_TYPE_UTF8) return dict_encode(mem, &c, 1, out, err);
        pt_column *text;
        PT_RETURN_NOT_OK(cast_to_text(mem, c, &text, err));
        pt_status st = dict_encode(mem, &text, 1, out, err);
        pt_column_release(text);
        return st;
    }
    return cast_numeric(mem, c, to, out, err);
}
