/* Rows: records of a schema in Flint's one binary layout, used in memory and on the wire (the idea
 * of Flink's BinaryRowData). A serialized row of n fields is
 *
 *   [null bitmap: ceil(n/64) 8-byte words][n 8-byte slots][variable-length bytes]
 *
 * A fixed-size field (INT, BIGINT, DOUBLE, BOOLEAN, TIMESTAMP(3)) keeps its value in its slot
 * (little-endian, INT and BOOLEAN widened to 64 bits). A variable-length field (STRING, BYTES)
 * keeps (offset << 32 | length) in its slot, the offset counted from the row's first byte, so a
 * row is position-independent: reading one from a network buffer is a pointer and a length. */
#ifndef FLINT_ROW_H
#define FLINT_ROW_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "flint/status.h"

typedef enum flint_type {
    FLINT_STRING,       /* UTF-8 bytes */
    FLINT_INT,          /* int32 */
    FLINT_BIGINT,       /* int64 */
    FLINT_DOUBLE,
    FLINT_BOOLEAN,
    FLINT_TIMESTAMP,    /* TIMESTAMP(3): int64 milliseconds since the epoch */
    FLINT_BYTES
} flint_type;

#define FLINT_MAX_FIELDS 1024

/* A schema: an immutable list of named, typed fields, parsed from a SQL-style column list
 * ("word STRING, n BIGINT, ts TIMESTAMP(3)"). Type names are case-insensitive; VARCHAR and
 * VARCHAR(n) mean STRING, INTEGER means INT, BOOL means BOOLEAN, VARBINARY means BYTES. */
typedef struct flint_schema flint_schema;

/* Parse text into a new schema (caller frees with flint_schema_free). Errors name the column and
 * what was wrong: an unknown type, a duplicate or missing name, more than FLINT_MAX_FIELDS. */
int flint_schema_parse(const char *text, flint_schema **out, flint_err *err);
void flint_schema_free(flint_schema *s);
flint_schema *flint_schema_copy(const flint_schema *s);
/* A new schema of fields from[0..n) of s, in that order (valid, distinct indexes; n >= 1). */
flint_schema *flint_schema_select(const flint_schema *s, const int *from, int n);
int flint_schema_field_count(const flint_schema *s);
/* Index of the field named name, or -1. */
int flint_schema_field_index(const flint_schema *s, const char *name);
const char *flint_schema_field_name(const flint_schema *s, int i);
flint_type flint_schema_field_type(const flint_schema *s, int i);
/* The canonical column list ("word STRING, n BIGINT"); owned by the schema. */
const char *flint_schema_text(const flint_schema *s);
bool flint_schema_equal(const flint_schema *a, const flint_schema *b);
const char *flint_type_name(flint_type t);
bool flint_type_is_numeric(flint_type t);   /* INT, BIGINT, DOUBLE */

/* Bytes of the fixed part (bitmap and slots) of a row of n fields. */
static inline size_t flint_row_fixed_size(int n) {
    return (size_t)((n + 63) / 64) * 8 + (size_t)n * 8;
}

/* A read-only view of one serialized row. Does not own data. */
typedef struct flint_row {
    const flint_schema *schema;
    const uint8_t *data;
    uint32_t len;
    int nfields;
} flint_row;

/* Check that data[0..len) is a well-formed row of schema (slot offsets inside the row, BOOLEAN 0
 * or 1): rows that arrive from outside are checked once before their fields are read. */
int flint_row_check(const flint_schema *schema, const uint8_t *data, uint32_t len, flint_err *err);
static inline flint_row flint_row_view(const flint_schema *s, const void *data, uint32_t len,
                                       int nfields) {
    flint_row r = {s, (const uint8_t *)data, len, nfields};
    return r;
}

static inline uint64_t flint_row_slot_(const flint_row *r, int i) {
    uint64_t v;
    memcpy(&v, r->data + (size_t)(((unsigned)r->nfields + 63) / 64) * 8 + (size_t)(unsigned)i * 8, 8);
    return v;
}
static inline bool flint_row_is_null(const flint_row *r, int i) {
    uint64_t w;
    memcpy(&w, r->data + (size_t)((unsigned)i / 64) * 8, 8);
    return (w >> ((unsigned)i % 64)) & 1;
}
/* Fixed-size getters; a NULL field reads as 0. BIGINT and TIMESTAMP use get_long. */
static inline int64_t flint_row_get_long(const flint_row *r, int i) { return (int64_t)flint_row_slot_(r, i); }
static inline int32_t flint_row_get_int(const flint_row *r, int i) { return (int32_t)flint_row_slot_(r, i); }
static inline bool flint_row_get_bool(const flint_row *r, int i) { return flint_row_slot_(r, i) != 0; }
static inline double flint_row_get_double(const flint_row *r, int i) {
    uint64_t v = flint_row_slot_(r, i);
    double d;
    memcpy(&d, &v, 8);
    return d;
}
/* Variable-length getters: a pointer into the row (not NUL-terminated) and its length in *len.
 * A NULL field reads as an empty value. */
