/* SPDX-License-Identifier: MIT */
/*
 * test-aws-credentials.c — where AWS credentials come from.  The pure part
 * one row per case: the environment, the shared credentials file, the
 * endpoints' JSON, expiration times, role names, the container URL rules,
 * freshness.  The provider on a real sd-event loop against fake endpoints:
 * a tiny HTTP server on 127.0.0.1 in a thread of this process (as in
 * test-curl-event.c) that plays IMDSv2 (token PUT, role list, role
 * credentials) and a container credentials endpoint, with credentials
 * refreshed before they expire, an expired credential then a fresh one,
 * endpoints that fail, the order of the chain, cancelling and freeing, and
 * allocation failures.  Every key, secret and token here is fake.
 */
#include "test-helpers.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "aws-credentials.h"
#include "curl-event.h"

static char *dir;

/* ---- the pure part ------------------------------------------------------ */

static void test_source_names(void **state _unused_) {
        for (int i = 0; i < _AWS_CREDENTIALS_SOURCE_MAX; i++)
                assert_int_equal(aws_credentials_source_from_string(aws_credentials_source_to_string(i)), i);
        assert_string_equal(aws_credentials_source_to_string(AWS_CREDENTIALS_IMDS), "imds");
        assert_null(aws_credentials_source_to_string(_AWS_CREDENTIALS_SOURCE_MAX));
        assert_null(aws_credentials_source_to_string(_AWS_CREDENTIALS_SOURCE_INVALID));
        assert_int_equal(aws_credentials_source_from_string("IMDS"), _AWS_CREDENTIALS_SOURCE_INVALID);
        assert_int_equal(aws_credentials_source_from_string(NULL), _AWS_CREDENTIALS_SOURCE_INVALID);
}

