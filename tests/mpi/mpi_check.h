/*
 * mpi_check.h - the checks shared by the MPI test programs: each rank counts
 * its failures in g_fail and prints them with its rank; OK(call) gives up on
 * the current test function when a call fails (a failed collective can leave
 * the comm unusable for the rest of it). Included once per program.
 */
#ifndef PT_TEST_MPI_CHECK_H
#define PT_TEST_MPI_CHECK_H

#include <stdio.h>

#include "partita.h"

static int g_rank, g_size, g_fail;
static pt_error g_err;

#define EXPECT(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            g_fail++;                                                          \
            fprintf(stderr, "rank %d: %s:%d: FAILED %s: ", g_rank, __FILE__,   \
                    __LINE__, #cond);                                          \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

#define OK(call)                                                                \
    do {                                                                       \
        pt_status ok__s = (call);                                              \
        if (ok__s != PT_OK) {                                                  \
            fprintf(stderr, "rank %d: %s:%d: %s -> %s: %s\n", g_rank, __FILE__, \
                    __LINE__, #call, pt_status_name(ok__s), g_err.msg);        \
            g_fail++;                                                          \
            return;                                                            \
        }                                                                      \
    } while (0)

#endif
