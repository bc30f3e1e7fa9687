/* SPDX-License-Identifier: MIT */
/*
 * test-sigv4.c — the SigV4 signer.  Every case of the AWS SigV4 test suite
 * in the shared vectors, parsed at run time: the canonical request, the
 * string to sign and the Authorization value compared byte for byte (the
 * two cases with known errata from vectors/sigv4/errata, and the published
 * versions of those checked for what they are).  Then the daemon's own
 * requests — Bedrock Converse with a ':' in the model id, Step Functions
 * StartExecution, an SNS Query-protocol Publish, End User Messaging SMS,
 * session tokens — against what botocore's signer computes for them
 * (tests/data/sigv4/botocore-expected.py), the canonical URI and query
 * rules one row per case, refused inputs, and every allocation failure.
 */
#include "test-helpers.h"

#include <dirent.h>
#include <errno.h>
#include <strings.h>
#include <unistd.h>

#include "alloc.h"
#include "sigv4.h"

#define SUITE_DIR TEST_VECTORS "/sigv4/aws-sig-v4-test-suite"
#define ERRATA_DIR TEST_VECTORS "/sigv4/errata"
/* Cases in the suite: a walk that finds fewer has lost some. */
#define SUITE_CASES 31

/* The suite's parameters (vectors/sigv4/README.md). */
#define SUITE_AKID "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define SUITE_NOW_USEC ((uint64_t) 1440938160 * USEC_PER_SEC)

/* ---- the test suite's files --------------------------------------------- */

static char *pathf(const char *fmt, ...) _printf_(1, 2);
static char *pathf(const char *fmt, ...) {
        va_list ap;
        char *p = NULL;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&p, fmt, ap);
        va_end(ap);
        assert_true(n > 0);
        return p;
}

static char *read_text(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;

        if (!f)
                return NULL;
        _cleanup_fclose_ FILE *m = open_memstream(&buf, &size);
        assert_non_null(m);
        for (int c; (c = fgetc(f)) != EOF;)
                fputc(c, m);
        assert_int_equal(fclose(TAKE_PTR(m)), 0);
        return buf;
}

typedef struct SuiteRequest {
        char *method, *path, *query;
        char *names[32], *values[32];
        SigV4Header headers[32];
        size_t n_headers;
        const char *body;
        size_t body_len;
        char *amz_date, *token;
} SuiteRequest;

static void suite_request_done(SuiteRequest *r) {
        free(r->method);
        free(r->path);
        free(r->query);
        for (size_t i = 0; i < r->n_headers; i++) {
                free(r->names[i]);
                free(r->values[i]);
        }
        free(r->amz_date);
        free(r->token);
        memset(r, 0, sizeof *r);
}

/* "METHOD TARGET HTTP/1.1", "Name:value" lines (a line starting with white
 * space continues the previous value), a blank line, the body.  The target
 * may hold spaces and raw UTF-8 (get-space, get-utf8): it ends at the last
 * " HTTP/".  X-Amz-Date and X-Amz-Security-Token are taken out, since the
 * signer adds them from its time and credentials. */
static void parse_request(const char *text, SuiteRequest *r) {
        const char *eol = strchrnul(text, '\n'), *sp = strchr(text, ' '), *ver = NULL, *q, *line;

        memset(r, 0, sizeof *r);
        assert_true(sp && sp < eol);
        for (const char *p = sp; p && p < eol; p = strstr(p + 1, " HTTP/"))
                if (p > sp)
                        ver = p;
        assert_non_null(ver);
        r->method = strndup(text, (size_t) (sp - text));
        q = memchr(sp + 1, '?', (size_t) (ver - sp - 1));
        r->path = strndup(sp + 1, (size_t) ((q ?: ver) - sp - 1));
        r->query = q ? strndup(q + 1, (size_t) (ver - q - 1)) : strdup("");

        for (line = *eol ? eol + 1 : eol; *line; line = *eol ? eol + 1 : eol) {
                size_t n;

                eol = strchrnul(line, '\n');
                n = (size_t) (eol - line);
                if (n > 0 && line[n - 1] == '\r')
                        n--;
                if (n == 0) {
                        r->body = *eol ? eol + 1 : eol;
                        r->body_len = strlen(r->body);
                        break;
                }
                if (line[0] == ' ' || line[0] == '\t') {
                        char *v = NULL;
                        assert_true(r->n_headers > 0);
                        assert_true(asprintf(&v, "%s\n%.*s", r->values[r->n_headers - 1], (int) n, line) > 0);
                        free(r->values[r->n_headers - 1]);
                        r->values[r->n_headers - 1] = v;
                        continue;
                }
                const char *colon = memchr(line, ':', n);
                assert_non_null(colon);
                assert_true(r->n_headers < ELEMENTSOF(r->names));
                r->names[r->n_headers] = strndup(line, (size_t) (colon - line));
                r->values[r->n_headers] = strndup(colon + 1, n - (size_t) (colon + 1 - line));
                r->n_headers++;
        }

        for (size_t i = 0; i < r->n_headers;) {
                char **take = strcasecmp(r->names[i], "X-Amz-Date") == 0       ? &r->amz_date
                        : strcasecmp(r->names[i], "X-Amz-Security-Token") == 0 ? &r->token
                                                                               : NULL;
                if (!take) {
                        i++;
                        continue;
                }
                *take = r->values[i];
                free(r->names[i]);
                memmove(r->names + i, r->names + i + 1, (r->n_headers - i - 1) * sizeof(char *));
                memmove(r->values + i, r->values + i + 1, (r->n_headers - i - 1) * sizeof(char *));
                r->n_headers--;
        }
        for (size_t i = 0; i < r->n_headers; i++)
                r->headers[i] = (SigV4Header){ r->names[i], r->values[i] };
}

