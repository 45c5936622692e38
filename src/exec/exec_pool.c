/*
 * exec_pool.c - the work-stealing thread pool. Each worker owns a Chase-Lev
 * deque (push and pop at the bottom, thieves take from the top); threads
 * outside the pool submit through a locked injection queue. Idle workers
 * spin briefly, then sleep on a condition variable. Sleep and wake follow a
 * "searching worker" protocol: a producer only pays for a wake-up (a
 * syscall) when no worker is searching for work and one is asleep, so a busy
 * pool runs without syscalls, and the seq_cst publish-then-check pairs on
 * both sides make lost wake-ups impossible. Retries wait in a small delayed
 * list that idle workers poll and time their sleep on.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec/exec_internal.h"
#include "partita/exec.h"

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() ((void)0)
#endif

/* Rounds of searching before a worker sleeps: the first ones only pause,
 * the later ones yield the core (the 2-core case, where the producer may
 * need it). */
#define SPIN_PAUSE_ROUNDS 64
#define SPIN_YIELD_ROUNDS 32
#define DEQUE_INITIAL_CAP 256
/* Most tasks a worker moves from the injection queue at once. */
#define INJECT_BATCH 32

/* ------------------------------------------------------------------------ */
/* Chase-Lev deque                                                          */
/* ------------------------------------------------------------------------ */

/* The slots are atomics so that a thief's speculative read of a slot the
 * owner is rewriting is not a data race (its CAS on `top` then fails). */
typedef struct dq_buf {
    int64_t mask;
    struct dq_buf *retired;  /* older buffers: thieves may still read them */
    _Atomic(pt_task *) slot[];
} dq_buf;

typedef struct deque {
    _Alignas(PT__CACHELINE) _Atomic int64_t top;
    _Alignas(PT__CACHELINE) _Atomic int64_t bottom;
    _Atomic(dq_buf *) buf;
} deque;

static dq_buf *dq_buf_new(int64_t cap) {
    dq_buf *b = pt_malloc(sizeof(dq_buf) + (size_t)cap * sizeof(_Atomic(pt_task *)));
    if (!b) return NULL;
    b->mask = cap - 1;
    b->retired = NULL;
    for (int64_t i = 0; i < cap; i++) atomic_init(&b->slot[i], NULL);
    return b;
}

static int dq_init(deque *d) {
    dq_buf *b = dq_buf_new(DEQUE_INITIAL_CAP);
    if (!b) return 0;
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    atomic_init(&d->buf, b);
    return 1;
}

static void dq_destroy(deque *d) {
    dq_buf *b = atomic_load_explicit(&d->buf, memory_order_relaxed);
    while (b) {
        dq_buf *next = b->retired;
        pt_free(b);
        b = next;
    }
}

/* Owner only. Returns 0 when the deque is full and cannot grow. */
static int dq_push(deque *d, pt_task *t) {
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    int64_t tp = atomic_load_explicit(&d->top, memory_order_acquire);
    dq_buf *a = atomic_load_explicit(&d->buf, memory_order_relaxed);
    if (b - tp > a->mask) {
        dq_buf *na = dq_buf_new(2 * (a->mask + 1));
        if (!na) return 0;
        for (int64_t i = tp; i < b; i++)
            atomic_store_explicit(&na->slot[i & na->mask],
                                  atomic_load_explicit(&a->slot[i & a->mask], memory_order_relaxed),
                                  memory_order_relaxed);
        na->retired = a;
        atomic_store_explicit(&d->buf, na, memory_order_release);
        a = na;
    }
    atomic_store_explicit(&a->slot[b & a->mask], t, memory_order_relaxed);
    /* seq_cst: publishes the slot and orders it before the producer's check
     * for sleeping workers (see notify). */
    atomic_store_explicit(&d->bottom, b + 1, memory_order_seq_cst);
    return 1;
}

