/*
 * col_arrow.c - the Arrow C Data Interface: export of columns and tables as
 * ArrowSchema/ArrowArray pairs, and import of arrays produced elsewhere.
 *
 * Export is zero-copy: the exported array holds its own references to the
 * column's buffers, so the column may be released first. Import moves the
 * producer's array into a reference-counted owner; every buffer wrapped
 * zero-copy holds a reference to that owner, and the producer's release
 * callback runs exactly once, when the last of them goes (or at the end of
 * the import when everything had to be converted or the import failed).
 */
#include <string.h>

#include "col/col_internal.h"

/* ------------------------------------------------------------------------ */
/* Export                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct export_schema {
    char *name;
    struct ArrowSchema **children;
    struct ArrowSchema *child_storage;
    struct ArrowSchema dict;
} export_schema;

typedef struct export_array {
    pt_buffer *bufs[3];
    const void *buffer_ptrs[3];
    struct ArrowArray **children;
    struct ArrowArray *child_storage;
    struct ArrowArray dict;
} export_array;

static void schema_release(struct ArrowSchema *s) {
    if (!s || !s->release) return;
    export_schema *p = s->private_data;
    for (int64_t i = 0; i < s->n_children; i++)
        if (s->children[i]->release) s->children[i]->release(s->children[i]);
    if (s->dictionary && s->dictionary->release) s->dictionary->release(s->dictionary);
    pt_free(p->name);
    pt_free(p->children);
    pt_free(p->child_storage);
    pt_free(p);
    s->release = NULL;
}

static void array_release(struct ArrowArray *a) {
    if (!a || !a->release) return;
    export_array *p = a->private_data;
    for (int64_t i = 0; i < a->n_children; i++)
        if (a->children[i]->release) a->children[i]->release(a->children[i]);
    if (a->dictionary && a->dictionary->release) a->dictionary->release(a->dictionary);
    for (int k = 0; k < 3; k++) pt_buffer_release(p->bufs[k]);
    pt_free(p->children);
    pt_free(p->child_storage);
    pt_free(p);
    a->release = NULL;
}

/* Initialises an exported schema with `nchildren` zeroed child slots. */
static pt_status schema_init(struct ArrowSchema *s, const char *format, const char *name,
                             int64_t flags, int64_t nchildren, pt_error *err) {
    memset(s, 0, sizeof *s);
    export_schema *p = pt_calloc(1, sizeof *p);
    if (!p) return pt_error_set(err, PT_ENOMEM, "out of memory exporting a schema");
    s->private_data = p;
    s->release = schema_release;
    s->format = format;
    s->flags = flags;
    if (name) {
        p->name = pt_strdup(name);
        if (!p->name) return pt_error_set(err, PT_ENOMEM, "out of memory exporting a schema");
        s->name = p->name;
    }
    if (nchildren > 0) {
        p->children = pt_calloc((size_t)nchildren, sizeof *p->children);
        p->child_storage = pt_calloc((size_t)nchildren, sizeof *p->child_storage);
        if (!p->children || !p->child_storage)
            return pt_error_set(err, PT_ENOMEM, "out of memory exporting a schema");
        for (int64_t i = 0; i < nchildren; i++) p->children[i] = &p->child_storage[i];
        s->children = p->children;
        /* Children count only once initialised, so that a failed export
         * releases just what exists. */
    }
    return PT_OK;
}

static pt_status array_init(struct ArrowArray *a, int64_t nchildren, pt_error *err) {
    memset(a, 0, sizeof *a);
    export_array *p = pt_calloc(1, sizeof *p);
    if (!p) return pt_error_set(err, PT_ENOMEM, "out of memory exporting an array");
    a->private_data = p;
    a->release = array_release;
    a->buffers = p->buffer_ptrs;
    if (nchildren > 0) {
        p->children = pt_calloc((size_t)nchildren, sizeof *p->children);
        p->child_storage = pt_calloc((size_t)nchildren, sizeof *p->child_storage);
        if (!p->children || !p->child_storage)
            return pt_error_set(err, PT_ENOMEM, "out of memory exporting an array");
        for (int64_t i = 0; i < nchildren; i++) p->children[i] = &p->child_storage[i];
        a->children = p->children;
    }
    return PT_OK;
}

