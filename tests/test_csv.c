/* Tests of the CSV reader and writer: edge cases of the format, header and
 * delimiter detection, type inference and promotion, explicit schemas,
 * projection, error messages, skip_bad_rows, streaming and the writer's
 * round trip. Expected values are written out by hand or computed
 * independently (strtod for floats, closed forms for generated files). */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt_test.h"

static pt_status rd_opts(const char *text, pt_csv_opts *o, pt_table **t, pt_csv_report *rep,
                         pt_error *err) {
    o->progress = 0;
    return pt_csv_read_buffer(NULL, text, (int64_t)strlen(text), "t.csv", o, t, rep, err);
}

static pt_status rd(const char *text, pt_table **t, pt_error *err) {
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    return rd_opts(text, &o, t, NULL, err);
}

static int is_str(const pt_column *c, int64_t i, const char *s) {
    if (!pt_column_is_valid(c, i)) return 0;
    int64_t n;
    const char *p = pt_column_str(c, i, &n);
    return n == (int64_t)strlen(s) && memcmp(p, s, (size_t)n) == 0;
}

static int is_null(const pt_column *c, int64_t i) { return !pt_column_is_valid(c, i); }

static pt_schema *mkschema(int n, const char *const *names, const pt_type *types) {
    pt_schema *s = NULL;
    pt_error err;
    if (pt_schema_new(n, names, types, &s, &err) != PT_OK) return NULL;
    return s;
}

TEST(basic_types) {
    pt_error err;
    pt_table *t;
    CHECK_OK(rd("a,b,c,d\n1,2.5,x,true\n-3,1e3,y,FALSE\n", &t, &err), &err);
    CHECK_EQ_I(t->nrows, 2);
    CHECK_EQ_I(t->schema->nfields, 4);
    CHECK_STR(t->schema->fields[0].name, "a");
    CHECK_EQ_I(t->cols[0]->type, PT_TYPE_INT64);
    CHECK_EQ_I(t->cols[1]->type, PT_TYPE_FLOAT64);
    CHECK_EQ_I(t->cols[2]->type, PT_TYPE_DICT);
    CHECK_EQ_I(t->cols[3]->type, PT_TYPE_BOOL);
    CHECK_EQ_I(pt_column_i64(t->cols[0])[0], 1);
    CHECK_EQ_I(pt_column_i64(t->cols[0])[1], -3);
    CHECK(pt_column_f64(t->cols[1])[0] == 2.5);
    CHECK(pt_column_f64(t->cols[1])[1] == 1000.0);
    CHECK(is_str(t->cols[2], 0, "x") && is_str(t->cols[2], 1, "y"));
    CHECK(pt_column_bool(t->cols[3], 0) == true && pt_column_bool(t->cols[3], 1) == false);
    CHECK_EQ_I(t->cols[0]->null_count, 0);
    pt_table_free(t);
}

