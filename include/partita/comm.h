/*
 * partita/comm.h - communication between the processes of a job: rank and
 * size, barrier, broadcast, reductions, gathers, all-to-all exchange of byte
 * buffers, and tagged point-to-point messages.
 *
 * Two backends: `self` (one process; every collective is an identity or a
 * copy) and `mpi` (the processes started by mpirun/mpiexec). The comm layer
 * moves bytes and numbers; it never decides what to send.
 *
 * Never a hang: every wait is bounded by the comm's timeout (opts.timeout_s,
 * else the PARTITA_COMM_TIMEOUT environment variable in seconds, else 60).
 * A call that runs out of time returns PT_ETIMEOUT with a message naming the
 * rank that reports, the operation and the ranks it was waiting for
 * ("rank 2: timed out after 5 s in allreduce waiting for rank 3"). After a
 * timeout or a transport error the comm is *failed*: every later call
 * returns that first error again, and pt_comm_free still returns.
 *
 * Sizes are int64 bytes everywhere: messages over 2 GiB are split into
 * chunks below MPI's int limit.
 *
 * Thread safety: a pt_comm may be used from any thread, but by one thread at
 * a time (the MPI backend asks for MPI_THREAD_SERIALIZED).
 */
#ifndef PARTITA_COMM_H
#define PARTITA_COMM_H

#include <stdbool.h>

#include "partita/base.h"
#include "partita/col.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt_comm pt_comm;

/* Element types of reductions. The values are those of the matching pt_type,
 * so a column's type can be passed as (pt_dtype)col->type. */
typedef enum pt_dtype {
    PT_DTYPE_INT32 = PT_TYPE_INT32,
    PT_DTYPE_INT64 = PT_TYPE_INT64,
    PT_DTYPE_FLOAT32 = PT_TYPE_FLOAT32,
    PT_DTYPE_FLOAT64 = PT_TYPE_FLOAT64
} pt_dtype;

typedef enum pt_redop { PT_REDOP_SUM = 0, PT_REDOP_MIN, PT_REDOP_MAX } pt_redop;

/* Largest user tag of pt_comm_send/recv (MPI guarantees at least 32767). */
#define PT_COMM_TAG_MAX 32767

typedef struct pt_comm_opts {
    /* "auto" (NULL means auto): mpi when the process was started by
     * mpirun/mpiexec (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK is set) and
     * the library was built with MPI, else self. "self" or "mpi" force one. */
    const char *backend;
    /* Bound on every wait, in seconds; <= 0: PARTITA_COMM_TIMEOUT or 60. */
    double timeout_s;
    /* Float sums are computed on rank 0 in rank order (gather, sum, bcast),
     * so the result is the serial sum x0 + x1 + ... whatever the MPI library
     * or its algorithm. Without it, float sums are reduced by MPI to rank 0
     * and broadcast: identical on every rank and repeatable for a given size
     * and MPI build, but not necessarily in rank order. */
    bool deterministic;
} pt_comm_opts;

/* Fills defaults (auto backend, timeout from the environment, not
 * deterministic). */
PT_API void pt_comm_opts_init(pt_comm_opts *o);

/* Creates a communicator (opts may be NULL for defaults). The MPI backend
 * initialises MPI with MPI_Init_thread(MPI_THREAD_SERIALIZED) unless the
 * embedding application already did (then it leaves it to the application
 * to finalize), and tells the logger the rank (pt_log_set_rank). MPI can be
 * started only once per process: create one MPI comm and keep it for the
 * life of the job. Errors: PT_EINVAL (unknown backend, bad
 * PARTITA_COMM_TIMEOUT), PT_EUNSUPPORTED (mpi asked of a library built
 * without MPI, or MPI already finalized), PT_ECOMM, PT_ETIMEOUT, PT_ENOMEM. */
PT_API pt_status pt_comm_init(const pt_comm_opts *opts, pt_comm **out, pt_error *err) PT_MUST_USE;

/* Frees the comm and finalizes MPI if pt_comm_init started it (when the
 * last comm is freed). MPI_Finalize waits for every process of the job, so
 * that last free first meets the other ranks in a barrier bounded by the
 * timeout; if a rank is missing, or after any earlier failure, MPI_Finalize
 * is skipped (a lost or stuck peer would make it hang) and the process
 * should exit. Always returns. NULL is ignored. */
PT_API void pt_comm_free(pt_comm *c);

/* True when a process manager (mpirun, mpiexec, srun) started this process
 * (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK is set). */
PT_API bool pt_comm_started_by_mpirun(void);

/* The job's comm, shared by the whole process: created on the first call
 * (backend auto, deterministic float sums) and freed when the process
 * exits normally, which is when the ranks meet a last time and MPI is
 * finalized. Contexts made while the process runs under mpirun use it
 * (see pt_ctx_opts.comm), so a program distributes its plans without any
 * change. Later calls return the same comm, or the first call's error. */
PT_API pt_status pt_comm_world(pt_comm **out, pt_error *err) PT_MUST_USE;

PT_API int pt_comm_rank(const pt_comm *c);
PT_API int pt_comm_size(const pt_comm *c);
/* "self" or "mpi". */
PT_API const char *pt_comm_backend_name(const pt_comm *c);
/* True once a call has failed; every later call returns that error. */
PT_API bool pt_comm_failed(const pt_comm *c);
/* The timeout in seconds, and a new one for later calls (<= 0 is ignored). */
PT_API double pt_comm_timeout(const pt_comm *c);
PT_API void pt_comm_set_timeout(pt_comm *c, double seconds);

