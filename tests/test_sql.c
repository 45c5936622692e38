/* Tests of the SQL front end: exact syntax-error messages with carets,
 * pt_expr_parse round trips, and end-to-end queries over small in-memory
 * tables whose expected results were worked out by hand (see the table data
 * below). */
#include "pt_test.h"

#include "partita/dataframe.h"

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                 */
/* ------------------------------------------------------------------------ */

static pt_ctx *g_ctx;

static pt_ctx *ctx(void) {
    if (!g_ctx) {
        pt_ctx_opts o;
        pt_ctx_opts_init(&o);
        o.threads = 2;
        pt_error e;
        if (pt_ctx_new(&o, &g_ctx, &e) != PT_OK) {
            fprintf(stderr, "pt_ctx_new: %s\n", e.msg);
            exit(2);
        }
    }
    return g_ctx;
}

/* emp: id, name, dept, salary, age
 *   1 alice eng   120 30 | 2 bob   eng   100 45 | 3 carol ops  90 28
 *   4 dave  ops    85 52 | 5 erin  sales  70 33 | 6 frank eng 110 38
 *   7 grace sales  75 41 | 8 heidi hr     60 29
 * dept: dept, floor, budget
 *   eng 3 1000 | ops 1 500 | sales 2 300 | legal 4 200   (no row for hr) */
static pt_catalog *make_catalog(void) {
    static const int64_t id[] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const char *const name[] = {"alice", "bob",  "carol", "dave",
                                       "erin",  "frank", "grace", "heidi"};
    static const char *const dept[] = {"eng", "eng", "ops", "ops", "sales", "eng", "sales", "hr"};
    static const double salary[] = {120, 100, 90, 85, 70, 110, 75, 60};
    static const int64_t age[] = {30, 45, 28, 52, 33, 38, 41, 29};
    const char *const en[] = {"id", "name", "dept", "salary", "age"};
    const pt_type et[] = {PT_TYPE_INT64, PT_TYPE_UTF8, PT_TYPE_UTF8, PT_TYPE_FLOAT64,
                          PT_TYPE_INT64};
    const void *const ed[] = {id, name, dept, salary, age};
    static const char *const d_dept[] = {"eng", "ops", "sales", "legal"};
    static const int64_t d_floor[] = {3, 1, 2, 4};
    static const int64_t d_budget[] = {1000, 500, 300, 200};
    const char *const dn[] = {"dept", "floor", "budget"};
    const pt_type dt[] = {PT_TYPE_UTF8, PT_TYPE_INT64, PT_TYPE_INT64};
    const void *const dd[] = {d_dept, d_floor, d_budget};
    pt_error e;
    pt_catalog *c = NULL;
    pt_frame *f = NULL;
    if (pt_catalog_new(ctx(), &c, &e) != PT_OK) goto fail;
    /* 3 partitions so that the executor's merging is exercised too */
    if (pt_frame_from_arrays(ctx(), 5, en, et, ed, 8, 3, &f, &e) != PT_OK) goto fail;
    if (pt_catalog_register(c, "emp", f, &e) != PT_OK) goto fail;
    pt_frame_free(f);
    if (pt_frame_from_arrays(ctx(), 3, dn, dt, dd, 4, 2, &f, &e) != PT_OK) goto fail;
    if (pt_catalog_register(c, "dept", f, &e) != PT_OK) goto fail;
    pt_frame_free(f);
    return c;
fail:
    fprintf(stderr, "fixture: %s\n", e.msg);
    exit(2);
}

/* The result as text: a header line "a|b" then one line per row; floats
 * with %g, nulls as "null". Written here, independently of the library's
 * printer. */
static char *dump(const pt_table *t) {
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    s[0] = '\0';
#define APP(...)                                                       \
    do {                                                               \
        char cell[256];                                                \
        snprintf(cell, sizeof cell, __VA_ARGS__);                      \
        size_t l = strlen(cell);                                       \
        while (n + l + 2 > cap) s = realloc(s, cap *= 2);              \
        memcpy(s + n, cell, l + 1);                                    \
        n += l;                                                        \
    } while (0)
    for (int j = 0; j < t->schema->nfields; j++) APP("%s%s", j ? "|" : "", t->schema->fields[j].name);
    APP("\n");
    for (int64_t i = 0; i < t->nrows; i++) {
        for (int j = 0; j < t->schema->nfields; j++) {
            const pt_column *c = t->cols[j];
            if (j) APP("|");
            if (c->type == PT_TYPE_NULL || !pt_column_is_valid(c, i)) {
                APP("null");
                continue;
            }
            switch (c->type) {
            case PT_TYPE_BOOL: APP("%s", pt_column_bool(c, i) ? "true" : "false"); break;
            case PT_TYPE_INT32: APP("%d", pt_column_i32(c)[i]); break;
            case PT_TYPE_INT64: APP("%lld", (long long)pt_column_i64(c)[i]); break;
            case PT_TYPE_FLOAT32: APP("%g", (double)pt_column_f32(c)[i]); break;
            case PT_TYPE_FLOAT64: APP("%g", pt_column_f64(c)[i]); break;
            case PT_TYPE_UTF8:
            case PT_TYPE_DICT: {
                int64_t len;
                const char *p = pt_column_str(c, i, &len);
                APP("%.*s", (int)len, p);
                break;
            }
            default: APP("?");
            }
        }
        APP("\n");
    }
#undef APP
    return s;
}

