/* SPDX-License-Identifier: MIT */
/*
 * test-outbox-sns.c — the pure parts of the SNS and End User Messaging SMS
 * transports: the Publish form body against the shared vector byte for
 * byte, the SendTextMessage body, the reading of both services' answers one
 * row per case, endpoints, and every allocation failure of the bodies.
 */
#include "test-helpers.h"

#include "outbox-eum.h"
#include "outbox-sns.h"

/* The body of a vector: after the blank line of an .http file, the whole
 * of any other, without the final newlines. */
static char *vector_body(const char *name) {
        _cleanup_free_ char *path = mem_printf("%s/sms/%s", TEST_VECTORS, name);
        FILE *f;
        char buf[8192];
        size_t n;
        char *b, *end;

        assert_non_null(path);
        f = fopen(path, "re");
        assert_non_null(f);
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        b = buf;
        if (strstr(name, ".http")) {
                b = strstr(buf, "\n\n");
                assert_non_null(b);
                b += 2;
        }
        for (end = b + strlen(b); end > b && (end[-1] == '\n' || end[-1] == '\r'); end--)
                ;
        return strndup(b, (size_t) (end - b));
}

static void test_publish_body_matches_vector(void **state _unused_) {
        _cleanup_free_ char *want = vector_body("constructed-sns-publish-sms-request.http");
        _cleanup_free_ char *got = NULL, *all = NULL;

        assert_int_equal(
                outbox_sns_publish_body("+12065550100", "Your order 1234 has shipped.", NULL, "+18005550199", &got), 0);
        assert_string_equal(got, want);

        assert_int_equal(outbox_sns_publish_body("+1", "a&b=c+d ção", "Pizza", "", &all), 0);
        assert_string_equal(all,
                            "Action=Publish&Version=2010-03-31&PhoneNumber=%2B1&Message=a%26b%3Dc%2Bd%20%C3%A7%C3%A3o"
                            "&MessageAttributes.entry.1.Name=AWS.SNS.SMS.SMSType"
                            "&MessageAttributes.entry.1.Value.DataType=String"
                            "&MessageAttributes.entry.1.Value.StringValue=Transactional"
                            "&MessageAttributes.entry.2.Name=AWS.SNS.SMS.SenderID"
                            "&MessageAttributes.entry.2.Value.DataType=String"
                            "&MessageAttributes.entry.2.Value.StringValue=Pizza");
}

static void test_publish_body_oom(void **state _unused_) {
        for (unsigned long n = 1;; n++) {
                char *b = NULL;
                int r;

                alloc_fail_after(n);
                r = outbox_sns_publish_body("+12065550100", "hello", "S", "+18005550199", &b);
                alloc_fail_after(0);
                if (r == 0) {
                        assert_non_null(b);
                        free(b);
                        assert_true(n > 2);
                        break;
                }
                assert_int_equal(r, -ENOMEM);
                assert_null(b);
        }
}

static void test_parse_response(void **state _unused_) {
        _cleanup_free_ char *ok = vector_body("sns-publish-response.xml"), *invalid = NULL;
        const char *throttling = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code></Error>"
                                 "</ErrorResponse>";
        const char *opted_out = "<ErrorResponse><Error><Code>OptedOut</Code></Error></ErrorResponse>";
        const char *auth = "<ErrorResponse><Error><Code>AuthorizationError</Code></Error></ErrorResponse>";
        const char *sig = "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>";
        const char *evil = "<PublishResponse><MessageId>abc\n<script></MessageId></PublishResponse>";
        const char *unterminated = "<ErrorResponse><Error><Code>Throttling";
        struct {
                int status;
                const char *body;
                OutboxResult result;
                const char *id, *error;
        } rows[] = {
                { 200, NULL, OUTBOX_RESULT_OK, "94f20ce6-13c5-43a0-9a9e-ca52d816e90b", NULL },
                { 200, evil, OUTBOX_RESULT_OK, NULL, NULL }, /* accepted; the id is not kept */
                { 200, "", OUTBOX_RESULT_OK, NULL, NULL },
                { 400, NULL, OUTBOX_RESULT_PERMFAIL, NULL, "sns: HTTP 400 InvalidParameter" },
                { 400, throttling, OUTBOX_RESULT_TEMPFAIL, NULL, "sns: HTTP 400 Throttling" },
                { 400, opted_out, OUTBOX_RESULT_PERMFAIL, NULL, "sns: HTTP 400 OptedOut" },
                { 403, auth, OUTBOX_RESULT_PERMFAIL, NULL, "sns: HTTP 403 AuthorizationError" },
                { 403, sig, OUTBOX_RESULT_TEMPFAIL, NULL, "sns: HTTP 403 SignatureDoesNotMatch" },
                { 400, unterminated, OUTBOX_RESULT_PERMFAIL, NULL, "sns: HTTP 400" },
                { 400, "", OUTBOX_RESULT_PERMFAIL, NULL, "sns: HTTP 400" },
                { 429, "", OUTBOX_RESULT_TEMPFAIL, NULL, "sns: HTTP 429" },
                { 500, "<Code>InternalError</Code>", OUTBOX_RESULT_TEMPFAIL, NULL, "sns: HTTP 500 InternalError" },
                { 503, "", OUTBOX_RESULT_TEMPFAIL, NULL, "sns: HTTP 503" },
                { -ECONNREFUSED, "", OUTBOX_RESULT_TEMPFAIL, NULL, "sns: Connection refused" },
                { -ETIMEDOUT, "", OUTBOX_RESULT_TEMPFAIL, NULL, "sns: Connection timed out" },
        };

        invalid = vector_body("constructed-sns-error-response.http");
        rows[0].body = ok;
        rows[3].body = invalid;
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_free_ char *id = NULL, *error = NULL;
                OutboxResult r;

                r = outbox_sns_parse_response(rows[i].status, rows[i].body, strlen(rows[i].body), &id, &error);
                print_message("row %zu\n", i);
                assert_int_equal(r, rows[i].result);
                if (rows[i].id)
                        assert_string_equal(id, rows[i].id);
                else
                        assert_null(id);
                if (rows[i].error)
                        assert_string_equal(error, rows[i].error);
                else
                        assert_null(error);
        }
}

