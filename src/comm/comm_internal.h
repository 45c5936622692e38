/*
 * comm_internal.h - the pt_comm object shared by the backend-neutral front
 * (comm.c: arguments, self backend, message queue to oneself) and the MPI
 * backend (comm_mpi.c), plus the chunking arithmetic both rely on.
 */
#ifndef PT_COMM_INTERNAL_H
#define PT_COMM_INTERNAL_H

#include "partita/comm.h"

typedef enum pt__comm_backend { PT__COMM_SELF = 0, PT__COMM_MPI = 1 } pt__comm_backend;

/* A message sent to oneself, waiting for its receive. */
typedef struct pt__comm_msg {
    struct pt__comm_msg *next;
    int tag;
    int64_t bytes;
    unsigned char data[];
} pt__comm_msg;

struct pt_comm {
    pt__comm_backend backend;
    int rank, size;
    double timeout_s;
    bool deterministic;
    /* Largest piece one MPI call moves, in bytes (below INT_MAX). The same
     * on every rank: rank 0's value is broadcast at init. */
    int64_t chunk;
    /* First failure, returned again by every later call. */
    pt_status failed;
    char failed_msg[PT_ERROR_MSG_SIZE];
    /* Messages to oneself, oldest first. */
    pt__comm_msg *selfq_head, *selfq_tail;
    void *mpi; /* backend state (comm_mpi.c) */
};

/* Default chunk: 1 GiB, far below MPI's INT_MAX counts. */
#define PT__COMM_CHUNK_DEFAULT ((int64_t)1 << 30)
#define PT__COMM_CHUNK_MAX ((int64_t)0x7fffffff)

/* Number of pieces of at most `chunk` bytes that `bytes` splits into (0 for
 * 0 bytes), and the offset/length of piece i. */
static inline int64_t pt__comm_nchunks(int64_t bytes, int64_t chunk) {
    return bytes <= 0 ? 0 : (bytes + chunk - 1) / chunk;
}
static inline void pt__comm_chunk_at(int64_t bytes, int64_t chunk, int64_t i, int64_t *off,
                                     int64_t *len) {
    *off = i * chunk;
    *len = bytes - *off < chunk ? bytes - *off : chunk;
}
/* Chunk in whole elements of `width` bytes (at least one element). */
static inline int64_t pt__comm_chunk_elems(int64_t chunk, int width) {
    int64_t e = chunk / width;
    return e < 1 ? 1 : e;
}

/* Test knob: sets the chunk size of `c` (bytes, >= 1, capped at INT_MAX).
 * Collective in spirit: every rank must set the same value. The environment
 * variable PARTITA_COMM_CHUNK does the same at init. */
void pt__comm_set_chunk(pt_comm *c, int64_t bytes);
int64_t pt__comm_get_chunk(const pt_comm *c);

/* Parses PARTITA_COMM_CHUNK-style sizes; 0 when unset or invalid. */
int64_t pt__comm_chunk_from_env(void);

/* Marks `c` failed with err's code and message (the first failure wins). */
pt_status pt__comm_fail(pt_comm *c, pt_error *err);

/* Element width of a dtype, 0 when unsupported. */
int pt__comm_dtype_width(pt_dtype t);
const char *pt__comm_dtype_name(pt_dtype t);
const char *pt__comm_redop_name(pt_redop op);

/* Reduces `n` values of `src` into `dst` (dst = dst op src), in order. */
void pt__comm_reduce_local(void *dst, const void *src, int64_t n, pt_dtype t, pt_redop op);

#ifdef PT_HAVE_MPI
/* MPI backend, comm_mpi.c. Arguments are validated by comm.c. */
pt_status pt__mpi_init(pt_comm *c, pt_error *err);
void pt__mpi_free(pt_comm *c);
const char *pt__mpi_library_version(char *buf, size_t cap);
const char *pt__mpi_processor_name(char *buf, size_t cap);
pt_status pt__mpi_barrier(pt_comm *c, pt_error *err);
pt_status pt__mpi_bcast(pt_comm *c, void *buf, int64_t bytes, int root, pt_error *err);
pt_status pt__mpi_reduce(pt_comm *c, void *buf, int64_t count, pt_dtype t, pt_redop op,
                         int root, bool all, pt_error *err);
pt_status pt__mpi_gather(pt_comm *c, const void *send, int64_t bytes, void *recv, int root,
                         bool all, pt_error *err);
pt_status pt__mpi_allgatherv(pt_comm *c, const void *send, int64_t bytes, void **recv_out,
                             int64_t *recv_counts, pt_error *err);
pt_status pt__mpi_alltoallv(pt_comm *c, const void *send, const int64_t *send_counts,
                            void **recv_out, int64_t *recv_counts, pt_error *err);
pt_status pt__mpi_send(pt_comm *c, const void *buf, int64_t bytes, int dest, int tag,
                       pt_error *err);
/* Receives a message; the buffer is `buf` of `cap` bytes, or allocated when
 * `alloc_out` is not NULL. */
pt_status pt__mpi_recv(pt_comm *c, void *buf, int64_t cap, int src, int tag, void **alloc_out,
                       int64_t *bytes_out, pt_error *err);
#endif

#endif
