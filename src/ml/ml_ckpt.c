/*
 * ml_ckpt.c - training checkpoints: one file per saved step in a directory,
 * written atomically (temporary name, fsync, rename, fsync of the
 * directory) so that a rank killed mid-write never leaves a half file under
 * a checkpoint name, with a CRC32C so that a file damaged later is detected
 * and the previous one used instead. Also the file helpers of ml_persist.h.
 *
 * Layout (little-endian):
 *   "PTCK" u32 version  u64 tag  i64 step  i64 epoch  u64 rng[4]
 *   i64 nparams  i64 nstate  f64 params[nparams]  f64 state[nstate]
 *   u32 crc32c of every byte before it
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_util.h"
#include "ml/ml_internal.h"
#include "ml/ml_persist.h"
#include "partita/io.h"

#define CKPT_MAGIC "PTCK"
#define CKPT_VERSION 1u
#define CKPT_HEADER_BYTES 80u /* magic..nstate */
#define CKPT_PREFIX "ckpt-"
#define CKPT_SUFFIX ".ptc"

/* ------------------------------------------------------------------------ */
/* Shared file helpers (ml_persist.h)                                       */
/* ------------------------------------------------------------------------ */

void pt__mlbuf_put(pt__mlbuf *b, const void *data, size_t n) {
    if (b->oom || n == 0) return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        unsigned char *p = pt_realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void pt__mlbuf_free(pt__mlbuf *b) {
    pt_free(b->p);
    memset(b, 0, sizeof *b);
}

void pt__mlbuf_f64s(pt__mlbuf *b, const double *v, int64_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n > 0) pt__mlbuf_put(b, v, (size_t)n * sizeof(double));
#else
    for (int64_t i = 0; i < n; i++) pt__mlbuf_f64(b, v[i]);
#endif
}

bool pt__mlread_f64s(pt__mlreader *r, double *dst, int64_t n) {
    if (n < 0 || (uint64_t)n > (r->len - r->pos) / 8) return false;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n > 0) memcpy(dst, r->p + r->pos, (size_t)n * 8);
    r->pos += (size_t)n * 8;
#else
    for (int64_t i = 0; i < n; i++) (void)pt__mlread_f64(r, &dst[i]);
#endif
    return true;
}

pt_status pt__ml_write_atomic(const char *what, const char *path, const char *tmp_path,
                              const void *data, size_t len, pt_error *err) {
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return pt_error_set(err, PT_EIO, "%s '%s': cannot create '%s': %s", what, path,
                            tmp_path, strerror(errno));
    const unsigned char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            unlink(tmp_path);
            return pt_error_set(err, PT_EIO, "%s '%s': write of '%s' failed: %s", what, path,
                                tmp_path, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp_path);
        return pt_error_set(err, PT_EIO, "%s '%s': fsync of '%s' failed: %s", what, path,
                            tmp_path, strerror(e));
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp_path);
        return pt_error_set(err, PT_EIO, "%s '%s': close of '%s' failed: %s", what, path,
                            tmp_path, strerror(e));
    }
    if (rename(tmp_path, path) != 0) {
        int e = errno;
        unlink(tmp_path);
        return pt_error_set(err, PT_EIO, "%s '%s': rename from '%s' failed: %s", what, path,
                            tmp_path, strerror(e));
    }
    pt__fsync_parent_dir(path);
    return PT_OK;
}