/* The value of the first "Name:" line of a signed request, or NULL. */
static char *sreq_header(const char *sreq, const char *name) {
        size_t n = strlen(name);

        for (const char *line = sreq; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
                if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
                        const char *v = line + n + 1;
                        return strndup(v, strcspn(v, "\r\n"));
                }
        return NULL;
}

static bool same(const char *what, const char *name, const char *got, const char *want) {
        if (streq_ptr(got, want))
                return true;
        print_message("%s: %s differs\n--- want\n%s\n--- got\n%s\n---\n", name, what, strempty(want), strempty(got));
        return false;
}

typedef struct SuiteTally {
        unsigned cases, passed;
} SuiteTally;

/* Sign one case and compare; dir holds NAME.req, .creq, .sts, .authz
 * (.sreq from sreq_dir tells whether a session token was added after
 * signing, the post-sts-header-after case). */
static bool run_case(const char *name, const char *dir, const char *sreq_dir) {
        _cleanup_free_ char *req = NULL, *creq = NULL, *sts = NULL, *authz = NULL, *sreq = NULL, *token = NULL;
        _cleanup_(sigv4_signature_freep) SigV4Signature *s = NULL;
        SuiteRequest r;
        bool ok = true;
        int k;

#define LOAD(var, d, ext)                                                                                              \
        do {                                                                                                           \
                _cleanup_free_ char *_path = pathf("%s/%s" ext, d, name);                                              \
                var = read_text(_path);                                                                                \
                if (!var) {                                                                                            \
                        print_message("%s: cannot read %s\n", name, _path);                                            \
                        return false;                                                                                  \
                }                                                                                                      \
        } while (false)
        LOAD(req, dir, ".req");
        LOAD(creq, dir, ".creq");
        LOAD(sts, dir, ".sts");
        LOAD(authz, dir, ".authz");
        LOAD(sreq, sreq_dir, ".sreq");
#undef LOAD

        parse_request(req, &r);
        if (!same("X-Amz-Date", name, r.amz_date, SUITE_DATE)) {
                suite_request_done(&r);
                return false;
        }
        /* A token in the signed request but not in the request to sign was
         * added after signing. */
        token = sreq_header(sreq, "X-Amz-Security-Token");
        bool token_after = token && !r.token;

        SigV4Request sr = {
                .method = r.method,
                .path = r.path,
                .query = r.query,
                .headers = r.headers,
                .n_headers = r.n_headers,
                .body = r.body,
                .body_len = r.body_len,
                .region = "us-east-1",
                .service = "service",
                .flags = token_after ? SIGV4_TOKEN_UNSIGNED : 0,
        };
        SigV4Credentials c = { SUITE_AKID, SUITE_SECRET, r.token ?: token };
        k = sigv4_sign(&sr, &c, SUITE_NOW_USEC, &s);
        if (k < 0) {
                print_message("%s: sigv4_sign() failed: %s\n", name, strerror(-k));
                suite_request_done(&r);
                return false;
        }
        ok = same("canonical request", name, sigv4_signature_canonical_request(s), creq) && ok;
        ok = same("string to sign", name, sigv4_signature_string_to_sign(s), sts) && ok;
        ok = same("Authorization", name, sigv4_signature_authorization(s), authz) && ok;
        if (c.session_token) {
                _cleanup_free_ char *want = NULL;
                assert_true(asprintf(&want, "X-Amz-Security-Token: %s", c.session_token) > 0);
                ok = same("token header", name, sigv4_signature_headers(s)[1], want) && ok;
        }
        suite_request_done(&r);
        return ok;
}

static bool is_dir(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int only_dirs(const struct dirent *d) {
        return d->d_name[0] != '.';
}

/* Each directory NAME holding NAME.req is a case; others are groups
 * (normalize-path/, post-sts-token/) to walk into. */
static void walk_suite(const char *dir, SuiteTally *t) {
        struct dirent **names = NULL;
        int n = scandir(dir, &names, only_dirs, alphasort);

        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *sub = pathf("%s/%s", dir, names[i]->d_name);

                if (is_dir(sub)) {
                        _cleanup_free_ char *req = pathf("%s/%s.req", sub, names[i]->d_name),
                                            *errata = pathf("%s/%s", ERRATA_DIR, names[i]->d_name);
                        if (access(req, R_OK) == 0) {
                                /* The two cases with errata: the
                                 * self-consistent files from errata/. */
                                bool ok = run_case(names[i]->d_name, is_dir(errata) ? errata : sub, sub);
                                print_message("%-40s %s%s\n", names[i]->d_name, ok ? "ok" : "FAILED",
                                              is_dir(errata) ? " (errata)" : "");
                                t->cases++;
                                t->passed += ok;
                        } else
                                walk_suite(sub, t);
                }
                free(names[i]);
        }
        free(names);
}

static void test_aws_suite(void **state _unused_) {
        SuiteTally t = {};

        walk_suite(SUITE_DIR, &t);
        print_message("AWS SigV4 test suite: %u of %u cases pass\n", t.passed, t.cases);
        assert_int_equal(t.cases, SUITE_CASES);
        assert_int_equal(t.passed, t.cases);
}

/* The published versions of the two cases with errata: our canonical
 * request matches the published .creq (which signs content-length), but
 * the published .sts and .authz belong to the canonical request without
 * it — they are byte for byte the errata's. */
