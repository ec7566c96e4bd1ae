/* Unit tests for common/row: schema parsing and canonical text, the binary row layout through the
 * builder and getters, row checking of corrupted bytes, the text forms (format/parse), and the
 * key helpers of row/row_key.h (key bytes, hashes, key groups, key field lists). */
#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flint/row.h"
#include "row/row_key.h"

/* ---- helpers --------------------------------------------------------------------------------- */

static flint_schema *schema(const char *text) {
    flint_schema *s = NULL;
    flint_err err = {0};
    int rc = flint_schema_parse(text, &s, &err);
    ck_assert_msg(rc == FLINT_OK, "schema '%s': %s", text, err.msg);
    return s;
}

/* Parse text and expect an error whose message contains every one of the NULL-terminated want. */
static void schema_error(const char *text, ...) {
    flint_schema *s = (flint_schema *)1;
    flint_err err = {0};
    int rc = flint_schema_parse(text, &s, &err);
    ck_assert_msg(rc != FLINT_OK, "schema '%s' was accepted", text ? text : "(null)");
    ck_assert_ptr_null(s);
    va_list ap;
    va_start(ap, text);
    for (const char *w; (w = va_arg(ap, const char *));)
        ck_assert_msg(strstr(err.msg, w), "schema '%s': message '%s' lacks '%s'", text, err.msg, w);
    va_end(ap);
}

static const char *fmt(const flint_row *r, const char *sep) {
    static char buf[4096];
    size_t n = flint_row_format(r, sep, buf, sizeof buf);
    ck_assert(n < sizeof buf);
    ck_assert_uint_eq(strlen(buf), n);
    return buf;
}

static void check_ok(const flint_row *r) {
    flint_err err = {0};
    ck_assert_msg(flint_row_check(r->schema, r->data, r->len, &err) == FLINT_OK, "%s", err.msg);
}

#define ALL_TYPES "s STRING, i INT, l BIGINT, d DOUBLE, b BOOLEAN, ts TIMESTAMP(3), y BYTES"

/* Fill field k of an ALL_TYPES builder with a value that depends on seed. */
static void set_all_field(flint_row_builder *b, int k, int seed) {
    char tmp[32];
    switch (k) {
    case 0: snprintf(tmp, sizeof tmp, "str%d", seed); flint_row_set_cstring(b, 0, tmp); break;
    case 1: flint_row_set_int(b, 1, -seed); break;
    case 2: flint_row_set_long(b, 2, (int64_t)seed * 1000000007LL); break;
    case 3: flint_row_set_double(b, 3, seed + 0.25); break;
    case 4: flint_row_set_bool(b, 4, seed % 2); break;
    case 5: flint_row_set_long(b, 5, 1700000000000LL + seed); break;
    case 6: { uint8_t y[3] = {(uint8_t)seed, 0, 0xff}; flint_row_set_bytes(b, 6, y, 3); break; }
    }
}

static void expect_all_field(const flint_row *r, int k, int seed) {
    char tmp[32];
    size_t len;
    ck_assert(!flint_row_is_null(r, k));
    switch (k) {
    case 0: {
        snprintf(tmp, sizeof tmp, "str%d", seed);
        const char *p = flint_row_get_string(r, 0, &len);
        ck_assert_uint_eq(len, strlen(tmp));
        ck_assert(memcmp(p, tmp, len) == 0);
        break;
    }
    case 1: ck_assert_int_eq(flint_row_get_int(r, 1), -seed); break;
    case 2: ck_assert(flint_row_get_long(r, 2) == (int64_t)seed * 1000000007LL); break;
    case 3: ck_assert(flint_row_get_double(r, 3) == seed + 0.25); break;
    case 4: ck_assert(flint_row_get_bool(r, 4) == (bool)(seed % 2)); break;
    case 5: ck_assert(flint_row_get_long(r, 5) == 1700000000000LL + seed); break;
    case 6: {
        const uint8_t *p = flint_row_get_bytes(r, 6, &len);
        ck_assert_uint_eq(len, 3);
        ck_assert(p[0] == (uint8_t)seed && p[1] == 0 && p[2] == 0xff);
        break;
    }
    }
}

/* ---- schemas --------------------------------------------------------------------------------- */

START_TEST(test_schema_parse_types) {
    flint_schema *s = schema("word STRING, n BIGINT, ts TIMESTAMP(3), b BYTES, d DOUBLE, "
                             "ok BOOLEAN, i INT");
    ck_assert_int_eq(flint_schema_field_count(s), 7);
    static const flint_type want[] = {FLINT_STRING, FLINT_BIGINT, FLINT_TIMESTAMP, FLINT_BYTES,
                                      FLINT_DOUBLE, FLINT_BOOLEAN, FLINT_INT};
    static const char *names[] = {"word", "n", "ts", "b", "d", "ok", "i"};
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(flint_schema_field_type(s, i), want[i]);
        ck_assert_str_eq(flint_schema_field_name(s, i), names[i]);
        ck_assert_int_eq(flint_schema_field_index(s, names[i]), i);
    }
    ck_assert_int_eq(flint_schema_field_index(s, "nope"), -1);
    ck_assert_int_eq(flint_schema_field_index(s, "Word"), -1);   /* names are case-sensitive */
    ck_assert_str_eq(flint_schema_text(s), "word STRING, n BIGINT, ts TIMESTAMP(3), b BYTES, "
                                           "d DOUBLE, ok BOOLEAN, i INT");
    flint_schema_free(s);
}
END_TEST

START_TEST(test_schema_aliases_and_case) {
    flint_schema *s = schema("  a varchar , b VARCHAR(20), c Integer, d bool, e VarBinary, "
                             "f timestamp, g TIMESTAMP ( 3 ), h bigint,i string,j Double, "
                             "k VARBINARY(16), `my col` INT, `x``y` BOOLEAN, `select` BYTES  ");
    ck_assert_str_eq(flint_schema_text(s),
                     "a STRING, b STRING, c INT, d BOOLEAN, e BYTES, f TIMESTAMP(3), "
                     "g TIMESTAMP(3), h BIGINT, i STRING, j DOUBLE, k BYTES, `my col` INT, "
                     "`x``y` BOOLEAN, select BYTES");
    ck_assert_int_eq(flint_schema_field_index(s, "my col"), 11);
    ck_assert_int_eq(flint_schema_field_index(s, "x`y"), 12);
    /* The canonical text parses back to an equal schema with the same text. */
    flint_schema *t = schema(flint_schema_text(s));
    ck_assert(flint_schema_equal(s, t));
    ck_assert_str_eq(flint_schema_text(t), flint_schema_text(s));
    flint_schema *c = flint_schema_copy(s);
    ck_assert(flint_schema_equal(c, s));
    ck_assert_str_eq(flint_schema_text(c), flint_schema_text(s));
    flint_schema_free(s);
    flint_schema_free(t);
    ck_assert_str_eq(flint_schema_field_name(c, 12), "x`y");
    flint_schema_free(c);
}
END_TEST

START_TEST(test_schema_equal) {
    flint_schema *a = schema("a INT, b STRING"), *b = schema("a INTEGER,b VARCHAR(3)");
    flint_schema *c = schema("a INT, c STRING"), *d = schema("a BIGINT, b STRING");
    flint_schema *e = schema("a INT");
    ck_assert(flint_schema_equal(a, b));
    ck_assert(!flint_schema_equal(a, c));
    ck_assert(!flint_schema_equal(a, d));
    ck_assert(!flint_schema_equal(a, e));
    flint_schema_free(a), flint_schema_free(b), flint_schema_free(c), flint_schema_free(d),
        flint_schema_free(e);
}
END_TEST

