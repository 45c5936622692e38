/*
 * comm_mpi.c - the MPI backend of pt_comm.
 *
 * Threading. MPI is started with MPI_Init_thread(MPI_THREAD_SERIALIZED):
 * Partita runs its work on a thread pool, so the thread that calls comm is
 * not always the one that started MPI (FUNNELED would forbid that), but the
 * comm object is used by one thread at a time (so MULTIPLE, and its locking
 * cost inside MPI, is not needed). If the embedding application started MPI
 * itself, its level is kept and a level below SERIALIZED is logged.
 *
 * Timeouts, never a hang. No call here blocks inside MPI: every operation is
 * posted non-blocking (MPI_Ibarrier, MPI_Ibcast, MPI_Iallreduce, MPI_Ireduce,
 * MPI_Igather, MPI_Iallgather, MPI_Ialltoall, MPI_Isend/MPI_Irecv, and
 * MPI_Comm_idup at init) and polled with MPI_Test until it completes or the
 * deadline (start + timeout) passes; between polls the thread yields for
 * the first second, then sleeps 100 us (see backoff_wait).
 *
 * Who is missing. Before each collective every rank other than 0 sends a
 * small arrival token (collective number, operation) to rank 0 on a private
 * communicator, and rank 0 posts receives for all of them; rank 0 finishes a
 * collective only when every token has arrived. So on a timeout rank 0
 * knows exactly which ranks never reached the collective; it sends that
 * list (a verdict) to every rank that did arrive, and those ranks wait a
 * short grace period for it. A rank that gets no verdict says that rank 0
 * or another rank did not answer. Tokens also catch ranks that call
 * different collectives (PT_ECOMM naming both operations). Point-to-point
 * timeouts name the peer; the data phase of allgatherv/alltoallv (plain
 * Isend/Irecv after the counts are exchanged) names the peers whose data
 * is still outstanding.
 *
 * Failure. A timeout or an MPI error marks the comm failed (every later call
 * returns the first error). Requests still pending are abandoned, not
 * cancelled (the MPI standard forbids freeing or cancelling a pending
 * non-blocking collective), and no further MPI call is made for this comm;
 * the buffers of the failed call may still be referenced by those requests
 * (internal ones are deliberately never freed). pt_comm_free then skips
 * MPI_Comm_free and MPI_Finalize: both can wait for peers, and a dead or
 * stuck peer would make them hang. MPI_Finalize can hang even on a healthy
 * rank when the others are gone (measured: a rank finalizing after its
 * peers exited without finalizing waited for ever, one run in three), so
 * the last pt_comm_free first holds a bounded barrier with the other ranks
 * and finalizes only if everyone arrived. The process should exit after a
 * failure. Under `mpirun --enable-recovery` the survivors exit
 * normally; without it mpirun kills the whole job as soon as one process
 * exits without finalizing, or when a rank dies. The library never calls
 * MPI_Abort. Measured with Open MPI 4.1.4 (no ULFM).
 *
 * Sizes. MPI counts are int, so every transfer is split into pieces of at
 * most `chunk` bytes (1 GiB by default; PARTITA_COMM_CHUNK or
 * pt__comm_set_chunk lower it for tests). At most WINDOW pieces are in
 * flight per peer or collective at a time.
 */
#include "comm/comm_internal.h"

#ifdef PT_HAVE_MPI

#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

enum {
    TAG_ARRIVE = 1, /* ctl comm: arrival tokens */
    TAG_VERDICT = 2, /* ctl comm: rank 0's list of missing ranks */
    TAG_DATA = 3,   /* data comm: allgatherv / alltoallv payloads */
    TAG_EXIT = 4,   /* ctl comm: "I am done", to rank 0 */
    TAG_EXIT_GO = 5, /* ctl comm: "everyone is done", from rank 0 */
    WINDOW = 8,     /* pieces in flight per peer or collective */
    MAX_LISTED = 32 /* missing ranks named in a verdict */
};

typedef enum coll_op {
    OP_INIT = 1,
    OP_BARRIER,
    OP_BCAST,
    OP_ALLREDUCE,
    OP_REDUCE,
    OP_GATHER,
    OP_ALLGATHER,
    OP_ALLGATHERV,
    OP_ALLTOALLV,
    OP_COUNT
} coll_op;

static const char *const op_names[OP_COUNT] = {
    "?", "init", "barrier", "bcast", "allreduce", "reduce", "gather", "allgather",
    "allgatherv", "alltoallv"};

typedef struct mpi_state {
    MPI_Comm user; /* collectives and the user's point-to-point messages */
    MPI_Comm ctl;  /* arrival tokens and verdicts */
    MPI_Comm data; /* payloads of allgatherv/alltoallv */
    int ndup;      /* communicators created so far */
    int64_t seq;   /* collectives started */
    /* The collective in progress. */
    coll_op op;
    int64_t deadline_ns;
    int64_t tok_send[2];
    int64_t *tok_recv;       /* 2 per rank, on rank 0 */
    /* Buffers of small messages kept here rather than on the stack: after a
     * timeout their requests are abandoned and MPI may still touch them. */
    int64_t verdict[3 + MAX_LISTED];
    int64_t hdr[2];
    int64_t exit_msg[1];
    int64_t *exit_in; /* one per rank, on rank 0 */
    MPI_Request *tok_reqs;   /* size - 1 on rank 0, 1 elsewhere */
    int ntok;
} mpi_state;

/* MPI is process-wide: who started it and how many comms use it. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_users;
static bool g_we_initialised;
static bool g_any_failed;

/* ------------------------------------------------------------------------ */
/* Errors and waiting                                                       */
/* ------------------------------------------------------------------------ */

static pt_status mpi_fail(pt_comm *c, int rc, const char *what, pt_error *err) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", rc);
    pt_error_set(err, PT_ECOMM, "rank %d: MPI error in %s: %s", c->rank, what, text);
    g_any_failed = true;
    return pt__comm_fail(c, err);
}

static pt_status fail_with(pt_comm *c, pt_error *err) {
    g_any_failed = true;
    return pt__comm_fail(c, err);
}

#define MPI_CHECK(c, call, what, err)                                      \
    do {                                                                   \
        int mc__rc = (call);                                               \
        if (mc__rc != MPI_SUCCESS) return mpi_fail((c), mc__rc, (what), (err)); \
    } while (0)

static int64_t deadline_after(const pt_comm *c) {
    return pt_now_ns() + (int64_t)(c->timeout_s * 1e9);
}