static const char *export_format(pt_type t) {
    switch (t) {
    case PT_TYPE_NULL: return "n";
    case PT_TYPE_BOOL: return "b";
    case PT_TYPE_INT32:
    case PT_TYPE_DICT: return "i";
    case PT_TYPE_INT64: return "l";
    case PT_TYPE_FLOAT32: return "f";
    case PT_TYPE_FLOAT64: return "g";
    case PT_TYPE_UTF8: return "U";
    default: return NULL;
    }
}

/* Fills schema and array (both already zeroed or to be overwritten) for c.
 * On failure both are released and left with release == NULL. */
static pt_status export_column(const pt_column *c, const char *name, struct ArrowSchema *schema,
                               struct ArrowArray *array, pt_error *err) {
    const char *fmt = export_format(c->type);
    if (!fmt) {
        memset(schema, 0, sizeof *schema);
        memset(array, 0, sizeof *array);
        return pt_error_set(err, PT_EUNSUPPORTED, "cannot export column '%s' of type %s",
                            name ? name : "", pt_type_name(c->type));
    }
    pt_status st = schema_init(schema, fmt, name, ARROW_FLAG_NULLABLE, 0, err);
    if (st == PT_OK) st = array_init(array, 0, err);
    else memset(array, 0, sizeof *array);
    if (st == PT_OK) {
        export_array *p = array->private_data;
        array->length = c->length;
        array->offset = c->offset;
        array->null_count = c->null_count;
        if (c->type == PT_TYPE_NULL) {
            array->offset = 0;
            array->n_buffers = 0;
        } else {
            int nb = c->type == PT_TYPE_UTF8 ? 3 : 2;
            pt_buffer *src[3] = {c->null_count > 0 ? c->validity : NULL, c->values, c->bytes};
            for (int k = 0; k < nb; k++) {
                p->bufs[k] = pt_buffer_retain(src[k]);
                p->buffer_ptrs[k] = src[k] ? src[k]->data : NULL;
            }
            array->n_buffers = nb;
        }
        if (c->type == PT_TYPE_DICT) {
            export_schema *ps = schema->private_data;
            st = export_column(c->dict, NULL, &ps->dict, &p->dict, err);
            if (st == PT_OK) {
                ps->dict.flags = 0; /* a dictionary has no nulls */
                schema->dictionary = &ps->dict;
                array->dictionary = &p->dict;
            }
        }
    }
    if (st != PT_OK) {
        if (schema->release) schema->release(schema);
        if (array->release) array->release(array);
    }
    return st;
}

pt_status pt_column_export(pt_column *c, const char *name, struct ArrowSchema *schema,
                           struct ArrowArray *array, pt_error *err) {
    if (!c || !schema || !array)
        return pt_error_set(err, PT_EINVAL, "pt_column_export: column, schema and array are required");
    return export_column(c, name ? name : "", schema, array, err);
}

pt_status pt_table_export(const pt_table *t, struct ArrowSchema *schema, struct ArrowArray *array,
                          pt_error *err) {
    if (!t || !schema || !array)
        return pt_error_set(err, PT_EINVAL, "pt_table_export: table, schema and array are required");
    int n = t->schema->nfields;
    pt_status st = schema_init(schema, "+s", "", 0, n, err);
    if (st == PT_OK) st = array_init(array, n, err);
    else memset(array, 0, sizeof *array);
    if (st == PT_OK) {
        array->length = t->nrows;
        array->n_buffers = 1; /* the struct's validity: absent */
        for (int i = 0; i < n && st == PT_OK; i++) {
            st = export_column(t->cols[i], t->schema->fields[i].name, schema->children[i],
                               array->children[i], err);
            if (st == PT_OK) {
                schema->n_children = i + 1;
                array->n_children = i + 1;
            }
        }
    }
    if (st != PT_OK) {
        if (schema->release) schema->release(schema);
        if (array->release) array->release(array);
    }
    return st;
}

/* ------------------------------------------------------------------------ */
/* Import                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct import_owner {
    struct ArrowArray array; /* moved from the producer */
    int64_t refs;
} import_owner;

static void owner_unref(void *ud) {
    import_owner *o = ud;
    if (!pt__ref_dec(&o->refs)) return;
    if (o->array.release) o->array.release(&o->array);
    pt_free(o);
}

