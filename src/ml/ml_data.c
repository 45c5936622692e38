/*
 * ml_data.c - datasets: freeing, building a dense design matrix from a
 * table (numbers cast, text one-hot encoded, labels mapped to class ids),
 * and Spark-style random splits. Every rank must end with the same feature
 * layout and class numbering, so categories and label values are agreed
 * over the comm; every step that can fail on one rank is followed by an
 * exchange that tells all ranks, so no rank waits alone in a collective.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/ml_internal.h"

static void free_names(char **names, int64_t n) {
    if (!names) return;
    for (int64_t i = 0; i < n; i++) pt_free(names[i]);
    pt_free(names);
}

void pt_dataset_free(pt_dataset *d) {
    if (!d) return;
    pt_free(d->x);
    pt_free(d->indptr);
    pt_free(d->indices);
    pt_free(d->values);
    pt_free(d->y);
    pt_free(d->row_id);
    free_names(d->feature_names, d->nfeatures);
    pt_free(d);
}

/* ------------------------------------------------------------------------ */
/* Random split                                                             */
/* ------------------------------------------------------------------------ */

/* The uniform number of a row: a function of (seed, row_id) only. */
static inline double row_uniform(uint64_t seed, int64_t row_id) {
    uint64_t h = pt_splitmix64(seed ^ pt_splitmix64((uint64_t)row_id));
    return (double)(h >> 11) * 0x1.0p-53;
}

static char **copy_names(char *const *names, int64_t n) {
    if (!names) return NULL;
    char **c = pt_calloc((size_t)(n ? n : 1), sizeof *c);
    if (!c) return NULL;
    for (int64_t i = 0; i < n; i++) {
        c[i] = pt_strdup(names[i] ? names[i] : "");
        if (!c[i]) {
            free_names(c, n);
            return NULL;
        }
    }
    return c;
}

