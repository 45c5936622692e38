/*
 * comm.c - the backend-neutral half of pt_comm: option and argument checks,
 * the failed state, the `self` backend (one process: collectives are copies)
 * and the queue of messages a rank sends to itself, which both backends use
 * so that a send to oneself never waits on a receive that comes later.
 */
#include <limits.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "comm/comm_internal.h"

void pt_comm_opts_init(pt_comm_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->backend = "auto";
}

int pt__comm_dtype_width(pt_dtype t) {
    switch (t) {
    case PT_DTYPE_INT32: return 4;
    case PT_DTYPE_INT64: return 8;
    case PT_DTYPE_FLOAT32: return 4;
    case PT_DTYPE_FLOAT64: return 8;
    }
    return 0;
}

const char *pt__comm_dtype_name(pt_dtype t) {
    switch (t) {
    case PT_DTYPE_INT32: return "int32";
    case PT_DTYPE_INT64: return "int64";
    case PT_DTYPE_FLOAT32: return "float32";
    case PT_DTYPE_FLOAT64: return "float64";
    }
    return "unknown";
}

const char *pt__comm_redop_name(pt_redop op) {
    switch (op) {
    case PT_REDOP_SUM: return "sum";
    case PT_REDOP_MIN: return "min";
    case PT_REDOP_MAX: return "max";
    }
    return "unknown";
}

/* Integer sums go through unsigned arithmetic so that overflow wraps (as
 * MPI's does) instead of being undefined. */
#define PT__REDUCE_LOOP(T, SUMEXPR)                                         \
    do {                                                                   \
        T *d = dst;                                                        \
        const T *s = src;                                                  \
        switch (op) {                                                      \
        case PT_REDOP_SUM:                                                 \
            for (int64_t i = 0; i < n; i++) d[i] = SUMEXPR;                \
            break;                                                         \
        case PT_REDOP_MIN:                                                 \
            for (int64_t i = 0; i < n; i++) d[i] = s[i] < d[i] ? s[i] : d[i]; \
            break;                                                         \
        case PT_REDOP_MAX:                                                 \
            for (int64_t i = 0; i < n; i++) d[i] = s[i] > d[i] ? s[i] : d[i]; \
            break;                                                         \
        }                                                                  \
    } while (0)

void pt__comm_reduce_local(void *dst, const void *src, int64_t n, pt_dtype t, pt_redop op) {
    switch (t) {
    case PT_DTYPE_INT32: PT__REDUCE_LOOP(int32_t, (int32_t)((uint32_t)d[i] + (uint32_t)s[i])); break;
    case PT_DTYPE_INT64: PT__REDUCE_LOOP(int64_t, (int64_t)((uint64_t)d[i] + (uint64_t)s[i])); break;
    case PT_DTYPE_FLOAT32: PT__REDUCE_LOOP(float, d[i] + s[i]); break;
    case PT_DTYPE_FLOAT64: PT__REDUCE_LOOP(double, d[i] + s[i]); break;
    }
}

int64_t pt__comm_chunk_from_env(void) {
    const char *v = getenv("PARTITA_COMM_CHUNK");
    if (!v || !*v) return 0;
    int64_t bytes;
    if (pt_parse_size(v, "PARTITA_COMM_CHUNK", &bytes, NULL) != PT_OK || bytes < 1) {
        pt_log_warn("PARTITA_COMM_CHUNK='%s' is not a positive size; using the default", v);
        return 0;
    }
    return bytes > PT__COMM_CHUNK_MAX ? PT__COMM_CHUNK_MAX : bytes;
}

void pt__comm_set_chunk(pt_comm *c, int64_t bytes) {
    if (!c) return;
    if (bytes < 1) bytes = 1;
    c->chunk = bytes > PT__COMM_CHUNK_MAX ? PT__COMM_CHUNK_MAX : bytes;
}

int64_t pt__comm_get_chunk(const pt_comm *c) { return c ? c->chunk : 0; }

pt_status pt__comm_fail(pt_comm *c, pt_error *err) {
    pt_status code = err && err->code != PT_OK ? err->code : PT_ECOMM;
    if (c->failed == PT_OK) {
        c->failed = code;
        snprintf(c->failed_msg, sizeof c->failed_msg, "%s", err ? err->msg : pt_status_str(code));
        pt_log_info("%s", c->failed_msg);
    }
    return code;
}

