/*
 * exec_job.c - jobs made of tasks: the per-job task arena, dependency
 * tracking (a pending-dependency counter per task and a list of dependents),
 * running a task with its retry policy, failure and cancellation that spread
 * through the DAG, futures, per-task records and pt_parallel_for.
 *
 * The hot path (create, submit, run, finish) takes no lock other than the
 * arena mutex and a per-task spin lock, and allocates only once per chunk of
 * tasks; retries, failures and records live on side paths.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "exec/exec_internal.h"
#include "partita/exec.h"

/* Tasks per arena chunk: large enough that allocation is rare, small enough
 * that a job of a few tasks stays small. */
#define CHUNK_SHIFT 12
#define CHUNK_TASKS ((int64_t)1 << CHUNK_SHIFT)

typedef struct rec_slot {
    pt_task_record rec;
    int64_t submit_idx;  /* -1 until submitted */
} rec_slot;

struct pt_job {
    pt_pool *pool;
    char *name;
    int max_retries;
    int64_t backoff_ns, max_backoff_ns;
    bool record;

    pthread_mutex_t mu;  /* the arena */
    pt_task **chunks;
    rec_slot **rec_chunks;
    int64_t nchunks, chunks_cap, ntasks;
    _Atomic int any_extra;  /* some task holds dep_more or err to free */

    _Atomic int64_t submitted;
    _Atomic int64_t nfailed, ncanceled, nretries;
    _Atomic int canceled;
    _Atomic(pt_task *) first_fail;
    /* Padding keeps the counter every finishing worker hits off the lines
     * the submitting thread writes (the struct itself is only malloc-aligned). */
    char pad0[PT__CACHELINE];
    _Atomic int64_t outstanding;  /* submitted, not finished */
    char pad1[PT__CACHELINE - sizeof(int64_t)];

