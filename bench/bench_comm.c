/*
 * bench_comm.c - the cost of pt_comm's safety (arrival tokens to rank 0,
 * polled non-blocking operations, chunking, the counts exchange and the
 * receive allocation of alltoallv) against raw blocking MPI calls moving the
 * same bytes, measured in the same run. Run under mpirun:
 *   mpirun -n 2 build/bench/bench_comm [--quick]
 * Rank 0 prints one line per case: time per call (median of repeats) for
 * pt_comm and for raw MPI, and their ratio.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "partita.h"

#if defined(PARTITA_LINKS_MPI)
#include <mpi.h>

static pt_comm *g_c;
static int g_rank, g_size;
static pt_error g_err;

static void die(const char *what) {
    fprintf(stderr, "bench_comm: %s: %s\n", what, g_err.msg);
    exit(1);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median over `reps` of the mean time of `iters` calls, agreed on by all
 * ranks (max over ranks of each repeat). */
typedef void (*bench_fn)(void *arg);
static double timeit(bench_fn fn, void *arg, int iters, int reps) {
    double t[32];
    if (reps > 32) reps = 32;
    fn(arg); /* warm-up */
    for (int r = 0; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = pt_now_s();
        for (int i = 0; i < iters; i++) fn(arg);
        double dt = (pt_now_s() - t0) / iters;
        MPI_Allreduce(&dt, &t[r], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    return t[reps / 2];
}

static void report(const char *name, double ours, double raw, double bytes) {
    if (g_rank != 0) return;
    char gb[64] = "";
    if (bytes > 0) snprintf(gb, sizeof gb, "  %7.2f vs %7.2f GB/s", bytes / ours / 1e9, bytes / raw / 1e9);
    printf("%-34s pt %10.2f us  raw %10.2f us  ratio %5.2f%s\n", name, ours * 1e6, raw * 1e6,
           ours / raw, gb);
    fflush(stdout);
}

typedef struct red_arg {
    void *buf;
    int64_t n;
    pt_dtype t;
    pt_comm *c;
} red_arg;

static void pt_allreduce_fn(void *a) {
    red_arg *r = a;
    if (pt_comm_allreduce(r->c, r->buf, r->n, r->t, PT_REDOP_SUM, &g_err)) die("allreduce");
}
static void mpi_allreduce_fn(void *a) {
    red_arg *r = a;
    MPI_Allreduce(MPI_IN_PLACE, r->buf, (int)r->n, r->t == PT_DTYPE_INT64 ? MPI_INT64_T : MPI_DOUBLE,
                  MPI_SUM, MPI_COMM_WORLD);
}
static void pt_barrier_fn(void *a) {
    (void)a;
    if (pt_comm_barrier(g_c, &g_err)) die("barrier");
}
static void mpi_barrier_fn(void *a) {
    (void)a;
    MPI_Barrier(MPI_COMM_WORLD);
}

typedef struct a2a_arg {
    unsigned char *send, *recv;
    int64_t *counts;
    int *icounts, *idispls;
} a2a_arg;

static void pt_a2a_fn(void *a) {
    a2a_arg *x = a;
    void *out;
    int64_t rc[64];
    if (pt_comm_alltoallv(g_c, x->send, x->counts, &out, rc, &g_err)) die("alltoallv");
    pt_free(out);
}
static void mpi_a2a_fn(void *a) {
    a2a_arg *x = a;
    /* Raw MPI needs the counts too: exchange them as callers must. */
    int rc[64], rd[64];
    MPI_Alltoall(x->icounts, 1, MPI_INT, rc, 1, MPI_INT, MPI_COMM_WORLD);
    rd[0] = 0;
    for (int r = 1; r < g_size; r++) rd[r] = rd[r - 1] + rc[r - 1];
    MPI_Alltoallv(x->send, x->icounts, x->idispls, MPI_BYTE, x->recv, rc, rd, MPI_BYTE,
                  MPI_COMM_WORLD);
}

int main(int argc, char **argv) {
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    pt_comm_opts o;
    pt_comm_opts_init(&o);
    o.backend = "mpi";
    if (pt_comm_init(&o, &g_c, &g_err)) die("init");
    g_rank = pt_comm_rank(g_c);
    g_size = pt_comm_size(g_c);
    if (g_size > 64) {
        fprintf(stderr, "bench_comm: at most 64 ranks\n");
        return 1;
    }
    o.deterministic = true;
    pt_comm *det;
    if (pt_comm_init(&o, &det, &g_err)) die("init");
    int iters = quick ? 200 : 2000, reps = quick ? 3 : 7;
    if (g_rank == 0) {
        char v[128];
        printf("bench_comm: %d ranks, %s\n", g_size, pt_comm_library_version(g_c, v, sizeof v));
    }

    report("barrier", timeit(pt_barrier_fn, NULL, iters, reps),
           timeit(mpi_barrier_fn, NULL, iters, reps), 0);
    int64_t one = 1;
    red_arg ra = {&one, 1, PT_DTYPE_INT64, g_c};
    report("allreduce int64 x1", timeit(pt_allreduce_fn, &ra, iters, reps),
           timeit(mpi_allreduce_fn, &ra, iters, reps), 0);
    double d1 = 1;
    red_arg rd = {&d1, 1, PT_DTYPE_FLOAT64, g_c};
    report("allreduce float64 x1", timeit(pt_allreduce_fn, &rd, iters, reps),
           timeit(mpi_allreduce_fn, &rd, iters, reps), 0);
    int64_t nbig = quick ? 1 << 18 : 1 << 21;
    double *big = calloc((size_t)nbig, sizeof *big);
    red_arg rb = {big, nbig, PT_DTYPE_FLOAT64, g_c};
    double mb = (double)nbig * 8;
    report("allreduce float64 x2M", timeit(pt_allreduce_fn, &rb, 5, reps),
           timeit(mpi_allreduce_fn, &rb, 5, reps), mb);
    rb.c = det;
    report("allreduce float64 x2M determ.", timeit(pt_allreduce_fn, &rb, 5, reps),
           timeit(mpi_allreduce_fn, &rb, 5, reps), mb);
    free(big);

    int64_t sizes[] = {1 << 10, 1 << 20, quick ? 4 << 20 : 32 << 20};
    for (int k = 0; k < 3; k++) {
        int64_t per = sizes[k];
        a2a_arg x;
        x.send = malloc((size_t)(per * g_size));
        x.recv = malloc((size_t)(per * g_size));
        x.counts = malloc(sizeof *x.counts * (size_t)g_size);
        x.icounts = malloc(sizeof *x.icounts * (size_t)g_size);
        x.idispls = malloc(sizeof *x.idispls * (size_t)g_size);
        memset(x.send, g_rank, (size_t)(per * g_size));
        for (int r = 0; r < g_size; r++) {
            x.counts[r] = per;
            x.icounts[r] = (int)per;
            x.idispls[r] = (int)(per * r);
        }
        char name[64];
        snprintf(name, sizeof name, "alltoallv %lld B per pair", (long long)per);
        int it = per >= (1 << 20) ? 10 : iters;
        /* Bytes this rank sends to others and receives from them. */
        double moved = 2.0 * (double)per * (g_size - 1);
        report(name, timeit(pt_a2a_fn, &x, it, reps), timeit(mpi_a2a_fn, &x, it, reps), moved);
        free(x.send);
        free(x.recv);
        free(x.counts);
        free(x.icounts);
        free(x.idispls);
    }
    pt_comm_free(det);
    pt_comm_free(g_c);
    return 0;
}
#else
int main(void) {
    printf("bench_comm: partita was built without MPI; nothing to measure\n");
    return 0;
}
#endif
