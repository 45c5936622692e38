/* Tests of the comm layer in one process: the self backend (collectives are
 * identities or copies, messages to oneself are queued), options and
 * argument errors, and the chunking arithmetic used for messages over 2 GiB
 * (the MPI side is tested by tests/mpi/). */
#include <stdlib.h>
#include <unistd.h>

#include "comm/comm_internal.h"
#include "pt_test.h"

static pt_comm *self_comm(void) {
    pt_comm_opts o;
    pt_comm_opts_init(&o);
    o.backend = "self";
    pt_comm *c = NULL;
    pt_error err;
    if (pt_comm_init(&o, &c, &err) != PT_OK) {
        fprintf(stderr, "pt_comm_init: %s\n", err.msg);
        return NULL;
    }
    return c;
}

TEST(self_identity) {
    pt_comm *c = self_comm();
    CHECK(c);
    CHECK_EQ_I(pt_comm_rank(c), 0);
    CHECK_EQ_I(pt_comm_size(c), 1);
    CHECK_STR(pt_comm_backend_name(c), "self");
    CHECK(!pt_comm_failed(c));
    char buf[256], host[256];
    CHECK_STR(pt_comm_library_version(c, buf, sizeof buf), "none");
    CHECK(gethostname(host, sizeof host) == 0);
    host[sizeof host - 1] = '\0';
    CHECK_STR(pt_comm_processor_name(c, buf, sizeof buf), host);
    pt_comm_free(c);
    pt_comm_free(NULL);
}

TEST(auto_without_mpirun_is_self) {
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    unsetenv("PMIX_RANK");
    pt_comm *c = NULL;
    pt_error err;
    CHECK_OK(pt_comm_init(NULL, &c, &err), &err);
    CHECK_STR(pt_comm_backend_name(c), "self");
    CHECK_EQ_I(pt_comm_size(c), 1);
    pt_comm_free(c);
}

TEST(options) {
    pt_comm_opts o;
    pt_comm_opts_init(&o);
    CHECK_STR(o.backend, "auto");
    CHECK(o.timeout_s == 0 && !o.deterministic);
    pt_comm *c = NULL;
    pt_error err;
    o.backend = "carrier-pigeon";
    CHECK_EQ_I(pt_comm_init(&o, &c, &err), PT_EINVAL);
    CHECK(c == NULL);
    CHECK_STR(err.msg, "opts.backend: unknown backend 'carrier-pigeon' (expected auto, self or mpi)");

    o.backend = "self";
    setenv("PARTITA_COMM_TIMEOUT", "2.5", 1);
    CHECK_OK(pt_comm_init(&o, &c, &err), &err);
    CHECK(pt_comm_timeout(c) == 2.5);
    pt_comm_set_timeout(c, 7);
    CHECK(pt_comm_timeout(c) == 7);
    pt_comm_set_timeout(c, -1); /* ignored */
    CHECK(pt_comm_timeout(c) == 7);
    pt_comm_free(c);
    o.timeout_s = 0.25; /* the option wins over the environment */
    CHECK_OK(pt_comm_init(&o, &c, &err), &err);
    CHECK(pt_comm_timeout(c) == 0.25);
    pt_comm_free(c);
    o.timeout_s = 0;
    setenv("PARTITA_COMM_TIMEOUT", "soon", 1);
    CHECK_EQ_I(pt_comm_init(&o, &c, &err), PT_EINVAL);
    CHECK_STR(err.msg, "PARTITA_COMM_TIMEOUT: 'soon' is not a positive number of seconds");
    setenv("PARTITA_COMM_TIMEOUT", "-3", 1);
    CHECK_EQ_I(pt_comm_init(&o, &c, &err), PT_EINVAL);
    unsetenv("PARTITA_COMM_TIMEOUT");
    CHECK_OK(pt_comm_init(&o, &c, &err), &err);
    CHECK(pt_comm_timeout(c) == 60);
    pt_comm_free(c);

    if (strstr(pt_build_info(), "mpi=no")) {
        o.backend = "mpi";
        CHECK_EQ_I(pt_comm_init(&o, &c, &err), PT_EUNSUPPORTED);
        CHECK(strstr(err.msg, "built without MPI"));
    }
}

