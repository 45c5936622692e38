/*
 * test_exec.c - the task runtime: DAG ordering over a million tasks, futures,
 * failure and cancellation spreading, transient retries, nested waits on
 * small pools, records, parallel_for, lost wake-ups, and the execution
 * context's environment handling. Expected values come from closed forms or
 * from bookkeeping kept by the test itself (per-task counters and sequence
 * numbers), never from the runtime's own answers.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "pt_test.h"

/* Sanitizers make tasks 5-20x slower; the big cases shrink under them. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define BIG_N 100000
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define BIG_N 100000
#endif
#endif
#ifndef BIG_N
#define BIG_N 1000000
#endif

static int64_t big_n(void) {
    const char *e = getenv("PT_TEST_EXEC_N");
    return e && atoll(e) > 0 ? atoll(e) : BIG_N;
}

static void busy_ns(int64_t ns) {
    int64_t end = pt_now_ns() + ns;
    while (pt_now_ns() < end) {
    }
}

/* ------------------------------------------------------------------------ */
/* Big DAG: chains plus fan-out/fan-in stages                               */
/* ------------------------------------------------------------------------ */

static _Atomic int64_t g_seq;
static _Atomic int32_t *g_runs;
static int64_t *g_start, *g_end;

static pt_status seq_task(pt_task_ctx *tc, void *arg, pt_error *err) {
    int64_t i = (int64_t)(intptr_t)arg;
    g_start[i] = atomic_fetch_add(&g_seq, 1);
    atomic_fetch_add_explicit(&g_runs[i], 1, memory_order_relaxed);
    g_end[i] = atomic_fetch_add(&g_seq, 1);
    return PT_OK;
}

static int seq_alloc(int64_t n) {
    atomic_store(&g_seq, 0);
    g_runs = calloc((size_t)n, sizeof *g_runs);
    g_start = calloc((size_t)n, sizeof *g_start);
    g_end = calloc((size_t)n, sizeof *g_end);
    return g_runs && g_start && g_end;
}

static void seq_free(void) {
    free((void *)g_runs);
    free(g_start);
    free(g_end);
    g_runs = NULL;
    g_start = g_end = NULL;
}

TEST(big_dag_runs_each_task_once_after_its_deps) {
    const int64_t n = big_n();
    const int64_t chain_len = 1000, stage = 500;
    const int64_t nchain_tasks = n / 2, nchains = nchain_tasks / chain_len;
    const int64_t nstages = (n - nchains * chain_len) / stage;
    const int64_t total = nchains * chain_len + nstages * stage;
    CHECK(seq_alloc(total));
    /* Edges (from, to), kept by the test to check the order afterwards. */
    int64_t max_edges = total * 2 + 16, nedges = 0;
    int64_t *ef = malloc((size_t)max_edges * sizeof *ef), *et = malloc((size_t)max_edges * sizeof *et);
    pt_task **tasks = malloc((size_t)total * sizeof *tasks);
    CHECK(ef && et && tasks);

    pt_error err;
    pt_pool *pool;
    CHECK_OK(pt_pool_new(3, &pool, &err), &err);
    pt_job *job;
    CHECK_OK(pt_job_new(pool, NULL, &job, &err), &err);
    int64_t id = 0;
    /* Chains, interleaved so that several run at once; each task is
     * submitted right after creation, so a dependency is often already
     * finished when it is declared. */
    for (int64_t j = 0; j < chain_len; j++) {
        for (int64_t c = 0; c < nchains; c++, id++) {
            CHECK_OK(pt_task_new(job, seq_task, (void *)(intptr_t)id, &tasks[id], &err), &err);
            if (j > 0) {
                int64_t prev = id - nchains;
                CHECK_OK(pt_task_depends(tasks[id], tasks[prev], &err), &err);
                ef[nedges] = prev, et[nedges++] = id;
            }
            CHECK_OK(pt_task_submit(tasks[id], &err), &err);
        }
    }
    /* Stages: source -> (stage-2) middles -> sink -> next stage's source. */
    int64_t prev_sink = -1;
    for (int64_t s = 0; s < nstages; s++) {
        int64_t src = id++;
        CHECK_OK(pt_task_new(job, seq_task, (void *)(intptr_t)src, &tasks[src], &err), &err);
        if (prev_sink >= 0) {
            CHECK_OK(pt_task_depends(tasks[src], tasks[prev_sink], &err), &err);
            ef[nedges] = prev_sink, et[nedges++] = src;
        }
        int64_t mid0 = id;
        for (int64_t m = 0; m < stage - 2; m++, id++) {
            CHECK_OK(pt_task_new(job, seq_task, (void *)(intptr_t)id, &tasks[id], &err), &err);
            CHECK_OK(pt_task_depends(tasks[id], tasks[src], &err), &err);
            ef[nedges] = src, et[nedges++] = id;
        }
        int64_t sink = id++;
        CHECK_OK(pt_task_new(job, seq_task, (void *)(intptr_t)sink, &tasks[sink], &err), &err);
        for (int64_t m = mid0; m < sink; m++) {
            CHECK_OK(pt_task_depends(tasks[sink], tasks[m], &err), &err);
            ef[nedges] = m, et[nedges++] = sink;
        }
        /* Submit the sink first and the source last: order of submission
         * must not matter. */
        CHECK_OK(pt_task_submit(tasks[sink], &err), &err);
        for (int64_t m = mid0; m < sink; m++) CHECK_OK(pt_task_submit(tasks[m], &err), &err);
        CHECK_OK(pt_task_submit(tasks[src], &err), &err);
        prev_sink = sink;
    }
    CHECK_EQ_I(id, total);
    CHECK_OK(pt_job_wait(job, &err), &err);

    pt_job_stats st;
    pt_job_stats_get(job, &st);
    CHECK_EQ_I(st.submitted, total);
    CHECK_EQ_I(st.succeeded, total);
    CHECK_EQ_I(st.failed + st.canceled + st.retries, 0);
    for (int64_t i = 0; i < total; i++) {
        CHECK_MSG(g_runs[i] == 1, "task %lld ran %d times", (long long)i, (int)g_runs[i]);
        CHECK(pt_task_state_get(tasks[i]) == PT_TASK_DONE);
    }
    for (int64_t e = 0; e < nedges; e++)
        CHECK_MSG(g_end[ef[e]] < g_start[et[e]], "task %lld started before its dep %lld ended",
                  (long long)et[e], (long long)ef[e]);
    CHECK_EQ_I(atomic_load(&g_seq), 2 * total);
    pt_job_free(job);
    pt_pool_free(pool);
    free(ef);
    free(et);
    free(tasks);
    seq_free();
}

