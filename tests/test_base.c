/* Tests of the base layer: status table, errors, sizes, budgets, allocation
 * accounting and failure injection, hashing and random numbers. */
#include <pthread.h>

#include "pt_test.h"

TEST(status_table_is_consistent) {
    CHECK_STR(pt_status_str(PT_OK), "ok");
    CHECK_STR(pt_status_name(PT_OK), "PT_OK");
    CHECK_STR(pt_status_name(PT_EBUDGET), "PT_EBUDGET");
    CHECK_STR(pt_status_str((pt_status)9999), "unknown status");
    CHECK_EQ_I(PT_OK, 0);
    for (int s = 0; s < PT_STATUS_COUNT; s++) {
        CHECK(strlen(pt_status_str((pt_status)s)) > 0);
        CHECK(strncmp(pt_status_name((pt_status)s), "PT_", 3) == 0);
    }
}

TEST(error_set_and_prefix) {
    pt_error e;
    pt_error_clear(&e);
    CHECK_EQ_I(e.code, PT_OK);
    CHECK_EQ_I(pt_error_set(&e, PT_EPARSE, "x.csv:%d:%d: bad", 3, 7), PT_EPARSE);
    CHECK_STR(e.msg, "x.csv:3:7: bad");
    CHECK_EQ_I(pt_error_prefix(&e, "reading %s", "x.csv"), PT_EPARSE);
    CHECK_STR(e.msg, "reading x.csv: x.csv:3:7: bad");
    /* NULL error records are accepted everywhere. */
    CHECK_EQ_I(pt_error_set(NULL, PT_EIO, "ignored"), PT_EIO);
    /* Long messages are cut, never overflowed. */
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    pt_error_set(&e, PT_EINVAL, "%s", big);
    CHECK_EQ_I(strlen(e.msg), PT_ERROR_MSG_SIZE - 1);
    pt_error_prefix(&e, "%s", big);
    CHECK_EQ_I(strlen(e.msg), PT_ERROR_MSG_SIZE - 1);
}

TEST(parse_size) {
    pt_error e;
    int64_t v;
    CHECK_OK(pt_parse_size("100", "--memory-limit", &v, &e), &e);
    CHECK_EQ_I(v, 100);
    CHECK_OK(pt_parse_size("512M", "--memory-limit", &v, &e), &e);
    CHECK_EQ_I(v, 512LL << 20);
    CHECK_OK(pt_parse_size("1.5GiB", "--memory-limit", &v, &e), &e);
    CHECK_EQ_I(v, 3LL << 29);
    CHECK_OK(pt_parse_size(" 2k ", "x", &v, &e), &e);
    CHECK_EQ_I(v, 2048);
    CHECK_EQ_I(pt_parse_size("lots", "--memory-limit", &v, &e), PT_EINVAL);
    CHECK_CONTAINS(e.msg, "--memory-limit");
    CHECK_CONTAINS(e.msg, "'lots'");
    CHECK_EQ_I(pt_parse_size("5X", "--memory-limit", &v, &e), PT_EINVAL);
    CHECK_EQ_I(pt_parse_size("-3", "--memory-limit", &v, &e), PT_EINVAL);
    char buf[32];
    CHECK_STR(pt_format_bytes(512, buf, sizeof buf), "512 B");
    CHECK_STR(pt_format_bytes(1536, buf, sizeof buf), "1.50 KiB");
    CHECK_STR(pt_format_bytes(3.0 * (1 << 30), buf, sizeof buf), "3.00 GiB");
}

TEST(budget_reserve_release) {
    pt_error e;
    pt_mem *m = pt_mem_new(1000);
    CHECK(m != NULL);
    CHECK_OK(pt_mem_reserve(m, 600, "a", &e), &e);
    CHECK_EQ_I(pt_mem_used(m), 600);
    CHECK_EQ_I(pt_mem_available(m), 400);
    CHECK_EQ_I(pt_mem_reserve(m, 500, "hash table", &e), PT_EBUDGET);
    CHECK_CONTAINS(e.msg, "hash table");
    CHECK_EQ_I(pt_mem_used(m), 600); /* a failed reserve changes nothing */
    pt_mem_release(m, 600);
    CHECK_OK(pt_mem_reserve(m, 1000, "b", &e), &e);
    pt_mem_force(m, 50);
    CHECK_EQ_I(pt_mem_used(m), 1050);
    CHECK_EQ_I(pt_mem_peak(m), 1050);
    pt_mem_release(m, 1050);
    CHECK_EQ_I(pt_mem_used(m), 0);
    pt_mem_free(m);
    /* Unlimited budgets count but never refuse; NULL budgets do nothing. */
    m = pt_mem_new(0);
    CHECK_OK(pt_mem_reserve(m, INT64_C(1) << 50, "x", &e), &e);
    CHECK_EQ_I(pt_mem_available(m), INT64_MAX);
    pt_mem_release(m, INT64_C(1) << 50);
    pt_mem_free(m);
    CHECK_OK(pt_mem_reserve(NULL, 5, "x", &e), &e);
}

static pt_mem *shared_mem;
static void *reserve_loop(void *arg) {
    (void)arg;
    for (int i = 0; i < 100000; i++) {
        if (pt_mem_reserve(shared_mem, 3, "t", NULL) == PT_OK) pt_mem_release(shared_mem, 3);
    }
    return NULL;
}

TEST(budget_is_thread_safe) {
    shared_mem = pt_mem_new(10);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, reserve_loop, NULL);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    CHECK_EQ_I(pt_mem_used(shared_mem), 0);
    CHECK(pt_mem_peak(shared_mem) <= 10); /* never over the limit */
    pt_mem_free(shared_mem);
}

