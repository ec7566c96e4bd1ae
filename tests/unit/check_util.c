/* Unit tests for common/util: the value parsers and formatters of strutil (integers, booleans,
 * durations, memory sizes, host:port) and the status/error helpers of flint/status.h. */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flint/status.h"
#include "util/fsutil.h"
#include "util/strutil.h"

/* ---- integers, booleans, doubles ------------------------------------------------------- */

START_TEST(test_parse_int_valid) {
    int64_t v = -1;
    ck_assert_int_eq(str_parse_int("0", &v), 0);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(str_parse_int("42", &v), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(str_parse_int("  -17  ", &v), 0);
    ck_assert_int_eq(v, -17);
    ck_assert_int_eq(str_parse_int("+8", &v), 0);
    ck_assert_int_eq(v, 8);
    ck_assert_int_eq(str_parse_int("9223372036854775807", &v), 0);
    ck_assert(v == INT64_MAX);
    ck_assert_int_eq(str_parse_int("-9223372036854775808", &v), 0);
    ck_assert(v == INT64_MIN);
}
END_TEST

START_TEST(test_parse_int_malformed) {
    static const char *bad[] = {"", "   ", "abc", "12abc", "1 2", "1.5", "0x10", "--1", "+",
                                "9223372036854775808", "-9223372036854775809"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 12345;
        ck_assert_msg(str_parse_int(bad[i], &v) == -1, "'%s' was accepted", bad[i]);
        ck_assert_msg(v == 12345, "'%s' changed the output on failure", bad[i]);
    }
}
END_TEST

START_TEST(test_parse_bool) {
    static const char *yes[] = {"true", "TRUE", "True", "yes", "on", "1", " true "};
    static const char *no[] = {"false", "FALSE", "no", "Off", "0", "\tfalse\n"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        bool b = false;
        ck_assert_msg(str_parse_bool(yes[i], &b) == 0 && b, "'%s' is not true", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        bool b = true;
        ck_assert_msg(str_parse_bool(no[i], &b) == 0 && !b, "'%s' is not false", no[i]);
    }
    static const char *bad[] = {"", "truth", "2", "y", "t", "nope",
                                /* A valid word followed, past the parser's buffer, by junk. */
                                "true                                x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool b = false;
        ck_assert_msg(str_parse_bool(bad[i], &b) == -1, "'%s' was accepted", bad[i]);
    }
}
END_TEST

START_TEST(test_parse_double) {
    double d = 0;
    ck_assert_int_eq(str_parse_double("0.5", &d), 0);
    ck_assert(d == 0.5);
    ck_assert_int_eq(str_parse_double(" -2.25e2 ", &d), 0);
    ck_assert(d == -225.0);
    ck_assert_int_eq(str_parse_double("3", &d), 0);
    ck_assert(d == 3.0);
    static const char *bad[] = {"", "abc", "1.5x", "nan", "inf", "-infinity", "1e999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(str_parse_double(bad[i], &d) == -1, "'%s' was accepted", bad[i]);
}
END_TEST

/* ---- durations --------------------------------------------------------------------------- */

typedef struct parse_case { const char *text; int64_t want; } parse_case;

START_TEST(test_parse_duration_units) {
    static const parse_case cases[] = {
        {"100 ms", 100}, {"100ms", 100}, {"250", 250}, {"0", 0}, {"7 millis", 7},
        {"3 milliseconds", 3}, {"10 s", 10000}, {"10s", 10000}, {"2 sec", 2000},
        {"1 second", 1000}, {"5 seconds", 5000}, {"1 min", 60000}, {"3 m", 180000},
        {"2 minutes", 120000}, {"2h", 7200000}, {"1 hour", 3600000}, {"1 d", 86400000},
        {"2 days", 172800000}, {"10 S", 10000}, {"1 MIN", 60000}, {"  50 s  ", 50000},
        {"+1 s", 1000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -1;
        ck_assert_msg(str_parse_duration_ms(cases[i].text, &v) == 0, "'%s' was refused",
                      cases[i].text);
        ck_assert_msg(v == cases[i].want, "'%s' gave %lld, want %lld", cases[i].text,
                      (long long)v, (long long)cases[i].want);
    }
}
END_TEST

START_TEST(test_parse_duration_malformed) {
    static const char *bad[] = {
        "", "   ", "abc", "ms", "10 parsecs", "10 msx", "1.5 s", "-1 s", "-5", "s 10",
        "10 s s", "9223372036854775808", "9223372036854775807 s", "200000000000 d",
        /* A valid unit followed, past the parser's unit buffer, by junk. */
        "1 s                                    x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 12345;
        ck_assert_msg(str_parse_duration_ms(bad[i], &v) == -1, "'%s' was accepted (%lld)",
                      bad[i], (long long)v);
        ck_assert_msg(v == 12345, "'%s' changed the output on failure", bad[i]);
    }
}
END_TEST

START_TEST(test_parse_duration_limits) {
    int64_t v = 0;
    ck_assert_int_eq(str_parse_duration_ms("9223372036854775807", &v), 0);
    ck_assert(v == INT64_MAX);
    ck_assert_int_eq(str_parse_duration_ms("9223372036854775 s", &v), 0);
    ck_assert(v == 9223372036854775000LL);
    ck_assert_int_eq(str_parse_duration_ms("9223372036854776 s", &v), -1);
}
END_TEST

START_TEST(test_format_duration) {
    static const struct { int64_t ms; const char *want; } cases[] = {
        {0, "0 ms"}, {1, "1 ms"}, {200, "200 ms"}, {1500, "1500 ms"}, {10000, "10 s"},
        {90000, "90 s"}, {300000, "5 min"}, {3600000, "1 h"}, {5400000, "90 min"},
        {86400000, "1 d"}, {172800000, "2 d"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        str_format_duration(cases[i].ms, buf, sizeof buf);
        ck_assert_str_eq(buf, cases[i].want);
        int64_t back = -1;
        ck_assert_int_eq(str_parse_duration_ms(buf, &back), 0);
        ck_assert_msg(back == cases[i].ms, "'%s' does not parse back to %lld", buf,
                      (long long)cases[i].ms);
    }
}
END_TEST

START_TEST(test_format_duration_small_buffer) {
    char buf[5];
    memset(buf, 'X', sizeof buf);
    str_format_duration(123456789, buf, sizeof buf);
    ck_assert_int_eq(buf[4], '\0');
    ck_assert_str_eq(buf, "1234");
}
END_TEST

/* ---- memory sizes ------------------------------------------------------------------------ */

START_TEST(test_parse_memsize_units) {
    static const parse_case cases[] = {
        {"0", 0}, {"100", 100}, {"100 b", 100}, {"7 bytes", 7}, {"32kb", 32768},
        {"32 k", 32768}, {"32 KB", 32768}, {"64 mb", 64LL << 20}, {"64m", 64LL << 20},
        {"1g", 1LL << 30}, {"2 gb", 2LL << 30}, {"1 tb", 1LL << 40}, {"3t", 3LL << 40},
        {"1 kibibytes", 1024}, {"1 mebibytes", 1LL << 20}, {" 10 MB ", 10LL << 20},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -1;
        ck_assert_msg(str_parse_memsize(cases[i].text, &v) == 0, "'%s' was refused",
                      cases[i].text);
        ck_assert_msg(v == cases[i].want, "'%s' gave %lld, want %lld", cases[i].text,
                      (long long)v, (long long)cases[i].want);
    }
}
END_TEST

START_TEST(test_parse_memsize_malformed) {
    static const char *bad[] = {
        "", "abc", "kb", "10 parsecs", "10 ms", "1.5 mb", "-1", "-64 mb", "1 kbb", "1 pb",
        "9223372036854775808", "8388608 tb", "9007199254740992 kb",
        "1 mb                                    x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 12345;
        ck_assert_msg(str_parse_memsize(bad[i], &v) == -1, "'%s' was accepted (%lld)", bad[i],
                      (long long)v);
        ck_assert_msg(v == 12345, "'%s' changed the output on failure", bad[i]);
    }
    int64_t v = 0; /* just below the overflow edge */
    ck_assert_int_eq(str_parse_memsize("8388607 tb", &v), 0);
    ck_assert(v == 8388607LL << 40);
}
END_TEST

START_TEST(test_format_memsize) {
    static const struct { int64_t bytes; const char *want; } cases[] = {
        {0, "0b"}, {1000, "1000b"}, {1024, "1kb"}, {32768, "32kb"}, {1536, "1536b"},
        {10LL << 20, "10mb"}, {1LL << 30, "1gb"}, {3LL << 40, "3tb"}, {1025LL << 20, "1025mb"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        str_format_memsize(cases[i].bytes, buf, sizeof buf);
        ck_assert_str_eq(buf, cases[i].want);
        int64_t back = -1;
        ck_assert_int_eq(str_parse_memsize(buf, &back), 0);
        ck_assert(back == cases[i].bytes);
    }
}
END_TEST

/* ---- host:port --------------------------------------------------------------------------- */

START_TEST(test_parse_hostport_valid) {
    char host[64];
    int port = 0;
    ck_assert_int_eq(str_parse_hostport("localhost:6123", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "localhost");
    ck_assert_int_eq(port, 6123);
    ck_assert_int_eq(str_parse_hostport("10.0.0.1:1", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "10.0.0.1");
    ck_assert_int_eq(port, 1);
    ck_assert_int_eq(str_parse_hostport("h:65535", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "h");
    ck_assert_int_eq(port, 65535);
    /* The port follows the last colon, so a bare IPv6 address keeps its colons. */
    ck_assert_int_eq(str_parse_hostport("::1:8081", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 8081);
}
END_TEST

START_TEST(test_parse_hostport_malformed) {
    static const char *bad[] = {"", "localhost", "localhost:", ":6123", "host:0", "host:65536",
                                "host:-1", "host:http", "host:80x", "host:99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char host[64] = "unchanged";
        int port = 7;
        ck_assert_msg(str_parse_hostport(bad[i], host, sizeof host, &port) == -1,
                      "'%s' was accepted", bad[i]);
        ck_assert_str_eq(host, "unchanged");
        ck_assert_int_eq(port, 7);
    }
}
END_TEST

START_TEST(test_parse_hostport_buffer) {
    int port = 0;
    char host[6];
    memset(host, 'X', sizeof host);
    /* "abcde" needs 6 bytes with its NUL: fits exactly. */
    ck_assert_int_eq(str_parse_hostport("abcde:80", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "abcde");
    /* One more character does not fit and must be refused, not truncated. */
    memset(host, 'X', sizeof host);
    ck_assert_int_eq(str_parse_hostport("abcdef:80", host, sizeof host, &port), -1);
    ck_assert_int_eq(host[0], 'X');
}
END_TEST

/* ---- small helpers ------------------------------------------------------------------------ */

START_TEST(test_trim) {
    char a[] = "  a b \t\n";
    ck_assert_str_eq(str_trim(a), "a b");
    ck_assert_ptr_eq(str_trim(a), a);
    char b[] = "";
    ck_assert_str_eq(str_trim(b), "");
    char c[] = " \t \n";
    ck_assert_str_eq(str_trim(c), "");
    char d[] = "x";
    ck_assert_str_eq(str_trim(d), "x");
    char e[] = "\tlead";
    ck_assert_str_eq(str_trim(e), "lead");
}
END_TEST

START_TEST(test_starts_with) {
    ck_assert(str_starts_with("rest.port", "rest."));
    ck_assert(str_starts_with("rest", ""));
    ck_assert(!str_starts_with("res", "rest"));
    ck_assert(!str_starts_with("Rest.port", "rest"));
}
END_TEST

START_TEST(test_random_hex) {
    char a[33], b[33];
    memset(a, 'Z', sizeof a);
    str_random_hex(a, 16);
    str_random_hex(b, 16);
    ck_assert_uint_eq(strlen(a), 32);
    ck_assert_uint_eq(strlen(b), 32);
    for (size_t i = 0; i < 32; i++)
        ck_assert_msg(isxdigit((unsigned char)a[i]) && !isupper((unsigned char)a[i]),
                      "not lower-case hex: %s", a);
    ck_assert_str_ne(a, b); /* 2^-128 chance of a false failure */
    char z[1] = {'Z'};
    str_random_hex(z, 0);
    ck_assert_int_eq(z[0], '\0');
}
END_TEST

/* ---- status codes and error reports --------------------------------------------------------- */

START_TEST(test_strerror) {
    ck_assert_str_eq(flint_strerror(FLINT_OK), "ok");
    ck_assert_str_eq(flint_strerror(FLINT_TIMEOUT), "timed out");
    ck_assert_str_eq(flint_strerror(FLINT_CONFIG), "configuration error");
    ck_assert_str_eq(flint_strerror(FLINT_CANCELED), "canceled");
    ck_assert_str_eq(flint_strerror(-1), "unknown status");
    ck_assert_str_eq(flint_strerror(FLINT_STATUS_COUNT_), "unknown status");
    ck_assert_str_eq(flint_strerror(1 << 30), "unknown status");
    /* Every code has its own non-empty text. */
    for (int i = 0; i < FLINT_STATUS_COUNT_; i++) {
        ck_assert_ptr_nonnull(flint_strerror(i));
        ck_assert_uint_gt(strlen(flint_strerror(i)), 0);
        for (int j = 0; j < i; j++) ck_assert_str_ne(flint_strerror(i), flint_strerror(j));
    }
}
END_TEST

START_TEST(test_err_set) {
    flint_err err = {0};
    ck_assert_int_eq(flint_err_set(&err, FLINT_CONFIG, "%s: expected %s", "rest.port", "an integer"),
                     FLINT_CONFIG);
    ck_assert_int_eq(err.code, FLINT_CONFIG);
    ck_assert_str_eq(err.msg, "rest.port: expected an integer");
    /* A NULL report is allowed: the code is still returned. */
    ck_assert_int_eq(flint_err_set(NULL, FLINT_IO, "ignored %d", 1), FLINT_IO);
}
END_TEST

START_TEST(test_err_set_truncates) {
    flint_err err;
    memset(&err, 'X', sizeof err);
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    flint_err_set(&err, FLINT_ERR, "%s", big);
    ck_assert_uint_eq(strnlen(err.msg, sizeof err.msg), sizeof err.msg - 1);
    ck_assert_int_eq(err.msg[sizeof err.msg - 1], '\0');
    ck_assert_int_eq(err.msg[0], 'a');
}
END_TEST

START_TEST(test_err_prefix) {
    flint_err err;
    flint_err_set(&err, FLINT_CONFIG, "rest.port: expected an integer");
    flint_err_prefix(&err, "%s:%d: ", "conf/flint.yaml", 3);
    ck_assert_str_eq(err.msg, "conf/flint.yaml:3: rest.port: expected an integer");
    ck_assert_int_eq(err.code, FLINT_CONFIG);
    flint_err_prefix(&err, "-D: ");
    ck_assert_str_eq(err.msg, "-D: conf/flint.yaml:3: rest.port: expected an integer");
    flint_err_prefix(NULL, "nothing %d", 1); /* no crash */
    flint_err_set(&err, FLINT_IO, "%s", "");
    flint_err_prefix(&err, "only prefix");
    ck_assert_str_eq(err.msg, "only prefix");
}
END_TEST

START_TEST(test_err_prefix_truncates_message) {
    flint_err err;
    char big[600];
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    flint_err_set(&err, FLINT_ERR, "%s", big);
    flint_err_prefix(&err, "file:1: ");
    ck_assert_uint_eq(strnlen(err.msg, sizeof err.msg), sizeof err.msg - 1);
    ck_assert(strncmp(err.msg, "file:1: mmm", 11) == 0);
    ck_assert_int_eq(err.msg[sizeof err.msg - 2], 'm');
}
END_TEST

START_TEST(test_err_prefix_truncates_prefix) {
    flint_err err;
    flint_err_set(&err, FLINT_ERR, "tail");
    char big[1500];
    memset(big, 'p', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    flint_err_prefix(&err, "%s", big);
    ck_assert_uint_eq(strnlen(err.msg, sizeof err.msg), sizeof err.msg - 1);
    for (size_t i = 0; i < sizeof err.msg - 1; i++) ck_assert_int_eq(err.msg[i], 'p');
    ck_assert_int_eq(err.code, FLINT_ERR);
}
END_TEST

/* ---- fs_mkdirs ------------------------------------------------------------------------------ */

START_TEST(test_mkdirs) {
    char root[] = "/tmp/check_util_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(root));
    char path[256], file[256];
    snprintf(path, sizeof path, "%s/a/b/c", root);
    ck_assert_int_eq(fs_mkdirs(path, 0755, NULL), 0);
    struct stat st;
    ck_assert(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
    ck_assert_int_eq(fs_mkdirs(path, 0755, NULL), 0);   /* already there */

    /* a plain file in the way: ENOTDIR, and the part that could not be made is named */
    snprintf(file, sizeof file, "%s/f", root);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    char *failed = NULL;
    ck_assert_int_eq(fs_mkdirs(file, 0755, &failed), -1);
    ck_assert_int_eq(errno, ENOTDIR);
    ck_assert_str_eq(failed, file);
    free(failed);
    snprintf(path, sizeof path, "%s/f/g/h", root);
    failed = NULL;
    ck_assert_int_eq(fs_mkdirs(path, 0755, &failed), -1);
    ck_assert_int_eq(errno, ENOTDIR);
    ck_assert_str_eq(failed, file);
    free(failed);

    unlink(file);
    snprintf(path, sizeof path, "%s/a/b/c", root); rmdir(path);
    snprintf(path, sizeof path, "%s/a/b", root); rmdir(path);
    snprintf(path, sizeof path, "%s/a", root); rmdir(path);
    ck_assert_int_eq(rmdir(root), 0);
}
END_TEST

static Suite *util_suite(void) {
    Suite *s = suite_create("util");

    TCase *tc = tcase_create("numbers");
    tcase_add_test(tc, test_parse_int_valid);
    tcase_add_test(tc, test_parse_int_malformed);
    tcase_add_test(tc, test_parse_bool);
    tcase_add_test(tc, test_parse_double);
    suite_add_tcase(s, tc);

    tc = tcase_create("duration");
    tcase_add_test(tc, test_parse_duration_units);
    tcase_add_test(tc, test_parse_duration_malformed);
    tcase_add_test(tc, test_parse_duration_limits);
    tcase_add_test(tc, test_format_duration);
    tcase_add_test(tc, test_format_duration_small_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("memsize");
    tcase_add_test(tc, test_parse_memsize_units);
    tcase_add_test(tc, test_parse_memsize_malformed);
    tcase_add_test(tc, test_format_memsize);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostport");
    tcase_add_test(tc, test_parse_hostport_valid);
    tcase_add_test(tc, test_parse_hostport_malformed);
    tcase_add_test(tc, test_parse_hostport_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("strings");
    tcase_add_test(tc, test_trim);
    tcase_add_test(tc, test_starts_with);
    tcase_add_test(tc, test_random_hex);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_add_test(tc, test_mkdirs);
    suite_add_tcase(s, tc);

    tc = tcase_create("status");
    tcase_add_test(tc, test_strerror);
    tcase_add_test(tc, test_err_set);
    tcase_add_test(tc, test_err_set_truncates);
    tcase_add_test(tc, test_err_prefix);
    tcase_add_test(tc, test_err_prefix_truncates_message);
    tcase_add_test(tc, test_err_prefix_truncates_prefix);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(util_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