static pt_status timeout_from_env(double *out, pt_error *err) {
    *out = 60.0;
    const char *v = getenv("PARTITA_COMM_TIMEOUT");
    if (!v || !*v) return PT_OK;
    char *end;
    double t = strtod(v, &end);
    if (end == v || *end != '\0' || !(t > 0) || t > 1e9) {
        return pt_error_set(err, PT_EINVAL,
                            "PARTITA_COMM_TIMEOUT: '%s' is not a positive number of seconds", v);
    }
    *out = t;
    return PT_OK;
}

/* True when a process manager (Open MPI's mpirun, MPICH/Intel's Hydra,
 * PMIx launchers such as srun) started this process. */
bool pt_comm_started_by_mpirun(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return true;
    }
    return false;
}

pt_status pt_comm_init(const pt_comm_opts *opts, pt_comm **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_comm_init: out is NULL");
    *out = NULL;
    pt_comm_opts o;
    pt_comm_opts_init(&o);
    if (opts) o = *opts;
    const char *name = o.backend && *o.backend ? o.backend : "auto";
    pt__comm_backend backend;
    if (strcasecmp(name, "self") == 0) {
        backend = PT__COMM_SELF;
    } else if (strcasecmp(name, "mpi") == 0) {
#ifndef PT_HAVE_MPI
        return pt_error_set(err, PT_EUNSUPPORTED,
                            "opts.backend: 'mpi' asked, but partita was built without MPI "
                            "(configure with -DPARTITA_MPI=ON and libopenmpi-dev installed)");
#else
        backend = PT__COMM_MPI;
#endif
    } else if (strcasecmp(name, "auto") == 0) {
        backend = PT__COMM_SELF;
        if (pt_comm_started_by_mpirun()) {
#ifdef PT_HAVE_MPI
            backend = PT__COMM_MPI;
#else
            pt_log_warn("started by mpirun, but partita was built without MPI: "
                        "every process runs alone (backend self)");
#endif
        }
    } else {
        return pt_error_set(err, PT_EINVAL,
                            "opts.backend: unknown backend '%s' (expected auto, self or mpi)",
                            name);
    }
    double timeout = o.timeout_s;
    if (!(timeout > 0)) PT_RETURN_NOT_OK(timeout_from_env(&timeout, err));

    pt_comm *c = pt_calloc(1, sizeof *c);
    if (!c) return pt_error_set(err, PT_ENOMEM, "pt_comm_init: out of memory");
    c->backend = backend;
    c->rank = 0;
    c->size = 1;
    c->timeout_s = timeout;
    c->deterministic = o.deterministic;
    int64_t chunk = pt__comm_chunk_from_env();
    c->chunk = chunk > 0 ? chunk : PT__COMM_CHUNK_DEFAULT;
#ifdef PT_HAVE_MPI
    if (backend == PT__COMM_MPI) {
        pt_status s = pt__mpi_init(c, err);
        if (s != PT_OK) {
            pt__mpi_free(c);
            pt_free(c);
            return s;
        }
        pt_log_set_rank(c->rank);
    }
#endif
    *out = c;
    return PT_OK;
}

/* The job-wide comm: made on first use, freed at exit (after main returns,
 * so every context and frame that used it is gone). */
static pthread_mutex_t g_world_lock = PTHREAD_MUTEX_INITIALIZER;
static pt_comm *g_world;
static bool g_world_tried;
static pt_status g_world_status;
static pt_error g_world_err;

static void world_free(void) {
    pthread_mutex_lock(&g_world_lock);
    pt_comm *c = g_world;
    g_world = NULL;
    pthread_mutex_unlock(&g_world_lock);
    pt_comm_free(c);
}

pt_status pt_comm_world(pt_comm **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_comm_world: out is NULL");
    pthread_mutex_lock(&g_world_lock);
    if (!g_world_tried) {
        g_world_tried = true;
        pt_comm_opts o;
        pt_comm_opts_init(&o);
        o.deterministic = true;
        pt_error_clear(&g_world_err);
        g_world_status = pt_comm_init(&o, &g_world, &g_world_err);
        if (g_world_status == PT_OK) atexit(world_free);
    }
    pt_status st = g_world_status;
    *out = g_world;
    if (st != PT_OK && err) *err = g_world_err;
    pthread_mutex_unlock(&g_world_lock);
    return st;
}

