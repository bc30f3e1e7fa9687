/* SPDX-License-Identifier: MIT */
/*
 * test-sfn.c — the Step Functions client's pure part without the network:
 * request bodies byte for byte against the vectors (sfn/constructed-*-request files),
 * the answer readers on the vectors' responses and errors, the error
 * classification table, the backoff bounds, the 256 KiB limit, the
 * execution ARN, and allocation failure in building and reading.
 */
#include "test-helpers.h"

#include <jansson.h>

#include "sfn.h"

static int setup(void **state _unused_) {
        alloc_init();
        return 0;
}

/* The whole file sfn/name, or NULL (then the test is skipped). */
static char *read_vector(const char *name) {
        char path[4096];
        FILE *f;
        char *buf = calloc(1, 65536);
        size_t n;

        assert_non_null(buf);
        snprintf(path, sizeof path, "%s/sfn/%s", TEST_VECTORS, name);
        f = fopen(path, "re");
        if (!f) {
                free(buf);
                return NULL;
        }
        n = fread(buf, 1, 65535, f);
        buf[n] = 0;
        fclose(f);
        return buf;
}

/* The body of an HTTP message: what follows the first empty line. */
static const char *http_body(const char *msg) {
        const char *p = strstr(msg, "\n\n");

        assert_non_null(p);
        return p + 2;
}

/* The status code of an HTTP response's first line. */
static int http_status(const char *msg) {
        int status = 0;

        assert_int_equal(sscanf(msg, "HTTP/1.1 %d", &status), 1);
        return status;
}

static const char *field(json_t *o, const char *key) {
        const char *v = json_string_value(json_object_get(o, key));

        assert_non_null(v);
        return v;
}

static void test_names(void **state _unused_) {
        for (int a = 0; a < _SFN_ACTION_MAX; a++)
                assert_int_equal(sfn_action_from_string(sfn_action_to_string(a)), a);
        for (int r = 0; r < _SFN_RESULT_MAX; r++)
                assert_int_equal(sfn_result_from_string(sfn_result_to_string(r)), r);
        assert_string_equal(sfn_action_to_string(SFN_SEND_TASK_HEARTBEAT), "SendTaskHeartbeat");
        assert_int_equal(sfn_action_from_string("StopExecution"), _SFN_ACTION_INVALID);
        assert_null(sfn_action_to_string(_SFN_ACTION_MAX));
        assert_null(sfn_result_to_string(_SFN_RESULT_INVALID));
}

/* Every request of the vectors, built from the values it carries, is the
 * same bytes; the headers name the target and the JSON 1.0 type. */
static void test_request_vectors(void **state _unused_) {
        static const struct {
                const char *file;
                SfnAction action;
        } rows[] = {
                { "constructed-start-execution.request.http", SFN_START_EXECUTION },
                { "constructed-send-task-success.request.http", SFN_SEND_TASK_SUCCESS },
                { "constructed-send-task-failure.request.http", SFN_SEND_TASK_FAILURE },
                { "constructed-send-task-heartbeat.request.http", SFN_SEND_TASK_HEARTBEAT },
                { "constructed-describe-execution.request.http", SFN_DESCRIBE_EXECUTION },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_free_ char *msg = read_vector(rows[i].file), *ours = NULL, *target = NULL;
                json_t *o;
                int r;

                if (!msg)
                        skip();
                assert_true(asprintf(&target, "\nX-Amz-Target: AWSStepFunctions.%s\n",
                                     sfn_action_to_string(rows[i].action)) > 0);
                assert_non_null(strstr(msg, target));
                assert_non_null(strstr(msg, "\nContent-Type: " SFN_CONTENT_TYPE "\n"));
                assert_non_null(strstr(msg, "/states/aws4_request"));
                o = json_loads(http_body(msg), 0, NULL);
                assert_non_null(o);
                switch (rows[i].action) {
                case SFN_START_EXECUTION:
                        r = sfn_start_execution_body(field(o, "stateMachineArn"), field(o, "name"), field(o, "input"),
                                                     &ours);
                        break;
                case SFN_SEND_TASK_SUCCESS:
                        r = sfn_send_task_success_body(field(o, "taskToken"), field(o, "output"), &ours);
                        break;
                case SFN_SEND_TASK_FAILURE:
                        r = sfn_send_task_failure_body(field(o, "taskToken"), field(o, "error"), field(o, "cause"),
                                                       &ours);
                        break;
                case SFN_SEND_TASK_HEARTBEAT:
                        r = sfn_send_task_heartbeat_body(field(o, "taskToken"), &ours);
                        break;
                default:
                        r = sfn_describe_execution_body(field(o, "executionArn"), &ours);
                        break;
                }
                assert_int_equal(r, 0);
                assert_string_equal(ours, http_body(msg));
                json_decref(o);
        }
}

