/*
 * expr_func.c - scalar functions: the table the binder checks calls against
 * (names, arity, argument types, result type) and their vectorised
 * implementations.
 *
 * Text functions on a dictionary column whose other arguments are constants
 * run once per dictionary entry and then map through the row indices: on
 * categorical data (a few distinct values over millions of rows) that is
 * the difference between millions of string operations and a handful. When
 * the result is text, the output stays dictionary-encoded (entries that
 * became equal, e.g. lower('A') and lower('a'), are merged so that the
 * dictionary keeps distinct entries).
 */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "frame/expr.h"

#define TEXT_CAP 256

enum {
    F_ABS, F_ROUND, F_FLOOR, F_CEIL, F_SQRT, F_LN, F_LOG10, F_EXP, F_POW,
    F_LOWER, F_UPPER, F_LENGTH, F_SUBSTR, F_TRIM, F_LTRIM, F_RTRIM, F_REPLACE,
    F_LIKE, F_CONTAINS, F_STARTS, F_ENDS,
    F_CONCAT, F_COALESCE, F_NULLIF, F_GREATEST, F_LEAST, F_IF,
    F_COUNT
};

static const struct {
    const char *name;
    int id, min, max; /* max < 0: variadic */
} ftab[] = {
    {"abs", F_ABS, 1, 1},          {"round", F_ROUND, 1, 2},      {"floor", F_FLOOR, 1, 1},
    {"ceil", F_CEIL, 1, 1},        {"ceiling", F_CEIL, 1, 1},     {"sqrt", F_SQRT, 1, 1},
    {"ln", F_LN, 1, 1},            {"log10", F_LOG10, 1, 1},      {"exp", F_EXP, 1, 1},
    {"pow", F_POW, 2, 2},          {"power", F_POW, 2, 2},        {"lower", F_LOWER, 1, 1},
    {"upper", F_UPPER, 1, 1},      {"length", F_LENGTH, 1, 1},    {"char_length", F_LENGTH, 1, 1},
    {"substr", F_SUBSTR, 2, 3},    {"substring", F_SUBSTR, 2, 3}, {"trim", F_TRIM, 1, 1},
    {"ltrim", F_LTRIM, 1, 1},      {"rtrim", F_RTRIM, 1, 1},      {"replace", F_REPLACE, 3, 3},
    {"like", F_LIKE, 2, 2},        {"contains", F_CONTAINS, 2, 2}, {"starts_with", F_STARTS, 2, 2},
    {"ends_with", F_ENDS, 2, 2},   {"concat", F_CONCAT, 1, -1},   {"coalesce", F_COALESCE, 1, -1},
    {"nullif", F_NULLIF, 2, 2},    {"greatest", F_GREATEST, 1, -1}, {"least", F_LEAST, 1, -1},
    {"if", F_IF, 3, 3},
};
#define NFUNCS ((int)(sizeof ftab / sizeof ftab[0]))

int pt__func_find(const char *name) {
    if (!name) return -1;
    for (int k = 0; k < NFUNCS; k++)
        if (strcasecmp(name, ftab[k].name) == 0) return k;
    return -1;
}


bool pt__func_exists(const char *name) { return pt__func_find(name) >= 0; }

static pt_status oom(pt_error *err) {
    return pt_error_set(err, PT_ENOMEM, "out of memory evaluating a function");
}

/* ------------------------------------------------------------------------ */
/* Binding                                                                  */
/* ------------------------------------------------------------------------ */

static bool is_int(pt_type t) { return t == PT_TYPE_INT32 || t == PT_TYPE_INT64; }

static pt_status arg_error(const pt__bound *n, int k, const char *want, pt_error *err) {
    char d[TEXT_CAP];
    return pt_error_set(err, PT_ETYPE, "%s: argument %d must be %s, got %s in '%s'",
                        ftab[n->fn].name, k + 1, want, pt__bound_describe(n->args[k], d, sizeof d),
                        n->text);
}

static pt_status want_number(pt__bound *n, int k, pt_type to, pt_error *err) {
    pt_type t = n->args[k]->type;
    if (!pt_type_is_numeric(t) && t != PT_TYPE_NULL) return arg_error(n, k, "a number", err);
    return pt__bind_coerce(&n->args[k], to, err);
}

static pt_status want_string(pt__bound *n, int k, pt_error *err) {
    pt_type t = n->args[k]->type;
    if (t == PT_TYPE_NULL) return pt__bind_coerce(&n->args[k], PT_TYPE_UTF8, err);
    if (!pt_type_is_string(t)) return arg_error(n, k, "text", err);
    return PT_OK;
}

