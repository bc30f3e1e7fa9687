/* SPDX-License-Identifier: MIT */
/*
 * test-sns.c — SNS envelopes: the four real signed AWS messages (and the
 * Lambda spelling) verify at a fixed time with the real certificate; every
 * derived negative case fails with the right outcome; the string to sign
 * matches AWS's byte for byte; URL checks, raw delivery, parse errors, the
 * certificate cache, allocation failures; and a message signed here with a
 * fresh key (tests/integration/sns_sign.py) verifies at the present time.
 */
#include "test-helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "sns.h"

#define SNS_DIR TEST_VECTORS "/sns"
#define REAL_CERT SNS_DIR "/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
#define REAL_CERT_URL                                                                                                  \
        "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
#define SIGN_PY TEST_SRCDIR "/tests/integration/sns_sign.py"
#define TEST_CERT_URL "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-deliveryd-test.pem"

/* 2022-07-28T23:00:00Z: the real certificate was valid then. */
#define CHECK_TIME_2022 (UINT64_C(1659049200) * USEC_PER_SEC)

static bool have_data;

static int setup(void **state _unused_) {
        test_dir = make_tmpdir();
        return 0;
}

static int teardown(void **state _unused_) {
        rm_rf(test_dir);
        free(test_dir);
        return 0;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts), 0);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* The shared vectors live beside the repository and the signing script in
 * tests/integration; a tree without them (a release tarball) runs only the
 * tests below that need neither, and reports the program as skipped. */
static void need_vectors(void) {
        if (!have_data)
                skip();
}

static char *read_all(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t len = 0;

        if (!f)
                fail_msg("cannot open %s: %m", path);
        for (;;) {
                buf = realloc(buf, len + 4096 + 1);
                assert_non_null(buf);
                size_t n = fread(buf + len, 1, 4096, f);
                len += n;
                if (n == 0)
                        break;
        }
        fclose(f);
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        return buf;
}

static char *vector(const char *name, size_t *ret_len) {
        char path[4096];

        snprintf(path, sizeof path, "%s/%s", TEST_VECTORS, name);
        return read_all(path, ret_len);
}

/* Run argv with stdin from in_path and stdout to out_path (either may be
 * NULL); returns the exit status. */
static int run(char *const argv[], const char *in_path, const char *out_path) {
        int status;
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                if (in_path) {
                        int fd = open(in_path, O_RDONLY | O_CLOEXEC);
                        if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
                                _exit(126);
                }
                if (out_path) {
                        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
                                _exit(126);
                }
                execvp(argv[0], argv);
                _exit(127);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static SnsMessage *parse_ok(const char *body, size_t len) {
        SnsMessage *m = NULL;
        const char *reason = NULL;
        int r = sns_message_parse(body, len, &m, &reason);

        if (r < 0)
                fail_msg("parse failed: %s (%s)", strerror(-r), reason);
        assert_non_null(m);
        return m;
}

static SnsVerifyResult verify_with(const SnsMessage *m, const char *cert_path, unsigned min_version, uint64_t when) {
        _cleanup_free_ char *pem = NULL;
        SnsVerifyResult v = _SNS_VERIFY_RESULT_INVALID;
        size_t len;

        pem = read_all(cert_path, &len);
        assert_int_equal(sns_message_verify(m, pem, len, min_version, when, &v), 0);
        return v;
}

static SnsVerifyResult verify_file(const char *name, unsigned min_version, uint64_t when) {
        _cleanup_free_ char *body = NULL;
        _cleanup_(sns_message_freep) SnsMessage *m = NULL;
        size_t len;

        body = vector(name, &len);
        m = parse_ok(body, len);
        return verify_with(m, REAL_CERT, min_version, when);
}

static void assert_outcome(const char *what, SnsVerifyResult got, SnsVerifyResult want) {
        if (got != want)
                fail_msg("%s: got %s, want %s", what, sns_verify_result_to_string(got),
                         sns_verify_result_to_string(want));
}

static void test_real_messages(void **state _unused_) {
        static const struct {
                const char *file;
                unsigned min_version;
                SnsVerifyResult want;
        } cases[] = {
                { "sns/notification-v1-1.json", 1, SNS_VERIFY_OK },
                { "sns/notification-v2-2.json", 1, SNS_VERIFY_OK },
                { "sns/notification-v1-subject-3.json", 1, SNS_VERIFY_OK },
                { "sns/notification-v2-subject-4.json", 1, SNS_VERIFY_OK },
                { "sns/lambda-style-v1-null-subject.json", 1, SNS_VERIFY_OK },
                { "sns/notification-v1-1.json", 0, SNS_VERIFY_OK }, /* 0 means the default, 1 */
                /* sns.min_signature_version = 2 refuses SHA1withRSA */
                { "sns/notification-v1-1.json", 2, SNS_VERIFY_UNSUPPORTED_VERSION },
                { "sns/notification-v1-subject-3.json", 2, SNS_VERIFY_UNSUPPORTED_VERSION },
                { "sns/lambda-style-v1-null-subject.json", 2, SNS_VERIFY_UNSUPPORTED_VERSION },
                { "sns/notification-v2-2.json", 2, SNS_VERIFY_OK },
                { "sns/notification-v2-subject-4.json", 2, SNS_VERIFY_OK },
        };

        need_vectors();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_outcome(cases[i].file, verify_file(cases[i].file, cases[i].min_version, CHECK_TIME_2022),
                               cases[i].want);
}

static void test_negative_dir(void **state _unused_) {
        /* Every file in negative/ has a row here, so that a new one cannot
         * be forgotten. */
        static const struct {
                const char *file;
                SnsVerifyResult want;
        } cases[] = {
                { "notification-v1-1.tampered-message.json", SNS_VERIFY_BAD_SIGNATURE },
                { "notification-v1-1.wrong-signature-version.json", SNS_VERIFY_BAD_SIGNATURE },
                { "notification-v2-subject-4.subject-removed.json", SNS_VERIFY_BAD_SIGNATURE },
                { "signing-cert-url-cases.json", _SNS_VERIFY_RESULT_INVALID }, /* test_cert_url_vectors */
        };
        DIR *d;
        struct dirent *de;
        unsigned seen = 0;

        need_vectors();
        d = opendir(SNS_DIR "/negative");
        assert_non_null(d);
        while ((de = readdir(d))) {
                size_t i;
                char name[512];

                if (de->d_name[0] == '.')
                        continue;
                for (i = 0; i < ELEMENTSOF(cases); i++)
                        if (streq(cases[i].file, de->d_name))
                                break;
                if (i == ELEMENTSOF(cases))
                        fail_msg("negative/%s has no row in this test", de->d_name);
                seen++;
                if (cases[i].want < 0)
                        continue;
                snprintf(name, sizeof name, "sns/negative/%s", de->d_name);
                assert_outcome(name, verify_file(name, 1, CHECK_TIME_2022), cases[i].want);
        }
        closedir(d);
        assert_int_equal(seen, ELEMENTSOF(cases));
}

static void test_cert_validity(void **state _unused_) {
        need_vectors();
        /* The real certificate expired on 2022-08-17. */
        assert_outcome("now", verify_file("sns/notification-v2-2.json", 1, now_usec()), SNS_VERIFY_CERT_EXPIRED);
        assert_outcome("notAfter", verify_file("sns/notification-v2-2.json", 1, UINT64_C(1660780799) * USEC_PER_SEC),
                       SNS_VERIFY_CERT_EXPIRED);
        assert_outcome("before notAfter",
                       verify_file("sns/notification-v2-2.json", 1, UINT64_C(1660780798) * USEC_PER_SEC),
                       SNS_VERIFY_OK);
        /* … and became valid on 2021-09-07. */
        assert_outcome("2021-01-01", verify_file("sns/notification-v2-2.json", 1, UINT64_C(1609459200) * USEC_PER_SEC),
                       SNS_VERIFY_CERT_NOT_YET_VALID);
}

/* Parse body, replace one field with value (or drop it when value is
 * NULL) and return the new body. */
static char *edit_json(const char *body, const char *key, const char *value) {
        json_t *j = json_loads(body, 0, NULL);
        char *out;

        assert_non_null(j);
        if (value)
                assert_int_equal(json_object_set_new(j, key, json_string(value)), 0);
        else
                (void) json_object_del(j, key);
        out = mem_json_dumps(j, JSON_COMPACT);
        json_decref(j);
        assert_non_null(out);
        return out;
}

static void test_verify_outcomes(void **state _unused_) {
        static const struct {
                const char *key, *value;
                SnsVerifyResult want;
        } cases[] = {
                { "SignatureVersion", "3", SNS_VERIFY_UNKNOWN_VERSION },
                { "SignatureVersion", "", SNS_VERIFY_UNKNOWN_VERSION },
                { "SignatureVersion", "02", SNS_VERIFY_UNKNOWN_VERSION },
                { "Signature", "UNSIGNED-CONSTRUCTED-EXAMPLE", SNS_VERIFY_MALFORMED_SIGNATURE },
                { "Signature", "AAAA=AAA", SNS_VERIFY_MALFORMED_SIGNATURE },
                { "Signature", "AAA", SNS_VERIFY_MALFORMED_SIGNATURE },
                { "Signature", "AAAA", SNS_VERIFY_BAD_SIGNATURE },
                { "SigningCertURL", "https://sns.us-east-2.amazonaws.com.evil.example/x.pem", SNS_VERIFY_BAD_CERT_URL },
                { "SigningCertURL", "http://sns.us-east-2.amazonaws.com/x.pem", SNS_VERIFY_BAD_CERT_URL },
                { "Message", "Hello world.", SNS_VERIFY_BAD_SIGNATURE },
                { "MessageId", "792cda85-518f-5dd3-9163-81d851212f3b", SNS_VERIFY_BAD_SIGNATURE },
                { "Subject", "Hello world", SNS_VERIFY_BAD_SIGNATURE }, /* added */
                { "Timestamp", "2022-07-28T21:23:58.318Z", SNS_VERIFY_BAD_SIGNATURE },
                { "UnsubscribeURL", "https://sns.us-east-2.amazonaws.com/?other", SNS_VERIFY_OK }, /* not signed */
        };
        _cleanup_free_ char *orig = NULL;

        need_vectors();
        orig = vector("sns/notification-v1-1.json", NULL);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *body = edit_json(orig, cases[i].key, cases[i].value);
                _cleanup_(sns_message_freep) SnsMessage *m = parse_ok(body, strlen(body));
                char what[256];

                snprintf(what, sizeof what, "%s=%s", cases[i].key, cases[i].value);
                assert_outcome(what, verify_with(m, REAL_CERT, 1, CHECK_TIME_2022), cases[i].want);
        }

        /* A certificate that is not one. */
        _cleanup_(sns_message_freep) SnsMessage *m = parse_ok(orig, strlen(orig));
        static const char *const bad_pems[] = {
                "",
                "not a certificate",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_pems); i++) {
                SnsVerifyResult v;
                assert_int_equal(sns_message_verify(m, bad_pems[i], strlen(bad_pems[i]), 1, CHECK_TIME_2022, &v), 0);
                assert_outcome(bad_pems[i], v, SNS_VERIFY_BAD_CERT);
        }
}