static void test_new_endpoints(void **state _unused_) {
        static const struct {
                const char *endpoint;
                int r;
        } rows[] = {
                { NULL, 0 },
                { "", 0 },
                { "https://sns.sa-east-1.amazonaws.com/", 0 },
                { "http://127.0.0.1:8080/", 0 },
                { "https://vpce-0123.sns.us-east-1.vpce.amazonaws.com", 0 },
                { "ftp://sns.example/", -EINVAL },
                { "http:///", -EINVAL },
                { "https://user@sns.example/", -EINVAL },
                { "https://sns.example/?Action=Publish", -EINVAL },
                { "sns.us-east-1.amazonaws.com", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                OutboxSns *s = NULL;
                const OutboxSnsOptions o = { .endpoint = rows[i].endpoint, .region = "sa-east-1" };

                print_message("row %zu\n", i);
                assert_int_equal(outbox_sns_new(&o, &s), rows[i].r);
                assert_true((s != NULL) == (rows[i].r == 0));
                outbox_sns_free(s);
        }
}

static void test_eum_body(void **state _unused_) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        char *c = NULL;

        assert_int_equal(outbox_eum_request_body("+12065550100", "Your order \"1234\"\n", "+18005550199", &a), 0);
        assert_string_equal(a,
                            "{\"DestinationPhoneNumber\":\"+12065550100\",\"MessageBody\":\"Your order "
                            "\\\"1234\\\"\\n\",\"MessageType\":\"TRANSACTIONAL\","
                            "\"OriginationIdentity\":\"+18005550199\"}");
        assert_int_equal(outbox_eum_request_body("+1", "x", "", &b), 0);
        assert_string_equal(b,
                            "{\"DestinationPhoneNumber\":\"+1\",\"MessageBody\":\"x\",\"MessageType\":"
                            "\"TRANSACTIONAL\"}");
        assert_int_equal(outbox_eum_request_body("+1", "\xff", NULL, &c), -EINVAL);
        assert_null(c);
}

static void test_eum_parse_response(void **state _unused_) {
        _cleanup_free_ char *ok = vector_body("constructed-sendtextmessage-response.json");
        _cleanup_free_ char *invalid = vector_body("constructed-sendtextmessage-validation-error.http");
        struct {
                int status;
                const char *body;
                OutboxResult result;
                const char *id, *error;
        } rows[] = {
                { 200, NULL, OUTBOX_RESULT_OK, "00000000-0000-0000-0000-000000000000", NULL },
                { 200, "{\"MessageId\":\"a b\"}", OUTBOX_RESULT_OK, NULL, NULL },
                { 200, "not json", OUTBOX_RESULT_OK, NULL, NULL },
                { 400, NULL, OUTBOX_RESULT_PERMFAIL, NULL, "eum: HTTP 400 ValidationException" },
                { 400, "{\"__type\":\"ThrottlingException\"}", OUTBOX_RESULT_TEMPFAIL, NULL,
                  "eum: HTTP 400 ThrottlingException" },
                { 400, "{\"__type\":\"com.amazonaws.x#ThrottlingException\"}", OUTBOX_RESULT_TEMPFAIL, NULL,
                  "eum: HTTP 400 ThrottlingException" },
                { 403, "{\"__type\":\"AccessDeniedException\"}", OUTBOX_RESULT_PERMFAIL, NULL,
                  "eum: HTTP 403 AccessDeniedException" },
                { 400, "{\"__type\":\"bad\\nvalue\"}", OUTBOX_RESULT_PERMFAIL, NULL, "eum: HTTP 400" },
                { 400, "{\"__type\":\"x#\"}", OUTBOX_RESULT_PERMFAIL, NULL, "eum: HTTP 400" },
                { 500, "", OUTBOX_RESULT_TEMPFAIL, NULL, "eum: HTTP 500" },
                { -ECONNRESET, "", OUTBOX_RESULT_TEMPFAIL, NULL, "eum: Connection reset by peer" },
        };

        rows[0].body = ok;
        rows[3].body = invalid;
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_free_ char *id = NULL, *error = NULL;
                OutboxResult r;

                print_message("row %zu\n", i);
                r = outbox_eum_parse_response(rows[i].status, rows[i].body, strlen(rows[i].body), &id, &error);
                assert_int_equal(r, rows[i].result);
                if (rows[i].id)
                        assert_string_equal(id, rows[i].id);
                else
                        assert_null(id);
                if (rows[i].error)
                        assert_string_equal(error, rows[i].error);
                else
                        assert_null(error);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_publish_body_matches_vector),
                cmocka_unit_test(test_publish_body_oom),
                cmocka_unit_test(test_parse_response),
                cmocka_unit_test(test_new_endpoints),
                cmocka_unit_test(test_eum_body),
                cmocka_unit_test(test_eum_parse_response),
        };
        /* The vectors live beside the repository; without them this is
         * skipped (automake's 77), not failed. */
        if (access(TEST_VECTORS, R_OK) != 0) {
                print_message("%s not found: skipped\n", TEST_VECTORS);
                return 77;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
