/* Allocation hooks, byte accounting, failure injection and memory budgets.
 *
 * Every pt_malloc block carries a 16-byte header with its size, so that the
 * library can count bytes in use (leak checks in tests) whatever allocator
 * the embedder installs; 16 bytes keep the payload aligned for any type. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "partita/base.h"

#define HDR 16

static void *libc_malloc(size_t n, void *ud) { (void)ud; return malloc(n); }
static void *libc_realloc(void *p, size_t n, void *ud) { (void)ud; return realloc(p, n); }
static void libc_free(void *p, void *ud) { (void)ud; free(p); }

static pt_allocator alloc = {libc_malloc, libc_realloc, libc_free, NULL};
static atomic_llong bytes_in_use;
static atomic_llong bytes_peak;
static atomic_llong fail_countdown = -1;

void pt_set_allocator(const pt_allocator *a) {
    if (a && a->malloc_fn && a->realloc_fn && a->free_fn) {
        alloc = *a;
    } else {
        alloc.malloc_fn = libc_malloc;
        alloc.realloc_fn = libc_realloc;
        alloc.free_fn = libc_free;
        alloc.ud = NULL;
    }
}

void pt_alloc_fail_after(int64_t n) { atomic_store(&fail_countdown, n < 0 ? -1 : n); }

/* Returns 1 when this allocation must fail (test injection). */
static int inject_failure(void) {
    long long c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (c < 0) return 0;
    for (;;) {
        if (c == 0) return 1;
        if (atomic_compare_exchange_weak(&fail_countdown, &c, c - 1)) return 0;
        if (c < 0) return 0;
    }
}

