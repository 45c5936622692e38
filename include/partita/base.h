/*
 * partita/base.h - status codes, errors, logging, memory accounting, clocks,
 * hashing and progress reporting. The bottom layer: it knows nothing about
 * tables, files or MPI.
 */
#ifndef PARTITA_BASE_H
#define PARTITA_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PT_BUILDING_LIBRARY) && defined(__GNUC__)
#define PT_API __attribute__((visibility("default")))
#else
#define PT_API
#endif

#if defined(__GNUC__)
#define PT_MUST_USE __attribute__((warn_unused_result))
#define PT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PT_MUST_USE
#define PT_PRINTF(f, a)
#endif

#define PT_VERSION_MAJOR 0
#define PT_VERSION_MINOR 1
#define PT_VERSION_PATCH 0
#define PT_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Status codes. One table generates the enum, the names and the texts.      */
/* ------------------------------------------------------------------------ */

#define PT_STATUS_TABLE(X)                                                 \
    X(PT_OK, "ok")                                                         \
    X(PT_ENOMEM, "out of memory")                                          \
    X(PT_EBUDGET, "memory budget exceeded")                                \
    X(PT_EINVAL, "invalid argument")                                       \
    X(PT_EIO, "input/output error")                                        \
    X(PT_ENOENT, "no such file or directory")                              \
    X(PT_EPARSE, "parse error")                                            \
    X(PT_ETYPE, "type error")                                              \
    X(PT_EEMPTY, "empty input")                                            \
    X(PT_ERANGE, "value out of range")                                     \
    X(PT_ECANCELED, "canceled")                                            \
    X(PT_ETRANSIENT, "transient failure")                                  \
    X(PT_ETIMEOUT, "timed out")                                            \
    X(PT_ECOMM, "communication error")                                     \
    X(PT_ECORRUPT, "corrupt data")                                         \
    X(PT_EUNSUPPORTED, "not supported")                                    \
    X(PT_EINTERNAL, "internal error")

typedef enum pt_status {
#define PT__STATUS_ENUM(name, text) name,
    PT_STATUS_TABLE(PT__STATUS_ENUM)
#undef PT__STATUS_ENUM
    PT_STATUS_COUNT
} pt_status;

/* Returns a static, human-readable text for a status ("out of memory").
 * Unknown values give "unknown status". Thread-safe. */
PT_API const char *pt_status_str(pt_status s);

/* Returns the enum name of a status ("PT_ENOMEM"). Thread-safe. */
PT_API const char *pt_status_name(pt_status s);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

#define PT_ERROR_MSG_SIZE 1024

/* Caller-provided error record. The callee that fails fills `code` and a
 * message saying what failed and where (file:line:column, parameter name,
 * rank). Every function taking a `pt_error *` accepts NULL. */
typedef struct pt_error {
    pt_status code;
    char msg[PT_ERROR_MSG_SIZE];
} pt_error;

/* Clears an error record (code PT_OK, empty message). NULL is ignored. */
PT_API void pt_error_clear(pt_error *err);

/* Fills `err` (if not NULL) with `code` and a printf-style message and
 * returns `code`, so that callers can write `return pt_error_set(...)`. */
PT_API pt_status pt_error_set(pt_error *err, pt_status code, const char *fmt, ...)
    PT_PRINTF(3, 4);
PT_API pt_status pt_error_setv(pt_error *err, pt_status code, const char *fmt, va_list ap);

/* Prepends "prefix: " to an already filled message (for adding context as
 * an error travels up). Returns err->code (PT_OK when err is NULL). */
PT_API pt_status pt_error_prefix(pt_error *err, const char *fmt, ...) PT_PRINTF(2, 3);

/* Propagation helper: returns from the enclosing function on failure. */
#define PT_RETURN_NOT_OK(expr)                                             \
    do {                                                                   \
        pt_status pt__s = (expr);                                          \
        if (pt__s != PT_OK) return pt__s;                                  \
    } while (0)

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

typedef enum pt_log_level {
    PT_LOG_OFF = 0,
    PT_LOG_ERROR = 1,
    PT_LOG_WARN = 2,
    PT_LOG_INFO = 3,
    PT_LOG_DEBUG = 4,
    PT_LOG_TRACE = 5
} pt_log_level;