/* The execution input re-serialized as StartExecution carries it: the
 * vector's input string comes back the same. */
static void test_input_text(void **state _unused_) {
        _cleanup_free_ char *msg = read_vector("constructed-start-execution.request.http"), *text = NULL;
        json_t *o, *in;

        if (!msg)
                skip();
        o = json_loads(http_body(msg), 0, NULL);
        assert_non_null(o);
        in = json_loads(field(o, "input"), 0, NULL);
        assert_non_null(in);
        assert_int_equal(sfn_input_text(in, &text), 0);
        assert_string_equal(text, field(o, "input"));
        json_decref(in);
        json_decref(o);
        in = json_array();
        assert_int_equal(sfn_input_text(in, &text), -EINVAL);
        json_decref(in);
}

static void test_bounds(void **state _unused_) {
        const char *arn = "arn:aws:states:sa-east-1:123456789012:stateMachine:order";
        _cleanup_free_ char *big = malloc(SFN_INPUT_MAX + 2), *token = malloc(SFN_TOKEN_MAX + 2),
                            *cause = malloc(SFN_CAUSE_MAX + 2), *ok = NULL;
        char *body = NULL;

        assert_non_null(big);
        assert_non_null(token);
        assert_non_null(cause);
        /* exactly 256 KiB goes; one byte more is refused */
        memset(big, 'x', SFN_INPUT_MAX);
        big[SFN_INPUT_MAX] = 0;
        assert_int_equal(sfn_start_execution_body(arn, "7KQ2XM", big, &ok), 0);
        assert_true(strlen(ok) > SFN_INPUT_MAX);
        big[SFN_INPUT_MAX] = 'x';
        big[SFN_INPUT_MAX + 1] = 0;
        assert_int_equal(sfn_start_execution_body(arn, "7KQ2XM", big, &body), -E2BIG);
        assert_int_equal(sfn_send_task_success_body("tok", big, &body), -E2BIG);
        assert_null(body);
        /* an input object that serializes to more than 256 KiB */
        {
                json_t *o = json_pack("{s:s}", "pad", big);
                assert_non_null(o);
                assert_int_equal(sfn_input_text(o, &body), -E2BIG);
                json_decref(o);
        }
        /* names: 1..80 of [A-Za-z0-9_-] */
        assert_int_equal(sfn_start_execution_body(arn, "", "{}", &body), -EINVAL);
        assert_int_equal(sfn_start_execution_body(arn, "a b", "{}", &body), -EINVAL);
        assert_int_equal(sfn_start_execution_body(arn, "x\"y", "{}", &body), -EINVAL);
        assert_int_equal(sfn_start_execution_body("", "7KQ2XM", "{}", &body), -EINVAL);
        assert_true(sfn_name_is_valid("sms-12065550100-cae173d2"));
        assert_false(
                sfn_name_is_valid("012345678901234567890123456789012345678901234567890123456789012345678901234567890"));
        /* tokens: 1..2048 bytes; error and cause bounded */
        memset(token, 't', SFN_TOKEN_MAX + 1);
        token[SFN_TOKEN_MAX + 1] = 0;
        assert_int_equal(sfn_send_task_heartbeat_body(token, &body), -EINVAL);
        assert_int_equal(sfn_send_task_heartbeat_body("", &body), -EINVAL);
        token[SFN_TOKEN_MAX] = 0;
        assert_int_equal(sfn_send_task_heartbeat_body(token, &body), 0);
        free(body);
        body = NULL;
        memset(cause, 'c', SFN_CAUSE_MAX + 1);
        cause[SFN_CAUSE_MAX + 1] = 0;
        assert_int_equal(sfn_send_task_failure_body("tok", "E", cause, &body), -EINVAL);
        assert_null(body);
        /* error and cause may be left out */
        assert_int_equal(sfn_send_task_failure_body("tok", NULL, NULL, &body), 0);
        assert_string_equal(body, "{\n  \"taskToken\": \"tok\"\n}\n");
        free(body);
        assert_int_equal(sfn_describe_execution_body("", &body), -EINVAL);
}

