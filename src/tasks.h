/* SPDX-License-Identifier: MIT */
/*
 * tasks.h — the order workflow's tasks (statemachine/order.asl.json's
 * Task states) as C functions behind one interface, chosen by name: the
 * local engine calls task_invoke() in process; on AWS the same functions
 * run as Lambda functions, so a task sees only its input JSON and the
 * TaskContext, never the daemon.
 *
 * Every task runs inside the caller's transaction (the engine commits the
 * task's effects with the state transition that records its result) and
 * is idempotent: run again with the same input after a crash, it has the
 * same effect once.  Order ids in inputs are parsed like order_id_parse().
 *
 *   availability  {"order_id": ID}
 *                 → {"available": true}  (all items reserved; a second call reserves nothing more)
 *                 → {"available": false, "unavailable": [SKU, …]}  (nothing reserved)
 *   release       {"order_id": ID} → {"released": true|false}  (false: it held nothing)
 *   quote         {"address": TEXT, "order_id"?: ID}
 *                 → {"served": true, "zone": ID, "zone_name": NAME, "delivery_fee_cents": N,
 *                    "eta_minutes": N, "eta": RFC 3339}  (with order_id: recorded in the order,
 *                    total recomputed)
 *                 → {"served": false, "reason": "outside"|"unknown", "place": TEXT|null}
 *   payment       {"order_id": ID}
 *                 → {"method": "cash"|"card", "status": "authorised"}  (paid on delivery)
 *                 → {"method": "pix", "status": "pending", "pix_code": BR Code, "amount_cents": N}
 *   void_payment  {"order_id": ID} → {"status": "voided"}
 *   set_status    {"order_id": ID, "status": STATUS, "reason"?: TEXT}
 *                 → {"order_id": ID, "status": STATUS, "previous": STATUS}
 *
 * Failures (the Lambda errorType, and errorMessage as cause):
 *   deliveryd.InvalidInput       the input is not what the task takes
 *   deliveryd.OrderNotFound      no order with that id
 *   deliveryd.TransitionRefused  set_status: not allowed from the current status (cause says why)
 *   deliveryd.PixNotConfigured   payment: pix.key or pix.merchant_city is empty
 *   deliveryd.UnknownTask        no task by that name
 *
 * notify and track are not here yet: they need the engine's task tokens
 * and the message templates.
 *
 * Security: inputs come from the workflow definition and the order JSON
 * (customer data); every field is type-checked before use.
 */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "orders.h"
#include "snapshot.h"
#include "store.h"

typedef struct TaskContext {
        Store *store;
        Orders *orders;
        const Snapshot *snapshot; /* config (pix.*, store.name) and catalog (zones) */
        uint64_t now_usec; /* the time of the invocation, usec since the epoch */
} TaskContext;

/* Why a task failed, like a Lambda function's errorType / errorMessage. */
typedef struct TaskFailure {
        char *error;
        char *cause;
} TaskFailure;

void task_failure_clear(TaskFailure *f);

/* The names task_invoke() knows, NULL-terminated (static). */
const char *const *task_names(void);

/* Run task name on input (borrowed) inside the caller's transaction.
 * Returns 0 and a new JSON object in *ret_output; 1 when the task failed
 * as a task (the caller's transaction should be rolled back), with the
 * failure in *ret_failure (caller clears it); -ENOMEM or -errno from the
 * store when it could not run (retry later). */
int task_invoke(const char *name, TaskContext *ctx, json_t *input, json_t **ret_output, TaskFailure *ret_failure);