START_TEST(test_type_names) {
    ck_assert_str_eq(flint_type_name(FLINT_STRING), "STRING");
    ck_assert_str_eq(flint_type_name(FLINT_TIMESTAMP), "TIMESTAMP(3)");
    ck_assert_str_eq(flint_type_name(FLINT_BYTES), "BYTES");
    ck_assert(flint_type_is_numeric(FLINT_INT) && flint_type_is_numeric(FLINT_BIGINT) &&
              flint_type_is_numeric(FLINT_DOUBLE));
    ck_assert(!flint_type_is_numeric(FLINT_STRING) && !flint_type_is_numeric(FLINT_BOOLEAN) &&
              !flint_type_is_numeric(FLINT_TIMESTAMP) && !flint_type_is_numeric(FLINT_BYTES));
}
END_TEST

START_TEST(test_schema_errors) {
    schema_error("word STRNG", "unknown type 'STRNG'", "'word'", "column 1", "STRING", NULL);
    schema_error("a INT, word STRNG, c INT", "unknown type 'STRNG'", "column 2 'word'", NULL);
    schema_error("a INT, b STRING, a BIGINT", "duplicate column 'a'", "columns 1 and 3", NULL);
    schema_error("", "empty column list", NULL);
    schema_error("   \t ", "empty column list", NULL);
    schema_error(NULL, "no schema", NULL);
    schema_error("a INT, b BIGINT,", "trailing comma", "column 2 'b'", NULL);
    schema_error("a INT,, b BIGINT", "column 2 is empty", NULL);
    schema_error(", a INT", "starts with a comma", NULL);
    schema_error("a INT, b", "column 2 'b' has no type", NULL);
    schema_error("a INT, b, c INT", "column 2 'b' has no type", NULL);
    schema_error("a INT NOT NULL", "column 1 'a': unexpected 'NOT NULL'", NULL);
    schema_error("a INT b BIGINT", "unexpected 'b BIGINT'", NULL);
    schema_error("1a INT", "column 1: expected a column name", NULL);
    schema_error("`a INT", "unterminated", NULL);
    schema_error("`` INT", "empty name", NULL);
    schema_error("ts TIMESTAMP(6)", "TIMESTAMP(6)", "millisecond", "'ts'", NULL);
    schema_error("s STRING(5)", "STRING takes no length", NULL);
    schema_error("s VARCHAR(0)", "at least 1", NULL);
    schema_error("s VARCHAR(x)", "malformed type", NULL);
    schema_error("s VARCHAR(10", "malformed type", NULL);
    schema_error("f FLOAT", "'FLOAT'", "not supported", "DOUBLE", NULL);
    schema_error("x DECIMAL(10, 2)", "'DECIMAL'", "not supported", NULL);
    schema_error("a INT, b *", "column 2 'b': expected a type", NULL);
    /* More than FLINT_MAX_FIELDS columns. */
    size_t cap = (FLINT_MAX_FIELDS + 1) * 16;
    char *big = malloc(cap), *p = big;
    for (int i = 0; i <= FLINT_MAX_FIELDS; i++) p += sprintf(p, "%sf%d INT", i ? ", " : "", i);
    schema_error(big, "more than 1024 columns", NULL);
    /* Exactly FLINT_MAX_FIELDS is fine. */
    *strrchr(big, ',') = '\0';
    flint_schema *s = schema(big);
    ck_assert_int_eq(flint_schema_field_count(s), FLINT_MAX_FIELDS);
    flint_schema_free(s);
    free(big);
}
END_TEST

/* ---- rows: round trips ----------------------------------------------------------------------- */