static void test_execution_arn(void **state _unused_) {
        static const struct {
                const char *machine, *name, *want;
        } rows[] = {
                { "arn:aws:states:us-east-1:123456789012:stateMachine:OrderConversation", "sms-12065550100-cae173d2",
                  "arn:aws:states:us-east-1:123456789012:execution:OrderConversation:sms-12065550100-cae173d2" },
                { "arn:aws-cn:states:cn-north-1:1:stateMachine:o", "7KQ2XM",
                  "arn:aws-cn:states:cn-north-1:1:execution:o:7KQ2XM" },
                { "arn:aws:states:us-east-1:1:stateMachine:", "7KQ2XM", NULL },
                { "states:us-east-1:1:stateMachine:o", "7KQ2XM", NULL },
                { "arn:aws:states:us-east-1:1:activity:o", "7KQ2XM", NULL },
                { "arn:aws:states:us-east-1:1:stateMachine:o", "a/b", NULL },
        };
        _cleanup_free_ char *msg = read_vector("constructed-describe-execution.request.http");

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                char *arn = NULL;
                int r = sfn_execution_arn(rows[i].machine, rows[i].name, &arn);

                if (!rows[i].want) {
                        assert_int_equal(r, -EINVAL);
                        assert_null(arn);
                        continue;
                }
                assert_int_equal(r, 0);
                assert_string_equal(arn, rows[i].want);
                /* the vectors' DescribeExecution names that very ARN */
                if (i == 0 && msg)
                        assert_non_null(strstr(msg, arn));
                free(arn);
        }
}

static void test_answer_vectors(void **state _unused_) {
        _cleanup_free_ char *start = read_vector("constructed-start-execution.response.json"),
                            *desc = read_vector("constructed-describe-execution.response.json"),
                            *success = read_vector("constructed-send-task-success.response.json"), *arn = NULL;
        json_t *d = NULL;

        if (!start || !desc || !success)
                skip();
        assert_int_equal(sfn_parse_start_execution(start, strlen(start), &arn), 0);
        assert_string_equal(
                arn, "arn:aws:states:us-east-1:123456789012:execution:OrderConversation:sms-12065550100-cae173d2");
        assert_int_equal(sfn_parse_describe_execution(desc, strlen(desc), &d), 0);
        assert_string_equal(json_string_value(json_object_get(d, "status")), "RUNNING");
        assert_string_equal(json_string_value(json_object_get(d, "name")), "sms-12065550100-cae173d2");
        assert_string_equal(json_string_value(json_object_get(d, "input")), "{\"channel\": \"sms\"}");
        assert_true(json_real_value(json_object_get(d, "startDate")) > 1704067200.0);
        /* fields we do not use are not kept */
        assert_null(json_object_get(d, "redriveStatus"));
        assert_null(json_object_get(d, "inputDetails"));
        json_decref(d);
        /* SendTaskSuccess answers {}: nothing to read, a 200 is done */
        assert_string_equal(success, "{}\n");
        assert_int_equal(sfn_classify(SFN_SEND_TASK_SUCCESS, 200, NULL), SFN_RESULT_OK);
        /* answers that are not what they should be */
        static const char *const bad_start[] = { "",
                                                 "[]",
                                                 "{}",
                                                 "{\"executionArn\": 7}",
                                                 "{\"executionArn\": \"\"}",
                                                 "{\"executionArn\": \"a\", \"executionArn\": \"b\"}" };
        for (size_t i = 0; i < ELEMENTSOF(bad_start); i++) {
                char *a = NULL;
                assert_int_equal(sfn_parse_start_execution(bad_start[i], strlen(bad_start[i]), &a), -EBADMSG);
                assert_null(a);
        }
        static const char *const bad_desc[] = {
                "{\"executionArn\": \"a\", \"name\": \"n\", \"status\": \"DANCING\"}",
                "{\"executionArn\": \"a\", \"name\": \"n\"}",
                "{\"executionArn\": \"a\", \"status\": \"RUNNING\"}",
                "{\"executionArn\": \"a\", \"name\": \"n\", \"status\": \"RUNNING\", \"output\": {}}",
                "{\"executionArn\": \"a\", \"name\": \"n\", \"status\": \"RUNNING\", \"startDate\": \"today\"}",
                "not json",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_desc); i++) {
                json_t *x = NULL;
                assert_int_equal(sfn_parse_describe_execution(bad_desc[i], strlen(bad_desc[i]), &x), -EBADMSG);
                assert_null(x);
        }
}

