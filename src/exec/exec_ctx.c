/*
 * exec_ctx.c - the execution context (a pool, a memory budget and a spill
 * directory name) and the default thread count. Environment variables are
 * read here so that the rest of the runtime takes plain parameters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "partita/comm.h"
#include "partita/exec.h"

struct pt_ctx {
    pt_pool *pool;
    pt_mem *mem;
    pt_mem *soft; /* view of mem for transient pipeline buffers */
    int64_t spilled; /* atomic: bytes written to spill files */
    char *spill_dir;
    int threads;
    pt_comm *comm; /* not owned */
};

int pt_default_threads(void) {
    const char *env = getenv("PARTITA_THREADS");
    if (env && *env) {
        char *end;
        errno = 0;
        long v = strtol(env, &end, 10);
        while (*end == ' ' || *end == '\t') end++;
        if (errno == 0 && *end == '\0' && v > 0 && v <= 4096) return (int)v;
        pt_log_warn("PARTITA_THREADS='%s' is not a thread count in [1, 4096]; using the core count",
                    env);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 4096) n = 4096;
    return (int)n;
}

void pt_ctx_opts_init(pt_ctx_opts *o) {
    if (!o) return;
    o->threads = 0;
    o->memory_limit = 0;
    o->spill_dir = NULL;
    o->comm = NULL;
    o->local = false;
}

pt_status pt_ctx_new(const pt_ctx_opts *opts, pt_ctx **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt_ctx_new: out is NULL");
    *out = NULL;
    pt_ctx_opts def;
    pt_ctx_opts_init(&def);
    if (!opts) opts = &def;
    if (opts->memory_limit < 0)
        return pt_error_set(err, PT_EINVAL, "pt_ctx_new: memory_limit must be >= 0, got %lld",
                            (long long)opts->memory_limit);
    int64_t limit = opts->memory_limit;
    if (limit == 0) {
        const char *env = getenv("PARTITA_MEMORY_LIMIT");
        if (env && *env) {
            pt_status s = pt_parse_size(env, "PARTITA_MEMORY_LIMIT", &limit, err);
            if (s != PT_OK) return s;
            if (limit < 0)
                return pt_error_set(err, PT_EINVAL,
                                    "PARTITA_MEMORY_LIMIT: must be >= 0, got '%s'", env);
        }
    }
    const char *dir = opts->spill_dir;
    if (!dir || !*dir) dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";

    pt_ctx *c = pt_calloc(1, sizeof(pt_ctx));
    if (!c) return pt_error_set(err, PT_ENOMEM, "pt_ctx_new: out of memory");
    c->spill_dir = pt_strdup(dir);
    c->mem = pt_mem_new(limit);
    c->soft = pt_mem_new_soft(c->mem);
    if (!c->spill_dir || !c->mem || !c->soft) {
        pt_ctx_free(c);
        return pt_error_set(err, PT_ENOMEM, "pt_ctx_new: out of memory");
    }
    c->comm = opts->comm;
    if (!c->comm && !opts->local && pt_comm_started_by_mpirun()) {
        const char *d = getenv("PARTITA_DISTRIBUTED");
        if (!d || strcmp(d, "0") != 0) {
            pt_status cs = pt_comm_world(&c->comm, err);
            if (cs != PT_OK) {
                pt_ctx_free(c);
                return cs;
            }
            if (pt_comm_size(c->comm) <= 1) c->comm = NULL;
        }
    }
    c->threads = opts->threads > 0 ? opts->threads : pt_default_threads();
    pt_status s = pt_pool_new(c->threads, &c->pool, err);
    if (s != PT_OK) {
        pt_ctx_free(c);
        return s;
    }
    *out = c;
    return PT_OK;
}

void pt_ctx_free(pt_ctx *ctx) {
    if (!ctx) return;
    pt_pool_free(ctx->pool);
    pt_mem_free(ctx->soft);
    pt_mem_free(ctx->mem);
    pt_free(ctx->spill_dir);
    pt_free(ctx);
}

pt_pool *pt_ctx_pool(pt_ctx *ctx) { return ctx ? ctx->pool : NULL; }
pt_mem *pt_ctx_mem(pt_ctx *ctx) { return ctx ? ctx->mem : NULL; }
pt_mem *pt_ctx_mem_soft(pt_ctx *ctx) { return ctx ? ctx->soft : NULL; }
pt_comm *pt_ctx_comm(const pt_ctx *ctx) { return ctx ? ctx->comm : NULL; }

int pt_ctx_threads(const pt_ctx *ctx) { return ctx ? ctx->threads : 0; }
const char *pt_ctx_spill_dir(const pt_ctx *ctx) { return ctx ? ctx->spill_dir : NULL; }

void pt__ctx_add_spilled(pt_ctx *ctx, int64_t bytes) {
    if (ctx) __atomic_fetch_add(&ctx->spilled, bytes, __ATOMIC_RELAXED);
}

int64_t pt_ctx_spilled_bytes(const pt_ctx *ctx) {
    return ctx ? __atomic_load_n(&ctx->spilled, __ATOMIC_RELAXED) : 0;
}