TEST(diamond_order_with_reverse_submission) {
    pt_error err;
    CHECK(seq_alloc(4));
    for (int threads = 1; threads <= 4; threads *= 2) {
        pt_pool *pool;
        CHECK_OK(pt_pool_new(threads, &pool, &err), &err);
        for (int round = 0; round < 200; round++) {
            atomic_store(&g_seq, 0);
            for (int i = 0; i < 4; i++) g_runs[i] = 0;
            pt_job *job;
            CHECK_OK(pt_job_new(pool, NULL, &job, &err), &err);
            pt_task *t[4];
            for (int i = 0; i < 4; i++)
                CHECK_OK(pt_task_new(job, seq_task, (void *)(intptr_t)i, &t[i], &err), &err);
            CHECK_OK(pt_task_depends(t[1], t[0], &err), &err);
            CHECK_OK(pt_task_depends(t[2], t[0], &err), &err);
            CHECK_OK(pt_task_depends(t[3], t[1], &err), &err);
            CHECK_OK(pt_task_depends(t[3], t[2], &err), &err);
            for (int i = 3; i >= 0; i--) CHECK_OK(pt_task_submit(t[i], &err), &err);
            CHECK_OK(pt_job_wait(job, &err), &err);
            for (int i = 0; i < 4; i++) CHECK_EQ_I(g_runs[i], 1);
            CHECK(g_end[0] < g_start[1] && g_end[0] < g_start[2]);
            CHECK(g_end[1] < g_start[3] && g_end[2] < g_start[3]);
            pt_job_free(job);
        }
        pt_pool_free(pool);
    }
    seq_free();
}

/* ------------------------------------------------------------------------ */
/* Futures                                                                  */
/* ------------------------------------------------------------------------ */

static int64_t g_square_out[64];

static pt_status square_task(pt_task_ctx *tc, void *arg, pt_error *err) {
    int64_t i = (int64_t)(intptr_t)arg;
    g_square_out[i] = i * i;
    pt_task_set_result(tc, &g_square_out[i]);
    return PT_OK;
}

typedef struct sum_arg {
    pt_task **deps;
    int n;
    int64_t total;
} sum_arg;

static pt_status sum_task(pt_task_ctx *tc, void *arg, pt_error *err) {
    sum_arg *a = arg;
    for (int i = 0; i < a->n; i++) a->total += *(int64_t *)pt_task_result(a->deps[i]);
    pt_task_set_result(tc, &a->total);
    return PT_OK;
}

TEST(futures_and_results) {
    pt_error err;
    pt_pool *pool;
    CHECK_OK(pt_pool_new(2, &pool, &err), &err);
    pt_job *job;
    CHECK_OK(pt_job_new(pool, NULL, &job, &err), &err);
    pt_task *sq[64], *sum;
    sum_arg sa = {sq, 64, 0};
    CHECK_OK(pt_task_new(job, sum_task, &sa, &sum, &err), &err);
    CHECK(pt_task_state_get(sum) == PT_TASK_CREATED);
    CHECK(pt_task_result(sum) == NULL);
    for (int i = 0; i < 64; i++) {
        CHECK_OK(pt_task_new(job, square_task, (void *)(intptr_t)i, &sq[i], &err), &err);
        CHECK_OK(pt_task_depends(sum, sq[i], &err), &err);
    }
    CHECK_OK(pt_task_submit(sum, &err), &err);
    /* Waiting on a task that depends on unsubmitted ones is fine as long as
     * they get submitted: submit them from here after a moment. */
    CHECK(pt_task_state_get(sum) == PT_TASK_WAITING);
    for (int i = 0; i < 64; i++) CHECK_OK(pt_task_submit(sq[i], &err), &err);
    CHECK_OK(pt_task_wait(sum, &err), &err);
    CHECK(pt_task_state_get(sum) == PT_TASK_DONE);
    CHECK(pt_task_result(sum) == &sa.total);
    CHECK_EQ_I(sa.total, 63 * 64 * 127 / 6); /* sum of squares 0..63 */
    for (int i = 0; i < 64; i++) {
        CHECK_OK(pt_task_wait(sq[i], &err), &err);
        CHECK_EQ_I(*(int64_t *)pt_task_result(sq[i]), (int64_t)i * i);
    }
    CHECK_OK(pt_job_wait(job, &err), &err);
    pt_job_free(job);
    pt_pool_free(pool);
}

