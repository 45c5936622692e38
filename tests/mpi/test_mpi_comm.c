/*
 * test_mpi_comm.c - the MPI backend under `mpirun -n N` (N = 2, 3, 4): every
 * operation is checked against closed forms that each rank computes on its
 * own (what every sender must have sent), first with the default chunk and
 * then with tiny chunks so that every transfer is split into many pieces.
 * Exit status 0 only if every rank passed every check (the failure counts
 * are summed over the ranks at the end).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_internal.h"
#include "partita.h"

#include "mpi_check.h"

static unsigned char pat(int a, int b, int64_t k) { return (unsigned char)(a * 17 + b * 5 + k * 3 + 1); }

static void test_basics(pt_comm *c) {
    EXPECT(strcmp(pt_comm_backend_name(c), "mpi") == 0, "backend %s", pt_comm_backend_name(c));
    const char *env = getenv("OMPI_COMM_WORLD_SIZE");
    EXPECT(!env || atoi(env) == g_size, "size %d vs OMPI_COMM_WORLD_SIZE %s", g_size, env);
    char v[256], host[256];
    pt_comm_library_version(c, v, sizeof v);
    EXPECT(strstr(v, "MPI") != NULL, "library version '%s'", v);
    EXPECT(strchr(v, '\n') == NULL, "one line: '%s'", v);
    pt_comm_processor_name(c, host, sizeof host);
    EXPECT(host[0] != '\0', "processor name");
    EXPECT(pt_log_get_rank() == g_rank, "log rank %d", pt_log_get_rank());
    /* Ranks are 0..size-1, each once. */
    int32_t *all = calloc((size_t)g_size, sizeof *all);
    int32_t me = g_rank;
    OK(pt_comm_allgather(c, &me, 4, all, &g_err));
    for (int r = 0; r < g_size; r++) EXPECT(all[r] == r, "allgather rank %d: %d", r, all[r]);
    free(all);
    OK(pt_comm_barrier(c, &g_err));
}

static void test_allreduce(pt_comm *c) {
    enum { N = 1000 };
    int64_t p = g_size, tri = p * (p + 1) / 2;
    int64_t *i64 = malloc(N * sizeof *i64);
    int32_t *i32 = malloc(N * sizeof *i32);
    float *f32 = malloc(N * sizeof *f32);
    double *f64 = malloc(N * sizeof *f64);
    for (int i = 0; i < N; i++) {
        i64[i] = (g_rank + 1) * (int64_t)i;
        i32[i] = (g_rank + 1) * i;
        f32[i] = 0.5f * (float)((g_rank + 1) * i);
        f64[i] = 0.25 * (double)((g_rank + 1) * i);
    }
    OK(pt_comm_allreduce(c, i64, N, PT_DTYPE_INT64, PT_REDOP_SUM, &g_err));
    OK(pt_comm_allreduce(c, i32, N, PT_DTYPE_INT32, PT_REDOP_SUM, &g_err));
    OK(pt_comm_allreduce(c, f32, N, PT_DTYPE_FLOAT32, PT_REDOP_SUM, &g_err));
    OK(pt_comm_allreduce(c, f64, N, PT_DTYPE_FLOAT64, PT_REDOP_SUM, &g_err));
    for (int i = 0; i < N; i++) {
        EXPECT(i64[i] == tri * i, "i64 sum[%d] %lld", i, (long long)i64[i]);
        EXPECT(i32[i] == tri * i, "i32 sum[%d] %d", i, i32[i]);
        EXPECT(f32[i] == 0.5f * (float)(tri * i), "f32 sum[%d] %g", i, f32[i]);
        EXPECT(f64[i] == 0.25 * (double)(tri * i), "f64 sum[%d] %g", i, f64[i]);
        if (g_fail > 20) break;
    }
    /* Signs alternate with i, so min and max come from rank 0 or rank p-1. */
    for (int pass = 0; pass < 2; pass++) {
        pt_redop op = pass ? PT_REDOP_MAX : PT_REDOP_MIN;
        for (int i = 0; i < N; i++) {
            int64_t v = (i % 2 ? 1 : -1) * (int64_t)(g_rank + 1) * i;
            i64[i] = v;
            i32[i] = (int32_t)v;
            f32[i] = (float)v;
            f64[i] = (double)v / 8;
        }
        OK(pt_comm_allreduce(c, i64, N, PT_DTYPE_INT64, op, &g_err));
        OK(pt_comm_allreduce(c, i32, N, PT_DTYPE_INT32, op, &g_err));
        OK(pt_comm_allreduce(c, f32, N, PT_DTYPE_FLOAT32, op, &g_err));
        OK(pt_comm_allreduce(c, f64, N, PT_DTYPE_FLOAT64, op, &g_err));
        for (int i = 0; i < N; i++) {
            int64_t lo = i % 2 ? i : -p * i, hi = i % 2 ? p * i : -i;
            int64_t want = pass ? hi : lo;
            EXPECT(i64[i] == want, "i64 %s[%d] %lld want %lld", pass ? "max" : "min", i,
                   (long long)i64[i], (long long)want);
            EXPECT(i32[i] == want, "i32[%d]", i);
            EXPECT(f32[i] == (float)want, "f32[%d]", i);
            EXPECT(f64[i] == (double)want / 8, "f64[%d]", i);
            if (g_fail > 20) break;
        }
    }
    /* Sums that round: every rank must still hold the same bits. */
    for (int i = 0; i < N; i++) f64[i] = 0.1 * (g_rank + 1) + 1e-7 * i * (g_rank * 3 + 1);
    OK(pt_comm_allreduce(c, f64, N, PT_DTYPE_FLOAT64, PT_REDOP_SUM, &g_err));
    double *all = malloc((size_t)g_size * N * sizeof *all);
    OK(pt_comm_allgather(c, f64, N * sizeof *f64, all, &g_err));
    for (int r = 1; r < g_size; r++) {
        EXPECT(memcmp(all, all + (size_t)r * N, N * sizeof *f64) == 0, "rank %d's sum differs", r);
    }
    for (int i = 0; i < N; i++) {
        double want = 0;
        for (int r = 0; r < g_size; r++) want += 0.1 * (r + 1) + 1e-7 * i * (r * 3 + 1);
        EXPECT(fabs(f64[i] - want) < 1e-12, "rounded sum[%d] %.17g want %.17g", i, f64[i], want);
    }
    /* reduce: only the root's buffer changes. */
    int root = g_size - 1;
    for (int i = 0; i < N; i++) i64[i] = (g_rank + 1) * (int64_t)i;
    OK(pt_comm_reduce(c, i64, N, PT_DTYPE_INT64, PT_REDOP_SUM, root, &g_err));
    for (int i = 0; i < N; i++) {
        int64_t want = g_rank == root ? tri * i : (g_rank + 1) * (int64_t)i;
        EXPECT(i64[i] == want, "reduce[%d] %lld want %lld", i, (long long)i64[i], (long long)want);
        if (g_fail > 20) break;
    }
    OK(pt_comm_allreduce(c, NULL, 0, PT_DTYPE_FLOAT64, PT_REDOP_SUM, &g_err));
    free(all);
    free(i64);
    free(i32);
    free(f32);
    free(f64);
}