pt_status pt_dataset_random_split(pt_comm *comm, const pt_dataset *d, int nweights,
                                  const double *weights, uint64_t seed, pt_dataset **outs,
                                  pt_error *err) {
    if (!outs) return pt_error_set(err, PT_EINVAL, "random_split: outs is NULL");
    if (!d) return pt_error_set(err, PT_EINVAL, "random_split: d is NULL");
    if (nweights < 1 || !weights) {
        return pt_error_set(err, PT_EINVAL, "random_split: weights: need at least one (got %d)",
                            nweights);
    }
    for (int i = 0; i < nweights; i++) outs[i] = NULL;
    double total = 0;
    for (int i = 0; i < nweights; i++) {
        if (!(weights[i] >= 0) || !isfinite(weights[i])) {
            return pt_error_set(err, PT_EINVAL,
                                "random_split: weights[%d] = %g: weights must be finite and >= 0",
                                i, weights[i]);
        }
        total += weights[i];
    }
    if (!(total > 0)) return pt_error_set(err, PT_EINVAL, "random_split: weights sum to 0");
    double *cum = pt_malloc((size_t)nweights * sizeof *cum);
    int64_t *cnt = pt_calloc((size_t)nweights * 2 + 1, sizeof *cnt); /* rows, nnz; + flag */
    int32_t *which = pt_malloc((size_t)(d->nrows ? d->nrows : 1) * sizeof *which);
    pt_status st = PT_OK;
    if (!cum || !cnt || !which) st = pt_error_set(err, PT_ENOMEM, "random_split: out of memory");
    if (st == PT_OK) {
        double acc = 0;
        int last = 0;
        for (int i = 0; i < nweights; i++) {
            acc += weights[i];
            cum[i] = acc / total;
            if (weights[i] > 0) last = i;
        }
        for (int64_t r = 0; r < d->nrows; r++) {
            double u = row_uniform(seed, d->row_id ? d->row_id[r] : r);
            int s = last;
            for (int i = 0; i < nweights; i++) {
                if (cum[i] > u) {
                    s = i;
                    break;
                }
            }
            which[r] = s;
            cnt[s]++;
            if (d->sparse) cnt[nweights + s] += d->indptr[r + 1] - d->indptr[r];
        }
        for (int i = 0; i < nweights && st == PT_OK; i++) {
            pt_dataset *o = pt_calloc(1, sizeof *o);
            outs[i] = o;
            if (!o) {
                st = PT_ENOMEM;
                break;
            }
            int64_t n = cnt[i], nf = d->nfeatures;
            o->nrows = n;
            o->nfeatures = nf;
            o->sparse = d->sparse;
            o->nclasses = d->nclasses;
            o->y = pt_malloc((size_t)(n ? n : 1) * sizeof(double));
            o->row_id = pt_malloc((size_t)(n ? n : 1) * sizeof(int64_t));
            bool ok = o->y && o->row_id;
            if (d->feature_names) {
                o->feature_names = copy_names(d->feature_names, nf);
                ok = ok && o->feature_names;
            }
            if (d->sparse) {
                int64_t z = cnt[nweights + i];
                o->indptr = pt_malloc((size_t)(n + 1) * sizeof(int64_t));
                o->indices = pt_malloc((size_t)(z ? z : 1) * sizeof(int32_t));
                o->values = pt_malloc((size_t)(z ? z : 1) * sizeof(double));
                ok = ok && o->indptr && o->indices && o->values;
                if (ok) o->indptr[0] = 0;
            } else {
                o->x = pt_malloc((size_t)(n * nf > 0 ? n * nf : 1) * sizeof(double));
                ok = ok && o->x;
            }
            if (!ok) st = PT_ENOMEM;
            o->nrows = 0; /* grows as rows are copied below */
        }
        if (st != PT_OK) {
            st = pt_error_set(err, PT_ENOMEM, "random_split: out of memory for %lld rows",
                              (long long)d->nrows);
        } else {
            for (int64_t r = 0; r < d->nrows; r++) {
                pt_dataset *o = outs[which[r]];
                int64_t k = o->nrows++;
                o->y[k] = d->y ? d->y[r] : 0.0;
                o->row_id[k] = d->row_id ? d->row_id[r] : r;
                if (d->sparse) {
                    int64_t a = d->indptr[r], b = d->indptr[r + 1], z = o->indptr[k];
                    memcpy(o->indices + z, d->indices + a, (size_t)(b - a) * sizeof(int32_t));
                    memcpy(o->values + z, d->values + a, (size_t)(b - a) * sizeof(double));
                    o->indptr[k + 1] = z + (b - a);
                } else if (d->nfeatures) {
                    memcpy(o->x + k * d->nfeatures, d->x + r * d->nfeatures,
                           (size_t)d->nfeatures * sizeof(double));
                }
            }
        }
    }
    /* nrows_global of each part; the last slot tells whether a rank failed */
    if (cnt) {
        int64_t *g = cnt + nweights; /* reuse the nnz slots: no longer needed */
        for (int i = 0; i < nweights; i++) g[i] = cnt[i];
        g[nweights] = st != PT_OK;
        if (comm && pt_comm_size(comm) > 1) {
            pt_error ce;
            pt_status cs = pt_comm_allreduce(comm, g, nweights + 1, PT_DTYPE_INT64, PT_REDOP_SUM, &ce);
            if (cs != PT_OK && st == PT_OK) {
                st = cs;
                if (err) *err = ce;
            }
            if (st == PT_OK && g[nweights] != 0) {
                st = pt_error_set(err, PT_ENOMEM, "random_split: another rank ran out of memory");
            }
        }
        for (int i = 0; i < nweights && st == PT_OK; i++) outs[i]->nrows_global = g[i];
    }
    if (st != PT_OK) {
        for (int i = 0; i < nweights; i++) {
            pt_dataset_free(outs[i]);
            outs[i] = NULL;
        }
    }
    pt_free(cum);
    pt_free(cnt);
    pt_free(which);
    return st;
}

/* ------------------------------------------------------------------------ */
/* From a table                                                             */
/* ------------------------------------------------------------------------ */

typedef struct strref {
    const char *s;
    int64_t len;
} strref;

static int strref_cmp(const void *a, const void *b) {
    const strref *x = a, *y = b;
    int64_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->s, y->s, (size_t)n) : 0;
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int64_t unique_strs(strref *v, int64_t n) {
    if (n == 0) return 0;
    qsort(v, (size_t)n, sizeof *v, strref_cmp);
    int64_t k = 1;
    for (int64_t i = 1; i < n; i++) {
        if (strref_cmp(&v[i], &v[k - 1]) != 0) v[k++] = v[i];
    }
    return k;
}

