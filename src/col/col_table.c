/*
 * col_table.c - tables (a schema plus equally long columns): construction,
 * zero-copy slices and projections, concatenation and logical equality.
 */
#include <math.h>
#include <string.h>

#include "col/col_internal.h"

static void release_cols(pt_column **cols, int n) {
    if (!cols) return;
    for (int i = 0; i < n; i++) pt_column_release(cols[i]);
}

pt_status pt_table_new(pt_schema *schema, pt_column **cols, pt_table **out, pt_error *err) {
    *out = NULL;
    if (!schema) return pt_error_set(err, PT_EINVAL, "pt_table_new: schema is NULL");
    int n = schema->nfields;
    pt_status st = PT_OK;
    if (n > 0 && !cols) {
        pt_schema_free(schema);
        return pt_error_set(err, PT_EINVAL, "pt_table_new: cols is NULL for %d fields", n);
    }
    for (int i = 0; i < n && st == PT_OK; i++) {
        const pt_field *f = &schema->fields[i];
        if (!cols[i]) {
            st = pt_error_set(err, PT_EINVAL, "pt_table_new: column %d ('%s') is NULL", i, f->name);
        } else if (cols[i]->type != f->type) {
            st = pt_error_set(err, PT_EINVAL,
                              "pt_table_new: column %d ('%s') is %s but the schema says %s", i,
                              f->name, pt_type_name(cols[i]->type), pt_type_name(f->type));
        } else if (cols[i]->length != cols[0]->length) {
            st = pt_error_set(err, PT_EINVAL,
                              "pt_table_new: column %d ('%s') has %lld rows but column 0 ('%s') "
                              "has %lld",
                              i, f->name, (long long)cols[i]->length, schema->fields[0].name,
                              (long long)cols[0]->length);
        }
    }
    pt_table *t = NULL;
    if (st == PT_OK) {
        t = pt_calloc(1, sizeof *t);
        if (t) t->cols = pt_calloc(n > 0 ? (size_t)n : 1, sizeof *t->cols);
        if (!t || !t->cols) {
            if (t) pt_free(t);
            st = pt_error_set(err, PT_ENOMEM, "out of memory allocating a table");
        }
    }
    if (st != PT_OK) {
        release_cols(cols, n);
        pt_schema_free(schema);
        return st;
    }
    t->schema = schema;
    for (int i = 0; i < n; i++) t->cols[i] = cols[i];
    t->nrows = n > 0 ? cols[0]->length : 0;
    *out = t;
    return PT_OK;
}

void pt_table_free(pt_table *t) {
    if (!t) return;
    if (t->schema) release_cols(t->cols, t->schema->nfields);
    pt_free(t->cols);
    pt_schema_free(t->schema);
    pt_free(t);
}

/* Builds a table from a schema copy and `n` new column references, giving
 * everything up on failure. */
static pt_status table_from(const pt_schema *model, pt_column **cols, int n, pt_table **out,
                            pt_error *err) {
    pt_schema *s;
    pt_status st = pt_schema_copy(model, &s, err);
    if (st != PT_OK) {
        release_cols(cols, n);
        return st;
    }
    return pt_table_new(s, cols, out, err);
}

pt_status pt_table_slice(const pt_table *t, int64_t offset, int64_t length, pt_table **out,
                         pt_error *err) {
    *out = NULL;
    if (!t) return pt_error_set(err, PT_EINVAL, "pt_table_slice: table is NULL");
    if (offset < 0 || length < 0 || offset > t->nrows || length > t->nrows - offset)
        return pt_error_set(err, PT_EINVAL,
                            "pt_table_slice: rows [%lld, %lld) out of range for a table of %lld rows",
                            (long long)offset, (long long)offset + length, (long long)t->nrows);
    int n = t->schema->nfields;
    pt_column **cols = pt_calloc(n > 0 ? (size_t)n : 1, sizeof *cols);
    if (!cols) return pt_error_set(err, PT_ENOMEM, "out of memory slicing a table");
    pt_status st = PT_OK;
    for (int i = 0; i < n && st == PT_OK; i++)
        st = pt_column_slice(t->cols[i], offset, length, &cols[i], err);
    if (st == PT_OK) st = table_from(t->schema, cols, n, out, err);
    else release_cols(cols, n);
    pt_free(cols);
    if (st == PT_OK && n == 0) (*out)->nrows = length;
    return st;
}

