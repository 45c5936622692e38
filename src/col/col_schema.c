/*
 * col_schema.c - schemas: ordered (name, type) fields, lookup by name and the
 * "name:type,name:type" text form used by the CLI's --schema.
 */
#include <string.h>

#include "col/col_internal.h"

static pt_schema *schema_alloc(int n) {
    pt_schema *s = pt_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->fields = pt_calloc(n > 0 ? (size_t)n : 1, sizeof *s->fields);
    if (!s->fields) {
        pt_free(s);
        return NULL;
    }
    return s;
}

pt_status pt_schema_new(int n, const char *const *names, const pt_type *types, pt_schema **out,
                        pt_error *err) {
    *out = NULL;
    if (n < 0) return pt_error_set(err, PT_EINVAL, "pt_schema_new: n is %d", n);
    if (n > 0 && (!names || !types))
        return pt_error_set(err, PT_EINVAL, "pt_schema_new: names and types must not be NULL");
    for (int i = 0; i < n; i++) {
        if (!names[i])
            return pt_error_set(err, PT_EINVAL, "pt_schema_new: names[%d] is NULL", i);
        if ((int)types[i] < 0 || types[i] >= PT_TYPE_COUNT)
            return pt_error_set(err, PT_EINVAL, "pt_schema_new: types[%d] (field '%s') is %d",
                                i, names[i], (int)types[i]);
    }
    pt_schema *s = schema_alloc(n);
    if (!s) return pt_error_set(err, PT_ENOMEM, "out of memory allocating a schema");
    for (int i = 0; i < n; i++) {
        s->fields[i].name = pt_strdup(names[i]);
        s->fields[i].type = types[i];
        s->nfields = i + 1;
        if (!s->fields[i].name) {
            pt_schema_free(s);
            return pt_error_set(err, PT_ENOMEM, "out of memory allocating a schema");
        }
    }
    *out = s;
    return PT_OK;
}

pt_status pt_schema_copy(const pt_schema *s, pt_schema **out, pt_error *err) {
    *out = NULL;
    if (!s) return pt_error_set(err, PT_EINVAL, "pt_schema_copy: schema is NULL");
    pt_schema *c = schema_alloc(s->nfields);
    if (!c) return pt_error_set(err, PT_ENOMEM, "out of memory copying a schema");
    for (int i = 0; i < s->nfields; i++) {
        c->fields[i].name = pt_strdup(s->fields[i].name);
        c->fields[i].type = s->fields[i].type;
        c->nfields = i + 1;
        if (!c->fields[i].name) {
            pt_schema_free(c);
            return pt_error_set(err, PT_ENOMEM, "out of memory copying a schema");
        }
    }
    *out = c;
    return PT_OK;
}

void pt_schema_free(pt_schema *s) {
    if (!s) return;
    for (int i = 0; i < s->nfields; i++) pt_free(s->fields[i].name);
    pt_free(s->fields);
    pt_free(s);
}

int pt_schema_find(const pt_schema *s, const char *name) {
    if (!s || !name) return -1;
    for (int i = 0; i < s->nfields; i++)
        if (strcmp(s->fields[i].name, name) == 0) return i;
    return -1;
}

/* Copies text[a, b) without surrounding blanks into a new string. */
static char *trimmed(const char *a, const char *b) {
    while (a < b && (*a == ' ' || *a == '\t')) a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
    return pt_strndup(a, (size_t)(b - a));
}

pt_status pt_schema_parse(const char *text, pt_schema **out, pt_error *err) {
    *out = NULL;
    if (!text) return pt_error_set(err, PT_EINVAL, "pt_schema_parse: text is NULL");
    int n = 1;
    for (const char *p = text; *p; p++) n += *p == ',';
    pt_schema *s = schema_alloc(n);
    if (!s) return pt_error_set(err, PT_ENOMEM, "out of memory parsing a schema");
    pt_status st = PT_OK;
    const char *p = text;
    for (int i = 0; i < n; i++) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *colon = memchr(p, ':', (size_t)(end - p));
        /* A colon is required; the last one separates the type so that names
         * may contain colons ("a:b:int64"). */
        for (const char *q = colon; q && q < end; q++)
            if (*q == ':') colon = q;
        char *entry = trimmed(p, end);
        if (!entry) {
            st = pt_error_set(err, PT_ENOMEM, "out of memory parsing a schema");
            break;
        }
        if (!colon) {
            st = pt_error_set(err, PT_EINVAL,
                              "schema '%s', field %d ('%s'): expected name:type", text, i + 1,
                              entry);
            pt_free(entry);
            break;
        }
        pt_free(entry);
        char *name = trimmed(p, colon);
        char *tname = trimmed(colon + 1, end);
        if (!name || !tname) {
            pt_free(name);
            pt_free(tname);
            st = pt_error_set(err, PT_ENOMEM, "out of memory parsing a schema");
            break;
        }
        s->fields[i].name = name;
        s->nfields = i + 1;
        if (!*name) {
            st = pt_error_set(err, PT_EINVAL, "schema '%s', field %d: empty name", text, i + 1);
        } else if ((st = pt_type_parse(tname, &s->fields[i].type, err)) != PT_OK) {
            pt_error_prefix(err, "schema '%s', field %d ('%s')", text, i + 1, name);
        } else {
            for (int j = 0; j < i; j++) {
                if (strcmp(s->fields[j].name, name) == 0) {
                    st = pt_error_set(err, PT_EINVAL,
                                      "schema '%s': field '%s' appears twice (fields %d and %d)",
                                      text, name, j + 1, i + 1);
                    break;
                }
            }
        }
        pt_free(tname);
        if (st != PT_OK) break;
        p = *end ? end + 1 : end;
    }
    if (st != PT_OK) {
        pt_schema_free(s);
        return st;
    }
    *out = s;
    return PT_OK;
}
