/*
 * col_column.c - column construction: types, builders (append, reserve,
 * validity), slices, reference counting and size accounting.
 *
 * Invariants kept here and relied on everywhere in the layer:
 *  - buffers are zero-filled when allocated or grown, so a fresh validity
 *    bitmap marks everything null and fresh values read as 0;
 *  - null-type columns always carry a (zero) validity bitmap while they are
 *    being built, so pt_column_is_valid() answers false for their rows;
 *  - utf8 offsets hold length + 1 entries (offset + length + 1 from the start
 *    of the buffer for slices).
 */
#include <string.h>
#include <strings.h>

#include "col/col_internal.h"

static const char *const type_names[PT_TYPE_COUNT] = {
    "null", "bool", "int32", "int64", "float32", "float64", "utf8", "dict<utf8>",
};

const char *pt_type_name(pt_type t) {
    if ((int)t < 0 || t >= PT_TYPE_COUNT) return "unknown";
    return type_names[t];
}

pt_status pt_type_parse(const char *name, pt_type *out, pt_error *err) {
    static const struct {
        const char *name;
        pt_type type;
    } aliases[] = {
        {"string", PT_TYPE_UTF8},   {"str", PT_TYPE_UTF8},       {"text", PT_TYPE_UTF8},
        {"varchar", PT_TYPE_UTF8},  {"double", PT_TYPE_FLOAT64}, {"float", PT_TYPE_FLOAT32},
        {"real", PT_TYPE_FLOAT32},  {"int", PT_TYPE_INT32},      {"integer", PT_TYPE_INT32},
        {"bigint", PT_TYPE_INT64},  {"long", PT_TYPE_INT64},     {"bool", PT_TYPE_BOOL},
        {"boolean", PT_TYPE_BOOL},  {"category", PT_TYPE_DICT},  {"dict", PT_TYPE_DICT},
        {"f64", PT_TYPE_FLOAT64},   {"f32", PT_TYPE_FLOAT32},    {"i64", PT_TYPE_INT64},
        {"i32", PT_TYPE_INT32},
    };
    if (!name) return pt_error_set(err, PT_EINVAL, "pt_type_parse: name is NULL");
    for (int t = 0; t < PT_TYPE_COUNT; t++) {
        if (strcasecmp(name, type_names[t]) == 0) {
            *out = (pt_type)t;
            return PT_OK;
        }
    }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcasecmp(name, aliases[i].name) == 0) {
            *out = aliases[i].type;
            return PT_OK;
        }
    }
    return pt_error_set(err, PT_EINVAL,
                        "unknown type '%s' (expected one of: null, bool, int32, int64, float32, "
                        "float64, utf8, dict<utf8>, string, double, float, int, boolean, "
                        "category)",
                        name);
}

