/*
 * csv_infer.c - what the CSV reader learns from the start of the input
 * before the parallel parse: the delimiter (sniffed among , ; \t | when not
 * given), whether the first row is a header, the column names, and each
 * column's type from a sample of rows (bool, int64, float64, utf8, or a
 * dictionary for low-cardinality text; null when the sample holds no value).
 */
#include <stdio.h>
#include <stdlib.h>

#include "io/csv_internal.h"

void pt__csv_set_classes(pt__csv_cfg *cfg) {
    memset(cfg->cls, PT__CSV_NORMAL, sizeof cfg->cls);
    cfg->cls[(uint8_t)'\n'] = PT__CSV_NL;
    cfg->cls[(uint8_t)'\r'] = PT__CSV_CR;
    cfg->cls[(uint8_t)cfg->quote] = PT__CSV_QUOTE;
    cfg->cls[(uint8_t)cfg->delim] = PT__CSV_DELIM;
}

/* Count of `c` outside quotes in the row [p, e). */
static int64_t count_outside(const char *p, const char *e, char c, char quote) {
    int inq = 0;
    int64_t n = 0;
    for (; p < e; p++) {
        if (*p == quote)
            inq ^= 1;
        else if (*p == c && !inq)
            n++;
    }
    return n;
}

static char sniff(const char *data, int64_t len, char quote) {
    static const char cands[4] = {',', ';', '\t', '|'};
    const char *p = data, *end = data + (len < (1 << 20) ? len : (1 << 20));
    const char *rows[21];
    int m = 0;
    while (p < end && m < 20) {
        const char *e = pt__csv_row_end(p, end, quote);
        if (e == end && end != data + len && m > 0) break; /* partial row */
        rows[m++] = p;
        p = e;
    }
    rows[m] = p;
    char best = ',';
    int64_t best_cons = 0, best_k = 0;
    for (int c = 0; c < 4; c++) {
        int64_t k1 = -1, cons = 0;
        for (int i = 0; i < m; i++) {
            /* blank lines say nothing */
            if (rows[i + 1] - rows[i] <= 2 && (rows[i][0] == '\n' || rows[i][0] == '\r')) continue;
            int64_t k = count_outside(rows[i], rows[i + 1], cands[c], quote);
            if (k1 < 0) k1 = k;
            if (k == k1) cons++;
        }
        if (k1 <= 0) continue;
        if (cons > best_cons || (cons == best_cons && k1 > best_k)) {
            best = cands[c];
            best_cons = cons;
            best_k = k1;
        }
    }
    return best;
}

/* A growable list of the fields of one row (copied). */
typedef struct rowbuf {
    char *text;
    int64_t n, cap;
    int64_t *off; /* nf + 1 */
    int *quoted;
    int nf, fcap;
} rowbuf;

static int rowbuf_add(rowbuf *rb, const char *s, int64_t n, int quoted) {
    if (rb->nf + 2 > rb->fcap) {
        int nc = rb->fcap ? rb->fcap * 2 : 16;
        int64_t *no = pt_realloc(rb->off, (size_t)nc * sizeof *no);
        if (!no) return 0;
        rb->off = no;
        int *nq = pt_realloc(rb->quoted, (size_t)nc * sizeof *nq);
        if (!nq) return 0;
        rb->quoted = nq;
        rb->fcap = nc;
    }
    if (rb->n + n > rb->cap || !rb->text) {
        int64_t nc = rb->cap ? rb->cap : 256;
        while (nc < rb->n + n) nc *= 2;
        char *nt = pt_realloc(rb->text, (size_t)nc);
        if (!nt) return 0;
        rb->text = nt;
        rb->cap = nc;
    }
    if (rb->nf == 0) rb->off[0] = 0;
    if (n) memcpy(rb->text + rb->n, s, (size_t)n);
    rb->n += n;
    rb->quoted[rb->nf] = quoted;
    rb->off[++rb->nf] = rb->n;
    return 1;
}

static void rowbuf_free(rowbuf *rb) {
    pt_free(rb->text);
    pt_free(rb->off);
    pt_free(rb->quoted);
    memset(rb, 0, sizeof *rb);
}

enum { ROW_OK = 0, ROW_BAD = 1, ROW_PARTIAL = 2, ROW_NOMEM = 3 };

/* Tokenises the row at p into rb. *next is the start of the next row. On a
 * malformed row *bad is the offending byte. ROW_PARTIAL: the row runs into
 * the end of an incomplete window. */