/* The vectors' errors: the code after '#', the message, and what each
 * means for the call that got it. */
static void test_error_vectors(void **state _unused_) {
        static const struct {
                const char *file;
                SfnAction action;
                const char *code;
                const char *message_start;
                SfnResult result;
                bool consumed;
        } rows[] = {
                { "constructed-error-execution-already-exists.http", SFN_START_EXECUTION, "ExecutionAlreadyExists",
                  "Execution Already Exists: 'arn:aws:states:", SFN_RESULT_OK, false },
                { "constructed-error-invalid-token.http", SFN_SEND_TASK_SUCCESS, "InvalidToken",
                  "Invalid Token: ", SFN_RESULT_PERMANENT, true },
                { "constructed-error-task-does-not-exist.http", SFN_SEND_TASK_FAILURE, "TaskDoesNotExist",
                  "Task Does Not Exist: ", SFN_RESULT_PERMANENT, true },
                { "constructed-error-task-timed-out.http", SFN_SEND_TASK_HEARTBEAT, "TaskTimedOut",
                  "Task Timed Out: ", SFN_RESULT_PERMANENT, true },
                { "constructed-error-throttling.http", SFN_START_EXECUTION, "ThrottlingException", "Rate exceeded",
                  SFN_RESULT_RETRY, false },
                { "constructed-error-validation.http", SFN_START_EXECUTION, "ValidationException",
                  "1 validation error detected: Value at 'name'", SFN_RESULT_PERMANENT, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_free_ char *msg = read_vector(rows[i].file), *code = NULL, *message = NULL;
                const char *body;

                if (!msg)
                        skip();
                assert_non_null(strstr(msg, "Content-Type: " SFN_CONTENT_TYPE "\n"));
                body = http_body(msg);
                assert_int_equal(sfn_parse_error(body, strlen(body), &code, &message), 0);
                assert_string_equal(code, rows[i].code);
                assert_memory_equal(message, rows[i].message_start, strlen(rows[i].message_start));
                assert_int_equal(sfn_classify(rows[i].action, http_status(msg), code), rows[i].result);
                assert_int_equal(sfn_token_consumed(code), rows[i].consumed);
        }
}

static void test_parse_error_bounds(void **state _unused_) {
        static const struct {
                const char *body;
                const char *code, *message;
        } rows[] = {
                { "{\"__type\": \"InvalidSignatureException\", \"message\": \"The request signature we calculated does "
                  "not match\"}",
                  "InvalidSignatureException", "The request signature we calculated does not match" },
                { "{\"__type\": \"ThrottlingException:http://internal.amazon.com/coral/\", \"Message\": \"x\"}",
                  "ThrottlingException", "x" },
                { "{\"__type\": \"a#b c\", \"message\": \"line\\none\"}", "", "line one" },
                { "<html>503</html>", "", "" },
                { "{}", "", "" },
                { "{\"__type\": 5, \"message\": null}", "", "" },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_free_ char *code = NULL, *message = NULL;

                assert_int_equal(sfn_parse_error(rows[i].body, strlen(rows[i].body), &code, &message), 0);
                assert_string_equal(code, rows[i].code);
                assert_string_equal(message, rows[i].message);
        }
        /* a long message is cut */
        {
                char buf[2048];
                _cleanup_free_ char *code = NULL, *message = NULL;
                int n = snprintf(buf, sizeof buf, "{\"__type\": \"X\", \"message\": \"");
                memset(buf + n, 'm', 1500);
                snprintf(buf + n + 1500, sizeof buf - (size_t) n - 1500, "\"}");
                assert_int_equal(sfn_parse_error(buf, strlen(buf), &code, &message), 0);
                assert_int_equal(strlen(message), SFN_MESSAGE_MAX);
        }
}

static void test_classify(void **state _unused_) {
        static const struct {
                SfnAction action;
                int status;
                const char *code;
                SfnResult want;
        } rows[] = {
                { SFN_START_EXECUTION, 200, NULL, SFN_RESULT_OK },
                { SFN_START_EXECUTION, 400, "ExecutionAlreadyExists", SFN_RESULT_OK },
                { SFN_SEND_TASK_SUCCESS, 400, "ExecutionAlreadyExists", SFN_RESULT_PERMANENT },
                { SFN_START_EXECUTION, 400, "ThrottlingException", SFN_RESULT_RETRY },
                { SFN_SEND_TASK_SUCCESS, 400, "ThrottlingException", SFN_RESULT_RETRY },
                { SFN_START_EXECUTION, 500, "InternalFailure", SFN_RESULT_RETRY },
                { SFN_START_EXECUTION, 503, "ServiceUnavailable", SFN_RESULT_RETRY },
                { SFN_START_EXECUTION, 502, NULL, SFN_RESULT_RETRY },
                { SFN_START_EXECUTION, 429, "", SFN_RESULT_RETRY },
                { SFN_START_EXECUTION, -ECONNREFUSED, NULL, SFN_RESULT_RETRY },
                { SFN_START_EXECUTION, -ETIMEDOUT, NULL, SFN_RESULT_RETRY },
                { SFN_START_EXECUTION, 403, "InvalidSignatureException", SFN_RESULT_LATER },
                { SFN_START_EXECUTION, 400, "UnrecognizedClientException", SFN_RESULT_LATER },
                { SFN_START_EXECUTION, 403, "ExpiredTokenException", SFN_RESULT_LATER },
                { SFN_START_EXECUTION, 403, NULL, SFN_RESULT_LATER },
                { SFN_SEND_TASK_SUCCESS, 400, "InvalidToken", SFN_RESULT_PERMANENT },
                { SFN_SEND_TASK_SUCCESS, 400, "TaskDoesNotExist", SFN_RESULT_PERMANENT },
                { SFN_SEND_TASK_HEARTBEAT, 400, "TaskTimedOut", SFN_RESULT_PERMANENT },
                { SFN_SEND_TASK_SUCCESS, 400, "InvalidOutput", SFN_RESULT_PERMANENT },
                { SFN_START_EXECUTION, 400, "ValidationException", SFN_RESULT_PERMANENT },
                { SFN_START_EXECUTION, 400, "StateMachineDoesNotExist", SFN_RESULT_PERMANENT },
                { SFN_START_EXECUTION, 400, "InvalidArn", SFN_RESULT_PERMANENT },
                { SFN_START_EXECUTION, 400, "InvalidExecutionInput", SFN_RESULT_PERMANENT },
                { SFN_DESCRIBE_EXECUTION, 400, "ExecutionDoesNotExist", SFN_RESULT_PERMANENT },
                { SFN_START_EXECUTION, 400, "", SFN_RESULT_PERMANENT },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                SfnResult got = sfn_classify(rows[i].action, rows[i].status, rows[i].code);

                if (got != rows[i].want)
                        fail_msg("row %zu: %s %d %s: %s, want %s", i, sfn_action_to_string(rows[i].action),
                                 rows[i].status, strempty(rows[i].code), sfn_result_to_string(got),
                                 sfn_result_to_string(rows[i].want));
        }
        assert_false(sfn_token_consumed(NULL));
        assert_false(sfn_token_consumed("ValidationException"));
}

/* Full jitter: anywhere in [0, w], w doubling from the base up to the cap. */
static void test_backoff(void **state _unused_) {
        uint64_t w = SFN_BACKOFF_BASE_USEC;

        for (unsigned n = 1; n <= 40; n++) {
                assert_int_equal(sfn_backoff_usec(n, 0, 0), 0);
                assert_int_equal(sfn_backoff_usec(n, 0, UINT64_MAX), UINT64_MAX % (w + 1));
                assert_true(sfn_backoff_usec(n, 0, w) == w);
                assert_true(sfn_backoff_usec(n, 0, w + 1) == 0);
                for (uint64_t r = 1; r < 1000003; r += 99991)
                        assert_true(sfn_backoff_usec(n, 0, r * 7919) <= w);
                w = MIN(w * 2, SFN_BACKOFF_MAX_USEC);
        }
        /* another cap (the store's queue uses minutes) */
        assert_int_equal(sfn_backoff_usec(30, 5 * 60 * USEC_PER_SEC, 5 * 60 * USEC_PER_SEC), 5 * 60 * USEC_PER_SEC);
        assert_int_equal(sfn_backoff_usec(30, 5 * 60 * USEC_PER_SEC, 5 * 60 * USEC_PER_SEC + 1), 0);
        assert_int_equal(sfn_backoff_usec(1, 0, SFN_BACKOFF_BASE_USEC), SFN_BACKOFF_BASE_USEC);
        assert_int_equal(sfn_backoff_usec(2, 0, 2 * SFN_BACKOFF_BASE_USEC), 2 * SFN_BACKOFF_BASE_USEC);
}

static int build_bodies(void *userdata _unused_) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL, *arn = NULL, *in = NULL;
        json_t *o = json_pack("{s:s,s:[{s:s,s:i}]}", "id", "7KQ2XM", "items", "sku", "pz-calabresa", "qty", 2);
        int r;

        if (!o)
                return -ENOMEM;
        r = sfn_input_text(o, &in);
        json_decref(o);
        if (r < 0)
                return r;
        if ((r = sfn_start_execution_body("arn:aws:states:us-east-1:1:stateMachine:o", "7KQ2XM", in, &a)) < 0 ||
            (r = sfn_send_task_success_body("tok", "{\"event\":\"paid\"}", &b)) < 0 ||
            (r = sfn_send_task_failure_body("tok", "E", "cause", &c)) < 0 ||
            (r = sfn_send_task_heartbeat_body("tok", &d)) < 0 ||
            (r = sfn_execution_arn("arn:aws:states:us-east-1:1:stateMachine:o", "7KQ2XM", &arn)) < 0 ||
            (r = sfn_describe_execution_body(arn, &e)) < 0)
                return r;
        return 0;
}

