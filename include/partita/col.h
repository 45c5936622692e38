/*
 * partita/col.h - Arrow-layout columns and tables.
 *
 * Memory follows the Arrow columnar format: a validity bitmap (LSB first, bit
 * set = valid; absent = all valid), a values buffer (fixed width types), an
 * offsets buffer plus a bytes buffer for utf8, and int32 indices into a utf8
 * dictionary for dictionary-encoded strings. Utf8 offsets are 64-bit (Arrow
 * "large utf8", format "U") so a column is never limited to 2 GiB of text.
 *
 * Buffers and columns are reference counted, which is what makes slicing free:
 * a slice shares the buffers of its parent and only records an offset.
 * Reference counts are atomic, so columns may be shared between threads;
 * mutation is only allowed while a column is being built and not yet shared.
 */
#ifndef PARTITA_COL_H
#define PARTITA_COL_H

#include <stdbool.h>

#include "partita/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pt_type {
    PT_TYPE_NULL = 0, /* no values; only nulls (used for all-empty columns) */
    PT_TYPE_BOOL,     /* bit-packed values, as Arrow */
    PT_TYPE_INT32,
    PT_TYPE_INT64,
    PT_TYPE_FLOAT32,
    PT_TYPE_FLOAT64,
    PT_TYPE_UTF8,     /* int64 offsets + bytes */
    PT_TYPE_DICT,     /* int32 indices into a utf8 dictionary */
    PT_TYPE_COUNT
} pt_type;

/* "int64", "utf8", "dict<utf8>" ... */
PT_API const char *pt_type_name(pt_type t);
/* Parses the names above (plus "string", "double", "float", "int", "bool",
 * "boolean", "category"); returns PT_EINVAL on anything else. */
PT_API pt_status pt_type_parse(const char *name, pt_type *out, pt_error *err) PT_MUST_USE;
/* Width of one value in bytes for fixed-width types; 0 for bool (bits),
 * utf8 and null; 4 for dict (the index). */
PT_API int pt_type_width(pt_type t);
static inline bool pt_type_is_numeric(pt_type t) {
    return t == PT_TYPE_INT32 || t == PT_TYPE_INT64 || t == PT_TYPE_FLOAT32 ||
           t == PT_TYPE_FLOAT64;
}
static inline bool pt_type_is_string(pt_type t) {
    return t == PT_TYPE_UTF8 || t == PT_TYPE_DICT;
}

/* ------------------------------------------------------------------------ */
/* Buffers                                                                  */
/* ------------------------------------------------------------------------ */

/* A reference-counted, 64-byte aligned block of memory, counted against an
 * optional budget. `size` bytes are in use, `capacity` are allocated. */
typedef struct pt_buffer {
    uint8_t *data;
    int64_t size;
    int64_t capacity;
    pt_mem *mem;        /* budget charged with `capacity`, or NULL */
    int64_t refcount;   /* atomic */
    /* Foreign memory (imported through the Arrow C Data Interface): when
     * set, release_fn(release_ud) is called instead of freeing `data`. */
    void (*release_fn)(void *ud);
    void *release_ud;
} pt_buffer;

/* Allocates a buffer of `capacity` bytes (size 0), charged to `mem` (may be
 * NULL). Fails with PT_ENOMEM or PT_EBUDGET. The caller owns one reference. */
PT_API pt_status pt_buffer_new(pt_mem *mem, int64_t capacity, pt_buffer **out, pt_error *err)
    PT_MUST_USE;
/* Grows capacity to at least `capacity` (geometric growth); the buffer must
 * not be shared. Data is preserved. On failure the buffer is unchanged. */
PT_API pt_status pt_buffer_reserve(pt_buffer *b, int64_t capacity, pt_error *err) PT_MUST_USE;
/* Shrinks capacity to size (returns memory to the budget). Best effort. */
PT_API void pt_buffer_shrink(pt_buffer *b);
PT_API pt_buffer *pt_buffer_retain(pt_buffer *b);
/* Drops one reference; the last one frees the memory. NULL is ignored. */
PT_API void pt_buffer_release(pt_buffer *b);

/* ------------------------------------------------------------------------ */
/* Columns                                                                  */
/* ------------------------------------------------------------------------ */

/* A column. Fields are public for fast read access by operators; treat them
 * as read-only once the column is shared. Element i of the column is element
 * (offset + i) of the buffers. */
