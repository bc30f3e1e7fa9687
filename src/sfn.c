/* SPDX-License-Identifier: MIT */
/*
 * sfn.c — the AWS Step Functions client (see sfn.h).
 *
 * The bodies are dumped by jansson with keys in the order given and two
 * spaces of indentation, so that they compare byte for byte with the
 * vectors; AWS reads any JSON.  The retries of one call are kept short
 * (SFN_ATTEMPTS_MAX_DEFAULT, SFN_TOTAL_USEC_DEFAULT): a caller that must
 * not lose the call (engine-sfn.c) keeps it in the store and calls again
 * later.
 *
 * Security: see sfn.h.
 */
#include "sfn.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "alloc.h"
#include "aws-request.h"
#include "sigv4.h"
#include "strutil.h"

#define SFN_CODE_MAX 128u

static const char *const action_table[_SFN_ACTION_MAX] = {
        [SFN_START_EXECUTION] = "StartExecution",       [SFN_SEND_TASK_SUCCESS] = "SendTaskSuccess",
        [SFN_SEND_TASK_FAILURE] = "SendTaskFailure",    [SFN_SEND_TASK_HEARTBEAT] = "SendTaskHeartbeat",
        [SFN_DESCRIBE_EXECUTION] = "DescribeExecution",
};

static const char *const result_table[_SFN_RESULT_MAX] = {
        [SFN_RESULT_OK] = "ok",
        [SFN_RESULT_RETRY] = "retry",
        [SFN_RESULT_LATER] = "later",
        [SFN_RESULT_PERMANENT] = "permanent",
};

const char *sfn_action_to_string(SfnAction a) {
        return (unsigned) a < _SFN_ACTION_MAX ? action_table[a] : NULL;
}

SfnAction sfn_action_from_string(const char *s) {
        for (size_t i = 0; s && i < _SFN_ACTION_MAX; i++)
                if (streq(action_table[i], s))
                        return (SfnAction) i;
        return _SFN_ACTION_INVALID;
}

const char *sfn_result_to_string(SfnResult r) {
        return (unsigned) r < _SFN_RESULT_MAX ? result_table[r] : NULL;
}

SfnResult sfn_result_from_string(const char *s) {
        for (size_t i = 0; s && i < _SFN_RESULT_MAX; i++)
                if (streq(result_table[i], s))
                        return (SfnResult) i;
        return _SFN_RESULT_INVALID;
}

/* ---- bodies -------------------------------------------------------------- */

bool sfn_name_is_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;

        if (n == 0 || n > SFN_NAME_MAX)
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                      *p == '-'))
                        return false;
        return true;
}

int sfn_input_text(const json_t *input, char **ret) {
        char *s;

        if (!json_is_object(input))
                return -EINVAL;
        s = mem_json_dumps(input, JSON_PRESERVE_ORDER);
        if (!s)
                return -ENOMEM;
        if (strlen(s) > SFN_INPUT_MAX) {
                free(s);
                return -E2BIG;
        }
        *ret = s;
        return 0;
}

/* The body of object o (stolen): indented, final newline. */
static int dump_body(json_t *o, char **ret) {
        _cleanup_free_ char *s = NULL;
        char *body;

        if (!o)
                return -ENOMEM;
        s = mem_json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!s)
                return -ENOMEM;
        body = mem_printf("%s\n", s);
        if (!body)
                return -ENOMEM;
        *ret = body;
        return 0;
}

static bool token_ok(const char *token) {
        return !isempty(token) && strlen(token) <= SFN_TOKEN_MAX;
}

int sfn_start_execution_body(const char *state_machine_arn, const char *name, const char *input, char **ret) {
        if (isempty(state_machine_arn) || !sfn_name_is_valid(name) || !input)
                return -EINVAL;
        if (strlen(input) > SFN_INPUT_MAX)
                return -E2BIG;
        return dump_body(json_pack("{s:s,s:s,s:s}", "stateMachineArn", state_machine_arn, "name", name, "input", input),
                         ret);
}