pt_status pt__ml_read_file(const char *what, const char *path, unsigned char **data,
                           size_t *len, pt_error *err) {
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return pt_error_set(err, e == ENOENT ? PT_ENOENT : PT_EIO, "%s '%s': cannot open: %s",
                            what, path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return pt_error_set(err, PT_EIO, "%s '%s': not a regular file", what, path);
    }
    size_t size = (size_t)st.st_size;
    unsigned char *buf = pt_malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return pt_error_set(err, PT_ENOMEM, "%s '%s': out of memory for %zu bytes", what, path,
                            size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            pt_free(buf);
            return pt_error_set(err, PT_EIO, "%s '%s': read failed: %s", what, path,
                                e ? strerror(e) : "file shrank while being read");
        }
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = size;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Directory listing                                                        */
/* ------------------------------------------------------------------------ */

typedef struct ckpt_entry {
    long long step;
    char *name;
} ckpt_entry;

/* Parses "ckpt-<digits>.ptc"; anything else in the directory is not ours. */
static bool parse_name(const char *name, long long *step) {
    size_t n = strlen(name), pl = strlen(CKPT_PREFIX), sl = strlen(CKPT_SUFFIX);
    if (n <= pl + sl || strncmp(name, CKPT_PREFIX, pl) != 0 ||
        strcmp(name + n - sl, CKPT_SUFFIX) != 0)
        return false;
    long long v = 0;
    for (size_t i = pl; i < n - sl; i++) {
        if (name[i] < '0' || name[i] > '9') return false;
        if (v > (INT64_MAX - 9) / 10) return false;
        v = v * 10 + (name[i] - '0');
    }
    *step = v;
    return true;
}

static int cmp_step_desc(const void *a, const void *b) {
    const ckpt_entry *x = a, *y = b;
    if (x->step != y->step) return x->step > y->step ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void free_entries(ckpt_entry *e, size_t n) {
    for (size_t i = 0; i < n; i++) pt_free(e[i].name);
    pt_free(e);
}

/* Lists the checkpoint files of dir, newest step first. *missing is set
 * when the directory does not exist (not an error for the caller). Stale
 * temporary files are reported through `tmps` when it is not NULL. */
static pt_status list_ckpts(const char *dir, ckpt_entry **out, size_t *count, bool *missing,
                            ckpt_entry **tmps, size_t *ntmps, pt_error *err) {
    *out = NULL;
    *count = 0;
    if (tmps) {
        *tmps = NULL;
        *ntmps = 0;
    }
    if (missing) *missing = false;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT && missing) {
            *missing = true;
            return PT_OK;
        }
        return pt_error_set(err, PT_EIO, "checkpoint directory '%s': cannot open: %s", dir,
                            strerror(errno));
    }
    ckpt_entry *v = NULL, *t = NULL;
    size_t n = 0, cap = 0, nt = 0, capt = 0;
    pt_status st = PT_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long long step;
        bool is_ckpt = parse_name(de->d_name, &step);
        bool is_tmp = !is_ckpt && tmps && strncmp(de->d_name, ".ckpt-", 6) == 0 &&
                      strlen(de->d_name) > 10 &&
                      strcmp(de->d_name + strlen(de->d_name) - 4, ".tmp") == 0;
        if (!is_ckpt && !is_tmp) continue;
        ckpt_entry **arr = is_ckpt ? &v : &t;
        size_t *len = is_ckpt ? &n : &nt, *cp = is_ckpt ? &cap : &capt;
        if (*len == *cp) {
            size_t nc = *cp ? *cp * 2 : 16;
            ckpt_entry *p = pt_realloc(*arr, nc * sizeof *p);
            if (!p) {
                st = pt_error_set(err, PT_ENOMEM, "checkpoint directory '%s': out of memory",
                                  dir);
                break;
            }
            *arr = p;
            *cp = nc;
        }
        char *name = pt_strdup(de->d_name);
        if (!name) {
            st = pt_error_set(err, PT_ENOMEM, "checkpoint directory '%s': out of memory", dir);
            break;
        }
        (*arr)[*len].step = is_ckpt ? step : 0;
        (*arr)[*len].name = name;
        (*len)++;
    }
    closedir(d);
    if (st != PT_OK) {
        free_entries(v, n);
        free_entries(t, nt);
        return st;
    }
    if (n > 1) qsort(v, n, sizeof *v, cmp_step_desc);
    *out = v;
    *count = n;
    if (tmps) {
        *tmps = t;
        *ntmps = nt;
    } else {
        free_entries(t, nt);
    }
    return PT_OK;
}

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = pt_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* mkdir -p: creates every missing component of dir. */
static pt_status make_dirs(const char *dir, pt_error *err) {
    size_t n = strlen(dir);
    char *p = pt_malloc(n + 1);
    if (!p) return pt_error_set(err, PT_ENOMEM, "checkpoint directory '%s': out of memory", dir);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            pt_status st = pt_error_set(err, PT_EIO,
                                        "checkpoint directory '%s': cannot create '%s': %s", dir,
                                        p, strerror(e));
            pt_free(p);
            return st;
        }
        p[i] = c;
    }
    pt_free(p);
    struct stat s;
    if (stat(dir, &s) != 0 || !S_ISDIR(s.st_mode))
        return pt_error_set(err, PT_EIO, "checkpoint directory '%s': not a directory", dir);
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Save                                                                     */
/* ------------------------------------------------------------------------ */

/* Removes what a writer of step `step` no longer wants: checkpoints newer
 * than it (left by an earlier run in the same directory; resuming would
 * otherwise jump past the progress just saved), all but the newest `keep`
 * of the others, and temporary files a killed writer left behind. Failures
 * to delete are logged, not returned: the checkpoint itself is safe. */
