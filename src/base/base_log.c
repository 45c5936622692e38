/* Levelled logging to stderr, rank-prefixed, one line per call. The level is
 * read once from PARTITA_LOG; lines are formatted into one buffer and written
 * with a single fwrite under stderr's lock so threads never interleave. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "partita/base.h"

static atomic_int log_level = -1;
static atomic_int log_rank = -1;

static pt_log_level level_from_env(void) {
    const char *v = getenv("PARTITA_LOG");
    if (!v || !*v) return PT_LOG_WARN;
    static const char *const names[] = {"off", "error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 6; i++) {
        if (strcasecmp(v, names[i]) == 0) return (pt_log_level)i;
    }
    if (strcasecmp(v, "warning") == 0) return PT_LOG_WARN;
    if (v[0] >= '0' && v[0] <= '5' && v[1] == '\0') return (pt_log_level)(v[0] - '0');
    return PT_LOG_WARN;
}

pt_log_level pt_log_level_get(void) {
    int l = atomic_load_explicit(&log_level, memory_order_relaxed);
    if (l < 0) {
        l = (int)level_from_env();
        atomic_store(&log_level, l);
    }
    return (pt_log_level)l;
}

void pt_log_level_set(pt_log_level level) { atomic_store(&log_level, (int)level); }
void pt_log_set_rank(int rank) { atomic_store(&log_rank, rank); }
int pt_log_get_rank(void) { return atomic_load(&log_rank); }

void pt_log(pt_log_level level, const char *fmt, ...) {
    if (level == PT_LOG_OFF || pt_log_level_get() < level) return;
    static const char *const tags[] = {"", "error", "warn", "info", "debug", "trace"};
    char line[2048];
    int n;
    int rank = pt_log_get_rank();
    if (rank >= 0) {
        n = snprintf(line, sizeof line, "partita[%d] %s: ", rank, tags[level]);
    } else {
        n = snprintf(line, sizeof line, "partita %s: ", tags[level]);
    }
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    flockfile(stderr);
    fwrite(line, 1, len, stderr);
    funlockfile(stderr);
}
