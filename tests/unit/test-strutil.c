/* SPDX-License-Identifier: MIT */
/*
 * test-strutil.c — table tests of the strict value parsers.
 */
#include "test-helpers.h"

#include <errno.h>
#include <stdint.h>

#include "strutil.h"

typedef struct {
        const char *in;
        int r;
        uint64_t v;
} Case;

static void test_parse_uint64(void **state _unused_) {
        static const Case cases[] = {
                { "0", 0, 0 },
                { "42", 0, 42 },
                { "18446744073709551615", 0, UINT64_MAX },
                { "18446744073709551616", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "+1", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "0x10", -EINVAL, 0 },
                { "12a", -EINVAL, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 12345;
                int r = parse_uint64(cases[i].in, &v);
                assert_int_equal(r, cases[i].r);
                assert_int_equal(v, r == 0 ? cases[i].v : 12345);
        }
}

static void test_parse_duration(void **state _unused_) {
        static const Case cases[] = {
                { "10s", 0, 10 * USEC_PER_SEC },
                { "10", 0, 10 * USEC_PER_SEC },
                { "500ms", 0, 500 * USEC_PER_MSEC },
                { "15min", 0, 900 * USEC_PER_SEC },
                { "1min 30s", 0, 90 * USEC_PER_SEC },
                { "2h", 0, 7200 * USEC_PER_SEC },
                { "1d", 0, 86400 * USEC_PER_SEC },
                { "7us", 0, 7 },
                { "5 s", 0, 5 * USEC_PER_SEC },
                { "", -EINVAL, 0 },
                { "s", -EINVAL, 0 },
                { "10 parsecs", -EINVAL, 0 },
                { "-5s", -EINVAL, 0 },
                { "1.5s", -EINVAL, 0 },
                { "99999999999999999999s", -ERANGE, 0 },
                { "9999999999999999d", -ERANGE, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 0;
                int r = parse_duration_usec(cases[i].in, &v);
                assert_int_equal(r, cases[i].r);
                if (r == 0)
                        assert_int_equal(v, cases[i].v);
        }
}

static void test_parse_size(void **state _unused_) {
        static const Case cases[] = {
                { "0", 0, 0 },
                { "512", 0, 512 },
                { "512B", 0, 512 },
                { "1K", 0, 1024 },
                { "256K", 0, 262144 },
                { "256KiB", 0, 262144 },
                { "1M", 0, 1048576 },
                { "2 MiB", 0, 2097152 },
                { "1G", 0, 1073741824 },
                { "1T", -EINVAL, 0 },
                { "K", -EINVAL, 0 },
                { "1KK", -EINVAL, 0 },
                { "-1K", -EINVAL, 0 },
                { "99999999999999999999", -ERANGE, 0 },
                { "17179869184G", -ERANGE, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 0;
                int r = parse_size(cases[i].in, &v);
                assert_int_equal(r, cases[i].r);
                if (r == 0)
                        assert_int_equal(v, cases[i].v);
        }
}

static void test_parse_cents(void **state _unused_) {
        static const struct {
                const char *in;
                int r;
                int64_t v;
        } cases[] = {
                { "49.90", 0, 4990 },   { "49,90", 0, 4990 },    { "50", 0, 5000 },       { "9.5", 0, 950 },
                { "0.01", 0, 1 },       { "1.234", -EINVAL, 0 }, { "1.", -EINVAL, 0 },    { ".5", -EINVAL, 0 },
                { "R$ 5", -EINVAL, 0 }, { "", -EINVAL, 0 },      { "-1.00", -EINVAL, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int64_t v = 0;
                int r = parse_cents(cases[i].in, &v);
                assert_int_equal(r, cases[i].r);
                if (r == 0)
                        assert_int_equal(v, cases[i].v);
        }
}

static void test_parse_boolean(void **state _unused_) {
        bool b;
        assert_int_equal(parse_boolean("yes", &b), 0);
        assert_true(b);
        assert_int_equal(parse_boolean("OFF", &b), 0);
        assert_false(b);
        assert_int_equal(parse_boolean("maybe", &b), -EINVAL);
        assert_int_equal(parse_boolean("", &b), -EINVAL);
}

static void test_strv(void **state _unused_) {
        _cleanup_strv_free_ char **l = strv_split_ws("  a bb\tccc  ");
        _cleanup_free_ char *j = NULL;

        assert_non_null(l);
        assert_int_equal(strv_length(l), 3);
        assert_string_equal(l[1], "bb");
        j = strv_join(l, ",");
        assert_string_equal(j, "a,bb,ccc");
        assert_true(strv_contains(l, "ccc"));
        assert_false(strv_contains(l, "c"));

        _cleanup_strv_free_ char **e = strv_split_ws("   ");
        assert_int_equal(strv_length(e), 0);
}

static void test_paths(void **state _unused_) {
        _cleanup_free_ char *a = path_join_relative("/etc/deliveryd", "catalog.conf");
        _cleanup_free_ char *b = path_join_relative("/etc/deliveryd/", "/abs/x");
        _cleanup_free_ char *c = path_dirname("x.conf");
        _cleanup_free_ char *d = path_dirname("/x.conf");
        _cleanup_free_ char *e = path_dirname("a/b/x.conf");

        assert_string_equal(a, "/etc/deliveryd/catalog.conf");
        assert_string_equal(b, "/abs/x");
        assert_string_equal(c, ".");
        assert_string_equal(d, "/");
        assert_string_equal(e, "a/b");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_uint64),  cmocka_unit_test(test_parse_duration),
                cmocka_unit_test(test_parse_size),    cmocka_unit_test(test_parse_cents),
                cmocka_unit_test(test_parse_boolean), cmocka_unit_test(test_strv),
                cmocka_unit_test(test_paths),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