static void test_string_to_sign(void **state _unused_) {
        static const struct {
                const char *json, *want;
        } cases[] = {
                { "sns/notification-v1-1.json", "sns/notification-v1-1.string-to-sign.txt" },
                { "sns/notification-v2-2.json", "sns/notification-v2-2.string-to-sign.txt" },
                { "sns/notification-v1-subject-3.json", "sns/notification-v1-subject-3.string-to-sign.txt" },
                { "sns/notification-v2-subject-4.json", "sns/notification-v2-subject-4.string-to-sign.txt" },
                /* "Subject": null is left out */
                { "sns/lambda-style-v1-null-subject.json", "sns/notification-v1-1.string-to-sign.txt" },
        };

        need_vectors();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *body = NULL, *want = NULL, *got = NULL;
                _cleanup_(sns_message_freep) SnsMessage *m = NULL;
                size_t len, want_len, got_len;

                body = vector(cases[i].json, &len);
                want = vector(cases[i].want, &want_len);
                m = parse_ok(body, len);
                assert_int_equal(sns_message_string_to_sign(m, &got, &got_len), 0);
                assert_int_equal(got_len, want_len);
                assert_int_equal(strlen(got), got_len);
                if (memcmp(got, want, want_len) != 0)
                        fail_msg("%s: got\n%s\nwant\n%s", cases[i].json, got, want);
        }
}

/* The two examples on the AWS "verify signature" page, as messages. */
static void test_string_to_sign_docs(void **state _unused_) {
        static const struct {
                const char *json, *want;
        } cases[] = {
                { "{\"Type\":\"Notification\",\"MessageId\":\"4d4dc071-ddbf-465d-bba8-08f81c89da64\","
                  "\"TopicArn\":\"arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\","
                  "\"Subject\":\"My subject\",\"Message\":\"My Test Message\","
                  "\"Timestamp\":\"2019-01-31T04:37:04.321Z\",\"SignatureVersion\":\"1\",\"Signature\":\"AAAA\","
                  "\"SigningCertURL\":\"https://sns.us-east-2.amazonaws.com/SimpleNotificationService-x.pem\","
                  "\"UnsubscribeURL\":\"https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe\"}",
                  "sns/docs-string-to-sign-notification-example.txt" },
                { "{\"Type\":\"SubscriptionConfirmation\",\"MessageId\":\"3d891288-136d-417f-bc05-901c108273ee\","
                  "\"Token\":\"233...\","
                  "\"TopicArn\":\"arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\","
                  "\"Message\":\"My Test Message\",\"SubscribeURL\":\"https://sns.us-east-2.amazonaws.com/"
                  "?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-"
                  "1G1WEFCOXTC0P&Token=233...\",\"Timestamp\":\"2019-01-31T19:25:13.719Z\","
                  "\"SignatureVersion\":\"1\",\"Signature\":\"AAAA\","
                  "\"SigningCertURL\":\"https://sns.us-east-2.amazonaws.com/SimpleNotificationService-x.pem\"}",
                  "sns/docs-string-to-sign-subscriptionconfirmation-example.txt" },
        };

        need_vectors();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *want = NULL, *got = NULL;
                _cleanup_(sns_message_freep) SnsMessage *m = parse_ok(cases[i].json, strlen(cases[i].json));

                want = vector(cases[i].want, NULL);
                assert_int_equal(sns_message_string_to_sign(m, &got, NULL), 0);
                assert_string_equal(got, want);
        }
}

