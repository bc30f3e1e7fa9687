/* SPDX-License-Identifier: MIT */
/*
 * test-asl.c — the interpreter's API: definitions refused at load with a
 * message naming the state, an execution serialised, freed and restored
 * after every event giving the same run as one never interrupted, the
 * task callbacks (unknown tokens, heartbeats), FULL jitter bounds, and
 * every allocation failing in turn.  The conformance of the semantics is
 * tests/asl/, through deliveryctl asl run.
 */
#include "test-helpers.h"

#include <errno.h>

#include "alloc.h"
#include "asl-run.h"
#include "asl.h"

#define SEC USEC_PER_SEC
#define T0 (1767225600ULL * SEC)

static const struct {
        const char *definition, *error;
} load_errors[] = {
        { "[]", "the definition must be a JSON object" },
        { "{\"States\": {}}", "StartAt is missing" },
        { "{\"StartAt\": \"A\", \"States\": {}}", "States must be a non-empty object" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Nap\", \"End\": true}}}",
          "State 'A': unknown state type 'Nap'" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Pass\", \"Next\": \"B\"}}}",
          "State 'A': Next names a state 'B' that does not exist" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Pass\", \"Next\": \"A\", \"End\": true}}}",
          "State 'A': Next and End are exclusive" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Succeed\", \"End\": true}}}",
          "State 'A': field 'End' is not allowed in a Succeed state" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Task\", \"Resource\": "
          "\"arn:aws:states:::sns:publish\", "
          "\"End\": true}}}",
          "State 'A': unsupported Resource 'arn:aws:states:::sns:publish'" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Task\", \"Resource\": "
          "\"arn:aws:lambda:us-east-1:1:function:\", \"End\": true}}}",
          "is not a Lambda function ARN" },
        { "{\"QueryLanguage\": \"JSONata\", \"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Pass\", \"End\": "
          "true}}}",
          "QueryLanguage JSONata is not supported" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Pass\", \"Assign\": {\"x\": 1}, \"End\": true}}}",
          "State 'A': Assign (workflow variables) is not supported" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Wait\", \"End\": true}}}",
          "State 'A': a Wait needs exactly one of Seconds" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Wait\", \"Timestamp\": \"tomorrow\", \"End\": true}}}",
          "State 'A': Timestamp must be an RFC 3339 timestamp" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Choice\", \"Choices\": []}}}",
          "State 'A': a Choice needs a non-empty Choices array" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Fail\", \"Error\": \"E\", \"ErrorPath\": \"$.e\"}}}",
          "State 'A': Error and ErrorPath are exclusive" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Parallel\", \"Branches\": [], \"End\": true}}}",
          "State 'A': a Parallel needs a non-empty Branches array" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Map\", \"End\": true}}}",
          "State 'A': a Map needs exactly one of ItemProcessor and Iterator" },
        { "{\"StartAt\": \"M\", \"States\": {\"M\": {\"Type\": \"Map\", \"End\": true, \"ItemProcessor\": "
          "{\"StartAt\": "
          "\"I\", \"States\": {\"I\": {\"Type\": \"Pass\", \"Next\": \"J\"}}}}}}",
          "State 'I': Next names a state 'J' that does not exist" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Map\", \"End\": true, \"ItemReader\": {}, "
          "\"ItemProcessor\": {\"StartAt\": \"I\", \"States\": {\"I\": {\"Type\": \"Pass\", \"End\": true}}}}}}",
          "State 'A': ItemReader belongs to a Distributed Map, which is not supported" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Task\", \"Resource\": "
          "\"arn:aws:lambda:us-east-1:1:function:f\", \"Retry\": [{\"ErrorEquals\": [\"States.ALL\", \"X\"]}], "
          "\"End\": true}}}",
          "State 'A': Retry[0]: States.ALL must appear alone in ErrorEquals" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Task\", \"Resource\": "
          "\"arn:aws:lambda:us-east-1:1:function:f\", \"Retry\": [{\"ErrorEquals\": [\"X\"], \"BackoffRate\": 0.5}], "
          "\"End\": true}}}",
          "State 'A': Retry[0]: BackoffRate must be a number >= 1.0" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Task\", \"Resource\": "
          "\"arn:aws:lambda:us-east-1:1:function:f\", \"Catch\": [{\"ErrorEquals\": [\"X\"]}], \"End\": true}}}",
          "State 'A': Catch[0]: Next is required" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Task\", \"Resource\": "
          "\"arn:aws:lambda:us-east-1:1:function:f\", \"TimeoutSeconds\": 0, \"End\": true}}}",
          "State 'A': TimeoutSeconds must be a positive integer" },
        { "{\"TimeoutSeconds\": -1, \"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Pass\", \"End\": true}}}",
          "TimeoutSeconds must be a positive integer" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Pass\", \"End\": true}}, \"Extra\": 1}",
          "unknown field 'Extra'" },
        { "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Pass\", \"End\": true}}", "is not JSON" },
};