/* Runs a query and returns its dump (NULL on failure, message in err). */
static char *run(pt_catalog *c, const char *q, pt_error *err) {
    pt_frame *f = NULL;
    if (pt_sql(ctx(), c, q, &f, NULL, err) != PT_OK) return NULL;
    pt_table *t = NULL;
    pt_status st = pt_frame_collect(f, &t, err);
    pt_frame_free(f);
    if (st != PT_OK) return NULL;
    char *s = dump(t);
    pt_table_free(t);
    return s;
}

#define CHECK_QUERY(cat, q, expected)                                            \
    do {                                                                         \
        pt_error cq__e;                                                          \
        pt_error_clear(&cq__e);                                                  \
        char *cq__r = run(cat, q, &cq__e);                                       \
        if (!cq__r) {                                                            \
            pt_test_fail(__FILE__, __LINE__, "query failed: %s\n%s", q, cq__e.msg); \
            pt_catalog_free(cat);                                                \
            return;                                                              \
        }                                                                        \
        if (strcmp(cq__r, expected) != 0) {                                      \
            pt_test_fail(__FILE__, __LINE__, "query: %s\ngot:\n%sexpected:\n%s", q, \
                         cq__r, expected);                                       \
            free(cq__r);                                                         \
            pt_catalog_free(cat);                                                \
            return;                                                              \
        }                                                                        \
        free(cq__r);                                                             \
    } while (0)

/* Runs a query that must fail at building time with `code`; returns the
 * message through err. */
static pt_status sql_fail(pt_catalog *c, const char *q, pt_error *err) {
    pt_frame *f = NULL;
    pt_error_clear(err);
    pt_status st = pt_sql(ctx(), c, q, &f, NULL, err);
    if (st == PT_OK) pt_frame_free(f);
    return st;
}

#define CHECK_ERR(q, code, expected)                                               \
    do {                                                                           \
        pt_error ce__e;                                                            \
        pt_status ce__s = sql_fail(NULL, q, &ce__e);                               \
        CHECK_MSG(ce__s == (code), "query %s: status %s, expected %s (%s)", q,     \
                  pt_status_name(ce__s), pt_status_name(code), ce__e.msg);         \
        CHECK_STR(ce__e.msg, expected);                                            \
    } while (0)

/* ------------------------------------------------------------------------ */
/* Syntax errors: exact messages and caret positions                        */
/* ------------------------------------------------------------------------ */

TEST(parse_error_misspelt_from) {
    CHECK_ERR("SELECT a, b FORM t", PT_EPARSE,
              "syntax error at line 1, column 13: expected FROM, found 'FORM'\n"
              "SELECT a, b FORM t\n"
              "            ^");
}

TEST(parse_error_misspelt_where) {
    CHECK_ERR("SELECT a FROM t WHRE a > 1", PT_EPARSE,
              "syntax error at line 1, column 17: expected WHERE, GROUP BY, HAVING, ORDER BY, "
              "LIMIT, JOIN or end of query, found 'WHRE'\n"
              "SELECT a FROM t WHRE a > 1\n"
              "                ^");
}

TEST(parse_error_empty_select_list) {
    CHECK_ERR("SELECT FROM t", PT_EPARSE,
              "syntax error at line 1, column 8: expected an expression or '*', found 'FROM'\n"
              "SELECT FROM t\n"
              "       ^");
}

TEST(parse_error_missing_table) {
    CHECK_ERR("SELECT a FROM", PT_EPARSE,
              "syntax error at line 1, column 14: expected a table name, a quoted file path or "
              "'(', found end of query\n"
              "SELECT a FROM\n"
              "             ^");
}

TEST(parse_error_unterminated_string) {
    CHECK_ERR("SELECT a FROM t WHERE b = 'abc", PT_EPARSE,
              "syntax error at line 1, column 27: unterminated string literal\n"
              "SELECT a FROM t WHERE b = 'abc\n"
              "                          ^");
}

TEST(parse_error_multiline_shows_the_line) {
    CHECK_ERR("SELECT a,\n       b +\nFROM t", PT_EPARSE,
              "syntax error at line 3, column 1: expected an expression, found 'FROM'\n"
              "FROM t\n"
              "^");
    CHECK_ERR("SELECT a\nFROM t\nWHERE a >\n  ORDER BY a", PT_EPARSE,
              "syntax error at line 4, column 3: expected an expression, found 'ORDER'\n"
              "  ORDER BY a\n"
              "  ^");
}

TEST(parse_error_nulls_first) {
    CHECK_ERR("SELECT a FROM t ORDER BY a DESC NULLS FIRST", PT_EUNSUPPORTED,
              "error at line 1, column 39: NULLS FIRST is not supported (nulls always sort "
              "last)\n"
              "SELECT a FROM t ORDER BY a DESC NULLS FIRST\n"
              "                                      ^");
}

TEST(parse_error_in_list) {
    CHECK_ERR("SELECT a FROM t WHERE a IN (1, 2", PT_EPARSE,
              "syntax error at line 1, column 33: expected ',' or ')', found end of query\n"
              "SELECT a FROM t WHERE a IN (1, 2\n"
              "                                ^");
}

TEST(parse_error_unknown_type) {
    CHECK_ERR("SELECT CAST(a AS blob) FROM t", PT_EPARSE,
              "syntax error at line 1, column 18: unknown type 'blob' (expected one of: "
              "boolean, int, bigint, float, double, varchar, text, category)\n"
              "SELECT CAST(a AS blob) FROM t\n"
              "                 ^");
}

TEST(parse_error_bad_character) {
    CHECK_ERR("SELECT a @ b FROM t", PT_EPARSE,
              "syntax error at line 1, column 10: unexpected character '@'\n"
              "SELECT a @ b FROM t\n"
              "         ^");
}

