/*
 * col_take.c - gathering rows by index (take) and keeping rows by a mask
 * (filter): the kernels behind sort, join, filter and sampling.
 *
 * A negative index produces a null row, which is how outer joins emit the
 * missing side. Results have offset 0 and carry a bitmap only with nulls.
 */
#include <string.h>

#include "col/col_internal.h"

static pt_status take_validity(pt_column *r, const pt_column *c, const int64_t *idx, int64_t n,
                               pt_error *err) {
    /* A null column comes with its (all-zero) bitmap already. */
    if (r->validity) {
        pt_buffer_release(r->validity);
        r->validity = NULL;
    }
    bool any_neg = false;
    for (int64_t i = 0; i < n && !any_neg; i++) any_neg = idx[i] < 0;
    if (c->null_count == 0 && c->type != PT_TYPE_NULL && !any_neg) return PT_OK;
    PT_RETURN_NOT_OK(pt_buffer_new(pt__column_mem(r), (n + 7) / 8, &r->validity, err));
    r->validity->size = (n + 7) / 8;
    uint8_t *v = r->validity->data;
    memset(v, 0, (size_t)((n + 7) / 8));
    int64_t nulls = 0;
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] >= 0 && pt_column_is_valid(c, idx[i]) && c->type != PT_TYPE_NULL) {
            pt_bit_set(v, i);
        } else {
            nulls++;
        }
    }
    r->null_count = nulls;
    if (nulls == 0 && c->type != PT_TYPE_NULL) {
        pt_buffer_release(r->validity);
        r->validity = NULL;
    }
    return PT_OK;
}

pt_status pt_column_take(pt_mem *mem, const pt_column *c, const int64_t *idx, int64_t n,
                         pt_column **out, pt_error *err) {
    *out = NULL;
    if (!c || (n > 0 && !idx) || n < 0)
        return pt_error_set(err, PT_EINVAL, "pt_column_take: column or indices missing");
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] >= c->length)
            return pt_error_set(err, PT_EINVAL,
                                "pt_column_take: index %lld at position %lld is out of range "
                                "(column has %lld rows)",
                                (long long)idx[i], (long long)i, (long long)c->length);
    }
    pt_column *r;
    int64_t bytes = 0;
    if (c->type == PT_TYPE_UTF8) {
        for (int64_t i = 0; i < n; i++) {
            if (idx[i] < 0) continue;
            int64_t len;
            (void)pt_column_str(c, idx[i], &len);
            bytes += len;
        }
    }
    pt_status st = c->type == PT_TYPE_DICT ? pt_column_new_dict(mem, c->dict, n, &r, err)
                                           : pt_column_new(mem, c->type, n, bytes, &r, err);
    if (st != PT_OK) return st;
    st = take_validity(r, c, idx, n, err);
    if (st != PT_OK) {
        pt_column_release(r);
        return st;
    }
    switch (c->type) {
    case PT_TYPE_NULL: r->null_count = n; break;
    case PT_TYPE_BOOL: {
        uint8_t *d = r->values->data;
        memset(d, 0, (size_t)((n + 7) / 8));
        for (int64_t i = 0; i < n; i++)
            if (idx[i] >= 0 && pt_column_bool(c, idx[i])) pt_bit_set(d, i);
        r->values->size = (n + 7) / 8;
        break;
    }
    case PT_TYPE_UTF8: {
        int64_t *o = (int64_t *)r->values->data;
        char *b = (char *)r->bytes->data;
        int64_t pos = 0;
        o[0] = 0;
        for (int64_t i = 0; i < n; i++) {
            if (idx[i] >= 0) {
                int64_t len;
                const char *s = pt_column_str(c, idx[i], &len);
                if (len) memcpy(b + pos, s, (size_t)len);
                pos += len;
            }
            o[i + 1] = pos;
        }
        r->values->size = (n + 1) * 8;
        r->bytes->size = pos;
        break;
    }
    case PT_TYPE_INT32:
    case PT_TYPE_FLOAT32:
    case PT_TYPE_DICT: {
        const int32_t *s = (const int32_t *)c->values->data + c->offset;
        int32_t *d = (int32_t *)r->values->data;
        for (int64_t i = 0; i < n; i++) d[i] = idx[i] >= 0 ? s[idx[i]] : 0;
        r->values->size = n * 4;
        break;
    }
    default: {
        const int64_t *s = (const int64_t *)c->values->data + c->offset;
        int64_t *d = (int64_t *)r->values->data;
        for (int64_t i = 0; i < n; i++) d[i] = idx[i] >= 0 ? s[idx[i]] : 0;
        r->values->size = n * 8;
        break;
    }
    }
    r->length = n;
    if (c->type == PT_TYPE_NULL) r->null_count = n;
    *out = r;
    return PT_OK;
}

