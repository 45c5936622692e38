/* A progress bar on stderr, drawn only on a terminal and when not quiet.
 * Counters are atomic; whichever thread finds the redraw interval elapsed
 * takes a try-lock and draws, so updates from workers never block. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "partita/base.h"

struct pt_progress {
    char label[48];
    int64_t total;
    int64_t start_ns;
    atomic_llong rows;
    atomic_llong bytes;
    atomic_llong next_draw_ns;
    pthread_mutex_t draw_lock;
};

static atomic_int quiet;

void pt_progress_set_quiet(int q) { atomic_store(&quiet, q ? 1 : 0); }

int pt_progress_enabled(void) { return !atomic_load(&quiet) && isatty(STDERR_FILENO); }

pt_progress *pt_progress_start(const char *label, int64_t total_bytes) {
    if (!pt_progress_enabled()) return NULL;
    pt_progress *p = pt_calloc(1, sizeof *p);
    if (!p) return NULL;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total_bytes;
    p->start_ns = pt_now_ns();
    atomic_init(&p->next_draw_ns, p->start_ns + 100000000LL);
    pthread_mutex_init(&p->draw_lock, NULL);
    return p;
}

static void draw(pt_progress *p, int64_t now) {
    double el = (double)(now - p->start_ns) * 1e-9;
    long long rows = atomic_load(&p->rows), bytes = atomic_load(&p->bytes);
    char b1[32], b2[32], line[200];
    double rate = el > 0 ? (double)bytes / el : 0;
    int n = snprintf(line, sizeof line, "\r%s %s", p->label,
                     pt_format_bytes((double)bytes, b1, sizeof b1));
    if (p->total > 0) {
        double frac = (double)bytes / (double)p->total;
        if (frac > 1) frac = 1;
        double eta = rate > 0 ? (double)(p->total - bytes) / rate : 0;
        if (eta < 0) eta = 0;
        n += snprintf(line + n, sizeof line - (size_t)n, " / %s (%3.0f%%)",
                      pt_format_bytes((double)p->total, b2, sizeof b2), frac * 100);
        n += snprintf(line + n, sizeof line - (size_t)n, "  %.3g rows/s  %s/s  ETA %.0fs ",
                      el > 0 ? (double)rows / el : 0.0, pt_format_bytes(rate, b1, sizeof b1), eta);
    } else {
        n += snprintf(line + n, sizeof line - (size_t)n, "  %.3g rows/s  %s/s ",
                      el > 0 ? (double)rows / el : 0.0, pt_format_bytes(rate, b1, sizeof b1));
    }
    (void)n;
    fputs(line, stderr);
    fflush(stderr);
}

void pt_progress_add(pt_progress *p, int64_t rows, int64_t bytes) {
    if (!p) return;
    atomic_fetch_add_explicit(&p->rows, rows, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes, bytes, memory_order_relaxed);
    int64_t now = pt_now_ns();
    long long next = atomic_load_explicit(&p->next_draw_ns, memory_order_relaxed);
    if (now < next) return;
    if (pthread_mutex_trylock(&p->draw_lock) != 0) return;
    atomic_store(&p->next_draw_ns, now + 100000000LL);
    draw(p, now);
    pthread_mutex_unlock(&p->draw_lock);
}

void pt_progress_finish(pt_progress *p) {
    if (!p) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    pthread_mutex_destroy(&p->draw_lock);
    pt_free(p);
}