static void test_env(void **state _unused_) {
        static const struct {
                const char *env[5];
                int r;
                const char *id, *secret, *token;
        } cases[] = {
                { { "AWS_ACCESS_KEY_ID=AKIDFAKE", "AWS_SECRET_ACCESS_KEY=fake/secret", NULL },
                  0,
                  "AKIDFAKE",
                  "fake/secret",
                  NULL },
                { { "AWS_ACCESS_KEY_ID=ASIAFAKE", "AWS_SECRET_ACCESS_KEY=s", "AWS_SESSION_TOKEN=FAKETOKEN", NULL },
                  0,
                  "ASIAFAKE",
                  "s",
                  "FAKETOKEN" },
                { { "AWS_ACCESS_KEY_ID=A", "AWS_SECRET_ACCESS_KEY=s", "AWS_SESSION_TOKEN=", NULL }, 0, "A", "s", NULL },
                { { "AWS_ACCESS_KEY_ID_X=A", "XAWS_ACCESS_KEY_ID=B", "AWS_SECRET_ACCESS_KEY=s", NULL }, .r = -ENOENT },
                { { NULL }, .r = -ENOENT },
                { { "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=s", NULL }, .r = -ENOENT },
                { { "AWS_ACCESS_KEY_ID=A", NULL }, .r = -EINVAL },
                { { "AWS_ACCESS_KEY_ID=A", "AWS_SECRET_ACCESS_KEY=", NULL }, .r = -EINVAL },
                { { "AWS_ACCESS_KEY_ID=A", "AWS_SECRET_ACCESS_KEY=s", "AWS_SESSION_TOKEN=a\nb", NULL }, .r = -EINVAL },
                { { "AWS_ACCESS_KEY_ID=A\r", "AWS_SECRET_ACCESS_KEY=s", NULL }, .r = -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(aws_credentials_freep) AwsCredentials *c = NULL;
                int r = aws_credentials_from_env((char **) cases[i].env, &c);

                if (r != cases[i].r)
                        fail_msg("row %zu: got %d, want %d", i, r, cases[i].r);
                if (r < 0) {
                        assert_null(c);
                        continue;
                }
                assert_string_equal(c->access_key_id, cases[i].id);
                assert_true(streq(c->secret_access_key, cases[i].secret));
                assert_true(streq_ptr(c->session_token, cases[i].token));
                assert_int_equal(c->expiration_usec, 0);
                assert_int_equal(c->source, AWS_CREDENTIALS_ENVIRONMENT);
        }
        assert_int_equal(aws_credentials_from_env(NULL, &(AwsCredentials *){ NULL }), -ENOENT);
}

static void test_file_location(void **state _unused_) {
        static const struct {
                const char *env[4];
                int r;
                const char *path, *profile;
                bool explicit;
        } cases[] = {
                { { "HOME=/home/d", NULL }, 0, "/home/d/.aws/credentials", "default", false },
                { { "HOME=/home/d", "AWS_PROFILE=ops", NULL }, 0, "/home/d/.aws/credentials", "ops", true },
                { { "HOME=/home/d", "AWS_SHARED_CREDENTIALS_FILE=/etc/deliveryd/aws", NULL },
                  0,
                  "/etc/deliveryd/aws",
                  "default",
                  false },
                { { "HOME=/home/d", "AWS_SHARED_CREDENTIALS_FILE=~/creds", NULL },
                  0,
                  "/home/d/creds",
                  "default",
                  false },
                { { "AWS_SHARED_CREDENTIALS_FILE=~/creds", NULL }, 0, "~/creds", "default", false },
                { { "AWS_SHARED_CREDENTIALS_FILE=/x", "AWS_PROFILE=", NULL }, 0, "/x", "default", false },
                { { NULL }, .r = -ENOENT },
                { { "HOME=", NULL }, .r = -ENOENT },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *path = NULL, *profile = NULL;
                bool explicit = !cases[i].explicit;
                int r = aws_credentials_file_location((char **) cases[i].env, &path, &profile, &explicit);

                if (r != cases[i].r)
                        fail_msg("row %zu: got %d, want %d", i, r, cases[i].r);
                if (r < 0)
                        continue;
                assert_string_equal(path, cases[i].path);
                assert_string_equal(profile, cases[i].profile);
                assert_int_equal(explicit, cases[i].explicit);
        }
}

static void test_file(void **state _unused_) {
        static const char *const text = "# deliveryd test credentials, all fake\n"
                                        "[default]\n"
                                        "aws_access_key_id = AKIDFAKEDEFAULT\n"
                                        "aws_secret_access_key = fake/default/secret\n"
                                        "\n"
                                        "[ops]\n"
                                        "AWS_ACCESS_KEY_ID=ASIAFAKEOPS\n"
                                        "  aws_secret_access_key   =   fake+ops/secret==  \n"
                                        "aws_session_token = FAKE-OPS-TOKEN\n"
                                        "region = eu-west-1\n"
                                        "; a comment\n"
                                        "[legacy]\n"
                                        "aws_access_key_id = ASIAFAKELEGACY\n"
                                        "aws_secret_access_key = s\n"
                                        "aws_security_token = FAKE-LEGACY-TOKEN\n"
                                        "[later-wins]\n"
                                        "aws_access_key_id = FIRST\n"
                                        "aws_secret_access_key = s\n"
                                        "aws_access_key_id = SECOND\n"
                                        "[no-secret]\n"
                                        "aws_access_key_id = AKIDFAKE\n"
                                        "[role-only]\n"
                                        "role_arn = arn:aws:iam::123456789012:role/x\n"
                                        "source_profile = default\n"
                                        "[bad line]\n"
                                        "this line has no equals sign and might be a pasted secret\n"
                                        "aws_access_key_id = AKIDFAKEBADLINE\n"
                                        "aws_secret_access_key = s2\n"
                                        "[ops]\n"
                                        "aws_session_token = FAKE-OPS-TOKEN-2\n";
        static const struct {
                const char *profile;
                int r;
                const char *id, *secret, *token;
        } cases[] = {
                { "default", 0, "AKIDFAKEDEFAULT", "fake/default/secret", NULL },
                { "ops", 0, "ASIAFAKEOPS", "fake+ops/secret==", "FAKE-OPS-TOKEN-2" }, /* sections merge */
                { "legacy", 0, "ASIAFAKELEGACY", "s", "FAKE-LEGACY-TOKEN" },
                { "later-wins", 0, "SECOND", "s", NULL },
                { "bad line", 0, "AKIDFAKEBADLINE", "s2", NULL }, /* the bad line is skipped */
                { "no-secret", .r = -EINVAL },
                { "role-only", .r = -ENOKEY },
                { "missing", .r = -ENOKEY },
                { "Default", .r = -ENOKEY }, /* profile names are case-sensitive */
        };
        _cleanup_free_ char *path = NULL;

        write_file(dir, "credentials", text);
        assert_true(asprintf(&path, "%s/credentials", dir) > 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(aws_credentials_freep) AwsCredentials *c = NULL;
                int r = aws_credentials_from_file(path, cases[i].profile, &c);

                if (r != cases[i].r)
                        fail_msg("[%s]: got %d, want %d", cases[i].profile, r, cases[i].r);
                if (r < 0) {
                        assert_null(c);
                        continue;
                }
                assert_string_equal(c->access_key_id, cases[i].id);
                assert_true(streq(c->secret_access_key, cases[i].secret));
                assert_true(streq_ptr(c->session_token, cases[i].token));
                assert_int_equal(c->source, AWS_CREDENTIALS_FILE);
        }
        AwsCredentials *c = NULL;
        assert_int_equal(aws_credentials_from_file("/nonexistent/deliveryd/credentials", "default", &c), -ENOENT);
        assert_int_equal(aws_credentials_from_file(path, "", &c), -EINVAL);
        assert_null(c);
}

static void test_expiration(void **state _unused_) {
        static const struct {
                const char *s;
                int r;
                uint64_t sec;
        } cases[] = {
                { "2024-03-07T18:00:00Z", 0, 1709834400 },
                { "2024-03-07T18:00:00.123456Z", 0, 1709834400 },
                { "2024-03-07T19:00:00+01:00", 0, 1709834400 },
                { "2024-03-07T17:30:00-00:30", 0, 1709834400 },
                { "1970-01-01T00:00:01Z", 0, 1 },
                { "2024-02-29T00:00:00Z", 0, 1709164800 },
                { "2023-02-29T00:00:00Z", .r = -EINVAL },
                { "2024-02-31T00:00:00Z", .r = -EINVAL },
                { "2024-13-01T00:00:00Z", .r = -EINVAL },
                { "2024-03-07T24:00:00Z", .r = -EINVAL },
                { "2024-03-07 18:00:00Z", .r = -EINVAL },
                { "2024-03-07T18:00:00", .r = -EINVAL },
                { "2024-03-07T18:00:00z", .r = -EINVAL },
                { "2024-03-07T18:00:00.Z", .r = -EINVAL },
                { "2024-03-07T18:00:00+0100", .r = -EINVAL },
                { "2024-03-07T18:00:00Zjunk", .r = -EINVAL },
                { "24-03-07T18:00:00Z", .r = -EINVAL },
                { "1969-12-31T23:59:59Z", .r = -EINVAL },
                { "", .r = -EINVAL },
                { NULL, .r = -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t t = 0;
                int r = aws_credentials_parse_expiration(cases[i].s, &t);

                if (r != cases[i].r || (r == 0 && t != cases[i].sec * USEC_PER_SEC))
                        fail_msg("'%s': got %d %" PRIu64 ", want %d %" PRIu64, strempty(cases[i].s), r, t, cases[i].r,
                                 cases[i].sec * USEC_PER_SEC);
        }
}

static void test_parse_json(void **state _unused_) {
        static const struct {
                const char *json;
                int r;
                const char *id;
        } cases[] = {
                /* IMDS, as documented (values fake) */
                { "{\"Code\":\"Success\",\"LastUpdated\":\"2024-03-07T11:00:00Z\",\"Type\":\"AWS-HMAC\","
                  "\"AccessKeyId\":\"ASIAFAKEIMDS\",\"SecretAccessKey\":\"fake/imds\",\"Token\":\"FAKE-T\","
                  "\"Expiration\":\"2024-03-07T18:00:00Z\"}",
                  0, "ASIAFAKEIMDS" },
                /* container (ECS, EKS Pod Identity): no Code */
                { "{\"RoleArn\":\"arn:aws:iam::123456789012:role/x\",\"AccessKeyId\":\"ASIAFAKECONT\","
                  "\"SecretAccessKey\":\"s\",\"Token\":\"T\",\"Expiration\":\"2024-03-07T18:00:00Z\"}",
                  0, "ASIAFAKECONT" },
                { "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"x\",\"LastUpdated\":\"2024-03-07T11:00:"
                  "00Z\"}",
                  .r = -EACCES },
                { "{\"Code\":42,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"T\","
                  "\"Expiration\":\"2024-03-07T18:00:00Z\"}",
                  .r = -EBADMSG },
                { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"T\"}",
                  .r = -EBADMSG }, /* no Expiration */
                { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"2024-03-07T18:00:00Z\"}",
                  .r = -EBADMSG }, /* no Token */
                { "{\"AccessKeyId\":\"\",\"SecretAccessKey\":\"s\",\"Token\":\"T\",\"Expiration\":\"2024-03-07T18:00:"
                  "00Z\"}",
                  .r = -EBADMSG },
                { "{\"AccessKeyId\":1,\"SecretAccessKey\":\"s\",\"Token\":\"T\",\"Expiration\":\"2024-03-07T18:00:"
                  "00Z\"}",
                  .r = -EBADMSG },
                { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"T\\r\\nX-Evil: 1\","
                  "\"Expiration\":\"2024-03-07T18:00:00Z\"}",
                  .r = -EBADMSG },
                { "{\"AccessKeyId\":\"A\\u0000B\",\"SecretAccessKey\":\"s\",\"Token\":\"T\","
                  "\"Expiration\":\"2024-03-07T18:00:00Z\"}",
                  .r = -EBADMSG },
                { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"T\",\"Expiration\":\"tomorrow\"}",
                  .r = -EBADMSG },
                { "{\"AccessKeyId\":\"A\",\"AccessKeyId\":\"B\",\"SecretAccessKey\":\"s\",\"Token\":\"T\","
                  "\"Expiration\":\"2024-03-07T18:00:00Z\"}",
                  .r = -EBADMSG }, /* duplicate keys */
                { "[\"AccessKeyId\"]", .r = -EBADMSG },
                { "{\"AccessKeyId\":\"A\"", .r = -EBADMSG },
                { "", .r = -EBADMSG },
                { "<html>not found</html>", .r = -EBADMSG },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(aws_credentials_freep) AwsCredentials *c = NULL;
                int r = aws_credentials_parse_json(cases[i].json, strlen(cases[i].json), AWS_CREDENTIALS_IMDS, &c);

                if (r != cases[i].r)
                        fail_msg("row %zu: got %d, want %d", i, r, cases[i].r);
                if (r < 0) {
                        assert_null(c);
                        continue;
                }
                assert_string_equal(c->access_key_id, cases[i].id);
                assert_non_null(c->session_token);
                assert_int_equal(c->expiration_usec, (uint64_t) 1709834400 * USEC_PER_SEC);
        }

        /* Over the size cap; not NUL-terminated at len. */
        static char big[AWS_CREDENTIALS_MAX_RESPONSE + 2];
        AwsCredentials *c = NULL;
        memset(big, ' ', sizeof big);
        assert_int_equal(aws_credentials_parse_json(big, sizeof big, AWS_CREDENTIALS_IMDS, &c), -EBADMSG);
        const char *good = cases[1].json;
        assert_int_equal(aws_credentials_parse_json(good, strlen(good) - 1, AWS_CREDENTIALS_CONTAINER, &c), -EBADMSG);
        assert_int_equal(aws_credentials_parse_json(good, strlen(good), AWS_CREDENTIALS_CONTAINER, &c), 0);
        assert_int_equal(c->source, AWS_CREDENTIALS_CONTAINER);
        aws_credentials_free(c);
}

static void test_role_parse(void **state _unused_) {
        static const struct {
                const char *body;
                int r;
                const char *role;
        } cases[] = {
                { "deliveryd-role", 0, "deliveryd-role" },
                { "deliveryd-role\n", 0, "deliveryd-role" },
                { "first\nsecond\n", 0, "first" },
                { "Role+=,.@_-9", 0, "Role+=,.@_-9" },
                { "", .r = -ENOENT },
                { "\n", .r = -ENOENT },
                { "../../latest/api/token", .r = -EBADMSG },
                { "role/with/slash", .r = -EBADMSG },
                { "role?x=1", .r = -EBADMSG },
                { "role%2F", .r = -EBADMSG },
                { "role name", .r = -EBADMSG },
                { "0123456789012345678901234567890123456789012345678901234567890123", 0,
                  "0123456789012345678901234567890123456789012345678901234567890123" },
                { "01234567890123456789012345678901234567890123456789012345678901234", .r = -EBADMSG },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *role = NULL;
                int r = aws_imds_role_parse(cases[i].body, strlen(cases[i].body), &role);

                if (r != cases[i].r || (r == 0 && !streq(role, cases[i].role)))
                        fail_msg("'%s': got %d '%s', want %d", cases[i].body, r, strempty(role), cases[i].r);
        }
}

static void test_container_endpoint(void **state _unused_) {
        _cleanup_free_ char *token_file = NULL, *empty_file = NULL, *token_file_env = NULL, *empty_file_env = NULL;

        write_file(dir, "eks-token", "  fake-eks-pod-identity-token\n");
        write_file(dir, "empty-token", "\n");
        assert_true(asprintf(&token_file, "%s/eks-token", dir) > 0);
        assert_true(asprintf(&empty_file, "%s/empty-token", dir) > 0);
        assert_true(asprintf(&token_file_env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%s", token_file) > 0);
        assert_true(asprintf(&empty_file_env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%s", empty_file) > 0);

        const struct {
                const char *env[4];
                const char *base;
                int r;
                const char *url, *token;
        } cases[] = {
                { { "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/task-1", NULL },
                  NULL,
                  0,
                  "http://169.254.170.2/v2/credentials/task-1",
                  NULL },
                { { "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/task-1", NULL },
                  "http://127.0.0.1:8080/",
                  0,
                  "http://127.0.0.1:8080/v2/credentials/task-1",
                  NULL },
                /* the relative URI wins over the full one */
                { { "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/r", "AWS_CONTAINER_CREDENTIALS_FULL_URI=https://x/f",
                    NULL },
                  NULL,
                  0,
                  "http://169.254.170.2/r",
                  NULL },
                { { "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials",
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN=fake-token", NULL },
                  NULL,
                  0,
                  "http://169.254.170.23/v1/credentials",
                  "fake-token" },
                { { "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://[fd00:ec2::23]/v1/credentials", token_file_env,
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN=ignored", NULL },
                  NULL,
                  0,
                  "http://[fd00:ec2::23]/v1/credentials",
                  "fake-eks-pod-identity-token" },
                { { "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.2:9/creds", empty_file_env, NULL },
                  NULL,
                  0,
                  "http://127.0.0.2:9/creds",
                  NULL },
                { { "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://[::1]:9/creds", NULL },
                  NULL,
                  0,
                  "http://[::1]:9/creds",
                  NULL },
                { { "AWS_CONTAINER_CREDENTIALS_FULL_URI=https://creds.example.com/x", NULL },
                  NULL,
                  0,
                  "https://creds.example.com/x",
                  NULL },
                /* the token must not go elsewhere in the clear */
                { { "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://10.0.0.1/creds", NULL }, NULL, .r = -EPERM },
                { { "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.169.254/creds", NULL }, NULL, .r = -EPERM },
                { { "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://localhost/creds", NULL }, NULL, .r = -EPERM },
                { { "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://[fd00:ec2::24]/creds", NULL }, NULL, .r = -EPERM },
                { { "AWS_CONTAINER_CREDENTIALS_FULL_URI=ftp://127.0.0.1/creds", NULL }, NULL, .r = -EINVAL },
                { { "AWS_CONTAINER_CREDENTIALS_FULL_URI=not a url", NULL }, NULL, .r = -EINVAL },
                { { "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=v2/no-slash", NULL }, NULL, .r = -EINVAL },
                { { "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/a b", NULL }, NULL, .r = -EINVAL },
                { { "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/r", "AWS_CONTAINER_AUTHORIZATION_TOKEN=a\r\nX-Evil: 1",
                    NULL },
                  NULL,
                  .r = -EINVAL },
                { { "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/r",
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/nonexistent/deliveryd/token", NULL },
                  NULL,
                  .r = -ENOENT },
                { { "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=", "AWS_CONTAINER_CREDENTIALS_FULL_URI=", NULL },
                  NULL,
                  .r = -ENOENT },
                { { NULL }, NULL, .r = -ENOENT },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *url = NULL, *token = NULL;
                int r = aws_container_endpoint((char **) cases[i].env, cases[i].base, &url, &token);

                if (r != cases[i].r)
                        fail_msg("row %zu (%s): got %d, want %d", i, strempty(cases[i].env[0]), r, cases[i].r);
                if (r < 0)
                        continue;
                assert_string_equal(url, cases[i].url);
                assert_true(streq_ptr(token, cases[i].token));
        }
}

static void test_freshness(void **state _unused_) {
        static const struct {
                uint64_t expiration, now, margin;
                AwsCredentialsFreshness want;
        } cases[] = {
                { 0, 1000, 300, AWS_CREDENTIALS_FRESH },         { 0, UINT64_MAX, UINT64_MAX, AWS_CREDENTIALS_FRESH },
                { 1000, 100, 300, AWS_CREDENTIALS_FRESH },       { 1000, 699, 300, AWS_CREDENTIALS_FRESH },
                { 1000, 700, 300, AWS_CREDENTIALS_REFRESH_DUE }, { 1000, 999, 300, AWS_CREDENTIALS_REFRESH_DUE },
                { 1000, 1000, 300, AWS_CREDENTIALS_EXPIRED },    { 1000, 5000, 300, AWS_CREDENTIALS_EXPIRED },
                { 1000, 999, 0, AWS_CREDENTIALS_FRESH },         { 1000, 100, 5000, AWS_CREDENTIALS_REFRESH_DUE },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AwsCredentials c = { .access_key_id = (char *) "A", .expiration_usec = cases[i].expiration };
                assert_int_equal(aws_credentials_freshness(&c, cases[i].now, cases[i].margin), cases[i].want);
        }
        assert_int_equal(aws_credentials_freshness(NULL, 0, 0), AWS_CREDENTIALS_EXPIRED);
}

static void test_new_copy_free(void **state _unused_) {
        _cleanup_(aws_credentials_freep) AwsCredentials *a = NULL, *b = NULL;
        SigV4Credentials v;

        assert_int_equal(aws_credentials_new("ASIAFAKE", "fake/secret", "", 7, AWS_CREDENTIALS_IMDS, &a), 0);
        assert_null(a->session_token);
        aws_credentials_free(a);
        assert_int_equal(aws_credentials_new("ASIAFAKE", "fake/secret", "FAKE-T", 7, AWS_CREDENTIALS_IMDS, &a), 0);
        assert_int_equal(aws_credentials_copy(a, &b), 0);
        assert_ptr_not_equal(a->secret_access_key, b->secret_access_key);
        assert_true(streq(b->secret_access_key, "fake/secret"));
        assert_string_equal(b->session_token, "FAKE-T");
        assert_int_equal(b->expiration_usec, 7);
        assert_int_equal(b->source, AWS_CREDENTIALS_IMDS);
        v = aws_credentials_sigv4(b);
        assert_ptr_equal(v.secret_access_key, b->secret_access_key);
        assert_ptr_equal(v.session_token, b->session_token);

        AwsCredentials *c = NULL;
        assert_int_equal(aws_credentials_new("", "s", NULL, 0, AWS_CREDENTIALS_FILE, &c), -EINVAL);
        assert_int_equal(aws_credentials_new("A", NULL, NULL, 0, AWS_CREDENTIALS_FILE, &c), -EINVAL);
        assert_int_equal(aws_credentials_copy(NULL, &c), -EINVAL);
        assert_null(c);
        assert_null(aws_credentials_free(NULL));
}

static void test_pure_oom(void **state _unused_) {
        static const char json[] = "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIAFAKE\",\"SecretAccessKey\":\"s\","
                                   "\"Token\":\"T\",\"Expiration\":\"2024-03-07T18:00:00Z\"}";
        _cleanup_free_ char *path = NULL;
        unsigned long n;

        write_file(dir, "oom-credentials",
                   "[a]\nx = 1\n[ops]\naws_access_key_id = A\naws_secret_access_key = s\n"
                   "aws_session_token = T\n");
        assert_true(asprintf(&path, "%s/oom-credentials", dir) > 0);
        for (n = 1;; n++) {
                AwsCredentials *c = NULL;
                alloc_fail_after(n);
                int r = aws_credentials_from_file(path, "ops", &c);
                alloc_fail_after(0);
                if (r != -ENOMEM) {
                        assert_int_equal(r, 0);
                        assert_string_equal(c->session_token, "T");
                        aws_credentials_free(c);
                        break;
                }
                assert_null(c);
        }
        assert_true(n > 4);
        for (n = 1;; n++) {
                AwsCredentials *c = NULL;
                alloc_fail_after(n);
                int r = aws_credentials_parse_json(json, strlen(json), AWS_CREDENTIALS_IMDS, &c);
                alloc_fail_after(0);
                if (r != -ENOMEM) {
                        assert_int_equal(r, 0);
                        aws_credentials_free(c);
                        break;
                }
                assert_null(c);
        }
        assert_true(n > 4);
}

/* ---- fake endpoints: IMDSv2 and a container endpoint ------------------- */

typedef enum FakeMode {
        FAKE_OK,
        FAKE_TOKEN_500, /* PUT /latest/api/token fails */
        FAKE_NO_ROLE, /* the role list is 404 */
        FAKE_CREDENTIALS_500,
        FAKE_CREDENTIALS_MALFORMED,
        FAKE_CODE_FAILURE, /* Code is not "Success" */
        FAKE_TOKEN_SLOW, /* the token comes after 500 ms */
} FakeMode;

#define FAKE_IMDS_TOKEN "fake-imds-session-token-AQAEAFAKE=="
#define FAKE_ROLE "deliveryd-fake-role"
#define FAKE_CONTAINER_PATH "/v2/credentials/fake-task-1"
#define FAKE_CONTAINER_TOKEN "fake-container-authorization-token"

typedef struct FakeRequest {
        char method[8];
        char path[128];
        bool ttl_header, token_header_ok, token_header_seen, authorization_ok;
} FakeRequest;

typedef struct Fake {
        int fd;
        unsigned port;
        pthread_t thread;
        pthread_mutex_t lock;
        /* set by the test */
        FakeMode imds_mode, container_mode;
        long expire_in; /* seconds from now for the next credentials served */
        /* kept by the server */
        unsigned served; /* credentials handed out, numbering them */
        FakeRequest requests[64];
        unsigned n_requests;
} Fake;

static Fake fake;

static void fake_set(FakeMode imds, FakeMode container, long expire_in) {
        pthread_mutex_lock(&fake.lock);
        fake.imds_mode = imds;
        fake.container_mode = container;
        fake.expire_in = expire_in;
        pthread_mutex_unlock(&fake.lock);
}

static void fake_reset(void) {
        pthread_mutex_lock(&fake.lock);
        fake.imds_mode = fake.container_mode = FAKE_OK;
        fake.expire_in = 6 * 3600;
        fake.served = 0;
        fake.n_requests = 0;
        pthread_mutex_unlock(&fake.lock);
}

static unsigned fake_n_requests(void) {
        pthread_mutex_lock(&fake.lock);
        unsigned n = fake.n_requests;
        pthread_mutex_unlock(&fake.lock);
        return n;
}

static FakeRequest fake_request(unsigned i) {
        pthread_mutex_lock(&fake.lock);
        FakeRequest r = fake.requests[i];
        pthread_mutex_unlock(&fake.lock);
        return r;
}

static void send_str(int fd, const char *s) {
        size_t n = strlen(s);
        while (n > 0) {
                ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
                if (k <= 0)
                        return;
                s += k;
                n -= (size_t) k;
        }
}

static void reply(int c, int status, const char *body) {
        char head[256];
        snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                 strlen(body));
        send_str(c, head);
        send_str(c, body);
}

static ssize_t read_request(int fd, char *buf, size_t size) {
        size_t len = 0, want = 0;
        char *end = NULL;

        for (;;) {
                ssize_t k;
                if (end && len >= want)
                        return (ssize_t) len;
                if (len + 1 >= size)
                        return -1;
                k = recv(fd, buf + len, size - 1 - len, 0);
                if (k <= 0)
                        return -1;
                len += (size_t) k;
                buf[len] = '\0';
                if (!end && (end = strstr(buf, "\r\n\r\n"))) {
                        const char *cl = strcasestr(buf, "\r\nContent-Length:");
                        want = (size_t) (end + 4 - buf) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
                }
        }
}

/* The value of header name in the request head, copied into out. */
static bool header_value(const char *req, const char *name, char *out, size_t size) {
        char pat[128];
        const char *p, *end = strstr(req, "\r\n\r\n");

        snprintf(pat, sizeof pat, "\r\n%s:", name);
        p = strcasestr(req, pat);
        if (!p || (end && p > end))
                return false;
        p += strlen(pat);
        while (*p == ' ')
                p++;
        snprintf(out, size, "%.*s", (int) strcspn(p, "\r\n"), p);
        return true;
}

static void credentials_json(char *out, size_t size, bool imds) {
        char when[64];
        time_t t;
        struct tm tm;
        unsigned k;

        pthread_mutex_lock(&fake.lock);
        k = ++fake.served;
        t = time(NULL) + fake.expire_in;
        pthread_mutex_unlock(&fake.lock);
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(out, size,
                 "{%s\"AccessKeyId\":\"ASIAFAKE%s%04u\",\"SecretAccessKey\":\"fake/secret/%04u+EXAMPLEKEY\","
                 "\"Token\":\"FAKE-SESSION-TOKEN-%04u\",\"Expiration\":\"%s\"%s}",
                 imds ? "\"Code\":\"Success\",\"LastUpdated\":\"2024-03-07T11:00:00Z\",\"Type\":\"AWS-HMAC\"," : "",
                 imds ? "IMDS" : "CONT", k, k, k, when,
                 imds ? "" : ",\"RoleArn\":\"arn:aws:iam::123456789012:role/fake\"");
}

static void serve(int c) {
        static char buf[64 * 1024];
        char method[8] = "", path[128] = "", value[256], body[1024];
        FakeRequest rec = {};
        FakeMode imds, container;

        if (read_request(c, buf, sizeof buf) < 0 || sscanf(buf, "%7s %127s", method, path) != 2)
                return;
        snprintf(rec.method, sizeof rec.method, "%s", method);
        snprintf(rec.path, sizeof rec.path, "%s", path);
        rec.ttl_header =
                header_value(buf, "X-aws-ec2-metadata-token-ttl-seconds", value, sizeof value) && streq(value, "21600");
        rec.token_header_seen = header_value(buf, "X-aws-ec2-metadata-token", value, sizeof value);
        rec.token_header_ok = rec.token_header_seen && streq(value, FAKE_IMDS_TOKEN);
        rec.authorization_ok =
                header_value(buf, "Authorization", value, sizeof value) && streq(value, FAKE_CONTAINER_TOKEN);
        pthread_mutex_lock(&fake.lock);
        if (fake.n_requests < ELEMENTSOF(fake.requests))
                fake.requests[fake.n_requests] = rec;
        fake.n_requests++;
        imds = fake.imds_mode;
        container = fake.container_mode;
        pthread_mutex_unlock(&fake.lock);

        if (streq(path, "/latest/api/token")) {
                if (!streq(method, "PUT") || !rec.ttl_header)
                        reply(c, 400, "");
                else if (imds == FAKE_TOKEN_500)
                        reply(c, 500, "");
                else {
                        if (imds == FAKE_TOKEN_SLOW)
                                usleep(500 * 1000);
                        reply(c, 200, FAKE_IMDS_TOKEN);
                }
        } else if (strncmp(path, "/latest/meta-data/", 18) == 0) {
                /* IMDSv2 only: without the session token, 401. */
                if (!rec.token_header_ok)
                        reply(c, 401, "");
                else if (streq(path, "/latest/meta-data/iam/security-credentials/"))
                        reply(c, imds == FAKE_NO_ROLE ? 404 : 200, imds == FAKE_NO_ROLE ? "" : FAKE_ROLE);
                else if (streq(path, "/latest/meta-data/iam/security-credentials/" FAKE_ROLE)) {
                        if (imds == FAKE_CREDENTIALS_500)
                                reply(c, 500, "");
                        else if (imds == FAKE_CREDENTIALS_MALFORMED)
                                reply(c, 200, "{\"Code\":\"Success\",\"AccessKeyId\":");
                        else if (imds == FAKE_CODE_FAILURE)
                                reply(c, 200, "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"fake\"}");
                        else {
                                credentials_json(body, sizeof body, true);
                                reply(c, 200, body);
                        }
                } else
                        reply(c, 404, "");
        } else if (streq(path, FAKE_CONTAINER_PATH)) {
                if (!rec.authorization_ok)
                        reply(c, 401, "{\"message\":\"fake: unauthorized\"}");
                else if (container != FAKE_OK)
                        reply(c, 500, "");
                else {
                        credentials_json(body, sizeof body, false);
                        reply(c, 200, body);
                }
        } else
                reply(c, 404, "");
}

static void *fake_main(void *userdata _unused_) {
        for (;;) {
                int c = accept4(fake.fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        return NULL;
                }
                struct timeval tv = { .tv_sec = 10 };
                (void) setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                serve(c);
                close(c);
        }
}

static int bound_socket(unsigned *ret_port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof a;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &l), 0);
        *ret_port = ntohs(a.sin_port);
        return fd;
}

static int setup(void **state _unused_) {
        /* 127.0.0.1, never through a proxy. */
        unsetenv("http_proxy");
        unsetenv("https_proxy");
        unsetenv("HTTPS_PROXY");
        unsetenv("all_proxy");
        unsetenv("ALL_PROXY");
        assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
        dir = make_tmpdir();

        fake.fd = bound_socket(&fake.port);
        assert_int_equal(listen(fake.fd, 64), 0);
        pthread_mutex_init(&fake.lock, NULL);
        fake_reset();
        assert_int_equal(pthread_create(&fake.thread, NULL, fake_main, NULL), 0);
        return 0;
}

static int teardown(void **state _unused_) {
        shutdown(fake.fd, SHUT_RDWR);
        pthread_join(fake.thread, NULL);
        close(fake.fd);
        pthread_mutex_destroy(&fake.lock);
        rm_rf(dir);
        free(dir);
        curl_global_cleanup();
        return 0;
}

/* ---- the provider against the fakes ------------------------------------ */

typedef struct Got {
        unsigned calls;
        int r;
        char id[64];
        bool secret_ok, token_ok;
        uint64_t expiration_usec;
        AwsCredentialsSource source;
        /* what the handler does besides recording */
        AwsCredentialsProvider **free_provider;
        AwsCredentialsWait **free_wait;
} Got;

static void on_credentials(int r, const AwsCredentials *c, void *userdata) {
        Got *g = userdata;

        g->calls++;
        g->r = r;
        if (r == 0) {
                unsigned k = 0;
                assert_non_null(c);
                snprintf(g->id, sizeof g->id, "%s", c->access_key_id);
                /* Compared, never printed. */
                if (sscanf(c->access_key_id, "ASIAFAKE%*4s%4u", &k) == 1) {
                        char want[64];
                        snprintf(want, sizeof want, "fake/secret/%04u+EXAMPLEKEY", k);
                        g->secret_ok = streq(c->secret_access_key, want);
                        snprintf(want, sizeof want, "FAKE-SESSION-TOKEN-%04u", k);
                        g->token_ok = streq_ptr(c->session_token, want);
                }
                g->expiration_usec = c->expiration_usec;
                g->source = c->source;
        } else
                assert_null(c);
        if (g->free_wait)
                *g->free_wait = aws_credentials_wait_free(*g->free_wait);
        if (g->free_provider)
                *g->free_provider = aws_credentials_provider_free(*g->free_provider);
}

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static void run_until_called(sd_event *e, Got *g, uint64_t max_usec) {
        for (uint64_t deadline = mono_usec() + max_usec; g->calls == 0 && mono_usec() < deadline;)
                assert_true(sd_event_run(e, 50 * USEC_PER_MSEC) >= 0);
}

static void run_for(sd_event *e, uint64_t usec) {
        for (uint64_t deadline = mono_usec() + usec; mono_usec() < deadline;)
                assert_true(sd_event_run(e, 20 * USEC_PER_MSEC) >= 0);
}

/* Run until peek() returns something else than -EAGAIN. */
static int run_peek(sd_event *e, AwsCredentialsProvider *p, const AwsCredentials **ret, uint64_t max_usec) {
        int r = -EAGAIN;
        for (uint64_t deadline = mono_usec() + max_usec; mono_usec() < deadline;) {
                r = aws_credentials_provider_peek(p, ret);
                if (r != -EAGAIN)
                        return r;
                assert_true(sd_event_run(e, 50 * USEC_PER_MSEC) >= 0);
        }
        return r;
}

static sd_event *new_loop(void) {
        sd_event *e = NULL;
        assert_int_equal(sd_event_new(&e), 0);
        return e;
}

typedef struct World {
        sd_event *e;
        CurlEvent *ce;
        AwsCredentialsProvider *p;
        char imds_url[64], container_url[64], full_uri[128];
} World;

/* A loop, a client and a provider whose IMDS and container endpoints are
 * the fakes; env is the whole environment it sees. */
static void world_new(World *w, char *const *env, uint64_t margin, uint64_t retry) {
        memset(w, 0, sizeof *w);
        snprintf(w->imds_url, sizeof w->imds_url, "http://127.0.0.1:%u", fake.port);
        snprintf(w->container_url, sizeof w->container_url, "http://127.0.0.1:%u/", fake.port);
        w->e = new_loop();
        assert_int_equal(curl_event_new(w->e, &w->ce), 0);
        AwsCredentialsOptions o = {
                .env = env,
                .imds_url = w->imds_url,
                .container_url = w->container_url,
                .refresh_margin_usec = margin,
                .timeout_usec = 5 * USEC_PER_SEC,
                .retry_usec = retry,
        };
        assert_int_equal(aws_credentials_provider_new(w->e, w->ce, &o, &w->p), 0);
        fake_reset();
}

static void world_free(World *w) {
        w->p = aws_credentials_provider_free(w->p);
        w->ce = curl_event_free(w->ce);
        w->e = sd_event_unref(w->e);
}

static char *const no_env[] = { "HOME=/nonexistent/deliveryd-test", NULL };

static void test_imdsv2_fake_endpoint(void **state _unused_) {
        World w;
        static Got g, again;
        const AwsCredentials *c = NULL;

        world_new(&w, no_env, 0, 0);
        assert_int_equal(aws_credentials_provider_peek(w.p, &c), -EAGAIN); /* starts the fetch */
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &g, NULL), 0);
        assert_int_equal(g.calls, 0); /* never from inside get() */
        run_until_called(w.e, &g, 10 * USEC_PER_SEC);
        assert_int_equal(g.calls, 1);
        assert_int_equal(g.r, 0);
        assert_string_equal(g.id, "ASIAFAKEIMDS0001");
        assert_true(g.secret_ok);
        assert_true(g.token_ok);
        assert_int_equal(g.source, AWS_CREDENTIALS_IMDS);
        assert_true(g.expiration_usec > (uint64_t) (time(NULL) + 5 * 3600) * USEC_PER_SEC);
        assert_int_equal(aws_credentials_provider_source(w.p), AWS_CREDENTIALS_IMDS);
        assert_null(aws_credentials_provider_error(w.p));

        /* IMDSv2: the token PUT with its TTL, then both GETs carrying it. */
        assert_int_equal(fake_n_requests(), 3);
        FakeRequest r0 = fake_request(0), r1 = fake_request(1), r2 = fake_request(2);
        assert_string_equal(r0.method, "PUT");
        assert_string_equal(r0.path, "/latest/api/token");
        assert_true(r0.ttl_header);
        assert_string_equal(r1.method, "GET");
        assert_string_equal(r1.path, "/latest/meta-data/iam/security-credentials/");
        assert_true(r1.token_header_ok);
        assert_string_equal(r2.path, "/latest/meta-data/iam/security-credentials/" FAKE_ROLE);
        assert_true(r2.token_header_ok);

        /* Cached: no more requests, served from the loop. */
        assert_int_equal(aws_credentials_provider_peek(w.p, &c), 0);
        assert_string_equal(c->access_key_id, "ASIAFAKEIMDS0001");
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &again, NULL), 0);
        assert_int_equal(again.calls, 0);
        run_until_called(w.e, &again, 5 * USEC_PER_SEC);
        assert_int_equal(again.r, 0);
        assert_string_equal(again.id, "ASIAFAKEIMDS0001");
        assert_int_equal(fake_n_requests(), 3);

        /* Invalidated: fetched again. */
        static Got after;
        aws_credentials_provider_invalidate(w.p);
        assert_int_equal(aws_credentials_provider_source(w.p), _AWS_CREDENTIALS_SOURCE_INVALID);
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &after, NULL), 0);
        run_until_called(w.e, &after, 10 * USEC_PER_SEC);
        assert_int_equal(after.r, 0);
        assert_string_equal(after.id, "ASIAFAKEIMDS0002");
        assert_int_equal(fake_n_requests(), 6);
        world_free(&w);
}