static void test_aws_suite_published_errata(void **state _unused_) {
        static const char *const cases[] = { "post-x-www-form-urlencoded", "post-x-www-form-urlencoded-parameters" };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *req = NULL, *creq = NULL, *sts = NULL, *errata_sts = NULL;
                _cleanup_(sigv4_signature_freep) SigV4Signature *s = NULL;
                SuiteRequest r;

#define LOAD(var, dir, ext)                                                                                            \
        do {                                                                                                           \
                _cleanup_free_ char *_path = pathf("%s/%s/%s" ext, dir, cases[i], cases[i]);                           \
                assert_non_null(var = read_text(_path));                                                               \
        } while (false)
                LOAD(req, SUITE_DIR, ".req");
                LOAD(creq, SUITE_DIR, ".creq");
                LOAD(sts, SUITE_DIR, ".sts");
                LOAD(errata_sts, ERRATA_DIR, ".sts");
#undef LOAD

                parse_request(req, &r);
                SigV4Request sr = { .method = r.method,
                                    .path = r.path,
                                    .query = r.query,
                                    .headers = r.headers,
                                    .n_headers = r.n_headers,
                                    .body = r.body,
                                    .body_len = r.body_len,
                                    .region = "us-east-1",
                                    .service = "service" };
                SigV4Credentials c = { SUITE_AKID, SUITE_SECRET, NULL };
                assert_int_equal(sigv4_sign(&sr, &c, SUITE_NOW_USEC, &s), 0);
                assert_string_equal(sigv4_signature_canonical_request(s), creq);
                assert_string_not_equal(sigv4_signature_string_to_sign(s), sts);
                assert_string_equal(sts, errata_sts);
                suite_request_done(&r);
        }
}

/* ---- the daemon's own requests ------------------------------------------ */

#define OWN_NOW_USEC ((uint64_t) 1709812800 * USEC_PER_SEC) /* 2024-03-07T12:00:00Z */
#define OWN_TOKEN "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+EXAMPLE+TOKEN/with/slashes+and+pluses=="

/* The bodies of tests/data/sigv4/botocore-expected.py, from the shared
 * vectors' bedrock/, sfn/ and sms/ requests. */
#define CONVERSE_BODY                                                                                                  \
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"What is the most popular song on WZPZ?\"}]}],"     \
        "\"inferenceConfig\":{\"maxTokens\":512,\"temperature\":0.2}}"
#define SFN_BODY                                                                                                       \
        "{\"stateMachineArn\":\"arn:aws:states:us-east-1:123456789012:stateMachine:OrderConversation\","               \
        "\"name\":\"sms-12065550100-cae173d2\","                                                                       \
        "\"input\":\"{\\\"channel\\\": \\\"sms\\\", \\\"from\\\": \\\"+12065550100\\\", \\\"text\\\": \\\"I want 2 "   \
        "pizzas\\\"}\"}"
#define SNS_BODY                                                                                                       \
        "Action=Publish&Version=2010-03-31&PhoneNumber=%2B12065550100"                                                 \
        "&Message=Your%20order%201234%20has%20shipped."                                                                \
        "&MessageAttributes.entry.1.Name=AWS.SNS.SMS.SMSType"                                                          \
        "&MessageAttributes.entry.1.Value.DataType=String"                                                             \
        "&MessageAttributes.entry.1.Value.StringValue=Transactional"
#define SMS_BODY                                                                                                       \
        "{\"DestinationPhoneNumber\":\"+12065550100\",\"MessageBody\":\"Your order 1234 has shipped.\","               \
        "\"MessageType\":\"TRANSACTIONAL\"}"

typedef struct OwnCase {
        const char *name, *service, *path;
        SigV4Header headers[4];
        size_t n_headers;
        const char *body;
        const char *token;
        const char *creq; /* botocore's */
        const char *authz; /* botocore's */
} OwnCase;