static int read_row(const pt__csv_cfg *cfg, const char *p, const char *end, int complete,
                    rowbuf *rb, const char **next, const char **bad, char **scratch,
                    int64_t *scap) {
    rb->nf = 0;
    rb->n = 0;
    for (;;) {
        const char *s;
        int64_t n;
        int q;
        const char *e = pt__csv_field(cfg, p, end, &s, &n, &q, scratch, scap, bad);
        if (!e) {
            if (!complete) return ROW_PARTIAL;
            return ROW_BAD;
        }
        if (!rowbuf_add(rb, s, n, q)) return ROW_NOMEM;
        if (e < end && *e == cfg->delim) {
            p = e + 1;
            continue;
        }
        if (e == end) {
            if (!complete) return ROW_PARTIAL;
            *next = e;
        } else if (*e == '\n')
            *next = e + 1;
        else /* '\r' of a line end */
            *next = (e + 1 < end && e[1] == '\n') ? e + 2 : e + 1;
        return ROW_OK;
    }
}

/* A capped set of distinct texts. */
typedef struct strset {
    uint64_t *h;  /* hash | 1, 0 = empty */
    int64_t *off; /* entry -> offset in text */
    char *text;
    int64_t cap, n, tn, tcap, limit;
} strset;

static void strset_add(strset *ss, const char *s, int64_t n) {
    if (ss->n > ss->limit) return;
    if (ss->n * 2 + 2 > ss->cap) {
        int64_t nc = ss->cap ? ss->cap * 2 : 256;
        uint64_t *nh = pt_calloc((size_t)nc, 8);
        int64_t *no = pt_calloc((size_t)nc, 8);
        if (!nh || !no) {
            pt_free(nh);
            pt_free(no);
            ss->n = ss->limit + 1; /* give up: counts as many */
            return;
        }
        for (int64_t i = 0; i < ss->cap; i++) {
            if (!ss->h[i]) continue;
            int64_t j = (int64_t)(ss->h[i] & (uint64_t)(nc - 1));
            while (nh[j]) j = (j + 1) & (nc - 1);
            nh[j] = ss->h[i];
            no[j] = ss->off[i];
        }
        pt_free(ss->h);
        pt_free(ss->off);
        ss->h = nh;
        ss->off = no;
        ss->cap = nc;
    }
    uint64_t h = pt__csv_hash(s, n) | 1;
    int64_t j = (int64_t)(h & (uint64_t)(ss->cap - 1));
    while (ss->h[j]) {
        if (ss->h[j] == h) {
            int64_t o = ss->off[j];
            int64_t l;
            memcpy(&l, ss->text + o, 8);
            if (l == n && (n == 0 || memcmp(ss->text + o + 8, s, (size_t)n) == 0)) return;
        }
        j = (j + 1) & (ss->cap - 1);
    }
    if (ss->tn + n + 8 > ss->tcap) {
        int64_t nc = ss->tcap ? ss->tcap * 2 : 4096;
        while (nc < ss->tn + n + 8) nc *= 2;
        char *nt = pt_realloc(ss->text, (size_t)nc);
        if (!nt) {
            ss->n = ss->limit + 1;
            return;
        }
        ss->text = nt;
        ss->tcap = nc;
    }
    memcpy(ss->text + ss->tn, &n, 8);
    if (n) memcpy(ss->text + ss->tn + 8, s, (size_t)n);
    ss->h[j] = h;
    ss->off[j] = ss->tn;
    ss->tn += n + 8;
    ss->n++;
}

static void strset_free(strset *ss) {
    pt_free(ss->h);
    pt_free(ss->off);
    pt_free(ss->text);
}

void pt__csv_head_free(pt__csv_head *h) {
    if (h->names)
        for (int i = 0; i < h->ncols; i++) pt_free(h->names[i]);
    pt_free(h->names);
    pt_free(h->types);
    memset(h, 0, sizeof *h);
}

static int is_blank_line(const char *p, const char *end) {
    return p < end && (*p == '\n' || (*p == '\r' && (p + 1 == end || p[1] == '\n')));
}

static const char *skip_blank_line(const char *p, const char *end) {
    if (*p == '\n') return p + 1;
    return (p + 1 < end) ? p + 2 : p + 1;
}

/* Fills names from the header row: empty names become c<i>, repeated
 * names get a _<k> suffix. */
