/*
 * join_exec.c - pt__join: picks the build side (the one with fewer rows),
 * decides between the in-memory join and the out-of-core grace join from
 * the memory budget, and reports how the join ran.
 *
 * In one process every probe task reads the same hash table, so a small
 * build side is "broadcast" for free; a big one is built in parallel (radix
 * partitions, or lock-free chains for direct tables). The stats say which.
 */
#include <string.h>

#include "frame/join.h"

static const char *strategy_name(pt__join_strategy s) {
    switch (s) {
    case PT__JOIN_BROADCAST: return "broadcast";
    case PT__JOIN_PARTITIONED: return "partitioned";
    case PT__JOIN_GRACE: return "grace (out of core)";
    }
    return "?";
}

static const char *table_name(pt__join_table_kind k) {
    switch (k) {
    case PT__JT_DIRECT: return "direct";
    case PT__JT_DENSE: return "dense text ids";
    case PT__JT_HASHED: return "hashed";
    }
    return "?";
}

static pt_status check_parts(pt_table *const *parts, int64_t n, const char *name, pt_error *err) {
    if (!parts || n < 1)
        return pt_error_set(err, PT_EINVAL, "join: %s needs at least one partition (got %lld)",
                            name, (long long)n);
    for (int64_t p = 0; p < n; p++) {
        if (!parts[p])
            return pt_error_set(err, PT_EINVAL, "join: %s[%lld] is NULL", name, (long long)p);
        const pt_schema *s = parts[p]->schema, *s0 = parts[0]->schema;
        int same = s->nfields == s0->nfields;
        for (int c = 0; same && c < s->nfields; c++) same = s->fields[c].type == s0->fields[c].type;
        if (!same)
            return pt_error_set(err, PT_EINVAL,
                                "join: %s[%lld] has a schema different from %s[0]", name,
                                (long long)p, name);
    }
    return PT_OK;
}

static int64_t count_rows(pt_table *const *parts, int64_t n) {
    int64_t r = 0;
    for (int64_t p = 0; p < n; p++) r += parts[p]->nrows;
    return r;
}

pt_status pt__join_ex(pt_ctx *ctx, pt_table *const *lparts, int64_t nl, pt_table *const *rparts,
                      int64_t nr, pt_join_type type, int nkeys, const int *lkeys,
                      const int *rkeys, const pt__join_opts *opts, pt_table **out,
                      pt__join_stats *stats, pt_error *err) {
    if (out) *out = NULL;
    pt__join_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!ctx || !out) return pt_error_set(err, PT_EINVAL, "pt__join: ctx and out are required");
    if ((int)type < PT_JOIN_INNER || type > PT_JOIN_FULL)
        return pt_error_set(err, PT_EINVAL, "pt__join: type %d is not a join type", (int)type);
    PT_RETURN_NOT_OK(check_parts(lparts, nl, "lparts", err));
    PT_RETURN_NOT_OK(check_parts(rparts, nr, "rparts", err));
    PT_RETURN_NOT_OK(
        pt__join_check_keys(lparts[0]->schema, rparts[0]->schema, nkeys, lkeys, rkeys, err));
    pt__join_opts dflt;
    pt__join_opts_init(&dflt);
    if (!opts) opts = &dflt;

    int64_t lrows = count_rows(lparts, nl), rrows = count_rows(rparts, nr);
    int build_is_right = rrows <= lrows;
    pt_table *const *bparts = build_is_right ? rparts : lparts;
    pt_table *const *pparts = build_is_right ? lparts : rparts;
    int64_t nb = build_is_right ? nr : nl, np = build_is_right ? nl : nr;
    const int *bk = build_is_right ? rkeys : lkeys, *pk = build_is_right ? lkeys : rkeys;
    int64_t nbuild = build_is_right ? rrows : lrows, nprobe = build_is_right ? lrows : rrows;
    stats->build_is_right = build_is_right;
    stats->build_rows = nbuild;
    stats->probe_rows = nprobe;
    stats->grace_depth = 0;

    /* The hash table costs about 12-36 bytes per build row and the pairs
     * 8 per output row; beyond half of what is left, go out of core rather
     * than fail half way. */
    pt_mem *mem = pt_ctx_mem(ctx);
    int64_t limit = pt_mem_limit(mem);
    int64_t est = nbuild * 32 + nprobe * 8;
    int go_grace = opts->force_grace || nbuild >= INT32_MAX ||
                   (limit > 0 && est > pt_mem_available(mem) / 2);
    pt_status st = PT_OK;
    if (!go_grace) {
        pt__join_stream *j = NULL;
        double t0 = pt_now_s();
        st = pt__join_stream_new_ex(ctx, bparts, nb, build_is_right, type, nkeys, pk, bk,
                                    pparts[0]->schema, opts->broadcast_rows, &j, err);
        double t1 = pt_now_s();
        if (st == PT_OK) {
            stats->table = pt__join_stream_table_kind(j);
            stats->radix_parts = pt__join_stream_radix_parts(j);
            st = pt__join_stream_probe_parts(j, pparts, np, 1, out, err);
        }
        pt__join_stream_free(j);
        if (st == PT_OK) {
            stats->strategy =
                nbuild <= opts->broadcast_rows ? PT__JOIN_BROADCAST : PT__JOIN_PARTITIONED;
            stats->out_rows = (*out)->nrows;
            if (PT_LOG_ENABLED(PT_LOG_DEBUG))
                pt_log_debug("join: %s, %s table on the %s side (%lld rows, %lld radix "
                             "partitions), %lld probe rows -> %lld rows; build %.3f s, probe "
                             "%.3f s",
                             strategy_name(stats->strategy), table_name(stats->table),
                             build_is_right ? "right" : "left", (long long)nbuild,
                             (long long)stats->radix_parts, (long long)nprobe,
                             (long long)stats->out_rows, t1 - t0, pt_now_s() - t1);
            return PT_OK;
        }
        if (st != PT_EBUDGET || limit == 0) return st;
        pt_log_debug("join: in-memory join does not fit the budget (%s); going out of core",
                     err ? err->msg : "PT_EBUDGET");
        pt_error_clear(err);
    }
    st = pt__join_grace(ctx, lparts, nl, rparts, nr, type, nkeys, lkeys, rkeys, opts, out, stats,
                        err);
    if (st == PT_OK) {
        stats->strategy = PT__JOIN_GRACE;
        stats->out_rows = (*out)->nrows;
        pt_log_debug("join: %s, %lld partitions per side, depth %d, %lld bytes spilled, %lld rows",
                     strategy_name(stats->strategy), (long long)stats->grace_parts,
                     stats->grace_depth, (long long)stats->spill_bytes,
                     (long long)stats->out_rows);
    }
    return st;
}

pt_status pt__join(pt_ctx *ctx, pt_table *const *lparts, int64_t nl, pt_table *const *rparts,
                   int64_t nr, pt_join_type type, int nkeys, const int *lkeys, const int *rkeys,
                   pt_table **out, pt_error *err) {
    return pt__join_ex(ctx, lparts, nl, rparts, nr, type, nkeys, lkeys, rkeys, NULL, out, NULL,
                       err);
}