typedef struct pt_column {
    pt_type type;
    int64_t length;
    int64_t offset;       /* in elements (bits for bool and validity) */
    int64_t null_count;   /* exact */
    pt_buffer *validity;  /* NULL when null_count == 0 (all valid) */
    pt_buffer *values;    /* fixed width values, bool bits, utf8 offsets
                             (length + 1 int64), or dict int32 indices */
    pt_buffer *bytes;     /* utf8 character data; NULL otherwise */
    struct pt_column *dict; /* PT_TYPE_DICT: the utf8 dictionary (no nulls) */
    int64_t refcount;     /* atomic */
} pt_column;

/* Creates an empty column of `type` with room for `capacity` rows (and
 * `byte_capacity` bytes of text for utf8), charged to `mem`. Dictionary
 * columns are created with pt_column_new_dict. The caller owns the result. */
PT_API pt_status pt_column_new(pt_mem *mem, pt_type type, int64_t capacity,
                               int64_t byte_capacity, pt_column **out, pt_error *err) PT_MUST_USE;
/* Creates an empty dictionary column whose indices point into `dict` (a utf8
 * column without nulls). Takes a new reference to `dict`. */
PT_API pt_status pt_column_new_dict(pt_mem *mem, pt_column *dict, int64_t capacity,
                                    pt_column **out, pt_error *err) PT_MUST_USE;
PT_API pt_column *pt_column_retain(pt_column *c);
/* Drops one reference; the last frees buffers and dictionary. NULL ignored. */
PT_API void pt_column_release(pt_column *c);

/* Appending (only on unshared columns being built, offset 0). Each may fail
 * with PT_ENOMEM/PT_EBUDGET and then leaves the column unchanged. */
PT_API pt_status pt_column_append_null(pt_column *c, pt_error *err) PT_MUST_USE;
PT_API pt_status pt_column_append_bool(pt_column *c, bool v, pt_error *err) PT_MUST_USE;
PT_API pt_status pt_column_append_i32(pt_column *c, int32_t v, pt_error *err) PT_MUST_USE;
PT_API pt_status pt_column_append_i64(pt_column *c, int64_t v, pt_error *err) PT_MUST_USE;
PT_API pt_status pt_column_append_f32(pt_column *c, float v, pt_error *err) PT_MUST_USE;
PT_API pt_status pt_column_append_f64(pt_column *c, double v, pt_error *err) PT_MUST_USE;
PT_API pt_status pt_column_append_str(pt_column *c, const char *s, int64_t len, pt_error *err)
    PT_MUST_USE;
/* Dictionary columns: appends index `idx` (0 <= idx < dict length). */
PT_API pt_status pt_column_append_index(pt_column *c, int32_t idx, pt_error *err) PT_MUST_USE;

/* Makes sure `c` has a validity bitmap covering its capacity (all existing
 * rows valid). Builders that write buffers directly call this before marking
 * nulls. */
PT_API pt_status pt_column_ensure_validity(pt_column *c, pt_error *err) PT_MUST_USE;
/* Grows capacity for direct writes so that `rows` rows in total (and, for
 * utf8, `bytes` bytes of text in total) fit; the bitmap grows too when
 * present. Never shrinks. */
PT_API pt_status pt_column_reserve(pt_column *c, int64_t rows, int64_t bytes, pt_error *err)
    PT_MUST_USE;

/* A zero-copy slice [offset, offset + length) sharing buffers with `c`.
 * Fails with PT_EINVAL when out of bounds. The caller owns the result. */
PT_API pt_status pt_column_slice(pt_column *c, int64_t offset, int64_t length, pt_column **out,
                                 pt_error *err) PT_MUST_USE;
/* A deep copy with offset 0, charged to `mem`. */
PT_API pt_status pt_column_copy(pt_mem *mem, const pt_column *c, pt_column **out, pt_error *err)
    PT_MUST_USE;
/* Concatenates columns of the same type (dictionary columns are re-encoded
 * into one dictionary) into a new column. */
PT_API pt_status pt_column_concat(pt_mem *mem, pt_column *const *cols, int n, pt_column **out,
                                  pt_error *err) PT_MUST_USE;
/* Converts to another type: numeric widening/narrowing (narrowing fails with
 * PT_ERANGE naming the row when a value does not fit), dict <-> utf8,
 * numbers -> utf8. */
PT_API pt_status pt_column_cast(pt_mem *mem, pt_column *c, pt_type to, pt_column **out,
                                pt_error *err) PT_MUST_USE;

/* Gathers rows idx[0, n) of `c` into a new column (offset 0) charged to
 * `mem`; a negative index gives a null row (outer joins). Dictionary columns
 * keep their dictionary. Fails with PT_EINVAL naming the position of an
 * index past the end, PT_ENOMEM or PT_EBUDGET. */
