/*
 * csv_parse.c - the CSV tokenizer and the typed column builders of one parse
 * range. The hot loop parses integers, floats and plain text fields in place
 * (no intermediate field list) and writes straight into the range's arrays;
 * anything unusual (quotes, nulls, misfits, malformed fields) takes the
 * generic path. A value that does not fit the column's type either fails
 * (explicit schema) or "defers" the column in this range: values stop being
 * stored, the widest class seen is tracked, and the caller re-parses the
 * range's column at the final type from its bytes.
 *
 * Quoting follows RFC 4180. Row boundaries are defined by quote parity (a
 * '\n' ends a row when an even number of quote characters precede it in the
 * row), which is what lets ranges be parsed independently; a quote inside an
 * unquoted field or text after a closing quote is an error, so every row
 * the tokenizer accepts has the same boundaries under both views.
 */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "io/csv_internal.h"
#include "io/io_util.h"

/* ------------------------------------------------------------------------ */
/* Numbers                                                                  */
/* ------------------------------------------------------------------------ */

static const double k_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
static const float k_pow10f[11] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                   1e6f, 1e7f, 1e8f, 1e9f, 1e10f};

/* strtod must not depend on the application's LC_NUMERIC. */
static locale_t g_c_locale;
static pthread_once_t g_locale_once = PTHREAD_ONCE_INIT;
static void init_c_locale(void) { g_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

static inline int is_blank(char c) { return c == ' ' || c == '\t'; }

static inline void trim(const char **s, int64_t *n) {
    const char *p = *s;
    int64_t k = *n;
    while (k > 0 && is_blank(*p)) p++, k--;
    while (k > 0 && is_blank(p[k - 1])) k--;
    *s = p;
    *n = k;
}

static inline int lower(char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

static int eq_ci(const char *s, int64_t n, const char *lit) {
    int64_t l = (int64_t)strlen(lit);
    if (n != l) return 0;
    for (int64_t i = 0; i < n; i++)
        if (lower(s[i]) != lit[i]) return 0;
    return 1;
}

int pt__csv_parse_i64(const char *s, int64_t n, int64_t *out) {
    trim(&s, &n);
    if (n == 0) return 0;
    int64_t i = 0;
    int neg = 0;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n) return 0;
    uint64_t v = 0;
    int ovf = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9) return 0;
        if (v > (UINT64_MAX - d) / 10)
            ovf = 1;
        else
            v = v * 10 + d;
    }
    if (ovf || v > (neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1)) return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 1;
}

/* Decimal syntax check plus the significand/exponent of the fast path.
 * Returns 0 on bad syntax; sets *fast when m * 10^e10 is the whole value. */
static int scan_decimal(const char *s, int64_t n, int *neg, uint64_t *m, int64_t *e10, int *nd) {
    int64_t i = 0;
    *neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) *neg = s[i++] == '-';
    uint64_t mm = 0;
    int digits = 0, any = 0, more = 0;
    int64_t e = 0;
    while (i < n && (unsigned)(s[i] - '0') < 10) {
        unsigned d = (unsigned)(s[i] - '0');
        any = 1;
        if (mm == 0 && d == 0) {
        } else if (digits < 19) {
            mm = mm * 10 + d;
            digits++;
        } else {
            more = 1;
            e++;
        }
        i++;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && (unsigned)(s[i] - '0') < 10) {
            unsigned d = (unsigned)(s[i] - '0');
            any = 1;
            if (mm == 0 && d == 0)
                e--;
            else if (digits < 19) {
                mm = mm * 10 + d;
                digits++;
                e--;
            } else
                more = 1;
            i++;
        }
    }
    if (!any) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < n && (s[i] == '-' || s[i] == '+')) eneg = s[i++] == '-';
        if (i == n || (unsigned)(s[i] - '0') >= 10) return 0;
        int64_t x = 0;
        while (i < n && (unsigned)(s[i] - '0') < 10) {
            if (x < 100000000) x = x * 10 + (s[i] - '0');
            i++;
        }
        e += eneg ? -x : x;
    }
    if (i != n) return 0;
    *m = mm;
    *e10 = e;
    *nd = more ? 99 : digits;
    return 1;
}

static int special_float(const char *s, int64_t n, double *out) {
    int neg = 0;
    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        s++, n--;
    }
    if (eq_ci(s, n, "nan")) {
        *out = neg ? -NAN : NAN;
        return 1;
    }
    if (eq_ci(s, n, "inf") || eq_ci(s, n, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return 1;
    }
    return 0;
}

double pt__strtod_c(const char *s, char **end) {
    pthread_once(&g_locale_once, init_c_locale);
    return g_c_locale ? strtod_l(s, end, g_c_locale) : strtod(s, end);
}

/* Correctly rounded conversion of already validated text. */
static double slow_strtod(const char *s, int64_t n, int as_float, float *fout) {
    char small[128];
    char *buf = small;
    if (n + 1 > (int64_t)sizeof small) {
        buf = pt_malloc((size_t)n + 1);
        if (!buf) {
            /* Out of memory on a > 128 digit number: rounding may be off by
             * one ulp in this corner only. */
            buf = small;
            n = (int64_t)sizeof small - 1;
        }
    }
    memcpy(buf, s, (size_t)n);
    buf[n] = 0;
    double d = 0;
    if (as_float) {
        pthread_once(&g_locale_once, init_c_locale);
        *fout = g_c_locale ? strtof_l(buf, NULL, g_c_locale) : strtof(buf, NULL);
    } else {
        d = pt__strtod_c(buf, NULL);
    }
    if (buf != small) pt_free(buf);
    return d;
}