static int64_t unique_dbls(double *v, int64_t n) {
    if (n == 0) return 0;
    qsort(v, (size_t)n, sizeof *v, dbl_cmp);
    int64_t k = 1;
    for (int64_t i = 1; i < n; i++) {
        if (v[i] != v[k - 1]) v[k++] = v[i];
    }
    return k;
}

/* Position of s in the sorted v[0, n), or -1. */
static int64_t find_str(const strref *v, int64_t n, const char *s, int64_t len) {
    strref key = {s, len};
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strref_cmp(&v[mid], &key);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static int64_t find_dbl(const double *v, int64_t n, double x) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (v[mid] == x) return mid;
        if (v[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* The sorted distinct non-null strings of column c (dictionary columns:
 * only the entries some row uses). The refs point into the column. */
static pt_status local_strings(const pt_column *c, strref **out, int64_t *n, pt_error *err) {
    *out = NULL;
    *n = 0;
    int64_t cap = c->type == PT_TYPE_DICT ? c->dict->length : c->length;
    strref *v = pt_malloc((size_t)(cap ? cap : 1) * sizeof *v);
    if (!v) return pt_error_set(err, PT_ENOMEM, "from_table: out of memory");
    int64_t k = 0;
    if (c->type == PT_TYPE_DICT) {
        uint8_t *used = pt_calloc((size_t)(cap ? cap : 1), 1);
        if (!used) {
            pt_free(v);
            return pt_error_set(err, PT_ENOMEM, "from_table: out of memory");
        }
        const int32_t *ix = pt_column_i32(c);
        for (int64_t i = 0; i < c->length; i++) {
            if (pt_column_is_valid(c, i)) used[ix[i]] = 1;
        }
        for (int64_t j = 0; j < cap; j++) {
            if (used[j]) {
                v[k].s = pt_column_str(c->dict, j, &v[k].len);
                k++;
            }
        }
        pt_free(used);
    } else {
        for (int64_t i = 0; i < c->length; i++) {
            if (!pt_column_is_valid(c, i)) continue;
            v[k].s = pt_column_str(c, i, &v[k].len);
            k++;
        }
    }
    *n = unique_strs(v, k);
    *out = v;
    return PT_OK;
}

/* Merges every rank's sorted distinct strings into one sorted distinct
 * list (*blob holds the bytes the refs point to when comm has several
 * ranks). `failed` travels with the payload so that a rank that could not
 * build its list still takes part; *any_failed then says so everywhere. */
static pt_status agree_strings(pt_comm *comm, strref *local, int64_t n, bool failed,
                               strref **out, int64_t *nout, char **blob, bool *any_failed,
                               pt_error *err) {
    *out = NULL;
    *nout = 0;
    *blob = NULL;
    *any_failed = failed;
    int size = pt_comm_size(comm);
    if (!comm || size <= 1) {
        if (failed) return PT_OK;
        *out = local;
        *nout = n;
        return PT_OK;
    }
    int64_t bytes = 1;
    if (!failed) {
        for (int64_t i = 0; i < n; i++) bytes += 8 + local[i].len;
    }
    uint8_t *send = pt_malloc((size_t)bytes);
    uint8_t one = 1;
    const void *sp = send ? (const void *)send : (const void *)&one;
    if (!send) bytes = 1;
    if (send) {
        send[0] = failed;
        int64_t o = 1;
        for (int64_t i = 0; i < n && !failed; i++) {
            memcpy(send + o, &local[i].len, 8);
            memcpy(send + o + 8, local[i].s, (size_t)local[i].len);
            o += 8 + local[i].len;
        }
    }
    int64_t *counts = pt_malloc((size_t)size * sizeof *counts);
    if (!counts) {
        pt_free(send);
        return pt_error_set(err, PT_ENOMEM, "from_table: out of memory");
    }
    void *recv = NULL;
    pt_status st = pt_comm_allgatherv(comm, sp, bytes, &recv, counts, err);
    pt_free(send);
    if (st != PT_OK) {
        pt_free(counts);
        return st;
    }
    /* count, then fill */
    const uint8_t *r = recv;
    int64_t total = 0, o = 0;
    for (int k = 0; k < size; k++) {
        const uint8_t *b = r + o, *e = b + counts[k];
        if (counts[k] < 1 || b[0]) *any_failed = true;
        for (const uint8_t *q = b + 1; counts[k] >= 1 && q < e;) {
            int64_t len;
            memcpy(&len, q, 8);
            q += 8 + len;
            total++;
        }
        o += counts[k];
    }
    strref *v = pt_malloc((size_t)(total ? total : 1) * sizeof *v);
    if (!v) {
        pt_free(recv);
        pt_free(counts);
        return pt_error_set(err, PT_ENOMEM, "from_table: out of memory");
    }
    o = 0;
    int64_t m = 0;
    for (int k = 0; k < size; k++) {
        const uint8_t *b = r + o, *e = b + counts[k];
        for (const uint8_t *q = b + 1; counts[k] >= 1 && q < e;) {
            memcpy(&v[m].len, q, 8);
            v[m].s = (const char *)q + 8;
            q += 8 + v[m].len;
            m++;
        }
        o += counts[k];
    }
    pt_free(counts);
    *out = v;
    *nout = unique_strs(v, m);
    *blob = recv;
    return PT_OK;
}

/* The same for doubles; *out is always a new array. */
static pt_status agree_doubles(pt_comm *comm, const double *local, int64_t n, double **out,
                               int64_t *nout, pt_error *err) {
    *out = NULL;
    *nout = 0;
    int size = pt_comm_size(comm);
    double *v = NULL;
    int64_t m = n;
    if (!comm || size <= 1) {
        v = pt_malloc((size_t)(n ? n : 1) * sizeof *v);
        if (!v) return pt_error_set(err, PT_ENOMEM, "from_table: out of memory");
        if (n) memcpy(v, local, (size_t)n * sizeof *v);
    } else {
        int64_t *counts = pt_malloc((size_t)size * sizeof *counts);
        if (!counts) return pt_error_set(err, PT_ENOMEM, "from_table: out of memory");
        void *recv = NULL;
        pt_status st = pt_comm_allgatherv(comm, local, n * (int64_t)sizeof(double), &recv, counts,
                                          err);
        if (st != PT_OK) {
            pt_free(counts);
            return st;
        }
        m = 0;
        for (int k = 0; k < size; k++) m += counts[k] / (int64_t)sizeof(double);
        pt_free(counts);
        v = recv;
    }
    *nout = unique_dbls(v, m);
    *out = v;
    return PT_OK;
}

/* One feature column of the output. */
typedef struct feat_col {
    const pt_column *c;
    const char *name;
    bool text;
    int64_t first;   /* first output feature */
    strref *cats;    /* text: agreed categories */
    int64_t ncats;
    char *blob;      /* bytes behind cats (several ranks) */
    strref *local;   /* this rank's distinct values */
    int64_t *dictmap; /* dict columns: dictionary entry -> category */
} feat_col;

static bool usable_type(pt_type t) {
    return pt_type_is_numeric(t) || t == PT_TYPE_BOOL || pt_type_is_string(t);
}

/* A hash of the layout (names and kinds of the label and the features), to
 * detect ranks whose tables do not agree before the layout is exchanged. */
static uint64_t layout_hash(const feat_col *f, int nf, const pt_column *lab, const char *label) {
    uint64_t h = pt_hash_u64((uint64_t)nf + 1);
    for (int i = 0; i < nf; i++) {
        h = pt_hash_bytes(f[i].name, strlen(f[i].name), h ^ (f[i].text ? 0x51u : 0x17u));
    }
    if (lab) h = pt_hash_bytes(label, strlen(label), h ^ (pt_type_is_string(lab->type) ? 7 : 3));
    return h;
}

enum { X_STATUS = 0, X_ROWS, X_HASH, X_LAB_ALLINT, X_LAB_MAX, X_COUNT };

pt_status pt_dataset_from_table(pt_ctx *ctx, pt_comm *comm, const pt_table *t, const char *label,
                                int nfeatures, const char *const *features, bool classify,
                                pt_dataset **out, pt_error *err) {
    (void)ctx;
    if (!out) return pt_error_set(err, PT_EINVAL, "from_table: out is NULL");
    *out = NULL;
    const int rank = pt_comm_rank(comm), nranks = pt_comm_size(comm);
    const bool multi = comm && nranks > 1;
    pt_error e;
    pt_error_clear(&e);
    pt_status st = PT_OK;
    feat_col *fc = NULL;
    int nfc = 0;
    const pt_column *lab = NULL;
    int64_t null_row = -1;
    const char *null_col = NULL;
    pt_dataset *d = NULL;
    int64_t *all = NULL;
    double *labvals = NULL;
    int64_t nlabvals = 0;
    strref *labcats = NULL, *lablocal = NULL;
    int64_t nlabcats = 0;
    char *labblob = NULL;

    /* --- local checks ---------------------------------------------------- */
    if (!t) {
        st = pt_error_set(&e, PT_EINVAL, "from_table: t is NULL");
    } else if (nfeatures < 0 || (nfeatures > 0 && !features)) {
        st = pt_error_set(&e, PT_EINVAL, "from_table: nfeatures %d without a features list",
                          nfeatures);
    }
    if (st == PT_OK && label) {
        lab = pt_table_column(t, label);
        if (!lab) {
            st = pt_error_set(&e, PT_EINVAL, "from_table: label column '%s' not found", label);
        } else if (!usable_type(lab->type)) {
            st = pt_error_set(&e, PT_ETYPE, "from_table: label column '%s' has type %s", label,
                              pt_type_name(lab->type));
        } else if (!classify && pt_type_is_string(lab->type)) {
            st = pt_error_set(&e, PT_ETYPE,
                              "from_table: label column '%s' is text: it can only be a class "
                              "label (classify)",
                              label);
        }
    }
    if (st == PT_OK) {
        int cap = nfeatures > 0 ? nfeatures : t->schema->nfields;
        fc = pt_calloc((size_t)(cap ? cap : 1), sizeof *fc);
        if (!fc) st = pt_error_set(&e, PT_ENOMEM, "from_table: out of memory");
        for (int i = 0; st == PT_OK && i < cap; i++) {
            const char *nm = nfeatures > 0 ? features[i] : t->schema->fields[i].name;
            int ci = nm ? pt_schema_find(t->schema, nm) : -1;
            if (ci < 0) {
                st = pt_error_set(&e, PT_EINVAL, "from_table: feature column '%s' not found",
                                  nm ? nm : "(null)");
                break;
            }
            const pt_column *c = t->cols[ci];
            if (nfeatures == 0) {
                if (c == lab || !usable_type(c->type)) continue;
            } else if (!usable_type(c->type)) {
                st = pt_error_set(&e, PT_ETYPE,
                                  "from_table: feature column '%s' has type %s (numbers, bool or "
                                  "text expected)",
                                  nm, pt_type_name(c->type));
                break;
            }
            fc[nfc].c = c;
            fc[nfc].name = t->schema->fields[ci].name;
            fc[nfc].text = pt_type_is_string(c->type);
            nfc++;
        }
    }
    /* nulls: the first one in table order is named (row number global) */
    for (int i = 0; st == PT_OK && i <= nfc && null_row < 0; i++) {
        const pt_column *c = i < nfc ? fc[i].c : lab;
        if (!c || c->null_count == 0) continue;
        for (int64_t r = 0; r < c->length; r++) {
            if (!pt_column_is_valid(c, r)) {
                null_row = r;
                null_col = i < nfc ? fc[i].name : label;
                break;
            }
        }
    }
    if (st == PT_OK && null_row >= 0) st = PT_EINVAL;
    /* labels: are they class ids already? */
    bool lab_allint = true;
    int64_t lab_max = -1;
    if (st == PT_OK && lab && classify && !pt_type_is_string(lab->type)) {
        for (int64_t r = 0; r < lab->length; r++) {
            double v = pt_column_get_f64(lab, r);
            if (!(v >= 0 && v <= (double)(INT32_MAX - 1) && v == floor(v))) {
                lab_allint = false;
            } else if ((int64_t)v > lab_max) {
                lab_max = (int64_t)v;
            }
        }
    }
    if (st == PT_OK && lab && classify && pt_type_is_string(lab->type)) lab_allint = false;

    /* --- exchange 1: status, rows, layout, label kind ---------------------- */
    int64_t mine[X_COUNT] = {st, t && st == PT_OK ? t->nrows : 0,
                             st == PT_OK ? (int64_t)layout_hash(fc, nfc, lab, label) : 0,
                             lab_allint, lab_max};
    all = pt_malloc((size_t)nranks * sizeof mine);
    if (!all) {
        if (st == PT_OK) st = pt_error_set(&e, PT_ENOMEM, "from_table: out of memory");
        if (err) *err = e;
        goto done; /* cannot take part: the comm will time out on the others */
    }
    if (multi) {
        pt_status cs = pt_comm_allgather(comm, mine, (int64_t)sizeof mine, all, err);
        if (cs != PT_OK) {
            st = cs;
            goto done;
        }
    } else {
        memcpy(all, mine, sizeof mine);
    }
    int64_t row_base = 0, rows_global = 0;
    int first_fail = -1, first_diff = -1;
    bool g_allint = true;
    int64_t g_max = -1;
    for (int r = 0; r < nranks; r++) {
        const int64_t *s = all + (int64_t)r * X_COUNT;
        if (r < rank) row_base += s[X_ROWS];
        rows_global += s[X_ROWS];
        if (s[X_STATUS] != PT_OK && first_fail < 0) first_fail = r;
        if (s[X_HASH] != all[X_HASH] && first_diff < 0) first_diff = r;
        g_allint = g_allint && s[X_LAB_ALLINT];
        if (s[X_LAB_MAX] > g_max) g_max = s[X_LAB_MAX];
    }
    if (first_fail >= 0) {
        if (null_row >= 0) {
            st = pt_error_set(err, PT_EINVAL,
                              "from_table: column '%s', row %lld: null value (features and labels "
                              "must not be null)",
                              null_col, (long long)(row_base + null_row));
        } else if (st != PT_OK) {
            if (err) *err = e;
        } else {
            st = pt_error_set(err, (pt_status)all[(int64_t)first_fail * X_COUNT + X_STATUS],
                              "from_table: rank %d failed (see its message)", first_fail);
        }
        goto done;
    }
    if (first_diff >= 0) {
        st = pt_error_set(err, PT_EINVAL,
                          "from_table: the tables of rank 0 and rank %d differ in their label or "
                          "feature columns",
                          first_diff);
        goto done;
    }

    /* --- exchange 2: categories of text features, then label values ------- */
    bool failed = false;
    int64_t nout = 0;
    for (int i = 0; i < nfc; i++) {
        if (!fc[i].text) {
            fc[i].first = nout++;
            continue;
        }
        int64_t nloc = 0;
        pt_error le;
        bool lf = failed || local_strings(fc[i].c, &fc[i].local, &nloc, &le) != PT_OK;
        bool anyf = false;
        st = agree_strings(comm, fc[i].local, nloc, lf, &fc[i].cats, &fc[i].ncats, &fc[i].blob,
                           &anyf, err);
        if (st != PT_OK) goto done;
        failed = failed || anyf;
        fc[i].first = nout;
        nout += fc[i].ncats;
    }
    if (!failed && lab && classify && !g_allint) {
        if (pt_type_is_string(lab->type)) {
            int64_t nloc = 0;
            pt_error le;
            bool lf = local_strings(lab, &lablocal, &nloc, &le) != PT_OK;
            bool anyf = false;
            st = agree_strings(comm, lablocal, nloc, lf, &labcats, &nlabcats, &labblob, &anyf, err);
            if (st != PT_OK) goto done;
            failed = anyf;
        } else {
            double *loc = pt_malloc((size_t)(lab->length ? lab->length : 1) * sizeof *loc);
            int64_t k = 0;
            if (loc) {
                for (int64_t r = 0; r < lab->length; r++) loc[k++] = pt_column_get_f64(lab, r);
                k = unique_dbls(loc, k);
            }
            /* a rank out of memory sends nothing and says so below */
            st = agree_doubles(comm, loc ? loc : NULL, loc ? k : 0, &labvals, &nlabvals, err);
            pt_free(loc);
            if (st != PT_OK) goto done;
            failed = !loc;
        }
    }

    /* --- build ------------------------------------------------------------- */
    if (!failed) {
        int64_t n = t->nrows;
        d = pt_calloc(1, sizeof *d);
        bool ok = d != NULL;
        if (ok) {
            d->nrows = n;
            d->nrows_global = rows_global;
            d->nfeatures = nout;
            d->sparse = false;
            d->nclasses = !lab || !classify                       ? 0
                          : g_allint                              ? (int)(g_max + 1)
                          : pt_type_is_string(lab->type)          ? (int)nlabcats
                                                                  : (int)nlabvals;
            if (lab && classify && lab->type == PT_TYPE_BOOL) d->nclasses = 2;
            d->y = pt_malloc((size_t)(n ? n : 1) * sizeof(double));
            d->row_id = pt_malloc((size_t)(n ? n : 1) * sizeof(int64_t));
            ok = d->y && d->row_id && (n == 0 || nout <= INT64_MAX / 8 / n);
            if (ok) {
                d->x = pt_calloc((size_t)(n * nout > 0 ? n * nout : 1), sizeof(double));
                d->feature_names = pt_calloc((size_t)(nout ? nout : 1), sizeof(char *));
                ok = d->x && d->feature_names;
            }
        }
        for (int i = 0; ok && i < nfc; i++) {
            feat_col *f = &fc[i];
            if (!f->text) {
                d->feature_names[f->first] = pt_strdup(f->name);
                ok = d->feature_names[f->first] != NULL;
                for (int64_t r = 0; ok && r < n; r++) {
                    d->x[r * nout + f->first] = pt_column_get_f64(f->c, r);
                }
                continue;
            }
            size_t nl = strlen(f->name);
            for (int64_t j = 0; ok && j < f->ncats; j++) {
                char *s = pt_malloc(nl + 1 + (size_t)f->cats[j].len + 1);
                if (!s) {
                    ok = false;
                    break;
                }
                memcpy(s, f->name, nl);
                s[nl] = '=';
                memcpy(s + nl + 1, f->cats[j].s, (size_t)f->cats[j].len);
                s[nl + 1 + f->cats[j].len] = '\0';
                d->feature_names[f->first + j] = s;
            }
            if (!ok) break;
            if (f->c->type == PT_TYPE_DICT) {
                int64_t nd = f->c->dict->length;
                f->dictmap = pt_malloc((size_t)(nd ? nd : 1) * sizeof(int64_t));
                if (!f->dictmap) {
                    ok = false;
                    break;
                }
                for (int64_t j = 0; j < nd; j++) {
                    int64_t len;
                    const char *s = pt_column_str(f->c->dict, j, &len);
                    f->dictmap[j] = find_str(f->cats, f->ncats, s, len);
                }
                const int32_t *ix = pt_column_i32(f->c);
                for (int64_t r = 0; r < n; r++) d->x[r * nout + f->first + f->dictmap[ix[r]]] = 1.0;
            } else {
                for (int64_t r = 0; r < n; r++) {
                    int64_t len;
                    const char *s = pt_column_str(f->c, r, &len);
                    d->x[r * nout + f->first + find_str(f->cats, f->ncats, s, len)] = 1.0;
                }
            }
        }
        for (int64_t r = 0; ok && r < n; r++) {
            d->row_id[r] = row_base + r;
            if (!lab) {
                d->y[r] = 0.0;
            } else if (pt_type_is_string(lab->type)) {
                int64_t len;
                const char *s = pt_column_str(lab, r, &len);
                d->y[r] = (double)find_str(labcats, nlabcats, s, len);
            } else {
                double v = pt_column_get_f64(lab, r);
                d->y[r] = classify && !g_allint ? (double)find_dbl(labvals, nlabvals, v) : v + 0.0;
            }
        }
        if (!ok) {
            failed = true;
            if (d) d->nfeatures = d->feature_names ? nout : 0;
            pt_dataset_free(d);
            d = NULL;
        }
    }
    /* --- exchange 3: did every rank build its part? ------------------------ */
    {
        int64_t f = failed;
        if (multi) {
            pt_status cs = pt_comm_allreduce(comm, &f, 1, PT_DTYPE_INT64, PT_REDOP_MAX, err);
            if (cs != PT_OK) {
                st = cs;
                goto done;
            }
        }
        if (f) {
            st = pt_error_set(err, PT_ENOMEM, "from_table: out of memory%s",
                              failed ? "" : " on another rank");
            goto done;
        }
    }
    *out = d;
    d = NULL;
done:
    pt_dataset_free(d);
    for (int i = 0; fc && i < nfc; i++) {
        if (fc[i].cats != fc[i].local) pt_free(fc[i].cats);
        pt_free(fc[i].local);
        pt_free(fc[i].blob);
        pt_free(fc[i].dictmap);
    }
    pt_free(fc);
    if (labcats != lablocal) pt_free(labcats);
    pt_free(lablocal);
    pt_free(labblob);
    pt_free(labvals);
    pt_free(all);
    return st;
}