/* Current level. Initialised once from PARTITA_LOG (off, error, warn, info,
 * debug, trace, or a number 0-5); the default is warn. Thread-safe. */
PT_API pt_log_level pt_log_level_get(void);
PT_API void pt_log_level_set(pt_log_level level);

/* The rank written in front of every log line ("[rank 3] ..."); -1 (the
 * default) prints no rank. Set by the comm layer. */
PT_API void pt_log_set_rank(int rank);
PT_API int pt_log_get_rank(void);

/* Writes one line to stderr if `level` is enabled: "partita[rank] LEVEL: msg".
 * Lines from concurrent threads never interleave. */
PT_API void pt_log(pt_log_level level, const char *fmt, ...) PT_PRINTF(2, 3);

#define PT_LOG_ENABLED(lvl) (pt_log_level_get() >= (lvl))
#define pt_log_error(...) pt_log(PT_LOG_ERROR, __VA_ARGS__)
#define pt_log_warn(...) pt_log(PT_LOG_WARN, __VA_ARGS__)
#define pt_log_info(...) pt_log(PT_LOG_INFO, __VA_ARGS__)
#define pt_log_debug(...) pt_log(PT_LOG_DEBUG, __VA_ARGS__)

/* ------------------------------------------------------------------------ */
/* Allocation hooks                                                         */
/* ------------------------------------------------------------------------ */

/* All library allocations go through these hooks, so that embedders can use
 * their own allocator and tests can inject failures. */
typedef struct pt_allocator {
    void *(*malloc_fn)(size_t size, void *ud);
    void *(*realloc_fn)(void *ptr, size_t size, void *ud);
    void (*free_fn)(void *ptr, void *ud);
    void *ud;
} pt_allocator;

/* Installs `a` (copied) as the allocator; NULL restores the C library's.
 * Not thread-safe: call before any other partita function. */
PT_API void pt_set_allocator(const pt_allocator *a);

/* Library allocation entry points. pt_malloc(0) returns a unique pointer;
 * failures return NULL. pt_free(NULL) does nothing. Thread-safe. */
PT_API void *pt_malloc(size_t size);
PT_API void *pt_calloc(size_t n, size_t size);
PT_API void *pt_realloc(void *ptr, size_t size);
PT_API void pt_free(void *ptr);
PT_API char *pt_strdup(const char *s);
PT_API char *pt_strndup(const char *s, size_t n);

/* Test hook: after `n` more successful allocations, every allocation fails
 * until reset with n < 0. Thread-safe. */
PT_API void pt_alloc_fail_after(int64_t n);

/* Bytes currently allocated through pt_malloc & co., and the peak since the
 * start (or the last reset). Used by tests to find leaks. */
PT_API int64_t pt_alloc_bytes_in_use(void);
PT_API int64_t pt_alloc_bytes_peak(void);
PT_API void pt_alloc_reset_peak(void);

/* ------------------------------------------------------------------------ */
/* Memory budget                                                            */
/* ------------------------------------------------------------------------ */

/* A memory budget counts the bytes held by large buffers (column data,
 * hash tables, parse buffers) against a limit. It does not allocate: code
 * reserves before it allocates and releases after it frees. Thread-safe
 * (atomic counters). */
typedef struct pt_mem pt_mem;

/* Creates a budget with `limit` bytes (0 = unlimited). Returns NULL when out
 * of memory. */
PT_API pt_mem *pt_mem_new(int64_t limit);
/* Creates a soft view of `parent`: reservations through it never fail; they
 * are forced onto the parent, so they count towards its use and peak and the
 * operators that can spill see less room. For transient buffers whose size
 * is already bounded (one batch of a pipeline). Limit, use, peak and
 * availability read through to the parent. Free it before the parent. */
PT_API pt_mem *pt_mem_new_soft(pt_mem *parent);
/* Frees a budget. NULL is ignored. Bytes still reserved are a caller bug and
 * are logged at debug level. */
PT_API void pt_mem_free(pt_mem *m);

