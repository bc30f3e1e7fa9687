/* SPDX-License-Identifier: MIT */
/*
 * engine-sfn.h — engine.backend = stepfunctions: the order workflow runs on
 * AWS Step Functions (the state machine engine.state_machine_arn, the same
 * order.asl.json deployed there), one execution per order named by the
 * order id.
 *
 * What the caller does inside its transaction (start an order's workflow,
 * hand an event to its waiting task) cannot wait for the network, so it is
 * recorded in the sfn_requests table (migration 9) with the request body
 * as it will be sent, and sent after the commit from the loop through
 * sfn.c: in order per order id, each retried with backoff until AWS
 * answers for good, surviving restarts.  A request sent but whose answer
 * was not recorded is sent again: StartExecution is idempotent on the
 * name (ExecutionAlreadyExists counts as done), and a SendTask* whose
 * token was consumed meanwhile answers InvalidToken / TaskDoesNotExist,
 * which counts as done too.
 *
 * Task tokens: on AWS the workflow's tasks run as Lambda functions (a
 * later issue); the track task there hands its token to the daemon by
 * engine_sfn_register_token_in_txn() (or an operator inserts it into
 * sfn_task_tokens).  Until a token is known for an order, events for it
 * are refused with -EBUSY.
 *
 * Security: see engine.h.  Tokens are bounded (SFN_TOKEN_MAX) and only
 * JSON-encoded; AWS's answers are read by sfn.c's strict readers.
 */
#pragma once

#include "engine.h"

extern const EngineOps engine_sfn_ops;

/* Within the caller's transaction: the execution of order_id waits for
 * wait ("payment" or "status") on task token (1..SFN_TOKEN_MAX bytes); the
 * next event for the order is sent with it (SendTaskSuccess) and the token
 * is then forgotten.  0; -EINVAL (not an order id, bad wait or token),
 * -ENOENT (no Step Functions execution for that order), -errno from the
 * store. */
int engine_sfn_register_token_in_txn(Store *store, const char *order_id, const char *token, const char *wait,
                                     uint64_t now_usec);
