/*
 * expr_eval.c - vectorised evaluation of bound expressions over a batch.
 *
 * Every operator runs over whole columns with loops specialised per type and
 * per shape (column op column, column op constant), so the hot loops hold no
 * per-row dispatch and the compiler can vectorise them. Nulls are handled on
 * the side: a result's validity is the AND of its inputs' bitmaps, computed
 * bytewise, and values under null rows are whatever the kernel produced
 * (never read). Checked integer arithmetic flags overflow across the loop and
 * only then looks for the first valid row at fault, so the common case pays
 * one OR per row.
 *
 * Filters (pt__expr_eval_mask) write one byte per row: AND/OR of masks is
 * exact for filters (null and false both drop the row), so conjunctions of
 * comparisons never build bool columns.
 */
#include <math.h>
#include <string.h>

#include "col/col_internal.h"
#include "frame/expr.h"

#define TEXT_CAP 256

/* ------------------------------------------------------------------------ */
/* Values and columns                                                       */
/* ------------------------------------------------------------------------ */

void pt__val_release(pt__val *v) {
    pt_column_release(v->col);
    v->col = NULL;
    v->k = NULL;
}

static pt_status oom(pt_error *err) {
    return pt_error_set(err, PT_ENOMEM, "out of memory evaluating an expression");
}

static int64_t values_size(pt_type t, int64_t n) {
    switch (t) {
    case PT_TYPE_NULL: return 0;
    case PT_TYPE_BOOL: return (n + 7) / 8;
    case PT_TYPE_UTF8: return (n + 1) * 8;
    default: return n * pt_type_width(t);
    }
}

pt_status pt__new_fixed(pt_mem *mem, pt_type type, int64_t n, pt_column **out, pt_error *err) {
    pt_column *c;
    PT_RETURN_NOT_OK(pt_column_new(mem, type, n, 0, &c, err));
    c->length = n;
    if (c->values) c->values->size = values_size(type, n);
    if (type == PT_TYPE_NULL) {
        c->null_count = n;
        c->validity->size = (n + 7) / 8;
    }
    *out = c;
    return PT_OK;
}

void pt__set_validity(pt_column *c, pt_buffer *validity) {
    if (c->type == PT_TYPE_NULL) {
        pt_buffer_release(validity);
        return;
    }
    pt_buffer_release(c->validity);
    c->validity = NULL;
    c->null_count = 0;
    if (!validity) return;
    int64_t nulls = c->length - pt__bits_count(validity->data, 0, c->length);
    if (nulls == 0) {
        pt_buffer_release(validity);
        return;
    }
    validity->size = (c->length + 7) / 8;
    c->validity = validity;
    c->null_count = nulls;
}

static pt_status new_bits(pt_mem *mem, int64_t n, int fill, pt_buffer **out, pt_error *err) {
    int64_t nb = (n + 7) / 8;
    PT_RETURN_NOT_OK(pt_buffer_new(mem, nb > 0 ? nb : 1, out, err));
    if (fill) memset((*out)->data, 0xff, (size_t)(nb > 0 ? nb : 1));
    (*out)->size = nb;
    return PT_OK;
}

/* dst[0, n) &= bits [off, off + n) of src. */
static void and_bits(uint8_t *dst, const uint8_t *src, int64_t off, int64_t n, uint8_t *tmp) {
    int64_t nb = (n + 7) / 8;
    const uint8_t *s = src + off / 8;
    if (off % 8 != 0) {
        pt__bits_copy(tmp, 0, src, off, n);
        s = tmp;
    }
    for (int64_t j = 0; j < nb; j++) dst[j] &= s[j];
}

static bool has_nulls(const pt_column *c) {
    return c->null_count > 0 || c->type == PT_TYPE_NULL;
}

pt_status pt__and_validity(pt_mem *mem, int64_t n, const pt__val *vals, int nvals,
                           pt_buffer **out, pt_error *err) {
    *out = NULL;
    bool any = false, zero = false;
    for (int k = 0; k < nvals; k++) {
        if (vals[k].k) zero |= vals[k].k->null;
        else any |= has_nulls(vals[k].col);
    }
    if (!any && !zero) return PT_OK;
    pt_buffer *v;
    PT_RETURN_NOT_OK(new_bits(mem, n, zero ? 0 : 1, &v, err));
    if (zero) {
        *out = v;
        return PT_OK;
    }
    uint8_t *tmp = NULL;
    for (int k = 0; k < nvals; k++) {
        const pt_column *c = vals[k].col;
        if (!c || !has_nulls(c)) continue;
        if (!c->validity) { /* a null column built without a bitmap */
            memset(v->data, 0, (size_t)v->size);
            continue;
        }
        if (c->offset % 8 != 0 && !tmp) {
            tmp = pt_malloc((size_t)((n + 7) / 8 + 1));
            if (!tmp) {
                pt_buffer_release(v);
                return oom(err);
            }
        }
        and_bits(v->data, c->validity->data, c->offset, n, tmp);
    }
    pt_free(tmp);
    *out = v;
    return PT_OK;
}

/* Validity of one column as an offset-0 bitmap: a new reference when
 * aligned at offset 0, else a copy. NULL when all valid. */
static pt_status validity_of(pt_mem *mem, const pt_column *c, int64_t n, pt_buffer **out,
                             pt_error *err) {
    pt__val v = {(pt_column *)c, NULL};
    if (has_nulls(c) && c->validity && c->offset == 0) {
        *out = pt_buffer_retain(c->validity);
        return PT_OK;
    }
    return pt__and_validity(mem, n, &v, 1, out, err);
}

static pt_status all_null(pt_mem *mem, pt_type type, int64_t n, pt_column **out, pt_error *err) {
    pt__scalar k = {.type = type, .null = true};
    return pt__broadcast(mem, &k, type, n, out, err);
}