TEST(argument_errors) {
    pt_error err;
    pt_pool *pool;
    CHECK_OK(pt_pool_new(1, &pool, &err), &err);
    pt_job *j1, *j2;
    CHECK_OK(pt_job_new(pool, NULL, &j1, &err), &err);
    CHECK_OK(pt_job_new(pool, NULL, &j2, &err), &err);
    pt_task *a, *b, *c;
    CHECK_OK(pt_task_new(j1, seq_task, NULL, &a, &err), &err);
    CHECK_OK(pt_task_new(j1, seq_task, NULL, &b, &err), &err);
    CHECK_OK(pt_task_new(j2, seq_task, NULL, &c, &err), &err);
    CHECK(pt_task_depends(c, a, &err) == PT_EINVAL);
    CHECK_STR(err.msg, "pt_task_depends: task 0 and dep 0 belong to different jobs");
    CHECK(pt_task_depends(a, a, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "task 0 cannot depend on itself");
    CHECK(pt_task_wait(b, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "task 1 was never submitted");
    CHECK(pt_task_new(j1, NULL, NULL, &c, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "fn is NULL");
    pt_job_opts o;
    pt_job_opts_init(&o);
    CHECK_EQ_I(o.max_retries, 3);
    CHECK_EQ_I(o.backoff_ns, 1000000);
    CHECK_EQ_I(o.max_backoff_ns, 100000000);
    o.max_retries = -1;
    pt_job *j3;
    CHECK(pt_job_new(pool, &o, &j3, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "max_retries");
    CHECK(pt_job_new(NULL, NULL, &j3, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "pool is NULL");
    CHECK(seq_alloc(2));
    pt_job_free(j1);
    pt_job_free(j2);
    CHECK_OK(pt_job_new(pool, NULL, &j1, &err), &err);
    CHECK_OK(pt_task_new(j1, seq_task, (void *)(intptr_t)0, &a, &err), &err);
    CHECK_OK(pt_task_new(j1, seq_task, (void *)(intptr_t)1, &b, &err), &err);
    CHECK_OK(pt_task_submit(a, &err), &err);
    CHECK(pt_task_submit(a, &err) == PT_EINVAL);
    CHECK_STR(err.msg, "pt_task_submit: task 0 is already submitted");
    CHECK(pt_task_depends(a, b, &err) == PT_EINVAL);
    CHECK_STR(err.msg, "pt_task_depends: task 0 is already submitted");
    CHECK_OK(pt_job_wait(j1, &err), &err);
    CHECK_EQ_I(g_runs[0], 1);
    CHECK_EQ_I(g_runs[1], 0); /* never submitted, never run */
    pt_job_free(j1);
    pt_pool_free(pool);
    seq_free();
    CHECK(pt_pool_worker_id() == -1);
}

/* ------------------------------------------------------------------------ */
/* Failure and cancellation                                                 */
/* ------------------------------------------------------------------------ */

static _Atomic int64_t g_ran;

static pt_status fail_at_17(pt_task_ctx *tc, void *arg, pt_error *err) {
    int64_t i = (int64_t)(intptr_t)arg;
    atomic_fetch_add(&g_ran, 1);
    if (i == 17) return pt_error_set(err, PT_EIO, "boom at row %lld", (long long)i);
    busy_ns(20000);
    return PT_OK;
}

TEST(failure_cancels_the_rest) {
    const int n = 10000, threads = 2;
    for (int named = 0; named < 2; named++) {
        pt_error err;
        pt_pool *pool;
        CHECK_OK(pt_pool_new(threads, &pool, &err), &err);
        pt_job_opts o;
        pt_job_opts_init(&o);
        o.record = true;
        o.name = named ? "csv parse" : NULL;
        pt_job *job;
        CHECK_OK(pt_job_new(pool, &o, &job, &err), &err);
        atomic_store(&g_ran, 0);
        for (int i = 0; i < n; i++) {
            pt_task *t;
            CHECK_OK(pt_task_new(job, fail_at_17, (void *)(intptr_t)i, &t, &err), &err);
            CHECK_OK(pt_task_submit(t, &err), &err);
        }
        CHECK(pt_job_wait(job, &err) == PT_EIO);
        CHECK_EQ_I(err.code, PT_EIO);
        CHECK_STR(err.msg, named ? "job 'csv parse': task 17: boom at row 17" : "task 17: boom at row 17");
        pt_job_stats st;
        pt_job_stats_get(job, &st);
        CHECK_EQ_I(st.submitted, n);
        CHECK_EQ_I(st.failed, 1);
        CHECK(st.canceled > 0);
        CHECK_EQ_I(st.succeeded + st.failed + st.canceled, n);
        CHECK_EQ_I(atomic_load(&g_ran), st.succeeded + st.failed);
        int64_t nrec;
        const pt_task_record *r = pt_job_records(job, &nrec);
        CHECK_EQ_I(nrec, n);
        CHECK(r[17].status == PT_EIO);
        int64_t fail_end = r[17].end_ns, started_after = 0, canceled = 0;
        CHECK(fail_end > 0);
        for (int i = 0; i < n; i++) {
            if (r[i].status == PT_ECANCELED) {
                canceled++;
                CHECK_EQ_I(r[i].attempts, 0);
            } else {
                CHECK_EQ_I(r[i].attempts, 1);
                if (r[i].start_ns > fail_end) started_after++;
            }
        }
        CHECK_EQ_I(canceled, st.canceled);
        /* Only a worker that checked the flag just before it was set can
         * start a task afterwards: at most one per other worker. */
        CHECK(started_after <= threads - 1);
        pt_job_free(job);
        pt_pool_free(pool);
    }
}

static _Atomic int g_dep_ran[4];

static pt_status dep_task(pt_task_ctx *tc, void *arg, pt_error *err) {
    int i = (int)(intptr_t)arg;
    atomic_fetch_add(&g_dep_ran[i], 1);
    if (i == 0) return pt_error_set(err, PT_EPARSE, "bad.csv:3:7: unterminated quote");
    return PT_OK;
}

TEST(dependents_of_failed_task_are_canceled) {
    pt_error err;
    pt_pool *pool;
    CHECK_OK(pt_pool_new(2, &pool, &err), &err);
    pt_job *job;
    CHECK_OK(pt_job_new(pool, NULL, &job, &err), &err);
    for (int i = 0; i < 4; i++) atomic_store(&g_dep_ran[i], 0);
    pt_task *a, *b, *c, *e;
    CHECK_OK(pt_task_new(job, dep_task, (void *)0, &a, &err), &err);
    CHECK_OK(pt_task_new(job, dep_task, (void *)1, &b, &err), &err);
    CHECK_OK(pt_task_new(job, dep_task, (void *)2, &c, &err), &err);
    CHECK_OK(pt_task_depends(b, a, &err), &err);
    CHECK_OK(pt_task_depends(c, b, &err), &err);
    CHECK_OK(pt_task_submit(c, &err), &err);
    CHECK_OK(pt_task_submit(b, &err), &err);
    CHECK_OK(pt_task_submit(a, &err), &err);
    CHECK(pt_task_wait(a, &err) == PT_EPARSE);
    CHECK_STR(err.msg, "bad.csv:3:7: unterminated quote");
    CHECK(pt_task_wait(c, &err) == PT_ECANCELED);
    CHECK_STR(err.msg, "task 2 canceled: a dependency failed or was canceled");
    CHECK(pt_task_wait(b, &err) == PT_ECANCELED);
    CHECK(pt_task_state_get(a) == PT_TASK_FAILED);
    CHECK(pt_task_state_get(b) == PT_TASK_CANCELED);
    CHECK(pt_task_state_get(c) == PT_TASK_CANCELED);
    /* A dependency declared on a task that has already failed. */
    CHECK_OK(pt_task_new(job, dep_task, (void *)3, &e, &err), &err);
    CHECK_OK(pt_task_depends(e, a, &err), &err);
    CHECK_OK(pt_task_submit(e, &err), &err);
    CHECK(pt_task_wait(e, &err) == PT_ECANCELED);
    CHECK(pt_job_wait(job, &err) == PT_EPARSE);
    CHECK_STR(err.msg, "task 0: bad.csv:3:7: unterminated quote");
    CHECK_EQ_I(atomic_load(&g_dep_ran[0]), 1);
    CHECK_EQ_I(atomic_load(&g_dep_ran[1]) + atomic_load(&g_dep_ran[2]) + atomic_load(&g_dep_ran[3]), 0);
    pt_job_stats st;
    pt_job_stats_get(job, &st);
    CHECK_EQ_I(st.submitted, 4);
    CHECK_EQ_I(st.failed, 1);
    CHECK_EQ_I(st.canceled, 3);
    CHECK_EQ_I(st.succeeded, 0);
    pt_job_free(job);
    pt_pool_free(pool);
}

/* A long task that polls for cancellation; the rest are short. */
static _Atomic int g_long_started;

static pt_status cancelable_task(pt_task_ctx *tc, void *arg, pt_error *err) {
    if ((intptr_t)arg == 0) {
        atomic_store(&g_long_started, 1);
        while (!pt_task_ctx_canceled(tc)) pt_sleep_ns(100000);
        return pt_error_set(err, PT_ECANCELED, "stopped");
    }
    pt_sleep_ns(200000);
    return PT_OK;
}

TEST(job_cancel) {
    pt_error err;
    pt_pool *pool;
    CHECK_OK(pt_pool_new(2, &pool, &err), &err);
    pt_job_opts o;
    pt_job_opts_init(&o);
    o.name = "scan";
    pt_job *job;
    CHECK_OK(pt_job_new(pool, &o, &job, &err), &err);
    atomic_store(&g_long_started, 0);
    const int n = 1000;
    for (int i = 0; i < n; i++) {
        pt_task *t;
        CHECK_OK(pt_task_new(job, cancelable_task, (void *)(intptr_t)i, &t, &err), &err);
        CHECK_OK(pt_task_submit(t, &err), &err);
    }
    while (!atomic_load(&g_long_started)) pt_sleep_ns(100000);
    pt_job_cancel(job);
    CHECK(pt_job_wait(job, &err) == PT_ECANCELED);
    CHECK_STR(err.msg, "job 'scan': canceled");
    pt_job_stats st;
    pt_job_stats_get(job, &st);
    CHECK_EQ_I(st.submitted, n);
    CHECK_EQ_I(st.failed, 0); /* the long task's PT_ECANCELED counts as canceled */
    CHECK(st.canceled > 0);
    CHECK_EQ_I(st.succeeded + st.canceled, n);
    pt_job_free(job);
    pt_pool_free(pool);
}

static pt_status always_transient(pt_task_ctx *tc, void *arg, pt_error *err) {
    atomic_fetch_add(&g_ran, 1);
    return pt_error_set(err, PT_ETRANSIENT, "server busy");
}

TEST(cancel_cuts_a_retry_backoff_short) {
    pt_error err;
    pt_pool *pool;
    CHECK_OK(pt_pool_new(1, &pool, &err), &err);
    pt_job_opts o;
    pt_job_opts_init(&o);
    o.backoff_ns = o.max_backoff_ns = 30LL * 1000000000; /* 30 s */
    pt_job *job;
    CHECK_OK(pt_job_new(pool, &o, &job, &err), &err);
    atomic_store(&g_ran, 0);
    pt_task *t;
    CHECK_OK(pt_task_new(job, always_transient, NULL, &t, &err), &err);
    CHECK_OK(pt_task_submit(t, &err), &err);
    while (atomic_load(&g_ran) == 0) pt_sleep_ns(100000);
    int64_t t0 = pt_now_ns();
    pt_job_cancel(job);
    CHECK(pt_job_wait(job, &err) == PT_ECANCELED);
    CHECK(pt_now_ns() - t0 < 5LL * 1000000000);
    CHECK_EQ_I(atomic_load(&g_ran), 1);
    CHECK(pt_task_state_get(t) == PT_TASK_CANCELED);
    pt_job_free(job);
    pt_pool_free(pool);
}

/* ------------------------------------------------------------------------ */
/* Retries                                                                  */
/* ------------------------------------------------------------------------ */

static int g_attempts_seen[8];
static int64_t g_attempt_time[8];
static _Atomic int g_calls;

static pt_status third_time_lucky(pt_task_ctx *tc, void *arg, pt_error *err) {
    int k = atomic_fetch_add(&g_calls, 1);
    if (k < 8) {
        g_attempts_seen[k] = pt_task_ctx_attempt(tc);
        g_attempt_time[k] = pt_now_ns();
    }
    if (pt_task_ctx_attempt(tc) < 2) return pt_error_set(err, PT_ETRANSIENT, "try again");
    pt_task_ctx_add_bytes(tc, 42);
    return PT_OK;
}

TEST(transient_retry_succeeds_on_third_attempt) {
    pt_error err;
    pt_pool *pool;
    CHECK_OK(pt_pool_new(2, &pool, &err), &err);
    pt_job_opts o;
    pt_job_opts_init(&o);
    o.record = true;
    o.backoff_ns = 2000000;      /* 2 ms, then 4 ms */
    o.max_backoff_ns = 100000000;
    pt_job *job;
    CHECK_OK(pt_job_new(pool, &o, &job, &err), &err);
    atomic_store(&g_calls, 0);
    pt_task *t;
    CHECK_OK(pt_task_new(job, third_time_lucky, NULL, &t, &err), &err);
    CHECK_OK(pt_task_submit(t, &err), &err);
    CHECK_OK(pt_task_wait(t, &err), &err);
    CHECK_OK(pt_job_wait(job, &err), &err);
    CHECK_EQ_I(atomic_load(&g_calls), 3);
    for (int k = 0; k < 3; k++) CHECK_EQ_I(g_attempts_seen[k], k);
    CHECK(g_attempt_time[1] - g_attempt_time[0] >= 2000000);
    CHECK(g_attempt_time[2] - g_attempt_time[1] >= 4000000);
    pt_job_stats st;
    pt_job_stats_get(job, &st);
    CHECK_EQ_I(st.retries, 2);
    CHECK_EQ_I(st.succeeded, 1);
    CHECK_EQ_I(st.failed, 0);
    int64_t nrec;
    const pt_task_record *r = pt_job_records(job, &nrec);
    CHECK_EQ_I(nrec, 1);
    CHECK_EQ_I(r[0].attempts, 3);
    CHECK_EQ_I(r[0].bytes, 42);
    CHECK(r[0].status == PT_OK);
    CHECK(r[0].end_ns - r[0].start_ns >= 6000000);
    pt_job_free(job);
    pt_pool_free(pool);
}

TEST(transient_retry_exhausted_fails_with_message) {
    pt_error err;
    pt_pool *pool;
    CHECK_OK(pt_pool_new(2, &pool, &err), &err);
    pt_job_opts o;
    pt_job_opts_init(&o);
    o.max_retries = 2;
    o.backoff_ns = 100000;
    o.name = "fetch";
    pt_job *job;
    CHECK_OK(pt_job_new(pool, &o, &job, &err), &err);
    atomic_store(&g_ran, 0);
    pt_task *t;
    CHECK_OK(pt_task_new(job, always_transient, NULL, &t, &err), &err);
    CHECK_OK(pt_task_submit(t, &err), &err);
    CHECK(pt_job_wait(job, &err) == PT_ETRANSIENT);
    CHECK_STR(err.msg, "job 'fetch': task 0: server busy (after 2 retries)");
    CHECK(pt_task_wait(t, &err) == PT_ETRANSIENT);
    CHECK_STR(err.msg, "server busy (after 2 retries)");
    CHECK_EQ_I(atomic_load(&g_ran), 3);
    pt_job_stats st;
    pt_job_stats_get(job, &st);
    CHECK_EQ_I(st.retries, 2);
    CHECK_EQ_I(st.failed, 1);
    pt_job_free(job);
    pt_pool_free(pool);
}

/* ------------------------------------------------------------------------ */
/* Nested waits                                                             */
/* ------------------------------------------------------------------------ */

static pt_job *g_fib_job;

static pt_status fib_task(pt_task_ctx *tc, void *arg, pt_error *err) {
    intptr_t n = (intptr_t)arg;
    if (n < 2) {
        pt_task_set_result(tc, (void *)n);
        return PT_OK;
    }
    pt_task *a, *b;
    PT_RETURN_NOT_OK(pt_task_new(g_fib_job, fib_task, (void *)(n - 1), &a, err));
    PT_RETURN_NOT_OK(pt_task_new(g_fib_job, fib_task, (void *)(n - 2), &b, err));
    PT_RETURN_NOT_OK(pt_task_submit(a, err));
    PT_RETURN_NOT_OK(pt_task_submit(b, err));
    PT_RETURN_NOT_OK(pt_task_wait(a, err));
    PT_RETURN_NOT_OK(pt_task_wait(b, err));
    pt_task_set_result(tc, (void *)((intptr_t)pt_task_result(a) + (intptr_t)pt_task_result(b)));
    return PT_OK;
}

static pt_status pf_square_sum(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    atomic_fetch_add((_Atomic int64_t *)arg, i * i);
    return PT_OK;
}

/* A task that runs a whole parallel_for (job wait from inside a worker). */
static pt_status nested_pf_task(pt_task_ctx *tc, void *arg, pt_error *err) {
    pt_pool *pool = arg;
    _Atomic int64_t sum = 0;
    PT_RETURN_NOT_OK(pt_parallel_for(pool, 1000, pf_square_sum, (void *)&sum, NULL, err));
    int64_t s = atomic_load(&sum);
    return s == 999LL * 1000 * 1999 / 6 ? PT_OK : pt_error_set(err, PT_EINTERNAL, "sum %lld", (long long)s);
}

TEST(nested_waits_do_not_deadlock) {
    static const intptr_t fib[] = {0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610};
    for (int threads = 1; threads <= 2; threads++) {
        pt_error err;
        pt_pool *pool;
        CHECK_OK(pt_pool_new(threads, &pool, &err), &err);
        CHECK_OK(pt_job_new(pool, NULL, &g_fib_job, &err), &err);
        pt_task *root;
        CHECK_OK(pt_task_new(g_fib_job, fib_task, (void *)15, &root, &err), &err);
        CHECK_OK(pt_task_submit(root, &err), &err);
        CHECK_OK(pt_task_wait(root, &err), &err);
        CHECK_EQ_I((intptr_t)pt_task_result(root), fib[15]);
        CHECK_OK(pt_job_wait(g_fib_job, &err), &err);
        pt_job_stats st;
        pt_job_stats_get(g_fib_job, &st);
        CHECK_EQ_I(st.submitted, 1973); /* calls of naive fib(15): 2*fib(16)-1 */
        pt_job_free(g_fib_job);

        pt_job *job;
        CHECK_OK(pt_job_new(pool, NULL, &job, &err), &err);
        for (int i = 0; i < 4; i++) {
            pt_task *t;
            CHECK_OK(pt_task_new(job, nested_pf_task, pool, &t, &err), &err);
            CHECK_OK(pt_task_submit(t, &err), &err);
        }
        CHECK_OK(pt_job_wait(job, &err), &err);
        pt_job_free(job);
        pt_pool_free(pool);
    }
}

/* ------------------------------------------------------------------------ */
/* Records                                                                  */
/* ------------------------------------------------------------------------ */

static pt_status bytes_task(pt_task_ctx *tc, void *arg, pt_error *err) {
    int64_t i = (int64_t)(intptr_t)arg;
    pt_task_ctx_add_bytes(tc, i * 10);
    pt_task_ctx_add_bytes(tc, 1);
    if (pt_task_ctx_worker(tc) != pt_pool_worker_id())
        return pt_error_set(err, PT_EINTERNAL, "worker ids differ");
    return PT_OK;
}

TEST(records_in_submission_order) {
    pt_error err;
    pt_pool *pool;
    CHECK_OK(pt_pool_new(2, &pool, &err), &err);
    pt_job_opts o;
    pt_job_opts_init(&o);
    o.record = true;
    pt_job *job;
    CHECK_OK(pt_job_new(pool, &o, &job, &err), &err);
    pt_task *t[100];
    for (int i = 0; i < 100; i++)
        CHECK_OK(pt_task_new(job, bytes_task, (void *)(intptr_t)i, &t[i], &err), &err);
    int64_t before = pt_now_ns();
    for (int i = 99; i >= 0; i--) CHECK_OK(pt_task_submit(t[i], &err), &err);
    CHECK_OK(pt_job_wait(job, &err), &err);
    int64_t after = pt_now_ns();
    int64_t n;
    const pt_task_record *r = pt_job_records(job, &n);
    CHECK_EQ_I(n, 100);
    for (int k = 0; k < 100; k++) {
        CHECK_EQ_I(r[k].bytes, (99 - k) * 10 + 1);
        CHECK(r[k].start_ns >= before && r[k].start_ns <= r[k].end_ns && r[k].end_ns <= after);
        CHECK(r[k].worker >= 0 && r[k].worker < 2);
        CHECK_EQ_I(r[k].attempts, 1);
        CHECK(r[k].status == PT_OK);
    }
    pt_job_free(job);
    /* Without opts.record there are none. */
    CHECK_OK(pt_job_new(pool, NULL, &job, &err), &err);
    CHECK_OK(pt_task_new(job, bytes_task, (void *)0, &t[0], &err), &err);
    CHECK_OK(pt_task_submit(t[0], &err), &err);
    CHECK_OK(pt_job_wait(job, &err), &err);
    CHECK(pt_job_records(job, &n) == NULL);
    CHECK_EQ_I(n, 0);
    pt_job_free(job);
    pt_pool_free(pool);
}

/* ------------------------------------------------------------------------ */
/* Parallel for                                                             */
/* ------------------------------------------------------------------------ */

typedef struct pf_state {
    _Atomic int64_t sum;
    _Atomic int64_t calls;
    _Atomic uint8_t *ok;  /* successful calls per i */
    int64_t fail_at;
    int transient_every;
} pf_state;

static pt_status pf_body(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err) {
    pf_state *s = arg;
    atomic_fetch_add_explicit(&s->calls, 1, memory_order_relaxed);
    if (i == s->fail_at) return pt_error_set(err, PT_ERANGE, "value out of range at %lld", (long long)i);
    if (s->transient_every && i % s->transient_every == 0 && pt_task_ctx_attempt(tc) == 0)
        return pt_error_set(err, PT_ETRANSIENT, "flaky");
    if (s->transient_every && pt_task_ctx_attempt(tc) != (i % s->transient_every == 0 ? 1 : 0))
        return pt_error_set(err, PT_EINTERNAL, "wrong attempt %d at %lld", pt_task_ctx_attempt(tc),
                            (long long)i);
    atomic_fetch_add_explicit(&s->sum, i, memory_order_relaxed);
    if (s->ok) atomic_fetch_add_explicit(&s->ok[i], 1, memory_order_relaxed);
    return PT_OK;
}

TEST(parallel_for_sum_matches_closed_form) {
    const int64_t n = big_n();
    pt_error err;
    pt_pool *pool;
    CHECK_OK(pt_pool_new(2, &pool, &err), &err);
    pf_state s = {.fail_at = -1};
    s.ok = calloc((size_t)n, 1);
    CHECK(s.ok);
    CHECK_OK(pt_parallel_for(pool, n, pf_body, &s, NULL, &err), &err);
    CHECK_EQ_I(atomic_load(&s.sum), n * (n - 1) / 2);
    CHECK_EQ_I(atomic_load(&s.calls), n);
    for (int64_t i = 0; i < n; i++) CHECK_MSG(s.ok[i] == 1, "i=%lld ran %d times", (long long)i, s.ok[i]);
    /* The serial fallback. */
    atomic_store(&s.sum, 0);
    atomic_store(&s.calls, 0);
    CHECK_OK(pt_parallel_for(NULL, 1000, pf_body, &s, NULL, &err), &err);
    CHECK_EQ_I(atomic_load(&s.sum), 999 * 1000 / 2);
    CHECK_OK(pt_parallel_for(pool, 0, pf_body, &s, NULL, &err), &err);
    CHECK(pt_parallel_for(pool, -1, pf_body, &s, NULL, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "n must be >= 0");
    free((void *)s.ok);
    pt_pool_free(pool);
}

TEST(parallel_for_retries_and_failures) {
    const int64_t n = 100000;
    pt_error err;
    pt_pool *pool;
    CHECK_OK(pt_pool_new(2, &pool, &err), &err);
    pt_job_opts o;
    pt_job_opts_init(&o);
    o.backoff_ns = 1000;
    o.max_backoff_ns = 1000;
    for (int serial = 0; serial < 2; serial++) {
        pt_pool *p = serial ? NULL : pool;
        /* Every 1000th i fails once, transiently: one more call each, and
         * still exactly one successful call per i. */
        pf_state s = {.fail_at = -1, .transient_every = 1000};
        s.ok = calloc((size_t)n, 1);
        CHECK(s.ok);
        CHECK_OK(pt_parallel_for(p, n, pf_body, &s, &o, &err), &err);
        CHECK_EQ_I(atomic_load(&s.calls), n + n / 1000);
        CHECK_EQ_I(atomic_load(&s.sum), n * (n - 1) / 2);
        for (int64_t i = 0; i < n; i++) CHECK(s.ok[i] == 1);
        free((void *)s.ok);
        /* A hard failure at i = 777 is the reported one. */
        pf_state f = {.fail_at = 777};
        o.name = "scale";
        CHECK(pt_parallel_for(p, n, pf_body, &f, &o, &err) == PT_ERANGE);
        CHECK_STR(err.msg, "job 'scale': task 777: value out of range at 777");
        o.name = NULL;
        if (serial) CHECK_EQ_I(atomic_load(&f.calls), 778);
        else CHECK(atomic_load(&f.calls) < n);
    }
    pt_pool_free(pool);
}

/* ------------------------------------------------------------------------ */
/* Wake-ups                                                                 */
/* ------------------------------------------------------------------------ */

static pt_status noop_task(pt_task_ctx *tc, void *arg, pt_error *err) {
    atomic_fetch_add_explicit((_Atomic int64_t *)arg, 1, memory_order_relaxed);
    return PT_OK;
}

typedef struct producer_arg {
    pt_pool *pool;
    int rounds;
    int failed;
} producer_arg;

static void *producer(void *arg) {
    producer_arg *a = arg;
    _Atomic int64_t count = 0;
    for (int r = 0; r < a->rounds; r++) {
        pt_job *job;
        pt_task *t;
        if (pt_job_new(a->pool, NULL, &job, NULL) != PT_OK) {
            a->failed = 1;
            return NULL;
        }
        int k = 1 + r % 3;
        for (int i = 0; i < k; i++) {
            if (pt_task_new(job, noop_task, (void *)&count, &t, NULL) != PT_OK ||
                pt_task_submit(t, NULL) != PT_OK)
                a->failed = 1;
        }
        if (pt_job_wait(job, NULL) != PT_OK) a->failed = 1;
        pt_job_free(job);
        /* Let the workers fall asleep now and then. */
        if (r % 50 == 0) pt_sleep_ns(300000);
    }
    int64_t want = 0;
    for (int r = 0; r < a->rounds; r++) want += 1 + r % 3;
    if (atomic_load(&count) != want) a->failed = 1;
    return NULL;
}

TEST(no_lost_wakeups_with_sleeping_workers) {
    pt_error err;
    for (int threads = 1; threads <= 3; threads++) {
        pt_pool *pool;
        CHECK_OK(pt_pool_new(threads, &pool, &err), &err);
        producer_arg a[2] = {{pool, 1500, 0}, {pool, 1500, 0}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++) CHECK(pthread_create(&th[i], NULL, producer, &a[i]) == 0);
        for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
        CHECK(!a[0].failed && !a[1].failed);
        pt_pool_free(pool);
    }
}

/* ------------------------------------------------------------------------ */
/* Default threads and the context                                          */
/* ------------------------------------------------------------------------ */

TEST(default_threads_honours_env) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsetenv("PARTITA_THREADS");
    CHECK_EQ_I(pt_default_threads(), cores);
    setenv("PARTITA_THREADS", "3", 1);
    CHECK_EQ_I(pt_default_threads(), 3);
    pt_error err;
    pt_pool *pool;
    CHECK_OK(pt_pool_new(0, &pool, &err), &err);
    CHECK_EQ_I(pt_pool_threads(pool), 3);
    pt_pool_free(pool);
    setenv("PARTITA_THREADS", "lots", 1);
    pt_log_level lvl = pt_log_level_get();
    pt_log_level_set(PT_LOG_OFF);
    CHECK_EQ_I(pt_default_threads(), cores);
    setenv("PARTITA_THREADS", "0", 1);
    CHECK_EQ_I(pt_default_threads(), cores);
    pt_log_level_set(lvl);
    unsetenv("PARTITA_THREADS");
}

TEST(ctx_memory_limit_threads_and_spill_dir) {
    pt_error err;
    pt_ctx *ctx;
    const char *tmp = getenv("TMPDIR");
    char saved_tmp[512];
    snprintf(saved_tmp, sizeof saved_tmp, "%s", tmp ? tmp : "");
    setenv("PARTITA_MEMORY_LIMIT", "64M", 1);
    setenv("PARTITA_THREADS", "2", 1);
    setenv("TMPDIR", "/var/tmp/pt", 1);
    CHECK_OK(pt_ctx_new(NULL, &ctx, &err), &err);
    CHECK_EQ_I(pt_mem_limit(pt_ctx_mem(ctx)), 64LL * 1024 * 1024);
    CHECK_EQ_I(pt_ctx_threads(ctx), 2);
    CHECK_EQ_I(pt_pool_threads(pt_ctx_pool(ctx)), 2);
    CHECK_STR(pt_ctx_spill_dir(ctx), "/var/tmp/pt");
    pt_ctx_free(ctx);

    pt_ctx_opts o;
    pt_ctx_opts_init(&o);
    o.threads = 1;
    o.memory_limit = 1000;
    o.spill_dir = "/data/spill";
    CHECK_OK(pt_ctx_new(&o, &ctx, &err), &err);
    CHECK_EQ_I(pt_mem_limit(pt_ctx_mem(ctx)), 1000);
    CHECK_EQ_I(pt_ctx_threads(ctx), 1);
    CHECK_STR(pt_ctx_spill_dir(ctx), "/data/spill");
    pt_ctx_free(ctx);

    unsetenv("PARTITA_MEMORY_LIMIT");
    unsetenv("TMPDIR");
    CHECK_OK(pt_ctx_new(NULL, &ctx, &err), &err);
    CHECK_EQ_I(pt_mem_limit(pt_ctx_mem(ctx)), 0);
    CHECK_STR(pt_ctx_spill_dir(ctx), "/tmp");
    pt_ctx_free(ctx);

    setenv("PARTITA_MEMORY_LIMIT", "12 parsecs", 1);
    CHECK(pt_ctx_new(NULL, &ctx, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "PARTITA_MEMORY_LIMIT");
    CHECK_CONTAINS(err.msg, "12 parsecs");
    unsetenv("PARTITA_MEMORY_LIMIT");
    unsetenv("PARTITA_THREADS");
    if (tmp) setenv("TMPDIR", saved_tmp, 1);
}
