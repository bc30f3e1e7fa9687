/* SPDX-License-Identifier: MIT */
/*
 * test-sns-payload.c — the payloads inside SNS notifications, from the
 * AWS documentation's examples (shared/vectors) and malformed variants.
 */
#include "test-helpers.h"

#include <errno.h>

#include "alloc.h"
#include "sns-payload.h"
#include "strutil.h"

static char *slurp(const char *rel) {
        char path[4096];
        FILE *f;
        long n;
        char *s;

        snprintf(path, sizeof path, "%s/%s", TEST_VECTORS, rel);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        rewind(f);
        s = malloc((size_t) n + 1);
        assert_non_null(s);
        assert_int_equal(fread(s, 1, (size_t) n, f), (size_t) n);
        s[n] = '\0';
        fclose(f);
        return s;
}

static void test_two_way_sms(void **state _unused_) {
        _cleanup_free_ char *json = slurp("sms/two-way-inbound-payload.json");
        _cleanup_(sns_payload_freep) SnsPayload *p = NULL;
        const char *reason;

        assert_int_equal(sns_payload_parse(json, 1600, 1 << 20, &p, &reason), 0);
        assert_int_equal(p->kind, SNS_PAYLOAD_SMS);
        assert_string_equal(p->origination_number, "+14255550182");
        assert_string_equal(p->destination_number, "+12125550101");
        assert_string_equal(p->keyword, "JOIN");
        assert_string_equal(p->body, "EXAMPLE");
        assert_string_equal(p->inbound_message_id, "cae173d2-66b9-564c-8309-21f858e9fb84");
        assert_string_equal(p->previous_published_message_id, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
}

static void test_ses_utf8_and_base64(void **state _unused_) {
        _cleanup_free_ char *utf8 = slurp("ses/received-sns-action-utf8.json");
        _cleanup_free_ char *b64 = slurp("ses/derived-received-sns-action-base64.json");
        _cleanup_(sns_payload_freep) SnsPayload *a = NULL, *b = NULL;
        const char *reason;

        assert_int_equal(sns_payload_parse(utf8, 1600, 1 << 20, &a, &reason), 0);
        assert_int_equal(sns_payload_parse(b64, 1600, 1 << 20, &b, &reason), 0);
        assert_int_equal(a->kind, SNS_PAYLOAD_SES);
        assert_int_equal(b->kind, SNS_PAYLOAD_SES);
        assert_string_equal(a->ses_message_id, "d6iitobk75ur44p8kdnnp7g2n800");
        assert_string_equal(a->ses_recipients[0], "recipient@example.com");
        assert_null(a->ses_recipients[1]);
        assert_int_equal(a->spf, SES_VERDICT_PASS);
        assert_int_equal(a->dkim, SES_VERDICT_PASS);
        assert_int_equal(a->dmarc, SES_VERDICT_ABSENT);
        assert_true(a->has_content);
        /* the same mail, whichever encoding carried it */
        assert_int_equal(a->content_len, b->content_len);
        assert_memory_equal(a->content, b->content, a->content_len);
        assert_non_null(strstr((const char *) a->content, "Subject: Example subject"));
}

static void test_ses_alert_without_content(void **state _unused_) {
        _cleanup_free_ char *json = slurp("ses/received-s3-action-alert.json");
        _cleanup_(sns_payload_freep) SnsPayload *p = NULL;
        const char *reason;

        assert_int_equal(sns_payload_parse(json, 1600, 1 << 20, &p, &reason), 0);
        assert_int_equal(p->kind, SNS_PAYLOAD_SES);
        assert_false(p->has_content);
}

static void test_table(void **state _unused_) {
        static const struct {
                const char *message;
                int r;
                SnsPayloadKind kind;
        } cases[] = {
                { "This is a test message.", 0, SNS_PAYLOAD_OTHER },
                { "{\"AlarmName\":\"x\"}", 0, SNS_PAYLOAD_OTHER },
                { "[1,2]", 0, SNS_PAYLOAD_OTHER },
                { "{\"notificationType\":\"Bounce\"}", 0, SNS_PAYLOAD_OTHER },
                { "{\"originationNumber\":\"+5511987654321\",\"messageBody\":\"oi\",\"inboundMessageId\":\"a\"}", 0,
                  SNS_PAYLOAD_SMS },
                /* claims to be SMS, but is not a good one */
                { "{\"originationNumber\":\"+5511987654321\",\"messageBody\":\"oi\"}", -EBADMSG, 0 },
                { "{\"originationNumber\":\"5511987654321\",\"messageBody\":\"oi\",\"inboundMessageId\":\"a\"}",
                  -EBADMSG, 0 },
                { "{\"originationNumber\":\"+5511987654321\",\"messageBody\":7,\"inboundMessageId\":\"a\"}", -EBADMSG,
                  0 },
                { "{\"originationNumber\":\"+5511987654321\",\"messageBody\":\"0123456789X\",\"inboundMessageId\":"
                  "\"a\"}",
                  -EMSGSIZE, 0 },
                { "{\"notificationType\":\"Received\"}", -EBADMSG, 0 },
                { "{\"notificationType\":\"Received\",\"mail\":{\"messageId\":\"m\"},\"receipt\":{\"action\":{"
                  "\"encoding\":\"BASE64\"}},\"content\":\"%%%%\"}",
                  -EBADMSG, 0 },
                { "{\"notificationType\":\"Received\",\"mail\":{\"messageId\":\"m\"},\"receipt\":{\"action\":{"
                  "\"encoding\":\"BASE64\"}},\"content\":\"aGVsbG8=\"}",
                  0, SNS_PAYLOAD_SES },
                { "{\"notificationType\":\"Received\",\"mail\":{\"messageId\":\"m\"},\"receipt\":{\"action\":{"
                  "\"encoding\":\"ROT13\"}},\"content\":\"x\"}",
                  -EBADMSG, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                SnsPayload *p = NULL;
                const char *reason = NULL;
                int r = sns_payload_parse(cases[i].message, 10, 1 << 20, &p, &reason);
                if (r != cases[i].r)
                        fail_msg("case %zu: got %d (%s), want %d", i, r, strempty(reason), cases[i].r);
                if (r == 0)
                        assert_int_equal(p->kind, cases[i].kind);
                else {
                        assert_null(p);
                        assert_non_null(reason);
                }
                sns_payload_free(p);
        }
}

static void test_base64_decoding(void **state _unused_) {
        _cleanup_(sns_payload_freep) SnsPayload *p = NULL;
        const char *reason;

        assert_int_equal(sns_payload_parse("{\"notificationType\":\"Received\",\"mail\":{\"messageId\":\"m\"},"
                                           "\"receipt\":{\"action\":{\"encoding\":\"BASE64\"}},"
                                           "\"content\":\"aGVs\\r\\nbG8=\"}",
                                           10, 100, &p, &reason),
                         0);
        assert_int_equal(p->content_len, 5);
        assert_memory_equal(p->content, "hello", 5);
}

static void test_oom(void **state _unused_) {
        _cleanup_free_ char *json = slurp("ses/derived-received-sns-action-base64.json");
        unsigned long n;

        for (n = 1;; n++) {
                SnsPayload *p = NULL;
                const char *reason;
                alloc_fail_after(n);
                int r = sns_payload_parse(json, 1600, 1 << 20, &p, &reason);
                alloc_fail_after(0);
                if (r == 0) {
                        /* never "not ours" because memory ran out */
                        assert_int_equal(p->kind, SNS_PAYLOAD_SES);
                        sns_payload_free(p);
                        break;
                }
                assert_int_equal(r, -ENOMEM);
        }
        assert_true(n > 5);
}

int main(void) {
        if (access(TEST_VECTORS, R_OK) < 0) {
                printf("skipped: the shared test vectors are not at %s\n", TEST_VECTORS);
                return 77; /* automake's SKIP */
        }
        alloc_init();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_two_way_sms),
                cmocka_unit_test(test_ses_utf8_and_base64),
                cmocka_unit_test(test_ses_alert_without_content),
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_base64_decoding),
                cmocka_unit_test(test_oom),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