TEST(self_collectives) {
    pt_comm *c = self_comm();
    CHECK(c);
    pt_error err;
    CHECK_OK(pt_comm_barrier(c, &err), &err);
    char b[5] = "abcd";
    CHECK_OK(pt_comm_bcast(c, b, 4, 0, &err), &err);
    CHECK_STR(b, "abcd");
    CHECK_OK(pt_comm_bcast(c, NULL, 0, 0, &err), &err);

    /* Reductions over one rank are identities, for every type and op. */
    int64_t i64[3] = {-5, 0, INT64_MAX};
    int32_t i32[2] = {INT32_MIN, 9};
    float f32[2] = {1.5f, -0.25f};
    double f64[2] = {1e300, -3.0};
    pt_redop ops[] = {PT_REDOP_SUM, PT_REDOP_MIN, PT_REDOP_MAX};
    for (int k = 0; k < 3; k++) {
        CHECK_OK(pt_comm_allreduce(c, i64, 3, PT_DTYPE_INT64, ops[k], &err), &err);
        CHECK_OK(pt_comm_allreduce(c, i32, 2, PT_DTYPE_INT32, ops[k], &err), &err);
        CHECK_OK(pt_comm_allreduce(c, f32, 2, PT_DTYPE_FLOAT32, ops[k], &err), &err);
        CHECK_OK(pt_comm_reduce(c, f64, 2, PT_DTYPE_FLOAT64, ops[k], 0, &err), &err);
    }
    CHECK(i64[0] == -5 && i64[1] == 0 && i64[2] == INT64_MAX);
    CHECK(i32[0] == INT32_MIN && i32[1] == 9);
    CHECK(f32[0] == 1.5f && f32[1] == -0.25f);
    CHECK(f64[0] == 1e300 && f64[1] == -3.0);
    /* pt_dtype values are the pt_type ones. */
    CHECK_OK(pt_comm_allreduce(c, f64, 2, (pt_dtype)PT_TYPE_FLOAT64, PT_REDOP_SUM, &err), &err);

    char g[4] = {0};
    CHECK_OK(pt_comm_gather(c, "xyz", 3, g, 0, &err), &err);
    CHECK_STR(g, "xyz");
    memset(g, 0, sizeof g);
    CHECK_OK(pt_comm_allgather(c, "uvw", 3, g, &err), &err);
    CHECK_STR(g, "uvw");

    void *out = NULL;
    int64_t counts[1] = {-1};
    CHECK_OK(pt_comm_allgatherv(c, "hello", 5, &out, counts, &err), &err);
    CHECK_EQ_I(counts[0], 5);
    CHECK(memcmp(out, "hello", 5) == 0);
    pt_free(out);
    CHECK_OK(pt_comm_allgatherv(c, NULL, 0, &out, counts, &err), &err);
    CHECK_EQ_I(counts[0], 0);
    CHECK(out != NULL);
    pt_free(out);
    pt_comm_free(c);
}

TEST(self_alltoallv) {
    pt_comm *c = self_comm();
    CHECK(c);
    pt_error err;
    unsigned char send[300];
    for (int i = 0; i < 300; i++) send[i] = (unsigned char)(i * 7 + 1);
    int64_t sc[1] = {300}, rc[1] = {-1};
    void *out = NULL;
    CHECK_OK(pt_comm_alltoallv(c, send, sc, &out, rc, &err), &err);
    CHECK_EQ_I(rc[0], 300);
    for (int i = 0; i < 300; i++) CHECK_EQ_I(((unsigned char *)out)[i], (unsigned char)(i * 7 + 1));
    pt_free(out);
    sc[0] = 0;
    CHECK_OK(pt_comm_alltoallv(c, NULL, sc, &out, rc, &err), &err);
    CHECK_EQ_I(rc[0], 0);
    pt_free(out);
    sc[0] = -4;
    CHECK_EQ_I(pt_comm_alltoallv(c, send, sc, &out, rc, &err), PT_EINVAL);
    CHECK_STR(err.msg, "pt_comm_alltoallv: send_counts[0] is -4 (negative or the total overflows)");
    CHECK(out == NULL);
    pt_comm_free(c);
}