static pt_status make_names(pt__csv_head *h, const rowbuf *hdr, const char *name, pt_error *err) {
    h->names = pt_calloc((size_t)h->ncols, sizeof *h->names);
    if (!h->names) return pt_error_set(err, PT_ENOMEM, "%s: out of memory", name);
    for (int j = 0; j < h->ncols; j++) {
        char buf[64];
        const char *s = buf;
        int64_t n;
        if (hdr && hdr->off[j + 1] > hdr->off[j]) {
            s = hdr->text + hdr->off[j];
            n = hdr->off[j + 1] - hdr->off[j];
            int64_t bad = pt__csv_utf8_check(s, n);
            if (bad >= 0) {
                char show[128];
                pt__csv_show(show, sizeof show, s, n);
                return pt_error_set(err, PT_EPARSE, "%s: invalid UTF-8 in the name of column %d: %s",
                                    name, j + 1, show);
            }
        } else {
            n = snprintf(buf, sizeof buf, "c%d", j);
        }
        char *nm = pt_strndup(s, (size_t)n);
        if (!nm) return pt_error_set(err, PT_ENOMEM, "%s: out of memory", name);
        /* de-duplicate */
        for (int k = 1;; k++) {
            int dup = 0;
            for (int i = 0; i < j && !dup; i++) dup = strcmp(h->names[i], nm) == 0;
            if (!dup) break;
            size_t l = (size_t)n + 24;
            char *nn = pt_malloc(l);
            if (!nn) {
                pt_free(nm);
                return pt_error_set(err, PT_ENOMEM, "%s: out of memory", name);
            }
            snprintf(nn, l, "%.*s_%d", (int)n, s, k);
            pt_free(nm);
            nm = nn;
        }
        h->names[j] = nm;
    }
    return PT_OK;
}