    pt_task_record *records;
    int64_t nrecords;
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static void task_lock(pt_task *t) {
    while (atomic_exchange_explicit(&t->lock, 1, memory_order_acquire)) {
        while (atomic_load_explicit(&t->lock, memory_order_relaxed)) {
        }
    }
}

static void task_unlock(pt_task *t) { atomic_store_explicit(&t->lock, 0, memory_order_release); }

static int state_final(uint8_t s) {
    return s == PT_TASK_DONE || s == PT_TASK_FAILED || s == PT_TASK_CANCELED;
}

static rec_slot *rec_of(pt_job *job, const pt_task *t) {
    return &job->rec_chunks[t->id >> CHUNK_SHIFT][t->id & (CHUNK_TASKS - 1)];
}

static const char *job_prefix(const pt_job *job, char *buf, size_t cap) {
    if (job && job->name)
        snprintf(buf, cap, "job '%s': ", job->name);
    else
        buf[0] = '\0';
    return buf;
}

/* Backoff before retry number `retry` (1 = first): backoff_ns doubled per
 * retry, capped, without overflowing. */
static int64_t backoff_for(int64_t base, int64_t cap, int retry) {
    int64_t d = base;
    for (int i = 1; i < retry && d < cap; i++) d = d > INT64_MAX / 2 ? INT64_MAX : d * 2;
    return d < cap ? d : cap;
}

/* The text a failed task reports: its own message, or the status text when
 * it set none, with the retry count for an exhausted transient failure. */
static void format_failure(pt_error *dst, pt_status s, const pt_error *e, int retries) {
    const char *msg = e->msg[0] ? e->msg : pt_status_str(s);
    if (s == PT_ETRANSIENT)
        pt_error_set(dst, s, "%s (after %d retries)", msg, retries);
    else
        pt_error_set(dst, s, "%s", msg);
}

void pt_job_opts_init(pt_job_opts *o) {
    if (!o) return;
    o->max_retries = 3;
    o->backoff_ns = 1000000;
    o->max_backoff_ns = 100000000;
    o->record = false;
    o->name = NULL;
}

/* ------------------------------------------------------------------------ */
/* Jobs and the task arena                                                  */
/* ------------------------------------------------------------------------ */

pt_status pt_job_new(pt_pool *pool, const pt_job_opts *opts, pt_job **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_job_new: out is NULL");
    *out = NULL;
    if (!pool) return pt_error_set(err, PT_EINVAL, "pt_job_new: pool is NULL");
    pt_job_opts def;
    pt_job_opts_init(&def);
    if (!opts) opts = &def;
    if (opts->max_retries < 0)
        return pt_error_set(err, PT_EINVAL, "pt_job_new: max_retries must be >= 0, got %d",
                            opts->max_retries);
    if (opts->backoff_ns < 0 || opts->max_backoff_ns < 0)
        return pt_error_set(err, PT_EINVAL,
                            "pt_job_new: backoff_ns and max_backoff_ns must be >= 0");
    pt_job *job = pt_calloc(1, sizeof(pt_job));
    if (!job) return pt_error_set(err, PT_ENOMEM, "pt_job_new: out of memory");
    if (opts->name && !(job->name = pt_strdup(opts->name))) {
        pt_free(job);
        return pt_error_set(err, PT_ENOMEM, "pt_job_new: out of memory");
    }
    job->pool = pool;
    job->max_retries = opts->max_retries;
    job->backoff_ns = opts->backoff_ns;
    job->max_backoff_ns = opts->max_backoff_ns;
    job->record = opts->record;
    pthread_mutex_init(&job->mu, NULL);
    atomic_init(&job->any_extra, 0);
    atomic_init(&job->submitted, 0);
    atomic_init(&job->nfailed, 0);
    atomic_init(&job->ncanceled, 0);
    atomic_init(&job->nretries, 0);
    atomic_init(&job->canceled, 0);
    atomic_init(&job->first_fail, NULL);
    atomic_init(&job->outstanding, 0);
    *out = job;
    return PT_OK;
}

static int job_grow(pt_job *job) {
    if (job->nchunks == job->chunks_cap) {
        int64_t cap = job->chunks_cap ? 2 * job->chunks_cap : 8;
        pt_task **nc = pt_realloc(job->chunks, (size_t)cap * sizeof(*nc));
        if (!nc) return 0;
        job->chunks = nc;
        if (job->record) {
            rec_slot **nr = pt_realloc(job->rec_chunks, (size_t)cap * sizeof(*nr));
            if (!nr) return 0;
            job->rec_chunks = nr;
        }
        job->chunks_cap = cap;
    }
    pt_task *c = pt_malloc((size_t)CHUNK_TASKS * sizeof(pt_task));
    if (!c) return 0;
    if (job->record) {
        rec_slot *r = pt_malloc((size_t)CHUNK_TASKS * sizeof(rec_slot));
        if (!r) {
            pt_free(c);
            return 0;
        }
        job->rec_chunks[job->nchunks] = r;
    }
    job->chunks[job->nchunks++] = c;
    return 1;
}

pt_status pt_task_new(pt_job *job, pt_task_fn fn, void *arg, pt_task **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_task_new: out is NULL");
    *out = NULL;
    if (!job) return pt_error_set(err, PT_EINVAL, "pt_task_new: job is NULL");
    if (!fn) return pt_error_set(err, PT_EINVAL, "pt_task_new: fn is NULL");
    pthread_mutex_lock(&job->mu);
    if (job->ntasks == job->nchunks * CHUNK_TASKS && !job_grow(job)) {
        pthread_mutex_unlock(&job->mu);
        return pt_error_set(err, PT_ENOMEM, "pt_task_new: out of memory (%lld tasks in job)",
                            (long long)job->ntasks);
    }
    int64_t id = job->ntasks++;
    pt_task *t = &job->chunks[id >> CHUNK_SHIFT][id & (CHUNK_TASKS - 1)];
    rec_slot *r = job->record ? &job->rec_chunks[id >> CHUNK_SHIFT][id & (CHUNK_TASKS - 1)] : NULL;
    pthread_mutex_unlock(&job->mu);
    memset(t, 0, sizeof *t);
    t->fn = fn;
    t->arg = arg;
    t->job = job;
    t->id = id;
    atomic_init(&t->pending, 1);  /* held until submitted */
    atomic_init(&t->state, PT_TASK_CREATED);
    atomic_init(&t->lock, 0);
    atomic_init(&t->dep_failed, 0);
    if (r) {
        memset(r, 0, sizeof *r);
        r->rec.worker = -1;
        r->submit_idx = -1;
    }
    *out = t;
    return PT_OK;
}

pt_status pt_task_depends(pt_task *task, pt_task *dep, pt_error *err) {
    if (!task || !dep)
        return pt_error_set(err, PT_EINVAL, "pt_task_depends: %s is NULL", task ? "dep" : "task");
    if (task->job != dep->job)
        return pt_error_set(err, PT_EINVAL,
                            "pt_task_depends: task %lld and dep %lld belong to different jobs",
                            (long long)task->id, (long long)dep->id);
    if (task == dep)
        return pt_error_set(err, PT_EINVAL, "pt_task_depends: task %lld cannot depend on itself",
                            (long long)task->id);
    if (atomic_load_explicit(&task->state, memory_order_acquire) != PT_TASK_CREATED)
        return pt_error_set(err, PT_EINVAL, "pt_task_depends: task %lld is already submitted",
                            (long long)task->id);
    pt_status st = PT_OK;
    task_lock(dep);
    uint8_t ds = atomic_load_explicit(&dep->state, memory_order_relaxed);
    if (state_final(ds)) {
        /* Finished already: nothing to wait for, but a failure still
         * cancels the dependent. */
        if (ds != PT_TASK_DONE) atomic_store_explicit(&task->dep_failed, 1, memory_order_relaxed);
    } else if (dep->ndeps < 2) {
        dep->dep_inline[dep->ndeps++] = task;
        atomic_fetch_add_explicit(&task->pending, 1, memory_order_relaxed);
    } else {
        int32_t k = dep->ndeps - 2;
        if (k == dep->dep_more_cap) {
            int32_t cap = dep->dep_more_cap ? 2 * dep->dep_more_cap : 4;
            pt_task **nm = cap > 0 ? pt_realloc(dep->dep_more, (size_t)cap * sizeof(*nm)) : NULL;
            if (!nm) {
                st = PT_ENOMEM;
                goto out;
            }
            if (!dep->dep_more) atomic_store_explicit(&dep->job->any_extra, 1, memory_order_relaxed);
            dep->dep_more = nm;
            dep->dep_more_cap = cap;
        }
        dep->dep_more[k] = task;
        dep->ndeps++;
        atomic_fetch_add_explicit(&task->pending, 1, memory_order_relaxed);
    }
out:
    task_unlock(dep);
    if (st != PT_OK)
        return pt_error_set(err, st, "pt_task_depends: out of memory (dependents of task %lld)",
                            (long long)dep->id);
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Finishing tasks                                                          */
/* ------------------------------------------------------------------------ */

static void job_cancel_internal(pt_job *job) {
    if (!atomic_exchange_explicit(&job->canceled, 1, memory_order_seq_cst))
        pt__pool_expedite(job->pool, job);
}

/* Puts `t` (and, without recursion, every dependent that it cancels in
 * turn) into a final state, releases its dependents and counts it out of
 * its job. With wid >= 0 one dependent made ready is returned for the
 * caller to run next instead of going through the deque. */
static pt_task *finish_tasks(pt_pool *p, int wid, pt_task *t, uint8_t state, pt_status status,
                             uint8_t reason) {
    pt_task *cancel_list = NULL, *cont = NULL;
    for (;;) {
        pt_job *job = t->job;
        t->status = status;
        t->cancel_reason = reason;
        if (state == PT_TASK_CANCELED)
            atomic_fetch_add_explicit(&job->ncanceled, 1, memory_order_relaxed);
        else if (state == PT_TASK_FAILED)
            atomic_fetch_add_explicit(&job->nfailed, 1, memory_order_relaxed);
        if (job->record) {
            rec_slot *r = rec_of(job, t);
            r->rec.status = status;
            if (r->rec.attempts > 0) r->rec.end_ns = pt_now_ns();
        }
        /* The final state closes the dependents list (pt_task_depends checks
         * it under the same lock) and publishes the result to waiters. */
        task_lock(t);
        int32_t nd = t->ndeps;
        atomic_store_explicit(&t->state, state, memory_order_seq_cst);
        task_unlock(t);
        pt__pool_task_finished(p);
        for (int32_t i = 0; i < nd; i++) {
            pt_task *d = i < 2 ? t->dep_inline[i] : t->dep_more[i - 2];
            if (state != PT_TASK_DONE) atomic_store_explicit(&d->dep_failed, 1, memory_order_relaxed);
            if (atomic_fetch_sub_explicit(&d->pending, 1, memory_order_acq_rel) != 1) continue;
            if (atomic_load_explicit(&d->dep_failed, memory_order_relaxed) ||
                atomic_load_explicit(&job->canceled, memory_order_relaxed)) {
                d->next = cancel_list;
                cancel_list = d;
            } else {
                atomic_store_explicit(&d->state, PT_TASK_READY, memory_order_relaxed);
                if (!cont && wid >= 0)
                    cont = d;
                else
                    pt__pool_push(p, d);
            }
        }
        /* Last touch of the job: a waiter may free it once this reaches 0. */
        if (atomic_fetch_sub_explicit(&job->outstanding, 1, memory_order_seq_cst) == 1)
            pt__pool_job_idle(p);
        if (!cancel_list) break;
        t = cancel_list;
        cancel_list = t->next;
        t->next = NULL;
        state = PT_TASK_CANCELED;
        status = PT_ECANCELED;
        reason = atomic_load_explicit(&t->dep_failed, memory_order_relaxed) ? PT__CANCEL_DEP
                                                                             : PT__CANCEL_JOB;
    }
    return cont;
}

/* A task returned a failure: retry it, count it canceled, or fail the job.
 * Returns a continuation like finish_tasks. */
static pt_task *task_failed(pt_pool *p, int wid, pt_task *t, pt_status s, pt_error *e) {
    pt_job *job = t->job;
    int canceled = atomic_load_explicit(&job->canceled, memory_order_relaxed);
    /* A retry that cancellation prevents is a cancel, not an exhausted
     * retry budget; so is a PT_ECANCELED answer to pt_task_ctx_canceled. */
    if ((s == PT_ETRANSIENT && t->attempt < job->max_retries && canceled) ||
        (s == PT_ECANCELED && canceled))
        return finish_tasks(p, wid, t, PT_TASK_CANCELED, PT_ECANCELED, PT__CANCEL_JOB);
    if (s == PT_ETRANSIENT && t->attempt < job->max_retries) {
        atomic_fetch_add_explicit(&job->nretries, 1, memory_order_relaxed);
        t->attempt++;
        int64_t delay = backoff_for(job->backoff_ns, job->max_backoff_ns, t->attempt);
        atomic_store_explicit(&t->state, PT_TASK_WAITING, memory_order_relaxed);
        if (pt__pool_delay(p, t, pt__clock_ns() + delay)) return NULL;
        pt_sleep_ns(delay);  /* no memory for the delayed list: back off here */
        atomic_store_explicit(&t->state, PT_TASK_READY, memory_order_relaxed);
        return t;
    }
    pt_error *fe = pt_malloc(sizeof(pt_error));
    if (fe) {
        format_failure(fe, s, e, t->attempt);
        atomic_store_explicit(&job->any_extra, 1, memory_order_relaxed);
    }
    t->err = fe;
    pt_task *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&job->first_fail, &expected, t,
                                                memory_order_acq_rel, memory_order_relaxed))
        job_cancel_internal(job);
    return finish_tasks(p, wid, t, PT_TASK_FAILED, s, PT__CANCEL_NONE);
}