void pt_comm_free(pt_comm *c) {
    if (!c) return;
#ifdef PT_HAVE_MPI
    if (c->backend == PT__COMM_MPI) pt__mpi_free(c);
#endif
    for (pt__comm_msg *m = c->selfq_head, *next; m; m = next) {
        next = m->next;
        pt_free(m);
    }
    pt_free(c);
}

int pt_comm_rank(const pt_comm *c) { return c ? c->rank : 0; }
int pt_comm_size(const pt_comm *c) { return c ? c->size : 1; }
const char *pt_comm_backend_name(const pt_comm *c) {
    return c && c->backend == PT__COMM_MPI ? "mpi" : "self";
}
bool pt_comm_failed(const pt_comm *c) { return c && c->failed != PT_OK; }
double pt_comm_timeout(const pt_comm *c) { return c ? c->timeout_s : 0; }
void pt_comm_set_timeout(pt_comm *c, double seconds) {
    if (c && seconds > 0) c->timeout_s = seconds;
}

const char *pt_comm_library_version(const pt_comm *c, char *buf, size_t cap) {
    if (!buf || cap == 0) return buf;
#ifdef PT_HAVE_MPI
    if (!c || c->backend == PT__COMM_MPI) return pt__mpi_library_version(buf, cap);
#endif
    (void)c;
    snprintf(buf, cap, "none");
    return buf;
}

