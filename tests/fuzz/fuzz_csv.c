/* libFuzzer target for the CSV reader: pt_csv_read_buffer on arbitrary
 * bytes with a one-thread context. The first byte picks options (delimiter
 * sniffing, skip_bad_rows, tiny byte ranges, a null text, no dictionaries)
 * so that the range splitting and the error paths are fuzzed too. Any
 * status is fine; crashes, leaks and sanitizer reports are not.
 * Build: clang -g -fsanitize=fuzzer,address,undefined -Iinclude
 *        tests/fuzz/fuzz_csv.c libpartita.a -lpthread -lm */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "partita.h"

static pt_ctx *g_ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_ctx) {
        pt_ctx_opts co;
        pt_ctx_opts_init(&co);
        co.threads = 1;
        pt_error e;
        if (pt_ctx_new(&co, &g_ctx, &e) != PT_OK) return 0;
        pt_progress_set_quiet(1);
    }
    pt_csv_opts o;
    pt_csv_opts_init(&o);
    o.progress = 0;
    uint8_t k = size > 0 ? data[0] : 0;
    if (size > 0) {
        data++;
        size--;
    }
    if (k & 1) o.delimiter = 0;
    if (k & 2) o.skip_bad_rows = 1;
    if (k & 4) o.chunk_bytes = 1 + (k >> 5);
    if (k & 8) o.dict_strings = 0;
    static const char *const nulls[] = {"NA", "", NULL};
    if (k & 16) o.null_values = nulls;
    o.sample_rows = 1 + (k >> 6);
    /* an exact-size copy so that reads past the end are caught */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    pt_table *t = NULL;
    pt_csv_report rep;
    pt_error err;
    if (pt_csv_read_buffer(g_ctx, buf, (int64_t)size, "fuzz.csv", &o, &t, &rep, &err) == PT_OK)
        pt_table_free(t);
    free(buf);
    return 0;
}
