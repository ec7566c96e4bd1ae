/* String helpers and the parsers for the value forms users type in config and on command lines:
 * integers, booleans, durations ("100 ms", "10 s", "1 min") and memory sizes ("32kb", "64 mb"),
 * with Flink's unit names. Parsers return 0 on success, -1 on a malformed value. */
#ifndef FLINT_STRUTIL_H
#define FLINT_STRUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A whole decimal integer, optional sign, surrounding spaces allowed. */
int str_parse_int(const char *s, int64_t *out);
/* "true"/"false" (any case), also "yes"/"no", "on"/"off", "1"/"0". */
int str_parse_bool(const char *s, bool *out);
/* A floating-point number. */
int str_parse_double(const char *s, double *out);
/* A duration in milliseconds: a number and a unit (ms, s, min, h, d and their long forms); a bare
 * number is milliseconds, as in Flink. */
int str_parse_duration_ms(const char *s, int64_t *out);
/* A memory size in bytes: a number and a unit (b, k/kb, m/mb, g/gb, t/tb, 1024-based). */
int str_parse_memsize(const char *s, int64_t *out);
/* "host:port" with a port in 1..65535; host is copied into host[hostlen]. */
int str_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

/* Format milliseconds as Flink prints durations ("200 ms", "10 s", "5 min"). */
void str_format_duration(int64_t ms, char *buf, size_t len);
/* Format bytes as "32kb", "1gb" (exact units only, else bytes). */
void str_format_memsize(int64_t bytes, char *buf, size_t len);

/* Trim leading and trailing white space in place; returns s. */
char *str_trim(char *s);
bool str_starts_with(const char *s, const char *prefix);
/* Lower-case hex of n random bytes (from getrandom) into out[2n+1]. */
void str_random_hex(char *out, size_t nbytes);

#endif