pt_status pt__broadcast(pt_mem *mem, const pt__scalar *k, pt_type type, int64_t n,
                        pt_column **out, pt_error *err) {
    *out = NULL;
    pt_column *c = NULL;
    bool null = k->null || type == PT_TYPE_NULL;
    bool kf = k->type == PT_TYPE_FLOAT32 || k->type == PT_TYPE_FLOAT64;
    double fv = kf ? k->f : (double)k->i;
    int64_t iv = kf ? (int64_t)k->f : k->i;
    switch (type) {
    case PT_TYPE_UTF8: {
        int64_t len = null ? 0 : k->slen;
        PT_RETURN_NOT_OK(pt_column_new(mem, PT_TYPE_UTF8, n, n * len, &c, err));
        int64_t *o = (int64_t *)c->values->data;
        for (int64_t i = 0; i < n; i++) {
            if (len) memcpy(c->bytes->data + i * len, k->s, (size_t)len);
            o[i + 1] = (i + 1) * len;
        }
        c->bytes->size = n * len;
        c->length = n;
        c->values->size = values_size(type, n);
        break;
    }
    case PT_TYPE_DICT: {
        pt_column *d;
        PT_RETURN_NOT_OK(pt_column_new(mem, PT_TYPE_UTF8, 1, null ? 0 : k->slen, &d, err));
        pt_status st = pt_column_append_str(d, null ? "" : k->s, null ? 0 : k->slen, err);
        if (st == PT_OK) st = pt_column_new_dict(mem, d, n, &c, err);
        pt_column_release(d);
        if (st != PT_OK) return st;
        c->length = n; /* indices are zero-filled: every row is entry 0 */
        c->values->size = n * 4;
        break;
    }
    default:
        PT_RETURN_NOT_OK(pt__new_fixed(mem, type, n, &c, err));
        if (null) break;
        switch (type) {
        case PT_TYPE_BOOL:
            if (iv) memset(c->values->data, 0xff, (size_t)c->values->size);
            break;
        case PT_TYPE_INT32: {
            int32_t *r = (int32_t *)c->values->data;
            for (int64_t i = 0; i < n; i++) r[i] = (int32_t)iv;
            break;
        }
        case PT_TYPE_INT64: {
            int64_t *r = (int64_t *)c->values->data;
            for (int64_t i = 0; i < n; i++) r[i] = iv;
            break;
        }
        case PT_TYPE_FLOAT32: {
            float *r = (float *)c->values->data;
            for (int64_t i = 0; i < n; i++) r[i] = (float)fv;
            break;
        }
        case PT_TYPE_FLOAT64: {
            double *r = (double *)c->values->data;
            for (int64_t i = 0; i < n; i++) r[i] = fv;
            break;
        }
        default: break;
        }
    }
    if (null && type != PT_TYPE_NULL) {
        pt_buffer *v;
        pt_status st = new_bits(mem, n, 0, &v, err);
        if (st != PT_OK) {
            pt_column_release(c);
            return st;
        }
        pt__set_validity(c, v);
    }
    *out = c;
    return PT_OK;
}

pt_status pt__val_to_column(pt_mem *mem, pt__val *v, pt_type type, int64_t n, pt_error *err) {
    if (!v->k) return PT_OK;
    PT_RETURN_NOT_OK(pt__broadcast(mem, v->k, type, n, &v->col, err));
    v->k = NULL;
    return PT_OK;
}

pt_status pt__scalar_from_column(const pt_column *c, pt_type type, pt__scalar *out,
                                 pt_error *err) {
    memset(out, 0, sizeof *out);
    out->type = type;
    if (c->length < 1 || !pt_column_is_valid(c, 0) || c->type == PT_TYPE_NULL) {
        out->null = true;
        return PT_OK;
    }
    switch (c->type) {
    case PT_TYPE_BOOL: out->i = pt_column_bool(c, 0); break;
    case PT_TYPE_INT32: out->i = pt_column_i32(c)[0]; break;
    case PT_TYPE_INT64: out->i = pt_column_i64(c)[0]; break;
    case PT_TYPE_FLOAT32: out->f = pt_column_f32(c)[0]; break;
    case PT_TYPE_FLOAT64: out->f = pt_column_f64(c)[0]; break;
    default: {
        int64_t len;
        const char *s = pt_column_str(c, 0, &len);
        if (!(out->s = pt_strndup(s, (size_t)len))) return oom(err);
        out->slen = len;
    }
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Arithmetic                                                               */
/* ------------------------------------------------------------------------ */

#define ARITH_DEF(T, name, EXPR)                                                        \
    static void name##_aa(const T *x, const T *y, T *r, int64_t n) {                    \
        for (int64_t i = 0; i < n; i++) {                                               \
            T a = x[i], b = y[i];                                                       \
            r[i] = EXPR;                                                                \
        }                                                                               \
    }                                                                                   \
    static void name##_as(const T *x, T b, T *r, int64_t n) {                           \
        for (int64_t i = 0; i < n; i++) {                                               \
            T a = x[i];                                                                 \
            r[i] = EXPR;                                                                \
        }                                                                               \
    }                                                                                   \
    static void name##_sa(T a, const T *y, T *r, int64_t n) {                           \
        for (int64_t i = 0; i < n; i++) {                                               \
            T b = y[i];                                                                 \
            r[i] = EXPR;                                                                \
        }                                                                               \
    }

ARITH_DEF(double, fadd, a + b)
ARITH_DEF(double, fsub, a - b)
ARITH_DEF(double, fmul, a * b)
ARITH_DEF(double, fdiv, b != 0 ? a / b : 0)
ARITH_DEF(double, fmod_, b != 0 ? fmod(a, b) : 0)
/* b == -1 is special-cased: INT64_MIN % -1 traps on x86. */
ARITH_DEF(int64_t, imod, (b == 0 || b == -1) ? 0 : a % b)

#define CHECKED_DEF(name, BUILTIN)                                                      \
    static bool name##_aa(const int64_t *x, const int64_t *y, int64_t *r, int64_t n) {  \
        bool o = false;                                                                 \
        for (int64_t i = 0; i < n; i++) o |= BUILTIN(x[i], y[i], &r[i]);                \
        return o;                                                                       \
    }                                                                                   \
    static bool name##_as(const int64_t *x, int64_t b, int64_t *r, int64_t n) {         \
        bool o = false;                                                                 \
        for (int64_t i = 0; i < n; i++) o |= BUILTIN(x[i], b, &r[i]);                   \
        return o;                                                                       \
    }                                                                                   \
    static bool name##_sa(int64_t a, const int64_t *y, int64_t *r, int64_t n) {         \
        bool o = false;                                                                 \
        for (int64_t i = 0; i < n; i++) o |= BUILTIN(a, y[i], &r[i]);                   \
        return o;                                                                       \
    }

CHECKED_DEF(iadd, __builtin_add_overflow)
CHECKED_DEF(isub, __builtin_sub_overflow)
CHECKED_DEF(imul, __builtin_mul_overflow)

/* Pointer to a value's data (columns) for the kernels. */
static const void *col_data(const pt_column *c) {
    return c->values->data + c->offset * pt_type_width(c->type);
}