/* The documentation's HTTP examples: headers, a blank line, the body. */
static void test_docs_http(void **state _unused_) {
        static const struct {
                const char *file;
                SnsMessageType type;
                const char *string_to_sign_prefix;
        } cases[] = {
                { "sns/docs-notification.http", SNS_MESSAGE_NOTIFICATION,
                  "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nMy First "
                  "Message\n" },
                { "sns/docs-subscription-confirmation.http", SNS_MESSAGE_SUBSCRIPTION_CONFIRMATION,
                  "Message\nYou have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\n"
                  "To confirm the subscription, visit the SubscribeURL included in this message.\nMessageId\n" },
                { "sns/docs-unsubscribe-confirmation.http", SNS_MESSAGE_UNSUBSCRIBE_CONFIRMATION,
                  "Message\nYou have chosen to deactivate subscription" },
        };

        need_vectors();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *http = vector(cases[i].file, NULL), *sts = NULL;
                _cleanup_(sns_message_freep) SnsMessage *m = NULL;
                const char *body = strstr(http, "\n\n");
                const char *url;

                assert_non_null(body);
                m = parse_ok(body + 2, strlen(body + 2));
                assert_int_equal(sns_message_get_type(m), cases[i].type);
                assert_int_equal(sns_message_string_to_sign(m, &sts, NULL), 0);
                if (strncmp(sts, cases[i].string_to_sign_prefix, strlen(cases[i].string_to_sign_prefix)) != 0)
                        fail_msg("%s: string to sign\n%s", cases[i].file, sts);
                assert_int_equal(sns_signing_cert_url_check(sns_message_get(m, SNS_FIELD_SIGNING_CERT_URL), NULL), 0);
                url = sns_message_get(m, SNS_FIELD_SUBSCRIBE_URL);
                if (cases[i].type == SNS_MESSAGE_NOTIFICATION) {
                        assert_null(url);
                        assert_null(sns_message_get(m, SNS_FIELD_TOKEN));
                        assert_non_null(strstr(sts, "\nType\nNotification\n"));
                        assert_null(strstr(sts, "SubscribeURL"));
                } else {
                        assert_int_equal(sns_subscribe_url_check(url, NULL), 0);
                        assert_non_null(strstr(sts, "\nSubscribeURL\nhttps://sns.us-west-2.amazonaws.com/"));
                        assert_non_null(strstr(sts, "\nToken\n2336412f37"));
                        assert_null(strstr(sts, "Subject"));
                }
        }
}

static void test_fields(void **state _unused_) {
        _cleanup_free_ char *body = NULL;
        _cleanup_(sns_message_freep) SnsMessage *m = NULL, *l = NULL;

        need_vectors();
        body = vector("sns/notification-v2-subject-4.json", NULL);
        m = parse_ok(body, strlen(body));
        assert_int_equal(sns_message_get_type(m), SNS_MESSAGE_NOTIFICATION);
        assert_string_equal(sns_message_get(m, SNS_FIELD_MESSAGE_ID), "4504e649-d933-5aa9-8199-bd14ccf05f0b");
        assert_string_equal(
                sns_message_get(m, SNS_FIELD_TOPIC_ARN),
                "arn:aws:sns:us-east-2:295079676684:publish-and-verify-530b26da-0687-4fe4-9f71-780bad3181e2");
        assert_string_equal(sns_message_get(m, SNS_FIELD_SUBJECT), "Hello world");
        assert_string_equal(sns_message_get(m, SNS_FIELD_MESSAGE), "Hello world");
        assert_string_equal(sns_message_get(m, SNS_FIELD_SIGNATURE_VERSION), "2");
        assert_string_equal(sns_message_get(m, SNS_FIELD_SIGNING_CERT_URL), REAL_CERT_URL);
        assert_non_null(sns_message_get(m, SNS_FIELD_UNSUBSCRIBE_URL));
        assert_null(sns_message_get(m, SNS_FIELD_TOKEN));
        assert_null(sns_message_get(m, _SNS_FIELD_MAX));
        /* 2022-07-28T22:53:55.086Z */
        assert_true(sns_message_get_timestamp(m) == UINT64_C(1659048835086000));

        /* Lambda spelling: the same fields under the HTTP names. */
        free(body);
        body = vector("sns/lambda-style-v1-null-subject.json", NULL);
        l = parse_ok(body, strlen(body));
        assert_string_equal(sns_message_get(l, SNS_FIELD_SIGNING_CERT_URL), REAL_CERT_URL);
        assert_non_null(strstr(sns_message_get(l, SNS_FIELD_UNSUBSCRIBE_URL), "Action=Unsubscribe"));
        assert_null(sns_message_get(l, SNS_FIELD_SUBJECT));

        for (SnsField f = 0; f < _SNS_FIELD_MAX; f++)
                assert_non_null(sns_field_to_string(f));
        assert_string_equal(sns_field_to_string(SNS_FIELD_SIGNING_CERT_URL), "SigningCertURL");
        for (SnsMessageType t = 0; t < _SNS_MESSAGE_TYPE_MAX; t++)
                assert_int_equal(sns_message_type_from_string(sns_message_type_to_string(t)), t);
        assert_int_equal(sns_message_type_from_string("notification"), _SNS_MESSAGE_TYPE_INVALID);
        for (SnsVerifyResult v = 0; v < _SNS_VERIFY_RESULT_MAX; v++)
                assert_int_equal(sns_verify_result_from_string(sns_verify_result_to_string(v)), v);
        assert_string_equal(sns_verify_result_to_string(SNS_VERIFY_CERT_EXPIRED), "cert-expired");
        assert_null(sns_verify_result_to_string(_SNS_VERIFY_RESULT_MAX));
}

static void test_raw_delivery(void **state _unused_) {
        static const char *const bodies[] = {
                "This is a test message.", /* the docs' raw-delivery body */
                "",
                "   \n",
                "[1, 2]",
                "\"a string\"",
                "42",
                "{}",
                "{\"originationNumber\":\"+14255550182\",\"messageBody\":\"EXAMPLE\"}",
        };

        for (size_t i = 0; i < ELEMENTSOF(bodies); i++) {
                SnsMessage *m = NULL;
                const char *reason = NULL;

                assert_int_equal(sns_message_parse(bodies[i], strlen(bodies[i]), &m, &reason), -EPROTONOSUPPORT);
                assert_null(m);
                assert_non_null(reason);
                assert_non_null(strstr(reason, "raw message delivery"));
        }

        /* The two-way SMS payload and the SES notification, published with
         * raw delivery on. */
        if (!have_data)
                return;
        static const char *const files[] = { "sms/two-way-inbound-payload.json", "ses/received-sns-action-utf8.json" };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *body = NULL;
                SnsMessage *m = NULL;
                size_t len;

                body = vector(files[i], &len);
                assert_int_equal(sns_message_parse(body, len, &m, NULL), -EPROTONOSUPPORT);
        }
}

#define BASE_FIELDS                                                                                                    \
        "\"MessageId\":\"m\",\"TopicArn\":\"arn:aws:sns:us-east-1:1:t\",\"Message\":\"hi\","                           \
        "\"Timestamp\":\"2024-01-01T00:00:00.000Z\",\"SignatureVersion\":\"2\",\"Signature\":\"AAAA\","                \
        "\"SigningCertURL\":\"https://sns.us-east-1.amazonaws.com/x.pem\""