static pt_status prune(const char *dir, int keep, long long step, pt_error *err) {
    ckpt_entry *v, *t;
    size_t n, nt;
    PT_RETURN_NOT_OK(list_ckpts(dir, &v, &n, NULL, &t, &nt, err));
    int kept = 0;
    for (size_t i = 0; i < n + nt; i++) {
        bool is_tmp = i >= n;
        const ckpt_entry *e = is_tmp ? &t[i - n] : &v[i];
        bool drop;
        if (is_tmp)
            drop = true;
        else if (e->step > step)
            drop = true;
        else
            drop = keep > 0 && kept++ >= keep;
        if (!drop) continue;
        char *path = join_path(dir, e->name);
        if (path) {
            if (unlink(path) != 0 && errno != ENOENT)
                pt_log(PT_LOG_WARN, "checkpoint '%s': cannot delete: %s", path,
                       strerror(errno));
            pt_free(path);
        }
    }
    free_entries(v, n);
    free_entries(t, nt);
    return PT_OK;
}

pt_status pt__ckpt_save(const char *dir, int keep, const pt__ckpt *c, pt_error *err) {
    if (!dir || !*dir) return pt_error_set(err, PT_EINVAL, "checkpoint: dir is empty");
    if (!c) return pt_error_set(err, PT_EINVAL, "checkpoint: c is NULL");
    if (c->step < 0)
        return pt_error_set(err, PT_EINVAL, "checkpoint: step must be >= 0 (got %lld)",
                            (long long)c->step);
    if (c->nparams < 0 || (c->nparams > 0 && !c->params))
        return pt_error_set(err, PT_EINVAL, "checkpoint: bad params (nparams %lld)",
                            (long long)c->nparams);
    if (c->nstate < 0 || (c->nstate > 0 && !c->state))
        return pt_error_set(err, PT_EINVAL, "checkpoint: bad state (nstate %lld)",
                            (long long)c->nstate);
    if ((uint64_t)c->nparams + (uint64_t)c->nstate > (SIZE_MAX - CKPT_HEADER_BYTES - 4) / 8)
        return pt_error_set(err, PT_EINVAL, "checkpoint: too many values");
    PT_RETURN_NOT_OK(make_dirs(dir, err));

    pt__mlbuf b = {0};
    pt__mlbuf_put(&b, CKPT_MAGIC, 4);
    pt__mlbuf_u32(&b, CKPT_VERSION);
    pt__mlbuf_u64(&b, c->tag);
    pt__mlbuf_i64(&b, c->step);
    pt__mlbuf_i64(&b, c->epoch);
    for (int i = 0; i < 4; i++) pt__mlbuf_u64(&b, c->rng[i]);
    pt__mlbuf_i64(&b, c->nparams);
    pt__mlbuf_i64(&b, c->nstate);
    pt__mlbuf_f64s(&b, c->params, c->nparams);
    pt__mlbuf_f64s(&b, c->state, c->nstate);
    if (!b.oom) pt__mlbuf_u32(&b, pt_crc32c(0, b.p, b.len));
    if (b.oom) {
        pt__mlbuf_free(&b);
        return pt_error_set(err, PT_ENOMEM, "checkpoint of step %lld: out of memory",
                            (long long)c->step);
    }

    size_t dl = strlen(dir);
    char *path = pt_malloc(dl + 64), *tmp = pt_malloc(dl + 64);
    pt_status st = PT_OK;
    if (!path || !tmp) {
        st = pt_error_set(err, PT_ENOMEM, "checkpoint of step %lld: out of memory",
                          (long long)c->step);
    } else {
        snprintf(path, dl + 64, "%s/" CKPT_PREFIX "%012lld" CKPT_SUFFIX, dir,
                 (long long)c->step);
        snprintf(tmp, dl + 64, "%s/.ckpt-%lld.tmp", dir, (long long)c->step);
        st = pt__ml_write_atomic("checkpoint", path, tmp, b.p, b.len, err);
    }
    pt__mlbuf_free(&b);
    pt_free(path);
    pt_free(tmp);
    if (st != PT_OK) return st;
    return prune(dir, keep, (long long)c->step, err);
}

/* ------------------------------------------------------------------------ */
/* Load                                                                     */
/* ------------------------------------------------------------------------ */

void pt__ckpt_clear(pt__ckpt *c) {
    if (!c) return;
    pt_free(c->params);
    pt_free(c->state);
    memset(c, 0, sizeof *c);
}

/* Checks and decodes one file. Returns PT_OK with *why NULL on success,
 * PT_OK with *why set when the file is unusable (the caller skips it), or
 * an error that should stop the search (out of memory). */
