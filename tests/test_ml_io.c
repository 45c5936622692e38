/*
 * test_ml_io.c - checkpoints (ml_ckpt.c) and model files (ml_model_io.c):
 * round trips compared bit for bit, the on-disk layout checked by hand
 * (magic, version, CRC32C over the rest), and every kind of damage -
 * truncation, flipped bytes, wrong magic, version or tag, inconsistent
 * shapes - detected with a message naming the file and the fault.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ml/ml_internal.h"
#include "partita/io.h"
#include "pt_test.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static void tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s", pt_test_tmp(name));
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static unsigned char *slurp(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)*len + 1);
    if (fread(b, 1, (size_t)*len, f) != (size_t)*len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static int spit(const char *path, const unsigned char *b, long len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(b, 1, (size_t)len, f);
    fclose(f);
    return w == (size_t)len ? 0 : -1;
}

static void flip_byte(const char *path, long off) {
    long len;
    unsigned char *b = slurp(path, &len);
    if (!b) return;
    b[off] ^= 0x10;
    (void)spit(path, b, len);
    free(b);
}

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void wr64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
/* Recomputes the trailing CRC so that a deliberately edited field reaches
 * the checks behind the CRC. */
static void fix_crc(unsigned char *b, long len) { wr32(b + len - 4, pt_crc32c(0, b, (size_t)len - 4)); }

/* Names in a directory that match a prefix, sorted, joined by spaces. */
static void list_dir(const char *dir, char *out, size_t cap) {
    char names[64][64];
    int n = 0;
    DIR *d = opendir(dir);
    out[0] = '\0';
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 64) {
        if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || strcmp(de->d_name, "..") == 0))
            continue;
        snprintf(names[n++], 64, "%.63s", de->d_name);
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char t[64];
            memcpy(t, names[j], 64);
            memcpy(names[j], names[j - 1], 64);
            memcpy(names[j - 1], t, 64);
        }
    for (int i = 0; i < n; i++) {
        strncat(out, names[i], cap - strlen(out) - 1);
        if (i + 1 < n) strncat(out, " ", cap - strlen(out) - 1);
    }
}

/* Captures what pt_log writes to stderr between begin and end. */
static int saved_stderr = -1;
static char cap_path[512];
static void capture_begin(void) {
    tmp_path(cap_path, sizeof cap_path, "stderr.txt");
    fflush(stderr);
    saved_stderr = dup(2);
    int fd = open(cap_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
}
static char *capture_end(void) {
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    long len;
    char *b = (char *)slurp(cap_path, &len);
    if (b) b[len] = '\0';
    return b;
}

/* A checkpoint with values derived from `seed`, including awkward doubles
 * (-0.0, subnormals, infinities) that must survive bit for bit. */
static double *make_values(int64_t n, uint64_t seed) {
    double *v = pt_malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        uint64_t h = pt_splitmix64(seed * 1000003u + (uint64_t)i);
        v[i] = ((double)(h >> 11) / 9007199254740992.0 - 0.5) * 1e3;
    }
    if (n > 3) {
        v[0] = -0.0;
        v[1] = 4.9e-324;
        v[2] = -INFINITY;
        v[3] = 1.0 / 3.0;
    }
    return v;
}

static pt__ckpt make_ckpt(uint64_t tag, int64_t step, int64_t np, int64_t ns) {
    pt__ckpt c;
    memset(&c, 0, sizeof c);
    c.tag = tag;
    c.step = step;
    c.epoch = step / 3;
    for (int i = 0; i < 4; i++) c.rng[i] = pt_splitmix64((uint64_t)step * 4 + (uint64_t)i);
    c.nparams = np;
    c.params = make_values(np, (uint64_t)step);
    c.nstate = ns;
    c.state = make_values(ns, (uint64_t)step + 777);
    return c;
}

static int ckpt_equal(const pt__ckpt *a, const pt__ckpt *b) {
    if (a->tag != b->tag || a->step != b->step || a->epoch != b->epoch) return 0;
    if (memcmp(a->rng, b->rng, sizeof a->rng) != 0) return 0;
    if (a->nparams != b->nparams || a->nstate != b->nstate) return 0;
    if (a->nparams && memcmp(a->params, b->params, (size_t)a->nparams * 8) != 0) return 0;
    if (a->nstate && memcmp(a->state, b->state, (size_t)a->nstate * 8) != 0) return 0;
    return 1;
}

