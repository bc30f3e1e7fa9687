/* SPDX-License-Identifier: MIT */
/*
 * engine.h — the order workflow's runner, one per daemon, behind a table of
 * backends chosen by engine.backend (engine-local.c: the durable local ASL
 * engine; engine-sfn.c: AWS Step Functions).  It owns nothing of the order itself: the
 * workflow's tasks (tasks.h, and the notify / track / eta /
 * payment_received tasks of the local backend) change the order.
 *
 * What the rest of the daemon sees is three calls: start an order's
 * workflow, hand it an event (cancel, change_address, paid, status), and
 * kick after a commit.  The first two run inside the caller's transaction,
 * so that an order and its workflow (or a conversation's turn and the
 * event it produced) are committed together.  Whether an event is allowed
 * now (cancel before engine.cancel_until, address change before
 * IN_DELIVERY, a status the Open Delivery table allows, paid only while a
 * Pix payment is awaited) is decided here, the same for every backend.
 *
 * Security: order ids and event data come from customers (through the
 * conversation), the store's staff and couriers (deliveryctl, the HTTP
 * API); ids are parsed strictly, statuses against their table, addresses
 * bounded.  Nothing here logs except through the backends' tracing of
 * state transitions (one line per transition with the order id).
 */
#pragma once

#include <jansson.h>
#include <systemd/sd-event.h>

#include "aws-credentials.h"
#include "curl-event.h"
#include "macro.h"
#include "orders.h"
#include "outbox.h"
#include "snapshot.h"
#include "store.h"

typedef struct Engine Engine;

/* The current time, usec since the epoch (UTC).  Tests inject their own. */
typedef uint64_t (*EngineClock)(void *userdata);

typedef struct EngineContext {
        sd_event *event; /* may be NULL: then nothing is scheduled, tests call engine_run_due() */
        Store *store;
        Orders *orders;
        Outbox *outbox;
        Snapshot *(*snapshot)(void *userdata); /* the current configuration (borrowed) */
        void *userdata;
        EngineClock clock; /* NULL: CLOCK_REALTIME */
        void *clock_data;
        /* For engine.backend = stepfunctions (borrowed; NULL for local):
         * the daemon's HTTP client and AWS credentials chain. */
        CurlEvent *curl;
        AwsCredentialsProvider *credentials;
} EngineContext;

/* The events engine_event_in_txn() takes. */
typedef enum EngineEvent {
        ENGINE_EVENT_CANCEL,
        ENGINE_EVENT_CHANGE_ADDRESS,
        ENGINE_EVENT_PAID,
        ENGINE_EVENT_STATUS,
        _ENGINE_EVENT_MAX,
        _ENGINE_EVENT_INVALID = -EINVAL,
} EngineEvent;

/* "cancel", "change_address", "paid", "status". */
const char *engine_event_to_string(EngineEvent e);
EngineEvent engine_event_from_string(const char *s);

/* Set up the backend that the current snapshot's engine.backend names
 * (the context's pointers are borrowed and must outlive the engine).  The
 * local backend loads engine.definition here.  0; -EINVAL with a message
 * in *ret_error (caller frees) when the definition is not valid;
 * -EOPNOTSUPP with a message when the backend is not in this build;
 * -ENOMEM. */
int engine_new(const EngineContext *ctx, Engine **ret, char **ret_error);
Engine *engine_free(Engine *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Engine *, engine_free);

/* The backend's name ("local"). */
const char *engine_backend_name(const Engine *e);

/* Resume every execution from the store: timers from their deadlines,
 * what is due now run at once (from the loop).  -errno. */
int engine_start(Engine *e);

/* Start order_id's workflow with input (borrowed; the order JSON or a
 * part of it; "order_id", "address" and "settings" are set here) inside
 * the caller's transaction.  Idempotent on the order id: starting it again
 * changes nothing and returns 0.  The execution runs once the caller has
 * committed and called engine_kick().  -EINVAL not an order id, -ENOENT
 * unknown order, -ENOMEM, -errno from the store. */
int engine_start_in_txn(Engine *e, const char *order_id, json_t *input);

/* Something was committed: run what became due, from the loop. */
void engine_kick(Engine *e);