TEST(quoting) {
    pt_error err;
    pt_table *t;
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.dict_strings = 0;
    const char *text = "id,text\n1,\"a,b\"\n2,\"say \"\"hi\"\"\"\n3,\"line1\nline2\"\n4,\"\"\n5,\n"
                       "6,\"x\r\ny\"\n";
    CHECK_OK(rd_opts(text, &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->nrows, 6);
    pt_column *c = t->cols[1];
    CHECK_EQ_I(c->type, PT_TYPE_UTF8);
    CHECK(is_str(c, 0, "a,b"));
    CHECK(is_str(c, 1, "say \"hi\""));
    CHECK(is_str(c, 2, "line1\nline2"));
    CHECK(is_str(c, 3, "")); /* quoted empty: an empty string in a text column */
    CHECK(is_null(c, 4));    /* unquoted empty: null */
    CHECK(is_str(c, 5, "x\r\ny")); /* line breaks inside quotes are kept as is */
    CHECK_EQ_I(c->null_count, 1);
    CHECK_EQ_I(pt_column_i64(t->cols[0])[5], 6);
    pt_table_free(t);
}

TEST(crlf_bom_no_final_newline) {
    pt_error err;
    pt_table *t;
    CHECK_OK(rd("\xEF\xBB\xBF"
                "a,b\r\n1,x\r\n2,\"y\"\r\n3,z",
                &t, &err),
             &err);
    CHECK_EQ_I(t->nrows, 3);
    CHECK_STR(t->schema->fields[0].name, "a");
    CHECK_EQ_I(pt_column_i64(t->cols[0])[2], 3);
    CHECK(is_str(t->cols[1], 0, "x"));
    CHECK(is_str(t->cols[1], 1, "y"));
    CHECK(is_str(t->cols[1], 2, "z"));
    pt_table_free(t);
    /* a final line without a newline that ends in CR */
    CHECK_OK(rd("a,b\n1,2\r", &t, &err), &err);
    CHECK_EQ_I(t->nrows, 1);
    CHECK_EQ_I(pt_column_i64(t->cols[1])[0], 2);
    pt_table_free(t);
}

TEST(nulls_in_numbers) {
    pt_error err;
    pt_table *t;
    CHECK_OK(rd("a,b\n1,\n,2\n\"\",3\n", &t, &err), &err);
    CHECK_EQ_I(t->cols[0]->type, PT_TYPE_INT64);
    CHECK_EQ_I(t->cols[1]->type, PT_TYPE_INT64);
    CHECK(!is_null(t->cols[0], 0) && pt_column_i64(t->cols[0])[0] == 1);
    CHECK(is_null(t->cols[0], 1));
    CHECK(is_null(t->cols[0], 2)); /* quoted empty in a numeric column: null */
    CHECK(is_null(t->cols[1], 0));
    CHECK_EQ_I(pt_column_i64(t->cols[1])[2], 3);
    CHECK_EQ_I(t->cols[0]->null_count, 2);
    CHECK_EQ_I(t->cols[1]->null_count, 1);
    pt_table_free(t);
}

TEST(null_values) {
    pt_error err;
    pt_table *t;
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    const char *nv[] = {"NA", "-999", NULL};
    o.null_values = nv;
    CHECK_OK(rd_opts("a,b\n1,NA\nNA,x\n-999,\"NA\"\n4,y\n", &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->cols[0]->type, PT_TYPE_INT64);
    CHECK(pt_column_i64(t->cols[0])[0] == 1 && is_null(t->cols[0], 1) && is_null(t->cols[0], 2));
    CHECK_EQ_I(pt_column_i64(t->cols[0])[3], 4);
    CHECK(is_null(t->cols[1], 0));
    CHECK(is_str(t->cols[1], 1, "x"));
    CHECK(is_str(t->cols[1], 2, "NA")); /* quoted: kept as text */
    pt_table_free(t);
}

TEST(blank_lines) {
    pt_error err;
    pt_table *t;
    CHECK_OK(rd("a,b\n1,2\n\n3,4\r\n\r\n\n", &t, &err), &err);
    CHECK_EQ_I(t->nrows, 2);
    CHECK_EQ_I(pt_column_i64(t->cols[0])[1], 3);
    pt_table_free(t);
    /* one column: an empty line is an empty (null) field */
    CHECK_OK(rd("x\n1\n\n3\n", &t, &err), &err);
    CHECK_EQ_I(t->nrows, 3);
    CHECK(is_null(t->cols[0], 1));
    CHECK_EQ_I(pt_column_i64(t->cols[0])[2], 3);
    pt_table_free(t);
}

TEST(header_detection) {
    pt_error err;
    pt_table *t;
    CHECK_OK(rd("1,2\n3,4\n", &t, &err), &err);
    CHECK_EQ_I(t->nrows, 2);
    CHECK_STR(t->schema->fields[0].name, "c0");
    CHECK_STR(t->schema->fields[1].name, "c1");
    CHECK_EQ_I(pt_column_i64(t->cols[0])[0], 1);
    pt_table_free(t);
    CHECK_OK(rd("name,age\nbob,30\nann,41\n", &t, &err), &err);
    CHECK_EQ_I(t->nrows, 2);
    CHECK_STR(t->schema->fields[1].name, "age");
    CHECK_EQ_I(pt_column_i64(t->cols[1])[1], 41);
    pt_table_free(t);
    CHECK_OK(rd("x,y\nfoo,bar\n", &t, &err), &err); /* all text: a header */
    CHECK_EQ_I(t->nrows, 1);
    CHECK_STR(t->schema->fields[1].name, "y");
    pt_table_free(t);
    /* forced off and on */
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.header = 0;
    CHECK_OK(rd_opts("a,b\n1,2\n", &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->nrows, 2);
    CHECK(is_str(t->cols[0], 0, "a") && is_str(t->cols[0], 1, "1"));
    pt_table_free(t);
    o.header = 1;
    CHECK_OK(rd_opts("1,2\n3,4\n", &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->nrows, 1);
    CHECK_STR(t->schema->fields[0].name, "1");
    pt_table_free(t);
    /* duplicate and empty names */
    CHECK_OK(rd("a,a,\n1,2,3\n", &t, &err), &err);
    CHECK_STR(t->schema->fields[0].name, "a");
    CHECK_STR(t->schema->fields[1].name, "a_1");
    CHECK_STR(t->schema->fields[2].name, "c2");
    pt_table_free(t);
}

TEST(delimiter_sniffing) {
    pt_error err;
    pt_table *t;
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.delimiter = 0;
    CHECK_OK(rd_opts("a;b;c\n1;2;3\n", &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->schema->nfields, 3);
    CHECK_EQ_I(pt_column_i64(t->cols[2])[0], 3);
    pt_table_free(t);
    CHECK_OK(rd_opts("a\tb\n1\t2\n", &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->schema->nfields, 2);
    pt_table_free(t);
    CHECK_OK(rd_opts("a|b\n1|2\n", &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->schema->nfields, 2);
    pt_table_free(t);
    /* commas only inside quotes: the semicolon is the delimiter */
    CHECK_OK(rd_opts("a;b\n\"x,y\";2\n\"p,q,r\";3\n", &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->schema->nfields, 2);
    CHECK(is_str(t->cols[0], 1, "p,q,r"));
    pt_table_free(t);
}

TEST(projection) {
    pt_error err;
    pt_table *t;
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    const char *cols[] = {"c", "a"};
    o.columns = cols;
    o.ncolumns = 2;
    CHECK_OK(rd_opts("a,b,c\n1,x,2.5\n3,\"y,\"\"z\",4.5\n", &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->schema->nfields, 2);
    CHECK_STR(t->schema->fields[0].name, "c");
    CHECK_STR(t->schema->fields[1].name, "a");
    CHECK(pt_column_f64(t->cols[0])[1] == 4.5);
    CHECK_EQ_I(pt_column_i64(t->cols[1])[1], 3);
    pt_table_free(t);
    const char *bad[] = {"a", "zz"};
    o.columns = bad;
    pt_status s = rd_opts("a,b,c\n1,2,3\n", &o, &t, NULL, &err);
    CHECK_EQ_I(s, PT_EINVAL);
    CHECK_CONTAINS(err.msg, "'zz'");
    CHECK_CONTAINS(err.msg, "'a', 'b', 'c'");
}

TEST(explicit_schema) {
    pt_error err;
    pt_table *t;
    const char *names[] = {"i", "f", "d", "b", "u", "l"};
    pt_type types[] = {PT_TYPE_INT32,  PT_TYPE_FLOAT32, PT_TYPE_DICT,
                       PT_TYPE_BOOL, PT_TYPE_UTF8,    PT_TYPE_INT64};
    pt_schema *s = mkschema(6, names, types);
    CHECK(s);
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.schema = s;
    /* no header line: names come from the schema */
    CHECK_OK(rd_opts("7,0.1,x,true,007,5\n-8,,y,,,\n", &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->nrows, 2);
    CHECK_EQ_I(t->cols[0]->type, PT_TYPE_INT32);
    CHECK_EQ_I(t->cols[1]->type, PT_TYPE_FLOAT32);
    CHECK_EQ_I(t->cols[2]->type, PT_TYPE_DICT);
    CHECK_EQ_I(t->cols[3]->type, PT_TYPE_BOOL);
    CHECK_EQ_I(t->cols[4]->type, PT_TYPE_UTF8);
    CHECK_STR(t->schema->fields[4].name, "u");
    CHECK_EQ_I(pt_column_i32(t->cols[0])[1], -8);
    CHECK(pt_column_f32(t->cols[1])[0] == 0.1f);
    CHECK(is_null(t->cols[1], 1));
    CHECK(is_str(t->cols[2], 1, "y"));
    CHECK(pt_column_bool(t->cols[3], 0) && is_null(t->cols[3], 1));
    CHECK(is_str(t->cols[4], 0, "007") && is_null(t->cols[4], 1));
    pt_table_free(t);
    /* a header with the schema's names is detected and skipped */
    CHECK_OK(rd_opts("i,f,d,b,u,l\n1,2,3,false,5,6\n", &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->nrows, 1);
    CHECK(is_str(t->cols[2], 0, "3"));
    pt_table_free(t);
    /* wrong field count */
    pt_status st = rd_opts("1,2\n", &o, &t, NULL, &err);
    CHECK_EQ_I(st, PT_EINVAL);
    CHECK_CONTAINS(err.msg, "6 fields");
    pt_schema_free(s);
}

TEST(schema_type_errors) {
    pt_error err;
    pt_table *t;
    const char *names[] = {"x", "y"};
    pt_type types[] = {PT_TYPE_INT64, PT_TYPE_INT32};
    pt_schema *s = mkschema(2, names, types);
    CHECK(s);
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.schema = s;
    o.header = 1;
    pt_status st = rd_opts("x,y\n1,2\nabc,3\n", &o, &t, NULL, &err);
    CHECK_EQ_I(st, PT_ETYPE);
    CHECK_STR(err.msg, "t.csv:3:1: invalid int64 'abc' in column 'x'");
    st = rd_opts("x,y\n1,2\n4,5000000000\n", &o, &t, NULL, &err);
    CHECK_EQ_I(st, PT_ETYPE);
    CHECK_STR(err.msg, "t.csv:3:3: invalid int32 '5000000000' in column 'y'");
    st = rd_opts("x,y\n99999999999999999999,1\n", &o, &t, NULL, &err);
    CHECK_EQ_I(st, PT_ETYPE);
    CHECK_CONTAINS(err.msg, "t.csv:2:1: invalid int64 '99999999999999999999'");
    /* skipped instead */
    o.skip_bad_rows = 1;
    pt_csv_report rep;
    CHECK_OK(rd_opts("x,y\n1,2\nabc,3\n4,5\n", &o, &t, &rep, &err), &err);
    CHECK_EQ_I(t->nrows, 2);
    CHECK_EQ_I(rep.bad_rows, 1);
    CHECK_STR(rep.first_bad, "t.csv:3:1: invalid int64 'abc' in column 'x'");
    CHECK_EQ_I(pt_column_i64(t->cols[0])[1], 4);
    pt_table_free(t);
    pt_schema_free(s);
}

TEST(error_messages) {
    pt_error err;
    pt_table *t;
    pt_status s = rd("a,b,c\n1,2,3\n4,5,6,7\n", &t, &err);
    CHECK_EQ_I(s, PT_EPARSE);
    CHECK_STR(err.msg, "t.csv:3:7: expected 3 fields, found 4: '4,5,6,7'");
    s = rd("a,b,c\n1,2,3\n4,5\n", &t, &err);
    CHECK_EQ_I(s, PT_EPARSE);
    CHECK_STR(err.msg, "t.csv:3:4: expected 3 fields, found 2: '4,5'");
    /* unterminated quote: the line where it opened */
    s = rd("a,b\n1,x\n2,\"abc\n3,y\n", &t, &err);
    CHECK_EQ_I(s, PT_EPARSE);
    CHECK_CONTAINS(err.msg, "t.csv:3:3: unterminated quoted field");
    CHECK_CONTAINS(err.msg, "'\"abc\\n3,y\\n'");
    /* quote inside an unquoted field */
    s = rd("a,b\n1,ab\"c\n", &t, &err);
    CHECK_EQ_I(s, PT_EPARSE);
    CHECK_CONTAINS(err.msg, "t.csv:2:5: quote character inside an unquoted field: 'ab\"c'");
    /* text after a closing quote */
    s = rd("a,b\n1,\"ab\"c\n", &t, &err);
    CHECK_EQ_I(s, PT_EPARSE);
    CHECK_CONTAINS(err.msg, "t.csv:2:7: unexpected character 'c' after a closing quote");
    /* line numbers count the lines inside quoted fields */
    s = rd("a,b\n1,\"x\ny\nz\"\n2,3,4\n", &t, &err);
    CHECK_EQ_I(s, PT_EPARSE);
    CHECK_CONTAINS(err.msg, "t.csv:5:5: expected 2 fields, found 3");
    /* invalid UTF-8 in a text column: the byte column of the bad byte */
    s = rd("a,b\n1,ok\n2,ab\xff"
           "cd\n",
           &t, &err);
    CHECK_EQ_I(s, PT_EPARSE);
    CHECK_STR(err.msg, "t.csv:3:5: invalid UTF-8 in column 'b': 'ab\\xffcd'");
    /* long rows are cut in messages */
    s = rd("a,b\n1,2\n0123456789,0123456789012345678901234567890123456789,extra\n", &t, &err);
    CHECK_EQ_I(s, PT_EPARSE);
    CHECK_CONTAINS(err.msg, "'0123456789,01234567890123456789012345678...'");
}

TEST(file_errors) {
    pt_error err;
    pt_table *t;
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.progress = 0;
    const char *missing = pt_test_tmp("no_such.csv");
    pt_status s = pt_csv_read(NULL, missing, &o, &t, NULL, &err);
    CHECK_EQ_I(s, PT_ENOENT);
    CHECK_CONTAINS(err.msg, missing);
    CHECK_CONTAINS(err.msg, strerror(ENOENT));
    const char *empty = pt_test_write("empty.csv", "");
    s = pt_csv_read(NULL, empty, &o, &t, NULL, &err);
    CHECK_EQ_I(s, PT_EEMPTY);
    CHECK_CONTAINS(err.msg, "empty.csv: empty file");
    s = pt_csv_read(NULL, pt_test_write("blank.csv", "\n\r\n"), &o, &t, NULL, &err);
    CHECK_EQ_I(s, PT_EEMPTY);
    const char *dir = pt_test_tmp("adir");
    CHECK(mkdir(dir, 0700) == 0);
    s = pt_csv_read(NULL, dir, &o, &t, NULL, &err);
    CHECK_EQ_I(s, PT_EIO);
    /* header only: zero rows, not an error */
    CHECK_OK(pt_csv_read(NULL, pt_test_write("hdr.csv", "a,b,c\n"), &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->nrows, 0);
    CHECK_EQ_I(t->schema->nfields, 3);
    CHECK_STR(t->schema->fields[2].name, "c");
    pt_table_free(t);
}

TEST(bad_options) {
    pt_error err;
    pt_table *t;
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.chunk_bytes = -1;
    CHECK_EQ_I(rd_opts("a\n1\n", &o, &t, NULL, &err), PT_EINVAL);
    CHECK_CONTAINS(err.msg, "chunk_bytes");
    pt_csv_opts_init(&o);
    o.delimiter = '"';
    CHECK_EQ_I(rd_opts("a\n1\n", &o, &t, NULL, &err), PT_EINVAL);
    CHECK_CONTAINS(err.msg, "delimiter");
    pt_csv_opts_init(&o);
    o.header = 7;
    CHECK_EQ_I(rd_opts("a\n1\n", &o, &t, NULL, &err), PT_EINVAL);
    CHECK_CONTAINS(err.msg, "header");
    pt_csv_opts_init(&o);
    o.sample_rows = -5;
    CHECK_EQ_I(rd_opts("a\n1\n", &o, &t, NULL, &err), PT_EINVAL);
    CHECK_CONTAINS(err.msg, "sample_rows");
}

TEST(skip_bad_rows) {
    pt_error err;
    pt_table *t;
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.skip_bad_rows = 1;
    pt_csv_report rep;
    CHECK_OK(rd_opts("a,b\n1,2\n3\n4,5\n6,7,8\n9,\"x\"y\n10,11\n", &o, &t, &rep, &err), &err);
    CHECK_EQ_I(t->nrows, 3);
    CHECK_EQ_I(rep.rows, 3);
    CHECK_EQ_I(rep.bad_rows, 3);
    CHECK_STR(rep.first_bad, "t.csv:3:2: expected 2 fields, found 1: '3'");
    CHECK_EQ_I(pt_column_i64(t->cols[0])[0], 1);
    CHECK_EQ_I(pt_column_i64(t->cols[0])[1], 4);
    CHECK_EQ_I(pt_column_i64(t->cols[0])[2], 10);
    CHECK_EQ_I(t->cols[1]->type, PT_TYPE_INT64);
    CHECK_EQ_I(pt_column_i64(t->cols[1])[2], 11);
    pt_table_free(t);
}

/* Builds "a,b,c" rows i = 1..n where a = i, b = zero padded text of i,
 * c = i * 0.5; with special rows. */
static char *promo_text(int n, int *len) {
    size_t cap = (size_t)n * 40 + 64;
    char *s = malloc(cap);
    size_t o = (size_t)snprintf(s, cap, "a,b,c\n");
    for (int i = 1; i <= n; i++) {
        if (i == 5000)
            o += (size_t)snprintf(s + o, cap - o, "3.5,%03d,%d\n", i, i);
        else if (i == 9000)
            o += (size_t)snprintf(s + o, cap - o, "x,txt,%d\n", i);
        else
            o += (size_t)snprintf(s + o, cap - o, "%d,%03d,%d\n", i, i, i);
    }
    *len = (int)o;
    return s;
}

TEST(promotion_past_sample) {
    int len;
    char *text = promo_text(10000, &len);
    for (int pass = 0; pass < 3; pass++) {
        pt_error err;
        pt_table *t;
        pt_csv_opts o;
        pt_csv_opts_init(&o);
        o.sample_rows = 10;
        o.progress = 0;
        o.dict_strings = 0;
        o.chunk_bytes = pass == 0 ? 0 : pass == 1 ? 4096 : 97;
        pt_csv_report rep;
        pt_ctx *ctx = NULL;
        pt_ctx_opts co;
        pt_ctx_opts_init(&co);
        co.threads = 2;
        CHECK_OK(pt_ctx_new(&co, &ctx, &err), &err);
        pt_status s = pt_csv_read_buffer(ctx, text, len, "p.csv", &o, &t, &rep, &err);
        CHECK_OK(s, &err);
        CHECK_EQ_I(t->nrows, 10000);
        CHECK_EQ_I(t->cols[0]->type, PT_TYPE_UTF8);
        CHECK_EQ_I(t->cols[1]->type, PT_TYPE_UTF8);
        CHECK_EQ_I(t->cols[2]->type, PT_TYPE_INT64);
        CHECK_EQ_I(rep.promotions, 2);
        for (int i = 1; i <= 10000; i++) {
            char a[32], b[32];
            if (i == 5000)
                strcpy(a, "3.5");
            else if (i == 9000)
                strcpy(a, "x");
            else
                snprintf(a, sizeof a, "%d", i);
            if (i == 9000)
                strcpy(b, "txt");
            else
                snprintf(b, sizeof b, "%03d", i);
            CHECK_MSG(is_str(t->cols[0], i - 1, a), "row %d a", i);
            CHECK_MSG(is_str(t->cols[1], i - 1, b), "row %d b", i); /* "007" stays "007" */
            CHECK_EQ_I(pt_column_i64(t->cols[2])[i - 1], i);
        }
        pt_table_free(t);
        pt_ctx_free(ctx);
    }
    free(text);
}

TEST(promotion_int_to_float) {
    size_t cap = 200000;
    char *s = malloc(cap);
    size_t o = (size_t)snprintf(s, cap, "v,w\n");
    for (int i = 0; i < 6000; i++) {
        if (i == 4321)
            o += (size_t)snprintf(s + o, cap - o, "2.25,99999999999999999999\n");
        else
            o += (size_t)snprintf(s + o, cap - o, "%d,%d\n", i - 3000, i);
    }
    pt_error err;
    pt_table *t;
    pt_csv_opts op;
    pt_csv_opts_init(&op);
    op.sample_rows = 5;
    op.chunk_bytes = 1000;
    op.progress = 0;
    pt_csv_report rep;
    CHECK_OK(pt_csv_read_buffer(NULL, s, (int64_t)o, "f.csv", &op, &t, &rep, &err), &err);
    CHECK_EQ_I(t->cols[0]->type, PT_TYPE_FLOAT64);
    CHECK_EQ_I(t->cols[1]->type, PT_TYPE_FLOAT64); /* too big for int64: float64 */
    CHECK_EQ_I(rep.promotions, 2);
    for (int i = 0; i < 6000; i++) {
        double want = i == 4321 ? 2.25 : (double)(i - 3000);
        CHECK_MSG(pt_column_f64(t->cols[0])[i] == want, "row %d", i);
    }
    CHECK(pt_column_f64(t->cols[1])[4321] == 1e20);
    CHECK(pt_column_f64(t->cols[1])[4322] == 4322.0);
    pt_table_free(t);
    free(s);
}

TEST(bool_and_null_columns) {
    pt_error err;
    pt_table *t;
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.sample_rows = 2;
    o.dict_strings = 0;
    CHECK_OK(rd_opts("a,b,c\ntrue,,1\nfalse,,2\nTrue,,3\nmaybe,,4\n", &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->cols[0]->type, PT_TYPE_UTF8); /* bool + text = text */
    CHECK(is_str(t->cols[0], 2, "True") && is_str(t->cols[0], 3, "maybe"));
    CHECK_EQ_I(t->cols[1]->type, PT_TYPE_NULL);
    CHECK_EQ_I(t->cols[1]->null_count, 4);
    CHECK_EQ_I(t->cols[1]->length, 4);
    pt_table_free(t);
    /* a null-typed sample column that gets values later */
    CHECK_OK(rd_opts("a,b\n1,\n2,\n3,\n4,5\n", &o, &t, NULL, &err), &err);
    CHECK_EQ_I(t->cols[1]->type, PT_TYPE_INT64);
    CHECK(is_null(t->cols[1], 0) && is_null(t->cols[1], 2));
    CHECK_EQ_I(pt_column_i64(t->cols[1])[3], 5);
    CHECK_EQ_I(t->cols[1]->null_count, 3);
    pt_table_free(t);
}

TEST(float_parsing_matches_strtod) {
    /* random decimal texts of all shapes; the reader must give strtod's
     * correctly rounded double */
    pt_rng rng;
    pt_rng_seed(&rng, 42);
    int n = 20000;
    size_t cap = (size_t)n * 48 + 16;
    char *s = malloc(cap);
    char (*texts)[40] = malloc((size_t)n * sizeof *texts);
    size_t o = (size_t)snprintf(s, cap, "v\n");
    for (int i = 0; i < n; i++) {
        char *t = texts[i];
        int k = 0;
        if (pt_rng_below(&rng, 4) == 0) t[k++] = '-';
        int nd = 1 + (int)pt_rng_below(&rng, 22);
        int dot = (int)pt_rng_below(&rng, (uint64_t)nd + 2);
        for (int d = 0; d < nd; d++) {
            if (d == dot) t[k++] = '.';
            t[k++] = (char)('0' + pt_rng_below(&rng, 10));
        }
        if (pt_rng_below(&rng, 3) == 0)
            k += snprintf(t + k, 12, "e%d", (int)pt_rng_below(&rng, 640) - 330);
        t[k] = 0;
        o += (size_t)snprintf(s + o, cap - o, "%s\n", t);
    }
    const char *names[] = {"v"};
    pt_type types[] = {PT_TYPE_FLOAT64};
    pt_schema *sc = mkschema(1, names, types);
    pt_csv_opts op;
    pt_csv_opts_init(&op);
    op.schema = sc;
    op.progress = 0;
    pt_error err;
    pt_table *tb;
    CHECK_OK(pt_csv_read_buffer(NULL, s, (int64_t)o, "f.csv", &op, &tb, NULL, &err), &err);
    CHECK_EQ_I(tb->nrows, n);
    for (int i = 0; i < n; i++) {
        double want = strtod(texts[i], NULL), got = pt_column_f64(tb->cols[0])[i];
        CHECK_MSG(memcmp(&want, &got, 8) == 0, "'%s': %.17g vs %.17g", texts[i], got, want);
    }
    pt_table_free(tb);
    /* the same texts through inference (float64 column, fast paths) */
    op.schema = NULL;
    CHECK_OK(pt_csv_read_buffer(NULL, s, (int64_t)o, "f.csv", &op, &tb, NULL, &err), &err);
    CHECK_EQ_I(tb->cols[0]->type, PT_TYPE_FLOAT64);
    for (int i = 0; i < n; i++) {
        double want = strtod(texts[i], NULL), got = pt_column_f64(tb->cols[0])[i];
        CHECK_MSG(memcmp(&want, &got, 8) == 0, "'%s': %.17g vs %.17g", texts[i], got, want);
    }
    pt_table_free(tb);
    pt_schema_free(sc);
    free(texts);
    free(s);
}

TEST(special_numbers) {
    pt_error err;
    pt_table *t;
    CHECK_OK(rd("v,i\nnan,-9223372036854775808\ninf,9223372036854775807\n-Infinity,+5\n -0 ,0\n",
                &t, &err),
             &err);
    CHECK_EQ_I(t->cols[0]->type, PT_TYPE_FLOAT64);
    CHECK_EQ_I(t->cols[1]->type, PT_TYPE_INT64);
    const double *v = pt_column_f64(t->cols[0]);
    CHECK(isnan(v[0]) && isinf(v[1]) && v[1] > 0 && isinf(v[2]) && v[2] < 0);
    CHECK(v[3] == 0 && signbit(v[3]));
    CHECK(pt_column_i64(t->cols[1])[0] == INT64_MIN);
    CHECK(pt_column_i64(t->cols[1])[1] == INT64_MAX);
    CHECK(pt_column_i64(t->cols[1])[2] == 5);
    pt_table_free(t);
}

TEST(dictionary_rules) {
    /* low cardinality: dictionary, entries in first-appearance order */
    int n = 30000;
    size_t cap = (size_t)n * 32 + 64;
    char *s = malloc(cap);
    size_t o = (size_t)snprintf(s, cap, "k,u,late\n");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "k%d,u%d,%s%d\n", (i * 7) % 13, i,
                              i < 100 ? "same" : "v", i < 100 ? 0 : i);
    pt_error err;
    pt_table *t;
    pt_csv_opts op;
    pt_csv_opts_init(&op);
    op.sample_rows = 100;
    op.chunk_bytes = 10000;
    op.progress = 0;
    CHECK_OK(pt_csv_read_buffer(NULL, s, (int64_t)o, "d.csv", &op, &t, NULL, &err), &err);
    CHECK_EQ_I(t->cols[0]->type, PT_TYPE_DICT);
    CHECK_EQ_I(t->cols[0]->dict->length, 13);
    CHECK(is_str(t->cols[0]->dict, 0, "k0") && is_str(t->cols[0]->dict, 1, "k7"));
    /* 30000 distinct: text, though the sample of 100 had 100 distinct */
    CHECK_EQ_I(t->cols[1]->type, PT_TYPE_UTF8);
    /* one value in the sample, 29900 distinct later: falls back to utf8 */
    CHECK_EQ_I(t->cols[2]->type, PT_TYPE_UTF8);
    for (int i = 0; i < n; i++) {
        char a[32], b[32], c[32];
        snprintf(a, sizeof a, "k%d", (i * 7) % 13);
        snprintf(b, sizeof b, "u%d", i);
        snprintf(c, sizeof c, "%s%d", i < 100 ? "same" : "v", i < 100 ? 0 : i);
        CHECK_MSG(is_str(t->cols[0], i, a) && is_str(t->cols[1], i, b) && is_str(t->cols[2], i, c),
                  "row %d", i);
    }
    pt_table_free(t);
    op.dict_strings = 0;
    CHECK_OK(pt_csv_read_buffer(NULL, s, (int64_t)o, "d.csv", &op, &t, NULL, &err), &err);
    CHECK_EQ_I(t->cols[0]->type, PT_TYPE_UTF8);
    pt_table_free(t);
    free(s);
}

TEST(report_fields) {
    pt_error err;
    pt_table *t;
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.chunk_bytes = 8;
    pt_csv_report rep;
    const char *text = "a,b\n1,2\n3,4\n5,6\n7,8\n";
    CHECK_OK(rd_opts(text, &o, &t, &rep, &err), &err);
    CHECK_EQ_I(rep.rows, 4);
    CHECK_EQ_I(rep.bytes, (int64_t)strlen(text));
    CHECK(rep.chunks >= 2);
    CHECK(rep.seconds >= 0);
    CHECK_EQ_I(pt_column_i64(t->cols[1])[3], 8);
    pt_table_free(t);
}

/* ---- writer -------------------------------------------------------------- */

TEST(writer_round_trip) {
    pt_error err;
    const char *names[] = {"i32", "i64", "f32", "f64", "b", "s", "d", "n"};
    pt_type types[] = {PT_TYPE_INT32, PT_TYPE_INT64, PT_TYPE_FLOAT32, PT_TYPE_FLOAT64,
                       PT_TYPE_BOOL,  PT_TYPE_UTF8,  PT_TYPE_DICT,    PT_TYPE_NULL};
    pt_column *cols[8];
    for (int j = 0; j < 8; j++) {
        if (types[j] == PT_TYPE_DICT) {
            pt_column *dict;
            CHECK_OK(pt_column_new(NULL, PT_TYPE_UTF8, 4, 64, &dict, &err), &err);
            CHECK_OK(pt_column_append_str(dict, "red", 3, &err), &err);
            CHECK_OK(pt_column_append_str(dict, "gr,een", 6, &err), &err);
            CHECK_OK(pt_column_append_str(dict, "", 0, &err), &err);
            CHECK_OK(pt_column_new_dict(NULL, dict, 16, &cols[j], &err), &err);
            pt_column_release(dict);
        } else
            CHECK_OK(pt_column_new(NULL, types[j], 16, 64, &cols[j], &err), &err);
    }
    static const double f64s[] = {0.1, -0.0, 1e300, 5e-324, 123456789.123456789,
                                  1.0 / 3.0, 2.5, 1e-7};
    static const char *strs[] = {"plain", "with,comma", "with \"quote\"", "multi\nline",
                                 "",      "ünïcödé ✓",  "cr\r\nlf",        " spaced "};
    pt_rng rng;
    pt_rng_seed(&rng, 7);
    int n = 200;
    for (int i = 0; i < n; i++) {
        int null = i % 7 == 3;
        for (int j = 0; j < 8; j++) {
            pt_column *c = cols[j];
            if (null || j == 7) {
                CHECK_OK(pt_column_append_null(c, &err), &err);
                continue;
            }
            switch (types[j]) {
            case PT_TYPE_INT32:
                CHECK_OK(pt_column_append_i32(c, (int32_t)pt_rng_next(&rng), &err), &err);
                break;
            case PT_TYPE_INT64:
                CHECK_OK(pt_column_append_i64(c, i == 0 ? INT64_MIN : (int64_t)pt_rng_next(&rng), &err), &err);
                break;
            case PT_TYPE_FLOAT32:
                CHECK_OK(pt_column_append_f32(c, (float)pt_rng_normal(&rng) * 1e3f, &err), &err);
                break;
            case PT_TYPE_FLOAT64: {
                double d = i < 8 ? f64s[i] : pt_rng_normal(&rng) * pow(10, (double)pt_rng_below(&rng, 40) - 20);
                if (i == 8) d = NAN;
                if (i == 9) d = -INFINITY;
                CHECK_OK(pt_column_append_f64(c, d, &err), &err);
                break;
            }
            case PT_TYPE_BOOL:
                CHECK_OK(pt_column_append_bool(c, i % 2 == 0, &err), &err);
                break;
            case PT_TYPE_UTF8:
                CHECK_OK(pt_column_append_str(c, strs[i % 8], (int64_t)strlen(strs[i % 8]), &err), &err);
                break;
            case PT_TYPE_DICT:
                CHECK_OK(pt_column_append_index(c, (int32_t)(i % 3), &err), &err);
                break;
            default:
                break;
            }
        }
    }
    pt_schema *schema = mkschema(8, names, types);
    pt_table *t;
    CHECK_OK(pt_table_new(schema, cols, &t, &err), &err);
    const char *path = pt_test_tmp("rt.csv");
    CHECK_OK(pt_csv_write(t, path, NULL, &err), &err);
    pt_schema *s2 = mkschema(8, names, types);
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.schema = s2;
    o.progress = 0;
    pt_table *back;
    CHECK_OK(pt_csv_read(NULL, path, &o, &back, NULL, &err), &err);
    char why[256] = "";
    CHECK_MSG(pt_table_equal(t, back, why, sizeof why), "round trip: %s", why);
    pt_table_free(back);
    /* also in chunks, in parallel */
    pt_ctx *ctx;
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = 2;
    CHECK_OK(pt_ctx_new(&co, &ctx, &err), &err);
    o.chunk_bytes = 300;
    pt_status st = pt_csv_read(ctx, path, &o, &back, NULL, &err);
    CHECK_OK(st, &err);
    CHECK_MSG(pt_table_equal(t, back, why, sizeof why), "round trip (chunks): %s", why);
    pt_table_free(back);
    pt_ctx_free(ctx);
    /* a one-column table with nulls, last row null too */
    pt_column *one;
    CHECK_OK(pt_column_new(NULL, PT_TYPE_INT64, 4, 0, &one, &err), &err);
    CHECK_OK(pt_column_append_i64(one, 5, &err), &err);
    CHECK_OK(pt_column_append_null(one, &err), &err);
    CHECK_OK(pt_column_append_i64(one, 6, &err), &err);
    CHECK_OK(pt_column_append_null(one, &err), &err);
    const char *nm1[] = {"only"};
    pt_type ty1[] = {PT_TYPE_INT64};
    pt_table *t1;
    CHECK_OK(pt_table_new(mkschema(1, nm1, ty1), &one, &t1, &err), &err);
    CHECK_OK(pt_csv_write(t1, path, NULL, &err), &err);
    pt_csv_opts_init(&o);
    o.progress = 0;
    CHECK_OK(pt_csv_read(NULL, path, &o, &back, NULL, &err), &err);
    CHECK_MSG(pt_table_equal(t1, back, why, sizeof why), "one column: %s", why);
    pt_table_free(back);
    pt_table_free(t1);
    pt_table_free(t);
    pt_schema_free(s2);
}

TEST(writer_format) {
    pt_error err;
    pt_table *t;
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.dict_strings = 0;
    CHECK_OK(rd_opts("a,b,c\n0.1,\"x,\"\"y\",true\n,NA,\n1e300,\"\",false\n", &o, &t, NULL, &err),
             &err);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    pt_csv_write_opts w;
    pt_csv_write_opts_init(&w);
    w.null_text = "NA";
    CHECK_OK(pt_csv_write_file(t, f, 1, &w, &err), &err);
    fclose(f);
    CHECK_STR(buf, "a,b,c\n0.1,\"x,\"\"y\",true\nNA,\"NA\",NA\n1e+300,\"\",false\n");
    free(buf);
    pt_table_free(t);
}

/* ---- streaming ----------------------------------------------------------- */

static char *stream_file(int n, const char *name) {
    size_t cap = (size_t)n * 48 + 64;
    char *s = malloc(cap);
    size_t o = (size_t)snprintf(s, cap, "id,name,score\n");
    for (int i = 0; i < n; i++) {
        if (i % 97 == 5)
            o += (size_t)snprintf(s + o, cap - o, "%d,\"multi\nline %d, \"\"q\"\"\",%d.5\r\n", i, i,
                                  i);
        else
            o += (size_t)snprintf(s + o, cap - o, "%d,n%d,%d.25\n", i, i % 50, i);
    }
    FILE *f = fopen(pt_test_tmp(name), "wb");
    fwrite(s, 1, o, f);
    fclose(f);
    return s;
}

TEST(streaming_equals_whole_file) {
    char *s = stream_file(20000, "st.csv");
    const char *path = pt_test_tmp("st.csv");
    pt_error err;
    pt_ctx *ctx;
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = 2;
    CHECK_OK(pt_ctx_new(&co, &ctx, &err), &err);
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.progress = 0;
    pt_table *whole;
    CHECK_OK(pt_csv_read(ctx, path, &o, &whole, NULL, &err), &err);
    CHECK_EQ_I(whole->nrows, 20000);
    o.batch_bytes = 20000;
    o.chunk_bytes = 3000;
    pt_csv_reader *r;
    CHECK_OK(pt_csv_open(ctx, path, &o, &r, &err), &err);
    CHECK(pt_csv_reader_file_size(r) > 0);
    pt_table *batches[4096];
    int nb = 0;
    for (;;) {
        pt_table *b;
        CHECK_OK(pt_csv_next(r, &b, &err), &err);
        if (!b) break;
        CHECK(nb < 4096);
        CHECK(b->nrows <= 20000 / 10); /* bounded by batch_bytes */
        batches[nb++] = b;
    }
    CHECK(nb > 10);
    pt_csv_report rep;
    pt_csv_reader_report(r, &rep);
    CHECK_EQ_I(rep.rows, 20000);
    pt_csv_close(r);
    /* dictionaries are per batch; compare as utf8 via concat */
    pt_table *cat;
    CHECK_OK(pt_table_concat(NULL, batches, nb, &cat, &err), &err);
    char why[256] = "";
    CHECK_MSG(pt_table_equal(whole, cat, why, sizeof why), "%s", why);
    for (int i = 0; i < nb; i++) pt_table_free(batches[i]);
    pt_table_free(cat);
    pt_table_free(whole);
    pt_ctx_free(ctx);
    free(s);
}

TEST(streaming_widening_and_errors) {
    /* a: int then 1.5 at data row 1500; b: int then "oops" at data row 2500 */
    size_t cap = 100000;
    const char *path = pt_test_tmp("w.csv");
    char *t2 = malloc(cap);
    size_t o2 = (size_t)snprintf(t2, cap, "a,b\n");
    for (int i = 0; i < 3000; i++)
        o2 += (size_t)snprintf(t2 + o2, cap - o2, "%s,%s\n", i == 1500 ? "1.5" : "7",
                               i == 2500 ? "oops" : "1");
    FILE *f = fopen(path, "wb");
    fwrite(t2, 1, o2, f);
    fclose(f);
    pt_error err;
    pt_csv_opts op;
    pt_csv_opts_init(&op);
    op.progress = 0;
    op.sample_rows = 100;
    op.batch_bytes = 2000;
    pt_csv_reader *r;
    CHECK_OK(pt_csv_open(NULL, path, &op, &r, &err), &err);
    CHECK_EQ_I(pt_csv_reader_schema(r)->fields[0].type, PT_TYPE_INT64);
    int64_t rows = 0;
    pt_status st = PT_OK;
    int widened = 0;
    for (;;) {
        pt_table *b;
        st = pt_csv_next(r, &b, &err);
        if (st != PT_OK || !b) break;
        rows += b->nrows;
        if (b->cols[0]->type == PT_TYPE_FLOAT64) widened = 1;
        if (widened) CHECK_EQ_I(pt_csv_reader_schema(r)->fields[0].type, PT_TYPE_FLOAT64);
        pt_table_free(b);
    }
    CHECK(widened);
    CHECK_EQ_I(st, PT_ETYPE);
    CHECK_CONTAINS(err.msg, "w.csv:2502:3: column 'b' was read as int64");
    CHECK_CONTAINS(err.msg, "'oops'");
    CHECK(rows < 2501);
    pt_csv_close(r);
    free(t2);
}

TEST(streaming_long_row) {
    /* a quoted field far longer than a batch */
    size_t big = 300000;
    char *s = malloc(big + 100);
    size_t o = (size_t)sprintf(s, "a,b\n1,\"");
    for (size_t i = 0; i < big; i++) s[o++] = (char)(i % 61 == 0 ? '\n' : 'a' + i % 26);
    o += (size_t)sprintf(s + o, "\"\n2,x\n");
    const char *path = pt_test_tmp("long.csv");
    FILE *f = fopen(path, "wb");
    fwrite(s, 1, o, f);
    fclose(f);
    pt_error err;
    pt_csv_opts op;
    pt_csv_opts_init(&op);
    op.progress = 0;
    op.batch_bytes = 1000;
    op.dict_strings = 0;
    pt_csv_reader *r;
    CHECK_OK(pt_csv_open(NULL, path, &op, &r, &err), &err);
    int64_t rows = 0;
    for (;;) {
        pt_table *b;
        CHECK_OK(pt_csv_next(r, &b, &err), &err);
        if (!b) break;
        for (int64_t i = 0; i < b->nrows; i++) {
            int64_t n;
            const char *p = pt_column_str(b->cols[1], i, &n);
            if (pt_column_i64(b->cols[0])[i] == 1) {
                CHECK_EQ_I(n, (int64_t)big);
                CHECK(memcmp(p, s + 7, big) == 0);
            } else
                CHECK(n == 1 && p[0] == 'x');
        }
        rows += b->nrows;
        pt_table_free(b);
    }
    CHECK_EQ_I(rows, 2);
    pt_csv_close(r);
    free(s);
}

TEST(streaming_errors) {
    pt_error err;
    pt_csv_reader *r;
    pt_csv_opts op;
    pt_csv_opts_init(&op);
    op.progress = 0;
    CHECK_EQ_I(pt_csv_open(NULL, pt_test_tmp("nope.csv"), &op, &r, &err), PT_ENOENT);
    CHECK_CONTAINS(err.msg, "nope.csv");
    CHECK_EQ_I(pt_csv_open(NULL, pt_test_write("e.csv", ""), &op, &r, &err), PT_EEMPTY);
    CHECK_CONTAINS(err.msg, "e.csv: empty file");
    /* a ragged row in a later batch: exact line */
    size_t cap = 100000;
    char *s = malloc(cap);
    size_t o = (size_t)snprintf(s, cap, "a,b\n");
    for (int i = 0; i < 2000; i++)
        o += (size_t)snprintf(s + o, cap - o, i == 1234 ? "%d,2,3\n" : "%d,2\n", i);
    const char *path = pt_test_tmp("rg.csv");
    FILE *f = fopen(path, "wb");
    fwrite(s, 1, o, f);
    fclose(f);
    op.batch_bytes = 1500;
    CHECK_OK(pt_csv_open(NULL, path, &op, &r, &err), &err);
    pt_status st;
    for (;;) {
        pt_table *b;
        st = pt_csv_next(r, &b, &err);
        if (st != PT_OK || !b) break;
        pt_table_free(b);
    }
    CHECK_EQ_I(st, PT_EPARSE);
    CHECK_CONTAINS(err.msg, "rg.csv:1236:8: expected 2 fields, found 3: '1234,2,3'");
    pt_csv_close(r);
    free(s);
}

TEST(streaming_memory_is_bounded) {
    /* an ~8 MB file streamed in 64 KiB batches: the budget's peak stays
     * near the batch size, far below the file size */
    const char *path = pt_test_tmp("big.csv");
    FILE *f = fopen(path, "wb");
    CHECK(f);
    fprintf(f, "a,b,c\n");
    int64_t n = 250000;
    for (int64_t i = 0; i < n; i++) fprintf(f, "%lld,name%lld,%lld.5\n", (long long)i, (long long)(i % 100), (long long)i);
    fclose(f);
    pt_error err;
    pt_ctx *ctx;
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = 2;
    co.memory_limit = 64 << 20;
    CHECK_OK(pt_ctx_new(&co, &ctx, &err), &err);
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.progress = 0;
    o.batch_bytes = 64 << 10;
    o.chunk_bytes = 16 << 10;
    pt_csv_reader *r;
    CHECK_OK(pt_csv_open(ctx, path, &o, &r, &err), &err);
    int64_t rows = 0, sum = 0;
    for (;;) {
        pt_table *b;
        CHECK_OK(pt_csv_next(r, &b, &err), &err);
        if (!b) break;
        for (int64_t i = 0; i < b->nrows; i++) sum += pt_column_i64(b->cols[0])[i];
        rows += b->nrows;
        pt_table_free(b);
    }
    pt_csv_close(r);
    CHECK_EQ_I(rows, n);
    CHECK_EQ_I(sum, n * (n - 1) / 2);
    int64_t peak = pt_mem_peak(pt_ctx_mem(ctx));
    CHECK_MSG(peak > 0 && peak < (2 << 20), "peak %lld bytes", (long long)peak);
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(ctx)), 0);
    /* a whole-file read that does not fit the budget fails cleanly */
    pt_ctx *small;
    co.memory_limit = 1 << 20;
    CHECK_OK(pt_ctx_new(&co, &small, &err), &err);
    pt_table *t;
    pt_status s = pt_csv_read(small, path, &o, &t, NULL, &err);
    CHECK_EQ_I(s, PT_EBUDGET);
    CHECK_EQ_I(pt_mem_used(pt_ctx_mem(small)), 0);
    pt_ctx_free(small);
    pt_ctx_free(ctx);
}