static void account(long long delta) {
    long long now = atomic_fetch_add_explicit(&bytes_in_use, delta, memory_order_relaxed) + delta;
    long long peak = atomic_load_explicit(&bytes_peak, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&bytes_peak, &peak, now, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

void *pt_malloc(size_t size) {
    if (size > SIZE_MAX - HDR || inject_failure()) return NULL;
    unsigned char *p = alloc.malloc_fn(size + HDR, alloc.ud);
    if (!p) return NULL;
    memcpy(p, &size, sizeof size);
    account((long long)size);
    return p + HDR;
}

void *pt_calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = pt_malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *pt_realloc(void *ptr, size_t size) {
    if (!ptr) return pt_malloc(size);
    if (size > SIZE_MAX - HDR || inject_failure()) return NULL;
    unsigned char *base = (unsigned char *)ptr - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    unsigned char *p = alloc.realloc_fn(base, size + HDR, alloc.ud);
    if (!p) return NULL;
    memcpy(p, &size, sizeof size);
    account((long long)size - (long long)old);
    return p + HDR;
}

void pt_free(void *ptr) {
    if (!ptr) return;
    unsigned char *base = (unsigned char *)ptr - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    account(-(long long)old);
    alloc.free_fn(base, alloc.ud);
}

char *pt_strndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *d = pt_malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *pt_strdup(const char *s) { return pt_strndup(s, SIZE_MAX); }

int64_t pt_alloc_bytes_in_use(void) { return atomic_load(&bytes_in_use); }
int64_t pt_alloc_bytes_peak(void) { return atomic_load(&bytes_peak); }
void pt_alloc_reset_peak(void) { atomic_store(&bytes_peak, atomic_load(&bytes_in_use)); }

/* ------------------------------------------------------------------------ */

struct pt_mem {
    int64_t limit;
    atomic_llong used;
    atomic_llong peak;
    pt_mem *parent; /* set for soft views: everything reads through */
};

pt_mem *pt_mem_new(int64_t limit) {
    pt_mem *m = pt_malloc(sizeof *m);
    if (!m) return NULL;
    m->limit = limit > 0 ? limit : 0;
    atomic_init(&m->used, 0);
    atomic_init(&m->peak, 0);
    m->parent = NULL;
    return m;
}

pt_mem *pt_mem_new_soft(pt_mem *parent) {
    if (!parent) return NULL;
    pt_mem *m = pt_mem_new(0);
    if (m) m->parent = parent->parent ? parent->parent : parent;
    return m;
}

void pt_mem_free(pt_mem *m) {
    if (!m) return;
    if (m->parent) {
        pt_free(m);
        return;
    }
    long long used = atomic_load(&m->used);
    if (used != 0) pt_log_debug("memory budget freed with %lld bytes still reserved", used);
    pt_free(m);
}

static void mem_note_peak(pt_mem *m, long long now) {
    long long peak = atomic_load_explicit(&m->peak, memory_order_relaxed);
    while (now > peak && !atomic_compare_exchange_weak_explicit(
                             &m->peak, &peak, now, memory_order_relaxed, memory_order_relaxed)) {
    }
}

pt_status pt_mem_reserve(pt_mem *m, int64_t bytes, const char *what, pt_error *err) {
    if (!m || bytes <= 0) return PT_OK;
    if (m->parent) {
        pt_mem_force(m->parent, bytes);
        return PT_OK;
    }
    if (m->limit == 0) {
        mem_note_peak(m, atomic_fetch_add(&m->used, bytes) + bytes);
        return PT_OK;
    }
    long long cur = atomic_load_explicit(&m->used, memory_order_relaxed);
    for (;;) {
        if (cur + bytes > m->limit) {
            char a[32], b[32], c[32];
            return pt_error_set(err, PT_EBUDGET,
                                "memory budget exceeded: %s needs %s, %s of %s in use",
                                what ? what : "allocation", pt_format_bytes((double)bytes, a, sizeof a),
                                pt_format_bytes((double)cur, b, sizeof b),
                                pt_format_bytes((double)m->limit, c, sizeof c));
        }
        if (atomic_compare_exchange_weak(&m->used, &cur, cur + bytes)) break;
    }
    mem_note_peak(m, cur + bytes);
    return PT_OK;
}

void pt_mem_force(pt_mem *m, int64_t bytes) {
    if (!m || bytes <= 0) return;
    if (m->parent) m = m->parent;
    mem_note_peak(m, atomic_fetch_add(&m->used, bytes) + bytes);
}

void pt_mem_release(pt_mem *m, int64_t bytes) {
    if (!m || bytes <= 0) return;
    if (m->parent) m = m->parent;
    atomic_fetch_sub(&m->used, bytes);
}

static const pt_mem *root(const pt_mem *m) { return m && m->parent ? m->parent : m; }
int64_t pt_mem_limit(const pt_mem *m) { return m ? root(m)->limit : 0; }
int64_t pt_mem_used(const pt_mem *m) { return m ? atomic_load(&((pt_mem *)root(m))->used) : 0; }
int64_t pt_mem_peak(const pt_mem *m) { return m ? atomic_load(&((pt_mem *)root(m))->peak) : 0; }
int64_t pt_mem_available(const pt_mem *m) {
    m = root(m);
    if (!m || m->limit == 0) return INT64_MAX;
    int64_t a = m->limit - pt_mem_used(m);
    return a > 0 ? a : 0;
}

pt_status pt_parse_size(const char *text, const char *param, int64_t *out, pt_error *err) {
    const char *p = text ? text : "";
    while (isspace((unsigned char)*p)) p++;
    errno = 0;
    char *end;
    double v = strtod(p, &end);
    if (end == p || errno != 0 || !(v >= 0) || isinf(v)) {
        return pt_error_set(err, PT_EINVAL,
                            "%s: invalid size '%s' (expected a number of bytes with an optional "
                            "K, M, G or T suffix, e.g. 512M)",
                            param ? param : "size", text ? text : "");
    }
    while (isspace((unsigned char)*end)) end++;
    double mult = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mult = 1024.0; end++; break;
    case 'M': mult = 1024.0 * 1024; end++; break;
    case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
    case 'B': break;
    case '\0': break;
    default:
        return pt_error_set(err, PT_EINVAL, "%s: invalid size suffix in '%s' (use K, M, G or T)",
                            param ? param : "size", text);
    }
    if (mult > 1 && (*end == 'i' || *end == 'I')) end++;
    if (*end == 'B' || *end == 'b') end++;
    while (isspace((unsigned char)*end)) end++;
    if (*end != '\0') {
        return pt_error_set(err, PT_EINVAL, "%s: unexpected text after the size in '%s'",
                            param ? param : "size", text);
    }
    double bytes = v * mult;
    if (bytes > 9.2e18) {
        return pt_error_set(err, PT_ERANGE, "%s: size '%s' is too large", param ? param : "size",
                            text);
    }
    *out = (int64_t)bytes;
    return PT_OK;
}

const char *pt_format_bytes(double bytes, char *buf, size_t cap) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    double v = bytes;
    while (fabs(v) >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0) {
        snprintf(buf, cap, "%.0f B", v);
    } else {
        snprintf(buf, cap, "%.*f %s", fabs(v) < 10 ? 2 : (fabs(v) < 100 ? 1 : 0), v, units[u]);
    }
    return buf;
}

static int64_t status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    size_t klen = strlen(key);
    int64_t kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kb = strtoll(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

int64_t pt_rss_current(void) { return status_kb("VmRSS"); }
int64_t pt_rss_peak(void) { return status_kb("VmHWM"); }