int pt_type_width(pt_type t) {
    switch (t) {
    case PT_TYPE_INT32:
    case PT_TYPE_FLOAT32:
    case PT_TYPE_DICT: return 4;
    case PT_TYPE_INT64:
    case PT_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Capacity arithmetic                                                      */
/* ------------------------------------------------------------------------ */

/* Bytes of the values buffer needed for `rows` rows (counted from the start
 * of the buffer). */
static int64_t values_bytes(pt_type t, int64_t rows) {
    switch (t) {
    case PT_TYPE_NULL: return 0;
    case PT_TYPE_BOOL: return (rows + 7) / 8;
    case PT_TYPE_UTF8: return (rows + 1) * 8;
    default: return rows * pt_type_width(t);
    }
}

/* Rows the current buffers can hold. */
static int64_t rows_capacity(const pt_column *c) {
    switch (c->type) {
    case PT_TYPE_NULL: return c->validity ? c->validity->capacity * 8 : 0;
    case PT_TYPE_BOOL: return c->values->capacity * 8;
    case PT_TYPE_UTF8: return c->values->capacity / 8 - 1;
    default: return c->values->capacity / pt_type_width(c->type);
    }
}

pt_mem *pt__column_mem(const pt_column *c) {
    if (c->values) return c->values->mem;
    if (c->validity) return c->validity->mem;
    if (c->bytes) return c->bytes->mem;
    return NULL;
}

/* Grows buffers so that rows [0, rows) fit (validity too when present). */
static pt_status grow_rows(pt_column *c, int64_t rows, pt_error *err) {
    /* pt_buffer_reserve grows geometrically, so appends stay amortised O(1). */
    if (c->type != PT_TYPE_NULL && c->values->capacity < values_bytes(c->type, rows))
        PT_RETURN_NOT_OK(pt_buffer_reserve(c->values, values_bytes(c->type, rows), err));
    if (c->validity && c->validity->capacity < (rows + 7) / 8)
        PT_RETURN_NOT_OK(pt_buffer_reserve(c->validity, (rows + 7) / 8, err));
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Construction and lifetime                                                */
/* ------------------------------------------------------------------------ */

pt_status pt__column_alloc(pt_type type, pt_column **out, pt_error *err) {
    pt_column *c = pt_calloc(1, sizeof *c);
    *out = c;
    if (!c) return pt_error_set(err, PT_ENOMEM, "out of memory allocating a column");
    c->type = type;
    c->refcount = 1;
    return PT_OK;
}

pt_status pt_column_new(pt_mem *mem, pt_type type, int64_t capacity, int64_t byte_capacity,
                        pt_column **out, pt_error *err) {
    *out = NULL;
    if ((int)type < 0 || type >= PT_TYPE_COUNT)
        return pt_error_set(err, PT_EINVAL, "pt_column_new: type %d is not a valid type",
                            (int)type);
    if (type == PT_TYPE_DICT)
        return pt_error_set(err, PT_EINVAL,
                            "pt_column_new: dictionary columns are made with pt_column_new_dict");
    if (capacity < 0 || byte_capacity < 0)
        return pt_error_set(err, PT_EINVAL,
                            "pt_column_new: capacity (%lld) and byte_capacity (%lld) must be >= 0",
                            (long long)capacity, (long long)byte_capacity);
    pt_column *c;
    PT_RETURN_NOT_OK(pt__column_alloc(type, &c, err));
    pt_status s;
    if (type == PT_TYPE_NULL) {
        s = pt_buffer_new(mem, (capacity + 7) / 8, &c->validity, err);
    } else {
        s = pt_buffer_new(mem, values_bytes(type, capacity), &c->values, err);
        if (s == PT_OK && type == PT_TYPE_UTF8) {
            c->values->size = 8; /* offsets[0] = 0 (zero-filled) */
            s = pt_buffer_new(mem, byte_capacity, &c->bytes, err);
        }
    }
    if (s != PT_OK) {
        pt_column_release(c);
        return s;
    }
    *out = c;
    return PT_OK;
}

pt_status pt_column_new_dict(pt_mem *mem, pt_column *dict, int64_t capacity, pt_column **out,
                             pt_error *err) {
    *out = NULL;
    if (!dict || dict->type != PT_TYPE_UTF8)
        return pt_error_set(err, PT_EINVAL, "pt_column_new_dict: dict must be a utf8 column, not %s",
                            dict ? pt_type_name(dict->type) : "NULL");
    if (dict->null_count != 0)
        return pt_error_set(err, PT_EINVAL,
                            "pt_column_new_dict: dict has %lld nulls; a dictionary has none",
                            (long long)dict->null_count);
    if (capacity < 0)
        return pt_error_set(err, PT_EINVAL, "pt_column_new_dict: capacity %lld is negative",
                            (long long)capacity);
    pt_column *c;
    PT_RETURN_NOT_OK(pt__column_alloc(PT_TYPE_DICT, &c, err));
    pt_status s = pt_buffer_new(mem, capacity * 4, &c->values, err);
    if (s != PT_OK) {
        pt_column_release(c);
        return s;
    }
    c->dict = pt_column_retain(dict);
    *out = c;
    return PT_OK;
}

pt_column *pt_column_retain(pt_column *c) {
    if (c) pt__ref_inc(&c->refcount);
    return c;
}

void pt_column_release(pt_column *c) {
    if (!c || !pt__ref_dec(&c->refcount)) return;
    pt_buffer_release(c->validity);
    pt_buffer_release(c->values);
    pt_buffer_release(c->bytes);
    pt_column_release(c->dict);
    pt_free(c);
}

/* ------------------------------------------------------------------------ */
/* Builders                                                                 */
/* ------------------------------------------------------------------------ */

/* Checks the type and makes room for one more row. */
static pt_status prep_append(pt_column *c, pt_type want, const char *fn, pt_error *err) {
    if (!c) return pt_error_set(err, PT_EINVAL, "%s: column is NULL", fn);
    if (c->type != want)
        return pt_error_set(err, PT_ETYPE, "%s: column is %s, not %s", fn, pt_type_name(c->type),
                            pt_type_name(want));
    if (c->offset != 0)
        return pt_error_set(err, PT_EINVAL, "%s: cannot append to a slice (offset %lld)", fn,
                            (long long)c->offset);
    return grow_rows(c, c->length + 1, err);
}

/* Marks row `length` valid (when a bitmap exists) and counts it. */
static void finish_append(pt_column *c) {
    if (c->validity) {
        pt_bit_set(c->validity->data, c->length);
        c->validity->size = (c->length + 8) / 8;
    }
    c->length++;
    if (c->values) c->values->size = values_bytes(c->type, c->length);
}

pt_status pt_column_ensure_validity(pt_column *c, pt_error *err) {
    if (!c) return pt_error_set(err, PT_EINVAL, "pt_column_ensure_validity: column is NULL");
    if (c->validity) return PT_OK;
    int64_t rows = rows_capacity(c);
    if (rows < c->offset + c->length) rows = c->offset + c->length;
    pt_buffer *v;
    PT_RETURN_NOT_OK(pt_buffer_new(pt__column_mem(c), (rows + 7) / 8, &v, err));
    pt__bits_set_range(v->data, 0, c->offset + c->length);
    v->size = (c->offset + c->length + 7) / 8;
    c->validity = v;
    return PT_OK;
}

pt_status pt_column_reserve(pt_column *c, int64_t rows, int64_t bytes, pt_error *err) {
    if (!c) return pt_error_set(err, PT_EINVAL, "pt_column_reserve: column is NULL");
    if (rows < 0 || bytes < 0)
        return pt_error_set(err, PT_EINVAL, "pt_column_reserve: rows (%lld) and bytes (%lld) must be >= 0",
                            (long long)rows, (long long)bytes);
    PT_RETURN_NOT_OK(grow_rows(c, c->offset + rows, err));
    if (c->bytes && c->bytes->capacity < bytes)
        PT_RETURN_NOT_OK(pt_buffer_reserve(c->bytes, bytes, err));
    return PT_OK;
}

pt_status pt_column_append_null(pt_column *c, pt_error *err) {
    if (!c) return pt_error_set(err, PT_EINVAL, "pt_column_append_null: column is NULL");
    if (c->offset != 0)
        return pt_error_set(err, PT_EINVAL, "pt_column_append_null: cannot append to a slice");
    PT_RETURN_NOT_OK(grow_rows(c, c->length + 1, err));
    PT_RETURN_NOT_OK(pt_column_ensure_validity(c, err));
    int64_t i = c->length;
    switch (c->type) {
    case PT_TYPE_NULL: break;
    case PT_TYPE_BOOL: pt_bit_clear(c->values->data, i); break;
    case PT_TYPE_UTF8: {
        int64_t *o = (int64_t *)c->values->data;
        o[i + 1] = o[i];
        break;
    }
    default: memset(c->values->data + i * pt_type_width(c->type), 0, (size_t)pt_type_width(c->type));
    }
    pt_bit_clear(c->validity->data, i);
    c->validity->size = (i + 8) / 8;
    c->length++;
    c->null_count++;
    if (c->values) c->values->size = values_bytes(c->type, c->length);
    return PT_OK;
}

pt_status pt_column_append_bool(pt_column *c, bool v, pt_error *err) {
    PT_RETURN_NOT_OK(prep_append(c, PT_TYPE_BOOL, "pt_column_append_bool", err));
    if (v) pt_bit_set(c->values->data, c->length);
    else pt_bit_clear(c->values->data, c->length);
    finish_append(c);
    return PT_OK;
}

#define DEFINE_APPEND(fn, ctype, ptype)                                        \
    pt_status fn(pt_column *c, ctype v, pt_error *err) {                       \
        PT_RETURN_NOT_OK(prep_append(c, ptype, #fn, err));                     \
        ((ctype *)c->values->data)[c->length] = v;                             \
        finish_append(c);                                                      \
        return PT_OK;                                                          \
    }
DEFINE_APPEND(pt_column_append_i32, int32_t, PT_TYPE_INT32)
DEFINE_APPEND(pt_column_append_i64, int64_t, PT_TYPE_INT64)
DEFINE_APPEND(pt_column_append_f32, float, PT_TYPE_FLOAT32)
DEFINE_APPEND(pt_column_append_f64, double, PT_TYPE_FLOAT64)
#undef DEFINE_APPEND

pt_status pt_column_append_index(pt_column *c, int32_t idx, pt_error *err) {
    PT_RETURN_NOT_OK(prep_append(c, PT_TYPE_DICT, "pt_column_append_index", err));
    if (idx < 0 || idx >= c->dict->length)
        return pt_error_set(err, PT_ERANGE,
                            "pt_column_append_index: index %d out of range for a dictionary of "
                            "%lld entries",
                            (int)idx, (long long)c->dict->length);
    ((int32_t *)c->values->data)[c->length] = idx;
    finish_append(c);
    return PT_OK;
}

pt_status pt_column_append_str(pt_column *c, const char *s, int64_t len, pt_error *err) {
    PT_RETURN_NOT_OK(prep_append(c, PT_TYPE_UTF8, "pt_column_append_str", err));
    if (len < 0) len = s ? (int64_t)strlen(s) : 0;
    int64_t *o = (int64_t *)c->values->data;
    int64_t end = o[c->length] + len;
    if (c->bytes->capacity < end) PT_RETURN_NOT_OK(pt_buffer_reserve(c->bytes, end, err));
    if (len > 0) memcpy(c->bytes->data + o[c->length], s, (size_t)len);
    o[c->length + 1] = end;
    c->bytes->size = end;
    finish_append(c);
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Slices and queries                                                       */
/* ------------------------------------------------------------------------ */

pt_status pt_column_slice(pt_column *c, int64_t offset, int64_t length, pt_column **out,
                          pt_error *err) {
    *out = NULL;
    if (!c) return pt_error_set(err, PT_EINVAL, "pt_column_slice: column is NULL");
    if (offset < 0 || length < 0 || offset > c->length || length > c->length - offset)
        return pt_error_set(err, PT_EINVAL,
                            "pt_column_slice: rows [%lld, %lld) out of range for a column of %lld rows",
                            (long long)offset, (long long)offset + length, (long long)c->length);
    pt_column *s;
    PT_RETURN_NOT_OK(pt__column_alloc(c->type, &s, err));
    s->length = length;
    s->offset = c->offset + offset;
    s->values = pt_buffer_retain(c->values);
    s->bytes = pt_buffer_retain(c->bytes);
    s->dict = pt_column_retain(c->dict);
    if (c->validity) {
        if (c->null_count == 0 && c->type != PT_TYPE_NULL) {
            s->null_count = 0;
        } else if (c->null_count == c->length) {
            s->null_count = length;
        } else {
            s->null_count =
                length - pt__bits_count(c->validity->data, s->offset, length);
        }
        /* Keep "no bitmap when there are no nulls" so operators can take
         * their fast path; null columns keep theirs so rows read as null. */
        if (s->null_count > 0 || c->type == PT_TYPE_NULL) s->validity = pt_buffer_retain(c->validity);
    }
    *out = s;
    return PT_OK;
}

int64_t pt_column_nbytes(const pt_column *c) {
    if (!c) return 0;
    int64_t n = 0;
    if (c->validity) n += c->validity->capacity;
    if (c->values) n += c->values->capacity;
    if (c->bytes) n += c->bytes->capacity;
    if (c->dict) n += pt_column_nbytes(c->dict);
    return n;
}

double pt_column_get_f64(const pt_column *c, int64_t i) {
    switch (c->type) {
    case PT_TYPE_BOOL: return pt_column_bool(c, i) ? 1.0 : 0.0;
    case PT_TYPE_INT32: return (double)pt_column_i32(c)[i];
    case PT_TYPE_INT64: return (double)pt_column_i64(c)[i];
    case PT_TYPE_FLOAT32: return (double)pt_column_f32(c)[i];
    case PT_TYPE_FLOAT64: return pt_column_f64(c)[i];
    default: return 0.0;
    }
}