/* Finds the first valid row whose operation overflows and reports it. */
static pt_status overflow_error(const pt__bound *b, const pt__val *x, const pt__val *y,
                                const pt_buffer *validity, int64_t n, pt_error *err) {
    for (int64_t i = 0; i < n; i++) {
        if (validity && !pt_bit_get(validity->data, i)) continue;
        int64_t a = x->k ? x->k->i : pt_column_i64(x->col)[i];
        int64_t c = y ? (y->k ? y->k->i : pt_column_i64(y->col)[i]) : 0;
        int64_t r;
        bool o;
        switch (b->op) {
        case PT_OP_ADD: o = __builtin_add_overflow(a, c, &r); break;
        case PT_OP_SUB: o = __builtin_sub_overflow(a, c, &r); break;
        case PT_OP_MUL: o = __builtin_mul_overflow(a, c, &r); break;
        default: o = a == INT64_MIN; break; /* negation */
        }
        if (!o) continue;
        if (!y)
            return pt_error_set(err, PT_ERANGE, "integer overflow in '%s' at row %lld: -(%lld)",
                                b->text, (long long)i, (long long)a);
        static const char sym[] = "+-*";
        return pt_error_set(err, PT_ERANGE, "integer overflow in '%s' at row %lld: %lld %c %lld",
                            b->text, (long long)i, (long long)a, sym[b->op - PT_OP_ADD],
                            (long long)c);
    }
    return PT_OK; /* every overflow was under a null */
}

/* Clears validity bits where the divisor is 0 (division and modulo by zero
 * give null). Allocates the bitmap when there was none. */
static pt_status null_zero_divisors(pt_mem *mem, const pt__val *y, pt_type t, int64_t n,
                                    pt_buffer **validity, pt_error *err) {
    bool any = false;
    if (y->k) {
        any = t == PT_TYPE_INT64 ? y->k->i == 0 : y->k->f == 0;
    } else if (t == PT_TYPE_INT64) {
        const int64_t *d = pt_column_i64(y->col);
        for (int64_t i = 0; i < n; i++) any |= d[i] == 0;
    } else {
        const double *d = pt_column_f64(y->col);
        for (int64_t i = 0; i < n; i++) any |= d[i] == 0;
    }
    if (!any) return PT_OK;
    if (!*validity) PT_RETURN_NOT_OK(new_bits(mem, n, 1, validity, err));
    uint8_t *v = (*validity)->data;
    if (y->k) {
        memset(v, 0, (size_t)((n + 7) / 8));
    } else if (t == PT_TYPE_INT64) {
        const int64_t *d = pt_column_i64(y->col);
        for (int64_t i = 0; i < n; i++)
            if (d[i] == 0) pt_bit_clear(v, i);
    } else {
        const double *d = pt_column_f64(y->col);
        for (int64_t i = 0; i < n; i++)
            if (d[i] == 0) pt_bit_clear(v, i);
    }
    return PT_OK;
}

/* True when c is a result of this evaluation that no one else references,
 * so its values may be overwritten in place. */
static bool is_temporary(const pt_column *c, pt_type t) {
    return c && c->type == t && c->offset == 0 && c->dict == NULL &&
           __atomic_load_n(&c->refcount, __ATOMIC_ACQUIRE) == 1 &&
           __atomic_load_n(&c->values->refcount, __ATOMIC_ACQUIRE) == 1 && !c->values->release_fn;
}