const char *pt_comm_processor_name(const pt_comm *c, char *buf, size_t cap) {
    if (!buf || cap == 0) return buf;
#ifdef PT_HAVE_MPI
    if (c && c->backend == PT__COMM_MPI) return pt__mpi_processor_name(buf, cap);
#endif
    if (gethostname(buf, cap) != 0) snprintf(buf, cap, "unknown");
    buf[cap - 1] = '\0';
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Argument checks                                                          */
/* ------------------------------------------------------------------------ */

static pt_status check_comm(const pt_comm *c, const char *op, pt_error *err) {
    if (!c) return pt_error_set(err, PT_EINVAL, "pt_comm_%s: c is NULL", op);
    if (c->failed != PT_OK) {
        return pt_error_set(err, c->failed, "pt_comm_%s: the comm failed earlier: %s", op,
                            c->failed_msg);
    }
    return PT_OK;
}

static pt_status check_rank(const pt_comm *c, const char *op, const char *param, int r,
                            pt_error *err) {
    if (r < 0 || r >= c->size) {
        return pt_error_set(err, PT_EINVAL, "pt_comm_%s: %s %d is not a rank (size %d)", op,
                            param, r, c->size);
    }
    return PT_OK;
}

static pt_status check_bytes(const char *op, const char *param, const void *p, int64_t n,
                             pt_error *err) {
    if (n < 0) {
        return pt_error_set(err, PT_EINVAL, "pt_comm_%s: %s is negative (%lld)", op, param,
                            (long long)n);
    }
    if (n > 0 && !p) {
        return pt_error_set(err, PT_EINVAL, "pt_comm_%s: buffer is NULL for %lld bytes", op,
                            (long long)n);
    }
    return PT_OK;
}

static pt_status check_tag(const char *op, int tag, pt_error *err) {
    if (tag < 0 || tag > PT_COMM_TAG_MAX) {
        return pt_error_set(err, PT_EINVAL, "pt_comm_%s: tag %d is outside [0, %d]", op, tag,
                            PT_COMM_TAG_MAX);
    }
    return PT_OK;
}

#ifdef PT_HAVE_MPI
static bool is_mpi(const pt_comm *c) { return c->backend == PT__COMM_MPI && c->size > 1; }
#endif

/* ------------------------------------------------------------------------ */
/* Collectives                                                              */
/* ------------------------------------------------------------------------ */

pt_status pt_comm_barrier(pt_comm *c, pt_error *err) {
    PT_RETURN_NOT_OK(check_comm(c, "barrier", err));
#ifdef PT_HAVE_MPI
    if (is_mpi(c)) return pt__mpi_barrier(c, err);
#endif
    return PT_OK;
}

pt_status pt_comm_bcast(pt_comm *c, void *buf, int64_t bytes, int root, pt_error *err) {
    PT_RETURN_NOT_OK(check_comm(c, "bcast", err));
    PT_RETURN_NOT_OK(check_bytes("bcast", "bytes", buf, bytes, err));
    PT_RETURN_NOT_OK(check_rank(c, "bcast", "root", root, err));
#ifdef PT_HAVE_MPI
    if (is_mpi(c)) return pt__mpi_bcast(c, buf, bytes, root, err);
#endif
    return PT_OK;
}

static pt_status check_reduce(const pt_comm *c, const char *op, const void *buf, int64_t count,
                              pt_dtype t, pt_redop rop, pt_error *err) {
    PT_RETURN_NOT_OK(check_comm(c, op, err));
    int w = pt__comm_dtype_width(t);
    if (w == 0) {
        return pt_error_set(err, PT_EINVAL,
                            "pt_comm_%s: dtype %d is not int32, int64, float32 or float64", op,
                            (int)t);
    }
    if (rop != PT_REDOP_SUM && rop != PT_REDOP_MIN && rop != PT_REDOP_MAX) {
        return pt_error_set(err, PT_EINVAL, "pt_comm_%s: op %d is not sum, min or max", op,
                            (int)rop);
    }
    if (count > INT64_MAX / w) {
        return pt_error_set(err, PT_EINVAL, "pt_comm_%s: count %lld is too large", op,
                            (long long)count);
    }
    return check_bytes(op, "count", buf, count, err);
}

pt_status pt_comm_allreduce(pt_comm *c, void *buf, int64_t count, pt_dtype dtype, pt_redop op,
                            pt_error *err) {
    PT_RETURN_NOT_OK(check_reduce(c, "allreduce", buf, count, dtype, op, err));
#ifdef PT_HAVE_MPI
    if (is_mpi(c)) return pt__mpi_reduce(c, buf, count, dtype, op, 0, true, err);
#endif
    return PT_OK;
}

pt_status pt_comm_reduce(pt_comm *c, void *buf, int64_t count, pt_dtype dtype, pt_redop op,
                         int root, pt_error *err) {
    PT_RETURN_NOT_OK(check_reduce(c, "reduce", buf, count, dtype, op, err));
    PT_RETURN_NOT_OK(check_rank(c, "reduce", "root", root, err));
#ifdef PT_HAVE_MPI
    if (is_mpi(c)) return pt__mpi_reduce(c, buf, count, dtype, op, root, false, err);
#endif
    return PT_OK;
}

static pt_status gather_common(pt_comm *c, const char *op, const void *send, int64_t bytes,
                               void *recv, int root, bool all, pt_error *err) {
    PT_RETURN_NOT_OK(check_comm(c, op, err));
    PT_RETURN_NOT_OK(check_bytes(op, "bytes", send, bytes, err));
    if (!all) PT_RETURN_NOT_OK(check_rank(c, op, "root", root, err));
    if (bytes > 0 && !recv && (all || c->rank == root)) {
        return pt_error_set(err, PT_EINVAL, "pt_comm_%s: recv is NULL", op);
    }
    if (bytes > INT64_MAX / c->size) {
        return pt_error_set(err, PT_EINVAL, "pt_comm_%s: bytes %lld times size %d overflows", op,
                            (long long)bytes, c->size);
    }
#ifdef PT_HAVE_MPI
    if (is_mpi(c)) return pt__mpi_gather(c, send, bytes, recv, root, all, err);
#endif
    if (bytes > 0 && recv != send) memmove(recv, send, (size_t)bytes);
    return PT_OK;
}

pt_status pt_comm_gather(pt_comm *c, const void *send, int64_t bytes, void *recv, int root,
                         pt_error *err) {
    return gather_common(c, "gather", send, bytes, recv, root, false, err);
}

pt_status pt_comm_allgather(pt_comm *c, const void *send, int64_t bytes, void *recv,
                            pt_error *err) {
    return gather_common(c, "allgather", send, bytes, recv, 0, true, err);
}

static pt_status copy_out(const void *send, int64_t bytes, void **recv_out, const char *op,
                          pt_error *err) {
    void *p = pt_malloc((size_t)bytes);
    if (!p) {
        return pt_error_set(err, PT_ENOMEM, "pt_comm_%s: out of memory for %lld bytes", op,
                            (long long)bytes);
    }
    if (bytes > 0) memcpy(p, send, (size_t)bytes);
    *recv_out = p;
    return PT_OK;
}

pt_status pt_comm_allgatherv(pt_comm *c, const void *send, int64_t bytes, void **recv_out,
                             int64_t *recv_counts_out, pt_error *err) {
    PT_RETURN_NOT_OK(check_comm(c, "allgatherv", err));
    PT_RETURN_NOT_OK(check_bytes("allgatherv", "bytes", send, bytes, err));
    if (!recv_out || !recv_counts_out) {
        return pt_error_set(err, PT_EINVAL, "pt_comm_allgatherv: %s is NULL",
                            recv_out ? "recv_counts_out" : "recv_out");
    }
    *recv_out = NULL;
#ifdef PT_HAVE_MPI
    if (is_mpi(c)) return pt__mpi_allgatherv(c, send, bytes, recv_out, recv_counts_out, err);
#endif
    PT_RETURN_NOT_OK(copy_out(send, bytes, recv_out, "allgatherv", err));
    recv_counts_out[0] = bytes;
    return PT_OK;
}

pt_status pt_comm_alltoallv(pt_comm *c, const void *send, const int64_t *send_counts,
                            void **recv_out, int64_t *recv_counts_out, pt_error *err) {
    PT_RETURN_NOT_OK(check_comm(c, "alltoallv", err));
    if (!send_counts || !recv_out || !recv_counts_out) {
        return pt_error_set(err, PT_EINVAL, "pt_comm_alltoallv: %s is NULL",
                            !send_counts ? "send_counts"
                            : !recv_out  ? "recv_out"
                                         : "recv_counts_out");
    }
    *recv_out = NULL;
    int64_t total = 0;
    for (int r = 0; r < c->size; r++) {
        if (send_counts[r] < 0 || send_counts[r] > INT64_MAX - total) {
            return pt_error_set(err, PT_EINVAL,
                                "pt_comm_alltoallv: send_counts[%d] is %lld (negative or the "
                                "total overflows)",
                                r, (long long)send_counts[r]);
        }
        total += send_counts[r];
    }
    PT_RETURN_NOT_OK(check_bytes("alltoallv", "total of send_counts", send, total, err));
#ifdef PT_HAVE_MPI
    if (is_mpi(c)) return pt__mpi_alltoallv(c, send, send_counts, recv_out, recv_counts_out, err);
#endif
    PT_RETURN_NOT_OK(copy_out(send, send_counts[0], recv_out, "alltoallv", err));
    recv_counts_out[0] = send_counts[0];
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Point to point                                                           */
/* ------------------------------------------------------------------------ */

static pt_status selfq_push(pt_comm *c, const void *buf, int64_t bytes, int tag, pt_error *err) {
    if ((uint64_t)bytes > SIZE_MAX - sizeof(pt__comm_msg)) {
        return pt_error_set(err, PT_ENOMEM, "pt_comm_send: %lld bytes to self is too large",
                            (long long)bytes);
    }
    pt__comm_msg *m = pt_malloc(sizeof *m + (size_t)bytes);
    if (!m) {
        return pt_error_set(err, PT_ENOMEM,
                            "pt_comm_send: out of memory queueing %lld bytes to self (rank %d)",
                            (long long)bytes, c->rank);
    }
    m->next = NULL;
    m->tag = tag;
    m->bytes = bytes;
    if (bytes > 0) memcpy(m->data, buf, (size_t)bytes);
    if (c->selfq_tail) {
        c->selfq_tail->next = m;
    } else {
        c->selfq_head = m;
    }
    c->selfq_tail = m;
    return PT_OK;
}

/* Unlinks the oldest queued message with `tag`, or returns NULL. */
static pt__comm_msg *selfq_pop(pt_comm *c, int tag) {
    pt__comm_msg *prev = NULL;
    for (pt__comm_msg *m = c->selfq_head; m; prev = m, m = m->next) {
        if (m->tag != tag) continue;
        if (prev) {
            prev->next = m->next;
        } else {
            c->selfq_head = m->next;
        }
        if (c->selfq_tail == m) c->selfq_tail = prev;
        return m;
    }
    return NULL;
}

pt_status pt_comm_send(pt_comm *c, const void *buf, int64_t bytes, int dest, int tag,
                       pt_error *err) {
    PT_RETURN_NOT_OK(check_comm(c, "send", err));
    PT_RETURN_NOT_OK(check_bytes("send", "bytes", buf, bytes, err));
    PT_RETURN_NOT_OK(check_rank(c, "send", "dest", dest, err));
    PT_RETURN_NOT_OK(check_tag("send", tag, err));
    if (dest == c->rank) return selfq_push(c, buf, bytes, tag, err);
#ifdef PT_HAVE_MPI
    return pt__mpi_send(c, buf, bytes, dest, tag, err);
#else
    return pt_error_set(err, PT_EINTERNAL, "pt_comm_send: no backend for rank %d", dest);
#endif
}

static pt_status recv_self(pt_comm *c, void *buf, int64_t cap, int tag, void **alloc_out,
                           int64_t *bytes_out, pt_error *err) {
    const char *op = alloc_out ? "recv_alloc" : "recv";
    pt__comm_msg *m = selfq_pop(c, tag);
    if (!m) {
        return pt_error_set(err, PT_ETIMEOUT,
                            "rank %d: pt_comm_%s from itself with tag %d would wait for ever: "
                            "no such message was sent",
                            c->rank, op, tag);
    }
    pt_status s = PT_OK;
    if (alloc_out) {
        s = copy_out(m->data, m->bytes, alloc_out, op, err);
    } else if (m->bytes > cap) {
        s = pt_error_set(err, PT_ERANGE,
                         "rank %d: pt_comm_recv: the message of %lld bytes from rank %d (tag "
                         "%d) does not fit the buffer of %lld bytes; it was discarded",
                         c->rank, (long long)m->bytes, c->rank, tag, (long long)cap);
    } else if (m->bytes > 0) {
        memcpy(buf, m->data, (size_t)m->bytes);
    }
    if (bytes_out) *bytes_out = m->bytes;
    pt_free(m);
    return s;
}

pt_status pt_comm_recv(pt_comm *c, void *buf, int64_t cap, int src, int tag, int64_t *bytes_out,
                       pt_error *err) {
    PT_RETURN_NOT_OK(check_comm(c, "recv", err));
    PT_RETURN_NOT_OK(check_bytes("recv", "cap", buf, cap, err));
    PT_RETURN_NOT_OK(check_rank(c, "recv", "src", src, err));
    PT_RETURN_NOT_OK(check_tag("recv", tag, err));
    if (bytes_out) *bytes_out = 0;
    if (src == c->rank) return recv_self(c, buf, cap, tag, NULL, bytes_out, err);
#ifdef PT_HAVE_MPI
    return pt__mpi_recv(c, buf, cap, src, tag, NULL, bytes_out, err);
#else
    return pt_error_set(err, PT_EINTERNAL, "pt_comm_recv: no backend for rank %d", src);
#endif
}

pt_status pt_comm_recv_alloc(pt_comm *c, int src, int tag, void **buf_out, int64_t *bytes_out,
                             pt_error *err) {
    PT_RETURN_NOT_OK(check_comm(c, "recv_alloc", err));
    PT_RETURN_NOT_OK(check_rank(c, "recv_alloc", "src", src, err));
    PT_RETURN_NOT_OK(check_tag("recv_alloc", tag, err));
    if (!buf_out) return pt_error_set(err, PT_EINVAL, "pt_comm_recv_alloc: buf_out is NULL");
    *buf_out = NULL;
    if (bytes_out) *bytes_out = 0;
    if (src == c->rank) return recv_self(c, NULL, 0, tag, buf_out, bytes_out, err);
#ifdef PT_HAVE_MPI
    return pt__mpi_recv(c, NULL, 0, src, tag, buf_out, bytes_out, err);
#else
    return pt_error_set(err, PT_EINTERNAL, "pt_comm_recv_alloc: no backend for rank %d", src);
#endif
}