/* Waits between polls. Non-blocking collectives (libnbc) and large
 * transfers advance only inside MPI_Test, one step per call, so a sleep
 * between polls stretches every step: measured, a 16 MB MPI_Ireduce polled
 * with 1 ms sleeps took 2.5 s instead of 14 ms. So the first second is a
 * busy poll that yields the core (what blocking MPI calls do anyway); a
 * wait longer than that is most likely a rank that is late, and is polled
 * every 100 us to leave the cores to the ranks that compute. */
typedef struct backoff {
    int64_t start_ns;
} backoff;

static void backoff_wait(backoff *b) {
    int64_t now = pt_now_ns();
    if (b->start_ns == 0) b->start_ns = now;
    if (now - b->start_ns < 1000000000) {
        sched_yield();
    } else {
        pt_sleep_ns(100000);
    }
}

/* Tests every non-null request once; completed ones become MPI_REQUEST_NULL.
 * Returns the number still pending, or -1 with *rc set on an MPI error. */
static int test_some(MPI_Request *reqs, int n, int *rc) {
    int pending = 0;
    for (int i = 0; i < n; i++) {
        if (reqs[i] == MPI_REQUEST_NULL) continue;
        int done = 0;
        int r = MPI_Test(&reqs[i], &done, MPI_STATUS_IGNORE);
        if (r != MPI_SUCCESS) {
            *rc = r;
            return -1;
        }
        if (!done) pending++;
    }
    return pending;
}

/* Polls reqs (and, when `also` is set, those too without requiring them)
 * until all of reqs complete: PT_OK, PT_ETIMEOUT at the deadline (err not
 * filled; the caller names the missing ranks), PT_ECOMM on an MPI error. */
static pt_status poll_until(pt_comm *c, MPI_Request *reqs, int n, MPI_Request *also, int nalso,
                            int64_t deadline, const char *what, pt_error *err) {
    backoff b = {0};
    for (;;) {
        int rc = MPI_SUCCESS;
        int pending = test_some(reqs, n, &rc);
        if (pending >= 0 && also && test_some(also, nalso, &rc) < 0) pending = -1;
        if (pending < 0) return mpi_fail(c, rc, what, err);
        if (pending == 0) return PT_OK;
        if (pt_now_ns() > deadline) return PT_ETIMEOUT;
        backoff_wait(&b);
    }
}

/* Writes "rank 3" or "ranks 1, 3, 4" (and "and N more" past `n` listed). */
static void format_ranks(char *buf, size_t cap, const int *ranks, int n, int64_t total) {
    size_t len = (size_t)snprintf(buf, cap, "%s", total == 1 ? "rank " : "ranks ");
    for (int i = 0; i < n && len < cap; i++) {
        len += (size_t)snprintf(buf + len, cap - len, "%s%d", i ? ", " : "", ranks[i]);
    }
    if (total > n && len < cap) snprintf(buf + len, cap - len, " and %lld more", (long long)(total - n));
}

