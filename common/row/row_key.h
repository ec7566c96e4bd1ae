/* Keys of rows and their key groups: the one implementation of keyed partitioning shared by the
 * client (key field validation), the jobmanager and the taskmanagers (HASH partitioner, keyed
 * state). Internal to Flint (not under common/include/flint/).
 *
 * Key bytes: for each key field in order, one tag byte (0 = NULL, else 1 + the field's flint_type)
 * followed, for a non-NULL field, by its value: 8 bytes little-endian for INT (widened to 64 bits),
 * BIGINT, TIMESTAMP, DOUBLE (NaNs canonicalized to 0x7ff8000000000000; -0.0 and 0.0 differ, as in
 * Java) and BOOLEAN (0 or 1); for STRING and BYTES a 4-byte little-endian length and the bytes. So
 * two rows have equal key bytes exactly when their key fields have equal types and values, and
 * ("ab", "c") never collides with ("a", "bc").
 *
 * hash = XXH3_64bits(key bytes); key group = hash % max_parallelism; the subtask that owns a key
 * group = key_group * parallelism / max_parallelism (Flink's KeyGroupRangeAssignment). */
#ifndef FLINT_ROW_KEY_H
#define FLINT_ROW_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "flint/row.h"

/* Longest encoding of one fixed-size field (tag + 8 bytes) and the header of a variable one
 * (tag + 4-byte length). */
#define ROW_KEY_FIXED_BYTES 9
#define ROW_KEY_VAR_HEADER 5

/* Encode fields[0..n) of r into buf[0..cap) (fields NULL: fields 0..n-1, e.g. the whole row of a
 * key selector's key schema). Returns the number of bytes the key needs, like snprintf: when that
 * is more than cap, buf holds an incomplete key and the caller retries with a bigger buffer.
 * No allocation; r must have a schema. */
size_t row_key_encode(const flint_row *r, const int *fields, int n, uint8_t *buf, size_t cap);

/* XXH3_64bits of the key bytes. */
uint64_t row_key_hash(const uint8_t *key, size_t len);

/* The hash of fields[0..n) of r (fields NULL: 0..n-1) without a buffer: equal to
 * row_key_hash() of row_key_encode()'s bytes, for keys of any size. No allocation. */
uint64_t row_key_hash_row(const flint_row *r, const int *fields, int n);

/* The key group of a hash: hash % max_parallelism (max_parallelism >= 1). */
int row_key_group(uint64_t hash, int max_parallelism);

/* The subtask (0..parallelism-1) that owns key_group: key_group * parallelism / max_parallelism
 * (0 <= key_group < max_parallelism, 1 <= parallelism <= max_parallelism). */
int row_key_group_to_subtask(int key_group, int max_parallelism, int parallelism);

/* The key groups [*first, *last] owned by subtask (the inverse of row_key_group_to_subtask; the
 * range is empty, *first > *last, only when parallelism > max_parallelism, which callers reject). */
void row_key_group_range(int subtask, int max_parallelism, int parallelism, int *first,
                         int *last);

/* Parse comma-separated field names ("word" or "user, region"; names may be `backquoted`) of
 * schema s into field indexes fields[0..max). Returns the number of fields (>= 1), or -1 with err
 * filled: no names, an unknown field (the message lists the schema), a field named twice, more
 * than max names. */
int row_key_fields_parse(const flint_schema *s, const char *names, int *fields, int max,
                         flint_err *err);

/* Parse a comma-separated list of field indexes ("0" or "0,2", the "key.fields" operator param)
 * for a schema of nfields fields into fields[0..max). Returns the count (>= 1) or -1 with err
 * filled: empty, not a number, out of range, repeated, more than max. */
int row_key_indexes_parse(const char *text, int nfields, int *fields, int max, flint_err *err);

/* Format fields[0..n) as "0,2" into buf[0..cap) (NUL-terminated when cap > 0). Returns the length
 * it needs, like snprintf. */
size_t row_key_indexes_format(const int *fields, int n, char *buf, size_t cap);

#endif
