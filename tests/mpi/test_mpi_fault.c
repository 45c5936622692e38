/*
 * test_mpi_fault.c - a rank that never comes must not hang the others. Run
 * under `mpirun --enable-recovery -n 4` (so mpirun lets the survivors
 * finish) with one mode:
 *   absent  the last rank sleeps past the timeout instead of joining a
 *           barrier, then leaves normally;
 *   kill    the last rank kills itself (SIGKILL) before the barrier;
 *   recv    rank 0 waits for a message rank 1 never sends;
 *   query   the ranks run distributed queries (group-by with a median, so
 *           rows are exchanged) in a loop, and the last rank is killed
 *           (SIGKILL from a timer thread) while they do: every survivor's
 *           query must fail within the timeout, naming the lost rank.
 * Every waiting rank must return PT_ETIMEOUT within timeout + slack with a
 * message naming the missing rank, every later call must fail at once, and
 * pt_comm_free must return. Each rank that checked prints "rank R: PASS" or
 * "rank R: FAIL ..." (tests/mpi/mpi_fault.sh counts them: with
 * --enable-recovery mpirun's exit status does not reflect the ranks').
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "partita.h"

#define TIMEOUT 2.0

static int fail(int rank, const char *what, const pt_error *err) {
    printf("rank %d: FAIL %s: %s\n", rank, what, err ? err->msg : "");
    fflush(stdout);
    return 1;
}

/* The waiting side: the call must time out in time, naming `missing`. */
static int check_timeout(pt_comm *c, pt_status s, const pt_error *err, double t0,
                         const char *want) {
    int rank = pt_comm_rank(c);
    double dt = pt_now_s() - t0;
    if (s != PT_ETIMEOUT) return fail(rank, "status is not PT_ETIMEOUT", err);
    /* Ranks other than 0 wait up to 1 + 0.1 * timeout for rank 0's verdict. */
    if (dt < TIMEOUT - 0.05 || dt > TIMEOUT + 1.2 + 2.0) {
        char what[64];
        snprintf(what, sizeof what, "returned after %.2f s", dt);
        return fail(rank, what, err);
    }
    char prefix[32];
    snprintf(prefix, sizeof prefix, "rank %d: timed out after 2 s", rank);
    if (strncmp(err->msg, prefix, strlen(prefix)) != 0) return fail(rank, "message prefix", err);
    if (!strstr(err->msg, want)) return fail(rank, want, err);
    if (!pt_comm_failed(c)) return fail(rank, "comm not marked failed", err);
    /* Every later call fails at once with the first error. */
    pt_error e2;
    double t1 = pt_now_s();
    int64_t x = 1;
    pt_status s2 = pt_comm_allreduce(c, &x, 1, PT_DTYPE_INT64, PT_REDOP_SUM, &e2);
    if (s2 != PT_ETIMEOUT || pt_now_s() - t1 > 0.1 || !strstr(e2.msg, "failed earlier") ||
        !strstr(e2.msg, want))
        return fail(rank, "later call", &e2);
    printf("rank %d: PASS after %.2f s: %s\n", rank, dt, err->msg);
    fflush(stdout);
    return 0;
}

static void *killer(void *arg) {
    (void)arg;
    usleep(400000);
    raise(SIGKILL);
    return NULL;
}

/* True when what msg says it was waiting for ("waiting for rank 3",
 * "ranks 1, 3", "data to or from rank 3") names rank r (a rank that gave up
 * on its own may be listed with the lost one). */
static bool names_rank(const char *msg, int r) {
    const char *p = strstr(msg, "waiting for");
    while (p && (p = strstr(p, "rank")) != NULL) {
        p += 4;
        if (*p == 's') p++;
        for (;;) {
            while (*p == ' ' || *p == ',') p++;
            if (strncmp(p, "and ", 4) == 0) p += 4;
            if (*p < '0' || *p > '9') break;
            char *end;
            long v = strtol(p, &end, 10);
            if (v == r) return true;
            p = end;
        }
    }
    return false;
}

