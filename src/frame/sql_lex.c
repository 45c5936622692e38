/*
 * sql_lex.c - the SQL lexer, the per-call arena, and error messages that
 * quote the offending line of the query with a caret under the position.
 *
 * The whole query is tokenized up front: the parser needs two tokens of
 * lookahead (to tell an implicit alias from a misspelt keyword), and errors
 * are reported from byte offsets, so tokens only keep offsets; line and
 * column are worked out when a message is written.
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "frame/sql.h"

/* ------------------------------------------------------------------------ */
/* Arena                                                                    */
/* ------------------------------------------------------------------------ */

struct pt__sql_block {
    pt__sql_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *pt__sql_alloc(pt__sql_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    pt__sql_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 8192 ? n : 8192;
        b = pt_malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *pt__sql_strndup(pt__sql_arena *a, const char *s, size_t n) {
    char *d = pt__sql_alloc(a, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void pt__sql_arena_free(pt__sql_arena *a) {
    pt__sql_block *b = a->head;
    while (b) {
        pt__sql_block *next = b->next;
        pt_free(b);
        b = next;
    }
    a->head = NULL;
}

void pt__sql_release(pt__sql *s) {
    pt_free(s->toks);
    s->toks = NULL;
    s->ntoks = 0;
    pt__sql_arena_free(&s->arena);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

static const char *const kw_names[] = {
    "",
#define PT__KW_NAME(k) #k,
    PT__SQL_KEYWORDS(PT__KW_NAME)
#undef PT__KW_NAME
};

const char *pt__sql_kw_name(int kw) {
    return kw > 0 && kw < PT_KW_COUNT_ ? kw_names[kw] : "?";
}

/* Lines longer than this are shown as a window around the position. */
#define SHOW_MAX 160

/* Appends the line holding `off` and a caret line to buf; returns the line
 * and column (1-based, counted in characters) through *line, *col. */
static void context_lines(const char *src, size_t len, size_t off, char *buf, size_t cap,
                          int *line, int *col) {
    if (off > len) off = len;
    size_t ls = 0;
    int ln = 1;
    for (size_t i = 0; i < off; i++) {
        if (src[i] == '\n') {
            ln++;
            ls = i + 1;
        }
    }
    size_t le = off;
    while (le < len && src[le] != '\n') le++;
    size_t show_end = le;
    while (show_end > ls && show_end > off && src[show_end - 1] == '\r') show_end--;
    int c = 1;
    for (size_t i = ls; i < off; i++)
        if (((unsigned char)src[i] & 0xC0) != 0x80) c++;
    *line = ln;
    *col = c;
    /* Window: keep the position visible on very long lines; never split a
     * UTF-8 sequence so that the caret stays aligned. */
    size_t ws = ls, we = show_end;
    bool cut_l = false, cut_r = false;
    if (we - ws > SHOW_MAX) {
        if (off - ws > SHOW_MAX / 2) {
            ws = off - SHOW_MAX / 2;
            while (ws < off && ((unsigned char)src[ws] & 0xC0) == 0x80) ws++;
            cut_l = true;
        }
        if (we - ws > SHOW_MAX) {
            we = ws + SHOW_MAX;
            while (we > off && we < len && ((unsigned char)src[we] & 0xC0) == 0x80) we--;
            cut_r = true;
        }
    }
    size_t n = strlen(buf);
#define PUT(ch)                                  \
    do {                                         \
        if (n + 1 < cap) buf[n++] = (char)(ch); \
    } while (0)
    PUT('\n');
    if (cut_l) {
        PUT('.');
        PUT('.');
        PUT('.');
    }
    for (size_t i = ws; i < we; i++) {
        unsigned char ch = (unsigned char)src[i];
        PUT(ch < 0x20 && ch != '\t' ? ' ' : ch);
    }
    if (cut_r) {
        PUT('.');
        PUT('.');
        PUT('.');
    }
    PUT('\n');
    if (cut_l) {
        PUT(' ');
        PUT(' ');
        PUT(' ');
    }
    for (size_t i = ws; i < off; i++) {
        unsigned char ch = (unsigned char)src[i];
        if ((ch & 0xC0) == 0x80) continue;
        PUT(ch == '\t' ? '\t' : ' ');
    }
    PUT('^');
    buf[n < cap ? n : cap - 1] = '\0';
#undef PUT
}

/* Room kept for the two context lines (window, marks, caret). */
#define CONTEXT_ROOM (2 * (SHOW_MAX + 8) + 4)

static pt_status set_located(pt__sql *s, pt_status code, size_t off, const char *lead,
                             const char *msg) {
    if (!s->err) return code;
    char ctx[CONTEXT_ROOM + 1];
    ctx[0] = '\0';
    int line, col;
    context_lines(s->src, s->len, off, ctx, sizeof ctx, &line, &col);
    char head[96];
    snprintf(head, sizeof head, "%sline %d, column %d: ", lead, line, col);
    size_t hl = strlen(head), ml = strlen(msg), cl = strlen(ctx);
    size_t room = PT_ERROR_MSG_SIZE - 1 - hl - cl;
    char *out = s->err->msg;
    memcpy(out, head, hl);
    if (ml > room) {
        memcpy(out + hl, msg, room - 3);
        memcpy(out + hl + room - 3, "...", 3);
        ml = room;
    } else {
        memcpy(out + hl, msg, ml);
    }
    memcpy(out + hl + ml, ctx, cl + 1);
    s->err->code = code;
    return code;
}

pt_status pt__sql_error_at(pt__sql *s, size_t off, pt_status code, const char *lead,
                           const char *fmt, ...) {
    char msg[PT_ERROR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return set_located(s, code, off, lead, msg);
}

pt_status pt__sql_locate(pt__sql *s, size_t off) {
    if (!s->err) return PT_EINTERNAL;
    char msg[PT_ERROR_MSG_SIZE];
    memcpy(msg, s->err->msg, sizeof msg);
    msg[sizeof msg - 1] = '\0';
    pt_status code = s->err->code != PT_OK ? s->err->code : PT_EINTERNAL;
    return set_located(s, code, off, "error at ", msg);
}

/* Quotes a token for "found ..." ('FORM', end of query). */
static void describe_tok(const pt__sql *s, const pt__sql_tok *t, char *buf, size_t cap) {
    if (t->kind == PT_TK_EOF) {
        snprintf(buf, cap, "end of query");
        return;
    }
    size_t n = t->len;
    const char *ell = "";
    if (n > 40) {
        n = 40;
        while (n > 0 && ((unsigned char)s->src[t->off + n] & 0xC0) == 0x80) n--;
        ell = "...";
    }
    snprintf(buf, cap, "'%.*s%s'", (int)n, s->src + t->off, ell);
}

pt_status pt__sql_expected(pt__sql *s, const char *what) {
    const pt__sql_tok *t = &s->toks[s->pos];
    char found[64];
    describe_tok(s, t, found, sizeof found);
    return pt__sql_error_at(s, t->off, PT_EPARSE, "syntax error at ", "expected %s, found %s",
                            what, found);
}

/* ------------------------------------------------------------------------ */
/* Lexer                                                                    */
/* ------------------------------------------------------------------------ */

static bool ident_start(unsigned char c) { return isalpha(c) || c == '_' || c >= 0x80; }
static bool ident_char(unsigned char c) {
    return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

static pt_status lex_error(pt__sql *s, size_t off, const char *fmt, const char *arg) {
    return pt__sql_error_at(s, off, PT_EPARSE, "syntax error at ", fmt, arg);
}

static pt_status push(pt__sql *s, size_t *cap, const pt__sql_tok *t) {
    if (s->ntoks == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        pt__sql_tok *nt = pt_realloc(s->toks, nc * sizeof *nt);
        if (!nt) return pt_error_set(s->err, PT_ENOMEM, "sql: out of memory (tokens)");
        s->toks = nt;
        *cap = nc;
    }
    s->toks[s->ntoks++] = *t;
    return PT_OK;
}

/* Unescapes a quoted run (doubled quote = one quote) into the arena. */
static char *unquote(pt__sql *s, size_t start, size_t end, char q) {
    char *d = pt__sql_alloc(&s->arena, end - start + 1);
    if (!d) return NULL;
    size_t n = 0;
    for (size_t i = start; i < end; i++) {
        d[n++] = s->src[i];
        if (s->src[i] == q) i++; /* the second of a doubled quote */
    }
    d[n] = '\0';
    return d;
}

/* Scans a quoted run starting after the opening quote at `open`; returns
 * the offset of the closing quote or len when unterminated. */
static size_t scan_quoted(const pt__sql *s, size_t open, char q) {
    size_t i = open + 1;
    while (i < s->len) {
        if (s->src[i] == q) {
            if (i + 1 < s->len && s->src[i + 1] == q) {
                i += 2;
                continue;
            }
            return i;
        }
        i++;
    }
    return s->len;
}

static pt_status lex_number(pt__sql *s, size_t *ip, pt__sql_tok *t) {
    const char *src = s->src;
    size_t i = *ip, start = i;
    bool is_float = false;
    while (i < s->len && isdigit((unsigned char)src[i])) i++;
    if (i < s->len && src[i] == '.') {
        is_float = true;
        i++;
        while (i < s->len && isdigit((unsigned char)src[i])) i++;
    }
    if (i < s->len && (src[i] == 'e' || src[i] == 'E')) {
        size_t j = i + 1;
        if (j < s->len && (src[j] == '+' || src[j] == '-')) j++;
        if (j < s->len && isdigit((unsigned char)src[j])) {
            is_float = true;
            i = j;
            while (i < s->len && isdigit((unsigned char)src[i])) i++;
        }
    }
    if (i < s->len && ident_char((unsigned char)src[i])) {
        size_t e = i;
        while (e < s->len && ident_char((unsigned char)src[e])) e++;
        char *txt = pt__sql_strndup(&s->arena, src + start, e - start);
        if (!txt) return pt_error_set(s->err, PT_ENOMEM, "sql: out of memory");
        return lex_error(s, start, "invalid number '%s'", txt);
    }
    t->off = start;
    t->len = i - start;
    if (!is_float) {
        int64_t v = 0;
        bool overflow = false;
        for (size_t k = start; k < i; k++) {
            int d = src[k] - '0';
            if (v > (INT64_MAX - d) / 10) {
                overflow = true;
                break;
            }
            v = v * 10 + d;
        }
        if (!overflow) {
            t->kind = PT_TK_INT;
            t->ival = v;
            *ip = i;
            return PT_OK;
        }
    }
    /* strtod needs a terminated copy: the query may continue with digits. */
    char *txt = pt__sql_strndup(&s->arena, src + start, i - start);
    if (!txt) return pt_error_set(s->err, PT_ENOMEM, "sql: out of memory");
    t->kind = PT_TK_FLOAT;
    t->fval = strtod(txt, NULL);
    *ip = i;
    return PT_OK;
}

static int keyword_of(const char *p, size_t n) {
    if (n < 2 || n > 9) return 0;
    for (int k = 1; k < PT_KW_COUNT_; k++) {
        if (strlen(kw_names[k]) == n && strncasecmp(kw_names[k], p, n) == 0) return k;
    }
    return 0;
}

pt_status pt__sql_lex(pt__sql *s) {
    const char *src = s->src;
    size_t len = s->len, i = 0, cap = 0, last_end = 0;
    while (1) {
        /* whitespace and comments */
        while (i < len) {
            unsigned char c = (unsigned char)src[i];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
                i++;
            } else if (c == '-' && i + 1 < len && src[i + 1] == '-') {
                while (i < len && src[i] != '\n') i++;
            } else if (c == '/' && i + 1 < len && src[i + 1] == '*') {
                size_t start = i;
                i += 2;
                while (i + 1 < len && !(src[i] == '*' && src[i + 1] == '/')) i++;
                if (i + 1 >= len) return lex_error(s, start, "unterminated comment%s", "");
                i += 2;
            } else {
                break;
            }
        }
        pt__sql_tok t;
        memset(&t, 0, sizeof t);
        if (i >= len) {
            /* End of query sits right after the last token, so that "found
             * end of query" points at the line that needs more. */
            t.kind = PT_TK_EOF;
            t.off = last_end;
            return push(s, &cap, &t);
        }
        unsigned char c = (unsigned char)src[i];
        t.off = i;
        if (ident_start(c)) {
            size_t e = i + 1;
            while (e < len && ident_char((unsigned char)src[e])) e++;
            t.len = e - i;
            t.kw = keyword_of(src + i, t.len);
            t.kind = t.kw ? PT_TK_KW : PT_TK_IDENT;
            t.text = pt__sql_strndup(&s->arena, src + i, t.len);
            if (!t.text) return pt_error_set(s->err, PT_ENOMEM, "sql: out of memory");
            i = e;
        } else if (c == '"' || c == '\'') {
            size_t close = scan_quoted(s, i, (char)c);
            if (close >= len)
                return lex_error(s, i, "%s",
                                 c == '"' ? "unterminated quoted identifier"
                                          : "unterminated string literal");
            if (c == '"' && close == i + 1) return lex_error(s, i, "%s", "empty quoted identifier");
            t.kind = c == '"' ? PT_TK_QIDENT : PT_TK_STR;
            t.text = unquote(s, i + 1, close, (char)c);
            if (!t.text) return pt_error_set(s->err, PT_ENOMEM, "sql: out of memory");
            t.len = close + 1 - i;
            i = close + 1;
        } else if (isdigit(c) || (c == '.' && i + 1 < len && isdigit((unsigned char)src[i + 1]))) {
            PT_RETURN_NOT_OK(lex_number(s, &i, &t));
        } else {
            char c2 = i + 1 < len ? src[i + 1] : '\0';
            int sym = 0, n = 1;
            switch (c) {
            case '(': sym = PT_SY_LP; break;
            case ')': sym = PT_SY_RP; break;
            case ',': sym = PT_SY_COMMA; break;
            case '.': sym = PT_SY_DOT; break;
            case ';': sym = PT_SY_SEMI; break;
            case '*': sym = PT_SY_STAR; break;
            case '+': sym = PT_SY_PLUS; break;
            case '-': sym = PT_SY_MINUS; break;
            case '/': sym = PT_SY_SLASH; break;
            case '%': sym = PT_SY_PCT; break;
            case '=': sym = PT_SY_EQ; n = c2 == '=' ? 2 : 1; break;
            case '<':
                if (c2 == '=') sym = PT_SY_LE, n = 2;
                else if (c2 == '>') sym = PT_SY_NE, n = 2;
                else sym = PT_SY_LT;
                break;
            case '>':
                if (c2 == '=') sym = PT_SY_GE, n = 2;
                else sym = PT_SY_GT;
                break;
            case '!':
                if (c2 == '=') sym = PT_SY_NE, n = 2;
                break;
            case '|':
                if (c2 == '|') sym = PT_SY_CONCAT, n = 2;
                break;
            case ':':
                if (c2 == ':') sym = PT_SY_DCOLON, n = 2;
                break;
            default: break;
            }
            if (!sym) {
                char what[16];
                if (c >= 0x21 && c < 0x7f)
                    snprintf(what, sizeof what, "'%c'", c);
                else
                    snprintf(what, sizeof what, "byte 0x%02x", c);
                return lex_error(s, i, "unexpected character %s", what);
            }
            t.kind = PT_TK_SYM;
            t.sym = sym;
            t.len = (size_t)n;
            i += (size_t)n;
        }
        last_end = t.off + t.len;
        PT_RETURN_NOT_OK(push(s, &cap, &t));
    }
}
