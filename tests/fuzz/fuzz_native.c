/* libFuzzer target for the native file reader: pt_native_open_buffer on
 * arbitrary bytes, then every batch read in full and with a projection.
 * The bytes get an exact-size copy so that a read past the end is caught
 * by ASan, and reads are charged to a 64 MiB budget so that a file claiming
 * huge buffers fails with PT_EBUDGET instead of exhausting memory. Any
 * status is fine; crashes, leaks, sanitizer reports and budget left charged
 * are not. Each input is tried as is and again with its checksums
 * recomputed, so that mutations reach the checks behind the CRCs.
 * Build: cmake -DPARTITA_FUZZ=ON with CC=clang (target fuzz_native); seeds
 * in tests/fuzz/corpus_native/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The native API is internal (src/io) until it moves into partita/io.h;
 * the fuzz targets only get include/ on their include path. */
#include "../../src/io/io_native.h"

static void check_or_die(int ok) {
    if (!ok) __builtin_trap();
}

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) {
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Recomputes every checksum the layout lets it find (best effort, bounds
 * checked), so that mutated inputs get past the CRCs and exercise the
 * reader's structural and semantic checks behind them. */
static void fix_checksums(uint8_t *f, uint64_t n) {
    if (n < 40) return;
    wr32(f + 12, pt_crc32c(0, f, 12));
    uint64_t flen = rd64(f + n - 24);
    if (flen < 12 || flen > n - 40) return;
    uint64_t fstart = n - 24 - flen;
    const uint8_t *p = f + fstart;
    uint64_t left = flen;
    uint32_t nf = rd32(p);
    p += 4;
    left -= 4;
    for (uint32_t i = 0; i < nf; i++) {
        if (left < 8 || left - 8 < rd32(p + 4)) goto footer;
        uint64_t k = 8 + (uint64_t)rd32(p + 4);
        p += k;
        left -= k;
    }
    if (left < 8) goto footer;
    uint64_t nb = rd64(p);
    p += 8;
    left -= 8;
    for (uint64_t b = 0; b < nb && left >= 24; b++, p += 24, left -= 24) {
        uint64_t off = rd64(p), len = rd64(p + 8);
        if (off > fstart || len > fstart - off || len < 24) continue;
        uint64_t nc = rd32(f + off + 4);
        if (nc > (len - 24) / 24) continue;
        uint64_t hsize = 16 + 24 * nc + 8;
        for (uint64_t j = 0; j < nc; j++) {
            uint8_t *e = f + off + 16 + 24 * j;
            uint64_t co = rd64(e), cl = rd64(e + 8);
            if (co <= len && cl <= len - co) wr32(e + 16, pt_crc32c(0, f + off + co, (size_t)cl));
        }
        wr32(f + off + hsize - 4, pt_crc32c(0, f + off, (size_t)(hsize - 4)));
    }
footer:
    wr32(f + n - 16, pt_crc32c(0, f + fstart, (size_t)flen));
}

/* Opens and reads everything; any status is fine. */
static void exercise(pt_mem *mem, const uint8_t *buf, size_t size) {
    pt_native_reader *r = NULL;
    pt_error err;
    if (pt_native_open_buffer(mem, buf, (int64_t)size, "fuzz.ptn", &r, &err) != PT_OK) return;
    const pt_schema *s = pt_native_schema(r);
    int64_t nb = pt_native_num_batches(r);
    if (nb > 64) nb = 64; /* bounded work per input */
    for (int64_t b = 0; b < nb; b++) {
        pt_table *t = NULL;
        if (pt_native_read_batch(r, b, NULL, 0, &t, &err) == PT_OK) {
            check_or_die(t->nrows == pt_native_batch_rows(r, b) || s->nfields == 0);
            pt_table_free(t);
        }
        /* A projection: the last column, then the first. */
        if (s->nfields > 0) {
            int cols[2] = {s->nfields - 1, 0};
            if (pt_native_read_batch(r, b, cols, 2, &t, &err) == PT_OK) pt_table_free(t);
        }
    }
    pt_native_close_read(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static pt_mem *mem;
    if (!mem) mem = pt_mem_new((int64_t)64 << 20);
    /* An exact-size copy so that reads past the end are caught. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    exercise(mem, buf, size);
    check_or_die(pt_mem_used(mem) == 0);
    /* Again with the checksums made valid. */
    fix_checksums(buf, size);
    exercise(mem, buf, size);
    check_or_die(pt_mem_used(mem) == 0);
    free(buf);
    return 0;
}