void pt__task_run(pt_pool *p, int wid, pt_task *t) {
    while (t) {
        pt_job *job = t->job;
        if (atomic_load_explicit(&job->canceled, memory_order_relaxed) ||
            atomic_load_explicit(&t->dep_failed, memory_order_relaxed)) {
            int dep = atomic_load_explicit(&t->dep_failed, memory_order_relaxed);
            t = finish_tasks(p, wid, t, PT_TASK_CANCELED, PT_ECANCELED,
                             dep ? PT__CANCEL_DEP : PT__CANCEL_JOB);
            continue;
        }
        rec_slot *r = job->record ? rec_of(job, t) : NULL;
        if (r) {
            if (t->attempt == 0) r->rec.start_ns = pt_now_ns();
            r->rec.attempts = t->attempt + 1;
            r->rec.worker = wid;
        }
        atomic_store_explicit(&t->state, PT_TASK_RUNNING, memory_order_relaxed);
        pt_task_ctx tc = {.task = t, .job = job, .worker = wid, .attempt = t->attempt};
        pt_error e;
        e.code = PT_OK;
        e.msg[0] = '\0';
        pt_status s = t->fn(&tc, t->arg, &e);
        if (s == PT_OK)
            t = finish_tasks(p, wid, t, PT_TASK_DONE, PT_OK, PT__CANCEL_NONE);
        else
            t = task_failed(p, wid, t, s, &e);
    }
}

