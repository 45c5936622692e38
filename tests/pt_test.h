/*
 * pt_test.h - a small test runner. Each TEST registers itself; the program
 * runs every test (or those whose names contain argv[1]) and prints
 * "N passed, N failed". A failed CHECK reports file:line and the expression
 * and ends that test; the remaining tests still run.
 */
#ifndef PT_TEST_H
#define PT_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "partita.h"

typedef void (*pt_test_fn)(void);
void pt_test_register(const char *name, pt_test_fn fn);
void pt_test_fail(const char *file, int line, const char *fmt, ...);
int pt_test_failed(void);
const char *pt_test_errmsg(const pt_error *e);
/* A scratch directory unique to this test program, created on first use and
 * removed at exit; returns a path inside it. */
const char *pt_test_tmp(const char *name);
/* Writes `text` to a file in the scratch directory and returns its path. */
const char *pt_test_write(const char *name, const char *text);

#define TEST(name)                                                              \
    static void test_##name(void);                                             \
    __attribute__((constructor)) static void test_register_##name(void) {      \
        pt_test_register(#name, test_##name);                                  \
    }                                                                          \
    static void test_##name(void)

#define CHECK(cond)                                                             \
    do {                                                                       \
        if (!(cond)) {                                                         \
            pt_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);              \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_MSG(cond, ...)                                                    \
    do {                                                                       \
        if (!(cond)) {                                                         \
            pt_test_fail(__FILE__, __LINE__, __VA_ARGS__);                     \
            return;                                                            \
        }                                                                      \
    } while (0)

/* Checks that a pt_status expression is PT_OK, printing the error message. */
#define CHECK_OK(expr, errp)                                                    \
    do {                                                                       \
        pt_status chk__s = (expr);                                             \
        const pt_error *chk__e = (errp);                                       \
        if (chk__s != PT_OK) {                                                 \
            pt_test_fail(__FILE__, __LINE__, "%s -> %s: %s", #expr,            \
                         pt_status_name(chk__s), pt_test_errmsg(chk__e));      \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_EQ_I(a, b)                                                        \
    do {                                                                       \
        long long chk__a = (long long)(a), chk__b = (long long)(b);            \
        if (chk__a != chk__b) {                                                \
            pt_test_fail(__FILE__, __LINE__, "%s == %s: %lld vs %lld", #a, #b,  \
                         chk__a, chk__b);                                      \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_STR(a, b)                                                         \
    do {                                                                       \
        const char *chk__a = (a), *chk__b = (b);                               \
        if (strcmp(chk__a, chk__b) != 0) {                                     \
            pt_test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" vs \"%s\"", #a,  \
                         #b, chk__a, chk__b);                                  \
            return;                                                            \
        }                                                                      \
    } while (0)

/* Substring check, for error messages. */
#define CHECK_CONTAINS(hay, needle)                                             \
    do {                                                                       \
        const char *chk__h = (hay), *chk__n = (needle);                        \
        if (strstr(chk__h, chk__n) == NULL) {                                  \
            pt_test_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"",  \
                         chk__h, chk__n);                                      \
            return;                                                            \
        }                                                                      \
    } while (0)

/* |a - b| <= tol * max(1, |a|, |b|) */
#define CHECK_NEAR(a, b, tol)                                                   \
    do {                                                                       \
        double chk__a = (a), chk__b = (b);                                     \
        double chk__m = fmax(1.0, fmax(fabs(chk__a), fabs(chk__b)));           \
        if (!(fabs(chk__a - chk__b) <= (tol)*chk__m)) {                        \
            pt_test_fail(__FILE__, __LINE__, "%s ~ %s: %.17g vs %.17g", #a, #b, \
                         chk__a, chk__b);                                      \
            return;                                                            \
        }                                                                      \
    } while (0)

#endif