/* Reserves `bytes`. Fails with PT_EBUDGET (message names `what`, the request,
 * the bytes in use and the limit) when the limit would be exceeded; nothing
 * is reserved then. `m` may be NULL (nothing is counted). */
PT_API pt_status pt_mem_reserve(pt_mem *m, int64_t bytes, const char *what, pt_error *err)
    PT_MUST_USE;
/* Reserves `bytes` even past the limit (for memory already committed, such
 * as results that must be returned). */
PT_API void pt_mem_force(pt_mem *m, int64_t bytes);
/* Returns bytes to the budget. */
PT_API void pt_mem_release(pt_mem *m, int64_t bytes);

PT_API int64_t pt_mem_limit(const pt_mem *m);   /* 0 = unlimited */
PT_API int64_t pt_mem_used(const pt_mem *m);
PT_API int64_t pt_mem_peak(const pt_mem *m);
/* Bytes still available, or INT64_MAX when unlimited. */
PT_API int64_t pt_mem_available(const pt_mem *m);

/* Parses a size such as "512M", "2G", "1.5GiB", "100000" (bytes). Returns
 * PT_EINVAL with a message naming `param` on bad input. */
PT_API pt_status pt_parse_size(const char *text, const char *param, int64_t *out,
                               pt_error *err) PT_MUST_USE;
/* Formats a byte count as "1.5 GiB" into buf (always NUL-terminated). */
PT_API const char *pt_format_bytes(double bytes, char *buf, size_t cap);

/* Resident set size of this process (current and peak, bytes) from /proc;
 * -1 when not available. */
PT_API int64_t pt_rss_current(void);
PT_API int64_t pt_rss_peak(void);

/* ------------------------------------------------------------------------ */
/* Clocks                                                                   */
/* ------------------------------------------------------------------------ */

/* Monotonic time in nanoseconds / seconds, for durations. */
PT_API int64_t pt_now_ns(void);
PT_API double pt_now_s(void);
/* Sleeps for `ns` nanoseconds (restarted on EINTR). */
PT_API void pt_sleep_ns(int64_t ns);

/* ------------------------------------------------------------------------ */
/* Hashing and random numbers                                               */
/* ------------------------------------------------------------------------ */

/* 64-bit hash of bytes (wyhash-style mixing, not cryptographic). */
PT_API uint64_t pt_hash_bytes(const void *data, size_t len, uint64_t seed);
/* 64-bit mix of one integer (a bijection, good for hash tables). */
static inline uint64_t pt_hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Counter-based generator: the value for (seed, stream, i) is fixed, so that
 * data generated in parallel is the same whatever the number of threads. */
static inline uint64_t pt_splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Sequential generator (xoshiro256**), seeded through splitmix64. */
typedef struct pt_rng {
    uint64_t s[4];
} pt_rng;
PT_API void pt_rng_seed(pt_rng *r, uint64_t seed);
PT_API uint64_t pt_rng_next(pt_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
PT_API double pt_rng_uniform(pt_rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
PT_API uint64_t pt_rng_below(pt_rng *r, uint64_t n);
/* Standard normal (Box-Muller, polar form). */
PT_API double pt_rng_normal(pt_rng *r);

/* ------------------------------------------------------------------------ */
/* Progress bar                                                             */
/* ------------------------------------------------------------------------ */

/* A progress bar on stderr: done/total, rows/s, bytes/s and ETA, redrawn at
 * most 10 times per second. It draws only when stderr is a terminal and
 * quiet mode is off; otherwise every call is a cheap no-op. Updates are
 * thread-safe (atomic counters; one thread draws at a time). */
typedef struct pt_progress pt_progress;

/* Global quiet switch (the CLI's --quiet). */
PT_API void pt_progress_set_quiet(int quiet);
PT_API int pt_progress_enabled(void);

/* Starts a bar labelled `label` for `total_bytes` (0 = unknown). Returns NULL
 * when disabled or out of memory; all functions accept NULL. */
PT_API pt_progress *pt_progress_start(const char *label, int64_t total_bytes);
PT_API void pt_progress_add(pt_progress *p, int64_t rows, int64_t bytes);
/* Clears the line and frees the bar. */
PT_API void pt_progress_finish(pt_progress *p);

#ifdef __cplusplus
}
#endif
#endif
