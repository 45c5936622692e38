/*
 * ml_model_io.c - model files: pt_model_save / pt_model_load. One versioned
 * file per model with a CRC32C over everything before it, written
 * atomically (temporary name + rename) so that a reader never sees half a
 * model. Parameters are stored as their exact bit patterns, so a reloaded
 * model predicts bitwise what the saved one did. Load checks every field
 * against the parameter layout of ml_internal.h before building the model,
 * so that a damaged or hand-edited file cannot produce a model whose
 * predict would read out of bounds.
 *
 * Layout (little-endian):
 *   "PTML" u32 version  u32 kind  u32 flags(bit 0: multinomial)
 *   i64 nfeatures  i64 nclasses  i64 rows  f64 threshold  u32 activation
 *   u32 nlayers  i64 sizes[nlayers + 1]  i64 iterations  f64 loss
 *   i64 nparams  f64 params[nparams]  u32 crc32c of every byte before it
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ml/ml_internal.h"
#include "ml/ml_persist.h"
#include "partita/io.h"

#define MODEL_MAGIC "PTML"
#define MODEL_VERSION 1u
/* A bound well above any real model that keeps products of sizes far from
 * int64 overflow. */
#define MODEL_MAX_DIM ((int64_t)1 << 31)

static bool mul_add(int64_t a, int64_t b, int64_t c, int64_t *out) {
    int64_t p;
    if (__builtin_mul_overflow(a, b, &p) || __builtin_add_overflow(p, c, &p)) return false;
    *out = p;
    return true;
}

/* The parameter count the layout of ml_internal.h gives for m's kind and
 * shape, or a description of what is inconsistent (written into buf). */
static const char *check_model(const pt_model *m, char *buf, size_t cap) {
    if ((int)m->kind < PT_MODEL_LINREG || (int)m->kind > PT_MODEL_MLP) {
        snprintf(buf, cap, "unknown model kind %d", (int)m->kind);
        return buf;
    }
    if (m->nfeatures < 1 || m->nfeatures > MODEL_MAX_DIM) {
        snprintf(buf, cap, "nfeatures %lld out of range", (long long)m->nfeatures);
        return buf;
    }
    if (m->nclasses < 1) {
        snprintf(buf, cap, "nclasses %d out of range", m->nclasses);
        return buf;
    }
    if (m->nlayers < 0 || m->nlayers > PT__ML_MAX_LAYERS) {
        snprintf(buf, cap, "nlayers %d out of range 0..%d", m->nlayers, PT__ML_MAX_LAYERS);
        return buf;
    }
    if ((int)m->activation < PT_ACT_RELU || (int)m->activation > PT_ACT_SIGMOID) {
        snprintf(buf, cap, "unknown activation %d", (int)m->activation);
        return buf;
    }
    if (!(m->threshold >= 0 && m->threshold <= 1)) {
        snprintf(buf, cap, "threshold %g outside [0, 1]", m->threshold);
        return buf;
    }
    int64_t want = -1;
    switch (m->kind) {
    case PT_MODEL_LINREG:
    case PT_MODEL_LOGREG: {
        int64_t rows_needed = m->multinomial ? m->nclasses : 1;
        if (m->kind == PT_MODEL_LINREG && (m->multinomial || m->nclasses != 1)) {
            snprintf(buf, cap, "linear regression with nclasses %d%s", m->nclasses,
                     m->multinomial ? " and multinomial set" : "");
            return buf;
        }
        if (m->rows != rows_needed) {
            snprintf(buf, cap, "%s model with %lld coefficient rows (expected %lld)",
                     m->multinomial ? "multinomial" : "single-row", (long long)m->rows,
                     (long long)rows_needed);
            return buf;
        }
        (void)mul_add(m->rows, m->nfeatures + 1, 0, &want);
        break;
    }
    case PT_MODEL_KMEANS:
        if (m->rows != m->nclasses) {
            snprintf(buf, cap, "k-means with %lld centre rows for k = %d", (long long)m->rows,
                     m->nclasses);
            return buf;
        }
        (void)mul_add(m->rows, m->nfeatures, 0, &want);
        break;
    case PT_MODEL_MLP:
        if (m->nlayers < 1) {
            snprintf(buf, cap, "MLP with %d layers", m->nlayers);
            return buf;
        }
        if (m->sizes[0] != m->nfeatures || m->sizes[m->nlayers] != m->nclasses) {
            snprintf(buf, cap,
                     "MLP layer sizes %lld..%lld do not match %lld features and %d classes",
                     (long long)m->sizes[0], (long long)m->sizes[m->nlayers],
                     (long long)m->nfeatures, m->nclasses);
            return buf;
        }
        want = 0;
        for (int l = 0; l < m->nlayers; l++) {
            if (m->sizes[l + 1] < 1 || m->sizes[l + 1] > MODEL_MAX_DIM) {
                snprintf(buf, cap, "MLP layer %d size %lld out of range", l + 1,
                         (long long)m->sizes[l + 1]);
                return buf;
            }
            int64_t layer;
            if (!mul_add(m->sizes[l + 1], m->sizes[l] + 1, 0, &layer) ||
                __builtin_add_overflow(want, layer, &want)) {
                snprintf(buf, cap, "MLP layer sizes overflow the parameter count");
                return buf;
            }
        }
        break;
    }
    if (m->nparams != want) {
        snprintf(buf, cap, "%lld parameters where the shape needs %lld", (long long)m->nparams,
                 (long long)want);
        return buf;
    }
    return NULL;
}

