/*
 * partita/exec.h - the task runtime: a work-stealing thread pool, jobs made
 * of tasks with dependencies (a DAG), futures, parallel-for, cancellation,
 * bounded retries with backoff, and per-task records. Also the execution
 * context `pt_ctx`, which owns a pool, a memory budget and a spill directory.
 *
 * The runtime knows nothing about tables or files: a task is a function and
 * an argument.
 */
#ifndef PARTITA_EXEC_H
#define PARTITA_EXEC_H

#include <stdbool.h>

#include "partita/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt_pool pt_pool;
typedef struct pt_job pt_job;
typedef struct pt_task pt_task;

/* Number of online cores, or PARTITA_THREADS when set to a positive number. */
PT_API int pt_default_threads(void);

/* ------------------------------------------------------------------------ */
/* Pool                                                                     */
/* ------------------------------------------------------------------------ */

/* Starts a pool with `nthreads` workers (<= 0: pt_default_threads()). Each
 * worker has its own deque; idle workers steal from others and sleep when
 * there is no work. Fails with PT_ENOMEM or PT_EINTERNAL (thread creation). */
PT_API pt_status pt_pool_new(int nthreads, pt_pool **out, pt_error *err) PT_MUST_USE;
/* Stops the workers after they finish the tasks already queued, and frees the
 * pool. Jobs must have been waited for and freed. NULL is ignored. */
PT_API void pt_pool_free(pt_pool *p);
PT_API int pt_pool_threads(const pt_pool *p);
/* Index of the calling worker in [0, threads), or -1 outside the pool. */
PT_API int pt_pool_worker_id(void);

/* ------------------------------------------------------------------------ */
/* Jobs and tasks                                                           */
/* ------------------------------------------------------------------------ */

/* A task function. It returns PT_OK, or fills `err` and returns a failure.
 * Returning PT_ETRANSIENT asks for a retry (bounded by the job's policy);
 * any other failure, or a transient failure after the last retry, fails the
 * job: queued and not yet started tasks of the job are canceled, and the
 * first failure's message is what pt_job_wait reports. `ctx` gives access
 * to the task's own record and to the cancellation flag. */
typedef struct pt_task_ctx pt_task_ctx;
typedef pt_status (*pt_task_fn)(pt_task_ctx *tc, void *arg, pt_error *err);

typedef struct pt_job_opts {
    int max_retries;         /* retries of a transient failure (default 3) */
    int64_t backoff_ns;      /* first backoff, doubled each retry (default 1 ms) */
    int64_t max_backoff_ns;  /* cap (default 100 ms) */
    bool record;             /* keep a pt_task_record per task (default false) */
    const char *name;        /* for messages and reports (copied) */
} pt_job_opts;
PT_API void pt_job_opts_init(pt_job_opts *o);

/* Creates a job on `pool` (opts may be NULL for defaults). */
PT_API pt_status pt_job_new(pt_pool *pool, const pt_job_opts *opts, pt_job **out, pt_error *err)
    PT_MUST_USE;
/* Creates a task in `job`. The task does not run until submitted. The task
 * handle belongs to the job and stays valid until pt_job_free. Tasks are
 * allocated from the job's arena, so creating millions is cheap. */
PT_API pt_status pt_task_new(pt_job *job, pt_task_fn fn, void *arg, pt_task **out, pt_error *err)
    PT_MUST_USE;
/* Declares that `task` runs only after `dep` has finished successfully. Both
 * must belong to the same job and `task` must not be submitted yet. If `dep`
 * fails or is canceled, `task` is canceled. Fails with PT_EINVAL otherwise. */
PT_API pt_status pt_task_depends(pt_task *task, pt_task *dep, pt_error *err) PT_MUST_USE;
/* Submits a task: it runs once all its dependencies have finished. Every
 * dependency of a submitted task must be submitted too (and the graph must
 * be acyclic), or pt_job_wait waits for ever. */
PT_API pt_status pt_task_submit(pt_task *task, pt_error *err) PT_MUST_USE;

/* Futures. */
typedef enum pt_task_state {
    PT_TASK_CREATED = 0,
    PT_TASK_WAITING,  /* submitted, dependencies pending */
    PT_TASK_READY,    /* queued */
    PT_TASK_RUNNING,
    PT_TASK_DONE,
    PT_TASK_FAILED,
    PT_TASK_CANCELED
} pt_task_state;
PT_API pt_task_state pt_task_state_get(const pt_task *task);
/* Blocks until the task is done, failed or canceled; returns its status and
 * copies its message to err. A worker thread that waits helps run tasks
 * meanwhile, so waiting inside a task does not deadlock the pool. */
PT_API pt_status pt_task_wait(pt_task *task, pt_error *err);
/* A task may publish a result pointer (owned by the caller's convention). */
PT_API void pt_task_set_result(pt_task_ctx *tc, void *result);
PT_API void *pt_task_result(const pt_task *task);