TEST(parse_error_window_function) {
    CHECK_ERR("SELECT rank() OVER (ORDER BY a) FROM t", PT_EUNSUPPORTED,
              "error at line 1, column 8: window function rank() is not supported (only "
              "ROW_NUMBER() OVER (...))\n"
              "SELECT rank() OVER (ORDER BY a) FROM t\n"
              "       ^");
    CHECK_ERR("SELECT row_number() FROM t", PT_EPARSE,
              "syntax error at line 1, column 21: expected OVER after ROW_NUMBER(), found "
              "'FROM'\n"
              "SELECT row_number() FROM t\n"
              "                    ^");
}

TEST(parse_error_aggregate_arity) {
    CHECK_ERR("SELECT sum(a, b) FROM t", PT_EPARSE,
              "syntax error at line 1, column 8: sum() takes 1 argument, got 2\n"
              "SELECT sum(a, b) FROM t\n"
              "       ^");
}

TEST(parse_error_limit) {
    CHECK_ERR("SELECT a FROM t LIMIT -1", PT_EPARSE,
              "syntax error at line 1, column 23: expected a non-negative integer, found '-'\n"
              "SELECT a FROM t LIMIT -1\n"
              "                      ^");
}

TEST(parse_error_comment_and_semicolons) {
    CHECK_ERR("SELECT a FROM t /* never closed", PT_EPARSE,
              "syntax error at line 1, column 17: unterminated comment\n"
              "SELECT a FROM t /* never closed\n"
              "                ^");
    CHECK_ERR("SELECT a FROM t;;", PT_EPARSE,
              "syntax error at line 1, column 17: expected end of query after ';', found ';'\n"
              "SELECT a FROM t;;\n"
              "                ^");
}

TEST(parse_error_subquery_unclosed) {
    CHECK_ERR("SELECT a FROM (SELECT b FROM t", PT_EPARSE,
              "syntax error at line 1, column 31: expected WHERE, GROUP BY, HAVING, ORDER BY, "
              "LIMIT, JOIN or ')', found end of query\n"
              "SELECT a FROM (SELECT b FROM t\n"
              "                              ^");
}

TEST(parse_error_tabs_and_utf8_keep_the_caret_aligned) {
    /* The caret line repeats tabs and counts a multi-byte character once. */
    CHECK_ERR("SELECT\ta FORM t", PT_EPARSE,
              "syntax error at line 1, column 10: expected FROM, found 'FORM'\n"
              "SELECT\ta FORM t\n"
              "      \t  ^");
    CHECK_ERR("SELECT \xc3\xa9t\xc3\xa9 FORM t", PT_EPARSE,
              "syntax error at line 1, column 12: expected FROM, found 'FORM'\n"
              "SELECT \xc3\xa9t\xc3\xa9 FORM t\n"
              "           ^");
}

TEST(parse_error_deep_nesting_is_bounded) {
    char q[8192];
    size_t n = 0;
    n += (size_t)snprintf(q + n, sizeof q - n, "SELECT ");
    for (int i = 0; i < 3000; i++) q[n++] = '(';
    q[n] = '\0';
    pt_error e;
    CHECK_EQ_I(sql_fail(NULL, q, &e), PT_EPARSE);
    CHECK_CONTAINS(e.msg, "nested too deeply");
    /* the line is shown as a window around the position */
    CHECK_CONTAINS(e.msg, "...");
}

TEST(parse_error_misc_messages) {
    pt_error e;
    CHECK_EQ_I(sql_fail(NULL, "", &e), PT_EPARSE);
    CHECK_CONTAINS(e.msg, "expected SELECT or EXPLAIN, found end of query");
    CHECK_EQ_I(sql_fail(NULL, "SELECT a FROM t, u", &e), PT_EUNSUPPORTED);
    CHECK_CONTAINS(e.msg, "column 16: comma-separated FROM lists");
    CHECK_EQ_I(sql_fail(NULL, "SELECT a FROM t JOIN u", &e), PT_EPARSE);
    CHECK_CONTAINS(e.msg, "expected ON or USING, found end of query");
    CHECK_EQ_I(sql_fail(NULL, "SELECT a FROM t WHERE a IN (SELECT b FROM u)", &e),
               PT_EUNSUPPORTED);
    CHECK_CONTAINS(e.msg, "IN (SELECT ...) is not supported");
    CHECK_EQ_I(sql_fail(NULL, "SELECT sum(DISTINCT a) FROM t", &e), PT_EUNSUPPORTED);
    CHECK_CONTAINS(e.msg, "column 12: DISTINCT is only supported in count(DISTINCT x)");
    CHECK_EQ_I(sql_fail(NULL, "SELECT CASE WHEN a THEN 1 FROM t", &e), PT_EPARSE);
    CHECK_CONTAINS(e.msg, "expected WHEN, ELSE or END, found 'FROM'");
    CHECK_EQ_I(sql_fail(NULL, "SELECT 12abc FROM t", &e), PT_EPARSE);
    CHECK_CONTAINS(e.msg, "column 8: invalid number '12abc'");
    CHECK_EQ_I(sql_fail(NULL, "SELECT \"\" FROM t", &e), PT_EPARSE);
    CHECK_CONTAINS(e.msg, "empty quoted identifier");
    CHECK_EQ_I(sql_fail(NULL, "SELECT a FROM t ORDER BY a NULLS", &e), PT_EPARSE);
    CHECK_CONTAINS(e.msg, "expected LAST, found end of query");
    CHECK_EQ_I(sql_fail(NULL, "SELECT a FROM t LIMIT 5 OFFSET", &e), PT_EPARSE);
    CHECK_CONTAINS(e.msg, "expected a non-negative integer, found end of query");
}

