/* Monotonic clocks and sleeping. */
#include <errno.h>
#include <time.h>

#include "partita/base.h"

int64_t pt_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

double pt_now_s(void) { return (double)pt_now_ns() * 1e-9; }

void pt_sleep_ns(int64_t ns) {
    if (ns <= 0) return;
    struct timespec req = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)}, rem;
    while (nanosleep(&req, &rem) != 0 && errno == EINTR) req = rem;
}