/* Inside a task: the worker index, the attempt number (0 = first), whether
 * the job was canceled (long tasks should poll it and return PT_ECANCELED),
 * and a byte counter for the task's record. */
PT_API int pt_task_ctx_worker(const pt_task_ctx *tc);
PT_API int pt_task_ctx_attempt(const pt_task_ctx *tc);
PT_API bool pt_task_ctx_canceled(const pt_task_ctx *tc);
PT_API void pt_task_ctx_add_bytes(pt_task_ctx *tc, int64_t bytes);

/* Cancels the job: tasks not yet started are canceled; running tasks see
 * pt_task_ctx_canceled(). pt_job_wait then returns PT_ECANCELED unless a
 * task failed first. */
PT_API void pt_job_cancel(pt_job *job);
/* Waits until every submitted task of the job has finished, failed or been
 * canceled. Returns PT_OK when all succeeded, else the first failure with its
 * message (prefixed by the job name when set). */
PT_API pt_status pt_job_wait(pt_job *job, pt_error *err);
/* Frees the job and its tasks. The job must have been waited for (or have no
 * submitted tasks). NULL is ignored. */
PT_API void pt_job_free(pt_job *job);

/* Per-task record (when opts.record was set). Times are pt_now_ns(). */
typedef struct pt_task_record {
    int64_t start_ns;
    int64_t end_ns;
    int64_t bytes;
    int32_t worker;
    int32_t attempts;
    pt_status status;
} pt_task_record;
/* Returns the records of finished tasks in submission order and their count;
 * the array belongs to the job. */
PT_API const pt_task_record *pt_job_records(const pt_job *job, int64_t *count);

/* Job counters. */
typedef struct pt_job_stats {
    int64_t submitted, succeeded, failed, canceled, retries;
} pt_job_stats;
PT_API void pt_job_stats_get(const pt_job *job, pt_job_stats *out);

/* ------------------------------------------------------------------------ */
/* Parallel for                                                             */
/* ------------------------------------------------------------------------ */

/* Runs fn(tc, arg, i, err) for i in [0, n) as n tasks of one job (retry
 * policy from opts, which may be NULL) and waits. Returns the first failure.
 * With a NULL pool the loop runs in the calling thread. */
typedef pt_status (*pt_for_fn)(pt_task_ctx *tc, void *arg, int64_t i, pt_error *err);
PT_API pt_status pt_parallel_for(pt_pool *pool, int64_t n, pt_for_fn fn, void *arg,
                                 const pt_job_opts *opts, pt_error *err) PT_MUST_USE;

/* ------------------------------------------------------------------------ */
/* Execution context                                                        */
/* ------------------------------------------------------------------------ */

typedef struct pt_comm pt_comm;

typedef struct pt_ctx_opts {
    int threads;            /* <= 0: pt_default_threads() */
    int64_t memory_limit;   /* bytes; 0 = unlimited (PARTITA_MEMORY_LIMIT) */
    const char *spill_dir;  /* NULL: $TMPDIR or /tmp */
    /* The ranks that run this context's plans together. NULL: the job's
     * comm (pt_comm_world) when the process was started by mpirun, unless
     * `local` is set or PARTITA_DISTRIBUTED=0; otherwise none. With a comm
     * of more than one rank, collecting a frame is a collective: every rank
     * calls it, scans its share of the input and gets the whole result. */
    pt_comm *comm;
    bool local;
} pt_ctx_opts;
PT_API void pt_ctx_opts_init(pt_ctx_opts *o);

typedef struct pt_ctx pt_ctx;
/* Creates a context: a pool, a memory budget and a spill directory name.
 * opts may be NULL (defaults, environment honoured). */
PT_API pt_status pt_ctx_new(const pt_ctx_opts *opts, pt_ctx **out, pt_error *err) PT_MUST_USE;
PT_API void pt_ctx_free(pt_ctx *ctx);
PT_API pt_pool *pt_ctx_pool(pt_ctx *ctx);
PT_API pt_mem *pt_ctx_mem(pt_ctx *ctx);
/* A soft view of the context's budget (see pt_mem_new_soft) for transient
 * buffers of a pipeline batch: counted against the budget, never refused.
 * Operators that hold state (hash tables, sort runs) use pt_ctx_mem and
 * spill when a reservation fails. */
PT_API pt_mem *pt_ctx_mem_soft(pt_ctx *ctx);
PT_API int pt_ctx_threads(const pt_ctx *ctx);
/* The context's comm, or NULL when plans run in this process alone. */
PT_API pt_comm *pt_ctx_comm(const pt_ctx *ctx);
PT_API const char *pt_ctx_spill_dir(const pt_ctx *ctx);
/* Bytes written to spill files by the context's operators so far. */
PT_API int64_t pt_ctx_spilled_bytes(const pt_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