TEST(unknown_table) {
    pt_catalog *c = NULL;
    pt_error e;
    CHECK_OK(pt_catalog_new(ctx(), &c, &e), &e);
    pt_status st = sql_fail(c, "SELECT *\nFROM  nosuch", &e);
    pt_catalog_free(c);
    CHECK_EQ_I(st, PT_EINVAL);
    CHECK_STR(e.msg,
              "error at line 2, column 7: unknown table 'nosuch' (registered tables: none; "
              "quote a file path as 'file.csv')\n"
              "FROM  nosuch\n"
              "      ^");
}

TEST(unknown_file) {
    pt_error e;
    pt_status st = sql_fail(NULL, "SELECT * FROM '/nonexistent/dir/x.csv'", &e);
    CHECK(st != PT_OK);
    CHECK_CONTAINS(e.msg, "error at line 1, column 15: ");
    CHECK_CONTAINS(e.msg, "/nonexistent/dir/x.csv");
    CHECK_CONTAINS(e.msg, "\n              ^");
}

TEST(api_arguments) {
    pt_frame *f = NULL;
    pt_error e;
    CHECK_EQ_I(pt_sql(ctx(), NULL, NULL, &f, NULL, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "query");
    CHECK_EQ_I(pt_sql(ctx(), NULL, "SELECT 1 FROM t", NULL, NULL, &e), PT_EINVAL);
    /* err may be NULL */
    CHECK_EQ_I(pt_sql(ctx(), NULL, "SELECT", &f, NULL, NULL), PT_EPARSE);
    CHECK(f == NULL);
    pt_catalog *c = NULL;
    CHECK_OK(pt_catalog_new(ctx(), &c, &e), &e);
    CHECK_EQ_I(pt_catalog_register(c, "", NULL, &e), PT_EINVAL);
    CHECK_EQ_I(pt_catalog_register(c, "x", NULL, &e), PT_EINVAL);
    pt_catalog_free(c);
    pt_catalog_free(NULL);
    pt_expr *x = NULL;
    CHECK_EQ_I(pt_expr_parse(NULL, &x, &e), PT_EINVAL);
}

/* ------------------------------------------------------------------------ */
/* pt_expr_parse                                                            */
/* ------------------------------------------------------------------------ */

static const char *roundtrip(const char *text, char *buf, size_t cap, pt_error *e) {
    pt_expr *x = NULL;
    if (pt_expr_parse(text, &x, e) != PT_OK) return NULL;
    pt_expr_to_string(x, buf, cap);
    pt_expr_free(x);
    return buf;
}

TEST(expr_parse_roundtrip) {
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"value1 > 0 AND category = 'A'", "value1 > 0 AND category = 'A'"},
        {"a + b * c", "a + b * c"},
        {"(a + b) * c", "(a + b) * c"},
        {"a - (b - c)", "a - (b - c)"},
        {"NOT (a OR b) AND c", "NOT (a OR b) AND c"},
        {"x IS NOT NULL OR y IS NULL", "x IS NOT NULL OR y IS NULL"},
        {"-x + -3", "-x + -3"},
        {"name || '''s'", "name || '''s'"},
        {"x BETWEEN 1 AND 3", "x >= 1 AND x <= 3"},
        {"x IN (1, 2)", "x = 1 OR x = 2"},
        {"sum(v1) / count(*)", "sum(v1) / count(*)"},
        {"count(DISTINCT id)", "count(DISTINCT id)"},
        {"CAST(a AS double)", "CAST(a AS float64)"},
        {"a::bigint % 7", "CAST(a AS int64) % 7"},
        {"CASE WHEN a > 1 THEN 'x' ELSE 'y' END", "CASE WHEN a > 1 THEN 'x' ELSE 'y' END"},
        {"\"odd name\" = 1.5", "\"odd name\" = 1.5"},
        {"abs(x) >= 2e3", "abs(x) >= 2000.0"},
    };
    char buf[512], buf2[512];
    pt_error e;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *r = roundtrip(cases[i].in, buf, sizeof buf, &e);
        CHECK_MSG(r != NULL, "pt_expr_parse(%s): %s", cases[i].in, e.msg);
        CHECK_STR(r, cases[i].out);
        /* printing is a fixed point: the text parses back to the same text */
        const char *r2 = roundtrip(r, buf2, sizeof buf2, &e);
        CHECK_MSG(r2 != NULL, "reparse(%s): %s", r, e.msg);
        CHECK_STR(r2, r);
    }
}