pt_status pt_table_select(const pt_table *t, const char *const *names, int n, pt_table **out,
                          pt_error *err) {
    *out = NULL;
    if (!t || n < 0 || (n > 0 && !names))
        return pt_error_set(err, PT_EINVAL, "pt_table_select: bad arguments (table, names, n=%d)", n);
    for (int i = 0; i < n; i++) {
        if (names[i] && pt_schema_find(t->schema, names[i]) >= 0) continue;
        char avail[PT_ERROR_MSG_SIZE / 2];
        size_t len = 0;
        avail[0] = 0;
        for (int j = 0; j < t->schema->nfields && len < sizeof avail; j++) {
            int w = snprintf(avail + len, sizeof avail - len, "%s%s", j ? ", " : "",
                             t->schema->fields[j].name);
            if (w < 0) break;
            len += (size_t)w;
        }
        return pt_error_set(err, PT_EINVAL, "no column '%s' (available: %s)",
                            names[i] ? names[i] : "(null)", avail);
    }
    pt_column **cols = pt_calloc(n > 0 ? (size_t)n : 1, sizeof *cols);
    const char **fnames = pt_calloc(n > 0 ? (size_t)n : 1, sizeof *fnames);
    pt_type *types = pt_calloc(n > 0 ? (size_t)n : 1, sizeof *types);
    pt_status st = PT_OK;
    if (!cols || !fnames || !types) {
        st = pt_error_set(err, PT_ENOMEM, "out of memory selecting columns");
    } else {
        for (int i = 0; i < n; i++) {
            int k = pt_schema_find(t->schema, names[i]);
            fnames[i] = t->schema->fields[k].name;
            types[i] = t->schema->fields[k].type;
            cols[i] = pt_column_retain(t->cols[k]);
        }
        pt_schema *s;
        st = pt_schema_new(n, fnames, types, &s, err);
        if (st == PT_OK) {
            st = pt_table_new(s, cols, out, err);
            /* Also on failure the references were taken over. */
            for (int i = 0; i < n; i++) cols[i] = NULL;
        }
        if (cols) release_cols(cols, n);
    }
    pt_free(cols);
    pt_free(fnames);
    pt_free(types);
    /* A table with no columns still has the rows of its source. */
    if (st == PT_OK && n == 0) (*out)->nrows = t->nrows;
    return st;
}

pt_status pt_table_concat(pt_mem *mem, pt_table *const *tables, int n, pt_table **out,
                          pt_error *err) {
    *out = NULL;
    if (n <= 0 || !tables)
        return pt_error_set(err, PT_EINVAL, "pt_table_concat: need at least one table (n=%d)", n);
    const pt_schema *s0 = tables[0]->schema;
    for (int k = 1; k < n; k++) {
        const pt_schema *s = tables[k]->schema;
        if (s->nfields != s0->nfields)
            return pt_error_set(err, PT_EINVAL,
                                "pt_table_concat: table %d has %d columns, table 0 has %d", k,
                                s->nfields, s0->nfields);
        for (int i = 0; i < s->nfields; i++) {
            if (strcmp(s->fields[i].name, s0->fields[i].name) != 0 ||
                s->fields[i].type != s0->fields[i].type)
                return pt_error_set(err, PT_EINVAL,
                                    "pt_table_concat: table %d column %d is '%s' %s, table 0 has "
                                    "'%s' %s",
                                    k, i, s->fields[i].name, pt_type_name(s->fields[i].type),
                                    s0->fields[i].name, pt_type_name(s0->fields[i].type));
        }
    }
    int nf = s0->nfields;
    pt_column **cols = pt_calloc(nf > 0 ? (size_t)nf : 1, sizeof *cols);
    pt_column **parts = pt_calloc((size_t)n, sizeof *parts);
    pt_status st = PT_OK;
    if (!cols || !parts) st = pt_error_set(err, PT_ENOMEM, "out of memory concatenating tables");
    for (int i = 0; i < nf && st == PT_OK; i++) {
        for (int k = 0; k < n; k++) parts[k] = tables[k]->cols[i];
        st = pt_column_concat(mem, parts, n, &cols[i], err);
        if (st != PT_OK) pt_error_prefix(err, "column '%s'", s0->fields[i].name);
    }
    if (st == PT_OK) st = table_from(s0, cols, nf, out, err);
    else release_cols(cols, nf);
    if (st == PT_OK && nf == 0) {
        int64_t rows = 0;
        for (int k = 0; k < n; k++) rows += tables[k]->nrows;
        (*out)->nrows = rows;
    }
    pt_free(cols);
    pt_free(parts);
    return st;
}