/* Unifies args [from, nargs) and casts them to the common type (text stays
 * as it is: utf8 and dict mix). Sets *t (dict results become utf8). */
static pt_status unify_args(pt__bound *n, int from, pt_type *t, pt_error *err) {
    pt_type u = PT_TYPE_NULL;
    char d[TEXT_CAP];
    for (int k = from; k < n->nargs; k++) {
        pt_type v = PT_TYPE_NULL;
        if (!pt__type_unify(u, n->args[k]->type, &v))
            return pt_error_set(err, PT_ETYPE, "%s: arguments have incompatible types: %s and %s in '%s'",
                                ftab[n->fn].name, pt_type_name(u),
                                pt__bound_describe(n->args[k], d, sizeof d), n->text);
        u = v;
    }
    if (u == PT_TYPE_DICT) u = PT_TYPE_UTF8;
    for (int k = from; k < n->nargs; k++) {
        if (pt_type_is_string(u) && pt_type_is_string(n->args[k]->type)) continue;
        PT_RETURN_NOT_OK(pt__bind_coerce(&n->args[k], u, err));
    }
    *t = u;
    return PT_OK;
}

static bool rest_const(const pt__bound *n) {
    for (int k = 1; k < n->nargs; k++)
        if (n->args[k]->kind != PT__B_CONST) return false;
    return true;
}

