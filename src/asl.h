/* SPDX-License-Identifier: MIT */
/*
 * asl.h — the Amazon States Language interpreter (JSONPath query
 * language): a definition loaded and validated whole, and executions that
 * are plain data.  An execution takes events (a task's result, the time
 * passing) and returns actions (invoke this task); it does no I/O, reads
 * no clock and keeps no pointer to anything outside itself, so the
 * driver can serialise it after each step and restore it after a crash.
 * The data side (paths, templates, Choice rules) is asl-data.h.
 *
 * Security: definitions come from the admin and are refused whole when
 * anything in them is wrong or unsupported; inputs and task results come
 * from customers' orders and from tasks.  Every run is bounded: state
 * transitions (AslOptions.max_transitions), history events, Map items.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

typedef struct AslDefinition AslDefinition;
typedef struct AslExecution AslExecution;

/* Load a definition from JSON text (asl_definition_load) or a jansson
 * value (asl_definition_load_json, not stolen).  Everything is checked
 * here: states, transitions, fields, paths, templates, Choice rules,
 * Retry/Catch, nested Parallel branches and Map processors; anything
 * unsupported (JSONata, Distributed Map, Credentials, variables, unknown
 * resources) is refused.  0 and a new definition in *ret; -EINVAL with
 * a message naming the state in *ret_error (caller frees); -ENOMEM. */
int asl_definition_load(const char *text, AslDefinition **ret, char **ret_error);
int asl_definition_load_json(json_t *definition, AslDefinition **ret, char **ret_error);