int pt__csv_parse_f64(const char *s, int64_t n, double *out) {
    trim(&s, &n);
    if (n == 0) return 0;
    int neg, nd;
    uint64_t m;
    int64_t e;
    if (!scan_decimal(s, n, &neg, &m, &e, &nd)) return special_float(s, n, out);
    if (nd <= 19 && m <= ((uint64_t)1 << 53) && e >= -22 && e <= 22) {
        double d = (double)m;
        d = e < 0 ? d / k_pow10[-e] : d * k_pow10[e];
        *out = neg ? -d : d;
        return 1;
    }
    if (m == 0) {
        *out = neg ? -0.0 : 0.0;
        return 1;
    }
    *out = slow_strtod(s, n, 0, NULL);
    return 1;
}

int pt__csv_parse_f32(const char *s, int64_t n, float *out) {
    trim(&s, &n);
    if (n == 0) return 0;
    int neg, nd;
    uint64_t m;
    int64_t e;
    if (!scan_decimal(s, n, &neg, &m, &e, &nd)) {
        double d;
        if (!special_float(s, n, &d)) return 0;
        *out = (float)d;
        return 1;
    }
    if (nd <= 19 && m <= ((uint64_t)1 << 24) && e >= -10 && e <= 10) {
        float f = (float)m;
        f = e < 0 ? f / k_pow10f[-e] : f * k_pow10f[e];
        *out = neg ? -f : f;
        return 1;
    }
    if (m == 0) {
        *out = neg ? -0.0f : 0.0f;
        return 1;
    }
    float f = 0;
    slow_strtod(s, n, 1, &f);
    *out = f;
    return 1;
}

int pt__csv_parse_bool(const char *s, int64_t n, int *out) {
    trim(&s, &n);
    if (eq_ci(s, n, "true")) {
        *out = 1;
        return 1;
    }
    if (eq_ci(s, n, "false")) {
        *out = 0;
        return 1;
    }
    return 0;
}

pt_type pt__csv_classify(const char *s, int64_t n) {
    const char *t = s;
    int64_t k = n;
    trim(&t, &k);
    if (k == 0) return PT_TYPE_UTF8; /* blanks only: text */
    char c = t[0];
    if ((unsigned)(c - '0') < 10 || c == '-' || c == '+' || c == '.') {
        int64_t v;
        int r = pt__csv_parse_i64(t, k, &v);
        if (r == 1) return PT_TYPE_INT64;
        if (r == -1) return PT_TYPE_FLOAT64; /* too big for int64 */
    }
    double d;
    char lc = (char)lower(c);
    if (((unsigned)(c - '0') < 10 || c == '-' || c == '+' || c == '.' || lc == 'n' ||
         lc == 'i') &&
        pt__csv_parse_f64(t, k, &d))
        return PT_TYPE_FLOAT64;
    int b;
    if ((lc == 't' || lc == 'f') && pt__csv_parse_bool(t, k, &b)) return PT_TYPE_BOOL;
    return PT_TYPE_UTF8;
}

int pt__csv_is_null_text(const pt__csv_nulls *nl, const char *s, int64_t n) {
    if (nl->n == 0) return 0;
    if (n < 64 ? !((nl->lenmask >> n) & 1) : !nl->haslong) return 0;
    for (int i = 0; i < nl->n; i++) {
        const char *v = nl->vals[i];
        if ((int64_t)strlen(v) == n && memcmp(v, s, (size_t)n) == 0) return 1;
    }
    return 0;
}

pt_type pt__csv_class_of(pt_type t) {
    switch (t) {
    case PT_TYPE_INT32:
        return PT_TYPE_INT64;
    case PT_TYPE_FLOAT32:
        return PT_TYPE_FLOAT64;
    case PT_TYPE_DICT:
        return PT_TYPE_UTF8;
    default:
        return t;
    }
}

pt_type pt__csv_join(pt_type a, pt_type b) {
    a = pt__csv_class_of(a);
    b = pt__csv_class_of(b);
    if (a == PT_TYPE_NULL) return b;
    if (b == PT_TYPE_NULL) return a;
    if (a == b) return a;
    if ((a == PT_TYPE_INT64 && b == PT_TYPE_FLOAT64) || (a == PT_TYPE_FLOAT64 && b == PT_TYPE_INT64))
        return PT_TYPE_FLOAT64;
    return PT_TYPE_UTF8;
}

