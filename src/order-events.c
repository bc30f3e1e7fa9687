/* SPDX-License-Identifier: MIT */
/*
 * order-events.c — events of a loop turn, one transaction.
 *
 * Security: see order-events.h.
 */
#include "order-events.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "orders.h"

typedef struct Request {
        struct Request *next;
        char id[ORDER_ID_LEN + 1];
        char *event;
        json_t *data;
        OrderEventDone done;
        void *userdata;
        int r;
        const char *why;
        StoreWaiter wait; /* applied: until it is on disk */
} Request;

struct OrderEvents {
        sd_event *event;
        Store *store;
        Engine *engine;
        Outbox *outbox;
        sd_event_source *defer;
        Request *head, **tail;
};

static Request *request_free(Request *q) {
        if (q) {
                free(q->event);
                json_decref(q->data);
                free(q);
        }
        return NULL;
}

static void finish_one(Request *q) {
        q->done(q->userdata, q->r, q->why);
        request_free(q);
}

/* Answer and free every request of list. */
static void finish(Request *list) {
        while (list) {
                Request *q = list;
                list = q->next;
                finish_one(q);
        }
}

/* Answered once its commit is on disk; failed when the sync failed. */
static void on_request_durable(StoreWaiter *w, int error) {
        Request *q = container_of(w, Request, wait);

        if (error < 0) {
                q->r = error;
                q->why = NULL;
        }
        finish_one(q);
}

static void flush(OrderEvents *oe) {
        Request *list = TAKE_PTR(oe->head);
        bool applied = false;
        int r;

        oe->tail = &oe->head;
        if (!list)
                return;
        r = store_begin_nosync(oe->store);
        for (Request *q = list; r >= 0 && q; q = q->next) {
                r = store_run(oe->store, "SAVEPOINT order_event");
                if (r < 0)
                        break;
                q->r = engine_event_in_txn(oe->engine, q->id, q->event, q->data, &q->why);
                if (q->r < 0 && (store_failed(oe->store) || store_run(oe->store, "ROLLBACK TO order_event") < 0))
                        r = -EIO;
                if (r >= 0)
                        r = store_run(oe->store, "RELEASE order_event");
                applied = applied || q->r >= 0;
        }
        if (r >= 0)
                r = store_commit(oe->store);
        else
                store_rollback(oe->store);
        if (r < 0)
                /* Nothing of the batch was kept: every sender hears so. */
                for (Request *q = list; q; q = q->next) {
                        q->r = r;
                        q->why = NULL;
                }
        else {
                if (applied) {
                        engine_kick(oe->engine);
                        outbox_kick(oe->outbox);
                }
                /* Answered once on disk (group commit, see store.h). */
                while (list) {
                        Request *q = list;
                        list = q->next;
                        store_when_durable(oe->store, &q->wait, on_request_durable, oe);
                }
                return;
        }
        finish(list);
}

static int on_defer(sd_event_source *s _unused_, void *userdata) {
        flush(userdata);
        return 0;
}

int order_events_new(sd_event *e, Store *store, Engine *engine, Outbox *outbox, OrderEvents **ret) {
        OrderEvents *oe = mem_new(OrderEvents, 1);
        int r;

        if (!oe)
                return -ENOMEM;
        oe->event = sd_event_ref(e);
        oe->store = store;
        oe->engine = engine;
        oe->outbox = outbox;
        oe->tail = &oe->head;
        r = sd_event_add_defer(e, &oe->defer, on_defer, oe);
        if (r >= 0)
                r = sd_event_source_set_enabled(oe->defer, SD_EVENT_OFF);

        if (r < 0) {
                order_events_free(oe);
                return r;
        }
        *ret = oe;
        return 0;
}

OrderEvents *order_events_free(OrderEvents *oe) {
        if (!oe)
                return NULL;
        /* Applied and waiting for the disk: sync now, and answer them. */
        store_waiters_settle(oe->store, oe);
        for (Request *q = oe->head; q; q = q->next) {
                q->r = -ECANCELED;
                q->why = NULL;
        }
        finish(TAKE_PTR(oe->head));
        sd_event_source_disable_unref(oe->defer);
        sd_event_unref(oe->event);
        free(oe);
        return NULL;
}

int order_events_submit(OrderEvents *oe, const char *id, const char *event, json_t *data, OrderEventDone done,
                        void *userdata) {
        Request *q;

        if (!id || strlen(id) != ORDER_ID_LEN || !event || !done)
                return -EINVAL;
        q = mem_new(Request, 1);
        if (!q)
                return -ENOMEM;
        q->event = mem_strdup(event);
        if (!q->event) {
                free(q);
                return -ENOMEM;
        }
        memcpy(q->id, id, ORDER_ID_LEN + 1);
        q->data = json_incref(data);
        q->done = done;
        q->userdata = userdata;
        *oe->tail = q;
        oe->tail = &q->next;
        (void) sd_event_source_set_enabled(oe->defer, SD_EVENT_ONESHOT);
        return 0;
}
