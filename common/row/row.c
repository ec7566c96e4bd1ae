/* Binary rows (layout in flint/row.h): checking rows that arrive from outside, the reusable row
 * builder, and the text forms (flint_row_format for sinks and print, flint_row_parse for
 * from_elements and text sources). Builders and formatting run once per record: they allocate
 * nothing once their buffer has grown to the stream's largest row. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "row/row_internal.h"
#include "util/alloc.h"

static inline size_t bitmap_size(int n) { return (size_t)((n + 63) / 64) * 8; }

/* ---- checking ------------------------------------------------------------------------------ */

static inline uint64_t slot_at(const uint8_t *slots, int i) {
    uint64_t v;
    memcpy(&v, slots + (size_t)i * 8, 8);
    return v;
}

/* Whether the row of len >= fixed bytes and at most 64 fields breaks a rule of flint_row_check:
 * visits only the fields a rule is about (the schema's masks), the NULL ones and the
 * variable-length, INT and BOOLEAN ones, so a row of BIGINTs and one STRING costs a few tests. */
static bool row_bad(const flint_schema *schema, const uint8_t *data, uint32_t len, size_t fixed) {
    int n = schema->n;
    assert(n <= 64);
    const uint8_t *slots = data + 8;
    uint64_t nulls, bad = 0, w;
    memcpy(&nulls, data, 8);
    if (n < 64) bad = nulls >> n;
    for (w = nulls; w; w &= w - 1) bad |= slot_at(slots, __builtin_ctzll(w));
    for (w = schema->var_mask & ~nulls; w; w &= w - 1) {
        uint64_t v = slot_at(slots, __builtin_ctzll(w));
        bad |= (v >> 32 < fixed) | ((v >> 32) + (v & 0xffffffffu) > len);
    }
    for (w = schema->int_mask & ~nulls; w; w &= w - 1) {
        uint64_t v = slot_at(slots, __builtin_ctzll(w));
        bad |= (int64_t)v != (int64_t)(int32_t)v;
    }
    for (w = schema->bool_mask & ~nulls; w; w &= w - 1) bad |= slot_at(slots, __builtin_ctzll(w)) > 1;
    return bad != 0;
}

int flint_row_check(const flint_schema *schema, const uint8_t *data, uint32_t len,
                    flint_err *err) {
    assert(schema);
    int n = schema->n;
    size_t fixed = flint_row_fixed_size(n);
    if (__builtin_expect(n <= 64 && len >= fixed && data && !row_bad(schema, data, len, fixed), 1)) return FLINT_OK;
    /* A wide row, or a bad one: look at every field, and say what the first broken rule is. */
    if (len < fixed || (!data && len))
        return flint_err_set(err, FLINT_PROTOCOL,
                             "row of %" PRIu32 " bytes is shorter than its fixed part (%zu bytes "
                             "for %d fields of %s)",
                             len, fixed, n, schema->text);
    /* Bits past the last field must be clear: a row has one canonical form. */
    if (n % 64) {
        uint64_t last;
        memcpy(&last, data + bitmap_size(n) - 8, 8);
        if (last >> (n % 64))
            return flint_err_set(err, FLINT_PROTOCOL,
                                 "row has null bits set beyond its %d fields", n);
    }
    flint_row r = flint_row_view(schema, data, len, n);
    for (int i = 0; i < n; i++) {
        uint64_t v = flint_row_slot_(&r, i);
        flint_type t = schema->types[i];
        if (flint_row_is_null(&r, i)) {
            if (v != 0)
                return flint_err_set(err, FLINT_PROTOCOL,
                                     "field %d '%s' (%s) is NULL but its slot is not zero", i,
                                     schema->names[i], flint_type_name(t));
            continue;
        }
        switch (t) {
        case FLINT_STRING:
        case FLINT_BYTES: {
            uint64_t off = v >> 32, l = v & 0xffffffffu;
            if (off < fixed || off + l > len)
                return flint_err_set(err, FLINT_PROTOCOL,
                                     "field %d '%s' (%s): bytes [%" PRIu64 ", %" PRIu64
                                     ") lie outside the row's variable part [%zu, %" PRIu32 ")",
                                     i, schema->names[i], flint_type_name(t), off, off + l, fixed,
                                     len);
            break;
        }
        case FLINT_BOOLEAN:
            if (v > 1)
                return flint_err_set(err, FLINT_PROTOCOL,
                                     "field %d '%s' (BOOLEAN): value %" PRIu64 " is not 0 or 1", i,
                                     schema->names[i], v);
            break;
        case FLINT_INT:
            if ((int64_t)v != (int64_t)(int32_t)v)
                return flint_err_set(err, FLINT_PROTOCOL,
                                     "field %d '%s' (INT): slot 0x%016" PRIx64
                                     " is not a 32-bit integer",
                                     i, schema->names[i], v);
            break;
        default:
            break;
        }
    }
    return FLINT_OK;
}