static int read_answers(void *userdata) {
        const char *const *v = userdata;
        _cleanup_free_ char *arn = NULL, *code = NULL, *message = NULL;
        json_t *d = NULL;
        int r;

        if ((r = sfn_parse_start_execution(v[0], strlen(v[0]), &arn)) < 0 ||
            (r = sfn_parse_describe_execution(v[1], strlen(v[1]), &d)) < 0)
                return r;
        json_decref(d);
        return sfn_parse_error(v[2], strlen(v[2]), &code, &message);
}

static void test_oom(void **state _unused_) {
        _cleanup_free_ char *start = read_vector("constructed-start-execution.response.json"),
                            *desc = read_vector("constructed-describe-execution.response.json"),
                            *err = read_vector("constructed-error-validation.http");
        const char *v[3];

        assert_true(oom_loop(build_bodies, NULL, 0) > 10);
        if (!start || !desc || !err)
                skip();
        v[0] = start;
        v[1] = desc;
        v[2] = http_body(err);
        assert_true(oom_loop(read_answers, (void *) v, 0) > 5);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),         cmocka_unit_test(test_request_vectors),
                cmocka_unit_test(test_input_text),    cmocka_unit_test(test_bounds),
                cmocka_unit_test(test_execution_arn), cmocka_unit_test(test_answer_vectors),
                cmocka_unit_test(test_error_vectors), cmocka_unit_test(test_parse_error_bounds),
                cmocka_unit_test(test_classify),      cmocka_unit_test(test_backoff),
                cmocka_unit_test(test_oom),
        };

        return cmocka_run_group_tests(tests, setup, NULL);
}