TEST(alloc_accounting_and_injection) {
    int64_t before = pt_alloc_bytes_in_use();
    char *p = pt_malloc(1000);
    CHECK(p != NULL);
    CHECK_EQ_I(pt_alloc_bytes_in_use() - before, 1000);
    p = pt_realloc(p, 5000);
    CHECK(p != NULL);
    CHECK_EQ_I(pt_alloc_bytes_in_use() - before, 5000);
    pt_free(p);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), before);
    char *s = pt_strdup("hello");
    CHECK_STR(s, "hello");
    pt_free(s);
    s = pt_strndup("hello", 3);
    CHECK_STR(s, "hel");
    pt_free(s);
    pt_alloc_fail_after(2);
    void *a = pt_malloc(1), *b = pt_malloc(1), *c = pt_malloc(1);
    pt_alloc_fail_after(-1);
    CHECK(a != NULL && b != NULL && c == NULL);
    pt_free(a);
    pt_free(b);
    void *d = pt_malloc(1);
    CHECK(d != NULL);
    pt_free(d);
    CHECK(pt_calloc(SIZE_MAX / 2, 4) == NULL); /* overflow detected */
    CHECK_EQ_I(pt_alloc_bytes_in_use(), before);
}

static int custom_calls;
static void *my_malloc(size_t n, void *ud) { custom_calls++; (void)ud; return malloc(n); }
static void *my_realloc(void *p, size_t n, void *ud) { custom_calls++; (void)ud; return realloc(p, n); }
static void my_free(void *p, void *ud) { custom_calls++; (void)ud; free(p); }

TEST(custom_allocator_hooks) {
    pt_allocator a = {my_malloc, my_realloc, my_free, NULL};
    pt_set_allocator(&a);
    void *p = pt_malloc(10);
    pt_free(p);
    pt_set_allocator(NULL);
    CHECK_EQ_I(custom_calls, 2);
}

TEST(hash_properties) {
    /* Deterministic, seed-dependent, and every byte matters. */
    const char *s = "the quick brown fox jumps over the lazy dog";
    size_t n = strlen(s);
    CHECK(pt_hash_bytes(s, n, 1) == pt_hash_bytes(s, n, 1));
    CHECK(pt_hash_bytes(s, n, 1) != pt_hash_bytes(s, n, 2));
    char buf[64];
    for (size_t len = 0; len <= n; len++) {
        memcpy(buf, s, len);
        uint64_t h = pt_hash_bytes(buf, len, 0);
        for (size_t i = 0; i < len; i++) {
            buf[i] ^= 1;
            CHECK(pt_hash_bytes(buf, len, 0) != h);
            buf[i] ^= 1;
        }
    }
    /* Bucket spread: 1e5 short keys over 256 buckets, chi-square-ish bound. */
    int counts[256] = {0};
    for (int i = 0; i < 100000; i++) {
        int len = snprintf(buf, sizeof buf, "id%06d", i);
        counts[pt_hash_bytes(buf, (size_t)len, 42) & 255]++;
    }
    double chi = 0, expect = 100000.0 / 256;
    for (int i = 0; i < 256; i++) chi += (counts[i] - expect) * (counts[i] - expect) / expect;
    CHECK_MSG(chi < 400, "chi-square %.1f too high for 255 degrees of freedom", chi);
}

TEST(rng_moments) {
    pt_rng r;
    pt_rng_seed(&r, 7);
    double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0;
    int n = 200000, below_hits[10] = {0};
    for (int i = 0; i < n; i++) {
        double u = pt_rng_uniform(&r);
        CHECK(u >= 0 && u < 1);
        sum += u;
        sum2 += u * u;
        double z = pt_rng_normal(&r);
        nsum += z;
        nsum2 += z * z;
        below_hits[pt_rng_below(&r, 10)]++;
    }
    /* Closed forms: U(0,1) mean 1/2 var 1/12; N(0,1) mean 0 var 1. */
    CHECK_NEAR(sum / n, 0.5, 0.01);
    CHECK_NEAR(sum2 / n - 0.25, 1.0 / 12, 0.01);
    CHECK(fabs(nsum / n) < 0.01);
    CHECK_NEAR(nsum2 / n, 1.0, 0.02);
    for (int i = 0; i < 10; i++) CHECK(abs(below_hits[i] - n / 10) < n / 100);
    pt_rng a, b;
    pt_rng_seed(&a, 99);
    pt_rng_seed(&b, 99);
    for (int i = 0; i < 100; i++) CHECK(pt_rng_next(&a) == pt_rng_next(&b));
}

TEST(clock_and_sleep) {
    int64_t t0 = pt_now_ns();
    pt_sleep_ns(20 * 1000000LL);
    int64_t dt = pt_now_ns() - t0;
    CHECK(dt >= 20 * 1000000LL);
    CHECK(pt_rss_current() > 0);
    CHECK(pt_rss_peak() >= pt_rss_current() / 2);
}

TEST(log_levels) {
    pt_log_level saved = pt_log_level_get();
    pt_log_level_set(PT_LOG_ERROR);
    CHECK(!PT_LOG_ENABLED(PT_LOG_INFO));
    CHECK(PT_LOG_ENABLED(PT_LOG_ERROR));
    pt_log_set_rank(3);
    CHECK_EQ_I(pt_log_get_rank(), 3);
    pt_log_set_rank(-1);
    pt_log_level_set(saved);
}

TEST(version_info) {
    CHECK_STR(pt_version(), PT_VERSION_STRING);
    CHECK_CONTAINS(pt_build_info(), "build_type=");
    CHECK_CONTAINS(pt_build_info(), "mpi=");
}