/* Rank r holds a value whose sum depends on the order: rank order on rank 0
 * must give exactly the serial sum. */
static double det_value(int r, int i) {
    switch (r % 4) {
    case 0: return 1.0 + 0.5 * i;
    case 1: return 1e16 + i;
    case 2: return -1e16;
    default: return 3.0 - i;
    }
}

static void test_deterministic(pt_comm *d) {
    enum { N = 257 };
    double v[N];
    for (int i = 0; i < N; i++) v[i] = det_value(g_rank, i);
    OK(pt_comm_allreduce(d, v, N, PT_DTYPE_FLOAT64, PT_REDOP_SUM, &g_err));
    for (int i = 0; i < N; i++) {
        double want = det_value(0, i);
        for (int r = 1; r < g_size; r++) want += det_value(r, i);
        EXPECT(memcmp(&v[i], &want, sizeof want) == 0, "det sum[%d] %.17g want %.17g", i, v[i],
               want);
    }
    float f[N];
    for (int i = 0; i < N; i++) f[i] = (float)det_value(g_rank, i) * 1e-10f;
    OK(pt_comm_reduce(d, f, N, PT_DTYPE_FLOAT32, PT_REDOP_SUM, 0, &g_err));
    if (g_rank == 0) {
        for (int i = 0; i < N; i++) {
            float want = (float)det_value(0, i) * 1e-10f;
            for (int r = 1; r < g_size; r++) want += (float)det_value(r, i) * 1e-10f;
            EXPECT(memcmp(&f[i], &want, sizeof want) == 0, "det f32[%d] %.9g want %.9g", i, f[i],
                   want);
        }
    }
}