PT_API pt_status pt_column_take(pt_mem *mem, const pt_column *c, const int64_t *idx, int64_t n,
                                pt_column **out, pt_error *err) PT_MUST_USE;
/* Keeps the rows whose mask byte is non-zero (`mask` has c->length bytes). */
PT_API pt_status pt_column_filter(pt_mem *mem, const pt_column *c, const uint8_t *mask,
                                  pt_column **out, pt_error *err) PT_MUST_USE;

/* Bytes held by the column's buffers (capacity, shared buffers counted). */
PT_API int64_t pt_column_nbytes(const pt_column *c);

/* Element access (bounds are the caller's business; i in [0, length)). */
static inline bool pt_bit_get(const uint8_t *bits, int64_t i) {
    return (bits[i >> 3] >> (i & 7)) & 1;
}
static inline void pt_bit_set(uint8_t *bits, int64_t i) { bits[i >> 3] |= (uint8_t)(1u << (i & 7)); }
static inline void pt_bit_clear(uint8_t *bits, int64_t i) {
    bits[i >> 3] &= (uint8_t)~(1u << (i & 7));
}
static inline bool pt_column_is_valid(const pt_column *c, int64_t i) {
    return c->validity == NULL || pt_bit_get(c->validity->data, c->offset + i);
}
static inline const int32_t *pt_column_i32(const pt_column *c) {
    return (const int32_t *)c->values->data + c->offset;
}
static inline const int64_t *pt_column_i64(const pt_column *c) {
    return (const int64_t *)c->values->data + c->offset;
}
static inline const float *pt_column_f32(const pt_column *c) {
    return (const float *)c->values->data + c->offset;
}
static inline const double *pt_column_f64(const pt_column *c) {
    return (const double *)c->values->data + c->offset;
}
static inline bool pt_column_bool(const pt_column *c, int64_t i) {
    return pt_bit_get(c->values->data, c->offset + i);
}
/* utf8: pointer to the text of row i and its length (not NUL-terminated).
 * dict: the dictionary entry of row i. */
static inline const char *pt_column_str(const pt_column *c, int64_t i, int64_t *len) {
    if (c->type == PT_TYPE_DICT) {
        int32_t k = ((const int32_t *)c->values->data)[c->offset + i];
        return pt_column_str(c->dict, k, len);
    }
    const int64_t *o = (const int64_t *)c->values->data + c->offset;
    *len = o[i + 1] - o[i];
    return (const char *)c->bytes->data + o[i];
}
/* Value of a numeric or bool column as double (nulls are the caller's
 * business). */
PT_API double pt_column_get_f64(const pt_column *c, int64_t i);

/* ------------------------------------------------------------------------ */
/* Schemas                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct pt_field {
    char *name; /* owned */
    pt_type type;
} pt_field;

typedef struct pt_schema {
    int nfields;
    pt_field *fields; /* owned */
} pt_schema;

/* Creates a schema with `n` fields from parallel arrays (names are copied). */
PT_API pt_status pt_schema_new(int n, const char *const *names, const pt_type *types,
                               pt_schema **out, pt_error *err) PT_MUST_USE;
PT_API pt_status pt_schema_copy(const pt_schema *s, pt_schema **out, pt_error *err) PT_MUST_USE;
PT_API void pt_schema_free(pt_schema *s);
/* Index of the field called `name`, or -1. */
PT_API int pt_schema_find(const pt_schema *s, const char *name);
/* Parses "name:type,name:type" into a schema (the CLI's --schema). */
PT_API pt_status pt_schema_parse(const char *text, pt_schema **out, pt_error *err) PT_MUST_USE;

/* ------------------------------------------------------------------------ */
/* Tables                                                                   */
/* ------------------------------------------------------------------------ */

/* A table: a schema plus one column per field, all with nrows rows. */
typedef struct pt_table {
    pt_schema *schema; /* owned */
    pt_column **cols;  /* one reference each */
    int64_t nrows;
} pt_table;

/* Builds a table. Takes ownership of `schema` and of one reference to each of
 * the `schema->nfields` columns in `cols` (the array itself is copied), also
 * on failure. Fails with PT_EINVAL when lengths or types disagree. */
PT_API pt_status pt_table_new(pt_schema *schema, pt_column **cols, pt_table **out, pt_error *err)
    PT_MUST_USE;
/* Frees the table and drops its column references. NULL is ignored. */
PT_API void pt_table_free(pt_table *t);
/* Zero-copy slice of rows [offset, offset + length). */
PT_API pt_status pt_table_slice(const pt_table *t, int64_t offset, int64_t length, pt_table **out,
                                pt_error *err) PT_MUST_USE;