/* Credentials that expire 4 s from now with a 2 s margin are refreshed by
 * the timer about 2 s from now, with nobody asking. */
static void test_imdsv2_fake_endpoint_refresh_before_expiry(void **state _unused_) {
        World w;
        const AwsCredentials *c = NULL;

        world_new(&w, no_env, 2 * USEC_PER_SEC, 200 * USEC_PER_MSEC);
        fake_set(FAKE_OK, FAKE_OK, 4);
        assert_int_equal(run_peek(w.e, w.p, &c, 10 * USEC_PER_SEC), 0);
        assert_string_equal(c->access_key_id, "ASIAFAKEIMDS0001");
        fake_set(FAKE_OK, FAKE_OK, 3600);

        for (uint64_t deadline = mono_usec() + 8 * USEC_PER_SEC; mono_usec() < deadline;) {
                assert_true(sd_event_run(w.e, 50 * USEC_PER_MSEC) >= 0);
                if (fake_n_requests() >= 6)
                        break;
        }
        run_for(w.e, 100 * USEC_PER_MSEC);
        assert_int_equal(aws_credentials_provider_peek(w.p, &c), 0);
        assert_string_equal(c->access_key_id, "ASIAFAKEIMDS0002");
        assert_int_equal(fake_n_requests(), 6);
        assert_int_equal(aws_credentials_freshness(c, (uint64_t) time(NULL) * USEC_PER_SEC, 2 * USEC_PER_SEC),
                         AWS_CREDENTIALS_FRESH);
        world_free(&w);
}

