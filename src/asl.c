/* SPDX-License-Identifier: MIT */
/*
 * asl.c — the Amazon States Language interpreter: the definition loader
 * (every check made before anything runs) and the execution model (frames
 * of running states, timers, pending tasks, the event history), all of it
 * data that serialises to JSON and back.  The data side — paths,
 * templates, Choice rules, timestamps — is asl-data.c.  See
 * doc/internals/asl.md for the model and the AWS behaviours chosen.
 *
 * Security: the definition is the admin's and is validated whole at load;
 * state inputs and task results are customers' and tasks' data, handled
 * only through asl-data's bounded evaluations; runs are bounded in
 * transitions, history events and Map items.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "asl-data.h"
#include "asl.h"

#define ASL_RETRIERS_MAX 16U
#define ASL_STATE_NAME_MAX 80U
#define ASL_EXECUTION_NAME_MAX 80U
#define TASK_TIMEOUT_DEFAULT_SEC 99999999ULL /* AWS's default, not the spec's 60 */
#define SERIAL_VERSION 1

#define IN_SET_TERMINAL(t) ((t) == ST_CHOICE || (t) == ST_SUCCEED || (t) == ST_FAIL)

static inline char *mem_free_ptr(char *p) {
        free(p);
        return NULL;
}

static inline json_t *json_decref_ptr(json_t *j) {
        json_decref(j);
        return NULL;
}

/* o with k set to v (taken, even when it fails), or NULL (o freed) when
 * either is NULL or out of memory: a chain of these builds an object with
 * one check at its end. */