/* ---- builders ------------------------------------------------------------------------------ */

/* Make room for need bytes in all, growing geometrically. */
static void builder_reserve(flint_row_builder *b, size_t need) {
    if (need <= b->cap) return;
    /* Offsets and lengths are 32 bits: a row is smaller than 4 GiB. */
    assert(need <= UINT32_MAX && "row larger than 4 GiB");
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    if (cap > UINT32_MAX) cap = UINT32_MAX;
    b->buf = xrealloc(b->buf, cap);
    b->cap = cap;
}

void flint_row_builder_init(flint_row_builder *b, const flint_schema *schema) {
    assert(b && schema);
    memset(b, 0, sizeof *b);
    b->schema = schema;
    b->nfields = schema->n;
    builder_reserve(b, flint_row_fixed_size(schema->n) + 64);
    flint_row_builder_reset(b);
}

void flint_row_builder_reset_wide_(flint_row_builder *b) {
    unsigned n = (unsigned)b->nfields, words = (n + 63) / 64;
    memset(b->buf, 0xff, (size_t)(words - 1) * 8);
    uint64_t last = n % 64 ? (((uint64_t)1 << (n % 64)) - 1) : ~(uint64_t)0;
    memcpy(b->buf + (size_t)(words - 1) * 8, &last, 8);
    memset(b->buf + (size_t)words * 8, 0, (size_t)n * 8);
    b->len = (size_t)words * 8 + (size_t)n * 8;
}

void flint_row_builder_reserve(flint_row_builder *b, size_t var_bytes) {
    builder_reserve(b, flint_row_fixed_size(b->nfields) + var_bytes);
}

void flint_row_builder_free(flint_row_builder *b) {
    if (!b) return;
    free(b->buf);
    memset(b, 0, sizeof *b);
}

static inline void set_slot(flint_row_builder *b, int i, uint64_t v) {
    flint_row_builder_set_slot_(b, i, v);
}

/* Append len bytes at p as the value of variable-length field i; the buffer has room. The slot
 * first, so that the copy is the last call (a tail call). */
static inline void append_var(flint_row_builder *b, int i, const void *p, size_t len) {
    size_t off = b->len;
    b->len = off + len;
    set_slot(b, i, (uint64_t)off << 32 | (uint64_t)len);
    if (len) memcpy(b->buf + off, p, len);
}

/* flint_row_set_var_ when the value does not fit: grow the buffer, re-basing p when it points
 * into it (a field of the row being built). */
static __attribute__((noinline)) void grow_and_append_var(flint_row_builder *b, int i, const void *p, size_t len) {
    assert(len <= UINT32_MAX - b->len && "row larger than 4 GiB");
    uintptr_t up = (uintptr_t)p, base = (uintptr_t)b->buf;
    bool inside = len && up >= base && up < base + b->cap;
    builder_reserve(b, b->len + len);
    append_var(b, i, inside ? b->buf + (up - base) : p, len);
}

void flint_row_set_var_(flint_row_builder *b, int i, const void *p, size_t len) {
    if (__builtin_expect(len > b->cap - b->len, 0)) grow_and_append_var(b, i, p, len);
    else append_var(b, i, p, len);
}

void flint_row_set_cstring(flint_row_builder *b, int i, const char *s) {
    assert(s);
    flint_row_set_string(b, i, s, strlen(s));
}