pt_status pt__func_bind(pt__bound *n, pt_error *err) {
    int id = ftab[n->fn].id;
    int mn = ftab[n->fn].min, mx = ftab[n->fn].max;
    if (n->nargs < mn || (mx >= 0 && n->nargs > mx)) {
        if (mx < 0)
            return pt_error_set(err, PT_EINVAL, "%s takes at least %d argument%s, got %d in '%s'",
                                ftab[n->fn].name, mn, mn == 1 ? "" : "s", n->nargs, n->text);
        if (mn == mx)
            return pt_error_set(err, PT_EINVAL, "%s takes %d argument%s, got %d in '%s'",
                                ftab[n->fn].name, mn, mn == 1 ? "" : "s", n->nargs, n->text);
        return pt_error_set(err, PT_EINVAL, "%s takes %d to %d arguments, got %d in '%s'",
                            ftab[n->fn].name, mn, mx, n->nargs, n->text);
    }
    pt_type t0 = n->args[0]->type;
    switch (id) {
    case F_ABS:
    case F_FLOOR:
    case F_CEIL:
    case F_ROUND:
        n->type = is_int(t0) ? PT_TYPE_INT64 : PT_TYPE_FLOAT64;
        PT_RETURN_NOT_OK(want_number(n, 0, n->type, err));
        if (n->nargs > 1) {
            if (!is_int(n->args[1]->type) && n->args[1]->type != PT_TYPE_NULL)
                return arg_error(n, 1, "an integer", err);
            PT_RETURN_NOT_OK(pt__bind_coerce(&n->args[1], PT_TYPE_INT64, err));
        }
        return PT_OK;
    case F_SQRT:
    case F_LN:
    case F_LOG10:
    case F_EXP:
    case F_POW:
        n->type = PT_TYPE_FLOAT64;
        for (int k = 0; k < n->nargs; k++) PT_RETURN_NOT_OK(want_number(n, k, PT_TYPE_FLOAT64, err));
        return PT_OK;
    case F_LOWER:
    case F_UPPER:
    case F_TRIM:
    case F_LTRIM:
    case F_RTRIM:
    case F_REPLACE:
    case F_SUBSTR:
        PT_RETURN_NOT_OK(want_string(n, 0, err));
        for (int k = 1; k < n->nargs; k++) {
            if (id == F_SUBSTR) {
                if (!is_int(n->args[k]->type) && n->args[k]->type != PT_TYPE_NULL)
                    return arg_error(n, k, "an integer", err);
                PT_RETURN_NOT_OK(pt__bind_coerce(&n->args[k], PT_TYPE_INT64, err));
            } else {
                PT_RETURN_NOT_OK(want_string(n, k, err));
            }
        }
        n->type = n->args[0]->type == PT_TYPE_DICT && rest_const(n) ? PT_TYPE_DICT : PT_TYPE_UTF8;
        return PT_OK;
    case F_LENGTH:
        n->type = PT_TYPE_INT64;
        return want_string(n, 0, err);
    case F_LIKE:
    case F_CONTAINS:
    case F_STARTS:
    case F_ENDS:
        n->type = PT_TYPE_BOOL;
        PT_RETURN_NOT_OK(want_string(n, 0, err));
        return want_string(n, 1, err);
    case F_CONCAT:
        n->type = PT_TYPE_UTF8;
        for (int k = 0; k < n->nargs; k++)
            if (!pt_type_is_string(n->args[k]->type))
                PT_RETURN_NOT_OK(pt__bind_coerce(&n->args[k], PT_TYPE_UTF8, err));
        return PT_OK;
    case F_COALESCE:
    case F_NULLIF:
        return unify_args(n, 0, &n->type, err);
    case F_GREATEST:
    case F_LEAST: {
        PT_RETURN_NOT_OK(unify_args(n, 0, &n->type, err));
        return PT_OK;
    }
    case F_IF: {
        pt_type c = n->args[0]->type;
        if (c != PT_TYPE_BOOL && c != PT_TYPE_NULL) return arg_error(n, 0, "a bool condition", err);
        PT_RETURN_NOT_OK(pt__bind_coerce(&n->args[0], PT_TYPE_BOOL, err));
        return unify_args(n, 1, &n->type, err);
    }
    default: return pt_error_set(err, PT_EINTERNAL, "function %d has no binder", id);
    }
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                */
/* ------------------------------------------------------------------------ */

static inline bool val_valid(const pt__val *v, int64_t i) {
    return v->k ? !v->k->null : pt_column_is_valid(v->col, i);
}

static inline const char *val_str(const pt__val *v, int64_t i, int64_t *len) {
    if (v->k) {
        *len = v->k->slen;
        return v->k->s ? v->k->s : "";
    }
    return pt_column_str(v->col, i, len);
}

static inline int64_t val_i64(const pt__val *v, int64_t i) {
    return v->k ? v->k->i : pt_column_i64(v->col)[i];
}

static inline double val_f64(const pt__val *v, int64_t i) {
    return v->k ? v->k->f : pt_column_f64(v->col)[i];
}

/* Validity of the AND of all args, as an offset-0 bitmap (NULL = all). */
static pt_status args_validity(pt_mem *mem, pt__val *args, int nargs, int64_t n, pt_buffer **out,
                               pt_error *err) {
    return pt__and_validity(mem, n, args, nargs, out, err);
}

static pt_status clear_bit_alloc(pt_mem *mem, pt_buffer **v, int64_t n, int64_t i, pt_error *err) {
    if (!*v) {
        int64_t nb = (n + 7) / 8;
        PT_RETURN_NOT_OK(pt_buffer_new(mem, nb > 0 ? nb : 1, v, err));
        memset((*v)->data, 0xff, (size_t)(nb > 0 ? nb : 1));
        (*v)->size = nb;
    }
    pt_bit_clear((*v)->data, i);
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Math                                                                     */
/* ------------------------------------------------------------------------ */

static pt_status eval_math(const pt__bound *b, int id, pt__val *args, int64_t n, pt_mem *mem,
                           pt_column **out, pt_error *err) {
    pt_type t = b->type;
    if (args[0].k && args[0].k->null) return pt__broadcast(mem, args[0].k, t, n, out, err);
    PT_RETURN_NOT_OK(pt__val_to_column(mem, &args[0], b->args[0]->type, n, err));
    const pt_column *x = args[0].col;
    if (t == PT_TYPE_INT64 && (id == F_FLOOR || id == F_CEIL || (id == F_ROUND && b->nargs == 1))) {
        *out = pt_column_retain(args[0].col); /* integers are already whole */
        return PT_OK;
    }
    pt_buffer *validity = NULL;
    pt_column *r = NULL;
    pt_status st = args_validity(mem, args, b->nargs, n, &validity, err);
    if (st == PT_OK) st = pt__new_fixed(mem, t, n, &r, err);
    if (st != PT_OK) {
        pt_buffer_release(validity);
        return st;
    }
    if (t == PT_TYPE_INT64) {
        const int64_t *a = pt_column_i64(x);
        int64_t *rv = (int64_t *)r->values->data;
        if (id == F_ABS) {
            bool ovf = false;
            for (int64_t i = 0; i < n; i++) {
                ovf |= a[i] == INT64_MIN;
                rv[i] = a[i] < 0 ? (int64_t)(0 - (uint64_t)a[i]) : a[i];
            }
            for (int64_t i = 0; ovf && i < n; i++) {
                if (a[i] == INT64_MIN && (!validity || pt_bit_get(validity->data, i))) {
                    st = pt_error_set(err, PT_ERANGE, "integer overflow in '%s' at row %lld: abs(%lld)",
                                      b->text, (long long)i, (long long)a[i]);
                    break;
                }
            }
        } else { /* round(int, digits): digits < 0 rounds to tens, hundreds... */
            const pt__val *dv = &args[1];
            for (int64_t i = 0; i < n; i++) {
                int64_t d = val_i64(dv, i);
                if (d >= 0) {
                    rv[i] = a[i];
                    continue;
                }
                if (d < -18) {
                    rv[i] = 0;
                    continue;
                }
                int64_t p = 1;
                for (int64_t e = 0; e < -d; e++) p *= 10;
                int64_t q = a[i] / p, rem = a[i] % p;
                if (rem >= 0 ? 2 * rem >= p : -2 * rem >= p) q += a[i] < 0 ? -1 : 1;
                rv[i] = q * p;
            }
        }
    } else {
        const double *a = pt_column_f64(x);
        double *rv = (double *)r->values->data;
        bool domain = false;
        switch (id) {
        case F_ABS: for (int64_t i = 0; i < n; i++) rv[i] = fabs(a[i]); break;
        case F_FLOOR: for (int64_t i = 0; i < n; i++) rv[i] = floor(a[i]); break;
        case F_CEIL: for (int64_t i = 0; i < n; i++) rv[i] = ceil(a[i]); break;
        case F_EXP: for (int64_t i = 0; i < n; i++) rv[i] = exp(a[i]); break;
        case F_SQRT:
            for (int64_t i = 0; i < n; i++) {
                domain |= a[i] < 0;
                rv[i] = a[i] < 0 ? 0 : sqrt(a[i]);
            }
            break;
        case F_LN:
        case F_LOG10:
            for (int64_t i = 0; i < n; i++) {
                domain |= a[i] <= 0;
                rv[i] = a[i] <= 0 ? 0 : id == F_LN ? log(a[i]) : log10(a[i]);
            }
            break;
        case F_POW:
            for (int64_t i = 0; i < n; i++) rv[i] = pow(a[i], val_f64(&args[1], i));
            break;
        case F_ROUND:
            if (b->nargs == 1) {
                for (int64_t i = 0; i < n; i++) rv[i] = round(a[i]);
            } else {
                for (int64_t i = 0; i < n; i++) {
                    int64_t d = val_i64(&args[1], i);
                    if (d > 300) d = 300;
                    if (d < -300) d = -300;
                    double p = pow(10.0, (double)(d < 0 ? -d : d));
                    rv[i] = d >= 0 ? round(a[i] * p) / p : round(a[i] / p) * p;
                    if (!isfinite(rv[i])) rv[i] = a[i]; /* a * p overflowed: already exact */
                }
            }
            break;
        default: st = pt_error_set(err, PT_EINTERNAL, "bad math function %d", id);
        }
        /* Out-of-domain inputs give null, like division by zero. */
        for (int64_t i = 0; domain && st == PT_OK && i < n; i++)
            if (id == F_SQRT ? a[i] < 0 : a[i] <= 0) st = clear_bit_alloc(mem, &validity, n, i, err);
    }
    if (st != PT_OK) {
        pt_buffer_release(validity);
        pt_column_release(r);
        return st;
    }
    pt__set_validity(r, validity);
    *out = r;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Text                                                                     */
/* ------------------------------------------------------------------------ */

static inline int64_t utf8_char_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* Byte offset after skipping `chars` characters from the start of s. */
static int64_t utf8_skip(const char *s, int64_t len, int64_t chars) {
    int64_t p = 0;
    while (chars-- > 0 && p < len) p += utf8_char_len((unsigned char)s[p]);
    return p < len ? p : len;
}

static int64_t utf8_count(const char *s, int64_t len) {
    int64_t c = 0;
    for (int64_t i = 0; i < len; i++) c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

static const char *find_sub(const char *h, int64_t hl, const char *nd, int64_t nl) {
    if (nl == 0) return h;
    if (nl > hl) return NULL;
    return memmem(h, (size_t)hl, nd, (size_t)nl);
}

/* LIKE with % (any run), _ (one character) and \ (escape). Backtracks only
 * to the last %, which is enough for these patterns: linear in practice. */
static bool like_match(const char *s, int64_t sl, const char *p, int64_t pl) {
    int64_t si = 0, pi = 0, star_p = -1, star_s = 0;
    while (si < sl) {
        if (pi < pl && p[pi] == '%') {
            star_p = ++pi;
            star_s = si;
            continue;
        }
        if (pi < pl) {
            if (p[pi] == '_') {
                si += utf8_char_len((unsigned char)s[si]);
                pi++;
                continue;
            }
            int64_t q = pi;
            if (p[q] == '\\' && q + 1 < pl) q++;
            if (p[q] == s[si]) {
                si++;
                pi = q + 1;
                continue;
            }
        }
        if (star_p < 0) return false;
        star_s += utf8_char_len((unsigned char)s[star_s]);
        si = star_s;
        pi = star_p;
    }
    while (pi < pl && p[pi] == '%') pi++;
    return pi == pl;
}

/* Pattern shapes that need no matcher: 'abc', 'abc%', '%abc', '%abc%'. */
typedef enum { LK_GENERAL, LK_EXACT, LK_PREFIX, LK_SUFFIX, LK_INFIX } like_kind;

static like_kind like_classify(const char *p, int64_t pl, int64_t *lo, int64_t *hi) {
    int64_t a = 0, b = pl;
    bool lead = pl > 0 && p[0] == '%', trail = pl > 1 && p[pl - 1] == '%' && p[pl - 2] != '\\';
    if (pl == 1 && lead) trail = false;
    if (lead) a = 1;
    if (trail) b = pl - 1;
    for (int64_t i = a; i < b; i++)
        if (p[i] == '%' || p[i] == '_' || p[i] == '\\') return LK_GENERAL;
    *lo = a;
    *hi = b;
    if (lead && trail) return LK_INFIX;
    if (lead) return LK_SUFFIX;
    if (trail) return LK_PREFIX;
    return LK_EXACT;
}

/* Growable scratch text. */
typedef struct scratch {
    char *p;
    int64_t cap;
} scratch;

static bool scratch_fit(scratch *s, int64_t need) {
    if (need <= s->cap) return true;
    int64_t cap = need * 2 + 32;
    char *p = pt_realloc(s->p, (size_t)cap);
    if (!p) return false;
    s->p = p;
    s->cap = cap;
    return true;
}

/* The generic, row-by-row implementation of the text functions. */
static pt_status eval_text_rows(const pt__bound *b, int id, pt__val *args, int nargs, int64_t n,
                                pt_mem *mem, pt_column **out, pt_error *err) {
    pt_type rt = b->type == PT_TYPE_DICT ? PT_TYPE_UTF8 : b->type;
    pt_column *r = NULL;
    pt_buffer *validity = NULL;
    pt_status st = PT_OK;
    scratch sc = {0};
    bool text_out = rt == PT_TYPE_UTF8;
    if (text_out) st = pt_column_new(mem, PT_TYPE_UTF8, n, n * 8, &r, err);
    else {
        st = pt__new_fixed(mem, rt, n, &r, err);
        if (st == PT_OK) st = args_validity(mem, args, nargs, n, &validity, err);
    }
    /* Constant second arguments (patterns, needles) are analysed once. */
    like_kind lk = LK_GENERAL;
    int64_t lo = 0, hi = 0;
    if (id == F_LIKE && args[1].k && !args[1].k->null)
        lk = like_classify(args[1].k->s, args[1].k->slen, &lo, &hi);
    for (int64_t i = 0; i < n && st == PT_OK; i++) {
        bool valid = true;
        for (int k = 0; k < nargs; k++) valid &= val_valid(&args[k], i);
        if (!valid) {
            if (text_out) st = pt_column_append_null(r, err);
            continue;
        }
        int64_t sl;
        const char *s = val_str(&args[0], i, &sl);
        switch (id) {
        case F_LOWER:
        case F_UPPER:
            if (!scratch_fit(&sc, sl + 1)) {
                st = oom(err);
                break;
            }
            for (int64_t j = 0; j < sl; j++) {
                char c = s[j];
                if (id == F_LOWER && c >= 'A' && c <= 'Z') c = (char)(c + 32);
                if (id == F_UPPER && c >= 'a' && c <= 'z') c = (char)(c - 32);
                sc.p[j] = c;
            }
            st = pt_column_append_str(r, sc.p, sl, err);
            break;
        case F_TRIM:
        case F_LTRIM:
        case F_RTRIM: {
            int64_t a = 0, e = sl;
            if (id != F_RTRIM)
                while (a < e && s[a] == ' ') a++;
            if (id != F_LTRIM)
                while (e > a && s[e - 1] == ' ') e--;
            st = pt_column_append_str(r, s + a, e - a, err);
            break;
        }
        case F_SUBSTR: {
            /* Characters [start, start + len) of the 1-based positions that
             * exist (SQL): substr('hello', 0, 3) = 'he'. */
            int64_t start = val_i64(&args[1], i);
            int64_t len = nargs > 2 ? val_i64(&args[2], i) : INT64_MAX;
            int64_t first = start < 1 ? 1 : start;
            int64_t count = 0;
            if (len > 0) {
                int64_t end = (start > 0 && len > INT64_MAX - start) ? INT64_MAX : start + len;
                count = end > first ? end - first : 0;
            }
            int64_t a = utf8_skip(s, sl, first - 1);
            int64_t e = count == 0 ? a : a + utf8_skip(s + a, sl - a, count);
            st = pt_column_append_str(r, s + a, e - a, err);
            break;
        }
        case F_REPLACE: {
            int64_t fl, tl;
            const char *f = val_str(&args[1], i, &fl), *t = val_str(&args[2], i, &tl);
            if (fl == 0) {
                st = pt_column_append_str(r, s, sl, err);
                break;
            }
            int64_t w = 0, at = 0;
            for (;;) {
                const char *hit = find_sub(s + at, sl - at, f, fl);
                int64_t upto = hit ? hit - s : sl;
                if (!scratch_fit(&sc, w + (upto - at) + tl + 1)) {
                    st = oom(err);
                    break;
                }
                memcpy(sc.p + w, s + at, (size_t)(upto - at));
                w += upto - at;
                if (!hit) break;
                memcpy(sc.p + w, t, (size_t)tl);
                w += tl;
                at = upto + fl;
            }
            if (st == PT_OK) st = pt_column_append_str(r, sc.p ? sc.p : "", w, err);
            break;
        }
        case F_LENGTH: ((int64_t *)r->values->data)[i] = utf8_count(s, sl); break;
        case F_LIKE:
        case F_CONTAINS:
        case F_STARTS:
        case F_ENDS: {
            int64_t tl;
            const char *t = val_str(&args[1], i, &tl);
            bool m;
            if (id == F_CONTAINS) m = find_sub(s, sl, t, tl) != NULL;
            else if (id == F_STARTS) m = tl <= sl && memcmp(s, t, (size_t)tl) == 0;
            else if (id == F_ENDS) m = tl <= sl && memcmp(s + sl - tl, t, (size_t)tl) == 0;
            else {
                int64_t nl = hi - lo;
                const char *nd = t + lo;
                switch (lk) {
                case LK_EXACT: m = sl == nl && memcmp(s, nd, (size_t)nl) == 0; break;
                case LK_PREFIX: m = nl <= sl && memcmp(s, nd, (size_t)nl) == 0; break;
                case LK_SUFFIX: m = nl <= sl && memcmp(s + sl - nl, nd, (size_t)nl) == 0; break;
                case LK_INFIX: m = find_sub(s, sl, nd, nl) != NULL; break;
                default: m = like_match(s, sl, t, tl);
                }
            }
            if (m) pt_bit_set(r->values->data, i);
            break;
        }
        default: st = pt_error_set(err, PT_EINTERNAL, "bad text function %d", id);
        }
    }
    pt_free(sc.p);
    if (st != PT_OK) {
        pt_buffer_release(validity);
        pt_column_release(r);
        return st;
    }
    if (text_out) {
        if (r->validity && r->null_count == 0) {
            pt_buffer_release(r->validity);
            r->validity = NULL;
        }
    } else {
        pt__set_validity(r, validity);
    }
    *out = r;
    return PT_OK;
}

/* Text function on a dictionary column with constant other arguments:
 * computed on the entries, then mapped through the indices. */
static pt_status eval_text_dict(const pt__bound *b, int id, pt__val *args, int nargs, int64_t n,
                                pt_mem *mem, pt_column **out, pt_error *err) {
    const pt_column *x = args[0].col;
    pt_column *dict = x->dict;
    int64_t dl = dict->length;
    pt__val dargs[3];
    dargs[0].col = dict;
    dargs[0].k = NULL;
    for (int k = 1; k < nargs; k++) dargs[k] = args[k];
    pt_column *per = NULL, *enc = NULL, *r = NULL;
    pt_buffer *validity = NULL;
    pt_status st = eval_text_rows(b, id, dargs, nargs, dl, mem, &per, err);
    if (st == PT_OK) {
        pt__val xv = {(pt_column *)x, NULL};
        st = pt__and_validity(mem, n, &xv, 1, &validity, err);
    }
    const int32_t *idx = pt_column_i32(x);
    if (st == PT_OK && per->type == PT_TYPE_UTF8) {
        /* Re-encode the new entries so the dictionary stays distinct. */
        st = pt_column_cast(mem, per, PT_TYPE_DICT, &enc, err);
        if (st == PT_OK) st = pt_column_new_dict(mem, enc->dict, n, &r, err);
        if (st == PT_OK) {
            const int32_t *m = pt_column_i32(enc);
            int32_t *ri = (int32_t *)r->values->data;
            for (int64_t i = 0; i < n; i++) {
                uint32_t k = (uint32_t)idx[i];
                ri[i] = k < (uint64_t)dl ? m[k] : 0;
            }
            r->length = n;
            r->values->size = n * 4;
        }
    } else if (st == PT_OK) {
        st = pt__new_fixed(mem, per->type, n, &r, err);
        if (st == PT_OK && per->type == PT_TYPE_INT64) {
            const int64_t *pv = pt_column_i64(per);
            int64_t *rv = (int64_t *)r->values->data;
            for (int64_t i = 0; i < n; i++) {
                uint32_t k = (uint32_t)idx[i];
                rv[i] = k < (uint64_t)dl ? pv[k] : 0;
            }
        } else if (st == PT_OK) {
            uint8_t *lut = pt_malloc((size_t)(dl > 0 ? dl : 1));
            if (!lut) st = oom(err);
            for (int64_t k = 0; lut && k < dl; k++) lut[k] = pt_column_bool(per, k);
            uint8_t *rb = r->values->data;
            for (int64_t i = 0; lut && i < n; i++) {
                uint32_t k = (uint32_t)idx[i];
                if (k < (uint64_t)dl && lut[k]) rb[i >> 3] |= (uint8_t)(1u << (i & 7));
            }
            pt_free(lut);
        }
    }
    pt_column_release(per);
    pt_column_release(enc);
    if (st != PT_OK) {
        pt_buffer_release(validity);
        pt_column_release(r);
        return st;
    }
    pt__set_validity(r, validity);
    *out = r;
    return PT_OK;
}

static pt_status eval_text(const pt__bound *b, int id, pt__val *args, int64_t n, pt_mem *mem,
                           pt_column **out, pt_error *err) {
    int nargs = b->nargs;
    bool dict_path = args[0].col && args[0].col->type == PT_TYPE_DICT;
    for (int k = 1; k < nargs; k++) {
        if (!args[k].k) dict_path = false;
        else if (args[k].k->null) {
            pt__scalar nk = {.type = b->type, .null = true};
            return pt__broadcast(mem, &nk, b->type, n, out, err);
        }
    }
    if (dict_path) return eval_text_dict(b, id, args, nargs, n, mem, out, err);
    pt_column *r;
    PT_RETURN_NOT_OK(eval_text_rows(b, id, args, nargs, n, mem, &r, err));
    if (b->type == PT_TYPE_DICT) { /* only when folding constants */
        pt_status st = pt_column_cast(mem, r, PT_TYPE_DICT, out, err);
        pt_column_release(r);
        return st;
    }
    *out = r;
    return PT_OK;
}

static pt_status eval_concat_fn(pt__val *args, int nargs, int64_t n, pt_mem *mem, pt_column **out,
                                pt_error *err) {
    pt_column *r;
    PT_RETURN_NOT_OK(pt_column_new(mem, PT_TYPE_UTF8, n, n * 8, &r, err));
    scratch sc = {0};
    pt_status st = PT_OK;
    for (int64_t i = 0; i < n && st == PT_OK; i++) {
        int64_t w = 0;
        for (int k = 0; k < nargs; k++) {
            if (!val_valid(&args[k], i)) continue; /* concat skips nulls */
            int64_t l;
            const char *s = val_str(&args[k], i, &l);
            if (!scratch_fit(&sc, w + l + 1)) {
                st = oom(err);
                break;
            }
            memcpy(sc.p + w, s, (size_t)l);
            w += l;
        }
        if (st == PT_OK) st = pt_column_append_str(r, sc.p ? sc.p : "", w, err);
    }
    pt_free(sc.p);
    if (st != PT_OK) {
        pt_column_release(r);
        return st;
    }
    *out = r;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Choices: coalesce, nullif, if, greatest, least                           */
/* ------------------------------------------------------------------------ */

static pt_status eval_choice(const pt__bound *b, int id, pt__val *args, int64_t n, pt_mem *mem,
                             pt_column **out, pt_error *err) {
    int32_t *choice = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof *choice);
    uint8_t *bytes = pt_malloc((size_t)(n > 0 ? n : 1));
    pt_status st = choice && bytes ? PT_OK : oom(err);
    if (st == PT_OK) {
        switch (id) {
        case F_COALESCE:
            for (int64_t i = 0; i < n; i++) {
                choice[i] = -1;
                for (int k = 0; k < b->nargs; k++) {
                    if (val_valid(&args[k], i)) {
                        choice[i] = k;
                        break;
                    }
                }
            }
            st = pt__choose(mem, b->type, args, b->nargs, choice, n, out, err);
            break;
        case F_NULLIF:
            if (args[1].k && args[1].k->null) {
                memset(bytes, 0, (size_t)n);
            } else if (args[0].k && args[0].k->null) {
                memset(bytes, 1, (size_t)n);
            } else {
                st = pt__cmp_bytes(PT_OP_EQ, &args[0], &args[1], n, bytes, err);
            }
            for (int64_t i = 0; i < n && st == PT_OK; i++)
                choice[i] = bytes[i] && val_valid(&args[0], i) && val_valid(&args[1], i) ? -1 : 0;
            if (st == PT_OK) st = pt__choose(mem, b->type, args, 1, choice, n, out, err);
            break;
        case F_IF:
            st = pt__bool_to_bytes(&args[0], n, bytes, err);
            for (int64_t i = 0; i < n && st == PT_OK; i++) choice[i] = bytes[i] ? 0 : 1;
            if (st == PT_OK) st = pt__choose(mem, b->type, args + 1, 2, choice, n, out, err);
            break;
        default: { /* greatest / least: fold pairwise, nulls ignored */
            pt_op op = id == F_GREATEST ? PT_OP_GT : PT_OP_LT;
            pt__val acc = {pt_column_retain(args[0].col), args[0].k};
            for (int k = 1; k < b->nargs && st == PT_OK; k++) {
                pt__val *nx = &args[k];
                bool nx_null = nx->k && nx->k->null, acc_null = acc.k && acc.k->null;
                if (nx_null || acc_null) memset(bytes, 0, (size_t)n);
                else st = pt__cmp_bytes(op, nx, &acc, n, bytes, err);
                for (int64_t i = 0; i < n && st == PT_OK; i++)
                    choice[i] = !val_valid(&acc, i) || (val_valid(nx, i) && bytes[i]) ? 1 : 0;
                pt_column *r = NULL;
                if (st == PT_OK) st = pt__choose(mem, b->type, (pt__val[]){acc, *nx}, 2, choice, n, &r, err);
                pt__val_release(&acc);
                acc.col = r;
            }
            if (st == PT_OK) {
                if (acc.k) st = pt__val_to_column(mem, &acc, b->type, n, err);
                else if (b->type == PT_TYPE_UTF8 && acc.col->type == PT_TYPE_DICT) {
                    pt_column *c;
                    st = pt_column_cast(mem, acc.col, PT_TYPE_UTF8, &c, err);
                    if (st == PT_OK) {
                        pt_column_release(acc.col);
                        acc.col = c;
                    }
                }
            }
            if (st == PT_OK) {
                *out = acc.col;
                acc.col = NULL;
            }
            pt__val_release(&acc);
        }
        }
    }
    pt_free(choice);
    pt_free(bytes);
    return st;
}

pt_status pt__func_eval(const pt__bound *b, pt__val *args, int64_t n, pt_mem *mem,
                        pt_column **out, pt_error *err) {
    int id = ftab[b->fn].id;
    switch (id) {
    case F_ABS:
    case F_ROUND:
    case F_FLOOR:
    case F_CEIL:
    case F_SQRT:
    case F_LN:
    case F_LOG10:
    case F_EXP:
    case F_POW:
        for (int k = 1; k < b->nargs; k++)
            if (args[k].k && args[k].k->null) {
                pt__scalar nk = {.type = b->type, .null = true};
                return pt__broadcast(mem, &nk, b->type, n, out, err);
            }
        return eval_math(b, id, args, n, mem, out, err);
    case F_CONCAT: return eval_concat_fn(args, b->nargs, n, mem, out, err);
    case F_COALESCE:
    case F_NULLIF:
    case F_IF:
    case F_GREATEST:
    case F_LEAST: return eval_choice(b, id, args, n, mem, out, err);
    default: return eval_text(b, id, args, n, mem, out, err);
    }
}
