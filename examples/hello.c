/* Reads a CSV file in parallel and prints its first rows. */
#include <partita.h>
#include <stdio.h>

int main(int argc, char **argv) {
    pt_error err;
    pt_ctx *ctx;
    pt_table *t;
    if (argc < 2) return fprintf(stderr, "usage: hello FILE.csv\n"), 2;
    if (pt_ctx_new(NULL, &ctx, &err) || pt_csv_read(ctx, argv[1], NULL, &t, NULL, &err))
        return fprintf(stderr, "hello: %s\n", err.msg), 1;
    printf("%lld rows, %d columns\n", (long long)t->nrows, t->schema->nfields);
    if (pt_table_print(t, stdout, NULL, &err)) fprintf(stderr, "hello: %s\n", err.msg);
    pt_table_free(t);
    pt_ctx_free(ctx);
    return 0;
}