#define NOTIFICATION(extra) "{\"Type\":\"Notification\"," BASE_FIELDS extra "}"
#define CONFIRMATION(extra) "{\"Type\":\"SubscriptionConfirmation\"," BASE_FIELDS extra "}"

static void test_parse_errors(void **state _unused_) {
        static const struct {
                const char *body;
                int r;
                const char *reason;
        } cases[] = {
                /* well-formed ones, for contrast */
                { NOTIFICATION(""), 0, NULL },
                { NOTIFICATION(",\"Subject\":null"), 0, NULL },
                { NOTIFICATION(",\"Subject\":\"\""), 0, NULL },
                { NOTIFICATION(",\"UnsubscribeURL\":null"), 0, NULL },
                { NOTIFICATION(",\"Future\":{\"a\":[1,2,{\"b\":null}]}"), 0, NULL },
                { CONFIRMATION(",\"SubscribeURL\":\"https://sns.us-east-1.amazonaws.com/?a\",\"Token\":\"t\""), 0,
                  NULL },
                { "  \n" NOTIFICATION("") "\n", 0, NULL },
                /* malformed JSON */
                { "{", -EBADMSG, "malformed JSON" },
                { "{\"Type\":\"Notification\",}", -EBADMSG, "malformed JSON" },
                { "{\"Type\":'Notification'}", -EBADMSG, "malformed JSON" },
                { NOTIFICATION("") " trailing", -EBADMSG, "malformed JSON" },
                { NOTIFICATION("") NOTIFICATION(""), -EBADMSG, "malformed JSON" },
                { "{\"Type\":\"Notif\xff\"}", -EBADMSG, "invalid UTF-8" },
                { "{\"Type\":\"Notification\\u0000\"}", -EBADMSG, "NUL character in JSON" },
                /* duplicate keys */
                { NOTIFICATION(",\"Message\":\"other\""), -EBADMSG, "duplicate key" },
                { "{\"Type\":\"Notification\",\"Type\":\"Notification\"}", -EBADMSG, "duplicate key" },
                /* deep nesting */
                { NOTIFICATION(",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"), -EBADMSG,
                  "JSON nested too deeply" },
                { NOTIFICATION(",\"x\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}"), -EBADMSG,
                  "JSON nested too deeply" },
                /* brackets inside strings do not count */
                { NOTIFICATION(",\"x\":\"[[[[[[[[[[[[[[[[[[[[\\\"[[[[[[[[[[[[[[[[\""), 0, NULL },
                /* Type */
                { "{\"Signature\":\"AAAA\"}", -EBADMSG, "missing Type" },
                { "{\"Type\":null,\"Signature\":\"AAAA\"}", -EBADMSG, "Type is not a string" },
                { "{\"Type\":1}", -EBADMSG, "Type is not a string" },
                { "{\"Type\":\"notification\"}", -EBADMSG, "unknown Type" },
                { "{\"Type\":\"Notification \"}", -EBADMSG, "unknown Type" },
                /* missing fields */
                { "{\"Type\":\"Notification\"}", -EBADMSG, "missing MessageId" },
                { "{\"Type\":\"Notification\",\"MessageId\":\"m\"}", -EBADMSG, "missing TopicArn" },
                { CONFIRMATION(""), -EBADMSG, "missing SubscribeURL" },
                { CONFIRMATION(",\"SubscribeURL\":\"https://sns.us-east-1.amazonaws.com/\""), -EBADMSG,
                  "missing Token" },
                { "{\"Type\":\"UnsubscribeConfirmation\"," BASE_FIELDS ",\"Token\":\"t\"}", -EBADMSG,
                  "missing SubscribeURL" },
                /* wrong types */
                { NOTIFICATION(",\"Subject\":1"), -EBADMSG, "Subject is not a string" },
                { NOTIFICATION(",\"Subject\":[\"a\"]"), -EBADMSG, "Subject is not a string" },
                { NOTIFICATION(",\"UnsubscribeURL\":true"), -EBADMSG, "UnsubscribeURL is not a string" },
                { NOTIFICATION(",\"UnsubscribeUrl\":{}"), -EBADMSG, "UnsubscribeUrl is not a string" },
                { CONFIRMATION(",\"SubscribeURL\":null,\"Token\":\"t\""), -EBADMSG, "SubscribeURL is not a string" },
                { CONFIRMATION(",\"SubscribeURL\":\"https://sns.us-east-1.amazonaws.com/\",\"Token\":5"), -EBADMSG,
                  "Token is not a string" },
                { "{\"Type\":\"Notification\",\"MessageId\":7}", -EBADMSG, "MessageId is not a string" },
                { "{\"Type\":\"Notification\",\"MessageId\":null}", -EBADMSG, "MessageId is not a string" },
                /* both spellings */
                { NOTIFICATION(",\"SigningCertUrl\":\"https://sns.us-east-1.amazonaws.com/x.pem\""), -EBADMSG,
                  "both SigningCertURL and SigningCertUrl" },
                { NOTIFICATION(",\"UnsubscribeURL\":\"a\",\"UnsubscribeUrl\":\"a\""), -EBADMSG,
                  "both UnsubscribeURL and UnsubscribeUrl" },
                /* time stamps */
                { "{\"Type\":\"Notification\",\"MessageId\":\"m\",\"TopicArn\":\"t\",\"Message\":\"\","
                  "\"Timestamp\":\"yesterday\",\"SignatureVersion\":\"1\",\"Signature\":\"AAAA\","
                  "\"SigningCertURL\":\"u\"}",
                  -EBADMSG, "invalid Timestamp" },
                { "{\"Type\":\"Notification\",\"MessageId\":\"m\",\"TopicArn\":\"t\",\"Message\":\"\","
                  "\"Timestamp\":\"2024-01-01T00:00:00.000+01:00\",\"SignatureVersion\":\"1\",\"Signature\":\"A\","
                  "\"SigningCertURL\":\"u\"}",
                  -EBADMSG, "invalid Timestamp" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                SnsMessage *m = NULL;
                const char *reason = NULL;
                int r = sns_message_parse(cases[i].body, strlen(cases[i].body), &m, &reason);

                if (r != cases[i].r || !streq_ptr(reason, cases[i].reason))
                        fail_msg("case %zu %s: got %d '%s', want %d '%s'", i, cases[i].body, r, strempty(reason),
                                 cases[i].r, strempty(cases[i].reason));
                if (r < 0)
                        assert_null(m);
                else
                        assert_non_null(m);
                sns_message_free(m);
        }

        /* Sizes: the cap, and bodies with a NUL byte inside. */
        size_t big = SNS_MESSAGE_MAX_SIZE + 1;
        _cleanup_free_ char *b = malloc(big);
        const char *reason = NULL;
        SnsMessage *m = NULL;
        assert_non_null(b);
        memset(b, ' ', big);
        b[0] = '{';
        assert_int_equal(sns_message_parse(b, big, &m, &reason), -EMSGSIZE);
        assert_string_equal(reason, "body too large");
        static const char nul[] = "{\"Type\":\"Notification\"}\0{}";
        assert_int_equal(sns_message_parse(nul, sizeof nul - 1, &m, &reason), -EBADMSG);
        assert_null(m);
}

static void test_timestamps(void **state _unused_) {
        static const struct {
                const char *s;
                int r;
                uint64_t usec;
        } cases[] = {
                { "2022-07-28T22:19:51.853Z", 0, UINT64_C(1659046791853000) },
                { "2022-07-28T23:00:00.000Z", 0, UINT64_C(1659049200000000) },
                { "2022-07-28T23:00:00Z", 0, UINT64_C(1659049200000000) },
                { "2022-07-28T23:00:00.5Z", 0, UINT64_C(1659049200500000) },
                { "2022-07-28T23:00:00.123456Z", 0, UINT64_C(1659049200123456) },
                { "2022-07-28T23:00:00.123456789Z", 0, UINT64_C(1659049200123456) },
                { "1970-01-01T00:00:00.000Z", 0, 0 },
                { "2000-02-29T00:00:00.000Z", 0, UINT64_C(951782400000000) },
                { "2024-01-01T00:00:00.000Z", 0, UINT64_C(1704067200000000) },
                { "9999-12-31T23:59:59.999999Z", 0, UINT64_C(253402300799999999) },
                { "2022-07-28T23:00:00.1234567890Z", -EINVAL, 0 },
                { "2022-07-28T23:00:00.Z", -EINVAL, 0 },
                { "2022-07-28T23:00:00.000", -EINVAL, 0 },
                { "2022-07-28T23:00:00.000z", -EINVAL, 0 },
                { "2022-07-28T23:00:00.000+00:00", -EINVAL, 0 },
                { "2022-07-28 23:00:00.000Z", -EINVAL, 0 },
                { "2022-7-28T23:00:00.000Z", -EINVAL, 0 },
                { "2022-07-28T23:00:00.000ZZ", -EINVAL, 0 },
                { "1969-12-31T23:59:59.999Z", -EINVAL, 0 },
                { "2023-02-29T00:00:00.000Z", -EINVAL, 0 },
                { "1900-02-29T00:00:00.000Z", -EINVAL, 0 },
                { "2022-13-01T00:00:00.000Z", -EINVAL, 0 },
                { "2022-00-01T00:00:00.000Z", -EINVAL, 0 },
                { "2022-04-31T00:00:00.000Z", -EINVAL, 0 },
                { "2022-04-00T00:00:00.000Z", -EINVAL, 0 },
                { "2022-04-01T24:00:00.000Z", -EINVAL, 0 },
                { "2022-04-01T23:60:00.000Z", -EINVAL, 0 },
                { "2022-04-01T23:59:60.000Z", -EINVAL, 0 },
                { "+022-04-01T23:59:59.000Z", -EINVAL, 0 },
                { "", -EINVAL, 0 },
        };

        /* No time zone may leak in. */
        setenv("TZ", "America/Sao_Paulo", 1);
        tzset();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t u = 42;
                int r = sns_parse_timestamp(cases[i].s, &u);
                if (r != cases[i].r || (r == 0 && u != cases[i].usec))
                        fail_msg("%s: got %d %" PRIu64 ", want %d %" PRIu64, cases[i].s, r, u, cases[i].r,
                                 cases[i].usec);
                if (r < 0)
                        assert_true(u == 42);
        }
        unsetenv("TZ");
        tzset();
}

