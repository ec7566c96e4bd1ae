/* Keys of rows as the taskmanager needs them: the HASH partitioner and the keyed operators turn a
 * row into key bytes, either from key field indexes (row_key_encode) or with a key-selector user
 * function (the serialized key row is the key). One buffer reused per extractor: no allocation
 * per record once the largest key has been seen. */
#ifndef FLINT_TM_KEYS_H
#define FLINT_TM_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "flint/flint.h"

typedef struct tm_keys {
    int *fields;                 /* key field indexes (owned), or NULL with a selector */
    int nfields;
    flint_key_fn selector;
    flint_ctx *ctx;              /* the selector's context (not owned) */
    flint_schema *key_schema;    /* owned */
    flint_row_builder kb;
    uint8_t *buf;
    size_t cap;
} tm_keys;

/* Key by field indexes ("0" or "0,2") of a row of schema. */
int tm_keys_init_fields(tm_keys *k, const char *indexes, const flint_schema *schema, flint_err *err);
int tm_keys_init_array(tm_keys *k, const int *fields, int n, const flint_schema *schema, flint_err *err);
/* Key with a selector producing rows of key_schema (a column list); ctx is passed to it. */
int tm_keys_init_selector(tm_keys *k, flint_key_fn fn, flint_ctx *ctx, const char *key_schema,
                          flint_err *err);
/* The key bytes of row in *key (valid until the next call). Fails only when the selector calls
 * flint_ctx_fail (its message in err). */
int tm_keys_get(tm_keys *k, const flint_row *row, const uint8_t **key, size_t *len, flint_err *err);
void tm_keys_free(tm_keys *k);

#endif
