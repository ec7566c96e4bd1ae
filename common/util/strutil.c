/* Value parsers and string helpers (see strutil.h). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "util/strutil.h"

static const char *skip_space(const char *s) {
    while (isspace((unsigned char)*s)) s++;
    return s;
}

int str_parse_int(const char *s, int64_t *out) {
    s = skip_space(s);
    if (!*s) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *skip_space(end)) return -1;
    *out = v;
    return 0;
}

int str_parse_double(const char *s, double *out) {
    s = skip_space(s);
    if (!*s) return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || *skip_space(end) || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int str_parse_bool(const char *s, bool *out) {
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    char buf[16];
    if ((size_t)snprintf(buf, sizeof buf, "%s", skip_space(s)) >= sizeof buf) return -1;
    str_trim(buf);
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(buf, yes[i]) == 0) { *out = true; return 0; }
        if (strcasecmp(buf, no[i]) == 0) { *out = false; return 0; }
    }
    return -1;
}

typedef struct unit { const char *name; int64_t factor; } unit;

/* Split "<int> <unit>" and scale by the unit's factor; the empty unit has factor units[0]. */
static int parse_scaled(const char *s, const unit *units, size_t nunits, int64_t *out) {
    s = skip_space(s);
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0) return -1;
    char name[24];
    if ((size_t)snprintf(name, sizeof name, "%s", skip_space(end)) >= sizeof name) return -1;
    str_trim(name);
    for (size_t i = 0; i < nunits; i++) {
        if (strcasecmp(name, units[i].name) != 0) continue;
        if (v > INT64_MAX / units[i].factor) return -1;
        *out = v * units[i].factor;
        return 0;
    }
    return -1;
}

int str_parse_duration_ms(const char *s, int64_t *out) {
    static const unit units[] = {
        {"", 1}, {"ms", 1}, {"milli", 1}, {"millis", 1}, {"millisecond", 1}, {"milliseconds", 1},
        {"s", 1000}, {"sec", 1000}, {"secs", 1000}, {"second", 1000}, {"seconds", 1000},
        {"m", 60000}, {"min", 60000}, {"mins", 60000}, {"minute", 60000}, {"minutes", 60000},
        {"h", 3600000}, {"hour", 3600000}, {"hours", 3600000},
        {"d", 86400000}, {"day", 86400000}, {"days", 86400000},
    };
    return parse_scaled(s, units, sizeof units / sizeof units[0], out);
}

int str_parse_memsize(const char *s, int64_t *out) {
    static const unit units[] = {
        {"", 1}, {"b", 1}, {"bytes", 1},
        {"k", 1LL << 10}, {"kb", 1LL << 10}, {"kibibytes", 1LL << 10},
        {"m", 1LL << 20}, {"mb", 1LL << 20}, {"mebibytes", 1LL << 20},
        {"g", 1LL << 30}, {"gb", 1LL << 30}, {"gibibytes", 1LL << 30},
        {"t", 1LL << 40}, {"tb", 1LL << 40}, {"tebibytes", 1LL << 40},
    };
    return parse_scaled(s, units, sizeof units / sizeof units[0], out);
}

int str_parse_hostport(const char *s, char *host, size_t hostlen, int *port) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= hostlen) return -1;
    int64_t p;
    if (str_parse_int(colon + 1, &p) || p < 1 || p > 65535) return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (int)p;
    return 0;
}

void str_format_duration(int64_t ms, char *buf, size_t len) {
    static const unit units[] = {{"d", 86400000}, {"h", 3600000}, {"min", 60000}, {"s", 1000}};
    for (size_t i = 0; i < 4; i++) {
        if (ms != 0 && ms % units[i].factor == 0) {
            snprintf(buf, len, "%" PRId64 " %s", ms / units[i].factor, units[i].name);
            return;
        }
    }
    snprintf(buf, len, "%" PRId64 " ms", ms);
}

void str_format_memsize(int64_t bytes, char *buf, size_t len) {
    static const unit units[] = {{"tb", 1LL << 40}, {"gb", 1LL << 30}, {"mb", 1LL << 20}, {"kb", 1LL << 10}};
    for (size_t i = 0; i < 4; i++) {
        if (bytes != 0 && bytes % units[i].factor == 0) {
            snprintf(buf, len, "%" PRId64 "%s", bytes / units[i].factor, units[i].name);
            return;
        }
    }
    snprintf(buf, len, "%" PRId64 "b", bytes);
}

char *str_trim(char *s) {
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    size_t i = 0;
    while (isspace((unsigned char)s[i])) i++;
    if (i) memmove(s, s + i, n - i + 1);
    return s;
}

bool str_starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

void str_random_hex(char *out, size_t nbytes) {
    unsigned char b[64];
    if (nbytes > sizeof b) nbytes = sizeof b;
    size_t got = 0;
    while (got < nbytes) {
        ssize_t r = getrandom(b + got, nbytes - got, 0);
        if (r > 0) got += (size_t)r;
    }
    for (size_t i = 0; i < nbytes; i++) sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * nbytes] = '\0';
}