pt_status pt_table_take(pt_mem *mem, const pt_table *t, const int64_t *idx, int64_t n,
                        pt_table **out, pt_error *err) {
    *out = NULL;
    int nc = t->schema->nfields;
    pt_schema *s;
    PT_RETURN_NOT_OK(pt_schema_copy(t->schema, &s, err));
    pt_column **cols = pt_calloc((size_t)(nc ? nc : 1), sizeof *cols);
    if (!cols) {
        pt_schema_free(s);
        return pt_error_set(err, PT_ENOMEM, "pt_table_take: out of memory");
    }
    for (int j = 0; j < nc; j++) {
        pt_status st = pt_column_take(mem, t->cols[j], idx, n, &cols[j], err);
        if (st != PT_OK) {
            for (int k = 0; k < j; k++) pt_column_release(cols[k]);
            pt_free(cols);
            pt_schema_free(s);
            return st;
        }
    }
    pt_status st = pt_table_new(s, cols, out, err);
    pt_free(cols);
    return st;
}

/* Positions of the non-zero mask bytes. */
static pt_status mask_indices(const uint8_t *mask, int64_t len, int64_t **idx, int64_t *n,
                              pt_error *err) {
    int64_t k = 0;
    for (int64_t i = 0; i < len; i++) k += mask[i] != 0;
    *idx = pt_malloc((size_t)(k ? k : 1) * sizeof **idx);
    if (!*idx) return pt_error_set(err, PT_ENOMEM, "filter: out of memory for %lld indices", (long long)k);
    int64_t j = 0;
    for (int64_t i = 0; i < len; i++)
        if (mask[i]) (*idx)[j++] = i;
    *n = k;
    return PT_OK;
}

pt_status pt_column_filter(pt_mem *mem, const pt_column *c, const uint8_t *mask, pt_column **out,
                           pt_error *err) {
    *out = NULL;
    int64_t *idx, n = 0;
    PT_RETURN_NOT_OK(mask_indices(mask, c->length, &idx, &n, err));
    pt_status st = pt_column_take(mem, c, idx, n, out, err);
    pt_free(idx);
    return st;
}

pt_status pt_table_filter(pt_mem *mem, const pt_table *t, const uint8_t *mask, pt_table **out,
                          pt_error *err) {
    *out = NULL;
    int64_t *idx, n = 0;
    PT_RETURN_NOT_OK(mask_indices(mask, t->nrows, &idx, &n, err));
    pt_status st = pt_table_take(mem, t, idx, n, out, err);
    pt_free(idx);
    return st;
}

/* Joins columns that are consecutive slices of the same buffers (as made
 * by slicing one column into partitions) back into one column without a
 * copy. Returns false (and leaves *out NULL) when they are not. */
bool pt__column_rejoin(pt_column *const *cols, int64_t n, pt_column **out) {
    *out = NULL;
    if (n <= 0) return false;
    const pt_column *a = cols[0];
    int64_t end = a->offset + a->length, nulls = a->null_count;
    for (int64_t k = 1; k < n; k++) {
        const pt_column *c = cols[k];
        if (c->type != a->type || c->values != a->values || c->bytes != a->bytes ||
            c->dict != a->dict || c->offset != end)
            return false;
        /* Slices drop the bitmap when their range has no nulls, so bitmaps
         * may differ: only rejoin when they agree. */
        if (c->validity != a->validity) return false;
        end += c->length;
        nulls += c->null_count;
    }
    pt_column *r;
    if (pt__column_alloc(a->type, &r, NULL) != PT_OK) return false;
    r->offset = a->offset;
    r->length = end - a->offset;
    r->null_count = nulls;
    r->values = a->values ? pt_buffer_retain(a->values) : NULL;
    r->validity = a->validity ? pt_buffer_retain(a->validity) : NULL;
    r->bytes = a->bytes ? pt_buffer_retain(a->bytes) : NULL;
    r->dict = a->dict ? pt_column_retain(a->dict) : NULL;
    *out = r;
    return true;
}
