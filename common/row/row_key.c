/* Keys of rows (see row_key.h): canonical key bytes, their XXH3 hash, key groups and the subtask
 * that owns a key group, and the parsers for key field lists. Encoding and hashing run once per
 * record in keyed operators and HASH partitioners: no allocation, no strlen. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL   /* XXH3 compiled in (a short key's hash is a few multiplies, not a library call);
                          * the same function as libxxhash's XXH3_64bits; XXH3_state_t on the stack */
#include <xxhash.h>

#include "row/row_internal.h"
#include "row/row_key.h"

static inline void le64(uint8_t *p, uint64_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 8);   /* one store (the byte loop below was not merged at -O2) */
#else
    for (int k = 0; k < 8; k++) p[k] = (uint8_t)(v >> (8 * k));
#endif
}

/* The head of field f's key encoding into hdr (tag, then the value or the length), its length as
 * the result, and for a variable-length field its bytes in *var, *varlen. */
static inline size_t field_head(const flint_row *r, int f, uint8_t hdr[ROW_KEY_FIXED_BYTES],
                                const uint8_t **var, size_t *varlen) {
    assert(f >= 0 && f < r->nfields);
    *varlen = 0;
    if (flint_row_is_null(r, f)) {
        hdr[0] = 0;
        return 1;
    }
    flint_type t = r->schema->types[f];
    hdr[0] = (uint8_t)(1 + t);
    uint64_t v = flint_row_slot_(r, f);
    switch (t) {
    case FLINT_STRING:
    case FLINT_BYTES: {
        uint32_t len = (uint32_t)(v & 0xffffffffu);
        hdr[1] = (uint8_t)len;
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)(len >> 16);
        hdr[4] = (uint8_t)(len >> 24);
        *var = r->data + (v >> 32);
        *varlen = len;
        return ROW_KEY_VAR_HEADER;
    }
    case FLINT_INT:
        v = (uint64_t)(int64_t)(int32_t)v;
        break;
    case FLINT_BOOLEAN:
        v = v != 0;
        break;
    case FLINT_DOUBLE:
        if ((v & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (v & 0xfffffffffffffull))
            v = 0x7ff8000000000000ull;   /* one NaN */
        break;
    default:
        break;
    }
    le64(hdr + 1, v);
    return ROW_KEY_FIXED_BYTES;
}

/* row_key_encode's general case: any number of fields, any types. */
static __attribute__((noinline)) size_t encode_fields(const flint_row *r, const int *fields, int n, uint8_t *buf,
                                                      size_t cap) {
    size_t pos = 0;
    for (int k = 0; k < n; k++) {
        uint8_t hdr[ROW_KEY_FIXED_BYTES];
        const uint8_t *var = NULL;
        size_t varlen;
        size_t h = field_head(r, fields ? fields[k] : k, hdr, &var, &varlen);
        if (pos + h <= cap) memcpy(buf + pos, hdr, h);
        pos += h;
        if (varlen && pos + varlen <= cap) memcpy(buf + pos, var, varlen);
        pos += varlen;
    }
    return pos;
}

/* row_key_encode, inlined into row_key_hash_row (an exported function is not inlined under -fPIC):
 * the common key, one fixed-size (or NULL) field, is written straight into buf; the rest goes to
 * encode_fields, out of line, so the fast path saves and restores no registers. */
static inline size_t encode(const flint_row *r, const int *fields, int n, uint8_t *buf, size_t cap) {
    assert(r && r->schema && n >= 0 && (buf || cap == 0));
    if (n == 1 && cap >= ROW_KEY_FIXED_BYTES) {
        int f = fields ? fields[0] : 0;
        const uint8_t *var;
        size_t varlen;
        if (!row_type_is_var(r->schema->types[f])) return field_head(r, f, buf, &var, &varlen);
    }
    return encode_fields(r, fields, n, buf, cap);
}

size_t row_key_encode(const flint_row *r, const int *fields, int n, uint8_t *buf, size_t cap) {
    return encode(r, fields, n, buf, cap);
}

uint64_t row_key_hash(const uint8_t *key, size_t len) {
    return XXH3_64bits(key, len);
}

uint64_t row_key_hash_row(const flint_row *r, const int *fields, int n) {
    uint8_t buf[256];
    size_t need = encode(r, fields, n, buf, sizeof buf);
    if (need <= sizeof buf) return XXH3_64bits(buf, need);
    /* A long key: stream the same bytes through XXH3 (same result as the one-shot hash). */
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    for (int k = 0; k < n; k++) {
        uint8_t hdr[ROW_KEY_FIXED_BYTES];
        const uint8_t *var = NULL;
        size_t varlen;
        size_t h = field_head(r, fields ? fields[k] : k, hdr, &var, &varlen);
        XXH3_64bits_update(&st, hdr, h);
        if (varlen) XXH3_64bits_update(&st, var, varlen);
    }
    return XXH3_64bits_digest(&st);
}

int row_key_group(uint64_t hash, int max_parallelism) {
    assert(max_parallelism >= 1);
    return (int)(hash % (uint64_t)max_parallelism);
}

