/* Benchmark: load a CSV file into memory with partita's parallel reader.
 * usage: bench_csv FILE [THREADS] [REPEAT]
 * Prints one line: rows, seconds (best of REPEAT), MB/s, peak RSS. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "partita.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_csv FILE [THREADS] [REPEAT]\n");
        return 2;
    }
    const char *path = argv[1];
    int threads = argc > 2 ? atoi(argv[2]) : 0;
    int repeat = argc > 3 ? atoi(argv[3]) : 1;
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return 1;
    }
    pt_error err;
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = threads;
    pt_ctx *ctx;
    if (pt_ctx_new(&co, &ctx, &err) != PT_OK) {
        fprintf(stderr, "bench_csv: %s\n", err.msg);
        return 1;
    }
    pt_csv_opts opts;
    pt_csv_opts_init(&opts);
    opts.progress = 0;
    double best = 1e300;
    int64_t rows = 0;
    for (int i = 0; i < repeat; i++) {
        pt_table *t;
        double t0 = pt_now_s();
        if (pt_csv_read(ctx, path, &opts, &t, NULL, &err) != PT_OK) {
            fprintf(stderr, "bench_csv: %s\n", err.msg);
            pt_ctx_free(ctx);
            return 1;
        }
        double dt = pt_now_s() - t0;
        if (dt < best) best = dt;
        rows = t->nrows;
        pt_table_free(t);
    }
    printf("peer=partita rows=%lld seconds=%.3f threads=%d mb_per_s=%.1f peak_rss_mb=%.0f\n",
           (long long)rows, best, pt_ctx_threads(ctx), (double)st.st_size / best / 1e6,
           (double)pt_rss_peak() / 1e6);
    pt_ctx_free(ctx);
    return 0;
}