/* ------------------------------------------------------------------------ */
/* Submitting and waiting                                                   */
/* ------------------------------------------------------------------------ */

pt_status pt_task_submit(pt_task *task, pt_error *err) {
    if (!task) return pt_error_set(err, PT_EINVAL, "pt_task_submit: task is NULL");
    uint8_t expected = PT_TASK_CREATED;
    if (!atomic_compare_exchange_strong_explicit(&task->state, &expected, PT_TASK_WAITING,
                                                 memory_order_acq_rel, memory_order_relaxed))
        return pt_error_set(err, PT_EINVAL, "pt_task_submit: task %lld is already submitted",
                            (long long)task->id);
    pt_job *job = task->job;
    int64_t idx = atomic_fetch_add_explicit(&job->submitted, 1, memory_order_relaxed);
    if (job->record) rec_of(job, task)->submit_idx = idx;
    atomic_fetch_add_explicit(&job->outstanding, 1, memory_order_seq_cst);
    if (atomic_fetch_sub_explicit(&task->pending, 1, memory_order_acq_rel) == 1) {
        if (atomic_load_explicit(&task->dep_failed, memory_order_relaxed) ||
            atomic_load_explicit(&job->canceled, memory_order_relaxed)) {
            int dep = atomic_load_explicit(&task->dep_failed, memory_order_relaxed);
            (void)finish_tasks(job->pool, -1, task, PT_TASK_CANCELED, PT_ECANCELED,
                               dep ? PT__CANCEL_DEP : PT__CANCEL_JOB);
        } else {
            atomic_store_explicit(&task->state, PT_TASK_READY, memory_order_relaxed);
            pt__pool_push(job->pool, task);
        }
    }
    return PT_OK;
}