TEST(argument_errors) {
    pt_comm *c = self_comm();
    CHECK(c);
    pt_error err;
    char b[8] = {0};
    CHECK_EQ_I(pt_comm_bcast(c, b, 8, 1, &err), PT_EINVAL);
    CHECK_STR(err.msg, "pt_comm_bcast: root 1 is not a rank (size 1)");
    CHECK_EQ_I(pt_comm_bcast(c, b, -1, 0, &err), PT_EINVAL);
    CHECK_STR(err.msg, "pt_comm_bcast: bytes is negative (-1)");
    CHECK_EQ_I(pt_comm_bcast(c, NULL, 3, 0, &err), PT_EINVAL);
    CHECK_STR(err.msg, "pt_comm_bcast: buffer is NULL for 3 bytes");
    CHECK_EQ_I(pt_comm_allreduce(c, b, 1, (pt_dtype)PT_TYPE_UTF8, PT_REDOP_SUM, &err), PT_EINVAL);
    CHECK(strstr(err.msg, "pt_comm_allreduce: dtype"));
    CHECK_EQ_I(pt_comm_allreduce(c, b, 1, PT_DTYPE_INT64, (pt_redop)9, &err), PT_EINVAL);
    CHECK_STR(err.msg, "pt_comm_allreduce: op 9 is not sum, min or max");
    CHECK_EQ_I(pt_comm_reduce(c, b, 1, PT_DTYPE_INT64, PT_REDOP_MAX, -1, &err), PT_EINVAL);
    CHECK_STR(err.msg, "pt_comm_reduce: root -1 is not a rank (size 1)");
    CHECK_EQ_I(pt_comm_gather(c, b, 4, NULL, 0, &err), PT_EINVAL);
    CHECK_STR(err.msg, "pt_comm_gather: recv is NULL");
    CHECK_EQ_I(pt_comm_send(c, b, 1, 0, PT_COMM_TAG_MAX + 1, &err), PT_EINVAL);
    CHECK_STR(err.msg, "pt_comm_send: tag 32768 is outside [0, 32767]");
    CHECK_EQ_I(pt_comm_send(c, b, 1, 3, 0, &err), PT_EINVAL);
    CHECK_STR(err.msg, "pt_comm_send: dest 3 is not a rank (size 1)");
    CHECK_EQ_I(pt_comm_recv(c, b, 8, -2, 0, NULL, &err), PT_EINVAL);
    CHECK_STR(err.msg, "pt_comm_recv: src -2 is not a rank (size 1)");
    CHECK_EQ_I(pt_comm_barrier(NULL, &err), PT_EINVAL);
    CHECK_STR(err.msg, "pt_comm_barrier: c is NULL");
    CHECK_EQ_I(pt_comm_init(NULL, NULL, &err), PT_EINVAL);
    /* Argument errors do not fail the comm. */
    CHECK(!pt_comm_failed(c));
    CHECK_OK(pt_comm_barrier(c, &err), &err);
    pt_comm_free(c);
}