/* Wraps producer memory in a buffer that keeps the owner alive. */
static pt_status wrap(import_owner *o, const void *data, int64_t size, pt_buffer **out,
                      pt_error *err) {
    pt__ref_inc(&o->refs);
    pt_status st = pt__buffer_wrap(data, size, owner_unref, o, out, err);
    if (st != PT_OK) owner_unref(o); /* cannot be the last: the importer holds one */
    return st;
}

typedef struct import_ctx {
    pt_mem *mem;
    import_owner *owner;
    const char *field; /* for messages */
} import_ctx;

static bool aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* Validity of arr as a bitmap starting at column offset `keep ? arr->offset
 * : 0`; sets c->validity (or none) and c->null_count. */
static pt_status import_validity(import_ctx *x, const struct ArrowArray *arr, bool keep,
                                 pt_column *c, pt_error *err) {
    const uint8_t *bits = arr->n_buffers > 0 ? arr->buffers[0] : NULL;
    c->null_count = 0;
    if (!bits || arr->null_count == 0) return PT_OK;
    int64_t nulls = arr->length - pt__bits_count(bits, arr->offset, arr->length);
    if (nulls == 0) return PT_OK;
    c->null_count = nulls;
    if (keep) return wrap(x->owner, bits, (arr->offset + arr->length + 7) / 8, &c->validity, err);
    PT_RETURN_NOT_OK(pt_buffer_new(x->mem, (arr->length + 7) / 8, &c->validity, err));
    c->validity->size = (arr->length + 7) / 8;
    pt__bits_copy(c->validity->data, 0, bits, arr->offset, arr->length);
    return PT_OK;
}

static pt_status need_buffers(import_ctx *x, const struct ArrowArray *arr, const char *fmt,
                              int64_t n, pt_error *err) {
    if (arr->n_buffers != n)
        return pt_error_set(err, PT_ECORRUPT,
                            "Arrow field '%s' (format '%s'): %lld buffers, expected %lld", x->field,
                            fmt, (long long)arr->n_buffers, (long long)n);
    /* Utf8 character data may be NULL when every string is empty. */
    for (int64_t k = 1; k < n && k < 2; k++)
        if (!arr->buffers[k] && arr->length > 0)
            return pt_error_set(err, PT_ECORRUPT,
                                "Arrow field '%s' (format '%s'): buffer %lld is NULL", x->field,
                                fmt, (long long)k);
    return PT_OK;
}

/* Integer of width w (1, 2, 4, 8 bytes, signed) at element i of p. */
static int64_t read_int(const void *p, int w, int64_t i) {
    switch (w) {
    case 1: return ((const int8_t *)p)[i];
    case 2: { int16_t v; memcpy(&v, (const char *)p + 2 * i, 2); return v; }
    case 4: { int32_t v; memcpy(&v, (const char *)p + 4 * i, 4); return v; }
    default: { int64_t v; memcpy(&v, (const char *)p + 8 * i, 8); return v; }
    }
}

static int int_width(char f) {
    switch (f) {
    case 'c': return 1;
    case 's': return 2;
    case 'i': return 4;
    case 'l': return 8;
    default: return 0;
    }
}

static pt_status import_array(import_ctx *x, const struct ArrowArray *arr,
                              const struct ArrowSchema *sch, pt_column **out, pt_error *err);