pt_task_state pt_task_state_get(const pt_task *task) {
    if (!task) return PT_TASK_CREATED;
    return (pt_task_state)atomic_load_explicit(&((pt_task *)task)->state, memory_order_acquire);
}

static int task_is_final(const void *arg) {
    pt_task *t = (pt_task *)arg;
    return state_final(atomic_load_explicit(&t->state, memory_order_seq_cst));
}

pt_status pt_task_wait(pt_task *task, pt_error *err) {
    if (!task) return pt_error_set(err, PT_EINVAL, "pt_task_wait: task is NULL");
    if (atomic_load_explicit(&task->state, memory_order_acquire) == PT_TASK_CREATED)
        return pt_error_set(err, PT_EINVAL, "pt_task_wait: task %lld was never submitted",
                            (long long)task->id);
    pt_pool *p = task->job->pool;
    if (!task_is_final(task)) {
        if (pt__pool_is_worker(p))
            pt__pool_help_until(p, task_is_final, task);
        else
            pt__pool_block_until(p, 0, task_is_final, task);
    }
    uint8_t s = atomic_load_explicit(&task->state, memory_order_acquire);
    if (s == PT_TASK_DONE) return PT_OK;
    if (s == PT_TASK_FAILED) {
        if (task->err) {
            if (err) *err = *task->err;
            return task->status;
        }
        return pt_error_set(err, task->status, "%s", pt_status_str(task->status));
    }
    return pt_error_set(err, PT_ECANCELED, "task %lld canceled: %s", (long long)task->id,
                        task->cancel_reason == PT__CANCEL_DEP ? "a dependency failed or was canceled"
                                                              : "the job was canceled");
}

void pt_task_set_result(pt_task_ctx *tc, void *result) {
    if (tc && tc->task) tc->task->result = result;
}

void *pt_task_result(const pt_task *task) { return task ? task->result : NULL; }

int pt_task_ctx_worker(const pt_task_ctx *tc) { return tc ? tc->worker : -1; }
int pt_task_ctx_attempt(const pt_task_ctx *tc) { return tc ? tc->attempt : 0; }

bool pt_task_ctx_canceled(const pt_task_ctx *tc) {
    return tc && tc->job && atomic_load_explicit(&tc->job->canceled, memory_order_relaxed);
}

void pt_task_ctx_add_bytes(pt_task_ctx *tc, int64_t bytes) {
    if (tc && tc->task && tc->job->record) rec_of(tc->job, tc->task)->rec.bytes += bytes;
}

