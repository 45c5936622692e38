/*
 * spill.c - private spill directories for out-of-core operators.
 *
 * Each computation gets its own directory (mode 0700, so other users cannot
 * read spilled data), hands out unique file names in it, counts the bytes
 * that go through it, and removes everything on free, including files left
 * behind by writers that failed half-way. Nothing here is global: two
 * contexts in one process get two directories.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/exec_internal.h"
#include "io/io_native.h"

struct pt__spill_dir {
    char *path;
    pthread_mutex_t lock;
    int64_t next_id;       /* under lock */
    int64_t files;         /* atomic */
    int64_t bytes_written; /* atomic */
    int64_t bytes_read;    /* atomic */
    pt_ctx *ctx;           /* also counts spilled bytes, when made for one */
};

/* Creates `dir` when it does not exist (one level; the parent must exist). */
static pt_status ensure_base(const char *dir, pt_error *err) {
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return pt_error_set(err, PT_EIO, "spill directory base '%s' is not a directory", dir);
        return PT_OK;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return pt_error_set(err, errno == ENOENT ? PT_ENOENT : PT_EIO,
                            "cannot create spill directory base '%s': %s", dir, strerror(errno));
    return PT_OK;
}

pt_status pt__spill_dir_new(const char *base_dir, pt__spill_dir **out, pt_error *err) {
    static uint64_t counter;
    if (!out) return pt_error_set(err, PT_EINVAL, "pt__spill_dir_new: out is NULL");
    *out = NULL;
    const char *base = base_dir;
    if (!base || !*base) {
        base = getenv("TMPDIR");
        if (!base || !*base) base = "/tmp";
    }
    PT_RETURN_NOT_OK(ensure_base(base, err));
    pt__spill_dir *sd = pt_calloc(1, sizeof *sd);
    size_t cap = strlen(base) + 64;
    if (sd) sd->path = pt_malloc(cap);
    if (!sd || !sd->path) {
        pt_free(sd);
        return pt_error_set(err, PT_ENOMEM, "out of memory creating a spill directory");
    }
    /* The random part makes names unguessable and distinct across contexts
     * of one process; retry on the (unlikely) collision. */
    int made = 0, e = 0;
    for (int attempt = 0; attempt < 16 && !made; attempt++) {
        uint64_t k = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        uint64_t rnd = pt_splitmix64((uint64_t)pt_now_ns() ^ (k << 48) ^ (uint64_t)(uintptr_t)sd ^
                                     ((uint64_t)getpid() << 20));
        snprintf(sd->path, cap, "%s/partita-spill-%ld-%012llx", base, (long)getpid(),
                 (unsigned long long)(rnd & 0xffffffffffffULL));
        if (mkdir(sd->path, 0700) == 0)
            made = 1;
        else if ((e = errno) != EEXIST)
            break;
    }
    if (!made) {
        pt_status s = pt_error_set(err, e == ENOENT ? PT_ENOENT : PT_EIO,
                                   "cannot create spill directory '%s': %s", sd->path,
                                   strerror(e ? e : EEXIST));
        pt_free(sd->path);
        pt_free(sd);
        return s;
    }
    pthread_mutex_init(&sd->lock, NULL);
    *out = sd;
    return PT_OK;
}

pt_status pt__spill_dir_new_ctx(const pt_ctx *ctx, pt__spill_dir **out, pt_error *err) {
    pt_status st = pt__spill_dir_new(ctx ? pt_ctx_spill_dir(ctx) : NULL, out, err);
    if (st == PT_OK) (*out)->ctx = (pt_ctx *)ctx;
    return st;
}

const char *pt__spill_dir_path(const pt__spill_dir *sd) {
    return sd ? sd->path : NULL;
}