/* Hand event ("cancel", "change_address" with data {"address": TEXT},
 * "paid", "status" with data {"status": STATUS}) to order_id's waiting
 * execution, inside the caller's transaction; the execution steps there
 * too (its tasks' effects and messages are part of that transaction).
 * 0: accepted.  -EPERM: refused now, with why in *ret_refused_reason
 * (static English sentence; may be NULL).  -EINVAL: bad event or data
 * (why in *ret_refused_reason too); -ENOENT: no such order or no
 * workflow for it; -EBUSY: the workflow is between two steps (a retry):
 * try again shortly; -ENOMEM, -errno. */
int engine_event_in_txn(Engine *e, const char *order_id, const char *event, json_t *data,
                        const char **ret_refused_reason);

/* The token holder's heartbeat: every task token the daemon holds for a
 * waiting execution is told that its holder is alive (the local engine
 * extends the wait's HeartbeatSeconds itself; on Step Functions a
 * SendTaskHeartbeat is queued).  A wait whose heartbeat ran out while the
 * daemon was down times out first (States.HeartbeatTimeout; the workflow
 * catches it).  The loop runs it every engine.heartbeat / 2.  Returns how
 * many tokens, or -errno. */
int engine_heartbeat(Engine *e);

/* Run every execution that is due now, each in its own transaction.
 * Returns how many ran, or -errno (-EIO: the store failed).  The loop
 * calls it; tests with a fake clock call it directly. */
int engine_run_due(Engine *e);

/* The execution of order_id as JSON: {"name", "status", "state" (the
 * current state's name, or null), "next_deadline" (RFC 3339 or null),
 * "history" (GetExecutionHistory events)}.  0 and a new reference;
 * -ENOENT, -ENOMEM, -errno. */
int engine_execution_json(Engine *e, const char *order_id, json_t **ret);

/* Send the customer of order_id the message template_id (a notify_* or
 * refusal template; status, may be NULL, fills {status} with its
 * status_name_* words), inside the caller's transaction, as the notify
 * task does.  For replies that are not a step of the workflow, such as a
 * refused cancellation.  0; -EINVAL, -ENOENT, -ENOMEM, -errno. */
int engine_notify_in_txn(Engine *e, const char *order_id, const char *template_id, const char *status);

/* ---- for backends ------------------------------------------------------ */

/* When a backend runs what is due: a timer at its earliest deadline and a
 * defer source for "now", both calling run(userdata) from the loop.  The
 * sources are made when first needed; without an event loop (tests with a
 * fake clock) nothing is scheduled. */
typedef struct EngineWakeup {
        sd_event *event; /* may be NULL */
        const char *name; /* for the sources' descriptions */
        void (*run)(void *userdata);
        void *userdata;
        sd_event_source *timer, *defer;
} EngineWakeup;

/* Run at at (CLOCK_REALTIME usec); UINT64_MAX: no deadline.  -errno. */
int engine_wakeup_at(EngineWakeup *w, uint64_t at);
/* Run from the loop, soon. */
void engine_wakeup_now(EngineWakeup *w);
/* Free the sources. */
void engine_wakeup_done(EngineWakeup *w);

/* A backend: one table row in engine.c.  Every function but new gets the
 * backend's own state; ids are canonical order ids. */
typedef struct EngineOps {
        const char *name;
        int (*new)(const EngineContext *ctx, void **ret, char **ret_error);
        void (*free)(void *b);
        int (*start)(void *b);
        int (*start_in_txn)(void *b, const char *id, json_t *input);
        void (*kick)(void *b);
        int (*run_due)(void *b);
        /* What the execution of id waits for: "payment", "status" (a new
         * string in *ret), -EBUSY when it waits for no event now, -ENOENT. */
        int (*waiting)(void *b, const char *id, char **ret);
        /* Hand the waiting task of id its callback output (borrowed). */
        int (*send_in_txn)(void *b, const char *id, json_t *output);
        int (*execution_json)(void *b, const char *id, json_t **ret);
        int (*notify_in_txn)(void *b, const char *id, const char *template_id, const char *status);
        int (*heartbeat)(void *b);
        /* Run id's execution now if it is due (its next step waits for
         * nothing but the time), inside the caller's transaction: 1 when it
         * ran, 0 when it was not due.  NULL: the backend cannot. */
        int (*advance_in_txn)(void *b, const char *id);
} EngineOps;

/* What the workflow reads from its input's "settings": the configuration
 * an execution starts with and keeps (payment_timeout_seconds,
 * heartbeat_seconds).  New reference, NULL on OOM. */
json_t *engine_settings_json(const Config *c);