static inline const char *flint_row_get_string(const flint_row *r, int i, size_t *len) {
    uint64_t v = flint_row_slot_(r, i);
    *len = (size_t)(v & 0xffffffffu);
    return (const char *)r->data + (v >> 32);
}
static inline const uint8_t *flint_row_get_bytes(const flint_row *r, int i, size_t *len) {
    return (const uint8_t *)flint_row_get_string(r, i, len);
}

/* A row builder: builds one row of its schema at a time into a buffer it owns and reuses, so a
 * steady stream of rows allocates nothing. Set every field once (a field never set is NULL);
 * variable-length values are appended in the order they are set. */
typedef struct flint_row_builder {
    const flint_schema *schema;
    uint8_t *buf;
    size_t cap;
    size_t len;         /* bytes used: fixed part + variable bytes so far */
    int nfields;
} flint_row_builder;

/* Make a builder for schema (not owned; must outlive the builder). */
void flint_row_builder_init(flint_row_builder *b, const flint_schema *schema);
void flint_row_builder_free(flint_row_builder *b);
/* Make room for var_bytes of variable-length values after the fixed part (b->cap is then at least
 * flint_row_fixed_size(nfields) + var_bytes): for code that writes rows in the layout above
 * straight into b->buf (generators), then sets b->len. */
void flint_row_builder_reserve(flint_row_builder *b, size_t var_bytes);
/* Start a new row: every field NULL, no variable bytes. */
static inline void flint_row_builder_reset(flint_row_builder *b);
static inline void flint_row_set_null(flint_row_builder *b, int i);
static inline void flint_row_set_long(flint_row_builder *b, int i, int64_t v);  /* BIGINT, TIMESTAMP */
static inline void flint_row_set_int(flint_row_builder *b, int i, int32_t v);
static inline void flint_row_set_double(flint_row_builder *b, int i, double v);
static inline void flint_row_set_bool(flint_row_builder *b, int i, bool v);
static inline void flint_row_set_string(flint_row_builder *b, int i, const char *s, size_t len);
void flint_row_set_cstring(flint_row_builder *b, int i, const char *s);
static inline void flint_row_set_bytes(flint_row_builder *b, int i, const void *p, size_t len);
/* Copy field j of src (of any schema with the same field type) into field i. */
static inline void flint_row_copy_field(flint_row_builder *b, int i, const flint_row *src, int j);
/* Copy a whole row of the same schema. */
void flint_row_builder_copy(flint_row_builder *b, const flint_row *src);
/* A projection planned once per operator (as Flink generates one): field i of the output is
 * field from[i] of the input, of the same type. The plan checks the indexes and types, so
 * flint_row_project checks nothing per field (flint_row_copy_field checks every call). */
typedef struct flint_projection {
    int n;           /* output fields */
    int in_nfields;  /* input fields */
    int *src;        /* [n]: the input field of output field i; ~field for STRING and BYTES */
} flint_projection;
/* Plan the projection of in's fields from[0..n) to out. Errors name the field that does not fit.
 * Free with flint_projection_free (also after a failed plan). */
int flint_projection_plan(flint_projection *p, const flint_schema *in, const flint_schema *out, const int *from,
                          int n, flint_err *err);
void flint_projection_free(flint_projection *p);
/* Build the projection of src (a row of the planned input schema) in b (of its output schema). */
static inline void flint_row_project(flint_row_builder *b, const flint_projection *p, const flint_row *src);
/* A view of the row built so far, valid until the builder is next changed. */
static inline flint_row flint_row_builder_row(const flint_row_builder *b) {
    return flint_row_view(b->schema, b->buf, (uint32_t)b->len, b->nfields);
}

/* Text forms. Format a row as its fields joined by sep ("hello 3"); NULL prints as "null".
 * Returns the length it needs (like snprintf). */