pt_status pt__spill_file_path(pt__spill_dir *sd, const char *prefix, char *buf, size_t cap,
                             pt_error *err) {
    if (!sd || !buf || cap == 0)
        return pt_error_set(err, PT_EINVAL, "pt__spill_file_path: sd and buf must be given");
    if (!prefix || !*prefix) prefix = "spill";
    if (strchr(prefix, '/'))
        return pt_error_set(err, PT_EINVAL, "pt__spill_file_path: prefix '%s' contains '/'", prefix);
    pthread_mutex_lock(&sd->lock);
    int64_t id = sd->next_id++;
    pthread_mutex_unlock(&sd->lock);
    int n = snprintf(buf, cap, "%s/%s-%lld.ptn", sd->path, prefix, (long long)id);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = 0;
        return pt_error_set(err, PT_ERANGE,
                            "pt__spill_file_path: buffer of %zu bytes is too small (need %d)", cap,
                            n + 1);
    }
    __atomic_fetch_add(&sd->files, 1, __ATOMIC_RELAXED);
    return PT_OK;
}

pt_status pt__spill_write(pt__spill_dir *sd, const char *prefix, const pt_table *table,
                         const pt_native_write_opts *opts, char *path_out, size_t cap,
                         pt_error *err) {
    PT_RETURN_NOT_OK(pt__spill_file_path(sd, prefix, path_out, cap, err));
    pt_native_write_opts o;
    if (opts) {
        o = *opts;
    } else {
        pt_native_write_opts_init(&o);
    }
    /* Spill files die with the process; fsync would only slow them down. */
    o.durable = 0;
    PT_RETURN_NOT_OK(pt_native_write_table(path_out, table, &o, err));
    struct stat st;
    if (stat(path_out, &st) == 0) pt__spill_add_written(sd, (int64_t)st.st_size);
    return PT_OK;
}

pt_status pt__spill_read(pt__spill_dir *sd, pt_mem *mem, const char *path, int remove_after,
                        pt_table **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "pt__spill_read: out is NULL");
    *out = NULL;
    pt_status s = pt_native_read_all(mem, path, out, err);
    if (s == PT_OK && sd) {
        struct stat st;
        if (stat(path, &st) == 0) pt__spill_add_read(sd, (int64_t)st.st_size);
    }
    if (s == PT_OK && remove_after) pt__spill_remove(sd, path);
    return s;
}

void pt__spill_remove(pt__spill_dir *sd, const char *path) {
    (void)sd;
    if (path && unlink(path) != 0 && errno != ENOENT)
        pt_log_warn("cannot remove spill file '%s': %s", path, strerror(errno));
}

void pt__spill_add_written(pt__spill_dir *sd, int64_t bytes) {
    if (!sd) return;
    __atomic_fetch_add(&sd->bytes_written, bytes, __ATOMIC_RELAXED);
    if (sd->ctx) pt__ctx_add_spilled(sd->ctx, bytes);
}

void pt__spill_add_read(pt__spill_dir *sd, int64_t bytes) {
    if (sd) __atomic_fetch_add(&sd->bytes_read, bytes, __ATOMIC_RELAXED);
}

void pt__spill_stats_get(const pt__spill_dir *sd, pt__spill_stats *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!sd) return;
    out->files = __atomic_load_n(&sd->files, __ATOMIC_RELAXED);
    out->bytes_written = __atomic_load_n(&sd->bytes_written, __ATOMIC_RELAXED);
    out->bytes_read = __atomic_load_n(&sd->bytes_read, __ATOMIC_RELAXED);
}

void pt__spill_dir_free(pt__spill_dir *sd) {
    if (!sd) return;
    /* Everything in the directory is ours (it is private and uniquely
     * named), so remove every entry rather than only the names handed out:
     * that also catches a failed writer's temporary files. Operators do not
     * create subdirectories here. */
    DIR *d = opendir(sd->path);
    if (d) {
        size_t plen = strlen(sd->path);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            size_t cap = plen + strlen(e->d_name) + 2;
            char *p = pt_malloc(cap);
            if (!p) continue;
            snprintf(p, cap, "%s/%s", sd->path, e->d_name);
            if (unlink(p) != 0 && errno != ENOENT)
                pt_log_warn("cannot remove spill file '%s': %s", p, strerror(errno));
            pt_free(p);
        }
        closedir(d);
    }
    if (rmdir(sd->path) != 0 && errno != ENOENT)
        pt_log_warn("cannot remove spill directory '%s': %s", sd->path, strerror(errno));
    pthread_mutex_destroy(&sd->lock);
    pt_free(sd->path);
    pt_free(sd);
}