/* Distributed queries until one fails; the last rank dies during them. */
static int query_mode(pt_comm *c) {
    int rank = pt_comm_rank(c), last = pt_comm_size(c) - 1;
    pt_ctx_opts co;
    pt_ctx_opts_init(&co);
    co.comm = c;
    co.threads = 1;
    pt_ctx *ctx;
    pt_error err;
    if (pt_ctx_new(&co, &ctx, &err) != PT_OK) return fail(rank, "ctx", &err);
    enum { N = 300000 };
    int64_t *k = malloc(sizeof *k * N);
    double *v = malloc(sizeof *v * N);
    for (int64_t i = 0; i < N; i++) {
        k[i] = (i * 7919) % 1000;
        v[i] = (double)((i * 104729) % 100003);
    }
    const char *names[] = {"k", "v"};
    pt_type types[] = {PT_TYPE_INT64, PT_TYPE_FLOAT64};
    const void *data[] = {k, v};
    pt_frame *f = NULL, *g = NULL;
    int rc = 0;
    if (pt_frame_from_arrays(ctx, 2, names, types, data, N, 0, &f, &err) != PT_OK)
        rc = fail(rank, "frame", &err);
    pt_expr *keys[] = {pt_col("k")};
    pt_expr *aggs[] = {pt_alias(pt_agg(PT_AGG_MEDIAN, pt_col("v"), NULL), "med")};
    if (!rc && pt_frame_groupby(f, 1, keys, 1, aggs, &g, &err) != PT_OK)
        rc = fail(rank, "groupby", &err);
    if (!rc && pt_comm_barrier(c, &err) != PT_OK) rc = fail(rank, "barrier", &err);
    pthread_t th;
    if (!rc && rank == last) pthread_create(&th, NULL, killer, NULL);
    double t0 = pt_now_s(), tlast = t0;
    int runs = 0;
    pt_status s = PT_OK;
    while (!rc && pt_now_s() - t0 < 20) {
        pt_table *t = NULL;
        tlast = pt_now_s();
        s = pt_frame_collect(g, &t, &err);
        if (s != PT_OK) break;
        if (t->nrows != 1000) rc = fail(rank, "wrong row count", NULL);
        pt_table_free(t);
        runs++;
    }
    double dt = pt_now_s() - tlast;
    if (!rc && s == PT_OK) rc = fail(rank, "every query succeeded; the lost rank went unseen", NULL);
    if (!rc && s != PT_ETIMEOUT && s != PT_ECOMM) rc = fail(rank, "status", &err);
    if (!rc && !names_rank(err.msg, last))
        rc = fail(rank, "the message does not name the lost rank", &err);
    if (!rc && dt > TIMEOUT + 1.2 + 3.0) rc = fail(rank, "the failing query took too long", &err);
    if (!rc) {
        printf("rank %d: PASS after %d queries, the failing one %.2f s: %s\n", rank, runs, dt,
               err.msg);
        fflush(stdout);
    }
    pt_frame_free(g);
    pt_frame_free(f);
    pt_ctx_free(ctx);
    free(k);
    free(v);
    return rc;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "absent";
    pt_comm_opts o;
    pt_comm_opts_init(&o);
    o.backend = "mpi";
    o.timeout_s = TIMEOUT;
    pt_comm *c;
    pt_error err;
    if (pt_comm_init(&o, &c, &err) != PT_OK) return fail(-1, "init", &err);
    int rank = pt_comm_rank(c), size = pt_comm_size(c), last = size - 1;
    /* Everyone is up: the failure below is the only one. */
    if (pt_comm_barrier(c, &err) != PT_OK) return fail(rank, "first barrier", &err);
    int rc = 0;
    char want[64];
    if (strcmp(mode, "query") == 0) {
        rc = query_mode(c);
    } else if (strcmp(mode, "recv") == 0) {
        if (rank == 0) {
            char buf[8];
            double t0 = pt_now_s();
            pt_status s = pt_comm_recv(c, buf, sizeof buf, 1, 5, NULL, &err);
            rc = check_timeout(c, s, &err, t0, "in recv (tag 5) waiting for rank 1");
        }
        /* Rank 1 and the others just leave. */
    } else if (rank == last) {
        if (strcmp(mode, "kill") == 0) raise(SIGKILL);
        sleep(4); /* past the others' timeout; then leave without the barrier */
    } else {
        double t0 = pt_now_s();
        pt_status s = pt_comm_barrier(c, &err);
        snprintf(want, sizeof want, "in barrier (collective #3) waiting for rank %d", last);
        rc = check_timeout(c, s, &err, t0, want);
    }
    double t1 = pt_now_s();
    pt_comm_free(c);
    if (pt_now_s() - t1 > 5) rc = fail(rank, "pt_comm_free took too long", NULL);
    return rc;
}