pt_status pt__csv_head_read(const char *name, const char *data, int64_t len, int complete,
                            const pt_csv_opts *opts, pt__csv_head *h, pt_error *err) {
    memset(h, 0, sizeof *h);
    const char *end = data + len, *p = data;
    int64_t line = 1;
    while (is_blank_line(p, end)) {
        p = skip_blank_line(p, end);
        line++;
    }
    if (p == end) {
        if (!complete) {
            h->need_more = 1;
            return PT_OK;
        }
        return pt_error_set(err, PT_EEMPTY, "%s: empty file", name);
    }
    pt__csv_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.name = name;
    cfg.quote = opts->quote;
    cfg.delim = opts->delimiter ? opts->delimiter : sniff(p, end - p, opts->quote);
    pt__csv_set_classes(&cfg);
    h->delim = cfg.delim;

    rowbuf first = {0}, rb = {0};
    char *scratch = NULL;
    int64_t scap = 0;
    pt_status st = PT_OK;
    strset *sets = NULL;
    pt__csv_sample_col *sc = NULL;
    const char *next = NULL, *bad = NULL;
    const char *row0 = p;
    int k = read_row(&cfg, p, end, complete, &first, &next, &bad, &scratch, &scap);
    if (k == ROW_PARTIAL) {
        h->need_more = 1;
        goto done;
    }
    if (k == ROW_NOMEM) {
        st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", name);
        goto done;
    }
    if (k == ROW_BAD) {
        /* The main parse gives the precise message; here the first row
         * cannot be tokenised at all, so say where. */
        int64_t l, c;
        pt__csv_linecol(data, 1, bad, &l, &c);
        char show[128];
        const char *re = pt__csv_row_end(row0, end, cfg.quote);
        pt__csv_show(show, sizeof show, row0, re - row0);
        st = pt_error_set(err, PT_EPARSE, "%s:%lld:%lld: malformed first row (%s): %s", name,
                          (long long)l, (long long)c,
                          *bad == cfg.quote && bad == row0 ? "unterminated quote"
                                                           : "misplaced quote",
                          show);
        goto done;
    }
    h->ncols = first.nf;
    const pt_schema *schema = opts->schema;
    if (schema && schema->nfields != h->ncols) {
        st = pt_error_set(err, PT_EINVAL,
                          "%s: the schema has %d fields but the file has %d columns (first row "
                          "at line %lld)",
                          name, schema->nfields, h->ncols, (long long)line);
        goto done;
    }

    /* Sample the rows after the first one. */
    int64_t want = opts->sample_rows > 0 ? opts->sample_rows : 10000;
    int64_t dict_limit = want / 10 > 1000 ? want / 10 : 1000;
    sets = pt_calloc((size_t)h->ncols, sizeof *sets);
    sc = pt_calloc((size_t)h->ncols, sizeof *sc);
    if (!sets || !sc) {
        st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", name);
        goto done;
    }
    for (int j = 0; j < h->ncols; j++) sets[j].limit = dict_limit;
    int64_t nsample = 0;
    const char *sp = next, *sample_end = next;
    while (sp < end && nsample < want) {
        if (h->ncols > 1 && is_blank_line(sp, end)) {
            sp = skip_blank_line(sp, end);
            continue;
        }
        const char *nx;
        k = read_row(&cfg, sp, end, complete, &rb, &nx, &bad, &scratch, &scap);
        if (k == ROW_NOMEM) {
            st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", name);
            goto done;
        }
        if (k != ROW_OK) break; /* the main parse reports it */
        sp = nx;
        if (rb.nf != h->ncols) continue; /* ragged: reported by the parse */
        for (int j = 0; j < h->ncols; j++) {
            const char *s = rb.text + rb.off[j];
            int64_t n = rb.off[j + 1] - rb.off[j];
            if (n == 0) continue;
            if (!rb.quoted[j] && opts->null_values) {
                int isnull = 0;
                for (const char *const *v = opts->null_values; *v && !isnull; v++)
                    isnull = (int64_t)strlen(*v) == n && memcmp(*v, s, (size_t)n) == 0;
                if (isnull) continue;
            }
            pt_type c = pt__csv_classify(s, n);
            sc[j].cls = pt__csv_join(sc[j].cls, c);
            sc[j].nonnull++;
            strset_add(&sets[j], s, n);
        }
        nsample++;
        sample_end = sp;
    }
    h->sample_rows = nsample;
    h->avg_row = nsample > 0 ? (double)(sample_end - next) / (double)nsample : 0;

    /* Header? */
    int has_header = opts->header;
    if (has_header < 0) {
        has_header = 0;
        if (schema) {
            int same = 1, misfit = 0;
            for (int j = 0; j < h->ncols; j++) {
                const char *s = first.text + first.off[j];
                int64_t n = first.off[j + 1] - first.off[j];
                if ((int64_t)strlen(schema->fields[j].name) != n ||
                    memcmp(schema->fields[j].name, s, (size_t)n) != 0)
                    same = 0;
                pt_type t = pt__csv_class_of(schema->fields[j].type);
                if (n > 0 && (t == PT_TYPE_BOOL || t == PT_TYPE_INT64 || t == PT_TYPE_FLOAT64) &&
                    pt__csv_join(t, pt__csv_classify(s, n)) != t)
                    misfit = 1;
            }
            has_header = same || misfit;
        } else {
            int anytext_vs_num = 0, alltext = 1, anyname = 0;
            for (int j = 0; j < h->ncols; j++) {
                const char *s = first.text + first.off[j];
                int64_t n = first.off[j + 1] - first.off[j];
                if (n == 0) continue;
                pt_type c = pt__csv_classify(s, n);
                if (c != PT_TYPE_UTF8) alltext = 0;
                if (c == PT_TYPE_UTF8) anyname = 1;
                pt_type t = sc[j].cls;
                if (c == PT_TYPE_UTF8 &&
                    (t == PT_TYPE_BOOL || t == PT_TYPE_INT64 || t == PT_TYPE_FLOAT64))
                    anytext_vs_num = 1;
            }
            has_header = anytext_vs_num || (alltext && anyname);
        }
    }
    h->has_header = has_header;
    if (has_header) {
        h->body = next - data;
        h->body_line = line + pt__csv_count_nl(row0, next - row0);
    } else {
        h->body = row0 - data;
        h->body_line = line;
        /* the first row is data: add it to the sample */
        for (int j = 0; j < h->ncols; j++) {
            const char *s = first.text + first.off[j];
            int64_t n = first.off[j + 1] - first.off[j];
            if (n == 0) continue;
            int isnull = 0;
            for (const char *const *v = opts->null_values; v && *v && !isnull && !first.quoted[j]; v++)
                isnull = (int64_t)strlen(*v) == n && memcmp(*v, s, (size_t)n) == 0;
            if (isnull) continue;
            sc[j].cls = pt__csv_join(sc[j].cls, pt__csv_classify(s, n));
            sc[j].nonnull++;
            strset_add(&sets[j], s, n);
        }
        h->sample_rows++;
    }
    if (schema) {
        h->names = pt_calloc((size_t)h->ncols, sizeof *h->names);
        if (!h->names) {
            st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", name);
            goto done;
        }
        for (int j = 0; j < h->ncols; j++) {
            h->names[j] = pt_strdup(schema->fields[j].name ? schema->fields[j].name : "");
            if (!h->names[j]) {
                st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", name);
                goto done;
            }
        }
    } else {
        st = make_names(h, has_header ? &first : NULL, name, err);
        if (st != PT_OK) goto done;
    }
    h->types = pt_calloc((size_t)h->ncols, sizeof *h->types);
    if (!h->types) {
        st = pt_error_set(err, PT_ENOMEM, "%s: out of memory", name);
        goto done;
    }
    int64_t rows_limit = h->sample_rows / 10 > 1000 ? h->sample_rows / 10 : 1000;
    for (int j = 0; j < h->ncols; j++) {
        if (schema) {
            h->types[j] = schema->fields[j].type;
            continue;
        }
        pt_type t = sc[j].cls;
        if (t == PT_TYPE_UTF8 && opts->dict_strings && sets[j].n <= rows_limit) t = PT_TYPE_DICT;
        h->types[j] = t;
    }
done:
    if (sets)
        for (int j = 0; j < h->ncols; j++) strset_free(&sets[j]);
    pt_free(sets);
    pt_free(sc);
    rowbuf_free(&first);
    rowbuf_free(&rb);
    pt_free(scratch);
    if (st != PT_OK) pt__csv_head_free(h);
    return st;
}