static void test_load_errors(void **state _unused_) {
        for (size_t i = 0; i < ELEMENTSOF(load_errors); i++) {
                AslDefinition *d = NULL;
                char *error = NULL;

                assert_int_equal(asl_definition_load(load_errors[i].definition, &d, &error), -EINVAL);
                assert_null(d);
                assert_non_null(error);
                if (!strstr(error, load_errors[i].error))
                        fail_msg("row %zu: got '%s', want '%s'", i, error, load_errors[i].error);
                free(error);
        }
}

/* A definition with a bit of everything that waits for the outside. */
static const char *const busy_definition =
        "{\"StartAt\": \"Reserve\", \"States\": {"
        " \"Reserve\": {\"Type\": \"Task\", \"Resource\": \"arn:aws:states:::lambda:invoke\","
        "  \"Parameters\": {\"FunctionName\": \"reserve\", \"Payload.$\": \"$\"},"
        "  \"Retry\": [{\"ErrorEquals\": [\"Busy\"], \"IntervalSeconds\": 3}],"
        "  \"ResultSelector\": {\"ok.$\": \"$.Payload\"}, \"ResultPath\": \"$.reserve\", \"Next\": \"Both\"},"
        " \"Both\": {\"Type\": \"Parallel\", \"ResultPath\": \"$.both\", \"Next\": \"Pause\", \"Branches\": ["
        "  {\"StartAt\": \"Pay\", \"States\": {\"Pay\": {\"Type\": \"Task\","
        "   \"Resource\": \"arn:aws:states:::lambda:invoke.waitForTaskToken\", \"HeartbeatSeconds\": 50,"
        "   \"TimeoutSeconds\": 600,"
        "   \"Parameters\": {\"FunctionName\": \"pix\", \"Payload\": {\"token.$\": \"$$.Task.Token\"}}, "
        "\"End\": true}}},"
        "  {\"StartAt\": \"Each\", \"States\": {\"Each\": {\"Type\": \"Map\", \"ItemsPath\": \"$.items\","
        "   \"MaxConcurrency\": 1, \"End\": true, \"ItemProcessor\": {\"StartAt\": \"W\", \"States\": {"
        "    \"W\": {\"Type\": \"Wait\", \"Seconds\": 7, \"Next\": \"N\"},"
        "    \"N\": {\"Type\": \"Task\", \"Resource\": \"arn:aws:lambda:us-east-1:1:function:notify\", \"End\": "
        "true}}}}}}"
        " ]},"
        " \"Pause\": {\"Type\": \"Wait\", \"Seconds\": 60, \"Next\": \"Done\"},"
        " \"Done\": {\"Type\": \"Pass\", \"Parameters\": {\"at.$\": \"$$.State.EnteredTime\", \"both.$\": \"$.both\","
        "  \"reserve.$\": \"$.reserve\"}, \"End\": true}}}";

/* Drive e as asl run would, answering each task from a fixed plan; with
 * reload, serialise, free and restore the execution after every event. */
/* Run *ep to its end; with reload, save and restore it (through text) at
 * every wait; with kept also, its history is taken out at each save and
 * appended to kept, as the durable engine keeps it. */