/* The endpoint hands out a credential that has already expired: refused,
 * and the next attempt after the retry wait gets a fresh one.  Then the
 * cached credential runs out while the endpoint fails: kept while valid,
 * an error once expired, refreshed when the endpoint is back. */
static void test_imdsv2_fake_endpoint_expired_then_refreshed(void **state _unused_) {
        World w;
        static Got stale, fresh, during, expired, back;
        const AwsCredentials *c = NULL;
        const char *err;

        world_new(&w, no_env, 2 * USEC_PER_SEC, 300 * USEC_PER_MSEC);
        fake_set(FAKE_OK, FAKE_OK, -60);
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &stale, NULL), 0);
        run_until_called(w.e, &stale, 10 * USEC_PER_SEC);
        assert_int_equal(stale.r, -ESTALE);
        err = aws_credentials_provider_error(w.p);
        assert_non_null(err);
        assert_non_null(strstr(err, "imds: the credentials returned expired at "));
        assert_null(strstr(err, "fake/secret"));
        assert_null(strstr(err, "FAKE-SESSION-TOKEN"));
        /* within the retry wait: the same answer, no new request */
        assert_int_equal(aws_credentials_provider_peek(w.p, &c), -ESTALE);
        assert_int_equal(fake_n_requests(), 3);

        fake_set(FAKE_OK, FAKE_OK, 5);
        run_for(w.e, 350 * USEC_PER_MSEC);
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &fresh, NULL), 0);
        run_until_called(w.e, &fresh, 10 * USEC_PER_SEC);
        assert_int_equal(fresh.r, 0);
        assert_string_equal(fresh.id, "ASIAFAKEIMDS0002");
        assert_null(aws_credentials_provider_error(w.p));

        /* The endpoint breaks; the refresh (2 s before the expiration)
         * fails and is retried, the cached credential still serves. */
        fake_set(FAKE_CREDENTIALS_500, FAKE_OK, 3600);
        for (uint64_t deadline = mono_usec() + 6 * USEC_PER_SEC;
             mono_usec() < deadline && !aws_credentials_provider_error(w.p);)
                assert_true(sd_event_run(w.e, 50 * USEC_PER_MSEC) >= 0);
        err = aws_credentials_provider_error(w.p);
        assert_non_null(err);
        assert_string_equal(err, "IMDS GET /latest/meta-data/iam/security-credentials/" FAKE_ROLE ": HTTP 500");
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &during, NULL), 0);
        run_until_called(w.e, &during, 5 * USEC_PER_SEC);
        assert_int_equal(during.r, 0);
        assert_string_equal(during.id, "ASIAFAKEIMDS0002");

        /* Past the expiration: the error, no credentials. */
        while (aws_credentials_provider_peek(w.p, &c) == 0)
                assert_true(sd_event_run(w.e, 50 * USEC_PER_MSEC) >= 0);
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &expired, NULL), 0);
        run_until_called(w.e, &expired, 5 * USEC_PER_SEC);
        assert_int_equal(expired.r, -EIO);

        /* Back: the next retry refreshes. */
        fake_set(FAKE_OK, FAKE_OK, 3600);
        for (uint64_t deadline = mono_usec() + 5 * USEC_PER_SEC;
             mono_usec() < deadline && aws_credentials_provider_peek(w.p, &c) != 0;)
                assert_true(sd_event_run(w.e, 50 * USEC_PER_MSEC) >= 0);
        assert_int_equal(aws_credentials_provider_peek(w.p, &c), 0);
        assert_string_equal(c->access_key_id, "ASIAFAKEIMDS0003");
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &back, NULL), 0);
        run_until_called(w.e, &back, 5 * USEC_PER_SEC);
        assert_int_equal(back.r, 0);
        assert_string_equal(back.id, "ASIAFAKEIMDS0003");
        assert_null(aws_credentials_provider_error(w.p));
        world_free(&w);
}