pt_status pt_model_save(const pt_model *m, const char *path, pt_error *err) {
    if (!m) return pt_error_set(err, PT_EINVAL, "model save: m is NULL");
    if (!path || !*path) return pt_error_set(err, PT_EINVAL, "model save: path is empty");
    char why[256];
    if (check_model(m, why, sizeof why))
        return pt_error_set(err, PT_EINVAL, "model save '%s': inconsistent model: %s", path,
                            why);
    if (m->nparams > 0 && !m->params)
        return pt_error_set(err, PT_EINVAL, "model save '%s': params is NULL", path);

    pt__mlbuf b = {0};
    pt__mlbuf_put(&b, MODEL_MAGIC, 4);
    pt__mlbuf_u32(&b, MODEL_VERSION);
    pt__mlbuf_u32(&b, (uint32_t)m->kind);
    pt__mlbuf_u32(&b, m->multinomial ? 1u : 0u);
    pt__mlbuf_i64(&b, m->nfeatures);
    pt__mlbuf_i64(&b, m->nclasses);
    pt__mlbuf_i64(&b, m->rows);
    pt__mlbuf_f64(&b, m->threshold);
    pt__mlbuf_u32(&b, (uint32_t)m->activation);
    pt__mlbuf_u32(&b, (uint32_t)m->nlayers);
    for (int l = 0; l <= m->nlayers; l++) pt__mlbuf_i64(&b, m->sizes[l]);
    pt__mlbuf_i64(&b, m->iterations);
    pt__mlbuf_f64(&b, m->loss);
    pt__mlbuf_i64(&b, m->nparams);
    pt__mlbuf_f64s(&b, m->params, m->nparams);
    if (!b.oom) pt__mlbuf_u32(&b, pt_crc32c(0, b.p, b.len));
    if (b.oom) {
        pt__mlbuf_free(&b);
        return pt_error_set(err, PT_ENOMEM, "model save '%s': out of memory", path);
    }
    size_t pl = strlen(path);
    char *tmp = pt_malloc(pl + 32);
    if (!tmp) {
        pt__mlbuf_free(&b);
        return pt_error_set(err, PT_ENOMEM, "model save '%s': out of memory", path);
    }
    /* The pid keeps two processes saving to one path from sharing a
     * temporary file; the last rename wins with a whole file either way. */
    snprintf(tmp, pl + 32, "%s.tmp-%ld", path, (long)getpid());
    pt_status st = pt__ml_write_atomic("model", path, tmp, b.p, b.len, err);
    pt_free(tmp);
    pt__mlbuf_free(&b);
    return st;
}