/* Zero-copy projection onto the named columns, in the given order. Unknown
 * names fail with PT_EINVAL listing the available columns. */
PT_API pt_status pt_table_select(const pt_table *t, const char *const *names, int n,
                                 pt_table **out, pt_error *err) PT_MUST_USE;
/* Concatenates tables with equal schemas. */
PT_API pt_status pt_table_concat(pt_mem *mem, pt_table *const *tables, int n, pt_table **out,
                                 pt_error *err) PT_MUST_USE;
/* Row gather and mask filter over every column (see pt_column_take). */
PT_API pt_status pt_table_take(pt_mem *mem, const pt_table *t, const int64_t *idx, int64_t n,
                               pt_table **out, pt_error *err) PT_MUST_USE;
PT_API pt_status pt_table_filter(pt_mem *mem, const pt_table *t, const uint8_t *mask,
                                 pt_table **out, pt_error *err) PT_MUST_USE;
/* Column by name, or NULL. */
PT_API pt_column *pt_table_column(const pt_table *t, const char *name);
PT_API int64_t pt_table_nbytes(const pt_table *t);
/* Returns true when both tables have the same schema and the same values
 * (floats compared bit-exactly except that NaN equals NaN; dict and utf8
 * columns compare by text). Fills `why` (may be NULL) with the first
 * difference ("row 12, column 'v3': 1.5 vs 2.5"). */
PT_API bool pt_table_equal(const pt_table *a, const pt_table *b, char *why, size_t why_cap);

/* Pretty printing, like pandas' head(): an aligned text table with a header,
 * the type under each name, "null" for nulls, long strings cut with "...",
 * and for large tables the first and last rows with a "..." line between and
 * a "[N rows x M columns]" footer. */
typedef struct pt_print_opts {
    int64_t max_rows;  /* rows shown before eliding (default 10; <0 = all) */
    int max_width;     /* max characters per cell (default 24) */
    int show_types;    /* default 1 */
    int float_digits;  /* significant digits for floats (default 6) */
} pt_print_opts;
PT_API void pt_print_opts_init(pt_print_opts *o);
PT_API pt_status pt_table_print(const pt_table *t, FILE *out, const pt_print_opts *opts,
                                pt_error *err) PT_MUST_USE;
/* Formats one cell as text ("null" for nulls) into buf; returns buf. */
PT_API const char *pt_column_format(const pt_column *c, int64_t i, int float_digits, char *buf,
                                    size_t cap);

/* ------------------------------------------------------------------------ */
/* Arrow C Data Interface                                                   */
/* ------------------------------------------------------------------------ */

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4
struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};
struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};
#endif

/* Exports a column as an Arrow array + schema (named `name`). The exported
 * structures hold references to the column's buffers, so the column may be
 * released before the consumer calls the release callbacks. Formats: "b",
 * "i", "l", "f", "g", "U" (large utf8), dictionary "i" + "U"; null "n". */
PT_API pt_status pt_column_export(pt_column *c, const char *name, struct ArrowSchema *schema,
                                  struct ArrowArray *array, pt_error *err) PT_MUST_USE;
/* Exports a table as a struct array ("+s") with one child per column. */
PT_API pt_status pt_table_export(const pt_table *t, struct ArrowSchema *schema,
                                 struct ArrowArray *array, pt_error *err) PT_MUST_USE;
/* Imports an array. Takes ownership of `array`, also on failure (moved:
 * array->release is set to NULL; the data is released through the
 * producer's callback, exactly once, when the last buffer referencing it is
 * released). Buffers are wrapped zero-copy where layout and alignment allow,
 * otherwise converted into new buffers charged to `mem`. The schema is only
 * read. Dictionaries with null entries are refused (PT_EUNSUPPORTED).
 * Supports the formats above plus "u" (32-bit utf8 offsets, converted), "c",
 * "s" (int8/int16, widened) and dictionaries with int8/16/32/64 indices.
 * Unsupported formats fail with PT_EUNSUPPORTED naming the format. */
PT_API pt_status pt_column_import(pt_mem *mem, struct ArrowArray *array,
                                  const struct ArrowSchema *schema, pt_column **out,
                                  pt_error *err) PT_MUST_USE;
/* Imports a struct array as a table; same ownership rules. */
PT_API pt_status pt_table_import(pt_mem *mem, struct ArrowArray *array,
                                 const struct ArrowSchema *schema, pt_table **out, pt_error *err)
    PT_MUST_USE;

#ifdef __cplusplus
}
#endif
#endif