START_TEST(test_row_all_types) {
    flint_schema *s = schema(ALL_TYPES);
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    /* A fresh builder's row is all NULL. */
    flint_row r = flint_row_builder_row(&b);
    ck_assert_uint_eq(r.len, flint_row_fixed_size(7));
    for (int k = 0; k < 7; k++) ck_assert(flint_row_is_null(&r, k));
    check_ok(&r);
    for (int k = 0; k < 7; k++) set_all_field(&b, k, 7);
    r = flint_row_builder_row(&b);
    ck_assert_ptr_eq(r.schema, s);
    ck_assert_int_eq(r.nfields, 7);
    for (int k = 0; k < 7; k++) expect_all_field(&r, k, 7);
    check_ok(&r);
    /* Layout: 1 bitmap word, 7 slots, then "str7" and the 3 bytes. */
    ck_assert_uint_eq(r.len, 8 + 7 * 8 + 4 + 3);
    uint64_t slot0;
    memcpy(&slot0, r.data + 8, 8);
    ck_assert(slot0 == ((uint64_t)64 << 32 | 4));
    ck_assert_str_eq(fmt(&r, " "), "str7 -7 7000000049 7.25 true 1700000000007 0700ff");
    /* A copy of the bytes elsewhere reads the same (position-independent). */
    uint8_t *copy = malloc(r.len);
    memcpy(copy, r.data, r.len);
    flint_row v = flint_row_view(s, copy, r.len, 7);
    for (int k = 0; k < 7; k++) expect_all_field(&v, k, 7);
    free(copy);
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_row_nulls_every_position) {
    flint_schema *s = schema(ALL_TYPES);
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    for (int null = 0; null < 7; null++) {
        /* Null by never setting, and null by set_null after a value. */
        for (int how = 0; how < 2; how++) {
            flint_row_builder_reset(&b);
            for (int k = 0; k < 7; k++)
                if (k != null || how == 1) set_all_field(&b, k, null + 3);
            if (how == 1) flint_row_set_null(&b, null);
            flint_row r = flint_row_builder_row(&b);
            check_ok(&r);
            for (int k = 0; k < 7; k++) {
                if (k == null) {
                    ck_assert(flint_row_is_null(&r, k));
                    size_t len = 99;
                    if (k == 0 || k == 6) {
                        flint_row_get_string(&r, k, &len);
                        ck_assert_uint_eq(len, 0);
                    } else {
                        ck_assert(flint_row_get_long(&r, k) == 0);
                    }
                } else {
                    expect_all_field(&r, k, null + 3);
                }
            }
            /* Text form: "null" in that position; parses back to the same values. */
            char want[256], got[256];
            snprintf(want, sizeof want, "%s", fmt(&r, ","));
            ck_assert(strstr(want, "null"));
            flint_row_builder b2;
            flint_row_builder_init(&b2, s);
            flint_err err = {0};
            ck_assert_msg(flint_row_parse(&b2, want, strlen(want), ',', &err) == FLINT_OK, "%s",
                          err.msg);
            flint_row r2 = flint_row_builder_row(&b2);
            snprintf(got, sizeof got, "%s", fmt(&r2, ","));
            ck_assert_str_eq(got, want);
            if (null != 0) ck_assert(flint_row_is_null(&r2, null));
            flint_row_builder_free(&b2);
        }
    }
    /* All NULL. */
    flint_row_builder_reset(&b);
    flint_row r = flint_row_builder_row(&b);
    ck_assert_str_eq(fmt(&r, " "), "null null null null null null null");
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_row_many_fields) {
    /* 130 fields: three bitmap words, the last partly used. */
    char text[4096], *p = text;
    for (int i = 0; i < 130; i++)
        p += sprintf(p, "%sf%d %s", i ? ", " : "", i, i % 3 == 0 ? "STRING" : "BIGINT");
    flint_schema *s = schema(text);
    ck_assert_uint_eq(flint_row_fixed_size(130), 3 * 8 + 130 * 8);
    ck_assert_uint_eq(flint_row_fixed_size(64), 8 + 64 * 8);
    ck_assert_uint_eq(flint_row_fixed_size(65), 16 + 65 * 8);
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    for (int i = 0; i < 130; i++) {
        if (i % 7 == 0 || i == 63 || i == 64 || i == 129) continue;   /* NULL */
        if (i % 3 == 0) {
            char v[16];
            snprintf(v, sizeof v, "v%d", i);
            flint_row_set_cstring(&b, i, v);
        } else {
            flint_row_set_long(&b, i, -(int64_t)i * 3);
        }
    }
    flint_row r = flint_row_builder_row(&b);
    check_ok(&r);
    for (int i = 0; i < 130; i++) {
        bool null = i % 7 == 0 || i == 63 || i == 64 || i == 129;
        ck_assert_msg(flint_row_is_null(&r, i) == null, "field %d", i);
        if (null) continue;
        if (i % 3 == 0) {
            size_t len;
            const char *v = flint_row_get_string(&r, i, &len);
            char w[16];
            snprintf(w, sizeof w, "v%d", i);
            ck_assert(len == strlen(w) && memcmp(v, w, len) == 0);
        } else {
            ck_assert(flint_row_get_long(&r, i) == -(int64_t)i * 3);
        }
    }
    /* Fields 63 (word 0, bit 63), 64 (word 1, bit 0) and 129 (word 2, bit 1) are NULL; field
     * 128 (word 2, bit 0) is not, and no bit past field 129 is set. */
    uint64_t w0, w1, w2;
    memcpy(&w0, r.data, 8), memcpy(&w1, r.data + 8, 8), memcpy(&w2, r.data + 16, 8);
    ck_assert(w0 >> 63 == 1 && (w1 & 1) == 1 && w2 == 2);
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_row_long_and_empty_strings) {
    flint_schema *s = schema("a STRING, b BYTES, c STRING, d STRING");
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    size_t big = 1 << 20;
    char *mb = malloc(big);
    for (size_t k = 0; k < big; k++) mb[k] = (char)('a' + k % 26);
    flint_row_set_string(&b, 0, "", 0);
    flint_row_set_bytes(&b, 1, NULL, 0);
    flint_row_set_string(&b, 2, mb, big);
    flint_row_set_cstring(&b, 3, "tail");
    flint_row r = flint_row_builder_row(&b);
    check_ok(&r);
    size_t len;
    ck_assert(!flint_row_is_null(&r, 0) && !flint_row_is_null(&r, 1));
    flint_row_get_string(&r, 0, &len);
    ck_assert_uint_eq(len, 0);
    flint_row_get_bytes(&r, 1, &len);
    ck_assert_uint_eq(len, 0);
    const char *p = flint_row_get_string(&r, 2, &len);
    ck_assert_uint_eq(len, big);
    ck_assert(memcmp(p, mb, big) == 0);
    p = flint_row_get_string(&r, 3, &len);
    ck_assert(len == 4 && memcmp(p, "tail", 4) == 0);
    ck_assert_uint_eq(r.len, flint_row_fixed_size(4) + big + 4);
    /* Formatting a 1 MiB field: the needed length is reported; truncation is snprintf's. */
    char small[8];
    size_t need = flint_row_format(&r, "|", small, sizeof small);
    ck_assert_uint_eq(need, 0 + 1 + 0 + 1 + big + 1 + 4);
    ck_assert_str_eq(small, "||abcde");
    char *out = malloc(need + 1);
    ck_assert_uint_eq(flint_row_format(&r, "|", out, need + 1), need);
    /* Parse it back: the empty string and empty bytes stay empty, not NULL. */
    flint_row_builder b2;
    flint_row_builder_init(&b2, s);
    flint_err err = {0};
    ck_assert_int_eq(flint_row_parse(&b2, out, need, '|', &err), FLINT_OK);
    flint_row r2 = flint_row_builder_row(&b2);
    ck_assert_uint_eq(r2.len, r.len);
    ck_assert(memcmp(r2.data, r.data, r.len) == 0);
    free(out);
    free(mb);
    flint_row_builder_free(&b2);
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_row_numbers_and_bounds) {
    flint_schema *s = schema("i INT, l BIGINT, t TIMESTAMP(3), i2 INT");
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    flint_row_set_int(&b, 0, INT32_MIN);
    flint_row_set_long(&b, 1, INT64_MIN);
    flint_row_set_long(&b, 2, -1);
    flint_row_set_int(&b, 3, INT32_MAX);
    flint_row r = flint_row_builder_row(&b);
    check_ok(&r);
    ck_assert_int_eq(flint_row_get_int(&r, 0), INT32_MIN);
    ck_assert(flint_row_get_long(&r, 0) == INT32_MIN);   /* widened with its sign */
    ck_assert(flint_row_get_long(&r, 1) == INT64_MIN);
    ck_assert(flint_row_get_long(&r, 2) == -1);
    ck_assert_int_eq(flint_row_get_int(&r, 3), INT32_MAX);
    ck_assert_str_eq(fmt(&r, " "), "-2147483648 -9223372036854775808 -1 2147483647");
    flint_row_builder_reset(&b);
    flint_row_set_int(&b, 0, 0);
    flint_row_set_long(&b, 1, INT64_MAX);
    flint_row_set_long(&b, 2, 0);
    flint_row_set_int(&b, 3, -5);
    r = flint_row_builder_row(&b);
    ck_assert_str_eq(fmt(&r, " "), "0 9223372036854775807 0 -5");
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_row_doubles) {
    flint_schema *s = schema("d DOUBLE");
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    static const struct { double v; const char *text; } cases[] = {
        {0.1, "0.1"}, {-0.0, "-0"}, {0.0, "0"}, {1e300, "1e+300"}, {-2.5, "-2.5"}, {3.0, "3"},
        {1.0 / 3, "0.3333333333333333"}, {0.1 + 0.2, "0.30000000000000004"},
        {123456789.125, "123456789.125"}, {5e-324, "4.94065645841247e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"}, {NAN, "NaN"}, {INFINITY, "Infinity"},
        {-INFINITY, "-Infinity"},
    };
    flint_row_builder b2;
    flint_row_builder_init(&b2, s);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        flint_row_builder_reset(&b);
        flint_row_set_double(&b, 0, cases[k].v);
        flint_row r = flint_row_builder_row(&b);
        double got = flint_row_get_double(&r, 0);
        ck_assert(memcmp(&got, &cases[k].v, 8) == 0);   /* bit-exact, -0.0 keeps its sign */
        const char *text = fmt(&r, " ");
        ck_assert_msg(strcmp(text, cases[k].text) == 0, "%s != %s", text, cases[k].text);
        flint_err err = {0};
        ck_assert_msg(flint_row_parse(&b2, text, strlen(text), ' ', &err) == FLINT_OK, "%s: %s",
                      text, err.msg);
        flint_row r2 = flint_row_builder_row(&b2);
        double back = flint_row_get_double(&r2, 0);
        if (isnan(cases[k].v))
            ck_assert(isnan(back));
        else
            ck_assert_msg(memcmp(&back, &cases[k].v, 8) == 0, "%s did not round-trip", text);
    }
    /* Every double prints as the first of %.15g, %.16g, %.17g that reads back bit-exactly:
     * random bit patterns, decimal fractions, random mantissas at every scale. */
    uint64_t x = 88172645463325252ull;
    for (int k = 0; k < 200000; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        switch (k % 4) {
        case 0: memcpy(&d, &x, 8); break;
        case 1: d = k * 0.1; break;
        case 2: d = (double)(x >> 11) / (double)(1ull << 53) * pow(10, (int)(x % 40) - 20); break;
        default: d = (double)(int64_t)(x >> 8) / 1000.0; break;
        }
        if (!isfinite(d)) continue;
        char want[40];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(want, sizeof want, "%.*g", prec, d);
            if (strtod(want, NULL) == d) break;
        }
        flint_row_builder_reset(&b);
        flint_row_set_double(&b, 0, d);
        flint_row r = flint_row_builder_row(&b);
        const char *text = fmt(&r, " ");
        ck_assert_msg(strcmp(text, want) == 0, "%s, want %s", text, want);
    }
    flint_row_builder_free(&b2);
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_builder_reuse_no_growth) {
    flint_schema *s = schema("w STRING, n BIGINT, y BYTES");
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    char word[200];
    memset(word, 'x', sizeof word);
    /* Warm up with the largest row of the stream. */
    flint_row_set_string(&b, 0, word, sizeof word);
    flint_row_set_bytes(&b, 2, word, sizeof word);
    uint8_t *buf = b.buf;
    size_t cap = b.cap;
    ck_assert_uint_ge(cap, flint_row_fixed_size(3) + 400);
    for (int k = 0; k < 100000; k++) {
        flint_row_builder_reset(&b);
        size_t n = (size_t)(k % 200);
        flint_row_set_string(&b, 0, word, n);
        flint_row_set_long(&b, 1, k);
        flint_row_set_bytes(&b, 2, word, 200 - n);
        flint_row r = flint_row_builder_row(&b);
        ck_assert_uint_eq(r.len, flint_row_fixed_size(3) + 200);
        ck_assert(flint_row_get_long(&r, 1) == k);
        ck_assert_ptr_eq(b.buf, buf);
        ck_assert_uint_eq(b.cap, cap);
    }
    /* Growth is geometric: 1 MiB in 4 KiB steps reallocates only a few times. */
    int grows = 0;
    size_t last = b.cap;
    static char chunk[1 << 12];
    flint_row_builder_reset(&b);
    for (int k = 0; k < 256; k++) {
        flint_row_set_bytes(&b, 2, chunk, sizeof chunk);   /* re-setting appends */
        if (b.cap != last) grows++, last = b.cap;
    }
    ck_assert_int_le(grows, 20);
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_builder_copy_and_copy_field) {
    flint_schema *s = schema(ALL_TYPES);
    flint_schema *t = schema("x BIGINT, s2 STRING, y BYTES, n INT, b2 BOOLEAN");
    flint_row_builder a, c, d;
    flint_row_builder_init(&a, s);
    flint_row_builder_init(&c, s);
    flint_row_builder_init(&d, t);
    for (int k = 0; k < 7; k++) set_all_field(&a, k, 42);
    flint_row_set_null(&a, 4);
    flint_row ra = flint_row_builder_row(&a);
    /* Whole-row copy: the same bytes, independent of the source. */
    flint_row_builder_copy(&c, &ra);
    flint_row rc = flint_row_builder_row(&c);
    ck_assert_uint_eq(rc.len, ra.len);
    ck_assert(memcmp(rc.data, ra.data, ra.len) == 0);
    flint_row_builder_reset(&a);
    for (int k = 0; k < 7; k++)
        if (k != 4) expect_all_field(&rc, k, 42);
    ck_assert(flint_row_is_null(&rc, 4));
    /* Field copies into another schema. */
    flint_row_copy_field(&d, 0, &rc, 2);
    flint_row_copy_field(&d, 1, &rc, 0);
    flint_row_copy_field(&d, 2, &rc, 6);
    flint_row_copy_field(&d, 3, &rc, 1);
    flint_row_copy_field(&d, 4, &rc, 4);   /* NULL stays NULL */
    flint_row rd = flint_row_builder_row(&d);
    check_ok(&rd);
    ck_assert_str_eq(fmt(&rd, ","), "42000000294,str42,2a00ff,-42,null");
    /* Copying a field of the row being built into itself, across a buffer growth. */
    flint_row_builder_reset(&d);
    flint_row_set_cstring(&d, 1, "self");
    for (int k = 0; k < 12; k++) {
        flint_row cur = flint_row_builder_row(&d);
        flint_row_copy_field(&d, 1, &cur, 1);
    }
    rd = flint_row_builder_row(&d);
    size_t len;
    const char *p = flint_row_get_string(&rd, 1, &len);
    ck_assert(len == 4 && memcmp(p, "self", 4) == 0);
    /* builder_copy of its own row is a no-op. */
    flint_row own = flint_row_builder_row(&c);
    flint_row_builder_copy(&c, &own);
    ck_assert_uint_eq(c.len, own.len);
    flint_row_builder_free(&a);
    flint_row_builder_free(&c);
    flint_row_builder_free(&d);
    flint_schema_free(s);
    flint_schema_free(t);
}
END_TEST

