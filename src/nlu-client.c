/* SPDX-License-Identifier: MIT */
/*
 * nlu-client.c — the loop's side of understanding: queries wait in a list
 * and are answered from a defer event source, so that callers see the
 * same order of events whatever the backend.  With nlu.backend = bedrock
 * a query first waits for Bedrock (nlu-bedrock.c) and is answered from its
 * callback; when Bedrock refuses to start (backoff, budget) or ends without
 * a usable answer, the rules answer, from the defer source or from that
 * callback.
 *
 * Security: see nlu-client.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "nlu-bedrock.h"
#include "nlu-client.h"
#include "nlu-rules.h"

struct NluQuery {
        NluClient *client;
        NluQuery *next, **pprev;
        Snapshot *snapshot;
        char *customer;
        char *text;
        size_t len;
        NluDone done;
        void *userdata;
        NluBedrockQuery *bedrock; /* in flight: the defer source leaves the query alone */
        const char *fallback; /* why the rules answer instead of nlu.backend, or NULL */
};

struct NluClient {
        sd_event *event;
        CurlEvent *curl;
        Metrics *metrics;
        NluBedrock *bedrock; /* NULL without curl */
        const char *fallback; /* of the query whose done runs */
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
        nlu_bedrock_query_free(q->bedrock);
        snapshot_unref(q->snapshot);
        free(q->customer);
        free(q->text);
        free(q);
        return NULL;
}

/* Unlink q, call its done with result (the rules' when NULL), free it. */
static void query_answer(NluQuery *q, NluResult *result) {
        NluClient *c = q->client;
        const Config *conf = q->snapshot->config;

        query_unlink(q);
        if (!result && nlu_rules_parse(q->snapshot->nlu_rules, q->text, q->len, conf->nlu_max_input, &result) < 0)
                result = NULL;
        if (c->metrics && result && (conf->nlu_backend == NLU_RULES || q->fallback))
                metrics_inc(c->metrics, q->fallback ? METRIC_NLU_RULES_FALLBACK : METRIC_NLU_RULES_OK);
        c->fallback = q->fallback;
        q->done(q->userdata, result);
        c->fallback = NULL;
        query_free(q);
}

static NluQuery *first_ready(NluClient *c) {
        for (NluQuery *q = c->queries; q; q = q->next)
                if (!q->bedrock)
                        return q;
        return NULL;
}

static int on_defer(sd_event_source *s _unused_, void *userdata) {
        NluClient *c = userdata;
        unsigned n = 0;

        /* Answer what is queued now; what a callback queues waits for the
         * next turn of the loop. */
        for (NluQuery *q = c->queries; q; q = q->next)
                n += !q->bedrock;
        while (n-- > 0) {
                NluQuery *q = first_ready(c);
                if (!q)
                        break;
                query_answer(q, NULL);
        }
        if (!first_ready(c))
                (void) sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
        return 0;
}

/* What the parse contract (and so the tool) does not carry, the
 * conversation still reads: corrections ("tira a coca", "na verdade 3"),
 * START, "troco para 100".  They come from the rules' reading of the same
 * text; the contract's fields stay Bedrock's. */
static void add_rules_signals(NluQuery *q, NluResult *result) {
        _cleanup_(nlu_result_freep) NluResult *rules = NULL;

        if (nlu_rules_parse(q->snapshot->nlu_rules, q->text, q->len, q->snapshot->config->nlu_max_input, &rules) < 0)
                return;
        result->signals = rules->signals;
        result->bare_qty = rules->bare_qty;
        if (result->change_for_cents == 0 && result->payment == NLU_PAYMENT_CASH)
                result->change_for_cents = rules->change_for_cents;
}

static void on_bedrock(void *userdata, NluBedrockOutcome outcome, NluResult *result) {
        NluQuery *q = userdata;

        /* Its own done may free it: ended queries are only freed. */
        q->bedrock = nlu_bedrock_query_free(q->bedrock);
        if (outcome != NLU_BEDROCK_OK)
                q->fallback = nlu_bedrock_outcome_to_string(outcome);
        else if (result)
                add_rules_signals(q, result);
        query_answer(q, result);
}

int nlu_client_new(sd_event *e, CurlEvent *curl, NluClient **ret) {
        const NluClientOptions o = { .curl = curl };

        return nlu_client_new_with(e, &o, ret);
}

int nlu_client_new_with(sd_event *e, const NluClientOptions *o, NluClient **ret) {
        NluClient *c = mem_new(NluClient, 1);
        int r;

        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->curl = o->curl;
        c->metrics = o->metrics;
        c->tail = &c->queries;
        if (o->curl) {
                const NluBedrockOptions bo = { .curl = o->curl, .credentials = o->credentials, .metrics = o->metrics };

                r = nlu_bedrock_new(e, &bo, &c->bedrock);
                if (r < 0) {
                        nlu_client_free(c);
                        return r;
                }
        }
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
        nlu_bedrock_free(c->bedrock);
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
        if (s->config->nlu_backend == NLU_BEDROCK) {
                int r = -ENETUNREACH;

                if (c->bedrock)
                        r = nlu_bedrock_query(c->bedrock, s, customer, text, len, on_bedrock, q, &q->bedrock);
                if (r == -ENOMEM) {
                        query_unlink(q);
                        query_free(q);
                        return r;
                }
                if (r < 0) /* not asked: the rules answer from the defer source */
                        q->fallback = r == -EBUSY   ? nlu_bedrock_outcome_to_string(NLU_BEDROCK_BACKOFF)
                                : r == -EDQUOT      ? nlu_bedrock_outcome_to_string(NLU_BEDROCK_BUDGET)
                                : r == -ENETUNREACH ? "no HTTP client"
                                : r == -EINVAL      ? "no request: empty text or a bad aws.endpoint_bedrock"
                                                    : "not sent";
        }
        if (!q->bedrock)
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

const char *nlu_client_fallback_reason(const NluClient *c) {
        return c->fallback;
}

unsigned nlu_client_n_pending(const NluClient *c) {
        return c->n_pending;
}