/* Endpoints that fail: every waiter gets the error, the message names the
 * step and never a secret, and the retry wait holds back new requests. */
static void test_imdsv2_fake_endpoint_fails(void **state _unused_) {
        static const struct {
                FakeMode mode;
                int r;
                const char *error;
                unsigned requests;
        } cases[] = {
                { FAKE_TOKEN_500, -EIO, "IMDS PUT /latest/api/token: HTTP 500", 1 },
                { FAKE_NO_ROLE, -ENOKEY, "IMDS: no IAM role is attached to this instance", 2 },
                { FAKE_CREDENTIALS_500, -EIO,
                  "IMDS GET /latest/meta-data/iam/security-credentials/" FAKE_ROLE ": HTTP 500", 3 },
                { FAKE_CREDENTIALS_MALFORMED, -EBADMSG,
                  "IMDS GET /latest/meta-data/iam/security-credentials/" FAKE_ROLE ": malformed credentials", 3 },
                { FAKE_CODE_FAILURE, -EACCES,
                  "IMDS GET /latest/meta-data/iam/security-credentials/" FAKE_ROLE ": Code is not \"Success\"", 3 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                World w;
                static Got a, b, later;
                const AwsCredentials *c = NULL;

                memset(&a, 0, sizeof a);
                memset(&b, 0, sizeof b);
                memset(&later, 0, sizeof later);
                world_new(&w, no_env, 0, 0);
                fake_set(cases[i].mode, FAKE_OK, 3600);
                assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &a, NULL), 0);
                assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &b, NULL), 0);
                run_until_called(w.e, &b, 10 * USEC_PER_SEC);
                assert_int_equal(a.calls, 1);
                assert_int_equal(b.calls, 1);
                if (a.r != cases[i].r || b.r != cases[i].r)
                        fail_msg("row %zu: got %d/%d, want %d", i, a.r, b.r, cases[i].r);
                assert_string_equal(aws_credentials_provider_error(w.p), cases[i].error);
                assert_int_equal(fake_n_requests(), cases[i].requests);
                /* the default retry wait (30 s): answered from memory */
                assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &later, NULL), 0);
                run_until_called(w.e, &later, 5 * USEC_PER_SEC);
                assert_int_equal(later.r, cases[i].r);
                assert_int_equal(aws_credentials_provider_peek(w.p, &c), cases[i].r);
                assert_int_equal(fake_n_requests(), cases[i].requests);
                world_free(&w);
        }

        /* Nobody listens at the IMDS address. */
        unsigned port;
        int fd = bound_socket(&port);
        close(fd);
        char imds[64];
        snprintf(imds, sizeof imds, "http://127.0.0.1:%u", port);
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_(curl_event_freep) CurlEvent *ce = NULL;
        _cleanup_(aws_credentials_provider_freep) AwsCredentialsProvider *p = NULL;
        static Got refused;
        AwsCredentialsOptions o = { .env = no_env, .imds_url = imds };
        assert_int_equal(curl_event_new(e, &ce), 0);
        assert_int_equal(aws_credentials_provider_new(e, ce, &o, &p), 0);
        assert_int_equal(aws_credentials_provider_get(p, on_credentials, &refused, NULL), 0);
        run_until_called(e, &refused, 10 * USEC_PER_SEC);
        assert_int_equal(refused.r, -ECONNREFUSED);
        assert_string_equal(aws_credentials_provider_error(p), "IMDS PUT /latest/api/token: Connection refused");
}