static void test_bcast_gather(pt_comm *c) {
    enum { B = 1000, G = 37 };
    unsigned char buf[B];
    int root = g_size - 1;
    for (int k = 0; k < B; k++) buf[k] = g_rank == root ? pat(root, 9, k) : 0;
    OK(pt_comm_bcast(c, buf, B, root, &g_err));
    for (int k = 0; k < B; k++) EXPECT(buf[k] == pat(root, 9, k), "bcast byte %d", k);
    OK(pt_comm_bcast(c, NULL, 0, 0, &g_err));

    unsigned char send[G], *recv = malloc((size_t)g_size * G);
    for (int k = 0; k < G; k++) send[k] = pat(g_rank, 1, k);
    int groot = 1 % g_size;
    memset(recv, 0, (size_t)g_size * G);
    OK(pt_comm_gather(c, send, G, g_rank == groot ? recv : NULL, groot, &g_err));
    if (g_rank == groot) {
        for (int r = 0; r < g_size; r++) {
            for (int k = 0; k < G; k++) EXPECT(recv[r * G + k] == pat(r, 1, k), "gather %d/%d", r, k);
        }
    }
    memset(recv, 0, (size_t)g_size * G);
    OK(pt_comm_allgather(c, send, G, recv, &g_err));
    for (int r = 0; r < g_size; r++) {
        for (int k = 0; k < G; k++) EXPECT(recv[r * G + k] == pat(r, 1, k), "allgather %d/%d", r, k);
    }
    free(recv);
}

static int64_t agv_len(int r) { return (r * 53) % 97; } /* rank 0: empty */

static void test_allgatherv(pt_comm *c) {
    int64_t n = agv_len(g_rank);
    unsigned char *send = malloc((size_t)n + 1);
    for (int64_t k = 0; k < n; k++) send[k] = pat(g_rank, 2, k);
    void *out = NULL;
    int64_t *counts = calloc((size_t)g_size, sizeof *counts);
    OK(pt_comm_allgatherv(c, send, n, &out, counts, &g_err));
    const unsigned char *p = out;
    for (int r = 0; r < g_size; r++) {
        EXPECT(counts[r] == agv_len(r), "allgatherv count %d: %lld", r, (long long)counts[r]);
        for (int64_t k = 0; k < agv_len(r); k++) EXPECT(*p++ == pat(r, 2, k), "allgatherv %d/%lld", r, (long long)k);
    }
    pt_free(out);
    free(counts);
    free(send);
}

/* Bytes rank r sends to rank q: uneven, with zeros. */
static int64_t a2a_count(int r, int q, int64_t scale) {
    if ((r + q) % 3 == 0) return 0;
    return (((r * 7 + q * 13) % 5) + 1) * scale;
}

static void test_alltoallv(pt_comm *c, int64_t scale) {
    int64_t *sc = calloc((size_t)g_size, sizeof *sc), *rc = calloc((size_t)g_size, sizeof *rc);
    int64_t total = 0;
    for (int q = 0; q < g_size; q++) total += sc[q] = a2a_count(g_rank, q, scale);
    unsigned char *send = malloc((size_t)total + 1), *s = send;
    for (int q = 0; q < g_size; q++) {
        for (int64_t k = 0; k < sc[q]; k++) *s++ = pat(g_rank, q, k);
    }
    void *out = NULL;
    OK(pt_comm_alltoallv(c, send, sc, &out, rc, &g_err));
    const unsigned char *p = out;
    for (int r = 0; r < g_size; r++) {
        EXPECT(rc[r] == a2a_count(r, g_rank, scale), "alltoallv count from %d: %lld", r,
               (long long)rc[r]);
        int bad = 0;
        for (int64_t k = 0; k < rc[r]; k++) bad += *p++ != pat(r, g_rank, k);
        EXPECT(bad == 0, "alltoallv: %d wrong bytes from rank %d", bad, r);
    }
    pt_free(out);
    free(send);
    free(sc);
    free(rc);
}

static void test_sendrecv(pt_comm *c, int64_t len) {
    int next = (g_rank + 1) % g_size, prev = (g_rank + g_size - 1) % g_size;
    int64_t n = len + g_rank;
    unsigned char *msg = malloc((size_t)n);
    for (int64_t k = 0; k < n; k++) msg[k] = pat(g_rank, 3, k);
    void *got = NULL;
    int64_t gotn = -1;
    /* Even ranks send first: a large send waits for its receive. */
    if (g_rank % 2 == 0) OK(pt_comm_send(c, msg, n, next, 7, &g_err));
    OK(pt_comm_recv_alloc(c, prev, 7, &got, &gotn, &g_err));
    if (g_rank % 2 == 1) OK(pt_comm_send(c, msg, n, next, 7, &g_err));
    EXPECT(gotn == len + prev, "ring: %lld bytes from %d", (long long)gotn, prev);
    int bad = 0;
    for (int64_t k = 0; k < gotn && k < len + prev; k++) bad += ((unsigned char *)got)[k] != pat(prev, 3, k);
    EXPECT(bad == 0, "ring: %d wrong bytes", bad);
    pt_free(got);
    free(msg);
}