/* Owner only. */
static pt_task *dq_pop(deque *d) {
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
    dq_buf *a = atomic_load_explicit(&d->buf, memory_order_relaxed);
    atomic_store_explicit(&d->bottom, b, memory_order_seq_cst);
    int64_t tp = atomic_load_explicit(&d->top, memory_order_seq_cst);
    if (tp > b) {
        atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
        return NULL;
    }
    pt_task *x = atomic_load_explicit(&a->slot[b & a->mask], memory_order_relaxed);
    if (tp == b) {
        /* The last element: race the thieves for it. */
        if (!atomic_compare_exchange_strong_explicit(&d->top, &tp, tp + 1, memory_order_seq_cst,
                                                     memory_order_relaxed))
            x = NULL;
        atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
    }
    return x;
}

static pt_task *dq_steal(deque *d) {
    int64_t tp = atomic_load_explicit(&d->top, memory_order_seq_cst);
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_seq_cst);
    if (tp >= b) return NULL;
    dq_buf *a = atomic_load_explicit(&d->buf, memory_order_acquire);
    pt_task *x = atomic_load_explicit(&a->slot[tp & a->mask], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&d->top, &tp, tp + 1, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return NULL;
    return x;
}

static int dq_nonempty(deque *d) {
    int64_t tp = atomic_load_explicit(&d->top, memory_order_seq_cst);
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_seq_cst);
    return b > tp;
}

/* ------------------------------------------------------------------------ */
/* Pool                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct worker {
    deque dq;
    pt_pool *pool;
    int id;
    int spinning;   /* counted in pool->nspinning */
    uint64_t rng;
    pthread_t thread;
} worker;

typedef struct delayed {
    int64_t deadline;
    pt_task *task;
} delayed;

struct pt_pool {
    void *raw;  /* the allocation this aligned struct lives in */
    int nthreads;
    int started;
    worker *workers;
    void *workers_raw;

    /* Injection queue: an intrusive FIFO through pt_task.next. */
    _Alignas(PT__CACHELINE) pthread_mutex_t inj_mu;
    pt_task *inj_head, *inj_tail;
    _Alignas(PT__CACHELINE) _Atomic int64_t inj_count;

    /* Sleep protocol. `idle` counts sleepers not yet claimed by a waker,
     * `tokens` the claims not yet consumed (both change under sleep_mu);
     * nspinning counts workers searching for work (woken ones included). */
    _Alignas(PT__CACHELINE) _Atomic int nspinning;
    _Alignas(PT__CACHELINE) _Atomic int idle;
    pthread_mutex_t sleep_mu;
    pthread_cond_t sleep_cv;
    int tokens;
    _Atomic int stop;

    /* Retries waiting for their backoff. */
    _Alignas(PT__CACHELINE) _Atomic int64_t ndelayed;
    pthread_mutex_t delay_mu;
    delayed *dl;
    int64_t dl_len, dl_cap;

    /* Threads outside the pool blocked in pt_task_wait / pt_job_wait. */
    _Alignas(PT__CACHELINE) _Atomic int ntask_waiters;
    _Atomic int njob_waiters;
    pthread_mutex_t wait_mu;
    pthread_cond_t task_cv, job_cv;
};

static _Thread_local worker *tls_worker;

int64_t pt__clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *alloc_aligned(size_t size, void **raw) {
    *raw = pt_malloc(size + PT__CACHELINE);
    if (!*raw) return NULL;
    uintptr_t a = ((uintptr_t)*raw + PT__CACHELINE - 1) & ~(uintptr_t)(PT__CACHELINE - 1);
    memset((void *)a, 0, size);
    return (void *)a;
}

int pt_pool_threads(const pt_pool *p) { return p ? p->nthreads : 0; }

int pt_pool_worker_id(void) { return tls_worker ? tls_worker->id : -1; }

int pt__pool_is_worker(const pt_pool *p) { return tls_worker && tls_worker->pool == p; }

static int cond_init_monotonic(pthread_cond_t *cv) {
    pthread_condattr_t at;
    if (pthread_condattr_init(&at) != 0) return 0;
    pthread_condattr_setclock(&at, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &at);
    pthread_condattr_destroy(&at);
    return rc == 0;
}

/* Wakes one sleeping worker and counts it as searching at once, so that the
 * producers after us do not wake a second one for the same work. */
