/* Record formats of the Kafka connectors: raw, text, json (jansson) and csv, decoding record bytes
 * into row columns and encoding columns into record bytes (see formats.h). */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/formats.h"
#include "util/alloc.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void fmt_timestamp_text(int64_t ms, char buf[32]) {
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rem = ms - days * 86400000;
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%04lld-%02u-%02u %02d:%02d:%02d.%03d", (long long)y, mo, d, (int)(rem / 3600000),
             (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
    size_t n = strnlen(tmp, 31);
    memcpy(buf, tmp, n);
    buf[n] = '\0';
}

static bool ndigits(const char **p, const char *end, int n, unsigned *out) {
    unsigned v = 0;
    for (int k = 0; k < n; k++, (*p)++) {
        if (*p >= end || !isdigit((unsigned char)**p)) return false;
        v = v * 10 + (unsigned)(**p - '0');
    }
    *out = v;
    return true;
}

bool fmt_parse_timestamp(const char *s, size_t len, int64_t *ms) {
    const char *p = s, *end = s + len;
    /* Epoch milliseconds. */
    const char *q = p;
    if (q < end && *q == '-') q++;
    bool all = q < end;
    for (const char *r = q; r < end; r++) all &= isdigit((unsigned char)*r) != 0;
    if (all && len < 20) {
        char tmp[24];
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        *ms = strtoll(tmp, NULL, 10);
        return true;
    }
    unsigned y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    if (!ndigits(&p, end, 4, &y) || p >= end || *p++ != '-' || !ndigits(&p, end, 2, &mo) || p >= end ||
        *p++ != '-' || !ndigits(&p, end, 2, &d))
        return false;
    if (p < end && (*p == ' ' || *p == 'T')) {
        p++;
        if (!ndigits(&p, end, 2, &h) || p >= end || *p++ != ':' || !ndigits(&p, end, 2, &mi) || p >= end ||
            *p++ != ':' || !ndigits(&p, end, 2, &sec))
            return false;
        if (p < end && *p == '.') {
            p++;
            int nd = 0;
            unsigned scale = 100;
            while (p < end && isdigit((unsigned char)*p) && nd < 9) {
                if (nd < 3) frac += (unsigned)(*p - '0') * scale, scale /= 10;
                p++, nd++;
            }
            if (nd == 0) return false;
        }
        if (p < end && *p == 'Z') p++;
    }
    if (p != end || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return false;
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap)) return false;
    *ms = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) * 1000 + frac;
    return true;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t fmt_base64_encode(const void *data, size_t len, char *out) {
    const unsigned char *p = data;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64[v >> 18], out[o++] = b64[v >> 12 & 63], out[o++] = b64[v >> 6 & 63], out[o++] = b64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = b64[v >> 18];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

bool fmt_base64_decode(const char *s, size_t len, unsigned char *out, size_t *outlen) {
    while (len && s[len - 1] == '=') len--;
    if (len % 4 == 1) return false;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) return false;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *outlen = o;
    return true;
}

/* "a string", "an object", ... for messages. */
static const char *json_kind(const json_t *v) {
    static const char *const kinds[] = {"an object", "an array", "a string", "an integer", "a number", "true", "false", "null"};
    return kinds[json_typeof(v)];
}

