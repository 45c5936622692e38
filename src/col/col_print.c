/*
 * col_print.c - text rendering of cells and tables in the manner of pandas'
 * head(): a row-number column, names and types as a header, numbers aligned
 * right and text left, long cells cut with "...", long tables elided in the
 * middle, and a "[N rows x M columns]" footer.
 *
 * Widths are counted in UTF-8 code points so that accented names line up;
 * control characters in text are escaped so one row stays one line.
 */
#include <string.h>

#include "col/col_internal.h"

void pt_print_opts_init(pt_print_opts *o) {
    o->max_rows = 10;
    o->max_width = 24;
    o->show_types = 1;
    o->float_digits = 6;
}

const char *pt_column_format(const pt_column *c, int64_t i, int float_digits, char *buf,
                             size_t cap) {
    if (!buf || cap == 0) return buf;
    if (c->type == PT_TYPE_NULL || !pt_column_is_valid(c, i)) {
        snprintf(buf, cap, "null");
        return buf;
    }
    switch (c->type) {
    case PT_TYPE_BOOL: snprintf(buf, cap, "%s", pt_column_bool(c, i) ? "true" : "false"); break;
    case PT_TYPE_INT32: snprintf(buf, cap, "%d", (int)pt_column_i32(c)[i]); break;
    case PT_TYPE_INT64: snprintf(buf, cap, "%lld", (long long)pt_column_i64(c)[i]); break;
    case PT_TYPE_FLOAT32: pt__format_double(pt_column_f32(c)[i], float_digits, true, buf, cap); break;
    case PT_TYPE_FLOAT64: pt__format_double(pt_column_f64(c)[i], float_digits, false, buf, cap); break;
    case PT_TYPE_UTF8:
    case PT_TYPE_DICT: {
        int64_t len;
        const char *s = pt_column_str(c, i, &len);
        if ((size_t)len >= cap) len = (int64_t)cap - 1;
        memcpy(buf, s, (size_t)len);
        buf[len] = 0;
        break;
    }
    default: snprintf(buf, cap, "?");
    }
    return buf;
}

#define CELL_CAP 512

/* Makes display text from raw text: control characters escaped, cut to
 * `max_width` code points with a trailing "...". Returns the width. */
static int display_text(const char *s, int64_t len, int max_width, char *out) {
    if (max_width < 4) max_width = 4;
    int width = 0;
    size_t n = 0;
    /* Positions where the text would be cut, to back up to for "...". */
    size_t cut_n = 0;
    int cut_w = 0;
    int64_t k = 0;
    for (; k < len && n + 8 < CELL_CAP; k++) {
        unsigned char ch = (unsigned char)s[k];
        if ((ch & 0xC0) == 0x80) { /* continuation byte: same code point */
            out[n++] = (char)ch;
            continue;
        }
        if (width <= max_width - 3) {
            cut_n = n;
            cut_w = width;
        }
        if (width == max_width) break;
        if (ch < 0x20 || ch == 0x7f) {
            const char *esc = ch == '\n' ? "\\n" : ch == '\t' ? "\\t" : ch == '\r' ? "\\r" : "?";
            size_t el = strlen(esc);
            if (width + (int)el > max_width) break;
            memcpy(out + n, esc, el);
            n += el;
            width += (int)el;
        } else {
            out[n++] = (char)ch;
            width++;
        }
    }
    if (k < len) { /* text left over: cut and mark */
        if (width > max_width - 3) {
            n = cut_n;
            width = cut_w;
        }
        memcpy(out + n, "...", 3);
        n += 3;
        width += 3;
    }
    out[n] = 0;
    return width;
}

static int cell(const pt_column *c, int64_t i, const pt_print_opts *o, char *out) {
    char raw[CELL_CAP];
    if (pt_type_is_string(c->type) && pt_column_is_valid(c, i)) {
        int64_t len;
        const char *s = pt_column_str(c, i, &len);
        return display_text(s, len, o->max_width, out);
    }
    pt_column_format(c, i, o->float_digits, raw, sizeof raw);
    return display_text(raw, (int64_t)strlen(raw), o->max_width, out);
}

static void pad(FILE *f, int n) {
    for (; n > 0; n--) fputc(' ', f);
}