static const OwnCase own_cases[] = {
        /* The model id's ':' is sent as %3A (as every AWS SDK sends it) and
         * signed as %253A: the path segment encoded a second time. */
        { "bedrock-converse",
          "bedrock",
          "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
          { { "Host", "bedrock-runtime.us-east-1.amazonaws.com" },
            { "Content-Type", "application/json" },
            { "Accept", "application/json" } },
          3,
          CONVERSE_BODY,
          NULL,
          "POST\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n\naccept:application/json\n"
          "content-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date:20240307T120000Z\n"
          "\naccept;content-type;host;x-amz-date\nfcffd5e8924b4f15722622ab4b02a0eb306b89b2676921e34937c246cc372bba",
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240307/us-east-1/bedrock/aws4_request, "
          "SignedHeaders=accept;content-type;host;x-amz-date, "
          "Signature=3a02811145a7fc7d28f31ad326932690e51ba003869f4f77a41313c1d67a29b9" },
        /* Sent raw (':' is allowed in a path segment), it is signed as %3A. */
        { "bedrock-converse-raw-colon",
          "bedrock",
          "/model/anthropic.claude-3-haiku-20240307-v1:0/converse",
          { { "Host", "bedrock-runtime.us-east-1.amazonaws.com" },
            { "Content-Type", "application/json" },
            { "Accept", "application/json" } },
          3,
          CONVERSE_BODY,
          NULL,
          "POST\n/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse\n\naccept:application/json\n"
          "content-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date:20240307T120000Z\n"
          "\naccept;content-type;host;x-amz-date\nfcffd5e8924b4f15722622ab4b02a0eb306b89b2676921e34937c246cc372bba",
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240307/us-east-1/bedrock/aws4_request, "
          "SignedHeaders=accept;content-type;host;x-amz-date, "
          "Signature=d88a5d1cab698e06fdad737e21074526a0373802d61d72f22bca9cb45c984b9a" },
        { "sfn-start-execution",
          "states",
          "/",
          { { "Host", "states.us-east-1.amazonaws.com" },
            { "Content-Type", "application/x-amz-json-1.0" },
            { "X-Amz-Target", "AWSStepFunctions.StartExecution" } },
          3,
          SFN_BODY,
          NULL,
          "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:states.us-east-1.amazonaws.com\n"
          "x-amz-date:20240307T120000Z\nx-amz-target:AWSStepFunctions.StartExecution\n\n"
          "content-type;host;x-amz-date;x-amz-target\n9bfbe0e7f3b7c31aaf428e50cea4335368be0e2b557a580edb973d0c80ca215d",
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240307/us-east-1/states/aws4_request, "
          "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
          "Signature=012289aaad714ba5e2919323b56a0ca6591927e0b59660622cd5fe91fe3001b1" },
        /* Query protocol: the parameters are the body, not the query. */
        { "sns-publish",
          "sns",
          "/",
          { { "Host", "sns.us-east-1.amazonaws.com" },
            { "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" } },
          2,
          SNS_BODY,
          NULL,
          "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:sns.us-east-1.amazonaws.com\n"
          "x-amz-date:20240307T120000Z\n\ncontent-type;host;x-amz-date\n"
          "e39906a43870c06e3f79d2deb86bf8f812929a35856420cfb6409db5ef171b43",
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240307/us-east-1/sns/aws4_request, "
          "SignedHeaders=content-type;host;x-amz-date, "
          "Signature=a547c446ecf33737b8310d192b254c3904d533ede560d44a55dfc81e5fd6acc1" },
        { "sns-publish-token",
          "sns",
          "/",
          { { "Host", "sns.us-east-1.amazonaws.com" },
            { "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" } },
          2,
          SNS_BODY,
          OWN_TOKEN,
          "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:sns.us-east-1.amazonaws.com\n"
          "x-amz-date:20240307T120000Z\nx-amz-security-token:" OWN_TOKEN "\n\n"
          "content-type;host;x-amz-date;x-amz-security-token\n"
          "e39906a43870c06e3f79d2deb86bf8f812929a35856420cfb6409db5ef171b43",
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240307/us-east-1/sns/aws4_request, "
          "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
          "Signature=cbe838f1928eeb8408abaef844c277c535a4ea675970288092b3cb398f77b7d3" },
        { "sms-voice-send-text",
          "sms-voice",
          "/",
          { { "Host", "sms-voice.us-east-1.amazonaws.com" },
            { "Content-Type", "application/x-amz-json-1.0" },
            { "X-Amz-Target", "PinpointSMSVoiceV2.SendTextMessage" } },
          3,
          SMS_BODY,
          OWN_TOKEN,
          "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:sms-voice.us-east-1.amazonaws.com\n"
          "x-amz-date:20240307T120000Z\nx-amz-security-token:" OWN_TOKEN "\n"
          "x-amz-target:PinpointSMSVoiceV2.SendTextMessage\n\n"
          "content-type;host;x-amz-date;x-amz-security-token;x-amz-target\n"
          "bb5165ff06c2815dc399cae5462b490a635d5c8fc05fae6597253157fcdbefd1",
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240307/us-east-1/sms-voice/aws4_request, "
          "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, "
          "Signature=b7ea7eacfeb83136cffec3e1fb5bf6f1af5b901063df4fb7cec3bde54094ff9c" },
};

static int sign_own(const OwnCase *oc, uint64_t now_usec, SigV4Signature **ret) {
        SigV4Request r = {
                .method = "POST",
                .path = oc->path,
                .headers = oc->headers,
                .n_headers = oc->n_headers,
                .body = oc->body,
                .body_len = strlen(oc->body),
                .region = "us-east-1",
                .service = oc->service,
        };
        SigV4Credentials c = { SUITE_AKID, SUITE_SECRET, oc->token };

        return sigv4_sign(&r, &c, now_usec, ret);
}

static void test_own_requests(void **state _unused_) {
        for (size_t i = 0; i < ELEMENTSOF(own_cases); i++) {
                const OwnCase *oc = &own_cases[i];
                _cleanup_(sigv4_signature_freep) SigV4Signature *s = NULL;
                _cleanup_free_ char *authorization = NULL, *token = NULL;
                char *const *h, *const *all;
                size_t n = 0;

                /* Sub-second parts of the time are not signed. */
                assert_int_equal(sign_own(oc, OWN_NOW_USEC + 999999, &s), 0);
                if (!streq(sigv4_signature_canonical_request(s), oc->creq) ||
                    !streq(sigv4_signature_authorization(s), oc->authz))
                        fail_msg("%s:\n%s\n%s", oc->name, sigv4_signature_canonical_request(s),
                                 sigv4_signature_authorization(s));

                /* What goes into CurlRequest.headers. */
                h = sigv4_signature_headers(s);
                assert_true(asprintf(&authorization, "Authorization: %s", oc->authz) > 0);
                assert_string_equal(h[n++], "X-Amz-Date: 20240307T120000Z");
                if (oc->token) {
                        assert_true(asprintf(&token, "X-Amz-Security-Token: %s", oc->token) > 0);
                        assert_string_equal(h[n++], token);
                }
                assert_string_equal(h[n++], authorization);
                assert_null(h[n]);

                all = sigv4_signature_all_headers(s);
                for (size_t j = 0; j < oc->n_headers; j++) {
                        char want[512];
                        snprintf(want, sizeof want, "%s: %s", oc->headers[j].name, oc->headers[j].value);
                        assert_string_equal(all[j], want);
                }
                for (size_t j = 0; j < n; j++)
                        assert_string_equal(all[oc->n_headers + j], h[j]);
                assert_null(all[oc->n_headers + n]);
        }
}