int sfn_send_task_success_body(const char *token, const char *output, char **ret) {
        if (!token_ok(token) || !output)
                return -EINVAL;
        if (strlen(output) > SFN_INPUT_MAX)
                return -E2BIG;
        return dump_body(json_pack("{s:s,s:s}", "taskToken", token, "output", output), ret);
}

int sfn_send_task_failure_body(const char *token, const char *error, const char *cause, char **ret) {
        if (!token_ok(token) || (error && strlen(error) > SFN_ERROR_MAX) || (cause && strlen(cause) > SFN_CAUSE_MAX))
                return -EINVAL;
        return dump_body(json_pack("{s:s,s:s*,s:s*}", "taskToken", token, "error", error, "cause", cause), ret);
}

int sfn_send_task_heartbeat_body(const char *token, char **ret) {
        if (!token_ok(token))
                return -EINVAL;
        return dump_body(json_pack("{s:s}", "taskToken", token), ret);
}

int sfn_describe_execution_body(const char *execution_arn, char **ret) {
        if (isempty(execution_arn))
                return -EINVAL;
        return dump_body(json_pack("{s:s}", "executionArn", execution_arn), ret);
}

int sfn_execution_arn(const char *state_machine_arn, const char *name, char **ret) {
        const char *p = state_machine_arn ? strstr(state_machine_arn, ":stateMachine:") : NULL;
        char *s;

        if (!p || strncmp(state_machine_arn, "arn:", 4) != 0 || !sfn_name_is_valid(name) ||
            !p[strlen(":stateMachine:")])
                return -EINVAL;
        s = mem_printf("%.*s:execution:%s:%s", (int) (p - state_machine_arn), state_machine_arn,
                       p + strlen(":stateMachine:"), name);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* ---- answers --------------------------------------------------------------- */

/* body as a JSON object: 0, -EBADMSG (not one), -ENOMEM. */
static int parse_object(const char *body, size_t len, json_t **ret) {
        unsigned long failures = alloc_failures();
        json_t *o;

        if (!body || len > SFN_MAX_RESPONSE)
                return -EBADMSG;
        o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        if (!o)
                return alloc_failures() != failures ? -ENOMEM : -EBADMSG;
        if (!json_is_object(o)) {
                json_decref(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

int sfn_parse_start_execution(const char *body, size_t len, char **ret_execution_arn) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        const char *arn;
        char *s;
        int r;

        r = parse_object(body, len, &o);
        if (r < 0)
                return r;
        arn = json_string_value(json_object_get(o, "executionArn"));
        if (isempty(arn) || strlen(arn) > 2048)
                return -EBADMSG;
        s = mem_strdup(arn);
        if (!s)
                return -ENOMEM;
        *ret_execution_arn = s;
        return 0;
}

static const char *const execution_statuses[] = { "RUNNING",   "SUCCEEDED", "FAILED",
                                                  "TIMED_OUT", "ABORTED",   "PENDING_REDRIVE" };

int sfn_parse_describe_execution(const char *body, size_t len, json_t **ret) {
        static const char *const strings[] = { "executionArn", "name", "status", "error", "cause", "input", "output" };
        static const char *const dates[] = { "startDate", "stopDate" };
        _cleanup_(json_decrefp) json_t *o = NULL, *out = NULL;
        const char *status;
        bool known = false;
        int r;

        r = parse_object(body, len, &o);
        if (r < 0)
                return r;
        if (!json_is_string(json_object_get(o, "executionArn")) || !json_is_string(json_object_get(o, "name")))
                return -EBADMSG;
        status = json_string_value(json_object_get(o, "status"));
        for (size_t i = 0; status && i < ELEMENTSOF(execution_statuses); i++)
                known = known || streq(execution_statuses[i], status);
        if (!known)
                return -EBADMSG;
        out = json_object();
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                json_t *v = json_object_get(o, strings[i]);
                if (!v || json_is_null(v))
                        continue;
                if (!json_is_string(v))
                        return -EBADMSG;
                if (json_object_set(out, strings[i], v) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < ELEMENTSOF(dates); i++) {
                json_t *v = json_object_get(o, dates[i]);
                if (!v || json_is_null(v))
                        continue;
                if (!json_is_number(v))
                        return -EBADMSG;
                if (json_object_set(out, dates[i], v) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

static bool code_char(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.';
}

int sfn_parse_error(const char *body, size_t len, char **ret_code, char **ret_message) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        _cleanup_free_ char *code = NULL, *message = NULL;
        const char *type, *msg, *hash;
        size_t n;

        /* Not JSON (a proxy's HTML page): no code, no message. */
        if (parse_object(body, len, &o) == -ENOMEM)
                return -ENOMEM;
        type = json_string_value(json_object_get(o, "__type"));
        msg = json_string_value(json_object_get(o, "message"));

        if (!msg)
                msg = json_string_value(json_object_get(o, "Message"));
        if (type) {
                hash = strrchr(type, '#');
                type = hash ? hash + 1 : type;
                /* "Code:http://internal.amazon.com/…" as some services send it */
                n = strcspn(type, ":");
                for (size_t i = 0; i < n; i++)
                        if (!code_char(type[i]))
                                n = 0;
                if (n > SFN_CODE_MAX)
                        n = 0;
        } else
                n = 0;
        code = mem_strndup(type ? type : "", n);
        message = mem_strndup(msg ? msg : "", msg ? MIN(strlen(msg), (size_t) SFN_MESSAGE_MAX) : 0);
        if (!code || !message)
                return -ENOMEM;
        for (char *p = message; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = ' ';
        *ret_code = TAKE_PTR(code);
        *ret_message = TAKE_PTR(message);
        return 0;
}

/* Busy or broken on AWS's side: again, soon. */
static const char *const retry_codes[] = {
        "ThrottlingException",         "Throttling",           "ThrottledException",
        "TooManyRequestsException",    "RequestLimitExceeded", "ServiceUnavailable",
        "ServiceUnavailableException", "InternalFailure",      "InternalServerError",
        "InternalServerException",     "RequestTimeout",       "RequestTimeoutException",
};

/* Our credentials, signature or clock: the request itself is fine and is
 * sent once they are. */
static const char *const later_codes[] = {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "RequestExpired",
        "MissingAuthenticationToken",
        "AccessDeniedException",
        "MissingAuthenticationTokenException",
};

static bool in_table(const char *const *t, size_t n, const char *code) {
        for (size_t i = 0; code && i < n; i++)
                if (streq(t[i], code))
                        return true;
        return false;
}

SfnResult sfn_classify(SfnAction action, int status, const char *code) {
        if (status < 0)
                return SFN_RESULT_RETRY;
        if (status >= 200 && status < 300)
                return SFN_RESULT_OK;
        if (action == SFN_START_EXECUTION && streq_ptr(code, "ExecutionAlreadyExists"))
                return SFN_RESULT_OK;
        if (in_table(retry_codes, ELEMENTSOF(retry_codes), code))
                return SFN_RESULT_RETRY;
        if (in_table(later_codes, ELEMENTSOF(later_codes), code))
                return SFN_RESULT_LATER;
        if (status >= 500 || status == 429 || status == 408)
                return SFN_RESULT_RETRY;
        if (status == 401 || status == 403)
                return SFN_RESULT_LATER;
        return SFN_RESULT_PERMANENT;
}

bool sfn_token_consumed(const char *code) {
        return streq_ptr(code, "InvalidToken") || streq_ptr(code, "TaskDoesNotExist") ||
                streq_ptr(code, "TaskTimedOut");
}

uint64_t sfn_backoff_usec(unsigned n, uint64_t max_usec, uint64_t random) {
        uint64_t w = SFN_BACKOFF_BASE_USEC;

        if (max_usec == 0)
                max_usec = SFN_BACKOFF_MAX_USEC;
        for (unsigned i = 1; i < n && w < max_usec; i++)
                w *= 2;
        w = MIN(w, max_usec);
        return random % (w + 1);
}

/* ---- the client -------------------------------------------------------------- */

struct SfnCall {
        SfnCall *next, **prev_next;
        SfnClient *client;
        SfnAction action;
        char *body;
        AwsCall *aws;
        sd_event_source *timer;
        uint64_t first_usec; /* CLOCK_MONOTONIC of the first attempt */
        unsigned attempts;
        bool owned; /* by the client: freed after done */
        SfnDone done;
        void *userdata;
};

struct SfnClient {
        sd_event *event;
        CurlEvent *curl;
        AwsCredentialsProvider *provider;
        AwsCredentials *credentials;
        char *region, *url, *host, *path, *ca_file;
        char **connect_to;
        unsigned max_attempts;
        uint64_t max_total_usec;
        SfnCall *calls;
};

static uint64_t now_mono(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000u;
}

static uint64_t random_u64(void) {
        uint64_t r = 0;

        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t) sizeof r)
                r = now_mono() * 6364136223846793005ULL;
        return r;
}

static char *dup_or_null(const char *s) {
        return isempty(s) ? NULL : mem_strdup(s);
}

int sfn_client_new(const SfnClientOptions *o, SfnClient **ret) {
        _cleanup_(sfn_client_freep) SfnClient *c = NULL;
        int r;

        c = mem_new(SfnClient, 1);
        if (!c)
                return -ENOMEM;
        c->event = o->event ? sd_event_ref(o->event) : NULL;
        c->curl = o->curl;
        c->provider = o->provider;
        c->max_attempts = o->max_attempts ?: SFN_ATTEMPTS_MAX_DEFAULT;
        c->max_total_usec = o->max_total_usec ?: SFN_TOTAL_USEC_DEFAULT;
        c->region = mem_strdup(isempty(o->region) ? SFN_REGION_DEFAULT : o->region);
        if (!c->region)
                return -ENOMEM;
        c->url = !isempty(o->endpoint) ? mem_strdup(o->endpoint)
                                       : mem_printf("https://states.%s.amazonaws.com/", c->region);
        if (!c->url)
                return -ENOMEM;
        r = aws_url_split(c->url, &c->host, &c->path);
        if (r < 0)
                return r;
        c->ca_file = dup_or_null(o->ca_file);
        if (!isempty(o->ca_file) && !c->ca_file)
                return -ENOMEM;
        if (o->connect_to && !(c->connect_to = strv_copy(o->connect_to)))
                return -ENOMEM;
        if (!c->provider && o->credentials && (r = aws_credentials_copy(o->credentials, &c->credentials)) < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static void call_unlink(SfnCall *call) {
        if (!call->prev_next)
                return;
        *call->prev_next = call->next;
        if (call->next)
                call->next->prev_next = call->prev_next;
        call->prev_next = NULL;
        call->next = NULL;
}

SfnCall *sfn_call_free(SfnCall *call) {
        if (!call)
                return NULL;
        call_unlink(call);
        aws_call_free(call->aws);
        sd_event_source_disable_unref(call->timer);
        free(call->body);
        free(call);
        return NULL;
}

SfnClient *sfn_client_free(SfnClient *c) {
        if (!c)
                return NULL;
        while (c->calls)
                sfn_call_free(c->calls);
        free(c->region);
        free(c->url);
        free(c->host);
        free(c->path);
        free(c->ca_file);
        strv_free(c->connect_to);
        aws_credentials_free(c->credentials);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

static void call_finish(SfnCall *call, const SfnReply *reply) {
        SfnDone done = call->done;
        void *userdata = call->userdata;
        bool owned = call->owned;

        call_unlink(call);
        if (owned) {
                done(userdata, reply);
                sfn_call_free(call);
                return;
        }
        /* The caller may free the call in done. */
        done(userdata, reply);
}

static int attempt(SfnCall *call);

static int on_retry_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        SfnCall *call = userdata;
        int r;

        call->timer = sd_event_source_disable_unref(call->timer);
        r = attempt(call);
        if (r < 0) {
                const SfnReply reply = { .result = SFN_RESULT_RETRY,
                                         .status = r,
                                         .code = "",
                                         .message = strerror(-r),
                                         .body = "",
                                         .attempts = call->attempts };
                call_finish(call, &reply);
        }
        return 0;
}

static void on_response(int result, const CurlResponse *resp, bool no_credentials, void *userdata) {
        SfnCall *call = userdata;
        SfnClient *c = call->client;
        _cleanup_free_ char *code = NULL, *message = NULL, *why = NULL;
        SfnReply reply = { .status = no_credentials ? 0 : result,
                           .body = resp ? resp->body : "",
                           .body_len = resp ? resp->body_len : 0,
                           .attempts = call->attempts };

        if (no_credentials) {
                const char *e = c->provider ? aws_credentials_provider_error(c->provider) : NULL;
                why = mem_printf("no AWS credentials: %s", e ?: strerror(-result));
                reply.result = SFN_RESULT_LATER;
                reply.code = "";
                reply.message = why ?: "no AWS credentials";
                call_finish(call, &reply);
                return;
        }
        if (result >= 200 && result < 300) {
                reply.result = SFN_RESULT_OK;
                reply.code = reply.message = "";
                call_finish(call, &reply);
                return;
        }
        if (result < 0) {
                why = mem_printf("%s%s%s", strerror(-result), resp && !isempty(resp->error) ? ": " : "",
                                 resp ? strempty(resp->error) : "");
                reply.code = "";
                reply.message = why ?: "";
        } else {
                if (sfn_parse_error(reply.body, reply.body_len, &code, &message) < 0) {
                        reply.code = reply.message = "";
                } else {
                        reply.code = code;
                        reply.message = message;
                }
        }
        reply.result = sfn_classify(call->action, result, reply.code);
        if (reply.result == SFN_RESULT_RETRY && call->attempts < c->max_attempts && c->event) {
                uint64_t wait = sfn_backoff_usec(call->attempts, 0, random_u64());
                uint64_t now = now_mono();

                if (now + wait - call->first_usec <= c->max_total_usec &&
                    sd_event_add_time_relative(c->event, &call->timer, CLOCK_MONOTONIC, wait, 0, on_retry_timer,
                                               call) >= 0)
                        return;
        }
        call_finish(call, &reply);
}

/* aws_call's handler: the AwsCall is ours to free, after the reply is read. */
static void on_aws(int result, const CurlResponse *resp, bool no_credentials, void *userdata) {
        SfnCall *call = userdata;
        AwsCall *aws = TAKE_PTR(call->aws);

        on_response(result, resp, no_credentials, call);
        aws_call_free(aws);
}

static int attempt(SfnCall *call) {
        SfnClient *c = call->client;
        _cleanup_free_ char *target = mem_printf("AWSStepFunctions.%s", sfn_action_to_string(call->action));

        if (!target)
                return -ENOMEM;
        const SigV4Header headers[] = {
                { "Content-Type", SFN_CONTENT_TYPE },
                { "X-Amz-Target", target },
        };
        const AwsPost post = {
                .url = c->url,
                .host = c->host,
                .path = c->path,
                .headers = headers,
                .n_headers = ELEMENTSOF(headers),
                .body = call->body,
                .region = c->region,
                .service = "states",
                .credentials = c->credentials,
                .max_response_body = SFN_MAX_RESPONSE,
                .ca_file = c->ca_file,
                .connect_to = c->connect_to,
        };
        call->attempts++;
        return aws_call(c->curl, c->provider, &post, on_aws, call, &call->aws);
}

int sfn_call(SfnClient *c, SfnAction action, const char *body, SfnDone done, void *userdata, SfnCall **ret) {
        _cleanup_(sfn_call_freep) SfnCall *call = NULL;
        int r;

        if (!sfn_action_to_string(action) || isempty(body) || !done)
                return -EINVAL;
        call = mem_new(SfnCall, 1);
        if (!call)
                return -ENOMEM;
        call->client = c;
        call->action = action;
        call->done = done;
        call->userdata = userdata;
        call->owned = !ret;
        call->first_usec = now_mono();
        call->body = mem_strdup(body);
        if (!call->body)
                return -ENOMEM;
        if (!c->provider && !c->credentials) {
                /* Nothing to sign with: reported from the loop like any answer. */
                return -ENOKEY;
        }
        r = attempt(call);
        if (r < 0)
                return r;
        call->next = c->calls;
        if (call->next)
                call->next->prev_next = &call->next;
        call->prev_next = &c->calls;
        c->calls = call;
        if (ret)
                *ret = call;
        TAKE_PTR(call);
        return 0;
}