static void test_timestamp_window(void **state _unused_) {
        const uint64_t now = UINT64_C(1704067200000000), min = 60 * USEC_PER_SEC;
        static const struct {
                int64_t offset_min; /* timestamp - now */
                SnsVerifyResult want;
        } cases[] = {
                { 0, SNS_VERIFY_OK },
                { -65, SNS_VERIFY_OK },
                { -66, SNS_VERIFY_TIMESTAMP_TOO_OLD },
                { -6000, SNS_VERIFY_TIMESTAMP_TOO_OLD },
                { 5, SNS_VERIFY_OK },
                { 6, SNS_VERIFY_TIMESTAMP_IN_FUTURE },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t ts = now + (uint64_t) (cases[i].offset_min * (int64_t) min);
                assert_int_equal(sns_timestamp_check(ts, now, SNS_TIMESTAMP_MAX_AGE_USEC_DEFAULT,
                                                     SNS_TIMESTAMP_MAX_AHEAD_USEC_DEFAULT),
                                 cases[i].want);
        }
        /* one microsecond past the edge */
        assert_int_equal(sns_timestamp_check(now - 65 * min - 1, now, 65 * min, 5 * min), SNS_VERIFY_TIMESTAMP_TOO_OLD);
        assert_int_equal(sns_timestamp_check(now + 5 * min + 1, now, 65 * min, 5 * min),
                         SNS_VERIFY_TIMESTAMP_IN_FUTURE);
        assert_int_equal(sns_timestamp_check(0, now, 0, 0), SNS_VERIFY_TIMESTAMP_TOO_OLD);
        assert_int_equal(sns_timestamp_check(now, now, 0, 0), SNS_VERIFY_OK);
}

static void check_cert_url(const char *url, int want, const char *want_reason) {
        const char *reason = NULL;
        int r = sns_signing_cert_url_check(url, &reason);

        if (r != want || (want_reason && !streq_ptr(reason, want_reason)))
                fail_msg("%s: got %d '%s', want %d '%s'", url, r, strempty(reason), want, strempty(want_reason));
}

static void test_cert_url_vectors(void **state _unused_) {
        _cleanup_free_ char *text = NULL;
        json_t *j, *v;
        size_t i, n = 0;

        need_vectors();
        text = vector("sns/negative/signing-cert-url-cases.json", NULL);
        j = json_loads(text, 0, NULL);
        assert_non_null(j);
        json_array_foreach (json_object_get(j, "accept"), i, v) {
                check_cert_url(json_string_value(v), 0, NULL);
                n++;
        }
        json_array_foreach (json_object_get(j, "reject"), i, v) {
                check_cert_url(json_string_value(v), -EPERM, NULL);
                n++;
        }
        json_decref(j);
        assert_true(n >= 12);
}