TEST(self_messages) {
    pt_comm *c = self_comm();
    CHECK(c);
    pt_error err;
    CHECK_OK(pt_comm_send(c, "one", 3, 0, 1, &err), &err);
    CHECK_OK(pt_comm_send(c, "two", 3, 0, 2, &err), &err);
    CHECK_OK(pt_comm_send(c, "three", 5, 0, 1, &err), &err);
    CHECK_OK(pt_comm_send(c, NULL, 0, 0, 3, &err), &err);
    char b[16];
    int64_t n = -1;
    /* Tag 2 can be taken first; within a tag the order is kept. */
    CHECK_OK(pt_comm_recv(c, b, sizeof b, 0, 2, &n, &err), &err);
    CHECK(n == 3 && memcmp(b, "two", 3) == 0);
    CHECK_OK(pt_comm_recv(c, b, sizeof b, 0, 1, &n, &err), &err);
    CHECK(n == 3 && memcmp(b, "one", 3) == 0);
    void *p = NULL;
    CHECK_OK(pt_comm_recv_alloc(c, 0, 1, &p, &n, &err), &err);
    CHECK(n == 5 && memcmp(p, "three", 5) == 0);
    pt_free(p);
    CHECK_OK(pt_comm_recv(c, NULL, 0, 0, 3, &n, &err), &err);
    CHECK_EQ_I(n, 0);
    /* Too small a buffer: the message is consumed and reported. */
    CHECK_OK(pt_comm_send(c, "0123456789", 10, 0, 4, &err), &err);
    CHECK_OK(pt_comm_send(c, "ok", 2, 0, 4, &err), &err);
    CHECK_EQ_I(pt_comm_recv(c, b, 4, 0, 4, &n, &err), PT_ERANGE);
    CHECK_STR(err.msg, "rank 0: pt_comm_recv: the message of 10 bytes from rank 0 (tag 4) does "
                       "not fit the buffer of 4 bytes; it was discarded");
    CHECK_EQ_I(n, 10);
    CHECK_OK(pt_comm_recv(c, b, 4, 0, 4, &n, &err), &err);
    CHECK(n == 2 && memcmp(b, "ok", 2) == 0);
    /* Nothing queued: it would never complete, so it fails at once. */
    CHECK_EQ_I(pt_comm_recv(c, b, sizeof b, 0, 9, &n, &err), PT_ETIMEOUT);
    CHECK_STR(err.msg, "rank 0: pt_comm_recv from itself with tag 9 would wait for ever: no such "
                       "message was sent");
    /* Messages never received are freed with the comm (leak check below). */
    CHECK_OK(pt_comm_send(c, "left", 4, 0, 5, &err), &err);
    pt_comm_free(c);
}

TEST(out_of_memory) {
    pt_comm *c = self_comm();
    CHECK(c);
    pt_error err;
    void *out = NULL;
    int64_t counts[1];
    pt_alloc_fail_after(0);
    pt_status s = pt_comm_allgatherv(c, "abc", 3, &out, counts, &err);
    pt_status s2 = pt_comm_send(c, "abc", 3, 0, 0, &err);
    pt_alloc_fail_after(-1);
    CHECK_EQ_I(s, PT_ENOMEM);
    CHECK_EQ_I(s2, PT_ENOMEM);
    CHECK(strstr(err.msg, "out of memory"));
    CHECK(out == NULL);
    pt_comm_free(c);
}

/* Pieces of a transfer: contiguous, in order, none empty, none over the
 * chunk, covering every byte once. */
static int check_pieces(int64_t bytes, int64_t chunk) {
    int64_t n = pt__comm_nchunks(bytes, chunk);
    int64_t expect_n = bytes == 0 ? 0 : bytes / chunk + (bytes % chunk != 0);
    if (n != expect_n) return 0;
    int64_t next = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t off, len;
        pt__comm_chunk_at(bytes, chunk, i, &off, &len);
        if (off != next || len < 1 || len > chunk) return 0;
        next = off + len;
    }
    return next == bytes;
}

TEST(chunk_arithmetic) {
    for (int64_t bytes = 0; bytes < 200; bytes++) {
        for (int64_t chunk = 1; chunk < 40; chunk++) {
            CHECK_MSG(check_pieces(bytes, chunk), "bytes %lld chunk %lld", (long long)bytes,
                      (long long)chunk);
        }
    }
    /* 5 GiB + 3 bytes at the default 1 GiB chunk: 6 pieces, all int-sized. */
    int64_t big = ((int64_t)5 << 30) + 3;
    CHECK(check_pieces(big, PT__COMM_CHUNK_DEFAULT));
    CHECK_EQ_I(pt__comm_nchunks(big, PT__COMM_CHUNK_DEFAULT), 6);
    int64_t off, len;
    pt__comm_chunk_at(big, PT__COMM_CHUNK_DEFAULT, 5, &off, &len);
    CHECK(off == (int64_t)5 << 30 && len == 3);
    CHECK(PT__COMM_CHUNK_DEFAULT <= INT32_MAX);
    CHECK(check_pieces((int64_t)3 << 31, PT__COMM_CHUNK_MAX));
    /* Element chunks never split a value, and are at least one value. */
    CHECK_EQ_I(pt__comm_chunk_elems(7, 8), 1);
    CHECK_EQ_I(pt__comm_chunk_elems(17, 8), 2);
    CHECK_EQ_I(pt__comm_chunk_elems(16, 4), 4);
}