/* The MPI library's version string (MPI_Get_library_version, first line)
 * into buf (always NUL-terminated); returns buf. For the self backend
 * "none"; with c NULL, the version of the MPI library linked in, or "none"
 * when built without MPI. */
PT_API const char *pt_comm_library_version(const pt_comm *c, char *buf, size_t cap);
/* The host name this rank runs on (MPI_Get_processor_name or gethostname). */
PT_API const char *pt_comm_processor_name(const pt_comm *c, char *buf, size_t cap);

/* ------------------------------------------------------------------------ */
/* Collectives. Every rank must call the same collectives in the same order  */
/* with matching arguments. Errors common to all: PT_EINVAL (bad argument,   */
/* named), PT_ETIMEOUT (message names the missing ranks when known),         */
/* PT_ECOMM (transport error, or ranks calling different collectives).       */
/* ------------------------------------------------------------------------ */

PT_API pt_status pt_comm_barrier(pt_comm *c, pt_error *err) PT_MUST_USE;

/* Copies `bytes` bytes of `buf` on `root` into `buf` on every rank. */
PT_API pt_status pt_comm_bcast(pt_comm *c, void *buf, int64_t bytes, int root, pt_error *err)
    PT_MUST_USE;

/* Element-wise reduction of `count` values of type `dtype` in place: on
 * return `buf` holds the result on every rank (allreduce) or on `root`
 * (reduce; the other ranks' buffers are unchanged). Every rank gets the
 * same bits (see pt_comm_opts.deterministic for float sums). Integer sums
 * wrap around on overflow. */
PT_API pt_status pt_comm_allreduce(pt_comm *c, void *buf, int64_t count, pt_dtype dtype,
                                   pt_redop op, pt_error *err) PT_MUST_USE;
PT_API pt_status pt_comm_reduce(pt_comm *c, void *buf, int64_t count, pt_dtype dtype,
                                pt_redop op, int root, pt_error *err) PT_MUST_USE;

/* Each rank contributes `bytes` bytes (the same on every rank); rank r's
 * block lands at recv + r * bytes. `recv` holds size * bytes; for gather
 * it is used on `root` only (may be NULL elsewhere). */
PT_API pt_status pt_comm_gather(pt_comm *c, const void *send, int64_t bytes, void *recv,
                                int root, pt_error *err) PT_MUST_USE;
PT_API pt_status pt_comm_allgather(pt_comm *c, const void *send, int64_t bytes, void *recv,
                                   pt_error *err) PT_MUST_USE;

/* Each rank contributes `bytes` bytes (may differ between ranks, may be 0).
 * On return *recv_out (allocated with pt_malloc; the caller frees it with
 * pt_free) holds every rank's block in rank order, and recv_counts_out
 * (caller storage of size entries) the size of each block. */
PT_API pt_status pt_comm_allgatherv(pt_comm *c, const void *send, int64_t bytes,
                                    void **recv_out, int64_t *recv_counts_out, pt_error *err)
    PT_MUST_USE;

/* All-to-all exchange of byte blocks. `send` holds size blocks back to back
 * in rank order, block r of send_counts[r] bytes (0 allowed) going to rank
 * r. The counts are exchanged first; on return *recv_out (pt_malloc; the
 * caller frees it) holds the blocks received, in rank order of the
 * senders, and recv_counts_out[r] (caller storage of size entries) the
 * bytes received from rank r. */
PT_API pt_status pt_comm_alltoallv(pt_comm *c, const void *send, const int64_t *send_counts,
                                   void **recv_out, int64_t *recv_counts_out, pt_error *err)
    PT_MUST_USE;

/* ------------------------------------------------------------------------ */
/* Point to point                                                           */
/* ------------------------------------------------------------------------ */

/* Sends `bytes` bytes to rank `dest` with `tag` in [0, PT_COMM_TAG_MAX].
 * Messages between two ranks with the same tag arrive in order. Like MPI,
 * a small message may be buffered and the call return before the receiver
 * posts its receive; a large one waits for the receiver (bounded by the
 * timeout). A message to oneself is queued and never waits. */
PT_API pt_status pt_comm_send(pt_comm *c, const void *buf, int64_t bytes, int dest, int tag,
                              pt_error *err) PT_MUST_USE;

/* Receives the next message from rank `src` with `tag` into `buf` of `cap`
 * bytes and stores its size in *bytes_out (may be NULL). A message larger
 * than `cap` is received and discarded and the call fails with PT_ERANGE
 * (the comm stays usable). A receive from oneself with no queued message
 * fails at once with PT_ETIMEOUT (it could never complete). */
PT_API pt_status pt_comm_recv(pt_comm *c, void *buf, int64_t cap, int src, int tag,
                              int64_t *bytes_out, pt_error *err) PT_MUST_USE;

/* Like pt_comm_recv for a message of unknown size: the size is learned
 * first and *buf_out allocated with pt_malloc (the caller frees it). */
PT_API pt_status pt_comm_recv_alloc(pt_comm *c, int src, int tag, void **buf_out,
                                    int64_t *bytes_out, pt_error *err) PT_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