pt_status pt_model_load(const char *path, pt_model **out, pt_error *err) {
    if (!out) return pt_error_set(err, PT_EINVAL, "model load: out is NULL");
    *out = NULL;
    if (!path || !*path) return pt_error_set(err, PT_EINVAL, "model load: path is empty");
    unsigned char *data;
    size_t len;
    PT_RETURN_NOT_OK(pt__ml_read_file("model", path, &data, &len, err));

    pt_status st = PT_OK;
    pt__mlreader r = {data, len, 0};
    pt_model h;
    memset(&h, 0, sizeof h);
    uint32_t version, kind, flags, act, nlayers, crc_file;
    int64_t nclasses;
    char why[256];
#define CORRUPT(...)                                                                    \
    do {                                                                               \
        snprintf(why, sizeof why, __VA_ARGS__);                                        \
        st = pt_error_set(err, PT_ECORRUPT, "%s: %s", path, why);                      \
        goto done;                                                                     \
    } while (0)
#define TRUNCATED() CORRUPT("truncated (%zu bytes)", len)

    if (len < 8 || memcmp(data, MODEL_MAGIC, 4) != 0) {
        if (len >= 4 && memcmp(data, MODEL_MAGIC, 4) == 0) TRUNCATED();
        CORRUPT("not a partita model file (bad magic)");
    }
    r.pos = 4;
    (void)pt__mlread_u32(&r, &version);
    if (version != MODEL_VERSION)
        CORRUPT("unsupported model file version %u (this build reads %u)", version,
                MODEL_VERSION);
    if (!pt__mlread_u32(&r, &kind) || !pt__mlread_u32(&r, &flags) ||
        !pt__mlread_i64(&r, &h.nfeatures) || !pt__mlread_i64(&r, &nclasses) ||
        !pt__mlread_i64(&r, &h.rows) || !pt__mlread_f64(&r, &h.threshold) ||
        !pt__mlread_u32(&r, &act) || !pt__mlread_u32(&r, &nlayers))
        TRUNCATED();
    if (nlayers > PT__ML_MAX_LAYERS)
        CORRUPT("nlayers %u out of range 0..%d", nlayers, PT__ML_MAX_LAYERS);
    for (uint32_t l = 0; l <= nlayers; l++)
        if (!pt__mlread_i64(&r, &h.sizes[l])) TRUNCATED();
    if (!pt__mlread_i64(&r, &h.iterations) || !pt__mlread_f64(&r, &h.loss) ||
        !pt__mlread_i64(&r, &h.nparams))
        TRUNCATED();
    if (h.nparams < 0 || (uint64_t)h.nparams > (len - r.pos) / 8 ||
        len - r.pos != (size_t)h.nparams * 8 + 4) {
        if (h.nparams >= 0 && (uint64_t)h.nparams <= (len - r.pos) / 8 &&
            len - r.pos > (size_t)h.nparams * 8 + 4)
            CORRUPT("%zu bytes of trailing data", len - r.pos - (size_t)h.nparams * 8 - 4);
        if (h.nparams < 0) CORRUPT("negative parameter count %lld", (long long)h.nparams);
        CORRUPT("truncated (%zu bytes; %lld parameters need %llu)", len, (long long)h.nparams,
                (unsigned long long)(r.pos + (uint64_t)h.nparams * 8 + 4));
    }
    {
        pt__mlreader cr = {data, len, len - 4};
        (void)pt__mlread_u32(&cr, &crc_file);
        uint32_t crc = pt_crc32c(0, data, len - 4);
        if (crc != crc_file)
            CORRUPT("CRC mismatch (stored %08x, computed %08x): the file is damaged", crc_file,
                    crc);
    }
    if (flags > 1u) CORRUPT("unknown flags %#x", flags);
    if (nclasses < 1 || nclasses > INT32_MAX)
        CORRUPT("nclasses %lld out of range", (long long)nclasses);
    if (act > (uint32_t)PT_ACT_SIGMOID) CORRUPT("unknown activation %u", act);
    if (kind > (uint32_t)PT_MODEL_MLP) CORRUPT("unknown model kind %u", kind);
    h.kind = (pt_model_kind)kind;
    h.multinomial = (flags & 1u) != 0;
    h.nclasses = (int)nclasses;
    h.activation = (pt_activation)act;
    h.nlayers = (int)nlayers;
    if (check_model(&h, why, sizeof why)) {
        st = pt_error_set(err, PT_ECORRUPT, "%s: inconsistent model: %s", path, why);
        goto done;
    }
    {
        pt_model *m;
        st = pt__model_alloc(h.kind, h.nparams, &m, err);
        if (st != PT_OK) {
            pt_error_prefix(err, "%s", path);
            goto done;
        }
        double *params = m->params;
        *m = h;
        m->params = params;
        (void)pt__mlread_f64s(&r, m->params, m->nparams);
        *out = m;
    }
#undef TRUNCATED
#undef CORRUPT
done:
    pt_free(data);
    return st;
}