static void wake_one(pt_pool *p) {
    pthread_mutex_lock(&p->sleep_mu);
    if (atomic_load_explicit(&p->idle, memory_order_relaxed) > 0) {
        atomic_fetch_sub_explicit(&p->idle, 1, memory_order_seq_cst);
        atomic_fetch_add_explicit(&p->nspinning, 1, memory_order_seq_cst);
        p->tokens++;
        pthread_cond_signal(&p->sleep_cv);
    }
    pthread_mutex_unlock(&p->sleep_mu);
}

/* Called after work was published with a seq_cst store. Either we see a
 * sleeper here, or the sleeper's recheck (after its seq_cst increment of
 * `idle`) sees our work. A searching worker will find the work itself. */
static void notify(pt_pool *p) {
    if (atomic_load_explicit(&p->nspinning, memory_order_seq_cst) == 0 &&
        atomic_load_explicit(&p->idle, memory_order_seq_cst) > 0)
        wake_one(p);
}

static void inj_push(pt_pool *p, pt_task *t) {
    t->next = NULL;
    pthread_mutex_lock(&p->inj_mu);
    if (p->inj_tail)
        p->inj_tail->next = t;
    else
        p->inj_head = t;
    p->inj_tail = t;
    atomic_fetch_add_explicit(&p->inj_count, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&p->inj_mu);
}

/* Takes one task from the injection queue and moves a share of the rest to
 * w's deque, so that the queue's lock is taken once per batch. */
static pt_task *inj_take(pt_pool *p, worker *w) {
    pthread_mutex_lock(&p->inj_mu);
    pt_task *first = p->inj_head;
    if (!first) {
        pthread_mutex_unlock(&p->inj_mu);
        return NULL;
    }
    int64_t count = atomic_load_explicit(&p->inj_count, memory_order_relaxed);
    int64_t extra = count / p->nthreads;
    if (extra > INJECT_BATCH) extra = INJECT_BATCH;
    pt_task *t = first->next;
    int64_t moved = 0;
    while (t && moved < extra) {
        /* Unlink before the push: once pushed, a thief may run the task and
         * its job may be freed. */
        pt_task *nx = t->next;
        t->next = NULL;
        if (!dq_push(&w->dq, t)) {
            t->next = nx;
            break;
        }
        t = nx;
        moved++;
    }
    p->inj_head = t;
    if (!t) p->inj_tail = NULL;
    atomic_fetch_sub_explicit(&p->inj_count, 1 + moved, memory_order_seq_cst);
    pthread_mutex_unlock(&p->inj_mu);
    first->next = NULL;
    return first;
}

void pt__pool_push(pt_pool *p, pt_task *t) {
    worker *w = tls_worker;
    if (!(w && w->pool == p && dq_push(&w->dq, t))) inj_push(p, t);
    notify(p);
}

/* ---- delayed retries ---- */

int pt__pool_delay(pt_pool *p, pt_task *t, int64_t deadline_ns) {
    pthread_mutex_lock(&p->delay_mu);
    if (p->dl_len == p->dl_cap) {
        int64_t cap = p->dl_cap ? 2 * p->dl_cap : 16;
        delayed *nd = pt_realloc(p->dl, (size_t)cap * sizeof(delayed));
        if (!nd) {
            pthread_mutex_unlock(&p->delay_mu);
            return 0;
        }
        p->dl = nd;
        p->dl_cap = cap;
    }
    atomic_fetch_add_explicit(&p->ndelayed, 1, memory_order_seq_cst);
    /* A cancel that ran before the increment above saw no delayed task to
     * expedite; this seq_cst check after it sees that cancel. The job is
     * alive here: the task is still in the list, unfinished. */
    if (pt__job_canceled(t->job)) deadline_ns = 0;
    p->dl[p->dl_len].deadline = deadline_ns;
    p->dl[p->dl_len].task = t;
    p->dl_len++;
    pthread_mutex_unlock(&p->delay_mu);
    /* The calling worker is awake and will time its next sleep on this
     * deadline, so nobody needs waking. */
    return 1;
}