size_t flint_row_format(const flint_row *r, const char *sep, char *buf, size_t cap);
/* Parse one row from delimited text (fields split on sep; strings unquoted as given) into b.
 * Errors name the field and expected form. */
int flint_row_parse(flint_row_builder *b, const char *text, size_t len, char sep, flint_err *err);

/* ---- inline builder operations (run once per field per record) ----------------------------- */

/* The layout of a schema: internal, for the inline builder operations below; use the accessors
 * above everywhere else. */
struct flint_schema {
    int n;              /* number of fields, 1..FLINT_MAX_FIELDS */
    flint_type *types;  /* [n] */
    char **names;       /* [n], NUL-terminated, as written (backquotes removed) */
    char *text;         /* canonical column list */
    /* flint_row_check's rules by field (schemas of up to 64 fields): bit i set when field i is
     * variable-length, INT, BOOLEAN. */
    uint64_t var_mask, int_mask, bool_mask;
};

/* Internal helper of the inline operations (common/row/row.c): append a variable-length value,
 * growing the buffer when it does not fit (p may point into the buffer). */
void flint_row_set_var_(flint_row_builder *b, int i, const void *p, size_t len);

static inline void flint_row_check_field_(const flint_row_builder *b, int i) {
    assert((unsigned)i < (unsigned)b->nfields && "field index out of range");
    (void)b;
    (void)i;
}
/* The builder's buffer as 8-byte words (it is malloc'd: bitmap words and slots are aligned).
 * Typed stores, unlike byte copies, cannot alias the builder's other fields, so a run of setters
 * keeps them in registers. */
static inline uint64_t *flint_row_builder_words_(const flint_row_builder *b) {
    return (uint64_t *)(void *)b->buf;
}
static inline void flint_row_builder_set_slot_(flint_row_builder *b, int i, uint64_t v) {
    uint64_t *w = flint_row_builder_words_(b);
    w[(unsigned)i / 64] &= ~((uint64_t)1 << ((unsigned)i % 64));
    w[((unsigned)b->nfields + 63) / 64 + (unsigned)i] = v;
}

/* Every field NULL (null bits set, slots zero: the one canonical form flint_row_check expects).
 * Up to 8 fields (most rows), one bitmap word and one fixed-size 64-byte clear: a builder always
 * has that much room (flint_row_builder_init reserves the fixed part + 64 bytes), and bytes past
 * the slots are variable-length space that the next values overwrite. Wider rows: row.c. */
void flint_row_builder_reset_wide_(flint_row_builder *b);
static inline void flint_row_builder_reset(flint_row_builder *b) {
    unsigned n = (unsigned)b->nfields;
    if (__builtin_expect(n > 8, 0)) {
        flint_row_builder_reset_wide_(b);
        return;
    }
    uint64_t nulls = ((uint64_t)1 << n) - 1;
    memcpy(b->buf, &nulls, 8);
    memset(b->buf + 8, 0, 64);
    b->len = 8 + (size_t)n * 8;
}

/* Append len bytes at p as the value of variable-length field i: one copy when they fit. */
static inline void flint_row_append_var_(flint_row_builder *b, int i, const void *p, size_t len) {
    size_t off = b->len;
    if (__builtin_expect(len > b->cap - off, 0)) {
        flint_row_set_var_(b, i, p, len);
        return;
    }
    b->len = off + len;
    flint_row_builder_set_slot_(b, i, (uint64_t)off << 32 | (uint64_t)len);
    if (len) memcpy(b->buf + off, p, len);
}

static inline void flint_row_set_string(flint_row_builder *b, int i, const char *s, size_t len) {
    flint_row_check_field_(b, i);
    assert(b->schema->types[i] == FLINT_STRING && "flint_row_set_string on a field that is not STRING");
    assert(s || len == 0);
    flint_row_append_var_(b, i, s, len);
}

static inline void flint_row_set_bytes(flint_row_builder *b, int i, const void *p, size_t len) {
    flint_row_check_field_(b, i);
    assert(b->schema->types[i] == FLINT_BYTES && "flint_row_set_bytes on a field that is not BYTES");
    assert(p || len == 0);
    flint_row_append_var_(b, i, p, len);
}

static inline void flint_row_set_null(flint_row_builder *b, int i) {
    flint_row_check_field_(b, i);
    uint64_t *w = flint_row_builder_words_(b);
    w[(unsigned)i / 64] |= (uint64_t)1 << ((unsigned)i % 64);
    w[((unsigned)b->nfields + 63) / 64 + (unsigned)i] = 0;
}

