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
/* Start a new row: every field NULL, no variable bytes. */
static inline void flint_row_builder_reset(flint_row_builder *b);
static inline void flint_row_set_null(flint_row_builder *b, int i);
static inline void flint_row_set_long(flint_row_builder *b, int i, int64_t v);  /* BIGINT, TIMESTAMP */
static inline void flint_row_set_int(flint_row_builder *b, int i, int32_t v);
static inline void flint_row_set_double(flint_row_builder *b, int i, double v);
static inline void flint_row_set_bool(flint_row_builder *b, int i, bool v);
void flint_row_set_string(flint_row_builder *b, int i, const char *s, size_t len);
void flint_row_set_cstring(flint_row_builder *b, int i, const char *s);
void flint_row_set_bytes(flint_row_builder *b, int i, const void *p, size_t len);
/* Copy field j of src (of any schema with the same field type) into field i. */
static inline void flint_row_copy_field(flint_row_builder *b, int i, const flint_row *src, int j);
/* Copy a whole row of the same schema. */
void flint_row_builder_copy(flint_row_builder *b, const flint_row *src);
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
};

/* Internal helpers of the inline operations (common/row/row.c). */
void flint_row_set_var_(flint_row_builder *b, int i, const void *p, size_t len);

static inline void flint_row_check_field_(const flint_row_builder *b, int i) {
    assert((unsigned)i < (unsigned)b->nfields && "field index out of range");
    (void)b;
    (void)i;
}
static inline uint8_t *flint_row_builder_slot_(flint_row_builder *b, int i) {
    return b->buf + (size_t)(((unsigned)b->nfields + 63) / 64) * 8 + (size_t)(unsigned)i * 8;
}
static inline void flint_row_builder_set_slot_(flint_row_builder *b, int i, uint64_t v) {
    uint8_t *buf = b->buf;
    size_t slots = (size_t)(((unsigned)b->nfields + 63) / 64) * 8;
    uint8_t *wp = buf + (size_t)((unsigned)i / 64) * 8;
    uint64_t w;
    memcpy(&w, wp, 8);
    w &= ~((uint64_t)1 << ((unsigned)i % 64));
    memcpy(wp, &w, 8);
    memcpy(buf + slots + (size_t)(unsigned)i * 8, &v, 8);
}

/* Every field NULL (null bits set, slots zero: the one canonical form flint_row_check expects). */
static inline void flint_row_builder_reset(flint_row_builder *b) {
    unsigned n = (unsigned)b->nfields;
    unsigned words = (n + 63) / 64;
    size_t fixed = (size_t)words * 8 + (size_t)n * 8;
    uint64_t ones = ~(uint64_t)0;
    for (unsigned w = 0; w + 1 < words; w++) memcpy(b->buf + (size_t)w * 8, &ones, 8);
    uint64_t last = n % 64 ? (((uint64_t)1 << (n % 64)) - 1) : ones;
    memcpy(b->buf + (size_t)(words - 1) * 8, &last, 8);
    memset(b->buf + (size_t)words * 8, 0, (size_t)n * 8);
    b->len = fixed;
}

static inline void flint_row_set_null(flint_row_builder *b, int i) {
    flint_row_check_field_(b, i);
    uint8_t *wp = b->buf + (size_t)((unsigned)i / 64) * 8;
    uint64_t w, zero = 0;
    memcpy(&w, wp, 8);
    w |= (uint64_t)1 << ((unsigned)i % 64);
    memcpy(wp, &w, 8);
    memcpy(flint_row_builder_slot_(b, i), &zero, 8);
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

/* Fast path: a fixed-size field is its slot and null bit; a variable one, one append. */
static inline void flint_row_copy_field(flint_row_builder *b, int i, const flint_row *src, int j) {
    flint_row_check_field_(b, i);
    assert(src && (unsigned)j < (unsigned)src->nfields);
    flint_type t = b->schema->types[i];
    assert((!src->schema || src->schema->types[j] == t) &&
           "flint_row_copy_field between fields of different types");
    if (flint_row_is_null(src, j)) {
        flint_row_set_null(b, i);
    } else if (t == FLINT_STRING || t == FLINT_BYTES) {
        size_t len;
        const char *p = flint_row_get_string(src, j, &len);
        flint_row_set_var_(b, i, p, len);
    } else {
        flint_row_builder_set_slot_(b, i, flint_row_slot_(src, j));
    }
}

#endif