/* The canonical URI of the Bedrock request, on its own line. */
static void test_bedrock_canonical_uri(void **state _unused_) {
        _cleanup_(sigv4_signature_freep) SigV4Signature *s = NULL;
        _cleanup_free_ char *uri = NULL;
        const char *creq;

        assert_int_equal(sign_own(&own_cases[0], OWN_NOW_USEC, &s), 0);
        creq = sigv4_signature_canonical_request(s);
        static const char want[] = "POST\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n\n";
        assert_true(strncmp(creq, want, strlen(want)) == 0);
        /* libcurl 7.88 signs the path as sent, "%3A": the signature AWS
         * rejects.  S3's rules (one encoding) would do the same. */
        assert_int_equal(sigv4_canonical_uri("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", true, &uri),
                         0);
        assert_string_equal(uri, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
}

/* Signed token (the default), unsigned token, X-Amz-Content-Sha256, a
 * precomputed payload hash, the redacted debug string. */
static void test_token_and_flags(void **state _unused_) {
        SigV4Header headers[] = { { "Host", "sns.us-east-1.amazonaws.com" } };
        SigV4Credentials c = { SUITE_AKID, SUITE_SECRET, OWN_TOKEN };
        SigV4Request r = { .method = "GET",
                           .path = "/",
                           .headers = headers,
                           .n_headers = 1,
                           .region = "us-east-1",
                           .service = "sns" };
        SigV4Signature *s = NULL;
        char *d;

        assert_int_equal(sigv4_sign(&r, &c, OWN_NOW_USEC, &s), 0);
        assert_non_null(strstr(sigv4_signature_canonical_request(s), "\nx-amz-security-token:" OWN_TOKEN "\n"));
        assert_non_null(
                strstr(sigv4_signature_authorization(s), "SignedHeaders=host;x-amz-date;x-amz-security-token,"));
        assert_string_equal(sigv4_signature_headers(s)[1], "X-Amz-Security-Token: " OWN_TOKEN);
        d = sigv4_signature_debug_string(s);
        assert_non_null(d);
        assert_null(strstr(d, "EXAMPLE+TOKEN"));
        assert_non_null(strstr(d, "\nx-amz-security-token:<redacted>\n"));
        assert_true(strncmp(d, "CanonicalRequest:\nGET\n/\n", 24) == 0);
        assert_non_null(strstr(d, "\nStringToSign:\nAWS4-HMAC-SHA256\n20240307T120000Z\n"));
        free(d);
        s = sigv4_signature_free(s);

        r.flags = SIGV4_TOKEN_UNSIGNED;
        assert_int_equal(sigv4_sign(&r, &c, OWN_NOW_USEC, &s), 0);
        assert_null(strstr(sigv4_signature_canonical_request(s), "x-amz-security-token"));
        assert_non_null(strstr(sigv4_signature_authorization(s), "SignedHeaders=host;x-amz-date,"));
        assert_string_equal(sigv4_signature_headers(s)[1], "X-Amz-Security-Token: " OWN_TOKEN);
        s = sigv4_signature_free(s);

        /* No token: no header. */
        c.session_token = "";
        r.flags = SIGV4_CONTENT_SHA256;
        assert_int_equal(sigv4_sign(&r, &c, OWN_NOW_USEC, &s), 0);
        assert_string_equal(sigv4_signature_headers(s)[1],
                            "X-Amz-Content-Sha256: "
                            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_non_null(
                strstr(sigv4_signature_canonical_request(s),
                       "\nx-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
                       "x-amz-date:20240307T120000Z\n\nhost;x-amz-content-sha256;x-amz-date\n"));
        assert_true(strncmp(sigv4_signature_headers(s)[2], "Authorization: ", 15) == 0);
        assert_null(sigv4_signature_headers(s)[3]);
        s = sigv4_signature_free(s);

        r.payload_hash = SIGV4_UNSIGNED_PAYLOAD;
        r.body = "ignored";
        r.body_len = 7;
        assert_int_equal(sigv4_sign(&r, &c, OWN_NOW_USEC, &s), 0);
        assert_string_equal(sigv4_signature_headers(s)[1], "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD");
        assert_non_null(strstr(sigv4_signature_canonical_request(s), "x-amz-date\nUNSIGNED-PAYLOAD"));
        s = sigv4_signature_free(s);
}

/* ---- the rules, one row per case ---------------------------------------- */

static void test_canonical_uri(void **state _unused_) {
        static const struct {
                const char *path;
                bool s3;
                int r;
                const char *want;
        } cases[] = {
                { NULL, false, 0, "/" },
                { "", false, 0, "/" },
                { "/", false, 0, "/" },
                { "//", false, 0, "/" },
                { "/./", false, 0, "/" },
                { "/example/..", false, 0, "/" },
                { "/example1/example2/../..", false, 0, "/" },
                { "//example//", false, 0, "/example/" },
                { "/./example", false, 0, "/example" },
                { "/a/b/../c", false, 0, "/a/c" },
                { "/../a", false, 0, "/a" },
                { "/a/.", false, 0, "/a" },
                { "/a/", false, 0, "/a/" },
                { "/a/%3A", false, 0, "/a/%253A" },
                { "/documents%20and%20settings/", false, 0, "/documents%2520and%2520settings/" },
                { "/a b", false, 0, "/a%20b" },
                { "/\xe1\x88\xb4", false, 0, "/%E1%88%B4" },
                { "/-._~0123456789AZaz", false, 0, "/-._~0123456789AZaz" },
                { "/a:b@c!$&'()*+,;=", false, 0, "/a%3Ab%40c%21%24%26%27%28%29%2A%2B%2C%3B%3D" },
                { "/%zz", false, 0, "/%25zz" }, /* not decoded: any '%' is encoded again */
                /* S3: not normalised, encoded once */
                { "/my-object//example//photo.user", true, 0, "/my-object//example//photo.user" },
                { "/a/./b/../c", true, 0, "/a/./b/../c" },
                { "/a%3Ab", true, 0, "/a%3Ab" },
                { "/a:b", true, 0, "/a%3Ab" },
                { "/a%7e%7E", true, 0, "/a~~" },
                { "/a%2fb", true, 0, "/a/b" },
                { "/a b", true, 0, "/a%20b" },
                { "/a%zz", true, -EINVAL, NULL },
                { "/a%4", true, -EINVAL, NULL },
                { "/a%", true, -EINVAL, NULL },
                /* refused */
                { "a", false, -EINVAL, NULL },
                { "*", false, -EINVAL, NULL },
                { "/a?b", false, -EINVAL, NULL },
                { "/a#b", false, -EINVAL, NULL },
                { "/a\nb", false, -EINVAL, NULL },
                { "/a\tb", false, -EINVAL, NULL },
                { "/a\x7f", false, -EINVAL, NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *got = NULL;
                int r = sigv4_canonical_uri(cases[i].path, cases[i].s3, &got);

                if (r != cases[i].r || (r == 0 && !streq(got, cases[i].want)))
                        fail_msg("%s (s3=%d): got %d '%s', want %d '%s'", strempty(cases[i].path), cases[i].s3, r,
                                 strempty(got), cases[i].r, strempty(cases[i].want));
        }
}

static void test_canonical_query(void **state _unused_) {
        static const struct {
                const char *query;
                int r;
                const char *want;
        } cases[] = {
                { NULL, 0, "" },
                { "", 0, "" },
                { "Param1=value1", 0, "Param1=value1" },
                { "Param2=value2&Param1=value1", 0, "Param1=value1&Param2=value2" },
                { "Param1=value2&Param1=Value1", 0, "Param1=Value1&Param1=value2" },
                { "Param1=value2&Param1=value1", 0, "Param1=value1&Param1=value2" },
                { "b=1&B=2&a=3", 0, "B=2&a=3&b=1" }, /* byte order: upper case first */
                { "a", 0, "a=" },
                { "a=", 0, "a=" },
                { "b=&a", 0, "a=&b=" },
                { "a=1&&b=2&", 0, "a=1&b=2" },
                { "&", 0, "" },
                { "=x", 0, "=x" },
                { "%7e=%7E", 0, "~=~" },
                { "a=b%2fc", 0, "a=b%2Fc" },
                { "a=b/c:d", 0, "a=b%2Fc%3Ad" },
                { "\xe1\x88\xb4=bar", 0, "%E1%88%B4=bar" },
                { "a=x+y", 0, "a=x%2By" },
                { "a=x%20y&a=x y", 0, "a=x%20y&a=x%20y" },
                { "a=b=c", 0, "a=b%3Dc" },
                { "a%20b=1&a=2", 0, "a=2&a%20b=1" }, /* sorted by the encoded name */
                { "%00=x", 0, "%00=x" },
                { "-._~0123456789AZaz=-._~", 0, "-._~0123456789AZaz=-._~" },
                { "a=%zz", -EINVAL, NULL },
                { "a=%4", -EINVAL, NULL },
                { "a%=1", -EINVAL, NULL },
                { "a=\t", -EINVAL, NULL },
                { "a=1#f", -EINVAL, NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *got = NULL;
                int r = sigv4_canonical_query(cases[i].query, &got);

                if (r != cases[i].r || (r == 0 && !streq(got, cases[i].want)))
                        fail_msg("'%s': got %d '%s', want %d '%s'", strempty(cases[i].query), r, strempty(got),
                                 cases[i].r, strempty(cases[i].want));
        }
}

static void test_uri_encode(void **state _unused_) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        assert_int_equal(sigv4_uri_encode("a/b c\0d", 7, true, &a), 0);
        assert_string_equal(a, "a/b%20c%00d");
        assert_int_equal(sigv4_uri_encode("a/b", 3, false, &b), 0);
        assert_string_equal(b, "a%2Fb");
        assert_int_equal(sigv4_uri_encode("", 0, false, &c), 0);
        assert_string_equal(c, "");
}

/* Header values: Trimall, folded lines, duplicates, empty values, sort. */
static void test_canonical_headers(void **state _unused_) {
        static const struct {
                SigV4Header headers[4];
                size_t n;
                const char *want; /* the canonical headers and signed headers */
        } cases[] = {
                { { { "Host", "h" }, { "X-A", "  a \t  b  " } }, 2, "host:h\nx-a:a b\nx-amz-date:" },
                { { { "Host", "h" }, { "X-A", "" } }, 2, "host:h\nx-a:\nx-amz-date:" },
                { { { "Host", "h" }, { "X-A", "   " } }, 2, "host:h\nx-a:\nx-amz-date:" },
                { { { "Host", "h" }, { "X-A", "1" }, { "x-a", "2" }, { "X-A", " 3 " } },
                  4,
                  "host:h\nx-a:1,2,3\nx-amz-date:" },
                { { { "Host", "h" }, { "X-A", "1\r\n 2\r\n\t3" } }, 2, "host:h\nx-a:1,2,3\nx-amz-date:" },
                { { { "X-Z", "z" }, { "x-b", "b" }, { "HOST", "H" } }, 3, "host:H\nx-amz-date:" },
                { { { "Host", "h" }, { "X-A", "\"quoted   string\"" } }, 2, "host:h\nx-a:\"quoted string\"\n" },
                { { { "Host", " h " }, { "X-A_B.c", "v" } }, 2, "host:h\nx-a_b.c:v\nx-amz-date:" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(sigv4_signature_freep) SigV4Signature *s = NULL;
                SigV4Request r = { .method = "GET",
                                   .headers = cases[i].headers,
                                   .n_headers = cases[i].n,
                                   .region = "us-east-1",
                                   .service = "sns" };
                SigV4Credentials c = { SUITE_AKID, SUITE_SECRET, NULL };

                assert_int_equal(sigv4_sign(&r, &c, OWN_NOW_USEC, &s), 0);
                if (!strstr(sigv4_signature_canonical_request(s), cases[i].want))
                        fail_msg("row %zu: '%s' not in\n%s", i, cases[i].want, sigv4_signature_canonical_request(s));
        }

        /* Names sorted, each once, in SignedHeaders. */
        SigV4Header h[] = { { "X-Z", "z" }, { "x-b", "b" }, { "HOST", "H" }, { "x-B", "b2" } };
        SigV4Request r = { .method = "GET", .headers = h, .n_headers = 4, .region = "us-east-1", .service = "sns" };
        SigV4Credentials c = { SUITE_AKID, SUITE_SECRET, NULL };
        _cleanup_(sigv4_signature_freep) SigV4Signature *s = NULL;
        assert_int_equal(sigv4_sign(&r, &c, OWN_NOW_USEC, &s), 0);
        assert_non_null(strstr(sigv4_signature_canonical_request(s),
                               "\nhost:H\nx-amz-date:20240307T120000Z\nx-b:b,b2\nx-z:z\n\nhost;x-amz-date;x-b;x-z\n"));
        /* all_headers keeps the request's own order and spelling */
        assert_string_equal(sigv4_signature_all_headers(s)[0], "X-Z: z");
        assert_string_equal(sigv4_signature_all_headers(s)[2], "HOST: H");
}

static void test_refused(void **state _unused_) {
        SigV4Header host = { "Host", "example.amazonaws.com" };
        static const struct {
                const char *what;
                SigV4Header extra; /* besides Host, when name is set */
                bool no_host, two_hosts;
                const char *method, *region, *service, *akid, *secret, *token, *payload_hash;
                bool body_null;
                unsigned flags;
                uint64_t now_usec;
                int r;
        } cases[] = {
                { "no Host", .no_host = true, .r = -EINVAL },
                { "two Hosts", .two_hosts = true, .r = -EINVAL },
                { "empty Host", .no_host = true, .extra = { "Host", "  " }, .r = -EINVAL },
                { "Authorization given", .extra = { "Authorization", "x" }, .r = -EINVAL },
                { "X-Amz-Date given", .extra = { "x-amz-date", "20150830T123600Z" }, .r = -EINVAL },
                { "token given", .extra = { "X-Amz-Security-Token", "t" }, .r = -EINVAL },
                { "content hash given", .extra = { "X-Amz-Content-SHA256", "x" }, .r = -EINVAL },
                { "name with space", .extra = { "Bad Name", "x" }, .r = -EINVAL },
                { "name with colon", .extra = { "Bad:", "x" }, .r = -EINVAL },
                { "empty name", .extra = { "", "x" }, .r = -EINVAL },
                { "control in value", .extra = { "X-A", "a\x01" }, .r = -EINVAL },
                { "NULL value", .extra = { "X-A", NULL }, .r = -EINVAL },
                { "lower-case method", .method = "get", .r = -EINVAL },
                { "method with space", .method = "GE T", .r = -EINVAL },
                { "empty region", .region = "", .r = -EINVAL },
                { "region with slash", .region = "us/east-1", .r = -EINVAL },
                { "service with space", .service = "s ns", .r = -EINVAL },
                { "key id with slash", .akid = "AKID/X", .r = -EINVAL },
                { "key id with comma", .akid = "AKID,X", .r = -EINVAL },
                { "empty key id", .akid = "", .r = -EINVAL },
                { "empty secret", .secret = "", .r = -EINVAL },
                { "token with CRLF", .token = "abc\r\nX-Evil: 1", .r = -EINVAL },
                { "short payload hash", .payload_hash = "abc", .r = -EINVAL },
                { "upper-case payload hash",
                  .payload_hash = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", .r = -EINVAL },
                { "body length without body", .body_null = true, .r = -EINVAL },
                { "unknown flag", .flags = 1U << 7, .r = -EINVAL },
                { "year 10000", .now_usec = (uint64_t) 253402300800 * USEC_PER_SEC, .r = -ERANGE },
                { "year 9999", .now_usec = (uint64_t) 253402300799 * USEC_PER_SEC, .r = 0 },
                { "the epoch", .now_usec = 1, .r = 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(sigv4_signature_freep) SigV4Signature *s = NULL;
                SigV4Header headers[3];
                size_t n = 0;

                if (!cases[i].no_host)
                        headers[n++] = host;
                if (cases[i].two_hosts)
                        headers[n++] = host;
                if (cases[i].extra.name)
                        headers[n++] = cases[i].extra;
                SigV4Request r = { .method = cases[i].method ?: "POST",
                                   .path = "/",
                                   .headers = headers,
                                   .n_headers = n,
                                   .body = cases[i].body_null ? NULL : "x",
                                   .body_len = 1,
                                   .payload_hash = cases[i].payload_hash,
                                   .region = cases[i].region ?: "us-east-1",
                                   .service = cases[i].service ?: "states",
                                   .flags = cases[i].flags };
                SigV4Credentials c = { cases[i].akid ?: SUITE_AKID, cases[i].secret ?: SUITE_SECRET, cases[i].token };
                int k = sigv4_sign(&r, &c, cases[i].now_usec ?: OWN_NOW_USEC, &s);

                if (k != cases[i].r)
                        fail_msg("%s: got %d, want %d", cases[i].what, k, cases[i].r);
                assert_true(k < 0 ? !s : !!s);
        }

        SigV4Request r = { .method = "GET", .headers = &host, .n_headers = 1, .region = "us-east-1", .service = "sns" };
        SigV4Credentials c = { SUITE_AKID, SUITE_SECRET, NULL };
        SigV4Signature *s = NULL;
        assert_int_equal(sigv4_sign(NULL, &c, OWN_NOW_USEC, &s), -EINVAL);
        assert_int_equal(sigv4_sign(&r, NULL, OWN_NOW_USEC, &s), -EINVAL);
        assert_int_equal(sigv4_sign(&r, &c, OWN_NOW_USEC, NULL), -EINVAL);
        r.path = "no-slash";
        assert_int_equal(sigv4_sign(&r, &c, OWN_NOW_USEC, &s), -EINVAL);
        r.path = "/";
        r.query = "a=%g0";
        assert_int_equal(sigv4_sign(&r, &c, OWN_NOW_USEC, &s), -EINVAL);
        assert_null(s);
        assert_null(sigv4_signature_free(NULL));
}

/* Every allocation in turn fails: -ENOMEM and nothing leaks (ASan, valgrind),
 * until the signature comes out whole and right. */
static void test_oom(void **state _unused_) {
        const OwnCase *oc = &own_cases[5]; /* a session token and a target header */
        unsigned long n;

        for (n = 1;; n++) {
                SigV4Signature *s = NULL;
                bool injected;
                int r;

                alloc_fail_after(n);
                r = sign_own(oc, OWN_NOW_USEC, &s);
                injected = alloc_count() >= n;
                alloc_fail_after(0);
                if (r != -ENOMEM) {
                        assert_int_equal(r, 0);
                        assert_false(injected);
                        assert_string_equal(sigv4_signature_canonical_request(s), oc->creq);
                        assert_string_equal(sigv4_signature_authorization(s), oc->authz);
                        sigv4_signature_free(s);
                        break;
                }
                assert_null(s);
        }
        assert_true(n > 10);

        /* the debug string, too */
        _cleanup_(sigv4_signature_freep) SigV4Signature *s = NULL;
        assert_int_equal(sign_own(oc, OWN_NOW_USEC, &s), 0);
        for (n = 1;; n++) {
                char *d;

                alloc_fail_after(n);
                d = sigv4_signature_debug_string(s);
                alloc_fail_after(0);
                if (d) {
                        assert_non_null(strstr(d, "<redacted>"));
                        free(d);
                        break;
                }
        }
        assert_true(n > 1);

        /* the building blocks */
        for (n = 1;; n++) {
                char *u = NULL, *q = NULL;
                int r1, r2;

                alloc_fail_after(n);
                r1 = sigv4_canonical_uri("/a/b/../%3A/c d", false, &u);
                r2 = sigv4_canonical_query("b=2&a=%7e&c", &q);
                alloc_fail_after(0);
                if (r1 == 0 && r2 == 0) {
                        assert_string_equal(u, "/a/%253A/c%20d");
                        assert_string_equal(q, "a=~&b=2&c=");
                        free(u);
                        free(q);
                        break;
                }
                assert_true(r1 == -ENOMEM || r2 == -ENOMEM);
                free(u);
                free(q);
        }
}

int main(void) {
        const struct CMUnitTest pure[] = {
                cmocka_unit_test(test_own_requests),
                cmocka_unit_test(test_bedrock_canonical_uri),
                cmocka_unit_test(test_token_and_flags),
                cmocka_unit_test(test_canonical_uri),
                cmocka_unit_test(test_canonical_query),
                cmocka_unit_test(test_uri_encode),
                cmocka_unit_test(test_canonical_headers),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_oom),
        };
        const struct CMUnitTest suite[] = {
                cmocka_unit_test(test_aws_suite),
                cmocka_unit_test(test_aws_suite_published_errata),
        };
        int r;

        alloc_init();
        r = cmocka_run_group_tests(pure, NULL, NULL);
        if (access(SUITE_DIR, R_OK) == 0 && access(ERRATA_DIR, R_OK) == 0)
                return r != 0 ? r : cmocka_run_group_tests(suite, NULL, NULL);

        print_message("%s not found: the AWS SigV4 test suite was not run\n", SUITE_DIR);
        return r != 0 ? r : 77; /* automake: SKIP */
}