int flint_projection_plan(flint_projection *p, const flint_schema *in, const flint_schema *out, const int *from,
                          int n, flint_err *err) {
    assert(p && in && out && (from || n == 0));
    memset(p, 0, sizeof *p);
    if (n != out->n)
        return flint_err_set(err, FLINT_INVALID, "projection of %d fields to a schema of %d (%s)", n, out->n, out->text);
    p->n = n;
    p->in_nfields = in->n;
    p->src = xmalloc(sizeof *p->src * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        int j = from[i];
        if (j < 0 || j >= in->n)
            return flint_err_set(err, FLINT_INVALID, "projection field %d: no field %d in (%s)", i, j, in->text);
        if (in->types[j] != out->types[i])
            return flint_err_set(err, FLINT_INVALID, "projection field %d ('%s'): %s, but input field %d ('%s') is %s", i,
                                 out->names[i], flint_type_name(out->types[i]), j, in->names[j],
                                 flint_type_name(in->types[j]));
        p->src[i] = row_type_is_var(in->types[j]) ? ~j : j;
    }
    return FLINT_OK;
}

void flint_projection_free(flint_projection *p) {
    free(p->src);
    p->src = NULL;
}

void flint_row_project_wide_(flint_row_builder *b, const flint_projection *p, const flint_row *src) {
    flint_row_builder_reset(b);   /* every field NULL: a NULL input field is left so */
    for (int i = 0; i < p->n; i++) {
        int j = p->src[i] >= 0 ? p->src[i] : ~p->src[i];
        if (flint_row_is_null(src, j)) continue;
        uint64_t v = flint_row_slot_(src, j);
        if (p->src[i] >= 0) set_slot(b, i, v);
        else flint_row_set_var_(b, i, src->data + (v >> 32), (size_t)(v & 0xffffffffu));
    }
}

void flint_row_builder_copy(flint_row_builder *b, const flint_row *src) {
    assert(src && src->nfields == b->nfields && "flint_row_builder_copy of a different schema");
    assert(src->len >= flint_row_fixed_size(src->nfields));
    if (src->data == b->buf) {
        b->len = src->len;
        return;
    }
    builder_reserve(b, src->len);
    memcpy(b->buf, src->data, src->len);
    b->len = src->len;
}


/* ---- text: format -------------------------------------------------------------------------- */

/* An snprintf-style writer: keeps counting past the end of buf. */
typedef struct writer {
    char *buf;
    size_t cap;
    size_t pos;
} writer;

static inline void put(writer *w, const char *s, size_t n) {
    if (w->pos < w->cap) {
        size_t room = w->cap - 1 - w->pos;   /* keep one byte for the NUL */
        memcpy(w->buf + w->pos, s, n < room ? n : room);
    }
    w->pos += n;
}

static void put_i64(writer *w, int64_t v) {
    char tmp[24];
    char *e = tmp + sizeof tmp, *p = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    put(w, p, (size_t)(e - p));
}

/* Write digits dig[0..prec) with decimal exponent x (value = d.ddd * 10^x) as printf's %.<prec>g
 * would: trailing zeros dropped, exponent form when x < -4 or x >= prec. */