/* Saves checkpoints of steps first..last (every `by`) with tag 7. */
static pt_status save_steps(const char *dir, int keep, int first, int last, int by) {
    for (int s = first; s <= last; s += by) {
        pt__ckpt c = make_ckpt(7, s, 10, 5);
        pt_status st = pt__ckpt_save(dir, keep, &c, NULL);
        pt__ckpt_clear(&c);
        if (st != PT_OK) return st;
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Checkpoints                                                              */
/* ------------------------------------------------------------------------ */

TEST(ckpt_round_trip) {
    char dir[512], listing[1024];
    tmp_path(dir, sizeof dir, "rt/a/b"); /* created mkdir -p style */
    pt_error err;
    pt__ckpt c = make_ckpt(0xfeedbeefcafe1234ull, 5, 37, 101);
    CHECK_OK(pt__ckpt_save(dir, 3, &c, &err), &err);
    list_dir(dir, listing, sizeof listing);
    CHECK_STR(listing, "ckpt-000000000005.ptc");
    pt__ckpt got;
    bool found = false;
    CHECK_OK(pt__ckpt_load_latest(dir, c.tag, &got, &found, &err), &err);
    CHECK(found);
    CHECK(ckpt_equal(&c, &got));
    CHECK(signbit(got.params[0]) && got.params[0] == 0.0);
    pt__ckpt_clear(&got);
    CHECK(got.params == NULL && got.nparams == 0);
    pt__ckpt_clear(&c);
}

TEST(ckpt_layout_by_hand) {
    char dir[512], path[600];
    tmp_path(dir, sizeof dir, "layout");
    pt_error err;
    pt__ckpt c = make_ckpt(0x0102030405060708ull, 12, 3, 2);
    CHECK_OK(pt__ckpt_save(dir, 3, &c, &err), &err);
    snprintf(path, sizeof path, "%s/ckpt-000000000012.ptc", dir);
    long len;
    unsigned char *b = slurp(path, &len);
    CHECK(b != NULL);
    /* magic, version, 8 header words, 5 doubles, CRC */
    CHECK_EQ_I(len, 4 + 4 + 8 * 9 + 8 * 5 + 4);
    CHECK(memcmp(b, "PTCK", 4) == 0);
    CHECK_EQ_I(rd32(b + 4), 1);
    CHECK_EQ_I(b[8], 0x08); /* tag, little-endian */
    CHECK_EQ_I(b[15], 0x01);
    CHECK_EQ_I(b[16], 12); /* step */
    double p0;
    memcpy(&p0, b + 80, 8);
    CHECK(memcmp(&p0, &c.params[0], 8) == 0);
    CHECK_EQ_I(rd32(b + len - 4), pt_crc32c(0, b, (size_t)len - 4));
    free(b);
    pt__ckpt_clear(&c);
}

TEST(ckpt_missing_dir_is_not_an_error) {
    char dir[512];
    tmp_path(dir, sizeof dir, "never-created");
    pt__ckpt got;
    bool found = true;
    pt_error err;
    CHECK_OK(pt__ckpt_load_latest(dir, 7, &got, &found, &err), &err);
    CHECK(!found);
    CHECK(got.params == NULL);
}

TEST(ckpt_empty_arrays) {
    char dir[512];
    tmp_path(dir, sizeof dir, "empty");
    pt_error err;
    pt__ckpt c;
    memset(&c, 0, sizeof c);
    c.tag = 3;
    c.step = 0;
    CHECK_OK(pt__ckpt_save(dir, 1, &c, &err), &err);
    pt__ckpt got;
    bool found;
    CHECK_OK(pt__ckpt_load_latest(dir, 3, &got, &found, &err), &err);
    CHECK(found);
    CHECK(ckpt_equal(&c, &got));
    pt__ckpt_clear(&got);
}

TEST(ckpt_keep_last_three_and_no_tmp) {
    char dir[512], listing[1024];
    tmp_path(dir, sizeof dir, "keep");
    CHECK_OK(save_steps(dir, 3, 1, 8, 1), NULL);
    list_dir(dir, listing, sizeof listing);
    /* list_dir shows hidden files too: no ".ckpt-*.tmp" may remain */
    CHECK_STR(listing, "ckpt-000000000006.ptc ckpt-000000000007.ptc ckpt-000000000008.ptc");
    pt__ckpt got;
    bool found;
    pt_error err;
    CHECK_OK(pt__ckpt_load_latest(dir, 7, &got, &found, &err), &err);
    CHECK(found);
    CHECK_EQ_I(got.step, 8);
    pt__ckpt_clear(&got);
    /* keep <= 0 keeps everything */
    tmp_path(dir, sizeof dir, "keepall");
    CHECK_OK(save_steps(dir, 0, 1, 4, 1), NULL);
    list_dir(dir, listing, sizeof listing);
    CHECK_STR(listing, "ckpt-000000000001.ptc ckpt-000000000002.ptc ckpt-000000000003.ptc "
                       "ckpt-000000000004.ptc");
}

TEST(ckpt_save_cleans_stale_files) {
    char dir[512], listing[1024], p[700];
    tmp_path(dir, sizeof dir, "stale");
    /* An earlier run reached step 50; a killed writer left a temporary. */
    CHECK_OK(save_steps(dir, 3, 40, 50, 10), NULL);
    snprintf(p, sizeof p, "%s/.ckpt-60.tmp", dir);
    CHECK(spit(p, (const unsigned char *)"half", 4) == 0);
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    CHECK(spit(p, (const unsigned char *)"mine", 4) == 0);
    /* A fresh run writes step 5: newer leftovers must not shadow it. */
    CHECK_OK(save_steps(dir, 3, 5, 5, 1), NULL);
    list_dir(dir, listing, sizeof listing);
    CHECK_STR(listing, "ckpt-000000000005.ptc notes.txt");
}

TEST(ckpt_truncated_skipped) {
    char dir[512], path[700];
    tmp_path(dir, sizeof dir, "trunc");
    CHECK_OK(save_steps(dir, 5, 1, 3, 1), NULL);
    snprintf(path, sizeof path, "%s/ckpt-000000000003.ptc", dir);
    long len = file_size(path);
    CHECK(truncate(path, len - 9) == 0);
    pt__ckpt got;
    bool found;
    pt_error err;
    capture_begin();
    pt_status st = pt__ckpt_load_latest(dir, 7, &got, &found, &err);
    char *log = capture_end();
    CHECK_OK(st, &err);
    CHECK(found);
    CHECK_EQ_I(got.step, 2);
    pt__ckpt ref = make_ckpt(7, 2, 10, 5);
    CHECK(ckpt_equal(&ref, &got));
    pt__ckpt_clear(&ref);
    pt__ckpt_clear(&got);
    CHECK(log != NULL);
    CHECK_CONTAINS(log, path);
    CHECK_CONTAINS(log, "skipped");
    CHECK_CONTAINS(log, "truncated");
    free(log);
    /* Shorter than a header */
    CHECK(truncate(path, 20) == 0);
    capture_begin();
    st = pt__ckpt_load_latest(dir, 7, &got, &found, &err);
    log = capture_end();
    CHECK_OK(st, &err);
    CHECK(found && got.step == 2);
    pt__ckpt_clear(&got);
    CHECK_CONTAINS(log, "truncated: 20 bytes");
    free(log);
}

TEST(ckpt_flipped_byte_skipped) {
    char dir[512], path[700];
    tmp_path(dir, sizeof dir, "flip");
    CHECK_OK(save_steps(dir, 5, 1, 3, 1), NULL);
    snprintf(path, sizeof path, "%s/ckpt-000000000003.ptc", dir);
    flip_byte(path, 100); /* inside params */
    pt__ckpt got;
    bool found;
    pt_error err;
    capture_begin();
    pt_status st = pt__ckpt_load_latest(dir, 7, &got, &found, &err);
    char *log = capture_end();
    CHECK_OK(st, &err);
    CHECK(found);
    CHECK_EQ_I(got.step, 2);
    pt__ckpt_clear(&got);
    CHECK_CONTAINS(log, path);
    CHECK_CONTAINS(log, "CRC mismatch");
    free(log);
    /* Damage in the header's size fields and the magic: also skipped. */
    snprintf(path, sizeof path, "%s/ckpt-000000000002.ptc", dir);
    flip_byte(path, 0);
    capture_begin();
    st = pt__ckpt_load_latest(dir, 7, &got, &found, &err);
    log = capture_end();
    CHECK_OK(st, &err);
    CHECK(found && got.step == 1);
    pt__ckpt_clear(&got);
    CHECK_CONTAINS(log, "bad magic");
    free(log);
}

TEST(ckpt_wrong_version_and_step_skipped) {
    char dir[512], path[700];
    tmp_path(dir, sizeof dir, "version");
    CHECK_OK(save_steps(dir, 5, 1, 3, 1), NULL);
    snprintf(path, sizeof path, "%s/ckpt-000000000003.ptc", dir);
    long len;
    unsigned char *b = slurp(path, &len);
    CHECK(b != NULL);
    wr32(b + 4, 2);
    fix_crc(b, len);
    CHECK(spit(path, b, len) == 0);
    /* A valid file renamed to another step is not trusted either. */
    char other[700];
    snprintf(other, sizeof other, "%s/ckpt-000000000002.ptc", dir);
    snprintf(path, sizeof path, "%s/ckpt-000000000009.ptc", dir);
    CHECK(rename(other, path) == 0);
    free(b);
    pt__ckpt got;
    bool found;
    pt_error err;
    capture_begin();
    pt_status st = pt__ckpt_load_latest(dir, 7, &got, &found, &err);
    char *log = capture_end();
    CHECK_OK(st, &err);
    CHECK(found);
    CHECK_EQ_I(got.step, 1);
    pt__ckpt_clear(&got);
    CHECK_CONTAINS(log, "unsupported version 2");
    CHECK_CONTAINS(log, "step 2 in the header, 9 in the file name");
    free(log);
}

TEST(ckpt_wrong_tag_skipped) {
    char dir[512];
    tmp_path(dir, sizeof dir, "tag");
    CHECK_OK(save_steps(dir, 5, 1, 2, 1), NULL);
    pt__ckpt c = make_ckpt(99, 3, 10, 5);
    pt_error err;
    CHECK_OK(pt__ckpt_save(dir, 5, &c, &err), &err);
    pt__ckpt_clear(&c);
    pt__ckpt got;
    bool found;
    capture_begin();
    pt_status st = pt__ckpt_load_latest(dir, 7, &got, &found, &err);
    char *log = capture_end();
    CHECK_OK(st, &err);
    CHECK(found);
    CHECK_EQ_I(got.step, 2);
    CHECK_EQ_I(got.tag, 7);
    pt__ckpt_clear(&got);
    CHECK_CONTAINS(log, "ckpt-000000000003.ptc");
    CHECK_CONTAINS(log, "another run configuration");
    free(log);
    /* The other run finds its own. */
    CHECK_OK(pt__ckpt_load_latest(dir, 99, &got, &found, &err), &err);
    CHECK(found && got.step == 3);
    pt__ckpt_clear(&got);
    /* No checkpoint with a matching tag at all. */
    capture_begin();
    st = pt__ckpt_load_latest(dir, 1234, &got, &found, &err);
    log = capture_end();
    free(log);
    CHECK_OK(st, &err);
    CHECK(!found);
}

TEST(ckpt_bad_arguments) {
    pt_error err;
    pt__ckpt c;
    memset(&c, 0, sizeof c);
    CHECK(pt__ckpt_save(NULL, 3, &c, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "dir");
    c.step = -1;
    CHECK(pt__ckpt_save(pt_test_tmp("neg"), 3, &c, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "step must be >= 0");
    c.step = 1;
    c.nparams = 4; /* params NULL */
    CHECK(pt__ckpt_save(pt_test_tmp("neg"), 3, &c, &err) == PT_EINVAL);
    CHECK_CONTAINS(err.msg, "params");
    /* dir that is a file */
    const char *f = pt_test_write("plainfile", "x");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sub", f);
    c.nparams = 0;
    CHECK(pt__ckpt_save(dir, 3, &c, &err) == PT_EIO);
    CHECK_CONTAINS(err.msg, dir);
    bool found;
    pt__ckpt got;
    CHECK(pt__ckpt_load_latest(f, 1, &got, &found, &err) == PT_EIO);
    CHECK_CONTAINS(err.msg, f);
    CHECK(!found);
}

/* ------------------------------------------------------------------------ */
/* Model files                                                              */
/* ------------------------------------------------------------------------ */

static pt_model *make_model(pt_model_kind kind, int variant) {
    pt_model *m = NULL;
    int64_t nf = 4, np = 0, rows = 1;
    int nc = 1;
    switch (kind) {
    case PT_MODEL_LINREG: np = nf + 1; break;
    case PT_MODEL_LOGREG:
        nc = variant ? 3 : 2;
        rows = variant ? 3 : 1;
        np = rows * (nf + 1);
        break;
    case PT_MODEL_KMEANS:
        nc = 3;
        rows = 3;
        np = 3 * nf;
        break;
    case PT_MODEL_MLP:
        nc = 3;
        np = 5 * 4 + 5 + 2 * 5 + 2 + 3 * 2 + 3; /* 4 -> 5 -> 2 -> 3 */
        break;
    }
    if (pt__model_alloc(kind, np, &m, NULL) != PT_OK) return NULL;
    m->nfeatures = nf;
    m->nclasses = nc;
    m->rows = rows;
    m->multinomial = kind == PT_MODEL_LOGREG && variant;
    m->threshold = kind == PT_MODEL_LOGREG ? 0.3 : 0.5;
    m->iterations = 17 + variant;
    m->loss = 0.1234567890123;
    if (kind == PT_MODEL_MLP) {
        m->activation = PT_ACT_TANH;
        m->nlayers = 3;
        m->sizes[0] = 4;
        m->sizes[1] = 5;
        m->sizes[2] = 2;
        m->sizes[3] = 3;
    }
    double *v = make_values(np, (uint64_t)kind * 10 + (uint64_t)variant);
    memcpy(m->params, v, (size_t)np * 8);
    pt_free(v);
    return m;
}

static int model_equal(const pt_model *a, const pt_model *b) {
    if (a->kind != b->kind || a->nfeatures != b->nfeatures || a->nclasses != b->nclasses ||
        a->rows != b->rows || a->multinomial != b->multinomial ||
        memcmp(&a->threshold, &b->threshold, 8) != 0 || a->activation != b->activation ||
        a->nlayers != b->nlayers || a->iterations != b->iterations ||
        memcmp(&a->loss, &b->loss, 8) != 0 || a->nparams != b->nparams)
        return 0;
    for (int l = 0; l <= a->nlayers; l++)
        if (a->sizes[l] != b->sizes[l]) return 0;
    return memcmp(a->params, b->params, (size_t)a->nparams * 8) == 0;
}

TEST(model_round_trip_every_kind) {
    struct {
        pt_model_kind kind;
        int variant;
    } cases[] = {{PT_MODEL_LINREG, 0},
                 {PT_MODEL_LOGREG, 0},
                 {PT_MODEL_LOGREG, 1},
                 {PT_MODEL_KMEANS, 0},
                 {PT_MODEL_MLP, 0}};
    char path[512], listing[1024];
    tmp_path(path, sizeof path, "models");
    CHECK(mkdir(path, 0755) == 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pt_model *m = make_model(cases[i].kind, cases[i].variant);
        CHECK(m != NULL);
        char file[600];
        snprintf(file, sizeof file, "%s/m%zu.ptm", path, i);
        pt_error err;
        pt_status st = pt_model_save(m, file, &err);
        if (st != PT_OK) pt_model_free(m);
        CHECK_OK(st, &err);
        pt_model *got = NULL;
        st = pt_model_load(file, &got, &err);
        if (st != PT_OK) pt_model_free(m);
        CHECK_OK(st, &err);
        int eq = model_equal(m, got);
        /* The public accessors see the same thing. */
        int acc = pt_model_kind_of(got) == cases[i].kind &&
                  pt_model_nfeatures(got) == 4 && pt_model_iterations(got) == m->iterations;
        pt_model_free(m);
        pt_model_free(got);
        CHECK_MSG(eq, "case %zu: loaded model differs", i);
        CHECK(acc);
    }
    /* Saving twice to one path replaces it; no temporaries remain. */
    list_dir(path, listing, sizeof listing);
    CHECK_STR(listing, "m0.ptm m1.ptm m2.ptm m3.ptm m4.ptm");
    pt_model *m = make_model(PT_MODEL_KMEANS, 0);
    char file[600];
    snprintf(file, sizeof file, "%s/m0.ptm", path);
    pt_error err;
    pt_status st = pt_model_save(m, file, &err);
    pt_model_free(m);
    CHECK_OK(st, &err);
    CHECK_OK(pt_model_load(file, &m, &err), &err);
    CHECK(pt_model_kind_of(m) == PT_MODEL_KMEANS);
    pt_model_free(m);
    list_dir(path, listing, sizeof listing);
    CHECK_STR(listing, "m0.ptm m1.ptm m2.ptm m3.ptm m4.ptm");
}

/* Writes the model of `kind` to name and returns the path (static slot). */
static const char *saved_model(const char *name, pt_model_kind kind, int variant) {
    static char path[8][512];
    static int slot;
    char *p = path[slot++ & 7];
    tmp_path(p, 512, name);
    pt_model *m = make_model(kind, variant);
    pt_status st = pt_model_save(m, p, NULL);
    pt_model_free(m);
    return st == PT_OK ? p : NULL;
}

TEST(model_layout_by_hand) {
    const char *p = saved_model("layout.ptm", PT_MODEL_LOGREG, 1);
    CHECK(p != NULL);
    long len;
    unsigned char *b = slurp(p, &len);
    CHECK(b != NULL);
    /* magic version kind flags | nf nc rows thr | act nlayers sizes[1] |
     * iterations loss nparams | params | crc */
    long header = 4 + 4 + 4 + 4 + 8 * 4 + 4 + 4 + 8 + 8 * 3;
    CHECK_EQ_I(len, header + 15 * 8 + 4);
    CHECK(memcmp(b, "PTML", 4) == 0);
    CHECK_EQ_I(rd32(b + 4), 1);
    CHECK_EQ_I(rd32(b + 8), PT_MODEL_LOGREG);
    CHECK_EQ_I(rd32(b + 12), 1); /* multinomial */
    CHECK_EQ_I(b[16], 4);        /* nfeatures */
    CHECK_EQ_I(b[24], 3);        /* nclasses */
    CHECK_EQ_I(rd32(b + len - 4), pt_crc32c(0, b, (size_t)len - 4));
    free(b);
}

/* Loads p expecting failure `code` with a message containing p and what. */
static int load_fails(const char *p, pt_status code, const char *what, char *msg, size_t cap) {
    pt_model *m = (pt_model *)1;
    pt_error err;
    pt_status st = pt_model_load(p, &m, &err);
    snprintf(msg, cap, "%s -> %s", err.msg, pt_status_name(st));
    if (st == PT_OK) pt_model_free(m);
    return st == code && m == NULL && strstr(err.msg, p) && strstr(err.msg, what);
}

TEST(model_load_rejects_damage) {
    char msg[1200];
    long len;
    /* flipped byte in the parameters */
    const char *p = saved_model("flip.ptm", PT_MODEL_MLP, 0);
    CHECK(p != NULL);
    flip_byte(p, file_size(p) - 30);
    CHECK_MSG(load_fails(p, PT_ECORRUPT, "CRC mismatch", msg, sizeof msg), "%s", msg);
    /* truncated: inside the parameters, inside the header, empty */
    p = saved_model("trunc.ptm", PT_MODEL_LINREG, 0);
    CHECK(truncate(p, file_size(p) - 5) == 0);
    CHECK_MSG(load_fails(p, PT_ECORRUPT, "truncated", msg, sizeof msg), "%s", msg);
    CHECK(truncate(p, 30) == 0);
    CHECK_MSG(load_fails(p, PT_ECORRUPT, "truncated (30 bytes)", msg, sizeof msg), "%s", msg);
    CHECK(truncate(p, 0) == 0);
    CHECK_MSG(load_fails(p, PT_ECORRUPT, "bad magic", msg, sizeof msg), "%s", msg);
    /* trailing garbage */
    p = saved_model("trail.ptm", PT_MODEL_KMEANS, 0);
    unsigned char *b = slurp(p, &len);
    CHECK(b != NULL);
    b = realloc(b, (size_t)len + 3);
    memset(b + len, 'x', 3);
    CHECK(spit(p, b, len + 3) == 0);
    free(b);
    CHECK_MSG(load_fails(p, PT_ECORRUPT, "3 bytes of trailing data", msg, sizeof msg), "%s", msg);
    /* wrong version and magic */
    p = saved_model("version.ptm", PT_MODEL_LOGREG, 0);
    b = slurp(p, &len);
    wr32(b + 4, 2);
    fix_crc(b, len);
    CHECK(spit(p, b, len) == 0);
    CHECK_MSG(load_fails(p, PT_ECORRUPT, "unsupported model file version 2", msg, sizeof msg),
              "%s", msg);
    memcpy(b, "PTCK", 4);
    CHECK(spit(p, b, len) == 0);
    free(b);
    CHECK_MSG(load_fails(p, PT_ECORRUPT, "not a partita model file", msg, sizeof msg), "%s", msg);
    /* missing file and a directory */
    char missing[512];
    tmp_path(missing, sizeof missing, "nope.ptm");
    CHECK_MSG(load_fails(missing, PT_ENOENT, "cannot open", msg, sizeof msg), "%s", msg);
    char dir[512];
    tmp_path(dir, sizeof dir, "adir.ptm");
    CHECK(mkdir(dir, 0755) == 0);
    CHECK_MSG(load_fails(dir, PT_EIO, "not a regular file", msg, sizeof msg), "%s", msg);
}

/* Edits one field of a saved model, keeps the CRC valid, expects `what`. */
static int edited_fails(const char *name, pt_model_kind kind, int variant, long off, int bytes,
                        uint64_t value, const char *what, char *msg, size_t cap) {
    const char *p = saved_model(name, kind, variant);
    if (!p) return 0;
    long len;
    unsigned char *b = slurp(p, &len);
    if (bytes == 4)
        wr32(b + off, (uint32_t)value);
    else
        wr64(b + off, value);
    fix_crc(b, len);
    int ok = spit(p, b, len) == 0;
    free(b);
    return ok && load_fails(p, PT_ECORRUPT, what, msg, cap);
}

TEST(model_load_rejects_inconsistent_fields) {
    char m[1200];
    /* offsets: kind 8, flags 12, nfeatures 16, nclasses 24, rows 32,
     * threshold 40, activation 48, nlayers 52, sizes 56.. */
    CHECK_MSG(edited_fails("k.ptm", PT_MODEL_LINREG, 0, 8, 4, 9, "unknown model kind 9", m,
                           sizeof m), "%s", m);
    CHECK_MSG(edited_fails("f.ptm", PT_MODEL_LINREG, 0, 12, 4, 6, "unknown flags", m, sizeof m),
              "%s", m);
    CHECK_MSG(edited_fails("nf.ptm", PT_MODEL_LOGREG, 0, 16, 8, 5,
                           "5 parameters where the shape needs 6", m, sizeof m), "%s", m);
    CHECK_MSG(edited_fails("nc.ptm", PT_MODEL_LOGREG, 1, 24, 8, 4,
                           "multinomial model with 3 coefficient rows (expected 4)", m,
                           sizeof m), "%s", m);
    CHECK_MSG(edited_fails("nc0.ptm", PT_MODEL_KMEANS, 0, 24, 8, 0, "nclasses 0 out of range",
                           m, sizeof m), "%s", m);
    CHECK_MSG(edited_fails("rows.ptm", PT_MODEL_KMEANS, 0, 32, 8, 2,
                           "k-means with 2 centre rows for k = 3", m, sizeof m), "%s", m);
    uint64_t nan_bits = 0x7ff8000000000000ull;
    CHECK_MSG(edited_fails("thr.ptm", PT_MODEL_LOGREG, 0, 40, 8, nan_bits, "threshold", m,
                           sizeof m), "%s", m);
    CHECK_MSG(edited_fails("act.ptm", PT_MODEL_MLP, 0, 48, 4, 7, "unknown activation 7", m,
                           sizeof m), "%s", m);
    CHECK_MSG(edited_fails("nl.ptm", PT_MODEL_MLP, 0, 52, 4, 99, "nlayers 99 out of range", m,
                           sizeof m), "%s", m);
    /* MLP hidden size 5 -> 6 changes the count 46 (5*4+5 + 2*5+2 + 3*2+3)
     * to 6*4+6 + 2*6+2 + 3*2+3 = 53 */
    CHECK_MSG(edited_fails("sz.ptm", PT_MODEL_MLP, 0, 56 + 8, 8, 6,
                           "46 parameters where the shape needs 53", m, sizeof m), "%s", m);
    CHECK_MSG(edited_fails("sz0.ptm", PT_MODEL_MLP, 0, 56, 8, 3,
                           "do not match 4 features and 3 classes", m, sizeof m), "%s", m);
    CHECK_MSG(edited_fails("szneg.ptm", PT_MODEL_MLP, 0, 56 + 16, 8, (uint64_t)-2,
                           "MLP layer 2 size -2 out of range", m, sizeof m), "%s", m);
}

TEST(model_save_rejects_bad_models) {
    pt_error err;
    char p[512];
    tmp_path(p, sizeof p, "bad.ptm");
    pt_model *m = make_model(PT_MODEL_LOGREG, 1);
    CHECK(m != NULL);
    m->rows = 2;
    pt_status st = pt_model_save(m, p, &err);
    m->rows = 3;
    int ok = st == PT_EINVAL && strstr(err.msg, p) && strstr(err.msg, "coefficient rows");
    CHECK(file_size(p) < 0);
    /* a directory that does not exist */
    char q[600];
    snprintf(q, sizeof q, "%s/no/such/dir/m.ptm", pt_test_tmp(""));
    st = pt_model_save(m, q, &err);
    pt_model_free(m);
    CHECK(ok);
    CHECK(st == PT_EIO);
    CHECK_CONTAINS(err.msg, q);
    CHECK(pt_model_save(NULL, p, &err) == PT_EINVAL);
    CHECK(pt_model_load(p, NULL, &err) == PT_EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Trained models: a reloaded model predicts bitwise what the trained did   */
/* ------------------------------------------------------------------------ */

/* 120 rows, 3 features, 3 separable-ish classes around three centres. */
static pt_dataset *small_dataset(bool binary) {
    enum { N = 120, F = 3 };
    pt_dataset *d = pt_calloc(1, sizeof *d);
    d->nrows = d->nrows_global = N;
    d->nfeatures = F;
    d->x = pt_malloc(N * F * sizeof(double));
    d->y = pt_malloc(N * sizeof(double));
    d->row_id = pt_malloc(N * sizeof(int64_t));
    pt_rng r;
    pt_rng_seed(&r, 3);
    for (int i = 0; i < N; i++) {
        int c = i % 3;
        for (int j = 0; j < F; j++) d->x[i * F + j] = (j == c ? 2.0 : 0.0) + pt_rng_normal(&r);
        d->y[i] = binary ? (c == 0) : c;
        d->row_id[i] = i;
    }
    d->nclasses = binary ? 2 : 3;
    return d;
}

static int same_doubles(const double *a, const double *b, int64_t n) {
    if (!a || !b) return a == b;
    return memcmp(a, b, (size_t)n * sizeof(double)) == 0;
}

TEST(trained_models_predict_identically_after_reload) {
    struct {
        pt_model_kind kind;
        bool binary;
        int family;
    } cases[] = {{PT_MODEL_LINREG, false, 0},
                 {PT_MODEL_LOGREG, true, 0},
                 {PT_MODEL_LOGREG, false, 2},
                 {PT_MODEL_KMEANS, false, 0},
                 {PT_MODEL_MLP, false, 0}};
    int hidden[1] = {4};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pt_dataset *d = small_dataset(cases[c].binary);
        pt_train_opts o;
        pt_train_opts_init(&o, cases[c].kind);
        o.max_iter = 5;
        o.family = cases[c].family;
        o.k = 3;
        o.nhidden = 1;
        o.hidden = hidden;
        o.batch_size = 32;
        pt_model *m = NULL, *back = NULL;
        pt_error err;
        pt_predictions a, b;
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        char path[512];
        tmp_path(path, sizeof path, "trained.ptm");
        pt_status st = pt_train(&o, d, &m, &err);
        if (st == PT_OK) st = pt_model_save(m, path, &err);
        if (st == PT_OK) st = pt_model_load(path, &back, &err);
        if (st == PT_OK) st = pt_model_predict(m, NULL, d, &a, &err);
        if (st == PT_OK) st = pt_model_predict(back, NULL, d, &b, &err);
        int same = st == PT_OK && a.n == b.n && a.ncols == b.ncols && a.n == d->nrows &&
                   same_doubles(a.label, b.label, a.n) &&
                   same_doubles(a.prob, b.prob, a.n * a.ncols) &&
                   same_doubles(a.raw, b.raw, a.n * a.ncols) && model_equal(m, back);
        pt_predictions_free(&a);
        pt_predictions_free(&b);
        pt_model_free(m);
        pt_model_free(back);
        pt_dataset_free(d);
        CHECK_MSG(st == PT_OK, "case %zu: %s: %s", c, pt_status_name(st), err.msg);
        CHECK_MSG(same, "case %zu: predictions differ after reload", c);
    }
}

/* Every allocation failure surfaces as PT_ENOMEM (never a crash or a
 * half-written file) and leaks nothing. */
TEST(out_of_memory_injected) {
    char dir[512], path[512];
    tmp_path(dir, sizeof dir, "oom");
    tmp_path(path, sizeof path, "oom.ptm");
    int64_t before = pt_alloc_bytes_in_use();
    pt_model *m = make_model(PT_MODEL_MLP, 0);
    pt__ckpt c = make_ckpt(5, 4, 20, 10);
    CHECK(m != NULL);
    int oks = 0, bad = 0;
    for (int n = 0; n < 40; n++) {
        pt_error err;
        pt_alloc_fail_after(n);
        pt_status s1 = pt_model_save(m, path, &err);
        pt_alloc_fail_after(-1);
        pt_model *back = NULL;
        pt_alloc_fail_after(n);
        pt_status s2 = s1 == PT_OK ? pt_model_load(path, &back, &err) : PT_ENOMEM;
        pt_alloc_fail_after(-1);
        pt_model_free(back);
        pt_alloc_fail_after(n);
        pt_status s3 = pt__ckpt_save(dir, 2, &c, &err);
        pt_alloc_fail_after(-1);
        pt__ckpt got;
        bool found = false;
        pt_alloc_fail_after(n);
        pt_status s4 = pt__ckpt_load_latest(dir, 5, &got, &found, &err);
        pt_alloc_fail_after(-1);
        if (s4 == PT_OK && found) pt__ckpt_clear(&got);
        if (n == 0) {
            /* saving allocates at once: the first failure must be seen */
            CHECK_MSG(s1 == PT_ENOMEM, "model save ignored an allocation failure: %s",
                      pt_status_name(s1));
            CHECK_MSG(s3 == PT_ENOMEM, "checkpoint save ignored an allocation failure: %s",
                      pt_status_name(s3));
        }
        pt_status all[4] = {s1, s2, s3, s4};
        for (int i = 0; i < 4; i++) bad += all[i] != PT_OK && all[i] != PT_ENOMEM;
        oks += s1 == PT_OK && s2 == PT_OK && s3 == PT_OK && s4 == PT_OK && found;
    }
    pt_model_free(m);
    pt__ckpt_clear(&c);
    CHECK_EQ_I(bad, 0);
    CHECK(oks > 0);
    CHECK_EQ_I(pt_alloc_bytes_in_use(), before);
}