static void test_messages(pt_comm *c) {
    int next = (g_rank + 1) % g_size, prev = (g_rank + g_size - 1) % g_size;
    /* Small messages are buffered: send both, then receive. A too-small
     * buffer discards the first message and the second still arrives. */
    char big[50], small[10];
    for (int k = 0; k < 50; k++) big[k] = (char)('a' + k % 26);
    OK(pt_comm_send(c, big, 50, next, 8, &g_err));
    OK(pt_comm_send(c, "xyz", 3, next, 8, &g_err));
    OK(pt_comm_send(c, "other", 5, next, 9, &g_err));
    int64_t n = -1;
    pt_status s = pt_comm_recv(c, small, sizeof small, prev, 8, &n, &g_err);
    EXPECT(s == PT_ERANGE, "status %s", pt_status_name(s));
    char want[200];
    snprintf(want, sizeof want,
             "rank %d: pt_comm_recv: the message of 50 bytes from rank %d (tag 8) does not fit "
             "the buffer of 10 bytes; it was discarded",
             g_rank, prev);
    EXPECT(strcmp(g_err.msg, want) == 0, "message '%s'", g_err.msg);
    EXPECT(n == 50, "n %lld", (long long)n);
    EXPECT(!pt_comm_failed(c), "ERANGE must not fail the comm");
    /* Tag 9 overtakes tag 8. */
    OK(pt_comm_recv(c, small, sizeof small, prev, 9, &n, &g_err));
    EXPECT(n == 5 && memcmp(small, "other", 5) == 0, "tag 9");
    OK(pt_comm_recv(c, small, sizeof small, prev, 8, &n, &g_err));
    EXPECT(n == 3 && memcmp(small, "xyz", 3) == 0, "after discard");
    /* To oneself: queued, never waits. */
    OK(pt_comm_send(c, "me", 2, g_rank, 4, &g_err));
    OK(pt_comm_recv(c, small, sizeof small, g_rank, 4, &n, &g_err));
    EXPECT(n == 2 && memcmp(small, "me", 2) == 0, "self message");
    OK(pt_comm_barrier(c, &g_err));
}

static void suite(pt_comm *c, pt_comm *d, int64_t chunk) {
    pt__comm_set_chunk(c, chunk);
    pt__comm_set_chunk(d, chunk);
    int before = g_fail;
    test_basics(c);
    test_allreduce(c);
    test_deterministic(d);
    test_bcast_gather(c);
    test_allgatherv(c);
    test_alltoallv(c, 1);
    test_alltoallv(c, chunk < 100 ? 301 : 40000); /* past the eager limit */
    test_sendrecv(c, chunk < 100 ? 1000 : 3 << 20);
    test_messages(c);
    /* Point to point with a different chunk on every rank: the header
     * carries the sender's. */
    pt__comm_set_chunk(c, chunk < 100 ? 3 + g_rank : chunk);
    test_sendrecv(c, 777);
    pt__comm_set_chunk(c, chunk);
    OK(pt_comm_barrier(c, &g_err));
    if (g_rank == 0) {
        printf("chunk %lld: %s\n", (long long)chunk, g_fail == before ? "ok" : "FAILED");
    }
}

int main(void) {
    pt_comm_opts o;
    pt_comm_opts_init(&o);
    o.backend = "mpi";
    o.timeout_s = 30;
    pt_comm *c = NULL, *d = NULL;
    if (pt_comm_init(&o, &c, &g_err) != PT_OK) {
        fprintf(stderr, "pt_comm_init: %s\n", g_err.msg);
        return 1;
    }
    /* A second comm in the same process, with deterministic float sums. */
    o.deterministic = true;
    if (pt_comm_init(&o, &d, &g_err) != PT_OK) {
        fprintf(stderr, "pt_comm_init: %s\n", g_err.msg);
        return 1;
    }
    g_rank = pt_comm_rank(c);
    g_size = pt_comm_size(c);
    if (pt_comm_rank(d) != g_rank || pt_comm_size(d) != g_size) g_fail++;
    int64_t chunks[] = {pt__comm_get_chunk(c), 5, 24};
    for (int i = 0; i < 3; i++) {
        suite(c, d, chunks[i]);
        if (pt_comm_failed(c) || pt_comm_failed(d)) break;
    }
    int64_t fails = g_fail;
    pt_error e2;
    if (!pt_comm_failed(c) && pt_comm_allreduce(c, &fails, 1, PT_DTYPE_INT64, PT_REDOP_SUM, &e2) != PT_OK) {
        fails = 1;
    }
    if (g_rank == 0) printf("%d ranks: %lld failures\n", g_size, (long long)fails);
    pt_comm_free(d);
    pt_comm_free(c);
    return fails == 0 && g_fail == 0 ? 0 : 1;
}