static inline uint64_t hash_inline(const char *s, int64_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
    }
    if (i < n) {
        uint64_t w = 0;
        memcpy(&w, s + i, (size_t)(n - i));
        h = (h ^ w) * 0x94d049bb133111ebULL;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

uint64_t pt__csv_hash(const char *s, int64_t n) { return hash_inline(s, n); }

/* ------------------------------------------------------------------------ */
/* Builders                                                                 */
/* ------------------------------------------------------------------------ */

void pt__csv_chunk_init(pt__csv_chunk *ck) {
    memset(ck, 0, sizeof *ck);
    ck->first_bad_pos = -1;
}

void pt__csv_col_free(const pt__csv_cfg *cfg, pt__csv_col *b) {
    pt_free(b->vals);
    pt_free(b->valid);
    pt_free(b->offs);
    pt_free(b->bytes);
    pt_free(b->ht);
    pt_free(b->doffs);
    pt_free(b->dbytes);
    if (b->charged) pt_mem_release(cfg->mem, b->charged);
    memset(b, 0, sizeof *b);
}

void pt__csv_chunk_free(const pt__csv_cfg *cfg, pt__csv_chunk *ck) {
    if (ck->cols)
        for (int i = 0; i < cfg->nout; i++) pt__csv_col_free(cfg, &ck->cols[i]);
    pt_free(ck->cols);
    pt_free(ck->badpos);
    pt_free(ck->first_bad);
    pt_free(ck->scratch);
    ck->cols = NULL;
    ck->badpos = NULL;
    ck->first_bad = NULL;
    ck->scratch = NULL;
}

/* Resizes *p from `old` to `nsize` bytes, charging the difference. */
static pt_status resize(const pt__csv_cfg *cfg, pt__csv_col *b, void **p, int64_t old, int64_t nsize,
                        pt_error *err) {
    if (nsize > old) {
        pt_status s = pt_mem_reserve(cfg->mem, nsize - old, "CSV parse buffers", err);
        if (s != PT_OK) return s;
    }
    void *q = pt_realloc(*p, (size_t)(nsize > 0 ? nsize : 1));
    if (!q) {
        if (nsize > old) pt_mem_release(cfg->mem, nsize - old);
        return pt_error_set(err, PT_ENOMEM, "%s: out of memory (CSV parse buffers, %lld bytes)",
                            cfg->name, (long long)nsize);
    }
    if (nsize < old) pt_mem_release(cfg->mem, old - nsize);
    b->charged += nsize - old;
    *p = q;
    return PT_OK;
}

static int64_t val_bytes(pt_type t, int64_t cap) {
    switch (t) {
    case PT_TYPE_BOOL:
        return (cap + 7) / 8 + 8;
    case PT_TYPE_INT32:
    case PT_TYPE_FLOAT32:
    case PT_TYPE_DICT:
        return cap * 4;
    case PT_TYPE_INT64:
    case PT_TYPE_FLOAT64:
        return cap * 8;
    default:
        return 0;
    }
}

/* Grows every live builder of the chunk to `ncap` rows. */
static pt_status grow_rows(const pt__csv_cfg *cfg, pt__csv_chunk *ck, pt__csv_col **live, int nlive,
                           int64_t ncap, pt_error *err) {
    for (int i = 0; i < nlive; i++) {
        pt__csv_col *b = live[i];
        if (b->deferred) continue;
        int64_t ov = val_bytes(b->type, b->cap), nv = val_bytes(b->type, ncap);
        if (nv > ov) PT_RETURN_NOT_OK(resize(cfg, b, (void **)&b->vals, ov, nv, err));
        if (b->type == PT_TYPE_UTF8) {
            int64_t oo = b->offs ? (b->cap + 1) * 8 : 0;
            PT_RETURN_NOT_OK(resize(cfg, b, (void **)&b->offs, oo, (ncap + 1) * 8, err));
            if (oo == 0) b->offs[0] = 0;
        }
        if (b->valid) {
            int64_t ob = (b->cap + 7) / 8 + 8, nb = (ncap + 7) / 8 + 8;
            PT_RETURN_NOT_OK(resize(cfg, b, (void **)&b->valid, ob, nb, err));
            memset(b->valid + ob, 0xFF, (size_t)(nb - ob));
        }
        b->cap = ncap;
    }
    ck->cap = ncap;
    return PT_OK;
}

static pt_status need_bytes(const pt__csv_cfg *cfg, pt__csv_col *b, int64_t more, pt_error *err) {
    if (b->nbytes + more <= b->bcap) return PT_OK;
    int64_t nc = b->bcap ? b->bcap : 4096;
    while (nc < b->nbytes + more) nc *= 2;
    PT_RETURN_NOT_OK(resize(cfg, b, (void **)&b->bytes, b->bcap, nc, err));
    b->bcap = nc;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Tokenizer                                                                */
/* ------------------------------------------------------------------------ */

enum { F_OK = 0, F_STRAY_QUOTE, F_AFTER_QUOTE, F_UNTERMINATED, F_FEW, F_MANY, F_TYPE, F_UTF8,
       F_NOMEM };

typedef struct field {
    const char *s;   /* unescaped text */
    int64_t n;
    const char *raw; /* raw text (inside the quotes) for UTF-8 positions */
    int64_t rawn;
    int quoted;
} field;

static inline int is_term(const uint8_t *cls, const char *q, const char *end) {
    if (q == end) return 1;
    uint8_t k = cls[(uint8_t)*q];
    return k == PT__CSV_DELIM || k == PT__CSV_NL ||
           (k == PT__CSV_CR && (q + 1 == end || q[1] == '\n'));
}

/* End of an unquoted field: at the delimiter, '\n', the '\r' of a line end,
 * a quote (an error for the caller) or `end`. */
static inline const char *scan_plain(const uint8_t *cls, const char *p, const char *end) {
    for (;;) {
        while (p < end && cls[(uint8_t)*p] == PT__CSV_NORMAL) p++;
        if (p < end && cls[(uint8_t)*p] == PT__CSV_CR && !(p + 1 == end || p[1] == '\n')) {
            p++;
            continue;
        }
        return p;
    }
}

/* Reads the field at p. Returns F_OK and sets *next to the terminator, or an
 * error kind with *bad at the offending byte. Unescaped text of quoted
 * fields with doubled quotes goes to the scratch buffer. */
static int read_field(const pt__csv_cfg *cfg, const char *p, const char *end, field *f,
                      const char **next, const char **bad, char **scratch, int64_t *scap,
                      int want_text) {
    const uint8_t *cls = cfg->cls;
    if (p == end || *p != cfg->quote) {
        const char *q = scan_plain(cls, p, end);
        if (q < end && cls[(uint8_t)*q] == PT__CSV_QUOTE) {
            *bad = q;
            return F_STRAY_QUOTE;
        }
        f->s = f->raw = p;
        f->n = f->rawn = q - p;
        f->quoted = 0;
        *next = q;
        return F_OK;
    }
    const char *q = p + 1, *close;
    int dbl = 0;
    for (;;) {
        const char *h = memchr(q, cfg->quote, (size_t)(end - q));
        if (!h) {
            *bad = p;
            return F_UNTERMINATED;
        }
        if (h + 1 < end && h[1] == cfg->quote) {
            dbl = 1;
            q = h + 2;
            continue;
        }
        close = h;
        break;
    }
    const char *after = close + 1;
    if (!is_term(cls, after, end)) {
        *bad = after;
        return F_AFTER_QUOTE;
    }
    f->raw = p + 1;
    f->rawn = close - (p + 1);
    f->quoted = 1;
    *next = after;
    if (!dbl || !want_text) {
        f->s = f->raw;
        f->n = f->rawn;
        return F_OK;
    }
    if (f->rawn > *scap) {
        int64_t nc = *scap ? *scap : 256;
        while (nc < f->rawn) nc *= 2;
        char *ns = pt_realloc(*scratch, (size_t)nc);
        if (!ns) return F_NOMEM;
        *scratch = ns;
        *scap = nc;
    }
    char *o = *scratch;
    for (const char *r = f->raw; r < close; r++) {
        *o++ = *r;
        if (*r == cfg->quote) r++; /* the second of a doubled pair */
    }
    f->s = *scratch;
    f->n = o - *scratch;
    return F_OK;
}

const char *pt__csv_field(const pt__csv_cfg *cfg, const char *p, const char *end,
                          const char **s, int64_t *n, int *quoted, char **scratch,
                          int64_t *scap, const char **bad) {
    field f;
    const char *next;
    int k = read_field(cfg, p, end, &f, &next, bad, scratch, scap, 1);
    if (k == F_NOMEM) {
        *bad = p;
        return NULL;
    }
    if (k != F_OK) return NULL;
    *s = f.s;
    *n = f.n;
    *quoted = f.quoted;
    return next;
}

/* ------------------------------------------------------------------------ */
/* The range parser                                                         */
/* ------------------------------------------------------------------------ */

typedef struct pstate {
    const pt__csv_cfg *cfg;
    pt__csv_chunk *ck;
    const char *data;
    /* per row undo of builder state changes (skip_bad_rows) */
    int64_t row;
    struct undo {
        int64_t row;
        int deferred, abandoned;
        pt_type need;
        int64_t text_pos;
        int64_t ndict;
    } *undo; /* [nout] */
    int errcol;   /* output column of a type / UTF-8 error */
    pt_type errtype;
    const char *errfield;
    int64_t errlen;
    const char *fstart; /* start of the field being read */
    pt_error oom;       /* ENOMEM/EBUDGET details */
} pstate;

static inline void save_undo(pstate *P, pt__csv_col *b) {
    if (!P->undo) return;
    struct undo *u = &P->undo[b - P->ck->cols];
    if (u->row == P->row) return;
    u->row = P->row;
    u->deferred = b->deferred;
    u->abandoned = b->abandoned;
    u->need = b->need;
    u->text_pos = b->text_pos;
    u->ndict = b->ndict;
}

static inline void set_valid(pt__csv_col *b, int64_t r) {
    if (b->valid) pt_bit_set(b->valid, r);
}

static pt_status set_null(pstate *P, pt__csv_col *b, int64_t r) {
    if (!b->valid) {
        int64_t nb = (b->cap + 7) / 8 + 8;
        PT_RETURN_NOT_OK(resize(P->cfg, b, (void **)&b->valid, 0, nb, &P->oom));
        memset(b->valid, 0xFF, (size_t)nb);
    }
    pt_bit_clear(b->valid, r);
    switch (b->type) {
    case PT_TYPE_BOOL:
        pt_bit_clear(b->vals, r);
        break;
    case PT_TYPE_INT32:
    case PT_TYPE_FLOAT32:
        memset(b->vals + 4 * r, 0, 4);
        break;
    case PT_TYPE_DICT:
        ((int32_t *)b->vals)[r] = -1;
        break;
    case PT_TYPE_INT64:
    case PT_TYPE_FLOAT64:
        memset(b->vals + 8 * r, 0, 8);
        break;
    case PT_TYPE_UTF8:
        b->offs[r + 1] = b->offs[r];
        break;
    default:
        break;
    }
    return PT_OK;
}

static void defer(pstate *P, pt__csv_col *b, pt_type cls, const char *pos) {
    save_undo(P, b);
    pt_type from = pt__csv_class_of(b->type);
    pt_type nn = pt__csv_join(b->deferred ? b->need : from, cls);
    if (b->text_pos < 0 && nn != from &&
        !(from == PT_TYPE_NULL || (from == PT_TYPE_INT64 && nn == PT_TYPE_FLOAT64)))
        b->text_pos = pos - P->data;
    b->need = nn;
    b->deferred = 1;
}

static pt_status dict_grow(pstate *P, pt__csv_col *b) {
    int64_t nc = b->htcap ? b->htcap * 2 : 1024;
    uint64_t *nt = NULL;
    PT_RETURN_NOT_OK(resize(P->cfg, b, (void **)&nt, 0, nc * 8, &P->oom));
    memset(nt, 0, (size_t)nc * 8);
    for (int64_t i = 0; i < b->htcap; i++) {
        uint64_t v = b->ht[i];
        if (!v) continue;
        uint32_t e = (uint32_t)v - 1;
        uint64_t h = hash_inline(b->dbytes + b->doffs[e], b->doffs[e + 1] - b->doffs[e]);
        int64_t j = (int64_t)(h & (uint64_t)(nc - 1));
        while (nt[j]) j = (j + 1) & (nc - 1);
        nt[j] = v;
    }
    if (b->ht) {
        pt_free(b->ht);
        pt_mem_release(P->cfg->mem, b->htcap * 8);
        b->charged -= b->htcap * 8;
    }
    b->ht = nt;
    b->htcap = nc;
    return PT_OK;
}

/* Index of text (s, n) in the local dictionary, inserting it; -1 on
 * failure (P->oom set), -2 when the dictionary has to be abandoned. */
static inline int64_t dict_index(pstate *P, pt__csv_col *b, const char *s, int64_t n) {
    if (b->ndict * 2 >= b->htcap && dict_grow(P, b) != PT_OK) return -1;
    uint64_t h = hash_inline(s, n);
    uint64_t tag = h >> 32 << 32, mask = (uint64_t)b->htcap - 1;
    int64_t j = (int64_t)(h & mask);
    for (;;) {
        uint64_t v = b->ht[j];
        if (!v) break;
        if ((v & 0xFFFFFFFF00000000ULL) == tag) {
            uint32_t e = (uint32_t)v - 1;
            int64_t o = b->doffs[e];
            if (b->doffs[e + 1] - o == n && (n == 0 || memcmp(b->dbytes + o, s, (size_t)n) == 0))
                return e;
        }
        j = (int64_t)(((uint64_t)j + 1) & mask);
    }
    if (P->cfg->dict_local_cap > 0 && b->ndict >= P->cfg->dict_local_cap) return -2;
    if (b->ndict + 1 >= b->dcap) {
        int64_t nc = b->dcap ? b->dcap * 2 : 256;
        if (resize(P->cfg, b, (void **)&b->doffs, b->dcap * 8, nc * 8, &P->oom) != PT_OK) return -1;
        if (b->dcap == 0) b->doffs[0] = 0;
        b->dcap = nc;
    }
    if (b->dnbytes + n > b->dbcap || !b->dbytes) {
        int64_t nc = b->dbcap ? b->dbcap : 1024;
        while (nc < b->dnbytes + n) nc *= 2;
        if (resize(P->cfg, b, (void **)&b->dbytes, b->dbcap, nc, &P->oom) != PT_OK) return -1;
        b->dbcap = nc;
    }
    save_undo(P, b);
    if (n) memcpy(b->dbytes + b->dnbytes, s, (size_t)n);
    b->dnbytes += n;
    int64_t e = b->ndict++;
    b->doffs[e + 1] = b->dnbytes;
    b->ht[j] = tag | (uint64_t)(e + 1);
    return e;
}

/* Removes the newest dictionary entries down to `keep` (they are the most
 * recent insertions, so deleting them in reverse keeps probe chains valid). */
static void dict_truncate(pt__csv_col *b, int64_t keep) {
    while (b->ndict > keep) {
        int64_t e = b->ndict - 1;
        const char *s = b->dbytes + b->doffs[e];
        int64_t n = b->doffs[e + 1] - b->doffs[e];
        uint64_t mask = (uint64_t)b->htcap - 1;
        int64_t j = (int64_t)(hash_inline(s, n) & mask);
        while (b->ht[j] && (uint32_t)b->ht[j] != (uint32_t)(e + 1))
            j = (int64_t)(((uint64_t)j + 1) & mask);
        b->ht[j] = 0;
        b->ndict = e;
        b->dnbytes = b->doffs[e];
    }
}

/* Stores a text value; validates UTF-8 on the raw bytes. Returns F_*. */
static inline int store_text(pstate *P, pt__csv_col *b, int64_t r, const field *f) {
    uint64_t hi = 0;
    int64_t i = 0;
    for (; i + 8 <= f->rawn; i += 8) {
        uint64_t w;
        memcpy(&w, f->raw + i, 8);
        hi |= w;
    }
    for (; i < f->rawn; i++) hi |= (uint8_t)f->raw[i];
    if ((hi & 0x8080808080808080ULL) && pt__csv_utf8_check(f->raw, f->rawn) >= 0) return F_UTF8;
    if (b->type == PT_TYPE_DICT) {
        int64_t e = dict_index(P, b, f->s, f->n);
        if (e == -1) return F_NOMEM;
        if (e == -2) {
            defer(P, b, PT_TYPE_UTF8, f->raw);
            b->abandoned = 1;
            return F_OK;
        }
        ((int32_t *)b->vals)[r] = (int32_t)e;
    } else {
        if (need_bytes(P->cfg, b, f->n, &P->oom) != PT_OK) return F_NOMEM;
        if (f->n) memcpy(b->bytes + b->nbytes, f->s, (size_t)f->n);
        b->nbytes += f->n;
        b->offs[r + 1] = b->nbytes;
    }
    set_valid(b, r);
    return F_OK;
}

/* Converts a non-null field to the builder's type; F_TYPE when it does not
 * fit (the caller defers or fails). */
static int store_value(pstate *P, pt__csv_col *b, int64_t r, const field *f) {
    switch (b->type) {
    case PT_TYPE_BOOL: {
        int v;
        if (!pt__csv_parse_bool(f->s, f->n, &v)) return F_TYPE;
        if (v)
            pt_bit_set(b->vals, r);
        else
            pt_bit_clear(b->vals, r);
        break;
    }
    case PT_TYPE_INT32: {
        int64_t v;
        if (pt__csv_parse_i64(f->s, f->n, &v) != 1 || v < INT32_MIN || v > INT32_MAX) return F_TYPE;
        ((int32_t *)b->vals)[r] = (int32_t)v;
        break;
    }
    case PT_TYPE_INT64: {
        int64_t v;
        if (pt__csv_parse_i64(f->s, f->n, &v) != 1) return F_TYPE;
        ((int64_t *)b->vals)[r] = v;
        break;
    }
    case PT_TYPE_FLOAT32: {
        float v;
        if (!pt__csv_parse_f32(f->s, f->n, &v)) return F_TYPE;
        ((float *)b->vals)[r] = v;
        break;
    }
    case PT_TYPE_FLOAT64: {
        double v;
        if (!pt__csv_parse_f64(f->s, f->n, &v)) return F_TYPE;
        ((double *)b->vals)[r] = v;
        break;
    }
    case PT_TYPE_UTF8:
    case PT_TYPE_DICT:
        return store_text(P, b, r, f);
    default: /* PT_TYPE_NULL holds no values */
        return F_TYPE;
    }
    set_valid(b, r);
    return F_OK;
}

/* The generic path for one field of a materialised column. */
static int field_generic(pstate *P, pt__csv_col *b, int64_t r, const char **pp, const char *end,
                         const char **bad) {
    field f;
    const char *next;
    pt__csv_chunk *ck = P->ck;
    int k = read_field(P->cfg, *pp, end, &f, &next, bad, &ck->scratch, &ck->scap, 1);
    if (k != F_OK) return k;
    const char *fs = *pp;
    *pp = next;
    int text = b->type == PT_TYPE_UTF8 || b->type == PT_TYPE_DICT;
    int isnull = (!f.quoted && (f.n == 0 || pt__csv_is_null_text(&P->cfg->nulls, f.s, f.n))) ||
                 (f.quoted && f.n == 0 && (!text || b->deferred));
    if (b->deferred) {
        if (isnull) return F_OK;
        pt_type c = pt__csv_classify(f.s, f.n);
        if (c == PT_TYPE_UTF8 && pt__csv_utf8_check(f.raw, f.rawn) >= 0) {
            *bad = f.raw + pt__csv_utf8_check(f.raw, f.rawn);
            P->errfield = f.raw;
            P->errlen = f.rawn;
            return F_UTF8;
        }
        if (pt__csv_join(b->need, c) != b->need) defer(P, b, c, fs);
        return F_OK;
    }
    if (isnull) return set_null(P, b, r) == PT_OK ? F_OK : F_NOMEM;
    k = store_value(P, b, r, &f);
    if (k == F_OK || k == F_NOMEM) return k;
    if (k == F_UTF8) {
        *bad = f.raw + pt__csv_utf8_check(f.raw, f.rawn);
        P->errfield = f.raw;
        P->errlen = f.rawn;
        return F_UTF8;
    }
    /* does not fit */
    P->errfield = f.s;
    P->errlen = f.n;
    *bad = fs;
    if (P->cfg->strict) return F_TYPE;
    pt_type c = pt__csv_classify(f.s, f.n);
    if (c == PT_TYPE_UTF8 && pt__csv_utf8_check(f.raw, f.rawn) >= 0) {
        *bad = f.raw + pt__csv_utf8_check(f.raw, f.rawn);
        P->errfield = f.raw;
        P->errlen = f.rawn;
        return F_UTF8;
    }
    defer(P, b, c, fs);
    return F_OK;
}

/* Skips a field of an unmaterialised column. */
static inline int field_skip(const pt__csv_cfg *cfg, const char **pp, const char *end,
                             const char **bad) {
    const char *p = *pp;
    if (p < end && *p == cfg->quote) {
        field f;
        const char *next;
        int k = read_field(cfg, p, end, &f, &next, bad, NULL, NULL, 0);
        if (k != F_OK) return k;
        *pp = next;
        return F_OK;
    }
    const char *q = scan_plain(cfg->cls, p, end);
    if (q < end && cfg->cls[(uint8_t)*q] == PT__CSV_QUOTE) {
        *bad = q;
        return F_STRAY_QUOTE;
    }
    *pp = q;
    return F_OK;
}

static int count_fields(const pt__csv_cfg *cfg, const char *row, const char *rend) {
    int n = 1, inq = 0;
    for (const char *p = row; p < rend; p++) {
        if (*p == cfg->quote)
            inq ^= 1;
        else if (*p == cfg->delim && !inq)
            n++;
    }
    return n;
}

/* Visible part of a row for messages: without its line end. */
static int64_t row_len(const char *row, const char *rend) {
    int64_t n = rend - row;
    if (n > 0 && row[n - 1] == '\n') n--;
    if (n > 0 && row[n - 1] == '\r') n--;
    return n;
}

/* Formats the message for a bad row into buf. Returns the status code. */
static pt_status describe(pstate *P, int kind, const char *row, const char *bad, const char *end,
                          char *buf, size_t cap) {
    const pt__csv_cfg *cfg = P->cfg;
    pt__csv_chunk *ck = P->ck;
    int64_t line, col;
    pt__csv_linecol(P->data + ck->start, ck->line0, bad, &line, &col);
    char show[256];
    const char *rend = pt__csv_row_end(row, end, cfg->quote);
    switch (kind) {
    case F_STRAY_QUOTE:
    case F_AFTER_QUOTE: {
        const char *fs = P->fstart ? P->fstart : row;
        const char *fe = bad;
        while (fe < rend && *fe != cfg->delim && *fe != '\n' && *fe != '\r') fe++;
        pt__csv_show(show, sizeof show, fs, fe - fs);
        if (kind == F_STRAY_QUOTE)
            snprintf(buf, cap,
                     "%s:%lld:%lld: quote character inside an unquoted field: %s (quote the "
                     "whole field and double the quotes inside, or choose another quote "
                     "character)",
                     cfg->name, (long long)line, (long long)col, show);
        else {
            char c[16];
            pt__csv_show(c, sizeof c, bad, 1);
            snprintf(buf, cap, "%s:%lld:%lld: unexpected character %s after a closing quote: %s",
                     cfg->name, (long long)line, (long long)col, c, show);
        }
        return PT_EPARSE;
    }
    case F_UNTERMINATED:
        pt__csv_show(show, sizeof show, bad, end - bad);
        snprintf(buf, cap, "%s:%lld:%lld: unterminated quoted field (the quote opened here): %s",
                 cfg->name, (long long)line, (long long)col, show);
        return PT_EPARSE;
    case F_FEW:
    case F_MANY:
        pt__csv_show(show, sizeof show, row, row_len(row, rend));
        snprintf(buf, cap, "%s:%lld:%lld: expected %d fields, found %d: %s", cfg->name,
                 (long long)line, (long long)col, cfg->ncols, count_fields(cfg, row, row + row_len(row, rend)),
                 show);
        return PT_EPARSE;
    case F_TYPE:
        pt__csv_show(show, sizeof show, P->errfield, P->errlen);
        snprintf(buf, cap, "%s:%lld:%lld: invalid %s %s in column '%s'", cfg->name,
                 (long long)line, (long long)col, pt_type_name(P->errtype), show,
                 cfg->names[P->errcol]);
        return PT_ETYPE;
    case F_UTF8:
        pt__csv_show(show, sizeof show, P->errfield, P->errlen);
        snprintf(buf, cap, "%s:%lld:%lld: invalid UTF-8 in column '%s': %s", cfg->name,
                 (long long)line, (long long)col, cfg->names[P->errcol], show);
        return PT_EPARSE;
    default:
        snprintf(buf, cap, "%s:%lld:%lld: internal parse error", cfg->name, (long long)line,
                 (long long)col);
        return PT_EINTERNAL;
    }
}

/* A bad row: fail the range, or (skip_bad_rows) record it and undo its
 * effects. Returns PT_OK when skipped. */
static pt_status bad_row(pstate *P, int kind, const char *row, const char *bad, const char *end) {
    pt__csv_chunk *ck = P->ck;
    if (kind == F_NOMEM) {
        ck->err = P->oom;
        return ck->err.code != PT_OK ? ck->err.code : PT_ENOMEM;
    }
    if (!P->cfg->skip_bad) {
        char msg[PT_ERROR_MSG_SIZE];
        pt_status s = describe(P, kind, row, bad, end, msg, sizeof msg);
        pt_error_set(&ck->err, s, "%s", msg);
        return s;
    }
    if (ck->nbad == 0) {
        ck->first_bad = pt_malloc(512);
        if (ck->first_bad) describe(P, kind, row, bad, end, ck->first_bad, 512);
        ck->first_bad_pos = row - P->data;
    }
    if (ck->nbad == ck->badcap) {
        int64_t nc = ck->badcap ? ck->badcap * 2 : 16;
        int64_t *nb = pt_realloc(ck->badpos, (size_t)nc * 8);
        if (!nb) return pt_error_set(&ck->err, PT_ENOMEM, "%s: out of memory", P->cfg->name);
        ck->badpos = nb;
        ck->badcap = nc;
    }
    ck->badpos[ck->nbad++] = row - P->data;
    /* undo what the row did */
    int64_t r = ck->nrows;
    for (int i = 0; P->undo && i < P->cfg->nout; i++) {
        pt__csv_col *b = &ck->cols[i];
        if (P->undo[i].row == P->row) {
            b->deferred = P->undo[i].deferred;
            b->abandoned = P->undo[i].abandoned;
            b->need = P->undo[i].need;
            b->text_pos = P->undo[i].text_pos;
            if (b->type == PT_TYPE_DICT) dict_truncate(b, P->undo[i].ndict);
        }
        if (b->type == PT_TYPE_UTF8 && b->offs && !b->deferred) b->nbytes = b->offs[r];
    }
    return PT_OK;
}

pt_status pt__csv_parse_chunk(const pt__csv_cfg *cfg, const char *data, pt__csv_chunk *ck,
                              const pt_type *types, const uint8_t *select) {
    const int ncols = cfg->ncols, nout = cfg->nout;
    const uint8_t *cls = cfg->cls;
    const char delim = cfg->delim;
    pstate P;
    memset(&P, 0, sizeof P);
    P.cfg = cfg;
    P.ck = ck;
    P.data = data;
    P.row = -1;
    /* A re-parse skips exactly the rows the first pass skipped. */
    const int64_t *skiplist = select ? ck->badpos : NULL;
    int64_t nskip = select ? ck->nbad : 0, si = 0;
    if (!select) {
        ck->nbad = 0;
    }
    ck->nrows = 0;
    pt__csv_col **colmap = pt_calloc((size_t)ncols + 1, sizeof *colmap);
    pt__csv_col **live = pt_calloc((size_t)nout + 1, sizeof *live);
    int *ocol = pt_calloc((size_t)ncols + 1, sizeof *ocol);
    if (cfg->skip_bad && !select) P.undo = pt_calloc((size_t)nout + 1, sizeof *P.undo);
    if (!ck->cols) ck->cols = pt_calloc((size_t)nout + 1, sizeof *ck->cols);
    if (!colmap || !live || !ocol || !ck->cols || (cfg->skip_bad && !select && !P.undo)) {
        pt_free(colmap);
        pt_free(live);
        pt_free(ocol);
        pt_free(P.undo);
        return pt_error_set(&ck->err, PT_ENOMEM, "%s: out of memory", cfg->name);
    }
    for (int i = 0; P.undo && i < nout; i++) P.undo[i].row = -1;
    int nlive = 0;
    for (int j = 0; j < ncols; j++) {
        int o = cfg->out_of_file[j];
        ocol[j] = o;
        if (o < 0 || (select && !select[o])) continue;
        pt__csv_col *b = &ck->cols[o];
        pt__csv_col_free(cfg, b);
        b->type = types[o];
        b->need = pt__csv_class_of(types[o]);
        b->text_pos = -1;
        colmap[j] = b;
        live[nlive++] = b;
    }
    pt_status st = PT_OK;
    const char *p = data + ck->start, *end = data + ck->end;
    {
        double per_row = cfg->avg_row > 1 ? cfg->avg_row : cfg->ncols * 4.0 + 4;
        int64_t est = (int64_t)((double)(ck->end - ck->start) / per_row * 1.1) + 16;
        ck->cap = 0;
        st = grow_rows(cfg, ck, live, nlive, est, &ck->err);
    }
    for (int i = 0; i < nlive && st == PT_OK; i++) {
        pt__csv_col *b = live[i];
        if (b->type == PT_TYPE_UTF8) {
            int64_t nb = (ck->end - ck->start) / (ncols > 0 ? ncols : 1) + 64;
            if (nb > ck->end - ck->start + 64) nb = ck->end - ck->start + 64;
            st = need_bytes(cfg, b, nb, &ck->err);
        }
    }
    const int blank_skip = cfg->blank_skip;
    while (st == PT_OK && p < end) {
        const char *row = p;
        if (si < nskip && row - data == skiplist[si]) {
            p = pt__csv_row_end(row, end, cfg->quote);
            si++;
            continue;
        }
        if (blank_skip) {
            if (*p == '\n') {
                p++;
                continue;
            }
            if (*p == '\r' && (p + 1 == end || p[1] == '\n')) {
                p += p + 1 == end ? 1 : 2;
                continue;
            }
        }
        if (ck->nrows == ck->cap) {
            st = grow_rows(cfg, ck, live, nlive, ck->cap * 2, &ck->err);
            if (st != PT_OK) break;
        }
        const int64_t r = ck->nrows;
        P.row = r;
        int kind = F_OK;
        const char *bad = NULL;
        for (int j = 0; j < ncols; j++) {
            pt__csv_col *b = colmap[j];
            P.fstart = p;
            if (!b) {
                kind = field_skip(cfg, &p, end, &bad);
                if (kind) goto badrow;
            } else {
                const pt_type t = b->deferred ? PT_TYPE_NULL : b->type;
                if (t == PT_TYPE_INT64) {
                    const char *q = p;
                    int neg = 0;
                    if (q < end && (*q == '-' || *q == '+')) {
                        neg = *q == '-';
                        q++;
                    }
                    const char *ds = q;
                    uint64_t v = 0;
                    while (q < end && (unsigned)(*q - '0') < 10u) {
                        v = v * 10 + (unsigned)(*q - '0');
                        q++;
                    }
                    if ((uint64_t)(q - ds) - 1 < 18 && is_term(cls, q, end) &&
                        !(cfg->nulls.n && pt__csv_is_null_text(&cfg->nulls, p, q - p))) {
                        ((int64_t *)b->vals)[r] = neg ? -(int64_t)v : (int64_t)v;
                        set_valid(b, r);
                        p = q;
                        goto field_done;
                    }
                } else if (t == PT_TYPE_FLOAT64) {
                    const char *q = p;
                    int neg = 0;
                    if (q < end && (*q == '-' || *q == '+')) {
                        neg = *q == '-';
                        q++;
                    }
                    uint64_t m = 0;
                    int nd = 0, any = 0;
                    int e = 0;
                    while (q < end && (unsigned)(*q - '0') < 10u) {
                        m = m * 10 + (unsigned)(*q - '0');
                        nd += m != 0;
                        any = 1;
                        q++;
                    }
                    if (q < end && *q == '.') {
                        q++;
                        while (q < end && (unsigned)(*q - '0') < 10u) {
                            m = m * 10 + (unsigned)(*q - '0');
                            nd += m != 0;
                            e--;
                            any = 1;
                            q++;
                        }
                    }
                    if (any && nd <= 15 && e >= -22 && is_term(cls, q, end) &&
                        !(cfg->nulls.n && pt__csv_is_null_text(&cfg->nulls, p, q - p))) {
                        double d = (double)m;
                        d = d / k_pow10[-e];
                        ((double *)b->vals)[r] = neg ? -d : d;
                        set_valid(b, r);
                        p = q;
                        goto field_done;
                    }
                } else if (t == PT_TYPE_UTF8 || t == PT_TYPE_DICT) {
                    if (p < end && *p != cfg->quote) {
                        const char *q = scan_plain(cls, p, end);
                        if (q > p && (q == end || cls[(uint8_t)*q] != PT__CSV_QUOTE) &&
                            !(cfg->nulls.n && pt__csv_is_null_text(&cfg->nulls, p, q - p))) {
                            field f;
                            f.s = f.raw = p;
                            f.n = f.rawn = q - p;
                            f.quoted = 0;
                            int k = store_text(&P, b, r, &f);
                            if (k == F_OK) {
                                p = q;
                                goto field_done;
                            }
                            if (k == F_NOMEM) {
                                kind = k;
                                goto badrow;
                            }
                            /* invalid UTF-8: the generic path reports it */
                        }
                    }
                }
                {
                    const char *fs = p;
                    kind = field_generic(&P, b, r, &p, end, &bad);
                    if (kind) {
                        P.errcol = ocol[j];
                        P.errtype = b->type;
                        if (kind == F_TYPE) bad = fs;
                        goto badrow;
                    }
                }
            }
        field_done:
            if (j + 1 < ncols) {
                if (p < end && *p == delim) {
                    p++;
                    continue;
                }
                kind = F_FEW;
                bad = p;
                goto badrow;
            }
            if (p < end) {
                if (*p == '\n')
                    p++;
                else if (*p == '\r')
                    p += (p + 1 < end && p[1] == '\n') ? 2 : 1;
                else {
                    kind = F_MANY;
                    bad = p + 1;
                    goto badrow;
                }
            }
        }
        ck->nrows++;
        continue;
    badrow:
        st = bad_row(&P, kind, row, bad, end);
        if (st != PT_OK) break;
        p = pt__csv_row_end(row, end, cfg->quote);
    }
    (void)nlive;
    pt_free(colmap);
    pt_free(live);
    pt_free(ocol);
    pt_free(P.undo);
    ck->status = st;
    return st;
}