/* Utf8 with 32-bit ("u") or 64-bit ("U") offsets. */
static pt_status import_utf8(import_ctx *x, const struct ArrowArray *arr, bool large, pt_column *c,
                             pt_error *err) {
    const char *fmt = large ? "U" : "u";
    PT_RETURN_NOT_OK(need_buffers(x, arr, fmt, 3, err));
    const void *offs = arr->buffers[1];
    const uint8_t *data = arr->buffers[2];
    if (arr->length == 0) offs = NULL;
    int64_t n = arr->length, off = arr->offset;
    if (large && offs && aligned(offs, 8)) {
        PT_RETURN_NOT_OK(import_validity(x, arr, true, c, err));
        c->offset = off;
        const int64_t *o = offs;
        PT_RETURN_NOT_OK(wrap(x->owner, offs, (off + n + 1) * 8, &c->values, err));
        if (!data) return pt_buffer_new(x->mem, 0, &c->bytes, err);
        return wrap(x->owner, data, o[off + n], &c->bytes, err);
    }
    /* Widen (or realign) the offsets; the character data stays shared. */
    PT_RETURN_NOT_OK(import_validity(x, arr, false, c, err));
    PT_RETURN_NOT_OK(pt_buffer_new(x->mem, (n + 1) * 8, &c->values, err));
    int64_t *o = (int64_t *)c->values->data;
    for (int64_t i = 0; i <= n && offs; i++) o[i] = read_int(offs, large ? 8 : 4, off + i);
    c->values->size = (n + 1) * 8;
    for (int64_t i = 0; i < n; i++) {
        if (o[i + 1] < o[i] || o[i] < 0)
            return pt_error_set(err, PT_ECORRUPT,
                                "Arrow field '%s' (format '%s'): offsets decrease at row %lld",
                                x->field, fmt, (long long)i);
    }
    if (data && n > 0) return wrap(x->owner, data, o[n], &c->bytes, err);
    if (n > 0 && o[n] > 0)
        return pt_error_set(err, PT_ECORRUPT,
                            "Arrow field '%s' (format '%s'): %lld bytes of text but no data buffer",
                            x->field, fmt, (long long)o[n]);
    return pt_buffer_new(x->mem, 0, &c->bytes, err);
}

static pt_status import_dict(import_ctx *x, const struct ArrowArray *arr,
                             const struct ArrowSchema *sch, pt_column *c, pt_error *err) {
    const char *fmt = sch->format;
    int w = fmt[1] == 0 ? int_width(fmt[0]) : 0;
    if (!w)
        return pt_error_set(err, PT_EUNSUPPORTED,
                            "Arrow field '%s': dictionary indices of format '%s' are not "
                            "supported (expected c, s, i or l)",
                            x->field, fmt);
    if (!arr->dictionary)
        return pt_error_set(err, PT_ECORRUPT,
                            "Arrow field '%s': the schema has a dictionary but the array has none",
                            x->field);
    const char *dfmt = sch->dictionary->format;
    if (!dfmt || (strcmp(dfmt, "u") != 0 && strcmp(dfmt, "U") != 0))
        return pt_error_set(err, PT_EUNSUPPORTED,
                            "Arrow field '%s': dictionary values of format '%s' are not supported "
                            "(expected u or U)",
                            x->field, dfmt ? dfmt : "(null)");
    PT_RETURN_NOT_OK(need_buffers(x, arr, fmt, 2, err));
    pt_column *dict;
    PT_RETURN_NOT_OK(import_array(x, arr->dictionary, sch->dictionary, &dict, err));
    c->dict = dict;
    if (dict->null_count > 0)
        return pt_error_set(err, PT_EUNSUPPORTED,
                            "Arrow field '%s': dictionaries with null entries are not supported",
                            x->field);
    int64_t n = arr->length;
    const void *idx = arr->buffers[1];
    bool keep = w == 4 && aligned(idx, 4);
    PT_RETURN_NOT_OK(import_validity(x, arr, keep, c, err));
    if (keep) {
        c->offset = arr->offset;
        PT_RETURN_NOT_OK(wrap(x->owner, idx, (arr->offset + n) * 4, &c->values, err));
    } else {
        PT_RETURN_NOT_OK(pt_buffer_new(x->mem, n * 4, &c->values, err));
        c->values->size = n * 4;
    }
    /* Check every valid index (and narrow when converting): a bad index
     * would otherwise read outside the dictionary later. */
    int32_t *dst = keep ? NULL : (int32_t *)c->values->data;
    for (int64_t i = 0; i < n; i++) {
        bool valid = !c->validity || pt_bit_get(c->validity->data, c->offset + i);
        int64_t k = valid ? read_int(idx, w, arr->offset + i) : 0;
        if (k < 0 || k >= dict->length)
            return pt_error_set(err, PT_ECORRUPT,
                                "Arrow field '%s': row %lld has dictionary index %lld, outside "
                                "[0, %lld)",
                                x->field, (long long)i, (long long)k, (long long)dict->length);
        if (dst) dst[i] = (int32_t)k;
    }
    return PT_OK;
}