int pt__job_canceled(const pt_job *job) {
    return atomic_load_explicit(&((pt_job *)job)->canceled, memory_order_seq_cst);
}

void pt_job_cancel(pt_job *job) {
    if (job) job_cancel_internal(job);
}

static int job_is_idle(const void *arg) {
    pt_job *job = (pt_job *)arg;
    return atomic_load_explicit(&job->outstanding, memory_order_seq_cst) == 0;
}

/* Lays the records out in submission order (all tasks are finished). */
static void build_records(pt_job *job) {
    int64_t n = atomic_load_explicit(&job->submitted, memory_order_relaxed);
    pt_free(job->records);
    job->records = NULL;
    job->nrecords = 0;
    if (n == 0) return;
    pt_task_record *out = pt_malloc((size_t)n * sizeof(pt_task_record));
    if (!out) return;  /* pt_job_records then reports none */
    for (int64_t id = 0; id < job->ntasks; id++) {
        rec_slot *r = &job->rec_chunks[id >> CHUNK_SHIFT][id & (CHUNK_TASKS - 1)];
        if (r->submit_idx >= 0 && r->submit_idx < n) out[r->submit_idx] = r->rec;
    }
    job->records = out;
    job->nrecords = n;
}

pt_status pt_job_wait(pt_job *job, pt_error *err) {
    if (!job) return pt_error_set(err, PT_EINVAL, "pt_job_wait: job is NULL");
    pt_pool *p = job->pool;
    if (!job_is_idle(job)) {
        if (pt__pool_is_worker(p))
            pt__pool_help_until(p, job_is_idle, job);
        else
            pt__pool_block_until(p, 1, job_is_idle, job);
    }
    if (job->record) build_records(job);
    char pre[320];
    job_prefix(job, pre, sizeof pre);
    pt_task *f = atomic_load_explicit(&job->first_fail, memory_order_acquire);
    if (f)
        return pt_error_set(err, f->status, "%stask %lld: %s", pre, (long long)f->id,
                            f->err ? f->err->msg : pt_status_str(f->status));
    if (atomic_load_explicit(&job->canceled, memory_order_acquire))
        return pt_error_set(err, PT_ECANCELED, "%scanceled", pre);
    return PT_OK;
}

void pt_job_free(pt_job *job) {
    if (!job) return;
    if (!job_is_idle(job)) {
        /* A caller bug, but finishing the tasks beats freeing under them. */
        pt_job_cancel(job);
        (void)pt_job_wait(job, NULL);
    }
    int extra = atomic_load_explicit(&job->any_extra, memory_order_acquire);
    for (int64_t c = 0; c < job->nchunks; c++) {
        if (extra) {
            int64_t n = job->ntasks - c * CHUNK_TASKS;
            if (n > CHUNK_TASKS) n = CHUNK_TASKS;
            for (int64_t i = 0; i < n; i++) {
                pt_free(job->chunks[c][i].dep_more);
                pt_free(job->chunks[c][i].err);
            }
        }
        pt_free(job->chunks[c]);
        if (job->record) pt_free(job->rec_chunks[c]);
    }
    pt_free(job->chunks);
    pt_free(job->rec_chunks);
    pt_free(job->records);
    pt_free(job->name);
    pthread_mutex_destroy(&job->mu);
    pt_free(job);
}

const pt_task_record *pt_job_records(const pt_job *job, int64_t *count) {
    if (count) *count = job ? job->nrecords : 0;
    return job ? job->records : NULL;
}

void pt_job_stats_get(const pt_job *job, pt_job_stats *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!job) return;
    pt_job *j = (pt_job *)job;
    out->failed = atomic_load_explicit(&j->nfailed, memory_order_acquire);
    out->canceled = atomic_load_explicit(&j->ncanceled, memory_order_acquire);
    out->retries = atomic_load_explicit(&j->nretries, memory_order_acquire);
    int64_t outstanding = atomic_load_explicit(&j->outstanding, memory_order_acquire);
    out->submitted = atomic_load_explicit(&j->submitted, memory_order_acquire);
    int64_t succeeded = out->submitted - outstanding - out->failed - out->canceled;
    out->succeeded = succeeded > 0 ? succeeded : 0;
}