static pt_status load_one(const char *path, long long name_step, uint64_t tag, pt__ckpt *out,
                          const char **why, char *whybuf, size_t whycap, pt_error *err) {
    *why = NULL;
    unsigned char *data;
    size_t len;
    pt_error e2;
    pt_status st = pt__ml_read_file("checkpoint", path, &data, &len, &e2);
    if (st == PT_ENOMEM) {
        if (err) *err = e2;
        return st;
    }
    if (st != PT_OK) {
        snprintf(whybuf, whycap, "%s", e2.msg);
        *why = whybuf;
        return PT_OK;
    }
    pt__mlreader r = {data, len, 0};
    uint32_t version = 0, crc_file = 0;
    pt__ckpt c = {0};
    if (len < CKPT_HEADER_BYTES + 4) {
        snprintf(whybuf, whycap, "truncated: %zu bytes, a checkpoint has at least %u", len,
                 CKPT_HEADER_BYTES + 4);
        *why = whybuf;
        goto done;
    }
    if (memcmp(data, CKPT_MAGIC, 4) != 0) {
        *why = "bad magic (not a partita checkpoint)";
        goto done;
    }
    r.pos = 4;
    (void)pt__mlread_u32(&r, &version);
    if (version != CKPT_VERSION) {
        snprintf(whybuf, whycap, "unsupported version %u (this build reads %u)", version,
                 CKPT_VERSION);
        *why = whybuf;
        goto done;
    }
    (void)pt__mlread_u64(&r, &c.tag);
    (void)pt__mlread_i64(&r, &c.step);
    (void)pt__mlread_i64(&r, &c.epoch);
    for (int i = 0; i < 4; i++) (void)pt__mlread_u64(&r, &c.rng[i]);
    (void)pt__mlread_i64(&r, &c.nparams);
    (void)pt__mlread_i64(&r, &c.nstate);
    uint64_t avail = (len - CKPT_HEADER_BYTES - 4) / 8;
    if (c.nparams < 0 || c.nstate < 0 || (uint64_t)c.nparams > avail ||
        (uint64_t)c.nstate > avail - (uint64_t)c.nparams ||
        CKPT_HEADER_BYTES + 4 + 8 * ((uint64_t)c.nparams + (uint64_t)c.nstate) != len) {
        snprintf(whybuf, whycap,
                 "size mismatch: %zu bytes for %lld parameters and %lld state values "
                 "(truncated or damaged)",
                 len, (long long)c.nparams, (long long)c.nstate);
        *why = whybuf;
        goto done;
    }
    {
        pt__mlreader cr = {data, len, len - 4};
        (void)pt__mlread_u32(&cr, &crc_file);
        uint32_t crc = pt_crc32c(0, data, len - 4);
        if (crc != crc_file) {
            snprintf(whybuf, whycap, "CRC mismatch (stored %08x, computed %08x)", crc_file,
                     crc);
            *why = whybuf;
            goto done;
        }
    }
    if (c.step != name_step) {
        snprintf(whybuf, whycap, "step %lld in the header, %lld in the file name",
                 (long long)c.step, name_step);
        *why = whybuf;
        goto done;
    }
    if (c.tag != tag) {
        snprintf(whybuf, whycap,
                 "written by another run configuration (tag %016" PRIx64 ", expected %016" PRIx64
                 ")",
                 c.tag, tag);
        *why = whybuf;
        goto done;
    }
    c.params = pt_malloc((size_t)(c.nparams ? c.nparams : 1) * sizeof(double));
    c.state = pt_malloc((size_t)(c.nstate ? c.nstate : 1) * sizeof(double));
    if (!c.params || !c.state) {
        pt__ckpt_clear(&c);
        pt_free(data);
        return pt_error_set(err, PT_ENOMEM, "checkpoint '%s': out of memory", path);
    }
    (void)pt__mlread_f64s(&r, c.params, c.nparams);
    (void)pt__mlread_f64s(&r, c.state, c.nstate);
    *out = c;
done:
    pt_free(data);
    return PT_OK;
}

pt_status pt__ckpt_load_latest(const char *dir, uint64_t tag, pt__ckpt *out, bool *found,
                               pt_error *err) {
    if (found) *found = false;
    if (out) memset(out, 0, sizeof *out);
    if (!dir || !*dir) return pt_error_set(err, PT_EINVAL, "checkpoint: dir is empty");
    if (!out || !found) return pt_error_set(err, PT_EINVAL, "checkpoint: out/found is NULL");
    ckpt_entry *v;
    size_t n;
    bool missing;
    PT_RETURN_NOT_OK(list_ckpts(dir, &v, &n, &missing, NULL, NULL, err));
    if (missing) return PT_OK;
    pt_status st = PT_OK;
    char whybuf[PT_ERROR_MSG_SIZE];
    for (size_t i = 0; i < n && !*found; i++) {
        char *path = join_path(dir, v[i].name);
        if (!path) {
            st = pt_error_set(err, PT_ENOMEM, "checkpoint directory '%s': out of memory", dir);
            break;
        }
        const char *why;
        st = load_one(path, v[i].step, tag, out, &why, whybuf, sizeof whybuf, err);
        if (st == PT_OK && why)
            pt_log(PT_LOG_WARN, "checkpoint '%s' skipped: %s", path, why);
        else if (st == PT_OK)
            *found = true;
        pt_free(path);
        if (st != PT_OK) break;
    }
    free_entries(v, n);
    return st;
}
