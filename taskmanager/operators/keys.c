/* Key extraction for partitioners and keyed operators (see keys.h). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "operators/keys.h"
#include "row/row_key.h"
#include "runtime/runtime.h"
#include "util/alloc.h"

int tm_keys_init_fields(tm_keys *k, const char *indexes, const flint_schema *schema, flint_err *err) {
    int n = flint_schema_field_count(schema);
    int *fields = xcalloc((size_t)n + 1, sizeof *fields);
    int got = row_key_indexes_parse(indexes ? indexes : "", n, fields, n, err);
    if (got < 0) {
        free(fields);
        return FLINT_INVALID;
    }
    int rc = tm_keys_init_array(k, fields, got, schema, err);
    free(fields);
    return rc;
}

int tm_keys_init_array(tm_keys *k, const int *fields, int n, const flint_schema *schema, flint_err *err) {
    memset(k, 0, sizeof *k);
    int nf = flint_schema_field_count(schema);
    if (n < 1) return flint_err_set(err, FLINT_INVALID, "no key fields");
    for (int i = 0; i < n; i++)
        if (fields[i] < 0 || fields[i] >= nf)
            return flint_err_set(err, FLINT_INVALID, "key field %d out of range (the schema has %d fields: %s)",
                                 fields[i], nf, flint_schema_text(schema));
    k->fields = xcalloc((size_t)n, sizeof *k->fields);
    memcpy(k->fields, fields, (size_t)n * sizeof *fields);
    k->nfields = n;
    k->cap = 64;
    k->buf = xmalloc(k->cap);
    return FLINT_OK;
}

int tm_keys_init_selector(tm_keys *k, flint_key_fn fn, flint_ctx *ctx, const char *key_schema,
                          flint_err *err) {
    memset(k, 0, sizeof *k);
    assert(fn);
    if (!key_schema || !key_schema[0]) return flint_err_set(err, FLINT_INVALID, "a key selector needs a key schema");
    int rc = flint_schema_parse(key_schema, &k->key_schema, err);
    if (rc) return rc;
    k->selector = fn;
    k->ctx = ctx;
    flint_row_builder_init(&k->kb, k->key_schema);
    k->cap = 64;
    k->buf = xmalloc(k->cap);
    return FLINT_OK;
}

int tm_keys_get(tm_keys *k, const flint_row *row, const uint8_t **key, size_t *len, flint_err *err) {
    const flint_row *src = row;
    const int *fields = k->fields;
    int n = k->nfields;
    flint_row keyrow;
    if (k->selector) {
        /* The key row the selector builds, encoded whole: equal keys give equal bytes however
         * the selector laid out its variable-length fields. */
        flint_row_builder_reset(&k->kb);
        k->selector(k->ctx, row, &k->kb);
        if (k->ctx && k->ctx->failed) return flint_err_set(err, FLINT_ERR, "%s", k->ctx->error);
        keyrow = flint_row_builder_row(&k->kb);
        src = &keyrow;
        fields = NULL;
        n = keyrow.nfields;
    }
    size_t need = row_key_encode(src, fields, n, k->buf, k->cap);
    if (need > k->cap) {
        while (k->cap < need) k->cap *= 2;
        k->buf = xrealloc(k->buf, k->cap);
        need = row_key_encode(src, fields, n, k->buf, k->cap);
    }
    *key = k->buf;
    *len = need;
    return FLINT_OK;
}

void tm_keys_free(tm_keys *k) {
    if (!k) return;
    free(k->fields);
    free(k->buf);
    if (k->key_schema) {
        flint_row_builder_free(&k->kb);
        flint_schema_free(k->key_schema);
    }
    memset(k, 0, sizeof *k);
}