/* ------------------------------------------------------------------------ */
/* Parallel for                                                             */
/* ------------------------------------------------------------------------ */

/* Iterations per task are batched (unless records are asked for, which are
 * per iteration). A batch resumes at `cur` after a transient failure, so
 * each i gets exactly one successful call; the task's id and attempt follow
 * the current i, so messages and the retry budget are per iteration. */
typedef struct pf_batch {
    pt_for_fn fn;
    void *arg;
    int64_t cur, end;
} pf_batch;

static pt_status pf_run(pt_task_ctx *tc, void *arg, pt_error *err) {
    pf_batch *b = arg;
    pt_task *t = tc->task;
    for (; b->cur < b->end; b->cur++) {
        if (atomic_load_explicit(&tc->job->canceled, memory_order_relaxed)) return PT_ECANCELED;
        t->id = b->cur;
        pt_status s = b->fn(tc, b->arg, b->cur, err);
        if (s != PT_OK) return s;
        if (tc->attempt) {
            tc->attempt = 0;
            t->attempt = 0;
        }
    }
    return PT_OK;
}

static pt_status pf_serial(int64_t n, pt_for_fn fn, void *arg, const pt_job_opts *o,
                           pt_error *err) {
    for (int64_t i = 0; i < n; i++) {
        for (int attempt = 0;; attempt++) {
            pt_task_ctx tc = {.task = NULL, .job = NULL, .worker = -1, .attempt = attempt};
            pt_error e;
            e.code = PT_OK;
            e.msg[0] = '\0';
            pt_status s = fn(&tc, arg, i, &e);
            if (s == PT_OK) break;
            if (s == PT_ETRANSIENT && attempt < o->max_retries) {
                pt_sleep_ns(backoff_for(o->backoff_ns, o->max_backoff_ns, attempt + 1));
                continue;
            }
            pt_error fe;
            format_failure(&fe, s, &e, attempt);
            char pre[320];
            job_prefix(NULL, pre, sizeof pre);
            if (o->name) snprintf(pre, sizeof pre, "job '%s': ", o->name);
            return pt_error_set(err, s, "%stask %lld: %s", pre, (long long)i, fe.msg);
        }
    }
    return PT_OK;
}

pt_status pt_parallel_for(pt_pool *pool, int64_t n, pt_for_fn fn, void *arg,
                          const pt_job_opts *opts, pt_error *err) {
    if (n < 0)
        return pt_error_set(err, PT_EINVAL, "pt_parallel_for: n must be >= 0, got %lld",
                            (long long)n);
    if (!fn) return pt_error_set(err, PT_EINVAL, "pt_parallel_for: fn is NULL");
    pt_job_opts def;
    pt_job_opts_init(&def);
    if (!opts) opts = &def;
    if (n == 0) return PT_OK;
    if (!pool) {
        if (opts->max_retries < 0)
            return pt_error_set(err, PT_EINVAL, "pt_parallel_for: max_retries must be >= 0");
        return pf_serial(n, fn, arg, opts, err);
    }
    int64_t nb = n;
    if (!opts->record) {
        /* Enough batches per thread to balance uneven iterations. */
        int64_t want = (int64_t)pt_pool_threads(pool) * 64;
        if (want < n / 16384) want = n / 16384;
        if (nb > want) nb = want;
    }
    pf_batch *b = pt_malloc((size_t)nb * sizeof(pf_batch));
    if (!b) return pt_error_set(err, PT_ENOMEM, "pt_parallel_for: out of memory");
    pt_job *job;
    pt_status s = pt_job_new(pool, opts, &job, err);
    if (s != PT_OK) {
        pt_free(b);
        return s;
    }
    for (int64_t k = 0; k < nb && s == PT_OK; k++) {
        b[k].fn = fn;
        b[k].arg = arg;
        b[k].cur = n / nb * k + (k < n % nb ? k : n % nb);
        b[k].end = b[k].cur + n / nb + (k < n % nb ? 1 : 0);
        pt_task *t;
        s = pt_task_new(job, pf_run, &b[k], &t, err);
        if (s == PT_OK) s = pt_task_submit(t, err);
    }
    if (s != PT_OK) {
        pt_job_cancel(job);
        (void)pt_job_wait(job, NULL);
    } else {
        s = pt_job_wait(job, err);
    }
    pt_job_free(job);
    pt_free(b);
    return s;
}
