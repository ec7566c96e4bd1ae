/* Keyed state of one operator instance, in memory: key bytes -> one value (a row, copied). The
 * rolling reduce and aggregations keep their current aggregate here. Kept behind this small
 * interface so that the state backends of a later issue (hashmap with snapshots, RocksDB) replace
 * it without touching the operators. Allocates only for new keys (and when a key's value grows). */
#ifndef FLINT_TM_KEYED_STATE_H
#define FLINT_TM_KEYED_STATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tm_kvalue {
    uint8_t *data;             /* the value's bytes; writable in place (len bytes) */
    uint32_t len, cap;
} tm_kvalue;

typedef struct tm_kstate tm_kstate;

tm_kstate *tm_kstate_new(void);
void tm_kstate_free(tm_kstate *s);
/* The value stored under key, or NULL. Valid until the next put. */
tm_kvalue *tm_kstate_get(tm_kstate *s, const uint8_t *key, size_t klen);
/* Store a copy of val[0..vlen) under key (replacing any value); returns the stored value. */
tm_kvalue *tm_kstate_put(tm_kstate *s, const uint8_t *key, size_t klen, const void *val, uint32_t vlen);
size_t tm_kstate_count(const tm_kstate *s);

#endif