/* Reference counting; unref frees at zero and returns NULL.  NULL is fine. */
AslDefinition *asl_definition_ref(AslDefinition *d);
AslDefinition *asl_definition_unref(AslDefinition *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(AslDefinition *, asl_definition_unref);

typedef enum AslStatus {
        ASL_RUNNING,
        ASL_SUCCEEDED,
        ASL_FAILED,
        ASL_TIMED_OUT,
        _ASL_STATUS_MAX,
        _ASL_STATUS_INVALID = -EINVAL,
} AslStatus;

/* "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT" (DescribeExecution's names). */
const char *asl_status_to_string(AslStatus s);
AslStatus asl_status_from_string(const char *s);

/* The default of AslOptions.max_transitions. */
#define ASL_MAX_TRANSITIONS_DEFAULT 25000U
/* At most this many history events (AWS's quota). */
#define ASL_EVENTS_MAX 25000U
/* At most this many items in one Map state. */
#define ASL_MAP_ITEMS_MAX 10000U

typedef struct AslOptions {
        const char *state_machine_name; /* for $$.StateMachine and the ARNs; NULL: "local" */
        unsigned max_transitions; /* 0: ASL_MAX_TRANSITIONS_DEFAULT */
        uint64_t seed; /* task tokens, request ids and FULL jitter come from it */
} AslOptions;

/* A task to invoke: the driver calls the function and reports back with
 * asl_execution_task_succeeded() / _failed() / _heartbeat() naming the
 * token.  Invocations are idempotent on (execution, state, attempt). */
typedef struct AslTask {
        char *token; /* unique in the execution; $$.Task.Token */
        char *state; /* the Task state's name */
        char *resource; /* the Resource ARN as written */
        char *function; /* the Lambda function's name (no ARN, no alias) */
        char *qualifier; /* alias or version from the ARN, or NULL */
        json_t *payload; /* what the function receives; read-only: shared with the execution */
        unsigned attempt; /* 1 for the first, 2 for the first retry … */
        bool callback; /* .waitForTaskToken: the function's own return is ignored; the
                        * result comes through the token */
        uint64_t timeout_usec; /* absolute deadline (TimeoutSeconds) */
        uint64_t heartbeat_usec; /* absolute, UINT64_MAX without HeartbeatSeconds */
} AslTask;

void asl_task_clear(AslTask *t);
/* Free an array of n tasks; returns NULL. */
AslTask *asl_tasks_free(AslTask *t, size_t n);

/* Start an execution of def (referenced) named name with input (not
 * stolen) at now_usec.  Nothing runs until asl_execution_step().  0 and
 * a new execution in *ret; -EINVAL when name is empty or too long;
 * -ENOMEM. */
int asl_execution_new(AslDefinition *def, const char *name, json_t *input, uint64_t now_usec, const AslOptions *opts,
                      AslExecution **ret);
AslExecution *asl_execution_free(AslExecution *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(AslExecution *, asl_execution_free);

/* Advance until the execution waits for something from outside (a task,
 * the time) or ends.  The tasks to invoke that this step scheduled go to
 * *ret_tasks (n in *ret_n; caller frees with asl_tasks_free(); both may
 * be NULL to drop them).  A failure of the definition's own logic (a
 * path that matches nothing, too many transitions) ends the execution
 * FAILED, it is not an error here.  0; -ENOMEM (the execution is then in
 * an unspecified state: restore the last serialised one). */
int asl_execution_step(AslExecution *e, AslTask **ret_tasks, size_t *ret_n);

/* Every task the execution waits for now (after a restart: invoke them
 * again).  Same ownership as asl_execution_step(). */
int asl_execution_pending_tasks(AslExecution *e, AslTask **ret_tasks, size_t *ret_n);

/* Report the outcome of the task with token at now_usec (SendTaskSuccess,
 * SendTaskFailure, SendTaskHeartbeat; a plain Lambda's return or error).
 * output is not stolen.  Then call asl_execution_step().  0; -ENOENT for
 * a token the execution does not wait for (unknown, timed out,
 * cancelled, execution over); -EINVAL for an empty error name; -ENOMEM. */
int asl_execution_task_succeeded(AslExecution *e, const char *token, json_t *output, uint64_t now_usec);
int asl_execution_task_failed(AslExecution *e, const char *token, const char *error, const char *cause,
                              uint64_t now_usec);
int asl_execution_task_heartbeat(AslExecution *e, const char *token, uint64_t now_usec);

/* The time is now_usec (never earlier than before): fire the Wait
 * states, retry delays, task and execution timeouts that are due, in the
 * order of their deadlines.  Then call asl_execution_step().  0; -ENOMEM. */
int asl_execution_advance_time(AslExecution *e, uint64_t now_usec);

/* The earliest deadline the execution waits for, UINT64_MAX for none. */
uint64_t asl_execution_next_deadline(const AslExecution *e);

AslStatus asl_execution_status(const AslExecution *e);
/* Borrowed: the output when SUCCEEDED, else NULL. */
json_t *asl_execution_output(const AslExecution *e);
/* Borrowed: the error and cause when FAILED or TIMED_OUT, else NULL. */
const char *asl_execution_error(const AslExecution *e);
const char *asl_execution_cause(const AslExecution *e);
/* Borrowed: the event history, an array of GetExecutionHistory events;
 * NULL when out of memory.  The events are recorded as the execution
 * runs and rendered (their data as JSON text) when first asked for, here
 * or by asl_execution_to_json(), hence the non-const e. */
json_t *asl_execution_history(AslExecution *e);
/* For a caller that keeps the history apart (the durable engine appends
 * it to a table instead of writing it whole with every state): the events
 * recorded since the last call, as an array of GetExecutionHistory events
 * (a new reference in *ret), which leave the execution;
 * asl_execution_to_json() then holds only where to number the next one,
 * and asl_execution_history() only the later ones.  0, -ENOMEM. */
int asl_execution_take_history(AslExecution *e, json_t **ret);
/* State transitions made so far. */
unsigned asl_execution_transitions(const AslExecution *e);

/* The whole execution as one JSON object (new reference in *ret), and
 * back: asl_execution_from_json() checks it against def and refuses one
 * that does not fit (-EINVAL with *ret_error).  0; -ENOMEM. */
int asl_execution_to_json(AslExecution *e, json_t **ret);
int asl_execution_from_json(AslDefinition *def, json_t *j, AslExecution **ret, char **ret_error);
