/* Tests of the expression engine: every operator and type against values
 * computed here in plain C, SQL null semantics, functions against values
 * written by hand, casts, binding errors, folding, SQL text and the tree
 * rewrites of the planner. Every test also checks that it leaks nothing. */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "frame/expr.h"
#include "pt_test.h"

#define N 1000

/* The reference data, kept as C arrays so expected values are computed
 * independently of the engine. */
static int64_t A[N], B[N];
static int32_t A32[N];
static double X[N], Y[N];
static float X32[N];
static bool P[N], Q[N];
static const char *S[N];
static int DI[N];
static bool An[N], Bn[N], A32n[N], Xn[N], Yn[N], X32n[N], Pn[N], Qn[N], Sn[N], Dn[N];
static const char *const WORDS[8] = {"apple", "Banana", "cherry", "", "date", "apple pie", "\xc3\xa9lan", "a_b%c"};
static const char *const DWORDS[4] = {"red", "green", "blue", "Red"};

static void fill_data(void) {
    for (int i = 0; i < N; i++) {
        A[i] = (i * 37 % 201) - 100;
        An[i] = i % 7 == 3;
        B[i] = (i * 11 % 13) - 6;
        Bn[i] = i % 5 == 2;
        A32[i] = (int32_t)(i % 50 - 25);
        A32n[i] = i % 8 == 5;
        X[i] = (i * 53 % 1000) / 10.0 - 50;
        Xn[i] = i % 9 == 4;
        Y[i] = (i * 29 % 17) - 8 + 0.5 * (i % 2);
        Yn[i] = i % 6 == 1;
        X32[i] = (float)(i % 40) / 4 - 5;
        X32n[i] = i % 10 == 7;
        P[i] = i % 3 == 0;
        Pn[i] = i % 4 == 1;
        Q[i] = i % 5 < 2;
        Qn[i] = i % 7 == 0;
        S[i] = WORDS[i % 8];
        Sn[i] = i % 11 == 10;
        DI[i] = i % 4;
        Dn[i] = i % 13 == 12;
    }
}

static pt_table *make_table(void) {
    fill_data();
    const char *names[] = {"a", "b", "a32", "x", "y", "x32", "p", "q", "s", "d"};
    pt_type types[] = {PT_TYPE_INT64, PT_TYPE_INT64, PT_TYPE_INT32, PT_TYPE_FLOAT64, PT_TYPE_FLOAT64,
                       PT_TYPE_FLOAT32, PT_TYPE_BOOL, PT_TYPE_BOOL, PT_TYPE_UTF8, PT_TYPE_DICT};
    pt_column *cols[10], *dict;
    if (pt_column_new(NULL, PT_TYPE_UTF8, 4, 32, &dict, NULL)) return NULL;
    for (int k = 0; k < 4; k++)
        if (pt_column_append_str(dict, DWORDS[k], -1, NULL)) return NULL;
    for (int j = 0; j < 9; j++)
        if (pt_column_new(NULL, types[j], N, 8 * N, &cols[j], NULL)) return NULL;
    if (pt_column_new_dict(NULL, dict, N, &cols[9], NULL)) return NULL;
    pt_column_release(dict);
    for (int i = 0; i < N; i++) {
        pt_status st = 0;
        st |= An[i] ? pt_column_append_null(cols[0], NULL) : pt_column_append_i64(cols[0], A[i], NULL);
        st |= Bn[i] ? pt_column_append_null(cols[1], NULL) : pt_column_append_i64(cols[1], B[i], NULL);
        st |= A32n[i] ? pt_column_append_null(cols[2], NULL) : pt_column_append_i32(cols[2], A32[i], NULL);
        st |= Xn[i] ? pt_column_append_null(cols[3], NULL) : pt_column_append_f64(cols[3], X[i], NULL);
        st |= Yn[i] ? pt_column_append_null(cols[4], NULL) : pt_column_append_f64(cols[4], Y[i], NULL);
        st |= X32n[i] ? pt_column_append_null(cols[5], NULL) : pt_column_append_f32(cols[5], X32[i], NULL);
        st |= Pn[i] ? pt_column_append_null(cols[6], NULL) : pt_column_append_bool(cols[6], P[i], NULL);
        st |= Qn[i] ? pt_column_append_null(cols[7], NULL) : pt_column_append_bool(cols[7], Q[i], NULL);
        st |= Sn[i] ? pt_column_append_null(cols[8], NULL) : pt_column_append_str(cols[8], S[i], -1, NULL);
        st |= Dn[i] ? pt_column_append_null(cols[9], NULL) : pt_column_append_index(cols[9], DI[i], NULL);
        if (st) return NULL;
    }
    pt_schema *sc;
    if (pt_schema_new(10, names, types, &sc, NULL)) return NULL;
    pt_table *t;
    if (pt_table_new(sc, cols, &t, NULL)) return NULL;
    return t;
}

/* Binds and evaluates `e` (freed) over t. */
static pt_status run(const pt_table *t, pt_expr *e, pt_column **out, pt_error *err) {
    pt__bound *b = NULL;
    *out = NULL;
    pt_status st = pt__expr_bind(e, t->schema, &b, err);
    if (st == PT_OK) st = pt__expr_eval(b, t, NULL, out, err);
    pt__bound_free(b);
    pt_expr_free(e);
    return st;
}