static inline void flint_row_set_long(flint_row_builder *b, int i, int64_t v) {
    flint_row_check_field_(b, i);
    assert((b->schema->types[i] == FLINT_BIGINT || b->schema->types[i] == FLINT_TIMESTAMP) &&
           "flint_row_set_long on a field that is not BIGINT or TIMESTAMP");
    flint_row_builder_set_slot_(b, i, (uint64_t)v);
}

static inline void flint_row_set_int(flint_row_builder *b, int i, int32_t v) {
    flint_row_check_field_(b, i);
    assert(b->schema->types[i] == FLINT_INT && "flint_row_set_int on a field that is not INT");
    flint_row_builder_set_slot_(b, i, (uint64_t)(int64_t)v);
}

static inline void flint_row_set_double(flint_row_builder *b, int i, double v) {
    flint_row_check_field_(b, i);
    assert(b->schema->types[i] == FLINT_DOUBLE &&
           "flint_row_set_double on a field that is not DOUBLE");
    uint64_t u;
    memcpy(&u, &v, 8);
    flint_row_builder_set_slot_(b, i, u);
}

static inline void flint_row_set_bool(flint_row_builder *b, int i, bool v) {
    flint_row_check_field_(b, i);
    assert(b->schema->types[i] == FLINT_BOOLEAN &&
           "flint_row_set_bool on a field that is not BOOLEAN");
    flint_row_builder_set_slot_(b, i, v ? 1 : 0);
}

/* Always inline (GCC would call it otherwise, saving registers for every field): a fixed-size
 * field is its slot and null bit; a variable one, one call that appends it. */
static inline __attribute__((always_inline)) void flint_row_copy_field(flint_row_builder *b, int i,
                                                                       const flint_row *src, int j) {
    flint_row_check_field_(b, i);
    assert(src && (unsigned)j < (unsigned)src->nfields);
    flint_type t = b->schema->types[i];
    assert((!src->schema || src->schema->types[j] == t) &&
           "flint_row_copy_field between fields of different types");
    uint64_t v = flint_row_slot_(src, j);
    if (flint_row_is_null(src, j))
        flint_row_set_null(b, i);
    else if (t == FLINT_STRING || t == FLINT_BYTES)
        flint_row_set_var_(b, i, src->data + (v >> 32), (size_t)(v & 0xffffffffu));
    else
        flint_row_builder_set_slot_(b, i, v);
}

/* Rows of up to 64 fields (one null-bitmap word) inline, wider ones in row.c. Every slot and the
 * bitmap are written once, so the builder is not reset: a fixed-size slot is copied whatever its
 * null bit (a NULL field's slot is 0 in both rows), a variable one is appended when not NULL. */
void flint_row_project_wide_(flint_row_builder *b, const flint_projection *p, const flint_row *src);
static inline void flint_row_project(flint_row_builder *b, const flint_projection *p, const flint_row *src) {
    assert(b->nfields == p->n && src->nfields == p->in_nfields && "flint_row_project: not the planned schemas");
    int n = p->n;
    if (__builtin_expect(n > 64 || p->in_nfields > 64, 0)) {
        flint_row_project_wide_(b, p, src);
        return;
    }
    const uint8_t *in = src->data;
    uint64_t in_nulls, nulls = 0;
    memcpy(&in_nulls, in, 8);
    const int *from = p->src;
    uint64_t *w = flint_row_builder_words_(b);
    size_t len = 8 + (size_t)n * 8, cap = b->cap;
    for (int i = 0; i < n; i++) {
        int j = from[i];
        uint64_t v, null;
        if (j >= 0) {
            memcpy(&v, in + 8 + (size_t)j * 8, 8);
            null = in_nulls >> j & 1;
        } else {
            memcpy(&v, in + 8 + (size_t)~j * 8, 8);
            null = in_nulls >> ~j & 1;
            size_t l = (size_t)(v & 0xffffffffu);
            if (__builtin_expect(l > cap - len, 0)) {
                flint_row_builder_reserve(b, len - 8 - (size_t)n * 8 + l);
                w = flint_row_builder_words_(b);
                cap = b->cap;
            }
            memcpy(b->buf + len, in + (v >> 32), l);
            v = null ? 0 : (uint64_t)len << 32 | l;
            len += l;
        }
        w[1 + i] = v;
        nulls |= null << i;
    }
    w[0] = nulls;
    b->len = len;
}

#endif
