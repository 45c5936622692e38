/*
 * bench_tasks.c - throughput of the task runtime: a million no-op tasks
 * created, submitted and waited for (independent, and in dependency chains),
 * and a parallel_for of a million no-op iterations (batched internally, and
 * unbatched with per-task records). Usage:
 *   bench_tasks [threads] [tasks]   (threads default: PARTITA_THREADS or cores)
 */
#include <stdio.h>
#include <stdlib.h>

#include "partita.h"

static pt_status noop(pt_task_ctx *tc, void *arg, pt_error *err) { return PT_OK; }

static pt_status noop_for(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) { return PT_OK; }

static int fail(const char *what, const pt_error *err) {
    fprintf(stderr, "bench_tasks: %s: %s\n", what, err->msg);
    return 1;
}

static void report(const char *name, int64_t n, int threads, double s) {
    double rate = (double)n / s;
    int e = 0;
    while (rate >= 10) {
        rate /= 10;
        e++;
    }
    printf("%-16s tasks=%lld threads=%d seconds=%.3f tasks_per_s=%.2fe%d\n", name, (long long)n,
           threads, s, rate, e);
    fflush(stdout);
}

/* chain_len 1: independent tasks; otherwise n/chain_len chains, task k of a
 * chain depending on task k-1, all created and submitted in chain order. */
static int run_tasks(pt_pool *pool, int64_t n, int64_t chain_len, double *secs) {
    pt_error err;
    pt_job *job;
    double t0 = pt_now_s();
    if (pt_job_new(pool, NULL, &job, &err) != PT_OK) return fail("pt_job_new", &err);
    pt_task *prev = NULL;
    for (int64_t i = 0; i < n; i++) {
        pt_task *t;
        if (pt_task_new(job, noop, NULL, &t, &err) != PT_OK) return fail("pt_task_new", &err);
        if (chain_len > 1 && i % chain_len != 0 && pt_task_depends(t, prev, &err) != PT_OK)
            return fail("pt_task_depends", &err);
        if (pt_task_submit(t, &err) != PT_OK) return fail("pt_task_submit", &err);
        prev = t;
    }
    if (pt_job_wait(job, &err) != PT_OK) return fail("pt_job_wait", &err);
    *secs = pt_now_s() - t0;
    pt_job_free(job);
    return 0;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : pt_default_threads();
    int64_t n = argc > 2 ? atoll(argv[2]) : 1000000;
    if (threads <= 0) threads = pt_default_threads();
    if (n <= 0) n = 1000000;
    pt_error err;
    pt_pool *pool;
    if (pt_pool_new(threads, &pool, &err) != PT_OK) return fail("pt_pool_new", &err);
    double s;
    /* A short warm-up so that thread start-up and first-touch page faults
     * of the allocator are not in the first figure. */
    if (run_tasks(pool, n / 10, 1, &s)) return 1;
    if (run_tasks(pool, n, 1, &s)) return 1;
    report("independent", n, threads, s);
    if (run_tasks(pool, n, 100, &s)) return 1;
    report("chains100", n, threads, s);
    double t0 = pt_now_s();
    if (pt_parallel_for(pool, n, noop_for, NULL, NULL, &err) != PT_OK)
        return fail("pt_parallel_for", &err);
    report("parallel_for", n, threads, pt_now_s() - t0);
    /* With records on, parallel_for makes one task per iteration (no
     * batching): the per-task cost through the same entry point. */
    pt_job_opts o;
    pt_job_opts_init(&o);
    o.record = true;
    t0 = pt_now_s();
    if (pt_parallel_for(pool, n, noop_for, NULL, &o, &err) != PT_OK)
        return fail("pt_parallel_for", &err);
    report("parallel_for_rec", n, threads, pt_now_s() - t0);
    pt_pool_free(pool);
    return 0;
}