/* A setter of the wrong type is a programming error: it asserts. */
/* flint_row_project of src into b (of out) is, byte for byte, the row the same copies with
 * flint_row_copy_field make. */
static void expect_projection(const flint_schema *out, const flint_projection *p, const flint_row *src,
                              const int *from, flint_row_builder *b) {
    flint_row_builder c;
    flint_row_builder_init(&c, out);
    for (int i = 0; i < p->n; i++) flint_row_copy_field(&c, i, src, from[i]);
    flint_row_project(b, p, src);
    flint_row rb = flint_row_builder_row(b), rc = flint_row_builder_row(&c);
    check_ok(&rb);
    ck_assert_uint_eq(rb.len, rc.len);
    ck_assert(memcmp(rb.data, rc.data, rc.len) == 0);
    flint_row_builder_free(&c);
}

START_TEST(test_projection) {
    flint_schema *s = schema(ALL_TYPES);
    int from[] = {6, 0, 2, 4, 1};
    flint_schema *t = flint_schema_select(s, from, 5);
    ck_assert_str_eq(flint_schema_text(t), "y BYTES, s STRING, l BIGINT, b BOOLEAN, i INT");
    flint_projection p;
    flint_err err = {0};
    ck_assert_int_eq(flint_projection_plan(&p, s, t, from, 5, &err), 0);
    flint_row_builder a, b;
    flint_row_builder_init(&a, s);
    flint_row_builder_init(&b, t);
    /* All set, with a string longer than the builder's room (it grows); then NULLs, one of them
     * variable-length, into the same builder; then an empty string. */
    for (int k = 0; k < 7; k++) set_all_field(&a, k, 42);
    char big[300];
    memset(big, 'x', sizeof big);
    flint_row_set_string(&a, 0, big, sizeof big);
    flint_row ra = flint_row_builder_row(&a);
    expect_projection(t, &p, &ra, from, &b);
    flint_row_builder_reset(&a);
    set_all_field(&a, 2, 7);
    set_all_field(&a, 1, 7);
    ra = flint_row_builder_row(&a);
    expect_projection(t, &p, &ra, from, &b);
    flint_row rb = flint_row_builder_row(&b);
    ck_assert(flint_row_is_null(&rb, 0) && flint_row_is_null(&rb, 1) && !flint_row_is_null(&rb, 2));
    flint_row_set_string(&a, 0, "", 0);
    ra = flint_row_builder_row(&a);
    expect_projection(t, &p, &ra, from, &b);
    flint_projection_free(&p);
    /* Errors name what does not fit. */
    int bad_type[] = {6, 0, 2, 1, 4};
    ck_assert_int_ne(flint_projection_plan(&p, s, t, bad_type, 5, &err), 0);
    ck_assert_msg(strstr(err.msg, "projection field 3 ('b'): BOOLEAN, but input field 1 ('i') is INT"), "%s", err.msg);
    flint_projection_free(&p);
    int out_of_range[] = {6, 0, 2, 4, 7};
    ck_assert_int_ne(flint_projection_plan(&p, s, t, out_of_range, 5, &err), 0);
    ck_assert_msg(strstr(err.msg, "no field 7"), "%s", err.msg);
    flint_projection_free(&p);
    ck_assert_int_ne(flint_projection_plan(&p, s, t, from, 4, &err), 0);
    ck_assert_msg(strstr(err.msg, "projection of 4 fields to a schema of 5"), "%s", err.msg);
    flint_projection_free(&p);
    flint_row_builder_free(&a);
    flint_row_builder_free(&b);
    flint_schema_free(t);
    /* Wide rows (more than 64 fields, three bitmap words): row.c's path. */
    char text[4096], *q = text;
    for (int i = 0; i < 130; i++) q += sprintf(q, "%sf%d %s", i ? ", " : "", i, i % 3 == 0 ? "STRING" : "BIGINT");
    flint_schema_free(s);
    s = schema(text);
    int wide[] = {129, 0, 64, 63, 128, 3, 5};
    t = flint_schema_select(s, wide, 7);
    ck_assert_int_eq(flint_projection_plan(&p, s, t, wide, 7, &err), 0);
    flint_row_builder_init(&a, s);
    flint_row_builder_init(&b, t);
    for (int i = 0; i < 130; i++) {
        if (i == 63 || i == 129) continue;   /* NULL */
        if (i % 3 == 0) flint_row_set_cstring(&a, i, "v");
        else flint_row_set_long(&a, i, -(int64_t)i);
    }
    ra = flint_row_builder_row(&a);
    expect_projection(t, &p, &ra, wide, &b);
    flint_projection_free(&p);
    flint_row_builder_free(&a);
    flint_row_builder_free(&b);
    flint_schema_free(t);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_setter_type_mismatch_aborts) {
    flint_schema *s = schema("w STRING, n BIGINT");
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    flint_row_set_long(&b, 0, 1);
}
END_TEST