void pt__pool_expedite(pt_pool *p, const pt_job *job) {
    if (atomic_load_explicit(&p->ndelayed, memory_order_seq_cst) == 0) return;
    int found = 0;
    pthread_mutex_lock(&p->delay_mu);
    for (int64_t i = 0; i < p->dl_len; i++) {
        if (p->dl[i].task->job == job) {
            p->dl[i].deadline = 0;
            found = 1;
        }
    }
    pthread_mutex_unlock(&p->delay_mu);
    /* Sleepers timed their waits on the old deadlines. */
    if (found && atomic_load_explicit(&p->idle, memory_order_seq_cst) > 0) wake_one(p);
}

/* Returns a due retry and moves the other due ones to w's deque. */
static pt_task *take_due(pt_pool *p, worker *w) {
    pt_task *first = NULL;
    int64_t now = pt__clock_ns();
    pthread_mutex_lock(&p->delay_mu);
    for (int64_t i = 0; i < p->dl_len;) {
        if (p->dl[i].deadline <= now) {
            pt_task *t = p->dl[i].task;
            p->dl[i] = p->dl[--p->dl_len];
            atomic_fetch_sub_explicit(&p->ndelayed, 1, memory_order_seq_cst);
            atomic_store_explicit(&t->state, PT_TASK_READY, memory_order_relaxed);
            if (!first)
                first = t;
            else if (!dq_push(&w->dq, t))
                inj_push(p, t);
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&p->delay_mu);
    return first;
}

/* Earliest retry deadline, or -1 when there is none. */
static int64_t next_deadline(pt_pool *p) {
    if (atomic_load_explicit(&p->ndelayed, memory_order_seq_cst) == 0) return -1;
    int64_t best = -1;
    pthread_mutex_lock(&p->delay_mu);
    for (int64_t i = 0; i < p->dl_len; i++)
        if (best < 0 || p->dl[i].deadline < best) best = p->dl[i].deadline;
    pthread_mutex_unlock(&p->delay_mu);
    return best;
}

/* ---- finding work ---- */

static pt_task *find_work(pt_pool *p, worker *w) {
    pt_task *t = dq_pop(&w->dq);
    if (t) return t;
    if (atomic_load_explicit(&p->ndelayed, memory_order_relaxed) > 0 && (t = take_due(p, w)))
        return t;
    if (atomic_load_explicit(&p->inj_count, memory_order_relaxed) > 0 && (t = inj_take(p, w)))
        return t;
    int n = p->nthreads;
    if (n > 1) {
        /* xorshift: a cheap random start spreads the thieves. */
        uint64_t x = w->rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w->rng = x;
        int start = (int)(x % (uint64_t)n);
        for (int i = 0; i < n; i++) {
            int v = (start + i) % n;
            if (v == w->id) continue;
            if ((t = dq_steal(&p->workers[v].dq))) return t;
        }
    }
    return NULL;
}

/* The recheck a worker does before it sleeps (seq_cst loads). */
static int has_work(pt_pool *p) {
    if (atomic_load_explicit(&p->inj_count, memory_order_seq_cst) > 0) return 1;
    for (int i = 0; i < p->nthreads; i++)
        if (dq_nonempty(&p->workers[i].dq)) return 1;
    return 0;
}

/* Sleeps until woken, a retry falls due or the pool stops. On return the
 * worker is counted as searching again. */
static void worker_sleep(pt_pool *p) {
    pthread_mutex_lock(&p->sleep_mu);
    atomic_fetch_add_explicit(&p->idle, 1, memory_order_seq_cst);
    atomic_fetch_sub_explicit(&p->nspinning, 1, memory_order_seq_cst);
    int64_t deadline = next_deadline(p);
    int timed_out = 0;
    if (!has_work(p) && !(deadline >= 0 && deadline <= pt__clock_ns())) {
        while (p->tokens == 0 && !atomic_load_explicit(&p->stop, memory_order_relaxed) &&
               !timed_out) {
            if (deadline >= 0) {
                struct timespec ts = {.tv_sec = deadline / 1000000000,
                                      .tv_nsec = deadline % 1000000000};
                if (pthread_cond_timedwait(&p->sleep_cv, &p->sleep_mu, &ts) == ETIMEDOUT)
                    timed_out = 1;
            } else {
                pthread_cond_wait(&p->sleep_cv, &p->sleep_mu);
            }
        }
    }
    if (p->tokens > 0) {
        p->tokens--;  /* the waker already moved us from idle to searching */
    } else {
        atomic_fetch_sub_explicit(&p->idle, 1, memory_order_seq_cst);
        atomic_fetch_add_explicit(&p->nspinning, 1, memory_order_seq_cst);
    }
    pthread_mutex_unlock(&p->sleep_mu);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    pt_pool *p = w->pool;
    tls_worker = w;
    int rounds = 0;
    for (;;) {
        pt_task *t = find_work(p, w);
        if (t) {
            rounds = 0;
            if (w->spinning) {
                w->spinning = 0;
                /* The last searcher to find work passes the baton: if more
                 * work is queued, another sleeper should look for it. */
                if (atomic_fetch_sub_explicit(&p->nspinning, 1, memory_order_seq_cst) == 1 &&
                    (atomic_load_explicit(&p->inj_count, memory_order_seq_cst) > 0 ||
                     dq_nonempty(&w->dq)))
                    notify(p);
            }
            pt__task_run(p, w->id, t);
            continue;
        }
        if (!w->spinning) {
            w->spinning = 1;
            atomic_fetch_add_explicit(&p->nspinning, 1, memory_order_seq_cst);
        }
        if (rounds < SPIN_PAUSE_ROUNDS) {
            rounds++;
            for (int i = 0; i < 16; i++) cpu_relax();
            continue;
        }
        if (rounds < SPIN_PAUSE_ROUNDS + SPIN_YIELD_ROUNDS) {
            rounds++;
            sched_yield();
            continue;
        }
        rounds = 0;
        if (atomic_load_explicit(&p->stop, memory_order_seq_cst)) break;
        worker_sleep(p);
    }
    tls_worker = NULL;
    return NULL;
}

void pt__pool_help_until(pt_pool *p, int (*done)(const void *), const void *arg) {
    worker *w = tls_worker;
    int rounds = 0;
    while (!done(arg)) {
        pt_task *t = find_work(p, w);
        if (t) {
            rounds = 0;
            pt__task_run(p, w->id, t);
            continue;
        }
        /* Nothing to help with: the awaited task runs elsewhere or waits for
         * a retry. Back off, but keep polling so that work arriving later
         * (possibly the only way forward on a 1-thread pool) is picked up. */
        rounds++;
        if (rounds < 64)
            cpu_relax();
        else if (rounds < 128)
            sched_yield();
        else {
            struct timespec ts = {0, rounds < 256 ? 10000 : 100000};
            nanosleep(&ts, NULL);
        }
    }
}

void pt__pool_block_until(pt_pool *p, int job_wait, int (*done)(const void *), const void *arg) {
    _Atomic int *counter = job_wait ? &p->njob_waiters : &p->ntask_waiters;
    pthread_cond_t *cv = job_wait ? &p->job_cv : &p->task_cv;
    pthread_mutex_lock(&p->wait_mu);
    atomic_fetch_add_explicit(counter, 1, memory_order_seq_cst);
    while (!done(arg)) pthread_cond_wait(cv, &p->wait_mu);
    atomic_fetch_sub_explicit(counter, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&p->wait_mu);
}

/* The finisher published the final state with a seq_cst store before this
 * seq_cst load, and the waiter incremented the counter before its check:
 * one of the two sees the other. Only the pool is touched here, because the
 * waiter may free the job as soon as it sees the state. */
void pt__pool_task_finished(pt_pool *p) {
    if (atomic_load_explicit(&p->ntask_waiters, memory_order_seq_cst) > 0) {
        pthread_mutex_lock(&p->wait_mu);
        pthread_cond_broadcast(&p->task_cv);
        pthread_mutex_unlock(&p->wait_mu);
    }
}

void pt__pool_job_idle(pt_pool *p) {
    if (atomic_load_explicit(&p->njob_waiters, memory_order_seq_cst) > 0) {
        pthread_mutex_lock(&p->wait_mu);
        pthread_cond_broadcast(&p->job_cv);
        pthread_mutex_unlock(&p->wait_mu);
    }
}

/* ---- lifecycle ---- */

static void pool_stop_and_join(pt_pool *p) {
    atomic_store_explicit(&p->stop, 1, memory_order_seq_cst);
    pthread_mutex_lock(&p->sleep_mu);
    pthread_cond_broadcast(&p->sleep_cv);
    pthread_mutex_unlock(&p->sleep_mu);
    for (int i = 0; i < p->started; i++) pthread_join(p->workers[i].thread, NULL);
}

static void pool_destroy(pt_pool *p) {
    for (int i = 0; i < p->nthreads; i++) dq_destroy(&p->workers[i].dq);
    pt_free(p->workers_raw);
    pt_free(p->dl);
    pthread_mutex_destroy(&p->inj_mu);
    pthread_mutex_destroy(&p->sleep_mu);
    pthread_cond_destroy(&p->sleep_cv);
    pthread_mutex_destroy(&p->delay_mu);
    pthread_mutex_destroy(&p->wait_mu);
    pthread_cond_destroy(&p->task_cv);
    pthread_cond_destroy(&p->job_cv);
    pt_free(p->raw);
}

#define PT__MAX_THREADS 4096

pt_status pt_pool_new(int nthreads, pt_pool **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_pool_new: out is NULL");
    *out = NULL;
    if (nthreads <= 0) nthreads = pt_default_threads();
    if (nthreads > PT__MAX_THREADS)
        return pt_error_set(err, PT_EINVAL, "pt_pool_new: nthreads %d exceeds the maximum %d",
                            nthreads, PT__MAX_THREADS);
    void *raw;
    pt_pool *p = alloc_aligned(sizeof(pt_pool), &raw);
    if (!p) return pt_error_set(err, PT_ENOMEM, "pt_pool_new: out of memory");
    p->raw = raw;
    p->nthreads = nthreads;
    p->workers = alloc_aligned((size_t)nthreads * sizeof(worker), &p->workers_raw);
    if (!p->workers) {
        pt_free(raw);
        return pt_error_set(err, PT_ENOMEM, "pt_pool_new: out of memory");
    }
    pthread_mutex_init(&p->inj_mu, NULL);
    pthread_mutex_init(&p->sleep_mu, NULL);
    pthread_mutex_init(&p->delay_mu, NULL);
    pthread_mutex_init(&p->wait_mu, NULL);
    if (!cond_init_monotonic(&p->sleep_cv) || pthread_cond_init(&p->task_cv, NULL) != 0 ||
        pthread_cond_init(&p->job_cv, NULL) != 0) {
        /* Condition variables only fail on resource exhaustion. */
        pool_destroy(p);
        return pt_error_set(err, PT_EINTERNAL, "pt_pool_new: cannot create condition variables");
    }
    atomic_init(&p->inj_count, 0);
    atomic_init(&p->nspinning, nthreads);  /* workers start out searching */
    atomic_init(&p->idle, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->ndelayed, 0);
    atomic_init(&p->ntask_waiters, 0);
    atomic_init(&p->njob_waiters, 0);
    for (int i = 0; i < nthreads; i++) {
        worker *w = &p->workers[i];
        w->pool = p;
        w->id = i;
        w->spinning = 1;
        w->rng = pt_splitmix64((uint64_t)i + 0x1234u) | 1u;
        if (!dq_init(&w->dq)) {
            for (int j = 0; j < i; j++) dq_destroy(&p->workers[j].dq);
            p->nthreads = 0;
            pool_destroy(p);
            return pt_error_set(err, PT_ENOMEM, "pt_pool_new: out of memory");
        }
    }
    for (int i = 0; i < nthreads; i++) {
        int rc = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
        if (rc != 0) {
            pool_stop_and_join(p);
            pool_destroy(p);
            return pt_error_set(err, PT_EINTERNAL,
                                "pt_pool_new: cannot start worker thread %d of %d: %s", i,
                                nthreads, strerror(rc));
        }
        p->started++;
    }
    *out = p;
    return PT_OK;
}

void pt_pool_free(pt_pool *p) {
    if (!p) return;
    pool_stop_and_join(p);
    pool_destroy(p);
}