static pt_status eval_arith(const pt__bound *b, pt__val *x, pt__val *y, int64_t n, pt_mem *mem,
                            pt_column **out, pt_error *err) {
    pt_type t = b->type;
    if ((x->k && x->k->null) || (y->k && y->k->null)) return all_null(mem, t, n, out, err);
    if (x->k && y->k) PT_RETURN_NOT_OK(pt__val_to_column(mem, x, t, n, err));
    pt_buffer *validity = NULL;
    pt_column *r = NULL;
    pt_status st = pt__and_validity(mem, n, (pt__val[]){*x, *y}, 2, &validity, err);
    /* A float temporary nobody else holds becomes the result (chains like
     * a * 2 + b then allocate once). Integer ops never do this: their
     * overflow message reads the operands after the loop; nor does a
     * divisor, which is scanned for zeros afterwards. */
    if (st == PT_OK && t == PT_TYPE_FLOAT64) {
        bool divides = b->op == PT_OP_DIV || b->op == PT_OP_MOD;
        if (is_temporary(x->col, t)) r = x->col;
        else if (!divides && is_temporary(y->col, t)) r = y->col;
        if (r) r = pt_column_retain(r);
    }
    if (st == PT_OK && !r) st = pt__new_fixed(mem, t, n, &r, err);
    if (st != PT_OK) {
        pt_buffer_release(validity);
        return st;
    }
    /* Shapes: 0 = column op column, 1 = column op constant, 2 = constant op column. */
    int shape = x->k ? 2 : y->k ? 1 : 0;
    if (t == PT_TYPE_INT64) {
        int64_t *rv = (int64_t *)r->values->data;
        const int64_t *xa = x->k ? NULL : col_data(x->col), *ya = y->k ? NULL : col_data(y->col);
        int64_t xs = x->k ? x->k->i : 0, ys = y->k ? y->k->i : 0;
        bool ovf = false;
#define SHAPES(name)                                                                    \
    (shape == 0 ? name##_aa(xa, ya, rv, n) : shape == 1 ? name##_as(xa, ys, rv, n)      \
                                                        : name##_sa(xs, ya, rv, n))
        switch (b->op) {
        case PT_OP_ADD: ovf = SHAPES(iadd); break;
        case PT_OP_SUB: ovf = SHAPES(isub); break;
        case PT_OP_MUL: ovf = SHAPES(imul); break;
        case PT_OP_MOD:
            if (shape == 0) imod_aa(xa, ya, rv, n);
            else if (shape == 1) imod_as(xa, ys, rv, n);
            else imod_sa(xs, ya, rv, n);
            st = null_zero_divisors(mem, y, t, n, &validity, err);
            break;
        default: st = pt_error_set(err, PT_EINTERNAL, "bad integer operator in '%s'", b->text);
        }
#undef SHAPES
        if (st == PT_OK && ovf) st = overflow_error(b, x, y, validity, n, err);
    } else {
        double *rv = (double *)r->values->data;
        const double *xa = x->k ? NULL : col_data(x->col), *ya = y->k ? NULL : col_data(y->col);
        double xs = x->k ? x->k->f : 0, ys = y->k ? y->k->f : 0;
#define SHAPES(name)                                                                    \
    do {                                                                                \
        if (shape == 0) name##_aa(xa, ya, rv, n);                                        \
        else if (shape == 1) name##_as(xa, ys, rv, n);                                   \
        else name##_sa(xs, ya, rv, n);                                                   \
    } while (0)
        switch (b->op) {
        case PT_OP_ADD: SHAPES(fadd); break;
        case PT_OP_SUB: SHAPES(fsub); break;
        case PT_OP_MUL: SHAPES(fmul); break;
        case PT_OP_DIV: SHAPES(fdiv); break;
        case PT_OP_MOD: SHAPES(fmod_); break;
        default: st = pt_error_set(err, PT_EINTERNAL, "bad float operator in '%s'", b->text);
        }
#undef SHAPES
        if (st == PT_OK && (b->op == PT_OP_DIV || b->op == PT_OP_MOD))
            st = null_zero_divisors(mem, y, t, n, &validity, err);
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

static pt_status eval_neg(const pt__bound *b, pt__val *x, int64_t n, pt_mem *mem, pt_column **out,
                          pt_error *err) {
    PT_RETURN_NOT_OK(pt__val_to_column(mem, x, b->type, n, err));
    pt_buffer *validity = NULL;
    pt_column *r = NULL;
    pt_status st = validity_of(mem, x->col, n, &validity, err);
    if (st == PT_OK) st = pt__new_fixed(mem, b->type, n, &r, err);
    if (st == PT_OK && b->type == PT_TYPE_INT64) {
        const int64_t *a = pt_column_i64(x->col);
        int64_t *rv = (int64_t *)r->values->data;
        bool ovf = false;
        for (int64_t i = 0; i < n; i++) {
            ovf |= a[i] == INT64_MIN;
            rv[i] = (int64_t)(0 - (uint64_t)a[i]);
        }
        if (ovf) st = overflow_error(b, x, NULL, validity, n, err);
    } else if (st == PT_OK) {
        const double *a = pt_column_f64(x->col);
        double *rv = (double *)r->values->data;
        for (int64_t i = 0; i < n; i++) rv[i] = -a[i];
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
/* Comparisons                                                              */
/* ------------------------------------------------------------------------ */

#define CMP_BODY(XE, YE)                                                                \
    switch (op) {                                                                       \
    case PT_OP_EQ: for (int64_t i = 0; i < n; i++) o[i] = (XE) == (YE); break;         \
    case PT_OP_NE: for (int64_t i = 0; i < n; i++) o[i] = (XE) != (YE); break;         \
    case PT_OP_LT: for (int64_t i = 0; i < n; i++) o[i] = (XE) < (YE); break;          \
    case PT_OP_LE: for (int64_t i = 0; i < n; i++) o[i] = (XE) <= (YE); break;         \
    case PT_OP_GT: for (int64_t i = 0; i < n; i++) o[i] = (XE) > (YE); break;          \
    case PT_OP_GE: for (int64_t i = 0; i < n; i++) o[i] = (XE) >= (YE); break;         \
    default: break;                                                                     \
    }

/* One loop per operator, outside the row loop, so each loop vectorises. */
#define CMP_DEF(T, tn)                                                                  \
    static void cmp_##tn##_aa(pt_op op, const T *x, const T *y, uint8_t *o, int64_t n) { \
        CMP_BODY(x[i], y[i])                                                            \
    }                                                                                   \
    static void cmp_##tn##_as(pt_op op, const T *x, T y, uint8_t *o, int64_t n) {        \
        CMP_BODY(x[i], y)                                                               \
    }
CMP_DEF(int32_t, i32)
CMP_DEF(int64_t, i64)
CMP_DEF(float, f32)
CMP_DEF(double, f64)
CMP_DEF(uint8_t, u8)

static pt_op flip_op(pt_op op) {
    switch (op) {
    case PT_OP_LT: return PT_OP_GT;
    case PT_OP_LE: return PT_OP_GE;
    case PT_OP_GT: return PT_OP_LT;
    case PT_OP_GE: return PT_OP_LE;
    default: return op;
    }
}

/* Result of `op` for each sign of a three-way comparison (<0, 0, >0). */
static void cmp_table(pt_op op, uint8_t tab[3]) {
    tab[0] = op == PT_OP_NE || op == PT_OP_LT || op == PT_OP_LE;
    tab[1] = op == PT_OP_EQ || op == PT_OP_LE || op == PT_OP_GE;
    tab[2] = op == PT_OP_NE || op == PT_OP_GT || op == PT_OP_GE;
}

static inline int str_cmp3(const char *a, int64_t la, const char *b, int64_t lb) {
    int64_t m = la < lb ? la : lb;
    int c = m > 0 ? memcmp(a, b, (size_t)m) : 0;
    if (c == 0) c = la < lb ? -1 : la > lb;
    return c < 0 ? 0 : c > 0 ? 2 : 1;
}

/* Unpacks n bits (from bit offset off) into bytes. */
static void unpack_bits(const uint8_t *bits, int64_t off, int64_t n, uint8_t *o) {
    for (int64_t i = 0; i < n; i++) o[i] = (bits[(off + i) >> 3] >> ((off + i) & 7)) & 1;
}

static pt_status cmp_strings(pt_op op, const pt__val *a, const pt__val *b, int64_t n, uint8_t *o,
                             pt_error *err) {
    uint8_t tab[3];
    cmp_table(op, tab);
    const pt_column *ca = a->col, *cb = b->col;
    if (ca && cb) {
        if (ca->type == PT_TYPE_DICT && cb->type == PT_TYPE_DICT && ca->dict == cb->dict &&
            (op == PT_OP_EQ || op == PT_OP_NE)) {
            /* Same dictionary: equal text iff equal index (entries are
             * distinct in dictionaries built by the library). */
            cmp_i32_aa(op, pt_column_i32(ca), pt_column_i32(cb), o, n);
            return PT_OK;
        }
        for (int64_t i = 0; i < n; i++) {
            int64_t la, lb;
            const char *sa = pt_column_str(ca, i, &la), *sb = pt_column_str(cb, i, &lb);
            o[i] = tab[str_cmp3(sa, la, sb, lb)];
        }
        return PT_OK;
    }
    if (!ca) { /* constant op column: flip */
        const pt__val *t = a;
        a = b;
        b = t;
        ca = a->col;
        cmp_table(flip_op(op), tab);
    }
    const char *s = b->k->s ? b->k->s : "";
    int64_t sl = b->k->slen;
    if (ca->type == PT_TYPE_DICT) {
        /* Each dictionary entry is compared once; rows look up the answer. */
        const pt_column *d = ca->dict;
        int64_t dl = d->length;
        uint8_t *lut = pt_malloc((size_t)(dl > 0 ? dl : 1));
        if (!lut) return oom(err);
        for (int64_t k = 0; k < dl; k++) {
            int64_t len;
            const char *e = pt_column_str(d, k, &len);
            lut[k] = tab[str_cmp3(e, len, s, sl)];
        }
        const int32_t *idx = pt_column_i32(ca);
        for (int64_t i = 0; i < n; i++) {
            uint32_t k = (uint32_t)idx[i];
            o[i] = k < (uint64_t)dl ? lut[k] : 0; /* null rows may hold any index */
        }
        pt_free(lut);
        return PT_OK;
    }
    const int64_t *off = pt_column_i64(ca);
    const char *base = (const char *)ca->bytes->data;
    if (op == PT_OP_EQ || op == PT_OP_NE) {
        uint8_t eq = op == PT_OP_EQ;
        for (int64_t i = 0; i < n; i++) {
            int64_t len = off[i + 1] - off[i];
            o[i] = (uint8_t)((len == sl && (sl == 0 || memcmp(base + off[i], s, (size_t)sl) == 0)) ==
                             eq);
        }
        return PT_OK;
    }
    for (int64_t i = 0; i < n; i++) o[i] = tab[str_cmp3(base + off[i], off[i + 1] - off[i], s, sl)];
    return PT_OK;
}

pt_status pt__cmp_bytes(pt_op op, const pt__val *a, const pt__val *b, int64_t n, uint8_t *o,
                        pt_error *err) {
    pt_type ta = a->col ? a->col->type : a->k->type, tb = b->col ? b->col->type : b->k->type;
    if ((a->k && a->k->null) || (b->k && b->k->null)) {
        memset(o, 0, (size_t)n);
        return PT_OK;
    }
    pt__val tmp = {0};
    if (a->k && b->k) { /* only when folding constants (n == 1) */
        tmp.k = a->k;
        PT_RETURN_NOT_OK(pt__val_to_column(NULL, &tmp, ta, n, err));
        a = &tmp;
    }
    pt_status st = PT_OK;
    if (pt_type_is_string(ta) && pt_type_is_string(tb)) {
        st = cmp_strings(op, a, b, n, o, err);
    } else if (ta != tb && !(a->k || b->k)) {
        st = pt_error_set(err, PT_EINTERNAL, "comparison of %s with %s", pt_type_name(ta),
                          pt_type_name(tb));
    } else {
        /* After binding both sides share a type; a constant holds it in i/f. */
        pt_op fop = op;
        const pt__val *c = a, *k = b;
        if (a->k) {
            c = b;
            k = a;
            fop = flip_op(op);
        }
        const pt_column *col = c->col;
        switch (col->type) {
        case PT_TYPE_INT32:
            if (k->k) cmp_i32_as(fop, pt_column_i32(col), (int32_t)k->k->i, o, n);
            else cmp_i32_aa(op, pt_column_i32(a->col), pt_column_i32(b->col), o, n);
            break;
        case PT_TYPE_INT64:
            if (k->k) cmp_i64_as(fop, pt_column_i64(col), k->k->i, o, n);
            else cmp_i64_aa(op, pt_column_i64(a->col), pt_column_i64(b->col), o, n);
            break;
        case PT_TYPE_FLOAT32:
            if (k->k) cmp_f32_as(fop, pt_column_f32(col), (float)k->k->f, o, n);
            else cmp_f32_aa(op, pt_column_f32(a->col), pt_column_f32(b->col), o, n);
            break;
        case PT_TYPE_FLOAT64:
            if (k->k) cmp_f64_as(fop, pt_column_f64(col), k->k->f, o, n);
            else cmp_f64_aa(op, pt_column_f64(a->col), pt_column_f64(b->col), o, n);
            break;
        case PT_TYPE_BOOL: {
            uint8_t *ua = pt_malloc((size_t)(2 * n + 1));
            if (!ua) {
                st = oom(err);
                break;
            }
            unpack_bits(col->values->data, col->offset, n, ua);
            if (k->k) {
                cmp_u8_as(fop, ua, (uint8_t)(k->k->i != 0), o, n);
            } else {
                const pt_column *oc = c == a ? b->col : a->col;
                unpack_bits(oc->values->data, oc->offset, n, ua + n);
                cmp_u8_aa(op, c == a ? ua : ua + n, c == a ? ua + n : ua, o, n);
            }
            pt_free(ua);
            break;
        }
        case PT_TYPE_NULL: memset(o, 0, (size_t)n); break;
        default:
            st = pt_error_set(err, PT_EINTERNAL, "comparison of %s values", pt_type_name(col->type));
        }
    }
    pt__val_release(&tmp);
    return st;
}

/* Packs bytes (0/1) into bits. */
static void pack_bits(const uint8_t *b, int64_t n, uint8_t *bits) {
    int64_t full = n / 8;
    for (int64_t j = 0; j < full; j++) {
        const uint8_t *p = b + 8 * j;
        bits[j] = (uint8_t)(p[0] | p[1] << 1 | p[2] << 2 | p[3] << 3 | p[4] << 4 | p[5] << 5 |
                            p[6] << 6 | p[7] << 7);
    }
    if (n % 8) {
        uint8_t v = 0;
        for (int64_t i = full * 8; i < n; i++) v |= (uint8_t)(b[i] << (i - full * 8));
        bits[full] = v;
    }
}

static pt_status eval_cmp(const pt__bound *b, pt__val *x, pt__val *y, int64_t n, pt_mem *mem,
                          pt_column **out, pt_error *err) {
    if ((x->k && x->k->null) || (y->k && y->k->null)) return all_null(mem, PT_TYPE_BOOL, n, out, err);
    uint8_t *bytes = pt_malloc((size_t)(n > 0 ? n : 1));
    if (!bytes) return oom(err);
    pt_column *r = NULL;
    pt_buffer *validity = NULL;
    pt_status st = pt__cmp_bytes(b->op, x, y, n, bytes, err);
    if (st == PT_OK) st = pt__and_validity(mem, n, (pt__val[]){*x, *y}, 2, &validity, err);
    if (st == PT_OK) st = pt__new_fixed(mem, PT_TYPE_BOOL, n, &r, err);
    if (st == PT_OK) {
        pack_bits(bytes, n, r->values->data);
        pt__set_validity(r, validity);
        *out = r;
    } else {
        pt_buffer_release(validity);
    }
    pt_free(bytes);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Boolean logic                                                            */
/* ------------------------------------------------------------------------ */

/* A bool column's value and validity bits at offset 0 (views or copies). */
typedef struct bits_view {
    const uint8_t *val, *valid; /* valid NULL = all valid */
    uint8_t *own_val, *own_valid;
} bits_view;

static pt_status view_bits(const pt_column *c, int64_t n, bits_view *v, pt_error *err) {
    memset(v, 0, sizeof *v);
    int64_t nb = (n + 7) / 8 + 1;
    if (c->offset % 8 == 0) {
        v->val = c->values->data + c->offset / 8;
        if (has_nulls(c) && c->validity) v->valid = c->validity->data + c->offset / 8;
        return PT_OK;
    }
    if (!(v->own_val = pt_malloc((size_t)nb))) return oom(err);
    pt__bits_copy(v->own_val, 0, c->values->data, c->offset, n);
    v->val = v->own_val;
    if (has_nulls(c) && c->validity) {
        if (!(v->own_valid = pt_malloc((size_t)nb))) return oom(err);
        pt__bits_copy(v->own_valid, 0, c->validity->data, c->offset, n);
        v->valid = v->own_valid;
    }
    return PT_OK;
}

static void view_free(bits_view *v) {
    pt_free(v->own_val);
    pt_free(v->own_valid);
}

static pt_status eval_logic(const pt__bound *b, pt__val *x, pt__val *y, int64_t n, pt_mem *mem,
                            pt_column **out, pt_error *err) {
    PT_RETURN_NOT_OK(pt__val_to_column(mem, x, PT_TYPE_BOOL, n, err));
    PT_RETURN_NOT_OK(pt__val_to_column(mem, y, PT_TYPE_BOOL, n, err));
    bits_view va, vb;
    pt_column *r = NULL;
    pt_buffer *validity = NULL;
    pt_status st = view_bits(x->col, n, &va, err);
    if (st == PT_OK) st = view_bits(y->col, n, &vb, err);
    if (st == PT_OK) st = pt__new_fixed(mem, PT_TYPE_BOOL, n, &r, err);
    if (st == PT_OK && (va.valid || vb.valid)) st = new_bits(mem, n, 1, &validity, err);
    if (st == PT_OK) {
        int64_t nb = (n + 7) / 8;
        uint8_t *rv = r->values->data, *vv = validity ? validity->data : NULL;
        bool is_and = b->kind == PT__B_AND;
        for (int64_t j = 0; j < nb; j++) {
            uint8_t ma = va.valid ? va.valid[j] : 0xff, mb = vb.valid ? vb.valid[j] : 0xff;
            uint8_t ta = va.val[j] & ma, fa = (uint8_t)~va.val[j] & ma;
            uint8_t tb = vb.val[j] & mb, fb = (uint8_t)~vb.val[j] & mb;
            uint8_t t = is_and ? ta & tb : ta | tb;
            uint8_t f = is_and ? fa | fb : fa & fb;
            rv[j] = t;
            if (vv) vv[j] = t | f;
        }
        pt__set_validity(r, validity);
        *out = r;
    } else {
        pt_buffer_release(validity);
        pt_column_release(r);
    }
    view_free(&va);
    view_free(&vb);
    return st;
}

static pt_status eval_not(pt__val *x, int64_t n, pt_mem *mem, pt_column **out, pt_error *err) {
    PT_RETURN_NOT_OK(pt__val_to_column(mem, x, PT_TYPE_BOOL, n, err));
    bits_view v;
    pt_column *r = NULL;
    pt_buffer *validity = NULL;
    pt_status st = view_bits(x->col, n, &v, err);
    if (st == PT_OK) st = validity_of(mem, x->col, n, &validity, err);
    if (st == PT_OK) st = pt__new_fixed(mem, PT_TYPE_BOOL, n, &r, err);
    if (st == PT_OK) {
        int64_t nb = (n + 7) / 8;
        for (int64_t j = 0; j < nb; j++) r->values->data[j] = (uint8_t)~v.val[j];
        pt__set_validity(r, validity);
        *out = r;
    } else {
        pt_buffer_release(validity);
    }
    view_free(&v);
    return st;
}

static pt_status eval_isnull(const pt__bound *b, pt__val *x, int64_t n, pt_mem *mem,
                             pt_column **out, pt_error *err) {
    bool want_null = b->op == PT_OP_IS_NULL;
    if (x->k) {
        pt__scalar k = {.type = PT_TYPE_BOOL, .i = x->k->null == want_null};
        return pt__broadcast(mem, &k, PT_TYPE_BOOL, n, out, err);
    }
    pt_column *r;
    PT_RETURN_NOT_OK(pt__new_fixed(mem, PT_TYPE_BOOL, n, &r, err));
    const pt_column *c = x->col;
    int64_t nb = (n + 7) / 8;
    if (!has_nulls(c) || !c->validity) {
        bool all_null_col = has_nulls(c);
        if (all_null_col == want_null) memset(r->values->data, 0xff, (size_t)nb);
    } else {
        pt__bits_copy(r->values->data, 0, c->validity->data, c->offset, n);
        if (want_null)
            for (int64_t j = 0; j < nb; j++) r->values->data[j] = (uint8_t)~r->values->data[j];
    }
    *out = r;
    return PT_OK;
}

pt_status pt__bool_to_bytes(const pt__val *v, int64_t n, uint8_t *o, pt_error *err) {
    if (v->k) {
        memset(o, !v->k->null && v->k->i ? 1 : 0, (size_t)n);
        return PT_OK;
    }
    const pt_column *c = v->col;
    if (c->type == PT_TYPE_NULL) {
        memset(o, 0, (size_t)n);
        return PT_OK;
    }
    if (c->type != PT_TYPE_BOOL)
        return pt_error_set(err, PT_ETYPE, "a filter needs a bool expression, not %s",
                            pt_type_name(c->type));
    unpack_bits(c->values->data, c->offset, n, o);
    if (has_nulls(c) && c->validity) {
        const uint8_t *vb = c->validity->data;
        int64_t off = c->offset;
        for (int64_t i = 0; i < n; i++) o[i] &= (vb[(off + i) >> 3] >> ((off + i) & 7)) & 1;
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Text, casts, CASE                                                        */
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

static pt_status eval_concat(pt__val *x, pt__val *y, int64_t n, pt_mem *mem, pt_column **out,
                             pt_error *err) {
    pt_column *r;
    PT_RETURN_NOT_OK(pt_column_new(mem, PT_TYPE_UTF8, n, n * 8, &r, err));
    pt_status st = PT_OK;
    char *tmp = NULL;
    int64_t tcap = 0;
    for (int64_t i = 0; i < n && st == PT_OK; i++) {
        if (!val_valid(x, i) || !val_valid(y, i)) {
            st = pt_column_append_null(r, err);
            continue;
        }
        int64_t la, lb;
        const char *a = val_str(x, i, &la), *b = val_str(y, i, &lb);
        if (la + lb > tcap) {
            tcap = 2 * (la + lb) + 16;
            char *t = pt_realloc(tmp, (size_t)tcap);
            if (!t) {
                st = oom(err);
                break;
            }
            tmp = t;
        }
        if (la) memcpy(tmp, a, (size_t)la);
        if (lb) memcpy(tmp + la, b, (size_t)lb);
        st = pt_column_append_str(r, tmp ? tmp : "", la + lb, err);
    }
    pt_free(tmp);
    if (st != PT_OK) {
        pt_column_release(r);
        return st;
    }
    if (r->validity && r->null_count == 0) {
        pt_buffer_release(r->validity);
        r->validity = NULL;
    }
    *out = r;
    return PT_OK;
}

/* The implicit promotions (int32 -> int64, integers and float32 -> float64)
 * as tight loops; they cannot fail, unlike the general cast. */
static bool is_widening(pt_type from, pt_type to) {
    return (from == PT_TYPE_INT32 && to == PT_TYPE_INT64) ||
           (to == PT_TYPE_FLOAT64 &&
            (from == PT_TYPE_INT32 || from == PT_TYPE_INT64 || from == PT_TYPE_FLOAT32));
}

static pt_status widen(pt_mem *mem, const pt_column *c, pt_type to, int64_t n, pt_column **out,
                       pt_error *err) {
    pt_buffer *validity = NULL;
    pt_column *r = NULL;
    pt_status st = validity_of(mem, c, n, &validity, err);
    if (st == PT_OK) st = pt__new_fixed(mem, to, n, &r, err);
    if (st != PT_OK) {
        pt_buffer_release(validity);
        return st;
    }
    if (to == PT_TYPE_INT64) {
        const int32_t *a = pt_column_i32(c);
        int64_t *rv = (int64_t *)r->values->data;
        for (int64_t i = 0; i < n; i++) rv[i] = a[i];
    } else {
        double *rv = (double *)r->values->data;
        if (c->type == PT_TYPE_INT32) {
            const int32_t *a = pt_column_i32(c);
            for (int64_t i = 0; i < n; i++) rv[i] = a[i];
        } else if (c->type == PT_TYPE_INT64) {
            const int64_t *a = pt_column_i64(c);
            for (int64_t i = 0; i < n; i++) rv[i] = (double)a[i];
        } else {
            const float *a = pt_column_f32(c);
            for (int64_t i = 0; i < n; i++) rv[i] = a[i];
        }
    }
    pt__set_validity(r, validity);
    *out = r;
    return PT_OK;
}

static pt_status eval_cast(const pt__bound *b, pt__val *x, int64_t n, pt_mem *mem,
                           pt_column **out, pt_error *err) {
    if (x->k) PT_RETURN_NOT_OK(pt__val_to_column(mem, x, b->args[0]->type, n, err));
    if (is_widening(x->col->type, b->type)) return widen(mem, x->col, b->type, n, out, err);
    pt_status st = pt_column_cast(mem, x->col, b->type, out, err);
    if (st != PT_OK) {
        if (st == PT_EPARSE) {
            st = PT_ETYPE;
            if (err) err->code = PT_ETYPE;
        }
        pt_error_prefix(err, "in '%s'", b->text);
    }
    return st;
}

pt_status pt__choose(pt_mem *mem, pt_type type, const pt__val *vals, int nvals,
                     const int32_t *choice, int64_t n, pt_column **out, pt_error *err) {
    *out = NULL;
    if (type == PT_TYPE_NULL) return all_null(mem, type, n, out, err);
    pt__val small[8];
    pt__val *v = nvals <= 8 ? small : pt_calloc((size_t)nvals, sizeof *v);
    if (!v) return oom(err);
    pt_status st = PT_OK;
    int nv = 0;
    for (; nv < nvals && st == PT_OK; nv++) {
        v[nv].k = vals[nv].k;
        v[nv].col = pt_column_retain(vals[nv].col);
        if (!pt_type_is_string(type)) st = pt__val_to_column(mem, &v[nv], type, n, err);
    }
    pt_column *r = NULL;
    pt_buffer *validity = NULL;
    if (st == PT_OK && pt_type_is_string(type)) {
        st = pt_column_new(mem, PT_TYPE_UTF8, n, n * 8, &r, err);
        for (int64_t i = 0; i < n && st == PT_OK; i++) {
            int32_t c = choice[i];
            if (c < 0 || !val_valid(&v[c], i)) {
                st = pt_column_append_null(r, err);
            } else {
                int64_t len;
                const char *s = val_str(&v[c], i, &len);
                st = pt_column_append_str(r, s, len, err);
            }
        }
        if (st == PT_OK && r->validity && r->null_count == 0) {
            pt_buffer_release(r->validity);
            r->validity = NULL;
        }
    } else if (st == PT_OK) {
        st = pt__new_fixed(mem, type, n, &r, err);
        if (st == PT_OK) st = new_bits(mem, n, 0, &validity, err);
        if (st == PT_OK) {
            uint8_t *vb = validity->data;
            int w = pt_type_width(type);
            for (int64_t i = 0; i < n; i++) {
                int32_t c = choice[i];
                if (c < 0 || !pt_column_is_valid(v[c].col, i)) continue;
                pt_bit_set(vb, i);
                const pt_column *src = v[c].col;
                if (type == PT_TYPE_BOOL) {
                    if (pt_column_bool(src, i)) pt_bit_set(r->values->data, i);
                } else if (w == 8) {
                    ((uint64_t *)r->values->data)[i] = ((const uint64_t *)src->values->data)[src->offset + i];
                } else {
                    ((uint32_t *)r->values->data)[i] = ((const uint32_t *)src->values->data)[src->offset + i];
                }
            }
            pt__set_validity(r, validity);
            validity = NULL;
        }
    }
    for (int k = 0; k < nv; k++) pt__val_release(&v[k]);
    if (v != small) pt_free(v);
    pt_buffer_release(validity);
    if (st != PT_OK) {
        pt_column_release(r);
        return st;
    }
    *out = r;
    return PT_OK;
}

static pt_status eval_case(const pt__bound *b, pt__val *args, int64_t n, pt_mem *mem,
                           pt_column **out, pt_error *err) {
    int nw = (b->nargs - (b->has_else ? 1 : 0)) / 2;
    int32_t *choice = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof *choice);
    uint8_t *cond = pt_malloc((size_t)(n > 0 ? n : 1));
    pt__val vals[64], *vp = vals;
    if (nw + 1 > 64) vp = pt_calloc((size_t)nw + 1, sizeof *vp);
    pt_status st = choice && cond && vp ? PT_OK : oom(err);
    for (int64_t i = 0; i < n && st == PT_OK; i++) choice[i] = b->has_else ? nw : -1;
    /* Last WHEN first, so that the first true condition wins. */
    for (int k = nw - 1; k >= 0 && st == PT_OK; k--) {
        st = pt__bool_to_bytes(&args[2 * k], n, cond, err);
        for (int64_t i = 0; i < n && st == PT_OK; i++)
            if (cond[i]) choice[i] = k;
    }
    if (st == PT_OK) {
        for (int k = 0; k < nw; k++) vp[k] = args[2 * k + 1];
        if (b->has_else) vp[nw] = args[b->nargs - 1];
        st = pt__choose(mem, b->type, vp, nw + (b->has_else ? 1 : 0), choice, n, out, err);
    }
    if (vp != vals) pt_free(vp);
    pt_free(choice);
    pt_free(cond);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                 */
/* ------------------------------------------------------------------------ */

static pt_status check_column(const pt__bound *b, const pt_table *batch, pt_error *err) {
    if (b->col >= batch->schema->nfields)
        return pt_error_set(err, PT_EINVAL,
                            "batch has %d columns but the expression was bound to column %d ('%s')",
                            batch->schema->nfields, b->col, b->text);
    const pt_column *c = batch->cols[b->col];
    if (c->type != b->type)
        return pt_error_set(err, PT_EINVAL,
                            "column %d ('%s') of the batch is %s but was bound as %s", b->col,
                            b->text, pt_type_name(c->type), pt_type_name(b->type));
    if (c->length != batch->nrows)
        return pt_error_set(err, PT_EINVAL, "column '%s' has %lld rows, the batch %lld", b->text,
                            (long long)c->length, (long long)batch->nrows);
    return PT_OK;
}

pt_status pt__eval_node(const pt__bound *b, const pt_table *batch, pt_mem *mem, pt__val *out,
                        pt_error *err) {
    out->col = NULL;
    out->k = NULL;
    if (b->kind == PT__B_COL) {
        PT_RETURN_NOT_OK(check_column(b, batch, err));
        out->col = pt_column_retain(batch->cols[b->col]);
        return PT_OK;
    }
    if (b->kind == PT__B_CONST) {
        out->k = &b->k;
        return PT_OK;
    }
    int64_t n = batch->nrows;
    pt__val small[4];
    pt__val *args = b->nargs <= 4 ? small : pt_calloc((size_t)b->nargs, sizeof *args);
    if (!args) return oom(err);
    pt_status st = PT_OK;
    int done = 0;
    for (; done < b->nargs && st == PT_OK; done++)
        st = pt__eval_node(b->args[done], batch, mem, &args[done], err);
    if (st != PT_OK) done--; /* the failed one holds nothing */
    pt_column *r = NULL;
    if (st == PT_OK) {
        switch (b->kind) {
        case PT__B_ARITH: st = eval_arith(b, &args[0], &args[1], n, mem, &r, err); break;
        case PT__B_NEG: st = eval_neg(b, &args[0], n, mem, &r, err); break;
        case PT__B_CMP: st = eval_cmp(b, &args[0], &args[1], n, mem, &r, err); break;
        case PT__B_AND:
        case PT__B_OR: st = eval_logic(b, &args[0], &args[1], n, mem, &r, err); break;
        case PT__B_NOT: st = eval_not(&args[0], n, mem, &r, err); break;
        case PT__B_ISNULL: st = eval_isnull(b, &args[0], n, mem, &r, err); break;
        case PT__B_CONCAT: st = eval_concat(&args[0], &args[1], n, mem, &r, err); break;
        case PT__B_CAST: st = eval_cast(b, &args[0], n, mem, &r, err); break;
        case PT__B_CALL: st = pt__func_eval(b, args, n, mem, &r, err); break;
        case PT__B_CASE: st = eval_case(b, args, n, mem, &r, err); break;
        default: st = pt_error_set(err, PT_EINTERNAL, "bad bound node kind %d", (int)b->kind);
        }
    }
    for (int k = 0; k < done; k++) pt__val_release(&args[k]);
    if (args != small) pt_free(args);
    if (st == PT_OK) out->col = r;
    return st;
}

pt_status pt__expr_eval(const pt__bound *b, const pt_table *batch, pt_mem *mem, pt_column **out,
                        pt_error *err) {
    *out = NULL;
    if (!b || !batch) return pt_error_set(err, PT_EINVAL, "pt__expr_eval: expression or batch is NULL");
    pt__val v;
    PT_RETURN_NOT_OK(pt__eval_node(b, batch, mem, &v, err));
    pt_status st = pt__val_to_column(mem, &v, b->type, batch->nrows, err);
    if (st == PT_OK) {
        *out = v.col;
        v.col = NULL;
    }
    pt__val_release(&v);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Filter masks                                                             */
/* ------------------------------------------------------------------------ */

/* mask[i] &= validity bit i of every column in vals. */
static pt_status mask_validity(const pt__val *vals, int nvals, int64_t n, uint8_t *mask,
                               pt_error *err) {
    for (int k = 0; k < nvals; k++) {
        if (vals[k].k) {
            if (vals[k].k->null) memset(mask, 0, (size_t)n);
            continue;
        }
        const pt_column *c = vals[k].col;
        if (!has_nulls(c)) continue;
        if (!c->validity) {
            memset(mask, 0, (size_t)n);
            continue;
        }
        const uint8_t *vb = c->validity->data;
        int64_t off = c->offset;
        for (int64_t i = 0; i < n; i++) mask[i] &= (vb[(off + i) >> 3] >> ((off + i) & 7)) & 1;
    }
    (void)err;
    return PT_OK;
}

static bool all_zero(const uint8_t *m, int64_t n) {
    uint8_t any = 0;
    for (int64_t i = 0; i < n; i++) any |= m[i];
    return any == 0;
}

static pt_status mask_rec(const pt__bound *b, const pt_table *batch, uint8_t *mask,
                          pt_error *err) {
    int64_t n = batch->nrows;
    if (b->kind == PT__B_AND || b->kind == PT__B_OR) {
        PT_RETURN_NOT_OK(mask_rec(b->args[0], batch, mask, err));
        if (b->kind == PT__B_AND && all_zero(mask, n)) return PT_OK;
        uint8_t *tmp = pt_malloc((size_t)(n > 0 ? n : 1));
        if (!tmp) return oom(err);
        pt_status st = mask_rec(b->args[1], batch, tmp, err);
        if (st == PT_OK) {
            if (b->kind == PT__B_AND)
                for (int64_t i = 0; i < n; i++) mask[i] &= tmp[i];
            else
                for (int64_t i = 0; i < n; i++) mask[i] |= tmp[i];
        }
        pt_free(tmp);
        return st;
    }
    if (b->kind == PT__B_CMP) {
        pt__val v[2] = {{0}, {0}};
        pt_status st = pt__eval_node(b->args[0], batch, NULL, &v[0], err);
        if (st == PT_OK) st = pt__eval_node(b->args[1], batch, NULL, &v[1], err);
        if (st == PT_OK) st = pt__cmp_bytes(b->op, &v[0], &v[1], n, mask, err);
        if (st == PT_OK) st = mask_validity(v, 2, n, mask, err);
        pt__val_release(&v[0]);
        pt__val_release(&v[1]);
        return st;
    }
    pt__val v;
    PT_RETURN_NOT_OK(pt__eval_node(b, batch, NULL, &v, err));
    pt_status st = pt__bool_to_bytes(&v, n, mask, err);
    pt__val_release(&v);
    return st;
}

pt_status pt__expr_eval_mask(const pt__bound *b, const pt_table *batch, uint8_t *mask,
                             int64_t *nkeep, pt_error *err) {
    if (nkeep) *nkeep = 0;
    if (!b || !batch || (!mask && batch->nrows > 0))
        return pt_error_set(err, PT_EINVAL, "pt__expr_eval_mask: expression, batch or mask is NULL");
    if (b->type != PT_TYPE_BOOL && b->type != PT_TYPE_NULL)
        return pt_error_set(err, PT_ETYPE, "a filter needs a bool expression, but '%s' is %s",
                            b->text, pt_type_name(b->type));
    PT_RETURN_NOT_OK(mask_rec(b, batch, mask, err));
    if (nkeep) {
        int64_t c = 0;
        for (int64_t i = 0; i < batch->nrows; i++) c += mask[i];
        *nkeep = c;
    }
    return PT_OK;
}
