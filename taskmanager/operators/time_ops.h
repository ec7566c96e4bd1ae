/* Helpers of the event-time operators (time.c, process.c) that the unit tests check directly. */
#ifndef FLINT_TM_TIME_OPS_H
#define FLINT_TM_TIME_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "flint/flint.h"

/* Bounded out-of-orderness: max_ts - bound - 1 (Flink's BoundedOutOfOrdernessWatermarks);
 * INT64_MIN before the first row (max_ts INT64_MIN) and instead of underflowing. */
int64_t tm_bounded_watermark(int64_t max_ts, int64_t bound);

/* Decode key bytes (row_key_encode's format) into b, a builder of the key's schema (its fields
 * in key order). FLINT_OK, or FLINT_INVALID when the bytes do not match the schema. */
int tm_key_decode(const uint8_t *key, size_t len, flint_row_builder *b);

/* The key schema of key field indexes fields[0..n) of schema s, as a column list (a new
 * string: free it). */
char *tm_key_schema_text(const flint_schema *s, const int *fields, int n);

#endif
