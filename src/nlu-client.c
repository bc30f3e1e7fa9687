/* SPDX-License-Identifier: MIT */
/*
 * nlu-client.c — the loop's side of understanding: queries wait in a list
 * and are answered from a defer event source, so that callers see the
 * same order of events whatever the backend.
 *
 * Security: see nlu-client.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "nlu-client.h"

struct NluQuery {
        NluClient *client;
        NluQuery *next, **pprev;
        Snapshot *snapshot;
        char *customer;
        char *text;
        size_t len;
        NluDone done;
        void *userdata;
};

struct NluClient {
        sd_event *event;
        CurlEvent *curl;
        sd_event_source *defer;
        NluQuery *queries, **tail;
        unsigned n_pending;
};

static void query_unlink(NluQuery *q) {
        NluClient *c = q->client;

        *q->pprev = q->next;
        if (q->next)
                q->next->pprev = q->pprev;
        else
                c->tail = q->pprev;
        c->n_pending--;
}

static NluQuery *query_free(NluQuery *q) {
        if (!q)
                return NULL;
        snapshot_unref(q->snapshot);
        free(q->customer);
        free(q->text);
        free(q);
        return NULL;
}

static int on_defer(sd_event_source *s _unused_, void *userdata) {
        NluClient *c = userdata;

        /* Answer what is queued now; what a callback queues waits for the
         * next turn of the loop. */
        unsigned n = c->n_pending;
        while (n-- > 0 && c->queries) {
                NluQuery *q = c->queries;
                NluResult *result = NULL;

                query_unlink(q);
                if (nlu_parse(q->snapshot, q->text, q->len, &result) < 0)
                        result = NULL;
                q->done(q->userdata, result);
                query_free(q);
        }
        if (!c->queries)
                (void) sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
        return 0;
}

int nlu_client_new(sd_event *e, CurlEvent *curl, NluClient **ret) {
        NluClient *c = mem_new(NluClient, 1);
        int r;

        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->curl = curl;
        c->tail = &c->queries;
        r = sd_event_add_defer(e, &c->defer, on_defer, c);
        if (r < 0) {
                nlu_client_free(c);
                return r;
        }
        (void) sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(c->defer, "nlu-client");
        *ret = c;
        return 0;
}

NluClient *nlu_client_free(NluClient *c) {
        if (!c)
                return NULL;
        while (c->queries) {
                NluQuery *q = c->queries;
                query_unlink(q);
                query_free(q);
        }
        sd_event_source_disable_unref(c->defer);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

int nlu_client_parse(NluClient *c, Snapshot *s, const char *customer, const char *text, size_t len, NluDone done,
                     void *userdata, NluQuery **ret_query) {
        NluQuery *q = mem_new(NluQuery, 1);

        if (!q)
                return -ENOMEM;
        q->customer = mem_strdup(customer);
        q->text = mem_malloc(len + 1);
        if (q->text) {
                memcpy(q->text, text, len);
                q->text[len] = 0;
        }
        if (!q->customer || !q->text) {
                query_free(q);
                return -ENOMEM;
        }
        q->client = c;
        q->snapshot = snapshot_ref(s);
        q->len = len;
        q->done = done;
        q->userdata = userdata;
        q->pprev = c->tail;
        *c->tail = q;
        c->tail = &q->next;
        c->n_pending++;
        (void) sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
        if (ret_query)
                *ret_query = q;
        return 0;
}

void nlu_query_cancel(NluQuery *q) {
        if (!q)
                return;
        query_unlink(q);
        query_free(q);
}

unsigned nlu_client_n_pending(const NluClient *c) {
        return c->n_pending;
}
