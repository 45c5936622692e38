/* libFuzzer target for the SQL front end: pt_sql on arbitrary bytes with an
 * empty catalog and a one-thread context, then pt_expr_parse on the same
 * text. Any status is fine; crashes, leaks, sanitizer reports and stack
 * exhaustion are not. The input is copied into an exact-size,
 * NUL-terminated buffer so that reads past the end are caught.
 * Build: cmake -DPARTITA_FUZZ=ON with CC=clang; run with
 *        fuzz_sql tests/fuzz/corpus_sql */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "partita.h"
#include "partita/dataframe.h"

static pt_ctx *g_ctx;
static pt_catalog *g_cat;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_ctx) {
        pt_ctx_opts co;
        pt_ctx_opts_init(&co);
        co.threads = 1;
        pt_error e;
        if (pt_ctx_new(&co, &g_ctx, &e) != PT_OK) return 0;
        if (pt_catalog_new(g_ctx, &g_cat, &e) != PT_OK) return 0;
        pt_progress_set_quiet(1);
    }
    char *text = malloc(size + 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    text[size] = '\0';
    /* FROM 'path' would read whatever file the fuzzer names (/dev/zero
     * never ends), and pt_sql opens files only with a context: inputs with
     * a string literal get none. Table names all fail on the empty catalog. */
    pt_ctx *ctx = memchr(text, '\'', size) ? NULL : g_ctx;
    pt_frame *f = NULL;
    int is_explain = 0;
    pt_error err;
    if (pt_sql(ctx, g_cat, text, &f, &is_explain, &err) == PT_OK) pt_frame_free(f);
    pt_expr *x = NULL;
    if (pt_expr_parse(text, &x, &err) == PT_OK) {
        char buf[256];
        pt_expr_to_string(x, buf, sizeof buf);
        pt_expr_free(x);
    }
    free(text);
    return 0;
}