static void test_container_fake_endpoint(void **state _unused_) {
        _cleanup_free_ char *token_file = NULL, *token_file_env = NULL, *full = NULL;

        write_file(dir, "container-token", FAKE_CONTAINER_TOKEN "\n");
        assert_true(asprintf(&token_file, "%s/container-token", dir) > 0);
        assert_true(asprintf(&token_file_env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%s", token_file) > 0);
        assert_true(asprintf(&full, "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:%u" FAKE_CONTAINER_PATH,
                             fake.port) > 0);
        const struct {
                char *env[4];
                FakeMode mode;
                int r;
                unsigned requests;
        } cases[] = {
                /* ECS: the relative URI on the (fake) 169.254.170.2 */
                { { "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=" FAKE_CONTAINER_PATH,
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN=" FAKE_CONTAINER_TOKEN, NULL },
                  FAKE_OK,
                  0,
                  1 },
                /* EKS Pod Identity: a full URI and a token file */
                { { full, token_file_env, NULL }, FAKE_OK, 0, 1 },
                { { full, "AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong-fake-token", NULL }, FAKE_OK, -EACCES, 1 },
                { { full, "AWS_CONTAINER_AUTHORIZATION_TOKEN=" FAKE_CONTAINER_TOKEN, NULL },
                  FAKE_CREDENTIALS_500,
                  -EIO,
                  1 },
                /* refused before any request */
                { { "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://10.1.2.3/creds", NULL }, FAKE_OK, -EPERM, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                World w;
                static Got g;

                memset(&g, 0, sizeof g);
                world_new(&w, cases[i].env, 0, 0);
                fake_set(FAKE_OK, cases[i].mode, 3600);
                assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &g, NULL), 0);
                run_until_called(w.e, &g, 10 * USEC_PER_SEC);
                if (g.r != cases[i].r)
                        fail_msg("row %zu: got %d (%s), want %d", i, g.r, strempty(aws_credentials_provider_error(w.p)),
                                 cases[i].r);
                assert_int_equal(fake_n_requests(), cases[i].requests);
                if (g.r == 0) {
                        assert_string_equal(g.id, "ASIAFAKECONT0001");
                        assert_true(g.secret_ok);
                        assert_true(g.token_ok);
                        assert_int_equal(g.source, AWS_CREDENTIALS_CONTAINER);
                        FakeRequest r = fake_request(0);
                        assert_string_equal(r.method, "GET");
                        assert_string_equal(r.path, FAKE_CONTAINER_PATH);
                        assert_true(r.authorization_ok);
                } else {
                        const char *err = aws_credentials_provider_error(w.p);
                        assert_non_null(err);
                        assert_null(strstr(err, FAKE_CONTAINER_TOKEN));
                        assert_null(strstr(err, "fake-task"));
                }
                world_free(&w);
        }
}

/* The chain's order: the environment, then the file, then the container
 * endpoint, then IMDS; the fakes see requests only when it gets that far. */
static void test_chain_order_fake_endpoints(void **state _unused_) {
        _cleanup_free_ char *file_env = NULL, *home_env = NULL, *full = NULL, *file_home_env = NULL,
                            *file_named_env = NULL;

        assert_true(asprintf(&file_home_env, "HOME=%s/chain-credentials", dir) > 0);
        assert_true(asprintf(&file_named_env, "AWS_SHARED_CREDENTIALS_FILE=%s/chain-credentials/x", dir) > 0);
        write_file(dir, "chain-credentials",
                   "[default]\naws_access_key_id = AKIDFAKEFILE\n"
                   "aws_secret_access_key = fake/file/secret\n");
        assert_true(asprintf(&file_env, "AWS_SHARED_CREDENTIALS_FILE=%s/chain-credentials", dir) > 0);
        assert_true(asprintf(&home_env, "HOME=%s", dir) > 0);
        assert_true(asprintf(&full, "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:%u" FAKE_CONTAINER_PATH,
                             fake.port) > 0);
        const struct {
                char *env[6];
                int r;
                const char *id;
                AwsCredentialsSource source;
                unsigned requests;
        } cases[] = {
                { { "AWS_ACCESS_KEY_ID=AKIDFAKEENV", "AWS_SECRET_ACCESS_KEY=fake/env", file_env, full, NULL },
                  0,
                  "AKIDFAKEENV",
                  AWS_CREDENTIALS_ENVIRONMENT,
                  0 },
                { { file_env, full, NULL }, 0, "AKIDFAKEFILE", AWS_CREDENTIALS_FILE, 0 },
                { { home_env, full, "AWS_CONTAINER_AUTHORIZATION_TOKEN=" FAKE_CONTAINER_TOKEN, NULL },
                  0,
                  "ASIAFAKECONT0001",
                  AWS_CREDENTIALS_CONTAINER,
                  1 }, /* no ~/.aws/credentials in dir */
                { { home_env, NULL }, 0, "ASIAFAKEIMDS0001", AWS_CREDENTIALS_IMDS, 3 },
                /* mistakes stop the chain: no other identity instead */
                { { "AWS_ACCESS_KEY_ID=AKIDFAKEENV", file_env, NULL }, -EINVAL, NULL, 0, 0 },
                { { file_env, "AWS_PROFILE=missing", NULL }, -ENOKEY, NULL, 0, 0 },
                { { home_env, "AWS_PROFILE=ops", NULL }, -ENOKEY, NULL, 0, 0 },
                { { home_env, "AWS_EC2_METADATA_DISABLED=true", NULL }, -ENOKEY, NULL, 0, 0 },
                /* the default path unreadable (HOME is a file here): skipped;
                 * a file named in AWS_SHARED_CREDENTIALS_FILE: an error */
                { { file_home_env, NULL }, 0, "ASIAFAKEIMDS0001", AWS_CREDENTIALS_IMDS, 3 },
                { { file_named_env, NULL }, -ENOTDIR, NULL, 0, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                World w;
                static Got g;
                const AwsCredentials *c = NULL;

                memset(&g, 0, sizeof g);
                world_new(&w, cases[i].env, 0, 0);
                if (cases[i].requests == 0 && cases[i].r == 0) {
                        /* the environment and the file answer at once */
                        assert_int_equal(aws_credentials_provider_peek(w.p, &c), 0);
                        assert_string_equal(c->access_key_id, cases[i].id);
                }
                assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &g, NULL), 0);
                run_until_called(w.e, &g, 10 * USEC_PER_SEC);
                if (g.r != cases[i].r)
                        fail_msg("row %zu: got %d (%s), want %d", i, g.r, strempty(aws_credentials_provider_error(w.p)),
                                 cases[i].r);
                if (g.r == 0) {
                        assert_string_equal(g.id, cases[i].id);
                        assert_int_equal(g.source, cases[i].source);
                } else
                        assert_non_null(aws_credentials_provider_error(w.p));
                assert_int_equal(fake_n_requests(), cases[i].requests);
                world_free(&w);
        }
}

/* Cancel a wait, free the provider in flight, free it from a handler,
 * free one's own wait from its handler. */
static void test_cancel_and_free_fake_endpoint(void **state _unused_) {
        World w;
        static Got cancelled, kept, first, second, self;
        AwsCredentialsWait *wait = NULL, *own = NULL;

        world_new(&w, no_env, 0, 0);
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &cancelled, &wait), 0);
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &kept, NULL), 0);
        wait = aws_credentials_wait_free(wait);
        run_until_called(w.e, &kept, 10 * USEC_PER_SEC);
        run_for(w.e, 50 * USEC_PER_MSEC);
        assert_int_equal(cancelled.calls, 0);
        assert_int_equal(kept.r, 0);

        /* an owned wait, freed by its own handler */
        self.free_wait = &own;
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &self, &own), 0);
        run_until_called(w.e, &self, 5 * USEC_PER_SEC);
        assert_int_equal(self.r, 0);
        assert_null(own);

        /* freed from a handler: the other waiter is not called */
        aws_credentials_provider_invalidate(w.p);
        first.free_provider = &w.p;
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &first, NULL), 0);
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &second, &own), 0);
        run_until_called(w.e, &first, 10 * USEC_PER_SEC);
        assert_null(w.p);
        run_for(w.e, 50 * USEC_PER_MSEC);
        assert_int_equal(first.calls, 1);
        assert_int_equal(second.calls, 0);
        own = aws_credentials_wait_free(own); /* outlived its provider */

        /* freed with a fetch in flight */
        static Got never;
        AwsCredentialsOptions o = { .env = no_env, .imds_url = w.imds_url };
        assert_int_equal(aws_credentials_provider_new(w.e, w.ce, &o, &w.p), 0);
        fake_set(FAKE_TOKEN_SLOW, FAKE_OK, 3600);
        assert_int_equal(aws_credentials_provider_get(w.p, on_credentials, &never, NULL), 0);
        run_for(w.e, 100 * USEC_PER_MSEC);
        assert_int_equal(curl_event_n_pending(w.ce), 1);
        w.p = aws_credentials_provider_free(w.p);
        run_for(w.e, 700 * USEC_PER_MSEC);
        assert_int_equal(never.calls, 0);
        assert_int_equal(curl_event_n_pending(w.ce), 0);
        world_free(&w);

        /* bad arguments */
        AwsCredentialsProvider *p = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_(curl_event_freep) CurlEvent *ce = NULL;
        assert_int_equal(curl_event_new(e, &ce), 0);
        AwsCredentialsOptions bad = { .imds_url = "169.254.169.254" };
        assert_int_equal(aws_credentials_provider_new(e, ce, &bad, &p), -EINVAL);
        AwsCredentialsOptions bad2 = { .container_url = "http://x/ y" };
        assert_int_equal(aws_credentials_provider_new(e, ce, &bad2, &p), -EINVAL);
        assert_int_equal(aws_credentials_provider_new(NULL, ce, NULL, &p), -EINVAL);
        assert_int_equal(aws_credentials_provider_new(e, NULL, NULL, &p), -EINVAL);
        assert_null(p);
        assert_int_equal(aws_credentials_provider_new(e, ce, NULL, &p), 0); /* all defaults */
        assert_int_equal(aws_credentials_provider_get(p, NULL, NULL, NULL), -EINVAL);
        assert_int_equal(aws_credentials_provider_peek(p, NULL), -EINVAL);
        assert_null(aws_credentials_provider_error(p));
        p = aws_credentials_provider_free(p);
        assert_null(aws_credentials_wait_free(NULL));
        aws_credentials_provider_invalidate(NULL);
}

