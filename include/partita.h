/*
 * partita.h - the whole public API of libpartita.
 *
 * Layers, bottom up: base (status, errors, logging, memory, clocks), col
 * (Arrow-layout columns and tables), io (CSV), exec (task runtime and
 * execution context), comm (ranks, collectives and messages between the
 * processes of a job: self or MPI), frame (computations over tables and
 * files).
 */
#ifndef PARTITA_H
#define PARTITA_H

#include "partita/base.h"
#include "partita/col.h"
#include "partita/exec.h"
#include "partita/comm.h"
#include "partita/io.h"
#include "partita/frame.h"
#include "partita/dataframe.h"
#include "partita/ml.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Library version and build information ("0.1.0", "Release, MPI: no"). */
PT_API const char *pt_version(void);
/* Build options as "key=value" lines (build type, compiler, sanitizers, MPI,
 * BLAS, zstd). */
PT_API const char *pt_build_info(void);

#ifdef __cplusplus
}
#endif
#endif
