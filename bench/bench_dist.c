/*
 * bench_dist.c - throughput of the hash shuffle of distributed plans
 * (pt__dist_shuffle_hash: hash, take, serialise, alltoallv, deserialise,
 * concatenate) against moving the same bytes with the same per-destination
 * counts through pt_comm_alltoallv and through raw MPI_Alltoallv, in the
 * same run. Run under mpirun:
 *   mpirun -n 2 build/bench/bench_dist [rows] [reps]
 * The data is a G1 table (pt_gen_g1: id1..id3 dict, id4..id6 int64, v1, v2
 * int64, v3 float64) of `rows` rows in all (default 1e6), split between the
 * ranks. Rank 0 prints per case the median time over the repeats (max over
 * ranks in each repeat), MB/s of exchanged bytes (bytes sent by all ranks /
 * time), the shuffle's phases, and the ratio of raw to shuffle throughput;
 * the goal is a ratio of at least 0.8 for the exchange.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame/dist.h"
#include "partita.h"

#if defined(PARTITA_LINKS_MPI)
#include <mpi.h>

static pt_error g_err;
static int g_rank, g_size;

static void die(const char *what) {
    fprintf(stderr, "bench_dist: %s: %s\n", what, g_err.msg);
    exit(1);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    return t[n / 2];
}

/* The slowest rank's time of one repeat. */
static double max_over_ranks(double dt) {
    double m;
    MPI_Allreduce(&dt, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return m;
}

int main(int argc, char **argv) {
    int64_t rows = argc > 1 ? atoll(argv[1]) : 1000000;
    int reps = argc > 2 ? atoi(argv[2]) : 7;
    if (rows < 1 || reps < 1 || reps > 64) {
        fprintf(stderr, "usage: bench_dist [rows >= 1] [reps 1..64]\n");
        return 2;
    }
    pt_comm_opts o;
    pt_comm_opts_init(&o);
    o.backend = "mpi";
    pt_comm *c = NULL;
    if (pt_comm_init(&o, &c, &g_err)) die("comm init");
    g_rank = pt_comm_rank(c);
    g_size = pt_comm_size(c);
    if (g_size > PT__DIST_STATS_RANKS) {
        fprintf(stderr, "bench_dist: at most %d ranks\n", PT__DIST_STATS_RANKS);
        return 1;
    }
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.threads = 1;
    pt_ctx *ctx = NULL;
    if (pt_ctx_new(&co, &ctx, &g_err)) die("ctx");
    /* Every rank generates the same table and keeps its share, as a scan
     * of a shared file would. */
    pt_table *all = NULL, *mine = NULL;
    if (pt_gen_g1(ctx, rows, 100, 0, 42, &all, &g_err)) die("gen");
    int64_t lo, hi;
    pt__dist_share(rows, g_rank, g_size, &lo, &hi);
    if (pt_table_slice(all, lo, hi - lo, &mine, &g_err)) die("slice");
    const char *keynames[] = {"id4", "id1", "id3"};
    if (g_rank == 0) {
        char mb[32];
        printf("bench_dist: %d ranks, %lld rows of G1 (%s in memory), median of %d\n", g_size,
               (long long)rows, pt_format_bytes((double)pt_table_nbytes(all), mb, sizeof mb),
               reps);
        printf("%-14s %9s %9s %9s %8s | %7s %7s %7s %7s %7s | %9s %9s %6s %6s\n", "key", "MB",
               "shuffle", "pt_a2av", "MPI_a2av", "route", "pack", "sync", "xchg", "unpack", "MB/s",
               "MPI MB/s", "x/MPI", "all/MPI");
    }
    for (size_t kk = 0; kk < sizeof keynames / sizeof *keynames; kk++) {
        int key = pt_schema_find(mine->schema, keynames[kk]);
        if (key < 0) {
            g_err.msg[0] = 0;
            die(keynames[kk]);
        }
        double ts[64], tp[64], tm[64], ph[5][64];
        pt__dist_stats st;
        memset(&st, 0, sizeof st);
        for (int r = 0; r < reps; r++) {
            pt_table *out = NULL;
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = pt_now_s();
            if (pt__dist_shuffle_hash(c, ctx, &mine, 1, 1, &key, &out, &g_err)) die("shuffle");
            ts[r] = max_over_ranks(pt_now_s() - t0);
            pt__dist_last_stats(&st);
            ph[0][r] = max_over_ranks(st.route_s);
            ph[1][r] = max_over_ranks(st.pack_s);
            ph[2][r] = max_over_ranks(st.exchange_s);
            ph[3][r] = max_over_ranks(st.unpack_s);
            ph[4][r] = max_over_ranks(st.sync_s);
            pt_table_free(out);
        }
        /* The same bytes to the same ranks, without tables. */
        int64_t total = st.bytes_sent;
        unsigned char *send = malloc((size_t)(total > 0 ? total : 1));
        memset(send, 0x5a, (size_t)total);
        for (int r = 0; r < reps; r++) {
            void *recv = NULL;
            int64_t rc[PT__DIST_STATS_RANKS];
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = pt_now_s();
            if (pt_comm_alltoallv(c, send, st.bytes_to, &recv, rc, &g_err)) die("alltoallv");
            tp[r] = max_over_ranks(pt_now_s() - t0);
            pt_free(recv);
        }
        int sc[PT__DIST_STATS_RANKS], sd[PT__DIST_STATS_RANKS], rcn[PT__DIST_STATS_RANKS],
            rd[PT__DIST_STATS_RANKS];
        sd[0] = 0;
        for (int r = 0; r < g_size; r++) {
            sc[r] = (int)st.bytes_to[r];
            if (r) sd[r] = sd[r - 1] + sc[r - 1];
        }
        for (int r = 0; r < reps; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = pt_now_s();
            /* Raw MPI needs the counts and a receive buffer too. */
            MPI_Alltoall(sc, 1, MPI_INT, rcn, 1, MPI_INT, MPI_COMM_WORLD);
            rd[0] = 0;
            for (int k = 1; k < g_size; k++) rd[k] = rd[k - 1] + rcn[k - 1];
            int64_t rt = (int64_t)rd[g_size - 1] + rcn[g_size - 1];
            unsigned char *recv = malloc((size_t)(rt > 0 ? rt : 1));
            MPI_Alltoallv(send, sc, sd, MPI_BYTE, recv, rcn, rd, MPI_BYTE, MPI_COMM_WORLD);
            free(recv);
            tm[r] = max_over_ranks(pt_now_s() - t0);
        }
        free(send);
        double bytes_all = 0, b = (double)total;
        MPI_Allreduce(&b, &bytes_all, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        double s = median(ts, reps), p = median(tp, reps), m = median(tm, reps);
        double route = median(ph[0], reps), pack = median(ph[1], reps);
        double xchg = median(ph[2], reps), unpack = median(ph[3], reps);
        double sync = median(ph[4], reps);
        if (g_rank == 0)
            printf("%-14s %9.1f %8.1fms %8.1fms %7.1fms | %6.1fms %6.1fms %6.1fms %6.1fms %6.1fms | "
                   "%9.0f %9.0f %6.2f %6.2f\n",
                   keynames[kk], bytes_all / 1e6, s * 1e3, p * 1e3, m * 1e3, route * 1e3,
                   pack * 1e3, sync * 1e3, xchg * 1e3, unpack * 1e3, bytes_all / s / 1e6,
                   bytes_all / m / 1e6, m / xchg, m / s);
    }
    if (g_rank == 0)
        printf("x/MPI: raw MPI_Alltoallv time (counts, receive buffer and data) / the shuffle's\n"
               "exchange phase (the same: pt_comm_alltoallv; goal >= 0.8); sync: the status\n"
               "agreement before it, which also waits for the slowest rank to finish packing;\n"
               "all/MPI: raw MPI_Alltoallv time / the whole shuffle.\n");
    pt_table_free(mine);
    pt_table_free(all);
    pt_ctx_free(ctx);
    pt_comm_free(c);
    return 0;
}

#else
int main(void) {
    fprintf(stderr, "bench_dist: built without MPI\n");
    return 0;
}
#endif
