/* SPDX-License-Identifier: MIT */
/*
 * sfn.h — an AWS Step Functions client: AWS JSON 1.0 (POST / with
 * Content-Type application/x-amz-json-1.0 and X-Amz-Target
 * AWSStepFunctions.ACTION), SigV4 service "states", endpoint
 * https://states.REGION.amazonaws.com/ or aws.endpoint_states.  The calls
 * are StartExecution, SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat
 * and DescribeExecution.
 *
 * Two parts.  Pure functions build the request bodies, read the answers
 * and classify errors (what is retried, what is final, what counts as
 * done); SfnClient sends one call on the loop through aws_call() (the
 * daemon's credentials chain, refreshed before expiry), retrying
 * throttling, 5xx and network failures a bounded number of times within a
 * bounded time, with exponential backoff and full jitter.  Nothing here
 * logs.
 *
 * Security: names, tokens and inputs are the daemon's and only
 * JSON-encoded; bodies are bounded (SFN_INPUT_MAX).  Answers are
 * untrusted: capped at SFN_MAX_RESPONSE, parsed strictly by jansson, every
 * field used is type-checked, and error codes and messages are accepted
 * only when short (codes of [A-Za-z0-9.]; messages printable, cut), so
 * nothing odd reaches the store or the journal.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "aws-credentials.h"
#include "curl-event.h"
#include "macro.h"

#define SFN_REGION_DEFAULT "us-east-1"
#define SFN_CONTENT_TYPE "application/x-amz-json-1.0"
/* StartExecution's input and SendTaskSuccess's output: at most 256 KiB. */
#define SFN_INPUT_MAX ((size_t) 256 * 1024)
/* DescribeExecution may carry an input and an output of 256 KiB each. */
#define SFN_MAX_RESPONSE ((size_t) 1024 * 1024)
/* Execution names: 1 to 80 characters. */
#define SFN_NAME_MAX 80u
#define SFN_TOKEN_MAX 2048u
#define SFN_ERROR_MAX 256u
#define SFN_CAUSE_MAX 32768u
/* Longest error message kept from an answer. */
#define SFN_MESSAGE_MAX 512u
/* Retries of one call: the first backoff window, the longest one, the
 * most attempts and the most time from the first attempt. */
#define SFN_BACKOFF_BASE_USEC (100 * USEC_PER_MSEC)
#define SFN_BACKOFF_MAX_USEC (20 * USEC_PER_SEC)
#define SFN_ATTEMPTS_MAX_DEFAULT 4u
#define SFN_TOTAL_USEC_DEFAULT (30 * USEC_PER_SEC)

typedef enum SfnAction {
        SFN_START_EXECUTION,
        SFN_SEND_TASK_SUCCESS,
        SFN_SEND_TASK_FAILURE,
        SFN_SEND_TASK_HEARTBEAT,
        SFN_DESCRIBE_EXECUTION,
        _SFN_ACTION_MAX,
        _SFN_ACTION_INVALID = -EINVAL,
} SfnAction;

/* "StartExecution", "SendTaskSuccess", "SendTaskFailure",
 * "SendTaskHeartbeat", "DescribeExecution" (the X-Amz-Target's suffix). */
const char *sfn_action_to_string(SfnAction a);
SfnAction sfn_action_from_string(const char *s);

/* What an answer means. */
typedef enum SfnResult {
        SFN_RESULT_OK, /* 2xx, or ExecutionAlreadyExists for StartExecution (the same order) */
        SFN_RESULT_RETRY, /* throttled, 5xx, ServiceUnavailable, the network: try again soon */
        SFN_RESULT_LATER, /* our credentials or signature were refused: the operator's to fix; try again later */
        SFN_RESULT_PERMANENT, /* InvalidToken, TaskDoesNotExist, ValidationException, InvalidArn …: never */
        _SFN_RESULT_MAX,
        _SFN_RESULT_INVALID = -EINVAL,
} SfnResult;

/* "ok", "retry", "later", "permanent". */
const char *sfn_result_to_string(SfnResult r);
SfnResult sfn_result_from_string(const char *s);

/* ---- the pure part ---------------------------------------------------- */

/* Whether name is a valid execution name: 1..80 characters of
 * [A-Za-z0-9_-] (a subset of what AWS allows, enough for order ids). */
bool sfn_name_is_valid(const char *name);

/* input as the text StartExecution carries (jansson's default separators,
 * keys in order).  New string in *ret.  -E2BIG above SFN_INPUT_MAX bytes,
 * -EINVAL (not an object), -ENOMEM. */
int sfn_input_text(const json_t *input, char **ret);

/* The request bodies, JSON indented by two spaces with a final newline, as
 * in the vectors (sfn/, the constructed requests).  New strings in *ret.
 * StartExecution: {stateMachineArn, name, input}; -E2BIG when input is
 * longer than SFN_INPUT_MAX, -EINVAL (empty ARN, a name not valid).
 * SendTaskSuccess: {taskToken, output}; -E2BIG above SFN_INPUT_MAX.
 * SendTaskFailure: {taskToken, error?, cause?} (NULL: left out); -EINVAL
 * above SFN_ERROR_MAX / SFN_CAUSE_MAX.  SendTaskHeartbeat: {taskToken}.
 * DescribeExecution: {executionArn}.  A token of 1..SFN_TOKEN_MAX bytes,
 * otherwise -EINVAL.  -ENOMEM. */
