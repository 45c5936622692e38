/*
 * sql_catalog.c - the catalog of named frames that SQL queries read with
 * FROM name. A small array: catalogs hold a handful of tables and lookups
 * happen once per FROM item, so a hash table would buy nothing.
 */
#include <string.h>
#include <strings.h>

#include "frame/sql.h"

typedef struct cat_entry {
    char *name;
    pt_frame *frame;
} cat_entry;

struct pt_catalog {
    pt_ctx *ctx;
    cat_entry *e;
    int n, cap;
};

pt_status pt_catalog_new(pt_ctx *ctx, pt_catalog **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_catalog_new: out is NULL");
    *out = NULL;
    pt_catalog *c = pt_calloc(1, sizeof *c);
    if (!c) return pt_error_set(err, PT_ENOMEM, "pt_catalog_new: out of memory");
    c->ctx = ctx;
    *out = c;
    return PT_OK;
}

void pt_catalog_free(pt_catalog *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) {
        pt_free(c->e[i].name);
        pt_frame_free(c->e[i].frame);
    }
    pt_free(c->e);
    pt_free(c);
}

pt_status pt_catalog_register(pt_catalog *c, const char *name, pt_frame *f, pt_error *err) {
    if (!c) return pt_error_set(err, PT_EINVAL, "pt_catalog_register: catalog is NULL");
    if (!name || !*name)
        return pt_error_set(err, PT_EINVAL, "pt_catalog_register: name is NULL or empty");
    if (!f) return pt_error_set(err, PT_EINVAL, "pt_catalog_register: frame is NULL");
    /* Re-registering a name replaces the frame, like CREATE OR REPLACE VIEW. */
    for (int i = 0; i < c->n; i++) {
        if (strcmp(c->e[i].name, name) == 0) {
            pt_frame *old = c->e[i].frame;
            c->e[i].frame = pt_frame_ref(f);
            pt_frame_free(old);
            return PT_OK;
        }
    }
    if (c->n == c->cap) {
        int nc = c->cap ? c->cap * 2 : 8;
        cat_entry *ne = pt_realloc(c->e, (size_t)nc * sizeof *ne);
        if (!ne) return pt_error_set(err, PT_ENOMEM, "pt_catalog_register: out of memory");
        c->e = ne;
        c->cap = nc;
    }
    char *dup = pt_strdup(name);
    if (!dup) return pt_error_set(err, PT_ENOMEM, "pt_catalog_register: out of memory");
    c->e[c->n].name = dup;
    c->e[c->n].frame = pt_frame_ref(f);
    c->n++;
    return PT_OK;
}

pt_frame *pt__catalog_find(const pt_catalog *c, const char *name, bool quoted) {
    if (!c) return NULL;
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->e[i].name, name) == 0) return c->e[i].frame;
    if (quoted) return NULL;
    pt_frame *found = NULL;
    for (int i = 0; i < c->n; i++) {
        if (strcasecmp(c->e[i].name, name) == 0) {
            if (found) return NULL; /* ambiguous by case: only an exact match will do */
            found = c->e[i].frame;
        }
    }
    return found;
}

void pt__catalog_names(const pt_catalog *c, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    if (!c || c->n == 0) {
        snprintf(buf, cap, "none");
        return;
    }
    for (int i = 0; i < c->n && n + 1 < cap; i++) {
        int w = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", c->e[i].name);
        if (w < 0) break;
        n += (size_t)w;
    }
}