bool fmt_utf8_valid(const void *data, size_t len) {
    const unsigned char *p = data, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        int n;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) n = 1, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0) n = 2, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0) n = 3, cp = c & 0x07;
        else return false;
        if (end - p <= n) return false;
        for (int k = 1; k <= n; k++) {
            if ((p[k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (p[k] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

/* A short, printable excerpt of p[0..len) for messages. */
static const char *excerpt(const char *p, size_t len, char buf[64]) {
    size_t o = 0;
    for (size_t i = 0; i < len && o < 40; i++) {
        unsigned char c = (unsigned char)p[i];
        buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (len > 40) buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
    buf[o] = '\0';
    return buf;
}

/* ---- set up ---------------------------------------------------------------------------------------- */

static const char *opt_get(fmt_option_fn opt, void *ud, const char *prefix, const char *key) {
    if (!opt) return NULL;
    char k[128];
    snprintf(k, sizeof k, "%s%s", prefix ? prefix : "", key);
    return opt(ud, k);
}

static int opt_char(fmt_option_fn opt, void *ud, const char *prefix, const char *key, char def, char *out,
                    flint_err *err) {
    const char *v = opt_get(opt, ud, prefix, key);
    *out = def;
    if (!v) return FLINT_OK;
    if (strcmp(v, "\\t") == 0) *out = '\t';
    else if (strlen(v) == 1) *out = v[0];
    else return flint_err_set(err, FLINT_CONFIG, "%s%s: expected one character, got '%s'", prefix ? prefix : "", key, v);
    return FLINT_OK;
}

int fmt_init(fmt *f, const char *name, const flint_schema *schema, const int *cols, int ncols, bool writing,
             fmt_option_fn opt, void *ud, const char *prefix, flint_err *err) {
    memset(f, 0, sizeof *f);
    f->schema = schema;
    if (strcmp(name, "raw") == 0) f->kind = FMT_RAW;
    else if (strcmp(name, "text") == 0) f->kind = FMT_TEXT;
    else if (strcmp(name, "json") == 0) f->kind = FMT_JSON;
    else if (strcmp(name, "csv") == 0) f->kind = FMT_CSV;
    else return flint_err_set(err, FLINT_INVALID, "unknown format '%s' (raw, text, json or csv)", name);
    if (f->kind == FMT_RAW || (f->kind == FMT_TEXT && !writing)) {
        flint_type t = ncols == 1 ? flint_schema_field_type(schema, cols[0]) : FLINT_INT;
        bool ok = ncols == 1 && (t == FLINT_STRING || (f->kind == FMT_RAW && t == FLINT_BYTES));
        if (!ok)
            return flint_err_set(err, FLINT_INVALID, "the format '%s' needs exactly one %s column", name,
                                 f->kind == FMT_RAW ? "BYTES or STRING" : "STRING");
    }
    f->cols = xmalloc((size_t)(ncols ? ncols : 1) * sizeof *f->cols);
    memcpy(f->cols, cols, (size_t)ncols * sizeof *cols);
    f->ncols = ncols;
    int rc = opt_char(opt, ud, prefix, "csv.field-delimiter", ',', &f->delim, err);
    if (!rc) rc = opt_char(opt, ud, prefix, "csv.quote-character", '"', &f->quote, err);
    if (rc) return rc;
    const char *m = opt_get(opt, ud, prefix, "json.fail-on-missing-field");
    f->fail_on_missing = m && (strcasecmp(m, "true") == 0 || strcmp(m, "1") == 0);
    f->cap = 256;
    f->buf = xmalloc(f->cap);
    return FLINT_OK;
}

void fmt_free(fmt *f) {
    free(f->cols);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

/* ---- decoding -------------------------------------------------------------------------------------- */

/* Parse text p[0..len) as a value of column c of b's schema (csv fields, json strings holding
 * numbers). empty_null: an empty text is NULL for non-STRING columns. */
static int parse_text_value(fmt *f, flint_row_builder *b, int c, const char *p, size_t len, bool quoted,
                            flint_err *err) {
    const flint_schema *s = f->schema;
    const char *name = flint_schema_field_name(s, c);
    flint_type t = flint_schema_field_type(s, c);
    char ex[64];
    if (t == FLINT_STRING) {
        if (!fmt_utf8_valid(p, len)) return flint_err_set(err, FLINT_INVALID, "field '%s': not valid UTF-8", name);
        flint_row_set_string(b, c, p, len);
        return FLINT_OK;
    }
    if (len == 0 && !quoted) {
        flint_row_set_null(b, c);
        return FLINT_OK;
    }
    if (t == FLINT_BYTES) {
        unsigned char *tmp = xmalloc(len / 4 * 3 + 4);
        size_t n;
        bool ok = fmt_base64_decode(p, len, tmp, &n);
        if (ok) flint_row_set_bytes(b, c, tmp, n);
        free(tmp);
        if (!ok) return flint_err_set(err, FLINT_INVALID, "field '%s': expected base64, got \"%s\"", name, excerpt(p, len, ex));
        return FLINT_OK;
    }
    char tmp[64];
    while (len && isspace((unsigned char)*p)) p++, len--;
    while (len && isspace((unsigned char)p[len - 1])) len--;
    if (len == 0 || len >= sizeof tmp) goto bad;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    switch (t) {
    case FLINT_INT:
    case FLINT_BIGINT: {
        long long v = strtoll(tmp, &end, 10);
        if (*end || errno || (t == FLINT_INT && (v < INT32_MIN || v > INT32_MAX))) goto bad;
        if (t == FLINT_INT) flint_row_set_int(b, c, (int32_t)v);
        else flint_row_set_long(b, c, v);
        return FLINT_OK;
    }
    case FLINT_DOUBLE: {
        double d = strtod(tmp, &end);
        if (*end || (errno == ERANGE && isinf(d))) {
            if (strcmp(tmp, "Infinity") == 0 || strcmp(tmp, "+Infinity") == 0) d = INFINITY;
            else if (strcmp(tmp, "-Infinity") == 0) d = -INFINITY;
            else goto bad;
        }
        flint_row_set_double(b, c, d);
        return FLINT_OK;
    }
    case FLINT_BOOLEAN:
        if (strcasecmp(tmp, "true") == 0) flint_row_set_bool(b, c, true);
        else if (strcasecmp(tmp, "false") == 0) flint_row_set_bool(b, c, false);
        else goto bad;
        return FLINT_OK;
    case FLINT_TIMESTAMP: {
        int64_t ms;
        if (!fmt_parse_timestamp(tmp, len, &ms)) goto bad;
        flint_row_set_long(b, c, ms);
        return FLINT_OK;
    }
    default:
        break;
    }
bad:
    return flint_err_set(err, FLINT_INVALID, "field '%s': expected %s, got \"%s\"", name, flint_type_name(t),
                         excerpt(p, len, ex));
}

static int decode_json_value(fmt *f, flint_row_builder *b, int c, json_t *v, flint_err *err) {
    const char *name = flint_schema_field_name(f->schema, c);
    flint_type t = flint_schema_field_type(f->schema, c);
    if (!v || json_is_null(v)) {
        if (!v && f->fail_on_missing) return flint_err_set(err, FLINT_INVALID, "field '%s' is missing", name);
        flint_row_set_null(b, c);
        return FLINT_OK;
    }
    if (json_is_string(v)) {
        return parse_text_value(f, b, c, json_string_value(v), json_string_length(v), true, err);
    }
    switch (t) {
    case FLINT_STRING: {
        /* Numbers, booleans, objects and arrays as their JSON text (as Flink's JSON format). */
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text) return flint_err_set(err, FLINT_INVALID, "field '%s': cannot render the value as text", name);
        flint_row_set_string(b, c, text, strlen(text));
        free(text);
        return FLINT_OK;
    }
    case FLINT_INT:
    case FLINT_BIGINT:
    case FLINT_TIMESTAMP: {
        json_int_t x;
        if (json_is_integer(v)) {
            x = json_integer_value(v);
        } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
                   fabs(json_real_value(v)) < 9.2e18) {
            x = (json_int_t)json_real_value(v);
        } else {
            break;
        }
        if (t == FLINT_INT) {
            if (x < INT32_MIN || x > INT32_MAX)
                return flint_err_set(err, FLINT_INVALID, "field '%s': %lld is out of range for INT", name, (long long)x);
            flint_row_set_int(b, c, (int32_t)x);
        } else {
            flint_row_set_long(b, c, (int64_t)x);
        }
        return FLINT_OK;
    }
    case FLINT_DOUBLE:
        if (!json_is_number(v)) break;
        flint_row_set_double(b, c, json_number_value(v));
        return FLINT_OK;
    case FLINT_BOOLEAN:
        if (!json_is_boolean(v)) break;
        flint_row_set_bool(b, c, json_is_true(v));
        return FLINT_OK;
    case FLINT_BYTES:
        break;
    }
    return flint_err_set(err, FLINT_INVALID, "field '%s': expected %s, got %s", name, flint_type_name(t),
                         json_kind(v));
}

static int decode_json(fmt *f, const char *p, size_t len, flint_row_builder *b, flint_err *err) {
    json_error_t je;
    json_t *root = json_loadb(p, len, 0, &je);
    if (!root) return flint_err_set(err, FLINT_INVALID, "not JSON: %s (at character %d)", je.text, je.position);
    int rc = FLINT_OK;
    if (!json_is_object(root)) {
        rc = flint_err_set(err, FLINT_INVALID, "expected a JSON object, got %s",
                           json_is_array(root) ? "an array" : "a value");
    } else {
        for (int i = 0; i < f->ncols && !rc; i++) {
            int c = f->cols[i];
            rc = decode_json_value(f, b, c, json_object_get(root, flint_schema_field_name(f->schema, c)), err);
        }
    }
    json_decref(root);
    return rc;
}

/* RFC 4180 with a configurable delimiter and quote: quoted fields may hold delimiters, line
 * breaks and doubled quotes. */
static int decode_csv(fmt *f, const char *p, size_t len, flint_row_builder *b, flint_err *err) {
    const char *end = p + len;
    /* A trailing line break (producers that write lines) is not part of the last field. */
    if (end > p && end[-1] == '\n') end--;
    if (end > p && end[-1] == '\r') end--;
    char *unq = NULL;
    size_t unq_cap = 0;
    int i = 0, rc = FLINT_OK;
    const char *q = p;
    for (;;) {
        const char *fs, *fe;
        bool quoted = false;
        size_t flen;
        const char *val;
        if (q < end && *q == f->quote) {
            quoted = true;
            q++;
            size_t n = 0;
            if (unq_cap < (size_t)(end - q) + 1) {
                unq_cap = (size_t)(end - q) + 1;
                unq = xrealloc(unq, unq_cap);
            }
            for (;;) {
                if (q >= end) {
                    rc = flint_err_set(err, FLINT_INVALID, "field %d: unterminated quoted field", i + 1);
                    goto out;
                }
                if (*q == f->quote) {
                    if (q + 1 < end && q[1] == f->quote) {
                        unq[n++] = f->quote;
                        q += 2;
                        continue;
                    }
                    q++;
                    break;
                }
                unq[n++] = *q++;
            }
            if (q < end && *q != f->delim) {
                rc = flint_err_set(err, FLINT_INVALID, "field %d: unexpected '%c' after a quoted field", i + 1, *q);
                goto out;
            }
            val = unq;
            flen = n;
        } else {
            fs = q;
            fe = memchr(q, f->delim, (size_t)(end - q));
            if (!fe) fe = end;
            val = fs;
            flen = (size_t)(fe - fs);
            q = fe;
        }
        if (i < f->ncols) {
            rc = parse_text_value(f, b, f->cols[i], val, flen, quoted, err);
            if (rc) goto out;
        }
        i++;
        if (q >= end) break;
        q++;   /* the delimiter */
        if (q == end) {
            /* A delimiter at the very end: one more, empty field. */
            if (i < f->ncols) {
                rc = parse_text_value(f, b, f->cols[i], q, 0, false, err);
                if (rc) goto out;
            }
            i++;
            break;
        }
    }
    if (i != f->ncols)
        rc = flint_err_set(err, FLINT_INVALID, "expected %d fields separated by '%c', got %d", f->ncols, f->delim, i);
out:
    free(unq);
    return rc;
}

int fmt_decode(fmt *f, const void *data, size_t len, flint_row_builder *b, flint_err *err) {
    const char *p = data ? data : "";
    if (f->ncols == 0) return FLINT_OK;
    switch (f->kind) {
    case FMT_RAW:
        if (flint_schema_field_type(f->schema, f->cols[0]) == FLINT_BYTES) flint_row_set_bytes(b, f->cols[0], p, len);
        else flint_row_set_string(b, f->cols[0], p, len);
        return FLINT_OK;
    case FMT_TEXT:
        if (!fmt_utf8_valid(p, len)) return flint_err_set(err, FLINT_INVALID, "the value is not valid UTF-8 text");
        flint_row_set_string(b, f->cols[0], p, len);
        return FLINT_OK;
    case FMT_JSON:
        return decode_json(f, p, len, b, err);
    case FMT_CSV:
        return decode_csv(f, p, len, b, err);
    }
    return flint_err_set(err, FLINT_INVALID, "unknown format");
}

/* ---- encoding ---------------------------------------------------------------------------------------- */

static void put(fmt *f, const void *p, size_t n) {
    if (f->len + n + 1 > f->cap) {
        while (f->len + n + 1 > f->cap) f->cap *= 2;
        f->buf = xrealloc(f->buf, f->cap);
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
}

/* Column c of row as text into tmp (or a pointer into the row); base64 for BYTES when b64. */
static const char *value_text(const flint_row *row, int c, char *tmp, size_t cap, bool bytes_b64, size_t *len,
                              char **heap) {
    *heap = NULL;
    switch (flint_schema_field_type(row->schema, c)) {
    case FLINT_STRING:
        return flint_row_get_string(row, c, len);
    case FLINT_INT:
        *len = (size_t)snprintf(tmp, cap, "%d", flint_row_get_int(row, c));
        return tmp;
    case FLINT_BIGINT:
        *len = (size_t)snprintf(tmp, cap, "%" PRId64, flint_row_get_long(row, c));
        return tmp;
    case FLINT_TIMESTAMP:
        fmt_timestamp_text(flint_row_get_long(row, c), tmp);
        *len = strlen(tmp);
        return tmp;
    case FLINT_BOOLEAN:
        *len = flint_row_get_bool(row, c) ? 4 : 5;
        return flint_row_get_bool(row, c) ? "true" : "false";
    case FLINT_DOUBLE: {
        /* The shortest of %.15g and %.17g that reads back as the same number. */
        double d = flint_row_get_double(row, c);
        if (isnan(d)) *len = (size_t)snprintf(tmp, cap, "NaN");
        else if (isinf(d)) *len = (size_t)snprintf(tmp, cap, "%sInfinity", d < 0 ? "-" : "");
        else if ((*len = (size_t)snprintf(tmp, cap, "%.15g", d)), strtod(tmp, NULL) != d)
            *len = (size_t)snprintf(tmp, cap, "%.17g", d);
        return tmp;
    }
    case FLINT_BYTES: {
        size_t n;
        const uint8_t *p = flint_row_get_bytes(row, c, &n);
        if (bytes_b64) {
            *heap = xmalloc(n / 3 * 4 + 8);
            *len = fmt_base64_encode(p, n, *heap);
            return *heap;
        }
        *len = n;
        return (const char *)p;
    }
    }
    *len = 0;
    return "";
}

static int encode_json(fmt *f, const flint_row *row, flint_err *err) {
    json_t *o = json_object();
    int rc = FLINT_OK;
    for (int i = 0; i < f->ncols && !rc; i++) {
        int c = f->cols[i];
        const char *name = flint_schema_field_name(f->schema, c);
        json_t *v = NULL;
        if (flint_row_is_null(row, c)) {
            v = json_null();
        } else {
            switch (flint_schema_field_type(f->schema, c)) {
            case FLINT_STRING: {
                size_t n;
                const char *s = flint_row_get_string(row, c, &n);
                v = json_stringn(s, n);
                if (!v) rc = flint_err_set(err, FLINT_INVALID, "field '%s' is not valid UTF-8", name);
                break;
            }
            case FLINT_INT: v = json_integer(flint_row_get_int(row, c)); break;
            case FLINT_BIGINT: v = json_integer(flint_row_get_long(row, c)); break;
            case FLINT_BOOLEAN: v = json_boolean(flint_row_get_bool(row, c)); break;
            case FLINT_DOUBLE:
                v = json_real(flint_row_get_double(row, c));
                if (!v)
                    rc = flint_err_set(err, FLINT_INVALID, "field '%s': %g cannot be written as JSON", name,
                                       flint_row_get_double(row, c));
                break;
            case FLINT_TIMESTAMP: {
                char ts[32];
                fmt_timestamp_text(flint_row_get_long(row, c), ts);
                v = json_string(ts);
                break;
            }
            case FLINT_BYTES: {
                size_t n;
                const uint8_t *p = flint_row_get_bytes(row, c, &n);
                char *t = xmalloc(n / 3 * 4 + 8);
                size_t tl = fmt_base64_encode(p, n, t);
                v = json_stringn(t, tl);
                free(t);
                break;
            }
            }
        }
        if (v) json_object_set_new(o, name, v);
    }
    if (!rc) {
        size_t need = json_dumpb(o, NULL, 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (need == 0) {
            rc = flint_err_set(err, FLINT_INVALID, "cannot serialize the row as JSON");
        } else {
            f->len = 0;
            if (need + 1 > f->cap) {
                f->cap = need + 1;
                f->buf = xrealloc(f->buf, f->cap);
            }
            f->len = json_dumpb(o, f->buf, f->cap, JSON_COMPACT | JSON_PRESERVE_ORDER);
        }
    }
    json_decref(o);
    return rc;
}

static void encode_csv(fmt *f, const flint_row *row) {
    f->len = 0;
    char tmp[64];
    for (int i = 0; i < f->ncols; i++) {
        if (i) put(f, &f->delim, 1);
        int c = f->cols[i];
        if (flint_row_is_null(row, c)) continue;   /* NULL: an empty field */
        size_t n;
        char *heap;
        const char *s = value_text(row, c, tmp, sizeof tmp, true, &n, &heap);
        bool quote = flint_schema_field_type(f->schema, c) == FLINT_STRING && n == 0;   /* "" is not NULL */
        for (size_t k = 0; k < n && !quote; k++)
            quote = s[k] == f->delim || s[k] == f->quote || s[k] == '\n' || s[k] == '\r';
        if (quote) {
            put(f, &f->quote, 1);
            for (size_t k = 0; k < n; k++) {
                if (s[k] == f->quote) put(f, &f->quote, 1);
                put(f, s + k, 1);
            }
            put(f, &f->quote, 1);
        } else {
            put(f, s, n);
        }
        free(heap);
    }
}

static void encode_text(fmt *f, const flint_row *row) {
    f->len = 0;
    char tmp[64];
    for (int i = 0; i < f->ncols; i++) {
        if (i) put(f, " ", 1);
        int c = f->cols[i];
        if (flint_row_is_null(row, c)) {
            put(f, "null", 4);
            continue;
        }
        size_t n;
        char *heap;
        const char *s;
        if (flint_schema_field_type(f->schema, c) == FLINT_BYTES) {
            /* As the text file sink: hex. */
            const uint8_t *p = flint_row_get_bytes(row, c, &n);
            static const char hx[] = "0123456789abcdef";
            for (size_t k = 0; k < n; k++) {
                char h[2] = {hx[p[k] >> 4], hx[p[k] & 15]};
                put(f, h, 2);
            }
            continue;
        }
        if (flint_schema_field_type(f->schema, c) == FLINT_TIMESTAMP) {
            n = (size_t)snprintf(tmp, sizeof tmp, "%" PRId64, flint_row_get_long(row, c));
            put(f, tmp, n);
            continue;
        }
        s = value_text(row, c, tmp, sizeof tmp, false, &n, &heap);
        put(f, s, n);
        free(heap);
    }
}

int fmt_encode(fmt *f, const flint_row *row, const void **out, size_t *len, flint_err *err) {
    int rc = FLINT_OK;
    f->len = 0;
    switch (f->kind) {
    case FMT_RAW: {
        int c = f->cols[0];
        size_t n = 0;
        const char *p = flint_row_is_null(row, c) ? "" : flint_row_get_string(row, c, &n);
        *out = p;
        *len = n;
        return FLINT_OK;
    }
    case FMT_TEXT:
        if (f->ncols == 1 && flint_schema_field_type(f->schema, f->cols[0]) == FLINT_STRING &&
            !flint_row_is_null(row, f->cols[0])) {
            *out = flint_row_get_string(row, f->cols[0], len);
            return FLINT_OK;
        }
        encode_text(f, row);
        break;
    case FMT_JSON:
        rc = encode_json(f, row, err);
        break;
    case FMT_CSV:
        encode_csv(f, row);
        break;
    }
    *out = f->buf;
    *len = f->len;
    return rc;
}

/* ---- Kafka record headers as JSON ------------------------------------------------------------------ */

/* One header value: a JSON string when UTF-8, else {"base64": "..."}; null without a value. */
static json_t *header_value(const void *value, size_t len) {
    if (!value) return json_null();
    if (fmt_utf8_valid(value, len)) return json_stringn(value, len);
    char *b = xmalloc(len / 3 * 4 + 8);
    fmt_base64_encode(value, len, b);
    json_t *v = json_pack("{s:s}", "base64", b);
    free(b);
    return v;
}

char *fmt_headers_encode(const fmt_header *h, size_t n, flint_err *err) {
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        if (!fmt_utf8_valid(h[i].name, strlen(h[i].name))) {
            json_decref(o);
            return flint_err_set(err, FLINT_INVALID, "header %zu: the name is not valid UTF-8", i + 1), NULL;
        }
        json_t *v = header_value(h[i].value, h[i].len), *seen = json_object_get(o, h[i].name);
        if (!seen) {
            json_object_set_new(o, h[i].name, v);
        } else if (json_is_array(seen)) {   /* values are never arrays: an array is a repeated name */
            json_array_append_new(seen, v);
        } else {
            json_object_set_new(o, h[i].name, json_pack("[Oo]", seen, v));
        }
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    assert(text);
    return text;
}

/* Decode one value of header name (not an array) and pass it to add. */
static int decode_header(const char *name, json_t *v, fmt_header_fn add, void *ud, flint_err *err) {
    if (json_is_null(v)) {
        add(ud, name, NULL, 0);
        return FLINT_OK;
    }
    if (json_is_string(v)) {
        add(ud, name, json_string_value(v), json_string_length(v));
        return FLINT_OK;
    }
    json_t *b = json_object_get(v, "base64");
    if (!json_is_object(v) || json_object_size(v) != 1 || !json_is_string(b))
        return flint_err_set(err, FLINT_INVALID,
                             "header '%s': expected a string, null, {\"base64\": \"...\"} or an array of them, got %s%s",
                             name, json_kind(v), json_is_object(v) ? " with other fields" : "");
    size_t len = json_string_length(b), n;
    unsigned char *bytes = xmalloc(len / 4 * 3 + 3);
    bool ok = fmt_base64_decode(json_string_value(b), len, bytes, &n);
    if (ok) add(ud, name, bytes, n);
    free(bytes);
    return ok ? FLINT_OK : flint_err_set(err, FLINT_INVALID, "header '%s': malformed base64", name);
}

int fmt_headers_decode(const char *text, size_t len, fmt_header_fn add, void *ud, flint_err *err) {
    json_error_t je;
    json_t *o = json_loadb(text, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (!o || !json_is_object(o)) {
        int rc = flint_err_set(err, FLINT_INVALID, "no JSON object (%s)", o ? "not an object" : je.text);
        json_decref(o);
        return rc;
    }
    int rc = FLINT_OK;
    const char *name;
    json_t *v;
    json_object_foreach(o, name, v) {
        if (!json_is_array(v)) rc = decode_header(name, v, add, ud, err);
        for (size_t i = 0; !rc && json_is_array(v) && i < json_array_size(v); i++) {
            json_t *e = json_array_get(v, i);
            rc = json_is_array(e) ? flint_err_set(err, FLINT_INVALID, "header '%s': an array inside its array", name)
                                  : decode_header(name, e, add, ud, err);
        }
        if (rc) break;
    }
    json_decref(o);
    return rc;
}
