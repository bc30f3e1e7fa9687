/* SPDX-License-Identifier: MIT */
/*
 * test-sns-oom.c — a real SNS notification verified while OpenSSL's own
 * allocations fail one after the other: each attempt must end in -ENOMEM
 * (the webhook answers 5xx and SNS delivers again) or in the right
 * answer, never in "bad signature" or "bad certificate" (403, which SNS
 * does not retry: a message lost).  OpenSSL allocates through mem_*
 * (alloc_init()); a binary of its own, because OpenSSL takes an allocator
 * only before its first allocation.
 */
#include "test-helpers.h"

#include "sns.h"

#define CHECK_TIME_2022 (UINT64_C(1659049200) * USEC_PER_SEC)
#define REAL_CERT TEST_VECTORS "/sns/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"

static char *slurp(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        long n;

        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
            (buf = malloc((size_t) n + 1)) && fread(buf, 1, (size_t) n, f) == (size_t) n) {
                buf[n] = 0;
                *ret_len = (size_t) n;
        } else {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        return buf;
}

static void test_openssl_oom_is_never_a_forgery(void **state _unused_) {
        size_t body_len = 0, pem_len = 0;
        _cleanup_free_ char *body = slurp(TEST_VECTORS "/sns/notification-v2-2.json", &body_len);
        _cleanup_free_ char *pem = slurp(REAL_CERT, &pem_len);
        _cleanup_(sns_message_freep) SnsMessage *m = NULL;
        unsigned long n, failed = 0;

        if (!body || !pem) {
                print_message("shared vectors missing: skipped\n");
                skip();
        }
        assert_int_equal(sns_message_parse(body, body_len, &m, NULL), 0);
        /* Once as the daemon has it at start: OpenSSL initialised (an
         * initialisation that fails is not retried by OpenSSL, and every
         * later call fails too, which is -ENOMEM here as well). */
        SnsVerifyResult first = _SNS_VERIFY_RESULT_INVALID;
        assert_int_equal(sns_message_verify(m, pem, pem_len, 1, CHECK_TIME_2022, &first), 0);
        assert_int_equal(first, SNS_VERIFY_OK);
        for (n = 1; n < 100000; n++) {
                SnsVerifyResult v = _SNS_VERIFY_RESULT_INVALID;
                alloc_fail_after(n);
                int r = sns_message_verify(m, pem, pem_len, 1, CHECK_TIME_2022, &v);
                unsigned long used = alloc_count();
                alloc_fail_after(0);
                if (r == -ENOMEM) {
                        failed++;
                        if (used < n)
                                fail_msg("-ENOMEM with no allocation failed (%lu of %lu)", used, n);
                        continue;
                }
                assert_int_equal(r, 0);
                if (v != SNS_VERIFY_OK)
                        fail_msg("allocation %lu (of %lu) failing gave '%s', not -ENOMEM", n, used,
                                 sns_verify_result_to_string(v));
                if (used < n)
                        break; /* no allocation was failed: done */
        }
        print_message("OpenSSL allocations failed in turn: %lu, each answered -ENOMEM\n", failed);
        assert_true(failed > 10);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_openssl_oom_is_never_a_forgery),
        };
        alloc_init(); /* before anything in OpenSSL allocates */
        return cmocka_run_group_tests(tests, NULL, NULL);
}