static pt_status import_array(import_ctx *x, const struct ArrowArray *arr,
                              const struct ArrowSchema *sch, pt_column **out, pt_error *err) {
    *out = NULL;
    const char *fmt = sch->format ? sch->format : "(null)";
    if (arr->length < 0 || arr->offset < 0)
        return pt_error_set(err, PT_ECORRUPT, "Arrow field '%s': negative length or offset",
                            x->field);
    pt_type type;
    if (sch->dictionary) type = PT_TYPE_DICT;
    else if (!strcmp(fmt, "n")) type = PT_TYPE_NULL;
    else if (!strcmp(fmt, "b")) type = PT_TYPE_BOOL;
    else if (!strcmp(fmt, "c") || !strcmp(fmt, "s") || !strcmp(fmt, "i")) type = PT_TYPE_INT32;
    else if (!strcmp(fmt, "l")) type = PT_TYPE_INT64;
    else if (!strcmp(fmt, "f")) type = PT_TYPE_FLOAT32;
    else if (!strcmp(fmt, "g")) type = PT_TYPE_FLOAT64;
    else if (!strcmp(fmt, "u") || !strcmp(fmt, "U")) type = PT_TYPE_UTF8;
    else
        return pt_error_set(err, PT_EUNSUPPORTED,
                            "Arrow field '%s': format '%s' is not supported (supported: n, b, c, "
                            "s, i, l, f, g, u, U and dictionaries of u/U)",
                            x->field, fmt);
    pt_column *c;
    PT_RETURN_NOT_OK(pt__column_alloc(type, &c, err));
    c->length = arr->length;
    pt_status st = PT_OK;
    switch (type) {
    case PT_TYPE_NULL:
        st = pt_buffer_new(x->mem, (arr->length + 7) / 8, &c->validity, err);
        if (st == PT_OK) c->validity->size = (arr->length + 7) / 8;
        c->null_count = arr->length;
        break;
    case PT_TYPE_BOOL:
        st = need_buffers(x, arr, fmt, 2, err);
        if (st == PT_OK) st = import_validity(x, arr, true, c, err);
        c->offset = arr->offset;
        if (st == PT_OK) {
            if (arr->length == 0 && !arr->buffers[1]) st = pt_buffer_new(x->mem, 0, &c->values, err);
            else st = wrap(x->owner, arr->buffers[1], (arr->offset + arr->length + 7) / 8, &c->values, err);
        }
        break;
    case PT_TYPE_UTF8: st = import_utf8(x, arr, fmt[0] == 'U', c, err); break;
    case PT_TYPE_DICT: st = import_dict(x, arr, sch, c, err); break;
    default: {
        int src_w = fmt[0] == 'c' ? 1 : fmt[0] == 's' ? 2 : fmt[0] == 'l' || fmt[0] == 'g' ? 8 : 4;
        int w = pt_type_width(type);
        st = need_buffers(x, arr, fmt, 2, err);
        if (st != PT_OK) break;
        const void *v = arr->buffers[1];
        if (src_w == w && v && aligned(v, (size_t)w)) {
            st = import_validity(x, arr, true, c, err);
            c->offset = arr->offset;
            if (st == PT_OK) st = wrap(x->owner, v, (arr->offset + arr->length) * w, &c->values, err);
            break;
        }
        st = import_validity(x, arr, false, c, err);
        if (st == PT_OK) st = pt_buffer_new(x->mem, arr->length * w, &c->values, err);
        if (st != PT_OK) break;
        c->values->size = arr->length * w;
        if (src_w == w) { /* same type, misaligned: plain copy */
            if (arr->length > 0)
                memcpy(c->values->data, (const char *)v + arr->offset * w, (size_t)(arr->length * w));
        } else { /* int8/int16 widened to int32 */
            int32_t *d = (int32_t *)c->values->data;
            for (int64_t i = 0; i < arr->length; i++) d[i] = (int32_t)read_int(v, src_w, arr->offset + i);
        }
    }
    }
    if (st != PT_OK) {
        pt_column_release(c);
        return st;
    }
    *out = c;
    return PT_OK;
}

/* Moves `array` into a new owner holding one reference (the importer's). */
static pt_status take_array(struct ArrowArray *array, import_owner **out, pt_error *err) {
    *out = NULL;
    if (!array || !array->release)
        return pt_error_set(err, PT_EINVAL, "Arrow import: the array is NULL or already released");
    import_owner *o = pt_malloc(sizeof *o);
    if (!o) {
        array->release(array); /* ownership was handed to us, also on failure */
        array->release = NULL;
        return pt_error_set(err, PT_ENOMEM, "out of memory importing an Arrow array");
    }
    o->array = *array;
    o->refs = 1;
    array->release = NULL;
    *out = o;
    return PT_OK;
}

