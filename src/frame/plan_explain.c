/*
 * plan_explain.c - prints logical plans, one node per line, indented by
 * depth, for pt_frame_explain (before and after optimisation).
 */
#include <stdarg.h>
#include <string.h>

#include "frame/expr.h"
#include "frame/plan.h"

static void put(char **buf, size_t *len, size_t *cap, const char *fmt, ...) PT_PRINTF(4, 5);
static void put(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    if (!*buf && *cap != (size_t)-1) {
        *cap = 1024;
        *buf = pt_malloc(*cap);
        if (!*buf) {
            *cap = (size_t)-1; /* out of memory: stop writing */
            return;
        }
        (*buf)[0] = '\0';
        *len = 0;
    }
    if (!*buf) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (*len + (size_t)n < *cap) {
            *len += (size_t)n;
            return;
        }
        char *b = pt_realloc(*buf, *cap * 2 + (size_t)n);
        if (!b) return;
        *buf = b;
        *cap = *cap * 2 + (size_t)n;
    }
}

static void put_exprs(char **buf, size_t *len, size_t *cap, pt_expr *const *e, char *const *names,
                      int n, const bool *desc) {
    char tmp[512];
    for (int i = 0; i < n; i++) {
        pt_expr_to_string(e[i], tmp, sizeof tmp);
        put(buf, len, cap, "%s%s", i ? ", " : "", tmp);
        if (names && names[i] && e[i]->kind != PT__E_ALIAS && strcmp(names[i], tmp) != 0)
            put(buf, len, cap, " AS %s", names[i]);
        if (desc) put(buf, len, cap, "%s", desc[i] ? " DESC" : "");
    }
}

static const char *join_name(pt_join_type t) {
    switch (t) {
    case PT_JOIN_INNER: return "inner";
    case PT_JOIN_LEFT: return "left";
    case PT_JOIN_RIGHT: return "right";
    default: return "full";
    }
}

void pt__plan_print(const pt_frame *f, int indent, char **buf, size_t *len, size_t *cap) {
    char tmp[512];
    put(buf, len, cap, "%*s%s", indent * 2, "", pt__node_name(f->kind));
    switch (f->kind) {
    case PT__N_SCAN_CSV:
        put(buf, len, cap, " '%s'", f->paths[0]);
        if (f->npaths > 1) put(buf, len, cap, " (+%d more files)", f->npaths - 1);
        break;
    case PT__N_SCAN_TABLE: put(buf, len, cap, " (%lld partitions)", (long long)f->nparts); break;
    case PT__N_SCAN_NATIVE: put(buf, len, cap, " '%s'", f->native_path); break;
    case PT__N_FILTER: put(buf, len, cap, " %s", pt_expr_to_string(f->pred, tmp, sizeof tmp)); break;
    case PT__N_PROJECT:
        put(buf, len, cap, " [");
        put_exprs(buf, len, cap, f->exprs, f->names, f->nexprs, NULL);
        put(buf, len, cap, "]");
        break;
    case PT__N_AGG:
        put(buf, len, cap, " keys=[");
        put_exprs(buf, len, cap, f->keys, f->key_names, f->nkeys, NULL);
        put(buf, len, cap, "] aggs=[");
        put_exprs(buf, len, cap, f->aggs, NULL, f->naggs, NULL);
        put(buf, len, cap, "]");
        break;
    case PT__N_SORT:
    case PT__N_TOPN:
        put(buf, len, cap, " [");
        put_exprs(buf, len, cap, f->keys, NULL, f->nkeys, f->desc);
        put(buf, len, cap, "]");
        if (f->kind == PT__N_TOPN) {
            put(buf, len, cap, " limit=%lld", (long long)f->limit);
            if (f->offset) put(buf, len, cap, " offset=%lld", (long long)f->offset);
        }
        break;
    case PT__N_LIMIT:
        put(buf, len, cap, " %lld", (long long)f->limit);
        if (f->offset) put(buf, len, cap, " offset=%lld", (long long)f->offset);
        break;
    case PT__N_JOIN:
        put(buf, len, cap, " %s on", join_name(f->join_type));
        for (int i = 0; i < f->njkeys; i++)
            put(buf, len, cap, "%s %s = %s", i ? " and" : "", f->lkeys[i], f->rkeys[i]);
        break;
    case PT__N_ROWNUM:
        put(buf, len, cap, " %s partition=[", f->rn_name);
        put_exprs(buf, len, cap, f->keys, NULL, f->nkeys, NULL);
        put(buf, len, cap, "] order=[");
        put_exprs(buf, len, cap, f->exprs, NULL, f->nexprs, f->desc);
        put(buf, len, cap, "]");
        if (f->limit > 0) put(buf, len, cap, " top=%lld", (long long)f->limit);
        break;
    case PT__N_REPART: {
        static const char *const how[] = {"rows", "hash", "range"};
        put(buf, len, cap, " %s n=%lld", how[f->part_how], (long long)f->part_n);
        for (int i = 0; i < f->npart_keys; i++)
            put(buf, len, cap, "%s%s", i ? ", " : " keys=", f->part_keys[i]);
        break;
    }
    default: break;
    }
    bool scan = f->kind == PT__N_SCAN_CSV || f->kind == PT__N_SCAN_TABLE ||
                f->kind == PT__N_SCAN_NATIVE;
    if (scan) {
        if (f->scan_cols) {
            put(buf, len, cap, " columns=[");
            for (int i = 0; i < f->nscan_cols; i++)
                put(buf, len, cap, "%s%s", i ? ", " : "", f->scan_cols[i]);
            put(buf, len, cap, "]");
        }
        if (f->scan_pred)
            put(buf, len, cap, " filter=%s", pt_expr_to_string(f->scan_pred, tmp, sizeof tmp));
        if (f->nexprs > 0) {
            put(buf, len, cap, " project=[");
            put_exprs(buf, len, cap, f->exprs, f->names, f->nexprs, NULL);
            put(buf, len, cap, "]");
        }
    }
    put(buf, len, cap, "\n");
    for (int i = 0; i < 2; i++)
        if (f->in[i]) pt__plan_print(f->in[i], indent + 1, buf, len, cap);
}

pt_status pt_frame_explain_string(pt_frame *f, char **out, pt_error *err) {
    *out = NULL;
    if (!f) return pt_error_set(err, PT_EINVAL, "explain: frame is NULL");
    pt_frame *opt;
    PT_RETURN_NOT_OK(pt__optimize(f, &opt, err));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    put(&buf, &len, &cap, "== logical plan ==\n");
    pt__plan_print(f, 0, &buf, &len, &cap);
    put(&buf, &len, &cap, "== optimised plan ==\n");
    pt__plan_print(opt, 0, &buf, &len, &cap);
    pt_frame_free(opt);
    if (!buf || cap == (size_t)-1) {
        pt_free(buf);
        return pt_error_set(err, PT_ENOMEM, "explain: out of memory");
    }
    *out = buf;
    return PT_OK;
}

pt_status pt_frame_explain(pt_frame *f, FILE *out, pt_error *err) {
    char *s;
    PT_RETURN_NOT_OK(pt_frame_explain_string(f, &s, err));
    size_t n = strlen(s);
    pt_status st = fwrite(s, 1, n, out) == n ? PT_OK
                                             : pt_error_set(err, PT_EIO, "explain: write failed");
    pt_free(s);
    return st;
}