static json_t *with(json_t *o, const char *k, json_t *v) {
        if (!o) {
                json_decref(v);
                return NULL;
        }
        if (json_object_set_new_nocheck(o, k, v) < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* [v] (v taken), or NULL. */
static json_t *list_of(json_t *v) {
        json_t *a = v ? json_array() : NULL;

        if (!a || json_array_append_new(a, v) < 0) {
                if (!a)
                        json_decref(v);
                json_decref(a);
                return NULL;
        }
        return a;
}

/* The last digits hex digits of v, lower case, at p; returns the end. */
static char *hex(char *p, uint64_t v, unsigned digits) {
        for (unsigned i = digits; i > 0; i--, v >>= 4)
                p[i - 1] = "0123456789abcdef"[v & 15];
        return p + digits;
}

typedef enum StateType {
        ST_PASS,
        ST_TASK,
        ST_CHOICE,
        ST_WAIT,
        ST_SUCCEED,
        ST_FAIL,
        ST_PARALLEL,
        ST_MAP,
        _ST_MAX,
        _ST_INVALID = -EINVAL,
} StateType;

static const char *const state_type_table[_ST_MAX] = {
        [ST_PASS] = "Pass",       [ST_TASK] = "Task", [ST_CHOICE] = "Choice",     [ST_WAIT] = "Wait",
        [ST_SUCCEED] = "Succeed", [ST_FAIL] = "Fail", [ST_PARALLEL] = "Parallel", [ST_MAP] = "Map",
};

static StateType state_type_from_string(const char *s) {
        for (size_t i = 0; s && i < _ST_MAX; i++)
                if (streq(state_type_table[i], s))
                        return (StateType) i;
        return _ST_INVALID;
}

typedef enum ResourceKind {
        RES_LAMBDA_INVOKE,
        RES_LAMBDA_INVOKE_WAIT,
        RES_LAMBDA_ARN,
        _RES_MAX,
        _RES_INVALID = -EINVAL,
} ResourceKind;

static const char *const status_table[_ASL_STATUS_MAX] = {
        [ASL_RUNNING] = "RUNNING",
        [ASL_SUCCEEDED] = "SUCCEEDED",
        [ASL_FAILED] = "FAILED",
        [ASL_TIMED_OUT] = "TIMED_OUT",
};

const char *asl_status_to_string(AslStatus s) {
        return s >= 0 && s < _ASL_STATUS_MAX ? status_table[s] : NULL;
}

AslStatus asl_status_from_string(const char *s) {
        for (size_t i = 0; s && i < _ASL_STATUS_MAX; i++)
                if (streq(status_table[i], s))
                        return (AslStatus) i;
        return _ASL_STATUS_INVALID;
}

/* ---- the definition ------------------------------------------------------ */

/* A path field of a state: absent, JSON null, or a path. */
typedef struct PathField {
        AslPath *path;
        bool null;
} PathField;

typedef struct State State;

/* What of a lambda:invoke response a state can read.  The response has a
 * dozen members (headers, request ids); the usual definitions read its
 * Payload (ResultSelector {"Payload.$": "$.Payload"}, OutputPath
 * "$.Payload") or nothing (ResultPath null), and then only that is made. */
typedef enum ResultUse {
        RESULT_ALL,
        RESULT_PAYLOAD, /* {"Payload": …} reads the same */
        RESULT_NONE, /* nothing reads it */
} ResultUse;

typedef struct Catcher {
        json_t *error_equals; /* borrowed from the definition's root */
        PathField result_path;
        const State *next;
} Catcher;

/* A state as loaded: what its JSON says, parsed and checked once, so that
 * running it reads no field by name and parses no path again. */
struct State {
        const char *name; /* its key in States, borrowed from the definition's root */
        json_t *json; /* borrowed: for the fields read only on rare paths */
        StateType type;
        unsigned machine;
        const State *next; /* NULL: End, or a Choice, Succeed or Fail */
        PathField input_path, output_path, result_path;
        AslTemplate *parameters; /* Task, Pass, Parallel */
        AslTemplate *result_selector; /* Task, Parallel, Map */
        AslTemplate *item_selector; /* Map: ItemSelector, or the older Parameters */
        AslPath *items_path, *max_concurrency_path, *seconds_path, *timestamp_path, *timeout_path, *heartbeat_path;
        AslExpr *error_expr, *cause_expr; /* Fail: ErrorPath, CausePath */
        AslRule **rules; /* Choice, with the state each leads to */
        const State **rule_next;
        size_t n_rules;
        const State *default_next;
        Catcher *catchers;
        size_t n_catchers;
        unsigned *branches; /* Parallel: their machines */
        size_t n_branches;
        unsigned processor; /* Map: its machine */
        ResourceKind resource_kind; /* Task */
        const char *resource;
        ResultUse result_use; /* Task with lambda:invoke */
        bool uses_context; /* something in it reads "$$": build the context object */
};

/* One state machine: the top level, a Parallel branch or a Map processor. */
typedef struct Machine {
        json_t *obj; /* borrowed from the definition's root */
        State *states;
        size_t n_states;
        const State *start;
} Machine;

/* The parts of a Lambda Invoke response that are the same in every one:
 * made once, shared by all (values are never changed once made). */
typedef struct InvokeParts {
        json_t *latest, *latest_list, *json_type, *json_type_list, *status;
} InvokeParts;

struct AslDefinition {
        unsigned n_ref;
        json_t *root;
        Machine *machines;
        size_t n_machines;
        uint64_t timeout_usec; /* 0: none */
        InvokeParts invoke;
};

static void state_done(State *s) {
        asl_path_free(s->input_path.path);
        asl_path_free(s->output_path.path);
        asl_path_free(s->result_path.path);
        asl_template_free(s->parameters);
        asl_template_free(s->result_selector);
        asl_template_free(s->item_selector);
        asl_path_free(s->items_path);
        asl_path_free(s->max_concurrency_path);
        asl_path_free(s->seconds_path);
        asl_path_free(s->timestamp_path);
        asl_path_free(s->timeout_path);
        asl_path_free(s->heartbeat_path);
        asl_expr_free(s->error_expr);
        asl_expr_free(s->cause_expr);
        for (size_t i = 0; i < s->n_rules; i++)
                asl_rule_free(s->rules[i]);
        free(s->rules);
        free(s->rule_next);
        for (size_t i = 0; i < s->n_catchers; i++)
                asl_path_free(s->catchers[i].result_path.path);
        free(s->catchers);
        free(s->branches);
}

/* The state of machine m named name, or NULL. */
static const State *machine_state(const Machine *m, const char *name) {
        for (size_t i = 0; name && i < m->n_states; i++)
                if (streq(m->states[i].name, name))
                        return &m->states[i];
        return NULL;
}

AslDefinition *asl_definition_ref(AslDefinition *d) {
        if (d)
                d->n_ref++;
        return d;
}

AslDefinition *asl_definition_unref(AslDefinition *d) {
        if (!d || --d->n_ref > 0)
                return NULL;
        for (size_t i = 0; i < d->n_machines; i++) {
                for (size_t k = 0; k < d->machines[i].n_states; k++)
                        state_done(&d->machines[i].states[k]);
                free(d->machines[i].states);
        }
        json_decref(d->root);
        free(d->machines);
        json_decref(d->invoke.latest);
        json_decref(d->invoke.latest_list);
        json_decref(d->invoke.json_type);
        json_decref(d->invoke.json_type_list);
        json_decref(d->invoke.status);
        free(d);
        return NULL;
}

typedef struct Loader {
        AslDefinition *def;
        char *error;
        unsigned depth;
} Loader;

/* Record the first problem in *slot; -EINVAL, or -ENOMEM when it cannot be said. */
static int vfail(char **slot, const char *fmt, va_list ap) {
        char *m = NULL;

        if (*slot)
                return -EINVAL;
        if (vasprintf(&m, fmt, ap) < 0)
                return -ENOMEM;
        *slot = mem_strdup(m); /* through the wrapper, so that OOM tests reach it */
        free(m);
        return *slot ? -EINVAL : -ENOMEM;
}

_printf_(2, 3) static int load_fail(Loader *ld, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vfail(&ld->error, fmt, ap);
        va_end(ap);
        return r;
}

/* Prefix a message of asl-data's *_check() with where it was found. */
static int load_fail_check(Loader *ld, int r, const char *state, const char *field, char *msg) {
        if (r == -ENOMEM) {
                free(msg);
                return r;
        }
        r = load_fail(ld, "State '%s': %s: %s", state, field, msg ? msg : "invalid");
        free(msg);
        return r;
}

static bool is_positive_int(json_t *v) {
        return json_is_integer(v) && json_integer_value(v) > 0;
}

static bool is_nonneg_int(json_t *v) {
        return json_is_integer(v) && json_integer_value(v) >= 0;
}

/* Fields no state of ours accepts, with why. */
static const struct {
        const char *field, *why;
} unsupported_fields[] = {
        { "Arguments", "is JSONata (QueryLanguage JSONata is not supported; use Parameters)" },
        { "Output", "is JSONata (QueryLanguage JSONata is not supported; use OutputPath/ResultSelector)" },
        { "Items", "is JSONata (QueryLanguage JSONata is not supported; use ItemsPath)" },
        { "Assign", "(workflow variables) is not supported" },
        { "Credentials", "(cross-account task credentials) is not supported" },
        { "ItemReader", "belongs to a Distributed Map, which is not supported" },
        { "ItemBatcher", "belongs to a Distributed Map, which is not supported" },
        { "ResultWriter", "belongs to a Distributed Map, which is not supported" },
        { "ToleratedFailurePercentage", "belongs to a Distributed Map, which is not supported" },
        { "ToleratedFailurePercentagePath", "belongs to a Distributed Map, which is not supported" },
        { "ToleratedFailureCount", "belongs to a Distributed Map, which is not supported" },
        { "ToleratedFailureCountPath", "belongs to a Distributed Map, which is not supported" },
        { "Label", "belongs to a Distributed Map, which is not supported" },
};

static const char *const allowed_fields[_ST_MAX][20] = {
        [ST_PASS] = { "Next", "End", "InputPath", "OutputPath", "Parameters", "Result", "ResultPath" },
        [ST_TASK] = { "Next", "End", "InputPath", "OutputPath", "Parameters", "ResultSelector", "ResultPath", "Retry",
                      "Catch", "Resource", "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds",
                      "HeartbeatSecondsPath" },
        [ST_CHOICE] = { "InputPath", "OutputPath", "Choices", "Default" },
        [ST_WAIT] = { "Next", "End", "InputPath", "OutputPath", "Seconds", "SecondsPath", "Timestamp",
                      "TimestampPath" },
        [ST_SUCCEED] = { "InputPath", "OutputPath" },
        [ST_FAIL] = { "Error", "ErrorPath", "Cause", "CausePath" },
        [ST_PARALLEL] = { "Next", "End", "InputPath", "OutputPath", "Parameters", "ResultSelector", "ResultPath",
                          "Retry", "Catch", "Branches" },
        [ST_MAP] = { "Next", "End", "InputPath", "OutputPath", "ItemsPath", "ItemSelector", "Parameters",
                     "ResultSelector", "ResultPath", "Retry", "Catch", "ItemProcessor", "Iterator", "MaxConcurrency",
                     "MaxConcurrencyPath" },
};

static bool field_allowed(StateType t, const char *k) {
        if (streq(k, "Type") || streq(k, "Comment") || streq(k, "QueryLanguage"))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(allowed_fields[t]) && allowed_fields[t][i]; i++)
                if (streq(allowed_fields[t][i], k))
                        return true;
        return false;
}

static int check_query_language(Loader *ld, json_t *obj, const char *where) {
        json_t *q = json_object_get(obj, "QueryLanguage");

        if (!q)
                return 0;
        if (!json_is_string(q))
                return load_fail(ld, "%s: QueryLanguage must be a string", where);
        if (streq(json_string_value(q), "JSONata"))
                return load_fail(ld, "%s: QueryLanguage JSONata is not supported (only JSONPath)", where);
        if (!streq(json_string_value(q), "JSONPath"))
                return load_fail(ld, "%s: unknown QueryLanguage '%s'", where, json_string_value(q));
        return 0;
}

/* A path field: absent, null (when ret_null is given) or a valid path,
 * compiled into *ret. */
static int check_path_field(Loader *ld, json_t *st, const char *name, const char *field, bool reference,
                            bool allow_context, AslPath **ret, bool *ret_null) {
        json_t *v = json_object_get(st, field);
        char *msg = NULL;
        int r;

        if (!v)
                return 0;
        if (ret_null && json_is_null(v)) {
                *ret_null = true;
                return 0;
        }
        if (!json_is_string(v))
                return load_fail(ld, "State '%s': %s must be a string%s", name, field, ret_null ? " or null" : "");
        r = asl_path_compile(json_string_value(v), reference, allow_context, ret, &msg);
        if (r < 0)
                return load_fail_check(ld, r, name, field, msg);
        return 0;
}

static int check_path_field_of(Loader *ld, json_t *st, const char *name, const char *field, bool reference,
                               bool allow_context, PathField *ret) {
        return check_path_field(ld, st, name, field, reference, allow_context, &ret->path, &ret->null);
}

static int check_template_field(Loader *ld, json_t *st, const char *name, const char *field, AslTemplate **ret) {
        json_t *v = json_object_get(st, field);
        char *msg = NULL;
        int r;

        if (!v)
                return 0;
        r = asl_template_compile(v, ret, &msg);
        if (r < 0)
                return load_fail_check(ld, r, name, field, msg);
        return 0;
}

/* A transition of state name in machine to next: *ret is where it leads.
 * (By index: loading a Parallel's or Map's machines moves the table.) */
static int check_next(Loader *ld, unsigned machine, const char *name, const char *field, json_t *next,
                      const State **ret) {
        if (!json_is_string(next))
                return load_fail(ld, "State '%s': %s must be a string", name, field);
        *ret = machine_state(&ld->def->machines[machine], json_string_value(next));
        if (!*ret)
                return load_fail(ld, "State '%s': %s names a state '%s' that does not exist", name, field,
                                 json_string_value(next));
        return 0;
}

static int check_error_equals(Loader *ld, const char *name, const char *what, size_t idx, json_t *obj, bool *ret_all) {
        json_t *ee = json_object_get(obj, "ErrorEquals"), *v;
        size_t i;

        if (!json_is_array(ee) || json_array_size(ee) == 0)
                return load_fail(ld, "State '%s': %s[%zu]: ErrorEquals must be a non-empty array of strings", name,
                                 what, idx);
        *ret_all = false;
        json_array_foreach (ee, i, v) {
                if (!json_is_string(v) || isempty(json_string_value(v)))
                        return load_fail(ld, "State '%s': %s[%zu]: ErrorEquals must be a non-empty array of strings",
                                         name, what, idx);
                if (streq(json_string_value(v), "States.ALL")) {
                        if (json_array_size(ee) != 1)
                                return load_fail(ld, "State '%s': %s[%zu]: States.ALL must appear alone in ErrorEquals",
                                                 name, what, idx);
                        *ret_all = true;
                }
        }
        return 0;
}

static int check_retry(Loader *ld, json_t *st, const char *name) {
        json_t *retry = json_object_get(st, "Retry"), *rt, *v;
        const char *k;
        size_t i;
        int r;

        if (!retry)
                return 0;
        if (!json_is_array(retry))
                return load_fail(ld, "State '%s': Retry must be an array", name);
        if (json_array_size(retry) > ASL_RETRIERS_MAX)
                return load_fail(ld, "State '%s': more than %u retriers", name, ASL_RETRIERS_MAX);
        json_array_foreach (retry, i, rt) {
                bool all;
                if (!json_is_object(rt))
                        return load_fail(ld, "State '%s': Retry[%zu] must be an object", name, i);
                json_object_foreach (rt, k, v) {
                        if (streq(k, "ErrorEquals") || streq(k, "Comment"))
                                continue;
                        if (streq(k, "IntervalSeconds") || streq(k, "MaxDelaySeconds")) {
                                if (!is_positive_int(v) || json_integer_value(v) > 99999999)
                                        return load_fail(ld, "State '%s': Retry[%zu]: %s must be a positive integer",
                                                         name, i, k);
                        } else if (streq(k, "MaxAttempts")) {
                                if (!is_nonneg_int(v) || json_integer_value(v) > 99999999)
                                        return load_fail(ld,
                                                         "State '%s': Retry[%zu]: MaxAttempts must be a non-negative "
                                                         "integer",
                                                         name, i);
                        } else if (streq(k, "BackoffRate")) {
                                if (!json_is_number(v) || json_number_value(v) < 1.0 || json_number_value(v) > 1e6)
                                        return load_fail(ld,
                                                         "State '%s': Retry[%zu]: BackoffRate must be a number >= 1.0",
                                                         name, i);
                        } else if (streq(k, "JitterStrategy")) {
                                if (!json_is_string(v) ||
                                    (!streq(json_string_value(v), "FULL") && !streq(json_string_value(v), "NONE")))
                                        return load_fail(ld,
                                                         "State '%s': Retry[%zu]: JitterStrategy must be FULL or NONE",
                                                         name, i);
                        } else
                                return load_fail(ld, "State '%s': Retry[%zu]: unknown field '%s'", name, i, k);
                }
                r = check_error_equals(ld, name, "Retry", i, rt, &all);
                if (r < 0)
                        return r;
                if (all && i + 1 != json_array_size(retry))
                        return load_fail(ld, "State '%s': Retry[%zu]: a retrier with States.ALL must be the last", name,
                                         i);
        }
        return 0;
}

static int check_catch(Loader *ld, State *s) {
        json_t *catch = json_object_get(s->json, "Catch"), *c, *v;
        const char *k, *name = s->name;
        size_t i;
        int r;

        if (!catch)
                return 0;
        if (!json_is_array(catch))
                return load_fail(ld, "State '%s': Catch must be an array", name);
        s->catchers = mem_new(Catcher, json_array_size(catch));
        if (!s->catchers)
                return -ENOMEM;
        json_array_foreach (catch, i, c) {
                Catcher *ct = &s->catchers[s->n_catchers++];
                bool all;
                if (!json_is_object(c))
                        return load_fail(ld, "State '%s': Catch[%zu] must be an object", name, i);
                json_object_foreach (c, k, v) {
                        if (streq(k, "ErrorEquals") || streq(k, "Comment") || streq(k, "Next"))
                                continue;
                        if (streq(k, "ResultPath")) {
                                char *msg = NULL;
                                if (json_is_null(v)) {
                                        ct->result_path.null = true;
                                        continue;
                                }
                                if (!json_is_string(v))
                                        return load_fail(ld,
                                                         "State '%s': Catch[%zu]: ResultPath must be a string or null",
                                                         name, i);
                                r = asl_path_compile(json_string_value(v), true, false, &ct->result_path.path, &msg);
                                if (r < 0)
                                        return load_fail_check(ld, r, name, "Catch ResultPath", msg);
                        } else if (streq(k, "Output") || streq(k, "Assign"))
                                return load_fail(ld, "State '%s': Catch[%zu]: %s is not supported (JSONata/variables)",
                                                 name, i, k);
                        else
                                return load_fail(ld, "State '%s': Catch[%zu]: unknown field '%s'", name, i, k);
                }
                r = check_error_equals(ld, name, "Catch", i, c, &all);
                if (r < 0)
                        return r;
                ct->error_equals = json_object_get(c, "ErrorEquals");
                if (all && i + 1 != json_array_size(catch))
                        return load_fail(ld, "State '%s': Catch[%zu]: a catcher with States.ALL must be the last", name,
                                         i);
                if (!json_object_get(c, "Next"))
                        return load_fail(ld, "State '%s': Catch[%zu]: Next is required", name, i);
                r = check_next(ld, s->machine, name, "Catch Next", json_object_get(c, "Next"), &ct->next);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Split "arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]" (or a
 * bare "NAME[:QUALIFIER]", as lambda:invoke's FunctionName may be) into
 * the name and the qualifier.  0, -EINVAL, -ENOMEM. */
static int lambda_function_name(const char *s, char **ret_name, char **ret_qualifier) {
        const char *name = s, *colon;
        _cleanup_free_ char *n = NULL, *q = NULL;

        if (strncmp(s, "arn:", 4) == 0) {
                /* arn : partition : lambda : region : account : function : name */
                const char *p = s;
                for (int i = 0; i < 6; i++) {
                        p = strchr(p, ':');
                        if (!p)
                                return -EINVAL;
                        p++;
                }
                if (strncmp(s, "arn:aws:lambda:", 15) != 0 && strncmp(s, "arn:aws-", 8) != 0)
                        return -EINVAL;
                if (!strstr(s, ":function:") || strstr(s, ":function:") + 10 != p)
                        return -EINVAL;
                name = p;
        }
        colon = strchr(name, ':');
        n = colon ? mem_strndup(name, (size_t) (colon - name)) : mem_strdup(name);
        if (!n)
                return -ENOMEM;
        if (isempty(n) || strlen(n) > 140 || (colon && (isempty(colon + 1) || strchr(colon + 1, ':'))))
                return -EINVAL;
        for (const char *c = n; *c; c++)
                if (!(('a' <= *c && *c <= 'z') || ('A' <= *c && *c <= 'Z') || ('0' <= *c && *c <= '9') || *c == '-' ||
                      *c == '_'))
                        return -EINVAL;
        if (colon) {
                q = mem_strdup(colon + 1);
                if (!q)
                        return -ENOMEM;
        }
        *ret_name = TAKE_PTR(n);
        *ret_qualifier = TAKE_PTR(q);
        return 0;
}

static ResourceKind resource_kind(const char *res) {
        if (streq(res, "arn:aws:states:::lambda:invoke"))
                return RES_LAMBDA_INVOKE;
        if (streq(res, "arn:aws:states:::lambda:invoke.waitForTaskToken"))
                return RES_LAMBDA_INVOKE_WAIT;
        if (strncmp(res, "arn:aws:lambda:", 15) == 0)
                return RES_LAMBDA_ARN;
        return _RES_INVALID;
}

static ResultUse invoke_result_use(const State *s) {
        if (s->result_selector)
                return asl_template_reads_only(s->result_selector, "Payload") ? RESULT_PAYLOAD : RESULT_ALL;
        if (s->result_path.null)
                return RESULT_NONE;
        /* ResultPath "$" (absent), then an OutputPath under Payload. */
        if (!s->result_path.path && s->output_path.path && asl_path_reads_only(s->output_path.path, "Payload"))
                return RESULT_PAYLOAD;
        return RESULT_ALL;
}

static int check_task(Loader *ld, State *s) {
        json_t *st = s->json, *res = json_object_get(st, "Resource"), *params = json_object_get(st, "Parameters");
        json_t *to = json_object_get(st, "TimeoutSeconds"), *hb = json_object_get(st, "HeartbeatSeconds");
        const char *name = s->name;
        ResourceKind kind;
        int r;

        if (!json_is_string(res))
                return load_fail(ld, "State '%s': a Task needs a Resource (string)", name);
        kind = resource_kind(json_string_value(res));
        if (kind < 0)
                return load_fail(ld,
                                 "State '%s': unsupported Resource '%s' (supported: arn:aws:states:::lambda:invoke, "
                                 "arn:aws:states:::lambda:invoke.waitForTaskToken, arn:aws:lambda:REGION:ACCOUNT:"
                                 "function:NAME)",
                                 name, json_string_value(res));
        s->resource_kind = kind;
        s->resource = json_string_value(res);
        if (kind == RES_LAMBDA_INVOKE)
                s->result_use = invoke_result_use(s);
        if (kind == RES_LAMBDA_ARN) {
                _cleanup_free_ char *n = NULL, *q = NULL;
                r = lambda_function_name(json_string_value(res), &n, &q);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return load_fail(ld, "State '%s': Resource '%s' is not a Lambda function ARN", name,
                                         json_string_value(res));
        } else {
                json_t *fn;
                if (!json_is_object(params))
                        return load_fail(ld, "State '%s': %s needs Parameters with FunctionName", name,
                                         json_string_value(res));
                fn = json_object_get(params, "FunctionName");
                if (fn) {
                        _cleanup_free_ char *n = NULL, *q = NULL;
                        if (!json_is_string(fn))
                                return load_fail(ld, "State '%s': Parameters.FunctionName must be a string", name);
                        r = lambda_function_name(json_string_value(fn), &n, &q);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return load_fail(
                                        ld, "State '%s': Parameters.FunctionName '%s' is not a function name or ARN",
                                        name, json_string_value(fn));
                } else if (!json_object_get(params, "FunctionName.$"))
                        return load_fail(ld, "State '%s': %s needs Parameters with FunctionName", name,
                                         json_string_value(res));
        }
        if (to && json_object_get(st, "TimeoutSecondsPath"))
                return load_fail(ld, "State '%s': TimeoutSeconds and TimeoutSecondsPath are exclusive", name);
        if (hb && json_object_get(st, "HeartbeatSecondsPath"))
                return load_fail(ld, "State '%s': HeartbeatSeconds and HeartbeatSecondsPath are exclusive", name);
        if (to && (!is_positive_int(to) || json_integer_value(to) > 99999999))
                return load_fail(ld, "State '%s': TimeoutSeconds must be a positive integer", name);
        if (hb && (!is_positive_int(hb) || json_integer_value(hb) > 99999999))
                return load_fail(ld, "State '%s': HeartbeatSeconds must be a positive integer", name);
        if (to && hb && json_integer_value(hb) >= json_integer_value(to))
                return load_fail(ld, "State '%s': HeartbeatSeconds must be smaller than TimeoutSeconds", name);
        r = check_path_field(ld, st, name, "TimeoutSecondsPath", true, false, &s->timeout_path, NULL);
        if (r < 0)
                return r;
        return check_path_field(ld, st, name, "HeartbeatSecondsPath", true, false, &s->heartbeat_path, NULL);
}

static int check_wait(Loader *ld, State *s) {
        static const char *const fields[] = { "Seconds", "SecondsPath", "Timestamp", "TimestampPath" };
        json_t *v, *st = s->json;
        const char *name = s->name;
        unsigned n = 0;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                n += !!json_object_get(st, fields[i]);
        if (n != 1)
                return load_fail(ld,
                                 "State '%s': a Wait needs exactly one of Seconds, SecondsPath, Timestamp, "
                                 "TimestampPath",
                                 name);
        v = json_object_get(st, "Seconds");
        if (v && (!is_nonneg_int(v) || json_integer_value(v) > 99999999))
                return load_fail(ld, "State '%s': Seconds must be a non-negative integer", name);
        v = json_object_get(st, "Timestamp");
        if (v) {
                int64_t t;
                if (!json_is_string(v) || asl_timestamp_parse(json_string_value(v), &t) < 0)
                        return load_fail(ld, "State '%s': Timestamp must be an RFC 3339 timestamp", name);
        }
        r = check_path_field(ld, st, name, "SecondsPath", true, true, &s->seconds_path, NULL);
        if (r < 0)
                return r;
        return check_path_field(ld, st, name, "TimestampPath", true, true, &s->timestamp_path, NULL);
}

static int check_fail(Loader *ld, State *s) {
        static const char *const pairs[][2] = { { "Error", "ErrorPath" }, { "Cause", "CausePath" } };
        const char *name = s->name;

        for (size_t i = 0; i < ELEMENTSOF(pairs); i++) {
                json_t *lit = json_object_get(s->json, pairs[i][0]), *path = json_object_get(s->json, pairs[i][1]);
                char *msg = NULL;
                int r;

                if (lit && path)
                        return load_fail(ld, "State '%s': %s and %s are exclusive", name, pairs[i][0], pairs[i][1]);
                if (lit && !json_is_string(lit))
                        return load_fail(ld, "State '%s': %s must be a string", name, pairs[i][0]);
                if (!path)
                        continue;
                if (!json_is_string(path))
                        return load_fail(ld, "State '%s': %s must be a string", name, pairs[i][1]);
                r = asl_expr_compile(json_string_value(path), i == 0 ? &s->error_expr : &s->cause_expr, &msg);
                if (r < 0)
                        return load_fail_check(ld, r, name, pairs[i][1], msg);
        }
        return 0;
}

static int check_choice(Loader *ld, State *s) {
        json_t *choices = json_object_get(s->json, "Choices"), *rule, *def = json_object_get(s->json, "Default");
        const char *name = s->name;
        size_t i;
        int r;

        if (!json_is_array(choices) || json_array_size(choices) == 0)
                return load_fail(ld, "State '%s': a Choice needs a non-empty Choices array", name);
        s->rules = mem_new(AslRule *, json_array_size(choices));
        s->rule_next = mem_new(const State *, json_array_size(choices));
        if (!s->rules || !s->rule_next)
                return -ENOMEM;
        json_array_foreach (choices, i, rule) {
                char *msg = NULL;
                if (!json_is_object(rule))
                        return load_fail(ld, "State '%s': Choices[%zu] must be an object", name, i);
                if (json_object_get(rule, "Assign") || json_object_get(rule, "Condition"))
                        return load_fail(ld,
                                         "State '%s': Choices[%zu]: Assign/Condition (JSONata, variables) are not "
                                         "supported",
                                         name, i);
                r = asl_rule_compile(rule, true, &s->rules[i], &msg);
                if (r < 0) {
                        _cleanup_free_ char *where = mem_printf("Choices[%zu]", i);
                        if (!where) {
                                free(msg);
                                return -ENOMEM;
                        }
                        return load_fail_check(ld, r, name, where, msg);
                }
                s->n_rules++;
                r = check_next(ld, s->machine, name, "Choices Next", json_object_get(rule, "Next"), &s->rule_next[i]);
                if (r < 0)
                        return r;
        }
        if (def)
                return check_next(ld, s->machine, name, "Default", def, &s->default_next);
        return 0;
}

static int load_machine(Loader *ld, json_t *obj, const char *where, bool top, unsigned *ret_index);

static int check_processor(Loader *ld, State *s) {
        json_t *st = s->json, *proc = json_object_get(st, "ItemProcessor"), *it = json_object_get(st, "Iterator");
        const char *name = s->name;
        json_t *cfg, *v;
        _cleanup_free_ char *where = NULL;
        const char *k;

        if (!!proc == !!it)
                return load_fail(ld, "State '%s': a Map needs exactly one of ItemProcessor and Iterator", name);
        if (json_object_get(st, "ItemSelector") && json_object_get(st, "Parameters"))
                return load_fail(ld, "State '%s': ItemSelector and Parameters are exclusive", name);
        if (json_object_get(st, "MaxConcurrency") && json_object_get(st, "MaxConcurrencyPath"))
                return load_fail(ld, "State '%s': MaxConcurrency and MaxConcurrencyPath are exclusive", name);
        v = json_object_get(st, "MaxConcurrency");
        if (v && !is_nonneg_int(v))
                return load_fail(ld, "State '%s': MaxConcurrency must be a non-negative integer", name);
        if (proc) {
                if (!json_is_object(proc))
                        return load_fail(ld, "State '%s': ItemProcessor must be an object", name);
                cfg = json_object_get(proc, "ProcessorConfig");
                if (cfg) {
                        if (!json_is_object(cfg))
                                return load_fail(ld, "State '%s': ProcessorConfig must be an object", name);
                        json_object_foreach (cfg, k, v) {
                                if (streq(k, "Mode")) {
                                        if (!json_is_string(v))
                                                return load_fail(
                                                        ld, "State '%s': ProcessorConfig.Mode must be a string", name);
                                        if (streq(json_string_value(v), "DISTRIBUTED"))
                                                return load_fail(ld,
                                                                 "State '%s': Distributed Map is not supported "
                                                                 "(ProcessorConfig.Mode DISTRIBUTED)",
                                                                 name);
                                        if (!streq(json_string_value(v), "INLINE"))
                                                return load_fail(ld, "State '%s': unknown ProcessorConfig.Mode '%s'",
                                                                 name, json_string_value(v));
                                } else if (!streq(k, "ExecutionType"))
                                        return load_fail(ld, "State '%s': ProcessorConfig: unknown field '%s'", name,
                                                         k);
                        }
                }
        } else if (!json_is_object(it))
                return load_fail(ld, "State '%s': Iterator must be an object", name);
        where = mem_printf("State '%s': %s", name, proc ? "ItemProcessor" : "Iterator");
        if (!where)
                return -ENOMEM;
        return load_machine(ld, proc ?: it, where, false, &s->processor);
}

static int check_parallel(Loader *ld, State *s) {
        json_t *branches = json_object_get(s->json, "Branches"), *b;
        const char *name = s->name;
        size_t i;
        int r;

        if (!json_is_array(branches) || json_array_size(branches) == 0)
                return load_fail(ld, "State '%s': a Parallel needs a non-empty Branches array", name);
        s->branches = mem_new(unsigned, json_array_size(branches));
        if (!s->branches)
                return -ENOMEM;
        json_array_foreach (branches, i, b) {
                _cleanup_free_ char *where = mem_printf("State '%s': Branches[%zu]", name, i);
                if (!where)
                        return -ENOMEM;
                if (!json_is_object(b))
                        return load_fail(ld, "%s must be an object", where);
                r = load_machine(ld, b, where, false, &s->branches[i]);
                if (r < 0)
                        return r;
                s->n_branches++;
        }
        return 0;
}

static bool path_uses_context(const AslPath *p) {
        return p && asl_path_uses_context(p);
}

static bool template_uses_context(const AslTemplate *t) {
        return t && asl_template_uses_context(t);
}

/* Whether running s reads the context object anywhere, so that it is
 * built only for the states that do. */
static bool state_uses_context(const State *s) {
        bool u = path_uses_context(s->input_path.path) || path_uses_context(s->output_path.path) ||
                template_uses_context(s->parameters) || template_uses_context(s->result_selector) ||
                template_uses_context(s->item_selector) || path_uses_context(s->items_path) ||
                path_uses_context(s->max_concurrency_path) || path_uses_context(s->seconds_path) ||
                path_uses_context(s->timestamp_path) || (s->error_expr && asl_expr_uses_context(s->error_expr)) ||
                (s->cause_expr && asl_expr_uses_context(s->cause_expr));

        for (size_t i = 0; !u && i < s->n_rules; i++)
                u = asl_rule_uses_context(s->rules[i]);
        return u;
}

static int check_state_type(Loader *ld, State *s) {
        switch (s->type) {
        case ST_TASK:
                return check_task(ld, s);
        case ST_CHOICE:
                return check_choice(ld, s);
        case ST_WAIT:
                return check_wait(ld, s);
        case ST_FAIL:
                return check_fail(ld, s);
        case ST_PARALLEL:
                return check_parallel(ld, s);
        case ST_MAP:
                return check_processor(ld, s);
        default:
                return 0;
        }
}

static int check_state(Loader *ld, State *s) {
        json_t *type, *v, *next, *end, *st = s->json;
        const char *k, *name = s->name;
        StateType t;
        int r;

        if (strlen(name) == 0 || strlen(name) > ASL_STATE_NAME_MAX)
                return load_fail(ld, "State '%s': a state name must have 1 to %u characters", name, ASL_STATE_NAME_MAX);
        if (!json_is_object(st))
                return load_fail(ld, "State '%s' must be an object", name);
        type = json_object_get(st, "Type");
        if (!json_is_string(type))
                return load_fail(ld, "State '%s': Type is missing", name);
        t = state_type_from_string(json_string_value(type));
        if (t < 0)
                return load_fail(ld, "State '%s': unknown state type '%s'", name, json_string_value(type));
        s->type = t;
        if (json_object_get(st, "QueryLanguage")) {
                _cleanup_free_ char *where = mem_printf("State '%s'", name);
                if (!where)
                        return -ENOMEM;
                r = check_query_language(ld, st, where);
                if (r < 0)
                        return r;
        }
        json_object_foreach (st, k, v) {
                for (size_t i = 0; i < ELEMENTSOF(unsupported_fields); i++)
                        if (streq(unsupported_fields[i].field, k))
                                return load_fail(ld, "State '%s': %s %s", name, k, unsupported_fields[i].why);
                if (!field_allowed(t, k))
                        return load_fail(ld, "State '%s': field '%s' is not allowed in a %s state", name, k,
                                         state_type_table[t]);
        }

        /* Transitions. */
        next = json_object_get(st, "Next");
        end = json_object_get(st, "End");
        if (end && !json_is_boolean(end))
                return load_fail(ld, "State '%s': End must be a boolean", name);
        if (IN_SET_TERMINAL(t)) {
                /* Choice, Succeed and Fail have neither. */
        } else if (json_is_true(end)) {
                if (next)
                        return load_fail(ld, "State '%s': Next and End are exclusive", name);
        } else {
                if (!next)
                        return load_fail(ld, "State '%s': a %s state needs Next or \"End\": true", name,
                                         state_type_table[t]);
                r = check_next(ld, s->machine, name, "Next", next, &s->next);
                if (r < 0)
                        return r;
        }

        /* Paths and templates. */
        r = check_path_field_of(ld, st, name, "InputPath", false, true, &s->input_path);
        if (r >= 0)
                r = check_path_field_of(ld, st, name, "OutputPath", false, true, &s->output_path);
        if (r >= 0)
                r = check_path_field_of(ld, st, name, "ResultPath", true, false, &s->result_path);
        if (r >= 0)
                r = check_path_field(ld, st, name, "ItemsPath", true, true, &s->items_path, NULL);
        if (r >= 0)
                r = check_path_field(ld, st, name, "MaxConcurrencyPath", true, true, &s->max_concurrency_path, NULL);
        if (r >= 0)
                r = check_template_field(ld, st, name, "Parameters", &s->parameters);
        if (r >= 0)
                r = check_template_field(ld, st, name, "ResultSelector", &s->result_selector);
        if (r >= 0)
                r = check_template_field(ld, st, name, "ItemSelector", &s->item_selector);
        if (r < 0)
                return r;
        if (t == ST_MAP && !s->item_selector)
                s->item_selector = TAKE_PTR(s->parameters); /* the older name of ItemSelector */
        v = json_object_get(st, "ResultSelector");
        if (v && !json_is_object(v))
                return load_fail(ld, "State '%s': ResultSelector must be an object", name);
        v = json_object_get(st, "ItemSelector");
        if (v && !json_is_object(v))
                return load_fail(ld, "State '%s': ItemSelector must be an object", name);

        r = check_retry(ld, st, name);
        if (r >= 0)
                r = check_catch(ld, s);
        if (r >= 0)
                r = check_state_type(ld, s);
        if (r < 0)
                return r;
        s->uses_context = state_uses_context(s);
        return 0;
}

/* Load the machine obj (the top level, a branch, a processor) and those
 * below it; *ret_index is its place in the definition's table. */
static int load_machine(Loader *ld, json_t *obj, const char *where, bool top, unsigned *ret_index) {
        json_t *states = json_object_get(obj, "States"), *start = json_object_get(obj, "StartAt"), *st, *v;
        unsigned index = (unsigned) ld->def->n_machines;
        State *table;
        Machine *m;
        const char *k;
        size_t n = 0;
        int r;

        if (++ld->depth > ASL_DEPTH_MAX / 4)
                return load_fail(ld, "%s: Parallel and Map states nested too deeply", where);
        json_object_foreach (obj, k, v)
                if (!streq(k, "StartAt") && !streq(k, "States") && !streq(k, "Comment") && !streq(k, "QueryLanguage") &&
                    !(top && (streq(k, "Version") || streq(k, "TimeoutSeconds"))) &&
                    !(!top && streq(k, "ProcessorConfig")))
                        return load_fail(ld, "%s: unknown field '%s'", where, k);
        r = check_query_language(ld, obj, where);
        if (r < 0)
                return r;
        if (!json_is_string(start))
                return load_fail(ld, "%s: StartAt is missing", where);
        if (!json_is_object(states) || json_object_size(states) == 0)
                return load_fail(ld, "%s: States must be a non-empty object", where);
        if (!json_object_get(states, json_string_value(start)))
                return load_fail(ld, "%s: StartAt names a state '%s' that does not exist", where,
                                 json_string_value(start));

        m = mem_realloc(ld->def->machines, (ld->def->n_machines + 1) * sizeof(Machine));
        if (!m)
                return -ENOMEM;
        ld->def->machines = m;
        table = mem_new(State, json_object_size(states));
        if (!table)
                return -ENOMEM;
        json_object_foreach (states, k, st)
                table[n++] = (State){ .name = k, .json = st, .machine = index };
        m[ld->def->n_machines++] = (Machine){ obj, table, n, NULL };
        m[index].start = machine_state(&m[index], json_string_value(start));

        /* All names first: a state's transitions may lead to any of them. */
        for (size_t i = 0; i < n; i++) {
                r = check_state(ld, &table[i]);
                if (r < 0)
                        return r;
        }
        ld->depth--;
        *ret_index = index;
        return 0;
}

int asl_definition_load_json(json_t *definition, AslDefinition **ret, char **ret_error) {
        _cleanup_(asl_definition_unrefp) AslDefinition *d = NULL;
        Loader ld = {};
        json_t *to;
        int r;

        d = mem_new(AslDefinition, 1);
        if (!d)
                return -ENOMEM;
        d->n_ref = 1;
        d->root = json_deep_copy(definition);
        d->invoke = (InvokeParts){
                .latest = json_string("$LATEST"),
                .latest_list = list_of(json_string("$LATEST")),
                .json_type = json_string("application/json"),
                .json_type_list = list_of(json_string("application/json")),
                .status = json_integer(200),
        };
        if (!d->root || !d->invoke.latest || !d->invoke.latest_list || !d->invoke.json_type ||
            !d->invoke.json_type_list || !d->invoke.status)
                return -ENOMEM;
        ld.def = d;
        if (!json_is_object(d->root))
                r = load_fail(&ld, "the definition must be a JSON object");
        else
                r = load_machine(&ld, d->root, "the definition", true, &(unsigned){ 0 });
        if (r >= 0) {
                to = json_object_get(d->root, "TimeoutSeconds");
                if (to && (!is_positive_int(to) || json_integer_value(to) > 99999999))
                        r = load_fail(&ld, "the definition: TimeoutSeconds must be a positive integer");
                else if (to)
                        d->timeout_usec = (uint64_t) json_integer_value(to) * USEC_PER_SEC;
        }
        if (r < 0) {
                if (ret_error && r == -EINVAL)
                        *ret_error = TAKE_PTR(ld.error);
                free(ld.error);
                return r;
        }
        *ret = TAKE_PTR(d);
        return 0;
}

int asl_definition_load(const char *text, AslDefinition **ret, char **ret_error) {
        json_error_t jerr;
        unsigned long failures = alloc_failures();
        json_t *j;
        int r;

        j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        if (!j) {
                if (alloc_failures() != failures)
                        return -ENOMEM;
                if (ret_error) {
                        *ret_error = mem_printf("the definition is not JSON: line %d: %s", jerr.line, jerr.text);
                        if (!*ret_error)
                                return -ENOMEM;
                }
                return -EINVAL;
        }
        r = asl_definition_load_json(j, ret, ret_error);
        json_decref(j);
        return r;
}

/* ---- executions ------------------------------------------------------------ */

typedef enum Phase {
        PH_ENTER, /* about to enter state */
        PH_RUN, /* entered: run it (again, after a retry delay) */
        PH_TASK, /* waiting for the task with token */
        PH_RETRY, /* waiting for deadline to run the state again */
        PH_WAIT, /* a Wait state until deadline */
        PH_CHILDREN, /* Parallel/Map: waiting for child frames */
        PH_DONE, /* a child frame that ended with output */
        PH_FAILED, /* a child frame that failed with error, cause */
        _PH_MAX,
        _PH_INVALID = -EINVAL,
} Phase;

static const char *const phase_table[_PH_MAX] = {
        [PH_ENTER] = "enter", [PH_RUN] = "run",           [PH_TASK] = "task", [PH_RETRY] = "retry",
        [PH_WAIT] = "wait",   [PH_CHILDREN] = "children", [PH_DONE] = "done", [PH_FAILED] = "failed",
};

typedef struct Frame {
        uint64_t id, parent; /* parent 0: the top level */
        unsigned machine, index; /* index: the branch or item number in the parent */
        const State *st; /* in the definition, which the execution holds */
        Phase phase;
        json_t *input; /* the state's raw input */
        json_t *effective; /* after InputPath (and Parameters for Task and Parallel) */
        uint64_t entered_usec;
        unsigned retry_count;
        unsigned attempts[ASL_RETRIERS_MAX];
        uint64_t deadline; /* PH_WAIT, PH_RETRY */
        char *token; /* PH_TASK */
        uint64_t timeout_at, heartbeat_at, heartbeat_usec;
        json_t *results; /* PH_CHILDREN: the outputs, in order */
        json_t *items; /* Map: the iteration inputs */
        unsigned next_child, active, max_concurrency;
        bool dirty; /* PH_CHILDREN: a child ended */
        json_t *output; /* PH_DONE */
        char *error, *cause; /* PH_FAILED */
        uint64_t last_event;
} Frame;

typedef enum EventKind {
        EV_DETAILS, /* the details as they are, or none */
        EV_STATE, /* {"name", field: value as text} */
        EV_EXECUTION_STARTED, /* {"input": value as text, "roleArn"} */
        EV_EXECUTION_SUCCEEDED, /* {"output": value as text} */
        EV_TASK_SCHEDULED, /* {"resourceType", "resource", "region", "parameters": value as text,
                            * "timeoutInSeconds"[, "heartbeatInSeconds"]} */
        EV_TASK_STARTED, /* {"resourceType", "resource"} */
        EV_TASK_SUCCEEDED, /* {"resourceType", "resource", "output": value as text} */
} EventKind;

/* A history event as recorded.  What GetExecutionHistory shows — the
 * state's data as JSON text, the time in RFC 3339 — is made from it only
 * when the history is read or the execution serialised: writing the whole
 * document out as text twice per state was most of the cost of a step, and
 * a run that nobody reads the history of (asl run) need not pay it.  The
 * values are the state's own, which never change once made. */
typedef struct Event {
        EventKind kind;
        const char *type, *key; /* static: the event's type, its details' key */
        const char *field; /* EV_STATE: "input" or "output" */
        const char *name; /* EV_STATE: the state's; EV_TASK_*: the resource; in the definition */
        json_t *value; /* EV_DETAILS: the details; otherwise what is shown as text */
        uint64_t previous, usec, timeout, heartbeat;
} Event;

struct AslExecution {
        AslDefinition *def;
        char *name, *machine_name;
        json_t *input;
        uint64_t start_usec, now_usec, deadline; /* deadline: execution timeout, UINT64_MAX none */
        AslStatus status;
        json_t *output;
        char *error, *cause;
        unsigned transitions, max_transitions;
        uint64_t rng, next_frame_id;
        json_t *events; /* rendered */
        uint64_t events_offset; /* events before those in events, kept by the caller (asl_execution_take_history()) */
        Event *pending; /* recorded after them, not rendered yet; not serialised as such */
        size_t n_pending, n_pending_max;
        json_t *stamp; /* the last timestamp rendered, shared by events of the same time */
        uint64_t stamp_usec;
        bool history_full;
        Frame **frames;
        size_t n_frames;
        AslTask *out; /* scheduled during this step; not serialised */
        size_t n_out;
};

void asl_task_clear(AslTask *t) {
        if (!t)
                return;
        free(t->token);
        free(t->state);
        free(t->resource);
        free(t->function);
        free(t->qualifier);
        json_decref(t->payload);
        *t = (AslTask){};
}

AslTask *asl_tasks_free(AslTask *t, size_t n) {
        for (size_t i = 0; t && i < n; i++)
                asl_task_clear(&t[i]);
        free(t);
        return NULL;
}

static Frame *frame_free(Frame *f) {
        if (!f)
                return NULL;
        json_decref(f->input);
        json_decref(f->effective);
        free(f->token);
        json_decref(f->results);
        json_decref(f->items);
        json_decref(f->output);
        free(f->error);
        free(f->cause);
        free(f);
        return NULL;
}

AslExecution *asl_execution_free(AslExecution *e) {
        if (!e)
                return NULL;
        asl_definition_unref(e->def);
        free(e->name);
        free(e->machine_name);
        json_decref(e->input);
        json_decref(e->output);
        free(e->error);
        free(e->cause);
        json_decref(e->events);
        for (size_t i = 0; i < e->n_pending; i++)
                json_decref(e->pending[i].value);
        free(e->pending);
        json_decref(e->stamp);
        for (size_t i = 0; i < e->n_frames; i++)
                frame_free(e->frames[i]);
        free(e->frames);
        asl_tasks_free(e->out, e->n_out);
        free(e);
        return NULL;
}

static uint64_t rng_next(AslExecution *e) {
        /* splitmix64: the state is one number, so it serialises. */
        uint64_t z = (e->rng += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* A task token: 32 hex digits from the generator. */
static int new_token(AslExecution *e, char **ret) {
        uint64_t a = rng_next(e), b = rng_next(e);
        char *t = mem_malloc(33);

        if (!t)
                return -ENOMEM;
        hex(hex(t, b, 16), a, 16)[0] = '\0';
        *ret = t;
        return 0;
}

static Frame *frame_get(AslExecution *e, uint64_t id) {
        for (size_t i = 0; i < e->n_frames; i++)
                if (e->frames[i]->id == id)
                        return e->frames[i];
        return NULL;
}

static int frame_add(AslExecution *e, Frame **ret) {
        Frame **a, *f;

        f = mem_new(Frame, 1);
        if (!f)
                return -ENOMEM;
        a = mem_realloc(e->frames, (e->n_frames + 1) * sizeof(Frame *));
        if (!a) {
                free(f);
                return -ENOMEM;
        }
        e->frames = a;
        f->id = ++e->next_frame_id;
        e->frames[e->n_frames++] = f;
        *ret = f;
        return 0;
}

/* Remove the frames below id (not id itself). */
static void frames_remove_below(AslExecution *e, uint64_t id) {
        for (size_t i = 0; i < e->n_frames;) {
                Frame *f = e->frames[i];
                if (f->parent != id) {
                        i++;
                        continue;
                }
                frames_remove_below(e, f->id);
                /* The recursion may have moved f: find it again. */
                for (i = 0; i < e->n_frames && e->frames[i] != f; i++)
                        ;
                memmove(e->frames + i, e->frames + i + 1, (e->n_frames - i - 1) * sizeof(Frame *));
                e->n_frames--;
                frame_free(f);
                i = 0;
        }
}

static void frames_remove_all(AslExecution *e) {
        for (size_t i = 0; i < e->n_frames; i++)
                frame_free(e->frames[i]);
        e->n_frames = 0;
}

static int timestamp_json(uint64_t usec, json_t **ret) {
        char buf[64];

        asl_timestamp_format((int64_t) usec, buf, sizeof buf);
        *ret = json_string(buf);
        return *ret ? 0 : -ENOMEM;
}

/* Record one history event (ev->value stolen). */
static int record(AslExecution *e, Frame *f, Event ev) {
        uint64_t id = e->events_offset + json_array_size(e->events) + e->n_pending + 1;

        if (id > ASL_EVENTS_MAX) {
                json_decref(ev.value);
                e->history_full = true;
                return 0;
        }
        if (e->n_pending == e->n_pending_max) {
                size_t n = MAX(e->n_pending_max * 2, (size_t) 32);
                Event *a = mem_realloc(e->pending, n * sizeof(Event));
                if (!a) {
                        json_decref(ev.value);
                        return -ENOMEM;
                }
                e->pending = a;
                e->n_pending_max = n;
        }
        ev.previous = f ? f->last_event : id - 1;
        ev.usec = e->now_usec;
        e->pending[e->n_pending++] = ev;
        if (f)
                f->last_event = id;
        return 0;
}

/* Record one history event; details (stolen, may be NULL) under key. */
static int emit(AslExecution *e, Frame *f, const char *type, const char *key, json_t *details) {
        return record(e, f, (Event){ .kind = EV_DETAILS, .type = type, .key = key, .value = details });
}

#define STATE_EVENT_TYPES(t)                                                                                           \
        { t "StateEntered", t "StateExited" }
static const char *const state_event_types[_ST_MAX][2] = {
        [ST_PASS] = STATE_EVENT_TYPES("Pass"),         [ST_TASK] = STATE_EVENT_TYPES("Task"),
        [ST_CHOICE] = STATE_EVENT_TYPES("Choice"),     [ST_WAIT] = STATE_EVENT_TYPES("Wait"),
        [ST_SUCCEED] = STATE_EVENT_TYPES("Succeed"),   [ST_FAIL] = STATE_EVENT_TYPES("Fail"),
        [ST_PARALLEL] = STATE_EVENT_TYPES("Parallel"), [ST_MAP] = STATE_EVENT_TYPES("Map"),
};

/* …StateEntered with the state's input, or …StateExited with its output. */
static int emit_state(AslExecution *e, Frame *f, bool entered, json_t *value) {
        return record(e, f,
                      (Event){ .kind = EV_STATE,
                               .type = state_event_types[f->st->type][entered ? 0 : 1],
                               .key = entered ? "stateEnteredEventDetails" : "stateExitedEventDetails",
                               .field = entered ? "input" : "output",
                               .name = f->st->name,
                               .value = json_incref(value) });
}

/* JSON text of v for an event's details, as GetExecutionHistory shows. */
static json_t *dumps_json(json_t *v) {
        char *s = mem_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        json_t *j;

        if (!s)
                return NULL;
        j = json_string_nocheck(s); /* jansson's own output is UTF-8 */
        free(s);
        return j;
}

/* Values rendered as text by one history_render(): a state's output is
 * the next one's input, a task's parameters often its state's input, the
 * same object each time; rendered once.  The events hold their values
 * while it runs, so a pointer cannot stand for another value meanwhile. */
#define DUMPED_MAX 4
typedef struct Dumped {
        json_t *value, *text[DUMPED_MAX];
        const json_t *of[DUMPED_MAX];
        unsigned next;
} Dumped;

static json_t *dumps_json_memo(Dumped *m, json_t *v) {
        json_t *t;

        for (unsigned i = 0; i < DUMPED_MAX; i++)
                if (m->text[i] && m->of[i] == v)
                        return json_incref(m->text[i]);
        t = dumps_json(v);
        if (!t)
                return NULL;
        json_decref(m->text[m->next]);
        m->text[m->next] = json_incref(t);
        m->of[m->next] = v;
        m->next = (m->next + 1) % DUMPED_MAX;
        return t;
}

static void dumped_done(Dumped *m) {
        for (unsigned i = 0; i < DUMPED_MAX; i++)
                json_decref(m->text[i]);
}

/* The details of ev as GetExecutionHistory shows them (NULL for none):
 * 0 and a new reference in *ret, or -ENOMEM. */
static int event_details(const Event *ev, Dumped *m, json_t **ret) {
        json_t *d = NULL, *s = NULL;

        if (ev->kind == EV_DETAILS) {
                *ret = json_incref(ev->value);
                return 0;
        }
        if (ev->kind != EV_TASK_STARTED) {
                s = dumps_json_memo(m, ev->value);
                if (!s)
                        return -ENOMEM;
        }
        switch (ev->kind) {
        case EV_STATE:
                d = json_pack("{s:s,s:o}", "name", ev->name, ev->field, s);
                break;
        case EV_EXECUTION_STARTED:
                d = json_pack("{s:o,s:s}", "input", s, "roleArn", "arn:aws:iam::000000000000:role/deliveryd-local");
                break;
        case EV_EXECUTION_SUCCEEDED:
                d = json_pack("{s:o}", "output", s);
                break;
        case EV_TASK_SCHEDULED:
                d = json_pack("{s:s,s:s,s:s,s:o,s:I}", "resourceType", "lambda", "resource", ev->name, "region",
                              "local", "parameters", s, "timeoutInSeconds", (json_int_t) ev->timeout);
                if (d && ev->heartbeat &&
                    json_object_set_new(d, "heartbeatInSeconds", json_integer((json_int_t) ev->heartbeat)) < 0)
                        d = json_decref_ptr(d);
                break;
        case EV_TASK_STARTED:
                d = json_pack("{s:s,s:s}", "resourceType", "lambda", "resource", ev->name);
                break;
        case EV_TASK_SUCCEEDED:
                d = json_pack("{s:s,s:s,s:o}", "resourceType", "lambda", "resource", ev->name, "output", s);
                break;
        default:
                json_decref(s);
                return -EIO;
        }
        *ret = d;
        return d ? 0 : -ENOMEM;
}

/* The timestamp of an event at usec: the same string as the last one's
 * when it is the same time, as it mostly is.  A new reference. */
static json_t *event_stamp(AslExecution *e, uint64_t usec) {
        if (!e->stamp || e->stamp_usec != usec) {
                json_t *ts;
                if (timestamp_json(usec, &ts) < 0)
                        return NULL;
                json_decref(e->stamp);
                e->stamp = ts;
                e->stamp_usec = usec;
        }
        return json_incref(e->stamp);
}

/* Render the recorded events into e->events, in order. */
static int history_render(AslExecution *e) {
        Dumped m = {};
        size_t i;
        int r = 0;

        for (i = 0; i < e->n_pending; i++) {
                const Event *ev = &e->pending[i];
                uint64_t id = e->events_offset + json_array_size(e->events) + 1;
                json_t *o, *d = NULL, *ts;

                r = event_details(ev, &m, &d);
                if (r < 0)
                        break;
                ts = event_stamp(e, ev->usec);
                o = ts ? json_pack("{s:I,s:I,s:o,s:s}", "id", (json_int_t) id, "previousEventId",
                                   (json_int_t) ev->previous, "timestamp", ts, "type", ev->type)
                       : NULL;
                if (!o || (d && json_object_set_new(o, ev->key, TAKE_PTR(d)) < 0) ||
                    json_array_append_new(e->events, TAKE_PTR(o)) < 0) {
                        json_decref(d);
                        json_decref(o);
                        r = -ENOMEM;
                        break;
                }
                json_decref(ev->value);
        }
        if (i > 0) {
                memmove(e->pending, e->pending + i, (e->n_pending - i) * sizeof(Event));
                e->n_pending -= i;
        }
        dumped_done(&m);
        return r;
}

static int set_str(char **p, const char *s) {
        char *c = NULL;

        if (s) {
                c = mem_strdup(s);
                if (!c)
                        return -ENOMEM;
        }
        free(*p);
        *p = c;
        return 0;
}

static void frame_reset_state(Frame *f) {
        f->retry_count = 0;
        memset(f->attempts, 0, sizeof f->attempts);
        f->deadline = 0;
        f->token = mem_free_ptr(f->token);
        f->results = json_decref_ptr(f->results);
        f->items = json_decref_ptr(f->items);
        f->effective = json_decref_ptr(f->effective);
        f->next_child = f->active = f->max_concurrency = 0;
        f->dirty = false;
}

/* The execution ends: every frame goes. */
static int execution_end(AslExecution *e, AslStatus status, json_t *output, const char *error, const char *cause) {
        json_t *d = NULL;
        int r;

        e->status = status;
        if (status == ASL_SUCCEEDED) {
                e->output = json_incref(output);
                r = record(e, NULL,
                           (Event){ .kind = EV_EXECUTION_SUCCEEDED,
                                    .type = "ExecutionSucceeded",
                                    .key = "executionSucceededEventDetails",
                                    .value = json_incref(output) });
        } else {
                r = set_str(&e->error, error);
                if (r >= 0)
                        r = set_str(&e->cause, cause);
                if (r < 0)
                        return r;
                d = json_pack("{s:s}", "error", error);
                if (!d || (cause && json_object_set_new(d, "cause", json_string(cause)) < 0)) {
                        json_decref(d);
                        return -ENOMEM;
                }
                r = emit(e, NULL, status == ASL_TIMED_OUT ? "ExecutionTimedOut" : "ExecutionFailed",
                         status == ASL_TIMED_OUT ? "executionTimedOutEventDetails" : "executionFailedEventDetails", d);
        }
        frames_remove_all(e);
        return r;
}

/* The context object of frame f ("$$"). token and map_value may be NULL. */
static int build_context(AslExecution *e, Frame *f, const char *token, int64_t map_index, json_t *map_value,
                         json_t **ret) {
        json_t *c, *start, *entered;
        _cleanup_free_ char *exec_arn = NULL, *sm_arn = NULL;
        int r;

        r = timestamp_json(e->start_usec, &start);
        if (r < 0)
                return r;
        r = timestamp_json(f ? f->entered_usec : e->start_usec, &entered);
        if (r < 0) {
                json_decref(start);
                return r;
        }
        exec_arn = mem_printf("arn:aws:states:local:000000000000:execution:%s:%s", e->machine_name, e->name);
        sm_arn = mem_printf("arn:aws:states:local:000000000000:stateMachine:%s", e->machine_name);
        if (!exec_arn || !sm_arn) {
                json_decref(start);
                json_decref(entered);
                return -ENOMEM;
        }
        c = json_pack("{s:{s:s,s:s,s:O,s:o,s:s},s:{s:s,s:o,s:I},s:{s:s,s:s}}", "Execution", "Id", exec_arn, "Name",
                      e->name, "Input", e->input, "StartTime", start, "RoleArn",
                      "arn:aws:iam::000000000000:role/deliveryd-local", "State", "Name", f ? f->st->name : "",
                      "EnteredTime", entered, "RetryCount", (json_int_t) (f ? f->retry_count : 0), "StateMachine", "Id",
                      sm_arn, "Name", e->machine_name);
        if (!c)
                return -ENOMEM;
        if (token && json_object_set_new(c, "Task", json_pack("{s:s}", "Token", token)) < 0)
                goto oom;
        if (map_value &&
            json_object_set_new(
                    c, "Map", json_pack("{s:{s:I,s:O}}", "Item", "Index", (json_int_t) map_index, "Value", map_value)) <
                    0)
                goto oom;
        *ret = c;
        return 0;
oom:
        json_decref(c);
        return -ENOMEM;
}

static int frame_fail(AslExecution *e, Frame *f, const char *error, const char *cause);
static int state_error(AslExecution *e, Frame *f, const char *error, const char *cause);

/* An AslFailure from asl-data becomes the state's error.  Returns r when
 * it was not a run-time failure (-ENOMEM), else what handling it returns. */
static int data_failure(AslExecution *e, Frame *f, int r, AslFailure *fl) {
        if (r == -EINVAL) {
                _cleanup_free_ char *cause = TAKE_PTR(fl->cause);
                const char *err = fl->error ?: "States.Runtime";
                asl_failure_clear(fl);
                return state_error(e, f, err, cause);
        }
        asl_failure_clear(fl);
        return r;
}

/* Select with a path field from input: absent gives input, null gives {}. */
static int select_field(const PathField *p, json_t *input, json_t *ctx, json_t **ret, AslFailure *fl) {
        if (p->path)
                return asl_path_eval(p->path, input, ctx, ret, fl);
        if (p->null) {
                *ret = json_object();
                return *ret ? 0 : -ENOMEM;
        }
        *ret = json_incref(input);
        return 0;
}

/* InputPath, then Parameters (when with_parameters). */
static int effective_input(Frame *f, bool with_parameters, json_t *ctx, json_t **ret, AslFailure *fl) {
        const AslTemplate *params = with_parameters ? f->st->parameters : NULL;
        json_t *in = NULL;
        int r;

        r = select_field(&f->st->input_path, f->input, ctx, &in, fl);
        if (r < 0 || !params) {
                if (r >= 0)
                        *ret = in;
                return r;
        }
        r = asl_template_apply(params, in, ctx, ret, fl);
        json_decref(in);
        return r;
}

/* The context object for f when its state reads one, else NULL. */
static int state_context(AslExecution *e, Frame *f, const char *token, json_t **ret) {
        if (!f->st->uses_context) {
                *ret = NULL;
                return 0;
        }
        return build_context(e, f, token, 0, NULL, ret);
}

/* ResultPath (or a catcher's): store value in input. */
static int store_result(const PathField *p, json_t *input, json_t *value, json_t **ret, AslFailure *fl) {
        if (p->null)
                return asl_path_store(NULL, input, value, ret, fl);
        if (!p->path) {
                *ret = json_incref(value); /* absent: "$" */
                return 0;
        }
        return asl_path_store(p->path, input, value, ret, fl);
}

/* Leave the state with output: on to Next, or the frame ends. */
static int transition(AslExecution *e, Frame *f, json_t *output) {
        int r;

        if (f->st->type != ST_FAIL) {
                r = emit_state(e, f, false, output);
                if (r < 0)
                        return r;
        }
        if (!f->parent)
                return execution_end(e, ASL_SUCCEEDED, output, NULL, NULL);
        f->phase = PH_DONE;
        json_decref(f->output);
        f->output = json_incref(output);
        frame_get(e, f->parent)->dirty = true;
        return 0;
}

/* Leave the state with output for state next (NULL: the state's own Next, or its end). */
static int goto_state(AslExecution *e, Frame *f, json_t *output, const State *next) {
        int r;

        if (!next)
                next = f->st->next;
        if (!next)
                return transition(e, f, output);
        r = emit_state(e, f, false, output);
        if (r < 0)
                return r;
        f->st = next;
        frame_reset_state(f);
        json_decref(f->input);
        f->input = json_incref(output);
        f->phase = PH_ENTER;
        return 0;
}

/* A result of a Task, Parallel, Map or Pass: ResultSelector, ResultPath, OutputPath, on. */
static int finish_state(AslExecution *e, Frame *f, json_t *result) {
        _cleanup_(json_decrefp) json_t *ctx = NULL, *selected = NULL, *combined = NULL, *out = NULL;
        const State *st = f->st;
        AslFailure fl = {};
        int r;

        r = state_context(e, f, NULL, &ctx);
        if (r < 0)
                return r;
        if (st->result_selector && st->type != ST_PASS) {
                r = asl_template_apply(st->result_selector, result, ctx, &selected, &fl);
                if (r < 0)
                        return data_failure(e, f, r, &fl);
        } else
                selected = json_incref(result);
        r = store_result(&st->result_path, f->input, selected, &combined, &fl);
        if (r < 0)
                return data_failure(e, f, r, &fl);
        r = select_field(&st->output_path, combined, ctx, &out, &fl);
        if (r < 0)
                return data_failure(e, f, r, &fl);
        return goto_state(e, f, out, NULL);
}

static bool error_matches(json_t *error_equals, const char *error) {
        json_t *v;
        size_t i;

        if (streq(error, "States.Runtime") || streq(error, "States.DataLimitExceeded"))
                return false; /* terminal: neither retried nor caught */
        json_array_foreach (error_equals, i, v) {
                const char *s = json_string_value(v);
                bool timeout = streq(error, "States.Timeout") || streq(error, "States.HeartbeatTimeout");
                if (streq(s, error) || streq(s, "States.ALL"))
                        return true;
                if (streq(s, "States.TaskFailed") && !timeout)
                        return true;
                if (streq(s, "States.Timeout") && timeout)
                        return true;
        }
        return false;
}

static int json_to_int(json_t *o, const char *k, int64_t def) {
        json_t *v = json_object_get(o, k);
        return v ? (int) json_integer_value(v) : (int) def;
}

/* The state failed with error: Retry, else Catch, else the frame fails. */
static int state_error(AslExecution *e, Frame *f, const char *error, const char *cause) {
        json_t *retry = json_object_get(f->st->json, "Retry"), *rt;
        size_t i;
        int r;

        frames_remove_below(e, f->id);
        f->token = mem_free_ptr(f->token);
        json_array_foreach (retry, i, rt) {
                double interval, backoff, delay, max_delay;
                unsigned max_attempts;
                if (!error_matches(json_object_get(rt, "ErrorEquals"), error))
                        continue;
                max_attempts = (unsigned) json_to_int(rt, "MaxAttempts", 3);
                if (f->attempts[i] >= max_attempts)
                        break; /* the first matching retrier decides: exhausted, on to Catch */
                interval = json_to_int(rt, "IntervalSeconds", 1);
                backoff = json_object_get(rt, "BackoffRate") ? json_number_value(json_object_get(rt, "BackoffRate"))
                                                             : 2.0;
                delay = interval;
                for (unsigned k = 0; k < f->attempts[i] && delay < 99999999.0; k++)
                        delay *= backoff;
                max_delay = json_object_get(rt, "MaxDelaySeconds") ? json_to_int(rt, "MaxDelaySeconds", 0) : 0;
                if (max_delay > 0 && delay > max_delay)
                        delay = max_delay;
                if (delay > 99999999.0)
                        delay = 99999999.0;
                if (streq_ptr(json_string_value(json_object_get(rt, "JitterStrategy")), "FULL"))
                        delay = delay * (double) (rng_next(e) >> 11) / (double) (1ULL << 53);
                f->attempts[i]++;
                f->retry_count++;
                f->phase = PH_RETRY;
                f->deadline = e->now_usec + (uint64_t) (delay * (double) USEC_PER_SEC);
                return 0;
        }
        for (i = 0; i < f->st->n_catchers; i++) {
                const Catcher *c = &f->st->catchers[i];
                _cleanup_(json_decrefp) json_t *eo = NULL, *out = NULL;
                AslFailure fl = {};
                if (!error_matches(c->error_equals, error))
                        continue;
                eo = json_pack("{s:s}", "Error", error);
                if (!eo || (cause && json_object_set_new(eo, "Cause", json_string(cause)) < 0))
                        return -ENOMEM;
                r = store_result(&c->result_path, f->input, eo, &out, &fl);
                if (r < 0) {
                        if (r != -EINVAL) {
                                asl_failure_clear(&fl);
                                return r;
                        }
                        _cleanup_free_ char *cc = TAKE_PTR(fl.cause);
                        asl_failure_clear(&fl);
                        return frame_fail(e, f, "States.Runtime", cc);
                }
                return goto_state(e, f, out, c->next);
        }
        return frame_fail(e, f, error, cause);
}

/* The frame fails: the parent's state fails with the same error, or the execution does. */
static int frame_fail(AslExecution *e, Frame *f, const char *error, const char *cause) {
        Frame *p;
        int r;

        frames_remove_below(e, f->id);
        if (!f->parent)
                return execution_end(e, ASL_FAILED, NULL, error, cause);
        p = frame_get(e, f->parent);
        r = set_str(&f->error, error);
        if (r >= 0)
                r = set_str(&f->cause, cause);
        if (r < 0)
                return r;
        f->phase = PH_FAILED;
        f->token = mem_free_ptr(f->token);
        p->dirty = true;
        return 0;
}

static int task_function(const State *st, json_t *effective, char **ret_name, char **ret_qualifier, char **ret_error) {
        const char *fn;
        int r;

        if (st->resource_kind == RES_LAMBDA_ARN)
                fn = st->resource;
        else
                fn = json_string_value(json_object_get(effective, "FunctionName"));
        if (!fn) {
                *ret_error = mem_strdup("Parameters did not produce a FunctionName string");
                return *ret_error ? -EINVAL : -ENOMEM;
        }
        r = lambda_function_name(fn, ret_name, ret_qualifier);
        if (r == -EINVAL) {
                *ret_error = mem_printf("FunctionName '%s' is not a function name or ARN", fn);
                return *ret_error ? -EINVAL : -ENOMEM;
        }
        return r;
}

static int seconds_from_path(const AslPath *p, const char *field, json_t *input, json_t *ctx, uint64_t *ret,
                             AslFailure *fl) {
        _cleanup_(json_decrefp) json_t *v = NULL;
        int r;

        r = asl_path_eval(p, input, ctx, &v, fl);
        if (r < 0)
                return r;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 99999999)
                return asl_failure_set(fl, "States.Runtime", "%s did not select a non-negative integer of seconds",
                                       field);
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

static int out_append(AslExecution *e, AslTask *t) {
        AslTask *a = mem_realloc(e->out, (e->n_out + 1) * sizeof(AslTask));

        if (!a)
                return -ENOMEM;
        e->out = a;
        e->out[e->n_out++] = *t;
        *t = (AslTask){};
        return 0;
}

/* The AslTask for the task frame f waits for; function and qualifier
 * (taken) when the caller has them already, else found again. */
static int task_describe(Frame *f, char *function, char *qualifier, AslTask *ret) {
        ResourceKind kind = f->st->resource_kind;
        _cleanup_free_ char *err = NULL;
        AslTask t = { .function = function, .qualifier = qualifier };
        int r;

        if (!t.function) {
                r = task_function(f->st, f->effective, &t.function, &t.qualifier, &err);
                if (r < 0)
                        goto fail;
        }
        t.token = mem_strdup(f->token);
        t.state = mem_strdup(f->st->name);
        t.resource = mem_strdup(f->st->resource);
        if (kind == RES_LAMBDA_ARN)
                t.payload = json_incref(f->effective);
        else
                t.payload = json_object_get(f->effective, "Payload")
                        ? json_incref(json_object_get(f->effective, "Payload"))
                        : json_object();
        if (!t.token || !t.state || !t.resource || !t.payload) {
                r = -ENOMEM;
                goto fail;
        }
        t.attempt = f->retry_count + 1;
        t.callback = kind == RES_LAMBDA_INVOKE_WAIT;
        t.timeout_usec = f->timeout_at;
        t.heartbeat_usec = f->heartbeat_at;
        *ret = t;
        return 0;
fail:
        asl_task_clear(&t);
        return r;
}

static const char *resource_short(const char *res) {
        /* taskScheduledEventDetails.resource: "invoke", "invoke.waitForTaskToken", or the ARN */
        return strncmp(res, "arn:aws:states:::lambda:", 24) == 0 ? res + 24 : res;
}

static int run_task(AslExecution *e, Frame *f) {
        const State *st = f->st;
        const char *res = st->resource;
        _cleanup_(json_decrefp) json_t *ctx = NULL, *eff = NULL;
        _cleanup_free_ char *token = NULL, *name = NULL, *qual = NULL, *err = NULL;
        uint64_t timeout = TASK_TIMEOUT_DEFAULT_SEC, heartbeat = 0;
        AslFailure fl = {};
        AslTask t = {};
        json_t *v;
        int r;

        r = new_token(e, &token);
        if (r < 0)
                return r;
        r = state_context(e, f, token, &ctx);
        if (r < 0)
                return r;
        r = effective_input(f, true, ctx, &eff, &fl);
        if (r < 0)
                return data_failure(e, f, r, &fl);
        if ((v = json_object_get(st->json, "TimeoutSeconds")))
                timeout = (uint64_t) json_integer_value(v);
        else if (st->timeout_path) {
                r = seconds_from_path(st->timeout_path, "TimeoutSecondsPath", f->input, ctx, &timeout, &fl);
                if (r < 0)
                        return data_failure(e, f, r, &fl);
                if (timeout == 0)
                        return state_error(e, f, "States.Runtime", "TimeoutSecondsPath selected 0");
        }
        if ((v = json_object_get(st->json, "HeartbeatSeconds")))
                heartbeat = (uint64_t) json_integer_value(v);
        else if (st->heartbeat_path) {
                r = seconds_from_path(st->heartbeat_path, "HeartbeatSecondsPath", f->input, ctx, &heartbeat, &fl);
                if (r < 0)
                        return data_failure(e, f, r, &fl);
        }
        r = task_function(st, eff, &name, &qual, &err);
        if (r == -EINVAL)
                return state_error(e, f, "States.Runtime", err);
        if (r < 0)
                return r;

        json_decref(f->effective);
        f->effective = TAKE_PTR(eff);
        free(f->token);
        f->token = TAKE_PTR(token);
        f->timeout_at = e->now_usec + timeout * USEC_PER_SEC;
        f->heartbeat_usec = heartbeat * USEC_PER_SEC;
        f->heartbeat_at = heartbeat ? e->now_usec + f->heartbeat_usec : UINT64_MAX;
        f->phase = PH_TASK;

        r = record(e, f,
                   (Event){ .kind = EV_TASK_SCHEDULED,
                            .type = "TaskScheduled",
                            .key = "taskScheduledEventDetails",
                            .name = resource_short(res),
                            .value = json_incref(f->effective),
                            .timeout = timeout,
                            .heartbeat = heartbeat });
        if (r >= 0)
                r = record(e, f,
                           (Event){ .kind = EV_TASK_STARTED,
                                    .type = "TaskStarted",
                                    .key = "taskStartedEventDetails",
                                    .name = resource_short(res) });
        if (r < 0)
                return r;
        r = task_describe(f, TAKE_PTR(name), TAKE_PTR(qual), &t);
        if (r < 0)
                return r;
        r = out_append(e, &t);
        asl_task_clear(&t);
        return r;
}

static int spawn_child(AslExecution *e, Frame *p, unsigned machine, unsigned index, json_t *input) {
        Frame *c;
        int r;

        r = frame_add(e, &c);
        if (r < 0)
                return r;
        c->parent = p->id;
        c->machine = machine;
        c->index = index;
        c->st = e->def->machines[machine].start;
        c->input = json_incref(input);
        c->phase = PH_ENTER;
        c->last_event = p->last_event;
        p->active++;
        p->next_child = index + 1;
        return 0;
}

/* Start as many Map iterations as MaxConcurrency lets run. */
static int map_spawn(AslExecution *e, Frame *f) {
        int r;

        while (f->next_child < json_array_size(f->items) &&
               (f->max_concurrency == 0 || f->active < f->max_concurrency)) {
                unsigned i = f->next_child;
                json_t *d = json_pack("{s:I,s:s}", "index", (json_int_t) i, "name", f->st->name);
                if (!d)
                        return -ENOMEM;
                r = emit(e, f, "MapIterationStarted", "mapIterationStartedEventDetails", d);
                if (r < 0)
                        return r;
                r = spawn_child(e, f, f->st->processor, i, json_array_get(f->items, i));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int run_map(AslExecution *e, Frame *f, json_t *ctx) {
        const State *st = f->st;
        const AslTemplate *sel = st->item_selector;
        _cleanup_(json_decrefp) json_t *eff = NULL, *items = NULL, *inputs = NULL, *d = NULL;
        AslFailure fl = {};
        json_t *item, *v;
        size_t i;
        int r;

        r = effective_input(f, false, ctx, &eff, &fl);
        if (r < 0)
                return data_failure(e, f, r, &fl);
        if (st->items_path)
                r = asl_path_eval(st->items_path, eff, ctx, &items, &fl);
        else
                items = json_incref(eff);
        if (r < 0)
                return data_failure(e, f, r, &fl);
        if (!json_is_array(items))
                return state_error(e, f, "States.Runtime", "ItemsPath did not select an array");
        if (json_array_size(items) > ASL_MAP_ITEMS_MAX)
                return state_error(e, f, "States.Runtime", "more Map items than the local engine allows (10000)");
        v = json_object_get(st->json, "MaxConcurrency");
        f->max_concurrency = v ? (unsigned) json_integer_value(v) : 0;
        if (st->max_concurrency_path) {
                uint64_t mc;
                r = seconds_from_path(st->max_concurrency_path, "MaxConcurrencyPath", eff, ctx, &mc, &fl);
                if (r < 0)
                        return data_failure(e, f, r, &fl);
                f->max_concurrency = (unsigned) MIN(mc, (uint64_t) ASL_MAP_ITEMS_MAX);
        }
        inputs = json_array();
        if (!inputs)
                return -ENOMEM;
        json_array_foreach (items, i, item) {
                json_t *in = NULL;
                if (sel) {
                        _cleanup_(json_decrefp) json_t *ictx = NULL;
                        if (asl_template_uses_context(sel)) {
                                r = build_context(e, f, NULL, (int64_t) i, item, &ictx);
                                if (r < 0)
                                        return r;
                        }
                        r = asl_template_apply(sel, eff, ictx, &in, &fl);
                        if (r < 0)
                                return data_failure(e, f, r, &fl);
                } else
                        in = json_incref(item);
                if (json_array_append_new(inputs, in) < 0)
                        return -ENOMEM;
        }
        json_decref(f->results); /* a retry runs the iterations again */
        f->results = json_array();
        if (!f->results)
                return -ENOMEM;
        for (i = 0; i < json_array_size(inputs); i++)
                if (json_array_append_new(f->results, json_null()) < 0)
                        return -ENOMEM;
        json_decref(f->effective);
        f->effective = TAKE_PTR(eff);
        json_decref(f->items);
        f->items = TAKE_PTR(inputs);
        f->next_child = f->active = 0;
        f->phase = PH_CHILDREN;
        d = json_pack("{s:I}", "length", (json_int_t) json_array_size(f->items));
        if (!d)
                return -ENOMEM;
        r = emit(e, f, "MapStateStarted", "mapStateStartedEventDetails", TAKE_PTR(d));
        if (r < 0)
                return r;
        if (json_array_size(f->items) == 0) {
                _cleanup_(json_decrefp) json_t *res = json_incref(f->results);
                r = emit(e, f, "MapStateSucceeded", NULL, NULL);
                if (r < 0)
                        return r;
                return finish_state(e, f, res);
        }
        return map_spawn(e, f);
}

static int run_parallel(AslExecution *e, Frame *f, json_t *ctx) {
        _cleanup_(json_decrefp) json_t *eff = NULL;
        AslFailure fl = {};
        int r;

        r = effective_input(f, true, ctx, &eff, &fl);
        if (r < 0)
                return data_failure(e, f, r, &fl);
        json_decref(f->results); /* a retry runs the branches again */
        f->results = json_array();
        if (!f->results)
                return -ENOMEM;
        json_decref(f->effective);
        f->effective = TAKE_PTR(eff);
        f->phase = PH_CHILDREN;
        f->next_child = f->active = 0;
        r = emit(e, f, "ParallelStateStarted", NULL, NULL);
        if (r < 0)
                return r;
        for (size_t i = 0; i < f->st->n_branches; i++) {
                if (json_array_append_new(f->results, json_null()) < 0)
                        return -ENOMEM;
                r = spawn_child(e, f, f->st->branches[i], (unsigned) i, f->effective);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int run_wait(AslExecution *e, Frame *f, json_t *ctx) {
        _cleanup_(json_decrefp) json_t *eff = NULL, *ts = NULL;
        const State *st = f->st;
        AslFailure fl = {};
        uint64_t secs;
        json_t *v;
        int64_t t;
        int r;

        r = effective_input(f, false, ctx, &eff, &fl);
        if (r < 0)
                return data_failure(e, f, r, &fl);
        if ((v = json_object_get(st->json, "Seconds")))
                f->deadline = e->now_usec + (uint64_t) json_integer_value(v) * USEC_PER_SEC;
        else if (st->seconds_path) {
                r = seconds_from_path(st->seconds_path, "SecondsPath", eff, ctx, &secs, &fl);
                if (r < 0)
                        return data_failure(e, f, r, &fl);
                f->deadline = e->now_usec + secs * USEC_PER_SEC;
        } else {
                if ((v = json_object_get(st->json, "Timestamp")))
                        ts = json_incref(v);
                else {
                        r = asl_path_eval(st->timestamp_path, eff, ctx, &ts, &fl);
                        if (r < 0)
                                return data_failure(e, f, r, &fl);
                }
                if (!json_is_string(ts) || asl_timestamp_parse(json_string_value(ts), &t) < 0)
                        return state_error(e, f, "States.Runtime",
                                           "TimestampPath did not select an RFC 3339 timestamp");
                f->deadline = t > 0 && (uint64_t) t > e->now_usec ? (uint64_t) t : e->now_usec;
        }
        json_decref(f->effective);
        f->effective = TAKE_PTR(eff);
        f->phase = PH_WAIT;
        return 0;
}

/* Fail's Error/Cause: the literal, or ErrorPath/CausePath (a path or an intrinsic). */
static int fail_field(Frame *f, const char *lit, const AslExpr *x, const char *path, json_t *ctx, char **ret,
                      AslFailure *fl) {
        _cleanup_(json_decrefp) json_t *v = NULL;
        int r;

        if (!x) {
                const char *s = json_string_value(json_object_get(f->st->json, lit));
                *ret = s ? mem_strdup(s) : NULL;
                return s && !*ret ? -ENOMEM : 0;
        }
        r = asl_expr_eval(x, f->input, ctx, &v, fl);
        if (r < 0)
                return r;
        if (!json_is_string(v))
                return asl_failure_set(fl, "States.Runtime", "%s did not select a string", path);
        *ret = mem_strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

static int run_state(AslExecution *e, Frame *f) {
        _cleanup_(json_decrefp) json_t *ctx = NULL, *eff = NULL, *out = NULL;
        const State *st = f->st;
        AslFailure fl = {};
        int r;

        if (st->type == ST_TASK)
                return run_task(e, f); /* its context has the task's token */
        r = state_context(e, f, NULL, &ctx);
        if (r < 0)
                return r;
        switch (st->type) {
        case ST_PASS: {
                json_t *result = json_object_get(st->json, "Result");
                r = effective_input(f, true, ctx, &eff, &fl);
                if (r < 0)
                        return data_failure(e, f, r, &fl);
                return finish_state(e, f, result ?: eff);
        }
        case ST_CHOICE: {
                const State *next = NULL;
                r = effective_input(f, false, ctx, &eff, &fl);
                if (r < 0)
                        return data_failure(e, f, r, &fl);
                for (size_t i = 0; i < st->n_rules; i++) {
                        bool match = false;
                        r = asl_rule_eval(st->rules[i], eff, ctx, &match, &fl);
                        if (r < 0)
                                return data_failure(e, f, r, &fl);
                        if (match) {
                                next = st->rule_next[i];
                                break;
                        }
                }
                if (!next)
                        next = st->default_next;
                if (!next)
                        return frame_fail(e, f, "States.NoChoiceMatched",
                                          "no Choice rule matched and there is no Default");
                r = select_field(&st->output_path, eff, ctx, &out, &fl);
                if (r < 0)
                        return data_failure(e, f, r, &fl);
                return goto_state(e, f, out, next);
        }
        case ST_WAIT:
                return run_wait(e, f, ctx);
        case ST_SUCCEED:
                r = effective_input(f, false, ctx, &eff, &fl);
                if (r < 0)
                        return data_failure(e, f, r, &fl);
                r = select_field(&st->output_path, eff, ctx, &out, &fl);
                if (r < 0)
                        return data_failure(e, f, r, &fl);
                return transition(e, f, out);
        case ST_FAIL: {
                _cleanup_free_ char *error = NULL, *cause = NULL;
                r = fail_field(f, "Error", st->error_expr, "ErrorPath", ctx, &error, &fl);
                if (r >= 0)
                        r = fail_field(f, "Cause", st->cause_expr, "CausePath", ctx, &cause, &fl);
                if (r < 0)
                        return data_failure(e, f, r, &fl);
                return frame_fail(e, f, error ?: "States.Fail", cause);
        }
        case ST_PARALLEL:
                return run_parallel(e, f, ctx);
        case ST_MAP:
                return run_map(e, f, ctx);
        default:
                return -EIO;
        }
}

static int enter_state(AslExecution *e, Frame *f) {
        _cleanup_free_ char *cause = NULL;

        if (e->transitions >= e->max_transitions) {
                cause = mem_printf("more than %u state transitions (a loop in the definition?): the limit is "
                                   "max_transitions",
                                   e->max_transitions);
                if (!cause)
                        return -ENOMEM;
                return execution_end(e, ASL_FAILED, NULL, "States.Runtime", cause);
        }
        e->transitions++;
        f->entered_usec = e->now_usec;
        frame_reset_state(f);
        f->phase = PH_RUN;
        return emit_state(e, f, true, f->input);
}

/* A Parallel or Map whose children moved. */
static int collect_children(AslExecution *e, Frame *f) {
        StateType t = f->st->type;
        bool again = true;
        int r;

        f->dirty = false;
        while (again) {
                again = false;
                for (size_t i = 0; i < e->n_frames; i++) {
                        Frame *c = e->frames[i];
                        if (c->parent != f->id)
                                continue;
                        if (c->phase == PH_FAILED) {
                                _cleanup_free_ char *err = TAKE_PTR(c->error), *cause = TAKE_PTR(c->cause);
                                if (t == ST_MAP) {
                                        json_t *d = json_pack("{s:I,s:s}", "index", (json_int_t) c->index, "name",
                                                              f->st->name);
                                        if (!d)
                                                return -ENOMEM;
                                        r = emit(e, f, "MapIterationFailed", "mapIterationFailedEventDetails", d);
                                } else
                                        r = emit(e, f, "ParallelStateFailed", NULL, NULL);
                                if (r < 0)
                                        return r;
                                /* One failure fails the state; the other children are cancelled. */
                                return state_error(e, f, err ?: "States.Runtime", cause);
                        }
                        if (c->phase == PH_DONE) {
                                if (c->last_event > f->last_event)
                                        f->last_event = c->last_event;
                                if (json_array_set(f->results, c->index, c->output) < 0)
                                        return -ENOMEM;
                                if (t == ST_MAP) {
                                        json_t *d = json_pack("{s:I,s:s}", "index", (json_int_t) c->index, "name",
                                                              f->st->name);
                                        if (!d)
                                                return -ENOMEM;
                                        r = emit(e, f, "MapIterationSucceeded", "mapIterationSucceededEventDetails", d);
                                        if (r < 0)
                                                return r;
                                }
                                memmove(e->frames + i, e->frames + i + 1, (e->n_frames - i - 1) * sizeof(Frame *));
                                e->n_frames--;
                                frame_free(c);
                                f->active--;
                                again = true;
                                break;
                        }
                }
        }
        if (t == ST_MAP) {
                r = map_spawn(e, f);
                if (r < 0)
                        return r;
        }
        if (f->active == 0 && f->next_child >= json_array_size(f->results)) {
                _cleanup_(json_decrefp) json_t *res = json_incref(f->results);
                r = emit(e, f, t == ST_MAP ? "MapStateSucceeded" : "ParallelStateSucceeded", NULL, NULL);
                if (r < 0)
                        return r;
                return finish_state(e, f, res);
        }
        return 0;
}

int asl_execution_step(AslExecution *e, AslTask **ret_tasks, size_t *ret_n) {
        int r = 0;

        while (e->status == ASL_RUNNING) {
                Frame *f = NULL;
                if (e->history_full) {
                        r = execution_end(e, ASL_FAILED, NULL, "States.Runtime",
                                          "the execution history reached 25000 events");
                        break;
                }
                for (size_t i = 0; i < e->n_frames && !f; i++) {
                        Frame *c = e->frames[i];
                        if (c->phase == PH_ENTER || c->phase == PH_RUN || (c->phase == PH_CHILDREN && c->dirty))
                                f = c;
                }
                if (!f)
                        break;
                if (f->phase == PH_ENTER)
                        r = enter_state(e, f);
                else if (f->phase == PH_RUN)
                        r = run_state(e, f);
                else
                        r = collect_children(e, f);
                if (r < 0)
                        break;
        }
        if (r < 0)
                return r;
        if (ret_tasks && ret_n) {
                *ret_tasks = TAKE_PTR(e->out);
                *ret_n = e->n_out;
        } else
                asl_tasks_free(TAKE_PTR(e->out), e->n_out);
        e->n_out = 0;
        return 0;
}

int asl_execution_pending_tasks(AslExecution *e, AslTask **ret_tasks, size_t *ret_n) {
        AslTask *a = NULL, t;
        size_t n = 0;
        int r;

        for (size_t i = 0; i < e->n_frames; i++) {
                AslTask *b;
                if (e->frames[i]->phase != PH_TASK)
                        continue;
                r = task_describe(e->frames[i], NULL, NULL, &t);
                if (r < 0) {
                        asl_tasks_free(a, n);
                        return r;
                }
                b = mem_realloc(a, (n + 1) * sizeof(AslTask));
                if (!b) {
                        asl_task_clear(&t);
                        asl_tasks_free(a, n);
                        return -ENOMEM;
                }
                a = b;
                a[n++] = t;
        }
        *ret_tasks = a;
        *ret_n = n;
        return 0;
}

static Frame *frame_by_token(AslExecution *e, const char *token) {
        for (size_t i = 0; token && e->status == ASL_RUNNING && i < e->n_frames; i++)
                if (e->frames[i]->phase == PH_TASK && streq_ptr(e->frames[i]->token, token))
                        return e->frames[i];
        return NULL;
}

static void set_now(AslExecution *e, uint64_t now) {
        if (now > e->now_usec)
                e->now_usec = now;
}

/* What the state gets for the function's output: the Invoke response for
 * lambda:invoke, the output itself otherwise. */
static int task_result(AslExecution *e, const State *st, json_t *output, json_t **ret) {
        const InvokeParts *k = &e->def->invoke;
        _cleanup_(json_decrefp) json_t *rid = NULL;
        uint64_t a = rng_next(e), b = rng_next(e);
        json_t *all, *hh, *meta, *o;
        char s[40], *p = s;

        if (st->resource_kind != RES_LAMBDA_INVOKE) {
                *ret = json_incref(output);
                return 0;
        }
        if (st->result_use == RESULT_NONE) {
                *ret = json_null();
                return 0;
        }
        if (st->result_use == RESULT_PAYLOAD) {
                *ret = with(json_object(), "Payload", json_incref(output));
                return *ret ? 0 : -ENOMEM;
        }
        /* A request id shaped as a UUID v4: 8-4-4-4-12 hex digits. */
        p = hex(p, a >> 32, 8);
        *p++ = '-';
        p = hex(p, a >> 16, 4);
        *p++ = '-';
        *p++ = '4';
        p = hex(p, a, 3);
        *p++ = '-';
        *p++ = 'a';
        p = hex(p, b >> 48, 3);
        *p++ = '-';
        p = hex(p, b, 12);
        rid = json_stringn_nocheck(s, (size_t) (p - s));
        if (!rid)
                return -ENOMEM;

        all = with(json_object(), "X-Amz-Executed-Version", json_incref(k->latest_list));
        all = with(all, "x-amzn-RequestId", list_of(json_incref(rid)));
        all = with(all, "Content-Type", json_incref(k->json_type_list));
        hh = with(json_object(), "X-Amz-Executed-Version", json_incref(k->latest));
        hh = with(hh, "x-amzn-RequestId", json_incref(rid));
        hh = with(hh, "Content-Type", json_incref(k->json_type));
        meta = with(json_object(), "AllHttpHeaders", all);
        meta = with(meta, "HttpHeaders", hh);
        meta = with(meta, "HttpStatusCode", json_incref(k->status));
        o = with(json_object(), "ExecutedVersion", json_incref(k->latest));
        o = with(o, "Payload", json_incref(output));
        o = with(o, "SdkHttpMetadata", meta);
        o = with(o, "SdkResponseMetadata", with(json_object(), "RequestId", json_incref(rid)));
        o = with(o, "StatusCode", json_incref(k->status));
        *ret = o;
        return o ? 0 : -ENOMEM;
}

int asl_execution_task_succeeded(AslExecution *e, const char *token, json_t *output, uint64_t now_usec) {
        Frame *f = frame_by_token(e, token);
        _cleanup_(json_decrefp) json_t *own = NULL, *result = NULL;
        int r;

        if (!f)
                return -ENOENT;
        set_now(e, now_usec);
        /* A copy of its own: the state's data shares it from here on, and
         * the caller keeps output. */
        own = output ? json_deep_copy(output) : json_null();
        if (!own)
                return -ENOMEM;
        r = task_result(e, f->st, own, &result);
        if (r < 0)
                return r;
        r = record(e, f,
                   (Event){ .kind = EV_TASK_SUCCEEDED,
                            .type = "TaskSucceeded",
                            .key = "taskSucceededEventDetails",
                            .name = resource_short(f->st->resource),
                            .value = json_incref(own) });
        if (r < 0)
                return r;
        f->token = mem_free_ptr(f->token);
        return finish_state(e, f, result);
}

int asl_execution_task_failed(AslExecution *e, const char *token, const char *error, const char *cause,
                              uint64_t now_usec) {
        Frame *f = frame_by_token(e, token);
        json_t *d;
        int r;

        if (isempty(error))
                return -EINVAL;
        if (!f)
                return -ENOENT;
        set_now(e, now_usec);
        d = json_pack("{s:s,s:s,s:s}", "resourceType", "lambda", "resource", resource_short(f->st->resource), "error",
                      error);
        if (!d || (cause && json_object_set_new(d, "cause", json_string(cause)) < 0)) {
                json_decref(d);
                return -ENOMEM;
        }
        r = emit(e, f, "TaskFailed", "taskFailedEventDetails", d);
        if (r < 0)
                return r;
        return state_error(e, f, error, cause);
}

int asl_execution_task_heartbeat(AslExecution *e, const char *token, uint64_t now_usec) {
        Frame *f = frame_by_token(e, token);

        if (!f)
                return -ENOENT;
        set_now(e, now_usec);
        if (f->heartbeat_usec)
                f->heartbeat_at = e->now_usec + f->heartbeat_usec;
        return 0;
}

/* The frame's own deadline, UINT64_MAX for none. */
static uint64_t frame_deadline(const Frame *f) {
        if (f->phase == PH_WAIT || f->phase == PH_RETRY)
                return f->deadline;
        if (f->phase == PH_TASK)
                return MIN(f->timeout_at, f->heartbeat_at);
        return UINT64_MAX;
}

uint64_t asl_execution_next_deadline(const AslExecution *e) {
        uint64_t d = e->status == ASL_RUNNING ? e->deadline : UINT64_MAX;

        for (size_t i = 0; e->status == ASL_RUNNING && i < e->n_frames; i++)
                d = MIN(d, frame_deadline(e->frames[i]));
        return d;
}

static int fire(AslExecution *e, Frame *f) {
        _cleanup_(json_decrefp) json_t *ctx = NULL, *out = NULL;
        AslFailure fl = {};
        bool heartbeat;
        json_t *d;
        int r;

        switch (f->phase) {
        case PH_RETRY:
                f->phase = PH_RUN;
                return 0;
        case PH_WAIT:
                r = state_context(e, f, NULL, &ctx);
                if (r < 0)
                        return r;
                r = select_field(&f->st->output_path, f->effective, ctx, &out, &fl);
                if (r < 0)
                        return data_failure(e, f, r, &fl);
                return goto_state(e, f, out, NULL);
        case PH_TASK:
                heartbeat = f->heartbeat_at < f->timeout_at;
                d = json_pack("{s:s,s:s,s:s}", "resourceType", "lambda", "resource", resource_short(f->st->resource),
                              "error", heartbeat ? "States.HeartbeatTimeout" : "States.Timeout");
                if (!d)
                        return -ENOMEM;
                r = emit(e, f, "TaskTimedOut", "taskTimedOutEventDetails", d);
                if (r < 0)
                        return r;
                return state_error(e, f, heartbeat ? "States.HeartbeatTimeout" : "States.Timeout", NULL);
        default:
                return 0;
        }
}

int asl_execution_advance_time(AslExecution *e, uint64_t now_usec) {
        int r;

        for (;;) {
                uint64_t d = asl_execution_next_deadline(e);
                Frame *f = NULL;
                if (d == UINT64_MAX || d > now_usec)
                        break;
                set_now(e, d);
                if (e->deadline <= d) {
                        _cleanup_free_ char *cause =
                                mem_printf("the execution ran longer than its TimeoutSeconds (%" PRIu64 " s)",
                                           e->def->timeout_usec / USEC_PER_SEC);
                        if (!cause)
                                return -ENOMEM;
                        return execution_end(e, ASL_TIMED_OUT, NULL, "States.Timeout", cause);
                }
                for (size_t i = 0; i < e->n_frames && !f; i++)
                        if (frame_deadline(e->frames[i]) == d)
                                f = e->frames[i];
                r = fire(e, f);
                if (r < 0)
                        return r;
        }
        set_now(e, now_usec);
        return 0;
}

int asl_execution_new(AslDefinition *def, const char *name, json_t *input, uint64_t now_usec, const AslOptions *opts,
                      AslExecution **ret) {
        _cleanup_(asl_execution_freep) AslExecution *e = NULL;
        Frame *f;
        int r;

        if (isempty(name) || strlen(name) > ASL_EXECUTION_NAME_MAX)
                return -EINVAL;
        e = mem_new(AslExecution, 1);
        if (!e)
                return -ENOMEM;
        e->def = asl_definition_ref(def);
        e->name = mem_strdup(name);
        e->machine_name = mem_strdup(opts && opts->state_machine_name ? opts->state_machine_name : "local");
        e->input = input ? json_deep_copy(input) : json_object();
        e->events = json_array();
        if (!e->name || !e->machine_name || !e->input || !e->events)
                return -ENOMEM;
        e->start_usec = e->now_usec = now_usec;
        e->deadline = def->timeout_usec ? now_usec + def->timeout_usec : UINT64_MAX;
        e->max_transitions = opts && opts->max_transitions ? opts->max_transitions : ASL_MAX_TRANSITIONS_DEFAULT;
        e->rng = opts ? opts->seed : 0;
        e->status = ASL_RUNNING;

        r = record(e, NULL,
                   (Event){ .kind = EV_EXECUTION_STARTED,
                            .type = "ExecutionStarted",
                            .key = "executionStartedEventDetails",
                            .value = json_incref(e->input) });
        if (r < 0)
                return r;
        r = frame_add(e, &f);
        if (r < 0)
                return r;
        f->machine = 0;
        f->st = def->machines[0].start;
        f->input = json_incref(e->input);
        f->phase = PH_ENTER;
        f->last_event = 1;
        *ret = TAKE_PTR(e);
        return 0;
}

AslStatus asl_execution_status(const AslExecution *e) {
        return e->status;
}

json_t *asl_execution_output(const AslExecution *e) {
        return e->status == ASL_SUCCEEDED ? e->output : NULL;
}

const char *asl_execution_error(const AslExecution *e) {
        return e->status == ASL_FAILED || e->status == ASL_TIMED_OUT ? e->error : NULL;
}

const char *asl_execution_cause(const AslExecution *e) {
        return e->status == ASL_FAILED || e->status == ASL_TIMED_OUT ? e->cause : NULL;
}

json_t *asl_execution_history(AslExecution *e) {
        return history_render(e) < 0 ? NULL : e->events;
}

int asl_execution_take_history(AslExecution *e, json_t **ret) {
        json_t *fresh;
        int r;

        r = history_render(e);
        if (r < 0)
                return r;
        fresh = json_array();
        if (!fresh)
                return -ENOMEM;
        e->events_offset += json_array_size(e->events);
        *ret = e->events;
        e->events = fresh;
        return 0;
}

unsigned asl_execution_transitions(const AslExecution *e) {
        return e->transitions;
}

/* ---- serialisation ------------------------------------------------------------ */

static int set_opt(json_t *o, const char *k, json_t *v) {
        /* A NULL v is a field left out; v is borrowed. */
        return v ? json_object_set(o, k, v) : 0;
}

static int set_opt_str(json_t *o, const char *k, const char *s) {
        return s ? json_object_set_new(o, k, json_string(s)) : 0;
}

static json_t *frame_to_json(const Frame *f) {
        json_t *o, *att;

        att = json_array();
        if (!att)
                return NULL;
        for (size_t i = 0; i < ASL_RETRIERS_MAX; i++)
                if (json_array_append_new(att, json_integer(f->attempts[i])) < 0) {
                        json_decref(att);
                        return NULL;
                }
        o = json_pack("{s:I,s:I,s:i,s:i,s:s,s:s,s:O,s:I,s:i,s:o,s:I,s:I,s:I,s:I,s:i,s:i,s:i,s:b,s:I}", "id",
                      (json_int_t) f->id, "parent", (json_int_t) f->parent, "machine", (int) f->machine, "index",
                      (int) f->index, "state", f->st->name, "phase", phase_table[f->phase], "input", f->input,
                      "entered", (json_int_t) f->entered_usec, "retry_count", (int) f->retry_count, "attempts", att,
                      "deadline", (json_int_t) f->deadline, "timeout_at", (json_int_t) f->timeout_at, "heartbeat_at",
                      (json_int_t) (f->heartbeat_at == UINT64_MAX ? -1 : (json_int_t) f->heartbeat_at),
                      "heartbeat_usec", (json_int_t) f->heartbeat_usec, "next_child", (int) f->next_child, "active",
                      (int) f->active, "max_concurrency", (int) f->max_concurrency, "dirty", f->dirty, "last_event",
                      (json_int_t) f->last_event);
        if (!o)
                return NULL;
        if (set_opt(o, "effective", f->effective) < 0 || set_opt(o, "results", f->results) < 0 ||
            set_opt(o, "items", f->items) < 0 || set_opt(o, "output", f->output) < 0 ||
            set_opt_str(o, "token", f->token) < 0 || set_opt_str(o, "error", f->error) < 0 ||
            set_opt_str(o, "cause", f->cause) < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

int asl_execution_to_json(AslExecution *e, json_t **ret) {
        _cleanup_(json_decrefp) json_t *o = NULL, *frames = NULL;
        int r;

        r = history_render(e);
        if (r < 0)
                return r;

        frames = json_array();
        if (!frames)
                return -ENOMEM;
        for (size_t i = 0; i < e->n_frames; i++)
                if (json_array_append_new(frames, frame_to_json(e->frames[i])) < 0)
                        return -ENOMEM;
        o = json_pack("{s:i,s:s,s:s,s:O,s:I,s:I,s:I,s:s,s:I,s:I,s:I,s:I,s:O,s:b,s:O}", "version", SERIAL_VERSION,
                      "name", e->name, "state_machine", e->machine_name, "input", e->input, "start",
                      (json_int_t) e->start_usec, "now", (json_int_t) e->now_usec, "deadline",
                      (json_int_t) (e->deadline == UINT64_MAX ? -1 : (json_int_t) e->deadline), "status",
                      asl_status_to_string(e->status), "transitions", (json_int_t) e->transitions, "max_transitions",
                      (json_int_t) e->max_transitions, "rng", (json_int_t) (int64_t) e->rng, "next_frame_id",
                      (json_int_t) e->next_frame_id, "events", e->events, "history_full", e->history_full, "frames",
                      frames);
        if (!o)
                return -ENOMEM;
        if (set_opt(o, "output", e->output) < 0 || set_opt_str(o, "error", e->error) < 0 ||
            set_opt_str(o, "cause", e->cause) < 0)
                return -ENOMEM;
        /* Written only when the caller keeps the history apart, so that an
         * execution that never did reads back as before. */
        if (e->events_offset > 0 &&
            json_object_set_new(o, "events_offset", json_integer((json_int_t) e->events_offset)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

typedef struct Restore {
        char *error;
} Restore;

_printf_(2, 3) static int restore_fail(Restore *rs, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vfail(&rs->error, fmt, ap);
        va_end(ap);
        return r;
}

static int get_u64(json_t *o, const char *k, uint64_t *ret) {
        json_t *v = json_object_get(o, k);

        if (!json_is_integer(v))
                return -EINVAL;
        *ret = json_integer_value(v) == -1 ? UINT64_MAX : (uint64_t) json_integer_value(v);
        return 0;
}

static int get_uint(json_t *o, const char *k, unsigned *ret) {
        json_t *v = json_object_get(o, k);

        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
                return -EINVAL;
        *ret = (unsigned) json_integer_value(v);
        return 0;
}

static int dup_opt_str(json_t *o, const char *k, char **ret) {
        json_t *v = json_object_get(o, k);

        if (!v) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return -EINVAL;
        *ret = mem_strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

static json_t *ref_opt(json_t *o, const char *k) {
        return json_incref(json_object_get(o, k));
}

static int frame_from_json(AslExecution *e, json_t *o, Restore *rs) {
        json_t *att = json_object_get(o, "attempts"), *v;
        const char *state = json_string_value(json_object_get(o, "state"));
        const char *phase = json_string_value(json_object_get(o, "phase"));
        Frame *f;
        size_t i;
        int r;

        if (!json_is_object(o) || !state || !phase || !json_is_array(att))
                return restore_fail(rs, "a frame is malformed");
        r = frame_add(e, &f);
        if (r < 0)
                return r;
        e->next_frame_id--; /* frame_add() counted one */
        if (get_u64(o, "id", &f->id) < 0 || get_u64(o, "parent", &f->parent) < 0 ||
            get_uint(o, "machine", &f->machine) < 0 || get_uint(o, "index", &f->index) < 0 ||
            get_u64(o, "entered", &f->entered_usec) < 0 || get_uint(o, "retry_count", &f->retry_count) < 0 ||
            get_u64(o, "deadline", &f->deadline) < 0 || get_u64(o, "timeout_at", &f->timeout_at) < 0 ||
            get_u64(o, "heartbeat_at", &f->heartbeat_at) < 0 || get_u64(o, "heartbeat_usec", &f->heartbeat_usec) < 0 ||
            get_uint(o, "next_child", &f->next_child) < 0 || get_uint(o, "active", &f->active) < 0 ||
            get_uint(o, "max_concurrency", &f->max_concurrency) < 0 || get_u64(o, "last_event", &f->last_event) < 0 ||
            json_array_size(att) != ASL_RETRIERS_MAX)
                return restore_fail(rs, "a frame is malformed");
        json_array_foreach (att, i, v) {
                if (!json_is_integer(v) || json_integer_value(v) < 0)
                        return restore_fail(rs, "a frame's retry attempts are malformed");
                f->attempts[i] = (unsigned) json_integer_value(v);
        }
        f->dirty = json_is_true(json_object_get(o, "dirty"));
        f->phase = _PH_INVALID;
        for (i = 0; i < _PH_MAX; i++)
                if (streq(phase_table[i], phase))
                        f->phase = (Phase) i;
        if (f->phase < 0)
                return restore_fail(rs, "a frame has an unknown phase '%s'", phase);
        if (f->machine < e->def->n_machines)
                f->st = machine_state(&e->def->machines[f->machine], state);
        if (!f->st)
                return restore_fail(rs, "a frame is at state '%s', which this definition does not have", state);
        f->input = ref_opt(o, "input");
        f->effective = ref_opt(o, "effective");
        f->results = ref_opt(o, "results");
        f->items = ref_opt(o, "items");
        f->output = ref_opt(o, "output");
        if (!f->input)
                return restore_fail(rs, "a frame has no input");
        r = dup_opt_str(o, "token", &f->token);
        if (r >= 0)
                r = dup_opt_str(o, "error", &f->error);
        if (r >= 0)
                r = dup_opt_str(o, "cause", &f->cause);
        if (r == -EINVAL)
                return restore_fail(rs, "a frame is malformed");
        if (r < 0)
                return r;
        if (f->phase == PH_TASK && (!f->token || f->st->type != ST_TASK || !f->effective))
                return restore_fail(rs, "a frame waits for a task that is not there");
        if ((f->phase == PH_CHILDREN) &&
            (!json_is_array(f->results) || (f->st->type != ST_PARALLEL && f->st->type != ST_MAP)))
                return restore_fail(rs, "a frame waits for children it cannot have");
        if (f->phase == PH_CHILDREN && f->st->type == ST_MAP && !json_is_array(f->items))
                return restore_fail(rs, "a Map frame has no items");
        if (f->phase == PH_WAIT && !f->effective)
                return restore_fail(rs, "a Wait frame has no input");
        if (f->phase == PH_DONE && !f->output)
                return restore_fail(rs, "a finished frame has no output");
        if (f->id > e->next_frame_id)
                e->next_frame_id = f->id;
        return 0;
}

int asl_execution_from_json(AslDefinition *def, json_t *j, AslExecution **ret, char **ret_error) {
        _cleanup_(asl_execution_freep) AslExecution *e = NULL;
        json_t *frames = json_object_get(j, "frames"), *fj, *v;
        uint64_t next_frame_id = 0, rng = 0;
        Restore rs = {};
        size_t i;
        int r = 0;

        e = mem_new(AslExecution, 1);
        if (!e)
                return -ENOMEM;
        e->def = asl_definition_ref(def);
        if (!json_is_object(j) || !json_is_integer(json_object_get(j, "version")) ||
            json_integer_value(json_object_get(j, "version")) != SERIAL_VERSION)
                r = restore_fail(&rs, "not a serialised execution of version %d", SERIAL_VERSION);
        else if (!json_is_array(frames) || !json_is_array(json_object_get(j, "events")) ||
                 !json_object_get(j, "input") || get_u64(j, "start", &e->start_usec) < 0 ||
                 get_u64(j, "now", &e->now_usec) < 0 || get_u64(j, "deadline", &e->deadline) < 0 ||
                 get_uint(j, "transitions", &e->transitions) < 0 ||
                 get_uint(j, "max_transitions", &e->max_transitions) < 0 || get_u64(j, "rng", &rng) < 0 ||
                 get_u64(j, "next_frame_id", &next_frame_id) < 0)
                r = restore_fail(&rs, "a serialised execution is malformed");
        else if ((e->status = asl_status_from_string(json_string_value(json_object_get(j, "status")))) < 0)
                r = restore_fail(&rs, "a serialised execution has an unknown status");
        if (r >= 0) {
                e->rng = rng == UINT64_MAX ? (uint64_t) -1 : rng;
                e->history_full = json_is_true(json_object_get(j, "history_full"));
                r = dup_opt_str(j, "name", &e->name);
                if (r >= 0)
                        r = dup_opt_str(j, "state_machine", &e->machine_name);
                if (r >= 0)
                        r = dup_opt_str(j, "error", &e->error);
                if (r >= 0)
                        r = dup_opt_str(j, "cause", &e->cause);
                if (r == -EINVAL || (r >= 0 && (!e->name || !e->machine_name)))
                        r = restore_fail(&rs, "a serialised execution is malformed");
        }
        if (r >= 0) {
                /* Set by asl_execution_take_history(); absent before. */
                json_t *off = json_object_get(j, "events_offset");
                if (off &&
                    (!json_is_integer(off) || json_integer_value(off) < 0 || json_integer_value(off) > ASL_EVENTS_MAX))
                        r = restore_fail(&rs, "a serialised execution is malformed");
                else
                        e->events_offset = off ? (uint64_t) json_integer_value(off) : 0;
        }
        if (r >= 0) {
                e->input = ref_opt(j, "input");
                e->output = ref_opt(j, "output");
                /* Events are never changed once rendered: only the array
                 * that new ones are appended to needs to be ours. */
                e->events = json_copy(json_object_get(j, "events"));
                if (!e->events)
                        r = -ENOMEM;
        }
        json_array_foreach (frames, i, fj) {
                if (r < 0)
                        break;
                r = frame_from_json(e, fj, &rs);
        }
        if (r >= 0 && next_frame_id > e->next_frame_id)
                e->next_frame_id = next_frame_id;
        /* Every parent must be there, and be a Parallel or Map waiting for children. */
        for (i = 0; r >= 0 && i < e->n_frames; i++) {
                Frame *f = e->frames[i], *p;
                if (!f->parent)
                        continue;
                p = frame_get(e, f->parent);
                if (!p || p->phase != PH_CHILDREN || f->index >= json_array_size(p->results))
                        r = restore_fail(&rs, "a frame's parent is missing");
        }
        if (r >= 0 && e->status == ASL_RUNNING && e->n_frames == 0)
                r = restore_fail(&rs, "a running execution has no frame");
        (void) v;
        if (r < 0) {
                if (r == -EINVAL && ret_error)
                        *ret_error = TAKE_PTR(rs.error);
                free(rs.error);
                return r;
        }
        *ret = TAKE_PTR(e);
        return 0;
}