/* Every allocation in turn fails during a whole IMDSv2 fetch: -ENOMEM
 * comes back (or the fetch succeeds), nothing leaks. */
static void test_oom_fake_endpoint(void **state _unused_) {
        unsigned long n;

        for (n = 1;; n++) {
                World w;
                static Got g;
                bool injected;
                int r;

                memset(&g, 0, sizeof g);
                world_new(&w, no_env, 0, 0);
                alloc_fail_after(n);
                r = aws_credentials_provider_get(w.p, on_credentials, &g, NULL);
                if (r >= 0) {
                        run_until_called(w.e, &g, 10 * USEC_PER_SEC);
                        assert_int_equal(g.calls, 1);
                        r = g.r;
                }
                injected = alloc_count() >= n;
                alloc_fail_after(0);
                world_free(&w);
                if (r != -ENOMEM) {
                        if (r != 0)
                                fail_msg("allocation %lu: got %d", n, r);
                        assert_false(injected);
                        assert_string_equal(g.id, "ASIAFAKEIMDS0001");
                        break;
                }
        }
        assert_true(n > 10);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_source_names),
                cmocka_unit_test(test_env),
                cmocka_unit_test(test_file_location),
                cmocka_unit_test(test_file),
                cmocka_unit_test(test_expiration),
                cmocka_unit_test(test_parse_json),
                cmocka_unit_test(test_role_parse),
                cmocka_unit_test(test_container_endpoint),
                cmocka_unit_test(test_freshness),
                cmocka_unit_test(test_new_copy_free),
                cmocka_unit_test(test_pure_oom),
                cmocka_unit_test(test_imdsv2_fake_endpoint),
                cmocka_unit_test(test_imdsv2_fake_endpoint_refresh_before_expiry),
                cmocka_unit_test(test_imdsv2_fake_endpoint_expired_then_refreshed),
                cmocka_unit_test(test_imdsv2_fake_endpoint_fails),
                cmocka_unit_test(test_container_fake_endpoint),
                cmocka_unit_test(test_chain_order_fake_endpoints),
                cmocka_unit_test(test_cancel_and_free_fake_endpoint),
                cmocka_unit_test(test_oom_fake_endpoint),
        };

        alloc_init();
        return cmocka_run_group_tests(tests, setup, teardown);
}