int row_key_group_to_subtask(int key_group, int max_parallelism, int parallelism) {
    assert(max_parallelism >= 1 && parallelism >= 1 && parallelism <= max_parallelism);
    assert(key_group >= 0 && key_group < max_parallelism);
    return (int)((int64_t)key_group * parallelism / max_parallelism);
}

void row_key_group_range(int subtask, int max_parallelism, int parallelism, int *first,
                         int *last) {
    assert(max_parallelism >= 1 && parallelism >= 1 && subtask >= 0 && subtask < parallelism);
    *first = (int)(((int64_t)subtask * max_parallelism + parallelism - 1) / parallelism);
    *last = (int)(((int64_t)(subtask + 1) * max_parallelism - 1) / parallelism);
}

/* ---- key field lists ----------------------------------------------------------------------- */

/* The next comma-separated item of *p, trimmed: [*start, *start + *len); advances *p past it and
 * its comma; *last tells whether it was the last item. */
static void next_item(const char **p, const char **start, size_t *len, bool *last) {
    const char *s = *p;
    const char *e = strchr(s, ',');
    *last = e == NULL;
    if (!e) e = s + strlen(s);
    *p = *e ? e + 1 : e;
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    *start = s;
    *len = (size_t)(e - s);
}

int row_key_fields_parse(const flint_schema *s, const char *names, int *fields, int max,
                         flint_err *err) {
    assert(s && fields && max >= 1);
    const char *p = names ? names : "";
    while (isspace((unsigned char)*p)) p++;
    if (!*p) {
        flint_err_set(err, FLINT_INVALID, "no key fields given; the fields are: %s", s->text);
        return -1;
    }
    int n = 0;
    for (bool last = false; !last;) {
        const char *item;
        size_t len;
        next_item(&p, &item, &len, &last);
        if (len >= 2 && item[0] == '`' && item[len - 1] == '`') item++, len -= 2;
        if (len == 0) {
            flint_err_set(err, FLINT_INVALID, "empty key field %d in '%s'; the fields are: %s",
                          n + 1, names, s->text);
            return -1;
        }
        int f = -1;
        for (int i = 0; i < s->n && f < 0; i++)
            if (strlen(s->names[i]) == len && memcmp(s->names[i], item, len) == 0) f = i;
        if (f < 0) {
            flint_err_set(err, FLINT_NOT_FOUND, "unknown key field '%.*s'; the fields are: %s",
                          (int)len, item, s->text);
            return -1;
        }
        for (int k = 0; k < n; k++) {
            if (fields[k] == f) {
                flint_err_set(err, FLINT_INVALID, "key field '%s' is given twice in '%s'",
                              s->names[f], names);
                return -1;
            }
        }
        if (n == max) {
            flint_err_set(err, FLINT_TOO_LARGE, "more than %d key fields in '%s'", max, names);
            return -1;
        }
        fields[n++] = f;
    }
    return n;
}

int row_key_indexes_parse(const char *text, int nfields, int *fields, int max, flint_err *err) {
    assert(fields && max >= 1 && nfields >= 0);
    const char *p = text ? text : "";
    while (isspace((unsigned char)*p)) p++;
    if (!*p) {
        flint_err_set(err, FLINT_INVALID,
                      "no key field indexes given: expected indexes such as '0' or '0,2'");
        return -1;
    }
    int n = 0;
    for (bool last = false; !last;) {
        const char *item;
        size_t len;
        next_item(&p, &item, &len, &last);
        char tmp[16];
        long v = -1;
        bool ok = len > 0 && len < sizeof tmp;
        for (size_t k = 0; ok && k < len; k++) ok = isdigit((unsigned char)item[k]);
        if (ok) {
            memcpy(tmp, item, len);
            tmp[len] = '\0';
            errno = 0;
            v = strtol(tmp, NULL, 10);
            ok = errno == 0;
        }
        if (!ok) {
            flint_err_set(err, FLINT_INVALID,
                          "key field index %d in '%s' is '%.*s': expected a number such as "
                          "'0' or '0,2'",
                          n + 1, text, (int)(len > 20 ? 20 : len), item);
            return -1;
        }
        if (v >= nfields) {
            flint_err_set(err, FLINT_INVALID,
                          "key field index %ld is out of range: the schema has %d fields "
                          "(0..%d)",
                          v, nfields, nfields - 1);
            return -1;
        }
        for (int k = 0; k < n; k++) {
            if (fields[k] == v) {
                flint_err_set(err, FLINT_INVALID, "key field index %ld is given twice in '%s'",
                              v, text);
                return -1;
            }
        }
        if (n == max) {
            flint_err_set(err, FLINT_TOO_LARGE, "more than %d key fields in '%s'", max, text);
            return -1;
        }
        fields[n++] = (int)v;
    }
    return n;
}

size_t row_key_indexes_format(const int *fields, int n, char *buf, size_t cap) {
    assert((fields || n == 0) && (buf || cap == 0));
    size_t pos = 0;
    if (cap) buf[0] = '\0';
    for (int k = 0; k < n; k++) {
        int w = snprintf(pos < cap ? buf + pos : NULL, pos < cap ? cap - pos : 0, "%s%d",
                         k ? "," : "", fields[k]);
        pos += (size_t)w;
    }
    return pos;
}