static size_t render_g(bool neg, const char *dig, int prec, int x, char *out) {
    char *o = out;
    int nd = prec;
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    if (neg) *o++ = '-';
    if (x < -4 || x >= prec) {
        *o++ = dig[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, dig + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        o += sprintf(o, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
    } else if (x >= 0) {
        for (int k = 0; k <= x; k++) *o++ = k < nd ? dig[k] : '0';
        if (nd > x + 1) {
            *o++ = '.';
            memcpy(o, dig + x + 1, (size_t)(nd - x - 1));
            o += nd - x - 1;
        }
    } else {
        *o++ = '0';
        *o++ = '.';
        for (int k = 0; k < -x - 1; k++) *o++ = '0';
        memcpy(o, dig, (size_t)nd);
        o += nd;
    }
    *o = '\0';
    return (size_t)(o - out);
}

/* A double with at most 15 significant digits and |d| in [1e-4, 1e15) without a conversion
 * through printf: the smallest k for which d == m / 10^k with an integer m (|m| < 1e15). Both m
 * and 10^k are exact doubles, so the check is exact and m.10^-k reads back as d; it is also what
 * %.15g prints, as no other decimal of 15 digits reads back as d. Returns 0 if there is no such k. */
static size_t format_double_short(double d, char *out) {
    static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    double a = fabs(d);
    if (a < 1e-4 || a >= 1e15) return 0;
    for (int k = 1; k < 16; k++) {
        double m = nearbyint(a * p10[k]);
        if (m >= 1e15) return 0;
        if (m / p10[k] != a) continue;
        char dig[24];
        int n = sprintf(dig, "%" PRId64, (int64_t)m);
        char *o = out;
        if (d < 0) *o++ = '-';
        if (n <= k) {
            *o++ = '0';
            *o++ = '.';
            for (int z = 0; z < k - n; z++) *o++ = '0';
            memcpy(o, dig, (size_t)n);
            o += n;
        } else {
            memcpy(o, dig, (size_t)(n - k));
            o += n - k;
            *o++ = '.';
            memcpy(o, dig + n - k, (size_t)k);
            o += k;
        }
        *o = '\0';
        return (size_t)(o - out);
    }
    return 0;
}

/* A double as the shortest of 15, 16 or 17 significant digits that reads back as the same value,
 * in printf's %g style (0.1 -> "0.1", 3.0 -> "3", 1e300 -> "1e+300", -0.0 -> "-0"); NaN and the
 * infinities as Java prints them ("NaN", "Infinity", "-Infinity"). out has room for 32 bytes.
 * The result is exactly that of trying "%.15g", "%.16g" and "%.17g" in turn, but faster:
 * integers and short decimals take a fast path; others one conversion to 17 digits, from which
 * the 15- and 16-digit roundings are derived (a tie in the 17 digits asks printf again) and
 * tried with strtod. */
static size_t format_double(double d, char *out) {
    if (isnan(d)) return (size_t)sprintf(out, "NaN");
    if (isinf(d)) return (size_t)sprintf(out, d < 0 ? "-Infinity" : "Infinity");
    if (d == 0) return (size_t)sprintf(out, signbit(d) ? "-0" : "0");
    if (fabs(d) < 1e15 && d == (double)(int64_t)d) {   /* integral: exact as an integer */
        writer w = {out, 32, 0};
        put_i64(&w, (int64_t)d);
        out[w.pos] = '\0';
        return w.pos;
    }
    size_t n = format_double_short(d, out);
    if (n) return n;
    char e17[40];
    snprintf(e17, sizeof e17, "%.16e", d);   /* [-]d.dddddddddddddddde[+-]xx */
    const char *p = e17;
    bool neg = *p == '-';
    if (neg) p++;
    char dig[17];
    dig[0] = p[0];
    memcpy(dig + 1, p + 2, 16);
    int x = atoi(p + 18 + 1);
    for (int prec = 15; prec < 17; prec++) {
        char cand[17];
        int cx = x;
        bool tie = dig[prec] == '5' && (prec == 16 || dig[16] == '0');
        if (tie) {
            /* The 17 digits end in a tie: only the exact value knows the way to round. */
            char e[40];
            snprintf(e, sizeof e, "%.*e", prec - 1, d);
            const char *q = e + neg;
            cand[0] = q[0];
            memcpy(cand + 1, q + 2, (size_t)prec - 1);
            cx = atoi(q + prec + 2);
        } else {
            memcpy(cand, dig, (size_t)prec);
            if (dig[prec] >= '5') {   /* round up: add one in the last kept digit */
                int k = prec - 1;
                while (k >= 0 && cand[k] == '9') cand[k--] = '0';
                if (k >= 0) {
                    cand[k]++;
                } else {
                    cand[0] = '1';
                    cx++;
                }
            }
        }
        n = render_g(neg, cand, prec, cx, out);
        if (strtod(out, NULL) == d) return n;
    }
    return render_g(neg, dig, 17, x, out);
}

static const char hex_digits[] = "0123456789abcdef";

size_t flint_row_format(const flint_row *r, const char *sep, char *buf, size_t cap) {
    assert(r && r->schema && sep && (buf || cap == 0));
    writer w = {buf, cap, 0};
    size_t seplen = strlen(sep);
    const flint_schema *s = r->schema;
    for (int i = 0; i < r->nfields; i++) {
        if (i) put(&w, sep, seplen);
        if (flint_row_is_null(r, i)) {
            put(&w, "null", 4);
            continue;
        }
        switch (s->types[i]) {
        case FLINT_STRING: {
            size_t len;
            const char *p = flint_row_get_string(r, i, &len);
            put(&w, p, len);
            break;
        }
        case FLINT_INT:
            put_i64(&w, flint_row_get_int(r, i));
            break;
        case FLINT_BIGINT:
        case FLINT_TIMESTAMP:
            put_i64(&w, flint_row_get_long(r, i));
            break;
        case FLINT_DOUBLE: {
            char tmp[40];
            size_t n = format_double(flint_row_get_double(r, i), tmp);
            put(&w, tmp, n);
            break;
        }
        case FLINT_BOOLEAN:
            if (flint_row_get_bool(r, i))
                put(&w, "true", 4);
            else
                put(&w, "false", 5);
            break;
        case FLINT_BYTES: {
            size_t len;
            const uint8_t *p = flint_row_get_bytes(r, i, &len);
            for (size_t k = 0; k < len; k++) {
                char h[2] = {hex_digits[p[k] >> 4], hex_digits[p[k] & 15]};
                put(&w, h, 2);
            }
            break;
        }
        }
    }
    if (cap) buf[w.pos < cap ? w.pos : cap - 1] = '\0';
    return w.pos;
}

/* ---- text: parse --------------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Read exactly n digits at *p. */
static bool digits(const char **p, int n, unsigned *out) {
    unsigned v = 0;
    for (int k = 0; k < n; k++, (*p)++) {
        if (!isdigit((unsigned char)**p)) return false;
        v = v * 10 + (unsigned)(**p - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS[.f{1,9}]" or with 'T' instead of the space, optionally
 * ending in 'Z'; UTC. Fractions beyond milliseconds are truncated. */
static bool parse_datetime(const char *s, int64_t *out) {
    unsigned y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    const char *p = s;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return false;
    if (*p == ' ' || *p == 'T') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
            !digits(&p, 2, &sec))
            return false;
        if (*p == '.') {
            p++;
            int nd = 0;
            unsigned scale = 100;
            while (isdigit((unsigned char)*p) && nd < 9) {
                if (nd < 3) ms += (unsigned)(*p - '0') * scale, scale /= 10;
                p++, nd++;
            }
            if (nd == 0) return false;
        }
        if (*p == 'Z') p++;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return false;
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap)) return false;
    int64_t days = days_from_civil(y, mo, d);
    *out = ((days * 86400 + h * 3600 + mi * 60 + sec) * 1000) + ms;
    return true;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

#define FIELD_FMT "field %d '%s' (%s): "
#define FIELD_ARGS(s, i) (i), (s)->names[i], flint_type_name((s)->types[i])

/* Parse the text [p, p+len) as field i of b's schema. */
static int parse_field(flint_row_builder *b, int i, const char *p, size_t len, flint_err *err) {
    const flint_schema *s = b->schema;
    flint_type t = s->types[i];
    if (t == FLINT_STRING) {
        flint_row_set_var_(b, i, p, len);
        return FLINT_OK;
    }
    while (len && isspace((unsigned char)*p)) p++, len--;
    while (len && isspace((unsigned char)p[len - 1])) len--;
    if (len == 4 && strncasecmp(p, "null", 4) == 0) {
        flint_row_set_null(b, i);
        return FLINT_OK;
    }
    if (t == FLINT_BYTES) {
        if (len % 2)
            return flint_err_set(err, FLINT_INVALID,
                                 FIELD_FMT "expected hex digits in pairs or null, got '%.*s'",
                                 FIELD_ARGS(s, i), (int)(len > 64 ? 64 : len), p);
        size_t n = len / 2;
        assert(n <= UINT32_MAX - b->len);
        builder_reserve(b, b->len + n);
        uint8_t *dst = b->buf + b->len;
        for (size_t k = 0; k < n; k++) {
            int hi = hexval((unsigned char)p[2 * k]), lo = hexval((unsigned char)p[2 * k + 1]);
            if (hi < 0 || lo < 0)
                return flint_err_set(err, FLINT_INVALID,
                                     FIELD_FMT "expected hex digits in pairs or null, got '%.*s'",
                                     FIELD_ARGS(s, i), (int)(len > 64 ? 64 : len), p);
            dst[k] = (uint8_t)(hi << 4 | lo);
        }
        set_slot(b, i, (uint64_t)b->len << 32 | n);
        b->len += n;
        return FLINT_OK;
    }
    static const char *const expect[] = {
        [FLINT_INT] = "an integer from -2147483648 to 2147483647 or null",
        [FLINT_BIGINT] = "a 64-bit integer or null",
        [FLINT_DOUBLE] = "a number (or NaN, Infinity, -Infinity) or null",
        [FLINT_BOOLEAN] = "true, false or null",
        [FLINT_TIMESTAMP] = "epoch milliseconds, 'YYYY-MM-DD HH:MM:SS[.SSS]' or null",
    };
    char tmp[64];
    if (len == 0 || len >= sizeof tmp)
        return flint_err_set(err, FLINT_INVALID, FIELD_FMT "expected %s, got '%.*s'",
                             FIELD_ARGS(s, i), expect[t], (int)(len > 64 ? 64 : len), p);
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    switch (t) {
    case FLINT_INT:
    case FLINT_BIGINT:
    case FLINT_TIMESTAMP: {
        long long v = strtoll(tmp, &end, 10);
        bool ok = end != tmp && *end == '\0' && errno == 0 && !isspace((unsigned char)tmp[0]);
        if (ok && t == FLINT_INT && (v < INT32_MIN || v > INT32_MAX)) ok = false;
        if (!ok && t == FLINT_TIMESTAMP) {
            int64_t ms;
            if (parse_datetime(tmp, &ms)) {
                set_slot(b, i, (uint64_t)ms);
                return FLINT_OK;
            }
        }
        if (!ok) break;
        set_slot(b, i, (uint64_t)(int64_t)v);
        return FLINT_OK;
    }
    case FLINT_DOUBLE: {
        double d = strtod(tmp, &end);
        /* ERANGE on underflow still gives the nearest (subnormal or zero) value: keep it. */
        if (end == tmp || *end != '\0' || (errno == ERANGE && isinf(d))) {
            if (strcmp(tmp, "Infinity") == 0 || strcmp(tmp, "+Infinity") == 0)
                d = INFINITY;
            else if (strcmp(tmp, "-Infinity") == 0)
                d = -INFINITY;
            else
                break;
        }
        flint_row_set_double(b, i, d);
        return FLINT_OK;
    }
    case FLINT_BOOLEAN:
        if (strcasecmp(tmp, "true") == 0) {
            set_slot(b, i, 1);
            return FLINT_OK;
        }
        if (strcasecmp(tmp, "false") == 0) {
            set_slot(b, i, 0);
            return FLINT_OK;
        }
        break;
    default:
        break;
    }
    return flint_err_set(err, FLINT_INVALID, FIELD_FMT "expected %s, got '%s'", FIELD_ARGS(s, i),
                         expect[t], tmp);
}

static int count_fields(const char *text, size_t len, char sep) {
    int n = 1;
    for (size_t k = 0; k < len; k++) n += text[k] == sep;
    return n;
}

/* Fields are split on sep; the last field, when it is a STRING, takes the rest of the text,
 * separators included (so a one-column "line STRING" schema reads any line as it is). STRING
 * fields are taken as given; other fields may have surrounding white space, and "null" (any case)
 * is NULL for them. BYTES are hex. */
int flint_row_parse(flint_row_builder *b, const char *text, size_t len, char sep,
                    flint_err *err) {
    assert(b && (text || len == 0));
    if (!text) text = "";
    flint_row_builder_reset(b);
    const flint_schema *s = b->schema;
    int n = b->nfields;
    const char *p = text, *end = text + len;
    for (int i = 0; i < n; i++) {
        const char *fe;
        if (i == n - 1 && s->types[i] == FLINT_STRING) {
            fe = end;
        } else {
            fe = len ? memchr(p, sep, (size_t)(end - p)) : NULL;
            if (!fe) fe = end;
            if (fe == end && i < n - 1)
                return flint_err_set(err, FLINT_INVALID,
                                     "expected %d fields separated by '%c' (%s), got %d", n, sep,
                                     s->text, i + 1);
        }
        int rc = parse_field(b, i, p, (size_t)(fe - p), err);
        if (rc != FLINT_OK) return rc;
        if (fe < end && i == n - 1)
            return flint_err_set(err, FLINT_INVALID,
                                 "expected %d fields separated by '%c' (%s), got %d", n, sep,
                                 s->text, count_fields(text, len, sep));
        if (fe < end) p = fe + 1;
    }
    return FLINT_OK;
}
