/* SPDX-License-Identifier: MIT */
/*
 * order-events.h — the store's and the courier's reports about orders
 * (POST /api/orders/ID/status) handed to the workflow together: the events
 * that arrive during one turn of the loop are applied in one transaction,
 * each in a savepoint of its own, and answered after its COMMIT ("group
 * commit", as the inbox does), so that a burst of status reports costs one
 * fsync, not one each.  A refused event (409, unknown order) is rolled
 * back alone and does not spoil the others.
 *
 * Security: the order ids have been checked by the caller (canonical);
 * the event data is the caller's, passed to engine_event_in_txn(), which
 * validates it.
 */
#pragma once

#include <jansson.h>
#include <systemd/sd-event.h>

#include "engine.h"
#include "macro.h"
#include "outbox.h"
#include "store.h"

typedef struct OrderEvents OrderEvents;

int order_events_new(sd_event *e, Store *store, Engine *engine, Outbox *outbox, OrderEvents **ret);
/* Requests still queued are answered -ECANCELED. */
OrderEvents *order_events_free(OrderEvents *oe);
DEFINE_TRIVIAL_CLEANUP_FUNC(OrderEvents *, order_events_free);

/* The outcome of one event, after the batch's commit: r as
 * engine_event_in_txn() returned it, or the commit's error when the batch
 * was not committed; why is a static string or NULL. */
typedef void (*OrderEventDone)(void *userdata, int r, const char *why);

/* Queue event for order id (canonical, ORDER_ID_LEN characters) with data
 * (a new reference is taken; may be NULL).  done runs from the loop once
 * the batch is committed.  0, -EINVAL (not a canonical id), -ENOMEM. */
int order_events_submit(OrderEvents *oe, const char *id, const char *event, json_t *data, OrderEventDone done,
                        void *userdata);