static void test_cert_url_lookalikes(void **state _unused_) {
        static const struct {
                const char *url;
                const char *reason; /* NULL: accepted */
        } cases[] = {
                { "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem", NULL },
                { "https://sns.eu-west-3.amazonaws.com/a/b/SimpleNotificationService-x.pem", NULL },
                { "https://sns.cn-northwest-1.amazonaws.com.cn/x.pem", NULL },
                { "https://sns.us-east-1.amazonaws.com.evil.com/x.pem", "URL host is not an SNS host" },
                { "https://sns.us-east-1.amazonaws.com@evil.com/x.pem", "URL has user information" },
                { "https://sns.us-east-1.amazonaws.com:x@evil.com/x.pem", "URL has user information" },
                { "https://sns.us-east-1.amazonaws.com;x@evil.com/x.pem", "URL has user information" },
                { "https://sns.us-east-1.amazonaws.com%2f@evil.com/x.pem", "URL has user information" },
                { "https://sns.us-east-1.amazonaws.com\\@evil.com/x.pem", "URL has user information" },
                { "https://user@sns.us-east-1.amazonaws.com/x.pem", "URL has user information" },
                { "https://evilsns.us-east-1.amazonaws.com/x.pem", "URL host is not an SNS host" },
                { "https://xsns.us-east-1.amazonaws.com/x.pem", "URL host is not an SNS host" },
                { "https://sns.us-east-1.xamazonaws.com/x.pem", "URL host is not an SNS host" },
                { "https://sns.us-east-1.amazonaws.com.cn.evil/x.pem", "URL host is not an SNS host" },
                { "https://sns.us.east.1.amazonaws.com/x.pem", "URL host is not an SNS host" },
                { "https://sns..amazonaws.com/x.pem", "URL host is not an SNS host" },
                { "https://sns.amazonaws.com/x.pem", "URL host is not an SNS host" },
                { "https://sns.us_east_1.amazonaws.com/x.pem", "URL host is not an SNS host" },
                { "https://sns.us-east-1.amazonaws.com./x.pem", "URL host is not an SNS host" },
                { "https://sqs.us-east-1.amazonaws.com/x.pem", "URL host is not an SNS host" },
                { "https://127.0.0.1/x.pem", "URL host is not an SNS host" },
                { "https://[::1]/x.pem", "URL host is not an SNS host" },
                /* upper case: refused (AWS sends lower case; the cache is keyed by the string) */
                { "https://SNS.us-east-1.amazonaws.com/x.pem", "URL host is not an SNS host" },
                { "https://sns.US-EAST-1.amazonaws.com/x.pem", "URL host is not an SNS host" },
                { "https://sns.us-east-1.AMAZONAWS.COM/x.pem", "URL host is not an SNS host" },
                { "HTTPS://sns.us-east-1.amazonaws.com/x.pem", "URL is not in canonical form" },
                { "http://sns.us-east-1.amazonaws.com/x.pem", "URL is not https" },
                { "ftp://sns.us-east-1.amazonaws.com/x.pem", "URL is not https" },
                { "file:///etc/x.pem", "URL is not https" },
                { "https://sns.us-east-1.amazonaws.com:443/x.pem", "URL has a port" },
                { "https://sns.us-east-1.amazonaws.com:8443/x.pem", "URL has a port" },
                { "https://sns.us-east-1.amazonaws.com:/x.pem", "URL is not in canonical form" },
                /* percent-encoding and other forms curl would normalise */
                { "https://sns.us-east-1.amazonaws%2ecom/x.pem", "URL is not in canonical form" },
                { "https://sns%2eus-east-1.amazonaws.com/x.pem", "URL is not in canonical form" },
                { "https://sns.us-east-1.amazonaws.com/x%2epem", "certificate URL path does not end in .pem" },
                { "https://sns.us-east-1.amazonaws.com/../x.pem", "URL is not in canonical form" },
                { "https://sns.us-east-1.amazonaws.com/a/./x.pem", "URL is not in canonical form" },
                { "https:/sns.us-east-1.amazonaws.com/x.pem", "URL is not in canonical form" },
                { "https:///sns.us-east-1.amazonaws.com/x.pem", "URL is not in canonical form" },
                { "https:sns.us-east-1.amazonaws.com/x.pem", "not a valid URL" },
                { "//sns.us-east-1.amazonaws.com/x.pem", "not a valid URL" },
                { "sns.us-east-1.amazonaws.com/x.pem", "not a valid URL" },
                { " https://sns.us-east-1.amazonaws.com/x.pem", "not a valid URL" },
                { "https://sns.us-east-1.amazonaws.com/x.pem ", "not a valid URL" },
                { "https://sns.us-east-1.amazonaws.com/x .pem", "not a valid URL" },
                { "https://sns.us-east-1.amazonaws.com\t/x.pem", "not a valid URL" },
                { "https://sns.us-east-1.amazonaws.com/x.pem\r\n", "not a valid URL" },
                /* path, query, fragment */
                { "https://sns.us-east-1.amazonaws.com/x.pem?", "certificate URL has a query or fragment" },
                { "https://sns.us-east-1.amazonaws.com/x.pem?a=b", "certificate URL has a query or fragment" },
                { "https://sns.us-east-1.amazonaws.com/x.pem#a", "certificate URL has a query or fragment" },
                { "https://sns.us-east-1.amazonaws.com/x.pem/", "certificate URL path does not end in .pem" },
                { "https://sns.us-east-1.amazonaws.com/x.PEM", "certificate URL path does not end in .pem" },
                { "https://sns.us-east-1.amazonaws.com/x.crt", "certificate URL path does not end in .pem" },
                { "https://sns.us-east-1.amazonaws.com/", "certificate URL path does not end in .pem" },
                { "https://sns.us-east-1.amazonaws.com", "certificate URL path does not end in .pem" },
                { "https://sns.us-east-1.amazonaws.com/?x=.pem", "certificate URL path does not end in .pem" },
                { "", "empty URL" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                check_cert_url(cases[i].url, cases[i].reason ? -EPERM : 0, cases[i].reason);

        check_cert_url(NULL, -EPERM, "empty URL");
        char long_url[SNS_URL_MAX_LENGTH + 64];
        snprintf(long_url, sizeof long_url, "https://sns.us-east-1.amazonaws.com/%0*d.pem", SNS_URL_MAX_LENGTH, 0);
        check_cert_url(long_url, -EPERM, "URL too long");
}

static void test_subscribe_url(void **state _unused_) {
        static const struct {
                const char *url;
                const char *reason;
        } cases[] = {
                { "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:"
                  "123456789012:MyTopic&Token=2336412f37...",
                  NULL },
                { "https://sns.us-west-2.amazonaws.com/", NULL },
                { "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn%3Aaws", NULL },
                { "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription", "URL is not https" },
                { "https://sns.us-west-2.amazonaws.com.evil.com/?Action=ConfirmSubscription",
                  "URL host is not an SNS host" },
                { "https://sns.us-west-2.amazonaws.com@evil.com/?Action=ConfirmSubscription",
                  "URL has user information" },
                { "https://sns.us-west-2.amazonaws.com:443/?Action=ConfirmSubscription", "URL has a port" },
                { "https://evil.com/?https://sns.us-west-2.amazonaws.com/", "URL host is not an SNS host" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *reason = NULL;
                int r = sns_subscribe_url_check(cases[i].url, &reason);
                if (r != (cases[i].reason ? -EPERM : 0) || !streq_ptr(reason, cases[i].reason))
                        fail_msg("%s: got %d '%s'", cases[i].url, r, strempty(reason));
        }
}

static void test_topic_allowed(void **state _unused_) {
        char *allowed[] = { "arn:aws:sns:us-east-1:123456789012:two-way-sms", "arn:aws:sns:us-east-1:1:ses", NULL };
        char *empty[] = { NULL };

        assert_true(sns_topic_allowed(allowed, "arn:aws:sns:us-east-1:123456789012:two-way-sms"));
        assert_true(sns_topic_allowed(allowed, "arn:aws:sns:us-east-1:1:ses"));
        assert_false(sns_topic_allowed(allowed, "arn:aws:sns:us-east-1:123456789012:two-way-sm"));
        assert_false(sns_topic_allowed(allowed, "arn:aws:sns:us-east-1:123456789012:two-way-sms2"));
        assert_false(sns_topic_allowed(allowed, "ARN:AWS:SNS:US-EAST-1:1:SES"));
        assert_false(sns_topic_allowed(allowed, ""));
        assert_false(sns_topic_allowed(allowed, NULL));
        assert_false(sns_topic_allowed(empty, "arn:aws:sns:us-east-1:1:ses"));
        assert_false(sns_topic_allowed(NULL, "arn:aws:sns:us-east-1:1:ses"));
}

static size_t count_entries(const char *d) {
        DIR *dd = opendir(d);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(dd);
        while ((de = readdir(dd)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(dd);
        return n;
}

static void test_cache(void **state _unused_) {
        _cleanup_free_ char *cache = mem_printf("%s/cache", test_dir), *path = NULL, *want = NULL, *pem = NULL,
                            *got = NULL;
        size_t pem_len, got_len;

        assert_non_null(cache);
        assert_int_equal(mkdir(cache, 0755), 0);

        /* the path is the SHA-256 hex of the exact URL */
        assert_int_equal(sns_cert_cache_path(cache, REAL_CERT_URL, &path), 0);
        want = mem_printf("%s/cee0ce0348e630e8d6d58007a7f7fdbc543d1c086d9cedad7bb10d3cba334af0.pem", cache);
        assert_string_equal(path, want);
        path = mfree(path);
        assert_int_equal(sns_cert_cache_path("/x", "", &path), -EINVAL);
        assert_int_equal(sns_cert_cache_path("", "u", &path), -EINVAL);
        assert_int_equal(sns_cert_cache_path("/x", "https://sns.us-east-1.amazonaws.com/x.pem", &path), 0);
        assert_string_equal(path, "/x/d9bb9ae68a77a35effd36b7a98579f0c45ec88edf8f58464d5df164f6c8a9e31.pem");
        path = mfree(path);

        assert_int_equal(sns_cert_cache_load(cache, REAL_CERT_URL, &got, &got_len), -ENOENT);
        assert_null(got);
        assert_int_equal(sns_cert_cache_store(cache, REAL_CERT_URL, "junk", 4), -EBADMSG);
        assert_int_equal(sns_cert_cache_store(cache, REAL_CERT_URL, "", 0), -EBADMSG);
        assert_int_equal(count_entries(cache), 0);

        need_vectors();
        pem = read_all(REAL_CERT, &pem_len);
        assert_int_equal(sns_cert_cache_store(cache, REAL_CERT_URL, pem, pem_len), 0);
        assert_int_equal(sns_cert_cache_load(cache, REAL_CERT_URL, &got, &got_len), 0);
        assert_int_equal(got_len, pem_len);
        assert_memory_equal(got, pem, pem_len);
        assert_int_equal(got[got_len], '\0');
        /* storing again replaces it and leaves no temporary file behind */
        assert_int_equal(sns_cert_cache_store(cache, REAL_CERT_URL, pem, pem_len), 0);
        assert_int_equal(count_entries(cache), 1);
        /* a different spelling of the URL is a different entry */
        free(got);
        got = NULL;
        assert_int_equal(sns_cert_cache_load(cache, REAL_CERT_URL "?", &got, &got_len), -ENOENT);

        /* verification from the cached copy */
        _cleanup_free_ char *body = vector("sns/notification-v2-2.json", NULL);
        _cleanup_(sns_message_freep) SnsMessage *m = parse_ok(body, strlen(body));
        SnsVerifyResult v;
        assert_int_equal(sns_cert_cache_load(cache, sns_message_get(m, SNS_FIELD_SIGNING_CERT_URL), &got, NULL), 0);
        assert_int_equal(sns_message_verify(m, got, strlen(got), 1, CHECK_TIME_2022, &v), 0);
        assert_outcome("cached", v, SNS_VERIFY_OK);
        free(got);
        got = NULL;

        /* too large, not a file, a symlink */
        _cleanup_free_ char *huge = malloc(SNS_CERT_MAX_SIZE + 2);
        assert_non_null(huge);
        memcpy(huge, pem, pem_len);
        memset(huge + pem_len, '\n', SNS_CERT_MAX_SIZE + 1 - pem_len);
        assert_int_equal(sns_cert_cache_store(cache, "u1", huge, SNS_CERT_MAX_SIZE + 1), -EFBIG);
        assert_int_equal(sns_cert_cache_store(cache, "u1", huge, SNS_CERT_MAX_SIZE), 0);
        assert_int_equal(sns_cert_cache_load(cache, "u1", &got, &got_len), 0);
        assert_int_equal(got_len, SNS_CERT_MAX_SIZE);
        free(got);
        got = NULL;

        assert_int_equal(sns_cert_cache_path(cache, "u2", &path), 0);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(huge, 1, SNS_CERT_MAX_SIZE + 1, f), SNS_CERT_MAX_SIZE + 1);
        fclose(f);
        assert_int_equal(sns_cert_cache_load(cache, "u2", &got, NULL), -EFBIG);
        path = mfree(path);

        assert_int_equal(sns_cert_cache_path(cache, "u3", &path), 0);
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(sns_cert_cache_load(cache, "u3", &got, NULL), -EBADF);
        path = mfree(path);

        assert_int_equal(sns_cert_cache_path(cache, "u4", &path), 0);
        assert_int_equal(symlink(REAL_CERT, path), 0);
        assert_int_equal(sns_cert_cache_load(cache, "u4", &got, NULL), -ELOOP);
        path = mfree(path);
        assert_null(got);

        assert_int_equal(sns_cert_cache_store("/nonexistent/dir", "u", pem, pem_len), -ENOENT);
}

static void test_oom(void **state _unused_) {
        static const char *const files[] = {
                "sns/notification-v2-subject-4.json",
                "sns/lambda-style-v1-null-subject.json",
                "sns/negative/notification-v1-1.tampered-message.json",
        };
        static const char confirmation[] = CONFIRMATION(",\"SubscribeURL\":\"https://sns.us-east-1.amazonaws.com/"
                                                        "?Action=ConfirmSubscription\",\"Token\":\"t\"");
        static const char broken[] = NOTIFICATION(",\"Subject\":7");

        need_vectors();
        for (size_t i = 0; i < ELEMENTSOF(files) + 2; i++) {
                _cleanup_free_ char *body = NULL;
                const char *text;
                unsigned long n;

                if (i < ELEMENTSOF(files))
                        text = body = vector(files[i], NULL);
                else
                        text = i == ELEMENTSOF(files) ? confirmation : broken;
                for (n = 1;; n++) {
                        SnsMessage *m = NULL;
                        char *s = NULL;
                        const char *reason = NULL;
                        int r;

                        alloc_fail_after(n);
                        r = sns_message_parse(text, strlen(text), &m, &reason);
                        if (r >= 0)
                                r = sns_message_string_to_sign(m, &s, NULL);
                        alloc_fail_after(0);
                        free(s);
                        sns_message_free(m);
                        if (r != -ENOMEM) {
                                if (text == broken) {
                                        assert_int_equal(r, -EBADMSG);
                                        assert_string_equal(reason, "Subject is not a string");
                                } else
                                        assert_int_equal(r, 0);
                                break;
                        }
                }
                assert_true(n > 5);
        }

        /* and verification, which allocates the decoded signature and the
         * string to sign */
        _cleanup_free_ char *body = vector("sns/notification-v2-2.json", NULL), *pem = NULL;
        _cleanup_(sns_message_freep) SnsMessage *m = parse_ok(body, strlen(body));
        size_t pem_len;
        unsigned long n;
        pem = read_all(REAL_CERT, &pem_len);
        for (n = 1;; n++) {
                SnsVerifyResult v = _SNS_VERIFY_RESULT_INVALID;
                alloc_fail_after(n);
                int r = sns_message_verify(m, pem, pem_len, 1, CHECK_TIME_2022, &v);
                alloc_fail_after(0);
                if (r != -ENOMEM) {
                        assert_int_equal(r, 0);
                        assert_outcome("oom", v, SNS_VERIFY_OK);
                        break;
                }
                assert_int_equal(v, _SNS_VERIFY_RESULT_INVALID);
        }
        assert_true(n > 1);
}

/* A message signed here, with a key made now, verifies now: the same
 * thing the integration tests do through the daemon. */
static void test_signed_now(void **state _unused_) {
        _cleanup_free_ char *keydir = mem_printf("%s/keys", test_dir), *key = NULL, *cert = NULL;
        static const struct {
                const char *version;
                unsigned min_version;
                SnsVerifyResult want;
        } cases[] = {
                { "2", 2, SNS_VERIFY_OK },
                { "1", 1, SNS_VERIFY_OK },
                { "1", 2, SNS_VERIFY_UNSUPPORTED_VERSION },
        };

        need_vectors();
        assert_int_equal(mkdir(keydir, 0700), 0);
        key = mem_printf("%s/sns-test.key", keydir);
        cert = mem_printf("%s/sns-test.pem", keydir);

        /* The script agrees with AWS on the real messages. */
        char *self_test[] = { "python3", SIGN_PY, "self-test", TEST_VECTORS, NULL };
        assert_int_equal(run(self_test, NULL, "/dev/null"), 0);

        char *make_cert[] = { "python3", SIGN_PY, "make-cert", keydir, NULL };
        assert_int_equal(run(make_cert, NULL, "/dev/null"), 0);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *out = mem_printf("%s/signed-%zu.json", keydir, i), *body = NULL;
                _cleanup_(sns_message_freep) SnsMessage *m = NULL;
                char *sign[] = { "python3",
                                 SIGN_PY,
                                 "sign",
                                 "--key",
                                 key,
                                 "--cert-url",
                                 TEST_CERT_URL,
                                 "--version",
                                 (char *) cases[i].version,
                                 TEST_VECTORS "/sms/constructed-two-way-inbound-in-sns-envelope.json",
                                 NULL };
                uint64_t now = now_usec();
                size_t len;

                assert_int_equal(run(sign, NULL, out), 0);
                body = read_all(out, &len);
                m = parse_ok(body, len);
                assert_string_equal(sns_message_get(m, SNS_FIELD_SIGNING_CERT_URL), TEST_CERT_URL);
                assert_non_null(
                        strstr(sns_message_get(m, SNS_FIELD_MESSAGE), "\"originationNumber\":\"+14255550182\""));
                assert_int_equal(sns_timestamp_check(sns_message_get_timestamp(m), now,
                                                     SNS_TIMESTAMP_MAX_AGE_USEC_DEFAULT,
                                                     SNS_TIMESTAMP_MAX_AHEAD_USEC_DEFAULT),
                                 SNS_VERIFY_OK);
                assert_outcome(cases[i].version, verify_with(m, cert, cases[i].min_version, now), cases[i].want);
                if (cases[i].want != SNS_VERIFY_OK)
                        continue;

                /* the real AWS certificate does not verify our signature */
                assert_outcome("aws cert", verify_with(m, REAL_CERT, 1, CHECK_TIME_2022), SNS_VERIFY_BAD_SIGNATURE);
                /* our certificate is not valid two years ago, nor in three days */
                assert_outcome("past", verify_with(m, cert, 1, CHECK_TIME_2022), SNS_VERIFY_CERT_NOT_YET_VALID);
                assert_outcome("future", verify_with(m, cert, 1, now + 3 * 24 * 3600 * USEC_PER_SEC),
                               SNS_VERIFY_CERT_EXPIRED);

                /* a changed Message no longer verifies */
                _cleanup_free_ char *tampered = edit_json(body, "Message", "{\"messageBody\":\"CANCEL\"}");
                _cleanup_(sns_message_freep) SnsMessage *t = parse_ok(tampered, strlen(tampered));
                assert_outcome("tampered", verify_with(t, cert, 1, now), SNS_VERIFY_BAD_SIGNATURE);
        }

        /* A certificate with an EC key is refused. */
        _cleanup_free_ char *eckey = mem_printf("%s/ec.key", keydir), *eccert = mem_printf("%s/ec.pem", keydir),
                            *body = NULL, *out = mem_printf("%s/signed-ec.json", keydir);
        char *ec[] = {
                "openssl", "req",  "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                eckey,     "-out", eccert,  "-days",   "1",  "-subj",    "/CN=sns.amazonaws.com",   NULL
        };
        assert_int_equal(run(ec, NULL, "/dev/null"), 0);
        char *sign[] = { "python3",     SIGN_PY,
                         "sign",        "--key",
                         eckey,         "--cert-url",
                         TEST_CERT_URL, TEST_VECTORS "/sms/constructed-two-way-inbound-in-sns-envelope.json",
                         NULL };
        assert_int_equal(run(sign, NULL, out), 0);
        body = read_all(out, NULL);
        _cleanup_(sns_message_freep) SnsMessage *m = parse_ok(body, strlen(body));
        assert_outcome("ec", verify_with(m, eccert, 1, now_usec()), SNS_VERIFY_BAD_CERT);
}

int main(void) {
        /* Need neither the vectors nor the script. */
        const struct CMUnitTest pure[] = {
                cmocka_unit_test(test_raw_delivery),        cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_timestamps),          cmocka_unit_test(test_timestamp_window),
                cmocka_unit_test(test_cert_url_lookalikes), cmocka_unit_test(test_subscribe_url),
                cmocka_unit_test(test_topic_allowed),
        };
        const struct CMUnitTest all[] = {
                cmocka_unit_test(test_real_messages),
                cmocka_unit_test(test_negative_dir),
                cmocka_unit_test(test_cert_validity),
                cmocka_unit_test(test_verify_outcomes),
                cmocka_unit_test(test_string_to_sign),
                cmocka_unit_test(test_string_to_sign_docs),
                cmocka_unit_test(test_docs_http),
                cmocka_unit_test(test_fields),
                cmocka_unit_test(test_raw_delivery),
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_timestamps),
                cmocka_unit_test(test_timestamp_window),
                cmocka_unit_test(test_cert_url_vectors),
                cmocka_unit_test(test_cert_url_lookalikes),
                cmocka_unit_test(test_subscribe_url),
                cmocka_unit_test(test_topic_allowed),
                cmocka_unit_test(test_cache),
                cmocka_unit_test(test_oom),
                cmocka_unit_test(test_signed_now),
        };
        int r;

        alloc_init();
        have_data = access(SNS_DIR, R_OK) == 0 && access(SIGN_PY, R_OK) == 0;
        if (have_data)
                return cmocka_run_group_tests(all, setup, teardown);

        print_message("%s or %s not found: running only the tests that need neither\n", SNS_DIR, SIGN_PY);
        r = cmocka_run_group_tests(pure, setup, teardown);
        return r != 0 ? r : 77; /* automake: SKIP */
}
