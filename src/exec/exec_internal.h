/*
 * exec_internal.h - structures shared by the files of the exec layer: the
 * task and job layouts (exec_job.c) and the pool's worker, deque and queue
 * interface (exec_pool.c). Not part of the public API.
 */
#ifndef PT_EXEC_INTERNAL_H
#define PT_EXEC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "partita/exec.h"

#define PT__CACHELINE 64

/* Why a task was canceled, for the message pt_task_wait reports. */
enum { PT__CANCEL_NONE = 0, PT__CANCEL_JOB, PT__CANCEL_DEP };

/* A task lives in its job's arena; the layout keeps it near 100 bytes so
 * that a million of them stay cheap. */
struct pt_task {
    pt_task_fn fn;
    void *arg;
    pt_job *job;
    void *result;
    pt_task *next;             /* intrusive link: injection queue, cancel worklist */
    pt_task *dep_inline[2];    /* first dependents; most tasks have at most two */
    pt_task **dep_more;        /* further dependents (pt_malloc'd) */
    int32_t ndeps;             /* dependents in dep_inline + dep_more */
    int32_t dep_more_cap;
    int64_t id;                /* creation index: "task 17" in messages */
    pt_error *err;             /* the failure message; allocated on failure only */
    _Atomic int32_t pending;   /* unfinished dependencies, +1 until submitted */
    int32_t attempt;           /* 0 = first attempt */
    pt_status status;
    _Atomic uint8_t state;     /* pt_task_state */
    _Atomic uint8_t lock;      /* spin lock guarding the dependents list */
    _Atomic uint8_t dep_failed;
    uint8_t cancel_reason;
};

struct pt_task_ctx {
    pt_task *task;   /* NULL in the serial parallel_for */
    pt_job *job;
    int worker;
    int attempt;
};

/* ---- pool interface used by exec_job.c ---- */

/* Makes a READY task runnable: the calling worker's deque when the caller is
 * a worker of `p`, else the injection queue. Wakes a sleeper when needed. */
void pt__pool_push(pt_pool *p, pt_task *t);
/* Re-queues `t` once pt__clock_ns() reaches `deadline_ns` (a retry). Returns
 * false when out of memory (the caller then backs off inline). */
int pt__pool_delay(pt_pool *p, pt_task *t, int64_t deadline_ns);
/* Makes the delayed retries of `job` due now (the job was canceled). */
void pt__pool_expedite(pt_pool *p, const pt_job *job);
/* True when the calling thread is a worker of `p`. */
int pt__pool_is_worker(const pt_pool *p);
/* Runs other tasks until done(arg) holds; only for a worker of `p`. */
void pt__pool_help_until(pt_pool *p, int (*done)(const void *), const void *arg);
/* Blocks a non-worker thread until done(arg) holds. `job_wait` picks the
 * condition variable that task or job completions signal. */
void pt__pool_block_until(pt_pool *p, int job_wait, int (*done)(const void *), const void *arg);
/* Called after a task reached a final state / a job's last task finished. */
void pt__pool_task_finished(pt_pool *p);
void pt__pool_job_idle(pt_pool *p);
/* Monotonic clock for retry deadlines (the one the pool's timed waits use). */
int64_t pt__clock_ns(void);

/* ---- job interface used by exec_pool.c ---- */

/* Runs a READY task (and the continuations it makes ready) on worker `wid`. */
void pt__task_run(pt_pool *p, int wid, pt_task *t);
/* The job's cancel flag (seq_cst load). */
int pt__job_canceled(const pt_job *job);

/* Adds to the context's count of bytes written to spill files. */
void pt__ctx_add_spilled(pt_ctx *ctx, int64_t bytes);

#endif
