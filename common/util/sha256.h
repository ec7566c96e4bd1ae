/* SHA-256 (FIPS 180-4): the content address of job artifacts (client, jobmanager's artifact store,
 * taskmanager's cache). Incremental (init/update/final) and one-shot forms. */
#ifndef FLINT_SHA256_H
#define FLINT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "flint/status.h"

#define SHA256_DIGEST_LEN 32
#define SHA256_HEX_LEN 65   /* 64 hex digits and the NUL */

typedef struct sha256_ctx {
    uint32_t state[8];
    uint64_t bytes;          /* message length so far */
    uint8_t block[64];
    size_t fill;             /* bytes waiting in block */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
/* Finish and write the digest; c must be initialized again before reuse. */
void sha256_final(sha256_ctx *c, uint8_t out[SHA256_DIGEST_LEN]);

/* One-shot digest of data[0..len). */
void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_LEN]);
/* One-shot digest as 64 lower-case hex digits into hex[SHA256_HEX_LEN]. */
void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN]);
/* Lower-case hex of a digest into hex[SHA256_HEX_LEN]. */
void sha256_to_hex(const uint8_t digest[SHA256_DIGEST_LEN], char hex[SHA256_HEX_LEN]);
/* Hex digest of a whole file. FLINT_IO with err naming the path when it cannot be read. */
int sha256_file_hex(const char *path, char hex[SHA256_HEX_LEN], flint_err *err);

#endif