pt_status pt_column_import(pt_mem *mem, struct ArrowArray *array, const struct ArrowSchema *schema,
                           pt_column **out, pt_error *err) {
    *out = NULL;
    if (!schema || !schema->format) {
        if (array && array->release) {
            array->release(array);
            array->release = NULL;
        }
        return pt_error_set(err, PT_EINVAL, "Arrow import: the schema is NULL or has no format");
    }
    import_owner *o;
    PT_RETURN_NOT_OK(take_array(array, &o, err));
    import_ctx x = {mem, o, schema->name ? schema->name : ""};
    pt_status st = import_array(&x, &o->array, schema, out, err);
    owner_unref(o);
    return st;
}

pt_status pt_table_import(pt_mem *mem, struct ArrowArray *array, const struct ArrowSchema *schema,
                          pt_table **out, pt_error *err) {
    *out = NULL;
    if (!schema || !schema->format || strcmp(schema->format, "+s") != 0) {
        const char *f = schema && schema->format ? schema->format : "(null)";
        if (array && array->release) {
            array->release(array);
            array->release = NULL;
        }
        return pt_error_set(err, PT_EUNSUPPORTED,
                            "Arrow table import: format '%s' is not a struct ('+s')", f);
    }
    import_owner *o;
    PT_RETURN_NOT_OK(take_array(array, &o, err));
    const struct ArrowArray *a = &o->array;
    int n = (int)schema->n_children;
    pt_status st = PT_OK;
    if (a->n_children != schema->n_children || schema->n_children > INT32_MAX)
        st = pt_error_set(err, PT_ECORRUPT,
                          "Arrow table import: the schema has %lld children, the array %lld",
                          (long long)schema->n_children, (long long)a->n_children);
    else if (a->n_buffers > 0 && a->buffers[0] && a->null_count != 0)
        st = pt_error_set(err, PT_EUNSUPPORTED,
                          "Arrow table import: null rows in the struct itself are not supported");
    pt_column **cols = NULL;
    const char **names = NULL;
    pt_type *types = NULL;
    if (st == PT_OK) {
        cols = pt_calloc(n > 0 ? (size_t)n : 1, sizeof *cols);
        names = pt_calloc(n > 0 ? (size_t)n : 1, sizeof *names);
        types = pt_calloc(n > 0 ? (size_t)n : 1, sizeof *types);
        if (!cols || !names || !types)
            st = pt_error_set(err, PT_ENOMEM, "out of memory importing an Arrow table");
    }
    for (int i = 0; i < n && st == PT_OK; i++) {
        const struct ArrowSchema *cs = schema->children[i];
        const struct ArrowArray *ca = a->children[i];
        names[i] = cs->name ? cs->name : "";
        import_ctx x = {mem, o, names[i]};
        if (!cs->format) {
            st = pt_error_set(err, PT_EINVAL, "Arrow field '%s' has no format", names[i]);
            break;
        }
        if (ca->length < a->offset + a->length) {
            st = pt_error_set(err, PT_ECORRUPT,
                              "Arrow field '%s': %lld rows, the struct needs %lld", names[i],
                              (long long)ca->length, (long long)(a->offset + a->length));
            break;
        }
        st = import_array(&x, ca, cs, &cols[i], err);
        /* The struct's own offset and length select rows of every child. */
        if (st == PT_OK && (a->offset != 0 || ca->length != a->length)) {
            pt_column *s;
            st = pt_column_slice(cols[i], a->offset, a->length, &s, err);
            pt_column_release(cols[i]);
            cols[i] = s;
        }
        if (st == PT_OK) types[i] = cols[i]->type;
    }
    pt_schema *s = NULL;
    if (st == PT_OK) st = pt_schema_new(n, names, types, &s, err);
    if (st == PT_OK) {
        st = pt_table_new(s, cols, out, err);
        if (st == PT_OK && n == 0) (*out)->nrows = a->length;
    } else if (cols) {
        for (int i = 0; i < n; i++) pt_column_release(cols[i]);
    }
    pt_free(cols);
    pt_free(names);
    pt_free(types);
    owner_unref(o);
    return st;
}
