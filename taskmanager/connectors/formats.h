/* Record formats of the Kafka connectors (Flink's formats): how a record's key or value bytes map
 * to some columns of a row and back. "raw" (one BYTES or STRING column, the bytes as they are),
 * "text" (reading: one STRING column, valid UTF-8; writing: the columns' text forms joined by a
 * space, as the text file sink writes them), "json" (an object; columns by name, types checked,
 * jansson) and "csv" (RFC 4180: delimiter, quoting with doubled quotes). Text forms: TIMESTAMP(3)
 * as 'yyyy-MM-dd HH:mm:ss.SSS' (reading also epoch milliseconds and ISO-8601 with 'T'/'Z'), BYTES
 * as base64 in json and csv. Also the JSON form of record headers (fmt_headers_encode/_decode).
 * docs/connectors.md ("Formats", "Record headers as JSON") is the user's description.
 *
 * A format instance is used by one thread. Errors are messages without position (the caller adds
 * topic, partition and offset): "field 'n': expected BIGINT, got \"abc\"". */
#ifndef FLINT_CONNECTORS_FORMATS_H
#define FLINT_CONNECTORS_FORMATS_H

#include <stdbool.h>
#include <stddef.h>

#include "flint/row.h"
#include "flint/status.h"

typedef enum fmt_kind { FMT_RAW, FMT_TEXT, FMT_JSON, FMT_CSV } fmt_kind;

typedef struct fmt {
    fmt_kind kind;
    const flint_schema *schema;   /* not owned */
    int *cols;                    /* the schema's columns the format maps, in order (owned) */
    int ncols;
    char delim, quote;            /* csv */
    bool fail_on_missing;         /* json: a missing field is an error (else NULL) */
    char *buf;                    /* encoding buffer (owned) */
    size_t cap, len;
} fmt;

/* Options of a format ("csv.field-delimiter", ...): the value or NULL. */
typedef const char *(*fmt_option_fn)(void *ud, const char *key);

/* Set up format name ("raw", "text", "json", "csv") over columns cols[0..ncols) of schema
 * (copied); writing: for a sink. prefix: where its options live ("" for the value format, "key."
 * for the key's), read through opt (may be NULL). Fails when the format does not fit the columns. */
int fmt_init(fmt *f, const char *name, const flint_schema *schema, const int *cols, int ncols, bool writing,
             fmt_option_fn opt, void *ud, const char *prefix, flint_err *err);
void fmt_free(fmt *f);

/* Parse data[0..len) into the format's columns of b (a builder of schema, reset by the caller;
 * other columns are not touched). */
int fmt_decode(fmt *f, const void *data, size_t len, flint_row_builder *b, flint_err *err);

/* Serialize the format's columns of row. *out (the format's buffer) is valid until the next call. */
int fmt_encode(fmt *f, const flint_row *row, const void **out, size_t *len, flint_err *err);

/* Helpers shared with the connectors and tests. */
/* Epoch ms as 'yyyy-MM-dd HH:mm:ss.SSS' into buf[24]. */
void fmt_timestamp_text(int64_t ms, char buf[32]);
/* 'yyyy-MM-dd[( |T)HH:mm:ss[.fff]][Z]' or epoch ms -> ms; false when malformed. */
bool fmt_parse_timestamp(const char *s, size_t len, int64_t *ms);
/* Standard base64 with padding; returns the length written (out needs 4 * ceil(len / 3) + 1). */
size_t fmt_base64_encode(const void *data, size_t len, char *out);
/* Decode base64 (padding optional); false when malformed. out needs len / 4 * 3 + 3 bytes. */
bool fmt_base64_decode(const char *s, size_t len, unsigned char *out, size_t *outlen);
/* Whether p[0..len) is valid UTF-8. */
bool fmt_utf8_valid(const void *p, size_t len);

/* Kafka record headers as the JSON text of the source's `headers` metadata column and of the
 * sink's headers field: an object with one member per name in the order of first appearance; a
 * value that is valid UTF-8 as a string, other bytes as {"base64": "..."}, a header without a
 * value as null, and a name that repeats as an array of its values in order. Decoding takes
 * exactly these forms, so bytes round-trip. */
typedef struct fmt_header {
    const char *name;    /* NUL-terminated */
    const void *value;   /* NULL: a header without a value */
    size_t len;
} fmt_header;

/* Headers h[0..n) as that JSON text (malloc'd), or NULL with err when a name is not UTF-8. */
char *fmt_headers_encode(const fmt_header *h, size_t n, flint_err *err);

/* Parse text[0..len) calling add for each header in order; an error names the bad header. */
typedef void (*fmt_header_fn)(void *ud, const char *name, const void *value, size_t len);
int fmt_headers_decode(const char *text, size_t len, fmt_header_fn add, void *ud, flint_err *err);

#endif