int sfn_start_execution_body(const char *state_machine_arn, const char *name, const char *input, char **ret);
int sfn_send_task_success_body(const char *token, const char *output, char **ret);
int sfn_send_task_failure_body(const char *token, const char *error, const char *cause, char **ret);
int sfn_send_task_heartbeat_body(const char *token, char **ret);
int sfn_describe_execution_body(const char *execution_arn, char **ret);

/* The ARN of execution name of state_machine_arn
 * (arn:…:stateMachine:M → arn:…:execution:M:name).  New string in *ret.
 * -EINVAL (not a state machine ARN, name not valid), -ENOMEM. */
int sfn_execution_arn(const char *state_machine_arn, const char *name, char **ret);

/* A StartExecution answer: its executionArn (new string).  0, -EBADMSG,
 * -ENOMEM. */
int sfn_parse_start_execution(const char *body, size_t len, char **ret_execution_arn);

/* A DescribeExecution answer, checked (executionArn and name strings,
 * status one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED,
 * PENDING_REDRIVE; the optional fields of their types): a new object of
 * executionArn, name, status, startDate, stopDate, error, cause, input,
 * output (those present).  0, -EBADMSG, -ENOMEM. */
int sfn_parse_describe_execution(const char *body, size_t len, json_t **ret);

/* An error answer: the code (the __type after its last '#'; "" when
 * none or not a short token of [A-Za-z0-9.]) and the message ("message"
 * or "Message"; "" when none; control characters replaced, cut at
 * SFN_MESSAGE_MAX).  New strings.  0, -ENOMEM. */
int sfn_parse_error(const char *body, size_t len, char **ret_code, char **ret_message);

/* What status (curl-event's result: an HTTP status or -errno) with error
 * code (NULL or "" when none) means for action. */
SfnResult sfn_classify(SfnAction action, int status, const char *code);

/* Whether code, answered to a SendTask* call, says the token was used
 * already or is no more (InvalidToken, TaskDoesNotExist, TaskTimedOut):
 * for a request sent again after a restart, the first one got through. */
bool sfn_token_consumed(const char *code);

/* The wait before attempt n+1 after n failed attempts (n >= 1): full
 * jitter, random % (w + 1) with w = SFN_BACKOFF_BASE_USEC * 2^(n-1)
 * bounded by max_usec (0: SFN_BACKOFF_MAX_USEC). */
uint64_t sfn_backoff_usec(unsigned n, uint64_t max_usec, uint64_t random);

/* ---- the client on the loop ------------------------------------------- */

typedef struct SfnClient SfnClient;
typedef struct SfnCall SfnCall;

typedef struct SfnClientOptions {
        sd_event *event; /* for the retry timers */
        CurlEvent *curl; /* must outlive the client */
        AwsCredentialsProvider *provider; /* must outlive it; NULL: credentials below */
        const AwsCredentials *credentials; /* without a provider: copied; NULL: every call ends LATER */
        const char *region; /* NULL or "": SFN_REGION_DEFAULT */
        const char *endpoint; /* NULL or "": https://states.REGION.amazonaws.com/ */
        char *const *connect_to; /* as CurlRequest.connect_to; copied */
        const char *ca_file; /* NULL or "": the system's */
        unsigned max_attempts; /* 0: SFN_ATTEMPTS_MAX_DEFAULT */
        uint64_t max_total_usec; /* 0: SFN_TOTAL_USEC_DEFAULT */
} SfnClientOptions;

/* How a call ended, after its retries.  Borrowed for the handler's run. */
typedef struct SfnReply {
        SfnResult result;
        int status; /* HTTP status or -errno of the last attempt; 0: not sent (no credentials) */
        const char *code; /* error code or "" */
        const char *message; /* error message, a description of the network error, or "" */
        const char *body; /* the answer's body ("" when none) */
        size_t body_len;
        unsigned attempts;
} SfnReply;

typedef void (*SfnDone)(void *userdata, const SfnReply *reply);

/* A client.  Strings are copied.  0, -EINVAL (an endpoint that is not
 * http(s)://HOST/…), -ENOMEM. */
int sfn_client_new(const SfnClientOptions *o, SfnClient **ret);
/* Cancels calls in flight without calling their handlers.  Accepts NULL;
 * returns NULL. */
SfnClient *sfn_client_free(SfnClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(SfnClient *, sfn_client_free);

/* Send action with body (copied).  done is called once, from the loop,
 * unless the call is freed first.  With ret == NULL the call belongs to
 * the client.  0; -EINVAL (bad action or empty body), -ENOKEY (neither a
 * provider nor credentials: nothing to sign with), -ENOMEM. */
int sfn_call(SfnClient *c, SfnAction action, const char *body, SfnDone done, void *userdata, SfnCall **ret);

/* Cancels a call (its handler is not called).  Accepts NULL; returns NULL. */
SfnCall *sfn_call_free(SfnCall *call);
DEFINE_TRIVIAL_CLEANUP_FUNC(SfnCall *, sfn_call_free);