/* Writes `text` (display width w) in a field of `width`; the last field of
 * a line is not padded on the right so lines carry no trailing blanks. */
static void put_field(FILE *f, const char *text, int w, int width, bool right, bool last) {
    if (right) pad(f, width - w);
    fputs(text, f);
    if (!right && !last) pad(f, width - w);
}

pt_status pt_table_print(const pt_table *t, FILE *out, const pt_print_opts *opts, pt_error *err) {
    if (!t || !out) return pt_error_set(err, PT_EINVAL, "pt_table_print: table and out are required");
    pt_print_opts o;
    if (opts) o = *opts;
    else pt_print_opts_init(&o);
    int nc = t->schema->nfields;
    int64_t nrows = t->nrows;
    int64_t head = nrows, tail = 0;
    bool elide = o.max_rows >= 0 && nrows > o.max_rows;
    if (elide) {
        head = (o.max_rows + 1) / 2;
        tail = o.max_rows / 2;
    }
    int *width = pt_calloc((size_t)nc + 1, sizeof *width);
    if (!width) return pt_error_set(err, PT_ENOMEM, "out of memory printing a table");
    char text[CELL_CAP];
    /* Column 0 of `width` is the row number column. */
    {
        char num[32];
        width[0] = snprintf(num, sizeof num, "%lld", (long long)(nrows > 0 ? nrows - 1 : 0));
        if (elide && width[0] < 3) width[0] = 3;
    }
    for (int j = 0; j < nc; j++) {
        const pt_column *c = t->cols[j];
        int w = display_text(t->schema->fields[j].name, (int64_t)strlen(t->schema->fields[j].name),
                             o.max_width, text);
        if (o.show_types && (int)strlen(pt_type_name(c->type)) > w) w = (int)strlen(pt_type_name(c->type));
        if (elide && w < 3) w = 3;
        for (int64_t r = 0; r < head + tail; r++) {
            int64_t i = r < head ? r : nrows - tail + (r - head);
            int cw = cell(c, i, &o, text);
            if (cw > w) w = cw;
        }
        width[j + 1] = w;
    }
    /* Header: names, then types. */
    if (nc > 0) {
        pad(out, width[0]);
        for (int j = 0; j < nc; j++) {
            bool right = !pt_type_is_string(t->cols[j]->type);
            const char *name = t->schema->fields[j].name;
            int w = display_text(name, (int64_t)strlen(name), o.max_width, text);
            fputs("  ", out);
            put_field(out, text, w, width[j + 1], right, j == nc - 1);
        }
        fputc('\n', out);
        if (o.show_types) {
            pad(out, width[0]);
            for (int j = 0; j < nc; j++) {
                bool right = !pt_type_is_string(t->cols[j]->type);
                const char *tn = pt_type_name(t->cols[j]->type);
                fputs("  ", out);
                put_field(out, tn, (int)strlen(tn), width[j + 1], right, j == nc - 1);
            }
            fputc('\n', out);
        }
    }
    for (int64_t r = 0; r < head + tail && nc > 0; r++) {
        int64_t i = r < head ? r : nrows - tail + (r - head);
        if (elide && r == head) {
            put_field(out, "...", 3, width[0], false, nc == 0);
            for (int j = 0; j < nc; j++) {
                fputs("  ", out);
                put_field(out, "...", 3, width[j + 1], !pt_type_is_string(t->cols[j]->type),
                          j == nc - 1);
            }
            fputc('\n', out);
        }
        char num[32];
        int nw = snprintf(num, sizeof num, "%lld", (long long)i);
        put_field(out, num, nw, width[0], false, false);
        for (int j = 0; j < nc; j++) {
            const pt_column *c = t->cols[j];
            int w = cell(c, i, &o, text);
            fputs("  ", out);
            put_field(out, text, w, width[j + 1], !pt_type_is_string(c->type), j == nc - 1);
        }
        fputc('\n', out);
    }
    if (elide && head + tail == 0 && nc > 0) fputs("...\n", out);
    fprintf(out, "[%lld rows x %d columns]\n", (long long)nrows, nc);
    pt_free(width);
    if (ferror(out)) return pt_error_set(err, PT_EIO, "pt_table_print: write failed");
    return PT_OK;
}