START_TEST(test_setter_int_on_bigint_aborts) {
    flint_schema *s = schema("w STRING, n BIGINT");
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    flint_row_set_int(&b, 1, 1);
}
END_TEST

/* ---- row_check ------------------------------------------------------------------------------- */

static void check_fails(const flint_schema *s, const uint8_t *data, uint32_t len,
                        const char *want) {
    flint_err err = {0};
    int rc = flint_row_check(s, data, len, &err);
    ck_assert_msg(rc != FLINT_OK, "corrupt row accepted (want '%s')", want);
    ck_assert_msg(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
}

START_TEST(test_row_check_corrupt) {
    flint_schema *s = schema("w STRING, n BIGINT, ok BOOLEAN, i INT");
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    flint_row_set_cstring(&b, 0, "hello");
    flint_row_set_long(&b, 1, 5);
    flint_row_set_bool(&b, 2, true);
    flint_row_set_int(&b, 3, -3);
    flint_row r = flint_row_builder_row(&b);
    check_ok(&r);
    size_t fixed = flint_row_fixed_size(4);
    uint8_t row[256];
    memcpy(row, r.data, r.len);
    uint32_t len = r.len;
    uint8_t bad[256];
    uint64_t v;
#define SLOT(k) (bad + 8 + (k) * 8)
    /* Shorter than the fixed part. */
    check_fails(s, row, (uint32_t)fixed - 1, "shorter than its fixed part");
    check_fails(s, row, 0, "shorter than its fixed part");
    /* Truncated variable part: the string runs past the end. */
    check_fails(s, row, len - 1, "field 0 'w' (STRING)");
    /* Offset beyond len. */
    memcpy(bad, row, len);
    v = (uint64_t)(len + 10) << 32 | 1;
    memcpy(SLOT(0), &v, 8);
    check_fails(s, bad, len, "outside the row's variable part");
    /* Offset + length overflowing 32 bits. */
    v = (uint64_t)fixed << 32 | 0xffffffffu;
    memcpy(SLOT(0), &v, 8);
    check_fails(s, bad, len, "field 0 'w'");
    /* Offset inside the fixed part. */
    v = (uint64_t)8 << 32 | 4;
    memcpy(SLOT(0), &v, 8);
    check_fails(s, bad, len, "outside");
    /* A bad boolean. */
    memcpy(bad, row, len);
    v = 2;
    memcpy(SLOT(2), &v, 8);
    check_fails(s, bad, len, "field 2 'ok' (BOOLEAN): value 2 is not 0 or 1");
    /* An INT slot that is not a sign-extended 32-bit value. */
    memcpy(bad, row, len);
    v = 0x100000000ull;
    memcpy(SLOT(3), &v, 8);
    check_fails(s, bad, len, "field 3 'i' (INT)");
    /* A NULL field with a non-zero slot. */
    memcpy(bad, row, len);
    bad[0] |= 2;
    check_fails(s, bad, len, "field 1 'n' (BIGINT) is NULL but its slot is not zero");
    /* Null bits past the last field. */
    memcpy(bad, row, len);
    bad[0] |= 0x10;
    check_fails(s, bad, len, "beyond its 4 fields");
    /* A valid row with slack after the variable part is fine; so is an empty string at the end. */
    memcpy(bad, row, len);
    check_ok(&(flint_row){s, bad, len + 3, 4});
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

/* The same rules for 64 fields (the last bitmap bit is a field's) and 70 (two bitmap words, the
 * field-by-field path), with the field broken past the first word, a NULL string with a slot and a
 * copied schema. */
START_TEST(test_row_check_wide) {
    for (int n = 64; n <= 70; n += 6) {
        char text[2048];
        size_t pos = 0;
        for (int i = 0; i < n; i++)
            pos += (size_t)snprintf(text + pos, sizeof text - pos, "%sf%d %s", i ? ", " : "", i,
                                    i == n - 1 ? "BOOLEAN" : i == 40 ? "STRING" : "BIGINT");
        flint_schema *parsed = schema(text), *s = flint_schema_copy(parsed);
        flint_schema_free(parsed);
        flint_row_builder b;
        flint_row_builder_init(&b, s);
        for (int i = 0; i < n - 1; i++)
            if (i != 40) flint_row_set_long(&b, i, i);
        flint_row_set_bool(&b, n - 1, true);
        flint_row_set_null(&b, 40);
        flint_row r = flint_row_builder_row(&b);
        check_ok(&r);
        uint8_t bad[2048];
        size_t slots = (size_t)((n + 63) / 64) * 8;
        uint64_t v = 2;
        memcpy(bad, r.data, r.len);
        memcpy(bad + slots + (size_t)(n - 1) * 8, &v, 8);
        check_fails(s, bad, r.len, n == 64 ? "field 63 'f63' (BOOLEAN): value 2" : "field 69 'f69' (BOOLEAN): value 2");
        memcpy(bad, r.data, r.len);
        v = (uint64_t)r.len << 32 | 100;
        memcpy(bad + slots + 40 * 8, &v, 8);
        check_fails(s, bad, r.len, "field 40 'f40' (STRING) is NULL but its slot is not zero");
        flint_row_builder_free(&b);
        flint_schema_free(s);
    }
}
END_TEST

/* ---- text forms ------------------------------------------------------------------------------ */

static int parse(flint_row_builder *b, const char *text, char sep, flint_err *err) {
    return flint_row_parse(b, text, strlen(text), sep, err);
}

START_TEST(test_format_parse_round_trip) {
    flint_schema *s = schema(ALL_TYPES);
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    static const char *rows[] = {
        "hello,-3,9000000000,0.1,true,1700000000123,deadBEEF",
        ",0,0,0,false,0,",
        "null,null,null,null,null,null,null",
        "with space,2147483647,-9223372036854775808,-1e-300,FALSE,-5,00",
        "a,1, 2 , 2.5 ,true , 7 ,abcd",
        "a,1,2,NaN,true,7,ab",
        "a,1,2,-Infinity,true,7,ab",
    };
    static const char *want[] = {
        "hello,-3,9000000000,0.1,true,1700000000123,deadbeef",
        ",0,0,0,false,0,",
        "null,null,null,null,null,null,null",   /* the STRING "null" is a string */
        "with space,2147483647,-9223372036854775808,-1e-300,false,-5,00",
        "a,1,2,2.5,true,7,abcd",
        "a,1,2,NaN,true,7,ab",
        "a,1,2,-Infinity,true,7,ab",
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        flint_err err = {0};
        ck_assert_msg(parse(&b, rows[k], ',', &err) == FLINT_OK, "'%s': %s", rows[k], err.msg);
        flint_row r = flint_row_builder_row(&b);
        check_ok(&r);
        ck_assert_str_eq(fmt(&r, ","), want[k]);
    }
    /* "null" in a STRING field is the string, not NULL; in the others it is NULL. */
    flint_err err = {0};
    ck_assert_int_eq(parse(&b, "null,null,null,null,null,null,null", ',', &err), FLINT_OK);
    flint_row r = flint_row_builder_row(&b);
    ck_assert(!flint_row_is_null(&r, 0));
    for (int i = 1; i < 7; i++) ck_assert(flint_row_is_null(&r, i));
    /* Timestamps as date-times (UTC). */
    ck_assert_int_eq(parse(&b, "x,1,2,3,true,2024-03-01 12:34:56.789,", ',', &err), FLINT_OK);
    r = flint_row_builder_row(&b);
    ck_assert(flint_row_get_long(&r, 5) == 1709296496789LL);
    ck_assert_int_eq(parse(&b, "x,1,2,3,true,1970-01-01T00:00:01Z,", ',', &err), FLINT_OK);
    r = flint_row_builder_row(&b);
    ck_assert(flint_row_get_long(&r, 5) == 1000);
    ck_assert_int_eq(parse(&b, "x,1,2,3,true,1969-12-31,", ',', &err), FLINT_OK);
    r = flint_row_builder_row(&b);
    ck_assert(flint_row_get_long(&r, 5) == -86400000LL);
    ck_assert_int_eq(parse(&b, "x,1,2,3,true,2000-02-29 00:00:00.5,", ',', &err), FLINT_OK);
    r = flint_row_builder_row(&b);
    ck_assert(flint_row_get_long(&r, 5) == 951782400500LL);
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_parse_last_string_takes_rest) {
    flint_schema *s = schema("n INT, line STRING"), *one = schema("line STRING");
    flint_row_builder b, c;
    flint_row_builder_init(&b, s);
    flint_row_builder_init(&c, one);
    flint_err err = {0};
    ck_assert_int_eq(parse(&b, "3,hello, world, again", ',', &err), FLINT_OK);
    flint_row r = flint_row_builder_row(&b);
    ck_assert_str_eq(fmt(&r, "|"), "3|hello, world, again");
    ck_assert_int_eq(parse(&c, "to be, or not to be", ',', &err), FLINT_OK);
    r = flint_row_builder_row(&c);
    ck_assert_str_eq(fmt(&r, "|"), "to be, or not to be");
    ck_assert_int_eq(parse(&c, "", ',', &err), FLINT_OK);
    r = flint_row_builder_row(&c);
    ck_assert(!flint_row_is_null(&r, 0));
    ck_assert_str_eq(fmt(&r, "|"), "");
    /* Text that is not NUL-terminated: only len bytes are read. */
    ck_assert_int_eq(flint_row_parse(&b, "7,abcXYZ", 5, ',', &err), FLINT_OK);
    r = flint_row_builder_row(&b);
    ck_assert_str_eq(fmt(&r, " "), "7 abc");
    flint_row_builder_free(&b);
    flint_row_builder_free(&c);
    flint_schema_free(s);
    flint_schema_free(one);
}
END_TEST

static void parse_fails(flint_row_builder *b, const char *text, char sep, const char *want) {
    flint_err err = {0};
    int rc = parse(b, text, sep, &err);
    ck_assert_msg(rc != FLINT_OK, "'%s' was accepted", text);
    ck_assert_msg(strstr(err.msg, want), "'%s': message '%s' lacks '%s'", text, err.msg, want);
}

START_TEST(test_parse_errors) {
    flint_schema *s = schema("w STRING, n BIGINT, i INT, d DOUBLE, ok BOOLEAN, ts TIMESTAMP, y BYTES");
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    parse_fails(&b, "a 1 2 3.0 true 5 00", ',', "expected 7 fields separated by ','");
    parse_fails(&b, "a,1,2", ',', "got 3");
    parse_fails(&b, "a,1,2,3,true,5,00,extra", ',', "got 8");
    parse_fails(&b, "a,x,2,3,true,5,00", ',', "field 1 'n' (BIGINT): expected a 64-bit integer");
    parse_fails(&b, "a,x,2,3,true,5,00", ',', "got 'x'");
    parse_fails(&b, "a,,2,3,true,5,00", ',', "field 1 'n'");
    parse_fails(&b, "a,99999999999999999999,2,3,true,5,00", ',', "field 1 'n'");
    parse_fails(&b, "a,1,2147483648,3,true,5,00", ',', "field 2 'i' (INT): expected an integer");
    parse_fails(&b, "a,1,1.5,3,true,5,00", ',', "field 2 'i'");
    parse_fails(&b, "a,1,2,3x,true,5,00", ',', "field 3 'd' (DOUBLE): expected a number");
    parse_fails(&b, "a,1,2,1e999,true,5,00", ',', "field 3 'd'");
    parse_fails(&b, "a,1,2,3,yes,5,00", ',', "field 4 'ok' (BOOLEAN): expected true, false");
    parse_fails(&b, "a,1,2,3,true,2024-13-01,00", ',', "field 5 'ts' (TIMESTAMP(3)): expected epoch");
    parse_fails(&b, "a,1,2,3,true,2023-02-29 00:00:00,00", ',', "field 5 'ts'");
    parse_fails(&b, "a,1,2,3,true,5,abc", ',', "field 6 'y' (BYTES): expected hex digits");
    parse_fails(&b, "a,1,2,3,true,5,zz", ',', "field 6 'y'");
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_format_truncation) {
    flint_schema *s = schema("a STRING, n INT");
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    flint_row_set_cstring(&b, 0, "hello");
    flint_row_set_int(&b, 1, 12345);
    flint_row r = flint_row_builder_row(&b);
    char buf[8];
    memset(buf, '#', sizeof buf);
    ck_assert_uint_eq(flint_row_format(&r, ", ", buf, sizeof buf), 12);
    ck_assert_str_eq(buf, "hello, ");
    ck_assert_uint_eq(flint_row_format(&r, ", ", NULL, 0), 12);
    buf[0] = 'x';
    ck_assert_uint_eq(flint_row_format(&r, ", ", buf, 1), 12);
    ck_assert_str_eq(buf, "");
    ck_assert_uint_eq(flint_row_format(&r, "", buf, sizeof buf), 10);
    ck_assert_str_eq(buf, "hello12");
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

/* ---- keys ------------------------------------------------------------------------------------ */

static size_t key_of(const flint_schema *s, const char *text, const int *fields, int n,
                     uint8_t *buf, size_t cap) {
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    flint_err err = {0};
    ck_assert_msg(parse(&b, text, ',', &err) == FLINT_OK, "%s", err.msg);
    flint_row r = flint_row_builder_row(&b);
    size_t need = row_key_encode(&r, fields, n, buf, cap);
    ck_assert_uint_le(need, cap);
    ck_assert(row_key_hash_row(&r, fields, n) == row_key_hash(buf, need));
    flint_row_builder_free(&b);
    return need;
}

START_TEST(test_key_encode) {
    flint_schema *s = schema("a STRING, b STRING, n BIGINT, i INT, d DOUBLE, ok BOOLEAN");
    uint8_t k1[256], k2[256];
    const int ab[] = {0, 1}, an[] = {0, 2}, all[] = {0, 1, 2, 3, 4, 5};
    size_t n1, n2;
    /* Same key fields, different other fields: the same bytes. */
    n1 = key_of(s, "x,y,5,1,0.5,true", an, 2, k1, sizeof k1);
    n2 = key_of(s, "x,zzz,5,2,9.5,false", an, 2, k2, sizeof k2);
    ck_assert(n1 == n2 && memcmp(k1, k2, n1) == 0);
    ck_assert_uint_eq(n1, 1 + 4 + 1 + 1 + 8);
    ck_assert_int_eq(k1[0], 1 + FLINT_STRING);
    ck_assert(k1[1] == 1 && k1[2] == 0 && k1[5] == 'x' && k1[6] == 1 + FLINT_BIGINT && k1[7] == 5);
    /* "ab","c" vs "a","bc". */
    n1 = key_of(s, "ab,c,0,0,0,true", ab, 2, k1, sizeof k1);
    n2 = key_of(s, "a,bc,0,0,0,true", ab, 2, k2, sizeof k2);
    ck_assert(n1 == n2 && memcmp(k1, k2, n1) != 0);
    /* NULL vs 0, NULL vs empty string; key field order matters. */
    const int nn[] = {2}, ba[] = {1, 0};
    n1 = key_of(s, "a,b,null,0,0,true", nn, 1, k1, sizeof k1);
    n2 = key_of(s, "a,b,0,0,0,true", nn, 1, k2, sizeof k2);
    ck_assert(n1 != n2 || memcmp(k1, k2, n1) != 0);
    n1 = key_of(s, "a,,0,0,0,true", ba, 2, k1, sizeof k1);
    n2 = key_of(s, "a,b,0,0,0,true", ab, 2, k2, sizeof k2);
    ck_assert(n1 != n2 || memcmp(k1, k2, n1) != 0);
    /* INT and BIGINT of the same value differ (the tag holds the type). */
    const int ii[] = {3};
    n1 = key_of(s, "a,b,7,7,0,true", nn, 1, k1, sizeof k1);
    n2 = key_of(s, "a,b,7,7,0,true", ii, 1, k2, sizeof k2);
    ck_assert(n1 == n2 && memcmp(k1, k2, n1) != 0);
    /* Negative INT widened: equal to itself across rows. */
    n1 = key_of(s, "a,b,0,-7,0,true", ii, 1, k1, sizeof k1);
    ck_assert(k1[1] == 0xf9 && k1[8] == 0xff);
    /* Whole row with fields NULL. */
    n1 = key_of(s, "p,q,1,2,3.5,false", all, 6, k1, sizeof k1);
    n2 = key_of(s, "p,q,1,2,3.5,false", NULL, 6, k2, sizeof k2);
    ck_assert(n1 == n2 && memcmp(k1, k2, n1) == 0);
    /* NaNs with different payloads are one key. */
    const int dd[] = {4};
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    uint64_t nan1 = 0x7ff8000000000001ull, nan2 = 0xfff0000000000100ull;
    double d1, d2;
    memcpy(&d1, &nan1, 8), memcpy(&d2, &nan2, 8);
    flint_row_set_double(&b, 4, d1);
    flint_row r = flint_row_builder_row(&b);
    n1 = row_key_encode(&r, dd, 1, k1, sizeof k1);
    flint_row_set_double(&b, 4, d2);
    r = flint_row_builder_row(&b);
    n2 = row_key_encode(&r, dd, 1, k2, sizeof k2);
    ck_assert(n1 == n2 && memcmp(k1, k2, n1) == 0);
    /* Too small a buffer: the needed size; nothing written past cap. */
    flint_row_builder_reset(&b);
    flint_row_set_cstring(&b, 0, "a fairly long key value");
    r = flint_row_builder_row(&b);
    uint8_t small[8];
    memset(small, 0xaa, sizeof small);
    size_t need = row_key_encode(&r, ab, 2, small, 4);
    ck_assert_uint_eq(need, 5 + 23 + 1);
    ck_assert(small[4] == 0xaa);
    ck_assert_uint_eq(row_key_encode(&r, ab, 2, NULL, 0), need);
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_key_hash_long_keys) {
    flint_schema *s = schema("a STRING, b BYTES");
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    size_t big = 5000;
    char *v = malloc(big);
    for (size_t k = 0; k < big; k++) v[k] = (char)k;
    uint8_t *key = malloc(2 * big + 16);
    for (size_t len = 0; len < big; len += 97) {
        flint_row_builder_reset(&b);
        flint_row_set_string(&b, 0, v, len);
        flint_row_set_bytes(&b, 1, v, big - len);
        flint_row r = flint_row_builder_row(&b);
        size_t need = row_key_encode(&r, NULL, 2, key, 2 * big + 16);
        ck_assert_uint_eq(need, 10 + big);
        ck_assert(row_key_hash_row(&r, NULL, 2) == row_key_hash(key, need));
    }
    free(key);
    free(v);
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_key_groups_distribution) {
    flint_schema *s = schema("k STRING, n BIGINT");
    flint_row_builder b;
    flint_row_builder_init(&b, s);
    enum { KEYS = 100000, MAXP = 128 };
    int count[MAXP] = {0};
    const int kf[] = {0};
    for (int k = 0; k < KEYS; k++) {
        char w[32];
        int n = snprintf(w, sizeof w, "key-%d", k);
        flint_row_builder_reset(&b);
        flint_row_set_string(&b, 0, w, (size_t)n);
        flint_row r = flint_row_builder_row(&b);
        int g = row_key_group(row_key_hash_row(&r, kf, 1), MAXP);
        ck_assert(g >= 0 && g < MAXP);
        count[g]++;
    }
    double mean = (double)KEYS / MAXP;
    for (int g = 0; g < MAXP; g++)
        ck_assert_msg(count[g] > mean * 0.7 && count[g] < mean * 1.3, "group %d has %d keys", g,
                      count[g]);
    /* BIGINT keys 0..99999 as well. */
    memset(count, 0, sizeof count);
    const int nf[] = {1};
    for (int k = 0; k < KEYS; k++) {
        flint_row_builder_reset(&b);
        flint_row_set_long(&b, 1, k);
        flint_row r = flint_row_builder_row(&b);
        count[row_key_group(row_key_hash_row(&r, nf, 1), MAXP)]++;
    }
    for (int g = 0; g < MAXP; g++)
        ck_assert_msg(count[g] > mean * 0.7 && count[g] < mean * 1.3, "group %d has %d keys", g,
                      count[g]);
    ck_assert_int_eq(row_key_group(UINT64_MAX, 128), (int)(UINT64_MAX % 128));
    ck_assert_int_eq(row_key_group(12345, 1), 0);
    flint_row_builder_free(&b);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_key_group_to_subtask) {
    static const int maxps[] = {1, 7, 128, 1000, 32768};
    for (size_t m = 0; m < sizeof maxps / sizeof maxps[0]; m++) {
        int maxp = maxps[m];
        for (int p = 1; p <= maxp && p <= 300; p += (p < 20 ? 1 : 37)) {
            int *seen = calloc((size_t)p, sizeof *seen);
            int prev = 0;
            for (int kg = 0; kg < maxp; kg++) {
                int st = row_key_group_to_subtask(kg, maxp, p);
                ck_assert_int_eq(st, (int)((int64_t)kg * p / maxp));
                ck_assert(st >= 0 && st < p);
                ck_assert_msg(st >= prev, "not monotonic at kg %d (maxp %d, p %d)", kg, maxp, p);
                prev = st;
                seen[st]++;
            }
            for (int st = 0; st < p; st++) {
                ck_assert_msg(seen[st] > 0, "subtask %d of %d gets no key group (maxp %d)", st, p,
                              maxp);
                int first, last;
                row_key_group_range(st, maxp, p, &first, &last);
                ck_assert_int_eq(last - first + 1, seen[st]);
                ck_assert_int_eq(row_key_group_to_subtask(first, maxp, p), st);
                ck_assert_int_eq(row_key_group_to_subtask(last, maxp, p), st);
            }
            free(seen);
        }
    }
    ck_assert_int_eq(row_key_group_to_subtask(127, 128, 4), 3);
    ck_assert_int_eq(row_key_group_to_subtask(32, 128, 4), 1);
    ck_assert_int_eq(row_key_group_to_subtask(31, 128, 4), 0);
}
END_TEST

START_TEST(test_key_fields_parse) {
    flint_schema *s = schema("word STRING, region STRING, `my n` BIGINT");
    int f[4];
    flint_err err = {0};
    ck_assert_int_eq(row_key_fields_parse(s, "word", f, 4, &err), 1);
    ck_assert_int_eq(f[0], 0);
    ck_assert_int_eq(row_key_fields_parse(s, " region ,word", f, 4, &err), 2);
    ck_assert(f[0] == 1 && f[1] == 0);
    ck_assert_int_eq(row_key_fields_parse(s, "`my n`, word", f, 4, &err), 2);
    ck_assert(f[0] == 2 && f[1] == 0);
    ck_assert_int_eq(row_key_fields_parse(s, "wrod", f, 4, &err), -1);
    ck_assert_msg(strstr(err.msg, "unknown key field 'wrod'") &&
                      strstr(err.msg, "word STRING, region STRING, `my n` BIGINT"),
                  "%s", err.msg);
    ck_assert_int_eq(row_key_fields_parse(s, "", f, 4, &err), -1);
    ck_assert_msg(strstr(err.msg, "no key fields"), "%s", err.msg);
    ck_assert_int_eq(row_key_fields_parse(s, "word,", f, 4, &err), -1);
    ck_assert_msg(strstr(err.msg, "empty key field 2"), "%s", err.msg);
    ck_assert_int_eq(row_key_fields_parse(s, "word, word", f, 4, &err), -1);
    ck_assert_msg(strstr(err.msg, "'word' is given twice"), "%s", err.msg);
    ck_assert_int_eq(row_key_fields_parse(s, "word, region", f, 1, &err), -1);
    ck_assert_msg(strstr(err.msg, "more than 1"), "%s", err.msg);
    flint_schema_free(s);
}
END_TEST

START_TEST(test_key_indexes_parse_format) {
    int f[4];
    flint_err err = {0};
    ck_assert_int_eq(row_key_indexes_parse("0", 3, f, 4, &err), 1);
    ck_assert_int_eq(f[0], 0);
    ck_assert_int_eq(row_key_indexes_parse("0,2", 3, f, 4, &err), 2);
    ck_assert(f[0] == 0 && f[1] == 2);
    ck_assert_int_eq(row_key_indexes_parse(" 2 , 1 ", 3, f, 4, &err), 2);
    ck_assert(f[0] == 2 && f[1] == 1);
    static const struct { const char *text, *want; } bad[] = {
        {"", "no key field indexes"}, {NULL, "no key field indexes"},
        {"3", "index 3 is out of range: the schema has 3 fields (0..2)"},
        {"0,x", "is 'x': expected a number"}, {"-1", "expected a number"},
        {"0,,1", "expected a number"}, {"1,1", "index 1 is given twice"},
        {"99999999999999999999", "expected a number"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ck_assert_int_eq(row_key_indexes_parse(bad[k].text, 3, f, 4, &err), -1);
        ck_assert_msg(strstr(err.msg, bad[k].want), "'%s': %s", bad[k].text, err.msg);
    }
    ck_assert_int_eq(row_key_indexes_parse("0,1,2", 3, f, 2, &err), -1);
    ck_assert_msg(strstr(err.msg, "more than 2"), "%s", err.msg);
    char buf[32];
    const int fs[] = {0, 12, 3};
    ck_assert_uint_eq(row_key_indexes_format(fs, 3, buf, sizeof buf), 6);
    ck_assert_str_eq(buf, "0,12,3");
    ck_assert_uint_eq(row_key_indexes_format(fs, 3, buf, 4), 6);
    ck_assert_str_eq(buf, "0,1");
    ck_assert_uint_eq(row_key_indexes_format(fs, 0, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "");
    /* Round trip with the parser. */
    ck_assert_uint_eq(row_key_indexes_format(fs, 3, buf, sizeof buf), 6);
    ck_assert_int_eq(row_key_indexes_parse(buf, 13, f, 4, &err), 3);
    ck_assert(f[0] == 0 && f[1] == 12 && f[2] == 3);
}
END_TEST

/* ---- suite ----------------------------------------------------------------------------------- */

static Suite *row_suite(SRunner **sr_out) {
    Suite *s = suite_create("row");
    TCase *tc = tcase_create("schema");
    tcase_add_test(tc, test_schema_parse_types);
    tcase_add_test(tc, test_schema_aliases_and_case);
    tcase_add_test(tc, test_schema_equal);
    tcase_add_test(tc, test_type_names);
    tcase_add_test(tc, test_schema_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("rows");
    tcase_add_test(tc, test_row_all_types);
    tcase_add_test(tc, test_row_nulls_every_position);
    tcase_add_test(tc, test_row_many_fields);
    tcase_add_test(tc, test_row_long_and_empty_strings);
    tcase_add_test(tc, test_row_numbers_and_bounds);
    tcase_add_test(tc, test_row_doubles);
    tcase_add_test(tc, test_builder_reuse_no_growth);
    tcase_add_test(tc, test_builder_copy_and_copy_field);
    tcase_add_test(tc, test_projection);
    tcase_add_test(tc, test_row_check_corrupt);
    tcase_add_test(tc, test_row_check_wide);
    suite_add_tcase(s, tc);

    tc = tcase_create("text");
    tcase_add_test(tc, test_format_parse_round_trip);
    tcase_add_test(tc, test_parse_last_string_takes_rest);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_format_truncation);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_key_encode);
    tcase_add_test(tc, test_key_hash_long_keys);
    tcase_add_test(tc, test_key_groups_distribution);
    tcase_add_test(tc, test_key_group_to_subtask);
    tcase_add_test(tc, test_key_fields_parse);
    tcase_add_test(tc, test_key_indexes_parse_format);
    suite_add_tcase(s, tc);

    *sr_out = srunner_create(s);
    /* Assertion deaths need a forked test process. */
    if (srunner_fork_status(*sr_out) == CK_FORK) {
        tc = tcase_create("asserts");
        tcase_add_test_raise_signal(tc, test_setter_type_mismatch_aborts, SIGABRT);
        tcase_add_test_raise_signal(tc, test_setter_int_on_bigint_aborts, SIGABRT);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void) {
    SRunner *sr;
    row_suite(&sr);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
