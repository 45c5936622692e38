/* The test runner behind pt_test.h. */
#include "pt_test.h"

#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TESTS 1024

static struct {
    const char *name;
    pt_test_fn fn;
} tests[MAX_TESTS];
static int ntests;
static int current_failed;
static char tmpdir[256];

void pt_test_register(const char *name, pt_test_fn fn) {
    if (ntests < MAX_TESTS) {
        tests[ntests].name = name;
        tests[ntests].fn = fn;
        ntests++;
    }
}

void pt_test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "  FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    current_failed = 1;
}

int pt_test_failed(void) { return current_failed; }

const char *pt_test_errmsg(const pt_error *e) { return e ? e->msg : ""; }

static void remove_tmpdir(void) {
    if (tmpdir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

const char *pt_test_tmp(const char *name) {
    static char path[8][512];
    static int slot;
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/pt_test_XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(remove_tmpdir);
    }
    char *p = path[slot++ & 7];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

const char *pt_test_write(const char *name, const char *text) {
    const char *p = pt_test_tmp(name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        exit(2);
    }
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return p;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0;
    for (int i = 0; i < ntests; i++) {
        if (argc > 1 && !strstr(tests[i].name, argv[1])) continue;
        current_failed = 0;
        double t0 = pt_now_s();
        tests[i].fn();
        double dt = pt_now_s() - t0;
        if (current_failed) {
            failed++;
            fprintf(stderr, "[FAIL] %s (%.3f s)\n", tests[i].name, dt);
        } else {
            passed++;
            fprintf(stderr, "[ ok ] %s (%.3f s)\n", tests[i].name, dt);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
