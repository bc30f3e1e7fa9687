/* SPDX-License-Identifier: MIT */
/*
 * test-alloc.c — the allocation wrapper: a failed allocation inside
 * jansson's parser is an error the caller sees (or is absorbed), never an
 * abort or a silently changed value.  Without the reserve, jansson 2.14
 * aborts here (load.c: lex_unget_unsave: Assertion `c == d' failed).
 */
#include "test-helpers.h"

#include <jansson.h>

/* Tokens longer than the 16 bytes jansson's lexer starts with, so that its
 * buffer grows in the middle of a number, a string and a literal. */
static const char doc[] = "{\"amount\": 1234567890123456789, \"name\": \"a name longer than sixteen bytes\", "
                          "\"flag\": true, \"list\": [9876543210987654, -12345678901234567]}";

static void check(json_t *j) {
        assert_int_equal(json_integer_value(json_object_get(j, "amount")), 1234567890123456789LL);
        assert_string_equal(json_string_value(json_object_get(j, "name")), "a name longer than sixteen bytes");
        assert_true(json_is_true(json_object_get(j, "flag")));
        assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "list"), 0)), 9876543210987654LL);
        assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "list"), 1)), -12345678901234567LL);
}

/* Allocation n and every later one fail, for every n: each parse either
 * fails with an error or gives exactly the document. */
static void test_json_parse_under_failed_allocations(void **state _unused_) {
        unsigned long parsed = 0;

        for (unsigned long n = 1; n < 400; n++) {
                json_error_t e;
                json_t *j;

                alloc_fail_after(n);
                j = json_loads(doc, 0, &e);
                alloc_fail_after(0);
                if (j) {
                        check(j);
                        parsed++;
                }
                json_decref(j);
        }
        assert_true(parsed > 0);

        /* Served from the reserve and given back: it is whole again. */
        for (unsigned i = 0; i < 10000; i++) {
                json_error_t e;
                json_t *j;

                alloc_fail_after(1);
                j = json_loads(doc, 0, &e);
                alloc_fail_after(0);
                assert_non_null(j);
                check(j);
                json_decref(j);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_json_parse_under_failed_allocations),
        };

        alloc_init();
        alloc_json_reserve_takes_injected(true);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