static const char *tsec(const pt_comm *c, char *buf, size_t cap) {
    snprintf(buf, cap, "%g s", c->timeout_s);
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Collective framing: arrival tokens and verdicts                          */
/* ------------------------------------------------------------------------ */

static pt_status coll_begin(pt_comm *c, coll_op op, pt_error *err) {
    mpi_state *st = c->mpi;
    st->seq++;
    st->op = op;
    st->deadline_ns = deadline_after(c);
    if (c->rank == 0) {
        st->ntok = c->size - 1;
        for (int r = 1; r < c->size; r++) {
            MPI_CHECK(c, MPI_Irecv(&st->tok_recv[2 * r], 2, MPI_INT64_T, r, TAG_ARRIVE, st->ctl,
                                   &st->tok_reqs[r - 1]),
                      op_names[op], err);
        }
    } else {
        st->ntok = 1;
        st->tok_send[0] = st->seq;
        st->tok_send[1] = op;
        MPI_CHECK(c, MPI_Isend(st->tok_send, 2, MPI_INT64_T, 0, TAG_ARRIVE, st->ctl, &st->tok_reqs[0]),
                  op_names[op], err);
    }
    return PT_OK;
}

/* Builds the timeout message of a collective and fails the comm. Rank 0
 * lists the ranks whose tokens are missing and tells the others. */
static pt_status coll_timeout(pt_comm *c, pt_error *err) {
    mpi_state *st = c->mpi;
    const char *op = op_names[st->op];
    char ts[32], who[512];
    tsec(c, ts, sizeof ts);
    if (c->rank == 0) {
        int missing[MAX_LISTED];
        int nmissing = 0;
        for (int r = 1; r < c->size; r++) {
            if (st->tok_reqs[r - 1] == MPI_REQUEST_NULL) continue;
            if (nmissing < MAX_LISTED) missing[nmissing] = r;
            nmissing++;
        }
        int64_t *verdict = st->verdict;
        verdict[0] = st->seq;
        verdict[1] = nmissing;
        verdict[2] = st->op;
        for (int i = 0; i < nmissing && i < MAX_LISTED; i++) verdict[3 + i] = missing[i];
        /* Tell every rank that arrived; small eager sends, awaited briefly. */
        MPI_Request *vreq = pt_malloc(sizeof *vreq * (size_t)c->size);
        int nv = 0;
        for (int r = 1; vreq && r < c->size; r++) {
            if (st->tok_reqs[r - 1] != MPI_REQUEST_NULL) continue;
            if (MPI_Isend(verdict, 3 + MAX_LISTED, MPI_INT64_T, r, TAG_VERDICT, st->ctl,
                          &vreq[nv]) == MPI_SUCCESS)
                nv++;
        }
        if (vreq) {
            pt_error ignored;
            (void)poll_until(c, vreq, nv, NULL, 0, pt_now_ns() + 500000000, "verdict", &ignored);
            pt_free(vreq);
        }
        if (nmissing > 0) {
            format_ranks(who, sizeof who, missing, nmissing < MAX_LISTED ? nmissing : MAX_LISTED,
                         nmissing);
            pt_error_set(err, PT_ETIMEOUT,
                         "rank 0: timed out after %s in %s (collective #%lld) waiting for %s", ts,
                         op, (long long)st->seq, who);
        } else {
            pt_error_set(err, PT_ETIMEOUT,
                         "rank 0: timed out after %s in %s (collective #%lld): every rank "
                         "arrived, but the operation did not complete (a rank may have failed "
                         "during it)",
                         ts, op, (long long)st->seq);
        }
        return fail_with(c, err);
    }
    /* Rank 0 times out on its own clock, which may run a little behind ours:
     * wait a grace period for its verdict. */
    double grace = 1.0 + 0.1 * c->timeout_s;
    if (grace > c->timeout_s) grace = c->timeout_s;
    int64_t *verdict = st->verdict;
    MPI_Request vr = MPI_REQUEST_NULL;
    pt_status s = PT_ETIMEOUT;
    if (MPI_Irecv(verdict, 3 + MAX_LISTED, MPI_INT64_T, 0, TAG_VERDICT, st->ctl, &vr) ==
        MPI_SUCCESS) {
        pt_error ignored;
        s = poll_until(c, &vr, 1, NULL, 0, pt_now_ns() + (int64_t)(grace * 1e9), "verdict",
                       &ignored);
    }
    if (s == PT_OK && verdict[1] > 0) {
        int missing[MAX_LISTED];
        int n = verdict[1] < MAX_LISTED ? (int)verdict[1] : MAX_LISTED;
        for (int i = 0; i < n; i++) missing[i] = (int)verdict[3 + i];
        format_ranks(who, sizeof who, missing, n, verdict[1]);
        pt_error_set(err, PT_ETIMEOUT,
                     "rank %d: timed out after %s in %s (collective #%lld) waiting for %s "
                     "(rank 0 saw %s missing)",
                     c->rank, ts, op, (long long)st->seq, who, verdict[1] == 1 ? "it" : "them");
    } else if (s == PT_OK) {
        pt_error_set(err, PT_ETIMEOUT,
                     "rank %d: timed out after %s in %s (collective #%lld): every rank arrived, "
                     "but the operation did not complete (a rank may have failed during it)",
                     c->rank, ts, op, (long long)st->seq);
    } else {
        pt_error_set(err, PT_ETIMEOUT,
                     "rank %d: timed out after %s in %s (collective #%lld): rank 0, which checks "
                     "who arrived, did not answer; rank 0 or another rank is missing",
                     c->rank, ts, op, (long long)st->seq);
    }
    return fail_with(c, err);
}

/* Waits for the requests of a collective (tokens progress meanwhile). */
static pt_status coll_wait(pt_comm *c, MPI_Request *reqs, int n, pt_error *err) {
    mpi_state *st = c->mpi;
    pt_status s = poll_until(c, reqs, n, st->tok_reqs, st->ntok, st->deadline_ns,
                             op_names[st->op], err);
    return s == PT_ETIMEOUT ? coll_timeout(c, err) : s;
}

/* Finishes a collective: every token in, and all for the same operation. */
static pt_status coll_end(pt_comm *c, pt_error *err) {
    mpi_state *st = c->mpi;
    pt_status s = coll_wait(c, st->tok_reqs, st->ntok, err);
    if (s != PT_OK || c->rank != 0) return s;
    for (int r = 1; r < c->size; r++) {
        int64_t seq = st->tok_recv[2 * r], op = st->tok_recv[2 * r + 1];
        if (seq == st->seq && op == st->op) continue;
        pt_error_set(err, PT_ECOMM,
                     "rank 0: rank %d called %s (collective #%lld) while rank 0 called %s "
                     "(collective #%lld): every rank must call the same collectives in the "
                     "same order",
                     r, op > 0 && op < OP_COUNT ? op_names[op] : "?", (long long)seq,
                     op_names[st->op], (long long)st->seq);
        return fail_with(c, err);
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Init and free                                                            */
/* ------------------------------------------------------------------------ */

static void state_free(mpi_state *st) {
    if (!st) return;
    pt_free(st->exit_in);
    pt_free(st->tok_recv);
    pt_free(st->tok_reqs);
    pt_free(st);
}

pt_status pt__mpi_init(pt_comm *c, pt_error *err) {
    pthread_mutex_lock(&g_lock);
    int finalized = 0, initialised = 0;
    MPI_Finalized(&finalized);
    if (finalized) {
        pthread_mutex_unlock(&g_lock);
        return pt_error_set(err, PT_EUNSUPPORTED,
                            "pt_comm_init: MPI was already finalized in this process and cannot "
                            "be started again (create one MPI comm and keep it for the job)");
    }
    MPI_Initialized(&initialised);
    int provided = MPI_THREAD_SINGLE;
    if (!initialised) {
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
        if (rc != MPI_SUCCESS) {
            pthread_mutex_unlock(&g_lock);
            return pt_error_set(err, PT_ECOMM, "pt_comm_init: MPI_Init_thread failed (code %d)",
                                rc);
        }
        g_we_initialised = true;
        /* Ours to configure: errors come back as codes, never abort. */
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    } else {
        MPI_Query_thread(&provided);
    }
    g_users++;
    pthread_mutex_unlock(&g_lock);
    if (provided < MPI_THREAD_SERIALIZED) {
        pt_log_warn("MPI provides thread level %d, below MPI_THREAD_SERIALIZED: call pt_comm "
                    "only from the thread that started MPI",
                    provided);
    }

    mpi_state *st = pt_calloc(1, sizeof *st);
    c->mpi = st;
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    if (st) {
        st->tok_recv = pt_calloc((size_t)c->size * 2, sizeof *st->tok_recv);
        st->tok_reqs = pt_malloc(sizeof *st->tok_reqs * (size_t)c->size);
    }
    if (!st || !st->tok_recv || !st->tok_reqs) {
        state_free(st);
        c->mpi = NULL;
        pthread_mutex_lock(&g_lock);
        g_users--;
        pthread_mutex_unlock(&g_lock);
        return pt_error_set(err, PT_ENOMEM, "pt_comm_init: out of memory");
    }
    for (int i = 0; i < c->size; i++) st->tok_reqs[i] = MPI_REQUEST_NULL;

    /* Three private communicators, so our traffic never matches the
     * application's (or each other's). MPI_Comm_idup keeps init bounded. */
    MPI_Comm *dups[3] = {&st->user, &st->ctl, &st->data};
    MPI_Request reqs[3];
    for (int i = 0; i < 3; i++) {
        MPI_CHECK(c, MPI_Comm_idup(MPI_COMM_WORLD, dups[i], &reqs[i]), "MPI_Comm_idup", err);
    }
    pt_status s = poll_until(c, reqs, 3, NULL, 0, deadline_after(c), "init", err);
    if (s == PT_ETIMEOUT) {
        char ts[32];
        pt_error_set(err, PT_ETIMEOUT,
                     "rank %d: timed out after %s in init (MPI_Comm_idup) waiting for the other "
                     "%d ranks to start",
                     c->rank, tsec(c, ts, sizeof ts), c->size - 1);
        return fail_with(c, err);
    }
    if (s != PT_OK) return s;
    st->ndup = 3;
    for (int i = 0; i < 3; i++) MPI_Comm_set_errhandler(*dups[i], MPI_ERRORS_RETURN);

    /* Collectives split at the same offsets everywhere: rank 0's chunk wins. */
    PT_RETURN_NOT_OK(coll_begin(c, OP_INIT, err));
    int64_t chunk = c->chunk;
    MPI_Request r;
    MPI_CHECK(c, MPI_Ibcast(&chunk, 1, MPI_INT64_T, 0, st->user, &r), "init", err);
    PT_RETURN_NOT_OK(coll_wait(c, &r, 1, err));
    PT_RETURN_NOT_OK(coll_end(c, err));
    c->chunk = chunk;
    pt_log_debug("comm: mpi rank %d of %d, timeout %g s, chunk %lld bytes", c->rank, c->size,
                 c->timeout_s, (long long)c->chunk);
    return PT_OK;
}

/* The end-of-job meeting before MPI_Finalize. Unlike a barrier, a rank may
 * leave only on rank 0's word that every rank arrived: a barrier can
 * complete on a late rank from messages its peers sent before they gave up
 * and exited, and finalizing then would wait for them for ever. */
static pt_status exit_sync(pt_comm *c, pt_error *err) {
    mpi_state *st = c->mpi;
    int64_t deadline = deadline_after(c);
    char ts[32];
    tsec(c, ts, sizeof ts);
    if (c->rank == 0) {
        st->exit_in = pt_calloc((size_t)c->size, sizeof *st->exit_in);
        MPI_Request *reqs = pt_malloc(sizeof *reqs * (size_t)c->size);
        if (!st->exit_in || !reqs) {
            pt_free(reqs);
            pt_error_set(err, PT_ENOMEM, "rank 0: pt_comm_free: out of memory");
            return fail_with(c, err);
        }
        for (int r = 1; r < c->size; r++) {
            MPI_CHECK(c, MPI_Irecv(&st->exit_in[r], 1, MPI_INT64_T, r, TAG_EXIT, st->ctl,
                                   &reqs[r - 1]),
                      "exit", err);
        }
        pt_status s = poll_until(c, reqs, c->size - 1, NULL, 0, deadline, "exit", err);
        if (s == PT_ETIMEOUT) {
            int *late = pt_malloc(sizeof *late * (size_t)c->size);
            int n = 0;
            for (int r = 1; late && r < c->size; r++) {
                if (reqs[r - 1] != MPI_REQUEST_NULL) late[n++] = r;
            }
            char who[512] = "some ranks";
            if (late && n > 0) format_ranks(who, sizeof who, late, n < MAX_LISTED ? n : MAX_LISTED, n);
            pt_free(late);
            pt_error_set(err, PT_ETIMEOUT,
                         "rank 0: pt_comm_free: timed out after %s waiting for %s to end the job",
                         ts, who);
            return fail_with(c, err); /* reqs stays: pending receives use it */
        }
        if (s != PT_OK) return s;
        st->exit_msg[0] = 1;
        for (int r = 1; r < c->size; r++) {
            MPI_CHECK(c, MPI_Isend(st->exit_msg, 1, MPI_INT64_T, r, TAG_EXIT_GO, st->ctl,
                                   &reqs[r - 1]),
                      "exit", err);
        }
        s = poll_until(c, reqs, c->size - 1, NULL, 0, deadline_after(c), "exit", err);
        if (s == PT_ETIMEOUT) {
            pt_error_set(err, PT_ETIMEOUT, "rank 0: pt_comm_free: timed out after %s telling the "
                         "ranks the job ended", ts);
            return fail_with(c, err);
        }
        pt_free(reqs);
        return s;
    }
    MPI_Request reqs[2];
    st->exit_msg[0] = 0;
    MPI_CHECK(c, MPI_Isend(&st->exit_msg[0], 0, MPI_INT64_T, 0, TAG_EXIT, st->ctl, &reqs[0]), "exit",
              err);
    MPI_CHECK(c, MPI_Irecv(st->hdr, 1, MPI_INT64_T, 0, TAG_EXIT_GO, st->ctl, &reqs[1]), "exit", err);
    pt_status s = poll_until(c, reqs, 2, NULL, 0, deadline, "exit", err);
    if (s == PT_ETIMEOUT) {
        pt_error_set(err, PT_ETIMEOUT,
                     "rank %d: pt_comm_free: timed out after %s waiting for rank 0 to confirm "
                     "that every rank ended the job",
                     c->rank, ts);
        return fail_with(c, err);
    }
    return s;
}

void pt__mpi_free(pt_comm *c) {
    mpi_state *st = c->mpi;
    if (!st) return; /* init failed before MPI was counted */
    /* MPI_Finalize waits for every process of the job, for ever if one is
     * gone (measured: it hangs when the others exited without finalizing).
     * So the last comm first meets the others in a bounded barrier, and a
     * rank that does not get everyone there does not finalize. */
    pthread_mutex_lock(&g_lock);
    bool will_finalize = g_users == 1 && g_we_initialised && !g_any_failed;
    pthread_mutex_unlock(&g_lock);
    if (will_finalize && c->failed == PT_OK && c->size > 1) {
        pt_error e;
        if (exit_sync(c, &e) != PT_OK) {
            pt_log_warn("%s; not calling MPI_Finalize", e.msg);
        }
    }
    bool failed = c->failed != PT_OK;
    if (st && !failed) {
        MPI_Comm *dups[3] = {&st->user, &st->ctl, &st->data};
        for (int i = 0; i < st->ndup; i++) MPI_Comm_free(dups[i]);
        state_free(st);
    }
    /* After a failure the state is left allocated on purpose: abandoned
     * requests may still write into its token and header buffers. */
    c->mpi = NULL;
    pthread_mutex_lock(&g_lock);
    if (g_users > 0) g_users--;
    if (g_users == 0 && g_we_initialised) {
        if (g_any_failed) {
            pt_log_info("comm: not calling MPI_Finalize after a failure (it would wait for the "
                        "lost ranks); the process should exit");
        } else {
            MPI_Finalize();
        }
        g_we_initialised = false;
    }
    pthread_mutex_unlock(&g_lock);
}

const char *pt__mpi_library_version(char *buf, size_t cap) {
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (MPI_Get_library_version(v, &len) != MPI_SUCCESS) len = 0;
    v[len < (int)sizeof v ? len : (int)sizeof v - 1] = '\0';
    size_t n = strcspn(v, "\n,");
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    snprintf(buf, cap, "%.*s", (int)n, v);
    return buf;
}

const char *pt__mpi_processor_name(char *buf, size_t cap) {
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    if (MPI_Get_processor_name(name, &len) != MPI_SUCCESS) len = 0;
    name[len < (int)sizeof name ? len : (int)sizeof name - 1] = '\0';
    snprintf(buf, cap, "%s", len > 0 ? name : "unknown");
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Collectives                                                              */
/* ------------------------------------------------------------------------ */

pt_status pt__mpi_barrier(pt_comm *c, pt_error *err) {
    mpi_state *st = c->mpi;
    PT_RETURN_NOT_OK(coll_begin(c, OP_BARRIER, err));
    MPI_Request r;
    MPI_CHECK(c, MPI_Ibarrier(st->user, &r), "barrier", err);
    PT_RETURN_NOT_OK(coll_wait(c, &r, 1, err));
    return coll_end(c, err);
}

/* Broadcast inside an open collective, WINDOW pieces at a time. */
static pt_status bcast_pieces(pt_comm *c, unsigned char *buf, int64_t bytes, int root,
                              pt_error *err) {
    mpi_state *st = c->mpi;
    int64_t n = pt__comm_nchunks(bytes, c->chunk);
    MPI_Request reqs[WINDOW];
    for (int64_t i = 0; i < n; i += WINDOW) {
        int k = 0;
        for (int64_t j = i; j < n && j < i + WINDOW; j++, k++) {
            int64_t off, len;
            pt__comm_chunk_at(bytes, c->chunk, j, &off, &len);
            MPI_CHECK(c, MPI_Ibcast(buf + off, (int)len, MPI_BYTE, root, st->user, &reqs[k]),
                      op_names[st->op], err);
        }
        PT_RETURN_NOT_OK(coll_wait(c, reqs, k, err));
    }
    return PT_OK;
}

pt_status pt__mpi_bcast(pt_comm *c, void *buf, int64_t bytes, int root, pt_error *err) {
    PT_RETURN_NOT_OK(coll_begin(c, OP_BCAST, err));
    PT_RETURN_NOT_OK(bcast_pieces(c, buf, bytes, root, err));
    return coll_end(c, err);
}

static MPI_Datatype mpi_dtype(pt_dtype t) {
    switch (t) {
    case PT_DTYPE_INT32: return MPI_INT32_T;
    case PT_DTYPE_INT64: return MPI_INT64_T;
    case PT_DTYPE_FLOAT32: return MPI_FLOAT;
    case PT_DTYPE_FLOAT64: return MPI_DOUBLE;
    }
    return MPI_DATATYPE_NULL;
}

static MPI_Op mpi_op(pt_redop op) {
    return op == PT_REDOP_MIN ? MPI_MIN : op == PT_REDOP_MAX ? MPI_MAX : MPI_SUM;
}

/* Deterministic float sum: per step, gather everyone's slice on root, add
 * the slices in rank order, then (allreduce) broadcast the result. The
 * gather buffer is bounded by size * step bytes. */
static pt_status reduce_in_rank_order(pt_comm *c, unsigned char *buf, int64_t count, pt_dtype t,
                                      int root, bool all, pt_error *err) {
    mpi_state *st = c->mpi;
    int w = pt__comm_dtype_width(t);
    int64_t step_bytes = (int64_t)64 << 20;
    step_bytes /= c->size;
    if (step_bytes > c->chunk) step_bytes = c->chunk;
    int64_t step = pt__comm_chunk_elems(step_bytes, w);
    unsigned char *gbuf = NULL;
    int64_t first = count < step ? count : step;
    if (c->rank == root) {
        gbuf = pt_malloc((size_t)(first * w) * (size_t)c->size);
        if (!gbuf) {
            pt_error_set(err, PT_ENOMEM, "rank %d: %s: out of memory for the gather buffer",
                         c->rank, op_names[st->op]);
            return fail_with(c, err);
        }
    }
    pt_status s = PT_OK;
    for (int64_t i = 0; i < count && s == PT_OK; i += step) {
        int64_t n = count - i < step ? count - i : step;
        int bytes = (int)(n * w);
        unsigned char *slice = buf + i * w;
        MPI_Request r;
        int rc = MPI_Igather(slice, bytes, MPI_BYTE, gbuf, bytes, MPI_BYTE, root, st->user, &r);
        if (rc != MPI_SUCCESS) {
            s = mpi_fail(c, rc, op_names[st->op], err);
            break;
        }
        s = coll_wait(c, &r, 1, err);
        if (s != PT_OK) break;
        if (c->rank == root) {
            memcpy(slice, gbuf, (size_t)bytes);
            for (int q = 1; q < c->size; q++) {
                pt__comm_reduce_local(slice, gbuf + (size_t)q * (size_t)bytes, n, t, PT_REDOP_SUM);
            }
        }
        if (all) {
            rc = MPI_Ibcast(slice, bytes, MPI_BYTE, root, st->user, &r);
            if (rc != MPI_SUCCESS) {
                s = mpi_fail(c, rc, op_names[st->op], err);
                break;
            }
            s = coll_wait(c, &r, 1, err);
        }
    }
    /* After a timeout the gather may still write into gbuf: leave it. */
    if (s != PT_ETIMEOUT) pt_free(gbuf);
    return s;
}

pt_status pt__mpi_reduce(pt_comm *c, void *vbuf, int64_t count, pt_dtype t, pt_redop op, int root,
                         bool all, pt_error *err) {
    mpi_state *st = c->mpi;
    unsigned char *buf = vbuf;
    int w = pt__comm_dtype_width(t);
    bool fsum = op == PT_REDOP_SUM && (t == PT_DTYPE_FLOAT32 || t == PT_DTYPE_FLOAT64);
    PT_RETURN_NOT_OK(coll_begin(c, all ? OP_ALLREDUCE : OP_REDUCE, err));
    if (fsum && c->deterministic) {
        PT_RETURN_NOT_OK(reduce_in_rank_order(c, buf, count, t, all ? 0 : root, all, err));
        return coll_end(c, err);
    }
    /* Float sums reduce to one rank and broadcast, so every rank holds the
     * same bits (an allreduce may add in a different order per rank). */
    bool via_root = fsum && all;
    int target = all ? 0 : root;
    int64_t per = pt__comm_chunk_elems(c->chunk, w);
    int64_t n = count == 0 ? 0 : (count + per - 1) / per;
    MPI_Request reqs[WINDOW];
    for (int64_t i = 0; i < n; i += WINDOW) {
        int k = 0;
        for (int64_t j = i; j < n && j < i + WINDOW; j++, k++) {
            int64_t off = j * per;
            int len = (int)(count - off < per ? count - off : per);
            unsigned char *p = buf + off * w;
            int rc;
            if (all && !via_root) {
                rc = MPI_Iallreduce(MPI_IN_PLACE, p, len, mpi_dtype(t), mpi_op(op), st->user,
                                    &reqs[k]);
            } else if (c->rank == target) {
                rc = MPI_Ireduce(MPI_IN_PLACE, p, len, mpi_dtype(t), mpi_op(op), target, st->user,
                                 &reqs[k]);
            } else {
                rc = MPI_Ireduce(p, NULL, len, mpi_dtype(t), mpi_op(op), target, st->user,
                                 &reqs[k]);
            }
            if (rc != MPI_SUCCESS) return mpi_fail(c, rc, op_names[st->op], err);
        }
        PT_RETURN_NOT_OK(coll_wait(c, reqs, k, err));
    }
    if (via_root) PT_RETURN_NOT_OK(bcast_pieces(c, buf, count * w, 0, err));
    return coll_end(c, err);
}

pt_status pt__mpi_gather(pt_comm *c, const void *vsend, int64_t bytes, void *vrecv, int root,
                         bool all, pt_error *err) {
    mpi_state *st = c->mpi;
    const unsigned char *send = vsend;
    unsigned char *recv = vrecv;
    PT_RETURN_NOT_OK(coll_begin(c, all ? OP_ALLGATHER : OP_GATHER, err));
    int64_t n = pt__comm_nchunks(bytes, c->chunk);
    MPI_Request reqs[WINDOW];
    for (int64_t i = 0; i < n; i += WINDOW) {
        int k = 0;
        for (int64_t j = i; j < n && j < i + WINDOW; j++, k++) {
            int64_t off, len;
            pt__comm_chunk_at(bytes, c->chunk, j, &off, &len);
            /* Piece j of rank r's block lands at recv + r * bytes + off: a
             * receive type of `len` bytes whose extent is the whole block. */
            MPI_Datatype piece = MPI_BYTE, block = MPI_BYTE;
            int rcount = (int)len;
            if (n > 1) {
                MPI_CHECK(c, MPI_Type_contiguous((int)len, MPI_BYTE, &piece), "MPI_Type_contiguous",
                          err);
                MPI_CHECK(c, MPI_Type_create_resized(piece, 0, (MPI_Aint)bytes, &block),
                          "MPI_Type_create_resized", err);
                MPI_Type_free(&piece);
                MPI_CHECK(c, MPI_Type_commit(&block), "MPI_Type_commit", err);
                rcount = 1;
            }
            unsigned char *rp = recv ? recv + off : NULL;
            int rc = all ? MPI_Iallgather(send + off, (int)len, MPI_BYTE, rp, rcount, block,
                                          st->user, &reqs[k])
                         : MPI_Igather(send + off, (int)len, MPI_BYTE, rp, rcount, block, root,
                                       st->user, &reqs[k]);
            /* Freeing a type in use by a pending operation is allowed. */
            if (block != MPI_BYTE) MPI_Type_free(&block);
            if (rc != MPI_SUCCESS) return mpi_fail(c, rc, op_names[st->op], err);
        }
        PT_RETURN_NOT_OK(coll_wait(c, reqs, k, err));
    }
    return coll_end(c, err);
}

/* ------------------------------------------------------------------------ */
/* allgatherv / alltoallv: counts by collective, data point to point        */
/* ------------------------------------------------------------------------ */

/* Moves slen[r] bytes at sptr[r] to every rank r and receives rlen[r] bytes
 * from r into rptr[r] (r != self), in pieces of c->chunk, WINDOW pieces per
 * peer in flight. Both sides split a block the same way, so piece k of a
 * block always meets piece k. */
static pt_status data_phase(pt_comm *c, const unsigned char *const *sptr, const int64_t *slen,
                            unsigned char *const *rptr, const int64_t *rlen, pt_error *err) {
    mpi_state *st = c->mpi;
    int p = c->size;
    int64_t rounds = 0;
    for (int r = 0; r < p; r++) {
        if (r == c->rank) continue;
        int64_t a = pt__comm_nchunks(slen[r], c->chunk), b = pt__comm_nchunks(rlen[r], c->chunk);
        if (a > rounds) rounds = a;
        if (b > rounds) rounds = b;
    }
    /* Request slots: for each peer, WINDOW sends then WINDOW receives. */
    size_t nslots = (size_t)p * 2 * WINDOW;
    MPI_Request *reqs = pt_malloc(sizeof *reqs * nslots);
    if (!reqs) {
        pt_error_set(err, PT_ENOMEM, "rank %d: %s: out of memory", c->rank, op_names[st->op]);
        return fail_with(c, err);
    }
    pt_status s = PT_OK;
    for (int64_t i = 0; i < rounds && s == PT_OK; i += WINDOW) {
        for (size_t q = 0; q < nslots; q++) reqs[q] = MPI_REQUEST_NULL;
        for (int r = 0; r < p && s == PT_OK; r++) {
            if (r == c->rank) continue;
            for (int64_t j = i; j < i + WINDOW; j++) {
                int64_t off, len;
                MPI_Request *slot = &reqs[((size_t)r * 2) * WINDOW + (size_t)(j - i)];
                int rc = MPI_SUCCESS;
                if (j < pt__comm_nchunks(rlen[r], c->chunk)) {
                    pt__comm_chunk_at(rlen[r], c->chunk, j, &off, &len);
                    rc = MPI_Irecv(rptr[r] + off, (int)len, MPI_BYTE, r, TAG_DATA, st->data,
                                   slot + WINDOW);
                }
                if (rc == MPI_SUCCESS && j < pt__comm_nchunks(slen[r], c->chunk)) {
                    pt__comm_chunk_at(slen[r], c->chunk, j, &off, &len);
                    rc = MPI_Isend(sptr[r] + off, (int)len, MPI_BYTE, r, TAG_DATA, st->data, slot);
                }
                if (rc != MPI_SUCCESS) s = mpi_fail(c, rc, op_names[st->op], err);
            }
        }
        if (s != PT_OK) break;
        s = poll_until(c, reqs, (int)nslots, NULL, 0, st->deadline_ns, op_names[st->op], err);
        if (s == PT_ETIMEOUT) {
            int *late = pt_malloc(sizeof *late * (size_t)p);
            int nlate = 0;
            for (int r = 0; late && r < p; r++) {
                for (int q = 0; q < 2 * WINDOW; q++) {
                    if (reqs[(size_t)r * 2 * WINDOW + (size_t)q] != MPI_REQUEST_NULL) {
                        late[nlate++] = r;
                        break;
                    }
                }
            }
            char ts[32], who[512] = "some ranks";
            if (late && nlate > 0) format_ranks(who, sizeof who, late, nlate, nlate);
            pt_free(late);
            pt_error_set(err, PT_ETIMEOUT,
                         "rank %d: timed out after %s in %s (collective #%lld) waiting for data "
                         "to or from %s",
                         c->rank, tsec(c, ts, sizeof ts), op_names[st->op], (long long)st->seq,
                         who);
            fail_with(c, err);
            return PT_ETIMEOUT; /* reqs stays allocated: pending requests use it */
        }
    }
    pt_free(reqs);
    return s;
}

/* Allocates the receive buffer and sets rptr/rlen from the counts. */
static pt_status recv_layout(pt_comm *c, const int64_t *counts, void **out, unsigned char **rptr,
                             pt_error *err) {
    int64_t total = 0;
    for (int r = 0; r < c->size; r++) {
        if (counts[r] < 0 || counts[r] > INT64_MAX - total) {
            pt_error_set(err, PT_ECOMM, "rank %d: %s: rank %d announced %lld bytes", c->rank,
                         op_names[((mpi_state *)c->mpi)->op], r, (long long)counts[r]);
            return fail_with(c, err);
        }
        total += counts[r];
    }
    unsigned char *buf = (uint64_t)total > SIZE_MAX ? NULL : pt_malloc((size_t)total);
    if (!buf) {
        /* The peers will send anyway: the comm cannot stay in step. */
        pt_error_set(err, PT_ENOMEM, "rank %d: %s: out of memory for %lld received bytes",
                     c->rank, op_names[((mpi_state *)c->mpi)->op], (long long)total);
        return fail_with(c, err);
    }
    int64_t off = 0;
    for (int r = 0; r < c->size; r++) {
        rptr[r] = buf + off;
        off += counts[r];
    }
    *out = buf;
    return PT_OK;
}

typedef struct exch {
    const unsigned char **sptr;
    unsigned char **rptr;
    int64_t *slen;
} exch;

static pt_status exch_alloc(pt_comm *c, exch *x, pt_error *err) {
    size_t p = (size_t)c->size;
    x->sptr = pt_malloc(sizeof *x->sptr * p);
    x->rptr = pt_malloc(sizeof *x->rptr * p);
    x->slen = pt_malloc(sizeof *x->slen * p);
    if (x->sptr && x->rptr && x->slen) return PT_OK;
    pt_free(x->sptr);
    pt_free(x->rptr);
    pt_free(x->slen);
    return pt_error_set(err, PT_ENOMEM, "rank %d: out of memory", c->rank);
}

static void exch_free(exch *x) {
    pt_free(x->sptr);
    pt_free(x->rptr);
    pt_free(x->slen);
}

pt_status pt__mpi_allgatherv(pt_comm *c, const void *send, int64_t bytes, void **recv_out,
                             int64_t *counts, pt_error *err) {
    mpi_state *st = c->mpi;
    exch x;
    PT_RETURN_NOT_OK(exch_alloc(c, &x, err));
    pt_status s = coll_begin(c, OP_ALLGATHERV, err);
    MPI_Request r;
    if (s == PT_OK) {
        int rc = MPI_Iallgather(&bytes, 1, MPI_INT64_T, counts, 1, MPI_INT64_T, st->user, &r);
        s = rc == MPI_SUCCESS ? coll_wait(c, &r, 1, err) : mpi_fail(c, rc, "allgatherv", err);
    }
    if (s == PT_OK) s = coll_end(c, err);
    void *buf = NULL;
    if (s == PT_OK) s = recv_layout(c, counts, &buf, x.rptr, err);
    if (s == PT_OK) {
        for (int q = 0; q < c->size; q++) {
            x.sptr[q] = send;
            x.slen[q] = bytes;
        }
        if (bytes > 0) memcpy(x.rptr[c->rank], send, (size_t)bytes);
        s = data_phase(c, x.sptr, x.slen, x.rptr, counts, err);
    }
    /* After a timeout, pending receives may still write into buf. */
    if (s == PT_OK) {
        *recv_out = buf;
    } else if (s != PT_ETIMEOUT) {
        pt_free(buf);
    }
    exch_free(&x);
    return s;
}

pt_status pt__mpi_alltoallv(pt_comm *c, const void *vsend, const int64_t *send_counts,
                            void **recv_out, int64_t *counts, pt_error *err) {
    mpi_state *st = c->mpi;
    const unsigned char *send = vsend;
    exch x;
    PT_RETURN_NOT_OK(exch_alloc(c, &x, err));
    pt_status s = coll_begin(c, OP_ALLTOALLV, err);
    MPI_Request r;
    if (s == PT_OK) {
        int rc = MPI_Ialltoall(send_counts, 1, MPI_INT64_T, counts, 1, MPI_INT64_T, st->user, &r);
        s = rc == MPI_SUCCESS ? coll_wait(c, &r, 1, err) : mpi_fail(c, rc, "alltoallv", err);
    }
    if (s == PT_OK) s = coll_end(c, err);
    void *buf = NULL;
    if (s == PT_OK) s = recv_layout(c, counts, &buf, x.rptr, err);
    if (s == PT_OK) {
        int64_t off = 0;
        for (int q = 0; q < c->size; q++) {
            x.sptr[q] = send + off;
            x.slen[q] = send_counts[q];
            off += send_counts[q];
        }
        int me = c->rank;
        if (counts[me] > 0) memcpy(x.rptr[me], x.sptr[me], (size_t)counts[me]);
        s = data_phase(c, x.sptr, x.slen, x.rptr, counts, err);
    }
    if (s == PT_OK) {
        *recv_out = buf;
    } else if (s != PT_ETIMEOUT) {
        pt_free(buf);
    }
    exch_free(&x);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Point to point                                                           */
/* ------------------------------------------------------------------------ */

/* A message is a 16-byte header (size, sender's chunk) and then the bytes
 * in pieces of that chunk, all with the user's tag: MPI keeps messages of
 * one sender and tag in order, so the pieces follow their header. */

pt_status pt__mpi_send(pt_comm *c, const void *vbuf, int64_t bytes, int dest, int tag,
                       pt_error *err) {
    mpi_state *st = c->mpi;
    const unsigned char *buf = vbuf;
    int64_t deadline = deadline_after(c);
    int64_t *hdr = st->hdr;
    hdr[0] = bytes;
    hdr[1] = c->chunk;
    MPI_Request reqs[WINDOW + 1];
    MPI_CHECK(c, MPI_Isend(hdr, 2, MPI_INT64_T, dest, tag, st->user, &reqs[0]), "send", err);
    int k = 1;
    int64_t n = pt__comm_nchunks(bytes, c->chunk);
    for (int64_t j = 0;; j++) {
        if (j < n) {
            int64_t off, len;
            pt__comm_chunk_at(bytes, c->chunk, j, &off, &len);
            MPI_CHECK(c, MPI_Isend(buf + off, (int)len, MPI_BYTE, dest, tag, st->user, &reqs[k]),
                      "send", err);
            k++;
        }
        if (k == WINDOW + 1 || (j >= n - 1 && k > 0)) {
            pt_status s = poll_until(c, reqs, k, NULL, 0, deadline, "send", err);
            if (s == PT_ETIMEOUT) {
                char ts[32];
                pt_error_set(err, PT_ETIMEOUT,
                             "rank %d: timed out after %s in send of %lld bytes (tag %d) "
                             "waiting for rank %d to receive it",
                             c->rank, tsec(c, ts, sizeof ts), (long long)bytes, tag, dest);
                return fail_with(c, err);
            }
            if (s != PT_OK) return s;
            k = 0;
        }
        if (j >= n - 1) break;
    }
    return PT_OK;
}

static pt_status recv_wait(pt_comm *c, MPI_Request *r, int64_t deadline, int src, int tag,
                           pt_error *err) {
    pt_status s = poll_until(c, r, 1, NULL, 0, deadline, "recv", err);
    if (s == PT_ETIMEOUT) {
        char ts[32];
        pt_error_set(err, PT_ETIMEOUT,
                     "rank %d: timed out after %s in recv (tag %d) waiting for rank %d", c->rank,
                     tsec(c, ts, sizeof ts), tag, src);
        return fail_with(c, err);
    }
    return s;
}

pt_status pt__mpi_recv(pt_comm *c, void *vbuf, int64_t cap, int src, int tag, void **alloc_out,
                       int64_t *bytes_out, pt_error *err) {
    mpi_state *st = c->mpi;
    int64_t deadline = deadline_after(c);
    int64_t *hdr = st->hdr;
    MPI_Request r;
    MPI_CHECK(c, MPI_Irecv(hdr, 2, MPI_INT64_T, src, tag, st->user, &r), "recv", err);
    PT_RETURN_NOT_OK(recv_wait(c, &r, deadline, src, tag, err));
    int64_t bytes = hdr[0], chunk = hdr[1];
    if (bytes < 0 || chunk < 1 || chunk > PT__COMM_CHUNK_MAX) {
        pt_error_set(err, PT_ECOMM,
                     "rank %d: recv (tag %d) from rank %d: bad message header (%lld bytes, "
                     "chunk %lld); was it sent with pt_comm_send?",
                     c->rank, tag, src, (long long)bytes, (long long)chunk);
        return fail_with(c, err);
    }
    if (bytes_out) *bytes_out = bytes;
    unsigned char *buf = vbuf;
    pt_status result = PT_OK;
    if (alloc_out) {
        buf = (uint64_t)bytes > SIZE_MAX ? NULL : pt_malloc((size_t)bytes);
        if (buf) {
            *alloc_out = buf;
        } else {
            result = pt_error_set(err, PT_ENOMEM,
                                  "rank %d: recv_alloc: out of memory for %lld bytes from rank "
                                  "%d (tag %d); the message was discarded",
                                  c->rank, (long long)bytes, src, tag);
        }
    } else if (bytes > cap) {
        result = pt_error_set(err, PT_ERANGE,
                              "rank %d: pt_comm_recv: the message of %lld bytes from rank %d "
                              "(tag %d) does not fit the buffer of %lld bytes; it was discarded",
                              c->rank, (long long)bytes, src, tag, (long long)cap);
        buf = NULL;
    }
    /* Without a buffer the pieces are drained one by one into a scratch
     * piece, so that the next message from src starts with its header. */
    unsigned char *scratch = NULL;
    if (!buf && bytes > 0) {
        scratch = pt_malloc((size_t)(bytes < chunk ? bytes : chunk));
        if (!scratch) {
            pt_error_set(err, PT_ENOMEM, "rank %d: recv: out of memory draining a message",
                         c->rank);
            return fail_with(c, err);
        }
    }
    int64_t n = pt__comm_nchunks(bytes, chunk);
    MPI_Request reqs[WINDOW];
    for (int64_t i = 0; i < n; i += buf ? WINDOW : 1) {
        int k = 0;
        for (int64_t j = i; j < n && j < i + (buf ? WINDOW : 1); j++, k++) {
            int64_t off, len;
            pt__comm_chunk_at(bytes, chunk, j, &off, &len);
            int rc = MPI_Irecv(buf ? buf + off : scratch, (int)len, MPI_BYTE, src, tag, st->user,
                               &reqs[k]);
            if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "recv", err);
        }
        pt_status s = poll_until(c, reqs, k, NULL, 0, deadline, "recv", err);
        if (s == PT_ETIMEOUT) {
            char ts[32];
            pt_error_set(err, PT_ETIMEOUT,
                         "rank %d: timed out after %s in recv (tag %d) of %lld bytes waiting "
                         "for the rest from rank %d",
                         c->rank, tsec(c, ts, sizeof ts), tag, (long long)bytes, src);
            return fail_with(c, err); /* buffers stay: pending receives use them */
        }
        if (s != PT_OK) return s;
    }
    pt_free(scratch);
    return result;
}

#else
/* Built without MPI: only the self backend exists (comm.c). */
typedef int pt__comm_mpi_unused;
#endif