TEST(expr_parse_errors) {
    pt_expr *x = NULL;
    pt_error e;
    CHECK_EQ_I(pt_expr_parse("a > ", &x, &e), PT_EPARSE);
    CHECK(x == NULL);
    CHECK_STR(e.msg, "syntax error at line 1, column 4: expected an expression, found end of "
                     "query\na > \n   ^");
    CHECK_EQ_I(pt_expr_parse("a b", &x, &e), PT_EPARSE);
    CHECK_STR(e.msg, "syntax error at line 1, column 3: expected an operator or end of "
                     "expression, found 'b'\na b\n  ^");
    CHECK_EQ_I(pt_expr_parse("t.a > 1", &x, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "qualified name 't.a' needs a FROM clause");
    CHECK_EQ_I(pt_expr_parse("sum(max(x))", &x, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "column 5: aggregate function calls cannot be nested");
    CHECK_EQ_I(pt_expr_parse("row_number() OVER (ORDER BY a)", &x, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "window functions are not allowed in an expression");
}

/* ------------------------------------------------------------------------ */
/* End to end                                                               */
/* ------------------------------------------------------------------------ */

TEST(select_where_order) {
    pt_catalog *c = make_catalog();
    CHECK_QUERY(c, "SELECT name FROM emp WHERE salary > 95 AND dept = 'eng' ORDER BY name",
                "name\nalice\nbob\nfrank\n");
    CHECK_QUERY(c, "select NAME, Age from EMP where id = 3;", "NAME|Age\ncarol|28\n");
    CHECK_QUERY(c, "SELECT * FROM emp WHERE id >= 7 ORDER BY id",
                "id|name|dept|salary|age\n7|grace|sales|75|41\n8|heidi|hr|60|29\n");
    CHECK_QUERY(c, "SELECT emp.* FROM emp WHERE id = 1", "id|name|dept|salary|age\n1|alice|eng|120|30\n");
    CHECK_QUERY(c,
                "SELECT id, salary / 4 AS q, age % 7 AS m, -age AS neg, id * 2 + 1 "
                "FROM emp WHERE id <= 2 -- comment\n ORDER BY id",
                "id|q|m|neg|id * 2 + 1\n1|30|2|-30|3\n2|25|3|-45|5\n");
    pt_catalog_free(c);
}

TEST(group_by_having) {
    pt_catalog *c = make_catalog();
    CHECK_QUERY(c,
                "SELECT dept, count(*) AS n, sum(salary) AS total FROM emp GROUP BY dept "
                "HAVING count(*) >= 2 ORDER BY total DESC",
                "dept|n|total\neng|3|330\nops|2|175\nsales|2|145\n");
    /* aggregates only in HAVING, expressions of aggregates, ORDER BY position */
    CHECK_QUERY(c,
                "SELECT dept, max(salary) - min(salary) AS spread FROM emp GROUP BY dept "
                "HAVING avg(age) > 30 ORDER BY 2 DESC, dept",
                "dept|spread\neng|20\nops|5\nsales|5\n");
    /* GROUP BY an alias; ORDER BY an aggregate alias */
    CHECK_QUERY(c,
                "SELECT dept AS d, count(*) AS c FROM emp GROUP BY d ORDER BY c DESC, d",
                "d|c\neng|3\nops|2\nsales|2\nhr|1\n");
    /* global aggregate; unnamed items are named by their text */
    CHECK_QUERY(c, "SELECT count(*), min(age), max(age), sum(age), count(DISTINCT dept) FROM emp",
                "count(*)|min(age)|max(age)|sum(age)|count(DISTINCT dept)\n8|28|52|296|4\n");
    /* GROUP BY an expression, ORDER BY an aggregate that is not selected */
    CHECK_QUERY(c,
                "SELECT age / 10 >= 4 AS older, count(*) AS n FROM emp GROUP BY age / 10 >= 4 "
                "ORDER BY sum(salary)",
                "older|n\ntrue|3\nfalse|5\n");
    pt_catalog_free(c);
}

/* The statistical aggregates against a direct computation over the same
 * arrays as the fixture. */
TEST(aggregates_against_reference) {
    static const double salary[] = {120, 100, 90, 85, 70, 110, 75, 60};
    static const double age[] = {30, 45, 28, 52, 33, 38, 41, 29};
    double ms = 0, ma = 0;
    for (int i = 0; i < 8; i++) ms += salary[i] / 8, ma += age[i] / 8;
    double sxx = 0, syy = 0, sxy = 0;
    for (int i = 0; i < 8; i++) {
        sxx += (salary[i] - ms) * (salary[i] - ms);
        syy += (age[i] - ma) * (age[i] - ma);
        sxy += (salary[i] - ms) * (age[i] - ma);
    }
    double var = sxx / 7, sd = sqrt(var), corr = sxy / sqrt(sxx * syy);
    pt_catalog *c = make_catalog();
    pt_frame *f = NULL;
    pt_table *t = NULL;
    pt_error e;
    CHECK_OK(pt_sql(ctx(), c,
                    "SELECT avg(salary) AS a, mean(salary) AS m, stddev(salary) AS s1, "
                    "stddev_samp(salary) AS s2, std(salary) AS s3, variance(salary) AS v1, "
                    "var_samp(salary) AS v2, median(age) AS med, corr(salary, age) AS r, "
                    "first(name) AS f, last(name) AS l FROM emp",
                    &f, NULL, &e),
             &e);
    pt_status st = pt_frame_collect(f, &t, &e);
    pt_frame_free(f);
    pt_catalog_free(c);
    CHECK_OK(st, &e);
    CHECK_EQ_I(t->nrows, 1);
    double want[] = {ms, ms, sd, sd, sd, var, var, 35.5, corr};
    for (int j = 0; j < 9; j++) CHECK_NEAR(pt_column_get_f64(t->cols[j], 0), want[j], 1e-12);
    char *d = dump(t);
    pt_table_free(t);
    CHECK_MSG(strstr(d, "|alice|heidi\n") != NULL, "first/last: %s", d);
    free(d);
}

TEST(order_limit_offset_distinct) {
    pt_catalog *c = make_catalog();
    /* multi-key, DESC, with a key that is not selected (age) */
    CHECK_QUERY(c, "SELECT dept, name FROM emp ORDER BY dept DESC, age",
                "dept|name\nsales|erin\nsales|grace\nops|carol\nops|dave\nhr|heidi\n"
                "eng|alice\neng|frank\neng|bob\n");
    CHECK_QUERY(c, "SELECT id FROM emp ORDER BY salary DESC LIMIT 3 OFFSET 2", "id\n2\n3\n4\n");
    CHECK_QUERY(c, "SELECT id FROM emp ORDER BY id LIMIT 2", "id\n1\n2\n");
    CHECK_QUERY(c, "SELECT DISTINCT dept FROM emp ORDER BY dept", "dept\neng\nhr\nops\nsales\n");
    CHECK_QUERY(c, "SELECT DISTINCT dept, age > 35 AS old FROM emp ORDER BY 1, 2",
                "dept|old\neng|false\neng|true\nhr|false\nops|false\nops|true\nsales|false\n"
                "sales|true\n");
    pt_catalog_free(c);
}

TEST(joins_on) {
    pt_catalog *c = make_catalog();
    CHECK_QUERY(c,
                "SELECT e.name, d.floor FROM emp e JOIN dept d ON e.dept = d.dept "
                "WHERE d.budget >= 500 ORDER BY e.id",
                "name|floor\nalice|3\nbob|3\ncarol|1\ndave|1\nfrank|3\n");
    /* sides swapped in ON; the right side's 'dept' is renamed by the join */
    CHECK_QUERY(c,
                "SELECT d.dept, e.name FROM emp e RIGHT OUTER JOIN dept d ON d.dept = e.dept "
                "WHERE d.floor >= 2 ORDER BY d.dept, e.name",
                "dept|name\neng|alice\neng|bob\neng|frank\nlegal|null\nsales|erin\nsales|grace\n");
    CHECK_QUERY(c,
                "SELECT e.name, d.budget FROM emp AS e LEFT JOIN dept AS d ON e.dept = d.dept "
                "WHERE e.age < 30 ORDER BY e.name",
                "name|budget\ncarol|500\nheidi|null\n");
    CHECK_QUERY(c,
                "SELECT e.dept AS edept, d.dept AS ddept FROM emp e FULL JOIN dept d "
                "ON e.dept = d.dept WHERE e.id IS NULL OR d.dept IS NULL ORDER BY edept",
                "edept|ddept\nhr|null\nnull|legal\n");
    /* extra non-equality condition of an inner join */
    CHECK_QUERY(c,
                "SELECT e.name FROM emp e INNER JOIN dept d ON e.dept = d.dept AND e.age > 40 "
                "ORDER BY 1",
                "name\nbob\ndave\ngrace\n");
    pt_catalog_free(c);
}

TEST(joins_using) {
    pt_catalog *c = make_catalog();
    CHECK_QUERY(c, "SELECT * FROM emp JOIN dept USING (dept) WHERE id = 3",
                "dept|id|name|salary|age|floor|budget\nops|3|carol|90|28|1|500\n");
    CHECK_QUERY(c, "SELECT name, dept, floor FROM emp LEFT JOIN dept USING (dept) ORDER BY id",
                "name|dept|floor\nalice|eng|3\nbob|eng|3\ncarol|ops|1\ndave|ops|1\n"
                "erin|sales|2\nfrank|eng|3\ngrace|sales|2\nheidi|hr|null\n");
    CHECK_QUERY(c,
                "SELECT dept, count(name) AS n FROM emp RIGHT JOIN dept USING (dept) "
                "GROUP BY dept ORDER BY dept",
                "dept|n\neng|3\nlegal|0\nops|2\nsales|2\n");
    CHECK_QUERY(c,
                "SELECT dept, name, emp.dept AS l, dept.dept AS r FROM emp FULL JOIN dept "
                "USING (dept) WHERE name IS NULL OR dept IN ('hr', 'legal') ORDER BY dept",
                "dept|name|l|r\nhr|heidi|hr|null\nlegal|null|null|legal\n");
    pt_catalog_free(c);
}

TEST(join_chains) {
    pt_catalog *c = make_catalog();
    /* c.dept collides twice (dept, dept_right): qualified names still map */
    CHECK_QUERY(c,
                "SELECT a.id, b.floor AS bf, c.budget AS cb, c.dept FROM emp a JOIN dept b "
                "ON a.dept = b.dept JOIN dept c ON c.floor = b.floor WHERE a.id <= 3 "
                "ORDER BY a.id",
                "id|bf|cb|dept\n1|3|1000|eng\n2|3|1000|eng\n3|1|500|ops\n");
    /* USING over a merged FULL JOIN key: COALESCE of three columns */
    CHECK_QUERY(c,
                "SELECT dept, count(*) AS n FROM dept a FULL JOIN dept b USING (dept) "
                "FULL JOIN emp e USING (dept) GROUP BY dept ORDER BY dept",
                "dept|n\neng|3\nhr|1\nlegal|1\nops|2\nsales|2\n");
    /* a join key that is an expression */
    CHECK_QUERY(c,
                "SELECT a.name, b.name AS next FROM emp a JOIN emp b ON a.id + 1 = b.id "
                "WHERE a.id > 5 ORDER BY a.id",
                "name|next\nfrank|grace\ngrace|heidi\n");
    pt_catalog_free(c);
}

/* Every allocation of planning fails in turn: each failure is PT_ENOMEM
 * and leaves nothing allocated. */
TEST(out_of_memory_while_planning) {
    pt_catalog *c = make_catalog();
    const char *q = "SELECT d.dept, count(*) AS n, max(e.salary) FROM emp e FULL JOIN dept d "
                    "USING (dept) WHERE e.age BETWEEN 1 AND 99 AND e.name LIKE '%a%' GROUP BY "
                    "d.dept HAVING count(*) > 0 ORDER BY n DESC, 1 LIMIT 3";
    int64_t base = pt_alloc_bytes_in_use();
    int n;
    for (n = 0; n < 10000; n++) {
        pt_frame *f = NULL;
        pt_error e;
        pt_alloc_fail_after(n);
        pt_status st = pt_sql(ctx(), c, q, &f, NULL, &e);
        pt_alloc_fail_after(-1);
        if (st == PT_OK) {
            pt_frame_free(f);
            break;
        }
        CHECK_MSG(st == PT_ENOMEM, "n=%d: %s: %s", n, pt_status_name(st), e.msg);
        CHECK(f == NULL);
        CHECK_MSG(pt_alloc_bytes_in_use() == base, "n=%d: %lld bytes leaked", n,
                  (long long)(pt_alloc_bytes_in_use() - base));
    }
    CHECK(n > 10 && n < 10000);
    pt_catalog_free(c);
}

TEST(subquery_case_in_between_like) {
    pt_catalog *c = make_catalog();
    CHECK_QUERY(c,
                "SELECT dept, avg_age FROM (SELECT dept, avg(age) AS avg_age FROM emp GROUP BY "
                "dept) s WHERE avg_age > 35 ORDER BY avg_age DESC",
                "dept|avg_age\nops|40\neng|37.6667\nsales|37\n");
    CHECK_QUERY(c,
                "SELECT name, CASE WHEN salary >= 100 THEN 'high' WHEN salary >= 80 THEN 'mid' "
                "ELSE 'low' END AS band FROM emp ORDER BY id",
                "name|band\nalice|high\nbob|high\ncarol|mid\ndave|mid\nerin|low\nfrank|high\n"
                "grace|low\nheidi|low\n");
    CHECK_QUERY(c, "SELECT sum(CASE dept WHEN 'eng' THEN 1 ELSE 0 END) AS n_eng FROM emp",
                "n_eng\n3\n");
    CHECK_QUERY(c,
                "SELECT id FROM emp WHERE dept IN ('ops', 'hr') AND age BETWEEN 28 AND 50 "
                "ORDER BY id",
                "id\n3\n8\n");
    CHECK_QUERY(c, "SELECT id FROM emp WHERE dept NOT IN ('eng', 'ops') ORDER BY id",
                "id\n5\n7\n8\n");
    CHECK_QUERY(c, "SELECT id FROM emp WHERE age NOT BETWEEN 30 AND 45 ORDER BY id",
                "id\n3\n4\n8\n");
    CHECK_QUERY(c, "SELECT name FROM emp WHERE name LIKE '%a%' ORDER BY name",
                "name\nalice\ncarol\ndave\nfrank\ngrace\n");
    CHECK_QUERY(c, "SELECT id FROM emp WHERE name NOT LIKE '%e%' ORDER BY id", "id\n2\n3\n6\n");
    CHECK_QUERY(c,
                "SELECT name || '-' || CAST(age AS varchar) AS tag, age::double / 8 AS x "
                "FROM emp WHERE id = 1",
                "tag|x\nalice-30|3.75\n");
    pt_catalog_free(c);
}

/* count(*) over a filter on the only column the scan has to read. */
TEST(count_star_after_not_in) {
    pt_catalog *c = make_catalog();
    CHECK_QUERY(c, "SELECT count(*) AS n FROM emp WHERE dept NOT IN ('eng')", "n\n5\n");
    CHECK_QUERY(c, "SELECT count(*) AS n FROM emp WHERE dept <> 'eng'", "n\n5\n");
    CHECK_QUERY(c, "SELECT count(*) AS n FROM emp WHERE age NOT BETWEEN 30 AND 45", "n\n3\n");
    CHECK_QUERY(c, "SELECT count(*) AS n FROM emp WHERE name NOT LIKE 'a%'", "n\n7\n");
    pt_catalog_free(c);
}

TEST(row_number_q8_pattern) {
    pt_catalog *c = make_catalog();
    /* db-benchmark q8: the two largest salaries per department */
    CHECK_QUERY(c,
                "SELECT dept, name FROM (SELECT dept, name, ROW_NUMBER() OVER (PARTITION BY "
                "dept ORDER BY salary DESC) AS rn FROM emp) WHERE rn <= 2 ORDER BY dept, name",
                "dept|name\neng|alice\neng|frank\nhr|heidi\nops|carol\nops|dave\nsales|erin\n"
                "sales|grace\n");
    CHECK_QUERY(c,
                "SELECT name, row_number() OVER (ORDER BY age DESC) AS r FROM emp ORDER BY r "
                "LIMIT 3",
                "name|r\ndave|1\nbob|2\ngrace|3\n");
    pt_catalog_free(c);
}

TEST(csv_file_source) {
    const char *p = pt_test_write("sql_src.csv", "x,y\n1,a\n2,b\n3,c\n");
    char q[1024];
    snprintf(q, sizeof q, "SELECT y, x * 10 AS x10 FROM '%s' WHERE x > 1 ORDER BY x DESC", p);
    pt_catalog *c = NULL;
    CHECK_QUERY(c, q, "y|x10\nc|30\nb|20\n");
    snprintf(q, sizeof q, "SELECT sql_src.y FROM '%s' WHERE sql_src.x = 2", p);
    CHECK_QUERY(c, q, "y\nb\n");
}

TEST(explain) {
    pt_catalog *c = make_catalog();
    pt_frame *f = NULL;
    int is_explain = 0;
    pt_error e;
    CHECK_OK(pt_sql(ctx(), c, "EXPLAIN SELECT dept, count(*) FROM emp WHERE age > 30 GROUP BY dept",
                    &f, &is_explain, &e),
             &e);
    CHECK_EQ_I(is_explain, 1);
    char *text = NULL;
    pt_status st = pt_frame_explain_string(f, &text, &e);
    pt_frame_free(f);
    pt_catalog_free(c);
    CHECK_OK(st, &e);
    CHECK(text && strlen(text) > 0);
    if (text) {
        /* both plans, and the predicate pushed into the scan by the optimiser */
        const char *opt = strstr(text, "== optimised plan ==");
        CHECK(opt != NULL);
        CHECK_CONTAINS(text, "Aggregate keys=[dept]");
        if (opt) CHECK_CONTAINS(opt, "filter=age > 30");
    }
    pt_free(text);
    c = make_catalog();
    CHECK_OK(pt_sql(ctx(), c, "SELECT 1 AS one FROM emp", &f, &is_explain, &e), &e);
    CHECK_EQ_I(is_explain, 0);
    pt_frame_free(f);
    pt_catalog_free(c);
}

TEST(semantic_errors) {
    pt_catalog *c = make_catalog();
    pt_error e;
    pt_status st = sql_fail(c, "SELECT nme FROM emp", &e);
    CHECK_MSG(st != PT_OK, "unknown column accepted");
    CHECK_CONTAINS(e.msg, "error at line 1, column 8: ");
    CHECK_CONTAINS(e.msg, "nme");
    CHECK_CONTAINS(e.msg, "salary"); /* the available columns are listed */
    CHECK_CONTAINS(e.msg, "\nSELECT nme FROM emp\n       ^");
    st = sql_fail(c, "SELECT name FROM emp WHERE agee > 3", &e);
    CHECK(st != PT_OK);
    CHECK_CONTAINS(e.msg, "error at line 1, column 28: ");
    CHECK_EQ_I(sql_fail(c, "SELECT name, count(*) FROM emp GROUP BY dept", &e), PT_EINVAL);
    CHECK_STR(e.msg, "error at line 1, column 8: column 'name' must appear in GROUP BY or be "
                     "used in an aggregate function\n"
                     "SELECT name, count(*) FROM emp GROUP BY dept\n"
                     "       ^");
    CHECK_EQ_I(sql_fail(c, "SELECT dept FROM emp JOIN dept ON emp.dept = dept.dept", &e),
               PT_EINVAL);
    CHECK_CONTAINS(e.msg, "column 8: column reference 'dept' is ambiguous (could be emp.dept, "
                          "dept.dept); qualify it");
    CHECK_EQ_I(sql_fail(c, "SELECT x.name FROM emp e", &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "unknown table or alias 'x' in 'x.name' (known: e)");
    CHECK_EQ_I(sql_fail(c, "SELECT e.nam FROM emp e", &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "column 'nam' not found in 'e' (available: id, name, dept, salary, age)");
    CHECK_EQ_I(sql_fail(c, "SELECT name FROM emp WHERE count(*) > 1", &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "column 28: aggregate functions are not allowed in WHERE");
    CHECK_EQ_I(sql_fail(c, "SELECT name FROM emp ORDER BY 3", &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "ORDER BY position 3 is not in the select list (1..1)");
    CHECK_EQ_I(sql_fail(c, "SELECT DISTINCT name FROM emp ORDER BY age", &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "for SELECT DISTINCT, ORDER BY expressions must appear in the select list");
    CHECK_EQ_I(sql_fail(c, "SELECT * FROM emp LEFT JOIN dept d ON emp.age > d.floor", &e),
               PT_EUNSUPPORTED);
    CHECK_CONTAINS(e.msg, "only equalities between the two sides are supported");
    CHECK_EQ_I(sql_fail(c, "SELECT * FROM emp JOIN dept USING (nope)", &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "column 'nope' in USING is not on the left side of the join");
    CHECK_EQ_I(sql_fail(c, "SELECT * FROM emp JOIN emp ON id = id", &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "table name 'emp' is used twice in FROM");
    CHECK_EQ_I(sql_fail(c, "SELECT name FROM emp WHERE row_number() OVER () > 1", &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "window functions are not allowed in WHERE");
    pt_catalog_free(c);
}

TEST(catalog_replace_and_case) {
    pt_catalog *c = make_catalog();
    pt_error e;
    pt_frame *f = NULL;
    static const int64_t v[] = {7};
    const char *const n[] = {"v"};
    const pt_type t[] = {PT_TYPE_INT64};
    const void *const d[] = {v};
    CHECK_OK(pt_frame_from_arrays(ctx(), 1, n, t, d, 1, 1, &f, &e), &e);
    CHECK_OK(pt_catalog_register(c, "Small", f, &e), &e);
    /* registering a name again replaces the frame */
    CHECK_OK(pt_catalog_register(c, "emp", f, &e), &e);
    pt_frame_free(f); /* the catalog holds its own references */
    CHECK_QUERY(c, "SELECT v FROM small", "v\n7\n");
    CHECK_QUERY(c, "SELECT v FROM \"Small\"", "v\n7\n");
    CHECK_QUERY(c, "SELECT s.v + e.v AS w FROM Small s JOIN emp e ON s.v = e.v", "w\n14\n");
    CHECK_EQ_I(sql_fail(c, "SELECT v FROM \"small\"", &e), PT_EINVAL);
    pt_catalog_free(c);
}