static void drive(AslDefinition *def, AslExecution **ep, bool reload, json_t *kept) {
        uint64_t now = T0;
        unsigned reserve_calls = 0, events = 0;

        for (;;) {
                AslTask *tasks = NULL;
                size_t n = 0;
                uint64_t deadline;

                assert_int_equal(asl_execution_step(*ep, &tasks, &n), 0);
                for (size_t i = 0; i < n; i++) {
                        if (streq(tasks[i].function, "reserve")) {
                                assert_int_equal(tasks[i].attempt, ++reserve_calls);
                                if (reserve_calls < 3)
                                        assert_int_equal(
                                                asl_execution_task_failed(*ep, tasks[i].token, "Busy", "hold on", now),
                                                0);
                                else
                                        assert_int_equal(
                                                asl_execution_task_succeeded(*ep, tasks[i].token, json_true(), now), 0);
                        } else if (streq(tasks[i].function, "pix")) {
                                /* The callback comes later: heartbeats keep it alive past HeartbeatSeconds. */
                                assert_true(tasks[i].callback);
                                assert_string_equal(json_string_value(json_object_get(tasks[i].payload, "token")),
                                                    tasks[i].token);
                                assert_int_equal(tasks[i].heartbeat_usec, now + 50 * SEC);
                        } else {
                                assert_string_equal(tasks[i].function, "notify");
                                assert_int_equal(
                                        asl_execution_task_succeeded(*ep, tasks[i].token, tasks[i].payload, now), 0);
                        }
                }
                asl_tasks_free(tasks, n);
                if (n > 0)
                        continue; /* the answers above need a step */
                if (asl_execution_status(*ep) != ASL_RUNNING)
                        break;

                if (reload) {
                        json_t *j = NULL;
                        char *error = NULL;
                        char *text;
                        if (kept) {
                                json_t *taken = NULL;
                                assert_int_equal(asl_execution_take_history(*ep, &taken), 0);
                                assert_int_equal(json_array_extend(kept, taken), 0);
                                json_decref(taken);
                                assert_int_equal(json_array_size(asl_execution_history(*ep)), 0);
                        }
                        assert_int_equal(asl_execution_to_json(*ep, &j), 0);
                        /* Through text, as the store keeps it. */
                        text = mem_json_dumps(j, JSON_COMPACT);
                        json_decref(j);
                        assert_non_null(text);
                        *ep = asl_execution_free(*ep);
                        j = json_loads(text, 0, NULL);
                        free(text);
                        assert_non_null(j);
                        assert_int_equal(asl_execution_from_json(def, j, ep, &error), 0);
                        json_decref(j);
                }

                deadline = asl_execution_next_deadline(*ep);
                assert_true(deadline != UINT64_MAX);
                events++;
                if (events == 3 || events == 5) {
                        /* pix: a heartbeat, then (after restore: the pending task is still known) its result. */
                        AslTask *p = NULL;
                        size_t np = 0;
                        assert_int_equal(asl_execution_pending_tasks(*ep, &p, &np), 0);
                        for (size_t i = 0; i < np; i++)
                                if (streq(p[i].function, "pix")) {
                                        if (events == 3)
                                                assert_int_equal(asl_execution_task_heartbeat(*ep, p[i].token, now), 0);
                                        else {
                                                json_t *paid = json_pack("{s:s}", "paid", "yes");
                                                assert_int_equal(
                                                        asl_execution_task_succeeded(*ep, p[i].token, paid, now), 0);
                                                json_decref(paid);
                                        }
                                }
                        asl_tasks_free(p, np);
                        if (events == 5)
                                continue; /* a result: step before time moves on */
                }
                now = MAX(now, deadline);
                assert_int_equal(asl_execution_advance_time(*ep, now), 0);
        }
}

/* Every event's input or output is the text of the value it had there:
 * a value that stands in several events is rendered once, and each event
 * still shows its own. */