static pt_status run_mask(const pt_table *t, pt_expr *e, uint8_t *mask, int64_t *nkeep,
                          pt_error *err) {
    pt__bound *b = NULL;
    pt_status st = pt__expr_bind(e, t->schema, &b, err);
    if (st == PT_OK) st = pt__expr_eval_mask(b, t, mask, nkeep, err);
    pt__bound_free(b);
    pt_expr_free(e);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Operands: a column or a literal, readable as C values                    */
/* ------------------------------------------------------------------------ */

typedef struct opnd {
    const char *col;  /* column name, or NULL for a literal */
    bool is_float;    /* float semantics */
    int64_t li;
    double lf;
} opnd;

static const opnd OPS[] = {
    {"a", false, 0, 0},  {"b", false, 0, 0},  {"a32", false, 0, 0}, {"x", true, 0, 0},
    {"y", true, 0, 0},   {"x32", true, 0, 0}, {NULL, false, 3, 0},   {NULL, false, -2, 0},
    {NULL, false, 0, 0}, {NULL, true, 0, 2.5},
};
#define NOPS ((int)(sizeof OPS / sizeof OPS[0]))

static pt_expr *opnd_expr(const opnd *o) {
    if (o->col) return pt_col(o->col);
    return o->is_float ? pt_lit_f64(o->lf) : pt_lit_i64(o->li);
}

/* Value of operand o at row i; false when null. */
static bool opnd_value(const opnd *o, int i, int64_t *iv, double *fv) {
    *iv = 0;
    if (!o->col) {
        *iv = o->li;
        *fv = o->is_float ? o->lf : (double)o->li;
        return true;
    }
    const char *c = o->col;
    if (strcmp(c, "a") == 0) return *iv = A[i], *fv = (double)A[i], !An[i];
    if (strcmp(c, "b") == 0) return *iv = B[i], *fv = (double)B[i], !Bn[i];
    if (strcmp(c, "a32") == 0) return *iv = A32[i], *fv = (double)A32[i], !A32n[i];
    if (strcmp(c, "x") == 0) return *fv = X[i], !Xn[i];
    if (strcmp(c, "y") == 0) return *fv = Y[i], !Yn[i];
    return *fv = (double)X32[i], !X32n[i];
}

TEST(arithmetic_every_type_and_shape) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    pt_table *t = make_table();
    CHECK(t);
    const pt_op ops[] = {PT_OP_ADD, PT_OP_SUB, PT_OP_MUL, PT_OP_DIV, PT_OP_MOD};
    const char *sym = "+-*/%";
    pt_error err;
    for (int u = 0; u < NOPS; u++) {
        for (int v = 0; v < NOPS; v++) {
            if (!OPS[u].col && !OPS[v].col) continue;
            for (int k = 0; k < 5; k++) {
                pt_column *c;
                CHECK_OK(run(t, pt_binary(ops[k], opnd_expr(&OPS[u]), opnd_expr(&OPS[v])), &c, &err), &err);
                bool flt = OPS[u].is_float || OPS[v].is_float || ops[k] == PT_OP_DIV;
                CHECK_MSG(c->type == (flt ? PT_TYPE_FLOAT64 : PT_TYPE_INT64), "type %s for op %c",
                          pt_type_name(c->type), sym[k]);
                CHECK_EQ_I(c->length, N);
                for (int i = 0; i < N; i++) {
                    int64_t ia, ib;
                    double fa, fb;
                    bool valid = opnd_value(&OPS[u], i, &ia, &fa) & opnd_value(&OPS[v], i, &ib, &fb);
                    if ((ops[k] == PT_OP_DIV || ops[k] == PT_OP_MOD) && (flt ? fb == 0 : ib == 0))
                        valid = false;
                    CHECK_MSG(pt_column_is_valid(c, i) == valid, "%s %c %s row %d: validity %d, want %d",
                              OPS[u].col ? OPS[u].col : "lit", sym[k], OPS[v].col ? OPS[v].col : "lit",
                              i, pt_column_is_valid(c, i), valid);
                    if (!valid) continue;
                    if (flt) {
                        double want = ops[k] == PT_OP_ADD   ? fa + fb
                                      : ops[k] == PT_OP_SUB ? fa - fb
                                      : ops[k] == PT_OP_MUL ? fa * fb
                                      : ops[k] == PT_OP_DIV ? fa / fb
                                                            : fmod(fa, fb);
                        CHECK_MSG(pt_column_f64(c)[i] == want, "row %d: %g %c %g = %.17g, got %.17g", i,
                                  fa, sym[k], fb, want, pt_column_f64(c)[i]);
                    } else {
                        int64_t want = ops[k] == PT_OP_ADD   ? ia + ib
                                       : ops[k] == PT_OP_SUB ? ia - ib
                                       : ops[k] == PT_OP_MUL ? ia * ib
                                                             : ia % ib;
                        CHECK_MSG(pt_column_i64(c)[i] == want, "row %d: %lld %c %lld", i,
                                  (long long)ia, sym[k], (long long)ib);
                    }
                }
                pt_column_release(c);
            }
        }
    }
    /* Unary minus. */
    pt_column *c;
    CHECK_OK(run(t, pt_unary(PT_OP_NEG, pt_col("a32")), &c, &err), &err);
    CHECK(c->type == PT_TYPE_INT64);
    for (int i = 0; i < N; i++) {
        CHECK(pt_column_is_valid(c, i) == !A32n[i]);
        if (!A32n[i]) CHECK_EQ_I(pt_column_i64(c)[i], -(int64_t)A32[i]);
    }
    pt_column_release(c);
    CHECK_OK(run(t, pt_unary(PT_OP_NEG, pt_col("x")), &c, &err), &err);
    for (int i = 0; i < N; i++)
        if (!Xn[i]) CHECK(pt_column_f64(c)[i] == -X[i]);
    pt_column_release(c);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

static bool cmp_i(pt_op op, int64_t a, int64_t b) {
    switch (op) {
    case PT_OP_EQ: return a == b;
    case PT_OP_NE: return a != b;
    case PT_OP_LT: return a < b;
    case PT_OP_LE: return a <= b;
    case PT_OP_GT: return a > b;
    default: return a >= b;
    }
}

static bool cmp_f(pt_op op, double a, double b) {
    switch (op) {
    case PT_OP_EQ: return a == b;
    case PT_OP_NE: return a != b;
    case PT_OP_LT: return a < b;
    case PT_OP_LE: return a <= b;
    case PT_OP_GT: return a > b;
    default: return a >= b;
    }
}

static const pt_op CMPS[] = {PT_OP_EQ, PT_OP_NE, PT_OP_LT, PT_OP_LE, PT_OP_GT, PT_OP_GE};

TEST(comparisons_numeric_columns_masks) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    pt_table *t = make_table();
    CHECK(t);
    pt_error err;
    uint8_t *mask = malloc(N);
    for (int u = 0; u < NOPS; u++) {
        for (int v = 0; v < NOPS; v++) {
            if (!OPS[u].col && !OPS[v].col) continue;
            for (int k = 0; k < 6; k++) {
                pt_column *c;
                CHECK_OK(run(t, pt_binary(CMPS[k], opnd_expr(&OPS[u]), opnd_expr(&OPS[v])), &c, &err), &err);
                CHECK(c->type == PT_TYPE_BOOL);
                int64_t nkeep, want_keep = 0;
                CHECK_OK(run_mask(t, pt_binary(CMPS[k], opnd_expr(&OPS[u]), opnd_expr(&OPS[v])), mask,
                                  &nkeep, &err),
                         &err);
                bool flt = OPS[u].is_float || OPS[v].is_float;
                for (int i = 0; i < N; i++) {
                    int64_t ia, ib;
                    double fa, fb;
                    bool valid = opnd_value(&OPS[u], i, &ia, &fa) & opnd_value(&OPS[v], i, &ib, &fb);
                    bool want = flt ? cmp_f(CMPS[k], fa, fb) : cmp_i(CMPS[k], ia, ib);
                    CHECK_MSG(pt_column_is_valid(c, i) == valid, "validity row %d", i);
                    if (valid) CHECK_MSG(pt_column_bool(c, i) == want, "%s op%d %s row %d",
                                         OPS[u].col ? OPS[u].col : "lit", k,
                                         OPS[v].col ? OPS[v].col : "lit", i);
                    CHECK_MSG(mask[i] == (valid && want), "mask row %d", i);
                    want_keep += valid && want;
                }
                CHECK_EQ_I(nkeep, want_keep);
                pt_column_release(c);
            }
        }
    }
    free(mask);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

static int sgn_strcmp(const char *a, const char *b) {
    int c = strcmp(a, b);
    return c < 0 ? -1 : c > 0;
}

TEST(comparisons_text_dict_and_utf8) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    pt_table *t = make_table();
    CHECK(t);
    pt_error err;
    const char *lits[] = {"apple", "green", "", "Red", "zzz"};
    uint8_t mask[N];
    for (int side = 0; side < 2; side++) {
        for (int l = 0; l < 5; l++) {
            for (int k = 0; k < 6; k++) {
                for (int which = 0; which < 2; which++) { /* s (utf8) or d (dict) */
                    const char *col = which ? "d" : "s";
                    pt_expr *e = side ? pt_binary(CMPS[k], pt_lit_str(lits[l]), pt_col(col))
                                      : pt_binary(CMPS[k], pt_col(col), pt_lit_str(lits[l]));
                    pt_column *c;
                    CHECK_OK(run(t, pt_expr_ref(e), &c, &err), &err);
                    CHECK_OK(run_mask(t, e, mask, NULL, &err), &err);
                    for (int i = 0; i < N; i++) {
                        bool valid = which ? !Dn[i] : !Sn[i];
                        const char *sv = which ? DWORDS[DI[i]] : S[i];
                        int c3 = side ? sgn_strcmp(lits[l], sv) : sgn_strcmp(sv, lits[l]);
                        bool want = cmp_i(CMPS[k], c3, 0);
                        CHECK(pt_column_is_valid(c, i) == valid);
                        if (valid) CHECK_MSG(pt_column_bool(c, i) == want, "%s row %d '%s' vs '%s'", col, i, sv, lits[l]);
                        CHECK(mask[i] == (valid && want));
                    }
                    pt_column_release(c);
                }
            }
        }
    }
    /* Column against column: s vs d (utf8 vs dict), d vs d (same dict). */
    for (int k = 0; k < 6; k++) {
        pt_column *c, *c2;
        CHECK_OK(run(t, pt_binary(CMPS[k], pt_col("s"), pt_col("d")), &c, &err), &err);
        CHECK_OK(run(t, pt_binary(CMPS[k], pt_col("d"), pt_col("d")), &c2, &err), &err);
        for (int i = 0; i < N; i++) {
            bool valid = !Sn[i] && !Dn[i];
            CHECK(pt_column_is_valid(c, i) == valid);
            if (valid) CHECK(pt_column_bool(c, i) == cmp_i(CMPS[k], sgn_strcmp(S[i], DWORDS[DI[i]]), 0));
            CHECK(pt_column_is_valid(c2, i) == !Dn[i]);
            if (!Dn[i]) CHECK(pt_column_bool(c2, i) == cmp_i(CMPS[k], 0, 0));
        }
        pt_column_release(c);
        pt_column_release(c2);
    }
    /* A dict comparison equals the same comparison on the decoded text. */
    pt_column *c1, *c2;
    CHECK_OK(run(t, pt_binary(PT_OP_EQ, pt_col("d"), pt_lit_str("green")), &c1, &err), &err);
    CHECK_OK(run(t, pt_binary(PT_OP_EQ, pt_cast(pt_col("d"), PT_TYPE_UTF8), pt_lit_str("green")), &c2, &err), &err);
    for (int i = 0; i < N; i++) {
        CHECK(pt_column_is_valid(c1, i) == pt_column_is_valid(c2, i));
        if (pt_column_is_valid(c1, i)) CHECK(pt_column_bool(c1, i) == pt_column_bool(c2, i));
    }
    pt_column_release(c1);
    pt_column_release(c2);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

/* A 9-row table with every (p, q) combination of true, false, null. */
static pt_table *truth_table(int64_t pad) {
    const char *names[] = {"p", "q"};
    pt_type types[] = {PT_TYPE_BOOL, PT_TYPE_BOOL};
    pt_column *cols[2];
    if (pt_column_new(NULL, PT_TYPE_BOOL, 16, 0, &cols[0], NULL) ||
        pt_column_new(NULL, PT_TYPE_BOOL, 16, 0, &cols[1], NULL))
        return NULL;
    for (int64_t r = 0; r < pad + 9; r++) {
        int i = (int)((r - pad + 9) % 9);
        int pv = i / 3, qv = i % 3; /* 0 true, 1 false, 2 null */
        pt_status st = pv == 2 ? pt_column_append_null(cols[0], NULL) : pt_column_append_bool(cols[0], pv == 0, NULL);
        st |= qv == 2 ? pt_column_append_null(cols[1], NULL) : pt_column_append_bool(cols[1], qv == 0, NULL);
        if (st) return NULL;
    }
    pt_schema *sc;
    pt_table *t, *s;
    if (pt_schema_new(2, names, types, &sc, NULL) || pt_table_new(sc, cols, &t, NULL)) return NULL;
    if (pt_table_slice(t, pad, 9, &s, NULL)) return NULL;
    pt_table_free(t);
    return s;
}

/* 'T', 'F' or 'N' for row i of a bool column. */
static char tv(const pt_column *c, int i) {
    return !pt_column_is_valid(c, i) ? 'N' : pt_column_bool(c, i) ? 'T' : 'F';
}

TEST(three_valued_logic_truth_tables) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    /* Rows: TT TF TN FT FF FN NT NF NN. */
    const char *want_and = "TFNFFFNFN", *want_or = "TTTTFNTNN";
    const char *want_not = "TTTFFFNNN"; /* NOT p reversed below */
    pt_error err;
    for (int64_t pad = 0; pad < 12; pad += 5) { /* pad 5, 10: bit offsets not multiple of 8 */
        pt_table *t = truth_table(pad);
        CHECK(t);
        pt_column *c;
        uint8_t mask[9];
        CHECK_OK(run(t, pt_binary(PT_OP_AND, pt_col("p"), pt_col("q")), &c, &err), &err);
        for (int i = 0; i < 9; i++) CHECK_MSG(tv(c, i) == want_and[i], "AND row %d pad %d: %c", i, (int)pad, tv(c, i));
        pt_column_release(c);
        CHECK_OK(run_mask(t, pt_binary(PT_OP_AND, pt_col("p"), pt_col("q")), mask, NULL, &err), &err);
        for (int i = 0; i < 9; i++) CHECK(mask[i] == (want_and[i] == 'T'));
        CHECK_OK(run(t, pt_binary(PT_OP_OR, pt_col("p"), pt_col("q")), &c, &err), &err);
        for (int i = 0; i < 9; i++) CHECK_MSG(tv(c, i) == want_or[i], "OR row %d: %c", i, tv(c, i));
        pt_column_release(c);
        CHECK_OK(run_mask(t, pt_binary(PT_OP_OR, pt_col("p"), pt_col("q")), mask, NULL, &err), &err);
        for (int i = 0; i < 9; i++) CHECK(mask[i] == (want_or[i] == 'T'));
        CHECK_OK(run(t, pt_unary(PT_OP_NOT, pt_col("p")), &c, &err), &err);
        for (int i = 0; i < 9; i++) {
            char p = want_not[i];
            char want = p == 'T' ? 'F' : p == 'F' ? 'T' : 'N';
            CHECK_MSG(tv(c, i) == want, "NOT row %d", i);
        }
        pt_column_release(c);
        /* NOT in a filter: null stays dropped. */
        CHECK_OK(run_mask(t, pt_unary(PT_OP_NOT, pt_col("q")), mask, NULL, &err), &err);
        for (int i = 0; i < 9; i++) CHECK(mask[i] == (i % 3 == 1));
        CHECK_OK(run(t, pt_unary(PT_OP_IS_NULL, pt_col("q")), &c, &err), &err);
        for (int i = 0; i < 9; i++) CHECK(tv(c, i) == (i % 3 == 2 ? 'T' : 'F'));
        pt_column_release(c);
        CHECK_OK(run(t, pt_unary(PT_OP_IS_NOT_NULL, pt_col("p")), &c, &err), &err);
        for (int i = 0; i < 9; i++) CHECK(tv(c, i) == (i / 3 == 2 ? 'F' : 'T'));
        pt_column_release(c);
        /* Bool comparisons (false < true), null when either side is. */
        CHECK_OK(run(t, pt_binary(PT_OP_EQ, pt_col("p"), pt_col("q")), &c, &err), &err);
        for (int i = 0; i < 9; i++) CHECK_MSG(tv(c, i) == "TFNFTNNNN"[i], "p = q row %d", i);
        pt_column_release(c);
        CHECK_OK(run(t, pt_binary(PT_OP_LT, pt_col("p"), pt_col("q")), &c, &err), &err);
        for (int i = 0; i < 9; i++) CHECK_MSG(tv(c, i) == "FFNTFNNNN"[i], "p < q row %d", i);
        pt_column_release(c);
        CHECK_OK(run(t, pt_binary(PT_OP_NE, pt_col("q"), pt_lit_bool(true)), &c, &err), &err);
        for (int i = 0; i < 9; i++) CHECK_MSG(tv(c, i) == "FTN"[i % 3], "q <> TRUE row %d", i);
        pt_column_release(c);
        /* With literals: x AND NULL, x OR NULL. */
        CHECK_OK(run(t, pt_binary(PT_OP_AND, pt_col("p"), pt_lit_null()), &c, &err), &err);
        for (int i = 0; i < 9; i++) CHECK(tv(c, i) == (i / 3 == 1 ? 'F' : 'N'));
        pt_column_release(c);
        CHECK_OK(run(t, pt_binary(PT_OP_OR, pt_col("p"), pt_lit_null()), &c, &err), &err);
        for (int i = 0; i < 9; i++) CHECK(tv(c, i) == (i / 3 == 0 ? 'T' : 'N'));
        pt_column_release(c);
        pt_table_free(t);
    }
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

/* ------------------------------------------------------------------------ */
/* Errors: division, overflow, binding                                      */
/* ------------------------------------------------------------------------ */

static pt_table *int_table(int n, const int64_t *m, const int64_t *k, const bool *mnull) {
    const char *names[] = {"m", "k"};
    pt_type types[] = {PT_TYPE_INT64, PT_TYPE_INT64};
    pt_column *cols[2];
    if (pt_column_new(NULL, PT_TYPE_INT64, n, 0, &cols[0], NULL) ||
        pt_column_new(NULL, PT_TYPE_INT64, n, 0, &cols[1], NULL))
        return NULL;
    for (int i = 0; i < n; i++) {
        pt_status st = mnull && mnull[i] ? pt_column_append_null(cols[0], NULL)
                                         : pt_column_append_i64(cols[0], m[i], NULL);
        st |= pt_column_append_i64(cols[1], k[i], NULL);
        if (st) return NULL;
        /* Put an extreme value under the null, as a kernel may meet it. */
        if (mnull && mnull[i]) ((int64_t *)cols[0]->values->data)[i] = m[i];
    }
    pt_schema *sc;
    pt_table *t;
    if (pt_schema_new(2, names, types, &sc, NULL) || pt_table_new(sc, cols, &t, NULL)) return NULL;
    return t;
}

TEST(division_by_zero_is_null) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    int64_t m[] = {7, 8, -9, 5}, k[] = {2, 0, 4, -1};
    pt_table *t = int_table(4, m, k, NULL);
    CHECK(t);
    pt_error err;
    pt_column *c;
    CHECK_OK(run(t, pt_binary(PT_OP_DIV, pt_col("m"), pt_col("k")), &c, &err), &err);
    CHECK(c->type == PT_TYPE_FLOAT64);
    CHECK(pt_column_f64(c)[0] == 3.5 && !pt_column_is_valid(c, 1) && pt_column_f64(c)[2] == -2.25);
    CHECK(pt_column_f64(c)[3] == -5.0);
    CHECK_EQ_I(c->null_count, 1);
    pt_column_release(c);
    CHECK_OK(run(t, pt_binary(PT_OP_MOD, pt_col("m"), pt_col("k")), &c, &err), &err);
    CHECK(pt_column_i64(c)[0] == 1 && !pt_column_is_valid(c, 1) && pt_column_i64(c)[2] == -1);
    CHECK(pt_column_i64(c)[3] == 0);
    pt_column_release(c);
    CHECK_OK(run(t, pt_binary(PT_OP_DIV, pt_col("m"), pt_lit_i64(0)), &c, &err), &err);
    CHECK_EQ_I(c->null_count, 4);
    pt_column_release(c);
    CHECK_OK(run(t, pt_binary(PT_OP_DIV, pt_col("m"), pt_lit_f64(0.0)), &c, &err), &err);
    CHECK_EQ_I(c->null_count, 4);
    pt_column_release(c);
    /* Constant: 1 / 0 folds to a null float64. */
    CHECK_OK(run(t, pt_binary(PT_OP_DIV, pt_lit_i64(1), pt_lit_i64(0)), &c, &err), &err);
    CHECK(c->type == PT_TYPE_FLOAT64);
    CHECK_EQ_I(c->null_count, 4);
    pt_column_release(c);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

TEST(integer_overflow_is_an_error) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    int64_t m[] = {1, INT64_MAX, 5, INT64_MIN}, k[] = {1, 1, 2, 3};
    bool mnull[] = {false, false, false, false};
    pt_table *t = int_table(4, m, k, mnull);
    CHECK(t);
    pt_error err;
    pt_column *c = NULL;
    CHECK(run(t, pt_binary(PT_OP_ADD, pt_col("m"), pt_col("k")), &c, &err) == PT_ERANGE);
    CHECK(c == NULL);
    CHECK_STR(err.msg, "integer overflow in 'm + k' at row 1: 9223372036854775807 + 1");
    CHECK(run(t, pt_binary(PT_OP_SUB, pt_col("m"), pt_lit_i64(1)), &c, &err) == PT_ERANGE);
    CHECK_CONTAINS(err.msg, "at row 3: -9223372036854775808 - 1");
    CHECK(run(t, pt_binary(PT_OP_MUL, pt_lit_i64(2), pt_col("m")), &c, &err) == PT_ERANGE);
    CHECK_CONTAINS(err.msg, "'2 * m' at row 1");
    CHECK(run(t, pt_unary(PT_OP_NEG, pt_col("m")), &c, &err) == PT_ERANGE);
    CHECK_CONTAINS(err.msg, "at row 3");
    CHECK(run(t, pt_call("abs", 1, (pt_expr *[]){pt_col("m")}), &c, &err) == PT_ERANGE);
    CHECK_CONTAINS(err.msg, "abs(m)");
    pt_table_free(t);
    /* Overflow under a null row is no error: that row is null anyway. */
    bool mnull2[] = {false, true, false, true};
    t = int_table(4, m, k, mnull2);
    CHECK(t);
    CHECK_OK(run(t, pt_binary(PT_OP_ADD, pt_col("m"), pt_col("k")), &c, &err), &err);
    CHECK(pt_column_i64(c)[0] == 2 && pt_column_i64(c)[2] == 7);
    CHECK(!pt_column_is_valid(c, 1) && !pt_column_is_valid(c, 3));
    pt_column_release(c);
    /* Constant overflow is found while binding. */
    pt__bound *b = NULL;
    pt_expr *e = pt_binary(PT_OP_ADD, pt_lit_i64(INT64_MAX), pt_lit_i64(1));
    CHECK(pt__expr_bind(e, t->schema, &b, &err) == PT_ERANGE);
    pt_expr_free(e);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

static pt_status bind_only(const pt_table *t, pt_expr *e, pt_error *err) {
    pt__bound *b = NULL;
    pt_status st = pt__expr_bind(e, t->schema, &b, err);
    pt__bound_free(b);
    pt_expr_free(e);
    return st;
}

TEST(binding_errors_and_resolution) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    pt_table *t = make_table();
    CHECK(t);
    pt_error err;
    CHECK(bind_only(t, pt_binary(PT_OP_GT, pt_col("zz"), pt_lit_i64(1)), &err) == PT_EINVAL);
    CHECK_STR(err.msg, "unknown column 'zz'; available columns: a, b, a32, x, y, x32, p, q, s, d");
    CHECK(bind_only(t, pt_binary(PT_OP_EQ, pt_col("s"), pt_lit_i64(3)), &err) == PT_ETYPE);
    CHECK_STR(err.msg, "cannot compare utf8 's' with int64 3 in 's = 3'");
    CHECK(bind_only(t, pt_binary(PT_OP_ADD, pt_col("d"), pt_lit_i64(1)), &err) == PT_ETYPE);
    CHECK_STR(err.msg, "cannot apply + to dict<utf8> 'd' and int64 1 in 'd + 1'");
    CHECK(bind_only(t, pt_binary(PT_OP_AND, pt_col("a"), pt_col("p")), &err) == PT_ETYPE);
    CHECK_CONTAINS(err.msg, "AND needs bool operands, got int64 'a'");
    CHECK(bind_only(t, pt_unary(PT_OP_NOT, pt_col("x")), &err) == PT_ETYPE);
    CHECK(bind_only(t, pt_call("frobnicate", 1, (pt_expr *[]){pt_col("a")}), &err) == PT_EINVAL);
    CHECK_STR(err.msg, "unknown function 'frobnicate' in 'frobnicate(a)'");
    CHECK(bind_only(t, pt_call("substr", 1, (pt_expr *[]){pt_col("s")}), &err) == PT_EINVAL);
    CHECK_STR(err.msg, "substr takes 2 to 3 arguments, got 1 in 'substr(s)'");
    CHECK(bind_only(t, pt_call("sqrt", 1, (pt_expr *[]){pt_col("s")}), &err) == PT_ETYPE);
    CHECK_STR(err.msg, "sqrt: argument 1 must be a number, got utf8 's' in 'sqrt(s)'");
    CHECK(bind_only(t, pt_call("lower", 1, (pt_expr *[]){pt_col("a")}), &err) == PT_ETYPE);
    CHECK(bind_only(t, pt_agg(PT_AGG_SUM, pt_col("a"), NULL), &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "aggregate 'sum(a)' is not allowed here");
    CHECK(bind_only(t, pt_case(1, (pt_expr *[]){pt_col("a")}, (pt_expr *[]){pt_lit_i64(1)}, NULL), &err) == PT_ETYPE);
    CHECK(bind_only(t, pt_call("coalesce", 2, (pt_expr *[]){pt_col("s"), pt_col("a")}), &err) == PT_ETYPE);
    CHECK_CONTAINS(err.msg, "incompatible types");
    /* Case-insensitive resolution when unique; types and positions. */
    pt__bound *b;
    pt_expr *e = pt_col("X32");
    CHECK_OK(pt__expr_bind(e, t->schema, &b, &err), &err);
    CHECK_EQ_I(pt__bound_column(b), 5);
    CHECK(pt__bound_type(b) == PT_TYPE_FLOAT32);
    pt__bound_free(b);
    pt_expr_free(e);
    e = pt_binary(PT_OP_ADD, pt_col("a"), pt_lit_i64(1));
    CHECK_OK(pt__expr_bind(e, t->schema, &b, &err), &err);
    CHECK_EQ_I(pt__bound_column(b), -1);
    CHECK(!pt__bound_is_const(b));
    pt__bound_free(b);
    pt_expr_free(e);
    e = pt_binary(PT_OP_MUL, pt_lit_i64(6), pt_lit_i64(7));
    CHECK_OK(pt__expr_bind(e, t->schema, &b, &err), &err);
    CHECK(pt__bound_is_const(b));
    pt__bound_free(b);
    pt_expr_free(e);
    pt_table_free(t);
    /* Ambiguous names. */
    const char *names[] = {"Val", "VAL"};
    pt_type types[] = {PT_TYPE_INT64, PT_TYPE_INT64};
    pt_schema *sc;
    CHECK_OK(pt_schema_new(2, names, types, &sc, &err), &err);
    e = pt_col("val");
    CHECK(pt__expr_bind(e, sc, &b, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "column 'val' is ambiguous: it matches Val, VAL");
    pt_expr_free(e);
    e = pt_col("VAL"); /* an exact match wins */
    CHECK_OK(pt__expr_bind(e, sc, &b, &err), &err);
    CHECK_EQ_I(pt__bound_column(b), 1);
    pt__bound_free(b);
    pt_expr_free(e);
    pt_schema_free(sc);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

/* ------------------------------------------------------------------------ */
/* Functions                                                                */
/* ------------------------------------------------------------------------ */

static const char *const W[] = {"hello", "  pad  ", "Stra\xc3\x9f" "e", NULL, "a_b%c", "HeLLo"};
#define NW 6

/* A table with the words as utf8 "w" and as dict "dw". */
static pt_table *word_table(void) {
    const char *names[] = {"w", "dw", "n"};
    pt_type types[] = {PT_TYPE_UTF8, PT_TYPE_UTF8, PT_TYPE_INT64};
    pt_column *cols[3];
    if (pt_column_new(NULL, PT_TYPE_UTF8, NW, 64, &cols[0], NULL) ||
        pt_column_new(NULL, PT_TYPE_INT64, NW, 0, &cols[2], NULL))
        return NULL;
    for (int i = 0; i < NW; i++) {
        pt_status st = W[i] ? pt_column_append_str(cols[0], W[i], -1, NULL) : pt_column_append_null(cols[0], NULL);
        st |= pt_column_append_i64(cols[2], i, NULL);
        if (st) return NULL;
    }
    if (pt_column_cast(NULL, cols[0], PT_TYPE_DICT, &cols[1], NULL)) return NULL;
    types[1] = PT_TYPE_DICT;
    pt_schema *sc;
    pt_table *t;
    if (pt_schema_new(3, names, types, &sc, NULL) || pt_table_new(sc, cols, &t, NULL)) return NULL;
    return t;
}

/* Checks text results; NULL in want = null. */
static bool text_is(const pt_column *c, int i, const char *want) {
    if (!want) return !pt_column_is_valid(c, i);
    if (!pt_column_is_valid(c, i)) return false;
    int64_t len;
    const char *s = pt_column_str(c, i, &len);
    return (int64_t)strlen(want) == len && memcmp(s, want, (size_t)len) == 0;
}

/* Evaluates fn(w, extra...) and fn(dw, extra...) and checks both. */
static int check_text_fn(const pt_table *t, const char *fn, int nextra, pt_expr **extra,
                         const char *const *want) {
    for (int which = 0; which < 2; which++) {
        pt_expr *args[4];
        args[0] = pt_col(which ? "dw" : "w");
        for (int k = 0; k < nextra; k++) args[k + 1] = pt_expr_ref(extra[k]);
        pt_column *c;
        pt_error err;
        if (run(t, pt_call(fn, nextra + 1, args), &c, &err) != PT_OK) {
            fprintf(stderr, "%s: %s\n", fn, err.msg);
            return -1;
        }
        if (which == 1 && c->type != PT_TYPE_DICT) {
            fprintf(stderr, "%s on dict gave %s\n", fn, pt_type_name(c->type));
            pt_column_release(c);
            return -1;
        }
        for (int i = 0; i < NW; i++) {
            if (!text_is(c, i, want[i])) {
                fprintf(stderr, "%s(%s) row %d: want '%s'\n", fn, which ? "dw" : "w", i,
                        want[i] ? want[i] : "NULL");
                pt_column_release(c);
                return i + 1;
            }
        }
        pt_column_release(c);
    }
    for (int k = 0; k < nextra; k++) pt_expr_free(extra[k]);
    return 0;
}

/* Same for functions returning bool ('T', 'F', 'N') or int64 (-1 = null). */
static int check_pred_fn(const pt_table *t, const char *fn, pt_expr *arg, const char *want) {
    for (int which = 0; which < 2; which++) {
        pt_column *c;
        pt_error err;
        pt_expr *args[2] = {pt_col(which ? "dw" : "w"), pt_expr_ref(arg)};
        if (run(t, pt_call(fn, 2, args), &c, &err) != PT_OK) return -1;
        for (int i = 0; i < NW; i++) {
            if (tv(c, i) != want[i]) {
                fprintf(stderr, "%s(%s) row %d: %c, want %c\n", fn, which ? "dw" : "w", i, tv(c, i), want[i]);
                pt_column_release(c);
                return i + 1;
            }
        }
        pt_column_release(c);
    }
    pt_expr_free(arg);
    return 0;
}

TEST(text_functions_utf8_and_dict) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    pt_table *t = word_table();
    CHECK(t);
    const char *lower[] = {"hello", "  pad  ", "stra\xc3\x9f" "e", NULL, "a_b%c", "hello"};
    const char *upper[] = {"HELLO", "  PAD  ", "STRA\xc3\x9f" "E", NULL, "A_B%C", "HELLO"};
    const char *sub23[] = {"ell", " pa", "tra", NULL, "_b%", "eLL"};
    const char *sub4[] = {"lo", "ad  ", "a\xc3\x9f" "e", NULL, "%c", "Lo"};
    const char *sub51[] = {"o", "d", "\xc3\x9f", NULL, "c", "o"};
    const char *trim[] = {"hello", "pad", "Stra\xc3\x9f" "e", NULL, "a_b%c", "HeLLo"};
    const char *ltrim[] = {"hello", "pad  ", "Stra\xc3\x9f" "e", NULL, "a_b%c", "HeLLo"};
    const char *rtrim[] = {"hello", "  pad", "Stra\xc3\x9f" "e", NULL, "a_b%c", "HeLLo"};
    const char *repl[] = {"heLLo", "  pad  ", "Stra\xc3\x9f" "e", NULL, "a_b%c", "HeLLo"};
    const char *repl2[] = {"hello", "_pad_", "Stra\xc3\x9f" "e", NULL, "a_b%c", "HeLLo"};
    CHECK_EQ_I(check_text_fn(t, "lower", 0, NULL, lower), 0);
    CHECK_EQ_I(check_text_fn(t, "UPPER", 0, NULL, upper), 0);
    CHECK_EQ_I(check_text_fn(t, "substr", 2, (pt_expr *[]){pt_lit_i64(2), pt_lit_i64(3)}, sub23), 0);
    CHECK_EQ_I(check_text_fn(t, "substr", 1, (pt_expr *[]){pt_lit_i64(4)}, sub4), 0);
    CHECK_EQ_I(check_text_fn(t, "substring", 2, (pt_expr *[]){pt_lit_i64(5), pt_lit_i64(1)}, sub51), 0);
    CHECK_EQ_I(check_text_fn(t, "trim", 0, NULL, trim), 0);
    CHECK_EQ_I(check_text_fn(t, "ltrim", 0, NULL, ltrim), 0);
    CHECK_EQ_I(check_text_fn(t, "rtrim", 0, NULL, rtrim), 0);
    CHECK_EQ_I(check_text_fn(t, "replace", 2, (pt_expr *[]){pt_lit_str("l"), pt_lit_str("L")}, repl), 0);
    CHECK_EQ_I(check_text_fn(t, "replace", 2, (pt_expr *[]){pt_lit_str("  "), pt_lit_str("_")}, repl2), 0);
    CHECK_EQ_I(check_pred_fn(t, "like", pt_lit_str("h%"), "TFFNFF"), 0);
    CHECK_EQ_I(check_pred_fn(t, "like", pt_lit_str("%l_o"), "TFFNFF"), 0);
    CHECK_EQ_I(check_pred_fn(t, "like", pt_lit_str("%L%"), "FFFNFT"), 0);
    CHECK_EQ_I(check_pred_fn(t, "like", pt_lit_str("%o"), "TFFNFT"), 0);
    CHECK_EQ_I(check_pred_fn(t, "like", pt_lit_str("hello"), "TFFNFF"), 0);
    CHECK_EQ_I(check_pred_fn(t, "like", pt_lit_str("a\\_b\\%c"), "FFFNTF"), 0);
    CHECK_EQ_I(check_pred_fn(t, "like", pt_lit_str("_____"), "TFFNTT"), 0);
    CHECK_EQ_I(check_pred_fn(t, "like", pt_lit_str("Stra_e"), "FFTNFF"), 0);
    CHECK_EQ_I(check_pred_fn(t, "like", pt_lit_str("%a%a%"), "FFFNFF"), 0);
    CHECK_EQ_I(check_pred_fn(t, "like", pt_lit_str("%"), "TTTNTT"), 0);
    CHECK_EQ_I(check_pred_fn(t, "like", pt_lit_str("_%_"), "TTTNTT"), 0);
    CHECK_EQ_I(check_pred_fn(t, "like", pt_lit_str("%l%l%"), "TFFNFF"), 0);
    CHECK_EQ_I(check_pred_fn(t, "contains", pt_lit_str("ll"), "TFFNFF"), 0);
    CHECK_EQ_I(check_pred_fn(t, "contains", pt_lit_str(""), "TTTNTT"), 0);
    CHECK_EQ_I(check_pred_fn(t, "starts_with", pt_lit_str("He"), "FFFNFT"), 0);
    CHECK_EQ_I(check_pred_fn(t, "ends_with", pt_lit_str("c"), "FFFNTF"), 0);
    /* A per-row pattern (not a constant). */
    {
        pt_column *c;
        pt_error err;
        CHECK_OK(run(t, pt_call("like", 2, (pt_expr *[]){pt_col("w"), pt_col("w")}), &c, &err), &err);
        /* Every text matches itself ('a_b%c' too: _ and % match themselves). */
        for (int i = 0; i < NW; i++) CHECK(tv(c, i) == (i == 3 ? 'N' : 'T'));
        pt_column_release(c);
    }
    /* length in characters, on both encodings. */
    for (int which = 0; which < 2; which++) {
        pt_column *c;
        pt_error err;
        CHECK_OK(run(t, pt_call("length", 1, (pt_expr *[]){pt_col(which ? "dw" : "w")}), &c, &err), &err);
        const int64_t want[] = {5, 7, 6, -1, 5, 5};
        for (int i = 0; i < NW; i++) {
            CHECK(pt_column_is_valid(c, i) == (want[i] >= 0));
            if (want[i] >= 0) CHECK_EQ_I(pt_column_i64(c)[i], want[i]);
        }
        pt_column_release(c);
    }
    /* lower() on a dict merges entries that become equal. */
    {
        pt_column *c;
        pt_error err;
        CHECK_OK(run(t, pt_call("lower", 1, (pt_expr *[]){pt_col("dw")}), &c, &err), &err);
        CHECK(c->type == PT_TYPE_DICT);
        CHECK_EQ_I(c->dict->length, 4); /* hello, "  pad  ", straße, a_b%c */
        CHECK_EQ_I(pt_column_i32(c)[0], pt_column_i32(c)[5]);
        pt_column_release(c);
    }
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

/* Evaluates a constant expression on a 1-row table. */
static pt_status eval_const(pt_expr *e, pt_column **out, pt_error *err) {
    pt_schema sc = {0, NULL};
    pt_table t = {&sc, NULL, 1};
    return run(&t, e, out, err);
}

static pt_expr *call1(const char *fn, pt_expr *a) { return pt_call(fn, 1, (pt_expr *[]){a}); }
static pt_expr *call1_lower_d(void) { return call1("lower", pt_col("d")); }
static pt_expr *call2(const char *fn, pt_expr *a, pt_expr *b) { return pt_call(fn, 2, (pt_expr *[]){a, b}); }
static pt_expr *call3(const char *fn, pt_expr *a, pt_expr *b, pt_expr *c) {
    return pt_call(fn, 3, (pt_expr *[]){a, b, c});
}

#define CHECK_CONST_F(expr, want)                                                       \
    do {                                                                               \
        pt_column *cc;                                                                 \
        pt_error ee;                                                                   \
        CHECK_OK(eval_const((expr), &cc, &ee), &ee);                                   \
        CHECK_MSG(pt_column_is_valid(cc, 0), "%s is null", #expr);                    \
        double vv = pt_column_get_f64(cc, 0);                                          \
        double ww = (double)(want);                                                    \
        CHECK_MSG(fabs(vv - ww) <= 1e-12 * fmax(1, fabs(ww)), "%s = %.17g, want %.17g", #expr, vv, ww); \
        pt_column_release(cc);                                                         \
    } while (0)

#define CHECK_CONST_TYPE(expr, ty)                                                    \
    do {                                                                               \
        pt_column *cc;                                                                 \
        pt_error ee;                                                                   \
        CHECK_OK(eval_const((expr), &cc, &ee), &ee);                                   \
        CHECK_MSG(cc->type == (ty), "%s: type %s", #expr, pt_type_name(cc->type));    \
        pt_column_release(cc);                                                         \
    } while (0)

#define CHECK_CONST_NULL(expr)                                                          \
    do {                                                                               \
        pt_column *cc;                                                                 \
        pt_error ee;                                                                   \
        CHECK_OK(eval_const((expr), &cc, &ee), &ee);                                   \
        CHECK_MSG(!pt_column_is_valid(cc, 0), "%s is not null", #expr);               \
        pt_column_release(cc);                                                         \
    } while (0)

#define CHECK_CONST_S(expr, want)                                                       \
    do {                                                                               \
        pt_column *cc;                                                                 \
        pt_error ee;                                                                   \
        CHECK_OK(eval_const((expr), &cc, &ee), &ee);                                   \
        CHECK_MSG(text_is(cc, 0, (want)), "%s, want '%s'", #expr, (want));            \
        pt_column_release(cc);                                                         \
    } while (0)

TEST(scalar_functions_by_hand) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    CHECK_CONST_F(call1("abs", pt_lit_i64(-3)), 3);
    CHECK_CONST_TYPE(call1("abs", pt_lit_i64(-3)), PT_TYPE_INT64);
    CHECK_CONST_F(call1("abs", pt_lit_f64(-2.5)), 2.5);
    CHECK_CONST_F(call1("round", pt_lit_f64(2.5)), 3);
    CHECK_CONST_F(call1("round", pt_lit_f64(-2.5)), -3);
    CHECK_CONST_F(call2("round", pt_lit_f64(3.14159), pt_lit_i64(2)), 3.14);
    CHECK_CONST_F(call2("round", pt_lit_f64(1234.5), pt_lit_i64(-2)), 1200);
    CHECK_CONST_F(call2("round", pt_lit_i64(1250), pt_lit_i64(-2)), 1300);
    CHECK_CONST_F(call2("round", pt_lit_i64(-1249), pt_lit_i64(-2)), -1200);
    CHECK_CONST_F(call2("round", pt_lit_i64(77), pt_lit_i64(1)), 77);
    CHECK_CONST_F(call1("floor", pt_lit_f64(-1.5)), -2);
    CHECK_CONST_F(call1("ceil", pt_lit_f64(-1.5)), -1);
    CHECK_CONST_F(call1("ceil", pt_lit_i64(4)), 4);
    CHECK_CONST_F(call1("sqrt", pt_lit_i64(16)), 4);
    CHECK_CONST_NULL(call1("sqrt", pt_lit_i64(-1)));
    CHECK_CONST_F(call1("ln", call1("exp", pt_lit_i64(1))), 1);
    CHECK_CONST_NULL(call1("ln", pt_lit_i64(0)));
    CHECK_CONST_F(call1("log10", pt_lit_i64(1000)), 3);
    CHECK_CONST_F(call1("exp", pt_lit_i64(0)), 1);
    CHECK_CONST_F(call2("pow", pt_lit_i64(2), pt_lit_i64(10)), 1024);
    CHECK_CONST_F(call2("power", pt_lit_f64(9), pt_lit_f64(0.5)), 3);
    CHECK_CONST_NULL(call2("pow", pt_lit_i64(2), pt_lit_null()));
    CHECK_CONST_F(pt_call("greatest", 3, (pt_expr *[]){pt_lit_i64(1), pt_lit_i64(5), pt_lit_i64(3)}), 5);
    CHECK_CONST_F(pt_call("least", 3, (pt_expr *[]){pt_lit_f64(2.5), pt_lit_i64(1), pt_lit_null()}), 1);
    CHECK_CONST_TYPE(pt_call("least", 3, (pt_expr *[]){pt_lit_f64(2.5), pt_lit_i64(1), pt_lit_null()}), PT_TYPE_FLOAT64);
    CHECK_CONST_F(pt_call("greatest", 2, (pt_expr *[]){pt_lit_null(), pt_lit_i64(-4)}), -4);
    CHECK_CONST_S(pt_call("greatest", 3, (pt_expr *[]){pt_lit_str("b"), pt_lit_str("a"), pt_lit_str("ab")}), "b");
    CHECK_CONST_S(pt_call("least", 2, (pt_expr *[]){pt_lit_str("b"), pt_lit_str("ab")}), "ab");
    CHECK_CONST_F(call3("if", pt_lit_bool(true), pt_lit_i64(1), pt_lit_i64(2)), 1);
    CHECK_CONST_F(call3("IF", pt_lit_null(), pt_lit_i64(1), pt_lit_i64(2)), 2);
    CHECK_CONST_NULL(call2("nullif", pt_lit_i64(1), pt_lit_i64(1)));
    CHECK_CONST_F(call2("nullif", pt_lit_i64(1), pt_lit_i64(2)), 1);
    CHECK_CONST_F(pt_call("coalesce", 3, (pt_expr *[]){pt_lit_null(), pt_lit_null(), pt_lit_i64(3)}), 3);
    CHECK_CONST_NULL(pt_call("coalesce", 2, (pt_expr *[]){pt_lit_null(), pt_lit_null()}));
    CHECK_CONST_S(call3("substr", pt_lit_str("hello"), pt_lit_i64(2), pt_lit_i64(3)), "ell");
    CHECK_CONST_S(call3("substr", pt_lit_str("hello"), pt_lit_i64(0), pt_lit_i64(3)), "he");
    CHECK_CONST_S(call3("substr", pt_lit_str("hello"), pt_lit_i64(-1), pt_lit_i64(3)), "h");
    CHECK_CONST_S(call2("substr", pt_lit_str("hello"), pt_lit_i64(10)), "");
    CHECK_CONST_S(call3("substr", pt_lit_str("hello"), pt_lit_i64(2), pt_lit_i64(-1)), "");
    CHECK_CONST_S(call1("upper", pt_lit_str("abc")), "ABC");
    CHECK_CONST_S(pt_call("concat", 3, (pt_expr *[]){pt_lit_str("a"), pt_lit_null(), pt_lit_i64(1)}), "a1");
    CHECK_CONST_S(pt_binary(PT_OP_CONCAT, pt_lit_str("x"), pt_lit_f64(2.5)), "x2.5");
    CHECK_CONST_NULL(pt_binary(PT_OP_CONCAT, pt_lit_str("x"), pt_lit_null()));
    CHECK_CONST_S(call3("replace", pt_lit_str("banana"), pt_lit_str("an"), pt_lit_str("AN")), "bANANa");
    CHECK_CONST_S(call3("replace", pt_lit_str("aaa"), pt_lit_str("aa"), pt_lit_str("b")), "ba");
    CHECK_CONST_F(call1("length", pt_lit_str("\xc3\xa9t\xc3\xa9")), 3);
    CHECK_CONST_F(call2("like", pt_lit_str("abc"), pt_lit_str("a%c")), 1);
    CHECK_CONST_F(call2("like", pt_lit_str("abc"), pt_lit_str("a_")), 0);
    CHECK_CONST_F(call2("like", pt_lit_str("mississippi"), pt_lit_str("%iss%ppi")), 1);
    CHECK_CONST_F(call2("like", pt_lit_str("mississippi"), pt_lit_str("%iss%ppx")), 0);
    CHECK_CONST_F(call2("starts_with", pt_lit_str("abc"), pt_lit_str("")), 1);
    CHECK_CONST_NULL(call2("contains", pt_lit_null(), pt_lit_str("")));
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

TEST(functions_on_columns_match_c) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    pt_table *t = make_table();
    CHECK(t);
    pt_error err;
    pt_column *c;
    CHECK_OK(run(t, call1("abs", pt_col("a")), &c, &err), &err);
    for (int i = 0; i < N; i++) {
        CHECK(pt_column_is_valid(c, i) == !An[i]);
        if (!An[i]) CHECK_EQ_I(pt_column_i64(c)[i], A[i] < 0 ? -A[i] : A[i]);
    }
    pt_column_release(c);
    CHECK_OK(run(t, call1("sqrt", pt_col("x")), &c, &err), &err);
    for (int i = 0; i < N; i++) {
        bool valid = !Xn[i] && X[i] >= 0;
        CHECK(pt_column_is_valid(c, i) == valid);
        if (valid) CHECK(pt_column_f64(c)[i] == sqrt(X[i]));
    }
    pt_column_release(c);
    CHECK_OK(run(t, call2("round", pt_col("x32"), pt_lit_i64(1)), &c, &err), &err);
    for (int i = 0; i < N; i++)
        if (!X32n[i]) CHECK_NEAR(pt_column_f64(c)[i], round((double)X32[i] * 10) / 10, 1e-15);
    pt_column_release(c);
    CHECK_OK(run(t, call2("pow", pt_col("y"), pt_lit_i64(2)), &c, &err), &err);
    for (int i = 0; i < N; i++)
        if (!Yn[i]) CHECK(pt_column_f64(c)[i] == pow(Y[i], 2));
    pt_column_release(c);
    /* coalesce, greatest, least, nullif, if over columns. */
    CHECK_OK(run(t, pt_call("coalesce", 3, (pt_expr *[]){pt_col("a"), pt_col("b"), pt_lit_i64(-999)}), &c, &err), &err);
    CHECK(c->type == PT_TYPE_INT64 && c->null_count == 0);
    for (int i = 0; i < N; i++) CHECK_EQ_I(pt_column_i64(c)[i], !An[i] ? A[i] : !Bn[i] ? B[i] : -999);
    pt_column_release(c);
    CHECK_OK(run(t, pt_call("greatest", 3, (pt_expr *[]){pt_col("a"), pt_col("b"), pt_col("x")}), &c, &err), &err);
    CHECK(c->type == PT_TYPE_FLOAT64);
    for (int i = 0; i < N; i++) {
        double best = NAN;
        if (!An[i]) best = (double)A[i];
        if (!Bn[i] && (isnan(best) || B[i] > best)) best = (double)B[i];
        if (!Xn[i] && (isnan(best) || X[i] > best)) best = X[i];
        CHECK(pt_column_is_valid(c, i) == !isnan(best));
        if (!isnan(best)) CHECK(pt_column_f64(c)[i] == best);
    }
    pt_column_release(c);
    CHECK_OK(run(t, pt_call("least", 2, (pt_expr *[]){pt_col("s"), pt_col("d")}), &c, &err), &err);
    CHECK(c->type == PT_TYPE_UTF8);
    for (int i = 0; i < N; i++) {
        const char *want = Sn[i] ? (Dn[i] ? NULL : DWORDS[DI[i]])
                           : Dn[i] ? S[i]
                           : strcmp(S[i], DWORDS[DI[i]]) <= 0 ? S[i] : DWORDS[DI[i]];
        CHECK_MSG(text_is(c, i, want), "least row %d", i);
    }
    pt_column_release(c);
    CHECK_OK(run(t, call2("nullif", pt_col("b"), pt_lit_i64(0)), &c, &err), &err);
    for (int i = 0; i < N; i++) {
        bool valid = !Bn[i] && B[i] != 0;
        CHECK(pt_column_is_valid(c, i) == valid);
        if (valid) CHECK_EQ_I(pt_column_i64(c)[i], B[i]);
    }
    pt_column_release(c);
    CHECK_OK(run(t, call3("if", pt_col("p"), pt_col("a"), pt_col("x")), &c, &err), &err);
    CHECK(c->type == PT_TYPE_FLOAT64);
    for (int i = 0; i < N; i++) {
        bool take_a = !Pn[i] && P[i];
        bool valid = take_a ? !An[i] : !Xn[i];
        CHECK(pt_column_is_valid(c, i) == valid);
        if (valid) CHECK(pt_column_f64(c)[i] == (take_a ? (double)A[i] : X[i]));
    }
    pt_column_release(c);
    /* CASE WHEN with text results and without ELSE. */
    pt_expr *e = pt_case(2, (pt_expr *[]){pt_binary(PT_OP_GT, pt_col("a"), pt_lit_i64(50)),
                                          pt_binary(PT_OP_GT, pt_col("a"), pt_lit_i64(0))},
                         (pt_expr *[]){pt_lit_str("big"), pt_col("d")}, pt_lit_str("other"));
    CHECK_OK(run(t, e, &c, &err), &err);
    CHECK(c->type == PT_TYPE_UTF8);
    for (int i = 0; i < N; i++) {
        const char *want = An[i] ? "other" : A[i] > 50 ? "big" : A[i] > 0 ? (Dn[i] ? NULL : DWORDS[DI[i]]) : "other";
        CHECK_MSG(text_is(c, i, want), "case row %d", i);
    }
    pt_column_release(c);
    e = pt_case(1, (pt_expr *[]){pt_col("p")}, (pt_expr *[]){pt_col("a32")}, NULL);
    CHECK_OK(run(t, e, &c, &err), &err);
    CHECK(c->type == PT_TYPE_INT32);
    for (int i = 0; i < N; i++) {
        bool valid = !Pn[i] && P[i] && !A32n[i];
        CHECK(pt_column_is_valid(c, i) == valid);
        if (valid) CHECK_EQ_I(pt_column_i32(c)[i], A32[i]);
    }
    pt_column_release(c);
    e = pt_case(1, (pt_expr *[]){pt_col("q")}, (pt_expr *[]){pt_col("a32")}, pt_col("y"));
    CHECK_OK(run(t, e, &c, &err), &err);
    CHECK(c->type == PT_TYPE_FLOAT64);
    for (int i = 0; i < N; i++) {
        bool first = !Qn[i] && Q[i];
        bool valid = first ? !A32n[i] : !Yn[i];
        CHECK(pt_column_is_valid(c, i) == valid);
        if (valid) CHECK(pt_column_f64(c)[i] == (first ? (double)A32[i] : Y[i]));
    }
    pt_column_release(c);
    /* Text concatenation with nulls. */
    CHECK_OK(run(t, pt_binary(PT_OP_CONCAT, pt_col("s"), pt_col("d")), &c, &err), &err);
    for (int i = 0; i < N; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s%s", S[i], DWORDS[DI[i]]);
        CHECK(text_is(c, i, Sn[i] || Dn[i] ? NULL : buf));
    }
    pt_column_release(c);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

TEST(casts_and_cast_errors) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    pt_table *t = make_table();
    CHECK(t);
    pt_error err;
    pt_column *c;
    CHECK_OK(run(t, pt_cast(pt_col("a"), PT_TYPE_FLOAT64), &c, &err), &err);
    for (int i = 0; i < N; i++)
        if (!An[i]) CHECK(pt_column_f64(c)[i] == (double)A[i]);
    CHECK_EQ_I(c->null_count, t->cols[0]->null_count);
    pt_column_release(c);
    CHECK_OK(run(t, pt_cast(pt_col("x"), PT_TYPE_INT64), &c, &err), &err);
    for (int i = 0; i < N; i++)
        if (!Xn[i]) CHECK_EQ_I(pt_column_i64(c)[i], (int64_t)X[i]);
    pt_column_release(c);
    CHECK_OK(run(t, pt_cast(pt_col("a"), PT_TYPE_UTF8), &c, &err), &err);
    for (int i = 0; i < N; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)A[i]);
        CHECK(text_is(c, i, An[i] ? NULL : buf));
    }
    pt_column_release(c);
    CHECK_OK(run(t, pt_cast(pt_col("p"), PT_TYPE_INT64), &c, &err), &err);
    for (int i = 0; i < N; i++)
        if (!Pn[i]) CHECK_EQ_I(pt_column_i64(c)[i], P[i]);
    pt_column_release(c);
    CHECK_OK(run(t, pt_cast(pt_col("s"), PT_TYPE_DICT), &c, &err), &err);
    CHECK(c->type == PT_TYPE_DICT);
    for (int i = 0; i < N; i++) CHECK(text_is(c, i, Sn[i] ? NULL : S[i]));
    pt_column_release(c);
    CHECK_CONST_F(pt_cast(pt_lit_str(" 42 "), PT_TYPE_INT64), 42);
    CHECK_CONST_F(pt_cast(pt_lit_str("2.5e3"), PT_TYPE_FLOAT64), 2500);
    CHECK_CONST_S(pt_cast(pt_lit_f64(0.1), PT_TYPE_UTF8), "0.1");
    CHECK_CONST_F(pt_cast(pt_lit_str("true"), PT_TYPE_BOOL), 1);
    CHECK_CONST_TYPE(pt_cast(pt_lit_i64(5), PT_TYPE_INT32), PT_TYPE_INT32);
    /* Text that is not a number: PT_ETYPE naming row and text. */
    const char *names[] = {"t"};
    pt_type types[] = {PT_TYPE_UTF8};
    pt_column *tc;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_UTF8, 3, 16, &tc, &err), &err);
    CHECK_OK(pt_column_append_str(tc, "12", -1, &err), &err);
    CHECK_OK(pt_column_append_str(tc, " 7 ", -1, &err), &err);
    CHECK_OK(pt_column_append_str(tc, "x1", -1, &err), &err);
    pt_schema *sc;
    pt_table *tt;
    CHECK_OK(pt_schema_new(1, names, types, &sc, &err), &err);
    CHECK_OK(pt_table_new(sc, &tc, &tt, &err), &err);
    CHECK(run(tt, pt_cast(pt_col("t"), PT_TYPE_INT64), &c, &err) == PT_ETYPE);
    CHECK_CONTAINS(err.msg, "CAST(t AS int64)");
    CHECK_CONTAINS(err.msg, "row 2");
    CHECK_CONTAINS(err.msg, "'x1'");
    CHECK(run(tt, pt_cast(pt_lit_str("abc"), PT_TYPE_FLOAT64), &c, &err) == PT_ETYPE);
    CHECK_CONTAINS(err.msg, "'abc'");
    CHECK(run(tt, pt_cast(pt_lit_i64(1LL << 40), PT_TYPE_INT32), &c, &err) == PT_ERANGE);
    pt_table_free(tt);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

/* ------------------------------------------------------------------------ */
/* Slices                                                                   */
/* ------------------------------------------------------------------------ */

TEST(eval_on_sliced_tables) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    pt_table *t = make_table();
    CHECK(t);
    pt_expr *exprs[] = {
        pt_binary(PT_OP_ADD, pt_col("a"), pt_col("b")),
        pt_binary(PT_OP_DIV, pt_col("x"), pt_col("y")),
        pt_binary(PT_OP_AND, pt_binary(PT_OP_GT, pt_col("a"), pt_lit_i64(0)), pt_col("p")),
        pt_binary(PT_OP_OR, pt_col("p"), pt_col("q")),
        pt_unary(PT_OP_NOT, pt_col("q")),
        pt_unary(PT_OP_IS_NULL, pt_col("s")),
        call1("lower", pt_col("d")),
        pt_binary(PT_OP_EQ, pt_col("d"), pt_lit_str("green")),
        pt_binary(PT_OP_LT, pt_col("s"), pt_lit_str("b")),
        call1("length", pt_col("s")),
        pt_case(1, (pt_expr *[]){pt_col("p")}, (pt_expr *[]){pt_col("a")}, pt_col("b")),
        pt_call("coalesce", 2, (pt_expr *[]){pt_col("x32"), pt_col("y")}),
        pt_cast(pt_col("a32"), PT_TYPE_UTF8),
        pt_binary(PT_OP_GE, pt_col("x32"), pt_lit_f64(0.5)),
    };
    int nexpr = (int)(sizeof exprs / sizeof exprs[0]);
    const int64_t offs[] = {1, 8, 13, 333};
    pt_error err;
    uint8_t full_mask[N], part_mask[N];
    for (int k = 0; k < nexpr; k++) {
        pt_column *full;
        CHECK_OK(run(t, pt_expr_ref(exprs[k]), &full, &err), &err);
        bool is_bool = full->type == PT_TYPE_BOOL;
        if (is_bool) CHECK_OK(run_mask(t, pt_expr_ref(exprs[k]), full_mask, NULL, &err), &err);
        for (int o = 0; o < 4; o++) {
            pt_table *s;
            int64_t len = N - offs[o] - 7;
            CHECK_OK(pt_table_slice(t, offs[o], len, &s, &err), &err);
            pt_column *part;
            CHECK_OK(run(s, pt_expr_ref(exprs[k]), &part, &err), &err);
            CHECK_EQ_I(part->length, len);
            for (int64_t i = 0; i < len; i++) {
                char b1[64], b2[64];
                pt_column_format(full, offs[o] + i, 17, b1, sizeof b1);
                pt_column_format(part, i, 17, b2, sizeof b2);
                CHECK_MSG(strcmp(b1, b2) == 0, "expr %d offset %lld row %lld: %s vs %s", k,
                          (long long)offs[o], (long long)i, b1, b2);
            }
            if (is_bool) {
                int64_t nkeep;
                CHECK_OK(run_mask(s, pt_expr_ref(exprs[k]), part_mask, &nkeep, &err), &err);
                int64_t want = 0;
                for (int64_t i = 0; i < len; i++) {
                    CHECK(part_mask[i] == full_mask[offs[o] + i]);
                    want += part_mask[i];
                }
                CHECK_EQ_I(nkeep, want);
            }
            pt_column_release(part);
            pt_table_free(s);
        }
        pt_column_release(full);
    }
    for (int k = 0; k < nexpr; k++) pt_expr_free(exprs[k]);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

TEST(column_refs_are_zero_copy_and_literals_broadcast) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    pt_table *t = make_table();
    CHECK(t);
    pt_error err;
    pt_column *c;
    CHECK_OK(run(t, pt_alias(pt_col("x"), "renamed"), &c, &err), &err);
    CHECK(c == t->cols[3]);
    pt_column_release(c);
    CHECK_OK(run(t, pt_lit_str("k"), &c, &err), &err);
    CHECK(c->type == PT_TYPE_UTF8 && c->length == N);
    for (int i = 0; i < N; i++) CHECK(text_is(c, i, "k"));
    pt_column_release(c);
    CHECK_OK(run(t, pt_lit_null(), &c, &err), &err);
    CHECK(c->length == N && c->null_count == N);
    pt_column_release(c);
    /* A batch that does not match the bound schema is refused. */
    pt__bound *b;
    pt_expr *e = pt_col("s");
    CHECK_OK(pt__expr_bind(e, t->schema, &b, &err), &err);
    pt_table *sel;
    const char *names[] = {"a"};
    CHECK_OK(pt_table_select(t, names, 1, &sel, &err), &err);
    CHECK(pt__expr_eval(b, sel, NULL, &c, &err) == PT_EINVAL);
    pt_table_free(sel);
    pt__bound_free(b);
    pt_expr_free(e);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

TEST(chained_float_arithmetic_and_nulls) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    pt_table *t = make_table();
    CHECK(t);
    pt_error err;
    pt_column *c;
    /* ((x * 2.5 + a) - y) / (b + 0.5) * x32: temporaries get reused in place. */
    pt_expr *e = pt_binary(
        PT_OP_MUL,
        pt_binary(PT_OP_DIV,
                  pt_binary(PT_OP_SUB, pt_binary(PT_OP_ADD, pt_binary(PT_OP_MUL, pt_col("x"), pt_lit_f64(2.5)), pt_col("a")),
                            pt_col("y")),
                  pt_binary(PT_OP_ADD, pt_col("b"), pt_lit_f64(0.5))),
        pt_col("x32"));
    CHECK_OK(run(t, e, &c, &err), &err);
    for (int i = 0; i < N; i++) {
        bool valid = !Xn[i] && !An[i] && !Yn[i] && !Bn[i] && !X32n[i] && B[i] + 0.5 != 0;
        CHECK_MSG(pt_column_is_valid(c, i) == valid, "row %d", i);
        if (valid)
            CHECK(pt_column_f64(c)[i] == ((X[i] * 2.5 + (double)A[i]) - Y[i]) / ((double)B[i] + 0.5) * (double)X32[i]);
    }
    pt_column_release(c);
    /* The input columns are untouched by the in-place reuse. */
    for (int i = 0; i < N; i++)
        if (!Xn[i]) CHECK(pt_column_f64(t->cols[3])[i] == X[i]);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

typedef struct par_job {
    const pt__bound *b;
    pt_table *part;
    pt_column *out;
    pt_status st;
} par_job;

static void *par_eval(void *arg) {
    par_job *j = arg;
    for (int r = 0; r < 20 && j->st == PT_OK; r++) {
        pt_column_release(j->out);
        j->out = NULL;
        j->st = pt__expr_eval(j->b, j->part, NULL, &j->out, NULL);
    }
    return NULL;
}

TEST(one_bound_tree_many_threads) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    pt_table *t = make_table();
    CHECK(t);
    pt_error err;
    pt_expr *e = pt_case(1, (pt_expr *[]){pt_binary(PT_OP_EQ, call1_lower_d(), pt_lit_str("red"))},
                         (pt_expr *[]){pt_binary(PT_OP_CONCAT, pt_col("s"), pt_lit_str("!"))},
                         pt_cast(pt_binary(PT_OP_ADD, pt_col("a"), pt_col("b")), PT_TYPE_UTF8));
    pt__bound *b;
    CHECK_OK(pt__expr_bind(e, t->schema, &b, &err), &err);
    pt_column *whole;
    CHECK_OK(pt__expr_eval(b, t, NULL, &whole, &err), &err);
    enum { NT = 4 };
    par_job jobs[NT];
    pthread_t th[NT];
    for (int k = 0; k < NT; k++) {
        jobs[k] = (par_job){b, NULL, NULL, PT_OK};
        CHECK_OK(pt_table_slice(t, k * (N / NT), N / NT, &jobs[k].part, &err), &err);
        CHECK(pthread_create(&th[k], NULL, par_eval, &jobs[k]) == 0);
    }
    for (int k = 0; k < NT; k++) pthread_join(th[k], NULL);
    for (int k = 0; k < NT; k++) {
        CHECK(jobs[k].st == PT_OK);
        for (int i = 0; i < N / NT; i++) {
            char b1[64], b2[64];
            pt_column_format(whole, k * (N / NT) + i, 0, b1, sizeof b1);
            pt_column_format(jobs[k].out, i, 0, b2, sizeof b2);
            CHECK_STR(b1, b2);
        }
        pt_column_release(jobs[k].out);
        pt_table_free(jobs[k].part);
    }
    pt_column_release(whole);
    pt__bound_free(b);
    pt_expr_free(e);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

/* ------------------------------------------------------------------------ */
/* Trees: text, folding, rewrites                                           */
/* ------------------------------------------------------------------------ */

#define CHECK_TEXT(expr, want)                                                          \
    do {                                                                               \
        pt_expr *te = (expr);                                                          \
        char tb[512];                                                                  \
        CHECK_MSG(te != NULL, "NULL expression");                                     \
        pt_expr_to_string(te, tb, sizeof tb);                                          \
        pt_expr_free(te);                                                              \
        CHECK_STR(tb, want);                                                           \
    } while (0)

static pt_expr *C(const char *n) { return pt_col(n); }
static pt_expr *bin(pt_op op, pt_expr *a, pt_expr *b) { return pt_binary(op, a, b); }

TEST(to_string_minimal_parentheses) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    CHECK_TEXT(bin(PT_OP_MUL, bin(PT_OP_ADD, C("a"), C("b")), pt_lit_i64(2)), "(a + b) * 2");
    CHECK_TEXT(bin(PT_OP_ADD, C("a"), bin(PT_OP_MUL, C("b"), pt_lit_i64(2))), "a + b * 2");
    CHECK_TEXT(bin(PT_OP_SUB, bin(PT_OP_SUB, C("a"), C("b")), C("c")), "a - b - c");
    CHECK_TEXT(bin(PT_OP_SUB, C("a"), bin(PT_OP_SUB, C("b"), C("c"))), "a - (b - c)");
    CHECK_TEXT(bin(PT_OP_DIV, C("a"), bin(PT_OP_MUL, C("b"), C("c"))), "a / (b * c)");
    CHECK_TEXT(bin(PT_OP_EQ, C("category"), pt_lit_str("A")), "category = 'A'");
    CHECK_TEXT(bin(PT_OP_EQ, C("s"), pt_lit_str("it's")), "s = 'it''s'");
    CHECK_TEXT(bin(PT_OP_OR, bin(PT_OP_AND, C("p"), C("q")), C("r")), "p AND q OR r");
    CHECK_TEXT(bin(PT_OP_AND, bin(PT_OP_OR, C("p"), C("q")), C("r")), "(p OR q) AND r");
    CHECK_TEXT(bin(PT_OP_AND, bin(PT_OP_GT, C("v"), pt_lit_i64(0)), bin(PT_OP_NE, C("c"), pt_lit_str("A"))),
               "v > 0 AND c <> 'A'");
    CHECK_TEXT(bin(PT_OP_EQ, bin(PT_OP_EQ, C("a"), C("b")), pt_lit_bool(true)), "(a = b) = TRUE");
    CHECK_TEXT(pt_unary(PT_OP_NOT, bin(PT_OP_EQ, C("a"), C("b"))), "NOT (a = b)");
    CHECK_TEXT(pt_unary(PT_OP_NOT, C("p")), "NOT p");
    CHECK_TEXT(pt_unary(PT_OP_IS_NULL, C("a")), "a IS NULL");
    CHECK_TEXT(pt_unary(PT_OP_IS_NOT_NULL, bin(PT_OP_ADD, C("a"), C("b"))), "(a + b) IS NOT NULL");
    CHECK_TEXT(pt_unary(PT_OP_NEG, C("a")), "-a");
    CHECK_TEXT(pt_unary(PT_OP_NEG, bin(PT_OP_ADD, C("a"), C("b"))), "-(a + b)");
    CHECK_TEXT(bin(PT_OP_SUB, C("x"), pt_lit_i64(-3)), "x - -3");
    CHECK_TEXT(bin(PT_OP_CONCAT, bin(PT_OP_ADD, C("a"), pt_lit_i64(1)), pt_lit_str("x")), "(a + 1) || 'x'");
    CHECK_TEXT(bin(PT_OP_CONCAT, bin(PT_OP_CONCAT, C("a"), C("b")), C("c")), "a || b || c");
    CHECK_TEXT(pt_lit_f64(2.5), "2.5");
    CHECK_TEXT(pt_lit_f64(3), "3.0");
    CHECK_TEXT(pt_lit_f64(0.1), "0.1");
    CHECK_TEXT(pt_lit_f64(1e300), "1e+300");
    CHECK_TEXT(pt_lit_f64(INFINITY), "CAST('inf' AS float64)");
    CHECK_TEXT(pt_lit_i64(INT64_MIN), "CAST('-9223372036854775808' AS int64)");
    CHECK_TEXT(pt_lit_null(), "NULL");
    CHECK_TEXT(pt_lit_bool(false), "FALSE");
    CHECK_TEXT(pt_agg(PT_AGG_SUM, C("v1"), NULL), "sum(v1)");
    CHECK_TEXT(pt_agg(PT_AGG_COUNT_STAR, NULL, NULL), "count(*)");
    CHECK_TEXT(pt_agg(PT_AGG_COUNT_DISTINCT, C("id1"), NULL), "count(DISTINCT id1)");
    CHECK_TEXT(pt_agg(PT_AGG_MEAN, C("v3"), NULL), "avg(v3)");
    CHECK_TEXT(pt_agg(PT_AGG_CORR, C("v1"), C("v2")), "corr(v1, v2)");
    CHECK_TEXT(bin(PT_OP_DIV, pt_agg(PT_AGG_SUM, C("v1"), NULL), pt_agg(PT_AGG_COUNT_STAR, NULL, NULL)),
               "sum(v1) / count(*)");
    CHECK_TEXT(pt_cast(C("x"), PT_TYPE_FLOAT64), "CAST(x AS float64)");
    CHECK_TEXT(pt_cast(C("x"), PT_TYPE_DICT), "CAST(x AS category)");
    CHECK_TEXT(call3("substr", C("s"), pt_lit_i64(2), pt_lit_i64(3)), "substr(s, 2, 3)");
    CHECK_TEXT(call2("like", C("s"), pt_lit_str("a%")), "s LIKE 'a%'");
    CHECK_TEXT(pt_unary(PT_OP_NOT, call2("LIKE", bin(PT_OP_CONCAT, C("a"), C("b")), C("p"))), "NOT ((a || b) LIKE p)");
    CHECK_TEXT(bin(PT_OP_EQ, call2("like", C("s"), C("p")), pt_lit_bool(false)), "(s LIKE p) = FALSE");
    CHECK_TEXT(pt_case(2, (pt_expr *[]){bin(PT_OP_GT, C("a"), pt_lit_i64(1)), C("p")},
                       (pt_expr *[]){pt_lit_str("x"), pt_lit_str("y")}, pt_lit_null()),
               "CASE WHEN a > 1 THEN 'x' WHEN p THEN 'y' ELSE NULL END");
    CHECK_TEXT(pt_case(1, (pt_expr *[]){C("p")}, (pt_expr *[]){pt_lit_i64(1)}, NULL), "CASE WHEN p THEN 1 END");
    CHECK_TEXT(pt_alias(bin(PT_OP_ADD, C("a"), C("b")), "total"), "a + b AS total");
    CHECK_TEXT(pt_alias(C("a"), "my col"), "a AS \"my col\"");
    CHECK_TEXT(C("my col"), "\"my col\"");
    CHECK_TEXT(C("select"), "\"select\"");
    CHECK_TEXT(C("we\"ird"), "\"we\"\"ird\"");
    /* Truncation keeps a terminated prefix. */
    char small[8];
    pt_expr *e = bin(PT_OP_ADD, C("alpha"), C("beta"));
    pt_expr_to_string(e, small, sizeof small);
    CHECK_STR(small, "alpha +");
    pt_expr_free(e);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

#define CHECK_FOLD(expr, want)                                                          \
    do {                                                                               \
        pt_expr *fe = pt__expr_fold(expr);                                             \
        char fb[256];                                                                  \
        CHECK_MSG(fe != NULL, "fold gave NULL");                                      \
        pt_expr_to_string(fe, fb, sizeof fb);                                          \
        pt_expr_free(fe);                                                              \
        CHECK_STR(fb, want);                                                           \
    } while (0)

TEST(constant_folding) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    CHECK_FOLD(bin(PT_OP_ADD, pt_lit_i64(1), pt_lit_i64(2)), "3");
    CHECK_FOLD(bin(PT_OP_ADD, C("a"), bin(PT_OP_MUL, pt_lit_i64(2), pt_lit_i64(3))), "a + 6");
    CHECK_FOLD(bin(PT_OP_DIV, pt_lit_i64(7), pt_lit_i64(2)), "3.5");
    CHECK_FOLD(bin(PT_OP_DIV, pt_lit_i64(1), pt_lit_i64(0)), "CAST(NULL AS float64)");
    CHECK_FOLD(bin(PT_OP_CONCAT, pt_lit_str("a"), pt_lit_str("b")), "'ab'");
    CHECK_FOLD(pt_unary(PT_OP_NOT, pt_lit_bool(true)), "FALSE");
    CHECK_FOLD(pt_unary(PT_OP_NOT, pt_unary(PT_OP_NOT, C("p"))), "p");
    CHECK_FOLD(bin(PT_OP_AND, C("p"), pt_lit_bool(true)), "p");
    CHECK_FOLD(bin(PT_OP_AND, pt_lit_bool(true), C("p")), "p");
    CHECK_FOLD(bin(PT_OP_OR, C("p"), pt_lit_bool(false)), "p");
    CHECK_FOLD(bin(PT_OP_AND, C("p"), pt_lit_bool(false)), "FALSE");
    CHECK_FOLD(bin(PT_OP_OR, C("p"), pt_lit_bool(true)), "TRUE");
    CHECK_FOLD(bin(PT_OP_AND, C("p"), pt_lit_null()), "p AND NULL"); /* not foldable */
    CHECK_FOLD(bin(PT_OP_AND, C("p"), bin(PT_OP_LT, pt_lit_i64(1), pt_lit_i64(2))), "p");
    CHECK_FOLD(bin(PT_OP_GT, C("v"), pt_cast(pt_lit_str("5"), PT_TYPE_INT64)), "v > 5");
    CHECK_FOLD(pt_cast(pt_lit_i64(5), PT_TYPE_INT32), "CAST(5 AS int32)");
    CHECK_FOLD(pt_cast(pt_lit_str("x"), PT_TYPE_INT64), "CAST('x' AS int64)"); /* error kept for run time */
    CHECK_FOLD(bin(PT_OP_ADD, pt_lit_i64(INT64_MAX), pt_lit_i64(1)), "9223372036854775807 + 1");
    CHECK_FOLD(call1("upper", pt_lit_str("abc")), "'ABC'");
    CHECK_FOLD(bin(PT_OP_EQ, pt_lit_null(), pt_lit_i64(1)), "CAST(NULL AS bool)");
    CHECK_FOLD(pt_unary(PT_OP_IS_NULL, pt_lit_null()), "TRUE");
    CHECK_FOLD(pt_alias(bin(PT_OP_MUL, pt_lit_f64(0.5), pt_lit_i64(4)), "two"), "2.0 AS two");
    CHECK_FOLD(pt_agg(PT_AGG_SUM, bin(PT_OP_ADD, C("v"), bin(PT_OP_SUB, pt_lit_i64(3), pt_lit_i64(3))), NULL),
               "sum(v + 0)");
    CHECK_FOLD(pt_lit_i64(4), "4");
    CHECK_FOLD(C("a"), "a");
    /* A folded tree evaluates like the original. */
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

static void count_cb(const char *name, void *ud) {
    char *buf = ud;
    strcat(buf, name);
    strcat(buf, ",");
}

TEST(tree_utilities) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    char buf[256];
    pt_error err;
    /* Aggregate extraction with reuse. */
    pt_expr *e = bin(PT_OP_ADD,
                     bin(PT_OP_DIV, pt_agg(PT_AGG_SUM, C("v1"), NULL), pt_agg(PT_AGG_COUNT_STAR, NULL, NULL)),
                     pt_agg(PT_AGG_SUM, C("v1"), NULL));
    pt_expr **aggs = NULL, *rw;
    int naggs = 0, cap = 0;
    CHECK_OK(pt__expr_extract_aggs(e, &aggs, &naggs, &cap, &rw, &err), &err);
    CHECK_EQ_I(naggs, 2);
    CHECK_STR(pt_expr_to_string(rw, buf, sizeof buf), "__agg0 / __agg1 + __agg0");
    CHECK_STR(pt_expr_to_string(aggs[0], buf, sizeof buf), "sum(v1)");
    CHECK_STR(pt_expr_to_string(aggs[1], buf, sizeof buf), "count(*)");
    CHECK(!pt__expr_has_agg(rw) && pt__expr_has_agg(e));
    pt_expr_free(rw);
    /* A second expression shares the list. */
    pt_expr *e2 = pt_alias(bin(PT_OP_MUL, pt_agg(PT_AGG_MAX, C("v2"), NULL), pt_agg(PT_AGG_SUM, C("v1"), NULL)), "m");
    CHECK_OK(pt__expr_extract_aggs(e2, &aggs, &naggs, &cap, &rw, &err), &err);
    CHECK_EQ_I(naggs, 3);
    CHECK_STR(pt_expr_to_string(rw, buf, sizeof buf), "__agg2 * __agg0 AS m");
    pt_expr_free(rw);
    pt_expr_free(e2);
    /* Nested aggregates fail and leave the list alone. */
    e2 = bin(PT_OP_ADD, pt_agg(PT_AGG_MIN, C("z"), NULL), pt_agg(PT_AGG_SUM, pt_agg(PT_AGG_MAX, C("v2"), NULL), NULL));
    CHECK(pt__expr_extract_aggs(e2, &aggs, &naggs, &cap, &rw, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "nested aggregate in 'sum(max(v2))'");
    CHECK_EQ_I(naggs, 3);
    CHECK(rw == NULL);
    pt_expr_free(e2);
    for (int k = 0; k < naggs; k++) pt_expr_free(aggs[k]);
    pt_free(aggs);
    pt_expr_free(e);
    /* Replacement of group keys by column refs (not inside aggregates). */
    pt_expr *key = pt_alias(call1("lower", C("id1")), "k");
    e = bin(PT_OP_CONCAT, call1("lower", C("id1")), pt_agg(PT_AGG_MAX, call1("lower", C("id1")), NULL));
    const char *kn[] = {"k"};
    CHECK_OK(pt__expr_replace(e, &key, kn, 1, &rw, &err), &err);
    CHECK_STR(pt_expr_to_string(rw, buf, sizeof buf), "k || max(lower(id1))");
    pt_expr_free(rw);
    pt_expr_free(e);
    pt_expr_free(key);
    /* Equality, column visits, conjuncts, output names. */
    pt_expr *x1 = bin(PT_OP_GT, call1("ABS", C("a")), pt_lit_f64(1.5));
    pt_expr *x2 = bin(PT_OP_GT, call1("abs", C("a")), pt_lit_f64(1.5));
    pt_expr *x3 = bin(PT_OP_GT, call1("abs", C("A")), pt_lit_f64(1.5));
    CHECK(pt__expr_equal(x1, x2) && !pt__expr_equal(x1, x3));
    buf[0] = 0;
    pt_expr *conj = bin(PT_OP_AND, bin(PT_OP_AND, x1, x3), bin(PT_OP_OR, C("p"), bin(PT_OP_AND, C("q"), C("r"))));
    CHECK_EQ_I(pt__expr_columns(conj, count_cb, buf), 5);
    CHECK_STR(buf, "a,A,p,q,r,");
    pt_expr **parts;
    int np;
    CHECK_OK(pt__expr_split_and(conj, &parts, &np, &err), &err);
    CHECK_EQ_I(np, 3);
    CHECK_STR(pt_expr_to_string(parts[2], buf, sizeof buf), "p OR q AND r");
    pt_expr *back = pt__expr_join_and(parts, np);
    pt_free(parts);
    CHECK(pt__expr_equal(back, conj));
    pt_expr_free(back);
    pt_expr_free(conj);
    pt_expr_free(x2);
    pt_expr *t0 = pt__expr_join_and(NULL, 0);
    CHECK_STR(pt_expr_to_string(t0, buf, sizeof buf), "TRUE");
    pt_expr_free(t0);
    e = pt_alias(pt_agg(PT_AGG_SUM, C("v"), NULL), "total");
    CHECK_STR(pt__expr_output_name(e, buf, sizeof buf), "total");
    CHECK_STR(pt__expr_output_name(e->args[0], buf, sizeof buf), "sum(v)");
    pt_expr_free(e);
    e = C("my col");
    CHECK_STR(pt__expr_output_name(e, buf, sizeof buf), "my col");
    CHECK_STR(pt__expr_col_name(e), "my col");
    pt_expr_free(e);
    /* Constructors: NULL arguments give NULL and free the others. */
    CHECK(pt_binary(PT_OP_ADD, C("a"), NULL) == NULL);
    CHECK(pt_call("f", 2, (pt_expr *[]){C("a"), NULL}) == NULL);
    CHECK(pt_case(1, (pt_expr *[]){C("a")}, (pt_expr *[]){NULL}, pt_lit_i64(1)) == NULL);
    CHECK(pt_alias(C("a"), NULL) == NULL);
    CHECK(pt_agg(PT_AGG_SUM, NULL, NULL) == NULL);
    pt_agg_kind ak;
    CHECK(pt__agg_lookup("MEAN", &ak) && ak == PT_AGG_MEAN);
    CHECK(!pt__agg_lookup("sqrt", &ak));
    CHECK(pt__func_exists("Starts_With") && !pt__func_exists("sum"));
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}

TEST(out_of_memory_is_reported) {
    int64_t leak0 = pt_alloc_bytes_in_use();
    pt_table *t = make_table();
    CHECK(t);
    pt_expr *e = pt_binary(PT_OP_AND, pt_binary(PT_OP_GT, call1("lower", pt_col("d")), pt_lit_str("b")),
                           pt_binary(PT_OP_LT, pt_binary(PT_OP_ADD, pt_col("a"), pt_col("x")), pt_lit_i64(3)));
    /* Fail every allocation from the k-th on, for growing k, until the
     * whole evaluation succeeds: each failure must be clean. */
    int ok = 0;
    int64_t k_done = 0;
    for (int64_t k = 0; k < 400 && !ok; k++) {
        pt_error err;
        pt__bound *b = NULL;
        pt_column *c = NULL;
        pt_alloc_fail_after(k);
        pt_status st = pt__expr_bind(e, t->schema, &b, &err);
        if (st == PT_OK) st = pt__expr_eval(b, t, NULL, &c, &err);
        pt_alloc_fail_after(-1);
        CHECK_MSG(st == PT_OK || st == PT_ENOMEM, "k=%lld: %s", (long long)k, err.msg);
        ok = st == PT_OK;
        k_done = k;
        pt_column_release(c);
        pt__bound_free(b);
    }
    CHECK(ok);
    CHECK(k_done > 20); /* many allocation points were failed on purpose */
    pt_expr_free(e);
    pt_table_free(t);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), leak0);
}