pt_column *pt_table_column(const pt_table *t, const char *name) {
    if (!t) return NULL;
    int i = pt_schema_find(t->schema, name);
    return i < 0 ? NULL : t->cols[i];
}

int64_t pt_table_nbytes(const pt_table *t) {
    if (!t) return 0;
    int64_t n = 0;
    for (int i = 0; i < t->schema->nfields; i++) n += pt_column_nbytes(t->cols[i]);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Equality                                                                 */
/* ------------------------------------------------------------------------ */

static bool cell_equal(const pt_column *a, const pt_column *b, int64_t i) {
    bool va = pt_column_is_valid(a, i), vb = pt_column_is_valid(b, i);
    if (va != vb) return false;
    if (!va) return true;
    switch (a->type) {
    case PT_TYPE_NULL: return true;
    case PT_TYPE_BOOL: return pt_column_bool(a, i) == pt_column_bool(b, i);
    case PT_TYPE_INT32: return pt_column_i32(a)[i] == pt_column_i32(b)[i];
    case PT_TYPE_INT64: return pt_column_i64(a)[i] == pt_column_i64(b)[i];
    case PT_TYPE_FLOAT32: {
        float x = pt_column_f32(a)[i], y = pt_column_f32(b)[i];
        if (isnan(x) && isnan(y)) return true;
        return memcmp(&x, &y, sizeof x) == 0;
    }
    case PT_TYPE_FLOAT64: {
        double x = pt_column_f64(a)[i], y = pt_column_f64(b)[i];
        if (isnan(x) && isnan(y)) return true;
        return memcmp(&x, &y, sizeof x) == 0;
    }
    case PT_TYPE_UTF8:
    case PT_TYPE_DICT: {
        int64_t la, lb;
        const char *sa = pt_column_str(a, i, &la), *sb = pt_column_str(b, i, &lb);
        return la == lb && (la == 0 || memcmp(sa, sb, (size_t)la) == 0);
    }
    default: return false;
    }
}

/* Formats one side of a difference: strings quoted, floats with all digits. */
static void describe(const pt_column *c, int64_t i, char *buf, size_t cap) {
    char cell[64];
    if (pt_type_is_string(c->type) && pt_column_is_valid(c, i)) {
        int64_t len;
        const char *s = pt_column_str(c, i, &len);
        if (len > 40) snprintf(buf, cap, "\"%.37s...\"", s);
        else snprintf(buf, cap, "\"%.*s\"", (int)len, s);
        return;
    }
    snprintf(buf, cap, "%s", pt_column_format(c, i, 17, cell, sizeof cell));
}

bool pt_table_equal(const pt_table *a, const pt_table *b, char *why, size_t why_cap) {
    char tmp[8];
    if (!why || why_cap == 0) {
        why = tmp;
        why_cap = sizeof tmp;
    }
    why[0] = 0;
    if (!a || !b) {
        snprintf(why, why_cap, "table is NULL");
        return a == b;
    }
    const pt_schema *sa = a->schema, *sb = b->schema;
    if (sa->nfields != sb->nfields) {
        snprintf(why, why_cap, "column count: %d vs %d", sa->nfields, sb->nfields);
        return false;
    }
    for (int j = 0; j < sa->nfields; j++) {
        pt_type ta = sa->fields[j].type, tb = sb->fields[j].type;
        if (strcmp(sa->fields[j].name, sb->fields[j].name) != 0) {
            snprintf(why, why_cap, "column %d: name '%s' vs '%s'", j, sa->fields[j].name,
                     sb->fields[j].name);
            return false;
        }
        if (ta != tb && !(pt_type_is_string(ta) && pt_type_is_string(tb))) {
            snprintf(why, why_cap, "column '%s': type %s vs %s", sa->fields[j].name,
                     pt_type_name(ta), pt_type_name(tb));
            return false;
        }
    }
    if (a->nrows != b->nrows) {
        snprintf(why, why_cap, "row count: %lld vs %lld", (long long)a->nrows, (long long)b->nrows);
        return false;
    }
    for (int64_t i = 0; i < a->nrows; i++) {
        for (int j = 0; j < sa->nfields; j++) {
            if (cell_equal(a->cols[j], b->cols[j], i)) continue;
            char x[128], y[128];
            describe(a->cols[j], i, x, sizeof x);
            describe(b->cols[j], i, y, sizeof y);
            snprintf(why, why_cap, "row %lld, column '%s': %s vs %s", (long long)i,
                     sa->fields[j].name, x, y);
            return false;
        }
    }
    return true;
}