static void test_history_texts(void **state _unused_) {
        static const char def_text[] =
                "{\"StartAt\": \"A\", \"States\": {"
                " \"A\": {\"Type\": \"Pass\", \"Result\": {\"a\": 1}, \"Next\": \"B\"},"
                " \"B\": {\"Type\": \"Pass\", \"Result\": {\"b\": 2}, \"ResultPath\": \"$.r\", \"Next\": \"C\"},"
                " \"C\": {\"Type\": \"Pass\", \"InputPath\": \"$.r\", \"End\": true}}}";
        static const char *const want[] = {
                "ExecutionStarted {\"in\":0}",
                "PassStateEntered {\"in\":0}",
                "PassStateExited {\"a\":1}",
                "PassStateEntered {\"a\":1}",
                "PassStateExited {\"a\":1,\"r\":{\"b\":2}}",
                "PassStateEntered {\"a\":1,\"r\":{\"b\":2}}",
                "PassStateExited {\"b\":2}",
                "ExecutionSucceeded {\"b\":2}",
        };
        _cleanup_(asl_definition_unrefp) AslDefinition *def = NULL;
        AslExecution *x = NULL;
        json_t *input = json_pack("{s:i}", "in", 0), *h, *ev;
        AslTask *tasks = NULL;
        size_t n = 0, i;

        assert_int_equal(asl_definition_load(def_text, &def, NULL), 0);
        assert_int_equal(asl_execution_new(def, "texts", input, T0, &(AslOptions){ .seed = 1 }, &x), 0);
        json_decref(input);
        assert_int_equal(asl_execution_step(x, &tasks, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(asl_execution_status(x), ASL_SUCCEEDED);
        h = asl_execution_history(x);
        assert_int_equal(json_array_size(h), ELEMENTSOF(want));
        json_array_foreach (h, i, ev) {
                const char *key, *text = NULL;
                json_t *d;
                char got[256];

                json_object_foreach (ev, key, d)
                        if (json_is_object(d)) {
                                json_t *t = json_object_get(d, "input") ?: json_object_get(d, "output");
                                text = json_string_value(t);
                        }
                assert_non_null(text);
                snprintf(got, sizeof got, "%s %s", json_string_value(json_object_get(ev, "type")), text);
                assert_string_equal(got, want[i]);
        }
        asl_execution_free(x);
}

static void test_round_trip(void **state _unused_) {
        _cleanup_(asl_definition_unrefp) AslDefinition *def = NULL;
        AslExecution *a = NULL, *b = NULL, *c = NULL;
        json_t *input = json_pack("{s:[s,s]}", "items", "x", "y"), *kept = json_array();
        char *ha, *hb;

        assert_int_equal(asl_definition_load(busy_definition, &def, NULL), 0);
        assert_int_equal(asl_execution_new(def, "order-1", input, T0, &(AslOptions){ .seed = 7 }, &a), 0);
        assert_int_equal(asl_execution_new(def, "order-1", input, T0, &(AslOptions){ .seed = 7 }, &b), 0);
        assert_int_equal(asl_execution_new(def, "order-1", input, T0, &(AslOptions){ .seed = 7 }, &c), 0);
        json_decref(input);
        drive(def, &a, false, NULL);
        drive(def, &b, true, NULL);
        drive(def, &c, true, kept);

        /* The history kept apart, then what c still holds, is the whole
         * history, numbered on across the saves. */
        assert_int_equal(asl_execution_status(c), ASL_SUCCEEDED);
        assert_true(json_array_size(kept) > 0);
        assert_int_equal(json_array_extend(kept, asl_execution_history(c)), 0);
        ha = mem_json_dumps(asl_execution_history(a), JSON_COMPACT);
        hb = mem_json_dumps(kept, JSON_COMPACT);
        assert_string_equal(ha, hb);
        free(ha);
        free(hb);
        json_decref(kept);
        asl_execution_free(c);

        assert_int_equal(asl_execution_status(a), ASL_SUCCEEDED);
        assert_int_equal(asl_execution_status(b), ASL_SUCCEEDED);
        assert_true(json_equal(asl_execution_output(a), asl_execution_output(b)));
        ha = mem_json_dumps(asl_execution_history(a), JSON_COMPACT);
        hb = mem_json_dumps(asl_execution_history(b), JSON_COMPACT);
        assert_string_equal(ha, hb);
        free(ha);
        free(hb);
        /* The restored run went through the Map, the retries and both waits. */
        ha = mem_json_dumps(asl_execution_output(b), JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(ha,
                            "{\"at\":\"2026-01-01T00:01:23.000Z\",\"both\":[{\"paid\":\"yes\"},[\"x\",\"y\"]],"
                            "\"reserve\":{\"ok\":true}}");
        free(ha);
        asl_execution_free(a);
        asl_execution_free(b);
}

static void test_restore_refuses(void **state _unused_) {
        _cleanup_(asl_definition_unrefp) AslDefinition *def = NULL, *other = NULL;
        AslExecution *e = NULL, *r = NULL;
        json_t *j = NULL;
        char *error = NULL;

        assert_int_equal(asl_definition_load(busy_definition, &def, NULL), 0);
        assert_int_equal(
                asl_definition_load("{\"StartAt\": \"Z\", \"States\": {\"Z\": {\"Type\": \"Succeed\"}}}", &other, NULL),
                0);
        assert_int_equal(asl_execution_new(def, "o", NULL, T0, NULL, &e), 0);
        assert_int_equal(asl_execution_step(e, NULL, NULL), 0);
        assert_int_equal(asl_execution_to_json(e, &j), 0);
        assert_int_equal(asl_execution_from_json(other, j, &r, &error), -EINVAL);
        assert_null(r);
        assert_non_null(strstr(error, "which this definition does not have"));
        free(error);
        error = NULL;
        json_object_set_new(j, "version", json_integer(99));
        assert_int_equal(asl_execution_from_json(def, j, &r, &error), -EINVAL);
        assert_non_null(strstr(error, "not a serialised execution"));
        free(error);
        json_decref(j);
        asl_execution_free(e);
}

static void test_tokens(void **state _unused_) {
        _cleanup_(asl_definition_unrefp) AslDefinition *def = NULL;
        AslExecution *e = NULL;
        AslTask *t = NULL;
        size_t n = 0;

        assert_int_equal(asl_definition_load(busy_definition, &def, NULL), 0);
        assert_int_equal(asl_execution_new(def, "o", NULL, T0, NULL, &e), 0);
        assert_int_equal(asl_execution_step(e, &t, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(t[0].function, "reserve");
        assert_int_equal(t[0].attempt, 1);
        assert_int_equal(asl_execution_task_succeeded(e, "no-such-token", NULL, T0), -ENOENT);
        assert_int_equal(asl_execution_task_failed(e, t[0].token, "", NULL, T0), -EINVAL);
        assert_int_equal(asl_execution_task_heartbeat(e, t[0].token, T0), 0);
        /* Timed out: the token is dead, a late answer is refused. */
        assert_int_equal(asl_execution_next_deadline(e), T0 + 99999999ULL * SEC);
        assert_int_equal(asl_execution_advance_time(e, T0 + 99999999ULL * SEC), 0);
        assert_int_equal(asl_execution_status(e), ASL_FAILED);
        assert_string_equal(asl_execution_error(e), "States.Timeout");
        assert_int_equal(asl_execution_task_succeeded(e, t[0].token, NULL, T0), -ENOENT);
        assert_string_equal(asl_status_to_string(asl_execution_status(e)), "FAILED");
        assert_int_equal(asl_status_from_string("TIMED_OUT"), ASL_TIMED_OUT);
        assert_int_equal(asl_status_from_string("nope"), _ASL_STATUS_INVALID);
        asl_tasks_free(t, n);
        asl_execution_free(e);
}

static void test_jitter(void **state _unused_) {
        _cleanup_(asl_definition_unrefp) AslDefinition *def = NULL;
        bool differ = false;
        uint64_t first = 0;

        assert_int_equal(asl_definition_load("{\"StartAt\": \"T\", \"States\": {\"T\": {\"Type\": \"Task\", "
                                             "\"Resource\": \"arn:aws:lambda:us-east-1:1:function:f\", \"Retry\": "
                                             "[{\"ErrorEquals\": [\"E\"], \"IntervalSeconds\": 100, "
                                             "\"JitterStrategy\": \"FULL\"}], \"End\": true}}}",
                                             &def, NULL),
                         0);
        for (uint64_t seed = 1; seed <= 20; seed++) {
                AslExecution *e = NULL;
                AslTask *t = NULL;
                size_t n = 0;
                uint64_t d;

                assert_int_equal(asl_execution_new(def, "j", NULL, T0, &(AslOptions){ .seed = seed }, &e), 0);
                assert_int_equal(asl_execution_step(e, &t, &n), 0);
                assert_int_equal(n, 1);
                assert_int_equal(asl_execution_task_failed(e, t[0].token, "E", NULL, T0), 0);
                asl_tasks_free(t, n);
                assert_int_equal(asl_execution_step(e, NULL, NULL), 0);
                d = asl_execution_next_deadline(e);
                assert_true(d >= T0 && d <= T0 + 100 * SEC);
                if (seed == 1)
                        first = d;
                else if (d != first)
                        differ = true;
                asl_execution_free(e);
        }
        assert_true(differ);
}

static int attempt_load(void *userdata) {
        AslDefinition *d = NULL;
        char *error = NULL;
        int r = asl_definition_load(userdata, &d, &error);

        free(error);
        asl_definition_unref(d);
        return r;
}

static int attempt_load_error(void *userdata _unused_) {
        AslDefinition *d = NULL;
        char *error = NULL;
        int r = asl_definition_load("{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Pass\", \"Next\": \"B\"}}}",
                                    &d, &error);
        if (r == -EINVAL && !error)
                r = -EIO;
        free(error);
        return r;
}

static int attempt_run(void *userdata) {
        AslDefinition *def = userdata;
        json_t *input = NULL, *tasks = NULL, *res = NULL;
        char *error = NULL;
        int r = -ENOMEM;

        input = json_loads("{\"items\": [\"x\", \"y\"]}", 0, NULL);
        tasks = json_loads("{\"reserve\": [{\"throw\": {\"error\": \"Busy\"}}, {\"return\": true}],"
                           " \"pix\": [{\"return\": {\"paid\": 1}, \"delay_ms\": 5000}],"
                           " \"notify\": [{\"return\": \"sent\"}]}",
                           0, NULL);
        if (!input || !tasks)
                goto finish;
        r = asl_run_scripted(def, input, tasks, NULL, &res, &error);
        if (r >= 0 && !streq(json_string_value(json_object_get(res, "status")), "SUCCEEDED"))
                r = -EIO;
finish:
        json_decref(input);
        json_decref(tasks);
        json_decref(res);
        free(error);
        return r;
}

/* The history is rendered when it is read: that too fails cleanly. */
static int attempt_render(void *userdata) {
        AslDefinition *def = userdata;
        AslExecution *e = NULL, *back = NULL;
        AslTask *t = NULL;
        json_t *j = NULL;
        size_t n = 0;
        int r;

        r = asl_execution_new(def, "o", NULL, T0, NULL, &e);
        if (r >= 0)
                r = asl_execution_step(e, &t, &n);
        if (r >= 0 && n != 1)
                r = -EIO;
        if (r >= 0)
                r = asl_execution_task_succeeded(e, t[0].token, json_true(), T0);
        if (r >= 0)
                r = asl_execution_step(e, NULL, NULL);
        if (r >= 0 && !asl_execution_history(e))
                r = -ENOMEM;
        if (r >= 0)
                r = asl_execution_to_json(e, &j);
        if (r >= 0)
                r = asl_execution_from_json(def, j, &back, NULL);
        if (r >= 0 && json_array_size(asl_execution_history(back)) < 8)
                r = -EIO;
        asl_tasks_free(t, n);
        json_decref(j);
        asl_execution_free(back);
        asl_execution_free(e);
        return r;
}

static void test_oom(void **state _unused_) {
        _cleanup_(asl_definition_unrefp) AslDefinition *def = NULL;

        assert_true(oom_loop(attempt_load, (void *) busy_definition, 0) > 10);
        assert_true(oom_loop(attempt_load_error, NULL, -EINVAL) > 1);
        assert_int_equal(asl_definition_load(busy_definition, &def, NULL), 0);
        assert_true(oom_loop(attempt_run, def, 0) > 50);
        assert_true(oom_loop(attempt_render, def, 0) > 20);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_load_errors),   cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_history_texts), cmocka_unit_test(test_restore_refuses),
                cmocka_unit_test(test_tokens),        cmocka_unit_test(test_jitter),
                cmocka_unit_test(test_oom),
        };

        alloc_init();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