TEST(chunk_knobs) {
    pt_comm *c;
    pt_error err;
    setenv("PARTITA_COMM_CHUNK", "7", 1);
    c = self_comm();
    CHECK(c);
    CHECK_EQ_I(pt__comm_get_chunk(c), 7);
    pt_comm_free(c);
    setenv("PARTITA_COMM_CHUNK", "3G", 1); /* capped below INT_MAX */
    c = self_comm();
    CHECK(c);
    CHECK_EQ_I(pt__comm_get_chunk(c), INT32_MAX);
    pt_comm_free(c);
    setenv("PARTITA_COMM_CHUNK", "lots", 1); /* ignored with a warning */
    pt_log_level_set(PT_LOG_OFF);
    c = self_comm();
    pt_log_level_set(PT_LOG_WARN);
    CHECK(c);
    CHECK_EQ_I(pt__comm_get_chunk(c), (int64_t)1 << 30);
    unsetenv("PARTITA_COMM_CHUNK");
    pt__comm_set_chunk(c, 0);
    CHECK_EQ_I(pt__comm_get_chunk(c), 1);
    pt__comm_set_chunk(c, (int64_t)1 << 40);
    CHECK_EQ_I(pt__comm_get_chunk(c), INT32_MAX);
    /* A tiny chunk changes nothing for one rank. */
    pt__comm_set_chunk(c, 3);
    double v[5] = {1, 2, 3, 4, 5};
    CHECK_OK(pt_comm_allreduce(c, v, 5, PT_DTYPE_FLOAT64, PT_REDOP_SUM, &err), &err);
    CHECK(v[4] == 5);
    pt_comm_free(c);
}

TEST(local_reduction) {
    int64_t a[3] = {INT64_MAX, -7, 4}, b[3] = {1, 3, -9};
    pt__comm_reduce_local(a, b, 3, PT_DTYPE_INT64, PT_REDOP_SUM);
    CHECK(a[0] == INT64_MIN && a[1] == -4 && a[2] == -5); /* wraps, like MPI */
    pt__comm_reduce_local(a, b, 3, PT_DTYPE_INT64, PT_REDOP_MAX);
    CHECK(a[0] == 1 && a[1] == 3 && a[2] == -5);
    pt__comm_reduce_local(a, b, 3, PT_DTYPE_INT64, PT_REDOP_MIN);
    CHECK(a[0] == 1 && a[1] == 3 && a[2] == -9);
    float f[2] = {1.5f, -2}, g[2] = {0.25f, -8};
    pt__comm_reduce_local(f, g, 2, PT_DTYPE_FLOAT32, PT_REDOP_SUM);
    CHECK(f[0] == 1.75f && f[1] == -10);
    int32_t x[2] = {INT32_MAX, 5}, y[2] = {1, 6};
    pt__comm_reduce_local(x, y, 2, PT_DTYPE_INT32, PT_REDOP_SUM);
    CHECK(x[0] == INT32_MIN && x[1] == 11);
    double d[2] = {1e16, 1}, e[2] = {1, -1};
    pt__comm_reduce_local(d, e, 2, PT_DTYPE_FLOAT64, PT_REDOP_SUM);
    CHECK(d[0] == 1e16 + 1 && d[1] == 0);
}

TEST(no_leaks) {
    int64_t before = pt_alloc_bytes_in_use();
    pt_comm *c = self_comm();
    CHECK(c);
    pt_error err;
    CHECK_OK(pt_comm_send(c, "zz", 2, 0, 0, &err), &err);
    pt_comm_free(c);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), before);
}
